/* The Pyroscope ingest protocol (grafana.com/docs/pyroscope, "Server HTTP
 * API"): one POST /ingest per reporting interval with name (the
 * application name and its {labels}), from and until (Unix seconds),
 * spyName, sampleRate and format=pprof in the query, and a
 * multipart/form-data body holding the gzip'd pprof profile (field
 * "profile") and a sample-type configuration (field "sample_type_config")
 * that tells the server about our cpu/wall/samples types, which its
 * built-in Go mapping does not know. Auth: basic, bearer, X-Scope-OrgID.
 * The thread that sends these requests is pyroscope_thread.c; the pprof
 * encoder is profile/pprof.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/base64.h>

#include "../config/config.h"
#include "uploader_int.h"

#define PPROF_MAX ((size_t)64 << 20)

/* The sample-type configuration: all three types are sums over the
 * interval; cpu and wall are nanoseconds of thread time (the values carry
 * their own unit in the pprof sample types, so no "units" is claimed
 * here), samples is a count. */
static const char sample_type_config[] =
    "{\"cpu\": {\"aggregation\": \"sum\", \"display-name\": \"cpu_nanoseconds\", "
    "\"sampled\": false}, "
    "\"wall\": {\"aggregation\": \"sum\", \"display-name\": \"wall_nanoseconds\", "
    "\"sampled\": false}, "
    "\"samples\": {\"units\": \"samples\", \"aggregation\": \"sum\", "
    "\"display-name\": \"samples_count\", \"sampled\": false}}";

/* Tests: test/unit/uploader/test_pyroscope.c */
int cgprof_pyroscope_settings_init(struct cgprof_pyroscope_settings *st,
                                   const struct cgprof_config *cfg)
{
    memset(st, 0, sizeof(*st));
    if (!cfg || !cfg->endpoint[0])
        return CGPROF_EINVAL;
    /* Split "scheme://user:password@rest" into the URL and the user info. */
    const char *ep = cfg->endpoint;
    const char *auth = strstr(ep, "://");
    if (!auth)
        return CGPROF_EINVAL;
    auth += 3;
    size_t alen = strcspn(auth, "/?#");
    const char *at = memchr(auth, '@', alen);
    if (at) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        size_t ul = colon ? (size_t)(colon - auth) : (size_t)(at - auth);
        if (cgprof__pct_decode(auth, ul, st->user, sizeof(st->user)) != 0 ||
            (colon && cgprof__pct_decode(colon + 1, (size_t)(at - colon - 1), st->password,
                                         sizeof(st->password)) != 0))
            return CGPROF_EINVAL;
        int w = snprintf(st->endpoint, sizeof(st->endpoint), "%.*s%s", (int)(auth - ep), ep,
                         at + 1);
        if (w < 0 || (size_t)w >= sizeof(st->endpoint))
            return CGPROF_ETOOBIG;
    } else {
        snprintf(st->endpoint, sizeof(st->endpoint), "%s", ep);
    }
    struct cgprof__url u;
    if (cgprof__url_parse(st->endpoint, &u) != 0)
        return CGPROF_EINVAL;
    /* Explicit options win over the URL's user info. */
    if (cfg->pyroscope_user[0])
        snprintf(st->user, sizeof(st->user), "%s", cfg->pyroscope_user);
    if (cfg->pyroscope_password[0])
        snprintf(st->password, sizeof(st->password), "%s", cfg->pyroscope_password);
    snprintf(st->token, sizeof(st->token), "%s", cfg->pyroscope_token);
    snprintf(st->tenant, sizeof(st->tenant), "%s", cfg->pyroscope_tenant);
    snprintf(st->tags, sizeof(st->tags), "%s", cfg->tags);
    const char *app = cfg->application_name[0] ? cfg->application_name
                      : cfg->profiling_group_name[0] ? cfg->profiling_group_name
                                                       : cgprof_program_name();
    snprintf(st->app, sizeof(st->app), "%s", app && *app ? app : "cgprof");
    return 0;
}

void cgprof_pyroscope_request_cleanup(struct cgprof_pyroscope_request *rq)
{
    cgprof_buf_cleanup(&rq->body);
    cgprof_buf_cleanup(&rq->authorization);
}

/* The ingest name: "app" or "app{k=v,k=v}" from "k=v;k=v". */
static int ingest_name(const struct cgprof_pyroscope_settings *st, struct cgprof_buf *out)
{
    int rc = cgprof_buf_appends(out, st->app);
    if (rc != 0 || !st->tags[0])
        return rc;
    rc = cgprof_buf_appends(out, "{");
    for (const char *t = st->tags; rc == 0 && *t; t++)
        rc = cgprof_buf_append(out, *t == ';' ? "," : t, 1);
    return rc == 0 ? cgprof_buf_appends(out, "}") : rc;
}

/* Unix seconds covering [start_ms, end_ms]: from rounds down, until up,
 * and until > from (the ingest API rejects empty ranges). */
static void time_range(const struct cgprof_profile *p, uint64_t *from, uint64_t *until)
{
    *from = p->start_ms / 1000;
    uint64_t end = p->end_ms > p->start_ms ? p->end_ms : p->start_ms + p->duration_ms;
    *until = (end + 999) / 1000;
    if (*until <= *from)
        *until = *from + 1;
}

static int add_part(struct cgprof_buf *b, const char *boundary, const char *name,
                    const char *filename, const void *data, size_t len)
{
    int rc = cgprof_buf_printf(b, "--%s\r\nContent-Disposition: form-data; name=\"%s\"; "
                               "filename=\"%s\"\r\nContent-Type: application/octet-stream"
                               "\r\n\r\n", boundary, name, filename);
    if (rc == 0)
        rc = cgprof_buf_append(b, data, len);
    return rc == 0 ? cgprof_buf_appends(b, "\r\n") : rc;
}

/* Clears a secret so it does not linger on the stack. */
static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

static bool contains(const void *hay, size_t n, const char *needle)
{
    return memmem(hay, n, needle, strlen(needle)) != NULL;
}

/* Tests: test/unit/uploader/test_pyroscope.c, test/integration/pyroscope.sh */
int cgprof_pyroscope_build(const struct cgprof_pyroscope_settings *st, const void *gz_json,
                           size_t len, struct cgprof_pyroscope_request *rq)
{
    memset(rq, 0, sizeof(*rq));
    cgprof_buf_init(&rq->body, PPROF_MAX + 4096);
    cgprof_buf_init(&rq->authorization, 4096);
    if (!st || !gz_json || len == 0)
        return CGPROF_EINVAL;
    struct cgprof_profile p;
    struct cgprof_buf json, pprof, t;
    cgprof_buf_init(&json, CGPROF_PROFILE_FILE_MAX);
    cgprof_buf_init(&pprof, PPROF_MAX);
    cgprof_buf_init(&t, sizeof(rq->target) - 1);
    int rc = cgprof_profile_init(&p);
    if (rc != 0)
        goto done;
    if ((rc = cgprof_gunzip(gz_json, len, &json)) != 0 ||
        (rc = cgprof_profile_decode_codeguru(&p, json.data, json.len)) != 0 ||
        (rc = cgprof_profile_encode_pprof(&p, &pprof)) != 0)
        goto done;

    /* Target: the endpoint's base path, /ingest, the query. */
    struct cgprof__url u;
    if ((rc = cgprof__url_parse(st->endpoint, &u)) != 0)
        goto done;
    size_t bl = strcspn(u.path, "?");
    while (bl > 0 && u.path[bl - 1] == '/')
        bl--;
    struct cgprof_buf name;
    cgprof_buf_init(&name, 2048);
    rc = ingest_name(st, &name);
    uint64_t from, until;
    time_range(&p, &from, &until);
    double hz = p.sample_weights[CGPROF_COUNTER_RUNNABLE];
    unsigned rate = hz >= 1 && hz < 1e6 ? (unsigned)(hz + 0.5) : 100;
    if (rc == 0)
        rc = cgprof_buf_append(&t, u.path, bl);
    if (rc == 0)
        rc = cgprof_buf_appends(&t, "/ingest?name=");
    if (rc == 0)
        rc = cgprof__uri_encode(&t, name.data, name.len, false);
    cgprof_buf_cleanup(&name);
    if (rc == 0)
        rc = cgprof_buf_printf(&t, "&from=%llu&until=%llu&spyName=cgprof&sampleRate=%u"
                               "&format=pprof", (unsigned long long)from,
                               (unsigned long long)until, rate);
    if (rc != 0)
        goto done;
    memcpy(rq->target, t.data, t.len + 1);
    /* The URL for clients that take one (libcurl): scheme://authority + target. */
    const char *auth = strstr(st->endpoint, "://");
    size_t base = (size_t)(auth - st->endpoint) + 3 + strcspn(auth + 3, "/?#");
    int w = snprintf(rq->url, sizeof(rq->url), "%.*s%s", (int)base, st->endpoint, rq->target);
    if (w < 0 || (size_t)w >= sizeof(rq->url)) {
        rc = CGPROF_ETOOBIG;
        goto done;
    }
    rq->from = from;
    rq->until = until;
    rq->sample_rate = rate;

    /* Body: a boundary that occurs in neither part. */
    for (int tries = 0;; tries++) {
        uint64_t a = cgprof_random_u64(), b = cgprof_random_u64();
        snprintf(rq->boundary, sizeof(rq->boundary), "cgprof-%016llx%016llx",
                 (unsigned long long)a, (unsigned long long)b);
        if (!contains(pprof.data, pprof.len, rq->boundary) || tries > 8)
            break;
    }
    snprintf(rq->content_type, sizeof(rq->content_type), "multipart/form-data; boundary=%s",
             rq->boundary);
    rc = add_part(&rq->body, rq->boundary, "profile", "profile.pprof", pprof.data, pprof.len);
    if (rc == 0)
        rc = add_part(&rq->body, rq->boundary, "sample_type_config", "sample_type_config.json",
                      sample_type_config, sizeof(sample_type_config) - 1);
    if (rc == 0)
        rc = cgprof_buf_printf(&rq->body, "--%s--\r\n", rq->boundary);
    if (rc != 0)
        goto done;

    /* Auth: a bearer token wins over basic auth. */
    if (st->token[0]) {
        rc = cgprof_buf_printf(&rq->authorization, "Bearer %s", st->token);
    } else if (st->user[0]) {
        char plain[sizeof(st->user) + sizeof(st->password) + 2];
        unsigned char enc[((sizeof(plain) + 2) / 3) * 4 + 1];
        size_t olen = 0;
        int pl = snprintf(plain, sizeof(plain), "%s:%s", st->user, st->password);
        if (mbedtls_base64_encode(enc, sizeof(enc), &olen, (const unsigned char *)plain,
                                  (size_t)pl) != 0)
            rc = CGPROF_ETOOBIG;
        else
            rc = cgprof_buf_printf(&rq->authorization, "Basic %.*s", (int)olen, (char *)enc);
        wipe(plain, sizeof(plain));
    }
done:
    cgprof_buf_cleanup(&t);
    cgprof_buf_cleanup(&json);
    cgprof_buf_cleanup(&pprof);
    cgprof_profile_cleanup(&p);
    if (rc != 0)
        cgprof_pyroscope_request_cleanup(rq);
    return rc;
}
