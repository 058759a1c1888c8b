/* Tests of sampler/perfmap.c: line parsing, incremental refresh with
 * partial lines, later entries winning, replaced or shrunk files, bounds,
 * OOM, and a randomised comparison with a brute-force model. */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "../../../common/common.h"
#include "../../../sampler/sampler_int.h"

bool perfmap_parse_line(const char *line, size_t len, uint64_t *start, uint64_t *size,
                        const char **name, size_t *name_len);

struct line_case {
    const char *line;
    bool ok;
    uint64_t start, size;
    const char *name;
};

static const struct line_case lines[] = {
    { "1000 20 foo", true, 0x1000, 0x20, "foo" },
    { "0x7f00aa 0x1f LazyCompile:*main /app/x.js:1:2", true, 0x7f00aa, 0x1f,
      "LazyCompile:*main /app/x.js:1:2" },
    { "ABCDEF 10 py::f:/a b.py", true, 0xabcdef, 0x10, "py::f:/a b.py" },
    { "1000\t10\ttabbed name", true, 0x1000, 0x10, "tabbed name" },
    { "  1000 10 leading", true, 0x1000, 0x10, "leading" },
    { "1000 10 crlf\r", true, 0x1000, 0x10, "crlf" },
    { "ffffffffffffffff 1 top", true, UINT64_MAX, 1, "top" },
    { "1000 0 zero_size", false, 0, 0, NULL },
    { "zzz 10 bad_start", false, 0, 0, NULL },
    { "1000 q bad_size", false, 0, 0, NULL },
    { "1000 10", false, 0, 0, NULL },
    { "1000 10 ", false, 0, 0, NULL },
    { "1000", false, 0, 0, NULL },
    { "", false, 0, 0, NULL },
    { "0x 10 x", false, 0, 0, NULL },
    { "10000000000000000 1 seventeen_digits", false, 0, 0, NULL },
    { "1000x 10 glued", false, 0, 0, NULL },
};

START_TEST(test_perfmap_parse_line_table)
{
    for (size_t i = 0; i < CGPROF_ARRAY_SIZE(lines); i++) {
        const struct line_case *c = &lines[i];
        size_t len = strlen(c->line);
        /* Guarded: the parser must not look past the line's end. */
        const char *g = cgprof_test_guarded_copy(c->line, len);
        uint64_t start = 0, size = 0;
        const char *name = NULL;
        size_t nlen = 0;
        bool ok = perfmap_parse_line(g, len, &start, &size, &name, &nlen);
        ck_assert_msg(ok == c->ok, "\"%s\": ok=%d", c->line, ok);
        if (!ok)
            continue;
        ck_assert_uint_eq(start, c->start);
        ck_assert_uint_eq(size, c->size);
        ck_assert_uint_eq(nlen, strlen(c->name));
        ck_assert(memcmp(name, c->name, nlen) == 0);
    }
}
END_TEST

static char map_path[256];

static void map_write(const char *mode, const char *text)
{
    FILE *f = fopen(map_path, mode);
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
}

static struct cgprof__perfmap *new_map(void)
{
    const char *dir = cgprof_test_tmpdir();
    ck_assert_ptr_nonnull(dir);
    snprintf(map_path, sizeof(map_path), "%s/perf-123.map", dir);
    struct cgprof__perfmap *m = cgprof__perfmap_new_path(map_path);
    ck_assert_ptr_nonnull(m);
    return m;
}

static void expect(const struct cgprof__perfmap *m, uint64_t addr, const char *name)
{
    const char *got = cgprof__perfmap_lookup(m, addr);
    if (!name)
        ck_assert_msg(got == NULL, "0x%llx: expected nothing, got %s", (unsigned long long)addr, got);
    else
        ck_assert_msg(got && strcmp(got, name) == 0, "0x%llx: expected %s, got %s",
                      (unsigned long long)addr, name, got ? got : "(null)");
}

START_TEST(test_perfmap_refresh_reads_appended_complete_lines)
{
    struct cgprof__perfmap *m = new_map();
    /* No file yet: nothing, no error. */
    ck_assert_int_eq(cgprof__perfmap_refresh(m), 0);
    expect(m, 0x1000, NULL);

    map_write("w", "1000 100 A\n2000 100 B: with spaces\n30");
    ck_assert_int_eq(cgprof__perfmap_refresh(m), 2);
    expect(m, 0xfff, NULL);
    expect(m, 0x1000, "A");
    expect(m, 0x10ff, "A");
    expect(m, 0x1100, NULL);
    expect(m, 0x2050, "B: with spaces");
    expect(m, 0x3000, NULL);       /* the partial line is not read yet */
    const char *a = cgprof__perfmap_lookup(m, 0x1000);

    map_write("a", "00 80 C\n");
    ck_assert_int_eq(cgprof__perfmap_refresh(m), 1);
    expect(m, 0x3000, "C");
    expect(m, 0x307f, "C");
    expect(m, 0x3080, NULL);
    ck_assert_int_eq(cgprof__perfmap_refresh(m), 0);
    /* Names handed out earlier stay valid across refreshes. */
    ck_assert_str_eq(a, "A");

    /* Garbage lines are skipped, the rest still read. */
    map_write("a", "not a line\n\n4000 10 D\n");
    ck_assert_int_eq(cgprof__perfmap_refresh(m), 1);
    expect(m, 0x4005, "D");
    cgprof__perfmap_free(m);
}
END_TEST

START_TEST(test_perfmap_lookup_later_entries_win)
{
    struct cgprof__perfmap *m = new_map();
    /* Within one batch: A, then B over A's tail, then C over both. */
    map_write("w", "0 1000 A\n800 1000 B\n400 500 C\n5000 100 X\n5000 100 Y\n");
    ck_assert_int_eq(cgprof__perfmap_refresh(m), 5);
    expect(m, 0x0, "A");
    expect(m, 0x3ff, "A");
    expect(m, 0x400, "C");
    expect(m, 0x850, "C");
    expect(m, 0x8ff, "C");
    expect(m, 0x900, "B");
    expect(m, 0x17ff, "B");
    expect(m, 0x1800, NULL);
    expect(m, 0x5050, "Y");

    /* Across refreshes: new code inside and across old ranges. */
    map_write("a", "100 100 N1\nf00 200 N2\n4ff0 20 N3\n");
    ck_assert_int_eq(cgprof__perfmap_refresh(m), 3);
    expect(m, 0xff, "A");
    expect(m, 0x100, "N1");
    expect(m, 0x1ff, "N1");
    expect(m, 0x200, "A");
    expect(m, 0x500, "C");
    expect(m, 0xeff, "B");
    expect(m, 0xf00, "N2");
    expect(m, 0x10ff, "N2");
    expect(m, 0x1100, "B");
    expect(m, 0x4fef, NULL);
    expect(m, 0x4ff0, "N3");
    expect(m, 0x500f, "N3");
    expect(m, 0x5010, "Y");
    cgprof__perfmap_free(m);
}
END_TEST

START_TEST(test_perfmap_refresh_rereads_replaced_or_shrunk_file)
{
    struct cgprof__perfmap *m = new_map();
    map_write("w", "1000 100 old_one\n2000 100 old_two\n");
    ck_assert_int_eq(cgprof__perfmap_refresh(m), 2);

    /* Replaced by rename (new inode), bigger than before. */
    char tmp[300];
    snprintf(tmp, sizeof(tmp), "%s.tmp", map_path);
    FILE *f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    fputs("3000 100 new_one\n4000 100 new_two\n5000 100 new_three\n", f);
    fclose(f);
    ck_assert_int_eq(rename(tmp, map_path), 0);
    ck_assert_int_eq(cgprof__perfmap_refresh(m), 3);
    expect(m, 0x1000, NULL);
    expect(m, 0x3000, "new_one");
    expect(m, 0x5000, "new_three");

    /* Same inode, shrunk (a restarted process truncated it). */
    map_write("w", "6000 10 again\n");
    ck_assert_int_eq(cgprof__perfmap_refresh(m), 1);
    expect(m, 0x3000, NULL);
    expect(m, 0x6000, "again");

    /* Deleted: entries are kept (the code may still run). */
    ck_assert_int_eq(unlink(map_path), 0);
    ck_assert_int_eq(cgprof__perfmap_refresh(m), 0);
    expect(m, 0x6000, "again");
    cgprof__perfmap_free(m);
}
END_TEST

START_TEST(test_perfmap_refresh_skips_overlong_line)
{
    struct cgprof__perfmap *m = new_map();
    size_t big = 200 * 1024;
    char *text = malloc(big + 64);
    ck_assert_ptr_nonnull(text);
    strcpy(text, "1000 10 before\n2000 10 ");
    size_t n = strlen(text);
    memset(text + n, 'x', big);
    strcpy(text + n + big, "\n3000 10 after\n");
    map_write("w", text);
    ck_assert_int_eq(cgprof__perfmap_refresh(m), 2);
    expect(m, 0x1000, "before");
    expect(m, 0x2000, NULL);
    expect(m, 0x3000, "after");
    free(text);
    cgprof__perfmap_free(m);
}
END_TEST

/* Brute force: the last line covering addr. */
struct model_line {
    uint64_t start, end;
    char name[16];
};

START_TEST(test_perfmap_lookup_matches_brute_force_model)
{
    enum { LINES = 3000, ROUNDS = 6 };
    struct model_line *ml = calloc(LINES, sizeof(*ml));
    ck_assert_ptr_nonnull(ml);
    struct cgprof__perfmap *m = new_map();
    map_write("w", "");
    size_t nl = 0;
    char buf[64];
    for (int round = 0; round < ROUNDS; round++) {
        FILE *f = fopen(map_path, "a");
        ck_assert_ptr_nonnull(f);
        size_t added = 0;
        for (int i = 0; i < LINES / ROUNDS; i++, nl++, added++) {
            ml[nl].start = 0x10000 + cgprof_random_u64() % 0x8000;
            ml[nl].end = ml[nl].start + 1 + cgprof_random_u64() % (i % 10 == 0 ? 0x2000 : 0x100);
            snprintf(ml[nl].name, sizeof(ml[nl].name), "f%zu", nl);
            snprintf(buf, sizeof(buf), "%s%llx %llx %s\n", round % 2 ? "0x" : "",
                     (unsigned long long)ml[nl].start,
                     (unsigned long long)(ml[nl].end - ml[nl].start), ml[nl].name);
            fputs(buf, f);
        }
        fclose(f);
        ck_assert_int_eq(cgprof__perfmap_refresh(m), (int)added);
        for (uint64_t a = 0xff00; a < 0x1a100; a += 7) {
            const char *want = NULL;
            for (size_t k = nl; k-- > 0;)
                if (a >= ml[k].start && a < ml[k].end) {
                    want = ml[k].name;
                    break;
                }
            expect(m, a, want);
        }
    }
    cgprof__perfmap_free(m);
    free(ml);
}
END_TEST

START_TEST(test_perfmap_refresh_retries_after_oom)
{
    struct cgprof__perfmap *m = new_map();
    map_write("w", "1000 10 a\n2000 10 b\n3000 10 c\n");
    int failed = 0;
    for (long n = 0; n < 8; n++) {
        cgprof_alloc_fail_after(n);
        int rc = cgprof__perfmap_refresh(m);
        cgprof_alloc_fail_after(-1);
        if (rc == CGPROF_ENOMEM) {
            failed++;
            expect(m, 0x1000, NULL);
            continue;
        }
        ck_assert_int_eq(rc, 3);
        break;
    }
    ck_assert_int_gt(failed, 0);
    expect(m, 0x1000, "a");
    expect(m, 0x3005, "c");
    ck_assert_int_eq(cgprof__perfmap_refresh(m), 0);
    cgprof__perfmap_free(m);
}
END_TEST

START_TEST(test_perfmap_refresh_stops_at_entry_bound_and_warns_once)
{
    struct cgprof__perfmap *m = new_map();
    FILE *f = fopen(map_path, "w");
    ck_assert_ptr_nonnull(f);
    for (unsigned i = 0; i < 1000000u + 10; i++)
        fprintf(f, "%x 10 f\n", 0x100000u + i * 16);
    fclose(f);
    char logpath[300];
    snprintf(logpath, sizeof(logpath), "%s.log", map_path);
    FILE *log = fopen(logpath, "w+");
    ck_assert_ptr_nonnull(log);
    cgprof_log_set_fd(fileno(log));
    ck_assert_int_eq(cgprof__perfmap_refresh(m), 1000000);
    expect(m, 0x100000 + 999999u * 16, "f");
    expect(m, 0x100000 + 1000000u * 16, NULL);
    map_write("a", "1 1 late\n");
    ck_assert_int_eq(cgprof__perfmap_refresh(m), 0);
    expect(m, 1, NULL);
    cgprof_log_set_fd(-1);
    rewind(log);
    char line[512];
    int warnings = 0;
    while (fgets(line, sizeof(line), log))
        warnings += strstr(line, "ignoring the rest") != NULL;
    fclose(log);
    ck_assert_int_eq(warnings, 1);
    cgprof__perfmap_free(m);
}
END_TEST

START_TEST(test_perfmap_new_uses_tmp_pid_path)
{
    struct cgprof__perfmap *m = cgprof__perfmap_new(getpid());
    ck_assert_ptr_nonnull(m);
    char path[64];
    snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)getpid());
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("abc000 100 pid_map_entry\n", f);
    fclose(f);
    int n = cgprof__perfmap_refresh(m);
    unlink(path);
    ck_assert_int_eq(n, 1);
    expect(m, 0xabc010, "pid_map_entry");
    cgprof__perfmap_free(m);
    ck_assert_int_eq(cgprof__perfmap_refresh(NULL), CGPROF_EINVAL);
    ck_assert_ptr_null(cgprof__perfmap_lookup(NULL, 1));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sampler");
    TCase *tc = tcase_create("perfmap");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_perfmap_parse_line_table);
    tcase_add_test(tc, test_perfmap_refresh_reads_appended_complete_lines);
    tcase_add_test(tc, test_perfmap_lookup_later_entries_win);
    tcase_add_test(tc, test_perfmap_refresh_rereads_replaced_or_shrunk_file);
    tcase_add_test(tc, test_perfmap_refresh_skips_overlong_line);
    tcase_add_test(tc, test_perfmap_lookup_matches_brute_force_model);
    tcase_add_test(tc, test_perfmap_refresh_retries_after_oom);
    tcase_add_test(tc, test_perfmap_refresh_stops_at_entry_bound_and_warns_once);
    tcase_add_test(tc, test_perfmap_new_uses_tmp_pid_path);
    suite_add_tcase(s, tc);
    return cgprof_test_run(s);
}
