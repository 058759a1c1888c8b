/* Unit tests for uploader/sigv4.c: every header-signing case of the public
 * SigV4 test suite (test/fixtures/sigv4, copied from aws-c-auth) must give
 * the same canonical request, string to sign, signature and Authorization
 * header; plus percent-encoding, dates, argument checks and allocation
 * failures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "helpers.h"
#include "../../../uploader/uploader_int.h"

#define FIXTURES "test/fixtures/sigv4"

/* Every case of the suite; the file lists must exist for each one. */
static const char *const cases[] = {
    "get-header-key-duplicate", "get-header-value-multiline", "get-header-value-order",
    "get-header-value-trim", "get-relative-normalized", "get-relative-relative-normalized",
    "get-relative-relative-unnormalized", "get-relative-unnormalized",
    "get-slash-dot-slash-normalized", "get-slash-dot-slash-unnormalized",
    "get-slash-normalized", "get-slash-pointless-dot-normalized",
    "get-slash-pointless-dot-unnormalized", "get-slash-unnormalized",
    "get-slashes-normalized", "get-slashes-unnormalized", "get-space-normalized",
    "get-space-unnormalized", "get-unreserved", "get-utf8", "get-vanilla",
    "get-vanilla-empty-query-key", "get-vanilla-query", "get-vanilla-query-order-encoded",
    "get-vanilla-query-order-key-case", "get-vanilla-query-unreserved",
    "get-vanilla-utf8-query", "get-vanilla-with-session-token", "post-header-key-case",
    "post-header-key-sort", "post-header-value-case", "post-sts-header-after",
    "post-sts-header-before", "post-vanilla", "post-vanilla-empty-query-value",
    "post-vanilla-query", "post-x-www-form-urlencoded",
    "post-x-www-form-urlencoded-parameters",
};

static char *slurp(const char *dir, const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), FIXTURES "/%s/%s", dir, name);
    char *out = NULL;
    size_t n = 0;
    int rc = cgprof_read_file(path, 1 << 20, &out, &n);
    ck_assert_msg(rc == 0, "cannot read %s: %s", path, cgprof_strerror(rc));
    if (len)
        *len = n;
    return out;
}

static void strip_trailing_newlines(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

/* A parsed request.txt: "METHOD target HTTP/1.1", headers (continuation
 * lines folded in with '\n'), blank line, body. */
struct raw_request {
    char method[16];
    char path[512];
    char query[512];
    char *names[16];
    char *values[16];
    size_t n;
    const char *body;
    size_t body_len;
};

static void parse_request(char *text, size_t len, struct raw_request *r)
{
    memset(r, 0, sizeof(*r));
    char *eol = strchr(text, '\n');
    ck_assert_ptr_nonnull(eol);
    *eol = '\0';
    char *sp = strchr(text, ' ');
    char *proto = strstr(text, " HTTP/");
    ck_assert(sp && proto && proto > sp);
    snprintf(r->method, sizeof(r->method), "%.*s", (int)(sp - text), text);
    *proto = '\0';
    char *target = sp + 1;
    char *q = strchr(target, '?');
    if (q) {
        *q = '\0';
        snprintf(r->query, sizeof(r->query), "%s", q + 1);
    }
    snprintf(r->path, sizeof(r->path), "%s", target);
    char *line = eol + 1;
    while (*line && *line != '\n') {
        char *end = strchr(line, '\n');
        char *next = end ? end + 1 : line + strlen(line);
        if (end)
            *end = '\0';
        if ((*line == ' ' || *line == '\t') && r->n > 0) {
            /* Folded continuation: keep it in the value with a newline. */
            size_t a = strlen(r->values[r->n - 1]), b = strlen(line);
            char *v = malloc(a + b + 2);
            memcpy(v, r->values[r->n - 1], a);
            v[a] = '\n';
            memcpy(v + a + 1, line, b + 1);
            free(r->values[r->n - 1]);
            r->values[r->n - 1] = v;
        } else {
            char *colon = strchr(line, ':');
            ck_assert_ptr_nonnull(colon);
            ck_assert_uint_lt(r->n, 15);
            r->names[r->n] = strndup(line, (size_t)(colon - line));
            r->values[r->n] = strdup(colon + 1);
            r->n++;
        }
        line = next;
    }
    if (*line == '\n')
        line++;
    r->body = line;
    r->body_len = len - (size_t)(line - text);
}

static void free_request(struct raw_request *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->names[i]);
        free(r->values[i]);
    }
}

static uint64_t parse_ts(const char *s)
{
    struct tm tm = { 0 };
    ck_assert_int_eq(sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ", &tm.tm_year, &tm.tm_mon,
                            &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec), 6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (uint64_t)timegm(&tm);
}

static void test_sigv4_sign_suite_case_one(int _i)
{
    const char *name = cases[_i];
    size_t rlen;
    char *req_text = slurp(name, "request.txt", &rlen);
    char *ctx_text = slurp(name, "context.json", NULL);
    char *want_cr = slurp(name, "header-canonical-request.txt", NULL);
    char *want_sts = slurp(name, "header-string-to-sign.txt", NULL);
    char *want_sig = slurp(name, "header-signature.txt", NULL);
    char *want_signed = slurp(name, "header-signed-request.txt", NULL);
    strip_trailing_newlines(want_sig);

    json_error_t jerr;
    json_t *ctx = json_loads(ctx_text, 0, &jerr);
    ck_assert_msg(ctx != NULL, "%s: context.json: %s", name, jerr.text);
    json_t *jc = json_object_get(ctx, "credentials");
    struct cgprof__aws_creds creds;
    memset(&creds, 0, sizeof(creds));
    snprintf(creds.access_key_id, sizeof(creds.access_key_id), "%s",
             json_string_value(json_object_get(jc, "access_key_id")));
    snprintf(creds.secret_access_key, sizeof(creds.secret_access_key), "%s",
             json_string_value(json_object_get(jc, "secret_access_key")));
    const char *token = json_string_value(json_object_get(jc, "token"));
    bool omit_token = json_is_true(json_object_get(ctx, "omit_session_token"));
    bool normalize = !json_is_false(json_object_get(ctx, "normalize"));
    bool sign_body = json_is_true(json_object_get(ctx, "sign_body"));
    const char *region = json_string_value(json_object_get(ctx, "region"));
    const char *service = json_string_value(json_object_get(ctx, "service"));
    char amz_date[17];
    cgprof__amz_date(parse_ts(json_string_value(json_object_get(ctx, "timestamp"))), amz_date);
    ck_assert_str_eq(amz_date, "20150830T123600Z");

    struct raw_request r;
    parse_request(req_text, rlen, &r);
    char hash[65];
    cgprof__sha256_hex(r.body, r.body_len, hash);
    struct cgprof__http_header h[20];
    size_t n = 0;
    for (size_t i = 0; i < r.n; i++)
        h[n++] = (struct cgprof__http_header){ r.names[i], r.values[i] };
    h[n++] = (struct cgprof__http_header){ "X-Amz-Date", amz_date };
    if (token && !omit_token)
        h[n++] = (struct cgprof__http_header){ "X-Amz-Security-Token", token };
    if (sign_body)
        h[n++] = (struct cgprof__http_header){ "x-amz-content-sha256", hash };

    struct cgprof__sigv4_request rq = {
        .method = r.method, .path = r.path, .query = r.query[0] ? r.query : NULL,
        .headers = h, .nheaders = n, .payload_hash = hash, .normalize_path = normalize,
    };
    struct cgprof_buf auth, cr, sts;
    cgprof_buf_init(&auth, 4096);
    cgprof_buf_init(&cr, 1 << 16);
    cgprof_buf_init(&sts, 4096);
    char sig[65];
    ck_assert_int_eq(cgprof__sigv4_sign(&rq, region, service, amz_date, &creds, sig, &auth,
                                        &cr, &sts), 0);
    ck_assert_msg(strcmp(cr.data, want_cr) == 0, "%s: canonical request\n%s\n--- want\n%s",
                  name, cr.data, want_cr);
    ck_assert_msg(strcmp(sts.data, want_sts) == 0, "%s: string to sign\n%s\n--- want\n%s",
                  name, sts.data, want_sts);
    ck_assert_msg(strcmp(sig, want_sig) == 0, "%s: signature %s, want %s", name, sig, want_sig);
    /* The signed request's Authorization line carries the whole value. */
    char *al = strstr(want_signed, "\nAuthorization:");
    ck_assert_ptr_nonnull(al);
    al += strlen("\nAuthorization:");
    char *ae = strchr(al, '\n');
    ck_assert_ptr_nonnull(ae);
    *ae = '\0';
    ck_assert_str_eq(auth.data, al);

    cgprof_buf_cleanup(&auth);
    cgprof_buf_cleanup(&cr);
    cgprof_buf_cleanup(&sts);
    free_request(&r);
    json_decref(ctx);
    cgprof_free(req_text);
    cgprof_free(ctx_text);
    cgprof_free(want_cr);
    cgprof_free(want_sts);
    cgprof_free(want_sig);
    cgprof_free(want_signed);
}
/* Every row in one test: a fork per row costs ~50 ms under ASan. */
START_TEST(test_sigv4_sign_suite_case)
{
    for (int i = 0; i < (int)CGPROF_ARRAY_SIZE(cases); i++)
        test_sigv4_sign_suite_case_one(i);
}
END_TEST

static const struct enc_case {
    const char *in;
    bool keep_slash;
    const char *want;
} enc_cases[] = {
    { "abcXYZ019-_.~", false, "abcXYZ019-_.~" },
    { "a b/c", true, "a%20b/c" },
    { "a b/c", false, "a%20b%2Fc" },
    { "\xe1\x88\xb4", false, "%E1%88%B4" },
    { "100%", false, "100%25" },
    { "a+b=c&d", false, "a%2Bb%3Dc%26d" },
    { "", false, "" },
};

static void test_uri_encode_table_one(int _i)
{
    const struct enc_case *t = &enc_cases[_i];
    struct cgprof_buf b;
    cgprof_buf_init(&b, 256);
    ck_assert_int_eq(cgprof__uri_encode(&b, t->in, strlen(t->in), t->keep_slash), 0);
    ck_assert_str_eq(b.len ? b.data : "", t->want);
    cgprof_buf_cleanup(&b);
}
/* Every row in one test: a fork per row costs ~50 ms under ASan. */
START_TEST(test_uri_encode_table)
{
    for (int i = 0; i < (int)CGPROF_ARRAY_SIZE(enc_cases); i++)
        test_uri_encode_table_one(i);
}
END_TEST

START_TEST(test_amz_date_and_sha256)
{
    char d[17], h[65];
    cgprof__amz_date(0, d);
    ck_assert_str_eq(d, "19700101T000000Z");
    cgprof__amz_date(1700000000, d);
    ck_assert_str_eq(d, "20231114T221320Z");
    cgprof__sha256_hex("", 0, h);
    ck_assert_str_eq(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    cgprof__sha256_hex("abc", 3, h);
    ck_assert_str_eq(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

/* Missing or malformed inputs are refused, never signed. */
START_TEST(test_sigv4_sign_rejects_bad_arguments)
{
    struct cgprof__aws_creds c;
    memset(&c, 0, sizeof(c));
    strcpy(c.access_key_id, "AKID");
    strcpy(c.secret_access_key, "secret");
    struct cgprof__http_header h[] = { { "Host", "x" }, { "X-Amz-Date", "20150830T123600Z" } };
    char hash[65], sig[65];
    cgprof__sha256_hex("", 0, hash);
    struct cgprof__sigv4_request rq = { .method = "GET", .path = "/", .headers = h,
                                        .nheaders = 2, .payload_hash = hash };
    ck_assert_int_eq(cgprof__sigv4_sign(&rq, "r", "s", "20150830T123600Z", &c, sig, NULL,
                                        NULL, NULL), 0);
    ck_assert_uint_eq(strlen(sig), 64);
    ck_assert_int_eq(cgprof__sigv4_sign(&rq, "r", "s", "2015", &c, sig, NULL, NULL, NULL),
                     CGPROF_EINVAL);
    rq.payload_hash = "abc";
    ck_assert_int_eq(cgprof__sigv4_sign(&rq, "r", "s", "20150830T123600Z", &c, sig, NULL,
                                        NULL, NULL), CGPROF_EINVAL);
    rq.payload_hash = hash;
    rq.nheaders = 0;
    ck_assert_int_eq(cgprof__sigv4_sign(&rq, "r", "s", "20150830T123600Z", &c, sig, NULL,
                                        NULL, NULL), CGPROF_EINVAL);
    rq.nheaders = 2;
    c.secret_access_key[0] = '\0';
    ck_assert_int_eq(cgprof__sigv4_sign(&rq, "r", "s", "20150830T123600Z", &c, sig, NULL,
                                        NULL, NULL), CGPROF_EINVAL);
}
END_TEST

/* Each allocation failing in turn gives ENOMEM, never a crash or leak. */
START_TEST(test_sigv4_sign_alloc_failures)
{
    struct cgprof__aws_creds c;
    memset(&c, 0, sizeof(c));
    strcpy(c.access_key_id, "AKID");
    strcpy(c.secret_access_key, "secret");
    struct cgprof__http_header h[] = { { "Host", "x" }, { "X-Amz-Date", "20150830T123600Z" },
                                       { "B", "2" }, { "a", " 1  2 " } };
    char hash[65], sig[65], want[65];
    cgprof__sha256_hex("", 0, hash);
    struct cgprof__sigv4_request rq = { .method = "GET", .path = "/a/../b c", .query = "z=1&y=2",
                                        .headers = h, .nheaders = 4, .payload_hash = hash,
                                        .normalize_path = true };
    ck_assert_int_eq(cgprof__sigv4_sign(&rq, "r", "s", "20150830T123600Z", &c, want, NULL,
                                        NULL, NULL), 0);
    int ok = 0;
    for (long k = 0; k < 200 && !ok; k++) {
        struct cgprof_buf a;
        cgprof_buf_init(&a, 4096);
        cgprof_alloc_fail_after(k);
        int rc = cgprof__sigv4_sign(&rq, "r", "s", "20150830T123600Z", &c, sig, &a, NULL, NULL);
        cgprof_alloc_fail_after(-1);
        ck_assert(rc == 0 || rc == CGPROF_ENOMEM);
        if (rc == 0) {
            ok = 1;
            ck_assert_str_eq(sig, want);
        }
        cgprof_buf_cleanup(&a);
    }
    ck_assert(ok);
}
END_TEST

static Suite *sigv4_suite(void)
{
    Suite *s = suite_create("uploader");
    TCase *tc = tcase_create("sigv4");
    tcase_add_test(tc, test_sigv4_sign_suite_case);
    tcase_add_test(tc, test_uri_encode_table);
    tcase_add_test(tc, test_amz_date_and_sha256);
    tcase_add_test(tc, test_sigv4_sign_rejects_bad_arguments);
    tcase_add_test(tc, test_sigv4_sign_alloc_failures);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cgprof_test_run(sigv4_suite());
}
