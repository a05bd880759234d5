/*
 * sync.c - goroutine synchronisation built on gort__park / gort__ready.
 * Every wait parks the goroutine, never its thread.
 *
 * WaitGroup (Go's sync.WaitGroup): `counter` is changed with a CAS loop so
 * it never goes negative, even for a moment. Waiters queue under `lock` (a
 * runtime mutex, a leaf) and park with an unlockf that drops it, so a
 * waiter is on the queue before anyone can see it parked. The add that
 * brings the counter to zero takes the lock afterwards and readies every
 * queued waiter: a waiter that checks the counter under the lock either sees
 * zero and returns, or queued itself before that lock was taken and is
 * woken. The counter's seq_cst CAS pairs with the seq_cst load in wait.
 * Waiters are woken in FIFO order.
 */
#include <errno.h>
#include <limits.h>

#include "internal.h"

typedef struct wg {
    _Atomic int32_t counter;
    uint32_t pad;
    gort__mutex_t lock;
    gort__g_t *head; /* waiters, FIFO through waitlink; lock */
    gort__g_t *tail;
} wg_t;

_Static_assert(sizeof(wg_t) <= sizeof(gort_waitgroup_t), "gort_waitgroup_t too small");
_Static_assert(_Alignof(wg_t) <= _Alignof(gort_waitgroup_t), "gort_waitgroup_t misaligned");

void gort_waitgroup_init(gort_waitgroup_t *wg)
{
    wg_t *w = (wg_t *)wg;
    atomic_init(&w->counter, 0);
    w->pad = 0;
    atomic_init(&w->lock.key, 0);
    w->head = w->tail = NULL;
}

int gort_waitgroup_add(gort_waitgroup_t *wg, int delta)
{
    if (!wg)
        return -EINVAL;
    wg_t *w = (wg_t *)wg;
    int32_t v = atomic_load(&w->counter), nv;
    do {
        long long t = (long long)v + delta;
        if (t < 0)
            return -EINVAL;
        if (t > INT32_MAX)
            return -EOVERFLOW;
        nv = (int32_t)t;
    } while (!atomic_compare_exchange_weak(&w->counter, &v, nv));
    if (nv != 0 || delta == 0)
        return 0;
    gort__lock(&w->lock);
    gort__g_t *gp = w->head;
    w->head = w->tail = NULL;
    gort__unlock(&w->lock);
    while (gp) {
        gort__g_t *next = gp->waitlink;
        gp->waitlink = NULL;
        gort__ready(gp);
        gp = next;
    }
    return 0;
}

int gort_waitgroup_done(gort_waitgroup_t *wg)
{
    return gort_waitgroup_add(wg, -1);
}

static bool unlock_wg(gort__g_t *gp, void *lock)
{
    (void)gp;
    gort__unlock(lock);
    return true;
}

int gort_waitgroup_wait(gort_waitgroup_t *wg)
{
    gort__g_t *gp = gort__api_g();
    if (!gp)
        return -EPERM;
    if (!wg)
        return -EINVAL;
    wg_t *w = (wg_t *)wg;
    if (atomic_load(&w->counter) == 0)
        return 0;
    gort__lock(&w->lock);
    if (atomic_load(&w->counter) == 0) {
        gort__unlock(&w->lock);
        return 0;
    }
    gp->waitlink = NULL;
    if (w->tail)
        w->tail->waitlink = gp;
    else
        w->head = gp;
    w->tail = gp;
    gort__park(unlock_wg, &w->lock, waitReasonWaitGroupWait);
    return 0;
}
