/* Unit tests for profile/folded.c: counter masks, path order independent
 * of insertion order, separator sanitizing, and the output bound. */
#include <string.h>

#include "helpers.h"
#include "../../../profile/profile.h"

#define BIT(c) (1u << (c))

static const struct stack {
    const char *frames[4];
    size_t n;
    enum cgprof_counter c;
    uint64_t count;
} stacks[] = {
    { { "main", "b", "leaf" }, 3, CGPROF_COUNTER_RUNNABLE, 3 },
    { { "main", "a" }, 2, CGPROF_COUNTER_RUNNABLE, 2 },
    { { "main", "a" }, 2, CGPROF_COUNTER_BLOCKED, 5 },
    { { "main", "b" }, 2, CGPROF_COUNTER_IDLE, 7 },
    { { "main", "a!x" }, 2, CGPROF_COUNTER_WAITING, 1 },
    { { "thread" }, 1, CGPROF_COUNTER_NATIVE, 4 },
    { { NULL }, 0, CGPROF_COUNTER_RUNNABLE, 100 }, /* root: never a line */
};

static const struct mask_case {
    unsigned mask;
    const char *want;
} mask_cases[] = {
    { BIT(CGPROF_COUNTER_RUNNABLE), "main;a 2\nmain;b;leaf 3\n" },
    { BIT(CGPROF_COUNTER_RUNNABLE) | BIT(CGPROF_COUNTER_BLOCKED) | BIT(CGPROF_COUNTER_NATIVE),
      "main;a 7\nmain;b;leaf 3\nthread 4\n" },
    { (1u << CGPROF_NCOUNTERS) - 1,
      "main;a 7\nmain;a!x 1\nmain;b 7\nmain;b;leaf 3\nthread 4\n" },
    { BIT(CGPROF_COUNTER_IDLE), "main;b 7\n" },
    { BIT(CGPROF_COUNTER_TIMED_WAITING), "" },
    { 0, "" },
};

static void build(struct cgprof_profile *p, int reverse)
{
    ck_assert_int_eq(cgprof_profile_init(p), 0);
    size_t n = CGPROF_ARRAY_SIZE(stacks);
    for (size_t k = 0; k < n; k++) {
        const struct stack *s = &stacks[reverse ? n - 1 - k : k];
        ck_assert_int_eq(cgprof_profile_add_stack(p, s->frames, s->n, s->c, s->count), 0);
    }
}

START_TEST(test_folded_masks)
{
    const struct mask_case *t = &mask_cases[_i];
    for (int reverse = 0; reverse < 2; reverse++) {
        struct cgprof_profile p;
        build(&p, reverse);
        struct cgprof_buf b;
        cgprof_buf_init(&b, 1 << 20);
        ck_assert_int_eq(cgprof_profile_encode_folded(&p, t->mask, &b), 0);
        ck_assert_str_eq(b.data ? b.data : "", t->want);
        cgprof_buf_cleanup(&b);
        cgprof_profile_cleanup(&p);
    }
}
END_TEST

START_TEST(test_folded_sanitizes_names)
{
    struct cgprof_profile p;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    const char *s[] = { "a;b", "line\nbreak\r", "operator() (int, char)" };
    ck_assert_int_eq(cgprof_profile_add_stack(&p, s, 3, CGPROF_COUNTER_RUNNABLE, 9), 0);
    struct cgprof_buf b;
    cgprof_buf_init(&b, 1 << 20);
    ck_assert_int_eq(cgprof_profile_encode_folded(&p, 1, &b), 0);
    ck_assert_str_eq(b.data, "a:b;line break ;operator() (int, char) 9\n");
    /* the profile's names are not modified */
    ck_assert_str_eq(p.root.first_child->name, "a;b");
    cgprof_buf_cleanup(&b);
    cgprof_profile_cleanup(&p);
}
END_TEST

START_TEST(test_folded_bound)
{
    struct cgprof_profile p;
    build(&p, 0);
    struct cgprof_buf b;
    cgprof_buf_init(&b, 20);
    ck_assert_int_eq(cgprof_buf_appends(&b, "x"), 0);
    ck_assert_int_eq(cgprof_profile_encode_folded(&p, 0x3f, &b), CGPROF_ETOOBIG);
    ck_assert_str_eq(b.data, "x");
    ck_assert_uint_eq(b.len, 1);
    cgprof_buf_cleanup(&b);
    /* appends after existing content */
    cgprof_buf_init(&b, 1 << 20);
    ck_assert_int_eq(cgprof_buf_appends(&b, "# head\n"), 0);
    ck_assert_int_eq(cgprof_profile_encode_folded(&p, BIT(CGPROF_COUNTER_IDLE), &b), 0);
    ck_assert_str_eq(b.data, "# head\nmain;b 7\n");
    cgprof_buf_cleanup(&b);
    cgprof_profile_cleanup(&p);
}
END_TEST

START_TEST(test_folded_deep_stack)
{
    struct cgprof_profile p;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    const char *frames[2000];
    for (int i = 0; i < 2000; i++)
        frames[i] = "f";
    ck_assert_int_eq(cgprof_profile_add_stack(&p, frames, 2000, CGPROF_COUNTER_RUNNABLE, 1), 0);
    struct cgprof_buf b;
    cgprof_buf_init(&b, 1 << 20);
    ck_assert_int_eq(cgprof_profile_encode_folded(&p, 1, &b), 0);
    ck_assert_uint_eq(b.len, 2000 * 2 - 1 + 3);
    ck_assert_str_eq(b.data + b.len - 5, "f;f 1\n" + 1);
    cgprof_buf_cleanup(&b);
    cgprof_profile_cleanup(&p);
}
END_TEST

static Suite *folded_suite(void)
{
    Suite *s = suite_create("profile");
    TCase *tc = tcase_create("folded");
    tcase_add_loop_test(tc, test_folded_masks, 0, (int)CGPROF_ARRAY_SIZE(mask_cases));
    tcase_add_test(tc, test_folded_sanitizes_names);
    tcase_add_test(tc, test_folded_bound);
    tcase_add_test(tc, test_folded_deep_stack);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cgprof_test_run(folded_suite());
}
