/*
 * stack.c - a goroutine can use (most of) the stack it asked for: with a
 * 256 KiB stack it recurses with 1 KiB frames to 200 KiB below its entry
 * frame, switches away and back at the bottom, and every frame still holds
 * what it wrote when the recursion unwinds.
 */
#include <stdatomic.h>
#include <stdint.h>

#include "gort_util.h"

#define DEEP_STACK  ((size_t)256 * 1024)
#define DEEP_TARGET ((size_t)200 * 1024)
#define FRAME       1024
#define MAX_LEVELS  100000 /* only reached if frames are tiny (ASan fake stacks) */

static uintptr_t top_frame;
static size_t deepest;
static int levels;
static _Atomic int other_ran;
static gort_waitgroup_t deep_wg;

static __attribute__((noinline)) int recurse(int level)
{
    volatile unsigned char buf[FRAME];
    for (int i = 0; i < FRAME; i++)
        buf[i] = (unsigned char)(level * 7 + i);
    size_t depth = top_frame - (uintptr_t)__builtin_frame_address(0);
    int r;
    if (depth < DEEP_TARGET && level < MAX_LEVELS) {
        r = recurse(level + 1);
    } else {
        deepest = depth;
        levels = level;
        /* Switch away with the whole stack in use, then come back. */
        for (int k = 0; k < 10; k++)
            ASSERT_EQ(gort_yield(), 0);
        r = level;
    }
    for (int i = 0; i < FRAME; i++) {
        if (buf[i] != (unsigned char)(level * 7 + i)) {
            test_log("frame of level %d corrupted at byte %d", level, i);
            ASSERT_EQ(buf[i], (unsigned char)(level * 7 + i));
        }
    }
    return r;
}

static void deep(void *arg)
{
    (void)arg;
    top_frame = (uintptr_t)__builtin_frame_address(0);
    int r = recurse(0);
    ASSERT_EQ(r, levels);
    ASSERT_EQ(gort_waitgroup_done(&deep_wg), 0);
}

static void other(void *arg)
{
    (void)arg;
    /* Runs while the deep goroutine sits at the bottom of its stack. */
    volatile unsigned char scribble[4096];
    for (int i = 0; i < 4096; i++)
        scribble[i] = 0xa5;
    (void)scribble[0];
    atomic_store(&other_ran, 1);
    ASSERT_EQ(gort_waitgroup_done(&deep_wg), 0);
}

static int deep_main(void *arg)
{
    (void)arg;
    gort_go_opts_t opts;
    memset(&opts, 0, sizeof opts);
    opts.size = sizeof opts;
    opts.stack_size = DEEP_STACK;
    ASSERT_EQ(gort_waitgroup_add(&deep_wg, 2), 0);
    ASSERT_EQ(gort_go_opts(deep, NULL, &opts, NULL), 0);
    ASSERT_EQ(gort_go(other, NULL), 0);
    ASSERT_EQ(gort_waitgroup_wait(&deep_wg), 0);
    test_log("deep recursion: %d levels, %zu bytes below the entry frame", levels, deepest);
    ASSERT_GE(deepest, DEEP_TARGET);
    ASSERT_EQ(atomic_load(&other_ran), 1);
    return 0;
}

TEST(deep_recursion_256k_stack)
{
    ASSERT_EQ(run_main(deep_main, NULL, 0), 0);
}
