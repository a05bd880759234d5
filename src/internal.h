/*
 * internal.h - prototypes of every gort__ function, grouped by module, and
 * the debug-level macros. Every .c file in src/ includes this.
 */
#ifndef GORT_INTERNAL_H
#define GORT_INTERNAL_H

#include "types.h"

#ifndef GORT_DEBUG
#define GORT_DEBUG 0
#endif

#define GORT__LIKELY(x)     __builtin_expect(!!(x), 1)
#define GORT__UNLIKELY(x)   __builtin_expect(!!(x), 0)
#define GORT__NOINLINE      __attribute__((noinline))
#define GORT__ALWAYS_INLINE inline __attribute__((always_inline))
#define GORT__NORETURN      __attribute__((noreturn))

/* Internal assertion: compiled in every configuration, checked when
 * GORT_DEBUG >= level (mimalloc's style, so all levels compile the same code). */
#define GORT__ASSERT(level, cond)                                                                  \
    do {                                                                                           \
        if (GORT_DEBUG >= (level) && GORT__UNLIKELY(!(cond)))                                      \
            gort__throw("assertion failed: " #cond " (" __FILE__ ")");                             \
    } while (0)

/* ---- debug.c ---- */
/* Writes "gort: fatal error: msg" and the current G/M/P with one write(2),
 * then aborts. Safe from any context, including signal handlers. */
GORT__NORETURN void gort__throw(const char *msg);
/* write(2) to stderr, all of it (async-signal-safe). */
void gort__write_stderr(const char *s, size_t len);
/* Formats into buf without stdio or malloc (async-signal-safe). */
size_t gort__fmt(char *buf, size_t cap, const char *fmt, ...);
extern const char *const gort__waitreason_strings[waitReasonCount];
/* Installs the SIGSEGV/SIGBUS handler that reports stack overflows. */
int gort__sig_install(void);
void gort__sig_uninstall(void);
/* Gives the calling M an alternate signal stack (and frees it at exit). */
int gort__sig_altstack_alloc(gort__m_t *mp);    /* by the M's maker: 0 or -ENOMEM */
void gort__sig_altstack_install(gort__m_t *mp); /* on the M's thread */
void gort__sig_altstack_unmap(gort__m_t *mp);   /* never installed */
void gort__sig_altstack_free(gort__m_t *mp);    /* installed: on the M's thread */

/* ---- futex.c ---- */
/* futex wait on addr while *addr == val; ns < 0 waits forever. Returns 0 when
 * woken (or the value changed), -ETIMEDOUT, or -EINTR. Counted in stats. */
int gort__futexsleep(_Atomic uint32_t *addr, uint32_t val, int64_t ns);
void gort__futexwakeup(_Atomic uint32_t *addr, uint32_t cnt);
int64_t gort__nanotime(void); /* CLOCK_MONOTONIC in ns */
void gort__osyield(void);
void gort__procyield(uint32_t cycles);
void gort__usleep(uint32_t us);
void gort__futex_foreign_counts(uint64_t *sleeps, uint64_t *wakes);

/* ---- atomics ---- */
/* A seq_cst store that is the store half of a Dekker pair (store x, then
 * load y, while the other side stores y, then loads x: one of them must see
 * the other). Written as an exchange: C11 gives atomic_store the same
 * guarantee and x86 and aarch64 hardware keep it, but qemu-user (7.2, CI's
 * aarch64 stage) translates aarch64's stlr; ldar with no barrier between
 * them, so on an x86 host the load passes the store (tests/unit/dekker.c;
 * in test_stw a dedicated thread slept through its wake-up). A
 * read-modify-write is a locked instruction on the host. On x86 gcc emits
 * the same xchg for both. */
#define gort__store_seqcst(p, v) ((void)atomic_exchange((p), (v)))

/* ---- lock.c ---- */
/* key values of gort__mutex_t (see lock.c). */
enum { GORT__MUTEX_UNLOCKED = 0, GORT__MUTEX_LOCKED = 1, GORT__MUTEX_SLEEPING = 2 };
/* The contended halves, out of line: v is what the fast path's xchg read. */
void gort__lock_slow(gort__mutex_t *l, uint32_t v);
void gort__unlock_slow(gort__mutex_t *l, uint32_t v);
/* The uncontended paths are one xchg each and are inlined: out of line, their
 * frames cost as much as the xchg (4 acquisitions per channel round trip). */
static inline void gort__lock(gort__mutex_t *l)
{
    /* acquire: pairs with the release in gort__unlock's xchg. */
    uint32_t v = atomic_exchange_explicit(&l->key, GORT__MUTEX_LOCKED, memory_order_acquire);
    if (GORT__UNLIKELY(v != GORT__MUTEX_UNLOCKED))
        gort__lock_slow(l, v);
}
static inline void gort__unlock(gort__mutex_t *l)
{
    /* seq_cst (the same xchg on x86): releasing sched.lock after a
     * global-queue put is the #StoreLoad before wakep (see gort__wakep). */
    uint32_t v = atomic_exchange_explicit(&l->key, GORT__MUTEX_UNLOCKED, memory_order_seq_cst);
    if (GORT__UNLIKELY(v != GORT__MUTEX_LOCKED))
        gort__unlock_slow(l, v);
}
bool gort__trylock(gort__mutex_t *l);
void gort__noteclear(gort__note_t *n);
void gort__notewakeup(gort__note_t *n);
void gort__notesleep(gort__note_t *n);
/* Returns true if woken, false on timeout. */
bool gort__notetsleep(gort__note_t *n, int64_t ns);

/* ---- tls.c: thread-locals, read only through these noinline accessors ---- */
gort__m_t *gort__getm(void);
void gort__setm(gort__m_t *mp);
/* The running goroutine (m->curg), or NULL on g0 or a foreign thread. */
gort__g_t *gort__getg(void);

/* ---- env.c ---- */
/* GOMAXPROCS default: $GORT_MAXPROCS if valid, else CPUs in the affinity
 * mask. */
int gort__default_gomaxprocs(void);
int gort__ncpu(void); /* CPUs in the affinity mask */
int64_t gort__dedicated_spin_default(int64_t cfg);
int64_t gort__timer_spin_default(int64_t cfg);
/* Spinning is worth it only if a CPU is probably idle: fewer threads busy in
 * the runtime than CPUs (dedicate.c). `self` is 1 if the caller counts
 * itself among the busy (it holds a P or is a running dedicated M). */
bool gort__spin_allowed(int self);
void gort__ded_spin_adapt(gort__m_t *mp, bool caught);

/* ---- stack.c ---- */
int gort__stack_sysinit(void); /* detects guard support; idempotent */
/* Rounds a requested size to the size actually used; 0 for an invalid one. */
size_t gort__stack_roundsize(size_t size);
int gort__stackalloc(gort__p_t *pp, size_t size, gort__stack_t *out);
void gort__stackfree(gort__p_t *pp, gort__stack_t *st);
void gort__stackcache_clear(gort__p_t *pp); /* returns a P's cache to the pool */
void gort__stack_freeall(void);             /* unmaps everything at shutdown */
/* If addr is in the guard area of a stack of this run, true. */
bool gort__stack_is_guard(const gort__stack_t *st, uintptr_t addr);
const char *gort__stack_guard_mode(void);
/* How a stack's guard was made (gort__stack_t.kind). */
enum { STACK_GUARD_NONE = 0, STACK_GUARD_INSTALL, STACK_GUARD_MPROTECT, STACK_GUARD_CANARY };
bool gort__stack_canary_check(const gort__stack_t *st);
/* In canary mode, false once the goroutine has written below its stack. */
static inline bool gort__stack_canary_ok(const gort__stack_t *st)
{
    return st->kind != STACK_GUARD_CANARY || gort__stack_canary_check(st);
}
extern _Atomic uint64_t gort__stacks_mapped;
extern _Atomic uint64_t gort__stack_bytes_mapped;

/* ---- runq.c (Go's runqput / runqget / runqsteal / globrunq*) ---- */
/* Puts gp on pp's local queue; with next, into runnext (the old runnext goes
 * to the tail). Overflow moves half the queue to the global queue. Holder
 * of pp only. */
bool gort__runqputslow(gort__p_t *pp, gort__g_t *gp, uint32_t h, uint32_t t);
static inline void gort__runqput(gort__p_t *pp, gort__g_t *gp, bool next)
{
    if (next) {
        if (pp->solo) {
            /* No thief, and wakep has no P to hand out: see runq.c. */
            gort__g_t *old = atomic_load_explicit(&pp->runnext, memory_order_relaxed);
            atomic_store_explicit(&pp->runnext, gp, memory_order_relaxed);
            gp = old;
        } else {
            atomic_store_explicit(&pp->runnextgen,
                                  atomic_load_explicit(&pp->runnextgen, memory_order_relaxed) + 1,
                                  memory_order_relaxed);
            /* seq_cst: publishes gp to thieves (their acquire CAS) and is
             * the #StoreLoad before wakep's loads (see gort__wakep). */
            gp = atomic_exchange_explicit(&pp->runnext, gp, memory_order_seq_cst);
        }
        if (!gp)
            return;
        /* else kick the old runnext to the tail */
    }
    for (;;) {
        /* acquire: pairs with the release CAS of consumers, so the slot we
         * are about to overwrite has been read. */
        uint32_t h = atomic_load_explicit(&pp->runqhead, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&pp->runqtail, memory_order_relaxed);
        if (GORT__LIKELY(t - h < GORT__RUNQ_SIZE)) {
            atomic_store_explicit(&pp->runq[t % GORT__RUNQ_SIZE], gp, memory_order_relaxed);
            /* release: publishes the slot to consumers (acquire of tail). */
            atomic_store_explicit(&pp->runqtail, t + 1, memory_order_release);
            return;
        }
        if (gort__runqputslow(pp, gp, h, t))
            return;
        /* the queue is not full any more; retry */
    }
}
/* Takes a G from pp (runnext first); *inherit is set when it came from
 * runnext. Holder of pp only. */
static inline gort__g_t *gort__runqget(gort__p_t *pp, bool *inherit)
{
    gort__g_t *next = atomic_load_explicit(&pp->runnext, memory_order_relaxed);
    if (next && pp->solo) {
        atomic_store_explicit(&pp->runnext, NULL, memory_order_relaxed);
        *inherit = true;
        return next;
    }
    /* acquire: pairs with the seq_cst exchange in runqput on this same P
     * (the holder may have changed since the G was put there). */
    if (next && atomic_compare_exchange_strong_explicit(
                    &pp->runnext, &next, NULL, memory_order_acquire, memory_order_relaxed)) {
        *inherit = true;
        return next;
    }
    *inherit = false;
    for (;;) {
        uint32_t h = atomic_load_explicit(&pp->runqhead, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&pp->runqtail, memory_order_relaxed);
        if (t == h)
            return NULL;
        gort__g_t *gp = atomic_load_explicit(&pp->runq[h % GORT__RUNQ_SIZE], memory_order_relaxed);
        if (pp->solo) {
            /* release: as the CAS below (for runqput's acquire load). */
            atomic_store_explicit(&pp->runqhead, h + 1, memory_order_release);
            return gp;
        }
        /* release: pairs with the acquire load of runqhead in runqput. */
        if (atomic_compare_exchange_strong_explicit(&pp->runqhead, &h, h + 1, memory_order_release,
                                                    memory_order_relaxed))
            return gp;
    }
}
/* Steals half of victim's queue into pp's; returns one G to run or NULL.
 * stealrunnext lets it take victim's runnext. Holder of pp only. */
gort__g_t *gort__runqsteal(gort__p_t *pp, gort__p_t *victim, bool stealrunnext);
bool gort__runqempty(gort__p_t *pp);
void gort__setsolo(_Atomic(gort__p_t *) *allp, int32_t nprocs);
uint32_t gort__runqlen(gort__p_t *pp);
/* Global run queue; caller holds sched.lock. */
void gort__globrunqput(gort__g_t *gp);
void gort__globrunqputhead(gort__g_t *gp);
void gort__globrunqputbatch(gort__g_t *head, gort__g_t *tail, int32_t n);
void gort__runq_to_global(gort__p_t *pp); /* sched.lock held; no M holds pp */
/* Orders a run's start and end against gort_stats_get (sched.c, stats.c):
 * rt.allp is set and cleared under it. */
extern gort__mutex_t gort__life_lock;
gort__g_t *gort__globrunqget(gort__p_t *pp, int32_t max);
/* Tests can run the run queue without a runtime: they set this hook to
 * receive overflow batches instead of the global queue (NULL in a run). */
extern void (*gort__runq_overflow_hook)(gort__g_t *head, gort__g_t *tail, int32_t n);

/* ---- sched.c ---- */
/* What a goroutine asks g0 to do when it switches out (m->mcall_op). */
enum {
    MCALL_NONE = 0,
    MCALL_PARK,        /* park_m: Gwaiting, then unlockf */
    MCALL_GOSCHED,     /* goyield: to the local queue tail */
    MCALL_PREEMPT,     /* gopreempt_m: to the global queue */
    MCALL_EXIT,        /* goexit0 */
    MCALL_EXITSYSCALL, /* exitsyscall0: the fast path found no P */
    MCALL_UNDEDICATE,  /* undedicated with no idle P: to the global queue */
};
/* Scheduler internals shared with syscall.c, lockos.c and sysmon.c; the
 * names and contracts are Go's (proc.go). Callers hold sched.lock for
 * pidleput/pidleget/mput/mget. */
bool gort__shutting_down(void);
uint32_t gort__readgstatus(gort__g_t *gp);
void gort__casgstatus(gort__g_t *gp, uint32_t old, uint32_t new);
void gort__pidleput(gort__p_t *pp);
gort__p_t *gort__pidleget(void);
void gort__mput(gort__m_t *mp);
gort__m_t *gort__mget(void);
void gort__acquirep(gort__m_t *mp, gort__p_t *pp);
gort__p_t *gort__releasep(gort__m_t *mp);
bool gort__newm(gort__p_t *pp, bool spinning);
bool gort__newm2(gort__p_t *pp, bool spinning, bool wait);
bool gort__stopm(gort__m_t *mp);
void gort__startm(gort__p_t *pp, bool spinning);
void gort__handoffp(gort__p_t *pp);
void gort__handoffp_idle(gort__p_t *pp); /* the no-work end of handoffp */
void gort__mcall(int op);
void gort__mcall_g(gort__g_t *gp, int op);
void gort__dropg(gort__m_t *mp, gort__g_t *gp);
/* Go's checkdead; caller holds sched.lock. */
void gort__checkdead(void);
int64_t gort__checkdead_confirm(void); /* sysmon */
void gort__dump_goroutines(void);
bool gort__newosproc(gort__m_t *mp);
void gort__preempt_park(gort__g_t *gp);

/* ---- stw.c ---- */
extern gort__world_t gort__world;
extern gort__dedcount_t gort__dedcount;
static inline bool gort__gcwaiting(void)
{
    return atomic_load_explicit(&gort__world.gcwaiting, memory_order_relaxed) != 0;
}

/* The dedicated spin (dedicate.c's file comment): a dedicated M about to
 * sleep polls done(arg) between short PAUSE runs for up to mp->spin_ns, or
 * until the first timer of its P is due (a deadline of its goroutine: only
 * this M runs them). Returns 1 when done (the budget grows), 0 when the
 * budget ran out (it shrinks), -1 when a stop, shutdown or a due timer cut
 * the spin short (unchanged). Inline, so that done is inlined too. */
static inline int gort__ded_spin(gort__m_t *mp, bool (*done)(const void *arg), const void *arg)
{
    int64_t end = gort__nanotime() + mp->spin_ns;
    /* Only the goroutine, now waiting, adds timers to its dedicated P: the
     * first one cannot move earlier during the spin. */
    int64_t tw = atomic_load_explicit(&mp->p->timer0when, memory_order_relaxed);
    bool timer = tw != 0 && tw < end;
    if (timer)
        end = tw;
    for (int n = 0;; n++) {
        gort__procyield(10);
        if (done(arg)) {
            gort__ded_spin_adapt(mp, true);
            return 1;
        }
        if (GORT__UNLIKELY(gort__gcwaiting() || gort__shutting_down()))
            return -1;
        if ((n & 15) == 15 && gort__nanotime() >= end) {
            if (timer)
                return -1;
            gort__ded_spin_adapt(mp, false);
            return 0;
        }
    }
}

void gort__preemptall(gort__p_t *self);
void gort__preemptone(gort__p_t *pp); /* sysmon.c */
void gort__gcstop_p(gort__p_t *pp);   /* sched.lock held */
bool gort__gcstopm(gort__m_t *mp);    /* false at shutdown */
void gort__entersyscall_gcwait(gort__p_t *pp);
void gort__stw_safepoint(gort__g_t *gp);
void gort__dedrun_begin(gort__m_t *mp);
void gort__dedrun_end(gort__m_t *mp);
void gort__ded_gcwait(void);
void gort__stw_shutdown_wake(void);
bool gort__is_world_owner(gort__g_t *gp);
const char *gort__stw_reason(void);    /* NULL when the world runs */
int gort__p_init_allp(int32_t nprocs); /* gort__main */
gort__p_t *gort__pnew(int32_t id);
void gort__movetimers(gort__p_t *from, gort__p_t *to);
void gort__updatemaxprocs(void *arg); /* the cgroup follower goroutine */
int gort__cgroup_cpu_limit(void);     /* 0: no limit */

/* The G of a public API call (NULL on a foreign thread). Honours a pending
 * preemption request or a stop-the-world first: every runtime call is a
 * preemption point and a safe point. */
/* Misuse that gort.h leaves undefined, caught by debug builds with a fatal
 * error: a call from inside a preemptible region, or between
 * gort_entersyscall and gort_exitsyscall (no P is held there, or one a
 * thief may take: park, spawn and ready would use what is not ours). */
static inline void gort__api_debug_check(gort__g_t *gp)
{
    if (GORT_DEBUG >= 1 && atomic_load_explicit(&gp->preemptible, memory_order_relaxed))
        gort__throw("gort called inside a preemptible region");
    if (GORT_DEBUG >= 1 && gort__readgstatus(gp) == Gsyscall)
        gort__throw("gort called between gort_entersyscall and gort_exitsyscall");
}

static inline gort__g_t *gort__api_g(void)
{
    gort__g_t *gp = gort__getg();
    if (gp) {
        gort__api_debug_check(gp);
        if (GORT__UNLIKELY(atomic_load_explicit(&gp->preempt, memory_order_relaxed) ||
                           gort__gcwaiting()))
            gort__preempt_park(gp);
    }
    return gp;
}

/* ---- syscall.c ---- */
void gort__entersyscall(void);
void gort__entersyscallblock(void);
void gort__exitsyscall(void);
void gort__wake_sysmon(void);

/* ---- lockos.c ---- */
bool gort__stoplockedm(gort__m_t *mp);
void gort__startlockedm(gort__m_t *mp, gort__g_t *gp);
void gort__wake_lockedms(void); /* sched.lock held */
bool gort__newm_via_template(gort__m_t *mp);
void gort__template_stop(void);
int gort__start_template_thread(void); /* 0 or -EAGAIN */

/* ---- dedicate.c ---- */
int gort__dedicate_init(const gort_config_t *cfg, int64_t spin_ns);
void gort__dedicate_teardown(void);
void gort__ready_dedicated(gort__g_t *gp);
gort__g_t *gort__findrunnable_dedicated(gort__m_t *mp);
void gort__wake_dedicatedms(void); /* sched.lock held */
void gort__dedicated_mexit(gort__m_t *mp);
bool gort__dedicated_pending(void);
void gort__dedicated_ps_foreach(void (*fn)(gort__p_t *pp, void *arg), void *arg);

/* ---- sysmon.c ---- */
int gort__sysmon_start(void);
void gort__sysmon_stop(void);
extern gort__rt_t gort__rt;
#define gort__sched (gort__rt.sched)
/* Starts a new goroutine running fn(arg) (Go's newproc). Runs on a G. */
int gort__newproc(gort_fn fn, void *arg, size_t stack_size, uint64_t *id_out);
/* Parks the current G (Go's gopark): on g0, unlockf(gp, lock) runs; if it
 * returns false the G is resumed at once. Runs on a G. */
void gort__park(bool (*unlockf)(gort__g_t *gp, void *lock), void *lock,
                enum gort__waitreason reason);
/* gort__park for a caller that has its G at hand. */
void gort__park_g(gort__g_t *gp, bool (*unlockf)(gort__g_t *gp, void *lock), void *lock,
                  enum gort__waitreason reason);
/* Makes a parked G runnable on the current P's runnext (Go's goready) and
 * wakes an idle P. From a goroutine or g0 with a P; from a foreign thread the
 * G goes to the global queue. */
void gort__ready(gort__g_t *gp);
/* gort__ready for a caller that has its own G at hand (self, the running
 * goroutine; NULL: unknown, any thread): no thread-local read. */
void gort__ready_by(gort__g_t *self, gort__g_t *gp);
void gort__gosched(void); /* yield: current G to the local queue tail */
void gort__gosched_g(gort__g_t *gp);
GORT__NORETURN void gort__goexit(void);
void gort__wakep(void);
int gort__main(gort_main_fn fn, void *arg, const gort_config_t *cfg);
/* Entry of every new G (called by the arch trampoline on the G's stack). */
GORT__NORETURN void gort__gostart(void);
/* A random number in [0, n) from the M's random source (Go's fastrandn). */
uint32_t gort__fastrandn(uint32_t n);
/* Go's sync_runtime_canSpin (see sched.c). */
bool gort__sync_canspin(int iter);
void gort__stealorder_reset(int32_t nprocs);

/* ---- timer.c ---- */
/* Adds t to the current P's heap (t->when, t->f set). Runs with a P. */
int gort__addtimer(gort__timer_t *t);
/* Makes room for n more timers on pp's heap, so that adding them then
 * cannot fail for memory; 0 or -ENOMEM. */
int gort__timers_reserve(gort__p_t *pp, int32_t n);
int gort__addtimer_on(gort__p_t *pp, gort__timer_t *t); /* any P, e.g. moving timers */
/* Removes t from its heap if it is on one (true), then waits until no
 * firing of t is in progress. Any context. */
bool gort__deltimer(gort__timer_t *t);
/* Runs pp's expired timers; returns pp's next when (0: none). now == 0:
 * read the clock if there are timers. */
int64_t gort__checktimers(gort__p_t *pp, int64_t now);
/* Runs due timers of the other Ps; true if it ran any. */
bool gort__runtimers_others(gort__p_t *self);
/* Earliest when over all Ps (0: none). */
int64_t gort__timers_nextwhen(void);
void gort__timer_poke(void);             /* wakes the timer sleeper */
void gort__timer_wake_for(int64_t when); /* Go's wakeNetPoller */
void gort__timers_free(gort__p_t *pp);
/* Parks the current goroutine until the clock reaches when. */
int gort__sleep_until(int64_t when);

/* ---- chan.c ---- */
size_t gort__chan_elemsize(gort_chan_t *c);
/* A non-blocking send from a timer firing (on g0 with a P). */
void gort__chan_trysend_from_timer(gort_chan_t *c, const void *elem);

/* ---- sema.c (Go's sema.go: the semaphore under sync, and notifyList) ---- */
/* Takes a unit without blocking; false if the count is zero. Any context. */
bool gort__cansemacquire(gort__sema_t *s);
/* Takes a unit, parking the current G until one is released. lifo queues the
 * G at the head (a waiter that is retrying, as sync.Mutex does). Runs on a G
 * with no runtime lock held. */
void gort__semacquire1(gort__sema_t *s, bool lifo, enum gort__waitreason reason);
/* Adds a unit and readies the first waiter, if any. With handoff, the unit
 * goes straight to that waiter and the caller yields its P to it (when it is
 * a G). Any context. Returns 0, or -EOVERFLOW (nothing done) when the count
 * is UINT32_MAX. */
int gort__semrelease1(gort__sema_t *s, bool handoff);
/* sync.Cond's ticket protocol: take a ticket, then wait for it. Add: any
 * context. Wait: on a G with no runtime lock held. Notify*: any context. */
uint32_t gort__notifyListAdd(gort__notifylist_t *l);
void gort__notifyListWait(gort__notifylist_t *l, uint32_t t);
void gort__notifyListNotifyOne(gort__notifylist_t *l);
void gort__notifyListNotifyAll(gort__notifylist_t *l);

/* ---- netpoll.c ---- */
bool gort__netpoll_inited(void);
bool gort__netpoll_waiting(void);      /* goroutines parked on descriptors */
bool gort__netpoll_nobody_polls(void); /* no M blocked in epoll_wait */
gort__g_t *gort__netpoll(int64_t delay);
gort__g_t *gort__netpoll_block(int64_t ns);
gort__g_t *gort__netpoll_try(int64_t older_than_ns);
void gort__netpoll_inject(gort__g_t *list);
void gort__netpoll_break(void);
void gort__netpoll_teardown(void);
extern _Atomic uint64_t gort__netpoll_polls, gort__netpoll_readied;
/* gort__ready for runtime threads that may have no M (sysmon, the poller):
 * unlike a foreign thread's, it does not turn off deadlock detection. */
void gort__ready_internal(gort__g_t *gp);

/* ---- trace.c ---- */
extern int gort__schedtrace_ms;
extern bool gort__scheddetail;
extern _Atomic int64_t gort__coarse_now; /* advanced by sysmon each round */
void gort__trace_init(void);
void gort__trace_fini(void);
void gort__schedtrace(bool detailed, int fd);
void gort__dump_goroutines_fatal(void); /* best effort: trylock */

/* ---- latency sampling (stats.c) ---- */
#ifndef GORT_LATENCY_STATS
#define GORT_LATENCY_STATS 1
#endif
enum { GORT__LAT_SAMPLE_MASK = 63 }; /* one normal wake-up in 64 */
/* Dedicated wake-ups: every one that needs a futex wake, one in 16 of the
 * others (a clock read costs ~50 ns on this VM, a quarter of a spin-caught
 * hop). */
enum { GORT__LAT_SAMPLE_DED_MASK = 15 };
void gort__lat_record(gort__p_t *pp, gort__g_t *gp);
/* Marks one wake-up in 64 made from pp for timing (pp's holder). */
static inline void gort__lat_sample(gort__p_t *pp, gort__g_t *gp)
{
    if (GORT_LATENCY_STATS && GORT__UNLIKELY((++pp->stats.latsample & GORT__LAT_SAMPLE_MASK) == 0))
        gp->readyat = gort__nanotime();
}

/* ---- stats.c ---- */
int gort__stats_get(gort_stats_t *st);
static inline void gort__stat_add(_Atomic uint64_t *c, uint64_t n)
{
    /* Single writer: a relaxed load+store is enough and avoids an RMW. */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* Single-writer increment of a 32-bit tick read by others (sysmon). */
static inline void gort__tick(_Atomic uint32_t *t)
{
    atomic_store_explicit(t, atomic_load_explicit(t, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* ---- arch/<arch>/switch.S (see arch/ctx.h) ---- */
#include "arch/ctx.h"

#endif /* GORT_INTERNAL_H */
