/*
 * chan.c - channels (Go's chan.go).
 *
 * A channel is a lock, a ring buffer of dataqsiz elements, and two FIFO
 * queues of waiting goroutines (sudogs, on the waiters' own stacks).
 * Invariants, under c->lock (Go's):
 *  - at least one of sendq and recvq is empty, except for an unbuffered
 *    channel with a single goroutine blocked on both in a select;
 *  - for a buffered channel: qcount > 0 implies recvq is empty, and
 *    qcount < dataqsiz implies sendq is empty.
 * A send to a waiting receiver copies straight into the receiver's
 * destination and readies it into the sender's runnext (gort__ready), so on
 * one P an unbuffered ping-pong is a user-level switch. A receive from a
 * waiting sender on a full buffered channel takes the head of the buffer and
 * moves the sender's value to the tail, keeping FIFO order.
 *
 * The lock is a runtime mutex (a leaf except in select, which takes
 * several channel locks in address order). It is released before any
 * goroutine is readied, and by the park's unlockf for the goroutine that
 * blocks, so a waiter is on its queue before anyone can see it parked.
 *
 * Dedicated goroutines (DedicateOSThread): a plain blocking send or receive
 * of a dedicated goroutine queues its sudog and then spins on it, on its
 * own thread, before it parks (spin_for_handoff; the dedicated spin policy
 * and budget, gort__ded_spin_adapt). Its waker writes the element as usual
 * and, still under the lock, flags the sudog done (sudog_release) instead
 * of readying the G: the hand-off then needs no park, no switch to g0, no
 * status change and no wake-up. Such a sudog is one aligned cache line that
 * also carries an element of up to 16 bytes (waiter_t), and the waker
 * writes the waiter's G only for a select (g->param, the winning case), so
 * a spin-caught hand-off moves two lines between the CPUs, the channel's
 * and the sudog's. A spinner that gives up parks with giveup_handoff as its unlockf,
 * which flags the sudog SG_PARK on g0 once the G is Gwaiting, without the
 * channel lock (a served spinner must not touch the channel again: its
 * receiver may free it at once); if a waker flagged it done first, the G
 * runs on at once. Selects never spin (their sudogs are SG_NOSPIN), but
 * may be the waker of a spinner.
 *
 * The slot (not in Go). Where it can, such a spinner waits in its
 * channel's slot instead of a sudog: an unbuffered channel, an element of
 * at most 8 bytes, the slot free (SLOT_EMPTY) and no other waiter of its
 * direction queued (so the slot's waiter is always the oldest: FIFO holds).
 * The slot (c->slot, slot_g, slot_elem, slot_ok) shares the channel's first
 * cache line with the lock and the queues, so a spin-caught hand-off moves
 * that one line, three times (the waker's lock, the waiter's read, the
 * waiter's release of the slot), where a sudog adds its own line, moved
 * three more times, and a pthread mailbox moves its word three times. The
 * slot is checked before the queues by every waker (chansend, chanrecv,
 * select's pass 1, close: slot_send, slot_recv, slot_serve) and never
 * used by a select's waiter. States (chan.h): the waiter sets *_SPIN under
 * the lock (slot_wait); a waker, under the lock, writes the element and
 * the result and CASes it to SLOT_DONE (release), or, if the waiter gave
 * up and CASed it to *_PARK (slot_giveup, on g0 after its Gwaiting store,
 * without the lock), stores SLOT_DONE and readies slot_g. The served
 * waiter reads its result out of the slot and exchanges it back to
 * SLOT_EMPTY (slot_consume): until then the slot stays taken, and the
 * channel alive: gort_chan_free of a channel whose slot is SLOT_DONE CASes
 * it to SLOT_DONE_FREE and leaves the free to the waiter's exchange, which
 * sees it.
 *
 * Closing wakes every waiter: receivers get ok == false and a zeroed
 * value, senders -EPIPE. Go panics on send to a closed channel and on a
 * double close; we return -EPIPE.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"

#define RELAXED memory_order_relaxed

/* ---- wait queues; c->lock held ---- */

void gort__waitq_enqueue(waitq_t *q, sudog_t *sg)
{
    sg->next = NULL;
    sg->prev = q->last;
    if (q->last)
        q->last->next = sg;
    else
        q->first = sg;
    q->last = sg;
}

sudog_t *gort__waitq_dequeue(waitq_t *q)
{
    for (;;) {
        sudog_t *sg = q->first;
        if (!sg)
            return NULL;
        q->first = sg->next;
        if (q->first)
            q->first->prev = NULL;
        else
            q->last = NULL;
        sg->next = sg->prev = NULL;
        /* A select waiter is on several queues: only the first waker (or its
         * deadline) may have it. acq_rel: pairs with the CAS of competing
         * wakers on other channels. A loser drops the sudog from the queue
         * (as Go) but counts it: its select's pass 3 still locks the
         * channel, which must outlive that (gort_chan_free). */
        if (sg->isselect) {
            uint32_t zero = 0;
            if (!atomic_compare_exchange_strong_explicit(&sg->g->selectdone, &zero, 1,
                                                         memory_order_acq_rel, RELAXED)) {
                sg->stale = true;
                sg->c->nstale++;
                continue;
            }
        }
        return sg;
    }
}

/* Removes sg if it is still queued (Go's dequeueSudoG). */
void gort__waitq_remove(waitq_t *q, sudog_t *sg)
{
    sudog_t *x = sg->prev, *y = sg->next;
    if (x) {
        x->next = y;
        if (y)
            y->prev = x;
        else
            q->last = x;
    } else if (y) {
        y->prev = NULL;
        q->first = y;
    } else if (q->first == sg) {
        q->first = q->last = NULL;
    }
    sg->next = sg->prev = NULL;
}

static void *bufslot(gort_chan_t *c, uint32_t i)
{
    return c->buf + (size_t)i * c->elemsize;
}

static void copyelem(gort_chan_t *c, void *dst, const void *src)
{
    if (!c->elemsize || !dst)
        return;
    if (GORT__LIKELY(src && c->elemsize == 8)) { /* the common word-sized case */
        uint64_t v;
        memcpy(&v, src, 8);
        memcpy(dst, &v, 8);
    } else if (src) {
        memcpy(dst, src, c->elemsize);
    } else {
        memset(dst, 0, c->elemsize);
    }
}

void gort__chan_bufsend(gort_chan_t *c, const void *ep)
{
    copyelem(c, bufslot(c, c->sendx), ep);
    if (++c->sendx == c->dataqsiz)
        c->sendx = 0;
    atomic_store_explicit(&c->qcount, atomic_load_explicit(&c->qcount, RELAXED) + 1, RELAXED);
}

void gort__chan_bufrecv(gort_chan_t *c, void *ep)
{
    void *s = bufslot(c, c->recvx);
    copyelem(c, ep, s);
    if (++c->recvx == c->dataqsiz)
        c->recvx = 0;
    atomic_store_explicit(&c->qcount, atomic_load_explicit(&c->qcount, RELAXED) - 1, RELAXED);
}

/* sg's waiter is served (its element written): records success (false:
 * closed) and, for a select, the winning case in g->param, then returns
 * its G to ready once c->lock is dropped, or NULL if the waiter spins for
 * the hand-off and has just been told (sg may be gone then). c->lock held. */
static GORT__ALWAYS_INLINE gort__g_t *sudog_release(sudog_t *sg, bool success)
{
    gort__g_t *g = sg->g;
    sg->success = success;
    if (sg->isselect)
        g->param = sg; /* for selectgo */
    uint32_t s = SG_SPIN;
    /* A foreign thread serving a spinner readies nobody: record it as
     * ready_foreign would, or checkdead may call the program dead. */
    if (atomic_load_explicit(&sg->spin, RELAXED) == SG_SPIN && GORT__UNLIKELY(!gort__getm()))
        atomic_store_explicit(&gort__sched.foreign_wakers, true, RELAXED);
    /* release: publishes the element and success to the spinner's acquire
     * load. */
    /* acquire: SG_PARK is set by the parked G's unlockf after its
     * Gwaiting store, without c->lock (giveup_handoff). */
    if (atomic_load_explicit(&sg->spin, memory_order_acquire) == SG_SPIN &&
        atomic_compare_exchange_strong_explicit(&sg->spin, &s, SG_DONE, memory_order_release,
                                                memory_order_acquire))
        return NULL;
    return g;
}

gort__g_t *gort__chan_send_to(gort_chan_t *c, sudog_t *sg, const void *ep)
{
    copyelem(c, sg->elem, ep);
    return sudog_release(sg, true);
}

/* Inlined into chanrecv by force: the compiler's size heuristics would
 * otherwise make the hot path of every unbuffered receive a call. */
static GORT__ALWAYS_INLINE gort__g_t *recv_from(gort_chan_t *c, sudog_t *sg, void *ep)
{
    if (c->dataqsiz == 0) {
        copyelem(c, ep, sg->elem);
    } else {
        /* The buffer is full: take its head, put the sender's value at the
         * tail (the same slot). */
        void *s = bufslot(c, c->recvx);
        copyelem(c, ep, s);
        copyelem(c, s, sg->elem);
        if (++c->recvx == c->dataqsiz)
            c->recvx = 0;
        c->sendx = c->recvx;
    }
    return sudog_release(sg, true);
}

gort__g_t *gort__chan_recv_from(gort_chan_t *c, sudog_t *sg, void *ep)
{
    return recv_from(c, sg, ep);
}

static bool unlock_chan(gort__g_t *gp, void *lock)
{
    (void)gp;
    gort__unlock(lock);
    return true;
}

/* Whether gp, about to wait in a plain blocking send or receive, waits for
 * its hand-off spinning on its own thread (SG_SPIN) rather than parking at
 * once: a dedicated goroutine, under the dedicated spin policy. */
static GORT__ALWAYS_INLINE uint32_t handoff_spin(gort__g_t *gp)
{
    return gp->dedicated && gp->m->spin_ns > 0 && gort__spin_allowed(1) ? SG_SPIN : SG_NOSPIN;
}

/* unlockf of a spinner that gives up, on g0 after its Gwaiting store: it
 * is parked unless a waker flagged it done meanwhile (then it runs again
 * at once). Needs no c->lock: c may be freed once sg is served. */
static bool giveup_handoff(gort__g_t *gp, void *arg)
{
    (void)gp;
    sudog_t *sg = arg;
    uint32_t s = SG_SPIN;
    return atomic_compare_exchange_strong_explicit(&sg->spin, &s, SG_PARK, memory_order_acq_rel,
                                                   memory_order_acquire);
}

/* A dedicated goroutine waits for its hand-off on its own thread. Called
 * with c->lock held; released here; c is not touched again. */
static bool handoff_done(const void *arg)
{
    const sudog_t *sg = arg;
    /* acquire: pairs with the waker's release CAS to SG_DONE. */
    return atomic_load_explicit(&sg->spin, memory_order_acquire) == SG_DONE;
}

static GORT__NOINLINE void spin_for_handoff(gort__g_t *gp, gort_chan_t *c, sudog_t *sg,
                                            enum gort__waitreason reason)
{
    gort__unlock(&c->lock);
    if (gort__ded_spin(gp->m, handoff_done, sg) != 1)
        gort__park_g(gp, giveup_handoff, sg, reason);
}

/* ---- the slot ---- */

/* Whether gp, about to block on unbuffered c with its direction's queue
 * empty, waits in c's slot. c->lock held. */
static GORT__ALWAYS_INLINE bool slot_fits(gort_chan_t *c, uint32_t spin)
{
    /* acquire: pairs with the release exchange of the previous waiter's
     * consume (slot_consume), whose reads of the slot then come first. */
    return spin == SG_SPIN && c->dataqsiz == 0 && c->elemsize <= sizeof c->slot_elem &&
           atomic_load_explicit(&c->slot, memory_order_acquire) == SLOT_EMPTY;
}

/* The slot's waiter is served (its element written, or closed: !ok).
 * Returns its G to ready once c->lock is dropped, or NULL if it spins and
 * has just been told. s: the *_SPIN or *_PARK state read under the lock. */
static GORT__ALWAYS_INLINE gort__g_t *slot_serve(gort_chan_t *c, uint32_t s, bool ok)
{
    c->slot_ok = ok;
    if (s == SLOT_RECV_SPIN || s == SLOT_SEND_SPIN) {
        if (GORT__UNLIKELY(!gort__getm())) /* see sudog_release */
            atomic_store_explicit(&gort__sched.foreign_wakers, true, RELAXED);
        /* release: publishes slot_elem and slot_ok to the spinner's acquire
         * load (slot_done). acquire on failure: the waiter's giveup CAS,
         * made after its Gwaiting store. */
        if (atomic_compare_exchange_strong_explicit(&c->slot, &s, SLOT_DONE, memory_order_release,
                                                    memory_order_acquire))
            return NULL;
    }
    /* Parked: read its G before the waiter can consume and free c. */
    gort__g_t *g = c->slot_g;
    /* release: as above, for the readied waiter's acquire in slot_consume. */
    atomic_store_explicit(&c->slot, SLOT_DONE, memory_order_release);
    return g;
}

/* A sender serves the slot's receiver, if there is one. c->lock held; *rg:
 * the G to ready after the unlock. */
static GORT__ALWAYS_INLINE bool slot_send(gort_chan_t *c, const void *ep, gort__g_t **rg)
{
    uint32_t s = atomic_load_explicit(&c->slot, memory_order_acquire);
    /* EMPTY first: the one test a buffered channel pays. */
    if (GORT__LIKELY(s == SLOT_EMPTY) || (s != SLOT_RECV_SPIN && s != SLOT_RECV_PARK))
        return false;
    copyelem(c, &c->slot_elem, ep);
    *rg = slot_serve(c, s, true);
    return true;
}

/* A receiver serves the slot's sender, if there is one. */
static GORT__ALWAYS_INLINE bool slot_recv(gort_chan_t *c, void *ep, gort__g_t **sg)
{
    uint32_t s = atomic_load_explicit(&c->slot, memory_order_acquire);
    if (GORT__LIKELY(s == SLOT_EMPTY) || (s != SLOT_SEND_SPIN && s != SLOT_SEND_PARK))
        return false;
    copyelem(c, ep, &c->slot_elem);
    *sg = slot_serve(c, s, true);
    return true;
}

bool gort__chan_slot_send(gort_chan_t *c, const void *ep, gort__g_t **rg)
{
    return slot_send(c, ep, rg);
}

bool gort__chan_slot_recv(gort_chan_t *c, void *ep, gort__g_t **sg)
{
    return slot_recv(c, ep, sg);
}

static bool slot_done(const void *arg)
{
    const gort_chan_t *c = arg;
    /* acquire: pairs with the waker's release in slot_serve. */
    return atomic_load_explicit(&c->slot, memory_order_acquire) >= SLOT_DONE;
}

/* unlockf of a slot waiter that gives up spinning, on g0 after its Gwaiting
 * store: parked unless served meanwhile. c cannot be freed under it: its
 * slot is busy (gort_chan_free fails) or served and not consumed (the free
 * is left to slot_consume). */
static bool slot_giveup(gort__g_t *gp, void *arg)
{
    (void)gp;
    gort_chan_t *c = arg;
    uint32_t s = atomic_load_explicit(&c->slot, memory_order_acquire);
    if (s != SLOT_RECV_SPIN && s != SLOT_SEND_SPIN)
        return false; /* served: run on */
    /* acq_rel: the waker's CAS (under the lock) sees PARK only after our
     * Gwaiting store. */
    return atomic_compare_exchange_strong_explicit(&c->slot, &s, s + 2, memory_order_acq_rel,
                                                   memory_order_acquire);
}

/* The slot waiter, once served: takes its result (the element into ep for a
 * receiver; NULL for a sender), frees the slot and, if the channel was
 * freed meanwhile, frees it. c is alive until then (gort__chan_release).
 * Returns the result's ok. */
static GORT__NOINLINE bool slot_consume(gort_chan_t *c, void *ep)
{
    /* acquire: pairs with slot_serve's release (also on the park path). */
    (void)atomic_load_explicit(&c->slot, memory_order_acquire);
    bool ok = c->slot_ok;
    copyelem(c, ep, &c->slot_elem);
    /* acq_rel: release orders our reads before the next waiter's writes
     * (its acquire in slot_fits); acquire pairs with gort_chan_free's CAS. */
    if (atomic_exchange_explicit(&c->slot, SLOT_EMPTY, memory_order_acq_rel) == SLOT_DONE_FREE)
        free(c);
    return ok;
}

/* Waits in c's slot (set to st by the caller, with c->lock held; released
 * here): spins, then parks. Returns the result's ok. */
static GORT__NOINLINE bool slot_wait(gort__g_t *gp, gort_chan_t *c, uint32_t st, void *ep,
                                     enum gort__waitreason reason)
{
    c->slot_g = gp;
    atomic_store_explicit(&c->slot, st, RELAXED); /* under the lock, as the wakers' loads */
    gort__unlock(&c->lock);
    if (gort__ded_spin(gp->m, slot_done, c) != 1)
        gort__park_g(gp, slot_giveup, c, reason);
    return slot_consume(c, ep);
}

/* ---- send ---- */

/* Inlined into each caller so that the blocking and the try variants each
 * drop the branches on block that they do not need. gp: the calling
 * goroutine, or NULL (try variants, any thread). */
static GORT__ALWAYS_INLINE int chansend(gort_chan_t *c, const void *ep, bool block, gort__g_t *gp)
{
    /* Fast path (Go's, for buffered channels only: the wait queues are not
     * atomics): a non-blocking send on an open, full channel fails without
     * the lock. A racing close could make the answer -EPIPE instead; either
     * order is a valid linearisation. */
    if (!block && c->dataqsiz > 0 && !atomic_load_explicit(&c->closed, RELAXED) &&
        atomic_load_explicit(&c->qcount, RELAXED) == c->dataqsiz)
        return -EAGAIN;
    gort__lock(&c->lock);
    if (atomic_load_explicit(&c->closed, RELAXED)) {
        gort__unlock(&c->lock);
        return -EPIPE;
    }
    gort__g_t *rg;
    if (slot_send(c, ep, &rg)) {
        gort__unlock(&c->lock);
        if (rg)
            gort__ready_by(gp, rg);
        return 0;
    }
    sudog_t *sg = gort__waitq_dequeue(&c->recvq);
    if (sg) {
        rg = gort__chan_send_to(c, sg, ep);
        gort__unlock(&c->lock);
        if (rg)
            gort__ready_by(gp, rg);
        return 0;
    }
    if (atomic_load_explicit(&c->qcount, RELAXED) < c->dataqsiz) {
        gort__chan_bufsend(c, ep);
        gort__unlock(&c->lock);
        return 0;
    }
    if (!block) {
        gort__unlock(&c->lock);
        return -EAGAIN;
    }
    uint32_t spin = handoff_spin(gp);
    if (slot_fits(c, spin) && !c->sendq.first) {
        copyelem(c, &c->slot_elem, ep);
        return slot_wait(gp, c, SLOT_SEND_SPIN, NULL, waitReasonChanSend) ? 0 : -EPIPE;
    }
    waiter_t w = {.sg = {.g = gp, .elem = (void *)ep, .c = c, .spin = spin}};
    if (w.sg.spin == SG_SPIN && ep && c->elemsize <= sizeof w.inl) {
        memcpy(w.inl, ep, c->elemsize); /* see waiter_t */
        w.sg.elem = w.inl;
    }
    gort__waitq_enqueue(&c->sendq, &w.sg);
    if (w.sg.spin == SG_SPIN)
        spin_for_handoff(gp, c, &w.sg, waitReasonChanSend);
    else
        gort__park_g(gp, unlock_chan, &c->lock, waitReasonChanSend);
    /* Woken by a receiver (success) or by close. */
    return w.sg.success ? 0 : -EPIPE;
}

/* ---- receive ---- */

static GORT__ALWAYS_INLINE int chanrecv(gort_chan_t *c, void *ep, bool *okp, bool block,
                                        gort__g_t *gp)
{
    bool ok = false;
    if (!block && c->dataqsiz > 0 && !atomic_load_explicit(&c->closed, RELAXED) &&
        atomic_load_explicit(&c->qcount, RELAXED) == 0)
        return -EAGAIN;
    gort__lock(&c->lock);
    if (atomic_load_explicit(&c->closed, RELAXED) &&
        atomic_load_explicit(&c->qcount, RELAXED) == 0) {
        gort__unlock(&c->lock);
        copyelem(c, ep, NULL);
        goto out;
    }
    gort__g_t *sgp;
    if (slot_recv(c, ep, &sgp)) {
        gort__unlock(&c->lock);
        if (sgp)
            gort__ready_by(gp, sgp);
        ok = true;
        goto out;
    }
    sudog_t *sg = gort__waitq_dequeue(&c->sendq);
    if (sg) {
        sgp = recv_from(c, sg, ep);
        gort__unlock(&c->lock);
        if (sgp)
            gort__ready_by(gp, sgp);
        ok = true;
        goto out;
    }
    if (atomic_load_explicit(&c->qcount, RELAXED) > 0) {
        gort__chan_bufrecv(c, ep);
        gort__unlock(&c->lock);
        ok = true;
        goto out;
    }
    if (!block) {
        gort__unlock(&c->lock);
        return -EAGAIN;
    }
    uint32_t spin = handoff_spin(gp);
    if (slot_fits(c, spin) && !c->recvq.first) {
        ok = slot_wait(gp, c, SLOT_RECV_SPIN, ep, waitReasonChanReceive);
        goto out;
    }
    waiter_t w = {.sg = {.g = gp, .elem = ep, .c = c, .spin = spin}};
    /* c may be freed as soon as we are served: its element size is read now. */
    uint32_t inl = w.sg.spin == SG_SPIN && ep && c->elemsize <= sizeof w.inl ? c->elemsize : 0;
    if (inl)
        w.sg.elem = w.inl; /* see waiter_t */
    gort__waitq_enqueue(&c->recvq, &w.sg);
    if (w.sg.spin == SG_SPIN)
        spin_for_handoff(gp, c, &w.sg, waitReasonChanReceive);
    else
        gort__park_g(gp, unlock_chan, &c->lock, waitReasonChanReceive);
    if (inl)
        memcpy(ep, w.inl, inl);
    ok = w.sg.success; /* false: closed (close zeroed *ep) */
out:
    if (okp)
        *okp = ok;
    return 0;
}

/* ---- public ---- */

GORT_API int gort_chan_make(gort_chan_t **out, size_t elem_size, size_t cap)
{
    if (!out || elem_size > GORT_CHAN_ELEM_MAX || cap > INT32_MAX)
        return -EINVAL;
    size_t bytes = elem_size * cap;
    if (cap && bytes / cap != elem_size)
        return -EINVAL;
    if (bytes > SIZE_MAX - sizeof(gort_chan_t) - 64)
        return -ENOMEM;
    /* Line-aligned, so that the hot fields are one line (chan.h). */
    size_t size = (sizeof(gort_chan_t) + bytes + 63) & ~(size_t)63;
    gort_chan_t *c = aligned_alloc(64, size);
    if (!c)
        return -ENOMEM;
    memset(c, 0, size);
    c->dataqsiz = (uint32_t)cap;
    c->elemsize = (uint32_t)elem_size;
    c->buf = (char *)(c + 1);
    *out = c;
    return 0;
}

void gort__chan_release(gort_chan_t *c)
{
    /* A served slot waiter may still read c: then it frees c when done
     * (slot_consume), and we must not touch c after the CAS. acq_rel: pairs
     * with its exchange. */
    uint32_t s = atomic_load_explicit(&c->slot, memory_order_acquire);
    if (s == SLOT_DONE &&
        atomic_compare_exchange_strong_explicit(&c->slot, &s, SLOT_DONE_FREE, memory_order_acq_rel,
                                                memory_order_acquire))
        return;
    free(c);
}

GORT_API int gort_chan_free(gort_chan_t *c)
{
    if (!c)
        return -EINVAL;
    gort__lock(&c->lock);
    uint32_t s = atomic_load_explicit(&c->slot, memory_order_relaxed);
    bool busy = c->recvq.first || c->sendq.first || (s != SLOT_EMPTY && s < SLOT_DONE);
    /* A select served elsewhere still has to lock c once to forget its
     * stale sudog here: its pass 3 frees c (select.c). */
    bool later = !busy && c->nstale > 0;
    if (later)
        c->freeing = true;
    gort__unlock(&c->lock);
    if (busy)
        return -EBUSY;
    if (!later)
        gort__chan_release(c);
    return 0;
}

GORT_API int gort_chan_send(gort_chan_t *c, const void *elem)
{
    if (!c)
        return -EINVAL;
    gort__g_t *gp = gort__api_g();
    if (!gp)
        return -EPERM;
    return chansend(c, elem, true, gp);
}

GORT_API int gort_chan_recv(gort_chan_t *c, void *elem, bool *ok)
{
    if (!c)
        return -EINVAL;
    gort__g_t *gp = gort__api_g();
    if (!gp)
        return -EPERM;
    return chanrecv(c, elem, ok, true, gp);
}

GORT_API int gort_chan_try_send(gort_chan_t *c, const void *elem)
{
    if (!c)
        return -EINVAL;
    return chansend(c, elem, false, NULL);
}

GORT_API int gort_chan_try_recv(gort_chan_t *c, void *elem, bool *ok)
{
    if (!c)
        return -EINVAL;
    return chanrecv(c, elem, ok, false, NULL);
}

GORT_API int gort_chan_send_deadline(gort_chan_t *c, const void *elem, int64_t deadline_ns)
{
    if (!c)
        return -EINVAL;
    if (!gort__api_g())
        return -EPERM;
    gort_select_case_t cas = {.chan = c, .dir = GORT_SELECT_SEND, .elem = (void *)elem};
    int r = gort__selectgo(&cas, 1, true, deadline_ns > 0 ? deadline_ns : 1);
    if (r < 0)
        return r;
    return cas.ok ? 0 : -EPIPE;
}

GORT_API int gort_chan_recv_deadline(gort_chan_t *c, void *elem, bool *ok, int64_t deadline_ns)
{
    if (!c)
        return -EINVAL;
    if (!gort__api_g())
        return -EPERM;
    gort_select_case_t cas = {.chan = c, .dir = GORT_SELECT_RECV, .elem = elem};
    int r = gort__selectgo(&cas, 1, true, deadline_ns > 0 ? deadline_ns : 1);
    if (r < 0)
        return r;
    if (ok)
        *ok = cas.ok;
    return 0;
}

GORT_API int gort_chan_close(gort_chan_t *c)
{
    if (!c)
        return -EINVAL;
    gort__lock(&c->lock);
    if (atomic_load_explicit(&c->closed, RELAXED)) {
        gort__unlock(&c->lock);
        return -EPIPE;
    }
    atomic_store_explicit(&c->closed, true, RELAXED);
    gort__g_t *head = NULL, *tail = NULL;
    uint32_t s = atomic_load_explicit(&c->slot, memory_order_acquire);
    if (s >= SLOT_RECV_SPIN && s <= SLOT_SEND_PARK) {
        c->slot_elem = 0; /* a receiver gets the zero value */
        head = tail = slot_serve(c, s, false);
        if (head)
            head->schedlink = NULL;
    }
    sudog_t *sg;
    for (int q = 0; q < 2; q++) {
        while ((sg = gort__waitq_dequeue(q == 0 ? &c->recvq : &c->sendq)) != NULL) {
            if (q == 0)
                copyelem(c, sg->elem, NULL);
            else
                sg->elem = NULL;
            gort__g_t *g = sudog_release(sg, false); /* NULL: a spinner, told */
            if (!g)
                continue;
            g->schedlink = NULL;
            if (tail)
                tail->schedlink = g;
            else
                head = g;
            tail = g;
        }
    }
    gort__unlock(&c->lock);
    while (head) {
        gort__g_t *next = head->schedlink;
        gort__ready(head);
        head = next;
    }
    return 0;
}

GORT_API ssize_t gort_chan_len(gort_chan_t *c)
{
    if (!c)
        return -EINVAL;
    return atomic_load_explicit(&c->qcount, RELAXED);
}

GORT_API ssize_t gort_chan_cap(gort_chan_t *c)
{
    if (!c)
        return -EINVAL;
    return c->dataqsiz;
}

size_t gort__chan_elemsize(gort_chan_t *c)
{
    return c->elemsize;
}

void gort__chan_trysend_from_timer(gort_chan_t *c, const void *elem)
{
    (void)chansend(c, elem, false, NULL);
}
