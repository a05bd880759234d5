/*
 * park.c - the park fast path (sched.c park_direct) and solo Ps (runq.c),
 * white-box, inside a running runtime: a goroutine that parks while runnext
 * holds the next goroutine switches straight to it; its unlockf runs on the
 * goroutine switched to, after the switch; an unlockf that says the wait is
 * over puts the parker at the tail of the queue; the fast path is not taken
 * when schedule() has other duties (a pending timer, a locked goroutine on
 * either side, more than one P); only the one P of GOMAXPROCS 1 is solo,
 * across gort_gomaxprocs_set.
 */
#include <pthread.h>
#include <unistd.h>

#include "gort_util.h"
#include "internal.h"
#include "test.h"

static gort_chan_t *c1, *c2;

/* Receives n values from c1 and sends each back on c2; with lock, locked
 * to its thread, and checks that the thread never changes (unlocked, it
 * may move between threads at GOMAXPROCS > 1). */
typedef struct {
    long n;
    bool lock;
    gort_waitgroup_t *wg;
} ponger_arg_t;

static void ponger(void *p)
{
    ponger_arg_t *a = p;
    if (a->lock)
        ASSERT_EQ(gort_lock_os_thread(), 0);
    pid_t tid = gettid();
    for (long i = 0; i < a->n; i++) {
        long v;
        ASSERT_EQ(gort_chan_recv(c1, &v, NULL), 0);
        ASSERT_EQ(v, i);
        ASSERT_EQ(gort_chan_send(c2, &v), 0);
        if (a->lock)
            ASSERT_EQ(gettid(), tid);
    }
    if (a->lock)
        ASSERT_EQ(gort_unlock_os_thread(), 0);
    ASSERT_EQ(gort_waitgroup_done(a->wg), 0);
}

/* A ping-pong of n round trips with a ponger (locked or not); returns how
 * many switches took the fast path meanwhile. */
static uint64_t pingpong(long n, bool lock)
{
    ASSERT_EQ(gort_chan_make(&c1, sizeof(long), 0), 0);
    ASSERT_EQ(gort_chan_make(&c2, sizeof(long), 0), 0);
    gort_waitgroup_t wg;
    gort_waitgroup_init(&wg);
    ASSERT_EQ(gort_waitgroup_add(&wg, 1), 0);
    ponger_arg_t a = {.n = n, .lock = lock, .wg = &wg};
    gort_stats_t before = stats_now();
    ASSERT_EQ(gort_go(ponger, &a), 0);
    for (long i = 0; i < n; i++) {
        long v = -1;
        ASSERT_EQ(gort_chan_send(c1, &i), 0);
        ASSERT_EQ(gort_chan_recv(c2, &v, NULL), 0);
        ASSERT_EQ(v, i);
    }
    ASSERT_EQ(gort_waitgroup_wait(&wg), 0);
    gort_stats_t after = stats_now();
    gort_chan_free(c1);
    gort_chan_free(c2);
    ASSERT_LE(after.switches_direct - before.switches_direct, after.switches - before.switches);
    return after.switches_direct - before.switches_direct;
}

static int main_pingpong_direct(void *arg)
{
    (void)arg;
    /* Every park but the first (the ponger has not run yet: runnext holds
     * it, so that one is direct too) and the last goes straight across. */
    uint64_t d = pingpong(1000, false);
    ASSERT_GE(d, 2 * 1000 - 4);
    ASSERT_LE(d, 2 * 1000 + 4);
    return 0;
}

TEST(pingpong_parks_switch_directly)
{
    ASSERT_EQ(run_main(main_pingpong_direct, NULL, 1), 0);
}

static void sleeper(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_sleep_ns(3600ll * 1000000000), 0); /* abandoned at exit */
}

static int main_pingpong_timer(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_go(sleeper, NULL), 0);
    ASSERT_EQ(gort_yield(), 0); /* the sleeper's timer is now on our P */
    ASSERT_NE(atomic_load(&gort__getm()->p->timer0when), 0);
    ASSERT_EQ(pingpong(1000, false), 0); /* findrunnable must look at timers */
    return 0;
}

TEST(pending_timer_keeps_parks_on_g0)
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

/* The unlockf of a direct park runs on the goroutine switched to, after the
 * switch; when it returns false the parker is queued behind it. */
static gort__g_t *peer_g;
static int order[4], norder;
static gort__g_t *unlockf_ran_on;

static bool unlockf_false(gort__g_t *gp, void *arg)
{
    (void)arg;
    unlockf_ran_on = gort__getg();
    ASSERT_EQ(gort__readgstatus(gp), Gwaiting);
    ASSERT_TRUE(gp->m == NULL);
    order[norder++] = 1;
    return false;
}

static void peer(void *arg)
{
    (void)arg;
    peer_g = gort__getg();
    order[norder++] = 2;
}

static int main_unlockf_false(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_go(peer, NULL), 0); /* into runnext */
    gort_stats_t before = stats_now();
    order[norder++] = 0;
    gort__park(unlockf_false, NULL, waitReasonSleep);
    order[norder++] = 3;
    gort_stats_t after = stats_now();
    ASSERT_EQ(after.switches_direct - before.switches_direct, 1);
    ASSERT_EQ(norder, 4);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(order[i], i);
    ASSERT_TRUE(unlockf_ran_on == peer_g);
    return 0;
}

TEST(direct_park_unlockf_false_runs_parker_after_peer)
{
    ASSERT_EQ(run_main(main_unlockf_false, NULL, 1), 0);
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
    ASSERT_GE(pingpong(200, false), 2 * 200 - 4);
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
