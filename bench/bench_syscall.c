/*
 * bench_syscall.c - the cost of the three system call protocols (the
 * spec's "Problems" section) on a call that never blocks: getppid.
 *
 * Inside one gort_main per round and GOMAXPROCS value, the main goroutine
 * (with nothing else to run) makes N calls each way, back to back:
 *
 *   plain      syscall(SYS_getppid), libc's wrapper, no gort at all: the
 *              baseline, measured on the same thread in the same round;
 *   raw        gort_syscall(GORT_SYSCALL_RAW, ...): the wrapper's own cost
 *              (context check, errno save/restore, a counter);
 *   lazy       gort_syscall(GORT_SYSCALL_LAZY, ...): entersyscall (P to
 *              Psyscall) + exitsyscall fast path (one CAS back);
 *   lazy_y     the same, with a gort_yield() every 1000 calls (see below);
 *   enter      gort_entersyscall(); syscall(SYS_getppid); gort_exitsyscall();
 *   eager      gort_syscall(GORT_SYSCALL_EAGER, ...): handoffp at entry,
 *              which at GOMAXPROCS=1 wakes another thread for the P.
 *
 * Reported: ns per call (median of the rounds), the overhead over plain and
 * over raw, and per call: runtime futex wakes, sysmon retakes, slow exits
 * and context switches (getrusage, whole process).
 *
 * Why lazy_y: a goroutine that runs for 10 ms without being rescheduled
 * (a tight loop of calls is one) makes sysmon retake its P at every round
 * (20 us) that finds it in a call, even with no other work (Go's retake
 * does the same; the "sysretake" case). Each retake at GOMAXPROCS=1 starts
 * a spinning M (a futex wake). lazy_y is the same loop with an occasional
 * yield, as a goroutine that is not a CPU hog, so sysmon leaves it alone.
 *
 * Target (issue 4): the lazy enter/exit fast path costs at most 25 ns over
 * the raw syscall.
 *
 * Usage: bench_syscall [-r runs] [-n calls] [-e eager_calls] [-P gomaxprocs]
 */
#include "bench_common.h"

#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/syscall.h>

enum { M_PLAIN, M_RAW, M_LAZY, M_LAZY_Y, M_ENTER, M_EAGER, NMODES };

static const char *const mode_names[NMODES] = {"plain", "raw", "lazy", "lazy_y", "enter", "eager"};

#define YIELD_EVERY 1000

typedef struct sample {
    double ns;      /* per call */
    double futex;   /* runtime futex wakes per call */
    double retakes; /* per call */
    double slow;    /* slow exits per call */
    double csw;     /* context switches (voluntary + involuntary) per call */
} sample_t;

typedef struct run_arg {
    long n, eager_n;
    sample_t s[NMODES];
    long bad; /* calls that did not return getppid() */
} run_arg_t;

static gort_stats_t stats_now(void)
{
    gort_stats_t st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    if (gort_stats_get(&st) != 0)
        bench_die("gort_stats_get failed");
    return st;
}

static long csw_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_nvcsw + ru.ru_nivcsw;
}

static long one_mode(int mode, long n, long ppid)
{
    long bad = 0;
    switch (mode) {
    case M_PLAIN:
        for (long i = 0; i < n; i++)
            bad += syscall(SYS_getppid) != ppid;
        break;
    case M_RAW:
        for (long i = 0; i < n; i++)
            bad += gort_syscall(GORT_SYSCALL_RAW, SYS_getppid, 0, 0, 0, 0, 0, 0) != ppid;
        break;
    case M_LAZY:
        for (long i = 0; i < n; i++)
            bad += gort_syscall(GORT_SYSCALL_LAZY, SYS_getppid, 0, 0, 0, 0, 0, 0) != ppid;
        break;
    case M_LAZY_Y:
        for (long i = 0; i < n; i++) {
            bad += gort_syscall(GORT_SYSCALL_LAZY, SYS_getppid, 0, 0, 0, 0, 0, 0) != ppid;
            if (i % YIELD_EVERY == YIELD_EVERY - 1)
                gort_yield();
        }
        break;
    case M_ENTER:
        for (long i = 0; i < n; i++) {
            gort_entersyscall();
            bad += syscall(SYS_getppid) != ppid;
            gort_exitsyscall();
        }
        break;
    case M_EAGER:
        for (long i = 0; i < n; i++)
            bad += gort_syscall(GORT_SYSCALL_EAGER, SYS_getppid, 0, 0, 0, 0, 0, 0) != ppid;
        break;
    }
    return bad;
}

static int run_main(void *p)
{
    run_arg_t *a = p;
    long ppid = (long)getppid();
    gort_yield();
    for (int m = 0; m < NMODES; m++) {
        long n = m == M_EAGER ? a->eager_n : a->n;
        /* Start each mode freshly scheduled, so sysmon's 10 ms clock (see
         * above) starts at the loop. */
        gort_yield();
        gort_stats_t s0 = stats_now();
        long c0 = csw_now();
        int64_t t0 = bench_now_ns();
        a->bad += one_mode(m, n, ppid);
        int64_t t1 = bench_now_ns();
        long c1 = csw_now();
        gort_stats_t s1 = stats_now();
        sample_t *s = &a->s[m];
        s->ns = (double)(t1 - t0) / (double)n;
        s->futex = (double)(s1.futex_wakes - s0.futex_wakes) / (double)n;
        s->retakes = (double)(s1.sysmon_retakes - s0.sysmon_retakes) / (double)n;
        s->slow = (double)(s1.syscall_slow_exits - s0.syscall_slow_exits) / (double)n;
        s->csw = (double)(c1 - c0) / (double)n;
    }
    return 0;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-r runs] [-n calls] [-e eager_calls] [-P gomaxprocs]\n"
            "  -r runs         measured rounds (>= %d, default %d)\n"
            "  -n calls        getppid calls per mode and round (default 500000)\n"
            "  -e eager_calls  calls for the eager mode (default 20000)\n"
            "  -P gomaxprocs   only this GOMAXPROCS (default: 1 and 2)\n",
            argv0, BENCH_MIN_RUNS, BENCH_MIN_RUNS);
    exit(2);
}

int main(int argc, char **argv)
{
    int runs = BENCH_MIN_RUNS, only_p = 0;
    long n = 500000, eager_n = 20000;
    int c;
    while ((c = getopt(argc, argv, "r:n:e:P:h")) != -1) {
        switch (c) {
        case 'r':
            runs = bench_parse_runs(optarg);
            break;
        case 'n':
            n = bench_parse_long("-n", optarg, 1, 1000000000L);
            break;
        case 'e':
            eager_n = bench_parse_long("-e", optarg, 1, 1000000000L);
            break;
        case 'P':
            only_p = (int)bench_parse_long("-P", optarg, 1, GORT_MAXPROCS_MAX);
            break;
        default:
            usage(argv[0]);
        }
    }
    if (optind != argc)
        usage(argv[0]);

    int procs[2] = {1, 2}, nprocs = 2;
    if (only_p) {
        procs[0] = only_p;
        nprocs = 1;
    }

    bench_print_header("bench_syscall", runs);
    bench_note("all modes on the main goroutine, nothing else runnable; %ld getppid calls per "
               "mode (eager: %ld); lazy_y yields every %d calls",
               n, eager_n, YIELD_EVERY);
    bench_note(
        "pinning: none (gort's threads and the baseline run where the kernel puts them); "
        "baseline 'plain' = syscall(SYS_getppid) on the same goroutine's thread, same round");
    bench_note("spin: none involved except eager (the woken M spins over the Ps once, then "
               "sleeps)");

    static sample_t samples[2][NMODES][BENCH_MAX_RUNS];
    for (int pi = 0; pi < nprocs; pi++) {
        run_arg_t warm;
        memset(&warm, 0, sizeof warm);
        warm.n = n / 10 ? n / 10 : 1;
        warm.eager_n = eager_n / 10 ? eager_n / 10 : 1;
        bench_gort_run(run_main, &warm, procs[pi]);
    }
    for (int r = 0; r < runs; r++) {
        for (int pi = 0; pi < nprocs; pi++) {
            run_arg_t a;
            memset(&a, 0, sizeof a);
            a.n = n;
            a.eager_n = eager_n;
            bench_gort_run(run_main, &a, procs[pi]);
            if (a.bad)
                bench_die("%ld calls returned something else than getppid()", a.bad);
            for (int m = 0; m < NMODES; m++)
                samples[pi][m][r] = a.s[m];
        }
    }

    double v[BENCH_MAX_RUNS];
    char name[64];
    for (int pi = 0; pi < nprocs; pi++) {
        double med[NMODES];
        for (int m = 0; m < NMODES; m++) {
            for (int r = 0; r < runs; r++)
                v[r] = samples[pi][m][r].ns;
            snprintf(name, sizeof name, "syscall_p%d_%s_ns_per_call", procs[pi], mode_names[m]);
            med[m] = bench_report(name, "ns", v, runs);
        }
        for (int m = M_RAW; m < NMODES; m++) {
            snprintf(name, sizeof name, "syscall_p%d_%s_over_plain_ns", procs[pi], mode_names[m]);
            double d = med[m] - med[M_PLAIN];
            bench_report(name, "ns", &d, 1);
        }
        for (int m = M_LAZY; m < NMODES; m++) {
            snprintf(name, sizeof name, "syscall_p%d_%s_over_raw_ns", procs[pi], mode_names[m]);
            double d = med[m] - med[M_RAW];
            bench_report(name, "ns", &d, 1);
        }
        for (int m = M_RAW; m < NMODES; m++) {
            snprintf(name, sizeof name, "syscall_p%d_%s_over_plain", procs[pi], mode_names[m]);
            bench_ratio(name, med[m] / med[M_PLAIN]);
        }
        for (int m = M_LAZY; m < NMODES; m++) {
            const char *what[4] = {"futex_wakes", "retakes", "slow_exits", "ctxsw"};
            for (int k = 0; k < 4; k++) {
                for (int r = 0; r < runs; r++) {
                    const sample_t *s = &samples[pi][m][r];
                    double x = k == 0 ? s->futex : k == 1 ? s->retakes : k == 2 ? s->slow : s->csw;
                    v[r] = x * 1000.0;
                }
                snprintf(name, sizeof name, "syscall_p%d_%s_%s_per_1k_calls", procs[pi],
                         mode_names[m], what[k]);
                bench_report(name, "count", v, runs);
            }
        }
    }
    bench_print_table("bench_syscall: median of rounds (ratios: mode / plain, > 1 means slower "
                      "than the plain call)");
    for (int pi = 0; pi < nprocs; pi++) {
        double lazy = 0, lazy_y = 0, raw = 0, plain = 0;
        for (int i = 0; i < bench_nrows; i++) {
            char want[64];
            snprintf(want, sizeof want, "syscall_p%d_", procs[pi]);
            if (strncmp(bench_rows[i].name, want, strlen(want)) != 0)
                continue;
            const char *rest = bench_rows[i].name + strlen(want);
            if (strcmp(rest, "lazy_ns_per_call") == 0)
                lazy = bench_rows[i].median;
            else if (strcmp(rest, "lazy_y_ns_per_call") == 0)
                lazy_y = bench_rows[i].median;
            else if (strcmp(rest, "raw_ns_per_call") == 0)
                raw = bench_rows[i].median;
            else if (strcmp(rest, "plain_ns_per_call") == 0)
                plain = bench_rows[i].median;
        }
        bench_note("target GOMAXPROCS=%d: lazy fast path <= 25 ns over the raw syscall: "
                   "lazy_y - raw = %.1f ns (%s), lazy_y - plain = %.1f ns (%s); "
                   "tight loop: lazy - raw = %.1f ns",
                   procs[pi], lazy_y - raw, lazy_y - raw <= 25 ? "MET" : "MISSED", lazy_y - plain,
                   lazy_y - plain <= 25 ? "MET" : "MISSED", lazy - raw);
    }
    return 0;
}
