/*
 * gort.h - the one public header of gort, Go's M:N scheduler for C.
 *
 * Goroutines (G) run on OS threads (M) that must hold one of GOMAXPROCS
 * virtual processors (P) to run Go-style code. The runtime is started with
 * gort_main(), which runs a function as the main goroutine and returns when
 * it returns.
 *
 * Conventions
 *  - Every call that can fail returns 0 or a negative errno value; calls that
 *    return data return a non-negative value or a negative errno. The library
 *    never writes errno. gort_strerror() describes the codes.
 *  - Durations are int64_t nanoseconds.
 *  - Config and stats structs start with a size field: set it to
 *    sizeof(struct) so the struct can grow without breaking the ABI.
 *  - Contexts: every function says from where it may be called.
 *      "goroutine": code running as a gort goroutine (the main goroutine, one
 *        started by gort_go or by a timer), dedicated or not.
 *      "dedicated goroutine": a goroutine between gort_dedicate_os_thread()
 *        and its last gort_undedicate_os_thread(). It may call everything a
 *        goroutine may; where the effect differs, the function says how.
 *      "foreign thread": any other thread: one the program created itself,
 *        or any thread before gort_main starts or after it returns.
 *      "any context": all of these.
 *    Calls that need a goroutine return -EPERM from a foreign thread.
 *  - Undefined behaviour: what a function does not detect is listed under
 *    "Undefined". In addition, nothing may be called from a signal handler
 *    unless it says "async-signal-safe", by a goroutine between
 *    gort_entersyscall and gort_exitsyscall (except gort_exitsyscall), or
 *    inside gort_preemptible_begin/end (except gort_preemptible_end); and a
 *    NULL pointer argument is undefined unless the function allows it or
 *    returns -EINVAL for it. Debug builds (GORT_DEBUG >= 1) catch some misuse
 *    with a fatal error.
 *  - Man pages: gort(7) is the overview; gort_main(3), gort_go(3),
 *    gort_chan_make(3), gort_select(3), gort_timer_start(3), gort_syscall(3),
 *    gort_lock_os_thread(3), gort_preempt_check(3),
 *    gort_dedicate_os_thread(3), gort_waitgroup_add(3), gort_mutex_lock(3)
 *    and gort_stats_get(3) cover every function; `man 3 <function>` finds
 *    its page.
 */
#ifndef GORT_H
#define GORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GORT_VERSION_MAJOR 0
#define GORT_VERSION_MINOR 1
#define GORT_VERSION_PATCH 0

#if defined(__GNUC__)
#define GORT_API      __attribute__((visibility("default")))
#define GORT_NORETURN __attribute__((noreturn))
#else
#define GORT_API
#define GORT_NORETURN
#endif

/* Returns the version of the libgort the program runs with, as
 * "MAJOR.MINOR.PATCH" (a static string; the GORT_VERSION_* macros give the
 * version it was compiled against). Any context, async-signal-safe. */
GORT_API const char *gort_version(void);

/* Returns a static description of a gort error code (a negative errno, or
 * 0), in gort's terms: -EPERM is "not called from a goroutine"; "unknown
 * error" for codes gort does not return. A function's own documentation
 * gives the precise meaning of each code it returns. Any context,
 * async-signal-safe. */
GORT_API const char *gort_strerror(int err);

/* ------------------------------------------------------------------------ */
/* Runtime                                                                  */
/* ------------------------------------------------------------------------ */

/* Default goroutine stack size: 64 KiB of address space, of which only the
 * touched pages use memory. */
#define GORT_STACK_DEFAULT ((size_t)64 * 1024)
/* Smallest stack a goroutine may ask for. */
#define GORT_STACK_MIN ((size_t)8 * 1024)
/* Largest stack a goroutine may ask for. */
#define GORT_STACK_MAX ((size_t)1024 * 1024 * 1024)
/* Largest GOMAXPROCS value. */
#define GORT_MAXPROCS_MAX 1024

/* gort_config_t.flags: do not treat "every goroutine blocked and no thread
 * running" as a fatal deadlock (Go's checkdead). Set it when goroutines are
 * woken by threads the runtime does not know about (gort_chan_try_send from
 * a plain pthread). */
#define GORT_CONFIG_NO_DEADLOCK_CHECK 1u
/* gort_config_t.flags: follow the cgroup v2 CPU limit (cpu.max of the
 * process's cgroup and its ancestors), as Go 1.25 can: a runtime goroutine
 * checks it every second and sets GOMAXPROCS to ceil(quota / period),
 * between 1 and the CPUs in the affinity mask, until the program calls
 * gort_gomaxprocs_set itself. Off by default. While it runs a timer is
 * always armed, so the deadlock detector never fires. */
#define GORT_CONFIG_FOLLOW_CGROUP_CPU 2u

typedef struct gort_config {
    size_t size;       /* sizeof(gort_config_t) */
    int gomaxprocs;    /* 0: $GORT_MAXPROCS, else the CPUs in the affinity mask */
    size_t stack_size; /* 0: GORT_STACK_DEFAULT; default size for gort_go */
    unsigned flags;    /* GORT_CONFIG_* */
    /* Longest a dedicated thread spins for its goroutine's wake-up before
     * it sleeps on a futex: 0: $GORT_DEDICATED_SPIN_NS, else 50 us;
     * negative: never spin. The spin adapts below this bound. */
    int64_t dedicated_spin_ns;
    /* How long before a due timer the thread that sleeps for timers stops
     * sleeping and spins instead, so that the timer fires on time rather
     * than after the kernel's timer slack and a wake-up of the CPU (on a
     * virtual machine ~70 us on average, hundreds at the tail). Costs up to
     * this much CPU per timer expiry; only while a CPU is idle. 0:
     * $GORT_TIMER_SPIN_NS, else off; negative: off. */
    int64_t timer_spin_ns;
} gort_config_t;

/* The main goroutine's function: its return value is gort_main's result. */
typedef int (*gort_main_fn)(void *arg);
/* A goroutine's function. */
typedef void (*gort_fn)(void *arg);

/*
 * gort_main - start the runtime, run fn(arg) as the main goroutine, return
 * its result.
 *
 * The calling thread becomes the runtime's first M. When fn returns (or the
 * main goroutine calls gort_exit(), which counts as returning 0), every
 * other goroutine is abandoned as in Go, the runtime's threads are stopped
 * and joined and its memory is freed, and gort_main returns fn's result.
 * gort_main may be called again afterwards.
 *
 * cfg may be NULL for defaults. fn should return a non-negative status so it
 * cannot be confused with the runtime's own errors. When every goroutine is
 * blocked and nothing can wake one, the process dies with Go's "all
 * goroutines are asleep - deadlock!" and a goroutine dump, unless cfg->flags
 * has GORT_CONFIG_NO_DEADLOCK_CHECK.
 *
 * Contexts: a foreign thread only (never from a goroutine); one run at a
 * time per process.
 * Returns: fn's result; -EINVAL for a NULL fn, a bad cfg->size, gomaxprocs
 * outside [0, GORT_MAXPROCS_MAX], a bad stack size or unknown flags; -EBUSY
 * if the runtime is already running, when called from a goroutine, or if a
 * previous run left a thread stuck in a goroutine; -ENOMEM or -EAGAIN if
 * memory or threads could not be had.
 * Undefined: after gort_main returns, using a channel or sync object that
 * an abandoned goroutine was blocked on (gort_chan_free says -EBUSY), or a
 * timer that was not freed (free timers before the main goroutine returns);
 * a foreign thread that still wakes goroutines (gort_chan_try_send, unlock,
 * ...) while gort_main returns.
 */
GORT_API int gort_main(gort_main_fn fn, void *arg, const gort_config_t *cfg);

typedef struct gort_go_opts {
    size_t size;       /* sizeof(gort_go_opts_t) */
    size_t stack_size; /* 0: the runtime's default; else GORT_STACK_MIN..GORT_STACK_MAX */
} gort_go_opts_t;

/*
 * gort_go - start fn(arg) as a new goroutine, with the stack size of
 * gort_config_t.stack_size.
 *
 * The new goroutine is put in the caller's P's runnext slot (Go's newproc),
 * so it usually runs as soon as the caller blocks or yields, and an idle P
 * is woken to steal work if there is one. It ends when fn returns or it
 * calls gort_exit; nothing waits for it (use a WaitGroup or a channel).
 *
 * Contexts: goroutine. From a dedicated goroutine the new goroutine goes to
 * the global run queue instead (nobody steals from a dedicated P).
 * Returns 0, -EPERM from a foreign thread, -EINVAL for a NULL fn, -ENOMEM
 * when no stack can be mapped.
 * Undefined: arg must stay valid until the goroutine is done with it. A
 * goroutine that overflows its stack kills the process ("stack overflow in
 * goroutine N"; with canary guards, once it next stops running).
 */
GORT_API int gort_go(gort_fn fn, void *arg);

/* gort_go with options (opts may be NULL; else set opts->size); *id_out, if
 * not NULL, receives the new goroutine's id (what gort_self_id returns in
 * it). Contexts: goroutine, as gort_go. Returns as gort_go, plus -EINVAL
 * for an opts->size that does not cover stack_size or a stack_size outside
 * GORT_STACK_MIN..GORT_STACK_MAX. */
GORT_API int gort_go_opts(gort_fn fn, void *arg, const gort_go_opts_t *opts, uint64_t *id_out);

/* gort_yield - let other goroutines run (Go's runtime.Gosched: the caller is
 * put at the tail of its P's run queue). A dedicated goroutine yields its
 * thread to the kernel instead (sched_yield): no other goroutine runs
 * there. Contexts: goroutine. Returns 0, or -EPERM from a foreign thread. */
GORT_API int gort_yield(void);

/* gort_exit - end the calling goroutine now (Go's runtime.Goexit). In the
 * main goroutine it ends gort_main with status 0. A goroutine locked to its
 * thread (gort_lock_os_thread) or dedicated ends its thread too. Contexts:
 * goroutine. Never returns when called from a goroutine; returns -EPERM
 * from a foreign thread. Undefined: nothing is unwound: locks it holds stay
 * locked, and its stack is freed under any pointer into it. */
GORT_API int gort_exit(void);

/* gort_self_id - the calling goroutine's id (> 0; the main goroutine is 1;
 * ids are not reused within a run of gort_main). Contexts: goroutine.
 * Returns the id, or -EPERM from a foreign thread. */
GORT_API int64_t gort_self_id(void);

/* gort_gomaxprocs - the number of normal Ps, GOMAXPROCS (dedicated Ps are
 * not counted). Any context. Returns it, or -ESRCH when the runtime is not
 * running. */
GORT_API int gort_gomaxprocs(void);

/* gort_gomaxprocs_set - changes GOMAXPROCS at run time (Go's
 * runtime.GOMAXPROCS(n)): stops the world, resizes the set of normal Ps
 * (procresize: the run queues, timers and free lists of removed Ps move to
 * the remaining ones) and starts it again. Dedicated Ps and their threads
 * are not touched. Called between gort_stop_the_world and
 * gort_start_the_world by the goroutine that stopped it, the change is made
 * when it starts the world. Contexts: goroutine. Returns the previous value,
 * -EINVAL if n is outside [1, GORT_MAXPROCS_MAX], -ENOMEM if new Ps could
 * not be allocated (nothing changed), -EPERM from a foreign thread. */
GORT_API int gort_gomaxprocs_set(int n);

/* gort_current_p - the id of the P the calling goroutine runs on: normal Ps
 * are 0 .. GOMAXPROCS-1, dedicated Ps GORT_MAXPROCS_MAX and up. No other
 * goroutine runs on the same P at the same time, so the id can index
 * per-P data (see gort_for_each_p). Contexts: goroutine. Returns the id, or
 * -EPERM from a foreign thread. */
GORT_API int gort_current_p(void);

/* ------------------------------------------------------------------------ */
/* Stop-the-world                                                           */
/* ------------------------------------------------------------------------ */

/* gort_stop_the_world - stops every normal P and brings every goroutine to
 * a safe point (blocked, in a system call, or at a gort call), as Go's
 * stopTheWorld does for its collector: for a snapshot, a debugger pause, a
 * language VM's collector. Running goroutines stop at their next gort call
 * (gort_preempt_check is the cheapest); a goroutine that never calls gort
 * holds the stop up (unless it is inside gort_preemptible_begin/end). On
 * return nothing but the caller runs goroutine code.
 *
 * Dedicated goroutines keep their Ps and threads throughout: one blocked or
 * in a system call counts as stopped at once (the stop's cost does not grow
 * with them); one that wakes up or leaves its system call during the stop
 * waits on its own thread until the world starts, then goes on on its own
 * P with no hand-off; a running one stops at its next gort call the same
 * way. Stoppers are serialised: a second one waits (parks) for the first to
 * start the world.
 *
 * Until gort_start_the_world the caller must not block: parking (a blocking
 * channel operation, lock, wait or sleep) is a fatal error ("goroutine
 * blocked with the world stopped"); gort_yield does nothing; its system
 * calls keep its P; gort_dedicate_os_thread and gort_undedicate_os_thread
 * return -EBUSY. Non-blocking calls (gort_go, try sends, timers) work; what
 * they make runnable runs once the world starts. reason is kept for
 * debuggers. Contexts: goroutine. Returns 0, -EDEADLK if the caller has
 * already stopped the world, -EPERM from a foreign thread. */
GORT_API int gort_stop_the_world(const char *reason);

/* gort_start_the_world - undoes gort_stop_the_world (Go's startTheWorld):
 * applies a pending gort_gomaxprocs_set, gives the stopped Ps that have
 * work to threads, and releases waiting dedicated goroutines. Contexts: the
 * goroutine that stopped the world. Returns 0, or -EPERM from any other
 * goroutine or a foreign thread. */
GORT_API int gort_start_the_world(void);

/* A per-P callback of gort_for_each_p: p_id as gort_current_p returns it;
 * dedicated is 1 for a dedicated P. */
typedef void (*gort_p_fn)(int p_id, int dedicated, void *arg);

/* gort_for_each_p - calls fn once for every normal P and every dedicated P
 * in use, while no goroutine runs on any of them (Go's forEachP, for
 * flushing per-P caches): fn runs on the caller's thread with the world
 * stopped; dedicated Ps stay with their threads. fn must not call gort.
 * Called with the world already stopped by the caller, it just visits.
 * Contexts: goroutine. Returns 0, -EINVAL for a NULL fn, -EPERM from a
 * foreign thread. */
GORT_API int gort_for_each_p(gort_p_fn fn, void *arg);

/* ------------------------------------------------------------------------ */
/* Statistics                                                               */
/* ------------------------------------------------------------------------ */

/* Counters since gort_main started. Each is a sum of per-P or per-M counters
 * read without stopping the world, so a snapshot is only consistent when the
 * runtime is quiet. */
typedef struct gort_stats {
    size_t size; /* sizeof(gort_stats_t), set by the caller */
    uint64_t goroutines_created;
    uint64_t goroutines_exited;
    uint64_t goroutines_live;      /* created - exited, including the main goroutine */
    uint64_t switches;             /* goroutines switched to (by schedule() or directly) */
    uint64_t steal_tries;          /* runqsteal attempts on another P */
    uint64_t steal_successes;      /* attempts that took at least one goroutine */
    uint64_t steal_gs;             /* goroutines taken by stealing */
    uint64_t ms_created;           /* threads started (including the first) */
    uint64_t ms_parked;            /* stopm: an M went to sleep with no P */
    uint64_t ms_woken;             /* startm: an idle M was given a P and woken */
    uint64_t spinning_transitions; /* an M started spinning (looking for work) */
    uint64_t futex_sleeps;         /* futex waits issued by the runtime */
    uint64_t futex_wakes;          /* futex wakes issued by the runtime */
    uint64_t globrunq_puts;        /* goroutines put on the global run queue */
    uint64_t globrunq_gets;        /* goroutines taken from the global run queue */
    uint64_t stacks_mapped;        /* stacks mapped from the OS */
    uint64_t stack_bytes_mapped;   /* address space mapped for stacks */
    int64_t gomaxprocs;
    /* System calls (syscall.c, sysmon.c) and LockOSThread (lockos.c). */
    uint64_t syscalls_raw;       /* gort_syscall(GORT_SYSCALL_RAW, ...) */
    uint64_t syscalls_lazy;      /* gort_entersyscall */
    uint64_t syscalls_eager;     /* gort_entersyscallblock */
    uint64_t syscall_fast_exits; /* exitsyscall got a P without parking */
    uint64_t syscall_slow_exits; /* exitsyscall had to queue the goroutine */
    uint64_t handoffs;           /* handoffp: a P given away */
    uint64_t sysmon_retakes;     /* Ps retaken from lazy syscalls */
    uint64_t sysmon_wakeups;     /* sysmon woken from its deep sleep */
    uint64_t preempt_requests;   /* sysmon asked a goroutine to yield */
    uint64_t preempt_signals;    /* ... and sent its thread SIGURG */
    uint64_t preempts_sync;      /* goroutines that yielded at a runtime call */
    uint64_t preempts_async;     /* goroutines switched out by the signal */
    uint64_t startlockedm;       /* a P handed to a locked thread */
    uint64_t stoplockedm;        /* a locked thread gave its P away and slept */
    /* DedicateOSThread (dedicate.c). */
    uint64_t dedicated_live;           /* goroutines dedicated now */
    uint64_t dedicated_ps;             /* dedicated Ps allocated (in use + slack) */
    uint64_t dedicate_calls;           /* gort_dedicate_os_thread calls */
    uint64_t undedicate_calls;         /* gort_undedicate_os_thread calls */
    uint64_t dedicated_direct_wakes;   /* futex wakes of a dedicated thread by ready */
    uint64_t dedicated_spin_catches;   /* wake-ups caught while spinning */
    uint64_t dedicated_futex_sleeps;   /* futex sleeps of dedicated threads */
    uint64_t dedicated_threads_reused; /* dedicate found an idle thread: none created */
    /* Stop-the-world (stw.c). */
    uint64_t stw_count;           /* worlds stopped (gort_for_each_p and GOMAXPROCS too) */
    uint64_t stw_dedicated_waits; /* dedicated goroutines that waited for a start */
    uint64_t procresizes;         /* GOMAXPROCS changes */
    /* The netpoller (netpoll.c). */
    uint64_t netpoll_polls;   /* epoll_wait calls, blocking or not */
    uint64_t netpoll_readied; /* goroutines it made runnable */
    /* Latency (GORT_LATENCY_STATS builds, the default; 0 otherwise). Wake-up
     * to running: for normal goroutines one wake-up in 64 made from a P is
     * timed (the time it waited in a run queue); for dedicated goroutines
     * every wake-up that finds the thread asleep and one in 16 of the others
     * (the time until its own thread ran it, after a futex wake or a spin).
     * Percentiles are the upper bound of a power-of-two bucket (within 2x);
     * max is exact. dedicated_spin_catches counts the wake-ups caught by
     * spinning. */
    uint64_t runq_wait_samples;
    uint64_t runq_wait_p50_ns;
    uint64_t runq_wait_p99_ns;
    uint64_t runq_wait_max_ns;
    uint64_t dedicated_wake_samples;
    uint64_t dedicated_wake_p50_ns;
    uint64_t dedicated_wake_p99_ns;
    uint64_t dedicated_wake_max_ns;
    /* Timer spin (gort_config_t.timer_spin_ns). */
    uint64_t timer_spins;        /* the timer sleeper spun before a timer */
    uint64_t timer_spin_catches; /* ... and reached the timer's time spinning */
    /* Of switches: with GOMAXPROCS 1, a goroutine that parked or yielded
     * switched straight to the next one of its P's queue, without the
     * scheduler loop (sched.c switch_direct). */
    uint64_t switches_direct;
} gort_stats_t;

/* gort_dump_goroutines - writes every live goroutine to fd, as Go's
 * traceback does: id, state, wait reason and for how long (at least),
 * locked or dedicated thread, and for parked goroutines a backtrace by
 * frame-pointer walk (return addresses with the object and offset that
 * addr2line resolves). GORT_DEBUG=sigquit=1 makes SIGQUIT print it (and a
 * scheddetail trace) and exit with status 2; fatal errors and the deadlock
 * detector print it too. Any context while gort_main runs. Returns 0,
 * -EBADF for a negative fd, -ESRCH when the runtime is not running. */
GORT_API int gort_dump_goroutines(int fd);

/* Fills *st with the current run's counters (st->size must be set; fields
 * past it are left alone, and so is size). Any context. Returns 0, -EINVAL
 * for NULL or a size that does not cover goroutines_created, -ESRCH when
 * the runtime is not running (the counters go when gort_main returns). */
GORT_API int gort_stats_get(gort_stats_t *st);

/* ------------------------------------------------------------------------ */
/* System calls                                                             */
/* ------------------------------------------------------------------------ */

/* The three ways to make a blocking system call (the spec's "Problems"):
 *
 * raw:   just make it; the goroutine keeps its P, so at most GOMAXPROCS
 *        goroutines can be in such calls at once.
 * lazy:  gort_entersyscall() ... gort_exitsyscall(): the P stays attached
 *        to the thread; a short call gets it back with one CAS; sysmon takes
 *        it back after 20 us or more when other work waits (Go's
 *        entersyscall).
 * eager: gort_entersyscallblock() ... gort_exitsyscall(): the P is handed
 *        off at once, usually waking another thread (Go's
 *        entersyscallblock).
 *
 * Between enter and exit the goroutine must not call gort (it holds no P;
 * debug builds, GORT_DEBUG >= 1, stop with a fatal error if it does), and
 * must not be switched to another thread by other means.
 * Contexts: goroutine. A dedicated goroutine keeps its own P in all three
 * ways and wakes nobody (it needs no protocol: a raw call is as good).
 * Return 0 or -EPERM from a foreign thread (gort_exitsyscall: -EINVAL if the
 * goroutine is not between enter and exit).
 * Undefined: calling any other gort function, entering again, or ending the
 * goroutine between enter and exit. */
GORT_API int gort_entersyscall(void);
GORT_API int gort_entersyscallblock(void);
GORT_API int gort_exitsyscall(void);

enum { GORT_SYSCALL_RAW = 0, GORT_SYSCALL_LAZY = 1, GORT_SYSCALL_EAGER = 2 };
/* Makes system call nr with syscall(2) through the given protocol (enter,
 * call, exit). Contexts: goroutine; GORT_SYSCALL_RAW also from a foreign
 * thread. Returns the call's result, or -errno when it fails (errno itself
 * is left as it was); -EINVAL for a bad mode, -EPERM for lazy/eager from a
 * foreign thread. */
GORT_API long gort_syscall(int mode, long nr, long a1, long a2, long a3, long a4, long a5, long a6);

/* ------------------------------------------------------------------------ */
/* LockOSThread and preemption                                              */
/* ------------------------------------------------------------------------ */

/* Go's runtime.LockOSThread: wires the calling goroutine to its current
 * thread. It runs only on that thread and no other goroutine runs there,
 * until as many gort_unlock_os_thread calls as lock calls. When it blocks,
 * the thread gives its P away and sleeps; waking it takes a hand-off of a P
 * from another thread (the cost DedicateOSThread removes). If the goroutine
 * exits while locked, its thread ends (it may have changed per-thread
 * state); the thread that called gort_main instead idles until shutdown.
 * In a dedicated goroutine (already wired to its thread) calls only count.
 * Contexts: goroutine. Returns 0, -EPERM from a foreign thread, -EOVERFLOW
 * past UINT32_MAX nested calls, -EAGAIN (not locked) when the first lock of
 * a run cannot create the thread that later threads are cloned from (Go's
 * template thread). */
GORT_API int gort_lock_os_thread(void);
/* Undoes one gort_lock_os_thread (a no-op when not locked). A dedicated
 * goroutine stays wired until its last undedicate. Contexts: goroutine.
 * Returns 0, or -EPERM from a foreign thread. */
GORT_API int gort_unlock_os_thread(void);

/* Preemption: sysmon asks a goroutine that has run for 10 ms without
 * blocking to yield. Every gort call by a goroutine honours such a request;
 * gort_preempt_check() is the cheapest one, for long loops. Dedicated
 * and locked goroutines are never preempted (the kernel schedules them; a
 * locked one owns its thread, so yielding would only move its P to another
 * thread). Contexts:
 * goroutine. Returns 0 (after yielding if asked), or -EPERM from a foreign
 * thread. */
GORT_API int gort_preempt_check(void);
/* Between gort_preemptible_begin and gort_preemptible_end the goroutine may
 * also be preempted asynchronously: sysmon sends its thread SIGURG and the
 * handler switches goroutines. In that region the code must not call gort
 * or anything that takes a lock (malloc, stdio, pthread mutexes): pure
 * computation only; debug builds die on a gort call there. Regions do not
 * nest: the first end closes the region, and a request that arrived in it
 * is honoured there. gort installs a SIGURG handler on first use. A
 * dedicated goroutine is never preempted. Contexts: goroutine. Return 0,
 * -EPERM from a foreign thread (begin: -EINVAL if the handler cannot be
 * installed). Undefined: anything but computation inside the region. */
GORT_API int gort_preemptible_begin(void);
GORT_API int gort_preemptible_end(void);

/* ------------------------------------------------------------------------ */
/* DedicateOSThread                                                         */
/* ------------------------------------------------------------------------ */

/*
 * gort_dedicate_os_thread - wire the calling goroutine to its current
 * thread, and give the thread a P of its own that is not counted against
 * GOMAXPROCS (../shared/spec/dedicate-os-thread.md). The goroutine always
 * runs on this thread and no other goroutine runs there, until it has
 * called gort_undedicate_os_thread as many times as this function. The
 * kernel schedules it: when it blocks (channel, sleep, mutex, syscall) its
 * thread keeps its P and sleeps, and readying it wakes that thread
 * directly with at most one futex wake; sysmon never preempts it; no other
 * goroutine is stolen from or to it; goroutines it starts or readies go to
 * the global run queue. Before sleeping the thread spins briefly (see
 * gort_config_t.dedicated_spin_ns). If the goroutine exits while dedicated,
 * its thread ends, as with LockOSThread.
 *
 * Dedicate implies LockOSThread: the goroutine is locked to its thread while
 * dedicated. gort_lock_os_thread / gort_unlock_os_thread calls made meanwhile
 * only count; if more locks than unlocks remain when the last undedicate
 * happens, the goroutine stays locked as an ordinary locked goroutine.
 *
 * Meant for long-lived goroutines that mostly block in system calls (a
 * sandbox's task goroutines, a debugger's ptrace goroutine), not for ones
 * that mostly talk to other goroutines.
 *
 * Contexts: goroutine (in a dedicated goroutine it nests). Returns 0;
 * -EPERM from a foreign thread; -EAGAIN when a thread to take over the
 * normal P could not be created (EAGAIN, RLIMIT_NPROC): the goroutine
 * carries on as a normal goroutine; -ENOMEM; -EOVERFLOW past UINT32_MAX
 * nested calls; -EBUSY if the caller has stopped the world (no P may change
 * hands until it starts it again).
 */
GORT_API int gort_dedicate_os_thread(void);
/* Undoes one gort_dedicate_os_thread (a no-op if not dedicated). After the
 * last one the goroutine is scheduled normally again: it keeps running on
 * this thread with an idle normal P if there is one, else it waits in the
 * global run queue; the thread and the dedicated P are kept for reuse.
 * Contexts: goroutine. Returns 0; -EPERM from a foreign thread; -EBUSY if
 * the caller has stopped the world (nothing is undone). */
GORT_API int gort_undedicate_os_thread(void);

/* ------------------------------------------------------------------------ */
/* WaitGroup                                                                */
/* ------------------------------------------------------------------------ */

/* A WaitGroup waits for a collection of goroutines to finish (Go's
 * sync.WaitGroup). Zero-initialise it (GORT_WAITGROUP_INIT) or call
 * gort_waitgroup_init. It must not be copied once used. Waiters park their
 * goroutine, never their thread. */
typedef struct gort_waitgroup {
    uint64_t opaque[4];
} gort_waitgroup_t;
#define GORT_WAITGROUP_INIT                                                                        \
    {                                                                                              \
        {                                                                                          \
            0, 0, 0, 0                                                                             \
        }                                                                                          \
    }

/* Sets the counter to zero (as GORT_WAITGROUP_INIT). Any context.
 * Undefined: while the WaitGroup is in use. */
GORT_API void gort_waitgroup_init(gort_waitgroup_t *wg);
/* Adds delta (may be negative) to the counter. When it reaches zero every
 * waiter is woken. Any context. Returns 0, -EINVAL for NULL or if the
 * counter would go negative (the counter is left unchanged), -EOVERFLOW
 * past INT32_MAX. Undefined: as in Go, an add with a positive delta while
 * the counter is zero must happen before the gort_waitgroup_wait it is
 * meant for (do it before starting the goroutine, not in it). */
GORT_API int gort_waitgroup_add(gort_waitgroup_t *wg, int delta);
/* gort_waitgroup_add(wg, -1). */
GORT_API int gort_waitgroup_done(gort_waitgroup_t *wg);
/* Parks the calling goroutine until the counter is zero (returns at once
 * if it is). Contexts: goroutine. Returns 0, -EINVAL for NULL, -EPERM from
 * a foreign thread. */
GORT_API int gort_waitgroup_wait(gort_waitgroup_t *wg);

/* ------------------------------------------------------------------------ */
/* Time                                                                     */
/* ------------------------------------------------------------------------ */

/* The runtime's clock: CLOCK_MONOTONIC in nanoseconds. Deadlines passed to
 * the *_deadline calls are absolute values of this clock. Any context, also
 * when the runtime is not running. */
GORT_API int64_t gort_now_ns(void);

/* Parks the calling goroutine for at least ns nanoseconds (ns <= 0 returns
 * at once). The thread runs other goroutines meanwhile; lateness is the
 * kernel's timer slack (50 us by default) plus the time to get a P. A
 * dedicated goroutine's thread sleeps on its own until then.
 * Contexts: goroutine. Returns 0, or -EPERM from a foreign thread. */
GORT_API int gort_sleep_ns(int64_t ns);

/* ------------------------------------------------------------------------ */
/* Channels                                                                 */
/* ------------------------------------------------------------------------ */

/* A channel of fixed-size elements (Go's chan). Senders and receivers that
 * must wait are served in FIFO order; a send to a waiting receiver copies
 * straight into it and runs it next on the sender's P. */
typedef struct gort_chan gort_chan_t;

/* Largest element a channel can carry (Go's limit). */
#define GORT_CHAN_ELEM_MAX ((size_t)65535)

/* Makes a channel with cap buffered elements of elem_size bytes each
 * (cap 0: unbuffered; elem_size 0: a channel of signals). Any context.
 * Returns 0 and *out, -EINVAL (NULL out, elem_size > GORT_CHAN_ELEM_MAX, cap
 * > INT32_MAX) or -ENOMEM. */
GORT_API int gort_chan_make(gort_chan_t **out, size_t elem_size, size_t cap);

/* Frees a channel (any buffered values are dropped). Any context.
 * Returns 0, -EINVAL for NULL, -EBUSY (and frees nothing) while goroutines
 * are blocked on it. A goroutine whose send or receive on it has completed
 * does not count as blocked even if it has not returned yet: freeing the
 * channel right after one's own send is fine (the memory is then released
 * when that goroutine returns, or never if the runtime shuts down before
 * it runs again). Undefined: using the channel afterwards, or
 * freeing it while another thread may still use it or a timer may still
 * send on it. */
GORT_API int gort_chan_free(gort_chan_t *c);

/* Sends *elem (elem_size bytes, copied; elem may be NULL when elem_size is
 * 0), blocking until a receiver takes it or buffer space frees up. A
 * dedicated receiver's thread is woken directly.
 * Contexts: goroutine. Returns 0; -EPIPE if the channel is or becomes closed
 * (Go panics here; the value was not sent); -EINVAL for a NULL channel;
 * -EPERM from a foreign thread. */
GORT_API int gort_chan_send(gort_chan_t *c, const void *elem);

/* Receives into *elem (may be NULL to discard). *ok (may be NULL) is set to
 * true for a value sent by a sender, false when the channel is closed and
 * empty (then *elem is zeroed). A closed channel's buffer is drained first.
 * Contexts: goroutine. Returns 0, -EINVAL for a NULL channel, -EPERM from a
 * foreign thread. */
GORT_API int gort_chan_recv(gort_chan_t *c, void *elem, bool *ok);

/* Non-blocking variants: -EAGAIN when the operation would block; otherwise
 * as gort_chan_send / gort_chan_recv. They never park, so they may be
 * called from any context (a goroutine a foreign thread wakes goes to the
 * global run queue, and deadlock detection is off for the rest of the run
 * once that happens). */
GORT_API int gort_chan_try_send(gort_chan_t *c, const void *elem);
GORT_API int gort_chan_try_recv(gort_chan_t *c, void *elem, bool *ok);

/* Blocking variants that give up at deadline_ns (gort_now_ns clock):
 * -ETIMEDOUT. A deadline in the past behaves like the try variant, but
 * returns -ETIMEDOUT instead of -EAGAIN. Otherwise as gort_chan_send /
 * gort_chan_recv. Contexts: goroutine. */
GORT_API int gort_chan_send_deadline(gort_chan_t *c, const void *elem, int64_t deadline_ns);
GORT_API int gort_chan_recv_deadline(gort_chan_t *c, void *elem, bool *ok, int64_t deadline_ns);

/* Closes the channel: every blocked receiver gets ok == false, every
 * blocked sender -EPIPE; buffered values can still be received, and later
 * sends fail with -EPIPE. Any context. Returns 0, -EPIPE if already closed,
 * -EINVAL for NULL. */
GORT_API int gort_chan_close(gort_chan_t *c);

/* Number of buffered elements (a snapshot), and buffer capacity. Any
 * context. Return the number, or -EINVAL for NULL. */
GORT_API ssize_t gort_chan_len(gort_chan_t *c);
GORT_API ssize_t gort_chan_cap(gort_chan_t *c);

/* ------------------------------------------------------------------------ */
/* Select                                                                   */
/* ------------------------------------------------------------------------ */

enum { GORT_SELECT_SEND = 1, GORT_SELECT_RECV = 2 };
/* gort_select flag: do not block; return -EAGAIN if no case is ready
 * (Go's select with a default case). */
#define GORT_SELECT_NONBLOCK 1u

typedef struct gort_select_case {
    gort_chan_t *chan; /* NULL: the case is never ready (Go's nil channel) */
    int dir;           /* GORT_SELECT_SEND or GORT_SELECT_RECV */
    void *elem;        /* send: the value; recv: where to store it (or NULL) */
    bool ok;           /* out: recv: a value was received (false: closed);
                          send: the value was sent (false: channel closed) */
} gort_select_case_t;

/* Waits until one of the cases can proceed, performs it and returns its
 * index. Among cases that are ready at once, the choice is uniformly random.
 * A send case on a closed channel is chosen with ok == false (Go panics).
 * Channels are locked in address order (Go's sellock), so selects over the
 * same channels never deadlock. Contexts: goroutine (with
 * GORT_SELECT_NONBLOCK: any context). Returns the index, -EAGAIN
 * (NONBLOCK, nothing ready), -EINVAL (NULL cases with n > 0, a bad dir, n >
 * 65536, unknown flags, or blocking with no non-NULL channel: that would
 * block forever), -ENOMEM (more than 32 channels and no memory), -EPERM
 * from a foreign thread without GORT_SELECT_NONBLOCK.
 * Undefined: changing the cases or their elem buffers while it runs. */
GORT_API int gort_select(gort_select_case_t *cases, size_t n, unsigned flags);
/* As gort_select without flags, but gives up at deadline_ns (gort_now_ns
 * clock) with -ETIMEDOUT; a deadline in the past polls once. With no
 * non-NULL channel it just sleeps until the deadline. Contexts: goroutine.
 * Returns as gort_select, with -ETIMEDOUT instead of -EAGAIN, and -ENOMEM
 * also when there is no memory for the deadline's timer. */
GORT_API int gort_select_deadline(gort_select_case_t *cases, size_t n, int64_t deadline_ns);

/* ------------------------------------------------------------------------ */
/* Timers                                                                   */
/* ------------------------------------------------------------------------ */

/* A timer fires once after a delay, then every period if period_ns > 0. On
 * each firing it either sends the time the firing was due (an int64_t on the
 * gort_now_ns clock; a periodic timer's firings never overlap, so these
 * increase)
 * on a channel without blocking (a channel with elem_size 8; give it a
 * buffer of 1, as Go's time.Timer does, or firings are dropped while nobody
 * receives) or starts fn(arg) in a new goroutine. Timers live on per-P heaps
 * and are run by the scheduler. */
typedef struct gort_timer gort_timer_t;

/* Creates and starts a timer on the caller's P (a normal P if the caller is
 * dedicated: it fires even while that goroutine runs). Exactly one of ch and fn
 * must be non-NULL. delay_ns < 0 counts as 0; period_ns < 0 is -EINVAL.
 * Contexts: goroutine. Returns 0 and *out; -EINVAL (NULL out, both or
 * neither of ch and fn, a ch whose elem_size is not 8, period_ns < 0);
 * -ENOMEM; -EPERM from a foreign thread.
 * Undefined: freeing ch while the timer may fire; a timer outliving
 * gort_main (free it before the main goroutine returns). A fn timer whose
 * goroutine cannot be created (no memory) skips that firing. */
GORT_API int gort_timer_start(gort_timer_t **out, int64_t delay_ns, int64_t period_ns,
                              gort_chan_t *ch, gort_fn fn, void *arg);
/* Stops the timer: once it returns, the timer does not fire (a firing that
 * already started completes first; a goroutine a fn timer started runs on).
 * A value it sent stays in the channel. Contexts: goroutine. Returns 1 if
 * the timer was pending, 0 if it had already fired (one-shot) or was
 * stopped; -EINVAL for NULL; -EPERM from a foreign thread. */
GORT_API int gort_timer_stop(gort_timer_t *t);
/* Re-arms the timer with a new delay and period, whether or not it fired or
 * was stopped. Contexts: goroutine. Returns 1 if it was pending, 0 if not;
 * -EINVAL for NULL or period_ns < 0; -EPERM from a foreign thread. */
GORT_API int gort_timer_reset(gort_timer_t *t, int64_t delay_ns, int64_t period_ns);
/* Stops and frees the timer. Contexts: goroutine. Returns 0, -EINVAL for
 * NULL, -EPERM from a foreign thread (the timer is then left alone).
 * Undefined: using the timer afterwards. */
GORT_API int gort_timer_free(gort_timer_t *t);

/* ------------------------------------------------------------------------ */
/* Mutex, RWMutex, Cond, Once, Semaphore                                    */
/* ------------------------------------------------------------------------ */

/* All of these park the goroutine, never the thread (a dedicated
 * goroutine's thread sleeps until it is woken directly). Zero-initialise
 * them (the *_INIT macros) before use; do not copy them once used.
 * Blocking calls need a goroutine (-EPERM from a foreign thread); try,
 * unlock, release, signal and broadcast calls work from any context. The
 * int calls return -EINVAL for a NULL object. None of them is recursive: a
 * goroutine that locks a mutex it holds (or read-locks an RWMutex twice
 * while a writer waits) deadlocks. Undefined: copying or freeing one while
 * it is in use. */

/* Go's sync.Mutex: spins briefly, then parks; a waiter that has waited
 * for more than 1 ms switches the mutex to starvation mode, in which
 * ownership is handed directly to the waiter at the head of the queue. */
typedef struct gort_mutex {
    uint64_t opaque[6];
} gort_mutex_t;
#define GORT_MUTEX_INIT                                                                            \
    {                                                                                              \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }
/* Locks m, parking until it is free. Contexts: goroutine. Returns 0,
 * -EINVAL, -EPERM from a foreign thread. */
GORT_API int gort_mutex_lock(gort_mutex_t *m);
/* Returns 0 if it took the lock, -EBUSY if not, -EINVAL. Any context. */
GORT_API int gort_mutex_trylock(gort_mutex_t *m);
/* Unlocks m; as in Go any goroutine or thread may unlock a mutex another
 * one locked. Any context. Returns 0, -EINVAL, or -EPERM if the mutex is
 * not locked (Go throws). */
GORT_API int gort_mutex_unlock(gort_mutex_t *m);

/* Go's sync.RWMutex: writers exclude everyone; a blocked writer keeps new
 * readers out, so writers do not starve. */
typedef struct gort_rwmutex {
    uint64_t opaque[20];
} gort_rwmutex_t;
#define GORT_RWMUTEX_INIT                                                                          \
    {                                                                                              \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }
/* rlock / lock: take a read (shared) or write (exclusive) lock, parking
 * until it is granted. Contexts: goroutine. Return 0, -EINVAL, -EPERM from
 * a foreign thread. runlock / unlock: release one; any context. Return 0,
 * -EINVAL, or -EPERM if no such lock is held (Go throws). Undefined: a
 * runlock by a goroutine that holds no read lock while others do (it cannot
 * be told apart from theirs). */
GORT_API int gort_rwmutex_rlock(gort_rwmutex_t *rw);
GORT_API int gort_rwmutex_runlock(gort_rwmutex_t *rw);
GORT_API int gort_rwmutex_lock(gort_rwmutex_t *rw);
GORT_API int gort_rwmutex_unlock(gort_rwmutex_t *rw);

/* Go's sync.Cond (with the mutex passed to wait). */
typedef struct gort_cond {
    uint64_t opaque[4];
} gort_cond_t;
#define GORT_COND_INIT                                                                             \
    {                                                                                              \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }
/* Atomically unlocks m and parks until signalled; relocks m before
 * returning. Wait in a loop that checks the condition, as in Go.
 * Contexts: goroutine. Returns 0, -EINVAL, -EPERM from a foreign thread or
 * if m is not locked. Undefined: m locked by someone else than the caller. */
GORT_API int gort_cond_wait(gort_cond_t *c, gort_mutex_t *m);
/* Wake one waiter (signal) or all of them (broadcast), if any; the mutex
 * need not be held. Any context. Return 0 or -EINVAL. */
GORT_API int gort_cond_signal(gort_cond_t *c);
GORT_API int gort_cond_broadcast(gort_cond_t *c);

/* Go's sync.Once. */
typedef struct gort_once {
    uint64_t opaque[8];
} gort_once_t;
#define GORT_ONCE_INIT                                                                             \
    {                                                                                              \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }
/* Runs fn(arg) if no call on this once has run it; every caller returns
 * after it has completed. Contexts: goroutine. Returns 0, -EINVAL (NULL o
 * or fn), -EPERM from a foreign thread. Undefined: fn calling
 * gort_once_do on the same once (it deadlocks, as in Go). */
GORT_API int gort_once_do(gort_once_t *o, gort_fn fn, void *arg);

/* A counting semaphore (Go's runtime semaphore, FIFO). */
typedef struct gort_sema {
    uint64_t opaque[4];
} gort_sema_t;
#define GORT_SEMA_INIT                                                                             \
    {                                                                                              \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }
/* Sets the count (GORT_SEMA_INIT is a count of 0). Any context; a NULL s is
 * ignored. Undefined: while the semaphore is in use. */
GORT_API void gort_sema_init(gort_sema_t *s, uint32_t count);
/* Takes a unit, parking until one is available; waiters are served in FIFO
 * order. Contexts: goroutine. Returns 0, -EINVAL, -EPERM from a foreign
 * thread. */
GORT_API int gort_sema_acquire(gort_sema_t *s);
/* 0 if a unit was taken, -EAGAIN if the count was zero, -EINVAL. Any
 * context. */
GORT_API int gort_sema_try_acquire(gort_sema_t *s);
/* Adds a unit, waking the first waiter if any. Any context. Returns 0,
 * -EINVAL, -EOVERFLOW if the count is UINT32_MAX. */
GORT_API int gort_sema_release(gort_sema_t *s);

/* ------------------------------------------------------------------------ */
/* Descriptor I/O (the netpoller)                                           */
/* ------------------------------------------------------------------------ */

/* I/O on sockets, pipes and other pollable descriptors that parks the
 * goroutine, not its thread (Go's netpoller, on epoll). A gort_fd_t owns a
 * descriptor from gort_fd_open until gort_fd_close; at most one goroutine
 * at a time reads and one writes (others queue, in order). A dedicated
 * goroutine may use them too: it parks on its own thread and the poller
 * wakes that thread directly.
 *
 * Deadlines are absolute, on the gort_now_ns clock; GORT_NO_DEADLINE waits
 * for ever. A deadline in the past still tries the call once. */
typedef struct gort_fd gort_fd_t;
#define GORT_NO_DEADLINE INT64_MAX
enum { GORT_FD_READ = 1, GORT_FD_WRITE = 2 };

/* Takes ownership of fd (sets O_NONBLOCK and registers it with the poller).
 * Contexts: goroutine. Returns 0, -EINVAL, -EPERM from a foreign thread or
 * for a descriptor epoll cannot poll (a regular file or a directory),
 * -EBADF, -ENOMEM, or another -errno from epoll. */
GORT_API int gort_fd_open(gort_fd_t **out, int fd);
/* Closes it: calls in progress and waiting goroutines return -ECANCELED,
 * later calls -EBADF; the descriptor itself is closed when the last call in
 * progress returns. The handle must not be used after that. Any context
 * while gort_main runs. Returns 0, -EINVAL, -EBADF if already closed.
 * Every gort_fd_t must be closed before gort_main returns; descriptors still
 * open then stay open but their handles are gone. */
GORT_API int gort_fd_close(gort_fd_t *f);
/* The descriptor, for setsockopt and the like (not for read or write: they
 * would see EAGAIN). Any context. Returns it, or -EINVAL. */
GORT_API int gort_fd_fileno(gort_fd_t *f);
/* read(2): returns the bytes read (0 at end of file), or -errno; -ETIMEDOUT
 * at the deadline, -ECANCELED if closed meanwhile. Contexts: goroutine. */
GORT_API ssize_t gort_read(gort_fd_t *f, void *buf, size_t n, int64_t deadline_ns);
/* Writes all n bytes (waiting for room as needed). Returns n; if an error
 * or the deadline comes after part was written, the count written (the
 * next call reports the error); else -errno, -ETIMEDOUT, -ECANCELED, -EPIPE
 * (a closed peer; SIGPIPE is the program's business, e.g. MSG_NOSIGNAL or
 * SIG_IGN). Contexts: goroutine. */
GORT_API ssize_t gort_write(gort_fd_t *f, const void *buf, size_t n, int64_t deadline_ns);
/* accept4(2) with SOCK_NONBLOCK | SOCK_CLOEXEC, then gort_fd_open of the
 * new socket. addr / addrlen as for accept(2) (may be NULL). Contexts:
 * goroutine. Returns 0, or -errno as gort_read. */
GORT_API int gort_accept(gort_fd_t *l, gort_fd_t **out, struct sockaddr *addr, socklen_t *addrlen,
                         int64_t deadline_ns);
/* connect(2), waiting for a non-blocking connect to finish. Contexts:
 * goroutine. Returns 0, or -errno (-ECONNREFUSED, -ETIMEDOUT, ...). */
GORT_API int gort_connect(gort_fd_t *f, const struct sockaddr *addr, socklen_t addrlen,
                          int64_t deadline_ns);
/* Waits until the descriptor is readable (GORT_FD_READ) or writable
 * (GORT_FD_WRITE), for calls made outside gort (recvmsg, sendfile...).
 * Hang-ups and errors count as ready. Contexts: goroutine. Returns the event
 * asked for, -EINVAL for another value, or -errno as gort_read. */
GORT_API int gort_fd_wait(gort_fd_t *f, int events, int64_t deadline_ns);

#ifdef __cplusplus
}
#endif
#endif /* GORT_H */
