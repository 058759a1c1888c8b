/* The file sink, cgprof's embedded default: each profile becomes one
 * gzip'd CodeGuru JSON file in a directory, written atomically (temp file,
 * then rename), and the directory is kept under a size cap by deleting the
 * oldest profiles. Encoding and gzip are in profile/; other sinks arrive in
 * their own files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "uploader.h"

#define SINK_SUFFIX ".json.gz"
#define NAME_PART_MAX 128 /* keeps file names well under NAME_MAX */

/* Copies name keeping [A-Za-z0-9_.-] and turning anything else into '_';
 * an empty name becomes "profile". */
static void sanitize(const char *name, char *out, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; name[i] && j + 1 < n; i++) {
        unsigned char c = (unsigned char)name[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                 (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
        out[j++] = ok ? (char)c : '_';
    }
    out[j] = '\0';
    if (j == 0)
        snprintf(out, n, "profile");
}

struct entry {
    char *name;
    off_t size;
    struct timespec mtime;
};

static int cmp_age(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->mtime.tv_sec != y->mtime.tv_sec)
        return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
    if (x->mtime.tv_nsec != y->mtime.tv_nsec)
        return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && memcmp(s + n - m, suffix, m) == 0;
}

/* Deletes the oldest *.json.gz regular files (by mtime, then name) until
 * the total is at most max_bytes. The file just written (keep) is never
 * deleted, so the newest profile survives even a cap smaller than itself.
 * Returns how many files were deleted, or a negative error.
 * Tests: test/unit/uploader/test_file_sink.c */
static int enforce_cap(const char *dir, size_t max_bytes, const char *keep)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    struct entry *v = NULL;
    size_t n = 0, cap = 0;
    unsigned long long total = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!has_suffix(de->d_name, SINK_SUFFIX))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            struct entry *nv = cgprof_realloc(v, ncap * sizeof(*nv));
            if (!nv) {
                rc = CGPROF_ENOMEM;
                break;
            }
            v = nv;
            cap = ncap;
        }
        v[n].name = cgprof_strdup(de->d_name);
        if (!v[n].name) {
            rc = CGPROF_ENOMEM;
            break;
        }
        v[n].size = st.st_size;
        v[n].mtime = st.st_mtim;
        total += (unsigned long long)st.st_size;
        n++;
    }
    if (rc == 0 && total > max_bytes) {
        qsort(v, n, sizeof(*v), cmp_age);
        int deleted = 0;
        for (size_t i = 0; i < n && total > max_bytes; i++) {
            if (strcmp(v[i].name, keep) == 0)
                continue;
            if (unlinkat(dirfd(d), v[i].name, 0) == 0 || errno == ENOENT) {
                total -= (unsigned long long)v[i].size;
                deleted++;
            }
        }
        rc = deleted;
    }
    for (size_t i = 0; i < n; i++)
        cgprof_free(v[i].name);
    cgprof_free(v);
    closedir(d);
    return rc;
}

int cgprof_file_sink_write(const struct cgprof_profile *p, const char *dir,
                           size_t max_dir_bytes, char *path_out, size_t path_n)
{
    if (!p || !dir || !dir[0])
        return CGPROF_EINVAL;
    char name[NAME_PART_MAX + 1];
    sanitize(p->group_name, name, sizeof(name));
    uint64_t start = p->start_ms ? p->start_ms : cgprof_epoch_ms();
    time_t sec = (time_t)(start / 1000);
    struct tm tm;
    char stamp[32];
    if (!gmtime_r(&sec, &tm) || strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm) == 0)
        snprintf(stamp, sizeof(stamp), "19700101T000000Z");
    char file[NAME_MAX + 1];
    int fn = snprintf(file, sizeof(file), "%s-%d-%s-%llu" SINK_SUFFIX, name, p->pid, stamp,
                      (unsigned long long)start);
    if (fn < 0 || (size_t)fn >= sizeof(file))
        return CGPROF_EINVAL;
    char path[PATH_MAX];
    size_t dlen = strlen(dir);
    const char *sep = dir[dlen - 1] == '/' ? "" : "/";
    int pn = snprintf(path, sizeof(path), "%s%s%s", dir, sep, file);
    if (pn < 0 || (size_t)pn >= sizeof(path))
        return CGPROF_EINVAL;
    if (path_out && (size_t)pn >= path_n)
        return CGPROF_ETOOBIG;

    int rc = cgprof_mkdir_p(dir, 0755);
    if (rc)
        return rc;
    rc = cgprof_profile_save_file(p, path);
    if (rc)
        return rc;
    if (max_dir_bytes > 0) {
        int deleted = enforce_cap(dir, max_dir_bytes, file);
        if (deleted > 0)
            cgprof_info("file sink: deleted %d oldest profile(s) in %s to stay under %zu bytes",
                        deleted, dir, max_dir_bytes);
        else if (deleted < 0)
            cgprof_warn("file sink: cannot apply the size cap in %s: %s", dir,
                        cgprof_strerror(deleted));
    }
    if (path_out)
        memcpy(path_out, path, (size_t)pn + 1);
    return 0;
}
