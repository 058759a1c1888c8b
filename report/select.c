/* Choosing stored profiles for a report: parsing --from/--to times, reading
 * the *.json.gz files the file sink leaves in a directory (or files named
 * one by one), filtering them by time range and group, and merging them
 * into one profile with summary facts. The views themselves live in top.c
 * and in the profile encoders. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "report.h"

/* ---- times ------------------------------------------------------------- */

/* Reads exactly n digits at *s into *v and advances *s. */
static int digits(const char **s, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*s)[i]))
            return -1;
        x = x * 10 + ((*s)[i] - '0');
    }
    *s += n;
    *v = x;
    return 0;
}

/* "-1h", "-30m", "-1h30m", "-45s", "-2d", "-1w": now minus the sum. */
static int parse_relative(const char *s, uint64_t now_ms, uint64_t *out)
{
    uint64_t back = 0;
    s++; /* '-' */
    if (*s == '\0')
        return CGPROF_EINVAL;
    while (*s) {
        uint64_t v = 0, unit;
        if (!isdigit((unsigned char)*s))
            return CGPROF_EINVAL;
        while (isdigit((unsigned char)*s)) {
            if (v > UINT64_C(100000000))
                return CGPROF_EINVAL;
            v = v * 10 + (uint64_t)(*s++ - '0');
        }
        switch (*s++) {
        case 's': unit = 1000; break;
        case 'm': unit = 60 * 1000; break;
        case 'h': unit = 3600 * 1000; break;
        case 'd': unit = 86400 * 1000; break;
        case 'w': unit = 7 * 86400 * 1000; break;
        default: return CGPROF_EINVAL;
        }
        back += v * unit;
    }
    *out = back >= now_ms ? 0 : now_ms - back;
    return 0;
}

/* YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|±HH[:]MM]; no zone means UTC. */
static int parse_iso(const char *s, uint64_t *out)
{
    struct tm tm;
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, off = 0;
    memset(&tm, 0, sizeof(tm));
    if (digits(&s, 4, &y) || *s++ != '-' || digits(&s, 2, &mo) || *s++ != '-' ||
        digits(&s, 2, &d))
        return CGPROF_EINVAL;
    if (*s == 'T' || *s == 't' || *s == ' ') {
        s++;
        if (digits(&s, 2, &h) || *s++ != ':' || digits(&s, 2, &mi))
            return CGPROF_EINVAL;
        if (*s == ':') {
            s++;
            if (digits(&s, 2, &sec))
                return CGPROF_EINVAL;
            if (*s == '.' || *s == ',') {
                int scale = 100;
                s++;
                if (!isdigit((unsigned char)*s))
                    return CGPROF_EINVAL;
                for (; isdigit((unsigned char)*s); s++, scale /= 10)
                    ms += (*s - '0') * scale;
            }
        }
        if (*s == 'Z' || *s == 'z') {
            s++;
        } else if (*s == '+' || *s == '-') {
            int sign = *s++ == '-' ? -1 : 1, oh, om;
            if (digits(&s, 2, &oh))
                return CGPROF_EINVAL;
            if (*s == ':')
                s++;
            if (digits(&s, 2, &om) || oh > 23 || om > 59)
                return CGPROF_EINVAL;
            off = sign * (oh * 3600 + om * 60);
        }
    }
    if (*s != '\0' || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
        mi > 59 || sec > 60)
        return CGPROF_EINVAL;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    /* timegm normalizes 2026-02-31 to March; reject such dates. */
    if (t == (time_t)-1 || tm.tm_mday != d || tm.tm_mon != mo - 1)
        return CGPROF_EINVAL;
    long long secs = (long long)t - off;
    if (secs < 0)
        return CGPROF_EINVAL;
    *out = (uint64_t)secs * 1000u + (uint64_t)ms;
    return 0;
}

/* Tests: test/unit/report/test_select.c */
int cgprof_report_parse_time(const char *s, uint64_t now_ms, uint64_t *out_ms)
{
    if (s == NULL || *s == '\0')
        return CGPROF_EINVAL;
    if (strcmp(s, "now") == 0) {
        *out_ms = now_ms;
        return 0;
    }
    if (s[0] == '-')
        return parse_relative(s, now_ms, out_ms);
    size_t n = strspn(s, "0123456789");
    if (s[n] == '\0') {
        if (n > 15) /* past year 33000: surely not epoch ms */
            return CGPROF_EINVAL;
        *out_ms = strtoull(s, NULL, 10);
        return 0;
    }
    return parse_iso(s, out_ms);
}

void cgprof_report_format_time(uint64_t ms, char *out, size_t n)
{
    struct tm tm;
    time_t t = (time_t)(ms / 1000u);
    if (n == 0)
        return;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, n, "%llu", (unsigned long long)ms);
}

/* ---- collecting files -------------------------------------------------- */

static int has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct name_list {
    char **v;
    size_t n, cap;
};

static int list_add(struct name_list *l, char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **grown = cgprof_realloc(l->v, cap * sizeof(*grown));
        if (grown == NULL) {
            cgprof_free(s);
            return CGPROF_ENOMEM;
        }
        l->v = grown;
        l->cap = cap;
    }
    l->v[l->n++] = s;
    return 0;
}

static void list_cleanup(struct name_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        cgprof_free(l->v[i]);
    cgprof_free(l->v);
    memset(l, 0, sizeof(*l));
}

/* Appends dir's stored profiles (*.json.gz, *.json; hidden names such as
 * the sink's temp files are skipped) to l, sorted by name. Returns 0,
 * -errno or CGPROF_ENOMEM. */
static int scan_dir(const char *dir, struct name_list *l)
{
    DIR *d = opendir(dir);
    size_t first = l->n;
    int rc = 0;
    if (d == NULL)
        return -errno;
    for (struct dirent *e; rc == 0 && (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.' ||
            !(has_suffix(e->d_name, ".json.gz") || has_suffix(e->d_name, ".json")))
            continue;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *path = cgprof_malloc(len);
        if (path == NULL) {
            rc = CGPROF_ENOMEM;
            break;
        }
        snprintf(path, len, "%s%s%s", dir, has_suffix(dir, "/") ? "" : "/", e->d_name);
        rc = list_add(l, path);
    }
    closedir(d);
    if (rc == 0 && l->n > first + 1)
        qsort(l->v + first, l->n - first, sizeof(*l->v), cmp_str);
    return rc;
}

/* ---- selection --------------------------------------------------------- */

static int passes(const struct cgprof_profile *p, const struct cgprof_report_filter *f)
{
    if (f == NULL)
        return 1;
    if (f->from_ms != 0 && p->end_ms < f->from_ms)
        return 0;
    if (f->to_ms != 0 && p->start_ms > f->to_ms)
        return 0;
    if (f->group != NULL && strcmp(p->group_name, f->group) != 0)
        return 0;
    return 1;
}

/* Adds name to the ", "-joined list of distinct groups, ending it with
 * "..." once it no longer fits. */
static void note_group(struct cgprof_report_selection *sel, const char *name)
{
    char *g = sel->groups;
    size_t len = strlen(g), nl = strlen(name);
    if (nl == 0 || has_suffix(g, "..."))
        return;
    for (const char *at = g; (at = strstr(at, name)) != NULL; at += nl)
        if ((at == g || at[-1] == ' ') && (at[nl] == ',' || at[nl] == '\0'))
            return;
    /* Keep room for ", ..." (5 bytes) after every name added. */
    if (len + 2 + nl + 6 < sizeof(sel->groups)) {
        if (len > 0) {
            memcpy(g + len, ", ", 2);
            len += 2;
        }
        memcpy(g + len, name, nl + 1);
    } else {
        memcpy(g + len, len ? ", ..." : "...", len ? 6 : 4);
    }
}

static void take(struct cgprof_report_selection *sel, const struct cgprof_profile *p)
{
    if (sel->nprofiles == 0 || p->start_ms < sel->start_ms)
        sel->start_ms = p->start_ms;
    if (sel->nprofiles == 0 || p->end_ms > sel->end_ms)
        sel->end_ms = p->end_ms;
    sel->nprofiles++;
    sel->duration_ms += p->duration_ms;
    sel->cpu_time_s += p->cpu_time_s;
    sel->avg_threads += p->num_threads * (double)p->num_times_sampled;
    if (p->num_threads > sel->max_threads)
        sel->max_threads = p->num_threads;
    sel->num_times_sampled += p->num_times_sampled;
    sel->samples_dropped += p->samples_dropped;
    note_group(sel, p->group_name);
}

/* Writes the "why nothing was taken" line. */
static void explain_empty(const struct cgprof_report_selection *sel,
                          const char *const *paths, size_t npaths,
                          const struct cgprof_report_filter *f, char *err, size_t errn)
{
    char where[512] = "";
    size_t len = 0;
    for (size_t i = 0; i < npaths && len + 1 < sizeof(where); i++) {
        int w = snprintf(where + len, sizeof(where) - len, "%s%s", i ? ", " : "", paths[i]);
        if (w < 0)
            break;
        len += (size_t)w;
    }
    if (sel->nfound > 0) {
        char crit[384] = "", t[32];
        size_t cl = 0;
        if (f && f->from_ms) {
            cgprof_report_format_time(f->from_ms, t, sizeof(t));
            cl += (size_t)snprintf(crit + cl, sizeof(crit) - cl, " --from %s", t);
        }
        if (f && f->to_ms && cl < sizeof(crit)) {
            cgprof_report_format_time(f->to_ms, t, sizeof(t));
            cl += (size_t)snprintf(crit + cl, sizeof(crit) - cl, " --to %s", t);
        }
        if (f && f->group && cl < sizeof(crit))
            snprintf(crit + cl, sizeof(crit) - cl, " --group %s", f->group);
        snprintf(err, errn, "%zu profile%s in %s, none matching%s", sel->nfound,
                 sel->nfound == 1 ? "" : "s", where, crit);
    } else if (sel->nskipped > 0) {
        snprintf(err, errn, "no readable profiles in %s (%zu file%s skipped)", where,
                 sel->nskipped, sel->nskipped == 1 ? "" : "s");
    } else {
        snprintf(err, errn,
                 "no profiles found in %s (the file sink writes *.json.gz there when a "
                 "program runs under LD_PRELOAD=libcgprof.so; outputDir:DIR in "
                 "CGPROF_OPTIONS chooses the directory)", where);
    }
}

/* Tests: test/unit/report/test_select.c */
int cgprof_report_select(struct cgprof_report_selection *sel,
                         const char *const *paths, size_t npaths,
                         const struct cgprof_report_filter *f,
                         char *err, size_t errn)
{
    struct name_list files = { 0 };
    struct cgprof_profile one;
    int rc;

    memset(sel, 0, sizeof(*sel));
    if (errn > 0)
        err[0] = '\0';
    rc = cgprof_profile_init(&sel->merged);
    if (rc != 0) {
        snprintf(err, errn, "%s", cgprof_strerror(rc));
        return rc;
    }
    for (size_t i = 0; i < npaths; i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0) {
            rc = -errno;
            snprintf(err, errn, "cannot read %s: %s", paths[i], cgprof_strerror(rc));
            goto done;
        }
        if (S_ISDIR(st.st_mode)) {
            rc = scan_dir(paths[i], &files);
            if (rc != 0) {
                snprintf(err, errn, "cannot list %s: %s", paths[i], cgprof_strerror(rc));
                goto done;
            }
        } else {
            char *copy = cgprof_strdup(paths[i]);
            rc = copy ? list_add(&files, copy) : CGPROF_ENOMEM;
            if (rc != 0) {
                snprintf(err, errn, "%s", cgprof_strerror(rc));
                goto done;
            }
        }
    }

    for (size_t i = 0; i < files.n; i++) {
        rc = cgprof_profile_init(&one);
        if (rc == 0) {
            rc = cgprof_profile_load_file(&one, files.v[i]);
            if (rc == CGPROF_ENOMEM) {
                cgprof_profile_cleanup(&one);
            } else if (rc != 0) {
                cgprof_warn("skipping %s: %s", files.v[i], cgprof_strerror(rc));
                sel->nskipped++;
                cgprof_profile_cleanup(&one);
                continue;
            }
        }
        if (rc == 0) {
            sel->nfound++;
            if (passes(&one, f)) {
                rc = cgprof_profile_merge(&sel->merged, &one);
                if (rc == 0)
                    take(sel, &one);
            }
            cgprof_profile_cleanup(&one);
        }
        if (rc != 0) {
            snprintf(err, errn, "%s: %s", files.v[i], cgprof_strerror(rc));
            goto done;
        }
    }

    if (sel->nprofiles == 0) {
        explain_empty(sel, paths, npaths, f, err, errn);
        rc = CGPROF_ENOTFOUND;
        goto done;
    }
    if (sel->num_times_sampled > 0)
        sel->avg_threads /= (double)sel->num_times_sampled;
    else
        sel->avg_threads = sel->max_threads;

    /* Make the merged profile's metadata describe the whole selection, as
     * its JSON form is one of the report formats. */
    struct cgprof_profile *m = &sel->merged;
    m->start_ms = sel->start_ms;
    m->end_ms = sel->end_ms;
    m->num_threads = sel->avg_threads;
    m->samples_dropped = sel->samples_dropped;
    if (strchr(sel->groups, ',') == NULL && !has_suffix(sel->groups, "..."))
        snprintf(m->group_name, sizeof(m->group_name), "%s", sel->groups);
    else
        m->group_name[0] = '\0'; /* several groups: name none */
    rc = 0;
done:
    list_cleanup(&files);
    return rc;
}

void cgprof_report_selection_cleanup(struct cgprof_report_selection *sel)
{
    cgprof_profile_cleanup(&sel->merged);
    memset(sel, 0, sizeof(*sel));
}
