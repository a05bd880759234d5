/*
 * report.h - what one run of the sentry model measured, and the outputs made
 * from the medians: the human tables, the CSV and the SVG chart (report.c).
 */
#ifndef SENTRY_REPORT_H
#define SENTRY_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "sentry.h"

/* The metrics of one run; the report shows the median of each over the
 * runs of a (workload, mode) separately. */
enum {
    MET_OPS,     /* application system calls per second */
    MET_P50,     /* latency per call, us */
    MET_P99,     /* us */
    MET_MAX,     /* worst call, us */
    MET_FAIR,    /* fewest / most calls of any one thread */
    MET_CPU,     /* CPU time (user + sys, both processes) per call, us */
    MET_CS,      /* context switches (voluntary + involuntary, both processes) per call */
    MET_MIGR,    /* CPU changes between calls, application threads + tasks, per call */
    MET_MCHG,    /* task thread changes between calls, per call */
    MET_HANDOFF, /* gort handoffs per call */
    MET_RETAKE,  /* gort sysmon_retakes per call */
    MET_SLOWX,   /* gort syscall_slow_exits per call (exitsyscall found no P) */
    MET_DWAKE,   /* gort dedicated_direct_wakes per call */
    MET_SLOCKED, /* gort startlockedm per call */
    MET_RTFUTEX, /* gort futex_wakes per call */
    MET_BG,      /* background work chunks per second */
    MET_COUNT
};

typedef struct metric_info {
    const char *name; /* CSV column and metric-line name */
    const char *head; /* table column heading */
    const char *unit;
} metric_info_t;
extern const metric_info_t metric_info[MET_COUNT];

typedef struct result {
    double m[MET_COUNT]; /* NAN: not measured (a pooled CSV without the column) */
    int errors;
    bool absent;             /* no such run (pooled cells with fewer runs) */
    double ops_min, ops_max; /* medians only: the range of MET_OPS over the runs */
    int nruns;               /* medians only: runs the median is over */
} result_t;

/* One workload configuration: a column of the chart, a table. */
typedef struct config {
    int workload;
    int nthreads;
    int nbg;
    char name[16];  /* "a", "d64", ... */
    char desc[160]; /* one line for the table and the chart */
} config_t;

typedef struct report {
    const config_t *cfgs;
    int ncfg;
    const int *modes; /* the modes run, in table order */
    int nmodes;
    int runs;
    /* res[(c * MODE_COUNT + mode) * runs + r] */
    const result_t *res;
    /* medians, [c * MODE_COUNT + mode] */
    result_t *med;
    const char *machine;  /* one line */
    const char *settings; /* one line */
} report_t;

/* Reads the per-run rows of CSV files written by report_csv (--pool):
 * appends configurations to cfgs (at most max_cfgs; *ncfg in/out), and
 * returns the results array laid out as report_t.res with *runs_out runs
 * per cell (missing runs marked absent), and the modes found (in canonical
 * order) in modes/nmodes. Returns NULL (with a message on stderr) on error. */
result_t *report_pool(const char *const *paths, int npaths, config_t *cfgs, int max_cfgs, int *ncfg,
                      int *modes, int *nmodes, int *runs_out);
/* Fills rep->med. */
void report_medians(report_t *rep);
/* The human table of configuration c (lines start with '#') and its
 * `name value unit` lines. */
void report_table(const report_t *rep, int c);
/* Checks the targets; prints PASS/MISS lines. */
void report_targets(const report_t *rep);
/* Returns 0 or -errno. */
int report_csv(const report_t *rep, const char *path);
int report_svg(const report_t *rep, const char *path);

#endif /* SENTRY_REPORT_H */
