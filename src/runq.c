/*
 * runq.c - the per-P local run queue and the global run queue (Go's
 * runqput, runqputslow, runqget, runqgrab, runqsteal, globrunqput,
 * globrunqget in proc.go).
 *
 * Local queue: a ring of GORT__RUNQ_SIZE (256) slots plus `runnext`.
 *  - Only the P's holder writes runqtail and the slots between tail and
 *    head + 256; it publishes a slot with a release store of runqtail, which
 *    pairs with the acquire loads of runqtail in runqgrab (thieves).
 *  - Anyone consumes from the head with a CAS on runqhead (release on
 *    success: pairs with the acquire load of runqhead in runqput, so the
 *    holder only reuses a slot after the consumer has read it).
 *  - A consumer reads a slot before its CAS; if the CAS fails the value is
 *    discarded, so a slot overwritten in between is harmless. Slots are
 *    relaxed atomics so this benign race is visible to TSan as such.
 *  - runnext holds the G that should run next (a G just readied or spawned
 *    by this P). It inherits the current time slice. The holder replaces it
 *    with an exchange (the old one goes to the tail; Go's CAS loop does the
 *    same) and takes it with a CAS; thieves take it with a CAS
 *    only on their last stealing pass, after a 3 us pause if the victim is
 *    running, because the victim is probably about to run it (Go: "a sync
 *    chan send/recv takes ~50ns, 3us gives ~50x overshoot"). Unlike Go,
 *    the thief then gives up if the victim put anything in runnext during
 *    the pause (p->runnextgen, bumped by the holder at every put): Go's CAS
 *    of the G read before the pause succeeds when the victim ran that G and
 *    readied it again, the usual case for two goroutines talking over
 *    channels, and splits the pair across two CPUs. (The pause is ~110 us
 *    here, not 3: the timer slack and an idle vCPU's wake-up.)
 *  - When the ring is full, runqputslow moves half of it plus the new G to
 *    the global queue in one batch (one sched.lock acquisition).
 *  - A solo P (GOMAXPROCS is 1; p->solo, set with the world stopped by
 *    gort__setsolo) has no thieves: there is no other P whose M could steal,
 *    dedicated Ms never steal, and Ms without a P only read queues
 *    (runqempty). Its holder then replaces and takes runnext and advances
 *    runqhead with plain stores instead of an exchange or a CAS, the
 *    read-modify-writes that cost most of a channel ping-pong (each is a
 *    full barrier on x86). wakep needs no #StoreLoad there either: it only
 *    hands out idle Ps, and the one P is ours.
 *
 * runqput and runqget are inline (internal.h): they run on every switch and
 * their frames cost as much as their bodies.
 *
 * Global queue: a FIFO linked through g->schedlink, under sched.lock.
 * runqsize is also read without the lock as a hint.
 */
#include "internal.h"

void (*gort__runq_overflow_hook)(gort__g_t *head, gort__g_t *tail, int32_t n);

#define RELAXED memory_order_relaxed
#define ACQUIRE memory_order_acquire
#define RELEASE memory_order_release
#define SEQCST  memory_order_seq_cst

/* gort__runqput (internal.h) found the ring full at head h, tail t. Returns
 * false if a thief moved the head meanwhile (then there is room again). */
bool gort__runqputslow(gort__p_t *pp, gort__g_t *gp, uint32_t h, uint32_t t)
{
    gort__g_t *batch[GORT__RUNQ_SIZE / 2 + 1];
    uint32_t n = (t - h) / 2;
    if (n != GORT__RUNQ_SIZE / 2)
        gort__throw("runqputslow: queue is not full");
    for (uint32_t i = 0; i < n; i++)
        batch[i] = atomic_load_explicit(&pp->runq[(h + i) % GORT__RUNQ_SIZE], RELAXED);
    /* release: pairs with the acquire load of runqhead in runqput. */
    if (!atomic_compare_exchange_strong_explicit(&pp->runqhead, &h, h + n, RELEASE, RELAXED))
        return false;
    batch[n] = gp;
    for (uint32_t i = 0; i < n; i++)
        batch[i]->schedlink = batch[i + 1];
    batch[n]->schedlink = NULL;
    if (gort__runq_overflow_hook) {
        gort__runq_overflow_hook(batch[0], batch[n], (int32_t)(n + 1));
        return true;
    }
    gort__lock(&gort__sched.lock);
    gort__globrunqputbatch(batch[0], batch[n], (int32_t)(n + 1));
    gort__unlock(&gort__sched.lock);
    return true;
}

/* Copies half of victim's queue into pp's ring starting at batchhead; returns
 * the number copied (not yet published in pp's tail). */
static uint32_t runqgrab(gort__p_t *victim, gort__p_t *pp, uint32_t batchhead, bool stealrunnext)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&victim->runqhead, ACQUIRE);
        /* acquire: pairs with the release store of runqtail in runqput. */
        uint32_t t = atomic_load_explicit(&victim->runqtail, ACQUIRE);
        uint32_t n = t - h;
        n = n - n / 2;
        if (n == 0) {
            if (stealrunnext) {
                uint32_t gen = atomic_load_explicit(&victim->runnextgen, RELAXED);
                gort__g_t *next = atomic_load_explicit(&victim->runnext, RELAXED);
                if (next) {
                    if (atomic_load_explicit(&victim->status, RELAXED) == Prunning) {
                        gort__usleep(3);
                        /* The victim put a G in runnext meanwhile (often the
                         * same G again: a channel pair readies each other),
                         * so it runs its runnext: leave it. */
                        if (atomic_load_explicit(&victim->runnextgen, RELAXED) != gen)
                            return 0;
                    }
                    /* acquire: pairs with the seq_cst exchange in runqput. */
                    if (!atomic_compare_exchange_strong_explicit(&victim->runnext, &next, NULL,
                                                                 ACQUIRE, RELAXED))
                        continue;
                    atomic_store_explicit(&pp->runq[batchhead % GORT__RUNQ_SIZE], next, RELAXED);
                    return 1;
                }
            }
            return 0;
        }
        if (n > GORT__RUNQ_SIZE / 2) /* read an inconsistent h and t */
            continue;
        for (uint32_t i = 0; i < n; i++) {
            gort__g_t *g = atomic_load_explicit(&victim->runq[(h + i) % GORT__RUNQ_SIZE], RELAXED);
            atomic_store_explicit(&pp->runq[(batchhead + i) % GORT__RUNQ_SIZE], g, RELAXED);
        }
        /* release: pairs with the victim's acquire load of runqhead. */
        if (atomic_compare_exchange_strong_explicit(&victim->runqhead, &h, h + n, RELEASE, RELAXED))
            return n;
    }
}

gort__g_t *gort__runqsteal(gort__p_t *pp, gort__p_t *victim, bool stealrunnext)
{
    uint32_t t = atomic_load_explicit(&pp->runqtail, RELAXED);
    uint32_t n = runqgrab(victim, pp, t, stealrunnext);
    if (n == 0)
        return NULL;
    n--;
    gort__g_t *gp = atomic_load_explicit(&pp->runq[(t + n) % GORT__RUNQ_SIZE], RELAXED);
    if (n == 0)
        return gp;
    uint32_t h = atomic_load_explicit(&pp->runqhead, ACQUIRE);
    if (t - h + n >= GORT__RUNQ_SIZE)
        gort__throw("runqsteal: runq overflow");
    /* release: publishes the stolen slots. */
    atomic_store_explicit(&pp->runqtail, t + n, RELEASE);
    return gp;
}

bool gort__runqempty(gort__p_t *pp)
{
    /* A G may be moving from runnext to the ring (runqput kicks it); reread
     * the tail so we do not see both empty in the middle of that. */
    for (;;) {
        uint32_t h = atomic_load_explicit(&pp->runqhead, ACQUIRE);
        uint32_t t = atomic_load_explicit(&pp->runqtail, ACQUIRE);
        gort__g_t *next = atomic_load_explicit(&pp->runnext, ACQUIRE);
        if (t == atomic_load_explicit(&pp->runqtail, ACQUIRE))
            return h == t && next == NULL;
    }
}

uint32_t gort__runqlen(gort__p_t *pp)
{
    uint32_t h = atomic_load_explicit(&pp->runqhead, ACQUIRE);
    uint32_t t = atomic_load_explicit(&pp->runqtail, ACQUIRE);
    return t - h;
}

/* ---- global queue; caller holds sched.lock ---- */

static void globrunq_count(_Atomic uint64_t *c, int32_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, RELAXED) + (uint64_t)n, RELAXED);
}

void gort__globrunqput(gort__g_t *gp)
{
    gp->schedlink = NULL;
    if (gort__sched.runqtail)
        gort__sched.runqtail->schedlink = gp;
    else
        gort__sched.runqhead = gp;
    gort__sched.runqtail = gp;
    atomic_store_explicit(&gort__sched.runqsize,
                          atomic_load_explicit(&gort__sched.runqsize, RELAXED) + 1, RELAXED);
    globrunq_count(&gort__sched.globrunq_puts, 1);
}

void gort__globrunqputhead(gort__g_t *gp)
{
    gp->schedlink = gort__sched.runqhead;
    gort__sched.runqhead = gp;
    if (!gort__sched.runqtail)
        gort__sched.runqtail = gp;
    atomic_store_explicit(&gort__sched.runqsize,
                          atomic_load_explicit(&gort__sched.runqsize, RELAXED) + 1, RELAXED);
    globrunq_count(&gort__sched.globrunq_puts, 1);
}

void gort__globrunqputbatch(gort__g_t *head, gort__g_t *tail, int32_t n)
{
    tail->schedlink = NULL;
    if (gort__sched.runqtail)
        gort__sched.runqtail->schedlink = head;
    else
        gort__sched.runqhead = head;
    gort__sched.runqtail = tail;
    atomic_store_explicit(&gort__sched.runqsize,
                          atomic_load_explicit(&gort__sched.runqsize, RELAXED) + n, RELAXED);
    globrunq_count(&gort__sched.globrunq_puts, n);
}

static gort__g_t *globrunqpop(void)
{
    gort__g_t *gp = gort__sched.runqhead;
    gort__sched.runqhead = gp->schedlink;
    if (!gort__sched.runqhead)
        gort__sched.runqtail = NULL;
    return gp;
}

gort__g_t *gort__globrunqget(gort__p_t *pp, int32_t max)
{
    int32_t size = atomic_load_explicit(&gort__sched.runqsize, RELAXED);
    if (size == 0)
        return NULL;
    int32_t n = size / gort__rt.gomaxprocs + 1;
    if (n > size)
        n = size;
    if (max > 0 && n > max)
        n = max;
    if (n > (int32_t)GORT__RUNQ_SIZE / 2)
        n = GORT__RUNQ_SIZE / 2;
    atomic_store_explicit(&gort__sched.runqsize, size - n, RELAXED);
    globrunq_count(&gort__sched.globrunq_gets, n);
    gort__g_t *gp = globrunqpop();
    /* The caller found pp's queue empty, so n - 1 <= 127 Gs fit without
     * overflowing into the global queue (whose lock we hold). */
    for (int32_t i = 1; i < n; i++)
        gort__runqput(pp, globrunqpop(), false);
    return gp;
}

/* Marks allp[0] solo when nprocs is 1 and every P not solo otherwise. At
 * start (before any M runs; rt.allp is not set yet) or by procresize, with
 * the world stopped. */
void gort__setsolo(_Atomic(gort__p_t *) *allp, int32_t nprocs)
{
    for (int32_t i = 0; i < nprocs; i++)
        allp[i]->solo = nprocs == 1;
}

/* Moves pp's run queue to the head of the global queue, keeping its order
 * (Go's p.destroy): for a P that no M will run (procresize, a failed thread
 * creation). sched.lock held; no M holds pp (thieves may still steal). */
void gort__runq_to_global(gort__p_t *pp)
{
    gort__g_t *gp, *rev = NULL;
    bool inherit;
    while ((gp = gort__runqget(pp, &inherit)) != NULL) { /* runnext first */
        gp->schedlink = rev;
        rev = gp;
    }
    /* Pushed onto the head from the last: the first ends up first, ahead
     * of the global queue (they were already waiting on a P). */
    while (rev) {
        gort__g_t *next = rev->schedlink;
        rev->schedlink = NULL;
        gort__globrunqputhead(rev);
        rev = next;
    }
}
