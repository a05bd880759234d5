/*
 * stack.c - a goroutine can use (most of) the stack it asked for: with a
 * 256 KiB stack it recurses with 1 KiB frames to 200 KiB below its entry
 * frame, switches away and back at the bottom, and every frame still holds
 * what it wrote when the recursion unwinds. And a spawn that cannot map its
 * stack fails cleanly.
 */
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

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

/* A spawn that cannot map a stack fails with -ENOMEM and keeps nothing: the
 * dead G it took stays on the free list for the next spawn, and no new G
 * is allocated for each failure (before, every failed spawn added one).
 * The address space is capped (RLIMIT_AS) so a 512 MiB stack cannot be
 * mapped; heap in use is read with mallinfo2. */

static void nop(void *arg)
{
    (void)arg;
}

static int nostack_main(void *arg)
{
    (void)arg;
    /* One G on the free list first, as in a program that has run a while. */
    ASSERT_EQ(gort_go(nop, NULL), 0);
    ASSERT_EQ(gort_yield(), 0);
    struct rlimit old, rl;
    ASSERT_EQ(getrlimit(RLIMIT_AS, &old), 0);
    long vm_kib = 0;
    FILE *f = fopen("/proc/self/status", "r");
    ASSERT_TRUE(f != NULL);
    char line[256];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %ld kB", &vm_kib) == 1)
            break;
    fclose(f);
    ASSERT_GT(vm_kib, 0);
    rl.rlim_cur = (rlim_t)vm_kib * 1024 + ((rlim_t)128 << 20);
    rl.rlim_max = old.rlim_max;
    ASSERT_EQ(setrlimit(RLIMIT_AS, &rl), 0);
    gort_go_opts_t opts = {.size = sizeof opts, .stack_size = (size_t)512 << 20};
    int n = (int)test_scale(20000), fails = 0;
    size_t before = mallinfo2().uordblks;
    for (int i = 0; i < n; i++) {
        int r = gort_go_opts(nop, NULL, &opts, NULL);
        if (r == 0) {
            ASSERT_EQ(setrlimit(RLIMIT_AS, &old), 0);
            TEST_SKIP("RLIMIT_AS is not enforced here");
        }
        ASSERT_EQ(r, -ENOMEM);
        fails++;
    }
    size_t after = mallinfo2().uordblks;
    ASSERT_EQ(setrlimit(RLIMIT_AS, &old), 0);
    test_log("%d failed spawns: heap in use %zu -> %zu bytes", fails, before, after);
    ASSERT_LT(after, before + (size_t)n * 16); /* a G is 192 bytes */
    /* And spawning works again once stacks can be mapped. */
    ASSERT_EQ(gort_go(nop, NULL), 0);
    ASSERT_EQ(gort_yield(), 0);
    return 0;
}

TEST(spawn_without_a_stack_fails_and_keeps_nothing)
{
    if (TEST_SANITIZED || RUNNING_ON_VALGRIND)
        TEST_SKIP("address-space limits and the sanitizers' or valgrind's allocators do not mix");
    ASSERT_EQ(run_main(nostack_main, NULL, 1), 0);
}

/* In mprotect mode each guard splits its chunk's mapping (two VMAs), so the
 * guards stop at a quarter of vm.max_map_count and the stacks past that get
 * canaries: however many goroutines park, the process stays within half of
 * the map count, leaving the rest to threads and the program. Before, the
 * budget counted one VMA per guard and 32,000 parked goroutines took 97 %
 * of the map count. */
static gort_waitgroup_t vma_gate, vma_wg;

static void vma_parked(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_waitgroup_wait(&vma_gate), 0);
    ASSERT_EQ(gort_waitgroup_done(&vma_wg), 0);
}

static long count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    ASSERT_TRUE(f != NULL);
    long n = 0;
    int c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static int vma_main(void *arg)
{
    long max_maps = (long)(intptr_t)arg;
    int n = (int)(max_maps / 2 + 4000); /* more than half the map count */
    gort_waitgroup_init(&vma_gate);
    gort_waitgroup_init(&vma_wg);
    ASSERT_EQ(gort_waitgroup_add(&vma_gate, 1), 0);
    ASSERT_EQ(gort_waitgroup_add(&vma_wg, n), 0);
    for (int i = 0; i < n; i++)
        ASSERT_EQ(gort_go(vma_parked, NULL), 0);
    while (stats_now().goroutines_live < (uint64_t)n + 1)
        ASSERT_EQ(gort_yield(), 0);
    ASSERT_EQ(gort_sleep_ns(10 * 1000 * 1000), 0); /* all parked on the gate */
    long maps = count_lines("/proc/self/maps");
    test_log("%d goroutines parked with mprotect guards: %ld mappings of %ld allowed", n, maps,
             max_maps);
    ASSERT_LT(maps, max_maps / 2 + 2000);
    ASSERT_EQ(gort_waitgroup_done(&vma_gate), 0);
    ASSERT_EQ(gort_waitgroup_wait(&vma_wg), 0);
    return 0;
}

TEST_TIMEOUT(mprotect_guards_keep_half_the_map_count, 120)
{
    const char *launcher = getenv("GORT_TEST_CHILD_LAUNCHER"); /* qemu-user, valgrind */
    if (TEST_SANITIZED || RUNNING_ON_VALGRIND || (launcher && *launcher))
        TEST_SKIP("tens of thousands of stacks: native runs only");
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    long max_maps = 0;
    if (!f || fscanf(f, "%ld", &max_maps) != 1 || max_maps <= 0 || max_maps > 200000) {
        if (f)
            fclose(f);
        TEST_SKIP("vm.max_map_count unreadable or too large to fill in a test");
    }
    fclose(f);
    ASSERT_EQ(setenv("GORT_STACK_GUARD", "mprotect", 1), 0);
    ASSERT_EQ(run_main(vma_main, (void *)(intptr_t)max_maps, 2), 0);
}
