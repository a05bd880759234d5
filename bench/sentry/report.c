/*
 * report.c - the sentry benchmark's outputs, all made from the per-run
 * results: medians (each metric's median over the rounds, separately), one
 * human table per workload ('#' lines) with `name value unit` lines for the
 * main metrics, the targets (PASS / MISS), the CSV (every run and
 * the medians) and an SVG chart drawn here with fprintf (no tools needed):
 * one column per workload, throughput bars (linear) above p99 latency bars
 * (log scale) and worst-call bars (log scale), one bar per mode.
 * report_pool reads the per-run rows of such CSV files back (--pool), so
 * several invocations can be reported together; a metric a file lacks is
 * NAN and is left out of its medians.
 */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const metric_info_t metric_info[MET_COUNT] = {
    [MET_OPS] = {"ops_per_s", "ops/s", "ops/s"},
    [MET_P50] = {"p50_us", "p50us", "us"},
    [MET_P99] = {"p99_us", "p99us", "us"},
    [MET_MAX] = {"max_us", "maxus", "us"},
    [MET_FAIR] = {"fairness", "fair", "ratio"},
    [MET_CPU] = {"cpu_us_per_op", "cpuus", "us/op"},
    [MET_CS] = {"ctxsw_per_op", "cs", "1/op"},
    [MET_MIGR] = {"migrations_per_op", "migr", "1/op"},
    [MET_MCHG] = {"task_thread_changes_per_op", "Mchg", "1/op"},
    [MET_HANDOFF] = {"handoffs_per_op", "hoff", "1/op"},
    [MET_RETAKE] = {"sysmon_retakes_per_op", "retk", "1/op"},
    [MET_SLOWX] = {"syscall_slow_exits_per_op", "slowx", "1/op"},
    [MET_DWAKE] = {"dedicated_direct_wakes_per_op", "dwake", "1/op"},
    [MET_SLOCKED] = {"startlockedm_per_op", "slckd", "1/op"},
    [MET_RTFUTEX] = {"runtime_futex_wakes_per_op", "rtfw", "1/op"},
    [MET_BG] = {"bg_chunks_per_s", "bg/s", "chunks/s"},
};

static const char *const mode_colors[MODE_COUNT] = {
    [MODE_RAW] = "#d62728",    [MODE_LAZY] = "#ff7f0e",      [MODE_EAGER] = "#bcbd22",
    [MODE_LOCKED] = "#9467bd", [MODE_DEDICATED] = "#2ca02c", [MODE_PTHREADS] = "#1f77b4",
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const result_t *run_res(const report_t *rep, int c, int mode, int r)
{
    return &rep->res[((size_t)c * MODE_COUNT + (size_t)mode) * (size_t)rep->runs + (size_t)r];
}

static const result_t *med(const report_t *rep, int c, int mode)
{
    return &rep->med[(size_t)c * MODE_COUNT + (size_t)mode];
}

static bool has_mode(const report_t *rep, int mode)
{
    for (int i = 0; i < rep->nmodes; i++)
        if (rep->modes[i] == mode)
            return true;
    return false;
}

void report_medians(report_t *rep)
{
    double *v = malloc(sizeof(double) * (size_t)rep->runs);
    if (!v)
        return;
    for (int c = 0; c < rep->ncfg; c++) {
        for (int k = 0; k < rep->nmodes; k++) {
            int mode = rep->modes[k];
            result_t *m = &rep->med[(size_t)c * MODE_COUNT + (size_t)mode];
            m->errors = 0;
            m->nruns = 0;
            for (int r = 0; r < rep->runs; r++) {
                const result_t *x = run_res(rep, c, mode, r);
                if (!x->absent) {
                    m->errors += x->errors;
                    m->nruns++;
                }
            }
            m->absent = m->nruns == 0;
            for (int j = 0; j < MET_COUNT; j++) {
                int n = 0;
                for (int r = 0; r < rep->runs; r++) {
                    const result_t *x = run_res(rep, c, mode, r);
                    if (!x->absent && !isnan(x->m[j]))
                        v[n++] = x->m[j];
                }
                if (n == 0) {
                    m->m[j] = NAN;
                    continue;
                }
                qsort(v, (size_t)n, sizeof *v, cmp_double);
                m->m[j] = (n % 2) ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
                if (j == MET_OPS) {
                    m->ops_min = v[0];
                    m->ops_max = v[n - 1];
                }
            }
        }
    }
    free(v);
}

/* ---- pooling CSV files (--pool) ---- */

static int wl_of(const char *name)
{
    switch (name[0]) {
    case 'a':
        return WL_A;
    case 'b':
        return WL_B;
    case 'c':
        return WL_C;
    case 'd':
        return WL_D;
    case 'e':
        return WL_E;
    }
    return -1;
}

typedef struct cell {
    result_t *v;
    int n, cap;
} cell_t;

result_t *report_pool(const char *const *paths, int npaths, config_t *cfgs, int max_cfgs, int *ncfg,
                      int *modes, int *nmodes, int *runs_out)
{
    cell_t *cells = calloc((size_t)max_cfgs * MODE_COUNT, sizeof *cells);
    bool seen_mode[MODE_COUNT] = {false};
    char line[4096];
    result_t *res = NULL;
    if (!cells)
        return NULL;
    for (int fi = 0; fi < npaths; fi++) {
        FILE *f = fopen(paths[fi], "r");
        if (!f) {
            fprintf(stderr, "sentry: cannot read %s\n", paths[fi]);
            goto out;
        }
        int col_of[64]; /* CSV column -> metric (-1: other, -2: errors) */
        int ncols = 0;
        if (!fgets(line, sizeof line, f)) {
            fclose(f);
            continue;
        }
        line[strcspn(line, "\r\n")] = 0;
        for (char *save = NULL, *tok = strtok_r(line, ",", &save); tok && ncols < 64;
             tok = strtok_r(NULL, ",", &save)) {
            col_of[ncols] = strcmp(tok, "errors") == 0 ? -2 : -1;
            for (int j = 0; j < MET_COUNT; j++)
                if (strcmp(tok, metric_info[j].name) == 0)
                    col_of[ncols] = j;
            ncols++;
        }
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = 0;
            char *fld[64];
            int nf = 0;
            for (char *save = NULL, *tok = strtok_r(line, ",", &save); tok && nf < 64;
                 tok = strtok_r(NULL, ",", &save))
                fld[nf++] = tok;
            if (nf < 5 || nf != ncols || strcmp(fld[4], "median") == 0 || wl_of(fld[0]) < 0)
                continue;
            int mode = -1;
            for (int m = 0; m < MODE_COUNT; m++)
                if (strcmp(fld[3], sentry_mode_names[m]) == 0)
                    mode = m;
            if (mode < 0)
                continue;
            int threads = atoi(fld[1]), bg = atoi(fld[2]), c;
            for (c = 0; c < *ncfg; c++)
                if (strcmp(cfgs[c].name, fld[0]) == 0 && cfgs[c].nthreads == threads &&
                    cfgs[c].nbg == bg)
                    break;
            if (c == *ncfg) {
                if (c == max_cfgs) {
                    fprintf(stderr, "sentry: too many configurations in %s\n", paths[fi]);
                    fclose(f);
                    goto out;
                }
                config_t *cf = &cfgs[c];
                memset(cf, 0, sizeof *cf);
                cf->workload = wl_of(fld[0]);
                cf->nthreads = threads;
                cf->nbg = bg;
                snprintf(cf->name, sizeof cf->name, "%s", fld[0]);
                static const char *const what[WL_COUNT] = {
                    [WL_A] = "syscall-heavy, getpid answered at once",
                    [WL_B] = "futex ping-pong pairs",
                    [WL_C] = "pipe chain",
                    [WL_D] = "workload a",
                    [WL_E] = "workload b + background CPU goroutines"};
                snprintf(cf->desc, sizeof cf->desc, "%s: %s, %d thread%s%s", cf->name,
                         what[cf->workload], threads, threads == 1 ? "" : "s",
                         bg ? " + background goroutines" : "");
                (*ncfg)++;
            }
            cell_t *cl = &cells[(size_t)c * MODE_COUNT + (size_t)mode];
            if (cl->n == cl->cap) {
                int cap = cl->cap ? 2 * cl->cap : 8;
                result_t *nv = realloc(cl->v, sizeof *nv * (size_t)cap);
                if (!nv) {
                    fclose(f);
                    goto out;
                }
                cl->v = nv;
                cl->cap = cap;
            }
            result_t *x = &cl->v[cl->n++];
            memset(x, 0, sizeof *x);
            for (int j = 0; j < MET_COUNT; j++)
                x->m[j] = NAN;
            for (int k = 5; k < nf; k++) {
                if (col_of[k] >= 0)
                    x->m[col_of[k]] = strtod(fld[k], NULL);
                else if (col_of[k] == -2)
                    x->errors = atoi(fld[k]);
            }
            seen_mode[mode] = true;
        }
        fclose(f);
    }
    int runs = 1;
    for (int i = 0; i < *ncfg * MODE_COUNT; i++)
        if (cells[i].n > runs)
            runs = cells[i].n;
    res = calloc((size_t)*ncfg * MODE_COUNT * (size_t)runs, sizeof *res);
    if (!res)
        goto out;
    for (int i = 0; i < *ncfg * MODE_COUNT; i++)
        for (int r = 0; r < runs; r++) {
            result_t *x = &res[(size_t)i * (size_t)runs + (size_t)r];
            if (r < cells[i].n)
                *x = cells[i].v[r];
            else
                x->absent = true;
        }
    static const int order[] = {MODE_RAW,    MODE_LAZY,      MODE_EAGER,
                                MODE_LOCKED, MODE_DEDICATED, MODE_PTHREADS};
    *nmodes = 0;
    for (int i = 0; i < MODE_COUNT; i++)
        if (seen_mode[order[i]])
            modes[(*nmodes)++] = order[i];
    *runs_out = runs;
out:
    for (int i = 0; i < max_cfgs * MODE_COUNT; i++)
        free(cells[i].v);
    free(cells);
    return res;
}

/* A value in at most 7 characters. */
static void fmt(char *buf, size_t len, double v)
{
    double a = fabs(v);
    if (isnan(v))
        snprintf(buf, len, "-");
    else if (a == 0)
        snprintf(buf, len, "0");
    else if (a >= 1e6)
        snprintf(buf, len, "%.3gM", v / 1e6);
    else if (a >= 1e4)
        snprintf(buf, len, "%.0fk", v / 1e3);
    else if (a >= 100)
        snprintf(buf, len, "%.0f", v);
    else if (a >= 10)
        snprintf(buf, len, "%.1f", v);
    else if (a >= 0.01)
        snprintf(buf, len, "%.2f", v);
    else
        snprintf(buf, len, "%.0e", v);
}

void report_table(const report_t *rep, int c)
{
    const config_t *cf = &rep->cfgs[c];
    static const int cols[] = {
        MET_OPS,  MET_P50,     MET_P99,    MET_MAX,   MET_FAIR,  MET_CPU,     MET_CS,      MET_MIGR,
        MET_MCHG, MET_HANDOFF, MET_RETAKE, MET_SLOWX, MET_DWAKE, MET_SLOCKED, MET_RTFUTEX, MET_BG};
    int ncols = (int)(sizeof cols / sizeof cols[0]);
    if (cf->nbg == 0)
        ncols--; /* no background column */
    int nr = 0;
    for (int k = 0; k < rep->nmodes; k++)
        if (med(rep, c, rep->modes[k])->nruns > nr)
            nr = med(rep, c, rep->modes[k])->nruns;
    printf("#\n# %s  (medians of %d runs)\n", cf->desc, nr);
    printf("# %-9s", "mode");
    for (int i = 0; i < ncols; i++)
        printf(" %7s", metric_info[cols[i]].head);
    printf(" %7s %7s\n", "spread", "vs_pt");
    const result_t *pt = has_mode(rep, MODE_PTHREADS) ? med(rep, c, MODE_PTHREADS) : NULL;
    for (int k = 0; k < rep->nmodes; k++) {
        int mode = rep->modes[k];
        const result_t *m = med(rep, c, mode);
        printf("# %-9s", sentry_mode_names[mode]);
        for (int i = 0; i < ncols; i++) {
            char b[32];
            fmt(b, sizeof b, m->m[cols[i]]);
            printf(" %7s", b);
        }
        if (m->m[MET_OPS] > 0)
            printf(" %6.0f%%", 100 * (m->ops_max - m->ops_min) / m->m[MET_OPS]);
        else
            printf(" %7s", "-");
        if (pt && pt->m[MET_OPS] > 0)
            printf(" %6.2fx", m->m[MET_OPS] / pt->m[MET_OPS]);
        printf("%s\n", m->errors ? "  INCONSISTENT" : "");
    }
    printf("# columns: ops/s = application calls per second; p50us/p99us/maxus = latency per "
           "call; fair = fewest/most calls of one thread; cpuus = CPU us per call (both "
           "processes); cs = context switches per call; migr = CPU changes between calls (app "
           "threads + tasks); Mchg = task thread changes; hoff/retk/slowx/dwake/slckd/rtfw = gort "
           "handoffs, sysmon retakes, slow syscall exits (no P), dedicated direct wakes, "
           "startlockedm, runtime futex wakes per call%s; spread = (max - min) / median of ops/s "
           "over the runs; vs_pt = throughput / "
           "pthreads\n",
           cf->nbg ? "; bg/s = background chunks per second" : "");
    for (int k = 0; k < rep->nmodes; k++) {
        int mode = rep->modes[k];
        const result_t *m = med(rep, c, mode);
        printf("sentry_%s_%s_ops %.6g ops/s\n", cf->name, sentry_mode_names[mode], m->m[MET_OPS]);
        printf("sentry_%s_%s_p99 %.6g us\n", cf->name, sentry_mode_names[mode], m->m[MET_P99]);
        if (cf->nbg)
            printf("sentry_%s_%s_bg %.6g chunks/s\n", cf->name, sentry_mode_names[mode],
                   m->m[MET_BG]);
    }
}

static void target(const char *name, double value, bool ok_if_ge, double bound, const char *what)
{
    bool ok = ok_if_ge ? value >= bound : value <= bound;
    printf("sentry_%s_ratio %.4g x\n", name, value);
    printf("# target %-38s %6.3f %s %.2f  %s  (%s)\n", name, value, ok_if_ge ? ">=" : "<=", bound,
           ok ? "PASS" : "MISS", what);
}

static int find_cfg(const report_t *rep, int workload, int nthreads)
{
    for (int c = 0; c < rep->ncfg; c++)
        if (rep->cfgs[c].workload == workload &&
            (nthreads < 0 || rep->cfgs[c].nthreads == nthreads))
            return c;
    return -1;
}

void report_targets(const report_t *rep)
{
    if (!has_mode(rep, MODE_DEDICATED) || !has_mode(rep, MODE_PTHREADS))
        return;
    printf("#\n# targets (issue 6, on the 2-core VM)\n");
    static const int ab[] = {WL_A, WL_B};
    for (int i = 0; i < 2; i++) {
        int c = find_cfg(rep, ab[i], -1);
        if (c < 0)
            continue;
        const char *n = rep->cfgs[c].name;
        const result_t *d = med(rep, c, MODE_DEDICATED), *p = med(rep, c, MODE_PTHREADS);
        char nm[64];
        snprintf(nm, sizeof nm, "%s_dedicated_vs_pthreads_ops", n);
        target(nm, d->m[MET_OPS] / p->m[MET_OPS], true, 0.9, "throughput");
        snprintf(nm, sizeof nm, "%s_dedicated_vs_pthreads_p99", n);
        target(nm, d->m[MET_P99] / p->m[MET_P99], false, 1.2, "p99 latency");
        double best = 0;
        int bm = -1;
        for (int k = 0; k < rep->nmodes; k++) {
            int mode = rep->modes[k];
            if (mode == MODE_DEDICATED || mode == MODE_PTHREADS)
                continue;
            if (med(rep, c, mode)->m[MET_OPS] > best) {
                best = med(rep, c, mode)->m[MET_OPS];
                bm = mode;
            }
        }
        if (bm >= 0) {
            char what[64];
            snprintf(what, sizeof what, "throughput over the best other gort mode, %s",
                     sentry_mode_names[bm]);
            snprintf(nm, sizeof nm, "%s_dedicated_vs_best_gort_ops", n);
            target(nm, d->m[MET_OPS] / best, true, 1.5, what);
        }
    }
    int c = find_cfg(rep, WL_D, 64);
    if (c >= 0) {
        const result_t *d = med(rep, c, MODE_DEDICATED), *p = med(rep, c, MODE_PTHREADS);
        target("d64_dedicated_vs_pthreads_ops", d->m[MET_OPS] / p->m[MET_OPS], true, 0.9,
               "throughput");
        target("d64_dedicated_vs_pthreads_max", d->m[MET_MAX] / p->m[MET_MAX], false, 2.0,
               "worst latency");
        target("d64_dedicated_fairness", d->m[MET_FAIR], true, 0.6, "fewest / most calls");
        printf("# d64 fairness and worst latency by mode:");
        for (int k = 0; k < rep->nmodes; k++)
            printf(" %s %.2f / %.0f us;", sentry_mode_names[rep->modes[k]],
                   med(rep, c, rep->modes[k])->m[MET_FAIR], med(rep, c, rep->modes[k])->m[MET_MAX]);
        printf("\n");
    }
    c = find_cfg(rep, WL_E, -1);
    if (c >= 0) {
        const result_t *d = med(rep, c, MODE_DEDICATED), *p = med(rep, c, MODE_PTHREADS);
        target("e_dedicated_vs_pthreads_bg", d->m[MET_BG] / p->m[MET_BG], true, 0.9,
               "background goroutines' work rate");
    }
}

int report_csv(const report_t *rep, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    fprintf(f, "workload,threads,bg,mode,run");
    for (int j = 0; j < MET_COUNT; j++)
        fprintf(f, ",%s", metric_info[j].name);
    fprintf(f, ",errors\n");
    for (int c = 0; c < rep->ncfg; c++) {
        const config_t *cf = &rep->cfgs[c];
        for (int k = 0; k < rep->nmodes; k++) {
            int mode = rep->modes[k];
            for (int r = -1; r < rep->runs; r++) {
                const result_t *x = r < 0 ? med(rep, c, mode) : run_res(rep, c, mode, r);
                if (x->absent)
                    continue;
                fprintf(f, "%s,%d,%d,%s,", cf->name, cf->nthreads, cf->nbg,
                        sentry_mode_names[mode]);
                if (r < 0)
                    fprintf(f, "median");
                else
                    fprintf(f, "%d", r + 1);
                for (int j = 0; j < MET_COUNT; j++)
                    fprintf(f, ",%.6g", x->m[j]);
                fprintf(f, ",%d\n", x->errors);
            }
        }
    }
    return fclose(f) == 0 ? 0 : -errno;
}

/* ---- SVG ----
 * The worst call is drawn as well as p99: when tasks starve (raw, lazy and
 * locked with many threads), the starved threads make few calls, so p99
 * over all calls stays low while the worst call and the fairness show it. */

static void svg_text(FILE *f, double x, double y, double size, const char *anchor,
                     const char *extra, const char *s)
{
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.1f\" text-anchor=\"%s\"%s%s>", x, y, size,
            anchor, extra ? " " : "", extra ? extra : "");
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else
            fputc(*s, f);
    }
    fputs("</text>\n", f);
}

/* One panel: bars of metric j for configuration c, in the box (x, y, w, h). */
static void svg_panel(FILE *f, const report_t *rep, int c, int j, bool logscale, double x, double y,
                      double w, double h)
{
    double vmax = 0, vmin = INFINITY;
    for (int k = 0; k < rep->nmodes; k++) {
        double v = med(rep, c, rep->modes[k])->m[j];
        if (isnan(v))
            continue;
        if (v > vmax)
            vmax = v;
        if (v > 0 && v < vmin)
            vmin = v;
    }
    if (vmax <= 0)
        vmax = 1;
    double lo = 0, hi = vmax * 1.15;
    if (logscale) {
        if (!isfinite(vmin))
            vmin = 1;
        lo = floor(log10(vmin) - 0.3);
        hi = ceil(log10(vmax) + 0.15);
        if (hi - lo < 1)
            hi = lo + 1;
    }
    fprintf(f,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fafafa\" "
            "stroke=\"#ccc\"/>\n",
            x, y, w, h);
    if (logscale) {
        for (int d = (int)ceil(lo); d <= (int)floor(hi); d++) {
            double yy = y + h - (d - lo) / (hi - lo) * h;
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
                    x, yy, x + w, yy);
            char b[32];
            fmt(b, sizeof b, pow(10, d));
            svg_text(f, x + 2, yy - 2, 7, "start", "fill=\"#999\"", b);
        }
    }
    int n = rep->nmodes;
    double slot = w / n, bw = slot * 0.7;
    for (int k = 0; k < n; k++) {
        int mode = rep->modes[k];
        double v = med(rep, c, mode)->m[j];
        double frac;
        if (isnan(v))
            frac = 0;
        else if (logscale)
            frac = v > 0 ? (log10(v) - lo) / (hi - lo) : 0;
        else
            frac = (v - lo) / (hi - lo);
        if (frac < 0)
            frac = 0;
        double bh = frac * h, bx = x + k * slot + (slot - bw) / 2;
        fprintf(f,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>%s "
                "%s: %.4g %s</title></rect>\n",
                bx, y + h - bh, bw, bh, mode_colors[mode], rep->cfgs[c].name,
                sentry_mode_names[mode], v, metric_info[j].unit);
        char b[32];
        fmt(b, sizeof b, v);
        svg_text(f, bx + bw / 2, y + h - bh - 2, 7, "middle", NULL, b);
    }
}

int report_svg(const report_t *rep, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    const double cw = 150, ph = 150, left = 60, top = 92, gap = 30;
    double W = left + cw * rep->ncfg + 20, H = top + 3 * ph + 2 * gap + 70;
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\">\n",
            W, H, W, H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    svg_text(f, 10, 20, 14, "start", "font-weight=\"bold\"",
             "gort sentry model: task goroutine modes vs the pure-pthreads sentry (medians)");
    svg_text(f, 10, 36, 9, "start", NULL, rep->machine);
    svg_text(f, 10, 48, 9, "start", NULL, rep->settings);
    /* Legend. */
    for (int k = 0; k < rep->nmodes; k++) {
        int mode = rep->modes[k];
        double lx = 10 + k * 110;
        fprintf(f, "<rect x=\"%.1f\" y=\"58\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", lx,
                mode_colors[mode]);
        svg_text(f, lx + 16, 68, 10, "start", NULL, sentry_mode_names[mode]);
    }
    double y1 = top, y2 = top + ph + gap, y3 = top + 2 * (ph + gap);
    /* Axis titles (rotated). */
    fprintf(f,
            "<text x=\"0\" y=\"0\" font-size=\"10\" text-anchor=\"middle\" "
            "transform=\"translate(16 %.1f) rotate(-90)\">throughput (calls/s, linear)</text>\n",
            y1 + ph / 2);
    fprintf(f,
            "<text x=\"0\" y=\"0\" font-size=\"10\" text-anchor=\"middle\" "
            "transform=\"translate(16 %.1f) rotate(-90)\">p99 latency per call (us, log)</text>\n",
            y2 + ph / 2);
    fprintf(f,
            "<text x=\"0\" y=\"0\" font-size=\"10\" text-anchor=\"middle\" "
            "transform=\"translate(16 %.1f) rotate(-90)\">worst call (us, log)</text>\n",
            y3 + ph / 2);
    for (int c = 0; c < rep->ncfg; c++) {
        double x = left + c * cw;
        char title[64];
        const config_t *cf = &rep->cfgs[c];
        if (cf->nbg)
            snprintf(title, sizeof title, "%s: %d thr + %d bg", cf->name, cf->nthreads, cf->nbg);
        else
            snprintf(title, sizeof title, "%s: %d thread%s", cf->name, cf->nthreads,
                     cf->nthreads == 1 ? "" : "s");
        svg_text(f, x + (cw - 10) / 2, y1 - 6, 10, "middle", "font-weight=\"bold\"", title);
        svg_panel(f, rep, c, MET_OPS, false, x, y1, cw - 10, ph);
        svg_panel(f, rep, c, MET_P99, true, x, y2, cw - 10, ph);
        svg_panel(f, rep, c, MET_MAX, true, x, y3, cw - 10, ph);
    }
    double ny = y3 + ph + 18;
    svg_text(f, 10, ny, 9, "start", NULL,
             "a: getpid-like calls answered at once; b: pairs ping-ponging through an emulated "
             "futex; c: pipe chain; dN: workload a with N threads; e: b + background CPU "
             "goroutines.");
    svg_text(f, 10, ny + 12, 9, "start", NULL,
             "raw: task keeps its P while the app runs; lazy: entersyscall; eager: "
             "entersyscallblock; locked: LockOSThread + lazy; dedicated: DedicateOSThread; "
             "pthreads: no user-space scheduler.");
    svg_text(f, 10, ny + 24, 9, "start", NULL,
             "Written by bench/sentry (sentry --svg). Latency: request written to reply seen, "
             "emulated waits included.");
    fprintf(f, "</svg>\n");
    return fclose(f) == 0 ? 0 : -errno;
}
