/*
 * test_netpoll.c - descriptor I/O through the netpoller (issue 8;
 * src/netpoll.c).
 *
 *  echo       a TCP echo server and 1,000 concurrent clients over loopback
 *             (fewer at sanitizer scales), every byte checked, no
 *             descriptor leaked.
 *  deadline   reads, writes and accepts give up at their deadline and the
 *             descriptor stays usable.
 *  close      closing a descriptor wakes its waiters with -ECANCELED.
 *  halfclose  a peer that shuts its write side down still gets its answer.
 *  storm      a small pipe and big writes: the writer meets EAGAIN over and
 *             over; every byte arrives in order.
 *  dedicated  a dedicated goroutine parks on its own thread and is woken by
 *             the poller there.
 *  misc       connect refused, fd_wait, a regular file is not pollable,
 *             foreign threads.
 *  subms      with a descriptor in the poller, a 100 us sleep is not rounded
 *             up to epoll_wait's whole milliseconds.
 *  spin       the timer spin (timer_spin_ns) spins only at the end of a
 *             wait that an unrelated event cut short.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "gort_util.h"

#define MS 1000000ll

static int count_fds(void)
{
    return (int)test_count_dir("/proc/self/fd") - 1; /* the directory's own descriptor */
}

/* A listening loopback socket on an ephemeral port. */
static int listen_loopback(struct sockaddr_in *addr, int backlog)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(s, 0);
    int one = 1;
    ASSERT_EQ(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(s, (struct sockaddr *)addr, sizeof *addr), 0);
    socklen_t len = sizeof *addr;
    ASSERT_EQ(getsockname(s, (struct sockaddr *)addr, &len), 0);
    ASSERT_EQ(listen(s, backlog), 0);
    return s;
}

static gort_fd_t *open_fd(int fd)
{
    gort_fd_t *f = NULL;
    ASSERT_EQ(gort_fd_open(&f, fd), 0);
    return f;
}

static gort_fd_t *dial(const struct sockaddr_in *addr)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(s, 0);
    gort_fd_t *f = open_fd(s);
    ASSERT_EQ(gort_connect(f, (const struct sockaddr *)addr, sizeof *addr, GORT_NO_DEADLINE), 0);
    return f;
}

/* ---- echo ------------------------------------------------------------------- */

static struct sockaddr_in echo_addr;
static gort_waitgroup_t echo_wg;
static _Atomic long echo_bytes;
static long echo_conns;

static void echo_conn(void *arg)
{
    gort_fd_t *c = arg;
    char buf[4096];
    for (;;) {
        ssize_t n = gort_read(c, buf, sizeof buf, GORT_NO_DEADLINE);
        ASSERT_GE(n, 0);
        if (n == 0)
            break;
        ASSERT_EQ(gort_write(c, buf, (size_t)n, GORT_NO_DEADLINE), n);
    }
    ASSERT_EQ(gort_fd_close(c), 0);
    ASSERT_EQ(gort_waitgroup_done(&echo_wg), 0);
}

static void echo_server(void *arg)
{
    gort_fd_t *l = arg;
    for (long i = 0; i < echo_conns; i++) {
        gort_fd_t *c;
        ASSERT_EQ(gort_accept(l, &c, NULL, NULL, GORT_NO_DEADLINE), 0);
        ASSERT_EQ(gort_go(echo_conn, c), 0);
    }
    ASSERT_EQ(gort_fd_close(l), 0);
    ASSERT_EQ(gort_waitgroup_done(&echo_wg), 0);
}

static void echo_client(void *arg)
{
    long id = (long)arg;
    gort_fd_t *c = dial(&echo_addr);
    unsigned char out[3000], in[3000];
    uint32_t x = (uint32_t)id * 2654435761u + 1;
    for (int round = 0; round < 8; round++) {
        size_t n = 1 + (x % sizeof out);
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            out[i] = (unsigned char)(x >> 16);
        }
        ASSERT_EQ(gort_write(c, out, n, GORT_NO_DEADLINE), n);
        size_t got = 0;
        while (got < n) {
            ssize_t r = gort_read(c, in + got, n - got, GORT_NO_DEADLINE);
            ASSERT_GT(r, 0);
            got += (size_t)r;
        }
        ASSERT_EQ(memcmp(in, out, n), 0);
        atomic_fetch_add(&echo_bytes, (long)n);
    }
    ASSERT_EQ(gort_fd_close(c), 0);
    ASSERT_EQ(gort_waitgroup_done(&echo_wg), 0);
}

static int echo_main(void *arg)
{
    (void)arg;
    int fds0 = count_fds();
    gort_stats_t before = stats_now();
    gort_fd_t *l = open_fd(listen_loopback(&echo_addr, 4096));
    ASSERT_EQ(gort_waitgroup_add(&echo_wg, 1 + 2 * (int)echo_conns), 0);
    ASSERT_EQ(gort_go(echo_server, l), 0);
    for (long i = 0; i < echo_conns; i++)
        ASSERT_EQ(gort_go(echo_client, (void *)i), 0);
    ASSERT_EQ(gort_waitgroup_wait(&echo_wg), 0);
    gort_stats_t after = stats_now();
    test_log("%ld connections, %ld bytes echoed, %llu polls, %llu goroutines readied by the poller",
             echo_conns, atomic_load(&echo_bytes),
             (unsigned long long)(after.netpoll_polls - before.netpoll_polls),
             (unsigned long long)(after.netpoll_readied - before.netpoll_readied));
    ASSERT_GT(after.netpoll_readied, before.netpoll_readied);
    /* Every descriptor closed: the server's, the clients', the listener. */
    int64_t deadline = test_now_ns() + 5000 * MS;
    while (count_fds() != fds0 + 2 && test_now_ns() < deadline) /* + epoll + eventfd */
        ASSERT_EQ(gort_sleep_ns(1 * MS), 0);
    ASSERT_EQ(count_fds(), fds0 + 2);
    return 0;
}

static void raise_nofile(long need)
{
    struct rlimit rl;
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < (rlim_t)need) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)need ? rl.rlim_max : (rlim_t)need;
        ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    if (rl.rlim_cur < (rlim_t)need)
        echo_conns = ((long)rl.rlim_cur - 64) / 2;
}

TEST_TIMEOUT(echo_1000_connections_procs2, 240)
{
    signal(SIGPIPE, SIG_IGN);
    echo_conns = 1000 / (GORT_TEST_SCALE >= 20 ? 4 : 1);
    raise_nofile(2 * echo_conns + 100);
    ASSERT_EQ(run_main(echo_main, NULL, 2), 0);
}

TEST_TIMEOUT(echo_200_connections_procs1, 240)
{
    signal(SIGPIPE, SIG_IGN);
    echo_conns = 200;
    raise_nofile(2 * echo_conns + 100);
    ASSERT_EQ(run_main(echo_main, NULL, 1), 0);
}

/* ---- deadlines and close ----------------------------------------------------- */

static int deadline_main(void *arg)
{
    (void)arg;
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    gort_fd_t *r = open_fd(p[0]), *w = open_fd(p[1]);
    char c = 'x';
    int64_t t0 = gort_now_ns();
    ASSERT_EQ(gort_read(r, &c, 1, t0 + 20 * MS), -ETIMEDOUT);
    ASSERT_GE(gort_now_ns() - t0, 19 * MS);
    ASSERT_EQ(gort_read(r, &c, 1, t0 - 1), -ETIMEDOUT); /* already past */
    /* Still usable. */
    ASSERT_EQ(gort_write(w, "y", 1, GORT_NO_DEADLINE), 1);
    ASSERT_EQ(gort_read(r, &c, 1, gort_now_ns() + 5000 * MS), 1);
    ASSERT_EQ(c, 'y');
    /* A full pipe: the write gives up at its deadline, part written. */
    ASSERT_GT(fcntl(p[1], F_SETPIPE_SZ, 4096), 0);
    static char big[1 << 16];
    ssize_t n = gort_write(w, big, sizeof big, gort_now_ns() + 20 * MS);
    ASSERT_GT(n, 0);
    ASSERT_LT(n, (ssize_t)sizeof big);
    ASSERT_EQ(gort_write(w, big, 1, gort_now_ns() + 10 * MS), -ETIMEDOUT);
    /* accept with a deadline */
    struct sockaddr_in a;
    gort_fd_t *l = open_fd(listen_loopback(&a, 4));
    gort_fd_t *c2;
    ASSERT_EQ(gort_accept(l, &c2, NULL, NULL, gort_now_ns() + 10 * MS), -ETIMEDOUT);
    ASSERT_EQ(gort_fd_close(l), 0);
    ASSERT_EQ(gort_fd_close(r), 0);
    ASSERT_EQ(gort_fd_close(w), 0);
    return 0;
}

TEST(deadlines_fire_and_fd_stays_usable)
{
    ASSERT_EQ(run_main(deadline_main, NULL, 2), 0);
}

static gort_fd_t *blocked_fd;
static _Atomic int blocked_result = 1;
static gort_waitgroup_t close_wg;

static void blocked_reader(void *arg)
{
    (void)arg;
    char c;
    atomic_store(&blocked_result, (int)gort_read(blocked_fd, &c, 1, GORT_NO_DEADLINE));
    ASSERT_EQ(gort_waitgroup_done(&close_wg), 0);
}

static void *close_from_thread(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_fd_close(blocked_fd), 0);
    return NULL;
}

static int close_main(void *arg)
{
    bool from_thread = arg != NULL;
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    blocked_fd = open_fd(p[0]);
    ASSERT_EQ(gort_waitgroup_add(&close_wg, 1), 0);
    ASSERT_EQ(gort_go(blocked_reader, NULL), 0);
    ASSERT_EQ(gort_sleep_ns(20 * MS), 0);
    ASSERT_EQ(atomic_load(&blocked_result), 1); /* still waiting */
    if (from_thread) {
        pthread_t t;
        ASSERT_EQ(pthread_create(&t, NULL, close_from_thread, NULL), 0);
        ASSERT_EQ(pthread_join(t, NULL), 0);
    } else {
        ASSERT_EQ(gort_fd_close(blocked_fd), 0);
    }
    ASSERT_EQ(gort_waitgroup_wait(&close_wg), 0);
    ASSERT_EQ(atomic_load(&blocked_result), -ECANCELED);
    /* The read end is closed now: writing gets EPIPE. */
    signal(SIGPIPE, SIG_IGN);
    ASSERT_EQ(write(p[1], "x", 1), -1);
    ASSERT_EQ(errno, EPIPE);
    close(p[1]);
    return 0;
}

TEST(close_wakes_waiter_with_ecanceled)
{
    ASSERT_EQ(run_main(close_main, NULL, 2), 0);
}

TEST(close_from_a_foreign_thread_wakes_waiter)
{
    ASSERT_EQ(run_main(close_main, (void *)1, 2), 0);
}

/* ---- half-closed peer ---------------------------------------------------------- */

static void halfclose_server(void *arg)
{
    gort_fd_t *l = arg;
    gort_fd_t *c;
    ASSERT_EQ(gort_accept(l, &c, NULL, NULL, GORT_NO_DEADLINE), 0);
    char buf[64];
    size_t got = 0;
    for (;;) { /* read to the end of the request: the peer's shutdown */
        ssize_t n = gort_read(c, buf + got, sizeof buf - got, GORT_NO_DEADLINE);
        ASSERT_GE(n, 0);
        if (n == 0)
            break;
        got += (size_t)n;
    }
    ASSERT_EQ(got, 5);
    ASSERT_EQ(memcmp(buf, "hello", 5), 0);
    ASSERT_EQ(gort_write(c, "world", 5, GORT_NO_DEADLINE), 5);
    ASSERT_EQ(gort_fd_close(c), 0);
    ASSERT_EQ(gort_waitgroup_done(&close_wg), 0);
}

static int halfclose_main(void *arg)
{
    (void)arg;
    struct sockaddr_in a;
    gort_fd_t *l = open_fd(listen_loopback(&a, 4));
    ASSERT_EQ(gort_waitgroup_add(&close_wg, 1), 0);
    ASSERT_EQ(gort_go(halfclose_server, l), 0);
    gort_fd_t *c = dial(&a);
    ASSERT_EQ(gort_write(c, "hello", 5, GORT_NO_DEADLINE), 5);
    ASSERT_EQ(shutdown(gort_fd_fileno(c), SHUT_WR), 0);
    char buf[16];
    size_t got = 0;
    for (;;) {
        ssize_t n = gort_read(c, buf + got, sizeof buf - got, gort_now_ns() + 10000 * MS);
        ASSERT_GE(n, 0);
        if (n == 0)
            break;
        got += (size_t)n;
    }
    ASSERT_EQ(got, 5);
    ASSERT_EQ(memcmp(buf, "world", 5), 0);
    ASSERT_EQ(gort_waitgroup_wait(&close_wg), 0);
    ASSERT_EQ(gort_fd_close(c), 0);
    ASSERT_EQ(gort_fd_close(l), 0);
    return 0;
}

TEST(half_closed_peer_gets_its_answer)
{
    ASSERT_EQ(run_main(halfclose_main, NULL, 2), 0);
}

/* ---- EAGAIN storm ------------------------------------------------------------------- */

#define STORM_BYTES (4 << 20)
static gort_fd_t *storm_r, *storm_w;

static void storm_writer(void *arg)
{
    (void)arg;
    static unsigned char buf[1 << 16];
    for (size_t off = 0; off < STORM_BYTES; off += sizeof buf) {
        for (size_t i = 0; i < sizeof buf; i++)
            buf[i] = (unsigned char)((off + i) * 7);
        ASSERT_EQ(gort_write(storm_w, buf, sizeof buf, GORT_NO_DEADLINE), sizeof buf);
    }
    ASSERT_EQ(gort_fd_close(storm_w), 0);
    ASSERT_EQ(gort_waitgroup_done(&close_wg), 0);
}

static int storm_main(void *arg)
{
    (void)arg;
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    ASSERT_GT(fcntl(p[1], F_SETPIPE_SZ, 4096), 0);
    storm_r = open_fd(p[0]);
    storm_w = open_fd(p[1]);
    gort_stats_t before = stats_now();
    ASSERT_EQ(gort_waitgroup_add(&close_wg, 1), 0);
    ASSERT_EQ(gort_go(storm_writer, NULL), 0);
    size_t total = 0;
    unsigned char buf[1000];
    for (;;) {
        ssize_t n = gort_read(storm_r, buf, sizeof buf, GORT_NO_DEADLINE);
        ASSERT_GE(n, 0);
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            ASSERT_EQ(buf[i], (unsigned char)((total + (size_t)i) * 7));
        total += (size_t)n;
        if (total % 7 == 0)
            ASSERT_EQ(gort_yield(), 0);
    }
    ASSERT_EQ(total, STORM_BYTES);
    ASSERT_EQ(gort_waitgroup_wait(&close_wg), 0);
    gort_stats_t after = stats_now();
    test_log("%llu goroutines readied by the poller for %d bytes through a 4 KiB pipe",
             (unsigned long long)(after.netpoll_readied - before.netpoll_readied), STORM_BYTES);
    ASSERT_EQ(gort_fd_close(storm_r), 0);
    return 0;
}

TEST(eagain_storm_small_pipe_procs1)
{
    ASSERT_EQ(run_main(storm_main, NULL, 1), 0);
}

TEST(eagain_storm_small_pipe_procs2)
{
    ASSERT_EQ(run_main(storm_main, NULL, 2), 0);
}

/* ---- dedicated ----------------------------------------------------------------------- */

static gort_fd_t *ded_r;
static _Atomic int ded_got;

static void ded_reader(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_dedicate_os_thread(), 0);
    long tid = test_gettid();
    int p = gort_current_p();
    for (int i = 0; i < 100; i++) {
        char c;
        ASSERT_EQ(gort_read(ded_r, &c, 1, gort_now_ns() + 10000 * MS), 1);
        ASSERT_EQ(c, (char)i);
        ASSERT_EQ(test_gettid(), tid); /* parked on, and woken on, its own thread */
        ASSERT_EQ(gort_current_p(), p);
        atomic_fetch_add(&ded_got, 1);
    }
    ASSERT_EQ(gort_undedicate_os_thread(), 0);
    ASSERT_EQ(gort_waitgroup_done(&close_wg), 0);
}

static int ded_main(void *arg)
{
    (void)arg;
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    ded_r = open_fd(p[0]);
    gort_fd_t *w = open_fd(p[1]);
    ASSERT_EQ(gort_waitgroup_add(&close_wg, 1), 0);
    ASSERT_EQ(gort_go(ded_reader, NULL), 0);
    for (int i = 0; i < 100; i++) {
        ASSERT_EQ(gort_sleep_ns(200000), 0); /* the reader is parked by now, usually */
        char c = (char)i;
        ASSERT_EQ(gort_write(w, &c, 1, GORT_NO_DEADLINE), 1);
    }
    ASSERT_EQ(gort_waitgroup_wait(&close_wg), 0);
    ASSERT_EQ(atomic_load(&ded_got), 100);
    ASSERT_EQ(gort_fd_close(ded_r), 0);
    ASSERT_EQ(gort_fd_close(w), 0);
    return 0;
}

TEST(dedicated_goroutine_parks_on_its_own_thread)
{
    ASSERT_EQ(run_main_spin(ded_main, NULL, 1, -1), 0);
}

/* ---- misc ------------------------------------------------------------------------------ */

static void *foreign(void *arg)
{
    (void)arg;
    gort_fd_t *f;
    ASSERT_EQ(gort_fd_open(&f, 0), -EPERM);
    return NULL;
}

static int misc_main(void *arg)
{
    (void)arg;
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, foreign, NULL), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    gort_fd_t *f;
    ASSERT_EQ(gort_fd_open(NULL, 0), -EINVAL);
    ASSERT_EQ(gort_fd_open(&f, -1), -EINVAL);
    ASSERT_EQ(gort_fd_close(NULL), -EINVAL);
    ASSERT_EQ(gort_fd_wait(NULL, GORT_FD_READ, 0), -EINVAL);
    /* A regular file cannot be polled, and a refused descriptor keeps its
     * flags (O_NONBLOCK is not left behind). */
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(gort_fd_open(&f, fd), -EPERM);
    ASSERT_EQ(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    close(fd);
    /* A refused connection. */
    struct sockaddr_in a;
    int ls = listen_loopback(&a, 1);
    close(ls); /* nobody listens there now */
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    gort_fd_t *c = open_fd(s);
    ASSERT_EQ(gort_connect(c, (struct sockaddr *)&a, sizeof a, gort_now_ns() + 5000 * MS),
              -ECONNREFUSED);
    ASSERT_EQ(gort_fd_close(c), 0);
    /* fd_wait */
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    gort_fd_t *r = open_fd(p[0]), *w = open_fd(p[1]);
    ASSERT_EQ(gort_fd_wait(r, 3, GORT_NO_DEADLINE), -EINVAL);
    ASSERT_EQ(gort_fd_wait(w, GORT_FD_WRITE, GORT_NO_DEADLINE), GORT_FD_WRITE);
    ASSERT_EQ(gort_fd_wait(r, GORT_FD_READ, gort_now_ns() + 10 * MS), -ETIMEDOUT);
    ASSERT_EQ(gort_write(w, "z", 1, GORT_NO_DEADLINE), 1);
    ASSERT_EQ(gort_fd_wait(r, GORT_FD_READ, GORT_NO_DEADLINE), GORT_FD_READ);
    ASSERT_EQ(gort_fd_wait(r, GORT_FD_READ, GORT_NO_DEADLINE), GORT_FD_READ); /* still */
    ASSERT_EQ(gort_fd_fileno(r), p[0]);
    ASSERT_EQ(gort_fd_close(r), 0);
    ASSERT_EQ(gort_fd_close(w), 0);
    return 0;
}

TEST(misc_errors_refused_and_fd_wait)
{
    ASSERT_EQ(run_main(misc_main, NULL, 2), 0);
}

/* Whether the kernel (or the emulator: qemu-user and valgrind may not know
 * it) has epoll_pwait2; the runtime falls back to epoll_wait without it. */
static bool have_epoll_pwait2(void)
{
#ifdef SYS_epoll_pwait2
    int ep = epoll_create1(EPOLL_CLOEXEC);
    ASSERT_GE(ep, 0);
    struct epoll_event ev;
    struct timespec ts = {0, 0};
    long r = syscall(SYS_epoll_pwait2, ep, &ev, 1, &ts, NULL, 0);
    bool ok = r >= 0 || errno != ENOSYS;
    close(ep);
    return ok;
#else
    return false;
#endif
}

/* With the netpoller in use the timer sleeper waits in epoll: a sleep much
 * shorter than 1 ms must not be rounded up to epoll_wait's milliseconds
 * (where epoll_pwait2 is missing the fallback rounds, as Go does). */
static int subms_sleep_main(void *arg)
{
    (void)arg;
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    gort_fd_t *f = open_fd(p[0]);
    ASSERT_EQ(gort_waitgroup_add(&close_wg, 1), 0);
    blocked_fd = f;
    ASSERT_EQ(gort_go(blocked_reader, NULL), 0); /* someone waits in the poller */
    enum { N = 21 };
    int64_t d[N];
    for (int i = 0; i < N; i++) {
        int64_t t0 = test_now_ns();
        ASSERT_EQ(gort_sleep_ns(100 * 1000), 0);
        d[i] = test_now_ns() - t0;
        ASSERT_GE(d[i], 100 * 1000);
    }
    for (int i = 0; i < N; i++) /* insertion sort: the median */
        for (int j = i; j > 0 && d[j] < d[j - 1]; j--) {
            int64_t t = d[j];
            d[j] = d[j - 1];
            d[j - 1] = t;
        }
    test_log("100 us sleeps with a descriptor in the poller: median %lld us, max %lld us",
             (long long)d[N / 2] / 1000, (long long)d[N - 1] / 1000);
    if (have_epoll_pwait2())
        ASSERT_LT(d[N / 2], 900 * 1000); /* 1 ms rounding would give >= 1,000 us */
    else
        test_log("no epoll_pwait2 here (kernel, qemu-user or valgrind): rounding expected");
    ASSERT_EQ(gort_fd_close(f), 0);
    ASSERT_EQ(gort_waitgroup_wait(&close_wg), 0);
    close(p[1]);
    return 0;
}

TEST(submillisecond_sleep_with_netpoller_procs1)
{
    ASSERT_EQ(run_main(subms_sleep_main, NULL, 1), 0);
}

static void *write_later(void *arg)
{
    usleep(50 * 1000);
    ASSERT_EQ(write((int)(intptr_t)arg, "x", 1), 1);
    return NULL;
}

/* With gort_config_t.timer_spin_ns the sleeper spins only through the last
 * stretch before a timer. An event nobody waits for (a pipe written to by
 * a foreign thread while no goroutine reads it) ends its epoll wait early;
 * it must go back to sleep, not spin until the timer (which burnt a CPU for
 * the rest of a 300 ms sleep). */
static int spin_early_main(void *arg)
{
    (void)arg;
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    gort_fd_t *f = open_fd(p[0]); /* registered, never read */
    struct timespec c0, c1;
    ASSERT_EQ(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0), 0);
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, write_later, (void *)(intptr_t)p[1]), 0);
    ASSERT_EQ(gort_sleep_ns(300 * MS), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_EQ(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1), 0);
    int64_t cpu = (c1.tv_sec - c0.tv_sec) * 1000000000ll + (c1.tv_nsec - c0.tv_nsec);
    test_log("CPU time during a 300 ms sleep with a 50 us timer spin: %lld us",
             (long long)cpu / 1000);
    ASSERT_LT(cpu, 100 * MS);
    ASSERT_EQ(gort_fd_close(f), 0);
    close(p[1]);
    return 0;
}

TEST(timer_spin_only_at_the_end_with_netpoller)
{
    ASSERT_EQ(run_main_timer_spin(spin_early_main, NULL, 1, 50 * 1000), 0);
}

/* The last running P going idle without passing through findrunnable (here:
 * main dedicates its thread at GOMAXPROCS=1 while a goroutine is parked on
 * a pipe) must leave a poller behind (Go's handoffp rule): otherwise the
 * reader waits for sysmon, which does not poll once every P is idle. A
 * foreign thread writes after 50 ms; without a poller the read never ends
 * and the 10 s deadline below fires. */
static gort_fd_t *lp_r;
static gort_chan_t *lp_done;

static void lp_reader(void *arg)
{
    (void)arg;
    char c;
    ASSERT_EQ(gort_read(lp_r, &c, 1, GORT_NO_DEADLINE), 1);
    ASSERT_EQ(gort_chan_send(lp_done, NULL), 0);
}

static int lp_main(void *arg)
{
    (void)arg;
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    lp_r = open_fd(p[0]);
    ASSERT_EQ(gort_chan_make(&lp_done, 0, 1), 0);
    ASSERT_EQ(gort_go(lp_reader, NULL), 0);
    ASSERT_EQ(gort_yield(), 0); /* it parks on the pipe; this M comes back to us */
    ASSERT_EQ(gort_dedicate_os_thread(), 0);
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, write_later, (void *)(intptr_t)p[1]), 0);
    ASSERT_EQ(gort_chan_recv_deadline(lp_done, NULL, NULL, gort_now_ns() + 10000 * MS), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_EQ(gort_undedicate_os_thread(), 0);
    ASSERT_EQ(gort_fd_close(lp_r), 0);
    ASSERT_EQ(close(p[1]), 0);
    ASSERT_EQ(gort_chan_free(lp_done), 0);
    return 0;
}

TEST(last_p_idle_at_dedicate_leaves_a_poller)
{
    ASSERT_EQ(run_main(lp_main, NULL, 1), 0);
    ASSERT_EQ(run_main(lp_main, NULL, 2), 0);
}
