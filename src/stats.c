/*
 * stats.c - gort_stats_get: sums the per-P and per-M counters.
 *
 * Counters are written by their owner (the P's holder, the M itself) with
 * relaxed single-writer updates and read here with relaxed loads, so a
 * snapshot taken while goroutines run is only approximately consistent.
 * Locks: gort__life_lock (keeps allp and allm alive), then sched.lock (allm).
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

/* Records gp's wake-to-run latency in pp's histogram (the holder, in
 * execute). */
void gort__lat_record(gort__p_t *pp, gort__g_t *gp)
{
    int64_t d = gort__nanotime() - gp->readyat;
    gp->readyat = 0;
    if (d < 0)
        d = 0;
    int b = d == 0 ? 0 : 64 - __builtin_clzll((unsigned long long)d);
    if (b >= GORT__LAT_BUCKETS)
        b = GORT__LAT_BUCKETS - 1;
    gort__stat_add(&pp->stats.lat.b[b], 1);
    if ((uint64_t)d > LOAD(pp->stats.lat.max))
        atomic_store_explicit(&pp->stats.lat.max, (uint64_t)d, memory_order_relaxed);
}

typedef struct latsum {
    uint64_t b[GORT__LAT_BUCKETS];
    uint64_t max;
} latsum_t;

static latsum_t lat_normal, lat_ded; /* gort__life_lock */

static void lat_fold(latsum_t *s, gort__p_t *pp)
{
    for (int i = 0; i < GORT__LAT_BUCKETS; i++)
        s->b[i] += LOAD(pp->stats.lat.b[i]);
    uint64_t m = LOAD(pp->stats.lat.max);
    if (m > s->max)
        s->max = m;
}

/* The upper bound of the bucket that holds quantile q (0 < q <= 1). */
static void lat_out(const latsum_t *s, uint64_t *n, uint64_t *p50, uint64_t *p99, uint64_t *max)
{
    uint64_t tot = 0;
    for (int i = 0; i < GORT__LAT_BUCKETS; i++)
        tot += s->b[i];
    *n = tot;
    *max = s->max;
    *p50 = *p99 = 0;
    uint64_t acc = 0;
    bool h50 = false;
    for (int i = 0; i < GORT__LAT_BUCKETS && tot; i++) {
        acc += s->b[i];
        uint64_t ub = i == 0 ? 0 : 1ull << i;
        if (ub > s->max)
            ub = s->max;
        if (!h50 && acc * 2 >= tot) {
            *p50 = ub;
            h50 = true;
        }
        if (acc * 100 >= tot * 99) {
            *p99 = ub;
            break;
        }
    }
}

static void add_pstats(gort__p_t *pp, void *arg)
{
    lat_fold(pp->dedicated ? &lat_ded : &lat_normal, pp);
    gort_stats_t *s = arg;
    gort__pstats_t *ps = &pp->stats;
    s->goroutines_created += LOAD(ps->goroutines_created);
    s->goroutines_exited += LOAD(ps->goroutines_exited);
    s->switches += LOAD(ps->switches);
    s->switches_direct += LOAD(ps->switches_direct);
    s->steal_tries += LOAD(ps->steal_tries);
    s->steal_successes += LOAD(ps->steal_successes);
    s->steal_gs += LOAD(ps->steal_gs);
    if (pp->dedicated)
        s->dedicated_ps++;
}

int gort__stats_get(gort_stats_t *st)
{
    if (!st || st->size < offsetof(gort_stats_t, goroutines_created) + sizeof(uint64_t))
        return -EINVAL;
    gort_stats_t s;
    memset(&s, 0, sizeof s);
    gort__lock(&gort__life_lock);
    memset(&lat_normal, 0, sizeof lat_normal);
    memset(&lat_ded, 0, sizeof lat_ded);
    if (!gort__rt.allp) {
        gort__unlock(&gort__life_lock);
        return -ESRCH;
    }
    /* Every P ever made, so counters of removed Ps do not go missing. */
    int32_t nallp = atomic_load(&gort__rt.nallp);
    for (int32_t i = 0; i < nallp; i++)
        add_pstats(gort__rt.allp[i], &s);
    gort__dedicated_ps_foreach(add_pstats, &s);
    gort__lock(&gort__sched.lock);
    for (gort__m_t *mp = gort__sched.allm; mp; mp = mp->alllink) {
        s.ms_parked += LOAD(mp->stats.parked);
        s.ms_woken += LOAD(mp->stats.woken);
        s.spinning_transitions += LOAD(mp->stats.spinning);
        s.futex_sleeps += LOAD(mp->stats.futex_sleeps);
        s.futex_wakes += LOAD(mp->stats.futex_wakes);
        s.syscalls_raw += LOAD(mp->stats.syscalls_raw);
        s.syscalls_lazy += LOAD(mp->stats.syscalls_lazy);
        s.syscalls_eager += LOAD(mp->stats.syscalls_eager);
        s.syscall_fast_exits += LOAD(mp->stats.syscall_fast_exits);
        s.syscall_slow_exits += LOAD(mp->stats.syscall_slow_exits);
        s.handoffs += LOAD(mp->stats.handoffs);
        s.startlockedm += LOAD(mp->stats.startlockedm);
        s.stoplockedm += LOAD(mp->stats.stoplockedm);
        s.preempts_sync += LOAD(mp->stats.preempts_sync);
        s.preempts_async += LOAD(mp->stats.preempts_async);
        s.dedicate_calls += LOAD(mp->stats.dedicate_calls);
        s.undedicate_calls += LOAD(mp->stats.undedicate_calls);
        s.dedicated_spin_catches += LOAD(mp->stats.ded_spin_catches);
        s.timer_spins += LOAD(mp->stats.timer_spins);
        s.timer_spin_catches += LOAD(mp->stats.timer_spin_catches);
        s.dedicated_futex_sleeps += LOAD(mp->stats.ded_futex_sleeps);
        s.dedicated_threads_reused += LOAD(mp->stats.ded_threads_reused);
    }
    s.sysmon_retakes = LOAD(gort__sched.sysmon_retakes);
    s.sysmon_wakeups = LOAD(gort__sched.sysmon_wakeups);
    s.preempt_requests = LOAD(gort__sched.preempt_requests);
    s.preempt_signals = LOAD(gort__sched.preempt_signals);
    s.dedicated_direct_wakes = LOAD(gort__sched.ded_direct_wakes);
    s.dedicated_live = (uint64_t)atomic_load(&gort__rt.ndedicated);
    s.globrunq_puts = LOAD(gort__sched.globrunq_puts);
    s.globrunq_gets = LOAD(gort__sched.globrunq_gets);
    s.stw_count = LOAD(gort__sched.stw_count);
    s.stw_dedicated_waits = LOAD(gort__sched.stw_ded_waits);
    s.procresizes = LOAD(gort__sched.procresizes);
    s.netpoll_polls = LOAD(gort__netpoll_polls);
    s.netpoll_readied = LOAD(gort__netpoll_readied);
    gort__unlock(&gort__sched.lock);
    uint64_t fs, fw;
    gort__futex_foreign_counts(&fs, &fw);
    s.futex_sleeps += fs;
    s.futex_wakes += fw;
    s.ms_created = LOAD(gort__rt.ms_created);
    s.goroutines_live = s.goroutines_created - s.goroutines_exited;
    s.stacks_mapped = LOAD(gort__stacks_mapped);
    s.stack_bytes_mapped = LOAD(gort__stack_bytes_mapped);
    s.gomaxprocs = gort__rt.gomaxprocs;
    lat_out(&lat_normal, &s.runq_wait_samples, &s.runq_wait_p50_ns, &s.runq_wait_p99_ns,
            &s.runq_wait_max_ns);
    lat_out(&lat_ded, &s.dedicated_wake_samples, &s.dedicated_wake_p50_ns, &s.dedicated_wake_p99_ns,
            &s.dedicated_wake_max_ns);
    gort__unlock(&gort__life_lock);

    size_t n = st->size < sizeof s ? st->size : sizeof s;
    size_t size = st->size;
    memcpy((char *)st + sizeof(size_t), (char *)&s + sizeof(size_t), n - sizeof(size_t));
    st->size = size;
    return 0;
}
