/* Tests for report/select.c: --from/--to time parsing, scanning a
 * directory of profiles written by cgprof_profile_save_file, filtering by
 * time range and group, merging, and skipping corrupt files with a warning. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../../report/report.h"
#include "helpers.h"

#define T0 1796637600000ull /* 2026-12-07T10:00:00Z */
#define MIN 60000ull

START_TEST(test_parse_time_table)
{
    static const uint64_t now = T0 + 90 * MIN;
    static const struct {
        const char *in;
        int rc;
        uint64_t ms;
    } cases[] = {
        { "1796637600000", 0, T0 },
        { "0", 0, 0 },
        { "2026-12-07T10:00:00Z", 0, T0 },
        { "2026-12-07t10:00:00z", 0, T0 },
        { "2026-12-07 10:00:00Z", 0, T0 },
        { "2026-12-07T10:00:00.250Z", 0, T0 + 250 },
        { "2026-12-07T10:00:00.5Z", 0, T0 + 500 },
        { "2026-12-07T12:00:00+02:00", 0, T0 },
        { "2026-12-07T05:30:00-0430", 0, T0 },
        { "2026-12-07T10:00", 0, T0 },
        { "2026-12-07T10:00:00", 0, T0 },
        { "2026-12-07", 0, T0 - 600 * MIN },
        { "2024-02-29T23:59:59Z", 0, 1709251199000ull },
        { "now", 0, now },
        { "-1h", 0, now - 60 * MIN },
        { "-30m", 0, now - 30 * MIN },
        { "-45s", 0, now - 45000 },
        { "-1h30m", 0, now - 90 * MIN },
        { "-2d", 0, now - 2 * 1440 * MIN },
        { "-1w", 0, now - 7 * 1440 * MIN },
        { "-99999w", 0, 0 },           /* before the epoch clamps to 0 */
        { "", CGPROF_EINVAL, 0 },
        { "-", CGPROF_EINVAL, 0 },
        { "-1", CGPROF_EINVAL, 0 },
        { "-1x", CGPROF_EINVAL, 0 },
        { "-h", CGPROF_EINVAL, 0 },
        { "1h", CGPROF_EINVAL, 0 },
        { "yesterday", CGPROF_EINVAL, 0 },
        { "12.5", CGPROF_EINVAL, 0 },
        { "2026-13-01", CGPROF_EINVAL, 0 },
        { "2026-02-30", CGPROF_EINVAL, 0 },
        { "2025-02-29", CGPROF_EINVAL, 0 },
        { "2026-12-07T24:00:00Z", CGPROF_EINVAL, 0 },
        { "2026-12-07T10:60Z", CGPROF_EINVAL, 0 },
        { "2026-12-07T10Z", CGPROF_EINVAL, 0 },
        { "2026-12-07T10:00:00Zjunk", CGPROF_EINVAL, 0 },
        { "2026-12-07T10:00:00+25:00", CGPROF_EINVAL, 0 },
        { "2026-12-7", CGPROF_EINVAL, 0 },
        { "1969-12-31", CGPROF_EINVAL, 0 },
        { "99999999999999999999", CGPROF_EINVAL, 0 },
    };
    for (size_t i = 0; i < CGPROF_ARRAY_SIZE(cases); i++) {
        uint64_t ms = 12345;
        int rc = cgprof_report_parse_time(cases[i].in, now, &ms);
        ck_assert_msg(rc == cases[i].rc, "'%s': rc %d, expected %d", cases[i].in, rc,
                      cases[i].rc);
        if (rc == 0)
            ck_assert_msg(ms == cases[i].ms, "'%s': %llu, expected %llu", cases[i].in,
                          (unsigned long long)ms, (unsigned long long)cases[i].ms);
        else
            ck_assert_msg(ms == 12345, "'%s': output written on failure", cases[i].in);
    }
}
END_TEST

START_TEST(test_format_time_round_trip)
{
    char buf[32];
    uint64_t back = 0;
    cgprof_report_format_time(T0 + 999, buf, sizeof(buf));
    ck_assert_str_eq(buf, "2026-12-07T10:00:00Z");
    ck_assert_int_eq(cgprof_report_parse_time(buf, 0, &back), 0);
    ck_assert_uint_eq(back, T0);
}
END_TEST

/* ---- directory fixtures ------------------------------------------------ */

static char dir[256];
static char logpath[300];
static int logfd = -1;

/* Saves a profile of group with one stack "<group>:main;<leaf>" of count
 * RUNNABLE samples, covering [start, start + 1 min). */
static void save(const char *name, const char *group, uint64_t start, const char *leaf,
                 uint64_t count, uint64_t dropped)
{
    struct cgprof_profile p;
    char path[512], root[64];
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    snprintf(root, sizeof(root), "%s:main", group);
    const char *frames[] = { root, leaf };
    ck_assert_int_eq(cgprof_profile_add_stack(&p, frames, 2, CGPROF_COUNTER_RUNNABLE, count), 0);
    p.start_ms = start;
    p.end_ms = start + MIN;
    p.duration_ms = MIN;
    p.cpu_time_s = (double)count / 100.0;
    p.num_threads = 2;
    p.num_times_sampled = 60;
    p.samples_dropped = dropped;
    p.sample_weights[CGPROF_COUNTER_RUNNABLE] = 100.0;
    p.pid = 42;
    snprintf(p.group_name, sizeof(p.group_name), "%s", group);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    ck_assert_int_eq(cgprof_profile_save_file(&p, path), 0);
    cgprof_profile_cleanup(&p);
}

static void write_raw_in(const char *d, const char *name, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", d, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void write_raw(const char *name, const void *data, size_t len)
{
    write_raw_in(dir, name, data, len);
}

static void setup(void)
{
    const char *t = cgprof_test_tmpdir();
    ck_assert_ptr_nonnull(t);
    snprintf(dir, sizeof(dir), "%s", t);
    snprintf(logpath, sizeof(logpath), "%s/log", t);
    logfd = open(logpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(logfd, 0);
    cgprof_log_set_fd(logfd);
    save("alpha-1-20261207T100000Z-1.json.gz", "alpha", T0, "alpha:parse", 100, 1);
    save("alpha-1-20261207T101000Z-2.json.gz", "alpha", T0 + 10 * MIN, "alpha:compress", 300, 2);
    save("beta-2-20261207T102000Z-3.json.gz", "beta", T0 + 20 * MIN, "beta:checksum", 50, 0);
    write_raw("notes.txt", "not a profile\n", 14);
    write_raw(".alpha.tmp.json.gz", "partial", 7);
}

static void teardown(void)
{
    cgprof_log_set_fd(-1);
    if (logfd >= 0)
        close(logfd);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static const char *read_log(void)
{
    static char buf[4096];
    ssize_t n = pread(logfd, buf, sizeof(buf) - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static uint64_t leaf_count(const struct cgprof_profile *p, const char *group, const char *leaf)
{
    for (const struct cgprof_node *r = p->root.first_child; r; r = r->next_sibling) {
        if (strncmp(r->name, group, strlen(group)) != 0)
            continue;
        for (const struct cgprof_node *l = r->first_child; l; l = l->next_sibling)
            if (strcmp(l->name, leaf) == 0)
                return l->counts[CGPROF_COUNTER_RUNNABLE];
    }
    return 0;
}

START_TEST(test_select_dir_merges_all)
{
    struct cgprof_report_selection sel;
    char err[512];
    const char *paths[] = { dir };
    ck_assert_int_eq(cgprof_report_select(&sel, paths, 1, NULL, err, sizeof(err)), 0);
    ck_assert_uint_eq(sel.nprofiles, 3);
    ck_assert_uint_eq(sel.nfound, 3);
    ck_assert_uint_eq(sel.nskipped, 0);
    ck_assert_uint_eq(sel.start_ms, T0);
    ck_assert_uint_eq(sel.end_ms, T0 + 21 * MIN);
    ck_assert_uint_eq(sel.duration_ms, 3 * MIN);
    ck_assert_double_eq_tol(sel.cpu_time_s, 4.5, 1e-9);
    ck_assert_uint_eq(sel.samples_dropped, 3);
    ck_assert_double_eq_tol(sel.avg_threads, 2.0, 1e-9);
    ck_assert_str_eq(sel.groups, "alpha, beta");
    ck_assert_uint_eq(cgprof_profile_total(&sel.merged, CGPROF_COUNTER_RUNNABLE), 450);
    ck_assert_uint_eq(leaf_count(&sel.merged, "alpha", "alpha:compress"), 300);
    ck_assert_uint_eq(leaf_count(&sel.merged, "beta", "beta:checksum"), 50);
    ck_assert_str_eq(sel.merged.group_name, ""); /* two groups: none named */
    ck_assert_str_eq(read_log(), "");
    cgprof_report_selection_cleanup(&sel);
}
END_TEST

START_TEST(test_select_filters_by_time_overlap)
{
    struct cgprof_report_selection sel;
    char err[512];
    const char *paths[] = { dir };
    /* [10:05, 10:15] overlaps only the 10:10 profile. */
    struct cgprof_report_filter f = { T0 + 5 * MIN, T0 + 15 * MIN, NULL };
    ck_assert_int_eq(cgprof_report_select(&sel, paths, 1, &f, err, sizeof(err)), 0);
    ck_assert_uint_eq(sel.nprofiles, 1);
    ck_assert_uint_eq(sel.nfound, 3);
    ck_assert_uint_eq(cgprof_profile_total(&sel.merged, CGPROF_COUNTER_RUNNABLE), 300);
    ck_assert_str_eq(sel.merged.group_name, "alpha");
    cgprof_report_selection_cleanup(&sel);

    /* --from alone: a profile still running at the bound is taken. */
    struct cgprof_report_filter from = { T0 + 10 * MIN + 30000, 0, NULL };
    ck_assert_int_eq(cgprof_report_select(&sel, paths, 1, &from, err, sizeof(err)), 0);
    ck_assert_uint_eq(sel.nprofiles, 2);
    ck_assert_uint_eq(cgprof_profile_total(&sel.merged, CGPROF_COUNTER_RUNNABLE), 350);
    cgprof_report_selection_cleanup(&sel);

    /* --to alone. */
    struct cgprof_report_filter to = { 0, T0 + 30000, NULL };
    ck_assert_int_eq(cgprof_report_select(&sel, paths, 1, &to, err, sizeof(err)), 0);
    ck_assert_uint_eq(sel.nprofiles, 1);
    ck_assert_uint_eq(leaf_count(&sel.merged, "alpha", "alpha:parse"), 100);
    cgprof_report_selection_cleanup(&sel);
}
END_TEST

START_TEST(test_select_filters_by_group)
{
    struct cgprof_report_selection sel;
    char err[512];
    const char *paths[] = { dir };
    struct cgprof_report_filter f = { 0, 0, "alpha" };
    ck_assert_int_eq(cgprof_report_select(&sel, paths, 1, &f, err, sizeof(err)), 0);
    ck_assert_uint_eq(sel.nprofiles, 2);
    ck_assert_str_eq(sel.groups, "alpha");
    ck_assert_str_eq(sel.merged.group_name, "alpha");
    ck_assert_uint_eq(cgprof_profile_total(&sel.merged, CGPROF_COUNTER_RUNNABLE), 400);
    ck_assert_uint_eq(leaf_count(&sel.merged, "beta", "beta:checksum"), 0);
    cgprof_report_selection_cleanup(&sel);

    struct cgprof_report_filter none = { 0, 0, "gamma" };
    ck_assert_int_eq(cgprof_report_select(&sel, paths, 1, &none, err, sizeof(err)),
                     CGPROF_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(err, "3 profiles in "));
    ck_assert_ptr_nonnull(strstr(err, "none matching --group gamma"));
    cgprof_report_selection_cleanup(&sel);
}
END_TEST

START_TEST(test_select_corrupt_file_skipped_with_warning)
{
    struct cgprof_report_selection sel;
    char err[512];
    const char *paths[] = { dir };
    write_raw("broken-1-x-9.json.gz", "\x1f\x8bgarbage, not gzip", 19);
    write_raw("plain.json", "{\"start\": oops", 14);
    ck_assert_int_eq(cgprof_report_select(&sel, paths, 1, NULL, err, sizeof(err)), 0);
    ck_assert_uint_eq(sel.nprofiles, 3);
    ck_assert_uint_eq(sel.nskipped, 2);
    const char *log = read_log();
    ck_assert_msg(strstr(log, "cgprof: skipping ") && strstr(log, "broken-1-x-9.json.gz: "),
                  "log: %s", log);
    ck_assert_ptr_nonnull(strstr(log, "plain.json: "));
    ck_assert_ptr_null(strstr(log, "notes.txt"));
    ck_assert_ptr_null(strstr(log, ".alpha.tmp"));
    cgprof_report_selection_cleanup(&sel);
}
END_TEST

START_TEST(test_select_named_file)
{
    struct cgprof_report_selection sel;
    char err[512], path[512];
    snprintf(path, sizeof(path), "%s/beta-2-20261207T102000Z-3.json.gz", dir);
    const char *paths[] = { path };
    ck_assert_int_eq(cgprof_report_select(&sel, paths, 1, NULL, err, sizeof(err)), 0);
    ck_assert_uint_eq(sel.nprofiles, 1);
    ck_assert_uint_eq(cgprof_profile_total(&sel.merged, CGPROF_COUNTER_RUNNABLE), 50);
    cgprof_report_selection_cleanup(&sel);
}
END_TEST

START_TEST(test_select_empty_dir_explains)
{
    struct cgprof_report_selection sel;
    char err[512], empty[300];
    snprintf(empty, sizeof(empty), "%s/empty", dir);
    ck_assert_int_eq(cgprof_mkdir_p(empty, 0700), 0);
    const char *paths[] = { empty };
    ck_assert_int_eq(cgprof_report_select(&sel, paths, 1, NULL, err, sizeof(err)),
                     CGPROF_ENOTFOUND);
    char want[400];
    snprintf(want, sizeof(want), "no profiles found in %s (", empty);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "err: %s", err);
    ck_assert_ptr_nonnull(strstr(err, "LD_PRELOAD=libcgprof.so"));
    cgprof_report_selection_cleanup(&sel);
}
END_TEST

START_TEST(test_select_only_corrupt_files)
{
    struct cgprof_report_selection sel;
    char err[512], sub[300];
    snprintf(sub, sizeof(sub), "%s/bad", dir);
    ck_assert_int_eq(cgprof_mkdir_p(sub, 0700), 0);
    write_raw_in(sub, "x.json.gz", "zz", 2);
    const char *paths[] = { sub };
    ck_assert_int_eq(cgprof_report_select(&sel, paths, 1, NULL, err, sizeof(err)),
                     CGPROF_ENOTFOUND);
    ck_assert_msg(strstr(err, "no readable profiles in ") && strstr(err, "1 file skipped"),
                  "err: %s", err);
    cgprof_report_selection_cleanup(&sel);
}
END_TEST

START_TEST(test_select_missing_path)
{
    struct cgprof_report_selection sel;
    char err[512], missing[300];
    snprintf(missing, sizeof(missing), "%s/nope", dir);
    const char *paths[] = { dir, missing };
    int rc = cgprof_report_select(&sel, paths, 2, NULL, err, sizeof(err));
    ck_assert_int_lt(rc, 0);
    ck_assert_int_ne(rc, CGPROF_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(err, "cannot read "));
    ck_assert_ptr_nonnull(strstr(err, "/nope: "));
    cgprof_report_selection_cleanup(&sel);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("select");
    tcase_add_test(tc, test_parse_time_table);
    tcase_add_test(tc, test_format_time_round_trip);
    suite_add_tcase(s, tc);
    TCase *dirs = tcase_create("select_dir");
    tcase_add_checked_fixture(dirs, setup, teardown);
    tcase_add_test(dirs, test_select_dir_merges_all);
    tcase_add_test(dirs, test_select_filters_by_time_overlap);
    tcase_add_test(dirs, test_select_filters_by_group);
    tcase_add_test(dirs, test_select_corrupt_file_skipped_with_warning);
    tcase_add_test(dirs, test_select_named_file);
    tcase_add_test(dirs, test_select_empty_dir_explains);
    tcase_add_test(dirs, test_select_only_corrupt_files);
    tcase_add_test(dirs, test_select_missing_path);
    suite_add_tcase(s, dirs);
    return s;
}

int main(void)
{
    return cgprof_test_run(suite());
}
