/* Value checks: group names, regions, ARNs, booleans, bounded integers,
 * URLs, paths, sink lists; and the setter that checks one value for one
 * option, stores it, or logs exactly one line saying what is accepted.
 * Nothing here reads the environment (env.c) or splits strings (parse.c). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../common/common.h"
#include "config_int.h"

static bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(char c) { return is_lower(c) || (c >= 'A' && c <= 'Z'); }

/* ^[\w-]+$, 1..255 bytes (\w being ASCII letters, digits and '_'). */
static bool valid_group_name_n(const char *s, size_t len)
{
    if (len < 1 || len > 255)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

/* Tests: test/unit/config/test_validate.c */
bool cgprof_config_valid_group_name(const char *s)
{
    return s && valid_group_name_n(s, strnlen(s, 256));
}

/* AWS region names: two lowercase letters, one to three lowercase words,
 * a one- or two-digit number, joined by '-' (us-east-1, us-gov-west-1,
 * us-isob-east-1, cn-north-1, eu-central-2). At most 32 bytes. */
static bool valid_region_n(const char *s, size_t len)
{
    if (len < 6 || len > 32)
        return false;
    if (!is_lower(s[0]) || !is_lower(s[1]) || s[2] != '-')
        return false;
    size_t i = 3, words = 0;
    for (;;) {
        size_t start = i;
        if (i < len && is_digit(s[i])) {
            while (i < len && is_digit(s[i]))
                i++;
            return i == len && i - start <= 2 && words >= 1;
        }
        while (i < len && is_lower(s[i]))
            i++;
        if (i == start || i >= len || s[i] != '-' || ++words > 3)
            return false;
        i++;
    }
}

/* Tests: test/unit/config/test_validate.c */
bool cgprof_config_valid_region(const char *s)
{
    return s && valid_region_n(s, strnlen(s, 33));
}

/* aws, aws-cn, aws-us-gov, aws-iso-b ...: "aws" then lowercase words. */
static bool valid_partition_n(const char *s, size_t len)
{
    if (len < 3 || len > 32 || strncmp(s, "aws", 3) != 0)
        return false;
    for (size_t i = 3; i < len; i++) {
        if (s[i] != '-' || i + 1 >= len || !is_lower(s[i + 1]))
            return false;
        while (i + 1 < len && is_lower(s[i + 1]))
            i++;
    }
    return true;
}

/* Splits arn[0..len) at ':' into exactly six fields and checks each.
 * Outputs are written only on success. */
static int parse_arn_n(const char *arn, size_t len, char *name, size_t name_n,
                       char *region, size_t region_n, char *account,
                       size_t account_n)
{
    const char *f[6];
    size_t fl[6];
    size_t nf = 0, start = 0;
    if (!arn || len >= CGPROF_URL_MAX)
        return CGPROF_EINVAL;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || arn[i] == ':') {
            if (nf == 6)
                return CGPROF_EINVAL;
            f[nf] = arn + start;
            fl[nf++] = i - start;
            start = i + 1;
        }
    }
    static const char res[] = "profilingGroup/";
    const size_t res_len = sizeof(res) - 1;
    if (nf != 6 || fl[0] != 3 || memcmp(f[0], "arn", 3) != 0 ||
        !valid_partition_n(f[1], fl[1]) ||
        fl[2] != 17 || memcmp(f[2], "codeguru-profiler", 17) != 0 ||
        !valid_region_n(f[3], fl[3]) || fl[4] != 12 ||
        fl[5] <= res_len || memcmp(f[5], res, res_len) != 0 ||
        !valid_group_name_n(f[5] + res_len, fl[5] - res_len))
        return CGPROF_EINVAL;
    for (size_t i = 0; i < 12; i++)
        if (!is_digit(f[4][i]))
            return CGPROF_EINVAL;
    size_t nl = fl[5] - res_len;
    if ((name && nl >= name_n) || (region && fl[3] >= region_n) ||
        (account && fl[4] >= account_n))
        return CGPROF_EINVAL;
    if (name) {
        memcpy(name, f[5] + res_len, nl);
        name[nl] = '\0';
    }
    if (region) {
        memcpy(region, f[3], fl[3]);
        region[fl[3]] = '\0';
    }
    if (account) {
        memcpy(account, f[4], fl[4]);
        account[fl[4]] = '\0';
    }
    return 0;
}

/* Stricter than the official agents (which check only the field count):
 * a typo in the partition, service or resource type is reported instead of
 * sending a wrong name. Tests: test/unit/config/test_validate.c */
int cgprof_config_parse_arn(const char *arn, char *name, size_t name_n,
                            char *region, size_t region_n,
                            char *account, size_t account_n)
{
    if (!arn)
        return CGPROF_EINVAL;
    return parse_arn_n(arn, strnlen(arn, CGPROF_URL_MAX), name, name_n,
                       region, region_n, account, account_n);
}

/* Tests: test/unit/config/test_validate.c */
int cgprof__config_parse_uint(const char *s, size_t len, unsigned *out)
{
    uint64_t v = 0;
    if (len == 0)
        return CGPROF_EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]))
            return CGPROF_EINVAL;
        v = v * 10 + (uint64_t)(s[i] - '0');
        if (v > UINT32_MAX)
            return CGPROF_EINVAL;
    }
    *out = (unsigned)v;
    return 0;
}

/* Tests: test/unit/config/test_validate.c */
int cgprof__config_parse_bool(const char *s, size_t len, bool *out)
{
    if (len == 4 && strncasecmp(s, "true", 4) == 0) {
        *out = true;
        return 0;
    }
    if (len == 5 && strncasecmp(s, "false", 5) == 0) {
        *out = false;
        return 0;
    }
    return CGPROF_EINVAL;
}

/* Tests: test/unit/config/test_validate.c */
int cgprof__config_parse_sinks(const char *s, size_t len, unsigned *out)
{
    static const struct { const char *name; unsigned bit; } names[] = {
        { "codeguru", CGPROF_SINK_CODEGURU },
        { "file", CGPROF_SINK_FILE },
        { "pyroscope", CGPROF_SINK_PYROSCOPE },
    };
    unsigned bits = 0;
    size_t i = 0;
    if (len == 0)
        return CGPROF_EINVAL;
    while (i <= len) {
        size_t start = i;
        while (i < len && s[i] != '+')
            i++;
        size_t a = start, b = i;
        while (a < b && (s[a] == ' ' || s[a] == '\t'))
            a++;
        while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
            b--;
        bool found = false;
        for (size_t k = 0; k < CGPROF_ARRAY_SIZE(names); k++) {
            if (strlen(names[k].name) == b - a &&
                strncasecmp(names[k].name, s + a, b - a) == 0) {
                bits |= names[k].bit;
                found = true;
            }
        }
        if (!found)
            return CGPROF_EINVAL;
        i++; /* past '+' (or past the end, which ends the loop) */
    }
    *out = bits;
    return 0;
}

/* Absolute, shorter than CGPROF_PATH_MAX, no control bytes. Non-ASCII
 * bytes are allowed: file names are bytes. Tests: test_validate.c */
bool cgprof__config_valid_path(const char *s, size_t len)
{
    if (len == 0 || len >= CGPROF_PATH_MAX || s[0] != '/')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

/* http(s)://[user[:password]@]host[:port][/path...]: host is a name, an
 * IPv4 address or a bracketed IPv6 address; printable ASCII without
 * spaces. User info (basic auth for the Pyroscope sink) holds RFC 3986
 * unreserved characters, sub-delimiters other than ',', and %XX escapes.
 * Tests: test/unit/config/test_validate.c */
bool cgprof__config_valid_url(const char *s, size_t len)
{
    size_t i;
    if (len >= CGPROF_URL_MAX)
        return false;
    if (len > 7 && strncasecmp(s, "http://", 7) == 0)
        i = 7;
    else if (len > 8 && strncasecmp(s, "https://", 8) == 0)
        i = 8;
    else
        return false;
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c <= 0x20 || c >= 0x7f)
            return false;
    }
    const char *at = memchr(s + i, '@', len - i);
    size_t auth_end = at ? (size_t)(at - s) : i;
    if (at && memchr(s + i, '/', auth_end - i) == NULL) {
        for (size_t k = i; k < auth_end; k++)
            if (!is_alpha(s[k]) && !is_digit(s[k]) && !strchr("-._~!$&'()*+;=:%", s[k]))
                return false;
        i = auth_end + 1;
        if (i >= len)
            return false;
    }
    size_t host = i;
    if (s[i] == '[') {
        i++;
        while (i < len && (is_digit(s[i]) || (s[i] >= 'a' && s[i] <= 'f') ||
                           (s[i] >= 'A' && s[i] <= 'F') || s[i] == ':' || s[i] == '.'))
            i++;
        if (i >= len || s[i] != ']' || i == host + 1)
            return false;
        i++;
    } else {
        while (i < len && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '.' ||
                           s[i] == '-' || s[i] == '_'))
            i++;
        if (i == host)
            return false;
    }
    if (i < len && s[i] == ':') {
        size_t p = ++i;
        unsigned port = 0;
        while (i < len && is_digit(s[i]) && i - p < 5)
            port = port * 10 + (unsigned)(s[i++] - '0');
        if (i == p || port == 0 || port > 65535)
            return false;
    }
    return i == len || s[i] == '/' || s[i] == '?';
}

/* Pyroscope application names: 1 to 255 of [A-Za-z0-9._/-].
 * Tests: test/unit/config/test_validate.c */
bool cgprof__config_valid_app_name(const char *s, size_t len)
{
    if (len < 1 || len > 255)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_alpha(s[i]) && !is_digit(s[i]) && (s[i] == '\0' || !strchr("._/-", s[i])))
            return false;
    return true;
}

/* "k=v;k=v": keys are Prometheus label names not starting with "__"
 * (reserved), values 1+ of [A-Za-z0-9._/:@+-]; no duplicate keys, no
 * empty pairs. Values never need escaping inside the ingest name's
 * braces. Tests: test/unit/config/test_validate.c */
bool cgprof__config_valid_tags(const char *s, size_t len)
{
    if (len == 0)
        return false;
    size_t i = 0;
    while (i < len) {
        size_t k = i;
        if (!is_alpha(s[i]) && s[i] != '_')
            return false;
        while (i < len && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '_'))
            i++;
        size_t klen = i - k;
        if ((klen >= 2 && s[k] == '_' && s[k + 1] == '_') || i >= len || s[i] != '=')
            return false;
        size_t v = ++i;
        while (i < len && (is_alpha(s[i]) || is_digit(s[i]) || strchr("._/:@+-", s[i])) &&
               s[i] != '\0')
            i++;
        if (i == v || (i < len && s[i] != ';') || (i + 1 == len))
            return false;
        /* The same key twice would be ambiguous. */
        for (size_t j = 0; j < k; j++) {
            bool start = j == 0 || s[j - 1] == ';';
            if (start && j + klen < k && strncmp(s + j, s + k, klen) == 0 && s[j + klen] == '=')
                return false;
        }
        if (i < len)
            i++;    /* past ';' */
    }
    return true;
}

/* Tenant ids as Mimir/Pyroscope accept them: 1 to 150 of
 * [A-Za-z0-9!_.*'()-]. Tests: test/unit/config/test_validate.c */
bool cgprof__config_valid_tenant(const char *s, size_t len)
{
    if (len < 1 || len > 150 || (len == 1 && s[0] == '.') ||
        (len == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_alpha(s[i]) && !is_digit(s[i]) && (s[i] == '\0' || !strchr("!-_.*'()", s[i])))
            return false;
    return true;
}

/* Secrets (passwords, tokens): printable ASCII without spaces. */
static bool valid_secret(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/* Profile names as the AWS CLI writes them in [profile NAME]. */
bool cgprof__config_valid_profile(const char *s, size_t len)
{
    if (len < 1 || len > 255)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_alpha(s[i]) && !is_digit(s[i]) &&
            (s[i] == '\0' || !strchr("_.@+/=-", s[i])))
            return false;
    return true;
}

/* Tests: test/unit/config/test_validate.c */
void cgprof__config_escape(char *out, size_t n, const char *s, size_t len)
{
    size_t o = 0;
    if (n == 0)
        return;
    size_t shown = len > CGPROF__ESC_IN ? CGPROF__ESC_IN : len;
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[8];
        if (c == '\\' || c == '\'')
            snprintf(tmp, sizeof(tmp), "\\%c", c);
        else if (c >= 0x20 && c < 0x7f)
            snprintf(tmp, sizeof(tmp), "%c", c);
        else
            snprintf(tmp, sizeof(tmp), "\\x%02x", c);
        size_t tl = strlen(tmp);
        if (o + tl >= n)
            break;
        memcpy(out + o, tmp, tl);
        o += tl;
    }
    out[o] = '\0';
    if (len > shown)
        snprintf(out + o, n - o, "...(%zu bytes)", len);
}

/* What each kind accepts, for the one-line error. */
static void expected_text(const struct cgprof__config_spec *sp, char *out, size_t n)
{
    switch (sp->kind) {
    case CGPROF__KIND_BOOL:
        snprintf(out, n, "true or false");
        break;
    case CGPROF__KIND_UINT:
        snprintf(out, n, "an integer from %u to %u", sp->min, sp->max);
        break;
    case CGPROF__KIND_GROUP_NAME:
        snprintf(out, n, "1 to 255 letters, digits, '_' or '-'");
        break;
    case CGPROF__KIND_ARN:
        snprintf(out, n, "arn:PARTITION:codeguru-profiler:REGION:"
                 "ACCOUNT(12 digits):profilingGroup/NAME");
        break;
    case CGPROF__KIND_REGION:
        snprintf(out, n, "an AWS region name such as us-east-1");
        break;
    case CGPROF__KIND_PATH:
        snprintf(out, n, "an absolute path shorter than %zu bytes", sp->size);
        break;
    case CGPROF__KIND_PROFILE:
        snprintf(out, n, "1 to 255 letters, digits or _.@+/=-");
        break;
    case CGPROF__KIND_URL:
        snprintf(out, n, "an http:// or https:// URL shorter than %zu bytes", sp->size);
        break;
    case CGPROF__KIND_SINK:
        snprintf(out, n, "codeguru, file or pyroscope, combined with '+'");
        break;
    case CGPROF__KIND_LOG_LEVEL:
        snprintf(out, n, "off, error, warn, info or debug");
        break;
    case CGPROF__KIND_ENGINE:
        snprintf(out, n, "auto, perf or timer");
        break;
    case CGPROF__KIND_APP_NAME:
        snprintf(out, n, "1 to 255 letters, digits, '.', '_', '-' or '/'");
        break;
    case CGPROF__KIND_TAGS:
        snprintf(out, n, "key=value pairs joined with ';', keys [A-Za-z_][A-Za-z0-9_]* "
                 "not starting with __, values of [A-Za-z0-9._/:@+-]");
        break;
    case CGPROF__KIND_SECRET:
        snprintf(out, n, "printable characters without spaces, shorter than %zu bytes",
                 sp->size);
        break;
    case CGPROF__KIND_TENANT:
        snprintf(out, n, "1 to 150 letters, digits or !-_.*'()");
        break;
    }
}

union value {
    bool b;
    unsigned u;
    int i;
};

/* Checks val for spec; fills *v for scalar kinds. 0 or CGPROF_EINVAL. */
static int convert(const struct cgprof__config_spec *sp, const char *val,
                   size_t len, union value *v)
{
    switch (sp->kind) {
    case CGPROF__KIND_BOOL:
        return cgprof__config_parse_bool(val, len, &v->b);
    case CGPROF__KIND_UINT:
        if (cgprof__config_parse_uint(val, len, &v->u) != 0 ||
            v->u < sp->min || v->u > sp->max)
            return CGPROF_EINVAL;
        return 0;
    case CGPROF__KIND_SINK:
        return cgprof__config_parse_sinks(val, len, &v->u);
    case CGPROF__KIND_LOG_LEVEL: {
        char buf[8];
        if (len == 0 || len >= sizeof(buf))
            return CGPROF_EINVAL;
        memcpy(buf, val, len);
        buf[len] = '\0';
        v->i = cgprof_log_level_parse(buf);
        return v->i < 0 ? CGPROF_EINVAL : 0;
    }
    case CGPROF__KIND_ENGINE: {
        static const char *const names[] = { "auto", "perf", "timer" };
        for (int k = 0; k < 3; k++)
            if (len == strlen(names[k]) && strncasecmp(val, names[k], len) == 0) {
                v->i = k;
                return 0;
            }
        return CGPROF_EINVAL;
    }
    case CGPROF__KIND_GROUP_NAME:
        return valid_group_name_n(val, len) && len < sp->size ? 0 : CGPROF_EINVAL;
    case CGPROF__KIND_ARN:
        return len < sp->size &&
               parse_arn_n(val, len, NULL, 0, NULL, 0, NULL, 0) == 0 ? 0 : CGPROF_EINVAL;
    case CGPROF__KIND_REGION:
        return valid_region_n(val, len) && len < sp->size ? 0 : CGPROF_EINVAL;
    case CGPROF__KIND_PATH:
        return cgprof__config_valid_path(val, len) && len < sp->size ? 0 : CGPROF_EINVAL;
    case CGPROF__KIND_PROFILE:
        return cgprof__config_valid_profile(val, len) && len < sp->size ? 0 : CGPROF_EINVAL;
    case CGPROF__KIND_URL:
        return cgprof__config_valid_url(val, len) && len < sp->size ? 0 : CGPROF_EINVAL;
    case CGPROF__KIND_APP_NAME:
        return cgprof__config_valid_app_name(val, len) && len < sp->size ? 0 : CGPROF_EINVAL;
    case CGPROF__KIND_TAGS:
        return cgprof__config_valid_tags(val, len) && len < sp->size ? 0 : CGPROF_EINVAL;
    case CGPROF__KIND_SECRET:
        return valid_secret(val, len) && len < sp->size ? 0 : CGPROF_EINVAL;
    case CGPROF__KIND_TENANT:
        return cgprof__config_valid_tenant(val, len) && len < sp->size ? 0 : CGPROF_EINVAL;
    }
    return CGPROF_EINVAL;
}

/* Tests: test/unit/config/test_validate.c */
bool cgprof__config_check(int i, const char *val, size_t len)
{
    const struct cgprof__config_spec *sp = cgprof__config_spec(i);
    union value v;
    return sp && val && convert(sp, val, len, &v) == 0;
}

/* Tests: test/unit/config/test_validate.c, test_parse.c */
int cgprof__config_set(struct cgprof_config *cfg, int i, const char *val,
                       size_t len, const char *what)
{
    const struct cgprof__config_spec *sp = cgprof__config_spec(i);
    union value v;
    if (!sp || !val)
        return CGPROF_EINVAL;
    if (convert(sp, val, len, &v) != 0) {
        char shown[CGPROF__ESC_OUT], exp[160];
        if (sp->kind == CGPROF__KIND_SECRET)   /* never echo a secret */
            snprintf(shown, sizeof(shown), "(%zu hidden bytes)", len);
        else
            cgprof__config_escape(shown, sizeof(shown), val, len);
        expected_text(sp, exp, sizeof(exp));
        if (len == 0)
            cgprof_error("empty value for %s (expected %s); profiling stays off",
                         what, exp);
        else
            cgprof_error("invalid value '%s' for %s (expected %s); profiling stays off",
                         shown, what, exp);
        return CGPROF_EINVAL;
    }
    char *field = (char *)cfg + sp->offset;
    switch (sp->kind) {
    case CGPROF__KIND_BOOL:
        memcpy(field, &v.b, sizeof(bool));
        break;
    case CGPROF__KIND_UINT:
    case CGPROF__KIND_SINK:
        memcpy(field, &v.u, sizeof(unsigned));
        break;
    case CGPROF__KIND_LOG_LEVEL:
    case CGPROF__KIND_ENGINE:
        memcpy(field, &v.i, sizeof(int));
        break;
    default: /* strings: convert checked len < sp->size */
        memcpy(field, val, len);
        field[len] = '\0';
        break;
    }
    return 0;
}
