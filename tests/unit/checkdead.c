/*
 * checkdead.c - the deadlock check (sched.c looks_dead) against a dedicated
 * goroutine that is runnable while its thread still counts itself asleep.
 *
 * findrunnable_dedicated raises ndedsleeping before it looks at its
 * goroutine a last time and goes to sleep; a thread descheduled in between
 * (seen under qemu-user: a false "all goroutines are asleep") leaves a
 * runnable goroutine that no count shows. The test builds that state by
 * hand, with the thread really asleep: it marks the parked dedicated
 * goroutine runnable without waking the thread, lets every normal M go
 * idle, and only after the check's grace period (200 ms) wakes the thread
 * the way the thread would have gone on by itself.
 */
#include <pthread.h>
#include <time.h>

#include "gort_util.h"
#include "internal.h"
#include "test.h"

#define MS 1000000ll

static gort__g_t *_Atomic parked_g;
static gort_chan_t *done;

static bool publish(gort__g_t *gp, void *lock)
{
    (void)lock;
    atomic_store(&parked_g, gp); /* pairs with the loads in window_main */
    return true;
}

static void dedicated(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_dedicate_os_thread(), 0);
    gort__park(publish, NULL, waitReasonTest); /* readied by hand only */
    int v = 1;
    ASSERT_EQ(gort_chan_send(done, &v), 0);
    ASSERT_EQ(gort_undedicate_os_thread(), 0);
}

/* The thread of the dedicated goroutine going on after its pause: its
 * futex sleep ends and it finds the goroutine runnable. */
static void *late_wake(void *arg)
{
    gort__m_t *mp = arg;
    struct timespec ts = {0, 600 * 1000 * 1000}; /* 3x the grace period */
    nanosleep(&ts, NULL);
    gort__futexwakeup(&mp->dstate, 1);
    return NULL;
}

static int window_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_chan_make(&done, sizeof(int), 0), 0);
    ASSERT_EQ(gort_go(dedicated, NULL), 0);
    int64_t deadline = test_now_ns() + 10000 * MS;
    gort__g_t *gp;
    while (!(gp = atomic_load(&parked_g)) || atomic_load(&gp->lockedm->dstate) != DSTATE_SLEEPING) {
        ASSERT_LT(test_now_ns(), deadline);
        ASSERT_EQ(gort_sleep_ns(1 * MS), 0);
    }
    ASSERT_EQ(gort_sleep_ns(20 * MS), 0); /* past the last look, into the futex */
    ASSERT_GE(atomic_load(&gort__sched.ndedsleeping), 1);
    /* Runnable, but nobody wakes the thread: it stays counted asleep. */
    atomic_store(&gp->atomicstatus, Grunnable);
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, late_wake, gp->lockedm), 0);
    int v = 0;
    ASSERT_EQ(gort_chan_recv(done, &v, NULL), 0); /* every normal M idle */
    ASSERT_EQ(v, 1);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_EQ(gort_chan_free(done), 0);
    return 0;
}

TEST(runnable_dedicated_goroutine_of_a_sleeping_thread_is_not_a_deadlock)
{
    ASSERT_EQ(run_main(window_main, NULL, 1), 0);
}
