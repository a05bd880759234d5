/*
 * bench_switch.c - goroutine-to-goroutine switch cost.
 *
 * gort: GOMAXPROCS=1, two goroutines each call gort_yield() N times (the
 * main goroutine is parked on a WaitGroup meanwhile). Each yield puts the
 * caller at the tail of the run queue and runs the other goroutine, so
 * ns per switch = elapsed / (2 N). One "switch" is the whole path
 * G1 -> g0 (schedule) -> G2, i.e. two register swaps plus the run queue, as
 * for Go's runtime.Gosched. The process CPU time per switch is reported too:
 * unlike elapsed time it does not grow when other processes take the CPUs.
 *
 * Baselines (same process, same runs): two pthreads ping-pong a turn word;
 * each hand-over is a store + FUTEX_WAKE by one side and a FUTEX_WAIT by
 * the other (one wake and one wait per direction, always). ns per one-way
 * switch = elapsed / (2 * round trips).
 *   (a) both threads pinned to one CPU, no spin: the kernel's own thread
 *       switch, the fair comparison for an M:N switch on one CPU;
 *   (b) unpinned, no spin: what a program gets by default;
 *   (c) pinned to two different CPUs, no spin: every hand-over wakes a
 *       sleeping vCPU (IPI, VM entry);
 *   (d) pinned to two different CPUs, spin up to S PAUSEs on the turn word
 *       before FUTEX_WAIT (-s S, default 2000; -s 0 leaves out (d) and (e));
 *   (e) unpinned, same spin: when the kernel puts both threads on one CPU the
 *       spinner delays its partner by the whole spin.
 * (c) and (d) need two allowed CPUs and are skipped otherwise.
 *
 * Usage: bench_switch [-r runs] [-n yields] [-p rounds] [-u rounds] [-s spin]
 *                     [-c cpu] [-C cpu2]
 */
#include "bench_common.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/syscall.h>

/* ---- gort ---- */

typedef struct sw_arg {
    long n; /* yields per goroutine */
    gort_waitgroup_t wg;
    int64_t elapsed_ns;
    int64_t cpu_ns;    /* process CPU time */
    uint64_t switches; /* schedule() executions during the run */
    _Atomic int err;
} sw_arg_t;

static void yielder(void *p)
{
    sw_arg_t *a = p;
    for (long i = 0; i < a->n; i++) {
        int r = gort_yield();
        if (r != 0) {
            atomic_store(&a->err, r);
            break;
        }
    }
    gort_waitgroup_done(&a->wg);
}

static int switch_main(void *p)
{
    sw_arg_t *a = p;
    gort_stats_t s0, s1;
    memset(&s0, 0, sizeof s0);
    memset(&s1, 0, sizeof s1);
    s0.size = s1.size = sizeof s0;
    gort_waitgroup_init(&a->wg);
    gort_waitgroup_add(&a->wg, 2);
    gort_stats_get(&s0);
    int64_t c0 = bench_cpu_ns();
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < 2; i++) {
        int r = gort_go(yielder, a);
        if (r != 0) {
            atomic_store(&a->err, r);
            gort_waitgroup_add(&a->wg, -(2 - i));
            break;
        }
    }
    gort_waitgroup_wait(&a->wg);
    a->elapsed_ns = bench_now_ns() - t0;
    a->cpu_ns = bench_cpu_ns() - c0;
    gort_stats_get(&s1);
    a->switches = s1.switches - s0.switches;
    return 0;
}

static double run_gort(long n, uint64_t *switches, double *cpu_ns_per_switch)
{
    sw_arg_t a;
    memset(&a, 0, sizeof a);
    a.n = n;
    bench_gort_run(switch_main, &a, 1);
    int err = atomic_load(&a.err);
    if (err)
        bench_die("gort_yield/gort_go failed: %s (%d)", gort_strerror(err), err);
    /* 2n yields + the two goroutines' first runs + the main goroutine's wake. */
    if (a.switches < (uint64_t)(2 * n))
        bench_die("runtime counted %llu switches, expected at least %ld",
                  (unsigned long long)a.switches, 2 * n);
    *switches = a.switches;
    *cpu_ns_per_switch = (double)a.cpu_ns / (double)(2 * n);
    return (double)a.elapsed_ns / (double)(2 * n);
}

/* ---- futex ping-pong baseline ---- */

/* The futex ping-pong baseline (bench_common.h): ns per one-way switch. */
static double run_pingpong(long rounds, int cpu0, int cpu1, int spin)
{
    return (double)bench_futex_pingpong(rounds, cpu0, cpu1, spin).ns / (double)(2 * rounds);
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-r runs] [-n yields] [-p rounds] [-u rounds] [-s spin] [-c cpu] "
            "[-C cpu2]\n"
            "  -r runs    measured runs per configuration (>= %d, default %d)\n"
            "  -n yields  gort_yield calls per goroutine (default 2000000)\n"
            "  -p rounds  round trips for baseline (a), same CPU (default 50000)\n"
            "  -u rounds  round trips for baselines (b)..(e) (default 10000)\n"
            "  -s spin    PAUSEs before FUTEX_WAIT in (d), (e); 0 = skip them (default 2000)\n"
            "  -c cpu     CPU for (a) and first CPU for (c), (d) (default: first allowed)\n"
            "  -C cpu2    second CPU for (c), (d) (default: second allowed CPU)\n",
            argv0, BENCH_MIN_RUNS, BENCH_MIN_RUNS);
    exit(2);
}

int main(int argc, char **argv)
{
    int runs = BENCH_MIN_RUNS, spin = 2000, cpu = bench_first_cpu(), cpu2 = bench_allowed_cpu(1);
    long n = 2000000, prounds = 50000, urounds = 10000;
    int c;
    while ((c = getopt(argc, argv, "r:n:p:u:s:c:C:h")) != -1) {
        switch (c) {
        case 'r':
            runs = bench_parse_runs(optarg);
            break;
        case 'n':
            n = bench_parse_long("-n", optarg, 1, 1000000000L);
            break;
        case 'p':
            prounds = bench_parse_long("-p", optarg, 1, 100000000L);
            break;
        case 'u':
            urounds = bench_parse_long("-u", optarg, 1, 100000000L);
            break;
        case 's':
            spin = (int)bench_parse_long("-s", optarg, 0, INT_MAX);
            break;
        case 'c':
            cpu = (int)bench_parse_long("-c", optarg, 0, CPU_SETSIZE - 1);
            break;
        case 'C':
            cpu2 = (int)bench_parse_long("-C", optarg, 0, CPU_SETSIZE - 1);
            break;
        default:
            usage(argv[0]);
        }
    }
    if (optind != argc)
        usage(argv[0]);
    bool split = cpu2 >= 0 && cpu2 != cpu;

    bench_print_header("bench_switch", runs);
    bench_note("gort: GOMAXPROCS=1, 2 goroutines x %ld gort_yield; gort thread unpinned "
               "(only one M runs); spin not involved (no thread sleeps)",
               n);
    bench_note("baseline protocol: store turn + FUTEX_WAKE, then FUTEX_WAIT while not our turn "
               "(one wake + one wait per direction)");
    bench_note("baseline (a) both pinned to CPU %d, spin 0, %ld round trips", cpu, prounds);
    bench_note("baseline (b) unpinned, spin 0, %ld round trips", urounds);
    if (split) {
        bench_note("baseline (c) pinned to CPUs %d and %d, spin 0, %ld round trips", cpu, cpu2,
                   urounds);
        if (spin > 0)
            bench_note("baseline (d) pinned to CPUs %d and %d, spin %d PAUSE before FUTEX_WAIT, "
                       "%ld round trips",
                       cpu, cpu2, spin, urounds);
    } else {
        bench_note("baselines (c), (d) skipped: need two different CPUs");
    }
    if (spin > 0)
        bench_note("baseline (e) unpinned, spin %d PAUSE before FUTEX_WAIT, %ld round trips", spin,
                   urounds);

    double g[BENCH_MAX_RUNS], sw[BENCH_MAX_RUNS], gc[BENCH_MAX_RUNS], warm_cpu;
    double pa[BENCH_MAX_RUNS], pb[BENCH_MAX_RUNS], pc[BENCH_MAX_RUNS], pd[BENCH_MAX_RUNS];
    double pe[BENCH_MAX_RUNS];
    uint64_t switches;

    /* Warm-up, discarded. */
    run_gort(n / 10 ? n / 10 : 1, &switches, &warm_cpu);
    run_pingpong(prounds / 10 ? prounds / 10 : 1, cpu, cpu, 0);

    for (int r = 0; r < runs; r++) {
        g[r] = run_gort(n, &switches, &gc[r]);
        sw[r] = (double)switches / (double)(2 * n);
        pa[r] = run_pingpong(prounds, cpu, cpu, 0);
        pb[r] = run_pingpong(urounds, -1, -1, 0);
        if (split) {
            pc[r] = run_pingpong(urounds, cpu, cpu2, 0);
            if (spin > 0)
                pd[r] = run_pingpong(urounds, cpu, cpu2, spin);
        }
        if (spin > 0)
            pe[r] = run_pingpong(urounds, -1, -1, spin);
    }

    double mg = bench_report("switch_gort_p1_ns_per_switch", "ns", g, runs);
    bench_report("switch_gort_p1_cpu_ns_per_switch", "ns", gc, runs);
    bench_report("switch_gort_p1_sched_per_yield", "count", sw, runs);
    double ma = bench_report("switch_futex_samecpu_ns_per_switch", "ns", pa, runs);
    double mb = bench_report("switch_futex_unpinned_ns_per_switch", "ns", pb, runs);
    double mc = 0, md = 0, me = 0;
    if (split) {
        mc = bench_report("switch_futex_crosscpu_ns_per_switch", "ns", pc, runs);
        if (spin > 0)
            md = bench_report("switch_futex_crosscpu_spin_ns_per_switch", "ns", pd, runs);
    }
    if (spin > 0)
        me = bench_report("switch_futex_unpinned_spin_ns_per_switch", "ns", pe, runs);
    bench_ratio("switch_futex_samecpu_over_gort", ma / mg);
    bench_ratio("switch_futex_unpinned_over_gort", mb / mg);
    if (split) {
        bench_ratio("switch_futex_crosscpu_over_gort", mc / mg);
        if (spin > 0)
            bench_ratio("switch_futex_crosscpu_spin_over_gort", md / mg);
    }
    if (spin > 0)
        bench_ratio("switch_futex_unpinned_spin_over_gort", me / mg);

    bench_print_table("bench_switch: median of runs (ratios: baseline / gort, > 1 means gort "
                      "is faster)");
    bench_note("target: <= 30 ns per switch: %s (%.1f ns)", mg <= 30 ? "MET" : "MISSED", mg);
    return 0;
}
