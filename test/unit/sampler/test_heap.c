/* Unit tests for sampler/heap.c: the libm-free logarithm and 1 - exp(-x),
 * the per-sample estimator, the exponential gaps, unbiased totals from a
 * simulated allocation stream (the hot path's countdown), the lock-free
 * address set and its counting filter (also from several threads), the
 * sampled path end to end (set entry + heap sample in the ring; reentrant
 * and own-thread calls skipped) and total capacity bounds. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "helpers.h"
#include "../../../sampler/sampler_int.h"

START_TEST(test_heap_ln_matches_libm)
{
    static const double us[] = { 1.0, 0.999999, 0.75, 0.5, 0.36787944117144233, 0.1, 1e-3,
                                  1e-9, 1.1102230246251565e-16, 0x1.0p-53 };
    for (size_t i = 0; i < CGPROF_ARRAY_SIZE(us); i++) {
        double want = log(us[i]), got = cgprof__heap_ln(us[i]);
        ck_assert_msg(fabs(got - want) <= 1e-9 * (1 + fabs(want)), "ln(%g) = %.17g, want %.17g",
                      us[i], got, want);
    }
    ck_assert(cgprof__heap_ln(0) < -700);
}
END_TEST

START_TEST(test_heap_one_minus_exp_neg)
{
    static const double xs[] = { 1e-12, 1e-6, 1e-3, 0.1, 0.4999, 0.5, 1, 2.5, 10, 40, 800 };
    for (size_t i = 0; i < CGPROF_ARRAY_SIZE(xs); i++) {
        double want = -expm1(-xs[i]), got = cgprof__heap_one_minus_exp_neg(xs[i]);
        ck_assert_msg(fabs(got - want) <= 1e-12 * want + 1e-300, "x=%g: %.17g want %.17g",
                      xs[i], got, want);
    }
    ck_assert(cgprof__heap_one_minus_exp_neg(0) == 0);
}
END_TEST

START_TEST(test_heap_estimate_weights)
{
    double b, o;
    /* size == interval: sampled with probability 1 - 1/e. */
    cgprof__heap_estimate(524288, 524288, &b, &o);
    ck_assert(fabs(o - 1 / (1 - exp(-1))) < 1e-9);
    ck_assert(fabs(b - 524288 * o) < 1e-6);
    /* Huge allocations are always sampled: they stand for themselves. */
    cgprof__heap_estimate(64u << 20, 524288, &b, &o);
    ck_assert(fabs(o - 1) < 1e-12);
    /* Tiny ones stand for about interval bytes each. */
    cgprof__heap_estimate(16, 524288, &b, &o);
    ck_assert(fabs(b - 524288) < 524288 * 1e-4);
}
END_TEST

START_TEST(test_heap_gaps_are_exponential)
{
    uint64_t rng = 0x1234567887654321ull;
    const uint64_t iv = 524288;
    const int n = 400000;
    double sum = 0;
    int below = 0;
    for (int i = 0; i < n; i++) {
        int64_t g = cgprof__heap_next_gap(&rng, iv);
        ck_assert_int_ge(g, 1);
        sum += (double)g;
        below += (uint64_t)g <= iv;
    }
    ck_assert(fabs(sum / n / iv - 1) < 0.01);                 /* mean: sd/sqrt(n) = 0.16 % */
    ck_assert(fabs((double)below / n - (1 - exp(-1))) < 0.005);
}
END_TEST

/* The hot path's countdown over a stream of mixed sizes: the estimates of
 * the sampled allocations add up to the true totals (bytes and objects),
 * for small and large objects alike. */
START_TEST(test_heap_simulated_stream_unbiased)
{
    static const size_t sizes[] = { 16, 100, 4096, 16384, 65536, 300000, 2u << 20 };
    const uint64_t iv = 65536;
    uint64_t rng = 42;
    for (size_t k = 0; k < CGPROF_ARRAY_SIZE(sizes); k++) {
        int64_t budget = cgprof__heap_next_gap(&rng, iv);
        double est_b = 0, est_o = 0, true_b = 0, n = 0;
        uint64_t target = 512ull << 20;
        while (true_b < (double)target) {
            size_t s = sizes[k];
            true_b += (double)s;
            n++;
            if ((budget -= (int64_t)s) <= 0) {
                budget = cgprof__heap_next_gap(&rng, iv);
                double b, o;
                cgprof__heap_estimate(s, iv, &b, &o);
                est_b += b;
                est_o += o;
            }
        }
        /* 512 MiB at 64 KiB: >= 8192 expected samples, sd <= 1.1 %. */
        ck_assert_msg(fabs(est_b / true_b - 1) < 0.04, "size %zu: bytes %.4f", sizes[k],
                      est_b / true_b);
        ck_assert_msg(fabs(est_o / n - 1) < 0.04, "size %zu: objects %.4f", sizes[k], est_o / n);
    }
}
END_TEST

START_TEST(test_heap_set_insert_remove_filter)
{
    ck_assert_int_eq(cgprof__heap_set_init(), 0);
    ck_assert_uint_eq(cgprof__heap_set_count(), 0);
    uintptr_t a = 0x7f0000001000u, b = 0x7f0000002010u;
    ck_assert(cgprof_heap_marked((void *)a) && cgprof_heap_marked((void *)b));
    ck_assert(!cgprof_heap_marked((void *)(a + 32)) && !cgprof_heap_marked((void *)(a + 4080)));
    ck_assert(!cgprof__heap_forget_sigsafe((void *)a));
    ck_assert(cgprof__heap_set_insert_sigsafe(a, 100, 1, 0));
    ck_assert(cgprof__heap_set_insert_sigsafe(b, 200, 2, 0));
    ck_assert_uint_eq(cgprof__heap_set_count(), 2);
    /* A stale entry of the same address is replaced, not duplicated. */
    ck_assert(cgprof__heap_set_insert_sigsafe(a, 300, 3, 0));
    ck_assert_uint_eq(cgprof__heap_set_count(), 2);
    ck_assert(cgprof__heap_forget_sigsafe((void *)a));
    ck_assert(!cgprof__heap_forget_sigsafe((void *)a));
    ck_assert(!cgprof__heap_set_remove_sigsafe(0x1234560));
    ck_assert(!cgprof__heap_set_insert_sigsafe(0, 1, 1, 0));
    ck_assert(!cgprof__heap_set_insert_sigsafe(1, 1, 1, 0));
    ck_assert(cgprof__heap_set_remove_sigsafe(b));
    ck_assert_uint_eq(cgprof__heap_set_count(), 0);
    /* Every filter counter is back to zero. */
    for (size_t i = 0; i < (1u << CGPROF__HEAP_FILTER_BITS); i++)
        ck_assert_uint_eq(cgprof__heap_filter[i], 0);
}
END_TEST

/* Many live entries, then a window overflow is refused, not lost. */
START_TEST(test_heap_set_many)
{
    ck_assert_int_eq(cgprof__heap_set_init(), 0);
    const unsigned n = 1u << (CGPROF__HEAP_SET_BITS - 1);
    unsigned ok = 0;
    for (unsigned i = 0; i < n; i++)
        ok += cgprof__heap_set_insert_sigsafe(0x10000000u + 16u * i, 16, i + 1, 0);
    ck_assert_uint_ge(ok, n - n / 100);   /* half full: (nearly) all fit */
    ck_assert_uint_eq(cgprof__heap_set_count(), ok);
    unsigned gone = 0;
    for (unsigned i = 0; i < n; i++)
        gone += cgprof__heap_set_remove_sigsafe(0x10000000u + 16u * i);
    ck_assert_uint_eq(gone, ok);
    ck_assert_uint_eq(cgprof__heap_set_count(), 0);
}
END_TEST

static void *churn_thread(void *arg)
{
    uintptr_t base = (uintptr_t)arg;
    for (unsigned round = 0; round < 200; round++) {
        for (unsigned i = 0; i < 64; i++)
            ck_assert(cgprof__heap_set_insert_sigsafe(base + 16u * i, 16, round, 0));
        for (unsigned i = 0; i < 64; i++)
            ck_assert(cgprof__heap_set_remove_sigsafe(base + 16u * i));
    }
    return NULL;
}

START_TEST(test_heap_set_threads)
{
    ck_assert_int_eq(cgprof__heap_set_init(), 0);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, churn_thread,
                                        (void *)(uintptr_t)(0x20000000u + 0x100000u * (unsigned)i)), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    ck_assert_uint_eq(cgprof__heap_set_count(), 0);
    for (size_t i = 0; i < (1u << CGPROF__HEAP_FILTER_BITS); i++)
        ck_assert_uint_eq(cgprof__heap_filter[i], 0);
}
END_TEST

static struct cgprof__sample *ready_heap_sample(void)
{
    unsigned cursor = 0;
    struct cgprof__sample *s;
    while ((s = cgprof__ring_next_ready(&cursor)) != NULL)
        if (s->kind == CGPROF__SAMPLE_HEAP)
            return s;
    return NULL;
}

/* What an interposer does for an allocation of n bytes at p. */
static void allocate(int64_t *budget, void *p, size_t n)
{
    *budget -= (int64_t)n;
    if (*budget <= 0 && cgprof__heap_due_sigsafe(budget, n))
        cgprof__heap_record_sigsafe(p, n);
}

START_TEST(test_heap_sample_path)
{
    struct cgprof_heap_options o = { .interval_bytes = 4096, .threshold_permille = 5,
                                     .max_stack_depth = 64, .allocator = "glibc",
                                     .tracked = true };
    int64_t budget = 0;
    static _Alignas(4096) char block[1 << 16];
    /* Before the constructor settled: the countdown stays at zero. */
    ck_assert(!cgprof__heap_due_sigsafe(&budget, 100));
    ck_assert_int_eq(budget, 0);
    cgprof_heap_settled();
    ck_assert(!cgprof__heap_due_sigsafe(&budget, 100));
    ck_assert_int_eq(budget, CGPROF_HEAP_OFF_BUDGET);
    ck_assert_int_eq(cgprof_heap_start(&o), 0);
    ck_assert(cgprof_heap_running());
    /* The first call after a start draws a fresh gap (the old budget is
     * not kept); a 64 KiB allocation at a 4 KiB mean is all but certainly
     * sampled once it is drawn. */
    budget = 0;
    int tries = 0;
    while (cgprof__heap_set_count() == 0 && tries++ < 100)
        allocate(&budget, block, sizeof(block));
    ck_assert_uint_eq(cgprof__heap_set_count(), 1);
    ck_assert_int_gt(budget, 0);
    ck_assert_int_lt(budget, 4096 * 64);
    struct cgprof__sample *s = ready_heap_sample();
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(s->heap_addr, (uintptr_t)block);
    ck_assert_uint_eq(s->heap_size, sizeof(block));
    ck_assert_uint_gt(s->stack_len, 64);
    ck_assert_int_eq(s->tid, (pid_t)syscall(SYS_gettid));
    /* The captured stack pointer lies in this thread's stack. */
    int local;
    ck_assert_uint_lt(s->regs[7], (uintptr_t)&local + 65536);
    ck_assert_uint_gt(s->regs[7] + 65536, (uintptr_t)&local);
    cgprof__ring_release(s);
    ck_assert(cgprof__heap_forget_sigsafe(block));
    ck_assert_uint_eq(cgprof__heap_set_count(), 0);
    /* Freed before the agent took it: the sample leaves the ring. */
    while (cgprof__heap_set_count() == 0)
        allocate(&budget, block, sizeof(block));
    ck_assert_ptr_nonnull(ready_heap_sample());
    ck_assert(cgprof__heap_forget_sigsafe(block));
    ck_assert_ptr_null(ready_heap_sample());
    /* Taken first: the free cannot withdraw it; the agent releases it. */
    while (cgprof__heap_set_count() == 0)
        allocate(&budget, block, sizeof(block));
    s = ready_heap_sample();
    ck_assert_ptr_nonnull(s);
    ck_assert(cgprof__ring_take(s));
    ck_assert(!cgprof__ring_take(s));
    ck_assert(cgprof__heap_forget_sigsafe(block));
    ck_assert_uint_eq(s->heap_addr, (uintptr_t)block);
    cgprof__ring_release(s);
    ck_assert_ptr_null(ready_heap_sample());
    ck_assert_uint_eq(cgprof__heap_set_count(), 0);
    /* Mean gap: 2000 draws of the countdown average 4096 bytes. */
    double sum = 0;
    for (int i = 0; i < 2000; i++) {
        budget = 0;
        cgprof__heap_due_sigsafe(&budget, 1);
        sum += (double)budget;
    }
    ck_assert_msg(fabs(sum / 2000 / 4096 - 1) < 0.1, "mean gap %.0f", sum / 2000);
    /* Reentrant calls (a signal handler allocating inside us) record
     * nothing. */
    cgprof__heap_tls.busy = true;
    for (int i = 0; i < 50; i++)
        allocate(&budget, block, sizeof(block));
    cgprof__heap_tls.busy = false;
    ck_assert_uint_eq(cgprof__heap_set_count(), 0);
    ck_assert_ptr_null(ready_heap_sample());
    /* Neither do the profiler's own threads. */
    cgprof__threads_set_agent((pid_t)syscall(SYS_gettid));
    for (int i = 0; i < 50; i++)
        allocate(&budget, block, sizeof(block));
    ck_assert_uint_eq(cgprof__heap_set_count(), 0);
    cgprof__threads_set_agent(0);
    cgprof_heap_stop();
    ck_assert(!cgprof_heap_running());
    for (int i = 0; i < 50; i++)
        allocate(&budget, block, sizeof(block));
    ck_assert_uint_eq(cgprof__heap_set_count(), 0);
    ck_assert_int_gt(budget, 0);
    ck_assert_int_le(budget, CGPROF_HEAP_OFF_BUDGET);
}
END_TEST

START_TEST(test_heap_capacity_rlimit)
{
    /* At most physical memory (a cgroup or rlimit may lower it; ulimit -v
     * in test/integration/heap.sh checks that: under ASan a low limit
     * breaks the test process itself). */
    uint64_t c = cgprof__heap_capacity();
    uint64_t ram = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
    ck_assert_uint_gt(c, 16u << 20);
    ck_assert_uint_le(c, ram + (1u << 20));
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_AS, &rl), 0);
    if (rl.rlim_cur != RLIM_INFINITY)
        ck_assert_uint_le(c, rl.rlim_cur);
}
END_TEST

static Suite *heap_suite(void)
{
    Suite *s = suite_create("sampler");
    TCase *tc = tcase_create("heap");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_heap_ln_matches_libm);
    tcase_add_test(tc, test_heap_one_minus_exp_neg);
    tcase_add_test(tc, test_heap_estimate_weights);
    tcase_add_test(tc, test_heap_gaps_are_exponential);
    tcase_add_test(tc, test_heap_simulated_stream_unbiased);
    tcase_add_test(tc, test_heap_set_insert_remove_filter);
    tcase_add_test(tc, test_heap_set_many);
    tcase_add_test(tc, test_heap_set_threads);
    tcase_add_test(tc, test_heap_sample_path);
    tcase_add_test(tc, test_heap_capacity_rlimit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cgprof_test_run(heap_suite());
}
