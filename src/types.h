/*
 * types.h - every core struct and state of the runtime (gort's runtime2.go).
 *
 * The model is Go's: a G is a goroutine (a stack and a saved context), an M
 * is an OS thread, a P is the right to run goroutines. An M needs a P to run
 * a G; there are exactly gomaxprocs Ps, so at most gomaxprocs goroutines run
 * at once. Each P has a local run queue; the global run queue, the idle-P
 * list and the idle-M list live in `sched` under sched.lock.
 *
 * Ownership rules (read before touching any field):
 *  - A G's fields belong to whoever owns the G: the M running it
 *    (Grunning), the queue it sits on (Grunnable: only the owner of the
 *    queue may touch schedlink), or the wait structure it is parked on
 *    (Gwaiting: whoever readies it). `atomicstatus` is the hand-off point
 *    and is always accessed atomically.
 *  - A P's fields belong to the M that holds it (p->m), except the run
 *    queue head and runnext (stolen by other Ps with CAS), `status` (read by
 *    anyone; changed by the holder or, for idle Ps, under sched.lock) and
 *    the statistics counters (written by the holder only with relaxed atomic
 *    stores, read by anyone).
 *  - An M's fields belong to the thread itself, except `park` (woken by
 *    others), `nextp` and `spinning` (set by startm under sched.lock before
 *    the wake-up; the wake-up is the release/acquire point), and schedlink
 *    (sched.lock).
 *
 * Lock order (lower first): sched.lock -> allglock; waitgroup locks are
 * leaves and may be taken with no runtime lock held only. stackpool locks are
 * leaves. Semaphore and notify-list locks (sema.c) are leaves, taken with no
 * other lock held and dropped before gort__ready.
 */
#ifndef GORT_TYPES_H
#define GORT_TYPES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gort.h"

/* ---- locks and notes (lock.c, futex.c) ---- */

/* A runtime mutex: 0 unlocked, 1 locked, 2 locked with sleepers (Go's
 * lock_futex.go). Held only for short critical sections; never held across a
 * goroutine switch. */
typedef struct gort__mutex {
    _Atomic uint32_t key;
} gort__mutex_t;

/* A one-shot event an M sleeps on (Go's note). One sleeper, one waker:
 * notewakeup twice without a clear is a fatal error. */
typedef struct gort__note {
    _Atomic uint32_t key;
} gort__note_t;

/* ---- runtime semaphore and notify list (sema.c) ---- */

/* A goroutine blocked in gort__semacquire1 or gort__notifyListWait (the part
 * of Go's sudog those use). It lives on the waiting goroutine's stack: the
 * waiter fills it and links it in under the queue's lock, then parks with an
 * unlockf that drops the lock. Whoever unlinks it (under the lock) may read
 * and write it until it calls gort__ready(g), and never after. */
typedef struct gort__semawaiter {
    struct gort__g *g;
    struct gort__semawaiter *next; /* queue link; the queue's lock */
    /* sema: 1 if the releaser handed its unit over (semrelease1 handoff);
     * notify list: the waiter's ticket. Written before gort__ready. */
    uint32_t ticket;
} gort__semawaiter_t;

/* Go's runtime semaphore with its own wait queue (Go hashes the address into
 * a table of treaps instead; see sema.c). count is the semaphore value.
 * nwait is the number of waiters queued or about to queue: changed under
 * lock, read without it by semrelease1 to skip the lock. The queue (head,
 * tail) is protected by lock, a leaf. All-zero is a valid semaphore. */
typedef struct gort__sema {
    _Atomic uint32_t count;
    _Atomic uint32_t nwait;
    gort__mutex_t lock;
    uint32_t pad;
    gort__semawaiter_t *head;
    gort__semawaiter_t *tail;
} gort__sema_t;

/* Go's notifyList, the ticket queue of sync.Cond. wait: next ticket to hand
 * out (atomic, taken without the lock); notify: next ticket to notify
 * (written under lock, read without it). The list is protected by lock, a
 * leaf. All-zero is a valid list. */
typedef struct gort__notifylist {
    _Atomic uint32_t wait;
    _Atomic uint32_t notify;
    gort__mutex_t lock;
    uint32_t pad;
    gort__semawaiter_t *head;
    gort__semawaiter_t *tail;
} gort__notifylist_t;

/* ---- goroutine status (Go's _G* values) ---- */
enum gort__gstatus {
    Gidle = 0,     /* just allocated, not yet initialised */
    Grunnable = 1, /* on a run queue; owned by the queue; not running */
    Grunning = 2,  /* running on an M that holds a P; owned by that M */
    Gsyscall = 3,  /* in a system call (issue 4) */
    Gwaiting = 4,  /* parked; owned by the wait structure it is on */
    Gdead = 6,     /* exited or unused; on a free list, owned by the list */
};

/* Why a goroutine is parked (Go's waitReason). Keep in step with
 * gort__waitreason_strings in debug.c. */
enum gort__waitreason {
    waitReasonZero = 0,
    waitReasonWaitGroupWait,
    waitReasonChanSend,
    waitReasonChanReceive,
    waitReasonSelect,
    waitReasonSleep,
    waitReasonSyncMutexLock,
    waitReasonSyncCondWait,
    waitReasonSemacquire,
    waitReasonSyncRWMutexRLock,
    waitReasonSyncRWMutexLock,
    waitReasonTest,
    waitReasonStopTheWorld,
    waitReasonIOWait,
    waitReasonCount
};

/* A dedicated M's futex word (m->dstate). */
enum { DSTATE_RUNNING = 0, DSTATE_SLEEPING = 1 };

/* ---- P status (Go's _P* values) ---- */
enum gort__pstatus {
    Pidle = 0,    /* on sched.pidle or being handed over; no M */
    Prunning = 1, /* owned by an M (p->m); only that M changes it */
    Psyscall = 2, /* its M is in a lazy syscall (entersyscall): not owned by
                     it but with affinity to it; leaving this state is a CAS
                     (exitsyscallfast, or sysmon retake) */
    Pgcstop = 3,  /* stopped by stop-the-world (stw.c): no M; keeps its run
                     queue and timers; only startTheWorld (procresize)
                     changes it back, under sched.lock */
    Pdead = 4,    /* not in use */
};

/* A goroutine stack: [lo, hi) usable, guard page(s) just below lo. */
typedef struct gort__stack {
    uintptr_t lo;
    uintptr_t hi;
    uint32_t cls;   /* size class index in stack.c, or STACK_CLASS_LARGE */
    uint32_t kind;  /* how the guard was made: STACK_GUARD_* in stack.c */
    uint32_t vg_id; /* valgrind stack id (san.h), 0 when not registered */
} gort__stack_t;

struct gort__m;
struct gort__p;

/* A runtime timer (Go's runtime.timer), on at most one P's heap.
 * `when`, `period` and `idx` are protected by the timerslock of the P whose
 * heap holds the timer (`pp`); `pp` changes only under that lock. `running`
 * counts firings in progress (f is called without any lock); deltimer waits
 * for it to drop to zero, so once deltimer returns nothing touches the timer.
 * The release decrement after f pairs with the acquire load in deltimer. */
typedef struct gort__timer {
    int64_t when;   /* monotonic ns */
    int64_t period; /* > 0: re-armed at when + period before f runs */
    /* Runs on g0 of an M holding a P, with no runtime lock held. */
    void (*f)(struct gort__timer *t, int64_t now);
    void *arg;
    _Atomic(struct gort__p *) pp;
    int32_t idx;
    _Atomic uint32_t running;
} gort__timer_t;

/* Per-P counters: written by the P's holder with relaxed atomic
 * load+store (no RMW on the fast path), summed by gort_stats_get. */
/* A latency histogram: bucket b counts samples in [2^(b-1), 2^b) ns
 * (bucket 0: 0 ns). Written by one thread (the P's holder) with relaxed
 * single-writer updates, read by gort_stats_get. */
#define GORT__LAT_BUCKETS 48
typedef struct gort__lathist {
    _Atomic uint64_t b[GORT__LAT_BUCKETS];
    _Atomic uint64_t max;
} gort__lathist_t;

typedef struct gort__pstats {
    _Atomic uint64_t goroutines_created;
    _Atomic uint64_t goroutines_exited;
    _Atomic uint64_t switches;
    _Atomic uint64_t switches_direct; /* of which switch_direct (sched.c) */
    _Atomic uint64_t steal_tries;
    _Atomic uint64_t steal_successes;
    _Atomic uint64_t steal_gs;
    /* Runnable-to-running of sampled wake-ups (normal Ps), wake-to-run of
     * dedicated goroutines (dedicated Ps). */
    gort__lathist_t lat;
    uint32_t latsample; /* sampling counter; holder */
} gort__pstats_t;

/* Per-M counters: written by the M itself, relaxed. */
typedef struct gort__mstats {
    _Atomic uint64_t parked;
    _Atomic uint64_t woken; /* counted by the waker (startm), on the waker's M */
    _Atomic uint64_t spinning;
    _Atomic uint64_t futex_sleeps;
    _Atomic uint64_t futex_wakes;
    _Atomic uint64_t syscalls_lazy;
    _Atomic uint64_t syscalls_eager;
    _Atomic uint64_t syscalls_raw;
    _Atomic uint64_t syscall_fast_exits;
    _Atomic uint64_t syscall_slow_exits;
    _Atomic uint64_t handoffs;
    _Atomic uint64_t startlockedm;
    _Atomic uint64_t stoplockedm;
    _Atomic uint64_t preempts_sync;  /* a G yielded at a runtime call */
    _Atomic uint64_t preempts_async; /* a G was switched out by the signal */
    _Atomic uint64_t dedicate_calls;
    _Atomic uint64_t undedicate_calls;
    _Atomic uint64_t ded_spin_catches;   /* the G became runnable while we spun */
    _Atomic uint64_t ded_futex_sleeps;   /* a dedicated M slept on dstate */
    _Atomic uint64_t ded_threads_reused; /* dedicate needed no new thread */
    _Atomic uint64_t timer_spins;        /* the timer sleeper spun (sched.c) */
    _Atomic uint64_t timer_spin_catches; /* ... until the timer was due */
} gort__mstats_t;

typedef struct gort__g {
    /* Saved stack pointer while not running (see arch/ctx.h). Written by
     * the switch away from this G, read by the switch back. */
    void *sched_sp;
    /* enum gort__gstatus; atomic. Transitions are made by the owner
     * (see the file comment) and published with release stores that pair
     * with the acquire loads in casgstatus and findrunnable. */
    _Atomic uint32_t atomicstatus;
    uint8_t waitreason; /* enum gort__waitreason; owned by the G while parked */
    bool is_main;       /* the main goroutine: returning ends gort_main */
    uint64_t goid;      /* set at spawn by the spawning M */
    gort_fn fn;         /* entry point; owned by the G */
    void *arg;
    gort__stack_t stack;       /* owned by whoever owns the G */
    struct gort__g *schedlink; /* next on a run queue or free list; queue owner */
    struct gort__m *m;         /* M running this G; owned by that M */
    struct gort__g *alllink;   /* allgs list; protected by allglock */
    void *param;               /* value handed over by goready's caller */
    /* When it parked, on sysmon's coarse clock (trace.c dumps); the G. */
    int64_t waitsince;
    /* Latency sampling (GORT_LATENCY_STATS): when a sampled wake-up made
     * it runnable (0: not sampled). Written by the waker before it
     * publishes the G, read and cleared by the M that runs it. */
    int64_t readyat;
    /* Dedicated G: wake-ups so far, to time one in 16 of those that need no
     * futex wake (ready_dedicated). Written only by its wakers, which the
     * G's status hand-over orders one after another. */
    uint32_t latsample;
    /* select: 0 while waiting; the first waker to CAS it to 1 wins (Go's
     * g.selectDone). Pairs (acq_rel CAS) between competing wakers. */
    _Atomic uint32_t selectdone;
    struct gort__g *waitlink; /* next waiter on a wait structure; its lock */
    /* The M this G is locked to (LockOSThread), or NULL; written by the G
     * itself while running, read by schedulers that pick it up. */
    struct gort__m *lockedm;
    /* Preemption request: set by sysmon (relaxed), cleared by the G at its
     * next runtime call (gort__preempt_check) or by the signal handler. */
    _Atomic bool preempt;
    /* The G declared itself async-preemptible (gort_preemptible_begin):
     * sysmon may interrupt it with a signal. Written by the G; read by the
     * signal handler on the same thread and by sysmon (relaxed). */
    _Atomic bool preemptible;
    /* Dedicated (DedicateOSThread): set and cleared by the G itself while
     * running; read by wakers in gort__ready (after they own the wake-up). */
    bool dedicated;
    /* Sanitizer fiber state (san.h); owned by the G. */
    void *tsan_fiber;
    void *asan_fake_stack;
} gort__g_t;

/* A P's local run queue size (Go: 256). */
#define GORT__RUNQ_SIZE 256u

typedef struct gort__p {
    int32_t id;
    /* A dedicated P (dedicate.c): not counted in GOMAXPROCS, never in
     * allp[], never stolen from, never retaken; immutable. */
    bool dedicated;
    /* The only P (GOMAXPROCS is 1): no thief ever touches its run queue, so
     * its holder uses plain loads and stores where thieves would need an
     * atomic read-modify-write (runq.c). Written with the world stopped
     * (gort__setsolo), read by the holder. */
    bool solo;
    struct gort__p *dlink; /* dedicated-P free list; rt.dedlock */
    struct gort__p *dall;  /* every dedicated P of the run; rt.dedlock */
    /* The G this dedicated P belongs to, NULL while free; rt.dedlock (set
     * by dpget, cleared by dpput). checkdead reads its status. */
    struct gort__g *dedg;
    _Atomic uint32_t status; /* enum gort__pstatus; see the file comment */
    struct gort__p *link;    /* sched.pidle list; protected by sched.lock */
    /* Incremented on every non-inherited execute / syscall enter and exit by
     * the holder; read by sysmon (relaxed). */
    _Atomic uint32_t schedtick;
    _Atomic uint32_t syscalltick;
    /* sysmon's last observation of this P (Go's sysmontick); sysmon only. */
    struct {
        uint32_t schedtick;
        int64_t schedwhen;
        uint32_t syscalltick;
        int64_t syscallwhen;
    } sysmontick;
    /* Back-link to the holding M (NULL when idle or in a syscall); written
     * by the holder, read by sysmon to preempt (relaxed). */
    _Atomic(struct gort__m *) m;
    uint64_t goidcache; /* next goid to hand out; holder */
    uint64_t goidcacheend;

    /* Lock-free ring: the holder writes runqtail and reads runqhead; thieves
     * CAS runqhead. runq slots are atomics only so TSan sees the publication
     * through runqtail (release) / runqhead (acquire). */
    _Atomic uint32_t runqhead;
    _Atomic uint32_t runqtail;
    _Atomic(gort__g_t *) runq[GORT__RUNQ_SIZE];
    /* The G to run next, ahead of runq; it inherits the current time slice.
     * Holder stores, thieves CAS it to NULL on their last pass. */
    _Atomic(gort__g_t *) runnext;
    /* Bumped by the holder at every runnext put (not on a solo P, which has
     * no thieves); a thief that waited to let the holder run runnext steals
     * only if it did not change meanwhile (runq.c runqgrab). Read relaxed. */
    _Atomic uint32_t runnextgen;

    /* Dead Gs with default-size stacks for reuse (Go's p.gFree); holder. */
    gort__g_t *gfree;
    int32_t gfreecnt;

    /* Per-P stack cache, indexed by size class (stack.c); holder. */
    void *stackcache[8];
    int32_t stackcachecnt[8];

    /* Timers: a 4-ary min-heap on when (Go's p.timers), under timerslock (a
     * leaf lock). timer0when is the earliest when (0: none), written under
     * the lock and read by anyone (relaxed) to decide whether to look. */
    gort__mutex_t timerslock;
    gort__timer_t **timers;
    int32_t ntimers;
    int32_t timerscap;
    _Atomic int64_t timer0when;

    gort__pstats_t stats;
} gort__p_t;

typedef struct gort__m {
    int64_t id;
    gort__g_t g0; /* the thread's own stack; runs schedule() */
    /* The G running on this M, or NULL on g0; written by this M, read
     * relaxed by sysmon and the signal handlers. */
    _Atomic(gort__g_t *) curg;
    gort__p_t *p;         /* the P held, or NULL; owned by this M */
    gort__p_t *oldp;      /* the P held before a lazy syscall; this M */
    uint32_t syscalltick; /* p->syscalltick at entersyscall; this M */
    /* LockOSThread: the G locked to this M and the nesting counts of the
     * user (lockedext) and the runtime (lockedint); this M. */
    gort__g_t *lockedg;
    uint32_t lockedext;
    uint32_t lockedint;
    bool isidlelocked; /* counted in sched.nmidlelocked; sched.lock */
    bool lockedwoken;  /* a wake-up is on its way to this locked M; sched.lock */
    bool exiting;      /* a locked G exited: the thread ends; this M */
    /* DedicateOSThread (dedicate.c). dedicated and dedicatecount are this
     * M's own. dstate is the futex word the dedicated M sleeps on:
     * DSTATE_RUNNING or DSTATE_SLEEPING; the sleeper's seq_cst CAS to
     * SLEEPING and its reload of the G's status pair with the waker's
     * seq_cst status store and load of dstate (Dekker): one of them sees the
     * other, so a wake-up is never lost and costs at most one futex wake. */
    bool dedicated;
    uint32_t dedicatecount;
    _Atomic uint32_t dstate;
    int64_t spin_ns; /* adaptive spin budget before sleeping; this M */
    /* Counted in dedcount.ndedrunning: this M's dedicated G is running user
     * code, or parked while this M spins for its wake-up (stw.c
     * dedrun_begin/dedrun_end); this M only. */
    bool dedrunning;
    /* Set by gort__newosproc once the thread exists (1) or could not be
     * made (2); a creator that needs to know waits for it (release store,
     * acquire load). */
    _Atomic int osproc_state;
    gort__p_t *nextp;          /* P handed over by startm; set under sched.lock before park wake */
    _Atomic bool spinning;     /* looking for work; set by startm or by findrunnable */
    gort__note_t park;         /* stopm sleeps here; startm wakes it */
    struct gort__m *schedlink; /* sched.midle list; sched.lock */
    struct gort__m *alllink;   /* allm list; sched.lock (append-only while running) */
    pthread_t thread;
    bool is_m0;        /* the thread that called gort_main */
    pid_t procid;      /* kernel thread id */
    uint64_t fastrand; /* per-M random state; owned by this M */
    /* What the G that just parked asked to be done on g0 once it is off its
     * stack (park_m's unlockf); owned by this M. */
    bool (*waitunlockf)(gort__g_t *gp, void *arg);
    void *waitlock;
    /* What to do on g0 after the switch: see sched.c mcall. Owned by this M. */
    int mcall_op;
    void *altstack; /* sigaltstack for the stack-overflow handler */
    size_t altstack_size;
    gort__mstats_t stats;
} gort__m_t;

/* The global scheduler state (Go's schedt). */
typedef struct gort__sched {
    gort__mutex_t lock;

    /* Idle Ms: sched.lock. */
    gort__m_t *midle;
    int32_t nmidle;
    int32_t nmidlelocked; /* locked Ms parked in stoplockedm; sched.lock */
    int64_t mnext;        /* next M id; sched.lock */
    int32_t mcount;       /* Ms created and not exited; sched.lock */
    gort__m_t *allm;      /* every M ever created in this run; sched.lock */

    /* Idle Ps: sched.lock for the list; npidle is atomic so wakep and the
     * spinning limit can read it without the lock. */
    gort__p_t *pidle;
    _Atomic int32_t npidle;
    _Atomic int32_t nmspinning; /* Ms spinning; see the protocol in sched.c */

    /* Global run queue: sched.lock. runqsize is also read without the lock
     * as a hint (atomic). */
    gort__g_t *runqhead;
    gort__g_t *runqtail;
    _Atomic int32_t runqsize;
    /* Counters of global-queue traffic; updated under sched.lock, read
     * relaxed by gort_stats_get. */
    _Atomic uint64_t globrunq_puts;
    _Atomic uint64_t globrunq_gets;

    /* Global free Gs: sched.lock (Go uses its own lock; ours is coarse). */
    gort__g_t *gfree;
    _Atomic int32_t ngfree; /* changed under sched.lock; read unlocked as a hint */

    /* The timer sleeper: at most one idle M without a P sleeps until the
     * earliest timer (Go's blocking netpoll with a timeout). timersleeping
     * is claimed with a CAS; sleepuntil is its wake-up time; timerwake is
     * the futex word it sleeps on (set to 1 and woken to poke it earlier). */
    _Atomic int32_t timersleeping;
    _Atomic int64_t sleepuntil;
    _Atomic uint32_t timerwake;

    /* Deadlock detection (checkdead): a suspicion raised under sched.lock
     * is confirmed by sysmon after DEADLOCK_GRACE_NS if no M was woken
     * meanwhile (progress counts M wake-ups; all under sched.lock).
     * foreign_wakers is set once a foreign thread readies a goroutine: from
     * then on nothing can be proven dead. */
    bool deadsuspect;
    int64_t deadsuspect_when;
    uint64_t deadsuspect_progress;
    _Atomic uint64_t progress;
    _Atomic bool foreign_wakers;
    /* Dedicated Ms asleep on their dstate, for checkdead (atomic): raised
     * by the M before it sets dstate SLEEPING, lowered by whoever moves
     * dstate back to RUNNING (the M, or its waker: dedicate.c ded_awake). */
    _Atomic int32_t ndedsleeping;
    /* Futex wakes of dedicated Ms by gort__ready (any thread; atomic). */
    _Atomic uint64_t ded_direct_wakes;

    /* sysmon (sysmon.c): sysmonwait is set under sched.lock when sysmon
     * deep-sleeps on sysmonnote; whoever sees it (entersyscall,
     * exitsyscall) clears it and wakes sysmon. */
    bool sysmonwait;
    gort__note_t sysmonnote;
    /* sysmon's counters; written by sysmon only. */
    _Atomic uint64_t sysmon_wakeups;
    _Atomic uint64_t sysmon_retakes;
    _Atomic uint64_t preempt_requests;
    _Atomic uint64_t preempt_signals;

    /* Stop-the-world (stw.c). stopwait counts the normal Ps still to stop:
     * set and decremented under sched.lock, read by the stopper without it.
     * stopwake is the futex word the stopper sleeps on (bumped by whoever
     * makes the stop complete). stwseq is the futex word dedicated threads
     * wait on for the world to start (bumped at start and at shutdown);
     * nstwwaiters counts them so a start with none makes no syscall
     * (seq_cst, Dekker with the gcwaiting store). stw_dedself is 1 when the
     * stopper itself is a running dedicated goroutine (sched.lock; read by
     * dedrun_end after it saw gcwaiting). newprocs: GOMAXPROCS to apply at
     * the next start (0: keep); worldsema holder only. worldsema
     * serialises stoppers (Go's worldsema). */
    _Atomic int32_t stopwait;
    _Atomic uint32_t stopwake;
    _Atomic uint32_t stwseq;
    _Atomic int32_t nstwwaiters;
    _Atomic int32_t stw_dedself;
    int32_t newprocs;
    gort__sema_t worldsema;
    _Atomic uint64_t stw_count;     /* worldsema holder */
    _Atomic uint64_t stw_ded_waits; /* dedicated threads that waited for a start */
    _Atomic uint64_t procresizes;   /* worldsema holder */

    /* Shutdown: set when the main goroutine returns; read by every M in
     * schedule(). Release store pairs with the acquire loads there. */
    _Atomic bool shutdown;
} gort__sched_t;

/* Everything one gort_main run owns. */
typedef struct gort__rt {
    gort__sched_t sched;
    /* allp has room for GORT_MAXPROCS_MAX Ps; [0, gomaxprocs) are in use,
     * [gomaxprocs, nallp) are Pdead and kept (an M in a syscall may still
     * point at one). Entries are published with seq_cst stores before
     * gomaxprocs grows over them, so readers without a lock (sysmon, the
     * timer sleeper, stats) that load gomaxprocs then allp[i] always find a
     * P. gomaxprocs and coprimes change only with the world stopped
     * (procresize); nallp grows under allplock (a leaf). */
    _Atomic(gort__p_t *) *allp;
    _Atomic int32_t gomaxprocs;
    _Atomic int32_t nallp;
    gort__mutex_t allplock;
    size_t stack_size; /* default stack size */
    /* Idle-P bitmask, 1 bit per P: a hint for stealing (Go's idlepMask). */
    _Atomic uint64_t *idlepmask;
    /* Random steal order (Go's stealOrder): count and coprimes. */
    uint32_t ncoprimes;
    uint32_t coprimes[GORT_MAXPROCS_MAX];

    gort__mutex_t allglock;   /* protects allgs */
    gort__g_t *allgs;         /* every G ever allocated this run */
    _Atomic uint64_t ngs;     /* live goroutines (created - exited) */
    _Atomic uint64_t goidgen; /* next batch of goids */

    gort__g_t *maing;
    int mainstatus;        /* main's return value; written by main G before shutdown */
    gort__note_t mainnote; /* woken at shutdown (m0 waits on it in mexit) */
    bool deadlock_check;   /* checkdead enabled (gort_config_t.flags) */
    /* GORT_CONFIG_FOLLOW_CGROUP_CPU (stw.c); gomaxprocs_explicit: the
     * program set GOMAXPROCS itself, the follower stops (worldsema). */
    bool follow_cgroup;
    bool gomaxprocs_explicit;

    /* Counters of Ms that have exited (their per-M stats were folded in);
     * sched.lock. */
    gort__mstats_t deadmstats;
    _Atomic uint64_t ms_created;
    _Atomic bool running;
    /* Foreign threads inside gort__ready (ready_foreign); teardown waits
     * for it to drop to zero. seq_cst, see ready_foreign. */
    _Atomic int32_t foreign_inflight;

    /* Dedicated Ps (dedicate.c): kept apart from allp, so nothing that
     * walks allp (stealing, sysmon, the spinning recheck) sees them.
     * dedlock (a leaf) protects the lists; ndedicated counts dedicated
     * goroutines (atomic). */
    gort__mutex_t dedlock;
    gort__p_t *dedall;  /* every dedicated P allocated this run */
    gort__p_t *dedfree; /* free dedicated Ps (the slack) */
    int32_t ndedps;     /* dedlock */
    _Atomic int32_t ndedicated;
    int64_t ded_spin_max_ns; /* 0: never spin */
    int64_t timer_spin_ns;   /* the timer sleeper's spin (sched.c); 0: off */
    int32_t ncpu;            /* CPUs in the affinity mask */
    int64_t start_ns;        /* gort_main's start (schedtrace's clock) */
} gort__rt_t;

/* What every runtime call reads to learn whether the world is stopping
 * (stw.c): on a cache line of its own, written only by stop and start.
 * gcwaiting: a stop is in progress or the world is stopped (seq_cst: see
 * stw.c for its pairings). owner: the goroutine that stopped it (NULL when
 * none), exempt from its own stop. */
typedef struct gort__world {
    _Atomic uint32_t gcwaiting;
    _Atomic(gort__g_t *) owner;
    char pad[64 - sizeof(uint32_t) - sizeof(void *)];
} __attribute__((aligned(64))) gort__world_t;

/* Dedicated goroutines running user code (stw.c), on a line of its own:
 * dedicated threads change it at every block and wake-up. */
typedef struct gort__dedcount {
    _Atomic int32_t ndedrunning;
    char pad[64 - sizeof(int32_t)];
} __attribute__((aligned(64))) gort__dedcount_t;

#endif /* GORT_TYPES_H */
