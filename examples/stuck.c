/*
 * stuck.c - a deliberately stuck program for docs/debugging.md: two
 * goroutines wait for each other, a dedicated goroutine waits in read(2)
 * on a pipe nobody writes to, and main waits for all three. After a few
 * seconds (argument 1, default 3) a timer unsticks everything and the
 * program exits, so that it can run unattended; while it is stuck, look at
 * it with GORT_DEBUG=schedtrace=1000, GORT_DEBUG=sigquit=1 and kill -QUIT,
 * gdb -x tools/gort-gdb.py, or gort_stats_get.
 */
#define _GNU_SOURCE
#include <gort.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static gort_chan_t *a, *b;
static gort_waitgroup_t wg;
static int pipefd[2];

__attribute__((noinline)) static void wait_for_b(void)
{
    int v;
    gort_chan_recv(b, &v, NULL); /* b is sent only after a arrives... */
    gort_chan_send(a, &v);
}

__attribute__((noinline)) static void wait_for_a(void)
{
    int v;
    gort_chan_recv(a, &v, NULL); /* ... and a only after b: stuck */
    gort_chan_send(b, &v);
}

static void left(void *arg)
{
    (void)arg;
    wait_for_b();
    gort_waitgroup_done(&wg);
}

static void right(void *arg)
{
    (void)arg;
    wait_for_a();
    gort_waitgroup_done(&wg);
}

static void reader(void *arg)
{
    (void)arg;
    gort_dedicate_os_thread(); /* a thread of its own, as a sandbox task */
    char c;
    gort_syscall(GORT_SYSCALL_RAW, SYS_read, pipefd[0], (long)&c, 1, 0, 0, 0);
    gort_undedicate_os_thread();
    gort_waitgroup_done(&wg);
}

static void unstick(void *arg)
{
    (void)arg;
    int v = 0;
    gort_chan_try_send(b, &v); /* left takes it, then right is released */
    if (write(pipefd[1], "x", 1) != 1)
        perror("stuck: write");
}

static int run(void *arg)
{
    long secs = (long)arg;
    if (pipe(pipefd) != 0 || gort_chan_make(&a, sizeof(int), 0) ||
        gort_chan_make(&b, sizeof(int), 1))
        return 1;
    gort_waitgroup_init(&wg);
    gort_waitgroup_add(&wg, 3);
    gort_go(left, NULL);
    gort_go(right, NULL);
    gort_go(reader, NULL);
    gort_timer_t *t;
    gort_timer_start(&t, secs * 1000000000, 0, NULL, unstick, NULL);
    printf("stuck: pid %d, stuck for %ld s\n", (int)getpid(), secs);
    fflush(stdout);
    gort_waitgroup_wait(&wg);
    gort_stats_t st = {.size = sizeof st};
    gort_stats_get(&st);
    printf("stuck: unstuck; dedicated wake-ups %llu, run-queue wait p99 %llu ns\n",
           (unsigned long long)st.dedicated_wake_samples, (unsigned long long)st.runq_wait_p99_ns);
    gort_timer_free(t);
    return 0;
}

int main(int argc, char **argv)
{
    long secs = argc > 1 ? atol(argv[1]) : 3;
    return gort_main(run, (void *)secs, NULL) == 0 ? 0 : 1;
}
