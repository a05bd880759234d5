/*
 * test.h - gort's homegrown test harness (libuv / liburing style).
 *
 * A test binary is one source file plus test_main.c. Each case is written
 *
 *     TEST(name) { ... }                     default timeout (120 s)
 *     TEST_TIMEOUT(name, seconds) { ... }    its own timeout
 *     TEST_DEATH(name, "stderr substring") { ... }
 *     TEST_DEATH_TIMEOUT(name, seconds, "stderr substring") { ... }
 *
 * and registers itself from a constructor. `bin name` runs exactly one case
 * in the current process (ctest runs each case as its own process, so a
 * crash or a leaked runtime thread never affects another case); `bin --list`
 * prints the names; `bin` alone runs every case, each in a child process.
 *
 * Exit status: 0 pass, 77 skip (TEST_SKIP), anything else (usually SIGABRT
 * from a failed ASSERT) fail. Every case has a deadline: alarm() fires after
 * the timeout (times $GORT_TEST_TIMEOUT_MULTIPLIER) and a watchdog thread
 * that waits for the SIGALRM (blocked in every other thread) aborts with a
 * message, so a deadlock fails instead of hanging CI; ctest's TIMEOUT is the
 * backstop.
 *
 * The ASSERT_* macros are safe from any thread and any goroutine: they format
 * into a stack buffer with snprintf (no stdio locks, no malloc) and report
 * with a single write(2), then abort(). They compare integers (and pointers)
 * by value with the mathematically right result whatever the two types'
 * signedness (-1 < 0u is true here), and print both values.
 *
 * Death tests: `bin name` for a TEST_DEATH case does not run the body. It
 * starts the same binary again with posix_spawn (never fork: the runtime may
 * have threads), as `[launcher...] bin name --death-child` with stderr on a
 * pipe, echoes and collects that stderr, and passes only if the child was
 * killed by SIGABRT, SIGSEGV or SIGBUS and its stderr contains the expected
 * substring plus every string the child announced with test_death_expect().
 * The parent never starts the runtime. $GORT_TEST_CHILD_LAUNCHER (set by
 * tests/CMakeLists.txt from GORT_TEST_LAUNCHER, space-separated) prefixes the
 * child's command so death tests work under qemu-user and valgrind.
 */
#ifndef GORT_TEST_H
#define GORT_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef GORT_TEST_SCALE
#define GORT_TEST_SCALE 1
#endif

/* The default per-case deadline in seconds. */
#define TEST_DEFAULT_TIMEOUT 120

/* Exit status that ctest reports as "skipped" (SKIP_RETURN_CODE). */
#define TEST_EXIT_SKIP 77

struct test_case {
    const char *name;
    void (*fn)(void);
    unsigned timeout_s;       /* 0: TEST_DEFAULT_TIMEOUT */
    const char *death_substr; /* non-NULL: a death test */
    int line;
    struct test_case *next;
};

void test__register(struct test_case *tc);

#define TEST__DEFINE(name, secs, death)                                                            \
    static void test__fn_##name(void);                                                             \
    static struct test_case test__case_##name = {#name,   test__fn_##name, (secs),                 \
                                                 (death), __LINE__,        NULL};                  \
    __attribute__((constructor)) static void test__reg_##name(void)                                \
    {                                                                                              \
        test__register(&test__case_##name);                                                        \
    }                                                                                              \
    static void test__fn_##name(void)

/* tests/CMakeLists.txt finds cases with a regex: write each of these at the
 * start of a line, with the name as the first argument. */
#define TEST(name)                             TEST__DEFINE(name, 0, NULL)
#define TEST_TIMEOUT(name, secs)               TEST__DEFINE(name, (secs), NULL)
#define TEST_DEATH(name, substr)               TEST__DEFINE(name, 0, (substr))
#define TEST_DEATH_TIMEOUT(name, secs, substr) TEST__DEFINE(name, (secs), (substr))

/* ---- assertions ---------------------------------------------------------- */

__attribute__((noreturn)) void test__fail(const char *file, int line, const char *what);
__attribute__((noreturn)) void test__fail_cmp(const char *file, int line, const char *what,
                                              const char *astr, unsigned long long a, int asgn,
                                              const char *bstr, unsigned long long b, int bsgn);
/* -1, 0 or 1: a <=> b as mathematical integers (asgn: a holds a signed value). */
int test__cmp(unsigned long long a, int asgn, unsigned long long b, int bsgn);

/* 1 if x has a signed integer type (after the integer promotions). */
#define TEST__SIGNED(x) _Generic((x) + 0, int : 1, long : 1, long long : 1, default : 0)

/* The strings are made by the ASSERT_* macros themselves, before their
 * arguments are macro-expanded (atomic_load would print as its expansion). */
#define TEST__CMP(what, astr, bstr, a, op, b)                                                      \
    do {                                                                                           \
        unsigned long long test__a = (unsigned long long)(a);                                      \
        unsigned long long test__b = (unsigned long long)(b);                                      \
        int test__as = TEST__SIGNED(a), test__bs = TEST__SIGNED(b);                                \
        if (!(test__cmp(test__a, test__as, test__b, test__bs) op 0))                               \
            test__fail_cmp(__FILE__, __LINE__, what, astr, test__a, test__as, bstr, test__b,       \
                           test__bs);                                                              \
    } while (0)

#define ASSERT_TRUE(cond)                                                                          \
    do {                                                                                           \
        if (!(cond))                                                                               \
            test__fail(__FILE__, __LINE__, "ASSERT_TRUE(" #cond ")");                              \
    } while (0)
#define ASSERT_FALSE(cond)                                                                         \
    do {                                                                                           \
        if (cond)                                                                                  \
            test__fail(__FILE__, __LINE__, "ASSERT_FALSE(" #cond ")");                             \
    } while (0)
#define ASSERT_EQ(a, b) TEST__CMP("ASSERT_EQ(" #a ", " #b ")", #a, #b, a, ==, b)
#define ASSERT_NE(a, b) TEST__CMP("ASSERT_NE(" #a ", " #b ")", #a, #b, a, !=, b)
#define ASSERT_LT(a, b) TEST__CMP("ASSERT_LT(" #a ", " #b ")", #a, #b, a, <, b)
#define ASSERT_LE(a, b) TEST__CMP("ASSERT_LE(" #a ", " #b ")", #a, #b, a, <=, b)
#define ASSERT_GT(a, b) TEST__CMP("ASSERT_GT(" #a ", " #b ")", #a, #b, a, >, b)
#define ASSERT_GE(a, b) TEST__CMP("ASSERT_GE(" #a ", " #b ")", #a, #b, a, >=, b)

/* Unconditional failure with a printf-style message. */
#define TEST_FAIL(...) test__failf(__FILE__, __LINE__, __VA_ARGS__)
__attribute__((noreturn, format(printf, 3, 4))) void test__failf(const char *file, int line,
                                                                 const char *fmt, ...);

/* ---- helpers --------------------------------------------------------------- */

/* Ends the case as skipped (exit status 77) after printing why. Any thread. */
#define TEST_SKIP(...) test_skip(__VA_ARGS__)
__attribute__((noreturn, format(printf, 1, 2))) void test_skip(const char *fmt, ...);

/* Prints one line to stderr with a single write(2). Any thread. */
__attribute__((format(printf, 1, 2))) void test_log(const char *fmt, ...);

/* In a death test's child: the parent will also require this string in the
 * child's stderr (a string ending in a digit must not be followed by one, so
 * "goroutine 7" does not match "goroutine 71"). Call it before the death. */
__attribute__((format(printf, 1, 2))) void test_death_expect(const char *fmt, ...);

/* n / GORT_TEST_SCALE (the build's divisor for big tests under sanitizers,
 * valgrind or qemu; $GORT_TEST_SCALE overrides it), at least 1. */
long test_scale(long n);

/* The kernel thread id of the caller. */
long test_gettid(void);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t test_now_ns(void);

/* The name of the running case. */
const char *test_name(void);

/* Sanitizer builds (ASan or TSan), for cases that cannot run under them. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TEST_SANITIZED 1
#endif
#endif
#ifndef TEST_SANITIZED
#define TEST_SANITIZED 0
#endif

#endif /* GORT_TEST_H */
