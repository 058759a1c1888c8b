/* Unit tests for uploader/control.c, the control-plane requests of the
 * `cgprof` command: a GetProfile request signed with environment
 * credentials gives botocore's canonical request and signature (vector
 * computed with botocore's SigV4Auth), headers come in botocore's order,
 * bodies get a Content-Type and a base path on the endpoint is kept; no
 * credentials is CGPROF_EAUTH; error codes and retry rules are botocore's.
 * test/integration/cli_botocore.sh compares whole requests for every
 * operation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "../../../uploader/uploader.h"

static void creds_env(bool on)
{
    if (on) {
        setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
        setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
        setenv("AWS_SESSION_TOKEN", "TOK", 1);
    } else {
        unsetenv("AWS_ACCESS_KEY_ID");
        unsetenv("AWS_SECRET_ACCESS_KEY");
        unsetenv("AWS_SESSION_TOKEN");
    }
    setenv("HOME", cgprof_test_tmpdir(), 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    unsetenv("AWS_PROFILE");
    unsetenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
}

START_TEST(test_cg_sign_matches_botocore)
{
    creds_env(true);
    struct cgprof_aws_session *s = cgprof_aws_session_new(NULL, "us-west-2", NULL);
    ck_assert_ptr_nonnull(s);
    struct cgprof_cg_call c = {
        .method = "GET", .path = "/profilingGroups/g-1/profile",
        .query = "startTime=2026-01-02T03%3A04%3A05Z&endTime=2026-01-02T04%3A04%3A05Z",
        .accept = "application/json",
    };
    struct cgprof_cg_signed r;
    ck_assert_int_eq(cgprof_cg_sign(&r, "https://codeguru-profiler.us-west-2.amazonaws.com", &c,
                                    s, 1796644800u, "inv-1", 1), 0);
    ck_assert_str_eq(r.signature,
                     "a7d373eebbd4631661131a9c75a461f9e48f112fdc863c7e6383041472a96604");
    ck_assert_str_eq(r.url, "https://codeguru-profiler.us-west-2.amazonaws.com/profilingGroups/"
                            "g-1/profile?startTime=2026-01-02T03%3A04%3A05Z&endTime=2026-01-02T04"
                            "%3A04%3A05Z");
    ck_assert_uint_eq(r.nheaders, 7);
    const char *names[] = { "Accept: application/json", "User-Agent: cgprof/",
                            "X-Amz-Date: 20261207T120000Z", "X-Amz-Security-Token: TOK",
                            "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261207/"
                            "us-west-2/codeguru-profiler/aws4_request, SignedHeaders=accept;host;"
                            "x-amz-date;x-amz-security-token, Signature=a7d373ee",
                            "amz-sdk-invocation-id: inv-1", "amz-sdk-request: attempt=1" };
    for (size_t i = 0; i < 7; i++)
        ck_assert_msg(strncmp(r.headers[i], names[i], strlen(names[i])) == 0, "%s", r.headers[i]);
    ck_assert_str_eq(cgprof_aws_session_source(s), "environment");
    cgprof_cg_signed_cleanup(&r);

    /* A body: Content-Type first; a base path; a retry's attempt header. */
    struct cgprof_cg_call p = { .method = "PUT", .path = "/profilingGroups/g/policy/agentPermissions",
                                .body = "{}", .len = 2 };
    ck_assert_int_eq(cgprof_cg_sign(&r, "http://127.0.0.1:8080/base/", &p, s, 1796644800u,
                                    "inv-2", 2), 0);
    ck_assert_str_eq(r.url, "http://127.0.0.1:8080/base/profilingGroups/g/policy/agentPermissions");
    ck_assert_str_eq(r.headers[0], "Content-Type: application/json");
    ck_assert_str_eq(r.headers[r.nheaders - 1], "amz-sdk-request: attempt=2; max=3");
    ck_assert_ptr_nonnull(strstr(r.canonical.data, "/base/profilingGroups/g/policy/"));
    ck_assert_ptr_nonnull(strstr(r.canonical.data, "content-type;host;x-amz-date"));
    cgprof_cg_signed_cleanup(&r);

    /* Bad calls. */
    struct cgprof_cg_call bad = { .method = "GET", .path = "no-slash" };
    ck_assert_int_eq(cgprof_cg_sign(&r, "https://h", &bad, s, 1, "i", 1), CGPROF_EINVAL);
    cgprof_cg_signed_cleanup(&r);
    ck_assert_int_eq(cgprof_cg_sign(&r, "ftp://h", &c, s, 1, "i", 1), CGPROF_EINVAL);
    cgprof_cg_signed_cleanup(&r);
    cgprof_aws_session_free(s);
}
END_TEST

START_TEST(test_cg_sign_without_credentials)
{
    creds_env(false);
    cgprof_log_set_fd(-1);
    struct cgprof_aws_session *s = cgprof_aws_session_new("", "us-west-2", NULL);
    struct cgprof_cg_call c = { .method = "GET", .path = "/profilingGroups" };
    struct cgprof_cg_signed r;
    ck_assert_int_eq(cgprof_cg_sign(&r, "https://h", &c, s, 1, "i", 1), CGPROF_EAUTH);
    ck_assert_uint_eq(r.nheaders, 0);
    cgprof_cg_signed_cleanup(&r);
    ck_assert_str_eq(cgprof_aws_session_source(s), "none");
    cgprof_aws_session_free(s);
}
END_TEST

START_TEST(test_cg_endpoint_errors_retries)
{
    char ep[256];
    unsetenv("AWS_ENDPOINT_URL_CODEGURUPROFILER");
    unsetenv("AWS_ENDPOINT_URL");
    ck_assert_int_eq(cgprof_codeguru_endpoint(NULL, "eu-west-1", ep, sizeof(ep)), 0);
    ck_assert_str_eq(ep, "https://codeguru-profiler.eu-west-1.amazonaws.com");
    ck_assert_int_eq(cgprof_codeguru_endpoint("http://127.0.0.1:9", "eu-west-1", ep, sizeof(ep)), 0);
    ck_assert_str_eq(ep, "http://127.0.0.1:9");
    char code[64], msg[128];
    const char body[] = "{\"message\": \"not here\"}";
    cgprof_cg_error(body, strlen(body), "ResourceNotFoundException:http://internal", code,
                    sizeof(code), msg, sizeof(msg));
    ck_assert_str_eq(code, "ResourceNotFoundException");
    ck_assert_str_eq(msg, "not here");
    const char body2[] = "{\"__type\": \"com.amazon#ConflictException\", \"Message\": \"m\"}";
    cgprof_cg_error(body2, strlen(body2), NULL, code, sizeof(code), msg, sizeof(msg));
    ck_assert_str_eq(code, "ConflictException");
    ck_assert(cgprof_retryable(0, 503, ""));
    ck_assert(cgprof_retryable(0, 400, "ThrottlingException"));
    ck_assert(!cgprof_retryable(0, 404, "ResourceNotFoundException"));
    ck_assert_uint_le(cgprof_retry_backoff_ms(2, 0.999), 2000);
    struct cgprof_buf b;
    cgprof_buf_init(&b, 128);
    ck_assert_int_eq(cgprof_uri_encode(&b, "a b/c:d~", false), 0);
    ck_assert_str_eq(b.data, "a%20b%2Fc%3Ad~");
    cgprof_buf_cleanup(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("uploader");
    TCase *tc = tcase_create("control");
    tcase_add_test(tc, test_cg_sign_matches_botocore);
    tcase_add_test(tc, test_cg_sign_without_credentials);
    tcase_add_test(tc, test_cg_endpoint_errors_retries);
    suite_add_tcase(s, tc);
    return cgprof_test_run(s);
}
