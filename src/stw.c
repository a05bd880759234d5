/*
 * stw.c - stop-the-world, forEachP and GOMAXPROCS at run time (Go's
 * stopTheWorldWithSema, startTheWorldWithSema, gcstopm, preemptall,
 * forEachP, procresize), with the rule that makes them compatible with
 * DedicateOSThread: a dedicated P is never taken from its thread.
 *
 * Why Go shelved the spec here (reference/go-scheduler.md 1.8): Go's STW
 * CASes every Psyscall P to Pgcstop, so a dedicated thread in a long
 * syscall would lose its P and pay a hand-off plus two wake-ups on return,
 * at every GC. gort keeps dedicated Ps out of allp, and counts dedicated
 * goroutines instead of their Ps:
 *
 *  - Normal Ps stop exactly as in Go. The stopper sets world.gcwaiting and
 *    sched.stopwait = gomaxprocs, preempts every running G (preemptall), stops
 *    its own P, CASes Psyscall Ps to Pgcstop and takes every idle P. The
 *    rest stop themselves: findrunnable's top (gcstopm), handoffp, pidleput,
 *    and entersyscall (entersyscall_gcwait). Each decrements stopwait under
 *    sched.lock; whoever brings it to 0 wakes the stopper.
 *  - Dedicated goroutines are counted in dedcount.ndedrunning while they run
 *    user code (dedrun_begin / dedrun_end, around execute on a dedicated M,
 *    around syscalls, at dedicate and undedicate). A G that parks stays
 *    counted while its M spins for the wake-up, so a hop caught by the spin
 *    touches no shared line; the spin reads gcwaiting and the M leaves the
 *    count before it sleeps or waits (findrunnable_dedicated). A dedicated
 *    G that is blocked (its M asleep) or in a syscall is not counted, so it
 *    is stopped already and the stop costs nothing per such G: the stop is
 *    O(gomaxprocs), not O(threads). A running one stops at its next runtime call (gort__api_g
 *    reads gcwaiting): it leaves the count and waits on sched.stwseq on its
 *    own thread, keeping its P. One that wakes up or leaves a syscall during
 *    the stop sees gcwaiting after joining the count, leaves it again and
 *    waits the same way: no hand-off, no migration, and it continues on its
 *    own P when the world starts.
 *  - The stopper waits until stopwait == 0 and ndedrunning == stw_dedself
 *    (1 if the stopper is itself a running dedicated G), sleeping 100 us at
 *    a time on sched.stopwake and preempting everything again after each
 *    sleep (Go's loop in stopTheWorldWithSema).
 *
 * Pairings (all seq_cst, Dekker): the stopper's store of gcwaiting, then its
 * loads of ndedrunning and of every P's status, pair with a dedicated
 * thread's increment of ndedrunning then load of gcwaiting (dedrun_begin),
 * and with entersyscall's Psyscall store then load of gcwaiting: either the
 * stopper sees the running G / the Psyscall P, or the G sees the stop.
 * start stores gcwaiting = 0, bumps stwseq, then loads nstwwaiters; a
 * waiter increments nstwwaiters, then reloads gcwaiting: either the starter
 * sees the waiter and wakes it, or the waiter sees the start.
 *
 * The stopper (world.owner) keeps running with its P in Pgcstop until it
 * starts the world. It must not block meanwhile: parking is a fatal error
 * ("goroutine blocked with the world stopped"), yielding is a no-op, its
 * syscalls keep the P, dedicate/undedicate return -EBUSY.
 *
 * GOMAXPROCS (procresize, at start): allp has room for GORT_MAXPROCS_MAX Ps
 * and Ps are never freed before gort_main returns. Growing publishes new Ps
 * (allocated before the world stops, so that failure is a clean -ENOMEM);
 * shrinking moves each removed P's run queue to the head of the global
 * queue, its timers to a surviving P, its free Gs to the global list and its
 * stack cache to the pool, and marks it Pdead. Dedicated Ps are not in allp
 * and are never touched.
 *
 * forEachP: gort_for_each_p stops the world, calls fn for every normal P
 * and every dedicated P in use (from the caller's thread, dedicated Ps
 * left on theirs), and starts it again. Go's forEachP instead lets each P run
 * fn at its own safe point without a global stop, and hands off Psyscall Ps
 * to do it (the hand-off the spec forbids); with the stop above costing
 * O(gomaxprocs) the simpler form is also the one that never touches a
 * dedicated thread.
 *
 * Locks: sched.lock for stopwait, the idle list and the P statuses it
 * guards; worldsema (a runtime semaphore, parks the G) serialises stoppers
 * and GOMAXPROCS changes; allplock (leaf) for growing allp.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define RELAXED memory_order_relaxed

gort__world_t gort__world;
gort__dedcount_t gort__dedcount;

enum { STW_REPREEMPT_NS = 100 * 1000 };

bool gort__is_world_owner(gort__g_t *gp)
{
    return atomic_load_explicit(&gort__world.owner, RELAXED) == gp;
}

/* Go's preemptall: ask every G running on a normal P to stop at its next
 * runtime call. */
void gort__preemptall(gort__p_t *self)
{
    int32_t n = atomic_load(&gort__rt.gomaxprocs);
    for (int32_t i = 0; i < n; i++) {
        gort__p_t *pp = gort__rt.allp[i];
        if (pp != self && atomic_load_explicit(&pp->status, RELAXED) == Prunning)
            gort__preemptone(pp);
    }
}

static void wake_stopper(void)
{
    atomic_fetch_add(&gort__sched.stopwake, 1);
    gort__futexwakeup(&gort__sched.stopwake, 1);
}

/* pp stops for the world (Go: status = _Pgcstop; stopwait--). sched.lock
 * held; gcwaiting set. */
void gort__gcstop_p(gort__p_t *pp)
{
    atomic_store_explicit(&pp->status, Pgcstop, RELAXED);
    if (atomic_fetch_sub(&gort__sched.stopwait, 1) == 1)
        wake_stopper();
}

/* Go's gcstopm: a scheduling M gives its P to the stop and parks. Returns
 * false if it was woken for shutdown. */
bool gort__gcstopm(gort__m_t *mp)
{
    /* Our P is already stopped only if we are the stopper's M: its
     * goroutine parked (checked here, off the fast path of gort__park). */
    if (GORT__UNLIKELY(atomic_load_explicit(&mp->p->status, RELAXED) == Pgcstop))
        gort__throw("goroutine blocked with the world stopped");
    if (atomic_load_explicit(&mp->spinning, RELAXED)) {
        atomic_store_explicit(&mp->spinning, false, RELAXED);
        atomic_fetch_sub(&gort__sched.nmspinning, 1);
    }
    gort__p_t *pp = gort__releasep(mp);
    gort__lock(&gort__sched.lock);
    gort__gcstop_p(pp);
    gort__unlock(&gort__sched.lock);
    return gort__stopm(mp);
}

/* Go's entersyscall_gcwait: pp went Psyscall after the stopper's walk
 * (entersyscall saw gcwaiting): stop it ourselves if nobody did. */
void gort__entersyscall_gcwait(gort__p_t *pp)
{
    gort__lock(&gort__sched.lock);
    uint32_t expect = Psyscall;
    if (atomic_compare_exchange_strong(&pp->status, &expect, Pgcstop)) {
        gort__tick(&pp->syscalltick);
        gort__gcstop_p(pp);
    }
    gort__unlock(&gort__sched.lock);
}

/* ---- dedicated goroutines ---- */

/* Waits on this thread until the world starts (or shutdown). */
void gort__ded_gcwait(void)
{
    bool counted = false;
    while (gort__gcwaiting() && !gort__shutting_down()) {
        if (!counted) {
            atomic_fetch_add_explicit(&gort__sched.stw_ded_waits, 1, RELAXED);
            counted = true;
        }
        uint32_t seq = atomic_load(&gort__sched.stwseq);
        atomic_fetch_add(&gort__sched.nstwwaiters, 1);
        if (atomic_load(&gort__world.gcwaiting) && !gort__shutting_down())
            gort__futexsleep(&gort__sched.stwseq, seq, -1);
        atomic_fetch_sub(&gort__sched.nstwwaiters, 1);
    }
}

/* The dedicated G of mp is about to run user code: join the count, unless
 * the world is stopping, in which case wait for it to start first. */
void gort__dedrun_begin(gort__m_t *mp)
{
    if (mp->dedrunning)
        return; /* still counted from before it parked (findrunnable_dedicated) */
    for (;;) {
        atomic_fetch_add(&gort__dedcount.ndedrunning, 1);
        if (!atomic_load(&gort__world.gcwaiting) || gort__shutting_down())
            break;
        if (atomic_fetch_sub(&gort__dedcount.ndedrunning, 1) - 1 ==
            atomic_load_explicit(&gort__sched.stw_dedself, RELAXED))
            wake_stopper();
        gort__ded_gcwait();
    }
    mp->dedrunning = true;
}

/* The dedicated G of mp stops running user code (blocks, enters a
 * syscall, exits, undedicates). */
void gort__dedrun_end(gort__m_t *mp)
{
    if (!mp->dedrunning)
        return;
    mp->dedrunning = false;
    int32_t left = atomic_fetch_sub(&gort__dedcount.ndedrunning, 1) - 1;
    if (GORT__UNLIKELY(atomic_load(&gort__world.gcwaiting)) &&
        left == atomic_load_explicit(&gort__sched.stw_dedself, RELAXED))
        wake_stopper();
}

/* gp reached a runtime call while the world is stopping (gort__api_g). */
void gort__stw_safepoint(gort__g_t *gp)
{
    gort__m_t *mp = gp->m;
    if (gp->dedicated) {
        /* Stop on our own thread, keeping the P. */
        gort__dedrun_end(mp);
        gort__ded_gcwait();
        gort__dedrun_begin(mp);
        return;
    }
    /* A normal or locked G: off the P, to the global queue (Go's
     * gopreempt_m); the M then stops its P (gcstopm, or handoffp from
     * stoplockedm for a locked M). */
    gort__stat_add(&mp->stats.preempts_sync, 1);
    gort__mcall(MCALL_PREEMPT);
}

/* Shutdown: release dedicated threads waiting for a start. */
void gort__stw_shutdown_wake(void)
{
    atomic_fetch_add(&gort__sched.stwseq, 1);
    gort__futexwakeup(&gort__sched.stwseq, INT_MAX);
}

/* ---- stop and start ---- */

/* Go's stopTheWorldWithSema. gp holds worldsema. */
static void stoptheworld(gort__g_t *gp)
{
    gort__m_t *mp = gp->m;
    gort__p_t *self = mp->p && !mp->p->dedicated ? mp->p : NULL;
    gort__lock(&gort__sched.lock);
    atomic_store_explicit(&gort__world.owner, gp, RELAXED);
    int32_t dedself = mp->dedrunning ? 1 : 0;
    atomic_store_explicit(&gort__sched.stw_dedself, dedself, RELAXED);
    atomic_store(&gort__sched.stopwait, atomic_load(&gort__rt.gomaxprocs));
    /* seq_cst: see the file comment (pairs with dedrun_begin and
     * entersyscall). */
    gort__store_seqcst(&gort__world.gcwaiting, 1);
    gort__preemptall(self);
    if (self) {
        atomic_store_explicit(&self->status, Pgcstop, RELAXED);
        atomic_fetch_sub(&gort__sched.stopwait, 1);
    }
    int32_t n = atomic_load(&gort__rt.gomaxprocs);
    for (int32_t i = 0; i < n; i++) {
        gort__p_t *pp = gort__rt.allp[i];
        uint32_t expect = Psyscall;
        if (atomic_load(&pp->status) == Psyscall &&
            atomic_compare_exchange_strong(&pp->status, &expect, Pgcstop)) {
            gort__tick(&pp->syscalltick);
            atomic_fetch_sub(&gort__sched.stopwait, 1);
        }
    }
    gort__p_t *pp;
    while ((pp = gort__pidleget()) != NULL) {
        atomic_store_explicit(&pp->status, Pgcstop, RELAXED);
        atomic_fetch_sub(&gort__sched.stopwait, 1);
    }
    gort__unlock(&gort__sched.lock);

    int64_t last = gort__nanotime();
    for (;;) {
        uint32_t seq = atomic_load(&gort__sched.stopwake);
        if (atomic_load(&gort__sched.stopwait) == 0 &&
            atomic_load(&gort__dedcount.ndedrunning) == dedself)
            break;
        if (gort__shutting_down())
            break;
        gort__futexsleep(&gort__sched.stopwake, seq, STW_REPREEMPT_NS);
        int64_t now = gort__nanotime();
        if (now - last >= STW_REPREEMPT_NS) {
            gort__preemptall(self); /* a G may have missed the request */
            last = now;
        }
    }
    if (GORT_DEBUG >= 1 && !gort__shutting_down()) {
        for (int32_t i = 0; i < n; i++)
            if (atomic_load(&gort__rt.allp[i]->status) != Pgcstop)
                gort__throw("stoptheworld: not stopped");
    }
    atomic_fetch_add_explicit(&gort__sched.stw_count, 1, RELAXED);
}

/* Go's procresize; sched.lock held, world stopped, Ps up to nprocs exist.
 * Returns the Ps that have local work (linked through link), for start to
 * hand to Ms. */
static gort__p_t *procresize(gort__m_t *mp, int32_t nprocs, gort__g_t **gfree_out)
{
    int32_t old = atomic_load(&gort__rt.gomaxprocs);
    for (int32_t i = old; i < nprocs; i++) {
        gort__p_t *pp = gort__rt.allp[i];
        /* (sysmontick may be stale: sysmon resyncs on the next tick.) */
        atomic_store_explicit(&pp->status, Pgcstop, RELAXED);
    }
    gort__p_t *cur = mp->p && !mp->p->dedicated ? mp->p : NULL;
    if (cur && cur->id >= nprocs) {
        /* Our P goes away: continue on allp[0] (Go does the same). */
        gort__releasep(mp);
        atomic_store_explicit(&cur->status, Pgcstop, RELAXED);
        gort__acquirep(mp, gort__rt.allp[0]);
        cur = mp->p;
    }
    for (int32_t i = nprocs; i < old; i++) {
        gort__p_t *pp = gort__rt.allp[i];
        gort__runq_to_global(pp);
        /* Free Gs to the global list (Go's gfpurge). */
        while (pp->gfree) {
            gort__g_t *g = pp->gfree;
            pp->gfree = g->schedlink;
            g->schedlink = *gfree_out;
            *gfree_out = g;
        }
        pp->gfreecnt = 0;
        atomic_store_explicit(&pp->status, Pdead, RELAXED);
    }
    if (nprocs != old) {
        atomic_store(&gort__rt.gomaxprocs, nprocs);
        gort__stealorder_reset(nprocs);
        gort__setsolo(gort__rt.allp, nprocs);
        atomic_fetch_add_explicit(&gort__sched.procresizes, 1, RELAXED);
    }
    if (cur)
        atomic_store_explicit(&cur->status, Prunning, RELAXED);
    gort__p_t *runnable = NULL;
    for (int32_t i = nprocs - 1; i >= 0; i--) {
        gort__p_t *pp = gort__rt.allp[i];
        if (pp == cur)
            continue;
        atomic_store_explicit(&pp->status, Pidle, RELAXED);
        if (gort__runqempty(pp)) {
            gort__pidleput(pp);
        } else {
            pp->link = runnable;
            runnable = pp;
        }
    }
    return runnable;
}

/* Go's startTheWorldWithSema. */
static void starttheworld(gort__m_t *mp)
{
    int32_t old = atomic_load(&gort__rt.gomaxprocs);
    int32_t nprocs = gort__sched.newprocs ? gort__sched.newprocs : old;
    gort__sched.newprocs = 0;
    /* Timers of Ps that go away move first: addtimer may wake the timer
     * sleeper, and that takes sched.lock. */
    if (nprocs < old) {
        gort__p_t *to = mp->p && !mp->p->dedicated && mp->p->id < nprocs ? mp->p : gort__rt.allp[0];
        for (int32_t i = nprocs; i < old; i++) {
            gort__movetimers(gort__rt.allp[i], to);
            gort__stackcache_clear(gort__rt.allp[i]);
        }
    }
    gort__g_t *gfree = NULL;
    gort__lock(&gort__sched.lock);
    /* gcwaiting goes first: procresize gives Ps back through pidleput,
     * which would stop them again. Nobody can take a P before we unlock.
     * seq_cst: pairs with ded_gcwait (see the file comment). */
    atomic_store_explicit(&gort__world.owner, NULL, RELAXED);
    gort__store_seqcst(&gort__world.gcwaiting, 0);
    gort__p_t *runnable = procresize(mp, nprocs, &gfree);
    while (gfree) {
        gort__g_t *g = gfree;
        gfree = g->schedlink;
        g->schedlink = gort__sched.gfree;
        gort__sched.gfree = g;
        atomic_store_explicit(&gort__sched.ngfree, gort__sched.ngfree + 1, RELAXED);
    }
    atomic_fetch_add(&gort__sched.stwseq, 1);
    gort__unlock(&gort__sched.lock);
    if (atomic_load(&gort__sched.nstwwaiters) != 0)
        gort__futexwakeup(&gort__sched.stwseq, INT_MAX);
    gort__wake_sysmon();
    while (runnable) {
        gort__p_t *pp = runnable;
        runnable = pp->link;
        gort__startm(pp, false);
    }
    gort__wakep();
    int64_t next = gort__timers_nextwhen();
    if (next)
        gort__timer_wake_for(next);
}

/* Allocates the Ps up to n that were never made (before a stop: a failure
 * is reported cleanly). worldsema held. */
static int grow_allp(int32_t n)
{
    int err = 0;
    gort__lock(&gort__rt.allplock);
    for (int32_t i = atomic_load(&gort__rt.nallp); i < n; i++) {
        gort__p_t *pp = gort__pnew(i);
        if (!pp) {
            err = -ENOMEM;
            break;
        }
        atomic_store_explicit(&pp->status, Pdead, RELAXED);
        /* seq_cst store: publishes the initialised P to lock-free readers. */
        atomic_store(&gort__rt.allp[i], pp);
        atomic_store(&gort__rt.nallp, i + 1);
    }
    gort__unlock(&gort__rt.allplock);
    return err;
}

/* ---- public ---- */

/* Why the world is stopped, for schedtrace and debuggers; written by the
 * worldsema holder, read racily by the trace. */
static _Atomic(const char *) stw_reason;

const char *gort__stw_reason(void)
{
    return atomic_load_explicit(&stw_reason, RELAXED);
}

GORT_API int gort_stop_the_world(const char *reason)
{
    gort__g_t *gp = gort__api_g();
    if (!gp)
        return -EPERM;
    if (gort__is_world_owner(gp))
        return -EDEADLK;
    gort__semacquire1(&gort__sched.worldsema, false, waitReasonStopTheWorld);
    /* The semaphore may have resumed us on another M. */
    gp = gort__getg();
    atomic_store_explicit(&stw_reason, reason, RELAXED);
    stoptheworld(gp);
    return 0;
}

GORT_API int gort_start_the_world(void)
{
    gort__g_t *gp = gort__getg();
    if (!gp)
        return -EPERM;
    if (!gort__is_world_owner(gp))
        return -EPERM;
    starttheworld(gp->m);
    atomic_store_explicit(&stw_reason, NULL, RELAXED);
    gort__semrelease1(&gort__sched.worldsema, false);
    return 0;
}

static void visit_all(gort_p_fn fn, void *arg)
{
    int32_t n = atomic_load(&gort__rt.gomaxprocs);
    for (int32_t i = 0; i < n; i++)
        fn(i, 0, arg);
    gort__lock(&gort__rt.dedlock);
    for (gort__p_t *pp = gort__rt.dedall; pp; pp = pp->dall)
        if (atomic_load_explicit(&pp->status, RELAXED) != Pidle)
            fn(pp->id, 1, arg);
    gort__unlock(&gort__rt.dedlock);
}

GORT_API int gort_for_each_p(gort_p_fn fn, void *arg)
{
    gort__g_t *gp = gort__api_g();
    if (!gp)
        return -EPERM;
    if (!fn)
        return -EINVAL;
    if (gort__is_world_owner(gp)) {
        visit_all(fn, arg);
        return 0;
    }
    int err = gort_stop_the_world("forEachP");
    if (err)
        return err;
    visit_all(fn, arg);
    return gort_start_the_world();
}

static int gomaxprocs_set(gort__g_t *gp, int n, bool explicit);

GORT_API int gort_gomaxprocs_set(int n)
{
    gort__g_t *gp = gort__api_g();
    if (!gp)
        return -EPERM;
    if (n < 1 || n > GORT_MAXPROCS_MAX)
        return -EINVAL;
    return gomaxprocs_set(gp, n, true);
}

static int gomaxprocs_set(gort__g_t *gp, int n, bool explicit)
{
    if (explicit)
        __atomic_store_n(&gort__rt.gomaxprocs_explicit, true, __ATOMIC_RELAXED);
    if (gort__is_world_owner(gp)) {
        /* Applied when the caller starts the world. */
        int err = grow_allp(n);
        if (err)
            return err;
        int prev = gort__sched.newprocs ? gort__sched.newprocs : atomic_load(&gort__rt.gomaxprocs);
        gort__sched.newprocs = n;
        return prev;
    }
    gort__semacquire1(&gort__sched.worldsema, false, waitReasonStopTheWorld);
    gp = gort__getg();
    int prev = atomic_load(&gort__rt.gomaxprocs);
    int err = n == prev ? 0 : grow_allp(n);
    if (err || n == prev) {
        gort__semrelease1(&gort__sched.worldsema, false);
        return err ? err : prev;
    }
    atomic_store_explicit(&stw_reason, "GOMAXPROCS", RELAXED);
    stoptheworld(gp);
    gort__sched.newprocs = n;
    starttheworld(gp->m);
    atomic_store_explicit(&stw_reason, NULL, RELAXED);
    gort__semrelease1(&gort__sched.worldsema, false);
    return prev;
}

/* ---- following the cgroup CPU limit (Go 1.25's updateMaxProcsGoroutine) ---- */

/* The tightest cpu.max quota of the process's cgroup v2 and its ancestors,
 * as CPUs rounded up; 0 when there is none. $GORT_CGROUP_CPU_MAX names a
 * file to read instead (tests). */
static long read_quota(const char *path)
{
    int saved = errno;
    FILE *f = fopen(path, "re");
    long r = 0;
    if (f) {
        char q[32];
        long long period = 0;
        if (fscanf(f, "%31s %lld", q, &period) == 2 && strcmp(q, "max") != 0 && period > 0) {
            long long quota = atoll(q);
            if (quota > 0)
                r = (long)((quota + period - 1) / period);
        }
        fclose(f);
    }
    errno = saved;
    return r;
}

int gort__cgroup_cpu_limit(void)
{
    const char *test = getenv("GORT_CGROUP_CPU_MAX");
    if (test && *test)
        return (int)read_quota(test);
    int saved = errno;
    char rel[512] = "", path[640];
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (f) {
        char line[600];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "0::", 3)) {
                size_t n = strcspn(line + 3, "\n");
                if (n >= sizeof rel)
                    n = sizeof rel - 1;
                memcpy(rel, line + 3, n);
                rel[n] = 0;
            }
        fclose(f);
    }
    errno = saved;
    long best = 0;
    for (;;) {
        snprintf(path, sizeof path, "/sys/fs/cgroup%s/cpu.max", rel);
        long q = read_quota(path);
        if (q > 0 && (best == 0 || q < best))
            best = q;
        char *slash = strrchr(rel, '/');
        if (!slash || !rel[0])
            break;
        *slash = 0;
    }
    return (int)best;
}

void gort__updatemaxprocs(void *arg)
{
    (void)arg;
    for (;;) {
        if (__atomic_load_n(&gort__rt.gomaxprocs_explicit, __ATOMIC_RELAXED))
            return;
        int n = gort__rt.ncpu;
        int lim = gort__cgroup_cpu_limit();
        if (lim > 0 && lim < n)
            n = lim;
        if (n > GORT_MAXPROCS_MAX)
            n = GORT_MAXPROCS_MAX;
        if (n != atomic_load(&gort__rt.gomaxprocs))
            gomaxprocs_set(gort__getg(), n, false);
        gort__sleep_until(gort__nanotime() + 1000000000);
    }
}

GORT_API int gort_current_p(void)
{
    gort__g_t *gp = gort__api_g();
    if (!gp)
        return -EPERM;
    return gp->m->p->id;
}
