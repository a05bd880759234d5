/*
 * chan.h - the channel and sudog layout shared by chan.c and select.c
 * (Go's hchan, waitq and sudog).
 */
#ifndef GORT_CHAN_H
#define GORT_CHAN_H

#include "internal.h"

/* A goroutine waiting on a channel. It lives on the waiting goroutine's own
 * stack (gort never moves stacks), so it is valid exactly while that
 * goroutine is parked. Fields are protected by the lock of channel c; after
 * the waker dequeues it, only the waker touches it, until gort__ready. */
typedef struct sudog {
    gort__g_t *g;
    struct sudog *next;
    struct sudog *prev;
    void *elem; /* send: the value; recv: the destination (may be NULL) */
    gort_chan_t *c;
    bool isselect; /* a select case: wakers must win g->selectdone first */
    bool success;  /* set by the waker: a value was transferred (false: closed) */
    /* A select's sudog that a waker took off the queue after losing
     * g->selectdone (it counts in c->nstale until the select's pass 3);
     * c->lock. */
    bool stale;
    bool release; /* select's pass 3: the last stale sudog of a freed c */
    /* SG_*. A dedicated goroutine's plain send or receive may wait for its
     * hand-off spinning on its own thread instead of parking (chan.c
     * spin_for_handoff): SG_SPIN while it spins; the waker, under the
     * channel lock, CASes it to SG_DONE (release: element and success are
     * written) and then neither readies the G nor touches sg again; a
     * spinner that gives up parks and CASes it to SG_PARK from its unlockf
     * (after its Gwaiting store, acq_rel; no lock) and is then readied as
     * usual. SG_NOSPIN: every other waiter. */
    _Atomic uint32_t spin;
} sudog_t;

/* The sudog of a plain blocking send or receive (chan.c) that does not wait
 * in the channel's slot, on the waiter's stack: aligned to and filling one
 * cache line, with room for a spinner's element of up to 16 bytes right
 * after the sudog. For such an element the
 * sender copies its value into inl before it queues, and a receiver points
 * sg.elem at inl and copies the value out once served: a spin-caught
 * hand-off then moves the channel's line and this one, and nothing else of
 * the waiter's (its stack, its G). Selects keep plain sudogs. */
typedef struct waiter {
    _Alignas(64) sudog_t sg;
    uint64_t inl[2];
} waiter_t;
_Static_assert(sizeof(waiter_t) == 64, "a waiter is one cache line");

enum { SG_NOSPIN = 0, SG_SPIN = 1, SG_DONE = 2, SG_PARK = 3 };

typedef struct waitq {
    sudog_t *first;
    sudog_t *last;
} waitq_t;

/* States of a channel's slot (c->slot; chan.c, "The slot"). Set under
 * c->lock, except *_SPIN -> *_PARK (the waiter, on g0), DONE -> EMPTY (the
 * waiter, consuming) and DONE -> DONE_FREE (gort_chan_free, after it
 * dropped the lock, racing that exchange). */
enum {
    SLOT_EMPTY = 0,
    SLOT_RECV_SPIN, /* a dedicated receiver spins for its value */
    SLOT_SEND_SPIN, /* a dedicated sender spins for its receiver */
    SLOT_RECV_PARK, /* the receiver gave up spinning and parked: ready it */
    SLOT_SEND_PARK,
    SLOT_DONE,      /* served; the waiter has not consumed it yet */
    SLOT_DONE_FREE, /* served, and freed meanwhile: the waiter frees c */
};

struct gort_chan {
    /* Line 0: all that a hand-off between a waiter and its peer touches. */
    _Alignas(64) gort__mutex_t lock;
    _Atomic uint32_t qcount; /* buffered elements; lock (read relaxed by len) */
    _Atomic uint32_t slot;   /* SLOT_*; see above */
    _Atomic bool closed;     /* lock (read relaxed by the try fast paths) */
    bool slot_ok;            /* lock; the slot waiter's result (false: closed) */
    waitq_t recvq;           /* lock */
    waitq_t sendq;           /* lock */
    union {
        struct { /* unbuffered: the slot's waiter and element; lock */
            gort__g_t *slot_g;
            uint64_t slot_elem;
        };
        struct { /* buffered: ring indices; lock */
            uint32_t sendx;
            uint32_t recvx;
        };
    };
    /* Line 1: immutable, then the rarely written. */
    uint32_t dataqsiz; /* buffer capacity */
    uint32_t elemsize;
    char *buf; /* dataqsiz * elemsize bytes after the struct */
    /* Stale select sudogs (sudog_t.stale) whose select has not yet left
     * its pass 3, which still locks c; and whether gort_chan_free came
     * meanwhile, leaving the free to the pass 3 that ends the last one.
     * c->lock. */
    uint32_t nstale;
    bool freeing;
};
_Static_assert(offsetof(struct gort_chan, dataqsiz) == 64, "a channel's hot fields are one line");

void gort__waitq_enqueue(waitq_t *q, sudog_t *sg);
sudog_t *gort__waitq_dequeue(waitq_t *q);
void gort__waitq_remove(waitq_t *q, sudog_t *sg);

/* The halves of Go's send/recv/closechan that run under c->lock; each
 * returns the G to ready once the caller has unlocked (NULL: none). */
gort__g_t *gort__chan_send_to(gort_chan_t *c, sudog_t *sg, const void *ep);
gort__g_t *gort__chan_recv_from(gort_chan_t *c, sudog_t *sg, void *ep);
/* If c's slot holds a waiting receiver (sender), serve it; c->lock held;
 * the G to ready once unlocked, or NULL, in the last argument. */
bool gort__chan_slot_send(gort_chan_t *c, const void *ep, gort__g_t **rg);
bool gort__chan_slot_recv(gort_chan_t *c, void *ep, gort__g_t **sg);
void gort__chan_bufsend(gort_chan_t *c, const void *ep);
void gort__chan_bufrecv(gort_chan_t *c, void *ep);
/* The free of gort_chan_free, once nothing can touch c but a served slot
 * waiter: frees c, or leaves that to the waiter (slot_consume). Called
 * without c->lock. */
void gort__chan_release(gort_chan_t *c);
/* Select: runs cases with an optional deadline (0: none). */
int gort__selectgo(gort_select_case_t *cases, size_t n, bool block, int64_t deadline);

#endif /* GORT_CHAN_H */
