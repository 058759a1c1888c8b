/* Tests for report/top.c: counter sets, self and inclusive shares (with
 * recursion), seconds from sample weights, top-N tables and the `top`
 * text report. Profiles are built in memory with cgprof_profile_add_stack. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../report/report.h"
#include "helpers.h"

#define EPS 1e-9

static struct cgprof_profile prof;

static void setup(void)
{
    ck_assert_int_eq(cgprof_profile_init(&prof), 0);
    prof.sample_weights[CGPROF_COUNTER_RUNNABLE] = 100.0;
    for (int c = 1; c < CGPROF_NCOUNTERS; c++)
        prof.sample_weights[c] = 1.0;
}

static void teardown(void)
{
    cgprof_profile_cleanup(&prof);
}

/* Adds "a;b;c" (';'-separated, root first) with count under counter c. */
static void add(const char *stack, enum cgprof_counter c, uint64_t count)
{
    char copy[512];
    const char *frames[32];
    size_t n = 0;
    snprintf(copy, sizeof(copy), "%s", stack);
    for (char *save = NULL, *t = strtok_r(copy, ";", &save); t;
         t = strtok_r(NULL, ";", &save))
        frames[n++] = t;
    ck_assert_int_eq(cgprof_profile_add_stack(&prof, frames, n, c, count), 0);
}

static const struct cgprof_report_row *row(const struct cgprof_report_top *t,
                                           const char *name)
{
    for (size_t i = 0; i < t->nrows; i++)
        if (strcmp(t->rows[i].name, name) == 0)
            return &t->rows[i];
    return NULL;
}

static void expect(const struct cgprof_report_top *t, const char *name,
                   uint64_t self, uint64_t total)
{
    const struct cgprof_report_row *r = row(t, name);
    ck_assert_msg(r != NULL, "no row for %s", name);
    ck_assert_msg(r->self_count == self && r->total_count == total,
                  "%s: self %llu total %llu, expected %llu %llu", name,
                  (unsigned long long)r->self_count, (unsigned long long)r->total_count,
                  (unsigned long long)self, (unsigned long long)total);
}

START_TEST(test_counter_mask_names)
{
    static const struct {
        const char *name;
        int rc;
        unsigned mask;
    } cases[] = {
        { "cpu", 0, (1u << CGPROF_COUNTER_RUNNABLE) | (1u << CGPROF_COUNTER_BLOCKED) |
                        (1u << CGPROF_COUNTER_NATIVE) },
        { "CPU", 0, CGPROF_REPORT_MASK_CPU },
        { "latency", 0, CGPROF_REPORT_MASK_ALL & ~(1u << CGPROF_COUNTER_IDLE) },
        { "RUNNABLE", 0, 1u << CGPROF_COUNTER_RUNNABLE },
        { "BLOCKED", 0, 1u << CGPROF_COUNTER_BLOCKED },
        { "WAITING", 0, 1u << CGPROF_COUNTER_WAITING },
        { "timed_waiting", 0, 1u << CGPROF_COUNTER_TIMED_WAITING },
        { "IDLE", 0, 1u << CGPROF_COUNTER_IDLE },
        { "NATIVE", 0, 1u << CGPROF_COUNTER_NATIVE },
        { "wall", CGPROF_EINVAL, 0 },
        { "", CGPROF_EINVAL, 0 },
        { "RUNNABLE+IDLE", CGPROF_EINVAL, 0 },
    };
    for (size_t i = 0; i < CGPROF_ARRAY_SIZE(cases); i++) {
        unsigned mask = 0xdead;
        int rc = cgprof_report_counter_mask(cases[i].name, &mask);
        ck_assert_msg(rc == cases[i].rc, "'%s': rc %d", cases[i].name, rc);
        if (rc == 0)
            ck_assert_msg(mask == cases[i].mask, "'%s': mask %#x", cases[i].name, mask);
    }
    ck_assert_int_eq(__builtin_popcount(CGPROF_REPORT_MASK_LATENCY), CGPROF_NCOUNTERS - 1);
}
END_TEST

START_TEST(test_mask_describe_cpu)
{
    char buf[96];
    cgprof_report_mask_describe(CGPROF_REPORT_MASK_CPU, buf, sizeof(buf));
    ck_assert_str_eq(buf, "RUNNABLE+BLOCKED+NATIVE");
    cgprof_report_mask_describe(1u << CGPROF_COUNTER_IDLE, buf, sizeof(buf));
    ck_assert_str_eq(buf, "IDLE");
}
END_TEST

START_TEST(test_top_compute_self_and_total)
{
    struct cgprof_report_top t;
    add("prog:main;prog:a;libc.so.6:memcpy", CGPROF_COUNTER_RUNNABLE, 30);
    add("prog:main;prog:a", CGPROF_COUNTER_RUNNABLE, 10);
    add("prog:main;prog:b;libc.so.6:memcpy", CGPROF_COUNTER_RUNNABLE, 20);
    add("prog:main;prog:b", CGPROF_COUNTER_RUNNABLE, 40);
    ck_assert_int_eq(cgprof_report_top_compute(&prof, CGPROF_REPORT_MASK_CPU, &t), 0);
    ck_assert_uint_eq(t.nrows, 4); /* memcpy under a and b is one row */
    ck_assert_uint_eq(t.total_count, 100);
    ck_assert_double_eq_tol(t.total_s, 1.0, EPS);
    expect(&t, "prog:main", 0, 100);
    expect(&t, "prog:a", 10, 40);
    expect(&t, "prog:b", 40, 60);
    expect(&t, "libc.so.6:memcpy", 50, 50);
    ck_assert_double_eq_tol(row(&t, "prog:b")->total_s, 0.6, EPS);
    cgprof_report_top_cleanup(&t);
}
END_TEST

START_TEST(test_top_compute_recursion_counted_once)
{
    struct cgprof_report_top t;
    /* f recurses three deep, and appears again below g. */
    add("m:main;m:f;m:f;m:f;m:g", CGPROF_COUNTER_RUNNABLE, 10);
    add("m:main;m:f", CGPROF_COUNTER_RUNNABLE, 5);
    add("m:main;m:f;m:g;m:f", CGPROF_COUNTER_RUNNABLE, 7);
    add("m:main;m:g", CGPROF_COUNTER_RUNNABLE, 3);
    ck_assert_int_eq(cgprof_report_top_compute(&prof, CGPROF_REPORT_MASK_CPU, &t), 0);
    expect(&t, "m:main", 0, 25);
    expect(&t, "m:f", 12, 22);  /* not 10*3 + 5 + 7*2 */
    expect(&t, "m:g", 13, 20);
    ck_assert_double_eq_tol(row(&t, "m:f")->total_s, 0.22, EPS);
    cgprof_report_top_cleanup(&t);
}
END_TEST

START_TEST(test_top_compute_counter_selection)
{
    struct cgprof_report_top t;
    add("p:main;p:work", CGPROF_COUNTER_RUNNABLE, 100);     /* 1 s */
    add("p:main;p:lock", CGPROF_COUNTER_BLOCKED, 2);        /* 2 s */
    add("p:main;p:read", CGPROF_COUNTER_WAITING, 3);        /* 3 s */
    add("p:main;p:sleep", CGPROF_COUNTER_TIMED_WAITING, 4); /* 4 s */
    add("p:pool;p:park", CGPROF_COUNTER_IDLE, 50);          /* 50 s */

    ck_assert_int_eq(cgprof_report_top_compute(&prof, CGPROF_REPORT_MASK_CPU, &t), 0);
    ck_assert_double_eq_tol(t.total_s, 3.0, EPS);
    ck_assert_uint_eq(t.total_count, 102);
    ck_assert_uint_eq(row(&t, "p:read")->total_count, 0);
    ck_assert_uint_eq(row(&t, "p:park")->total_count, 0);
    ck_assert_double_eq_tol(row(&t, "p:lock")->self_s, 2.0, EPS);
    cgprof_report_top_cleanup(&t);

    ck_assert_int_eq(cgprof_report_top_compute(&prof, CGPROF_REPORT_MASK_LATENCY, &t), 0);
    ck_assert_double_eq_tol(t.total_s, 10.0, EPS);
    ck_assert_double_eq_tol(row(&t, "p:main")->total_s, 10.0, EPS);
    ck_assert_uint_eq(row(&t, "p:pool")->total_count, 0);
    cgprof_report_top_cleanup(&t);

    unsigned idle;
    ck_assert_int_eq(cgprof_report_counter_mask("IDLE", &idle), 0);
    ck_assert_int_eq(cgprof_report_top_compute(&prof, idle, &t), 0);
    ck_assert_double_eq_tol(t.total_s, 50.0, EPS);
    expect(&t, "p:park", 50, 50);
    ck_assert_uint_eq(row(&t, "p:work")->total_count, 0);
    cgprof_report_top_cleanup(&t);

    ck_assert_int_eq(cgprof_report_top_compute(&prof, 0, &t), CGPROF_EINVAL);
}
END_TEST

START_TEST(test_top_compute_seconds_from_weights)
{
    struct cgprof_report_top t;
    prof.sample_weights[CGPROF_COUNTER_RUNNABLE] = 250.0;  /* 250 Hz */
    prof.sample_weights[CGPROF_COUNTER_WAITING] = 10.0;    /* every 100 ms */
    add("p:main;p:cpu", CGPROF_COUNTER_RUNNABLE, 500);     /* 2 s */
    add("p:main;p:io", CGPROF_COUNTER_WAITING, 60);        /* 6 s */
    ck_assert_int_eq(cgprof_report_top_compute(&prof, CGPROF_REPORT_MASK_LATENCY, &t), 0);
    ck_assert_double_eq_tol(row(&t, "p:cpu")->self_s, 2.0, EPS);
    ck_assert_double_eq_tol(row(&t, "p:io")->self_s, 6.0, EPS);
    ck_assert_double_eq_tol(t.total_s, 8.0, EPS);
    /* Shares follow seconds, not raw counts: io is 75 % with 60 of 560. */
    cgprof_report_top_sort(&t, false);
    ck_assert_str_eq(t.rows[0].name, "p:io");
    cgprof_report_top_cleanup(&t);
}
END_TEST

START_TEST(test_weight_defaults_when_missing)
{
    memset(prof.sample_weights, 0, sizeof(prof.sample_weights));
    ck_assert_double_eq_tol(cgprof_report_weight(&prof, CGPROF_COUNTER_RUNNABLE), 100.0, EPS);
    ck_assert_double_eq_tol(cgprof_report_weight(&prof, CGPROF_COUNTER_WAITING), 1.0, EPS);
    prof.sample_weights[CGPROF_COUNTER_WAITING] = 4.0;
    ck_assert_double_eq_tol(cgprof_report_weight(&prof, CGPROF_COUNTER_WAITING), 4.0, EPS);
}
END_TEST

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

START_TEST(test_top_table_top_n_sorted)
{
    struct cgprof_report_top t;
    struct cgprof_buf out;
    char name[64];
    for (int i = 1; i <= 25; i++) {
        snprintf(name, sizeof(name), "app:main;app:fn%02d", i);
        add(name, CGPROF_COUNTER_RUNNABLE, (uint64_t)i);
    }
    ck_assert_int_eq(cgprof_report_top_compute(&prof, CGPROF_REPORT_MASK_CPU, &t), 0);
    cgprof_report_top_sort(&t, false);
    ck_assert_str_eq(t.rows[0].name, "app:fn25");
    ck_assert_str_eq(t.rows[1].name, "app:fn24");

    cgprof_buf_init(&out, 1 << 20);
    ck_assert_int_eq(cgprof_report_top_table(&t, 20, "by self", &out), 0);
    ck_assert_uint_eq(count_lines(out.data), 2 + 20);   /* title, header, rows */
    ck_assert_ptr_nonnull(strstr(out.data, "app:fn06\n"));
    ck_assert_ptr_null(strstr(out.data, "app:fn05\n"));
    /* 25 of 325 samples = 7.7 %, 0.25 s. */
    ck_assert_ptr_nonnull(strstr(out.data, "   7.7%      0.25    7.7%      0.25  app:fn25\n"));

    cgprof_report_top_sort(&t, true);
    ck_assert_str_eq(t.rows[0].name, "app:main");       /* 100 % total */
    cgprof_buf_reset(&out);
    ck_assert_int_eq(cgprof_report_top_table(&t, 3, "by total", &out), 0);
    ck_assert_ptr_nonnull(strstr(out.data, "  0.0%      0.00  100.0%      3.25  app:main\n"));
    ck_assert_uint_eq(count_lines(out.data), 2 + 3);
    cgprof_buf_cleanup(&out);
    cgprof_report_top_cleanup(&t);
}
END_TEST

START_TEST(test_top_text_summary_and_full_names)
{
    struct cgprof_report_selection sel;
    struct cgprof_buf out;
    memset(&sel, 0, sizeof(sel));
    ck_assert_int_eq(cgprof_profile_init(&sel.merged), 0);
    sel.merged.sample_weights[CGPROF_COUNTER_RUNNABLE] = 100.0;
    const char *a[] = { "cpusplit:main", "cpusplit:burn_a", "libc.so.6:memcpy" };
    const char *b[] = { "cpusplit:main", "libfoo.so+0x1a2b" };
    ck_assert_int_eq(cgprof_profile_add_stack(&sel.merged, a, 3, CGPROF_COUNTER_RUNNABLE, 300), 0);
    ck_assert_int_eq(cgprof_profile_add_stack(&sel.merged, b, 2, CGPROF_COUNTER_RUNNABLE, 100), 0);
    sel.nprofiles = 2;
    sel.start_ms = 1796637600000ull;
    sel.end_ms = 1796637600000ull + 120000;
    sel.duration_ms = 120000;
    sel.cpu_time_s = 4.25;
    sel.avg_threads = 3.5;
    sel.max_threads = 4;
    sel.samples_dropped = 7;
    strcpy(sel.groups, "cpusplit");

    cgprof_buf_init(&out, 1 << 20);
    ck_assert_int_eq(cgprof_report_top_text(&sel, CGPROF_REPORT_MASK_CPU, 20, &out), 0);
    const char *s = out.data;
    ck_assert_ptr_nonnull(strstr(s, "2026-12-07T10:00:00Z .. 2026-12-07T10:02:00Z"));
    ck_assert_ptr_nonnull(strstr(s, "profiles:      2 from cpusplit\n"));
    ck_assert_ptr_nonnull(strstr(s, "samples:       400 total"));
    ck_assert_ptr_nonnull(strstr(s, "4.25 s (process), 4.00 s sampled on CPU"));
    ck_assert_ptr_nonnull(strstr(s, "120.0 s"));
    ck_assert_ptr_nonnull(strstr(s, "3.5 average, 4 max"));
    ck_assert_ptr_nonnull(strstr(s, "dropped:       7 samples"));
    ck_assert_ptr_nonnull(strstr(s, "  75.0%      3.00   75.0%      3.00  libc.so.6:memcpy\n"));
    ck_assert_ptr_nonnull(strstr(s, "  25.0%      1.00   25.0%      1.00  libfoo.so+0x1a2b\n"));
    ck_assert_ptr_nonnull(strstr(s, "   0.0%      0.00   75.0%      3.00  cpusplit:burn_a\n"));
    /* The self table comes first, then the total table led by main. */
    const char *by_total = strstr(s, "by total time");
    ck_assert_ptr_nonnull(by_total);
    ck_assert_ptr_nonnull(strstr(by_total, "100.0%      4.00  cpusplit:main\n"));
    ck_assert_ptr_nonnull(strstr(s, "by self time"));
    ck_assert(strstr(s, "by self time") < by_total);

    /* A view with no samples says so instead of printing empty tables. */
    cgprof_buf_reset(&out);
    ck_assert_int_eq(cgprof_report_top_text(&sel, 1u << CGPROF_COUNTER_WAITING, 20, &out), 0);
    ck_assert_ptr_nonnull(strstr(out.data, "no samples of these counters"));
    ck_assert_ptr_null(strstr(out.data, "by self time"));
    cgprof_buf_cleanup(&out);
    cgprof_report_selection_cleanup(&sel);
}
END_TEST

START_TEST(test_top_compute_deep_stack)
{
    /* 3000 frames alternating two names: no recursion limit, f counted once. */
    enum { DEPTH = 3000 };
    const char **frames = malloc(DEPTH * sizeof(*frames));
    for (int i = 0; i < DEPTH; i++)
        frames[i] = (i % 2) ? "x:f" : "x:g";
    ck_assert_int_eq(cgprof_profile_add_stack(&prof, frames, DEPTH, CGPROF_COUNTER_RUNNABLE, 9), 0);
    struct cgprof_report_top t;
    ck_assert_int_eq(cgprof_report_top_compute(&prof, CGPROF_REPORT_MASK_CPU, &t), 0);
    ck_assert_uint_eq(t.nrows, 2);
    expect(&t, "x:f", 9, 9);
    expect(&t, "x:g", 0, 9);
    cgprof_report_top_cleanup(&t);
    free(frames);
}
END_TEST

START_TEST(test_top_compute_oom_leaves_nothing)
{
    struct cgprof_report_top t;
    int failures = 0;
    add("a:a;a:b", CGPROF_COUNTER_RUNNABLE, 1);
    /* Fail each allocation in turn: ENOMEM with nothing held, or success. */
    for (long k = 0; k < 8; k++) {
        cgprof_alloc_fail_after(k);
        int rc = cgprof_report_top_compute(&prof, CGPROF_REPORT_MASK_CPU, &t);
        cgprof_alloc_fail_after(-1);
        if (rc == 0) {
            ck_assert_uint_eq(t.nrows, 2);
            cgprof_report_top_cleanup(&t);
            continue;
        }
        failures++;
        ck_assert_int_eq(rc, CGPROF_ENOMEM);
        ck_assert_ptr_null(t.rows);
        ck_assert_uint_eq(t.nrows, 0);
    }
    ck_assert_int_ge(failures, 4);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("top");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_counter_mask_names);
    tcase_add_test(tc, test_mask_describe_cpu);
    tcase_add_test(tc, test_top_compute_self_and_total);
    tcase_add_test(tc, test_top_compute_recursion_counted_once);
    tcase_add_test(tc, test_top_compute_counter_selection);
    tcase_add_test(tc, test_top_compute_seconds_from_weights);
    tcase_add_test(tc, test_weight_defaults_when_missing);
    tcase_add_test(tc, test_top_table_top_n_sorted);
    tcase_add_test(tc, test_top_text_summary_and_full_names);
    tcase_add_test(tc, test_top_compute_deep_stack);
    tcase_add_test(tc, test_top_compute_oom_leaves_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cgprof_test_run(suite());
}
