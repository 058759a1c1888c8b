/* Sockets and TLS for the HTTP client: name resolution bounded by a
 * deadline (getaddrinfo_a), non-blocking connect over IPv4/IPv6, and
 * mbedTLS 2.28 (TLS 1.2+, certificates verified against the system store
 * or a given bundle, host name checked, SNI) with every wait done in poll()
 * under a timeout. mbedTLS is linked statically and hidden in
 * libcgprof.so. Requests, responses and proxies are in http.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/asn1.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "../common/common.h"
#include "uploader_int.h"

struct cgprof__tls_ctx {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt ca;
    mbedtls_ssl_config conf;
    pid_t pid;                  /* process that seeded the DRBG */
    unsigned long last_log;     /* hash of the last TLS error logged */
};

/* Bundle files of the common distributions, as Go's crypto/x509 and curl
 * look for them; the directory is the last resort. */
static const char *const system_bundles[] = {
    "/etc/ssl/certs/ca-certificates.crt",               /* Debian, Ubuntu, Alpine */
    "/etc/pki/tls/certs/ca-bundle.crt",                 /* Fedora, RHEL 6 */
    "/etc/ssl/ca-bundle.pem",                           /* openSUSE */
    "/etc/pki/tls/cacert.pem",                          /* OpenELEC */
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", /* RHEL 7+ */
    "/etc/ssl/cert.pem",                                /* Alpine, macOS-like */
};

static unsigned long hash_str(const char *s)
{
    unsigned long h = 5381;
    while (*s)
        h = h * 33 + (unsigned char)*s++;
    return h;
}

/* Logs a TLS failure at warn level unless it repeats the previous one,
 * which goes to debug: callers retry, and one clear line is enough. */
static void tls_log(struct cgprof__tls_ctx *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void tls_log(struct cgprof__tls_ctx *t, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    unsigned long h = hash_str(msg);
    if (t && t->last_log == h) {
        cgprof_debug("%s", msg);
        return;
    }
    if (t)
        t->last_log = h;
    cgprof_warn("%s", msg);
}

static int load_file(mbedtls_x509_crt *ca, const char *path)
{
    int r = mbedtls_x509_crt_parse_file(ca, path);
    /* A positive value counts certificates that failed to parse; a bundle
     * is usable when at least one parsed. */
    return (r >= 0 && ca->version != 0) ? 0 : (r < 0 ? r : -1);
}

/* Loads the CA store: ca_bundle when given, else SSL_CERT_FILE, else the
 * first readable system bundle, else the certificates in /etc/ssl/certs.
 * AWS_CA_BUNDLE is resolved by the caller (http.c).
 * Tests: test/unit/uploader/test_tls.c */
static int load_ca(mbedtls_x509_crt *ca, const char *ca_bundle)
{
    if (ca_bundle) {
        int r = load_file(ca, ca_bundle);
        if (r != 0) {
            char e[128];
            mbedtls_strerror(r, e, sizeof(e));
            cgprof_warn("cannot read CA bundle %s: %s", ca_bundle, r == -1 ? "no certificate" : e);
            return CGPROF_ETLS;
        }
        return 0;
    }
    const char *env = getenv("SSL_CERT_FILE");
    if (env && *env && load_file(ca, env) == 0)
        return 0;
    for (size_t i = 0; i < CGPROF_ARRAY_SIZE(system_bundles); i++) {
        if (access(system_bundles[i], R_OK) == 0 && load_file(ca, system_bundles[i]) == 0)
            return 0;
    }
    if (mbedtls_x509_crt_parse_path(ca, "/etc/ssl/certs") >= 0 && ca->version != 0)
        return 0;
    cgprof_warn("no CA certificates found in the system store; set AWS_CA_BUNDLE or caBundle");
    return CGPROF_ETLS;
}

/* Tests: test/unit/uploader/test_tls.c */
int cgprof__tls_ctx_new(const char *ca_bundle, struct cgprof__tls_ctx **out)
{
    struct cgprof__tls_ctx *t = cgprof_calloc(1, sizeof(*t));
    if (!t)
        return CGPROF_ENOMEM;
    mbedtls_entropy_init(&t->entropy);
    mbedtls_ctr_drbg_init(&t->drbg);
    mbedtls_x509_crt_init(&t->ca);
    mbedtls_ssl_config_init(&t->conf);
    int rc = load_ca(&t->ca, ca_bundle);
    if (rc)
        goto fail;
    static const char pers[] = "cgprof-tls";
    int r = mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->entropy,
                                  (const unsigned char *)pers, sizeof(pers) - 1);
    if (r == 0)
        r = mbedtls_ssl_config_defaults(&t->conf, MBEDTLS_SSL_IS_CLIENT,
                                        MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
    if (r != 0) {
        char e[128];
        mbedtls_strerror(r, e, sizeof(e));
        cgprof_warn("TLS setup failed: %s (-0x%04X)", e, (unsigned)-r);
        rc = CGPROF_ETLS;
        goto fail;
    }
    mbedtls_ssl_conf_min_version(&t->conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_authmode(&t->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&t->conf, &t->ca, NULL);
    mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &t->drbg);
    t->pid = getpid();
    *out = t;
    return 0;
fail:
    cgprof__tls_ctx_free(t);
    return rc;
}

void cgprof__tls_ctx_free(struct cgprof__tls_ctx *t)
{
    if (!t)
        return;
    mbedtls_ssl_config_free(&t->conf);
    mbedtls_x509_crt_free(&t->ca);
    mbedtls_ctr_drbg_free(&t->drbg);
    mbedtls_entropy_free(&t->entropy);
    cgprof_free(t);
}

/* ---- name resolution ---------------------------------------------------- */

/* getaddrinfo_a requests that timed out and could not be cancelled: the
 * resolver thread still writes into them, so they are freed later, when
 * done. Bounded; past the bound they are leaked (a few hundred bytes per
 * hung lookup). */
struct gai_req {
    struct gaicb cb;
    struct addrinfo hints;
    char host[256];
    char port[8];
};
#define ORPHANS 8
static struct gai_req *orphans[ORPHANS];
static pthread_mutex_t orphans_lock = PTHREAD_MUTEX_INITIALIZER;

static void orphans_reap(void)
{
    pthread_mutex_lock(&orphans_lock);
    for (int i = 0; i < ORPHANS; i++) {
        if (orphans[i] && gai_error(&orphans[i]->cb) != EAI_INPROGRESS) {
            if (orphans[i]->cb.ar_result)
                freeaddrinfo(orphans[i]->cb.ar_result);
            cgprof_free(orphans[i]);
            orphans[i] = NULL;
        }
    }
    pthread_mutex_unlock(&orphans_lock);
}

static void orphan_add(struct gai_req *r)
{
    pthread_mutex_lock(&orphans_lock);
    for (int i = 0; i < ORPHANS; i++) {
        if (!orphans[i]) {
            orphans[i] = r;
            break;
        }
    }
    pthread_mutex_unlock(&orphans_lock);
}

static uint64_t wait_end(unsigned ms, uint64_t deadline_ns)
{
    uint64_t end = cgprof_now_ns() + (uint64_t)ms * 1000000u;
    return (deadline_ns && deadline_ns < end) ? deadline_ns : end;
}

/* Milliseconds from now to end, rounded up, at least 0. */
static int ms_left(uint64_t end)
{
    uint64_t now = cgprof_now_ns();
    if (now >= end)
        return 0;
    uint64_t ms = (end - now + 999999u) / 1000000u;
    return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

/* Resolves host:port until end. Numeric addresses never touch the
 * resolver; names go through getaddrinfo_a so a hung DNS server costs at
 * most the connect timeout (the plain getaddrinfo would follow
 * resolv.conf's timeouts and attempts instead).
 * Tests: test/unit/uploader/test_tls.c (localhost) */
static int resolve(const char *host, unsigned port, uint64_t end, struct addrinfo **out)
{
    char ports[8];
    snprintf(ports, sizeof(ports), "%u", port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    if (getaddrinfo(host, ports, &hints, out) == 0)
        return 0;
    orphans_reap();
    struct gai_req *r = cgprof_calloc(1, sizeof(*r));
    if (!r)
        return CGPROF_ENOMEM;
    snprintf(r->host, sizeof(r->host), "%s", host);
    memcpy(r->port, ports, sizeof(ports));
    r->hints.ai_family = AF_UNSPEC;
    r->hints.ai_socktype = SOCK_STREAM;
    r->hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
    r->cb.ar_name = r->host;
    r->cb.ar_service = r->port;
    r->cb.ar_request = &r->hints;
    struct gaicb *list[1] = { &r->cb };
    if (getaddrinfo_a(GAI_NOWAIT, list, 1, NULL) != 0) {
        cgprof_free(r);
        return CGPROF_EIO;
    }
    for (;;) {
        if (gai_error(&r->cb) != EAI_INPROGRESS)
            break;
        int left = ms_left(end);
        if (left == 0) {
            int c = gai_cancel(&r->cb);
            if (c == EAI_ALLDONE)
                break;
            if (c == EAI_CANCELED)
                cgprof_free(r);
            else
                orphan_add(r);
            cgprof_debug("resolving %s timed out", host);
            return CGPROF_ETIMEOUT;
        }
        struct timespec ts = { left / 1000, (long)(left % 1000) * 1000000L };
        gai_suspend((const struct gaicb *const *)list, 1, &ts);
    }
    int e = gai_error(&r->cb);
    if (e != 0) {
        cgprof_debug("cannot resolve %s: %s", host, gai_strerror(e));
        if (r->cb.ar_result)
            freeaddrinfo(r->cb.ar_result);
        cgprof_free(r);
        return CGPROF_EIO;
    }
    *out = r->cb.ar_result;
    cgprof_free(r);
    return 0;
}

/* ---- connections -------------------------------------------------------- */

/* Waits for events on cn->fd until end. Returns 0, CGPROF_ETIMEOUT or
 * -errno. EINTR (the sampler's SIGPROF lands here too) just waits again. */
static int wait_fd(int fd, short events, uint64_t end)
{
    for (;;) {
        int left = ms_left(end);
        struct pollfd p = { .fd = fd, .events = events, .revents = 0 };
        int r = poll(&p, 1, left);
        if (r > 0)
            return 0;
        if (r == 0)
            return CGPROF_ETIMEOUT;
        if (errno != EINTR)
            return -errno;
    }
}

static int connect_one(const struct addrinfo *ai, uint64_t end, int *fd_out)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS && errno != EINTR) {
            int e = -errno;
            close(fd);
            return e;
        }
        int rc = wait_fd(fd, POLLOUT, end);
        if (rc) {
            close(fd);
            return rc;
        }
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err) {
            close(fd);
            return -err;
        }
    }
    *fd_out = fd;
    return 0;
}

/* Tests: test/unit/uploader/test_tls.c */
int cgprof__conn_connect(struct cgprof__conn *cn, const char *host, unsigned port,
                         unsigned connect_ms, unsigned io_ms, uint64_t deadline_ns)
{
    memset(cn, 0, sizeof(*cn));
    cn->fd = -1;
    cn->io_ms = io_ms;
    cn->deadline_ns = deadline_ns;
    snprintf(cn->peer, sizeof(cn->peer), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
    uint64_t end = wait_end(connect_ms, deadline_ns);
    struct addrinfo *res = NULL;
    int rc = resolve(host, port, end, &res);
    if (rc)
        return rc;
    rc = CGPROF_EIO;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        rc = connect_one(ai, end, &cn->fd);
        if (rc == 0 || rc == CGPROF_ETIMEOUT)
            break;
    }
    freeaddrinfo(res);
    if (rc)
        cgprof_debug("connect to %s failed: %s", cn->peer, cgprof_strerror(rc));
    return rc;
}

/* mbedTLS I/O callbacks over the non-blocking socket: "would block"
 * becomes WANT_READ/WANT_WRITE and the caller polls. MSG_NOSIGNAL keeps a
 * reset peer from raising SIGPIPE in the host. */
static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    struct cgprof__conn *cn = ctx;
    for (;;) {
        ssize_t n = send(cn->fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0)
            return (int)n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return MBEDTLS_ERR_SSL_WANT_WRITE;
        cn->last_errno = errno;
        return (errno == EPIPE || errno == ECONNRESET) ? MBEDTLS_ERR_NET_CONN_RESET
                                                        : MBEDTLS_ERR_NET_SEND_FAILED;
    }
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    struct cgprof__conn *cn = ctx;
    for (;;) {
        ssize_t n = recv(cn->fd, buf, len, 0);
        if (n >= 0)
            return (int)n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return MBEDTLS_ERR_SSL_WANT_READ;
        cn->last_errno = errno;
        return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_RECV_FAILED;
    }
}

/* True when host is an IPv4 or IPv6 literal; the bytes go to addr. */
static int ip_literal(const char *host, unsigned char addr[16])
{
    if (inet_pton(AF_INET, host, addr) == 1)
        return 4;
    if (inet_pton(AF_INET6, host, addr) == 1)
        return 16;
    return 0;
}

/* True when crt's subjectAltName has an iPAddress entry equal to
 * addr[0..alen). mbedTLS 2.28 checks only DNS names, so for an IP literal
 * the client walks the extension itself (RFC 5280 4.2.1.6). */
static bool san_has_ip(const mbedtls_x509_crt *crt, const unsigned char *addr, int alen)
{
    unsigned char *p = crt->v3_ext.p;
    const unsigned char *end;
    size_t len;
    if (!p || crt->v3_ext.len == 0)
        return false;
    end = p + crt->v3_ext.len;
    if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE))
        return false;
    end = p + len;
    while (p < end) {
        if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE))
            return false;
        unsigned char *ext_end = p + len;
        size_t olen;
        if (mbedtls_asn1_get_tag(&p, ext_end, &olen, MBEDTLS_ASN1_OID))
            return false;
        bool is_san = olen == MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME) &&
                      memcmp(p, MBEDTLS_OID_SUBJECT_ALT_NAME, olen) == 0;
        p += olen;
        if (!is_san) {
            p = ext_end;
            continue;
        }
        int crit;
        if (p < ext_end && *p == MBEDTLS_ASN1_BOOLEAN &&
            mbedtls_asn1_get_bool(&p, ext_end, &crit))
            return false;
        if (mbedtls_asn1_get_tag(&p, ext_end, &len, MBEDTLS_ASN1_OCTET_STRING))
            return false;
        if (mbedtls_asn1_get_tag(&p, ext_end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE))
            return false;
        const unsigned char *names_end = p + len;
        while (p < names_end) {
            int tag = *p++;
            if (mbedtls_asn1_get_len(&p, names_end, &len))
                return false;
            if (tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) && len == (size_t)alen &&
                memcmp(p, addr, len) == 0)
                return true;
            p += len;
        }
        return false;
    }
    return false;
}

/* Verify callback for IP-literal hosts: the leaf must carry the address
 * as an iPAddress SAN; otherwise the name check fails as for DNS names. */
static int verify_ip(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    const char *host = ctx;
    unsigned char addr[16];
    int alen = ip_literal(host, addr);
    if (depth == 0 && alen && !san_has_ip(crt, addr, alen))
        *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
    return 0;
}

/* Logs why a certificate was refused in one line: the host, a short
 * reason, mbedTLS's own verify text, and what to do about it. */
static void log_verify_failure(struct cgprof__tls_ctx *t, const char *host, uint32_t flags)
{
    char info[256];
    int n = mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags);
    if (n < 0)
        info[0] = '\0';
    for (char *p = info; *p; p++)
        if (*p == '\n')
            *p = (p[1] ? ';' : '\0');
    if (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED)
        tls_log(t, "certificate for %s not trusted (unknown CA: %s); set AWS_CA_BUNDLE or caBundle",
                host, info);
    else if (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH)
        tls_log(t, "certificate presented by %s does not name it (host name mismatch: %s)",
                host, info);
    else if (flags & (MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE))
        tls_log(t, "certificate for %s is outside its validity period (%s)", host, info);
    else
        tls_log(t, "certificate for %s rejected (%s)", host, info);
}

static int ssl_err(struct cgprof__conn *cn, int r)
{
    if (r == MBEDTLS_ERR_NET_CONN_RESET)
        return -ECONNRESET;
    if (r == MBEDTLS_ERR_NET_SEND_FAILED || r == MBEDTLS_ERR_NET_RECV_FAILED)
        return cn->last_errno ? -cn->last_errno : CGPROF_EIO;
    if (r == MBEDTLS_ERR_SSL_CONN_EOF)
        return -ECONNRESET;
    return CGPROF_ETLS;
}

/* Runs an mbedTLS step that may want the socket readable or writable,
 * polling between tries. Returns the step's final mbedTLS result; when a
 * wait fails instead, returns WANT_READ/WANT_WRITE with *werr set to
 * CGPROF_ETIMEOUT or -errno (mbedTLS codes and -errno overlap, hence the
 * separate channel). */
static int ssl_step(struct cgprof__conn *cn, int (*step)(mbedtls_ssl_context *, void *, size_t),
                    void *p, size_t n, int *werr)
{
    uint64_t end = wait_end(cn->io_ms, cn->deadline_ns);
    *werr = 0;
    for (;;) {
        int r = step(cn->ssl, p, n);
        if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE) {
            *werr = wait_fd(cn->fd, r == MBEDTLS_ERR_SSL_WANT_READ ? POLLIN : POLLOUT, end);
            if (*werr)
                return r;
            continue;
        }
        return r;
    }
}

static int step_handshake(mbedtls_ssl_context *ssl, void *p, size_t n)
{
    CGPROF_UNUSED(p);
    CGPROF_UNUSED(n);
    return mbedtls_ssl_handshake(ssl);
}

static int step_read(mbedtls_ssl_context *ssl, void *p, size_t n)
{
    return mbedtls_ssl_read(ssl, p, n);
}

static int step_write(mbedtls_ssl_context *ssl, void *p, size_t n)
{
    return mbedtls_ssl_write(ssl, p, n);
}

/* Tests: test/unit/uploader/test_tls.c */
int cgprof__conn_start_tls(struct cgprof__conn *cn, struct cgprof__tls_ctx *t, const char *host)
{
    if (!t)
        return CGPROF_ETLS;
    if (t->pid != getpid()) {
        /* A forked child must not draw the parent's random stream. */
        mbedtls_ctr_drbg_reseed(&t->drbg, NULL, 0);
        t->pid = getpid();
    }
    mbedtls_ssl_context *ssl = cgprof_malloc(sizeof(*ssl));
    if (!ssl)
        return CGPROF_ENOMEM;
    mbedtls_ssl_init(ssl);
    unsigned char addr[16];
    bool is_ip = ip_literal(host, addr) != 0;
    int r = mbedtls_ssl_setup(ssl, &t->conf);
    /* SNI and the DNS-name check; RFC 6066 forbids SNI for IP literals,
     * which are checked by verify_ip instead. */
    if (r == 0 && !is_ip)
        r = mbedtls_ssl_set_hostname(ssl, host);
    if (r != 0) {
        mbedtls_ssl_free(ssl);
        cgprof_free(ssl);
        return r == MBEDTLS_ERR_SSL_ALLOC_FAILED ? CGPROF_ENOMEM : CGPROF_ETLS;
    }
    if (is_ip)
        mbedtls_ssl_set_verify(ssl, verify_ip, (void *)(uintptr_t)host);
    mbedtls_ssl_set_bio(ssl, cn, bio_send, bio_recv, NULL);
    cn->ssl = ssl;
    int werr;
    r = ssl_step(cn, step_handshake, NULL, 0, &werr);
    if (is_ip)
        mbedtls_ssl_set_verify(ssl, NULL, NULL); /* host is the caller's */
    if (r == 0)
        return 0;
    int rc;
    if (werr) {
        rc = werr; /* timeout or -errno from the wait */
        if (rc == CGPROF_ETIMEOUT)
            cgprof_debug("TLS handshake with %s timed out", cn->peer);
    } else if (r == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
        log_verify_failure(t, cn->peer, mbedtls_ssl_get_verify_result(ssl));
        rc = CGPROF_ETLS;
    } else {
        rc = ssl_err(cn, r);
        if (rc == CGPROF_ETLS) {
            char e[160];
            mbedtls_strerror(r, e, sizeof(e));
            tls_log(t, "TLS handshake with %s failed: %s (-0x%04X)", cn->peer, e, (unsigned)-r);
        }
    }
    mbedtls_ssl_free(ssl);
    cgprof_free(ssl);
    cn->ssl = NULL;
    return rc;
}

/* Tests: test/unit/uploader/test_tls.c */
int cgprof__conn_write(struct cgprof__conn *cn, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n > 0) {
        if (cn->ssl) {
            int werr;
            int r = ssl_step(cn, step_write, (void *)(uintptr_t)b, n, &werr);
            if (werr)
                return werr;
            if (r < 0)
                return ssl_err(cn, r);
            b += r;
            n -= (size_t)r;
            continue;
        }
        ssize_t w = send(cn->fd, b, n, MSG_NOSIGNAL);
        if (w >= 0) {
            b += w;
            n -= (size_t)w;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = wait_fd(cn->fd, POLLOUT, wait_end(cn->io_ms, cn->deadline_ns));
        if (rc)
            return rc;
    }
    return 0;
}

/* Tests: test/unit/uploader/test_tls.c */
long cgprof__conn_read(struct cgprof__conn *cn, void *p, size_t n)
{
    if (n > 0x7fffffff)
        n = 0x7fffffff;
    if (cn->ssl) {
        int werr;
        int r = ssl_step(cn, step_read, p, n, &werr);
        if (werr)
            return werr;
        if (r >= 0)
            return r;
        if (r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
            return 0;
        if (r == MBEDTLS_ERR_SSL_CONN_EOF)
            return 0;
        return ssl_err(cn, r);
    }
    uint64_t end = wait_end(cn->io_ms, cn->deadline_ns);
    for (;;) {
        ssize_t r = recv(cn->fd, p, n, 0);
        if (r >= 0)
            return (long)r;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = wait_fd(cn->fd, POLLIN, end);
        if (rc)
            return rc;
    }
}

/* Tests: test/unit/uploader/test_tls.c (keep-alive, stale connections) */
bool cgprof__conn_idle_ok(struct cgprof__conn *cn)
{
    if (cn->fd < 0)
        return false;
    if (cn->ssl && mbedtls_ssl_get_bytes_avail(cn->ssl) > 0)
        return false;
    struct pollfd p = { .fd = cn->fd, .events = POLLIN, .revents = 0 };
    int r;
    do
        r = poll(&p, 1, 0);
    while (r < 0 && errno == EINTR);
    /* Readable while idle means EOF, a reset, a close_notify or stray
     * bytes: none of them leaves the connection usable. */
    return r == 0;
}

void cgprof__conn_close(struct cgprof__conn *cn, bool graceful)
{
    if (cn->ssl) {
        if (graceful && cn->fd >= 0)
            mbedtls_ssl_close_notify(cn->ssl); /* best effort, never waits */
        mbedtls_ssl_free(cn->ssl);
        cgprof_free(cn->ssl);
        cn->ssl = NULL;
    }
    if (cn->fd >= 0)
        close(cn->fd);
    cn->fd = -1;
}
