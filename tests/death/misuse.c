/*
 * misuse.c - misuse that gort.h leaves undefined but that debug builds
 * (GORT_DEBUG >= 1) catch with a fatal error: calling gort between
 * gort_entersyscall and gort_exitsyscall, and inside a preemptible region.
 * Release builds do not check; the cases skip there (GORT_TEST_DEBUG is the
 * library's GORT_DEBUG).
 */
#include "gort_util.h"

static int in_syscall_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_entersyscallblock(), 0);
    gort_yield(); /* the misuse: no P is held here */
    TEST_FAIL("gort_yield between gort_entersyscall and gort_exitsyscall returned");
}

TEST_DEATH(call_inside_a_syscall_is_fatal_in_debug_builds,
           "gort called between gort_entersyscall and gort_exitsyscall")
{
#if GORT_TEST_DEBUG < 1
    TEST_SKIP("release build: the check needs GORT_DEBUG >= 1");
#endif
    gort_main(in_syscall_main, NULL, NULL);
    TEST_FAIL("gort_main returned");
}

static int in_preemptible_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_preemptible_begin(), 0);
    gort_yield(); /* the misuse */
    TEST_FAIL("gort_yield inside a preemptible region returned");
}

TEST_DEATH(call_inside_a_preemptible_region_is_fatal_in_debug_builds,
           "gort called inside a preemptible region")
{
#if GORT_TEST_DEBUG < 1
    TEST_SKIP("release build: the check needs GORT_DEBUG >= 1");
#endif
    gort_main(in_preemptible_main, NULL, NULL);
    TEST_FAIL("gort_main returned");
}
