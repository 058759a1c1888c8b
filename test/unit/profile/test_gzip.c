/* Unit tests for profile/gzip.c: round trips checked against zlib's own
 * gz* file reader, concatenated members, corrupt and truncated input, and
 * the output bound. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "helpers.h"
#include "../../../profile/profile.h"

static unsigned char *make_data(size_t n, int compressible)
{
    unsigned char *d = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(d);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        d[i] = compressible ? (unsigned char)("profile;frame "[i % 14]) : (unsigned char)(x >> 16);
    }
    return d;
}

static const struct size_case {
    size_t n;
    int compressible;
} sizes[] = {
    { 0, 1 }, { 1, 1 }, { 100, 0 }, { 16384, 1 }, { 16385, 0 }, { 300000, 0 }, { 3000000, 1 },
};

START_TEST(test_gzip_round_trip)
{
    const struct size_case *t = &sizes[_i];
    unsigned char *d = make_data(t->n, t->compressible);
    struct cgprof_buf z, u;
    cgprof_buf_init(&z, 64u << 20);
    cgprof_buf_init(&u, 64u << 20);
    ck_assert_int_eq(cgprof_gzip(d, t->n, &z), 0);
    ck_assert_uint_ge(z.len, 18);
    ck_assert_int_eq((unsigned char)z.data[0], 0x1f);
    ck_assert_int_eq((unsigned char)z.data[1], 0x8b);
    if (t->compressible && t->n > 1000)
        ck_assert_uint_lt(z.len, t->n / 10);
    ck_assert_int_eq(cgprof_gunzip(z.data, z.len, &u), 0);
    ck_assert_uint_eq(u.len, t->n);
    if (t->n)
        ck_assert_int_eq(memcmp(u.data, d, t->n), 0);

    /* an independent reader (zlib's gz* API) agrees */
    char path[128];
    snprintf(path, sizeof(path), "%s/x.gz", cgprof_test_tmpdir());
    FILE *f = fopen(path, "wb");
    ck_assert_uint_eq(fwrite(z.data, 1, z.len, f), z.len);
    fclose(f);
    gzFile g = gzopen(path, "rb");
    ck_assert_ptr_nonnull(g);
    unsigned char *back = malloc(t->n + 16);
    int got = gzread(g, back, (unsigned)t->n + 16);
    gzclose(g);
    ck_assert_int_eq(got, (int)t->n);
    if (t->n)
        ck_assert_int_eq(memcmp(back, d, t->n), 0);
    free(back);
    remove(path);
    cgprof_buf_cleanup(&z);
    cgprof_buf_cleanup(&u);
    free(d);
}
END_TEST

START_TEST(test_gunzip_concatenated_members)
{
    struct cgprof_buf z, u;
    cgprof_buf_init(&z, 1 << 20);
    cgprof_buf_init(&u, 1 << 20);
    ck_assert_int_eq(cgprof_gzip("hello ", 6, &z), 0);
    ck_assert_int_eq(cgprof_gzip("world", 5, &z), 0); /* appends a member */
    ck_assert_int_eq(cgprof_buf_appends(&u, ">"), 0);
    ck_assert_int_eq(cgprof_gunzip(z.data, z.len, &u), 0);
    ck_assert_str_eq(u.data, ">hello world");
    cgprof_buf_cleanup(&z);
    cgprof_buf_cleanup(&u);
}
END_TEST

enum corrupt_kind { FLIP_MIDDLE, FLIP_CRC, TRUNCATE_HALF, TRUNCATE_LAST, TRAILING_GARBAGE,
                    NOT_GZIP, EMPTY, HEADER_ONLY, BAD_METHOD };

START_TEST(test_gunzip_corrupt)
{
    cgprof_log_set_level(CGPROF_LOG_OFF);
    unsigned char *d = make_data(50000, 0);
    struct cgprof_buf z, u;
    cgprof_buf_init(&z, 1 << 20);
    cgprof_buf_init(&u, 1 << 20);
    ck_assert_int_eq(cgprof_gzip(d, 50000, &z), 0);
    unsigned char *c = (unsigned char *)z.data;
    size_t len = z.len;
    switch ((enum corrupt_kind)_i) {
    case FLIP_MIDDLE: c[len / 2] ^= 0x55; break;
    case FLIP_CRC: c[len - 6] ^= 1; break;
    case TRUNCATE_HALF: len /= 2; break;
    case TRUNCATE_LAST: len -= 1; break;
    case TRAILING_GARBAGE: ck_assert_int_eq(cgprof_buf_appends(&z, "junk"), 0);
        c = (unsigned char *)z.data, len = z.len; break;
    case NOT_GZIP: memcpy(c, "{\"start\": 1}", 12), len = 12; break;
    case EMPTY: len = 0; break;
    case HEADER_ONLY: len = 10; break;
    case BAD_METHOD: c[2] = 7; break;
    }
    const char *g = cgprof_test_guarded_copy(c, len);
    ck_assert_int_eq(cgprof_buf_appends(&u, "keep"), 0);
    ck_assert_int_eq(cgprof_gunzip(g, len, &u), CGPROF_EZLIB);
    ck_assert_uint_eq(u.len, 4);
    ck_assert_str_eq(u.data, "keep");
    cgprof_buf_cleanup(&z);
    cgprof_buf_cleanup(&u);
    free(d);
}
END_TEST

START_TEST(test_gzip_bound_exceeded)
{
    size_t n = 1u << 20;
    unsigned char *zeros = calloc(n, 1);
    struct cgprof_buf z, u;
    cgprof_buf_init(&z, 1 << 20);
    ck_assert_int_eq(cgprof_gzip(zeros, n, &z), 0);
    ck_assert_uint_lt(z.len, 4096);
    /* a small output bound stops a "bomb" */
    cgprof_buf_init(&u, 100000);
    ck_assert_int_eq(cgprof_gunzip(z.data, z.len, &u), CGPROF_ETOOBIG);
    ck_assert_uint_eq(u.len, 0);
    cgprof_buf_cleanup(&u);
    /* exactly enough room succeeds */
    cgprof_buf_init(&u, n);
    ck_assert_int_eq(cgprof_gunzip(z.data, z.len, &u), 0);
    ck_assert_uint_eq(u.len, n);
    cgprof_buf_cleanup(&u);
    /* compression output is bounded too */
    unsigned char *rnd = make_data(100000, 0);
    struct cgprof_buf small;
    cgprof_buf_init(&small, 1000);
    ck_assert_int_eq(cgprof_gzip(rnd, 100000, &small), CGPROF_ETOOBIG);
    ck_assert_uint_eq(small.len, 0);
    cgprof_buf_cleanup(&small);
    cgprof_buf_cleanup(&z);
    free(rnd);
    free(zeros);
}
END_TEST

START_TEST(test_gzip_alloc_failures)
{
    cgprof_log_set_level(CGPROF_LOG_OFF);
    unsigned char *d = make_data(100000, 1);
    int ok = 0;
    for (long k = 0; k < 50 && !ok; k++) {
        struct cgprof_buf z, u;
        cgprof_buf_init(&z, 1 << 20);
        cgprof_buf_init(&u, 1 << 20);
        cgprof_alloc_fail_after(k);
        int rc = cgprof_gzip(d, 100000, &z);
        if (rc == 0)
            rc = cgprof_gunzip(z.data, z.len, &u);
        cgprof_alloc_fail_after(-1);
        ck_assert(rc == 0 || rc == CGPROF_ENOMEM);
        if (rc == 0) {
            ok = 1;
            ck_assert_int_eq(memcmp(u.data, d, 100000), 0);
        }
        cgprof_buf_cleanup(&z);
        cgprof_buf_cleanup(&u);
    }
    ck_assert(ok);
    free(d);
}
END_TEST

static Suite *gzip_suite(void)
{
    Suite *s = suite_create("profile");
    TCase *tc = tcase_create("gzip");
    tcase_add_loop_test(tc, test_gzip_round_trip, 0, (int)CGPROF_ARRAY_SIZE(sizes));
    tcase_add_test(tc, test_gunzip_concatenated_members);
    tcase_add_loop_test(tc, test_gunzip_corrupt, FLIP_MIDDLE, BAD_METHOD + 1);
    tcase_add_test(tc, test_gzip_bound_exceeded);
    tcase_add_test(tc, test_gzip_alloc_failures);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cgprof_test_run(gzip_suite());
}
