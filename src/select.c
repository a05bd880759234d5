/*
 * select.c - select over channel cases (Go's select.go, selectgo).
 *
 * 1. pollorder: a uniformly random permutation of the cases with a channel
 *    (Fisher-Yates with the M's random source), so that among ready cases
 *    the choice is uniform.
 * 2. lockorder: the cases sorted by channel address (heap sort, as Go);
 *    sellock takes each distinct channel's lock in that order, so two
 *    selects over the same channels cannot deadlock.
 * 3. Pass 1, in pollorder: the first case that can proceed runs at once.
 * 4. Otherwise (blocking): a sudog per case is queued on its channel, in
 *    lockorder, and the goroutine parks. The park's unlockf (selparkcommit,
 *    on g0) starts the deadline timer if any, then unlocks the channels in
 *    reverse order. It must not touch the goroutine's stack after the last
 *    unlock: the goroutine may already have been readied and be running.
 *    That is safe before the last unlock because a readied select first
 *    re-takes all its channel locks (Go's selunlock comment).
 * 5. A waker (a channel peer, close, or the deadline timer) must win
 *    g->selectdone (0 -> 1) first; it records the winning sudog in g->param
 *    (NULL for the deadline). Pass 3 re-locks the channels and removes the
 *    other sudogs from their queues; it leaves out the winner's channel
 *    when no other case of the select is on it, since the waker, its
 *    operation complete, may already have freed it.
 *
 * Sudogs, pollorder and lockorder live on the goroutine's stack for up to
 * SELECT_STACK_CASES cases, else in one malloc'd block.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"

enum { SELECT_STACK_CASES = 32, SELECT_MAX_CASES = 65536 };

typedef struct selctx {
    gort_select_case_t *cases;
    uint32_t *lockorder;
    uint32_t nlock;
    gort__timer_t *timer; /* NULL: no deadline */
} selctx_t;

/* Locks each distinct channel of the cases in lockorder, except skip (may
 * be NULL). */
static void sellock(gort_select_case_t *cases, uint32_t *lockorder, uint32_t n, gort_chan_t *skip)
{
    gort_chan_t *last = NULL;
    for (uint32_t i = 0; i < n; i++) {
        gort_chan_t *c = cases[lockorder[i]].chan;
        if (c != last && c != skip)
            gort__lock(&c->lock);
        last = c;
    }
}

static void selunlock(gort_select_case_t *cases, uint32_t *lockorder, uint32_t n, gort_chan_t *skip)
{
    /* Reverse order; see the file comment for why nothing may be read
     * after the last unlock. */
    for (uint32_t i = n; i-- > 0;) {
        gort_chan_t *c = cases[lockorder[i]].chan;
        if (i > 0 && cases[lockorder[i - 1]].chan == c)
            continue; /* unlock a channel once, at its first occurrence */
        if (c != skip)
            gort__unlock(&c->lock);
    }
}

static void select_deadline_fire(gort__timer_t *t, int64_t now)
{
    (void)now;
    gort__g_t *gp = t->arg;
    uint32_t zero = 0;
    /* acq_rel: competes with channel wakers in gort__waitq_dequeue. */
    if (atomic_compare_exchange_strong_explicit(&gp->selectdone, &zero, 1, memory_order_acq_rel,
                                                memory_order_relaxed)) {
        gp->param = NULL;
        gort__ready(gp);
    }
}

static bool selparkcommit(gort__g_t *gp, void *arg)
{
    (void)gp;
    selctx_t *ctx = arg;
    /* Room was reserved before the locks; only if a timer moved onto this
     * P meanwhile took it and no memory is left does the select then wait
     * without its deadline. */
    if (ctx->timer && gort__addtimer(ctx->timer) != 0)
        ctx->timer->arg = NULL;
    selunlock(ctx->cases, ctx->lockorder, ctx->nlock, NULL);
    return true;
}

static uintptr_t caddr(gort_select_case_t *cases, uint32_t i)
{
    return (uintptr_t)cases[i].chan;
}

/* Go's heap sort of lockorder by channel address. */
static void sortlockorder(gort_select_case_t *cases, uint32_t *lo, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t j = i, v = lo[i];
        uintptr_t a = caddr(cases, v);
        while (j > 0 && caddr(cases, lo[(j - 1) / 2]) < a) {
            uint32_t k = (j - 1) / 2;
            lo[j] = lo[k];
            j = k;
        }
        lo[j] = v;
    }
    for (uint32_t i = n; i-- > 1;) {
        uint32_t v = lo[i];
        uintptr_t a = caddr(cases, v);
        lo[i] = lo[0];
        uint32_t j = 0, k;
        for (;;) {
            k = j * 2 + 1;
            if (k >= i)
                break;
            if (k + 1 < i && caddr(cases, lo[k]) < caddr(cases, lo[k + 1]))
                k++;
            if (a < caddr(cases, lo[k])) {
                lo[j] = lo[k];
                j = k;
                continue;
            }
            break;
        }
        lo[j] = v;
    }
}

int gort__selectgo(gort_select_case_t *cases, size_t n, bool block, int64_t deadline)
{
    gort__g_t *gp = gort__getg();
    if (block && !gp)
        return -EPERM;
    if (n > SELECT_MAX_CASES || (n && !cases))
        return -EINVAL;
    uint32_t nc = 0;
    for (size_t i = 0; i < n; i++) {
        if (cases[i].dir != GORT_SELECT_SEND && cases[i].dir != GORT_SELECT_RECV)
            return -EINVAL;
        cases[i].ok = false;
        if (cases[i].chan)
            nc++;
    }
    if (nc == 0) {
        if (!block)
            return -EAGAIN;
        if (!deadline)
            return -EINVAL; /* would block forever */
        if (deadline > gort__nanotime()) {
            int r = gort__sleep_until(deadline);
            if (r < 0)
                return r; /* -ENOMEM */
        }
        return -ETIMEDOUT;
    }

    uint32_t sbuf_order[2 * SELECT_STACK_CASES];
    sudog_t sbuf_sg[SELECT_STACK_CASES];
    uint32_t *pollorder = sbuf_order, *lockorder;
    sudog_t *sgs = sbuf_sg;
    void *heap = NULL;
    if (nc > SELECT_STACK_CASES) {
        heap = malloc(nc * (2 * sizeof(uint32_t) + sizeof(sudog_t)));
        if (!heap)
            return -ENOMEM;
        sgs = heap;
        pollorder = (uint32_t *)(sgs + nc);
    }
    lockorder = pollorder + nc;

    /* 1. pollorder: random permutation of the cases with a channel. */
    uint32_t norder = 0;
    for (uint32_t i = 0; i < (uint32_t)n; i++) {
        if (!cases[i].chan)
            continue;
        uint32_t j = gort__fastrandn(norder + 1);
        pollorder[norder] = pollorder[j];
        pollorder[j] = i;
        lockorder[norder] = i;
        norder++;
    }
    /* A deadline's timer goes on our P's heap when we park (selparkcommit),
     * where no error can be returned: make room for it now. */
    if (block && deadline && gort__timers_reserve(gort__getm()->p, 1) != 0) {
        free(heap);
        return -ENOMEM;
    }

    /* 2. lockorder by channel address. */
    sortlockorder(cases, lockorder, norder);
    sellock(cases, lockorder, norder, NULL);

    /* 3. pass 1: anything ready? */
    int ret = -1;
    gort__g_t *toready = NULL;
    for (uint32_t k = 0; k < norder; k++) {
        uint32_t i = pollorder[k];
        gort_select_case_t *cas = &cases[i];
        gort_chan_t *c = cas->chan;
        if (cas->dir == GORT_SELECT_RECV) {
            sudog_t *sg;
            if (gort__chan_slot_recv(c, cas->elem, &toready)) {
                cas->ok = true;
            } else if ((sg = gort__waitq_dequeue(&c->sendq)) != NULL) {
                toready = gort__chan_recv_from(c, sg, cas->elem);
                cas->ok = true;
            } else if (atomic_load_explicit(&c->qcount, memory_order_relaxed) > 0) {
                gort__chan_bufrecv(c, cas->elem);
                cas->ok = true;
            } else if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
                if (cas->elem && c->elemsize)
                    memset(cas->elem, 0, c->elemsize);
                cas->ok = false;
            } else {
                continue;
            }
        } else {
            if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
                cas->ok = false;
            } else {
                sudog_t *sg;
                if (gort__chan_slot_send(c, cas->elem, &toready)) {
                    cas->ok = true;
                } else if ((sg = gort__waitq_dequeue(&c->recvq)) != NULL) {
                    toready = gort__chan_send_to(c, sg, cas->elem);
                    cas->ok = true;
                } else if (atomic_load_explicit(&c->qcount, memory_order_relaxed) < c->dataqsiz) {
                    gort__chan_bufsend(c, cas->elem);
                    cas->ok = true;
                } else {
                    continue;
                }
            }
        }
        ret = (int)i;
        break;
    }
    if (ret >= 0 || !block || (deadline && deadline <= gort__nanotime())) {
        selunlock(cases, lockorder, norder, NULL);
        if (toready)
            gort__ready(toready);
        free(heap);
        return ret >= 0 ? ret : !block ? -EAGAIN : -ETIMEDOUT;
    }

    /* 4. pass 2: queue on every channel and park. */
    atomic_store_explicit(&gp->selectdone, 0, memory_order_relaxed);
    gp->param = NULL;
    for (uint32_t k = 0; k < norder; k++) {
        uint32_t i = lockorder[k];
        sudog_t *sg = &sgs[k];
        memset(sg, 0, sizeof *sg);
        sg->g = gp;
        sg->c = cases[i].chan;
        sg->elem = cases[i].elem;
        sg->isselect = true;
        gort__waitq_enqueue(cases[i].dir == GORT_SELECT_RECV ? &sg->c->recvq : &sg->c->sendq, sg);
    }
    gort__timer_t timer;
    selctx_t ctx = {.cases = cases, .lockorder = lockorder, .nlock = norder, .timer = NULL};
    if (deadline) {
        memset(&timer, 0, sizeof timer);
        timer.when = deadline;
        timer.f = select_deadline_fire;
        timer.arg = gp;
        timer.idx = -1;
        ctx.timer = &timer;
    }
    gort__park(selparkcommit, &ctx, waitReasonSelect);
    if (deadline)
        gort__deltimer(&timer);

    /* 5. pass 3: find the winner, dequeue the rest. The winner's waker set
     * gp->param before it readied us. Its channel is not locked again when
     * no other case of ours is on it: the waker has taken our sudog off it
     * and, its send or receive complete, may have freed it already. Every
     * other channel outlives this pass: one of our sudogs is still queued
     * on it (gort_chan_free says -EBUSY) or was taken off by a waker that
     * lost to our winner and is counted in c->nstale (gort_chan_free then
     * leaves the free to us). */
    sudog_t *win = gp->param;
    gp->param = NULL;
    gort_chan_t *skip = NULL;
    if (win) {
        skip = win->c;
        for (uint32_t k = 0; k < norder && skip; k++)
            if (&sgs[k] != win && cases[lockorder[k]].chan == skip)
                skip = NULL;
    }
    sellock(cases, lockorder, norder, skip);
    for (uint32_t k = 0; k < norder; k++) {
        uint32_t i = lockorder[k];
        sudog_t *sg = &sgs[k];
        if (sg == win) {
            ret = (int)i;
            cases[i].ok = sg->success;
        } else if (sg->stale) {
            /* A waker that lost to our winner took it off (chan.c); if the
             * channel was freed since, its free is ours once unlocked. */
            sg->release = --sg->c->nstale == 0 && sg->c->freeing;
        } else {
            gort__waitq_remove(cases[i].dir == GORT_SELECT_RECV ? &sg->c->recvq : &sg->c->sendq,
                               sg);
        }
    }
    selunlock(cases, lockorder, norder, skip);
    for (uint32_t k = 0; k < norder; k++)
        if (sgs[k].release)
            gort__chan_release(sgs[k].c);
    free(heap);
    if (ret < 0)
        return -ETIMEDOUT;
    return ret;
}

GORT_API int gort_select(gort_select_case_t *cases, size_t n, unsigned flags)
{
    gort__api_g(); /* a preemption point */
    if (flags & ~GORT_SELECT_NONBLOCK)
        return -EINVAL;
    return gort__selectgo(cases, n, !(flags & GORT_SELECT_NONBLOCK), 0);
}

GORT_API int gort_select_deadline(gort_select_case_t *cases, size_t n, int64_t deadline_ns)
{
    gort__api_g(); /* a preemption point */
    if (deadline_ns <= 0)
        deadline_ns = 1; /* 0 means "no deadline" internally; the past is the past */
    return gort__selectgo(cases, n, true, deadline_ns);
}
