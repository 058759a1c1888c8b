/* Unit tests for profile/tree.c: counter names, interning, find-or-create,
 * add_stack (including the pointer cache and the previous-stack memo),
 * reset, merge, totals, memory and allocation failures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "../../../profile/profile_int.h"

/* Counts nodes below the root by following the links. */
static size_t count_linked(const struct cgprof_node *n)
{
    size_t c = 0;
    for (const struct cgprof_node *k = n->first_child; k; k = k->next_sibling) {
        ck_assert_ptr_eq(k->parent, n);
        c += 1 + count_linked(k);
    }
    return c;
}

/* Follows names from the root; NULL when a frame is missing. */
static const struct cgprof_node *find_path(const struct cgprof_profile *p,
                                           const char *const *frames, size_t n)
{
    const struct cgprof_node *node = &p->root;
    for (size_t i = 0; i < n; i++) {
        const struct cgprof_node *k = node->first_child;
        while (k && strcmp(k->name, frames[i]) != 0)
            k = k->next_sibling;
        if (!k)
            return NULL;
        node = k;
    }
    return node;
}

START_TEST(test_counter_names_round_trip)
{
    static const char *const want[] = { "RUNNABLE", "BLOCKED", "NATIVE",
                                         "WAITING", "TIMED_WAITING", "IDLE" };
    ck_assert_int_eq(CGPROF_ARRAY_SIZE(want), CGPROF_NCOUNTERS);
    for (int c = 0; c < CGPROF_NCOUNTERS; c++) {
        ck_assert_str_eq(cgprof_counter_name((enum cgprof_counter)c), want[c]);
        ck_assert_int_eq(cgprof_counter_from_name(want[c]), c);
    }
    ck_assert_int_eq(cgprof_counter_from_name("WALL_TIME"), -1);
    ck_assert_int_eq(cgprof_counter_from_name("runnable"), -1);
    ck_assert_int_eq(cgprof_counter_from_name(""), -1);
    ck_assert_int_eq(cgprof_counter_from_name(NULL), -1);
    ck_assert_str_eq(cgprof_counter_name(CGPROF_NCOUNTERS), "UNKNOWN");
}
END_TEST

START_TEST(test_profile_init_empty)
{
    struct cgprof_profile p;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    ck_assert_uint_eq(p.node_count, 0);
    ck_assert_ptr_null(p.root.first_child);
    ck_assert_ptr_null(p.root.name);
    for (int c = 0; c < CGPROF_NCOUNTERS; c++)
        ck_assert_uint_eq(cgprof_profile_total(&p, (enum cgprof_counter)c), 0);
    ck_assert_uint_gt(cgprof_profile_memory(&p), sizeof(p));
    cgprof_profile_cleanup(&p);
    /* cleanup twice (zeroed struct) is harmless */
    cgprof_profile_cleanup(&p);
}
END_TEST

START_TEST(test_profile_intern_dedups)
{
    struct cgprof_profile p;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    char buf[16];
    strcpy(buf, "hello");
    const char *a = cgprof_profile_intern(&p, buf, 5);
    strcpy(buf, "world");
    const char *b = cgprof_profile_intern(&p, buf, 5);
    const char *c = cgprof_profile_intern(&p, "hello, there", 5);
    ck_assert_str_eq(a, "hello");
    ck_assert_str_eq(b, "world");
    ck_assert_ptr_eq(a, c);
    ck_assert_ptr_ne(a, b);
    /* n stops at a NUL */
    ck_assert_ptr_eq(cgprof_profile_intern(&p, "hello\0junk", 10), a);
    /* the empty string is a name like any other */
    const char *e = cgprof_profile_intern(&p, "", 0);
    ck_assert_str_eq(e, "");
    ck_assert_ptr_eq(cgprof_profile_intern(&p, "x", 0), e);
    /* many names force the table to grow; all stay distinct and stable */
    const char *keep[5000];
    for (int i = 0; i < 5000; i++) {
        char n[32];
        int len = snprintf(n, sizeof(n), "name-%d", i);
        keep[i] = cgprof_profile_intern(&p, n, (size_t)len);
        ck_assert_ptr_nonnull(keep[i]);
    }
    for (int i = 0; i < 5000; i++) {
        char n[32];
        int len = snprintf(n, sizeof(n), "name-%d", i);
        ck_assert_ptr_eq(cgprof_profile_intern(&p, n, (size_t)len), keep[i]);
        ck_assert_str_eq(keep[i], n);
    }
    cgprof_profile_cleanup(&p);
}
END_TEST

START_TEST(test_profile_child_find_or_create)
{
    struct cgprof_profile p;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    struct cgprof_node *a = cgprof_profile_child(&p, &p.root, "a");
    struct cgprof_node *b = cgprof_profile_child(&p, &p.root, "b");
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_ne(a, b);
    ck_assert_ptr_eq(cgprof_profile_child(&p, &p.root, "a"), a);
    struct cgprof_node *aa = cgprof_profile_child(&p, a, "a");
    ck_assert_ptr_ne(aa, a);
    ck_assert_ptr_eq(aa->parent, a);
    ck_assert_ptr_eq(cgprof_profile_child(&p, b, "a"), cgprof_profile_child(&p, b, "a"));
    ck_assert_ptr_ne(cgprof_profile_child(&p, b, "a"), aa);
    ck_assert_uint_eq(p.node_count, 4);
    ck_assert_uint_eq(count_linked(&p.root), 4);
    ck_assert_ptr_eq(a->name, cgprof_profile_intern(&p, "a", 1));
    cgprof_profile_cleanup(&p);
}
END_TEST

/* A caller may reuse one buffer for different names: the pointer cache
 * must never return the name the buffer held before. */
START_TEST(test_profile_add_stack_reused_buffer)
{
    struct cgprof_profile p;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    char f0[32], f1[32];
    const char *frames[2] = { f0, f1 };
    for (int i = 0; i < 50; i++) {
        snprintf(f0, sizeof(f0), "main");
        snprintf(f1, sizeof(f1), "leaf%d", i % 5);
        ck_assert_int_eq(cgprof_profile_add_stack(&p, frames, 2, CGPROF_COUNTER_RUNNABLE, 1), 0);
    }
    ck_assert_uint_eq(p.node_count, 6);
    for (int i = 0; i < 5; i++) {
        char leaf[16];
        snprintf(leaf, sizeof(leaf), "leaf%d", i);
        const char *path[] = { "main", leaf };
        const struct cgprof_node *n = find_path(&p, path, 2);
        ck_assert_ptr_nonnull(n);
        ck_assert_uint_eq(n->counts[CGPROF_COUNTER_RUNNABLE], 10);
    }
    cgprof_profile_cleanup(&p);
}
END_TEST

static const struct add_case {
    const char *frames[4];
    size_t n;
    enum cgprof_counter c;
    uint64_t count;
} add_cases[] = {
    { { "main", "run", "work" }, 3, CGPROF_COUNTER_RUNNABLE, 5 },
    { { "main", "run", "work" }, 3, CGPROF_COUNTER_RUNNABLE, 2 },
    { { "main", "run", "work" }, 3, CGPROF_COUNTER_BLOCKED, 1 },
    { { "main", "run" }, 2, CGPROF_COUNTER_WAITING, 4 },
    { { "main", "idle" }, 2, CGPROF_COUNTER_IDLE, 7 },
    { { "thread", "run", "work" }, 3, CGPROF_COUNTER_NATIVE, 3 },
    { { "main", "run", "work", "deeper" }, 4, CGPROF_COUNTER_TIMED_WAITING, 6 },
    { { NULL }, 0, CGPROF_COUNTER_RUNNABLE, 9 },
};

START_TEST(test_profile_add_stack_table)
{
    struct cgprof_profile p;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    for (size_t i = 0; i < CGPROF_ARRAY_SIZE(add_cases); i++) {
        const struct add_case *t = &add_cases[i];
        ck_assert_int_eq(cgprof_profile_add_stack(&p, t->frames, t->n, t->c, t->count), 0);
    }
    /* main, run, work, deeper, idle, thread, run, work */
    ck_assert_uint_eq(p.node_count, 8);
    ck_assert_uint_eq(count_linked(&p.root), 8);
    ck_assert_uint_eq(cgprof_profile_total(&p, CGPROF_COUNTER_RUNNABLE), 16);
    ck_assert_uint_eq(cgprof_profile_total(&p, CGPROF_COUNTER_BLOCKED), 1);
    ck_assert_uint_eq(cgprof_profile_total(&p, CGPROF_COUNTER_WAITING), 4);
    ck_assert_uint_eq(cgprof_profile_total(&p, CGPROF_COUNTER_IDLE), 7);
    ck_assert_uint_eq(cgprof_profile_total(&p, CGPROF_COUNTER_NATIVE), 3);
    ck_assert_uint_eq(cgprof_profile_total(&p, CGPROF_COUNTER_TIMED_WAITING), 6);
    ck_assert_uint_eq(p.root.counts[CGPROF_COUNTER_RUNNABLE], 9);
    const char *w[] = { "main", "run", "work" };
    const struct cgprof_node *n = find_path(&p, w, 3);
    ck_assert_uint_eq(n->counts[CGPROF_COUNTER_RUNNABLE], 7);
    ck_assert_uint_eq(n->counts[CGPROF_COUNTER_BLOCKED], 1);
    /* self counts only: the parent holds none of its child's samples */
    ck_assert_uint_eq(find_path(&p, w, 2)->counts[CGPROF_COUNTER_RUNNABLE], 0);
    /* bad arguments change nothing */
    const char *bad[] = { "main", NULL };
    ck_assert_int_eq(cgprof_profile_add_stack(&p, bad, 2, CGPROF_COUNTER_RUNNABLE, 1),
                     CGPROF_EINVAL);
    ck_assert_int_eq(cgprof_profile_add_stack(&p, w, 3, CGPROF_NCOUNTERS, 1), CGPROF_EINVAL);
    ck_assert_int_eq(cgprof_profile_add_stack(&p, NULL, 1, CGPROF_COUNTER_RUNNABLE, 1),
                     CGPROF_EINVAL);
    ck_assert_uint_eq(p.node_count, 8);
    ck_assert_uint_eq(cgprof_profile_total(&p, CGPROF_COUNTER_RUNNABLE), 16);
    cgprof_profile_cleanup(&p);
}
END_TEST

/* Stacks deeper than the memo and than one block of frames, alternating
 * so that the memo is both hit and missed. */
START_TEST(test_profile_add_stack_deep_alternating)
{
    struct cgprof_profile p;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    enum { DEPTH = 300 };
    static char names[DEPTH][16];
    const char *a[DEPTH], *b[DEPTH];
    for (int i = 0; i < DEPTH; i++) {
        snprintf(names[i], sizeof(names[i]), "f%d", i);
        a[i] = b[i] = names[i];
    }
    b[200] = "other";  /* diverges beyond the memo depth */
    b[DEPTH - 1] = "x"; /* and at the leaf */
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(cgprof_profile_add_stack(&p, a, DEPTH, CGPROF_COUNTER_RUNNABLE, 1), 0);
        ck_assert_int_eq(cgprof_profile_add_stack(&p, b, DEPTH, CGPROF_COUNTER_RUNNABLE, 2), 0);
        ck_assert_int_eq(cgprof_profile_add_stack(&p, a, 50, CGPROF_COUNTER_BLOCKED, 1), 0);
    }
    ck_assert_uint_eq(p.node_count, DEPTH + (DEPTH - 200));
    ck_assert_uint_eq(count_linked(&p.root), p.node_count);
    ck_assert_uint_eq(find_path(&p, a, DEPTH)->counts[CGPROF_COUNTER_RUNNABLE], 10);
    ck_assert_uint_eq(find_path(&p, b, DEPTH)->counts[CGPROF_COUNTER_RUNNABLE], 20);
    ck_assert_uint_eq(find_path(&p, a, 50)->counts[CGPROF_COUNTER_BLOCKED], 10);
    cgprof_profile_cleanup(&p);
}
END_TEST

/* 100 000 nodes: the child index grows many times and every node stays
 * reachable both through the index and through the links. */
START_TEST(test_profile_add_stack_many_nodes)
{
    struct cgprof_profile p;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    char f[3][24];
    const char *frames[3] = { f[0], f[1], f[2] };
    for (int i = 0; i < 100000; i++) {
        snprintf(f[0], sizeof(f[0]), "t%d", i % 10);
        snprintf(f[1], sizeof(f[1]), "m%d", i % 1000);
        snprintf(f[2], sizeof(f[2]), "leaf%d", i);
        ck_assert_int_eq(cgprof_profile_add_stack(&p, frames, 3, CGPROF_COUNTER_RUNNABLE, 1), 0);
    }
    /* 10 + 1000 (m%1000 under fixed t%10) + 100000 leaves */
    ck_assert_uint_eq(p.node_count, 10 + 1000 + 100000);
    ck_assert_uint_eq(count_linked(&p.root), p.node_count);
    ck_assert_uint_eq(cgprof_profile_total(&p, CGPROF_COUNTER_RUNNABLE), 100000);
    size_t before = p.node_count;
    for (int i = 0; i < 100000; i += 997) {
        snprintf(f[0], sizeof(f[0]), "t%d", i % 10);
        snprintf(f[1], sizeof(f[1]), "m%d", i % 1000);
        snprintf(f[2], sizeof(f[2]), "leaf%d", i);
        const struct cgprof_node *n = find_path(&p, frames, 3);
        ck_assert_ptr_nonnull(n);
        ck_assert_uint_eq(n->counts[CGPROF_COUNTER_RUNNABLE], 1);
        ck_assert_int_eq(cgprof_profile_add_stack(&p, frames, 3, CGPROF_COUNTER_RUNNABLE, 1), 0);
        ck_assert_uint_eq(n->counts[CGPROF_COUNTER_RUNNABLE], 2);
    }
    ck_assert_uint_eq(p.node_count, before);
    size_t mem = cgprof_profile_memory(&p);
    ck_assert_uint_gt(mem, 100000 * sizeof(struct cgprof_node));
    ck_assert_uint_lt(mem, 64u << 20);
    cgprof_profile_cleanup(&p);
}
END_TEST

START_TEST(test_profile_reset_empties)
{
    struct cgprof_profile p;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    size_t empty_mem = cgprof_profile_memory(&p);
    char f[2][24];
    const char *frames[2] = { f[0], f[1] };
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 50000; i++) {
            snprintf(f[0], sizeof(f[0]), "a%d", i % 7);
            snprintf(f[1], sizeof(f[1]), "b%d", i);
            ck_assert_int_eq(cgprof_profile_add_stack(&p, frames, 2, CGPROF_COUNTER_IDLE, 1), 0);
        }
        p.start_ms = 5;
        snprintf(p.group_name, sizeof(p.group_name), "g");
        p.fleet_info_json = cgprof_strdup("{\"a\": 1}");
        ck_assert_uint_eq(p.node_count, 50007);
        size_t big = cgprof_profile_memory(&p);
        ck_assert_int_eq(cgprof_profile_reset(&p), 0);
        ck_assert_uint_eq(p.node_count, 0);
        ck_assert_ptr_null(p.root.first_child);
        ck_assert_uint_eq(cgprof_profile_total(&p, CGPROF_COUNTER_IDLE), 0);
        ck_assert_uint_eq(p.start_ms, 0);
        ck_assert_str_eq(p.group_name, "");
        ck_assert_ptr_null(p.fleet_info_json);
        /* big tables and extra chunks are given back */
        ck_assert_uint_lt(cgprof_profile_memory(&p), big / 4);
        ck_assert_uint_lt(cgprof_profile_memory(&p), empty_mem + (64u << 10));
    }
    /* the memo of the last stack must not survive the reset */
    const char *s[] = { "x", "y" };
    ck_assert_int_eq(cgprof_profile_add_stack(&p, s, 2, CGPROF_COUNTER_RUNNABLE, 1), 0);
    ck_assert_int_eq(cgprof_profile_reset(&p), 0);
    ck_assert_int_eq(cgprof_profile_add_stack(&p, s, 2, CGPROF_COUNTER_RUNNABLE, 3), 0);
    ck_assert_uint_eq(p.node_count, 2);
    ck_assert_uint_eq(find_path(&p, s, 2)->counts[CGPROF_COUNTER_RUNNABLE], 3);
    cgprof_profile_cleanup(&p);
}
END_TEST

START_TEST(test_profile_merge_trees_and_meta)
{
    struct cgprof_profile a, b;
    ck_assert_int_eq(cgprof_profile_init(&a), 0);
    ck_assert_int_eq(cgprof_profile_init(&b), 0);
    const char *s1[] = { "main", "f", "g" }, *s2[] = { "main", "h" }, *s3[] = { "other" };
    ck_assert_int_eq(cgprof_profile_add_stack(&a, s1, 3, CGPROF_COUNTER_RUNNABLE, 2), 0);
    ck_assert_int_eq(cgprof_profile_add_stack(&a, s2, 2, CGPROF_COUNTER_BLOCKED, 1), 0);
    ck_assert_int_eq(cgprof_profile_add_stack(&b, s1, 3, CGPROF_COUNTER_RUNNABLE, 3), 0);
    ck_assert_int_eq(cgprof_profile_add_stack(&b, s3, 1, CGPROF_COUNTER_IDLE, 4), 0);
    ck_assert_int_eq(cgprof_profile_add_stack(&b, s1, 0, CGPROF_COUNTER_RUNNABLE, 1), 0);
    a.start_ms = 2000, a.end_ms = 3000, a.duration_ms = 1000, a.num_times_sampled = 10;
    a.num_threads = 2.0, a.cpu_time_s = 0.5, a.samples_dropped = 1;
    a.sample_weights[CGPROF_COUNTER_RUNNABLE] = 100;
    b.start_ms = 1000, b.end_ms = 2500, b.duration_ms = 1500, b.num_times_sampled = 30;
    b.num_threads = 4.0, b.cpu_time_s = 0.25, b.samples_dropped = 2;
    b.sample_weights[CGPROF_COUNTER_RUNNABLE] = 50;
    b.sample_weights[CGPROF_COUNTER_IDLE] = 1;
    snprintf(b.group_name, sizeof(b.group_name), "grp");
    b.fleet_info_json = cgprof_strdup("{\"id\": \"x\"}");
    b.errors.post_agent_profile_errors = 2;
    a.errors.post_agent_profile_errors = 1;

    ck_assert_int_eq(cgprof_profile_merge(&a, &b), 0);
    ck_assert_uint_eq(a.node_count, 5); /* main f g h other */
    ck_assert_uint_eq(count_linked(&a.root), 5);
    ck_assert_uint_eq(find_path(&a, s1, 3)->counts[CGPROF_COUNTER_RUNNABLE], 5);
    ck_assert_uint_eq(find_path(&a, s3, 1)->counts[CGPROF_COUNTER_IDLE], 4);
    ck_assert_uint_eq(a.root.counts[CGPROF_COUNTER_RUNNABLE], 1);
    ck_assert_uint_eq(cgprof_profile_total(&a, CGPROF_COUNTER_RUNNABLE), 6);
    ck_assert_uint_eq(a.start_ms, 1000);
    ck_assert_uint_eq(a.end_ms, 3000);
    ck_assert_uint_eq(a.duration_ms, 2500);
    ck_assert_uint_eq(a.num_times_sampled, 40);
    ck_assert_double_eq_tol(a.num_threads, 3.5, 1e-9);
    ck_assert_double_eq_tol(a.cpu_time_s, 0.75, 1e-9);
    ck_assert_uint_eq(a.samples_dropped, 3);
    ck_assert_double_eq(a.sample_weights[CGPROF_COUNTER_RUNNABLE], 100);
    ck_assert_double_eq(a.sample_weights[CGPROF_COUNTER_IDLE], 1);
    ck_assert_str_eq(a.group_name, "grp");
    ck_assert_str_eq(a.fleet_info_json, "{\"id\": \"x\"}");
    ck_assert_uint_eq(a.errors.post_agent_profile_errors, 3);
    /* src is untouched; its names are copied, not shared */
    ck_assert_uint_eq(b.node_count, 4);
    ck_assert_ptr_ne(find_path(&a, s3, 1)->name, find_path(&b, s3, 1)->name);
    ck_assert_int_eq(cgprof_profile_merge(&a, &a), CGPROF_EINVAL);
    cgprof_profile_cleanup(&b);
    /* a no longer refers to b's memory */
    ck_assert_str_eq(find_path(&a, s3, 1)->name, "other");
    cgprof_profile_cleanup(&a);
}
END_TEST

/* Each allocation in turn fails: the result is ENOMEM or success, never a
 * crash or a leak (ASan checks), and the tree stays consistent. */
START_TEST(test_profile_alloc_failures)
{
    for (long k = 0; k < 40; k++) {
        struct cgprof_profile p, q;
        cgprof_alloc_fail_after(k);
        int rc = cgprof_profile_init(&p);
        if (rc != 0) {
            cgprof_alloc_fail_after(-1);
            ck_assert_int_eq(rc, CGPROF_ENOMEM);
            continue;
        }
        char f[2][24];
        const char *frames[2] = { f[0], f[1] };
        int failed = 0;
        for (int i = 0; i < 3000 && !failed; i++) {
            snprintf(f[0], sizeof(f[0]), "a%d", i % 3);
            snprintf(f[1], sizeof(f[1]), "b%d", i);
            rc = cgprof_profile_add_stack(&p, frames, 2, CGPROF_COUNTER_RUNNABLE, 1);
            if (rc) {
                ck_assert_int_eq(rc, CGPROF_ENOMEM);
                failed = 1;
            }
        }
        if (cgprof_profile_init(&q) == 0) {
            rc = cgprof_profile_merge(&q, &p);
            ck_assert(rc == 0 || rc == CGPROF_ENOMEM);
            ck_assert_uint_eq(count_linked(&q.root), q.node_count);
            cgprof_profile_cleanup(&q);
        }
        cgprof_alloc_fail_after(-1);
        ck_assert_uint_eq(count_linked(&p.root), p.node_count);
        cgprof_profile_cleanup(&p);
    }
}
END_TEST

static Suite *tree_suite(void)
{
    Suite *s = suite_create("profile");
    TCase *tc = tcase_create("tree");
    tcase_add_test(tc, test_counter_names_round_trip);
    tcase_add_test(tc, test_profile_init_empty);
    tcase_add_test(tc, test_profile_intern_dedups);
    tcase_add_test(tc, test_profile_child_find_or_create);
    tcase_add_test(tc, test_profile_add_stack_reused_buffer);
    tcase_add_test(tc, test_profile_add_stack_table);
    tcase_add_test(tc, test_profile_add_stack_deep_alternating);
    tcase_add_test(tc, test_profile_add_stack_many_nodes);
    tcase_add_test(tc, test_profile_reset_empties);
    tcase_add_test(tc, test_profile_merge_trees_and_meta);
    tcase_add_test(tc, test_profile_alloc_failures);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cgprof_test_run(tree_suite());
}
