/*
 * harness.c - the harness itself: a failed ASSERT aborts with both values,
 * also from a goroutine on a runtime thread, and the timeout fires even while
 * the runtime's threads run (a case that never ends fails, it does not hang).
 */
#include <stdint.h>

#include "gort_util.h"

TEST_DEATH(assert_prints_both_values, "ASSERT_EQ(x, y) failed")
{
    volatile int x = 4, y = 5;
    test_death_expect("x = 4");
    test_death_expect("y = 5");
    ASSERT_EQ(x, y);
}

TEST_DEATH(assert_signed_unsigned_compare, "ASSERT_LT(zero, minus_one) failed")
{
    /* As integers 0 < -1 is false, whatever C's conversions would say. */
    volatile unsigned zero = 0;
    volatile int minus_one = -1;
    test_death_expect("minus_one = -1");
    ASSERT_LT(zero, minus_one);
}

static void failing_goroutine(void *arg)
{
    (void)arg;
    test_death_expect("case assert_in_goroutine_aborts");
    ASSERT_TRUE(gort_self_id() == 1); /* false: this is not main */
}

static int goroutine_main(void *arg)
{
    (void)arg;
    gort_waitgroup_t never = GORT_WAITGROUP_INIT;
    ASSERT_EQ(gort_waitgroup_add(&never, 1), 0);
    ASSERT_EQ(gort_go(failing_goroutine, NULL), 0);
    gort_waitgroup_wait(&never);
    return 0;
}

TEST_DEATH(assert_in_goroutine_aborts, "ASSERT_TRUE(gort_self_id() == 1) failed")
{
    gort_main(goroutine_main, NULL, NULL);
}

static int spinning_main(void *arg)
{
    (void)arg;
    for (;;) /* never finishes; the runtime's threads keep running */
        ASSERT_EQ(gort_yield(), 0);
    return 0;
}

TEST_DEATH_TIMEOUT(timeout_fires_while_runtime_runs, 2,
                   "TIMEOUT: case timeout_fires_while_runtime_runs")
{
    gort_main(spinning_main, NULL, NULL);
}
