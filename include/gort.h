/*
 * gort.h - the one public header of gort, Go's M:N scheduler for C.
 *
 * Goroutines (G) run on OS threads (M) that must hold one of GOMAXPROCS
 * virtual processors (P) to run Go-style code. The runtime is started with
 * gort_main(), which runs a function as the main goroutine and returns when
 * it returns.
 *
 * Conventions
 *  - Every call that can fail returns 0 or a negative errno value; calls that
 *    return data return a non-negative value or a negative errno. The library
 *    never writes errno.
 *  - Durations are int64_t nanoseconds.
 *  - Config and stats structs start with a size field: set it to
 *    sizeof(struct) so the struct can grow without breaking the ABI.
 *  - Contexts: "goroutine" means code running as a gort goroutine (the main
 *    goroutine or one started by gort_go). "Foreign thread" means any other
 *    thread, including the thread that called gort_main while it waits.
 *    Calls that need a goroutine return -EPERM from a foreign thread.
 */
#ifndef GORT_H
#define GORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GORT_VERSION_MAJOR 0
#define GORT_VERSION_MINOR 1
#define GORT_VERSION_PATCH 0

#if defined(__GNUC__)
#define GORT_API      __attribute__((visibility("default")))
#define GORT_NORETURN __attribute__((noreturn))
#else
#define GORT_API
#define GORT_NORETURN
#endif

/* Returns the library version as "MAJOR.MINOR.PATCH". Any context. */
GORT_API const char *gort_version(void);

/* Returns a static description of a gort error code (a negative errno).
 * Any context, async-signal-safe. */
GORT_API const char *gort_strerror(int err);

/* ------------------------------------------------------------------------ */
/* Runtime                                                                  */
/* ------------------------------------------------------------------------ */

/* Default goroutine stack size: 64 KiB of address space, of which only the
 * touched pages use memory. */
#define GORT_STACK_DEFAULT ((size_t)64 * 1024)
/* Smallest stack a goroutine may ask for. */
#define GORT_STACK_MIN ((size_t)8 * 1024)
/* Largest stack a goroutine may ask for. */
#define GORT_STACK_MAX ((size_t)1024 * 1024 * 1024)
/* Largest GOMAXPROCS value. */
#define GORT_MAXPROCS_MAX 1024

typedef struct gort_config {
    size_t size;       /* sizeof(gort_config_t) */
    int gomaxprocs;    /* 0: $GORT_MAXPROCS, else the CPUs in the affinity mask */
    size_t stack_size; /* 0: GORT_STACK_DEFAULT; default size for gort_go */
} gort_config_t;

/* The main goroutine's function: its return value is gort_main's result. */
typedef int (*gort_main_fn)(void *arg);
/* A goroutine's function. */
typedef void (*gort_fn)(void *arg);

/*
 * gort_main - start the runtime, run fn(arg) as the main goroutine, return
 * its result.
 *
 * The calling thread becomes the runtime's first M. When fn returns (or the
 * main goroutine calls gort_exit(), which counts as returning 0), every
 * other goroutine is abandoned as in Go, the runtime's threads are stopped
 * and joined and its memory is freed, and gort_main returns fn's result.
 * gort_main may be called again afterwards.
 *
 * cfg may be NULL for defaults. fn should return a non-negative status so it
 * cannot be confused with the runtime's own errors.
 *
 * Contexts: a foreign thread only (never from a goroutine).
 * Returns: fn's result; -EINVAL for a NULL fn, a bad cfg->size, gomaxprocs
 * outside [0, GORT_MAXPROCS_MAX] or a bad stack size; -EBUSY if the runtime is
 * already running (or a previous run left a thread stuck in a goroutine);
 * -ENOMEM or -EAGAIN if memory or threads could not be had.
 */
GORT_API int gort_main(gort_main_fn fn, void *arg, const gort_config_t *cfg);

typedef struct gort_go_opts {
    size_t size;       /* sizeof(gort_go_opts_t) */
    size_t stack_size; /* 0: the runtime's default; else GORT_STACK_MIN..GORT_STACK_MAX */
} gort_go_opts_t;

/*
 * gort_go - start fn(arg) as a new goroutine.
 *
 * The new goroutine is put in the caller's P's runnext slot (Go's newproc),
 * so it usually runs as soon as the caller blocks or yields, and an idle P
 * is woken to steal work if there is one.
 *
 * Contexts: goroutine. Returns 0, -EPERM from a foreign thread, -EINVAL for
 * a NULL fn, -ENOMEM when no stack can be mapped.
 */
GORT_API int gort_go(gort_fn fn, void *arg);

/* gort_go with options; *id_out (if not NULL) receives the goroutine's id.
 * Returns as gort_go, plus -EINVAL for bad opts. */
GORT_API int gort_go_opts(gort_fn fn, void *arg, const gort_go_opts_t *opts, uint64_t *id_out);

/* gort_yield - let other goroutines run (Go's runtime.Gosched: the caller is
 * put at the tail of its P's run queue). Contexts: goroutine.
 * Returns 0 or -EPERM. */
GORT_API int gort_yield(void);

/* gort_exit - end the calling goroutine now (Go's runtime.Goexit). In the
 * main goroutine it ends gort_main with status 0. Never returns when called
 * from a goroutine; returns -EPERM from a foreign thread. */
GORT_API int gort_exit(void);

/* gort_self_id - the calling goroutine's id (> 0; the main goroutine is 1).
 * Returns -EPERM from a foreign thread. */
GORT_API int64_t gort_self_id(void);

/* gort_gomaxprocs - the number of Ps. Any context; -ESRCH when the runtime
 * is not running. */
GORT_API int gort_gomaxprocs(void);

/* ------------------------------------------------------------------------ */
/* Statistics                                                               */
/* ------------------------------------------------------------------------ */

/* Counters since gort_main started. Each is a sum of per-P or per-M counters
 * read without stopping the world, so a snapshot is only consistent when the
 * runtime is quiet. */
typedef struct gort_stats {
    size_t size; /* sizeof(gort_stats_t), set by the caller */
    uint64_t goroutines_created;
    uint64_t goroutines_exited;
    uint64_t goroutines_live;      /* created - exited, including the main goroutine */
    uint64_t switches;             /* goroutine executions started by schedule() */
    uint64_t steal_tries;          /* runqsteal attempts on another P */
    uint64_t steal_successes;      /* attempts that took at least one goroutine */
    uint64_t steal_gs;             /* goroutines taken by stealing */
    uint64_t ms_created;           /* threads started (including the first) */
    uint64_t ms_parked;            /* stopm: an M went to sleep with no P */
    uint64_t ms_woken;             /* startm: an idle M was given a P and woken */
    uint64_t spinning_transitions; /* an M started spinning (looking for work) */
    uint64_t futex_sleeps;         /* futex waits issued by the runtime */
    uint64_t futex_wakes;          /* futex wakes issued by the runtime */
    uint64_t globrunq_puts;        /* goroutines put on the global run queue */
    uint64_t globrunq_gets;        /* goroutines taken from the global run queue */
    uint64_t stacks_mapped;        /* stacks mapped from the OS */
    uint64_t stack_bytes_mapped;   /* address space mapped for stacks */
    int64_t gomaxprocs;
} gort_stats_t;

/* Fills *st (st->size must be set; fields past it are left alone).
 * Any context. Returns 0, -EINVAL for NULL or a too-small size, -ESRCH when
 * the runtime is not running. */
GORT_API int gort_stats_get(gort_stats_t *st);

/* ------------------------------------------------------------------------ */
/* WaitGroup                                                                */
/* ------------------------------------------------------------------------ */

/* A WaitGroup waits for a collection of goroutines to finish (Go's
 * sync.WaitGroup). Zero-initialise it (GORT_WAITGROUP_INIT) or call
 * gort_waitgroup_init. It must not be copied once used. Waiters park their
 * goroutine, never their thread. */
typedef struct gort_waitgroup {
    uint64_t opaque[4];
} gort_waitgroup_t;
#define GORT_WAITGROUP_INIT                                                                        \
    {                                                                                              \
        { 0, 0, 0, 0 }                                                                             \
    }

GORT_API void gort_waitgroup_init(gort_waitgroup_t *wg);
/* Adds delta (may be negative) to the counter. When it reaches zero every
 * waiter is woken. Any context. Returns 0, -EINVAL if the counter would go
 * negative (the counter is left unchanged), -EOVERFLOW past INT32_MAX. */
GORT_API int gort_waitgroup_add(gort_waitgroup_t *wg, int delta);
/* gort_waitgroup_add(wg, -1). */
GORT_API int gort_waitgroup_done(gort_waitgroup_t *wg);
/* Parks the calling goroutine until the counter is zero. Contexts:
 * goroutine. Returns 0 or -EPERM. */
GORT_API int gort_waitgroup_wait(gort_waitgroup_t *wg);

#ifdef __cplusplus
}
#endif
#endif /* GORT_H */
