/*
 * runq_stress.c - the local run queue under contention (white-box, no
 * runtime): an owner thread puts and gets on its P (runnext included, with
 * bursts that overflow the queue) while 1-3 thief threads steal into their
 * own Ps and drain them. Every G must come out exactly once: through the
 * owner's gets, a thief, or an overflow batch (gort__runq_overflow_hook).
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "internal.h"
#include "test.h"

#define STRESS_N 1000000

static long n_gs;
static gort__g_t *gs;
static _Atomic uint8_t *seen;
static gort__p_t *owner_p;
static _Atomic bool thieves_go;
static _Atomic bool owner_done;
static _Atomic long n_owner, n_stolen, n_overflow, n_overflow_batches;
static _Atomic long n_runnext_hits, n_runnext_stolen;

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void see(gort__g_t *gp, _Atomic long *path)
{
    ASSERT_TRUE(gp >= gs && gp < gs + n_gs);
    long i = gp - gs;
    uint8_t prev = atomic_fetch_add_explicit(&seen[i], 1, memory_order_relaxed);
    if (prev != 0)
        test_log("G %ld came out twice", i);
    ASSERT_EQ(prev, 0);
    atomic_fetch_add_explicit(path, 1, memory_order_relaxed);
}

/* Runs on the owner thread (the only one that puts). */
static void on_overflow(gort__g_t *head, gort__g_t *tail, int32_t n)
{
    ASSERT_GT(n, 0);
    gort__g_t *gp = head, *last = NULL;
    for (int32_t i = 0; i < n; i++) {
        ASSERT_TRUE(gp != NULL);
        gort__g_t *next = gp->schedlink;
        see(gp, &n_overflow);
        last = gp;
        gp = next;
    }
    ASSERT_TRUE(last == tail);
    atomic_fetch_add(&n_overflow_batches, 1);
}

static gort__p_t *newp(int32_t id)
{
    gort__p_t *pp = calloc(1, sizeof *pp);
    ASSERT_TRUE(pp != NULL);
    pp->id = id;
    atomic_store(&pp->status, Prunning);
    return pp;
}

static void *thief(void *arg)
{
    gort__p_t *pp = arg;
    uint64_t rnd = 0x9e3779b97f4a7c15ull * (uint64_t)(pp->id + 1);
    while (!atomic_load(&thieves_go))
        sched_yield();
    for (;;) {
        bool fin = atomic_load(&owner_done);
        ASSERT_TRUE(gort__runqempty(pp)); /* steal only into an empty queue */
        gort__g_t *gp = gort__runqsteal(pp, owner_p, xorshift(&rnd) & 1);
        if (gp) {
            see(gp, &n_stolen);
            bool inherit;
            while ((gp = gort__runqget(pp, &inherit)) != NULL)
                see(gp, &n_stolen);
        } else if (fin) {
            break; /* the owner is done and its queue is empty for good */
        }
    }
    return NULL;
}

static void owner_get(void)
{
    bool inherit;
    gort__g_t *gp = gort__runqget(owner_p, &inherit);
    if (gp)
        see(gp, &n_owner);
}

/* Owner: with the ring drained, leaves g alone in runnext for up to wait_ns
 * (a thief may take it only now: Go steals runnext from an empty ring), then
 * takes it back if it is still there. */
static void runnext_alone(gort__g_t *g, int64_t wait_ns)
{
    bool inherit;
    for (gort__g_t *gp; (gp = gort__runqget(owner_p, &inherit)) != NULL;)
        see(gp, &n_owner);
    gort__runqput(owner_p, g, true);
    int64_t end = test_now_ns() + wait_ns;
    while (!gort__runqempty(owner_p) && test_now_ns() < end)
        ;
    gort__g_t *gp = gort__runqget(owner_p, &inherit);
    if (gp) {
        ASSERT_TRUE(gp == g); /* nothing else can be on the queue */
        ASSERT_TRUE(inherit);
        see(gp, &n_owner);
        atomic_fetch_add(&n_runnext_hits, 1);
    } else {
        atomic_fetch_add(&n_runnext_stolen, 1); /* a thief reports g */
    }
}

static void stress(int nthieves)
{
    n_gs = test_scale(STRESS_N);
    if (n_gs < 4 * (long)GORT__RUNQ_SIZE)
        n_gs = 4 * GORT__RUNQ_SIZE;
    gs = calloc((size_t)n_gs, sizeof *gs);
    seen = calloc((size_t)n_gs, sizeof *seen);
    ASSERT_TRUE(gs != NULL && seen != NULL);
    for (long i = 0; i < n_gs; i++) {
        gs[i].goid = (uint64_t)i + 1;
        atomic_store(&gs[i].atomicstatus, Grunnable);
    }
    gort__runq_overflow_hook = on_overflow;
    owner_p = newp(0);
    gort__p_t *tp[3];
    pthread_t th[3];
    for (int t = 0; t < nthieves; t++) {
        tp[t] = newp(t + 1);
        ASSERT_EQ(pthread_create(&th[t], NULL, thief, tp[t]), 0);
    }

    long next = 0;
    /* Before the thieves start: one burst that must overflow. */
    for (; next < (long)GORT__RUNQ_SIZE + 44; next++)
        gort__runqput(owner_p, &gs[next], false);
    ASSERT_GT(atomic_load(&n_overflow_batches), 0);
    atomic_store(&thieves_go, true);

    uint64_t rnd = 88172645463325252ull;
    int64_t steal_deadline = test_now_ns() + 20 * (int64_t)1000000000;
    const long reserve = 64; /* for the runnext-steal phase at the end */
    while (next < n_gs - reserve) {
        uint64_t r = xorshift(&rnd);
        unsigned op = (unsigned)(r % 16);
        if (op < 9) {
            gort__runqput(owner_p, &gs[next++], false);
        } else if (op < 11) {
            /* runnext, and sometimes take it straight back: it must come
             * back inherited unless a thief stole it meanwhile. */
            gort__g_t *g = &gs[next++];
            gort__runqput(owner_p, g, true);
            if (op == 10) {
                bool inherit;
                gort__g_t *gp = gort__runqget(owner_p, &inherit);
                if (gp) {
                    ASSERT_EQ(inherit, gp == g);
                    see(gp, &n_owner);
                }
            }
        } else if (op < 15) {
            owner_get();
        } else if ((r >> 32) % 64 == 0) {
            /* A burst past the queue's capacity while thieves are active. */
            long end = next + (long)GORT__RUNQ_SIZE + (long)((r >> 40) % 200);
            for (; next < end && next < n_gs - reserve; next++)
                gort__runqput(owner_p, &gs[next], (next & 7) == 0);
        } else if ((r >> 32) % 64 == 1) {
            runnext_alone(&gs[next++], 200000);
        }
        /* Make sure stealing happened at least once, whatever the timing. */
        if ((next & 4095) == 0 && atomic_load(&n_stolen) == 0 && !gort__runqempty(owner_p)) {
            while (atomic_load(&n_stolen) == 0 && test_now_ns() < steal_deadline)
                sched_yield();
        }
    }
    /* Make sure a thief took runnext at least once, and the owner kept it
     * at least once, whatever the timing (under qemu-user three busy
     * thieves can take it in every 200 us window: 4 runs in 7). Taken back
     * at once, it is kept unless a thief stole it in between, which needs
     * the thief's pause (runqgrab). */
    while (next < n_gs) {
        if (atomic_load(&n_runnext_stolen) == 0)
            runnext_alone(&gs[next++], 300000000);
        else if (atomic_load(&n_runnext_hits) == 0)
            runnext_alone(&gs[next++], 0);
        else
            gort__runqput(owner_p, &gs[next++], false);
    }
    /* Drain what the thieves leave. */
    for (;;) {
        bool inherit;
        gort__g_t *gp = gort__runqget(owner_p, &inherit);
        if (!gp)
            break;
        see(gp, &n_owner);
    }
    ASSERT_TRUE(gort__runqempty(owner_p));
    atomic_store(&owner_done, true);
    for (int t = 0; t < nthieves; t++) {
        ASSERT_EQ(pthread_join(th[t], NULL), 0);
        ASSERT_TRUE(gort__runqempty(tp[t]));
        free(tp[t]);
    }

    test_log("%ld Gs: owner %ld, stolen %ld, overflow %ld in %ld batches; runnext alone kept %ld, "
             "stolen %ld",
             n_gs, atomic_load(&n_owner), atomic_load(&n_stolen), atomic_load(&n_overflow),
             atomic_load(&n_overflow_batches), atomic_load(&n_runnext_hits),
             atomic_load(&n_runnext_stolen));
    for (long i = 0; i < n_gs; i++) {
        if (atomic_load(&seen[i]) != 1)
            test_log("G %ld came out %d times", i, atomic_load(&seen[i]));
        ASSERT_EQ(atomic_load(&seen[i]), 1);
    }
    ASSERT_EQ(atomic_load(&n_owner) + atomic_load(&n_stolen) + atomic_load(&n_overflow), n_gs);
    ASSERT_GT(atomic_load(&n_stolen), 0);
    ASSERT_GT(atomic_load(&n_overflow), 0);
    ASSERT_GT(atomic_load(&n_runnext_hits), 0);
    ASSERT_GT(atomic_load(&n_runnext_stolen), 0);
    free(owner_p);
    free(gs);
    free((void *)seen);
}

TEST(runq_stress_1_thief)
{
    stress(1);
}

TEST(runq_stress_2_thieves)
{
    stress(2);
}

TEST(runq_stress_3_thieves)
{
    stress(3);
}
