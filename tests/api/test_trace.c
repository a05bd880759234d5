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

/* A goroutine that has not run yet has no frames of its own (its first
 * frame is made when it first runs): the dump shows its entry function. */
static void not_started(void *arg)
{
    gort_waitgroup_done(arg);
}

static int not_started_main(void *arg)
{
    (void)arg;
    gort_waitgroup_t wg = GORT_WAITGROUP_INIT;
    ASSERT_EQ(gort_waitgroup_add(&wg, 1), 0);
    uint64_t id;
    /* GOMAXPROCS 1: it cannot run before this goroutine blocks. */
    ASSERT_EQ(gort_go_opts(not_started, &wg, NULL, &id), 0);
    int fd = tmpfd();
    ASSERT_EQ(gort_dump_goroutines(fd), 0);
    char *s = slurp(fd);
    char want[128];
    snprintf(want, sizeof want, "goroutine %llu [runnable]:\n    #0 0x", (unsigned long long)id);
    if (!strstr(s, want))
        test_log("dump:\n%s", s);
    ASSERT_TRUE(strstr(s, want) != NULL);
    snprintf(want, sizeof want, "#0 %p ", (void *)not_started);
    ASSERT_TRUE(strstr(s, want) != NULL);
    close(fd);
    ASSERT_EQ(gort_waitgroup_wait(&wg), 0);
    return 0;
}

TEST(dump_shows_where_a_goroutine_not_started_yet_will_run)
{
    ASSERT_EQ(run_main(not_started_main, NULL, 1), 0);
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

static int stopped_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_stop_the_world("snapshot"), 0);
    busy_ns(60 * MS); /* sysmon traces meanwhile */
    ASSERT_EQ(gort_start_the_world(), 0);
    return 0;
}

TEST(schedtrace_names_why_the_world_is_stopped)
{
    ASSERT_EQ(setenv("GORT_DEBUG", "schedtrace=5", 1), 0);
    int fd = tmpfd();
    int saved = dup(2);
    ASSERT_EQ(dup2(fd, 2), 2);
    int r = run_main(stopped_main, NULL, 2);
    ASSERT_EQ(dup2(saved, 2), 2);
    close(saved);
    ASSERT_EQ(r, 0);
    char *s = slurp(fd);
    close(fd);
    ASSERT_TRUE(strstr(s, " stopped=\"snapshot\"") != NULL);
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

/* ---- latency statistics ---- */

static gort_chan_t *ping, *pong;

static void ponger(void *arg)
{
    if (arg)
        ASSERT_EQ(gort_dedicate_os_thread(), 0);
    long v;
    bool ok;
    while (gort_chan_recv(ping, &v, &ok) == 0 && ok)
        ASSERT_EQ(gort_chan_send(pong, &v), 0);
    if (arg)
        ASSERT_EQ(gort_undedicate_os_thread(), 0);
    ASSERT_EQ(gort_waitgroup_done(&done), 0);
}

static void pingpong(bool dedicated, long n)
{
    ASSERT_EQ(gort_chan_make(&ping, sizeof(long), 0), 0);
    ASSERT_EQ(gort_chan_make(&pong, sizeof(long), 0), 0);
    ASSERT_EQ(gort_waitgroup_add(&done, 1), 0);
    ASSERT_EQ(gort_go(ponger, dedicated ? (void *)1 : NULL), 0);
    for (long i = 0; i < n; i++) {
        long w;
        ASSERT_EQ(gort_chan_send(ping, &i), 0);
        ASSERT_EQ(gort_chan_recv(pong, &w, NULL), 0);
        ASSERT_EQ(w, i);
    }
    ASSERT_EQ(gort_chan_close(ping), 0);
    ASSERT_EQ(gort_waitgroup_wait(&done), 0);
    ASSERT_EQ(gort_chan_free(ping), 0);
    ASSERT_EQ(gort_chan_free(pong), 0);
}

static int lat_main(void *arg)
{
    (void)arg;
    gort_stats_t a = stats_now();
    pingpong(false, 6400);
    gort_stats_t b = stats_now();
    /* 2 wake-ups per round trip, one in 64 timed (per P: a margin). */
    ASSERT_GE(b.runq_wait_samples - a.runq_wait_samples, 6400 * 2 / 64 / 2);
    ASSERT_LE(b.runq_wait_samples - a.runq_wait_samples, 6400 * 2 / 64 + 64);
    ASSERT_LE(b.runq_wait_p50_ns, b.runq_wait_p99_ns);
    ASSERT_LE(b.runq_wait_p99_ns, b.runq_wait_max_ns);
    ASSERT_GT(b.runq_wait_max_ns, 0);
    pingpong(true, 500);
    gort_stats_t c = stats_now();
    /* The dedicated ponger wakes at most twice per round trip (its receive
     * and its send may each block); every wake-up that finds its thread
     * asleep is timed (a few may be missed: the check is a hint), and one
     * in 16 of the others. */
    uint64_t dsamples = c.dedicated_wake_samples - b.dedicated_wake_samples;
    uint64_t dwakes = c.dedicated_direct_wakes - b.dedicated_direct_wakes;
    ASSERT_GT(dsamples, 0);
    ASSERT_GE(dsamples, dwakes / 2);
    ASSERT_LE(dsamples, dwakes + 1002 / 16 + 16);
    ASSERT_LE(c.dedicated_wake_p50_ns, c.dedicated_wake_p99_ns);
    ASSERT_LE(c.dedicated_wake_p99_ns, c.dedicated_wake_max_ns);
    ASSERT_GT(c.dedicated_wake_max_ns, 0);
    test_log("runq wait p50 %llu p99 %llu max %llu ns (%llu samples); dedicated wake p50 %llu "
             "p99 %llu max %llu ns (%llu samples, %llu caught spinning)",
             (unsigned long long)b.runq_wait_p50_ns, (unsigned long long)b.runq_wait_p99_ns,
             (unsigned long long)b.runq_wait_max_ns,
             (unsigned long long)(b.runq_wait_samples - a.runq_wait_samples),
             (unsigned long long)c.dedicated_wake_p50_ns,
             (unsigned long long)c.dedicated_wake_p99_ns,
             (unsigned long long)c.dedicated_wake_max_ns,
             (unsigned long long)(c.dedicated_wake_samples - b.dedicated_wake_samples),
             (unsigned long long)(c.dedicated_spin_catches - b.dedicated_spin_catches));
    return 0;
}

TEST(latency_histograms_count_sampled_wakeups)
{
    gort_waitgroup_init(&done);
    ASSERT_EQ(run_main(lat_main, NULL, 2), 0);
}

/* ---- SIGQUIT ---- */

#ifdef STUCK_BIN
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
extern char **environ;
#endif

TEST_TIMEOUT(sigquit_dumps_and_exits_2, 60)
{
#ifndef STUCK_BIN
    TEST_SKIP("examples/stuck not built");
#else
    const char *l = getenv("GORT_TEST_CHILD_LAUNCHER");
    if (l && *l)
        TEST_SKIP("the child would need the launcher (qemu, valgrind)");
    int fd = tmpfd();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd, 2);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    char *argv[] = {STUCK_BIN, "30", NULL};
    ASSERT_EQ(setenv("GORT_DEBUG", "sigquit=1", 1), 0);
    pid_t pid;
    ASSERT_EQ(posix_spawn(&pid, STUCK_BIN, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    usleep(500000); /* stuck by now */
    ASSERT_EQ(kill(pid, SIGQUIT), 0);
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT_TRUE(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 2);
    char *s = slurp(fd);
    close(fd);
    ASSERT_TRUE(strstr(s, "SIGQUIT: quit") != NULL);
    ASSERT_TRUE(strstr(s, "  P0: status=") != NULL);
    ASSERT_TRUE(strstr(s, "goroutine 1 [waitgroup wait") != NULL);
    ASSERT_TRUE(strstr(s, "[chan receive") != NULL);
    ASSERT_TRUE(strstr(s, "dedicated thread") != NULL);
#endif
}
