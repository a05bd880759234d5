/*
 * bench_parked_rss.c - resident memory per parked goroutine.
 *
 * gort: inside gort_main (GOMAXPROCS=1 by default), the main goroutine reads
 * VmRSS, spawns N goroutines with gort_go_opts (stack_size = GORT_STACK_MIN)
 * that each mark themselves started and park in gort_waitgroup_wait on a
 * gate, waits until all N have started, reads VmRSS again, then opens the
 * gate and waits for all N to finish. Result: (rss_after - rss_before) / N
 * in bytes. The same is measured with the default stack size (stack_size 0,
 * GORT_STACK_DEFAULT) for N_default goroutines. Page-table memory (VmPTE,
 * not part of VmRSS) and the stack address space mapped are reported too.
 * glibc's free heap is trimmed (malloc_trim) before each "before" reading so
 * that a run does not reuse pages an earlier run left resident.
 *
 * Baseline (same process, same runs): T pthreads, each on a stack of
 * PTHREAD_STACK_MIN (at least 16 KiB) mmap'd by the benchmark and given with
 * pthread_attr_setstack (so glibc's stack cache cannot hide pages between
 * runs), blocked in FUTEX_WAIT on a gate. Reported: VmRSS delta / T, and the
 * system-wide KernelStack delta / T from /proc/meminfo (kernel memory a
 * thread costs that VmRSS does not show; other processes add noise to it).
 *
 * Also reported: the machine's cost of a first touch of a fresh anonymous
 * page, which bounds how fast goroutines with fresh stacks can be started.
 *
 * The defaults (N = 50,000, N_default = 10,000) keep a run under ~30 s:
 * every parked goroutine's stack page is a first-touch page fault, ~25 us
 * on the 2-vCPU PVM guest gort is developed on, so N = 1,000,000 takes
 * about 25 s per run (`bench_parked_rss 1000000`, a few minutes for 5 runs).
 * The per-goroutine figure does not depend on N.
 *
 * Usage: bench_parked_rss [-r runs] [-d n_default] [-t threads] [-p procs] [N]
 */
#include "bench_common.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>

/* ---- gort ---- */

typedef struct rss_arg {
    long n;
    size_t stack_size; /* 0: the runtime's default */
    gort_waitgroup_t started, gate, finished;
    long long rss_before, rss_after, pte_before, pte_after;
    uint64_t stack_va;  /* stack address space mapped while they were parked */
    int64_t spawn_ns;   /* spawn of N until all have parked */
    int64_t release_ns; /* gate opened until all N have finished */
    uint64_t live;      /* goroutines_live while parked */
    int err;
} rss_arg_t;

static void parked(void *p)
{
    rss_arg_t *a = p;
    gort_waitgroup_done(&a->started);
    gort_waitgroup_wait(&a->gate);
    gort_waitgroup_done(&a->finished);
}

static int rss_main(void *p)
{
    rss_arg_t *a = p;
    gort_stats_t s0, s1;
    memset(&s0, 0, sizeof s0);
    memset(&s1, 0, sizeof s1);
    s0.size = s1.size = sizeof s0;
    gort_waitgroup_init(&a->started);
    gort_waitgroup_init(&a->gate);
    gort_waitgroup_init(&a->finished);
    gort_waitgroup_add(&a->gate, 1);
    gort_waitgroup_add(&a->started, (int)a->n);
    gort_waitgroup_add(&a->finished, (int)a->n);
    gort_go_opts_t opts;
    memset(&opts, 0, sizeof opts);
    opts.size = sizeof opts;
    opts.stack_size = a->stack_size;

    bench_trim_heap();
    gort_stats_get(&s0);
    a->rss_before = bench_rss_bytes();
    a->pte_before = bench_proc_kb_field("/proc/self/status", "VmPTE");
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < a->n; i++) {
        int r = gort_go_opts(parked, a, &opts, NULL);
        if (r != 0) {
            a->err = r;
            gort_waitgroup_add(&a->started, -(int)(a->n - i));
            gort_waitgroup_add(&a->finished, -(int)(a->n - i));
            break;
        }
    }
    gort_waitgroup_wait(&a->started);
    a->spawn_ns = bench_now_ns() - t0;
    a->rss_after = bench_rss_bytes();
    a->pte_after = bench_proc_kb_field("/proc/self/status", "VmPTE");
    gort_stats_get(&s1);
    a->stack_va = s1.stack_bytes_mapped - s0.stack_bytes_mapped;
    a->live = s1.goroutines_live;

    t0 = bench_now_ns();
    gort_waitgroup_done(&a->gate);
    gort_waitgroup_wait(&a->finished);
    a->release_ns = bench_now_ns() - t0;
    return 0;
}

static void run_gort(long n, size_t stack_size, int procs, rss_arg_t *out)
{
    memset(out, 0, sizeof *out);
    out->n = n;
    out->stack_size = stack_size;
    bench_gort_run(rss_main, out, procs);
    if (out->err)
        bench_die("gort_go_opts failed after some goroutines: %s (%d)", gort_strerror(out->err),
                  out->err);
    /* The N parked goroutines plus the main goroutine. */
    if (out->live < (uint64_t)n + 1)
        bench_die("runtime counted %llu live goroutines while %ld were parked",
                  (unsigned long long)out->live, n);
}

/* ---- pthread baseline ---- */

typedef struct thr_shared {
    _Atomic uint32_t started;
    _Atomic uint32_t gate;
    uint32_t n;
} thr_shared_t;

static void *blocked_thread(void *p)
{
    thr_shared_t *s = p;
    if (atomic_fetch_add(&s->started, 1) + 1 == s->n)
        syscall(SYS_futex, (uint32_t *)&s->started, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    while (atomic_load(&s->gate) == 0)
        syscall(SYS_futex, (uint32_t *)&s->gate, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    return NULL;
}

typedef struct thr_result {
    double rss_per_thread;
    double kstack_per_thread;
} thr_result_t;

static size_t thread_stack_size(void)
{
    long m = sysconf(_SC_THREAD_STACK_MIN);
    size_t s = m > 0 ? (size_t)m : (size_t)PTHREAD_STACK_MIN;
    if (s < 16384)
        s = 16384;
    long ps = sysconf(_SC_PAGESIZE);
    return (s + (size_t)ps - 1) & ~((size_t)ps - 1);
}

static thr_result_t run_pthreads(uint32_t n)
{
    thr_shared_t s;
    atomic_init(&s.started, 0);
    atomic_init(&s.gate, 0);
    s.n = n;
    size_t ssz = thread_stack_size();
    pthread_t *th = calloc(n, sizeof *th);
    void **stacks = calloc(n, sizeof *stacks);
    if (!th || !stacks)
        bench_die("out of memory");

    bench_trim_heap();
    long long rss0 = bench_rss_bytes();
    long long ks0 = bench_proc_kb_field("/proc/meminfo", "KernelStack");
    for (uint32_t i = 0; i < n; i++) {
        stacks[i] =
            mmap(NULL, ssz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (stacks[i] == MAP_FAILED)
            bench_die("mmap thread stack: %s", strerror(errno));
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstack(&attr, stacks[i], ssz);
        int r = pthread_create(&th[i], &attr, blocked_thread, &s);
        pthread_attr_destroy(&attr);
        if (r != 0)
            bench_die("pthread_create #%u: %s", i, strerror(r));
    }
    for (uint32_t v; (v = atomic_load(&s.started)) < n;)
        syscall(SYS_futex, (uint32_t *)&s.started, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
    long long rss1 = bench_rss_bytes();
    long long ks1 = bench_proc_kb_field("/proc/meminfo", "KernelStack");

    atomic_store(&s.gate, 1);
    syscall(SYS_futex, (uint32_t *)&s.gate, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    for (uint32_t i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    for (uint32_t i = 0; i < n; i++)
        munmap(stacks[i], ssz);
    free(th);
    free(stacks);
    thr_result_t res = {(double)(rss1 - rss0) / n, (double)(ks1 - ks0) / n};
    return res;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-r runs] [-d n_default] [-t threads] [-p procs] [N]\n"
            "  N            parked goroutines with GORT_STACK_MIN stacks (default 50000)\n"
            "  -d n_default parked goroutines with the default stack (default 10000)\n"
            "  -t threads   parked pthreads for the baseline (default 2000)\n"
            "  -p procs     GOMAXPROCS (default 1)\n"
            "  -r runs      measured runs per configuration (>= %d, default %d)\n",
            argv0, BENCH_MIN_RUNS, BENCH_MIN_RUNS);
    exit(2);
}

int main(int argc, char **argv)
{
    int runs = BENCH_MIN_RUNS, procs = 1;
    long n = 50000, nd = 10000, nt = 2000;
    int c;
    while ((c = getopt(argc, argv, "r:d:t:p:h")) != -1) {
        switch (c) {
        case 'r':
            runs = bench_parse_runs(optarg);
            break;
        case 'd':
            nd = bench_parse_long("-d", optarg, 1, INT_MAX);
            break;
        case 't':
            nt = bench_parse_long("-t", optarg, 1, 1000000L);
            break;
        case 'p':
            procs = (int)bench_parse_long("-p", optarg, 1, GORT_MAXPROCS_MAX);
            break;
        default:
            usage(argv[0]);
        }
    }
    if (optind < argc)
        n = bench_parse_long("N", argv[optind++], 1, INT_MAX);
    if (optind != argc)
        usage(argv[0]);

    bench_print_header("bench_parked_rss", runs);
    bench_note("gort: GOMAXPROCS=%d, N=%ld parked goroutines with stack_size=GORT_STACK_MIN "
               "(%zu), %ld with the default stack (%zu); parked in gort_waitgroup_wait",
               procs, n, GORT_STACK_MIN, nd, GORT_STACK_DEFAULT);
    bench_note("pinning: none; spin: not relevant (goroutines park, no thread sleeps while "
               "measuring)");
    bench_note("baseline: %ld pthreads blocked in FUTEX_WAIT, %zu-byte stacks mmap'd by the "
               "benchmark (pthread_attr_setstack), unpinned",
               nt, thread_stack_size());
    bench_note("RSS from /proc/self/status VmRSS; malloc_trim(0) before each 'before' reading");

    double gmin[BENCH_MAX_RUNS], gdef[BENCH_MAX_RUNS], pth[BENCH_MAX_RUNS], kst[BENCH_MAX_RUNS];
    double ptemin[BENCH_MAX_RUNS], ptedef[BENCH_MAX_RUNS], vamin[BENCH_MAX_RUNS];
    double spmin[BENCH_MAX_RUNS], relmin[BENCH_MAX_RUNS], touch[BENCH_MAX_RUNS];
    rss_arg_t a;

    /* Warm-up, discarded (small). */
    run_gort(n / 10 ? n / 10 : 1, GORT_STACK_MIN, procs, &a);
    run_pthreads((uint32_t)(nt / 10 ? nt / 10 : 1));

    for (int r = 0; r < runs; r++) {
        run_gort(n, GORT_STACK_MIN, procs, &a);
        gmin[r] = (double)(a.rss_after - a.rss_before) / (double)n;
        ptemin[r] = (double)(a.pte_after - a.pte_before) / (double)n;
        vamin[r] = (double)a.stack_va / (double)n;
        spmin[r] = (double)a.spawn_ns / (double)n;
        relmin[r] = (double)a.release_ns / (double)n;
        run_gort(nd, 0, procs, &a);
        gdef[r] = (double)(a.rss_after - a.rss_before) / (double)nd;
        ptedef[r] = (double)(a.pte_after - a.pte_before) / (double)nd;
        thr_result_t t = run_pthreads((uint32_t)nt);
        pth[r] = t.rss_per_thread;
        kst[r] = t.kstack_per_thread;
        touch[r] = bench_first_touch_ns(1024);
    }

    double mmin = bench_report("rss_gort_min_stack_bytes_per_goroutine", "bytes", gmin, runs);
    bench_report("rss_gort_min_stack_pte_bytes_per_goroutine", "bytes", ptemin, runs);
    bench_report("rss_gort_min_stack_va_bytes_per_goroutine", "bytes", vamin, runs);
    bench_report("rss_gort_min_stack_spawn_park_ns_per_goroutine", "ns", spmin, runs);
    bench_report("rss_gort_min_stack_release_join_ns_per_goroutine", "ns", relmin, runs);
    double mdef = bench_report("rss_gort_default_stack_bytes_per_goroutine", "bytes", gdef, runs);
    bench_report("rss_gort_default_stack_pte_bytes_per_goroutine", "bytes", ptedef, runs);
    double mpt = bench_report("rss_pthread_bytes_per_thread", "bytes", pth, runs);
    bench_report("rss_pthread_kernel_stack_bytes_per_thread", "bytes", kst, runs);
    bench_report("rss_machine_first_touch_ns_per_page", "ns", touch, runs);
    bench_ratio("rss_pthread_over_gort_min_stack", mpt / mmin);
    bench_ratio("rss_pthread_over_gort_default_stack", mpt / mdef);

    bench_print_table("bench_parked_rss: median of runs (ratios: baseline / gort, > 1 means "
                      "gort uses less)");
    bench_note("target: <= 8192 bytes per parked goroutine with GORT_STACK_MIN: %s (%.0f bytes)",
               mmin <= 8192 ? "MET" : "MISSED", mmin);
    return 0;
}
