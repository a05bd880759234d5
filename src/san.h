/*
 * san.h - the one shim between the runtime and the sanitizers and valgrind
 * (mimalloc's track.h). The context switch calls these in the same frame as
 * gort__ctx_switch:
 *
 *   san_switch_begin(from, to);   // ASan: start_switch_fiber; TSan: switch_to_fiber
 *   gort__ctx_switch(&from->sched_sp, to->sched_sp);
 *   san_switch_end(from);          // ASan: finish_switch_fiber, on the new stack
 *
 * `from` in san_switch_end is the G whose frame is now running again (the
 * one that called gort__ctx_switch earlier). A G that exits passes
 * exiting=true so ASan drops its fake stack.
 *
 * valgrind: stacks are registered when mapped and deregistered when unmapped,
 * so it recognises goroutine stacks and the switches between them.
 */
#ifndef GORT_SAN_H
#define GORT_SAN_H

#include "types.h"

#if defined(__SANITIZE_ADDRESS__)
#define GORT__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GORT__ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define GORT__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GORT__TSAN 1
#endif
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define GORT__VALGRIND 1
#endif
#endif

#ifdef GORT__ASAN
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                     size_t *size_old);
#endif
#ifdef GORT__TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif

/* Bounds of a G's stack for ASan; g0 records its thread's stack. */
static inline void san_switch_begin(gort__g_t *from, gort__g_t *to, bool exiting)
{
#ifdef GORT__ASAN
    __sanitizer_start_switch_fiber(exiting ? NULL : &from->asan_fake_stack, (void *)to->stack.lo,
                                   to->stack.hi - to->stack.lo);
#else
    (void)from;
    (void)exiting;
#endif
#ifdef GORT__TSAN
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#else
    (void)to;
#endif
}

static inline void san_switch_end(gort__g_t *self)
{
#ifdef GORT__ASAN
    __sanitizer_finish_switch_fiber(self->asan_fake_stack, NULL, NULL);
#else
    (void)self;
#endif
}

/* Called once for a new G before its first switch, and when a G struct is
 * freed for good. */
static inline void san_g_create(gort__g_t *gp)
{
#ifdef GORT__TSAN
    if (!gp->tsan_fiber)
        gp->tsan_fiber = __tsan_create_fiber(0);
#else
    (void)gp;
#endif
}

static inline void san_g_destroy(gort__g_t *gp)
{
#ifdef GORT__TSAN
    if (gp->tsan_fiber)
        __tsan_destroy_fiber(gp->tsan_fiber);
    gp->tsan_fiber = NULL;
#else
    (void)gp;
#endif
}

/* g0: the thread's own stack and fiber. */
static inline void san_g0_init(gort__g_t *g0)
{
#ifdef GORT__TSAN
    g0->tsan_fiber = __tsan_get_current_fiber();
#else
    (void)g0;
#endif
}

static inline uint32_t san_stack_register(uintptr_t lo, uintptr_t hi)
{
#ifdef GORT__VALGRIND
    if (RUNNING_ON_VALGRIND) /* ids start at 0; store id + 1 so 0 means none */
        return (uint32_t)VALGRIND_STACK_REGISTER(lo, hi) + 1;
    return 0;
#else
    (void)lo;
    (void)hi;
    return 0;
#endif
}

static inline void san_stack_deregister(uint32_t id)
{
#ifdef GORT__VALGRIND
    if (id)
        VALGRIND_STACK_DEREGISTER(id - 1);
#else
    (void)id;
#endif
}

/* A dead G's stack may still carry ASan poison from the frames that were
 * live when it exited; clear it before the stack is reused. */
#ifdef GORT__ASAN
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#endif
static inline void san_stack_unpoison(uintptr_t lo, uintptr_t hi)
{
#ifdef GORT__ASAN
    __asan_unpoison_memory_region((void *)lo, hi - lo);
#else
    (void)lo;
    (void)hi;
#endif
}

#endif /* GORT_SAN_H */
