/*
 * gort_util.h - small helpers for the tests that use the public API
 * (api/, stress/, death/). Header-only; include after test.h.
 */
#ifndef GORT_TEST_UTIL_H
#define GORT_TEST_UTIL_H

#include <dirent.h>
#include <gort.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "test.h"

/* A zeroed, sized config with gomaxprocs (0: the default). */
static inline gort_config_t test_config(int gomaxprocs)
{
    gort_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.gomaxprocs = gomaxprocs;
    return cfg;
}

/* gort_main with gomaxprocs (0: the default) and the default stack size. */
static inline int run_main(gort_main_fn fn, void *arg, int gomaxprocs)
{
    gort_config_t cfg = test_config(gomaxprocs);
    return gort_main(fn, arg, &cfg);
}

/* run_main with the dedicated threads' spin budget too. */
static inline int run_main_spin(gort_main_fn fn, void *arg, int gomaxprocs, int64_t spin_ns)
{
    gort_config_t cfg = test_config(gomaxprocs);
    cfg.dedicated_spin_ns = spin_ns;
    return gort_main(fn, arg, &cfg);
}

/* run_main with the timer sleeper's spin (gort_config_t.timer_spin_ns). */
static inline int run_main_timer_spin(gort_main_fn fn, void *arg, int gomaxprocs,
                                      int64_t timer_spin_ns)
{
    gort_config_t cfg = test_config(gomaxprocs);
    cfg.timer_spin_ns = timer_spin_ns;
    return gort_main(fn, arg, &cfg);
}

/* run_main with gort_config_t.flags (GORT_CONFIG_*). */
static inline int run_main_flags(gort_main_fn fn, void *arg, int gomaxprocs, unsigned flags)
{
    gort_config_t cfg = test_config(gomaxprocs);
    cfg.flags = flags;
    return gort_main(fn, arg, &cfg);
}

/* A snapshot of the runtime's counters; asserts that it could be had. */
static inline gort_stats_t stats_now(void)
{
    gort_stats_t st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    ASSERT_EQ(gort_stats_get(&st), 0);
    return st;
}

/* From a goroutine: yields until goroutines_live == live (the goroutines
 * that signalled a waitgroup may not have exited yet), for at most
 * timeout_s seconds, then asserts it. Returns the final snapshot. */
static inline gort_stats_t wait_live(uint64_t live, int timeout_s)
{
    int64_t deadline = test_now_ns() + (int64_t)timeout_s * 1000000000;
    gort_stats_t st = stats_now();
    while (st.goroutines_live != live && test_now_ns() < deadline) {
        ASSERT_EQ(gort_yield(), 0);
        st = stats_now();
    }
    ASSERT_EQ(st.goroutines_live, live);
    return st;
}

/* Burns CPU (no system calls, no yields) for about ns nanoseconds. */
static inline void busy_ns(int64_t ns)
{
    int64_t end = test_now_ns() + ns;
    volatile uint64_t sink = 0;
    while (test_now_ns() < end) {
        for (int i = 0; i < 1000; i++)
            sink += (uint64_t)i;
    }
    (void)sink;
}

/* The entries of a directory, "." and ".." not counted (/proc/self/task,
 * /proc/self/fd). */
static inline long test_count_dir(const char *path)
{
    DIR *d = opendir(path);
    ASSERT_TRUE(d != NULL);
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* The threads of this process. */
static inline long test_count_tasks(void)
{
    return test_count_dir("/proc/self/task");
}

/* RLIMIT_NPROC counts the threads of the real user id and does not apply
 * to root: a case that needs it enforced becomes nobody first (each case
 * runs in its own process). Skips the case if it cannot. */
static inline void test_become_nobody(void)
{
    if (geteuid() != 0)
        return;
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0)
        TEST_SKIP("cannot become uid 65534 to have RLIMIT_NPROC enforced");
    /* A credential change makes the process non-dumpable, and /proc/self
     * root-owned; keep /proc/self/task readable. */
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

static inline void *test_noop_thread(void *arg)
{
    return arg;
}

/* For a case that needs "no new thread can be made": becomes nobody, sets
 * RLIMIT_NPROC to the threads running now and saves the old limit in *old
 * (the caller restores it). Skips the case, with the limit restored, under
 * qemu-user (which runs threads of its own that count) or where the limit
 * is not enforced. */
static inline void test_nproc_limit_now(struct rlimit *old)
{
    const char *launcher = getenv("GORT_TEST_CHILD_LAUNCHER");
    if (launcher && strstr(launcher, "qemu"))
        TEST_SKIP("RLIMIT_NPROC cannot be controlled under qemu-user");
    test_become_nobody();
    ASSERT_EQ(getrlimit(RLIMIT_NPROC, old), 0);
    struct rlimit rl = {.rlim_cur = (rlim_t)test_count_tasks(), .rlim_max = old->rlim_max};
    ASSERT_EQ(setrlimit(RLIMIT_NPROC, &rl), 0);
    pthread_t t;
    if (pthread_create(&t, NULL, test_noop_thread, NULL) == 0) {
        ASSERT_EQ(pthread_join(t, NULL), 0);
        ASSERT_EQ(setrlimit(RLIMIT_NPROC, old), 0);
        TEST_SKIP("RLIMIT_NPROC is not enforced here");
    }
}

#endif /* GORT_TEST_UTIL_H */
