/* Unit tests for the response parser of uploader/http.c: status line and
 * header table (valid, malformed, bounds), "need more input" at every
 * split point, inputs ending at a PROT_NONE page, the chunked decoder
 * (extensions, trailers, bare LF, bytes after the end, malformed, bounds,
 * every split), allocation failure, and a replay of the fuzzing corpus
 * (test/fuzz/corpus/http) through the fuzz harness's checks. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#define CGPROF_FUZZ_NO_MAIN
#include "fuzz/fuzz_http_parse.c"

#define ANY (-1)

static const struct head_case {
    const char *in;
    int rc;             /* > 0: the head's length; ANY: strlen(in) */
    int status;
    int nheaders;
    const char *name, *value; /* one lookup (NULL value: absent) */
} head_cases[] = {
    { "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\n", ANY, 200, 2, "content-length", "5" },
    { "HTTP/1.0 204 No Content\r\n\r\n", ANY, 204, 0, "X", NULL },
    { "HTTP/1.1 200 OK\nA: 1\nB: 2\n\n", ANY, 200, 2, "b", "2" },
    { "HTTP/1.1 200 OK\r\nA: 1\n\r\n", ANY, 200, 1, "A", "1" },
    { "HTTP/1.1 404\r\n\r\n", ANY, 404, 0, "A", NULL },
    { "HTTP/1.1 404 \r\n\r\n", ANY, 404, 0, "A", NULL },
    { "HTTP/1.1 503 Slow Down Please\r\nRetry-After: 1\r\n\r\n", ANY, 503, 1, "RETRY-AFTER", "1" },
    { "HTTP/1.1 200 OK\r\nName:   spaced  value \t\r\n\r\n", ANY, 200, 1, "name", "spaced  value" },
    { "HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Spaces:   \r\n\r\n", ANY, 200, 2, "x-spaces", "" },
    { "HTTP/1.1 200 OK\r\nX: caf\xc3\xa9\r\n\r\n", ANY, 200, 1, "x", "caf\xc3\xa9" },
    { "HTTP/1.1 200 \xc3\xa7" "a va\r\n\r\n", ANY, 200, 0, "x", NULL },
    { "HTTP/1.1 200 OK\r\nA: first\r\nA: second\r\n\r\n", ANY, 200, 2, "a", "first" },
    { "HTTP/1.1 200 OK\r\nx-amzn-RequestId: 1-2:3\r\n\r\n", ANY, 200, 1, "X-Amzn-RequestId", "1-2:3" },
    { "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", 25, 100, 0, "x", NULL },
    { "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", 38, 200, 1, "Content-Length", "3" },
    { "HTTP/1.1 599 x\r\n\r\n", ANY, 599, 0, "x", NULL },
    { "HTTP/1.1 100 x\r\n\r\n", ANY, 100, 0, "x", NULL },
    { "HTTP/1.1 200 OK\r\n!#$%&'*+-.^_`|~09az: tchar\r\n\r\n", ANY, 200, 1, "!#$%&'*+-.^_`|~09AZ", "tchar" },
    /* malformed */
    { "HTTP/2 200 OK\r\n\r\n", CGPROF_EHTTP, 0, 0, 0, 0 },
    { "HTTP/1.1 20 OK\r\n\r\n", CGPROF_EHTTP, 0, 0, 0, 0 },
    { "HTTP/1.1 2000 OK\r\n\r\n", CGPROF_EHTTP, 0, 0, 0, 0 },
    { "HTTP/1.1 099 x\r\n\r\n", CGPROF_EHTTP, 0, 0, 0, 0 },
    { "HTTP/1.1 600 x\r\n\r\n", CGPROF_EHTTP, 0, 0, 0, 0 },
    { "HTTP/1.1  200 OK\r\n\r\n", CGPROF_EHTTP, 0, 0, 0, 0 },
    { "HTTP/1.x 200 OK\r\n\r\n", CGPROF_EHTTP, 0, 0, 0, 0 },
    { "http/1.1 200 OK\r\n\r\n", CGPROF_EHTTP, 0, 0, 0, 0 },
    { "ICY 200 OK\r\n\r\n", CGPROF_EHTTP, 0, 0, 0, 0 },
    { "XTTP", CGPROF_EHTTP, 0, 0, 0, 0 },                  /* rejected before the end */
    { "\r\nHTTP/1.1 200 OK\r\n\r\n", CGPROF_EHTTP, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", CGPROF_EHTTP, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nName : x\r\n\r\n", CGPROF_EHTTP, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\n: x\r\n\r\n", CGPROF_EHTTP, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", CGPROF_EHTTP, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nA: 1\r\n folded\r\n\r\n", CGPROF_EHTTP, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", CGPROF_EHTTP, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nA: b\x7f\r\n\r\n", CGPROF_EHTTP, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nA: b\x01\r\n\r\n", CGPROF_EHTTP, 0, 0, 0, 0 },
    { "HTTP/1.1 200 O\x02K\r\n\r\n", CGPROF_EHTTP, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\r\n\r\n", CGPROF_EHTTP, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nA: 1\r\n\r\r\n", CGPROF_EAGAIN, 0, 0, 0, 0 },
    /* incomplete */
    { "", CGPROF_EAGAIN, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nA: 1\r\n", CGPROF_EAGAIN, 0, 0, 0, 0 },
    { "HTTP/1.1 200 OK\r\nA: 1\r\n\r", CGPROF_EAGAIN, 0, 0, 0, 0 },
};

static int expected_len(const struct head_case *c)
{
    return c->rc == ANY ? (int)strlen(c->in) : c->rc;
}

static void check_head_case(int idx)
{
    const struct head_case *c = &head_cases[idx];
    size_t len = strlen(c->in);
    const char *in = cgprof_test_guarded_copy(c->in, len);
    ck_assert_ptr_nonnull(in);
    struct cgprof__http_response rs;
    int rc = cgprof__http_parse_head(in, len, &rs);
    int want = expected_len(c);
    ck_assert_msg(rc == want, "case %d: rc %d want %d", idx, rc, want);
    if (rc > 0) {
        ck_assert_int_eq(rs.status, c->status);
        ck_assert_uint_eq(rs.nheaders, (size_t)c->nheaders);
        const char *v = cgprof__http_response_header(&rs, c->name);
        if (c->value)
            ck_assert_str_eq(v, c->value);
        else
            ck_assert_ptr_null(v);
    } else {
        ck_assert_ptr_null(rs.raw_headers);
        ck_assert_uint_eq(rs.nheaders, 0);
    }
    cgprof__http_response_cleanup(&rs);
}

START_TEST(test_parse_head_table)
{
    for (int i = 0; i < (int)CGPROF_ARRAY_SIZE(head_cases); i++)
        check_head_case(i);
}
END_TEST

/* Every strict prefix of a head that parses is "need more input", read
 * from memory that ends at a guard page. */
static void check_head_splits(int idx)
{
    const struct head_case *c = &head_cases[idx];
    int want = expected_len(c);
    if (want <= 0)
        return;
    for (int k = 0; k < want; k++) {
        const char *in = cgprof_test_guarded_copy(c->in, (size_t)k);
        struct cgprof__http_response rs;
        int rc = cgprof__http_parse_head(in, (size_t)k, &rs);
        ck_assert_msg(rc == CGPROF_EAGAIN, "case %d prefix %d: rc %d", idx, k, rc);
        cgprof__http_response_cleanup(&rs);
    }
}

START_TEST(test_parse_head_every_split)
{
    for (int i = 0; i < (int)CGPROF_ARRAY_SIZE(head_cases); i++)
        check_head_splits(i);
}
END_TEST

static char *make_head(int nheaders, size_t value_len, bool terminate)
{
    struct cgprof_buf b;
    cgprof_buf_init(&b, 4u << 20);
    ck_assert_int_eq(cgprof_buf_appends(&b, "HTTP/1.1 200 OK\r\n"), 0);
    for (int i = 0; i < nheaders; i++) {
        /* One assertion per header: Check records each one (a write in
         * fork mode), so none sits in the per-byte loop. */
        int rc = cgprof_buf_printf(&b, "H%d: ", i);
        for (size_t j = 0; j < value_len && rc == 0; j++)
            rc = cgprof_buf_append(&b, "v", 1);
        if (rc == 0)
            rc = cgprof_buf_appends(&b, "\r\n");
        ck_assert_int_eq(rc, 0);
    }
    if (terminate)
        ck_assert_int_eq(cgprof_buf_appends(&b, "\r\n"), 0);
    return b.data;
}

START_TEST(test_parse_head_bounds)
{
    struct cgprof__http_response rs;
    /* 64 headers parse, 65 are too many. */
    char *h = make_head(CGPROF__HTTP_MAX_HEADERS, 3, true);
    ck_assert_int_eq(cgprof__http_parse_head(h, strlen(h), &rs), (int)strlen(h));
    ck_assert_uint_eq(rs.nheaders, CGPROF__HTTP_MAX_HEADERS);
    ck_assert_str_eq(cgprof__http_response_header(&rs, "h63"), "vvv");
    cgprof__http_response_cleanup(&rs);
    cgprof_free(h);
    h = make_head(CGPROF__HTTP_MAX_HEADERS + 1, 3, true);
    ck_assert_int_eq(cgprof__http_parse_head(h, strlen(h), &rs), CGPROF_ETOOBIG);
    cgprof__http_response_cleanup(&rs);
    cgprof_free(h);
    /* A 60000-byte header fits under the 64 KiB head bound. */
    h = make_head(1, 60000, true);
    const char *g = cgprof_test_guarded_copy(h, strlen(h));
    ck_assert_int_eq(cgprof__http_parse_head(g, strlen(h), &rs), (int)strlen(h));
    ck_assert_uint_eq(strlen(cgprof__http_response_header(&rs, "H0")), 60000);
    cgprof__http_response_cleanup(&rs);
    cgprof_free(h);
    /* An unterminated head: more input below the bound, too big at it. */
    h = make_head(1, CGPROF__HTTP_MAX_HEAD, false);
    size_t len = strlen(h);
    ck_assert_int_eq(cgprof__http_parse_head(h, CGPROF__HTTP_MAX_HEAD - 1, &rs), CGPROF_EAGAIN);
    ck_assert_int_eq(cgprof__http_parse_head(h, CGPROF__HTTP_MAX_HEAD, &rs), CGPROF_ETOOBIG);
    ck_assert_int_eq(cgprof__http_parse_head(h, len, &rs), CGPROF_ETOOBIG);
    cgprof__http_response_cleanup(&rs);
    cgprof_free(h);
    /* The end of the head just past the bound does not count. */
    h = make_head(1, CGPROF__HTTP_MAX_HEAD - 23, true);
    len = strlen(h);
    ck_assert_uint_gt(len, CGPROF__HTTP_MAX_HEAD);
    ck_assert_int_eq(cgprof__http_parse_head(h, len, &rs), CGPROF_ETOOBIG);
    cgprof_free(h);
}
END_TEST

START_TEST(test_parse_head_oom)
{
    static const char in[] = "HTTP/1.1 200 OK\r\nA: 1\r\n\r\n";
    struct cgprof__http_response rs;
    cgprof_alloc_fail_after(0);
    ck_assert_int_eq(cgprof__http_parse_head(in, sizeof(in) - 1, &rs), CGPROF_ENOMEM);
    cgprof_alloc_fail_after(-1);
    ck_assert_ptr_null(rs.raw_headers);
    cgprof__http_response_cleanup(&rs);
    ck_assert_int_eq(cgprof__http_parse_head(in, sizeof(in) - 1, &rs), (int)sizeof(in) - 1);
    cgprof__http_response_cleanup(&rs);
}
END_TEST

static const struct chunk_case {
    const char *in;
    size_t len;         /* 0: strlen */
    int rc;
    const char *out;    /* decoded body when rc is 0 or EAGAIN */
    int used;           /* bytes consumed when rc is 0; ANY: all */
    size_t max;         /* body bound; 0: 1 MiB */
} chunk_cases[] = {
    { "5\r\nhello\r\n0\r\n\r\n", 0, 0, "hello", ANY, 0 },
    { "5;ext=1;q=\"a b\"\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 0, 0, "hello world", ANY, 0 },
    { "A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n", 0, 0, "0123456789abcdefghij", ANY, 0 },
    { "3\r\nabc\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n", 0, 0, "abc", ANY, 0 },
    { "3\nabc\n0\nX: 1\n\n", 0, 0, "abc", ANY, 0 },
    { "3  \r\nabc\r\n0\t\r\n\r\n", 0, 0, "abc", ANY, 0 },
    { "3 ;ext\r\nabc\r\n0;last\r\n\r\n", 0, 0, "abc", ANY, 0 },
    { "0003\r\nabc\r\n000\r\n\r\n", 0, 0, "abc", ANY, 0 },
    { "0\r\n\r\nEXTRA", 0, 0, "", 5, 0 },
    { "2\r\n\r\n\r\n0\r\n\r\n", 0, 0, "\r\n", ANY, 0 },
    { "4\r\na\0b\n\r\n0\r\n\r\n", 14, 0, "a", ANY, 0 }, /* checked by length below */
    { "8\r\n12345678\r\n0\r\n\r\n", 0, 0, "12345678", ANY, 8 },
    /* incomplete */
    { "5\r\nhel", 0, CGPROF_EAGAIN, "hel", ANY, 0 },
    { "5\r\nhello\r\n0\r\nX: 1\r\n", 0, CGPROF_EAGAIN, "hello", ANY, 0 },
    { "", 0, CGPROF_EAGAIN, "", ANY, 0 },
    /* malformed */
    { "\r\n", 0, CGPROF_EHTTP, NULL, 0, 0 },
    { "g\r\n", 0, CGPROF_EHTTP, NULL, 0, 0 },
    { "-1\r\n", 0, CGPROF_EHTTP, NULL, 0, 0 },
    { "3 x\r\n", 0, CGPROF_EHTTP, NULL, 0, 0 },
    { "3\rX", 0, CGPROF_EHTTP, NULL, 0, 0 },
    { "3\r\nabcX\r\n", 0, CGPROF_EHTTP, NULL, 0, 0 },
    { "3\r\nabc\rX", 0, CGPROF_EHTTP, NULL, 0, 0 },
    { "3;\x01\r\nabc\r\n", 0, CGPROF_EHTTP, NULL, 0, 0 },
    { "10000000000000000\r\n", 0, CGPROF_EHTTP, NULL, 0, 0 },
    { "0\r\n X: folded\r\n\r\n", 0, CGPROF_EHTTP, NULL, 0, 0 },
    { "0\r\nX: a\x01\r\n\r\n", 0, CGPROF_EHTTP, NULL, 0, 0 },
    { "0\r\n\rX", 0, CGPROF_EHTTP, NULL, 0, 0 },
    { "0\r\nX: 1\rY\r\n\r\n", 0, CGPROF_EHTTP, NULL, 0, 0 },
    /* bounds */
    { "9\r\n123456789\r\n0\r\n\r\n", 0, CGPROF_ETOOBIG, NULL, 0, 8 },
    { "4\r\n1234\r\n5\r\n56789\r\n0\r\n\r\n", 0, CGPROF_ETOOBIG, NULL, 0, 8 },
    { "ffffffffffffffff\r\n", 0, CGPROF_ETOOBIG, NULL, 0, 0 },
};

static size_t case_len(const struct chunk_case *c)
{
    return c->len ? c->len : strlen(c->in);
}

/* Feeds the case split at k (k == len: at once), or byte by byte when
 * bytewise. Returns the final code; body and consumed bytes are output. */
static int feed(const struct chunk_case *c, size_t k, bool bytewise, struct cgprof_buf *out,
                size_t *used)
{
    size_t len = case_len(c);
    const char *in = cgprof_test_guarded_copy(c->in, len);
    struct cgprof__http_chunked d;
    cgprof__http_chunked_init(&d);
    cgprof_buf_init(out, c->max ? c->max : 1u << 20);
    size_t pos = 0;
    int rc = CGPROF_EAGAIN;
    while (rc == CGPROF_EAGAIN && pos < len) {
        size_t n = bytewise ? 1 : (pos < k ? k - pos : len - pos);
        /* Each piece ends at a guard page too. */
        const char *piece = cgprof_test_guarded_copy(in + pos, n);
        size_t u = 99;
        rc = cgprof__http_chunked_decode(&d, piece, n, &u, out);
        ck_assert_uint_le(u, n);
        if (rc == CGPROF_EAGAIN)
            ck_assert_uint_eq(u, n);
        pos += u;
    }
    *used = pos;
    return rc;
}

static void check_chunk_case(int idx)
{
    const struct chunk_case *c = &chunk_cases[idx];
    size_t len = case_len(c);
    for (size_t k = 0; k <= len + 1; k++) {
        struct cgprof_buf out;
        size_t used;
        bool bytewise = k == len + 1;
        int rc = feed(c, bytewise ? len : k, bytewise, &out, &used);
        ck_assert_msg(rc == c->rc, "case %d split %zu: rc %d want %d", idx, k, rc, c->rc);
        if (rc == 0 || rc == CGPROF_EAGAIN) {
            size_t want_len = c->len ? 4 : strlen(c->out);
            ck_assert_uint_eq(out.len, want_len);
            if (!c->len)
                ck_assert(memcmp(out.data ? out.data : "", c->out, want_len) == 0);
            else
                ck_assert(memcmp(out.data, "a\0b\n", 4) == 0);
        }
        if (rc == 0)
            ck_assert_uint_eq(used, c->used == ANY ? len : (size_t)c->used);
        cgprof_buf_cleanup(&out);
    }
}

START_TEST(test_chunked_table)
{
    for (int i = 0; i < (int)CGPROF_ARRAY_SIZE(chunk_cases); i++)
        check_chunk_case(i);
}
END_TEST

START_TEST(test_chunked_sticky_and_done)
{
    struct cgprof__http_chunked d;
    struct cgprof_buf out;
    size_t used;
    cgprof_buf_init(&out, 100);
    cgprof__http_chunked_init(&d);
    ck_assert_int_eq(cgprof__http_chunked_decode(&d, "zz", 2, &used, &out), CGPROF_EHTTP);
    ck_assert_int_eq(cgprof__http_chunked_decode(&d, "0\r\n\r\n", 5, &used, &out), CGPROF_EHTTP);
    cgprof__http_chunked_init(&d);
    ck_assert_int_eq(cgprof__http_chunked_decode(&d, "0\r\n\r\n", 5, &used, &out), 0);
    ck_assert_int_eq(cgprof__http_chunked_decode(&d, "5\r\n", 3, &used, &out), 0);
    ck_assert_uint_eq(used, 0);
    cgprof_buf_cleanup(&out);
}
END_TEST

START_TEST(test_chunked_line_bounds)
{
    struct cgprof__http_chunked d;
    struct cgprof_buf out;
    size_t used;
    cgprof_buf_init(&out, 100);
    /* A size line of 4096 bytes (leading zeros) is fine, 4097 is not. */
    char line[5000];
    memset(line, '0', sizeof(line));
    memcpy(line + 4094, "1\n", 2);
    cgprof__http_chunked_init(&d);
    ck_assert_int_eq(cgprof__http_chunked_decode(&d, line, 4096, &used, &out), CGPROF_EAGAIN);
    memcpy(line + 4094, "01\n", 3);
    cgprof__http_chunked_init(&d);
    ck_assert_int_eq(cgprof__http_chunked_decode(&d, line, 4097, &used, &out), CGPROF_EHTTP);
    /* Trailers are bounded to 16 KiB in total. */
    cgprof__http_chunked_init(&d);
    ck_assert_int_eq(cgprof__http_chunked_decode(&d, "0\r\n", 3, &used, &out), CGPROF_EAGAIN);
    int rc = CGPROF_EAGAIN;
    for (int i = 0; i < 2000 && rc == CGPROF_EAGAIN; i++)
        rc = cgprof__http_chunked_decode(&d, "X-Trailer: 1\r\n", 14, &used, &out);
    ck_assert_int_eq(rc, CGPROF_EHTTP);
    cgprof_buf_cleanup(&out);
}
END_TEST

START_TEST(test_chunked_oom)
{
    struct cgprof__http_chunked d;
    struct cgprof_buf out;
    size_t used;
    cgprof_buf_init(&out, 100);
    cgprof__http_chunked_init(&d);
    cgprof_alloc_fail_after(0);
    int rc = cgprof__http_chunked_decode(&d, "3\r\nabc\r\n0\r\n\r\n", 13, &used, &out);
    cgprof_alloc_fail_after(-1);
    ck_assert_int_eq(rc, CGPROF_ENOMEM);
    cgprof_buf_cleanup(&out);
}
END_TEST

/* Replays every file of the committed fuzzing corpus through the fuzz
 * harness's checks (run from the repository root, as scripts/run-tests
 * does). */
START_TEST(test_fuzz_corpus_replay)
{
    const char *dir = "test/fuzz/corpus/http";
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "cannot open %s (run from the repository root)", dir);
    struct dirent *de;
    int files = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        char *data;
        size_t len;
        ck_assert_int_eq(cgprof_read_file(path, 1u << 20, &data, &len), 0);
        const char *g = cgprof_test_guarded_copy(data, len);
        const char *err = fuzz_http_check((const uint8_t *)g, len);
        ck_assert_msg(err == NULL, "%s: %s", path, err ? err : "");
        cgprof_free(data);
        files++;
    }
    closedir(d);
    ck_assert_int_ge(files, 10);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("uploader");
    TCase *tc = tcase_create("http_parse");
    tcase_add_test(tc, test_parse_head_table);
    tcase_add_test(tc, test_parse_head_every_split);
    tcase_add_test(tc, test_parse_head_bounds);
    tcase_add_test(tc, test_parse_head_oom);
    tcase_add_test(tc, test_chunked_table);
    tcase_add_test(tc, test_chunked_sticky_and_done);
    tcase_add_test(tc, test_chunked_line_bounds);
    tcase_add_test(tc, test_chunked_oom);
    tcase_add_test(tc, test_fuzz_corpus_replay);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cgprof_test_run(suite());
}
