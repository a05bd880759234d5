/*
 * trace.c - seeing inside the scheduler: GORT_DEBUG=schedtrace (Go's
 * GODEBUG=schedtrace / scheddetail), goroutine dumps with backtraces, and
 * the SIGQUIT dump.
 *
 * GORT_DEBUG is a comma-separated list read when gort_main starts:
 *   schedtrace=MS   sysmon writes one line every MS milliseconds:
 *                   SCHED 1004ms: gomaxprocs=2 idleprocs=1 threads=5
 *                   spinningthreads=0 idlethreads=2 runqueue=0 [0 3]
 *                   dedicated=2 [1024:running 1025:syscall]
 *   scheddetail=1   ... and one line per P, per M and per goroutine;
 *   sigquit=1       SIGQUIT dumps every goroutine and exits with status 2,
 *                   as a Go program does.
 *
 * A goroutine dump names each goroutine with its state, its wait reason
 * and for how long (a coarse clock that sysmon advances each round, so
 * "at least"), whether it is locked or dedicated, and a backtrace of a
 * parked goroutine by frame-pointer walk from its saved context (the
 * switch frame of arch/ctx.h: saved rbp / x29 and the return address),
 * as return addresses with the object they fall in (dladdr; feed them to
 * addr2line). Running goroutines are not walked (their frames change under
 * us). Everything is written with gort__fmt and write(2): no malloc, no
 * stdio, usable from a signal handler or a fatal error.
 *
 * Locks: allglock (taken with trylock from fatal paths) for the G list;
 * the trace lines read counters racily (relaxed), as Go's do.
 */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define RELAXED memory_order_relaxed
/* A plain read of a field other threads write without synchronising (in
 * functions TSan does not instrument; see gort__schedtrace). */
#define RACY(x) (*(volatile __typeof__(x) *)&(x))

int gort__schedtrace_ms;
bool gort__scheddetail;
static bool sigquit_dump;
_Atomic int64_t gort__coarse_now;

static void parse_debug(void)
{
    gort__schedtrace_ms = 0;
    gort__scheddetail = false;
    sigquit_dump = false;
    const char *s = getenv("GORT_DEBUG");
    while (s && *s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        long v = 0;
        const char *eq = memchr(s, '=', len);
        if (eq) {
            for (const char *p = eq + 1; p < s + len && *p >= '0' && *p <= '9'; p++)
                v = v * 10 + (*p - '0');
            size_t klen = (size_t)(eq - s);
            if (klen == 10 && !memcmp(s, "schedtrace", 10))
                gort__schedtrace_ms = v > 0 && v < 3600000 ? (int)v : 0;
            else if (klen == 11 && !memcmp(s, "scheddetail", 11))
                gort__scheddetail = v != 0;
            else if (klen == 7 && !memcmp(s, "sigquit", 7))
                sigquit_dump = v != 0;
        }
        s = end ? end + 1 : NULL;
    }
}

/* ---- output helpers ---- */

typedef struct out {
    int fd;
    char buf[1024];
    size_t n;
} out_t;

static void flush(out_t *o)
{
    size_t off = 0;
    while (off < o->n) {
        ssize_t w = write(o->fd, o->buf + off, o->n - off);
        if (w <= 0 && errno != EINTR)
            break;
        if (w > 0)
            off += (size_t)w;
    }
    o->n = 0;
}

/* Appends a formatted piece (gort__fmt syntax); flushes when full. */
#define PUT(o, ...)                                                                                \
    do {                                                                                           \
        char tmp_[256];                                                                            \
        size_t l_ = gort__fmt(tmp_, sizeof tmp_, __VA_ARGS__);                                     \
        if (l_ >= sizeof tmp_)                                                                     \
            l_ = sizeof tmp_ - 1;                                                                  \
        if ((o)->n + l_ > sizeof(o)->buf)                                                          \
            flush(o);                                                                              \
        memcpy((o)->buf + (o)->n, tmp_, l_);                                                       \
        (o)->n += l_;                                                                              \
    } while (0)

__attribute__((no_sanitize("thread"))) static const char *gstate(gort__g_t *gp)
{
    switch (gort__readgstatus(gp)) {
    case Grunnable:
        return "runnable";
    case Grunning:
        return "running";
    case Gsyscall:
        return "syscall";
    case Gwaiting:
        return gp->waitreason < waitReasonCount && gort__waitreason_strings[gp->waitreason][0]
                   ? gort__waitreason_strings[gp->waitreason]
                   : "waiting";
    case Gdead:
        return "dead";
    }
    return "idle";
}

static const char *pstate(uint32_t s)
{
    static const char *const names[] = {"idle", "running", "syscall", "gcstop", "dead"};
    return s < 5 ? names[s] : "?";
}

/* ---- schedtrace ---- */

/* Reads the other threads' fields without synchronising, as Go's
 * schedtrace does: a trace is a snapshot that may be slightly torn, and the
 * sanitizer is told so. */
__attribute__((no_sanitize("thread"))) void gort__schedtrace(bool detailed, int fd)
{
    out_t o = {.fd = fd};
    int64_t ms = (gort__nanotime() - gort__rt.start_ns) / 1000000;
    int32_t n = atomic_load(&gort__rt.gomaxprocs);
    PUT(&o,
        "SCHED %ldms: gomaxprocs=%d idleprocs=%d threads=%d spinningthreads=%d "
        "idlethreads=%d runqueue=%d",
        (long)ms, (int)n, (int)atomic_load(&gort__sched.npidle), (int)RACY(gort__sched.mcount),
        (int)atomic_load(&gort__sched.nmspinning), (int)RACY(gort__sched.nmidle),
        (int)atomic_load(&gort__sched.runqsize));
    if (gort__gcwaiting()) {
        const char *why = gort__stw_reason();
        PUT(&o, " stopped=\"%s\"", why ? why : "?");
    }
    if (!detailed) {
        PUT(&o, " [");
        for (int32_t i = 0; i < n; i++)
            PUT(&o, i ? " %u" : "%u", gort__runqlen(gort__rt.allp[i]));
        PUT(&o, "]");
    }
    /* Dedicated Ps apart, with their goroutine's state. */
    gort__lock(&gort__rt.dedlock);
    int nded = 0;
    for (gort__p_t *pp = gort__rt.dedall; pp; pp = pp->dall)
        nded += atomic_load_explicit(&pp->status, RELAXED) != Pidle;
    PUT(&o, " dedicated=%d", nded);
    if (nded && !detailed) {
        PUT(&o, " [");
        int k = 0;
        for (gort__p_t *pp = gort__rt.dedall; pp; pp = pp->dall) {
            gort__m_t *mp = atomic_load_explicit(&pp->m, memory_order_acquire);
            if (atomic_load_explicit(&pp->status, RELAXED) == Pidle || !mp)
                continue;
            if (k++ == 32) {
                PUT(&o, " ...");
                break;
            }
            gort__g_t *gp = mp->lockedg;
            PUT(&o, k > 1 ? " %d:%s" : "%d:%s", (int)pp->id, gp ? gstate(gp) : "none");
        }
        PUT(&o, "]");
    }
    gort__unlock(&gort__rt.dedlock);
    PUT(&o, "\n");
    if (!detailed) {
        flush(&o);
        return;
    }
    for (int32_t i = 0; i < n; i++) {
        gort__p_t *pp = gort__rt.allp[i];
        gort__m_t *mp = atomic_load_explicit(&pp->m, memory_order_acquire);
        PUT(&o, "  P%d: status=%s schedtick=%u syscalltick=%u m=%ld runqsize=%u timers=%d\n",
            (int)pp->id, pstate(atomic_load_explicit(&pp->status, RELAXED)),
            atomic_load_explicit(&pp->schedtick, RELAXED),
            atomic_load_explicit(&pp->syscalltick, RELAXED), mp ? (long)mp->id : -1L,
            gort__runqlen(pp), (int)RACY(pp->ntimers));
    }
    gort__lock(&gort__rt.dedlock);
    for (gort__p_t *pp = gort__rt.dedall; pp; pp = pp->dall) {
        uint32_t st = atomic_load_explicit(&pp->status, RELAXED);
        if (st == Pidle)
            continue;
        gort__m_t *mp = atomic_load_explicit(&pp->m, memory_order_acquire);
        PUT(&o, "  P%d: dedicated status=%s m=%ld timers=%d\n", (int)pp->id, pstate(st),
            mp ? (long)mp->id : -1L, (int)RACY(pp->ntimers));
    }
    gort__unlock(&gort__rt.dedlock);
    gort__lock(&gort__sched.lock);
    for (gort__m_t *mp = gort__sched.allm; mp; mp = mp->alllink) {
        gort__g_t *cg = atomic_load_explicit(&mp->curg, memory_order_acquire);
        gort__p_t *pp = RACY(mp->p);
        gort__g_t *lg = RACY(mp->lockedg);
        PUT(&o, "  M%ld: p=%d curg=%ld spinning=%d lockedg=%ld dedicated=%d tid=%d\n", (long)mp->id,
            pp ? (int)pp->id : -1, cg ? (long)cg->goid : -1L,
            (int)atomic_load_explicit(&mp->spinning, RELAXED), lg ? (long)lg->goid : -1L,
            (int)RACY(mp->dedicated), (int)mp->procid);
    }
    gort__unlock(&gort__sched.lock);
    gort__lock(&gort__rt.allglock);
    for (gort__g_t *gp = gort__rt.allgs; gp; gp = gp->alllink) {
        uint32_t st = gort__readgstatus(gp);
        if (st == Gdead || st == Gidle)
            continue;
        gort__m_t *mp = RACY(gp->m);
        gort__m_t *lm = RACY(gp->lockedm);
        PUT(&o, "  G%lu: status=%u(%s) m=%ld lockedm=%ld\n", (unsigned long)gp->goid, st,
            gstate(gp), mp ? (long)mp->id : -1L, lm ? (long)lm->id : -1L);
    }
    gort__unlock(&gort__rt.allglock);
    flush(&o);
}

/* ---- goroutine dumps ---- */

/* The saved frame pointer and return address of a parked goroutine (the
 * switch frame, arch/ctx.h). */
__attribute__((no_sanitize("address", "thread"))) static void
saved_fp_pc(gort__g_t *gp, uintptr_t *fp, uintptr_t *pc)
{
    uintptr_t sp = (uintptr_t)gp->sched_sp;
#if defined(__x86_64__)
    *fp = *(uintptr_t *)(sp + 48);
    *pc = *(uintptr_t *)(sp + 56);
#elif defined(__aarch64__)
    *fp = *(uintptr_t *)(sp + 80);
    *pc = *(uintptr_t *)(sp + 88);
#else
    *fp = *pc = 0;
#endif
}

static void put_frame(out_t *o, int k, uintptr_t pc)
{
    Dl_info di;
    if (dladdr((void *)pc, &di) && di.dli_fname) {
        const char *base = strrchr(di.dli_fname, '/');
        base = base ? base + 1 : di.dli_fname;
        if (di.dli_sname)
            PUT(o, "    #%d %p %s+0x%lx (%s+0x%lx)\n", k, (void *)pc, di.dli_sname,
                (unsigned long)(pc - (uintptr_t)di.dli_saddr), base,
                (unsigned long)(pc - (uintptr_t)di.dli_fbase));
        else
            PUT(o, "    #%d %p (%s+0x%lx)\n", k, (void *)pc, base,
                (unsigned long)(pc - (uintptr_t)di.dli_fbase));
    } else {
        PUT(o, "    #%d %p\n", k, (void *)pc);
    }
}

/* Reads another goroutine's parked stack: not a data race the sanitizers
 * know how to see (the G is parked; its frames do not change). */
__attribute__((no_sanitize("address", "thread"))) static void backtrace_g(out_t *o, gort__g_t *gp)
{
    uint32_t st = gort__readgstatus(gp);
    if (st == Grunnable && !gp->sched_sp && gp->fn) {
        /* Never run yet (its first frame is made when it first runs):
         * show where it will start. */
        put_frame(o, 0, (uintptr_t)gp->fn);
        return;
    }
    if ((st != Gwaiting && st != Grunnable) || !gp->sched_sp || !gp->stack.hi)
        return;
    uintptr_t fp, pc;
    saved_fp_pc(gp, &fp, &pc);
    uintptr_t lo = gp->stack.lo, hi = gp->stack.hi;
    for (int k = 0; k < 32 && pc; k++) {
        put_frame(o, k, pc);
        if (fp < lo || fp + 2 * sizeof(uintptr_t) > hi || (fp & (sizeof(uintptr_t) - 1)))
            break;
        uintptr_t next = ((uintptr_t *)fp)[0];
        pc = ((uintptr_t *)fp)[1];
        if (next <= fp)
            break;
        fp = next;
    }
}

/* Writes every live goroutine to fd. If trylock, the goroutine list is
 * only walked if its lock is free (fatal paths). */
__attribute__((no_sanitize("thread"))) static void dump(int fd, bool trylock)
{
    out_t o = {.fd = fd};
    int64_t now = atomic_load_explicit(&gort__coarse_now, RELAXED);
    if (trylock) {
        if (!gort__trylock(&gort__rt.allglock)) {
            PUT(&o, "gort: goroutine list busy: no dump\n");
            flush(&o);
            return;
        }
    } else {
        gort__lock(&gort__rt.allglock);
    }
    for (gort__g_t *gp = gort__rt.allgs; gp; gp = gp->alllink) {
        uint32_t st = gort__readgstatus(gp);
        if (st == Gdead || st == Gidle)
            continue;
        PUT(&o, "goroutine %lu [%s", (unsigned long)gp->goid, gstate(gp));
        int64_t since = RACY(gp->waitsince);
        if (st == Gwaiting && since && now > since) {
            int64_t secs = (now - since) / 1000000000;
            if (secs >= 60)
                PUT(&o, ", %ld minutes", (long)(secs / 60));
            else if (secs >= 1)
                PUT(&o, ", %ld seconds", (long)secs);
        }
        PUT(&o, "]%s%s%s:\n", gp->lockedm ? ", locked to thread" : "", gp->is_main ? " (main)" : "",
            gp->dedicated ? ", dedicated thread" : "");
        backtrace_g(&o, gp);
        PUT(&o, "\n");
    }
    gort__unlock(&gort__rt.allglock);
    flush(&o);
}

void gort__dump_goroutines(void)
{
    dump(2, false);
}

void gort__dump_goroutines_fatal(void)
{
    if (atomic_load(&gort__rt.running) && gort__rt.allp)
        dump(2, true);
}

GORT_API int gort_dump_goroutines(int fd)
{
    if (fd < 0)
        return -EBADF;
    if (!atomic_load(&gort__rt.running))
        return -ESRCH;
    dump(fd, false);
    return 0;
}

/* ---- SIGQUIT ---- */

static struct sigaction old_quit;

static void on_quit(int sig)
{
    (void)sig;
    static const char msg[] = "SIGQUIT: quit\n\n";
    gort__write_stderr(msg, sizeof msg - 1);
    gort__schedtrace(true, 2);
    static const char nl[] = "\n";
    gort__write_stderr(nl, 1);
    dump(2, true);
    _exit(2);
}

void gort__trace_init(void)
{
    parse_debug();
    atomic_store(&gort__coarse_now, gort__nanotime());
    if (sigquit_dump) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_quit;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGQUIT, &sa, &old_quit);
    }
}

void gort__trace_fini(void)
{
    if (sigquit_dump)
        sigaction(SIGQUIT, &old_quit, NULL);
}
