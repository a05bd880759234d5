/*
 * stack.c - goroutine stacks: mmap'd, a guard area below each, reused
 * through per-P caches and global pools.
 *
 * The problem: a million parked goroutines, each with a guard page, on a
 * machine whose vm.max_map_count is 65530. One mmap plus one mprotect'd guard
 * per stack costs two VMAs per stack, so that design stops near 32,000
 * goroutines. Instead:
 *
 *  - Stacks are carved from chunks: one mmap (MAP_NORESERVE) holds many
 *    slots of [guard | stack] of one size class, and adjacent chunks merge
 *    into one VMA. Memory is only used for pages a goroutine touches: a
 *    parked goroutine that used 3 KiB of stack costs one page plus its G.
 *  - Guards are made with madvise(MADV_GUARD_INSTALL) (Linux 6.13+), which
 *    marks page-table entries and creates no VMA, so a million guards cost
 *    nothing in the VMA budget ("guard-install" mode).
 *  - On older kernels (or under an emulator that ignores the advice) guards
 *    are PROT_NONE pages made by mprotect ("mprotect" mode) while the
 *    process stays within half of vm.max_map_count (each such guard splits
 *    its chunk's mapping: two VMAs, so a quarter of it in guards); past that, stacks get a
 *    canary word at their lowest address instead ("canary" mode), which the
 *    scheduler checks every time the goroutine stops running. Which mode is
 *    in use is detected at start-up (a guard is installed on a scratch page
 *    and write(2) from it must fail with EFAULT) and reported by
 *    gort__stack_guard_mode().
 *
 * Size classes are powers of two from 8 KiB to 1 MiB (STACK_NCLASS classes);
 * larger stacks get their own mapping and are unmapped when freed. The guard
 * is GUARD_BYTES (16 KiB) so that a frame of a few KiB cannot jump over it.
 *
 * Reuse: a dead G keeps its stack on the P's G free list (sched.c), so the
 * common spawn path touches no stack code at all. Stacks of other sizes go
 * to the P's stack cache (p->stackcache[cls], a list linked through a word
 * at the top of each stack, a page that was touched anyway) which spills
 * half to the global pool at STACKCACHE_MAX and refills from it.
 *
 * Locks: each class pool has its own mutex (a leaf). Chunks are recorded in
 * a list under chunks_lock (a leaf) so gort__stack_freeall can unmap them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "san.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

enum { STACK_NCLASS = 8, STACK_CLASS_LARGE = 0xff };
enum { STACKCACHE_MAX = 32, STACKCACHE_REFILL = 16 };
#define GUARD_BYTES   ((size_t)16 * 1024)
#define CHUNK_BYTES   ((size_t)4 * 1024 * 1024) /* target address space per chunk */
#define STACK_CANARY  0x6f72745f636b7374ull     /* "tskc_tro" */
#define MINCLASS_SIZE ((size_t)8 * 1024)

_Static_assert(STACK_NCLASS <= sizeof(((gort__p_t *)0)->stackcache) / sizeof(void *),
               "p->stackcache too small");

typedef struct chunk {
    struct chunk *next;
    void *base;
    size_t len;
} chunk_t;

typedef struct pool {
    gort__mutex_t lock;
    uintptr_t freelist; /* stack hi values linked through link_of(); lock */
    int32_t nfree;      /* lock */
    uintptr_t carve;    /* next unused slot in the current chunk; lock */
    uintptr_t carveend;
} pool_t;

static pool_t pools[STACK_NCLASS];
static gort__mutex_t chunks_lock;
static chunk_t *chunks; /* chunks_lock */
static size_t pagesize;
static int guard_mode;                  /* set once by gort__stack_sysinit */
static _Atomic int64_t mprotect_guards; /* guards made by mprotect, for the VMA budget */
static int64_t mprotect_budget;
_Atomic uint64_t gort__stacks_mapped;
_Atomic uint64_t gort__stack_bytes_mapped;

/* The free-list link of a free stack lives in the top 16 bytes. */
static uintptr_t *link_of(uintptr_t hi)
{
    return (uintptr_t *)(hi - 16);
}

static size_t class_size(uint32_t cls)
{
    return MINCLASS_SIZE << cls;
}

/* Tests the guard with write(2): the kernel must refuse to read the page. */
static bool guard_works(void *page)
{
    int fds[2];
    if (pipe(fds) != 0)
        return false;
    ssize_t r = write(fds[1], page, 1);
    bool ok = r < 0 && errno == EFAULT;
    close(fds[0]);
    close(fds[1]);
    return ok;
}

static long read_max_map_count(void)
{
    long v = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = 65530;
        fclose(f);
    }
    return v;
}

int gort__stack_sysinit(void)
{
    if (guard_mode != STACK_GUARD_NONE)
        return 0;
    int saved = errno;
    pagesize = (size_t)sysconf(_SC_PAGESIZE);
    /* A PROT_NONE guard inside a chunk splits its mapping: two more VMAs
     * per guard, so half of the map count is a quarter of it in guards. */
    mprotect_budget = read_max_map_count() / 4 - 512;
    if (mprotect_budget < 0)
        mprotect_budget = 0;
    const char *force = getenv("GORT_STACK_GUARD"); /* testing aid: install|mprotect|canary */
    void *p = mmap(NULL, 2 * pagesize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int mode = STACK_GUARD_MPROTECT;
    if (p != MAP_FAILED) {
        if (madvise(p, pagesize, MADV_GUARD_INSTALL) == 0 && guard_works(p))
            mode = STACK_GUARD_INSTALL;
        munmap(p, 2 * pagesize);
    }
    if (force && strcmp(force, "mprotect") == 0)
        mode = STACK_GUARD_MPROTECT;
    else if (force && strcmp(force, "canary") == 0)
        mode = STACK_GUARD_CANARY;
    guard_mode = mode;
    errno = saved;
    return 0;
}

const char *gort__stack_guard_mode(void)
{
    switch (guard_mode) {
    case STACK_GUARD_INSTALL:
        return "guard-install";
    case STACK_GUARD_MPROTECT:
        return "mprotect";
    case STACK_GUARD_CANARY:
        return "canary";
    }
    return "none";
}

size_t gort__stack_roundsize(size_t size)
{
    if (size < GORT_STACK_MIN || size > GORT_STACK_MAX)
        return 0;
    if (size <= class_size(STACK_NCLASS - 1)) {
        size_t s = MINCLASS_SIZE;
        while (s < size)
            s <<= 1;
        return s;
    }
    size_t ps = pagesize ? pagesize : 4096;
    return (size + ps - 1) & ~(ps - 1);
}

static uint32_t class_of(size_t size)
{
    for (uint32_t c = 0; c < STACK_NCLASS; c++)
        if (class_size(c) == size)
            return c;
    return STACK_CLASS_LARGE;
}

/* Makes the guard below a new stack; returns the mode actually used. */
static uint32_t make_guard(uintptr_t guard_lo, uintptr_t lo)
{
    int saved = errno;
    uint32_t kind = STACK_GUARD_CANARY;
    if (guard_mode == STACK_GUARD_INSTALL) {
        if (madvise((void *)guard_lo, GUARD_BYTES, MADV_GUARD_INSTALL) == 0)
            kind = STACK_GUARD_INSTALL;
    } else if (guard_mode == STACK_GUARD_MPROTECT) {
        /* Counted only while it stands (freeing a large stack gives it
         * back), so failures and refusals do not use up the budget. */
        if (atomic_fetch_add(&mprotect_guards, 1) < mprotect_budget &&
            mprotect((void *)guard_lo, GUARD_BYTES, PROT_NONE) == 0)
            kind = STACK_GUARD_MPROTECT;
        else
            atomic_fetch_sub(&mprotect_guards, 1);
    }
    if (kind == STACK_GUARD_CANARY)
        *(volatile uint64_t *)lo = STACK_CANARY;
    errno = saved;
    return kind;
}

static void *map_region(size_t len)
{
    int saved = errno;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    errno = saved;
    if (p == MAP_FAILED)
        return NULL;
    atomic_fetch_add_explicit(&gort__stack_bytes_mapped, len, memory_order_relaxed);
    return p;
}

static bool record_chunk(void *base, size_t len)
{
    chunk_t *c = malloc(sizeof *c);
    if (!c)
        return false;
    c->base = base;
    c->len = len;
    gort__lock(&chunks_lock);
    c->next = chunks;
    chunks = c;
    gort__unlock(&chunks_lock);
    return true;
}

/* Takes one never-used slot of class cls from the pool's chunk (mapping a new
 * chunk when needed). Caller holds pool->lock. Returns the stack's hi. */
static uintptr_t carve(pool_t *pool, uint32_t cls, gort__stack_t *out)
{
    size_t ssize = class_size(cls), slot = GUARD_BYTES + ssize;
    if (pool->carve == pool->carveend) {
        size_t n = CHUNK_BYTES / slot;
        if (n < 4)
            n = 4;
        void *base = map_region(n * slot);
        if (!base)
            return 0;
        if (!record_chunk(base, n * slot)) {
            munmap(base, n * slot);
            return 0;
        }
        pool->carve = (uintptr_t)base;
        pool->carveend = (uintptr_t)base + n * slot;
    }
    uintptr_t guard_lo = pool->carve;
    pool->carve += slot;
    out->lo = guard_lo + GUARD_BYTES;
    out->hi = out->lo + ssize;
    out->cls = cls;
    out->kind = make_guard(guard_lo, out->lo);
    out->vg_id = san_stack_register(out->lo, out->hi);
    atomic_fetch_add_explicit(&gort__stacks_mapped, 1, memory_order_relaxed);
    return out->hi;
}

/* A free stack's descriptor is rebuilt from its hi and class; the guard kind
 * and valgrind id are stored next to the link. */
static void push_free(uintptr_t *head, const gort__stack_t *st)
{
    uintptr_t *l = link_of(st->hi);
    l[0] = *head;
    l[1] = (uintptr_t)st->kind | ((uintptr_t)st->vg_id << 8);
    *head = st->hi;
}

static void pop_free(uintptr_t *head, uint32_t cls, gort__stack_t *out)
{
    uintptr_t hi = *head;
    uintptr_t *l = link_of(hi);
    *head = l[0];
    out->hi = hi;
    out->lo = hi - class_size(cls);
    out->cls = cls;
    out->kind = (uint32_t)(l[1] & 0xff);
    out->vg_id = (uint32_t)(l[1] >> 8);
}

static int alloc_large(size_t size, gort__stack_t *out)
{
    void *base = map_region(GUARD_BYTES + size);
    if (!base)
        return -ENOMEM;
    out->lo = (uintptr_t)base + GUARD_BYTES;
    out->hi = out->lo + size;
    out->cls = STACK_CLASS_LARGE;
    out->kind = make_guard((uintptr_t)base, out->lo);
    out->vg_id = san_stack_register(out->lo, out->hi);
    atomic_fetch_add_explicit(&gort__stacks_mapped, 1, memory_order_relaxed);
    return 0;
}

int gort__stackalloc(gort__p_t *pp, size_t size, gort__stack_t *out)
{
    uint32_t cls = class_of(size);
    if (cls == STACK_CLASS_LARGE)
        return alloc_large(size, out);
    uintptr_t *cache = pp ? (uintptr_t *)&pp->stackcache[cls] : NULL;
    if (cache && *cache) {
        pop_free(cache, cls, out);
        pp->stackcachecnt[cls]--;
        return 0;
    }
    pool_t *pool = &pools[cls];
    gort__lock(&pool->lock);
    if (pool->freelist) {
        pop_free(&pool->freelist, cls, out);
        pool->nfree--;
        /* Refill the P's cache while we hold the lock. */
        while (cache && pool->freelist && pp->stackcachecnt[cls] < STACKCACHE_REFILL) {
            gort__stack_t st;
            pop_free(&pool->freelist, cls, &st);
            pool->nfree--;
            push_free(cache, &st);
            pp->stackcachecnt[cls]++;
        }
        gort__unlock(&pool->lock);
        return 0;
    }
    uintptr_t hi = carve(pool, cls, out);
    gort__unlock(&pool->lock);
    return hi ? 0 : -ENOMEM;
}

void gort__stackfree(gort__p_t *pp, gort__stack_t *st)
{
    if (st->cls == STACK_CLASS_LARGE) {
        san_stack_deregister(st->vg_id);
        int saved = errno;
        munmap((void *)(st->lo - GUARD_BYTES), GUARD_BYTES + (st->hi - st->lo));
        errno = saved;
        atomic_fetch_sub_explicit(&gort__stack_bytes_mapped, GUARD_BYTES + (st->hi - st->lo),
                                  memory_order_relaxed);
        atomic_fetch_sub_explicit(&gort__stacks_mapped, 1, memory_order_relaxed);
        if (st->kind == STACK_GUARD_MPROTECT)
            atomic_fetch_sub(&mprotect_guards, 1);
        return;
    }
    uint32_t cls = st->cls;
    if (pp) {
        uintptr_t *cache = (uintptr_t *)&pp->stackcache[cls];
        push_free(cache, st);
        if (++pp->stackcachecnt[cls] < STACKCACHE_MAX)
            return;
        /* Spill half to the global pool. */
        pool_t *pool = &pools[cls];
        gort__lock(&pool->lock);
        while (pp->stackcachecnt[cls] > STACKCACHE_MAX / 2) {
            gort__stack_t s;
            pop_free(cache, cls, &s);
            pp->stackcachecnt[cls]--;
            push_free(&pool->freelist, &s);
            pool->nfree++;
        }
        gort__unlock(&pool->lock);
        return;
    }
    pool_t *pool = &pools[cls];
    gort__lock(&pool->lock);
    push_free(&pool->freelist, st);
    pool->nfree++;
    gort__unlock(&pool->lock);
}

void gort__stackcache_clear(gort__p_t *pp)
{
    for (uint32_t cls = 0; cls < STACK_NCLASS; cls++) {
        uintptr_t *cache = (uintptr_t *)&pp->stackcache[cls];
        if (!*cache)
            continue;
        pool_t *pool = &pools[cls];
        gort__lock(&pool->lock);
        while (*cache) {
            gort__stack_t s;
            pop_free(cache, cls, &s);
            push_free(&pool->freelist, &s);
            pool->nfree++;
        }
        pp->stackcachecnt[cls] = 0;
        gort__unlock(&pool->lock);
    }
}

bool gort__stack_is_guard(const gort__stack_t *st, uintptr_t addr)
{
    if (st->kind != STACK_GUARD_INSTALL && st->kind != STACK_GUARD_MPROTECT)
        return false;
    return addr < st->lo && addr >= st->lo - GUARD_BYTES;
}

bool gort__stack_canary_check(const gort__stack_t *st)
{
    return *(volatile uint64_t *)st->lo == STACK_CANARY;
}

/* Unmaps every chunk and forgets every pooled stack. Runs when no goroutine
 * exists any more (gort_main teardown). Stacks still held by G structs must
 * not be used afterwards; valgrind registrations of pooled stacks are
 * dropped with them (Gs' stacks are deregistered by their owners first). */
void gort__stack_freeall(void)
{
    for (uint32_t cls = 0; cls < STACK_NCLASS; cls++) {
        pool_t *pool = &pools[cls];
        gort__lock(&pool->lock);
        while (pool->freelist) {
            gort__stack_t s;
            pop_free(&pool->freelist, cls, &s);
            san_stack_deregister(s.vg_id);
        }
        pool->nfree = 0;
        pool->carve = pool->carveend = 0;
        gort__unlock(&pool->lock);
    }
    gort__lock(&chunks_lock);
    chunk_t *c = chunks;
    chunks = NULL;
    gort__unlock(&chunks_lock);
    int saved = errno;
    while (c) {
        chunk_t *next = c->next;
        munmap(c->base, c->len);
        atomic_fetch_sub_explicit(&gort__stack_bytes_mapped, c->len, memory_order_relaxed);
        free(c);
        c = next;
    }
    errno = saved;
    atomic_store(&gort__stacks_mapped, 0);
    atomic_store(&mprotect_guards, 0);
}
