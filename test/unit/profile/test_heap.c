/* Unit tests for profile/heap.c: data points and sites accumulate, the
 * incomplete-data rule, thinning past the point cap, the site cap's
 * catch-all, merge by frames, the "heapSummary" JSON section round trip
 * (and its absence when heap tracking was off), reset and cleanup. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "helpers.h"
#include "../../../profile/profile_int.h"

static const char *const site_a[] = { "app:main", "app:leak_a" };
static const char *const site_b[] = { "app:main", "app:leak_b", "libc.so.6:malloc" };

static void fill(struct cgprof_profile *p)
{
    struct cgprof_heap_point pt = { 1700000000000ull, 4ull << 30, 80u << 20, 100u << 20, 81u << 20 };
    p->heap.interval_bytes = 524288;
    p->heap.threshold_permille = 5;
    p->heap.tracked = true;
    snprintf(p->heap.allocator, sizeof(p->heap.allocator), "glibc");
    p->heap.samples = 170;
    for (int i = 0; i < 3; i++) {
        pt.time_ms += 1000;
        pt.used += 1u << 20;
        ck_assert_int_eq(cgprof_profile_heap_add_point(p, &pt), 0);
        ck_assert_int_eq(cgprof_profile_heap_add_site(p, site_a, 2, 60.0 * (1 << 20), 3840), 0);
        if (i > 0)
            ck_assert_int_eq(cgprof_profile_heap_add_site(p, site_b, 3, 20.0 * (1 << 20) + i, 20480), 0);
    }
}

static const struct cgprof_heap_site *find(const struct cgprof_profile *p, const char *leaf)
{
    for (size_t i = 0; i < p->heap.nsites; i++) {
        const struct cgprof_heap_site *s = &p->heap.sites[i];
        if (s->nframes && strcmp(s->frames[s->nframes - 1], leaf) == 0)
            return s;
    }
    return NULL;
}

START_TEST(test_heap_add_points_and_sites)
{
    struct cgprof_profile p;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    ck_assert(!p.heap.present);
    fill(&p);
    ck_assert(p.heap.present);
    ck_assert_uint_eq(p.heap.snapshots, 3);
    ck_assert_uint_eq(p.heap.npoints, 3);
    ck_assert_uint_eq(p.heap.nsites, 2);
    ck_assert_uint_eq(p.heap.peak_used, (80u << 20) + (3u << 20));
    const struct cgprof_heap_site *a = find(&p, "app:leak_a"), *b = find(&p, "libc.so.6:malloc");
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(a->points, 3);
    ck_assert(fabs(cgprof_heap_site_avg_bytes(a) - 60.0 * (1 << 20)) < 1e-6);
    ck_assert(fabs(cgprof_heap_site_avg_objects(a) - 3840) < 1e-9);
    ck_assert(!cgprof_heap_site_incomplete(&p.heap, a));
    /* b missed the first data point: incomplete, averaged over its two. */
    ck_assert_uint_eq(b->points, 2);
    ck_assert(cgprof_heap_site_incomplete(&p.heap, b));
    ck_assert(fabs(cgprof_heap_site_avg_bytes(b) - (20.0 * (1 << 20) + 1.5)) < 1e-6);
    ck_assert(fabs(b->peak_bytes - (20.0 * (1 << 20) + 2)) < 1e-6);
    ck_assert_uint_gt(cgprof_profile_memory(&p), p.heap.nsites * sizeof(struct cgprof_heap_site));
    ck_assert_int_eq(cgprof_profile_reset(&p), 0);
    ck_assert(!p.heap.present);
    ck_assert_uint_eq(p.heap.nsites, 0);
    ck_assert_ptr_null(p.heap.points);
    cgprof_profile_cleanup(&p);
}
END_TEST

START_TEST(test_heap_points_thinned_at_cap)
{
    struct cgprof_profile p;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    struct cgprof_heap_point pt = { 0, 1, 2, 3, 4 };
    for (unsigned i = 1; i <= CGPROF_HEAP_MAX_POINTS + 10; i++) {
        pt.time_ms = i;
        ck_assert_int_eq(cgprof_profile_heap_add_point(&p, &pt), 0);
    }
    ck_assert_uint_eq(p.heap.snapshots, CGPROF_HEAP_MAX_POINTS + 10);
    ck_assert_uint_le(p.heap.npoints, CGPROF_HEAP_MAX_POINTS);
    ck_assert_uint_ge(p.heap.npoints, CGPROF_HEAP_MAX_POINTS / 2);
    ck_assert_uint_eq(p.heap.points[p.heap.npoints - 1].time_ms, CGPROF_HEAP_MAX_POINTS + 10);
    for (size_t i = 1; i < p.heap.npoints; i++)
        ck_assert_uint_lt(p.heap.points[i - 1].time_ms, p.heap.points[i].time_ms);
    cgprof_profile_cleanup(&p);
}
END_TEST

START_TEST(test_heap_site_cap_catch_all)
{
    struct cgprof_profile p;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    char name[32];
    for (unsigned i = 0; i < CGPROF_HEAP_MAX_SITES + 50; i++) {
        snprintf(name, sizeof(name), "f%u", i);
        const char *fr[1] = { name };
        ck_assert_int_eq(cgprof_profile_heap_add_site(&p, fr, 1, 10, 1), 0);
    }
    ck_assert_uint_eq(p.heap.nsites, CGPROF_HEAP_MAX_SITES);
    const struct cgprof_heap_site *o = find(&p, CGPROF_HEAP_OTHER_SITES);
    ck_assert_ptr_nonnull(o);
    double total = 0;
    for (size_t i = 0; i < p.heap.nsites; i++)
        total += p.heap.sites[i].bytes_sum;
    ck_assert(fabs(total - 10.0 * (CGPROF_HEAP_MAX_SITES + 50)) < 1e-6); /* nothing lost */
    cgprof_profile_cleanup(&p);
}
END_TEST

START_TEST(test_heap_merge_by_frames)
{
    struct cgprof_profile a, b;
    ck_assert_int_eq(cgprof_profile_init(&a), 0);
    ck_assert_int_eq(cgprof_profile_init(&b), 0);
    fill(&a);
    fill(&b);
    for (size_t i = 0; i < b.heap.npoints; i++)
        b.heap.points[i].time_ms -= 10000;   /* b is older: merge sorts */
    b.heap.incomplete = true;
    ck_assert_int_eq(cgprof_profile_merge(&a, &b), 0);
    ck_assert_uint_eq(a.heap.snapshots, 6);
    ck_assert_uint_eq(a.heap.npoints, 6);
    for (size_t i = 1; i < a.heap.npoints; i++)
        ck_assert_uint_le(a.heap.points[i - 1].time_ms, a.heap.points[i].time_ms);
    ck_assert_uint_eq(a.heap.nsites, 2);
    ck_assert_uint_eq(find(&a, "app:leak_a")->points, 6);
    ck_assert_uint_eq(find(&a, "libc.so.6:malloc")->points, 4);
    ck_assert(a.heap.incomplete);
    ck_assert_uint_eq(a.heap.samples, 340);
    /* Merging into an empty profile copies everything. */
    struct cgprof_profile e;
    ck_assert_int_eq(cgprof_profile_init(&e), 0);
    ck_assert_int_eq(cgprof_profile_merge(&e, &b), 0);
    ck_assert(e.heap.present);
    ck_assert_str_eq(e.heap.allocator, "glibc");
    ck_assert_uint_eq(e.heap.interval_bytes, 524288);
    cgprof_profile_cleanup(&e);
    cgprof_profile_cleanup(&a);
    cgprof_profile_cleanup(&b);
}
END_TEST

START_TEST(test_heap_json_round_trip)
{
    struct cgprof_profile p, q;
    struct cgprof_buf b1, b2;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    ck_assert_int_eq(cgprof_profile_init(&q), 0);
    p.start_ms = 1700000000000ull;
    p.end_ms = p.start_ms + 5000;
    const char *st[] = { "main", "work" };
    ck_assert_int_eq(cgprof_profile_add_stack(&p, st, 2, CGPROF_COUNTER_RUNNABLE, 3), 0);
    /* Without a heap summary the document has no heapSummary key. */
    cgprof_buf_init(&b1, 1u << 20);
    ck_assert_int_eq(cgprof_profile_encode_codeguru(&p, &b1), 0);
    ck_assert_ptr_null(strstr(b1.data, "heapSummary"));
    cgprof_buf_cleanup(&b1);
    fill(&p);
    p.heap.incomplete = true;
    p.heap.lost = 2;
    cgprof_buf_init(&b1, 1u << 20);
    ck_assert_int_eq(cgprof_profile_encode_codeguru(&p, &b1), 0);
    ck_assert_ptr_nonnull(strstr(b1.data, "\"debugInfo\": "));
    ck_assert_ptr_nonnull(strstr(b1.data, ", \"heapSummary\": {\"samplingIntervalBytes\": 524288"));
    ck_assert_ptr_nonnull(strstr(b1.data, "\"frames\": [\"app:main\", \"app:leak_a\"]"));
    ck_assert_int_eq(cgprof_profile_decode_codeguru(&q, b1.data, b1.len), 0);
    ck_assert(q.heap.present && q.heap.tracked && q.heap.incomplete);
    ck_assert_uint_eq(q.heap.snapshots, 3);
    ck_assert_uint_eq(q.heap.npoints, 3);
    ck_assert_uint_eq(q.heap.lost, 2);
    ck_assert_uint_eq(q.heap.points[2].used, p.heap.points[2].used);
    ck_assert_uint_eq(q.heap.points[1].capacity, 4ull << 30);
    ck_assert_uint_eq(q.heap.nsites, 2);
    ck_assert(cgprof_heap_site_incomplete(&q.heap, find(&q, "libc.so.6:malloc")));
    cgprof_buf_init(&b2, 1u << 20);
    ck_assert_int_eq(cgprof_profile_encode_codeguru(&q, &b2), 0);
    ck_assert_str_eq(b1.data, b2.data);
    cgprof_buf_cleanup(&b1);
    cgprof_buf_cleanup(&b2);
    cgprof_profile_cleanup(&p);
    cgprof_profile_cleanup(&q);
}
END_TEST

START_TEST(test_heap_decode_lenient)
{
    static const char doc[] =
        "{\"start\": 1, \"end\": 2, \"callgraph\": {}, \"heapSummary\": {"
        "\"samplingIntervalBytes\": \"x\", \"series\": [[1, 2], \"bad\", [5, 6, 7, 8, 9]],"
        "\"sites\": [{\"frames\": [1]}, {\"frames\": [\"a\"], \"liveBytesSum\": -4, \"points\": 1},"
        " 7]}}";
    struct cgprof_profile q;
    ck_assert_int_eq(cgprof_profile_init(&q), 0);
    ck_assert_int_eq(cgprof_profile_decode_codeguru(&q, doc, strlen(doc)), 0);
    ck_assert(q.heap.present);
    ck_assert_uint_eq(q.heap.interval_bytes, 0);
    ck_assert_uint_eq(q.heap.npoints, 1);
    ck_assert_uint_eq(q.heap.points[0].rss, 8);
    ck_assert_uint_eq(q.heap.nsites, 1);
    ck_assert(q.heap.sites[0].bytes_sum == 0);
    cgprof_profile_cleanup(&q);
}
END_TEST

static Suite *heap_suite(void)
{
    Suite *s = suite_create("profile");
    TCase *tc = tcase_create("heap");
    tcase_add_test(tc, test_heap_add_points_and_sites);
    tcase_add_test(tc, test_heap_points_thinned_at_cap);
    tcase_add_test(tc, test_heap_site_cap_catch_all);
    tcase_add_test(tc, test_heap_merge_by_frames);
    tcase_add_test(tc, test_heap_json_round_trip);
    tcase_add_test(tc, test_heap_decode_lenient);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cgprof_test_run(heap_suite());
}
