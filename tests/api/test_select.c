/*
 * test_select.c - gort_select and gort_select_deadline against Go's select
 * (select.go): a ready case is picked, NONBLOCK gives -EAGAIN when nothing
 * is ready, send and receive cases mixed, the same channel in several cases
 * (and a select never pairs with itself), a send case on a closed channel
 * is chosen with ok == false, NULL channels are never ready, the choice
 * among ready cases is uniform (chi-square), deadlines, argument checks,
 * the contexts (NONBLOCK from a foreign thread), more cases than fit on the
 * stack, no waiter left queued after a select returns, and selects over the
 * same channels in opposite orders never deadlock.
 *
 * The chi-square tests reject uniformity only at p = 0.0001 (stricter than
 * needed to catch a real bias with 40,000 rounds, so that a correct
 * implementation fails one run in ten thousand).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gort_util.h"

#define MS ((int64_t)1000000)
#define S  ((int64_t)1000000000)

static gort_chan_t *make_chan(size_t elem_size, size_t cap)
{
    gort_chan_t *c = NULL;
    ASSERT_EQ(gort_chan_make(&c, elem_size, cap), 0);
    return c;
}

static gort_select_case_t rcase(gort_chan_t *c, void *elem)
{
    gort_select_case_t cs = {.chan = c, .dir = GORT_SELECT_RECV, .elem = elem, .ok = false};
    return cs;
}

static gort_select_case_t scase(gort_chan_t *c, void *elem)
{
    gort_select_case_t cs = {.chan = c, .dir = GORT_SELECT_SEND, .elem = elem, .ok = false};
    return cs;
}

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

/* ---- a ready case is picked ------------------------------------------------- */

static int picks_ready_main(void *arg)
{
    (void)arg;
    gort_chan_t *a = make_chan(sizeof(int64_t), 1);
    gort_chan_t *b = make_chan(sizeof(int64_t), 1);
    gort_chan_t *c = make_chan(sizeof(int64_t), 1);
    int64_t va = -1, vb = -1, vc = -1, v = 31;
    ASSERT_EQ(gort_chan_send(b, &v), 0);
    for (unsigned flags = 0; flags <= GORT_SELECT_NONBLOCK; flags++) {
        gort_select_case_t cs[5] = {rcase(a, &va), rcase(NULL, &va), rcase(b, &vb), scase(NULL, &v),
                                    rcase(c, &vc)};
        for (int i = 0; i < 5; i++)
            cs[i].ok = true; /* must be overwritten */
        ASSERT_EQ(gort_select(cs, 5, flags), 2);
        ASSERT_TRUE(cs[2].ok);
        ASSERT_EQ(vb, 31);
        ASSERT_EQ(va, -1);
        ASSERT_EQ(vc, -1);
        for (int i = 0; i < 5; i++)
            if (i != 2)
                ASSERT_FALSE(cs[i].ok);
        ASSERT_EQ(gort_chan_len(b), 0);
        vb = -1;
        ASSERT_EQ(gort_chan_send(b, &v), 0);
    }
    /* recv with a NULL elem discards the value. */
    gort_select_case_t d = rcase(b, NULL);
    ASSERT_EQ(gort_select(&d, 1, 0), 0);
    ASSERT_TRUE(d.ok);
    ASSERT_EQ(gort_chan_len(b), 0);
    ASSERT_EQ(gort_chan_free(a), 0);
    ASSERT_EQ(gort_chan_free(b), 0);
    ASSERT_EQ(gort_chan_free(c), 0);
    return 0;
}

TEST(select_picks_ready_case)
{
    ASSERT_EQ(run_main(picks_ready_main, NULL, 1), 0);
}

/* ---- NONBLOCK: -EAGAIN when nothing is ready --------------------------------- */

static int nonblock_main(void *arg)
{
    (void)arg;
    gort_chan_t *u = make_chan(sizeof(int64_t), 0);
    gort_chan_t *full = make_chan(sizeof(int64_t), 1);
    gort_chan_t *empty = make_chan(sizeof(int64_t), 1);
    int64_t v = 1, w = -5;
    ASSERT_EQ(gort_chan_send(full, &v), 0);
    gort_select_case_t cs[5] = {rcase(u, &w), scase(u, &v), scase(full, &v), rcase(empty, &w),
                                rcase(NULL, &w)};
    ASSERT_EQ(gort_select(cs, 5, GORT_SELECT_NONBLOCK), -EAGAIN);
    ASSERT_EQ(w, -5);
    for (int i = 0; i < 5; i++)
        ASSERT_FALSE(cs[i].ok);
    /* Nothing changed. */
    ASSERT_EQ(gort_chan_len(full), 1);
    ASSERT_EQ(gort_chan_len(empty), 0);
    /* No cases, or only NULL channels. */
    ASSERT_EQ(gort_select(NULL, 0, GORT_SELECT_NONBLOCK), -EAGAIN);
    ASSERT_EQ(gort_select(&cs[4], 1, GORT_SELECT_NONBLOCK), -EAGAIN);
    ASSERT_EQ(gort_chan_free(u), 0);
    ASSERT_EQ(gort_chan_free(full), 0);
    ASSERT_EQ(gort_chan_free(empty), 0);
    return 0;
}

TEST(select_nonblock_eagain)
{
    ASSERT_EQ(run_main(nonblock_main, NULL, 1), 0);
}

/* ---- send and receive cases mixed ---------------------------------------------- */

static gort_chan_t *mix_a, *mix_b;
static _Atomic int mix_step;

static void mix_partner(void *arg)
{
    (void)arg;
    /* Step 1: take from mix_a (the select's send case). */
    wait_at_least(&mix_step, 1, 30);
    ASSERT_EQ(gort_sleep_ns(5 * MS), 0);
    int64_t v = 0;
    bool ok = false;
    ASSERT_EQ(gort_chan_recv(mix_a, &v, &ok), 0);
    ASSERT_TRUE(ok);
    ASSERT_EQ(v, 700);
    /* Step 2: send on mix_b (the select's receive case). */
    wait_at_least(&mix_step, 2, 30);
    ASSERT_EQ(gort_sleep_ns(5 * MS), 0);
    v = 800;
    ASSERT_EQ(gort_chan_send(mix_b, &v), 0);
}

static int mixed_main(void *arg)
{
    (void)arg;
    gort_chan_t *full = make_chan(sizeof(int64_t), 1);
    gort_chan_t *space = make_chan(sizeof(int64_t), 1);
    gort_chan_t *empty = make_chan(sizeof(int64_t), 1);
    int64_t one = 1, out = 600, in = -1;
    ASSERT_EQ(gort_chan_send(full, &one), 0);
    /* Only the send case on `space` is ready. */
    gort_select_case_t cs[3] = {scase(full, &one), rcase(empty, &in), scase(space, &out)};
    ASSERT_EQ(gort_select(cs, 3, 0), 2);
    ASSERT_TRUE(cs[2].ok);
    int64_t v = 0;
    ASSERT_EQ(gort_chan_recv(space, &v, NULL), 0);
    ASSERT_EQ(v, 600);

    /* Blocking: a send case and a receive case on unbuffered channels; the
     * partner completes first the send, then (next select) the receive. */
    mix_a = make_chan(sizeof(int64_t), 0);
    mix_b = make_chan(sizeof(int64_t), 0);
    ASSERT_EQ(gort_go(mix_partner, NULL), 0);
    int64_t sendv = 700;
    in = -1;
    gort_select_case_t bl[2] = {rcase(mix_b, &in), scase(mix_a, &sendv)};
    atomic_store(&mix_step, 1);
    ASSERT_EQ(gort_select(bl, 2, 0), 1);
    ASSERT_TRUE(bl[1].ok);
    ASSERT_FALSE(bl[0].ok);
    ASSERT_EQ(in, -1);
    atomic_store(&mix_step, 2);
    ASSERT_EQ(gort_select(bl, 2, 0), 0);
    ASSERT_TRUE(bl[0].ok);
    ASSERT_FALSE(bl[1].ok);
    ASSERT_EQ(in, 800);
    /* Neither select left a waiter behind. */
    ASSERT_EQ(gort_chan_try_recv(mix_a, &v, NULL), -EAGAIN);
    ASSERT_EQ(gort_chan_try_send(mix_b, &v), -EAGAIN);
    ASSERT_EQ(gort_chan_free(mix_a), 0);
    ASSERT_EQ(gort_chan_free(mix_b), 0);
    ASSERT_EQ(gort_chan_free(full), 0);
    ASSERT_EQ(gort_chan_free(space), 0);
    ASSERT_EQ(gort_chan_free(empty), 0);
    return 0;
}

TEST(select_send_and_recv_cases_mixed)
{
    ASSERT_EQ(run_main(mixed_main, NULL, 1), 0);
}

TEST(select_send_and_recv_cases_mixed_procs2)
{
    ASSERT_EQ(run_main(mixed_main, NULL, 2), 0);
}

/* ---- a select woken by one channel leaves no waiter on the others ------------- */

static gort_chan_t *wk_chans[3];

static void wk_sender(void *arg)
{
    int idx = (int)(intptr_t)arg;
    ASSERT_EQ(gort_sleep_ns(5 * MS), 0);
    int64_t v = 100 + idx;
    ASSERT_EQ(gort_chan_send(wk_chans[idx], &v), 0);
}

static int woken_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        wk_chans[i] = make_chan(sizeof(int64_t), i == 2 ? 4 : 0);
    for (int round = 0; round < 30; round++) {
        int idx = round % 3;
        int64_t vals[3] = {-1, -1, -1};
        gort_select_case_t cs[3];
        for (int i = 0; i < 3; i++)
            cs[i] = rcase(wk_chans[i], &vals[i]);
        ASSERT_EQ(gort_go(wk_sender, (void *)(intptr_t)idx), 0);
        ASSERT_EQ(gort_select(cs, 3, 0), idx);
        ASSERT_TRUE(cs[idx].ok);
        ASSERT_EQ(vals[idx], 100 + idx);
        for (int i = 0; i < 3; i++) {
            if (i != idx)
                ASSERT_EQ(vals[i], -1);
        }
    }
    /* A stale sudog would take these (or make free fail). */
    int64_t v = 1;
    ASSERT_EQ(gort_chan_try_send(wk_chans[0], &v), -EAGAIN);
    ASSERT_EQ(gort_chan_try_send(wk_chans[1], &v), -EAGAIN);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(gort_chan_free(wk_chans[i]), 0);
    return 0;
}

TEST(select_wakeup_dequeues_other_cases)
{
    ASSERT_EQ(run_main(woken_main, NULL, 2), 0);
}

/* ---- the same channel in several cases -------------------------------------- */

static gort_chan_t *same_c;

static void same_sender(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_sleep_ns(5 * MS), 0);
    int64_t v = 55;
    ASSERT_EQ(gort_chan_send(same_c, &v), 0);
}

static int same_twice_main(void *arg)
{
    (void)arg;
    /* Ready: both receive cases on one buffered channel are eligible; over
     * 200 rounds each must be chosen (a fixed choice fails with certainty,
     * a uniform one with probability 2^-199). */
    gort_chan_t *b = make_chan(sizeof(int64_t), 1);
    int hits[2] = {0, 0};
    for (int64_t r = 0; r < 200; r++) {
        int64_t x = -1, y = -1;
        ASSERT_EQ(gort_chan_send(b, &r), 0);
        gort_select_case_t cs[2] = {rcase(b, &x), rcase(b, &y)};
        int k = gort_select(cs, 2, 0);
        ASSERT_TRUE(k == 0 || k == 1);
        ASSERT_TRUE(cs[k].ok);
        ASSERT_FALSE(cs[1 - k].ok);
        ASSERT_EQ(k == 0 ? x : y, r);
        ASSERT_EQ(k == 0 ? y : x, -1);
        hits[k]++;
    }
    ASSERT_GT(hits[0], 0);
    ASSERT_GT(hits[1], 0);

    /* Send and receive on the same buffered channel: with one slot free and
     * nothing buffered, only the send can proceed. */
    int64_t out = 9, in = -1;
    gort_select_case_t sr[2] = {rcase(b, &in), scase(b, &out)};
    ASSERT_EQ(gort_select(sr, 2, 0), 1);
    /* Now full: only the receive can. */
    ASSERT_EQ(gort_select(sr, 2, 0), 0);
    ASSERT_EQ(in, 9);

    /* Blocking with the same unbuffered channel twice: a sender wakes the
     * select once, and both sudogs are gone afterwards. */
    same_c = make_chan(sizeof(int64_t), 0);
    for (int round = 0; round < 20; round++) {
        int64_t x = -1, y = -1;
        gort_select_case_t cs[3] = {rcase(same_c, &x), rcase(NULL, NULL), rcase(same_c, &y)};
        ASSERT_EQ(gort_go(same_sender, NULL), 0);
        int k = gort_select(cs, 3, 0);
        ASSERT_TRUE(k == 0 || k == 2);
        ASSERT_EQ(k == 0 ? x : y, 55);
        ASSERT_EQ(k == 0 ? y : x, -1);
    }
    int64_t v = 0;
    ASSERT_EQ(gort_chan_try_send(same_c, &v), -EAGAIN);
    ASSERT_EQ(gort_chan_free(same_c), 0);
    ASSERT_EQ(gort_chan_free(b), 0);
    return 0;
}

TEST(select_same_channel_twice)
{
    ASSERT_EQ(run_main(same_twice_main, NULL, 2), 0);
}

/* A select with a send and a receive case on the same unbuffered channel
 * must not communicate with itself (Go's rule): it times out. */
static int self_pair_main(void *arg)
{
    (void)arg;
    gort_chan_t *u = make_chan(sizeof(int64_t), 0);
    int64_t out = 1, in = -1;
    gort_select_case_t cs[2] = {scase(u, &out), rcase(u, &in)};
    ASSERT_EQ(gort_select(cs, 2, GORT_SELECT_NONBLOCK), -EAGAIN);
    int64_t dl = gort_now_ns() + 20 * MS;
    ASSERT_EQ(gort_select_deadline(cs, 2, dl), -ETIMEDOUT);
    ASSERT_GE(gort_now_ns(), dl);
    ASSERT_EQ(in, -1);
    ASSERT_FALSE(cs[0].ok);
    ASSERT_FALSE(cs[1].ok);
    ASSERT_EQ(gort_chan_free(u), 0);
    return 0;
}

TEST(select_never_pairs_with_itself)
{
    ASSERT_EQ(run_main(self_pair_main, NULL, 1), 0);
}

/* ---- closed channels ---------------------------------------------------------- */

static gort_chan_t *cl_c;

static void cl_closer(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_sleep_ns(10 * MS), 0);
    ASSERT_EQ(gort_chan_close(cl_c), 0);
}

static int closed_main(void *arg)
{
    (void)arg;
    gort_chan_t *c = make_chan(sizeof(int64_t), 0);
    gort_chan_t *never = make_chan(sizeof(int64_t), 0);
    ASSERT_EQ(gort_chan_close(c), 0);
    int64_t out = 3, in = -1;
    /* A send case on a closed channel is ready, with ok == false. */
    for (unsigned flags = 0; flags <= GORT_SELECT_NONBLOCK; flags++) {
        gort_select_case_t cs[2] = {rcase(never, &in), scase(c, &out)};
        cs[1].ok = true;
        ASSERT_EQ(gort_select(cs, 2, flags), 1);
        ASSERT_FALSE(cs[1].ok);
        ASSERT_FALSE(cs[0].ok);
    }
    /* A receive case on a closed channel: ok == false, value zeroed. */
    in = -1;
    gort_select_case_t r[2] = {scase(never, &out), rcase(c, &in)};
    r[1].ok = true;
    ASSERT_EQ(gort_select(r, 2, 0), 1);
    ASSERT_FALSE(r[1].ok);
    ASSERT_EQ(in, 0);

    /* Blocked selects woken by close: the send case, then the receive. */
    for (int dir = 0; dir < 2; dir++) {
        cl_c = make_chan(sizeof(int64_t), 0);
        ASSERT_EQ(gort_go(cl_closer, NULL), 0);
        in = -1;
        gort_select_case_t b[2] = {rcase(never, &in), dir ? rcase(cl_c, &in) : scase(cl_c, &out)};
        b[1].ok = true;
        ASSERT_EQ(gort_select(b, 2, 0), 1);
        ASSERT_FALSE(b[1].ok);
        if (dir)
            ASSERT_EQ(in, 0);
        ASSERT_EQ(gort_chan_try_send(never, &out), -EAGAIN);
        ASSERT_EQ(gort_chan_free(cl_c), 0);
    }
    ASSERT_EQ(gort_chan_free(c), 0);
    ASSERT_EQ(gort_chan_free(never), 0);
    return 0;
}

TEST(select_closed_channel_cases)
{
    ASSERT_EQ(run_main(closed_main, NULL, 2), 0);
}

/* ---- NULL channels are never ready -------------------------------------------- */

static gort_chan_t *nul_c;

static void nul_sender(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_sleep_ns(10 * MS), 0);
    int64_t v = 12;
    ASSERT_EQ(gort_chan_send(nul_c, &v), 0);
}

static int null_cases_main(void *arg)
{
    (void)arg;
    nul_c = make_chan(sizeof(int64_t), 0);
    int64_t v = -1, junk = 5;
    gort_select_case_t cs[4] = {rcase(NULL, &junk), scase(NULL, &junk), rcase(nul_c, &v),
                                rcase(NULL, NULL)};
    ASSERT_EQ(gort_go(nul_sender, NULL), 0);
    ASSERT_EQ(gort_select(cs, 4, 0), 2);
    ASSERT_EQ(v, 12);
    ASSERT_EQ(junk, 5);
    /* Only NULL cases, with a deadline: sleeps until it, then times out. */
    int64_t dl = gort_now_ns() + 15 * MS;
    gort_select_case_t only_null[2] = {rcase(NULL, &junk), scase(NULL, &junk)};
    ASSERT_EQ(gort_select_deadline(only_null, 2, dl), -ETIMEDOUT);
    ASSERT_GE(gort_now_ns(), dl);
    dl = gort_now_ns() + 15 * MS;
    ASSERT_EQ(gort_select_deadline(NULL, 0, dl), -ETIMEDOUT);
    ASSERT_GE(gort_now_ns(), dl);
    ASSERT_EQ(junk, 5);
    ASSERT_EQ(gort_chan_free(nul_c), 0);
    return 0;
}

TEST(select_null_channel_cases_never_ready)
{
    ASSERT_EQ(run_main(null_cases_main, NULL, 1), 0);
}

/* ---- fairness: chi-square over always-ready cases ---------------------------- */

/* Chi-square critical values at p = 0.0001, by degrees of freedom. */
static double chi2_crit_p0001(int dof)
{
    static const double v[] = {0, 15.137, 18.421, 21.108, 23.513, 25.745, 27.856, 29.878};
    ASSERT_TRUE(dof >= 1 && dof <= 7);
    return v[dof];
}

static void chi2_check(const char *what, const long *counts, int k, long rounds)
{
    double expect = (double)rounds / k, chi2 = 0;
    char buf[256];
    int len = 0;
    for (int i = 0; i < k; i++) {
        double d = (double)counts[i] - expect;
        chi2 += d * d / expect;
        len += snprintf(buf + len, sizeof buf - (size_t)len, " %ld", counts[i]);
    }
    test_log("%s: %ld rounds, counts%s, chi2 = %.2f (reject above %.3f)", what, rounds, buf, chi2,
             chi2_crit_p0001(k - 1));
    if (chi2 > chi2_crit_p0001(k - 1))
        TEST_FAIL("%s: choice among ready cases is not uniform: chi2 %.2f > %.3f (counts%s)", what,
                  chi2, chi2_crit_p0001(k - 1), buf);
}

static long fair_rounds(void)
{
    long r = test_scale(40000);
    return r < 4000 ? 4000 : r;
}

/* k = 4 buffered channels (cap 1) kept full; receive cases only. Blocking
 * and NONBLOCK selects both. NULL cases in between must never be chosen. */
static int fair_recv_main(void *arg)
{
    unsigned flags = (unsigned)(uintptr_t)arg;
    enum { K = 4 };
    gort_chan_t *ch[K];
    int64_t vals[K];
    gort_select_case_t cs[2 * K];
    for (int i = 0; i < K; i++) {
        ch[i] = make_chan(sizeof(int64_t), 1);
        int64_t v = i;
        ASSERT_EQ(gort_chan_send(ch[i], &v), 0);
    }
    long counts[K] = {0};
    long rounds = fair_rounds();
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < K; i++) {
            cs[2 * i] = rcase(ch[i], &vals[i]);
            cs[2 * i + 1] = rcase(NULL, NULL);
        }
        int k = gort_select(cs, 2 * K, flags);
        ASSERT_GE(k, 0);
        ASSERT_EQ(k % 2, 0);
        int i = k / 2;
        ASSERT_EQ(vals[i], i);
        counts[i]++;
        int64_t v = i;
        ASSERT_EQ(gort_chan_try_send(ch[i], &v), 0);
    }
    chi2_check(flags ? "recv cases, NONBLOCK" : "recv cases", counts, K, rounds);
    for (int i = 0; i < K; i++)
        ASSERT_EQ(gort_chan_free(ch[i]), 0);
    return 0;
}

TEST(select_fairness_chi_square_recv)
{
    ASSERT_EQ(run_main(fair_recv_main, (void *)(uintptr_t)0, 1), 0);
}

TEST(select_fairness_chi_square_recv_nonblock)
{
    ASSERT_EQ(run_main(fair_recv_main, (void *)(uintptr_t)GORT_SELECT_NONBLOCK, 1), 0);
}

/* Mixed: two full channels (receive cases) and two empty ones (send
 * cases), all ready every round; also two cases on one channel. */
static int fair_mixed_main(void *arg)
{
    (void)arg;
    enum { K = 5 };
    gort_chan_t *r0 = make_chan(sizeof(int64_t), 1), *r1 = make_chan(sizeof(int64_t), 1);
    gort_chan_t *s0 = make_chan(sizeof(int64_t), 1), *s1 = make_chan(sizeof(int64_t), 1);
    int64_t v = 7, in0, in1, in1b, out = 8;
    ASSERT_EQ(gort_chan_send(r0, &v), 0);
    ASSERT_EQ(gort_chan_send(r1, &v), 0);
    long counts[K] = {0};
    long rounds = fair_rounds();
    for (long r = 0; r < rounds; r++) {
        gort_select_case_t cs[K] = {rcase(r0, &in0), scase(s0, &out), rcase(r1, &in1),
                                    scase(s1, &out), rcase(r1, &in1b)};
        int k = gort_select(cs, K, 0);
        ASSERT_TRUE(k >= 0 && k < K);
        ASSERT_TRUE(cs[k].ok);
        counts[k]++;
        /* Restore: refill what was received from, drain what was sent to. */
        if (k == 0)
            ASSERT_EQ(gort_chan_try_send(r0, &v), 0);
        else if (k == 2 || k == 4)
            ASSERT_EQ(gort_chan_try_send(r1, &v), 0);
        else
            ASSERT_EQ(gort_chan_try_recv(k == 1 ? s0 : s1, NULL, NULL), 0);
    }
    chi2_check("mixed send/recv cases", counts, K, rounds);
    ASSERT_EQ(gort_chan_free(r0), 0);
    ASSERT_EQ(gort_chan_free(r1), 0);
    ASSERT_EQ(gort_chan_free(s0), 0);
    ASSERT_EQ(gort_chan_free(s1), 0);
    return 0;
}

TEST(select_fairness_chi_square_mixed)
{
    ASSERT_EQ(run_main(fair_mixed_main, NULL, 1), 0);
}

/* ---- deadlines ------------------------------------------------------------------ */

static int deadline_main(void *arg)
{
    (void)arg;
    gort_chan_t *u = make_chan(sizeof(int64_t), 0);
    gort_chan_t *e = make_chan(sizeof(int64_t), 2);
    int64_t v = -1, out = 4;
    for (int round = 0; round < 3; round++) {
        gort_select_case_t cs[3] = {rcase(u, &v), scase(u, &out), rcase(e, &v)};
        int64_t dl = gort_now_ns() + (5 + 5 * round) * MS;
        ASSERT_EQ(gort_select_deadline(cs, 3, dl), -ETIMEDOUT);
        ASSERT_GE(gort_now_ns(), dl); /* never early */
        ASSERT_EQ(v, -1);
        for (int i = 0; i < 3; i++)
            ASSERT_FALSE(cs[i].ok);
    }
    /* Past deadlines (0 and negative included): like NONBLOCK, but
     * -ETIMEDOUT; a ready case is still taken. */
    int64_t past[] = {gort_now_ns() - 1, 1, 0, -1, INT64_MIN};
    for (size_t i = 0; i < sizeof past / sizeof past[0]; i++) {
        gort_select_case_t cs[2] = {rcase(u, &v), rcase(e, &v)};
        ASSERT_EQ(gort_select_deadline(cs, 2, past[i]), -ETIMEDOUT);
        int64_t x = 70 + (int64_t)i;
        ASSERT_EQ(gort_chan_send(e, &x), 0);
        ASSERT_EQ(gort_select_deadline(cs, 2, past[i]), 1);
        ASSERT_EQ(v, x);
        v = -1;
    }
    /* No deadline sudog or timer left behind. */
    ASSERT_EQ(gort_chan_try_send(u, &out), -EAGAIN);
    ASSERT_EQ(gort_chan_free(u), 0);
    ASSERT_EQ(gort_chan_free(e), 0);
    return 0;
}

TEST(select_deadline_expires)
{
    ASSERT_EQ(run_main(deadline_main, NULL, 1), 0);
}

TEST(select_deadline_expires_procs2)
{
    ASSERT_EQ(run_main(deadline_main, NULL, 2), 0);
}

static gort_chan_t *dls_c;

static void dls_sender(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_sleep_ns(5 * MS), 0);
    int64_t v = 99;
    ASSERT_EQ(gort_chan_send(dls_c, &v), 0);
}

static int deadline_success_main(void *arg)
{
    (void)arg;
    dls_c = make_chan(sizeof(int64_t), 0);
    gort_chan_t *other = make_chan(sizeof(int64_t), 0);
    for (int round = 0; round < 10; round++) {
        int64_t v = -1;
        gort_select_case_t cs[2] = {rcase(other, &v), rcase(dls_c, &v)};
        ASSERT_EQ(gort_go(dls_sender, NULL), 0);
        ASSERT_EQ(gort_select_deadline(cs, 2, gort_now_ns() + 60 * S), 1);
        ASSERT_EQ(v, 99);
    }
    /* The cancelled deadline timers never fire into anything: sleep past a
     * few short deadlines that were cancelled. */
    for (int round = 0; round < 10; round++) {
        int64_t v = -1;
        gort_select_case_t cs[1] = {rcase(dls_c, &v)};
        ASSERT_EQ(gort_go(dls_sender, NULL), 0);
        ASSERT_EQ(gort_select_deadline(cs, 1, gort_now_ns() + 30 * S), 0);
    }
    ASSERT_EQ(gort_sleep_ns(20 * MS), 0);
    ASSERT_EQ(gort_chan_free(other), 0);
    ASSERT_EQ(gort_chan_free(dls_c), 0);
    return 0;
}

TEST(select_deadline_partner_in_time)
{
    ASSERT_EQ(run_main(deadline_success_main, NULL, 2), 0);
}

/* ---- argument checks ------------------------------------------------------------ */

/* A select's peer may free the channel as soon as its own send or receive
 * returns: the woken select must not lock that channel again in its pass 3
 * (it did: a use after free under ASan, and in a release build the freed
 * lock word left the select asleep for good). Waiters: a receive and a
 * send with a deadline (one-case selects), and selects with a second case
 * on a channel that stays alive (locked in pass 3, to take that case's
 * sudog off it). Two more where pass 3 must lock a channel the program
 * has freed: a select with two receive cases on one channel, woken by its
 * close (the close takes the second sudog off as stale); and a select
 * woken on another channel whose stale sudog a buffered send on the freed
 * channel took off. There gort_chan_free leaves the free to the select
 * (LSan reports the channel if nobody frees it). */
enum {
    FREED_RECV_DEADLINE,
    FREED_SEND_DEADLINE,
    FREED_SELECT_RECV,
    FREED_SELECT_SEND,
    FREED_SELECT_CLOSE_TWICE,
    FREED_SELECT_STALE,
};
static gort_chan_t *freed_c, *freed_other;
static _Atomic int freed_parked, freed_done;

static void freed_waiter(void *arg)
{
    int kind = (int)(intptr_t)arg;
    int64_t v = kind == FREED_SEND_DEADLINE || kind == FREED_SELECT_SEND ? 77 : -1, w = 0;
    atomic_store(&freed_parked, 1);
    if (kind == FREED_RECV_DEADLINE) {
        bool ok = false;
        ASSERT_EQ(gort_chan_recv_deadline(freed_c, &v, &ok, gort_now_ns() + 10 * S), 0);
        ASSERT_TRUE(ok);
        ASSERT_EQ(v, 77);
    } else if (kind == FREED_SEND_DEADLINE) {
        ASSERT_EQ(gort_chan_send_deadline(freed_c, &v, gort_now_ns() + 10 * S), 0);
    } else if (kind == FREED_SELECT_CLOSE_TWICE) {
        gort_select_case_t cs[2] = {rcase(freed_c, &v), rcase(freed_c, &w)};
        int k = gort_select(cs, 2, 0);
        ASSERT_TRUE(k == 0 || k == 1);
        ASSERT_FALSE(cs[k].ok); /* closed */
    } else if (kind == FREED_SELECT_STALE) {
        /* Woken on freed_other; freed_c, buffered, is then sent to and freed. */
        gort_select_case_t cs[2] = {rcase(freed_c, &v), rcase(freed_other, &w)};
        ASSERT_EQ(gort_select(cs, 2, 0), 1);
        ASSERT_EQ(w, 78);
    } else {
        gort_select_case_t cs[2] = {kind == FREED_SELECT_RECV ? rcase(freed_c, &v)
                                                              : scase(freed_c, &v),
                                    rcase(freed_other, &w)};
        ASSERT_EQ(gort_select(cs, 2, 0), 0);
        ASSERT_TRUE(cs[0].ok);
        if (kind == FREED_SELECT_RECV)
            ASSERT_EQ(v, 77);
    }
    atomic_fetch_add(&freed_done, 1);
}

static int freed_by_peer_main(void *arg)
{
    (void)arg;
    freed_other = make_chan(sizeof(int64_t), 0);
    atomic_store(&freed_done, 0);
    int rounds = 0;
    for (int kind = FREED_RECV_DEADLINE; kind <= FREED_SELECT_STALE; kind++) {
        for (int i = 0; i < 50; i++, rounds++) {
            freed_c = make_chan(sizeof(int64_t), kind == FREED_SELECT_STALE ? 1 : 0);
            atomic_store(&freed_parked, 0);
            ASSERT_EQ(gort_go(freed_waiter, (void *)(intptr_t)kind), 0);
            while (!atomic_load(&freed_parked))
                ASSERT_EQ(gort_yield(), 0);
            ASSERT_EQ(gort_sleep_ns(MS / 10), 0); /* it parks in its select */
            int64_t v = 77;
            if (kind == FREED_SELECT_CLOSE_TWICE) {
                ASSERT_EQ(gort_chan_close(freed_c), 0);
            } else if (kind == FREED_SELECT_STALE) {
                v = 78;
                ASSERT_EQ(gort_chan_send(freed_other, &v), 0); /* wakes the select */
                ASSERT_EQ(gort_chan_try_send(freed_c, &v), 0); /* takes the stale sudog off */
            } else if (kind == FREED_RECV_DEADLINE || kind == FREED_SELECT_RECV) {
                ASSERT_EQ(gort_chan_send(freed_c, &v), 0);
            } else {
                v = -1;
                ASSERT_EQ(gort_chan_recv(freed_c, &v, NULL), 0);
                ASSERT_EQ(v, 77);
            }
            ASSERT_EQ(gort_chan_free(freed_c), 0); /* the waiter has not run yet */
            while (atomic_load(&freed_done) <= rounds)
                ASSERT_EQ(gort_yield(), 0);
        }
    }
    ASSERT_EQ(gort_chan_free(freed_other), 0);
    return 0;
}

TEST(select_channel_freed_by_its_peer_before_the_select_returns)
{
    ASSERT_EQ(run_main(freed_by_peer_main, NULL, 1), 0);
}

static int einval_main(void *arg)
{
    (void)arg;
    gort_chan_t *c = make_chan(sizeof(int64_t), 1);
    int64_t v = 1;
    ASSERT_EQ(gort_chan_send(c, &v), 0); /* a ready case: checks come first */
    int64_t far = gort_now_ns() + 10 * S;
    for (int bad = 0; bad < 4; bad++) {
        static const int dirs[] = {0, 3, -1, GORT_SELECT_SEND | GORT_SELECT_RECV};
        gort_select_case_t cs[2] = {rcase(c, &v), rcase(c, &v)};
        cs[1].dir = dirs[bad];
        ASSERT_EQ(gort_select(cs, 2, 0), -EINVAL);
        ASSERT_EQ(gort_select(cs, 2, GORT_SELECT_NONBLOCK), -EINVAL);
        ASSERT_EQ(gort_select_deadline(cs, 2, far), -EINVAL);
        /* A bad dir on a NULL channel is still bad. */
        cs[1].chan = NULL;
        ASSERT_EQ(gort_select(cs, 2, GORT_SELECT_NONBLOCK), -EINVAL);
    }
    ASSERT_EQ(gort_chan_len(c), 1); /* nothing was received */
    /* NULL cases with n > 0. */
    ASSERT_EQ(gort_select(NULL, 1, 0), -EINVAL);
    ASSERT_EQ(gort_select(NULL, 1, GORT_SELECT_NONBLOCK), -EINVAL);
    ASSERT_EQ(gort_select_deadline(NULL, 1, far), -EINVAL);
    /* Unknown flags. */
    gort_select_case_t one = rcase(c, &v);
    ASSERT_EQ(gort_select(&one, 1, 2u), -EINVAL);
    /* Too many cases. */
    size_t big = 65537;
    gort_select_case_t *many = calloc(big, sizeof *many);
    ASSERT_TRUE(many != NULL);
    for (size_t i = 0; i < big; i++)
        many[i].dir = GORT_SELECT_RECV;
    ASSERT_EQ(gort_select(many, big, GORT_SELECT_NONBLOCK), -EINVAL);
    free(many);
    /* Blocking with no non-NULL channel and no deadline would block forever. */
    gort_select_case_t nulls[3] = {rcase(NULL, &v), scase(NULL, &v), rcase(NULL, NULL)};
    ASSERT_EQ(gort_select(nulls, 3, 0), -EINVAL);
    ASSERT_EQ(gort_select(NULL, 0, 0), -EINVAL);
    ASSERT_EQ(gort_chan_free(c), 0);
    return 0;
}

TEST(select_einval)
{
    ASSERT_EQ(run_main(einval_main, NULL, 1), 0);
}

/* ---- contexts: NONBLOCK from a foreign thread, -EPERM when it would block --- */

static gort_chan_t *fg_c, *fg_u;

static void *fg_thread(void *arg)
{
    (void)arg;
    int64_t v = -1;
    gort_select_case_t cs[2] = {rcase(NULL, NULL), rcase(fg_c, &v)};
    ASSERT_EQ(gort_select(cs, 2, GORT_SELECT_NONBLOCK), 1); /* a value is buffered */
    ASSERT_TRUE(cs[1].ok);
    ASSERT_EQ(v, 21);
    ASSERT_EQ(gort_select(cs, 2, GORT_SELECT_NONBLOCK), -EAGAIN);
    ASSERT_EQ(gort_select(cs, 2, 0), -EPERM);
    ASSERT_EQ(gort_select_deadline(cs, 2, gort_now_ns() + 10 * S), -EPERM);
    /* A NONBLOCK send from here (possible only once the goroutine waits in
     * recv on the unbuffered fg_u) wakes it. */
    int64_t out = 22;
    gort_select_case_t snd = scase(fg_u, &out);
    int64_t deadline = test_now_ns() + 60 * S;
    int r;
    while ((r = gort_select(&snd, 1, GORT_SELECT_NONBLOCK)) == -EAGAIN) {
        ASSERT_LT(test_now_ns(), deadline);
        sched_yield();
    }
    ASSERT_EQ(r, 0);
    ASSERT_TRUE(snd.ok);
    return NULL;
}

static int foreign_main(void *arg)
{
    (void)arg;
    fg_c = make_chan(sizeof(int64_t), 1);
    fg_u = make_chan(sizeof(int64_t), 0);
    int64_t v = 21;
    ASSERT_EQ(gort_chan_send(fg_c, &v), 0);
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, fg_thread, NULL), 0);
    /* Wait until the thread has taken 21, then block for its 22. */
    while (gort_chan_len(fg_c) != 0)
        ASSERT_EQ(gort_sleep_ns(MS), 0);
    v = -1;
    ASSERT_EQ(gort_chan_recv(fg_u, &v, NULL), 0);
    ASSERT_EQ(v, 22);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_EQ(gort_chan_free(fg_c), 0);
    ASSERT_EQ(gort_chan_free(fg_u), 0);
    return 0;
}

TEST(select_from_foreign_thread)
{
    ASSERT_EQ(run_main(foreign_main, NULL, 1), 0);
}

/* ---- more cases than fit on the stack --------------------------------------- */

#define MANY_N 100

static gort_chan_t *many_ch[MANY_N];

static void many_sender(void *arg)
{
    int idx = (int)(intptr_t)arg;
    ASSERT_EQ(gort_sleep_ns(5 * MS), 0);
    int64_t v = 1000 + idx;
    ASSERT_EQ(gort_chan_send(many_ch[idx], &v), 0);
}

static int many_main(void *arg)
{
    (void)arg;
    static int64_t vals[MANY_N];
    static gort_select_case_t cs[MANY_N];
    for (int i = 0; i < MANY_N; i++)
        many_ch[i] = make_chan(sizeof(int64_t), i % 2);
    int64_t v = 1077;
    ASSERT_EQ(gort_chan_send(many_ch[77], &v), 0);
    for (int i = 0; i < MANY_N; i++) {
        vals[i] = -1;
        cs[i] = rcase(many_ch[i], &vals[i]);
    }
    ASSERT_EQ(gort_select(cs, MANY_N, 0), 77);
    ASSERT_EQ(vals[77], 1077);
    ASSERT_EQ(gort_select(cs, MANY_N, GORT_SELECT_NONBLOCK), -EAGAIN);
    for (int round = 0; round < 5; round++) {
        int idx = 10 + round * 20;
        ASSERT_EQ(gort_go(many_sender, (void *)(intptr_t)idx), 0);
        ASSERT_EQ(gort_select(cs, MANY_N, 0), idx);
        ASSERT_EQ(vals[idx], 1000 + idx);
    }
    int64_t dl = gort_now_ns() + 10 * MS;
    ASSERT_EQ(gort_select_deadline(cs, MANY_N, dl), -ETIMEDOUT);
    ASSERT_GE(gort_now_ns(), dl);
    for (int i = 0; i < MANY_N; i++)
        ASSERT_EQ(gort_chan_free(many_ch[i]), 0); /* no sudog left on any */
    return 0;
}

TEST(select_many_cases_heap_path)
{
    ASSERT_EQ(run_main(many_main, NULL, 2), 0);
}

/* ---- opposite case order never deadlocks ------------------------------------ */

static gort_chan_t *opp_a, *opp_b;
static gort_waitgroup_t opp_wg;
static long opp_rounds;
static _Atomic long opp_sent[2];

/* Goroutine 0: select {send a <- i; recv <- b}; goroutine 1: select {send
 * b <- i; recv <- a}, with the cases in opposite orders. Every round
 * exactly one value passes between the two, completing both selects, so
 * both are always in the same round: a received value must equal the
 * receiver's round number. */
static void opp_worker(void *arg)
{
    int me = (int)(intptr_t)arg;
    gort_chan_t *mine = me ? opp_b : opp_a, *theirs = me ? opp_a : opp_b;
    for (long i = 0; i < opp_rounds; i++) {
        int64_t out = i, in = -1;
        gort_select_case_t cs[2];
        int sidx = me ? 1 : 0;
        cs[sidx] = scase(mine, &out);
        cs[1 - sidx] = rcase(theirs, &in);
        int k = gort_select(cs, 2, 0);
        ASSERT_TRUE(k == 0 || k == 1);
        ASSERT_TRUE(cs[k].ok);
        if (k == sidx) {
            opp_sent[me]++;
        } else {
            if (in != i)
                TEST_FAIL("goroutine %d round %ld received %lld", me, i, (long long)in);
        }
    }
    ASSERT_EQ(gort_waitgroup_done(&opp_wg), 0);
}

static int opposite_main(void *arg)
{
    (void)arg;
    opp_rounds = test_scale(100000);
    opp_a = make_chan(sizeof(int64_t), 0);
    opp_b = make_chan(sizeof(int64_t), 0);
    ASSERT_EQ(gort_waitgroup_add(&opp_wg, 2), 0);
    ASSERT_EQ(gort_go(opp_worker, (void *)0), 0);
    ASSERT_EQ(gort_go(opp_worker, (void *)1), 0);
    ASSERT_EQ(gort_waitgroup_wait(&opp_wg), 0);
    /* Each round one of the two sent. */
    ASSERT_EQ(opp_sent[0] + opp_sent[1], opp_rounds);
    test_log("rounds %ld: goroutine 0 sent %ld, goroutine 1 sent %ld", opp_rounds, opp_sent[0],
             opp_sent[1]);
    ASSERT_EQ(gort_chan_free(opp_a), 0);
    ASSERT_EQ(gort_chan_free(opp_b), 0);
    return 0;
}

TEST(select_opposite_order_no_deadlock_procs1)
{
    ASSERT_EQ(run_main(opposite_main, NULL, 1), 0);
}

TEST(select_opposite_order_no_deadlock_procs2)
{
    ASSERT_EQ(run_main(opposite_main, NULL, 2), 0);
}

/* Many goroutines, each select over the same 4 unbuffered channels in its
 * own random order and directions, with short deadlines; sends and
 * receives must balance exactly (count and sum). */
#define STORM_G     6
#define STORM_CHANS 4

static gort_chan_t *storm_ch[STORM_CHANS];
static gort_waitgroup_t storm_wg;
static _Atomic long storm_sends, storm_recvs, storm_timeouts;
static _Atomic int64_t storm_sent_sum, storm_recv_sum;
static _Atomic bool storm_stop;
static long storm_target;

static void storm_worker(void *arg)
{
    uint64_t rng = 0x9e3779b97f4a7c15ULL * (uint64_t)((intptr_t)arg + 1);
    long sends = 0, recvs = 0, timeouts = 0;
    int64_t ssum = 0, rsum = 0;
    while (!atomic_load_explicit(&storm_stop, memory_order_relaxed)) {
        gort_select_case_t cs[STORM_CHANS];
        int64_t outs[STORM_CHANS], ins[STORM_CHANS];
        int perm[STORM_CHANS] = {0, 1, 2, 3};
        for (int i = STORM_CHANS - 1; i > 0; i--) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            int j = (int)((rng >> 33) % (uint64_t)(i + 1));
            int t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        for (int i = 0; i < STORM_CHANS; i++) {
            outs[i] = (int64_t)((rng >> (8 * i)) & 0xffff) + 1;
            ins[i] = 0;
            bool send = (rng >> (40 + i)) & 1;
            cs[i] = send ? scase(storm_ch[perm[i]], &outs[i]) : rcase(storm_ch[perm[i]], &ins[i]);
        }
        int k = gort_select_deadline(cs, STORM_CHANS, gort_now_ns() + MS);
        if (k == -ETIMEDOUT) {
            timeouts++;
            continue;
        }
        ASSERT_TRUE(k >= 0 && k < STORM_CHANS);
        ASSERT_TRUE(cs[k].ok);
        if (cs[k].dir == GORT_SELECT_SEND) {
            sends++;
            ssum += outs[k];
        } else {
            recvs++;
            rsum += ins[k];
            ASSERT_GT(ins[k], 0);
            if (atomic_fetch_add(&storm_recvs, 1) + 1 >= storm_target)
                atomic_store(&storm_stop, true);
        }
    }
    atomic_fetch_add(&storm_sends, sends);
    atomic_fetch_add(&storm_timeouts, timeouts);
    atomic_fetch_add(&storm_sent_sum, ssum);
    atomic_fetch_add(&storm_recv_sum, rsum);
    (void)recvs;
    ASSERT_EQ(gort_waitgroup_done(&storm_wg), 0);
}

static int storm_main(void *arg)
{
    (void)arg;
    storm_target = test_scale(200000);
    for (int i = 0; i < STORM_CHANS; i++)
        storm_ch[i] = make_chan(sizeof(int64_t), 0);
    ASSERT_EQ(gort_waitgroup_add(&storm_wg, STORM_G), 0);
    for (int g = 0; g < STORM_G; g++)
        ASSERT_EQ(gort_go(storm_worker, (void *)(intptr_t)g), 0);
    ASSERT_EQ(gort_waitgroup_wait(&storm_wg), 0);
    test_log("storm: %ld sends, %ld receives, %ld timeouts", atomic_load(&storm_sends),
             atomic_load(&storm_recvs), atomic_load(&storm_timeouts));
    ASSERT_GE(atomic_load(&storm_recvs), storm_target);
    ASSERT_EQ(atomic_load(&storm_sends), atomic_load(&storm_recvs));
    ASSERT_EQ(atomic_load(&storm_sent_sum), atomic_load(&storm_recv_sum));
    for (int i = 0; i < STORM_CHANS; i++)
        ASSERT_EQ(gort_chan_free(storm_ch[i]), 0);
    return 0;
}

TEST(select_random_orders_storm_procs4)
{
    ASSERT_EQ(run_main(storm_main, NULL, 4), 0);
}

TEST(select_random_orders_storm_procs1)
{
    ASSERT_EQ(run_main(storm_main, NULL, 1), 0);
}
