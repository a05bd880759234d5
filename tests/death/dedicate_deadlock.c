/*
 * dedicate_deadlock.c - checkdead with dedicated goroutines: a dedicated
 * thread asleep on its futex counts as idle, so a program whose goroutines
 * (dedicated or not) are all blocked for good dies with Go's message; and
 * the cases that must not die: a dedicated goroutine in a long system
 * call or a long sleep (its thread is running, or its P has a timer).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

#include "gort_util.h"

#define MS 1000000ll

#define DEADLOCK_MSG "all goroutines are asleep - deadlock!"

static gort_chan_t *dead_ch;

static void ded_recv_forever(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_dedicate_os_thread(), 0);
    int v;
    gort_chan_recv(dead_ch, &v, NULL);
    TEST_FAIL("chan receive returned");
}

static int dead_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_chan_make(&dead_ch, sizeof(int), 0), 0);
    uint64_t id = 0;
    ASSERT_EQ(gort_go_opts(ded_recv_forever, NULL, NULL, &id), 0);
    test_death_expect("goroutine %llu [chan receive], locked to thread", (unsigned long long)id);
    test_death_expect("goroutine 1 [waitgroup wait]");
    ASSERT_EQ(gort_sleep_ns(10 * MS), 0); /* the dedicated one blocks first */
    gort_waitgroup_t never = GORT_WAITGROUP_INIT;
    ASSERT_EQ(gort_waitgroup_add(&never, 1), 0);
    gort_waitgroup_wait(&never);
    TEST_FAIL("waitgroup wait returned");
    return 1;
}

TEST_DEATH(all_asleep_with_dedicated_goroutine_dies_gomaxprocs_1, DEADLOCK_MSG)
{
    run_main(dead_main, NULL, 1);
    TEST_FAIL("gort_main returned");
}

TEST_DEATH(all_asleep_with_dedicated_goroutine_dies_gomaxprocs_2, DEADLOCK_MSG)
{
    run_main(dead_main, NULL, 2);
    TEST_FAIL("gort_main returned");
}

/* The main goroutine itself is dedicated and blocks last. */
static int dead_main_ded(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_chan_make(&dead_ch, sizeof(int), 0), 0);
    ASSERT_EQ(gort_dedicate_os_thread(), 0);
    test_death_expect("goroutine 1 [chan receive], locked to thread (main)");
    int v;
    gort_chan_recv(dead_ch, &v, NULL);
    TEST_FAIL("chan receive returned");
    return 1;
}

TEST_DEATH(dedicated_main_asleep_dies, DEADLOCK_MSG)
{
    run_main(dead_main_ded, NULL, 1);
    TEST_FAIL("gort_main returned");
}

/* ---- must not die ------------------------------------------------------------ */

struct busy_arg {
    int mode; /* -1: gort_sleep_ns, else a gort_syscall mode */
    gort_waitgroup_t *wg;
};

static void ded_long_block(void *arg)
{
    struct busy_arg *a = arg;
    ASSERT_EQ(gort_dedicate_os_thread(), 0);
    if (a->mode < 0) {
        ASSERT_EQ(gort_sleep_ns(400 * MS), 0); /* twice the check's grace period */
    } else {
        struct timespec ts = {0, 400 * MS};
        ASSERT_EQ(gort_syscall(a->mode, SYS_nanosleep, (long)&ts, 0, 0, 0, 0, 0), 0);
    }
    ASSERT_EQ(gort_undedicate_os_thread(), 0);
    ASSERT_EQ(gort_waitgroup_done(a->wg), 0);
}

static int busy_main(void *arg)
{
    int mode = (int)(intptr_t)arg;
    gort_waitgroup_t wg = GORT_WAITGROUP_INIT;
    struct busy_arg a = {mode, &wg};
    ASSERT_EQ(gort_waitgroup_add(&wg, 1), 0);
    ASSERT_EQ(gort_go(ded_long_block, &a), 0);
    ASSERT_EQ(gort_waitgroup_wait(&wg), 0);
    return 0;
}

TEST(dedicated_in_long_syscall_is_not_deadlock)
{
    ASSERT_EQ(run_main(busy_main, (void *)(intptr_t)GORT_SYSCALL_RAW, 1), 0);
    ASSERT_EQ(run_main(busy_main, (void *)(intptr_t)GORT_SYSCALL_LAZY, 1), 0);
    ASSERT_EQ(run_main(busy_main, (void *)(intptr_t)GORT_SYSCALL_EAGER, 2), 0);
}

TEST(dedicated_in_long_sleep_is_not_deadlock)
{
    ASSERT_EQ(run_main(busy_main, (void *)(intptr_t)-1, 1), 0);
    ASSERT_EQ(run_main(busy_main, (void *)(intptr_t)-1, 2), 0);
}

/* A plain pthread wakes the main goroutine twice: 50 ms after it blocked
 * (within the check's grace period), then 800 ms later. Meanwhile main
 * sleeps 300 ms and blocks again, so a new suspicion is raised and would
 * be confirmed. Once a foreign thread has readied a goroutine the check is
 * off for the run (sched.c, checkdead), whether the goroutine it readied
 * was dedicated or not. */
static gort_chan_t *fw_ch;

static void *fw_sender(void *arg)
{
    (void)arg;
    for (int k = 0; k < 2; k++) {
        struct timespec ts = {0, k == 0 ? 50 * MS : 800 * MS};
        nanosleep(&ts, NULL);
        int v = k, r;
        int64_t deadline = test_now_ns() + 30000 * MS;
        while ((r = gort_chan_try_send(fw_ch, &v)) == -EAGAIN && test_now_ns() < deadline) {
            struct timespec t = {0, 1000000};
            nanosleep(&t, NULL);
        }
        ASSERT_EQ(r, 0);
    }
    return NULL;
}

static int fw_main(void *arg)
{
    bool dedicated = arg != NULL;
    ASSERT_EQ(gort_chan_make(&fw_ch, sizeof(int), 0), 0);
    if (dedicated)
        ASSERT_EQ(gort_dedicate_os_thread(), 0);
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, fw_sender, NULL), 0);
    for (int k = 0; k < 2; k++) {
        int v = -1;
        ASSERT_EQ(gort_chan_recv(fw_ch, &v, NULL), 0);
        ASSERT_EQ(v, k);
        if (k == 0)
            ASSERT_EQ(gort_sleep_ns(300 * MS), 0);
    }
    ASSERT_EQ(pthread_join(t, NULL), 0);
    if (dedicated)
        ASSERT_EQ(gort_undedicate_os_thread(), 0);
    ASSERT_EQ(gort_chan_free(fw_ch), 0);
    return 0;
}

TEST(foreign_wakes_turn_the_check_off)
{
    ASSERT_EQ(run_main(fw_main, NULL, 1), 0);
}

TEST(foreign_wakes_of_dedicated_turn_the_check_off)
{
    ASSERT_EQ(run_main(fw_main, (void *)1, 1), 0);
}
