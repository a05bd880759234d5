/*
 * api.c - the public entry points: argument checks and context checks,
 * then the gort__ functions that do the work. Nothing here touches
 * scheduler state directly.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

#define STR_(x) #x
#define STR(x)  STR_(x)

GORT_API const char *gort_version(void)
{
    return STR(GORT_VERSION_MAJOR) "." STR(GORT_VERSION_MINOR) "." STR(GORT_VERSION_PATCH);
}

GORT_API const char *gort_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case -EPERM:
        return "not called from a goroutine";
    case -EINVAL:
        return "invalid argument";
    case -ENOMEM:
        return "out of memory";
    case -EAGAIN:
        return "resource temporarily unavailable";
    case -EBUSY:
        return "runtime already running";
    case -ESRCH:
        return "runtime not running";
    case -EOVERFLOW:
        return "value too large";
    case -ETIMEDOUT:
        return "timed out";
    case -EPIPE:
        return "closed";
    case -ECANCELED:
        return "canceled";
    }
    return "unknown error";
}

GORT_API int gort_main(gort_main_fn fn, void *arg, const gort_config_t *cfg)
{
    return gort__main(fn, arg, cfg);
}

GORT_API int gort_go(gort_fn fn, void *arg)
{
    return gort_go_opts(fn, arg, NULL, NULL);
}

GORT_API int gort_go_opts(gort_fn fn, void *arg, const gort_go_opts_t *opts, uint64_t *id_out)
{
    if (!gort__api_g())
        return -EPERM;
    if (!fn)
        return -EINVAL;
    size_t stack_size = 0;
    if (opts) {
        if (opts->size < offsetof(gort_go_opts_t, stack_size) + sizeof(size_t))
            return -EINVAL;
        if (opts->stack_size) {
            stack_size = gort__stack_roundsize(opts->stack_size);
            if (!stack_size)
                return -EINVAL;
        }
    }
    return gort__newproc(fn, arg, stack_size, id_out);
}

GORT_API int gort_yield(void)
{
    gort__g_t *gp = gort__getg();
    if (!gp)
        return -EPERM;
    gort__api_debug_check(gp);
    /* A yield answers a pending preemption request: clear it rather than
     * sending the goroutine to the back of the global queue as well. */
    atomic_store_explicit(&gp->preempt, false, memory_order_relaxed);
    gort__gosched_g(gp);
    return 0;
}

GORT_API int gort_exit(void)
{
    if (!gort__api_g())
        return -EPERM;
    gort__goexit();
}

GORT_API int64_t gort_self_id(void)
{
    gort__g_t *gp = gort__api_g();
    if (!gp)
        return -EPERM;
    return (int64_t)gp->goid;
}

GORT_API int gort_gomaxprocs(void)
{
    if (!atomic_load(&gort__rt.running))
        return -ESRCH;
    return gort__rt.gomaxprocs;
}

GORT_API int gort_stats_get(gort_stats_t *st)
{
    return gort__stats_get(st);
}
