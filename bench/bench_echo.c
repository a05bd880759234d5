/*
 * bench_echo.c - TCP echo over loopback (issue 8): gort's netpoller against
 * a hand-written single-threaded epoll server and, where a Go toolchain is
 * installed, Go's net package.
 *
 * One client, built with gort (GOMAXPROCS=1, unpinned), opens C
 * connections (1, 100, 1,000) and on each one loops: write 64 bytes, read
 * the 64 bytes back (TCP_NODELAY), for -t ms per run. Servers, each in a
 * child process started for the run:
 *   gort_p1    examples/echo-server's design: a goroutine per connection,
 *              gort_read / gort_write, GOMAXPROCS=1;
 *   gort_p2    the same with GOMAXPROCS=2;
 *   epoll      one thread, epoll edge-triggered, a read/write loop per
 *              ready descriptor (the baseline);
 *   go         Go's net package, a goroutine per connection (io.Copy-like
 *              loop), GOMAXPROCS=1 (if `go` is found: $GO, then
 *              /usr/lib/go-1.19/bin/go, then PATH).
 * Reported per server and connection count: requests/s, p99 latency of one
 * request (client-side, every request timed), and requests per CPU-second
 * of the server process (utime + stime from /proc: "per core used").
 * Ratios: gort / epoll and gort / go per core used.
 *
 * Spin: gort's idle Ms steal then sleep in epoll_wait (no PAUSE loop);
 * pinning: none.
 *
 * Usage: bench_echo [-r runs] [-t ms]
 */
#include "bench_common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

enum { MSG = 64 };

static int listen_any(int *port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 4096) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) != 0)
        bench_die("listen: %s", strerror(errno));
    *port = ntohs(a.sin_port);
    return s;
}

/* ---- servers (child processes) ---- */

static void nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void epoll_server(int ls)
{
    int ep = epoll_create1(0);
    fcntl(ls, F_SETFL, O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    struct epoll_event evs[256];
    char buf[4096];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                int c;
                while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    nodelay(c);
                    struct epoll_event ce = {.events = EPOLLIN | EPOLLET, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            for (;;) {
                ssize_t r = read(fd, buf, sizeof buf);
                if (r > 0) {
                    ssize_t off = 0; /* 64-byte echoes fit the socket buffer */
                    while (off < r) {
                        ssize_t w = write(fd, buf + off, (size_t)(r - off));
                        if (w <= 0)
                            break;
                        off += w;
                    }
                    continue;
                }
                if (r == 0 || (errno != EAGAIN && errno != EINTR))
                    close(fd);
                break;
            }
        }
    }
}

static void gort_serve(void *arg)
{
    gort_fd_t *c = arg;
    char buf[4096];
    ssize_t n;
    while ((n = gort_read(c, buf, sizeof buf, GORT_NO_DEADLINE)) > 0)
        if (gort_write(c, buf, (size_t)n, GORT_NO_DEADLINE) != n)
            break;
    gort_fd_close(c);
}

static int gort_server_main(void *arg)
{
    gort_fd_t *l;
    if (gort_fd_open(&l, (int)(intptr_t)arg) != 0)
        bench_die("gort_fd_open");
    for (;;) {
        gort_fd_t *c;
        if (gort_accept(l, &c, NULL, NULL, GORT_NO_DEADLINE) != 0)
            continue;
        nodelay(gort_fd_fileno(c));
        gort_go(gort_serve, c);
    }
    return 0;
}

static const char go_src[] =
    "package main\n"
    "import (\"net\"; \"os\"; \"fmt\"; \"runtime\")\n"
    "func main() {\n"
    "  runtime.GOMAXPROCS(1)\n"
    "  l, err := net.Listen(\"tcp\", \"127.0.0.1:0\")\n"
    "  if err != nil { os.Exit(1) }\n"
    "  fmt.Println(l.Addr().(*net.TCPAddr).Port)\n"
    "  for {\n"
    "    c, err := l.Accept()\n"
    "    if err != nil { continue }\n"
    "    go func(c net.Conn) {\n"
    "      buf := make([]byte, 4096)\n"
    "      for {\n"
    "        n, err := c.Read(buf)\n"
    "        if err != nil { c.Close(); return }\n"
    "        if _, err := c.Write(buf[:n]); err != nil { c.Close(); return }\n"
    "      }\n"
    "    }(c)\n"
    "  }\n"
    "}\n";

static char go_bin[256]; /* built Go server, or "" */

static void build_go_server(void)
{
    const char *cands[] = {getenv("GO"), "/usr/lib/go-1.19/bin/go", "go"};
    char dir[] = "/tmp/bench_echo_go_XXXXXX";
    if (!mkdtemp(dir))
        return;
    char path[256], cmd[1024];
    snprintf(path, sizeof path, "%s/main.go", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fputs(go_src, f);
    fclose(f);
    for (size_t i = 0; i < sizeof cands / sizeof *cands; i++) {
        if (!cands[i])
            continue;
        snprintf(cmd, sizeof cmd,
                 "cd %s && GOCACHE=%s/cache GO111MODULE=off %s build -o server main.go "
                 ">/dev/null 2>&1",
                 dir, dir, cands[i]);
        if (system(cmd) == 0) {
            snprintf(go_bin, sizeof go_bin, "%s/server", dir);
            FILE *v;
            snprintf(cmd, sizeof cmd, "%s version", cands[i]);
            if ((v = popen(cmd, "r")) != NULL) {
                char line[128] = "";
                if (fgets(line, sizeof line, v))
                    line[strcspn(line, "\n")] = 0;
                pclose(v);
                bench_note("go server: %s (%s), GOMAXPROCS=1", line, cands[i]);
            }
            return;
        }
    }
    bench_note("go server: no Go toolchain found ($GO, /usr/lib/go-1.19/bin/go, PATH): skipped");
}

enum { S_GORT1, S_GORT2, S_EPOLL, S_GO, NS };
static const char *sname[NS] = {"gort_p1", "gort_p2", "epoll", "go"};

/* Starts server kind k; returns its pid and sets *port. */
static pid_t start_server(int k, int *port)
{
    int p[2];
    if (pipe(p) != 0)
        bench_die("pipe");
    int ls = k == S_GO ? -1 : listen_any(port);
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork");
    if (pid == 0) {
        close(p[0]);
        if (k == S_GO) {
            dup2(p[1], 1);
            execl(go_bin, go_bin, (char *)NULL);
            _exit(127);
        }
        if (k == S_EPOLL)
            epoll_server(ls);
        gort_config_t cfg = {.size = sizeof cfg, .gomaxprocs = k == S_GORT1 ? 1 : 2};
        gort_main(gort_server_main, (void *)(intptr_t)ls, &cfg);
        _exit(0);
    }
    close(p[1]);
    if (k == S_GO) {
        char buf[32] = "";
        ssize_t n = read(p[0], buf, sizeof buf - 1);
        *port = n > 0 ? atoi(buf) : 0;
        if (*port <= 0)
            bench_die("go server did not start");
    } else {
        close(ls);
    }
    close(p[0]);
    return pid;
}

static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (p)
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- client ---- */

typedef struct cl {
    int port, conns;
    int64_t ms;
    pid_t server;
    _Atomic bool stop;
    _Atomic long reqs;
    gort_waitgroup_t wg;
    int64_t *lat; /* sampled latencies */
    _Atomic long nlat;
    long maxlat;
    double rps, p99_us, per_core;
    long failures;
} cl_t;

static void conn_loop(void *p)
{
    cl_t *a = p;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)a->port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    gort_fd_t *c;
    if (gort_fd_open(&c, s) != 0 ||
        gort_connect(c, (struct sockaddr *)&addr, sizeof addr, GORT_NO_DEADLINE) != 0)
        bench_die("client: connect failed");
    nodelay(s);
    char out[MSG], in[MSG];
    memset(out, 'x', sizeof out);
    long n = 0;
    while (!atomic_load_explicit(&a->stop, memory_order_relaxed)) {
        int64_t t0 = bench_now_ns();
        if (gort_write(c, out, MSG, GORT_NO_DEADLINE) != MSG)
            bench_die("client: write failed");
        size_t got = 0;
        while (got < MSG) {
            ssize_t r = gort_read(c, in + got, MSG - got, GORT_NO_DEADLINE);
            if (r <= 0)
                bench_die("client: read failed (%zd)", r);
            got += (size_t)r;
        }
        long k = atomic_fetch_add_explicit(&a->nlat, 1, memory_order_relaxed);
        if (k < a->maxlat)
            a->lat[k] = bench_now_ns() - t0;
        n++;
    }
    atomic_fetch_add(&a->reqs, n);
    gort_fd_close(c);
    gort_waitgroup_done(&a->wg);
}

static void timer_stop(void *p)
{
    cl_t *a = p;
    gort_sleep_ns(a->ms * 1000000);
    atomic_store(&a->stop, true);
    gort_waitgroup_done(&a->wg);
}

static int cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

static int client_main(void *p)
{
    cl_t *a = p;
    gort_waitgroup_init(&a->wg);
    gort_waitgroup_add(&a->wg, a->conns + 1);
    double c0 = proc_cpu_s(a->server);
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < a->conns; i++)
        gort_go(conn_loop, a);
    gort_go(timer_stop, a);
    gort_waitgroup_wait(&a->wg);
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    double cpu = proc_cpu_s(a->server) - c0;
    a->rps = (double)atomic_load(&a->reqs) / secs;
    a->per_core = cpu > 0 ? (double)atomic_load(&a->reqs) / cpu : 0;
    long n = atomic_load(&a->nlat);
    if (n > a->maxlat)
        n = a->maxlat;
    qsort(a->lat, (size_t)n, sizeof *a->lat, cmp_i64);
    a->p99_us = n ? (double)a->lat[n * 99 / 100] / 1e3 : 0;
    return 0;
}

static cl_t run_one(int k, int conns, int64_t ms)
{
    int port = 0;
    pid_t pid = start_server(k, &port);
    usleep(20000);
    cl_t a;
    memset(&a, 0, sizeof a);
    a.port = port;
    a.conns = conns;
    a.ms = ms;
    a.server = pid;
    a.maxlat = 4000000;
    a.lat = malloc(sizeof(int64_t) * (size_t)a.maxlat);
    if (!a.lat)
        bench_die("out of memory");
    bench_gort_run(client_main, &a, 1);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    free(a.lat);
    a.lat = NULL;
    return a;
}

int main(int argc, char **argv)
{
    int runs = BENCH_MIN_RUNS;
    long ms = 1000;
    int c;
    while ((c = getopt(argc, argv, "r:t:")) != -1) {
        if (c == 'r')
            runs = bench_parse_runs(optarg);
        else if (c == 't')
            ms = bench_parse_long("-t", optarg, 50, 60000);
        else {
            fprintf(stderr, "usage: %s [-r runs] [-t ms]\n", argv[0]);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max < 8192 ? rl.rlim_max : 8192;
    setrlimit(RLIMIT_NOFILE, &rl);
    bench_print_header("bench_echo", runs);
    bench_note("client: gort, GOMAXPROCS=1, one goroutine per connection, 64-byte request then "
               "64-byte reply, TCP_NODELAY, %ld ms per run; servers in child processes",
               ms);
    bench_note("spin: gort's idle Ms look for work then block in epoll_wait (no PAUSE loop); "
               "pinning: none");
    build_go_server();
    static const int cs[] = {1, 100, 1000};
    enum { NC = 3 };
    static cl_t res[NS][NC][BENCH_MAX_RUNS];
    for (int r = 0; r < runs; r++)
        for (int ci = 0; ci < NC; ci++)
            for (int k = 0; k < NS; k++)
                if (k != S_GO || go_bin[0])
                    res[k][ci][r] = run_one(k, cs[ci], ms);
    double v[BENCH_MAX_RUNS], med[NS][NC][3];
    char name[96];
    for (int ci = 0; ci < NC; ci++) {
        for (int k = 0; k < NS; k++) {
            if (k == S_GO && !go_bin[0])
                continue;
            for (int r = 0; r < runs; r++)
                v[r] = res[k][ci][r].rps;
            snprintf(name, sizeof name, "echo_c%d_%s_req_per_s", cs[ci], sname[k]);
            med[k][ci][0] = bench_report(name, "req/s", v, runs);
            for (int r = 0; r < runs; r++)
                v[r] = res[k][ci][r].p99_us;
            snprintf(name, sizeof name, "echo_c%d_%s_p99_us", cs[ci], sname[k]);
            med[k][ci][1] = bench_report(name, "us", v, runs);
            for (int r = 0; r < runs; r++)
                v[r] = res[k][ci][r].per_core;
            snprintf(name, sizeof name, "echo_c%d_%s_req_per_server_cpu_s", cs[ci], sname[k]);
            med[k][ci][2] = bench_report(name, "req/cpu-s", v, runs);
        }
        snprintf(name, sizeof name, "echo_c%d_gort_p1_vs_epoll_per_core", cs[ci]);
        bench_ratio(name, med[S_GORT1][ci][2] / med[S_EPOLL][ci][2]);
        snprintf(name, sizeof name, "echo_c%d_gort_p1_vs_epoll_req_per_s", cs[ci]);
        bench_ratio(name, med[S_GORT1][ci][0] / med[S_EPOLL][ci][0]);
        if (go_bin[0]) {
            snprintf(name, sizeof name, "echo_c%d_gort_p1_vs_go_req_per_s", cs[ci]);
            bench_ratio(name, med[S_GORT1][ci][0] / med[S_GO][ci][0]);
            snprintf(name, sizeof name, "echo_c%d_gort_p1_vs_go_per_core", cs[ci]);
            bench_ratio(name, med[S_GORT1][ci][2] / med[S_GO][ci][2]);
        }
    }
    bench_print_table("bench_echo: median of runs (ratios: gort / baseline, > 1 means gort is "
                      "ahead)");
    return 0;
}
