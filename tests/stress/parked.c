/*
 * parked.c - 1,000,000 goroutines (divided by the build's test scale) parked
 * at once on one waitgroup. They must all be alive together (the counters
 * say so), parking must not cost a thread each, and releasing the gate must
 * wake every one of them.
 */
#include <stdatomic.h>
#include <stdint.h>

#include "gort_util.h"

#define PARKED_N 1000000

/* TSan gives every fiber that has run a 256 KiB trace part: at the TSan
 * preset's scale (1/20) that is 12.5 GiB, and the mmap fails when the
 * machine is busy. A fifth of that still parks 10,000 goroutines at once. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PARKED_TSAN_DIV 5
#endif
#endif
#ifndef PARKED_TSAN_DIV
#define PARKED_TSAN_DIV 1
#endif

static gort_waitgroup_t gate;     /* 1 until main releases everyone */
static gort_waitgroup_t started;  /* N: each goroutine checks in before parking */
static gort_waitgroup_t finished; /* N: each goroutine checks out after waking */
static _Atomic long released;
static long n_parked;

static void parker(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_waitgroup_done(&started), 0);
    ASSERT_EQ(gort_waitgroup_wait(&gate), 0);
    atomic_fetch_add_explicit(&released, 1, memory_order_relaxed);
    ASSERT_EQ(gort_waitgroup_done(&finished), 0);
}

static int parked_main(void *arg)
{
    (void)arg;
    gort_stats_t before = stats_now();
    int64_t t0 = test_now_ns();
    ASSERT_EQ(gort_waitgroup_add(&gate, 1), 0);
    ASSERT_EQ(gort_waitgroup_add(&started, (int)n_parked), 0);
    ASSERT_EQ(gort_waitgroup_add(&finished, (int)n_parked), 0);
    for (long i = 0; i < n_parked; i++)
        ASSERT_EQ(gort_go(parker, NULL), 0);
    ASSERT_EQ(gort_waitgroup_wait(&started), 0);
    int64_t t1 = test_now_ns();

    /* Everyone has started and nobody can have passed the gate. */
    gort_stats_t st = stats_now();
    ASSERT_EQ(atomic_load(&released), 0);
    ASSERT_GE(st.goroutines_live, n_parked + 1); /* + main */
    ASSERT_EQ(st.goroutines_created - before.goroutines_created, n_parked);
    ASSERT_EQ(st.goroutines_exited - before.goroutines_exited, 0);
    /* Parked goroutines hold no thread: the Ms are bounded by the Ps. */
    ASSERT_LE(st.ms_created, 4 * (uint64_t)st.gomaxprocs + 16);

    ASSERT_EQ(gort_waitgroup_done(&gate), 0);
    ASSERT_EQ(gort_waitgroup_wait(&finished), 0);
    ASSERT_EQ(atomic_load(&released), n_parked);
    int64_t t2 = test_now_ns();
    gort_stats_t after = wait_live(before.goroutines_live, 60);
    test_log("%ld parked: spawned and parked in %.3f s, released and joined in %.3f s; "
             "%llu stacks mapped (%llu MiB), %llu threads",
             n_parked, (double)(t1 - t0) / 1e9, (double)(t2 - t1) / 1e9,
             (unsigned long long)after.stacks_mapped,
             (unsigned long long)(after.stack_bytes_mapped >> 20),
             (unsigned long long)after.ms_created);
    ASSERT_EQ(after.goroutines_exited - before.goroutines_exited, n_parked);
    return 0;
}

TEST_TIMEOUT(parked_1m_at_once, 400)
{
    n_parked = test_scale(PARKED_N) / PARKED_TSAN_DIV;
    gort_waitgroup_init(&gate);
    gort_waitgroup_init(&started);
    gort_waitgroup_init(&finished);
    ASSERT_EQ(run_main(parked_main, NULL, 0), 0);
}
