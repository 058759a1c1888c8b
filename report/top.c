/* The heaviest frames of a merged profile by self and inclusive time for a
 * set of counters (the console's CPU and latency views), and the `--format
 * top` text report with its summary lines. Collecting and merging the
 * profiles lives in select.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "report.h"
#include "report_int.h"

int cgprof_report_counter_mask(const char *name, unsigned *mask)
{
    if (name == NULL || mask == NULL)
        return CGPROF_EINVAL;
    if (strcasecmp(name, "cpu") == 0) {
        *mask = CGPROF_REPORT_MASK_CPU;
        return 0;
    }
    if (strcasecmp(name, "latency") == 0) {
        *mask = CGPROF_REPORT_MASK_LATENCY;
        return 0;
    }
    for (int c = 0; c < CGPROF_NCOUNTERS; c++) {
        const char *wire = cgprof_counter_name((enum cgprof_counter)c);
        if (wire != NULL && strcasecmp(name, wire) == 0) {
            *mask = CGPROF_REPORT_MASK(c);
            return 0;
        }
    }
    return CGPROF_EINVAL;
}

void cgprof_report_mask_describe(unsigned mask, char *out, size_t n)
{
    size_t len = 0;
    if (n == 0)
        return;
    out[0] = '\0';
    for (int c = 0; c < CGPROF_NCOUNTERS; c++) {
        if (!(mask & CGPROF_REPORT_MASK(c)))
            continue;
        const char *wire = cgprof_counter_name((enum cgprof_counter)c);
        int w = snprintf(out + len, n - len, "%s%s", len ? "+" : "",
                         wire ? wire : "?");
        if (w < 0 || (size_t)w >= n - len)
            return;
        len += (size_t)w;
    }
}

/* Defaults documented in config/config.h and DESIGN.md: CPU samples at
 * 100 Hz of thread CPU time, thread states once per second. They only
 * matter for profiles that carry no sampleWeights for a counter they use.
 * Tests: test/unit/report/test_top.c */
double cgprof_report_weight(const struct cgprof_profile *p, enum cgprof_counter c)
{
    double w = p->sample_weights[c];
    if (w > 0 && isfinite(w))
        return w;
    return c == CGPROF_COUNTER_RUNNABLE ? 100.0 : 1.0;
}

/* ---- per-frame aggregation --------------------------------------------- */

/* Open-addressing map from frame name to row index, sized to a power of
 * two at least twice the node count, so it never needs to grow. */
struct name_map {
    size_t *slots;  /* row index + 1; 0 = empty */
    size_t mask;
};

/* FNV-1a of a NUL-terminated name; shared with html.c. */
uint64_t cgprof__report_hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

/* Returns the row index for name, adding a zeroed row when new. */
static size_t row_for(struct name_map *m, struct cgprof_report_top *t, const char *name)
{
    size_t i = (size_t)cgprof__report_hash_str(name) & m->mask;
    while (m->slots[i] != 0) {
        size_t r = m->slots[i] - 1;
        if (t->rows[r].name == name || strcmp(t->rows[r].name, name) == 0)
            return r;
        i = (i + 1) & m->mask;
    }
    struct cgprof_report_row *row = &t->rows[t->nrows];
    memset(row, 0, sizeof(*row));
    row->name = name;
    m->slots[i] = ++t->nrows;
    return t->nrows - 1;
}

/* Counts the tree's nodes (root excluded) with an explicit stack, so the
 * tables below are sized by the tree itself and deep trees cannot overflow
 * the C stack. Returns 0 or CGPROF_ENOMEM. */
static int count_nodes(const struct cgprof_profile *p, size_t *count)
{
    size_t cap = 64, top = 0, n = 0;
    const struct cgprof_node **todo = cgprof_malloc(cap * sizeof(*todo));
    if (todo == NULL)
        return CGPROF_ENOMEM;
    if (p->root.first_child != NULL)
        todo[top++] = p->root.first_child;
    while (top > 0) {
        const struct cgprof_node *x = todo[--top];
        n++;
        if (top + 2 > cap) {
            const struct cgprof_node **grown = cgprof_realloc(todo, 2 * cap * sizeof(*todo));
            if (grown == NULL) {
                cgprof_free(todo);
                return CGPROF_ENOMEM;
            }
            todo = grown;
            cap *= 2;
        }
        if (x->next_sibling != NULL)
            todo[top++] = x->next_sibling;
        if (x->first_child != NULL)
            todo[top++] = x->first_child;
    }
    cgprof_free(todo);
    *count = n;
    return 0;
}

/* One level of the walk: the node, its row, and what its subtree holds. */
struct walk_frame {
    const struct cgprof_node *node;
    size_t row;
    uint64_t count;
    double secs;
};

/* Walks the tree without recursion (stacks may be thousands deep). A
 * frame's inclusive time is added when its outermost occurrence on the
 * current path is left, so a recursive function counts each sample once;
 * `active` counts each row's occurrences on the path.
 * Tests: test/unit/report/test_top.c */
int cgprof_report_top_compute(const struct cgprof_profile *p, unsigned mask,
                              struct cgprof_report_top *out)
{
    struct name_map map = { 0 };
    struct walk_frame *stack = NULL;
    unsigned *active = NULL;
    size_t depth_cap = 64, depth = 0;
    double per[CGPROF_NCOUNTERS];
    int rc = CGPROF_ENOMEM;

    memset(out, 0, sizeof(*out));
    mask &= CGPROF_REPORT_MASK_ALL;
    if (mask == 0)
        return CGPROF_EINVAL;
    for (int c = 0; c < CGPROF_NCOUNTERS; c++)
        per[c] = (mask & CGPROF_REPORT_MASK(c))
                     ? 1.0 / cgprof_report_weight(p, (enum cgprof_counter)c) : 0.0;

    size_t nodes = 0, slots = 16;
    if (count_nodes(p, &nodes) != 0)
        return CGPROF_ENOMEM;
    nodes++;
    while (slots < 2 * nodes)
        slots *= 2;
    map.mask = slots - 1;
    map.slots = cgprof_calloc(slots, sizeof(*map.slots));
    out->rows = cgprof_calloc(nodes, sizeof(*out->rows));
    active = cgprof_calloc(nodes, sizeof(*active));
    stack = cgprof_malloc(depth_cap * sizeof(*stack));
    if (!map.slots || !out->rows || !active || !stack)
        goto fail;

    /* The root's own counts are samples with an empty stack: part of the
     * 100 %, attributed to no frame. */
    for (int c = 0; c < CGPROF_NCOUNTERS; c++) {
        if (!(mask & CGPROF_REPORT_MASK(c)))
            continue;
        out->total_count += p->root.counts[c];
        out->total_s += (double)p->root.counts[c] * per[c];
    }

    const struct cgprof_node *n = p->root.first_child;
    while (n != NULL) {
        /* Enter n. */
        if (depth == depth_cap) {
            struct walk_frame *grown = cgprof_realloc(stack, 2 * depth_cap * sizeof(*stack));
            if (!grown)
                goto fail;
            stack = grown;
            depth_cap *= 2;
        }
        struct walk_frame *f = &stack[depth++];
        f->node = n;
        f->row = row_for(&map, out, n->name ? n->name : "");
        f->count = 0;
        f->secs = 0;
        for (int c = 0; c < CGPROF_NCOUNTERS; c++) {
            if (!(mask & CGPROF_REPORT_MASK(c)))
                continue;
            f->count += n->counts[c];
            f->secs += (double)n->counts[c] * per[c];
        }
        struct cgprof_report_row *row = &out->rows[f->row];
        row->self_count += f->count;
        row->self_s += f->secs;
        out->total_count += f->count;
        out->total_s += f->secs;
        active[f->row]++;
        if (n->first_child != NULL) {
            n = n->first_child;
            continue;
        }
        /* Leave finished frames until one has a next sibling. */
        for (;;) {
            struct walk_frame *done = &stack[--depth];
            if (--active[done->row] == 0) {
                out->rows[done->row].total_count += done->count;
                out->rows[done->row].total_s += done->secs;
            }
            if (depth > 0) {
                stack[depth - 1].count += done->count;
                stack[depth - 1].secs += done->secs;
            }
            if (done->node->next_sibling != NULL) {
                n = done->node->next_sibling;
                break;
            }
            if (depth == 0) {
                n = NULL;
                break;
            }
        }
    }
    rc = 0;
    goto out;
fail:
    cgprof_free(out->rows);
    memset(out, 0, sizeof(*out));
out:
    cgprof_free(map.slots);
    cgprof_free(active);
    cgprof_free(stack);
    return rc;
}

void cgprof_report_top_cleanup(struct cgprof_report_top *t)
{
    cgprof_free(t->rows);
    memset(t, 0, sizeof(*t));
}

static int cmp_double_desc(double a, double b)
{
    return a > b ? -1 : a < b ? 1 : 0;
}

static int cmp_self(const void *a, const void *b)
{
    const struct cgprof_report_row *x = a, *y = b;
    int c = cmp_double_desc(x->self_s, y->self_s);
    if (c == 0)
        c = cmp_double_desc(x->total_s, y->total_s);
    return c != 0 ? c : strcmp(x->name, y->name);
}

static int cmp_total(const void *a, const void *b)
{
    const struct cgprof_report_row *x = a, *y = b;
    int c = cmp_double_desc(x->total_s, y->total_s);
    if (c == 0)
        c = cmp_double_desc(x->self_s, y->self_s);
    return c != 0 ? c : strcmp(x->name, y->name);
}

void cgprof_report_top_sort(struct cgprof_report_top *t, bool by_total)
{
    if (t->nrows > 1)
        qsort(t->rows, t->nrows, sizeof(*t->rows), by_total ? cmp_total : cmp_self);
}

static double pct(double part, double whole)
{
    return whole > 0 ? 100.0 * part / whole : 0.0;
}

/* Tests: test/unit/report/test_top.c */
int cgprof_report_top_table(const struct cgprof_report_top *t, size_t n,
                            const char *title, struct cgprof_buf *out)
{
    int rc = cgprof_buf_printf(out, "%s\n%7s %9s %7s %9s  %s\n", title,
                               "self%", "self s", "total%", "total s", "frame");
    for (size_t i = 0; rc == 0 && i < n && i < t->nrows; i++) {
        const struct cgprof_report_row *r = &t->rows[i];
        if (r->self_count == 0 && r->total_count == 0)
            break; /* frames seen only under other counters */
        rc = cgprof_buf_printf(out, "%6.1f%% %9.2f %6.1f%% %9.2f  %s\n",
                               pct(r->self_s, t->total_s), r->self_s,
                               pct(r->total_s, t->total_s), r->total_s, r->name);
    }
    return rc;
}

/* ---- the whole `top` report -------------------------------------------- */

static int summary(const struct cgprof_report_selection *sel, unsigned mask,
                   const struct cgprof_report_top *t, struct cgprof_buf *out)
{
    const struct cgprof_profile *p = &sel->merged;
    char from[32], to[32], desc[96];
    uint64_t all = 0;
    for (int c = 0; c < CGPROF_NCOUNTERS; c++)
        all += cgprof_profile_total(p, (enum cgprof_counter)c);
    cgprof_report_format_time(sel->start_ms, from, sizeof(from));
    cgprof_report_format_time(sel->end_ms, to, sizeof(to));
    cgprof_report_mask_describe(mask, desc, sizeof(desc));
    const char *view = mask == CGPROF_REPORT_MASK_CPU ? "cpu"
                       : mask == CGPROF_REPORT_MASK_LATENCY ? "latency" : NULL;

    double span_s = sel->end_ms > sel->start_ms
                        ? (double)(sel->end_ms - sel->start_ms) / 1000.0 : 0.0;
    int rc = span_s < 120 ? cgprof_buf_printf(out, "time range:    %s .. %s (%.1f s)\n",
                                              from, to, span_s)
             : span_s < 7200 ? cgprof_buf_printf(out, "time range:    %s .. %s (%.1f min)\n",
                                                 from, to, span_s / 60)
             : cgprof_buf_printf(out, "time range:    %s .. %s (%.1f h)\n", from, to,
                                 span_s / 3600);
    if (rc == 0)
        rc = cgprof_buf_printf(out, "profiles:      %zu%s%s\n", sel->nprofiles,
                               sel->groups[0] ? " from " : "", sel->groups);
    if (rc == 0)
        rc = cgprof_buf_printf(out, "samples:       %llu total, %llu in this view\n",
                               (unsigned long long)all,
                               (unsigned long long)t->total_count);
    if (rc == 0)
        rc = cgprof_buf_printf(out, "CPU time:      %.2f s (process), %.2f s sampled on CPU\n",
                               sel->cpu_time_s,
                               (double)cgprof_profile_total(p, CGPROF_COUNTER_RUNNABLE) /
                                   cgprof_report_weight(p, CGPROF_COUNTER_RUNNABLE));
    if (rc == 0)
        rc = cgprof_buf_printf(out, "duration:      %.1f s profiled\n",
                               (double)sel->duration_ms / 1000.0);
    if (rc == 0)
        rc = cgprof_buf_printf(out, "threads:       %.1f average, %.0f max\n",
                               sel->avg_threads, sel->max_threads);
    if (rc == 0)
        rc = cgprof_buf_printf(out, "dropped:       %llu samples\n",
                               (unsigned long long)sel->samples_dropped);
    if (rc == 0)
        rc = view ? cgprof_buf_printf(out, "view:          %s (%s), %.2f s of thread time\n\n",
                                      view, desc, t->total_s)
                  : cgprof_buf_printf(out, "view:          %s, %.2f s of thread time\n\n",
                                      desc, t->total_s);
    return rc;
}

/* Tests: test/unit/report/test_top.c */
int cgprof_report_top_text(const struct cgprof_report_selection *sel,
                           unsigned mask, size_t n, struct cgprof_buf *out)
{
    struct cgprof_report_top t;
    char title[64];
    int rc = cgprof_report_top_compute(&sel->merged, mask, &t);
    if (rc != 0)
        return rc;
    rc = summary(sel, mask, &t, out);
    if (rc == 0 && t.total_count == 0) {
        rc = cgprof_buf_appends(out, "no samples of these counters in the selected "
                                     "profiles (try --counter latency or another state)\n");
        goto done;
    }
    if (rc == 0) {
        cgprof_report_top_sort(&t, false);
        snprintf(title, sizeof(title), "Top %zu frames by self time", n);
        rc = cgprof_report_top_table(&t, n, title, out);
    }
    if (rc == 0) {
        cgprof_report_top_sort(&t, true);
        snprintf(title, sizeof(title), "\nTop %zu frames by total time", n);
        rc = cgprof_report_top_table(&t, n, title, out);
    }
done:
    cgprof_report_top_cleanup(&t);
    return rc;
}
