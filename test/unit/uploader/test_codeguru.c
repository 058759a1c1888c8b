/* Unit tests for uploader/codeguru.c and retry.c: endpoint resolution,
 * requests built and signed as botocore builds them (vectors computed with
 * botocore's SigV4Auth), error-code parsing, the standard retry loop
 * against a local stand-in (same token and invocation id, attempt
 * headers, which statuses are retried, backoff bounds, 403 naming the
 * missing permission), and the service configuration merged under the
 * user's settings.
 *
 * With arguments, the binary is the signing driver of
 * test/integration/sigv4_botocore.sh:
 *   test_codeguru sign OP ENDPOINT REGION GROUP TOKEN|- INVOCATION ATTEMPT
 *                 EPOCH BODYFILE GZIP
 * (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 * AWS_SESSION_TOKEN) prints "TARGET <path?query>", one "H <name>: <value>"
 * line per header in order, then "CANONICAL" and the canonical request. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "stub_http.h"
#include "../../../config/config.h"
#include "../../../uploader/uploader_int.h"

static struct cgprof__aws_creds test_creds(const char *token)
{
    struct cgprof__aws_creds c;
    memset(&c, 0, sizeof(c));
    strcpy(c.access_key_id, "AKIDEXAMPLE");
    strcpy(c.secret_access_key, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    if (token)
        snprintf(c.session_token, sizeof(c.session_token), "%s", token);
    return c;
}

/* ---- endpoints ------------------------------------------------------------- */

static const struct ep_case {
    const char *explicit_url, *region;
    const char *const *env;
    int rc;
    const char *want;
} ep_cases[] = {
    { "", "us-west-2", NULL, 0, "https://codeguru-profiler.us-west-2.amazonaws.com" },
    { "", "cn-north-1", NULL, 0, "https://codeguru-profiler.cn-north-1.amazonaws.com.cn" },
    { "http://127.0.0.1:8080", "us-east-1", NULL, 0, "http://127.0.0.1:8080" },
    { "", "eu-west-1",
      (const char *const[]){ "AWS_ENDPOINT_URL", "https://all.example", NULL }, 0,
      "https://all.example" },
    { "", "eu-west-1",
      (const char *const[]){ "AWS_ENDPOINT_URL", "https://all.example",
                             "AWS_ENDPOINT_URL_CODEGURUPROFILER", "https://cg.example:9443",
                             NULL }, 0, "https://cg.example:9443" },
    { "https://explicit.example", "eu-west-1",
      (const char *const[]){ "AWS_ENDPOINT_URL_CODEGURUPROFILER", "https://cg.example", NULL },
      0, "https://explicit.example" },
    { "ftp://x", "us-east-1", NULL, CGPROF_EINVAL, NULL },
    { "", "", NULL, CGPROF_EINVAL, NULL },
};

static void test_cg_endpoint_table_one(int _i)
{
    const struct ep_case *t = &ep_cases[_i];
    cgprof_test_env_set(t->env);
    char out[256];
    ck_assert_int_eq(cgprof__cg_endpoint(t->explicit_url, t->region, cgprof_test_getenv, out,
                                         sizeof(out)), t->rc);
    if (t->rc == 0)
        ck_assert_str_eq(out, t->want);
}
/* Every row in one test: a fork per row costs ~50 ms under ASan. */
START_TEST(test_cg_endpoint_table)
{
    for (int i = 0; i < (int)CGPROF_ARRAY_SIZE(ep_cases); i++)
        test_cg_endpoint_table_one(i);
}
END_TEST

/* ---- request building -------------------------------------------------------- */

static const struct build_case {
    enum cgprof__cg_op op;
    const char *endpoint, *token, *session, *body;
    unsigned attempt;
    const char *target, *canonical, *signature, *attempt_hdr;
} build_cases[] = {
    { CGPROF__CG_CONFIGURE_AGENT, "https://codeguru-profiler.us-west-2.amazonaws.com", NULL,
      "TOKEN123", "{\"fleetInstanceId\": \"abc\", \"metadata\": {}}", 1,
      "/profilingGroups/g1/configureAgent",
      "POST\n/profilingGroups/g1/configureAgent\n\ncontent-type:application/json\n"
      "host:codeguru-profiler.us-west-2.amazonaws.com\nx-amz-date:20231114T221320Z\n"
      "x-amz-security-token:TOKEN123\n\ncontent-type;host;x-amz-date;x-amz-security-token\n"
      "65d5c653d674c92ef187bb094dbd4b3f9a713057cee42797ddadcf94a72c544d",
      "4bca5c604a64917b52a8bc5b6087ed2b13c47df759dfc5eb2ca2c5546ab894ca", "attempt=1" },
    { CGPROF__CG_POST_AGENT_PROFILE, "https://codeguru-profiler.us-west-2.amazonaws.com/",
      "7ac14eec-0eaa-4a29-b316-d5835e90464a", NULL, "{\"a\":1}", 2,
      "/profilingGroups/g1/agentProfile?profileToken=7ac14eec-0eaa-4a29-b316-d5835e90464a",
      "POST\n/profilingGroups/g1/agentProfile\nprofileToken=7ac14eec-0eaa-4a29-b316-d5835e90464a\n"
      "content-type:application/json\nhost:codeguru-profiler.us-west-2.amazonaws.com\n"
      "x-amz-date:20231114T221320Z\n\ncontent-type;host;x-amz-date\n"
      "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862",
      "679c5a9dca44f7fe318bace72a2de61138446ee670a6171830ae60335eda9a13", "attempt=2; max=3" },
    { CGPROF__CG_CREATE_PROFILING_GROUP, "http://127.0.0.1:8443/base/",
      "5f1d9db5-2640-4bdf-b161-a91aee7d2d99", "TOKEN123",
      "{\"profilingGroupName\": \"g1\", \"computePlatform\": \"AWSLambda\"}", 3,
      "/base/profilingGroups?clientToken=5f1d9db5-2640-4bdf-b161-a91aee7d2d99",
      "POST\n/base/profilingGroups\nclientToken=5f1d9db5-2640-4bdf-b161-a91aee7d2d99\n"
      "content-type:application/json\nhost:127.0.0.1:8443\nx-amz-date:20231114T221320Z\n"
      "x-amz-security-token:TOKEN123\n\ncontent-type;host;x-amz-date;x-amz-security-token\n"
      "491baa993475045e7be61ec76292bc64d78c50fae2165c7a7095cac30b2df9e8",
      "ffe5a7b63a26cf9cfabe105181dd36a447e8183e35baf4d5bf75db063231dd12", "attempt=3; max=3" },
};

static void test_cg_build_matches_botocore_one(int _i)
{
    const struct build_case *t = &build_cases[_i];
    struct cgprof__url u;
    ck_assert_int_eq(cgprof__url_parse(t->endpoint, &u), 0);
    struct cgprof__aws_creds c = test_creds(t->session);
    struct cgprof__cg_request r;
    ck_assert_int_eq(cgprof__cg_build(&r, t->op, &u, "us-west-2", "g1", t->token,
                                      "11111111-2222-4333-8444-555555555555", t->attempt, &c,
                                      1700000000, t->body, strlen(t->body), false), 0);
    ck_assert_str_eq(r.target, t->target);
    ck_assert_str_eq(r.canonical.data, t->canonical);
    ck_assert_str_eq(r.signature, t->signature);
    /* botocore's header order; Host and Content-Length come from the client. */
    const char *names[] = { "Content-Type", "User-Agent", "X-Amz-Date", "X-Amz-Security-Token",
                            "Authorization", "amz-sdk-invocation-id", "amz-sdk-request" };
    size_t k = 0;
    for (size_t i = 0; i < CGPROF_ARRAY_SIZE(names); i++) {
        if (!t->session && strcmp(names[i], "X-Amz-Security-Token") == 0)
            continue;
        ck_assert_uint_lt(k, r.nheaders);
        ck_assert_str_eq(r.headers[k].name, names[i]);
        k++;
    }
    ck_assert_uint_eq(k, r.nheaders);
    ck_assert_str_eq(r.headers[0].value, "application/json");
    ck_assert_str_eq(r.headers[2].value, "20231114T221320Z");
    ck_assert_str_eq(r.headers[r.nheaders - 1].value, t->attempt_hdr);
    ck_assert_str_eq(r.headers[r.nheaders - 2].value, "11111111-2222-4333-8444-555555555555");
    char want_auth[512];
    snprintf(want_auth, sizeof(want_auth),
             "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-west-2/codeguru-profiler/"
             "aws4_request, SignedHeaders=%s, Signature=%s",
             t->session ? "content-type;host;x-amz-date;x-amz-security-token"
                        : "content-type;host;x-amz-date", t->signature);
    ck_assert_str_eq(r.headers[r.nheaders - 3].value, want_auth);
    cgprof__cg_request_cleanup(&r);
}
/* Every row in one test: a fork per row costs ~50 ms under ASan. */
START_TEST(test_cg_build_matches_botocore)
{
    for (int i = 0; i < (int)CGPROF_ARRAY_SIZE(build_cases); i++)
        test_cg_build_matches_botocore_one(i);
}
END_TEST

START_TEST(test_cg_build_gzip_signs_content_encoding)
{
    struct cgprof__url u;
    ck_assert_int_eq(cgprof__url_parse("https://codeguru-profiler.us-west-2.amazonaws.com", &u), 0);
    struct cgprof__aws_creds c = test_creds(NULL);
    struct cgprof__cg_request r;
    ck_assert_int_eq(cgprof__cg_build(&r, CGPROF__CG_POST_AGENT_PROFILE, &u, "us-west-2", "g1",
                                      "tok", "inv", 1, &c, 1700000000, "\x1f\x8b", 2, true), 0);
    ck_assert_str_eq(r.headers[1].name, "Content-Encoding");
    ck_assert_str_eq(r.headers[1].value, "gzip");
    ck_assert_ptr_nonnull(strstr(r.canonical.data,
                                 "\ncontent-encoding;content-type;host;x-amz-date\n"));
    cgprof__cg_request_cleanup(&r);
    /* ConfigureAgent never carries it. */
    ck_assert_int_eq(cgprof__cg_build(&r, CGPROF__CG_CONFIGURE_AGENT, &u, "us-west-2", "g1",
                                      NULL, "inv", 1, &c, 1700000000, "{}", 2, true), 0);
    ck_assert_str_ne(r.headers[1].name, "Content-Encoding");
    cgprof__cg_request_cleanup(&r);
    /* A post needs its token. */
    ck_assert_int_eq(cgprof__cg_build(&r, CGPROF__CG_POST_AGENT_PROFILE, &u, "us-west-2", "g1",
                                      NULL, "inv", 1, &c, 1700000000, "{}", 2, false),
                     CGPROF_EINVAL);
    cgprof__cg_request_cleanup(&r);
}
END_TEST

/* ---- error codes ------------------------------------------------------------- */

static const struct err_case {
    const char *hname, *hvalue, *body, *code, *msg;
} err_cases[] = {
    { "x-amzn-ErrorType", "ResourceNotFoundException:http://internal.amazon.com/coral/",
      "{\"message\":\"no group\"}", "ResourceNotFoundException", "no group" },
    { NULL, NULL, "{\"__type\":\"com.amazonaws.codeguruprofiler#ValidationException\","
      "\"Message\":\"bad\"}", "ValidationException", "bad" },
    { NULL, NULL, "{\"code\":\"ThrottlingException\"}", "ThrottlingException", "" },
    { NULL, NULL, "{\"Code\":\"AccessDeniedException\",\"message\":\"denied\"}",
      "AccessDeniedException", "denied" },
    { NULL, NULL, "<html>oops</html>", "", "" },
    { NULL, NULL, "", "", "" },
};

static void test_cg_error_code_table_one(int _i)
{
    const struct err_case *t = &err_cases[_i];
    struct cgprof__http_response rs;
    memset(&rs, 0, sizeof(rs));
    if (t->hname) {
        rs.headers[0] = (struct cgprof__http_header){ t->hname, t->hvalue };
        rs.nheaders = 1;
    }
    cgprof_buf_init(&rs.body, 4096);
    cgprof_buf_appends(&rs.body, t->body);
    char code[64], msg[128];
    cgprof__cg_error_code(&rs, code, sizeof(code), msg, sizeof(msg));
    ck_assert_str_eq(code, t->code);
    ck_assert_str_eq(msg, t->msg);
    cgprof_buf_cleanup(&rs.body);
}
/* Every row in one test: a fork per row costs ~50 ms under ASan. */
START_TEST(test_cg_error_code_table)
{
    for (int i = 0; i < (int)CGPROF_ARRAY_SIZE(err_cases); i++)
        test_cg_error_code_table_one(i);
}
END_TEST

/* ---- retries --------------------------------------------------------------- */

static const struct retry_case {
    int rc, status;
    const char *code;
    bool want;
} retry_cases[] = {
    { CGPROF_EHTTP, 500, "InternalServerException", true },
    { CGPROF_EHTTP, 502, "", true },
    { CGPROF_EHTTP, 503, "", true },
    { CGPROF_EHTTP, 504, "", true },
    { CGPROF_EHTTP, 429, "ThrottlingException", true },
    { CGPROF_EHTTP, 400, "ThrottlingException", true },
    { CGPROF_EHTTP, 400, "RequestTimeout", true },
    { CGPROF_EHTTP, 400, "ValidationException", false },
    { CGPROF_EHTTP, 403, "AccessDeniedException", false },
    { CGPROF_EHTTP, 404, "ResourceNotFoundException", false },
    { CGPROF_EHTTP, 409, "ConflictException", false },
    { CGPROF_EHTTP, 402, "ServiceQuotaExceededException", false },
    { CGPROF_ETIMEOUT, 0, "", true },
    { CGPROF_EIO, 0, "", true },
    { -104, 0, "", true },              /* -ECONNRESET */
    { -111, 0, "", true },              /* -ECONNREFUSED */
    { CGPROF_ETLS, 0, "", false },
    { CGPROF_EAUTH, 0, "", false },
};

static void test_retry_is_retryable_table_one(int _i)
{
    const struct retry_case *t = &retry_cases[_i];
    ck_assert_int_eq(cgprof__retry_is_retryable(t->rc, t->status, t->code), t->want);
}
/* Every row in one test: a fork per row costs ~50 ms under ASan. */
START_TEST(test_retry_is_retryable_table)
{
    for (int i = 0; i < (int)CGPROF_ARRAY_SIZE(retry_cases); i++)
        test_retry_is_retryable_table_one(i);
}
END_TEST

START_TEST(test_retry_backoff_and_quota)
{
    ck_assert_uint_eq(cgprof__retry_backoff_ms(1, 0.0), 0);
    ck_assert_uint_eq(cgprof__retry_backoff_ms(1, 0.5), 500);
    ck_assert_uint_eq(cgprof__retry_backoff_ms(2, 0.5), 1000);
    ck_assert_uint_eq(cgprof__retry_backoff_ms(3, 0.25), 1000);
    ck_assert_uint_le(cgprof__retry_backoff_ms(2, 0.9999999), 2000);
    ck_assert_uint_eq(cgprof__retry_backoff_ms(6, 0.5), 10000);    /* min(32, 20) */
    ck_assert_uint_eq(cgprof__retry_backoff_ms(40, 0.5), 10000);
    struct cgprof__retry_quota q;
    cgprof__retry_quota_init(&q);
    ck_assert_int_eq(q.tokens, 500);
    int n = 0;
    while (cgprof__retry_quota_acquire(&q, CGPROF_EHTTP))
        n++;
    ck_assert_int_eq(n, 100);
    cgprof__retry_quota_release(&q, true, CGPROF_EHTTP);
    ck_assert_int_eq(q.tokens, 5);
    ck_assert(!cgprof__retry_quota_acquire(&q, CGPROF_ETIMEOUT));   /* costs 10 */
    ck_assert(cgprof__retry_quota_acquire(&q, CGPROF_EHTTP));
    cgprof__retry_quota_init(&q);
    cgprof__retry_quota_release(&q, false, 0);
    ck_assert_int_eq(q.tokens, 500);    /* capped */
}
END_TEST

static unsigned slept[8], nslept;
static bool record_sleep(void *ctx, unsigned ms)
{
    (void)ctx;
    if (nslept < 8)
        slept[nslept++] = ms;
    return true;
}

static double half(void)
{
    return 0.5;
}

struct client_fixture {
    struct stub_server s;
    struct cgprof__cg_client c;
};

static void client_up(struct client_fixture *f, const struct stub_reply *replies)
{
    stub_start(&f->s, replies);
    char url[64];
    stub_url(&f->s, url, sizeof(url));
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
    setenv("AWS_SESSION_TOKEN", "TOKEN123", 1);
    memset(&f->c, 0, sizeof(f->c));
    struct cgprof__http_options o = { .connect_timeout_ms = 2000, .io_timeout_ms = 2000,
                                      .max_body = 1 << 20 };
    f->c.http = cgprof__http_client_new(&o);
    ck_assert_ptr_nonnull(f->c.http);
    ck_assert_int_eq(cgprof__url_parse(url, &f->c.endpoint), 0);
    strcpy(f->c.region, "us-west-2");
    strcpy(f->c.group, "MyGroup");
    struct cgprof__creds_options co = { .region = "us-west-2" };
    f->c.creds = cgprof__creds_new(&co);
    cgprof__retry_quota_init(&f->c.quota);
    f->c.sleep_fn = record_sleep;
    f->c.rand01 = half;
    nslept = 0;
}

static void client_down(struct client_fixture *f)
{
    cgprof__http_client_free(f->c.http);
    cgprof__creds_free(f->c.creds);
    stub_stop(&f->s);
}

START_TEST(test_cg_call_retries_with_same_token)
{
    struct stub_reply r[] = {
        { STUB_REPLY, 503, NULL, "{\"message\":\"busy\"}", NULL },
        { STUB_REPLY, 429, "x-amzn-ErrorType: ThrottlingException:\r\n", "{}", NULL },
        { STUB_REPLY, 204, NULL, "", NULL },
        { 0 },
    };
    struct client_fixture f;
    client_up(&f, r);
    struct cgprof__cg_outcome o;
    ck_assert_int_eq(cgprof__cg_call(&f.c, CGPROF__CG_POST_AGENT_PROFILE, "tok-1", "{}", 2, false,
                                     &o), 0);
    ck_assert_uint_eq(o.attempts, 3);
    ck_assert_int_eq(o.status, 204);
    ck_assert_uint_eq(stub_count(&f.s), 3);
    const char *want_attempt[] = { "attempt=1", "attempt=2; max=3", "attempt=3; max=3" };
    char inv0[64], h[256];
    stub_header(&f.s.reqs[0], "amz-sdk-invocation-id", inv0, sizeof(inv0));
    ck_assert_uint_eq(strlen(inv0), 36);
    for (int i = 0; i < 3; i++) {
        ck_assert_str_eq(f.s.reqs[i].target, "/profilingGroups/MyGroup/agentProfile?profileToken=tok-1");
        ck_assert_str_eq(stub_header(&f.s.reqs[i], "amz-sdk-request", h, sizeof(h)),
                         want_attempt[i]);
        ck_assert_str_eq(stub_header(&f.s.reqs[i], "amz-sdk-invocation-id", h, sizeof(h)), inv0);
        ck_assert_str_eq(stub_header(&f.s.reqs[i], "X-Amz-Security-Token", h, sizeof(h)),
                         "TOKEN123");
        ck_assert_str_eq(f.s.reqs[i].body, "{}");
    }
    /* rand 0.5: 0.5 * min(2^0, 20) s, then 0.5 * min(2^1, 20) s */
    ck_assert_uint_eq(nslept, 2);
    ck_assert_uint_eq(slept[0], 500);
    ck_assert_uint_eq(slept[1], 1000);
    /* Two retries cost 5 each; the success refunds the last one (botocore). */
    ck_assert_int_eq(f.c.quota.tokens, 495);
    cgprof__cg_outcome_cleanup(&o);
    client_down(&f);
}
END_TEST

START_TEST(test_cg_call_gives_up_after_three)
{
    struct stub_reply r[] = { { STUB_REPLY, 500, NULL, "{\"__type\":\"x#InternalServerException\"}",
                                NULL }, { 0 } };
    struct client_fixture f;
    client_up(&f, r);
    struct cgprof__cg_outcome o;
    ck_assert_int_eq(cgprof__cg_call(&f.c, CGPROF__CG_CONFIGURE_AGENT, NULL, "{}", 2, false, &o),
                     CGPROF_EHTTP);
    ck_assert_uint_eq(o.attempts, 3);
    ck_assert(o.retryable);
    ck_assert_str_eq(o.error_code, "InternalServerException");
    ck_assert_uint_eq(stub_count(&f.s), 3);
    cgprof__cg_outcome_cleanup(&o);
    client_down(&f);
}
END_TEST

/* 4xx (other than throttling) is final at once; a 403 names the missing
 * permission in one log line. */
START_TEST(test_cg_call_403_not_retried_and_logged)
{
    struct stub_reply r[] = {
        { STUB_REPLY, 403, "x-amzn-ErrorType: AccessDeniedException\r\n",
          "{\"message\":\"User is not authorized\"}", NULL }, { 0 } };
    struct client_fixture f;
    client_up(&f, r);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    cgprof_log_set_fd(p[1]);
    struct cgprof__cg_outcome o;
    ck_assert_int_eq(cgprof__cg_call(&f.c, CGPROF__CG_POST_AGENT_PROFILE, "t", "{}", 2, false, &o),
                     CGPROF_EHTTP);
    cgprof_log_set_fd(-1);
    ck_assert_uint_eq(o.attempts, 1);
    ck_assert_int_eq(o.status, 403);
    ck_assert(!o.retryable);
    ck_assert_uint_eq(stub_count(&f.s), 1);
    char out[2048];
    ssize_t n = read(p[0], out, sizeof(out) - 1);
    ck_assert_int_gt(n, 0);
    out[n] = '\0';
    ck_assert_ptr_nonnull(strstr(out, "codeguru-profiler:PostAgentProfile"));
    ck_assert_ptr_nonnull(strstr(out, "AmazonCodeGuruProfilerAgentAccess"));
    ck_assert_ptr_null(strstr(out, "wJalrXUtnFEMI"));
    cgprof__cg_outcome_cleanup(&o);
    client_down(&f);
}
END_TEST

START_TEST(test_cg_call_network_errors_retried)
{
    struct stub_reply r[] = { { STUB_CLOSE, 0, NULL, NULL, NULL },
                              { STUB_REPLY, 200, NULL, "{\"shouldProfile\":true}", NULL }, { 0 } };
    struct client_fixture f;
    client_up(&f, r);
    struct cgprof__cg_outcome o;
    ck_assert_int_eq(cgprof__cg_call(&f.c, CGPROF__CG_CONFIGURE_AGENT, NULL, "{}", 2, false, &o), 0);
    ck_assert_uint_eq(o.attempts, 2);
    ck_assert_str_eq(o.body.data, "{\"shouldProfile\":true}");
    cgprof__cg_outcome_cleanup(&o);
    client_down(&f);
    /* Nothing listening at all: three attempts, then a transport error. */
    struct client_fixture g;
    client_up(&g, r);
    unsigned port = g.s.port;
    stub_stop(&g.s);
    g.s.nreqs = 0;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", port);
    ck_assert_int_eq(cgprof__url_parse(url, &g.c.endpoint), 0);
    ck_assert_int_ne(cgprof__cg_call(&g.c, CGPROF__CG_CONFIGURE_AGENT, NULL, "{}", 2, false, &o), 0);
    ck_assert_uint_eq(o.attempts, 3);
    ck_assert(o.retryable);
    cgprof__cg_outcome_cleanup(&o);
    cgprof__http_client_free(g.c.http);
    cgprof__creds_free(g.c.creds);
}
END_TEST

START_TEST(test_cg_call_without_credentials)
{
    struct stub_reply r[] = { { STUB_REPLY, 200, NULL, "{}", NULL }, { 0 } };
    struct client_fixture f;
    client_up(&f, r);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("HOME", "/nonexistent", 1);
    cgprof__creds_invalidate(f.c.creds);
    struct cgprof__cg_outcome o;
    ck_assert_int_eq(cgprof__cg_call(&f.c, CGPROF__CG_CONFIGURE_AGENT, NULL, "{}", 2, false, &o),
                     CGPROF_EAUTH);
    ck_assert_uint_eq(stub_count(&f.s), 0);
    cgprof__cg_outcome_cleanup(&o);
    client_down(&f);
}
END_TEST

/* ---- agent configuration -------------------------------------------------------- */

static const char svc_conf[] =
    "{\"agentParameters\": {\"MaxStackDepth\": \"500\", \"MemoryUsageLimitPercent\": \"20\", "
    "\"MinimumTimeForReportingInMilliseconds\": \"60000\", "
    "\"ReportingIntervalInMilliseconds\": \"123456\", "
    "\"SamplingIntervalInMilliseconds\": \"2000\"}, \"periodInSeconds\": 600, "
    "\"shouldProfile\": true}";

static struct cgprof_uploader_agent_config base_conf(const struct cgprof_config *cfg)
{
    return (struct cgprof_uploader_agent_config){
        .should_profile = true, .reporting_interval_ms = cfg->reporting_interval_ms,
        .sampling_interval_ms = cfg->sampling_interval_ms,
        .minimum_time_for_reporting_ms = cfg->minimum_time_for_reporting_ms,
        .max_stack_depth = cfg->max_stack_depth, .cpu_limit_percent = cfg->cpu_limit_percent,
        .generation = 1,
    };
}

START_TEST(test_cg_apply_configuration_service_values)
{
    struct cgprof_config cfg;
    const char *env[] = { NULL };
    cgprof_test_env_set(env);
    ck_assert_int_eq(cgprof_config_load(&cfg, "profilingGroupName:g,outputDir:/tmp",
                                        cgprof_test_getenv), 0);
    struct cgprof_uploader_agent_config a = base_conf(&cfg);
    ck_assert_int_eq(cgprof__cg_apply_configuration(svc_conf, strlen(svc_conf), &cfg, &a), 0);
    ck_assert(a.should_profile);
    ck_assert_uint_eq(a.reporting_interval_ms, 600000);      /* periodInSeconds */
    ck_assert_uint_eq(a.sampling_interval_ms, 2000);
    ck_assert_uint_eq(a.minimum_time_for_reporting_ms, 60000);
    ck_assert_uint_eq(a.max_stack_depth, 500);
    ck_assert_uint_eq(a.cpu_limit_percent, 20);              /* the Python agent's mapping */
    ck_assert_uint_eq(a.generation, 2);
    /* The same answer again changes nothing. */
    ck_assert_int_eq(cgprof__cg_apply_configuration(svc_conf, strlen(svc_conf), &cfg, &a), 0);
    ck_assert_uint_eq(a.generation, 2);
    const char *off = "{\"shouldProfile\": false, \"periodInSeconds\": 600}";
    ck_assert_int_eq(cgprof__cg_apply_configuration(off, strlen(off), &cfg, &a), 0);
    ck_assert(!a.should_profile);
    ck_assert_uint_eq(a.generation, 3);
    ck_assert_uint_eq(a.max_stack_depth, 500);              /* missing keys keep values */
}
END_TEST

START_TEST(test_cg_apply_configuration_user_overrides_win)
{
    struct cgprof_config cfg;
    const char *env[] = { "AWS_CODEGURU_PROFILER_SAMPLING_INTERVAL_MS", "250", NULL };
    cgprof_test_env_set(env);
    ck_assert_int_eq(cgprof_config_load(&cfg, "profilingGroupName:g,outputDir:/tmp,"
                                        "reportingIntervalMs:5000,minimumTimeForReportingMs:1000,"
                                        "maxStackDepth:64", cgprof_test_getenv), 0);
    struct cgprof_uploader_agent_config a = base_conf(&cfg);
    ck_assert_int_eq(cgprof__cg_apply_configuration(svc_conf, strlen(svc_conf), &cfg, &a), 0);
    ck_assert_uint_eq(a.reporting_interval_ms, 5000);
    ck_assert_uint_eq(a.sampling_interval_ms, 250);
    ck_assert_uint_eq(a.max_stack_depth, 64);
    /* The user lowered the minimum too, so the service's 60 s does not
     * apply (it would be above the user's 5 s interval). */
    ck_assert_uint_eq(a.minimum_time_for_reporting_ms, 1000);
}
END_TEST

START_TEST(test_cg_apply_configuration_rejects)
{
    struct cgprof_config cfg;
    const char *env[] = { NULL };
    cgprof_test_env_set(env);
    ck_assert_int_eq(cgprof_config_load(&cfg, "profilingGroupName:g,outputDir:/tmp",
                                        cgprof_test_getenv), 0);
    struct cgprof_uploader_agent_config a = base_conf(&cfg), before = a;
    /* A period below the minimum reporting time: the old config is kept. */
    const char *c1 = "{\"shouldProfile\": false, \"periodInSeconds\": 30, \"agentParameters\": "
                     "{\"MinimumTimeForReportingInMilliseconds\": \"60000\"}}";
    ck_assert_int_eq(cgprof__cg_apply_configuration(c1, strlen(c1), &cfg, &a), CGPROF_EPARSE);
    ck_assert_int_eq(memcmp(&a, &before, sizeof(a)), 0);
    const char *bad[] = { "", "[]", "nope", "{\"agentParameters\": 3" };
    for (size_t i = 0; i < CGPROF_ARRAY_SIZE(bad); i++)
        ck_assert_int_eq(cgprof__cg_apply_configuration(bad[i], strlen(bad[i]), &cfg, &a),
                         CGPROF_EPARSE);
    /* Unparsable values are ignored, the rest applies. */
    const char *c2 = "{\"shouldProfile\": true, \"periodInSeconds\": 600, \"agentParameters\": "
                     "{\"MaxStackDepth\": \"lots\", \"SamplingIntervalInMilliseconds\": \"-5\"}}";
    ck_assert_int_eq(cgprof__cg_apply_configuration(c2, strlen(c2), &cfg, &a), 0);
    ck_assert_uint_eq(a.max_stack_depth, before.max_stack_depth);
    ck_assert_uint_eq(a.sampling_interval_ms, before.sampling_interval_ms);
}
END_TEST

/* ---- the signing driver ------------------------------------------------------- */

static int sign_main(int argc, char **argv)
{
    if (argc != 12) {
        fprintf(stderr, "usage: %s sign OP ENDPOINT REGION GROUP TOKEN|- INVOCATION ATTEMPT "
                "EPOCH BODYFILE GZIP\n", argv[0]);
        return 2;
    }
    enum cgprof__cg_op op = strcmp(argv[2], "ConfigureAgent") == 0 ? CGPROF__CG_CONFIGURE_AGENT
                          : strcmp(argv[2], "PostAgentProfile") == 0
                              ? CGPROF__CG_POST_AGENT_PROFILE
                              : CGPROF__CG_CREATE_PROFILING_GROUP;
    struct cgprof__url u;
    if (cgprof__url_parse(argv[3], &u) != 0)
        return 2;
    struct cgprof__aws_creds c;
    memset(&c, 0, sizeof(c));
    const char *tok = getenv("AWS_SESSION_TOKEN");
    snprintf(c.access_key_id, sizeof(c.access_key_id), "%s", getenv("AWS_ACCESS_KEY_ID"));
    snprintf(c.secret_access_key, sizeof(c.secret_access_key), "%s",
             getenv("AWS_SECRET_ACCESS_KEY"));
    snprintf(c.session_token, sizeof(c.session_token), "%s", tok ? tok : "");
    char *body = NULL;
    size_t len = 0;
    if (cgprof_read_file(argv[10], 64 << 20, &body, &len) != 0)
        return 2;
    struct cgprof__cg_request r;
    int rc = cgprof__cg_build(&r, op, &u, argv[4], argv[5], strcmp(argv[6], "-") ? argv[6] : NULL,
                              argv[7], (unsigned)atoi(argv[8]), &c, strtoull(argv[9], NULL, 10),
                              body, len, atoi(argv[11]) != 0);
    if (rc != 0) {
        fprintf(stderr, "build: %s\n", cgprof_strerror(rc));
        return 1;
    }
    printf("TARGET %s\n", r.target);
    printf("H Host: %s\n", r.host);
    for (size_t i = 0; i < r.nheaders; i++)
        printf("H %s: %s\n", r.headers[i].name, r.headers[i].value);
    printf("CANONICAL\n%s", r.canonical.data);
    cgprof__cg_request_cleanup(&r);
    cgprof_free(body);
    return 0;
}

static Suite *codeguru_suite(void)
{
    Suite *s = suite_create("uploader");
    TCase *tc = tcase_create("codeguru");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_cg_endpoint_table);
    tcase_add_test(tc, test_cg_build_matches_botocore);
    tcase_add_test(tc, test_cg_build_gzip_signs_content_encoding);
    tcase_add_test(tc, test_cg_error_code_table);
    tcase_add_test(tc, test_retry_is_retryable_table);
    tcase_add_test(tc, test_retry_backoff_and_quota);
    tcase_add_test(tc, test_cg_call_retries_with_same_token);
    tcase_add_test(tc, test_cg_call_gives_up_after_three);
    tcase_add_test(tc, test_cg_call_403_not_retried_and_logged);
    tcase_add_test(tc, test_cg_call_network_errors_retried);
    tcase_add_test(tc, test_cg_call_without_credentials);
    tcase_add_test(tc, test_cg_apply_configuration_service_values);
    tcase_add_test(tc, test_cg_apply_configuration_user_overrides_win);
    tcase_add_test(tc, test_cg_apply_configuration_rejects);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "sign") == 0)
        return sign_main(argc, argv);
    return cgprof_test_run(codeguru_suite());
}
