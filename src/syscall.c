/*
 * syscall.c - the three ways a goroutine can make a blocking system call
 * (the spec's "Problems" section), as Go 1.19 does them (proc.go:
 * reentersyscall, entersyscallblock, exitsyscall, exitsyscallfast,
 * exitsyscall0, handoffp).
 *
 *  - raw: the goroutine just makes the call and keeps its P; at most
 *    GOMAXPROCS goroutines can be in such calls at once.
 *  - lazy (gort_entersyscall / gort_exitsyscall): the P stays attached in
 *    Psyscall. If the call returns quickly, exitsyscall takes the same P back
 *    with one CAS (exitsyscallfast). If it takes long and other work waits,
 *    sysmon retakes the P (retake, sysmon.c) after at least one sysmon tick
 *    (20 us) and hands it off.
 *  - eager (gort_entersyscallblock): the P is handed off at once (handoffp),
 *    which usually wakes another M (a futex wake); on return the goroutine
 *    needs any idle P, else it is queued globally and its M parks
 *    (exitsyscall0).
 *
 * While in a syscall the goroutine is Gsyscall, keeps its M (g->m), and
 * its M has no P (m->p == NULL; m->oldp remembers the P for the fast exit).
 * A goroutine between enter and exit must not call into gort.
 *
 * Races: a Psyscall P is taken by whoever CASes its status first: the
 * goroutine leaving the call (Psyscall -> Pidle, then wirep), or sysmon
 * (Psyscall -> Pidle, then handoffp). p->syscalltick, bumped on each enter
 * and exit, lets sysmon see that a P it looked at has since been through
 * another syscall (the ABA hazard Go documents).
 */
#include <errno.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

#define RELAXED memory_order_relaxed
#define ACQUIRE memory_order_acquire
#define RELEASE memory_order_release

/* Wakes sysmon if it is in its deep sleep (Go's entersyscall_sysmon). */
void gort__wake_sysmon(void)
{
    if (!__atomic_load_n(&gort__sched.sysmonwait, __ATOMIC_RELAXED))
        return;
    gort__lock(&gort__sched.lock);
    if (gort__sched.sysmonwait) {
        __atomic_store_n(&gort__sched.sysmonwait, false, __ATOMIC_RELAXED);
        gort__notewakeup(&gort__sched.sysmonnote);
    }
    gort__unlock(&gort__sched.lock);
}

/* Go's handoffp: pp was released by an M in a syscall or a locked M; start
 * an M for it if there is work it would find, else make it idle. The
 * conditions must agree with findrunnable's: if findrunnable would find a G
 * for pp, an M must be started. */
void gort__handoffp(gort__p_t *pp)
{
    gort__m_t *self = gort__getm();
    if (self)
        gort__stat_add(&self->stats.handoffs, 1);
    if (GORT__UNLIKELY(gort__gcwaiting())) {
        /* The world is stopping: the P stops here (Go's handoffp does the
         * same), keeping its run queue for the start. */
        gort__lock(&gort__sched.lock);
        if (gort__gcwaiting()) {
            gort__gcstop_p(pp);
            gort__unlock(&gort__sched.lock);
            return;
        }
        gort__unlock(&gort__sched.lock);
    }
    if (!gort__runqempty(pp) || atomic_load_explicit(&gort__sched.runqsize, RELAXED) != 0) {
        gort__startm(pp, false);
        return;
    }
    /* No local work; if nobody is spinning or idle, become the spinner that
     * looks for work elsewhere. */
    int32_t zero = 0;
    if (atomic_load(&gort__sched.nmspinning) + atomic_load(&gort__sched.npidle) == 0 &&
        atomic_compare_exchange_strong(&gort__sched.nmspinning, &zero, 1)) {
        gort__startm(pp, true);
        return;
    }
    gort__handoffp_idle(pp);
}

/* handoffp's end, for a P with no work of its own and a spinner or an idle
 * P elsewhere: it goes idle, unless work arrived on the global queue
 * meanwhile or it is the last running P and nobody polls the network;
 * its timers get a sleeper. Also dedicate's way to give up its normal P
 * (waking a spinner there would be a futex wake per dedicate for nothing). */
void gort__handoffp_idle(gort__p_t *pp)
{
    gort__lock(&gort__sched.lock);
    if (GORT__UNLIKELY(gort__gcwaiting())) { /* as in handoffp */
        gort__gcstop_p(pp);
        gort__unlock(&gort__sched.lock);
        return;
    }
    if (gort__sched.runqsize != 0) {
        gort__unlock(&gort__sched.lock);
        gort__startm(pp, false);
        return;
    }
    /* Go's rule: the last running P must not go idle while nobody polls the
     * network: goroutines parked on descriptors would wait for sysmon, which
     * does not poll in its deep sleep (every P idle). The M started finds
     * nothing and becomes the poller (findrunnable's sleep). */
    if (atomic_load_explicit(&gort__sched.npidle, RELAXED) == gort__rt.gomaxprocs - 1 &&
        gort__netpoll_inited() && gort__netpoll_waiting() && gort__netpoll_nobody_polls()) {
        gort__unlock(&gort__sched.lock);
        gort__startm(pp, false);
        return;
    }
    int64_t when = atomic_load_explicit(&pp->timer0when, RELAXED);
    gort__pidleput(pp);
    gort__unlock(&gort__sched.lock);
    if (when != 0)
        gort__timer_wake_for(when);
}

void gort__entersyscall(void)
{
    gort__m_t *mp = gort__getm();
    gort__g_t *gp = atomic_load_explicit(&mp->curg, RELAXED);
    gort__p_t *pp = mp->p;
    gort__stat_add(&mp->stats.syscalls_lazy, 1);
    gort__casgstatus(gp, Grunning, Gsyscall);
    if (pp->dedicated) {
        gort__dedrun_end(mp); /* spec: keep the P, no sysmon wake-up; stopped for a STW */
        return;
    }
    if (GORT__UNLIKELY(gort__gcwaiting()) && gort__is_world_owner(gp))
        return; /* it stopped the world: its P stays (exitsyscall sees m->p) */
    gort__wake_sysmon();
    mp->syscalltick = atomic_load_explicit(&pp->syscalltick, RELAXED);
    atomic_store_explicit(&pp->m, NULL, RELAXED);
    mp->oldp = pp;
    mp->p = NULL;
    /* seq_cst (a release would do for the P's hand-over, paired with the
     * acquire CAS of whoever takes it: exitsyscallfast or sysmon's
     * retake): the store then the load of gcwaiting pair with the
     * stopper's store of gcwaiting then its walk of Psyscall Ps (stw.c). */
    gort__store_seqcst(&pp->status, Psyscall);
    if (GORT__UNLIKELY(atomic_load(&gort__world.gcwaiting)))
        gort__entersyscall_gcwait(pp);
}

void gort__entersyscallblock(void)
{
    gort__m_t *mp = gort__getm();
    gort__g_t *gp = atomic_load_explicit(&mp->curg, RELAXED);
    gort__stat_add(&mp->stats.syscalls_eager, 1);
    gort__casgstatus(gp, Grunning, Gsyscall);
    gort__p_t *pp = mp->p;
    if (pp->dedicated) {
        gort__dedrun_end(mp); /* spec: a dedicated P is never handed off */
        return;
    }
    if (GORT__UNLIKELY(gort__gcwaiting()) && gort__is_world_owner(gp))
        return;
    gort__tick(&pp->syscalltick);
    mp->syscalltick = atomic_load_explicit(&pp->syscalltick, RELAXED);
    mp->oldp = NULL;
    gort__handoffp(gort__releasep(mp));
}

/* Go's exitsyscallfast: our old P if nobody took it, else any idle P. */
static bool exitsyscallfast(gort__m_t *mp, gort__p_t *oldp)
{
    uint32_t expect = Psyscall;
    /* acquire: pairs with the release store in entersyscall (and orders
     * our use of the P after the CAS). */
    if (oldp && atomic_load_explicit(&oldp->status, RELAXED) == Psyscall &&
        atomic_compare_exchange_strong_explicit(&oldp->status, &expect, Pidle, ACQUIRE, RELAXED)) {
        gort__acquirep(mp, oldp);
        if (mp->syscalltick != atomic_load_explicit(&oldp->syscalltick, RELAXED))
            gort__tick(&oldp->syscalltick);
        return true;
    }
    if (atomic_load_explicit(&gort__sched.npidle, RELAXED) > 0) {
        gort__lock(&gort__sched.lock);
        gort__p_t *pp = gort__pidleget();
        gort__unlock(&gort__sched.lock);
        if (pp) {
            gort__acquirep(mp, pp);
            gort__wake_sysmon();
            return true;
        }
    }
    return false;
}

void gort__exitsyscall(void)
{
    gort__m_t *mp = gort__getm();
    gort__g_t *gp = atomic_load_explicit(&mp->curg, RELAXED);
    if (mp->p) {
        /* The P never left: a dedicated P (spec: nothing to reacquire; we
         * may wait here for a stopped world to start, on this thread), or
         * the P of the goroutine that stopped the world. */
        if (mp->p->dedicated)
            gort__dedrun_begin(mp);
        gort__casgstatus(gp, Gsyscall, Grunning);
        return;
    }
    gort__p_t *oldp = mp->oldp;
    mp->oldp = NULL;
    if (exitsyscallfast(mp, oldp)) {
        gort__stat_add(&mp->stats.syscall_fast_exits, 1);
        gort__tick(&mp->p->syscalltick);
        gort__casgstatus(gp, Gsyscall, Grunning);
        return;
    }
    gort__stat_add(&mp->stats.syscall_slow_exits, 1);
    /* Slow path on g0: exitsyscall0 (sched.c). We resume on some M with a P. */
    gort__mcall(MCALL_EXITSYSCALL);
    mp = gort__getm();
    gort__tick(&mp->p->syscalltick);
}

/* ---- public ---- */

GORT_API int gort_entersyscall(void)
{
    if (!gort__api_g())
        return -EPERM;
    gort__entersyscall();
    return 0;
}

GORT_API int gort_entersyscallblock(void)
{
    if (!gort__api_g())
        return -EPERM;
    gort__entersyscallblock();
    return 0;
}

GORT_API int gort_exitsyscall(void)
{
    gort__g_t *gp = gort__getg();
    if (!gp)
        return -EPERM;
    if (gort__readgstatus(gp) != Gsyscall)
        return -EINVAL;
    gort__exitsyscall();
    return 0;
}

GORT_API long gort_syscall(int mode, long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
    gort__g_t *gp = gort__api_g();
    if (mode != GORT_SYSCALL_RAW && mode != GORT_SYSCALL_LAZY && mode != GORT_SYSCALL_EAGER)
        return -EINVAL;
    if (mode != GORT_SYSCALL_RAW && !gp)
        return -EPERM;
    if (mode == GORT_SYSCALL_LAZY)
        gort__entersyscall();
    else if (mode == GORT_SYSCALL_EAGER)
        gort__entersyscallblock();
    else if (gp)
        gort__stat_add(&gort__getm()->stats.syscalls_raw, 1);
    int saved = errno;
    long r = syscall(nr, a1, a2, a3, a4, a5, a6);
    if (r == -1)
        r = -errno;
    errno = saved;
    if (mode != GORT_SYSCALL_RAW)
        gort__exitsyscall();
    return r;
}
