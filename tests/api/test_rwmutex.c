/*
 * test_rwmutex.c - gort_rwmutex_t: readers overlap, a writer excludes
 * readers and writers, a writer gets through a stream of overlapping readers,
 * misuse returns -EPERM and leaves the lock usable, blocking calls from a
 * foreign thread return -EPERM, unlocks from a foreign thread work.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

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

/* ---- many readers hold the lock at once ---------------------------------- */

#define OVERLAP_READERS 16

static gort_rwmutex_t overlap_rw = GORT_RWMUTEX_INIT;
static gort_waitgroup_t overlap_wg;
static _Atomic int overlap_inside;

static void overlap_reader(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_rwmutex_rlock(&overlap_rw), 0);
    atomic_fetch_add(&overlap_inside, 1);
    /* Hold the read lock until every reader holds it: if readers excluded
     * each other this would never happen. */
    ASSERT_EQ(wait_at_least(&overlap_inside, OVERLAP_READERS, 30), OVERLAP_READERS);
    ASSERT_EQ(gort_rwmutex_runlock(&overlap_rw), 0);
    ASSERT_EQ(gort_waitgroup_done(&overlap_wg), 0);
}

static int overlap_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_waitgroup_add(&overlap_wg, OVERLAP_READERS), 0);
    for (int i = 0; i < OVERLAP_READERS; i++)
        ASSERT_EQ(gort_go(overlap_reader, NULL), 0);
    ASSERT_EQ(gort_waitgroup_wait(&overlap_wg), 0);
    /* All gone: a writer gets in at once. */
    ASSERT_EQ(gort_rwmutex_lock(&overlap_rw), 0);
    ASSERT_EQ(gort_rwmutex_unlock(&overlap_rw), 0);
    return 0;
}

TEST(rwmutex_readers_overlap)
{
    ASSERT_EQ(run_main(overlap_main, NULL, 2), 0);
}

/* ---- a writer excludes readers and other writers --------------------------- */

#define EXCL_WRITERS 4
#define EXCL_READERS 8

static gort_rwmutex_t excl_rw = GORT_RWMUTEX_INIT;
static gort_waitgroup_t excl_wg;
static _Atomic int excl_writers_in, excl_readers_in;
static _Atomic int excl_max_readers;
/* The writers keep a == b; a reader must never see them differ. Plain
 * variables, written only under the write lock. */
static volatile uint64_t excl_a, excl_b;
static long excl_iters;

static void excl_writer(void *arg)
{
    (void)arg;
    for (long i = 0; i < excl_iters; i++) {
        ASSERT_EQ(gort_rwmutex_lock(&excl_rw), 0);
        ASSERT_EQ(atomic_fetch_add(&excl_writers_in, 1), 0);
        ASSERT_EQ(atomic_load(&excl_readers_in), 0);
        excl_a = excl_a + 1;
        if (i % 8 == 0)
            ASSERT_EQ(gort_yield(), 0); /* hold it across a switch */
        excl_b = excl_b + 1;
        ASSERT_EQ(atomic_load(&excl_readers_in), 0);
        ASSERT_EQ(atomic_fetch_sub(&excl_writers_in, 1), 1);
        ASSERT_EQ(gort_rwmutex_unlock(&excl_rw), 0);
    }
    ASSERT_EQ(gort_waitgroup_done(&excl_wg), 0);
}

static void excl_reader(void *arg)
{
    (void)arg;
    for (long i = 0; i < excl_iters * 4; i++) {
        ASSERT_EQ(gort_rwmutex_rlock(&excl_rw), 0);
        int n = atomic_fetch_add(&excl_readers_in, 1) + 1;
        int m = atomic_load(&excl_max_readers);
        while (n > m && !atomic_compare_exchange_weak(&excl_max_readers, &m, n))
            ;
        ASSERT_EQ(atomic_load(&excl_writers_in), 0);
        uint64_t a = excl_a;
        if (i % 8 == 0)
            ASSERT_EQ(gort_yield(), 0);
        ASSERT_EQ(excl_b, a);
        ASSERT_EQ(atomic_load(&excl_writers_in), 0);
        atomic_fetch_sub(&excl_readers_in, 1);
        ASSERT_EQ(gort_rwmutex_runlock(&excl_rw), 0);
    }
    ASSERT_EQ(gort_waitgroup_done(&excl_wg), 0);
}

static int excl_main(void *arg)
{
    (void)arg;
    excl_iters = test_scale(5000);
    ASSERT_EQ(gort_waitgroup_add(&excl_wg, EXCL_WRITERS + EXCL_READERS), 0);
    for (int i = 0; i < EXCL_READERS; i++) {
        ASSERT_EQ(gort_go(excl_reader, NULL), 0);
        if (i < EXCL_WRITERS)
            ASSERT_EQ(gort_go(excl_writer, NULL), 0);
    }
    ASSERT_EQ(gort_waitgroup_wait(&excl_wg), 0);
    ASSERT_EQ(excl_a, (uint64_t)EXCL_WRITERS * (uint64_t)excl_iters);
    ASSERT_EQ(excl_b, excl_a);
    test_log("most readers inside at once: %d", atomic_load(&excl_max_readers));
    return 0;
}

TEST(rwmutex_writer_exclusion)
{
    ASSERT_EQ(run_main(excl_main, NULL, 4), 0);
}

/* ---- a writer is not starved by a stream of readers ---------------------- */

#define STREAM_READERS 6

static gort_rwmutex_t stream_rw = GORT_RWMUTEX_INIT;
static gort_waitgroup_t stream_wg;
static _Atomic bool stream_stop;
static _Atomic int stream_started;
static _Atomic int stream_readers_in;

static void stream_reader(void *arg)
{
    (void)arg;
    atomic_fetch_add(&stream_started, 1);
    /* Readers overlap: each holds its read lock across a yield, so there is
     * nearly always some reader inside. Without writer preference a writer
     * would wait for a moment with no reader, which never comes. */
    while (!atomic_load_explicit(&stream_stop, memory_order_relaxed)) {
        ASSERT_EQ(gort_rwmutex_rlock(&stream_rw), 0);
        atomic_fetch_add(&stream_readers_in, 1);
        ASSERT_EQ(gort_yield(), 0);
        busy_ns(1000);
        atomic_fetch_sub(&stream_readers_in, 1);
        ASSERT_EQ(gort_rwmutex_runlock(&stream_rw), 0);
    }
    ASSERT_EQ(gort_waitgroup_done(&stream_wg), 0);
}

static void stream_writer(void *arg)
{
    long n = *(long *)arg;
    for (long i = 0; i < n; i++) {
        ASSERT_EQ(gort_rwmutex_lock(&stream_rw), 0);
        ASSERT_EQ(atomic_load(&stream_readers_in), 0);
        ASSERT_EQ(gort_rwmutex_unlock(&stream_rw), 0);
        ASSERT_EQ(gort_yield(), 0);
    }
    atomic_store(&stream_stop, true);
    ASSERT_EQ(gort_waitgroup_done(&stream_wg), 0);
}

static int stream_main(void *arg)
{
    (void)arg;
    long n = test_scale(200);
    ASSERT_EQ(gort_waitgroup_add(&stream_wg, STREAM_READERS + 1), 0);
    for (int i = 0; i < STREAM_READERS; i++)
        ASSERT_EQ(gort_go(stream_reader, NULL), 0);
    ASSERT_EQ(wait_at_least(&stream_started, STREAM_READERS, 30), STREAM_READERS);
    ASSERT_EQ(gort_go(stream_writer, &n), 0);
    ASSERT_EQ(gort_waitgroup_wait(&stream_wg), 0);
    return 0;
}

/* No timing assertion beyond the deadline: the writer must finish while the
 * readers never stop on their own. */
TEST_TIMEOUT(rwmutex_writer_not_starved_procs1, 120)
{
    ASSERT_EQ(run_main(stream_main, NULL, 1), 0);
}

TEST_TIMEOUT(rwmutex_writer_not_starved_procs4, 120)
{
    ASSERT_EQ(run_main(stream_main, NULL, 4), 0);
}

/* ---- a pending writer keeps new readers out -------------------------------- */

static gort_rwmutex_t pend_rw = GORT_RWMUTEX_INIT;
static gort_waitgroup_t pend_wg;
static _Atomic int pend_stage;

static void pend_writer(void *arg)
{
    (void)arg;
    atomic_store(&pend_stage, 1);
    ASSERT_EQ(gort_rwmutex_lock(&pend_rw), 0); /* waits for main's read lock */
    atomic_store(&pend_stage, 2);
    ASSERT_EQ(gort_rwmutex_unlock(&pend_rw), 0);
    ASSERT_EQ(gort_waitgroup_done(&pend_wg), 0);
}

static void pend_reader(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_rwmutex_rlock(&pend_rw), 0); /* behind the pending writer */
    ASSERT_EQ(atomic_load(&pend_stage), 2);
    ASSERT_EQ(gort_rwmutex_runlock(&pend_rw), 0);
    ASSERT_EQ(gort_waitgroup_done(&pend_wg), 0);
}

static int pend_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_rwmutex_rlock(&pend_rw), 0);
    ASSERT_EQ(gort_waitgroup_add(&pend_wg, 2), 0);
    ASSERT_EQ(gort_go(pend_writer, NULL), 0);
    /* With one P: the writer runs until it parks waiting for our read lock
     * before main runs again. */
    ASSERT_EQ(gort_yield(), 0);
    ASSERT_EQ(atomic_load(&pend_stage), 1);
    ASSERT_EQ(gort_go(pend_reader, NULL), 0);
    ASSERT_EQ(gort_yield(), 0); /* the reader parks behind the writer */
    ASSERT_EQ(atomic_load(&pend_stage), 1);
    ASSERT_EQ(gort_rwmutex_runlock(&pend_rw), 0); /* wakes the writer */
    ASSERT_EQ(gort_waitgroup_wait(&pend_wg), 0);
    return 0;
}

TEST(rwmutex_pending_writer_blocks_new_readers)
{
    ASSERT_EQ(run_main(pend_main, NULL, 1), 0);
}

/* ---- misuse ---------------------------------------------------------------- */

static int misuse_main(void *arg)
{
    (void)arg;
    gort_rwmutex_t rw = GORT_RWMUTEX_INIT;
    ASSERT_EQ(gort_rwmutex_runlock(&rw), -EPERM); /* nothing held */
    ASSERT_EQ(gort_rwmutex_unlock(&rw), -EPERM);
    ASSERT_EQ(gort_rwmutex_rlock(&rw), 0);
    ASSERT_EQ(gort_rwmutex_unlock(&rw), -EPERM); /* read-locked, not write-locked */
    ASSERT_EQ(gort_rwmutex_runlock(&rw), 0);
    ASSERT_EQ(gort_rwmutex_runlock(&rw), -EPERM);
    ASSERT_EQ(gort_rwmutex_lock(&rw), 0);
    ASSERT_EQ(gort_rwmutex_runlock(&rw), -EPERM); /* write-locked, no reader */
    ASSERT_EQ(gort_rwmutex_unlock(&rw), 0);
    ASSERT_EQ(gort_rwmutex_unlock(&rw), -EPERM);
    /* Nothing was corrupted: both modes still work, twice over. */
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(gort_rwmutex_rlock(&rw), 0);
        ASSERT_EQ(gort_rwmutex_rlock(&rw), 0);
        ASSERT_EQ(gort_rwmutex_runlock(&rw), 0);
        ASSERT_EQ(gort_rwmutex_runlock(&rw), 0);
        ASSERT_EQ(gort_rwmutex_lock(&rw), 0);
        ASSERT_EQ(gort_rwmutex_unlock(&rw), 0);
    }
    return 0;
}

TEST(rwmutex_misuse_eperm)
{
    ASSERT_EQ(run_main(misuse_main, NULL, 1), 0);
}

/* A stray unlock while a writer only waits (a reader holds the lock) is
 * refused too, and the writer still gets the lock when the reader leaves.
 * Before, readerCount alone made it look held: the unlock returned 0 and
 * the writer was never woken. */
static gort_rwmutex_t stray_rw = GORT_RWMUTEX_INIT;
static _Atomic int stray_state;

static void stray_writer(void *arg)
{
    (void)arg;
    atomic_store(&stray_state, 1);
    ASSERT_EQ(gort_rwmutex_lock(&stray_rw), 0);
    atomic_store(&stray_state, 2);
    ASSERT_EQ(gort_rwmutex_unlock(&stray_rw), 0);
}

static int stray_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_rwmutex_rlock(&stray_rw), 0);
    ASSERT_EQ(gort_go(stray_writer, NULL), 0);
    ASSERT_EQ(gort_yield(), 0); /* one P: the writer now waits for us */
    ASSERT_EQ(atomic_load(&stray_state), 1);
    ASSERT_EQ(gort_rwmutex_unlock(&stray_rw), -EPERM);
    ASSERT_EQ(gort_rwmutex_runlock(&stray_rw), 0);
    for (int i = 0; i < 30000 && atomic_load(&stray_state) != 2; i++)
        ASSERT_EQ(gort_sleep_ns(1000000), 0);
    ASSERT_EQ(atomic_load(&stray_state), 2);
    ASSERT_EQ(gort_rwmutex_lock(&stray_rw), 0); /* still usable */
    ASSERT_EQ(gort_rwmutex_unlock(&stray_rw), 0);
    return 0;
}

TEST(rwmutex_stray_unlock_with_a_waiting_writer_eperm)
{
    ASSERT_EQ(run_main(stray_main, NULL, 1), 0);
}

TEST(rwmutex_unlock_unheld_eperm_no_runtime)
{
    gort_rwmutex_t rw = GORT_RWMUTEX_INIT;
    ASSERT_EQ(gort_rwmutex_runlock(&rw), -EPERM);
    ASSERT_EQ(gort_rwmutex_unlock(&rw), -EPERM);
}

/* ---- foreign threads --------------------------------------------------------- */

static gort_rwmutex_t foreign_rw = GORT_RWMUTEX_INIT;
static _Atomic int foreign_rlock_res = 1, foreign_lock_res = 1, foreign_runlock_res = 1;

static void *foreign_blocker(void *arg)
{
    (void)arg;
    atomic_store(&foreign_rlock_res, gort_rwmutex_rlock(&foreign_rw));
    atomic_store(&foreign_lock_res, gort_rwmutex_lock(&foreign_rw));
    return NULL;
}

static void *foreign_runlocker(void *arg)
{
    (void)arg;
    atomic_store(&foreign_runlock_res, gort_rwmutex_runlock(&foreign_rw));
    return NULL;
}

static int foreign_main(void *arg)
{
    (void)arg;
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, foreign_blocker, NULL), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_EQ(atomic_load(&foreign_rlock_res), -EPERM);
    ASSERT_EQ(atomic_load(&foreign_lock_res), -EPERM);
    /* A read lock taken here may be released by a foreign thread. */
    ASSERT_EQ(gort_rwmutex_rlock(&foreign_rw), 0);
    ASSERT_EQ(pthread_create(&t, NULL, foreign_runlocker, NULL), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_EQ(atomic_load(&foreign_runlock_res), 0);
    /* Nothing is held now: the writer gets in. */
    ASSERT_EQ(gort_rwmutex_lock(&foreign_rw), 0);
    ASSERT_EQ(gort_rwmutex_unlock(&foreign_rw), 0);
    return 0;
}

TEST(rwmutex_foreign_thread)
{
    gort_rwmutex_t rw = GORT_RWMUTEX_INIT;
    ASSERT_EQ(gort_rwmutex_rlock(&rw), -EPERM); /* no runtime at all */
    ASSERT_EQ(gort_rwmutex_lock(&rw), -EPERM);
    ASSERT_EQ(run_main(foreign_main, NULL, 2), 0);
}
