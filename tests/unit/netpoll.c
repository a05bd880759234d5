/*
 * netpoll.c - the netpoller's break (gort__netpoll_break): a poke meant for
 * the M about to block in epoll_wait survives a non-blocking poll by another
 * M in between (Go's netpoll reads the eventfd only when it blocks). White
 * box, inside a running runtime at GOMAXPROCS=1 with no timers and no
 * descriptor waiters, so no other M polls meanwhile.
 */
#include <unistd.h>

#include "gort_util.h"
#include "internal.h"
#include "test.h"

#define MS 1000000ll

static int break_main(void *arg)
{
    (void)arg;
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    gort_fd_t *f;
    ASSERT_EQ(gort_fd_open(&f, p[0]), 0); /* makes the netpoller */
    gort__netpoll_break();
    ASSERT_TRUE(gort__netpoll(0) == NULL); /* must leave the break pending */
    int64_t t0 = test_now_ns();
    ASSERT_TRUE(gort__netpoll(5000 * MS) == NULL); /* woken by it at once */
    int64_t took = test_now_ns() - t0;
    test_log("blocking poll after the break returned in %lld us", (long long)(took / 1000));
    ASSERT_LT(took, 2500 * MS); /* 5 s if the break was lost */
    ASSERT_EQ(gort_fd_close(f), 0);
    ASSERT_EQ(close(p[1]), 0);
    return 0;
}

TEST(break_survives_a_nonblocking_poll)
{
    ASSERT_EQ(run_main(break_main, NULL, 1), 0);
}
