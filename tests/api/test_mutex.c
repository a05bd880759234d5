/*
 * test_mutex.c - gort_mutex_t: mutual exclusion under contention at
 * GOMAXPROCS 1, 2 and 4, starvation mode lets a waiter through a stream of
 * lockers, trylock, -EPERM for unlock of an unlocked mutex and for lock from
 * a foreign thread, and unlock from a foreign thread waking a goroutine.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "gort_util.h"

/* ---- mutual exclusion: no lost updates --------------------------------- */

#define EXCL_WORKERS 8

static gort_mutex_t excl_mu = GORT_MUTEX_INIT;
static gort_waitgroup_t excl_wg;
static uint64_t excl_counter; /* plain: protected by excl_mu only */
static _Atomic int excl_inside;
static long excl_iters;

static void excl_worker(void *arg)
{
    (void)arg;
    for (long i = 0; i < excl_iters; i++) {
        ASSERT_EQ(gort_mutex_lock(&excl_mu), 0);
        ASSERT_EQ(atomic_fetch_add_explicit(&excl_inside, 1, memory_order_relaxed), 0);
        uint64_t v = excl_counter;
        /* Now and then hold the lock across a yield, so that with any
         * GOMAXPROCS the others find it held and must park. */
        if (i % 64 == 0)
            ASSERT_EQ(gort_yield(), 0);
        excl_counter = v + 1;
        ASSERT_EQ(atomic_fetch_sub_explicit(&excl_inside, 1, memory_order_relaxed), 1);
        ASSERT_EQ(gort_mutex_unlock(&excl_mu), 0);
    }
    ASSERT_EQ(gort_waitgroup_done(&excl_wg), 0);
}

static int excl_main(void *arg)
{
    (void)arg;
    excl_iters = test_scale(50000);
    ASSERT_EQ(gort_waitgroup_add(&excl_wg, EXCL_WORKERS), 0);
    for (int i = 0; i < EXCL_WORKERS; i++)
        ASSERT_EQ(gort_go(excl_worker, NULL), 0);
    ASSERT_EQ(gort_waitgroup_wait(&excl_wg), 0);
    ASSERT_EQ(gort_mutex_lock(&excl_mu), 0);
    ASSERT_EQ(excl_counter, (uint64_t)EXCL_WORKERS * (uint64_t)excl_iters);
    ASSERT_EQ(gort_mutex_unlock(&excl_mu), 0);
    /* The mutex is free again: trylock succeeds at once. */
    ASSERT_EQ(gort_mutex_trylock(&excl_mu), 0);
    ASSERT_EQ(gort_mutex_unlock(&excl_mu), 0);
    return 0;
}

TEST(mutex_exclusion_procs1)
{
    ASSERT_EQ(run_main(excl_main, NULL, 1), 0);
}

TEST(mutex_exclusion_procs2)
{
    ASSERT_EQ(run_main(excl_main, NULL, 2), 0);
}

TEST(mutex_exclusion_procs4)
{
    ASSERT_EQ(run_main(excl_main, NULL, 4), 0);
}

/* ---- starvation mode: a waiter gets through a stream of lockers -------- */

#define STARVE_HAMMERS 6

static gort_mutex_t starve_mu = GORT_MUTEX_INIT;
static gort_waitgroup_t starve_wg;
static _Atomic bool starve_stop;
static _Atomic uint64_t starve_hammer_ops;
static uint64_t starve_shared; /* touched under starve_mu */

static void starve_hammer(void *arg)
{
    (void)arg;
    uint64_t ops = 0;
    /* Lock and unlock without pause (no yield outside the lock): a woken
     * waiter must compete with this loop on every release. */
    while (!atomic_load_explicit(&starve_stop, memory_order_relaxed)) {
        ASSERT_EQ(gort_mutex_lock(&starve_mu), 0);
        starve_shared++;
        busy_ns(2000); /* hold it long enough that others queue up */
        ASSERT_EQ(gort_mutex_unlock(&starve_mu), 0);
        ops++;
    }
    atomic_fetch_add(&starve_hammer_ops, ops);
    ASSERT_EQ(gort_waitgroup_done(&starve_wg), 0);
}

static void starve_victim(void *arg)
{
    long n = *(long *)arg;
    int64_t worst = 0;
    for (long i = 0; i < n; i++) {
        int64_t t0 = test_now_ns();
        ASSERT_EQ(gort_mutex_lock(&starve_mu), 0);
        int64_t waited = test_now_ns() - t0;
        worst = waited > worst ? waited : worst;
        starve_shared++;
        ASSERT_EQ(gort_mutex_unlock(&starve_mu), 0);
    }
    test_log("victim: %ld acquisitions, worst wait %.3f ms", n, (double)worst / 1e6);
    atomic_store(&starve_stop, true);
    ASSERT_EQ(gort_waitgroup_done(&starve_wg), 0);
}

static int starve_main(void *arg)
{
    (void)arg;
    long n = test_scale(300);
    ASSERT_EQ(gort_waitgroup_add(&starve_wg, STARVE_HAMMERS + 1), 0);
    for (int i = 0; i < STARVE_HAMMERS; i++)
        ASSERT_EQ(gort_go(starve_hammer, NULL), 0);
    /* Let the hammers get going before the victim arrives. */
    int64_t until = test_now_ns() + 20 * 1000 * 1000;
    while (test_now_ns() < until)
        ASSERT_EQ(gort_yield(), 0);
    ASSERT_EQ(gort_go(starve_victim, &n), 0);
    ASSERT_EQ(gort_waitgroup_wait(&starve_wg), 0);
    test_log("hammers: %llu acquisitions", (unsigned long long)atomic_load(&starve_hammer_ops));
    ASSERT_EQ(gort_mutex_lock(&starve_mu), 0);
    ASSERT_EQ(starve_shared, atomic_load(&starve_hammer_ops) + (uint64_t)n);
    ASSERT_EQ(gort_mutex_unlock(&starve_mu), 0);
    return 0;
}

/* The only assertion on time is the test's own deadline: the victim must
 * finish its acquisitions while the hammers never stop on their own. */
TEST_TIMEOUT(mutex_starvation_waiter_finishes_procs2, 120)
{
    ASSERT_EQ(run_main(starve_main, NULL, 2), 0);
}

TEST_TIMEOUT(mutex_starvation_waiter_finishes_procs4, 120)
{
    ASSERT_EQ(run_main(starve_main, NULL, 4), 0);
}

/* ---- trylock ---------------------------------------------------------- */

static gort_mutex_t try_mu = GORT_MUTEX_INIT;
static gort_waitgroup_t try_wg;
static _Atomic int try_result = 1;

static void try_other(void *arg)
{
    (void)arg;
    /* Held by main: another goroutine's trylock fails at once. */
    atomic_store(&try_result, gort_mutex_trylock(&try_mu));
    ASSERT_EQ(gort_waitgroup_done(&try_wg), 0);
}

static int trylock_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_mutex_trylock(&try_mu), 0);
    ASSERT_EQ(gort_mutex_trylock(&try_mu), -EBUSY); /* not recursive */
    ASSERT_EQ(gort_waitgroup_add(&try_wg, 1), 0);
    ASSERT_EQ(gort_go(try_other, NULL), 0);
    ASSERT_EQ(gort_waitgroup_wait(&try_wg), 0);
    ASSERT_EQ(atomic_load(&try_result), -EBUSY);
    ASSERT_EQ(gort_mutex_unlock(&try_mu), 0);
    ASSERT_EQ(gort_mutex_trylock(&try_mu), 0);
    ASSERT_EQ(gort_mutex_unlock(&try_mu), 0);
    /* lock and trylock exclude each other both ways. */
    ASSERT_EQ(gort_mutex_lock(&try_mu), 0);
    ASSERT_EQ(gort_mutex_trylock(&try_mu), -EBUSY);
    ASSERT_EQ(gort_mutex_unlock(&try_mu), 0);
    return 0;
}

TEST(mutex_trylock)
{
    ASSERT_EQ(run_main(trylock_main, NULL, 2), 0);
}

TEST(mutex_trylock_unlock_foreign_thread_no_runtime)
{
    /* trylock and unlock need no goroutine and no running runtime. */
    gort_mutex_t m = GORT_MUTEX_INIT;
    ASSERT_EQ(gort_mutex_trylock(&m), 0);
    ASSERT_EQ(gort_mutex_trylock(&m), -EBUSY);
    ASSERT_EQ(gort_mutex_unlock(&m), 0);
    ASSERT_EQ(gort_mutex_trylock(&m), 0);
    ASSERT_EQ(gort_mutex_unlock(&m), 0);
}

/* ---- unlock of an unlocked mutex ---------------------------------------- */

static int unlocked_main(void *arg)
{
    (void)arg;
    gort_mutex_t m = GORT_MUTEX_INIT;
    ASSERT_EQ(gort_mutex_unlock(&m), -EPERM);
    ASSERT_EQ(gort_mutex_lock(&m), 0);
    ASSERT_EQ(gort_mutex_unlock(&m), 0);
    ASSERT_EQ(gort_mutex_unlock(&m), -EPERM);
    ASSERT_EQ(gort_mutex_unlock(&m), -EPERM);
    /* The failed unlocks changed nothing: the mutex still works. */
    ASSERT_EQ(gort_mutex_lock(&m), 0);
    ASSERT_EQ(gort_mutex_trylock(&m), -EBUSY);
    ASSERT_EQ(gort_mutex_unlock(&m), 0);
    ASSERT_EQ(gort_mutex_trylock(&m), 0);
    ASSERT_EQ(gort_mutex_unlock(&m), 0);
    return 0;
}

TEST(mutex_unlock_unlocked_eperm)
{
    ASSERT_EQ(run_main(unlocked_main, NULL, 1), 0);
}

TEST(mutex_unlock_unlocked_eperm_no_runtime)
{
    gort_mutex_t m = GORT_MUTEX_INIT;
    ASSERT_EQ(gort_mutex_unlock(&m), -EPERM);
    ASSERT_EQ(gort_mutex_trylock(&m), 0);
    ASSERT_EQ(gort_mutex_unlock(&m), 0);
    ASSERT_EQ(gort_mutex_unlock(&m), -EPERM);
}

/* ---- lock from a foreign thread ------------------------------------------ */

static gort_mutex_t foreign_mu = GORT_MUTEX_INIT;
static _Atomic int foreign_lock_result = 1;

static void *foreign_locker(void *arg)
{
    (void)arg;
    /* The mutex is free, so this would not even block: still -EPERM. */
    atomic_store(&foreign_lock_result, gort_mutex_lock(&foreign_mu));
    return NULL;
}

static int foreign_lock_main(void *arg)
{
    (void)arg;
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, foreign_locker, NULL), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_EQ(atomic_load(&foreign_lock_result), -EPERM);
    /* Untouched by the refused call. */
    ASSERT_EQ(gort_mutex_trylock(&foreign_mu), 0);
    ASSERT_EQ(gort_mutex_unlock(&foreign_mu), 0);
    return 0;
}

TEST(mutex_lock_foreign_thread_eperm)
{
    gort_mutex_t m = GORT_MUTEX_INIT;
    ASSERT_EQ(gort_mutex_lock(&m), -EPERM); /* no runtime at all */
    ASSERT_EQ(gort_mutex_lock(NULL), -EPERM);
    ASSERT_EQ(run_main(foreign_lock_main, NULL, 2), 0);
}

/* ---- unlock from a foreign thread wakes a parked goroutine --------------- */

static gort_mutex_t handoff_mu = GORT_MUTEX_INIT;
static gort_waitgroup_t handoff_wg;
static _Atomic int handoff_stage;

static void handoff_waiter(void *arg)
{
    (void)arg;
    atomic_store(&handoff_stage, 1);
    ASSERT_EQ(gort_mutex_lock(&handoff_mu), 0); /* parks: main holds it */
    ASSERT_EQ(atomic_load(&handoff_stage), 2);  /* only after the unlock */
    ASSERT_EQ(gort_mutex_unlock(&handoff_mu), 0);
    ASSERT_EQ(gort_waitgroup_done(&handoff_wg), 0);
}

static void *handoff_unlocker(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 20 * 1000 * 1000}; /* let the waiter park */
    nanosleep(&ts, NULL);
    atomic_store(&handoff_stage, 2);
    ASSERT_EQ(gort_mutex_unlock(&handoff_mu), 0);
    return NULL;
}

static int handoff_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_mutex_lock(&handoff_mu), 0);
    ASSERT_EQ(gort_waitgroup_add(&handoff_wg, 1), 0);
    ASSERT_EQ(gort_go(handoff_waiter, NULL), 0);
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, handoff_unlocker, NULL), 0);
    ASSERT_EQ(gort_waitgroup_wait(&handoff_wg), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    return 0;
}

TEST(mutex_unlock_from_foreign_thread_wakes_goroutine)
{
    ASSERT_EQ(run_main(handoff_main, NULL, 1), 0);
}
