/*
 * echo-server.c - a TCP echo server on gort's netpoller: one goroutine per
 * connection, each blocking in gort_read / gort_write while its thread runs
 * other goroutines.
 *
 *   echo-server              self-test: serves on a loopback port, runs 100
 *                            client goroutines against it (1,000 requests of
 *                            64 bytes each), checks every byte, prints the
 *                            rate and exits
 *   echo-server -p PORT      serves 127.0.0.1:PORT until killed
 *   echo-server -c N -n R    self-test with N connections, R requests each
 */
#define _GNU_SOURCE /* getopt, SOCK_CLOEXEC under -std=c11 */
#include <arpa/inet.h>
#include <errno.h>
#include <gort.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void serve(void *arg)
{
    gort_fd_t *c = arg;
    char buf[4096];
    ssize_t n;
    while ((n = gort_read(c, buf, sizeof buf, GORT_NO_DEADLINE)) > 0)
        if (gort_write(c, buf, (size_t)n, GORT_NO_DEADLINE) != n)
            break;
    gort_fd_close(c);
}

static void accept_loop(void *arg)
{
    gort_fd_t *l = arg;
    for (;;) {
        gort_fd_t *c;
        int err = gort_accept(l, &c, NULL, NULL, GORT_NO_DEADLINE);
        if (err == -ECANCELED)
            return; /* the listener was closed: we are done */
        if (err) {
            fprintf(stderr, "echo-server: accept: %s\n", gort_strerror(err));
            continue;
        }
        int one = 1;
        setsockopt(gort_fd_fileno(c), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (gort_go(serve, c) != 0)
            gort_fd_close(c);
    }
}

static int listen_on(int port, struct sockaddr_in *addr)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
        return -errno;
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)port);
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof *addr;
    if (bind(s, (struct sockaddr *)addr, sizeof *addr) != 0 || listen(s, 4096) != 0 ||
        getsockname(s, (struct sockaddr *)addr, &len) != 0) {
        int err = -errno;
        close(s);
        return err;
    }
    return s;
}

struct client_arg {
    struct sockaddr_in addr;
    long requests;
    gort_waitgroup_t done;
    long failures;
    gort_mutex_t mu;
};

static void client(void *p)
{
    struct client_arg *a = p;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    gort_fd_t *c = NULL;
    bool ok = s >= 0 && gort_fd_open(&c, s) == 0 &&
              gort_connect(c, (struct sockaddr *)&a->addr, sizeof a->addr, GORT_NO_DEADLINE) == 0;
    if (ok) {
        int one = 1;
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    char out[64] = {0}, in[64]; /* all 64 bytes are sent: none uninitialised */
    for (long i = 0; ok && i < a->requests; i++) {
        snprintf(out, sizeof out, "request %ld of goroutine %lld", i, (long long)gort_self_id());
        ok = gort_write(c, out, sizeof out, GORT_NO_DEADLINE) == (ssize_t)sizeof out;
        size_t got = 0;
        while (ok && got < sizeof in) {
            ssize_t n = gort_read(c, in + got, sizeof in - got, GORT_NO_DEADLINE);
            ok = n > 0;
            got += ok ? (size_t)n : 0;
        }
        ok = ok && memcmp(in, out, sizeof in) == 0;
    }
    if (c)
        gort_fd_close(c);
    else if (s >= 0)
        close(s);
    if (!ok) {
        gort_mutex_lock(&a->mu);
        a->failures++;
        gort_mutex_unlock(&a->mu);
    }
    gort_waitgroup_done(&a->done);
}

static int port = -1;
static long conns = 100, requests = 1000;

static int run(void *arg)
{
    (void)arg;
    struct sockaddr_in addr;
    int s = listen_on(port < 0 ? 0 : port, &addr);
    gort_fd_t *l;
    if (s < 0 || gort_fd_open(&l, s) != 0) {
        fprintf(stderr, "echo-server: cannot listen: %s\n", gort_strerror(s < 0 ? s : -EBADF));
        return 1;
    }
    gort_go(accept_loop, l);
    if (port >= 0) {
        printf("echo-server: serving 127.0.0.1:%d\n", ntohs(addr.sin_port));
        fflush(stdout);
        for (;;)
            gort_sleep_ns(3600ll * 1000000000);
    }
    struct client_arg a = {.addr = addr, .requests = requests};
    gort_waitgroup_init(&a.done);
    gort_mutex_t m0 = GORT_MUTEX_INIT;
    a.mu = m0;
    gort_waitgroup_add(&a.done, (int)conns);
    int64_t t0 = gort_now_ns();
    for (long i = 0; i < conns; i++)
        gort_go(client, &a);
    gort_waitgroup_wait(&a.done);
    double secs = (double)(gort_now_ns() - t0) / 1e9;
    gort_fd_close(l);
    gort_stats_t st = {.size = sizeof st};
    gort_stats_get(&st);
    printf("echo-server: %ld connections x %ld requests of 64 bytes in %.3f s: %.0f requests/s, "
           "%llu threads, %llu goroutines readied by the poller, %ld failed connections\n",
           conns, requests, secs, (double)(conns * requests) / secs,
           (unsigned long long)st.ms_created, (unsigned long long)st.netpoll_readied, a.failures);
    return a.failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    int c;
    while ((c = getopt(argc, argv, "p:c:n:")) != -1) {
        switch (c) {
        case 'p':
            port = atoi(optarg);
            break;
        case 'c':
            conns = atol(optarg);
            break;
        case 'n':
            requests = atol(optarg);
            break;
        default:
            fprintf(stderr, "usage: %s [-p port] [-c connections] [-n requests]\n", argv[0]);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    int r = gort_main(run, NULL, NULL);
    if (r < 0) {
        fprintf(stderr, "echo-server: gort_main: %s\n", gort_strerror(r));
        return 1;
    }
    return r;
}
