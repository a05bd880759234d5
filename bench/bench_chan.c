/*
 * bench_chan.c - channel and select costs.
 *
 * 1. Ping-pong: two goroutines exchange an int64 over two unbuffered
 *    channels (A sends on c1 and receives on c2, B the reverse), N round
 *    trips, at GOMAXPROCS=1 and 2 (one gort_main per run and setting).
 *    ns per round trip = elapsed / N. The runtime's `switches` counter per
 *    round trip is reported too (2.0 means each direction is one park and
 *    one run, with no other scheduling).
 *    Baselines (same process, same runs): two pthreads hand a turn word back
 *    and forth with FUTEX_WAKE / FUTEX_WAIT, spin 0 (one wake and one wait
 *    per direction), (a) both pinned to one CPU, (b) unpinned. ns per round
 *    trip = elapsed / rounds (two one-way hand-overs).
 * 2. Buffered throughput: one goroutine sends M int64 values into a channel
 *    of capacity 1024, the main goroutine receives them (and checks their
 *    sum); messages per second, at GOMAXPROCS=1 and 2.
 *    Baseline: a bounded queue of the same capacity between two pthreads,
 *    a pthread mutex and two condition variables (the usual C code),
 *    unpinned.
 * 3. Select fan-in: 8 producer goroutines, each with its own channel
 *    (capacity 128), one consumer looping on gort_select over the 8 receive
 *    cases; messages per second at GOMAXPROCS=1 and 2. Compared in the same
 *    runs with the same 8 producers sending into one shared channel (capacity
 *    1024) and a plain receive loop (what select costs over a plain
 *    receive), and with 8 pthreads feeding the mutex/condvar queue.
 *
 * Usage: bench_chan [-r runs] [-n pingpong] [-N pingpong_p2] [-p rounds]
 *                   [-u rounds] [-m buffered] [-M pthread_msgs] [-f fanin]
 *                   [-F pthread_fanin] [-c cpu] [-o pingpong|buffered|select]
 * -o runs only that gort case, once, at GOMAXPROCS=1 (no baseline, no
 * warm-up), with the size given by -n, -m or -f: for instruction counts
 * under callgrind (run two sizes and subtract).
 */
#include "bench_common.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/syscall.h>

#define FANIN_PRODUCERS 8
#define BUF_CAP         1024
#define FANIN_CAP       128

static void check(int r, const char *what)
{
    if (r < 0)
        bench_die("%s failed: %s (%d)", what, gort_strerror(r), r);
}

static uint64_t stat_switches(void)
{
    gort_stats_t st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    check(gort_stats_get(&st), "gort_stats_get");
    return st.switches;
}

/* ---- 1. ping-pong ---------------------------------------------------------- */

typedef struct pp_arg {
    long n;
    gort_chan_t *c1, *c2;
    gort_waitgroup_t wg;
    int64_t elapsed_ns;
    uint64_t switches;
} pp_arg_t;

static void ponger(void *p)
{
    pp_arg_t *a = p;
    int64_t v;
    for (long i = 0; i < a->n; i++) {
        check(gort_chan_recv(a->c1, &v, NULL), "gort_chan_recv");
        check(gort_chan_send(a->c2, &v), "gort_chan_send");
    }
    gort_waitgroup_done(&a->wg);
}

static int pingpong_main(void *p)
{
    pp_arg_t *a = p;
    check(gort_chan_make(&a->c1, sizeof(int64_t), 0), "gort_chan_make");
    check(gort_chan_make(&a->c2, sizeof(int64_t), 0), "gort_chan_make");
    gort_waitgroup_init(&a->wg);
    gort_waitgroup_add(&a->wg, 1);
    check(gort_go(ponger, a), "gort_go");
    uint64_t s0 = stat_switches();
    int64_t t0 = bench_now_ns();
    for (int64_t i = 0; i < a->n; i++) {
        int64_t v = -1;
        check(gort_chan_send(a->c1, &i), "gort_chan_send");
        check(gort_chan_recv(a->c2, &v, NULL), "gort_chan_recv");
        if (v != i)
            bench_die("ping-pong: sent %lld, got back %lld", (long long)i, (long long)v);
    }
    a->elapsed_ns = bench_now_ns() - t0;
    a->switches = stat_switches() - s0;
    gort_waitgroup_wait(&a->wg);
    check(gort_chan_free(a->c1), "gort_chan_free");
    check(gort_chan_free(a->c2), "gort_chan_free");
    return 0;
}

/* Returns ns per round trip; *sw: runtime switches per round trip. */
static double run_pingpong_gort(long n, int procs, double *sw)
{
    pp_arg_t a;
    memset(&a, 0, sizeof a);
    a.n = n;
    bench_gort_run(pingpong_main, &a, procs);
    *sw = (double)a.switches / (double)n;
    return (double)a.elapsed_ns / (double)n;
}

/* The futex ping-pong baseline (bench_common.h), no spin: ns per round
 * trip (two hand-overs). */
static double run_pingpong_futex(long rounds, int cpu0, int cpu1)
{
    return (double)bench_futex_pingpong(rounds, cpu0, cpu1, 0).ns / (double)rounds;
}

/* ---- 2. buffered throughput ---------------------------------------------- */

typedef struct buf_arg {
    long n;
    gort_chan_t *c;
    int64_t elapsed_ns;
} buf_arg_t;

static void buf_sender(void *p)
{
    buf_arg_t *a = p;
    for (int64_t i = 0; i < a->n; i++)
        check(gort_chan_send(a->c, &i), "gort_chan_send");
}

static int buffered_main(void *p)
{
    buf_arg_t *a = p;
    check(gort_chan_make(&a->c, sizeof(int64_t), BUF_CAP), "gort_chan_make");
    int64_t t0 = bench_now_ns();
    check(gort_go(buf_sender, a), "gort_go");
    uint64_t sum = 0;
    for (long i = 0; i < a->n; i++) {
        int64_t v;
        check(gort_chan_recv(a->c, &v, NULL), "gort_chan_recv");
        sum += (uint64_t)v;
    }
    a->elapsed_ns = bench_now_ns() - t0;
    if (sum != (uint64_t)a->n * (uint64_t)(a->n - 1) / 2)
        bench_die("buffered: checksum mismatch");
    check(gort_chan_free(a->c), "gort_chan_free");
    return 0;
}

/* Returns messages per second. */
static double run_buffered_gort(long n, int procs)
{
    buf_arg_t a;
    memset(&a, 0, sizeof a);
    a.n = n;
    bench_gort_run(buffered_main, &a, procs);
    return (double)n * 1e9 / (double)a.elapsed_ns;
}

/* mutex + condvar bounded queue (baseline) */
typedef struct mq {
    pthread_mutex_t mu;
    pthread_cond_t notfull, notempty;
    int64_t *buf;
    size_t cap, head, len;
    long per_producer;
} mq_t;

static void mq_init(mq_t *q, size_t cap)
{
    memset(q, 0, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->notfull, NULL);
    pthread_cond_init(&q->notempty, NULL);
    q->buf = malloc(cap * sizeof *q->buf);
    if (!q->buf)
        bench_die("out of memory");
    q->cap = cap;
}

static void mq_destroy(mq_t *q)
{
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->notfull);
    pthread_cond_destroy(&q->notempty);
    free(q->buf);
}

static void mq_put(mq_t *q, int64_t v)
{
    pthread_mutex_lock(&q->mu);
    while (q->len == q->cap)
        pthread_cond_wait(&q->notfull, &q->mu);
    q->buf[(q->head + q->len) % q->cap] = v;
    q->len++;
    pthread_cond_signal(&q->notempty);
    pthread_mutex_unlock(&q->mu);
}

static int64_t mq_get(mq_t *q)
{
    pthread_mutex_lock(&q->mu);
    while (q->len == 0)
        pthread_cond_wait(&q->notempty, &q->mu);
    int64_t v = q->buf[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
    pthread_cond_signal(&q->notfull);
    pthread_mutex_unlock(&q->mu);
    return v;
}

static void *mq_producer(void *p)
{
    mq_t *q = p;
    for (int64_t i = 0; i < q->per_producer; i++)
        mq_put(q, i);
    return NULL;
}

/* nprod producer threads, the calling thread consumes. Messages per second. */
static double run_mq(long per_producer, int nprod)
{
    mq_t q;
    mq_init(&q, BUF_CAP);
    q.per_producer = per_producer;
    pthread_t th[FANIN_PRODUCERS];
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < nprod; i++) {
        int r = pthread_create(&th[i], NULL, mq_producer, &q);
        if (r != 0)
            bench_die("pthread_create: %s", strerror(r));
    }
    long total = per_producer * nprod;
    uint64_t sum = 0;
    for (long i = 0; i < total; i++)
        sum += (uint64_t)mq_get(&q);
    int64_t el = bench_now_ns() - t0;
    for (int i = 0; i < nprod; i++)
        pthread_join(th[i], NULL);
    if (sum != (uint64_t)nprod * (uint64_t)per_producer * (uint64_t)(per_producer - 1) / 2)
        bench_die("mutex queue: checksum mismatch");
    mq_destroy(&q);
    return (double)total * 1e9 / (double)el;
}

/* ---- 3. select fan-in -------------------------------------------------- */

typedef struct fan_arg {
    long per_producer;
    bool use_select;
    gort_chan_t *ch[FANIN_PRODUCERS];
    int64_t elapsed_ns;
} fan_arg_t;

typedef struct fan_prod {
    fan_arg_t *a;
    gort_chan_t *c;
} fan_prod_t;

static void fan_producer(void *p)
{
    fan_prod_t *fp = p;
    for (int64_t i = 0; i < fp->a->per_producer; i++)
        check(gort_chan_send(fp->c, &i), "gort_chan_send");
}

static int fanin_main(void *p)
{
    fan_arg_t *a = p;
    fan_prod_t prods[FANIN_PRODUCERS];
    if (a->use_select) {
        for (int i = 0; i < FANIN_PRODUCERS; i++)
            check(gort_chan_make(&a->ch[i], sizeof(int64_t), FANIN_CAP), "gort_chan_make");
    } else {
        check(gort_chan_make(&a->ch[0], sizeof(int64_t), BUF_CAP), "gort_chan_make");
    }
    long total = a->per_producer * FANIN_PRODUCERS;
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < FANIN_PRODUCERS; i++) {
        prods[i].a = a;
        prods[i].c = a->use_select ? a->ch[i] : a->ch[0];
        check(gort_go(fan_producer, &prods[i]), "gort_go");
    }
    uint64_t sum = 0;
    if (a->use_select) {
        int64_t v;
        gort_select_case_t cs[FANIN_PRODUCERS];
        for (int i = 0; i < FANIN_PRODUCERS; i++) {
            cs[i].chan = a->ch[i];
            cs[i].dir = GORT_SELECT_RECV;
            cs[i].elem = &v;
        }
        for (long k = 0; k < total; k++) {
            check(gort_select(cs, FANIN_PRODUCERS, 0), "gort_select");
            sum += (uint64_t)v;
        }
    } else {
        for (long k = 0; k < total; k++) {
            int64_t v;
            check(gort_chan_recv(a->ch[0], &v, NULL), "gort_chan_recv");
            sum += (uint64_t)v;
        }
    }
    a->elapsed_ns = bench_now_ns() - t0;
    uint64_t per = (uint64_t)a->per_producer;
    if (sum != FANIN_PRODUCERS * per * (per - 1) / 2)
        bench_die("fan-in: checksum mismatch");
    /* Every send has completed: no producer touches a channel again. */
    for (int i = 0; i < (a->use_select ? FANIN_PRODUCERS : 1); i++)
        check(gort_chan_free(a->ch[i]), "gort_chan_free");
    return 0;
}

static double run_fanin_gort(long per_producer, bool use_select, int procs)
{
    fan_arg_t a;
    memset(&a, 0, sizeof a);
    a.per_producer = per_producer;
    a.use_select = use_select;
    bench_gort_run(fanin_main, &a, procs);
    return (double)per_producer * FANIN_PRODUCERS * 1e9 / (double)a.elapsed_ns;
}

/* ---- main ------------------------------------------------------------------ */

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-r runs] [-n N] [-N N2] [-p rounds] [-u rounds] [-m M] [-M M2] [-f F] "
            "[-F F2] [-c cpu]\n"
            "  -r runs    measured runs per configuration (>= %d, default %d)\n"
            "  -n N       ping-pong round trips at GOMAXPROCS=1 (default 2000000)\n"
            "  -N N2      ping-pong round trips at GOMAXPROCS=2 (default 200000)\n"
            "  -p rounds  futex round trips, both pinned to one CPU (default 50000)\n"
            "  -u rounds  futex round trips, unpinned (default 10000)\n"
            "  -m M       buffered-channel messages (default 10000000)\n"
            "  -M M2      mutex/condvar queue messages, 1 producer (default 1000000)\n"
            "  -f F       fan-in messages per producer, gort (default 500000)\n"
            "  -F F2      fan-in messages per producer, pthreads (default 100000)\n"
            "  -c cpu     CPU for the pinned baseline (default: first allowed)\n"
            "  -o case    only gort's pingpong, buffered or select case, once, GOMAXPROCS=1\n",
            argv0, BENCH_MIN_RUNS, BENCH_MIN_RUNS);
    exit(2);
}

int main(int argc, char **argv)
{
    int runs = BENCH_MIN_RUNS, cpu = bench_first_cpu();
    long n = 2000000, n2 = 200000, prounds = 50000, urounds = 10000;
    long m = 10000000, m2 = 1000000, f = 500000, f2 = 100000;
    const char *only = NULL;
    int c;
    while ((c = getopt(argc, argv, "r:n:N:p:u:m:M:f:F:c:o:h")) != -1) {
        switch (c) {
        case 'r':
            runs = bench_parse_runs(optarg);
            break;
        case 'n':
            n = bench_parse_long("-n", optarg, 1, 1000000000L);
            break;
        case 'N':
            n2 = bench_parse_long("-N", optarg, 1, 1000000000L);
            break;
        case 'p':
            prounds = bench_parse_long("-p", optarg, 1, 100000000L);
            break;
        case 'u':
            urounds = bench_parse_long("-u", optarg, 1, 100000000L);
            break;
        case 'm':
            m = bench_parse_long("-m", optarg, 2, 1000000000L);
            break;
        case 'M':
            m2 = bench_parse_long("-M", optarg, 2, 1000000000L);
            break;
        case 'f':
            f = bench_parse_long("-f", optarg, 2, 100000000L);
            break;
        case 'F':
            f2 = bench_parse_long("-F", optarg, 2, 100000000L);
            break;
        case 'c':
            cpu = (int)bench_parse_long("-c", optarg, 0, CPU_SETSIZE - 1);
            break;
        case 'o':
            only = optarg;
            break;
        default:
            usage(argv[0]);
        }
    }
    if (optind != argc)
        usage(argv[0]);
    if (only) {
        double sw;
        if (strcmp(only, "pingpong") == 0)
            printf("chan_pingpong_gort_p1_ns_per_roundtrip %.6g ns\n",
                   run_pingpong_gort(n, 1, &sw));
        else if (strcmp(only, "buffered") == 0)
            printf("chan_buffered_gort_p1_msgs_per_s %.6g msg/s\n", run_buffered_gort(m, 1));
        else if (strcmp(only, "select") == 0)
            printf("chan_fanin_select_gort_p1_msgs_per_s %.6g msg/s\n", run_fanin_gort(f, true, 1));
        else
            usage(argv[0]);
        return 0;
    }

    bench_print_header("bench_chan", runs);
    bench_note("gort threads unpinned; GOMAXPROCS as named; the runtime's own spin as above");
    bench_note("ping-pong: 2 goroutines, 2 unbuffered channels of int64; %ld round trips at "
               "GOMAXPROCS=1, %ld at GOMAXPROCS=2",
               n, n2);
    bench_note("ping-pong baselines: futex turn word, spin 0 (one FUTEX_WAKE + one FUTEX_WAIT per "
               "direction); (a) both threads pinned to CPU %d, %ld round trips; (b) unpinned, "
               "%ld round trips",
               cpu, prounds, urounds);
    bench_note("buffered: 1 sender goroutine -> main goroutine, cap %d, %ld messages; baseline "
               "pthread mutex + 2 condvars ring, cap %d, 1 producer thread -> main thread, "
               "unpinned, %ld messages",
               BUF_CAP, m, BUF_CAP, m2);
    bench_note("fan-in: %d producer goroutines x %ld messages; select over %d channels (cap %d) "
               "vs one shared channel (cap %d) + plain recv; baseline %d producer threads into the "
               "mutex/condvar ring x %ld messages, unpinned",
               FANIN_PRODUCERS, f, FANIN_PRODUCERS, FANIN_CAP, BUF_CAP, FANIN_PRODUCERS, f2);

    double pp1[BENCH_MAX_RUNS], pp2[BENCH_MAX_RUNS], sw1[BENCH_MAX_RUNS], sw2[BENCH_MAX_RUNS];
    double fa[BENCH_MAX_RUNS], fb[BENCH_MAX_RUNS];
    double b1[BENCH_MAX_RUNS], b2[BENCH_MAX_RUNS], bq[BENCH_MAX_RUNS];
    double s1[BENCH_MAX_RUNS], s2[BENCH_MAX_RUNS], o1[BENCH_MAX_RUNS], o2[BENCH_MAX_RUNS];
    double fq[BENCH_MAX_RUNS];
    double sw;

    /* Warm-up, discarded. */
    run_pingpong_gort(n / 10 ? n / 10 : 1, 1, &sw);
    run_pingpong_futex(prounds / 10 ? prounds / 10 : 1, cpu, cpu);
    run_buffered_gort(m / 10, 1);
    run_fanin_gort(f / 10, true, 1);
    run_mq(m2 / 10, 1);

    for (int r = 0; r < runs; r++) {
        pp1[r] = run_pingpong_gort(n, 1, &sw1[r]);
        pp2[r] = run_pingpong_gort(n2, 2, &sw2[r]);
        fa[r] = run_pingpong_futex(prounds, cpu, cpu);
        fb[r] = run_pingpong_futex(urounds, -1, -1);
        b1[r] = run_buffered_gort(m, 1);
        b2[r] = run_buffered_gort(m, 2);
        bq[r] = run_mq(m2, 1);
        s1[r] = run_fanin_gort(f, true, 1);
        s2[r] = run_fanin_gort(f, true, 2);
        o1[r] = run_fanin_gort(f, false, 1);
        o2[r] = run_fanin_gort(f, false, 2);
        fq[r] = run_mq(f2, FANIN_PRODUCERS);
    }

    double mpp1 = bench_report("chan_pingpong_gort_p1_ns_per_roundtrip", "ns", pp1, runs);
    bench_report("chan_pingpong_gort_p1_switches_per_roundtrip", "count", sw1, runs);
    double mpp2 = bench_report("chan_pingpong_gort_p2_ns_per_roundtrip", "ns", pp2, runs);
    bench_report("chan_pingpong_gort_p2_switches_per_roundtrip", "count", sw2, runs);
    double mfa = bench_report("chan_pingpong_futex_samecpu_ns_per_roundtrip", "ns", fa, runs);
    double mfb = bench_report("chan_pingpong_futex_unpinned_ns_per_roundtrip", "ns", fb, runs);
    double mb1 = bench_report("chan_buffered_gort_p1_msgs_per_s", "msg/s", b1, runs);
    double mb2 = bench_report("chan_buffered_gort_p2_msgs_per_s", "msg/s", b2, runs);
    double mbq = bench_report("chan_buffered_mutexcond_msgs_per_s", "msg/s", bq, runs);
    double ms1 = bench_report("chan_fanin_select_gort_p1_msgs_per_s", "msg/s", s1, runs);
    double ms2 = bench_report("chan_fanin_select_gort_p2_msgs_per_s", "msg/s", s2, runs);
    double mo1 = bench_report("chan_fanin_onechan_gort_p1_msgs_per_s", "msg/s", o1, runs);
    double mo2 = bench_report("chan_fanin_onechan_gort_p2_msgs_per_s", "msg/s", o2, runs);
    double mfq = bench_report("chan_fanin_mutexcond_msgs_per_s", "msg/s", fq, runs);

    bench_ratio("chan_pingpong_futex_samecpu_over_gort_p1", mfa / mpp1);
    bench_ratio("chan_pingpong_futex_unpinned_over_gort_p1", mfb / mpp1);
    bench_ratio("chan_pingpong_futex_unpinned_over_gort_p2", mfb / mpp2);
    bench_ratio("chan_buffered_gort_p1_over_mutexcond", mb1 / mbq);
    bench_ratio("chan_buffered_gort_p2_over_mutexcond", mb2 / mbq);
    bench_ratio("chan_fanin_select_p1_over_onechan_p1", ms1 / mo1);
    bench_ratio("chan_fanin_select_p1_over_mutexcond", ms1 / mfq);
    bench_ratio("chan_fanin_select_p2_over_mutexcond", ms2 / mfq);
    (void)mo2;

    bench_print_table("bench_chan: median of runs (ratios: > 1 means gort is faster)");
    bench_note("target ping-pong on one P <= 120 ns per round trip: %s (%.1f ns)",
               mpp1 <= 120 ? "MET" : "MISSED", mpp1);
    bench_note("target buffered >= 20 M msgs/s: GOMAXPROCS=1 %s (%.1f M/s), GOMAXPROCS=2 %s "
               "(%.1f M/s)",
               mb1 >= 20e6 ? "MET" : "MISSED", mb1 / 1e6, mb2 >= 20e6 ? "MET" : "MISSED",
               mb2 / 1e6);
    return 0;
}
