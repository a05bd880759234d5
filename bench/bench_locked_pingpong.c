/*
 * bench_locked_pingpong.c - the golang/go#21827 shape: a client goroutine
 * sends a request on an unbuffered channel to a server goroutine and waits
 * for the reply on another unbuffered channel. The server is
 *
 *   (a) unlocked: both are plain goroutines; at GOMAXPROCS=1 a round trip
 *       is two user-level switches on one thread;
 *   (b) locked (gort_lock_os_thread): every wake-up of the server needs a
 *       P handed to its thread (startlockedm: futex wake), and every time
 *       it blocks its thread hands the P off (stoplockedm/handoffp: another
 *       futex wake) - the cost the DedicateOSThread proposal removes.
 *
 * Baseline in the same run: two raw pthreads ping-ponging a turn word with
 * FUTEX_WAKE / FUTEX_WAIT, no spin, unpinned (one wake per direction).
 *
 * Per round trip: ns (elapsed), CPU ns (CLOCK_PROCESS_CPUTIME_ID, all
 * threads: the figure to trust on a busy machine), context switches (getrusage RUSAGE_SELF,
 * ru_nvcsw + ru_nivcsw, all threads), CPU migrations (perf_event_open software event
 * PERF_COUNT_SW_CPU_MIGRATIONS on the whole process, inherited by every
 * thread created after it is opened; "n/a" if perf is not allowed), the
 * runtime's futex wakes and startlockedm, and how often the server found
 * itself on another CPU (sched_getcpu) or thread than the round before.
 *
 * Target (issue 4): the locked server shows at least 2 extra thread
 * wake-ups per round trip compared with unlocked, visible in context
 * switches.
 *
 * Usage: bench_locked_pingpong [-r runs] [-u rounds] [-l rounds] [-P gomaxprocs]
 */
#include "bench_common.h"

#include <limits.h>
#include <linux/futex.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

/* One configuration's result, per round trip. */
typedef struct sample {
    double ns, cpu_ns, csw, migr, futex, startlocked, server_cpu_changes, server_tid_changes;
} sample_t;

/* ---- gort ---- */

typedef struct pp_arg {
    bool locked;
    long rounds;
    gort_chan_t *req, *resp;
    gort_waitgroup_t done;
    long server_cpu_changes, server_tid_changes; /* written by the server */
    sample_t s;
    int err;
} pp_arg_t;

static gort_stats_t stats_now(void)
{
    gort_stats_t st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    if (gort_stats_get(&st) != 0)
        bench_die("gort_stats_get failed");
    return st;
}

/* A cheap thread identity for the server's "did I change threads" count
 * (gettid is a system call, about 1 us on this VM: too dear per round trip).
 * noinline: the address of a thread-local must not be cached across a
 * point where the goroutine may resume on another thread. */
static __thread char thread_tag;

__attribute__((noinline)) static const void *thread_id(void)
{
    return &thread_tag;
}

static void server(void *p)
{
    pp_arg_t *a = p;
    if (a->locked && gort_lock_os_thread() != 0)
        a->err = 1;
    int lastcpu = sched_getcpu();
    const void *lasttid = thread_id();
    long cpu_changes = 0, tid_changes = 0;
    for (;;) {
        long v;
        bool ok;
        if (gort_chan_recv(a->req, &v, &ok) != 0 || !ok) {
            a->err = 2;
            break;
        }
        if (v < 0) { /* reset the counters (end of warm-up) */
            cpu_changes = tid_changes = 0;
        } else if (v == LONG_MAX) {
            break;
        }
        int cpu = sched_getcpu();
        const void *tid = thread_id();
        cpu_changes += cpu != lastcpu;
        tid_changes += tid != lasttid;
        lastcpu = cpu;
        lasttid = tid;
        a->server_cpu_changes = cpu_changes;
        a->server_tid_changes = tid_changes;
        if (gort_chan_send(a->resp, &v) != 0) {
            a->err = 3;
            break;
        }
    }
    if (a->locked)
        gort_unlock_os_thread();
    gort_waitgroup_done(&a->done);
}

static int client_main(void *p)
{
    pp_arg_t *a = p;
    if (gort_chan_make(&a->req, sizeof(long), 0) || gort_chan_make(&a->resp, sizeof(long), 0))
        bench_die("gort_chan_make failed");
    gort_waitgroup_init(&a->done);
    gort_waitgroup_add(&a->done, 1);
    gort_go(server, a);
    long v, w;
    /* Warm-up: a tenth of the rounds, then reset the server's counts. */
    for (long i = 0; i < a->rounds / 10 + 1; i++) {
        v = i;
        gort_chan_send(a->req, &v);
        gort_chan_recv(a->resp, &w, NULL);
    }
    v = -1;
    gort_chan_send(a->req, &v);
    gort_chan_recv(a->resp, &w, NULL);

    gort_stats_t s0 = stats_now();
    long c0 = bench_csw_now();
    long long m0 = bench_migr_now();
    int64_t u0 = bench_cpu_ns();
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < a->rounds; i++) {
        v = i;
        gort_chan_send(a->req, &v);
        gort_chan_recv(a->resp, &w, NULL);
        if (w != v)
            a->err = 4;
    }
    int64_t t1 = bench_now_ns();
    int64_t u1 = bench_cpu_ns();
    long long m1 = bench_migr_now();
    long c1 = bench_csw_now();
    gort_stats_t s1 = stats_now();
    double n = (double)a->rounds;
    a->s.ns = (double)(t1 - t0) / n;
    a->s.cpu_ns = (double)(u1 - u0) / n;
    a->s.csw = (double)(c1 - c0) / n;
    a->s.migr = m0 < 0 || m1 < 0 ? -1 : (double)(m1 - m0) / n;
    a->s.futex = (double)(s1.futex_wakes - s0.futex_wakes) / n;
    a->s.startlocked = (double)(s1.startlockedm - s0.startlockedm) / n;
    a->s.server_cpu_changes = (double)a->server_cpu_changes / n;
    a->s.server_tid_changes = (double)a->server_tid_changes / n;

    v = LONG_MAX;
    gort_chan_send(a->req, &v);
    gort_waitgroup_wait(&a->done);
    gort_chan_free(a->req);
    gort_chan_free(a->resp);
    return 0;
}

static sample_t run_gort(bool locked, long rounds, int procs)
{
    pp_arg_t a;
    memset(&a, 0, sizeof a);
    a.locked = locked;
    a.rounds = rounds;
    bench_gort_run(client_main, &a, procs);
    if (a.err)
        bench_die("ping-pong failed (%d)", a.err);
    return a.s;
}

/* ---- the pthread futex ping-pong baseline (bench_common.h), no spin ---- */

static sample_t run_futex(long rounds)
{
    bench_fpp_result_t res = bench_futex_pingpong(rounds, -1, -1, 0);
    sample_t s;
    memset(&s, 0, sizeof s);
    double n = (double)rounds;
    s.ns = (double)res.ns / n;
    s.cpu_ns = (double)res.cpu_ns / n;
    s.csw = (double)res.csw / n;
    s.migr = res.migr < 0 ? -1 : (double)res.migr / n;
    return s;
}

/* ---- main ---- */

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-r runs] [-u rounds] [-l rounds] [-P gomaxprocs]\n"
            "  -r runs     measured runs per configuration (>= %d, default %d)\n"
            "  -u rounds   round trips, unlocked server (default 200000)\n"
            "  -l rounds   round trips, locked server and futex baseline (default 5000)\n"
            "  -P procs    only this GOMAXPROCS (default: 1 and 2)\n",
            argv0, BENCH_MIN_RUNS, BENCH_MIN_RUNS);
    exit(2);
}

#define MAXCONF 8

int main(int argc, char **argv)
{
    int runs = BENCH_MIN_RUNS, only_p = 0;
    long urounds = 200000, lrounds = 5000;
    int c;
    while ((c = getopt(argc, argv, "r:u:l:P:h")) != -1) {
        switch (c) {
        case 'r':
            runs = bench_parse_runs(optarg);
            break;
        case 'u':
            urounds = bench_parse_long("-u", optarg, 1, 1000000000L);
            break;
        case 'l':
            lrounds = bench_parse_long("-l", optarg, 1, 1000000000L);
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
    bench_migr_open(); /* before any thread, so that every later thread inherits it */

    int procs[2] = {1, 2}, nprocs = 2;
    if (only_p) {
        procs[0] = only_p;
        nprocs = 1;
    }

    bench_print_header("bench_locked_pingpong", runs);
    bench_note("gort: client = main goroutine, server goroutine; unbuffered request and reply "
               "channels (long); unlocked %ld round trips, locked %ld",
               urounds, lrounds);
    bench_note("baseline: 2 pthreads, turn word, FUTEX_WAKE + FUTEX_WAIT, spin 0, unpinned, "
               "%ld round trips",
               lrounds);
    bench_note("pinning: none anywhere; spin: gort as built (see above), baseline none");
    bench_note("cpu migrations: %s",
               bench_migr_fd >= 0 ? "perf_event_open PERF_COUNT_SW_CPU_MIGRATIONS, whole process"
                                  : "not available (perf_event_open failed), reported as -1");
    bench_note("context switches: getrusage(RUSAGE_SELF) ru_nvcsw + ru_nivcsw, whole process");

    /* Configurations: [procs x {unlocked, locked}], then the baseline. */
    int nconf = 2 * nprocs + 1;
    static sample_t s[MAXCONF][BENCH_MAX_RUNS];
    char names[MAXCONF][48];
    for (int pi = 0; pi < nprocs; pi++) {
        snprintf(names[2 * pi], sizeof names[0], "pingpong_p%d_unlocked", procs[pi]);
        snprintf(names[2 * pi + 1], sizeof names[0], "pingpong_p%d_locked", procs[pi]);
    }
    snprintf(names[nconf - 1], sizeof names[0], "pingpong_futex");

    /* Warm-up, discarded. */
    run_futex(lrounds / 10 + 1);
    for (int r = 0; r < runs; r++) {
        for (int pi = 0; pi < nprocs; pi++) {
            s[2 * pi][r] = run_gort(false, urounds, procs[pi]);
            s[2 * pi + 1][r] = run_gort(true, lrounds, procs[pi]);
        }
        s[nconf - 1][r] = run_futex(lrounds);
    }

    double v[BENCH_MAX_RUNS], med_ns[MAXCONF], med_csw[MAXCONF];
    char name[sizeof names[0] + 32]; /* a name, "_", a field (<= 31) */
    enum { NF = 8 };
    const char *fields[NF] = {"ns_per_rt",
                              "cpu_ns_per_rt",
                              "ctxsw_per_rt",
                              "migrations_per_rt",
                              "futex_wakes_per_rt",
                              "startlockedm_per_rt",
                              "server_cpu_changes_per_rt",
                              "server_tid_changes_per_rt"};
    const char *units[NF] = {"ns", "ns", "count", "count", "count", "count", "count", "count"};
    for (int k = 0; k < nconf; k++) {
        int nf = k == nconf - 1 ? 4 : NF; /* the baseline has no runtime counters */
        for (int f = 0; f < nf; f++) {
            for (int r = 0; r < runs; r++) {
                const sample_t *x = &s[k][r];
                double vals[NF] = {x->ns,
                                   x->cpu_ns,
                                   x->csw,
                                   x->migr,
                                   x->futex,
                                   x->startlocked,
                                   x->server_cpu_changes,
                                   x->server_tid_changes};
                v[r] = vals[f];
            }
            snprintf(name, sizeof name, "%.47s_%.31s", names[k], fields[f]);
            double m = bench_report(name, units[f], v, runs);
            if (f == 0)
                med_ns[k] = m;
            if (f == 2)
                med_csw[k] = m;
        }
    }
    for (int pi = 0; pi < nprocs; pi++) {
        snprintf(name, sizeof name, "pingpong_p%d_locked_over_unlocked", procs[pi]);
        bench_ratio(name, med_ns[2 * pi + 1] / med_ns[2 * pi]);
        snprintf(name, sizeof name, "pingpong_p%d_locked_over_futex", procs[pi]);
        bench_ratio(name, med_ns[2 * pi + 1] / med_ns[nconf - 1]);
        snprintf(name, sizeof name, "pingpong_futex_over_p%d_unlocked", procs[pi]);
        bench_ratio(name, med_ns[nconf - 1] / med_ns[2 * pi]);
    }
    bench_print_table("bench_locked_pingpong: median of runs, per round trip (rt)");
    for (int pi = 0; pi < nprocs; pi++) {
        double extra = med_csw[2 * pi + 1] - med_csw[2 * pi];
        bench_note("target GOMAXPROCS=%d: locked >= 2 extra context switches per round trip "
                   "over unlocked: %.2f extra (%s)",
                   procs[pi], extra, extra >= 2 ? "MET" : "MISSED");
    }
    return 0;
}
