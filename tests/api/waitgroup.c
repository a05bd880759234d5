/*
 * waitgroup.c - gort_waitgroup_add's range checks (the counter is left
 * unchanged on error) and wake-ups from any context.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "gort_util.h"

static int negative_main(void *arg)
{
    (void)arg;
    gort_waitgroup_t wg;
    gort_waitgroup_init(&wg);
    ASSERT_EQ(gort_waitgroup_add(&wg, -1), -EINVAL);
    ASSERT_EQ(gort_waitgroup_done(&wg), -EINVAL);
    ASSERT_EQ(gort_waitgroup_add(&wg, 2), 0);
    ASSERT_EQ(gort_waitgroup_add(&wg, -3), -EINVAL); /* counter stays 2 */
    ASSERT_EQ(gort_waitgroup_done(&wg), 0);
    ASSERT_EQ(gort_waitgroup_done(&wg), 0); /* 0 now: wait returns at once */
    ASSERT_EQ(gort_waitgroup_done(&wg), -EINVAL);
    ASSERT_EQ(gort_waitgroup_wait(&wg), 0);
    /* Still usable. */
    ASSERT_EQ(gort_waitgroup_add(&wg, 1), 0);
    ASSERT_EQ(gort_waitgroup_add(&wg, -1), 0);
    ASSERT_EQ(gort_waitgroup_wait(&wg), 0);
    return 0;
}

TEST(waitgroup_negative_einval)
{
    ASSERT_EQ(run_main(negative_main, NULL, 1), 0);
}

TEST(waitgroup_negative_einval_foreign_thread)
{
    gort_waitgroup_t wg = GORT_WAITGROUP_INIT;
    ASSERT_EQ(gort_waitgroup_add(&wg, -1), -EINVAL);
    ASSERT_EQ(gort_waitgroup_add(&wg, 1), 0);
    ASSERT_EQ(gort_waitgroup_add(&wg, -2), -EINVAL);
    ASSERT_EQ(gort_waitgroup_done(&wg), 0);
    ASSERT_EQ(gort_waitgroup_done(&wg), -EINVAL);
}

static int overflow_main(void *arg)
{
    (void)arg;
    gort_waitgroup_t wg;
    gort_waitgroup_init(&wg);
    ASSERT_EQ(gort_waitgroup_add(&wg, INT32_MAX), 0);
    ASSERT_EQ(gort_waitgroup_add(&wg, 1), -EOVERFLOW); /* counter stays INT32_MAX */
    ASSERT_EQ(gort_waitgroup_add(&wg, -INT32_MAX), 0);
    ASSERT_EQ(gort_waitgroup_wait(&wg), 0);
    return 0;
}

TEST(waitgroup_overflow)
{
    ASSERT_EQ(run_main(overflow_main, NULL, 1), 0);
}

/* ---- done from a plain pthread wakes a parked goroutine -------------------- */

static gort_waitgroup_t foreign_wg;
static _Atomic int foreign_done;

static void *releaser(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 20 * 1000 * 1000}; /* let main park first */
    nanosleep(&ts, NULL);
    atomic_store(&foreign_done, 1);
    ASSERT_EQ(gort_waitgroup_done(&foreign_wg), 0);
    return NULL;
}

static int foreign_done_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_waitgroup_add(&foreign_wg, 1), 0);
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, releaser, NULL), 0);
    ASSERT_EQ(gort_waitgroup_wait(&foreign_wg), 0);
    ASSERT_EQ(atomic_load(&foreign_done), 1);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    return 0;
}

TEST(waitgroup_done_from_foreign_thread)
{
    ASSERT_EQ(run_main(foreign_done_main, NULL, 1), 0);
}
