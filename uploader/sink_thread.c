/* The engine both network sinks run on (upload_thread.c for CodeGuru,
 * pyroscope_thread.c for Pyroscope): profiles are encoded (gzip'd CodeGuru
 * JSON, the spool's format) on the caller's thread and queued; the sink's
 * own thread (all signals blocked) delivers each through the sink's
 * callback, moves what it cannot deliver to the sink's spool (spool.c),
 * drains that spool with backoff, and at stop gives pending profiles a
 * bounded last try and spools the rest. Each sink has its own class (lock,
 * instance, stats), so one backend's outage never holds up the other; the
 * protocol, the settings and the log wording stay in the sink's file. */
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
#define BACKOFF_MIN_MS 1000u
#define BACKOFF_MAX_MS (5u * 60u * 1000u)
#define IDLE_MAX_MS 3600000ull          /* wait bound when nothing is due */
#define CLASSES_MAX 4

struct cgprof__sink_item {
    struct cgprof__sink_item *next;
    char token[37];             /* profileToken; names the spool file */
    struct cgprof_buf gz;       /* gzip'd CodeGuru JSON */
    char spool_path[1400];      /* set once written to the spool */
    bool in_flight;
    uint64_t next_try_ns;
};

/* ---- fork handling: one atfork registration for every class ----------- */

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cgprof__sink_class *classes[CLASSES_MAX];
static size_t nclasses;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void prepare(void)
{
    pthread_mutex_lock(&registry_lock);
    for (size_t i = 0; i < nclasses; i++)
        pthread_mutex_lock(&classes[i]->lock);
}

static void parent(void)
{
    for (size_t i = nclasses; i-- > 0;)
        pthread_mutex_unlock(&classes[i]->lock);
    pthread_mutex_unlock(&registry_lock);
}

/* The child only resets the locks; a parent's sink is replaced on the
 * child's first submit (ensure_ours_locked). */
static void child(void)
{
    for (size_t i = 0; i < nclasses; i++)
        pthread_mutex_init(&classes[i]->lock, NULL);
    pthread_mutex_init(&registry_lock, NULL);
}

static void register_atfork(void)
{
    pthread_atfork(prepare, parent, child);
}

/* Makes the atfork handlers take c's lock around fork, once per class
 * (registrations accumulate, so there is one for all classes). */
static void register_class(struct cgprof__sink_class *c)
{
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&registry_lock);
    if (!c->registered && nclasses < CLASSES_MAX) {
        classes[nclasses++] = c;
        c->registered = true;
    }
    pthread_mutex_unlock(&registry_lock);
}

/* ---- the thread's hook and spawning ------------------------------------- */

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

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

/* The C library's pthread_create: the preload interposes the symbol to
 * sample new threads, and a sink's thread is the agent's own. */
static create_fn real_create(void)
{
    void *sym = dlsym(RTLD_NEXT, "pthread_create");
    create_fn fn = NULL;
    if (sym)
        memcpy(&fn, &sym, sizeof(fn));
    return fn ? fn : pthread_create;
}

/* Starts fn(arg) on a detached thread with every signal blocked. Returns
 * 0 or -errno. */
static int spawn(void *(*fn)(void *), void *arg)
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

/* ---- items and lifetime --------------------------------------------------- */

static void item_free(struct cgprof__sink_item *it)
{
    if (!it)
        return;
    cgprof_buf_cleanup(&it->gz);
    cgprof_free(it);
}

static void sink_free(struct cgprof__sink *s)
{
    while (s->head) {
        struct cgprof__sink_item *n = s->head->next;
        item_free(s->head);
        s->head = n;
    }
    if (s->ops->cleanup)
        s->ops->cleanup(s);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    cgprof_free(s);
}

/* Drops one reference (lock held); frees on the last. Returns true when
 * freed (the lock is gone then). */
static bool unref_locked(struct cgprof__sink *s)
{
    if (--s->refs > 0)
        return false;
    pthread_mutex_unlock(&s->lock);
    sink_free(s);
    return true;
}

static void remove_item(struct cgprof__sink *s, struct cgprof__sink_item *it)
{
    for (struct cgprof__sink_item **pp = &s->head; *pp; pp = &(*pp)->next) {
        if (*pp == it) {
            *pp = it->next;
            s->nitems--;
            return;
        }
    }
}

static void abs_deadline(struct timespec *ts, uint64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    uint64_t ns = (uint64_t)ts->tv_nsec + ms * 1000000ull;
    ts->tv_sec += (time_t)(ns / 1000000000ull);
    ts->tv_nsec = (long)(ns % 1000000000ull);
}

/* Waits up to ms on the condition unless the stop flag is (or becomes)
 * set; the lock is held. Returns false when stopped. */
static bool wait_locked(struct cgprof__sink *s, uint64_t ms)
{
    if (s->stop)
        return false;
    struct timespec ts;
    abs_deadline(&ts, ms);
    pthread_cond_timedwait(&s->cond, &s->lock, &ts);
    return !s->stop;
}

/* Sleeps ms between the attempts of one delivery: interrupted by stop in
 * normal running; during the final flush, allowed only when it ends before
 * the deadline. Returns false when the delivery should give up.
 * Tests: test/unit/uploader/test_upload_thread.c, test_pyroscope.c */
bool cgprof__sink_sleep(void *sink, unsigned ms)
{
    struct cgprof__sink *s = sink;
    pthread_mutex_lock(&s->lock);
    bool ok;
    if (s->stop) {
        ok = cgprof_now_ns() + ms * 1000000ull < s->deadline_ns && !s->abandoned;
        pthread_mutex_unlock(&s->lock);
        if (ok) {
            struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
            nanosleep(&ts, NULL);
        }
        return ok;
    }
    uint64_t end = cgprof_now_ns() + ms * 1000000ull;
    ok = true;
    while (ok && cgprof_now_ns() < end)
        ok = wait_locked(s, (end - cgprof_now_ns()) / 1000000ull + 1);
    pthread_mutex_unlock(&s->lock);
    return ok;
}

/* The HTTP client both sinks use: the user's CA bundle, the proxy from the
 * environment, 10 s to connect, 30 s per read or write, 60 s in all;
 * responses bounded by max_body. NULL on OOM. */
struct cgprof__http_client *cgprof__sink_http_new(const struct cgprof__sink *s, size_t max_body)
{
    struct cgprof__http_options ho = {
        .ca_bundle = s->cfg.ca_bundle[0] ? s->cfg.ca_bundle : NULL,
        .connect_timeout_ms = 10000,
        .io_timeout_ms = 30000,
        .max_body = max_body,
        .use_proxy_env = true,
        .total_timeout_ms = 60000,
    };
    return cgprof__http_client_new(&ho);
}

/* ---- the spool ------------------------------------------------------------ */

/* Stores an item in the spool (lock held). True when stored. */
static bool spool_item_locked(struct cgprof__sink *s, struct cgprof__sink_item *it)
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

/* Sends spooled profiles oldest first until one fails. Returns true when
 * the spool was emptied (or holds nothing we may send). */
static bool drain_spool(struct cgprof__sink *s)
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
        /* A profile this process still holds in memory is sent from there. */
        bool ours = false;
        pthread_mutex_lock(&s->lock);
        for (struct cgprof__sink_item *it = s->head; it; it = it->next)
            ours |= strcmp(it->spool_path, e.path) == 0;
        pthread_mutex_unlock(&s->lock);
        if (ours) {
            cgprof__spool_release(&e);
            continue;
        }
        enum cgprof__sink_result r = s->ops->deliver(s, e.token, &e.gz);
        pthread_mutex_lock(&s->lock);
        if (r == CGPROF__SINK_SENT) {
            s->stats.spool_delivered++;
            s->stats.delivered++;
        } else if (r == CGPROF__SINK_REJECTED) {
            s->stats.dropped++;
        }
        pthread_mutex_unlock(&s->lock);
        if (r == CGPROF__SINK_SENT || r == CGPROF__SINK_REJECTED) {
            if (r == CGPROF__SINK_SENT && s->ops->log_spool_delivered)
                cgprof_info("delivered spooled profile %s", e.token);
            cgprof__spool_done(&e);
            continue;
        }
        cgprof__spool_release(&e);
        return false;
    }
}

/* ---- the thread ----------------------------------------------------------- */

/* The time of the attempt after *b ms, doubling *b up to the maximum. */
static uint64_t next_backoff(unsigned *b)
{
    uint64_t at = cgprof_now_ns() + (uint64_t)*b * 1000000ull;
    *b = *b * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : *b * 2;
    return at;
}

/* Gives every item still in memory one last try before the deadline, and
 * spools what is left. */
static void final_flush(struct cgprof__sink *s, bool init_ok)
{
    for (;;) {
        pthread_mutex_lock(&s->lock);
        struct cgprof__sink_item *it = NULL;
        if (init_ok && !s->abandoned && cgprof_now_ns() < s->deadline_ns)
            for (it = s->head; it && it->in_flight; it = it->next)
                ;
        if (it)
            it->in_flight = true;
        pthread_mutex_unlock(&s->lock);
        if (!it)
            break;
        enum cgprof__sink_result r = s->ops->deliver(s, it->token, &it->gz);
        pthread_mutex_lock(&s->lock);
        if (r == CGPROF__SINK_SENT || r == CGPROF__SINK_REJECTED) {
            if (it->spool_path[0])
                unlink(it->spool_path);
            r == CGPROF__SINK_SENT ? s->stats.delivered++ : s->stats.dropped++;
            remove_item(s, it);
            item_free(it);
        } else if (!s->abandoned) {
            spool_item_locked(s, it);   /* and left in memory: in_flight stays set */
        }
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_lock(&s->lock);
    if (!s->abandoned)
        for (struct cgprof__sink_item *it = s->head; it; it = it->next)
            spool_item_locked(s, it);
    pthread_mutex_unlock(&s->lock);
}

/* One delivered, rejected or failed queue item (lock held): a failure
 * goes to the spool, or stays in memory for a later try when the spool
 * cannot take it, and pushes the spool's next drain back. */
static void settle_locked(struct cgprof__sink *s, struct cgprof__sink_item *it,
                          enum cgprof__sink_result r, uint64_t *spool_next, unsigned *backoff)
{
    it->in_flight = false;
    if (r == CGPROF__SINK_SENT || r == CGPROF__SINK_REJECTED) {
        if (r == CGPROF__SINK_SENT) {
            s->stats.delivered++;
            *spool_next = 0;        /* the service answers: drain the spool now */
            *backoff = BACKOFF_MIN_MS;
        } else {
            s->stats.dropped++;
        }
        if (it->spool_path[0])
            unlink(it->spool_path);
        remove_item(s, it);
        item_free(it);
    } else if (r == CGPROF__SINK_FAILED && !s->abandoned) {
        if (spool_item_locked(s, it)) {
            remove_item(s, it);     /* the spool owns it now */
            item_free(it);
        } else {
            it->next_try_ns = cgprof_now_ns() + (uint64_t)*backoff * 1000000ull;
        }
        uint64_t at = next_backoff(backoff);
        if (*spool_next < at)
            *spool_next = at;
    }
    /* Interrupted by stop: stays in memory for the final flush. */
}

static void *thread_main(void *arg)
{
    struct cgprof__sink *s = arg;
    const struct cgprof__sink_ops *ops = s->ops;
    pthread_setname_np(pthread_self(), ops->thread_name);
    cgprof__uploader_thread_hook();
    int rc = ops->thread_init(s);
    if (rc != 0)
        cgprof_warn("%s: cannot start (%s); profiles go to the spool", ops->name,
                    cgprof_strerror(rc));
    /* A spool left by earlier processes is tried at once, so a process
     * that reports once still picks it up: spool_next starts at 0. */
    uint64_t next_tick = ops->tick ? 0 : UINT64_MAX, spool_next = 0;
    unsigned backoff = BACKOFF_MIN_MS;
    while (rc == 0) {
        if (ops->tick && cgprof_now_ns() >= next_tick) {
            unsigned iv = ops->tick(s);
            next_tick = cgprof_now_ns() + (uint64_t)iv * 1000000ull;
        }
        pthread_mutex_lock(&s->lock);
        struct cgprof__sink_item *it = NULL;
        uint64_t now = cgprof_now_ns();
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
            enum cgprof__sink_result r = ops->deliver(s, it->token, &it->gz);
            pthread_mutex_lock(&s->lock);
            settle_locked(s, it, r, &spool_next, &backoff);
            pthread_mutex_unlock(&s->lock);
            continue;
        }
        if (cgprof_now_ns() >= spool_next) {
            if (drain_spool(s)) {
                backoff = BACKOFF_MIN_MS;
                spool_next = UINT64_MAX;    /* until something fails again */
            } else {
                spool_next = next_backoff(&backoff);
            }
            continue;
        }
        /* Sleep until the next due time or a new profile. */
        pthread_mutex_lock(&s->lock);
        now = cgprof_now_ns();
        uint64_t wake = next_tick < spool_next ? next_tick : spool_next;
        for (struct cgprof__sink_item *i = s->head; i; i = i->next)
            if (!i->in_flight && i->next_try_ns < wake)
                wake = i->next_try_ns;
        if (s->head == NULL || wake > now)
            wait_locked(s, wake == UINT64_MAX ? IDLE_MAX_MS
                           : wake > now ? (wake - now) / 1000000ull + 1 : 1);
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

/* ---- the class's API ------------------------------------------------------ */

static int start_locked(struct cgprof__sink_class *c, const struct cgprof_config *cfg)
{
    const struct cgprof__sink_ops *ops = c->ops;
    struct cgprof__sink *s = cgprof_calloc(1, ops->size);
    if (!s)
        return CGPROF_ENOMEM;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    s->ops = ops;
    s->cfg = *cfg;
    s->pid = getpid();
    s->refs = 1;
    int rc = ops->setup(s);
    if (rc != 0) {
        sink_free(s);
        return rc;
    }
    size_t cap = ((size_t)cfg->max_output_mb << 20) / 4;
    if (cap < ((size_t)1 << 20))
        cap = (size_t)1 << 20;
    char base[CGPROF_PATH_MAX + 16];
    if (ops->spool_subdir)
        snprintf(base, sizeof(base), "%s/%s", cfg->output_dir, ops->spool_subdir);
    else
        snprintf(base, sizeof(base), "%s", cfg->output_dir);
    if (cgprof__spool_init(&s->spool, base, ops->spool_name(s), cap, SPOOL_AGE_MS) != 0)
        cgprof_warn("%s", ops->spool_unusable);
    s->refs = 2;
    s->running = true;
    rc = spawn(thread_main, s);
    if (rc != 0) {
        cgprof_warn("%s: cannot start its thread: %s", ops->name, cgprof_strerror(rc));
        sink_free(s);
        return rc;
    }
    ops->started(s);
    c->cur = s;
    return 0;
}

/* In a forked child the parent's sink (its thread, maybe its locks) is
 * gone: leave it untouched and start this process's own. */
static int ensure_ours_locked(struct cgprof__sink_class *c)
{
    if (!c->cur)
        return CGPROF_EINVAL;
    if (c->cur->pid == getpid())
        return 0;
    struct cgprof_config cfg = c->cur->cfg;
    c->cur = NULL;
    return start_locked(c, &cfg);
}

/* Starts c's sink for cfg (copied) unless this process runs one already.
 * Returns 0 or a negative error (logged).
 * Tests: test/unit/uploader/test_upload_thread.c, test_pyroscope.c */
int cgprof__sink_start(struct cgprof__sink_class *c, const struct cgprof_config *cfg)
{
    if (!cfg)
        return CGPROF_EINVAL;
    register_class(c);
    pthread_mutex_lock(&c->lock);
    int rc = 0;
    if (!c->cur || c->cur->pid != getpid()) {
        c->cur = NULL;
        rc = start_locked(c, cfg);
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* Encodes p (gzip'd CodeGuru JSON) on the caller's thread and queues it;
 * when fill is not NULL (it may be p itself), the sink's fill callback
 * first writes into it with the sink's lock held. Too many waiting: the
 * oldest go to the spool, or are dropped when even that fails. Returns 0,
 * CGPROF_EINVAL when c's sink is not running, or an encoding error.
 * Tests: test/unit/uploader/test_upload_thread.c, test_pyroscope.c */
int cgprof__sink_submit(struct cgprof__sink_class *c, const struct cgprof_profile *p,
                        struct cgprof_profile *fill)
{
    if (!p)
        return CGPROF_EINVAL;
    pthread_mutex_lock(&c->lock);
    int rc = ensure_ours_locked(c);
    struct cgprof__sink *s = c->cur;
    if (rc != 0) {
        pthread_mutex_unlock(&c->lock);
        return rc;
    }
    const struct cgprof__sink_ops *ops = s->ops;
    if (fill && ops->fill) {
        pthread_mutex_lock(&s->lock);
        ops->fill(s, fill);
        pthread_mutex_unlock(&s->lock);
    }
    struct cgprof__sink_item *it = cgprof_calloc(1, sizeof(*it));
    struct cgprof_buf json;
    cgprof_buf_init(&json, ENCODE_MAX);
    rc = it ? cgprof_profile_encode_codeguru(p, &json) : CGPROF_ENOMEM;
    if (rc == 0) {
        cgprof_buf_init(&it->gz, CGPROF_PROFILE_FILE_MAX);
        rc = cgprof_gzip(json.data, json.len, &it->gz);
    }
    cgprof_buf_cleanup(&json);
    if (rc != 0) {
        cgprof_warn("%s: %s", ops->encode_failed, cgprof_strerror(rc));
        item_free(it);
        pthread_mutex_unlock(&c->lock);
        return rc;
    }
    cgprof_uuid4(it->token);
    pthread_mutex_lock(&s->lock);
    s->stats.submitted++;
    struct cgprof__sink_item **pp = &s->head;
    while (*pp)
        pp = &(*pp)->next;
    *pp = it;
    s->nitems++;
    /* A long outage: the oldest go to disk. */
    while (s->nitems > QUEUE_MAX) {
        struct cgprof__sink_item *old = s->head;
        while (old && old->in_flight)
            old = old->next;
        if (!old)
            break;
        if (!spool_item_locked(s, old)) {
            s->stats.dropped++;
            cgprof_warn("%sdropping an undelivered profile: %u are waiting and the spool is "
                        "not writable", ops->prefix, (unsigned)s->nitems);
        }
        remove_item(s, old);
        item_free(old);
    }
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&c->lock);
    return 0;
}

/* Sets the stop flag and the deadline, once (both locks held); with
 * ops->spool_on_stop_request, pending profiles go to disk at once, before
 * the last try (the process may end first; a profile delivered then has
 * its copy removed). */
static void request_stop_locked(struct cgprof__sink *s, unsigned timeout_ms)
{
    if (!s->stop) {
        s->stop = true;
        s->deadline_ns = cgprof_now_ns() + (uint64_t)timeout_ms * 1000000ull;
        if (s->ops->spool_on_stop_request)
            for (struct cgprof__sink_item *it = s->head; it; it = it->next)
                spool_item_locked(s, it);
    }
    pthread_cond_broadcast(&s->cond);
}

/* Asks c's thread to stop: pending profiles get one last attempt until
 * now + timeout_ms. Does not wait.
 * Tests: test/unit/uploader/test_pyroscope.c */
void cgprof__sink_stop_request(struct cgprof__sink_class *c, unsigned timeout_ms)
{
    pthread_mutex_lock(&c->lock);
    struct cgprof__sink *s = c->cur;
    if (s && s->pid == getpid()) {
        pthread_mutex_lock(&s->lock);
        request_stop_locked(s, timeout_ms);
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&c->lock);
}

/* Stops c's sink (requesting it with timeout_ms unless already requested)
 * and waits at most until the deadline; whatever is still in memory then
 * goes to the spool. When the endpoint hangs the thread is left to finish
 * (or die with the process) on its own, and it deletes the spooled copy of
 * a profile it still delivers. Safe to call when not started.
 * Tests: test/unit/uploader/test_upload_thread.c, test_pyroscope.c */
void cgprof__sink_stop(struct cgprof__sink_class *c, unsigned timeout_ms)
{
    pthread_mutex_lock(&c->lock);
    struct cgprof__sink *s = c->cur;
    c->cur = NULL;
    if (!s || s->pid != getpid()) {
        pthread_mutex_unlock(&c->lock);
        return;
    }
    pthread_mutex_lock(&s->lock);
    request_stop_locked(s, timeout_ms);
    while (!s->final_done && s->running && cgprof_now_ns() < s->deadline_ns) {
        struct timespec ts;
        abs_deadline(&ts, (s->deadline_ns - cgprof_now_ns()) / 1000000ull + 1);
        pthread_cond_timedwait(&s->cond, &s->lock, &ts);
    }
    int kept = 0, lost = 0;
    for (struct cgprof__sink_item *it = s->head; it; it = it->next) {
        if (it->spool_path[0] || spool_item_locked(s, it))
            kept++;
        else
            lost++;
    }
    if (lost) {
        s->stats.dropped += (uint64_t)lost;
        cgprof_warn("%s%d undelivered profile(s) are lost: the spool %s is not writable",
                    s->ops->prefix, lost, s->spool.dir);
    }
    if (!s->final_done) {
        s->abandoned = true;
        s->ops->abandoned(s, timeout_ms, kept);
    }
    c->last_stats = s->stats;
    if (!unref_locked(s))
        pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&c->lock);
}

/* Runs fn on this process's sink of class c with the sink's lock held.
 * Returns false (fn not called) when none is running. */
bool cgprof__sink_with_current(struct cgprof__sink_class *c,
                               void (*fn)(struct cgprof__sink *s, void *arg), void *arg)
{
    pthread_mutex_lock(&c->lock);
    struct cgprof__sink *s = c->cur;
    bool ok = s && s->pid == getpid();
    if (ok) {
        pthread_mutex_lock(&s->lock);
        fn(s, arg);
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return ok;
}

/* Counters of the running sink, else of the last one stopped. */
void cgprof__sink_get_stats(struct cgprof__sink_class *c, struct cgprof_uploader_stats *out)
{
    pthread_mutex_lock(&c->lock);
    struct cgprof__sink *s = c->cur;
    if (s && s->pid == getpid()) {
        pthread_mutex_lock(&s->lock);
        *out = s->stats;
        pthread_mutex_unlock(&s->lock);
    } else {
        *out = c->last_stats;
    }
    pthread_mutex_unlock(&c->lock);
}
