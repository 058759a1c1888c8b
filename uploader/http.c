/* The HTTP/1.1 client of the uploader: request writing, a bounded
 * response parser (status line and headers; "need more input" distinct
 * from "malformed", as picohttpparser does), Content-Length, chunked and
 * close-delimited bodies, one kept-alive connection per host:port with a
 * single resend on a stale one, and forward proxies (CONNECT for https://,
 * absolute-form for http://) with NO_PROXY. Sockets and TLS are in tls.c,
 * URL and NO_PROXY parsing in url.c. Never logs headers or bodies. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/base64.h>

#include "../common/common.h"
#include "uploader_int.h"

/* ---- response head ------------------------------------------------------ */

static bool is_tchar(unsigned char c)
{
    if (isalnum(c))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field-value bytes: HTAB, SP, VCHAR and obs-text; no other controls. */
static bool is_vchar(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Finds the end of the header block (just past the empty line) in
 * buf[0..len); accepts CRLF and bare LF line ends. Returns the length or 0
 * when the block is incomplete. */
static size_t head_end(const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (i + 1 < len && buf[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* Next line of buf[*pos..end): sets ls and le to its content without the
 * line end and advances *pos past it. A CR anywhere but before the LF is
 * malformed. Returns 0 or CGPROF_EHTTP. */
static int next_line(const char *buf, size_t end, size_t *pos, size_t *ls, size_t *le)
{
    const char *nl = memchr(buf + *pos, '\n', end - *pos);
    if (!nl)
        return CGPROF_EHTTP;
    size_t e = (size_t)(nl - buf);
    *ls = *pos;
    *le = (e > *pos && buf[e - 1] == '\r') ? e - 1 : e;
    if (memchr(buf + *ls, '\r', *le - *ls))
        return CGPROF_EHTTP;
    *pos = e + 1;
    return 0;
}

/* Validates the head in buf[0..end) and, when out is not NULL, fills the
 * headers from the NUL-separated copy in out->raw_headers. */
static int scan_head(const char *buf, size_t end, struct cgprof__http_response *out)
{
    size_t pos = 0, ls, le;
    if (next_line(buf, end, &pos, &ls, &le))
        return CGPROF_EHTTP;
    /* "HTTP/1.x SP 3DIGIT [SP reason]" */
    const char *l = buf + ls;
    size_t n = le - ls;
    if (n < 12 || memcmp(l, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)l[7]) || l[8] != ' ' ||
        !isdigit((unsigned char)l[9]) || !isdigit((unsigned char)l[10]) ||
        !isdigit((unsigned char)l[11]) || (n > 12 && l[12] != ' '))
        return CGPROF_EHTTP;
    int status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    if (status < 100 || status > 599)
        return CGPROF_EHTTP;
    for (size_t i = 13; i < n; i++)
        if (!is_vchar((unsigned char)l[i]))
            return CGPROF_EHTTP;
    size_t nh = 0;
    for (;;) {
        if (next_line(buf, end, &pos, &ls, &le))
            return CGPROF_EHTTP;
        if (le == ls)
            break;
        l = buf + ls;
        n = le - ls;
        size_t c = 0;
        while (c < n && is_tchar((unsigned char)l[c]))
            c++;
        /* No name, a space before the colon, or an obs-fold line. */
        if (c == 0 || c == n || l[c] != ':')
            return CGPROF_EHTTP;
        size_t vs = c + 1, ve = n;
        while (vs < ve && (l[vs] == ' ' || l[vs] == '\t'))
            vs++;
        while (ve > vs && (l[ve - 1] == ' ' || l[ve - 1] == '\t'))
            ve--;
        for (size_t i = vs; i < ve; i++)
            if (!is_vchar((unsigned char)l[i]))
                return CGPROF_EHTTP;
        if (nh == CGPROF__HTTP_MAX_HEADERS)
            return CGPROF_ETOOBIG;
        if (out) {
            char *raw = out->raw_headers;
            raw[ls + c] = '\0';
            raw[ls + ve] = '\0';
            out->headers[nh].name = raw + ls;
            out->headers[nh].value = raw + ls + vs;
        }
        nh++;
    }
    if (pos != end)
        return CGPROF_EHTTP;
    if (out) {
        out->status = status;
        out->nheaders = nh;
    }
    return 0;
}

/* Two passes: validate without allocating (so every partial read costs
 * nothing), then copy the block once and point the headers into it.
 * Tests: test/unit/uploader/test_http_parse.c, test/fuzz/fuzz_http_parse.c */
int cgprof__http_parse_head(const char *buf, size_t len, struct cgprof__http_response *rs)
{
    memset(rs, 0, sizeof(*rs));
    cgprof_buf_init(&rs->body, 0);
    static const char prefix[] = "HTTP/1.";
    size_t pl = len < 7 ? len : 7;
    if (memcmp(buf, prefix, pl) != 0)
        return CGPROF_EHTTP;
    size_t scan = len < CGPROF__HTTP_MAX_HEAD ? len : CGPROF__HTTP_MAX_HEAD;
    size_t end = head_end(buf, scan);
    if (end == 0)
        return len >= CGPROF__HTTP_MAX_HEAD ? CGPROF_ETOOBIG : CGPROF_EAGAIN;
    int rc = scan_head(buf, end, NULL);
    if (rc)
        return rc;
    rs->raw_headers = cgprof_malloc(end + 1);
    if (!rs->raw_headers)
        return CGPROF_ENOMEM;
    memcpy(rs->raw_headers, buf, end);
    rs->raw_headers[end] = '\0';
    scan_head(rs->raw_headers, end, rs);
    return (int)end;
}

void cgprof__http_response_cleanup(struct cgprof__http_response *rs)
{
    if (!rs)
        return;
    cgprof_free(rs->raw_headers);
    rs->raw_headers = NULL;
    rs->nheaders = 0;
    cgprof_buf_cleanup(&rs->body);
}

const char *cgprof__http_response_header(const struct cgprof__http_response *rs, const char *name)
{
    for (size_t i = 0; i < rs->nheaders; i++)
        if (strcasecmp(rs->headers[i].name, name) == 0)
            return rs->headers[i].value;
    return NULL;
}

/* ---- chunked bodies ----------------------------------------------------- */

enum {
    CH_SIZE, CH_SIZE_WS, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF,
    CH_TRAILER_START, CH_TRAILER, CH_TRAILER_LF, CH_END_LF, CH_DONE, CH_ERROR
};
#define CHUNK_LINE_MAX 4096       /* size line with extensions */
#define CHUNK_TRAILER_MAX 16384   /* all trailer lines */

void cgprof__http_chunked_init(struct cgprof__http_chunked *d)
{
    memset(d, 0, sizeof(*d));
    d->state = CH_SIZE;
}

/* A byte-at-a-time state machine, except chunk data, which is copied in
 * runs; so any split of the input decodes the same.
 * Tests: test/unit/uploader/test_http_parse.c, test/fuzz/fuzz_http_parse.c */
int cgprof__http_chunked_decode(struct cgprof__http_chunked *d, const char *in, size_t len,
                                size_t *consumed, struct cgprof_buf *out)
{
    size_t i = 0;
    int rc = CGPROF_EAGAIN;
    *consumed = 0;
    if (d->state == CH_ERROR)
        return CGPROF_EHTTP;
    if (d->state == CH_DONE)
        return 0;
    while (i < len) {
        unsigned char c = (unsigned char)in[i];
        if (d->state == CH_DATA) {
            size_t run = len - i;
            if ((uint64_t)run > d->size)
                run = (size_t)d->size;
            rc = cgprof_buf_append(out, in + i, run);
            if (rc)
                goto fail;
            i += run;
            d->size -= run;
            if (d->size == 0)
                d->state = CH_DATA_CR;
            rc = CGPROF_EAGAIN;
            continue;
        }
        i++;
        bool size_line = d->state <= CH_SIZE_LF;
        if (size_line && ++d->line > CHUNK_LINE_MAX)
            goto malformed;
        switch (d->state) {
        case CH_SIZE: {
            int v = cgprof_hexval(c);
            if (v >= 0) {
                if (d->size > (UINT64_MAX >> 4))
                    goto malformed;
                d->size = d->size * 16 + (uint64_t)v;
                d->digits++;
                break;
            }
            if (d->digits == 0)
                goto malformed;
            if (c == ' ' || c == '\t')
                d->state = CH_SIZE_WS;
            else if (c == ';')
                d->state = CH_EXT;
            else if (c == '\r')
                d->state = CH_SIZE_LF;
            else if (c == '\n')
                goto size_done;
            else
                goto malformed;
            break;
        }
        case CH_SIZE_WS:
            if (c == ';')
                d->state = CH_EXT;
            else if (c == '\r')
                d->state = CH_SIZE_LF;
            else if (c == '\n')
                goto size_done;
            else if (c != ' ' && c != '\t')
                goto malformed;
            break;
        case CH_EXT:
            if (c == '\r')
                d->state = CH_SIZE_LF;
            else if (c == '\n')
                goto size_done;
            else if (!is_vchar(c))
                goto malformed;
            break;
        case CH_SIZE_LF:
            if (c != '\n')
                goto malformed;
            goto size_done;
        case CH_DATA_CR:
            if (c == '\r')
                d->state = CH_DATA_LF;
            else if (c == '\n')
                d->state = CH_SIZE;
            else
                goto malformed;
            break;
        case CH_DATA_LF:
            if (c != '\n')
                goto malformed;
            d->state = CH_SIZE;
            break;
        case CH_TRAILER_START:
        case CH_TRAILER:
        case CH_TRAILER_LF:
        case CH_END_LF:
            if (++d->trailer > CHUNK_TRAILER_MAX)
                goto malformed;
            if (d->state == CH_TRAILER_START) {
                if (c == '\r')
                    d->state = CH_END_LF;
                else if (c == '\n')
                    goto done;
                else if (is_tchar(c))
                    d->state = CH_TRAILER;
                else
                    goto malformed;
            } else if (d->state == CH_TRAILER) {
                if (c == '\r')
                    d->state = CH_TRAILER_LF;
                else if (c == '\n')
                    d->state = CH_TRAILER_START;
                else if (!is_vchar(c))
                    goto malformed;
            } else if (d->state == CH_TRAILER_LF) {
                if (c != '\n')
                    goto malformed;
                d->state = CH_TRAILER_START;
            } else {
                if (c != '\n')
                    goto malformed;
                goto done;
            }
            break;
        default:
            goto malformed;
        }
        continue;
    size_done:
        d->line = 0;
        d->digits = 0;
        if (d->size == 0) {
            d->state = CH_TRAILER_START;
        } else {
            if (d->size > (uint64_t)(out->max - out->len)) {
                rc = CGPROF_ETOOBIG;
                goto fail;
            }
            d->state = CH_DATA;
        }
    }
    *consumed = i;
    return CGPROF_EAGAIN;
done:
    d->state = CH_DONE;
    *consumed = i;
    return 0;
malformed:
    rc = CGPROF_EHTTP;
fail:
    d->state = CH_ERROR;
    *consumed = i;
    return rc;
}

/* ---- the client --------------------------------------------------------- */

#define SLOTS 4                 /* kept-alive connections (one per host:port) */
#define READ_CHUNK 16384

struct slot {
    bool used;
    char key[600];              /* scheme://host:port[ via proxy host:port] */
    struct cgprof__conn cn;
    uint64_t last_ns;
};

struct cgprof__http_client {
    struct cgprof__http_options o;
    char *ca_bundle;            /* owned copy, or NULL for the system store */
    struct cgprof__tls_ctx *tls;
    char *https_proxy, *http_proxy, *no_proxy; /* owned copies of the env */
    pid_t pid;
    struct slot slots[SLOTS];
    char *rbuf;                 /* READ_CHUNK bytes */
    struct cgprof_buf head;     /* response head being read */
};

static char *env_dup(const char *a, const char *b)
{
    const char *v = a ? getenv(a) : NULL;
    if (!v || !*v)
        v = b ? getenv(b) : NULL;
    return (v && *v) ? cgprof_strdup(v) : NULL;
}

/* Reads the environment once. Lowercase names first, as curl does; the
 * uppercase HTTP_PROXY is ignored inside a CGI request (REQUEST_METHOD
 * set), where it can come from a client's "Proxy:" header ("httpoxy") and
 * would route metadata-credential requests to an attacker.
 * Tests: test/unit/uploader/test_tls.c */
struct cgprof__http_client *cgprof__http_client_new(const struct cgprof__http_options *o)
{
    struct cgprof__http_client *c = cgprof_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->o = *o;
    if (!c->o.connect_timeout_ms)
        c->o.connect_timeout_ms = CGPROF__HTTP_CONNECT_MS_DEFAULT;
    if (!c->o.io_timeout_ms)
        c->o.io_timeout_ms = CGPROF__HTTP_IO_MS_DEFAULT;
    if (!c->o.max_body)
        c->o.max_body = CGPROF__HTTP_MAX_BODY_DEFAULT;
    c->pid = getpid();
    for (int i = 0; i < SLOTS; i++)
        c->slots[i].cn.fd = -1;
    cgprof_buf_init(&c->head, CGPROF__HTTP_MAX_HEAD + READ_CHUNK);
    const char *ca = o->ca_bundle && *o->ca_bundle ? o->ca_bundle : getenv("AWS_CA_BUNDLE");
    if (ca && *ca && !(c->ca_bundle = cgprof_strdup(ca)))
        goto fail;
    c->o.ca_bundle = c->ca_bundle;
    if (!(c->rbuf = cgprof_malloc(READ_CHUNK)))
        goto fail;
    if (cgprof__tls_ctx_new(c->ca_bundle, &c->tls) != 0)
        goto fail;
    if (o->use_proxy_env) {
        bool cgi = getenv("REQUEST_METHOD") != NULL;
        c->https_proxy = env_dup("https_proxy", "HTTPS_PROXY");
        c->http_proxy = env_dup("http_proxy", cgi ? NULL : "HTTP_PROXY");
        c->no_proxy = env_dup("no_proxy", "NO_PROXY");
    }
    return c;
fail:
    cgprof__http_client_free(c);
    return NULL;
}

static void slot_drop(struct slot *s, bool graceful)
{
    if (s->used)
        cgprof__conn_close(&s->cn, graceful);
    s->used = false;
    s->key[0] = '\0';
}

void cgprof__http_client_free(struct cgprof__http_client *c)
{
    if (!c)
        return;
    bool ours = c->pid == getpid();
    for (int i = 0; i < SLOTS; i++)
        slot_drop(&c->slots[i], ours);
    cgprof__tls_ctx_free(c->tls);
    cgprof_free(c->ca_bundle);
    cgprof_free(c->https_proxy);
    cgprof_free(c->http_proxy);
    cgprof_free(c->no_proxy);
    cgprof_free(c->rbuf);
    cgprof_buf_cleanup(&c->head);
    cgprof_free(c);
}

/* The proxy for u, or false for a direct connection. A setting that does
 * not parse is ignored with one warning (never echoing it: it may hold a
 * password). */
static bool pick_proxy(struct cgprof__http_client *c, const struct cgprof__url *u,
                       struct cgprof__proxy *px)
{
    const char *s = u->tls ? c->https_proxy : c->http_proxy;
    if (!s || cgprof__no_proxy_match(c->no_proxy, u->host, u->port))
        return false;
    if (cgprof__proxy_parse(s, px) != 0) {
        static bool warned;
        if (!warned)
            cgprof_warn("ignoring %s: not an http:// proxy URL", u->tls ? "HTTPS_PROXY" : "HTTP_PROXY");
        warned = true;
        return false;
    }
    return true;
}

static bool hdr_ok(const char *s, bool name)
{
    if (!s || (name && !*s))
        return false;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (name ? !is_tchar(ch) : !is_vchar(ch))
            return false;
    }
    return true;
}

static int append_basic_auth(struct cgprof_buf *b, const char *name, const char *auth)
{
    unsigned char enc[800];
    size_t olen = 0;
    if (mbedtls_base64_encode(enc, sizeof(enc), &olen, (const unsigned char *)auth, strlen(auth)))
        return CGPROF_ETOOBIG;
    return cgprof_buf_printf(b, "%s: Basic %.*s\r\n", name, (int)olen, (const char *)enc);
}

/* Builds the request head. Caller headers are checked for CR/LF and other
 * controls (no header injection); a caller's Host replaces ours and a
 * caller's Content-Length must equal body_len.
 * Tests: test/unit/uploader/test_tls.c */
static int build_head(const struct cgprof__http_request *rq, const struct cgprof__proxy *px,
                      struct cgprof_buf *b)
{
    const struct cgprof__url *u = rq->url;
    const char *target = rq->target ? rq->target : u->path;
    if (!hdr_ok(rq->method, true) || !target || target[0] != '/')
        return CGPROF_EINVAL;
    for (const char *t = target; *t; t++)
        if ((unsigned char)*t <= 0x20 || (unsigned char)*t >= 0x7f)
            return CGPROF_EINVAL;
    char host[300];
    if (cgprof__url_host_header(u, host, sizeof(host)))
        return CGPROF_EINVAL;
    bool have_host = false, have_len = false;
    for (size_t i = 0; i < rq->nheaders; i++) {
        const struct cgprof__http_header *h = &rq->headers[i];
        if (!hdr_ok(h->name, true) || !hdr_ok(h->value, false))
            return CGPROF_EINVAL;
        if (strcasecmp(h->name, "Host") == 0)
            have_host = true;
        if (strcasecmp(h->name, "Content-Length") == 0) {
            char want[32];
            snprintf(want, sizeof(want), "%zu", rq->body_len);
            if (strcmp(h->value, want) != 0)
                return CGPROF_EINVAL;
            have_len = true;
        }
        if (strcasecmp(h->name, "Transfer-Encoding") == 0)
            return CGPROF_EINVAL;
    }
    int rc;
    if (px && !u->tls) /* absolute-form through an http proxy */
        rc = cgprof_buf_printf(b, "%s http://%s%s HTTP/1.1\r\n", rq->method, host, target);
    else
        rc = cgprof_buf_printf(b, "%s %s HTTP/1.1\r\n", rq->method, target);
    if (!rc && !have_host)
        rc = cgprof_buf_printf(b, "Host: %s\r\n", host);
    for (size_t i = 0; !rc && i < rq->nheaders; i++)
        rc = cgprof_buf_printf(b, "%s: %s\r\n", rq->headers[i].name, rq->headers[i].value);
    bool bodyful = rq->body_len > 0 || strcmp(rq->method, "POST") == 0 ||
                   strcmp(rq->method, "PUT") == 0 || strcmp(rq->method, "PATCH") == 0;
    if (!rc && bodyful && !have_len)
        rc = cgprof_buf_printf(b, "Content-Length: %zu\r\n", rq->body_len);
    if (!rc && px && !u->tls && px->auth[0])
        rc = append_basic_auth(b, "Proxy-Authorization", px->auth);
    if (!rc)
        rc = cgprof_buf_appends(b, "\r\n");
    return rc;
}

/* Reads from cn until a full head is in c->head (bytes past it stay
 * there). *got is set once any byte arrived. Returns the head length,
 * or a negative error; EOF is CGPROF_EIO. */
static int read_head(struct cgprof__http_client *c, struct cgprof__conn *cn,
                     struct cgprof__http_response *rs, bool *got)
{
    for (;;) {
        if (c->head.len > 0) {
            int n = cgprof__http_parse_head(c->head.data, c->head.len, rs);
            if (n != CGPROF_EAGAIN)
                return n;
        }
        long r = cgprof__conn_read(cn, c->rbuf, READ_CHUNK);
        if (r < 0)
            return (int)r;
        if (r == 0)
            return CGPROF_EIO;
        *got = true;
        int rc = cgprof_buf_append(&c->head, c->rbuf, (size_t)r);
        if (rc)
            return rc;
    }
}

static void head_consume(struct cgprof_buf *b, size_t n)
{
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

/* True when a comma-separated header value lists token. */
static bool has_token(const char *v, const char *token)
{
    size_t tl = strlen(token);
    while (v && *v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        size_t n = strcspn(v, ",");
        size_t m = n;
        while (m > 0 && (v[m - 1] == ' ' || v[m - 1] == '\t'))
            m--;
        if (m == tl && strncasecmp(v, token, tl) == 0)
            return true;
        v += n;
    }
    return false;
}

/* Content-Length of rs: 0 and *len set, 1 when absent, CGPROF_EHTTP when
 * invalid or when several disagree. */
static int content_length(const struct cgprof__http_response *rs, uint64_t *len)
{
    int found = 0;
    for (size_t i = 0; i < rs->nheaders; i++) {
        if (strcasecmp(rs->headers[i].name, "Content-Length") != 0)
            continue;
        const char *v = rs->headers[i].value;
        uint64_t x = 0;
        if (!*v)
            return CGPROF_EHTTP;
        for (; *v; v++) {
            if (!isdigit((unsigned char)*v) || x > UINT64_MAX / 20)
                return CGPROF_EHTTP;
            x = x * 10 + (uint64_t)(*v - '0');
        }
        if (found && x != *len)
            return CGPROF_EHTTP;
        *len = x;
        found = 1;
    }
    return found ? 0 : 1;
}

/* Reads the body of rs by its framing (RFC 9112 6.3), starting with the
 * bytes already in c->head. Sets *keep when the connection may be reused.
 * Tests: test/unit/uploader/test_tls.c */
static int read_body(struct cgprof__http_client *c, struct cgprof__conn *cn, bool head_req,
                     bool http10, struct cgprof__http_response *rs, bool *keep)
{
    const char *conn_hdr = cgprof__http_response_header(rs, "Connection");
    *keep = http10 ? has_token(conn_hdr, "keep-alive") : !has_token(conn_hdr, "close");
    cgprof_buf_init(&rs->body, c->o.max_body);
    if (head_req || rs->status == 204 || rs->status == 304) {
        if (c->head.len)
            *keep = false; /* stray bytes: the stream is out of step */
        return 0;
    }
    const char *te = cgprof__http_response_header(rs, "Transfer-Encoding");
    if (te) {
        /* Only "chunked" alone is supported (we never send TE). */
        if (!has_token(te, "chunked") || strcspn(te, ",") != strlen(te))
            return CGPROF_EHTTP;
        if (cgprof__http_response_header(rs, "Content-Length"))
            *keep = false; /* RFC 9112 6.3 item 3: TE wins, then close */
        struct cgprof__http_chunked d;
        cgprof__http_chunked_init(&d);
        size_t used;
        int rc = cgprof__http_chunked_decode(&d, c->head.data ? c->head.data : "", c->head.len,
                                             &used, &rs->body);
        if (rc == 0 && used < c->head.len)
            *keep = false; /* bytes past the body: out of step */
        while (rc == CGPROF_EAGAIN) {
            long r = cgprof__conn_read(cn, c->rbuf, READ_CHUNK);
            if (r < 0)
                return (int)r;
            if (r == 0)
                return CGPROF_EIO;
            rc = cgprof__http_chunked_decode(&d, c->rbuf, (size_t)r, &used, &rs->body);
            if (rc == 0 && used < (size_t)r)
                *keep = false;
        }
        return rc;
    }
    uint64_t cl = 0;
    int have = content_length(rs, &cl);
    if (have < 0)
        return have;
    if (have == 0) {
        if (cl > c->o.max_body)
            return CGPROF_ETOOBIG;
        size_t take = c->head.len < cl ? c->head.len : (size_t)cl;
        int rc = cgprof_buf_append(&rs->body, c->head.data, take);
        if (rc)
            return rc;
        if (c->head.len > take)
            *keep = false;
        while (rs->body.len < cl) {
            size_t want = (size_t)cl - rs->body.len;
            long r = cgprof__conn_read(cn, c->rbuf, want < READ_CHUNK ? want : READ_CHUNK);
            if (r < 0)
                return (int)r;
            if (r == 0)
                return CGPROF_EIO;
            if ((rc = cgprof_buf_append(&rs->body, c->rbuf, (size_t)r)))
                return rc;
        }
        return 0;
    }
    /* Neither: the body runs to the end of the connection. */
    *keep = false;
    int rc = cgprof_buf_append(&rs->body, c->head.data, c->head.len);
    for (;;) {
        if (rc)
            return rc;
        long r = cgprof__conn_read(cn, c->rbuf, READ_CHUNK);
        if (r < 0)
            return (int)r;
        if (r == 0)
            return 0;
        rc = cgprof_buf_append(&rs->body, c->rbuf, (size_t)r);
    }
}

/* Opens a tunnel through px to host:port with CONNECT. The proxy's own
 * answer is never handed to the caller as if it came from the endpoint:
 * a refusal is logged (status only) and returned as CGPROF_EIO. */
static int proxy_connect(struct cgprof__http_client *c, struct cgprof__conn *cn,
                         const struct cgprof__proxy *px, const struct cgprof__url *u)
{
    struct cgprof_buf b;
    cgprof_buf_init(&b, 4096);
    bool v6 = strchr(u->host, ':') != NULL;
    char auth[300];
    snprintf(auth, sizeof(auth), "%s%s%s:%u", v6 ? "[" : "", u->host, v6 ? "]" : "", u->port);
    int rc = cgprof_buf_printf(&b, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", auth, auth);
    if (!rc && px->auth[0])
        rc = append_basic_auth(&b, "Proxy-Authorization", px->auth);
    if (!rc)
        rc = cgprof_buf_appends(&b, "\r\n");
    if (!rc)
        rc = cgprof__conn_write(cn, b.data, b.len);
    cgprof_buf_cleanup(&b);
    if (rc)
        return rc;
    struct cgprof__http_response prs;
    bool got = false;
    cgprof_buf_reset(&c->head);
    int n = read_head(c, cn, &prs, &got);
    if (n > 0) {
        int status = prs.status;
        cgprof__http_response_cleanup(&prs);
        if (status / 100 != 2 || (size_t)n != c->head.len) {
            cgprof_warn("proxy %s:%u refused CONNECT to %s:%u: HTTP %d", px->host, px->port,
                        u->host, u->port, status);
            rc = CGPROF_EIO;
        }
        cgprof_buf_reset(&c->head);
        return rc;
    }
    cgprof__http_response_cleanup(&prs);
    return n;
}

/* A connection for key: the kept-alive one when still usable (*reused),
 * else a new one (through the proxy when px), evicting the least recently
 * used slot. */
static int get_conn(struct cgprof__http_client *c, const char *key, const struct cgprof__url *u,
                    const struct cgprof__proxy *px, uint64_t deadline, struct slot **out,
                    bool *reused)
{
    struct slot *s = NULL, *victim = &c->slots[0];
    *reused = false;
    for (int i = 0; i < SLOTS; i++) {
        struct slot *t = &c->slots[i];
        if (t->used && strcmp(t->key, key) == 0)
            s = t;
        if (!t->used || (victim->used && t->last_ns < victim->last_ns))
            victim = t;
    }
    if (s && cgprof__conn_idle_ok(&s->cn)) {
        s->cn.io_ms = c->o.io_timeout_ms;
        s->cn.deadline_ns = deadline;
        *reused = true;
        *out = s;
        return 0;
    }
    if (s)
        slot_drop(s, false);
    else
        s = victim;
    slot_drop(s, true);
    const char *host = px ? px->host : u->host;
    unsigned port = px ? px->port : u->port;
    int rc = cgprof__conn_connect(&s->cn, host, port, c->o.connect_timeout_ms,
                                  c->o.io_timeout_ms, deadline);
    if (rc)
        return rc;
    s->used = true;
    if (px && u->tls)
        rc = proxy_connect(c, &s->cn, px, u);
    if (!rc && u->tls)
        rc = cgprof__conn_start_tls(&s->cn, c->tls, u->host);
    if (rc) {
        slot_drop(s, false);
        return rc;
    }
    snprintf(s->key, sizeof(s->key), "%s", key);
    *out = s;
    return 0;
}

static bool idempotent(const struct cgprof__http_request *rq)
{
    static const char *const safe[] = { "GET", "HEAD", "PUT", "DELETE", "OPTIONS" };
    if (rq->idempotent)
        return true;
    for (size_t i = 0; i < CGPROF_ARRAY_SIZE(safe); i++)
        if (strcmp(rq->method, safe[i]) == 0)
            return true;
    return false;
}

/* One exchange on one connection. *got tells whether any byte of the
 * response arrived (a failure before that on a reused connection may be a
 * stale keep-alive). */
static int exchange(struct cgprof__http_client *c, struct slot *s,
                    const struct cgprof__http_request *rq, const struct cgprof_buf *head,
                    struct cgprof__http_response *rs, bool *got)
{
    int rc;
    /* One write when small, so the request leaves in one segment. */
    if (rq->body_len && rq->body_len <= 16384) {
        struct cgprof_buf one;
        cgprof_buf_init(&one, head->len + rq->body_len);
        rc = cgprof_buf_append(&one, head->data, head->len);
        if (!rc)
            rc = cgprof_buf_append(&one, rq->body, rq->body_len);
        if (!rc)
            rc = cgprof__conn_write(&s->cn, one.data, one.len);
        cgprof_buf_cleanup(&one);
    } else {
        rc = cgprof__conn_write(&s->cn, head->data, head->len);
        if (!rc && rq->body_len)
            rc = cgprof__conn_write(&s->cn, rq->body, rq->body_len);
    }
    if (rc)
        return rc;
    cgprof_buf_reset(&c->head);
    int n;
    for (;;) {
        n = read_head(c, &s->cn, rs, got);
        if (n < 0)
            return n;
        /* Interim 1xx responses (100 Continue, 103 Early Hints) precede
         * the real one; 101 would switch protocols, which we never ask. */
        if (rs->status >= 200)
            break;
        cgprof__http_response_cleanup(rs);
        if (rs->status == 101)
            return CGPROF_EHTTP;
        head_consume(&c->head, (size_t)n);
    }
    bool http10 = c->head.data[7] == '0';
    head_consume(&c->head, (size_t)n);
    bool keep;
    rc = read_body(c, &s->cn, strcmp(rq->method, "HEAD") == 0, http10, rs, &keep);
    if (rc) {
        cgprof__http_response_cleanup(rs);
        return rc;
    }
    if (!keep)
        slot_drop(s, true);
    return 0;
}

/* Tests: test/unit/uploader/test_tls.c */
int cgprof__http_do(struct cgprof__http_client *c, const struct cgprof__http_request *rq,
                    struct cgprof__http_response *rs)
{
    memset(rs, 0, sizeof(*rs));
    cgprof_buf_init(&rs->body, 0);
    if (!c || !rq || !rq->url || !rq->method || (rq->body_len && !rq->body))
        return CGPROF_EINVAL;
    if (c->pid != getpid()) {
        /* A forked child shares the parent's sockets and TLS state: drop
         * them without a word on the wire (close_notify would end the
         * parent's session). */
        for (int i = 0; i < SLOTS; i++)
            slot_drop(&c->slots[i], false);
        c->pid = getpid();
    }
    const struct cgprof__url *u = rq->url;
    struct cgprof__proxy px;
    bool use_px = c->o.use_proxy_env && pick_proxy(c, u, &px);
    char key[600];
    if (use_px)
        snprintf(key, sizeof(key), "%s://%s:%u via %s:%u", u->tls ? "https" : "http", u->host,
                 u->port, px.host, px.port);
    else
        snprintf(key, sizeof(key), "%s://%s:%u", u->tls ? "https" : "http", u->host, u->port);
    struct cgprof_buf head;
    cgprof_buf_init(&head, CGPROF__HTTP_MAX_HEAD);
    int rc = build_head(rq, use_px ? &px : NULL, &head);
    if (rc) {
        cgprof_buf_cleanup(&head);
        return rc == CGPROF_ETOOBIG ? CGPROF_ETOOBIG : CGPROF_EINVAL;
    }
    uint64_t deadline = c->o.total_timeout_ms
                            ? cgprof_now_ns() + (uint64_t)c->o.total_timeout_ms * 1000000u
                            : 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        struct slot *s;
        bool reused, got = false;
        rc = get_conn(c, key, u, use_px ? &px : NULL, deadline, &s, &reused);
        if (rc)
            break;
        s->last_ns = cgprof_now_ns();
        rc = exchange(c, s, rq, &head, rs, &got);
        if (rc == 0)
            break;
        slot_drop(s, false);
        bool stale = rc == CGPROF_EIO || rc == -ECONNRESET || rc == -EPIPE;
        if (!(reused && !got && stale && idempotent(rq)))
            break;
        cgprof_debug("kept-alive connection to %s:%u was stale; resending once", u->host, u->port);
    }
    cgprof_buf_cleanup(&head);
    cgprof_buf_reset(&c->head);
    if (rc) {
        cgprof__http_response_cleanup(rs);
        cgprof_buf_init(&rs->body, 0);
        cgprof_debug("%s %s:%u failed: %s", rq->method, u->host, u->port, cgprof_strerror(rc));
    }
    return rc;
}
