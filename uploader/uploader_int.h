/* Declarations shared by the files of uploader/ only: URLs, the HTTP/1.1
 * client over TCP or TLS (mbedTLS), and the pieces of the CodeGuru sink
 * (SigV4, credentials, fleet info, retries, spool). Nothing outside this
 * folder includes it (unit tests excepted). */
#ifndef CGPROF_UPLOADER_INT_H
#define CGPROF_UPLOADER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
};

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

#endif
