/*
 * bench_dedicate.c - DedicateOSThread (issue 5): what a dedicated goroutine
 * costs compared with a plain kernel thread, and with LockOSThread.
 *
 * 1. The golang/go#21827 ping-pong: a client goroutine sends a request on
 *    an unbuffered channel, the server goroutine replies on another. Modes:
 *      unlocked   both plain goroutines;
 *      locked     the server calls gort_lock_os_thread (every wake-up is a
 *                 P hand-off: startlockedm, stoplockedm);
 *      bothlocked client and server call gort_lock_os_thread (Go's "both
 *                 ends locked" of the figures);
 *      ded        the server calls gort_dedicate_os_thread (the client is
 *                 a plain goroutine: its wake-ups are the normal runtime's);
 *      both       client and server are dedicated (each wake-up is a direct
 *                 wake of the peer's own thread, after its spin);
 *      both_nospin  the same with dedicated_spin_ns = -1.
 *    Each at GOMAXPROCS=2 and 1. Baselines in the same run: two pthreads on
 *    a mailbox word each, FUTEX_WAIT / FUTEX_WAKE (a wake only when the peer
 *    sleeps), (a) with the same spin policy as a dedicated thread (spin up to
 *    S ns, S = the runtime's dedicated_spin_ns, halved after a miss, doubled
 *    after a catch, 10 us minimum, PAUSE x10 between checks), (b) without
 *    spin, and (c) spinning the full S every time (no adaptation), to tell
 *    the cost of the adaptive rule from the cost of the runtime's path.
 * 2. Wake locality: 64 dedicated goroutines, each blocked in a channel
 *    receive, woken round-robin by the main goroutine (a normal one); each
 *    checks that it resumed on its own thread and notes CPU changes.
 * 3. Dedicate + undedicate cycle of the main goroutine with a cached thread
 *    (no sleep inside), and the first dedicate of a fresh runtime, which must
 *    create a thread for the normal P.
 *
 * Per operation: ns (elapsed), context switches (getrusage RUSAGE_SELF,
 * voluntary + involuntary, whole process), CPU migrations (perf_event_open
 * PERF_COUNT_SW_CPU_MIGRATIONS, whole process, inherited by every thread
 * created later; -1 if perf is not allowed), and for gort the times the
 * goroutine resumed on another thread than before (runtime-caused
 * migrations: must be 0 for dedicated goroutines). No thread is pinned.
 *
 * Targets (issue 5): "both" round trip <= 1.2x the pthread baseline with the
 * same spin; zero runtime-caused migrations; locked >= 3x slower than
 * dedicated, read as "bothlocked" against "both" (the server-only pair,
 * "locked" against "ded", is reported beside it); a cycle with a cached
 * thread <= 2 us.
 *
 * Usage: bench_dedicate [-r runs] [-s spin_ns] [-t target_ms] [-w rounds] [-c cycles]
 *                       [-f fresh]
 */
#include "bench_common.h"

#include <limits.h>
#include <linux/futex.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/syscall.h>

/* ---- threads ---- */

/* The calling thread's identity, without a system call: pthread_self()
 * through a volatile pointer, so that the compiler cannot reuse a value
 * read before a goroutine switch (glibc declares it const). */
static __attribute__((noinline)) unsigned long self_id(void)
{
    return (unsigned long)pthread_self();
}
static unsigned long (*volatile thread_id)(void) = self_id;

static gort_stats_t stats_now(void)
{
    gort_stats_t st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    if (gort_stats_get(&st) != 0)
        bench_die("gort_stats_get failed");
    return st;
}

static int64_t spin_cfg;    /* -s: gort_config_t.dedicated_spin_ns (0: default) */
static int64_t spin_eff_ns; /* the bound that applies (for the pthread baseline) */

static int run_gort(gort_main_fn fn, void *arg, int procs, int64_t spin)
{
    gort_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.gomaxprocs = procs;
    cfg.dedicated_spin_ns = spin;
    int r = gort_main(fn, arg, &cfg);
    if (r < 0)
        bench_die("gort_main failed: %s (%d)", gort_strerror(r), r);
    return r;
}

typedef struct sample {
    double ns, csw, migr, tidch;         /* per operation */
    double cpuch, catches, direct, futw; /* per operation, for the notes */
} sample_t;

/* ======================================================================== */
/* 1. ping-pong                                                              */
/* ======================================================================== */

enum {
    M_UNLOCKED,
    M_LOCKED,
    M_BOTHLOCKED,
    M_DED,
    M_BOTH,
    M_BOTH_NOSPIN,
    M_FUTEX_SPIN,
    M_FUTEX_NOSPIN,
    M_FUTEX_FIXEDSPIN
};

static const char *mode_name[] = {"unlocked",   "locked",       "bothlocked",
                                  "ded",        "both",         "both_nospin",
                                  "futex_spin", "futex_nospin", "futex_fixedspin"};

typedef struct pp_arg {
    int mode;
    long rounds;
    gort_chan_t *req, *resp;
    gort_waitgroup_t done;
    /* Written by the server when it ends, read by the client after the
     * WaitGroup (never per round trip: a store to this struct every round
     * would move the line with req/resp between the CPUs, a cost of the
     * benchmark, not of the runtime). */
    long server_tid_changes, server_cpu_changes;
    sample_t s;
    int err;
} pp_arg_t;

static void pp_server(void *p)
{
    pp_arg_t *a = p;
    if ((a->mode == M_LOCKED || a->mode == M_BOTHLOCKED) && gort_lock_os_thread() != 0)
        a->err = 1;
    if (a->mode >= M_DED && gort_dedicate_os_thread() != 0)
        a->err = 1;
    int lastcpu = sched_getcpu();
    unsigned long lasttid = thread_id();
    long cpuch = 0, tidch = 0;
    for (;;) {
        long v;
        bool ok;
        if (gort_chan_recv(a->req, &v, &ok) != 0 || !ok) {
            a->err = 2;
            break;
        }
        if (v == LONG_MAX)
            break;
        if (v < 0) /* end of the warm-up */
            cpuch = tidch = 0;
        int cpu = sched_getcpu();
        unsigned long tid = thread_id();
        cpuch += cpu != lastcpu;
        tidch += tid != lasttid;
        lastcpu = cpu;
        lasttid = tid;
        if (gort_chan_send(a->resp, &v) != 0) {
            a->err = 3;
            break;
        }
    }
    a->server_cpu_changes = cpuch;
    a->server_tid_changes = tidch;
    if (a->mode == M_LOCKED || a->mode == M_BOTHLOCKED)
        gort_unlock_os_thread();
    if (a->mode >= M_DED)
        gort_undedicate_os_thread();
    gort_waitgroup_done(&a->done);
}

static int pp_client(void *p)
{
    pp_arg_t *a = p;
    bool client_ded = a->mode == M_BOTH || a->mode == M_BOTH_NOSPIN;
    if (client_ded && gort_dedicate_os_thread() != 0)
        bench_die("client: gort_dedicate_os_thread failed");
    if (a->mode == M_BOTHLOCKED && gort_lock_os_thread() != 0)
        bench_die("client: gort_lock_os_thread failed");
    if (gort_chan_make(&a->req, sizeof(long), 0) || gort_chan_make(&a->resp, sizeof(long), 0))
        bench_die("gort_chan_make failed");
    gort_waitgroup_init(&a->done);
    gort_waitgroup_add(&a->done, 1);
    gort_go(pp_server, a);
    long v, w;
    for (long i = 0; i < a->rounds / 10 + 1; i++) { /* warm-up */
        v = i;
        gort_chan_send(a->req, &v);
        gort_chan_recv(a->resp, &w, NULL);
    }
    v = -1;
    gort_chan_send(a->req, &v);
    gort_chan_recv(a->resp, &w, NULL);

    unsigned long ctid = thread_id();
    long ctidch = 0;
    gort_stats_t s0 = stats_now();
    long c0 = bench_csw_now();
    long long m0 = bench_migr_now();
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < a->rounds; i++) {
        v = i;
        gort_chan_send(a->req, &v);
        gort_chan_recv(a->resp, &w, NULL);
        if (w != v)
            a->err = 4;
        if (client_ded)
            ctidch += thread_id() != ctid;
    }
    int64_t t1 = bench_now_ns();
    long long m1 = bench_migr_now();
    long c1 = bench_csw_now();
    gort_stats_t s1 = stats_now();
    double n = (double)a->rounds;
    a->s.ns = (double)(t1 - t0) / n;
    a->s.csw = (double)(c1 - c0) / n;
    a->s.migr = m0 < 0 || m1 < 0 ? -1 : (double)(m1 - m0) / n;
    a->s.catches = (double)(s1.dedicated_spin_catches - s0.dedicated_spin_catches) / n;
    a->s.direct = (double)(s1.dedicated_direct_wakes - s0.dedicated_direct_wakes) / n;
    a->s.futw = (double)(s1.futex_wakes - s0.futex_wakes) / n;

    v = LONG_MAX;
    gort_chan_send(a->req, &v);
    gort_waitgroup_wait(&a->done);
    a->s.tidch = (double)(a->server_tid_changes + ctidch) / n;
    a->s.cpuch = (double)a->server_cpu_changes / n;
    gort_chan_free(a->req);
    gort_chan_free(a->resp);
    if (client_ded)
        gort_undedicate_os_thread();
    if (a->mode == M_BOTHLOCKED)
        gort_unlock_os_thread();
    return 0;
}

static sample_t pp_gort(int mode, long rounds, int procs)
{
    pp_arg_t a;
    memset(&a, 0, sizeof a);
    a.mode = mode;
    a.rounds = rounds;
    run_gort(pp_client, &a, procs, mode == M_BOTH_NOSPIN ? -1 : spin_cfg);
    if (a.err)
        bench_die("ping-pong %s failed (%d)", mode_name[mode], a.err);
    return a.s;
}

/* ---- pthread baseline: a mailbox word per thread ---- */

enum { BOX_EMPTY = 0, BOX_FULL = 1, BOX_SLEEPING = 2 };

typedef struct fpp {
    _Atomic uint32_t box[2];
    long rounds;
    int64_t spin_max; /* 0: no spin */
    bool adaptive;    /* false: always spin spin_max */
    pthread_barrier_t start;
    int64_t t0, t1;
    long c0, c1;
    long long m0, m1;
    long catches, sleeps, wakes; /* thread 0's and 1's, summed at the end */
} fpp_t;

/* Each thread's on a line of its own: its counters change every round. */
typedef struct fpp_thread {
    fpp_t *pp;
    int me;
    int64_t budget;
    long catches, sleeps, wakes, cpuch;
} __attribute__((aligned(64))) fpp_thread_t;

/* The runtime's floor of the adaptive budget (dedicate.c SPIN_MIN_NS). */
#define BOX_SPIN_MIN_NS 10000

/* Waits for our mailbox to be full, spinning first as a dedicated thread
 * does (internal.h gort__ded_spin, dedicate.c gort__ded_spin_adapt): up to
 * budget ns, PAUSE x10 between checks, the clock read every 16 checks; the
 * budget doubles after a catch and halves after a miss, within
 * [BOX_SPIN_MIN_NS, spin_max]. The runtime also skips the spin when no CPU
 * seems idle (gort__spin_allowed); with two threads on two CPUs it never
 * does here, so the baseline has no such test. */
static void box_recv(fpp_thread_t *t)
{
    fpp_t *pp = t->pp;
    _Atomic uint32_t *w = &pp->box[t->me];
    if (t->budget > 0) {
        int64_t end = bench_now_ns() + t->budget;
        int n = 0;
        for (;;) {
            for (int i = 0; i < 10; i++)
                bench_cpu_relax();
            if (atomic_load_explicit(w, memory_order_acquire) == BOX_FULL) {
                t->catches++;
                if (pp->adaptive)
                    t->budget *= 2;
                if (t->budget > pp->spin_max)
                    t->budget = pp->spin_max;
                atomic_store_explicit(w, BOX_EMPTY, memory_order_relaxed);
                return;
            }
            if ((++n & 15) == 0 && bench_now_ns() >= end)
                break;
        }
        if (pp->adaptive)
            t->budget /= 2;
        if (t->budget < BOX_SPIN_MIN_NS)
            t->budget = BOX_SPIN_MIN_NS < pp->spin_max ? BOX_SPIN_MIN_NS : pp->spin_max;
    }
    for (;;) {
        uint32_t cur = BOX_EMPTY;
        if (atomic_compare_exchange_strong(w, &cur, BOX_SLEEPING))
            cur = BOX_SLEEPING;
        if (cur == BOX_FULL) {
            atomic_store_explicit(w, BOX_EMPTY, memory_order_relaxed);
            return;
        }
        t->sleeps++;
        syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_PRIVATE, BOX_SLEEPING, NULL, NULL, 0);
    }
}

static void box_send(fpp_thread_t *t, int to)
{
    _Atomic uint32_t *w = &t->pp->box[to];
    if (atomic_exchange(w, BOX_FULL) == BOX_SLEEPING) {
        t->wakes++;
        syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
}

static void *fpp_thread(void *p)
{
    fpp_thread_t *t = p;
    fpp_t *pp = t->pp;
    t->budget = pp->spin_max;
    int lastcpu = sched_getcpu();
    pthread_barrier_wait(&pp->start);
    if (t->me == 0) {
        pp->c0 = bench_csw_now();
        pp->m0 = bench_migr_now();
        pp->t0 = bench_now_ns();
        for (long i = 0; i < pp->rounds; i++) {
            box_send(t, 1);
            box_recv(t);
        }
        pp->t1 = bench_now_ns();
        pp->m1 = bench_migr_now();
        pp->c1 = bench_csw_now();
    } else {
        for (long i = 0; i < pp->rounds; i++) {
            box_recv(t);
            int cpu = sched_getcpu();
            t->cpuch += cpu != lastcpu;
            lastcpu = cpu;
            box_send(t, 0);
        }
    }
    return NULL;
}

static sample_t pp_futex(int mode, long rounds)
{
    fpp_t pp;
    memset(&pp, 0, sizeof pp);
    pp.rounds = rounds;
    pp.spin_max = mode == M_FUTEX_NOSPIN ? 0 : spin_eff_ns;
    pp.adaptive = mode == M_FUTEX_SPIN;
    pthread_barrier_init(&pp.start, NULL, 2);
    fpp_thread_t ts[2];
    memset(ts, 0, sizeof ts);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        ts[i].pp = &pp;
        ts[i].me = i;
        if (pthread_create(&th[i], NULL, fpp_thread, &ts[i]) != 0)
            bench_die("pthread_create failed");
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&pp.start);
    sample_t s;
    memset(&s, 0, sizeof s);
    double n = (double)rounds;
    s.ns = (double)(pp.t1 - pp.t0) / n;
    s.csw = (double)(pp.c1 - pp.c0) / n;
    s.migr = pp.m0 < 0 || pp.m1 < 0 ? -1 : (double)(pp.m1 - pp.m0) / n;
    s.cpuch = (double)ts[1].cpuch / n;
    s.catches = (double)(ts[0].catches + ts[1].catches) / n;
    s.direct = (double)(ts[0].wakes + ts[1].wakes) / n;
    s.futw = (double)(ts[0].sleeps + ts[1].sleeps) / n;
    return s;
}

static sample_t pp_run(int mode, long rounds, int procs)
{
    if (mode >= M_FUTEX_SPIN)
        return pp_futex(mode, rounds);
    return pp_gort(mode, rounds, procs);
}

/* ======================================================================== */
/* 2. wake locality                                                          */
/* ======================================================================== */

#define WL_G 64

typedef struct wl_slot {
    gort_chan_t *ch;
    long tidch, cpuch, got;
} wl_slot_t;

typedef struct wl_arg {
    long rounds;
    wl_slot_t slot[WL_G];
    gort_waitgroup_t up, done;
    sample_t s;
    int err;
} wl_arg_t;

static wl_arg_t *wl_cur;

static void wl_ded(void *p)
{
    wl_slot_t *sl = p;
    wl_arg_t *a = wl_cur;
    if (gort_dedicate_os_thread() != 0)
        a->err = 1;
    unsigned long tid = thread_id();
    int lastcpu = sched_getcpu();
    gort_waitgroup_done(&a->up);
    for (;;) {
        long v;
        bool ok = false;
        if (gort_chan_recv(sl->ch, &v, &ok) != 0)
            a->err = 2;
        if (!ok)
            break;
        sl->got++;
        int cpu = sched_getcpu();
        sl->tidch += thread_id() != tid; /* resumed on another thread */
        sl->cpuch += cpu != lastcpu;
        lastcpu = cpu;
    }
    gort_undedicate_os_thread();
    gort_waitgroup_done(&a->done);
}

static int wl_main(void *p)
{
    wl_arg_t *a = p;
    wl_cur = a;
    gort_waitgroup_init(&a->up);
    gort_waitgroup_init(&a->done);
    gort_waitgroup_add(&a->up, WL_G);
    gort_waitgroup_add(&a->done, WL_G);
    for (int i = 0; i < WL_G; i++) {
        if (gort_chan_make(&a->slot[i].ch, sizeof(long), 0))
            bench_die("gort_chan_make failed");
        gort_go(wl_ded, &a->slot[i]);
    }
    gort_waitgroup_wait(&a->up);
    /* Warm-up round, then the measured ones. */
    for (long v = 0; v < 1; v++)
        for (int i = 0; i < WL_G; i++)
            gort_chan_send(a->slot[i].ch, &v);
    gort_sleep_ns(1000000); /* let them all block again */
    for (int i = 0; i < WL_G; i++)
        a->slot[i].tidch = a->slot[i].cpuch = 0;
    gort_stats_t s0 = stats_now();
    long c0 = bench_csw_now();
    long long m0 = bench_migr_now();
    int64_t t0 = bench_now_ns();
    for (long r = 0; r < a->rounds; r++)
        for (int i = 0; i < WL_G; i++)
            gort_chan_send(a->slot[i].ch, &r);
    int64_t t1 = bench_now_ns();
    long long m1 = bench_migr_now();
    long c1 = bench_csw_now();
    gort_stats_t s1 = stats_now();
    for (int i = 0; i < WL_G; i++)
        gort_chan_close(a->slot[i].ch);
    gort_waitgroup_wait(&a->done);
    long tidch = 0, cpuch = 0;
    for (int i = 0; i < WL_G; i++) {
        tidch += a->slot[i].tidch;
        cpuch += a->slot[i].cpuch;
        if (a->slot[i].got != a->rounds + 1)
            a->err = 3;
        gort_chan_free(a->slot[i].ch);
    }
    double n = (double)a->rounds * WL_G;
    a->s.ns = (double)(t1 - t0) / n;
    a->s.csw = (double)(c1 - c0) / n;
    a->s.migr = m0 < 0 || m1 < 0 ? -1 : (double)(m1 - m0) / n;
    a->s.tidch = (double)tidch; /* a count, not a rate: must be 0 */
    a->s.cpuch = (double)cpuch / n;
    a->s.catches = (double)(s1.dedicated_spin_catches - s0.dedicated_spin_catches) / n;
    a->s.direct = (double)(s1.dedicated_direct_wakes - s0.dedicated_direct_wakes) / n;
    return 0;
}

static sample_t wl_run(long rounds)
{
    static wl_arg_t a;
    memset(&a, 0, sizeof a);
    a.rounds = rounds;
    run_gort(wl_main, &a, 2, spin_cfg);
    if (a.err)
        bench_die("wake locality failed (%d)", a.err);
    return a.s;
}

/* ======================================================================== */
/* 3. dedicate / undedicate cost                                             */
/* ======================================================================== */

typedef struct cy_arg {
    long cycles;
    sample_t s;
    double threads_per_cycle;
    int err;
} cy_arg_t;

static int cy_main(void *p)
{
    cy_arg_t *a = p;
    for (int i = 0; i < 100; i++) /* warm-up: makes and caches the spare thread */
        if (gort_dedicate_os_thread() || gort_undedicate_os_thread())
            a->err = 1;
    gort_stats_t s0 = stats_now();
    long c0 = bench_csw_now();
    long long m0 = bench_migr_now();
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < a->cycles; i++) {
        gort_dedicate_os_thread();
        gort_undedicate_os_thread();
    }
    int64_t t1 = bench_now_ns();
    long long m1 = bench_migr_now();
    long c1 = bench_csw_now();
    gort_stats_t s1 = stats_now();
    double n = (double)a->cycles;
    a->s.ns = (double)(t1 - t0) / n;
    a->s.csw = (double)(c1 - c0) / n;
    a->s.migr = m0 < 0 || m1 < 0 ? -1 : (double)(m1 - m0) / n;
    a->threads_per_cycle = (double)(s1.ms_created - s0.ms_created) / n;
    a->s.futw = (double)(s1.futex_wakes - s0.futex_wakes) / n;
    if (s1.dedicate_calls - s0.dedicate_calls != (uint64_t)a->cycles)
        a->err = 2;
    return 0;
}

static cy_arg_t cy_run(long cycles, int procs)
{
    cy_arg_t a;
    memset(&a, 0, sizeof a);
    a.cycles = cycles;
    run_gort(cy_main, &a, procs, spin_cfg);
    if (a.err)
        bench_die("dedicate cycle failed (%d)", a.err);
    return a;
}

/* The first dedicate of a fresh runtime (GOMAXPROCS=1): no idle thread
 * exists, so one is created for the normal P. */
typedef struct fr_arg {
    double ns, csw, migr;
    uint64_t created;
} fr_arg_t;

static int fr_main(void *p)
{
    fr_arg_t *a = p;
    gort_stats_t s0 = stats_now();
    long c0 = bench_csw_now();
    long long m0 = bench_migr_now();
    int64_t t0 = bench_now_ns();
    if (gort_dedicate_os_thread() != 0)
        bench_die("first dedicate failed");
    int64_t t1 = bench_now_ns();
    long long m1 = bench_migr_now();
    long c1 = bench_csw_now();
    gort_stats_t s1 = stats_now();
    gort_undedicate_os_thread();
    a->ns = (double)(t1 - t0);
    a->csw = (double)(c1 - c0);
    a->migr = m0 < 0 || m1 < 0 ? -1 : (double)(m1 - m0);
    a->created = s1.ms_created - s0.ms_created;
    return 0;
}

/* Median over `fresh` fresh runtimes of the first dedicate's time; its
 * context switches and CPU migrations (medians) in *csw and *migr. */
static double fr_run(int fresh, double *created_frac, double *csw, double *migr)
{
    double v[64], c[64], m[64];
    int created = 0;
    for (int i = 0; i < fresh; i++) {
        fr_arg_t a = {0, 0, 0, 0};
        run_gort(fr_main, &a, 1, spin_cfg);
        v[i] = a.ns;
        c[i] = a.csw;
        m[i] = a.migr;
        created += a.created > 0;
    }
    *created_frac = (double)created / fresh;
    *csw = bench_median(c, fresh);
    *migr = bench_median(m, fresh);
    return bench_median(v, fresh);
}

/* ======================================================================== */
/* main                                                                      */
/* ======================================================================== */

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-r runs] [-s spin_ns] [-t target_ms] [-w rounds] [-c cycles] [-f fresh]\n"
            "  -r runs       measured runs per configuration (>= %d, default %d)\n"
            "  -s spin_ns    gort_config_t.dedicated_spin_ns (default 0: the runtime's default;\n"
            "                -1: no spin); the pthread spin baseline uses the same bound\n"
            "  -t target_ms  ping-pong run length, sized per mode in the warm-up (default 150)\n"
            "  -w rounds     wake locality: rounds of 64 wakes (default 300)\n"
            "  -c cycles     dedicate/undedicate cycles per run (default 20000)\n"
            "  -f fresh      fresh runtimes per run for the first-dedicate cost (default 10)\n",
            argv0, BENCH_MIN_RUNS, BENCH_MIN_RUNS);
    exit(2);
}

static int64_t effective_spin(int64_t cfg)
{
    if (cfg > 0)
        return cfg;
    if (cfg < 0)
        return 0;
    const char *s = getenv("GORT_DEDICATED_SPIN_NS");
    if (s && *s) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (*end == '\0' && v >= 0 && v <= 1000000000LL)
            return v;
    }
    return 50 * 1000; /* the runtime's default (env.c) */
}

#define NPP 14

int main(int argc, char **argv)
{
    int runs = BENCH_MIN_RUNS, fresh = 10;
    long target_ms = 150, wrounds = 300, cycles = 20000;
    int c;
    while ((c = getopt(argc, argv, "r:s:t:w:c:f:h")) != -1) {
        switch (c) {
        case 'r':
            runs = bench_parse_runs(optarg);
            break;
        case 's':
            spin_cfg = bench_parse_long("-s", optarg, -1, 1000000000L);
            break;
        case 't':
            target_ms = bench_parse_long("-t", optarg, 1, 100000);
            break;
        case 'w':
            wrounds = bench_parse_long("-w", optarg, 1, 100000000L);
            break;
        case 'c':
            cycles = bench_parse_long("-c", optarg, 1, 1000000000L);
            break;
        case 'f':
            fresh = (int)bench_parse_long("-f", optarg, 1, 64);
            break;
        default:
            usage(argv[0]);
        }
    }
    if (optind != argc)
        usage(argv[0]);
    spin_eff_ns = effective_spin(spin_cfg);
    bench_migr_open(); /* before any thread, so that every later thread inherits it */

    bench_print_header("bench_dedicate", runs);
    bench_note("spin: dedicated threads spin up to %lld ns before the futex sleep (config %lld%s), "
               "adaptive (x2 on a catch, /2 on a miss, >= 10 us), skipped when no CPU seems idle; "
               "pthread spin baseline: the same rule and bound; fixedspin: always the full bound; "
               "*_nospin: none",
               (long long)spin_eff_ns, (long long)spin_cfg, spin_cfg == 0 ? " = default" : "");
    bench_note("pinning: none (no thread of gort or of the baselines is pinned)");
    bench_note("ping-pong: client = main goroutine, server goroutine, unbuffered long channels; "
               "rounds sized in the warm-up for ~%ld ms per run",
               target_ms);
    bench_note("cpu migrations: %s",
               bench_migr_fd >= 0 ? "perf_event_open PERF_COUNT_SW_CPU_MIGRATIONS, whole process"
                                  : "not available (perf_event_open failed), reported as -1");
    bench_note("context switches: getrusage(RUSAGE_SELF) ru_nvcsw + ru_nivcsw, whole process");
    bench_note("runtime migrations (tid_changes): a goroutine resumed on another thread than "
               "before (server, and client when dedicated)");

    /* Ping-pong configurations, in the order they run in each round. */
    struct {
        int mode, procs;
        long rounds;
        char name[40];
    } pc[NPP] = {
        {M_UNLOCKED, 2, 0, ""},     {M_LOCKED, 2, 0, ""},
        {M_BOTHLOCKED, 2, 0, ""},   {M_DED, 2, 0, ""},
        {M_BOTH, 2, 0, ""},         {M_BOTH_NOSPIN, 2, 0, ""},
        {M_UNLOCKED, 1, 0, ""},     {M_LOCKED, 1, 0, ""},
        {M_BOTHLOCKED, 1, 0, ""},   {M_DED, 1, 0, ""},
        {M_BOTH, 1, 0, ""},         {M_FUTEX_SPIN, 0, 0, ""},
        {M_FUTEX_NOSPIN, 0, 0, ""}, {M_FUTEX_FIXEDSPIN, 0, 0, ""},
    };
    for (int k = 0; k < NPP; k++) {
        if (pc[k].procs)
            snprintf(pc[k].name, sizeof pc[k].name, "pp_p%d_%s", pc[k].procs,
                     mode_name[pc[k].mode]);
        else
            snprintf(pc[k].name, sizeof pc[k].name, "pp_pthread_%s", mode_name[pc[k].mode] + 6);
        /* Warm-up (discarded) that also sizes the runs. */
        sample_t w = pp_run(pc[k].mode, 300, pc[k].procs);
        long r = (long)((double)target_ms * 1e6 / (w.ns > 1 ? w.ns : 1));
        pc[k].rounds = r < 1000 ? 1000 : r > 2000000 ? 2000000 : r;
    }
    wl_run(20);
    cy_run(cycles / 10 + 1, 2);

    static sample_t s[NPP][BENCH_MAX_RUNS], wl[BENCH_MAX_RUNS];
    static cy_arg_t cy[2][BENCH_MAX_RUNS];
    static double fr[BENCH_MAX_RUNS], frc[BENCH_MAX_RUNS], frcsw[BENCH_MAX_RUNS],
        frmigr[BENCH_MAX_RUNS];
    for (int r = 0; r < runs; r++) {
        for (int k = 0; k < NPP; k++)
            s[k][r] = pp_run(pc[k].mode, pc[k].rounds, pc[k].procs);
        wl[r] = wl_run(wrounds);
        cy[0][r] = cy_run(cycles, 2);
        cy[1][r] = cy_run(cycles, 1);
        fr[r] = fr_run(fresh, &frc[r], &frcsw[r], &frmigr[r]);
    }

    /* ---- report ---- */
    double v[BENCH_MAX_RUNS], med[NPP];
    char name[96];
    for (int k = 0; k < NPP; k++) {
        for (int r = 0; r < runs; r++)
            v[r] = s[k][r].ns;
        snprintf(name, sizeof name, "%s_ns_per_rt", pc[k].name);
        med[k] = bench_report(name, "ns", v, runs);
        for (int r = 0; r < runs; r++)
            v[r] = s[k][r].csw;
        snprintf(name, sizeof name, "%s_ctxsw_per_rt", pc[k].name);
        bench_report(name, "count", v, runs);
        for (int r = 0; r < runs; r++)
            v[r] = s[k][r].migr;
        snprintf(name, sizeof name, "%s_cpu_migrations_per_rt", pc[k].name);
        bench_report(name, "count", v, runs);
        if (pc[k].procs) {
            for (int r = 0; r < runs; r++)
                v[r] = s[k][r].tidch;
            snprintf(name, sizeof name, "%s_tid_changes_per_rt", pc[k].name);
            bench_report(name, "count", v, runs);
        }
    }
    for (int k = 0; k < NPP; k++) {
        double cpuch[BENCH_MAX_RUNS], ca[BENCH_MAX_RUNS], di[BENCH_MAX_RUNS], fw[BENCH_MAX_RUNS];
        for (int r = 0; r < runs; r++) {
            cpuch[r] = s[k][r].cpuch;
            ca[r] = s[k][r].catches;
            di[r] = s[k][r].direct;
            fw[r] = s[k][r].futw;
        }
        if (pc[k].procs)
            bench_note("%-22s rounds %7ld: per round trip, medians: server CPU changes %.3f, "
                       "spin catches %.3f, direct futex wakes %.3f, runtime futex wakes %.3f",
                       pc[k].name, pc[k].rounds, bench_median(cpuch, runs), bench_median(ca, runs),
                       bench_median(di, runs), bench_median(fw, runs));
        else
            bench_note("%-22s rounds %7ld: per round trip, medians: server CPU changes %.3f, "
                       "spin catches %.3f, futex wakes %.3f, futex sleeps %.3f",
                       pc[k].name, pc[k].rounds, bench_median(cpuch, runs), bench_median(ca, runs),
                       bench_median(di, runs), bench_median(fw, runs));
    }

    for (int r = 0; r < runs; r++)
        v[r] = wl[r].ns;
    bench_report("wake64_ns_per_wake", "ns", v, runs);
    for (int r = 0; r < runs; r++)
        v[r] = wl[r].csw;
    bench_report("wake64_ctxsw_per_wake", "count", v, runs);
    for (int r = 0; r < runs; r++)
        v[r] = wl[r].migr;
    bench_report("wake64_cpu_migrations_per_wake", "count", v, runs);
    for (int r = 0; r < runs; r++)
        v[r] = wl[r].tidch;
    bench_report("wake64_tid_changes_total", "count", v, runs);
    {
        double cpuch[BENCH_MAX_RUNS], ca[BENCH_MAX_RUNS], di[BENCH_MAX_RUNS];
        for (int r = 0; r < runs; r++) {
            cpuch[r] = wl[r].cpuch;
            ca[r] = wl[r].catches;
            di[r] = wl[r].direct;
        }
        bench_note("wake64: %d dedicated goroutines x %ld rounds, GOMAXPROCS=2; per wake, "
                   "medians: woken goroutine on another CPU than its last wake %.3f, spin "
                   "catches %.3f, direct futex wakes %.3f",
                   WL_G, wrounds, bench_median(cpuch, runs), bench_median(ca, runs),
                   bench_median(di, runs));
    }

    double cyc_med[2];
    for (int pi = 0; pi < 2; pi++) {
        int procs = pi == 0 ? 2 : 1;
        for (int r = 0; r < runs; r++)
            v[r] = cy[pi][r].s.ns;
        snprintf(name, sizeof name, "cycle_p%d_ns", procs);
        cyc_med[pi] = bench_report(name, "ns", v, runs);
        for (int r = 0; r < runs; r++)
            v[r] = cy[pi][r].threads_per_cycle;
        snprintf(name, sizeof name, "cycle_p%d_threads_created_per_cycle", procs);
        bench_report(name, "count", v, runs);
        for (int r = 0; r < runs; r++)
            v[r] = cy[pi][r].s.csw;
        snprintf(name, sizeof name, "cycle_p%d_ctxsw_per_cycle", procs);
        bench_report(name, "count", v, runs);
        for (int r = 0; r < runs; r++)
            v[r] = cy[pi][r].s.migr;
        snprintf(name, sizeof name, "cycle_p%d_cpu_migrations_per_cycle", procs);
        bench_report(name, "count", v, runs);
        double cs[BENCH_MAX_RUNS], fw[BENCH_MAX_RUNS];
        for (int r = 0; r < runs; r++) {
            cs[r] = cy[pi][r].s.csw;
            fw[r] = cy[pi][r].s.futw;
        }
        bench_note("cycle GOMAXPROCS=%d: %ld cycles per run; per cycle, medians: context switches "
                   "%.3f, runtime futex wakes %.3f",
                   procs, cycles, bench_median(cs, runs), bench_median(fw, runs));
    }
    bench_report("fresh_first_dedicate_ns", "ns", fr, runs);
    bench_report("fresh_first_dedicate_ctxsw", "count", frcsw, runs);
    bench_report("fresh_first_dedicate_cpu_migrations", "count", frmigr, runs);
    bench_note("fresh: median of %d fresh runtimes per run (GOMAXPROCS=1); share that created "
               "a thread: %.2f",
               fresh, bench_median(frc, runs));

    /* Ratios: index of each configuration in pc[]. */
    enum { P2U, P2L, P2LL, P2D, P2B, P2BN, P1U, P1L, P1LL, P1D, P1B, FS, FN, FF };
    bench_ratio("pp_p2_both_over_pthread_spin", med[P2B] / med[FS]);
    bench_ratio("pp_p1_both_over_pthread_spin", med[P1B] / med[FS]);
    bench_ratio("pp_p2_ded_over_pthread_spin", med[P2D] / med[FS]);
    bench_ratio("pp_p2_both_nospin_over_pthread_nospin", med[P2BN] / med[FN]);
    bench_ratio("pp_p2_both_over_pthread_fixedspin", med[P2B] / med[FF]);
    bench_ratio("pp_p2_locked_over_both", med[P2L] / med[P2B]);
    bench_ratio("pp_p1_locked_over_both", med[P1L] / med[P1B]);
    bench_ratio("pp_p2_locked_over_ded", med[P2L] / med[P2D]);
    bench_ratio("pp_p1_locked_over_ded", med[P1L] / med[P1D]);
    bench_ratio("pp_p2_bothlocked_over_both", med[P2LL] / med[P2B]);
    bench_ratio("pp_p1_bothlocked_over_both", med[P1LL] / med[P1B]);

    bench_print_table("bench_dedicate: medians");
    double tid_all = 0;
    for (int k = 0; k < FS; k++)
        if (pc[k].mode >= M_DED)
            for (int r = 0; r < runs; r++)
                tid_all += s[k][r].tidch;
    for (int r = 0; r < runs; r++)
        tid_all += wl[r].tidch;
    printf("#\n# targets (issue 5):\n");
    printf("#   both-ends-dedicated round trip <= 1.2x pthreads+futex same spin: P2 %.2fx, P1 "
           "%.2fx -> %s\n",
           med[P2B] / med[FS], med[P1B] / med[FS],
           med[P2B] / med[FS] <= 1.2 && med[P1B] / med[FS] <= 1.2 ? "met" : "NOT met");
    printf("#   zero runtime-caused migrations of dedicated goroutines: %.0f -> %s\n", tid_all,
           tid_all == 0 ? "met" : "NOT met");
    printf("#   locked >= 3x slower than dedicated, both ends locked / both ends dedicated: P2 "
           "%.2fx, P1 %.2fx -> %s\n",
           med[P2LL] / med[P2B], med[P1LL] / med[P1B],
           med[P2LL] / med[P2B] >= 3 && med[P1LL] / med[P1B] >= 3 ? "met" : "NOT met");
    printf("#     (server only locked / server only dedicated, the client a plain goroutine: P2 "
           "%.2fx, P1 %.2fx; see performance.md 5.4)\n",
           med[P2L] / med[P2D], med[P1L] / med[P1D]);
    printf("#   dedicate/undedicate cycle with a cached thread <= 2 us: P2 %.0f ns, P1 %.0f ns "
           "-> %s\n",
           cyc_med[0], cyc_med[1], cyc_med[0] <= 2000 && cyc_med[1] <= 2000 ? "met" : "NOT met");
    return 0;
}
