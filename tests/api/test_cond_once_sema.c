/*
 * test_cond_once_sema.c - gort_cond_t (signal wakes exactly one waiter,
 * broadcast wakes all, no lost wake-ups, signal from a foreign thread,
 * -EPERM cases), gort_once_t (runs once, every caller returns after it
 * completed) and gort_sema_t (counts, FIFO order, release from a foreign
 * thread, -EPERM for acquire from a foreign thread).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "gort_util.h"

/* Yields until *v >= want or timeout_s passes; returns the last value. */
static int wait_at_least(_Atomic int *v, int want, int timeout_s)
{
    int64_t deadline = test_now_ns() + (int64_t)timeout_s * 1000000000;
    int cur;
    while ((cur = atomic_load(v)) < want && test_now_ns() < deadline)
        ASSERT_EQ(gort_yield(), 0);
    return cur;
}

/* Yields for about ns nanoseconds (lets other goroutines run, if any
 * would). */
static void yield_for(int64_t ns)
{
    int64_t end = test_now_ns() + ns;
    while (test_now_ns() < end)
        ASSERT_EQ(gort_yield(), 0);
}

/* ---- cond: one signal wakes exactly one waiter ------------------------------ */

#define COND_WAITERS 8

static gort_mutex_t cond_mu = GORT_MUTEX_INIT;
static gort_cond_t cond_cv = GORT_COND_INIT;
static gort_waitgroup_t cond_wg;
static int cond_waiting;       /* under cond_mu */
static _Atomic int cond_woken; /* incremented after wait returns */

/* Waits once (no predicate: gort_cond_wait has no spurious wake-ups). */
static void cond_waiter(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_mutex_lock(&cond_mu), 0);
    cond_waiting++;
    ASSERT_EQ(gort_cond_wait(&cond_cv, &cond_mu), 0);
    /* wait returns with the mutex held again. */
    ASSERT_EQ(gort_mutex_trylock(&cond_mu), -EBUSY);
    atomic_fetch_add(&cond_woken, 1);
    ASSERT_EQ(gort_mutex_unlock(&cond_mu), 0);
    ASSERT_EQ(gort_waitgroup_done(&cond_wg), 0);
}

/* Starts the waiters and returns once all of them hold a ticket (they
 * counted themselves under the mutex that cond_wait releases). */
static void cond_start_waiters(void)
{
    ASSERT_EQ(gort_waitgroup_add(&cond_wg, COND_WAITERS), 0);
    for (int i = 0; i < COND_WAITERS; i++)
        ASSERT_EQ(gort_go(cond_waiter, NULL), 0);
    int64_t deadline = test_now_ns() + 30LL * 1000000000;
    for (;;) {
        ASSERT_EQ(gort_mutex_lock(&cond_mu), 0);
        int n = cond_waiting;
        ASSERT_EQ(gort_mutex_unlock(&cond_mu), 0);
        if (n == COND_WAITERS)
            break;
        ASSERT_LT(test_now_ns(), deadline);
        ASSERT_EQ(gort_yield(), 0);
    }
}

static int cond_signal_main(void *arg)
{
    (void)arg;
    cond_start_waiters();
    for (int k = 1; k <= COND_WAITERS; k++) {
        ASSERT_EQ(gort_cond_signal(&cond_cv), 0);
        ASSERT_EQ(wait_at_least(&cond_woken, k, 30), k);
        /* And not more than one per signal. */
        yield_for(5 * 1000 * 1000);
        ASSERT_EQ(atomic_load(&cond_woken), k);
    }
    ASSERT_EQ(gort_waitgroup_wait(&cond_wg), 0);
    /* With nobody waiting, signals are no-ops (not remembered). */
    ASSERT_EQ(gort_cond_signal(&cond_cv), 0);
    ASSERT_EQ(gort_cond_broadcast(&cond_cv), 0);
    return 0;
}

TEST(cond_signal_wakes_one)
{
    ASSERT_EQ(run_main(cond_signal_main, NULL, 2), 0);
}

static int cond_broadcast_main(void *arg)
{
    (void)arg;
    cond_start_waiters();
    yield_for(5 * 1000 * 1000);
    ASSERT_EQ(atomic_load(&cond_woken), 0);
    ASSERT_EQ(gort_cond_broadcast(&cond_cv), 0);
    ASSERT_EQ(gort_waitgroup_wait(&cond_wg), 0);
    ASSERT_EQ(atomic_load(&cond_woken), COND_WAITERS);
    return 0;
}

TEST(cond_broadcast_wakes_all)
{
    ASSERT_EQ(run_main(cond_broadcast_main, NULL, 2), 0);
}

/* ---- cond: no lost wake-ups in a long ping-pong ---------------------------- */

static gort_mutex_t pp_mu = GORT_MUTEX_INIT;
static gort_cond_t pp_cv = GORT_COND_INIT;
static gort_waitgroup_t pp_wg;
static long pp_turn; /* under pp_mu: even = ping's turn, odd = pong's */
static long pp_rounds;

static void pp_player(void *arg)
{
    long me = (long)(intptr_t)arg;
    for (long i = 0; i < pp_rounds; i++) {
        ASSERT_EQ(gort_mutex_lock(&pp_mu), 0);
        while (pp_turn % 2 != me)
            ASSERT_EQ(gort_cond_wait(&pp_cv, &pp_mu), 0);
        pp_turn++;
        /* Alternate signal and broadcast; either must reach the other. */
        if (i % 2)
            ASSERT_EQ(gort_cond_signal(&pp_cv), 0);
        else
            ASSERT_EQ(gort_cond_broadcast(&pp_cv), 0);
        ASSERT_EQ(gort_mutex_unlock(&pp_mu), 0);
    }
    ASSERT_EQ(gort_waitgroup_done(&pp_wg), 0);
}

static int pp_main(void *arg)
{
    (void)arg;
    pp_rounds = test_scale(20000);
    ASSERT_EQ(gort_waitgroup_add(&pp_wg, 2), 0);
    ASSERT_EQ(gort_go(pp_player, (void *)(intptr_t)0), 0);
    ASSERT_EQ(gort_go(pp_player, (void *)(intptr_t)1), 0);
    ASSERT_EQ(gort_waitgroup_wait(&pp_wg), 0);
    ASSERT_EQ(pp_turn, 2 * pp_rounds);
    return 0;
}

/* A lost wake-up leaves both players waiting: the deadline fails it. */
TEST(cond_no_lost_wakeups_procs1)
{
    ASSERT_EQ(run_main(pp_main, NULL, 1), 0);
}

TEST(cond_no_lost_wakeups_procs4)
{
    ASSERT_EQ(run_main(pp_main, NULL, 4), 0);
}

/* ---- cond: signal from a foreign thread ---------------------------------- */

static gort_mutex_t fs_mu = GORT_MUTEX_INIT;
static gort_cond_t fs_cv = GORT_COND_INIT;
static _Atomic bool fs_ready;
static bool fs_flag; /* under fs_mu */

static void *fs_signaller(void *arg)
{
    (void)arg;
    while (!atomic_load(&fs_ready))
        sched_yield();
    /* The flag is protected by a gort mutex, which a foreign thread cannot
     * lock: it polls with trylock. */
    while (gort_mutex_trylock(&fs_mu) != 0)
        sched_yield();
    fs_flag = true;
    ASSERT_EQ(gort_cond_signal(&fs_cv), 0);
    ASSERT_EQ(gort_mutex_unlock(&fs_mu), 0);
    return NULL;
}

static int fs_main(void *arg)
{
    (void)arg;
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, fs_signaller, NULL), 0);
    ASSERT_EQ(gort_mutex_lock(&fs_mu), 0);
    atomic_store(&fs_ready, true);
    while (!fs_flag)
        ASSERT_EQ(gort_cond_wait(&fs_cv, &fs_mu), 0);
    ASSERT_EQ(gort_mutex_unlock(&fs_mu), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    return 0;
}

TEST(cond_signal_from_foreign_thread)
{
    ASSERT_EQ(run_main(fs_main, NULL, 1), 0);
}

/* ---- cond: -EPERM ------------------------------------------------------------- */

static _Atomic int fw_res = 1;

static void *fw_waiter(void *arg)
{
    gort_cond_t *c = arg;
    gort_mutex_t m = GORT_MUTEX_INIT;
    ASSERT_EQ(gort_mutex_trylock(&m), 0);
    atomic_store(&fw_res, gort_cond_wait(c, &m));
    ASSERT_EQ(gort_mutex_unlock(&m), 0); /* still held: wait did nothing */
    return NULL;
}

static int cond_eperm_main(void *arg)
{
    (void)arg;
    gort_cond_t c = GORT_COND_INIT;
    gort_mutex_t m = GORT_MUTEX_INIT;
    /* Waiting without holding the mutex is refused. */
    ASSERT_EQ(gort_cond_wait(&c, &m), -EPERM);
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, fw_waiter, &c), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_EQ(atomic_load(&fw_res), -EPERM);
    /* Neither refusal took a ticket: a signal now has nobody to wake, and
     * the condition variable still works. */
    ASSERT_EQ(gort_cond_signal(&c), 0);
    return 0;
}

TEST(cond_wait_eperm)
{
    gort_cond_t c = GORT_COND_INIT;
    gort_mutex_t m = GORT_MUTEX_INIT;
    ASSERT_EQ(gort_cond_wait(&c, &m), -EPERM); /* no runtime */
    ASSERT_EQ(gort_cond_signal(&c), 0);
    ASSERT_EQ(gort_cond_broadcast(&c), 0);
    ASSERT_EQ(run_main(cond_eperm_main, NULL, 1), 0);
}

/* ---- once ------------------------------------------------------------------- */

#define ONCE_CALLERS 64

static gort_once_t once_o = GORT_ONCE_INIT;
static gort_waitgroup_t once_wg;
static _Atomic int once_runs;
static int once_value; /* written by fn, read by callers after once_do */
static _Atomic int once_finished;

static void once_fn(void *arg)
{
    ASSERT_EQ(atomic_fetch_add(&once_runs, 1), 0);
    /* Take a while, across switches, so that other callers arrive and
     * wait meanwhile. */
    yield_for(20 * 1000 * 1000);
    once_value = *(int *)arg;
    atomic_store(&once_finished, 1);
}

static void once_caller(void *arg)
{
    static int v = 42;
    (void)arg;
    ASSERT_EQ(gort_once_do(&once_o, once_fn, &v), 0);
    ASSERT_EQ(atomic_load(&once_finished), 1);
    ASSERT_EQ(once_value, 42);
    ASSERT_EQ(gort_waitgroup_done(&once_wg), 0);
}

static int once_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_waitgroup_add(&once_wg, ONCE_CALLERS), 0);
    for (int i = 0; i < ONCE_CALLERS; i++)
        ASSERT_EQ(gort_go(once_caller, NULL), 0);
    ASSERT_EQ(gort_waitgroup_wait(&once_wg), 0);
    ASSERT_EQ(atomic_load(&once_runs), 1);
    /* Later calls return at once without running fn. */
    int other = 7;
    ASSERT_EQ(gort_once_do(&once_o, once_fn, &other), 0);
    ASSERT_EQ(atomic_load(&once_runs), 1);
    ASSERT_EQ(once_value, 42);
    return 0;
}

TEST(once_runs_exactly_once_procs1)
{
    ASSERT_EQ(run_main(once_main, NULL, 1), 0);
}

TEST(once_runs_exactly_once_procs4)
{
    ASSERT_EQ(run_main(once_main, NULL, 4), 0);
}

static void count_fn(void *arg)
{
    (*(int *)arg)++;
}

static _Atomic int fo_res = 1;

static void *fo_thread(void *arg)
{
    atomic_store(&fo_res, gort_once_do(arg, count_fn, NULL));
    return NULL;
}

static int once_eperm_main(void *arg)
{
    (void)arg;
    gort_once_t o = GORT_ONCE_INIT;
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, fo_thread, &o), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_EQ(atomic_load(&fo_res), -EPERM);
    /* The refused call did not use up the once. */
    int n = 0;
    ASSERT_EQ(gort_once_do(&o, count_fn, &n), 0);
    ASSERT_EQ(gort_once_do(&o, count_fn, &n), 0);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(gort_once_do(&o, NULL, NULL), -EINVAL);
    return 0;
}

TEST(once_foreign_thread_eperm)
{
    gort_once_t o = GORT_ONCE_INIT;
    int n = 0;
    ASSERT_EQ(gort_once_do(&o, count_fn, &n), -EPERM); /* no runtime */
    ASSERT_EQ(n, 0);
    ASSERT_EQ(run_main(once_eperm_main, NULL, 1), 0);
}

/* ---- semaphore: counts ----------------------------------------------------- */

static gort_sema_t cnt_s;
static gort_waitgroup_t cnt_wg;
static _Atomic int cnt_acquired;

static void cnt_acquirer(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_sema_acquire(&cnt_s), 0);
    atomic_fetch_add(&cnt_acquired, 1);
    ASSERT_EQ(gort_waitgroup_done(&cnt_wg), 0);
}

static int sema_count_main(void *arg)
{
    (void)arg;
    gort_sema_init(&cnt_s, 3);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(gort_sema_try_acquire(&cnt_s), 0);
    ASSERT_EQ(gort_sema_try_acquire(&cnt_s), -EAGAIN);
    ASSERT_EQ(gort_sema_release(&cnt_s), 0);
    ASSERT_EQ(gort_sema_acquire(&cnt_s), 0); /* a unit is there: no wait */
    ASSERT_EQ(gort_sema_try_acquire(&cnt_s), -EAGAIN);

    /* 10 acquirers, 4 units: exactly 4 get through, 6 wait. */
    ASSERT_EQ(gort_waitgroup_add(&cnt_wg, 10), 0);
    for (int i = 0; i < 10; i++)
        ASSERT_EQ(gort_go(cnt_acquirer, NULL), 0);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(gort_sema_release(&cnt_s), 0);
    ASSERT_EQ(wait_at_least(&cnt_acquired, 4, 30), 4);
    yield_for(5 * 1000 * 1000);
    ASSERT_EQ(atomic_load(&cnt_acquired), 4);
    /* Releases wake the rest, one unit each, none left over. */
    for (int i = 0; i < 6; i++)
        ASSERT_EQ(gort_sema_release(&cnt_s), 0);
    ASSERT_EQ(gort_waitgroup_wait(&cnt_wg), 0);
    ASSERT_EQ(atomic_load(&cnt_acquired), 10);
    ASSERT_EQ(gort_sema_try_acquire(&cnt_s), -EAGAIN);
    return 0;
}

TEST(sema_counts_procs1)
{
    ASSERT_EQ(run_main(sema_count_main, NULL, 1), 0);
}

TEST(sema_counts_procs4)
{
    ASSERT_EQ(run_main(sema_count_main, NULL, 4), 0);
}

TEST(sema_zero_init_and_overflow)
{
    /* Any context for try/release; all-zero storage is a semaphore of 0. */
    gort_sema_t s = GORT_SEMA_INIT;
    ASSERT_EQ(gort_sema_try_acquire(&s), -EAGAIN);
    ASSERT_EQ(gort_sema_release(&s), 0);
    ASSERT_EQ(gort_sema_try_acquire(&s), 0);
    gort_sema_init(&s, UINT32_MAX);
    ASSERT_EQ(gort_sema_release(&s), -EOVERFLOW); /* count left unchanged */
    ASSERT_EQ(gort_sema_try_acquire(&s), 0);
    ASSERT_EQ(gort_sema_release(&s), 0);
    ASSERT_EQ(gort_sema_release(&s), -EOVERFLOW);
}

/* ---- semaphore: FIFO order ---------------------------------------------------- */

#define FIFO_WAITERS 10

static gort_sema_t fifo_s = GORT_SEMA_INIT;
static gort_waitgroup_t fifo_wg;
static _Atomic int fifo_started;
static _Atomic int fifo_done;
static int fifo_order[FIFO_WAITERS]; /* written by each waiter in turn */

static void fifo_waiter(void *arg)
{
    int me = (int)(intptr_t)arg;
    atomic_fetch_add(&fifo_started, 1);
    ASSERT_EQ(gort_sema_acquire(&fifo_s), 0);
    int k = atomic_load(&fifo_done);
    fifo_order[k] = me;
    atomic_store(&fifo_done, k + 1);
    ASSERT_EQ(gort_waitgroup_done(&fifo_wg), 0);
}

static int fifo_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_waitgroup_add(&fifo_wg, FIFO_WAITERS), 0);
    /* One P: after gort_yield, waiter i (in runnext) has run until it
     * parked in acquire, so the waiters queue in the order 0, 1, 2, ... */
    for (int i = 0; i < FIFO_WAITERS; i++) {
        ASSERT_EQ(gort_go(fifo_waiter, (void *)(intptr_t)i), 0);
        ASSERT_EQ(gort_yield(), 0);
        ASSERT_EQ(atomic_load(&fifo_started), i + 1);
    }
    ASSERT_EQ(atomic_load(&fifo_done), 0);
    /* Release one unit at a time and let its waiter record itself. */
    for (int i = 0; i < FIFO_WAITERS; i++) {
        ASSERT_EQ(gort_sema_release(&fifo_s), 0);
        ASSERT_EQ(wait_at_least(&fifo_done, i + 1, 30), i + 1);
    }
    ASSERT_EQ(gort_waitgroup_wait(&fifo_wg), 0);
    for (int i = 0; i < FIFO_WAITERS; i++)
        ASSERT_EQ(fifo_order[i], i);
    return 0;
}

TEST(sema_fifo_order)
{
    ASSERT_EQ(run_main(fifo_main, NULL, 1), 0);
}

/* A woken waiter that finds its unit taken by a barging try_acquire goes
 * back to the head of the queue, not behind later waiters: the waiters are
 * still served first come, first served. */
static gort_sema_t barge_s = GORT_SEMA_INIT;
static _Atomic int barge_started, barge_done;
static int barge_order[2];

static void barge_waiter(void *arg)
{
    atomic_fetch_add(&barge_started, 1);
    ASSERT_EQ(gort_sema_acquire(&barge_s), 0);
    barge_order[atomic_fetch_add(&barge_done, 1)] = (int)(intptr_t)arg;
}

static int barge_main(void *arg)
{
    (void)arg;
    /* One P: each waiter runs until it parks before main goes on. */
    for (int i = 1; i <= 2; i++) {
        ASSERT_EQ(gort_go(barge_waiter, (void *)(intptr_t)i), 0);
        ASSERT_EQ(gort_yield(), 0);
        ASSERT_EQ(atomic_load(&barge_started), i);
    }
    ASSERT_EQ(gort_sema_release(&barge_s), 0);     /* wakes waiter 1 ... */
    ASSERT_EQ(gort_sema_try_acquire(&barge_s), 0); /* ... whose unit main takes */
    ASSERT_EQ(gort_yield(), 0);                    /* waiter 1 runs, queues again */
    ASSERT_EQ(atomic_load(&barge_done), 0);
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(gort_sema_release(&barge_s), 0);
        ASSERT_EQ(wait_at_least(&barge_done, i + 1, 30), i + 1);
    }
    ASSERT_EQ(barge_order[0], 1);
    ASSERT_EQ(barge_order[1], 2);
    return 0;
}

TEST(sema_fifo_after_a_barging_acquire)
{
    ASSERT_EQ(run_main(barge_main, NULL, 1), 0);
}

/* ---- semaphore: release from a foreign thread, -EPERM ------------------------ */

static gort_sema_t fr_s = GORT_SEMA_INIT;
static _Atomic int fr_acq_res = 1;

static void *fr_thread(void *arg)
{
    (void)arg;
    atomic_store(&fr_acq_res, gort_sema_acquire(&fr_s));
    struct timespec ts = {0, 20 * 1000 * 1000}; /* let main park */
    nanosleep(&ts, NULL);
    ASSERT_EQ(gort_sema_release(&fr_s), 0);
    return NULL;
}

static int fr_main(void *arg)
{
    (void)arg;
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, fr_thread, NULL), 0);
    ASSERT_EQ(gort_sema_acquire(&fr_s), 0); /* woken by the thread */
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_EQ(atomic_load(&fr_acq_res), -EPERM);
    ASSERT_EQ(gort_sema_try_acquire(&fr_s), -EAGAIN);
    return 0;
}

TEST(sema_foreign_thread)
{
    gort_sema_t s = GORT_SEMA_INIT;
    gort_sema_init(&s, 1);
    ASSERT_EQ(gort_sema_acquire(&s), -EPERM); /* no runtime; even with a unit */
    ASSERT_EQ(gort_sema_try_acquire(&s), 0);
    ASSERT_EQ(run_main(fr_main, NULL, 1), 0);
}
