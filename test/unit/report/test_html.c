/* Tests for report/html.c: the JSON embedded in the HTML report decodes
 * (with jansson, parsed back out of the page) to the profile's numbers:
 * totals per counter, per-frame counts by call path, weights, pre-order
 * with sorted children, a sorted string table, the baseline for the
 * compare view; names that could end the <script> element or are not
 * UTF-8 are escaped; failures (OOM, a bounded buffer) leave the output
 * untouched. Profiles are built in memory with cgprof_profile_add_stack. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../report/report.h"
#include "helpers.h"

#define DATA_OPEN "<script id=\"cgprof-data\" type=\"application/json\">"
#define BIG ((size_t)64 << 20)

static struct cgprof_report_selection sel, base;

static void sel_init(struct cgprof_report_selection *s, uint64_t start)
{
    memset(s, 0, sizeof(*s));
    ck_assert_int_eq(cgprof_profile_init(&s->merged), 0);
    s->merged.sample_weights[CGPROF_COUNTER_RUNNABLE] = 100.0;
    for (int c = 1; c < CGPROF_NCOUNTERS; c++)
        s->merged.sample_weights[c] = 10.0;
    s->nprofiles = 1;
    s->start_ms = s->merged.start_ms = start;
    s->end_ms = s->merged.end_ms = start + 60000;
    s->duration_ms = s->merged.duration_ms = 60000;
    s->cpu_time_s = s->merged.cpu_time_s = 4.5;
    s->merged.agent_cpu_ms = 30;
    snprintf(s->groups, sizeof(s->groups), "shop<&>");
}

static void setup(void)
{
    sel_init(&sel, 1796600000000ull);
    sel_init(&base, 1796500000000ull);
}

static void teardown(void)
{
    cgprof_report_selection_cleanup(&sel);
    cgprof_report_selection_cleanup(&base);
}

/* Adds "a;b;c" (';'-separated, root first) with count under counter c. */
static void add(struct cgprof_profile *p, const char *stack, enum cgprof_counter c,
                uint64_t count)
{
    char copy[512];
    const char *frames[32];
    size_t n = 0;
    snprintf(copy, sizeof(copy), "%s", stack);
    for (char *save = NULL, *t = strtok_r(copy, ";", &save); t;
         t = strtok_r(NULL, ";", &save))
        frames[n++] = t;
    ck_assert_int_eq(cgprof_profile_add_stack(p, frames, n, c, count), 0);
}

static const struct {
    const char *stack;
    enum cgprof_counter c;
    uint64_t n;
} STACKS[] = {
    { "app:main;app:handle;app:parse", CGPROF_COUNTER_RUNNABLE, 300 },
    { "app:main;app:handle;libc.so.6:memcpy", CGPROF_COUNTER_RUNNABLE, 100 },
    { "app:main;app:handle", CGPROF_COUNTER_RUNNABLE, 20 },
    { "app:main;app:handle;app:query;libc.so.6:recv", CGPROF_COUNTER_WAITING, 40 },
    { "app:main;app:log;libc.so.6:write", CGPROF_COUNTER_RUNNABLE, 50 },
    { "app:main;app:log;libc.so.6:write", CGPROF_COUNTER_BLOCKED, 5 },
    { "app:main;app:walk;app:walk;app:walk", CGPROF_COUNTER_RUNNABLE, 30 },
    { "libc.so.6:start_thread;app:worker;libc.so.6:pthread_mutex_lock",
      CGPROF_COUNTER_BLOCKED, 30 },
    { "libc.so.6:start_thread;app:worker;libc.so.6:pthread_cond_wait",
      CGPROF_COUNTER_IDLE, 50 },
    { "libc.so.6:start_thread;app:timer;libc.so.6:nanosleep",
      CGPROF_COUNTER_TIMED_WAITING, 40 },
    { "libc.so.6:start_thread;app:worker;app:compress", CGPROF_COUNTER_NATIVE, 7 },
};

static void add_all(struct cgprof_profile *p)
{
    for (size_t i = 0; i < CGPROF_ARRAY_SIZE(STACKS); i++)
        add(p, STACKS[i].stack, STACKS[i].c, STACKS[i].n);
}

/* Renders the page and parses its data blob back out with jansson. */
static json_t *page_data(const struct cgprof_report_html_opts *o, struct cgprof_buf *page)
{
    cgprof_buf_init(page, BIG);
    ck_assert_int_eq(cgprof_report_html(&sel, o, page), 0);
    const char *start = strstr(page->data, DATA_OPEN);
    ck_assert_ptr_nonnull(start);
    start += strlen(DATA_OPEN);
    const char *end = strstr(start, "</script>");
    ck_assert_ptr_nonnull(end);
    json_error_t err;
    json_t *d = json_loadb(start, (size_t)(end - start), 0, &err);
    ck_assert_msg(d != NULL, "embedded JSON does not parse: %s at %d", err.text, err.position);
    return d;
}

static const json_t *profile_at(const json_t *d, size_t i)
{
    const json_t *p = json_array_get(json_object_get(d, "profiles"), i);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* The call path of node i ("a;b;c"), from the parent and name columns. */
static void path_of(const json_t *strings, const json_t *prof, size_t i, char *out, size_t n)
{
    const json_t *parent = json_object_get(prof, "parent"), *name = json_object_get(prof, "name");
    const char *parts[64];
    size_t k = 0;
    while (i != 0 && k < 64) {
        json_int_t s = json_integer_value(json_array_get(name, i));
        parts[k++] = json_string_value(json_array_get(strings, (size_t)s));
        i = (size_t)json_integer_value(json_array_get(parent, i));
    }
    out[0] = '\0';
    size_t len = 0;
    while (k-- > 0)
        len += (size_t)snprintf(out + len, n - len, "%s%s", len ? ";" : "", parts[k]);
}

static uint64_t count_at(const json_t *prof, enum cgprof_counter c, size_t i)
{
    const json_t *col = json_object_get(json_object_get(prof, "counts"), cgprof_counter_name(c));
    return col ? (uint64_t)json_integer_value(json_array_get(col, i)) : 0;
}

START_TEST(test_html_data_totals_and_frames_match_profile)
{
    struct cgprof_buf page;
    add_all(&sel.merged);
    json_t *d = page_data(NULL, &page);
    const json_t *strings = json_object_get(d, "strings"), *p = profile_at(d, 0);

    ck_assert_str_eq(json_string_value(json_object_get(d, "format")), "cgprof-report");
    ck_assert_int_eq(json_integer_value(json_object_get(d, "version")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(d, "mask")), CGPROF_REPORT_MASK_CPU);
    size_t n = (size_t)json_integer_value(json_object_get(p, "nodes"));
    ck_assert_uint_eq(n, sel.merged.node_count + 1);
    ck_assert_uint_eq(json_array_size(json_object_get(p, "parent")), n);
    ck_assert_uint_eq(json_array_size(json_object_get(p, "name")), n);

    /* Totals per counter, and no column for a counter without samples. */
    for (int c = 0; c < CGPROF_NCOUNTERS; c++) {
        uint64_t sum = 0;
        for (size_t i = 0; i < n; i++)
            sum += count_at(p, (enum cgprof_counter)c, i);
        ck_assert_uint_eq(sum, cgprof_profile_total(&sel.merged, (enum cgprof_counter)c));
        const json_t *col = json_object_get(json_object_get(p, "counts"),
                                            cgprof_counter_name((enum cgprof_counter)c));
        ck_assert_int_eq(col != NULL, sum > 0);
        if (col)
            ck_assert_uint_eq(json_array_size(col), n);
    }

    /* Per frame: each stack's leaf holds exactly its count in its
     * counter; every other (node, counter) is zero. */
    uint64_t seen = 0;
    for (size_t i = 1; i < n; i++) {
        char path[512];
        path_of(strings, p, i, path, sizeof(path));
        for (int c = 0; c < CGPROF_NCOUNTERS; c++) {
            uint64_t want = 0;
            for (size_t k = 0; k < CGPROF_ARRAY_SIZE(STACKS); k++)
                if (STACKS[k].c == (enum cgprof_counter)c && strcmp(STACKS[k].stack, path) == 0)
                    want += STACKS[k].n;
            uint64_t got = count_at(p, (enum cgprof_counter)c, i);
            ck_assert_msg(got == want, "%s %s: %llu, want %llu", path,
                          cgprof_counter_name((enum cgprof_counter)c),
                          (unsigned long long)got, (unsigned long long)want);
            seen += got;
        }
    }
    uint64_t all = 0;
    for (size_t k = 0; k < CGPROF_ARRAY_SIZE(STACKS); k++)
        all += STACKS[k].n;
    ck_assert_uint_eq(seen, all);

    /* Weights turn counts into seconds; figures for the summary. */
    const json_t *w = json_object_get(p, "weights");
    ck_assert_double_eq_tol(json_number_value(json_array_get(w, CGPROF_COUNTER_RUNNABLE)), 100.0, 1e-12);
    ck_assert_double_eq_tol(json_number_value(json_array_get(w, CGPROF_COUNTER_WAITING)), 10.0, 1e-12);
    ck_assert_double_eq_tol(json_number_value(json_object_get(p, "cpu_time_s")), 4.5, 1e-12);
    ck_assert_double_eq_tol(json_number_value(json_object_get(p, "window_s")), 60.0, 1e-12);
    ck_assert_int_eq(json_integer_value(json_object_get(p, "agent_cpu_ms")), 30);
    ck_assert_str_eq(json_string_value(json_object_get(p, "groups")), "shop<&>");
    ck_assert(json_is_array(json_object_get(d, "recommendations")));
    ck_assert(json_is_null(json_object_get(d, "heap")));
    ck_assert_double_eq_tol(json_number_value(json_object_get(d, "price_per_vcpu_hour")),
                            CGPROF_REPORT_DEFAULT_VCPU_HOUR_USD, 1e-12);
    json_decref(d);
    cgprof_buf_cleanup(&page);
}
END_TEST

/* The heap summary: figures, data points and sites heaviest first, with
 * averages over each site's points and the incomplete-data mark. */
START_TEST(test_html_data_heap_summary)
{
    struct cgprof_buf page;
    add(&sel.merged, STACKS[0].stack, STACKS[0].c, STACKS[0].n);
    static const char *const small[] = { "app:main", "app:small" };
    static const char *const big[] = { "app:main", "app:big<&>" };
    sel.merged.heap.tracked = true;
    sel.merged.heap.interval_bytes = 524288;
    snprintf(sel.merged.heap.allocator, sizeof(sel.merged.heap.allocator), "glibc");
    for (int i = 0; i < 4; i++) {
        struct cgprof_heap_point pt = { 1000u + 1000u * (unsigned)i, 1u << 30,
                                        (uint64_t)(10 + i) << 20, 50u << 20, 9u << 20 };
        ck_assert_int_eq(cgprof_profile_heap_add_point(&sel.merged, &pt), 0);
        ck_assert_int_eq(cgprof_profile_heap_add_site(&sel.merged, big, 2, 8.0 * (1 << 20), 100), 0);
        if (i >= 2)
            ck_assert_int_eq(cgprof_profile_heap_add_site(&sel.merged, small, 2, 1 << 20, 10 + i), 0);
    }
    json_t *d = page_data(NULL, &page);
    const json_t *h = json_object_get(d, "heap");
    ck_assert(json_is_object(h));
    ck_assert_str_eq(json_string_value(json_object_get(h, "allocator")), "glibc");
    ck_assert(json_is_true(json_object_get(h, "tracked")));
    ck_assert_int_eq(json_integer_value(json_object_get(h, "snapshots")), 4);
    ck_assert_int_eq(json_integer_value(json_object_get(h, "capacity")), 1 << 30);
    ck_assert_double_eq_tol(json_number_value(json_object_get(h, "avg_used")), 11.5 * (1 << 20), 1e-3);
    ck_assert_int_eq(json_integer_value(json_object_get(h, "peak_used")), 13 << 20);
    const json_t *series = json_object_get(h, "series");
    ck_assert_uint_eq(json_array_size(series), 4);
    ck_assert_int_eq(json_integer_value(json_array_get(json_array_get(series, 3), 2)), 13 << 20);
    const json_t *sites = json_object_get(h, "sites");
    ck_assert_uint_eq(json_array_size(sites), 2);
    const json_t *s0 = json_array_get(sites, 0), *s1 = json_array_get(sites, 1);
    const json_t *f0 = json_object_get(s0, "frames");
    ck_assert_str_eq(json_string_value(json_array_get(f0, 1)), "app:big<&>");
    ck_assert_double_eq_tol(json_number_value(json_object_get(s0, "avg_bytes")), 8.0 * (1 << 20), 1e-6);
    ck_assert(json_is_false(json_object_get(s0, "incomplete")));
    ck_assert_double_eq_tol(json_number_value(json_object_get(s1, "avg_objects")), 12.5, 1e-9);
    ck_assert_int_eq(json_integer_value(json_object_get(s1, "points")), 2);
    ck_assert(json_is_true(json_object_get(s1, "incomplete")));
    /* Escaped for the <script> element. */
    ck_assert_ptr_null(strstr(page.data, "big<&>"));
    json_decref(d);
    cgprof_buf_cleanup(&page);
}
END_TEST

START_TEST(test_html_data_preorder_sorted_children_and_strings)
{
    struct cgprof_buf page;
    /* Insert in reverse name order so sorting is observable. */
    for (size_t i = CGPROF_ARRAY_SIZE(STACKS); i-- > 0;)
        add(&sel.merged, STACKS[i].stack, STACKS[i].c, STACKS[i].n);
    json_t *d = page_data(NULL, &page);
    const json_t *strings = json_object_get(d, "strings"), *p = profile_at(d, 0);
    const json_t *parent = json_object_get(p, "parent"), *name = json_object_get(p, "name");
    size_t n = json_array_size(parent), ns = json_array_size(strings);

    for (size_t i = 1; i < ns; i++)
        ck_assert_int_lt(strcmp(json_string_value(json_array_get(strings, i - 1)),
                                json_string_value(json_array_get(strings, i))), 0);
    ck_assert_int_eq(json_integer_value(json_array_get(parent, 0)), -1);
    ck_assert_int_eq(json_integer_value(json_array_get(name, 0)), -1);
    /* Pre-order: a node's parent is the nearest earlier node one level up,
     * and siblings come in increasing name index. */
    json_int_t *last_child = calloc(n, sizeof(*last_child));
    ck_assert_ptr_nonnull(last_child);
    for (size_t i = 1; i < n; i++) {
        json_int_t par = json_integer_value(json_array_get(parent, i));
        json_int_t nm = json_integer_value(json_array_get(name, i));
        ck_assert_int_ge(par, 0);
        ck_assert_int_lt(par, (json_int_t)i);
        ck_assert_int_ge(nm, 0);
        ck_assert_int_lt(nm, (json_int_t)ns);
        if (last_child[par] != 0) {
            json_int_t prev = json_integer_value(json_array_get(name, (size_t)last_child[par]));
            ck_assert_int_lt(prev, nm);
            /* Everything between the previous sibling and this node is in
             * the previous sibling's subtree. */
            for (size_t j = (size_t)last_child[par] + 1; j < i; j++)
                ck_assert_int_gt(json_integer_value(json_array_get(parent, j)), par);
        }
        last_child[par] = (json_int_t)i;
    }
    free(last_child);
    json_decref(d);
    cgprof_buf_cleanup(&page);
}
END_TEST

START_TEST(test_html_names_escaped_for_script_and_utf8)
{
    static const char evil[] = "x</script><!--&\"\\\x01\xff\xfe ok\xc3\xa9";
    struct cgprof_buf page;
    add(&sel.merged, "app:main", CGPROF_COUNTER_RUNNABLE, 3);
    const char *frames[2] = { "app:main", evil };
    ck_assert_int_eq(cgprof_profile_add_stack(&sel.merged, frames, 2,
                                              CGPROF_COUNTER_RUNNABLE, 5), 0);
    json_t *d = page_data(NULL, &page);
    /* Only the template's own two </script> tags end a script. */
    size_t tags = 0;
    for (const char *at = page.data; (at = strstr(at, "</script>")) != NULL; at++)
        tags++;
    ck_assert_uint_eq(tags, 2);
    ck_assert_ptr_null(strstr(page.data, "@@CGPROF_"));
    ck_assert_ptr_nonnull(strstr(page.data, "<title>cgprof report: shop&lt;&amp;&gt;, "));
    const json_t *strings = json_object_get(d, "strings");
    int found = 0;
    for (size_t i = 0; i < json_array_size(strings); i++)
        if (strcmp(json_string_value(json_array_get(strings, i)),
                   "x</script><!--&\"\\\x01\xef\xbf\xbd\xef\xbf\xbd ok\xc3\xa9") == 0)
            found = 1;
    ck_assert_msg(found, "the escaped name did not decode to the original (with U+FFFD)");
    json_decref(d);
    cgprof_buf_cleanup(&page);
}
END_TEST

START_TEST(test_html_baseline_and_options)
{
    struct cgprof_buf page;
    struct cgprof_report_html_opts o = { 0 };
    add_all(&sel.merged);
    add(&base.merged, "app:main;app:old_path", CGPROF_COUNTER_RUNNABLE, 11);
    add(&base.merged, "app:main;app:handle;app:parse", CGPROF_COUNTER_RUNNABLE, 9);
    base.merged.sample_weights[CGPROF_COUNTER_WAITING] = 0; /* unused: default 1/s */
    o.baseline = &base;
    o.mask = CGPROF_REPORT_MASK_LATENCY;
    o.price_per_vcpu_hour = 0.1;
    o.label = "B-label";
    o.baseline_label = "A-label";
    json_t *d = page_data(&o, &page);
    ck_assert_uint_eq(json_array_size(json_object_get(d, "profiles")), 2);
    const json_t *a = profile_at(d, 1), *strings = json_object_get(d, "strings");
    ck_assert_str_eq(json_string_value(json_object_get(profile_at(d, 0), "label")), "B-label");
    ck_assert_str_eq(json_string_value(json_object_get(a, "label")), "A-label");
    ck_assert_int_eq(json_integer_value(json_object_get(d, "mask")), CGPROF_REPORT_MASK_LATENCY);
    ck_assert_double_eq_tol(json_number_value(json_object_get(d, "price_per_vcpu_hour")), 0.1, 1e-12);
    ck_assert_int_eq(json_integer_value(json_object_get(a, "nodes")), 5);
    ck_assert_double_eq_tol(json_number_value(json_array_get(json_object_get(a, "weights"),
                                                           CGPROF_COUNTER_WAITING)), 1.0, 1e-12);
    uint64_t sum = 0;
    int old = 0;
    for (size_t i = 1; i < 5; i++) {
        char path[256];
        path_of(strings, a, i, path, sizeof(path));
        if (strcmp(path, "app:main;app:old_path") == 0) {
            ck_assert_uint_eq(count_at(a, CGPROF_COUNTER_RUNNABLE, i), 11);
            old = 1;
        }
        sum += count_at(a, CGPROF_COUNTER_RUNNABLE, i);
    }
    ck_assert(old);
    ck_assert_uint_eq(sum, 20);
    json_decref(d);
    cgprof_buf_cleanup(&page);
}
END_TEST

START_TEST(test_html_empty_profile)
{
    struct cgprof_buf page;
    json_t *d = page_data(NULL, &page);
    const json_t *p = profile_at(d, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(p, "nodes")), 1);
    ck_assert_uint_eq(json_array_size(json_object_get(d, "strings")), 0);
    ck_assert_uint_eq(json_object_size(json_object_get(p, "counts")), 0);
    json_decref(d);
    cgprof_buf_cleanup(&page);
}
END_TEST

START_TEST(test_html_failures_leave_output_untouched)
{
    struct cgprof_buf out;
    add_all(&sel.merged);
    /* A bound too small for the page. */
    cgprof_buf_init(&out, 4096);
    ck_assert_int_eq(cgprof_buf_appends(&out, "keep"), 0);
    ck_assert_int_eq(cgprof_report_html(&sel, NULL, &out), CGPROF_ETOOBIG);
    ck_assert_uint_eq(out.len, 4);
    ck_assert_str_eq(out.data, "keep");
    cgprof_buf_cleanup(&out);
    /* Every allocation failing in turn. */
    int failures = 0;
    for (long k = 0; k < 400; k++) {
        cgprof_buf_init(&out, BIG);
        ck_assert_int_eq(cgprof_buf_appends(&out, "keep"), 0);
        cgprof_alloc_fail_after(k);
        int rc = cgprof_report_html(&sel, NULL, &out);
        cgprof_alloc_fail_after(-1);
        if (rc == 0) {
            ck_assert_ptr_nonnull(strstr(out.data, DATA_OPEN));
            cgprof_buf_cleanup(&out);
            break;
        }
        failures++;
        ck_assert_int_eq(rc, CGPROF_ENOMEM);
        ck_assert_uint_eq(out.len, 4);
        ck_assert_str_eq(out.data, "keep");
        cgprof_buf_cleanup(&out);
    }
    ck_assert_int_ge(failures, 5);
    ck_assert_int_eq(cgprof_report_html(NULL, NULL, &out), CGPROF_EINVAL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("html");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_html_data_totals_and_frames_match_profile);
    tcase_add_test(tc, test_html_data_preorder_sorted_children_and_strings);
    tcase_add_test(tc, test_html_data_heap_summary);
    tcase_add_test(tc, test_html_names_escaped_for_script_and_utf8);
    tcase_add_test(tc, test_html_baseline_and_options);
    tcase_add_test(tc, test_html_empty_profile);
    tcase_add_test(tc, test_html_failures_leave_output_untouched);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cgprof_test_run(suite());
}
