/* report/: stored profiles → text reports. Collecting profiles from
 * directories and files, filtering them by time range and group and merging
 * them (select.c); the heaviest functions by self and total time for a
 * counter set (top.c). The `cgprof report` command (cli/) drives these.
 * Nothing here runs inside a host process. */
#ifndef CGPROF_REPORT_H
#define CGPROF_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/common.h"
#include "../profile/profile.h"

/* ---- counter sets (top.c) ---------------------------------------------- */

#define CGPROF_REPORT_MASK(c) (1u << (c))
/* The console's CPU view: RUNNABLE, BLOCKED and NATIVE. */
#define CGPROF_REPORT_MASK_CPU                                               \
    (CGPROF_REPORT_MASK(CGPROF_COUNTER_RUNNABLE) |                           \
     CGPROF_REPORT_MASK(CGPROF_COUNTER_BLOCKED) |                            \
     CGPROF_REPORT_MASK(CGPROF_COUNTER_NATIVE))
/* The console's latency view: every state but IDLE. */
#define CGPROF_REPORT_MASK_ALL ((1u << CGPROF_NCOUNTERS) - 1u)
#define CGPROF_REPORT_MASK_LATENCY                                           \
    (CGPROF_REPORT_MASK_ALL & ~CGPROF_REPORT_MASK(CGPROF_COUNTER_IDLE))

/* Parses a counter-set name: "cpu", "latency" or one wire counter name
 * (RUNNABLE, BLOCKED, NATIVE, WAITING, TIMED_WAITING, IDLE; case-insensitive)
 * into a bit mask of counters. Returns 0 or CGPROF_EINVAL. */
int cgprof_report_counter_mask(const char *name, unsigned *mask);

/* Human description of a mask, e.g. "RUNNABLE+BLOCKED+NATIVE", written to
 * out (always NUL-terminated). */
void cgprof_report_mask_describe(unsigned mask, char *out, size_t n);

/* Counts per second of counter c in p: p->sample_weights[c], or the
 * documented defaults (100 Hz CPU sampling for RUNNABLE, one thread-state
 * sample per second for the others) when the profile carries none. */
double cgprof_report_weight(const struct cgprof_profile *p, enum cgprof_counter c);

/* ---- heaviest functions (top.c) ---------------------------------------- */

/* One frame name ("module:function" or "module+0xOFFSET", kept whole) with
 * its self and inclusive time over the selected counters. Inclusive time
 * counts a frame once per stack even when it recurses. */
struct cgprof_report_row {
    const char *name;     /* interned in the profile; valid while it lives */
    uint64_t self_count;  /* samples with this frame as the leaf */
    uint64_t total_count; /* samples with this frame anywhere on the stack */
    double self_s;        /* seconds: sum over counters of count / weight */
    double total_s;
};

struct cgprof_report_top {
    struct cgprof_report_row *rows; /* one per distinct frame name */
    size_t nrows;
    uint64_t total_count;           /* all selected samples (incl. empty stacks) */
    double total_s;                 /* their seconds: the 100 % of the shares */
};

/* Computes one row per distinct frame name of p for the counters in mask.
 * Rows come unsorted; see cgprof_report_top_sort. out is overwritten; free
 * it with cgprof_report_top_cleanup. Returns 0, CGPROF_EINVAL (empty mask)
 * or CGPROF_ENOMEM (out then holds nothing). */
int cgprof_report_top_compute(const struct cgprof_profile *p, unsigned mask,
                              struct cgprof_report_top *out);
void cgprof_report_top_cleanup(struct cgprof_report_top *t);

/* Sorts rows heaviest first by self time (by_total false) or by inclusive
 * time (by_total true); ties break by name so output is stable. */
void cgprof_report_top_sort(struct cgprof_report_top *t, bool by_total);

/* Appends a table of the n heaviest rows (already sorted) to out:
 * a title line, a header "self%  self s  total%  total s  frame" and one
 * line per row. Returns 0 or CGPROF_ETOOBIG / CGPROF_ENOMEM. */
int cgprof_report_top_table(const struct cgprof_report_top *t, size_t n,
                            const char *title, struct cgprof_buf *out);

/* ---- selecting stored profiles (select.c) ------------------------------ */

/* Which stored profiles to take. A profile is taken when its time range
 * [start_ms, end_ms] overlaps [from_ms, to_ms] and its group matches. */
struct cgprof_report_filter {
    uint64_t from_ms;   /* 0 = no lower bound */
    uint64_t to_ms;     /* 0 = no upper bound */
    const char *group;  /* exact group_name, or NULL for every group */
};

/* The merged result of a selection and facts about its inputs. */
struct cgprof_report_selection {
    struct cgprof_profile merged;   /* all taken profiles, merged */
    size_t nprofiles;               /* profiles taken */
    size_t nfound;                  /* readable profiles seen before filtering */
    size_t nskipped;                /* unreadable files skipped (warned) */
    uint64_t start_ms, end_ms;      /* union of the taken profiles' ranges */
    uint64_t duration_ms;           /* sum of active wall time */
    double cpu_time_s;              /* sum of whole-process CPU time */
    double avg_threads;             /* num_threads averaged over sample ticks */
    double max_threads;             /* largest per-profile num_threads */
    uint64_t num_times_sampled;     /* sum of sampling ticks */
    uint64_t samples_dropped;       /* sum of dropped samples */
    char groups[256];               /* distinct group names, ", "-joined
                                       (truncated with "..." when long) */
};

/* Parses a time for --from/--to: epoch milliseconds ("1796637600000"),
 * ISO-8601 UTC or with an offset ("2026-12-07T10:00:00Z",
 * "2026-12-07T10:00:00.250+02:00", "2026-12-07T10:00", "2026-12-07"; no
 * zone means UTC), "now", or relative to now_ms ("-1h", "-30m", "-45s",
 * "-2d", "-1w"). Returns 0 or CGPROF_EINVAL. */
int cgprof_report_parse_time(const char *s, uint64_t now_ms, uint64_t *out_ms);

/* Formats epoch ms as "2026-12-07T10:00:00Z" (UTC, seconds) into out. */
void cgprof_report_format_time(uint64_t ms, char *out, size_t n);

/* Loads every stored profile named by paths (a directory contributes its
 * *.json.gz and *.json files, not recursively; a file is read as is),
 * keeps those passing f (NULL = all) and merges them into sel->merged.
 * An unreadable or corrupt file is skipped with one "cgprof:" warning line
 * and counted in nskipped. Returns 0 with at least one profile taken;
 * CGPROF_ENOTFOUND when nothing was taken (err says why, e.g. "no profiles
 * found in DIR (...)"); a negative errno when a named path cannot be
 * opened; CGPROF_ENOMEM. On failure err holds one line (no "cgprof: "
 * prefix, no newline) and sel is left initialized but may be partial;
 * always call cgprof_report_selection_cleanup. */
int cgprof_report_select(struct cgprof_report_selection *sel,
                         const char *const *paths, size_t npaths,
                         const struct cgprof_report_filter *f,
                         char *err, size_t errn);
void cgprof_report_selection_cleanup(struct cgprof_report_selection *sel);

/* ---- the `top` text report (top.c) ------------------------------------- */

/* Appends the whole `--format top` report for sel: summary lines (time
 * range, profiles, samples, CPU seconds, duration, threads, drops) then
 * the top n frames by self time and by total time for mask.
 * Returns 0, CGPROF_EINVAL, CGPROF_ENOMEM or CGPROF_ETOOBIG. */
int cgprof_report_top_text(const struct cgprof_report_selection *sel,
                           unsigned mask, size_t n, struct cgprof_buf *out);

/* ---- recommendations (recommend.c) ------------------------------------- */

/* One fired rule of the native-code recommendations. Strings other than
 * evidence are static. Thresholds and matched frames: README.md
 * "Recommendations" and the table atop report/recommend.c. */
struct cgprof_recommendation {
    const char *id;        /* stable rule id, e.g. "lock-contention" */
    const char *title;     /* one line */
    double share;          /* fraction of the view's time matched, 0..1 */
    double seconds;        /* matched time */
    double yearly_cost_usd;/* estimate from CPU seconds and price */
    char evidence[512];    /* top matching frames with shares */
    const char *fix;       /* concrete advice */
};

/* Runs every rule over p (the CPU view, or the latency view for lock
 * contention) and writes the rules that fire (share >= threshold and at
 * least 5 matched samples) to out[0..max), heaviest share first; *n gets
 * the number written. yearly_cost_usd extrapolates
 * the matched CPU seconds over a year of the profile's duration at
 * price_per_vcpu_hour (an estimate; 0 when the duration is unknown).
 * Returns 0 or CGPROF_EINVAL / CGPROF_ENOMEM (then *n is 0). */
int cgprof_report_recommend(const struct cgprof_profile *p, double price_per_vcpu_hour,
                            struct cgprof_recommendation *out, size_t max, size_t *n);

/* Appends the recommendations as text ("Recommendations" title, then per
 * rule: share, seconds, estimated yearly cost, evidence and fix; or a line
 * saying none fired). Returns 0, CGPROF_ENOMEM or CGPROF_ETOOBIG. */
int cgprof_report_recommend_text(const struct cgprof_profile *p,
                                 double price_per_vcpu_hour, struct cgprof_buf *out);

/* An out array this long always holds every rule that fires. */
#define CGPROF_REPORT_RECOMMEND_MAX 16

/* Default on-demand price per vCPU-hour in USD used for cost estimates. */
#define CGPROF_REPORT_DEFAULT_VCPU_HOUR_USD 0.0425

/* ---- the HTML report (html.c) ------------------------------------------ */

struct cgprof_report_html_opts {
    unsigned mask;               /* counters of the first view; 0 = CPU */
    double price_per_vcpu_hour;  /* USD for cost estimates; <= 0 = default */
    /* The compare view's A side (B is the main selection), or NULL. */
    const struct cgprof_report_selection *baseline;
    const char *label;           /* how the page names B / A; NULL = none */
    const char *baseline_label;
};

/* Appends one self-contained HTML page (no network at view time) showing
 * sel: overview and hotspots flame graphs, inspect, CPU/latency/custom
 * thread-state views, compare (when o->baseline), summary figures and the
 * recommendations. The page embeds the data of
 * cgprof_report_html_data in <script id="cgprof-data"
 * type="application/json">. o may be NULL. On failure out is left as it
 * was. Returns 0, CGPROF_EINVAL, CGPROF_ENOMEM or CGPROF_ETOOBIG. */
int cgprof_report_html(const struct cgprof_report_selection *sel,
                       const struct cgprof_report_html_opts *o, struct cgprof_buf *out);

/* Appends only the page's JSON data: {"format":"cgprof-report",
 * "version":1, "counters":[wire names], "mask", "price_per_vcpu_hour",
 * "strings":[frame names, sorted], "profiles":[B, A?], "recommendations",
 * "heap"}. Each profile has summary figures (start_ms, end_ms, nprofiles,
 * duration_ms, window_s, cpu_time_s, agent_cpu_ms, threads_avg, ticks,
 * dropped, vcpus, weights[counter] in counts per second, ...) and its tree
 * as columns: "nodes" N, "parent"[N] (-1 for the root at index 0), "name"[N]
 * (index into strings, -1 for the root) and "counts":{COUNTER:[N self
 * counts]} for each counter with samples. Nodes are in pre-order with
 * children sorted by name, so parent[i] < i. "heap" is null without a heap
 * summary, else {allocator, tracked, incomplete, interval_bytes,
 * threshold_permille, snapshots, samples, lost, capacity, avg_used,
 * peak_used, avg_rss, peak_rss, series:[[time_ms, capacity, used, rss,
 * sampled live]...], sites:[{frames:[root..leaf], avg_bytes, avg_objects,
 * peak_bytes, points, incomplete}...] heaviest first}. Returns as
 * cgprof_report_html. */
int cgprof_report_html_data(const struct cgprof_report_selection *sel,
                            const struct cgprof_report_html_opts *o,
                            struct cgprof_buf *out);

#endif
