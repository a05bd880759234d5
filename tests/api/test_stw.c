/*
 * test_stw.c - stop-the-world, gort_for_each_p and gort_gomaxprocs_set
 * (issue 7; src/stw.c).
 *
 * What a stopped world means is observed through counters that goroutines
 * bump as they run: between gort_stop_the_world and gort_start_the_world
 * none of them may move (a goroutine that ran would bump one). That a
 * dedicated goroutine keeps its P and thread through a stop is observed
 * through gort_current_p and gettid, and the runtime's counters
 * (syscall_slow_exits, startlockedm: a hand-off would move them). Durations
 * only bound how long a case waits for something that must happen.
 *
 *  errors     bad arguments, foreign threads, nesting, -EBUSY.
 *  normal     running goroutines (normal and locked) freeze during a stop.
 *  dedicated  dedicated goroutines running, parked, in short and long
 *             syscalls and spinning: all freeze, keep their P and thread; one
 *             whose syscall returns during the stop waits for the start.
 *  owner      what the stopper may do (go, yield, syscalls, set GOMAXPROCS)
 *             and may not (block: fatal).
 *  lost       channels, timers and sleepers under 100s of stops: nothing lost.
 *  gomaxprocs 1, 8, 2, 1 under load: run queues and timers of removed Ps
 *             survive, Ps with new ids run goroutines.
 *  foreachp   every normal and dedicated P visited once, while nothing runs.
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "gort_util.h"

#define MS 1000000ll
#define US 1000ll

static void nanosleep_syscall(int mode, int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    ASSERT_EQ(gort_syscall(mode, SYS_nanosleep, (long)&ts, 0, 0, 0, 0, 0), 0);
}

/* ---- errors ---------------------------------------------------------------- */

static void *foreign_calls(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_stop_the_world("x"), -EPERM);
    ASSERT_EQ(gort_start_the_world(), -EPERM);
    ASSERT_EQ(gort_gomaxprocs_set(2), -EPERM);
    ASSERT_EQ(gort_current_p(), -EPERM);
    ASSERT_EQ(gort_for_each_p(NULL, NULL), -EPERM);
    return NULL;
}

static void noop_p(int id, int ded, void *arg)
{
    (void)id;
    (void)ded;
    (void)arg;
}

static int errors_main(void *arg)
{
    (void)arg;
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, foreign_calls, NULL), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_EQ(gort_start_the_world(), -EPERM); /* not stopped */
    ASSERT_EQ(gort_gomaxprocs_set(0), -EINVAL);
    ASSERT_EQ(gort_gomaxprocs_set(-1), -EINVAL);
    ASSERT_EQ(gort_gomaxprocs_set(GORT_MAXPROCS_MAX + 1), -EINVAL);
    ASSERT_EQ(gort_for_each_p(NULL, NULL), -EINVAL);
    ASSERT_EQ(gort_gomaxprocs_set(2), 2); /* same value: nothing to do */
    gort_stats_t before = stats_now();
    ASSERT_EQ(gort_stop_the_world("test"), 0);
    ASSERT_EQ(gort_stop_the_world("again"), -EDEADLK);
    ASSERT_EQ(gort_dedicate_os_thread(), -EBUSY);
    ASSERT_EQ(gort_for_each_p(noop_p, NULL), 0); /* visits without a second stop */
    ASSERT_EQ(gort_start_the_world(), 0);
    ASSERT_EQ(gort_start_the_world(), -EPERM);
    gort_stats_t after = stats_now();
    ASSERT_EQ(after.stw_count - before.stw_count, 1);
    ASSERT_EQ(after.procresizes, 0);
    return 0;
}

TEST(stw_errors)
{
    ASSERT_EQ(run_main(errors_main, NULL, 2), 0);
}

/* ---- normal and locked goroutines freeze --------------------------------- */

#define NBUSY 4
static _Atomic uint64_t busy_ctr[NBUSY + 1];
static _Atomic bool busy_stop;
static gort_waitgroup_t busy_wg;

static void busy_loop(void *arg)
{
    long i = (long)arg;
    if (i == NBUSY)
        ASSERT_EQ(gort_lock_os_thread(), 0);
    long tid = test_gettid();
    while (!atomic_load(&busy_stop)) {
        atomic_fetch_add(&busy_ctr[i], 1);
        ASSERT_EQ(gort_preempt_check(), 0);
        if (i == NBUSY) {
            ASSERT_EQ(test_gettid(), tid); /* locked: never moves */
            /* sysmon does not preempt locked goroutines: let the others
             * queued on this P (and its timers) have it now and then. */
            if (atomic_load(&busy_ctr[i]) % 4096 == 0)
                ASSERT_EQ(gort_yield(), 0);
        }
    }
    ASSERT_EQ(gort_waitgroup_done(&busy_wg), 0);
}

static void snap(_Atomic uint64_t *c, uint64_t *out, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = atomic_load(&c[i]);
}

static int freeze_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_waitgroup_add(&busy_wg, NBUSY + 1), 0);
    for (long i = 0; i <= NBUSY; i++)
        ASSERT_EQ(gort_go(busy_loop, (void *)i), 0);
    ASSERT_EQ(gort_sleep_ns(20 * MS), 0);
    for (int round = 0; round < 10; round++) {
        uint64_t a[NBUSY + 1], b[NBUSY + 1], c[NBUSY + 1];
        ASSERT_EQ(gort_stop_the_world("freeze"), 0);
        snap(busy_ctr, a, NBUSY + 1);
        busy_ns(3 * MS);
        snap(busy_ctr, b, NBUSY + 1);
        for (int i = 0; i <= NBUSY; i++)
            ASSERT_EQ(a[i], b[i]);
        ASSERT_EQ(gort_start_the_world(), 0);
        /* ... and every one of them runs again. */
        int64_t deadline = test_now_ns() + 10000 * MS;
        for (;;) {
            snap(busy_ctr, c, NBUSY + 1);
            int moved = 0;
            for (int i = 0; i <= NBUSY; i++)
                moved += c[i] != b[i];
            if (moved == NBUSY + 1)
                break;
            ASSERT_LT(test_now_ns(), deadline);
            ASSERT_EQ(gort_sleep_ns(1 * MS), 0);
        }
    }
    atomic_store(&busy_stop, true);
    ASSERT_EQ(gort_waitgroup_wait(&busy_wg), 0);
    return 0;
}

TEST(stw_freezes_normal_and_locked_goroutines_procs2)
{
    ASSERT_EQ(run_main(freeze_main, NULL, 2), 0);
}

TEST(stw_freezes_normal_and_locked_goroutines_procs4)
{
    ASSERT_EQ(run_main(freeze_main, NULL, 4), 0);
}

/* ---- dedicated goroutines in every state ---------------------------------- */

enum { D_RUN, D_PARK, D_SHORT, D_LONG, D_SPIN, D_N };
static _Atomic uint64_t ded_ctr[D_N];
static _Atomic bool ded_stop;
static _Atomic int long_phase;     /* 1: in the long syscall, 2: back from it */
static _Atomic uint32_t long_word; /* the long syscall waits until it is 1 */
static gort_chan_t *park_ch, *spin_ch;
static gort_waitgroup_t ded_wg;

struct where {
    long tid;
    int p;
};

static struct where here(void)
{
    struct where w = {test_gettid(), gort_current_p()};
    return w;
}

static void check_here(struct where w)
{
    ASSERT_EQ(test_gettid(), w.tid);
    ASSERT_EQ(gort_current_p(), w.p);
}

static void ded_worker(void *arg)
{
    long kind = (long)arg;
    ASSERT_EQ(gort_dedicate_os_thread(), 0);
    struct where w = here();
    ASSERT_GE(w.p, GORT_MAXPROCS_MAX);
    bool ok;
    int v;
    switch (kind) {
    case D_RUN:
        while (!atomic_load(&ded_stop)) {
            atomic_fetch_add(&ded_ctr[kind], 1);
            ASSERT_EQ(gort_preempt_check(), 0);
        }
        break;
    case D_PARK:
    case D_SPIN:
        for (;;) {
            ASSERT_EQ(gort_chan_recv(kind == D_PARK ? park_ch : spin_ch, &v, &ok), 0);
            if (!ok)
                break;
            atomic_fetch_add(&ded_ctr[kind], 1);
            check_here(w);
        }
        break;
    case D_SHORT:
        while (!atomic_load(&ded_stop)) {
            nanosleep_syscall(GORT_SYSCALL_LAZY, 50 * US);
            atomic_fetch_add(&ded_ctr[kind], 1);
            check_here(w);
        }
        break;
    case D_LONG:
        atomic_store(&long_phase, 1);
        /* A system call that lasts until main ends it (during a stop). */
        while (atomic_load(&long_word) == 0)
            gort_syscall(GORT_SYSCALL_LAZY, SYS_futex, (long)&long_word, FUTEX_WAIT_PRIVATE, 0, 0,
                         0, 0);
        atomic_store(&long_phase, 2);
        atomic_fetch_add(&ded_ctr[kind], 1);
        check_here(w);
        while (!atomic_load(&ded_stop)) {
            atomic_fetch_add(&ded_ctr[kind], 1);
            nanosleep_syscall(GORT_SYSCALL_EAGER, 20 * US);
        }
        break;
    }
    check_here(w);
    ASSERT_EQ(gort_undedicate_os_thread(), 0);
    ASSERT_EQ(gort_waitgroup_done(&ded_wg), 0);
}

static void feeder(void *arg)
{
    gort_chan_t *c = arg;
    int v = 1;
    while (!atomic_load(&ded_stop)) {
        ASSERT_EQ(gort_chan_send(c, &v), 0);
        if (c == park_ch)
            ASSERT_EQ(gort_sleep_ns(1 * MS), 0); /* long gaps: the thread sleeps */
        else
            ASSERT_EQ(gort_yield(), 0); /* short gaps: it is caught spinning */
    }
    ASSERT_EQ(gort_chan_close(c), 0);
    ASSERT_EQ(gort_waitgroup_done(&ded_wg), 0);
}

static void freeze_check(const char *what)
{
    uint64_t a[D_N], b[D_N];
    snap(ded_ctr, a, D_N);
    busy_ns(3 * MS);
    snap(ded_ctr, b, D_N);
    for (int i = 0; i < D_N; i++) {
        if (a[i] != b[i])
            test_log("%s: counter %d moved during the stop", what, i);
        ASSERT_EQ(a[i], b[i]);
    }
}

static int dedicated_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_chan_make(&park_ch, sizeof(int), 0), 0);
    ASSERT_EQ(gort_chan_make(&spin_ch, sizeof(int), 0), 0);
    ASSERT_EQ(gort_waitgroup_add(&ded_wg, D_N + 2), 0);
    for (long k = 0; k < D_N; k++)
        ASSERT_EQ(gort_go(ded_worker, (void *)k), 0);
    ASSERT_EQ(gort_go(feeder, park_ch), 0);
    ASSERT_EQ(gort_go(feeder, spin_ch), 0);
    while (atomic_load(&long_phase) != 1)
        ASSERT_EQ(gort_sleep_ns(1 * MS), 0);
    gort_stats_t before = stats_now();

    /* Quick stops while everything runs. */
    for (int i = 0; i < 20; i++) {
        ASSERT_EQ(gort_stop_the_world("dedicated"), 0);
        freeze_check("quick stop");
        ASSERT_EQ(gort_start_the_world(), 0);
        ASSERT_EQ(gort_sleep_ns(2 * MS), 0);
    }
    /* A long stop across the end of the long syscall: the goroutine comes
     * back from the kernel and waits, on its own thread, for the start. */
    ASSERT_EQ(atomic_load(&long_phase), 1);
    ASSERT_EQ(gort_stop_the_world("long"), 0);
    freeze_check("long stop");
    /* End its system call now: it returns from the kernel during the stop
     * and must wait on its own thread. */
    atomic_store(&long_word, 1);
    syscall(SYS_futex, &long_word, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0);
    busy_ns(200 * MS);
    ASSERT_EQ(atomic_load(&long_phase), 1);
    freeze_check("long stop, later");
    ASSERT_EQ(gort_start_the_world(), 0);
    int64_t deadline = test_now_ns() + 10000 * MS;
    while (atomic_load(&long_phase) != 2) {
        ASSERT_LT(test_now_ns(), deadline);
        ASSERT_EQ(gort_sleep_ns(1 * MS), 0);
    }
    gort_stats_t after = stats_now();
    atomic_store(&ded_stop, true);
    ASSERT_EQ(gort_waitgroup_wait(&ded_wg), 0);

    /* No dedicated P changed hands: a hand-off would show as a slow
     * syscall exit or a startlockedm. */
    ASSERT_EQ(after.syscall_slow_exits - before.syscall_slow_exits, 0);
    ASSERT_EQ(after.startlockedm - before.startlockedm, 0);
    ASSERT_GE(after.stw_dedicated_waits - before.stw_dedicated_waits, 1);
    ASSERT_EQ(after.stw_count - before.stw_count, 21);
    for (int i = 0; i < D_N; i++)
        ASSERT_GT(atomic_load(&ded_ctr[i]), 0);
    ASSERT_EQ(gort_chan_free(park_ch), 0);
    ASSERT_EQ(gort_chan_free(spin_ch), 0);
    return 0;
}

TEST_TIMEOUT(stw_dedicated_in_every_state_keep_p_and_thread, 120)
{
    ASSERT_EQ(run_main_spin(dedicated_main, NULL, 2, 200 * US), 0);
}

/* A dedicated goroutine stops the world itself. */
static _Atomic uint64_t other_ctr;
static _Atomic bool other_stop;

static void other_busy(void *arg)
{
    (void)arg;
    while (!atomic_load(&other_stop)) {
        atomic_fetch_add(&other_ctr, 1);
        ASSERT_EQ(gort_preempt_check(), 0);
    }
    ASSERT_EQ(gort_waitgroup_done(&ded_wg), 0);
}

static void ded_stopper(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_dedicate_os_thread(), 0);
    struct where w = here();
    for (int i = 0; i < 20; i++) {
        ASSERT_EQ(gort_stop_the_world("from a dedicated goroutine"), 0);
        uint64_t a = atomic_load(&other_ctr);
        busy_ns(1 * MS);
        ASSERT_EQ(atomic_load(&other_ctr), a);
        ASSERT_EQ(gort_start_the_world(), 0);
        check_here(w);
        nanosleep_syscall(GORT_SYSCALL_LAZY, 1 * MS);
    }
    ASSERT_EQ(gort_undedicate_os_thread(), 0);
    atomic_store(&other_stop, true);
    ASSERT_EQ(gort_waitgroup_done(&ded_wg), 0);
}

static int ded_stopper_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_waitgroup_add(&ded_wg, 3), 0);
    ASSERT_EQ(gort_go(other_busy, NULL), 0);
    ASSERT_EQ(gort_go(other_busy, NULL), 0);
    ASSERT_EQ(gort_go(ded_stopper, NULL), 0);
    ASSERT_EQ(gort_waitgroup_wait(&ded_wg), 0);
    return 0;
}

TEST(stw_by_a_dedicated_goroutine)
{
    ASSERT_EQ(run_main(ded_stopper_main, NULL, 2), 0);
}

/* ---- the stopper ------------------------------------------------------------ */

static _Atomic int spawned_ran;

static void spawned(void *arg)
{
    (void)arg;
    atomic_store(&spawned_ran, 1);
}

static int owner_main(void *arg)
{
    (void)arg;
    long tid = test_gettid();
    ASSERT_EQ(gort_stop_the_world("owner"), 0);
    ASSERT_EQ(gort_go(spawned, NULL), 0);
    ASSERT_EQ(gort_yield(), 0); /* a no-op: nothing else may run */
    nanosleep_syscall(GORT_SYSCALL_LAZY, 1 * MS);
    nanosleep_syscall(GORT_SYSCALL_EAGER, 1 * MS);
    ASSERT_EQ(test_gettid(), tid);
    busy_ns(5 * MS);
    ASSERT_EQ(atomic_load(&spawned_ran), 0);
    ASSERT_EQ(gort_gomaxprocs_set(3), 2);
    ASSERT_EQ(gort_gomaxprocs(), 2); /* applied at the start */
    ASSERT_EQ(gort_start_the_world(), 0);
    ASSERT_EQ(gort_gomaxprocs(), 3);
    int64_t deadline = test_now_ns() + 10000 * MS;
    while (!atomic_load(&spawned_ran)) {
        ASSERT_LT(test_now_ns(), deadline);
        ASSERT_EQ(gort_sleep_ns(1 * MS), 0);
    }
    ASSERT_EQ(stats_now().procresizes, 1);
    return 0;
}

TEST(stw_owner_may_spawn_yield_and_make_syscalls)
{
    ASSERT_EQ(run_main(owner_main, NULL, 2), 0);
}

static int owner_blocks_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_stop_the_world("then block"), 0);
    gort_sleep_ns(1 * MS);
    return 0;
}

TEST_DEATH(stw_owner_blocking_is_fatal, "goroutine blocked with the world stopped")
{
    run_main(owner_blocks_main, NULL, 2);
}

/* The same at GOMAXPROCS=1 with another goroutine runnable: the park's
 * direct switch (sched.c) must not run it with the world stopped. It may
 * run before the stop (main preempted, as under TSan): then it yields until
 * the stop, so that it is queued when main parks. */
static _Atomic bool owner_stopped;

static void never_runs(void *arg)
{
    (void)arg;
    while (!atomic_load(&owner_stopped))
        ASSERT_EQ(gort_yield(), 0);
    TEST_FAIL("a goroutine ran with the world stopped");
}

static int owner_blocks_p1_main(void *arg)
{
    (void)arg;
    gort_chan_t *c;
    ASSERT_EQ(gort_chan_make(&c, 0, 0), 0);
    ASSERT_EQ(gort_go(never_runs, NULL), 0); /* in runnext */
    ASSERT_EQ(gort_stop_the_world("then block on a channel"), 0);
    atomic_store(&owner_stopped, true);
    gort_chan_recv(c, NULL, NULL);
    return 0;
}

TEST_DEATH(stw_owner_blocking_is_fatal_gomaxprocs_1, "goroutine blocked with the world stopped")
{
    run_main(owner_blocks_p1_main, NULL, 1);
}

/* main returns with the world stopped: gort_main still ends cleanly. */
static void parked_forever(void *arg)
{
    bool ok;
    int v;
    if (arg)
        ASSERT_EQ(gort_dedicate_os_thread(), 0);
    gort_chan_recv(park_ch, &v, &ok);
}

static int exit_stopped_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_chan_make(&park_ch, sizeof(int), 0), 0);
    ASSERT_EQ(gort_go(parked_forever, NULL), 0);
    ASSERT_EQ(gort_go(parked_forever, (void *)1), 0);
    ASSERT_EQ(gort_sleep_ns(10 * MS), 0);
    ASSERT_EQ(gort_stop_the_world("exit"), 0);
    return 7;
}

TEST(stw_main_returns_with_world_stopped)
{
    ASSERT_EQ(run_main(exit_stopped_main, NULL, 2), 7);
}

/* Two goroutines stopping the world over and over are serialised. */
static _Atomic int in_stop;

static void stopper_loop(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        ASSERT_EQ(gort_stop_the_world("contended"), 0);
        ASSERT_EQ(atomic_fetch_add(&in_stop, 1), 0);
        ASSERT_EQ(atomic_fetch_sub(&in_stop, 1), 1);
        ASSERT_EQ(gort_start_the_world(), 0);
    }
    ASSERT_EQ(gort_waitgroup_done(&ded_wg), 0);
}

static int two_stoppers_main(void *arg)
{
    (void)arg;
    gort_stats_t before = stats_now();
    ASSERT_EQ(gort_waitgroup_add(&ded_wg, 3), 0);
    ASSERT_EQ(gort_go(stopper_loop, NULL), 0);
    ASSERT_EQ(gort_go(stopper_loop, NULL), 0);
    ASSERT_EQ(gort_go(stopper_loop, NULL), 0);
    ASSERT_EQ(gort_waitgroup_wait(&ded_wg), 0);
    ASSERT_EQ(stats_now().stw_count - before.stw_count, 600);
    return 0;
}

TEST(stw_concurrent_stoppers_are_serialised)
{
    ASSERT_EQ(run_main(two_stoppers_main, NULL, 2), 0);
}

/* ---- nothing lost under load ------------------------------------------------ */

#define NPAIRS 4
static long lost_msgs; /* per pair */
static _Atomic long timers_fired;
static _Atomic long sleeps_done;
static gort_waitgroup_t load_wg;
static _Atomic bool load_stop;

struct pair {
    gort_chan_t *c;
    bool dedicated_consumer;
    _Atomic long received;
};
static struct pair pairs[NPAIRS];

static void producer(void *arg)
{
    struct pair *pr = arg;
    for (long i = 1; i <= lost_msgs; i++)
        ASSERT_EQ(gort_chan_send(pr->c, &i), 0);
    ASSERT_EQ(gort_chan_close(pr->c), 0);
    ASSERT_EQ(gort_waitgroup_done(&load_wg), 0);
}

static void consumer(void *arg)
{
    struct pair *pr = arg;
    if (pr->dedicated_consumer)
        ASSERT_EQ(gort_dedicate_os_thread(), 0);
    long expect = 1, v;
    bool ok;
    for (;;) {
        ASSERT_EQ(gort_chan_recv(pr->c, &v, &ok), 0);
        if (!ok)
            break;
        ASSERT_EQ(v, expect); /* in order, none lost, none twice */
        expect++;
    }
    atomic_store(&pr->received, expect - 1);
    if (pr->dedicated_consumer)
        ASSERT_EQ(gort_undedicate_os_thread(), 0);
    ASSERT_EQ(gort_waitgroup_done(&load_wg), 0);
}

static void timer_fn(void *arg)
{
    (void)arg;
    atomic_fetch_add(&timers_fired, 1);
    ASSERT_EQ(gort_waitgroup_done(&load_wg), 0);
}

static void sleeper(void *arg)
{
    long seed = (long)arg;
    for (int i = 0; i < 50; i++) {
        ASSERT_EQ(gort_sleep_ns((seed * 7 + i * 13) % 500 * US), 0);
        atomic_fetch_add(&sleeps_done, 1);
    }
    ASSERT_EQ(gort_waitgroup_done(&load_wg), 0);
}

#define NTIMERS   200
#define NSLEEPERS 20
static gort_timer_t *timers[NTIMERS];

static void start_load(void)
{
    lost_msgs = test_scale(200000);
    ASSERT_EQ(gort_waitgroup_add(&load_wg, 2 * NPAIRS + NTIMERS + NSLEEPERS), 0);
    for (int i = 0; i < NPAIRS; i++) {
        ASSERT_EQ(gort_chan_make(&pairs[i].c, sizeof(long), i % 2 ? 0 : 16), 0);
        pairs[i].dedicated_consumer = i >= NPAIRS - 2;
        atomic_store(&pairs[i].received, 0);
        ASSERT_EQ(gort_go(consumer, &pairs[i]), 0);
        ASSERT_EQ(gort_go(producer, &pairs[i]), 0);
    }
    for (int i = 0; i < NTIMERS; i++)
        ASSERT_EQ(gort_timer_start(&timers[i], (i % 50) * MS, 0, NULL, timer_fn, NULL), 0);
    for (long i = 0; i < NSLEEPERS; i++)
        ASSERT_EQ(gort_go(sleeper, (void *)i), 0);
}

static void finish_load(uint64_t live_before)
{
    ASSERT_EQ(gort_waitgroup_wait(&load_wg), 0);
    for (int i = 0; i < NPAIRS; i++) {
        ASSERT_EQ(atomic_load(&pairs[i].received), lost_msgs);
        ASSERT_EQ(gort_chan_free(pairs[i].c), 0);
    }
    ASSERT_EQ(atomic_load(&timers_fired), NTIMERS);
    ASSERT_EQ(atomic_load(&sleeps_done), NSLEEPERS * 50);
    for (int i = 0; i < NTIMERS; i++)
        ASSERT_EQ(gort_timer_free(timers[i]), 0);
    wait_live(live_before, 60);
}

static int lost_main(void *arg)
{
    (void)arg;
    uint64_t live = stats_now().goroutines_live;
    start_load();
    for (int i = 0; i < 300; i++) {
        ASSERT_EQ(gort_stop_the_world("load"), 0);
        ASSERT_EQ(gort_start_the_world(), 0);
        ASSERT_EQ(gort_sleep_ns(200 * US), 0);
    }
    finish_load(live);
    return 0;
}

TEST_TIMEOUT(stw_under_load_loses_nothing, 200)
{
    ASSERT_EQ(run_main(lost_main, NULL, 2), 0);
}

/* ---- GOMAXPROCS at run time ------------------------------------------------- */

static _Atomic uint64_t p_seen; /* bit per normal P id seen by a load goroutine */

static void p_watcher(void *arg)
{
    (void)arg;
    while (!atomic_load(&load_stop)) {
        int p = gort_current_p();
        ASSERT_GE(p, 0);
        if (p < 64)
            atomic_fetch_or(&p_seen, 1ull << p);
        ASSERT_EQ(gort_sleep_ns(50 * US), 0);
    }
    ASSERT_EQ(gort_waitgroup_done(&load_wg), 0);
}

static int gmp_main(void *arg)
{
    (void)arg;
    uint64_t live = stats_now().goroutines_live;
    start_load();
    ASSERT_EQ(gort_waitgroup_add(&load_wg, 16), 0);
    for (int i = 0; i < 16; i++)
        ASSERT_EQ(gort_go(p_watcher, NULL), 0);
    static const int seq[] = {1, 8, 2, 1};
    int prev = 2;
    for (int k = 0; k < 4; k++) {
        ASSERT_EQ(gort_gomaxprocs_set(seq[k]), prev);
        ASSERT_EQ(gort_gomaxprocs(), seq[k]);
        prev = seq[k];
        atomic_store(&p_seen, 0);
        if (seq[k] == 8) {
            /* Goroutines sleep and wake all over: Ps beyond the old two
             * run them (waited for, not timed: valgrind runs one thread at
             * a time). */
            int64_t deadline = test_now_ns() + 30000 * MS;
            while (__builtin_popcountll(atomic_load(&p_seen)) <= 2) {
                ASSERT_LT(test_now_ns(), deadline);
                ASSERT_EQ(gort_sleep_ns(1 * MS), 0);
            }
        } else {
            ASSERT_EQ(gort_sleep_ns(30 * MS), 0);
        }
        /* After the change only Ps below the new GOMAXPROCS run goroutines
         * (a watcher may have read its P just before the stop). */
        atomic_store(&p_seen, 0);
        ASSERT_EQ(gort_sleep_ns(10 * MS), 0);
        ASSERT_EQ(atomic_load(&p_seen) >> seq[k], 0);
    }
    atomic_store(&load_stop, true);
    finish_load(live);
    gort_stats_t st = stats_now();
    ASSERT_EQ(st.procresizes, 4);
    ASSERT_EQ(st.gomaxprocs, 1);
    return 0;
}

TEST_TIMEOUT(gomaxprocs_1_8_2_1_under_load, 200)
{
    ASSERT_EQ(run_main(gmp_main, NULL, 2), 0);
}

/* Goroutines queued on a P that goes away are not lost: at GOMAXPROCS=4,
 * main fills the run queues from several Ps, then shrinks to 1 before they
 * ran. */
static _Atomic long queued_ran;

static void queued(void *arg)
{
    (void)arg;
    atomic_fetch_add(&queued_ran, 1);
    ASSERT_EQ(gort_waitgroup_done(&load_wg), 0);
}

static void spawner(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_stop_the_world("spawn"), 0);
    for (int i = 0; i < 100; i++)
        ASSERT_EQ(gort_go(queued, NULL), 0); /* onto this P's queue, not run yet */
    ASSERT_EQ(gort_gomaxprocs_set(1), 4);
    ASSERT_EQ(gort_start_the_world(), 0);
    ASSERT_EQ(gort_waitgroup_done(&load_wg), 0);
}

static int shrink_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_waitgroup_add(&load_wg, 101), 0);
    ASSERT_EQ(gort_go(spawner, NULL), 0);
    ASSERT_EQ(gort_waitgroup_wait(&load_wg), 0);
    ASSERT_EQ(atomic_load(&queued_ran), 100);
    ASSERT_EQ(gort_gomaxprocs(), 1);
    ASSERT_EQ(gort_gomaxprocs_set(4), 1);
    ASSERT_EQ(gort_gomaxprocs_set(GORT_MAXPROCS_MAX), 4);
    ASSERT_EQ(gort_gomaxprocs_set(2), GORT_MAXPROCS_MAX);
    return 0;
}

TEST(gomaxprocs_shrink_keeps_queued_goroutines)
{
    ASSERT_EQ(run_main(shrink_main, NULL, 4), 0);
}

/* ---- gort_for_each_p ---------------------------------------------------------- */

struct visit {
    int normal;
    int ded;
    uint64_t normal_mask;
    int ded_ids[4];
    uint64_t before;
};

static _Atomic uint64_t visit_ctr;

static void visit_fn(int id, int ded, void *arg)
{
    struct visit *v = arg;
    if (ded) {
        ASSERT_LT(v->ded, 4);
        v->ded_ids[v->ded++] = id;
    } else {
        v->normal++;
        v->normal_mask |= 1ull << id;
    }
    /* Nothing runs while we visit. */
    ASSERT_EQ(atomic_load(&visit_ctr), v->before);
}

static _Atomic int ded_p_ids[2];

static void ded_counter(void *arg)
{
    long i = (long)arg;
    ASSERT_EQ(gort_dedicate_os_thread(), 0);
    atomic_store(&ded_p_ids[i], gort_current_p());
    while (!atomic_load(&load_stop)) {
        atomic_fetch_add(&visit_ctr, 1);
        ASSERT_EQ(gort_preempt_check(), 0);
    }
    ASSERT_EQ(gort_waitgroup_done(&load_wg), 0);
}

static int foreachp_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_waitgroup_add(&load_wg, 2), 0);
    ASSERT_EQ(gort_go(ded_counter, (void *)0), 0);
    ASSERT_EQ(gort_go(ded_counter, (void *)1), 0);
    while (!atomic_load(&ded_p_ids[0]) || !atomic_load(&ded_p_ids[1]))
        ASSERT_EQ(gort_sleep_ns(1 * MS), 0);
    for (int round = 0; round < 10; round++) {
        struct visit v;
        memset(&v, 0, sizeof v);
        /* fn checks that the counter has not moved since the stop. */
        ASSERT_EQ(gort_stop_the_world("foreachp"), 0);
        v.before = atomic_load(&visit_ctr);
        ASSERT_EQ(gort_for_each_p(visit_fn, &v), 0);
        ASSERT_EQ(gort_start_the_world(), 0);
        ASSERT_EQ(v.normal, 3);
        ASSERT_EQ(v.normal_mask, 7);
        ASSERT_EQ(v.ded, 2);
        int a = atomic_load(&ded_p_ids[0]), b = atomic_load(&ded_p_ids[1]);
        ASSERT_TRUE((v.ded_ids[0] == a && v.ded_ids[1] == b) ||
                    (v.ded_ids[0] == b && v.ded_ids[1] == a));
        ASSERT_EQ(gort_sleep_ns(1 * MS), 0);
    }
    atomic_store(&load_stop, true);
    ASSERT_EQ(gort_waitgroup_wait(&load_wg), 0);
    return 0;
}

TEST(for_each_p_visits_normal_and_dedicated_ps)
{
    ASSERT_EQ(run_main(foreachp_main, NULL, 3), 0);
}

static void count_fn(int id, int ded, void *arg)
{
    (void)id;
    (void)ded;
    ++*(int *)arg;
}

static int foreachp_alone_main(void *arg)
{
    (void)arg;
    gort_stats_t before = stats_now();
    int n = 0;
    ASSERT_EQ(gort_for_each_p(count_fn, &n), 0);
    ASSERT_EQ(n, 4);
    ASSERT_EQ(stats_now().stw_count - before.stw_count, 1);
    return 0;
}

TEST(for_each_p_stops_the_world_itself)
{
    ASSERT_EQ(run_main(foreachp_alone_main, NULL, 4), 0);
}

/* ---- following the cgroup CPU limit ---------------------------------------- */

static char cg_path[64];

static void write_file(const char *text)
{
    FILE *f = fopen(cg_path, "w");
    ASSERT_TRUE(f != NULL);
    fputs(text, f);
    fclose(f);
}

static void wait_gomaxprocs(int n)
{
    int64_t deadline = test_now_ns() + 20000 * MS; /* checked every second */
    while (gort_gomaxprocs() != n) {
        ASSERT_LT(test_now_ns(), deadline);
        ASSERT_EQ(gort_sleep_ns(10 * MS), 0);
    }
}

static int follow_main(void *arg)
{
    (void)arg;
    wait_gomaxprocs(1); /* quota 0.5 CPU: rounded up to 1 */
    write_file("max 100000\n");
    wait_gomaxprocs(2); /* no limit: the CPUs (2 allowed here) */
    write_file("150000 100000\n");
    ASSERT_EQ(gort_sleep_ns(1500 * MS), 0);
    ASSERT_EQ(gort_gomaxprocs(), 2); /* ceil(1.5) = 2 */
    /* Set by the program: the follower stops. */
    ASSERT_EQ(gort_gomaxprocs_set(2), 2);
    write_file("100000 100000\n");
    ASSERT_EQ(gort_sleep_ns(2500 * MS), 0);
    ASSERT_EQ(gort_gomaxprocs(), 2);
    return 0;
}

TEST_TIMEOUT(gomaxprocs_follows_cgroup_cpu_limit, 120)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    CPU_SET(1, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0 || CPU_COUNT(&set) < 2)
        TEST_SKIP("needs 2 CPUs");
    snprintf(cg_path, sizeof cg_path, "/tmp/gort_cpu_max_%d", (int)getpid());
    write_file("50000 100000\n");
    ASSERT_EQ(setenv("GORT_CGROUP_CPU_MAX", cg_path, 1), 0);
    ASSERT_EQ(run_main_flags(follow_main, NULL, 2, GORT_CONFIG_FOLLOW_CGROUP_CPU), 0);
    unlink(cg_path);
}
