/* uploader/: where finished profiles go. The file sink (the embedded
 * default) writes gzip'd CodeGuru JSON into a directory; the CodeGuru sink
 * (upload_thread.c) and the Pyroscope sink (pyroscope_thread.c) each run
 * their own thread with retries and a disk spool, independent of each
 * other, on one engine (sink_thread.c). Also the pieces the `cgprof` command shares: signed CodeGuru
 * control-plane requests, the credential chain, spool draining and
 * Pyroscope ingest requests. Sinks never run on the sampling path. */
#ifndef CGPROF_UPLOADER_H
#define CGPROF_UPLOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../profile/profile.h"

struct cgprof_config;

/* Writes p to dir as "<name>-<pid>-<YYYYmmddTHHMMSSZ>-<start_ms>.json.gz"
 * (name = p->group_name sanitized to [A-Za-z0-9_.-]) atomically: temp file
 * then rename. Creates dir if needed. Afterwards, if the *.json.gz files in
 * dir exceed max_dir_bytes (0 = no cap), the oldest are deleted first and a
 * log line says how many. On success and when path_out is not NULL, the
 * final path is copied there. Returns 0 or a negative error. */
int cgprof_file_sink_write(const struct cgprof_profile *p, const char *dir,
                           size_t max_dir_bytes, char *path_out, size_t path_n);

/* ---- the CodeGuru sink (upload_thread.c) ------------------------------- */

struct cgprof_config;

/* What the service's ConfigureAgent answer (merged over the user's
 * configuration, user-set keys winning, WIRE.md §2) asks of the agent. */
struct cgprof_uploader_agent_config {
    bool should_profile;                /* false: sample nothing, report nothing */
    unsigned reporting_interval_ms;     /* periodInSeconds unless the user set it */
    unsigned sampling_interval_ms;
    unsigned minimum_time_for_reporting_ms;
    unsigned max_stack_depth;
    unsigned cpu_limit_percent;
    uint64_t generation;                /* bumped whenever a field changes */
};

/* Bound on the final flush at stop, the documented default. */
#define CGPROF_UPLOADER_FLUSH_MS 2000u

/* Starts the upload thread for cfg's profiling group (cfg is copied): it
 * detects fleet info, resolves credentials, calls ConfigureAgent at once
 * and once per reporting cycle, posts submitted profiles with retries and
 * keeps what it cannot deliver in <outputDir>/spool/<group>/, which it
 * retries with backoff (spooled profiles of earlier processes too). The
 * thread blocks every signal. Returns 0, or a negative error when the
 * endpoint is unusable or the thread cannot start (logged; submit then
 * returns CGPROF_EINVAL). Idempotent. Not signal-safe. */
int cgprof_uploader_start(const struct cgprof_config *cfg);

/* Hands a finished profile to the upload thread: fills p's fleet info and
 * error counts from the uploader, encodes and gzips it on the caller's
 * thread and queues the bytes; never waits for the network. Returns 0,
 * CGPROF_EINVAL when the uploader is not running, or an encoding error.
 * In a forked child the uploader restarts itself first. */
int cgprof_uploader_submit(struct cgprof_profile *p);

/* Stops the upload thread: pending profiles get one last delivery attempt
 * for at most timeout_ms (CGPROF_UPLOADER_FLUSH_MS is the documented
 * default); whatever is still undelivered then is spooled and the call
 * returns. Safe to call when not started. */
void cgprof_uploader_stop(unsigned timeout_ms);

/* The current agent configuration (the user's until ConfigureAgent has
 * answered). Returns false when the uploader is not running. */
bool cgprof_uploader_agent_config(struct cgprof_uploader_agent_config *out);

/* fn runs first on every sink thread, CodeGuru's and Pyroscope's (preload
 * uses it to tell the sampler that the thread is the profiler's own: never
 * sampled). */
void cgprof_uploader_set_thread_hook(void (*fn)(void));

/* Counters for tests and logs. */
struct cgprof_uploader_stats {
    uint64_t submitted, delivered, spooled, spool_delivered, dropped, configure_calls;
};
void cgprof_uploader_get_stats(struct cgprof_uploader_stats *out);

/* ---- CodeGuru control-plane requests for `cgprof` (control.c) ---------- */

/* AWS credentials for the command: the same chain as the agent (env,
 * web identity, shared files with profile, container, IMDSv2). */
struct cgprof_aws_session;
/* profile: the shared-files profile ("" or NULL = AWS_PROFILE, else
 * default); region: for signing and STS. NULL on OOM. */
struct cgprof_aws_session *cgprof_aws_session_new(const char *profile, const char *region,
                                                  const char *ca_bundle);
void cgprof_aws_session_free(struct cgprof_aws_session *s);
/* The provider of the current credentials ("environment", ...), or "none". */
const char *cgprof_aws_session_source(const struct cgprof_aws_session *s);
/* Forgets cached credentials (after an expired-token answer). */
void cgprof_aws_session_invalidate(struct cgprof_aws_session *s);

/* The endpoint as the agent resolves it: explicit_url, else
 * AWS_ENDPOINT_URL_CODEGURUPROFILER, AWS_ENDPOINT_URL, else the regional
 * https://codeguru-profiler.REGION.amazonaws.com(.cn). 0 or CGPROF_EINVAL. */
int cgprof_codeguru_endpoint(const char *explicit_url, const char *region, char *out, size_t n);

/* One REST call of the service model (botocore codeguruprofiler
 * 2019-07-18): path and query already URI-encoded, query parameters in
 * the order they are sent. */
struct cgprof_cg_call {
    const char *method;         /* "GET", "POST", "PUT", "DELETE" */
    const char *path;           /* "/profilingGroups/NAME" (below the endpoint's path) */
    const char *query;          /* "a=b&c=d" or NULL */
    const char *accept;         /* Accept header (GetProfile) or NULL */
    const char *content_type;   /* with a body; NULL = application/json */
    const void *body;           /* NULL: no body and no Content-Type */
    size_t len;
};

#define CGPROF_CG_MAX_HEADERS 10

/* A signed request: url to send to, headers "Name: value" in botocore's
 * order ([Content-Type], [Accept], User-Agent, X-Amz-Date,
 * [X-Amz-Security-Token], Authorization, amz-sdk-invocation-id,
 * amz-sdk-request); the transport adds Host and Content-Length. */
struct cgprof_cg_signed {
    char url[4096];
    char *headers[CGPROF_CG_MAX_HEADERS];   /* owned */
    size_t nheaders;
    char signature[65];
    struct cgprof_buf canonical;            /* the canonical request */
};

/* Signs call for endpoint at epoch_s as attempt (1-based) of the logical
 * call invocation_id, with credentials from s (region = s's). Returns 0,
 * CGPROF_EAUTH (no credentials; the chain has logged why), CGPROF_EINVAL
 * or CGPROF_ENOMEM/ETOOBIG. r is initialized in every case; call
 * cgprof_cg_signed_cleanup. */
int cgprof_cg_sign(struct cgprof_cg_signed *r, const char *endpoint,
                   const struct cgprof_cg_call *call, struct cgprof_aws_session *s,
                   uint64_t epoch_s, const char *invocation_id, unsigned attempt);
void cgprof_cg_signed_cleanup(struct cgprof_cg_signed *r);

/* Appends s percent-encoded as SigV4 and botocore encode URI parts (RFC
 * 3986 unreserved kept; '/' kept when keep_slash). */
int cgprof_uri_encode(struct cgprof_buf *out, const char *s, bool keep_slash);
/* The error code and message of a failed response, as botocore reads
 * them (x-amzn-errortype before ':', else the body's code/__type). */
void cgprof_cg_error(const char *body, size_t len, const char *errortype_header, char *code,
                     size_t n, char *msg, size_t msg_n);
/* botocore's standard retry mode: retryable failures and backoff. */
bool cgprof_retryable(int transport_rc, int status, const char *error_code);
unsigned cgprof_retry_backoff_ms(unsigned attempt, double r);

/* ---- the Pyroscope sink (pyroscope.c, pyroscope_thread.c) --------------- */

/* Where and how to send: the endpoint without user info, the application
 * name, "k=v;k=v" tags, basic-auth user/password (options win over the
 * endpoint's user info), bearer token, tenant (X-Scope-OrgID). */
struct cgprof_pyroscope_settings {
    char endpoint[1024];
    char app[256];
    char tags[1024];
    char user[256];
    char password[256];         /* secret */
    char token[2048];           /* secret */
    char tenant[160];
};

/* Fills st from cfg (endpoint required); app = applicationName, else the
 * profiling group name, else the program name. Returns 0 or CGPROF_EINVAL. */
int cgprof_pyroscope_settings_init(struct cgprof_pyroscope_settings *st,
                                   const struct cgprof_config *cfg);

/* One ingest request: POST url (= endpoint base + target) with headers
 * Content-Type, [Authorization], [X-Scope-OrgID: tenant] and body. */
struct cgprof_pyroscope_request {
    char target[4096];          /* /base/ingest?name=...&from=...&until=... */
    char url[5200];
    char content_type[96];      /* multipart/form-data; boundary=... */
    char boundary[48];
    struct cgprof_buf authorization;   /* "" or "Basic ..." / "Bearer ..." */
    struct cgprof_buf body;     /* parts "profile" (gzip'd pprof) and
                                   "sample_type_config" (JSON) */
    uint64_t from, until;       /* Unix seconds */
    unsigned sample_rate;       /* Hz (RUNNABLE weight) */
};

/* Builds the request for one stored profile (gzip'd CodeGuru JSON, as
 * the spool and the file sink keep it): query name=APP{k=v,...} (percent-
 * encoded), from/until (start rounded down, end up), spyName=cgprof,
 * sampleRate, format=pprof. Returns 0, CGPROF_EINVAL, CGPROF_EJSON (or a
 * gunzip error) for an unreadable profile, CGPROF_ENOMEM/ETOOBIG. rq is
 * initialized in every case; call cgprof_pyroscope_request_cleanup. */
int cgprof_pyroscope_build(const struct cgprof_pyroscope_settings *st, const void *gz_json,
                           size_t len, struct cgprof_pyroscope_request *rq);
void cgprof_pyroscope_request_cleanup(struct cgprof_pyroscope_request *rq);

/* Starts the Pyroscope upload thread (cfg copied): submitted profiles are
 * posted with up to 3 attempts (backoff as the CodeGuru sink); what cannot
 * be delivered goes to <outputDir>/pyroscope/spool/<app>/ (gzip'd JSON,
 * as the CodeGuru spool) and is retried with backoff, by this process or a
 * later one, or shipped by `cgprof upload --sink pyroscope`. Runs apart
 * from the CodeGuru sink: an outage of one never delays the other.
 * Returns 0 or a negative error (logged). Idempotent; restarts itself in
 * a forked child. Not signal-safe. */
int cgprof_pyroscope_start(const struct cgprof_config *cfg);
/* Encodes p (gzip'd JSON) on the caller's thread and queues it. Returns 0,
 * CGPROF_EINVAL when the sink is not running, or an encoding error. */
int cgprof_pyroscope_submit(const struct cgprof_profile *p);
/* Asks the thread to stop: pending profiles get one last attempt until
 * now + timeout_ms. Does not wait. */
void cgprof_pyroscope_stop_request(unsigned timeout_ms);
/* Stops (requesting it first with timeout_ms when not yet requested) and
 * waits at most until the requested deadline; whatever is undelivered
 * then is spooled. Safe to call when not started. */
void cgprof_pyroscope_stop(unsigned timeout_ms);
/* Counters (of the running sink, else of the last one stopped). */
void cgprof_pyroscope_get_stats(struct cgprof_uploader_stats *out);

/* ---- spool draining for `cgprof upload` (spool.c) ------------------------ */

/* Outcome of one delivery attempt in cgprof_spool_drain's callback. */
enum cgprof_spool_verdict {
    CGPROF_SPOOL_DELIVERED,     /* delete the file */
    CGPROF_SPOOL_REJECTED,      /* can never be accepted: delete it too */
    CGPROF_SPOOL_KEEP,          /* keep it for later and go on */
    CGPROF_SPOOL_STOP           /* keep it and stop (endpoint down) */
};

/* Sends every profile of one spool directory (files "<ms>-<token>.json.gz"),
 * oldest first, each claimed with the same lock the agents use, so a
 * profile is sent by one process only and deleted once delivered. fn gets
 * the token (the CodeGuru profileToken) and the gzip'd JSON. *total gets
 * the number of files found at the start (for progress). Returns 0 or a
 * negative error (directory unreadable); counts in the *n_* outputs. */
int cgprof_spool_drain(const char *dir,
                       enum cgprof_spool_verdict (*fn)(void *ctx, const char *token,
                                                       const void *gz, size_t len,
                                                       unsigned index, unsigned total),
                       void *ctx, unsigned *n_delivered, unsigned *n_rejected,
                       unsigned *n_kept);
/* Number of spooled profiles in dir. */
int cgprof_spool_count_dir(const char *dir);

#endif
