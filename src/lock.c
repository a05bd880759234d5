/*
 * lock.c - the runtime mutex and notes (Go's lock_futex.go).
 *
 * gort__mutex_t: key is 0 unlocked, 1 locked, 2 locked and somebody may sleep
 * on the futex. lock: one xchg; if contended, spin ACTIVE_SPIN rounds of
 * ACTIVE_SPIN_CNT pauses trying to grab it while it is free, then PASSIVE_SPIN
 * rounds of sched_yield, then announce a sleeper (xchg to 2) and sleep on the
 * futex. unlock: xchg to 0, wake one sleeper if the old value was 2. The
 * xchg that takes the lock is an acquire, the one that releases it a release;
 * they pair with each other.
 *
 * Notes are one-shot events for one sleeper and one waker (M parking):
 * notewakeup sets key to 1 (release, pairs with the acquire load in
 * notesleep) and wakes the futex; a second wakeup without noteclear is a
 * fatal error, as in Go.
 *
 * These locks never park goroutines; they may be held only for short
 * critical sections and never across a goroutine switch.
 */
#include <errno.h>

#include "internal.h"

enum {
    MUTEX_UNLOCKED = GORT__MUTEX_UNLOCKED,
    MUTEX_LOCKED = GORT__MUTEX_LOCKED,
    MUTEX_SLEEPING = GORT__MUTEX_SLEEPING
};
enum { ACTIVE_SPIN = 4, ACTIVE_SPIN_CNT = 30, PASSIVE_SPIN = 1 };

/* Takes l only if it is free (fatal-error paths that must not wait). */
bool gort__trylock(gort__mutex_t *l)
{
    uint32_t expect = MUTEX_UNLOCKED;
    return atomic_compare_exchange_strong_explicit(&l->key, &expect, MUTEX_LOCKED,
                                                   memory_order_acquire, memory_order_relaxed);
}

/* The contended path of gort__lock (internal.h): its xchg found v. */
void gort__lock_slow(gort__mutex_t *l, uint32_t v)
{
    /* wait is the value we store when we take the lock: if somebody was
     * already sleeping we must keep announcing that. */
    uint32_t wait = v;
    for (;;) {
        for (int i = 0; i < ACTIVE_SPIN; i++) {
            while (atomic_load_explicit(&l->key, memory_order_relaxed) == MUTEX_UNLOCKED) {
                uint32_t expect = MUTEX_UNLOCKED;
                if (atomic_compare_exchange_weak_explicit(
                        &l->key, &expect, wait, memory_order_acquire, memory_order_relaxed))
                    return;
            }
            gort__procyield(ACTIVE_SPIN_CNT);
        }
        for (int i = 0; i < PASSIVE_SPIN; i++) {
            while (atomic_load_explicit(&l->key, memory_order_relaxed) == MUTEX_UNLOCKED) {
                uint32_t expect = MUTEX_UNLOCKED;
                if (atomic_compare_exchange_weak_explicit(
                        &l->key, &expect, wait, memory_order_acquire, memory_order_relaxed))
                    return;
            }
            gort__osyield();
        }
        v = atomic_exchange_explicit(&l->key, MUTEX_SLEEPING, memory_order_acquire);
        if (v == MUTEX_UNLOCKED)
            return;
        wait = MUTEX_SLEEPING;
        gort__futexsleep(&l->key, MUTEX_SLEEPING, -1);
    }
}

/* The rest of gort__unlock (internal.h), whose xchg found v != locked. */
void gort__unlock_slow(gort__mutex_t *l, uint32_t v)
{
    if (v == MUTEX_UNLOCKED)
        gort__throw("unlock of unlocked lock");
    if (v == MUTEX_SLEEPING)
        gort__futexwakeup(&l->key, 1);
}

void gort__noteclear(gort__note_t *n)
{
    atomic_store_explicit(&n->key, 0, memory_order_relaxed);
}

void gort__notewakeup(gort__note_t *n)
{
    /* release: pairs with the acquire loads in notesleep/notetsleep, so what
     * the waker wrote before (m->nextp, ...) is visible to the sleeper. */
    uint32_t old = atomic_exchange_explicit(&n->key, 1, memory_order_release);
    if (old != 0)
        gort__throw("notewakeup - double wakeup");
    gort__futexwakeup(&n->key, 1);
}

void gort__notesleep(gort__note_t *n)
{
    while (atomic_load_explicit(&n->key, memory_order_acquire) == 0)
        gort__futexsleep(&n->key, 0, -1);
}

bool gort__notetsleep(gort__note_t *n, int64_t ns)
{
    if (ns < 0) {
        gort__notesleep(n);
        return true;
    }
    int64_t deadline = gort__nanotime() + ns;
    while (atomic_load_explicit(&n->key, memory_order_acquire) == 0) {
        int64_t left = deadline - gort__nanotime();
        if (left <= 0)
            return atomic_load_explicit(&n->key, memory_order_acquire) != 0;
        gort__futexsleep(&n->key, 0, left);
    }
    return true;
}
