/* The Pyroscope sink's thread: profiles are encoded (gzip'd CodeGuru JSON,
 * the spool's format) on the caller's thread and queued; this thread (all
 * signals blocked) turns each into an ingest request (pyroscope.c), posts
 * it with up to 3 attempts and jittered backoff (retry.c), moves what it
 * cannot deliver to <outputDir>/pyroscope/spool/<app>/ (spool.c) and
 * drains that spool with backoff. It shares nothing with the CodeGuru
 * thread (upload_thread.c) but the helpers, so one backend's outage never
 * holds up the other. Stopping writes pending profiles to the spool at
 * once (the process may end first), then gives them a bounded last try. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../config/config.h"
#include "uploader_int.h"

#define QUEUE_MAX 16
#define ENCODE_MAX ((size_t)64 << 20)
#define SPOOL_AGE_MS (3ull * 24 * 3600 * 1000)
#define BACKOFF_MIN_MS 1000u
#define BACKOFF_MAX_MS (5u * 60u * 1000u)
#define RESPONSE_MAX ((size_t)64 << 10)

struct pitem {
    struct pitem *next;
    char token[37];             /* names the spool file */
    struct cgprof_buf gz;       /* gzip'd CodeGuru JSON */
    char spool_path[1400];
    bool in_flight;
    uint64_t next_try_ns;
};

struct psink {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct cgprof_config cfg;
    struct cgprof_pyroscope_settings st;
    pid_t pid;
    int refs;
    bool running, stop, final_done, abandoned;
    uint64_t deadline_ns;
    struct pitem *head;
    size_t nitems;
    struct cgprof__spool spool;
    struct cgprof_uploader_stats stats;
    bool warned_auth;
    /* Owned by the thread: */
    struct cgprof__http_client *http;
    struct cgprof__url url;
    struct cgprof__retry_quota quota;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct psink *g;
static struct cgprof_uploader_stats g_last;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void prepare(void) { pthread_mutex_lock(&g_lock); }
static void parent(void) { pthread_mutex_unlock(&g_lock); }
static void child(void) { pthread_mutex_init(&g_lock, NULL); }
static void register_atfork(void) { pthread_atfork(prepare, parent, child); }

static void item_free(struct pitem *it)
{
    if (it) {
        cgprof_buf_cleanup(&it->gz);
        cgprof_free(it);
    }
}

static void sink_free(struct psink *s)
{
    while (s->head) {
        struct pitem *n = s->head->next;
        item_free(s->head);
        s->head = n;
    }
    if (s->http)
        cgprof__http_client_free(s->http);
    memset(s->st.password, 0, sizeof(s->st.password));
    memset(s->st.token, 0, sizeof(s->st.token));
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    cgprof_free(s);
}

/* Drops a reference with the lock held; true when freed (lock gone). */
static bool unref_locked(struct psink *s)
{
    if (--s->refs > 0)
        return false;
    pthread_mutex_unlock(&s->lock);
    sink_free(s);
    return true;
}

static void remove_item(struct psink *s, struct pitem *it)
{
    for (struct pitem **pp = &s->head; *pp; pp = &(*pp)->next)
        if (*pp == it) {
            *pp = it->next;
            s->nitems--;
            return;
        }
}

static void abs_deadline(struct timespec *ts, uint64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    uint64_t ns = (uint64_t)ts->tv_nsec + ms * 1000000ull;
    ts->tv_sec += (time_t)(ns / 1000000000ull);
    ts->tv_nsec = (long)(ns % 1000000000ull);
}

/* Sleeps ms between attempts: cut short by stop while running; during
 * the final flush only when it ends before the deadline. Returns false
 * when the call should give up. */
static bool backoff_sleep(struct psink *s, unsigned ms)
{
    pthread_mutex_lock(&s->lock);
    bool ok;
    if (s->stop) {
        ok = !s->abandoned && cgprof_now_ns() + ms * 1000000ull < s->deadline_ns;
        pthread_mutex_unlock(&s->lock);
        if (ok) {
            struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
            nanosleep(&ts, NULL);
        }
        return ok;
    }
    struct timespec ts;
    abs_deadline(&ts, ms);
    while (!s->stop && pthread_cond_timedwait(&s->cond, &s->lock, &ts) != ETIMEDOUT)
        ;
    ok = !s->stop;
    pthread_mutex_unlock(&s->lock);
    return ok;
}

enum outcome { SENT, FAILED, REJECTED };

/* One profile, all its attempts. */
static enum outcome send_one(struct psink *s, const char *token, const struct cgprof_buf *gz)
{
    struct cgprof_pyroscope_request rq;
    int rc = cgprof_pyroscope_build(&s->st, gz->data, gz->len, &rq);
    if (rc != 0) {
        cgprof_pyroscope_request_cleanup(&rq);
        if (rc == CGPROF_ENOMEM)
            return FAILED;
        cgprof_warn("pyroscope: a profile (%s) cannot be encoded: %s; dropped", token,
                    cgprof_strerror(rc));
        return REJECTED;
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
    enum outcome out = FAILED;
    int status = 0;
    for (unsigned attempt = 1; attempt <= CGPROF__RETRY_MAX_ATTEMPTS; attempt++) {
        struct cgprof__http_response rs;
        rc = cgprof__http_do(s->http, &hr, &rs);
        status = rc == 0 ? rs.status : 0;
        if (rc == 0 && status >= 200 && status < 300) {
            cgprof__http_response_cleanup(&rs);
            cgprof__retry_quota_release(&s->quota, attempt > 1, rc);
            out = SENT;
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
                            "are kept in %s", s->st.endpoint, status, msg, s->spool.dir);
            s->warned_auth = true;
            break;
        }
        if (rc == 0 && !cgprof__retry_is_retryable(0, status, NULL) && status != 404 &&
            status != 408) {
            cgprof_warn("pyroscope: %s refused a profile (%s) with HTTP %d %s; dropped",
                        s->st.endpoint, token, status, msg);
            out = REJECTED;
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
        if (!backoff_sleep(s, cgprof__retry_backoff_ms(attempt, r)))
            break;
    }
    if (out == SENT && s->warned_auth) {
        cgprof_info("pyroscope: %s accepts profiles again", s->st.endpoint);
        s->warned_auth = false;
    }
    cgprof_pyroscope_request_cleanup(&rq);
    return out;
}

/* Stores an item in the spool (lock held). True when stored. */
static bool spool_item_locked(struct psink *s, struct pitem *it)
{
    if (it->spool_path[0])
        return true;
    if (cgprof__spool_put(&s->spool, it->token, it->gz.data, it->gz.len, it->spool_path,
                          sizeof(it->spool_path)) != 0) {
        it->spool_path[0] = '\0';
        return false;
    }
    s->stats.spooled++;
    return true;
}

/* Sends spooled profiles oldest first until one fails; true when the
 * spool holds nothing more to send. */
static bool drain_spool(struct psink *s)
{
    char last[sizeof(((struct cgprof__spool_entry *)0)->path)] = "";
    for (;;) {
        pthread_mutex_lock(&s->lock);
        bool stop = s->stop;
        pthread_mutex_unlock(&s->lock);
        if (stop)
            return false;
        struct cgprof__spool_entry e;
        int rc = cgprof__spool_claim(&s->spool, last, &e);
        if (rc != 0)
            return rc == CGPROF_ENOTFOUND;
        const char *base = strrchr(e.path, '/');
        snprintf(last, sizeof(last), "%s", base ? base + 1 : e.path);
        bool ours = false;
        pthread_mutex_lock(&s->lock);
        for (struct pitem *it = s->head; it; it = it->next)
            ours |= strcmp(it->spool_path, e.path) == 0;
        pthread_mutex_unlock(&s->lock);
        if (ours) {
            cgprof__spool_release(&e);
            continue;
        }
        enum outcome o = send_one(s, e.token, &e.gz);
        pthread_mutex_lock(&s->lock);
        if (o == SENT) {
            s->stats.spool_delivered++;
            s->stats.delivered++;
        } else if (o == REJECTED) {
            s->stats.dropped++;
        }
        pthread_mutex_unlock(&s->lock);
        if (o != FAILED) {
            cgprof__spool_done(&e);
            continue;
        }
        cgprof__spool_release(&e);
        return false;
    }
}

static void final_flush(struct psink *s, bool init_ok)
{
    for (;;) {
        pthread_mutex_lock(&s->lock);
        struct pitem *it = NULL;
        if (init_ok && !s->abandoned && cgprof_now_ns() < s->deadline_ns)
            for (it = s->head; it && it->in_flight; it = it->next)
                ;
        if (it)
            it->in_flight = true;
        pthread_mutex_unlock(&s->lock);
        if (!it)
            break;
        enum outcome o = send_one(s, it->token, &it->gz);
        pthread_mutex_lock(&s->lock);
        if (o != FAILED) {
            if (it->spool_path[0])
                unlink(it->spool_path);
            o == SENT ? s->stats.delivered++ : s->stats.dropped++;
            remove_item(s, it);
            item_free(it);
        } else if (!s->abandoned) {
            spool_item_locked(s, it);   /* stays in memory, in flight */
        }
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_lock(&s->lock);
    if (!s->abandoned)
        for (struct pitem *it = s->head; it; it = it->next)
            spool_item_locked(s, it);
    pthread_mutex_unlock(&s->lock);
}

static int thread_init(struct psink *s)
{
    struct cgprof__http_options ho = {
        .ca_bundle = s->cfg.ca_bundle[0] ? s->cfg.ca_bundle : NULL,
        .connect_timeout_ms = 10000,
        .io_timeout_ms = 30000,
        .max_body = RESPONSE_MAX,
        .use_proxy_env = true,
        .total_timeout_ms = 60000,
    };
    s->http = cgprof__http_client_new(&ho);
    if (!s->http)
        return CGPROF_ENOMEM;
    if (cgprof__url_parse(s->st.endpoint, &s->url) != 0)
        return CGPROF_EINVAL;
    cgprof__retry_quota_init(&s->quota);
    return 0;
}

static uint64_t next_backoff(unsigned *b)
{
    uint64_t at = cgprof_now_ns() + (uint64_t)*b * 1000000ull;
    *b = *b * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : *b * 2;
    return at;
}

static void *thread_main(void *arg)
{
    struct psink *s = arg;
    pthread_setname_np(pthread_self(), "cgprof-pyro");
    cgprof__uploader_thread_hook();
    int rc = thread_init(s);
    if (rc != 0)
        cgprof_warn("pyroscope: cannot start (%s); profiles go to the spool",
                    cgprof_strerror(rc));
    uint64_t spool_next = 0;    /* a spool left by earlier processes: at once */
    unsigned backoff = BACKOFF_MIN_MS;
    while (rc == 0) {
        pthread_mutex_lock(&s->lock);
        uint64_t now = cgprof_now_ns();
        struct pitem *it = NULL;
        if (!s->stop)
            for (it = s->head; it && (it->in_flight || it->next_try_ns > now); it = it->next)
                ;
        if (it)
            it->in_flight = true;
        bool stop = s->stop;
        pthread_mutex_unlock(&s->lock);
        if (stop)
            break;
        if (it) {
            enum outcome o = send_one(s, it->token, &it->gz);
            pthread_mutex_lock(&s->lock);
            it->in_flight = false;
            if (o != FAILED) {
                if (o == SENT) {
                    s->stats.delivered++;
                    spool_next = 0;     /* the server answers: drain the spool now */
                    backoff = BACKOFF_MIN_MS;
                } else {
                    s->stats.dropped++;
                }
                if (it->spool_path[0])
                    unlink(it->spool_path);
                remove_item(s, it);
                item_free(it);
            } else if (!s->abandoned) {
                if (spool_item_locked(s, it)) {
                    remove_item(s, it);
                    item_free(it);
                } else {
                    it->next_try_ns = cgprof_now_ns() + (uint64_t)backoff * 1000000ull;
                }
                uint64_t at = next_backoff(&backoff);
                if (spool_next < at)
                    spool_next = at;
            }
            pthread_mutex_unlock(&s->lock);
            continue;
        }
        if (cgprof_now_ns() >= spool_next) {
            if (drain_spool(s)) {
                backoff = BACKOFF_MIN_MS;
                spool_next = UINT64_MAX;
            } else {
                spool_next = next_backoff(&backoff);
            }
            continue;
        }
        pthread_mutex_lock(&s->lock);
        now = cgprof_now_ns();
        uint64_t wake = spool_next;
        for (struct pitem *i = s->head; i; i = i->next)
            if (!i->in_flight && i->next_try_ns < wake)
                wake = i->next_try_ns;
        if (!s->stop && wake > now) {
            struct timespec ts;
            uint64_t ms = wake == UINT64_MAX ? 3600000ull : (wake - now) / 1000000ull + 1;
            abs_deadline(&ts, ms);
            pthread_cond_timedwait(&s->cond, &s->lock, &ts);
        }
        pthread_mutex_unlock(&s->lock);
    }
    final_flush(s, rc == 0);
    pthread_mutex_lock(&s->lock);
    s->final_done = true;
    s->running = false;
    pthread_cond_broadcast(&s->cond);
    if (!unref_locked(s))
        pthread_mutex_unlock(&s->lock);
    return NULL;
}

static int start_locked(const struct cgprof_config *cfg)
{
    struct psink *s = cgprof_calloc(1, sizeof(*s));
    if (!s)
        return CGPROF_ENOMEM;
    int rc = cgprof_pyroscope_settings_init(&s->st, cfg);
    if (rc != 0) {
        cgprof_free(s);
        cgprof_error("pyroscope: endpoint '%s' is not usable", cfg->endpoint);
        return rc;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    s->cfg = *cfg;
    s->pid = getpid();
    size_t cap = ((size_t)cfg->max_output_mb << 20) / 4;
    if (cap < ((size_t)1 << 20))
        cap = (size_t)1 << 20;
    char base[CGPROF_PATH_MAX + 16];
    snprintf(base, sizeof(base), "%s/pyroscope", cfg->output_dir);
    if (cgprof__spool_init(&s->spool, base, s->st.app, cap, SPOOL_AGE_MS) != 0)
        cgprof_warn("pyroscope spool: outputDir is not usable; undelivered profiles stay "
                    "in memory");
    s->refs = 2;
    s->running = true;
    rc = cgprof__uploader_spawn(thread_main, s);
    if (rc != 0) {
        cgprof_warn("pyroscope: cannot start its thread: %s", cgprof_strerror(rc));
        sink_free(s);
        return rc;
    }
    cgprof_info("sending profiles of %s to Pyroscope at %s", s->st.app, s->st.endpoint);
    g = s;
    return 0;
}

int cgprof_pyroscope_start(const struct cgprof_config *cfg)
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

int cgprof_pyroscope_submit(const struct cgprof_profile *p)
{
    if (!p)
        return CGPROF_EINVAL;
    pthread_mutex_lock(&g_lock);
    int rc = 0;
    if (g && g->pid != getpid()) {     /* forked child: its own sink */
        struct cgprof_config cfg = g->cfg;
        g = NULL;
        rc = start_locked(&cfg);
    }
    struct psink *s = g;
    if (!s || rc != 0) {
        pthread_mutex_unlock(&g_lock);
        return rc ? rc : CGPROF_EINVAL;
    }
    struct pitem *it = cgprof_calloc(1, sizeof(*it));
    struct cgprof_buf json;
    cgprof_buf_init(&json, ENCODE_MAX);
    rc = it ? cgprof_profile_encode_codeguru(p, &json) : CGPROF_ENOMEM;
    if (rc == 0) {
        cgprof_buf_init(&it->gz, CGPROF_PROFILE_FILE_MAX);
        rc = cgprof_gzip(json.data, json.len, &it->gz);
    }
    cgprof_buf_cleanup(&json);
    if (rc != 0) {
        cgprof_warn("pyroscope: cannot encode a profile: %s", cgprof_strerror(rc));
        item_free(it);
        pthread_mutex_unlock(&g_lock);
        return rc;
    }
    cgprof_uuid4(it->token);
    pthread_mutex_lock(&s->lock);
    s->stats.submitted++;
    struct pitem **pp = &s->head;
    while (*pp)
        pp = &(*pp)->next;
    *pp = it;
    s->nitems++;
    while (s->nitems > QUEUE_MAX) {     /* a long outage: the oldest go to disk */
        struct pitem *old = s->head;
        while (old && old->in_flight)
            old = old->next;
        if (!old)
            break;
        if (!spool_item_locked(s, old)) {
            s->stats.dropped++;
            cgprof_warn("pyroscope: dropping an undelivered profile: %u are waiting and the "
                        "spool is not writable", (unsigned)s->nitems);
        }
        remove_item(s, old);
        item_free(old);
    }
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&g_lock);
    return 0;
}

void cgprof_pyroscope_stop_request(unsigned timeout_ms)
{
    pthread_mutex_lock(&g_lock);
    struct psink *s = g;
    if (s && s->pid == getpid()) {
        pthread_mutex_lock(&s->lock);
        if (!s->stop) {
            s->stop = true;
            s->deadline_ns = cgprof_now_ns() + (uint64_t)timeout_ms * 1000000ull;
            /* Disk first: the process may end before the last try does
             * (exit bound); a profile delivered now has its copy removed. */
            for (struct pitem *it = s->head; it; it = it->next)
                spool_item_locked(s, it);
        }
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&g_lock);
}

void cgprof_pyroscope_stop(unsigned timeout_ms)
{
    cgprof_pyroscope_stop_request(timeout_ms);
    pthread_mutex_lock(&g_lock);
    struct psink *s = g;
    g = NULL;
    if (!s || s->pid != getpid()) {
        pthread_mutex_unlock(&g_lock);
        return;
    }
    pthread_mutex_lock(&s->lock);
    while (!s->final_done && s->running && cgprof_now_ns() < s->deadline_ns) {
        struct timespec ts;
        abs_deadline(&ts, (s->deadline_ns - cgprof_now_ns()) / 1000000ull + 1);
        pthread_cond_timedwait(&s->cond, &s->lock, &ts);
    }
    int kept = 0, lost = 0;
    for (struct pitem *it = s->head; it; it = it->next) {
        if (it->spool_path[0] || spool_item_locked(s, it))
            kept++;
        else
            lost++;
    }
    if (lost) {
        s->stats.dropped += (uint64_t)lost;
        cgprof_warn("pyroscope: %d undelivered profile(s) are lost: the spool %s is not "
                    "writable", lost, s->spool.dir);
    }
    if (!s->final_done) {
        s->abandoned = true;
        cgprof_warn("pyroscope: uploads did not finish in time; %d profile(s) kept in %s",
                    kept, s->spool.dir);
    }
    g_last = s->stats;
    if (!unref_locked(s))
        pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&g_lock);
}

void cgprof_pyroscope_get_stats(struct cgprof_uploader_stats *out)
{
    pthread_mutex_lock(&g_lock);
    struct psink *s = g;
    if (s && s->pid == getpid()) {
        pthread_mutex_lock(&s->lock);
        *out = s->stats;
        pthread_mutex_unlock(&s->lock);
    } else {
        *out = g_last;
    }
    pthread_mutex_unlock(&g_lock);
}
