/*
 * env.c - settings read from the environment.
 *
 * GORT_MAXPROCS=N sets GOMAXPROCS when the config does not (1..1024; other
 * values are ignored, as Go ignores a bad GOMAXPROCS). The default is the
 * number of CPUs in the calling thread's affinity mask, which is what a
 * container's cpuset or taskset gives the process.
 * GORT_DEDICATED_SPIN_NS and GORT_TIMER_SPIN_NS set the two spin bounds when
 * the config leaves them 0.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include "internal.h"

int gort__ncpu(void)
{
    cpu_set_t set;
    int n = 1;
    int saved = errno;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        n = CPU_COUNT(&set);
    errno = saved;
    return n < 1 ? 1 : n;
}

/* A spin bound: cfg > 0 as given, < 0 off (0), 0: $name (0 to 1 s; other
 * values are ignored), else dflt. */
static int64_t spin_setting(int64_t cfg, const char *name, int64_t dflt)
{
    if (cfg != 0)
        return cfg > 0 ? cfg : 0;
    const char *s = getenv(name);
    if (s && *s) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (*end == '\0' && v >= 0 && v <= 1000000000LL)
            return v;
    }
    return dflt;
}

/* The dedicated threads' spin bound; the default, 50 us, is about what
 * waking a sleeping thread on another CPU costs on a virtual machine (see
 * docs/performance.md). */
int64_t gort__dedicated_spin_default(int64_t cfg)
{
    return spin_setting(cfg, "GORT_DEDICATED_SPIN_NS", 50 * 1000);
}

/* The timer sleeper's spin (sched.c timer_spin); off by default. */
int64_t gort__timer_spin_default(int64_t cfg)
{
    return spin_setting(cfg, "GORT_TIMER_SPIN_NS", 0);
}

int gort__default_gomaxprocs(void)
{
    const char *s = getenv("GORT_MAXPROCS");
    if (s && *s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (*end == '\0' && v >= 1 && v <= GORT_MAXPROCS_MAX)
            return (int)v;
    }
    int n = gort__ncpu();
    if (n > GORT_MAXPROCS_MAX)
        n = GORT_MAXPROCS_MAX;
    return n;
}
