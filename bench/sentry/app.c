/*
 * app.c - the sandboxed application: plain pthreads that run a workload and
 * make emulated system calls to the sentry.
 *
 * By default these threads live in a child process forked by main() before
 * any thread exists (the child never runs gort), like the stub threads of
 * gVisor's systrap platform: the only link to the sentry is the shared
 * region (sentry.h). With --inproc the same host loop runs in a pthread of
 * the sentry's process.
 *
 * A call (app_syscall): write op, arguments and the next sequence number
 * into the thread's slot, ring the request doorbell (FUTEX_WAKE only if the
 * task sleeps), then wait for the reply doorbell: spin app_spin times, then
 * FUTEX_WAIT. The call's latency is measured here, from before the request
 * is written to after the reply is seen, and recorded (histogram, worst
 * case, CPU migrations) only for calls started in the MEASURE phase.
 *
 * Workloads (run_cfg_t.workload):
 *   A, D  getpid, with work_iters of computation between calls;
 *   B, E  pairs (threads 2k, 2k+1) passing a turn through a futex word in
 *         application memory: wait while it is not my turn
 *         (FUTEX_WAIT(turn, other)), take the turn (check and bump the
 *         pair's counter), hand the turn over, FUTEX_WAKE(turn, 1), then
 *         work (the waker keeps running application code, as a thread that
 *         unlocks a mutex or signals a condition variable does);
 *   C     a chain: thread 0 writes the producer stream (stream_byte) into
 *         pipe 0 in PIPE_MSG-byte writes, thread i forwards pipe i-1 to
 *         pipe i, the last thread reads and checks every byte's position
 *         in the stream.
 * Each thread stops when the phase becomes STOP: a call interrupted by the
 * sentry at the end returns -EINTR, and the thread then sends OP_EXIT.
 *
 * The host (app_host_serve) waits for a command, starts the threads, takes
 * its process's rusage when the driver enters MEASURE and STOP (so CPU time
 * and context switches of both processes can be summed), joins the threads
 * and reports the command done.
 */
#include "sentry.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct app {
    shm_t *shm;
    int idx;
    slot_t *slot;
    app_stat_t *st;
    uint64_t seq;
    int last_cpu;
    uint64_t x; /* work state */
    pthread_t th;
} app_t;

void app_error(shm_t *shm, app_stat_t *st, const char *fmt, ...)
{
    if (st)
        st->errors++;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&shm->ctl.err_claimed, &expected, 1))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(shm->ctl.err, sizeof shm->ctl.err, fmt, ap);
    va_end(ap);
}

static inline uint32_t phase(const app_t *a)
{
    return atomic_load_explicit(&a->shm->ctl.phase, memory_order_relaxed);
}

static int64_t app_syscall(app_t *a, uint32_t op, int64_t a0, int64_t a1)
{
    slot_t *s = a->slot;
    bool measure = phase(a) == PHASE_MEASURE;
    int64_t t0 = now_ns();
    s->op = op;
    s->a0 = a0;
    s->a1 = a1;
    s->seq = ++a->seq;
    bell_ring(&s->req);
    if (!bell_spin(&s->rep, a->shm->ctl.cfg.app_spin))
        while (!bell_sleep_once(&s->rep, -1))
            ;
    bell_consume(&s->rep);
    int64_t t1 = now_ns();
    if (s->rep_seq != a->seq)
        app_error(a->shm, a->st, "thread %d: reply to request %llu carries sequence %llu", a->idx,
                  (unsigned long long)a->seq, (unsigned long long)s->rep_seq);
    a->st->ops_total++;
    int cpu = sched_getcpu();
    if (measure) {
        uint64_t lat = (uint64_t)(t1 - t0);
        /* Relaxed atomic stores (one writer): the driver polls these three
         * counters while the run goes on (main.c made_progress). */
        __atomic_store_n(&a->st->ops_win, a->st->ops_win + 1, __ATOMIC_RELAXED);
        a->st->hist[hist_bucket(lat)]++;
        if (lat > a->st->lat_max_ns)
            a->st->lat_max_ns = lat;
        if (cpu != a->last_cpu)
            a->st->migr_win++;
    }
    a->last_cpu = cpu;
    return s->ret;
}

static void work(app_t *a)
{
    a->x = spin_work(a->shm->ctl.cfg.work_iters, a->x);
}

static void run_getpid(app_t *a)
{
    while (phase(a) != PHASE_STOP) {
        work(a);
        int64_t r = app_syscall(a, OP_GETPID, 0, 0);
        if (r != SENTRY_PID_BASE + a->idx)
            app_error(a->shm, a->st, "thread %d: getpid returned %lld", a->idx, (long long)r);
    }
}

static void run_pingpong(app_t *a)
{
    pair_t *p = &a->shm->pairs[a->idx / 2];
    uint32_t me = (uint32_t)(a->idx & 1), other = me ^ 1;
    int64_t off = (int64_t)((char *)&p->turn - (char *)a->shm);
    for (;;) {
        while (atomic_load_explicit(&p->turn, memory_order_acquire) != me) {
            if (phase(a) == PHASE_STOP)
                return;
            int64_t r = app_syscall(a, OP_FUTEX_WAIT, off, other);
            a->st->wait_calls++;
            if (r == 0)
                a->st->wait_ok++;
            else if (r == -EAGAIN)
                a->st->wait_again++;
            else if (r == -EINTR)
                a->st->wait_intr++;
            else
                app_error(a->shm, a->st, "thread %d: FUTEX_WAIT returned %lld", a->idx,
                          (long long)r);
        }
        if (phase(a) == PHASE_STOP)
            return;
        /* Our turn: the counter's parity says whose turn it was. */
        if ((p->count & 1) != me)
            app_error(a->shm, a->st, "thread %d: turn taken out of order (count %llu)", a->idx,
                      (unsigned long long)p->count);
        p->count++;
        __atomic_store_n(&a->st->turns, a->st->turns + 1, __ATOMIC_RELAXED);
        atomic_store_explicit(&p->turn, other, memory_order_release);
        int64_t r = app_syscall(a, OP_FUTEX_WAKE, off, 1);
        a->st->wake_calls++;
        if (r < 0 || r > 1)
            app_error(a->shm, a->st, "thread %d: FUTEX_WAKE returned %lld", a->idx, (long long)r);
        else
            a->st->wake_woken += (uint64_t)r;
        /* The waker goes on running application code (the spec's "the
         * unblocking P cannot immediately switch to the unblocked G"). */
        work(a);
    }
}

/* Writes n bytes (already in the slot) to pipe; false if interrupted. */
static bool pipe_write(app_t *a, int pipe, int64_t n)
{
    int64_t r = app_syscall(a, OP_PIPE_WRITE, pipe, n);
    if (r == n) {
        a->st->bytes_out += (uint64_t)n;
        return true;
    }
    if (r != -EINTR)
        app_error(a->shm, a->st, "thread %d: pipe %d write of %lld returned %lld", a->idx, pipe,
                  (long long)n, (long long)r);
    return false;
}

static void run_pipe(app_t *a)
{
    int n = a->shm->ctl.cfg.nthreads, i = a->idx;
    uint64_t pos = 0;
    uint8_t buf[SLOT_DATA];
    while (phase(a) != PHASE_STOP) {
        work(a);
        if (i == 0) { /* producer */
            for (int k = 0; k < PIPE_MSG; k++) {
                uint8_t b = stream_byte(pos + (uint64_t)k);
                a->slot->data[k] = b;
            }
            if (!pipe_write(a, 0, PIPE_MSG))
                continue;
            for (int k = 0; k < PIPE_MSG; k++)
                a->st->sum_out = sum_step(a->st->sum_out, stream_byte(pos + (uint64_t)k));
            pos += PIPE_MSG;
            continue;
        }
        int64_t r = app_syscall(a, OP_PIPE_READ, i - 1, SLOT_DATA);
        if (r == -EINTR)
            continue;
        if (r <= 0 || r > SLOT_DATA) {
            app_error(a->shm, a->st, "thread %d: pipe %d read returned %lld", i, i - 1,
                      (long long)r);
            continue;
        }
        __atomic_store_n(&a->st->bytes_in, a->st->bytes_in + (uint64_t)r, __ATOMIC_RELAXED);
        if (i == n - 1) { /* consumer: check every byte */
            for (int64_t k = 0; k < r; k++) {
                uint8_t b = a->slot->data[k];
                if (b != stream_byte(pos))
                    app_error(a->shm, a->st,
                              "consumer: byte %llu is 0x%02x, the stream has 0x%02x there",
                              (unsigned long long)pos, b, stream_byte(pos));
                a->st->sum_in = sum_step(a->st->sum_in, b);
                pos++;
            }
            continue;
        }
        memcpy(buf, a->slot->data, (size_t)r); /* forwarder */
        memcpy(a->slot->data, buf, (size_t)r);
        if (!pipe_write(a, i, r))
            a->st->bytes_lost += (uint64_t)r;
    }
}

static void *app_main(void *arg)
{
    app_t *a = arg;
    a->last_cpu = sched_getcpu();
    a->x = (uint64_t)a->idx;
    atomic_fetch_add(&a->shm->ctl.apps_started, 1);
    switch (a->shm->ctl.cfg.workload) {
    case WL_A:
    case WL_D:
        run_getpid(a);
        break;
    case WL_B:
    case WL_E:
        run_pingpong(a);
        break;
    case WL_C:
        run_pipe(a);
        break;
    }
    int64_t r = app_syscall(a, OP_EXIT, 0, 0);
    if (r != 0)
        app_error(a->shm, a->st, "thread %d: exit returned %lld", a->idx, (long long)r);
    if (a->x == 42) /* keep the work */
        a->st->errors += 0;
    atomic_fetch_add(&a->shm->ctl.apps_exited, 1);
    return NULL;
}

/* Waits until *w != v (a process-shared futex word). */
static uint32_t wait_change(_Atomic uint32_t *w, uint32_t v)
{
    uint32_t cur;
    while ((cur = atomic_load(w)) == v)
        futex_wait_shared(w, v, -1);
    return cur;
}

/* Waits until *w >= v. */
static void wait_at_least(_Atomic uint32_t *w, uint32_t v)
{
    uint32_t cur;
    while ((cur = atomic_load(w)) < v)
        futex_wait_shared(w, cur, -1);
}

static void run_command(shm_t *shm, bool inproc)
{
    ctl_t *c = &shm->ctl;
    int n = c->cfg.nthreads;
    app_t *apps = calloc((size_t)n, sizeof *apps);
    if (!apps) {
        app_error(shm, NULL, "app host: out of memory");
        return;
    }
    int started = 0;
    for (int i = 0; i < n; i++) {
        app_t *a = &apps[i];
        a->shm = shm;
        a->idx = i;
        a->slot = &shm->slots[i];
        a->st = &shm->stats[i];
        if (pthread_create(&a->th, NULL, app_main, a) != 0) {
            app_error(shm, NULL, "app host: pthread_create failed for thread %d", i);
            break;
        }
        started++;
    }
    wait_at_least(&c->phase, PHASE_MEASURE);
    if (!inproc)
        getrusage(RUSAGE_SELF, &c->ru_start);
    atomic_store(&c->phase_ack, PHASE_MEASURE);
    futex_wake_shared(&c->phase_ack, INT_MAX);
    wait_at_least(&c->phase, PHASE_STOP);
    if (!inproc)
        getrusage(RUSAGE_SELF, &c->ru_stop);
    atomic_store(&c->phase_ack, PHASE_STOP);
    futex_wake_shared(&c->phase_ack, INT_MAX);
    for (int i = 0; i < started; i++)
        pthread_join(apps[i].th, NULL);
    free(apps);
}

void app_host_serve(shm_t *shm, bool inproc)
{
    ctl_t *c = &shm->ctl;
    uint32_t seen = 0;
    for (;;) {
        seen = wait_change(&c->cmd, seen);
        if (c->cmd_kind == CMD_QUIT)
            break;
        run_command(shm, inproc);
        atomic_store(&c->done, seen);
        futex_wake_shared(&c->done, INT_MAX);
    }
    atomic_store(&c->done, seen);
    futex_wake_shared(&c->done, INT_MAX);
}
