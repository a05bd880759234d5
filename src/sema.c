/*
 * sema.c - the runtime semaphore and the notify list: Go's runtime/sema.go.
 *
 * What it does
 *
 * gort__semacquire1 / gort__semrelease1 are the sleep and wake-up primitive
 * under every goroutine lock in mutex.c, as runtime_Semacquire and
 * runtime_Semrelease are under Go's package sync. As sema.go says, do not
 * think of them as semaphores but as a way to implement sleep and wake-up
 * such that every sleep is paired with one wake-up, even if, because of
 * races, the wake-up comes before the sleep: a release that finds nobody
 * waiting leaves a unit in `count` for the next acquire to take. The same
 * code is the public counting semaphore (gort_sema_*, in mutex.c).
 *
 * gort__notifyList* are Go's notifyList, the ticket queue behind sync.Cond:
 * a waiter takes a ticket (notifyListAdd) while it still holds the user's
 * lock, drops the lock, then waits for its ticket (notifyListWait). Signals
 * advance `notify`; a ticket below `notify` has been notified, whether or not
 * its goroutine had reached the queue yet, so no signal sent after the ticket
 * was taken can be lost.
 *
 * The semaphore protocol (count, nwait, lock, queue)
 *
 *  - acquire: take a unit with a CAS if count > 0 (cansemacquire). If that
 *    fails: lock; nwait++; try cansemacquire again (a release may have come
 *    in between); if it still fails, link a gort__semawaiter_t on our own
 *    stack into the queue and park with an unlockf that drops the lock. On
 *    wake-up: if the releaser handed us its unit (ticket == 1) we are done;
 *    otherwise try cansemacquire and, if another goroutine got there first,
 *    start over (Go does the same: the wake-up is a hint in normal mode),
 *    at the head of the queue (Go: where the caller asked), so waiters stay
 *    first come, first served.
 *  - release: count++, then read nwait; if zero, nobody is waiting or about
 *    to wait and we are done without the lock. Otherwise lock, unlink the
 *    head waiter, nwait--, unlock, then (handoff only) take the unit back
 *    with cansemacquire and give it to the waiter (ticket = 1), then ready
 *    the waiter, then (handoff only, on a G) yield so the waiter, now in our
 *    P's runnext, runs at once on our time slice (Go's goyield).
 *
 * Invariants
 *
 *  - Under the lock, nwait equals the number of queued waiters; outside it,
 *    nwait may also count one waiter per goroutine between its nwait++ and
 *    its queueing, all of which hold the lock. So a release that reads
 *    nwait == 0 after its count++ knows every acquirer that has not yet
 *    queued will see the new count (see "Memory order").
 *  - A waiter is on at most one queue; it is unlinked only by a releaser
 *    under the lock, and only a releaser readies it. Because the waiter
 *    holds the lock from queueing until the scheduler has marked it
 *    Gwaiting and run the unlockf, gort__ready never sees a G that is not
 *    parked yet. The waiter struct is on the waiter's stack: the releaser
 *    reads and writes it only before gort__ready, and remembers whether it
 *    handed off in a local (Go reads s.ticket after goready; its sudog is
 *    not on the stack).
 *  - There are no spurious wake-ups: a parked waiter is readied exactly once.
 *
 * Memory order
 *
 *  The count and nwait form a Dekker pair: the acquirer writes nwait then
 *  reads count, the releaser writes count then reads nwait. All four
 *  accesses are seq_cst, so at least one side sees the other's write: either
 *  the acquirer's cansemacquire sees the new unit, or the releaser sees
 *  nwait > 0 and takes the lock (behind which it finds the waiter queued).
 *  A successful cansemacquire CAS is also an acquire of the unit: it pairs
 *  with the release half of the count increment in semrelease1, so what the
 *  releaser wrote before releasing is visible to the acquirer. A waiter that
 *  got the unit by handoff (ticket == 1) is ordered after the releaser by the
 *  lock and by gort__ready's publication of the G.
 *  The notify list's wait and notify are seq_cst as in Go: notifyListAdd's
 *  increment is read by the fast path of the notifiers without the lock.
 *
 * Locks
 *
 *  Each semaphore and each notify list has its own lock (a gort__mutex_t,
 *  a short spin-then-futex lock). It is a leaf: nothing else is locked while
 *  it is held, and it is dropped before gort__ready (which may take
 *  sched.lock from a foreign thread) and never held across a park except
 *  through the unlockf, which drops it on g0.
 *
 * Alternatives rejected
 *
 *  - Go's global semaphore table (251 roots, each a treap of addresses with
 *    a wait list per address). Go needs it because a sync.Mutex is 8 bytes
 *    and cannot hold a queue; our objects are opaque storage big enough for
 *    a queue head, so each embeds its own root: no hashing, no false sharing
 *    of a root between unrelated locks, O(1) queue operations, and the lifo
 *    insert is a plain push at the head instead of a treap substitution.
 *  - Parking the thread on a futex (as the runtime's own gort__mutex_t
 *    does): it would block every goroutine on that M's P. Waiting here
 *    always parks the goroutine.
 *  - Allocating the waiter (Go's acquireSudog): the waiter is parked until a
 *    releaser is done with it, so its stack frame outlives every use.
 *  - An xadd for the count, as Go: a CAS loop lets gort__semrelease1 refuse
 *    to wrap the count (-EOVERFLOW) for the public semaphore; uncontended it
 *    costs the same one locked instruction.
 */
#include <errno.h>

#include "internal.h"

#define SEQCST memory_order_seq_cst

/* Go's less: a < b for ticket counters that wrap, if their true distance
 * is below 2^31. */
static bool less(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

/* The unlockf of every park here (Go's goparkunlock): on g0, after the G
 * is Gwaiting, drop the queue lock so a releaser may now find and ready
 * it. */
static bool parkunlock(gort__g_t *gp, void *lock)
{
    (void)gp;
    gort__unlock(lock);
    return true;
}

/* GORT_DEBUG >= 3: the queue is well formed and as long as nwait says.
 * Caller holds s->lock. */
static void semvalidate(gort__sema_t *s)
{
    if (GORT_DEBUG < 3)
        return;
    uint32_t n = 0;
    gort__semawaiter_t *last = NULL;
    for (gort__semawaiter_t *w = s->head; w; w = w->next) {
        if (w->g == NULL || w->ticket != 0)
            gort__throw("sema: corrupted wait queue");
        last = w;
        n++;
    }
    if (last != s->tail || n != atomic_load_explicit(&s->nwait, memory_order_relaxed))
        gort__throw("sema: wait queue does not match nwait");
}

bool gort__cansemacquire(gort__sema_t *s)
{
    /* seq_cst: the load is the acquirer's half of the Dekker pair with
     * nwait (see the file comment). */
    uint32_t v = atomic_load_explicit(&s->count, SEQCST);
    for (;;) {
        if (v == 0)
            return false;
        /* seq_cst (acquire on success): pairs with the release increment in
         * semrelease1, so the releaser's writes are visible. */
        if (atomic_compare_exchange_weak_explicit(&s->count, &v, v - 1, SEQCST, SEQCST))
            return true;
    }
}

/* Links w into s's queue: at the tail, or at the head for a waiter that is
 * trying again (lifo). Caller holds s->lock. (Go's semaRoot.queue.) */
static void semqueue(gort__sema_t *s, gort__semawaiter_t *w, bool lifo)
{
    if (lifo) {
        w->next = s->head;
        s->head = w;
        if (s->tail == NULL)
            s->tail = w;
    } else {
        w->next = NULL;
        if (s->tail)
            s->tail->next = w;
        else
            s->head = w;
        s->tail = w;
    }
}

/* Unlinks the first waiter, or returns NULL. Caller holds s->lock. (Go's
 * semaRoot.dequeue.) */
static gort__semawaiter_t *semdequeue(gort__sema_t *s)
{
    gort__semawaiter_t *w = s->head;
    if (w) {
        s->head = w->next;
        if (s->head == NULL)
            s->tail = NULL;
        w->next = NULL;
    }
    return w;
}

void gort__semacquire1(gort__sema_t *s, bool lifo, enum gort__waitreason reason)
{
    gort__g_t *gp = gort__getg();
    GORT__ASSERT(1, gp != NULL);

    /* Easy case. */
    if (gort__cansemacquire(s))
        return;

    /* Harder case: count ourselves in nwait, try once more, queue, sleep.
     * The waiter is dequeued by the releaser that wakes us. */
    gort__semawaiter_t w;
    w.g = gp;
    w.next = NULL;
    w.ticket = 0;
    for (;;) {
        gort__lock(&s->lock);
        /* seq_cst: the acquirer's write in the Dekker pair with count; it
         * disables the "nobody waits" fast path of semrelease1. */
        atomic_fetch_add_explicit(&s->nwait, 1, SEQCST);
        /* Check again to avoid a missed wake-up: a release that read nwait
         * before our increment left its unit in count. */
        if (gort__cansemacquire(s)) {
            /* seq_cst, like every nwait access (Go's Xadd); the lock
             * orders it for the releasers that read nwait under it. */
            atomic_fetch_sub_explicit(&s->nwait, 1, SEQCST);
            gort__unlock(&s->lock);
            break;
        }
        /* Any release after this point sees nwait > 0 and finds us queued
         * once it gets the lock, so go to sleep. */
        semqueue(s, &w, lifo);
        semvalidate(s);
        gort__park(parkunlock, &s->lock, reason);
        /* The releaser unlinked w and wrote w.ticket before gort__ready. */
        if (w.ticket != 0 || gort__cansemacquire(s))
            break;
        /* Another goroutine took the unit before we ran: queue again, at
         * the head, since we were first (Go's runtime semaphore requeues at
         * the tail here, and sync.Mutex asks for the head itself; gort's
         * semaphore promises FIFO to its waiters). */
        lifo = true;
    }
}

int gort__semrelease1(gort__sema_t *s, bool handoff)
{
    /* seq_cst (release): the releaser's write in the Dekker pair with nwait,
     * and the release that the acquirer's cansemacquire CAS pairs with. */
    uint32_t v = atomic_load_explicit(&s->count, memory_order_relaxed);
    do {
        if (GORT__UNLIKELY(v == UINT32_MAX))
            return -EOVERFLOW;
    } while (
        !atomic_compare_exchange_weak_explicit(&s->count, &v, v + 1, SEQCST, memory_order_relaxed));

    /* Easy case: no waiters? This check must come after the increment, to
     * avoid a missed wake-up (see the loop in semacquire1). seq_cst: the
     * releaser's read in the Dekker pair. */
    if (atomic_load_explicit(&s->nwait, SEQCST) == 0)
        return 0;

    /* Harder case: find a waiter and wake it. */
    gort__lock(&s->lock);
    /* Under the lock nwait is exact (see the invariants); seq_cst as every
     * nwait access. */
    if (atomic_load_explicit(&s->nwait, SEQCST) == 0) {
        /* The unit was already taken by a goroutine that had counted
         * itself in nwait and then found it: nobody to wake. */
        gort__unlock(&s->lock);
        return 0;
    }
    gort__semawaiter_t *w = semdequeue(s);
    if (w) /* seq_cst: pairs with the lock-free read above in later releases */
        atomic_fetch_sub_explicit(&s->nwait, 1, SEQCST);
    semvalidate(s);
    gort__unlock(&s->lock);
    if (w == NULL)
        return 0;

    /* w is ours until gort__ready. */
    if (GORT__UNLIKELY(w->ticket != 0))
        gort__throw("corrupted semaphore ticket");
    bool direct = false;
    if (handoff && gort__cansemacquire(s)) {
        w->ticket = 1;
        direct = true;
    }
    gort__g_t *gp = w->g;
    gort__ready(gp);
    if (direct && gort__getg() != NULL) {
        /* Direct G handoff: gort__ready put the waiter in our P's runnext;
         * yield so it runs now and inherits our time slice (Go's goyield,
         * to the local queue tail). Only in handoff mode (a starving
         * sync.Mutex): otherwise another goroutine could take the unit
         * while we yield, which would be wasted work (Go issue 33747). */
        gort__gosched();
    }
    return 0;
}

/* ---- notify list (sync.Cond) ---- */

uint32_t gort__notifyListAdd(gort__notifylist_t *l)
{
    /* May run concurrently (Cond.Wait under a read lock). seq_cst: read
     * without the lock by the notifiers' fast path. */
    return atomic_fetch_add_explicit(&l->wait, 1, SEQCST);
}

void gort__notifyListWait(gort__notifylist_t *l, uint32_t t)
{
    gort__g_t *gp = gort__getg();
    GORT__ASSERT(1, gp != NULL);

    gort__lock(&l->lock);
    /* Return right away if this ticket has already been notified. The lock
     * orders this read after the notifier's store. */
    if (less(t, atomic_load_explicit(&l->notify, memory_order_relaxed))) {
        gort__unlock(&l->lock);
        return;
    }
    /* Enqueue ourselves. */
    gort__semawaiter_t w;
    w.g = gp;
    w.next = NULL;
    w.ticket = t;
    if (l->tail == NULL)
        l->head = &w;
    else
        l->tail->next = &w;
    l->tail = &w;
    gort__park(parkunlock, &l->lock, waitReasonSyncCondWait);
}

void gort__notifyListNotifyAll(gort__notifylist_t *l)
{
    /* Fast path: no new waiters since the last notification. seq_cst: pairs
     * with notifyListAdd's increment. */
    if (atomic_load_explicit(&l->wait, SEQCST) == atomic_load_explicit(&l->notify, SEQCST))
        return;

    /* Take the list out; the waiters are readied after the lock is dropped. */
    gort__lock(&l->lock);
    gort__semawaiter_t *w = l->head;
    l->head = NULL;
    l->tail = NULL;
    /* Every ticket handed out so far is now notified: those already queued
     * are in our local list, the others will see it in notifyListWait.
     * seq_cst: the load pairs with notifyListAdd's increment; the store is
     * read by the notifiers' fast paths (and under the lock by waiters). */
    atomic_store_explicit(&l->notify, atomic_load_explicit(&l->wait, SEQCST), SEQCST);
    gort__unlock(&l->lock);

    while (w) {
        gort__semawaiter_t *next = w->next;
        w->next = NULL;
        gort__ready(w->g); /* w may be gone after this */
        w = next;
    }
}

void gort__notifyListNotifyOne(gort__notifylist_t *l)
{
    /* Fast path: no new waiters since the last notification. seq_cst: pairs
     * with notifyListAdd's increment. */
    if (atomic_load_explicit(&l->wait, SEQCST) == atomic_load_explicit(&l->notify, SEQCST))
        return;

    gort__lock(&l->lock);
    /* Check again under the lock (notify is written only under it, so a
     * relaxed read is exact; wait pairs with notifyListAdd). */
    uint32_t t = atomic_load_explicit(&l->notify, memory_order_relaxed);
    if (t == atomic_load_explicit(&l->wait, SEQCST)) {
        gort__unlock(&l->lock);
        return;
    }
    /* Ticket t is now notified. seq_cst: read by the fast paths. */
    atomic_store_explicit(&l->notify, t + 1, SEQCST);

    /* Find the waiter with ticket t. If it has not queued yet we will not
     * find it, but it will not park once it sees the new notify. The scan
     * stops early in practice: waiters take tickets and queue in nearly the
     * same order (Go's comment). */
    for (gort__semawaiter_t *p = NULL, *w = l->head; w; p = w, w = w->next) {
        if (w->ticket == t) {
            gort__semawaiter_t *n = w->next;
            if (p)
                p->next = n;
            else
                l->head = n;
            if (n == NULL)
                l->tail = p;
            gort__unlock(&l->lock);
            w->next = NULL;
            gort__ready(w->g);
            return;
        }
    }
    gort__unlock(&l->lock);
}
