/*
 * netpoll.c - the network poller (Go's netpoll.go and netpoll_epoll.go):
 * descriptor I/O that parks goroutines, not threads.
 *
 * A gort_fd_t is Go's pollDesc plus its fdMutex. The descriptor is made
 * non-blocking and registered once with the run's epoll instance,
 * edge-triggered for input and output (EPOLLIN | EPOLLOUT | EPOLLRDHUP |
 * EPOLLET). An operation first tries the system call; on EAGAIN the
 * goroutine parks on the descriptor's read or write slot (netpollblock) and
 * retries when woken.
 *
 * Slots (rg, wg): NIL, READY (an edge arrived that nobody consumed), WAIT
 * (a goroutine is about to park) or the address of the parked goroutine's
 * pollwaiter (on its stack). netpollblock consumes READY or moves NIL to
 * WAIT, then parks with a commit (on g0) that CASes WAIT to its waiter; an
 * edge (netpollunblock with ioready) moves any state to READY and readies
 * the goroutine it displaced; a deadline or a close moves WAIT / the
 * waiter to NIL. Every transition is a CAS on the slot, so each wake-up
 * has exactly one owner and a commit that loses the race does not park.
 * One goroutine per direction waits at a time: rmu / wmu (parking mutexes,
 * Go's fdMutex read and write locks) serialise readers and writers.
 *
 * Lifetime: refs counts the open reference and the operations in flight;
 * gort_fd_close sets CLOSING (no new operation starts), wakes the waiters
 * (-ECANCELED) and drops the open reference; the last reference
 * deregisters and closes the descriptor and returns the gort_fd_t to the
 * pool. Pool entries are never freed while the runtime runs: epoll may
 * still deliver an event for a descriptor that was just closed, so events
 * carry the entry's address tagged with its 16-bit generation (seq, bumped
 * at every reuse; Go's taggedPointer), and stale ones are dropped.
 *
 * Polling (sched.c findrunnable, sysmon.c): an M with nothing to run and a
 * P polls without blocking; the M that would sleep until the next timer
 * (the "timer sleeper") blocks in epoll_wait instead, with the timer as its
 * timeout (epoll_pwait2, in ns, where the kernel has it), and is woken early through an eventfd
 * (netpoll_break, from gort__timer_poke). sysmon polls if nobody has for 10 ms. lastpoll is 0 while
 * an M is blocked in epoll_wait (then others need not poll), else the time of the last poll.
 * Goroutines made runnable are readied as any other: dedicated ones wake their own thread.
 *
 * Locks: pool_lock (leaf) for the pool and the instance; rmu / wmu are
 * goroutine mutexes held across parks, never with a runtime lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/eventfd.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define RELAXED memory_order_relaxed

enum { PD_NIL = 0, PD_READY = 1, PD_WAIT = 2 };
#define REF_CLOSING (1u << 31)
#define TAG_SHIFT   48
#define PTR_MASK    ((1ull << TAG_SHIFT) - 1)

struct gort_fd {
    int fd;
    uint16_t seq;            /* generation; pool_lock (read by the poller) */
    _Atomic uint32_t refs;   /* open ref + ops in flight; REF_CLOSING */
    _Atomic uintptr_t rg;    /* read slot: PD_* or a pollwaiter */
    _Atomic uintptr_t wg;    /* write slot */
    _Atomic bool everr;      /* EPOLLERR seen */
    gort_mutex_t rmu, wmu;   /* one reader, one writer at a time */
    struct gort_fd *next;    /* pool: free list; pool_lock */
    struct gort_fd *allnext; /* every entry; pool_lock */
};

struct pollwaiter {
    gort__g_t *g;
    _Atomic uintptr_t *slot;
    _Atomic bool timedout;
    bool nomem;
    bool counted; /* in waiters: the commit published us */
    gort__timer_t t;
};

static gort__mutex_t pool_lock;
static gort_fd_t *pool_free, *pool_all;
static int epfd = -1, evfd = -1;
static _Atomic bool inited;
static _Atomic uint32_t wakesig; /* a break is pending in the eventfd */
static _Atomic int32_t waiters;  /* goroutines parked in netpollblock */
static _Atomic int64_t lastpoll = 1;
_Atomic uint64_t gort__netpoll_polls, gort__netpoll_readied;

bool gort__netpoll_inited(void)
{
    return atomic_load_explicit(&inited, memory_order_acquire);
}

bool gort__netpoll_waiting(void)
{
    return atomic_load_explicit(&waiters, RELAXED) > 0;
}

bool gort__netpoll_nobody_polls(void)
{
    return atomic_load_explicit(&lastpoll, RELAXED) != 0;
}

/* Go's netpollGenericInit: the instance is made at the first open. */
static int netpoll_init(void)
{
    if (gort__netpoll_inited())
        return 0;
    int err = 0;
    gort__lock(&pool_lock);
    if (!atomic_load(&inited)) {
        int saved = errno;
        epfd = epoll_create1(EPOLL_CLOEXEC);
        evfd = epfd < 0 ? -1 : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
        if (epfd < 0 || evfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, evfd, &ev) != 0) {
            err = -errno;
            if (evfd >= 0)
                close(evfd);
            if (epfd >= 0)
                close(epfd);
            epfd = evfd = -1;
        } else {
            atomic_store(&lastpoll, gort__nanotime());
            /* release: publishes epfd / evfd to gort__netpoll_inited. */
            atomic_store_explicit(&inited, true, memory_order_release);
        }
        errno = saved;
    }
    gort__unlock(&pool_lock);
    return err;
}

/* Go's netpollBreak: wake the M blocked in epoll_wait (at most one write
 * pending). */
void gort__netpoll_break(void)
{
    if (!gort__netpoll_inited())
        return;
    uint32_t zero = 0;
    if (!atomic_compare_exchange_strong(&wakesig, &zero, 1))
        return;
    uint64_t one = 1;
    int saved = errno;
    ssize_t r = write(evfd, &one, sizeof one);
    (void)r; /* EAGAIN: the counter is full, a wake-up is pending anyway */
    errno = saved;
}

/* The slot moves to READY (ioready) or NIL; returns the goroutine that
 * was parked there, for the caller to ready (Go's netpollunblock). */
static gort__g_t *netpollunblock(_Atomic uintptr_t *slot, bool ioready)
{
    for (;;) {
        uintptr_t old = atomic_load(slot);
        if (old == PD_READY)
            return NULL;
        if (old == PD_NIL && !ioready)
            return NULL;
        uintptr_t new = ioready ? PD_READY : PD_NIL;
        /* acq_rel: pairs with the commit's CAS (the waiter is published)
         * and with the waker side of other transitions. */
        if (atomic_compare_exchange_strong(slot, &old, new)) {
            if (old == PD_NIL || old == PD_WAIT)
                return NULL;
            return ((struct pollwaiter *)old)->g;
        }
    }
}

/* epoll_pwait2 (Linux 5.11) takes the timeout in ns; epoll_wait's whole
 * milliseconds would make every timer the sleeper waits for due up to 1 ms
 * late (Go's netpoll rounds the same way). Falls back to epoll_wait where
 * the kernel (or qemu-user, valgrind, a seccomp filter) lacks it; the first
 * such failure decides for good. */
static _Atomic bool no_pwait2;

static int epoll_wait_ns(struct epoll_event *evs, int max, int64_t delay)
{
#ifdef SYS_epoll_pwait2
    if (delay > 0 && !atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        if (delay > (int64_t)1 << 40)
            delay = (int64_t)1 << 40;
        struct timespec ts = {.tv_sec = delay / 1000000000, .tv_nsec = delay % 1000000000};
        long n = syscall(SYS_epoll_pwait2, epfd, evs, max, &ts, NULL, 0);
        if (n >= 0 || errno == EINTR)
            return (int)n;
        /* ENOSYS, or EPERM from a seccomp filter that does not know it
         * (older container runtimes): epoll_wait from now on. */
        atomic_store_explicit(&no_pwait2, true, memory_order_relaxed);
    }
#endif
    int ms = delay < 0 ? -1 : delay == 0 ? 0 : delay < 1000000 ? 1 : (int)(delay / 1000000);
    if (delay > (int64_t)1 << 40)
        ms = 1 << 30;
    return epoll_wait(epfd, evs, max, ms);
}

/* Polls; delay < 0 blocks, 0 does not, > 0 waits up to delay ns. Returns
 * the goroutines made runnable, linked through schedlink (not readied). */
gort__g_t *gort__netpoll(int64_t delay)
{
    if (!gort__netpoll_inited())
        return NULL;
    struct epoll_event evs[128];
    int saved = errno;
    int n = epoll_wait_ns(evs, 128, delay);
    errno = saved;
    gort__stat_add(&gort__netpoll_polls, 1);
    gort__g_t *list = NULL;
    for (int i = 0; i < n; i++) {
        uint64_t data = evs[i].data.u64;
        uint32_t e = evs[i].events;
        if (data == 0) { /* the eventfd */
            /* Only a blocking poll consumes a break (as Go's netpoll): a
             * non-blocking one (netpoll_try, findrunnable) could take the
             * poke meant for the sleeper that is about to block, which
             * would then sleep its old timeout. The eventfd is
             * level-triggered: left unread, it wakes the next blocking
             * poll at once. */
            if (delay != 0) {
                uint64_t v;
                ssize_t r = read(evfd, &v, sizeof v);
                (void)r;
                atomic_store(&wakesig, 0);
            }
            continue;
        }
        gort_fd_t *f = (gort_fd_t *)(uintptr_t)(data & PTR_MASK);
        /* acquire: pairs with gort_fd_open's release store of seq. */
        if ((uint16_t)(data >> TAG_SHIFT) != __atomic_load_n(&f->seq, __ATOMIC_ACQUIRE))
            continue; /* closed since: stale */
        if (e & EPOLLERR)
            atomic_store(&f->everr, true);
        gort__g_t *gp;
        if ((e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) &&
            (gp = netpollunblock(&f->rg, true)) != NULL) {
            gp->schedlink = list;
            list = gp;
        }
        if ((e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && (gp = netpollunblock(&f->wg, true)) != NULL) {
            gp->schedlink = list;
            list = gp;
        }
    }
    return list;
}

/* Readies every goroutine of a netpoll list (Go's injectglist). */
void gort__netpoll_inject(gort__g_t *list)
{
    while (list) {
        gort__g_t *gp = list;
        list = gp->schedlink;
        gp->schedlink = NULL;
        gort__stat_add(&gort__netpoll_readied, 1);
        gort__ready_internal(gp);
    }
}

/* An M with nothing to do blocks in epoll_wait (the timer sleeper's
 * role): ns < 0 until an event or a break. */
gort__g_t *gort__netpoll_block(int64_t ns)
{
    atomic_store(&lastpoll, 0);
    gort__g_t *list = gort__netpoll(ns);
    atomic_store(&lastpoll, gort__nanotime());
    return list;
}

/* Non-blocking poll if nobody is blocked in epoll_wait and someone waits
 * (findrunnable, sysmon). */
gort__g_t *gort__netpoll_try(int64_t older_than_ns)
{
    if (!gort__netpoll_inited() || !gort__netpoll_waiting())
        return NULL;
    int64_t last = atomic_load(&lastpoll);
    if (last == 0)
        return NULL;
    int64_t now = gort__nanotime();
    if (older_than_ns > 0 && now - last < older_than_ns)
        return NULL;
    if (!atomic_compare_exchange_strong(&lastpoll, &last, now))
        return NULL; /* someone else is polling */
    return gort__netpoll(0);
}

/* Teardown: every gort_fd_t goes; the descriptors still open are left
 * open (the program owns them). */
void gort__netpoll_teardown(void)
{
    gort__lock(&pool_lock);
    gort_fd_t *f = pool_all;
    while (f) {
        gort_fd_t *next = f->allnext;
        free(f);
        f = next;
    }
    pool_all = pool_free = NULL;
    if (epfd >= 0)
        close(epfd);
    if (evfd >= 0)
        close(evfd);
    epfd = evfd = -1;
    atomic_store(&inited, false);
    atomic_store(&wakesig, 0);
    atomic_store(&waiters, 0);
    atomic_store(&lastpoll, 1);
    gort__unlock(&pool_lock);
}

/* ---- waiting ---- */

static void poll_timeout(gort__timer_t *t, int64_t now)
{
    (void)now;
    struct pollwaiter *w = t->arg;
    atomic_store(&w->timedout, true);
    for (;;) {
        uintptr_t v = atomic_load(w->slot);
        if (v == (uintptr_t)w) {
            if (atomic_compare_exchange_strong(w->slot, &v, PD_NIL)) {
                gort__ready(w->g);
                return;
            }
        } else if (v == PD_WAIT) {
            /* Not parked yet: its commit will fail and it will see the
             * timeout. */
            if (atomic_compare_exchange_strong(w->slot, &v, PD_NIL))
                return;
        } else {
            return; /* an edge or a close got there first */
        }
    }
}

/* Go's netpollblockcommit, on g0: arm the deadline, then publish the
 * waiter; false (run on) if an edge, a close or the deadline came first. */
static bool netpoll_commit(gort__g_t *gp, void *arg)
{
    struct pollwaiter *w = arg;
    if (w->t.f && gort__addtimer(&w->t) != 0) {
        w->nomem = true;
        w->t.f = NULL;
        return false;
    }
    /* Everything that touches w or gp happens before the CAS: once w is
     * published, a waker may ready the goroutine, which may then run on
     * another thread and reuse this stack. */
    bool dedicated = gp->dedicated;
    w->counted = true;
    atomic_fetch_add(&waiters, 1);
    uintptr_t expect = PD_WAIT;
    if (!atomic_compare_exchange_strong(w->slot, &expect, (uintptr_t)w)) {
        w->counted = false;
        atomic_fetch_sub(&waiters, 1);
        return false;
    }
    /* A normal M goes on into findrunnable and becomes the poller when it
     * runs dry; a dedicated one only waits for its G: make sure some M
     * polls. */
    if (dedicated && gort__netpoll_nobody_polls())
        gort__wakep();
    return true;
}

static bool closing(gort_fd_t *f)
{
    return atomic_load(&f->refs) & REF_CLOSING;
}

/* Go's netpollblock: waits for an edge on slot. Returns 0 (retry the
 * call), -ETIMEDOUT, -ECANCELED (closed) or -ENOMEM. */
static int netpollblock(gort_fd_t *f, _Atomic uintptr_t *slot, int64_t deadline)
{
    for (;;) {
        uintptr_t v = PD_READY;
        if (atomic_compare_exchange_strong(slot, &v, PD_NIL))
            return 0; /* an edge nobody consumed yet */
        v = PD_NIL;
        if (atomic_compare_exchange_strong(slot, &v, PD_WAIT))
            break;
        if (v != PD_READY)
            gort__throw("netpoll: two goroutines wait in one direction");
    }
    /* Re-check after announcing WAIT: a close or deadline before it. */
    if (closing(f) || (deadline != GORT_NO_DEADLINE && deadline <= gort__nanotime())) {
        uintptr_t old = atomic_exchange(slot, PD_NIL);
        if (old == PD_READY)
            return 0;
        return closing(f) ? -ECANCELED : -ETIMEDOUT;
    }
    struct pollwaiter w;
    memset(&w, 0, sizeof w);
    w.g = gort__getg();
    w.slot = slot;
    if (deadline != GORT_NO_DEADLINE) {
        w.t.when = deadline;
        w.t.f = poll_timeout;
        w.t.arg = &w;
        w.t.idx = -1;
    }
    gort__park(netpoll_commit, &w, waitReasonIOWait);
    /* Whoever moved the slot away from &w (edge, close, deadline) readied
     * us; a commit that lost its race did not park at all. */
    if (w.counted)
        atomic_fetch_sub(&waiters, 1);
    if (w.t.f)
        gort__deltimer(&w.t);
    uintptr_t old = atomic_exchange(slot, PD_NIL);
    if (old == (uintptr_t)&w)
        gort__throw("netpoll: woken while still waiting");
    if (w.nomem)
        return -ENOMEM;
    if (old == PD_READY)
        return 0;
    if (closing(f))
        return -ECANCELED;
    if (atomic_load(&w.timedout))
        return -ETIMEDOUT;
    return 0;
}

/* ---- descriptors ---- */

static bool fd_incref(gort_fd_t *f)
{
    uint32_t r = atomic_load(&f->refs);
    do {
        if (r & REF_CLOSING)
            return false;
    } while (!atomic_compare_exchange_weak(&f->refs, &r, r + 1));
    return true;
}

static void fd_destroy(gort_fd_t *f)
{
    int saved = errno;
    epoll_ctl(epfd, EPOLL_CTL_DEL, f->fd, NULL);
    close(f->fd);
    errno = saved;
    gort__lock(&pool_lock);
    __atomic_store_n(&f->seq, (uint16_t)(f->seq + 1), __ATOMIC_RELAXED);
    f->next = pool_free;
    pool_free = f;
    gort__unlock(&pool_lock);
}

static void fd_decref(gort_fd_t *f)
{
    if (atomic_fetch_sub(&f->refs, 1) == (REF_CLOSING | 1))
        fd_destroy(f);
}

static gort_fd_t *fd_alloc(void)
{
    gort__lock(&pool_lock);
    gort_fd_t *f = pool_free;
    if (f) {
        pool_free = f->next;
    } else {
        f = calloc(1, sizeof *f);
        if (f) {
            f->allnext = pool_all;
            pool_all = f;
        }
    }
    gort__unlock(&pool_lock);
    return f;
}

GORT_API int gort_fd_open(gort_fd_t **out, int fd)
{
    if (!gort__api_g())
        return -EPERM;
    if (!out || fd < 0)
        return -EINVAL;
    int err = netpoll_init();
    if (err)
        return err;
    int saved = errno;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)) {
        err = -errno;
        errno = saved;
        return err;
    }
    /* On failure below the descriptor's flags are put back as they were. */
    bool setnb = !(fl & O_NONBLOCK);
    gort_fd_t *f = fd_alloc();
    if (!f) {
        if (setnb)
            (void)fcntl(fd, F_SETFL, fl);
        errno = saved;
        return -ENOMEM;
    }
    f->fd = fd;
    atomic_store(&f->rg, PD_NIL);
    atomic_store(&f->wg, PD_NIL);
    atomic_store(&f->everr, false);
    gort_mutex_t m0 = GORT_MUTEX_INIT;
    f->rmu = m0;
    f->wmu = m0;
    atomic_store(&f->refs, 1);
    /* release: the entry is published to the poller through epoll, which
     * TSan cannot see; pairs with the acquire load of seq in gort__netpoll
     * (free on x86 and arm64 alike: a plain or stlrh store). */
    __atomic_store_n(&f->seq, f->seq, __ATOMIC_RELEASE);
    struct epoll_event ev;
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = (uint64_t)(uintptr_t)f | ((uint64_t)f->seq << TAG_SHIFT);
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        err = -errno;
        if (setnb)
            (void)fcntl(fd, F_SETFL, fl);
        errno = saved;
        gort__lock(&pool_lock);
        f->next = pool_free;
        pool_free = f;
        gort__unlock(&pool_lock);
        return err; /* -EPERM: a regular file or directory, not pollable */
    }
    errno = saved;
    *out = f;
    return 0;
}

GORT_API int gort_fd_close(gort_fd_t *f)
{
    if (!f)
        return -EINVAL;
    uint32_t r = atomic_fetch_or(&f->refs, REF_CLOSING);
    if (r & REF_CLOSING)
        return -EBADF;
    /* Go's pollDesc.evict: wake both directions; they see CLOSING. */
    gort__g_t *gp;
    if ((gp = netpollunblock(&f->rg, false)) != NULL)
        gort__ready(gp);
    if ((gp = netpollunblock(&f->wg, false)) != NULL)
        gort__ready(gp);
    fd_decref(f);
    return 0;
}

GORT_API int gort_fd_fileno(gort_fd_t *f)
{
    return f ? f->fd : -EINVAL;
}

/* Runs op until it stops saying EAGAIN, parking in between. */
typedef ssize_t (*io_fn)(gort_fd_t *f, void *a, void *b, size_t n);

static ssize_t do_io(gort_fd_t *f, bool write, io_fn op, void *a, void *b, size_t n,
                     int64_t deadline)
{
    if (!gort__api_g())
        return -EPERM;
    if (!f)
        return -EINVAL;
    if (!fd_incref(f))
        return -EBADF;
    gort_mutex_t *mu = write ? &f->wmu : &f->rmu;
    gort_mutex_lock(mu);
    ssize_t r;
    for (;;) {
        if (closing(f)) {
            r = -ECANCELED;
            break;
        }
        r = op(f, a, b, n);
        if (r != -EAGAIN)
            break;
        int err = netpollblock(f, write ? &f->wg : &f->rg, deadline);
        if (err) {
            r = err;
            break;
        }
    }
    gort_mutex_unlock(mu);
    fd_decref(f);
    return r;
}

static ssize_t sys_read(gort_fd_t *f, void *buf, void *unused, size_t n)
{
    (void)unused;
    int saved = errno;
    ssize_t r;
    do
        r = read(f->fd, buf, n);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        r = errno == EWOULDBLOCK ? -EAGAIN : -errno;
    errno = saved;
    return r;
}

GORT_API ssize_t gort_read(gort_fd_t *f, void *buf, size_t n, int64_t deadline_ns)
{
    return do_io(f, false, sys_read, buf, NULL, n, deadline_ns);
}

/* Writes all of it: one call per edge, as Go's fd.Write loops. */
struct wr {
    const char *p;
    size_t done;
};

static ssize_t sys_write_all(gort_fd_t *f, void *arg, void *unused, size_t n)
{
    (void)unused;
    struct wr *w = arg;
    int saved = errno;
    while (w->done < n) {
        ssize_t r = write(f->fd, w->p + w->done, n - w->done);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            r = errno == EWOULDBLOCK ? -EAGAIN : -errno;
            errno = saved;
            if (r == -EAGAIN || w->done == 0)
                return r;
            return (ssize_t)w->done; /* a short count; the next call reports */
        }
        w->done += (size_t)r;
    }
    errno = saved;
    return (ssize_t)w->done;
}

GORT_API ssize_t gort_write(gort_fd_t *f, const void *buf, size_t n, int64_t deadline_ns)
{
    struct wr w = {buf, 0};
    ssize_t r = do_io(f, true, sys_write_all, &w, NULL, n, deadline_ns);
    if (r < 0 && w.done > 0)
        return (ssize_t)w.done; /* timed out or closed part-way */
    return r;
}

struct acc {
    struct sockaddr *addr;
    socklen_t *len;
};

static ssize_t sys_accept(gort_fd_t *f, void *arg, void *unused, size_t n)
{
    (void)unused;
    (void)n;
    struct acc *a = arg;
    int saved = errno;
    int r;
    do
        r = accept4(f->fd, a->addr, a->len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    while (r < 0 && (errno == EINTR || errno == ECONNABORTED));
    ssize_t ret = r >= 0 ? r : errno == EWOULDBLOCK ? -EAGAIN : -errno;
    errno = saved;
    return ret;
}

GORT_API int gort_accept(gort_fd_t *l, gort_fd_t **out, struct sockaddr *addr, socklen_t *addrlen,
                         int64_t deadline_ns)
{
    if (!out)
        return -EINVAL;
    struct acc a = {addr, addrlen};
    ssize_t fd = do_io(l, false, sys_accept, &a, NULL, 0, deadline_ns);
    if (fd < 0)
        return (int)fd;
    int err = gort_fd_open(out, (int)fd);
    if (err) {
        close((int)fd);
        return err;
    }
    return 0;
}

static ssize_t sys_connect_check(gort_fd_t *f, void *arg, void *unused, size_t n)
{
    (void)unused;
    (void)n;
    int *started = arg;
    int saved = errno;
    ssize_t ret = 0;
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (!*started) {
        *started = 1;
        errno = saved;
        return -EAGAIN; /* connect was EINPROGRESS: wait for writability */
    }
    if (getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
        ret = -errno;
    else if (soerr == EINPROGRESS || soerr == EALREADY)
        ret = -EAGAIN;
    else if (soerr != 0)
        ret = -soerr;
    else {
        /* No error yet is not success: a wake-up before the handshake
         * ended (Go checks getpeername too). */
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getpeername(f->fd, (struct sockaddr *)&ss, &sl) != 0)
            ret = errno == ENOTCONN ? -EAGAIN : -errno;
    }
    errno = saved;
    return ret;
}

GORT_API int gort_connect(gort_fd_t *f, const struct sockaddr *addr, socklen_t addrlen,
                          int64_t deadline_ns)
{
    if (!gort__api_g())
        return -EPERM;
    if (!f || !addr)
        return -EINVAL;
    int saved = errno;
    int r;
    do
        r = connect(f->fd, addr, addrlen);
    while (r < 0 && errno == EINTR);
    int err = r == 0 ? 0 : -errno;
    errno = saved;
    if (err != -EINPROGRESS)
        return err;
    int started = 0;
    /* A pending connect: wait until the socket is writable, then read the
     * outcome (Go's netFD.connect). */
    return (int)do_io(f, true, sys_connect_check, &started, NULL, 0, deadline_ns);
}

static ssize_t sys_poll_now(gort_fd_t *f, void *arg, void *unused, size_t n)
{
    (void)unused;
    (void)n;
    int events = *(int *)arg;
    struct pollfd p = {f->fd, (short)(events == GORT_FD_READ ? POLLIN : POLLOUT), 0};
    int saved = errno;
    int r = poll(&p, 1, 0);
    ssize_t ret = r < 0 ? -errno : r == 0 ? -EAGAIN : events;
    errno = saved;
    return ret; /* POLLHUP / POLLERR count as ready: the call will tell */
}

GORT_API int gort_fd_wait(gort_fd_t *f, int events, int64_t deadline_ns)
{
    if (events != GORT_FD_READ && events != GORT_FD_WRITE)
        return -EINVAL;
    /* Ready now (poll), else the next edge: with edge-triggered epoll, a
     * descriptor that is not ready now will produce one. */
    return (int)do_io(f, events == GORT_FD_WRITE, sys_poll_now, &events, NULL, 0, deadline_ns);
}
