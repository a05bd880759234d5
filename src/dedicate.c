/*
 * dedicate.c - DedicateOSThread / UndedicateOSThread
 * (../shared/spec/dedicate-os-thread.md).
 *
 * gort_dedicate_os_thread() wires the calling goroutine to its current
 * thread (it implies LockOSThread) and gives that thread a P of its own that
 * is not counted against GOMAXPROCS. The P the thread held before goes back
 * to the normal scheduler (handoffp), so GOMAXPROCS normal goroutines can
 * still run. From then on the kernel schedules the goroutine: it never
 * migrates, nothing else runs on its thread, and waking it is at most one
 * futex wake. Each corollary of the spec and where it lives:
 *
 *  - allp + dedicated Ps + slack: dedicated Ps live in their own list
 *    (rt.dedall, free ones in rt.dedfree, dpget/dpput), never in allp, so
 *    dedicating needs no stop-the-world and every GOMAXPROCS-based rule
 *    (the spinning limit, globrunqget's batch, sysmon's all-idle test,
 *    handoffp) and every walk of allp (stealing, retake, the spinning
 *    recheck, the timer sleeper) sees only normal Ps.
 *  - ready of a dedicated G wakes its thread directly: gort__ready calls
 *    ready_dedicated(), which marks the G runnable and, only if its M is
 *    asleep, issues one futex wake. No run queue, no wakep, no
 *    startlockedm, no migration.
 *  - a dedicated G that blocks keeps its P: its M does not call stoplockedm
 *    (no handoffp); findrunnable on a dedicated P waits for its own G only
 *    (findrunnable_dedicated: no global queue, no stealing, no netpoll).
 *    entersyscall / entersyscallblock / exitsyscall keep the P and do not
 *    wake sysmon (syscall.c).
 *  - sysmon never retakes or preempts a dedicated P: retake walks allp only.
 *  - goroutines created (or readied) by a dedicated G go to the global run
 *    queue, then wakep (gort__newproc, gort__ready), because nobody steals
 *    from a dedicated P.
 *  - undedicate returns the G to normal scheduling: the thread takes an
 *    idle normal P and the G keeps running on it; if there is none, the G
 *    goes to the global queue and the thread parks as an idle M. The
 *    dedicated P goes back to the free list (after moving its timers). A
 *    dedicate/undedicate cycle therefore creates no thread and no P in
 *    steady state.
 *  - a G that exits while dedicated ends its thread (as with LockOSThread).
 *
 * The wait (findrunnable_dedicated): the M first spins for up to
 * m->spin_ns, because on virtual machines waking a sleeping thread on
 * another CPU costs tens of microseconds; the budget adapts (doubles after
 * a spin that caught the wake-up, halves after one that did not, within
 * [SPIN_MIN_NS, rt.ded_spin_max_ns]) and spinning is skipped when no CPU
 * seems idle (spin_allowed). Then it sleeps on m->dstate (the Dekker pairing
 * is described in types.h) until its G is runnable or its P's first timer
 * is due.
 *
 * Nesting: m->dedicatecount; LockOSThread calls while dedicated only
 * change m->lockedext. When the last undedicate leaves lockedext > 0 the G
 * stays locked to the thread as an ordinary locked goroutine.
 *
 * Threads: dedicating turns the current thread into the dedicated one, so
 * the normal P it held needs another thread. gort_dedicate_os_thread makes
 * sure an idle M exists first (creating one if needed); if the OS refuses
 * (EAGAIN, RLIMIT_NPROC) it returns -EAGAIN and the goroutine carries on as
 * a normal goroutine.
 *
 * Locks: rt.dedlock (leaf) for the dedicated-P lists; sched.lock for the
 * idle lists, as elsewhere.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define RELAXED memory_order_relaxed

/* The adaptive spin's floor: several times the runtime's own wake-up hop
 * (~1 us), or a budget halved after a miss could never catch a wake again. */
#define SPIN_MIN_NS        ((int64_t)10 * 1000)
#define SPIN_DEFAULT_NS    ((int64_t)50 * 1000)
#define DEDICATED_PREALLOC 4 /* the slack: dedicated Ps made at start-up */

/* ---- dedicated Ps ---- */

/* A new dedicated P, on rt.dedall, belonging to gp (NULL: for the free
 * list). */
static gort__p_t *dpnew(gort__g_t *gp)
{
    size_t sz = (sizeof(gort__p_t) + 63) & ~(size_t)63;
    gort__p_t *pp = aligned_alloc(64, sz);
    if (!pp)
        return NULL;
    memset(pp, 0, sizeof *pp);
    pp->dedicated = true;
    atomic_init(&pp->status, Pidle);
    gort__lock(&gort__rt.dedlock);
    pp->id = GORT_MAXPROCS_MAX + gort__rt.ndedps++; /* never a normal P's id */
    pp->dedg = gp;
    pp->dall = gort__rt.dedall;
    gort__rt.dedall = pp;
    gort__unlock(&gort__rt.dedlock);
    return pp;
}

static gort__p_t *dpget(gort__g_t *gp)
{
    gort__lock(&gort__rt.dedlock);
    gort__p_t *pp = gort__rt.dedfree;
    if (pp) {
        gort__rt.dedfree = pp->dlink;
        pp->dedg = gp;
    }
    gort__unlock(&gort__rt.dedlock);
    return pp ? pp : dpnew(gp);
}

static void dpput(gort__p_t *pp)
{
    atomic_store_explicit(&pp->status, Pidle, RELAXED);
    gort__lock(&gort__rt.dedlock);
    pp->dedg = NULL;
    pp->dlink = gort__rt.dedfree;
    gort__rt.dedfree = pp;
    gort__unlock(&gort__rt.dedlock);
}

int gort__dedicate_init(const gort_config_t *cfg, int64_t spin_ns)
{
    (void)cfg;
    gort__rt.dedall = gort__rt.dedfree = NULL;
    gort__rt.ndedps = 0;
    atomic_store(&gort__rt.ndedicated, 0);
    gort__rt.ded_spin_max_ns = spin_ns;
    for (int i = 0; i < DEDICATED_PREALLOC; i++) {
        gort__p_t *pp = dpnew(NULL);
        if (!pp)
            return -ENOMEM;
        dpput(pp);
    }
    return 0;
}

void gort__dedicate_teardown(void)
{
    gort__p_t *pp = gort__rt.dedall;
    while (pp) {
        gort__p_t *next = pp->dall;
        gort__stackcache_clear(pp);
        gort__timers_free(pp);
        free(pp);
        pp = next;
    }
    gort__rt.dedall = gort__rt.dedfree = NULL;
    gort__rt.ndedps = 0;
}

/* Sums a counter over the dedicated Ps (stats.c); dedlock taken inside. */
void gort__dedicated_ps_foreach(void (*fn)(gort__p_t *pp, void *arg), void *arg)
{
    gort__lock(&gort__rt.dedlock);
    for (gort__p_t *pp = gort__rt.dedall; pp; pp = pp->dall)
        fn(pp, arg);
    gort__unlock(&gort__rt.dedlock);
}

/* checkdead: can a dedicated P still make progress by itself - a pending
 * timer, or its G runnable? The latter covers the window in which the G's
 * M counts itself asleep (findrunnable_dedicated raises ndedsleeping before
 * it looks at the G a last time): descheduled there, the M would otherwise
 * make a running program look dead. */
bool gort__dedicated_pending(void)
{
    bool pending = false;
    gort__lock(&gort__rt.dedlock);
    for (gort__p_t *pp = gort__rt.dedall; pp && !pending; pp = pp->dall)
        pending = atomic_load_explicit(&pp->timer0when, RELAXED) != 0 ||
                  (pp->dedg && atomic_load(&pp->dedg->atomicstatus) == Grunnable);
    gort__unlock(&gort__rt.dedlock);
    return pending;
}

/* ---- waking and waiting ---- */

/* Moves mp's dstate from SLEEPING to RUNNING and takes mp out of
 * ndedsleeping; true for the one caller that did (the M itself in
 * ded_awake, or one waker, which then owes it a futex wake). The plain load
 * first spares the line a locked write when the M is awake. seq_cst CAS:
 * pairs with the sleeper's CAS to SLEEPING and the waker's status store
 * (types.h). */
static bool ded_wake_claim(gort__m_t *mp)
{
    uint32_t sleeping = DSTATE_SLEEPING;
    if (atomic_load(&mp->dstate) != DSTATE_SLEEPING ||
        !atomic_compare_exchange_strong(&mp->dstate, &sleeping, DSTATE_RUNNING))
        return false;
    atomic_fetch_sub(&gort__sched.ndedsleeping, 1);
    return true;
}

/* The ready corollary: gp is dedicated and parked; make it runnable and
 * wake its thread if (and only if) it sleeps. */
void gort__ready_dedicated(gort__g_t *gp)
{
    gort__m_t *lmp = gp->lockedm;
    /* Timed: every wake-up that finds the thread asleep (the costly ones),
     * one in 16 of the others. Only a hint: the thread may fall asleep or
     * wake between this load and the status store. */
    if (GORT_LATENCY_STATS && (atomic_load_explicit(&lmp->dstate, RELAXED) == DSTATE_SLEEPING ||
                               (++gp->latsample & GORT__LAT_SAMPLE_DED_MASK) == 0))
        gp->readyat = gort__nanotime();
    /* seq_cst: pairs with the sleeper's seq_cst CAS of dstate and its
     * reload of our status (see types.h). */
    gort__store_seqcst(&gp->atomicstatus, Grunnable);
    if (ded_wake_claim(lmp)) {
        atomic_fetch_add_explicit(&gort__sched.ded_direct_wakes, 1, RELAXED);
        atomic_fetch_add_explicit(&gort__sched.progress, 1, RELAXED);
        gort__futexwakeup(&lmp->dstate, 1);
    }
}

bool gort__spin_allowed(int self)
{
    int32_t busy = gort__rt.gomaxprocs - atomic_load_explicit(&gort__sched.npidle, RELAXED) +
                   atomic_load_explicit(&gort__rt.ndedicated, RELAXED) -
                   atomic_load_explicit(&gort__sched.ndedsleeping, RELAXED);
    return busy - self < gort__rt.ncpu;
}

static bool g_runnable(const void *gp)
{
    return atomic_load(&((const gort__g_t *)gp)->atomicstatus) == Grunnable;
}

/* The adaptive spin budget of a dedicated M: doubled (up to the bound)
 * after a spin that caught its wake-up, halved (down to SPIN_MIN_NS) after
 * one that did not. Written only when it changes: wakers read the line
 * (dstate). The M itself. */
void gort__ded_spin_adapt(gort__m_t *mp, bool caught)
{
    if (caught) {
        gort__stat_add(&mp->stats.ded_spin_catches, 1);
        if (mp->spin_ns < gort__rt.ded_spin_max_ns) {
            mp->spin_ns *= 2;
            if (mp->spin_ns > gort__rt.ded_spin_max_ns)
                mp->spin_ns = gort__rt.ded_spin_max_ns;
        }
        return;
    }
    int64_t floor = SPIN_MIN_NS < gort__rt.ded_spin_max_ns ? SPIN_MIN_NS : gort__rt.ded_spin_max_ns;
    if (mp->spin_ns > floor)
        mp->spin_ns = mp->spin_ns / 2 < floor ? floor : mp->spin_ns / 2;
}

/* A dedicated M leaves its sleep (or gives it up): if no waker claimed the
 * wake-up first, it takes itself out of ndedsleeping. */
static void ded_awake(gort__m_t *mp)
{
    (void)ded_wake_claim(mp);
}

/* findrunnable for a dedicated P: only its own G, its own timers; no
 * global queue, no stealing, no netpoll. Returns NULL at shutdown. */
gort__g_t *gort__findrunnable_dedicated(gort__m_t *mp)
{
    gort__g_t *gp = mp->lockedg;
    gort__p_t *pp = mp->p;
    /* We arrive still counted as running (dedrun_begin) when gp parked: a
     * wake-up caught by the spin then runs gp without touching the shared
     * count. We leave the count before anything that can wait: a stop, a
     * futex sleep, shutdown. A stop meanwhile waits for our spin to notice
     * it (the spin loop reads gcwaiting). */
    for (;;) {
        if (gort__shutting_down()) {
            gort__dedrun_end(mp);
            return NULL;
        }
        if (GORT__UNLIKELY(gort__gcwaiting())) {
            gort__dedrun_end(mp);
            gort__ded_gcwait(); /* no timers while the world is stopped */
        }
        gort__checktimers(pp, 0); /* a timer may ready gp */
        if (g_runnable(gp))
            return gp;
        if (mp->spin_ns > 0 && gort__spin_allowed(1)) { /* busy counts us */
            int r = gort__ded_spin(mp, g_runnable, gp);
            if (r == 1)
                return gp;
            if (r < 0)
                continue; /* a stop, shutdown or due timer: handled at the top */
        }
        gort__dedrun_end(mp); /* about to sleep: stopped for any stop */
        /* Counted asleep before dstate says so: whoever then moves dstate
         * from SLEEPING to RUNNING (a waker, or this M in ded_awake) takes
         * it out of the count, so checkdead never counts a woken M that has
         * not run yet as asleep (on a loaded machine that can last longer
         * than the deadlock check's grace: a false "deadlock"). */
        atomic_fetch_add(&gort__sched.ndedsleeping, 1);
        uint32_t running = DSTATE_RUNNING;
        atomic_compare_exchange_strong(&mp->dstate, &running, DSTATE_SLEEPING);
        if (g_runnable(gp) || gort__shutting_down()) {
            ded_awake(mp);
            continue;
        }
        int64_t when = atomic_load_explicit(&pp->timer0when, RELAXED), ns = -1;
        if (when) {
            ns = when - gort__nanotime();
            if (ns <= 0) {
                ded_awake(mp);
                continue;
            }
        }
        gort__stat_add(&mp->stats.ded_futex_sleeps, 1);
        gort__lock(&gort__sched.lock);
        gort__checkdead();
        gort__unlock(&gort__sched.lock);
        gort__futexsleep(&mp->dstate, DSTATE_SLEEPING, ns);
        ded_awake(mp);
    }
}

/* Shutdown: wake every sleeping dedicated M. sched.lock held. */
void gort__wake_dedicatedms(void)
{
    /* Only dstate is read: m->dedicated belongs to the M itself. A
     * non-dedicated M's dstate is never SLEEPING, so its CAS fails. */
    for (gort__m_t *mp = gort__sched.allm; mp; mp = mp->alllink)
        if (ded_wake_claim(mp))
            gort__futexwakeup(&mp->dstate, 1);
}

/* Moves every timer of from onto to's heap (Go's moveTimers). */
void gort__movetimers(gort__p_t *from, gort__p_t *to)
{
    for (;;) {
        gort__lock(&from->timerslock);
        gort__timer_t *t = from->ntimers ? from->timers[from->ntimers - 1] : NULL;
        gort__unlock(&from->timerslock);
        if (!t)
            return;
        /* deltimer waits for a firing in progress; re-add on to. */
        if (gort__deltimer(t))
            gort__addtimer_on(to, t);
    }
}

/* A dedicated G's thread is leaving dedicated mode for good (the G exits or
 * undedicates): give the dedicated P back. */
static void drop_dedicated_p(gort__m_t *mp, gort__p_t *target)
{
    gort__p_t *dp = gort__releasep(mp);
    gort__movetimers(dp, target ? target : gort__rt.allp[0]);
    dpput(dp);
    mp->dedicated = false;
    mp->dedicatecount = 0;
    atomic_fetch_sub(&gort__rt.ndedicated, 1);
}

/* mexit of a dedicated M (its G exited while dedicated). */
void gort__dedicated_mexit(gort__m_t *mp)
{
    drop_dedicated_p(mp, NULL);
}

/* Makes sure an idle M exists to take over the normal P we give up. */
static int ensure_spare_m(gort__m_t *self)
{
    /* Threads made from now on must not be cloned from this one (it may
     * have changed its affinity, namespaces, credentials). */
    if (gort__start_template_thread() != 0)
        return -EAGAIN;
    /* Only threads on the idle list count: one that is elsewhere at this
     * moment (the timer sleeper, or about to park after giving up a P) is
     * missed, and then one more thread is made for the pool, once: the pool
     * does not grow per cycle. */
    gort__lock(&gort__sched.lock);
    bool have = gort__sched.nmidle > 0;
    gort__unlock(&gort__sched.lock);
    if (have) {
        gort__stat_add(&self->stats.ded_threads_reused, 1);
        return 0;
    }
    return gort__newm2(NULL, false, true) ? 0 : -EAGAIN; /* wait: see newm2 */
}

GORT_API int gort_dedicate_os_thread(void)
{
    gort__g_t *gp = gort__api_g();
    if (!gp)
        return -EPERM;
    gort__m_t *mp = gp->m;
    if (gort__is_world_owner(gp))
        return -EBUSY; /* the world is stopped: no P may change hands */
    if (mp->dedicated) {
        if (mp->dedicatecount == UINT32_MAX)
            return -EOVERFLOW;
        mp->dedicatecount++;
        gort__stat_add(&mp->stats.dedicate_calls, 1);
        return 0;
    }
    int err = ensure_spare_m(mp);
    if (err)
        return err;
    gort__p_t *dp = dpget(gp);
    if (!dp)
        return -ENOMEM;
    gort__stat_add(&mp->stats.dedicate_calls, 1);
    if (mp->spin_ns == 0)
        mp->spin_ns = gort__rt.ded_spin_max_ns;
    mp->dedicated = true;
    mp->dedicatecount = 1;
    mp->lockedg = gp;
    gp->lockedm = mp;
    gp->dedicated = true;
    atomic_store_explicit(&mp->dstate, DSTATE_RUNNING, RELAXED);
    atomic_fetch_add(&gort__rt.ndedicated, 1);
    gort__p_t *pp = gort__releasep(mp);
    gort__acquirep(mp, dp);
    /* The normal P goes on without us: to an M if there is work, else
     * idle without waking a spinner (handoffp_idle; new work wakes an M by
     * wakep), the last running P leaving a poller behind. */
    if (!gort__runqempty(pp) || atomic_load_explicit(&gort__sched.runqsize, RELAXED) != 0)
        gort__handoffp(pp);
    else
        gort__handoffp_idle(pp);
    /* From here on a stop counts us through ndedrunning (stw.c); if one
     * is under way, wait for the start on this thread. */
    gort__dedrun_begin(mp);
    return 0;
}

GORT_API int gort_undedicate_os_thread(void)
{
    gort__g_t *gp = gort__api_g();
    if (!gp)
        return -EPERM;
    gort__m_t *mp = gp->m;
    if (!mp->dedicated)
        return 0; /* like UnlockOSThread: a no-op */
    if (gort__is_world_owner(gp))
        return -EBUSY;
    gort__stat_add(&mp->stats.undedicate_calls, 1);
    if (--mp->dedicatecount > 0)
        return 0;
    gort__dedrun_end(mp); /* a normal G from here: stops through its P */
    gp->dedicated = false;
    if (mp->lockedext == 0 && mp->lockedint == 0) {
        mp->lockedg = NULL;
        gp->lockedm = NULL;
    }
    gort__lock(&gort__sched.lock);
    gort__p_t *np = gort__pidleget();
    gort__unlock(&gort__sched.lock);
    drop_dedicated_p(mp, np);
    if (np) {
        /* Fast path: keep running here on an idle normal P. */
        gort__acquirep(mp, np);
        return 0;
    }
    /* Every normal P is busy: queue globally; this thread parks as an idle M
     * (or, if still locked, waits in stoplockedm). */
    gort__mcall(MCALL_UNDEDICATE);
    return 0;
}
