/*
 * mutex.c - goroutine locks: Go's sync.Mutex, sync.RWMutex, sync.Cond,
 * sync.Once, and the public counting semaphore. All waiting parks the
 * goroutine (through the runtime semaphore and notify list of sema.c),
 * never its thread. The code follows sync/mutex.go, rwmutex.go, cond.go and
 * once.go closely and keeps their names (lockSlow, unlockSlow, rUnlockSlow,
 * doSlow).
 *
 * Mutex
 *
 *  state is Go's: bit 0 locked, bit 1 woken (an unlocker has woken a waiter
 *  or a spinner promised to take the lock: do not wake another), bit 2
 *  starving, bits 3.. the number of goroutines waiting on sema. The fast path
 *  is one CAS 0 -> locked. lockSlow spins a few rounds while the lock is held
 *  by a running goroutine (gort__sync_canspin: GOMAXPROCS > 1, another P
 *  busy, our run queue empty), then counts itself as a waiter and sleeps on
 *  sema.
 *
 *  Two modes (Go's essay in mutex.go). Normal: waiters queue FIFO, but a
 *  woken waiter does not own the lock; it competes with newly arriving
 *  goroutines, which usually win because they are already running; a waiter
 *  that loses goes back to the front of the queue (lifo). A waiter that has
 *  waited more than 1 ms (starvationThresholdNs) switches the mutex to
 *  starvation mode: unlock hands ownership straight to the first waiter
 *  (semrelease1 with handoff, which also yields the unlocker's P to it), and
 *  new arrivals neither take a seemingly free lock nor spin; they queue at
 *  the tail. In starvation mode the locked bit stays clear during a handoff
 *  (the starving bit keeps others out); the waiter sets it when it runs. A
 *  waiter that gets the lock and either is the last one or waited less than
 *  1 ms switches back to normal mode. Normal mode is much faster (a goroutine
 *  can take the lock many times in a row); starvation mode bounds the tail
 *  latency.
 *
 *  Invariants: the waiter count equals the goroutines that counted
 *  themselves in and have not been woken (each unlocker that wakes one
 *  subtracts it); starving implies waiters > 0; woken is set by at most one
 *  party at a time and cleared by the goroutine it refers to.
 *
 *  Misuse: unlocking an unlocked mutex is fatal in Go. Here unlock is a CAS
 *  loop that refuses (-EPERM) and leaves state untouched when the locked bit
 *  is clear. Rejected: Go's xadd(-locked), which is one instruction but, on
 *  an unlocked mutex, briefly writes a corrupt state (all flags, a huge
 *  waiter count) that a concurrent locker could act on before a repair.
 *  Uncontended, the CAS is the same one locked instruction; it only retries
 *  when waiters change state concurrently.
 *
 * RWMutex (Go's rwmutex.go)
 *
 *  A writer first takes w (a Mutex: writers exclude each other), then
 *  subtracts rwmutexMaxReaders from readerCount, which makes every later
 *  rlock see a negative count and sleep on readerSem: a pending writer keeps
 *  new readers out, so writers are not starved by a stream of readers. The
 *  readers that were active when the writer arrived (r) are added to
 *  readerWait; each of them, on runlock, sees a negative readerCount and
 *  decrements readerWait; the last one releases writerSem. Unlock adds
 *  rwmutexMaxReaders back, releases readerSem once per reader that blocked
 *  meanwhile, then unlocks w. readerCount therefore is (readers holding or
 *  waiting) - (rwmutexMaxReaders if a writer holds or waits for the lock).
 *
 *  Misuse: runlock with no reader at all (readerCount 0 or
 *  -rwmutexMaxReaders) and unlock with no writer holding the lock (`held`;
 *  readerCount alone cannot tell a holding writer from a waiting one)
 *  return -EPERM and change nothing: both are CAS loops rather than Go's xadd, for
 *  the reason given for Mutex (a runlock that briefly made readerCount -1
 *  would let a concurrent writer count one reader too many and sleep
 *  forever). A runlock by a goroutine that holds no read lock while other
 *  readers hold or wait cannot be told apart from a correct one (nor in Go).
 *
 * Cond (Go's cond.go)
 *
 *  wait takes a ticket from the notify list while the caller still holds m,
 *  unlocks m, waits for the ticket, then locks m again: a signal sent after
 *  the ticket was taken cannot be lost, even if it comes before the waiter
 *  parks. There are no spurious wake-ups, but as in Go a waiter must still
 *  re-check its condition in a loop (another goroutine may take m first).
 *  Go's copy checker is left out (the opaque struct has no room for it and
 *  copying is documented as undefined).
 *
 * Once (Go's once.go)
 *
 *  done is read with an acquire load on the fast path; the slow path runs fn
 *  under the mutex and publishes done with a release store after fn
 *  returns, so every caller returns only after fn has completed, and sees
 *  its effects. Rejected: a CAS on done that lets one caller run fn and the
 *  others return at once (Go's comment explains why that is wrong: callers
 *  must see fn's effects).
 *
 * Semaphore
 *
 *  gort_sema_t is a gort__sema_t: acquire is semacquire1 (FIFO, no lifo),
 *  release is semrelease1 without handoff.
 *
 * Contexts: blocking calls (mutex lock, rwmutex rlock/lock, cond wait, once,
 * sema acquire) need a goroutine and return -EPERM from a foreign thread
 * before touching the object, even when the call would not have blocked, so
 * the behaviour does not depend on timing. They are preemption points
 * (gort__api_g), at entry only, before this call holds anything. trylock, unlock, runlock, signal,
 * broadcast, try_acquire and release work anywhere: a goroutine they wake
 * goes to the global run queue from a foreign thread.
 *
 * Locks: none of their own. The semaphores and the notify list have leaf
 * locks (sema.c). A goroutine may hold any number of these objects while it
 * parks; that is what they are for.
 *
 * Memory order: each CAS or RMW that takes a lock is an acquire and pairs
 * with the release of the operation that last released it; each that
 * releases is a release. The sleep and wake-up through sema.c add their own
 * ordering, so the waiter-count bookkeeping needs nothing stronger.
 */
#include <errno.h>

#include "internal.h"

#define RELAXED memory_order_relaxed
#define ACQUIRE memory_order_acquire
#define RELEASE memory_order_release
#define ACQREL  memory_order_acq_rel

/* ---- Mutex ---- */

enum {
    mutexLocked = 1,
    mutexWoken = 2,
    mutexStarving = 4,
    mutexWaiterShift = 3,
};
#define starvationThresholdNs ((int64_t)1000000)
#define active_spin_cnt       30 /* Go's active_spin_cnt: PAUSEs per spin round */

typedef struct mutex {
    _Atomic int32_t state;
    uint32_t pad;
    gort__sema_t sema;
} mutex_t;

_Static_assert(sizeof(mutex_t) <= sizeof(gort_mutex_t), "gort_mutex_t too small");
_Static_assert(_Alignof(mutex_t) <= _Alignof(gort_mutex_t), "gort_mutex_t misaligned");

static void lockSlow(mutex_t *m, enum gort__waitreason reason)
{
    int64_t waitStartTime = 0;
    bool starving = false;
    bool awoke = false;
    int iter = 0;
    int32_t old = atomic_load_explicit(&m->state, RELAXED);
    for (;;) {
        /* Do not spin in starvation mode: ownership is handed to waiters,
         * so we could not take the mutex anyway. */
        if ((old & (mutexLocked | mutexStarving)) == mutexLocked && gort__sync_canspin(iter)) {
            /* Spinning makes sense. Try to set the woken flag to tell
             * unlock not to wake another sleeping goroutine. */
            if (!awoke && (old & mutexWoken) == 0 && (old >> mutexWaiterShift) != 0 &&
                atomic_compare_exchange_strong_explicit(&m->state, &old, old | mutexWoken, RELAXED,
                                                        RELAXED))
                awoke = true;
            gort__procyield(active_spin_cnt); /* Go's runtime_doSpin */
            iter++;
            old = atomic_load_explicit(&m->state, RELAXED);
            continue;
        }
        int32_t newstate = old;
        /* Do not try to take a starving mutex: new arrivals must queue. */
        if ((old & mutexStarving) == 0)
            newstate |= mutexLocked;
        if ((old & (mutexLocked | mutexStarving)) != 0)
            newstate += 1 << mutexWaiterShift;
        /* This goroutine switches the mutex to starvation mode, unless the
         * mutex is unlocked: unlock expects a starving mutex to have
         * waiters, which would not be true then. */
        if (starving && (old & mutexLocked) != 0)
            newstate |= mutexStarving;
        if (awoke) {
            /* We were woken (or promised to take the lock while spinning):
             * reset the flag either way. */
            if ((newstate & mutexWoken) == 0)
                gort__throw("sync: inconsistent mutex state");
            newstate &= ~mutexWoken;
        }
        /* acquire: when this CAS takes the lock, pairs with the release CAS
         * in gort_mutex_unlock that freed it. */
        if (atomic_compare_exchange_strong_explicit(&m->state, &old, newstate, ACQUIRE, RELAXED)) {
            if ((old & (mutexLocked | mutexStarving)) == 0)
                break; /* locked the mutex with the CAS */
            /* If we were already waiting before, queue at the front. */
            bool queueLifo = waitStartTime != 0;
            if (waitStartTime == 0)
                waitStartTime = gort__nanotime();
            gort__semacquire1(&m->sema, queueLifo, reason);
            starving = starving || gort__nanotime() - waitStartTime > starvationThresholdNs;
            /* acquire: in starvation mode the lock was handed to us; pairs
             * with the release CAS of the unlock that handed it over. */
            old = atomic_load_explicit(&m->state, ACQUIRE);
            if ((old & mutexStarving) != 0) {
                /* We were woken in starvation mode: ownership is ours, but
                 * state still says unlocked and counts us as a waiter. Fix
                 * that. */
                if ((old & (mutexLocked | mutexWoken)) != 0 || (old >> mutexWaiterShift) == 0)
                    gort__throw("sync: inconsistent mutex state");
                int32_t delta = mutexLocked - (1 << mutexWaiterShift);
                if (!starving || (old >> mutexWaiterShift) == 1) {
                    /* Exit starvation mode. Critical to do it here, taking
                     * the wait time into account: starvation mode is so
                     * inefficient that two goroutines can go lock-step
                     * forever once they switch the mutex to it. */
                    delta -= mutexStarving;
                }
                /* acquire: as above (we own the lock from here). */
                atomic_fetch_add_explicit(&m->state, delta, ACQUIRE);
                break;
            }
            awoke = true;
            iter = 0;
        }
        /* A failed CAS reloaded old. */
    }
}

static int mutex_lock(mutex_t *m, enum gort__waitreason reason)
{
    int32_t old = 0;
    /* Fast path: grab an unlocked mutex. acquire: pairs with the release in
     * unlock. */
    if (GORT__LIKELY(atomic_compare_exchange_strong_explicit(&m->state, &old, mutexLocked, ACQUIRE,
                                                             RELAXED)))
        return 0;
    lockSlow(m, reason);
    return 0;
}

static void unlockSlow(mutex_t *m, int32_t newstate)
{
    if ((newstate & mutexStarving) == 0) {
        int32_t old = newstate;
        for (;;) {
            /* If there are no waiters, or a goroutine has already been woken
             * or has taken the lock, there is nobody to wake. In starvation
             * mode ownership is handed from the unlocker to the next waiter;
             * we are not part of that chain, since we did not see the
             * starving bit when we unlocked above. Get out of the way. */
            if ((old >> mutexWaiterShift) == 0 ||
                (old & (mutexLocked | mutexWoken | mutexStarving)) != 0)
                return;
            /* Grab the right to wake someone. */
            newstate = (old - (1 << mutexWaiterShift)) | mutexWoken;
            if (atomic_compare_exchange_strong_explicit(&m->state, &old, newstate, RELAXED,
                                                        RELAXED)) {
                gort__semrelease1(&m->sema, false);
                return;
            }
        }
    } else {
        /* Starving: hand ownership to the next waiter and yield our time
         * slice so it runs at once. The locked bit stays clear; the waiter
         * sets it. The starving bit keeps newcomers out meanwhile. */
        gort__semrelease1(&m->sema, true);
    }
}

static int mutex_unlock(mutex_t *m)
{
    /* Fast path: locked, nobody waiting. release: pairs with the acquire of
     * the next lock (fast path, lockSlow or trylock). */
    int32_t old = mutexLocked;
    if (GORT__LIKELY(atomic_compare_exchange_strong_explicit(&m->state, &old, 0, RELEASE, RELAXED)))
        return 0;
    int32_t newstate;
    do {
        if (GORT__UNLIKELY((old & mutexLocked) == 0))
            return -EPERM; /* Go: "sync: unlock of unlocked mutex" */
        newstate = old - mutexLocked;
        /* release: as above. */
    } while (!atomic_compare_exchange_weak_explicit(&m->state, &old, newstate, RELEASE, RELAXED));
    if (newstate != 0)
        unlockSlow(m, newstate);
    return 0;
}

static int mutex_trylock(mutex_t *m)
{
    int32_t old = atomic_load_explicit(&m->state, RELAXED);
    if ((old & (mutexLocked | mutexStarving)) != 0)
        return -EBUSY;
    /* A goroutine may be waiting, but we are running now and may take the
     * mutex before it wakes. acquire: pairs with the release in unlock. A
     * failed trylock establishes no ordering (as in Go). */
    if (!atomic_compare_exchange_strong_explicit(&m->state, &old, old | mutexLocked, ACQUIRE,
                                                 RELAXED))
        return -EBUSY;
    return 0;
}

int gort_mutex_lock(gort_mutex_t *m)
{
    if (GORT__UNLIKELY(gort__api_g() == NULL))
        return -EPERM;
    if (GORT__UNLIKELY(m == NULL))
        return -EINVAL;
    return mutex_lock((mutex_t *)m, waitReasonSyncMutexLock);
}

int gort_mutex_trylock(gort_mutex_t *m)
{
    if (GORT__UNLIKELY(m == NULL))
        return -EINVAL;
    return mutex_trylock((mutex_t *)m);
}

int gort_mutex_unlock(gort_mutex_t *m)
{
    if (GORT__UNLIKELY(m == NULL))
        return -EINVAL;
    return mutex_unlock((mutex_t *)m);
}

/* ---- RWMutex ---- */

#define rwmutexMaxReaders ((int32_t)1 << 30)

typedef struct rwmutex {
    mutex_t w;                   /* held while writers are pending */
    gort__sema_t writerSem;      /* a writer waits here for departing readers */
    gort__sema_t readerSem;      /* readers wait here for the writer */
    _Atomic int32_t readerCount; /* pending readers (see the file comment) */
    _Atomic int32_t readerWait;  /* departing readers the writer waits for */
    /* A writer holds the lock (not only waits for it): set by lock once the
     * readers are gone, cleared by the unlock that wins it (exchange), so a
     * stray unlock gets -EPERM also while a writer waits (not in Go). */
    _Atomic bool held;
} rwmutex_t;

_Static_assert(sizeof(rwmutex_t) <= sizeof(gort_rwmutex_t), "gort_rwmutex_t too small");
_Static_assert(_Alignof(rwmutex_t) <= _Alignof(gort_rwmutex_t), "gort_rwmutex_t misaligned");

int gort_rwmutex_rlock(gort_rwmutex_t *rwp)
{
    if (GORT__UNLIKELY(gort__api_g() == NULL))
        return -EPERM;
    if (GORT__UNLIKELY(rwp == NULL))
        return -EINVAL;
    rwmutex_t *rw = (rwmutex_t *)rwp;
    /* acquire: pairs with the release add in gort_rwmutex_unlock (the last
     * writer's critical section is visible to this reader). */
    if (atomic_fetch_add_explicit(&rw->readerCount, 1, ACQUIRE) + 1 < 0) {
        /* A writer is pending: wait for it. */
        gort__semacquire1(&rw->readerSem, false, waitReasonSyncRWMutexRLock);
    }
    return 0;
}

static void rUnlockSlow(rwmutex_t *rw)
{
    /* A writer is pending. acq_rel: the release half makes this reader's
     * critical section visible to the writer; the acquire half orders the
     * readers' decrements with each other, so the one that reaches zero
     * passes all of them on through writerSem. */
    if (atomic_fetch_sub_explicit(&rw->readerWait, 1, ACQREL) - 1 == 0) {
        /* The last reader unblocks the writer. */
        gort__semrelease1(&rw->writerSem, false);
    }
}

int gort_rwmutex_runlock(gort_rwmutex_t *rwp)
{
    if (GORT__UNLIKELY(rwp == NULL))
        return -EINVAL;
    rwmutex_t *rw = (rwmutex_t *)rwp;
    int32_t c = atomic_load_explicit(&rw->readerCount, RELAXED);
    do {
        if (GORT__UNLIKELY(c == 0 || c == -rwmutexMaxReaders))
            return -EPERM; /* Go: "sync: RUnlock of unlocked RWMutex" */
        /* release: pairs with the acquire in gort_rwmutex_lock when it reads
         * the count this reader left (the reader's critical section happens
         * before the writer's). */
    } while (!atomic_compare_exchange_weak_explicit(&rw->readerCount, &c, c - 1, RELEASE, RELAXED));
    if (c - 1 < 0)
        rUnlockSlow(rw);
    return 0;
}

int gort_rwmutex_lock(gort_rwmutex_t *rwp)
{
    if (GORT__UNLIKELY(gort__api_g() == NULL))
        return -EPERM;
    if (GORT__UNLIKELY(rwp == NULL))
        return -EINVAL;
    rwmutex_t *rw = (rwmutex_t *)rwp;
    /* First, resolve competition with other writers. */
    mutex_lock(&rw->w, waitReasonSyncRWMutexLock);
    /* Announce to readers there is a pending writer. acq_rel: the acquire
     * pairs with the release runlocks that finished before (their critical
     * sections are then visible); the release orders it before the
     * readerWait add that departing readers acquire. */
    int32_t r = atomic_fetch_add_explicit(&rw->readerCount, -rwmutexMaxReaders, ACQREL);
    /* r is the old count: the active readers (Go computes it from the new
     * value plus rwmutexMaxReaders). */
    /* Wait for the active readers. acq_rel: pairs with the readers'
     * decrements in rUnlockSlow. */
    if (r != 0 && atomic_fetch_add_explicit(&rw->readerWait, r, ACQREL) + r != 0)
        gort__semacquire1(&rw->writerSem, false, waitReasonSyncRWMutexLock);
    atomic_store_explicit(&rw->held, true, RELAXED);
    return 0;
}

int gort_rwmutex_unlock(gort_rwmutex_t *rwp)
{
    if (GORT__UNLIKELY(rwp == NULL))
        return -EINVAL;
    rwmutex_t *rw = (rwmutex_t *)rwp;
    /* Only the unlock that takes `held` goes on: with a writer merely
     * waiting, readerCount alone looks the same as with one holding. */
    if (!atomic_exchange_explicit(&rw->held, false, RELAXED))
        return -EPERM;
    /* Announce to readers there is no active writer. release: pairs with
     * the acquire add in gort_rwmutex_rlock. */
    int32_t c = atomic_load_explicit(&rw->readerCount, RELAXED);
    do {
        if (GORT__UNLIKELY(c >= 0))
            return -EPERM; /* Go: "sync: Unlock of unlocked RWMutex" */
    } while (!atomic_compare_exchange_weak_explicit(&rw->readerCount, &c, c + rwmutexMaxReaders,
                                                    RELEASE, RELAXED));
    int32_t r = c + rwmutexMaxReaders;
    /* Unblock the readers that arrived while we held the lock, if any. */
    for (int32_t i = 0; i < r; i++)
        gort__semrelease1(&rw->readerSem, false);
    /* Allow other writers to proceed. */
    return mutex_unlock(&rw->w);
}

/* ---- Cond ---- */

typedef struct cond {
    gort__notifylist_t notify;
} cond_t;

_Static_assert(sizeof(cond_t) <= sizeof(gort_cond_t), "gort_cond_t too small");
_Static_assert(_Alignof(cond_t) <= _Alignof(gort_cond_t), "gort_cond_t misaligned");

int gort_cond_wait(gort_cond_t *cp, gort_mutex_t *mp)
{
    if (GORT__UNLIKELY(gort__api_g() == NULL))
        return -EPERM;
    if (GORT__UNLIKELY(cp == NULL || mp == NULL))
        return -EINVAL;
    cond_t *c = (cond_t *)cp;
    mutex_t *m = (mutex_t *)mp;
    /* Refuse before taking a ticket if m is plainly not locked: a ticket
     * that is never waited for would swallow a later signal. */
    if ((atomic_load_explicit(&m->state, RELAXED) & mutexLocked) == 0)
        return -EPERM;
    uint32_t t = gort__notifyListAdd(&c->notify);
    int err = mutex_unlock(m);
    if (GORT__UNLIKELY(err != 0))
        return err; /* m was unlocked by someone else meanwhile: undefined */
    gort__notifyListWait(&c->notify, t);
    return mutex_lock(m, waitReasonSyncMutexLock);
}

int gort_cond_signal(gort_cond_t *cp)
{
    if (GORT__UNLIKELY(cp == NULL))
        return -EINVAL;
    gort__notifyListNotifyOne(&((cond_t *)cp)->notify);
    return 0;
}

int gort_cond_broadcast(gort_cond_t *cp)
{
    if (GORT__UNLIKELY(cp == NULL))
        return -EINVAL;
    gort__notifyListNotifyAll(&((cond_t *)cp)->notify);
    return 0;
}

/* ---- Once ---- */

typedef struct once {
    /* Whether fn has run and returned. First in the struct as in Go: it
     * is on the hot path. */
    _Atomic uint32_t done;
    uint32_t pad;
    mutex_t m;
} once_t;

_Static_assert(sizeof(once_t) <= sizeof(gort_once_t), "gort_once_t too small");
_Static_assert(_Alignof(once_t) <= _Alignof(gort_once_t), "gort_once_t misaligned");

static void doSlow(once_t *o, gort_fn fn, void *arg)
{
    mutex_lock(&o->m, waitReasonSyncMutexLock);
    if (atomic_load_explicit(&o->done, RELAXED) == 0) { /* m orders it */
        fn(arg);
        /* release: pairs with the acquire load in gort_once_do. */
        atomic_store_explicit(&o->done, 1, RELEASE);
    }
    mutex_unlock(&o->m);
}

int gort_once_do(gort_once_t *op, gort_fn fn, void *arg)
{
    if (GORT__UNLIKELY(gort__api_g() == NULL))
        return -EPERM;
    if (GORT__UNLIKELY(op == NULL || fn == NULL))
        return -EINVAL;
    once_t *o = (once_t *)op;
    /* acquire: pairs with the release store in doSlow, so fn's effects are
     * visible to every caller that sees done. */
    if (atomic_load_explicit(&o->done, ACQUIRE) == 0)
        doSlow(o, fn, arg);
    return 0;
}

/* ---- Semaphore ---- */

_Static_assert(sizeof(gort__sema_t) <= sizeof(gort_sema_t), "gort_sema_t too small");
_Static_assert(_Alignof(gort__sema_t) <= _Alignof(gort_sema_t), "gort_sema_t misaligned");

void gort_sema_init(gort_sema_t *sp, uint32_t count)
{
    if (sp == NULL)
        return;
    gort__sema_t *s = (gort__sema_t *)sp;
    atomic_init(&s->count, count);
    atomic_init(&s->nwait, 0);
    atomic_init(&s->lock.key, 0);
    s->pad = 0;
    s->head = s->tail = NULL;
}

int gort_sema_acquire(gort_sema_t *sp)
{
    if (GORT__UNLIKELY(gort__api_g() == NULL))
        return -EPERM;
    if (GORT__UNLIKELY(sp == NULL))
        return -EINVAL;
    gort__semacquire1((gort__sema_t *)sp, false, waitReasonSemacquire);
    return 0;
}

int gort_sema_try_acquire(gort_sema_t *sp)
{
    if (GORT__UNLIKELY(sp == NULL))
        return -EINVAL;
    return gort__cansemacquire((gort__sema_t *)sp) ? 0 : -EAGAIN;
}

int gort_sema_release(gort_sema_t *sp)
{
    if (GORT__UNLIKELY(sp == NULL))
        return -EINVAL;
    return gort__semrelease1((gort__sema_t *)sp, false);
}
