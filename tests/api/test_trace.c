/*
 * test_trace.c - goroutine dumps and GORT_DEBUG=schedtrace (src/trace.c).
 *
 *  dump        gort_dump_goroutines names every goroutine with its wait
 *              reason, locked / dedicated thread and main, and walks the
 *              stack of parked ones (return addresses inside the test
 *              binary); bad arguments.
 *  schedtrace  with GORT_DEBUG=schedtrace=10,scheddetail=1 sysmon writes
 *              SCHED lines and one line per P, M and goroutine, dedicated
 *              Ps listed apart.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gort_util.h"

#define MS 1000000ll

static gort_chan_t *ch;
static gort_waitgroup_t ready, done;

static void parked(void *arg)
{
    if (arg)
        ASSERT_EQ(gort_dedicate_os_thread(), 0);
    ASSERT_EQ(gort_waitgroup_done(&ready), 0);
    int v;
    bool ok;
    ASSERT_EQ(gort_chan_recv(ch, &v, &ok), 0);
    if (arg)
        ASSERT_EQ(gort_undedicate_os_thread(), 0);
    ASSERT_EQ(gort_waitgroup_done(&done), 0);
}

static char *slurp(int fd)
{
    static char buf[1 << 16];
    ASSERT_EQ(lseek(fd, 0, SEEK_SET), 0);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    ASSERT_GE(n, 0);
    buf[n] = 0;
    return buf;
}

static int tmpfd(void)
{
    char path[] = "/tmp/gort_trace_XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    unlink(path);
    return fd;
}

static int dump_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_chan_make(&ch, sizeof(int), 0), 0);
    ASSERT_EQ(gort_waitgroup_add(&ready, 2), 0);
    ASSERT_EQ(gort_waitgroup_add(&done, 2), 0);
    uint64_t id_normal, id_ded;
    ASSERT_EQ(gort_go_opts(parked, NULL, NULL, &id_normal), 0);
    ASSERT_EQ(gort_go_opts(parked, (void *)1, NULL, &id_ded), 0);
    ASSERT_EQ(gort_waitgroup_wait(&ready), 0);
    ASSERT_EQ(gort_sleep_ns(20 * MS), 0); /* both are parked in the receive by now */
    ASSERT_EQ(gort_dump_goroutines(-1), -EBADF);
    int fd = tmpfd();
    ASSERT_EQ(gort_dump_goroutines(fd), 0);
    char *s = slurp(fd);
    char want[128];
    snprintf(want, sizeof want, "goroutine %llu [chan receive]:\n    #0 0x",
             (unsigned long long)id_normal);
    if (!strstr(s, want))
        test_log("dump:\n%s", s);
    ASSERT_TRUE(strstr(s, want) != NULL);
    snprintf(want, sizeof want,
             "goroutine %llu [chan receive], locked to thread, dedicated thread:",
             (unsigned long long)id_ded);
    ASSERT_TRUE(strstr(s, want) != NULL);
    ASSERT_TRUE(strstr(s, "goroutine 1 [running] (main):") != NULL);
    /* The backtrace of a parked goroutine goes through this binary. */
    ASSERT_TRUE(strstr(s, "(test_api_test_trace+0x") != NULL);
    close(fd);
    int v = 0;
    ASSERT_EQ(gort_chan_send(ch, &v), 0);
    ASSERT_EQ(gort_chan_send(ch, &v), 0);
    ASSERT_EQ(gort_waitgroup_wait(&done), 0);
    ASSERT_EQ(gort_chan_free(ch), 0);
    return 0;
}

TEST(dump_names_every_goroutine_with_backtraces)
{
    ASSERT_EQ(gort_dump_goroutines(2), -ESRCH);
    gort_waitgroup_init(&ready);
    gort_waitgroup_init(&done);
    ASSERT_EQ(run_main(dump_main, NULL, 2), 0);
}

static int trace_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_chan_make(&ch, sizeof(int), 0), 0);
    ASSERT_EQ(gort_waitgroup_add(&ready, 1), 0);
    ASSERT_EQ(gort_waitgroup_add(&done, 1), 0);
    ASSERT_EQ(gort_go(parked, (void *)1), 0);
    ASSERT_EQ(gort_waitgroup_wait(&ready), 0);
    ASSERT_EQ(gort_sleep_ns(100 * MS), 0); /* several trace periods */
    int v = 0;
    ASSERT_EQ(gort_chan_send(ch, &v), 0);
    ASSERT_EQ(gort_waitgroup_wait(&done), 0);
    ASSERT_EQ(gort_chan_free(ch), 0);
    return 0;
}

TEST(schedtrace_and_scheddetail_lines)
{
    gort_waitgroup_init(&ready);
    gort_waitgroup_init(&done);
    ASSERT_EQ(setenv("GORT_DEBUG", "schedtrace=10,scheddetail=1", 1), 0);
    int fd = tmpfd();
    int saved = dup(2);
    ASSERT_GE(saved, 0);
    ASSERT_EQ(dup2(fd, 2), 2);
    int r = run_main(trace_main, NULL, 2);
    ASSERT_EQ(dup2(saved, 2), 2);
    close(saved);
    ASSERT_EQ(r, 0);
    char *s = slurp(fd);
    close(fd);
    ASSERT_TRUE(strstr(s, "SCHED ") != NULL);
    ASSERT_TRUE(strstr(s, "gomaxprocs=2 idleprocs=") != NULL);
    ASSERT_TRUE(strstr(s, "  P0: status=") != NULL);
    ASSERT_TRUE(strstr(s, "  P1: status=") != NULL);
    ASSERT_TRUE(strstr(s, "dedicated=1") != NULL);
    ASSERT_TRUE(strstr(s, ": dedicated status=running") != NULL);
    ASSERT_TRUE(strstr(s, "  M0: p=") != NULL);
    ASSERT_TRUE(strstr(s, "  G1: status=") != NULL);
    ASSERT_TRUE(strstr(s, "(chan receive)") != NULL);
}

static int short_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_sleep_ns(60 * MS), 0);
    return 0;
}

TEST(schedtrace_one_line_per_period)
{
    ASSERT_EQ(setenv("GORT_DEBUG", "schedtrace=10", 1), 0);
    int fd = tmpfd();
    int saved = dup(2);
    ASSERT_EQ(dup2(fd, 2), 2);
    int r = run_main(short_main, NULL, 1);
    ASSERT_EQ(dup2(saved, 2), 2);
    close(saved);
    ASSERT_EQ(r, 0);
    char *s = slurp(fd);
    close(fd);
    int lines = 0;
    for (char *p = s; (p = strstr(p, "SCHED ")) != NULL; p++)
        lines++;
    ASSERT_GE(lines, 2); /* 60 ms at 10 ms: wide margin for slow machines */
    ASSERT_TRUE(strstr(s, "gomaxprocs=1 idleprocs=") != NULL);
    ASSERT_TRUE(strstr(s, " [0] dedicated=0") != NULL || strstr(s, " [1] dedicated=0") != NULL);
    ASSERT_TRUE(strstr(s, "  P0:") == NULL); /* no detail */
}
