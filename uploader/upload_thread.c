/* The CodeGuru sink and the public uploader API, run by the sink-thread
 * engine (sink_thread.c: queue, spool, backoff, bounded stop, fork). What
 * is CodeGuru's lives here: the thread resolves credentials and fleet info,
 * runs ConfigureAgent every reporting cycle, posts each profile under its
 * own profileToken with standard-mode retries (CreateProfilingGroup on
 * Lambda when the group is missing) and fills submitted profiles with
 * fleet info and error counts. Protocol details are in codeguru.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../config/config.h"
#include "uploader_int.h"

struct cg_sink {
    struct cgprof__sink base;   /* first: the engine's part; base.lock guards: */
    struct cgprof_uploader_agent_config acfg;
    bool fleet_ready;
    char fleet_id[256];
    char *fleet_json;
    struct cgprof_error_counts errors;
    char endpoint[CGPROF_URL_MAX];
    /* Owned by the upload thread (and by setup before it starts): */
    struct cgprof__cg_client cg;
    struct cgprof__fleet fleet;
    struct cgprof__http_client *meta;
    bool lambda_autocreate;
};

static const struct cgprof__sink_ops cg_ops;
static struct cgprof__sink_class cls = CGPROF__SINK_CLASS_INIT(&cg_ops);

static struct cg_sink *cg_of(struct cgprof__sink *s)
{
    return (struct cg_sink *)s;
}

static const struct cg_sink *cg_of_const(const struct cgprof__sink *s)
{
    return (const struct cg_sink *)s;
}

/* ---- calls ---------------------------------------------------------------- */

static void count_error(struct cg_sink *u, unsigned *field)
{
    pthread_mutex_lock(&u->base.lock);
    (*field)++;
    u->errors.errors_count++;
    pthread_mutex_unlock(&u->base.lock);
}

static void create_group(struct cg_sink *u)
{
    const char *group = u->base.cfg.profiling_group_name;
    char body[600], tok[37];
    struct cgprof_buf b;
    cgprof_buf_init(&b, sizeof(body));
    int rc = cgprof_buf_appends(&b, "{\"profilingGroupName\": ");
    if (rc == 0)
        rc = cgprof__json_quote(&b, group);
    if (rc == 0)
        rc = cgprof_buf_appends(&b, ", \"computePlatform\": \"AWSLambda\"}");
    if (rc != 0) {
        cgprof_buf_cleanup(&b);
        return;
    }
    cgprof_uuid4(tok);
    struct cgprof__cg_outcome o;
    rc = cgprof__cg_call(&u->cg, CGPROF__CG_CREATE_PROFILING_GROUP, tok, b.data, b.len, false, &o);
    cgprof_buf_cleanup(&b);
    if (rc == 0)
        cgprof_info("created profiling group %s (AWSLambda)", group);
    else if (strcmp(o.error_code, "ConflictException") == 0)
        cgprof_info("profiling group %s already exists", group);
    else
        count_error(u, &u->errors.create_profiling_group_errors);
    cgprof__cg_outcome_cleanup(&o);
}

static void configure(struct cg_sink *u)
{
    struct cgprof_buf body;
    cgprof_buf_init(&body, 64 << 10);
    if (cgprof__fleet_configure_body(&u->fleet, &body) != 0) {
        cgprof_buf_cleanup(&body);
        return;
    }
    struct cgprof__cg_outcome o;
    int rc = cgprof__cg_call(&u->cg, CGPROF__CG_CONFIGURE_AGENT, NULL, body.data, body.len,
                             false, &o);
    cgprof_buf_cleanup(&body);
    pthread_mutex_lock(&u->base.lock);
    const char *group = u->base.cfg.profiling_group_name;
    u->base.stats.configure_calls++;
    if (rc == 0) {
        bool was = u->acfg.should_profile;
        if (cgprof__cg_apply_configuration(o.body.data, o.body.len, &u->base.cfg, &u->acfg) == 0
            && was != u->acfg.should_profile)
            cgprof_info("CodeGuru %s profiling for group %s", u->acfg.should_profile
                        ? "resumes" : "turns off", group);
    } else {
        u->errors.configure_agent_errors++;
        u->errors.errors_count++;
        bool rnfe = strcmp(o.error_code, "ResourceNotFoundException") == 0;
        if (rnfe && u->lambda_autocreate) {
            u->errors.configure_agent_rnfe_auto_create_enabled_errors++;
        } else if (rnfe || strcmp(o.error_code, "ValidationException") == 0) {
            if (u->acfg.should_profile) {
                u->acfg.should_profile = false;
                u->acfg.generation++;
                cgprof_warn("profiling is off until ConfigureAgent succeeds for group %s "
                            "(re-checked every %u s)", group,
                            u->acfg.reporting_interval_ms / 1000);
            }
        }
    }
    bool create = rc != 0 && u->lambda_autocreate &&
                  strcmp(o.error_code, "ResourceNotFoundException") == 0;
    pthread_mutex_unlock(&u->base.lock);
    cgprof__cg_outcome_cleanup(&o);
    if (create)
        create_group(u);
}

/* The engine's periodic work: ConfigureAgent once per reporting cycle. */
static unsigned tick(struct cgprof__sink *s)
{
    struct cg_sink *u = cg_of(s);
    configure(u);
    pthread_mutex_lock(&s->lock);
    unsigned iv = u->acfg.reporting_interval_ms;
    pthread_mutex_unlock(&s->lock);
    return iv ? iv : 60000;
}

/* One PostAgentProfile call (all its attempts) for a gzip'd profile. */
static enum cgprof__sink_result post(struct cgprof__sink *s, const char *token,
                                     const struct cgprof_buf *gz)
{
    struct cg_sink *u = cg_of(s);
    struct cgprof_buf json;
    cgprof_buf_init(&json, CGPROF_PROFILE_FILE_MAX);
    const void *body = gz->data;
    size_t len = gz->len;
    if (!s->cfg.upload_gzip) {
        int rc = cgprof_gunzip(gz->data, gz->len, &json);
        if (rc != 0) {
            cgprof_warn("a stored profile (token %s) does not decompress: %s; dropped", token,
                        cgprof_strerror(rc));
            cgprof_buf_cleanup(&json);
            return CGPROF__SINK_REJECTED;
        }
        body = json.data;
        len = json.len;
    }
    struct cgprof__cg_outcome o;
    int rc = cgprof__cg_call(&u->cg, CGPROF__CG_POST_AGENT_PROFILE, token, body, len,
                             s->cfg.upload_gzip, &o);
    cgprof_buf_cleanup(&json);
    enum cgprof__sink_result res = CGPROF__SINK_SENT;
    if (rc != 0) {
        pthread_mutex_lock(&s->lock);
        bool stopping = s->stop;
        u->errors.post_agent_profile_errors++;
        u->errors.errors_count++;
        bool rnfe = strcmp(o.error_code, "ResourceNotFoundException") == 0;
        if (rnfe && u->lambda_autocreate)
            u->errors.post_agent_profile_rnfe_auto_create_enabled_errors++;
        pthread_mutex_unlock(&s->lock);
        if (o.status == 400 && strcmp(o.error_code, "ValidationException") == 0)
            res = CGPROF__SINK_REJECTED;    /* this profile can never be accepted */
        else if (stopping && o.retryable && o.attempts < CGPROF__RETRY_MAX_ATTEMPTS)
            res = CGPROF__SINK_INTERRUPTED;
        else
            res = CGPROF__SINK_FAILED;
        if (rnfe && u->lambda_autocreate)
            create_group(u);
    }
    cgprof__cg_outcome_cleanup(&o);
    return res;
}

/* ---- the sink's callbacks ------------------------------------------------- */

static void publish_fleet(struct cg_sink *u)
{
    pthread_mutex_lock(&u->base.lock);
    snprintf(u->fleet_id, sizeof(u->fleet_id), "%s", u->fleet.instance_id);
    cgprof_free(u->fleet_json);
    u->fleet_json = u->fleet.info_json ? cgprof_strdup(u->fleet.info_json) : NULL;
    u->fleet_ready = true;
    pthread_mutex_unlock(&u->base.lock);
}

/* The endpoint (an explicit one belongs to Pyroscope when both sinks
 * run), the user's agent configuration, and fleet info without the
 * network (Lambda or the default) at once, so even the first profile
 * carries some; the thread refines it. */
static int setup(struct cgprof__sink *s)
{
    struct cg_sink *u = cg_of(s);
    const struct cgprof_config *cfg = &s->cfg;
    const char *explicit_ep = (cfg->sinks & CGPROF_SINK_PYROSCOPE) ? "" : cfg->endpoint;
    int rc = cgprof__cg_endpoint(explicit_ep, cfg->region, NULL, u->endpoint,
                                 sizeof(u->endpoint));
    if (rc != 0)
        return rc;
    u->acfg = (struct cgprof_uploader_agent_config){
        .should_profile = true,
        .reporting_interval_ms = cfg->reporting_interval_ms,
        .sampling_interval_ms = cfg->sampling_interval_ms,
        .minimum_time_for_reporting_ms = cfg->minimum_time_for_reporting_ms,
        .max_stack_depth = cfg->max_stack_depth,
        .cpu_limit_percent = cfg->cpu_limit_percent,
        .generation = 1,
    };
    struct cgprof__fleet_options fo = { .region = cfg->region, .account_id = cfg->account_id };
    if (cgprof__fleet_detect(&u->fleet, &fo) == 0)
        publish_fleet(u);
    return 0;
}

static const char *spool_name(const struct cgprof__sink *s)
{
    return s->cfg.profiling_group_name;
}

static void started(const struct cgprof__sink *s)
{
    cgprof_info("uploading to %s for profiling group %s", cg_of_const(s)->endpoint,
                s->cfg.profiling_group_name);
}

static int thread_init(struct cgprof__sink *s)
{
    struct cg_sink *u = cg_of(s);
    const struct cgprof_config *cfg = &s->cfg;
    u->cg.http = cgprof__sink_http_new(s, 256 << 10);
    struct cgprof__creds_options co = {
        .credential_path = cfg->credential_path,
        .credential_profile = cfg->credential_profile,
        .region = cfg->region,
        .ca_bundle = cfg->ca_bundle,
    };
    u->cg.creds = cgprof__creds_new(&co);
    u->meta = cgprof__metadata_client_new();
    if (!u->cg.http || !u->cg.creds)
        return CGPROF_ENOMEM;
    if (cgprof__url_parse(u->endpoint, &u->cg.endpoint) != 0)
        return CGPROF_EINVAL;
    snprintf(u->cg.region, sizeof(u->cg.region), "%s", cfg->region);
    snprintf(u->cg.group, sizeof(u->cg.group), "%s", cfg->profiling_group_name);
    cgprof__retry_quota_init(&u->cg.quota);
    u->cg.sleep_fn = cgprof__sink_sleep;
    u->cg.sleep_ctx = s;
    struct cgprof__fleet_options fo = {
        .region = cfg->region, .account_id = cfg->account_id, .http = u->meta,
    };
    if (cgprof__fleet_detect(&u->fleet, &fo) == 0)
        publish_fleet(u);
    const char *tr = getenv("LAMBDA_TASK_ROOT"), *rd = getenv("LAMBDA_RUNTIME_DIR");
    u->lambda_autocreate = tr && *tr && rd && *rd;
    return 0;
}

/* A submitted profile carries the fleet info and the error counts since
 * the last one. */
static void fill(struct cgprof__sink *s, struct cgprof_profile *p)
{
    struct cg_sink *u = cg_of(s);
    if (u->fleet_ready) {
        snprintf(p->fleet_instance_id, sizeof(p->fleet_instance_id), "%s", u->fleet_id);
        char *fj = u->fleet_json ? cgprof_strdup(u->fleet_json) : NULL;
        if (fj) {
            cgprof_free(p->fleet_info_json);
            p->fleet_info_json = fj;
        }
    }
    p->errors = u->errors;
    memset(&u->errors, 0, sizeof(u->errors));
}

static void abandoned(const struct cgprof__sink *s, unsigned timeout_ms, int kept)
{
    (void)s;
    cgprof_warn("uploads did not finish within %u ms; %d profile(s) kept in the spool",
                timeout_ms, kept);
}

static void cleanup(struct cgprof__sink *s)
{
    struct cg_sink *u = cg_of(s);
    if (u->cg.http)
        cgprof__http_client_free(u->cg.http);
    if (u->meta)
        cgprof__http_client_free(u->meta);
    cgprof__creds_free(u->cg.creds);
    cgprof__fleet_cleanup(&u->fleet);
    cgprof_free(u->fleet_json);
}

static const struct cgprof__sink_ops cg_ops = {
    .size = sizeof(struct cg_sink),
    .name = "uploader",
    .prefix = "",
    .encode_failed = "cannot encode a profile for CodeGuru",
    .spool_unusable = "spool: outputDir is not usable; undelivered profiles stay in memory",
    .thread_name = "cgprof-upload",
    .spool_subdir = NULL,
    .spool_on_stop_request = false,
    .log_spool_delivered = true,
    .setup = setup,
    .spool_name = spool_name,
    .started = started,
    .thread_init = thread_init,
    .tick = tick,
    .deliver = post,
    .fill = fill,
    .abandoned = abandoned,
    .cleanup = cleanup,
};

/* ---- uploader.h ----------------------------------------------------------- */

int cgprof_uploader_start(const struct cgprof_config *cfg)
{
    return cgprof__sink_start(&cls, cfg);
}

int cgprof_uploader_submit(struct cgprof_profile *p)
{
    return cgprof__sink_submit(&cls, p, p);
}

void cgprof_uploader_stop(unsigned timeout_ms)
{
    cgprof__sink_stop(&cls, timeout_ms);
}

static void copy_agent_config(struct cgprof__sink *s, void *out)
{
    *(struct cgprof_uploader_agent_config *)out = cg_of(s)->acfg;
}

bool cgprof_uploader_agent_config(struct cgprof_uploader_agent_config *out)
{
    return cgprof__sink_with_current(&cls, copy_agent_config, out);
}

void cgprof_uploader_get_stats(struct cgprof_uploader_stats *out)
{
    cgprof__sink_get_stats(&cls, out);
}
