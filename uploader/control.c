/* CodeGuru Profiler control-plane requests for the `cgprof` command
 * (CreateProfilingGroup, DescribeProfilingGroup, ListProfilingGroups,
 * DeleteProfilingGroup, GetPolicy, PutPermission, GetProfile,
 * GetRecommendations, and PostAgentProfile for `cgprof upload`), built
 * and signed as botocore builds them: the same SigV4 signer (sigv4.c) and
 * credential chain (credentials.c) as the agent, so the command and the
 * agent agree on where credentials come from. Transport is the caller's
 * (the command uses libcurl); the agent's requests are in codeguru.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../config/config.h"
#include "uploader_int.h"

struct cgprof_aws_session {
    struct cgprof__creds_chain *chain;
    char region[64];
};

/* Tests: test/unit/uploader/test_control.c */
struct cgprof_aws_session *cgprof_aws_session_new(const char *profile, const char *region,
                                                  const char *ca_bundle)
{
    struct cgprof_aws_session *s = cgprof_calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    snprintf(s->region, sizeof(s->region), "%s", region ? region : "");
    struct cgprof__creds_options o = {
        .credential_path = "",
        .credential_profile = profile ? profile : "",
        .region = s->region,
        .ca_bundle = ca_bundle ? ca_bundle : "",
    };
    s->chain = cgprof__creds_new(&o);
    if (!s->chain) {
        cgprof_free(s);
        return NULL;
    }
    return s;
}

void cgprof_aws_session_free(struct cgprof_aws_session *s)
{
    if (!s)
        return;
    cgprof__creds_free(s->chain);
    cgprof_free(s);
}

const char *cgprof_aws_session_source(const struct cgprof_aws_session *s)
{
    return s ? cgprof__creds_source(s->chain) : "none";
}

void cgprof_aws_session_invalidate(struct cgprof_aws_session *s)
{
    if (s)
        cgprof__creds_invalidate(s->chain);
}

/* Tests: test/unit/uploader/test_control.c */
int cgprof_codeguru_endpoint(const char *explicit_url, const char *region, char *out, size_t n)
{
    return cgprof__cg_endpoint(explicit_url, region, NULL, out, n);
}

void cgprof_cg_signed_cleanup(struct cgprof_cg_signed *r)
{
    for (size_t i = 0; i < r->nheaders; i++)
        cgprof_free(r->headers[i]);
    r->nheaders = 0;
    cgprof_buf_cleanup(&r->canonical);
}

static int add_header(struct cgprof_cg_signed *r, const char *name, const char *value)
{
    if (r->nheaders >= CGPROF_CG_MAX_HEADERS)
        return CGPROF_ETOOBIG;
    size_t n = strlen(name) + strlen(value) + 3;
    char *h = cgprof_malloc(n);
    if (!h)
        return CGPROF_ENOMEM;
    snprintf(h, n, "%s: %s", name, value);
    r->headers[r->nheaders++] = h;
    return 0;
}

/* Tests: test/unit/uploader/test_control.c, test/integration/cli_botocore.sh */
int cgprof_cg_sign(struct cgprof_cg_signed *r, const char *endpoint,
                   const struct cgprof_cg_call *call, struct cgprof_aws_session *s,
                   uint64_t epoch_s, const char *invocation_id, unsigned attempt)
{
    memset(r, 0, sizeof(*r));
    cgprof_buf_init(&r->canonical, 1 << 20);
    if (!endpoint || !call || !call->method || !call->path || call->path[0] != '/' || !s ||
        !invocation_id)
        return CGPROF_EINVAL;
    struct cgprof__url u;
    if (cgprof__url_parse(endpoint, &u) != 0)
        return CGPROF_EINVAL;
    struct cgprof__aws_creds creds;
    int rc = cgprof__creds_get(s->chain, &creds);
    if (rc != 0)
        return rc;

    /* Path: the endpoint's base path, then the operation's. */
    char path[2048];
    size_t bl = strcspn(u.path, "?");
    while (bl > 0 && u.path[bl - 1] == '/')
        bl--;
    int w = snprintf(path, sizeof(path), "%.*s%s", (int)bl, u.path, call->path);
    const char *auth_end = strstr(endpoint, "://") + 3;
    size_t base = (size_t)(auth_end - endpoint) + strcspn(auth_end, "/?#");
    int w2 = snprintf(r->url, sizeof(r->url), "%.*s%s%s%s", (int)base, endpoint, path,
                      call->query && *call->query ? "?" : "", call->query ? call->query : "");
    if (w < 0 || (size_t)w >= sizeof(path) || w2 < 0 || (size_t)w2 >= sizeof(r->url)) {
        rc = CGPROF_ETOOBIG;
        goto done;
    }
    char host[300], amz[17], att[32];
    if ((rc = cgprof__url_host_header(&u, host, sizeof(host))) != 0)
        goto done;
    cgprof__amz_date(epoch_s, amz);
    if (attempt <= 1)
        snprintf(att, sizeof(att), "attempt=1");
    else
        snprintf(att, sizeof(att), "attempt=%u; max=%d", attempt, CGPROF__RETRY_MAX_ATTEMPTS);
    const char *ctype = call->body ? (call->content_type ? call->content_type
                                                         : "application/json") : NULL;
    bool tok = creds.session_token[0] != '\0';

    /* botocore signs every header it has at signing time but User-Agent:
     * [Content-Type], [Accept], Host, X-Amz-Date, [X-Amz-Security-Token]. */
    struct cgprof__http_header sh[6];
    size_t ns = 0;
    if (ctype)
        sh[ns++] = (struct cgprof__http_header){ "Content-Type", ctype };
    if (call->accept)
        sh[ns++] = (struct cgprof__http_header){ "Accept", call->accept };
    sh[ns++] = (struct cgprof__http_header){ "Host", host };
    sh[ns++] = (struct cgprof__http_header){ "X-Amz-Date", amz };
    if (tok)
        sh[ns++] = (struct cgprof__http_header){ "X-Amz-Security-Token", creds.session_token };
    char hash[65];
    cgprof__sha256_hex(call->body ? call->body : "", call->body ? call->len : 0, hash);
    struct cgprof__sigv4_request sr = {
        .method = call->method, .path = path,
        .query = call->query && *call->query ? call->query : NULL, .headers = sh,
        .nheaders = ns, .payload_hash = hash, .normalize_path = true,
    };
    struct cgprof_buf authz;
    cgprof_buf_init(&authz, 64 << 10);
    rc = cgprof__sigv4_sign(&sr, s->region, CGPROF__SIGNING_NAME, amz, &creds, r->signature,
                            &authz, &r->canonical, NULL);
    /* Sent in botocore's order; Host and Content-Length are the transport's. */
    if (rc == 0 && ctype)
        rc = add_header(r, "Content-Type", ctype);
    if (rc == 0 && call->accept)
        rc = add_header(r, "Accept", call->accept);
    if (rc == 0)
        rc = add_header(r, "User-Agent", CGPROF__CLI_USER_AGENT);
    if (rc == 0)
        rc = add_header(r, "X-Amz-Date", amz);
    if (rc == 0 && tok)
        rc = add_header(r, "X-Amz-Security-Token", creds.session_token);
    if (rc == 0)
        rc = add_header(r, "Authorization", authz.data);
    if (rc == 0)
        rc = add_header(r, "amz-sdk-invocation-id", invocation_id);
    if (rc == 0)
        rc = add_header(r, "amz-sdk-request", att);
    cgprof_buf_cleanup(&authz);
done:
    memset(&creds, 0, sizeof(creds));
    if (rc != 0)
        cgprof_cg_signed_cleanup(r);
    return rc;
}

/* Tests: test/unit/uploader/test_control.c */
int cgprof_uri_encode(struct cgprof_buf *out, const char *s, bool keep_slash)
{
    return cgprof__uri_encode(out, s, strlen(s), keep_slash);
}

/* Tests: test/unit/uploader/test_control.c */
void cgprof_cg_error(const char *body, size_t len, const char *errortype_header, char *code,
                     size_t n, char *msg, size_t msg_n)
{
    struct cgprof__http_response rs;
    memset(&rs, 0, sizeof(rs));
    cgprof_buf_init(&rs.body, len + 1);
    if (len)
        cgprof_buf_append(&rs.body, body, len);
    if (errortype_header) {
        rs.headers[0] = (struct cgprof__http_header){ "x-amzn-errortype", errortype_header };
        rs.nheaders = 1;
    }
    cgprof__cg_error_code(&rs, code, n, msg, msg_n);
    cgprof_buf_cleanup(&rs.body);
}

/* Tests: test/unit/uploader/test_control.c */
bool cgprof_retryable(int transport_rc, int status, const char *error_code)
{
    return cgprof__retry_is_retryable(transport_rc, status, error_code);
}

/* Tests: test/unit/uploader/test_control.c */
unsigned cgprof_retry_backoff_ms(unsigned attempt, double r)
{
    return cgprof__retry_backoff_ms(attempt, r);
}
