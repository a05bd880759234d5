/*
 * main.c - the sentry benchmark's driver: the spec's problems and its fix,
 * measured side by side (issue 6).
 *
 * The model (sentry.h, app.c, sentry.c) is gVisor's: application threads in
 * their own process make system calls through shared memory; each is served
 * by a task that spends most of its time blocked "running application
 * code"; emulated futexes and pipes make tasks wake each other through
 * channels. The driver runs every task mode (raw, lazy, eager, locked,
 * dedicated, and the pure-pthreads baseline) on every workload:
 *
 *   a    syscall-heavy threads, getpid answered at once;
 *   b    pairs of threads ping-ponging through an emulated futex;
 *   c    a pipe chain: producer -> forwarders -> consumer;
 *   dN   workload a with N threads (a sweep from 1 to 16x GOMAXPROCS, and
 *        64, the target);
 *   e    workload b plus background CPU goroutines competing for Ps.
 *
 * Runs are interleaved: R rounds, each running every workload once in every
 * mode (the mode order rotates from round to round), so a slow phase of a
 * shared VM hits all modes alike; each metric's median over the rounds is
 * reported. A run is: start gort_main (tasks ready), start the application
 * threads, warm up, MEASURE for the duration (counters and rusage of both
 * processes are taken at its edges), STOP (application threads exit at
 * their next call; the driver interrupts tasks blocked in emulated waits
 * until all have ended), then check the run's books (check_run). Any
 * inconsistency is reported and makes the exit status 1 (--smoke runs every
 * workload and mode briefly for just that check).
 *
 * Spin settings are printed with the results: the application spins
 * app_spin PAUSEs for its reply before FUTEX_WAIT ("spin briefly"); a task
 * does not spin for its next request by default (task_spin 0: its wait is
 * the application running); dedicated threads spin as the runtime decides
 * (gort_config_t.dedicated_spin_ns).
 *
 * On a small shared VM one invocation's medians still move a lot (thread
 * placement decides whether futex hand-offs stay on one CPU), so --pool
 * reports the medians over the runs of several invocations' CSV files.
 *
 * Processes: the application host is forked first thing in main(), before
 * any thread exists (the runtime is started only later, once per run, by
 * the runtime thread). It never execs, so the same binary works under
 * valgrind and qemu-user. --inproc runs the host in a pthread instead.
 *
 * Usage: sentry [--quick | --smoke] [options]; sentry --pool a.csv --pool
 * b.csv ... [--svg F]; sentry --help.
 */
#include "../bench_common.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "report.h"
#include "sentry.h"

typedef struct opts {
    int runs;
    int64_t duration_ns, warmup_ns;
    int gomaxprocs;
    int threads; /* a, b, e */
    int chain;   /* c */
    int sweep[16], nsweep;
    bool wl[WL_COUNT];
    int modes[MODE_COUNT], nmodes;
    uint32_t app_spin, task_spin;
    int64_t dedicated_spin_ns;
    int64_t app_work_ns;
    int nbg;
    int64_t bg_chunk_ns;
    int64_t raw_quantum_ns;
    bool inproc, quick, smoke, verbose;
    int inject;
    const char *pool[32]; /* --pool: CSV files to report on instead of running */
    int npool;
    const char *csv, *svg;
} opts_t;

static opts_t O;
static shm_t *shm;
static pid_t child_pid = -1;
static pthread_t host_thread;
static double iters_per_ns;

/* ---- helpers ---- */

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

static double ru_cpu_s(const struct rusage *a, const struct rusage *b)
{
    return tv_s(b->ru_utime) - tv_s(a->ru_utime) + tv_s(b->ru_stime) - tv_s(a->ru_stime);
}

static double ru_cs(const struct rusage *a, const struct rusage *b)
{
    return (double)(b->ru_nvcsw - a->ru_nvcsw) + (double)(b->ru_nivcsw - a->ru_nivcsw);
}

static gort_stats_t stats_now(void)
{
    gort_stats_t st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    gort_stats_get(&st); /* -ESRCH cannot happen: the runtime runs */
    return st;
}

/* Calibrates spin_work: iterations per ns (fastest of several tries). */
static double calibrate(void)
{
    const uint64_t n = 2000000;
    double best = 1e18;
    uint64_t x = 1;
    for (int i = 0; i < 5; i++) {
        int64_t t0 = now_ns();
        x = spin_work(n, x);
        int64_t t1 = now_ns();
        if ((double)(t1 - t0) < best)
            best = (double)(t1 - t0);
    }
    if (x == 42)
        best += 1;
    return (double)n / (best > 1 ? best : 1);
}

static uint64_t ns_to_iters(int64_t ns)
{
    return ns <= 0 ? 0 : (uint64_t)((double)ns * iters_per_ns + 0.5);
}

/* ---- the application host ---- */

static void *host_main(void *arg)
{
    app_host_serve(arg, true);
    return NULL;
}

static void host_start(void)
{
    shm = mmap(NULL, sizeof *shm, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED)
        bench_die("mmap of the shared region failed: %s", strerror(errno));
    if (O.inproc) {
        if (pthread_create(&host_thread, NULL, host_main, shm) != 0)
            bench_die("pthread_create failed");
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    child_pid = fork();
    if (child_pid < 0)
        bench_die("fork failed: %s", strerror(errno));
    if (child_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        app_host_serve(shm, false);
        _exit(0);
    }
}

static void host_stop(void)
{
    ctl_t *c = &shm->ctl;
    c->cmd_kind = CMD_QUIT;
    uint32_t cmd = atomic_fetch_add(&c->cmd, 1) + 1;
    futex_wake_shared(&c->cmd, INT_MAX);
    if (O.inproc) {
        pthread_join(host_thread, NULL);
    } else {
        int status;
        while (waitpid(child_pid, &status, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            bench_die("the application process failed (status 0x%x)", status);
    }
    (void)cmd;
    munmap(shm, sizeof *shm);
}

/* Waits until *w == v or the deadline; false on timeout. */
static bool wait_word(_Atomic uint32_t *w, uint32_t v, int64_t deadline)
{
    uint32_t cur;
    while ((cur = atomic_load(w)) != v) {
        int64_t left = deadline - now_ns();
        if (left <= 0)
            return false;
        futex_wait_shared(w, cur, left < 10000000 ? left : 10000000);
    }
    return true;
}

static void set_phase(int ph)
{
    sentry_set_phase(ph);
    atomic_store(&shm->ctl.phase, (uint32_t)ph);
    futex_wake_shared(&shm->ctl.phase, INT_MAX);
}

/* ---- one run ---- */

static int64_t hang_timeout_ns(void)
{
    return O.smoke ? (int64_t)120 * 1000000000 : (int64_t)30 * 1000000000;
}

static void hang(const char *what, const config_t *c, int mode)
{
    fflush(stdout);
    fprintf(stderr, "sentry: FATAL: %s (workload %s, mode %s, %d threads)\n", what, c->name,
            sentry_mode_names[mode], c->nthreads);
    fprintf(stderr, "  application: %d started, %d exited, phase %u\n",
            atomic_load(&shm->ctl.apps_started), atomic_load(&shm->ctl.apps_exited),
            atomic_load(&shm->ctl.phase));
    sentry_dump();
    if (child_pid > 0)
        kill(child_pid, SIGKILL);
    _exit(2);
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            errors++;                                                                              \
            if (errors <= 5) {                                                                     \
                fprintf(stderr, "sentry: CHECK FAILED [%s/%s]: ", c->name,                         \
                        sentry_mode_names[mode]);                                                  \
                fprintf(stderr, __VA_ARGS__);                                                      \
                fprintf(stderr, "\n");                                                             \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* The books of a run: every request answered exactly once, futex wake
 * counts consistent on both sides, pipe bytes conserved and intact. */
static int check_run(const config_t *c, int mode, const sentry_result_t *sr)
{
    int errors = 0, n = c->nthreads;
    const ctl_t *ctl = &shm->ctl;
    CHECK(sr->errors == 0, "sentry: %llu errors, first: %s", (unsigned long long)sr->errors,
          sr->err);
    uint64_t app_errors = 0, total = 0;
    for (int i = 0; i < n; i++)
        app_errors += shm->stats[i].errors;
    CHECK(app_errors == 0 && !ctl->err_claimed, "application: %llu errors, first: %s",
          (unsigned long long)app_errors, ctl->err);
    CHECK(atomic_load(&ctl->apps_exited) == n, "%d of %d application threads exited",
          atomic_load(&ctl->apps_exited), n);
    for (int i = 0; i < n; i++) {
        const slot_t *s = &shm->slots[i];
        const app_stat_t *st = &shm->stats[i];
        total += st->ops_total;
        CHECK(s->seq == st->ops_total && s->rep_seq == s->seq,
              "thread %d: %llu calls, last request %llu, last reply %llu", i,
              (unsigned long long)st->ops_total, (unsigned long long)s->seq,
              (unsigned long long)s->rep_seq);
    }
    CHECK(total == sr->handled, "application made %llu calls, sentry handled %llu",
          (unsigned long long)total, (unsigned long long)sr->handled);

    if (c->workload == WL_B || c->workload == WL_E) {
        uint64_t wait_ok = 0, woken = 0, turns = 0;
        for (int i = 0; i < n; i++) {
            wait_ok += shm->stats[i].wait_ok;
            woken += shm->stats[i].wake_woken;
            turns += shm->stats[i].turns;
        }
        CHECK(wait_ok == woken && woken == sr->futex_woken && woken == sr->futex_waits_woken,
              "futex: %llu waits woken (app), %llu woken by wakes (app), %llu / %llu (sentry)",
              (unsigned long long)wait_ok, (unsigned long long)woken,
              (unsigned long long)sr->futex_waits_woken, (unsigned long long)sr->futex_woken);
        for (int k = 0; k < n / 2; k++)
            CHECK(shm->pairs[k].count == shm->stats[2 * k].turns + shm->stats[2 * k + 1].turns,
                  "pair %d: count %llu, turns %llu + %llu", k,
                  (unsigned long long)shm->pairs[k].count,
                  (unsigned long long)shm->stats[2 * k].turns,
                  (unsigned long long)shm->stats[2 * k + 1].turns);
        CHECK(turns > 0, "no ping-pong turn was taken");
    }

    if (c->workload == WL_C) {
        CHECK(sr->npipes == n - 1, "%d pipes for %d threads", sr->npipes, n);
        for (int i = 0; i < sr->npipes; i++) {
            const app_stat_t *w = &shm->stats[i], *r = &shm->stats[i + 1];
            CHECK(sr->pipe_in[i] == w->bytes_out && sr->pipe_out[i] == r->bytes_in &&
                      sr->pipe_in[i] == sr->pipe_out[i] + sr->pipe_left[i],
                  "pipe %d: writer sent %llu, pipe took %llu, gave %llu, holds %llu, reader "
                  "got %llu",
                  i, (unsigned long long)w->bytes_out, (unsigned long long)sr->pipe_in[i],
                  (unsigned long long)sr->pipe_out[i], (unsigned long long)sr->pipe_left[i],
                  (unsigned long long)r->bytes_in);
        }
        for (int i = 1; i < n - 1; i++) {
            const app_stat_t *f = &shm->stats[i];
            CHECK(f->bytes_in == f->bytes_out + f->bytes_lost,
                  "forwarder %d: read %llu, wrote %llu, dropped at the end %llu", i,
                  (unsigned long long)f->bytes_in, (unsigned long long)f->bytes_out,
                  (unsigned long long)f->bytes_lost);
        }
        const app_stat_t *prod = &shm->stats[0], *cons = &shm->stats[n - 1];
        uint64_t sum = 0, want_out = 0, want_in = 0;
        for (uint64_t pos = 0; pos < prod->bytes_out || pos < cons->bytes_in; pos++) {
            sum = sum_step(sum, stream_byte(pos));
            if (pos + 1 == prod->bytes_out)
                want_out = sum;
            if (pos + 1 == cons->bytes_in)
                want_in = sum;
        }
        CHECK(prod->sum_out == want_out && cons->sum_in == want_in,
              "checksums: producer %llx (stream %llx over %llu bytes), consumer %llx (stream "
              "%llx over %llu bytes)",
              (unsigned long long)prod->sum_out, (unsigned long long)want_out,
              (unsigned long long)prod->bytes_out, (unsigned long long)cons->sum_in,
              (unsigned long long)want_in, (unsigned long long)cons->bytes_in);
        CHECK(cons->bytes_in > 0, "no byte went through the chain");
    }
    return errors;
}

/* Whether the run has made the progress that check_run's workload checks
 * ask for. A smoke run checks correctness, not speed: under a sanitizer on
 * a loaded machine the 25 ms window can end before the first call goes
 * through, so a smoke run's window lasts until this holds (bounded by the
 * hang timeout). The application's counters are live in shared memory. */
static bool made_progress(const config_t *c, int n)
{
    if (c->workload == WL_C)
        return __atomic_load_n(&shm->stats[n - 1].bytes_in, __ATOMIC_RELAXED) > 0;
    bool pp = c->workload == WL_B || c->workload == WL_E;
    uint64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum +=
            __atomic_load_n(pp ? &shm->stats[i].turns : &shm->stats[i].ops_win, __ATOMIC_RELAXED);
    return sum > 0;
}

static void run_one(const config_t *c, int mode, result_t *out)
{
    int n = c->nthreads;
    ctl_t *ctl = &shm->ctl;
    int64_t run_start = now_ns();
    memset(shm->slots, 0, sizeof(slot_t) * (size_t)n);
    memset(shm->stats, 0, sizeof(app_stat_t) * (size_t)n);
    memset(shm->pairs, 0, sizeof(pair_t) * (size_t)((n + 1) / 2));
    ctl->cfg.workload = c->workload;
    ctl->cfg.nthreads = n;
    ctl->cfg.app_spin = O.app_spin;
    ctl->cfg.work_iters = ns_to_iters(O.app_work_ns);
    atomic_store(&ctl->phase, PHASE_WARMUP);
    atomic_store(&ctl->phase_ack, PHASE_WARMUP);
    atomic_store(&ctl->apps_started, 0);
    atomic_store(&ctl->apps_exited, 0);
    atomic_store(&ctl->err_claimed, 0);
    ctl->err[0] = 0;

    sentry_params_t sp = {
        .mode = mode,
        .workload = c->workload,
        .nthreads = n,
        .nbg = c->nbg,
        .gomaxprocs = O.gomaxprocs,
        .dedicated_spin_ns = O.dedicated_spin_ns,
        .task_spin = O.task_spin,
        .raw_quantum_ns = O.raw_quantum_ns,
        .bg_iters = ns_to_iters(O.bg_chunk_ns),
        .inject = O.inject,
    };
    int r = sentry_prepare(shm, &sp);
    if (r != 0)
        bench_die("sentry_prepare: %s", strerror(-r));
    sentry_set_phase(PHASE_WARMUP);
    pthread_t rt;
    if (pthread_create(&rt, NULL, sentry_runtime_thread, NULL) != 0)
        bench_die("pthread_create failed");

    int64_t deadline = now_ns() + hang_timeout_ns();
    while (sentry_tasks_ready() < n) {
        if (now_ns() > deadline)
            hang("tasks did not start", c, mode);
        sleep_ns(100000);
    }
    ctl->cmd_kind = CMD_RUN;
    uint32_t cmd = atomic_fetch_add(&ctl->cmd, 1) + 1;
    futex_wake_shared(&ctl->cmd, INT_MAX);
    while (atomic_load(&ctl->apps_started) < n) {
        if (now_ns() > deadline)
            hang("application threads did not start", c, mode);
        sleep_ns(100000);
    }
    sleep_ns(O.warmup_ns);

    struct rusage ru0, ru1;
    gort_stats_t s0 = stats_now();
    getrusage(RUSAGE_SELF, &ru0);
    int64_t t0 = now_ns();
    set_phase(PHASE_MEASURE);
    if (!wait_word(&ctl->phase_ack, PHASE_MEASURE, deadline))
        hang("the application host did not take its rusage", c, mode);
    sleep_ns(O.duration_ns - (now_ns() - t0));
    while (O.smoke && !made_progress(c, n) && now_ns() < deadline)
        sleep_ns(1000000);
    int64_t t1 = now_ns();
    gort_stats_t s1 = stats_now();
    getrusage(RUSAGE_SELF, &ru1);
    set_phase(PHASE_STOP);
    deadline = now_ns() + hang_timeout_ns();
    if (!wait_word(&ctl->phase_ack, PHASE_STOP, deadline))
        hang("the application host did not take its rusage", c, mode);

    /* Drain: interrupt the tasks blocked in emulated waits until all end
     * (the first call also stops the background goroutines). */
    for (;;) {
        sentry_interrupt_all();
        if (sentry_tasks_exited() == n)
            break;
        if (now_ns() > deadline)
            hang("tasks did not end", c, mode);
        sleep_ns(500000);
    }
    sentry_release_main();
    while (!sentry_runtime_returned()) {
        if (now_ns() > deadline)
            hang("gort_main did not return", c, mode);
        sleep_ns(200000);
    }
    pthread_join(rt, NULL);
    if (!wait_word(&ctl->done, cmd, deadline))
        hang("application threads did not end", c, mode);
    sentry_result_t *sr = malloc(sizeof *sr);
    if (!sr)
        bench_die("out of memory");
    sentry_finish(sr);

    /* Metrics. */
    memset(out, 0, sizeof *out);
    double secs = (double)(t1 - t0) * 1e-9;
    uint64_t ops = 0, omin = UINT64_MAX, omax = 0, lmax = 0, migr = sr->task_migr_win;
    uint64_t *hist = calloc(HIST_N, sizeof *hist);
    if (!hist)
        bench_die("out of memory");
    for (int i = 0; i < n; i++) {
        const app_stat_t *st = &shm->stats[i];
        ops += st->ops_win;
        if (st->ops_win < omin)
            omin = st->ops_win;
        if (st->ops_win > omax)
            omax = st->ops_win;
        if (st->lat_max_ns > lmax)
            lmax = st->lat_max_ns;
        migr += st->migr_win;
        for (int b = 0; b < HIST_N; b++)
            hist[b] += st->hist[b];
    }
    double p50 = 0, p99 = 0;
    uint64_t cum = 0;
    bool have50 = false;
    for (int b = 0; b < HIST_N && ops; b++) {
        cum += hist[b];
        if (!have50 && (double)cum >= 0.5 * (double)ops) {
            p50 = hist_value(b);
            have50 = true;
        }
        if ((double)cum >= 0.99 * (double)ops) {
            p99 = hist_value(b);
            break;
        }
    }
    free(hist);
    double dops = ops ? (double)ops : 1.0;
    double cpu = ru_cpu_s(&ru0, &ru1), cs = ru_cs(&ru0, &ru1);
    if (!O.inproc) {
        cpu += ru_cpu_s(&ctl->ru_start, &ctl->ru_stop);
        cs += ru_cs(&ctl->ru_start, &ctl->ru_stop);
    }
    out->m[MET_OPS] = (double)ops / secs;
    out->m[MET_P50] = p50 / 1000;
    out->m[MET_P99] = p99 / 1000;
    out->m[MET_MAX] = (double)lmax / 1000;
    out->m[MET_FAIR] = omax ? (double)omin / (double)omax : 0;
    out->m[MET_CPU] = cpu * 1e6 / dops;
    out->m[MET_CS] = cs / dops;
    out->m[MET_MIGR] = (double)migr / dops;
    out->m[MET_MCHG] = (double)sr->task_mchg_win / dops;
    out->m[MET_HANDOFF] = (double)(s1.handoffs - s0.handoffs) / dops;
    out->m[MET_RETAKE] = (double)(s1.sysmon_retakes - s0.sysmon_retakes) / dops;
    out->m[MET_SLOWX] = (double)(s1.syscall_slow_exits - s0.syscall_slow_exits) / dops;
    out->m[MET_DWAKE] = (double)(s1.dedicated_direct_wakes - s0.dedicated_direct_wakes) / dops;
    out->m[MET_SLOCKED] = (double)(s1.startlockedm - s0.startlockedm) / dops;
    out->m[MET_RTFUTEX] = (double)(s1.futex_wakes - s0.futex_wakes) / dops;
    out->m[MET_BG] = (double)sr->bg_chunks_win / secs;
    out->errors = check_run(c, mode, sr);
    if (ops == 0)
        out->m[MET_P50] = out->m[MET_P99] = out->m[MET_MAX] = 0;
    if (O.verbose)
        fprintf(stderr, "# %-4s %-9s %10.0f ops/s p99 %8.1f us max %9.1f us (run %.0f ms)%s\n",
                c->name, sentry_mode_names[mode], out->m[MET_OPS], out->m[MET_P99], out->m[MET_MAX],
                (double)(now_ns() - run_start) / 1e6, out->errors ? "  ERRORS" : "");
    free(sr);
}

/* ---- options ---- */

static void usage(FILE *f)
{
    fprintf(
        f, "usage: sentry [options]\n"
           "  --quick              a ~10 s run (3 rounds, short windows)\n"
           "  --smoke              correctness only: every mode and workload briefly; exit 1 on\n"
           "                       any inconsistency\n"
           "  --inproc             application threads in this process (default: a child)\n"
           "  -r N                 rounds (default 7; --quick 3)\n"
           "  --duration-ms N      measured window per run (default 180; --quick 50)\n"
           "  --warmup-ms N        warm-up per run (default 25; --quick 10)\n"
           "  -p N                 GOMAXPROCS (default: the CPUs in the affinity mask)\n"
           "  --threads N          application threads of workloads a, b, e (default 2x P)\n"
           "  --chain N            threads in the pipe chain, c (default 2x P)\n"
           "  --sweep N,N,...      thread counts of workload d (default 1,4P,16P,64;\n"
           "                       --quick 1,16P)\n"
           "  --workloads a,b,...  subset of a,b,c,d,e\n"
           "  --modes m,m,...      subset of raw,lazy,eager,locked,dedicated,pthreads\n"
           "  --app-spin N         application reply-wait spin iterations (default 100)\n"
           "  --task-spin N        task request-wait / pthreads event spin iterations (default 0)\n"
           "  --dedicated-spin-ns N  gort_config_t.dedicated_spin_ns (default 0: the runtime's)\n"
           "  --app-work-ns N      application work between calls (default 1000)\n"
           "  --bg N               background goroutines in e (default P)\n"
           "  --bg-chunk-us N      background work chunk (default 20)\n"
           "  --raw-quantum-us N   raw mode: a task yields its P after this (default 10000)\n"
           "  --csv FILE           write every run and the medians as CSV\n"
           "  --svg FILE           write the chart (throughput, p99 and worst call by mode)\n"
           "  -v                   one line per run on stderr\n"
           "  --inject seq|futex|pipe  break the emulation once per run (checks the checks)\n"
           "  --pool FILE          (repeatable) run nothing: report the medians over every run\n"
           "                       in these CSV files (from --csv); --csv/--svg as usual; give\n"
           "                       the options the runs used, for the chart's settings line\n");
}

static int parse_list(const char *s, const char *const *names, int nnames, int *out, int max)
{
    int n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        int k = -1;
        for (int i = 0; i < nnames; i++)
            if (strcmp(tok, names[i]) == 0)
                k = i;
        if (k < 0 || n == max)
            bench_die("unknown or too many list items in '%s'", s);
        out[n++] = k;
    }
    return n;
}

static void parse_opts(int argc, char **argv)
{
    enum {
        O_QUICK = 256,
        O_SMOKE,
        O_INPROC,
        O_DUR,
        O_WARM,
        O_THREADS,
        O_CHAIN,
        O_SWEEP,
        O_WL,
        O_MODES,
        O_ASPIN,
        O_TSPIN,
        O_DSPIN,
        O_WORK,
        O_BG,
        O_BGCHUNK,
        O_QUANTUM,
        O_CSV,
        O_SVG,
        O_INJECT,
        O_POOL,
        O_HELP
    };
    static const struct option lo[] = {
        {"quick", no_argument, 0, O_QUICK},
        {"smoke", no_argument, 0, O_SMOKE},
        {"inproc", no_argument, 0, O_INPROC},
        {"duration-ms", required_argument, 0, O_DUR},
        {"warmup-ms", required_argument, 0, O_WARM},
        {"threads", required_argument, 0, O_THREADS},
        {"chain", required_argument, 0, O_CHAIN},
        {"sweep", required_argument, 0, O_SWEEP},
        {"workloads", required_argument, 0, O_WL},
        {"modes", required_argument, 0, O_MODES},
        {"app-spin", required_argument, 0, O_ASPIN},
        {"task-spin", required_argument, 0, O_TSPIN},
        {"dedicated-spin-ns", required_argument, 0, O_DSPIN},
        {"app-work-ns", required_argument, 0, O_WORK},
        {"bg", required_argument, 0, O_BG},
        {"bg-chunk-us", required_argument, 0, O_BGCHUNK},
        {"raw-quantum-us", required_argument, 0, O_QUANTUM},
        {"csv", required_argument, 0, O_CSV},
        {"svg", required_argument, 0, O_SVG},
        {"inject", required_argument, 0, O_INJECT},
        {"pool", required_argument, 0, O_POOL},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    static const char *const wl_names[] = {"a", "b", "c", "d", "e"};
    int runs = -1, threads = 0, chain = 0, bg = -1, wls[WL_COUNT], nwl = -1;
    long dur = -1, warm = -1;
    const char *sweep = NULL;
    O.app_spin = 100;
    O.task_spin = 0;
    O.app_work_ns = 1000;
    O.bg_chunk_ns = 20000;
    O.raw_quantum_ns = 10000000;
    O.nmodes = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "r:p:vh", lo, NULL)) != -1) {
        switch (ch) {
        case 'r':
            runs = (int)bench_parse_long("-r", optarg, 1, 1000);
            break;
        case 'p':
            O.gomaxprocs = (int)bench_parse_long("-p", optarg, 1, 256);
            break;
        case 'v':
            O.verbose = true;
            break;
        case O_QUICK:
            O.quick = true;
            break;
        case O_SMOKE:
            O.smoke = true;
            break;
        case O_INPROC:
            O.inproc = true;
            break;
        case O_DUR:
            dur = bench_parse_long("--duration-ms", optarg, 1, 600000);
            break;
        case O_WARM:
            warm = bench_parse_long("--warmup-ms", optarg, 0, 600000);
            break;
        case O_THREADS:
            threads = (int)bench_parse_long("--threads", optarg, 2, SENTRY_MAX_THREADS);
            break;
        case O_CHAIN:
            chain = (int)bench_parse_long("--chain", optarg, 2, SENTRY_MAX_THREADS);
            break;
        case O_SWEEP:
            sweep = optarg;
            break;
        case O_WL:
            nwl = parse_list(optarg, wl_names, WL_COUNT, wls, WL_COUNT);
            break;
        case O_MODES:
            O.nmodes = parse_list(optarg, sentry_mode_names, MODE_COUNT, O.modes, MODE_COUNT);
            break;
        case O_ASPIN:
            O.app_spin = (uint32_t)bench_parse_long("--app-spin", optarg, 0, 100000000);
            break;
        case O_TSPIN:
            O.task_spin = (uint32_t)bench_parse_long("--task-spin", optarg, 0, 100000000);
            break;
        case O_DSPIN:
            O.dedicated_spin_ns = bench_parse_long("--dedicated-spin-ns", optarg, -1, 1000000000);
            break;
        case O_WORK:
            O.app_work_ns = bench_parse_long("--app-work-ns", optarg, 0, 1000000000);
            break;
        case O_BG:
            bg = (int)bench_parse_long("--bg", optarg, 0, 256);
            break;
        case O_BGCHUNK:
            O.bg_chunk_ns = bench_parse_long("--bg-chunk-us", optarg, 1, 1000000) * 1000;
            break;
        case O_QUANTUM:
            O.raw_quantum_ns = bench_parse_long("--raw-quantum-us", optarg, 10, 10000000) * 1000;
            break;
        case O_CSV:
            O.csv = optarg;
            break;
        case O_SVG:
            O.svg = optarg;
            break;
        case O_INJECT: {
            static const char *const kinds[] = {"none", "seq", "futex", "pipe"};
            parse_list(optarg, kinds, 4, &O.inject, 1);
            break;
        }
        case O_POOL:
            if (O.npool == 32)
                bench_die("--pool: at most 32 files");
            O.pool[O.npool++] = optarg;
            break;
        case 'h':
        case O_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind != argc) {
        usage(stderr);
        exit(2);
    }
    if (O.gomaxprocs == 0) {
        int c = bench_allowed_cpus();
        O.gomaxprocs = c > 0 ? c : 1;
    }
    int P = O.gomaxprocs;
    O.runs = runs > 0 ? runs : O.smoke ? 1 : O.quick ? 3 : 7;
    O.duration_ns = (dur > 0 ? dur : O.smoke ? 25 : O.quick ? 50 : 180) * (int64_t)1000000;
    O.warmup_ns = (warm >= 0 ? warm : O.smoke ? 5 : O.quick ? 10 : 25) * (int64_t)1000000;
    O.threads = threads ? threads : 2 * P;
    O.threads += O.threads & 1; /* pairs */
    O.chain = chain ? chain : (2 * P < 2 ? 2 : 2 * P);
    O.nbg = bg >= 0 ? bg : P;
    if (O.smoke) {
        /* Short spins: valgrind runs one thread at a time. */
        if (O.app_spin > 200)
            O.app_spin = 200;
        if (O.task_spin > 200)
            O.task_spin = 200;
    }
    if (sweep) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", sweep);
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            if (O.nsweep == 16)
                bench_die("--sweep: at most 16 values");
            O.sweep[O.nsweep++] = (int)bench_parse_long("--sweep", tok, 1, SENTRY_MAX_THREADS);
        }
    } else if (O.smoke) {
        O.sweep[O.nsweep++] = 1;
        O.sweep[O.nsweep++] = 4 * P;
    } else if (O.quick) {
        O.sweep[O.nsweep++] = 1;
        O.sweep[O.nsweep++] = 16 * P;
    } else {
        int v[] = {1, 4 * P, 16 * P, 64};
        for (int i = 0; i < 4; i++) {
            bool dup = false;
            for (int j = 0; j < O.nsweep; j++)
                dup |= O.sweep[j] == v[i];
            if (!dup && v[i] <= SENTRY_MAX_THREADS)
                O.sweep[O.nsweep++] = v[i];
        }
    }
    for (int i = 0; i < WL_COUNT; i++)
        O.wl[i] = nwl < 0;
    for (int i = 0; i < nwl; i++)
        O.wl[wls[i]] = true;
    if (O.nmodes == 0) {
        static const int order[] = {MODE_RAW,    MODE_LAZY,      MODE_EAGER,
                                    MODE_LOCKED, MODE_DEDICATED, MODE_PTHREADS};
        for (int i = 0; i < MODE_COUNT; i++)
            O.modes[O.nmodes++] = order[i];
    }
}

static int build_configs(config_t *cf)
{
    int n = 0, P = O.gomaxprocs;
    double wus = (double)O.app_work_ns / 1000;
    if (O.wl[WL_A]) {
        cf[n] = (config_t){.workload = WL_A, .nthreads = O.threads};
        snprintf(cf[n].name, sizeof cf[n].name, "a");
        snprintf(cf[n].desc, sizeof cf[n].desc,
                 "a: syscall-heavy, %d threads (%.3gx P), getpid answered at once, %.3g us work "
                 "between calls",
                 O.threads, (double)O.threads / P, wus);
        n++;
    }
    if (O.wl[WL_B]) {
        cf[n] = (config_t){.workload = WL_B, .nthreads = O.threads};
        snprintf(cf[n].name, sizeof cf[n].name, "b");
        snprintf(cf[n].desc, sizeof cf[n].desc,
                 "b: futex ping-pong, %d pairs (%d threads), emulated FUTEX_WAIT/WAKE, %.3g us "
                 "work per turn",
                 O.threads / 2, O.threads, wus);
        n++;
    }
    if (O.wl[WL_C]) {
        cf[n] = (config_t){.workload = WL_C, .nthreads = O.chain};
        snprintf(cf[n].name, sizeof cf[n].name, "c");
        snprintf(cf[n].desc, sizeof cf[n].desc,
                 "c: pipe chain of %d threads (%d pipes of %d bytes, %d-byte writes), %.3g us "
                 "work per call",
                 O.chain, O.chain - 1, PIPE_CAP, PIPE_MSG, wus);
        n++;
    }
    if (O.wl[WL_D]) {
        for (int i = 0; i < O.nsweep; i++) {
            cf[n] = (config_t){.workload = WL_D, .nthreads = O.sweep[i]};
            snprintf(cf[n].name, sizeof cf[n].name, "d%d", O.sweep[i]);
            snprintf(cf[n].desc, sizeof cf[n].desc, "d%d: workload a with %d thread%s (%.3gx P)",
                     O.sweep[i], O.sweep[i], O.sweep[i] == 1 ? "" : "s", (double)O.sweep[i] / P);
            n++;
        }
    }
    if (O.wl[WL_E]) {
        cf[n] = (config_t){.workload = WL_E, .nthreads = O.threads, .nbg = O.nbg};
        snprintf(cf[n].name, sizeof cf[n].name, "e");
        snprintf(cf[n].desc, sizeof cf[n].desc,
                 "e: workload b + %d background CPU goroutines (%.3g us chunks)", O.nbg,
                 (double)O.bg_chunk_ns / 1000);
        n++;
    }
    return n;
}

static void read_loadavg(char *buf, size_t len)
{
    snprintf(buf, len, "?");
    FILE *f = fopen("/proc/loadavg", "re");
    if (!f)
        return;
    if (fgets(buf, (int)len, f))
        buf[strcspn(buf, "\n")] = 0;
    fclose(f);
}

/* How long one spin iteration takes (for the printed settings). */
static double spin_iter_ns(void)
{
    const int n = 200000;
    double best = 1e18;
    _Atomic uint32_t w = 0;
    for (int k = 0; k < 3; k++) {
        int64_t t0 = now_ns();
        bell_spin(&w, n);
        double d = (double)(now_ns() - t0) / n;
        if (d < best)
            best = d;
    }
    return best;
}

static void dspin_desc(char *buf, size_t len)
{
    if (O.dedicated_spin_ns)
        snprintf(buf, len, "%lld", (long long)O.dedicated_spin_ns);
    else
        snprintf(buf, len, "%s (runtime default)",
                 getenv("GORT_DEDICATED_SPIN_NS") ? getenv("GORT_DEDICATED_SPIN_NS") : "50000");
}

/* The settings (from the options) in one line, for the chart. */
static void settings_line(char *buf, size_t len, double spin_ns)
{
    char dspin[64];
    dspin_desc(dspin, sizeof dspin);
    snprintf(buf, len,
             "GOMAXPROCS=%d; app spin %u x %.0f ns; task spin %u; dedicated_spin_ns=%s; "
             "app work %lld ns; raw quantum %lld us; %s; no pinning",
             O.gomaxprocs, O.app_spin, spin_ns, O.task_spin, dspin, (long long)O.app_work_ns,
             (long long)(O.raw_quantum_ns / 1000),
             O.inproc ? "app threads in-process" : "app threads in a child process");
}

static void machine_line(char *buf, size_t len)
{
    char model[256];
    struct utsname u;
    bench_cpu_model(model, sizeof model);
    if (uname(&u) != 0)
        memset(&u, 0, sizeof u);
    snprintf(buf, len, "nproc=%ld, allowed CPUs=%d, %s, Linux %s %s, vm=%s",
             sysconf(_SC_NPROCESSORS_ONLN), bench_allowed_cpus(), model, u.release, u.machine,
             bench_in_vm() == 1 ? "yes" : "no");
}

/* --pool: the report over the runs of earlier invocations' CSV files. */
static int pool_main(void)
{
    static config_t cfgs[64];
    int ncfg = 0, modes[MODE_COUNT], nmodes = 0, runs = 0;
    result_t *res = report_pool(O.pool, O.npool, cfgs, 64, &ncfg, modes, &nmodes, &runs);
    if (!res || ncfg == 0)
        bench_die("--pool: no runs read");
    result_t *med = calloc((size_t)ncfg * MODE_COUNT, sizeof *med);
    if (!med)
        bench_die("out of memory");
    char machine[512], settings[512], opts[400];
    machine_line(machine, sizeof machine);
    /* The options given with --pool are taken to be the runs' own. */
    settings_line(opts, sizeof opts, spin_iter_ns());
    snprintf(settings, sizeof settings, "pooled: %d invocations, up to %d runs per bar; %s",
             O.npool, runs, opts);
    printf("# benchmark: sentry, report pooled from %d CSV files\n", O.npool);
    for (int i = 0; i < O.npool; i++)
        printf("#   %s\n", O.pool[i]);
    printf("# machine (of this report; the runs' own headers say where they ran): %s\n", machine);
    report_t rep = {.cfgs = cfgs,
                    .ncfg = ncfg,
                    .modes = modes,
                    .nmodes = nmodes,
                    .runs = runs,
                    .res = res,
                    .med = med,
                    .machine = machine,
                    .settings = settings};
    report_medians(&rep);
    for (int c = 0; c < ncfg; c++)
        report_table(&rep, c);
    report_targets(&rep);
    int rc = 0;
    if (O.csv && report_csv(&rep, O.csv) != 0) {
        fprintf(stderr, "sentry: cannot write %s\n", O.csv);
        rc = 1;
    }
    if (O.svg && report_svg(&rep, O.svg) != 0) {
        fprintf(stderr, "sentry: cannot write %s\n", O.svg);
        rc = 1;
    }
    free(res);
    free(med);
    return rc;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    parse_opts(argc, argv);
    if (O.npool)
        return pool_main();
    config_t cfgs[32];
    int ncfg = build_configs(cfgs);
    if (ncfg == 0)
        bench_die("no workload selected");
    for (int i = 0; i < ncfg; i++)
        if (cfgs[i].nthreads > SENTRY_MAX_THREADS)
            bench_die("too many threads");
    iters_per_ns = calibrate();
    double spin_ns = spin_iter_ns();

    /* The application host is forked here, before any thread exists. */
    host_start();

    char machine[512], settings[512], load0[128];
    read_loadavg(load0, sizeof load0);
    machine_line(machine, sizeof machine);
    char dspin[64];
    dspin_desc(dspin, sizeof dspin);
    settings_line(settings, sizeof settings, spin_ns);

    printf("# benchmark: sentry (issue 6: the spec's problems and DedicateOSThread, side by "
           "side)\n");
    printf("# machine: %s\n", machine);
    printf("# build: %s GORT_DEBUG=%d gort %s\n", BENCH_BUILD_TYPE, BENCH_GORT_DEBUG,
           gort_version());
    printf("# loadavg at start: %s (other processes share these CPUs)\n", load0);
    printf("# application threads: %s, shared memory + process-shared futexes\n",
           O.inproc ? "in this process (--inproc)" : "in a child process");
    printf("# spin: application waits for a reply: %u iterations of PAUSE/YIELD (%.1f ns each) "
           "then FUTEX_WAIT; task waits for a request (and pthreads-mode emulated waits): %u "
           "iterations; gort_config_t.dedicated_spin_ns = %s\n",
           O.app_spin, spin_ns, O.task_spin, dspin);
    printf("# gort spin (as built): %s\n", BENCH_GORT_SPIN_DESC);
    printf("# pinning: none (all threads float over the allowed CPUs)\n");
    printf("# GOMAXPROCS=%d; app work between calls %lld ns (%llu iterations); raw mode "
           "quantum %lld us; %d rounds x %d workloads x %d modes, %.0f ms measured + %.0f ms "
           "warm-up per run\n",
           O.gomaxprocs, (long long)O.app_work_ns, (unsigned long long)ns_to_iters(O.app_work_ns),
           (long long)(O.raw_quantum_ns / 1000), O.runs, ncfg, O.nmodes, O.duration_ns / 1e6,
           O.warmup_ns / 1e6);
    printf("# latency: per application call, from writing the request to seeing the reply "
           "(emulated waits included)\n");

    size_t nres = (size_t)ncfg * MODE_COUNT * (size_t)O.runs;
    result_t *res = calloc(nres, sizeof *res),
             *med = calloc((size_t)ncfg * MODE_COUNT, sizeof *med);
    if (!res || !med)
        bench_die("out of memory");
    int64_t start = now_ns();
    int total_errors = 0;

    /* One discarded warm-up run (page faults, first thread creations). */
    if (!O.smoke) {
        result_t junk;
        config_t w = cfgs[0];
        int64_t d = O.duration_ns;
        O.duration_ns = d / 4;
        run_one(&w, O.modes[0], &junk);
        O.duration_ns = d;
    }
    for (int r = 0; r < O.runs; r++) {
        for (int c = 0; c < ncfg; c++) {
            for (int k = 0; k < O.nmodes; k++) {
                int mode = O.modes[(k + r + c) % O.nmodes];
                result_t *out =
                    &res[((size_t)c * MODE_COUNT + (size_t)mode) * (size_t)O.runs + (size_t)r];
                run_one(&cfgs[c], mode, out);
                total_errors += out->errors;
            }
        }
        if (!O.smoke)
            fprintf(stderr, "# round %d/%d done (%.1f s)\n", r + 1, O.runs,
                    (double)(now_ns() - start) * 1e-9);
    }
    host_stop();

    report_t rep = {.cfgs = cfgs,
                    .ncfg = ncfg,
                    .modes = O.modes,
                    .nmodes = O.nmodes,
                    .runs = O.runs,
                    .res = res,
                    .med = med,
                    .machine = machine,
                    .settings = settings};
    report_medians(&rep);
    if (O.smoke) {
        printf("# smoke: %d workloads x %d modes, %d inconsistencies, %.1f s\n", ncfg, O.nmodes,
               total_errors, (double)(now_ns() - start) * 1e-9);
        printf("sentry_smoke_errors %d count\n", total_errors);
    } else {
        for (int c = 0; c < ncfg; c++)
            report_table(&rep, c);
        report_targets(&rep);
        char load1[128];
        read_loadavg(load1, sizeof load1);
        printf("# loadavg at end: %s; total %.1f s; %d inconsistencies\n", load1,
               (double)(now_ns() - start) * 1e-9, total_errors);
    }
    int rc = total_errors ? 1 : 0;
    if (O.csv && report_csv(&rep, O.csv) != 0) {
        fprintf(stderr, "sentry: cannot write %s\n", O.csv);
        rc = 1;
    }
    if (O.svg && report_svg(&rep, O.svg) != 0) {
        fprintf(stderr, "sentry: cannot write %s\n", O.svg);
        rc = 1;
    }
    free(res);
    free(med);
    return rc;
}
