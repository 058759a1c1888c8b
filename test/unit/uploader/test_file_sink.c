/* Unit tests for uploader/file_sink.c: file naming, atomic writes (no temp
 * files left), directory creation, the size cap (oldest deleted first, the
 * newest kept, other files untouched) and unwritable directories. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "../../../uploader/uploader.h"

static void sample(struct cgprof_profile *p, const char *group, uint64_t start)
{
    ck_assert_int_eq(cgprof_profile_init(p), 0);
    p->start_ms = start;
    p->end_ms = start + 60000;
    p->pid = 4242;
    snprintf(p->group_name, sizeof(p->group_name), "%s", group);
    char leaf[32];
    for (int i = 0; i < 50; i++) {
        snprintf(leaf, sizeof(leaf), "leaf_%d_%llu", i, (unsigned long long)start);
        const char *s[] = { "main", leaf };
        ck_assert_int_eq(cgprof_profile_add_stack(p, s, 2, CGPROF_COUNTER_RUNNABLE, 1), 0);
    }
}

static int count_files(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.' && strstr(de->d_name, needle))
            n++;
    closedir(d);
    return n;
}

static off_t file_size(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_size;
}

static const struct name_case {
    const char *group;
    uint64_t start;
    const char *want;
} name_cases[] = {
    { "MyGroup", 1700000000123ull, "MyGroup-4242-20231114T221320Z-1700000000123.json.gz" },
    { "my group/../x", 1700000000123ull, "my_group_.._x-4242-20231114T221320Z-1700000000123.json.gz" },
    { "", 1000ull, "profile-4242-19700101T000001Z-1000.json.gz" },
    { "caf\xc3\xa9.v1_2-3", 86400000ull, "caf__.v1_2-3-4242-19700102T000000Z-86400000.json.gz" },
};

START_TEST(test_file_sink_naming)
{
    const struct name_case *t = &name_cases[_i];
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/a/b/c", cgprof_test_tmpdir()); /* created */
    struct cgprof_profile p, q;
    sample(&p, t->group, t->start);
    char out[512];
    ck_assert_int_eq(cgprof_file_sink_write(&p, dir, 0, out, sizeof(out)), 0);
    char want[512];
    snprintf(want, sizeof(want), "%s/%s", dir, t->want);
    ck_assert_str_eq(out, want);
    struct stat st;
    ck_assert_int_eq(stat(dir, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0755 & ~(unsigned)umask(022));
    ck_assert_int_eq(cgprof_profile_init(&q), 0);
    ck_assert_int_eq(cgprof_profile_load_file(&q, out), 0);
    ck_assert_str_eq(q.group_name, t->group);
    ck_assert_uint_eq(q.start_ms, t->start);
    ck_assert_uint_eq(cgprof_profile_total(&q, CGPROF_COUNTER_RUNNABLE), 50);
    ck_assert_int_eq(count_files(dir, ".tmp."), 0);
    ck_assert_int_eq(count_files(dir, ".json.gz"), 1);
    cgprof_profile_cleanup(&p);
    cgprof_profile_cleanup(&q);
}
END_TEST

START_TEST(test_file_sink_trailing_slash_and_no_path_out)
{
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/", cgprof_test_tmpdir());
    struct cgprof_profile p;
    sample(&p, "g", 1700000000000ull);
    ck_assert_int_eq(cgprof_file_sink_write(&p, dir, 0, NULL, 0), 0);
    char path[512];
    snprintf(path, sizeof(path), "%sg-4242-20231114T221320Z-1700000000000.json.gz", dir);
    ck_assert_int_gt(file_size(path), 0);
    /* a path_out that is too small fails before writing anything else */
    cgprof_profile_cleanup(&p);
    sample(&p, "g", 1700000001000ull);
    char small[8];
    ck_assert_int_eq(cgprof_file_sink_write(&p, dir, 0, small, sizeof(small)), CGPROF_ETOOBIG);
    ck_assert_int_eq(count_files(dir, ".json.gz"), 1);
    ck_assert_int_eq(cgprof_file_sink_write(NULL, dir, 0, NULL, 0), CGPROF_EINVAL);
    ck_assert_int_eq(cgprof_file_sink_write(&p, "", 0, NULL, 0), CGPROF_EINVAL);
    cgprof_profile_cleanup(&p);
}
END_TEST

/* Writes 6 profiles with increasing mtimes; with a cap of about 2.5
 * files, the 3 oldest go (one log line), the newest stay, and files that
 * are not profiles are never touched. */
START_TEST(test_file_sink_size_cap)
{
    const char *dir = cgprof_test_tmpdir();
    char other[256];
    snprintf(other, sizeof(other), "%s/notes.txt", dir);
    FILE *f = fopen(other, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 10000; i++)
        fputs("not a profile ", f);
    fclose(f);

    char logpath[256];
    snprintf(logpath, sizeof(logpath), "%s/log", cgprof_test_tmpdir());
    int logfd = open(logpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(logfd, 0);
    cgprof_log_set_fd(logfd);
    cgprof_log_set_level(CGPROF_LOG_INFO);
    char paths[6][512];
    off_t size = 0;
    for (int i = 0; i < 6; i++) {
        struct cgprof_profile p;
        sample(&p, "cap", 1700000000000ull + (uint64_t)i * 1000);
        /* sizes are near-identical; the first one calibrates the cap */
        size_t cap = i < 3 ? 0 : (size_t)(size * 5 / 2);
        ck_assert_int_eq(cgprof_file_sink_write(&p, dir, cap, paths[i], sizeof(paths[i])), 0);
        if (i == 0)
            size = file_size(paths[0]);
        /* mtimes 10 s apart, oldest first, whatever the clock resolution */
        struct timespec ts[2] = { { 1000000 + i * 10, 0 }, { 1000000 + i * 10, 0 } };
        ck_assert_int_eq(utimensat(AT_FDCWD, paths[i], ts, 0), 0);
        cgprof_profile_cleanup(&p);
    }
    /* after the 4th: 4 files > 2.5 → the 2 oldest deleted; 5th: 3 → 1 more;
     * 6th: 3 → 1 more. Left: the 2 newest. */
    ck_assert_int_eq(count_files(dir, ".json.gz"), 2);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(access(paths[i], F_OK), -1);
    ck_assert_int_eq(access(paths[4], F_OK), 0);
    ck_assert_int_eq(access(paths[5], F_OK), 0);
    ck_assert_int_eq(access(other, F_OK), 0);
    ck_assert_int_eq(count_files(dir, ".tmp."), 0);
    /* one line per write that deleted something, with the count */
    cgprof_log_set_fd(-1);
    char log[4096] = "";
    ck_assert_int_gt(pread(logfd, log, sizeof(log) - 1, 0), 0);
    close(logfd);
    ck_assert_ptr_nonnull(strstr(log, "cgprof: file sink: deleted 2 oldest profile(s)"));
    char *second = strstr(log, "deleted 1 oldest");
    ck_assert_ptr_nonnull(second);
    ck_assert_ptr_nonnull(strstr(second + 1, "deleted 1 oldest"));
}
END_TEST

/* A cap smaller than one profile still keeps the one just written. */
START_TEST(test_file_sink_cap_keeps_newest)
{
    const char *dir = cgprof_test_tmpdir();
    char paths[3][512];
    for (int i = 0; i < 3; i++) {
        struct cgprof_profile p;
        sample(&p, "tiny", 1700000000000ull + (uint64_t)i);
        ck_assert_int_eq(cgprof_file_sink_write(&p, dir, 10, paths[i], sizeof(paths[i])), 0);
        cgprof_profile_cleanup(&p);
    }
    ck_assert_int_eq(count_files(dir, ".json.gz"), 1);
    ck_assert_int_eq(access(paths[2], F_OK), 0);
}
END_TEST

START_TEST(test_file_sink_unwritable)
{
    const char *base = cgprof_test_tmpdir();
    struct cgprof_profile p;
    sample(&p, "nope", 1700000000000ull);
    /* a regular file where a directory should be */
    char file[256], dir[300];
    snprintf(file, sizeof(file), "%s/plainfile", base);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    snprintf(dir, sizeof(dir), "%s/sub", file);
    char out[512] = "untouched";
    ck_assert_int_eq(cgprof_file_sink_write(&p, dir, 0, out, sizeof(out)), -ENOTDIR);
    ck_assert_str_eq(out, "untouched");
    ck_assert_int_lt(cgprof_file_sink_write(&p, file, 0, NULL, 0), 0);
    /* a directory without write permission (root ignores modes) */
    char ro[256];
    snprintf(ro, sizeof(ro), "%s/ro", base);
    ck_assert_int_eq(mkdir(ro, 0500), 0);
    int rc = cgprof_file_sink_write(&p, ro, 0, NULL, 0);
    if (geteuid() != 0) {
        ck_assert_int_eq(rc, -EACCES);
        ck_assert_int_eq(count_files(ro, ""), 0);
    }
    chmod(ro, 0700);
    cgprof_profile_cleanup(&p);
}
END_TEST

static Suite *sink_suite(void)
{
    Suite *s = suite_create("uploader");
    TCase *tc = tcase_create("file_sink");
    tcase_add_loop_test(tc, test_file_sink_naming, 0, (int)CGPROF_ARRAY_SIZE(name_cases));
    tcase_add_test(tc, test_file_sink_trailing_slash_and_no_path_out);
    tcase_add_test(tc, test_file_sink_size_cap);
    tcase_add_test(tc, test_file_sink_cap_keeps_newest);
    tcase_add_test(tc, test_file_sink_unwritable);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cgprof_test_run(sink_suite());
}
