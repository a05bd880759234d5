/*
 * stress_chan.c - 1,000,000 messages (divided by the build's test scale)
 * through many-to-many channels: 8 producers, 8 consumers, on a buffered
 * and on an unbuffered channel, at GOMAXPROCS 1, 2 and 4; then the same
 * through selects over a buffered and an unbuffered channel at once (a
 * consumer sets a closed channel's case to NULL, Go's idiom), and through
 * receives with short deadlines that keep expiring.
 *
 * Producer p sends the values v < N with v % 8 == p, in increasing order.
 * Every received value is checked: a per-value seen bitmap (nothing
 * duplicated; at the end nothing lost), the sum and the xor of all values,
 * the count, and FIFO per producer (a consumer sees each producer's values
 * in increasing order: a channel delivers in the order values entered it,
 * and a producer's next send starts after its previous one completed; with
 * two channels this holds per channel, not across them).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gort_util.h"

#define NPROD 8
#define NCONS 8
#define MS    ((int64_t)1000000)

enum mode { MODE_PLAIN, MODE_SELECT, MODE_DEADLINE };

typedef struct cfg {
    size_t cap;     /* MODE_PLAIN, MODE_DEADLINE: the channel's capacity */
    enum mode mode; /* MODE_SELECT: one channel of cap 64, one unbuffered */
} cfg_t;

static cfg_t cfg;
static long n_msgs;
static gort_chan_t *ch[2];
static _Atomic uint64_t *seen;
static gort_waitgroup_t prod_wg, cons_wg;
static _Atomic uint64_t total_count, total_sum, total_xor;
static _Atomic uint64_t total_timeouts, per_chan[2];

static void producer(void *arg)
{
    int p = (int)(intptr_t)arg;
    for (int64_t v = p; v < n_msgs; v += NPROD) {
        if (cfg.mode == MODE_SELECT) {
            gort_select_case_t cs[2] = {
                {.chan = ch[0], .dir = GORT_SELECT_SEND, .elem = &v},
                {.chan = ch[1], .dir = GORT_SELECT_SEND, .elem = &v},
            };
            int k = gort_select(cs, 2, 0);
            ASSERT_TRUE(k == 0 || k == 1);
            ASSERT_TRUE(cs[k].ok);
        } else {
            ASSERT_EQ(gort_chan_send(ch[0], &v), 0);
        }
    }
    ASSERT_EQ(gort_waitgroup_done(&prod_wg), 0);
}

static void consume_value(int64_t v, int64_t *last, uint64_t *count, uint64_t *sum, uint64_t *x)
{
    if (v < 0 || v >= n_msgs)
        TEST_FAIL("received %lld, not a value that was sent", (long long)v);
    uint64_t bit = (uint64_t)1 << (v % 64);
    uint64_t old = atomic_fetch_or_explicit(&seen[v / 64], bit, memory_order_relaxed);
    if (old & bit)
        TEST_FAIL("value %lld received twice", (long long)v);
    int p = (int)(v % NPROD);
    if (v <= last[p])
        TEST_FAIL("producer %d's value %lld received after its %lld", p, (long long)v,
                  (long long)last[p]);
    last[p] = v;
    (*count)++;
    *sum += (uint64_t)v;
    *x ^= (uint64_t)v;
}

static void consumer(void *arg)
{
    (void)arg;
    int64_t last[2][NPROD]; /* per channel, per producer */
    for (int p = 0; p < NPROD; p++)
        last[0][p] = last[1][p] = -1;
    uint64_t count = 0, sum = 0, x = 0, timeouts = 0, from[2] = {0, 0};
    if (cfg.mode == MODE_SELECT) {
        gort_chan_t *live[2] = {ch[0], ch[1]};
        while (live[0] || live[1]) {
            int64_t v = -1;
            gort_select_case_t cs[2] = {
                {.chan = live[0], .dir = GORT_SELECT_RECV, .elem = &v},
                {.chan = live[1], .dir = GORT_SELECT_RECV, .elem = &v},
            };
            int k = gort_select(cs, 2, 0);
            ASSERT_TRUE(k == 0 || k == 1);
            if (!cs[k].ok) {
                ASSERT_EQ(v, 0);
                live[k] = NULL; /* closed: never ready again */
                continue;
            }
            from[k]++;
            consume_value(v, last[k], &count, &sum, &x);
        }
    } else {
        for (;;) {
            int64_t v = -1;
            bool ok = false;
            if (cfg.mode == MODE_DEADLINE) {
                int r = gort_chan_recv_deadline(ch[0], &v, &ok, gort_now_ns() + MS / 20);
                if (r == -ETIMEDOUT) {
                    ASSERT_EQ(v, -1);
                    timeouts++;
                    continue;
                }
                ASSERT_EQ(r, 0);
            } else {
                ASSERT_EQ(gort_chan_recv(ch[0], &v, &ok), 0);
            }
            if (!ok) {
                ASSERT_EQ(v, 0);
                break;
            }
            consume_value(v, last[0], &count, &sum, &x);
        }
    }
    atomic_fetch_add(&total_count, count);
    atomic_fetch_add(&total_sum, sum);
    atomic_fetch_xor(&total_xor, x);
    atomic_fetch_add(&total_timeouts, timeouts);
    atomic_fetch_add(&per_chan[0], from[0]);
    atomic_fetch_add(&per_chan[1], from[1]);
    ASSERT_EQ(gort_waitgroup_done(&cons_wg), 0);
}

static int stress_main(void *arg)
{
    (void)arg;
    int nch = cfg.mode == MODE_SELECT ? 2 : 1;
    for (int i = 0; i < nch; i++) {
        size_t cap = cfg.mode == MODE_SELECT ? (i == 0 ? 64 : 0) : cfg.cap;
        ASSERT_EQ(gort_chan_make(&ch[i], sizeof(int64_t), cap), 0);
    }
    ASSERT_EQ(gort_waitgroup_add(&prod_wg, NPROD), 0);
    ASSERT_EQ(gort_waitgroup_add(&cons_wg, NCONS), 0);
    /* Interleave the starts so that both sides run from the beginning. */
    for (int i = 0; i < NPROD || i < NCONS; i++) {
        if (i < NCONS)
            ASSERT_EQ(gort_go(consumer, NULL), 0);
        if (i < NPROD)
            ASSERT_EQ(gort_go(producer, (void *)(intptr_t)i), 0);
    }
    ASSERT_EQ(gort_waitgroup_wait(&prod_wg), 0);
    for (int i = 0; i < nch; i++)
        ASSERT_EQ(gort_chan_close(ch[i]), 0);
    ASSERT_EQ(gort_waitgroup_wait(&cons_wg), 0);

    uint64_t n = (uint64_t)n_msgs, want_sum = n * (n - 1) / 2, want_xor = 0;
    for (uint64_t v = 0; v < n; v++)
        want_xor ^= v;
    ASSERT_EQ(atomic_load(&total_count), n);
    ASSERT_EQ(atomic_load(&total_sum), want_sum);
    ASSERT_EQ(atomic_load(&total_xor), want_xor);
    for (long v = 0; v < n_msgs; v++) {
        if (!(atomic_load_explicit(&seen[v / 64], memory_order_relaxed) &
              ((uint64_t)1 << (v % 64))))
            TEST_FAIL("value %ld was lost", v);
    }
    if (cfg.mode == MODE_SELECT)
        test_log("select: %llu via the buffered channel, %llu via the unbuffered one",
                 (unsigned long long)atomic_load(&per_chan[0]),
                 (unsigned long long)atomic_load(&per_chan[1]));
    if (cfg.mode == MODE_DEADLINE)
        test_log("deadline: %llu receives timed out",
                 (unsigned long long)atomic_load(&total_timeouts));
    for (int i = 0; i < nch; i++) {
        ASSERT_EQ(gort_chan_len(ch[i]), 0);
        ASSERT_EQ(gort_chan_free(ch[i]), 0); /* no waiter left */
    }
    return 0;
}

static void run(enum mode mode, size_t cap, int procs)
{
    cfg.mode = mode;
    cfg.cap = cap;
    n_msgs = test_scale(1000000);
    seen = calloc((size_t)(n_msgs + 63) / 64, sizeof *seen);
    ASSERT_TRUE(seen != NULL);
    gort_waitgroup_init(&prod_wg);
    gort_waitgroup_init(&cons_wg);
    int64_t t0 = test_now_ns();
    ASSERT_EQ(run_main(stress_main, NULL, procs), 0);
    test_log("%ld messages, GOMAXPROCS %d: %.3f s", n_msgs, procs,
             (double)(test_now_ns() - t0) / 1e9);
    free(seen);
}

TEST_TIMEOUT(chan_mpmc_buffered_procs1, 240)
{
    run(MODE_PLAIN, 64, 1);
}

TEST_TIMEOUT(chan_mpmc_buffered_procs2, 240)
{
    run(MODE_PLAIN, 64, 2);
}

TEST_TIMEOUT(chan_mpmc_buffered_procs4, 240)
{
    run(MODE_PLAIN, 64, 4);
}

TEST_TIMEOUT(chan_mpmc_unbuffered_procs1, 240)
{
    run(MODE_PLAIN, 0, 1);
}

TEST_TIMEOUT(chan_mpmc_unbuffered_procs2, 240)
{
    run(MODE_PLAIN, 0, 2);
}

TEST_TIMEOUT(chan_mpmc_unbuffered_procs4, 240)
{
    run(MODE_PLAIN, 0, 4);
}

TEST_TIMEOUT(chan_mpmc_select_two_channels_procs1, 240)
{
    run(MODE_SELECT, 0, 1);
}

TEST_TIMEOUT(chan_mpmc_select_two_channels_procs4, 240)
{
    run(MODE_SELECT, 0, 4);
}

TEST_TIMEOUT(chan_mpmc_recv_deadline_expiring_procs2, 240)
{
    run(MODE_DEADLINE, 0, 2);
}

TEST_TIMEOUT(chan_mpmc_recv_deadline_expiring_procs4, 240)
{
    run(MODE_DEADLINE, 4, 4);
}
