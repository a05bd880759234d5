/*
 * env.c - settings read from the environment.
 *
 * GORT_MAXPROCS=N sets GOMAXPROCS when the config does not (1..1024; other
 * values are ignored, as Go ignores a bad GOMAXPROCS). The default is the
 * number of CPUs in the calling thread's affinity mask, which is what a
 * container's cpuset or taskset gives the process.
 */
#include <sched.h>
#include <stdlib.h>

#include "internal.h"

int gort__default_gomaxprocs(void)
{
    const char *s = getenv("GORT_MAXPROCS");
    if (s && *s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (*end == '\0' && v >= 1 && v <= GORT_MAXPROCS_MAX)
            return (int)v;
    }
    cpu_set_t set;
    int n = 1;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        n = CPU_COUNT(&set);
    if (n < 1)
        n = 1;
    if (n > GORT_MAXPROCS_MAX)
        n = GORT_MAXPROCS_MAX;
    return n;
}
