/*
 * spawn.c - spawn and join 1,000,000 goroutines (divided by the build's test
 * scale); each must run exactly once, and the runtime's counters must agree:
 * exactly N created and, once they are gone, exactly N exited.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "gort_util.h"

#define SPAWN_N 1000000

static _Atomic uint32_t *runs; /* runs[i]: how many times goroutine i ran */
static gort_waitgroup_t wg;
static long n_spawn;

static void once(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    uint32_t prev = atomic_fetch_add_explicit(&runs[i], 1, memory_order_relaxed);
    ASSERT_EQ(prev, 0); /* a second run of the same goroutine */
    ASSERT_EQ(gort_waitgroup_done(&wg), 0);
}

static int spawn_main(void *arg)
{
    (void)arg;
    gort_stats_t before = stats_now();
    ASSERT_EQ(gort_waitgroup_add(&wg, (int)n_spawn), 0);
    for (long i = 0; i < n_spawn; i++)
        ASSERT_EQ(gort_go(once, (void *)(uintptr_t)i), 0);
    ASSERT_EQ(gort_waitgroup_wait(&wg), 0);

    for (long i = 0; i < n_spawn; i++) {
        uint32_t r = atomic_load_explicit(&runs[i], memory_order_relaxed);
        if (r != 1) {
            test_log("goroutine %ld ran %u times", i, r);
            ASSERT_EQ(r, 1);
        }
    }

    gort_stats_t mid = stats_now();
    ASSERT_EQ(mid.goroutines_created - before.goroutines_created, n_spawn);
    /* The goroutines signalled wg just before returning: wait for them to
     * be counted as exited. */
    gort_stats_t after = wait_live(before.goroutines_live, 60);
    ASSERT_EQ(after.goroutines_created - before.goroutines_created, n_spawn);
    ASSERT_EQ(after.goroutines_exited - before.goroutines_exited, n_spawn);
    /* Every goroutine was started by schedule() at least once. */
    ASSERT_GE(after.switches - before.switches, n_spawn);
    return 0;
}

TEST_TIMEOUT(spawn_join_1m_each_runs_once, 240)
{
    n_spawn = test_scale(SPAWN_N);
    runs = calloc((size_t)n_spawn, sizeof *runs);
    ASSERT_TRUE(runs != NULL);
    gort_waitgroup_init(&wg);
    ASSERT_EQ(run_main(spawn_main, NULL, 0), 0);
    free(runs);
}
