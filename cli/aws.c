/* What the control-plane commands (groups, permissions, profile,
 * recommendations, upload) share: the common options --region --profile
 * --endpoint-url --output, credentials from the agent's chain
 * (uploader/control.c signs exactly as botocore does), one libcurl handle
 * sending signed calls with botocore's standard retries (3 attempts, same
 * invocation id, jittered backoff), error reporting with the service's
 * error code, and JSON output. Test seams (never documented for users):
 * CGPROF_TEST_EPOCH fixes the signing time, CGPROF_TEST_INVOCATION_ID and
 * CGPROF_TEST_CLIENT_TOKEN fix the ids, so a test can compare our request
 * with botocore's byte for byte. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "../config/config.h"
#include "cli_int.h"

#define RESPONSE_MAX ((size_t)512 << 20)

static const char *env(const char *k)
{
    const char *v = getenv(k);
    return v && *v ? v : NULL;
}

/* Tests: test/integration/cli_botocore.sh */
int cgprof__cli_aws_option(struct cgprof__cli_aws *a, int code, const char *arg)
{
    switch (code) {
    case CGPROF__CLI_OPT_REGION:
        if (!cgprof_config_valid_region(arg))
            return cgprof__cli_usage(a->cmd, "--region '%s' is not an AWS region name", arg);
        snprintf(a->region, sizeof(a->region), "%s", arg);
        return 0;
    case CGPROF__CLI_OPT_PROFILE:
        if (!*arg || strlen(arg) >= sizeof(a->profile))
            return cgprof__cli_usage(a->cmd, "--profile needs a profile name");
        snprintf(a->profile, sizeof(a->profile), "%s", arg);
        return 0;
    case CGPROF__CLI_OPT_ENDPOINT_URL:
        if (strncmp(arg, "http://", 7) != 0 && strncmp(arg, "https://", 8) != 0)
            return cgprof__cli_usage(a->cmd, "--endpoint-url '%s' is not an http:// or "
                                     "https:// URL", arg);
        if (strlen(arg) >= sizeof(a->endpoint_url))
            return cgprof__cli_usage(a->cmd, "--endpoint-url is too long");
        snprintf(a->endpoint_url, sizeof(a->endpoint_url), "%s", arg);
        return 0;
    case CGPROF__CLI_OPT_OUTPUT:
        if (strcmp(arg, "json") == 0)
            a->json = true;
        else if (strcmp(arg, "text") == 0)
            a->json = false;
        else
            return cgprof__cli_usage(a->cmd, "--output is json or text, not '%s'", arg);
        return 0;
    }
    return cgprof__cli_usage(a->cmd, "unknown option");
}

/* Region as the AWS CLI picks it: --region, AWS_REGION, AWS_DEFAULT_REGION,
 * else us-east-1 (the agent's default). */
static void pick_region(struct cgprof__cli_aws *a)
{
    if (a->region[0])
        return;
    const char *r = env("AWS_REGION");
    if (!r)
        r = env("AWS_DEFAULT_REGION");
    snprintf(a->region, sizeof(a->region), "%s", r && cgprof_config_valid_region(r) ? r
                                                                                    : "us-east-1");
}

/* Tests: test/integration/cli_botocore.sh */
int cgprof__cli_aws_open(struct cgprof__cli_aws *a)
{
    pick_region(a);
    if (cgprof_codeguru_endpoint(a->endpoint_url, a->region, a->endpoint,
                                 sizeof(a->endpoint)) != 0)
        return cgprof__cli_fail("no usable CodeGuru Profiler endpoint (see --endpoint-url)");
    a->session = cgprof_aws_session_new(a->profile, a->region, env("AWS_CA_BUNDLE"));
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !a->session ||
        !(a->curl = curl_easy_init())) {
        cgprof__cli_aws_close(a);
        return cgprof__cli_fail("out of memory");
    }
    return CGPROF_CLI_OK;
}

void cgprof__cli_aws_close(struct cgprof__cli_aws *a)
{
    if (a->curl)
        curl_easy_cleanup(a->curl);
    a->curl = NULL;
    cgprof_aws_session_free(a->session);
    a->session = NULL;
}

void cgprof__cli_token(char out[37], const char *seam)
{
    const char *t = env(seam);
    if (t && strlen(t) < 37)
        snprintf(out, 37, "%s", t);
    else
        cgprof_uuid4(out);
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    struct cgprof__cli_response *rs = ctx;
    return cgprof_buf_append(&rs->body, p, size * n) == 0 ? size * n : 0;
}

static void trim_copy(char *dst, size_t n, const char *s, size_t len)
{
    while (len && (s[len - 1] == '\r' || s[len - 1] == '\n' || s[len - 1] == ' '))
        len--;
    while (len && *s == ' ') {
        s++;
        len--;
    }
    if (len >= n)
        len = n - 1;
    memcpy(dst, s, len);
    dst[len] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
    struct cgprof__cli_response *rs = ctx;
    size_t len = size * n;
    if (len > 5 && strncmp(p, "HTTP/", 5) == 0) {   /* a new response (after 100) */
        rs->errortype[0] = rs->content_encoding[0] = rs->content_type[0] = '\0';
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon)
        return len;
    size_t nl = (size_t)(colon - p);
    const char *v = colon + 1;
    size_t vl = len - nl - 1;
    if (nl == 16 && strncasecmp(p, "x-amzn-errortype", nl) == 0)
        trim_copy(rs->errortype, sizeof(rs->errortype), v, vl);
    else if (nl == 16 && strncasecmp(p, "content-encoding", nl) == 0)
        trim_copy(rs->content_encoding, sizeof(rs->content_encoding), v, vl);
    else if (nl == 12 && strncasecmp(p, "content-type", nl) == 0)
        trim_copy(rs->content_type, sizeof(rs->content_type), v, vl);
    return len;
}

void cgprof__cli_response_cleanup(struct cgprof__cli_response *rs)
{
    cgprof_buf_cleanup(&rs->body);
}

static uint64_t signing_time(void)
{
    const char *t = env("CGPROF_TEST_EPOCH");
    if (t)
        return strtoull(t, NULL, 10);
    return (uint64_t)time(NULL);
}

/* One attempt: 0 with rs filled (any status), or a transport error
 * (message in rs->message). */
static int attempt_once(struct cgprof__cli_aws *a, const struct cgprof_cg_call *c,
                        const char *inv, unsigned attempt, struct cgprof__cli_response *rs)
{
    struct cgprof_cg_signed sg;
    int rc = cgprof_cg_sign(&sg, a->endpoint, c, a->session, signing_time(), inv, attempt);
    if (rc != 0) {
        cgprof_cg_signed_cleanup(&sg);
        return rc;
    }
    struct curl_slist *hl = NULL, *t;
    for (size_t i = 0; i < sg.nheaders; i++) {
        if (!(t = curl_slist_append(hl, sg.headers[i]))) {
            rc = CGPROF_ENOMEM;
            break;
        }
        hl = t;
    }
    /* No headers botocore would not send: curl's default Accept and Expect. */
    if (rc == 0 && !c->accept && (t = curl_slist_append(hl, "Accept:")))
        hl = t;
    if (rc == 0 && (t = curl_slist_append(hl, "Expect:")))
        hl = t;
    if (rc == 0 && !c->body && (t = curl_slist_append(hl, "Content-Type:")))
        hl = t;
    CURL *h = a->curl;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, sg.url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
    if (c->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->len);
    } else if (strcmp(c->method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(c->method, "DELETE") == 0 || strcmp(c->method, "POST") == 0 ||
               strcmp(c->method, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, rs);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, rs);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (env("AWS_CA_BUNDLE"))
        curl_easy_setopt(h, CURLOPT_CAINFO, env("AWS_CA_BUNDLE"));
    char err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
    cgprof_buf_reset(&rs->body);
    rs->status = 0;
    rs->code[0] = rs->message[0] = '\0';
    if (rc == 0) {
        CURLcode cc = curl_easy_perform(h);
        if (cc != CURLE_OK) {
            snprintf(rs->message, sizeof(rs->message), "%s", err[0] ? err
                                                                    : curl_easy_strerror(cc));
            rc = cc == CURLE_OPERATION_TIMEDOUT ? CGPROF_ETIMEOUT : CGPROF_EIO;
        } else {
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rs->status);
        }
    }
    curl_slist_free_all(hl);
    cgprof_cg_signed_cleanup(&sg);
    return rc;
}

/* Tests: test/integration/cli_botocore.sh, cli_commands.sh */
int cgprof__cli_aws_call(struct cgprof__cli_aws *a, const struct cgprof_cg_call *c,
                         struct cgprof__cli_response *rs)
{
    memset(rs, 0, sizeof(*rs));
    cgprof_buf_init(&rs->body, RESPONSE_MAX);
    char inv[37];
    cgprof__cli_token(inv, "CGPROF_TEST_INVOCATION_ID");
    int rc = 0;
    for (unsigned attempt = 1; attempt <= 3; attempt++) {
        rc = attempt_once(a, c, inv, attempt, rs);
        if (rc == CGPROF_EAUTH) {
            snprintf(rs->message, sizeof(rs->message), "no AWS credentials found (environment, "
                     "shared files%s%s, container, instance metadata)",
                     a->profile[0] ? " with profile " : "", a->profile);
            return rc;
        }
        if (rc == 0 && rs->status >= 200 && rs->status < 300)
            return 0;
        if (rc == 0) {
            cgprof_cg_error(rs->body.data, rs->body.len, rs->errortype[0] ? rs->errortype : NULL,
                            rs->code, sizeof(rs->code), rs->message, sizeof(rs->message));
            if (strcmp(rs->code, "ExpiredTokenException") == 0 ||
                strcmp(rs->code, "ExpiredToken") == 0)
                cgprof_aws_session_invalidate(a->session);
            rc = CGPROF_EHTTP;
        }
        if (rc == CGPROF_EINVAL || rc == CGPROF_ENOMEM || rc == CGPROF_ETOOBIG ||
            !cgprof_retryable(rc, (int)rs->status, rs->code) || attempt == 3)
            break;
        double r = (double)(cgprof_random_u64() >> 11) / (double)(1ull << 53);
        unsigned ms = cgprof_retry_backoff_ms(attempt, r);
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
    return rc;
}

/* Tests: test/integration/cli_commands.sh */
int cgprof__cli_aws_fail(const struct cgprof__cli_aws *a, const char *what,
                         const struct cgprof__cli_response *rs, int rc)
{
    if (rc == CGPROF_EHTTP) {
        const char *hint = "";
        if (rs->status == 403)
            hint = " (check the credentials' IAM permissions for codeguru-profiler)";
        return cgprof__cli_fail("%s: %s (HTTP %ld)%s%s%s", what,
                                rs->code[0] ? rs->code : "error", rs->status,
                                rs->message[0] ? ": " : "", rs->message, hint);
    }
    if (rc == CGPROF_EAUTH)
        return cgprof__cli_fail("%s: %s", what, rs->message);
    return cgprof__cli_fail("%s: cannot reach %s: %s", what, a->endpoint,
                            rs->message[0] ? rs->message : cgprof_strerror(rc));
}

/* Tests: test/integration/cli_commands.sh */
int cgprof__cli_print_json(const char *text, size_t len)
{
    json_error_t e;
    json_t *j = len ? json_loadb(text, len, 0, &e) : json_object();
    if (!j) {
        fwrite(text, 1, len, stdout);
        fputc('\n', stdout);
        return fflush(stdout) == 0 ? CGPROF_CLI_OK : CGPROF_CLI_ERROR;
    }
    char *s = json_dumps(j, JSON_INDENT(4) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    json_decref(j);
    if (!s)
        return cgprof__cli_fail("out of memory");
    puts(s);
    free(s);
    return fflush(stdout) == 0 ? CGPROF_CLI_OK : CGPROF_CLI_ERROR;
}

/* Tests: test/integration/cli_commands.sh */
int cgprof__cli_path_name(struct cgprof_buf *out, const char *prefix, const char *name,
                          const char *suffix)
{
    int rc = cgprof_buf_appends(out, prefix);
    if (rc == 0)
        rc = cgprof_uri_encode(out, name, false);
    if (rc == 0 && suffix)
        rc = cgprof_buf_appends(out, suffix);
    return rc;
}

/* ISO-8601 as botocore serializes timestamps into a query:
 * "2026-01-02T03:04:05Z", with ".ffffffZ" when there are milliseconds. */
void cgprof__cli_iso8601(uint64_t ms, char *out, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    if (ms % 1000)
        snprintf(out, n, "%s.%06uZ", base, (unsigned)(ms % 1000) * 1000u);
    else
        snprintf(out, n, "%sZ", base);
}

/* Jansson's default layout is Python's json.dumps layout (", ", ": ")
 * but for two details fixed here: \uXXXX escapes in lower case, and DEL
 * escaped (Python's ensure_ascii escapes everything outside ' '..'~').
 * s must come from json_dumps(..., JSON_ENSURE_ASCII) without
 * JSON_COMPACT or JSON_INDENT. Tests: test/integration/cli_botocore.sh */
int cgprof__cli_json_python(struct cgprof_buf *out, const char *s)
{
    int rc = 0;
    for (size_t i = 0; s[i] && rc == 0; i++) {
        if (s[i] == '\\' && s[i + 1] == 'u') {
            char esc[7];
            memcpy(esc, s + i, 6);
            esc[6] = '\0';
            for (int k = 2; k < 6; k++)
                if (esc[k] >= 'A' && esc[k] <= 'F')
                    esc[k] = (char)(esc[k] - 'A' + 'a');
            rc = cgprof_buf_append(out, esc, 6);
            i += 5;
        } else if (s[i] == '\\' && s[i + 1]) {
            rc = cgprof_buf_append(out, s + i, 2);
            i++;
        } else if (s[i] == 0x7f) {
            rc = cgprof_buf_appends(out, "\\u007f");
        } else {
            rc = cgprof_buf_append(out, s + i, 1);
        }
    }
    return rc;
}
