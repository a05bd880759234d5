/*
 * test_main.c - the runner linked into every test binary (see test.h).
 *
 * Modes:
 *   bin NAME                 run case NAME here (a death case: in a child)
 *   bin NAME --death-child   run death case NAME's body here (the child)
 *   bin --list               print the case names, one a line
 *   bin                      run every case, each in a child process (TAP)
 *
 * Everything that may run after the runtime has started threads (assertion
 * failures, the timeout handler, skips) formats into a stack buffer and
 * writes once; nothing here forks. Child processes are started with
 * posix_spawn before the runtime exists in this process (the death-test
 * parent and the run-all mode never run a case body themselves).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define EXPECT_MARK  "test: expect-stderr: "
#define TIMEOUT_MARK "test: TIMEOUT"

static struct test_case *cases;
static struct test_case *current;
static char timeout_msg[256];
static size_t timeout_len;
static volatile pid_t death_child_pid;

void test__register(struct test_case *tc)
{
    /* Keep the list in source order so --list and run-all follow the file. */
    struct test_case **pp = &cases;
    while (*pp && (*pp)->line < tc->line)
        pp = &(*pp)->next;
    tc->next = *pp;
    *pp = tc;
}

const char *test_name(void)
{
    return current ? current->name : "?";
}

long test_gettid(void)
{
    return (long)syscall(SYS_gettid);
}

int64_t test_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

/* Appends to buf[*len..cap) like snprintf; never overflows. */
static void bufprintf(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void bufprintf(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    if (*len >= cap - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len = (size_t)n >= cap - *len ? cap - 1 : *len + (size_t)n;
}

static void vbufprintf(char *buf, size_t cap, size_t *len, const char *fmt, va_list ap)
{
    if (*len >= cap - 1)
        return;
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    if (n > 0)
        *len = (size_t)n >= cap - *len ? cap - 1 : *len + (size_t)n;
}

/* ---- assertions ---------------------------------------------------------- */

int test__cmp(unsigned long long a, int asgn, unsigned long long b, int bsgn)
{
    bool aneg = asgn && (long long)a < 0;
    bool bneg = bsgn && (long long)b < 0;
    if (aneg != bneg)
        return aneg ? -1 : 1;
    if (aneg) {
        long long sa = (long long)a, sb = (long long)b;
        return sa < sb ? -1 : sa > sb;
    }
    return a < b ? -1 : a > b;
}

__attribute__((noreturn)) static void fail_write(char *buf, size_t cap, size_t len)
{
    bufprintf(buf, cap, &len, "  (case %s, thread %ld)\n", test_name(), test_gettid());
    write_all(2, buf, len);
    abort();
}

void test__fail(const char *file, int line, const char *what)
{
    char buf[1024];
    size_t len = 0;
    bufprintf(buf, sizeof buf, &len, "%s:%d: %s failed\n", file, line, what);
    fail_write(buf, sizeof buf, len);
}

static void fmt_value(char *buf, size_t cap, size_t *len, const char *str, unsigned long long v,
                      int sgn)
{
    if (sgn && (long long)v < 0)
        bufprintf(buf, cap, len, "  %s = %lld\n", str, (long long)v);
    else if (v > 0xffff)
        bufprintf(buf, cap, len, "  %s = %llu (0x%llx)\n", str, v, v);
    else
        bufprintf(buf, cap, len, "  %s = %llu\n", str, v);
}

void test__fail_cmp(const char *file, int line, const char *what, const char *astr,
                    unsigned long long a, int asgn, const char *bstr, unsigned long long b,
                    int bsgn)
{
    char buf[2048];
    size_t len = 0;
    bufprintf(buf, sizeof buf, &len, "%s:%d: %s failed\n", file, line, what);
    fmt_value(buf, sizeof buf, &len, astr, a, asgn);
    fmt_value(buf, sizeof buf, &len, bstr, b, bsgn);
    fail_write(buf, sizeof buf, len);
}

void test__failf(const char *file, int line, const char *fmt, ...)
{
    char buf[2048];
    size_t len = 0;
    bufprintf(buf, sizeof buf, &len, "%s:%d: TEST_FAIL: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vbufprintf(buf, sizeof buf, &len, fmt, ap);
    va_end(ap);
    bufprintf(buf, sizeof buf, &len, "\n");
    fail_write(buf, sizeof buf, len);
}

/* ---- helpers --------------------------------------------------------------- */

void test_skip(const char *fmt, ...)
{
    char buf[1024];
    size_t len = 0;
    bufprintf(buf, sizeof buf, &len, "test: SKIP %s: ", test_name());
    va_list ap;
    va_start(ap, fmt);
    vbufprintf(buf, sizeof buf, &len, fmt, ap);
    va_end(ap);
    bufprintf(buf, sizeof buf, &len, "\n");
    write_all(2, buf, len);
    _exit(TEST_EXIT_SKIP);
}

void test_log(const char *fmt, ...)
{
    char buf[1024];
    size_t len = 0;
    va_list ap;
    va_start(ap, fmt);
    vbufprintf(buf, sizeof buf, &len, fmt, ap);
    va_end(ap);
    bufprintf(buf, sizeof buf, &len, "\n");
    write_all(2, buf, len);
}

void test_death_expect(const char *fmt, ...)
{
    char buf[512];
    size_t len = 0;
    bufprintf(buf, sizeof buf, &len, EXPECT_MARK);
    va_list ap;
    va_start(ap, fmt);
    vbufprintf(buf, sizeof buf, &len, fmt, ap);
    va_end(ap);
    bufprintf(buf, sizeof buf, &len, "\n");
    write_all(2, buf, len);
}

static long env_long(const char *name, long dflt)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return dflt;
    char *end;
    long v = strtol(s, &end, 10);
    return (*end == '\0' && v >= 1) ? v : dflt;
}

static long scale = 1; /* set by main() before any case runs */

long test_scale(long n)
{
    long r = n / scale;
    return r < 1 ? 1 : r;
}

/* ---- timeouts ---------------------------------------------------------------- */

static unsigned case_timeout(const struct test_case *tc)
{
    unsigned secs = tc->timeout_s ? tc->timeout_s : TEST_DEFAULT_TIMEOUT;
    long mult = env_long("GORT_TEST_TIMEOUT_MULTIPLIER", 1);
    return secs * (unsigned)mult;
}

/* The timeout is alarm(), but SIGALRM is blocked in every thread (the
 * runtime's threads inherit the mask from the test's main thread) and taken
 * with sigwait by a watchdog thread started before the case runs. So the
 * timeout fires whatever the runtime's threads are doing or masking, and
 * under TSan (which defers a signal handler until the interrupted thread
 * calls into libc: a spinning goroutine may never do so). */
static void *watchdog(void *arg)
{
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) == 0 && sig == SIGALRM)
            break;
    }
    write_all(2, timeout_msg, timeout_len);
    if (death_child_pid > 0)
        kill(death_child_pid, SIGKILL);
    signal(SIGABRT, SIG_DFL);
    abort();
}

static void arm_timeout(const struct test_case *tc, unsigned secs)
{
    timeout_len = 0;
    bufprintf(timeout_msg, sizeof timeout_msg, &timeout_len,
              TIMEOUT_MARK ": case %s did not finish within %u s (deadlock?)\n", tc->name, secs);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    pthread_t t;
    if (pthread_create(&t, NULL, watchdog, NULL) != 0) {
        static const char msg[] = "test: cannot start the watchdog thread\n";
        write_all(2, msg, sizeof msg - 1);
        abort();
    }
    pthread_detach(t);
    alarm(secs);
}

/* ---- child processes ------------------------------------------------------------ */

static char self_exe[PATH_MAX];

static void find_self(const char *argv0)
{
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (n > 0) {
        self_exe[n] = '\0';
    } else {
        snprintf(self_exe, sizeof self_exe, "%s", argv0);
    }
}

/* Starts `[$GORT_TEST_CHILD_LAUNCHER...] self name [extra]`, with the
 * child's stderr on errfd if errfd >= 0. Returns the pid or -errno. */
static pid_t spawn_self(const char *name, const char *extra, int errfd)
{
    char launcher[4096];
    const char *l = getenv("GORT_TEST_CHILD_LAUNCHER");
    snprintf(launcher, sizeof launcher, "%s", l ? l : "");
    char *argv[64];
    int argc = 0;
    for (char *save = NULL, *tok = strtok_r(launcher, " \t", &save); tok && argc < 56;
         tok = strtok_r(NULL, " \t", &save))
        argv[argc++] = tok;
    argv[argc++] = self_exe;
    argv[argc++] = (char *)name;
    if (extra)
        argv[argc++] = (char *)extra;
    argv[argc] = NULL;

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (errfd >= 0)
        posix_spawn_file_actions_adddup2(&fa, errfd, 2);
    /* The child starts with no signal blocked (this thread blocks SIGALRM). */
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return rc ? -rc : pid;
}

static int wait_child(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return status;
}

static void describe_status(int status, char *buf, size_t cap)
{
    if (WIFSIGNALED(status))
        snprintf(buf, cap, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else if (WIFEXITED(status))
        snprintf(buf, cap, "exited with status %d", WEXITSTATUS(status));
    else
        snprintf(buf, cap, "wait status 0x%x", status);
}

/* Finds needle in hay such that, if needle ends in a digit, the match is not
 * followed by another digit. */
static bool contains_token(const char *hay, const char *needle)
{
    size_t nl = strlen(needle);
    if (nl == 0)
        return true;
    bool digit_end = needle[nl - 1] >= '0' && needle[nl - 1] <= '9';
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) {
        char c = p[nl];
        if (!digit_end || !(c >= '0' && c <= '9'))
            return true;
    }
    return false;
}

/* The parent half of a death test. */
static int run_death_parent(const struct test_case *tc)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        perror("pipe2");
        return 1;
    }
    /* The child has its own alarm; this one covers a child that ignores it. */
    arm_timeout(tc, case_timeout(tc) + 60);
    pid_t pid = spawn_self(tc->name, "--death-child", fds[1]);
    close(fds[1]);
    if (pid < 0) {
        fprintf(stderr, "test: cannot spawn %s: %s\n", self_exe, strerror((int)-pid));
        return 1;
    }
    death_child_pid = pid;

    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    if (!out)
        abort();
    for (;;) {
        char chunk[4096];
        ssize_t n = read(fds[0], chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        write_all(2, chunk, (size_t)n); /* ctest shows it on failure */
        if (len + (size_t)n + 1 > cap) {
            cap = cap * 2 + (size_t)n;
            out = realloc(out, cap);
            if (!out)
                abort();
        }
        memcpy(out + len, chunk, (size_t)n);
        len += (size_t)n;
    }
    out[len] = '\0';
    close(fds[0]);
    int status = wait_child(pid);
    death_child_pid = 0;
    alarm(0);

    /* Split the expectations the child announced from the rest of stderr. */
    char *rest = malloc(len + 1);
    char **expects = malloc(sizeof(char *) * (len / 8 + 2));
    size_t nexp = 0, rlen = 0;
    if (!rest || !expects)
        abort();
    for (char *line = out; *line;) {
        char *nl = strchr(line, '\n');
        size_t ll = nl ? (size_t)(nl - line) + 1 : strlen(line);
        if (strncmp(line, EXPECT_MARK, strlen(EXPECT_MARK)) == 0) {
            char *e = line + strlen(EXPECT_MARK);
            if (nl)
                *nl = '\0';
            expects[nexp++] = e;
        } else {
            memcpy(rest + rlen, line, ll);
            rlen += ll;
        }
        line += ll;
    }
    rest[rlen] = '\0';

    char what[128];
    describe_status(status, what, sizeof what);
    int rc = 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == TEST_EXIT_SKIP) {
        rc = TEST_EXIT_SKIP;
    } else if (!WIFSIGNALED(status) ||
               (WTERMSIG(status) != SIGABRT && WTERMSIG(status) != SIGSEGV &&
                WTERMSIG(status) != SIGBUS)) {
        fprintf(stderr, "test: death test %s: child %s; expected death by SIGABRT/SIGSEGV\n",
                tc->name, what);
        rc = 1;
    } else if (strstr(rest, TIMEOUT_MARK) && !strstr(tc->death_substr, "TIMEOUT")) {
        fprintf(stderr, "test: death test %s: child timed out instead of dying\n", tc->name);
        rc = 1;
    } else {
        if (!contains_token(rest, tc->death_substr)) {
            fprintf(stderr, "test: death test %s: child %s but stderr lacks \"%s\"\n", tc->name,
                    what, tc->death_substr);
            rc = 1;
        }
        for (size_t i = 0; i < nexp; i++) {
            if (!contains_token(rest, expects[i])) {
                fprintf(stderr, "test: death test %s: child %s but stderr lacks \"%s\"\n", tc->name,
                        what, expects[i]);
                rc = 1;
            }
        }
    }
    free(expects);
    free(rest);
    free(out);
    return rc;
}

/* Runs a case body in this process; returns only if it passed. */
static void run_here(struct test_case *tc, bool death_child)
{
    current = tc;
    if (death_child) {
        /* The death is expected: no core file. */
        struct rlimit rl = {0, 0};
        setrlimit(RLIMIT_CORE, &rl);
    }
    arm_timeout(tc, case_timeout(tc));
    tc->fn();
    alarm(0);
}

static int run_all(void)
{
    int n = 0, failed = 0;
    for (struct test_case *tc = cases; tc; tc = tc->next)
        n++;
    printf("1..%d\n", n);
    fflush(stdout);
    int i = 0;
    for (struct test_case *tc = cases; tc; tc = tc->next) {
        i++;
        pid_t pid = spawn_self(tc->name, NULL, -1);
        if (pid < 0) {
            printf("not ok %d - %s # cannot spawn: %s\n", i, tc->name, strerror((int)-pid));
            failed++;
            continue;
        }
        int status = wait_child(pid);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            printf("ok %d - %s\n", i, tc->name);
        } else if (WIFEXITED(status) && WEXITSTATUS(status) == TEST_EXIT_SKIP) {
            printf("ok %d - %s # SKIP\n", i, tc->name);
        } else {
            char what[128];
            describe_status(status, what, sizeof what);
            printf("not ok %d - %s # %s\n", i, tc->name, what);
            failed++;
        }
        fflush(stdout);
    }
    return failed > 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    find_self(argv[0]);
    scale = env_long("GORT_TEST_SCALE", GORT_TEST_SCALE >= 1 ? GORT_TEST_SCALE : 1);
    if (argc < 2)
        return run_all();
    if (strcmp(argv[1], "--list") == 0) {
        for (struct test_case *tc = cases; tc; tc = tc->next)
            printf("%s\n", tc->name);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || argc > 3 ||
        (argc == 3 && strcmp(argv[2], "--death-child") != 0)) {
        fprintf(stderr, "usage: %s [--list | NAME]\n", argv[0]);
        return 2;
    }
    struct test_case *tc = cases;
    while (tc && strcmp(tc->name, argv[1]) != 0)
        tc = tc->next;
    if (!tc) {
        fprintf(stderr, "%s: no test case named \"%s\" (try --list)\n", argv[0], argv[1]);
        return 2;
    }
    bool death_child = argc == 3;
    if (tc->death_substr && !death_child) {
        current = tc;
        return run_death_parent(tc);
    }
    run_here(tc, death_child);
    if (death_child) {
        fprintf(stderr, "test: death test %s returned without dying\n", tc->name);
        return 1;
    }
    return 0;
}
