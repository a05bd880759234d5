/*
 * sched.c - the scheduler's observable policy: gort_yield is fair with one P,
 * and an idle P steals work from a busy one.
 */
#include <stdatomic.h>
#include <stdint.h>

#include "gort_util.h"

/* ---- yield fairness ------------------------------------------------------ */

#define FAIR_WORKERS 8
#define FAIR_WINDOWS 50 /* main checks every worker advanced in each window */
#define FAIR_YIELDS  4  /* main's yields per window */

static _Atomic uint64_t fair_count[FAIR_WORKERS];
static _Atomic bool fair_stop;
static gort_waitgroup_t fair_wg;

static void fair_worker(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    while (!atomic_load_explicit(&fair_stop, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&fair_count[i], 1, memory_order_relaxed);
        busy_ns(10000); /* CPU-bound between yields */
        ASSERT_EQ(gort_yield(), 0);
    }
    ASSERT_EQ(gort_waitgroup_done(&fair_wg), 0);
}

static int fair_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_gomaxprocs(), 1);
    gort_stats_t before = stats_now();
    ASSERT_EQ(before.gomaxprocs, 1);
    ASSERT_EQ(gort_waitgroup_add(&fair_wg, FAIR_WORKERS), 0);
    for (uintptr_t i = 0; i < FAIR_WORKERS; i++)
        ASSERT_EQ(gort_go(fair_worker, (void *)i), 0);

    for (int w = 0; w < FAIR_WINDOWS; w++) {
        uint64_t snap[FAIR_WORKERS];
        for (int i = 0; i < FAIR_WORKERS; i++)
            snap[i] = atomic_load(&fair_count[i]);
        for (int k = 0; k < FAIR_YIELDS; k++)
            ASSERT_EQ(gort_yield(), 0);
        /* With one P, main ran again only after every worker had a turn. */
        for (int i = 0; i < FAIR_WORKERS; i++) {
            uint64_t now = atomic_load(&fair_count[i]);
            if (now <= snap[i])
                test_log("window %d: worker %d made no progress (count %llu)", w, i,
                         (unsigned long long)now);
            ASSERT_GT(now, snap[i]);
        }
    }
    atomic_store(&fair_stop, true);
    ASSERT_EQ(gort_waitgroup_wait(&fair_wg), 0);

    uint64_t min = UINT64_MAX, max = 0, sum = 0;
    for (int i = 0; i < FAIR_WORKERS; i++) {
        uint64_t c = atomic_load(&fair_count[i]);
        min = c < min ? c : min;
        max = c > max ? c : max;
        sum += c;
    }
    test_log("yield fairness: min %llu max %llu", (unsigned long long)min, (unsigned long long)max);
    ASSERT_GE(min, FAIR_WINDOWS); /* at least one turn per window */
    ASSERT_LE(max, 2 * min + 2);  /* nobody got a much larger share */

    gort_stats_t after = stats_now();
    /* Each worker turn after a yield is an execution started by schedule(). */
    ASSERT_GE(after.switches - before.switches, sum);
    return 0;
}

TEST(yield_fair_gomaxprocs_1)
{
    ASSERT_EQ(run_main(fair_main, NULL, 1), 0);
}

/* ---- work stealing -------------------------------------------------------- */

#define STEAL_GS 64

static _Atomic long steal_tid[STEAL_GS];
static gort_waitgroup_t steal_wg;

static void burner(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    atomic_store(&steal_tid[i], test_gettid());
    busy_ns(3000000); /* 3 ms, never yielding */
    ASSERT_EQ(gort_waitgroup_done(&steal_wg), 0);
}

static void spawner(void *arg)
{
    (void)arg;
    /* All of these land on the spawner's P; only stealing moves them. */
    for (uintptr_t i = 0; i < STEAL_GS; i++)
        ASSERT_EQ(gort_go(burner, (void *)i), 0);
    ASSERT_EQ(gort_waitgroup_done(&steal_wg), 0);
}

static int steal_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_gomaxprocs(), 2);
    gort_stats_t before = stats_now();
    ASSERT_EQ(gort_waitgroup_add(&steal_wg, STEAL_GS + 1), 0);
    ASSERT_EQ(gort_go(spawner, NULL), 0);
    ASSERT_EQ(gort_waitgroup_wait(&steal_wg), 0);
    gort_stats_t after = stats_now();

    long tids[STEAL_GS];
    int ntids = 0;
    for (int i = 0; i < STEAL_GS; i++) {
        long t = atomic_load(&steal_tid[i]);
        ASSERT_GT(t, 0);
        int j = 0;
        while (j < ntids && tids[j] != t)
            j++;
        if (j == ntids)
            tids[ntids++] = t;
    }
    test_log("stealing: %d threads; steal tries %llu, successes %llu, gs %llu", ntids,
             (unsigned long long)(after.steal_tries - before.steal_tries),
             (unsigned long long)(after.steal_successes - before.steal_successes),
             (unsigned long long)(after.steal_gs - before.steal_gs));
    ASSERT_EQ(after.gomaxprocs, 2);
    ASSERT_GT(after.steal_successes - before.steal_successes, 0);
    ASSERT_GE(after.steal_gs - before.steal_gs, after.steal_successes - before.steal_successes);
    ASSERT_GE(after.steal_tries - before.steal_tries,
              after.steal_successes - before.steal_successes);
    ASSERT_GE(ntids, 2);
    return 0;
}

TEST(steal_gomaxprocs_2)
{
    ASSERT_EQ(run_main(steal_main, NULL, 2), 0);
}
