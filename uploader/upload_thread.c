/* The CodeGuru sink's thread and the public uploader API: profiles are
 * encoded and gzip'd on the caller's thread and queued; the upload thread
 * (all signals blocked) runs ConfigureAgent every reporting cycle, posts
 * each profile under its own profileToken with standard-mode retries, and
 * moves what it cannot deliver to the spool (spool.c), which it drains
 * with backoff. Stopping gives pending profiles a bounded last chance and
 * spools the rest. Protocol details are in codeguru.c. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../config/config.h"
#include "uploader_int.h"

#define QUEUE_MAX 16                    /* profiles held in memory */
#define ENCODE_MAX ((size_t)64 << 20)   /* JSON bound before gzip */
#define SPOOL_AGE_MS (3ull * 24 * 3600 * 1000)
#define SPOOL_BACKOFF_MIN_MS 1000u
#define SPOOL_BACKOFF_MAX_MS (5u * 60u * 1000u)

struct item {
    struct item *next;
    char token[37];
    struct cgprof_buf gz;
    char spool_path[1400];      /* set once written to the spool */
    bool in_flight;
    uint64_t next_try_ns;
};

struct uploader {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct cgprof_config cfg;
    pid_t pid;
    int refs;                   /* the global pointer and the thread */
    bool thread_running;
    bool stop;
    bool final_done;
    bool abandoned;             /* stop() gave up waiting */
    uint64_t deadline_ns;
    struct item *head;
    size_t nitems;
    struct cgprof__spool spool;
    struct cgprof_uploader_agent_config acfg;
    bool fleet_ready;
    char fleet_id[256];
    char *fleet_json;
    struct cgprof_error_counts errors;
    struct cgprof_uploader_stats stats;
    char endpoint[CGPROF_URL_MAX];
    /* Owned by the upload thread: */
    struct cgprof__cg_client cg;
    struct cgprof__fleet fleet;
    struct cgprof__http_client *meta;
    bool lambda_autocreate;
    bool init_ok;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct uploader *g;
static struct cgprof_uploader_stats g_last_stats;   /* after stop, for tests */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static uint64_t mono_ns(void)
{
    return cgprof_now_ns();
}

static void prepare(void)
{
    pthread_mutex_lock(&g_lock);
}

static void parent(void)
{
    pthread_mutex_unlock(&g_lock);
}

static void child(void)
{
    pthread_mutex_init(&g_lock, NULL);
}

static void register_atfork(void)
{
    pthread_atfork(prepare, parent, child);
}

static void item_free(struct item *it)
{
    if (!it)
        return;
    cgprof_buf_cleanup(&it->gz);
    cgprof_free(it);
}

static void uploader_free(struct uploader *u)
{
    while (u->head) {
        struct item *n = u->head->next;
        item_free(u->head);
        u->head = n;
    }
    if (u->cg.http)
        cgprof__http_client_free(u->cg.http);
    if (u->meta)
        cgprof__http_client_free(u->meta);
    cgprof__creds_free(u->cg.creds);
    cgprof__fleet_cleanup(&u->fleet);
    cgprof_free(u->fleet_json);
    pthread_mutex_destroy(&u->lock);
    pthread_cond_destroy(&u->cond);
    cgprof_free(u);
}

/* Drops one reference (lock held); frees on the last. Returns true when
 * freed (the lock is gone then). */
static bool unref_locked(struct uploader *u)
{
    if (--u->refs > 0)
        return false;
    pthread_mutex_unlock(&u->lock);
    uploader_free(u);
    return true;
}

static void remove_item(struct uploader *u, struct item *it)
{
    for (struct item **pp = &u->head; *pp; pp = &(*pp)->next) {
        if (*pp == it) {
            *pp = it->next;
            u->nitems--;
            return;
        }
    }
}

/* Waits up to ms on the condition unless the stop flag is (or becomes)
 * set; the lock is held. Returns false when stopped. */
static bool wait_locked(struct uploader *u, uint64_t ms)
{
    if (u->stop)
        return false;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + ms * 1000000ull;
    ts.tv_sec += (time_t)(ns / 1000000000ull);
    ts.tv_nsec = (long)(ns % 1000000000ull);
    pthread_cond_timedwait(&u->cond, &u->lock, &ts);
    return !u->stop;
}

/* Retry backoff of codeguru.c: interrupted by stop in normal running;
 * during the final flush, allowed only when it ends before the deadline. */
static bool retry_sleep(void *ctx, unsigned ms)
{
    struct uploader *u = ctx;
    pthread_mutex_lock(&u->lock);
    bool ok;
    if (u->stop) {
        ok = mono_ns() + ms * 1000000ull < u->deadline_ns && !u->abandoned;
        if (ok) {
            pthread_mutex_unlock(&u->lock);
            struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
            nanosleep(&ts, NULL);
            return true;
        }
    } else {
        uint64_t end = mono_ns() + ms * 1000000ull;
        ok = true;
        while (ok && mono_ns() < end)
            ok = wait_locked(u, (end - mono_ns()) / 1000000ull + 1);
    }
    pthread_mutex_unlock(&u->lock);
    return ok;
}

/* ---- calls ---------------------------------------------------------------- */

static void count_error(struct uploader *u, unsigned *field)
{
    pthread_mutex_lock(&u->lock);
    (*field)++;
    u->errors.errors_count++;
    pthread_mutex_unlock(&u->lock);
}

static void create_group(struct uploader *u)
{
    char body[600], tok[37];
    struct cgprof_buf b;
    cgprof_buf_init(&b, sizeof(body));
    int rc = cgprof_buf_appends(&b, "{\"profilingGroupName\": ");
    if (rc == 0)
        rc = cgprof__json_quote(&b, u->cfg.profiling_group_name);
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
        cgprof_info("created profiling group %s (AWSLambda)", u->cfg.profiling_group_name);
    else if (strcmp(o.error_code, "ConflictException") == 0)
        cgprof_info("profiling group %s already exists", u->cfg.profiling_group_name);
    else
        count_error(u, &u->errors.create_profiling_group_errors);
    cgprof__cg_outcome_cleanup(&o);
}

static void configure(struct uploader *u)
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
    pthread_mutex_lock(&u->lock);
    u->stats.configure_calls++;
    if (rc == 0) {
        bool was = u->acfg.should_profile;
        if (cgprof__cg_apply_configuration(o.body.data, o.body.len, &u->cfg, &u->acfg) == 0 &&
            was != u->acfg.should_profile)
            cgprof_info("CodeGuru %s profiling for group %s", u->acfg.should_profile
                        ? "resumes" : "turns off", u->cfg.profiling_group_name);
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
                            "(re-checked every %u s)", u->cfg.profiling_group_name,
                            u->acfg.reporting_interval_ms / 1000);
            }
        }
    }
    bool create = rc != 0 && u->lambda_autocreate &&
                  strcmp(o.error_code, "ResourceNotFoundException") == 0;
    pthread_mutex_unlock(&u->lock);
    cgprof__cg_outcome_cleanup(&o);
    if (create)
        create_group(u);
}

enum post_result { POST_OK, POST_FAILED, POST_REJECTED, POST_INTERRUPTED };

/* One PostAgentProfile call (all its attempts) for a gzip'd profile. */
static enum post_result post(struct uploader *u, const char *token, const struct cgprof_buf *gz)
{
    struct cgprof_buf json;
    cgprof_buf_init(&json, CGPROF_PROFILE_FILE_MAX);
    const void *body = gz->data;
    size_t len = gz->len;
    if (!u->cfg.upload_gzip) {
        int rc = cgprof_gunzip(gz->data, gz->len, &json);
        if (rc != 0) {
            cgprof_warn("a stored profile (token %s) does not decompress: %s; dropped", token,
                        cgprof_strerror(rc));
            cgprof_buf_cleanup(&json);
            return POST_REJECTED;
        }
        body = json.data;
        len = json.len;
    }
    struct cgprof__cg_outcome o;
    int rc = cgprof__cg_call(&u->cg, CGPROF__CG_POST_AGENT_PROFILE, token, body, len,
                             u->cfg.upload_gzip, &o);
    cgprof_buf_cleanup(&json);
    enum post_result res = POST_OK;
    if (rc != 0) {
        pthread_mutex_lock(&u->lock);
        bool stopping = u->stop;
        u->errors.post_agent_profile_errors++;
        u->errors.errors_count++;
        bool rnfe = strcmp(o.error_code, "ResourceNotFoundException") == 0;
        if (rnfe && u->lambda_autocreate)
            u->errors.post_agent_profile_rnfe_auto_create_enabled_errors++;
        pthread_mutex_unlock(&u->lock);
        if (o.status == 400 && strcmp(o.error_code, "ValidationException") == 0)
            res = POST_REJECTED;    /* this profile can never be accepted */
        else if (stopping && o.retryable && o.attempts < CGPROF__RETRY_MAX_ATTEMPTS)
            res = POST_INTERRUPTED;
        else
            res = POST_FAILED;
        if (rnfe && u->lambda_autocreate)
            create_group(u);
    }
    cgprof__cg_outcome_cleanup(&o);
    return res;
}

/* ---- the spool ------------------------------------------------------------ */

/* Sends spooled profiles oldest first until one fails. Returns true when
 * the spool was emptied (or holds nothing we may send). */
static bool drain_spool(struct uploader *u)
{
    char last[sizeof(((struct cgprof__spool_entry *)0)->path)] = "";
    for (;;) {
        pthread_mutex_lock(&u->lock);
        bool stop = u->stop;
        pthread_mutex_unlock(&u->lock);
        if (stop)
            return false;
        struct cgprof__spool_entry e;
        int rc = cgprof__spool_claim(&u->spool, last, &e);
        if (rc != 0)
            return rc == CGPROF_ENOTFOUND;
        const char *base = strrchr(e.path, '/');
        snprintf(last, sizeof(last), "%s", base ? base + 1 : e.path);
        /* A profile this process still holds in memory is sent from there. */
        bool ours = false;
        pthread_mutex_lock(&u->lock);
        for (struct item *it = u->head; it; it = it->next)
            ours |= strcmp(it->spool_path, e.path) == 0;
        pthread_mutex_unlock(&u->lock);
        if (ours) {
            cgprof__spool_release(&e);
            continue;
        }
        enum post_result r = post(u, e.token, &e.gz);
        pthread_mutex_lock(&u->lock);
        if (r == POST_OK) {
            u->stats.spool_delivered++;
            u->stats.delivered++;
        } else if (r == POST_REJECTED) {
            u->stats.dropped++;
        }
        pthread_mutex_unlock(&u->lock);
        if (r == POST_OK || r == POST_REJECTED) {
            if (r == POST_OK)
                cgprof_info("delivered spooled profile %s", e.token);
            cgprof__spool_done(&e);
            continue;
        }
        cgprof__spool_release(&e);
        return false;
    }
}

/* Stores an item in the spool (lock held). True when stored. */
static bool spool_item_locked(struct uploader *u, struct item *it)
{
    if (it->spool_path[0])
        return true;
    if (cgprof__spool_put(&u->spool, it->token, it->gz.data, it->gz.len, it->spool_path,
                          sizeof(it->spool_path)) != 0) {
        it->spool_path[0] = '\0';
        return false;
    }
    u->stats.spooled++;
    return true;
}

/* ---- the thread ----------------------------------------------------------- */

static void publish_fleet(struct uploader *u)
{
    pthread_mutex_lock(&u->lock);
    snprintf(u->fleet_id, sizeof(u->fleet_id), "%s", u->fleet.instance_id);
    cgprof_free(u->fleet_json);
    u->fleet_json = u->fleet.info_json ? cgprof_strdup(u->fleet.info_json) : NULL;
    u->fleet_ready = true;
    pthread_mutex_unlock(&u->lock);
}

static int thread_init(struct uploader *u)
{
    struct cgprof__http_options ho = {
        .ca_bundle = u->cfg.ca_bundle[0] ? u->cfg.ca_bundle : NULL,
        .connect_timeout_ms = 10000,
        .io_timeout_ms = 30000,
        .max_body = 256 << 10,
        .use_proxy_env = true,
        .total_timeout_ms = 60000,
    };
    u->cg.http = cgprof__http_client_new(&ho);
    struct cgprof__creds_options co = {
        .credential_path = u->cfg.credential_path,
        .credential_profile = u->cfg.credential_profile,
        .region = u->cfg.region,
        .ca_bundle = u->cfg.ca_bundle,
    };
    u->cg.creds = cgprof__creds_new(&co);
    u->meta = cgprof__metadata_client_new();
    if (!u->cg.http || !u->cg.creds)
        return CGPROF_ENOMEM;
    if (cgprof__url_parse(u->endpoint, &u->cg.endpoint) != 0)
        return CGPROF_EINVAL;
    snprintf(u->cg.region, sizeof(u->cg.region), "%s", u->cfg.region);
    snprintf(u->cg.group, sizeof(u->cg.group), "%s", u->cfg.profiling_group_name);
    cgprof__retry_quota_init(&u->cg.quota);
    u->cg.sleep_fn = retry_sleep;
    u->cg.sleep_ctx = u;
    struct cgprof__fleet_options fo = {
        .region = u->cfg.region, .account_id = u->cfg.account_id, .http = u->meta,
    };
    if (cgprof__fleet_detect(&u->fleet, &fo) == 0)
        publish_fleet(u);
    const char *tr = getenv("LAMBDA_TASK_ROOT"), *rd = getenv("LAMBDA_RUNTIME_DIR");
    u->lambda_autocreate = tr && *tr && rd && *rd;
    return 0;
}

/* Gives every item still in memory one last try before the deadline, and
 * spools what is left. */
static void final_flush(struct uploader *u)
{
    for (;;) {
        pthread_mutex_lock(&u->lock);
        struct item *it = NULL;
        if (u->init_ok && !u->abandoned && mono_ns() < u->deadline_ns)
            for (it = u->head; it && it->in_flight; it = it->next)
                ;
        if (it)
            it->in_flight = true;
        pthread_mutex_unlock(&u->lock);
        if (!it)
            break;
        enum post_result r = post(u, it->token, &it->gz);
        pthread_mutex_lock(&u->lock);
        if (r == POST_OK || r == POST_REJECTED) {
            if (it->spool_path[0])
                unlink(it->spool_path);
            r == POST_OK ? u->stats.delivered++ : u->stats.dropped++;
            remove_item(u, it);
            item_free(it);
        } else if (!u->abandoned) {
            spool_item_locked(u, it);   /* and left in memory: in_flight stays set */
        }
        pthread_mutex_unlock(&u->lock);
    }
    pthread_mutex_lock(&u->lock);
    if (!u->abandoned)
        for (struct item *it = u->head; it; it = it->next)
            spool_item_locked(u, it);
    pthread_mutex_unlock(&u->lock);
}

static void (*thread_hook)(void);

void cgprof_uploader_set_thread_hook(void (*fn)(void))
{
    thread_hook = fn;
}

void cgprof__uploader_thread_hook(void)
{
    if (thread_hook)
        thread_hook();
}

static void *thread_main(void *arg)
{
    struct uploader *u = arg;
    pthread_setname_np(pthread_self(), "cgprof-upload");
    cgprof__uploader_thread_hook();
    int rc = thread_init(u);
    u->init_ok = rc == 0;
    if (rc != 0)
        cgprof_warn("uploader: cannot start (%s); profiles go to the spool", cgprof_strerror(rc));
    uint64_t next_configure = 0, spool_next = 0;
    unsigned spool_backoff = SPOOL_BACKOFF_MIN_MS;
    while (rc == 0) {
        uint64_t now = mono_ns();
        if (now >= next_configure) {
            configure(u);
            pthread_mutex_lock(&u->lock);
            unsigned iv = u->acfg.reporting_interval_ms;
            pthread_mutex_unlock(&u->lock);
            next_configure = mono_ns() + (uint64_t)(iv ? iv : 60000) * 1000000ull;
        }
        pthread_mutex_lock(&u->lock);
        struct item *it = NULL;
        now = mono_ns();
        if (!u->stop)
            for (it = u->head; it && (it->in_flight || it->next_try_ns > now); it = it->next)
                ;
        if (it)
            it->in_flight = true;
        bool stop = u->stop;
        pthread_mutex_unlock(&u->lock);
        if (stop)
            break;
        if (it) {
            enum post_result r = post(u, it->token, &it->gz);
            pthread_mutex_lock(&u->lock);
            it->in_flight = false;
            if (r == POST_OK || r == POST_REJECTED) {
                if (r == POST_OK) {
                    u->stats.delivered++;
                    spool_next = 0;     /* the service answers: drain the spool now */
                    spool_backoff = SPOOL_BACKOFF_MIN_MS;
                } else {
                    u->stats.dropped++;
                }
                if (it->spool_path[0])
                    unlink(it->spool_path);
                remove_item(u, it);
                item_free(it);
            } else if (r == POST_FAILED && !u->abandoned) {
                if (spool_item_locked(u, it)) {
                    remove_item(u, it);     /* the spool owns it now */
                    item_free(it);
                } else {
                    it->next_try_ns = mono_ns() + (uint64_t)spool_backoff * 1000000ull;
                }
                if (spool_next < mono_ns() + (uint64_t)spool_backoff * 1000000ull)
                    spool_next = mono_ns() + (uint64_t)spool_backoff * 1000000ull;
                spool_backoff = spool_backoff * 2 > SPOOL_BACKOFF_MAX_MS ? SPOOL_BACKOFF_MAX_MS
                                                                         : spool_backoff * 2;
            }
            pthread_mutex_unlock(&u->lock);
            continue;
        }
        if (mono_ns() >= spool_next) {
            if (drain_spool(u)) {
                spool_backoff = SPOOL_BACKOFF_MIN_MS;
                spool_next = UINT64_MAX;    /* until something fails again */
            } else {
                spool_next = mono_ns() + (uint64_t)spool_backoff * 1000000ull;
                spool_backoff = spool_backoff * 2 > SPOOL_BACKOFF_MAX_MS ? SPOOL_BACKOFF_MAX_MS
                                                                         : spool_backoff * 2;
            }
            continue;
        }
        /* Sleep until the next due time or a new profile. */
        pthread_mutex_lock(&u->lock);
        now = mono_ns();
        uint64_t wake = next_configure < spool_next ? next_configure : spool_next;
        for (struct item *i = u->head; i; i = i->next)
            if (!i->in_flight && i->next_try_ns < wake)
                wake = i->next_try_ns;
        bool idle = u->head == NULL || wake > now;
        if (idle && !u->stop)
            wait_locked(u, wake > now ? (wake - now) / 1000000ull + 1 : 1);
        pthread_mutex_unlock(&u->lock);
    }
    /* A spool left by earlier processes is retried next cycle, so a
     * process that reports once still picks it up: spool_next starts at 0. */
    final_flush(u);
    pthread_mutex_lock(&u->lock);
    u->final_done = true;
    u->thread_running = false;
    pthread_cond_broadcast(&u->cond);
    if (!unref_locked(u))
        pthread_mutex_unlock(&u->lock);
    return NULL;
}

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

/* The C library's pthread_create: the preload interposes the symbol to
 * sample new threads, and the upload thread is the agent's own. */
static create_fn real_create(void)
{
    void *sym = dlsym(RTLD_NEXT, "pthread_create");
    create_fn fn = NULL;
    if (sym)
        memcpy(&fn, &sym, sizeof(fn));
    return fn ? fn : pthread_create;
}

static int spawn(struct uploader *u)
{
    return cgprof__uploader_spawn(thread_main, u);
}

int cgprof__uploader_spawn(void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t t;
    int rc = real_create()(&t, &attr, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return rc == 0 ? 0 : -rc;
}

static struct uploader *uploader_new(const struct cgprof_config *cfg)
{
    struct uploader *u = cgprof_calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&u->lock, NULL);
    pthread_cond_init(&u->cond, &ca);
    pthread_condattr_destroy(&ca);
    u->cfg = *cfg;
    u->pid = getpid();
    u->refs = 1;
    u->acfg = (struct cgprof_uploader_agent_config){
        .should_profile = true,
        .reporting_interval_ms = cfg->reporting_interval_ms,
        .sampling_interval_ms = cfg->sampling_interval_ms,
        .minimum_time_for_reporting_ms = cfg->minimum_time_for_reporting_ms,
        .max_stack_depth = cfg->max_stack_depth,
        .cpu_limit_percent = cfg->cpu_limit_percent,
        .generation = 1,
    };
    size_t cap = ((size_t)cfg->max_output_mb << 20) / 4;
    if (cap < ((size_t)1 << 20))
        cap = (size_t)1 << 20;
    if (cgprof__spool_init(&u->spool, cfg->output_dir, cfg->profiling_group_name, cap,
                           SPOOL_AGE_MS) != 0)
        cgprof_warn("spool: outputDir is not usable; undelivered profiles stay in memory");
    return u;
}

static int start_locked(const struct cgprof_config *cfg)
{
    char ep[CGPROF_URL_MAX];
    const char *explicit_ep = (cfg->sinks & CGPROF_SINK_PYROSCOPE) ? "" : cfg->endpoint;
    int rc = cgprof__cg_endpoint(explicit_ep, cfg->region, NULL, ep, sizeof(ep));
    if (rc != 0)
        return rc;
    struct uploader *u = uploader_new(cfg);
    if (!u)
        return CGPROF_ENOMEM;
    snprintf(u->endpoint, sizeof(u->endpoint), "%s", ep);
    /* Fleet info without the network (Lambda or the default) at once, so
     * even the first profile carries some; the thread refines it. */
    struct cgprof__fleet_options fo = { .region = cfg->region, .account_id = cfg->account_id };
    if (cgprof__fleet_detect(&u->fleet, &fo) == 0)
        publish_fleet(u);
    u->refs = 2;
    u->thread_running = true;
    rc = spawn(u);
    if (rc != 0) {
        cgprof_warn("uploader: cannot start its thread: %s", cgprof_strerror(rc));
        uploader_free(u);
        return rc;
    }
    cgprof_info("uploading to %s for profiling group %s", ep, cfg->profiling_group_name);
    g = u;
    return 0;
}

/* In a forked child the parent's uploader (its thread, maybe its locks)
 * is gone: leave it untouched and start this process's own. */
static int ensure_ours_locked(void)
{
    if (!g)
        return CGPROF_EINVAL;
    if (g->pid == getpid())
        return 0;
    struct cgprof_config cfg = g->cfg;
    g = NULL;
    return start_locked(&cfg);
}

int cgprof_uploader_start(const struct cgprof_config *cfg)
{
    if (!cfg)
        return CGPROF_EINVAL;
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&g_lock);
    int rc = 0;
    if (!g || g->pid != getpid()) {
        g = NULL;
        rc = start_locked(cfg);
    }
    pthread_mutex_unlock(&g_lock);
    return rc;
}

int cgprof_uploader_submit(struct cgprof_profile *p)
{
    if (!p)
        return CGPROF_EINVAL;
    pthread_mutex_lock(&g_lock);
    int rc = ensure_ours_locked();
    struct uploader *u = g;
    if (rc != 0) {
        pthread_mutex_unlock(&g_lock);
        return rc;
    }
    pthread_mutex_lock(&u->lock);
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
    pthread_mutex_unlock(&u->lock);

    struct item *it = cgprof_calloc(1, sizeof(*it));
    struct cgprof_buf json;
    cgprof_buf_init(&json, ENCODE_MAX);
    rc = it ? cgprof_profile_encode_codeguru(p, &json) : CGPROF_ENOMEM;
    if (rc == 0) {
        cgprof_buf_init(&it->gz, CGPROF_PROFILE_FILE_MAX);
        rc = cgprof_gzip(json.data, json.len, &it->gz);
    }
    cgprof_buf_cleanup(&json);
    if (rc != 0) {
        cgprof_warn("cannot encode a profile for CodeGuru: %s", cgprof_strerror(rc));
        item_free(it);
        pthread_mutex_unlock(&g_lock);
        return rc;
    }
    cgprof_uuid4(it->token);
    pthread_mutex_lock(&u->lock);
    u->stats.submitted++;
    struct item **pp = &u->head;
    while (*pp)
        pp = &(*pp)->next;
    *pp = it;
    u->nitems++;
    /* Too many waiting (the service has been down a while): the oldest go
     * to the spool, or are dropped when even that fails. */
    while (u->nitems > QUEUE_MAX) {
        struct item *old = u->head;
        while (old && old->in_flight)
            old = old->next;
        if (!old)
            break;
        bool stored = spool_item_locked(u, old);
        if (!stored) {
            u->stats.dropped++;
            cgprof_warn("dropping an undelivered profile: %u are waiting and the spool is "
                        "not writable", (unsigned)u->nitems);
        }
        remove_item(u, old);
        item_free(old);
    }
    pthread_cond_broadcast(&u->cond);
    pthread_mutex_unlock(&u->lock);
    pthread_mutex_unlock(&g_lock);
    return 0;
}

void cgprof_uploader_stop(unsigned timeout_ms)
{
    pthread_mutex_lock(&g_lock);
    struct uploader *u = g;
    g = NULL;
    if (!u || u->pid != getpid()) {
        pthread_mutex_unlock(&g_lock);
        return;
    }
    pthread_mutex_lock(&u->lock);
    u->stop = true;
    u->deadline_ns = mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    pthread_cond_broadcast(&u->cond);
    while (!u->final_done && u->thread_running && mono_ns() < u->deadline_ns) {
        uint64_t left = (u->deadline_ns - mono_ns()) / 1000000ull + 1;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + left * 1000000ull;
        ts.tv_sec += (time_t)(ns / 1000000000ull);
        ts.tv_nsec = (long)(ns % 1000000000ull);
        pthread_cond_timedwait(&u->cond, &u->lock, &ts);
    }
    /* Whatever is still in memory goes to disk: when the endpoint hangs
     * the thread is left to finish (or die with the process) on its own,
     * and it deletes the spooled copy of a profile it still delivers. */
    int n = 0, lost = 0;
    for (struct item *it = u->head; it; it = it->next) {
        if (!it->spool_path[0] && !spool_item_locked(u, it))
            lost++;
        else if (it->spool_path[0])
            n++;
    }
    if (lost) {
        u->stats.dropped += (uint64_t)lost;
        cgprof_warn("%d undelivered profile(s) are lost: the spool %s is not writable", lost,
                    u->spool.dir);
    }
    if (!u->final_done) {
        u->abandoned = true;
        cgprof_warn("uploads did not finish within %u ms; %d profile(s) kept in the spool",
                    timeout_ms, n);
    }
    g_last_stats = u->stats;
    if (!unref_locked(u))
        pthread_mutex_unlock(&u->lock);
    pthread_mutex_unlock(&g_lock);
}

bool cgprof_uploader_agent_config(struct cgprof_uploader_agent_config *out)
{
    pthread_mutex_lock(&g_lock);
    struct uploader *u = g;
    bool ok = u && u->pid == getpid();
    if (ok) {
        pthread_mutex_lock(&u->lock);
        *out = u->acfg;
        pthread_mutex_unlock(&u->lock);
    }
    pthread_mutex_unlock(&g_lock);
    return ok;
}

void cgprof_uploader_get_stats(struct cgprof_uploader_stats *out)
{
    pthread_mutex_lock(&g_lock);
    struct uploader *u = g;
    if (u && u->pid == getpid()) {
        pthread_mutex_lock(&u->lock);
        *out = u->stats;
        pthread_mutex_unlock(&u->lock);
    } else {
        *out = g_last_stats;
    }
    pthread_mutex_unlock(&g_lock);
}
