/*
 * bench_common.h - shared helpers for gort's benchmarks (header only).
 *
 * Every benchmark binary measures gort and its baseline (raw pthreads) in the
 * same process, repeats each measurement R times (R >= 5, `-r R`), and
 * reports the median. Output has two parts, both on stdout:
 *
 *   - machine-readable lines, one per metric, exactly three fields:
 *         name value unit
 *     ratios are written as `<name>_ratio <value> x`;
 *   - everything else (machine description, settings, the human table)
 *     starts with '#', so `grep -v '^#'` leaves only the metric lines.
 *
 * Each benchmark prints the machine (CPUs, CPU model, kernel), the build,
 * and its spin and pinning settings, because on a small VM those change the
 * results by two orders of magnitude (see docs/performance.md).
 *
 * Include this header before any system header: it defines _GNU_SOURCE for
 * sched_setaffinity and CPU_SET.
 */
#ifndef GORT_BENCH_COMMON_H
#define GORT_BENCH_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <gort.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/perf_event.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <linux/futex.h>
#endif

#ifndef BENCH_BUILD_TYPE
#define BENCH_BUILD_TYPE "unknown"
#endif
#ifndef BENCH_GORT_DEBUG
#define BENCH_GORT_DEBUG -1
#endif

/* How gort's own threads spin before they sleep, as built (src/sched.c,
 * src/lock.c). There is no knob for it; it is printed so that results are
 * read with it in mind. */
#define BENCH_GORT_SPIN_DESC                                                                       \
    "idle M: up to 4 steal passes over the other Ps (no PAUSE loop), then futex sleep; "           \
    "runtime mutex: 4x30 PAUSE + 1 sched_yield before futex sleep; "                               \
    "sysmon thread: sleeps 20 us, doubling after 50 idle rounds up to 10 ms"

enum { BENCH_MIN_RUNS = 5, BENCH_MAX_RUNS = 1000, BENCH_MAX_ROWS = 128 };

/* ---- time ---- */

static inline int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CPU time used by the whole process (all threads), in ns. Unlike elapsed
 * time it does not grow when other processes take the CPUs, so it is the
 * figure to look at on a busy machine; on an idle one it is close to
 * elapsed time x busy threads. */
static inline int64_t bench_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Context switches of the whole process so far (voluntary + involuntary). */
static inline long bench_csw_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_nvcsw + ru.ru_nivcsw;
}

/* ---- errors ---- */

static inline void bench_die(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "bench: FATAL: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    exit(1);
}

/* Parses a positive integer option value or dies. */
static inline long bench_parse_long(const char *opt, const char *s, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        bench_die("%s: expected an integer in [%ld, %ld], got '%s'", opt, min, max, s);
    return v;
}

/* `-r N`: number of measured runs per configuration (>= 5). */
static inline int bench_parse_runs(const char *s)
{
    return (int)bench_parse_long("-r", s, BENCH_MIN_RUNS, BENCH_MAX_RUNS);
}

/* ---- statistics ---- */

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n) (v is left unchanged). */
static inline double bench_median(const double *v, int n)
{
    if (n <= 0)
        return 0.0;
    double *s = malloc((size_t)n * sizeof *s);
    if (!s)
        bench_die("out of memory");
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, bench_cmp_double);
    double m = (n % 2) ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2.0;
    free(s);
    return m;
}

static inline double bench_min(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        if (v[i] < m)
            m = v[i];
    return m;
}

static inline double bench_max(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        if (v[i] > m)
            m = v[i];
    return m;
}

/* ---- reporting ---- */

/* strlcpy: a bounded copy that truncates (snprintf("%s") would make gcc
 * warn about the truncation for every caller with a long buffer). */
static inline void bench_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

typedef struct bench_row {
    char name[128];
    char unit[24];
    double median, min, max;
    int n;
} bench_row_t;

static bench_row_t bench_rows[BENCH_MAX_ROWS];
static int bench_nrows;

static inline void bench_add_row(const char *name, const char *unit, double med, double mn,
                                 double mx, int n)
{
    if (bench_nrows == BENCH_MAX_ROWS)
        bench_die("too many result rows");
    bench_row_t *r = &bench_rows[bench_nrows++];
    bench_copy(r->name, sizeof r->name, name); /* the table truncates long names */
    bench_copy(r->unit, sizeof r->unit, unit);
    r->median = med;
    r->min = mn;
    r->max = mx;
    r->n = n;
}

/* Prints `name median unit` for samples v[0..n) and records a table row.
 * Returns the median. */
static inline double bench_report(const char *name, const char *unit, const double *v, int n)
{
    double med = bench_median(v, n);
    printf("%s %.6g %s\n", name, med, unit);
    fflush(stdout);
    bench_add_row(name, unit, med, bench_min(v, n), bench_max(v, n), n);
    return med;
}

/* Prints `name_ratio value x` and records it (value is usually a ratio of
 * two medians, e.g. baseline / gort). */
static inline void bench_ratio(const char *name, double value)
{
    char full[sizeof(((bench_row_t *)0)->name) + 8];
    snprintf(full, sizeof full, "%s_ratio", name);
    printf("%s %.6g x\n", full, value);
    fflush(stdout);
    bench_add_row(full, "x", value, value, value, 0);
}

/* CPU migrations of the whole process (every thread, also those made
 * later) through perf_event_open; -1 where perf events are not allowed.
 * Call bench_migr_open before starting any thread. */
static int bench_migr_fd = -1;

static inline void bench_migr_open(void)
{
    struct perf_event_attr pa;
    memset(&pa, 0, sizeof pa);
    pa.size = sizeof pa;
    pa.type = PERF_TYPE_SOFTWARE;
    pa.config = PERF_COUNT_SW_CPU_MIGRATIONS;
    pa.inherit = 1; /* threads created later (all of gort's) count too */
    bench_migr_fd = (int)syscall(SYS_perf_event_open, &pa, 0, -1, -1, 0);
    if (bench_migr_fd < 0) {
        pa.exclude_kernel = 1; /* perf_event_paranoid 2 */
        bench_migr_fd = (int)syscall(SYS_perf_event_open, &pa, 0, -1, -1, 0);
    }
}

static inline long long bench_migr_now(void)
{
    uint64_t v = 0;
    if (bench_migr_fd < 0 || read(bench_migr_fd, &v, sizeof v) != (ssize_t)sizeof v)
        return -1;
    return (long long)v;
}

/* A free-form line for the human reader ('#'-prefixed). */
static inline void bench_note(const char *fmt, ...)
{
    va_list ap;
    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

static inline void bench_fmt_value(char *buf, size_t len, double v)
{
    double a = v < 0 ? -v : v;
    if (a != 0 && (a >= 1e7 || a < 1e-3))
        snprintf(buf, len, "%.4g", v);
    else if (a >= 1000)
        snprintf(buf, len, "%.0f", v);
    else if (a >= 10)
        snprintf(buf, len, "%.1f", v);
    else
        snprintf(buf, len, "%.3f", v);
}

/* The human table of every row reported so far. */
static inline void bench_print_table(const char *title)
{
    int w = 6;
    for (int i = 0; i < bench_nrows; i++) {
        int l = (int)strlen(bench_rows[i].name);
        if (l > w)
            w = l;
    }
    printf("#\n# %s\n", title);
    printf("# %-*s %12s %12s %12s  %-8s %s\n", w, "metric", "median", "min", "max", "unit", "runs");
    for (int i = 0; i < bench_nrows; i++) {
        const bench_row_t *r = &bench_rows[i];
        char med[32], mn[32], mx[32];
        bench_fmt_value(med, sizeof med, r->median);
        if (r->n > 0) {
            bench_fmt_value(mn, sizeof mn, r->min);
            bench_fmt_value(mx, sizeof mx, r->max);
        } else {
            snprintf(mn, sizeof mn, "-");
            snprintf(mx, sizeof mx, "-");
        }
        printf("# %-*s %12s %12s %12s  %-8s %d\n", w, r->name, med, mn, mx, r->unit, r->n);
    }
    fflush(stdout);
}

/* ---- machine description ---- */

static inline void bench_cpu_model(char *buf, size_t len)
{
    snprintf(buf, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "re");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0 || strncmp(line, "CPU part", 8) == 0) {
            char *c = strchr(line, ':');
            if (!c)
                continue;
            c++;
            while (*c == ' ' || *c == '\t')
                c++;
            c[strcspn(c, "\n")] = 0;
            snprintf(buf, len, "%s", c);
            break;
        }
    }
    fclose(f);
}

static inline int bench_allowed_cpus(void)
{
    cpu_set_t s;
    if (sched_getaffinity(0, sizeof s, &s) != 0)
        return -1;
    return CPU_COUNT(&s);
}

/* Whether /proc/cpuinfo lists the "hypervisor" flag (running in a VM). */
static inline int bench_in_vm(void)
{
    FILE *f = fopen("/proc/cpuinfo", "re");
    if (!f)
        return -1;
    char line[4096];
    int vm = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5) == 0) {
            vm = strstr(line, " hypervisor") != NULL;
            break;
        }
    }
    fclose(f);
    return vm;
}

/* Prints the '#' header: benchmark, machine, build, runs. */
static inline void bench_print_header(const char *bench, int runs)
{
    struct utsname u;
    char model[256];
    bench_cpu_model(model, sizeof model);
    if (uname(&u) != 0)
        memset(&u, 0, sizeof u);
    printf("# benchmark: %s\n", bench);
    int vm = bench_in_vm();
    printf("# machine: nproc=%ld allowed_cpus=%d cpu=\"%s\" kernel=%s %s vm=%s\n",
           sysconf(_SC_NPROCESSORS_ONLN), bench_allowed_cpus(), model, u.release, u.machine,
           vm < 0 ? "?"
           : vm   ? "yes"
                  : "no");
    printf("# build: %s GORT_DEBUG=%d gort %s cc %s\n", BENCH_BUILD_TYPE, BENCH_GORT_DEBUG,
           gort_version(),
#if defined(__VERSION__)
           __VERSION__
#else
           "?"
#endif
    );
    printf("# runs: %d per configuration (median reported; 1 warm-up run discarded)\n", runs);
    char load[128] = "?";
    FILE *lf = fopen("/proc/loadavg", "re");
    if (lf) {
        if (fgets(load, sizeof load, lf))
            load[strcspn(load, "\n")] = 0;
        fclose(lf);
    }
    printf("# loadavg at start: %s (other processes share these CPUs)\n", load);
    printf("# gort spin (as built): %s\n", BENCH_GORT_SPIN_DESC);
    fflush(stdout);
}

/* ---- pinning (for the pthread baselines) ---- */

/* The k-th CPU (from 0, lowest number first) in the calling thread's
 * affinity mask, or -1 if there are not that many. */
static inline int bench_allowed_cpu(int k)
{
    cpu_set_t s;
    if (sched_getaffinity(0, sizeof s, &s) != 0)
        return k == 0 ? 0 : -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &s) && k-- == 0)
            return c;
    return -1;
}

static inline int bench_first_cpu(void)
{
    int c = bench_allowed_cpu(0);
    return c < 0 ? 0 : c;
}

/* Pins the calling thread to one CPU. Returns 0 or -errno. */
static inline int bench_pin_self(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return sched_setaffinity(0, sizeof s, &s) == 0 ? 0 : -errno;
}

static inline int bench_get_affinity(cpu_set_t *s)
{
    return sched_getaffinity(0, sizeof *s, s) == 0 ? 0 : -errno;
}

static inline int bench_set_affinity(const cpu_set_t *s)
{
    return sched_setaffinity(0, sizeof *s, s) == 0 ? 0 : -errno;
}

/* ---- /proc ---- */

/* A "Key:   123 kB" field of a /proc status-like file, in bytes; -1 if
 * missing. */
static inline long long bench_proc_kb_field(const char *path, const char *key)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char line[256];
    size_t kl = strlen(key);
    long long v = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            v = strtoll(line + kl + 1, NULL, 10) * 1024;
            break;
        }
    }
    fclose(f);
    return v;
}

static inline long long bench_rss_bytes(void)
{
    return bench_proc_kb_field("/proc/self/status", "VmRSS");
}

/* Cost of the first touch of a fresh anonymous page (page fault + zeroing),
 * in ns per page, over npages pages. On a VM with shadow paging this is far
 * more than on bare metal and dominates anything that maps fresh stacks. */
static inline double bench_first_touch_ns(size_t npages)
{
    size_t ps = (size_t)sysconf(_SC_PAGESIZE), len = npages * ps;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    int64_t t0 = bench_now_ns();
    for (size_t i = 0; i < npages; i++)
        ((volatile char *)p)[i * ps] = 1;
    int64_t t1 = bench_now_ns();
    munmap(p, len);
    return (double)(t1 - t0) / (double)npages;
}

/* Gives free heap memory back to the OS so that RSS deltas do not depend on
 * what an earlier run left in malloc's free lists. */
static inline void bench_trim_heap(void)
{
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

/* Runs gort_main with the given GOMAXPROCS; dies if the runtime reports an
 * error (a negative status). */
static inline int bench_gort_run(gort_main_fn fn, void *arg, int gomaxprocs)
{
    gort_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.gomaxprocs = gomaxprocs;
    int r = gort_main(fn, arg, &cfg);
    if (r < 0)
        bench_die("gort_main(GOMAXPROCS=%d) failed: %s (%d)", gomaxprocs, gort_strerror(r), r);
    return r;
}

/* ---- the pthread + futex ping-pong baseline ---- */

/* Two threads hand a turn word back and forth `rounds` times: each waits for
 * its turn (checking the word up to `spin` times with a PAUSE between, then
 * FUTEX_WAIT), then gives the turn back with a store and a FUTEX_WAKE. Thread
 * i is pinned to cpu[i] unless it is < 0. Thread 0 reads the counters just
 * before its first wait and just after the last hand-back. The baseline of
 * bench_chan, bench_switch and bench_locked_pingpong. */
typedef struct bench_fpp_result {
    int64_t ns, cpu_ns; /* elapsed, and process CPU time */
    long csw;           /* process context switches */
    long long migr;     /* CPU migrations, -1 if unavailable (bench_migr_open) */
} bench_fpp_result_t;

typedef struct bench_fpp {
    _Atomic uint32_t turn; /* whose turn: 0 or 1 */
    long rounds;
    int cpu[2];
    int spin;
    pthread_barrier_t start;
    int64_t t0, t1, u0, u1;
    long c0, c1;
    long long m0, m1;
} bench_fpp_t;

typedef struct bench_fpp_thread {
    bench_fpp_t *pp;
    uint32_t me;
} bench_fpp_thread_t;

static inline void bench_cpu_relax(void)
{
#if defined(__x86_64__)
    __asm__ __volatile__("pause" ::: "memory");
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

static inline void bench_fpp_wait_turn(bench_fpp_t *pp, uint32_t me)
{
    for (int i = 0; i < pp->spin; i++) {
        if (atomic_load_explicit(&pp->turn, memory_order_acquire) == me)
            return;
        bench_cpu_relax();
    }
    while (atomic_load_explicit(&pp->turn, memory_order_acquire) != me)
        syscall(SYS_futex, (uint32_t *)&pp->turn, FUTEX_WAIT_PRIVATE, 1 - me, NULL, NULL, 0);
}

static inline void bench_fpp_give_turn(bench_fpp_t *pp, uint32_t me)
{
    atomic_store_explicit(&pp->turn, 1 - me, memory_order_release);
    syscall(SYS_futex, (uint32_t *)&pp->turn, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static inline void *bench_fpp_thread(void *p)
{
    bench_fpp_thread_t *t = p;
    bench_fpp_t *pp = t->pp;
    int cpu = pp->cpu[t->me];
    if (cpu >= 0) {
        int r = bench_pin_self(cpu);
        if (r != 0)
            bench_die("sched_setaffinity(cpu %d): %s", cpu, strerror(-r));
    }
    pthread_barrier_wait(&pp->start);
    if (t->me == 0) {
        pp->c0 = bench_csw_now();
        pp->m0 = bench_migr_now();
        pp->u0 = bench_cpu_ns();
        pp->t0 = bench_now_ns();
    }
    for (long i = 0; i < pp->rounds; i++) {
        bench_fpp_wait_turn(pp, t->me);
        bench_fpp_give_turn(pp, t->me);
    }
    if (t->me == 0) {
        bench_fpp_wait_turn(pp, 0); /* the last hand-back from thread 1 */
        pp->t1 = bench_now_ns();
        pp->u1 = bench_cpu_ns();
        pp->m1 = bench_migr_now();
        pp->c1 = bench_csw_now();
    }
    return NULL;
}

/* Thread 0 waits for its turn rounds + 1 times and thread 1 hands it back
 * rounds times: `rounds` full round trips. */
static inline bench_fpp_result_t bench_futex_pingpong(long rounds, int cpu0, int cpu1, int spin)
{
    bench_fpp_t pp;
    memset(&pp, 0, sizeof pp);
    atomic_init(&pp.turn, 0);
    pp.rounds = rounds;
    pp.cpu[0] = cpu0;
    pp.cpu[1] = cpu1;
    pp.spin = spin;
    pthread_barrier_init(&pp.start, NULL, 2);
    bench_fpp_thread_t ts[2] = {{&pp, 0}, {&pp, 1}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        int r = pthread_create(&th[i], NULL, bench_fpp_thread, &ts[i]);
        if (r != 0)
            bench_die("pthread_create: %s", strerror(r));
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&pp.start);
    bench_fpp_result_t res = {pp.t1 - pp.t0, pp.u1 - pp.u0, pp.c1 - pp.c0,
                              pp.m0 < 0 || pp.m1 < 0 ? -1 : pp.m1 - pp.m0};
    return res;
}

#endif /* GORT_BENCH_COMMON_H */
