/* AWS Signature Version 4 for header signing: canonical request, string to
 * sign, signing key and the Authorization header, with mbedTLS's SHA-256
 * and HMAC. Which headers a CodeGuru request signs is codeguru.c's choice;
 * this file signs exactly the headers it is given. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/md.h>

#include "uploader_int.h"

#define SIGV4_MAX ((size_t)1 << 20)   /* canonical request bound */
#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Tests: test/unit/uploader/test_sigv4.c */
void cgprof__sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char d[32];
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    if (!md || mbedtls_md(md, data, len, d) != 0)
        memset(d, 0, sizeof(d));
    to_hex(d, sizeof(d), out);
}

static int hmac(const void *key, size_t klen, const void *data, size_t dlen,
                unsigned char out[32])
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    if (!md || mbedtls_md_hmac(md, key, klen, data, dlen, out) != 0)
        return CGPROF_EINVAL;
    return 0;
}

/* Tests: test/unit/uploader/test_sigv4.c */
void cgprof__amz_date(uint64_t epoch_s, char out[17])
{
    time_t t = (time_t)epoch_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == '~';
}

/* Tests: test/unit/uploader/test_sigv4.c */
int cgprof__uri_encode(struct cgprof_buf *out, const char *s, size_t n, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int rc;
        if (unreserved(c) || (keep_slash && c == '/')) {
            rc = cgprof_buf_append(out, &s[i], 1);
        } else {
            char e[3] = { '%', hex[c >> 4], hex[c & 15] };
            rc = cgprof_buf_append(out, e, 3);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Percent-decodes s[0..n) into out (a malformed escape is kept as is). */
static int uri_decode(struct cgprof_buf *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%' && i + 2 < n && cgprof_hexval(s[i + 1]) >= 0 && cgprof_hexval(s[i + 2]) >= 0) {
            c = (char)(cgprof_hexval(s[i + 1]) * 16 + cgprof_hexval(s[i + 2]));
            i += 2;
        }
        int rc = cgprof_buf_append(out, &c, 1);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The canonical URI: with normalize, "." and empty segments go, ".." pops
 * one, and a trailing slash stays; then every byte but unreserved ones
 * and '/' is percent-encoded (so an already encoded path is encoded
 * again, as botocore does for every service but S3). */
static int canonical_path(struct cgprof_buf *out, const char *path, bool normalize)
{
    if (!path || !*path)
        return cgprof_buf_append(out, "/", 1);
    if (!normalize)
        return cgprof__uri_encode(out, path, strlen(path), true);
    size_t n = strlen(path);
    /* Segment stack as (offset, length) pairs into path. */
    size_t cap = n / 2 + 2, depth = 0;
    size_t *seg = cgprof_malloc(cap * 2 * sizeof(size_t));
    if (!seg)
        return CGPROF_ENOMEM;
    size_t i = 0;
    while (i < n) {
        while (i < n && path[i] == '/')
            i++;
        size_t start = i;
        while (i < n && path[i] != '/')
            i++;
        size_t len = i - start;
        if (len == 0 || (len == 1 && path[start] == '.'))
            continue;
        if (len == 2 && path[start] == '.' && path[start + 1] == '.') {
            if (depth > 0)
                depth--;
            continue;
        }
        if (depth < cap) {
            seg[2 * depth] = start;
            seg[2 * depth + 1] = len;
            depth++;
        }
    }
    int rc = 0;
    for (size_t k = 0; k < depth && rc == 0; k++) {
        rc = cgprof_buf_append(out, "/", 1);
        if (rc == 0)
            rc = cgprof__uri_encode(out, path + seg[2 * k], seg[2 * k + 1], false);
    }
    bool trailing = path[n - 1] == '/';
    if (rc == 0 && (depth == 0 || trailing))
        rc = cgprof_buf_append(out, "/", 1);
    cgprof_free(seg);
    return rc;
}

struct pair {
    char *key;      /* encoded */
    char *value;    /* encoded */
};

static int cmp_pair(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->value, y->value);
}

/* Decodes then re-encodes each name and value (so "%E1%88%B4" and a raw
 * UTF-8 name give the same text), and sorts by name, then value. */
static int canonical_query(struct cgprof_buf *out, const char *q)
{
    if (!q || !*q)
        return 0;
    size_t n = strlen(q), count = 1;
    for (size_t i = 0; i < n; i++)
        count += q[i] == '&';
    struct pair *pairs = cgprof_calloc(count, sizeof(*pairs));
    if (!pairs)
        return CGPROF_ENOMEM;
    size_t np = 0;
    int rc = 0;
    const char *p = q;
    while (rc == 0 && *p) {
        size_t len = strcspn(p, "&");
        if (len > 0) {
            const char *eq = memchr(p, '=', len);
            size_t klen = eq ? (size_t)(eq - p) : len;
            const char *v = eq ? eq + 1 : p + len;
            size_t vlen = eq ? len - klen - 1 : 0;
            struct cgprof_buf dk, dv, ek, ev;
            cgprof_buf_init(&dk, SIGV4_MAX);
            cgprof_buf_init(&dv, SIGV4_MAX);
            cgprof_buf_init(&ek, SIGV4_MAX);
            cgprof_buf_init(&ev, SIGV4_MAX);
            rc = uri_decode(&dk, p, klen);
            if (rc == 0)
                rc = uri_decode(&dv, v, vlen);
            if (rc == 0)
                rc = cgprof__uri_encode(&ek, dk.data ? dk.data : "", dk.len, false);
            if (rc == 0)
                rc = cgprof__uri_encode(&ev, dv.data ? dv.data : "", dv.len, false);
            if (rc == 0) {
                pairs[np].key = cgprof_strndup(ek.data ? ek.data : "", ek.len);
                pairs[np].value = cgprof_strndup(ev.data ? ev.data : "", ev.len);
                if (!pairs[np].key || !pairs[np].value)
                    rc = CGPROF_ENOMEM;
                np++;
            }
            cgprof_buf_cleanup(&dk);
            cgprof_buf_cleanup(&dv);
            cgprof_buf_cleanup(&ek);
            cgprof_buf_cleanup(&ev);
        }
        p += len;
        if (*p == '&')
            p++;
    }
    if (rc == 0) {
        qsort(pairs, np, sizeof(*pairs), cmp_pair);
        for (size_t i = 0; i < np && rc == 0; i++)
            rc = cgprof_buf_printf(out, "%s%s=%s", i ? "&" : "", pairs[i].key, pairs[i].value);
    }
    for (size_t i = 0; i < np; i++) {
        cgprof_free(pairs[i].key);
        cgprof_free(pairs[i].value);
    }
    cgprof_free(pairs);
    return rc;
}

struct hdr {
    char *name;             /* lower case */
    struct cgprof_buf value; /* trimmed, runs of white space collapsed, joined */
    size_t order;
};

static int cmp_hdr(const void *a, const void *b)
{
    const struct hdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

static bool space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Appends v trimmed, with every run of white space (folded lines
 * included) turned into one space. */
static int append_trimmed(struct cgprof_buf *b, const char *v)
{
    while (*v && space(*v))
        v++;
    bool pending = false;
    for (; *v; v++) {
        if (space(*v)) {
            pending = true;
            continue;
        }
        int rc = pending ? cgprof_buf_append(b, " ", 1) : 0;
        pending = false;
        if (rc == 0)
            rc = cgprof_buf_append(b, v, 1);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Canonical headers ("name:value\n" sorted, duplicates joined with ',')
 * into out, and the signed-header list into signed_out. */
static int canonical_headers(struct cgprof_buf *out, struct cgprof_buf *signed_out,
                             const struct cgprof__http_header *h, size_t n)
{
    if (n == 0)
        return CGPROF_EINVAL;
    struct hdr *hs = cgprof_calloc(n, sizeof(*hs));
    if (!hs)
        return CGPROF_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!h[i].name || !h[i].value || !h[i].name[0]) {
            rc = CGPROF_EINVAL;
            break;
        }
        hs[i].name = cgprof_strdup(h[i].name);
        cgprof_buf_init(&hs[i].value, SIGV4_MAX);
        hs[i].order = i;
        if (!hs[i].name) {
            rc = CGPROF_ENOMEM;
            break;
        }
        for (char *c = hs[i].name; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        rc = append_trimmed(&hs[i].value, h[i].value);
    }
    if (rc == 0) {
        qsort(hs, n, sizeof(*hs), cmp_hdr);
        for (size_t i = 0; i < n && rc == 0; i++) {
            bool first = i == 0 || strcmp(hs[i - 1].name, hs[i].name) != 0;
            bool last = i + 1 == n || strcmp(hs[i + 1].name, hs[i].name) != 0;
            const char *v = hs[i].value.data ? hs[i].value.data : "";
            if (first) {
                rc = cgprof_buf_printf(out, "%s:%s", hs[i].name, v);
                if (rc == 0)
                    rc = cgprof_buf_printf(signed_out, "%s%s", signed_out->len ? ";" : "",
                                           hs[i].name);
            } else {
                rc = cgprof_buf_printf(out, ",%s", v);
            }
            if (rc == 0 && last)
                rc = cgprof_buf_append(out, "\n", 1);
        }
    }
    for (size_t i = 0; i < n; i++) {
        cgprof_free(hs[i].name);
        cgprof_buf_cleanup(&hs[i].value);
    }
    cgprof_free(hs);
    return rc;
}

/* Tests: test/unit/uploader/test_sigv4.c, test/integration/sigv4_botocore.sh */
int cgprof__sigv4_sign(const struct cgprof__sigv4_request *rq, const char *region,
                       const char *service, const char *amz_date,
                       const struct cgprof__aws_creds *creds, char signature[65],
                       struct cgprof_buf *authorization, struct cgprof_buf *canonical,
                       struct cgprof_buf *string_to_sign)
{
    if (!rq || !rq->method || !region || !service || !amz_date || strlen(amz_date) != 16 ||
        !creds || !creds->access_key_id[0] || !creds->secret_access_key[0] ||
        !rq->payload_hash || strlen(rq->payload_hash) != 64)
        return CGPROF_EINVAL;
    struct cgprof_buf cr, hdrs, signed_list, sts;
    cgprof_buf_init(&cr, SIGV4_MAX);
    cgprof_buf_init(&hdrs, SIGV4_MAX);
    cgprof_buf_init(&signed_list, 64 << 10);
    cgprof_buf_init(&sts, 4096);
    char date[9];
    memcpy(date, amz_date, 8);
    date[8] = '\0';
    int rc = canonical_headers(&hdrs, &signed_list, rq->headers, rq->nheaders);
    if (rc == 0)
        rc = cgprof_buf_printf(&cr, "%s\n", rq->method);
    if (rc == 0)
        rc = canonical_path(&cr, rq->path, rq->normalize_path);
    if (rc == 0)
        rc = cgprof_buf_append(&cr, "\n", 1);
    if (rc == 0)
        rc = canonical_query(&cr, rq->query);
    if (rc == 0)
        rc = cgprof_buf_printf(&cr, "\n%s\n%s\n%s", hdrs.data, signed_list.data,
                               rq->payload_hash);
    char cr_hash[65];
    if (rc == 0) {
        cgprof__sha256_hex(cr.data, cr.len, cr_hash);
        rc = cgprof_buf_printf(&sts, SIGV4_ALGORITHM "\n%s\n%s/%s/%s/aws4_request\n%s",
                               amz_date, date, region, service, cr_hash);
    }
    unsigned char k[32];
    if (rc == 0) {
        char secret[CGPROF__AWS_KEY_MAX + 8];
        int w = snprintf(secret, sizeof(secret), "AWS4%s", creds->secret_access_key);
        rc = (w > 0 && (size_t)w < sizeof(secret)) ? 0 : CGPROF_EINVAL;
        if (rc == 0)
            rc = hmac(secret, (size_t)w, date, 8, k);
        memset(secret, 0, sizeof(secret));
    }
    if (rc == 0)
        rc = hmac(k, 32, region, strlen(region), k);
    if (rc == 0)
        rc = hmac(k, 32, service, strlen(service), k);
    if (rc == 0)
        rc = hmac(k, 32, "aws4_request", 12, k);
    unsigned char sig[32];
    if (rc == 0)
        rc = hmac(k, 32, sts.data, sts.len, sig);
    memset(k, 0, sizeof(k));
    if (rc == 0) {
        to_hex(sig, 32, signature);
        if (authorization)
            rc = cgprof_buf_printf(authorization,
                                   SIGV4_ALGORITHM " Credential=%s/%s/%s/%s/aws4_request, "
                                   "SignedHeaders=%s, Signature=%s",
                                   creds->access_key_id, date, region, service,
                                   signed_list.data, signature);
    }
    if (rc == 0 && canonical)
        rc = cgprof_buf_append(canonical, cr.data, cr.len);
    if (rc == 0 && string_to_sign)
        rc = cgprof_buf_append(string_to_sign, sts.data, sts.len);
    cgprof_buf_cleanup(&cr);
    cgprof_buf_cleanup(&hdrs);
    cgprof_buf_cleanup(&signed_list);
    cgprof_buf_cleanup(&sts);
    return rc;
}
