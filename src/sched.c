/*
 * sched.c - the scheduler: Go's proc.go for C.
 *
 * Every M (thread) runs schedule() on its g0, the thread's own stack. To run
 * a goroutine, g0 switches to it (execute); to stop running, a goroutine
 * switches back to g0 with a request in m->mcall_op (Go's mcall): park it,
 * requeue it (yield), or free it (exit). g0 then carries out the request
 * while the goroutine is off its stack, so another M may pick the goroutine
 * up the moment it is published, and loops back into findrunnable. This is
 * why gopark's unlockf runs on g0: until it runs, nobody can ready the G,
 * and after it runs, the G's stack is no longer in use.
 *
 * One exception, the direct switch (switch_direct): on a solo P
 * (GOMAXPROCS 1), a goroutine that parks or yields while schedule() would
 * find nothing to do but run the next goroutine of the local queue (the
 * channel ping-pong: a send readies the peer, the receive parks; or two
 * goroutines yielding to each other) does g0's work itself - dropg, then
 * its unlockf or its own queueing - and switches straight to that
 * goroutine. The rule above still holds because the P is the only one:
 * no other M can run a goroutine while this M holds it, so nobody can
 * resume the old goroutine before this M has left its stack, published or
 * not. Rejected: running schedule() itself on the parking goroutine's stack
 * (findrunnable would block on it); Go rejects it too. Because of the
 * direct switch, the G that switches back to g0 is not always the one g0
 * switched to: execute() returns the G that came back.
 *
 * findrunnable (Go's findRunnable) looks, in order: the global queue every
 * 61st schedtick (fairness), the local queue (runnext first), the global
 * queue, then steals from other Ps (at most half the busy Ps may have a
 * spinning M), then gives its P back and parks the M (stopm).
 *
 * Spinning protocol (top of proc.go, "Worker thread parking/unparking"):
 *  - A submitter of work (runqput, then wakep) publishes the work, then a
 *    #StoreLoad barrier, then reads npidle and nmspinning; if there is an
 *    idle P and no spinning M, it wakes one M as a spinner.
 *  - A spinning M that finds work stops spinning (resetspinning) and calls
 *    wakep so that one spinner stays around while there is work to find.
 *  - A spinning M that finds nothing releases its P, decrements nmspinning,
 *    #StoreLoad, then rechecks every P's queue; if it finds work it takes an
 *    idle P and spins again. Together with the submitter's barrier, one of
 *    the two always sees the other: no lost wake-ups.
 *  - At most one extra spinner is woken at a time (the CAS 0 -> 1 in wakep).
 *
 * Locks: sched.lock guards the idle M and P lists, the global run queue, the
 * global G free list and M bookkeeping. allglock guards allgs; it is taken
 * on its own (never with sched.lock held... except teardown, which is
 * single-threaded). Run queues are lock-free (runq.c). No runtime lock is
 * held across a goroutine switch.
 *
 * Shutdown: when the main goroutine exits, sched.shutdown is set and every
 * idle M is woken; each M leaves schedule() at its next pass, non-m0 threads
 * exit, and m0 (the thread in gort_main) waits for them, then frees
 * everything. Goroutines still parked or runnable are abandoned, as in Go.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "san.h"

gort__rt_t gort__rt;

enum { GFREE_MAX = 64, GFREE_KEEP = 32, GOID_BATCH = 16, STEAL_TRIES = 4 };
#define DEADLOCK_GRACE_NS (200ll * 1000 * 1000)

#define RELAXED memory_order_relaxed
#define ACQUIRE memory_order_acquire
#define RELEASE memory_order_release
#define SEQCST  memory_order_seq_cst

static uint32_t fastrand(gort__m_t *mp)
{
    /* xorshift64*, per M. */
    uint64_t x = mp->fastrand;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    mp->fastrand = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1Dull) >> 32);
}

uint32_t gort__fastrandn(uint32_t n)
{
    gort__m_t *mp = gort__getm();
    uint32_t r;
    if (mp) {
        r = fastrand(mp);
    } else {
        /* Foreign thread: splitmix64 over a shared counter. */
        static _Atomic uint64_t seed = 0x853c49e6748fea9bull;
        uint64_t z = atomic_fetch_add_explicit(&seed, 0x9E3779B97F4A7C15ull, RELAXED);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        r = (uint32_t)((z ^ (z >> 31)) >> 32);
    }
    return (uint32_t)(((uint64_t)r * n) >> 32);
}

bool gort__shutting_down(void)
{
    /* acquire: pairs with the release store in begin_shutdown. */
    return atomic_load_explicit(&gort__sched.shutdown, ACQUIRE);
}

/* ---- G status ---- */

uint32_t gort__readgstatus(gort__g_t *gp)
{
    return atomic_load_explicit(&gp->atomicstatus, ACQUIRE);
}

/* Changes gp's status from old to new. Only gp's owner calls it (see
 * types.h), so no two transitions race and a store suffices (Go needs a CAS
 * for its _Gscan bit; we do not scan stacks). release: pairs with the
 * acquire in readgstatus and with the queue or lock through which the next
 * owner finds the G. Debug builds check the old status. */
void gort__casgstatus(gort__g_t *gp, uint32_t old, uint32_t new)
{
    if (GORT_DEBUG >= 2) {
        uint32_t cur = atomic_load_explicit(&gp->atomicstatus, RELAXED);
        if (cur != old) {
            char msg[96];
            gort__fmt(msg, sizeof msg, "casgstatus: bad status %u -> %u (was %u)", old, new, cur);
            gort__throw(msg);
        }
    }
    atomic_store_explicit(&gp->atomicstatus, new, RELEASE);
}

/* ---- P and M lists (sched.lock held) ---- */

static void idlepmask_set(int32_t id, bool idle)
{
    uint64_t bit = 1ull << (id % 64);
    if (idle)
        atomic_fetch_or_explicit(&gort__rt.idlepmask[id / 64], bit, RELAXED);
    else
        atomic_fetch_and_explicit(&gort__rt.idlepmask[id / 64], ~bit, RELAXED);
}

static bool idlepmask_read(int32_t id)
{
    return atomic_load_explicit(&gort__rt.idlepmask[id / 64], RELAXED) & (1ull << (id % 64));
}

/* Puts an idle P (with an empty run queue) on the idle list; while the
 * world is stopping, stops it instead (stw.c): every path that gives a P up
 * (findrunnable, handoffp, dedicate, a failed newm) ends here. */
void gort__pidleput(gort__p_t *pp)
{
    GORT__ASSERT(2, gort__runqempty(pp));
    if (GORT__UNLIKELY(gort__gcwaiting())) { /* set under sched.lock, which we hold */
        gort__gcstop_p(pp);
        return;
    }
    atomic_store_explicit(&pp->status, Pidle, RELAXED);
    idlepmask_set(pp->id, true);
    pp->link = gort__sched.pidle;
    gort__sched.pidle = pp;
    /* seq_cst: part of the spinning protocol (read by wakep). */
    atomic_fetch_add_explicit(&gort__sched.npidle, 1, SEQCST);
}

gort__p_t *gort__pidleget(void)
{
    gort__p_t *pp = gort__sched.pidle;
    if (pp) {
        gort__sched.pidle = pp->link;
        idlepmask_set(pp->id, false);
        atomic_fetch_sub_explicit(&gort__sched.npidle, 1, SEQCST);
    }
    return pp;
}

void gort__mput(gort__m_t *mp)
{
    mp->schedlink = gort__sched.midle;
    gort__sched.midle = mp;
    gort__sched.nmidle++;
    gort__checkdead();
}

gort__m_t *gort__mget(void)
{
    gort__m_t *mp = gort__sched.midle;
    if (mp) {
        gort__sched.midle = mp->schedlink;
        gort__sched.nmidle--;
        atomic_fetch_add_explicit(&gort__sched.progress, 1, RELAXED);
    }
    return mp;
}

void gort__acquirep(gort__m_t *mp, gort__p_t *pp)
{
    GORT__ASSERT(2, mp->p == NULL && atomic_load_explicit(&pp->m, RELAXED) == NULL);
    mp->p = pp;
    atomic_store_explicit(&pp->m, mp, RELEASE); /* pairs with preemptone's acquire */
    atomic_store_explicit(&pp->status, Prunning, RELAXED);
}

gort__p_t *gort__releasep(gort__m_t *mp)
{
    gort__p_t *pp = mp->p;
    GORT__ASSERT(2, pp && atomic_load_explicit(&pp->m, RELAXED) == mp);
    atomic_store_explicit(&pp->m, NULL, RELAXED);
    mp->p = NULL;
    atomic_store_explicit(&pp->status, Pidle, RELAXED);
    return pp;
}

/* ---- M lifecycle ---- */

static void schedule(gort__m_t *mp);

static void m_init_thread(gort__m_t *mp)
{
    gort__setm(mp);
    mp->procid = (pid_t)syscall(SYS_gettid);
    mp->fastrand = ((uint64_t)mp->id + 1) * 0x9E3779B97F4A7C15ull ^ (uint64_t)gort__nanotime();
    if (!mp->fastrand)
        mp->fastrand = 1;
    gort__sig_altstack_install(mp);
    san_g0_init(&mp->g0);
    /* g0's stack bounds, for ASan's fiber switch. */
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void *addr;
        size_t size;
        if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
            mp->g0.stack.lo = (uintptr_t)addr;
            mp->g0.stack.hi = (uintptr_t)addr + size;
        }
        pthread_attr_destroy(&attr);
    }
}

static void *mstart(void *arg)
{
    gort__m_t *mp = arg;
    m_init_thread(mp);
    if (mp->nextp) {
        gort__acquirep(mp, mp->nextp);
        mp->nextp = NULL;
    }
    if (atomic_load_explicit(&mp->spinning, RELAXED))
        gort__stat_add(&mp->stats.spinning, 1);
    schedule(mp);
    /* Shutdown, or a locked goroutine exited (mexit): the thread ends. At
     * shutdown m0 waits for mcount to drop to 1. */
    gort__sig_altstack_free(mp);
    gort__lock(&gort__sched.lock);
    gort__sched.mcount--;
    gort__checkdead();
    gort__unlock(&gort__sched.lock);
    gort__setm(NULL);
    return NULL;
}

static gort__m_t *allocm(void)
{
    gort__m_t *mp = aligned_alloc(64, (sizeof(gort__m_t) + 63) & ~(size_t)63);
    if (!mp)
        return NULL;
    memset(mp, 0, sizeof *mp);
    atomic_init(&mp->g0.atomicstatus, Grunning);
    return mp;
}

/* No M could be made for pp: pp goes idle and the goroutines queued on it
 * to the global queue, since an idle P's queue is one nobody looks at (Go
 * throws here instead); the spinning count the M was to carry is dropped.
 * sysmon retries while goroutines wait there or timers are overdue with a P
 * idle (sysmon.c). */
static void newm_failed(gort__p_t *pp, bool spinning)
{
    if (pp) {
        gort__lock(&gort__sched.lock);
        gort__runq_to_global(pp);
        gort__pidleput(pp);
        gort__unlock(&gort__sched.lock);
    }
    if (spinning)
        atomic_fetch_sub_explicit(&gort__sched.nmspinning, 1, SEQCST);
}

/* Creates mp's thread (Go's newosproc). On failure, mp never runs: its P
 * goes back to the idle list and its spinning count is dropped. */
bool gort__newosproc(gort__m_t *mp)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1024 * 1024);
    int saved = errno;
    int r = pthread_create(&mp->thread, &attr, mstart, mp);
    errno = saved;
    pthread_attr_destroy(&attr);
    if (r == 0) {
        atomic_fetch_add_explicit(&gort__rt.ms_created, 1, RELAXED);
        atomic_store_explicit(&mp->osproc_state, 1, RELEASE);
        return true;
    }
    /* mp never runs: whoever made it unlinks and frees it (newm2). */
    gort__lock(&gort__sched.lock);
    gort__sched.mcount--;
    gort__p_t *pp = mp->nextp;
    mp->nextp = NULL;
    mp->thread = 0;
    gort__unlock(&gort__sched.lock);
    newm_failed(pp, atomic_load_explicit(&mp->spinning, RELAXED));
    atomic_store_explicit(&mp->osproc_state, 2, RELEASE);
    return false;
}

/* An M whose thread was never made (its P and spinning count already given
 * back): off allm and freed. allm's walkers hold sched.lock. */
static void mfree_unstarted(gort__m_t *mp)
{
    gort__lock(&gort__sched.lock);
    for (gort__m_t **link = &gort__sched.allm; *link; link = &(*link)->alllink) {
        if (*link == mp) {
            *link = mp->alllink;
            break;
        }
    }
    gort__unlock(&gort__sched.lock);
    gort__sig_altstack_unmap(mp);
    free(mp);
}

/* Starts a new M (thread) that will run pp (Go's newm). If the calling M is
 * locked, the thread is created by the template thread (lockos.c). On
 * failure pp is made idle again. */
bool gort__newm(gort__p_t *pp, bool spinning)
{
    return gort__newm2(pp, spinning, false);
}

/* newm; with wait, also waits for a thread made by the template thread and
 * reports whether it really exists. */
bool gort__newm2(gort__p_t *pp, bool spinning, bool wait)
{
    gort__m_t *mp = allocm();
    if (!mp || gort__sig_altstack_alloc(mp) != 0) {
        free(mp);
        newm_failed(pp, spinning);
        return false;
    }
    mp->nextp = pp;
    atomic_store_explicit(&mp->spinning, spinning, RELAXED);
    gort__lock(&gort__sched.lock);
    mp->id = gort__sched.mnext++;
    gort__sched.mcount++;
    mp->alllink = gort__sched.allm;
    gort__sched.allm = mp;
    gort__unlock(&gort__sched.lock);
    gort__m_t *self = gort__getm();
    if (self && (self->lockedg || self->lockedint) && gort__newm_via_template(mp)) {
        if (!wait)
            return true;
        /* acquire: pairs with the release store in gort__newosproc. */
        int st;
        while ((st = atomic_load_explicit(&mp->osproc_state, ACQUIRE)) == 0)
            gort__usleep(10);
        if (st == 1)
            return true;
        mfree_unstarted(mp);
        return false;
    }
    /* (Without wait, an M the template thread could not start stays on
     * allm, unused: locked goroutines that start threads are rare.) */
    if (gort__newosproc(mp))
        return true;
    mfree_unstarted(mp); /* else every retry (sysmon) would leave one */
    return false;
}

/* Parks the current M (no P, not spinning) until startm hands it a P.
 * Returns false if it was woken for shutdown instead. */
bool gort__stopm(gort__m_t *mp)
{
    GORT__ASSERT(2, mp->p == NULL && !atomic_load_explicit(&mp->spinning, RELAXED));
    gort__lock(&gort__sched.lock);
    if (gort__shutting_down()) {
        gort__unlock(&gort__sched.lock);
        return false;
    }
    gort__mput(mp);
    gort__unlock(&gort__sched.lock);
    gort__stat_add(&mp->stats.parked, 1);
    gort__notesleep(&mp->park);
    gort__noteclear(&mp->park);
    if (!mp->nextp) {
        if (!gort__shutting_down())
            gort__throw("stopm: woken without a P");
        return false;
    }
    gort__acquirep(mp, mp->nextp);
    mp->nextp = NULL;
    if (atomic_load_explicit(&mp->spinning, RELAXED))
        gort__stat_add(&mp->stats.spinning, 1);
    return true;
}

/* Schedules some M to run pp (an idle P if pp is NULL), as a spinner if
 * spinning (the caller has already counted it in nmspinning). */
void gort__startm(gort__p_t *pp, bool spinning)
{
    gort__lock(&gort__sched.lock);
    if (!pp) {
        pp = gort__pidleget();
        if (!pp) {
            gort__unlock(&gort__sched.lock);
            if (spinning)
                atomic_fetch_sub_explicit(&gort__sched.nmspinning, 1, SEQCST);
            return;
        }
    }
    if (gort__shutting_down()) {
        gort__pidleput(pp);
        gort__unlock(&gort__sched.lock);
        if (spinning)
            atomic_fetch_sub_explicit(&gort__sched.nmspinning, 1, SEQCST);
        return;
    }
    gort__m_t *nmp = gort__mget();
    gort__unlock(&gort__sched.lock);
    if (!nmp) {
        gort__newm(pp, spinning); /* on failure pp is idle again */
        return;
    }
    atomic_store_explicit(&nmp->spinning, spinning, RELAXED);
    nmp->nextp = pp;
    gort__m_t *self = gort__getm();
    if (self)
        gort__stat_add(&self->stats.woken, 1);
    /* The wake-up (release) publishes nextp and spinning to nmp. */
    gort__notewakeup(&nmp->park);
}

/* Go's wakep: if there is an idle P and no spinning M, start one spinning
 * M (at most one extra spinner). Callers must have published their work
 * with a seq_cst read-modify-write (the runnext CAS in runqput, the release
 * of sched.lock, the nmspinning decrement): that RMW followed by the seq_cst
 * loads below is the submitter's #StoreLoad of the spinning protocol; the
 * spinning M's side is the nmspinning decrement plus the fence in
 * findrunnable. */
void gort__wakep(void)
{
    if (atomic_load(&gort__sched.npidle) == 0)
        return;
    int32_t zero = 0;
    if (atomic_load(&gort__sched.nmspinning) != 0 ||
        !atomic_compare_exchange_strong(&gort__sched.nmspinning, &zero, 1))
        return;
    gort__startm(NULL, true);
}

static void resetspinning(gort__m_t *mp)
{
    atomic_store_explicit(&mp->spinning, false, RELAXED);
    if (atomic_fetch_sub_explicit(&gort__sched.nmspinning, 1, SEQCST) <= 0)
        gort__throw("resetspinning: negative nmspinning");
    /* We found work: keep one spinner looking for more. */
    gort__wakep();
}

static void begin_shutdown(void)
{
    /* seq_cst: pairs with the acquire in gort__shutting_down(), and with
     * ready_foreign's increment + check (see there). */
    gort__store_seqcst(&gort__sched.shutdown, true);
    gort__lock(&gort__sched.lock);
    gort__m_t *mp;
    while ((mp = gort__mget()) != NULL)
        gort__notewakeup(&mp->park);
    gort__wake_lockedms();
    gort__wake_dedicatedms();
    gort__unlock(&gort__sched.lock);
    gort__stw_shutdown_wake();
    atomic_fetch_add(&gort__sched.stopwake, 1); /* a stopper gives up */
    gort__futexwakeup(&gort__sched.stopwake, 1);
    gort__notewakeup(&gort__rt.mainnote);
    gort__timer_poke();
}

/* ---- G allocation and free lists (Go's malg, gfget, gfput) ---- */

static gort__g_t *malg(void)
{
    gort__g_t *gp = calloc(1, sizeof *gp);
    if (!gp)
        return NULL;
    atomic_init(&gp->atomicstatus, Gidle);
    san_g_create(gp);
    gort__lock(&gort__rt.allglock);
    gp->alllink = gort__rt.allgs;
    gort__rt.allgs = gp;
    gort__unlock(&gort__rt.allglock);
    return gp;
}

static void gfput(gort__p_t *pp, gort__g_t *gp)
{
    if (gp->stack.hi && gp->stack.hi - gp->stack.lo != gort__rt.stack_size) {
        gort__stackfree(pp, &gp->stack);
        memset(&gp->stack, 0, sizeof gp->stack);
    }
    if (pp->dedicated) { /* a dedicated P spawns little: share with everyone */
        gort__lock(&gort__sched.lock);
        gp->schedlink = gort__sched.gfree;
        gort__sched.gfree = gp;
        atomic_store_explicit(&gort__sched.ngfree, gort__sched.ngfree + 1, RELAXED);
        gort__unlock(&gort__sched.lock);
        return;
    }
    gp->schedlink = pp->gfree;
    pp->gfree = gp;
    if (++pp->gfreecnt < GFREE_MAX)
        return;
    /* Move half to the global list. */
    gort__lock(&gort__sched.lock);
    while (pp->gfreecnt > GFREE_KEEP) {
        gort__g_t *g = pp->gfree;
        pp->gfree = g->schedlink;
        pp->gfreecnt--;
        g->schedlink = gort__sched.gfree;
        gort__sched.gfree = g;
        atomic_store_explicit(&gort__sched.ngfree, gort__sched.ngfree + 1, RELAXED);
    }
    gort__unlock(&gort__sched.lock);
}

/* Gets a dead G with a stack of the given size, or NULL: *nostack is set
 * when there was a dead G but no stack for it (it stays on the list). */
static gort__g_t *gfget(gort__p_t *pp, size_t stack_size, bool *nostack)
{
    if (!pp->gfree && atomic_load_explicit(&gort__sched.ngfree, RELAXED) > 0) {
        gort__lock(&gort__sched.lock);
        while (pp->gfreecnt < GFREE_KEEP && gort__sched.gfree) {
            gort__g_t *g = gort__sched.gfree;
            gort__sched.gfree = g->schedlink;
            atomic_store_explicit(&gort__sched.ngfree, gort__sched.ngfree - 1, RELAXED);
            g->schedlink = pp->gfree;
            pp->gfree = g;
            pp->gfreecnt++;
        }
        gort__unlock(&gort__sched.lock);
    }
    gort__g_t *gp = pp->gfree;
    if (!gp)
        return NULL;
    pp->gfree = gp->schedlink;
    pp->gfreecnt--;
    if (gp->stack.hi && gp->stack.hi - gp->stack.lo != stack_size) {
        gort__stackfree(pp, &gp->stack);
        memset(&gp->stack, 0, sizeof gp->stack);
    }
    if (!gp->stack.hi && gort__stackalloc(pp, stack_size, &gp->stack) != 0) {
        gp->schedlink = pp->gfree; /* keep it for later */
        pp->gfree = gp;
        pp->gfreecnt++;
        *nostack = true;
        return NULL;
    }
    return gp;
}

static uint64_t newgoid(gort__p_t *pp)
{
    if (pp->goidcache == pp->goidcacheend) {
        pp->goidcache = atomic_fetch_add_explicit(&gort__rt.goidgen, GOID_BATCH, RELAXED);
        pp->goidcacheend = pp->goidcache + GOID_BATCH;
    }
    return pp->goidcache++;
}

/* Makes a runnable G on pp. Runs on a G or on g0 with pp held. */
static gort__g_t *newproc1(gort__p_t *pp, gort_fn fn, void *arg, size_t stack_size, int *err)
{
    bool nostack = false;
    gort__g_t *gp = gfget(pp, stack_size, &nostack);
    if (!gp && nostack) {
        /* Not another G: one more would only join the free list (each
         * failed spawn would grow it by one). */
        *err = -ENOMEM;
        return NULL;
    }
    if (!gp) {
        gp = malg();
        if (!gp) {
            *err = -ENOMEM;
            return NULL;
        }
        if (gort__stackalloc(pp, stack_size, &gp->stack) != 0) {
            atomic_store_explicit(&gp->atomicstatus, Gdead, RELAXED);
            gfput(pp, gp);
            *err = -ENOMEM;
            return NULL;
        }
    }
    gp->fn = fn;
    gp->arg = arg;
    gp->goid = newgoid(pp);
    gp->is_main = false;
    gp->m = NULL;
    gp->waitreason = waitReasonZero;
    gp->readyat = 0;
    gp->asan_fake_stack = NULL;
    /* The initial frame is laid out by execute_begin, on the M that first
     * runs gp: the stack is not touched here (see execute_begin). */
    gp->sched_sp = NULL;
    atomic_store_explicit(&gp->atomicstatus, Grunnable, RELEASE);
    gort__stat_add(&pp->stats.goroutines_created, 1);
    return gp;
}

int gort__newproc(gort_fn fn, void *arg, size_t stack_size, uint64_t *id_out)
{
    gort__m_t *mp = gort__getm();
    gort__p_t *pp = mp->p;
    int err = 0;
    gort__g_t *gp = newproc1(pp, fn, arg, stack_size ? stack_size : gort__rt.stack_size, &err);
    if (!gp)
        return err;
    if (id_out)
        *id_out = gp->goid;
    if (GORT__UNLIKELY(pp->dedicated)) {
        /* Spec: goroutines created on a dedicated P go to the global queue,
         * since nobody steals from a dedicated P. */
        gort__lock(&gort__sched.lock);
        gort__globrunqput(gp);
        gort__unlock(&gort__sched.lock);
    } else {
        gort__lat_sample(pp, gp);
        gort__runqput(pp, gp, true);
    }
    gort__wakep();
    return 0;
}

/* ---- switching ---- */

static GORT__NOINLINE GORT__NORETURN void stack_overflow(gort__g_t *gp)
{
    char msg[160];
    gort__fmt(msg, sizeof msg, "stack overflow in goroutine %lu (stack canary at %p overwritten)",
              (unsigned long)gp->goid, (void *)gp->stack.lo);
    gort__throw(msg);
}

/* Switches from the current G to g0 with a request for schedule(). Returns
 * when the G is resumed, possibly on another M: nothing cached from before
 * the switch (the M, the P) may be used after it. */
void gort__mcall(int op)
{
    gort__mcall_g(gort__getg(), op);
}

/* mcall for a caller that knows its G (saves a TLS read on hot paths);
 * gp->m is the M running gp. */
void gort__mcall_g(gort__g_t *gp, int op)
{
    gort__m_t *mp = gp->m;
    mp->mcall_op = op;
    san_switch_begin(gp, &mp->g0, op == MCALL_EXIT);
    gort__ctx_switch(&gp->sched_sp, mp->g0.sched_sp);
    san_switch_end(gp);
}

void gort__gostart(void)
{
    gort__g_t *gp = gort__getg();
    san_switch_end(gp);
    gp->fn(gp->arg);
    gort__goexit();
}

void gort__goexit(void)
{
    gort__mcall(MCALL_EXIT);
    gort__throw("goexit: resumed a dead goroutine");
}

/* The direct switch of a park or a yield: the G that schedule() would run
 * next on this P, taken off the local queue (runnext first, then the head
 * of the ring, as runqget; *inherit as there), if schedule() could run it
 * here with none of its other duties due; otherwise NULL (a locked G taken
 * goes back in front). The checks are findrunnable's, in its order, before it looks at
 * the local queue: shutdown, a stop of the world, due timers (with timers
 * on the P this reads the clock, as checktimers would; a due one sends us
 * the slow way), the 61st-tick look at the global queue; and execute's: no
 * locked G on either side.
 *
 * Only on a solo P (GOMAXPROCS 1, runq.c), which is what makes the direct
 * switch safe: this M holds the only P, so no other M can run the G that
 * switches out - not even once it is published (on a wait queue by its
 * unlockf, or on our run queue) - until this M has left its stack.
 *
 * With other Ps the direct switch would need the publication deferred to
 * the G switched to, and it did not pay there anyway: a spinning M takes
 * runnext after its 3 us pause when the same G sits there again (Go's
 * heuristic), and a runnext emptied sooner made idle Ms give up, sleep and
 * be woken again more often: at GOMAXPROCS 2 the ping-pong had 3-5x the M
 * wake-ups and steals (each steal splits the pair across the two CPUs for a
 * while) and took 186 ns per round trip by the median of 8 runs against
 * 151 ns through g0. */
static GORT__ALWAYS_INLINE gort__g_t *direct_next(gort__m_t *mp, bool *inherit)
{
    gort__p_t *pp = mp->p;
    if (!pp->solo || mp->lockedg || gort__shutting_down() || GORT__UNLIKELY(gort__gcwaiting()))
        return NULL;
    int64_t tw = atomic_load_explicit(&pp->timer0when, RELAXED);
    if (GORT__UNLIKELY(tw != 0) && tw <= gort__nanotime())
        return NULL;
    if (atomic_load_explicit(&pp->schedtick, RELAXED) % 61 == 0 &&
        atomic_load_explicit(&gort__sched.runqsize, RELAXED) > 0)
        return NULL;
    gort__g_t *next = gort__runqget(pp, inherit);
    if (next && GORT__UNLIKELY(next->lockedm)) {
        /* Its own M must run it (startlockedm, from schedule): back in
         * front, where schedule() takes it next. */
        gort__runqput(pp, next, true);
        return NULL;
    }
    return next;
}

/* The first half of a direct switch, on gp's stack: what schedule() does
 * on g0 right after an mcall, before gp is published: the canary check, gp
 * to status st (Gwaiting or Grunnable) and off the M (dropg). */
static GORT__ALWAYS_INLINE void direct_out(gort__m_t *mp, gort__g_t *gp, uint32_t st)
{
    if (GORT__UNLIKELY(!gort__stack_canary_ok(&gp->stack)))
        stack_overflow(gp);
    gort__casgstatus(gp, Grunning, st);
    gort__dropg(mp, gp);
}

/* execute's bookkeeping before the switch to gp, for execute and
 * switch_direct. */
static GORT__ALWAYS_INLINE void execute_begin(gort__m_t *mp, gort__g_t *gp, bool inherit)
{
    gort__p_t *pp = mp->p;
    /* release: pairs with the acquire loads of sysmon (preemptone), which
     * then touches gp's atomics. */
    atomic_store_explicit(&mp->curg, gp, RELEASE);
    gp->m = mp;
    gort__casgstatus(gp, Grunnable, Grunning);
    /* A new G's first frame (arch/ctx.h) is made here and not in newproc1,
     * so the stack's top line is written and read back by the one M that
     * runs gp, in the cache of that CPU: made at spawn, with many Gs
     * spawned before the first runs, the line was evicted or (for a stolen
     * G) moved to the other CPU before the switch read it back. */
    if (!gp->sched_sp)
        gp->sched_sp = gort__ctx_init(gp->stack.hi);
    if (!inherit)
        gort__tick(&pp->schedtick);
    gort__stat_add(&pp->stats.switches, 1);
    if (GORT__UNLIKELY(GORT_LATENCY_STATS && gp->readyat))
        gort__lat_record(pp, gp);
}

/* The second half: execute(next, inherit) without g0. gp is published. */
static GORT__NOINLINE void switch_direct(gort__m_t *mp, gort__g_t *gp, gort__g_t *next,
                                         bool inherit)
{
    execute_begin(mp, next, inherit);
    gort__stat_add(&mp->p->stats.switches_direct, 1);
    san_switch_begin(gp, next, false);
    gort__ctx_switch(&gp->sched_sp, next->sched_sp);
    san_switch_end(gp);
}

void gort__gosched(void)
{
    gort__gosched_g(gort__getg());
}

void gort__gosched_g(gort__g_t *gp)
{
    if (gp->dedicated) {
        gort__osyield(); /* nothing else runs on this thread: ask the kernel */
        return;
    }
    if (GORT__UNLIKELY(gort__gcwaiting()) && gort__is_world_owner(gp))
        return; /* the world is stopped: nobody else could run */
    gort__m_t *mp = gp->m;
    bool inherit;
    gort__g_t *next = direct_next(mp, &inherit);
    if (next) {
        /* MCALL_GOSCHED's work, then the switch (see direct_next). */
        direct_out(mp, gp, Grunnable);
        gort__runqput(mp->p, gp, false);
        switch_direct(mp, gp, next, inherit);
        return;
    }
    gort__mcall_g(gp, MCALL_GOSCHED);
}

void gort__park(bool (*unlockf)(gort__g_t *gp, void *lock), void *lock,
                enum gort__waitreason reason)
{
    gort__park_g(gort__getg(), unlockf, lock, reason);
}

void gort__park_g(gort__g_t *gp, bool (*unlockf)(gort__g_t *gp, void *lock), void *lock,
                  enum gort__waitreason reason)
{
    gort__m_t *mp = gp->m;
    gp->waitreason = (uint8_t)reason;
    /* For dumps ("[chan receive, 2 minutes]"): sysmon's coarse clock, so
     * parking reads no clock. */
    gp->waitsince = atomic_load_explicit(&gort__coarse_now, RELAXED);
    bool inherit;
    gort__g_t *next = direct_next(mp, &inherit);
    if (next) {
        /* MCALL_PARK's work, then the switch (see direct_next). */
        direct_out(mp, gp, Gwaiting);
        if (unlockf && !unlockf(gp, lock)) {
            /* The wait is already over: go on running gp, next stays next. */
            gort__casgstatus(gp, Gwaiting, Grunning);
            gp->m = mp;
            atomic_store_explicit(&mp->curg, gp, RELEASE); /* as in execute */
            gort__runqput(mp->p, next, true);
            return;
        }
        switch_direct(mp, gp, next, inherit);
        return;
    }
    mp->waitunlockf = unlockf;
    mp->waitlock = lock;
    gort__mcall_g(gp, MCALL_PARK);
}

static void ready1(gort__m_t *mp, gort__g_t *gp);

/* A foreign thread readies gp. It walks scheduler state (queues, Ms it may
 * create) that gort_main's teardown frees, so it announces itself in
 * rt.foreign_inflight and does nothing once shutdown has begun (gp is
 * abandoned then anyway). seq_cst: the increment and the shutdown check
 * pair with begin_shutdown's store and teardown's drain (Dekker): either
 * teardown waits for us or we see the shutdown. */
static GORT__NOINLINE void ready_foreign(gort__g_t *gp)
{
    /* Goroutines woken from outside: checkdead cannot prove a deadlock. */
    atomic_store_explicit(&gort__sched.foreign_wakers, true, RELAXED);
    atomic_fetch_add(&gort__rt.foreign_inflight, 1);
    if (!atomic_load(&gort__sched.shutdown))
        ready1(NULL, gp);
    atomic_fetch_sub(&gort__rt.foreign_inflight, 1);
}

void gort__ready(gort__g_t *gp)
{
    if (GORT__UNLIKELY(gort__readgstatus(gp) != Gwaiting))
        gort__throw("bad g->status in ready");
    gort__m_t *mp = gort__getm();
    if (GORT__UNLIKELY(!mp)) {
        ready_foreign(gp);
        return;
    }
    ready1(mp, gp);
}

void gort__ready_by(gort__g_t *self, gort__g_t *gp)
{
    if (!self) {
        gort__ready(gp);
        return;
    }
    if (GORT__UNLIKELY(gort__readgstatus(gp) != Gwaiting))
        gort__throw("bad g->status in ready");
    ready1(self->m, gp); /* self runs, so self->m is this thread's M */
}

void gort__ready_internal(gort__g_t *gp)
{
    if (GORT__UNLIKELY(gort__readgstatus(gp) != Gwaiting))
        gort__throw("bad g->status in ready");
    ready1(gort__getm(), gp);
}

static void ready1(gort__m_t *mp, gort__g_t *gp)
{
    if (gp->dedicated) {
        /* The spec's ready corollary: wake its own thread, nothing else. */
        gort__ready_dedicated(gp);
        return;
    }
    if (GORT__LIKELY(mp && mp->p && !mp->p->dedicated)) {
        gort__lat_sample(mp->p, gp);
        gort__casgstatus(gp, Gwaiting, Grunnable);
        gort__runqput(mp->p, gp, true);
        gort__wakep();
        return;
    }
    gort__casgstatus(gp, Gwaiting, Grunnable);
    /* No normal P here (a foreign thread, sysmon, an M in a syscall, or a
     * dedicated P, whose queue nobody would look at): the global queue. */
    gort__lock(&gort__sched.lock);
    gort__globrunqput(gp);
    gort__unlock(&gort__sched.lock);
    gort__wakep();
}

/* Runs gp on the current M. Returns on g0 when a G switches back: gp, or
 * a G that gp (or its successor) switched to directly (switch_direct); that
 * G is returned. */
static gort__g_t *execute(gort__m_t *mp, gort__g_t *gp, bool inherit)
{
    execute_begin(mp, gp, inherit);
    san_switch_begin(&mp->g0, gp, false);
    gort__ctx_switch(&mp->g0.sched_sp, gp->sched_sp);
    san_switch_end(&mp->g0);
    return atomic_load_explicit(&mp->curg, RELAXED); /* this M's own field */
}

/* Takes gp off the M (Go's dropg). */
void gort__dropg(gort__m_t *mp, gort__g_t *gp)
{
    gp->m = NULL;
    atomic_store_explicit(&mp->curg, NULL, RELAXED);
}

/* Go's goexit0: on g0, gp has finished. */
static void goexit0(gort__m_t *mp, gort__g_t *gp)
{
    gort__p_t *pp = mp->p;
    gort__casgstatus(gp, Grunning, Gdead);
    gort__dropg(mp, gp);
    gort__stat_add(&pp->stats.goroutines_exited, 1);
    san_stack_unpoison(gp->stack.lo, gp->stack.hi);
    bool is_main = gp->is_main;
    if (GORT__UNLIKELY(gort__gcwaiting()) && gort__is_world_owner(gp) && !is_main)
        gort__throw("goroutine exited with the world stopped");
    if (gp->lockedm) {
        /* Exiting while locked ends the thread (Go 1.10+): the goroutine may
         * have changed thread state that must not leak. */
        gp->lockedm = NULL;
        mp->lockedg = NULL;
        mp->lockedext = mp->lockedint = 0;
        mp->exiting = true;
    }
    atomic_store_explicit(&gp->preempt, false, memory_order_relaxed);
    atomic_store_explicit(&gp->preemptible, false, memory_order_relaxed);
    gp->dedicated = false;
    gfput(pp, gp);
    if (is_main)
        begin_shutdown();
}

/* ---- finding work ---- */

/* Tries to steal from every other P, in random order, STEAL_TRIES passes;
 * runnext only on the last pass (Go's stealWork). */
static gort__g_t *stealwork(gort__m_t *mp, gort__p_t *pp)
{
    /* gomaxprocs and coprimes change only while every P is stopped. */
    uint32_t n = (uint32_t)atomic_load_explicit(&gort__rt.gomaxprocs, RELAXED);
    for (int i = 0; i < STEAL_TRIES; i++) {
        bool lastpass = i == STEAL_TRIES - 1;
        uint32_t pos = fastrand(mp) % n;
        uint32_t inc = gort__rt.coprimes[fastrand(mp) % gort__rt.ncoprimes];
        for (uint32_t k = 0; k < n; k++, pos = (pos + inc) % n) {
            gort__p_t *victim = gort__rt.allp[pos];
            if (victim == pp || idlepmask_read(victim->id))
                continue;
            if (gort__shutting_down())
                return NULL;
            gort__stat_add(&pp->stats.steal_tries, 1);
            uint32_t before = gort__runqlen(pp);
            gort__g_t *gp = gort__runqsteal(pp, victim, lastpass);
            if (gp) {
                gort__stat_add(&pp->stats.steal_successes, 1);
                gort__stat_add(&pp->stats.steal_gs, 1 + gort__runqlen(pp) - before);
                return gp;
            }
        }
    }
    return NULL;
}

/* The timer sleeper's last stretch (gort_config_t.timer_spin_ns): spin until
 * the timer is due, or until a poke (a new earlier timer, work) bumps
 * timerwake. Descriptors are not polled meanwhile: an I/O wake-up waits at
 * most this long. No P is held. */
static void timer_spin(gort__m_t *mp, int64_t until, uint32_t seq)
{
    gort__stat_add(&mp->stats.timer_spins, 1);
    for (int n = 0; atomic_load_explicit(&gort__sched.timerwake, RELAXED) == seq; n++) {
        gort__procyield(10);
        if ((n & 7) == 7 && gort__nanotime() >= until) {
            gort__stat_add(&mp->stats.timer_spin_catches, 1);
            return;
        }
        if (GORT__UNLIKELY(gort__shutting_down()))
            return;
    }
}

/* Finds a runnable G for mp's P, blocking (stopm) until there is one.
 * Returns NULL only for shutdown. Runs on g0 with a P. */
static gort__g_t *findrunnable(gort__m_t *mp, bool *inherit)
{
    gort__g_t *gp;
    if (mp->p->dedicated)
        return gort__findrunnable_dedicated(mp);
top:
    if (gort__shutting_down())
        return NULL;
    if (GORT__UNLIKELY(gort__gcwaiting())) {
        if (!gort__gcstopm(mp)) /* Go's gcstopm; a start hands us a P */
            return NULL;
        goto top;
    }
    gort__p_t *pp = mp->p;
    *inherit = false;
    if (atomic_load_explicit(&pp->timer0when, RELAXED) != 0)
        gort__checktimers(pp, 0);

    /* Fairness: check the global queue once in a while, or two goroutines
     * that keep readying each other through runnext starve it. */
    if (atomic_load_explicit(&pp->schedtick, RELAXED) % 61 == 0 &&
        atomic_load_explicit(&gort__sched.runqsize, RELAXED) > 0) {
        gort__lock(&gort__sched.lock);
        gp = gort__globrunqget(pp, 1);
        gort__unlock(&gort__sched.lock);
        if (gp)
            return gp;
    }
    gp = gort__runqget(pp, inherit);
    if (gp)
        return gp;
    if (atomic_load_explicit(&gort__sched.runqsize, RELAXED) > 0) {
        gort__lock(&gort__sched.lock);
        gp = gort__globrunqget(pp, 0);
        gort__unlock(&gort__sched.lock);
        if (gp)
            return gp;
    }
    /* The netpoller, without blocking, if nobody is blocked in it (Go's
     * findRunnable does this before stealing). */
    if (GORT__UNLIKELY(gort__netpoll_waiting())) {
        gort__g_t *list = gort__netpoll_try(0);
        if (list) {
            gort__netpoll_inject(list); /* onto our P, then wakep */
            gp = gort__runqget(pp, inherit);
            if (gp)
                return gp;
        }
    }
    /* Due timers of other Ps (Go runs them in stealWork's last pass). */
    if (gort__runtimers_others(pp)) {
        gp = gort__runqget(pp, inherit);
        if (gp)
            return gp;
    }

    /* Spin (steal) only if fewer than half the busy Ps already have a
     * spinning M: spinning is expensive when there are many Ps. */
    int32_t busy = gort__rt.gomaxprocs - atomic_load_explicit(&gort__sched.npidle, RELAXED);
    if (atomic_load_explicit(&mp->spinning, RELAXED) ||
        2 * atomic_load_explicit(&gort__sched.nmspinning, RELAXED) < busy) {
        if (!atomic_load_explicit(&mp->spinning, RELAXED)) {
            atomic_store_explicit(&mp->spinning, true, RELAXED);
            atomic_fetch_add_explicit(&gort__sched.nmspinning, 1, SEQCST);
            gort__stat_add(&mp->stats.spinning, 1);
        }
        gp = stealwork(mp, pp);
        if (gp)
            return gp;
    }

    /* Nothing: give the P back. */
    gort__lock(&gort__sched.lock);
    if (gort__shutting_down()) {
        gort__unlock(&gort__sched.lock);
        return NULL;
    }
    if (gort__gcwaiting()) {
        gort__unlock(&gort__sched.lock);
        goto top; /* stop the P there */
    }
    if (gort__sched.runqsize > 0) {
        gp = gort__globrunqget(pp, 0);
        gort__unlock(&gort__sched.lock);
        if (gp)
            return gp;
        goto top;
    }
    gort__releasep(mp);
    gort__pidleput(pp);
    gort__unlock(&gort__sched.lock);

    bool wasspinning = atomic_load_explicit(&mp->spinning, RELAXED);
    if (wasspinning) {
        atomic_store_explicit(&mp->spinning, false, RELAXED);
        /* seq_cst RMW then the recheck below: the other half of the #StoreLoad
         * pairing with the fence in wakep. */
        if (atomic_fetch_sub_explicit(&gort__sched.nmspinning, 1, SEQCST) <= 0)
            gort__throw("findrunnable: negative nmspinning");
        atomic_thread_fence(SEQCST);
        /* The delicate dance: work may have been submitted after we looked
         * and before we stopped counting as a spinner. Unlike Go we also
         * look at the global queue: goroutines readied without a normal P
         * (foreign threads, dedicated Ps) are put there followed by wakep,
         * which relies on us while we still count as spinning. */
        if (atomic_load(&gort__sched.runqsize) > 0) {
            gort__lock(&gort__sched.lock);
            gort__p_t *np = gort__pidleget();
            gort__unlock(&gort__sched.lock);
            if (np) {
                gort__acquirep(mp, np);
                atomic_store_explicit(&mp->spinning, true, RELAXED);
                atomic_fetch_add_explicit(&gort__sched.nmspinning, 1, SEQCST);
                gort__stat_add(&mp->stats.spinning, 1);
                goto top;
            }
        }
        for (int32_t i = 0; i < gort__rt.gomaxprocs; i++) {
            gort__p_t *p2 = gort__rt.allp[i];
            if (!idlepmask_read(p2->id) && !gort__runqempty(p2)) {
                gort__lock(&gort__sched.lock);
                gort__p_t *np = gort__pidleget();
                gort__unlock(&gort__sched.lock);
                if (np) {
                    gort__acquirep(mp, np);
                    atomic_store_explicit(&mp->spinning, true, RELAXED);
                    atomic_fetch_add_explicit(&gort__sched.nmspinning, 1, SEQCST);
                    gort__stat_add(&mp->stats.spinning, 1);
                    goto top;
                }
                break;
            }
        }
    }
    /* Sleep until the earliest timer, if no other M does, blocked in the
     * netpoller when there is one (Go's blocking netpoll with a timeout),
     * then take an idle P and run what woke us. */
    /* seq_cst fence: our P's release (npidle, sched.lock) before the load
     * of waiters pairs with a netpoll commit's waiters increment before its
     * wakep (npidle): either it finds our P or we see its waiter. The RMWs
     * alone do not keep a later plain load after them on aarch64. */
    atomic_thread_fence(SEQCST);
    bool polling = gort__netpoll_inited() && gort__netpoll_waiting();
    if (polling || gort__timers_nextwhen() != 0) {
        int32_t zero = 0;
        /* seq_cst: pairs with the seq_cst timer0when store in addtimer and
         * the load of timersleeping in wake_for: either the adder sees us
         * as the sleeper and pokes, or we see its timer below. */
        if (atomic_compare_exchange_strong(&gort__sched.timersleeping, &zero, 1)) {
            /* The fence keeps timers_nextwhen's relaxed loads after the CAS
             * (aarch64's ldaxr/stlxr does not). */
            atomic_thread_fence(SEQCST);
            uint32_t seq = atomic_load(&gort__sched.timerwake);
            int64_t until = gort__timers_nextwhen();
            atomic_store(&gort__sched.sleepuntil, until);
            int64_t left = until - gort__nanotime();
            /* The last `spin` ns before the timer are spun, not slept. */
            int64_t spin = until != 0 && gort__rt.timer_spin_ns > 0 && gort__spin_allowed(0)
                               ? gort__rt.timer_spin_ns
                               : 0;
            gort__g_t *list = NULL;
            if (gort__shutting_down()) {
                /* nothing: leave */
            } else if (gort__netpoll_inited()) {
                /* A poke is an eventfd write (gort__timer_poke). */
                if (until == 0 || left > spin)
                    list = gort__netpoll_block(until == 0 ? -1 : left - spin);
            } else if (until != 0 && left > spin) {
                gort__futexsleep(&gort__sched.timerwake, seq, left - spin);
            }
            /* Spin only through the last stretch: a sleep that ended early
             * for another reason (an event nobody waits for, a stale
             * break, EINTR) goes round findrunnable and sleeps again. */
            if (spin > 0 && !list && !gort__shutting_down() && until - gort__nanotime() <= spin)
                timer_spin(mp, until, seq);
            atomic_store(&gort__sched.sleepuntil, 0);
            atomic_store(&gort__sched.timersleeping, 0);
            /* Go takes an idle P after every netpoll, even one woken by a
             * break with nothing to run: with it this M goes round
             * findrunnable again and is the poller again if still needed;
             * stopping here would leave the descriptors' waiters with no
             * poller (and sysmon may be in its deep sleep). waiting is
             * read again: polling was read before the sleep, and a waiter
             * that came meanwhile may have found us the sleeper already. */
            if (until != 0 || list || polling || gort__netpoll_waiting()) {
                gort__lock(&gort__sched.lock);
                gort__p_t *np = gort__pidleget();
                gort__unlock(&gort__sched.lock);
                if (np)
                    gort__acquirep(mp, np);
                /* With a P, onto its queue; else global (and wakep). */
                gort__netpoll_inject(list);
                if (np)
                    goto top;
                /* Every P is busy; they run timers in their own loops. */
            }
        }
    }
    if (!gort__stopm(mp))
        return NULL;
    goto top;
}

/* The scheduler loop, on g0. Returns at shutdown. */
/* Go's exitsyscall0, on g0: gp's syscall ended and exitsyscallfast found
 * no P. Returns true if mp got a P and should run gp at once. */
static bool exitsyscall0(gort__m_t *mp, gort__g_t *gp)
{
    gort__casgstatus(gp, Gsyscall, Grunnable);
    gort__dropg(mp, gp);
    gort__lock(&gort__sched.lock);
    gort__p_t *pp = gort__pidleget();
    if (!pp)
        gort__globrunqput(gp); /* a locked gp waits in stoplockedm for it */
    gort__unlock(&gort__sched.lock);
    if (!pp)
        return false;
    gort__wake_sysmon();
    gort__acquirep(mp, pp);
    return true;
}

/* Go's mexit: the locked goroutine of mp exited; the thread ends (m0,
 * which must return from gort_main, waits for shutdown instead). */
static void mexit(gort__m_t *mp)
{
    if (mp->dedicated)
        gort__dedicated_mexit(mp); /* the dedicated P goes back to the pool */
    else if (mp->p)
        gort__handoffp(gort__releasep(mp));
    if (mp->is_m0) {
        gort__lock(&gort__sched.lock);
        mp->isidlelocked = true; /* parked for good: not running */
        gort__sched.nmidlelocked++;
        gort__checkdead();
        gort__unlock(&gort__sched.lock);
        gort__notesleep(&gort__rt.mainnote);
    }
}

/* The scheduler loop, on g0 (Go's schedule). Returns at shutdown, or when
 * the thread must end (m->exiting). */
static void schedule(gort__m_t *mp)
{
    for (;;) {
        gort__g_t *gp;
        bool inherit = false;
        if (mp->lockedg && !mp->dedicated) {
            /* A locked M runs only its G: wait until it is handed a P with
             * the G runnable. (A dedicated M keeps its P and waits in
             * findrunnable_dedicated instead.) */
            if (!gort__stoplockedm(mp))
                return;
            gp = mp->lockedg;
        } else {
            if (!mp->p && !gort__stopm(mp))
                return;
            gp = findrunnable(mp, &inherit);
            if (!gp)
                return;
            if (atomic_load_explicit(&mp->spinning, RELAXED))
                resetspinning(mp);
            if (gp->lockedm && gp->lockedm != mp) {
                /* Hand our P to gp's M, then wait for one ourselves. */
                gort__startlockedm(mp, gp);
                continue;
            }
        }
    run:
        if (GORT__UNLIKELY(mp->dedicated && !mp->dedrunning))
            gort__dedrun_begin(mp); /* may wait for the world to start */
        gp = execute(mp, gp, inherit);
        /* A dedicated G that parked stays counted while its M spins for
         * the wake-up (findrunnable_dedicated leaves the count before it
         * sleeps or waits for a stop): a spin-caught hop then touches no
         * shared counter. */
        if (GORT__UNLIKELY(mp->dedrunning) && mp->mcall_op != MCALL_PARK)
            gort__dedrun_end(mp);
        /* Back on g0: gp switched out with a request. */
        if (GORT__UNLIKELY(!gort__stack_canary_ok(&gp->stack)))
            stack_overflow(gp);
        int op = mp->mcall_op;
        mp->mcall_op = MCALL_NONE;
        switch (op) {
        case MCALL_PARK: {
            bool (*unlockf)(gort__g_t *, void *) = mp->waitunlockf;
            void *lock = mp->waitlock;
            mp->waitunlockf = NULL;
            mp->waitlock = NULL;
            gort__casgstatus(gp, Grunning, Gwaiting);
            gort__dropg(mp, gp);
            if (unlockf && !unlockf(gp, lock)) {
                /* The wait is already over: run it again at once. */
                gort__casgstatus(gp, Gwaiting, Grunnable);
                inherit = true;
                goto run;
            }
            break;
        }
        case MCALL_GOSCHED:
            gort__casgstatus(gp, Grunning, Grunnable);
            gort__dropg(mp, gp);
            gort__runqput(mp->p, gp, false);
            break;
        case MCALL_PREEMPT:
        case MCALL_UNDEDICATE:
            /* Go's gopreempt_m: to the global queue, behind everyone. An
             * undedicated G that found no idle P goes the same way. */
            gort__casgstatus(gp, Grunning, Grunnable);
            gort__dropg(mp, gp);
            gort__lock(&gort__sched.lock);
            gort__globrunqput(gp);
            gort__unlock(&gort__sched.lock);
            if (!mp->p) /* undedicate: this M has no P to find gp with */
                gort__wakep();
            break;
        case MCALL_EXIT:
            goexit0(mp, gp);
            if (mp->exiting) {
                mexit(mp);
                return;
            }
            break;
        case MCALL_EXITSYSCALL:
            if (exitsyscall0(mp, gp)) {
                inherit = false;
                goto run;
            }
            break; /* no P: a locked M waits in stoplockedm, others in stopm */
        default:
            gort__throw("schedule: goroutine switched out without a request");
        }
    }
}

/* ---- deadlock detection ---- */

/* Would every goroutine stay blocked forever if nothing outside the
 * runtime acted? Caller holds sched.lock. */
static bool looks_dead(void)
{
    if (!gort__rt.deadlock_check || gort__shutting_down() ||
        atomic_load_explicit(&gort__sched.foreign_wakers, RELAXED))
        return false;
    int32_t run = gort__sched.mcount - gort__sched.nmidle - gort__sched.nmidlelocked -
                  atomic_load(&gort__sched.ndedsleeping);
    if (run > 0)
        return false;
    if (run < 0)
        gort__throw("checkdead: inconsistent M counts");
    if (atomic_load_explicit(&gort__sched.runqsize, RELAXED) > 0 || gort__timers_nextwhen() != 0 ||
        gort__dedicated_pending() || gort__netpoll_waiting())
        return false; /* (a descriptor may become ready: the outside world) */
    for (int32_t i = 0; i < gort__rt.gomaxprocs; i++)
        if (!gort__runqempty(gort__rt.allp[i]))
            return false;
    return true;
}

/* Go's checkdead: if no M is running (every M is idle, or a locked M
 * parked), no timer is pending and no goroutine is runnable, nothing inside
 * the runtime can ever ready a goroutine again. Unlike Go, gort cannot know
 * that no foreign thread will (gort_chan_try_send, gort_waitgroup_done from
 * a plain pthread), so this only raises a suspicion; sysmon confirms it
 * after DEADLOCK_GRACE_NS without any M waking up (checkdead_confirm) and
 * only then dies with "all goroutines are asleep - deadlock!". Once a
 * foreign thread has readied a goroutine the check is off for the run;
 * GORT_CONFIG_NO_DEADLOCK_CHECK turns it off from the start. Caller holds
 * sched.lock. */
void gort__checkdead(void)
{
    if (gort__sched.deadsuspect || !looks_dead())
        return;
    __atomic_store_n(&gort__sched.deadsuspect, true, __ATOMIC_RELAXED); /* sysmon peeks */
    gort__sched.deadsuspect_when = gort__nanotime();
    gort__sched.deadsuspect_progress = atomic_load(&gort__sched.progress);
    if (gort__sched.sysmonwait) {
        __atomic_store_n(&gort__sched.sysmonwait, false, __ATOMIC_RELAXED);
        gort__notewakeup(&gort__sched.sysmonnote);
    }
}

/* Called by sysmon each round; returns the ns until it should look again
 * (0: no suspicion). */
int64_t gort__checkdead_confirm(void)
{
    gort__lock(&gort__sched.lock);
    if (!gort__sched.deadsuspect) {
        gort__unlock(&gort__sched.lock);
        return 0;
    }
    int64_t left = gort__sched.deadsuspect_when + DEADLOCK_GRACE_NS - gort__nanotime();
    if (left > 0) {
        gort__unlock(&gort__sched.lock);
        return left;
    }
    __atomic_store_n(&gort__sched.deadsuspect, false, __ATOMIC_RELAXED);
    if (!looks_dead()) {
        gort__unlock(&gort__sched.lock);
        return 0;
    }
    if (atomic_load(&gort__sched.progress) != gort__sched.deadsuspect_progress) {
        /* Something woke meanwhile, but everything is asleep again: start
         * a new grace period rather than forgetting the suspicion (nothing
         * else would raise it again until another M goes to sleep). */
        gort__checkdead();
        gort__unlock(&gort__sched.lock);
        return DEADLOCK_GRACE_NS;
    }
    gort__throw("all goroutines are asleep - deadlock!"); /* with a goroutine dump */
}

/* Go's sync_runtime_canSpin: active spinning makes sense only on a
 * multicore machine, with GOMAXPROCS > 1, at least one other running P and
 * an empty local run queue, and only a few times (iter < 4): spinning is
 * cooperative and must not hold up goroutines that could run here. */
bool gort__sync_canspin(int iter)
{
    if (iter >= 4 || gort__rt.gomaxprocs <= 1)
        return false;
    if (gort__rt.gomaxprocs <= atomic_load_explicit(&gort__sched.npidle, RELAXED) +
                                   atomic_load_explicit(&gort__sched.nmspinning, RELAXED) + 1)
        return false;
    gort__m_t *mp = gort__getm();
    return mp && mp->p && gort__runqempty(mp->p);
}

/* ---- gort_main ---- */

static gort_main_fn mainfn;
static void *mainarg;

static void main_goroutine(void *arg)
{
    (void)arg;
    if (gort__rt.follow_cgroup)
        gort__newproc(gort__updatemaxprocs, NULL, 0, NULL); /* stw.c */
    gort__rt.mainstatus = mainfn(mainarg);
}

static uint32_t gcd(uint32_t a, uint32_t b)
{
    while (b) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Go's stealOrder.reset: the increments coprime with nprocs, so that
 * stealwork's pos += inc visits every P. Only while no M steals (start-up,
 * or the world stopped). */
void gort__stealorder_reset(int32_t nprocs)
{
    gort__rt.ncoprimes = 0;
    for (uint32_t i = 1; i <= (uint32_t)nprocs; i++)
        if (gcd(i, (uint32_t)nprocs) == 1)
            gort__rt.coprimes[gort__rt.ncoprimes++] = i;
}

static void free_p(gort__p_t *pp)
{
    if (!pp)
        return;
    gort__stackcache_clear(pp);
    gort__timers_free(pp);
    free(pp);
}

/* Frees everything of this run. Every M but m0 has exited. */
static void teardown(gort__m_t *m0, _Atomic(gort__p_t *) *allp)
{
    gort__template_stop();
    for (gort__m_t *mp = gort__sched.allm; mp;) {
        gort__m_t *next = mp->alllink;
        if (mp != m0 && mp->thread)
            pthread_join(mp->thread, NULL);
        if (mp != m0)
            free(mp);
        mp = next;
    }
    gort__sched.allm = NULL;
    gort__g_t *gp = gort__rt.allgs;
    gort__rt.allgs = NULL;
    while (gp) {
        gort__g_t *next = gp->alllink;
        if (gp->stack.hi) {
            san_stack_unpoison(gp->stack.lo, gp->stack.hi);
            gort__stackfree(NULL, &gp->stack);
        }
        san_g_destroy(gp);
        free(gp);
        gp = next;
    }
    int32_t nallp = atomic_load(&gort__rt.nallp);
    for (int32_t i = 0; i < nallp; i++)
        free_p(allp[i]);
    atomic_store(&gort__rt.nallp, 0);
    gort__dedicate_teardown();
    free(allp);
    free(gort__rt.idlepmask);
    gort__netpoll_teardown();
    gort__rt.allp = NULL;
    gort__rt.idlepmask = NULL;
    gort__stack_freeall();
}

/* gort_main's way out when the run cannot start once m0 runs as an M (no
 * main goroutine, no sysmon): everything made so far is undone. */
static void start_failed(gort__m_t *m0)
{
    _Atomic(gort__p_t *) *allp = gort__rt.allp;
    gort__lock(&gort__life_lock);
    gort__rt.allp = NULL; /* stats readers see "not running" from here on */
    gort__unlock(&gort__life_lock);
    gort__setm(NULL);
    gort__sig_altstack_free(m0);
    teardown(m0, allp);
    free(m0);
    gort__sig_uninstall();
    atomic_store(&gort__rt.running, false);
}

/* A new normal P with id id (Pidle, not yet in allp). */
gort__p_t *gort__pnew(int32_t id)
{
    size_t sz = (sizeof(gort__p_t) + 63) & ~(size_t)63;
    gort__p_t *pp = aligned_alloc(64, sz);
    if (!pp)
        return NULL;
    memset(pp, 0, sizeof(gort__p_t));
    pp->id = id;
    atomic_init(&pp->status, Pidle);
    return pp;
}

/* Serialises gort_main runs and lets stats readers see a consistent allp. */
gort__mutex_t gort__life_lock;
static bool zombie; /* a previous run left a thread in a goroutine; life_lock */

int gort__main(gort_main_fn fn, void *arg, const gort_config_t *cfg)
{
    int nprocs = 0;
    unsigned flags = 0;
    int64_t spin_ns = 0, timer_spin_ns = 0;
    size_t stack_size = GORT_STACK_DEFAULT;
    if (!fn)
        return -EINVAL;
    if (cfg) {
        if (cfg->size < offsetof(gort_config_t, gomaxprocs) + sizeof(int))
            return -EINVAL;
        nprocs = cfg->gomaxprocs;
        if (nprocs < 0 || nprocs > GORT_MAXPROCS_MAX)
            return -EINVAL;
        if (cfg->size >= offsetof(gort_config_t, stack_size) + sizeof(size_t) && cfg->stack_size) {
            stack_size = cfg->stack_size;
            if (gort__stack_roundsize(stack_size) == 0)
                return -EINVAL;
        }
        if (cfg->size >= offsetof(gort_config_t, flags) + sizeof(unsigned)) {
            flags = cfg->flags;
            if (flags & ~(unsigned)(GORT_CONFIG_NO_DEADLOCK_CHECK | GORT_CONFIG_FOLLOW_CGROUP_CPU))
                return -EINVAL;
        }
        if (cfg->size >= offsetof(gort_config_t, dedicated_spin_ns) + sizeof(int64_t))
            spin_ns = cfg->dedicated_spin_ns;
        if (cfg->size >= offsetof(gort_config_t, timer_spin_ns) + sizeof(int64_t))
            timer_spin_ns = cfg->timer_spin_ns;
    }
    if (gort__getm())
        return -EBUSY; /* called from inside the runtime */
    gort__lock(&gort__life_lock);
    if (zombie || atomic_load(&gort__rt.running)) {
        gort__unlock(&gort__life_lock);
        return -EBUSY;
    }
    atomic_store(&gort__rt.running, true);
    gort__unlock(&gort__life_lock);

    gort__stack_sysinit();
    stack_size = gort__stack_roundsize(stack_size);
    if (nprocs == 0)
        nprocs = gort__default_gomaxprocs();
    spin_ns = gort__dedicated_spin_default(spin_ns);
    timer_spin_ns = gort__timer_spin_default(timer_spin_ns);

    /* Only this thread touches gort__rt until the first M starts. */
    gort__rt_t *rt = &gort__rt;
    memset(&rt->sched, 0, sizeof rt->sched);
    rt->gomaxprocs = nprocs;
    rt->stack_size = stack_size;
    rt->allgs = NULL;
    rt->maing = NULL;
    rt->mainstatus = 0;
    rt->deadlock_check = !(flags & GORT_CONFIG_NO_DEADLOCK_CHECK);
    rt->follow_cgroup = (flags & GORT_CONFIG_FOLLOW_CGROUP_CPU) != 0;
    rt->gomaxprocs_explicit = false;
    atomic_store(&rt->foreign_inflight, 0);
    rt->ncpu = gort__ncpu();
    gort__noteclear(&rt->mainnote);
    atomic_store(&rt->goidgen, 1);
    atomic_store(&rt->ms_created, 1);
    gort__stealorder_reset(nprocs);

    memset(&gort__world, 0, sizeof gort__world);
    atomic_store(&gort__dedcount.ndedrunning, 0);
    atomic_store(&rt->sched.worldsema.count, 1);

    int err = -ENOMEM;
    gort__m_t *m0 = allocm();
    /* Room for every P GOMAXPROCS may ever grow to (stw.c procresize). */
    _Atomic(gort__p_t *) *allp = calloc(GORT_MAXPROCS_MAX, sizeof *allp);
    _Atomic uint64_t *mask = calloc((GORT_MAXPROCS_MAX + 63) / 64, sizeof *mask);
    if (!m0 || !allp || !mask || gort__sig_altstack_alloc(m0) != 0)
        goto fail;
    for (int i = 0; i < nprocs; i++) {
        allp[i] = gort__pnew(i);
        if (!allp[i])
            goto fail;
    }
    atomic_store(&rt->nallp, nprocs);
    gort__setsolo(allp, nprocs);
    rt->timer_spin_ns = timer_spin_ns;
    if (gort__dedicate_init(cfg, spin_ns) != 0)
        goto fail;
    gort__lock(&gort__life_lock);
    rt->allp = allp;
    rt->idlepmask = mask;
    gort__unlock(&gort__life_lock);

    mainfn = fn;
    mainarg = arg;
    m0->is_m0 = true;
    m0->id = rt->sched.mnext++;
    rt->sched.mcount = 1;
    rt->sched.allm = m0;
    m0->thread = pthread_self();
    gort__sig_install();
    m_init_thread(m0);
    gort__acquirep(m0, allp[0]);
    for (int i = nprocs - 1; i > 0; i--)
        gort__pidleput(allp[i]);

    gort__g_t *maing = newproc1(allp[0], main_goroutine, NULL, stack_size, &err);
    if (!maing) {
        start_failed(m0);
        return err;
    }
    maing->is_main = true;
    rt->maing = maing;
    gort__runqput(allp[0], maing, true);

    rt->start_ns = gort__nanotime();
    gort__trace_init(); /* GORT_DEBUG */
    /* Without sysmon lazy system calls are never retaken, nor long-running
     * goroutines preempted: no run without it. */
    err = gort__sysmon_start();
    if (err != 0) {
        gort__trace_fini();
        start_failed(m0);
        return err;
    }
    schedule(m0);
    gort__sysmon_stop();
    gort__trace_fini();
    /* Foreign threads still inside ready_foreign may be creating an M:
     * let them finish before counting and freeing Ms. */
    while (atomic_load(&rt->foreign_inflight) != 0)
        gort__usleep(10);

    /* Shutdown: wait for the other Ms to leave (they do at their next pass
     * through schedule; one stuck in a goroutine may never). */
    bool alldone = false;
    for (int i = 0; i < 50000; i++) { /* up to ~5 s */
        gort__lock(&rt->sched.lock);
        int32_t n = rt->sched.mcount;
        gort__unlock(&rt->sched.lock);
        if (n <= 1) {
            alldone = true;
            break;
        }
        gort__usleep(100);
    }
    int status = rt->mainstatus;
    gort__sig_altstack_free(m0);
    gort__setm(NULL);
    if (!alldone) {
        gort__lock(&gort__life_lock);
        zombie = true;
        gort__unlock(&gort__life_lock);
        return status;
    }
    gort__lock(&gort__life_lock);
    rt->allp = NULL; /* stats readers see "not running" from here on */
    gort__unlock(&gort__life_lock);
    teardown(m0, allp);
    free(m0);
    gort__sig_uninstall();
    atomic_store(&rt->running, false);
    return status;

fail:
    gort__dedicate_teardown();
    if (allp)
        for (int i = 0; i < nprocs; i++)
            free(allp[i]);
    free(allp);
    free(mask);
    if (m0)
        gort__sig_altstack_unmap(m0);
    free(m0);
    gort__lock(&gort__life_lock);
    rt->allp = NULL;
    rt->idlepmask = NULL;
    atomic_store(&rt->running, false);
    gort__unlock(&gort__life_lock);
    return err;
}
