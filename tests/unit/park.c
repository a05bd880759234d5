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
    /* Every park goes straight across (the first one to the ponger that
     * has not run yet: runnext holds it). */
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
    /* The last spawned runs first (runnext), then the others in order. */
    static const int rr[NYIELD] = {2, 0, 1};
    for (int k = 0; k < ny; k++)
        ASSERT_EQ(ylog[k], rr[k % NYIELD]);
    ASSERT_GE(after.switches_direct - before.switches_direct, NYIELD * 100 - 10);
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
