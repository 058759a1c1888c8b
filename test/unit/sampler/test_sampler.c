/* Tests of the sampler as a whole inside this test process: real timers,
 * real signals, real unwinding through -O1 code, real symbols. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "../../../sampler/sampler.h"
#include "../../../sampler/sampler_int.h"

static volatile double sink;

__attribute__((noinline)) static void burn_leaf(double ms)
{
    uint64_t end = cgprof_thread_cpu_ns() + (uint64_t)(ms * 1e6);
    double x = 1.0;
    while (cgprof_thread_cpu_ns() < end)
        for (int i = 0; i < 1000; i++)
            x = x * 1.0000001 + 0.5;
    sink = x;
}

__attribute__((noinline)) static void burn_middle(double ms)
{
    burn_leaf(ms);
    __asm__ volatile("" ::: "memory");   /* keep the frame: no tail call */
}

static void *burn_thread(void *arg)
{
    burn_middle(*(double *)arg);
    return NULL;
}

struct found {
    const char *needle_leaf, *needle_parent;
    uint64_t with_leaf, with_both, total;
};

static void walk(const struct cgprof_node *n, const char **path, size_t depth, struct found *f)
{
    if (n->name)
        path[depth++] = n->name;
    uint64_t c = n->counts[CGPROF_COUNTER_RUNNABLE];
    if (c) {
        f->total += c;
        bool leaf = false, parent = false;
        for (size_t i = 0; i < depth; i++) {
            if (strstr(path[i], f->needle_leaf))
                leaf = true;
            if (leaf == false && strstr(path[i], f->needle_parent))
                parent = true;
        }
        if (leaf)
            f->with_leaf += c;
        if (leaf && parent)
            f->with_both += c;
    }
    for (const struct cgprof_node *ch = n->first_child; ch; ch = ch->next_sibling)
        walk(ch, path, depth, f);
}

START_TEST(test_sampler_start_unwinds_threads_through_callers)
{
    struct cgprof_sampler_options o = { .cpu_hz = 1000, .max_stack_depth = 128 };
    ck_assert_int_eq(cgprof_sampler_start(&o), 0);
    cgprof_sampler_set_agent_tid(gettid());
    struct cgprof_profile p;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    double ms = 300;
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, burn_thread, &ms), 0);
    /* threads created with the real pthread_create are found by the scan */
    for (int i = 0; i < 60; i++) {
        cgprof_sampler_maintain();
        cgprof_sampler_drain(&p);
        usleep(10000);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    cgprof_sampler_drain(&p);
    struct cgprof_sampler_stats st;
    cgprof_sampler_get_stats(&st);
    cgprof_sampler_stop();
    fprintf(stderr, "samples %llu dropped %llu unwind_errors %llu threads %llu\n",
            (unsigned long long)st.samples, (unsigned long long)st.dropped_ring_full,
            (unsigned long long)st.unwind_errors, (unsigned long long)st.threads_seen);
    static const char *path[4096];
    struct found f = { "burn_leaf", "burn_middle", 0, 0, 0 };
    walk(&p.root, path, 0, &f);
    /* 2 threads x 300 ms CPU at 1000 Hz ~ 600 samples; allow for the scan
     * arming the threads late and for the machine being busy. */
    ck_assert_msg(f.with_leaf >= 200, "only %llu samples in burn_leaf (total %llu)",
                  (unsigned long long)f.with_leaf, (unsigned long long)f.total);
    /* The unwinder got past the leaf: its caller is on the stack. */
    ck_assert_msg(f.with_both * 10 >= f.with_leaf * 9, "caller missing: %llu of %llu",
                  (unsigned long long)f.with_both, (unsigned long long)f.with_leaf);
    cgprof_profile_cleanup(&p);
    cgprof__modules_cleanup();
}
END_TEST

START_TEST(test_ring_claim_until_full_counts_drops)
{
    ck_assert_int_eq(cgprof__ring_init(), 0);
    cgprof__ring_reset();
    struct cgprof__sample *s[CGPROF__RING_SLOTS];
    for (int i = 0; i < CGPROF__RING_SLOTS; i++) {
        s[i] = cgprof__ring_claim_sigsafe();
        ck_assert_ptr_nonnull(s[i]);
    }
    ck_assert_ptr_null(cgprof__ring_claim_sigsafe());
    ck_assert_int_eq((int)cgprof__ring_dropped(), 1);
    cgprof__ring_publish_sigsafe(s[3]);
    unsigned cursor = 0;
    ck_assert_ptr_eq(cgprof__ring_next_ready(&cursor), s[3]);
    ck_assert_ptr_null(cgprof__ring_next_ready(&cursor));
    cgprof__ring_release(s[3]);
    ck_assert_ptr_eq(cgprof__ring_claim_sigsafe(), s[3]);
}
END_TEST

START_TEST(test_threads_entry_check_rejects_foreign_pointers)
{
    int x = 0;
    ck_assert(!cgprof__thread_is_entry_sigsafe(&x));
    ck_assert(!cgprof__thread_is_entry_sigsafe(NULL));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sampler");
    TCase *tc = tcase_create("sampler");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_sampler_start_unwinds_threads_through_callers);
    suite_add_tcase(s, tc);
    TCase *ring = tcase_create("ring");
    tcase_add_test(ring, test_ring_claim_until_full_counts_drops);
    tcase_add_test(ring, test_threads_entry_check_rejects_foreign_pointers);
    suite_add_tcase(s, ring);
    return s;
}

int main(void)
{
    return cgprof_test_run(suite());
}
