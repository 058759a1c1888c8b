/* The upload spool: profiles CodeGuru could not take yet, kept gzip'd in
 * <outputDir>/spool/<group>/<epoch_ms>-<profileToken>.json.gz (atomic
 * writes), bounded by size and age with a log line when something is
 * dropped. A file is sent only by the process holding its flock, and
 * deleted once delivered, so no profile is sent twice, even when several
 * processes of one group share the directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "uploader_int.h"

#define SUFFIX ".json.gz"
#define TMP_STALE_S 600

struct sp_file {
    char name[256];
    off_t size;
    uint64_t epoch_ms;
};

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const struct sp_file *)a)->name, ((const struct sp_file *)b)->name);
}

static bool is_spool_name(const char *n, uint64_t *ms)
{
    size_t len = strlen(n), sl = strlen(SUFFIX);
    if (len <= sl + 2 || strcmp(n + len - sl, SUFFIX) != 0)
        return false;
    char *end = NULL;
    unsigned long long v = strtoull(n, &end, 10);
    if (end == n || *end != '-' || end[1] == '.')
        return false;
    if (ms)
        *ms = v;
    return true;
}

static void sanitize(const char *name, char *out, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; name[i] && j + 1 < n; i++) {
        unsigned char c = (unsigned char)name[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        out[j++] = ok ? (char)c : '_';
    }
    out[j] = '\0';
    if (j == 0)
        snprintf(out, n, "default");
}

/* Tests: test/unit/uploader/test_spool.c */
int cgprof__spool_init(struct cgprof__spool *s, const char *output_dir, const char *group,
                       size_t max_bytes, uint64_t max_age_ms)
{
    memset(s, 0, sizeof(*s));
    if (!output_dir || !*output_dir)
        return CGPROF_EINVAL;
    char g[200];
    sanitize(group ? group : "", g, sizeof(g));
    int w = snprintf(s->dir, sizeof(s->dir), "%s/spool/%s", output_dir, g);
    if (w < 0 || (size_t)w >= sizeof(s->dir))
        return CGPROF_ETOOBIG;
    s->max_bytes = max_bytes;
    s->max_age_ms = max_age_ms;
    return 0;
}

/* The spool's files sorted oldest first (the name starts with the epoch).
 * Stale temp files of crashed writers are removed on the way. */
static int list(const struct cgprof__spool *s, struct sp_file **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(s->dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    size_t cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        uint64_t ms;
        char path[1400];
        snprintf(path, sizeof(path), "%s/%s", s->dir, de->d_name);
        if (!is_spool_name(de->d_name, &ms)) {
            struct stat st;
            if (strstr(de->d_name, SUFFIX ".tmp.") && stat(path, &st) == 0 &&
                st.st_mtime + TMP_STALE_S < (time_t)(cgprof_epoch_ms() / 1000))
                unlink(path);
            continue;
        }
        struct stat st;
        if (strlen(de->d_name) >= sizeof((*out)->name) || stat(path, &st) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            struct sp_file *p = cgprof_realloc(*out, nc * sizeof(*p));
            if (!p) {
                rc = CGPROF_ENOMEM;
                break;
            }
            *out = p;
            cap = nc;
        }
        struct sp_file *f = &(*out)[(*n)++];
        snprintf(f->name, sizeof(f->name), "%s", de->d_name);
        f->size = st.st_size;
        f->epoch_ms = ms;
    }
    closedir(d);
    if (rc != 0) {
        cgprof_free(*out);
        *out = NULL;
        *n = 0;
        return rc;
    }
    if (*n > 1)
        qsort(*out, *n, sizeof(**out), cmp_name);
    return 0;
}

/* Tests: test/unit/uploader/test_spool.c */
int cgprof__spool_trim(struct cgprof__spool *s)
{
    struct sp_file *f;
    size_t n;
    if (list(s, &f, &n) != 0)
        return 0;
    uint64_t now = cgprof_epoch_ms(), total = 0;
    for (size_t i = 0; i < n; i++)
        total += (uint64_t)f[i].size;
    int old = 0, big = 0;
    for (size_t i = 0; i < n; i++) {
        bool too_old = s->max_age_ms && f[i].epoch_ms + s->max_age_ms < now;
        bool too_big = s->max_bytes && total > s->max_bytes;
        if (!too_old && !too_big)
            break;      /* sorted oldest first: the rest is newer and fits */
        char path[1400];
        snprintf(path, sizeof(path), "%s/%s", s->dir, f[i].name);
        if (unlink(path) == 0 || errno == ENOENT) {
            total -= (uint64_t)f[i].size;
            if (too_old)
                old++;
            else
                big++;
        }
    }
    cgprof_free(f);
    if (old)
        cgprof_warn("spool %s: dropped %d undelivered profile(s) older than %llu h", s->dir, old,
                    (unsigned long long)(s->max_age_ms / 3600000u));
    if (big)
        cgprof_warn("spool %s: dropped the %d oldest undelivered profile(s) to stay under "
                    "%zu KiB", s->dir, big, s->max_bytes >> 10);
    return old + big;
}

/* Tests: test/unit/uploader/test_spool.c */
int cgprof__spool_put(struct cgprof__spool *s, const char *token, const void *gz, size_t len,
                      char *path_out, size_t path_n)
{
    if (!s->dir[0] || !token || !*token || strchr(token, '/'))
        return CGPROF_EINVAL;
    char path[1400];
    int w = snprintf(path, sizeof(path), "%s/%013llu-%s" SUFFIX, s->dir,
                     (unsigned long long)cgprof_epoch_ms(), token);
    if (w < 0 || (size_t)w >= sizeof(path))
        return CGPROF_ETOOBIG;
    int rc = cgprof_mkdir_p(s->dir, 0700);
    if (rc == 0)
        rc = cgprof_write_file_atomic(path, gz, len);
    if (rc != 0) {
        if (!s->warned_write)
            cgprof_warn("spool: cannot store an undelivered profile in %s: %s; it is kept "
                        "in memory for now", s->dir, cgprof_strerror(rc));
        s->warned_write = true;
        return rc;
    }
    if (s->warned_write)
        cgprof_info("spool: %s is writable again", s->dir);
    s->warned_write = false;
    if (path_out)
        snprintf(path_out, path_n, "%s", path);
    cgprof__spool_trim(s);
    return 0;
}

/* Tests: test/unit/uploader/test_spool.c */
int cgprof__spool_claim(struct cgprof__spool *s, const char *skip_after,
                        struct cgprof__spool_entry *e)
{
    memset(e, 0, sizeof(*e));
    e->fd = -1;
    struct sp_file *f;
    size_t n;
    int rc = list(s, &f, &n);
    if (rc != 0)
        return rc;
    rc = CGPROF_ENOTFOUND;
    for (size_t i = 0; i < n; i++) {
        if (skip_after && *skip_after && strcmp(f[i].name, skip_after) <= 0)
            continue;
        char path[1400];
        snprintf(path, sizeof(path), "%s/%s", s->dir, f[i].name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct stat st;
        /* Held by another process, or delivered and unlinked since listed. */
        if (flock(fd, LOCK_EX | LOCK_NB) != 0 || fstat(fd, &st) != 0 || st.st_nlink == 0 ||
            (size_t)st.st_size > CGPROF_PROFILE_FILE_MAX) {
            close(fd);
            continue;
        }
        cgprof_buf_init(&e->gz, CGPROF_PROFILE_FILE_MAX);
        char chunk[16384];
        ssize_t r;
        int err = 0;
        while ((r = read(fd, chunk, sizeof(chunk))) != 0) {
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                err = -errno;
                break;
            }
            if ((err = cgprof_buf_append(&e->gz, chunk, (size_t)r)) != 0)
                break;
        }
        if (err != 0 || e->gz.len == 0) {
            cgprof_buf_cleanup(&e->gz);
            close(fd);
            if (err == CGPROF_ENOMEM) {
                rc = err;
                break;
            }
            continue;
        }
        snprintf(e->path, sizeof(e->path), "%s", path);
        const char *dash = strchr(f[i].name, '-');
        size_t tl = strlen(dash + 1) - strlen(SUFFIX);
        if (tl >= sizeof(e->token))
            tl = sizeof(e->token) - 1;
        memcpy(e->token, dash + 1, tl);
        e->token[tl] = '\0';
        e->fd = fd;
        rc = 0;
        break;
    }
    cgprof_free(f);
    return rc;
}

/* Tests: test/unit/uploader/test_spool.c */
void cgprof__spool_done(struct cgprof__spool_entry *e)
{
    if (e->fd >= 0) {
        unlink(e->path);
        close(e->fd);
    }
    e->fd = -1;
    cgprof_buf_cleanup(&e->gz);
}

/* Tests: test/unit/uploader/test_spool.c */
void cgprof__spool_release(struct cgprof__spool_entry *e)
{
    if (e->fd >= 0)
        close(e->fd);
    e->fd = -1;
    cgprof_buf_cleanup(&e->gz);
}

/* Tests: test/unit/uploader/test_spool.c */
int cgprof__spool_count(const struct cgprof__spool *s)
{
    struct sp_file *f;
    size_t n;
    if (list(s, &f, &n) != 0)
        return 0;
    cgprof_free(f);
    return (int)n;
}

/* Tests: test/unit/uploader/test_spool.c, test/integration/cli_upload.sh */
int cgprof_spool_drain(const char *dir,
                       enum cgprof_spool_verdict (*fn)(void *ctx, const char *token,
                                                       const void *gz, size_t len,
                                                       unsigned index, unsigned total),
                       void *ctx, unsigned *n_delivered, unsigned *n_rejected,
                       unsigned *n_kept)
{
    struct cgprof__spool s;
    unsigned d = 0, r = 0, k = 0;
    memset(&s, 0, sizeof(s));
    if (!dir || !fn || strlen(dir) >= sizeof(s.dir))
        return CGPROF_EINVAL;
    snprintf(s.dir, sizeof(s.dir), "%s", dir);
    struct sp_file *f;
    size_t n;
    int rc = list(&s, &f, &n);
    if (rc != 0)
        return rc;
    cgprof_free(f);
    char last[sizeof(((struct cgprof__spool_entry *)0)->path)] = "";
    unsigned index = 0;
    for (;;) {
        struct cgprof__spool_entry e;
        rc = cgprof__spool_claim(&s, last, &e);
        if (rc == CGPROF_ENOTFOUND) {
            rc = 0;
            break;
        }
        if (rc != 0)
            break;
        const char *base = strrchr(e.path, '/');
        snprintf(last, sizeof(last), "%s", base ? base + 1 : e.path);
        enum cgprof_spool_verdict v = fn(ctx, e.token, e.gz.data, e.gz.len, index++,
                                         (unsigned)n);
        if (v == CGPROF_SPOOL_DELIVERED || v == CGPROF_SPOOL_REJECTED) {
            v == CGPROF_SPOOL_DELIVERED ? d++ : r++;
            cgprof__spool_done(&e);
            continue;
        }
        k++;
        cgprof__spool_release(&e);
        if (v == CGPROF_SPOOL_STOP)
            break;      /* the rest stays in the spool, untried */
    }
    if (n_delivered)
        *n_delivered = d;
    if (n_rejected)
        *n_rejected = r;
    if (n_kept)
        *n_kept = k;
    return rc;
}

/* Tests: test/unit/uploader/test_spool.c */
int cgprof_spool_count_dir(const char *dir)
{
    struct cgprof__spool s;
    memset(&s, 0, sizeof(s));
    if (!dir || strlen(dir) >= sizeof(s.dir))
        return 0;
    snprintf(s.dir, sizeof(s.dir), "%s", dir);
    return cgprof__spool_count(&s);
}
