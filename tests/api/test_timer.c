/*
 * test_timer.c - gort_sleep_ns and gort_timer_* (Go's time.Sleep,
 * time.Timer, time.Ticker, time.AfterFunc): sleeps never end early and do
 * not block the thread, timers fire in deadline order and never early, a
 * stopped timer never fires, reset re-arms, periodic timers fire until
 * stopped, fn timers run in a new goroutine, a full channel drops ticks,
 * many timers fire exactly once each, a due timer on a busy P is run by
 * another P, the timer sleeper's optional spin (timer_spin_ns), and the
 * argument and context checks.
 *
 * Timing is only asserted one way ("not before the deadline"), except for
 * the order test's check that adjacent deadlines (spaced by a few ms times
 * the build's test scale) are mostly fired in separate passes, and the
 * bail-out timeouts of seconds that turn a missed wake-up into a failure.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gort_util.h"

#define US ((int64_t)1000)
#define MS ((int64_t)1000000)
#define S  ((int64_t)1000000000)

static gort_chan_t *make_chan(size_t elem_size, size_t cap)
{
    gort_chan_t *c = NULL;
    ASSERT_EQ(gort_chan_make(&c, elem_size, cap), 0);
    return c;
}

/* The build's slowdown divisor (1 normally; 10, 20... under sanitizers). */
static int64_t build_scale(void)
{
    return 1000000 / test_scale(1000000);
}

static void wait_at_least(_Atomic int *v, int want, int timeout_s)
{
    int64_t deadline = test_now_ns() + (int64_t)timeout_s * S;
    while (atomic_load(v) < want) {
        if (test_now_ns() > deadline)
            TEST_FAIL("waited %d s for a counter to reach %d (it is %d)", timeout_s, want,
                      atomic_load(v));
        ASSERT_EQ(gort_sleep_ns(MS), 0);
    }
}

/* Receives one int64_t from c, failing after timeout_s seconds. */
static int64_t recv_i64(gort_chan_t *c, int timeout_s)
{
    int64_t v = 0;
    bool ok = false;
    int r = gort_chan_recv_deadline(c, &v, &ok, gort_now_ns() + (int64_t)timeout_s * S);
    if (r == -ETIMEDOUT)
        TEST_FAIL("nothing received within %d s", timeout_s);
    ASSERT_EQ(r, 0);
    ASSERT_TRUE(ok);
    return v;
}

/* Receives a timer's firing: the time it was due. It cannot have been
 * delivered before that time. */
static int64_t recv_stamp(gort_chan_t *c, int timeout_s)
{
    int64_t due = recv_i64(c, timeout_s);
    int64_t now = gort_now_ns();
    if (now < due)
        TEST_FAIL("a firing due at %lld arrived at %lld, %lld ns early", (long long)due,
                  (long long)now, (long long)(due - now));
    return due;
}

/* ---- sleep ------------------------------------------------------------------- */

static int sleep_main(void *arg)
{
    (void)arg;
    static const int64_t durs[] = {1, 1 * US, 50 * US, 100 * US, 1 * MS, 3 * MS, 10 * MS, 25 * MS};
    for (int rep = 0; rep < 3; rep++) {
        for (size_t i = 0; i < sizeof durs / sizeof durs[0]; i++) {
            int64_t t0 = gort_now_ns();
            ASSERT_EQ(gort_sleep_ns(durs[i]), 0);
            int64_t slept = gort_now_ns() - t0;
            if (slept < durs[i])
                TEST_FAIL("gort_sleep_ns(%lld) returned after %lld ns", (long long)durs[i],
                          (long long)slept);
        }
    }
    /* ns <= 0 returns at once with 0. */
    ASSERT_EQ(gort_sleep_ns(0), 0);
    ASSERT_EQ(gort_sleep_ns(-1), 0);
    ASSERT_EQ(gort_sleep_ns(INT64_MIN), 0);
    /* gort_now_ns is CLOCK_MONOTONIC: it agrees with the test's clock. */
    int64_t a = test_now_ns(), b = gort_now_ns(), c = test_now_ns();
    ASSERT_LE(a, b);
    ASSERT_LE(b, c);
    return 0;
}

TEST(sleep_never_early_procs1)
{
    ASSERT_EQ(run_main(sleep_main, NULL, 1), 0);
}

TEST(sleep_never_early_procs2)
{
    ASSERT_EQ(run_main(sleep_main, NULL, 2), 0);
}

/* gort_config_t.timer_spin_ns: the sleeper spins through the last stretch
 * before a timer; sleeps are still never early, and the counters show the
 * spins (nothing else runs, so a CPU is idle and spinning is allowed). */
static int spin_sleep_main(void *arg)
{
    bool on = arg != NULL;
    gort_stats_t a = stats_now();
    ASSERT_EQ(sleep_main(NULL), 0);
    for (int i = 0; i < 20; i++)
        ASSERT_EQ(gort_sleep_ns(1 * MS), 0);
    gort_stats_t b = stats_now();
    test_log("timer spins %llu, reached the timer %llu",
             (unsigned long long)(b.timer_spins - a.timer_spins),
             (unsigned long long)(b.timer_spin_catches - a.timer_spin_catches));
    if (on) {
        ASSERT_GE(b.timer_spins - a.timer_spins, 10);
        ASSERT_GE(b.timer_spin_catches - a.timer_spin_catches, 10);
        ASSERT_LE(b.timer_spin_catches - a.timer_spin_catches, b.timer_spins - a.timer_spins);
    } else {
        ASSERT_EQ(b.timer_spins - a.timer_spins, 0);
    }
    return 0;
}

static int spin_sleep(int gomaxprocs, int64_t timer_spin_ns, bool on)
{
    return run_main_timer_spin(spin_sleep_main, on ? (void *)1 : NULL, gomaxprocs, timer_spin_ns);
}

TEST(timer_spin_sleeps_never_early_procs1)
{
    ASSERT_EQ(spin_sleep(1, 200 * US, true), 0);
}

TEST(timer_spin_sleeps_never_early_procs2)
{
    ASSERT_EQ(spin_sleep(2, 200 * US, true), 0);
}

TEST(timer_spin_off_by_default_and_when_negative)
{
    unsetenv("GORT_TIMER_SPIN_NS");
    ASSERT_EQ(spin_sleep(1, 0, false), 0);
    ASSERT_EQ(spin_sleep(1, -1, false), 0);
    /* The environment sets it when the config leaves it 0. */
    ASSERT_EQ(setenv("GORT_TIMER_SPIN_NS", "200000", 1), 0);
    ASSERT_EQ(spin_sleep(1, 0, true), 0);
    ASSERT_EQ(spin_sleep(1, -1, false), 0);
    unsetenv("GORT_TIMER_SPIN_NS");
}

/* Many goroutines sleeping at once, each checking its own sleeps. */
#define SLEEPERS 64

static gort_waitgroup_t sl_wg;

static void sleeper(void *arg)
{
    uint64_t rng = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ULL + 1;
    for (int k = 0; k < 5; k++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        int64_t ns = (int64_t)((rng >> 33) % (uint64_t)(8 * MS)) + 1;
        int64_t t0 = gort_now_ns();
        ASSERT_EQ(gort_sleep_ns(ns), 0);
        int64_t slept = gort_now_ns() - t0;
        if (slept < ns)
            TEST_FAIL("gort_sleep_ns(%lld) returned after %lld ns", (long long)ns,
                      (long long)slept);
    }
    ASSERT_EQ(gort_waitgroup_done(&sl_wg), 0);
}

static int many_sleepers_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_waitgroup_add(&sl_wg, SLEEPERS), 0);
    for (int i = 0; i < SLEEPERS; i++)
        ASSERT_EQ(gort_go(sleeper, (void *)(uintptr_t)i), 0);
    ASSERT_EQ(gort_waitgroup_wait(&sl_wg), 0);
    return 0;
}

TEST(sleep_many_goroutines_never_early_procs1)
{
    ASSERT_EQ(run_main(many_sleepers_main, NULL, 1), 0);
}

TEST(sleep_many_goroutines_never_early_procs2)
{
    ASSERT_EQ(run_main(many_sleepers_main, NULL, 2), 0);
}

/* A sleeping goroutine does not block its thread, and a goroutine that only
 * yields does not keep the sleeper's timer from firing (the scheduler
 * checks timers on every pass, not only when idle). GOMAXPROCS 1. */
static _Atomic bool yl_stop;
static _Atomic long yl_count;
static _Atomic bool yl_gave_up;

static void yield_looper(void *arg)
{
    (void)arg;
    int64_t bail = test_now_ns() + 20 * S;
    while (!atomic_load(&yl_stop)) {
        atomic_fetch_add(&yl_count, 1);
        ASSERT_EQ(gort_yield(), 0);
        if (test_now_ns() > bail) {
            atomic_store(&yl_gave_up, true);
            break;
        }
    }
}

static int sleep_not_blocking_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_go(yield_looper, NULL), 0);
    ASSERT_EQ(gort_sleep_ns(30 * MS), 0);
    if (atomic_load(&yl_gave_up))
        TEST_FAIL("the sleeper only woke after a yielding goroutine gave up (20 s)");
    atomic_store(&yl_stop, true);
    /* The looper ran while we slept. */
    ASSERT_GT(atomic_load(&yl_count), 0);
    return 0;
}

TEST(sleep_does_not_block_thread_and_wakes_while_others_yield)
{
    ASSERT_EQ(run_main(sleep_not_blocking_main, NULL, 1), 0);
}

static void *sleep_foreign_thread(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_sleep_ns(MS), -EPERM);
    ASSERT_EQ(gort_sleep_ns(0), -EPERM);
    /* gort_now_ns works in any context. */
    ASSERT_GT(gort_now_ns(), 0);
    return NULL;
}

static int sleep_foreign_main(void *arg)
{
    (void)arg;
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, sleep_foreign_thread, NULL), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    return 0;
}

TEST(sleep_from_foreign_thread_eperm)
{
    ASSERT_EQ(run_main(sleep_foreign_main, NULL, 1), 0);
    ASSERT_EQ(gort_sleep_ns(MS), -EPERM); /* no runtime at all */
}

/* ---- deadline order ------------------------------------------------------------- */

#define ORDER_N 24

/* Timers with shuffled delays all send into one channel, which keeps the
 * order of the sends: the order in which the timers fired. Each sends the
 * time it was due, which identifies it. A timer's deadline lies in [lo,
 * hi]: the clock before and after its gort_timer_start, plus its delay.
 * Checked: (1) every value received is the deadline of one timer and every
 * timer delivered one value (nothing lost, nothing twice), (2) no value
 * arrived before it was due (recv_stamp), (3) the values arrive in
 * increasing order: the timers fired in deadline order, within one
 * scheduler pass too. With one P that is strict. With two, two Ms may run
 * due timers at the same moment (from two heaps, or one heap while the
 * other M is inside a firing), so two timers that were both overdue may
 * arrive swapped, as in Go; then the attempt is repeated, up to three
 * times: a misordered heap (the same permutation every attempt) fails all
 * three. */
static bool order_attempt(int64_t spacing, bool strict, bool *overlap)
{
    int perm[ORDER_N];
    for (int i = 0; i < ORDER_N; i++)
        perm[i] = i;
    uint64_t rng = 12345;
    for (int i = ORDER_N - 1; i > 0; i--) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        int j = (int)((rng >> 33) % (uint64_t)(i + 1));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    gort_chan_t *c = make_chan(sizeof(int64_t), ORDER_N);
    gort_timer_t *tm[ORDER_N];
    int64_t lo[ORDER_N], hi[ORDER_N], got[ORDER_N];
    int hits[ORDER_N];
    for (int k = 0; k < ORDER_N; k++) {
        /* Timer for rank perm[k] started k-th. */
        int rank = perm[k];
        int64_t delay = (rank + 1) * spacing;
        lo[rank] = gort_now_ns() + delay;
        ASSERT_EQ(gort_timer_start(&tm[rank], delay, 0, c, NULL, NULL), 0);
        hi[rank] = gort_now_ns() + delay;
        hits[rank] = 0;
    }
    /* If starting a timer took longer than the spacing (another process
     * had the CPU), windows overlap and a value cannot name its timer: let
     * the caller try again with more room. */
    bool ambiguous = false;
    for (int i = 0; i < ORDER_N; i++)
        for (int j = i + 1; j < ORDER_N; j++)
            if (lo[i] <= hi[j] && lo[j] <= hi[i])
                ambiguous = true;
    if (ambiguous) {
        for (int k = 0; k < ORDER_N; k++)
            (void)recv_stamp(c, 60);
        for (int rank = 0; rank < ORDER_N; rank++)
            ASSERT_EQ(gort_timer_free(tm[rank]), 0);
        ASSERT_EQ(gort_chan_free(c), 0);
        *overlap = true;
        return false;
    }
    bool in_order = true;
    for (int k = 0; k < ORDER_N; k++) {
        got[k] = recv_stamp(c, 60);
        int owner = -1;
        for (int i = 0; i < ORDER_N; i++) {
            if (got[k] >= lo[i] && got[k] <= hi[i]) {
                owner = i;
                hits[i]++;
            }
        }
        if (owner < 0)
            TEST_FAIL("value %lld received is no timer's deadline", (long long)got[k]);
        if (k > 0 && got[k] <= got[k - 1]) {
            if (strict)
                TEST_FAIL("firing %d was due at %lld, before firing %d due at %lld "
                          "(GOMAXPROCS 1: timers must fire in deadline order)",
                          k, (long long)got[k], k - 1, (long long)got[k - 1]);
            in_order = false;
        }
    }
    for (int i = 0; i < ORDER_N; i++)
        if (hits[i] != 1)
            TEST_FAIL("timer %d: %d values within its deadline window", i, hits[i]);
    /* One-shot: nothing more comes. */
    ASSERT_EQ(gort_sleep_ns(2 * spacing), 0);
    ASSERT_EQ(gort_chan_len(c), 0);
    for (int rank = 0; rank < ORDER_N; rank++) {
        ASSERT_EQ(gort_timer_stop(tm[rank]), 0); /* already fired */
        ASSERT_EQ(gort_timer_free(tm[rank]), 0);
    }
    ASSERT_EQ(gort_chan_free(c), 0);
    return in_order;
}

static int order_main(void *arg)
{
    (void)arg;
    bool strict = gort_gomaxprocs() == 1;
    int64_t spacing = 3 * MS * build_scale();
    for (int attempt = 1;; attempt++) {
        bool overlap = false;
        if (order_attempt(spacing, strict, &overlap))
            break;
        if (overlap) {
            test_log("attempt %d: starting timers took longer than %lld ns: again with twice "
                     "the spacing",
                     attempt, (long long)spacing);
            spacing *= 2;
            if (attempt >= 8)
                TEST_FAIL("the machine is too busy to tell timers apart");
            continue;
        }
        test_log("attempt %d: two overdue timers fired by two Ms arrived swapped", attempt);
        if (attempt == 3)
            TEST_FAIL("timers keep firing out of deadline order");
    }
    return 0;
}

TEST(timers_fire_in_deadline_order_procs1)
{
    ASSERT_EQ(run_main(order_main, NULL, 1), 0);
}

TEST(timers_fire_in_deadline_order_procs2)
{
    ASSERT_EQ(run_main(order_main, NULL, 2), 0);
}

/* ---- stop -------------------------------------------------------------------------- */

static _Atomic int stop_fn_runs;

static void stop_fn(void *arg)
{
    (void)arg;
    atomic_fetch_add(&stop_fn_runs, 1);
}

static int stop_main(void *arg)
{
    (void)arg;
    int64_t delay = 200 * MS;
    gort_chan_t *c = make_chan(sizeof(int64_t), 1);
    gort_timer_t *tc, *tf, *tfree;
    int64_t t0 = gort_now_ns();
    ASSERT_EQ(gort_timer_start(&tc, delay, 0, c, NULL, NULL), 0);
    ASSERT_EQ(gort_timer_start(&tf, delay, 0, NULL, stop_fn, NULL), 0);
    ASSERT_EQ(gort_timer_start(&tfree, delay, 0, NULL, stop_fn, NULL), 0);
    int rc = gort_timer_stop(tc), rf = gort_timer_stop(tf);
    ASSERT_EQ(gort_timer_free(tfree), 0); /* free of a pending timer stops it */
    if (gort_now_ns() - t0 >= delay)
        TEST_SKIP("the machine stalled for %lld ms between timer start and stop",
                  (long long)(delay / MS));
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(rf, 1);
    /* Stopping again: no longer pending. */
    ASSERT_EQ(gort_timer_stop(tc), 0);
    ASSERT_EQ(gort_timer_stop(tf), 0);
    /* Well past the deadlines: nothing arrived, nothing ran. */
    ASSERT_EQ(gort_sleep_ns(delay + 200 * MS), 0);
    ASSERT_EQ(gort_chan_try_recv(c, NULL, NULL), -EAGAIN);
    ASSERT_EQ(atomic_load(&stop_fn_runs), 0);

    /* After a firing: stop returns 0. */
    t0 = gort_now_ns();
    ASSERT_EQ(gort_timer_reset(tc, MS, 0), 0);
    int64_t st = recv_stamp(c, 60);
    ASSERT_GE(st, t0 + MS);
    ASSERT_EQ(gort_timer_stop(tc), 0);
    ASSERT_EQ(gort_timer_free(tc), 0);
    ASSERT_EQ(gort_timer_free(tf), 0);
    ASSERT_EQ(gort_chan_free(c), 0);
    return 0;
}

TEST(timer_stop_before_fire_never_fires_procs1)
{
    ASSERT_EQ(run_main(stop_main, NULL, 1), 0);
}

TEST(timer_stop_before_fire_never_fires_procs2)
{
    ASSERT_EQ(run_main(stop_main, NULL, 2), 0);
}

/* ---- reset ---------------------------------------------------------------------- */

static int reset_main(void *arg)
{
    (void)arg;
    gort_chan_t *c = make_chan(sizeof(int64_t), 1);
    gort_timer_t *t;
    /* Pending far in the future; reset brings it forward. */
    ASSERT_EQ(gort_timer_start(&t, 3600 * S, 0, c, NULL, NULL), 0);
    int64_t t0 = gort_now_ns();
    ASSERT_EQ(gort_timer_reset(t, 10 * MS, 0), 1);
    int64_t st = recv_stamp(c, 60);
    ASSERT_GE(st, t0 + 10 * MS);
    /* Fired (one-shot): reset re-arms it, returning 0. */
    t0 = gort_now_ns();
    ASSERT_EQ(gort_timer_reset(t, 5 * MS, 0), 0);
    st = recv_stamp(c, 60);
    ASSERT_GE(st, t0 + 5 * MS);
    /* Reset pushes a pending timer later: the old deadline no longer counts. */
    ASSERT_EQ(gort_timer_reset(t, 20 * MS, 0), 0);
    ASSERT_EQ(gort_timer_reset(t, 3600 * S, 0), 1);
    ASSERT_EQ(gort_sleep_ns(100 * MS), 0);
    ASSERT_EQ(gort_chan_try_recv(c, NULL, NULL), -EAGAIN);
    /* Stopped, then reset: fires again. */
    ASSERT_EQ(gort_timer_stop(t), 1);
    t0 = gort_now_ns();
    ASSERT_EQ(gort_timer_reset(t, 2 * MS, 0), 0);
    st = recv_stamp(c, 60);
    ASSERT_GE(st, t0 + 2 * MS);
    /* A negative delay counts as 0: fires promptly. */
    ASSERT_EQ(gort_timer_reset(t, -5 * S, 0), 0);
    (void)recv_stamp(c, 60);
    /* Bad period: -EINVAL. */
    ASSERT_EQ(gort_timer_reset(t, MS, -1), -EINVAL);
    ASSERT_EQ(gort_timer_free(t), 0);
    ASSERT_EQ(gort_chan_free(c), 0);
    return 0;
}

TEST(timer_reset_rearms_procs1)
{
    ASSERT_EQ(run_main(reset_main, NULL, 1), 0);
}

TEST(timer_reset_rearms_procs2)
{
    ASSERT_EQ(run_main(reset_main, NULL, 2), 0);
}

/* ---- periodic ----------------------------------------------------------------- */

static _Atomic int per_fn_runs;

static void per_fn(void *arg)
{
    (void)arg;
    atomic_fetch_add(&per_fn_runs, 1);
}

static int periodic_main(void *arg)
{
    (void)arg;
    int64_t period = 2 * MS;
    gort_chan_t *c = make_chan(sizeof(int64_t), 1);
    gort_timer_t *t, *tf;
    int64_t t0 = gort_now_ns();
    ASSERT_EQ(gort_timer_start(&t, period, period, c, NULL, NULL), 0);
    ASSERT_EQ(gort_timer_start(&tf, period, period, NULL, per_fn, NULL), 0);
    int64_t prev = t0;
    for (int i = 0; i < 10; i++) {
        int64_t st = recv_stamp(c, 60);
        ASSERT_GT(st, prev); /* a new firing each time */
        prev = st;
    }
    /* 10 ticks took at least the first deadline plus 9 periods (each tick
     * is a separate firing: the next is re-armed after `now`). */
    ASSERT_GE(prev, t0 + 10 * period);
    wait_at_least(&per_fn_runs, 10, 60);

    /* A periodic timer is pending until stopped. */
    ASSERT_EQ(gort_timer_stop(t), 1);
    ASSERT_EQ(gort_timer_stop(tf), 1);
    ASSERT_EQ(gort_timer_stop(t), 0);
    /* At most one tick was buffered before the stop. */
    (void)gort_chan_try_recv(c, NULL, NULL);
    /* fn goroutines started by firings before the stop may still run: let
     * them, then nothing more may happen. */
    ASSERT_EQ(gort_sleep_ns(100 * MS), 0);
    int runs = atomic_load(&per_fn_runs);
    ASSERT_EQ(gort_sleep_ns(50 * period), 0);
    ASSERT_EQ(gort_chan_try_recv(c, NULL, NULL), -EAGAIN);
    ASSERT_EQ(atomic_load(&per_fn_runs), runs);

    /* reset turns it back on, as a one-shot this time. */
    ASSERT_EQ(gort_timer_reset(t, MS, 0), 0);
    (void)recv_stamp(c, 60);
    ASSERT_EQ(gort_sleep_ns(20 * period), 0);
    ASSERT_EQ(gort_chan_try_recv(c, NULL, NULL), -EAGAIN);
    ASSERT_EQ(gort_timer_free(t), 0);
    ASSERT_EQ(gort_timer_free(tf), 0);
    ASSERT_EQ(gort_chan_free(c), 0);
    return 0;
}

TEST(timer_periodic_fires_until_stopped_procs1)
{
    ASSERT_EQ(run_main(periodic_main, NULL, 1), 0);
}

TEST(timer_periodic_fires_until_stopped_procs2)
{
    ASSERT_EQ(run_main(periodic_main, NULL, 2), 0);
}

/* A periodic timer whose fn stops it from the goroutine the firing
 * started. */
static gort_timer_t *self_stop_t;
static _Atomic int self_stop_runs;
static _Atomic int self_stop_results;

static void self_stop_fn(void *arg)
{
    (void)arg;
    if (atomic_fetch_add(&self_stop_runs, 1) + 1 == 3) {
        int r = gort_timer_stop(self_stop_t);
        ASSERT_TRUE(r == 0 || r == 1);
        atomic_fetch_add(&self_stop_results, 1);
    }
}

static int self_stop_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_timer_start(&self_stop_t, MS, MS, NULL, self_stop_fn, NULL), 0);
    wait_at_least(&self_stop_results, 1, 60);
    ASSERT_EQ(gort_sleep_ns(100 * MS), 0);
    int runs = atomic_load(&self_stop_runs);
    ASSERT_GE(runs, 3);
    ASSERT_EQ(gort_sleep_ns(50 * MS), 0);
    ASSERT_EQ(atomic_load(&self_stop_runs), runs);
    ASSERT_EQ(gort_timer_free(self_stop_t), 0);
    return 0;
}

TEST(timer_periodic_stopped_from_its_fn)
{
    ASSERT_EQ(run_main(self_stop_main, NULL, 2), 0);
}

/* A period so long that the next firing is past INT64_MAX: the timer fires
 * once and then never again (the re-arm saturates instead of overflowing
 * into the past and firing in a loop). */
static _Atomic int huge_runs;

static void huge_fn(void *arg)
{
    (void)arg;
    atomic_fetch_add(&huge_runs, 1);
}

static int huge_period_main(void *arg)
{
    int64_t period = (int64_t)(intptr_t)arg ? INT64_MAX : INT64_MAX - gort_now_ns() / 2;
    atomic_store(&huge_runs, 0);
    gort_timer_t *t;
    ASSERT_EQ(gort_timer_start(&t, MS, period, NULL, huge_fn, NULL), 0);
    wait_at_least(&huge_runs, 1, 60);
    ASSERT_EQ(gort_sleep_ns(50 * MS), 0);
    ASSERT_EQ(atomic_load(&huge_runs), 1);
    ASSERT_EQ(gort_timer_free(t), 0);
    return 0;
}

TEST(timer_periodic_huge_period_fires_once)
{
    ASSERT_EQ(run_main(huge_period_main, (void *)1, 1), 0);
    ASSERT_EQ(run_main(huge_period_main, (void *)0, 2), 0);
}

/* A full channel drops ticks instead of blocking the timer. */
static int drop_main(void *arg)
{
    (void)arg;
    gort_chan_t *c = make_chan(sizeof(int64_t), 1);
    gort_timer_t *t;
    ASSERT_EQ(gort_timer_start(&t, MS, MS, c, NULL, NULL), 0);
    ASSERT_EQ(gort_sleep_ns(50 * MS), 0);
    ASSERT_EQ(gort_chan_len(c), 1);
    /* Still ticking: after taking the buffered tick, another one comes. */
    int64_t a = recv_stamp(c, 60);
    int64_t b = recv_stamp(c, 60);
    ASSERT_GT(b, a);
    ASSERT_EQ(gort_timer_free(t), 0);
    ASSERT_EQ(gort_chan_free(c), 0);
    return 0;
}

TEST(timer_full_channel_drops_ticks)
{
    ASSERT_EQ(run_main(drop_main, NULL, 1), 0);
}

/* ---- fn timers run in a new goroutine ------------------------------------------ */

static gort_chan_t *ids_c;

static void id_fn(void *arg)
{
    ASSERT_EQ(arg, (void *)&ids_c); /* the arg is passed through */
    int64_t id = gort_self_id();
    ASSERT_EQ(gort_chan_send(ids_c, &id), 0); /* may block: it is a goroutine */
}

static int fn_goroutine_main(void *arg)
{
    (void)arg;
    ids_c = make_chan(sizeof(int64_t), 0);
    int64_t me = gort_self_id();
    ASSERT_GT(me, 0);
    gort_timer_t *t;
    ASSERT_EQ(gort_timer_start(&t, MS, 0, NULL, id_fn, &ids_c), 0);
    int64_t id1 = recv_i64(ids_c, 60);
    ASSERT_GT(id1, 0);
    ASSERT_NE(id1, me);
    /* Each firing (periodic) is its own goroutine. */
    ASSERT_EQ(gort_timer_reset(t, MS, MS), 0);
    int64_t ids[4];
    for (int i = 0; i < 4; i++) {
        ids[i] = recv_i64(ids_c, 60);
        ASSERT_GT(ids[i], 0);
        ASSERT_NE(ids[i], me);
        ASSERT_NE(ids[i], id1);
        for (int j = 0; j < i; j++)
            ASSERT_NE(ids[i], ids[j]);
    }
    ASSERT_EQ(gort_timer_free(t), 0);
    /* Goroutines of firings before the free may still be blocked sending on
     * ids_c: the channel is left for the runtime's exit to abandon. */
    return 0;
}

TEST(timer_fn_runs_in_new_goroutine_procs1)
{
    ASSERT_EQ(run_main(fn_goroutine_main, NULL, 1), 0);
}

TEST(timer_fn_runs_in_new_goroutine_procs2)
{
    ASSERT_EQ(run_main(fn_goroutine_main, NULL, 2), 0);
}

/* ---- a due timer on a busy P is run by the other P ------------------------ */

static _Atomic bool busy_stop;
static _Atomic bool busy_gave_up;
static _Atomic int busy_exited;

static void busy_spinner(void *arg)
{
    (void)arg;
    int64_t bail = test_now_ns() + 20 * S;
    /* No yields, no calls into the runtime: this P does not schedule while
     * it spins. */
    while (!atomic_load(&busy_stop)) {
        if (test_now_ns() > bail) {
            atomic_store(&busy_gave_up, true);
            break;
        }
    }
    atomic_fetch_add(&busy_exited, 1);
}

static int busy_p_main(void *arg)
{
    (void)arg;
    gort_chan_t *c = make_chan(sizeof(int64_t), 1);
    for (int round = 0; round < 5; round++) {
        atomic_store(&busy_stop, false);
        gort_timer_t *t;
        /* The timer goes on this goroutine's P; the spinner will run on one
         * of the two Ps, maybe this one once we block. */
        ASSERT_EQ(gort_go(busy_spinner, NULL), 0);
        ASSERT_EQ(gort_timer_start(&t, 5 * MS, 0, c, NULL, NULL), 0);
        (void)recv_stamp(c, 60);
        if (atomic_load(&busy_gave_up))
            TEST_FAIL("round %d: the timer only fired after the spinner gave up (20 s)", round);
        atomic_store(&busy_stop, true);
        ASSERT_EQ(gort_timer_free(t), 0);
        /* The spinner must be gone before the next round: two spinners
         * would hold both Ps and nothing would run the timers (there is no
         * preemption to take a P from a goroutine that never yields). */
        wait_at_least(&busy_exited, round + 1, 60);
    }
    ASSERT_EQ(gort_chan_free(c), 0);
    return 0;
}

TEST(timer_on_busy_p_fires_procs2)
{
    ASSERT_EQ(run_main(busy_p_main, NULL, 2), 0);
}

/* ---- many timers, each fires exactly once ------------------------------------ */

static _Atomic uint32_t *many_fired;
static gort_waitgroup_t many_wg;
static _Atomic long many_extra; /* firings of timers that were stopped */
static long many_late_stops;    /* stops that came after the deadline */

static void many_fn(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    uint32_t prev = atomic_fetch_add(&many_fired[i], 1);
    if (prev != 0)
        TEST_FAIL("timer %zu fired %u times", (size_t)i, prev + 1);
    ASSERT_EQ(gort_waitgroup_done(&many_wg), 0);
}

static void many_stopped_fn(void *arg)
{
    (void)arg;
    atomic_fetch_add(&many_extra, 1);
}

/* n fn timers with delays spread over 0..50 ms, plus n/2 timers (500 ms)
 * stopped right after they are started. */
static int many_main(void *arg)
{
    (void)arg;
    long n = test_scale(10000);
    long nstop = n / 2;
    many_fired = calloc((size_t)n, sizeof *many_fired);
    gort_timer_t **ts = calloc((size_t)n, sizeof *ts);
    gort_timer_t **tstop = calloc((size_t)nstop, sizeof *tstop);
    ASSERT_TRUE(many_fired && ts && tstop);
    ASSERT_EQ(gort_waitgroup_add(&many_wg, (int)n), 0);
    uint64_t rng = 777;
    for (long i = 0; i < n; i++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        int64_t delay = (int64_t)((rng >> 33) % (uint64_t)(50 * MS));
        ASSERT_EQ(gort_timer_start(&ts[i], delay, 0, NULL, many_fn, (void *)(uintptr_t)i), 0);
        if (i % 2 == 0 && i / 2 < nstop) {
            gort_timer_t **s = &tstop[i / 2];
            int64_t t0 = gort_now_ns();
            ASSERT_EQ(gort_timer_start(s, 500 * MS, 0, NULL, many_stopped_fn, NULL), 0);
            int r = gort_timer_stop(*s);
            if (r == 0 && gort_now_ns() - t0 >= 500 * MS)
                many_late_stops++; /* a stalled machine: it was due */
            else
                ASSERT_EQ(r, 1);
        }
    }
    ASSERT_EQ(gort_waitgroup_wait(&many_wg), 0);
    for (long i = 0; i < n; i++)
        ASSERT_EQ(gort_timer_stop(ts[i]), 0); /* all fired */
    /* Past the stopped timers' deadline: none fired, nothing fired twice. */
    ASSERT_EQ(gort_sleep_ns(600 * MS), 0);
    ASSERT_EQ(atomic_load(&many_extra), many_late_stops);
    if (many_late_stops)
        test_log("%ld timers were only stopped after their deadline", many_late_stops);
    for (long i = 0; i < n; i++) {
        uint32_t f = atomic_load(&many_fired[i]);
        if (f != 1)
            TEST_FAIL("timer %ld fired %u times", i, f);
        ASSERT_EQ(gort_timer_free(ts[i]), 0);
    }
    for (long i = 0; i < nstop; i++)
        ASSERT_EQ(gort_timer_free(tstop[i]), 0);
    free(ts);
    free(tstop);
    free(many_fired);
    return 0;
}

TEST(timers_many_fire_exactly_once_procs1)
{
    ASSERT_EQ(run_main(many_main, NULL, 1), 0);
}

TEST(timers_many_fire_exactly_once_procs4)
{
    ASSERT_EQ(run_main(many_main, NULL, 4), 0);
}

/* The channel flavour: n timers sending into one channel of capacity n
 * deliver exactly n firing times, each not before its timer's deadline
 * (the latest possible "not before" is the start time of the first timer,
 * so only that is checked), and nothing more. */
static int many_chan_main(void *arg)
{
    (void)arg;
    long n = test_scale(10000);
    gort_chan_t *c = make_chan(sizeof(int64_t), (size_t)n);
    gort_timer_t **ts = calloc((size_t)n, sizeof *ts);
    ASSERT_TRUE(ts != NULL);
    int64_t t0 = gort_now_ns();
    for (long i = 0; i < n; i++)
        ASSERT_EQ(gort_timer_start(&ts[i], (int64_t)(i % 20) * MS, 0, c, NULL, NULL), 0);
    for (long i = 0; i < n; i++) {
        int64_t st = recv_stamp(c, 60);
        ASSERT_GE(st, t0);
    }
    ASSERT_EQ(gort_sleep_ns(50 * MS), 0);
    ASSERT_EQ(gort_chan_len(c), 0);
    for (long i = 0; i < n; i++)
        ASSERT_EQ(gort_timer_free(ts[i]), 0);
    free(ts);
    ASSERT_EQ(gort_chan_free(c), 0);
    return 0;
}

TEST(timers_many_channel_exactly_once_procs2)
{
    ASSERT_EQ(run_main(many_chan_main, NULL, 2), 0);
}

/* ---- argument and context checks ------------------------------------------------ */

static void noop_fn(void *arg)
{
    (void)arg;
}

static int args_main(void *arg)
{
    (void)arg;
    gort_chan_t *c8 = make_chan(sizeof(int64_t), 1);
    gort_chan_t *c4 = make_chan(sizeof(int32_t), 1);
    gort_chan_t *c0 = make_chan(0, 1);
    gort_timer_t *t = (gort_timer_t *)&t;
    ASSERT_EQ(gort_timer_start(&t, MS, 0, c8, noop_fn, NULL), -EINVAL); /* both */
    ASSERT_EQ(gort_timer_start(&t, MS, 0, NULL, NULL, NULL), -EINVAL);  /* neither */
    ASSERT_EQ(gort_timer_start(&t, MS, 0, c4, NULL, NULL), -EINVAL);    /* elem_size 4 */
    ASSERT_EQ(gort_timer_start(&t, MS, 0, c0, NULL, NULL), -EINVAL);    /* elem_size 0 */
    ASSERT_EQ(gort_timer_start(&t, MS, -1, c8, NULL, NULL), -EINVAL);   /* negative period */
    ASSERT_EQ(gort_timer_start(&t, MS, INT64_MIN, NULL, noop_fn, NULL), -EINVAL);
    ASSERT_EQ(gort_timer_start(NULL, MS, 0, c8, NULL, NULL), -EINVAL);
    ASSERT_TRUE(t == (gort_timer_t *)&t); /* untouched on failure */
    ASSERT_EQ(gort_timer_stop(NULL), -EINVAL);
    ASSERT_EQ(gort_timer_reset(NULL, MS, 0), -EINVAL);
    ASSERT_EQ(gort_timer_free(NULL), -EINVAL);
    /* None of the failed starts armed anything. */
    ASSERT_EQ(gort_sleep_ns(10 * MS), 0);
    ASSERT_EQ(gort_chan_len(c8), 0);
    ASSERT_EQ(gort_chan_len(c4), 0);
    /* A negative delay counts as 0; a huge one does not overflow. */
    ASSERT_EQ(gort_timer_start(&t, INT64_MIN, 0, c8, NULL, NULL), 0);
    (void)recv_stamp(c8, 60);
    ASSERT_EQ(gort_timer_free(t), 0);
    ASSERT_EQ(gort_timer_start(&t, INT64_MAX, 0, c8, NULL, NULL), 0);
    ASSERT_EQ(gort_sleep_ns(10 * MS), 0);
    ASSERT_EQ(gort_chan_len(c8), 0);
    ASSERT_EQ(gort_timer_stop(t), 1);
    ASSERT_EQ(gort_timer_free(t), 0);
    ASSERT_EQ(gort_chan_free(c8), 0);
    ASSERT_EQ(gort_chan_free(c4), 0);
    ASSERT_EQ(gort_chan_free(c0), 0);
    return 0;
}

TEST(timer_start_argument_checks)
{
    ASSERT_EQ(run_main(args_main, NULL, 1), 0);
}

static gort_timer_t *fg_timer;

static void *timer_foreign_thread(void *arg)
{
    gort_chan_t *c = arg;
    gort_timer_t *t = NULL;
    ASSERT_EQ(gort_timer_start(&t, MS, 0, c, NULL, NULL), -EPERM);
    ASSERT_EQ(gort_timer_stop(fg_timer), -EPERM);
    ASSERT_EQ(gort_timer_reset(fg_timer, MS, 0), -EPERM);
    ASSERT_EQ(gort_timer_free(fg_timer), -EPERM);
    return NULL;
}

static int timer_foreign_main(void *arg)
{
    (void)arg;
    gort_chan_t *c = make_chan(sizeof(int64_t), 1);
    ASSERT_EQ(gort_timer_start(&fg_timer, 3600 * S, 0, c, NULL, NULL), 0);
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, timer_foreign_thread, c), 0);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    /* Still pending, untouched. */
    ASSERT_EQ(gort_timer_stop(fg_timer), 1);
    ASSERT_EQ(gort_timer_free(fg_timer), 0);
    ASSERT_EQ(gort_chan_free(c), 0);
    return 0;
}

TEST(timer_from_foreign_thread_eperm)
{
    ASSERT_EQ(run_main(timer_foreign_main, NULL, 1), 0);
}
