/*
 * sync.c - goroutine synchronisation built on gort__park / gort__ready.
 * Every wait parks the goroutine, never its thread.
 *
 * WaitGroup (Go's sync.WaitGroup): `state` packs the counter (high 32
 * bits) and the number of registered waiters (low 32), changed only by
 * CAS / add, so the counter never goes negative, even for a moment. A
 * waiter registers (waiters + 1) under `lock` only while the counter is
 * not zero, queues itself and parks with an unlockf that drops the lock.
 * The add that brings the counter to zero touches the WaitGroup again only
 * if waiters were registered: then they are all parked or about to park
 * under the lock, so the memory is alive until they are woken; it takes
 * the lock, resets the waiters and readies every queued waiter. With no
 * registered waiter it returns at once: a Wait that saw zero may already
 * have returned and freed the WaitGroup (it may live on a goroutine's
 * stack), which is what Go's Add guarantees too. seq_cst on state.
 * Waiters are woken in FIFO order.
 */
#include <errno.h>
#include <limits.h>

#include "internal.h"

typedef struct wg {
    _Atomic uint64_t state; /* counter << 32 | registered waiters */
    gort__mutex_t lock;
    uint32_t pad;
    gort__g_t *head; /* waiters, FIFO through waitlink; lock */
    gort__g_t *tail;
} wg_t;

_Static_assert(sizeof(wg_t) <= sizeof(gort_waitgroup_t), "gort_waitgroup_t too small");
_Static_assert(_Alignof(wg_t) <= _Alignof(gort_waitgroup_t), "gort_waitgroup_t misaligned");

#define WG_COUNT(s)   ((int32_t)((s) >> 32))
#define WG_WAITERS(s) ((uint32_t)(s))

void gort_waitgroup_init(gort_waitgroup_t *wg)
{
    wg_t *w = (wg_t *)wg;
    atomic_init(&w->state, 0);
    w->pad = 0;
    atomic_init(&w->lock.key, 0);
    w->head = w->tail = NULL;
}

int gort_waitgroup_add(gort_waitgroup_t *wg, int delta)
{
    if (!wg)
        return -EINVAL;
    wg_t *w = (wg_t *)wg;
    uint64_t v = atomic_load(&w->state), nv;
    do {
        long long t = (long long)WG_COUNT(v) + delta;
        if (t < 0)
            return -EINVAL;
        if (t > INT32_MAX)
            return -EOVERFLOW;
        nv = ((uint64_t)(uint32_t)t << 32) | WG_WAITERS(v);
    } while (!atomic_compare_exchange_weak(&w->state, &v, nv));
    if (WG_COUNT(nv) != 0 || delta == 0 || WG_WAITERS(nv) == 0)
        return 0; /* nobody to wake: do not touch w again */
    gort__lock(&w->lock);
    gort__g_t *gp = w->head;
    w->head = w->tail = NULL;
    /* The woken waiters are not waiting any more (the counter is kept: an
     * add for reuse may have come in already, which Go calls misuse). */
    atomic_fetch_and(&w->state, ~(uint64_t)UINT32_MAX);
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
    if (WG_COUNT(atomic_load(&w->state)) == 0)
        return 0;
    gort__lock(&w->lock);
    /* Register, unless the counter is zero by now. */
    uint64_t v = atomic_load(&w->state);
    do {
        if (WG_COUNT(v) == 0) {
            gort__unlock(&w->lock);
            return 0;
        }
    } while (!atomic_compare_exchange_weak(&w->state, &v, v + 1));
    gp->waitlink = NULL;
    if (w->tail)
        w->tail->waitlink = gp;
    else
        w->head = gp;
    w->tail = gp;
    gort__park(unlock_wg, &w->lock, waitReasonWaitGroupWait);
    return 0;
}
