/*
 * gtrace - a ptrace system-call tracer on gort: the debugger shape the
 * DedicateOSThread proposal cites (golang/go#21827, Delve): every ptrace
 * call must come from the thread that attached, so each traced command is
 * owned by one tracer that lives on one thread.
 *
 *   gtrace [-c] [-f] [-o FILE] [--mode=dedicated|locked|thread] [--roundtrip]
 *          -- CMD ARGS... [-- CMD ARGS...]...
 *
 * Each command runs under its own tracer, concurrently. The tracer forks
 * it (the child asks to be traced, stops, then execs), stops it at every
 * system-call entry and exit (PTRACE_SYSCALL, PTRACE_GET_SYSCALL_INFO),
 * follows its threads and children with -f (PTRACE_O_TRACECLONE / FORK /
 * VFORK), re-injects signals as strace does, and sends one event per
 * completed call to its aggregator, which counts calls, errors and time in
 * the call per system call. With -c the counts are printed at the end like
 * `strace -c`; without, a printer prints one line per call as it happens.
 * --roundtrip makes every stop a request to an evaluator and waits for its
 * answer before resuming the tracee, as a debugger evaluating a
 * conditional breakpoint does.
 *
 * Modes (same output):
 *   dedicated  tracers are goroutines that call gort_dedicate_os_thread;
 *              events and round trips go through gort channels;
 *   locked     the same with gort_lock_os_thread (every wake-up of a tracer
 *              is a P hand-off between threads);
 *   thread     plain pthreads, mutex + condition-variable queues (the
 *              baseline).
 *
 * The exit status is the first command's (128 + signal if it was killed).
 * SIGINT / SIGTERM detach from every tracee (each is stopped with SIGSTOP,
 * which is then suppressed as it is detached), so none is left stopped;
 * they go on running without gtrace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <gort.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- system call names ---- */

#define MAXNR 1024
static const char *scname[MAXNR];

static void init_names(void)
{
#define X(n) scname[SYS_##n < MAXNR ? SYS_##n : 0] = SYS_##n < MAXNR ? #n : scname[0];
#include "syscalls.h"
#undef X
}

static const char *name_of(long nr, char *buf, size_t n)
{
    if (nr >= 0 && nr < MAXNR && scname[nr])
        return scname[nr];
    snprintf(buf, n, "syscall_%ld", nr);
    return buf;
}

/* ---- options ---- */

enum { M_DEDICATED, M_LOCKED, M_THREAD };
static int mode = M_DEDICATED;
static bool opt_c, opt_f, opt_rt;
static FILE *out;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- queues: a gort channel, or a mutex and a condition variable ---- */

enum { EV_CALL, EV_DONE };
typedef struct event {
    int kind;
    int nr;
    pid_t tid;
    long ret;
    int64_t ns;
} event_t;

typedef struct queue {
    gort_chan_t *ch;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    event_t buf[256];
    unsigned head, tail;
} queue_t;

static int q_init(queue_t *q, size_t cap)
{
    if (mode != M_THREAD)
        return gort_chan_make(&q->ch, sizeof(event_t), cap);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    return 0;
}

static void q_put(queue_t *q, const event_t *e)
{
    if (mode != M_THREAD) {
        gort_chan_send(q->ch, e);
        return;
    }
    pthread_mutex_lock(&q->mu);
    while (q->tail - q->head == sizeof q->buf / sizeof *q->buf)
        pthread_cond_wait(&q->cv, &q->mu);
    q->buf[q->tail++ % (sizeof q->buf / sizeof *q->buf)] = *e;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

static void q_get(queue_t *q, event_t *e)
{
    if (mode != M_THREAD) {
        gort_chan_recv(q->ch, e, NULL);
        return;
    }
    pthread_mutex_lock(&q->mu);
    while (q->tail == q->head)
        pthread_cond_wait(&q->cv, &q->mu);
    *e = q->buf[q->head++ % (sizeof q->buf / sizeof *q->buf)];
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

/* ---- commands ---- */

typedef struct tally {
    uint64_t calls, errors;
    int64_t ns;
} tally_t;

typedef struct cmd {
    char **argv;
    int index;
    pid_t pid;
    int status; /* wait status of pid */
    bool started;
    tally_t t[MAXNR];
    queue_t ev;        /* tracer -> aggregator */
    queue_t req, resp; /* --roundtrip: tracer <-> evaluator (unbuffered) */
    _Atomic pid_t tracer_tid;
    uint64_t stops;
} cmd_t;

static cmd_t *cmds;
static int ncmds;
static _Atomic bool detach_req;

/* Per-tid state of one tracer: in a call since when, which call. */
typedef struct tidstate {
    pid_t tid;
    int nr;
    int64_t since;
    bool in_call, seen;
} tidstate_t;

enum { NTID = 4096 };

static tidstate_t *tid_find(tidstate_t *tab, pid_t tid, bool add)
{
    for (unsigned i = 0; i < NTID; i++) {
        tidstate_t *s = &tab[((unsigned)tid * 2654435761u + i) % NTID];
        if (s->tid == tid)
            return s;
        if (s->tid == 0) {
            if (!add)
                return NULL;
            memset(s, 0, sizeof *s);
            s->tid = tid;
            return s;
        }
    }
    return NULL;
}

static void tid_del(tidstate_t *tab, pid_t tid)
{
    tidstate_t *s = tid_find(tab, tid, false);
    if (s)
        s->tid = -1; /* tombstone */
}

/* wait4 on this thread's tracees. In the gort modes through gort_syscall:
 * a locked tracer must not hold its P while it waits. */
static pid_t wait_tracee(int *st)
{
    if (mode == M_THREAD)
        return wait4(-1, st, __WALL | __WNOTHREAD, NULL);
    long r =
        gort_syscall(GORT_SYSCALL_LAZY, SYS_wait4, -1, (long)st, __WALL | __WNOTHREAD, 0, 0, 0);
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return (pid_t)r;
}

static void on_usr1(int sig)
{
    (void)sig; /* interrupts wait4 in a tracer (no SA_RESTART) */
}

static void roundtrip(cmd_t *c, pid_t tid)
{
    event_t e = {.kind = EV_CALL, .tid = tid};
    q_put(&c->req, &e);
    q_get(&c->resp, &e);
}

/* Detaches from every tracee of this tracer (SIGINT / SIGTERM). */
static void detach_all(tidstate_t *tab)
{
    int live = 0;
    for (unsigned i = 0; i < NTID; i++)
        if (tab[i].tid > 0) {
            syscall(SYS_tkill, tab[i].tid, SIGSTOP);
            live++;
        }
    while (live > 0) {
        int st;
        pid_t tid = wait4(-1, &st, __WALL | __WNOTHREAD, NULL);
        if (tid < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            if (tid_find(tab, tid, false))
                live--;
            tid_del(tab, tid);
            continue;
        }
        int sig = WSTOPSIG(st);
        if (sig == SIGSTOP && (st >> 16) == 0) {
            ptrace(PTRACE_DETACH, tid, 0, 0); /* our SIGSTOP, suppressed */
            tid_del(tab, tid);
            live--;
            continue;
        }
        /* Another stop first: let it go on until our SIGSTOP arrives. */
        int inject = (sig == (SIGTRAP | 0x80) || (st >> 16) != 0) ? 0 : sig;
        ptrace(PTRACE_CONT, tid, 0, inject);
    }
}

static void trace(cmd_t *c)
{
    atomic_store(&c->tracer_tid, (pid_t)syscall(SYS_gettid));
    tidstate_t *tab = calloc(NTID, sizeof *tab);
    if (!tab) {
        fprintf(stderr, "gtrace: out of memory\n");
        exit(1);
    }
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "gtrace: fork: %s\n", strerror(errno));
        c->status = 127 << 8;
        goto done;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0)
            _exit(126);
        raise(SIGSTOP);
        execvp(c->argv[0], c->argv);
        fprintf(stderr, "gtrace: %s: %s\n", c->argv[0], strerror(errno));
        _exit(127);
    }
    c->pid = pid;
    c->started = true;
    int st;
    if (waitpid(pid, &st, __WALL) != pid || !WIFSTOPPED(st)) {
        c->status = WIFEXITED(st) || WIFSIGNALED(st) ? st : 126 << 8;
        goto done;
    }
    long opts = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL;
    if (opt_f)
        opts |= PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK;
    ptrace(PTRACE_SETOPTIONS, pid, 0, opts);
    tidstate_t *s0 = tid_find(tab, pid, true);
    s0->seen = true;
    ptrace(PTRACE_SYSCALL, pid, 0, 0);
    int live = 1;
    while (live > 0) {
        if (atomic_load(&detach_req)) {
            detach_all(tab);
            break;
        }
        pid_t tid = wait_tracee(&st);
        if (tid < 0) {
            if (errno == EINTR)
                continue;
            break; /* ECHILD: nobody left */
        }
        tidstate_t *s = tid_find(tab, tid, true);
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            if (tid == pid)
                c->status = st;
            /* A call in progress (exit_group) never completes: strace -c
             * does not count it either. */
            tid_del(tab, tid);
            live--;
            continue;
        }
        if (!WIFSTOPPED(st))
            continue;
        if (s && !s->seen) { /* a new thread or child (-f): it starts stopped */
            s->seen = true;
            live++;
            if (WSTOPSIG(st) == SIGSTOP) {
                ptrace(PTRACE_SYSCALL, tid, 0, 0);
                continue;
            }
        }
        c->stops++;
        int sig = WSTOPSIG(st), event = st >> 16, inject = 0;
        if (sig == (SIGTRAP | 0x80)) {
            struct __ptrace_syscall_info info;
            if (ptrace(PTRACE_GET_SYSCALL_INFO, tid, sizeof info, &info) > 0 && s) {
                if (info.op == PTRACE_SYSCALL_INFO_ENTRY) {
                    s->in_call = true;
                    s->nr = info.entry.nr < MAXNR ? (int)info.entry.nr : 0;
                    s->since = now_ns();
                } else if (info.op == PTRACE_SYSCALL_INFO_EXIT && s->in_call) {
                    s->in_call = false;
                    event_t e = {.kind = EV_CALL,
                                 .nr = s->nr,
                                 .tid = tid,
                                 .ret = (long)info.exit.rval,
                                 .ns = now_ns() - s->since};
                    if (info.exit.is_error)
                        e.ret = info.exit.rval; /* negative errno */
                    q_put(&c->ev, &e);
                }
            }
            if (opt_rt)
                roundtrip(c, tid);
        } else if (event != 0) {
            /* PTRACE_EVENT_CLONE / FORK / VFORK / EXEC: nothing to inject. */
        } else {
            inject = sig; /* a signal for the tracee: deliver it, as strace does */
        }
        ptrace(PTRACE_SYSCALL, tid, 0, inject);
    }
done:;
    event_t e = {.kind = EV_DONE};
    q_put(&c->ev, &e);
    free(tab);
}

/* ---- aggregator, evaluator, printer ---- */

static void aggregate(cmd_t *c)
{
    char nbuf[32], line[160];
    for (;;) {
        event_t e;
        q_get(&c->ev, &e);
        if (e.kind == EV_DONE)
            break;
        tally_t *t = &c->t[e.nr];
        t->calls++;
        t->ns += e.ns;
        if (e.ret < 0 && e.ret > -4096)
            t->errors++;
        if (!opt_c) {
            snprintf(line, sizeof line, "[%d pid %d] %s() = %ld", c->index, (int)e.tid,
                     name_of(e.nr, nbuf, sizeof nbuf), e.ret);
            fprintf(out, "%s\n", line);
        }
    }
}

static void evaluate(cmd_t *c)
{
    /* The "condition" of a breakpoint: a little work per stop. */
    for (;;) {
        event_t e;
        q_get(&c->req, &e);
        if (e.kind == EV_DONE)
            break;
        e.ret = e.tid * 31 + 7;
        q_put(&c->resp, &e);
    }
}

static int cmp_tally(const void *a, const void *b)
{
    const tally_t *x = *(tally_t *const *)a, *y = *(tally_t *const *)b;
    if (x->ns != y->ns)
        return x->ns < y->ns ? 1 : -1;
    return x->calls < y->calls ? 1 : x->calls > y->calls ? -1 : 0;
}

static void summary(cmd_t *c)
{
    tally_t *rows[MAXNR];
    int n = 0;
    tally_t total = {0, 0, 0};
    for (int i = 0; i < MAXNR; i++)
        if (c->t[i].calls) {
            rows[n++] = &c->t[i];
            total.calls += c->t[i].calls;
            total.errors += c->t[i].errors;
            total.ns += c->t[i].ns;
        }
    qsort(rows, (size_t)n, sizeof *rows, cmp_tally);
    if (ncmds > 1)
        fprintf(out, "gtrace: command %d: %s\n", c->index, c->argv[0]);
    fprintf(out, "%% time     seconds  usecs/call     calls    errors syscall\n");
    fprintf(out, "------ ----------- ----------- --------- --------- ----------------\n");
    char nbuf[32];
    for (int i = 0; i < n; i++) {
        tally_t *t = rows[i];
        double pct = total.ns ? 100.0 * (double)t->ns / (double)total.ns : 0;
        fprintf(out, "%6.2f %11.6f %11lld %9llu ", pct, (double)t->ns / 1e9,
                (long long)(t->ns / 1000 / (int64_t)t->calls), (unsigned long long)t->calls);
        if (t->errors)
            fprintf(out, "%9llu ", (unsigned long long)t->errors);
        else
            fprintf(out, "%9s ", "");
        fprintf(out, "%s\n", name_of(t - c->t, nbuf, sizeof nbuf));
    }
    fprintf(out, "------ ----------- ----------- --------- --------- ----------------\n");
    fprintf(out, "100.00 %11.6f %11s %9llu %9llu total\n", (double)total.ns / 1e9, "",
            (unsigned long long)total.calls, (unsigned long long)total.errors);
}

/* ---- running: goroutines or threads ---- */

static void tracer_g(void *arg)
{
    cmd_t *c = arg;
    int err = mode == M_DEDICATED ? gort_dedicate_os_thread() : gort_lock_os_thread();
    if (err == -EAGAIN && mode == M_DEDICATED)
        err = gort_lock_os_thread(); /* no thread for the normal P: carry on locked */
    if (err) {
        fprintf(stderr, "gtrace: cannot bind the tracer to its thread: %s\n", gort_strerror(err));
        exit(1);
    }
    trace(c);
    /* Ends bound: a thread that traced goes away with its goroutine. */
}

static void *tracer_t(void *arg)
{
    trace(arg);
    return NULL;
}

typedef struct job {
    void (*fn)(cmd_t *);
    cmd_t *c;
    gort_waitgroup_t *wg;
} job_t;

static void job_g(void *arg)
{
    job_t *j = arg;
    j->fn(j->c);
    gort_waitgroup_done(j->wg);
}

static void *job_t_fn(void *arg)
{
    job_t *j = arg;
    j->fn(j->c);
    return NULL;
}

static void *sigwaiter(void *arg)
{
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig;
    if (sigwait(&set, &sig) == 0) {
        atomic_store(&detach_req, true);
        for (int i = 0; i < ncmds; i++) {
            pid_t t = atomic_load(&cmds[i].tracer_tid);
            if (t)
                syscall(SYS_tgkill, getpid(), t, SIGUSR1);
        }
    }
    return NULL;
}

/* Each command's event queue, and its round-trip pair with --roundtrip. */
static int init_queues(void)
{
    for (int i = 0; i < ncmds; i++) {
        if (q_init(&cmds[i].ev, 256) ||
            (opt_rt && (q_init(&cmds[i].req, 0) || q_init(&cmds[i].resp, 0)))) {
            fprintf(stderr, "gtrace: out of memory\n");
            return 1;
        }
    }
    return 0;
}

/* The thread mode: the same jobs on plain pthreads. */
static int run_threads(void)
{
    if (init_queues())
        return 1;
    unsigned nbg = (unsigned)ncmds * (opt_rt ? 2u : 1u);
    job_t *jobs = calloc(nbg, sizeof *jobs);
    pthread_t *th = calloc(nbg + (unsigned)ncmds, sizeof *th);
    if (!jobs || !th)
        return 1;
    unsigned k = 0;
    for (int i = 0; i < ncmds; i++) {
        jobs[k++] = (job_t){aggregate, &cmds[i], NULL};
        if (opt_rt)
            jobs[k++] = (job_t){evaluate, &cmds[i], NULL};
    }
    for (unsigned i = 0; i < nbg; i++)
        pthread_create(&th[i], NULL, job_t_fn, &jobs[i]);
    for (int i = 0; i < ncmds; i++)
        pthread_create(&th[nbg + i], NULL, tracer_t, &cmds[i]);
    for (int i = 0; i < ncmds; i++)
        pthread_join(th[nbg + i], NULL);
    for (int i = 0; opt_rt && i < ncmds; i++) {
        event_t e = {.kind = EV_DONE};
        q_put(&cmds[i].req, &e);
    }
    for (unsigned i = 0; i < nbg; i++)
        pthread_join(th[i], NULL);
    free(jobs);
    free(th);
    return 0;
}

/* In the gort modes, evaluators are stopped by the aggregator's end: a
 * small wrapper makes the aggregator do it. */
static void aggregate_then_stop(cmd_t *c)
{
    aggregate(c);
    if (opt_rt) {
        event_t e = {.kind = EV_DONE};
        q_put(&c->req, &e);
    }
}

static int run_gort(void *arg)
{
    (void)arg;
    if (init_queues())
        return 1;
    gort_waitgroup_t wg;
    gort_waitgroup_init(&wg);
    int nbg = ncmds * (opt_rt ? 2 : 1);
    job_t *jobs = calloc((size_t)nbg, sizeof *jobs);
    if (!jobs)
        return 1;
    gort_waitgroup_add(&wg, nbg);
    int k = 0;
    for (int i = 0; i < ncmds; i++) {
        jobs[k++] = (job_t){aggregate_then_stop, &cmds[i], &wg};
        if (opt_rt)
            jobs[k++] = (job_t){evaluate, &cmds[i], &wg};
    }
    for (int i = 0; i < nbg; i++)
        gort_go(job_g, &jobs[i]);
    for (int i = 0; i < ncmds; i++)
        gort_go(tracer_g, &cmds[i]);
    gort_waitgroup_wait(&wg);
    free(jobs);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: gtrace [-c] [-f] [-o FILE] [--mode=dedicated|locked|thread] "
                    "[--roundtrip] -- CMD ARGS... [-- CMD ARGS...]...\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"mode", required_argument, NULL, 'm'},
                                       {"roundtrip", no_argument, NULL, 'r'},
                                       {NULL, 0, NULL, 0}};
    out = stderr;
    int o;
    while ((o = getopt_long(argc, argv, "+cfo:", lo, NULL)) != -1) {
        switch (o) {
        case 'c':
            opt_c = true;
            break;
        case 'f':
            opt_f = true;
            break;
        case 'o':
            out = fopen(optarg, "w");
            if (!out) {
                fprintf(stderr, "gtrace: %s: %s\n", optarg, strerror(errno));
                return 2;
            }
            break;
        case 'm':
            if (!strcmp(optarg, "dedicated"))
                mode = M_DEDICATED;
            else if (!strcmp(optarg, "locked"))
                mode = M_LOCKED;
            else if (!strcmp(optarg, "thread"))
                mode = M_THREAD;
            else
                usage();
            break;
        case 'r':
            opt_rt = true;
            break;
        default:
            usage();
        }
    }
    /* getopt stops at the first "--" (and eats it) or the first operand. */
    if (optind >= argc)
        usage();
    cmds = calloc((size_t)argc, sizeof *cmds);
    if (!cmds)
        return 1;
    for (int i = optind; i < argc;) {
        if (!strcmp(argv[i], "--")) {
            argv[i++] = NULL;
            continue;
        }
        cmds[ncmds].argv = &argv[i];
        cmds[ncmds].index = ncmds;
        ncmds++;
        while (i < argc && strcmp(argv[i], "--"))
            i++;
    }
    if (ncmds == 0)
        usage();
    init_names();

    /* SIGINT / SIGTERM go to the waiter thread only (every thread made
     * later inherits the mask); SIGUSR1 interrupts a tracer's wait4. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    pthread_t sw;
    pthread_create(&sw, NULL, sigwaiter, NULL);
    pthread_detach(sw);

    int r;
    if (mode == M_THREAD) {
        r = run_threads();
    } else {
        gort_config_t cfg = {.size = sizeof cfg, .flags = GORT_CONFIG_NO_DEADLOCK_CHECK};
        r = gort_main(run_gort, NULL, &cfg);
        if (r < 0) {
            fprintf(stderr, "gtrace: gort_main: %s\n", gort_strerror(r));
            return 1;
        }
    }
    if (r)
        return r;
    if (opt_c)
        for (int i = 0; i < ncmds; i++)
            summary(&cmds[i]);
    fflush(out);
    int st = cmds[0].status;
    if (!cmds[0].started)
        return 127;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return 1;
}
