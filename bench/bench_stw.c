/*
 * bench_stw.c - stop-the-world with dedicated threads (issue 7).
 *
 * 1. Stop-the-world latency: the main goroutine stops and starts the world
 *    over and over (a 100 us sleep between cycles, so every stop finds the
 *    world running normally), with K = 0, 100 and 1,000 dedicated
 *    goroutines blocked in system calls (FUTEX_WAIT on a word nobody
 *    changes until the end, through gort_syscall(LAZY)). K = 0 is the
 *    baseline; the ratio K / 0 is the target (<= 1.5 at 1,000: the
 *    stop must not grow with blocked dedicated threads). Two worlds: idle
 *    (nothing else runs) and busy (GOMAXPROCS-1 normal goroutines in a loop
 *    of gort_preempt_check, which the stop has to preempt; the stopper
 *    needs the last P). Reported: the
 *    median and p99 of gort_stop_the_world's duration per run, and of a
 *    whole stop+start cycle.
 * 2. Dedicated ping-pong under stops: two dedicated goroutines (client and
 *    server, unbuffered channels, the spin as configured) with and without
 *    a normal goroutine that stops and starts the world 100 times a second.
 *    Runs alternate in the same process; the ratio is throughput with stops
 *    / without (target >= 0.9).
 *
 * Spin: dedicated threads spin up to dedicated_spin_ns (default) before
 * sleeping. Pinning: none.
 *
 * Usage: bench_stw [-r runs] [-c cycles] [-t pingpong_ms]
 */
#include "bench_common.h"

#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/syscall.h>

#define US 1000ll
#define MS 1000000ll

static int cycles = 1000;
static long pp_ms = 300;

/* ======================================================================== */
/* 1. latency                                                               */
/* ======================================================================== */

static _Atomic uint32_t blocker_word; /* 0 until the end */
static _Atomic int blockers_in;
static _Atomic bool busy_stop;
static gort_waitgroup_t lat_wg;

static void blocker(void *arg)
{
    (void)arg;
    if (gort_dedicate_os_thread() != 0)
        bench_die("gort_dedicate_os_thread failed");
    atomic_fetch_add(&blockers_in, 1);
    while (atomic_load(&blocker_word) == 0)
        gort_syscall(GORT_SYSCALL_LAZY, SYS_futex, (long)&blocker_word, FUTEX_WAIT_PRIVATE, 0, 0, 0,
                     0);
    gort_undedicate_os_thread();
    gort_waitgroup_done(&lat_wg);
}

static void busy(void *arg)
{
    (void)arg;
    while (!atomic_load(&busy_stop))
        gort_preempt_check();
    gort_waitgroup_done(&lat_wg);
}

typedef struct lat_arg {
    int k;
    bool busy;
    double stop_med, stop_p99, cycle_med;
} lat_arg_t;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int lat_main(void *p)
{
    lat_arg_t *a = p;
    atomic_store(&blocker_word, 0);
    atomic_store(&blockers_in, 0);
    atomic_store(&busy_stop, false);
    gort_waitgroup_init(&lat_wg);
    int nbusy = a->busy ? gort_gomaxprocs() - 1 : 0; /* the stopper needs a P too */
    gort_waitgroup_add(&lat_wg, a->k + nbusy);
    for (int i = 0; i < a->k; i++)
        if (gort_go(blocker, NULL) != 0)
            bench_die("gort_go failed");
    while (atomic_load(&blockers_in) < a->k)
        gort_sleep_ns(1 * MS);
    gort_sleep_ns(20 * MS); /* let the last ones enter the kernel */
    for (int i = 0; i < nbusy; i++)
        gort_go(busy, NULL);
    int64_t *stop = malloc(sizeof(int64_t) * (size_t)cycles);
    int64_t *cyc = malloc(sizeof(int64_t) * (size_t)cycles);
    if (!stop || !cyc)
        bench_die("out of memory");
    for (int i = 0; i < cycles; i++) {
        gort_sleep_ns(100 * US);
        int64_t t0 = bench_now_ns();
        if (gort_stop_the_world("bench") != 0)
            bench_die("gort_stop_the_world failed");
        int64_t t1 = bench_now_ns();
        gort_start_the_world();
        int64_t t2 = bench_now_ns();
        stop[i] = t1 - t0;
        cyc[i] = t2 - t0;
    }
    qsort(stop, (size_t)cycles, sizeof *stop, cmp_i64);
    qsort(cyc, (size_t)cycles, sizeof *cyc, cmp_i64);
    a->stop_med = (double)stop[cycles / 2];
    a->stop_p99 = (double)stop[cycles * 99 / 100];
    a->cycle_med = (double)cyc[cycles / 2];
    free(stop);
    free(cyc);
    atomic_store(&busy_stop, true);
    atomic_store(&blocker_word, 1);
    syscall(SYS_futex, &blocker_word, FUTEX_WAKE_PRIVATE, INT_MAX, 0, 0, 0);
    gort_waitgroup_wait(&lat_wg);
    return 0;
}

static lat_arg_t lat_run(int k, bool busyworld)
{
    lat_arg_t a = {.k = k, .busy = busyworld};
    bench_gort_run(lat_main, &a, 2);
    return a;
}

/* ======================================================================== */
/* 2. dedicated ping-pong under stops                                       */
/* ======================================================================== */

typedef struct pp_arg {
    bool stops;
    long rounds;
    gort_chan_t *req, *resp;
    gort_waitgroup_t wg;
    _Atomic bool done;
    long nstops;
    double ns;
} pp_arg_t;

static void pp_server(void *p)
{
    pp_arg_t *a = p;
    if (gort_dedicate_os_thread() != 0)
        bench_die("server: gort_dedicate_os_thread failed");
    long v;
    bool ok;
    while (gort_chan_recv(a->req, &v, &ok) == 0 && ok && v != LONG_MAX)
        gort_chan_send(a->resp, &v);
    gort_undedicate_os_thread();
    gort_waitgroup_done(&a->wg);
}

static void stopper(void *p)
{
    pp_arg_t *a = p;
    int64_t next = bench_now_ns();
    while (!atomic_load(&a->done)) {
        next += 10 * MS; /* 100 stops a second */
        int64_t left = next - bench_now_ns();
        if (left > 0)
            gort_sleep_ns(left);
        gort_stop_the_world("bench");
        gort_start_the_world();
        a->nstops++;
    }
    gort_waitgroup_done(&a->wg);
}

static int pp_main(void *p)
{
    pp_arg_t *a = p;
    if (gort_dedicate_os_thread() != 0)
        bench_die("client: gort_dedicate_os_thread failed");
    gort_chan_make(&a->req, sizeof(long), 0);
    gort_chan_make(&a->resp, sizeof(long), 0);
    gort_waitgroup_init(&a->wg);
    gort_waitgroup_add(&a->wg, a->stops ? 2 : 1);
    gort_go(pp_server, a);
    long v, w;
    for (long i = 0; i < 1000; i++) { /* warm-up */
        gort_chan_send(a->req, &i);
        gort_chan_recv(a->resp, &w, NULL);
    }
    if (a->stops)
        gort_go(stopper, a);
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < a->rounds; i++) {
        v = i;
        gort_chan_send(a->req, &v);
        gort_chan_recv(a->resp, &w, NULL);
        if (w != v)
            bench_die("ping-pong: wrong reply");
    }
    a->ns = (double)(bench_now_ns() - t0) / (double)a->rounds;
    atomic_store(&a->done, true);
    v = LONG_MAX;
    gort_chan_send(a->req, &v);
    gort_waitgroup_wait(&a->wg);
    gort_chan_free(a->req);
    gort_chan_free(a->resp);
    gort_undedicate_os_thread();
    return 0;
}

static pp_arg_t pp_run(bool stops, long rounds)
{
    pp_arg_t a;
    memset(&a, 0, sizeof a);
    a.stops = stops;
    a.rounds = rounds;
    bench_gort_run(pp_main, &a, 2);
    return a;
}

static void usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [-r runs] [-c cycles] [-t pingpong_ms]\n", argv0);
    exit(2);
}

int main(int argc, char **argv)
{
    int runs = BENCH_MIN_RUNS;
    int c;
    while ((c = getopt(argc, argv, "r:c:t:h")) != -1) {
        switch (c) {
        case 'r':
            runs = bench_parse_runs(optarg);
            break;
        case 'c':
            cycles = (int)bench_parse_long("-c", optarg, 100, 1000000);
            break;
        case 't':
            pp_ms = bench_parse_long("-t", optarg, 10, 100000);
            break;
        default:
            usage(argv[0]);
        }
    }
    if (optind != argc)
        usage(argv[0]);
    bench_print_header("bench_stw", runs);
    bench_note("dedicated threads: spin up to dedicated_spin_ns (default 50 us, adaptive) "
               "before their futex sleep");
    bench_note("pinning: none; GOMAXPROCS=2");
    bench_note("latency: %d stop/start cycles per run, 100 us sleep between cycles; blocked = "
               "dedicated goroutines in FUTEX_WAIT through gort_syscall(LAZY); busy = GOMAXPROCS-1 "
               "normal goroutines looping on gort_preempt_check (the stopper runs on the other P)",
               cycles);
    bench_note("ping-pong: two dedicated goroutines, unbuffered channels, ~%ld ms per run; "
               "stops: another goroutine stops and starts the world every 10 ms",
               pp_ms);

    static const int ks[] = {0, 100, 1000};
    enum { NK = 3 };
    static lat_arg_t lat[2][NK][BENCH_MAX_RUNS];
    static pp_arg_t pp[2][BENCH_MAX_RUNS];
    lat_run(0, false); /* warm-up */
    pp_arg_t w = pp_run(false, 2000);
    long rounds = (long)((double)pp_ms * 1e6 / (w.ns > 1 ? w.ns : 1));
    if (rounds < 2000)
        rounds = 2000;
    for (int r = 0; r < runs; r++) {
        for (int b = 0; b < 2; b++)
            for (int k = 0; k < NK; k++)
                lat[b][k][r] = lat_run(ks[k], b);
        pp[0][r] = pp_run(false, rounds);
        pp[1][r] = pp_run(true, rounds);
    }

    double v[BENCH_MAX_RUNS], med[2][NK];
    char name[96];
    for (int b = 0; b < 2; b++) {
        for (int k = 0; k < NK; k++) {
            const char *world = b ? "busy" : "idle";
            for (int r = 0; r < runs; r++)
                v[r] = lat[b][k][r].stop_med;
            snprintf(name, sizeof name, "stw_%s_ded%d_stop_ns_median", world, ks[k]);
            med[b][k] = bench_report(name, "ns", v, runs);
            for (int r = 0; r < runs; r++)
                v[r] = lat[b][k][r].stop_p99;
            snprintf(name, sizeof name, "stw_%s_ded%d_stop_ns_p99", world, ks[k]);
            bench_report(name, "ns", v, runs);
            for (int r = 0; r < runs; r++)
                v[r] = lat[b][k][r].cycle_med;
            snprintf(name, sizeof name, "stw_%s_ded%d_cycle_ns_median", world, ks[k]);
            bench_report(name, "ns", v, runs);
        }
        for (int k = 1; k < NK; k++) {
            snprintf(name, sizeof name, "stw_%s_ded%d_vs_ded0", b ? "busy" : "idle", ks[k]);
            bench_ratio(name, med[b][k] / med[b][0]);
        }
    }
    double ppm[2];
    for (int s = 0; s < 2; s++) {
        for (int r = 0; r < runs; r++)
            v[r] = pp[s][r].ns;
        ppm[s] = bench_report(s ? "pp_ded_with_100_stw_per_s_ns_per_rt" : "pp_ded_ns_per_rt", "ns",
                              v, runs);
    }
    for (int r = 0; r < runs; r++)
        v[r] = (double)pp[1][r].nstops / ((double)rounds * pp[1][r].ns / 1e9);
    bench_report("pp_stops_per_s", "count", v, runs);
    bench_ratio("pp_throughput_with_stw_vs_without", ppm[0] / ppm[1]);
    bench_print_table("bench_stw: median of runs (ratios: latency K / latency 0, throughput with "
                      "stops / without)");
    return 0;
}
