/*
 * gdb_target.c - a gort program for tools/gort-gdb.py's test: two
 * goroutines park in known functions (one of them dedicated), a third is
 * spawned and has not run yet (GOMAXPROCS 1: main holds the only P), then
 * main calls gdb_stop_here, where the test's gdb stops and looks.
 */
#include <gort.h>
#include <stdio.h>

static gort_chan_t *ch;
static gort_waitgroup_t ready, done;

__attribute__((noinline)) void gdb_stop_here(void)
{
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void parked_in_receive(void)
{
    int v;
    gort_chan_recv(ch, &v, NULL);
    __asm__ volatile("" ::: "memory");
}

static void not_started_yet(void *arg)
{
    gort_waitgroup_done(arg);
}

static void worker(void *arg)
{
    if (arg)
        gort_dedicate_os_thread();
    gort_waitgroup_done(&ready);
    parked_in_receive();
    if (arg)
        gort_undedicate_os_thread();
    gort_waitgroup_done(&done);
}

static int run(void *arg)
{
    (void)arg;
    gort_chan_make(&ch, sizeof(int), 0);
    gort_waitgroup_init(&ready);
    gort_waitgroup_init(&done);
    gort_waitgroup_add(&ready, 2);
    gort_waitgroup_add(&done, 2);
    gort_go(worker, NULL);
    gort_go(worker, (void *)1);
    gort_waitgroup_wait(&ready);
    gort_sleep_ns(50 * 1000 * 1000); /* both parked in the receive */
    gort_waitgroup_add(&done, 1);
    gort_go(not_started_yet, &done); /* goroutine 4: runs once main blocks */
    gdb_stop_here();
    int v = 0;
    gort_chan_send(ch, &v);
    gort_chan_send(ch, &v);
    gort_waitgroup_wait(&done);
    puts("gdb_target: done");
    return 0;
}

int main(void)
{
    gort_config_t cfg = {.size = sizeof cfg, .gomaxprocs = 1};
    return gort_main(run, NULL, &cfg) == 0 ? 0 : 1;
}
