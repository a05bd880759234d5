/* syscalls.h - X(name) for every system call name gtrace knows; each is guarded
 * by #ifdef SYS_name so the list builds on x86-64 and aarch64 alike.
 * Generated from Linux's asm/unistd_64.h and asm-generic/unistd.h. */
#ifdef SYS__sysctl
X(_sysctl)
#endif
#ifdef SYS_accept
X(accept)
#endif
#ifdef SYS_accept4
X(accept4)
#endif
#ifdef SYS_access
X(access)
#endif
#ifdef SYS_acct
X(acct)
#endif
#ifdef SYS_add_key
X(add_key)
#endif
#ifdef SYS_adjtimex
X(adjtimex)
#endif
#ifdef SYS_afs_syscall
X(afs_syscall)
#endif
#ifdef SYS_alarm
X(alarm)
#endif
#ifdef SYS_arch_prctl
X(arch_prctl)
#endif
#ifdef SYS_bind
X(bind)
#endif
#ifdef SYS_bpf
X(bpf)
#endif
#ifdef SYS_brk
X(brk)
#endif
#ifdef SYS_capget
X(capget)
#endif
#ifdef SYS_capset
X(capset)
#endif
#ifdef SYS_chdir
X(chdir)
#endif
#ifdef SYS_chmod
X(chmod)
#endif
#ifdef SYS_chown
X(chown)
#endif
#ifdef SYS_chroot
X(chroot)
#endif
#ifdef SYS_clock_adjtime
X(clock_adjtime)
#endif
#ifdef SYS_clock_adjtime64
X(clock_adjtime64)
#endif
#ifdef SYS_clock_getres
X(clock_getres)
#endif
#ifdef SYS_clock_getres_time64
X(clock_getres_time64)
#endif
#ifdef SYS_clock_gettime
X(clock_gettime)
#endif
#ifdef SYS_clock_gettime64
X(clock_gettime64)
#endif
#ifdef SYS_clock_nanosleep
X(clock_nanosleep)
#endif
#ifdef SYS_clock_nanosleep_time64
X(clock_nanosleep_time64)
#endif
#ifdef SYS_clock_settime
X(clock_settime)
#endif
#ifdef SYS_clock_settime64
X(clock_settime64)
#endif
#ifdef SYS_clone
X(clone)
#endif
#ifdef SYS_clone3
X(clone3)
#endif
#ifdef SYS_close
X(close)
#endif
#ifdef SYS_close_range
X(close_range)
#endif
#ifdef SYS_connect
X(connect)
#endif
#ifdef SYS_copy_file_range
X(copy_file_range)
#endif
#ifdef SYS_creat
X(creat)
#endif
#ifdef SYS_create_module
X(create_module)
#endif
#ifdef SYS_delete_module
X(delete_module)
#endif
#ifdef SYS_dup
X(dup)
#endif
#ifdef SYS_dup2
X(dup2)
#endif
#ifdef SYS_dup3
X(dup3)
#endif
#ifdef SYS_epoll_create
X(epoll_create)
#endif
#ifdef SYS_epoll_create1
X(epoll_create1)
#endif
#ifdef SYS_epoll_ctl
X(epoll_ctl)
#endif
#ifdef SYS_epoll_ctl_old
X(epoll_ctl_old)
#endif
#ifdef SYS_epoll_pwait
X(epoll_pwait)
#endif
#ifdef SYS_epoll_pwait2
X(epoll_pwait2)
#endif
#ifdef SYS_epoll_wait
X(epoll_wait)
#endif
#ifdef SYS_epoll_wait_old
X(epoll_wait_old)
#endif
#ifdef SYS_eventfd
X(eventfd)
#endif
#ifdef SYS_eventfd2
X(eventfd2)
#endif
#ifdef SYS_execve
X(execve)
#endif
#ifdef SYS_execveat
X(execveat)
#endif
#ifdef SYS_exit
X(exit)
#endif
#ifdef SYS_exit_group
X(exit_group)
#endif
#ifdef SYS_faccessat
X(faccessat)
#endif
#ifdef SYS_faccessat2
X(faccessat2)
#endif
#ifdef SYS_fadvise64
X(fadvise64)
#endif
#ifdef SYS_fadvise64_64
X(fadvise64_64)
#endif
#ifdef SYS_fallocate
X(fallocate)
#endif
#ifdef SYS_fanotify_init
X(fanotify_init)
#endif
#ifdef SYS_fanotify_mark
X(fanotify_mark)
#endif
#ifdef SYS_fchdir
X(fchdir)
#endif
#ifdef SYS_fchmod
X(fchmod)
#endif
#ifdef SYS_fchmodat
X(fchmodat)
#endif
#ifdef SYS_fchown
X(fchown)
#endif
#ifdef SYS_fchownat
X(fchownat)
#endif
#ifdef SYS_fcntl
X(fcntl)
#endif
#ifdef SYS_fcntl64
X(fcntl64)
#endif
#ifdef SYS_fdatasync
X(fdatasync)
#endif
#ifdef SYS_fgetxattr
X(fgetxattr)
#endif
#ifdef SYS_finit_module
X(finit_module)
#endif
#ifdef SYS_flistxattr
X(flistxattr)
#endif
#ifdef SYS_flock
X(flock)
#endif
#ifdef SYS_fork
X(fork)
#endif
#ifdef SYS_fremovexattr
X(fremovexattr)
#endif
#ifdef SYS_fsconfig
X(fsconfig)
#endif
#ifdef SYS_fsetxattr
X(fsetxattr)
#endif
#ifdef SYS_fsmount
X(fsmount)
#endif
#ifdef SYS_fsopen
X(fsopen)
#endif
#ifdef SYS_fspick
X(fspick)
#endif
#ifdef SYS_fstat
X(fstat)
#endif
#ifdef SYS_fstat64
X(fstat64)
#endif
#ifdef SYS_fstatat64
X(fstatat64)
#endif
#ifdef SYS_fstatfs
X(fstatfs)
#endif
#ifdef SYS_fstatfs64
X(fstatfs64)
#endif
#ifdef SYS_fsync
X(fsync)
#endif
#ifdef SYS_ftruncate
X(ftruncate)
#endif
#ifdef SYS_ftruncate64
X(ftruncate64)
#endif
#ifdef SYS_futex
X(futex)
#endif
#ifdef SYS_futex_time64
X(futex_time64)
#endif
#ifdef SYS_futex_waitv
X(futex_waitv)
#endif
#ifdef SYS_futimesat
X(futimesat)
#endif
#ifdef SYS_get_kernel_syms
X(get_kernel_syms)
#endif
#ifdef SYS_get_mempolicy
X(get_mempolicy)
#endif
#ifdef SYS_get_robust_list
X(get_robust_list)
#endif
#ifdef SYS_get_thread_area
X(get_thread_area)
#endif
#ifdef SYS_getcpu
X(getcpu)
#endif
#ifdef SYS_getcwd
X(getcwd)
#endif
#ifdef SYS_getdents
X(getdents)
#endif
#ifdef SYS_getdents64
X(getdents64)
#endif
#ifdef SYS_getegid
X(getegid)
#endif
#ifdef SYS_geteuid
X(geteuid)
#endif
#ifdef SYS_getgid
X(getgid)
#endif
#ifdef SYS_getgroups
X(getgroups)
#endif
#ifdef SYS_getitimer
X(getitimer)
#endif
#ifdef SYS_getpeername
X(getpeername)
#endif
#ifdef SYS_getpgid
X(getpgid)
#endif
#ifdef SYS_getpgrp
X(getpgrp)
#endif
#ifdef SYS_getpid
X(getpid)
#endif
#ifdef SYS_getpmsg
X(getpmsg)
#endif
#ifdef SYS_getppid
X(getppid)
#endif
#ifdef SYS_getpriority
X(getpriority)
#endif
#ifdef SYS_getrandom
X(getrandom)
#endif
#ifdef SYS_getresgid
X(getresgid)
#endif
#ifdef SYS_getresuid
X(getresuid)
#endif
#ifdef SYS_getrlimit
X(getrlimit)
#endif
#ifdef SYS_getrusage
X(getrusage)
#endif
#ifdef SYS_getsid
X(getsid)
#endif
#ifdef SYS_getsockname
X(getsockname)
#endif
#ifdef SYS_getsockopt
X(getsockopt)
#endif
#ifdef SYS_gettid
X(gettid)
#endif
#ifdef SYS_gettimeofday
X(gettimeofday)
#endif
#ifdef SYS_getuid
X(getuid)
#endif
#ifdef SYS_getxattr
X(getxattr)
#endif
#ifdef SYS_init_module
X(init_module)
#endif
#ifdef SYS_inotify_add_watch
X(inotify_add_watch)
#endif
#ifdef SYS_inotify_init
X(inotify_init)
#endif
#ifdef SYS_inotify_init1
X(inotify_init1)
#endif
#ifdef SYS_inotify_rm_watch
X(inotify_rm_watch)
#endif
#ifdef SYS_io_cancel
X(io_cancel)
#endif
#ifdef SYS_io_destroy
X(io_destroy)
#endif
#ifdef SYS_io_getevents
X(io_getevents)
#endif
#ifdef SYS_io_pgetevents
X(io_pgetevents)
#endif
#ifdef SYS_io_pgetevents_time64
X(io_pgetevents_time64)
#endif
#ifdef SYS_io_setup
X(io_setup)
#endif
#ifdef SYS_io_submit
X(io_submit)
#endif
#ifdef SYS_io_uring_enter
X(io_uring_enter)
#endif
#ifdef SYS_io_uring_register
X(io_uring_register)
#endif
#ifdef SYS_io_uring_setup
X(io_uring_setup)
#endif
#ifdef SYS_ioctl
X(ioctl)
#endif
#ifdef SYS_ioperm
X(ioperm)
#endif
#ifdef SYS_iopl
X(iopl)
#endif
#ifdef SYS_ioprio_get
X(ioprio_get)
#endif
#ifdef SYS_ioprio_set
X(ioprio_set)
#endif
#ifdef SYS_kcmp
X(kcmp)
#endif
#ifdef SYS_kexec_file_load
X(kexec_file_load)
#endif
#ifdef SYS_kexec_load
X(kexec_load)
#endif
#ifdef SYS_keyctl
X(keyctl)
#endif
#ifdef SYS_kill
X(kill)
#endif
#ifdef SYS_landlock_add_rule
X(landlock_add_rule)
#endif
#ifdef SYS_landlock_create_ruleset
X(landlock_create_ruleset)
#endif
#ifdef SYS_landlock_restrict_self
X(landlock_restrict_self)
#endif
#ifdef SYS_lchown
X(lchown)
#endif
#ifdef SYS_lgetxattr
X(lgetxattr)
#endif
#ifdef SYS_link
X(link)
#endif
#ifdef SYS_linkat
X(linkat)
#endif
#ifdef SYS_listen
X(listen)
#endif
#ifdef SYS_listxattr
X(listxattr)
#endif
#ifdef SYS_llistxattr
X(llistxattr)
#endif
#ifdef SYS_llseek
X(llseek)
#endif
#ifdef SYS_lookup_dcookie
X(lookup_dcookie)
#endif
#ifdef SYS_lremovexattr
X(lremovexattr)
#endif
#ifdef SYS_lseek
X(lseek)
#endif
#ifdef SYS_lsetxattr
X(lsetxattr)
#endif
#ifdef SYS_lstat
X(lstat)
#endif
#ifdef SYS_lstat64
X(lstat64)
#endif
#ifdef SYS_madvise
X(madvise)
#endif
#ifdef SYS_mbind
X(mbind)
#endif
#ifdef SYS_membarrier
X(membarrier)
#endif
#ifdef SYS_memfd_create
X(memfd_create)
#endif
#ifdef SYS_memfd_secret
X(memfd_secret)
#endif
#ifdef SYS_migrate_pages
X(migrate_pages)
#endif
#ifdef SYS_mincore
X(mincore)
#endif
#ifdef SYS_mkdir
X(mkdir)
#endif
#ifdef SYS_mkdirat
X(mkdirat)
#endif
#ifdef SYS_mknod
X(mknod)
#endif
#ifdef SYS_mknodat
X(mknodat)
#endif
#ifdef SYS_mlock
X(mlock)
#endif
#ifdef SYS_mlock2
X(mlock2)
#endif
#ifdef SYS_mlockall
X(mlockall)
#endif
#ifdef SYS_mmap
X(mmap)
#endif
#ifdef SYS_mmap2
X(mmap2)
#endif
#ifdef SYS_modify_ldt
X(modify_ldt)
#endif
#ifdef SYS_mount
X(mount)
#endif
#ifdef SYS_mount_setattr
X(mount_setattr)
#endif
#ifdef SYS_move_mount
X(move_mount)
#endif
#ifdef SYS_move_pages
X(move_pages)
#endif
#ifdef SYS_mprotect
X(mprotect)
#endif
#ifdef SYS_mq_getsetattr
X(mq_getsetattr)
#endif
#ifdef SYS_mq_notify
X(mq_notify)
#endif
#ifdef SYS_mq_open
X(mq_open)
#endif
#ifdef SYS_mq_timedreceive
X(mq_timedreceive)
#endif
#ifdef SYS_mq_timedreceive_time64
X(mq_timedreceive_time64)
#endif
#ifdef SYS_mq_timedsend
X(mq_timedsend)
#endif
#ifdef SYS_mq_timedsend_time64
X(mq_timedsend_time64)
#endif
#ifdef SYS_mq_unlink
X(mq_unlink)
#endif
#ifdef SYS_mremap
X(mremap)
#endif
#ifdef SYS_msgctl
X(msgctl)
#endif
#ifdef SYS_msgget
X(msgget)
#endif
#ifdef SYS_msgrcv
X(msgrcv)
#endif
#ifdef SYS_msgsnd
X(msgsnd)
#endif
#ifdef SYS_msync
X(msync)
#endif
#ifdef SYS_munlock
X(munlock)
#endif
#ifdef SYS_munlockall
X(munlockall)
#endif
#ifdef SYS_munmap
X(munmap)
#endif
#ifdef SYS_name_to_handle_at
X(name_to_handle_at)
#endif
#ifdef SYS_nanosleep
X(nanosleep)
#endif
#ifdef SYS_newfstatat
X(newfstatat)
#endif
#ifdef SYS_nfsservctl
X(nfsservctl)
#endif
#ifdef SYS_open
X(open)
#endif
#ifdef SYS_open_by_handle_at
X(open_by_handle_at)
#endif
#ifdef SYS_open_tree
X(open_tree)
#endif
#ifdef SYS_openat
X(openat)
#endif
#ifdef SYS_openat2
X(openat2)
#endif
#ifdef SYS_pause
X(pause)
#endif
#ifdef SYS_perf_event_open
X(perf_event_open)
#endif
#ifdef SYS_personality
X(personality)
#endif
#ifdef SYS_pidfd_getfd
X(pidfd_getfd)
#endif
#ifdef SYS_pidfd_open
X(pidfd_open)
#endif
#ifdef SYS_pidfd_send_signal
X(pidfd_send_signal)
#endif
#ifdef SYS_pipe
X(pipe)
#endif
#ifdef SYS_pipe2
X(pipe2)
#endif
#ifdef SYS_pivot_root
X(pivot_root)
#endif
#ifdef SYS_pkey_alloc
X(pkey_alloc)
#endif
#ifdef SYS_pkey_free
X(pkey_free)
#endif
#ifdef SYS_pkey_mprotect
X(pkey_mprotect)
#endif
#ifdef SYS_poll
X(poll)
#endif
#ifdef SYS_ppoll
X(ppoll)
#endif
#ifdef SYS_ppoll_time64
X(ppoll_time64)
#endif
#ifdef SYS_prctl
X(prctl)
#endif
#ifdef SYS_pread64
X(pread64)
#endif
#ifdef SYS_preadv
X(preadv)
#endif
#ifdef SYS_preadv2
X(preadv2)
#endif
#ifdef SYS_prlimit64
X(prlimit64)
#endif
#ifdef SYS_process_madvise
X(process_madvise)
#endif
#ifdef SYS_process_mrelease
X(process_mrelease)
#endif
#ifdef SYS_process_vm_readv
X(process_vm_readv)
#endif
#ifdef SYS_process_vm_writev
X(process_vm_writev)
#endif
#ifdef SYS_pselect6
X(pselect6)
#endif
#ifdef SYS_pselect6_time64
X(pselect6_time64)
#endif
#ifdef SYS_ptrace
X(ptrace)
#endif
#ifdef SYS_putpmsg
X(putpmsg)
#endif
#ifdef SYS_pwrite64
X(pwrite64)
#endif
#ifdef SYS_pwritev
X(pwritev)
#endif
#ifdef SYS_pwritev2
X(pwritev2)
#endif
#ifdef SYS_query_module
X(query_module)
#endif
#ifdef SYS_quotactl
X(quotactl)
#endif
#ifdef SYS_quotactl_fd
X(quotactl_fd)
#endif
#ifdef SYS_read
X(read)
#endif
#ifdef SYS_readahead
X(readahead)
#endif
#ifdef SYS_readlink
X(readlink)
#endif
#ifdef SYS_readlinkat
X(readlinkat)
#endif
#ifdef SYS_readv
X(readv)
#endif
#ifdef SYS_reboot
X(reboot)
#endif
#ifdef SYS_recvfrom
X(recvfrom)
#endif
#ifdef SYS_recvmmsg
X(recvmmsg)
#endif
#ifdef SYS_recvmmsg_time64
X(recvmmsg_time64)
#endif
#ifdef SYS_recvmsg
X(recvmsg)
#endif
#ifdef SYS_remap_file_pages
X(remap_file_pages)
#endif
#ifdef SYS_removexattr
X(removexattr)
#endif
#ifdef SYS_rename
X(rename)
#endif
#ifdef SYS_renameat
X(renameat)
#endif
#ifdef SYS_renameat2
X(renameat2)
#endif
#ifdef SYS_request_key
X(request_key)
#endif
#ifdef SYS_restart_syscall
X(restart_syscall)
#endif
#ifdef SYS_rmdir
X(rmdir)
#endif
#ifdef SYS_rseq
X(rseq)
#endif
#ifdef SYS_rt_sigaction
X(rt_sigaction)
#endif
#ifdef SYS_rt_sigpending
X(rt_sigpending)
#endif
#ifdef SYS_rt_sigprocmask
X(rt_sigprocmask)
#endif
#ifdef SYS_rt_sigqueueinfo
X(rt_sigqueueinfo)
#endif
#ifdef SYS_rt_sigreturn
X(rt_sigreturn)
#endif
#ifdef SYS_rt_sigsuspend
X(rt_sigsuspend)
#endif
#ifdef SYS_rt_sigtimedwait
X(rt_sigtimedwait)
#endif
#ifdef SYS_rt_sigtimedwait_time64
X(rt_sigtimedwait_time64)
#endif
#ifdef SYS_rt_tgsigqueueinfo
X(rt_tgsigqueueinfo)
#endif
#ifdef SYS_sched_get_priority_max
X(sched_get_priority_max)
#endif
#ifdef SYS_sched_get_priority_min
X(sched_get_priority_min)
#endif
#ifdef SYS_sched_getaffinity
X(sched_getaffinity)
#endif
#ifdef SYS_sched_getattr
X(sched_getattr)
#endif
#ifdef SYS_sched_getparam
X(sched_getparam)
#endif
#ifdef SYS_sched_getscheduler
X(sched_getscheduler)
#endif
#ifdef SYS_sched_rr_get_interval
X(sched_rr_get_interval)
#endif
#ifdef SYS_sched_rr_get_interval_time64
X(sched_rr_get_interval_time64)
#endif
#ifdef SYS_sched_setaffinity
X(sched_setaffinity)
#endif
#ifdef SYS_sched_setattr
X(sched_setattr)
#endif
#ifdef SYS_sched_setparam
X(sched_setparam)
#endif
#ifdef SYS_sched_setscheduler
X(sched_setscheduler)
#endif
#ifdef SYS_sched_yield
X(sched_yield)
#endif
#ifdef SYS_seccomp
X(seccomp)
#endif
#ifdef SYS_security
X(security)
#endif
#ifdef SYS_select
X(select)
#endif
#ifdef SYS_semctl
X(semctl)
#endif
#ifdef SYS_semget
X(semget)
#endif
#ifdef SYS_semop
X(semop)
#endif
#ifdef SYS_semtimedop
X(semtimedop)
#endif
#ifdef SYS_semtimedop_time64
X(semtimedop_time64)
#endif
#ifdef SYS_sendfile
X(sendfile)
#endif
#ifdef SYS_sendfile64
X(sendfile64)
#endif
#ifdef SYS_sendmmsg
X(sendmmsg)
#endif
#ifdef SYS_sendmsg
X(sendmsg)
#endif
#ifdef SYS_sendto
X(sendto)
#endif
#ifdef SYS_set_mempolicy
X(set_mempolicy)
#endif
#ifdef SYS_set_mempolicy_home_node
X(set_mempolicy_home_node)
#endif
#ifdef SYS_set_robust_list
X(set_robust_list)
#endif
#ifdef SYS_set_thread_area
X(set_thread_area)
#endif
#ifdef SYS_set_tid_address
X(set_tid_address)
#endif
#ifdef SYS_setdomainname
X(setdomainname)
#endif
#ifdef SYS_setfsgid
X(setfsgid)
#endif
#ifdef SYS_setfsuid
X(setfsuid)
#endif
#ifdef SYS_setgid
X(setgid)
#endif
#ifdef SYS_setgroups
X(setgroups)
#endif
#ifdef SYS_sethostname
X(sethostname)
#endif
#ifdef SYS_setitimer
X(setitimer)
#endif
#ifdef SYS_setns
X(setns)
#endif
#ifdef SYS_setpgid
X(setpgid)
#endif
#ifdef SYS_setpriority
X(setpriority)
#endif
#ifdef SYS_setregid
X(setregid)
#endif
#ifdef SYS_setresgid
X(setresgid)
#endif
#ifdef SYS_setresuid
X(setresuid)
#endif
#ifdef SYS_setreuid
X(setreuid)
#endif
#ifdef SYS_setrlimit
X(setrlimit)
#endif
#ifdef SYS_setsid
X(setsid)
#endif
#ifdef SYS_setsockopt
X(setsockopt)
#endif
#ifdef SYS_settimeofday
X(settimeofday)
#endif
#ifdef SYS_setuid
X(setuid)
#endif
#ifdef SYS_setxattr
X(setxattr)
#endif
#ifdef SYS_shmat
X(shmat)
#endif
#ifdef SYS_shmctl
X(shmctl)
#endif
#ifdef SYS_shmdt
X(shmdt)
#endif
#ifdef SYS_shmget
X(shmget)
#endif
#ifdef SYS_shutdown
X(shutdown)
#endif
#ifdef SYS_sigaltstack
X(sigaltstack)
#endif
#ifdef SYS_signalfd
X(signalfd)
#endif
#ifdef SYS_signalfd4
X(signalfd4)
#endif
#ifdef SYS_socket
X(socket)
#endif
#ifdef SYS_socketpair
X(socketpair)
#endif
#ifdef SYS_splice
X(splice)
#endif
#ifdef SYS_stat
X(stat)
#endif
#ifdef SYS_stat64
X(stat64)
#endif
#ifdef SYS_statfs
X(statfs)
#endif
#ifdef SYS_statfs64
X(statfs64)
#endif
#ifdef SYS_statx
X(statx)
#endif
#ifdef SYS_swapoff
X(swapoff)
#endif
#ifdef SYS_swapon
X(swapon)
#endif
#ifdef SYS_symlink
X(symlink)
#endif
#ifdef SYS_symlinkat
X(symlinkat)
#endif
#ifdef SYS_sync
X(sync)
#endif
#ifdef SYS_sync_file_range
X(sync_file_range)
#endif
#ifdef SYS_sync_file_range2
X(sync_file_range2)
#endif
#ifdef SYS_syncfs
X(syncfs)
#endif
#ifdef SYS_sysfs
X(sysfs)
#endif
#ifdef SYS_sysinfo
X(sysinfo)
#endif
#ifdef SYS_syslog
X(syslog)
#endif
#ifdef SYS_tee
X(tee)
#endif
#ifdef SYS_tgkill
X(tgkill)
#endif
#ifdef SYS_time
X(time)
#endif
#ifdef SYS_timer_create
X(timer_create)
#endif
#ifdef SYS_timer_delete
X(timer_delete)
#endif
#ifdef SYS_timer_getoverrun
X(timer_getoverrun)
#endif
#ifdef SYS_timer_gettime
X(timer_gettime)
#endif
#ifdef SYS_timer_gettime64
X(timer_gettime64)
#endif
#ifdef SYS_timer_settime
X(timer_settime)
#endif
#ifdef SYS_timer_settime64
X(timer_settime64)
#endif
#ifdef SYS_timerfd_create
X(timerfd_create)
#endif
#ifdef SYS_timerfd_gettime
X(timerfd_gettime)
#endif
#ifdef SYS_timerfd_gettime64
X(timerfd_gettime64)
#endif
#ifdef SYS_timerfd_settime
X(timerfd_settime)
#endif
#ifdef SYS_timerfd_settime64
X(timerfd_settime64)
#endif
#ifdef SYS_times
X(times)
#endif
#ifdef SYS_tkill
X(tkill)
#endif
#ifdef SYS_truncate
X(truncate)
#endif
#ifdef SYS_truncate64
X(truncate64)
#endif
#ifdef SYS_tuxcall
X(tuxcall)
#endif
#ifdef SYS_umask
X(umask)
#endif
#ifdef SYS_umount2
X(umount2)
#endif
#ifdef SYS_uname
X(uname)
#endif
#ifdef SYS_unlink
X(unlink)
#endif
#ifdef SYS_unlinkat
X(unlinkat)
#endif
#ifdef SYS_unshare
X(unshare)
#endif
#ifdef SYS_uselib
X(uselib)
#endif
#ifdef SYS_userfaultfd
X(userfaultfd)
#endif
#ifdef SYS_ustat
X(ustat)
#endif
#ifdef SYS_utime
X(utime)
#endif
#ifdef SYS_utimensat
X(utimensat)
#endif
#ifdef SYS_utimensat_time64
X(utimensat_time64)
#endif
#ifdef SYS_utimes
X(utimes)
#endif
#ifdef SYS_vfork
X(vfork)
#endif
#ifdef SYS_vhangup
X(vhangup)
#endif
#ifdef SYS_vmsplice
X(vmsplice)
#endif
#ifdef SYS_vserver
X(vserver)
#endif
#ifdef SYS_wait4
X(wait4)
#endif
#ifdef SYS_waitid
X(waitid)
#endif
#ifdef SYS_write
X(write)
#endif
#ifdef SYS_writev
X(writev)
#endif
