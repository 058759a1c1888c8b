/* Unit tests for uploader/spool.c: names carry the profileToken, writes
 * are atomic, claims are exclusive (flock) and ordered oldest first,
 * delivered files are deleted and released ones kept, the size and age
 * caps drop the oldest with a log line, an unwritable directory is an
 * error, not a crash, and cgprof_spool_drain (for `cgprof upload`) visits
 * each file once, oldest first, deleting delivered and rejected ones,
 * keeping the rest, and skipping files another process holds. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "../../../uploader/uploader_int.h"

static int count_suffix(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name), s = strlen(suffix);
        n += l > s && strcmp(de->d_name + l - s, suffix) == 0;
    }
    closedir(d);
    return n;
}

START_TEST(test_spool_put_claim_done)
{
    const char *out = cgprof_test_tmpdir();
    struct cgprof__spool s;
    ck_assert_int_eq(cgprof__spool_init(&s, out, "My Group/x", 1 << 20, 3600000), 0);
    char want_dir[512];
    snprintf(want_dir, sizeof(want_dir), "%s/spool/My_Group_x", out);
    ck_assert_str_eq(s.dir, want_dir);
    ck_assert_int_eq(cgprof__spool_count(&s), 0);
    struct cgprof__spool_entry e;
    ck_assert_int_eq(cgprof__spool_claim(&s, "", &e), CGPROF_ENOTFOUND);
    char p1[1400], p2[1400];
    ck_assert_int_eq(cgprof__spool_put(&s, "11111111-aaaa-4aaa-8aaa-111111111111", "gz-one", 6,
                                       p1, sizeof(p1)), 0);
    usleep(2000);
    ck_assert_int_eq(cgprof__spool_put(&s, "22222222-bbbb-4bbb-8bbb-222222222222", "gz-two", 6,
                                       p2, sizeof(p2)), 0);
    ck_assert_ptr_nonnull(strstr(p1, "-11111111-aaaa-4aaa-8aaa-111111111111.json.gz"));
    ck_assert_int_eq(cgprof__spool_count(&s), 2);
    ck_assert_int_eq(count_suffix(s.dir, ".json.gz"), 2);   /* no temp files left */
    struct stat st;
    ck_assert_int_eq(stat(s.dir, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0700);

    /* Oldest first; while claimed, nobody else (another open file
     * description, as another process would have) gets it. */
    ck_assert_int_eq(cgprof__spool_claim(&s, "", &e), 0);
    ck_assert_str_eq(e.token, "11111111-aaaa-4aaa-8aaa-111111111111");
    ck_assert_uint_eq(e.gz.len, 6);
    ck_assert_int_eq(memcmp(e.gz.data, "gz-one", 6), 0);
    struct cgprof__spool_entry e2;
    ck_assert_int_eq(cgprof__spool_claim(&s, "", &e2), 0);
    ck_assert_str_eq(e2.token, "22222222-bbbb-4bbb-8bbb-222222222222");
    struct cgprof__spool_entry e3;
    ck_assert_int_eq(cgprof__spool_claim(&s, "", &e3), CGPROF_ENOTFOUND);
    cgprof__spool_release(&e2);                 /* not delivered: kept */
    cgprof__spool_done(&e);                     /* delivered: deleted */
    ck_assert_int_eq(cgprof__spool_count(&s), 1);
    ck_assert_int_eq(access(p1, F_OK), -1);
    ck_assert_int_eq(access(p2, F_OK), 0);
    ck_assert_int_eq(cgprof__spool_claim(&s, "", &e), 0);
    ck_assert_str_eq(e.token, "22222222-bbbb-4bbb-8bbb-222222222222");
    /* skip_after iterates past a file */
    const char *base = strrchr(p2, '/') + 1;
    ck_assert_int_eq(cgprof__spool_claim(&s, base, &e3), CGPROF_ENOTFOUND);
    cgprof__spool_done(&e);
    ck_assert_int_eq(cgprof__spool_count(&s), 0);
}
END_TEST

START_TEST(test_spool_caps_drop_oldest)
{
    const char *out = cgprof_test_tmpdir();
    struct cgprof__spool s;
    ck_assert_int_eq(cgprof__spool_init(&s, out, "g", 2500, 3600000), 0);
    char buf[1000];
    memset(buf, 'x', sizeof(buf));
    char first[1400], last[1400];
    for (int i = 0; i < 5; i++) {
        char tok[40];
        snprintf(tok, sizeof(tok), "tok-%d", i);
        ck_assert_int_eq(cgprof__spool_put(&s, tok, buf, sizeof(buf), i ? last : first, 1400), 0);
        usleep(2000);
    }
    ck_assert_int_eq(cgprof__spool_count(&s), 2);    /* 2 x 1000 <= 2500 */
    ck_assert_int_eq(access(first, F_OK), -1);
    ck_assert_int_eq(access(last, F_OK), 0);
    /* Age: a file named 10 hours ago goes, newer ones stay. */
    char old[1500];
    snprintf(old, sizeof(old), "%s/%013llu-old-token.json.gz", s.dir,
             (unsigned long long)(cgprof_epoch_ms() - 36000000ull));
    FILE *f = fopen(old, "w");
    fputs("x", f);
    fclose(f);
    /* Foreign files are left alone. */
    char other[1500];
    snprintf(other, sizeof(other), "%s/README", s.dir);
    f = fopen(other, "w");
    fputs("keep", f);
    fclose(f);
    s.max_bytes = 0;
    ck_assert_int_eq(cgprof__spool_trim(&s), 1);
    ck_assert_int_eq(access(old, F_OK), -1);
    ck_assert_int_eq(access(other, F_OK), 0);
    ck_assert_int_eq(cgprof__spool_count(&s), 2);
}
END_TEST

START_TEST(test_spool_unwritable)
{
    const char *out = cgprof_test_tmpdir();
    char ro[512];
    snprintf(ro, sizeof(ro), "%s/ro", out);
    ck_assert_int_eq(mkdir(ro, 0500), 0);
    struct cgprof__spool s;
    ck_assert_int_eq(cgprof__spool_init(&s, ro, "g", 1 << 20, 3600000), 0);
    if (geteuid() == 0) {
        /* root ignores permissions: make the path a file instead. */
        snprintf(ro, sizeof(ro), "%s/file", out);
        FILE *f = fopen(ro, "w");
        fclose(f);
        ck_assert_int_eq(cgprof__spool_init(&s, ro, "g", 1 << 20, 3600000), 0);
    }
    ck_assert_int_lt(cgprof__spool_put(&s, "t", "x", 1, NULL, 0), 0);
    ck_assert(s.warned_write);
    ck_assert_int_lt(cgprof__spool_put(&s, "t", "x", 1, NULL, 0), 0);
    ck_assert_int_eq(cgprof__spool_count(&s), 0);
    ck_assert_int_eq(cgprof__spool_put(&s, "a/b", "x", 1, NULL, 0), CGPROF_EINVAL);
    ck_assert_int_eq(cgprof__spool_init(&s, "", "g", 1, 1), CGPROF_EINVAL);
}
END_TEST

struct drain_log {
    char tokens[8][64];
    unsigned n;
    enum cgprof_spool_verdict answer[8];
    unsigned last_total;
};

static enum cgprof_spool_verdict drain_cb(void *ctx, const char *token, const void *gz,
                                          size_t len, unsigned index, unsigned total)
{
    struct drain_log *l = ctx;
    ck_assert_uint_lt(l->n, 8);
    ck_assert_uint_eq(index, l->n);
    ck_assert_uint_eq(len, 4);
    ck_assert_mem_eq(gz, "data", 4);
    snprintf(l->tokens[l->n], sizeof(l->tokens[0]), "%s", token);
    l->last_total = total;
    return l->answer[l->n++];
}

START_TEST(test_spool_drain)
{
    const char *out = cgprof_test_tmpdir();
    struct cgprof__spool s;
    ck_assert_int_eq(cgprof__spool_init(&s, out, "G", 1 << 20, 3600000), 0);
    const char *toks[] = { "tok-a", "tok-b", "tok-c", "tok-d" };
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(cgprof__spool_put(&s, toks[i], "data", 4, NULL, 0), 0);
        usleep(2000);   /* distinct epoch-ms prefixes: a stable order */
    }
    /* Another process holds tok-b: skipped, left alone. */
    struct cgprof__spool_entry held;
    ck_assert_int_eq(cgprof__spool_claim(&s, "", &held), 0);
    ck_assert_str_eq(held.token, "tok-a");
    struct drain_log l = { .answer = { CGPROF_SPOOL_DELIVERED, CGPROF_SPOOL_REJECTED,
                                       CGPROF_SPOOL_KEEP } };
    unsigned d = 9, r = 9, k = 9;
    ck_assert_int_eq(cgprof_spool_drain(s.dir, drain_cb, &l, &d, &r, &k), 0);
    ck_assert_uint_eq(l.n, 3);
    ck_assert_str_eq(l.tokens[0], "tok-b");
    ck_assert_str_eq(l.tokens[1], "tok-c");
    ck_assert_str_eq(l.tokens[2], "tok-d");
    ck_assert_uint_eq(l.last_total, 4);
    ck_assert_uint_eq(d, 1);
    ck_assert_uint_eq(r, 1);
    ck_assert_uint_eq(k, 1);
    ck_assert_int_eq(cgprof_spool_count_dir(s.dir), 2);     /* tok-a (held), tok-d (kept) */
    cgprof__spool_release(&held);
    /* STOP ends the walk and keeps the rest. */
    struct drain_log l2 = { .answer = { CGPROF_SPOOL_STOP } };
    ck_assert_int_eq(cgprof_spool_drain(s.dir, drain_cb, &l2, &d, &r, &k), 0);
    ck_assert_uint_eq(l2.n, 1);
    ck_assert_str_eq(l2.tokens[0], "tok-a");
    ck_assert_uint_eq(d + r, 0);
    ck_assert_int_eq(cgprof_spool_count_dir(s.dir), 2);
    /* A missing directory is an empty spool; bad arguments are errors. */
    char none[600];
    snprintf(none, sizeof(none), "%s/none", out);
    ck_assert_int_eq(cgprof_spool_drain(none, drain_cb, &l2, &d, &r, &k), 0);
    ck_assert_uint_eq(d + r + k, 0);
    ck_assert_int_eq(cgprof_spool_drain(NULL, drain_cb, &l2, NULL, NULL, NULL), CGPROF_EINVAL);
}
END_TEST

static Suite *spool_suite(void)
{
    Suite *s = suite_create("uploader");
    TCase *tc = tcase_create("spool");
    tcase_add_test(tc, test_spool_put_claim_done);
    tcase_add_test(tc, test_spool_caps_drop_oldest);
    tcase_add_test(tc, test_spool_unwritable);
    tcase_add_test(tc, test_spool_drain);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cgprof_test_run(spool_suite());
}
