/*
 * test_chan.c - gort_chan_t, case by case against Go's channel semantics
 * (chan.go): FIFO service of waiting senders and of waiting receivers, the
 * unbuffered hand-off, buffered FIFO (with wrap-around and with senders
 * queued behind a full buffer), close waking every waiter, draining a
 * closed buffer, -EPIPE for send on closed and double close, the try
 * variants (-EAGAIN, and from a foreign pthread waking a goroutine), len and
 * cap, channels of zero-size and large elements, NULL channels, -EPERM for
 * blocking calls from a foreign thread, -EBUSY from free while a goroutine
 * waits, and the deadline variants.
 *
 * How a test knows a goroutine is blocked: the FIFO and close tests run at
 * GOMAXPROCS 1, where a goroutine that sets a flag and then calls a
 * blocking channel operation (nothing in between can yield) has parked by
 * the time the main goroutine, yielding until the flag is set, runs again.
 * No test depends on timing except "did not return before its deadline".
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "gort_util.h"

#define MS ((int64_t)1000000)
#define S  ((int64_t)1000000000)

/* Yields until *v >= want; fails after timeout_s seconds. */
static void wait_at_least(_Atomic int *v, int want, int timeout_s)
{
    int64_t deadline = test_now_ns() + (int64_t)timeout_s * S;
    while (atomic_load(v) < want) {
        if (test_now_ns() > deadline)
            TEST_FAIL("waited %d s for a counter to reach %d (it is %d)", timeout_s, want,
                      atomic_load(v));
        ASSERT_EQ(gort_yield(), 0);
    }
}

static gort_chan_t *make_chan(size_t elem_size, size_t cap)
{
    gort_chan_t *c = NULL;
    ASSERT_EQ(gort_chan_make(&c, elem_size, cap), 0);
    ASSERT_TRUE(c != NULL);
    return c;
}

/* Sleeps a little (a goroutine that could wrongly run meanwhile gets the
 * chance to). */
static void settle(void)
{
    ASSERT_EQ(gort_sleep_ns(20 * MS), 0);
    for (int i = 0; i < 10; i++)
        ASSERT_EQ(gort_yield(), 0);
}

/* ---- make, len, cap, argument checks --------------------------------------- */

TEST(chan_make_args)
{
    gort_chan_t *c = (gort_chan_t *)&c;
    ASSERT_EQ(gort_chan_make(NULL, 8, 0), -EINVAL);
    ASSERT_EQ(gort_chan_make(&c, GORT_CHAN_ELEM_MAX + 1, 0), -EINVAL);
    ASSERT_EQ(gort_chan_make(&c, 8, (size_t)INT32_MAX + 1), -EINVAL);
    /* Largest element is fine. */
    ASSERT_EQ(gort_chan_make(&c, GORT_CHAN_ELEM_MAX, 1), 0);
    ASSERT_EQ(gort_chan_cap(c), 1);
    ASSERT_EQ(gort_chan_free(c), 0);
    ASSERT_EQ(gort_chan_free(NULL), -EINVAL);
}

static int len_cap_main(void *arg)
{
    (void)arg;
    gort_chan_t *u = make_chan(sizeof(int64_t), 0);
    ASSERT_EQ(gort_chan_len(u), 0);
    ASSERT_EQ(gort_chan_cap(u), 0);

    gort_chan_t *b = make_chan(sizeof(int64_t), 5);
    ASSERT_EQ(gort_chan_cap(b), 5);
    for (int64_t i = 0; i < 5; i++) {
        ASSERT_EQ(gort_chan_len(b), i);
        ASSERT_EQ(gort_chan_send(b, &i), 0);
    }
    ASSERT_EQ(gort_chan_len(b), 5);
    int64_t v;
    ASSERT_EQ(gort_chan_recv(b, &v, NULL), 0);
    ASSERT_EQ(gort_chan_len(b), 4);
    ASSERT_EQ(gort_chan_cap(b), 5);
    ASSERT_EQ(gort_chan_close(b), 0);
    /* len counts what is still buffered after close. */
    ASSERT_EQ(gort_chan_len(b), 4);
    ASSERT_EQ(gort_chan_free(u), 0);
    ASSERT_EQ(gort_chan_free(b), 0);
    return 0;
}

TEST(chan_len_cap)
{
    ASSERT_EQ(run_main(len_cap_main, NULL, 1), 0);
}

/* ---- NULL channel ------------------------------------------------------------ */

static int null_main(void *arg)
{
    (void)arg;
    int64_t v = 1;
    bool ok = true;
    int64_t far = gort_now_ns() + 10 * S;
    ASSERT_EQ(gort_chan_send(NULL, &v), -EINVAL);
    ASSERT_EQ(gort_chan_recv(NULL, &v, &ok), -EINVAL);
    ASSERT_EQ(gort_chan_try_send(NULL, &v), -EINVAL);
    ASSERT_EQ(gort_chan_try_recv(NULL, &v, &ok), -EINVAL);
    ASSERT_EQ(gort_chan_send_deadline(NULL, &v, far), -EINVAL);
    ASSERT_EQ(gort_chan_recv_deadline(NULL, &v, &ok, far), -EINVAL);
    ASSERT_EQ(gort_chan_close(NULL), -EINVAL);
    ASSERT_EQ(gort_chan_len(NULL), -EINVAL);
    ASSERT_EQ(gort_chan_cap(NULL), -EINVAL);
    ASSERT_EQ(gort_chan_free(NULL), -EINVAL);
    return 0;
}

TEST(chan_null_channel_einval)
{
    ASSERT_EQ(run_main(null_main, NULL, 1), 0);
}

/* ---- unbuffered hand-off ------------------------------------------------------ */

static gort_chan_t *hand_c;
static _Atomic int hand_sent; /* 1 once the sender's send returned */

static void hand_sender(void *arg)
{
    (void)arg;
    int64_t v = 0x1234567890abcdefLL;
    ASSERT_EQ(gort_chan_send(hand_c, &v), 0);
    atomic_store(&hand_sent, 1);
}

static int handoff_main(void *arg)
{
    (void)arg;
    hand_c = make_chan(sizeof(int64_t), 0);
    ASSERT_EQ(gort_go(hand_sender, NULL), 0);
    /* Nobody receives yet: the send must not complete. */
    settle();
    ASSERT_EQ(atomic_load(&hand_sent), 0);
    ASSERT_EQ(gort_chan_len(hand_c), 0);
    int64_t v = 0;
    bool ok = false;
    ASSERT_EQ(gort_chan_recv(hand_c, &v, &ok), 0);
    ASSERT_TRUE(ok);
    ASSERT_EQ(v, 0x1234567890abcdefLL);
    wait_at_least(&hand_sent, 1, 30);
    /* Nothing was buffered on the way. */
    ASSERT_EQ(gort_chan_try_recv(hand_c, &v, &ok), -EAGAIN);
    ASSERT_EQ(gort_chan_free(hand_c), 0);
    return 0;
}

TEST(chan_unbuffered_handoff_procs1)
{
    ASSERT_EQ(run_main(handoff_main, NULL, 1), 0);
}

TEST(chan_unbuffered_handoff_procs2)
{
    ASSERT_EQ(run_main(handoff_main, NULL, 2), 0);
}

/* A receiver that blocks first gets the value of a sender that comes later. */
static gort_chan_t *hand2_c;
static _Atomic int hand2_got;

static void hand2_receiver(void *arg)
{
    (void)arg;
    int64_t v = 0;
    bool ok = false;
    ASSERT_EQ(gort_chan_recv(hand2_c, &v, &ok), 0);
    ASSERT_TRUE(ok);
    ASSERT_EQ(v, 77);
    atomic_store(&hand2_got, 1);
}

static int handoff_recv_first_main(void *arg)
{
    (void)arg;
    hand2_c = make_chan(sizeof(int64_t), 0);
    ASSERT_EQ(gort_go(hand2_receiver, NULL), 0);
    settle();
    ASSERT_EQ(atomic_load(&hand2_got), 0);
    int64_t v = 77;
    ASSERT_EQ(gort_chan_send(hand2_c, &v), 0);
    wait_at_least(&hand2_got, 1, 30);
    ASSERT_EQ(gort_chan_free(hand2_c), 0);
    return 0;
}

TEST(chan_unbuffered_receiver_first)
{
    ASSERT_EQ(run_main(handoff_recv_first_main, NULL, 2), 0);
}

/* ---- buffered FIFO ---------------------------------------------------------- */

static int buffered_fifo_main(void *arg)
{
    (void)arg;
    enum { CAP = 16 };
    gort_chan_t *c = make_chan(sizeof(int64_t), CAP);
    int64_t v;
    bool ok;
    for (int64_t i = 0; i < CAP; i++)
        ASSERT_EQ(gort_chan_try_send(c, &i), 0);
    v = 99;
    ASSERT_EQ(gort_chan_try_send(c, &v), -EAGAIN);
    ASSERT_EQ(gort_chan_len(c), CAP);
    for (int64_t i = 0; i < CAP; i++) {
        ASSERT_EQ(gort_chan_recv(c, &v, &ok), 0);
        ASSERT_TRUE(ok);
        ASSERT_EQ(v, i);
    }
    ASSERT_EQ(gort_chan_try_recv(c, &v, &ok), -EAGAIN);

    /* Wrap-around: keep a varying fill level for many cycles; values must
     * come out in the order they went in. */
    int64_t next_in = 0, next_out = 0;
    for (int round = 0; round < 2000; round++) {
        int burst = 1 + (round * 7) % CAP;
        for (int k = 0; k < burst && gort_chan_len(c) < CAP; k++) {
            ASSERT_EQ(gort_chan_send(c, &next_in), 0);
            next_in++;
        }
        int take = 1 + (round * 5) % CAP;
        for (int k = 0; k < take && gort_chan_len(c) > 0; k++) {
            ASSERT_EQ(gort_chan_recv(c, &v, &ok), 0);
            ASSERT_TRUE(ok);
            ASSERT_EQ(v, next_out);
            next_out++;
        }
    }
    while (next_out < next_in) {
        ASSERT_EQ(gort_chan_recv(c, &v, NULL), 0);
        ASSERT_EQ(v, next_out);
        next_out++;
    }
    ASSERT_GT(next_in, 2000);
    ASSERT_EQ(gort_chan_free(c), 0);
    return 0;
}

TEST(chan_buffered_fifo)
{
    ASSERT_EQ(run_main(buffered_fifo_main, NULL, 1), 0);
}

/* ---- FIFO order of waiting senders ------------------------------------------- */

#define FIFO_N 8

static gort_chan_t *fifo_c;
static _Atomic int fifo_started;
static _Atomic int fifo_done;

static void fifo_sender(void *arg)
{
    int64_t v = (int64_t)(intptr_t)arg;
    atomic_fetch_add(&fifo_started, 1);
    /* Nothing between the flag and the send can yield: at GOMAXPROCS 1
     * this goroutine is parked in the send once the main goroutine runs. */
    ASSERT_EQ(gort_chan_send(fifo_c, &v), 0);
    atomic_fetch_add(&fifo_done, 1);
}

/* cap 0: the senders' values arrive in the order they blocked. cap 2 (kept
 * full with 1000, 1001): first the buffer, then the waiting senders in
 * order (a receive moves the head sender's value to the tail of the
 * buffer). */
static int fifo_senders_main(void *arg)
{
    int cap = (int)(intptr_t)arg;
    fifo_c = make_chan(sizeof(int64_t), (size_t)cap);
    for (int64_t i = 0; i < cap; i++) {
        int64_t v = 1000 + i;
        ASSERT_EQ(gort_chan_send(fifo_c, &v), 0);
    }
    /* Start the senders in an order that is not their value order, one at a
     * time, each blocked before the next starts. */
    static const int order[FIFO_N] = {3, 0, 7, 1, 6, 2, 5, 4};
    for (int k = 0; k < FIFO_N; k++) {
        ASSERT_EQ(gort_go(fifo_sender, (void *)(intptr_t)order[k]), 0);
        wait_at_least(&fifo_started, k + 1, 30);
    }
    ASSERT_EQ(atomic_load(&fifo_done), 0);
    ASSERT_EQ(gort_chan_len(fifo_c), cap);
    ASSERT_EQ(gort_chan_free(fifo_c), -EBUSY);
    for (int64_t i = 0; i < cap; i++) {
        int64_t v;
        ASSERT_EQ(gort_chan_recv(fifo_c, &v, NULL), 0);
        ASSERT_EQ(v, 1000 + i);
    }
    for (int k = 0; k < FIFO_N; k++) {
        int64_t v = -1;
        bool ok = false;
        ASSERT_EQ(gort_chan_recv(fifo_c, &v, &ok), 0);
        ASSERT_TRUE(ok);
        ASSERT_EQ(v, order[k]);
    }
    wait_at_least(&fifo_done, FIFO_N, 30);
    ASSERT_EQ(gort_chan_len(fifo_c), 0);
    ASSERT_EQ(gort_chan_free(fifo_c), 0);
    return 0;
}

TEST(chan_fifo_waiting_senders_unbuffered)
{
    ASSERT_EQ(run_main(fifo_senders_main, (void *)(intptr_t)0, 1), 0);
}

TEST(chan_fifo_waiting_senders_behind_full_buffer)
{
    ASSERT_EQ(run_main(fifo_senders_main, (void *)(intptr_t)2, 1), 0);
}

/* ---- FIFO order of waiting receivers ------------------------------------------ */

static int64_t fifo_got[FIFO_N];

static void fifo_receiver(void *arg)
{
    int idx = (int)(intptr_t)arg;
    int64_t v = -1;
    bool ok = false;
    atomic_fetch_add(&fifo_started, 1);
    ASSERT_EQ(gort_chan_recv(fifo_c, &v, &ok), 0);
    ASSERT_TRUE(ok);
    fifo_got[idx] = v;
    atomic_fetch_add(&fifo_done, 1);
}

/* Receivers block in order k = 0..N-1; the k-th value sent must go to the
 * k-th receiver, for cap 0 and for an empty buffered channel. */
static int fifo_receivers_main(void *arg)
{
    int cap = (int)(intptr_t)arg;
    fifo_c = make_chan(sizeof(int64_t), (size_t)cap);
    for (int k = 0; k < FIFO_N; k++) {
        fifo_got[k] = -1;
        ASSERT_EQ(gort_go(fifo_receiver, (void *)(intptr_t)k), 0);
        wait_at_least(&fifo_started, k + 1, 30);
    }
    ASSERT_EQ(atomic_load(&fifo_done), 0);
    for (int k = 0; k < FIFO_N; k++) {
        int64_t v = 500 + k;
        ASSERT_EQ(gort_chan_send(fifo_c, &v), 0);
    }
    wait_at_least(&fifo_done, FIFO_N, 30);
    for (int k = 0; k < FIFO_N; k++)
        ASSERT_EQ(fifo_got[k], 500 + k);
    /* Values went straight to the receivers, not into the buffer. */
    ASSERT_EQ(gort_chan_len(fifo_c), 0);
    ASSERT_EQ(gort_chan_free(fifo_c), 0);
    return 0;
}

TEST(chan_fifo_waiting_receivers_unbuffered)
{
    ASSERT_EQ(run_main(fifo_receivers_main, (void *)(intptr_t)0, 1), 0);
}

TEST(chan_fifo_waiting_receivers_buffered)
{
    ASSERT_EQ(run_main(fifo_receivers_main, (void *)(intptr_t)4, 1), 0);
}

/* ---- close wakes every waiter ------------------------------------------------- */

#define CLOSE_N 6

static gort_chan_t *close_c;
static _Atomic int close_started;
static _Atomic int close_done;

/* Receivers of several kinds, each with a non-zero value in its
 * destination that close must zero. */
static void close_receiver(void *arg)
{
    int kind = (int)(intptr_t)arg % 3;
    int64_t v = -7;
    bool ok = true;
    atomic_fetch_add(&close_started, 1);
    if (kind == 0) {
        ASSERT_EQ(gort_chan_recv(close_c, &v, &ok), 0);
    } else if (kind == 1) {
        ASSERT_EQ(gort_chan_recv_deadline(close_c, &v, &ok, gort_now_ns() + 60 * S), 0);
    } else {
        gort_select_case_t cs = {.chan = close_c, .dir = GORT_SELECT_RECV, .elem = &v, .ok = true};
        ASSERT_EQ(gort_select(&cs, 1, 0), 0);
        ok = cs.ok;
    }
    ASSERT_FALSE(ok);
    ASSERT_EQ(v, 0);
    atomic_fetch_add(&close_done, 1);
}

static void close_sender(void *arg)
{
    int kind = (int)(intptr_t)arg % 3;
    int64_t v = 5;
    atomic_fetch_add(&close_started, 1);
    if (kind == 0) {
        ASSERT_EQ(gort_chan_send(close_c, &v), -EPIPE);
    } else if (kind == 1) {
        ASSERT_EQ(gort_chan_send_deadline(close_c, &v, gort_now_ns() + 60 * S), -EPIPE);
    } else {
        gort_select_case_t cs = {.chan = close_c, .dir = GORT_SELECT_SEND, .elem = &v, .ok = true};
        ASSERT_EQ(gort_select(&cs, 1, 0), 0);
        ASSERT_FALSE(cs.ok);
    }
    atomic_fetch_add(&close_done, 1);
}

static void *close_from_thread(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_chan_close(close_c), 0);
    return NULL;
}

/* arg bit 0: senders (else receivers); bit 1: close from a foreign pthread;
 * bit 2: buffered (cap 1; senders first fill it). */
static int close_wakes_main(void *arg)
{
    int mode = (int)(intptr_t)arg;
    bool senders = mode & 1, foreign = mode & 2, buffered = mode & 4;
    close_c = make_chan(sizeof(int64_t), buffered ? 1 : 0);
    if (senders && buffered) {
        int64_t v = 42;
        ASSERT_EQ(gort_chan_send(close_c, &v), 0);
    }
    for (int k = 0; k < CLOSE_N; k++) {
        ASSERT_EQ(gort_go(senders ? close_sender : close_receiver, (void *)(intptr_t)k), 0);
        wait_at_least(&close_started, k + 1, 30);
    }
    ASSERT_EQ(atomic_load(&close_done), 0);
    ASSERT_EQ(gort_chan_free(close_c), -EBUSY);
    if (foreign) {
        pthread_t t;
        ASSERT_EQ(pthread_create(&t, NULL, close_from_thread, NULL), 0);
        ASSERT_EQ(pthread_join(t, NULL), 0);
    } else {
        ASSERT_EQ(gort_chan_close(close_c), 0);
    }
    wait_at_least(&close_done, CLOSE_N, 30);
    if (senders && buffered) {
        /* The buffered value survives the close. */
        int64_t v = 0;
        bool ok = false;
        ASSERT_EQ(gort_chan_recv(close_c, &v, &ok), 0);
        ASSERT_TRUE(ok);
        ASSERT_EQ(v, 42);
    }
    ASSERT_EQ(gort_chan_len(close_c), 0);
    ASSERT_EQ(gort_chan_free(close_c), 0);
    return 0;
}

TEST(chan_close_wakes_all_receivers)
{
    ASSERT_EQ(run_main(close_wakes_main, (void *)(intptr_t)0, 1), 0);
}

TEST(chan_close_wakes_all_senders)
{
    ASSERT_EQ(run_main(close_wakes_main, (void *)(intptr_t)1, 1), 0);
}

TEST(chan_close_from_foreign_thread_wakes_receivers)
{
    ASSERT_EQ(run_main(close_wakes_main, (void *)(intptr_t)2, 1), 0);
}

TEST(chan_close_wakes_senders_behind_full_buffer)
{
    ASSERT_EQ(run_main(close_wakes_main, (void *)(intptr_t)(1 | 4), 1), 0);
}

TEST(chan_close_from_foreign_thread_wakes_senders)
{
    ASSERT_EQ(run_main(close_wakes_main, (void *)(intptr_t)(1 | 2 | 4), 1), 0);
}

/* ---- a closed buffered channel drains first ---------------------------------- */

static int drain_main(void *arg)
{
    (void)arg;
    gort_chan_t *c = make_chan(sizeof(int64_t), 4);
    for (int64_t i = 1; i <= 3; i++)
        ASSERT_EQ(gort_chan_send(c, &i), 0);
    ASSERT_EQ(gort_chan_close(c), 0);
    ASSERT_EQ(gort_chan_len(c), 3);
    int64_t v;
    bool ok;
    for (int64_t i = 1; i <= 3; i++) {
        v = -1;
        ok = false;
        /* Mix the flavours: each must see the buffered value first. */
        if (i == 1)
            ASSERT_EQ(gort_chan_recv(c, &v, &ok), 0);
        else if (i == 2)
            ASSERT_EQ(gort_chan_try_recv(c, &v, &ok), 0);
        else
            ASSERT_EQ(gort_chan_recv_deadline(c, &v, &ok, gort_now_ns() + 10 * S), 0);
        ASSERT_TRUE(ok);
        ASSERT_EQ(v, i);
    }
    /* Now closed and empty: every receive is ready at once with ok == false
     * and a zeroed value, however often. */
    for (int k = 0; k < 3; k++) {
        v = -1;
        ok = true;
        ASSERT_EQ(gort_chan_recv(c, &v, &ok), 0);
        ASSERT_FALSE(ok);
        ASSERT_EQ(v, 0);
        v = -1;
        ok = true;
        ASSERT_EQ(gort_chan_try_recv(c, &v, &ok), 0);
        ASSERT_FALSE(ok);
        ASSERT_EQ(v, 0);
        v = -1;
        ok = true;
        ASSERT_EQ(gort_chan_recv_deadline(c, &v, &ok, gort_now_ns() + 10 * S), 0);
        ASSERT_FALSE(ok);
        ASSERT_EQ(v, 0);
    }
    ASSERT_EQ(gort_chan_recv(c, NULL, NULL), 0); /* NULL elem and ok are fine */
    ASSERT_EQ(gort_chan_len(c), 0);
    ASSERT_EQ(gort_chan_free(c), 0);
    return 0;
}

TEST(chan_recv_closed_buffered_drains_first)
{
    ASSERT_EQ(run_main(drain_main, NULL, 1), 0);
}

/* ---- send on closed, double close ------------------------------------------- */

static int send_closed_main(void *arg)
{
    (void)arg;
    for (int cap = 0; cap <= 2; cap += 2) {
        gort_chan_t *c = make_chan(sizeof(int64_t), (size_t)cap);
        ASSERT_EQ(gort_chan_close(c), 0);
        int64_t v = 1;
        ASSERT_EQ(gort_chan_send(c, &v), -EPIPE);
        ASSERT_EQ(gort_chan_try_send(c, &v), -EPIPE);
        ASSERT_EQ(gort_chan_send_deadline(c, &v, gort_now_ns() + 10 * S), -EPIPE);
        ASSERT_EQ(gort_chan_send_deadline(c, &v, gort_now_ns() - S), -EPIPE);
        /* Nothing was buffered by the failed sends. */
        ASSERT_EQ(gort_chan_len(c), 0);
        ASSERT_EQ(gort_chan_close(c), -EPIPE);
        ASSERT_EQ(gort_chan_close(c), -EPIPE);
        ASSERT_EQ(gort_chan_free(c), 0);
    }
    return 0;
}

TEST(chan_send_on_closed_and_double_close_epipe)
{
    ASSERT_EQ(run_main(send_closed_main, NULL, 1), 0);
}

/* ---- try variants --------------------------------------------------------------- */

static int try_eagain_main(void *arg)
{
    (void)arg;
    int64_t v = 3;
    bool ok = true;
    gort_chan_t *u = make_chan(sizeof(int64_t), 0);
    ASSERT_EQ(gort_chan_try_send(u, &v), -EAGAIN); /* no receiver */
    ASSERT_EQ(gort_chan_try_recv(u, &v, &ok), -EAGAIN);
    ASSERT_EQ(v, 3); /* untouched */

    gort_chan_t *b = make_chan(sizeof(int64_t), 1);
    ASSERT_EQ(gort_chan_try_recv(b, &v, &ok), -EAGAIN); /* empty */
    ASSERT_EQ(gort_chan_try_send(b, &v), 0);
    v = 4;
    ASSERT_EQ(gort_chan_try_send(b, &v), -EAGAIN); /* full */
    ASSERT_EQ(gort_chan_try_recv(b, &v, &ok), 0);
    ASSERT_TRUE(ok);
    ASSERT_EQ(v, 3);
    ASSERT_EQ(gort_chan_free(u), 0);
    ASSERT_EQ(gort_chan_free(b), 0);
    return 0;
}

TEST(chan_try_eagain)
{
    ASSERT_EQ(run_main(try_eagain_main, NULL, 1), 0);
}

/* try ops from a foreign pthread: they pair with a goroutine blocked in
 * recv (try_send) or send (try_recv) on an unbuffered channel and wake it. */
static gort_chan_t *tryf_c;
static _Atomic int tryf_phase;

static void *tryf_thread(void *arg)
{
    (void)arg;
    int64_t deadline = test_now_ns() + 60 * S;
    /* Phase 1: a goroutine waits in recv; hand it 111. -EAGAIN until the
     * receiver has queued. */
    int64_t v = 111;
    int r;
    while ((r = gort_chan_try_send(tryf_c, &v)) == -EAGAIN) {
        ASSERT_LT(test_now_ns(), deadline);
        sched_yield();
    }
    ASSERT_EQ(r, 0);
    /* Phase 2: a goroutine waits in send with 222. */
    while (atomic_load(&tryf_phase) < 2) {
        ASSERT_LT(test_now_ns(), deadline);
        sched_yield();
    }
    bool ok = false;
    v = 0;
    while ((r = gort_chan_try_recv(tryf_c, &v, &ok)) == -EAGAIN) {
        ASSERT_LT(test_now_ns(), deadline);
        sched_yield();
    }
    ASSERT_EQ(r, 0);
    ASSERT_TRUE(ok);
    ASSERT_EQ(v, 222);
    return NULL;
}

static int try_foreign_main(void *arg)
{
    (void)arg;
    tryf_c = make_chan(sizeof(int64_t), 0);
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, tryf_thread, NULL), 0);
    int64_t v = 0;
    bool ok = false;
    ASSERT_EQ(gort_chan_recv(tryf_c, &v, &ok), 0); /* woken by the thread */
    ASSERT_TRUE(ok);
    ASSERT_EQ(v, 111);
    atomic_store(&tryf_phase, 2);
    v = 222;
    ASSERT_EQ(gort_chan_send(tryf_c, &v), 0); /* taken by the thread */
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_EQ(gort_chan_free(tryf_c), 0);
    return 0;
}

TEST(chan_try_from_foreign_thread_wakes_goroutine_procs1)
{
    ASSERT_EQ(run_main(try_foreign_main, NULL, 1), 0);
}

TEST(chan_try_from_foreign_thread_wakes_goroutine_procs2)
{
    ASSERT_EQ(run_main(try_foreign_main, NULL, 2), 0);
}

/* A foreign thread feeds a buffered channel with try_send (retrying while
 * full) and closes it; a goroutine receives everything in order. */
static void *tryf_feeder(void *arg)
{
    long n = *(long *)arg;
    for (int64_t i = 0; i < n; i++) {
        int r;
        while ((r = gort_chan_try_send(tryf_c, &i)) == -EAGAIN)
            sched_yield();
        ASSERT_EQ(r, 0);
    }
    ASSERT_EQ(gort_chan_close(tryf_c), 0);
    return NULL;
}

static int try_feed_main(void *arg)
{
    (void)arg;
    long n = test_scale(100000);
    tryf_c = make_chan(sizeof(int64_t), 8);
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, tryf_feeder, &n), 0);
    int64_t want = 0, v;
    bool ok;
    for (;;) {
        ASSERT_EQ(gort_chan_recv(tryf_c, &v, &ok), 0);
        if (!ok)
            break;
        ASSERT_EQ(v, want);
        want++;
    }
    ASSERT_EQ(want, n);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_EQ(gort_chan_free(tryf_c), 0);
    return 0;
}

TEST(chan_try_send_from_foreign_thread_stream)
{
    ASSERT_EQ(run_main(try_feed_main, NULL, 2), 0);
}

/* ---- blocking calls from a foreign thread: -EPERM ----------------------------- */

static gort_chan_t *eperm_c;

static void *eperm_thread(void *arg)
{
    (void)arg;
    int64_t v = 1;
    bool ok;
    int64_t far = gort_now_ns() + 10 * S;
    ASSERT_EQ(gort_chan_send(eperm_c, &v), -EPERM);
    ASSERT_EQ(gort_chan_recv(eperm_c, &v, &ok), -EPERM);
    ASSERT_EQ(gort_chan_send_deadline(eperm_c, &v, far), -EPERM);
    ASSERT_EQ(gort_chan_recv_deadline(eperm_c, &v, &ok, far), -EPERM);
    /* The non-blocking calls work (and report that they would block). */
    ASSERT_EQ(gort_chan_try_send(eperm_c, &v), -EAGAIN);
    ASSERT_EQ(gort_chan_try_recv(eperm_c, &v, &ok), -EAGAIN);
    ASSERT_EQ(gort_chan_len(eperm_c), 0);
    ASSERT_EQ(gort_chan_cap(eperm_c), 0);
    return NULL;
}

static int eperm_main(void *arg)
{
    (void)arg;
    eperm_c = make_chan(sizeof(int64_t), 0);
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, eperm_thread, NULL), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    /* The channel was not disturbed. */
    int64_t v;
    ASSERT_EQ(gort_chan_try_recv(eperm_c, &v, NULL), -EAGAIN);
    ASSERT_EQ(gort_chan_free(eperm_c), 0);
    return 0;
}

TEST(chan_blocking_from_foreign_thread_eperm)
{
    ASSERT_EQ(run_main(eperm_main, NULL, 1), 0);
}

/* Before gort_main (no runtime at all) the blocking calls are -EPERM too,
 * and the non-blocking ones work on a buffered channel. */
TEST(chan_blocking_without_runtime_eperm)
{
    gort_chan_t *c = make_chan(sizeof(int64_t), 1);
    int64_t v = 9;
    bool ok = false;
    ASSERT_EQ(gort_chan_send(c, &v), -EPERM);
    ASSERT_EQ(gort_chan_recv(c, &v, &ok), -EPERM);
    ASSERT_EQ(gort_chan_try_send(c, &v), 0);
    ASSERT_EQ(gort_chan_try_send(c, &v), -EAGAIN);
    v = 0;
    ASSERT_EQ(gort_chan_try_recv(c, &v, &ok), 0);
    ASSERT_TRUE(ok);
    ASSERT_EQ(v, 9);
    ASSERT_EQ(gort_chan_free(c), 0);
}

/* ---- zero-size elements ------------------------------------------------------- */

static gort_chan_t *sig_c;
static _Atomic int sig_count;

static void sig_receiver(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++) {
        bool ok = false;
        ASSERT_EQ(gort_chan_recv(sig_c, NULL, &ok), 0);
        ASSERT_TRUE(ok);
        atomic_fetch_add(&sig_count, 1);
    }
}

static int zero_size_main(void *arg)
{
    (void)arg;
    /* Unbuffered signals: NULL elements both ways, a hand-off per signal. */
    sig_c = make_chan(0, 0);
    ASSERT_EQ(gort_chan_try_send(sig_c, NULL), -EAGAIN);
    ASSERT_EQ(gort_go(sig_receiver, (void *)(intptr_t)100), 0);
    for (int i = 0; i < 100; i++)
        ASSERT_EQ(gort_chan_send(sig_c, NULL), 0);
    wait_at_least(&sig_count, 100, 30);
    ASSERT_EQ(gort_chan_free(sig_c), 0);

    /* Buffered signals count. A non-NULL element pointer is ignored. */
    gort_chan_t *b = make_chan(0, 3);
    int64_t junk = 5;
    ASSERT_EQ(gort_chan_try_send(b, NULL), 0);
    ASSERT_EQ(gort_chan_send(b, &junk), 0);
    ASSERT_EQ(gort_chan_try_send(b, NULL), 0);
    ASSERT_EQ(gort_chan_len(b), 3);
    ASSERT_EQ(gort_chan_cap(b), 3);
    ASSERT_EQ(gort_chan_try_send(b, NULL), -EAGAIN);
    bool ok = false;
    for (int i = 0; i < 3; i++) {
        ok = false;
        ASSERT_EQ(gort_chan_recv(b, (i == 1) ? &junk : NULL, &ok), 0);
        ASSERT_TRUE(ok);
    }
    ASSERT_EQ(junk, 5); /* nothing copied into a zero-size element */
    ASSERT_EQ(gort_chan_try_recv(b, NULL, &ok), -EAGAIN);
    ASSERT_EQ(gort_chan_close(b), 0);
    ok = true;
    ASSERT_EQ(gort_chan_recv(b, NULL, &ok), 0);
    ASSERT_FALSE(ok);
    ASSERT_EQ(gort_chan_free(b), 0);
    return 0;
}

TEST(chan_elem_size_zero)
{
    ASSERT_EQ(run_main(zero_size_main, NULL, 2), 0);
}

/* ---- large elements are copied whole ---------------------------------------- */

typedef struct big {
    uint32_t seq;
    unsigned char bytes[1020];
} big_t;

static gort_chan_t *big_c;

static void big_fill(big_t *b, uint32_t seq)
{
    b->seq = seq;
    for (size_t i = 0; i < sizeof b->bytes; i++)
        b->bytes[i] = (unsigned char)(seq * 31 + i * 7);
}

static void big_check(const big_t *b, uint32_t seq)
{
    ASSERT_EQ(b->seq, seq);
    for (size_t i = 0; i < sizeof b->bytes; i++)
        if (b->bytes[i] != (unsigned char)(seq * 31 + i * 7))
            TEST_FAIL("element %u differs at byte %zu", seq, i);
}

static void big_sender(void *arg)
{
    uint32_t n = (uint32_t)(intptr_t)arg;
    for (uint32_t s = 0; s < n; s++) {
        big_t b;
        big_fill(&b, s);
        ASSERT_EQ(gort_chan_send(big_c, &b), 0);
        memset(&b, 0xee, sizeof b); /* the channel holds its own copy */
    }
    ASSERT_EQ(gort_chan_close(big_c), 0);
}

static int big_main(void *arg)
{
    size_t cap = (size_t)(intptr_t)arg;
    big_c = make_chan(sizeof(big_t), cap);
    uint32_t n = 2000;
    ASSERT_EQ(gort_go(big_sender, (void *)(intptr_t)n), 0);
    for (uint32_t s = 0;; s++) {
        big_t b;
        bool ok;
        memset(&b, 0x55, sizeof b);
        ASSERT_EQ(gort_chan_recv(big_c, &b, &ok), 0);
        if (!ok) {
            ASSERT_EQ(s, n);
            for (size_t i = 0; i < sizeof b.bytes; i++)
                ASSERT_EQ(b.bytes[i], 0); /* zeroed on close */
            break;
        }
        big_check(&b, s);
    }
    ASSERT_EQ(gort_chan_free(big_c), 0);
    return 0;
}

TEST(chan_large_elements_unbuffered)
{
    ASSERT_EQ(run_main(big_main, (void *)(intptr_t)0, 2), 0);
}

TEST(chan_large_elements_buffered)
{
    ASSERT_EQ(run_main(big_main, (void *)(intptr_t)7, 2), 0);
}

/* ---- free while a goroutine waits: -EBUSY ------------------------------------- */

static gort_chan_t *busy_c;
static _Atomic int busy_started;
static _Atomic int busy_done;

static void busy_waiter(void *arg)
{
    bool sender = arg != NULL;
    int64_t v = 8;
    atomic_fetch_add(&busy_started, 1);
    if (sender) {
        ASSERT_EQ(gort_chan_send(busy_c, &v), 0);
    } else {
        ASSERT_EQ(gort_chan_recv(busy_c, &v, NULL), 0);
        ASSERT_EQ(v, 9);
    }
    atomic_fetch_add(&busy_done, 1);
}

static int free_busy_main(void *arg)
{
    (void)arg;
    busy_c = make_chan(sizeof(int64_t), 0);
    /* A waiting receiver. */
    ASSERT_EQ(gort_go(busy_waiter, NULL), 0);
    wait_at_least(&busy_started, 1, 30);
    ASSERT_EQ(gort_chan_free(busy_c), -EBUSY);
    ASSERT_EQ(gort_chan_free(busy_c), -EBUSY); /* still usable: nothing freed */
    int64_t v = 9;
    ASSERT_EQ(gort_chan_send(busy_c, &v), 0);
    wait_at_least(&busy_done, 1, 30);
    /* A waiting sender. */
    ASSERT_EQ(gort_go(busy_waiter, (void *)1), 0);
    wait_at_least(&busy_started, 2, 30);
    ASSERT_EQ(gort_chan_free(busy_c), -EBUSY);
    ASSERT_EQ(gort_chan_recv(busy_c, &v, NULL), 0);
    ASSERT_EQ(v, 8);
    wait_at_least(&busy_done, 2, 30);
    ASSERT_EQ(gort_chan_free(busy_c), 0);
    return 0;
}

TEST(chan_free_while_waiting_ebusy)
{
    ASSERT_EQ(run_main(free_busy_main, NULL, 1), 0);
}

/* ---- deadline variants --------------------------------------------------------- */

static int deadline_timeout_main(void *arg)
{
    (void)arg;
    gort_chan_t *u = make_chan(sizeof(int64_t), 0);
    gort_chan_t *full = make_chan(sizeof(int64_t), 1);
    gort_chan_t *empty = make_chan(sizeof(int64_t), 3);
    int64_t v = 1;
    bool ok = true;
    ASSERT_EQ(gort_chan_send(full, &v), 0);

    for (int k = 0; k < 4; k++) {
        int64_t dl = gort_now_ns() + 15 * MS;
        int r;
        v = -3;
        if (k == 0)
            r = gort_chan_recv_deadline(u, &v, &ok, dl);
        else if (k == 1)
            r = gort_chan_send_deadline(u, &v, dl);
        else if (k == 2)
            r = gort_chan_send_deadline(full, &v, dl);
        else
            r = gort_chan_recv_deadline(empty, &v, &ok, dl);
        ASSERT_EQ(r, -ETIMEDOUT);
        /* Never before the deadline (how late is not checked). */
        ASSERT_GE(gort_now_ns(), dl);
        ASSERT_EQ(v, -3);
    }
    /* No stale waiter was left behind on either channel. */
    ASSERT_EQ(gort_chan_try_send(u, &v), -EAGAIN);
    ASSERT_EQ(gort_chan_len(full), 1);
    ASSERT_EQ(gort_chan_free(u), 0);
    ASSERT_EQ(gort_chan_free(full), 0);
    ASSERT_EQ(gort_chan_free(empty), 0);
    return 0;
}

TEST(chan_deadline_times_out)
{
    ASSERT_EQ(run_main(deadline_timeout_main, NULL, 1), 0);
}

TEST(chan_deadline_times_out_procs2)
{
    ASSERT_EQ(run_main(deadline_timeout_main, NULL, 2), 0);
}

static gort_chan_t *dl_c;

static void dl_late_sender(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_sleep_ns(10 * MS), 0);
    int64_t v = 4242;
    ASSERT_EQ(gort_chan_send(dl_c, &v), 0);
}

static void dl_late_receiver(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_sleep_ns(10 * MS), 0);
    int64_t v = 0;
    bool ok = false;
    ASSERT_EQ(gort_chan_recv(dl_c, &v, &ok), 0);
    ASSERT_TRUE(ok);
    ASSERT_EQ(v, 4343);
}

static int deadline_success_main(void *arg)
{
    (void)arg;
    dl_c = make_chan(sizeof(int64_t), 0);
    /* A partner that arrives well within the deadline. */
    ASSERT_EQ(gort_go(dl_late_sender, NULL), 0);
    int64_t v = 0;
    bool ok = false;
    ASSERT_EQ(gort_chan_recv_deadline(dl_c, &v, &ok, gort_now_ns() + 60 * S), 0);
    ASSERT_TRUE(ok);
    ASSERT_EQ(v, 4242);
    ASSERT_EQ(gort_go(dl_late_receiver, NULL), 0);
    v = 4343;
    ASSERT_EQ(gort_chan_send_deadline(dl_c, &v, gort_now_ns() + 60 * S), 0);
    /* The deadline timers were cancelled: sleeping past nothing breaks. */
    ASSERT_EQ(gort_sleep_ns(5 * MS), 0);
    /* Ready at once: the deadline does not matter. */
    gort_chan_t *b = make_chan(sizeof(int64_t), 1);
    v = 5;
    ASSERT_EQ(gort_chan_send_deadline(b, &v, gort_now_ns() + 60 * S), 0);
    v = 0;
    ASSERT_EQ(gort_chan_recv_deadline(b, &v, &ok, gort_now_ns() + 60 * S), 0);
    ASSERT_TRUE(ok);
    ASSERT_EQ(v, 5);
    ASSERT_EQ(gort_chan_free(b), 0);
    /* dl_late_receiver may still be exiting; it no longer uses dl_c. */
    ASSERT_EQ(gort_chan_free(dl_c), 0);
    return 0;
}

TEST(chan_deadline_partner_in_time)
{
    ASSERT_EQ(run_main(deadline_success_main, NULL, 1), 0);
}

TEST(chan_deadline_partner_in_time_procs2)
{
    ASSERT_EQ(run_main(deadline_success_main, NULL, 2), 0);
}

/* A deadline in the past: like try, but -ETIMEDOUT instead of -EAGAIN. */
static int deadline_past_main(void *arg)
{
    (void)arg;
    int64_t past[] = {gort_now_ns() - 1, gort_now_ns() - 10 * S, 1, -1, INT64_MIN};
    gort_chan_t *b = make_chan(sizeof(int64_t), 1);
    gort_chan_t *u = make_chan(sizeof(int64_t), 0);
    for (size_t k = 0; k < sizeof past / sizeof past[0]; k++) {
        int64_t v = 10 + (int64_t)k;
        bool ok = false;
        ASSERT_EQ(gort_chan_recv_deadline(b, &v, &ok, past[k]), -ETIMEDOUT);
        ASSERT_EQ(gort_chan_recv_deadline(u, &v, &ok, past[k]), -ETIMEDOUT);
        ASSERT_EQ(gort_chan_send_deadline(u, &v, past[k]), -ETIMEDOUT);
        ASSERT_EQ(gort_chan_send_deadline(b, &v, past[k]), 0); /* space: done */
        ASSERT_EQ(gort_chan_send_deadline(b, &v, past[k]), -ETIMEDOUT);
        int64_t got = 0;
        ASSERT_EQ(gort_chan_recv_deadline(b, &got, &ok, past[k]), 0); /* ready: done */
        ASSERT_TRUE(ok);
        ASSERT_EQ(got, v);
    }
    ASSERT_EQ(gort_chan_free(b), 0);
    ASSERT_EQ(gort_chan_free(u), 0);
    return 0;
}

TEST(chan_deadline_in_past_like_try)
{
    ASSERT_EQ(run_main(deadline_past_main, NULL, 1), 0);
}

/* Deadline 0 is in the past as well (the clock is CLOCK_MONOTONIC, always
 * > 0): it must not mean "no deadline". Checked from a helper goroutine so
 * that a hang is reported as such instead of as the case's timeout. */
static gort_chan_t *dl0_c, *dl0_done;

static void dl0_worker(void *arg)
{
    bool send = arg != NULL;
    int64_t v = 1;
    int r =
        send ? gort_chan_send_deadline(dl0_c, &v, 0) : gort_chan_recv_deadline(dl0_c, &v, NULL, 0);
    int64_t rr = r;
    ASSERT_EQ(gort_chan_send(dl0_done, &rr), 0);
}

static int deadline_zero_main(void *arg)
{
    (void)arg;
    dl0_c = make_chan(sizeof(int64_t), 0);
    dl0_done = make_chan(sizeof(int64_t), 2);
    for (int send = 0; send < 2; send++) {
        ASSERT_EQ(gort_go(dl0_worker, send ? (void *)1 : NULL), 0);
        int64_t r = 0;
        int rc = gort_chan_recv_deadline(dl0_done, &r, NULL, gort_now_ns() + 5 * S);
        if (rc == -ETIMEDOUT)
            TEST_FAIL("gort_chan_%s_deadline(deadline 0) still blocked after 5 s; "
                      "expected -ETIMEDOUT at once",
                      send ? "send" : "recv");
        ASSERT_EQ(rc, 0);
        ASSERT_EQ(r, -ETIMEDOUT);
    }
    ASSERT_EQ(gort_chan_free(dl0_c), 0);
    ASSERT_EQ(gort_chan_free(dl0_done), 0);
    return 0;
}

TEST_TIMEOUT(chan_deadline_zero_is_past, 30)
{
    ASSERT_EQ(run_main(deadline_zero_main, NULL, 1), 0);
}

/* A waiter with a deadline is woken by close before its deadline. */
static void dl_closer(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_sleep_ns(10 * MS), 0);
    ASSERT_EQ(gort_chan_close(dl_c), 0);
}

static int deadline_close_main(void *arg)
{
    (void)arg;
    dl_c = make_chan(sizeof(int64_t), 0);
    ASSERT_EQ(gort_go(dl_closer, NULL), 0);
    int64_t v = 5;
    ASSERT_EQ(gort_chan_send_deadline(dl_c, &v, gort_now_ns() + 60 * S), -EPIPE);
    bool ok = true;
    v = 6;
    ASSERT_EQ(gort_chan_recv_deadline(dl_c, &v, &ok, gort_now_ns() + 60 * S), 0);
    ASSERT_FALSE(ok);
    ASSERT_EQ(v, 0);
    ASSERT_EQ(gort_chan_free(dl_c), 0);
    return 0;
}

TEST(chan_deadline_woken_by_close)
{
    ASSERT_EQ(run_main(deadline_close_main, NULL, 2), 0);
}
