/* Tests for report/recommend.c: every rule below, at and above its
 * threshold on synthetic profiles, frame matching (module:function parts,
 * C++ names, bare names), the minimum sample count, the latency view and
 * BLOCKED samples of lock contention, cost estimates, ordering, evidence,
 * argument checks, allocation failures and the text section. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../report/report.h"
#include "helpers.h"

unsigned recommend_match(const char *frame);

static struct cgprof_profile prof;

static void setup(void)
{
    ck_assert_int_eq(cgprof_profile_init(&prof), 0);
    prof.sample_weights[CGPROF_COUNTER_RUNNABLE] = 100.0;
    for (int c = 1; c < CGPROF_NCOUNTERS; c++)
        prof.sample_weights[c] = 1.0;
    prof.start_ms = 1796637600000ull;
    prof.end_ms = prof.start_ms + 60000;
    prof.duration_ms = 60000;
}

static void teardown(void)
{
    cgprof_profile_cleanup(&prof);
}

/* Adds "a;b;c" (';'-separated, root first) with count under counter c. */
static void add(const char *stack, enum cgprof_counter c, uint64_t count)
{
    char copy[2048];
    const char *frames[64];
    size_t n = 0;
    snprintf(copy, sizeof(copy), "%s", stack);
    for (char *save = NULL, *t = strtok_r(copy, ";", &save); t;
         t = strtok_r(NULL, ";", &save))
        frames[n++] = t;
    ck_assert_int_eq(cgprof_profile_add_stack(&prof, frames, n, c, count), 0);
}

/* Runs the rules; returns the recommendation with id, or NULL. */
static struct cgprof_recommendation recs[CGPROF_REPORT_RECOMMEND_MAX];
static size_t nrecs;

static void run(void)
{
    ck_assert_int_eq(cgprof_report_recommend(&prof, 0.05, recs, CGPROF_ARRAY_SIZE(recs), &nrecs),
                     0);
}

static const struct cgprof_recommendation *find(const char *id)
{
    for (size_t i = 0; i < nrecs; i++)
        if (strcmp(recs[i].id, id) == 0)
            return &recs[i];
    return NULL;
}

/* One trigger stack per rule, with its documented threshold (per mille of
 * the view, so the table stays exact integers). */
static const struct {
    const char *id;
    const char *stack;
    unsigned threshold_permille;
    const char *evidence;   /* a frame the evidence must name */
} rule_cases[] = {
    { "lock-contention", "app:main;app:worker;libc.so.6:pthread_mutex_lock;"
                         "libc.so.6:__lll_lock_wait;libc.so.6:futex_wait", 100,
      "libc.so.6:pthread_mutex_lock" },
    { "malloc-churn", "app:main;app:build;libc.so.6:malloc;libc.so.6:_int_malloc", 100,
      "libc.so.6:_int_malloc" },
    { "memcpy-heavy", "app:main;app:copy;libc.so.6:__memmove_avx_unaligned_erms", 150,
      "__memmove_avx_unaligned_erms" },
    { "syscall-storm", "app:main;app:emit;libc.so.6:__GI___libc_write", 200,
      "__GI___libc_write" },
    { "regex-compile", "app:main;app:match;libc.so.6:regcomp;libc.so.6:re_compile_internal",
      50, "libc.so.6:regcomp" },
    { "exception-unwind", "app:main;app:parse;libstdc++.so.6:__cxa_throw;"
                          "libgcc_s.so.1:_Unwind_RaiseException;libgcc_s.so.1:_Unwind_Find_FDE",
      50, "_Unwind_RaiseException" },
    { "logging-format", "app:main;app:log;libc.so.6:snprintf;libc.so.6:__vsnprintf_internal;"
                        "libc.so.6:__printf_fp_l", 100, "libc.so.6:snprintf" },
    { "compression-level", "app:main;app:save;libz.so.1:deflate;libz.so.1:deflate_slow;"
                           "libz.so.1:longest_match", 50, "libz.so.1:deflate_slow" },
};

/* matched per mille of 1000 samples: below (threshold - 1), at, above. */
START_TEST(test_recommend_rule_below_threshold)
{
    unsigned t = rule_cases[_i].threshold_permille;
    add(rule_cases[_i].stack, CGPROF_COUNTER_RUNNABLE, t - 1);
    add("app:main;app:compute", CGPROF_COUNTER_RUNNABLE, 1000 - (t - 1));
    run();
    ck_assert_msg(find(rule_cases[_i].id) == NULL, "%s fired at %u/1000", rule_cases[_i].id,
                  t - 1);
    ck_assert_uint_eq(nrecs, 0);
}
END_TEST

START_TEST(test_recommend_rule_at_threshold)
{
    unsigned t = rule_cases[_i].threshold_permille;
    add(rule_cases[_i].stack, CGPROF_COUNTER_RUNNABLE, t);
    add("app:main;app:compute", CGPROF_COUNTER_RUNNABLE, 1000 - t);
    run();
    const struct cgprof_recommendation *r = find(rule_cases[_i].id);
    ck_assert_msg(r != NULL, "%s did not fire at its threshold %u/1000", rule_cases[_i].id, t);
    ck_assert_uint_eq(nrecs, 1);
    ck_assert_double_eq_tol(r->share, t / 1000.0, 1e-9);
    ck_assert_double_eq_tol(r->seconds, t / 100.0, 1e-9);
}
END_TEST

START_TEST(test_recommend_rule_above_threshold)
{
    const char *id = rule_cases[_i].id;
    add(rule_cases[_i].stack, CGPROF_COUNTER_RUNNABLE, 600);
    add("app:main;app:compute", CGPROF_COUNTER_RUNNABLE, 400);
    run();
    const struct cgprof_recommendation *r = find(id);
    ck_assert_msg(r != NULL, "%s did not fire at 60%%", id);
    ck_assert_uint_eq(nrecs, 1);
    ck_assert_double_eq_tol(r->share, 0.6, 1e-9);
    ck_assert_double_eq_tol(r->seconds, 6.0, 1e-9);
    ck_assert_ptr_nonnull(r->title);
    ck_assert_ptr_nonnull(r->fix);
    ck_assert_uint_gt(strlen(r->fix), 40);
    /* 6 CPU seconds in 60 s is 0.1 vCPU: 876 vCPU-hours a year at $0.05. */
    ck_assert_double_eq_tol(r->yearly_cost_usd, 0.1 * 8760 * 0.05, 1e-6);
    ck_assert_msg(strstr(r->evidence, rule_cases[_i].evidence) != NULL,
                  "%s evidence lacks %s: %s", id, rule_cases[_i].evidence, r->evidence);
    ck_assert_msg(strstr(r->evidence, "60.0%") != NULL, "%s evidence has no share: %s", id,
                  r->evidence);
    /* The caller is the frame above the outermost matching one. */
    ck_assert_msg(strstr(r->evidence, strcmp(id, "compression-level") == 0
                                          ? "called from: libz.so.1:deflate 60.0%"
                                          : "called from: app:") != NULL,
                  "%s evidence names no caller: %s", id, r->evidence);
}
END_TEST

/* Frames matched alone: 100 % of the samples on "app:main;FRAME". */
START_TEST(test_recommend_match_table)
{
    static const struct {
        const char *frame;
        const char *id;   /* NULL: no rule */
    } cases[] = {
        { "libc.so.6:pthread_mutex_lock", "lock-contention" },
        { "libc.so.6:__lll_lock_wait_private", "lock-contention" },
        { "libc.so.6:pthread_rwlock_wrlock", "lock-contention" },
        { "libc.so.6:pthread_cond_wait", NULL },
        { "libc.so.6:free", "malloc-churn" },
        { "libc.so.6:cfree", "malloc-churn" },
        { "libstdc++.so.6:operator new(unsigned long)", "malloc-churn" },
        { "libstdc++.so.6:operator delete(void*, unsigned long)", "malloc-churn" },
        { "libjemalloc.so.2:arena_malloc_hard", "malloc-churn" },
        { "libtcmalloc.so.4:tcmalloc::CentralFreeList::Populate()", "malloc-churn" },
        { "app:mallocate_things", NULL },
        { "libc.so.6:__memcpy_evex_unaligned_erms", "memcpy-heavy" },
        { "libc.so.6:memmove", "memcpy-heavy" },
        { "libc.so.6:memset", NULL },
        { "libc.so.6:read", "syscall-storm" },
        { "libc.so.6:__libc_recv", "syscall-storm" },
        { "libc.so.6:readdir", NULL },
        { "libpcre2-8.so.0:pcre2_compile_8", "regex-compile" },
        { "libstdc++.so.6:std::__detail::_Compiler<std::__cxx11::regex_traits<char> >::"
          "_M_disjunction()", "regex-compile" },
        { "libc.so.6:regexec", NULL },
        { "libgcc_s.so.1:_Unwind_Find_FDE", "exception-unwind" },
        { "libstdc++.so.6:__gxx_personality_v0", "exception-unwind" },
        { "libgcc_s.so.1:_Unwind_Backtrace", NULL },
        { "libc.so.6:__vfprintf_internal", "logging-format" },
        { "libc.so.6:syslog", "logging-format" },
        { "libstdc++.so.6:std::ostream::_M_insert<double>(double)", "logging-format" },
        { "libstdc++.so.6:std::basic_ostream<char, std::char_traits<char> >& "
          "std::__ostream_insert<char, std::char_traits<char> >(std::basic_ostream<char, "
          "std::char_traits<char> >&, char const*, long)", "logging-format" },
        { "liblzma.so.5:lzma_mf_bt4_find", "compression-level" },
        { "libzstd.so.1:ZSTD_compressBlock_btultra2", "compression-level" },
        { "libz.so.1:deflate_fast", NULL },
        { "libzstd.so.1:ZSTD_compressBlock_fast", NULL },
        /* The module is not the function: "malloc" as a module matches no rule. */
        { "malloc:compute", NULL },
        { "app+0x1234", NULL },
        /* A bare name (no module) is all function. */
        { "malloc", "malloc-churn" },
        { "std::__detail::_Compiler<char>::_M_term()", "regex-compile" },
    };
    for (size_t i = 0; i < CGPROF_ARRAY_SIZE(cases); i++) {
        char stack[512];
        cgprof_profile_cleanup(&prof);
        setup();
        snprintf(stack, sizeof(stack), "app:main;%s", cases[i].frame);
        add(stack, CGPROF_COUNTER_RUNNABLE, 100);
        run();
        if (cases[i].id == NULL) {
            ck_assert_msg(nrecs == 0, "%s fired %s", cases[i].frame, nrecs ? recs[0].id : "");
            ck_assert_uint_eq(recommend_match(cases[i].frame), 0);
        } else {
            ck_assert_msg(nrecs == 1 && strcmp(recs[0].id, cases[i].id) == 0,
                          "%s: expected %s, got %zu rules (%s)", cases[i].frame, cases[i].id,
                          nrecs, nrecs ? recs[0].id : "none");
            ck_assert_double_eq_tol(recs[0].share, 1.0, 1e-12);
        }
    }
    ck_assert_uint_eq(recommend_match(NULL), 0);
}
END_TEST

/* Below MIN_SAMPLES matched samples nothing fires, whatever the share. */
START_TEST(test_recommend_min_samples)
{
    add("app:main;libc.so.6:malloc", CGPROF_COUNTER_RUNNABLE, 4);
    run();
    ck_assert_uint_eq(nrecs, 0);
    add("app:main;libc.so.6:malloc", CGPROF_COUNTER_RUNNABLE, 1);
    run();
    ck_assert_uint_eq(nrecs, 1);
    ck_assert_str_eq(recs[0].id, "malloc-churn");
}
END_TEST

/* A sample counts once however many of its frames match, and nested
 * matches never push a share past 1. */
START_TEST(test_recommend_inclusive_once)
{
    add("app:main;libc.so.6:malloc;libc.so.6:malloc;libc.so.6:_int_malloc;"
        "libc.so.6:malloc_consolidate", CGPROF_COUNTER_RUNNABLE, 300);
    add("app:main;libc.so.6:malloc", CGPROF_COUNTER_RUNNABLE, 100);
    add("app:main;app:compute", CGPROF_COUNTER_RUNNABLE, 600);
    run();
    const struct cgprof_recommendation *r = find("malloc-churn");
    ck_assert_ptr_nonnull(r);
    ck_assert_double_eq_tol(r->share, 0.4, 1e-9);
    ck_assert_msg(strstr(r->evidence, "libc.so.6:malloc 40.0%") != NULL, "%s", r->evidence);
    ck_assert_msg(strstr(r->evidence, "libc.so.6:_int_malloc 30.0%") != NULL, "%s",
                  r->evidence);
    ck_assert_msg(strstr(r->evidence, "called from: app:main 40.0%") != NULL, "%s",
                  r->evidence);
}
END_TEST

/* Lock contention is a share of the latency view: waiting elsewhere
 * dilutes it, and BLOCKED samples count even without a lock frame; the
 * CPU rules ignore non-CPU states. */
START_TEST(test_recommend_lock_latency_view)
{
    add("app:main;app:worker;libc.so.6:pthread_mutex_lock", CGPROF_COUNTER_RUNNABLE, 100);
    add("app:main;app:compute", CGPROF_COUNTER_RUNNABLE, 100);
    add("app:main;app:poll;libc.so.6:epoll_wait", CGPROF_COUNTER_WAITING, 8);
    add("app:main;app:sleep", CGPROF_COUNTER_IDLE, 1000);
    run();
    /* 1 s of lock in 1 + 1 + 8 s of latency (IDLE excluded): 10 %. */
    const struct cgprof_recommendation *r = find("lock-contention");
    ck_assert_ptr_nonnull(r);
    ck_assert_double_eq_tol(r->share, 0.10, 1e-9);

    add("app:main;app:poll;libc.so.6:epoll_wait", CGPROF_COUNTER_WAITING, 1);
    run();
    ck_assert_ptr_null(find("lock-contention"));

    /* 3 s BLOCKED in a frame the rules do not know: 4 of 14 s. */
    add("app:main;app:worker;libc.so.6:syscall", CGPROF_COUNTER_BLOCKED, 3);
    run();
    r = find("lock-contention");
    ck_assert_ptr_nonnull(r);
    ck_assert_double_eq_tol(r->share, 4.0 / 14.0, 1e-9);
    ck_assert_double_eq_tol(r->seconds, 4.0, 1e-9);
    ck_assert_msg(strstr(r->evidence, "libc.so.6:syscall") != NULL, "%s", r->evidence);
    /* Cost comes from CPU seconds only: 1 s in 60 s. */
    ck_assert_double_eq_tol(r->yearly_cost_usd, 1.0 / 60.0 * 8760 * 0.05, 1e-9);
}
END_TEST

START_TEST(test_recommend_cpu_rules_ignore_waiting)
{
    add("app:main;libc.so.6:malloc", CGPROF_COUNTER_RUNNABLE, 50);
    add("app:main;app:compute", CGPROF_COUNTER_RUNNABLE, 50);
    /* WAITING inside write: not CPU, must neither fire nor dilute. */
    add("app:main;libc.so.6:write", CGPROF_COUNTER_WAITING, 100);
    run();
    ck_assert_uint_eq(nrecs, 1);
    ck_assert_str_eq(recs[0].id, "malloc-churn");
    ck_assert_double_eq_tol(recs[0].share, 0.5, 1e-9);
}
END_TEST

/* Several rules: heaviest share first; a short out array keeps the
 * heaviest; max 0 writes nothing. */
START_TEST(test_recommend_order_and_max)
{
    add("app:main;libc.so.6:regcomp", CGPROF_COUNTER_RUNNABLE, 100);
    add("app:main;libc.so.6:memcpy", CGPROF_COUNTER_RUNNABLE, 300);
    add("app:main;libc.so.6:malloc", CGPROF_COUNTER_RUNNABLE, 200);
    add("app:main;app:compute", CGPROF_COUNTER_RUNNABLE, 400);
    run();
    ck_assert_uint_eq(nrecs, 3);
    ck_assert_str_eq(recs[0].id, "memcpy-heavy");
    ck_assert_str_eq(recs[1].id, "malloc-churn");
    ck_assert_str_eq(recs[2].id, "regex-compile");

    struct cgprof_recommendation one[1];
    size_t n = 99;
    ck_assert_int_eq(cgprof_report_recommend(&prof, 0.05, one, 1, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(one[0].id, "memcpy-heavy");
    n = 99;
    ck_assert_int_eq(cgprof_report_recommend(&prof, 0.05, NULL, 0, &n), 0);
    ck_assert_uint_eq(n, 0);
}
END_TEST

/* Without a known duration there is no cost; start..end is used when the
 * duration is missing. */
START_TEST(test_recommend_cost_duration)
{
    add("app:main;libc.so.6:malloc", CGPROF_COUNTER_RUNNABLE, 3600);
    prof.duration_ms = 0;
    prof.end_ms = prof.start_ms + 3600 * 1000;
    run();
    ck_assert_uint_eq(nrecs, 1);
    /* 36 CPU seconds in an hour: 0.01 vCPU. */
    ck_assert_double_eq_tol(recs[0].yearly_cost_usd, 0.01 * 8760 * 0.05, 1e-9);
    prof.end_ms = prof.start_ms;
    run();
    ck_assert_double_eq(recs[0].yearly_cost_usd, 0.0);
    ck_assert_int_eq(cgprof_report_recommend(&prof, 0.0, recs, 1, &nrecs), 0);
    ck_assert_double_eq(recs[0].yearly_cost_usd, 0.0);
}
END_TEST

/* Long frame names and many matching frames keep evidence bounded and
 * NUL-terminated, with whole items only. */
START_TEST(test_recommend_evidence_bounded)
{
    char stack[2048], name[400];
    memset(name, 'x', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    for (int i = 0; i < 100; i++) {
        snprintf(stack, sizeof(stack), "app:caller_%d_%s;libc.so.6:malloc;libjemalloc.so.2:je_%d_%s",
                 i, name, i, name);
        add(stack, CGPROF_COUNTER_RUNNABLE, 10 + (uint64_t)i);
    }
    run();
    ck_assert_uint_eq(nrecs, 1);
    size_t len = strnlen(recs[0].evidence, sizeof(recs[0].evidence));
    ck_assert_uint_lt(len, sizeof(recs[0].evidence));
    ck_assert_msg(strncmp(recs[0].evidence, "frames: libc.so.6:malloc 100.0%", 31) == 0, "%s",
                  recs[0].evidence);
    ck_assert_uint_gt(len, 31);
    ck_assert_msg(recs[0].evidence[len - 1] == '%', "cut item: %s", recs[0].evidence);
}
END_TEST

START_TEST(test_recommend_args)
{
    size_t n = 7;
    ck_assert_int_eq(cgprof_report_recommend(NULL, 0.05, recs, 1, &n), CGPROF_EINVAL);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(cgprof_report_recommend(&prof, 0.05, recs, 1, NULL), CGPROF_EINVAL);
    ck_assert_int_eq(cgprof_report_recommend(&prof, 0.05, NULL, 1, &n), CGPROF_EINVAL);
    ck_assert_int_eq(cgprof_report_recommend(&prof, -1.0, recs, 1, &n), CGPROF_EINVAL);
    ck_assert_int_eq(cgprof_report_recommend(&prof, NAN, recs, 1, &n), CGPROF_EINVAL);
    ck_assert_int_eq(cgprof_report_recommend(&prof, INFINITY, recs, 1, &n), CGPROF_EINVAL);
    /* An empty profile fires nothing. */
    ck_assert_int_eq(cgprof_report_recommend(&prof, 0.05, recs, 1, &n), 0);
    ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(test_recommend_oom)
{
    add("app:main;libc.so.6:malloc", CGPROF_COUNTER_RUNNABLE, 100);
    for (long k = 0; k < 2; k++) {
        size_t n = 7;
        cgprof_alloc_fail_after(k);
        int rc = cgprof_report_recommend(&prof, 0.05, recs, CGPROF_ARRAY_SIZE(recs), &n);
        cgprof_alloc_fail_after(-1);
        ck_assert_int_eq(rc, CGPROF_ENOMEM);
        ck_assert_uint_eq(n, 0);
    }
}
END_TEST

START_TEST(test_recommend_text)
{
    struct cgprof_buf b;
    cgprof_buf_init(&b, 1 << 20);
    add("app:main;app:compute", CGPROF_COUNTER_RUNNABLE, 100);
    ck_assert_int_eq(cgprof_report_recommend_text(&prof, 0.05, &b), 0);
    ck_assert_ptr_nonnull(strstr(b.data, "Recommendations ("));
    ck_assert_ptr_nonnull(strstr(b.data, "estimates at $0.0500 per vCPU-hour"));
    ck_assert_ptr_nonnull(strstr(b.data, "\n  none: no rule reached its threshold"));
    ck_assert_ptr_null(strstr(b.data, "  ["));

    cgprof_buf_reset(&b);
    add("app:main;app:worker;libc.so.6:pthread_mutex_lock", CGPROF_COUNTER_RUNNABLE, 100);
    ck_assert_int_eq(cgprof_report_recommend_text(&prof, 0.05, &b), 0);
    ck_assert_msg(strstr(b.data, "\n  [lock-contention] Lock contention") != NULL, "%s", b.data);
    ck_assert_msg(strstr(b.data, "\n    50.0% of the latency view, 1.00 s, estimated $7.30 "
                                 "per year\n") != NULL, "%s", b.data);
    ck_assert_msg(strstr(b.data, "\n    evidence: frames: libc.so.6:pthread_mutex_lock "
                                 "50.0%; called from: app:worker 50.0%\n") != NULL, "%s",
                  b.data);
    ck_assert_ptr_nonnull(strstr(b.data, "\n    fix: Shorten the critical sections"));
    ck_assert_ptr_null(strstr(b.data, "none:"));

    /* A bound too small for the text fails cleanly. */
    struct cgprof_buf small;
    cgprof_buf_init(&small, 64);
    ck_assert_int_eq(cgprof_report_recommend_text(&prof, 0.05, &small), CGPROF_ETOOBIG);
    cgprof_buf_cleanup(&small);
    cgprof_buf_cleanup(&b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("recommend");
    tcase_add_checked_fixture(tc, setup, teardown);
    int nrules = (int)CGPROF_ARRAY_SIZE(rule_cases);
    tcase_add_loop_test(tc, test_recommend_rule_below_threshold, 0, nrules);
    tcase_add_loop_test(tc, test_recommend_rule_at_threshold, 0, nrules);
    tcase_add_loop_test(tc, test_recommend_rule_above_threshold, 0, nrules);
    tcase_add_test(tc, test_recommend_match_table);
    tcase_add_test(tc, test_recommend_min_samples);
    tcase_add_test(tc, test_recommend_inclusive_once);
    tcase_add_test(tc, test_recommend_lock_latency_view);
    tcase_add_test(tc, test_recommend_cpu_rules_ignore_waiting);
    tcase_add_test(tc, test_recommend_order_and_max);
    tcase_add_test(tc, test_recommend_cost_duration);
    tcase_add_test(tc, test_recommend_evidence_bounded);
    tcase_add_test(tc, test_recommend_args);
    tcase_add_test(tc, test_recommend_oom);
    tcase_add_test(tc, test_recommend_text);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cgprof_test_run(suite());
}
