/* Declarations shared by the files of uploader/ only: URLs, the HTTP/1.1
 * client over TCP or TLS (mbedTLS), and the pieces of the CodeGuru sink
 * (SigV4, credentials, fleet info, retries, spool). Nothing outside this
 * folder includes it (unit tests excepted). */
#ifndef CGPROF_UPLOADER_INT_H
#define CGPROF_UPLOADER_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../config/config.h"
#include "uploader.h"

/* ---- URLs (url.c) ------------------------------------------------------- */

struct cgprof__url {
    bool tls;                   /* https */
    char host[256];             /* without brackets for IPv6 literals */
    unsigned port;              /* default 443 / 80 */
    char path[2048];            /* path and query, at least "/" */
};

/* Parses an http:// or https:// URL. Returns 0 or CGPROF_EINVAL. */
int cgprof__url_parse(const char *s, struct cgprof__url *u);

/* The Host header value the client sends for u ("host", "host:port" when
 * the port is not the scheme's default, "[v6]" for IPv6). SigV4 must sign
 * exactly this. Returns 0 or CGPROF_ETOOBIG. */
int cgprof__url_host_header(const struct cgprof__url *u, char *out, size_t n);

/* A forward proxy from HTTPS_PROXY/HTTP_PROXY ("[http://][user:pass@]host
 * [:port]", port 80 by default). auth is "user:pass" or empty; a secret,
 * never logged. Returns 0 or CGPROF_EINVAL (also for https:// proxies). */
struct cgprof__proxy {
    char host[256];
    unsigned port;
    char auth[512];
};
int cgprof__proxy_parse(const char *s, struct cgprof__proxy *p);
/* Percent-decodes s[0..n) onto the end of out (NUL-terminated, bounded by
 * out_n); %00 is refused. Returns 0 or CGPROF_EINVAL. */
int cgprof__pct_decode(const char *s, size_t n, char *out, size_t out_n);

/* True when host:port bypasses the proxy per a NO_PROXY list: comma
 * separated names (suffix match on label boundaries, leading "." or "*."
 * optional), "*", IPs, CIDRs, optional ":port". */
bool cgprof__no_proxy_match(const char *list, const char *host, unsigned port);

/* ---- HTTP/1.1 client (http.c, tls.c) ------------------------------------ */

struct cgprof__http_header {
    const char *name;
    const char *value;
};

struct cgprof__http_request {
    const char *method;                     /* "GET", "POST", "PUT" */
    const struct cgprof__url *url;          /* host, port, scheme */
    const char *target;                     /* request target (path?query) */
    const struct cgprof__http_header *headers; /* Host and Content-Length are
                                                  added by the client */
    size_t nheaders;
    const void *body;
    size_t body_len;
    bool idempotent;                        /* (addition) safe to resend once
                                               when a kept-alive connection
                                               turns out stale; GET, HEAD,
                                               PUT, DELETE always are */
};

#define CGPROF__HTTP_MAX_HEADERS 64

struct cgprof__http_response {
    int status;
    size_t nheaders;
    struct cgprof__http_header headers[CGPROF__HTTP_MAX_HEADERS]; /* owned */
    struct cgprof_buf body;     /* decoded (chunked handled), bounded */
    char *raw_headers;          /* storage behind headers[] */
};

struct cgprof__http_options {
    const char *ca_bundle;      /* PEM file; NULL = AWS_CA_BUNDLE or system store */
    unsigned connect_timeout_ms;
    unsigned io_timeout_ms;     /* per read/write */
    size_t max_body;            /* response body bound */
    bool use_proxy_env;         /* HTTPS_PROXY/https_proxy/HTTP_PROXY + NO_PROXY */
    unsigned total_timeout_ms;  /* (addition) bound on one cgprof__http_do,
                                   resolve to last byte; 0 = none */
};
/* (Addition) Zero fields take defaults: connect 10 s, I/O 30 s, body 1 MiB. */
#define CGPROF__HTTP_CONNECT_MS_DEFAULT 10000u
#define CGPROF__HTTP_IO_MS_DEFAULT 30000u
#define CGPROF__HTTP_MAX_BODY_DEFAULT ((size_t)1 << 20)

struct cgprof__http_client;

/* A client keeps one keep-alive connection per host:port. Not thread-safe:
 * one client per thread. NULL on OOM or when the CA store cannot be read
 * (logged once). */
struct cgprof__http_client *cgprof__http_client_new(const struct cgprof__http_options *o);
void cgprof__http_client_free(struct cgprof__http_client *c);

/* Sends rq and reads the whole response into rs (initialized here).
 * Returns 0 when an HTTP response was received (any status), or a negative
 * error: CGPROF_ETIMEOUT, CGPROF_ETLS (certificate/host name/handshake:
 * logged once with mbedTLS's text), CGPROF_EIO / -errno (connect, reset),
 * CGPROF_EHTTP (malformed response), CGPROF_ETOOBIG. On error the
 * connection is dropped; retries are the caller's business. */
int cgprof__http_do(struct cgprof__http_client *c, const struct cgprof__http_request *rq,
                    struct cgprof__http_response *rs);
void cgprof__http_response_cleanup(struct cgprof__http_response *rs);
/* Case-insensitive header lookup; NULL when absent. */
const char *cgprof__http_response_header(const struct cgprof__http_response *rs,
                                         const char *name);

/* Response parsing, exposed for tests and the fuzzer: parses status line
 * and headers from buf[0..len). Returns the header block length (> 0),
 * CGPROF_EAGAIN when more input is needed, CGPROF_EHTTP when malformed. */
int cgprof__http_parse_head(const char *buf, size_t len, struct cgprof__http_response *rs);
/* (Additions, http.c.) parse_head overwrites *rs entirely (status,
 * headers, raw_headers, and an empty body buffer), so
 * cgprof__http_response_cleanup(rs) is safe after any return. Besides the
 * codes above it returns CGPROF_ENOMEM, and CGPROF_ETOOBIG when the head
 * exceeds CGPROF__HTTP_MAX_HEAD bytes or CGPROF__HTTP_MAX_HEADERS lines. */
#define CGPROF__HTTP_MAX_HEAD (64 * 1024)

/* Incremental decoder for a chunked body (RFC 9112 7.1): chunk extensions
 * are skipped, trailers are read and discarded. Initialise with
 * cgprof__http_chunked_init; feed any split of the input. */
struct cgprof__http_chunked {
    int state;
    uint64_t size;          /* bytes left in the current chunk */
    unsigned digits;        /* hex digits read in the size */
    size_t line;            /* bytes in the current size/trailer line */
    size_t trailer;         /* trailer bytes so far (bounded) */
};
void cgprof__http_chunked_init(struct cgprof__http_chunked *d);
/* Decodes in[0..len), appending data to out (bounded by out->max) and
 * setting *consumed. Returns 0 when the body ended (bytes after it are
 * not consumed), CGPROF_EAGAIN when all input was used and more is needed,
 * CGPROF_EHTTP when malformed, CGPROF_ETOOBIG when the body exceeds
 * out->max, CGPROF_ENOMEM. Errors are sticky. */
int cgprof__http_chunked_decode(struct cgprof__http_chunked *d, const char *in, size_t len,
                                size_t *consumed, struct cgprof_buf *out);

/* ---- sockets and TLS (tls.c), used by http.c ---------------------------- */

/* Shared TLS state of one client: CA chain, configuration, entropy and a
 * CTR-DRBG seeded once (and reseeded in a forked child). */
struct cgprof__tls_ctx;

/* Loads ca_bundle (a PEM file) or, when NULL, the system store (the usual
 * bundle files, then /etc/ssl/certs). Returns 0, or CGPROF_ETLS when no
 * certificate can be read (logged), or CGPROF_ENOMEM. */
int cgprof__tls_ctx_new(const char *ca_bundle, struct cgprof__tls_ctx **out);
void cgprof__tls_ctx_free(struct cgprof__tls_ctx *t);

/* One TCP connection, optionally with TLS on top. Timeouts: every wait
 * (connect, handshake, read, write) is bounded by io_ms since the last
 * progress and by the absolute deadline_ns (cgprof_now_ns clock, 0 = none),
 * both set by the caller. */
struct cgprof__conn {
    int fd;                 /* -1 when closed */
    void *ssl;              /* mbedtls_ssl_context, NULL for plain TCP */
    unsigned io_ms;
    uint64_t deadline_ns;
    int last_errno;         /* socket errno seen under mbedTLS */
    char peer[280];         /* "host:port" for log lines */
};
/* Resolves host (bounded by the deadline: getaddrinfo_a) and connects to
 * each address in turn with a non-blocking connect. Returns 0,
 * CGPROF_ETIMEOUT, -errno (e.g. -ECONNREFUSED) or CGPROF_EIO (name). */
int cgprof__conn_connect(struct cgprof__conn *cn, const char *host, unsigned port,
                         unsigned connect_ms, unsigned io_ms, uint64_t deadline_ns);
/* TLS handshake over a connected cn: SNI and host name check with host,
 * TLS 1.2+. Returns 0, CGPROF_ETLS (logged once per distinct message),
 * CGPROF_ETIMEOUT or -errno. */
int cgprof__conn_start_tls(struct cgprof__conn *cn, struct cgprof__tls_ctx *t, const char *host);
/* Writes all of p. Returns 0, CGPROF_ETIMEOUT, -errno or CGPROF_ETLS. */
int cgprof__conn_write(struct cgprof__conn *cn, const void *p, size_t n);
/* Reads up to n bytes: > 0 bytes, 0 at end of stream, or a negative
 * error (CGPROF_ETIMEOUT, -ECONNRESET, CGPROF_ETLS). */
long cgprof__conn_read(struct cgprof__conn *cn, void *p, size_t n);
/* True when an idle kept-alive connection still looks usable (no EOF or
 * unexpected bytes waiting). */
bool cgprof__conn_idle_ok(struct cgprof__conn *cn);
/* Closes (TLS close_notify when graceful) and sets fd to -1. */
void cgprof__conn_close(struct cgprof__conn *cn, bool graceful);

/* ---- SigV4 (sigv4.c) ---------------------------------------------------- */

#define CGPROF__AWS_KEY_MAX 128
#define CGPROF__AWS_TOKEN_MAX 8192

/* AWS credentials. Secrets: never logged. */
struct cgprof__aws_creds {
    char access_key_id[CGPROF__AWS_KEY_MAX];
    char secret_access_key[CGPROF__AWS_KEY_MAX];
    char session_token[CGPROF__AWS_TOKEN_MAX];  /* "" when none */
    uint64_t expiration_ms;                     /* epoch ms, 0 = never */
};

/* One request to sign. headers are exactly the headers to sign (names in
 * any case; duplicates are joined with ',' in order), and must include
 * Host and X-Amz-Date (and X-Amz-Security-Token when it is to be signed). */
struct cgprof__sigv4_request {
    const char *method;
    const char *path;           /* as sent, without the query */
    const char *query;          /* without '?', or NULL */
    const struct cgprof__http_header *headers;
    size_t nheaders;
    const char *payload_hash;   /* 64 lower-case hex digits */
    bool normalize_path;        /* remove "." / ".." / empty segments */
};

/* Hex SHA-256 of data (65 bytes with the NUL). */
void cgprof__sha256_hex(const void *data, size_t len, char out[65]);
/* "YYYYmmddTHHMMSSZ" for epoch seconds (17 bytes with the NUL). */
void cgprof__amz_date(uint64_t epoch_s, char out[17]);

/* Signs rq for region/service at amz_date ("20150830T123600Z") with creds.
 * Writes the hex signature (65 bytes) and appends the Authorization header
 * value to authorization; canonical and string_to_sign (may be NULL)
 * receive those texts. Returns 0, CGPROF_EINVAL or CGPROF_ENOMEM/ETOOBIG. */
int cgprof__sigv4_sign(const struct cgprof__sigv4_request *rq, const char *region,
                       const char *service, const char *amz_date,
                       const struct cgprof__aws_creds *creds, char signature[65],
                       struct cgprof_buf *authorization, struct cgprof_buf *canonical,
                       struct cgprof_buf *string_to_sign);

/* Percent-encodes s[0..n) as SigV4 does (RFC 3986 unreserved kept; '/'
 * kept when keep_slash). */
int cgprof__uri_encode(struct cgprof_buf *out, const char *s, size_t n, bool keep_slash);

/* ---- credentials (credentials.c) ---------------------------------------- */

typedef const char *(*cgprof__getenv_fn)(const char *);
/* getenv with the lookup type above (credentials.c). */
const char *cgprof__libc_getenv(const char *key);

struct cgprof__creds_options {
    const char *credential_path;    /* credentialPath, "" = none */
    const char *credential_profile; /* credentialProfile, "" = none */
    const char *region;             /* for STS */
    const char *ca_bundle;          /* for STS over https, "" = default */
    cgprof__getenv_fn getenv_fn;    /* NULL = getenv */
    uint64_t (*now_ms)(void);       /* NULL = cgprof_epoch_ms */
};

struct cgprof__creds_chain;

/* The AWS SDKs' default chain: environment; web identity (STS
 * AssumeRoleWithWebIdentity); shared credentials/config files; container
 * credentials; EC2 IMDSv2. An explicit credentialProfile or credentialPath
 * skips the environment, as botocore does for an explicit profile.
 * NULL on OOM. */
struct cgprof__creds_chain *cgprof__creds_new(const struct cgprof__creds_options *o);
void cgprof__creds_free(struct cgprof__creds_chain *c);
/* Copies usable credentials into out, resolving the chain the first time
 * and again when the cached ones expire within CGPROF__CREDS_REFRESH_MS
 * (a failed refresh keeps still-valid ones). Returns 0 or CGPROF_EAUTH. */
int cgprof__creds_get(struct cgprof__creds_chain *c, struct cgprof__aws_creds *out);
/* Forgets the cached credentials (after ExpiredToken / invalid token). */
void cgprof__creds_invalidate(struct cgprof__creds_chain *c);
/* Name of the provider that supplied the current credentials, or "none". */
const char *cgprof__creds_source(const struct cgprof__creds_chain *c);

#define CGPROF__CREDS_REFRESH_MS (5u * 60u * 1000u)

/* Parsers, exposed for tests. */
/* Looks up profile's keys in an INI text (credentials file when
 * config_style is false, config file "[profile x]" sections when true).
 * Returns 0 when both key id and secret were found, CGPROF_ENOTFOUND when
 * the profile or its keys are missing. */
int cgprof__creds_parse_ini(const char *text, const char *profile, bool config_style,
                            struct cgprof__aws_creds *out);
/* {"AccessKeyId","SecretAccessKey","Token","Expiration"} (container, IMDS). */
int cgprof__creds_parse_json(const char *text, size_t len, struct cgprof__aws_creds *out);
/* STS AssumeRoleWithWebIdentity XML response. */
int cgprof__creds_parse_sts_xml(const char *text, size_t len, struct cgprof__aws_creds *out);
/* ISO-8601 UTC ("2024-01-02T03:04:05Z", fractions and +00:00 accepted) to
 * epoch ms; returns 0 or CGPROF_EPARSE. */
int cgprof__parse_iso8601(const char *s, uint64_t *ms);

/* IMDSv2: token by PUT (cached in token, tok_n bytes), then GET path into
 * out. base is "http://169.254.169.254" or AWS_EC2_METADATA_SERVICE_ENDPOINT.
 * Returns 0 or a negative error (non-200 is CGPROF_EHTTP). */
int cgprof__imds_get(struct cgprof__http_client *http, const char *base, const char *path,
                     char *token, size_t tok_n, struct cgprof_buf *out);
/* The IMDS base URL from the environment, or NULL when
 * AWS_EC2_METADATA_DISABLED=true. */
const char *cgprof__imds_base(cgprof__getenv_fn get);
/* A client for link-local metadata services: short timeouts, no proxy. */
struct cgprof__http_client *cgprof__metadata_client_new(void);

/* ---- fleet info (fleet.c) ----------------------------------------------- */

struct cgprof__fleet {
    char instance_id[256];      /* fleetInstanceId */
    char *info_json;            /* agentMetadata.fleetInfo object text, owned */
    bool lambda;
    char agent_id[37];          /* uuid per process (ConfigureAgent AgentId) */
    char lambda_arn[256];
    char lambda_memory[24];
    char exec_env[128];
};

struct cgprof__fleet_options {
    cgprof__getenv_fn getenv_fn;    /* NULL = getenv */
    const char *region;
    const char *account_id;         /* from the group ARN, may be "" */
    struct cgprof__http_client *http; /* metadata client; NULL = no network */
};

/* Detects Lambda (environment), then EC2 (IMDSv2), then ECS/Fargate
 * (ECS_CONTAINER_METADATA_URI_V4), else the default (uuid, vCPUs), and
 * fills f (cleaned up first). Returns 0 or CGPROF_ENOMEM. */
int cgprof__fleet_detect(struct cgprof__fleet *f, const struct cgprof__fleet_options *o);
void cgprof__fleet_cleanup(struct cgprof__fleet *f);
/* Appends the ConfigureAgent request body
 * {"fleetInstanceId": ..., "metadata": {...}} in botocore's JSON layout. */
int cgprof__fleet_configure_body(const struct cgprof__fleet *f, struct cgprof_buf *out);
/* Appends s as a JSON string the way Python's json.dumps does
 * (ensure_ascii: non-ASCII as \uXXXX). */
int cgprof__json_quote(struct cgprof_buf *out, const char *s);

/* ---- retries (retry.c): botocore's standard mode ------------------------ */

#define CGPROF__RETRY_MAX_ATTEMPTS 3

struct cgprof__retry_quota {
    int tokens;                 /* starts at 500 */
};

void cgprof__retry_quota_init(struct cgprof__retry_quota *q);
/* True when a failed attempt (transport error rc < 0, or HTTP status with
 * error code) may be retried. */
bool cgprof__retry_is_retryable(int rc, int status, const char *error_code);
/* Takes the cost of a retry from the quota (10 for timeouts, else 5);
 * false when the quota is empty. */
bool cgprof__retry_quota_acquire(struct cgprof__retry_quota *q, int rc);
/* A success gives back the retry cost, or 1 when no retry was needed. */
void cgprof__retry_quota_release(struct cgprof__retry_quota *q, bool was_retry, int last_rc);
/* Delay before the next attempt after attempt n (1-based) failed:
 * r * min(2^(n-1), 20) seconds, r in [0, 1). */
unsigned cgprof__retry_backoff_ms(unsigned attempt, double r);

/* ---- CodeGuru Profiler protocol (codeguru.c) ---------------------------- */

#define CGPROF__USER_AGENT "cgprof/0.1.0 ua/2.1 os/linux lang/c md/agent#CodeGuruProfiler-cgprof cfg/retry-mode#standard"
#define CGPROF__SIGNING_NAME "codeguru-profiler"

enum cgprof__cg_op {
    CGPROF__CG_CONFIGURE_AGENT,
    CGPROF__CG_POST_AGENT_PROFILE,
    CGPROF__CG_CREATE_PROFILING_GROUP
};

/* Resolves the endpoint: explicit (cfg endpoint), AWS_ENDPOINT_URL_CODEGURUPROFILER,
 * AWS_ENDPOINT_URL, else https://codeguru-profiler.<region>.amazonaws.com
 * (.com.cn for cn-*). Returns 0 or CGPROF_EINVAL (logged). */
int cgprof__cg_endpoint(const char *explicit_url, const char *region, cgprof__getenv_fn get,
                        char *out, size_t n);

/* A request built and signed as botocore builds it. Strings live in the
 * struct; headers[] point into it. */
struct cgprof__cg_request {
    char target[1024];          /* path?query */
    char host[300];             /* Host header value */
    char amz_date[17];
    char invocation_id[37];
    char attempt[32];
    char content_type[32];
    char signature[65];
    struct cgprof_buf authorization;
    struct cgprof_buf canonical;    /* the canonical request (tests, debug) */
    struct cgprof__http_header headers[12];
    size_t nheaders;
};

/* Builds op's request: target from the endpoint's base path, group name
 * and token (profileToken / clientToken, may be NULL for ConfigureAgent),
 * headers in botocore's order (Content-Type, [Content-Encoding],
 * User-Agent, X-Amz-Date, [X-Amz-Security-Token], Authorization,
 * amz-sdk-invocation-id, amz-sdk-request), signed over body. attempt is
 * 1-based. The session-token header points into creds, which must
 * outlive the request. Call cgprof__cg_request_cleanup afterwards. */
int cgprof__cg_build(struct cgprof__cg_request *r, enum cgprof__cg_op op,
                     const struct cgprof__url *endpoint, const char *region,
                     const char *group, const char *token, const char *invocation_id,
                     unsigned attempt, const struct cgprof__aws_creds *creds,
                     uint64_t epoch_s, const void *body, size_t len, bool gzip_encoded);
void cgprof__cg_request_cleanup(struct cgprof__cg_request *r);

/* The error code of a failed response: x-amzn-errortype before ':', else
 * the body's code/Code/__type after the last '#'. "" when none. The
 * message (body message/Message) goes to msg when not NULL. */
void cgprof__cg_error_code(const struct cgprof__http_response *rs, char *code, size_t n,
                           char *msg, size_t msg_n);

/* Outcome of one logical call (all its attempts). */
struct cgprof__cg_outcome {
    int rc;                     /* 0 = 2xx; else transport error or CGPROF_EHTTP */
    int status;                 /* last HTTP status, 0 when none */
    char error_code[64];
    char message[256];
    unsigned attempts;
    bool retryable;             /* last failure was retryable */
    struct cgprof_buf body;     /* response body on success (bounded) */
};

struct cgprof__cg_client {
    struct cgprof__http_client *http;
    struct cgprof__url endpoint;
    char region[64];
    char group[256];
    struct cgprof__creds_chain *creds;
    struct cgprof__retry_quota quota;
    /* Sleeps ms unless told to stop; returns false when interrupted (the
     * call then gives up). NULL = nanosleep. */
    bool (*sleep_fn)(void *ctx, unsigned ms);
    void *sleep_ctx;
    uint64_t (*now_s)(void);    /* NULL = wall clock (for signing) */
    double (*rand01)(void);     /* NULL = cgprof_random_u64 */
};

/* Runs op with up to 3 attempts (standard retry mode; same token and
 * invocation id on each). out->body must be initialized by the caller or
 * is initialized here. Logs 403s naming the missing permission. */
int cgprof__cg_call(struct cgprof__cg_client *c, enum cgprof__cg_op op, const char *token,
                    const void *body, size_t len, bool gzip_encoded,
                    struct cgprof__cg_outcome *out);
void cgprof__cg_outcome_cleanup(struct cgprof__cg_outcome *out);

/* The service's agent configuration merged over cur with user overrides
 * winning. Returns 0, or CGPROF_EPARSE (cur unchanged). */
struct cgprof_uploader_agent_config;
struct cgprof_config;
int cgprof__cg_apply_configuration(const char *json, size_t len, const struct cgprof_config *cfg,
                                   struct cgprof_uploader_agent_config *cur);

#define CGPROF__PYROSCOPE_USER_AGENT "cgprof/0.1.0"
#define CGPROF__CLI_USER_AGENT "cgprof/0.1.0 ua/2.1 os/linux lang/c md/cli cfg/retry-mode#standard"

/* ---- spool (spool.c) ---------------------------------------------------- */

struct cgprof__spool {
    char dir[1100];             /* <outputDir>/spool/<group> */
    size_t max_bytes;           /* size cap of the group's spool */
    uint64_t max_age_ms;        /* older profiles are dropped */
    bool warned_write;          /* one log line per failure streak */
};

/* A claimed spool file: locked (flock) so no other process sends it. */
struct cgprof__spool_entry {
    char path[1400];
    char token[64];
    int fd;
    struct cgprof_buf gz;       /* gzip'd CodeGuru JSON */
};

int cgprof__spool_init(struct cgprof__spool *s, const char *output_dir, const char *group,
                       size_t max_bytes, uint64_t max_age_ms);
/* Stores gz under token atomically ("<epoch_ms>-<token>.json.gz"), then
 * enforces the caps (oldest dropped first, logged). path_out gets the path
 * when not NULL. Returns 0 or a negative error (logged once per streak). */
int cgprof__spool_put(struct cgprof__spool *s, const char *token, const void *gz, size_t len,
                      char *path_out, size_t path_n);
/* Claims the oldest spooled profile no one else holds. Returns 0,
 * CGPROF_ENOTFOUND when there is none, or an error. skip_before: only
 * files whose name sorts after it (for iterating; "" = from the start). */
int cgprof__spool_claim(struct cgprof__spool *s, const char *skip_after,
                        struct cgprof__spool_entry *e);
/* Delivered: deletes the file and releases the entry. */
void cgprof__spool_done(struct cgprof__spool_entry *e);
/* Not delivered: releases the lock, keeps the file. */
void cgprof__spool_release(struct cgprof__spool_entry *e);
/* Enforces the size and age caps; returns the number of files dropped. */
int cgprof__spool_trim(struct cgprof__spool *s);
/* Number of spooled profiles (for tests and logs). */
int cgprof__spool_count(const struct cgprof__spool *s);

/* ---- the sink-thread engine (sink_thread.c) ------------------------------
 * The CodeGuru (upload_thread.c) and Pyroscope (pyroscope_thread.c) sinks
 * are a struct cgprof__sink_ops each, run by one engine: queue (16 in
 * memory, the oldest spooled beyond that), delivery on the sink's own
 * thread, spool on failure and spool draining with backoff (1 s doubling
 * to 5 min), a bounded last try at stop, a restart in a forked child. */

enum cgprof__sink_result {
    CGPROF__SINK_SENT,
    CGPROF__SINK_FAILED,        /* kept: spooled and retried later */
    CGPROF__SINK_REJECTED,      /* can never be accepted: dropped */
    CGPROF__SINK_INTERRUPTED    /* cut short by stop: kept for the last try */
};

struct cgprof__sink_item;
struct cgprof__sink_ops;

/* One running sink. The sink's own struct begins with it (ops->size is
 * the whole); lock guards every field below and the sink's shared state. */
struct cgprof__sink {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    const struct cgprof__sink_ops *ops;
    struct cgprof_config cfg;
    pid_t pid;
    int refs;                   /* the class's pointer and the thread */
    bool running, stop, final_done;
    bool abandoned;             /* stop gave up waiting */
    uint64_t deadline_ns;
    struct cgprof__sink_item *head;
    size_t nitems;
    struct cgprof__spool spool;
    struct cgprof_uploader_stats stats;
};

/* What a sink does differently. The strings are its log wording. */
struct cgprof__sink_ops {
    size_t size;                /* of the sink's struct */
    const char *name;           /* "<name>: cannot start ..." */
    const char *prefix;         /* before the queue and spool warnings ("" or "x: ") */
    const char *encode_failed;  /* "<encode_failed>: <error>" */
    const char *spool_unusable; /* logged when outputDir is not usable */
    const char *thread_name;
    /* NULL: the spool is <outputDir>/spool/<spool_name>, else
     * <outputDir>/<spool_subdir>/spool/<spool_name>. */
    const char *spool_subdir;
    bool spool_on_stop_request; /* pending profiles to disk as stop is asked */
    bool log_spool_delivered;   /* an info line per spooled profile delivered */
    /* On the starting thread, cfg set and the lock usable: checks the
     * settings and prepares the sink. Returns 0 or an error (logged). */
    int (*setup)(struct cgprof__sink *s);
    const char *(*spool_name)(const struct cgprof__sink *s);
    void (*started)(const struct cgprof__sink *s);       /* logs the start */
    /* First on the thread: clients and credentials. 0 or an error. */
    int (*thread_init)(struct cgprof__sink *s);
    /* NULL, or periodic work on the thread, first at once; returns the
     * ms until the next. */
    unsigned (*tick)(struct cgprof__sink *s);
    /* All attempts of one delivery, on the thread, no lock held; sleeps
     * between attempts through cgprof__sink_sleep. */
    enum cgprof__sink_result (*deliver)(struct cgprof__sink *s, const char *token,
                                        const struct cgprof_buf *gz);
    /* NULL, or writes into a submitted profile (lock held). */
    void (*fill)(struct cgprof__sink *s, struct cgprof_profile *p);
    /* Logs that stop gave up waiting with kept profiles in the spool. */
    void (*abandoned)(const struct cgprof__sink *s, unsigned timeout_ms, int kept);
    void (*cleanup)(struct cgprof__sink *s);     /* frees what setup and the thread made */
};

/* One kind of sink: at most one running per process. Static, set up with
 * CGPROF__SINK_CLASS_INIT. */
struct cgprof__sink_class {
    const struct cgprof__sink_ops *ops;
    pthread_mutex_t lock;
    struct cgprof__sink *cur;
    struct cgprof_uploader_stats last_stats;    /* after stop, for tests */
    bool registered;            /* with the atfork handlers */
};
#define CGPROF__SINK_CLASS_INIT(ops) { (ops), PTHREAD_MUTEX_INITIALIZER, NULL, { 0 }, false }

/* The uploader.h functions of both sinks, for class c (sink_thread.c has
 * their contracts). submit's fill may be p itself (CodeGuru) or NULL. */
int cgprof__sink_start(struct cgprof__sink_class *c, const struct cgprof_config *cfg);
int cgprof__sink_submit(struct cgprof__sink_class *c, const struct cgprof_profile *p,
                        struct cgprof_profile *fill);
void cgprof__sink_stop_request(struct cgprof__sink_class *c, unsigned timeout_ms);
void cgprof__sink_stop(struct cgprof__sink_class *c, unsigned timeout_ms);
void cgprof__sink_get_stats(struct cgprof__sink_class *c, struct cgprof_uploader_stats *out);
/* Runs fn on this process's sink of c, its lock held; false when none. */
bool cgprof__sink_with_current(struct cgprof__sink_class *c,
                               void (*fn)(struct cgprof__sink *s, void *arg), void *arg);
/* Sleeps ms between a delivery's attempts (sink is a struct cgprof__sink):
 * cut short by stop while running; during the final flush only when it
 * ends before the deadline. False: the delivery should give up. */
bool cgprof__sink_sleep(void *sink, unsigned ms);
/* The HTTP client of a sink (timeouts 10/30/60 s, proxy from the
 * environment, cfg's CA bundle); NULL on OOM. */
struct cgprof__http_client *cgprof__sink_http_new(const struct cgprof__sink *s, size_t max_body);
/* Runs the hook of cgprof_uploader_set_thread_hook, if any: first thing on
 * every sink thread. */
void cgprof__uploader_thread_hook(void);

#endif
