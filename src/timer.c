/*
 * timer.c - per-P timer heaps, sleep, and the public timers (Go's time.go).
 *
 * Every P has a 4-ary min-heap of timers ordered by `when` (monotonic ns)
 * under its timerslock. A timer is added to the heap of the P that adds it,
 * except a public timer added by a dedicated goroutine, which goes on a
 * normal P (public_timer_p): a dedicated P's heap holds only its own
 * goroutine's waits (sleep, deadlines), run by its M while it waits.
 * Timers are run by the scheduler, never by a timer thread:
 *  - findrunnable runs its own P's expired timers at every pass
 *    (gort__checktimers), and those of other Ps whose earliest timer is due
 *    (gort__runtimers_others: Go does this in stealWork's last pass; we do
 *    it whether or not the M may spin, so a due timer on a busy or idle P is
 *    never left waiting for a spinner);
 *  - an M with nothing to do sleeps until the earliest timer of all Ps with
 *    a timed futex wait (the "timer sleeper", one at a time, see
 *    findrunnable), then takes an idle P and runs them. Adding a timer
 *    earlier than the sleeper's wake-up pokes it (Go's wakeNetPoller); with
 *    no sleeper, wakep starts an M that will become one.
 * A timer's function runs on g0 of the M that runs the heap, holding a P and
 * no runtime lock, so it may ready goroutines (they go to that P's runnext)
 * or start new ones.
 *
 * Deletion: deltimer removes a timer from whatever heap holds it (retrying
 * if it moved) and then waits until no firing of it is in progress
 * (t->running), so a timer on a goroutine's stack (sleep, select deadline)
 * or a freed public timer is never touched after deltimer returns.
 *
 * Locks: timerslock is a leaf. A public timer's oplock serialises stop,
 * reset and free on that timer; it is taken before a timerslock and never
 * held by a firing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define RELAXED memory_order_relaxed
#define ACQUIRE memory_order_acquire
#define RELEASE memory_order_release

/* ---- 4-ary heap, caller holds pp->timerslock ---- */

static void siftup(gort__p_t *pp, int32_t i)
{
    gort__timer_t **h = pp->timers;
    gort__timer_t *t = h[i];
    while (i > 0) {
        int32_t parent = (i - 1) / 4;
        if (t->when >= h[parent]->when)
            break;
        h[i] = h[parent];
        h[i]->idx = i;
        i = parent;
    }
    h[i] = t;
    t->idx = i;
}

static void siftdown(gort__p_t *pp, int32_t i)
{
    gort__timer_t **h = pp->timers;
    int32_t n = pp->ntimers;
    gort__timer_t *t = h[i];
    for (;;) {
        int32_t c = 4 * i + 1;
        if (c >= n)
            break;
        int32_t best = c;
        for (int32_t k = c + 1; k < c + 4 && k < n; k++)
            if (h[k]->when < h[best]->when)
                best = k;
        if (h[best]->when >= t->when)
            break;
        h[i] = h[best];
        h[i]->idx = i;
        i = best;
    }
    h[i] = t;
    t->idx = i;
}

static void update_timer0(gort__p_t *pp)
{
    /* seq_cst: see the timer sleeper in findrunnable. */
    gort__store_seqcst(&pp->timer0when, pp->ntimers ? pp->timers[0]->when : 0);
}

static void heap_remove(gort__p_t *pp, gort__timer_t *t)
{
    int32_t i = t->idx, last = pp->ntimers - 1;
    GORT__ASSERT(2, i >= 0 && i <= last && pp->timers[i] == t);
    if (i != last) {
        pp->timers[i] = pp->timers[last];
        pp->timers[i]->idx = i;
    }
    pp->ntimers--;
    if (i != last) {
        siftdown(pp, i);
        siftup(pp, i);
    }
    t->idx = -1;
    /* release: pairs with the acquire load in deltimer, so a deleter that
     * finds the timer out of every heap also sees a firing's running
     * increment, made before (checktimers). */
    atomic_store_explicit(&t->pp, NULL, RELEASE);
}

/* Makes room for need timers on pp's heap (doubling, from 64). timerslock
 * held. */
static bool heap_grow(gort__p_t *pp, int32_t need)
{
    if (need <= pp->timerscap)
        return true;
    int32_t cap = pp->timerscap ? pp->timerscap * 2 : 64;
    if (cap < need)
        cap = need;
    gort__timer_t **nh = realloc(pp->timers, (size_t)cap * sizeof *nh);
    if (!nh)
        return false;
    pp->timers = nh;
    pp->timerscap = cap;
    return true;
}

static bool heap_push(gort__p_t *pp, gort__timer_t *t)
{
    if (!heap_grow(pp, pp->ntimers + 1))
        return false;
    pp->timers[pp->ntimers] = t;
    t->idx = pp->ntimers++;
    atomic_store_explicit(&t->pp, pp, RELAXED);
    siftup(pp, t->idx);
    return true;
}

/* The first multiple of period after now, counted from when (when <= now,
 * period > 0): a periodic timer's next firing. Saturates at INT64_MAX
 * (never) instead of overflowing, for periods near INT64_MAX. */
static int64_t next_period(int64_t when, int64_t period, int64_t now)
{
    uint64_t k = 1 + (uint64_t)(now - when) / (uint64_t)period;
    if (k > (uint64_t)(INT64_MAX - when) / (uint64_t)period)
        return INT64_MAX;
    return when + (int64_t)k * period;
}

/* Go's wakeNetPoller: make sure some M will be awake at `when`. */
void gort__timer_wake_for(int64_t when)
{
    /* seq_cst: pairs with the CAS of timersleeping in findrunnable. A
     * sleeper that has not published sleepuntil yet (0) is poked anyway: a
     * spurious wake-up only costs it one pass through findrunnable. */
    if (atomic_load(&gort__sched.timersleeping)) {
        int64_t until = atomic_load(&gort__sched.sleepuntil);
        if (until == 0 || when < until)
            gort__timer_poke();
    } else {
        gort__wakep();
    }
}

void gort__timer_poke(void)
{
    /* The sleeper waits while timerwake equals the value it read before
     * looking at the heaps; any poke after that read changes it. */
    atomic_fetch_add(&gort__sched.timerwake, 1);
    gort__futexwakeup(&gort__sched.timerwake, 1);
    gort__netpoll_break(); /* the sleeper may be in epoll_wait */
}

int gort__timers_reserve(gort__p_t *pp, int32_t n)
{
    gort__lock(&pp->timerslock);
    bool ok = heap_grow(pp, pp->ntimers + n);
    gort__unlock(&pp->timerslock);
    return ok ? 0 : -ENOMEM;
}

int gort__addtimer(gort__timer_t *t)
{
    return gort__addtimer_on(gort__getm()->p, t);
}

int gort__addtimer_on(gort__p_t *pp, gort__timer_t *t)
{
    gort__lock(&pp->timerslock);
    if (!heap_push(pp, t)) {
        gort__unlock(&pp->timerslock);
        return -ENOMEM;
    }
    /* A dedicated P's timers are its own goroutine's waits, added by that
     * goroutine just before it parks: its M reads timer0when when it goes
     * to sleep, so nobody needs a poke. */
    bool first = pp->timers[0] == t && !pp->dedicated;
    /* Read under the lock: once it is dropped, another M may fire t and
     * re-arm (periodic) or free it. */
    int64_t when = t->when;
    update_timer0(pp);
    gort__unlock(&pp->timerslock);
    if (first)
        gort__timer_wake_for(when);
    return 0;
}

bool gort__deltimer(gort__timer_t *t)
{
    bool removed = false;
    for (;;) {
        gort__p_t *pp = atomic_load_explicit(&t->pp, ACQUIRE);
        if (!pp)
            break;
        gort__lock(&pp->timerslock);
        if (atomic_load_explicit(&t->pp, RELAXED) != pp) {
            gort__unlock(&pp->timerslock); /* it moved or fired meanwhile */
            continue;
        }
        heap_remove(pp, t);
        update_timer0(pp);
        gort__unlock(&pp->timerslock);
        removed = true;
        break;
    }
    /* acquire: pairs with the release decrement after a firing. */
    while (atomic_load_explicit(&t->running, ACQUIRE) != 0)
        gort__osyield();
    return removed;
}

int64_t gort__checktimers(gort__p_t *pp, int64_t now)
{
    int64_t next = atomic_load_explicit(&pp->timer0when, RELAXED);
    if (next == 0)
        return 0;
    if (now == 0)
        now = gort__nanotime(); /* only read the clock when there are timers */
    if (next > now)
        return next;
    gort__lock(&pp->timerslock);
    while (pp->ntimers > 0 && pp->timers[0]->when <= now) {
        gort__timer_t *t = pp->timers[0];
        int64_t due = t->when;
        if (t->period > 0 && atomic_load_explicit(&t->running, RELAXED) != 0) {
            /* The previous firing of this periodic timer is still running
             * on another M: drop this tick (as a full channel would) so
             * firings never overlap or arrive out of order. */
            t->when = next_period(t->when, t->period, now);
            siftdown(pp, 0);
            continue;
        }
        /* Counted as running before it leaves the heap: a deltimer that
         * then finds it in no heap (heap_remove's release store) waits for
         * this firing instead of returning while it still reads t (a timer
         * on a goroutine's stack, reused by its next select: TSan race). */
        atomic_fetch_add_explicit(&t->running, 1, RELAXED);
        if (t->period > 0) {
            /* Re-arm first (Go's runOneTimer): the next firing is the first
             * multiple of period after now. */
            t->when = next_period(t->when, t->period, now);
            siftdown(pp, 0);
        } else {
            heap_remove(pp, t);
        }
        update_timer0(pp);
        gort__unlock(&pp->timerslock);
        t->f(t, due); /* the time the firing was due: monotonic per timer */
        /* release: pairs with the acquire load in deltimer; after this the
         * firing touches t no more. */
        atomic_fetch_sub_explicit(&t->running, 1, RELEASE);
        gort__lock(&pp->timerslock);
    }
    update_timer0(pp);
    next = atomic_load_explicit(&pp->timer0when, RELAXED);
    gort__unlock(&pp->timerslock);
    return next;
}

bool gort__runtimers_others(gort__p_t *self)
{
    bool ran = false;
    int64_t now = 0;
    for (int32_t i = 0; i < gort__rt.gomaxprocs; i++) {
        gort__p_t *p2 = gort__rt.allp[i];
        if (p2 == self)
            continue;
        int64_t w = atomic_load_explicit(&p2->timer0when, RELAXED);
        if (w != 0 && now == 0)
            now = gort__nanotime();
        if (w != 0 && w <= now) {
            gort__checktimers(p2, now);
            ran = true;
        }
    }
    return ran;
}

int64_t gort__timers_nextwhen(void)
{
    int64_t min = 0;
    for (int32_t i = 0; i < gort__rt.gomaxprocs; i++) {
        int64_t w = atomic_load_explicit(&gort__rt.allp[i]->timer0when, RELAXED);
        if (w != 0 && (min == 0 || w < min))
            min = w;
    }
    return min;
}

void gort__timers_free(gort__p_t *pp)
{
    free(pp->timers);
    pp->timers = NULL;
    pp->ntimers = pp->timerscap = 0;
}

/* ---- sleep ---- */

static void sleep_fire(gort__timer_t *t, int64_t now)
{
    (void)now;
    gort__ready(t->arg);
}

/* Go's resetForSleep: the timer is added only once the goroutine is parked,
 * so the firing can never ready a goroutine that is still running. */
static bool sleep_commit(gort__g_t *gp, void *arg)
{
    (void)gp;
    gort__timer_t *t = arg;
    if (gort__addtimer(t) != 0) {
        t->arg = NULL; /* no memory for the heap: tell the sleeper */
        return false;
    }
    return true;
}

int gort__sleep_until(int64_t when)
{
    gort__g_t *gp = gort__getg();
    gort__timer_t t;
    memset(&t, 0, sizeof t);
    t.when = when;
    t.f = sleep_fire;
    t.arg = gp;
    t.idx = -1;
    gort__park(sleep_commit, &t, waitReasonSleep);
    gort__deltimer(&t);
    return t.arg ? 0 : -ENOMEM;
}

/* ---- public timers ---- */

struct gort_timer {
    gort__timer_t t; /* first: the firing gets back to us from &t */
    gort__mutex_t oplock;
    gort_chan_t *ch;
    gort_fn fn;
    void *arg;
};

static void public_fire(gort__timer_t *t, int64_t now)
{
    struct gort_timer *pt = (struct gort_timer *)t;
    if (pt->ch) {
        /* Go's sendTime: never block; a full channel drops the tick. */
        gort__chan_trysend_from_timer(pt->ch, &now);
    } else {
        gort__newproc(pt->fn, pt->arg, 0, NULL);
    }
}

/* The P a public timer goes on: the caller's, or a normal one if the
 * caller is dedicated. A dedicated P's timers run only while its goroutine
 * waits (findrunnable_dedicated) and no other M looks at them, so there a
 * timer would fire only when that goroutine next blocks, however late; on
 * a normal P idle Ms and the timer sleeper run it. This also keeps public
 * timers, which other goroutines may stop or free at any time, out of
 * gort__movetimers when the dedicated P is given back. */
static gort__p_t *public_timer_p(void)
{
    gort__p_t *pp = gort__getm()->p;
    /* allp[0] exists for the whole run (GOMAXPROCS >= 1). */
    return pp->dedicated ? atomic_load_explicit(&gort__rt.allp[0], memory_order_relaxed) : pp;
}

static int64_t deadline_after(int64_t delay)
{
    int64_t now = gort__nanotime();
    if (delay < 0)
        delay = 0;
    if (delay > INT64_MAX - now)
        return INT64_MAX;
    return now + delay;
}

GORT_API int gort_timer_start(gort_timer_t **out, int64_t delay_ns, int64_t period_ns,
                              gort_chan_t *ch, gort_fn fn, void *arg)
{
    if (!gort__api_g())
        return -EPERM;
    if (!out || period_ns < 0 || (!ch) == (!fn))
        return -EINVAL;
    if (ch && gort__chan_elemsize(ch) != sizeof(int64_t))
        return -EINVAL;
    struct gort_timer *pt = calloc(1, sizeof *pt);
    if (!pt)
        return -ENOMEM;
    pt->ch = ch;
    pt->fn = fn;
    pt->arg = arg;
    pt->t.f = public_fire;
    pt->t.idx = -1;
    pt->t.period = period_ns;
    pt->t.when = deadline_after(delay_ns);
    /* *out is set before the timer is armed: a fn goroutine of an early
     * firing may already use it. */
    *out = pt;
    int err = gort__addtimer_on(public_timer_p(), &pt->t);
    if (err) {
        *out = NULL;
        free(pt);
        return err;
    }
    return 0;
}

GORT_API int gort_timer_stop(gort_timer_t *pt)
{
    if (!gort__api_g())
        return -EPERM;
    if (!pt)
        return -EINVAL;
    gort__lock(&pt->oplock);
    bool removed = gort__deltimer(&pt->t);
    gort__unlock(&pt->oplock);
    return removed ? 1 : 0;
}

GORT_API int gort_timer_reset(gort_timer_t *pt, int64_t delay_ns, int64_t period_ns)
{
    if (!gort__api_g())
        return -EPERM;
    if (!pt || period_ns < 0)
        return -EINVAL;
    gort__lock(&pt->oplock);
    bool removed = gort__deltimer(&pt->t);
    pt->t.period = period_ns;
    pt->t.when = deadline_after(delay_ns);
    int err = gort__addtimer_on(public_timer_p(), &pt->t);
    gort__unlock(&pt->oplock);
    if (err)
        return err;
    return removed ? 1 : 0;
}

GORT_API int gort_timer_free(gort_timer_t *pt)
{
    if (!gort__api_g())
        return -EPERM;
    if (!pt)
        return -EINVAL;
    gort__lock(&pt->oplock);
    gort__deltimer(&pt->t);
    gort__unlock(&pt->oplock);
    free(pt);
    return 0;
}

GORT_API int64_t gort_now_ns(void)
{
    return gort__nanotime();
}

GORT_API int gort_sleep_ns(int64_t ns)
{
    if (!gort__api_g())
        return -EPERM;
    if (ns <= 0)
        return 0;
    return gort__sleep_until(deadline_after(ns));
}
