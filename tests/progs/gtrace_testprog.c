/*
 * gtrace_testprog.c - a tracee with known system calls for the gtrace tests
 * and benchmark.
 *
 *   gtrace_testprog threads N T   T threads each make N getppid calls; the
 *                                 main thread then forks a child that makes N
 *                                 getpid calls, waits for it and writes one
 *                                 line
 *   gtrace_testprog getppid N     N getppid calls on one thread
 *   gtrace_testprog sleep FILE MS writes its pid to FILE, sleeps MS ms, then
 *                                 appends "done" to FILE
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long n;

static void *worker(void *arg)
{
    (void)arg;
    for (long i = 0; i < n; i++)
        syscall(SYS_getppid);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "threads")) {
        n = atol(argv[2]);
        int t = atoi(argv[3]);
        pthread_t th[64];
        if (t > 64)
            t = 64;
        for (int i = 0; i < t; i++)
            pthread_create(&th[i], NULL, worker, NULL);
        for (int i = 0; i < t; i++)
            pthread_join(th[i], NULL);
        pid_t pid = fork();
        if (pid == 0) {
            for (long i = 0; i < n; i++)
                syscall(SYS_getpid);
            _exit(0);
        }
        int st;
        waitpid(pid, &st, 0);
        static const char msg[] = "gtrace_testprog: done\n";
        return write(1, msg, sizeof msg - 1) == sizeof msg - 1 ? 0 : 1;
    }
    if (argc >= 3 && !strcmp(argv[1], "getppid")) {
        n = atol(argv[2]);
        worker(NULL);
        return 0;
    }
    if (argc >= 4 && !strcmp(argv[1], "sleep")) {
        FILE *f = fopen(argv[2], "w");
        if (!f)
            return 1;
        fprintf(f, "%d\n", (int)getpid());
        fclose(f);
        long ms = atol(argv[3]);
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
        while (nanosleep(&ts, &ts) != 0)
            ;
        f = fopen(argv[2], "a");
        if (!f)
            return 1;
        fprintf(f, "done\n");
        fclose(f);
        return 0;
    }
    fprintf(stderr, "usage: gtrace_testprog threads N T | getppid N | sleep FILE MS\n");
    return 2;
}
