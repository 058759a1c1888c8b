/* The option string: `key:value,key:value`, optionally quoted as a whole,
 * each pair split at its first ':' so values may hold ARNs and URLs.
 * Problems are logged one line each; values are checked by validate.c and
 * layered with the environment by env.c. No allocation, no copies of the
 * input: everything works on (pointer, length) spans of the caller's string. */
#include <stdio.h>
#include <string.h>

#include "../common/common.h"
#include "config_int.h"

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static void trim(const char **p, size_t *n)
{
    while (*n > 0 && is_space(**p)) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && is_space((*p)[*n - 1]))
        (*n)--;
}

struct pair_iter {
    const char *p;
    const char *end;
};

/* Trims the string and strips one pair of matching outer quotes (shells
 * and systemd units tend to leave them in). A leading quote with no
 * matching trailing one is an error: guessing what was meant could turn
 * on profiling with the wrong settings. Tests: test_parse.c */
static int iter_init(struct pair_iter *it, const char *options)
{
    const char *p = options ? options : "";
    size_t n = strlen(p);
    trim(&p, &n);
    if (n > 0 && (p[0] == '"' || p[0] == '\'')) {
        if (n < 2 || p[n - 1] != p[0]) {
            it->p = it->end = p;
            return CGPROF_EINVAL;
        }
        p++;
        n -= 2;
        trim(&p, &n);
    }
    it->p = p;
    it->end = p + n;
    return 0;
}

/* Next non-empty, trimmed comma-separated piece; false at the end. Empty
 * pieces (stray or trailing commas) are skipped silently. */
static bool iter_next(struct pair_iter *it, const char **piece, size_t *n)
{
    while (it->p < it->end) {
        const char *start = it->p;
        const char *comma = memchr(start, ',', (size_t)(it->end - start));
        const char *stop = comma ? comma : it->end;
        it->p = comma ? comma + 1 : it->end;
        const char *s = start;
        size_t len = (size_t)(stop - start);
        trim(&s, &len);
        if (len > 0) {
            *piece = s;
            *n = len;
            return true;
        }
    }
    return false;
}

/* Splits a piece at its first ':' into trimmed key and value; false when
 * there is no ':'. */
static bool split_pair(const char *piece, size_t n, const char **key,
                       size_t *klen, const char **val, size_t *vlen)
{
    const char *colon = memchr(piece, ':', n);
    if (!colon)
        return false;
    *key = piece;
    *klen = (size_t)(colon - piece);
    *val = colon + 1;
    *vlen = n - *klen - 1;
    trim(key, klen);
    trim(val, vlen);
    return true;
}

/* Tests: test/unit/config/test_parse.c */
int cgprof__config_parse(struct cgprof_config *cfg, const char *options,
                         uint64_t *failed)
{
    const struct cgprof_option_info *opts = cgprof_config_options();
    struct pair_iter it;
    char shown[CGPROF__ESC_OUT];
    uint64_t seen = 0;
    int ret = 0;

    if (iter_init(&it, options) != 0) {
        size_t len = strlen(options);
        cgprof__config_escape(shown, sizeof(shown), options, len);
        cgprof_error("options string '%s' opens a quote it never closes; "
                     "profiling stays off", shown);
        return CGPROF_EINVAL;
    }
    const char *piece, *key, *val;
    size_t n, klen, vlen;
    while (iter_next(&it, &piece, &n)) {
        if (!split_pair(piece, n, &key, &klen, &val, &vlen)) {
            cgprof__config_escape(shown, sizeof(shown), piece, n);
            cgprof_error("option '%s' has no ':' (expected key:value); "
                         "profiling stays off", shown);
            ret = CGPROF_EINVAL;
            continue;
        }
        if (klen == 0) {
            cgprof__config_escape(shown, sizeof(shown), piece, n);
            cgprof_error("option '%s' has no key before ':' (expected "
                         "key:value); profiling stays off", shown);
            ret = CGPROF_EINVAL;
            continue;
        }
        int i = cgprof__config_lookup(key, klen);
        if (i < 0) {
            int near = cgprof__config_closest(key, klen, NULL);
            cgprof__config_escape(shown, sizeof(shown), key, klen);
            cgprof_warn("unknown option '%s' (did you mean '%s'?), ignored",
                        shown, opts[near].key);
            continue;
        }
        uint64_t bit = (uint64_t)1 << i;
        if (seen & bit)
            cgprof_warn("option '%s' given more than once; the last value wins",
                        opts[i].key);
        seen |= bit;
        char what[80];
        snprintf(what, sizeof(what), "option '%s'", opts[i].key);
        if (cgprof__config_set(cfg, i, val, vlen, what) != 0) {
            if (failed)
                *failed |= bit;
            ret = CGPROF_EINVAL;
            continue;
        }
        cfg->user_set |= bit;
    }
    return ret;
}

/* Tests: test/unit/config/test_parse.c (logLevel:error hides warnings) */
int cgprof__config_scan_log_level(const char *options)
{
    struct pair_iter it;
    const char *piece, *key, *val;
    size_t n, klen, vlen;
    int level = -1;
    if (!options || iter_init(&it, options) != 0)
        return -1;
    while (iter_next(&it, &piece, &n)) {
        if (!split_pair(piece, n, &key, &klen, &val, &vlen) ||
            cgprof__config_lookup(key, klen) != CGPROF__OPT_LOG_LEVEL)
            continue;
        char buf[8];
        if (vlen == 0 || vlen >= sizeof(buf))
            continue;
        memcpy(buf, val, vlen);
        buf[vlen] = '\0';
        int l = cgprof_log_level_parse(buf);
        if (l >= 0)
            level = l;
    }
    return level;
}
