/*
 * debug.c - fatal errors, the wait-reason table, and the stack-overflow
 * signal handler.
 *
 * gort__throw formats its message on the stack and writes it with one
 * write(2): no malloc, no stdio, no locks, so it works from a signal handler
 * or with any runtime lock held (jemalloc's malloc_write, Go's throw). It
 * names the current G, M and P, then aborts.
 *
 * Stack overflow: every goroutine stack has a guard area just below it
 * (stack.c). A goroutine that runs off its stack faults there. The SIGSEGV
 * and SIGBUS handler runs on a per-M alternate signal stack (the faulting
 * stack is unusable), checks whether the fault address is in the guard of
 * the goroutine running on this thread, and if so dies with
 *   gort: fatal error: stack overflow in goroutine N (...)
 * Any other fault is passed on to the handler that was installed before ours
 * (a sanitizer's, or the default action, which re-faults and kills the
 * process with the original signal).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

const char *const gort__waitreason_strings[waitReasonCount] = {
    [waitReasonZero] = "",
    [waitReasonWaitGroupWait] = "waitgroup wait",
    [waitReasonChanSend] = "chan send",
    [waitReasonChanReceive] = "chan receive",
    [waitReasonSelect] = "select",
    [waitReasonSleep] = "sleep",
    [waitReasonSyncMutexLock] = "sync.Mutex.Lock",
    [waitReasonSyncCondWait] = "sync.Cond.Wait",
    [waitReasonSemacquire] = "semacquire",
    [waitReasonSyncRWMutexRLock] = "sync.RWMutex.RLock",
    [waitReasonSyncRWMutexLock] = "sync.RWMutex.Lock",
    [waitReasonTest] = "test",
    [waitReasonStopTheWorld] = "stop the world",
    [waitReasonIOWait] = "IO wait",
};

static size_t put_str(char *buf, size_t cap, size_t n, const char *s)
{
    for (; *s; s++) {
        if (n + 1 < cap)
            buf[n] = *s;
        n++;
    }
    return n;
}

static size_t put_uint(char *buf, size_t cap, size_t n, unsigned long long v, unsigned base)
{
    char tmp[24];
    int i = 0;
    do {
        tmp[i++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (i > 0) {
        if (n + 1 < cap)
            buf[n] = tmp[i - 1];
        n++;
        i--;
    }
    return n;
}

/* A tiny async-signal-safe printf: %s %d %u %x %p with l, ll, z modifiers.
 * Returns the length the full output needs; buf is always terminated. */
size_t gort__fmt(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = 0;
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            if (n + 1 < cap)
                buf[n] = *f;
            n++;
            continue;
        }
        f++;
        int longs = 0;
        while (*f == 'l' || *f == 'z') {
            longs += *f == 'z' ? 2 : 1;
            f++;
        }
        switch (*f) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            n = put_str(buf, cap, n, s ? s : "(null)");
            break;
        }
        case 'd': {
            long long v = longs >= 2   ? va_arg(ap, long long)
                          : longs == 1 ? va_arg(ap, long)
                                       : va_arg(ap, int);
            if (v < 0) {
                n = put_str(buf, cap, n, "-");
                n = put_uint(buf, cap, n, 0ull - (unsigned long long)v, 10);
            } else {
                n = put_uint(buf, cap, n, (unsigned long long)v, 10);
            }
            break;
        }
        case 'u':
        case 'x': {
            unsigned long long v = longs >= 2   ? va_arg(ap, unsigned long long)
                                   : longs == 1 ? va_arg(ap, unsigned long)
                                                : va_arg(ap, unsigned);
            n = put_uint(buf, cap, n, v, *f == 'x' ? 16 : 10);
            break;
        }
        case 'p':
            n = put_str(buf, cap, n, "0x");
            n = put_uint(buf, cap, n, (uintptr_t)va_arg(ap, void *), 16);
            break;
        case '%':
            n = put_str(buf, cap, n, "%");
            break;
        default:
            n = put_str(buf, cap, n, "%?");
            if (!*f)
                f--;
            break;
        }
    }
    va_end(ap);
    if (cap)
        buf[n < cap ? n : cap - 1] = '\0';
    return n;
}

void gort__write_stderr(const char *s, size_t len)
{
    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, s, len);
        if (w <= 0)
            return;
        s += w;
        len -= (size_t)w;
    }
}

/* Writes "gort: fatal error: <msg> [context]\n" and aborts. */
static GORT__NORETURN void die(const char *msg)
{
    char buf[512];
    gort__m_t *mp = gort__getm();
    gort__g_t *gp = mp ? atomic_load_explicit(&mp->curg, memory_order_relaxed) : NULL;
    size_t n;
    if (mp)
        n = gort__fmt(buf, sizeof buf, "gort: fatal error: %s\n[m %ld, p %d, goroutine %lu]\n", msg,
                      (long)mp->id, mp->p ? (int)mp->p->id : -1,
                      gp ? (unsigned long)gp->goid : 0ul);
    else
        n = gort__fmt(buf, sizeof buf, "gort: fatal error: %s\n[foreign thread]\n", msg);
    gort__write_stderr(buf, n < sizeof buf ? n : sizeof buf - 1);
    /* Every goroutine, as Go prints them (trylock: we may hold the lock). */
    static _Atomic int dumping;
    if (atomic_exchange(&dumping, 1) == 0) {
        gort__write_stderr("\n", 1);
        gort__dump_goroutines_fatal();
    }
    signal(SIGABRT, SIG_DFL);
    abort();
}

void gort__throw(const char *msg)
{
    die(msg);
}

/* ---- stack-overflow handler ---- */

static struct sigaction old_segv, old_bus;
static _Atomic int sig_installed;

static void chain(int sig, siginfo_t *si, void *uctx)
{
    struct sigaction *old = sig == SIGBUS ? &old_bus : &old_segv;
    if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
        old->sa_sigaction(sig, si, uctx);
        return;
    }
    if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN && old->sa_handler) {
        old->sa_handler(sig);
        return;
    }
    /* Default action: restore it and return; the fault repeats and kills
     * the process with the right signal. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
}

static void on_fault(int sig, siginfo_t *si, void *uctx)
{
    gort__m_t *mp = gort__getm();
    gort__g_t *gp = mp ? atomic_load_explicit(&mp->curg, memory_order_relaxed) : NULL;
    uintptr_t addr = (uintptr_t)si->si_addr;
    if (gp && gort__stack_is_guard(&gp->stack, addr)) {
        char msg[256];
        gort__fmt(msg, sizeof msg,
                  "stack overflow in goroutine %lu (stack [%p, %p), %lu bytes; fault at %p)",
                  (unsigned long)gp->goid, (void *)gp->stack.lo, (void *)gp->stack.hi,
                  (unsigned long)(gp->stack.hi - gp->stack.lo), (void *)addr);
        die(msg);
    }
    chain(sig, si, uctx);
}

int gort__sig_install(void)
{
    int expect = 0;
    if (!atomic_compare_exchange_strong(&sig_installed, &expect, 1))
        return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    int saved = errno;
    int r = sigaction(SIGSEGV, &sa, &old_segv);
    if (r == 0)
        r = sigaction(SIGBUS, &sa, &old_bus);
    errno = saved;
    return r == 0 ? 0 : -EINVAL;
}

void gort__sig_uninstall(void)
{
    int expect = 1;
    if (!atomic_compare_exchange_strong(&sig_installed, &expect, 0))
        return;
    int saved = errno;
    sigaction(SIGSEGV, &old_segv, NULL);
    sigaction(SIGBUS, &old_bus, NULL);
    errno = saved;
}

enum { ALTSTACK_SIZE = 64 * 1024 };

/* The alternate signal stack an M's SIGSEGV handler runs on (stack
 * overflow messages), in two steps: mapped by whoever makes the M, so that
 * no memory is a failure to make it (an M without one would die of a stack
 * overflow silently); installed by the M's own thread. */
int gort__sig_altstack_alloc(gort__m_t *mp)
{
    int saved = errno;
    void *p = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    errno = saved;
    if (p == MAP_FAILED)
        return -ENOMEM;
    mp->altstack = p;
    mp->altstack_size = ALTSTACK_SIZE;
    return 0;
}

/* Unmaps an alternate stack that was never installed (an M that never
 * ran, or one whose thread had a stack of its own). */
void gort__sig_altstack_unmap(gort__m_t *mp)
{
    if (!mp->altstack)
        return;
    int saved = errno;
    munmap(mp->altstack, mp->altstack_size);
    mp->altstack = NULL;
    errno = saved;
}

void gort__sig_altstack_install(gort__m_t *mp)
{
    int saved = errno;
    stack_t old;
    /* A thread that already has one (a sanitizer's, or the user's) keeps it. */
    if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE)) {
        errno = saved;
        gort__sig_altstack_unmap(mp);
        return;
    }
    stack_t ss = {.ss_sp = mp->altstack, .ss_size = mp->altstack_size, .ss_flags = 0};
    if (!mp->altstack || sigaltstack(&ss, NULL) != 0)
        gort__sig_altstack_unmap(mp); /* cannot fail for a mapped 64 KiB stack */
    errno = saved;
}

void gort__sig_altstack_free(gort__m_t *mp)
{
    if (!mp->altstack)
        return;
    int saved = errno;
    stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    munmap(mp->altstack, mp->altstack_size);
    mp->altstack = NULL;
    errno = saved;
}
