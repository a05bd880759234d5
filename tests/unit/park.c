/*
 * park.c - the direct switch (sched.c switch_direct) and solo Ps (runq.c),
 * white-box, inside a running runtime: a goroutine that parks or yields on
 * a solo P switches straight to the next one of the local queue; a park's
 * unlockf runs first, as on g0, and when it says the wait is over the
 * parker goes on; yields keep their round-robin order; the direct switch
 * is not taken when schedule() has other duties (a pending timer, a locked
 * goroutine on either side, more than one P); only the one P of
 * GOMAXPROCS 1 is solo, across gort_gomaxprocs_set.
 */
#include <limits.h>
#include <pthread.h>
#include <unistd.h>

#include "gort_util.h"
#include "internal.h"
#include "test.h"

static gort_chan_t *c1, *c2;
static bool pingpong_preempted; /* during the last pingpong() */

/* Echoes every value from c1 back on c2 until a negative one; with lock,
 * locked to its thread, and checks that the thread never changes
 * (unlocked, it may move between threads at GOMAXPROCS > 1). */
typedef struct {
    bool lock;
    gort_waitgroup_t *wg;
} ponger_arg_t;

static void ponger(void *p)
{
    ponger_arg_t *a = p;
    if (a->lock)
        ASSERT_EQ(gort_lock_os_thread(), 0);
    pid_t tid = gettid();
    for (;;) {
        long v;
        ASSERT_EQ(gort_chan_recv(c1, &v, NULL), 0);
        if (v < 0)
            break;
        ASSERT_EQ(gort_chan_send(c2, &v), 0);
        if (a->lock)
            ASSERT_EQ(gettid(), tid);
    }
    if (a->lock)
        ASSERT_EQ(gort_unlock_os_thread(), 0);
    ASSERT_EQ(gort_waitgroup_done(a->wg), 0);
}

/* A ping-pong with a ponger (locked or not) of n round trips, or until
 * *until is set (then at most 10 s); returns how many switches took the
 * direct path meanwhile and leaves the round trips made in
 * pingpong_rounds. */
static long pingpong_rounds;

static uint64_t pingpong_until(long n, bool lock, _Atomic bool *until)
{
    ASSERT_EQ(gort_chan_make(&c1, sizeof(long), 0), 0);
    ASSERT_EQ(gort_chan_make(&c2, sizeof(long), 0), 0);
    gort_waitgroup_t wg;
    gort_waitgroup_init(&wg);
    ASSERT_EQ(gort_waitgroup_add(&wg, 1), 0);
    ponger_arg_t a = {.lock = lock, .wg = &wg};
    gort_stats_t before = stats_now();
    ASSERT_EQ(gort_go(ponger, &a), 0);
    int64_t deadline = test_now_ns() + 10 * 1000000000ll;
    long i = 0;
    for (; i < n && !(until && atomic_load(until)); i++) {
        if (until)
            ASSERT_LT(test_now_ns(), deadline);
        long v = -1;
        ASSERT_EQ(gort_chan_send(c1, &i), 0);
        ASSERT_EQ(gort_chan_recv(c2, &v, NULL), 0);
        ASSERT_EQ(v, i);
    }
    long stop = -1;
    ASSERT_EQ(gort_chan_send(c1, &stop), 0);
    ASSERT_EQ(gort_waitgroup_wait(&wg), 0);
    gort_stats_t after = stats_now();
    gort_chan_free(c1);
    gort_chan_free(c2);
    ASSERT_LE(after.switches_direct - before.switches_direct, after.switches - before.switches);
    pingpong_preempted =
        after.preempts_sync + after.preempts_async != before.preempts_sync + before.preempts_async;
    pingpong_rounds = i;
    return after.switches_direct - before.switches_direct;
}

static uint64_t pingpong(long n, bool lock)
{
    return pingpong_until(n, lock, NULL);
}

/* Every park of an n-round ping-pong switched directly (2n; the first one
 * to the ponger that has not run yet: runnext holds it). A goroutine that
 * sysmon preempted to the global queue (slow builds: TSan, valgrind, qemu)
 * makes the parks around it go through g0. */
static void expect_all_direct(uint64_t d, long n)
{
    ASSERT_LE(d, (uint64_t)(2 * n + 4));
    ASSERT_GE(d, (uint64_t)(pingpong_preempted ? n : 2 * n - 4));
}

static int main_pingpong_direct(void *arg)
{
    (void)arg;
    expect_all_direct(pingpong(1000, false), 1000);
    return 0;
}

TEST(pingpong_parks_switch_directly)
{
    ASSERT_EQ(run_main(main_pingpong_direct, NULL, 1), 0);
}

/* A pending timer does not stop the direct switch, and a due one still
 * fires while the ping-pong runs: it goes on until a 2 ms sleeper on the
 * same P has woken. (The direct path leaves a due timer to findrunnable;
 * the timer sleeper M would fire it too, later.) */
static _Atomic bool sleeper_woke;

static void sleeper(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_sleep_ns(2 * 1000000), 0);
    atomic_store(&sleeper_woke, true);
}

static int main_pingpong_timer(void *arg)
{
    (void)arg;
    atomic_store(&sleeper_woke, false);
    ASSERT_EQ(gort_go(sleeper, NULL), 0);
    ASSERT_EQ(gort_yield(), 0); /* the sleeper's timer is now on our P */
    ASSERT_NE(atomic_load(&gort__getm()->p->timer0when), 0);
    uint64_t d = pingpong_until(LONG_MAX, false, &sleeper_woke); /* asserts it woke */
    /* Before it was due, the pending timer did not keep parks on g0. */
    ASSERT_GE(d, (uint64_t)pingpong_rounds);
    return 0;
}

TEST(pending_timer_keeps_direct_switch_due_timer_fires)
{
    ASSERT_EQ(run_main(main_pingpong_timer, NULL, 1), 0);
}

static int main_pingpong_locked(void *arg)
{
    (void)arg;
    /* A locked goroutine is run by its own thread only (startlockedm). The
     * one direct switch allowed is the first, to the ponger before it has
     * locked itself. */
    ASSERT_LE(pingpong(300, true), 1);
    return 0;
}

TEST(locked_peer_keeps_parks_on_g0)
{
    ASSERT_EQ(run_main(main_pingpong_locked, NULL, 1), 0);
}

/* A direct park runs its unlockf before the switch, as g0 would: the G is
 * off the M (no current G) and waiting. When unlockf says the wait is
 * over, the parker goes on at once and the G taken for the switch stays
 * next. */
static gort__g_t *peer_g;
static int order[4], norder;
static bool unlockf_saw_no_g;

static bool unlockf_false(gort__g_t *gp, void *arg)
{
    (void)arg;
    unlockf_saw_no_g = gort__getg() == NULL;
    ASSERT_EQ(gort__readgstatus(gp), Gwaiting);
    ASSERT_TRUE(gp->m == NULL);
    order[norder++] = 1;
    return false;
}

static void peer(void *arg)
{
    (void)arg;
    peer_g = gort__getg();
    order[norder++] = 3;
}

static int main_unlockf_false(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_go(peer, NULL), 0); /* into runnext */
    gort_stats_t before = stats_now();
    order[norder++] = 0;
    gort__park(unlockf_false, NULL, waitReasonSleep);
    order[norder++] = 2;
    ASSERT_TRUE(peer_g == NULL); /* not run yet */
    ASSERT_TRUE(unlockf_saw_no_g);
    gort_stats_t after = stats_now();
    ASSERT_EQ(after.switches_direct - before.switches_direct, 0);
    ASSERT_EQ(gort_yield(), 0); /* now the peer runs, directly */
    ASSERT_TRUE(peer_g != NULL);
    ASSERT_EQ(norder, 4);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(order[i], i);
    after = stats_now();
    ASSERT_EQ(after.switches_direct - before.switches_direct, 1);
    return 0;
}

TEST(direct_park_unlockf_false_keeps_running_the_parker)
{
    ASSERT_EQ(run_main(main_unlockf_false, NULL, 1), 0);
}

/* Goroutines yielding to each other on a solo P switch directly, in
 * round-robin order (the yielder goes to the tail). */
#define NYIELD 3
static int ylog[NYIELD * 100], ny;

static void yielder(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < 100; i++) {
        ylog[ny++] = id;
        ASSERT_EQ(gort_yield(), 0);
    }
}

static int main_yield(void *arg)
{
    (void)arg;
    gort_stats_t before = stats_now();
    for (int i = 0; i < NYIELD; i++)
        ASSERT_EQ(gort_go(yielder, (void *)(intptr_t)i), 0);
    wait_live(1, 30);
    gort_stats_t after = stats_now();
    ASSERT_EQ(ny, NYIELD * 100);
    /* Round robin: each turn comes back after the other two, until the
     * first of them is done. */
    int count[NYIELD] = {0}, alive = ny; /* entries while all three ran */
    for (int k = 0; k < ny && alive == ny; k++)
        if (++count[ylog[k]] == 100)
            alive = k;
    int breaks = 0;
    for (int k = NYIELD; k < alive; k++)
        breaks += ylog[k] != ylog[k - NYIELD];
    ASSERT_GE(alive, 100); /* (one may start alone while main is preempted) */
    /* A goroutine preempted to the global queue sits out for up to 61
     * turns (slow builds: TSan, valgrind, qemu): check the order only when
     * sysmon preempted nobody. */
    if (after.preempts_sync + after.preempts_async == before.preempts_sync + before.preempts_async)
        ASSERT_LE(breaks, 6);
    ASSERT_GE(after.switches_direct - before.switches_direct, NYIELD * 100 / 2);
    return 0;
}

TEST(yields_switch_directly_in_round_robin)
{
    ASSERT_EQ(run_main(main_yield, NULL, 1), 0);
}

static bool solo(int i)
{
    return atomic_load(&gort__rt.allp[i])->solo;
}

static int main_solo(void *arg)
{
    (void)arg;
    ASSERT_TRUE(solo(0));
    ASSERT_EQ(gort_gomaxprocs_set(2), 1);
    ASSERT_EQ(gort_gomaxprocs(), 2);
    ASSERT_FALSE(solo(0));
    ASSERT_FALSE(solo(1));
    ASSERT_EQ(pingpong(200, false), 0); /* no fast path with thieves */
    ASSERT_EQ(gort_gomaxprocs_set(1), 2);
    ASSERT_TRUE(solo(0));
    expect_all_direct(pingpong(200, false), 200);
    return 0;
}

TEST(only_the_one_p_of_gomaxprocs_1_is_solo)
{
    ASSERT_EQ(run_main(main_solo, NULL, 1), 0);
}

static int main_two(void *arg)
{
    (void)arg;
    ASSERT_FALSE(solo(0));
    ASSERT_FALSE(solo(1));
    ASSERT_EQ(pingpong(200, false), 0);
    return 0;
}

TEST(no_p_is_solo_with_gomaxprocs_2)
{
    ASSERT_EQ(run_main(main_two, NULL, 2), 0);
}

/* main returns while two goroutines yield to each other forever (directly):
 * gort_main returns. (main's exit goes through g0, which sees the shutdown
 * first; direct_next's own shutdown check is for safety.) */
static void yield_forever(void *arg)
{
    (void)arg;
    for (;;)
        gort_yield();
}

static int main_shutdown(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_go(yield_forever, NULL), 0);
    ASSERT_EQ(gort_go(yield_forever, NULL), 0);
    for (int i = 0; i < 1000; i++)
        ASSERT_EQ(gort_yield(), 0);
    ASSERT_GT(stats_now().switches_direct, 1000);
    return 7;
}

TEST_TIMEOUT(shutdown_with_goroutines_yielding_directly, 30)
{
    ASSERT_EQ(run_main(main_shutdown, NULL, 1), 7);
}

/* Two goroutines yielding to each other on a solo P do not starve the
 * global queue: a goroutine readied by a foreign thread goes there and
 * must run (the 61st-tick look at the global queue, which the direct
 * switch leaves to findrunnable). */
static gort_chan_t *gq_chan;
static _Atomic bool gq_ran;

static void gq_waiter(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_chan_recv(gq_chan, NULL, NULL), 0);
    atomic_store(&gq_ran, true);
}

static void gq_yielder(void *arg)
{
    (void)arg;
    int64_t deadline = test_now_ns() + 10 * 1000000000ll;
    while (!atomic_load(&gq_ran)) {
        ASSERT_LT(test_now_ns(), deadline); /* the readied goroutine starved */
        gort_yield();
    }
}

static void *gq_foreign(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_chan_try_send(gq_chan, NULL), 0);
    return NULL;
}

static int main_global_queue(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_chan_make(&gq_chan, 0, 0), 0);
    atomic_store(&gq_ran, false);
    ASSERT_EQ(gort_go(gq_waiter, NULL), 0);
    ASSERT_EQ(gort_yield(), 0); /* the waiter is now parked in the channel */
    ASSERT_EQ(gort_go(gq_yielder, NULL), 0);
    ASSERT_EQ(gort_go(gq_yielder, NULL), 0);
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, gq_foreign, NULL), 0);
    gq_yielder(NULL);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    ASSERT_TRUE(atomic_load(&gq_ran));
    ASSERT_GT(stats_now().globrunq_gets, 0);
    return 0;
}

TEST(yielders_do_not_starve_the_global_queue)
{
    ASSERT_EQ(run_main(main_global_queue, NULL, 1), 0);
}
