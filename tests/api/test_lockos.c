/*
 * test_lockos.c - gort_lock_os_thread / gort_unlock_os_thread (Go's
 * LockOSThread), seen through thread ids and the startlockedm /
 * stoplockedm counters:
 *
 *  - a locked goroutine keeps its thread across every kind of block;
 *  - no other goroutine runs on that thread while it is locked;
 *  - unlocking (as many times as locked) restores normal scheduling;
 *  - a goroutine that exits locked takes its thread with it, except on m0
 *    (the thread that called gort_main), which idles until shutdown.
 *
 * The "probe" used below: at GOMAXPROCS=1, a goroutine that starts another
 * and then blocks is followed on its own thread by the new goroutine (it
 * sits in the P's runnext), unless it is locked: then its thread gives the
 * P away and the new goroutine runs on another thread.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gort_util.h"

#define MS 1000000ll

/* ---- helpers --------------------------------------------------------------- */

static long probe_tid;

static void probe_fn(void *arg)
{
    probe_tid = test_gettid();
    ASSERT_EQ(gort_waitgroup_done(arg), 0);
}

/* Starts a goroutine, blocks until it ran, returns the tid it ran on.
 * Unlocked, the caller resumes on the thread it blocked on (the new
 * goroutine readies it into that thread's P), so probes can be chained
 * without the caller moving. */
static long probe(void)
{
    gort_waitgroup_t wg = GORT_WAITGROUP_INIT;
    probe_tid = 0;
    ASSERT_EQ(gort_waitgroup_add(&wg, 1), 0);
    ASSERT_EQ(gort_go(probe_fn, &wg), 0);
    ASSERT_EQ(gort_waitgroup_wait(&wg), 0);
    ASSERT_NE(probe_tid, 0);
    return probe_tid;
}

static bool task_exists(long tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld", tid);
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- the thread is kept across blocks ------------------------------------- */

#define KEEP_ROUNDS 50

static gort_chan_t *keep_ch;

static void keep_feeder(void *arg)
{
    (void)arg;
    for (int i = 0; i < KEEP_ROUNDS; i++) {
        ASSERT_EQ(gort_sleep_ns(100000), 0); /* the receiver usually waits first */
        ASSERT_EQ(gort_chan_send(keep_ch, &i), 0);
    }
}

static void keep_locked(void *arg)
{
    gort_waitgroup_t *wg = arg;
    ASSERT_EQ(gort_lock_os_thread(), 0);
    long tid = test_gettid();
    gort_stats_t before = stats_now();
    for (int i = 0; i < KEEP_ROUNDS; i++) {
        ASSERT_EQ(gort_sleep_ns(200000), 0);
        ASSERT_EQ(test_gettid(), tid);
        int v = -1;
        bool ok = false;
        ASSERT_EQ(gort_chan_recv(keep_ch, &v, &ok), 0);
        ASSERT_TRUE(ok);
        ASSERT_EQ(v, i);
        ASSERT_EQ(test_gettid(), tid);
        ASSERT_EQ(gort_yield(), 0);
        ASSERT_EQ(test_gettid(), tid);
    }
    gort_stats_t after = stats_now();
    uint64_t stops = after.stoplockedm - before.stoplockedm;
    uint64_t starts = after.startlockedm - before.startlockedm;
    test_log("locked goroutine on tid %ld: stoplockedm %llu startlockedm %llu", tid,
             (unsigned long long)stops, (unsigned long long)starts);
    /* Each sleep and each yield (at least) gave the P away and needed it
     * handed back by another thread. */
    ASSERT_GE(stops, 2 * KEEP_ROUNDS);
    ASSERT_GE(starts, 2 * KEEP_ROUNDS);
    ASSERT_EQ(gort_unlock_os_thread(), 0);
    ASSERT_EQ(gort_waitgroup_done(wg), 0);
}

static int keep_main(void *arg)
{
    (void)arg;
    gort_waitgroup_t wg = GORT_WAITGROUP_INIT;
    ASSERT_EQ(gort_chan_make(&keep_ch, sizeof(int), 0), 0);
    ASSERT_EQ(gort_waitgroup_add(&wg, 1), 0);
    ASSERT_EQ(gort_go(keep_locked, &wg), 0);
    ASSERT_EQ(gort_go(keep_feeder, NULL), 0);
    ASSERT_EQ(gort_waitgroup_wait(&wg), 0);
    ASSERT_EQ(gort_chan_free(keep_ch), 0);
    return 0;
}

TEST(locked_keeps_thread_across_blocks_gomaxprocs_1)
{
    ASSERT_EQ(run_main(keep_main, NULL, 1), 0);
}

TEST(locked_keeps_thread_across_blocks_gomaxprocs_2)
{
    ASSERT_EQ(run_main(keep_main, NULL, 2), 0);
}

/* ---- nobody else runs on a locked thread ---------------------------------- */

#define EXCL_WORKERS 4

static _Atomic long excl_locked_tid;
static _Atomic bool excl_stop;
static _Atomic uint64_t excl_iters, excl_violations;
static gort_waitgroup_t excl_wg;

static void excl_worker(void *arg)
{
    (void)arg;
    long locked = atomic_load(&excl_locked_tid);
    ASSERT_NE(locked, 0);
    unsigned i = 0;
    while (!atomic_load(&excl_stop)) {
        if (test_gettid() == locked)
            atomic_fetch_add(&excl_violations, 1);
        atomic_fetch_add(&excl_iters, 1);
        if (++i % 4 == 0)
            ASSERT_EQ(gort_sleep_ns(50000), 0);
        else
            ASSERT_EQ(gort_yield(), 0);
    }
    ASSERT_EQ(gort_waitgroup_done(&excl_wg), 0);
}

static void excl_locked(void *arg)
{
    gort_waitgroup_t *done = arg;
    ASSERT_EQ(gort_lock_os_thread(), 0);
    long tid = test_gettid();
    atomic_store(&excl_locked_tid, tid);
    ASSERT_EQ(gort_waitgroup_add(&excl_wg, EXCL_WORKERS), 0);
    for (int i = 0; i < EXCL_WORKERS; i++)
        ASSERT_EQ(gort_go(excl_worker, NULL), 0);
    int rounds = (int)test_scale(400);
    for (int i = 0; i < rounds; i++) {
        if (i % 2)
            ASSERT_EQ(gort_sleep_ns(100000), 0);
        else
            ASSERT_EQ(gort_yield(), 0);
        ASSERT_EQ(test_gettid(), tid);
    }
    /* Stop the workers while still locked: once unlocked, they may run here. */
    atomic_store(&excl_stop, true);
    ASSERT_EQ(gort_waitgroup_wait(&excl_wg), 0);
    ASSERT_EQ(gort_unlock_os_thread(), 0);
    ASSERT_EQ(gort_waitgroup_done(done), 0);
}

static int excl_main(void *arg)
{
    (void)arg;
    gort_waitgroup_t wg = GORT_WAITGROUP_INIT;
    ASSERT_EQ(gort_waitgroup_add(&wg, 1), 0);
    ASSERT_EQ(gort_go(excl_locked, &wg), 0);
    ASSERT_EQ(gort_waitgroup_wait(&wg), 0);
    test_log("workers ran %llu iterations, %llu on the locked thread",
             (unsigned long long)atomic_load(&excl_iters),
             (unsigned long long)atomic_load(&excl_violations));
    ASSERT_GT(atomic_load(&excl_iters), 0);
    ASSERT_EQ(atomic_load(&excl_violations), 0);
    return 0;
}

TEST(locked_thread_runs_no_other_goroutine)
{
    ASSERT_EQ(run_main(excl_main, NULL, 2), 0);
}

/* ---- unlocking restores normal scheduling --------------------------------- */

static void unlock_g(void *arg)
{
    gort_waitgroup_t *wg = arg;
    long tid = test_gettid();
    ASSERT_EQ(probe(), tid); /* unlocked: the new goroutine runs here */

    ASSERT_EQ(gort_lock_os_thread(), 0);
    gort_stats_t s0 = stats_now();
    ASSERT_NE(probe(), tid); /* locked: it runs elsewhere */
    ASSERT_EQ(test_gettid(), tid);
    gort_stats_t s1 = stats_now();
    ASSERT_GE(s1.stoplockedm - s0.stoplockedm, 1);
    ASSERT_GE(s1.startlockedm - s0.startlockedm, 1);

    ASSERT_EQ(gort_unlock_os_thread(), 0);
    ASSERT_EQ(probe(), tid); /* still on tid: it was locked there until now */
    s0 = stats_now();
    for (int i = 0; i < 10; i++) {
        /* Unlocked, a sleep may end on another thread: compare with the
         * thread the goroutine is on now. */
        long me = test_gettid();
        ASSERT_EQ(probe(), me);
        ASSERT_EQ(gort_yield(), 0);
        ASSERT_EQ(gort_sleep_ns(100000), 0);
    }
    s1 = stats_now();
    /* No locked goroutine any more: the locked-M paths are not taken. */
    ASSERT_EQ(s1.stoplockedm, s0.stoplockedm);
    ASSERT_EQ(s1.startlockedm, s0.startlockedm);
    ASSERT_EQ(gort_waitgroup_done(wg), 0);
}

static int unlock_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_gomaxprocs(), 1);
    gort_waitgroup_t wg = GORT_WAITGROUP_INIT;
    ASSERT_EQ(gort_waitgroup_add(&wg, 1), 0);
    ASSERT_EQ(gort_go(unlock_g, &wg), 0);
    ASSERT_EQ(gort_waitgroup_wait(&wg), 0);
    return 0;
}

TEST(unlock_restores_normal_scheduling)
{
    ASSERT_EQ(run_main(unlock_main, NULL, 1), 0);
}

/* ---- nesting ----------------------------------------------------------------- */

static void nest_g(void *arg)
{
    gort_waitgroup_t *wg = arg;
    long tid = test_gettid();
    /* Unlocking when not locked is a no-op. */
    ASSERT_EQ(gort_unlock_os_thread(), 0);
    ASSERT_EQ(probe(), tid);

    ASSERT_EQ(gort_lock_os_thread(), 0);
    ASSERT_EQ(gort_lock_os_thread(), 0);
    ASSERT_NE(probe(), tid);
    ASSERT_EQ(gort_unlock_os_thread(), 0); /* one of two: still locked */
    ASSERT_NE(probe(), tid);
    ASSERT_EQ(test_gettid(), tid);
    ASSERT_EQ(gort_unlock_os_thread(), 0); /* now unlocked */
    ASSERT_EQ(probe(), tid);
    ASSERT_EQ(gort_unlock_os_thread(), 0); /* no-op again: count stays 0 */
    ASSERT_EQ(gort_lock_os_thread(), 0);   /* so one lock locks */
    ASSERT_NE(probe(), tid);
    ASSERT_EQ(gort_unlock_os_thread(), 0);
    ASSERT_EQ(probe(), tid);
    ASSERT_EQ(gort_waitgroup_done(wg), 0);
}

static int nest_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_gomaxprocs(), 1);
    gort_waitgroup_t wg = GORT_WAITGROUP_INIT;
    ASSERT_EQ(gort_waitgroup_add(&wg, 1), 0);
    ASSERT_EQ(gort_go(nest_g, &wg), 0);
    ASSERT_EQ(gort_waitgroup_wait(&wg), 0);
    return 0;
}

TEST(nested_lock_needs_as_many_unlocks)
{
    ASSERT_EQ(run_main(nest_main, NULL, 1), 0);
}

/* ---- exiting while locked ends the thread ---------------------------------- */

static _Atomic long exit_tid;

static void exit_locked_g(void *arg)
{
    ASSERT_EQ(gort_lock_os_thread(), 0);
    atomic_store(&exit_tid, test_gettid());
    ASSERT_EQ(gort_waitgroup_done(arg), 0);
    /* returns locked: the thread must end */
}

static _Atomic uint64_t later_runs, later_on_dead;

static void later_g(void *arg)
{
    long dead = atomic_load(&exit_tid);
    for (int i = 0; i < 20; i++) {
        if (test_gettid() == dead)
            atomic_fetch_add(&later_on_dead, 1);
        atomic_fetch_add(&later_runs, 1);
        ASSERT_EQ(i % 2 ? gort_yield() : gort_sleep_ns(20000), 0);
    }
    ASSERT_EQ(gort_waitgroup_done(arg), 0);
}

static int exit_main(void *arg)
{
    long m0_tid = (long)(intptr_t)arg;
    ASSERT_EQ(test_gettid(), m0_tid);
    /* Lock main to m0 so that the goroutine below cannot run on m0 (m0
     * does not end; it would idle instead). */
    ASSERT_EQ(gort_lock_os_thread(), 0);
    gort_waitgroup_t wg = GORT_WAITGROUP_INIT;
    ASSERT_EQ(gort_waitgroup_add(&wg, 1), 0);
    ASSERT_EQ(gort_go(exit_locked_g, &wg), 0);
    ASSERT_EQ(gort_waitgroup_wait(&wg), 0);
    ASSERT_EQ(gort_unlock_os_thread(), 0);
    long tid = atomic_load(&exit_tid);
    ASSERT_NE(tid, 0);
    ASSERT_NE(tid, m0_tid);

    /* The thread ends soon after the goroutine returns. */
    int64_t deadline = test_now_ns() + 10000 * MS;
    while (task_exists(tid) && test_now_ns() < deadline)
        ASSERT_EQ(gort_sleep_ns(1 * MS), 0);
    if (task_exists(tid))
        TEST_FAIL("thread %ld of a goroutine that exited locked still exists", tid);

    /* Later goroutines run elsewhere (tids are not reused this soon). */
    int n = 16;
    ASSERT_EQ(gort_waitgroup_add(&wg, n), 0);
    for (int i = 0; i < n; i++)
        ASSERT_EQ(gort_go(later_g, &wg), 0);
    ASSERT_EQ(gort_waitgroup_wait(&wg), 0);
    ASSERT_EQ(atomic_load(&later_runs), 20 * n);
    ASSERT_EQ(atomic_load(&later_on_dead), 0);
    ASSERT_FALSE(task_exists(tid));
    return 0;
}

TEST(locked_exit_ends_thread)
{
    long m0 = test_gettid();
    ASSERT_EQ(run_main(exit_main, (void *)(intptr_t)m0, 2), 0);
    ASSERT_EQ(test_gettid(), m0);
}

/* m0 cannot end (gort_main must return on it): a goroutine that exits
 * locked on m0 leaves m0 idle until shutdown, and the rest goes on on other
 * threads. */
static _Atomic long m0_g_tid;

static void m0_exit_g(void *arg)
{
    atomic_store(&m0_g_tid, test_gettid());
    ASSERT_EQ(gort_lock_os_thread(), 0);
    ASSERT_EQ(gort_waitgroup_done(arg), 0);
}

static int m0_exit_main(void *arg)
{
    long m0_tid = (long)(intptr_t)arg;
    ASSERT_EQ(gort_gomaxprocs(), 1);
    ASSERT_EQ(test_gettid(), m0_tid); /* main starts on m0 */
    gort_waitgroup_t wg = GORT_WAITGROUP_INIT;
    ASSERT_EQ(gort_waitgroup_add(&wg, 1), 0);
    ASSERT_EQ(gort_go(m0_exit_g, &wg), 0);
    ASSERT_EQ(gort_waitgroup_wait(&wg), 0); /* m0 runs m0_exit_g next */
    ASSERT_EQ(atomic_load(&m0_g_tid), m0_tid);
    /* m0 idles now: main is elsewhere, and goes on running. */
    ASSERT_NE(test_gettid(), m0_tid);
    for (int i = 0; i < 10; i++) {
        ASSERT_NE(probe(), m0_tid);
        ASSERT_EQ(gort_sleep_ns(100000), 0);
        ASSERT_NE(test_gettid(), m0_tid);
    }
    ASSERT_TRUE(task_exists(m0_tid));
    return 7;
}

TEST(locked_exit_on_m0_idles_until_shutdown)
{
    long m0 = test_gettid();
    ASSERT_EQ(run_main(m0_exit_main, (void *)(intptr_t)m0, 1), 7);
    ASSERT_EQ(test_gettid(), m0);
    /* And the runtime can start again. */
    ASSERT_EQ(run_main(m0_exit_main, (void *)(intptr_t)m0, 1), 7);
}

/* The main goroutine locked when it returns (or calls gort_exit): fine,
 * gort_main returns its result. */
static void forever_g(void *arg)
{
    gort_waitgroup_t never = GORT_WAITGROUP_INIT;
    (void)arg;
    ASSERT_EQ(gort_waitgroup_add(&never, 1), 0);
    gort_waitgroup_wait(&never);
}

static int main_locked_main(void *arg)
{
    long m0_tid = (long)(intptr_t)arg;
    ASSERT_EQ(gort_lock_os_thread(), 0);
    ASSERT_EQ(gort_lock_os_thread(), 0);
    ASSERT_EQ(gort_go(forever_g, NULL), 0);
    ASSERT_EQ(gort_sleep_ns(1 * MS), 0);
    ASSERT_EQ(gort_yield(), 0);
    ASSERT_EQ(test_gettid(), m0_tid);
    return 5;
}

TEST(main_goroutine_returns_locked)
{
    long m0 = test_gettid();
    ASSERT_EQ(run_main(main_locked_main, (void *)(intptr_t)m0, 2), 5);
    ASSERT_EQ(test_gettid(), m0);
}

static int main_locked_exit_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_lock_os_thread(), 0);
    ASSERT_EQ(gort_sleep_ns(1 * MS), 0);
    gort_exit();
    TEST_FAIL("gort_exit returned in the main goroutine");
    return 1;
}

TEST(main_goroutine_exits_locked)
{
    ASSERT_EQ(run_main(main_locked_exit_main, NULL, 1), 0);
    ASSERT_EQ(run_main(main_locked_exit_main, NULL, 2), 0);
}

/* ---- contexts ---------------------------------------------------------------- */

TEST(lock_os_thread_foreign_thread_eperm)
{
    ASSERT_EQ(gort_lock_os_thread(), -EPERM);
    ASSERT_EQ(gort_unlock_os_thread(), -EPERM);
}

/* The first lock of a run starts the template thread that later threads are
 * cloned from; when no thread can be made the lock fails with -EAGAIN and
 * leaves the goroutine unlocked. Before, it locked anyway, and the threads
 * made afterwards were cloned from the locked thread. */
static int lock_eagain_main(void *arg)
{
    (void)arg;
    struct rlimit old;
    test_nproc_limit_now(&old);
    int r = gort_lock_os_thread();
    ASSERT_EQ(setrlimit(RLIMIT_NPROC, &old), 0);
    ASSERT_EQ(r, -EAGAIN);
    ASSERT_EQ(gort_unlock_os_thread(), 0); /* not locked: a no-op */
    /* With threads to be had again, the lock works. */
    ASSERT_EQ(gort_lock_os_thread(), 0);
    ASSERT_EQ(gort_unlock_os_thread(), 0);
    return 0;
}

TEST(lock_os_thread_eagain_without_template_thread)
{
    ASSERT_EQ(run_main(lock_eagain_main, NULL, 1), 0);
}
