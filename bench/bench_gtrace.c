/*
 * bench_gtrace.c - examples/gtrace by mode (issue 9): a tracee that makes N
 * getppid calls (2 ptrace stops each), traced with `gtrace -c` in the
 * dedicated, locked and thread (plain pthreads, the baseline) modes; and
 * the conditional-breakpoint loop (`--roundtrip`: every stop is a request
 * to an evaluator and waits for its answer before the tracee resumes, as
 * Delve evaluates a condition).
 *
 * Reported per mode: traced system calls per second (N / elapsed, whole
 * gtrace run including start-up) and, for the round-trip loop, elapsed
 * time per stop. Modes are interleaved in each round; medians of R rounds.
 * Ratios: dedicated / thread for syscalls per second (target >= 0.9), and
 * locked / dedicated time per stop in the round-trip loop (target >= 2).
 *
 * Spin: gort's dedicated threads spin up to 50 us (adaptive) before their
 * futex sleep; pthread condition variables do not spin. Pinning: none.
 *
 * Usage: bench_gtrace [-r runs] [-n getppid_calls] [-b roundtrip_calls]
 */
#include "bench_common.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#ifndef GTRACE_BIN
#error "GTRACE_BIN and GTRACE_PROG come from bench/CMakeLists.txt"
#endif

extern char **environ;

static double run_gtrace(const char *mode, bool rt, long n)
{
    char nbuf[32], mbuf[32];
    snprintf(nbuf, sizeof nbuf, "%ld", n);
    snprintf(mbuf, sizeof mbuf, "--mode=%s", mode);
    char *argv[] = {
        GTRACE_BIN, "-c",        "-o",      "/dev/null", mbuf, rt ? "--roundtrip" : "-c",
        "--",       GTRACE_PROG, "getppid", nbuf,        NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    int64_t t0 = bench_now_ns();
    pid_t pid;
    if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0)
        bench_die("cannot run %s", argv[0]);
    posix_spawn_file_actions_destroy(&fa);
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        bench_die("gtrace %s failed (status %d)", mode, st);
    return (double)(bench_now_ns() - t0);
}

int main(int argc, char **argv)
{
    int runs = BENCH_MIN_RUNS;
    long n = 200000, nb = 20000;
    int c;
    while ((c = getopt(argc, argv, "r:n:b:")) != -1) {
        if (c == 'r')
            runs = bench_parse_runs(optarg);
        else if (c == 'n')
            n = bench_parse_long("-n", optarg, 1, 100000000);
        else if (c == 'b')
            nb = bench_parse_long("-b", optarg, 1, 100000000);
        else {
            fprintf(stderr, "usage: %s [-r runs] [-n calls] [-b roundtrip_calls]\n", argv[0]);
            return 2;
        }
    }
    bench_print_header("bench_gtrace", runs);
    bench_note("tracee: gtrace_testprog getppid N (N = %ld; %ld in the round-trip loop), 2 ptrace "
               "stops per call; gtrace -c, one command",
               n, nb);
    bench_note("spin: dedicated tracer threads spin up to 50 us (adaptive) before sleeping; "
               "locked: every wake-up is a P hand-off; thread: pthread mutex + condvar, no spin");
    bench_note("pinning: none");
    static const char *modes[] = {"dedicated", "locked", "thread"};
    enum { NM = 3 };
    static double sps[NM][BENCH_MAX_RUNS], rt[NM][BENCH_MAX_RUNS];
    run_gtrace("thread", false, n / 10 + 1); /* warm-up */
    for (int r = 0; r < runs; r++)
        for (int m = 0; m < NM; m++) {
            sps[m][r] = (double)n / (run_gtrace(modes[m], false, n) / 1e9);
            rt[m][r] = run_gtrace(modes[m], true, nb) / (2.0 * (double)nb);
        }
    char name[96];
    double ms[NM], mr[NM];
    for (int m = 0; m < NM; m++) {
        snprintf(name, sizeof name, "gtrace_%s_syscalls_per_s", modes[m]);
        ms[m] = bench_report(name, "calls/s", sps[m], runs);
        snprintf(name, sizeof name, "gtrace_%s_roundtrip_ns_per_stop", modes[m]);
        mr[m] = bench_report(name, "ns", rt[m], runs);
    }
    bench_ratio("gtrace_dedicated_vs_thread_syscalls_per_s", ms[0] / ms[2]);
    bench_ratio("gtrace_dedicated_vs_locked_syscalls_per_s", ms[0] / ms[1]);
    bench_ratio("gtrace_roundtrip_locked_vs_dedicated_time", mr[1] / mr[0]);
    bench_ratio("gtrace_roundtrip_thread_vs_dedicated_time", mr[2] / mr[0]);
    bench_print_table("bench_gtrace: median of runs (ratios as named)");
    return 0;
}
