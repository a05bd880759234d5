/*
 * stack_overflow.c - a goroutine that runs off the end of its stack must kill
 * the process with a message that says so and names the goroutine, e.g.
 * "gort: fatal error: stack overflow in goroutine 7 ...". Each case's child
 * announces the id it expects with test_death_expect before it recurses.
 */
#include <stdatomic.h>
#include <stdint.h>

#include "gort_util.h"

static volatile size_t depth_limit = SIZE_MAX; /* never reached: unbounded */

static __attribute__((noinline)) size_t bottomless(size_t level)
{
    volatile char buf[512];
    buf[0] = (char)level;
    buf[511] = (char)(level >> 8);
    if (level >= depth_limit)
        return level;
    size_t r = bottomless(level + 1);
    return r + (size_t)buf[0] + (size_t)buf[511];
}

static void overflow(void *arg)
{
    (void)arg;
    test_death_expect("goroutine %lld", (long long)gort_self_id());
    bottomless(0);
    TEST_FAIL("unbounded recursion returned");
}

static void noop(void *arg)
{
    (void)arg;
}

static size_t overflow_stack;

static int overflow_main(void *arg)
{
    (void)arg;
    /* A few goroutines first, so the victim is not simply goroutine 2. */
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(gort_go(noop, NULL), 0);
    ASSERT_EQ(gort_yield(), 0);

    gort_go_opts_t opts;
    memset(&opts, 0, sizeof opts);
    opts.size = sizeof opts;
    opts.stack_size = overflow_stack;
    uint64_t id = 0;
    gort_waitgroup_t never = GORT_WAITGROUP_INIT;
    ASSERT_EQ(gort_waitgroup_add(&never, 1), 0);
    ASSERT_EQ(gort_go_opts(overflow, NULL, &opts, &id), 0);
    ASSERT_GT(id, 1);
    gort_waitgroup_wait(&never); /* the process dies while main waits */
    TEST_FAIL("main goroutine resumed after the stack overflow");
}

static void run_overflow(size_t stack)
{
    overflow_stack = stack;
    gort_main(overflow_main, NULL, NULL);
    TEST_FAIL("gort_main returned after the stack overflow");
}

TEST_DEATH(stack_overflow_default_stack, "stack overflow")
{
    run_overflow(0);
}

TEST_DEATH(stack_overflow_min_stack, "stack overflow")
{
    run_overflow(GORT_STACK_MIN);
}

TEST_DEATH(stack_overflow_1m_stack, "stack overflow")
{
    run_overflow((size_t)1024 * 1024);
}

static int main_overflows(void *arg)
{
    (void)arg;
    test_death_expect("goroutine %lld", (long long)gort_self_id());
    bottomless(0);
    TEST_FAIL("unbounded recursion returned");
}

TEST_DEATH(stack_overflow_main_goroutine, "stack overflow")
{
    gort_main(main_overflows, NULL, NULL);
    TEST_FAIL("gort_main returned after the stack overflow");
}
