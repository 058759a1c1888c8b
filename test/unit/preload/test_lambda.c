/* Unit tests for preload/lambda.c: Lambda detection from the environment
 * and the freeze arithmetic (a wait that overran its timeout by more than
 * the slack counts as frozen time, an ordinary wait does not). */
#include <stdlib.h>

#include "helpers.h"
#include "../../../preload/preload_int.h"

#define MS 1000000ull

static const struct detect_case {
    const char *fn, *task_root, *runtime_dir;
    bool want;
} detect_cases[] = {
    { "my-fn", "/var/task", "/var/runtime", true },
    { "my-fn", "/var/task", NULL, true },
    { "my-fn", NULL, "/var/runtime", true },
    { "my-fn", NULL, NULL, false },         /* a name alone is not Lambda */
    { NULL, "/var/task", "/var/runtime", false },
    { "", "/var/task", "/var/runtime", false },
    { "my-fn", "", "", false },
};

static void set_or_unset(const char *k, const char *v)
{
    if (v)
        setenv(k, v, 1);
    else
        unsetenv(k);
}

START_TEST(test_lambda_detect_table)
{
    for (size_t i = 0; i < sizeof(detect_cases) / sizeof(detect_cases[0]); i++) {
        const struct detect_case *t = &detect_cases[i];
        set_or_unset("AWS_LAMBDA_FUNCTION_NAME", t->fn);
        set_or_unset("LAMBDA_TASK_ROOT", t->task_root);
        set_or_unset("LAMBDA_RUNTIME_DIR", t->runtime_dir);
        ck_assert_msg(cgprof__lambda_detect() == t->want, "row %zu", i);
    }
}
END_TEST

static const struct frozen_case {
    uint64_t before, after;
    unsigned wait_ms;
    uint64_t want;
} frozen_cases[] = {
    { 1000 * MS, 1100 * MS, 100, 0 },               /* the wait as planned */
    { 1000 * MS, 1050 * MS, 100, 0 },               /* woken early */
    { 1000 * MS, 1000 * MS + 100 * MS + CGPROF__FREEZE_SLACK_MS * MS, 100, 0 },  /* late, within slack */
    { 1000 * MS, 1000 * MS + 100 * MS + CGPROF__FREEZE_SLACK_MS * MS + 1, 100,
      CGPROF__FREEZE_SLACK_MS * MS + 1 },           /* just past the slack */
    { 1000 * MS, 3600 * MS, 100, 2500 * MS },       /* frozen 2.5 s */
    { 1000 * MS, 9000 * MS, 0, 8000 * MS },         /* no wait at all */
    { 2000 * MS, 1000 * MS, 100, 0 },               /* clock went backwards: nothing */
};

START_TEST(test_lambda_frozen_ns_table)
{
    for (size_t i = 0; i < sizeof(frozen_cases) / sizeof(frozen_cases[0]); i++) {
        const struct frozen_case *t = &frozen_cases[i];
        ck_assert_msg(cgprof__lambda_frozen_ns(t->before, t->after, t->wait_ms) == t->want,
                      "row %zu: got %llu", i,
                      (unsigned long long)cgprof__lambda_frozen_ns(t->before, t->after,
                                                                   t->wait_ms));
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("preload");
    TCase *tc = tcase_create("lambda");
    tcase_add_test(tc, test_lambda_detect_table);
    tcase_add_test(tc, test_lambda_frozen_ns_table);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cgprof_test_run(suite());
}
