/* Unit tests for preload/heap.c, the malloc family interposers of
 * libcgprof-heap.so (compiled here as cgprof__ut_malloc and so on, since
 * AddressSanitizer owns malloc; the real functions they reach are ASan's):
 * every sampled block lies at a marked address, so freeing everything
 * empties the set of live sampled blocks (a sampled block at any other
 * address would be missed by free's fast path and stay); the share of
 * allocations sampled matches the Poisson rate; calloc'd and realloc'd
 * blocks keep their contents when the sampler moves them; the aligned
 * functions keep their alignment; nothing is sampled while the heap
 * summary is off. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "../../../sampler/sampler_int.h"
#include "../../../preload/preload_int.h"

void *cgprof__ut_malloc(size_t n);
void cgprof__ut_free(void *p);
void *cgprof__ut_calloc(size_t a, size_t b);
void *cgprof__ut_realloc(void *p, size_t n);
int cgprof__ut_posix_memalign(void **out, size_t align, size_t n);
void *cgprof__ut_aligned_alloc(size_t align, size_t n);
void *cgprof__ut_memalign(size_t align, size_t n);

#define IV 4096u
#define N 4000

static void start(bool tracked)
{
    struct cgprof_heap_options o = { .interval_bytes = IV, .threshold_permille = 5,
                                     .max_stack_depth = 64, .allocator = "glibc",
                                     .tracked = tracked };
    cgprof_heap_settled();
    ck_assert_int_eq(cgprof_heap_start(&o), 0);
}

/* Releases every heap sample waiting in the ring (nobody drains it here). */
static void drain_ring(void)
{
    unsigned cursor = 0;
    struct cgprof__sample *s;
    while ((s = cgprof__ring_next_ready(&cursor)) != NULL)
        cgprof__ring_release(s);
}

static void *blocks[N];

START_TEST(test_heap_sampled_blocks_are_marked)
{
    start(true);
    size_t sampled = 0;
    for (int i = 0; i < N; i++) {
        size_t before = cgprof__heap_set_count();
        blocks[i] = cgprof__ut_malloc(1000);
        ck_assert_ptr_nonnull(blocks[i]);
        memset(blocks[i], 0x5a, 1000);
        if (cgprof__heap_set_count() > before) {
            ck_assert_msg(cgprof_heap_marked(blocks[i]), "sampled block %p not marked", blocks[i]);
            sampled++;
        }
        drain_ring();
    }
    /* P(sampled) = 1 - exp(-1000/4096) = 0.2166: 866 expected, sd 26. */
    double want = N * (1 - exp(-1000.0 / IV));
    ck_assert_msg(fabs((double)sampled - want) < 6 * sqrt(want), "sampled %zu of %d, want %.0f",
                  sampled, N, want);
    ck_assert_uint_eq(cgprof__heap_set_count(), sampled);
    for (int i = 0; i < N; i++)
        cgprof__ut_free(blocks[i]);
    ck_assert_uint_eq(cgprof__heap_set_count(), 0);
    cgprof_heap_stop();
}
END_TEST

START_TEST(test_heap_moved_blocks_keep_contents)
{
    start(true);
    for (int i = 0; i < 500; i++) {
        unsigned char *c = cgprof__ut_calloc(3, 1000);
        ck_assert_ptr_nonnull(c);
        int bad = -1;
        for (int k = 0; k < 3000 && bad < 0; k++)
            if (c[k] != 0)
                bad = k;
        ck_assert_msg(bad < 0, "calloc byte %d is not zero", bad);
        memset(c, i & 0xff, 3000);
        unsigned char *r = cgprof__ut_realloc(c, 9000);
        ck_assert_ptr_nonnull(r);
        for (int k = 0; k < 3000 && bad < 0; k++)
            if (r[k] != (i & 0xff))
                bad = k;
        ck_assert_msg(bad < 0, "realloc lost byte %d", bad);
        blocks[i] = r;
        drain_ring();
    }
    ck_assert_uint_gt(cgprof__heap_set_count(), 0);
    for (int i = 0; i < 500; i++)
        cgprof__ut_free(blocks[i]);
    ck_assert_uint_eq(cgprof__heap_set_count(), 0);
    /* realloc to 0 frees, and forgets a sampled block. */
    for (int i = 0; i < 200; i++) {
        void *p = cgprof__ut_malloc(5000);
        drain_ring();
        ck_assert_ptr_null(cgprof__ut_realloc(p, 0));
    }
    ck_assert_uint_eq(cgprof__heap_set_count(), 0);
    cgprof_heap_stop();
}
END_TEST

START_TEST(test_heap_aligned_functions_keep_alignment)
{
    start(true);
    static const size_t aligns[] = { 16, 64, 256, 8192, 65536 };
    for (int i = 0; i < 300; i++) {
        size_t a = aligns[i % 5];
        void *p = NULL;
        ck_assert_int_eq(cgprof__ut_posix_memalign(&p, a, 2000), 0);
        void *q = cgprof__ut_memalign(a, 3000);
        void *r = cgprof__ut_aligned_alloc(a, a * 2);
        ck_assert(p && q && r);
        ck_assert_uint_eq((uintptr_t)p % a, 0);
        ck_assert_uint_eq((uintptr_t)q % a, 0);
        ck_assert_uint_eq((uintptr_t)r % a, 0);
        drain_ring();
        cgprof__ut_free(p);
        cgprof__ut_free(q);
        cgprof__ut_free(r);
    }
    ck_assert_uint_eq(cgprof__heap_set_count(), 0);
    cgprof_heap_stop();
}
END_TEST

START_TEST(test_heap_nothing_sampled_while_off)
{
    start(false);   /* running, but another malloc comes first: not ours */
    for (int i = 0; i < N; i++) {
        blocks[i] = cgprof__ut_malloc(1000);
        ck_assert_ptr_nonnull(blocks[i]);
    }
    ck_assert_uint_eq(cgprof__heap_set_count(), 0);
    for (int i = 0; i < N; i++)
        cgprof__ut_free(blocks[i]);
    cgprof_heap_stop();
    for (int i = 0; i < N; i++)
        cgprof__ut_free(cgprof__ut_malloc(1000));
    ck_assert_uint_eq(cgprof__heap_set_count(), 0);
}
END_TEST

static Suite *heap_suite(void)
{
    Suite *s = suite_create("preload_heap");
    TCase *tc = tcase_create("interposers");
    tcase_add_test(tc, test_heap_sampled_blocks_are_marked);
    tcase_add_test(tc, test_heap_moved_blocks_keep_contents);
    tcase_add_test(tc, test_heap_aligned_functions_keep_alignment);
    tcase_add_test(tc, test_heap_nothing_sampled_while_off);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cgprof_test_run(heap_suite());
}
