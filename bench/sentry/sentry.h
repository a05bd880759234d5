/*
 * sentry.h - a model of gVisor's sentry, shared by its three parts:
 *
 *   app.c     the application: plain pthreads running a workload, in a child
 *             process (or in-process with --inproc), that make "system calls"
 *             by writing a request into a shared slot and ringing a doorbell;
 *   sentry.c  the sentry: one task per application thread (a gort goroutine
 *             in one of five modes, or a pthread in the baseline) that waits
 *             for its thread's next request, emulates the call (getpid,
 *             futex wait/wake, pipe read/write) and replies;
 *   main.c    the driver: runs every mode on every workload, interleaved,
 *             R times; report.c prints the tables, the CSV and the SVG.
 *
 * Shared memory. One MAP_SHARED anonymous region (shm_t), mapped before the
 * child is forked (and before any thread exists), holds everything both
 * processes touch: the control block, one slot per application thread, the
 * application's own memory (the futex words of the ping-pong pairs) and the
 * application threads' statistics. Nothing in it holds a pointer: the
 * emulated futex is keyed by the word's offset in the region, as a real
 * sandbox keys it by the application's address.
 *
 * Doorbells. A request and its reply each travel through a 32-bit futex word
 * with three states: EMPTY (nobody waits, nothing posted), SLEEPING (the
 * receiver is in FUTEX_WAIT on it) and POSTED. The sender writes the
 * message, then exchanges the word to POSTED and issues FUTEX_WAKE only if
 * it was SLEEPING; the receiver spins a bounded number of times, then CASes
 * EMPTY to SLEEPING and sleeps, and consumes a message by storing EMPTY.
 * The futexes are process-shared (no FUTEX_PRIVATE_FLAG). This is the shape
 * of gVisor's systrap handshake (a state word, spin, then futex).
 *
 * Sequence numbers. The application numbers its requests per slot (1, 2,
 * ...); the task checks that each request is the previous one plus one and
 * echoes the number in its reply, which the application checks. Together
 * with the counts each side keeps, this proves every request was answered
 * exactly once.
 */
#ifndef SENTRY_H
#define SENTRY_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>

#define SENTRY_MAX_THREADS 1024
#define SLOT_DATA          256 /* bytes of call data (pipe buffers) per slot */
#define PIPE_CAP           4096
#define PIPE_MSG           128 /* bytes per producer write */

/* Emulated system calls. */
enum {
    OP_NONE = 0,
    OP_GETPID,     /* returns SENTRY_PID_BASE + the thread's index */
    OP_FUTEX_WAIT, /* a0: word offset, a1: expected value; 0, -EAGAIN, -EINTR */
    OP_FUTEX_WAKE, /* a0: word offset, a1: max waiters; number woken */
    OP_PIPE_READ,  /* a0: pipe, a1: max bytes (into slot data); bytes or -EINTR */
    OP_PIPE_WRITE, /* a0: pipe, a1: bytes (from slot data); bytes or -EINTR */
    OP_EXIT,       /* the thread is done; the task replies and ends */
};
#define SENTRY_PID_BASE 100000

/* Workloads. */
enum {
    WL_A, /* syscall-heavy: getpid answered at once */
    WL_B, /* pairs ping-ponging through an emulated futex */
    WL_C, /* a pipe producer -> forwarders -> consumer chain */
    WL_D, /* WL_A with many threads (a sweep) */
    WL_E, /* WL_B plus background CPU goroutines */
    WL_COUNT
};

/* Task modes. */
enum {
    MODE_RAW,       /* gort_syscall(GORT_SYSCALL_RAW) around the wait: keeps the P */
    MODE_LAZY,      /* gort_entersyscall / gort_exitsyscall */
    MODE_EAGER,     /* gort_entersyscallblock / gort_exitsyscall */
    MODE_LOCKED,    /* gort_lock_os_thread + lazy */
    MODE_DEDICATED, /* gort_dedicate_os_thread + lazy (the P is kept anyway) */
    MODE_PTHREADS,  /* the sentry rewritten on plain pthreads */
    MODE_COUNT
};

/* Doorbell states. */
enum { BELL_EMPTY = 0, BELL_SLEEPING = 1, BELL_POSTED = 2 };

/* Run phases (ctl_t.phase): the application threads record only in MEASURE
 * and stop (send OP_EXIT) at STOP. */
enum { PHASE_WARMUP = 0, PHASE_MEASURE = 1, PHASE_STOP = 2 };

/* Commands to the application host (ctl_t.cmd_kind). */
enum { CMD_RUN = 1, CMD_QUIT = 2 };

/* Latency histogram: exact below 64 ns, then 32 buckets per power of two
 * (3 % resolution), up to 2^41 ns. */
#define HIST_SUB 32
#define HIST_N   (64 + 35 * HIST_SUB)

/* One application thread's call slot. The request half is written by the
 * application, the reply half by the task; each half is published by its
 * doorbell. */
typedef struct slot {
    _Alignas(64) _Atomic uint32_t req; /* doorbell: application -> task */
    uint32_t op;
    uint64_t seq;
    int64_t a0, a1;
    _Alignas(64) _Atomic uint32_t rep; /* doorbell: task -> application */
    uint64_t rep_seq;
    int64_t ret;
    _Alignas(64) uint8_t data[SLOT_DATA];
} slot_t;

/* The application threads' statistics, written by each thread, read by the
 * driver after the thread has exited. "win" counts cover the MEASURE phase
 * only; the others the whole run. */
typedef struct app_stat {
    uint64_t ops_win;    /* system calls started in MEASURE */
    uint64_t ops_total;  /* every call, OP_EXIT included */
    uint64_t lat_max_ns; /* worst call in MEASURE */
    uint64_t migr_win;   /* sched_getcpu changes between calls, in MEASURE */
    uint64_t errors;     /* protocol or emulation inconsistencies seen */
    uint64_t turns;      /* ping-pong turns taken */
    uint64_t wait_calls; /* FUTEX_WAIT calls ... */
    uint64_t wait_ok;    /* ... that returned 0 (woken) */
    uint64_t wait_again; /* ... -EAGAIN (value changed) */
    uint64_t wait_intr;  /* ... -EINTR (interrupted at the end) */
    uint64_t wake_calls; /* FUTEX_WAKE calls */
    uint64_t wake_woken; /* the sum of their results */
    uint64_t bytes_out;  /* pipe bytes written */
    uint64_t bytes_in;   /* pipe bytes read */
    uint64_t bytes_lost; /* forwarded bytes dropped when a write was interrupted */
    uint64_t sum_out;    /* checksum of the bytes written (producer) */
    uint64_t sum_in;     /* checksum of the bytes read (consumer) */
    uint32_t hist[HIST_N];
} app_stat_t;

/* One ping-pong pair's memory: application memory, the futex word is the
 * emulated futex's key. */
typedef struct pair {
    _Alignas(64) _Atomic uint32_t turn; /* 0 or 1: whose turn */
    uint64_t count;                     /* turns taken by both, guarded by turn */
} pair_t;

/* What the driver tells the application host about a run. */
typedef struct run_cfg {
    int workload;
    int nthreads;
    uint32_t app_spin;   /* doorbell spin iterations before FUTEX_WAIT */
    uint64_t work_iters; /* application work between calls (calibrated loop) */
} run_cfg_t;

typedef struct ctl {
    _Alignas(64) _Atomic uint32_t cmd; /* futex: bumped by the driver per command */
    uint32_t cmd_kind;
    run_cfg_t cfg;
    _Alignas(64) _Atomic uint32_t done;      /* futex: the host sets it to cmd when done */
    _Alignas(64) _Atomic uint32_t phase;     /* futex: PHASE_*, written by the driver */
    _Alignas(64) _Atomic uint32_t phase_ack; /* futex: phase whose rusage the host took */
    struct rusage ru_start, ru_stop;         /* the host process, at MEASURE and STOP */
    _Atomic int apps_started;
    _Atomic int apps_exited;
    _Atomic int err_claimed;
    char err[256]; /* the first error the application side saw */
} ctl_t;

typedef struct shm {
    ctl_t ctl;
    pair_t pairs[SENTRY_MAX_THREADS / 2];
    slot_t slots[SENTRY_MAX_THREADS];
    app_stat_t stats[SENTRY_MAX_THREADS];
} shm_t;

/* ---- small shared helpers ---- */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Process-shared futex calls (no FUTEX_PRIVATE_FLAG). Return 0 or -errno. */
static inline long futex_wait_shared(_Atomic uint32_t *w, uint32_t val, int64_t timeout_ns)
{
    struct timespec ts, *tp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000;
        ts.tv_nsec = timeout_ns % 1000000000;
        tp = &ts;
    }
    long r = syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, val, tp, NULL, 0);
    return r < 0 ? -(long)errno : r;
}

static inline void futex_wake_shared(_Atomic uint32_t *w, int n)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, n, NULL, NULL, 0);
}

/* Posts a doorbell: the message must be written before. */
static inline void bell_ring(_Atomic uint32_t *w)
{
    if (atomic_exchange_explicit(w, BELL_POSTED, memory_order_acq_rel) == BELL_SLEEPING)
        futex_wake_shared(w, 1);
}

/* Spins up to spin times for a posted doorbell; true if it is posted. */
static inline bool bell_spin(_Atomic uint32_t *w, uint32_t spin)
{
    for (uint32_t i = 0; i < spin; i++) {
        if (atomic_load_explicit(w, memory_order_acquire) == BELL_POSTED)
            return true;
        cpu_relax();
    }
    return atomic_load_explicit(w, memory_order_acquire) == BELL_POSTED;
}

/* One sleep on a doorbell (after the spin): returns true if it is posted,
 * false after a wake-up or timeout without it (the caller loops). */
static inline bool bell_sleep_once(_Atomic uint32_t *w, int64_t timeout_ns)
{
    uint32_t v = atomic_load_explicit(w, memory_order_acquire);
    if (v == BELL_POSTED)
        return true;
    if (v == BELL_EMPTY && !atomic_compare_exchange_strong_explicit(
                               w, &v, BELL_SLEEPING, memory_order_acq_rel, memory_order_acquire))
        return v == BELL_POSTED;
    futex_wait_shared(w, BELL_SLEEPING, timeout_ns);
    return atomic_load_explicit(w, memory_order_acquire) == BELL_POSTED;
}

/* Consumes a posted doorbell. */
static inline void bell_consume(_Atomic uint32_t *w)
{
    atomic_store_explicit(w, BELL_EMPTY, memory_order_relaxed);
}

/* The application's work between calls: a dependent multiply chain that
 * the compiler cannot remove (about 1 ns per iteration; calibrated). */
static inline uint64_t spin_work(uint64_t iters, uint64_t x)
{
    for (uint64_t i = 0; i < iters; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        __asm__ __volatile__("" : "+r"(x));
    }
    return x;
}

/* The byte at position pos of the pipe producer's stream. */
static inline uint8_t stream_byte(uint64_t pos)
{
    uint64_t z = (pos >> 3) + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (uint8_t)(z >> (8 * (pos & 7)));
}

/* A position-dependent checksum step (order matters). */
static inline uint64_t sum_step(uint64_t sum, uint8_t b)
{
    return (sum ^ b) * 0x100000001b3ULL;
}

static inline int hist_bucket(uint64_t v)
{
    if (v < 64)
        return (int)v;
    int e = 63 - __builtin_clzll(v);
    int b = 64 + (e - 6) * HIST_SUB + (int)((v >> (e - 5)) & (HIST_SUB - 1));
    return b < HIST_N ? b : HIST_N - 1;
}

/* The middle of bucket b, in ns. */
static inline double hist_value(int b)
{
    if (b < 64)
        return b;
    int e = (b - 64) / HIST_SUB + 6, sub = (b - 64) % HIST_SUB;
    double lo = (double)((uint64_t)(HIST_SUB + sub) << (e - 5));
    return lo + (double)((uint64_t)1 << (e - 5)) / 2;
}

/* Records an application-side error (first message kept). */
void app_error(shm_t *shm, app_stat_t *st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The application host: serves CMD_RUN commands until CMD_QUIT. Runs in the
 * forked child, or in a pthread with --inproc (then it takes no rusage). */
void app_host_serve(shm_t *shm, bool inproc);

/* ---- the sentry (sentry.c) ---- */

typedef struct sentry_params {
    int mode;
    int workload;
    int nthreads;
    int nbg;                   /* background CPU goroutines */
    int gomaxprocs;            /* gort_config_t.gomaxprocs */
    int64_t dedicated_spin_ns; /* gort_config_t.dedicated_spin_ns */
    uint32_t task_spin;        /* task doorbell / pthread event spin iterations */
    int64_t raw_quantum_ns;    /* raw mode: the task yields its P after this */
    uint64_t bg_iters;         /* one background work chunk */
    int inject;                /* INJECT_*: break the emulation once (tests the checks) */
} sentry_params_t;

/* Deliberate faults (--inject), to show that the smoke test's checks catch
 * them: a reply with the wrong sequence number, a FUTEX_WAKE that reports one
 * waiter too many, a corrupted pipe byte. */
enum { INJECT_NONE, INJECT_SEQ, INJECT_FUTEX, INJECT_PIPE };

/* Results of the sentry side of one run. */
typedef struct sentry_result {
    uint64_t handled;       /* requests handled (all phases) */
    uint64_t task_migr_win; /* task sched_getcpu changes between requests, MEASURE */
    uint64_t task_mchg_win; /* task thread changes between requests, MEASURE */
    uint64_t bg_chunks_win; /* background chunks done in MEASURE */
    uint64_t futex_waits_woken;
    uint64_t futex_woken; /* sum of FUTEX_WAKE results */
    uint64_t pipe_in[SENTRY_MAX_THREADS], pipe_out[SENTRY_MAX_THREADS],
        pipe_left[SENTRY_MAX_THREADS];
    int npipes;
    uint64_t errors;
    char err[256];
} sentry_result_t;

/* Prepares a run (allocates tasks, pipes, the futex table); shm->slots
 * must be zeroed by the caller. Returns 0 or -errno. */
int sentry_prepare(shm_t *shm, const sentry_params_t *p);
/* The runtime thread: runs gort_main with the tasks (all modes: the
 * pthreads baseline runs its background goroutines there too). */
void *sentry_runtime_thread(void *arg);
/* Tasks that have started and are about to wait for their first request. */
int sentry_tasks_ready(void);
int sentry_tasks_exited(void);
/* Sets the MEASURE flag seen by tasks and background goroutines. */
void sentry_set_phase(int phase);
/* Stop: marks the run stopping and interrupts every task blocked in an
 * emulated wait (idempotent; the driver repeats it until all tasks end). */
void sentry_interrupt_all(void);
/* After the tasks have ended: lets the main goroutine return. */
void sentry_release_main(void);
/* Whether gort_main has returned. */
int sentry_runtime_returned(void);
/* After gort_main returned: joins pthread tasks, fills *res, frees. */
void sentry_finish(sentry_result_t *res);
/* Diagnostic dump of task states (hangs). */
void sentry_dump(void);
extern const char *const sentry_mode_names[MODE_COUNT];

#endif /* SENTRY_H */
