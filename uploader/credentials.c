/* AWS credentials the way the SDKs find them: environment, web identity
 * (STS AssumeRoleWithWebIdentity), the shared credentials and config files,
 * container credentials (ECS, EKS Pod Identity) and EC2 IMDSv2; cached and
 * refreshed a few minutes before they expire. Secrets never reach a log
 * line. Signing is sigv4.c's job, the HTTP client http.c's. */
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "uploader_int.h"

#define FILE_MAX ((size_t)1 << 20)
#define META_BODY_MAX ((size_t)64 << 10)
#define IMDS_DEFAULT "http://169.254.169.254"
#define ECS_DEFAULT "http://169.254.170.2"
#define STS_VERSION "2011-06-15"

struct cgprof__creds_chain {
    struct cgprof__creds_options o;
    char credential_path[1024];
    char credential_profile[256];
    char region[64];
    char ca_bundle[1024];
    struct cgprof__aws_creds cur;
    bool have;
    const char *source;
    struct cgprof__http_client *meta;   /* link-local services, plain http */
    struct cgprof__http_client *sts;    /* https */
    char imds_token[128];
    bool warned_none;
};

const char *cgprof__libc_getenv(const char *key)
{
    return getenv(key);
}

static const char *env(const struct cgprof__creds_chain *c, const char *k)
{
    const char *v = c->o.getenv_fn ? c->o.getenv_fn(k) : getenv(k);
    return v && *v ? v : NULL;
}

static uint64_t now_ms(const struct cgprof__creds_chain *c)
{
    return c->o.now_ms ? c->o.now_ms() : cgprof_epoch_ms();
}

static void wipe(struct cgprof__aws_creds *k)
{
    volatile char *p = (volatile char *)k;
    for (size_t i = 0; i < sizeof(*k); i++)
        p[i] = 0;
}

static bool copy_field(char *dst, size_t n, const char *src, size_t len)
{
    if (len >= n)
        return false;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return true;
}

/* Tests: test/unit/uploader/test_credentials.c */
int cgprof__parse_iso8601(const char *s, uint64_t *ms)
{
    if (!s)
        return CGPROF_EPARSE;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int used = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6 || used != 19)
        return CGPROF_EPARSE;
    const char *p = s + used;
    unsigned frac_ms = 0;
    if (*p == '.') {
        unsigned digits = 0;
        for (p++; isdigit((unsigned char)*p); p++, digits++)
            if (digits < 3)
                frac_ms = frac_ms * 10 + (unsigned)(*p - '0');
        if (digits == 0)
            return CGPROF_EPARSE;
        for (; digits < 3; digits++)
            frac_ms *= 10;
    }
    long offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh, mm, n = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &n) != 2 || n != 5)
            return CGPROF_EPARSE;
        offset_s = (hh * 3600L + mm * 60L) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return CGPROF_EPARSE;
    }
    if (*p != '\0' || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return CGPROF_EPARSE;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || t - offset_s < 0)
        return CGPROF_EPARSE;
    *ms = (uint64_t)(t - offset_s) * 1000u + frac_ms;
    return 0;
}

/* ---- shared credentials and config files -------------------------------- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* Is the section header text (between the brackets, trimmed) the one for
 * profile? The config file spells profiles "profile NAME", except
 * "default", which may be either. */
static bool section_matches(const char *sec, const char *profile, bool config_style)
{
    if (!config_style)
        return strcmp(sec, profile) == 0;
    if (strncmp(sec, "profile", 7) == 0 && (sec[7] == ' ' || sec[7] == '\t')) {
        const char *name = sec + 8;
        while (*name == ' ' || *name == '\t')
            name++;
        return strcmp(name, profile) == 0;
    }
    return strcmp(profile, "default") == 0 && strcmp(sec, "default") == 0;
}

/* Tests: test/unit/uploader/test_credentials.c */
int cgprof__creds_parse_ini(const char *text, const char *profile, bool config_style,
                            struct cgprof__aws_creds *out)
{
    char *copy = cgprof_strdup(text ? text : "");
    if (!copy)
        return CGPROF_ENOMEM;
    struct cgprof__aws_creds k;
    memset(&k, 0, sizeof(k));
    bool in = false, found = false, nested = false;
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        bool indented = *line == ' ' || *line == '\t';
        char *t = trim(line);
        if (!*t || *t == '#' || *t == ';')
            continue;
        if (*t == '[') {
            char *end = strrchr(t, ']');
            in = false;
            nested = false;
            if (end) {
                *end = '\0';
                in = section_matches(trim(t + 1), profile, config_style);
                found |= in;
            }
            continue;
        }
        /* Indented lines under a key with an empty value ("s3 =") are
         * that key's sub-settings, not the profile's. */
        if (!in || (indented && nested))
            continue;
        char *eq = strchr(t, '=');
        if (!eq)
            continue;
        *eq = '\0';
        char *key = trim(t), *val = trim(eq + 1);
        nested = !*val;
        for (char *c = key; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        if (strcmp(key, "aws_access_key_id") == 0)
            copy_field(k.access_key_id, sizeof(k.access_key_id), val, strlen(val));
        else if (strcmp(key, "aws_secret_access_key") == 0)
            copy_field(k.secret_access_key, sizeof(k.secret_access_key), val, strlen(val));
        else if (strcmp(key, "aws_session_token") == 0 ||
                 (strcmp(key, "aws_security_token") == 0 && !k.session_token[0]))
            copy_field(k.session_token, sizeof(k.session_token), val, strlen(val));
    }
    memset(copy, 0, strlen(text ? text : ""));
    cgprof_free(copy);
    int rc = found && k.access_key_id[0] && k.secret_access_key[0] ? 0 : CGPROF_ENOTFOUND;
    if (rc == 0)
        *out = k;
    wipe(&k);
    return rc;
}

static void home_path(const struct cgprof__creds_chain *c, const char *rel, char *out, size_t n)
{
    const char *home = env(c, "HOME");
    char buf[1024];
    if (!home) {
        struct passwd pw, *res = NULL;
        if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res)
            home = res->pw_dir;
    }
    snprintf(out, n, "%s/%s", home ? home : "", rel);
}

/* "~/" at the start of a path names the home directory, as in the SDKs. */
static void expand_path(const struct cgprof__creds_chain *c, const char *p, char *out, size_t n)
{
    if (p[0] == '~' && p[1] == '/')
        home_path(c, p + 2, out, n);
    else
        snprintf(out, n, "%s", p);
}

static int from_file(struct cgprof__creds_chain *c, const char *path, const char *profile,
                     bool config_style, struct cgprof__aws_creds *out)
{
    char *text = NULL;
    size_t len = 0;
    int rc = cgprof_read_file(path, FILE_MAX, &text, &len);
    if (rc != 0)
        return rc == -ENOENT ? CGPROF_ENOTFOUND : rc;
    rc = cgprof__creds_parse_ini(text, profile, config_style, out);
    memset(text, 0, len);
    cgprof_free(text);
    (void)c;
    return rc;
}

static int provider_files(struct cgprof__creds_chain *c, struct cgprof__aws_creds *out)
{
    const char *profile = c->credential_profile[0] ? c->credential_profile : env(c, "AWS_PROFILE");
    if (!profile)
        profile = "default";
    char path[1024];
    if (c->credential_path[0])
        snprintf(path, sizeof(path), "%s", c->credential_path);
    else if (env(c, "AWS_SHARED_CREDENTIALS_FILE"))
        expand_path(c, env(c, "AWS_SHARED_CREDENTIALS_FILE"), path, sizeof(path));
    else
        home_path(c, ".aws/credentials", path, sizeof(path));
    int rc = from_file(c, path, profile, false, out);
    if (rc == 0) {
        c->source = c->credential_path[0] ? "credentialPath file" : "shared credentials file";
        return 0;
    }
    if (c->credential_path[0] && rc != CGPROF_ENOTFOUND)
        cgprof_warn("cannot read credentialPath %s: %s", path, cgprof_strerror(rc));
    if (env(c, "AWS_CONFIG_FILE"))
        expand_path(c, env(c, "AWS_CONFIG_FILE"), path, sizeof(path));
    else
        home_path(c, ".aws/config", path, sizeof(path));
    rc = from_file(c, path, profile, true, out);
    if (rc == 0)
        c->source = "shared config file";
    return rc;
}

/* ---- environment --------------------------------------------------------- */

static int provider_env(struct cgprof__creds_chain *c, struct cgprof__aws_creds *out)
{
    const char *id = env(c, "AWS_ACCESS_KEY_ID"), *secret = env(c, "AWS_SECRET_ACCESS_KEY");
    if (!id && !secret)
        return CGPROF_ENOTFOUND;
    if (!id || !secret) {
        cgprof_warn("%s is set but %s is not; ignoring the environment's credentials",
                    id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                    id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        return CGPROF_ENOTFOUND;
    }
    const char *tok = env(c, "AWS_SESSION_TOKEN");
    if (!tok)
        tok = env(c, "AWS_SECURITY_TOKEN");
    memset(out, 0, sizeof(*out));
    if (!copy_field(out->access_key_id, sizeof(out->access_key_id), id, strlen(id)) ||
        !copy_field(out->secret_access_key, sizeof(out->secret_access_key), secret,
                    strlen(secret)) ||
        (tok && !copy_field(out->session_token, sizeof(out->session_token), tok, strlen(tok)))) {
        cgprof_warn("AWS credentials in the environment are too long; ignored");
        wipe(out);
        return CGPROF_ENOTFOUND;
    }
    const char *exp = env(c, "AWS_CREDENTIAL_EXPIRATION");
    if (exp && cgprof__parse_iso8601(exp, &out->expiration_ms) != 0)
        out->expiration_ms = 0;
    c->source = "environment";
    return 0;
}

/* ---- JSON documents (container, IMDS) ----------------------------------- */

static bool json_field(json_t *o, const char *key, char *dst, size_t n)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v && copy_field(dst, n, v, strlen(v));
}

/* Tests: test/unit/uploader/test_credentials.c */
int cgprof__creds_parse_json(const char *text, size_t len, struct cgprof__aws_creds *out)
{
    json_t *j = json_loadb(text, len, 0, NULL);
    if (!j)
        return CGPROF_EPARSE;
    struct cgprof__aws_creds k;
    memset(&k, 0, sizeof(k));
    int rc = CGPROF_EPARSE;
    const char *code = json_string_value(json_object_get(j, "Code"));
    if ((!code || strcmp(code, "Success") == 0) && json_is_object(j) &&
        json_field(j, "AccessKeyId", k.access_key_id, sizeof(k.access_key_id)) &&
        json_field(j, "SecretAccessKey", k.secret_access_key, sizeof(k.secret_access_key))) {
        json_field(j, "Token", k.session_token, sizeof(k.session_token));
        const char *exp = json_string_value(json_object_get(j, "Expiration"));
        rc = 0;
        if (exp && cgprof__parse_iso8601(exp, &k.expiration_ms) != 0)
            rc = CGPROF_EPARSE;
    }
    json_decref(j);
    if (rc == 0)
        *out = k;
    wipe(&k);
    return rc;
}

/* ---- STS XML -------------------------------------------------------------- */

/* Copies the text of the first <tag>...</tag> inside s[0..len) into dst,
 * decoding the five XML entities and numeric references. */
static bool xml_text(const char *s, size_t len, const char *tag, char *dst, size_t n)
{
    char open[64], close[64];
    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    const char *a = memmem(s, len, open, strlen(open));
    if (!a)
        return false;
    a += strlen(open);
    const char *b = memmem(a, len - (size_t)(a - s), close, strlen(close));
    if (!b)
        return false;
    size_t j = 0;
    for (const char *p = a; p < b; p++) {
        char ch = *p;
        if (ch == '&') {
            static const struct { const char *name; char c; } ents[] = {
                { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
                { "&quot;", '"' }, { "&apos;", '\'' },
            };
            bool done = false;
            for (size_t e = 0; e < CGPROF_ARRAY_SIZE(ents) && !done; e++) {
                size_t el = strlen(ents[e].name);
                if ((size_t)(b - p) >= el && memcmp(p, ents[e].name, el) == 0) {
                    ch = ents[e].c;
                    p += el - 1;
                    done = true;
                }
            }
            if (!done && p + 2 < b && p[1] == '#') {
                const char *semi = memchr(p, ';', (size_t)(b - p));
                char *end = NULL;
                long v = semi ? (p[2] == 'x' ? strtol(p + 3, &end, 16) : strtol(p + 2, &end, 10))
                              : -1;
                if (semi && end == semi && v > 0 && v < 128) {
                    ch = (char)v;
                    p = semi;
                    done = true;
                }
            }
            if (!done)
                return false;
        }
        if (j + 1 >= n)
            return false;
        dst[j++] = ch;
    }
    dst[j] = '\0';
    return true;
}

/* Tests: test/unit/uploader/test_credentials.c */
int cgprof__creds_parse_sts_xml(const char *text, size_t len, struct cgprof__aws_creds *out)
{
    const char *cr = memmem(text, len, "<Credentials>", 13);
    if (!cr)
        return CGPROF_EPARSE;
    size_t rest = len - (size_t)(cr - text);
    struct cgprof__aws_creds k;
    memset(&k, 0, sizeof(k));
    char exp[64];
    int rc = CGPROF_EPARSE;
    if (xml_text(cr, rest, "AccessKeyId", k.access_key_id, sizeof(k.access_key_id)) &&
        xml_text(cr, rest, "SecretAccessKey", k.secret_access_key, sizeof(k.secret_access_key)) &&
        xml_text(cr, rest, "SessionToken", k.session_token, sizeof(k.session_token)) &&
        k.access_key_id[0] && k.secret_access_key[0] &&
        xml_text(cr, rest, "Expiration", exp, sizeof(exp)) &&
        cgprof__parse_iso8601(exp, &k.expiration_ms) == 0)
        rc = 0;
    if (rc == 0)
        *out = k;
    wipe(&k);
    return rc;
}

/* ---- HTTP helpers -------------------------------------------------------- */

/* Tests: test/unit/uploader/test_credentials.c */
struct cgprof__http_client *cgprof__metadata_client_new(void)
{
    struct cgprof__http_options o = {
        .connect_timeout_ms = 1000,
        .io_timeout_ms = 2000,
        .max_body = META_BODY_MAX,
        .use_proxy_env = false,
        .total_timeout_ms = 3000,
    };
    return cgprof__http_client_new(&o);
}

static int http_simple(struct cgprof__http_client *http, const char *method, const char *url_s,
                       const struct cgprof__http_header *h, size_t nh, const void *body,
                       size_t blen, struct cgprof_buf *out, int *status)
{
    struct cgprof__url u;
    if (cgprof__url_parse(url_s, &u) != 0)
        return CGPROF_EINVAL;
    struct cgprof__http_request rq = {
        .method = method, .url = &u, .target = u.path, .headers = h, .nheaders = nh,
        .body = body, .body_len = blen,
    };
    struct cgprof__http_response rs;
    int rc = cgprof__http_do(http, &rq, &rs);
    if (rc != 0)
        return rc;
    *status = rs.status;
    rc = cgprof_buf_append(out, rs.body.data ? rs.body.data : "", rs.body.len);
    if (rs.body.data)
        memset(rs.body.data, 0, rs.body.len);
    cgprof__http_response_cleanup(&rs);
    return rc;
}

/* Tests: test/unit/uploader/test_credentials.c */
const char *cgprof__imds_base(cgprof__getenv_fn get)
{
    cgprof__getenv_fn g = get ? get : cgprof__libc_getenv;
    const char *dis = g("AWS_EC2_METADATA_DISABLED");
    if (dis && strcasecmp(dis, "true") == 0)
        return NULL;
    const char *ep = g("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    return ep && *ep ? ep : IMDS_DEFAULT;
}

/* Tests: test/unit/uploader/test_credentials.c, test_fleet.c */
int cgprof__imds_get(struct cgprof__http_client *http, const char *base, const char *path,
                     char *token, size_t tok_n, struct cgprof_buf *out)
{
    char url[1200];
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    int status = 0, rc;
    if (!token[0]) {
        struct cgprof_buf t;
        cgprof_buf_init(&t, 4096);
        struct cgprof__http_header th[] = { { "X-aws-ec2-metadata-token-ttl-seconds", "21600" } };
        snprintf(url, sizeof(url), "%.*s/latest/api/token", (int)bl, base);
        rc = http_simple(http, "PUT", url, th, 1, "", 0, &t, &status);
        if (rc == 0 && status == 200 && t.len > 0 && t.len < tok_n &&
            !memchr(t.data, '\n', t.len) && !memchr(t.data, '\r', t.len))
            memcpy(token, t.data, t.len + 1);
        else if (rc == 0 && (status == 404 || status == 405))
            token[0] = '\0';    /* no IMDSv2 here: IMDSv1, as the SDKs fall back */
        else
            rc = rc ? rc : CGPROF_EHTTP;
        if (t.data)
            memset(t.data, 0, t.len);
        cgprof_buf_cleanup(&t);
        if (rc != 0)
            return rc;
    }
    struct cgprof__http_header gh[] = { { "X-aws-ec2-metadata-token", token } };
    snprintf(url, sizeof(url), "%.*s%s", (int)bl, base, path);
    rc = http_simple(http, "GET", url, gh, token[0] ? 1 : 0, NULL, 0, out, &status);
    if (rc == 0 && status == 401)
        token[0] = '\0';        /* expired token: fetched again next time */
    if (rc == 0 && status != 200)
        rc = CGPROF_EHTTP;
    return rc;
}

/* ---- container credentials ----------------------------------------------- */

/* botocore accepts a full URI only over https or to a loopback or the
 * ECS/EKS link-local addresses, so a token is never sent elsewhere. */
static bool container_host_allowed(const struct cgprof__url *u)
{
    if (u->tls)
        return true;
    static const char *const ok[] = { "localhost", "169.254.170.2", "169.254.170.23",
                                      "fd00:ec2::23", "::1" };
    for (size_t i = 0; i < CGPROF_ARRAY_SIZE(ok); i++)
        if (strcmp(u->host, ok[i]) == 0)
            return true;
    return strncmp(u->host, "127.", 4) == 0;
}

static int provider_container(struct cgprof__creds_chain *c, struct cgprof__aws_creds *out)
{
    const char *rel = env(c, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = env(c, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (!rel && !full)
        return CGPROF_ENOTFOUND;
    char url[2048];
    if (rel) {
        const char *base = env(c, "CGPROF_CONTAINER_CREDENTIALS_BASE");   /* tests */
        snprintf(url, sizeof(url), "%s%s", base ? base : ECS_DEFAULT, rel);
    } else {
        snprintf(url, sizeof(url), "%s", full);
        struct cgprof__url u;
        if (cgprof__url_parse(url, &u) != 0 || !container_host_allowed(&u)) {
            cgprof_warn("AWS_CONTAINER_CREDENTIALS_FULL_URI must be https or a loopback/"
                        "container-agent address; not using it");
            return CGPROF_EAUTH;
        }
    }
    char tokbuf[4096] = "";
    const char *tok_file = env(c, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    if (tok_file) {
        char *t = NULL;
        size_t tl = 0;
        int rc = cgprof_read_file(tok_file, sizeof(tokbuf) - 1, &t, &tl);
        if (rc != 0) {
            cgprof_warn("cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s: %s", tok_file,
                        cgprof_strerror(rc));
            return CGPROF_EAUTH;
        }
        memcpy(tokbuf, t, tl + 1);
        memset(t, 0, tl);
        cgprof_free(t);
    } else if (env(c, "AWS_CONTAINER_AUTHORIZATION_TOKEN")) {
        snprintf(tokbuf, sizeof(tokbuf), "%s", env(c, "AWS_CONTAINER_AUTHORIZATION_TOKEN"));
    }
    size_t tl = strlen(tokbuf);
    while (tl > 0 && (tokbuf[tl - 1] == '\n' || tokbuf[tl - 1] == '\r' || tokbuf[tl - 1] == ' '))
        tokbuf[--tl] = '\0';
    if (strpbrk(tokbuf, "\r\n")) {
        cgprof_warn("the container authorization token has a line break; not using it");
        return CGPROF_EAUTH;
    }
    struct cgprof__http_header h[] = { { "Authorization", tokbuf }, { "Accept", "application/json" } };
    struct cgprof_buf body;
    cgprof_buf_init(&body, META_BODY_MAX);
    int status = 0, rc = CGPROF_ENOMEM;
    /* Two attempts, like botocore's container provider. */
    for (int attempt = 0; attempt < 2; attempt++) {
        cgprof_buf_reset(&body);
        rc = c->meta ? http_simple(c->meta, "GET", url, tokbuf[0] ? h : h + 1, tokbuf[0] ? 2 : 1,
                                   NULL, 0, &body, &status) : CGPROF_ENOMEM;
        if (rc == 0 && status == 200)
            break;
        if (rc == 0)
            rc = CGPROF_EHTTP;
    }
    memset(tokbuf, 0, sizeof(tokbuf));
    if (rc == 0)
        rc = cgprof__creds_parse_json(body.data, body.len, out);
    if (body.data)
        memset(body.data, 0, body.len);
    cgprof_buf_cleanup(&body);
    if (rc != 0) {
        cgprof_warn("container credentials endpoint failed (%s%s%d)", cgprof_strerror(rc),
                    status ? ", HTTP " : "", status);
        return CGPROF_EAUTH;
    }
    c->source = "container credentials";
    return 0;
}

/* ---- EC2 instance role (IMDSv2) ------------------------------------------ */

static int provider_imds(struct cgprof__creds_chain *c, struct cgprof__aws_creds *out)
{
    const char *base = cgprof__imds_base(c->o.getenv_fn);
    if (!base || !c->meta)
        return CGPROF_ENOTFOUND;
    struct cgprof_buf b;
    cgprof_buf_init(&b, META_BODY_MAX);
    const char *dir = "/latest/meta-data/iam/security-credentials/";
    int rc = cgprof__imds_get(c->meta, base, dir, c->imds_token, sizeof(c->imds_token), &b);
    char role[256] = "";
    if (rc == 0) {
        size_t l = strcspn(b.data ? b.data : "", "\r\n");
        if (l == 0 || l >= sizeof(role))
            rc = CGPROF_ENOTFOUND;
        else
            memcpy(role, b.data, l), role[l] = '\0';
    }
    if (rc == 0) {
        char path[512];
        snprintf(path, sizeof(path), "%s%s", dir, role);
        cgprof_buf_reset(&b);
        rc = cgprof__imds_get(c->meta, base, path, c->imds_token, sizeof(c->imds_token), &b);
        if (rc == 0)
            rc = cgprof__creds_parse_json(b.data, b.len, out);
    }
    if (b.data)
        memset(b.data, 0, b.len);
    cgprof_buf_cleanup(&b);
    if (rc != 0)
        return CGPROF_ENOTFOUND;
    c->source = "EC2 instance metadata";
    return 0;
}

/* ---- web identity -------------------------------------------------------- */

static int sts_endpoint(struct cgprof__creds_chain *c, char *out, size_t n)
{
    const char *e = env(c, "AWS_ENDPOINT_URL_STS");
    if (!e)
        e = env(c, "AWS_ENDPOINT_URL");
    if (e) {
        snprintf(out, n, "%s", e);
        return 0;
    }
    const char *region = c->region[0] ? c->region : env(c, "AWS_REGION");
    if (!region)
        region = env(c, "AWS_DEFAULT_REGION");
    if (!region)
        region = "us-east-1";
    snprintf(out, n, "https://sts.%s.amazonaws.com%s", region,
             strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
    return 0;
}

static int provider_web_identity(struct cgprof__creds_chain *c, struct cgprof__aws_creds *out)
{
    const char *tok_file = env(c, "AWS_WEB_IDENTITY_TOKEN_FILE");
    const char *role = env(c, "AWS_ROLE_ARN");
    if (!tok_file || !role)
        return CGPROF_ENOTFOUND;
    char session[128];
    const char *sn = env(c, "AWS_ROLE_SESSION_NAME");
    if (sn)
        snprintf(session, sizeof(session), "%s", sn);
    else
        snprintf(session, sizeof(session), "cgprof-session-%llu",
                 (unsigned long long)(now_ms(c) / 1000));
    char *tok = NULL;
    size_t tl = 0;
    int rc = cgprof_read_file(tok_file, 64 << 10, &tok, &tl);
    if (rc != 0) {
        cgprof_warn("cannot read AWS_WEB_IDENTITY_TOKEN_FILE %s: %s", tok_file,
                    cgprof_strerror(rc));
        return CGPROF_EAUTH;
    }
    while (tl > 0 && (tok[tl - 1] == '\n' || tok[tl - 1] == '\r' || tok[tl - 1] == ' '))
        tok[--tl] = '\0';
    struct cgprof_buf form;
    cgprof_buf_init(&form, 128 << 10);
    rc = cgprof_buf_appends(&form, "Action=AssumeRoleWithWebIdentity&Version=" STS_VERSION
                                   "&RoleArn=");
    if (rc == 0)
        rc = cgprof__uri_encode(&form, role, strlen(role), false);
    if (rc == 0)
        rc = cgprof_buf_appends(&form, "&RoleSessionName=");
    if (rc == 0)
        rc = cgprof__uri_encode(&form, session, strlen(session), false);
    if (rc == 0)
        rc = cgprof_buf_appends(&form, "&WebIdentityToken=");
    if (rc == 0)
        rc = cgprof__uri_encode(&form, tok, tl, false);
    memset(tok, 0, tl);
    cgprof_free(tok);
    char url[1100];
    sts_endpoint(c, url, sizeof(url));
    if (rc == 0 && !c->sts) {
        struct cgprof__http_options o = {
            .ca_bundle = c->ca_bundle[0] ? c->ca_bundle : NULL,
            .connect_timeout_ms = 5000, .io_timeout_ms = 10000, .max_body = 256 << 10,
            .use_proxy_env = true, .total_timeout_ms = 20000,
        };
        c->sts = cgprof__http_client_new(&o);
        if (!c->sts)
            rc = CGPROF_ENOMEM;
    }
    struct cgprof_buf body;
    cgprof_buf_init(&body, 256 << 10);
    int status = 0;
    struct cgprof__http_header h[] = {
        { "Content-Type", "application/x-www-form-urlencoded; charset=utf-8" },
        { "User-Agent", CGPROF__USER_AGENT },
    };
    if (rc == 0)
        rc = http_simple(c->sts, "POST", url, h, 2, form.data, form.len, &body, &status);
    if (form.data)
        memset(form.data, 0, form.len);
    cgprof_buf_cleanup(&form);
    if (rc == 0 && status != 200) {
        char code[128] = "", msg[256] = "";
        if (body.data) {
            xml_text(body.data, body.len, "Code", code, sizeof(code));
            xml_text(body.data, body.len, "Message", msg, sizeof(msg));
        }
        cgprof_warn("STS AssumeRoleWithWebIdentity for %s failed: HTTP %d %s%s%s", role, status,
                    code, msg[0] ? ": " : "", msg);
        rc = CGPROF_EAUTH;
    } else if (rc == 0) {
        rc = cgprof__creds_parse_sts_xml(body.data, body.len, out);
        if (rc != 0)
            cgprof_warn("STS AssumeRoleWithWebIdentity: unexpected response");
    } else {
        cgprof_warn("STS AssumeRoleWithWebIdentity at %s failed: %s", url, cgprof_strerror(rc));
    }
    if (body.data)
        memset(body.data, 0, body.len);
    cgprof_buf_cleanup(&body);
    if (rc != 0)
        return CGPROF_EAUTH;
    c->source = "web identity (STS)";
    return 0;
}

/* ---- the chain ------------------------------------------------------------ */

/* Tests: test/unit/uploader/test_credentials.c */
struct cgprof__creds_chain *cgprof__creds_new(const struct cgprof__creds_options *o)
{
    struct cgprof__creds_chain *c = cgprof_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->o = *o;
    snprintf(c->credential_path, sizeof(c->credential_path), "%s",
             o->credential_path ? o->credential_path : "");
    snprintf(c->credential_profile, sizeof(c->credential_profile), "%s",
             o->credential_profile ? o->credential_profile : "");
    snprintf(c->region, sizeof(c->region), "%s", o->region ? o->region : "");
    snprintf(c->ca_bundle, sizeof(c->ca_bundle), "%s", o->ca_bundle ? o->ca_bundle : "");
    c->o.credential_path = c->o.credential_profile = c->o.region = c->o.ca_bundle = NULL;
    c->meta = cgprof__metadata_client_new();
    c->source = "none";
    return c;
}

void cgprof__creds_free(struct cgprof__creds_chain *c)
{
    if (!c)
        return;
    if (c->meta)
        cgprof__http_client_free(c->meta);
    if (c->sts)
        cgprof__http_client_free(c->sts);
    wipe(&c->cur);
    cgprof_free(c);
}

/* Walks the providers in the SDKs' order. A provider that is configured
 * but fails (web identity, container) ends the walk, as in botocore, so a
 * broken role setup is not silently replaced by other credentials. */
static int resolve(struct cgprof__creds_chain *c, struct cgprof__aws_creds *out)
{
    bool explicit_profile = c->credential_profile[0] || c->credential_path[0];
    int rc;
    if (!explicit_profile && (rc = provider_env(c, out)) != CGPROF_ENOTFOUND)
        return rc;
    if ((rc = provider_web_identity(c, out)) != CGPROF_ENOTFOUND)
        return rc;
    if ((rc = provider_files(c, out)) == 0)
        return 0;
    if ((rc = provider_container(c, out)) != CGPROF_ENOTFOUND)
        return rc;
    if ((rc = provider_imds(c, out)) == 0)
        return 0;
    return CGPROF_EAUTH;
}

/* Tests: test/unit/uploader/test_credentials.c */
int cgprof__creds_get(struct cgprof__creds_chain *c, struct cgprof__aws_creds *out)
{
    uint64_t now = now_ms(c);
    bool fresh = c->have && (c->cur.expiration_ms == 0 ||
                             c->cur.expiration_ms > now + CGPROF__CREDS_REFRESH_MS);
    if (!fresh) {
        struct cgprof__aws_creds k;
        memset(&k, 0, sizeof(k));
        const char *prev = c->source;
        int rc = resolve(c, &k);
        if (rc == 0) {
            if (!c->have || prev != c->source)
                cgprof_info("using AWS credentials from the %s", c->source);
            c->cur = k;
            c->have = true;
            c->warned_none = false;
        } else if (c->have && c->cur.expiration_ms > now) {
            cgprof_debug("credential refresh failed; the current ones are valid for %llu s",
                         (unsigned long long)((c->cur.expiration_ms - now) / 1000));
        } else {
            c->have = false;
            c->source = "none";
            if (!c->warned_none)
                cgprof_warn("no AWS credentials found (environment, web identity, "
                            "shared files, container, EC2 instance role)");
            c->warned_none = true;
        }
        wipe(&k);
    }
    if (!c->have)
        return CGPROF_EAUTH;
    *out = c->cur;
    return 0;
}

void cgprof__creds_invalidate(struct cgprof__creds_chain *c)
{
    if (!c)
        return;
    c->have = false;
    c->imds_token[0] = '\0';
    wipe(&c->cur);
}

const char *cgprof__creds_source(const struct cgprof__creds_chain *c)
{
    return c && c->have ? c->source : "none";
}
