/*
 * getting_started.c - the program docs/getting-started.md walks through:
 * goroutines, channels, select, a timer, WaitGroups and a dedicated
 * goroutine.
 *
 * The main goroutine feeds the numbers 1..NJOBS to NWORKERS worker
 * goroutines through a buffered channel; each worker computes the number's
 * Collatz stopping time and sends it back on an unbuffered channel. The main
 * goroutine collects the results with a select that also watches a timeout
 * channel fed by a timer, and hands one line of text per result to a writer
 * goroutine. The writer has dedicated an OS thread to itself: it spends its
 * life in blocking write(2) calls, which hold up none of the GOMAXPROCS
 * threads, and each line sent to it wakes its thread directly.
 *
 * With gort installed:
 *   cc -std=c11 getting_started.c $(pkg-config --cflags --libs gort)
 */
#define _POSIX_C_SOURCE 200809L

#include <gort.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NJOBS      30
#define NWORKERS   4
#define TIMEOUT_NS ((int64_t)10 * 1000 * 1000 * 1000) /* 10 s */

struct result {
    int n;
    int steps;
};

struct line {
    char text[64];
};

static gort_chan_t *jobs;    /* int, buffered: main -> workers */
static gort_chan_t *results; /* struct result, unbuffered: workers -> main */
static gort_chan_t *lines;   /* struct line, buffered: main -> writer */
static gort_waitgroup_t workers_done = GORT_WAITGROUP_INIT;
static gort_waitgroup_t writer_done = GORT_WAITGROUP_INIT;

/* gort calls return 0 (or a value) on success and a negative errno on
 * failure; they never set errno. */
static int check(int ret, const char *what)
{
    if (ret < 0) {
        fprintf(stderr, "getting_started: %s: %s\n", what, gort_strerror(ret));
        exit(1);
    }
    return ret;
}

static int collatz_steps(long n)
{
    int steps = 0;
    for (; n != 1; steps++)
        n = n % 2 ? 3 * n + 1 : n / 2;
    return steps;
}

/* A worker: receives numbers until jobs is closed and drained. */
static void worker(void *arg)
{
    (void)arg;
    for (;;) {
        int n;
        bool ok;
        check(gort_chan_recv(jobs, &n, &ok), "receive a job");
        if (!ok)
            break; /* closed and empty */
        struct result r = {n, collatz_steps(n)};
        check(gort_chan_send(results, &r), "send a result");
    }
    gort_waitgroup_done(&workers_done);
}

/* The writer: a dedicated goroutine that makes blocking system calls. */
static void writer(void *arg)
{
    (void)arg;
    int err = gort_dedicate_os_thread();
    if (err == -EAGAIN)
        fprintf(stderr, "no thread to dedicate: the writer runs as a normal goroutine\n");
    else
        check(err, "dedicate the writer's thread");
    for (;;) {
        struct line l;
        bool ok;
        check(gort_chan_recv(lines, &l, &ok), "receive a line");
        if (!ok)
            break;
        /* A plain blocking write(2): the thread is the writer's alone. */
        size_t len = strlen(l.text);
        if (write(STDOUT_FILENO, l.text, len) != (ssize_t)len)
            exit(1);
    }
    check(gort_undedicate_os_thread(), "undedicate the writer's thread");
    gort_waitgroup_done(&writer_done);
}

static int main_goroutine(void *arg)
{
    (void)arg;
    printf("gort %s, GOMAXPROCS %d\n", gort_version(), gort_gomaxprocs());
    fflush(stdout); /* from here on the writer owns stdout */

    check(gort_chan_make(&jobs, sizeof(int), NJOBS), "make jobs");
    check(gort_chan_make(&results, sizeof(struct result), 0), "make results");
    check(gort_chan_make(&lines, sizeof(struct line), 8), "make lines");

    check(gort_waitgroup_add(&writer_done, 1), "add the writer");
    check(gort_go(writer, NULL), "start the writer");
    check(gort_waitgroup_add(&workers_done, NWORKERS), "add the workers");
    for (int i = 0; i < NWORKERS; i++)
        check(gort_go(worker, NULL), "start a worker");

    /* jobs has room for all of them: these sends never block. */
    for (int n = 1; n <= NJOBS; n++)
        check(gort_chan_send(jobs, &n), "send a job");
    check(gort_chan_close(jobs), "close jobs");

    /* Go's time.After: a one-shot timer that sends on a channel. */
    gort_chan_t *timeout;
    gort_timer_t *timer;
    check(gort_chan_make(&timeout, sizeof(int64_t), 1), "make timeout");
    check(gort_timer_start(&timer, TIMEOUT_NS, 0, timeout, NULL, NULL), "start the timer");

    struct result best = {0, -1};
    for (int got = 0; got < NJOBS; got++) {
        struct result r;
        int64_t fired_at;
        gort_select_case_t cases[] = {
            {.chan = results, .dir = GORT_SELECT_RECV, .elem = &r},
            {.chan = timeout, .dir = GORT_SELECT_RECV, .elem = &fired_at},
        };
        if (check(gort_select(cases, 2, 0), "select") == 1) {
            fprintf(stderr, "getting_started: timed out\n");
            return 1;
        }
        if (r.steps > best.steps)
            best = r;
        struct line l;
        snprintf(l.text, sizeof l.text, "%3d reaches 1 in %3d steps\n", r.n, r.steps);
        check(gort_chan_send(lines, &l), "send a line");
    }
    check(gort_timer_free(timer), "free the timer");

    check(gort_waitgroup_wait(&workers_done), "wait for the workers");
    check(gort_chan_close(lines), "close lines");
    check(gort_waitgroup_wait(&writer_done), "wait for the writer");

    gort_stats_t st = {.size = sizeof st};
    check(gort_stats_get(&st), "read the statistics");
    printf("longest: %d (%d steps); %llu goroutines, %llu dedicated\n", best.n, best.steps,
           (unsigned long long)st.goroutines_created, (unsigned long long)st.dedicate_calls);

    /* Nobody is blocked on the channels any more. */
    check(gort_chan_free(jobs), "free jobs");
    check(gort_chan_free(results), "free results");
    check(gort_chan_free(lines), "free lines");
    check(gort_chan_free(timeout), "free timeout");
    return 0;
}

int main(void)
{
    /* The calling thread becomes the runtime's first thread; gort_main
     * returns main_goroutine's result once it returns. */
    int ret = gort_main(main_goroutine, NULL, NULL);
    if (ret < 0) {
        fprintf(stderr, "getting_started: gort_main: %s\n", gort_strerror(ret));
        return 1;
    }
    return ret;
}
