/*
 * sysmon.c - the system monitor (Go's sysmon, retake, preemptone) and
 * asynchronous preemption.
 *
 * sysmon is a thread of its own that never holds a P. Its loop (Go's):
 * sleep 20 us while it keeps finding something to do; after 50 idle rounds
 * double the sleep each round up to 10 ms; when every P is idle and the
 * global queue empty and no timer due, sleep deeply on sched.sysmonnote
 * (until the next timer or 60 s) until entersyscall or exitsyscall wakes
 * it. A timer more than 1 ms overdue gets an M with an idle P (Go's
 * startm(nil, false)). Not in Go: a thread that could not be created
 * (gort__newosproc: EAGAIN) leaves its P idle and the P's goroutines on the
 * global queue; while goroutines wait there with a P idle and no M
 * spinning, sysmon calls wakep each round, which creates the thread once
 * it can (and the overdue-timer rule does the same for the P's timers).
 * Each round it calls retake:
 *  - a P in Psyscall whose syscalltick has not changed since the last
 *    round (so it has sat in one syscall for at least one tick, >= 20 us)
 *    is taken back with a CAS and handed off (handoffp), unless there is no
 *    other work (its queue is empty and some M is spinning or some P idle)
 *    and the call has lasted less than 10 ms;
 *  - a goroutine that has run for 10 ms without its P's schedtick moving
 *    is asked to yield (preemptone): g->preempt is set, and every runtime
 *    call checks it (gort__api_g). A goroutine that declared itself
 *    preemptible (gort_preemptible_begin) is also sent SIGURG with tgkill.
 *    Locked goroutines yield too, keeping their thread (locked_can_yield);
 *    dedicated ones are never asked.
 *
 * Asynchronous preemption: the SIGURG handler runs on the goroutine's own
 * stack (no SA_ONSTACK) and switches goroutines from inside the handler
 * (mcall(MCALL_PREEMPT)) only if the interrupted goroutine is the one the
 * signal was meant for, it is inside its preemptible region, and the handler
 * runs on its stack. The goroutine's registers are in the kernel's signal
 * frame on its stack; when it is resumed, possibly on another thread, the
 * handler returns and sigreturn restores them. The handler is SA_NODEFER so
 * the thread's signal mask is the same before and after. Inside a
 * preemptible region the goroutine promises not to call gort or anything
 * that takes locks (malloc, stdio): a switch there could deadlock or resume
 * a lock holder on another thread. This is why async preemption is opt-in.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

#define RELAXED memory_order_relaxed

enum { FORCE_PREEMPT_NS = 10 * 1000 * 1000, OVERDUE_TIMER_NS = 1000 * 1000 };

static pthread_t sysmon_thread;
static bool sysmon_running;

void gort__preemptone(gort__p_t *pp)
{
    /* acquire: pair with the release stores in acquirep and execute. */
    gort__m_t *mp = atomic_load_explicit(&pp->m, memory_order_acquire);
    if (!mp)
        return;
    gort__g_t *gp = atomic_load_explicit(&mp->curg, memory_order_acquire);
    if (!gp)
        return;
    atomic_store_explicit(&gp->preempt, true, RELAXED);
    gort__stat_add(&gort__sched.preempt_requests, 1);
    if (atomic_load_explicit(&gp->preemptible, memory_order_relaxed)) {
        gort__stat_add(&gort__sched.preempt_signals, 1);
        int saved = errno;
        syscall(SYS_tgkill, getpid(), mp->procid, SIGURG);
        errno = saved;
    }
}

static uint32_t retake(int64_t now)
{
    uint32_t n = 0;
    for (int32_t i = 0; i < gort__rt.gomaxprocs; i++) {
        gort__p_t *pp = gort__rt.allp[i];
        uint32_t s = atomic_load_explicit(&pp->status, RELAXED);
        bool sysretake = false;
        if (s == Prunning || s == Psyscall) {
            uint32_t t = atomic_load_explicit(&pp->schedtick, RELAXED);
            if (pp->sysmontick.schedtick != t) {
                pp->sysmontick.schedtick = t;
                pp->sysmontick.schedwhen = now;
            } else if (pp->sysmontick.schedwhen + FORCE_PREEMPT_NS <= now) {
                gort__preemptone(pp);
                sysretake = true; /* preemption cannot work on a P in a syscall */
            }
        }
        if (s != Psyscall)
            continue;
        uint32_t t = atomic_load_explicit(&pp->syscalltick, RELAXED);
        if (!sysretake && pp->sysmontick.syscalltick != t) {
            pp->sysmontick.syscalltick = t;
            pp->sysmontick.syscallwhen = now;
            continue;
        }
        /* Do not retake if there is no other work to do, but do eventually
         * so sysmon can deep-sleep. */
        if (gort__runqempty(pp) &&
            atomic_load(&gort__sched.nmspinning) + atomic_load(&gort__sched.npidle) > 0 &&
            pp->sysmontick.syscallwhen + FORCE_PREEMPT_NS > now)
            continue;
        uint32_t expect = Psyscall;
        /* acquire: pairs with the release store in entersyscall. */
        if (atomic_compare_exchange_strong_explicit(&pp->status, &expect, Pidle,
                                                    memory_order_acquire, RELAXED)) {
            gort__tick(&pp->syscalltick);
            gort__stat_add(&gort__sched.sysmon_retakes, 1);
            n++;
            gort__handoffp(pp);
        }
    }
    return n;
}

static void *sysmon(void *arg)
{
    (void)arg;
    uint32_t idle = 0, delay = 0;
    int64_t lasttrace = gort__nanotime();
    for (;;) {
        if (idle == 0)
            delay = 20;
        else if (idle > 50)
            delay *= 2;
        if (delay > 10000)
            delay = 10000;
        gort__usleep(delay);
        if (gort__shutting_down())
            return NULL;
        int64_t now = gort__nanotime();
        atomic_store_explicit(&gort__coarse_now, now, RELAXED);
        if (gort__schedtrace_ms > 0 && now - lasttrace >= (int64_t)gort__schedtrace_ms * 1000000) {
            lasttrace = now;
            gort__schedtrace(gort__scheddetail, 2);
        }
        gort__checkdead_confirm();
        /* Both uses of the first timer below need an idle P: with none,
         * the heaps are not read. */
        int32_t npidle = atomic_load(&gort__sched.npidle);
        int64_t next = npidle > 0 ? gort__timers_nextwhen() : 0;
        /* Deep sleep when every P is idle, unless tracing or a timer is due
         * (Go's rules), or goroutines wait on the global queue (see below). */
        if (gort__schedtrace_ms <= 0 && npidle == gort__rt.gomaxprocs &&
            atomic_load_explicit(&gort__sched.runqsize, RELAXED) == 0 &&
            (next == 0 || next > now)) {
            gort__lock(&gort__sched.lock);
            if (!gort__shutting_down() && atomic_load(&gort__sched.npidle) == gort__rt.gomaxprocs &&
                gort__sched.runqsize == 0) {
                __atomic_store_n(&gort__sched.sysmonwait, true, __ATOMIC_RELAXED);
                gort__unlock(&gort__sched.lock);
                int64_t sleep = 60ll * 1000 * 1000 * 1000;
                if (__atomic_load_n(&gort__sched.deadsuspect, __ATOMIC_RELAXED))
                    sleep = 20 * 1000 * 1000; /* confirm the suspicion soon */
                next = gort__timers_nextwhen();
                if (next) {
                    int64_t left = next - gort__nanotime();
                    if (left < sleep)
                        sleep = left > 0 ? left : 0;
                }
                bool woken = gort__notetsleep(&gort__sched.sysmonnote, sleep);
                gort__lock(&gort__sched.lock);
                __atomic_store_n(&gort__sched.sysmonwait, false, __ATOMIC_RELAXED);
                gort__noteclear(&gort__sched.sysmonnote);
                gort__unlock(&gort__sched.lock);
                if (woken) {
                    gort__stat_add(&gort__sched.sysmon_wakeups, 1);
                    idle = 0;
                    delay = 20;
                }
                continue;
            }
            gort__unlock(&gort__sched.lock);
        }
        /* Poll the network if nobody has for 10 ms (Go's sysmon). */
        gort__g_t *list = gort__netpoll_try(10 * 1000 * 1000);
        if (list) {
            gort__netpoll_inject(list);
            idle = 0;
        }
        if (retake(now) != 0)
            idle = 0;
        else
            idle++;
        /* Not in Go, which throws when it cannot create a thread: here a
         * failed creation (gort__newosproc) leaves its P idle and the P's
         * goroutines on the global queue. Goroutines waiting there with a P
         * idle and no M looking for work (wakep's own test) mean such a
         * failure: try again, every round (at most every 10 ms once idle). */
        if (atomic_load_explicit(&gort__sched.runqsize, RELAXED) > 0)
            gort__wakep();
        /* Go's sysmon: timers that should have run already (a P that runs
         * one goroutine for long, or, here, no M at all after a failed
         * creation) get an M with an idle P. "Already" is 1 ms overdue, so
         * that the timer sleeper, waking at the due time, is not doubled. */
        if (next != 0 && now - next > OVERDUE_TIMER_NS)
            gort__startm(NULL, false); /* no idle P by now: nothing */
    }
}

int gort__sysmon_start(void)
{
    int saved = errno;
    int r = pthread_create(&sysmon_thread, NULL, sysmon, NULL);
    errno = saved;
    if (r != 0)
        return -r;
    sysmon_running = true;
    return 0;
}

/* At shutdown (after sched.shutdown is set). */
void gort__sysmon_stop(void)
{
    if (!sysmon_running)
        return;
    gort__wake_sysmon();
    pthread_join(sysmon_thread, NULL);
    sysmon_running = false;
}

/* ---- asynchronous preemption ---- */

/* A locked G yields as in Go (gopreempt_m: to the global queue; its M
 * then gives the P away in stoplockedm and sleeps until the M that finds
 * the G hands the P back, startlockedm), so that a locked CPU hog does not
 * starve its P's other goroutines and timers. That needs another M to take
 * the P: an idle one, or one made now. Where the OS refuses a thread the G
 * keeps the P and runs on (Go would die). Only a snapshot: if that idle M
 * is taken before stoplockedm hands the P over and no thread can be made
 * then either, the G waits in the global queue until an M looks there (a
 * narrow race, on a machine already out of threads). */
static bool locked_can_yield(void)
{
    gort__lock(&gort__sched.lock);
    bool have = gort__sched.nmidle > 0;
    gort__unlock(&gort__sched.lock);
    return have || gort__newm2(NULL, false, true);
}

static _Atomic int preempt_sig_installed;

static void on_preempt(int sig, siginfo_t *si, void *uctx)
{
    (void)sig;
    (void)si;
    (void)uctx;
    gort__m_t *mp = gort__getm();
    if (!mp)
        return;
    gort__g_t *gp = atomic_load_explicit(&mp->curg, RELAXED);
    if (!gp || !atomic_load_explicit(&gp->preemptible, memory_order_relaxed) ||
        !atomic_load_explicit(&gp->preempt, RELAXED))
        return;
    /* Are we on gp's stack (not g0's, not an alternate signal stack)? */
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    if (sp <= gp->stack.lo || sp >= gp->stack.hi)
        return;
    int saved = errno;
    atomic_store_explicit(&gp->preempt, false, RELAXED);
    atomic_store_explicit(&gp->preemptible, false,
                          memory_order_relaxed); /* the runtime code below is not preemptible */
    /* The region holds no lock (its contract), so this may take sched.lock
     * and make a thread, as the switch below takes locks anyway; a nested
     * SIGURG (SA_NODEFER) returns above, since preemptible is off. */
    if (gp->lockedm && !gp->dedicated && !locked_can_yield()) {
        atomic_store_explicit(&gp->preemptible, true, memory_order_relaxed);
        errno = saved;
        return;
    }
    gort__stat_add(&mp->stats.preempts_async, 1);
    gort__mcall(MCALL_PREEMPT);
    atomic_store_explicit(&gp->preemptible, true,
                          memory_order_relaxed); /* back in the region; maybe on another thread */
    errno = saved;
}

static int install_preempt_signal(void)
{
    int expect = 0;
    if (!atomic_compare_exchange_strong(&preempt_sig_installed, &expect, 1))
        return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_preempt;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    int saved = errno;
    int r = sigaction(SIGURG, &sa, NULL);
    errno = saved;
    if (r != 0) {
        atomic_store(&preempt_sig_installed, 0);
        return -EINVAL;
    }
    return 0;
}

/* Yields if sysmon asked this goroutine to (Go's preemption at a function
 * prologue; here at a runtime call). */
void gort__preempt_park(gort__g_t *gp)
{
    atomic_store_explicit(&gp->preempt, false, RELAXED);
    if (GORT__UNLIKELY(gort__gcwaiting())) {
        if (!gort__is_world_owner(gp))
            gort__stw_safepoint(gp); /* the world is stopping: stop here */
        return;
    }
    if (gp->dedicated)
        return; /* the kernel schedules it, on its own P */
    if (gp->lockedm && !locked_can_yield())
        return;
    gort__stat_add(&gort__getm()->stats.preempts_sync, 1);
    gort__mcall(MCALL_PREEMPT);
}

GORT_API int gort_preempt_check(void)
{
    return gort__api_g() ? 0 : -EPERM;
}

GORT_API int gort_preemptible_begin(void)
{
    gort__g_t *gp = gort__api_g();
    if (!gp)
        return -EPERM;
    int r = install_preempt_signal();
    if (r)
        return r;
    atomic_store_explicit(&gp->preemptible, true, memory_order_relaxed);
    return 0;
}

GORT_API int gort_preemptible_end(void)
{
    gort__g_t *gp = gort__getg();
    if (!gp)
        return -EPERM;
    atomic_store_explicit(&gp->preemptible, false, memory_order_relaxed);
    /* A request that arrived meanwhile is honoured now. */
    if (atomic_load_explicit(&gp->preempt, RELAXED))
        gort__preempt_park(gp);
    return 0;
}
