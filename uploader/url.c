/* URLs for the HTTP client: http:// and https:// endpoint URLs, proxy URLs
 * from HTTPS_PROXY/HTTP_PROXY, the Host header value, and NO_PROXY
 * matching (comma list of names, domain suffixes, "*", IPs and CIDRs).
 * Requests and connections are in http.c, TLS and sockets in tls.c. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"
#include "uploader_int.h"

static int is_unreserved_host(int c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_';
}

/* Parses "host[:port]" from a[0..n) into host (lowercased, brackets
 * removed for IPv6 literals) and *port (left alone when absent or empty).
 * Returns 0 or CGPROF_EINVAL. */
static int parse_authority(const char *a, size_t n, char *host, size_t host_n, unsigned *port)
{
    const char *p = a, *end = a + n, *hs, *he;
    if (p < end && *p == '[') {
        hs = ++p;
        while (p < end && *p != ']')
            p++;
        if (p == end)
            return CGPROF_EINVAL;
        he = p++;
        if (he == hs)
            return CGPROF_EINVAL;
        for (const char *q = hs; q < he; q++)
            if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.')
                return CGPROF_EINVAL;
        char tmp[64];
        struct in6_addr a6;
        if ((size_t)(he - hs) >= sizeof(tmp))
            return CGPROF_EINVAL;
        memcpy(tmp, hs, (size_t)(he - hs));
        tmp[he - hs] = '\0';
        if (inet_pton(AF_INET6, tmp, &a6) != 1)
            return CGPROF_EINVAL;
    } else {
        hs = p;
        while (p < end && *p != ':')
            p++;
        he = p;
        if (he == hs)
            return CGPROF_EINVAL;
        for (const char *q = hs; q < he; q++)
            if (!is_unreserved_host((unsigned char)*q))
                return CGPROF_EINVAL;
    }
    if ((size_t)(he - hs) >= host_n)
        return CGPROF_EINVAL;
    for (size_t i = 0; i < (size_t)(he - hs); i++)
        host[i] = (char)tolower((unsigned char)hs[i]);
    host[he - hs] = '\0';
    if (p == end)
        return 0;
    if (*p != ':')
        return CGPROF_EINVAL;
    p++;
    if (p == end)
        return 0; /* "host:" means the default port (RFC 3986 3.2.3) */
    unsigned long v = 0;
    for (; p < end; p++) {
        if (!isdigit((unsigned char)*p) || v > 65535)
            return CGPROF_EINVAL;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v == 0 || v > 65535)
        return CGPROF_EINVAL;
    *port = (unsigned)v;
    return 0;
}

/* Accepts http:// and https:// (scheme case-insensitive), no userinfo, an
 * optional port, and a path/query of printable ASCII without spaces (so a
 * URL can never inject into the request line); "#fragment" is dropped and
 * an empty path becomes "/". u is written only on success.
 * Tests: test/unit/uploader/test_url.c */
int cgprof__url_parse(const char *s, struct cgprof__url *u)
{
    struct cgprof__url r;
    if (!s || !u)
        return CGPROF_EINVAL;
    memset(&r, 0, sizeof(r));
    if (strncasecmp(s, "https://", 8) == 0) {
        r.tls = true;
        r.port = 443;
        s += 8;
    } else if (strncasecmp(s, "http://", 7) == 0) {
        r.port = 80;
        s += 7;
    } else {
        return CGPROF_EINVAL;
    }
    size_t alen = strcspn(s, "/?#");
    if (memchr(s, '@', alen))
        return CGPROF_EINVAL;
    if (parse_authority(s, alen, r.host, sizeof(r.host), &r.port) != 0)
        return CGPROF_EINVAL;
    s += alen;
    size_t plen = strcspn(s, "#");
    size_t j = 0;
    if (plen == 0 || s[0] == '?')
        r.path[j++] = '/';
    if (j + plen >= sizeof(r.path))
        return CGPROF_EINVAL;
    for (size_t i = 0; i < plen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f)
            return CGPROF_EINVAL;
        r.path[j++] = (char)c;
    }
    r.path[j] = '\0';
    *u = r;
    return 0;
}

/* Writes the Host header value the client sends for u: the host, bracketed
 * when it is an IPv6 literal, with ":port" unless the port is the scheme's
 * default. SigV4 signs exactly this string. Returns 0 or CGPROF_ETOOBIG.
 * Tests: test/unit/uploader/test_url.c */
int cgprof__url_host_header(const struct cgprof__url *u, char *out, size_t n)
{
    bool v6 = strchr(u->host, ':') != NULL;
    bool dflt = u->port == (u->tls ? 443u : 80u);
    int w;
    if (dflt)
        w = snprintf(out, n, v6 ? "[%s]" : "%s", u->host);
    else
        w = snprintf(out, n, v6 ? "[%s]:%u" : "%s:%u", u->host, u->port);
    return (w < 0 || (size_t)w >= n) ? CGPROF_ETOOBIG : 0;
}

/* Tests: test/unit/uploader/test_url.c, test_pyroscope.c */
int cgprof__pct_decode(const char *s, size_t n, char *out, size_t out_n)
{
    size_t j = strlen(out);
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int h, l;
            if (i + 2 >= n || (h = cgprof_hexval((unsigned char)s[i + 1])) < 0 ||
                (l = cgprof_hexval((unsigned char)s[i + 2])) < 0)
                return CGPROF_EINVAL;
            c = h * 16 + l;
            i += 2;
        }
        if (c == 0 || j + 1 >= out_n)
            return CGPROF_EINVAL;
        out[j++] = (char)c;
    }
    out[j] = '\0';
    return 0;
}

/* Parses a proxy setting as curl and the AWS SDKs read HTTPS_PROXY:
 * "[http://][user[:password]@]host[:port][/]", the port defaulting to 80.
 * User and password are percent-decoded into p->auth ("user:password"),
 * which must never be logged. https:// proxies (TLS to the proxy) and
 * other schemes are refused with CGPROF_EINVAL.
 * Tests: test/unit/uploader/test_url.c */
int cgprof__proxy_parse(const char *s, struct cgprof__proxy *p)
{
    struct cgprof__proxy r;
    if (!s || !p)
        return CGPROF_EINVAL;
    memset(&r, 0, sizeof(r));
    r.port = 80;
    const char *sep = strstr(s, "://");
    if (sep) {
        if (!(sep - s == 4 && strncasecmp(s, "http", 4) == 0))
            return CGPROF_EINVAL;
        s = sep + 3;
    }
    size_t alen = strcspn(s, "/?#");
    const char *rest = s + alen;
    if (*rest && strcmp(rest, "/") != 0)
        return CGPROF_EINVAL;
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (s[i] == '@')
            at = s + i;
    if (at) {
        const char *colon = memchr(s, ':', (size_t)(at - s));
        size_t ulen = colon ? (size_t)(colon - s) : (size_t)(at - s);
        if (cgprof__pct_decode(s, ulen, r.auth, sizeof(r.auth)) != 0)
            return CGPROF_EINVAL;
        size_t k = strlen(r.auth);
        if (k + 2 >= sizeof(r.auth))
            return CGPROF_EINVAL;
        r.auth[k] = ':';
        r.auth[k + 1] = '\0';
        if (colon && cgprof__pct_decode(colon + 1, (size_t)(at - colon - 1), r.auth,
                                        sizeof(r.auth)) != 0)
            return CGPROF_EINVAL;
        alen -= (size_t)(at + 1 - s);
        s = at + 1;
    }
    if (parse_authority(s, alen, r.host, sizeof(r.host), &r.port) != 0)
        return CGPROF_EINVAL;
    *p = r;
    return 0;
}

/* Parses an IPv4/IPv6 address with an optional "/bits" suffix. Returns the
 * family (AF_INET/AF_INET6) or 0 when text is not an address. */
static int parse_cidr(const char *text, unsigned char addr[16], unsigned *bits)
{
    char tmp[64];
    size_t n = strlen(text);
    if (n >= sizeof(tmp))
        return 0;
    memcpy(tmp, text, n + 1);
    char *slash = strchr(tmp, '/');
    long b = -1;
    if (slash) {
        *slash = '\0';
        char *e;
        if (!isdigit((unsigned char)slash[1]))
            return 0;
        b = strtol(slash + 1, &e, 10);
        if (*e)
            return 0;
    }
    char *ip = tmp;
    size_t il = strlen(ip);
    if (il >= 2 && ip[0] == '[' && ip[il - 1] == ']') {
        ip[il - 1] = '\0';
        ip++;
    }
    int fam = 0;
    if (inet_pton(AF_INET, ip, addr) == 1)
        fam = AF_INET;
    else if (inet_pton(AF_INET6, ip, addr) == 1)
        fam = AF_INET6;
    else
        return 0;
    unsigned maxb = fam == AF_INET ? 32 : 128;
    if (b > (long)maxb)
        return 0;
    *bits = b < 0 ? maxb : (unsigned)b;
    return fam;
}

static bool prefix_eq(const unsigned char *a, const unsigned char *b, unsigned bits)
{
    unsigned full = bits / 8, rem = bits % 8;
    if (memcmp(a, b, full) != 0)
        return false;
    if (rem == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rem));
    return (a[full] & mask) == (b[full] & mask);
}

/* True when host:port must bypass the proxy according to list, read the
 * way curl and the AWS SDKs read NO_PROXY: entries separated by commas
 * (spaces ignored); "*" matches everything; "example.com" and
 * ".example.com" match that name and any name under it, case-insensitive;
 * an IP matches the same address (also written in brackets for IPv6) and
 * "10.0.0.0/8"-style CIDRs match addresses inside; an entry ending in
 * ":port" matches that port only.
 * Tests: test/unit/uploader/test_url.c */
bool cgprof__no_proxy_match(const char *list, const char *host, unsigned port)
{
    if (!list || !host)
        return false;
    unsigned char haddr[16];
    unsigned hbits;
    int hfam = parse_cidr(host, haddr, &hbits);
    size_t hlen = strlen(host);
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ", \t");
        if (n == 0) {
            p++;
            continue;
        }
        char e[300];
        if (n < sizeof(e)) {
            memcpy(e, p, n);
            e[n] = '\0';
            if (strcmp(e, "*") == 0)
                return true;
            /* An optional ":port" suffix; not for bare IPv6 entries. */
            unsigned eport = 0;
            char *colon = strrchr(e, ':');
            if (colon && (strchr(e, ':') == colon || (e[0] == '[' && colon > strchr(e, ']')))) {
                char *end;
                unsigned long v = strtoul(colon + 1, &end, 10);
                if (colon[1] && !*end && v > 0 && v < 65536) {
                    eport = (unsigned)v;
                    *colon = '\0';
                }
            }
            if (eport == 0 || eport == port) {
                unsigned char eaddr[16];
                unsigned ebits;
                int efam = parse_cidr(e, eaddr, &ebits);
                if (efam) {
                    if (hfam == efam && prefix_eq(haddr, eaddr, ebits))
                        return true;
                } else if (!hfam) {
                    const char *d = e[0] == '.' ? e + 1 : e;
                    if (e[0] == '*' && e[1] == '.')
                        d = e + 2;
                    size_t dl = strlen(d);
                    if (dl > 0 && dl <= hlen && strcasecmp(host + hlen - dl, d) == 0 &&
                        (dl == hlen || host[hlen - dl - 1] == '.'))
                        return true;
                }
            }
        }
        p += n;
    }
    return false;
}
