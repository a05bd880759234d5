/*
 * futex.c - the OS primitives the scheduler sleeps and wakes with: futex
 * wait/wake on a 32-bit word, the monotonic clock, and the short pauses used
 * while spinning (Go's os_linux.go futexsleep/futexwakeup, procyield, osyield).
 *
 * Every futex call made by the runtime goes through here so that it can be
 * counted (gort_stats futex_sleeps / futex_wakes): the counters are per M and
 * written by the M itself; calls from foreign threads go to a shared atomic.
 *
 * Nothing here takes a lock. errno is saved and restored around every system
 * call because the library never writes errno (the caller's errno may belong
 * to a goroutine that resumes on another thread).
 */
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static _Atomic uint64_t foreign_futex_sleeps, foreign_futex_wakes;

static void count(bool sleep)
{
    gort__m_t *mp = gort__getm();
    if (mp)
        gort__stat_add(sleep ? &mp->stats.futex_sleeps : &mp->stats.futex_wakes, 1);
    else
        atomic_fetch_add_explicit(sleep ? &foreign_futex_sleeps : &foreign_futex_wakes, 1,
                                  memory_order_relaxed);
}

void gort__futex_foreign_counts(uint64_t *sleeps, uint64_t *wakes)
{
    *sleeps = atomic_load_explicit(&foreign_futex_sleeps, memory_order_relaxed);
    *wakes = atomic_load_explicit(&foreign_futex_wakes, memory_order_relaxed);
}

int gort__futexsleep(_Atomic uint32_t *addr, uint32_t val, int64_t ns)
{
    struct timespec ts, *tsp = NULL;
    if (ns >= 0) {
        ts.tv_sec = ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        tsp = &ts;
    }
    count(true);
    int saved = errno;
    long r = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, tsp, NULL, 0);
    int err = r < 0 ? errno : 0;
    errno = saved;
    if (err == ETIMEDOUT)
        return -ETIMEDOUT;
    if (err == EINTR)
        return -EINTR;
    return 0; /* woken, or EAGAIN: the value had already changed */
}

void gort__futexwakeup(_Atomic uint32_t *addr, uint32_t cnt)
{
    count(false);
    int saved = errno;
    long r = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, cnt, NULL, NULL, 0);
    if (r < 0)
        gort__throw("futexwakeup failed");
    errno = saved;
}

int64_t gort__nanotime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void gort__osyield(void)
{
    int saved = errno;
    sched_yield();
    errno = saved;
}

void gort__procyield(uint32_t cycles)
{
    for (uint32_t i = 0; i < cycles; i++) {
#if defined(__x86_64__)
        __asm__ __volatile__("pause" ::: "memory");
#elif defined(__aarch64__)
        __asm__ __volatile__("yield" ::: "memory");
#endif
    }
}

void gort__usleep(uint32_t us)
{
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};
    int saved = errno;
    nanosleep(&ts, NULL);
    errno = saved;
}
