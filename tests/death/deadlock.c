/*
 * deadlock.c - checkdead: a program whose goroutines are all blocked for
 * good, with no timer pending and no thread running, dies with Go's
 * message and a list of the goroutines and what they wait for; and the
 * cases that must not die: GORT_CONFIG_NO_DEADLOCK_CHECK, a wake-up from a
 * plain pthread shortly after everything blocked, and goroutines that are
 * in system calls (their threads are running).
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

/* ---- everything blocked: death ------------------------------------------ */

static gort_chan_t *dead_ch;

static void recv_forever(void *arg)
{
    (void)arg;
    int v;
    gort_chan_recv(dead_ch, &v, NULL);
    TEST_FAIL("chan receive returned");
}

static int dead_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_chan_make(&dead_ch, sizeof(int), 0), 0);
    uint64_t id = 0;
    ASSERT_EQ(gort_go_opts(recv_forever, NULL, NULL, &id), 0);
    ASSERT_GT(id, 1);
    test_death_expect("goroutine 1 [waitgroup wait]");
    test_death_expect("goroutine %llu [chan receive]", (unsigned long long)id);
    gort_waitgroup_t never = GORT_WAITGROUP_INIT;
    ASSERT_EQ(gort_waitgroup_add(&never, 1), 0);
    gort_waitgroup_wait(&never);
    TEST_FAIL("waitgroup wait returned");
    return 1;
}

TEST_DEATH(all_asleep_dies_gomaxprocs_1, DEADLOCK_MSG)
{
    run_main(dead_main, NULL, 1);
    TEST_FAIL("gort_main returned");
}

TEST_DEATH(all_asleep_dies_gomaxprocs_4, DEADLOCK_MSG)
{
    run_main(dead_main, NULL, 4);
    TEST_FAIL("gort_main returned");
}

/* A locked goroutine's thread sleeps in stoplockedm: it counts as idle. */
static void locked_recv_forever(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_lock_os_thread(), 0);
    int v;
    gort_chan_recv(dead_ch, &v, NULL);
    TEST_FAIL("chan receive returned");
}

static int dead_locked_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_chan_make(&dead_ch, sizeof(int), 0), 0);
    uint64_t id = 0;
    ASSERT_EQ(gort_go_opts(locked_recv_forever, NULL, NULL, &id), 0);
    test_death_expect("goroutine %llu [chan receive], locked to thread", (unsigned long long)id);
    /* main is locked too, and blocks last: after a sleep. */
    ASSERT_EQ(gort_lock_os_thread(), 0);
    ASSERT_EQ(gort_sleep_ns(10 * MS), 0);
    test_death_expect("goroutine 1 [waitgroup wait], locked to thread (main)");
    gort_waitgroup_t never = GORT_WAITGROUP_INIT;
    ASSERT_EQ(gort_waitgroup_add(&never, 1), 0);
    gort_waitgroup_wait(&never);
    TEST_FAIL("waitgroup wait returned");
    return 1;
}

TEST_DEATH(all_asleep_with_locked_goroutines_dies, DEADLOCK_MSG)
{
    run_main(dead_locked_main, NULL, 2);
    TEST_FAIL("gort_main returned");
}

/* ---- a plain pthread wakes main: no death ------------------------------- */

static gort_chan_t *wake_ch;

static void *late_sender(void *arg)
{
    int64_t delay = (int64_t)(intptr_t)arg;
    struct timespec ts = {delay / 1000000000, delay % 1000000000};
    nanosleep(&ts, NULL);
    /* Unbuffered: succeeds once main waits in its receive (it does long
     * before now, but do not rely on it). */
    int v = 42, r;
    int64_t deadline = test_now_ns() + 30000 * MS;
    while ((r = gort_chan_try_send(wake_ch, &v)) == -EAGAIN && test_now_ns() < deadline) {
        struct timespec t = {0, 1000000};
        nanosleep(&t, NULL);
    }
    ASSERT_EQ(r, 0);
    return NULL;
}

static int wake_main(void *arg)
{
    int64_t delay = (int64_t)(intptr_t)arg;
    ASSERT_EQ(gort_chan_make(&wake_ch, sizeof(int), 0), 0);
    int64_t t0 = test_now_ns();
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, late_sender, (void *)(intptr_t)delay), 0);
    int v = 0;
    bool ok = false;
    ASSERT_EQ(gort_chan_recv(wake_ch, &v, &ok), 0);
    int64_t waited = test_now_ns() - t0;
    ASSERT_TRUE(ok);
    ASSERT_EQ(v, 42);
    ASSERT_GE(waited, delay);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_EQ(gort_chan_free(wake_ch), 0);
    return 0;
}

TEST(no_deadlock_check_flag_survives_foreign_wake)
{
    /* 500 ms is well past the grace period of the check (see sched.c). */
    ASSERT_EQ(
        run_main_flags(wake_main, (void *)(intptr_t)(500 * MS), 2, GORT_CONFIG_NO_DEADLOCK_CHECK),
        0);
}

TEST(foreign_wake_after_50ms_is_not_deadlock)
{
    ASSERT_EQ(run_main(wake_main, (void *)(intptr_t)(50 * MS), 1), 0);
    ASSERT_EQ(run_main(wake_main, (void *)(intptr_t)(50 * MS), 2), 0);
}

TEST(bad_config_flags_einval)
{
    gort_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.flags = 0x80; /* no such flag */
    ASSERT_EQ(gort_main(wake_main, NULL, &cfg), -EINVAL);
}

/* ---- a goroutine in a long system call is running, not asleep ------------ */

struct sc_arg {
    int mode;
    gort_waitgroup_t *wg;
};

static void long_call(void *arg)
{
    struct sc_arg *a = arg;
    struct timespec ts = {0, 400 * MS}; /* twice the check's grace period */
    ASSERT_EQ(gort_syscall(a->mode, SYS_nanosleep, (long)&ts, 0, 0, 0, 0, 0), 0);
    ASSERT_EQ(gort_waitgroup_done(a->wg), 0);
}

static int syscall_main(void *arg)
{
    int mode = (int)(intptr_t)arg;
    gort_waitgroup_t wg = GORT_WAITGROUP_INIT;
    struct sc_arg a = {mode, &wg};
    ASSERT_EQ(gort_waitgroup_add(&wg, 1), 0);
    ASSERT_EQ(gort_go(long_call, &a), 0);
    ASSERT_EQ(gort_waitgroup_wait(&wg), 0);
    return 0;
}

TEST(goroutine_in_raw_syscall_is_not_deadlock)
{
    ASSERT_EQ(run_main(syscall_main, (void *)(intptr_t)GORT_SYSCALL_RAW, 1), 0);
}

TEST(goroutine_in_lazy_syscall_is_not_deadlock)
{
    ASSERT_EQ(run_main(syscall_main, (void *)(intptr_t)GORT_SYSCALL_LAZY, 1), 0);
}

TEST(goroutine_in_eager_syscall_is_not_deadlock)
{
    ASSERT_EQ(run_main(syscall_main, (void *)(intptr_t)GORT_SYSCALL_EAGER, 1), 0);
}
