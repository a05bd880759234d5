/*
 * bench_mutex.c - cost of a lock/unlock pair of gort_mutex_t, contended and
 * uncontended, against pthread_mutex_t.
 *
 * gort, contended: GOMAXPROCS=2, 4 goroutines each lock, increment a shared
 * counter, unlock, N times (the main goroutine waits on a WaitGroup). ns per
 * op = elapsed / (4 N), elapsed from before the first gort_go to the
 * WaitGroup wake-up. Waiters park their goroutine (never the thread) after a
 * few spin rounds; a mutex that starves a waiter for 1 ms switches to
 * handoff mode (see src/mutex.c).
 * gort, uncontended: one goroutine, GOMAXPROCS=1, N pairs.
 *
 * Baseline (same process, same runs, interleaved): pthread_mutex_t with the
 * default attributes (glibc: no spinning, futex wait), 4 threads, the same
 * loop, unpinned; and 1 thread for the uncontended case.
 *
 * The counter is checked after each run: a lost update fails the benchmark.
 * Also reported: runtime futex calls (sleeps + wakes of Ms) per 1000 gort
 * ops, which shows how often contention idled a P's thread.
 *
 * Usage: bench_mutex [-r runs] [-n ops_per_worker] [-u uncontended_ops]
 */
#include "bench_common.h"

#include <pthread.h>
#include <stdatomic.h>

enum { WORKERS = 4, PROCS = 2 };

/* ---- gort ---- */

typedef struct mu_arg {
    long n;      /* lock/unlock pairs per worker */
    int workers; /* goroutines */
    gort_mutex_t mu;
    gort_waitgroup_t wg;
    uint64_t counter; /* under mu */
    int64_t elapsed_ns;
    uint64_t futex; /* runtime futex sleeps + wakes during the run */
    _Atomic int err;
} mu_arg_t;

static void mu_worker(void *p)
{
    mu_arg_t *a = p;
    for (long i = 0; i < a->n; i++) {
        int r = gort_mutex_lock(&a->mu);
        if (r != 0) {
            atomic_store(&a->err, r);
            break;
        }
        a->counter++;
        gort_mutex_unlock(&a->mu);
    }
    gort_waitgroup_done(&a->wg);
}

static int mu_main(void *p)
{
    mu_arg_t *a = p;
    gort_stats_t s0, s1;
    memset(&s0, 0, sizeof s0);
    memset(&s1, 0, sizeof s1);
    s0.size = s1.size = sizeof s0;
    gort_stats_get(&s0);
    int64_t t0 = bench_now_ns();
    gort_waitgroup_add(&a->wg, a->workers);
    for (int i = 0; i < a->workers; i++) {
        int r = gort_go(mu_worker, a);
        if (r != 0) {
            atomic_store(&a->err, r);
            gort_waitgroup_add(&a->wg, -(a->workers - i));
            break;
        }
    }
    gort_waitgroup_wait(&a->wg);
    a->elapsed_ns = bench_now_ns() - t0;
    gort_stats_get(&s1);
    a->futex = (s1.futex_sleeps + s1.futex_wakes) - (s0.futex_sleeps + s0.futex_wakes);
    return 0;
}

/* One gort run; returns ns per lock/unlock pair. */
static double run_gort(int procs, int workers, long n, double *futex_per_k)
{
    mu_arg_t *a = calloc(1, sizeof *a); /* zeroed: a valid unlocked mutex */
    if (!a)
        bench_die("out of memory");
    a->n = n;
    a->workers = workers;
    bench_gort_run(mu_main, a, procs);
    int err = atomic_load(&a->err);
    if (err)
        bench_die("gort (GOMAXPROCS=%d): %s", procs, gort_strerror(err));
    uint64_t want = (uint64_t)workers * (uint64_t)n;
    if (a->counter != want)
        bench_die("gort: lost updates: counter %llu, expected %llu", (unsigned long long)a->counter,
                  (unsigned long long)want);
    double ops = (double)want;
    if (futex_per_k)
        *futex_per_k = (double)a->futex * 1000.0 / ops;
    double r = (double)a->elapsed_ns / ops;
    free(a);
    return r;
}

/* ---- pthread baseline ---- */

typedef struct pt_arg {
    long n;
    pthread_mutex_t mu;
    uint64_t counter;
} pt_arg_t;

static void *pt_worker(void *p)
{
    pt_arg_t *a = p;
    for (long i = 0; i < a->n; i++) {
        pthread_mutex_lock(&a->mu);
        a->counter++;
        pthread_mutex_unlock(&a->mu);
    }
    return NULL;
}

static double run_pthread(int threads, long n)
{
    pt_arg_t a;
    memset(&a, 0, sizeof a);
    a.n = n;
    pthread_mutex_init(&a.mu, NULL);
    pthread_t t[WORKERS];
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < threads; i++) {
        int r = pthread_create(&t[i], NULL, pt_worker, &a);
        if (r != 0)
            bench_die("pthread_create: %s", strerror(r));
    }
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    int64_t el = bench_now_ns() - t0;
    pthread_mutex_destroy(&a.mu);
    uint64_t want = (uint64_t)threads * (uint64_t)n;
    if (a.counter != want)
        bench_die("pthread: lost updates: counter %llu, expected %llu",
                  (unsigned long long)a.counter, (unsigned long long)want);
    return (double)el / (double)want;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-r runs] [-n ops] [-u ops]\n"
            "  -r runs  measured runs per configuration (>= %d, default %d)\n"
            "  -n ops   contended: lock/unlock pairs per worker (default 1000000)\n"
            "  -u ops   uncontended: lock/unlock pairs (default 10000000)\n",
            argv0, BENCH_MIN_RUNS, BENCH_MIN_RUNS);
    exit(2);
}

int main(int argc, char **argv)
{
    int runs = BENCH_MIN_RUNS;
    long n = 1000000, un = 10000000;
    int c;
    while ((c = getopt(argc, argv, "r:n:u:h")) != -1) {
        switch (c) {
        case 'r':
            runs = bench_parse_runs(optarg);
            break;
        case 'n':
            n = bench_parse_long("-n", optarg, 1, 1000000000L);
            break;
        case 'u':
            un = bench_parse_long("-u", optarg, 1, 1000000000L);
            break;
        default:
            usage(argv[0]);
        }
    }
    if (optind != argc)
        usage(argv[0]);

    bench_print_header("bench_mutex", runs);
    bench_note("settings: contended: %d workers x %ld lock/unlock pairs, gort at GOMAXPROCS=%d; "
               "uncontended: 1 worker x %ld pairs, gort at GOMAXPROCS=1",
               WORKERS, n, PROCS, un);
    bench_note("gort mutex: spins up to 4 rounds of 30 PAUSEs (only with another P running "
               "and an empty local run queue), then parks the goroutine");
    bench_note("baseline: pthread_mutex_t, default attributes, %d threads (contended) or 1 "
               "(uncontended), unpinned",
               WORKERS);
    bench_note("pinning: none");

    double gc[BENCH_MAX_RUNS], pc[BENCH_MAX_RUNS], gu[BENCH_MAX_RUNS], pu[BENCH_MAX_RUNS];
    double fx[BENCH_MAX_RUNS];

    /* Warm-up, discarded. */
    run_gort(PROCS, WORKERS, n / 10 ? n / 10 : 1, NULL);
    run_pthread(WORKERS, n / 10 ? n / 10 : 1);

    /* Interleave the configurations so that slow phases of the VM hit all. */
    for (int r = 0; r < runs; r++) {
        gc[r] = run_gort(PROCS, WORKERS, n, &fx[r]);
        pc[r] = run_pthread(WORKERS, n);
        gu[r] = run_gort(1, 1, un, NULL);
        pu[r] = run_pthread(1, un);
    }

    double mgc = bench_report("mutex_contended_gort_g4_p2_ns_per_op", "ns", gc, runs);
    double mpc = bench_report("mutex_contended_pthread_t4_ns_per_op", "ns", pc, runs);
    double mgu = bench_report("mutex_uncontended_gort_ns_per_op", "ns", gu, runs);
    double mpu = bench_report("mutex_uncontended_pthread_ns_per_op", "ns", pu, runs);
    bench_report("mutex_contended_gort_futex_calls_per_1k_ops", "count", fx, runs);
    bench_ratio("mutex_contended_pthread_over_gort", mpc / mgc);
    bench_ratio("mutex_uncontended_pthread_over_gort", mpu / mgu);

    bench_print_table("bench_mutex: median of runs (ratios: baseline / gort, > 1 means gort "
                      "is faster)");
    return 0;
}
