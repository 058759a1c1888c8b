/* The CodeGuru Profiler agent protocol (WIRE.md §0-3, §7): endpoints,
 * ConfigureAgent / PostAgentProfile / CreateProfilingGroup requests built
 * and signed as botocore builds them, error-code parsing, the standard
 * retry loop, and merging the service's agent configuration under the
 * user's. The thread that drives these calls is upload_thread.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "../config/config.h"
#include "uploader_int.h"

#define RESPONSE_MAX ((size_t)256 << 10)

/* Tests: test/unit/uploader/test_codeguru.c */
int cgprof__cg_endpoint(const char *explicit_url, const char *region, cgprof__getenv_fn get,
                        char *out, size_t n)
{
    cgprof__getenv_fn g = get ? get : cgprof__libc_getenv;
    const char *src = "endpoint";
    const char *e = explicit_url && *explicit_url ? explicit_url : NULL;
    if (!e && (e = g("AWS_ENDPOINT_URL_CODEGURUPROFILER")) && *e)
        src = "AWS_ENDPOINT_URL_CODEGURUPROFILER";
    else if (!e || !*e) {
        e = g("AWS_ENDPOINT_URL");
        src = "AWS_ENDPOINT_URL";
    }
    int w;
    if (e && *e) {
        struct cgprof__url u;
        if (cgprof__url_parse(e, &u) != 0) {
            cgprof_error("%s '%s' is not an http:// or https:// URL", src, e);
            return CGPROF_EINVAL;
        }
        w = snprintf(out, n, "%s", e);
    } else {
        if (!region || !*region)
            return CGPROF_EINVAL;
        w = snprintf(out, n, "https://codeguru-profiler.%s.amazonaws.com%s", region,
                     strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
    }
    return w > 0 && (size_t)w < n ? 0 : CGPROF_ETOOBIG;
}

/* Tests: test/unit/uploader/test_codeguru.c */
void cgprof__cg_request_cleanup(struct cgprof__cg_request *r)
{
    cgprof_buf_cleanup(&r->authorization);
    cgprof_buf_cleanup(&r->canonical);
}

/* Tests: test/unit/uploader/test_codeguru.c, test/integration/codeguru_botocore.sh */
int cgprof__cg_build(struct cgprof__cg_request *r, enum cgprof__cg_op op,
                     const struct cgprof__url *endpoint, const char *region,
                     const char *group, const char *token, const char *invocation_id,
                     unsigned attempt, const struct cgprof__aws_creds *creds,
                     uint64_t epoch_s, const void *body, size_t len, bool gzip_encoded)
{
    memset(r, 0, sizeof(*r));
    cgprof_buf_init(&r->authorization, 64 << 10);
    cgprof_buf_init(&r->canonical, 1 << 20);
    if (!endpoint || !group || !*group || !creds || !invocation_id)
        return CGPROF_EINVAL;
    if (op != CGPROF__CG_CONFIGURE_AGENT && (!token || !*token))
        return CGPROF_EINVAL;
    /* The endpoint may carry a base path; the operation's path follows it. */
    struct cgprof_buf t;
    cgprof_buf_init(&t, sizeof(r->target) - 1);
    size_t bl = strcspn(endpoint->path, "?");
    while (bl > 0 && endpoint->path[bl - 1] == '/')
        bl--;
    int rc = cgprof_buf_append(&t, endpoint->path, bl);
    if (rc == 0)
        rc = cgprof_buf_appends(&t, "/profilingGroups");
    size_t path_end = 0;
    if (op == CGPROF__CG_CREATE_PROFILING_GROUP) {
        path_end = t.len;
        if (rc == 0)
            rc = cgprof_buf_appends(&t, "?clientToken=");
    } else {
        if (rc == 0)
            rc = cgprof_buf_appends(&t, "/");
        if (rc == 0)
            rc = cgprof__uri_encode(&t, group, strlen(group), false);
        if (rc == 0)
            rc = cgprof_buf_appends(&t, op == CGPROF__CG_CONFIGURE_AGENT ? "/configureAgent"
                                                                          : "/agentProfile");
        path_end = t.len;
        if (rc == 0 && op == CGPROF__CG_POST_AGENT_PROFILE)
            rc = cgprof_buf_appends(&t, "?profileToken=");
    }
    if (rc == 0 && op != CGPROF__CG_CONFIGURE_AGENT)
        rc = cgprof__uri_encode(&t, token, strlen(token), false);
    if (rc == 0)
        memcpy(r->target, t.data, t.len + 1);
    cgprof_buf_cleanup(&t);
    if (rc != 0)
        return rc;
    if ((rc = cgprof__url_host_header(endpoint, r->host, sizeof(r->host))) != 0)
        return rc;
    cgprof__amz_date(epoch_s, r->amz_date);
    snprintf(r->invocation_id, sizeof(r->invocation_id), "%s", invocation_id);
    if (attempt <= 1)
        snprintf(r->attempt, sizeof(r->attempt), "attempt=1");
    else
        snprintf(r->attempt, sizeof(r->attempt), "attempt=%u; max=%d", attempt,
                 CGPROF__RETRY_MAX_ATTEMPTS);
    snprintf(r->content_type, sizeof(r->content_type), "application/json");

    bool token_hdr = creds->session_token[0] != '\0';
    bool enc = gzip_encoded && op == CGPROF__CG_POST_AGENT_PROFILE;
    struct cgprof__http_header sh[5];
    size_t ns = 0;
    sh[ns++] = (struct cgprof__http_header){ "Content-Type", r->content_type };
    if (enc)
        sh[ns++] = (struct cgprof__http_header){ "Content-Encoding", "gzip" };
    sh[ns++] = (struct cgprof__http_header){ "Host", r->host };
    sh[ns++] = (struct cgprof__http_header){ "X-Amz-Date", r->amz_date };
    if (token_hdr)
        sh[ns++] = (struct cgprof__http_header){ "X-Amz-Security-Token", creds->session_token };
    char hash[65];
    cgprof__sha256_hex(body ? body : "", body ? len : 0, hash);
    char path[1024], *q;
    memcpy(path, r->target, path_end);
    path[path_end] = '\0';
    q = r->target[path_end] == '?' ? r->target + path_end + 1 : NULL;
    struct cgprof__sigv4_request sr = {
        .method = "POST", .path = path, .query = q, .headers = sh, .nheaders = ns,
        .payload_hash = hash, .normalize_path = true,
    };
    rc = cgprof__sigv4_sign(&sr, region, CGPROF__SIGNING_NAME, r->amz_date, creds, r->signature,
                            &r->authorization, &r->canonical, NULL);
    if (rc != 0)
        return rc;
    size_t n = 0;
    r->headers[n++] = (struct cgprof__http_header){ "Content-Type", r->content_type };
    if (enc)
        r->headers[n++] = (struct cgprof__http_header){ "Content-Encoding", "gzip" };
    r->headers[n++] = (struct cgprof__http_header){ "User-Agent", CGPROF__USER_AGENT };
    r->headers[n++] = (struct cgprof__http_header){ "X-Amz-Date", r->amz_date };
    if (token_hdr)
        r->headers[n++] = (struct cgprof__http_header){ "X-Amz-Security-Token",
                                                        creds->session_token };
    r->headers[n++] = (struct cgprof__http_header){ "Authorization", r->authorization.data };
    r->headers[n++] = (struct cgprof__http_header){ "amz-sdk-invocation-id", r->invocation_id };
    r->headers[n++] = (struct cgprof__http_header){ "amz-sdk-request", r->attempt };
    r->nheaders = n;
    return 0;
}

static void copy_trunc(char *dst, size_t n, const char *s, size_t len)
{
    if (len >= n)
        len = n - 1;
    memcpy(dst, s, len);
    dst[len] = '\0';
}

/* Tests: test/unit/uploader/test_codeguru.c */
void cgprof__cg_error_code(const struct cgprof__http_response *rs, char *code, size_t n,
                           char *msg, size_t msg_n)
{
    code[0] = '\0';
    if (msg)
        msg[0] = '\0';
    const char *h = cgprof__http_response_header(rs, "x-amzn-errortype");
    json_t *j = rs->body.len ? json_loadb(rs->body.data, rs->body.len, 0, NULL) : NULL;
    if (h && *h) {
        copy_trunc(code, n, h, strcspn(h, ":"));
    } else if (json_is_object(j)) {
        const char *c = json_string_value(json_object_get(j, "code"));
        if (!c)
            c = json_string_value(json_object_get(j, "Code"));
        if (!c)
            c = json_string_value(json_object_get(j, "__type"));
        if (c) {
            const char *hash = strrchr(c, '#');
            c = hash ? hash + 1 : c;
            copy_trunc(code, n, c, strcspn(c, ":"));
        }
    }
    if (msg && json_is_object(j)) {
        const char *m = json_string_value(json_object_get(j, "message"));
        if (!m)
            m = json_string_value(json_object_get(j, "Message"));
        if (m)
            copy_trunc(msg, msg_n, m, strlen(m));
    }
    json_decref(j);
}

static const char *op_name(enum cgprof__cg_op op)
{
    switch (op) {
    case CGPROF__CG_CONFIGURE_AGENT: return "ConfigureAgent";
    case CGPROF__CG_POST_AGENT_PROFILE: return "PostAgentProfile";
    case CGPROF__CG_CREATE_PROFILING_GROUP: return "CreateProfilingGroup";
    }
    return "?";
}

void cgprof__cg_outcome_cleanup(struct cgprof__cg_outcome *out)
{
    cgprof_buf_cleanup(&out->body);
}

static double default_rand(void)
{
    return (double)(cgprof_random_u64() >> 11) / (double)(1ull << 53);
}

static bool default_sleep(void *ctx, unsigned ms)
{
    (void)ctx;
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0)
        ;
    return true;
}

static uint64_t wall_s(void)
{
    return cgprof_epoch_ms() / 1000;
}

/* A final failure in one line, naming the IAM permission for a 403. */
static void log_failure(const struct cgprof__cg_client *c, enum cgprof__cg_op op,
                        const struct cgprof__cg_outcome *o)
{
    if (o->rc == CGPROF_EAUTH) {   /* the credential chain said so once already */
        cgprof_debug("%s for profiling group %s: no usable credentials", op_name(op), c->group);
        return;
    }
    if (o->rc != CGPROF_EHTTP) {
        cgprof_warn("%s for profiling group %s failed after %u attempt(s): %s", op_name(op),
                    c->group, o->attempts, cgprof_strerror(o->rc));
        return;
    }
    if (o->status == 403) {
        const char *code = o->error_code[0] ? o->error_code : "AccessDenied";
        if (strstr(code, "Token") || strstr(code, "Signature") ||
            strcmp(code, "UnrecognizedClientException") == 0)
            cgprof_warn("%s for profiling group %s: HTTP 403 %s (the credentials from the %s "
                        "were rejected: %s)", op_name(op), c->group, code,
                        cgprof__creds_source(c->creds), o->message);
        else
            cgprof_warn("%s for profiling group %s: HTTP 403 %s; the credentials lack the IAM "
                        "permission codeguru-profiler:%s on the group (the managed policy "
                        "AmazonCodeGuruProfilerAgentAccess grants it)", op_name(op), c->group,
                        code, op_name(op));
        return;
    }
    cgprof_warn("%s for profiling group %s: HTTP %d %s%s%s", op_name(op), c->group, o->status,
                o->error_code, o->message[0] ? ": " : "", o->message);
}

/* Tests: test/unit/uploader/test_codeguru.c */
int cgprof__cg_call(struct cgprof__cg_client *c, enum cgprof__cg_op op, const char *token,
                    const void *body, size_t len, bool gzip_encoded,
                    struct cgprof__cg_outcome *out)
{
    memset(out, 0, sizeof(*out));
    cgprof_buf_init(&out->body, RESPONSE_MAX);
    char inv[37];
    cgprof_uuid4(inv);
    int last_rc = 0;
    for (unsigned attempt = 1; attempt <= CGPROF__RETRY_MAX_ATTEMPTS; attempt++) {
        out->attempts = attempt;
        out->status = 0;
        out->error_code[0] = out->message[0] = '\0';
        struct cgprof__aws_creds creds;
        int rc = cgprof__creds_get(c->creds, &creds);
        if (rc != 0) {
            out->rc = rc;
            out->retryable = false;
            break;
        }
        struct cgprof__cg_request r;
        rc = cgprof__cg_build(&r, op, &c->endpoint, c->region, c->group, token, inv, attempt,
                              &creds, c->now_s ? c->now_s() : wall_s(), body, len,
                              gzip_encoded);
        struct cgprof__http_response rs;
        bool have_rs = false;
        if (rc == 0) {
            struct cgprof__http_request rq = {
                .method = "POST", .url = &c->endpoint, .target = r.target,
                .headers = r.headers, .nheaders = r.nheaders, .body = body, .body_len = len,
                .idempotent = true,     /* the token makes a resend harmless */
            };
            rc = cgprof__http_do(c->http, &rq, &rs);
            have_rs = rc == 0;
        }
        cgprof__cg_request_cleanup(&r);
        memset(&creds, 0, sizeof(creds));  /* the request pointed into it */
        if (have_rs) {
            out->status = rs.status;
            if (rs.status >= 200 && rs.status < 300) {
                out->rc = 0;
                cgprof_buf_append(&out->body, rs.body.data ? rs.body.data : "", rs.body.len);
                cgprof__http_response_cleanup(&rs);
                cgprof__retry_quota_release(&c->quota, attempt > 1, last_rc);
                return 0;
            }
            cgprof__cg_error_code(&rs, out->error_code, sizeof(out->error_code), out->message,
                                  sizeof(out->message));
            cgprof__http_response_cleanup(&rs);
            rc = CGPROF_EHTTP;
            if (strcmp(out->error_code, "ExpiredTokenException") == 0 ||
                strcmp(out->error_code, "ExpiredToken") == 0 ||
                strcmp(out->error_code, "UnrecognizedClientException") == 0 ||
                strcmp(out->error_code, "InvalidSignatureException") == 0)
                cgprof__creds_invalidate(c->creds);
        }
        out->rc = rc;
        out->retryable = cgprof__retry_is_retryable(rc, out->status, out->error_code);
        last_rc = rc;
        cgprof_debug("%s attempt %u: %s (HTTP %d %s)", op_name(op), attempt, cgprof_strerror(rc),
                     out->status, out->error_code);
        if (!out->retryable || attempt == CGPROF__RETRY_MAX_ATTEMPTS)
            break;
        if (!cgprof__retry_quota_acquire(&c->quota, rc)) {
            cgprof_debug("retry quota exhausted");
            break;
        }
        unsigned ms = cgprof__retry_backoff_ms(attempt, c->rand01 ? c->rand01() : default_rand());
        if (!(c->sleep_fn ? c->sleep_fn(c->sleep_ctx, ms) : default_sleep(NULL, ms)))
            break;
    }
    log_failure(c, op, out);
    return out->rc;
}

/* ---- agent configuration ---------------------------------------------- */

/* The user_set bit of an option key, from config's table order. */
static bool user_set(const struct cgprof_config *cfg, const char *key)
{
    const struct cgprof_option_info *o = cgprof_config_options();
    for (unsigned i = 0; o && o[i].key && i < 64; i++)
        if (strcmp(o[i].key, key) == 0)
            return (cfg->user_set >> i) & 1u;
    return false;
}

static bool param(json_t *params, const char *name, unsigned *out)
{
    const char *v = json_string_value(json_object_get(params, name));
    json_t *num = json_object_get(params, name);
    long long x;
    char *end = NULL;
    if (v) {
        x = strtoll(v, &end, 10);
        if (end == v || *end != '\0')
            return false;
    } else if (json_is_integer(num)) {
        x = json_integer_value(num);
    } else {
        return false;
    }
    if (x < 0 || x > 0x7fffffffLL)
        return false;
    *out = (unsigned)x;
    return true;
}

/* Tests: test/unit/uploader/test_codeguru.c */
int cgprof__cg_apply_configuration(const char *json, size_t len, const struct cgprof_config *cfg,
                                   struct cgprof_uploader_agent_config *cur)
{
    json_t *j = json_loadb(json ? json : "", len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return CGPROF_EPARSE;
    }
    struct cgprof_uploader_agent_config n = *cur;
    json_t *sp = json_object_get(j, "shouldProfile");
    if (json_is_boolean(sp))
        n.should_profile = json_is_true(sp);
    json_t *period = json_object_get(j, "periodInSeconds");
    if (json_is_integer(period) && json_integer_value(period) > 0 &&
        json_integer_value(period) <= 86400 && !user_set(cfg, "reportingIntervalMs"))
        n.reporting_interval_ms = (unsigned)json_integer_value(period) * 1000u;
    json_t *params = json_object_get(j, "agentParameters");
    unsigned v;
    if (param(params, "SamplingIntervalInMilliseconds", &v) && v > 0 &&
        !user_set(cfg, "samplingIntervalMs"))
        n.sampling_interval_ms = v;
    if (param(params, "MinimumTimeForReportingInMilliseconds", &v) &&
        !user_set(cfg, "minimumTimeForReportingMs"))
        n.minimum_time_for_reporting_ms = v;
    if (param(params, "MaxStackDepth", &v) && v > 0 && !user_set(cfg, "maxStackDepth"))
        n.max_stack_depth = v;
    /* As the Python agent does: MemoryUsageLimitPercent sets the CPU
     * overhead limit (WIRE.md §2). ReportingIntervalInMilliseconds is
     * ignored on purpose; periodInSeconds is the reporting interval. */
    if (param(params, "MemoryUsageLimitPercent", &v) && v > 0 && v <= 100 &&
        !user_set(cfg, "cpuLimitPercent"))
        n.cpu_limit_percent = v;
    json_decref(j);
    if (n.reporting_interval_ms < n.minimum_time_for_reporting_ms) {
        cgprof_warn("service configuration: reporting interval %u ms is below the minimum "
                    "reporting time %u ms; keeping the current configuration",
                    n.reporting_interval_ms, n.minimum_time_for_reporting_ms);
        return CGPROF_EPARSE;
    }
    if (n.should_profile != cur->should_profile ||
        n.reporting_interval_ms != cur->reporting_interval_ms ||
        n.sampling_interval_ms != cur->sampling_interval_ms ||
        n.minimum_time_for_reporting_ms != cur->minimum_time_for_reporting_ms ||
        n.max_stack_depth != cur->max_stack_depth || n.cpu_limit_percent != cur->cpu_limit_percent)
        n.generation = cur->generation + 1;
    *cur = n;
    return 0;
}
