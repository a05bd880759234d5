/*
 * bench_spawn.c - amortised cost of spawning and joining a goroutine.
 *
 * gort: inside gort_main, the main goroutine repeatedly adds B to a
 * WaitGroup, spawns B goroutines that each call gort_waitgroup_done, and
 * waits; TOTAL goroutines per run (default B = 1000, TOTAL = 1,000,000).
 * Result: elapsed / TOTAL, in ns per goroutine, at GOMAXPROCS=1 and 2 (one
 * gort_main per run and setting). This is Go's `go f(); wg.Wait()` in
 * batches; it includes creation, scheduling, running, exit and the wake of
 * the main goroutine once per batch. Each run first parks one untimed batch
 * of B goroutines on a gate so that the timed loop reuses Gs whose stack
 * pages are already resident (a first-touch page fault costs ~25 us on the
 * VM this was written on); the steady state is what is measured.
 *
 * Baseline (same process, same runs): pthread_create + pthread_join of an
 * empty thread, one at a time, default attributes, unpinned.
 *
 * Also reported: the process CPU time per goroutine (all threads), which,
 * unlike elapsed time, does not grow when other processes take the CPUs.
 *
 * Counts are checked: the runtime must report exactly TOTAL goroutines
 * created per run, or the benchmark fails.
 *
 * Usage: bench_spawn [-r runs] [-n total] [-b batch] [-t pthread_iters] [-P procs]
 * (-P 1 or -P 2 measures only that GOMAXPROCS, e.g. under callgrind.)
 */
#include "bench_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef struct spawn_arg {
    long total;
    int batch;
    int64_t elapsed_ns;
    int64_t cpu_ns;       /* process CPU time during the timed loop */
    uint64_t created;     /* goroutines_created during the timed loop */
    uint64_t futex;       /* futex sleeps + wakes during the loop */
    uint64_t steal_gs;    /* goroutines taken by stealing */
    uint64_t steal_tries; /* steal attempts on another P */
    uint64_t spinning;    /* Ms that started spinning */
    uint64_t ms_created;  /* threads started by the run */
    uint64_t stacks;      /* stacks mapped during the timed loop */
    int err;
} spawn_arg_t;

static void child(void *wg)
{
    gort_waitgroup_done(wg);
}

static void gated_child(void *p)
{
    void **gw = p;
    gort_waitgroup_wait(gw[0]);
    gort_waitgroup_done(gw[1]);
}

static int spawn_main(void *p)
{
    spawn_arg_t *a = p;
    gort_waitgroup_t wg = GORT_WAITGROUP_INIT;
    gort_stats_t s0, s1;
    memset(&s0, 0, sizeof s0);
    memset(&s1, 0, sizeof s1);
    s0.size = s1.size = sizeof s0;

    /* Untimed warm-up: each gort_main run maps its stacks afresh, and the
     * first touch of a stack page is a page fault (~25 us on the VM this was
     * written on). B goroutines that block on a gate make the runtime map B
     * stacks at once, so the timed loop mostly reuses dead Gs and resident
     * stacks (spawn_gort_pN_stacks_mapped_in_loop shows what it still maps:
     * at GOMAXPROCS=2 dead Gs also collect on the other P's free list). */
    gort_waitgroup_t gate = GORT_WAITGROUP_INIT;
    gort_waitgroup_add(&gate, 1);
    gort_waitgroup_add(&wg, a->batch);
    void *gw[2] = {&gate, &wg};
    for (int i = 0; i < a->batch; i++) {
        int r = gort_go(gated_child, gw);
        if (r != 0) {
            a->err = r;
            gort_waitgroup_add(&wg, -(a->batch - i));
            break;
        }
    }
    gort_waitgroup_done(&gate);
    gort_waitgroup_wait(&wg);
    if (a->err)
        return 1;
    gort_stats_get(&s0);

    int64_t c0 = bench_cpu_ns();
    int64_t t0 = bench_now_ns();
    for (long left = a->total; left > 0;) {
        int b = left < a->batch ? (int)left : a->batch;
        gort_waitgroup_add(&wg, b);
        for (int i = 0; i < b; i++) {
            int r = gort_go(child, &wg);
            if (r != 0) {
                a->err = r;
                gort_waitgroup_add(&wg, -(b - i));
                gort_waitgroup_wait(&wg);
                return 1;
            }
        }
        gort_waitgroup_wait(&wg);
        left -= b;
    }
    a->elapsed_ns = bench_now_ns() - t0;
    a->cpu_ns = bench_cpu_ns() - c0;

    gort_stats_get(&s1);
    a->created = s1.goroutines_created - s0.goroutines_created;
    a->futex = (s1.futex_sleeps + s1.futex_wakes) - (s0.futex_sleeps + s0.futex_wakes);
    a->steal_gs = s1.steal_gs - s0.steal_gs;
    a->steal_tries = s1.steal_tries - s0.steal_tries;
    a->spinning = s1.spinning_transitions - s0.spinning_transitions;
    a->ms_created = s1.ms_created;
    a->stacks = s1.stacks_mapped - s0.stacks_mapped;
    return 0;
}

/* One gort run; returns ns per goroutine. */
static double run_gort(int procs, long total, int batch, spawn_arg_t *out)
{
    spawn_arg_t a;
    memset(&a, 0, sizeof a);
    a.total = total;
    a.batch = batch;
    int r = bench_gort_run(spawn_main, &a, procs);
    if (r != 0 || a.err)
        bench_die("GOMAXPROCS=%d: spawn failed: %s", procs, gort_strerror(a.err));
    if (a.created != (uint64_t)total)
        bench_die("GOMAXPROCS=%d: runtime counted %llu goroutines created, expected %ld", procs,
                  (unsigned long long)a.created, total);
    *out = a;
    return (double)a.elapsed_ns / (double)total;
}

static void *empty_thread(void *arg)
{
    return arg;
}

/* One baseline run; returns ns per pthread_create + pthread_join. */
static double run_pthread(long iters)
{
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < iters; i++) {
        pthread_t t;
        int r = pthread_create(&t, NULL, empty_thread, NULL);
        if (r != 0)
            bench_die("pthread_create: %s", strerror(r));
        pthread_join(t, NULL);
    }
    return (double)(bench_now_ns() - t0) / (double)iters;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-r runs] [-n total] [-b batch] [-t pthread_iters] [-P procs]\n"
            "  -r runs          measured runs per configuration (>= %d, default %d)\n"
            "  -n total         goroutines per run (default 1000000)\n"
            "  -b batch         goroutines per WaitGroup batch (default 1000)\n"
            "  -t pthread_iters pthread_create+join per baseline run (default 20000)\n"
            "  -P procs         measure only GOMAXPROCS=procs (1 or 2; default both)\n",
            argv0, BENCH_MIN_RUNS, BENCH_MIN_RUNS);
    exit(2);
}

int main(int argc, char **argv)
{
    int runs = BENCH_MIN_RUNS;
    long total = 1000000, piters = 20000;
    int batch = 1000, only = 0;
    int c;
    while ((c = getopt(argc, argv, "r:n:b:t:P:h")) != -1) {
        switch (c) {
        case 'r':
            runs = bench_parse_runs(optarg);
            break;
        case 'n':
            total = bench_parse_long("-n", optarg, 1, 1000000000L);
            break;
        case 'b':
            batch = (int)bench_parse_long("-b", optarg, 1, 10000000L);
            break;
        case 't':
            piters = bench_parse_long("-t", optarg, 1, 100000000L);
            break;
        case 'P':
            only = (int)bench_parse_long("-P", optarg, 1, 2);
            break;
        default:
            usage(argv[0]);
        }
    }
    if (optind != argc)
        usage(argv[0]);

    bench_print_header("bench_spawn", runs);
    bool do1 = only != 2, do2 = only != 1;
    bench_note("settings: total=%ld goroutines per run, batch=%d, GOMAXPROCS %s", total, batch,
               only == 1   ? "1"
               : only == 2 ? "2"
                           : "1 and 2");
    bench_note("pinning: none (gort threads and baseline threads run where the kernel puts "
               "them)");
    bench_note("baseline: pthread_create + pthread_join of an empty thread, one at a time, "
               "default attr, %ld per run, no spin",
               piters);

    double g1[BENCH_MAX_RUNS], g2[BENCH_MAX_RUNS], pt[BENCH_MAX_RUNS];
    double fx1[BENCH_MAX_RUNS], fx2[BENCH_MAX_RUNS], st2[BENCH_MAX_RUNS], ms2[BENCH_MAX_RUNS];
    double sm1[BENCH_MAX_RUNS], sm2[BENCH_MAX_RUNS], cpu1[BENCH_MAX_RUNS], cpu2[BENCH_MAX_RUNS];
    double tr2[BENCH_MAX_RUNS], sp2[BENCH_MAX_RUNS];
    spawn_arg_t a;

    /* Warm-up, discarded: first-touch of stacks, G structs and thread stacks. */
    long wtotal = total / 10 ? total / 10 : 1;
    if (do1)
        run_gort(1, wtotal, batch, &a);
    if (do2)
        run_gort(2, wtotal, batch, &a);
    run_pthread(piters / 10 ? piters / 10 : 1);

    /* Interleave the configurations so that slow phases of the VM hit all. */
    for (int r = 0; r < runs; r++) {
        if (do1) {
            g1[r] = run_gort(1, total, batch, &a);
            cpu1[r] = (double)a.cpu_ns / (double)total;
            fx1[r] = (double)a.futex * 1000.0 / (double)total;
            sm1[r] = (double)a.stacks;
        }
        if (do2) {
            g2[r] = run_gort(2, total, batch, &a);
            cpu2[r] = (double)a.cpu_ns / (double)total;
            fx2[r] = (double)a.futex * 1000.0 / (double)total;
            st2[r] = (double)a.steal_gs * 1000.0 / (double)total;
            tr2[r] = (double)a.steal_tries * 1000.0 / (double)total;
            sp2[r] = (double)a.spinning * 1000.0 / (double)total;
            ms2[r] = (double)a.ms_created;
            sm2[r] = (double)a.stacks;
        }
        pt[r] = run_pthread(piters);
    }

    double m1 = 0, m2 = 0;
    if (do1)
        m1 = bench_report("spawn_gort_p1_ns_per_goroutine", "ns", g1, runs);
    if (do2)
        m2 = bench_report("spawn_gort_p2_ns_per_goroutine", "ns", g2, runs);
    double mp = bench_report("spawn_pthread_ns_per_thread", "ns", pt, runs);
    if (do1)
        bench_report("spawn_gort_p1_cpu_ns_per_goroutine", "ns", cpu1, runs);
    if (do2)
        bench_report("spawn_gort_p2_cpu_ns_per_goroutine", "ns", cpu2, runs);
    if (do1) {
        bench_report("spawn_gort_p1_futex_calls_per_1k_goroutines", "count", fx1, runs);
        bench_report("spawn_gort_p1_stacks_mapped_in_loop", "count", sm1, runs);
    }
    if (do2) {
        bench_report("spawn_gort_p2_futex_calls_per_1k_goroutines", "count", fx2, runs);
        bench_report("spawn_gort_p2_stolen_per_1k_goroutines", "count", st2, runs);
        bench_report("spawn_gort_p2_steal_tries_per_1k_goroutines", "count", tr2, runs);
        bench_report("spawn_gort_p2_spinning_starts_per_1k_goroutines", "count", sp2, runs);
        bench_report("spawn_gort_p2_threads_started", "count", ms2, runs);
        bench_report("spawn_gort_p2_stacks_mapped_in_loop", "count", sm2, runs);
    }
    if (do1)
        bench_ratio("spawn_pthread_over_gort_p1", mp / m1);
    if (do2)
        bench_ratio("spawn_pthread_over_gort_p2", mp / m2);
    if (do1 && do2)
        bench_ratio("spawn_gort_p2_over_p1", m2 / m1);

    bench_print_table("bench_spawn: median of runs (ratios: baseline / gort, > 1 means gort "
                      "is faster)");
    if (do1)
        bench_note("target: <= 100 ns per goroutine: GOMAXPROCS=1 %s (%.1f ns)",
                   m1 <= 100 ? "MET" : "MISSED", m1);
    if (do2)
        bench_note("target: <= 100 ns per goroutine: GOMAXPROCS=2 %s (%.1f ns)",
                   m2 <= 100 ? "MET" : "MISSED", m2);
    return 0;
}
