/* The self-contained HTML report (`cgprof report --format html`): the
 * merged profile (and an optional baseline for the compare view) as one
 * compact JSON blob — a sorted string table plus per-profile columns of
 * parent index, name index and per-counter self counts, nodes in pre-order
 * with children sorted by name — spliced into report/html_template.html,
 * whose hand-written JavaScript draws every view (overview, hotspots,
 * inspect, compare, summary). The template is linked into the binary with
 * .incbin below. Choosing and merging profiles lives in select.c,
 * recommendations in recommend.c. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "report_int.h"

/* The template, embedded at build time (the Makefile makes html.o depend
 * on the file). The assembler resolves the path from the directory make
 * runs in, the repository root. */
__asm__(".section .rodata\n"
        ".global cgprof__report_html_template\n"
        ".hidden cgprof__report_html_template\n"
        ".global cgprof__report_html_template_end\n"
        ".hidden cgprof__report_html_template_end\n"
        "cgprof__report_html_template:\n"
        ".incbin \"report/html_template.html\"\n"
        "cgprof__report_html_template_end:\n"
        ".byte 0\n"
        ".previous\n");
extern const char cgprof__report_html_template[];
extern const char cgprof__report_html_template_end[];

#define MARK_TITLE "@@CGPROF_TITLE@@"
#define MARK_DATA "@@CGPROF_DATA@@"
#define MAX_RECOMMENDATIONS 32

/* ---- JSON text --------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when the
 * bytes there are not one (overlong, surrogate, truncated, > U+10FFFF). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

/* Appends s as a JSON string that is also safe inside an HTML <script>
 * element: '<', '>' and '&' are escaped (no "</script>" or "<!--" can
 * appear), control characters are \u-escaped and bytes that are not UTF-8
 * become U+FFFD, so any frame name a symbolizer produced decodes.
 * Tests: test/unit/report/test_html.c */
static int json_str(struct cgprof_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p), run = 0;
    int rc = cgprof_buf_append(b, "\"", 1);
    for (size_t i = 0; rc == 0 && i < n;) {
        unsigned c = p[i];
        size_t len = utf8_len(p + i, n - i);
        const char *esc = NULL;
        char hex[8];
        if (len == 0)
            esc = "\\ufffd";
        else if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c < 0x20 || c == '<' || c == '>' || c == '&' || c == 0x7f) {
            snprintf(hex, sizeof(hex), "\\u%04x", c);
            esc = hex;
        }
        if (esc == NULL) {
            run += len;
            i += len;
            continue;
        }
        if (run > 0)
            rc = cgprof_buf_append(b, p + i - run, run);
        run = 0;
        if (rc == 0)
            rc = cgprof_buf_appends(b, esc);
        i += len ? len : 1;
    }
    if (rc == 0 && run > 0)
        rc = cgprof_buf_append(b, p + n - run, run);
    if (rc == 0)
        rc = cgprof_buf_append(b, "\"", 1);
    return rc;
}

static int json_u64(struct cgprof_buf *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    return cgprof_buf_append(b, tmp + i, sizeof(tmp) - i);
}

static int json_i64(struct cgprof_buf *b, int64_t v)
{
    if (v < 0) {
        int rc = cgprof_buf_append(b, "-", 1);
        return rc ? rc : json_u64(b, (uint64_t)(-(v + 1)) + 1u);
    }
    return json_u64(b, (uint64_t)v);
}

/* Finite doubles with 17 significant digits (round-trip exact); anything
 * else is null, which JSON has and NaN is not. */
static int json_num(struct cgprof_buf *b, double v)
{
    if (!isfinite(v))
        return cgprof_buf_appends(b, "null");
    return cgprof_buf_printf(b, "%.17g", v);
}

/* "key": as the start of an object member, with a leading comma unless
 * first. */
static int json_key(struct cgprof_buf *b, const char *key, int first)
{
    int rc = first ? 0 : cgprof_buf_append(b, ",", 1);
    if (rc == 0)
        rc = json_str(b, key);
    if (rc == 0)
        rc = cgprof_buf_append(b, ":", 1);
    return rc;
}

/* ---- the string table -------------------------------------------------- */

/* Distinct frame names of every profile in the report, sorted by strcmp;
 * a name's index is its rank, so sorting by index sorts by name. */
struct names {
    const char **sorted;  /* distinct names */
    size_t n;
    const char **slots;   /* open addressing over content; NULL = empty */
    size_t *rank;         /* rank of slots[i] */
    size_t mask;
};


static size_t slot_of(const struct names *t, const char *s)
{
    size_t i = (size_t)cgprof__report_hash_str(s) & t->mask;
    while (t->slots[i] != NULL && t->slots[i] != s && strcmp(t->slots[i], s) != 0)
        i = (i + 1) & t->mask;
    return i;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static size_t rank_of(const struct names *t, const char *s)
{
    return t->rank[slot_of(t, s)];
}

/* Walks p's nodes below the root in pre-order (any child order); calls
 * fn(node, arg) for each. Returns 0 or fn's first failure. */
static int each_node(const struct cgprof_profile *p,
                     int (*fn)(const struct cgprof_node *, void *), void *arg)
{
    const struct cgprof_node *n = p->root.first_child;
    while (n != NULL) {
        int rc = fn(n, arg);
        if (rc != 0)
            return rc;
        if (n->first_child != NULL) {
            n = n->first_child;
            continue;
        }
        while (n != NULL && n->next_sibling == NULL)
            n = n->parent == &p->root ? NULL : n->parent;
        if (n != NULL)
            n = n->next_sibling;
    }
    return 0;
}

static int add_name(const struct cgprof_node *node, void *arg)
{
    struct names *t = arg;
    const char *s = node->name ? node->name : "";
    size_t i = slot_of(t, s);
    if (t->slots[i] == NULL) {
        t->slots[i] = s;
        t->sorted[t->n++] = s;
    }
    return 0;
}

/* Builds the table over profiles a and b (b may be NULL). Returns 0 or
 * CGPROF_ENOMEM. */
static int names_build(struct names *t, const struct cgprof_profile *a,
                       const struct cgprof_profile *b)
{
    size_t nodes = a->node_count + (b ? b->node_count : 0) + 1, slots = 16;
    memset(t, 0, sizeof(*t));
    while (slots < 2 * nodes)
        slots *= 2;
    t->mask = slots - 1;
    t->slots = cgprof_calloc(slots, sizeof(*t->slots));
    t->rank = cgprof_calloc(slots, sizeof(*t->rank));
    t->sorted = cgprof_calloc(nodes, sizeof(*t->sorted));
    if (!t->slots || !t->rank || !t->sorted)
        return CGPROF_ENOMEM;
    each_node(a, add_name, t);
    if (b != NULL)
        each_node(b, add_name, t);
    if (t->n > 1)
        qsort(t->sorted, t->n, sizeof(*t->sorted), cmp_name);
    for (size_t r = 0; r < t->n; r++)
        t->rank[slot_of(t, t->sorted[r])] = r;
    return 0;
}

static void names_cleanup(struct names *t)
{
    cgprof_free(t->sorted);
    cgprof_free(t->slots);
    cgprof_free(t->rank);
    memset(t, 0, sizeof(*t));
}

/* ---- one profile's columns --------------------------------------------- */

/* The tree flattened in pre-order, children sorted by name: index 0 is the
 * root (name -1, its counts are samples with an empty stack). */
struct columns {
    size_t n;
    int64_t *parent;
    int64_t *name;
    const struct cgprof_node **node;
};

struct pending {
    const struct cgprof_node *node;
    int64_t parent;
};

struct child_ref {
    size_t rank;
    const struct cgprof_node *node;
};

static int cmp_child(const void *a, const void *b)
{
    const struct child_ref *x = a, *y = b;
    return x->rank < y->rank ? -1 : x->rank > y->rank;
}

/* Flattens p; returns 0 or CGPROF_ENOMEM. The explicit stack keeps deep
 * trees off the C stack. */
static int columns_build(struct columns *c, const struct cgprof_profile *p,
                         const struct names *t)
{
    size_t cap = p->node_count + 1, top = 0, kids_cap = 16;
    struct pending *todo = cgprof_malloc(cap * sizeof(*todo));
    struct child_ref *kids = cgprof_malloc(kids_cap * sizeof(*kids));
    int rc = CGPROF_ENOMEM;
    memset(c, 0, sizeof(*c));
    c->parent = cgprof_malloc(cap * sizeof(*c->parent));
    c->name = cgprof_malloc(cap * sizeof(*c->name));
    c->node = cgprof_malloc(cap * sizeof(*c->node));
    if (!todo || !kids || !c->parent || !c->name || !c->node)
        goto done;
    todo[top++] = (struct pending){ &p->root, -1 };
    while (top > 0) {
        struct pending x = todo[--top];
        if (c->n == cap) { /* node_count was wrong: never write past it */
            rc = CGPROF_EINVAL;
            goto done;
        }
        size_t me = c->n++;
        c->parent[me] = x.parent;
        c->name[me] = x.node == &p->root ? -1
                      : (int64_t)rank_of(t, x.node->name ? x.node->name : "");
        c->node[me] = x.node;
        size_t nk = 0;
        for (const struct cgprof_node *k = x.node->first_child; k; k = k->next_sibling) {
            if (nk == kids_cap) {
                struct child_ref *grown = cgprof_realloc(kids, 2 * kids_cap * sizeof(*kids));
                if (grown == NULL)
                    goto done;
                kids = grown;
                kids_cap *= 2;
            }
            kids[nk].rank = rank_of(t, k->name ? k->name : "");
            kids[nk++].node = k;
        }
        if (nk > 1)
            qsort(kids, nk, sizeof(*kids), cmp_child);
        if (top + nk > cap) {
            rc = CGPROF_EINVAL;
            goto done;
        }
        /* Pushed last-first so the smallest name is visited next. */
        for (size_t i = nk; i-- > 0;)
            todo[top++] = (struct pending){ kids[i].node, (int64_t)me };
    }
    rc = 0;
done:
    cgprof_free(todo);
    cgprof_free(kids);
    return rc;
}

static void columns_cleanup(struct columns *c)
{
    cgprof_free(c->parent);
    cgprof_free(c->name);
    cgprof_free(c->node);
    memset(c, 0, sizeof(*c));
}

static int json_i64_array(struct cgprof_buf *b, const int64_t *v, size_t n)
{
    int rc = cgprof_buf_append(b, "[", 1);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (i > 0)
            rc = cgprof_buf_append(b, ",", 1);
        if (rc == 0)
            rc = json_i64(b, v[i]);
    }
    return rc ? rc : cgprof_buf_append(b, "]", 1);
}

/* vCPUs of the host from the fleet info JSON, or 0 when not known. */
static double fleet_vcpus(const struct cgprof_profile *p)
{
    double v = 0;
    if (p->fleet_info_json == NULL)
        return 0;
    json_t *j = json_loads(p->fleet_info_json, 0, NULL);
    if (j != NULL && json_is_object(j)) {
        json_t *x = json_object_get(j, "vCPUs");
        if (json_is_number(x))
            v = json_number_value(x);
    }
    json_decref(j);
    return v > 0 && isfinite(v) ? v : 0;
}

/* Seconds over which the selection's CPU use is projected to a year: the
 * shorter of its wall span and its summed active durations, so parallel
 * processes add up (span) and gaps between runs do not dilute (sum). */
static double window_s(const struct cgprof_report_selection *sel)
{
    double span = sel->end_ms > sel->start_ms ? (double)(sel->end_ms - sel->start_ms) : 0;
    double sum = (double)sel->duration_ms;
    double w = span > 0 && (sum <= 0 || span < sum) ? span : sum;
    return w / 1000.0;
}

/* Writes one profile object: metadata for the summary, then its columns. */
static int json_profile(struct cgprof_buf *b, const struct cgprof_report_selection *sel,
                        const char *label, const struct names *t)
{
    const struct cgprof_profile *p = &sel->merged;
    struct columns c;
    int rc = columns_build(&c, p, t);
    char from[32], to[32];
    cgprof_report_format_time(sel->start_ms, from, sizeof(from));
    cgprof_report_format_time(sel->end_ms, to, sizeof(to));
    if (rc == 0)
        rc = cgprof_buf_append(b, "{", 1);
#define KEY(k, first) if (rc == 0) rc = json_key(b, k, first)
#define NUM(k, v) KEY(k, 0); if (rc == 0) rc = json_num(b, (double)(v))
#define U64(k, v) KEY(k, 0); if (rc == 0) rc = json_u64(b, (uint64_t)(v))
#define STR(k, v) KEY(k, 0); if (rc == 0) rc = json_str(b, v)
    KEY("label", 1);
    if (rc == 0)
        rc = json_str(b, label ? label : "");
    U64("start_ms", sel->start_ms);
    U64("end_ms", sel->end_ms);
    STR("start", from);
    STR("end", to);
    U64("nprofiles", sel->nprofiles);
    U64("nskipped", sel->nskipped);
    STR("groups", sel->groups);
    U64("duration_ms", sel->duration_ms);
    NUM("window_s", window_s(sel));
    NUM("cpu_time_s", sel->cpu_time_s);
    U64("agent_cpu_ms", p->agent_cpu_ms);
    U64("agent_memory_mb", p->agent_memory_mb);
    NUM("threads_avg", sel->avg_threads);
    NUM("threads_max", sel->max_threads);
    U64("ticks", sel->num_times_sampled);
    U64("dropped", sel->samples_dropped);
    NUM("vcpus", fleet_vcpus(p));
    STR("runtime", p->runtime_version);
    KEY("weights", 0);
    for (int k = 0; rc == 0 && k < CGPROF_NCOUNTERS; k++) {
        rc = cgprof_buf_append(b, k ? "," : "[", 1);
        if (rc == 0)
            rc = json_num(b, cgprof_report_weight(p, (enum cgprof_counter)k));
    }
    if (rc == 0)
        rc = cgprof_buf_append(b, "]", 1);
    U64("nodes", c.n);
    KEY("parent", 0);
    if (rc == 0)
        rc = json_i64_array(b, c.parent, c.n);
    KEY("name", 0);
    if (rc == 0)
        rc = json_i64_array(b, c.name, c.n);
    /* One column per counter that has any sample; absent means all zero. */
    KEY("counts", 0);
    if (rc == 0)
        rc = cgprof_buf_append(b, "{", 1);
    int first = 1;
    for (int k = 0; rc == 0 && k < CGPROF_NCOUNTERS; k++) {
        size_t i;
        for (i = 0; i < c.n && c.node[i]->counts[k] == 0; i++)
            ;
        if (i == c.n)
            continue;
        KEY(cgprof_counter_name((enum cgprof_counter)k), first);
        first = 0;
        for (i = 0; rc == 0 && i < c.n; i++) {
            rc = cgprof_buf_append(b, i ? "," : "[", 1);
            if (rc == 0)
                rc = json_u64(b, c.node[i]->counts[k]);
        }
        if (rc == 0)
            rc = cgprof_buf_append(b, "]", 1);
    }
    if (rc == 0)
        rc = cgprof_buf_appends(b, "}}");
#undef KEY
#undef NUM
#undef U64
#undef STR
    columns_cleanup(&c);
    return rc;
}

/* The recommendations of recommend.c for the main selection, so the
 * Summary view lists them with evidence, cost estimate and fix. */
static int json_recommendations(struct cgprof_buf *b, const struct cgprof_profile *p,
                                double price)
{
    struct cgprof_recommendation *r = cgprof_calloc(MAX_RECOMMENDATIONS, sizeof(*r));
    size_t n = 0;
    int rc;
    if (r == NULL)
        return CGPROF_ENOMEM;
    rc = cgprof_report_recommend(p, price, r, MAX_RECOMMENDATIONS, &n);
    if (rc == CGPROF_ENOMEM) {
        cgprof_free(r);
        return rc;
    }
    if (rc != 0) {
        /* A report without recommendations beats no report. */
        cgprof_warn("report: recommendations unavailable: %s", cgprof_strerror(rc));
        n = 0;
    }
    rc = cgprof_buf_append(b, "[", 1);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (i > 0)
            rc = cgprof_buf_append(b, ",", 1);
        if (rc == 0)
            rc = cgprof_buf_append(b, "{", 1);
        if (rc == 0)
            rc = json_key(b, "id", 1);
        if (rc == 0)
            rc = json_str(b, r[i].id);
        if (rc == 0)
            rc = json_key(b, "title", 0);
        if (rc == 0)
            rc = json_str(b, r[i].title);
        if (rc == 0)
            rc = json_key(b, "share", 0);
        if (rc == 0)
            rc = json_num(b, r[i].share);
        if (rc == 0)
            rc = json_key(b, "seconds", 0);
        if (rc == 0)
            rc = json_num(b, r[i].seconds);
        if (rc == 0)
            rc = json_key(b, "yearly_cost_usd", 0);
        if (rc == 0)
            rc = json_num(b, r[i].yearly_cost_usd);
        if (rc == 0)
            rc = json_key(b, "evidence", 0);
        if (rc == 0)
            rc = json_str(b, r[i].evidence);
        if (rc == 0)
            rc = json_key(b, "fix", 0);
        if (rc == 0)
            rc = json_str(b, r[i].fix);
        if (rc == 0)
            rc = cgprof_buf_append(b, "}", 1);
    }
    if (rc == 0)
        rc = cgprof_buf_append(b, "]", 1);
    cgprof_free(r);
    return rc;
}

static int cmp_site_avg(const void *a, const void *b)
{
    const struct cgprof_heap_site *x = *(const struct cgprof_heap_site *const *)a;
    const struct cgprof_heap_site *y = *(const struct cgprof_heap_site *const *)b;
    double u = cgprof_heap_site_avg_bytes(x), v = cgprof_heap_site_avg_bytes(y);
    return u > v ? -1 : u < v;
}

/* The heap summary of the merged profile, or null: the data points, the
 * average and peak used space, and the sites heaviest first (frames root
 * first, averages over the points where each was recorded, incomplete as
 * the console marks it). Tests: test/unit/report/test_html.c */
static int json_heap(struct cgprof_buf *b, const struct cgprof_profile *p)
{
    const struct cgprof_heap_summary *h = &p->heap;
    if (!h->present)
        return cgprof_buf_appends(b, "null");
    double used = 0, rss = 0;
    uint64_t cap = 0;
    for (size_t i = 0; i < h->npoints; i++) {
        used += (double)h->points[i].used;
        rss += (double)h->points[i].rss;
        cap = h->points[i].capacity ? h->points[i].capacity : cap;
    }
    if (h->npoints) {
        used /= (double)h->npoints;
        rss /= (double)h->npoints;
    }
    const struct cgprof_heap_site **order = cgprof_calloc(h->nsites + 1, sizeof(*order));
    if (!order)
        return CGPROF_ENOMEM;
    for (size_t i = 0; i < h->nsites; i++)
        order[i] = &h->sites[i];
    if (h->nsites > 1)
        qsort(order, h->nsites, sizeof(*order), cmp_site_avg);
    int rc = cgprof_buf_appends(b, "{\"allocator\":");
    if (rc == 0)
        rc = json_str(b, h->allocator);
    if (rc == 0)
        rc = cgprof_buf_printf(b, ",\"tracked\":%s,\"incomplete\":%s,\"interval_bytes\":",
                               h->tracked ? "true" : "false", h->incomplete ? "true" : "false");
    if (rc == 0)
        rc = json_u64(b, h->interval_bytes);
    if (rc == 0)
        rc = cgprof_buf_printf(b, ",\"threshold_permille\":%u,\"snapshots\":", h->threshold_permille);
    if (rc == 0)
        rc = json_u64(b, h->snapshots);
    if (rc == 0)
        rc = json_key(b, "samples", 0);
    if (rc == 0)
        rc = json_u64(b, h->samples);
    if (rc == 0)
        rc = json_key(b, "lost", 0);
    if (rc == 0)
        rc = json_u64(b, h->lost);
    if (rc == 0)
        rc = json_key(b, "capacity", 0);
    if (rc == 0)
        rc = json_u64(b, cap);
    if (rc == 0)
        rc = json_key(b, "avg_used", 0);
    if (rc == 0)
        rc = json_num(b, used);
    if (rc == 0)
        rc = json_key(b, "peak_used", 0);
    if (rc == 0)
        rc = json_u64(b, h->peak_used);
    if (rc == 0)
        rc = json_key(b, "avg_rss", 0);
    if (rc == 0)
        rc = json_num(b, rss);
    if (rc == 0)
        rc = json_key(b, "peak_rss", 0);
    if (rc == 0)
        rc = json_u64(b, h->peak_rss);
    if (rc == 0)
        rc = cgprof_buf_appends(b, ",\"series\":[");
    for (size_t i = 0; rc == 0 && i < h->npoints; i++) {
        const struct cgprof_heap_point *pt = &h->points[i];
        rc = cgprof_buf_printf(b, "%s[%llu,%llu,%llu,%llu,%llu]", i ? "," : "",
                               (unsigned long long)pt->time_ms, (unsigned long long)pt->capacity,
                               (unsigned long long)pt->used, (unsigned long long)pt->rss,
                               (unsigned long long)pt->sampled);
    }
    if (rc == 0)
        rc = cgprof_buf_appends(b, "],\"sites\":[");
    for (size_t i = 0; rc == 0 && i < h->nsites; i++) {
        const struct cgprof_heap_site *st = order[i];
        rc = cgprof_buf_appends(b, i ? ",{\"frames\":[" : "{\"frames\":[");
        for (size_t k = 0; rc == 0 && k < st->nframes; k++) {
            if (k)
                rc = cgprof_buf_append(b, ",", 1);
            if (rc == 0)
                rc = json_str(b, st->frames[k]);
        }
        if (rc == 0)
            rc = cgprof_buf_appends(b, "],\"avg_bytes\":");
        if (rc == 0)
            rc = json_num(b, cgprof_heap_site_avg_bytes(st));
        if (rc == 0)
            rc = json_key(b, "avg_objects", 0);
        if (rc == 0)
            rc = json_num(b, cgprof_heap_site_avg_objects(st));
        if (rc == 0)
            rc = json_key(b, "peak_bytes", 0);
        if (rc == 0)
            rc = json_num(b, st->peak_bytes);
        if (rc == 0)
            rc = json_key(b, "points", 0);
        if (rc == 0)
            rc = json_u64(b, st->points);
        if (rc == 0)
            rc = cgprof_buf_printf(b, ",\"incomplete\":%s}",
                                   cgprof_heap_site_incomplete(h, st) ? "true" : "false");
    }
    if (rc == 0)
        rc = cgprof_buf_appends(b, "]}");
    cgprof_free(order);
    return rc;
}

/* Tests: test/unit/report/test_html.c */
int cgprof_report_html_data(const struct cgprof_report_selection *sel,
                            const struct cgprof_report_html_opts *o,
                            struct cgprof_buf *out)
{
    const struct cgprof_report_selection *base = o ? o->baseline : NULL;
    double price = o && o->price_per_vcpu_hour > 0 && isfinite(o->price_per_vcpu_hour)
                       ? o->price_per_vcpu_hour : CGPROF_REPORT_DEFAULT_VCPU_HOUR_USD;
    unsigned mask = o && (o->mask & CGPROF_REPORT_MASK_ALL) ? o->mask & CGPROF_REPORT_MASK_ALL
                                                            : CGPROF_REPORT_MASK_CPU;
    struct names t;
    size_t len0 = out->len;
    int rc;

    if (sel == NULL)
        return CGPROF_EINVAL;
    rc = names_build(&t, &sel->merged, base ? &base->merged : NULL);
    if (rc == 0)
        rc = cgprof_buf_appends(out, "{\"format\":\"cgprof-report\",\"version\":1");
    if (rc == 0)
        rc = json_key(out, "generated_ms", 0);
    if (rc == 0)
        rc = json_u64(out, cgprof_epoch_ms());
    if (rc == 0)
        rc = json_key(out, "counters", 0);
    for (int k = 0; rc == 0 && k < CGPROF_NCOUNTERS; k++) {
        rc = cgprof_buf_append(out, k ? "," : "[", 1);
        if (rc == 0)
            rc = json_str(out, cgprof_counter_name((enum cgprof_counter)k));
    }
    if (rc == 0)
        rc = cgprof_buf_append(out, "]", 1);
    if (rc == 0)
        rc = json_key(out, "mask", 0);
    if (rc == 0)
        rc = json_u64(out, mask);
    if (rc == 0)
        rc = json_key(out, "price_per_vcpu_hour", 0);
    if (rc == 0)
        rc = json_num(out, price);
    if (rc == 0)
        rc = json_key(out, "strings", 0);
    for (size_t i = 0; rc == 0 && i < t.n; i++) {
        rc = cgprof_buf_append(out, i ? "," : "[", 1);
        if (rc == 0)
            rc = json_str(out, t.sorted[i]);
    }
    if (rc == 0)
        rc = cgprof_buf_appends(out, t.n ? "]" : "[]");
    if (rc == 0)
        rc = json_key(out, "profiles", 0);
    if (rc == 0)
        rc = cgprof_buf_append(out, "[", 1);
    if (rc == 0)
        rc = json_profile(out, sel, o && o->label ? o->label : "", &t);
    if (rc == 0 && base != NULL) {
        rc = cgprof_buf_append(out, ",", 1);
        if (rc == 0)
            rc = json_profile(out, base, o->baseline_label ? o->baseline_label : "", &t);
    }
    if (rc == 0)
        rc = cgprof_buf_append(out, "]", 1);
    if (rc == 0)
        rc = json_key(out, "recommendations", 0);
    if (rc == 0)
        rc = json_recommendations(out, &sel->merged, price);
    /* Heap summary (heapSummaryEnabled:true), else null. */
    if (rc == 0)
        rc = json_key(out, "heap", 0);
    if (rc == 0)
        rc = json_heap(out, &sel->merged);
    if (rc == 0)
        rc = cgprof_buf_append(out, "}", 1);
    names_cleanup(&t);
    if (rc != 0) {
        out->len = len0;
        if (out->data)
            out->data[len0] = '\0';
    }
    return rc;
}

/* Appends s with HTML's special characters escaped. */
static int html_text(struct cgprof_buf *b, const char *s)
{
    int rc = 0;
    for (; rc == 0 && *s; s++) {
        switch (*s) {
        case '<': rc = cgprof_buf_appends(b, "&lt;"); break;
        case '>': rc = cgprof_buf_appends(b, "&gt;"); break;
        case '&': rc = cgprof_buf_appends(b, "&amp;"); break;
        case '"': rc = cgprof_buf_appends(b, "&quot;"); break;
        default: rc = cgprof_buf_append(b, s, 1); break;
        }
    }
    return rc;
}

/* Tests: test/unit/report/test_html.c */
int cgprof_report_html(const struct cgprof_report_selection *sel,
                       const struct cgprof_report_html_opts *o, struct cgprof_buf *out)
{
    const char *tpl = cgprof__report_html_template;
    size_t tlen = (size_t)(cgprof__report_html_template_end - cgprof__report_html_template);
    size_t len0 = out->len;
    char title[512], from[32], to[32];
    int rc = 0;

    if (sel == NULL)
        return CGPROF_EINVAL;
    cgprof_report_format_time(sel->start_ms, from, sizeof(from));
    cgprof_report_format_time(sel->end_ms, to, sizeof(to));
    snprintf(title, sizeof(title), "cgprof report%s%s, %s to %s",
             sel->groups[0] ? ": " : "", sel->groups, from, to);

    /* Copy the template, replacing each marker; any other text is kept. */
    const char *p = tpl, *end = tpl + tlen;
    while (rc == 0 && p < end) {
        const char *m = memchr(p, '@', (size_t)(end - p));
        if (m == NULL) {
            rc = cgprof_buf_append(out, p, (size_t)(end - p));
            break;
        }
        rc = cgprof_buf_append(out, p, (size_t)(m - p));
        if (rc != 0)
            break;
        if ((size_t)(end - m) >= strlen(MARK_TITLE) &&
            memcmp(m, MARK_TITLE, strlen(MARK_TITLE)) == 0) {
            rc = html_text(out, title);
            p = m + strlen(MARK_TITLE);
        } else if ((size_t)(end - m) >= strlen(MARK_DATA) &&
                   memcmp(m, MARK_DATA, strlen(MARK_DATA)) == 0) {
            rc = cgprof_report_html_data(sel, o, out);
            p = m + strlen(MARK_DATA);
        } else {
            rc = cgprof_buf_append(out, m, 1);
            p = m + 1;
        }
    }
    if (rc != 0) {
        out->len = len0;
        if (out->data)
            out->data[len0] = '\0';
    }
    return rc;
}
