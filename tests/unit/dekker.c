/*
 * dekker.c - gort__store_seqcst (internal.h), the store half of every
 * Dekker pair in the runtime (a dedicated G's wake-up, entersyscall against
 * a stop, the timer sleeper, shutdown): a store followed by a load of
 * another location is never reordered, also under qemu-user, where a plain
 * seq_cst store (aarch64 stlr; ldar) let the load pass the store in 2418 of
 * this test's 5000 rounds there. Natively on x86 the hardware keeps the
 * order whatever the store is, so this test can only fail in CI's aarch64
 * stage (qemu-user), which is the point of it.
 *
 * The store-buffering litmus test: two threads each store 1 to their own
 * flag, then load the other's; in no round may both load 0. Each round
 * starts the two threads as closely together as a shared counter and a
 * varying delay allow.
 */
#include <pthread.h>
#include <sched.h>

#include "internal.h"
#include "test.h"

static _Atomic uint32_t flag[2];
static _Atomic long round_go;   /* round i starts when this becomes i */
static _Atomic long round_done; /* the other side finished round i */
static uint32_t seen[2];        /* the other's flag; [1] by round_done */
static long nrounds;

static void wait_for(_Atomic long *v, long want)
{
    for (int n = 0; atomic_load_explicit(v, memory_order_acquire) != want; n++)
        if (n > 1000)
            sched_yield(); /* valgrind runs one thread at a time */
}

static void side(int me)
{
    for (long i = 1; i <= nrounds; i++) {
        wait_for(&round_go, i);
        gort__store_seqcst(&flag[me], 1);
        seen[me] = atomic_load(&flag[!me]);
        atomic_store_explicit(&round_done, i, memory_order_release);
    }
}

static void *other_side(void *arg)
{
    (void)arg;
    side(1);
    return NULL;
}

TEST(store_seqcst_then_load_is_never_reordered)
{
    nrounds = test_scale(100000);
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, other_side, NULL), 0);
    long both_zero = 0;
    for (long i = 1; i <= nrounds; i++) {
        atomic_store(&flag[0], 0);
        atomic_store(&flag[1], 0);
        atomic_store_explicit(&round_go, i, memory_order_release);
        /* A varying head start for the other side: one of the delays
         * lines the two stores up. */
        for (volatile long k = 0; k < i % 7 * 3; k++)
            ;
        gort__store_seqcst(&flag[0], 1);
        seen[0] = atomic_load(&flag[1]);
        wait_for(&round_done, i); /* then the flags are reset for i + 1 */
        both_zero += seen[0] == 0 && seen[1] == 0;
    }
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_EQ(both_zero, 0);
}
