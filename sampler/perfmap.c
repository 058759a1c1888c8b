/* JIT symbol maps: /tmp/perf-<pid>.map as Node --perf-basic-prof, Python
 * -X perf and JVM perf-map agents write it ("START SIZE name", hex). Read
 * incrementally on the agent thread; lookups see disjoint segments in which
 * later lines win over earlier overlapping ones. ELF symbols: symtab.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/common.h"
#include "sampler_int.h"

#define PERFMAP_MAX_ENTRIES  1000000u
#define PERFMAP_MAX_NAMES    (256u * 1024 * 1024)
#define PERFMAP_MAX_NAME     4095u
#define PERFMAP_READ_CHUNK   (64u * 1024)
#define PERFMAP_NAME_CHUNK   (1024u * 1024)

/* An address range and the name that covers it. */
struct pm_seg {
    uint64_t start;
    uint64_t end;
    const char *name;
};

/* A map line waiting to be merged; seq orders lines of one batch. */
struct pm_line {
    uint64_t start;
    uint64_t end;
    const char *name;
    size_t seq;
};

/* Names live in chunks that never move, so returned names stay valid
 * until the map is reset (file replaced) or freed. */
struct pm_chunk {
    struct pm_chunk *next;
    size_t used;
    size_t cap;
    char data[];
};

struct cgprof__perfmap {
    char *path;
    bool have_file;
    dev_t dev;
    ino_t ino;
    uint64_t offset;        /* bytes consumed: complete lines only */
    bool skip_line;         /* discarding the rest of an overlong line */
    struct pm_seg *segs;    /* sorted by start, disjoint */
    size_t nsegs;
    struct pm_chunk *chunks;
    size_t name_bytes;
    size_t entries;         /* lines accepted since the last reset */
    bool full;              /* a bound was reached: add nothing more */
    bool warned;
};

struct cgprof__perfmap *cgprof__perfmap_new_path(const char *path)
{
    struct cgprof__perfmap *m = cgprof_calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->path = cgprof_strdup(path);
    if (!m->path) {
        cgprof_free(m);
        return NULL;
    }
    return m;
}

struct cgprof__perfmap *cgprof__perfmap_new(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/perf-%ld.map", (long)pid);
    return cgprof__perfmap_new_path(path);
}

/* Drops every entry and name: the file is read again from its start. */
static void reset(struct cgprof__perfmap *m)
{
    cgprof_free(m->segs);
    m->segs = NULL;
    m->nsegs = 0;
    while (m->chunks) {
        struct pm_chunk *c = m->chunks;
        m->chunks = c->next;
        cgprof_free(c);
    }
    m->name_bytes = 0;
    m->entries = 0;
    m->offset = 0;
    m->skip_line = false;
    m->full = false;
}

void cgprof__perfmap_free(struct cgprof__perfmap *m)
{
    if (!m)
        return;
    reset(m);
    cgprof_free(m->path);
    cgprof_free(m);
}

static void mark_full(struct cgprof__perfmap *m)
{
    m->full = true;
    if (!m->warned) {
        m->warned = true;
        cgprof_warn("perf map %s: over %u entries or %u MiB of names, ignoring the rest",
                    m->path, PERFMAP_MAX_ENTRIES, PERFMAP_MAX_NAMES >> 20);
    }
}

/* Copies a name into the chunk store; NULL on OOM or past the bound. */
static const char *store_name(struct cgprof__perfmap *m, const char *s, size_t n)
{
    if (m->name_bytes + n + 1 > PERFMAP_MAX_NAMES) {
        mark_full(m);
        return NULL;
    }
    struct pm_chunk *c = m->chunks;
    if (!c || c->cap - c->used < n + 1) {
        size_t cap = n + 1 > PERFMAP_NAME_CHUNK ? n + 1 : PERFMAP_NAME_CHUNK;
        c = cgprof_malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->next = m->chunks;
        c->used = 0;
        c->cap = cap;
        m->chunks = c;
    }
    char *d = c->data + c->used;
    memcpy(d, s, n);
    d[n] = '\0';
    c->used += n + 1;
    m->name_bytes += n + 1;
    return d;
}

/* Parses a hex number with an optional 0x prefix; *p advances past it. */
static bool parse_hex(const char **p, const char *end, uint64_t *out)
{
    const char *s = *p;
    if (end - s >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        s += 2;
    uint64_t v = 0;
    int digits = 0;
    for (; s < end; s++, digits++) {
        int d;
        if (*s >= '0' && *s <= '9')
            d = *s - '0';
        else if (*s >= 'a' && *s <= 'f')
            d = *s - 'a' + 10;
        else if (*s >= 'A' && *s <= 'F')
            d = *s - 'A' + 10;
        else
            break;
        if (digits == 16)
            return false;
        v = v << 4 | (uint64_t)d;
    }
    if (digits == 0)
        return false;
    *out = v;
    *p = s;
    return true;
}

static const char *skip_blank(const char *s, const char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    return s;
}

#ifdef CGPROF_UNIT_TEST
bool perfmap_parse_line(const char *line, size_t len, uint64_t *start, uint64_t *size,
                        const char **name, size_t *name_len);
#endif

/* Splits one line (without its '\n') into start, size and name. The name
 * is the rest of the line and may hold spaces and colons. False for lines
 * that are malformed or cover nothing.
 * Tests: test/unit/sampler/test_perfmap.c */
CGPROF_STATIC bool perfmap_parse_line(const char *line, size_t len, uint64_t *start,
                                      uint64_t *size, const char **name, size_t *name_len)
{
    const char *end = line + len;
    if (end > line && end[-1] == '\r')
        end--;
    const char *p = skip_blank(line, end);
    if (!parse_hex(&p, end, start) || p == end || (*p != ' ' && *p != '\t'))
        return false;
    p = skip_blank(p, end);
    if (!parse_hex(&p, end, size) || p == end || (*p != ' ' && *p != '\t'))
        return false;
    p = skip_blank(p, end);
    if (p == end || *size == 0)
        return false;
    *name = p;
    *name_len = (size_t)(end - p);
    if (*name_len > PERFMAP_MAX_NAME)
        *name_len = PERFMAP_MAX_NAME;
    return true;
}

static int line_cmp(const void *pa, const void *pb)
{
    const struct pm_line *a = pa, *b = pb;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Max-heap of batch indices ordered by seq (the latest line on top). */
static void heap_push(size_t *h, size_t *n, const struct pm_line *b, size_t v)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (b[h[parent]].seq >= b[v].seq)
            break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = v;
}

static void heap_pop(size_t *h, size_t *n, const struct pm_line *b)
{
    size_t v = h[--(*n)], i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && b[h[c + 1]].seq > b[h[c]].seq)
            c++;
        if (b[v].seq >= b[h[c]].seq)
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0)
        h[i] = v;
}

/* Turns a batch of possibly overlapping lines into disjoint segments where
 * the latest line wins (a sweep over starts and ends with a heap keyed by
 * line order). out needs room for 2 * k segments. Returns the count, or
 * -1 on OOM. Sorts b. */
static long resolve_batch(struct pm_line *b, size_t k, struct pm_seg *out)
{
    size_t *heap = cgprof_malloc(k * sizeof(*heap));
    if (!heap)
        return -1;
    qsort(b, k, sizeof(*b), line_cmp);
    size_t hn = 0, i = 0, n = 0;
    uint64_t pos = 0;
    while (i < k || hn > 0) {
        if (hn == 0)
            pos = b[i].start;
        while (i < k && b[i].start <= pos)
            heap_push(heap, &hn, b, i++);
        while (hn > 0 && b[heap[0]].end <= pos)
            heap_pop(heap, &hn, b);
        if (hn == 0)
            continue;
        const struct pm_line *top = &b[heap[0]];
        uint64_t next = top->end;
        if (i < k && b[i].start < next)
            next = b[i].start;
        if (n > 0 && out[n - 1].end == pos && out[n - 1].name == top->name)
            out[n - 1].end = next;
        else
            out[n++] = (struct pm_seg){ pos, next, top->name };
        pos = next;
    }
    cgprof_free(heap);
    return (long)n;
}

/* Lays the new disjoint segments nw over the old ones: old ranges keep
 * only the parts no new segment covers. Replaces m->segs; -1 on OOM
 * (m unchanged). */
static int overlay(struct cgprof__perfmap *m, const struct pm_seg *nw, size_t k)
{
    const struct pm_seg *old = m->segs;
    size_t n = m->nsegs;
    struct pm_seg *pieces = cgprof_malloc((n + k + 1) * sizeof(*pieces));
    struct pm_seg *res = cgprof_malloc((n + 2 * k + 1) * sizeof(*res));
    if (!pieces || !res) {
        cgprof_free(pieces);
        cgprof_free(res);
        return -1;
    }
    size_t np = 0, j = 0;
    for (size_t i = 0; i < n; i++) {
        while (j < k && nw[j].end <= old[i].start)
            j++;
        uint64_t cur = old[i].start;
        for (size_t jj = j; jj < k && nw[jj].start < old[i].end; jj++) {
            if (nw[jj].start > cur)
                pieces[np++] = (struct pm_seg){ cur, nw[jj].start, old[i].name };
            if (nw[jj].end > cur)
                cur = nw[jj].end;
        }
        if (cur < old[i].end)
            pieces[np++] = (struct pm_seg){ cur, old[i].end, old[i].name };
    }
    size_t a = 0, b = 0, r = 0;
    while (a < np || b < k) {
        if (b == k || (a < np && pieces[a].start < nw[b].start))
            res[r++] = pieces[a++];
        else
            res[r++] = nw[b++];
    }
    cgprof_free(pieces);
    cgprof_free(m->segs);
    m->segs = res;
    m->nsegs = r;
    return 0;
}

/* Adds one parsed line to the batch, within the entry and name bounds. */
static int add_line(struct cgprof__perfmap *m, struct pm_line **batch, size_t *k, size_t *cap,
                    const char *line, size_t len)
{
    uint64_t start, size;
    const char *name;
    size_t nlen;
    if (!perfmap_parse_line(line, len, &start, &size, &name, &nlen))
        return 0;
    if (m->entries >= PERFMAP_MAX_ENTRIES) {
        mark_full(m);
        return 0;
    }
    if (*k == *cap) {
        size_t ncap = *cap ? *cap * 2 : 256;
        struct pm_line *nb = cgprof_realloc(*batch, ncap * sizeof(*nb));
        if (!nb)
            return CGPROF_ENOMEM;
        *batch = nb;
        *cap = ncap;
    }
    const char *stored = store_name(m, name, nlen);
    if (!stored)
        return m->full ? 0 : CGPROF_ENOMEM;
    uint64_t end = start + size < start ? UINT64_MAX : start + size;
    (*batch)[*k] = (struct pm_line){ start, end, stored, *k };
    (*k)++;
    m->entries++;
    return 0;
}

/* Reads complete lines from m->offset on; a partial last line is left for
 * the next call, a line longer than the read chunk is skipped. */
static int read_lines(struct cgprof__perfmap *m, int fd, struct pm_line **batch, size_t *k,
                      size_t *cap)
{
    char *buf = cgprof_malloc(PERFMAP_READ_CHUNK);
    if (!buf)
        return CGPROF_ENOMEM;
    int rc = 0;
    while (!m->full) {
        ssize_t got = pread(fd, buf, PERFMAP_READ_CHUNK, (off_t)m->offset);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = -errno;
            break;
        }
        if (got == 0)
            break;
        const char *p = buf, *end = buf + got;
        if (m->skip_line) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl) {
                m->offset += (uint64_t)got;
                continue;
            }
            m->skip_line = false;
            m->offset += (uint64_t)(nl + 1 - p);
            p = nl + 1;
        }
        const char *nl;
        while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            if ((rc = add_line(m, batch, k, cap, p, (size_t)(nl - p))) != 0)
                goto out;
            m->offset += (uint64_t)(nl + 1 - p);
            p = nl + 1;
        }
        if (p == buf && (size_t)got == PERFMAP_READ_CHUNK) {
            /* No newline in a whole chunk: drop this overlong line. */
            m->skip_line = true;
            m->offset += (uint64_t)got;
            continue;
        }
        if ((size_t)got < PERFMAP_READ_CHUNK)
            break;  /* end of file; a partial last line waits */
    }
out:
    cgprof_free(buf);
    return rc;
}

int cgprof__perfmap_refresh(struct cgprof__perfmap *m)
{
    if (!m)
        return CGPROF_EINVAL;
    int fd = open(m->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (st.st_uid != geteuid() && st.st_uid != 0)) {
        /* Not a file the process (or root) wrote: never trust it. */
        close(fd);
        return 0;
    }
    if (m->have_file && (st.st_dev != m->dev || st.st_ino != m->ino ||
                         (uint64_t)st.st_size < m->offset))
        reset(m);
    m->have_file = true;
    m->dev = st.st_dev;
    m->ino = st.st_ino;

    struct pm_line *batch = NULL;
    size_t k = 0, cap = 0;
    uint64_t offset0 = m->offset;
    size_t entries0 = m->entries;
    bool skip0 = m->skip_line;
    int rc = read_lines(m, fd, &batch, &k, &cap);
    close(fd);
    if (rc == 0 && k > 0) {
        struct pm_seg *segs = cgprof_malloc(2 * k * sizeof(*segs));
        long ns = segs ? resolve_batch(batch, k, segs) : -1;
        if (ns < 0 || overlay(m, segs, (size_t)ns) != 0)
            rc = CGPROF_ENOMEM;
        cgprof_free(segs);
    }
    cgprof_free(batch);
    if (rc != 0) {
        /* Read these lines again next time; their stored names are lost
         * space, bounded by PERFMAP_MAX_NAMES. */
        m->offset = offset0;
        m->entries = entries0;
        m->skip_line = skip0;
        return rc;
    }
    return (int)k;
}

const char *cgprof__perfmap_lookup(const struct cgprof__perfmap *m, uint64_t addr)
{
    if (!m || m->nsegs == 0)
        return NULL;
    /* Last segment starting at or below addr (branchless search). */
    const struct pm_seg *b = m->segs;
    size_t len = m->nsegs;
    while (len > 1) {
        size_t half = len / 2;
        b = b[half].start <= addr ? b + half : b;
        len -= half;
    }
    if (b->start > addr || addr >= b->end)
        return NULL;
    return b->name;
}
