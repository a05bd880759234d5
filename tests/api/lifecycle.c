/*
 * lifecycle.c - gort_main's contract: it returns main's result (0 after
 * gort_exit), can run again, main is goroutine 1, GOMAXPROCS comes from the
 * config, then $GORT_MAXPROCS, then the affinity mask, and the counters
 * start afresh with every run.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "gort_util.h"

static _Atomic int after_exit;
static gort_waitgroup_t wg;

static void done_one(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_waitgroup_done(&wg), 0);
}

static int return_arg(void *arg)
{
    return (int)(intptr_t)arg;
}

TEST(main_returns_fn_result)
{
    ASSERT_EQ(gort_main(return_arg, (void *)(intptr_t)42, NULL), 42);
    ASSERT_EQ(gort_main(return_arg, (void *)(intptr_t)0, NULL), 0);
}

static int exiting_main(void *arg)
{
    (void)arg;
    gort_exit();
    atomic_store(&after_exit, 1); /* must not run */
    return 9;
}

TEST(exit_in_main_returns_zero)
{
    ASSERT_EQ(run_main(exiting_main, NULL, 2), 0);
    ASSERT_EQ(atomic_load(&after_exit), 0);
}

static _Atomic int exited_goroutine_continued;

static void exiting_goroutine(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_waitgroup_done(&wg), 0);
    gort_exit();
    atomic_store(&exited_goroutine_continued, 1);
}

static int goroutine_exit_main(void *arg)
{
    (void)arg;
    gort_stats_t before = stats_now();
    ASSERT_EQ(gort_waitgroup_add(&wg, 1), 0);
    ASSERT_EQ(gort_go(exiting_goroutine, NULL), 0);
    ASSERT_EQ(gort_waitgroup_wait(&wg), 0);
    gort_stats_t after = wait_live(before.goroutines_live, 30);
    ASSERT_EQ(after.goroutines_exited - before.goroutines_exited, 1);
    ASSERT_EQ(atomic_load(&exited_goroutine_continued), 0);
    return 3; /* main goes on: gort_exit ended only that goroutine */
}

TEST(exit_in_goroutine_ends_only_it)
{
    ASSERT_EQ(run_main(goroutine_exit_main, NULL, 2), 3);
}

static _Atomic int64_t child_id;

static void record_self(void *arg)
{
    (void)arg;
    atomic_store(&child_id, gort_self_id());
    ASSERT_EQ(gort_waitgroup_done(&wg), 0);
}

static int self_id_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_self_id(), 1);
    ASSERT_EQ(gort_waitgroup_add(&wg, 1), 0);
    uint64_t id = 0;
    gort_go_opts_t opts;
    memset(&opts, 0, sizeof opts);
    opts.size = sizeof opts;
    ASSERT_EQ(gort_go_opts(record_self, NULL, &opts, &id), 0);
    ASSERT_EQ(gort_waitgroup_wait(&wg), 0);
    ASSERT_GT(id, 1);
    ASSERT_EQ(atomic_load(&child_id), id);
    ASSERT_EQ(gort_self_id(), 1); /* still main after the switches */
    return 0;
}

TEST(main_goroutine_id_is_1)
{
    ASSERT_EQ(run_main(self_id_main, NULL, 2), 0);
}

#define TWICE_N 100

static int twice_main(void *arg)
{
    int run = (int)(intptr_t)arg;
    ASSERT_EQ(gort_self_id(), 1);
    gort_stats_t st = stats_now();
    /* The counters start afresh: nothing from the previous run. */
    ASSERT_LT(st.goroutines_created, TWICE_N);
    ASSERT_EQ(st.goroutines_live, 1);
    gort_waitgroup_init(&wg);
    ASSERT_EQ(gort_waitgroup_add(&wg, TWICE_N), 0);
    for (int i = 0; i < TWICE_N; i++)
        ASSERT_EQ(gort_go(done_one, NULL), 0);
    ASSERT_EQ(gort_waitgroup_wait(&wg), 0);
    return 10 + run;
}

TEST(main_twice_in_a_row)
{
    ASSERT_EQ(run_main(twice_main, (void *)1, 2), 11);
    ASSERT_EQ(gort_gomaxprocs(), -ESRCH);
    ASSERT_EQ(run_main(twice_main, (void *)2, 1), 12);
    ASSERT_EQ(run_main(twice_main, (void *)3, 0), 13);
}

/* When no thread can be made at start (here for sysmon, RLIMIT_NPROC
 * reached), gort_main returns -EAGAIN without running fn, and a later run
 * works. Before, the failure to start sysmon was ignored and the program
 * ran without retakes or preemption. */
static int never_main(void *arg)
{
    (void)arg;
    return 7;
}

TEST(main_without_threads_returns_eagain)
{
    struct rlimit old;
    test_nproc_limit_now(&old);
    int r = run_main(never_main, NULL, 2);
    ASSERT_EQ(setrlimit(RLIMIT_NPROC, &old), 0);
    ASSERT_EQ(r, -EAGAIN);
    ASSERT_EQ(gort_gomaxprocs(), -ESRCH); /* not running */
    ASSERT_EQ(run_main(never_main, NULL, 2), 7);
}

static int live_main(void *arg)
{
    (void)arg;
    gort_stats_t st = stats_now();
    ASSERT_EQ(st.goroutines_live, 1); /* main alone */
    ASSERT_EQ(st.goroutines_live, st.goroutines_created - st.goroutines_exited);
    ASSERT_EQ(st.gomaxprocs, gort_gomaxprocs());
    ASSERT_GE(st.ms_created, 1);
    return 0;
}

TEST(stats_count_main_goroutine)
{
    ASSERT_EQ(run_main(live_main, NULL, 2), 0);
}

/* ---- GOMAXPROCS ------------------------------------------------------------ */

static int report_procs(void *arg)
{
    (void)arg;
    gort_stats_t st = stats_now();
    ASSERT_EQ(st.gomaxprocs, gort_gomaxprocs());
    return gort_gomaxprocs();
}

static int affinity_cpus(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    int n = CPU_COUNT(&set);
    return n > GORT_MAXPROCS_MAX ? GORT_MAXPROCS_MAX : n;
}

TEST(gomaxprocs_from_config)
{
    ASSERT_EQ(run_main(report_procs, NULL, 3), 3);
    ASSERT_EQ(run_main(report_procs, NULL, 1), 1);
    ASSERT_EQ(run_main(report_procs, NULL, GORT_MAXPROCS_MAX), GORT_MAXPROCS_MAX);
}

TEST(gomaxprocs_env_honoured)
{
    ASSERT_EQ(setenv("GORT_MAXPROCS", "3", 1), 0);
    ASSERT_EQ(gort_main(report_procs, NULL, NULL), 3);
    ASSERT_EQ(run_main(report_procs, NULL, 0), 3);
    ASSERT_EQ(setenv("GORT_MAXPROCS", "5", 1), 0);
    ASSERT_EQ(gort_main(report_procs, NULL, NULL), 5);
    /* An explicit config wins over the environment. */
    ASSERT_EQ(run_main(report_procs, NULL, 2), 2);
}

TEST(gomaxprocs_default_is_affinity)
{
    ASSERT_EQ(unsetenv("GORT_MAXPROCS"), 0);
    ASSERT_EQ(gort_main(report_procs, NULL, NULL), affinity_cpus());
    /* Values that are not a valid count are ignored. */
    const char *bad[] = {"0", "-2", "abc", "3x", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ASSERT_EQ(setenv("GORT_MAXPROCS", bad[i], 1), 0);
        int got = gort_main(report_procs, NULL, NULL);
        if (got != affinity_cpus())
            test_log("GORT_MAXPROCS=\"%s\" gave %d", bad[i], got);
        ASSERT_EQ(got, affinity_cpus());
    }
}
