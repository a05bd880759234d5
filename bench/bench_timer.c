/*
 * bench_timer.c - timer churn and sleep accuracy.
 *
 * 1. Churn (GOMAXPROCS=1): N = 100,000 fn timers with random delays of 1-2
 *    hours (they never fire), in phases timed separately, ns per operation:
 *    gort_timer_start of all N (the heap grows to N), gort_timer_reset of
 *    all N to new random delays, then N x {start, stop, free} of one more
 *    timer on top of the full heap (the pattern of a timeout that is
 *    usually cancelled), gort_timer_stop of all N (each must return 1), and
 *    gort_timer_free of all N.
 *    Baseline (same runs): POSIX per-process timers, the kernel's hrtimers
 *    (timer_create with SIGEV_NONE on CLOCK_MONOTONIC, timer_settime to arm,
 *    re-arm and disarm, timer_delete), the same phases. timer_create counts
 *    against RLIMIT_SIGPENDING (per user); if it runs out, 1024 fewer than
 *    could be created are used, and the count is printed.
 * 2. Sleep accuracy: S sleeps of 1 ms (default 1000) per run; lateness = time
 *    slept - 1 ms. gort_sleep_ns in the main goroutine at GOMAXPROCS=1 and 2
 *    (nothing else runs) against clock_nanosleep(CLOCK_MONOTONIC, relative
 *    1 ms) in a plain pthread. Per run the p50 and p99 of the lateness are
 *    taken; the medians over the runs are reported. The kernel's timer slack
 *    (prctl PR_GET_TIMERSLACK, inherited by every thread here) is printed:
 *    both sides pay it on their futex / nanosleep. A third gort
 *    configuration (GOMAXPROCS=1) sets gort_config_t.timer_spin_ns (-S,
 *    default 200 us): the sleeper spins through the last stretch instead of
 *    sleeping it.
 *
 * Usage: bench_timer [-r runs] [-n timers] [-s sleeps] [-S timer_spin_ns]
 */
#include "bench_common.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/prctl.h>

#define MS ((int64_t)1000000)

static void check(int r, const char *what)
{
    if (r < 0)
        bench_die("%s failed: %s (%d)", what, gort_strerror(r), r);
}

static uint64_t rng_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 17;
}

/* A delay between 1 and 2 hours. */
static int64_t long_delay(uint64_t *s)
{
    return 3600 * 1000 * MS + (int64_t)(rng_next(s) % (uint64_t)(3600 * 1000 * MS));
}

/* ---- 1. churn -------------------------------------------------------------- */

enum { PH_START, PH_RESET, PH_PAIR, PH_STOP, PH_FREE, NPHASES };

typedef struct churn_arg {
    long n;
    double ns[NPHASES];
} churn_arg_t;

static void noop(void *arg)
{
    (void)arg;
}

static int churn_main(void *p)
{
    churn_arg_t *a = p;
    gort_timer_t **ts = malloc((size_t)a->n * sizeof *ts);
    if (!ts)
        bench_die("out of memory");
    uint64_t rng = 42;
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < a->n; i++)
        check(gort_timer_start(&ts[i], long_delay(&rng), 0, NULL, noop, NULL), "gort_timer_start");
    int64_t t1 = bench_now_ns();
    for (long i = 0; i < a->n; i++) {
        int r = gort_timer_reset(ts[i], long_delay(&rng), 0);
        if (r != 1)
            bench_die("gort_timer_reset returned %d, expected 1 (pending)", r);
    }
    int64_t t2 = bench_now_ns();
    for (long i = 0; i < a->n; i++) {
        gort_timer_t *t;
        check(gort_timer_start(&t, long_delay(&rng), 0, NULL, noop, NULL), "gort_timer_start");
        if (gort_timer_stop(t) != 1)
            bench_die("gort_timer_stop of a pending timer did not return 1");
        check(gort_timer_free(t), "gort_timer_free");
    }
    int64_t t3 = bench_now_ns();
    for (long i = 0; i < a->n; i++) {
        if (gort_timer_stop(ts[i]) != 1)
            bench_die("gort_timer_stop of a pending timer did not return 1");
    }
    int64_t t4 = bench_now_ns();
    for (long i = 0; i < a->n; i++)
        check(gort_timer_free(ts[i]), "gort_timer_free");
    int64_t t5 = bench_now_ns();
    free(ts);
    a->ns[PH_START] = (double)(t1 - t0) / (double)a->n;
    a->ns[PH_RESET] = (double)(t2 - t1) / (double)a->n;
    a->ns[PH_PAIR] = (double)(t3 - t2) / (double)a->n;
    a->ns[PH_STOP] = (double)(t4 - t3) / (double)a->n;
    a->ns[PH_FREE] = (double)(t5 - t4) / (double)a->n;
    return 0;
}

static void run_churn_gort(long n, double ns[NPHASES])
{
    churn_arg_t a;
    memset(&a, 0, sizeof a);
    a.n = n;
    bench_gort_run(churn_main, &a, 1);
    memcpy(ns, a.ns, sizeof a.ns);
}

enum { PX_CREATE, PX_ARM, PX_REARM, PX_PAIR, PX_DISARM, PX_DELETE, NPX };

static struct timespec ts_of(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    return ts;
}

static void px_settime(timer_t t, int64_t delay)
{
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value = ts_of(delay);
    if (timer_settime(t, 0, &its, NULL) != 0)
        bench_die("timer_settime: %s", strerror(errno));
}

/* Returns the number of kernel timers used (<= n). */
static long run_churn_posix(long n, double ns[NPX])
{
    timer_t *ts = malloc((size_t)n * sizeof *ts);
    if (!ts)
        bench_die("out of memory");
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_NONE;
    uint64_t rng = 42;
    long k = 0;
    int64_t t0 = bench_now_ns();
    for (; k < n; k++) {
        if (timer_create(CLOCK_MONOTONIC, &sev, &ts[k]) != 0) {
            if (errno == EAGAIN && k > 2048)
                break; /* RLIMIT_SIGPENDING (per user, shared with other processes) */
            bench_die("timer_create: %s", strerror(errno));
        }
    }
    int64_t t1 = bench_now_ns();
    double create_ns = (double)(t1 - t0) / (double)k;
    if (k < n) {
        /* Leave room for the pair phase's extra timer, and for other
         * processes of this user. */
        for (long i = k - 1024; i < k; i++)
            timer_delete(ts[i]);
        k -= 1024;
    }
    t1 = bench_now_ns();
    for (long i = 0; i < k; i++)
        px_settime(ts[i], long_delay(&rng));
    int64_t t2 = bench_now_ns();
    for (long i = 0; i < k; i++)
        px_settime(ts[i], long_delay(&rng));
    int64_t t3 = bench_now_ns();
    for (long i = 0; i < k; i++) {
        timer_t t;
        if (timer_create(CLOCK_MONOTONIC, &sev, &t) != 0)
            bench_die("timer_create: %s", strerror(errno));
        px_settime(t, long_delay(&rng));
        px_settime(t, 0);
        if (timer_delete(t) != 0)
            bench_die("timer_delete: %s", strerror(errno));
    }
    int64_t t4 = bench_now_ns();
    for (long i = 0; i < k; i++)
        px_settime(ts[i], 0);
    int64_t t5 = bench_now_ns();
    for (long i = 0; i < k; i++) {
        if (timer_delete(ts[i]) != 0)
            bench_die("timer_delete: %s", strerror(errno));
    }
    int64_t t6 = bench_now_ns();
    free(ts);
    ns[PX_CREATE] = create_ns;
    ns[PX_ARM] = (double)(t2 - t1) / (double)k;
    ns[PX_REARM] = (double)(t3 - t2) / (double)k;
    ns[PX_PAIR] = (double)(t4 - t3) / (double)k;
    ns[PX_DISARM] = (double)(t5 - t4) / (double)k;
    ns[PX_DELETE] = (double)(t6 - t5) / (double)k;
    return k;
}

/* ---- 2. sleep accuracy ----------------------------------------------------- */

typedef struct sl_arg {
    int n;
    double *late_ns; /* n samples */
} sl_arg_t;

static int sleep_main(void *p)
{
    sl_arg_t *a = p;
    for (int i = 0; i < a->n; i++) {
        int64_t t0 = bench_now_ns();
        check(gort_sleep_ns(MS), "gort_sleep_ns");
        a->late_ns[i] = (double)(bench_now_ns() - t0 - MS);
    }
    return 0;
}

static void *nanosleep_thread(void *p)
{
    sl_arg_t *a = p;
    struct timespec req = ts_of(MS);
    for (int i = 0; i < a->n; i++) {
        int64_t t0 = bench_now_ns();
        while (clock_nanosleep(CLOCK_MONOTONIC, 0, &req, NULL) == EINTR)
            ;
        a->late_ns[i] = (double)(bench_now_ns() - t0 - MS);
    }
    return NULL;
}

static double percentile(double *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    int idx = (int)(q * (n - 1) + 0.5);
    return v[idx];
}

/* Fills p50/p99 lateness (us) of one run. procs 0: the pthread baseline;
 * spin_ns: gort_config_t.timer_spin_ns (< 0: off). */
static void run_sleep(int n, int procs, int64_t spin_ns, double *p50, double *p99)
{
    sl_arg_t a = {n, malloc((size_t)n * sizeof(double))};
    if (!a.late_ns)
        bench_die("out of memory");
    if (procs > 0) {
        gort_config_t cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.size = sizeof cfg;
        cfg.gomaxprocs = procs;
        cfg.timer_spin_ns = spin_ns;
        int r = gort_main(sleep_main, &a, &cfg);
        if (r < 0)
            bench_die("gort_main: %s", gort_strerror(r));
    } else {
        pthread_t t;
        int r = pthread_create(&t, NULL, nanosleep_thread, &a);
        if (r != 0)
            bench_die("pthread_create: %s", strerror(r));
        pthread_join(t, NULL);
    }
    for (int i = 0; i < n; i++)
        if (a.late_ns[i] < 0)
            bench_die("a 1 ms sleep returned %.0f ns early", -a.late_ns[i]);
    *p50 = percentile(a.late_ns, n, 0.50) / 1000.0;
    *p99 = percentile(a.late_ns, n, 0.99) / 1000.0;
    free(a.late_ns);
}

/* ---- main ------------------------------------------------------------------ */

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-r runs] [-n timers] [-s sleeps] [-S timer_spin_ns]\n"
            "  -r runs    measured runs per configuration (>= %d, default %d)\n"
            "  -n timers  timers in the churn (default 100000)\n"
            "  -s sleeps  1 ms sleeps per run (default 1000)\n"
            "  -S ns      timer_spin_ns of the spinning configuration (default 200000)\n",
            argv0, BENCH_MIN_RUNS, BENCH_MIN_RUNS);
    exit(2);
}

int main(int argc, char **argv)
{
    int runs = BENCH_MIN_RUNS, sleeps = 1000;
    long n = 100000, tspin = 200000;
    int c;
    while ((c = getopt(argc, argv, "r:n:s:S:h")) != -1) {
        switch (c) {
        case 'r':
            runs = bench_parse_runs(optarg);
            break;
        case 'n':
            n = bench_parse_long("-n", optarg, 2, 10000000L);
            break;
        case 's':
            sleeps = (int)bench_parse_long("-s", optarg, 10, 1000000L);
            break;
        case 'S':
            tspin = bench_parse_long("-S", optarg, 1, 1000000000L);
            break;
        default:
            usage(argv[0]);
        }
    }
    if (optind != argc)
        usage(argv[0]);

    int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    bench_print_header("bench_timer", runs);
    bench_note("timer slack (PR_GET_TIMERSLACK, inherited by every thread): %d ns", slack);
    bench_note("churn: GOMAXPROCS=1, %ld fn timers, delays 1-2 h (never fire); baseline POSIX "
               "timers (SIGEV_NONE, CLOCK_MONOTONIC) in the main thread; nothing pinned",
               n);
    bench_note("sleep: %d x 1 ms per run; gort_sleep_ns in the main goroutine (GOMAXPROCS=1, 2, "
               "nothing else runnable) vs clock_nanosleep in a plain unpinned pthread; the idle "
               "gort M sleeps in a timed FUTEX_WAIT (timer_spin_ns off: no spin); 'spin': "
               "GOMAXPROCS=1 with timer_spin_ns=%ld (it spins the last %ld us before each "
               "timer instead of sleeping them, while a CPU is idle); nothing pinned",
               sleeps, tspin, tspin / 1000);

    double g[NPHASES][BENCH_MAX_RUNS], px[NPX][BENCH_MAX_RUNS];
    double gp50[3][BENCH_MAX_RUNS], gp99[3][BENCH_MAX_RUNS], bp50[BENCH_MAX_RUNS],
        bp99[BENCH_MAX_RUNS];
    double tmp[8]; /* >= NPHASES, NPX */
    long kposix = 0;

    /* Warm-up, discarded. */
    run_churn_gort(n / 10 ? n / 10 : 2, tmp);
    run_churn_posix(n / 10 ? n / 10 : 2, tmp);

    for (int r = 0; r < runs; r++) {
        run_churn_gort(n, tmp);
        for (int k = 0; k < NPHASES; k++)
            g[k][r] = tmp[k];
        kposix = run_churn_posix(n, tmp);
        for (int k = 0; k < NPX; k++)
            px[k][r] = tmp[k];
        run_sleep(sleeps, 1, -1, &gp50[0][r], &gp99[0][r]);
        run_sleep(sleeps, 2, -1, &gp50[1][r], &gp99[1][r]);
        run_sleep(sleeps, 1, tspin, &gp50[2][r], &gp99[2][r]);
        run_sleep(sleeps, 0, -1, &bp50[r], &bp99[r]);
    }
    if (kposix < n)
        bench_note("POSIX timers: only %ld could be created (RLIMIT_SIGPENDING); the baseline "
                   "uses that many",
                   kposix);

    double mstart = bench_report("timer_churn_gort_start_ns_per_op", "ns", g[PH_START], runs);
    double mreset = bench_report("timer_churn_gort_reset_ns_per_op", "ns", g[PH_RESET], runs);
    double mpair =
        bench_report("timer_churn_gort_start_stop_free_ns_per_op", "ns", g[PH_PAIR], runs);
    double mstop = bench_report("timer_churn_gort_stop_ns_per_op", "ns", g[PH_STOP], runs);
    bench_report("timer_churn_gort_free_ns_per_op", "ns", g[PH_FREE], runs);
    double xcreate = bench_report("timer_churn_posix_create_ns_per_op", "ns", px[PX_CREATE], runs);
    double xarm = bench_report("timer_churn_posix_arm_ns_per_op", "ns", px[PX_ARM], runs);
    double xrearm = bench_report("timer_churn_posix_rearm_ns_per_op", "ns", px[PX_REARM], runs);
    double xpair = bench_report("timer_churn_posix_create_arm_disarm_delete_ns_per_op", "ns",
                                px[PX_PAIR], runs);
    double xdisarm = bench_report("timer_churn_posix_disarm_ns_per_op", "ns", px[PX_DISARM], runs);
    bench_report("timer_churn_posix_delete_ns_per_op", "ns", px[PX_DELETE], runs);

    double s1p50 = bench_report("sleep_1ms_gort_p1_late_p50_us", "us", gp50[0], runs);
    double s1p99 = bench_report("sleep_1ms_gort_p1_late_p99_us", "us", gp99[0], runs);
    double s2p50 = bench_report("sleep_1ms_gort_p2_late_p50_us", "us", gp50[1], runs);
    double s2p99 = bench_report("sleep_1ms_gort_p2_late_p99_us", "us", gp99[1], runs);
    double sp50 = bench_report("sleep_1ms_gort_p1_spin_late_p50_us", "us", gp50[2], runs);
    double sp99 = bench_report("sleep_1ms_gort_p1_spin_late_p99_us", "us", gp99[2], runs);
    double bp50m = bench_report("sleep_1ms_nanosleep_late_p50_us", "us", bp50, runs);
    double bp99m = bench_report("sleep_1ms_nanosleep_late_p99_us", "us", bp99, runs);

    bench_ratio("timer_posix_create_arm_over_gort_start", (xcreate + xarm) / mstart);
    bench_ratio("timer_posix_rearm_over_gort_reset", xrearm / mreset);
    bench_ratio("timer_posix_disarm_over_gort_stop", xdisarm / mstop);
    bench_ratio("timer_posix_pair_over_gort_pair", xpair / mpair);
    bench_ratio("sleep_late_p50_nanosleep_over_gort_p1", bp50m / s1p50);
    bench_ratio("sleep_late_p99_nanosleep_over_gort_p1", bp99m / s1p99);

    bench_print_table("bench_timer: median of runs (ratios: baseline / gort, > 1 means gort is "
                      "faster or more punctual)");
    double slack_us = slack > 0 ? slack / 1000.0 : 50.0;
    bench_note(
        "gort lateness above the pthread baseline: p50 %+.1f us, p99 %+.1f us (GOMAXPROCS=1)",
        s1p50 - bp50m, s1p99 - bp99m);
    bench_note("target sleep lateness p99 <= timer slack (%.0f us) + 100 us = %.0f us: "
               "GOMAXPROCS=1 %s (%.1f us), GOMAXPROCS=2 %s (%.1f us), GOMAXPROCS=1 with "
               "timer_spin_ns=%ld %s (%.1f us; p50 %.1f us)",
               slack_us, slack_us + 100, s1p99 <= slack_us + 100 ? "MET" : "MISSED", s1p99,
               s2p99 <= slack_us + 100 ? "MET" : "MISSED", s2p99, tspin,
               sp99 <= slack_us + 100 ? "MET" : "MISSED", sp99, sp50);
    (void)s2p50;
    return 0;
}
