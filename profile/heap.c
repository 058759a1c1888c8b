/* The heap summary part of a profile (heapSummaryEnabled:true): data
 * points of total capacity, used space, RSS and the sampled live estimate,
 * and allocation sites with their summed live-byte and live-object
 * estimates; adding, merging, freeing, and its CodeGuru JSON section
 * ("heapSummary", documented in codeguru_json.c). The sampler fills it
 * (sampler/heap.c); the report reads it. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "profile_int.h"

/* ---- the model ----------------------------------------------------------- */

void cgprof__profile_heap_cleanup(struct cgprof_profile *p)
{
    struct cgprof_heap_summary *h = &p->heap;
    for (size_t i = 0; i < h->nsites; i++)
        cgprof_free(h->sites[i].frames);
    cgprof_free(h->sites);
    cgprof_free(h->points);
    memset(h, 0, sizeof(*h));
}

size_t cgprof__profile_heap_memory(const struct cgprof_profile *p)
{
    const struct cgprof_heap_summary *h = &p->heap;
    size_t sum = h->points_cap * sizeof(*h->points) + h->sites_cap * sizeof(*h->sites);
    for (size_t i = 0; i < h->nsites; i++)
        sum += h->sites[i].nframes * sizeof(char *);
    return sum;
}

/* Drops every other point (the oldest of each pair), keeping the newest. */
static void thin_points(struct cgprof_heap_summary *h)
{
    size_t k = 0;
    for (size_t i = h->npoints % 2; i < h->npoints; i += 2)
        h->points[k++] = h->points[i];
    h->npoints = k;
}

static int push_point(struct cgprof_heap_summary *h, const struct cgprof_heap_point *pt)
{
    if (h->npoints == CGPROF_HEAP_MAX_POINTS)
        thin_points(h);
    if (h->npoints == h->points_cap) {
        size_t cap = h->points_cap ? h->points_cap * 2 : 64;
        if (cap > CGPROF_HEAP_MAX_POINTS)
            cap = CGPROF_HEAP_MAX_POINTS;
        struct cgprof_heap_point *np = cgprof_realloc(h->points, cap * sizeof(*np));
        if (!np)
            return CGPROF_ENOMEM;
        h->points = np;
        h->points_cap = cap;
    }
    h->points[h->npoints++] = *pt;
    if (pt->used > h->peak_used)
        h->peak_used = pt->used;
    if (pt->rss > h->peak_rss)
        h->peak_rss = pt->rss;
    return 0;
}

/* Tests: test/unit/profile/test_heap.c */
int cgprof_profile_heap_add_point(struct cgprof_profile *p, const struct cgprof_heap_point *pt)
{
    p->heap.present = true;
    p->heap.snapshots++;
    return push_point(&p->heap, pt);
}

static uint64_t frames_hash(const char *const *frames, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint64_t)(uintptr_t)frames[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 33;
    }
    return h;
}

/* The site with exactly these interned frames, created when missing (or
 * the catch-all site when the table is full). NULL on OOM. */
static struct cgprof_heap_site *site_of(struct cgprof_profile *p, const char **frames,
                                        size_t n)
{
    struct cgprof_heap_summary *h = &p->heap;
    uint64_t hash = frames_hash(frames, n);
    for (size_t i = 0; i < h->nsites; i++) {
        struct cgprof_heap_site *s = &h->sites[i];
        if (s->hash == hash && s->nframes == n &&
            memcmp(s->frames, frames, n * sizeof(*frames)) == 0)
            return s;
    }
    if (h->nsites >= CGPROF_HEAP_MAX_SITES) {
        const char *other = cgprof_profile_intern(p, CGPROF_HEAP_OTHER_SITES,
                                                  strlen(CGPROF_HEAP_OTHER_SITES));
        if (!other)
            return NULL;
        if (n == 1 && frames[0] == other)
            return NULL; /* the catch-all itself did not fit: cannot happen */
        const char *one[1] = { other };
        for (size_t i = 0; i < h->nsites; i++)
            if (h->sites[i].nframes == 1 && h->sites[i].frames[0] == other)
                return &h->sites[i];
        /* Replace the last site by the catch-all, keeping its figures. */
        struct cgprof_heap_site *s = &h->sites[h->nsites - 1];
        s->frames[0] = other;
        s->nframes = 1;
        s->hash = frames_hash(one, 1);
        return s;
    }
    if (h->nsites == h->sites_cap) {
        size_t cap = h->sites_cap ? h->sites_cap * 2 : 16;
        struct cgprof_heap_site *ns = cgprof_realloc(h->sites, cap * sizeof(*ns));
        if (!ns)
            return NULL;
        h->sites = ns;
        h->sites_cap = cap;
    }
    const char **copy = cgprof_malloc((n ? n : 1) * sizeof(*copy));
    if (!copy)
        return NULL;
    memcpy(copy, frames, n * sizeof(*copy));
    struct cgprof_heap_site *s = &h->sites[h->nsites++];
    memset(s, 0, sizeof(*s));
    s->frames = copy;
    s->nframes = n;
    s->hash = hash;
    return s;
}

#define MAX_SITE_FRAMES 4096

/* Tests: test/unit/profile/test_heap.c */
int cgprof_profile_heap_add_site(struct cgprof_profile *p, const char *const *frames,
                                 size_t n, double bytes, double objects)
{
    const char *interned[MAX_SITE_FRAMES];
    if (n > MAX_SITE_FRAMES)
        n = MAX_SITE_FRAMES;
    for (size_t i = 0; i < n; i++) {
        interned[i] = cgprof_profile_intern(p, frames[i], strlen(frames[i]));
        if (!interned[i])
            return CGPROF_ENOMEM;
    }
    p->heap.present = true;
    struct cgprof_heap_site *s = site_of(p, interned, n);
    if (!s)
        return CGPROF_ENOMEM;
    s->bytes_sum += bytes;
    s->objects_sum += objects;
    if (bytes > s->peak_bytes)
        s->peak_bytes = bytes;
    s->points++;
    return 0;
}

double cgprof_heap_site_avg_bytes(const struct cgprof_heap_site *s)
{
    return s->points ? s->bytes_sum / (double)s->points : 0;
}

double cgprof_heap_site_avg_objects(const struct cgprof_heap_site *s)
{
    return s->points ? s->objects_sum / (double)s->points : 0;
}

bool cgprof_heap_site_incomplete(const struct cgprof_heap_summary *h,
                                 const struct cgprof_heap_site *s)
{
    return s->points < h->snapshots;
}

static int cmp_point(const void *a, const void *b)
{
    const struct cgprof_heap_point *x = a, *y = b;
    return x->time_ms < y->time_ms ? -1 : x->time_ms > y->time_ms;
}

/* Sites are matched by frames; points are interleaved by time.
 * Tests: test/unit/profile/test_heap.c */
int cgprof__profile_heap_merge(struct cgprof_profile *dst, const struct cgprof_profile *src)
{
    const struct cgprof_heap_summary *sh = &src->heap;
    struct cgprof_heap_summary *dh = &dst->heap;
    if (!sh->present)
        return 0;
    if (!dh->present) {
        dh->tracked = sh->tracked;
        memcpy(dh->allocator, sh->allocator, sizeof(dh->allocator));
        dh->interval_bytes = sh->interval_bytes;
        dh->threshold_permille = sh->threshold_permille;
    } else {
        dh->tracked = dh->tracked && sh->tracked;
    }
    dh->present = true;
    dh->incomplete = dh->incomplete || sh->incomplete;
    dh->snapshots += sh->snapshots;
    dh->samples += sh->samples;
    dh->lost += sh->lost;
    bool sorted = true;
    for (size_t i = 0; i < sh->npoints; i++) {
        if (dh->npoints && sh->points[i].time_ms < dh->points[dh->npoints - 1].time_ms)
            sorted = false;
        if (push_point(dh, &sh->points[i]) != 0)
            return CGPROF_ENOMEM;
    }
    if (!sorted)
        qsort(dh->points, dh->npoints, sizeof(*dh->points), cmp_point);
    if (sh->peak_used > dh->peak_used)
        dh->peak_used = sh->peak_used;
    if (sh->peak_rss > dh->peak_rss)
        dh->peak_rss = sh->peak_rss;
    for (size_t i = 0; i < sh->nsites; i++) {
        const struct cgprof_heap_site *s = &sh->sites[i];
        const char *interned[MAX_SITE_FRAMES];
        size_t n = s->nframes < MAX_SITE_FRAMES ? s->nframes : MAX_SITE_FRAMES;
        for (size_t k = 0; k < n; k++) {
            interned[k] = cgprof_profile_intern(dst, s->frames[k], strlen(s->frames[k]));
            if (!interned[k])
                return CGPROF_ENOMEM;
        }
        struct cgprof_heap_site *d = site_of(dst, interned, n);
        if (!d)
            return CGPROF_ENOMEM;
        d->bytes_sum += s->bytes_sum;
        d->objects_sum += s->objects_sum;
        d->points += s->points;
        if (s->peak_bytes > d->peak_bytes)
            d->peak_bytes = s->peak_bytes;
    }
    return 0;
}

/* ---- CodeGuru JSON section ------------------------------------------------ */

#define APPEND_LIT(b, lit) cgprof_buf_append((b), (lit), sizeof(lit) - 1)

static int append_num(struct cgprof_buf *b, double v)
{
    if (!isfinite(v) || v < 0)
        v = 0;
    if (v < 9e15 && v == floor(v))
        return cgprof_buf_printf(b, "%.0f", v);
    return cgprof_buf_printf(b, "%.17g", v);
}

static int append_u64(struct cgprof_buf *b, uint64_t v)
{
    if (v > (uint64_t)INT64_MAX)
        v = (uint64_t)INT64_MAX;
    return cgprof_buf_printf(b, "%llu", (unsigned long long)v);
}

/* Appends ", \"heapSummary\": {...}" when the profile has a heap summary.
 * Tests: test/unit/profile/test_heap.c */
int cgprof__profile_heap_encode(const struct cgprof_profile *p, struct cgprof_buf *b)
{
    const struct cgprof_heap_summary *h = &p->heap;
    if (!h->present)
        return 0;
    int rc = APPEND_LIT(b, ", \"heapSummary\": {\"samplingIntervalBytes\": ");
    if (rc == 0)
        rc = append_u64(b, h->interval_bytes);
    if (rc == 0)
        rc = cgprof_buf_printf(b, ", \"thresholdPermille\": %u, \"allocator\": ",
                               h->threshold_permille);
    if (rc == 0)
        rc = cgprof__json_append_string(b, h->allocator);
    if (rc == 0)
        rc = cgprof_buf_printf(b, ", \"tracked\": %s, \"incomplete\": %s, \"snapshots\": ",
                               h->tracked ? "true" : "false", h->incomplete ? "true" : "false");
    if (rc == 0)
        rc = append_u64(b, h->snapshots);
    if (rc == 0)
        rc = APPEND_LIT(b, ", \"samples\": ");
    if (rc == 0)
        rc = append_u64(b, h->samples);
    if (rc == 0)
        rc = APPEND_LIT(b, ", \"lostSamples\": ");
    if (rc == 0)
        rc = append_u64(b, h->lost);
    if (rc == 0)
        rc = APPEND_LIT(b, ", \"peakUsedBytes\": ");
    if (rc == 0)
        rc = append_u64(b, h->peak_used);
    if (rc == 0)
        rc = APPEND_LIT(b, ", \"peakRssBytes\": ");
    if (rc == 0)
        rc = append_u64(b, h->peak_rss);
    if (rc == 0)
        rc = APPEND_LIT(b, ", \"seriesFields\": [\"timestamp\", \"totalCapacity\", "
                           "\"usedSpace\", \"rss\", \"sampledLive\"], \"series\": [");
    for (size_t i = 0; rc == 0 && i < h->npoints; i++) {
        const struct cgprof_heap_point *pt = &h->points[i];
        rc = i ? APPEND_LIT(b, ", [") : APPEND_LIT(b, "[");
        uint64_t v[5] = { pt->time_ms, pt->capacity, pt->used, pt->rss, pt->sampled };
        for (int k = 0; rc == 0 && k < 5; k++) {
            if (k)
                rc = APPEND_LIT(b, ", ");
            if (rc == 0)
                rc = append_u64(b, v[k]);
        }
        if (rc == 0)
            rc = APPEND_LIT(b, "]");
    }
    if (rc == 0)
        rc = APPEND_LIT(b, "], \"sites\": [");
    for (size_t i = 0; rc == 0 && i < h->nsites; i++) {
        const struct cgprof_heap_site *s = &h->sites[i];
        rc = i ? APPEND_LIT(b, ", {\"frames\": [") : APPEND_LIT(b, "{\"frames\": [");
        for (size_t k = 0; rc == 0 && k < s->nframes; k++) {
            if (k)
                rc = APPEND_LIT(b, ", ");
            if (rc == 0)
                rc = cgprof__json_append_string(b, s->frames[k]);
        }
        if (rc == 0)
            rc = APPEND_LIT(b, "], \"liveBytesSum\": ");
        if (rc == 0)
            rc = append_num(b, s->bytes_sum);
        if (rc == 0)
            rc = APPEND_LIT(b, ", \"liveObjectsSum\": ");
        if (rc == 0)
            rc = append_num(b, s->objects_sum);
        if (rc == 0)
            rc = APPEND_LIT(b, ", \"peakLiveBytes\": ");
        if (rc == 0)
            rc = append_num(b, s->peak_bytes);
        if (rc == 0)
            rc = APPEND_LIT(b, ", \"points\": ");
        if (rc == 0)
            rc = append_u64(b, s->points);
        if (rc == 0)
            rc = APPEND_LIT(b, "}");
    }
    if (rc == 0)
        rc = APPEND_LIT(b, "]}");
    return rc;
}

static uint64_t get_u64(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        return (uint64_t)json_integer_value(v);
    if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) < 1.8e19)
        return (uint64_t)json_real_value(v);
    return 0;
}

static double get_num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    double d = json_is_number(v) ? json_number_value(v) : 0;
    return isfinite(d) && d >= 0 ? d : 0;
}

/* Lenient, like the rest of the metadata: wrong types keep defaults, a
 * malformed point or site is skipped. Returns 0 or CGPROF_ENOMEM.
 * Tests: test/unit/profile/test_heap.c */
int cgprof__profile_heap_decode(struct cgprof_profile *p, const struct json_t *obj)
{
    struct cgprof_heap_summary *h = &p->heap;
    if (!json_is_object(obj))
        return 0;
    h->present = true;
    h->interval_bytes = get_u64(obj, "samplingIntervalBytes");
    uint64_t th = get_u64(obj, "thresholdPermille");
    h->threshold_permille = th > 1000 ? 1000 : (unsigned)th;
    const json_t *a = json_object_get(obj, "allocator");
    if (json_is_string(a))
        snprintf(h->allocator, sizeof(h->allocator), "%s", json_string_value(a));
    h->tracked = json_is_true(json_object_get(obj, "tracked"));
    h->incomplete = json_is_true(json_object_get(obj, "incomplete"));
    h->samples = get_u64(obj, "samples");
    h->lost = get_u64(obj, "lostSamples");
    const json_t *series = json_object_get(obj, "series");
    size_t i;
    const json_t *v;
    if (json_is_array(series)) {
        json_array_foreach(series, i, v) {
            if (!json_is_array(v) || json_array_size(v) < 5)
                continue;
            uint64_t f[5];
            for (size_t k = 0; k < 5; k++) {
                const json_t *x = json_array_get(v, k);
                double d = json_is_number(x) ? json_number_value(x) : 0;
                f[k] = isfinite(d) && d > 0 && d < 1.8e19 ? (uint64_t)d : 0;
                if (json_is_integer(x) && json_integer_value(x) >= 0)
                    f[k] = (uint64_t)json_integer_value(x);
            }
            struct cgprof_heap_point pt = { f[0], f[1], f[2], f[3], f[4] };
            if (push_point(h, &pt) != 0)
                return CGPROF_ENOMEM;
        }
    }
    /* After the points: the stored peaks win over the ones recomputed. */
    uint64_t snaps = get_u64(obj, "snapshots");
    h->snapshots = snaps > h->npoints ? snaps : h->npoints;
    uint64_t pu = get_u64(obj, "peakUsedBytes"), pr = get_u64(obj, "peakRssBytes");
    if (pu > h->peak_used)
        h->peak_used = pu;
    if (pr > h->peak_rss)
        h->peak_rss = pr;
    const json_t *sites = json_object_get(obj, "sites");
    if (!json_is_array(sites))
        return 0;
    const char *frames[MAX_SITE_FRAMES];
    json_array_foreach(sites, i, v) {
        const json_t *fr = json_object_get(v, "frames");
        if (!json_is_array(fr))
            continue;
        size_t n = 0, k;
        const json_t *f;
        bool ok = true;
        json_array_foreach(fr, k, f) {
            if (!json_is_string(f) || n == MAX_SITE_FRAMES) {
                ok = false;
                break;
            }
            frames[n++] = json_string_value(f);
        }
        if (!ok)
            continue;
        const char *interned[MAX_SITE_FRAMES];
        for (k = 0; k < n; k++) {
            interned[k] = cgprof_profile_intern(p, frames[k], strlen(frames[k]));
            if (!interned[k])
                return CGPROF_ENOMEM;
        }
        struct cgprof_heap_site *s = site_of(p, interned, n);
        if (!s)
            return CGPROF_ENOMEM;
        s->bytes_sum += get_num(v, "liveBytesSum");
        s->objects_sum += get_num(v, "liveObjectsSum");
        double peak = get_num(v, "peakLiveBytes");
        if (peak > s->peak_bytes)
            s->peak_bytes = peak;
        s->points += get_u64(v, "points");
    }
    return 0;
}
