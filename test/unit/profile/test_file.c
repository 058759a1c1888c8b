/* Unit tests for profile/file.c: gzip'd save and load, plain JSON files,
 * detection by magic bytes rather than name, and error paths. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "../../../profile/profile.h"

static void sample(struct cgprof_profile *p)
{
    ck_assert_int_eq(cgprof_profile_init(p), 0);
    p->start_ms = 1700000000000ull;
    p->end_ms = 1700000060000ull;
    p->pid = 77;
    snprintf(p->group_name, sizeof(p->group_name), "files");
    p->sample_weights[CGPROF_COUNTER_RUNNABLE] = 100;
    const char *s[] = { "main", "work" };
    ck_assert_int_eq(cgprof_profile_add_stack(p, s, 2, CGPROF_COUNTER_RUNNABLE, 42), 0);
}

static char *encode(const struct cgprof_profile *p)
{
    struct cgprof_buf b;
    cgprof_buf_init(&b, 1 << 20);
    ck_assert_int_eq(cgprof_profile_encode_codeguru(p, &b), 0);
    return b.data;
}

static void write_raw(const char *path, const void *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(d, 1, n, f), n);
    fclose(f);
}

START_TEST(test_save_load_round_trip)
{
    const char *dir = cgprof_test_tmpdir();
    char path[256];
    snprintf(path, sizeof(path), "%s/p.json.gz", dir);
    struct cgprof_profile p, q;
    sample(&p);
    ck_assert_int_eq(cgprof_profile_save_file(&p, path), 0);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fgetc(f), 0x1f);
    ck_assert_int_eq(fgetc(f), 0x8b);
    fclose(f);
    ck_assert_int_eq(cgprof_profile_init(&q), 0);
    ck_assert_int_eq(cgprof_profile_load_file(&q, path), 0);
    char *a = encode(&p), *b = encode(&q);
    ck_assert_str_eq(a, b);
    ck_assert_uint_eq(cgprof_profile_total(&q, CGPROF_COUNTER_RUNNABLE), 42);
    ck_assert_str_eq(q.group_name, "files");
    /* only the final file is left, no temp file */
    DIR *d = opendir(dir);
    struct dirent *de;
    int files = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        files++;
        ck_assert_str_eq(de->d_name, "p.json.gz");
    }
    closedir(d);
    ck_assert_int_eq(files, 1);
    /* saving again replaces the file */
    p.pid = 78;
    ck_assert_int_eq(cgprof_profile_save_file(&p, path), 0);
    cgprof_profile_cleanup(&q);
    ck_assert_int_eq(cgprof_profile_init(&q), 0);
    ck_assert_int_eq(cgprof_profile_load_file(&q, path), 0);
    ck_assert_int_eq(q.pid, 78);
    cgprof_free(a);
    cgprof_free(b);
    cgprof_profile_cleanup(&p);
    cgprof_profile_cleanup(&q);
}
END_TEST

/* Plain JSON loads whatever the name; gzip is recognized by its magic. */
START_TEST(test_load_detects_format)
{
    const char *dir = cgprof_test_tmpdir();
    char plain[256], disguised[256];
    snprintf(plain, sizeof(plain), "%s/plain.json.gz", dir);
    snprintf(disguised, sizeof(disguised), "%s/gz.json", dir);
    struct cgprof_profile p, q;
    sample(&p);
    char *json = encode(&p);
    write_raw(plain, json, strlen(json));
    ck_assert_int_eq(cgprof_profile_save_file(&p, disguised), 0);
    ck_assert_int_eq(cgprof_profile_init(&q), 0);
    ck_assert_int_eq(cgprof_profile_load_file(&q, plain), 0);
    ck_assert_uint_eq(cgprof_profile_total(&q, CGPROF_COUNTER_RUNNABLE), 42);
    cgprof_profile_cleanup(&q);
    ck_assert_int_eq(cgprof_profile_init(&q), 0);
    ck_assert_int_eq(cgprof_profile_load_file(&q, disguised), 0);
    ck_assert_uint_eq(cgprof_profile_total(&q, CGPROF_COUNTER_RUNNABLE), 42);
    cgprof_profile_cleanup(&q);
    cgprof_free(json);
    cgprof_profile_cleanup(&p);
}
END_TEST

START_TEST(test_load_errors)
{
    cgprof_log_set_level(CGPROF_LOG_OFF);
    const char *dir = cgprof_test_tmpdir();
    char path[256];
    struct cgprof_profile q;
    ck_assert_int_eq(cgprof_profile_init(&q), 0);

    snprintf(path, sizeof(path), "%s/missing.json.gz", dir);
    ck_assert_int_eq(cgprof_profile_load_file(&q, path), -ENOENT);

    snprintf(path, sizeof(path), "%s/garbage.json", dir);
    write_raw(path, "not json at all", 15);
    ck_assert_int_eq(cgprof_profile_load_file(&q, path), CGPROF_EJSON);

    snprintf(path, sizeof(path), "%s/empty.json", dir);
    write_raw(path, "", 0);
    ck_assert_int_eq(cgprof_profile_load_file(&q, path), CGPROF_EJSON);

    snprintf(path, sizeof(path), "%s/bad.json.gz", dir);
    static const unsigned char badgz[] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff };
    write_raw(path, badgz, sizeof(badgz));
    ck_assert_int_eq(cgprof_profile_load_file(&q, path), CGPROF_EZLIB);

    /* valid gzip around invalid JSON */
    struct cgprof_buf z;
    cgprof_buf_init(&z, 1 << 20);
    ck_assert_int_eq(cgprof_gzip("{\"callgraph\": 3}", 16, &z), 0);
    snprintf(path, sizeof(path), "%s/badjson.json.gz", dir);
    write_raw(path, z.data, z.len);
    ck_assert_int_eq(cgprof_profile_load_file(&q, path), CGPROF_EJSON);
    cgprof_buf_cleanup(&z);

    /* a directory is not a profile */
    ck_assert_int_lt(cgprof_profile_load_file(&q, dir), 0);
    ck_assert_uint_eq(q.node_count, 0);
    cgprof_profile_cleanup(&q);
}
END_TEST

START_TEST(test_save_errors)
{
    struct cgprof_profile p;
    sample(&p);
    ck_assert_int_eq(cgprof_profile_save_file(&p, "/nonexistent-dir-cgprof/x.json.gz"), -ENOENT);
    char path[256];
    snprintf(path, sizeof(path), "%s/file", cgprof_test_tmpdir());
    write_raw(path, "x", 1);
    char below[300];
    snprintf(below, sizeof(below), "%s/sub.json.gz", path);
    ck_assert_int_eq(cgprof_profile_save_file(&p, below), -ENOTDIR);
    cgprof_profile_cleanup(&p);
}
END_TEST

static Suite *file_suite(void)
{
    Suite *s = suite_create("profile");
    TCase *tc = tcase_create("file");
    tcase_add_test(tc, test_save_load_round_trip);
    tcase_add_test(tc, test_load_detects_format);
    tcase_add_test(tc, test_load_errors);
    tcase_add_test(tc, test_save_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cgprof_test_run(file_suite());
}
