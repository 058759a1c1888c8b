/* Unit tests for config/validate.c: group names, regions, ARNs, integers,
 * booleans, sinks, URLs, paths, profile names, log escaping and the
 * setter's one-line errors. Inputs with explicit lengths are passed from
 * guard-page copies so a read past the length crashes the test. */
#include <check.h>
#include <string.h>

#include "config_test.h"

static char long_name[300];   /* 'a' x 255, then longer variants */

struct str_case {
    const char *s;
    bool ok;
};

/* ---- group names ---- */

static const struct str_case group_names[] = {
    { "a", true }, { "My_Group-1", true }, { "___", true }, { "-", true },
    { "", false }, { "a b", false }, { "a/b", false }, { "a.b", false },
    { "caf\xc3\xa9", false }, { "name\n", false }, { "a:b", false },
};

START_TEST(test_config_valid_group_name_table)
{
    const struct str_case *c = &group_names[_i];
    ck_assert_msg(cgprof_config_valid_group_name(c->s) == c->ok, "'%s'", c->s);
}
END_TEST

START_TEST(test_config_valid_group_name_length)
{
    memset(long_name, 'a', 255);
    long_name[255] = '\0';
    ck_assert(cgprof_config_valid_group_name(long_name));
    long_name[255] = 'a';
    long_name[256] = '\0';
    ck_assert(!cgprof_config_valid_group_name(long_name));
    ck_assert(!cgprof_config_valid_group_name(NULL));
}
END_TEST

/* ---- regions ---- */

static const struct str_case regions[] = {
    { "us-east-1", true }, { "cn-north-1", true }, { "us-gov-west-1", true },
    { "eu-central-2", true }, { "ap-southeast-4", true }, { "us-isob-east-1", true },
    { "il-central-1", true }, { "me-south-10", true },
    { "", false }, { "US-EAST-1", false }, { "us-east", false }, { "useast1", false },
    { "us-east-1a", false }, { "us-east-123", false }, { "us_east_1", false },
    { "u-east-1", false }, { ":bogus", false }, { "us-east-1 ", false },
    { "us-a-b-c-1", true }, { "us-a-b-c-d-1", false }, { "us--1", false }, { "us-east--1", false },
    { "us-eastttttttttttttttttttttttttt-1", false }, { "us-1", false },
};

START_TEST(test_config_valid_region_table)
{
    const struct str_case *c = &regions[_i];
    ck_assert_msg(cgprof_config_valid_region(c->s) == c->ok, "'%s'", c->s);
}
END_TEST

/* ---- ARNs ---- */

struct arn_case {
    const char *arn;
    int rc;
    const char *name, *region, *account;
};

static const struct arn_case arns[] = {
    { "arn:aws:codeguru-profiler:us-east-1:123456789012:profilingGroup/MyGroup", 0,
      "MyGroup", "us-east-1", "123456789012" },
    { "arn:aws-cn:codeguru-profiler:cn-north-1:000000000000:profilingGroup/a_b-c", 0,
      "a_b-c", "cn-north-1", "000000000000" },
    { "arn:aws-us-gov:codeguru-profiler:us-gov-west-1:111122223333:profilingGroup/G", 0,
      "G", "us-gov-west-1", "111122223333" },
    { "arn:aws-iso-b:codeguru-profiler:us-isob-east-1:111122223333:profilingGroup/G", 0,
      "G", "us-isob-east-1", "111122223333" },
    { "", CGPROF_EINVAL, NULL, NULL, NULL },
    { "arn:aws", CGPROF_EINVAL, NULL, NULL, NULL },
    { "arn:aws:s3:::bucket", CGPROF_EINVAL, NULL, NULL, NULL },
    { "arn:aws:codeguru-profiler:us-east-1:123456789012:profilinggroup/G", CGPROF_EINVAL, NULL, NULL, NULL },
    { "arn:aws:codeguru-profiler:us-east-1:12345678901:profilingGroup/G", CGPROF_EINVAL, NULL, NULL, NULL },
    { "arn:aws:codeguru-profiler:us-east-1:12345678901x:profilingGroup/G", CGPROF_EINVAL, NULL, NULL, NULL },
    { "arn:aws:codeguru-profiler:us-east-1:123456789012:profilingGroup/", CGPROF_EINVAL, NULL, NULL, NULL },
    { "arn:aws:codeguru-profiler:us-east-1:123456789012:profilingGroup/a/b", CGPROF_EINVAL, NULL, NULL, NULL },
    { "arn:aws:codeguru-profiler:us-east-1:123456789012:profilingGroup/G:x", CGPROF_EINVAL, NULL, NULL, NULL },
    { "arn:aws:codeguru-profiler:moon:123456789012:profilingGroup/G", CGPROF_EINVAL, NULL, NULL, NULL },
    { "arn:azure:codeguru-profiler:us-east-1:123456789012:profilingGroup/G", CGPROF_EINVAL, NULL, NULL, NULL },
    { "arn:aws-:codeguru-profiler:us-east-1:123456789012:profilingGroup/G", CGPROF_EINVAL, NULL, NULL, NULL },
    { "ARN:aws:codeguru-profiler:us-east-1:123456789012:profilingGroup/G", CGPROF_EINVAL, NULL, NULL, NULL },
    { " arn:aws:codeguru-profiler:us-east-1:123456789012:profilingGroup/G", CGPROF_EINVAL, NULL, NULL, NULL },
    { "arn:aws:codeguru-profiler:us-east-1:123456789012:profilingGroup/G ", CGPROF_EINVAL, NULL, NULL, NULL },
};

START_TEST(test_config_parse_arn_table)
{
    const struct arn_case *c = &arns[_i];
    char name[CGPROF_NAME_MAX] = "untouched", region[64] = "untouched", account[16] = "untouched";
    const char *arn = cgprof_test_guarded_copy(c->arn, strlen(c->arn) + 1);
    int rc = cgprof_config_parse_arn(arn, name, sizeof(name), region, sizeof(region),
                                     account, sizeof(account));
    ck_assert_msg(rc == c->rc, "'%s': rc %d", c->arn, rc);
    ck_assert_str_eq(name, c->rc == 0 ? c->name : "untouched");
    ck_assert_str_eq(region, c->rc == 0 ? c->region : "untouched");
    ck_assert_str_eq(account, c->rc == 0 ? c->account : "untouched");
}
END_TEST

/* Output buffers too small fail without writing anything; NULL outputs
 * are allowed; an over-long ARN and NULL are rejected. */
START_TEST(test_config_parse_arn_bounds)
{
    const char *arn = "arn:aws:codeguru-profiler:us-east-1:123456789012:profilingGroup/MyGroup";
    char name[7] = "xxxxxx", region[64] = "r", account[16] = "a";
    ck_assert_int_eq(cgprof_config_parse_arn(arn, name, sizeof(name), region, sizeof(region),
                                             account, sizeof(account)), CGPROF_EINVAL);
    ck_assert_str_eq(name, "xxxxxx");
    ck_assert_str_eq(region, "r");
    ck_assert_int_eq(cgprof_config_parse_arn(arn, NULL, 0, region, sizeof(region), NULL, 0), 0);
    ck_assert_str_eq(region, "us-east-1");
    ck_assert_int_eq(cgprof_config_parse_arn(arn, NULL, 0, NULL, 0, account, 12), CGPROF_EINVAL);
    ck_assert_int_eq(cgprof_config_parse_arn(NULL, NULL, 0, NULL, 0, NULL, 0), CGPROF_EINVAL);
    char big[1200];
    int n = snprintf(big, sizeof(big), "arn:aws:codeguru-profiler:us-east-1:123456789012:profilingGroup/");
    memset(big + n, 'g', sizeof(big) - (size_t)n - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(cgprof_config_parse_arn(big, NULL, 0, NULL, 0, NULL, 0), CGPROF_EINVAL);
}
END_TEST

/* ---- scalar parsers ---- */

struct uint_case {
    const char *s;
    int rc;
    unsigned v;
};

static const struct uint_case uints[] = {
    { "0", 0, 0 }, { "10", 0, 10 }, { "007", 0, 7 }, { "4294967295", 0, 4294967295u },
    { "4294967296", CGPROF_EINVAL, 0 }, { "99999999999999999999999", CGPROF_EINVAL, 0 },
    { "-1", CGPROF_EINVAL, 0 }, { "+1", CGPROF_EINVAL, 0 }, { " 1", CGPROF_EINVAL, 0 },
    { "1 ", CGPROF_EINVAL, 0 }, { "1x", CGPROF_EINVAL, 0 }, { "0x10", CGPROF_EINVAL, 0 },
    { "", CGPROF_EINVAL, 0 }, { "1.0", CGPROF_EINVAL, 0 }, { "1e3", CGPROF_EINVAL, 0 },
};

START_TEST(test_config_parse_uint_table)
{
    const struct uint_case *c = &uints[_i];
    unsigned v = 12345;
    size_t len = strlen(c->s);
    const char *s = cgprof_test_guarded_copy(c->s, len); /* no NUL: length only */
    ck_assert_msg(cgprof__config_parse_uint(s, len, &v) == c->rc, "'%s'", c->s);
    ck_assert_uint_eq(v, c->rc == 0 ? c->v : 12345);
}
END_TEST

struct bool_case {
    const char *s;
    int rc;
    bool v;
};

static const struct bool_case bools[] = {
    { "true", 0, true }, { "TRUE", 0, true }, { "False", 0, false }, { "fAlSe", 0, false },
    { "1", CGPROF_EINVAL, false }, { "yes", CGPROF_EINVAL, false }, { "", CGPROF_EINVAL, false },
    { "truex", CGPROF_EINVAL, false }, { "tru", CGPROF_EINVAL, false }, { "on", CGPROF_EINVAL, false },
};

START_TEST(test_config_parse_bool_table)
{
    const struct bool_case *c = &bools[_i];
    bool v = !c->v;
    size_t len = strlen(c->s);
    const char *s = cgprof_test_guarded_copy(c->s, len);
    ck_assert_msg(cgprof__config_parse_bool(s, len, &v) == c->rc, "'%s'", c->s);
    if (c->rc == 0)
        ck_assert(v == c->v);
}
END_TEST

struct sink_case {
    const char *s;
    int rc;
    unsigned v;
};

static const struct sink_case sinks[] = {
    { "codeguru", 0, CGPROF_SINK_CODEGURU }, { "file", 0, CGPROF_SINK_FILE },
    { "pyroscope", 0, CGPROF_SINK_PYROSCOPE },
    { "codeguru+file", 0, CGPROF_SINK_CODEGURU | CGPROF_SINK_FILE },
    { "FILE", 0, CGPROF_SINK_FILE }, { "file + pyroscope", 0, CGPROF_SINK_FILE | CGPROF_SINK_PYROSCOPE },
    { "file+file", 0, CGPROF_SINK_FILE },
    { "codeguru+file+pyroscope", 0, CGPROF_SINK_CODEGURU | CGPROF_SINK_FILE | CGPROF_SINK_PYROSCOPE },
    { "", CGPROF_EINVAL, 0 }, { "+", CGPROF_EINVAL, 0 }, { "file+", CGPROF_EINVAL, 0 },
    { "+file", CGPROF_EINVAL, 0 }, { "s3", CGPROF_EINVAL, 0 }, { "codeguru++file", CGPROF_EINVAL, 0 },
    { "codeguru,file", CGPROF_EINVAL, 0 }, { "files", CGPROF_EINVAL, 0 },
};

START_TEST(test_config_parse_sinks_table)
{
    const struct sink_case *c = &sinks[_i];
    unsigned v = 999;
    size_t len = strlen(c->s);
    const char *s = cgprof_test_guarded_copy(c->s, len);
    ck_assert_msg(cgprof__config_parse_sinks(s, len, &v) == c->rc, "'%s'", c->s);
    ck_assert_uint_eq(v, c->rc == 0 ? c->v : 999);
}
END_TEST

/* ---- URLs, paths, profile names ---- */

static const struct str_case urls[] = {
    { "http://localhost:4040", true }, { "https://codeguru-profiler.us-east-1.amazonaws.com", true },
    { "http://127.0.0.1:8080/x?y=z", true }, { "http://[::1]:4040/", true }, { "HTTPS://X", true },
    { "http://h/path:with:colons", true },
    { "ftp://x", false }, { "http://", false }, { "https://:80", false }, { "http://host:0", false },
    { "http://host:65536", false }, { "http://ho st", false },
    /* user info: basic auth for the Pyroscope sink */
    { "http://user@host", true }, { "https://123456:glc_ab%2Fc=@profiles.grafana.net", true },
    { "http://u:p@[::1]:4040/", true }, { "http://u:p@", false }, { "http://u p@h", false },
    { "http://u,p@h", false }, { "http://u@h@h", false }, { "http://h/a@b", true },
    { "localhost:4040", false }, { "http://host:80x", false }, { "http://h\xc3\xa9", false },
    { "http://[]", false }, { "http://[::1", false }, { "", false },
};

START_TEST(test_config_valid_url_table)
{
    const struct str_case *c = &urls[_i];
    size_t len = strlen(c->s);
    const char *s = cgprof_test_guarded_copy(c->s, len);
    ck_assert_msg(cgprof__config_valid_url(s, len) == c->ok, "'%s'", c->s);
}
END_TEST

static const struct str_case paths[] = {
    { "/", true }, { "/var/tmp/x", true }, { "/tmp/caf\xc3\xa9", true }, { "/a b/c", true },
    { "", false }, { "relative", false }, { "~/x", false }, { "./x", false },
    { "/tmp/a\nb", false }, { "/tmp/\x7f", false }, { "/tmp/\t", false },
};

START_TEST(test_config_valid_path_table)
{
    const struct str_case *c = &paths[_i];
    size_t len = strlen(c->s);
    const char *s = cgprof_test_guarded_copy(c->s, len);
    ck_assert_msg(cgprof__config_valid_path(s, len) == c->ok, "'%s'", c->s);
}
END_TEST

START_TEST(test_config_valid_path_length)
{
    char p[CGPROF_PATH_MAX + 1];
    memset(p, 'p', sizeof(p));
    p[0] = '/';
    ck_assert(cgprof__config_valid_path(p, CGPROF_PATH_MAX - 1));
    ck_assert(!cgprof__config_valid_path(p, CGPROF_PATH_MAX));
}
END_TEST

static const struct str_case profiles[] = {
    { "default", true }, { "prod-eu", true }, { "a.b@c+d/e=f_g", true },
    { "", false }, { "a b", false }, { "[x]", false }, { "o'neil", false }, { "x\xc3\xa9", false },
};

START_TEST(test_config_valid_profile_table)
{
    const struct str_case *c = &profiles[_i];
    size_t len = strlen(c->s);
    const char *s = cgprof_test_guarded_copy(c->s, len);
    ck_assert_msg(cgprof__config_valid_profile(s, len) == c->ok, "'%s'", c->s);
}
END_TEST

/* ---- Pyroscope application names, tags and tenants ---- */

static const struct str_case app_names[] = {
    { "checkout", true }, { "my.awesome.app", true }, { "team/svc-1_x", true },
    { "", false }, { "a b", false }, { "a{b}", false }, { "caf\xc3\xa9", false },
    { "a,b", false }, { "a=b", false },
};

START_TEST(test_config_valid_app_name_table)
{
    const struct str_case *c = &app_names[_i];
    size_t len = strlen(c->s);
    const char *s = cgprof_test_guarded_copy(c->s, len);
    ck_assert_msg(cgprof__config_valid_app_name(s, len) == c->ok, "'%s'", c->s);
}
END_TEST

static const struct str_case tag_lists[] = {
    { "env=prod", true }, { "env=prod;region=eu", true }, { "_k=v", true },
    { "a1=v.1/x:y@z+w-", true }, { "env=prod;region=eu-west-1;host=web-1", true },
    { "", false }, { "env", false }, { "env=", false }, { "=prod", false },
    { "env=prod;", false }, { ";env=prod", false }, { "env=prod;;a=b", false },
    { "1env=prod", false }, { "__name__=x", false }, { "env=pr od", false },
    { "env=a,b", false }, { "env=a}", false }, { "env=a=b", false }, { "e-v=x", false },
    { "env=a;env=b", false }, { "env=a;en=b", true }, { "en=a;env=b", true },
};

START_TEST(test_config_valid_tags_table)
{
    const struct str_case *c = &tag_lists[_i];
    size_t len = strlen(c->s);
    const char *s = cgprof_test_guarded_copy(c->s, len);
    ck_assert_msg(cgprof__config_valid_tags(s, len) == c->ok, "'%s'", c->s);
}
END_TEST

static const struct str_case tenants[] = {
    { "tenant-1", true }, { "a!b_c.d*e'f(g)", true }, { "...", true },
    { "", false }, { ".", false }, { "..", false }, { "a b", false }, { "a/b", false },
    { "a:b", false },
};

START_TEST(test_config_valid_tenant_table)
{
    const struct str_case *c = &tenants[_i];
    size_t len = strlen(c->s);
    const char *s = cgprof_test_guarded_copy(c->s, len);
    ck_assert_msg(cgprof__config_valid_tenant(s, len) == c->ok, "'%s'", c->s);
}
END_TEST

/* ---- escaping for log lines ---- */

struct esc_case {
    const char *in;
    const char *out;
};

static const struct esc_case escapes[] = {
    { "abc", "abc" }, { "a'b", "a\\'b" }, { "a\\b", "a\\\\b" }, { "\x01", "\\x01" },
    { "caf\xc3\xa9", "caf\\xc3\\xa9" }, { "\n\t", "\\x0a\\x09" }, { "", "" },
    { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...(100 bytes)" },
};

START_TEST(test_config_escape_table)
{
    const struct esc_case *c = &escapes[_i];
    char out[CGPROF__ESC_OUT];
    cgprof__config_escape(out, sizeof(out), c->in, strlen(c->in));
    ck_assert_str_eq(out, c->out);
}
END_TEST

/* The worst case (64 bytes that each need \xHH) fits CGPROF__ESC_OUT; a
 * small buffer truncates but stays terminated. */
START_TEST(test_config_escape_bounds)
{
    char in[200], out[CGPROF__ESC_OUT], small[8];
    memset(in, 0xff, sizeof(in));
    cgprof__config_escape(out, sizeof(out), in, sizeof(in));
    ck_assert_uint_eq(strlen(out), 64 * 4 + strlen("...(200 bytes)"));
    memset(small, 'Z', sizeof(small));
    cgprof__config_escape(small, 6, in, sizeof(in));
    ck_assert_uint_lt(strlen(small), 6);
    ck_assert_int_eq(small[7], 'Z');
}
END_TEST

/* ---- the setter: every option accepts its documented default text (when
 * it is a literal) and rejects garbage with one line naming it ---- */

START_TEST(test_config_set_rejects_garbage)
{
    int i = _i;
    struct cgprof_config cfg, before;
    cgprof__config_defaults_nodir(&cfg);
    before = cfg;
    int fd = cfgtest_capture();
    char what[80];
    snprintf(what, sizeof(what), "option '%s'", cgprof_config_options()[i].key);
    ck_assert_int_eq(cgprof__config_set(&cfg, i, "\x01garbage value", 14, what), CGPROF_EINVAL);
    ck_assert_int_eq(memcmp(&cfg, &before, sizeof(cfg)), 0);
    const char *log = cfgtest_log(fd);
    ck_assert_int_eq(cfgtest_count_lines(log), 1);
    ck_assert_ptr_nonnull(strstr(log, what));
    if (cgprof__config_spec(i)->kind == CGPROF__KIND_SECRET) {
        /* A secret is never echoed, not even a bad one. */
        ck_assert_ptr_null(strstr(log, "garbage"));
        ck_assert_ptr_nonnull(strstr(log, "(14 hidden bytes)"));
    } else {
        ck_assert_ptr_nonnull(strstr(log, "'\\x01garbage value'"));
    }
    ck_assert_ptr_nonnull(strstr(log, "(expected "));
    ck_assert(!cgprof__config_check(i, "\x01garbage value", 14));
    ck_assert_int_eq(cgprof__config_set(&cfg, i, "", 0, what), CGPROF_EINVAL);
    ck_assert_ptr_nonnull(strstr(cfgtest_log(fd), "empty value for"));
}
END_TEST

START_TEST(test_config_set_bad_index)
{
    struct cgprof_config cfg;
    cgprof__config_defaults_nodir(&cfg);
    ck_assert_int_eq(cgprof__config_set(&cfg, -1, "x", 1, "x"), CGPROF_EINVAL);
    ck_assert_int_eq(cgprof__config_set(&cfg, CGPROF__OPT_COUNT, "x", 1, "x"), CGPROF_EINVAL);
    ck_assert_int_eq(cgprof__config_set(&cfg, 0, NULL, 0, "x"), CGPROF_EINVAL);
    ck_assert(!cgprof__config_check(CGPROF__OPT_COUNT, "x", 1));
}
END_TEST

/* String values are stored with their length bound: exactly the field
 * size minus one fits, one more does not. */
START_TEST(test_config_set_string_bounds)
{
    struct cgprof_config cfg;
    char v[CGPROF_PATH_MAX + 1];
    cgprof__config_defaults_nodir(&cfg);
    memset(v, 'k', sizeof(v));
    v[0] = '/';
    ck_assert_int_eq(cgprof__config_set(&cfg, CGPROF__OPT_KILL_SWITCH_PATH, v,
                                        sizeof(cfg.kill_switch_path) - 1, "k"), 0);
    ck_assert_uint_eq(strlen(cfg.kill_switch_path), sizeof(cfg.kill_switch_path) - 1);
    cgprof_log_set_fd(cfgtest_capture());
    ck_assert_int_eq(cgprof__config_set(&cfg, CGPROF__OPT_KILL_SWITCH_PATH, v,
                                        sizeof(cfg.kill_switch_path), "k"), CGPROF_EINVAL);
    memset(v, 'n', 256);
    ck_assert_int_eq(cgprof__config_set(&cfg, CGPROF__OPT_PROFILING_GROUP_NAME, v, 255, "n"), 0);
    ck_assert_uint_eq(strlen(cfg.profiling_group_name), 255);
    ck_assert_int_eq(cgprof__config_set(&cfg, CGPROF__OPT_PROFILING_GROUP_NAME, v, 256, "n"),
                     CGPROF_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("validate");
#define LOOP(fn, table) tcase_add_loop_test(tc, fn, 0, (int)CGPROF_ARRAY_SIZE(table))
    LOOP(test_config_valid_group_name_table, group_names);
    tcase_add_test(tc, test_config_valid_group_name_length);
    LOOP(test_config_valid_region_table, regions);
    LOOP(test_config_parse_arn_table, arns);
    tcase_add_test(tc, test_config_parse_arn_bounds);
    LOOP(test_config_parse_uint_table, uints);
    LOOP(test_config_parse_bool_table, bools);
    LOOP(test_config_parse_sinks_table, sinks);
    LOOP(test_config_valid_url_table, urls);
    LOOP(test_config_valid_path_table, paths);
    tcase_add_test(tc, test_config_valid_path_length);
    LOOP(test_config_valid_profile_table, profiles);
    LOOP(test_config_valid_app_name_table, app_names);
    LOOP(test_config_valid_tags_table, tag_lists);
    LOOP(test_config_valid_tenant_table, tenants);
    LOOP(test_config_escape_table, escapes);
    tcase_add_test(tc, test_config_escape_bounds);
    tcase_add_loop_test(tc, test_config_set_rejects_garbage, 0, CGPROF__OPT_COUNT);
    tcase_add_test(tc, test_config_set_bad_index);
    tcase_add_test(tc, test_config_set_string_bounds);
#undef LOOP
    suite_add_tcase(s, tc);
    return cgprof_test_run(s);
}
