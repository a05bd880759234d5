/*
 * demo.c - gort's main demo: a tree of 100,000 goroutines, then a table of
 * what the scheduler did to run them.
 *
 * Usage: demo [GOROUTINES [GOMAXPROCS]]
 *
 * The main goroutine starts goroutine 0 of a tree. Goroutine i starts its
 * children FANOUT*i+1 .. FANOUT*i+FANOUT (those below GOROUTINES), does a
 * little arithmetic, yields once so its siblings get a turn, does a little
 * more and adds its result to a checksum. Every goroutine is counted in one
 * WaitGroup, which the main goroutine waits on. A goroutine's children are
 * put in its P's run queue; idle Ps are woken to steal them, so the table
 * shows the scheduler's work stealing, spinning and parking as well as the
 * plain goroutine switches.
 *
 * The checksum is also computed sequentially, so the program checks that
 * every goroutine ran exactly once: it exits 1 if not.
 *
 * Only the public API (gort.h) is used: this is a program a user would write.
 */
#define _POSIX_C_SOURCE 200809L

#include <gort.h>

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define DEFAULT_GOROUTINES 100000
#define FANOUT             8
#define WORK_ROUNDS        32

/* Set by main before gort_main, read-only afterwards. */
static uint64_t ngoroutines;

static gort_waitgroup_t wg = GORT_WAITGROUP_INIT;
static _Atomic uint64_t checksum;
static _Atomic int spawn_errors;   /* gort_go failures: their subtrees are missing */
static _Atomic int spawn_last_err; /* the last failure's error code */

/* A little arithmetic: WORK_ROUNDS rounds of splitmix64. */
static uint64_t work(uint64_t x)
{
    for (int r = 0; r < WORK_ROUNDS; r++) {
        x += UINT64_C(0x9e3779b97f4a7c15);
        uint64_t z = x;
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        x = z ^ (z >> 31);
    }
    return x;
}

/* What goroutine i adds to the checksum. */
static uint64_t node_result(uint64_t i)
{
    return work(work(i));
}

static void node(void *arg);

/* Starts goroutine i of the tree, counted in wg. */
static void spawn(uint64_t i)
{
    gort_waitgroup_add(&wg, 1);
    int err = gort_go(node, (void *)(uintptr_t)i);
    if (err < 0) {
        gort_waitgroup_done(&wg);
        atomic_fetch_add(&spawn_errors, 1);
        atomic_store(&spawn_last_err, err);
    }
}

static void node(void *arg)
{
    uint64_t i = (uint64_t)(uintptr_t)arg;

    for (uint64_t c = i * FANOUT + 1; c <= i * FANOUT + FANOUT && c < ngoroutines; c++)
        spawn(c);

    uint64_t h = work(i);
    gort_yield();
    h = work(h);
    atomic_fetch_add_explicit(&checksum, h, memory_order_relaxed);
    gort_waitgroup_done(&wg);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double ratio(uint64_t a, uint64_t b)
{
    return b ? (double)a / (double)b : 0.0;
}

static void row(const char *name, uint64_t value, const char *note)
{
    printf("  %-28s %12" PRIu64 "%s%s\n", name, value, *note ? "   " : "", note);
}

/* The main goroutine: runs the tree, prints the table. */
static int demo_main(void *arg)
{
    (void)arg;
    double t0 = now_s();
    spawn(0);
    gort_waitgroup_wait(&wg);
    double elapsed = now_s() - t0;

    /* Read the counters while the runtime is quiet. */
    gort_stats_t st = {.size = sizeof st};
    int err = gort_stats_get(&st);
    if (err < 0) {
        fprintf(stderr, "demo: gort_stats_get: %s\n", gort_strerror(err));
        return 1;
    }

    uint64_t expect = 0;
    for (uint64_t i = 0; i < ngoroutines; i++)
        expect += node_result(i);
    uint64_t got = atomic_load(&checksum);
    int nerr = atomic_load(&spawn_errors);

    printf("gort %s: %" PRIu64 " goroutines in a tree (fan-out %d), GOMAXPROCS=%d\n",
           gort_version(), ngoroutines, FANOUT, gort_gomaxprocs());
    printf("elapsed %.1f ms, %.0f ns per goroutine, %.2f M goroutines/s\n", elapsed * 1e3,
           elapsed * 1e9 / (double)(ngoroutines ? ngoroutines : 1),
           (double)ngoroutines / elapsed / 1e6);
    if (nerr)
        printf("gort_go failed %d times, last: %s\n", nerr,
               gort_strerror(atomic_load(&spawn_last_err)));
    printf("checksum %016" PRIx64 " %s\n\n", got, got == expect ? "ok" : "WRONG");

    char note[96];
    printf("what the scheduler did (gort_stats_get)\n");
    printf("  %-28s %12s\n", "counter", "value");
    row("goroutines created", st.goroutines_created, "including the main goroutine");
    row("goroutines exited", st.goroutines_exited, "");
    row("goroutines live", st.goroutines_live, "the main goroutine, still running");
    snprintf(note, sizeof note, "%.2f per goroutine", ratio(st.switches, st.goroutines_created));
    row("switches", st.switches, note);
    row("steal tries", st.steal_tries, "runqsteal on another P");
    snprintf(note, sizeof note, "%.1f%% of tries",
             100.0 * ratio(st.steal_successes, st.steal_tries));
    row("steal successes", st.steal_successes, note);
    snprintf(note, sizeof note, "%.1f per successful steal",
             ratio(st.steal_gs, st.steal_successes));
    row("goroutines stolen", st.steal_gs, note);
    row("Ms created", st.ms_created, "OS threads, including the first");
    row("Ms parked", st.ms_parked, "stopm: no work, thread sleeps");
    row("Ms woken", st.ms_woken, "startm: idle thread given a P");
    row("spinning transitions", st.spinning_transitions, "an M started looking for work");
    row("futex sleeps", st.futex_sleeps, "");
    row("futex wakes", st.futex_wakes, "");
    row("global queue puts", st.globrunq_puts, "");
    row("global queue gets", st.globrunq_gets, "");
    row("stacks mapped", st.stacks_mapped, "from the OS; the rest were reused");
    snprintf(note, sizeof note, "%.1f MiB", (double)st.stack_bytes_mapped / (1024.0 * 1024.0));
    row("stack bytes mapped", st.stack_bytes_mapped, note);

    return (got == expect && nerr == 0) ? 0 : 1;
}

static int parse(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v > max)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t procs = 0;
    ngoroutines = DEFAULT_GOROUTINES;
    int bad = argc > 3;
    if (argc > 1 && (parse(argv[1], UINT64_C(1) << 32, &ngoroutines) < 0 || ngoroutines == 0))
        bad = 1;
    if (argc > 2 && parse(argv[2], GORT_MAXPROCS_MAX, &procs) < 0)
        bad = 1;
    if (bad) {
        fprintf(stderr, "usage: %s [GOROUTINES [GOMAXPROCS]]\n", argv[0]);
        return 2;
    }

    gort_config_t cfg = {.size = sizeof cfg, .gomaxprocs = (int)procs};
    double t0 = now_s();
    int rc = gort_main(demo_main, NULL, &cfg);
    double total = now_s() - t0;
    if (rc < 0) {
        fprintf(stderr, "demo: gort_main: %s\n", gort_strerror(rc));
        return 1;
    }
    printf("\ngort_main returned %d after %.1f ms (start-up and shut-down included)\n", rc,
           total * 1e3);
    return rc;
}
