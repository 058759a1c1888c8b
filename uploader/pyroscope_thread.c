/* The Pyroscope sink, run by the sink-thread engine (sink_thread.c: queue,
 * spool, backoff, bounded stop, fork) on a thread of its own, apart from
 * the CodeGuru sink's, so one backend's outage never holds up the other.
 * What is Pyroscope's lives here: each stored profile becomes an ingest
 * request (pyroscope.c) posted with up to 3 attempts and jittered backoff
 * (retry.c); the spool is <outputDir>/pyroscope/spool/<app>/, and stopping
 * writes pending profiles to it at once (the process may end first), then
 * gives them a bounded last try. */
#include <stdio.h>
#include <string.h>

#include "../config/config.h"
#include "uploader_int.h"

#define RESPONSE_MAX ((size_t)64 << 10)

struct pyro_sink {
    struct cgprof__sink base;   /* first: the engine's part */
    struct cgprof_pyroscope_settings st;
    /* Owned by the thread: */
    bool warned_auth;
    struct cgprof__http_client *http;
    struct cgprof__url url;
    struct cgprof__retry_quota quota;
};

static const struct cgprof__sink_ops pyro_ops;
static struct cgprof__sink_class cls = CGPROF__SINK_CLASS_INIT(&pyro_ops);

static struct pyro_sink *pyro_of(struct cgprof__sink *s)
{
    return (struct pyro_sink *)s;
}

static const struct pyro_sink *pyro_of_const(const struct cgprof__sink *s)
{
    return (const struct pyro_sink *)s;
}

/* One profile, all its attempts. */
static enum cgprof__sink_result send_one(struct cgprof__sink *base, const char *token,
                                         const struct cgprof_buf *gz)
{
    struct pyro_sink *s = pyro_of(base);
    struct cgprof_pyroscope_request rq;
    int rc = cgprof_pyroscope_build(&s->st, gz->data, gz->len, &rq);
    if (rc != 0) {
        cgprof_pyroscope_request_cleanup(&rq);
        if (rc == CGPROF_ENOMEM)
            return CGPROF__SINK_FAILED;
        cgprof_warn("pyroscope: a profile (%s) cannot be encoded: %s; dropped", token,
                    cgprof_strerror(rc));
        return CGPROF__SINK_REJECTED;
    }
    struct cgprof__http_header h[5];
    size_t nh = 0;
    h[nh++] = (struct cgprof__http_header){ "Content-Type", rq.content_type };
    h[nh++] = (struct cgprof__http_header){ "User-Agent", CGPROF__PYROSCOPE_USER_AGENT };
    if (rq.authorization.len)
        h[nh++] = (struct cgprof__http_header){ "Authorization", rq.authorization.data };
    if (s->st.tenant[0])
        h[nh++] = (struct cgprof__http_header){ "X-Scope-OrgID", s->st.tenant };
    struct cgprof__http_request hr = {
        .method = "POST", .url = &s->url, .target = rq.target, .headers = h, .nheaders = nh,
        .body = rq.body.data, .body_len = rq.body.len,
    };
    enum cgprof__sink_result out = CGPROF__SINK_FAILED;
    int status = 0;
    for (unsigned attempt = 1; attempt <= CGPROF__RETRY_MAX_ATTEMPTS; attempt++) {
        struct cgprof__http_response rs;
        rc = cgprof__http_do(s->http, &hr, &rs);
        status = rc == 0 ? rs.status : 0;
        if (rc == 0 && status >= 200 && status < 300) {
            cgprof__http_response_cleanup(&rs);
            cgprof__retry_quota_release(&s->quota, attempt > 1, rc);
            out = CGPROF__SINK_SENT;
            break;
        }
        char msg[160] = "";
        if (rc == 0)
            snprintf(msg, sizeof(msg), "%.*s", (int)(rs.body.len < 150 ? rs.body.len : 150),
                     rs.body.data ? rs.body.data : "");
        if (rc == 0)
            cgprof__http_response_cleanup(&rs);
        for (char *c = msg; *c; c++)
            if (*c == '\n' || *c == '\r')
                *c = ' ';
        if (rc == 0 && (status == 401 || status == 403)) {
            /* Fixable by the user: keep the profile, say so once. */
            if (!s->warned_auth)
                cgprof_warn("pyroscope: %s rejected the credentials (HTTP %d %s); profiles "
                            "are kept in %s", s->st.endpoint, status, msg, base->spool.dir);
            s->warned_auth = true;
            break;
        }
        if (rc == 0 && !cgprof__retry_is_retryable(0, status, NULL) && status != 404 &&
            status != 408) {
            cgprof_warn("pyroscope: %s refused a profile (%s) with HTTP %d %s; dropped",
                        s->st.endpoint, token, status, msg);
            out = CGPROF__SINK_REJECTED;
            break;
        }
        if (attempt == CGPROF__RETRY_MAX_ATTEMPTS || !cgprof__retry_quota_acquire(&s->quota, rc)) {
            if (rc != 0)
                cgprof_warn("pyroscope: cannot reach %s: %s", s->st.endpoint,
                            cgprof_strerror(rc));
            else
                cgprof_warn("pyroscope: %s answered HTTP %d %s", s->st.endpoint, status, msg);
            break;
        }
        double r = (double)(cgprof_random_u64() >> 11) / (double)(1ull << 53);
        if (!cgprof__sink_sleep(base, cgprof__retry_backoff_ms(attempt, r)))
            break;  /* stopping: FAILED, so the profile stays in the spool */
    }
    if (out == CGPROF__SINK_SENT && s->warned_auth) {
        cgprof_info("pyroscope: %s accepts profiles again", s->st.endpoint);
        s->warned_auth = false;
    }
    cgprof_pyroscope_request_cleanup(&rq);
    return out;
}

/* ---- the sink's callbacks ------------------------------------------------- */

static int setup(struct cgprof__sink *base)
{
    int rc = cgprof_pyroscope_settings_init(&pyro_of(base)->st, &base->cfg);
    if (rc != 0)
        cgprof_error("pyroscope: endpoint '%s' is not usable", base->cfg.endpoint);
    return rc;
}

static const char *spool_name(const struct cgprof__sink *base)
{
    return pyro_of_const(base)->st.app;
}

static void started(const struct cgprof__sink *base)
{
    const struct pyro_sink *s = pyro_of_const(base);
    cgprof_info("sending profiles of %s to Pyroscope at %s", s->st.app, s->st.endpoint);
}

static int thread_init(struct cgprof__sink *base)
{
    struct pyro_sink *s = pyro_of(base);
    s->http = cgprof__sink_http_new(base, RESPONSE_MAX);
    if (!s->http)
        return CGPROF_ENOMEM;
    if (cgprof__url_parse(s->st.endpoint, &s->url) != 0)
        return CGPROF_EINVAL;
    cgprof__retry_quota_init(&s->quota);
    return 0;
}

static void abandoned(const struct cgprof__sink *base, unsigned timeout_ms, int kept)
{
    (void)timeout_ms;
    cgprof_warn("pyroscope: uploads did not finish in time; %d profile(s) kept in %s", kept,
                base->spool.dir);
}

static void cleanup(struct cgprof__sink *base)
{
    struct pyro_sink *s = pyro_of(base);
    if (s->http)
        cgprof__http_client_free(s->http);
    memset(s->st.password, 0, sizeof(s->st.password));
    memset(s->st.token, 0, sizeof(s->st.token));
}

static const struct cgprof__sink_ops pyro_ops = {
    .size = sizeof(struct pyro_sink),
    .name = "pyroscope",
    .prefix = "pyroscope: ",
    .encode_failed = "pyroscope: cannot encode a profile",
    .spool_unusable = "pyroscope spool: outputDir is not usable; undelivered profiles stay "
                      "in memory",
    .thread_name = "cgprof-pyro",
    .spool_subdir = "pyroscope",
    .spool_on_stop_request = true,
    .log_spool_delivered = false,
    .setup = setup,
    .spool_name = spool_name,
    .started = started,
    .thread_init = thread_init,
    .tick = NULL,
    .deliver = send_one,
    .fill = NULL,
    .abandoned = abandoned,
    .cleanup = cleanup,
};

/* ---- uploader.h ----------------------------------------------------------- */

int cgprof_pyroscope_start(const struct cgprof_config *cfg)
{
    return cgprof__sink_start(&cls, cfg);
}

int cgprof_pyroscope_submit(const struct cgprof_profile *p)
{
    return cgprof__sink_submit(&cls, p, NULL);
}

void cgprof_pyroscope_stop_request(unsigned timeout_ms)
{
    cgprof__sink_stop_request(&cls, timeout_ms);
}

void cgprof_pyroscope_stop(unsigned timeout_ms)
{
    cgprof__sink_stop(&cls, timeout_ms);
}

void cgprof_pyroscope_get_stats(struct cgprof_uploader_stats *out)
{
    cgprof__sink_get_stats(&cls, out);
}
