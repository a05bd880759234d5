/*
 * sentry.c - the sentry: task goroutines (or pthreads) that serve the
 * application's threads, and the emulated futexes and pipes through which
 * tasks wake each other.
 *
 * A task (task_loop) waits for its application thread's next request, which
 * is the model of "running application code": in gVisor a task goroutine
 * spends that time in a blocking system call (ptrace, KVM_RUN, or systrap's
 * futex wait on the stub's state word). How the wait talks to the runtime is
 * what the modes compare (wait_request; the spec's "Problems"):
 *
 *   raw        gort_syscall(GORT_SYSCALL_RAW, SYS_futex ...): the goroutine
 *              keeps its P while the application runs, so at most GOMAXPROCS
 *              application threads make progress. As in the spec, preempting
 *              the application is then the sentry's job: a task that has held
 *              its P for raw_quantum_ns (default 10 ms, Go's forcePreemptNS)
 *              yields (gort_yield) before waiting again;
 *   lazy       gort_entersyscall ... gort_exitsyscall: sysmon retakes the P
 *              after 20 us or more if other work waits;
 *   eager      gort_entersyscallblock ... gort_exitsyscall: the P is handed
 *              off at once, and reacquired on return;
 *   locked     gort_lock_os_thread at start, then lazy: blocking on a channel
 *              hands the P off (stoplockedm) and waking needs startlockedm;
 *   dedicated  gort_dedicate_os_thread at start, then lazy (which keeps the
 *              dedicated P anyway);
 *   pthreads   a plain pthread per task, no gort on the path; the emulated
 *              waits use a futex-based event instead of channels and the
 *              locks are pthread mutexes ("rewrite the sentry without a
 *              user-space scheduler").
 * In every mode the task first spins task_spin times on the doorbell.
 *
 * Blocking (the spec's "Blocking Overhead"): a task whose emulated call must
 * wait (FUTEX_WAIT on an unchanged word, a read of an empty pipe, a write to
 * a full one) queues a waiter under the object's lock and blocks like
 * gVisor's Task.block: gort_select on its wake channel (capacity 1) and its
 * interrupt channel. The task that changes the object takes the waiters off
 * the queue under the lock and, after unlocking, sends to each wake channel
 * without blocking (gort_chan_try_send, gVisor's `select { case C <- x:
 * default: }`). A waiter is done when it finds itself off the queue (a stale
 * token only makes it look again). At the end of a run the driver interrupts
 * every task (a token on the interrupt channel plus the `stopping` flag); a
 * waiter still queued then leaves the queue and returns -EINTR.
 *
 * Locks: each futex bucket and each pipe has one lock (gort_mutex_t, or a
 * pthread mutex in the pthreads mode), held only while the queue and the
 * buffer are touched, never across a block; no lock nests in another.
 *
 * The runtime thread runs gort_main in every mode: the main goroutine starts
 * the tasks (goroutines, or pthreads in the baseline) and the background CPU
 * goroutines, waits for them all (a WaitGroup), then for the driver's
 * release (the driver interrupts tasks from its own thread until they have
 * all ended, so the channels must outlive that), frees the channels and
 * returns.
 */
#include "sentry.h"

#include <errno.h>
#include <gort.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const sentry_mode_names[MODE_COUNT] = {"raw",    "lazy",      "eager",
                                                   "locked", "dedicated", "pthreads"};

#define NBUCKETS 64

/* A lock of the emulated kernel: which half is used depends on the mode. */
typedef struct slock {
    gort_mutex_t gm;
    pthread_mutex_t pm;
} slock_t;

typedef struct waiter {
    struct waiter *next, *prev;
    struct task *task;
    int64_t key;
    bool queued; /* guarded by the lock of the queue it is on */
} waiter_t;

typedef struct wq {
    waiter_t head; /* circular list sentinel */
} wq_t;

enum { ST_START, ST_WAIT_REQ, ST_HANDLE, ST_BLOCKED, ST_EXITED };
static const char *const st_names[] = {"start", "wait-request", "handle", "blocked", "exited"};

/* pthreads-mode event bits. */
enum { EV_WAKE = 1, EV_INTR = 2, EV_SLEEP = 4 };

typedef struct task {
    _Alignas(64) int idx;
    slot_t *slot;
    gort_chan_t *wake_ch, *intr_ch; /* gort modes */
    _Atomic uint32_t ev;            /* pthreads mode */
    waiter_t w;
    struct task **scratch; /* waiters taken off a queue, to wake after unlocking */
    uint64_t last_seq, handled;
    int last_cpu;
    uintptr_t last_thread;
    uint64_t migr_win, mchg_win;
    uint64_t waits_woken, woken;
    int64_t q_start; /* raw mode: when this task last got its P */
    pthread_t th;
    bool th_started;
    _Atomic int state;
} task_t;

typedef struct fbucket {
    _Alignas(64) slock_t lock;
    wq_t q;
} fbucket_t;

typedef struct spipe {
    _Alignas(64) slock_t lock;
    wq_t readers, writers;
    size_t head, len;
    uint64_t in, out;
    uint8_t buf[PIPE_CAP];
} spipe_t;

typedef struct bg {
    _Alignas(64) int idx;
    uint64_t chunks_win;
    uint64_t sink;
} bg_t;

static struct {
    sentry_params_t p;
    shm_t *shm;
    task_t *tasks;
    fbucket_t *buckets;
    spipe_t *pipes;
    int npipes;
    bg_t *bgs;
    _Atomic int ready, exited;
    _Atomic int stopping;
    _Atomic int phase;
    gort_waitgroup_t wg;
    gort_chan_t *release_ch;
    _Atomic int release_ready; /* release_ch exists */
    _Atomic int returned;      /* gort_main returned */
    _Atomic int injected;      /* the --inject fault was made */
    _Atomic uint64_t errors;
    _Atomic int err_claimed;
    char err[256];
} R;

static void serr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void serr(const char *fmt, ...)
{
    atomic_fetch_add(&R.errors, 1);
    int expected = 0;
    if (!atomic_compare_exchange_strong(&R.err_claimed, &expected, 1))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(R.err, sizeof R.err, fmt, ap);
    va_end(ap);
}

static inline bool pthreads_mode(void)
{
    return R.p.mode == MODE_PTHREADS;
}

/* The identity of the calling thread. Not const: a goroutine can resume on
 * another thread, so the compiler must not reuse an earlier result. */
__attribute__((noinline)) static uintptr_t self_thread(void)
{
    __asm__ __volatile__("" ::: "memory");
    return (uintptr_t)pthread_self();
}

/* ---- locks and wait queues ---- */

static void slock_init(slock_t *l)
{
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->pm, NULL);
}

static void slock_lock(slock_t *l)
{
    if (pthreads_mode())
        pthread_mutex_lock(&l->pm);
    else
        gort_mutex_lock(&l->gm);
}

static void slock_unlock(slock_t *l)
{
    if (pthreads_mode())
        pthread_mutex_unlock(&l->pm);
    else
        gort_mutex_unlock(&l->gm);
}

static void wq_init(wq_t *q)
{
    q->head.next = q->head.prev = &q->head;
}

static void wq_push(wq_t *q, waiter_t *w)
{
    w->prev = q->head.prev;
    w->next = &q->head;
    q->head.prev->next = w;
    q->head.prev = w;
    w->queued = true;
}

static void wq_del(waiter_t *w)
{
    w->prev->next = w->next;
    w->next->prev = w->prev;
    w->next = w->prev = NULL;
    w->queued = false;
}

/* Takes up to max waiters with the given key (any key if key < 0) off q
 * into out; returns how many. Caller holds q's lock. */
static int wq_take(wq_t *q, int64_t key, int64_t max, task_t **out)
{
    int k = 0;
    for (waiter_t *w = q->head.next; w != &q->head && k < max;) {
        waiter_t *next = w->next;
        if (key < 0 || w->key == key) {
            wq_del(w);
            out[k++] = w->task;
        }
        w = next;
    }
    return k;
}

/* ---- blocking: Task.block ---- */

static int pevent_wait(_Atomic uint32_t *e, uint32_t spin)
{
    for (uint32_t i = 0;; i++) {
        uint32_t v = atomic_load_explicit(e, memory_order_acquire);
        if (v & EV_WAKE) {
            if (atomic_compare_exchange_weak(e, &v, v & ~(uint32_t)(EV_WAKE | EV_SLEEP)))
                return 0;
            continue;
        }
        if (v & EV_INTR)
            return -EINTR;
        if (i < spin) {
            cpu_relax();
            continue;
        }
        if (!(v & EV_SLEEP)) {
            if (!atomic_compare_exchange_weak(e, &v, v | EV_SLEEP))
                continue;
            v |= EV_SLEEP;
        }
        syscall(SYS_futex, (uint32_t *)e, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
    }
}

static void pevent_set(_Atomic uint32_t *e, uint32_t bit)
{
    if (atomic_fetch_or(e, bit) & EV_SLEEP)
        syscall(SYS_futex, (uint32_t *)e, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Blocks until woken or interrupted: 0 or -EINTR (either may be stale; the
 * caller rechecks its condition). */
static int task_block(task_t *t)
{
    if (atomic_load_explicit(&R.stopping, memory_order_acquire))
        return -EINTR;
    atomic_store_explicit(&t->state, ST_BLOCKED, memory_order_relaxed);
    int r;
    if (pthreads_mode()) {
        r = pevent_wait(&t->ev, R.p.task_spin);
    } else {
        gort_select_case_t cs[2] = {{.chan = t->wake_ch, .dir = GORT_SELECT_RECV},
                                    {.chan = t->intr_ch, .dir = GORT_SELECT_RECV}};
        int i = gort_select(cs, 2, 0);
        if (i < 0)
            serr("task %d: gort_select returned %d", t->idx, i);
        r = i == 1 ? -EINTR : 0;
        t->q_start = now_ns(); /* raw mode: the P was given up */
    }
    atomic_store_explicit(&t->state, ST_HANDLE, memory_order_relaxed);
    return r;
}

static void task_unblock(task_t *t)
{
    if (pthreads_mode()) {
        pevent_set(&t->ev, EV_WAKE);
        return;
    }
    int r = gort_chan_try_send(t->wake_ch, NULL);
    if (r != 0 && r != -EAGAIN)
        serr("task %d: wake send returned %d", t->idx, r);
}

static void task_interrupt(task_t *t)
{
    if (pthreads_mode()) {
        pevent_set(&t->ev, EV_INTR);
    } else if (t->intr_ch) {
        int r = gort_chan_try_send(t->intr_ch, NULL);
        if (r != 0 && r != -EAGAIN)
            serr("task %d: interrupt send returned %d", t->idx, r);
    }
}

/* After queueing t->w under l: blocks until a waker takes it off the queue
 * (0) or an interrupt comes while it is still queued (-EINTR). */
static int wait_dequeued(task_t *t, slock_t *l)
{
    for (;;) {
        int r = task_block(t);
        slock_lock(l);
        bool queued = t->w.queued;
        if (queued && r == -EINTR)
            wq_del(&t->w);
        slock_unlock(l);
        if (!queued)
            return 0;
        if (r == -EINTR)
            return -EINTR;
    }
}

/* ---- emulated futex ---- */

static _Atomic uint32_t *app_word(int64_t off)
{
    int64_t lo = (int64_t)offsetof(shm_t, pairs), hi = lo + (int64_t)sizeof R.shm->pairs;
    if (off < lo || off + 4 > hi || (off & 3))
        return NULL;
    return (_Atomic uint32_t *)((char *)R.shm + off);
}

static fbucket_t *bucket_of(int64_t off)
{
    return &R.buckets[((uint64_t)off / 64) % NBUCKETS];
}

static int64_t do_futex_wait(task_t *t, int64_t off, int64_t val)
{
    _Atomic uint32_t *word = app_word(off);
    if (!word)
        return -EFAULT;
    fbucket_t *b = bucket_of(off);
    slock_lock(&b->lock);
    if (atomic_load(word) != (uint32_t)val) {
        slock_unlock(&b->lock);
        return -EAGAIN;
    }
    t->w.key = off;
    wq_push(&b->q, &t->w);
    slock_unlock(&b->lock);
    int r = wait_dequeued(t, &b->lock);
    if (r == 0)
        t->waits_woken++;
    return r;
}

static int64_t do_futex_wake(task_t *t, int64_t off, int64_t n)
{
    if (!app_word(off))
        return -EFAULT;
    fbucket_t *b = bucket_of(off);
    slock_lock(&b->lock);
    int k = wq_take(&b->q, off, n, t->scratch);
    slock_unlock(&b->lock);
    for (int i = 0; i < k; i++)
        task_unblock(t->scratch[i]);
    if (R.p.inject == INJECT_FUTEX && atomic_exchange(&R.injected, 1) == 0)
        k++;
    t->woken += (uint64_t)k;
    return k;
}

/* ---- emulated pipes ---- */

static int64_t do_pipe_read(task_t *t, int64_t id, int64_t max)
{
    if (id < 0 || id >= R.npipes || max <= 0 || max > SLOT_DATA)
        return -EINVAL;
    spipe_t *p = &R.pipes[id];
    for (;;) {
        slock_lock(&p->lock);
        if (p->len > 0) {
            size_t n = p->len < (size_t)max ? p->len : (size_t)max;
            for (size_t i = 0; i < n; i++)
                t->slot->data[i] = p->buf[(p->head + i) % PIPE_CAP];
            p->head = (p->head + n) % PIPE_CAP;
            p->len -= n;
            p->out += n;
            int k = wq_take(&p->writers, -1, INT64_MAX, t->scratch);
            slock_unlock(&p->lock);
            for (int i = 0; i < k; i++)
                task_unblock(t->scratch[i]);
            return (int64_t)n;
        }
        t->w.key = id;
        wq_push(&p->readers, &t->w);
        slock_unlock(&p->lock);
        if (wait_dequeued(t, &p->lock) == -EINTR)
            return -EINTR;
    }
}

static int64_t do_pipe_write(task_t *t, int64_t id, int64_t n)
{
    if (id < 0 || id >= R.npipes || n <= 0 || n > SLOT_DATA)
        return -EINVAL;
    spipe_t *p = &R.pipes[id];
    for (;;) {
        slock_lock(&p->lock);
        if (PIPE_CAP - p->len >= (size_t)n) {
            size_t tail = (p->head + p->len) % PIPE_CAP;
            for (int64_t i = 0; i < n; i++)
                p->buf[(tail + (size_t)i) % PIPE_CAP] = t->slot->data[i];
            if (R.p.inject == INJECT_PIPE && id == 0 && p->in > 1000 &&
                atomic_exchange(&R.injected, 1) == 0)
                p->buf[tail] ^= 0x10;
            p->len += (size_t)n;
            p->in += (uint64_t)n;
            int k = wq_take(&p->readers, -1, INT64_MAX, t->scratch);
            slock_unlock(&p->lock);
            for (int i = 0; i < k; i++)
                task_unblock(t->scratch[i]);
            return n;
        }
        t->w.key = id;
        wq_push(&p->writers, &t->w);
        slock_unlock(&p->lock);
        if (wait_dequeued(t, &p->lock) == -EINTR)
            return -EINTR;
    }
}

/* ---- the task ---- */

/* raw: keep the P across the wait; yield it every raw_quantum_ns. */
static void wait_raw(task_t *t)
{
    _Atomic uint32_t *w = &t->slot->req;
    for (;;) {
        int64_t left = t->q_start + R.p.raw_quantum_ns - now_ns();
        if (left <= 0) {
            gort_yield();
            t->q_start = now_ns();
            continue;
        }
        uint32_t v = atomic_load_explicit(w, memory_order_acquire);
        if (v == BELL_POSTED)
            return;
        if (v == BELL_EMPTY &&
            !atomic_compare_exchange_strong_explicit(w, &v, BELL_SLEEPING, memory_order_acq_rel,
                                                     memory_order_acquire))
            continue;
        struct timespec ts = {.tv_sec = left / 1000000000, .tv_nsec = left % 1000000000};
        gort_syscall(GORT_SYSCALL_RAW, SYS_futex, (long)w, FUTEX_WAIT, BELL_SLEEPING, (long)&ts, 0,
                     0);
    }
}

/* Waits for the next request: "running application code". */
static void wait_request(task_t *t)
{
    _Atomic uint32_t *w = &t->slot->req;
    if (R.p.mode == MODE_RAW) {
        /* The quantum is checked first even when a request is waiting: a
         * busy task must not keep its P forever. */
        if (t->q_start + R.p.raw_quantum_ns - now_ns() <= 0) {
            gort_yield();
            t->q_start = now_ns();
        }
        if (!bell_spin(w, R.p.task_spin))
            wait_raw(t);
        return;
    }
    if (bell_spin(w, R.p.task_spin))
        return;
    switch (R.p.mode) {
    case MODE_LAZY:
    case MODE_LOCKED:
    case MODE_DEDICATED:
        gort_entersyscall();
        while (!bell_sleep_once(w, -1))
            ;
        gort_exitsyscall();
        break;
    case MODE_EAGER:
        gort_entersyscallblock();
        while (!bell_sleep_once(w, -1))
            ;
        gort_exitsyscall();
        break;
    default: /* pthreads */
        while (!bell_sleep_once(w, -1))
            ;
        break;
    }
}

static int64_t handle(task_t *t, uint32_t op, int64_t a0, int64_t a1)
{
    switch (op) {
    case OP_GETPID:
        return SENTRY_PID_BASE + t->idx;
    case OP_FUTEX_WAIT:
        return do_futex_wait(t, a0, a1);
    case OP_FUTEX_WAKE:
        return do_futex_wake(t, a0, a1);
    case OP_PIPE_READ:
        return do_pipe_read(t, a0, a1);
    case OP_PIPE_WRITE:
        return do_pipe_write(t, a0, a1);
    case OP_EXIT:
        return 0;
    default:
        serr("task %d: unknown op %u", t->idx, op);
        return -ENOSYS;
    }
}

static void task_loop(task_t *t)
{
    slot_t *s = t->slot;
    t->last_cpu = sched_getcpu();
    t->last_thread = self_thread();
    atomic_fetch_add(&R.ready, 1);
    for (;;) {
        atomic_store_explicit(&t->state, ST_WAIT_REQ, memory_order_relaxed);
        wait_request(t);
        bell_consume(&s->req);
        atomic_store_explicit(&t->state, ST_HANDLE, memory_order_relaxed);
        uint64_t seq = s->seq;
        uint32_t op = s->op;
        if (seq != t->last_seq + 1)
            serr("task %d: request %llu after %llu", t->idx, (unsigned long long)seq,
                 (unsigned long long)t->last_seq);
        t->last_seq = seq;
        t->handled++;
        int cpu = sched_getcpu();
        uintptr_t th = self_thread();
        if (atomic_load_explicit(&R.phase, memory_order_relaxed) == PHASE_MEASURE) {
            t->migr_win += cpu != t->last_cpu;
            t->mchg_win += th != t->last_thread;
        }
        t->last_cpu = cpu;
        t->last_thread = th;
        int64_t ret = handle(t, op, s->a0, s->a1);
        s->rep_seq = seq;
        if (R.p.inject == INJECT_SEQ && seq == 50 && atomic_exchange(&R.injected, 1) == 0)
            s->rep_seq = seq + 1;
        s->ret = ret;
        bell_ring(&s->rep);
        if (op == OP_EXIT)
            break;
    }
    atomic_store(&t->state, ST_EXITED);
}

static void task_go(void *arg)
{
    task_t *t = arg;
    if (R.p.mode == MODE_DEDICATED) {
        int r = gort_dedicate_os_thread();
        if (r != 0)
            serr("task %d: gort_dedicate_os_thread returned %d", t->idx, r);
    } else if (R.p.mode == MODE_LOCKED) {
        int r = gort_lock_os_thread();
        if (r != 0)
            serr("task %d: gort_lock_os_thread returned %d", t->idx, r);
    }
    t->q_start = INT64_MIN / 2; /* raw: yield once first, so every task starts */
    task_loop(t);
    atomic_fetch_add(&R.exited, 1);
    gort_waitgroup_done(&R.wg);
}

static void *task_pthread(void *arg)
{
    task_t *t = arg;
    task_loop(t);
    atomic_fetch_add(&R.exited, 1);
    gort_waitgroup_done(&R.wg);
    return NULL;
}

static void bg_main(void *arg)
{
    bg_t *b = arg;
    uint64_t x = (uint64_t)b->idx;
    while (!atomic_load_explicit(&R.stopping, memory_order_relaxed)) {
        x = spin_work(R.p.bg_iters, x);
        if (atomic_load_explicit(&R.phase, memory_order_relaxed) == PHASE_MEASURE)
            b->chunks_win++;
        gort_preempt_check();
    }
    b->sink = x;
    gort_waitgroup_done(&R.wg);
}

static int sentry_main(void *arg)
{
    (void)arg;
    int n = R.p.nthreads, r;
    if ((r = gort_chan_make(&R.release_ch, 0, 1)) != 0) {
        serr("gort_chan_make: %d", r);
        return 1;
    }
    atomic_store(&R.release_ready, 1);
    if (!pthreads_mode()) {
        for (int i = 0; i < n; i++) {
            if ((r = gort_chan_make(&R.tasks[i].wake_ch, 0, 1)) != 0 ||
                (r = gort_chan_make(&R.tasks[i].intr_ch, 0, 1)) != 0) {
                serr("gort_chan_make: %d", r);
                return 1;
            }
        }
    }
    gort_waitgroup_add(&R.wg, n + R.p.nbg);
    for (int i = 0; i < n; i++) {
        task_t *t = &R.tasks[i];
        if (pthreads_mode()) {
            r = pthread_create(&t->th, NULL, task_pthread, t);
            t->th_started = r == 0;
            r = -r;
        } else {
            r = gort_go(task_go, t);
        }
        if (r != 0) {
            serr("starting task %d: %d", i, r);
            atomic_fetch_add(&R.ready, 1);
            atomic_fetch_add(&R.exited, 1);
            gort_waitgroup_done(&R.wg);
        }
    }
    for (int i = 0; i < R.p.nbg; i++) {
        if ((r = gort_go(bg_main, &R.bgs[i])) != 0) {
            serr("starting background goroutine %d: %d", i, r);
            gort_waitgroup_done(&R.wg);
        }
    }
    gort_waitgroup_wait(&R.wg);
    gort_chan_recv(R.release_ch, NULL, NULL);
    for (int i = 0; i < n; i++) {
        if (R.tasks[i].wake_ch)
            gort_chan_free(R.tasks[i].wake_ch);
        if (R.tasks[i].intr_ch)
            gort_chan_free(R.tasks[i].intr_ch);
        R.tasks[i].wake_ch = R.tasks[i].intr_ch = NULL;
    }
    gort_chan_free(R.release_ch);
    R.release_ch = NULL;
    return 0;
}

void *sentry_runtime_thread(void *arg)
{
    (void)arg;
    gort_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.gomaxprocs = R.p.gomaxprocs;
    cfg.flags = GORT_CONFIG_NO_DEADLOCK_CHECK; /* pthread tasks wake the main goroutine */
    cfg.dedicated_spin_ns = R.p.dedicated_spin_ns;
    int r = gort_main(sentry_main, NULL, &cfg);
    if (r != 0)
        serr("gort_main returned %d (%s)", r, r < 0 ? gort_strerror(r) : "main failed");
    atomic_store(&R.returned, 1);
    return NULL;
}

/* ---- driver interface ---- */

int sentry_prepare(shm_t *shm, const sentry_params_t *p)
{
    memset(&R, 0, sizeof R);
    R.p = *p;
    R.shm = shm;
    int n = p->nthreads;
    R.tasks = aligned_alloc(64, sizeof(task_t) * (size_t)n);
    R.buckets = aligned_alloc(64, sizeof(fbucket_t) * NBUCKETS);
    R.npipes = p->workload == WL_C ? n - 1 : 0;
    R.pipes = R.npipes ? aligned_alloc(64, sizeof(spipe_t) * (size_t)R.npipes) : NULL;
    R.bgs = p->nbg ? aligned_alloc(64, sizeof(bg_t) * (size_t)p->nbg) : NULL;
    if (!R.tasks || !R.buckets || (R.npipes && !R.pipes) || (p->nbg && !R.bgs))
        return -ENOMEM;
    memset(R.tasks, 0, sizeof(task_t) * (size_t)n);
    for (int i = 0; i < n; i++) {
        task_t *t = &R.tasks[i];
        t->idx = i;
        t->slot = &shm->slots[i];
        t->w.task = t;
        t->scratch = calloc((size_t)n, sizeof *t->scratch);
        if (!t->scratch)
            return -ENOMEM;
    }
    for (int i = 0; i < NBUCKETS; i++) {
        slock_init(&R.buckets[i].lock);
        wq_init(&R.buckets[i].q);
    }
    for (int i = 0; i < R.npipes; i++) {
        spipe_t *sp = &R.pipes[i];
        memset(sp, 0, sizeof *sp);
        slock_init(&sp->lock);
        wq_init(&sp->readers);
        wq_init(&sp->writers);
    }
    if (p->nbg) {
        memset(R.bgs, 0, sizeof(bg_t) * (size_t)p->nbg);
        for (int i = 0; i < p->nbg; i++)
            R.bgs[i].idx = i;
    }
    gort_waitgroup_init(&R.wg);
    return 0;
}

int sentry_tasks_ready(void)
{
    return atomic_load(&R.ready);
}

int sentry_tasks_exited(void)
{
    return atomic_load(&R.exited);
}

void sentry_set_phase(int phase)
{
    atomic_store(&R.phase, phase);
}

void sentry_interrupt_all(void)
{
    atomic_store(&R.stopping, 1);
    for (int i = 0; i < R.p.nthreads; i++)
        if (atomic_load_explicit(&R.tasks[i].state, memory_order_relaxed) != ST_EXITED)
            task_interrupt(&R.tasks[i]);
}

int sentry_runtime_returned(void)
{
    return atomic_load(&R.returned);
}

void sentry_release_main(void)
{
    if (atomic_load(&R.release_ready))
        gort_chan_try_send(R.release_ch, NULL);
}

void sentry_dump(void)
{
    fprintf(stderr, "sentry: mode %s, %d tasks, %d ready, %d exited\n", sentry_mode_names[R.p.mode],
            R.p.nthreads, atomic_load(&R.ready), atomic_load(&R.exited));
    for (int i = 0; i < R.p.nthreads; i++) {
        task_t *t = &R.tasks[i];
        int st = atomic_load(&t->state);
        if (st == ST_EXITED)
            continue;
        fprintf(stderr, "  task %d: %s, handled %llu, req bell %u, rep bell %u, queued %d\n", i,
                st_names[st], (unsigned long long)t->handled, atomic_load(&t->slot->req),
                atomic_load(&t->slot->rep), (int)t->w.queued);
    }
}

void sentry_finish(sentry_result_t *res)
{
    memset(res, 0, sizeof *res);
    for (int i = 0; i < R.p.nthreads; i++) {
        task_t *t = &R.tasks[i];
        if (t->th_started)
            pthread_join(t->th, NULL);
        res->handled += t->handled;
        res->task_migr_win += t->migr_win;
        res->task_mchg_win += t->mchg_win;
        res->futex_waits_woken += t->waits_woken;
        res->futex_woken += t->woken;
        free(t->scratch);
    }
    for (int i = 0; i < R.p.nbg; i++)
        res->bg_chunks_win += R.bgs[i].chunks_win;
    res->npipes = R.npipes;
    for (int i = 0; i < R.npipes; i++) {
        res->pipe_in[i] = R.pipes[i].in;
        res->pipe_out[i] = R.pipes[i].out;
        res->pipe_left[i] = R.pipes[i].len;
        pthread_mutex_destroy(&R.pipes[i].lock.pm);
    }
    for (int i = 0; i < NBUCKETS; i++)
        pthread_mutex_destroy(&R.buckets[i].lock.pm);
    res->errors = atomic_load(&R.errors);
    snprintf(res->err, sizeof res->err, "%s", R.err);
    free(R.tasks);
    free(R.buckets);
    free(R.pipes);
    free(R.bgs);
    R.tasks = NULL;
    R.buckets = NULL;
    R.pipes = NULL;
    R.bgs = NULL;
}
