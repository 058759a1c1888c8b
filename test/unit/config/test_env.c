/* Unit tests for config/env.c: the AWS_CODEGURU_PROFILER_* variables with
 * the official agents' semantics (WIRE.md §5), precedence between option
 * string, ARN, environment and defaults, the sink and region fallbacks,
 * and the default output directory. The environment is a fake one. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_test.h"

#define ARN_W2 "arn:aws:codeguru-profiler:us-west-2:123456789012:profilingGroup/Grp"
#define ARN_CN "arn:aws-cn:codeguru-profiler:cn-north-1:000000000001:profilingGroup/Cn"
#define P "AWS_CODEGURU_PROFILER_"

struct env_case {
    const char *name;
    const char *options;
    const char *env[12];             /* name, value, ..., NULL */
    int rc;
    int lines;                       /* exact number of log lines */
    const char *words[3];            /* each must occur in the log */
    struct cfgtest_check checks[3];
    uint64_t user_set;               /* exact expected user_set */
};

#define C(opt, v) { CGPROF__OPT_##opt, v }
#define B(id) CGPROF__BIT(id)
#define EINV CGPROF_EINVAL
#define EDIS CGPROF_EDISABLED

static const struct env_case cases[] = {
    /* ---- each variable ---- */
    { "group name", NULL, { P "GROUP_NAME", "EnvGroup", NULL }, 0, 0, { NULL },
      { C(PROFILING_GROUP_NAME, "EnvGroup"), C(SINK, "2"), C(REGION, "us-east-1") },
      B(PROFILING_GROUP_NAME) },
    { "group name invalid", NULL, { P "GROUP_NAME", "bad name", NULL }, EINV, 1,
      { P "GROUP_NAME", "'bad name'" }, { C(PROFILING_GROUP_NAME, "") }, 0 },
    { "group name empty ignored", NULL, { P "GROUP_NAME", "", NULL }, 0, 0, { NULL },
      { C(SINK, "1") }, 0 },
    { "target region", NULL, { P "TARGET_REGION", "ap-southeast-4", NULL }, 0, 0, { NULL },
      { C(REGION, "ap-southeast-4") }, B(REGION) },
    { "target region invalid", NULL, { P "TARGET_REGION", "mars-1", NULL }, EINV, 1,
      { P "TARGET_REGION", "'mars-1'" }, { C(REGION, "") }, 0 },
    { "group arn", NULL, { P "GROUP_ARN", ARN_CN, NULL }, 0, 0, { NULL },
      { C(PROFILING_GROUP_NAME, "Cn"), C(REGION, "cn-north-1"), C(PROFILING_GROUP_ARN, ARN_CN) },
      B(PROFILING_GROUP_ARN) | B(PROFILING_GROUP_NAME) | B(REGION) },
    { "group arn malformed: ignored, name used", NULL,
      { P "GROUP_ARN", "arn:aws:codeguru-profiler:us-east-1:12:profilingGroup/X",
        P "GROUP_NAME", "Fallback", NULL }, 0, 1, { "ignoring malformed", P "GROUP_ARN" },
      { C(PROFILING_GROUP_NAME, "Fallback"), C(PROFILING_GROUP_ARN, "") },
      B(PROFILING_GROUP_NAME) },
    { "arn beats env name, logged", NULL,
      { P "GROUP_ARN", ARN_W2, P "GROUP_NAME", "Other", NULL }, 0, 1,
      { P "GROUP_NAME 'Other' differs", "using 'Grp'" },
      { C(PROFILING_GROUP_NAME, "Grp") },
      B(PROFILING_GROUP_ARN) | B(PROFILING_GROUP_NAME) | B(REGION) },
    { "arn beats env region, logged", NULL,
      { P "GROUP_ARN", ARN_W2, P "TARGET_REGION", "eu-west-1", NULL }, 0, 1,
      { P "TARGET_REGION 'eu-west-1' differs", "using 'us-west-2'" },
      { C(REGION, "us-west-2") },
      B(PROFILING_GROUP_ARN) | B(PROFILING_GROUP_NAME) | B(REGION) },
    { "arn agreeing with env: silent", NULL,
      { P "GROUP_ARN", ARN_W2, P "TARGET_REGION", "us-west-2", P "GROUP_NAME", "Grp", NULL },
      0, 0, { NULL }, { C(REGION, "us-west-2") },
      B(PROFILING_GROUP_ARN) | B(PROFILING_GROUP_NAME) | B(REGION) },
    { "heap summary", NULL, { P "HEAP_SUMMARY_ENABLED", "TRUE", NULL }, 0, 0, { NULL },
      { C(HEAP_SUMMARY_ENABLED, "true") }, B(HEAP_SUMMARY_ENABLED) },
    { "heap summary invalid", NULL, { P "HEAP_SUMMARY_ENABLED", "nope", NULL }, EINV, 1,
      { P "HEAP_SUMMARY_ENABLED", "'nope'" }, { C(HEAP_SUMMARY_ENABLED, "false") }, 0 },
    { "credential path", NULL, { P "CREDENTIAL_PATH", "/home/u/.aws/c", NULL }, 0, 0, { NULL },
      { C(CREDENTIAL_PATH, "/home/u/.aws/c") }, B(CREDENTIAL_PATH) },
    { "credential path relative", NULL, { P "CREDENTIAL_PATH", "creds", NULL }, EINV, 1,
      { P "CREDENTIAL_PATH", "'creds'" }, { C(CREDENTIAL_PATH, "") }, 0 },
    { "sampling interval", NULL, { P "SAMPLING_INTERVAL_MS", "500", NULL }, 0, 0, { NULL },
      { C(SAMPLING_INTERVAL_MS, "500") }, B(SAMPLING_INTERVAL_MS) },
    { "sampling interval plus sign", NULL, { P "SAMPLING_INTERVAL_MS", "+250", NULL }, 0, 0,
      { NULL }, { C(SAMPLING_INTERVAL_MS, "250") }, B(SAMPLING_INTERVAL_MS) },
    { "sampling interval empty ignored", NULL, { P "SAMPLING_INTERVAL_MS", "", NULL }, 0, 0,
      { NULL }, { C(SAMPLING_INTERVAL_MS, "1000") }, 0 },
    { "sampling interval non-integer ignored", NULL, { P "SAMPLING_INTERVAL_MS", "abc", NULL },
      0, 1, { "ignoring " P "SAMPLING_INTERVAL_MS 'abc'", "not an integer" },
      { C(SAMPLING_INTERVAL_MS, "1000") }, 0 },
    { "sampling interval out of range", NULL, { P "SAMPLING_INTERVAL_MS", "5", NULL }, EINV, 1,
      { P "SAMPLING_INTERVAL_MS", "'5'", "from 10 to 3600000" },
      { C(SAMPLING_INTERVAL_MS, "1000") }, 0 },
    { "sampling interval negative", NULL, { P "SAMPLING_INTERVAL_MS", "-5", NULL }, EINV, 1,
      { "'-5'" }, { C(SAMPLING_INTERVAL_MS, "1000") }, 0 },
    { "sampling interval overflow", NULL, { P "SAMPLING_INTERVAL_MS", "99999999999", NULL },
      EINV, 1, { "'99999999999'" }, { C(SAMPLING_INTERVAL_MS, "1000") }, 0 },
    { "reporting interval", NULL, { P "REPORTING_INTERVAL_MS", "120000", NULL }, 0, 0, { NULL },
      { C(REPORTING_INTERVAL_MS, "120000") }, B(REPORTING_INTERVAL_MS) },
    { "reporting interval below minimum", NULL, { P "REPORTING_INTERVAL_MS", "30000", NULL },
      EINV, 1, { "reportingIntervalMs 30000 is below minimumTimeForReportingMs 60000" },
      { C(REPORTING_INTERVAL_MS, "30000") }, B(REPORTING_INTERVAL_MS) },
    { "reporting interval with minimum lowered", "minimumTimeForReportingMs:1000",
      { P "REPORTING_INTERVAL_MS", "5000", NULL }, 0, 0, { NULL },
      { C(REPORTING_INTERVAL_MS, "5000") },
      B(REPORTING_INTERVAL_MS) | B(MINIMUM_TIME_FOR_REPORTING_MS) },
    { "reporting interval float ignored", NULL, { P "REPORTING_INTERVAL_MS", "1.5", NULL }, 0, 1,
      { "not an integer" }, { C(REPORTING_INTERVAL_MS, "300000") }, 0 },

    /* ---- ENABLED: anything other than "true" (any case) disables ---- */
    { "enabled true", NULL, { P "ENABLED", "true", NULL }, 0, 0, { NULL }, { C(ENABLED, "true") },
      B(ENABLED) },
    { "enabled TRUE", NULL, { P "ENABLED", "TRUE", NULL }, 0, 0, { NULL }, { C(ENABLED, "true") },
      B(ENABLED) },
    { "enabled false", NULL, { P "ENABLED", "false", NULL }, EDIS, 0, { NULL },
      { C(ENABLED, "false") }, B(ENABLED) },
    { "enabled 1", NULL, { P "ENABLED", "1", NULL }, EDIS, 0, { NULL }, { C(ENABLED, "false") },
      B(ENABLED) },
    { "enabled yes", NULL, { P "ENABLED", "yes", NULL }, EDIS, 0, { NULL }, { C(ENABLED, "false") },
      B(ENABLED) },
    { "enabled empty", NULL, { P "ENABLED", "", NULL }, EDIS, 0, { NULL }, { C(ENABLED, "false") },
      B(ENABLED) },
    { "enabled padded", NULL, { P "ENABLED", " true", NULL }, EDIS, 0, { NULL },
      { C(ENABLED, "false") }, B(ENABLED) },

    /* ---- the option string wins ---- */
    { "option enabled beats env", "enabled:true", { P "ENABLED", "false", NULL }, 0, 0, { NULL },
      { C(ENABLED, "true") }, B(ENABLED) },
    { "option disabled beats env", "enabled:false", { P "ENABLED", "true", NULL }, EDIS, 0,
      { NULL }, { C(ENABLED, "false") }, B(ENABLED) },
    { "option sampling beats env", "samplingIntervalMs:200",
      { P "SAMPLING_INTERVAL_MS", "500", NULL }, 0, 0, { NULL },
      { C(SAMPLING_INTERVAL_MS, "200") }, B(SAMPLING_INTERVAL_MS) },
    { "option name beats env arn, logged", "profilingGroupName:Mine",
      { P "GROUP_ARN", ARN_W2, NULL }, 0, 1, { "profilingGroupName 'Mine' differs", "using 'Mine'" },
      { C(PROFILING_GROUP_NAME, "Mine"), C(REGION, "us-west-2") },
      B(PROFILING_GROUP_ARN) | B(PROFILING_GROUP_NAME) | B(REGION) },
    { "option arn beats env arn", "profilingGroupArn:" ARN_W2, { P "GROUP_ARN", ARN_CN, NULL },
      0, 0, { NULL }, { C(PROFILING_GROUP_NAME, "Grp"), C(PROFILING_GROUP_ARN, ARN_W2) },
      B(PROFILING_GROUP_ARN) | B(PROFILING_GROUP_NAME) | B(REGION) },
    { "bad option value blocks env", "region:nowhere", { P "TARGET_REGION", "us-east-2", NULL },
      EINV, 1, { "'nowhere'" }, { C(REGION, "") }, 0 },
    { "option outputDir beats env", "outputDir:/srv/p", { "CGPROF_OUTPUT_DIR", "/env/p", NULL },
      0, 0, { NULL }, { C(OUTPUT_DIR, "/srv/p") }, B(OUTPUT_DIR) },

    /* ---- sinks and region fallbacks ---- */
    { "no group: file sink, no region", NULL, { NULL }, 0, 0, { NULL },
      { C(SINK, "1"), C(REGION, "") }, 0 },
    { "AWS_REGION fallback", "profilingGroupName:x", { "AWS_REGION", "eu-west-3", NULL }, 0, 0,
      { NULL }, { C(REGION, "eu-west-3") }, B(PROFILING_GROUP_NAME) },
    { "AWS_DEFAULT_REGION fallback", "profilingGroupName:x",
      { "AWS_REGION", "junk", "AWS_DEFAULT_REGION", "sa-east-1", NULL }, 0, 0, { NULL },
      { C(REGION, "sa-east-1") }, B(PROFILING_GROUP_NAME) },
    { "TARGET_REGION beats AWS_REGION", "profilingGroupName:x",
      { "AWS_REGION", "eu-west-3", P "TARGET_REGION", "us-east-2", NULL }, 0, 0, { NULL },
      { C(REGION, "us-east-2") }, B(PROFILING_GROUP_NAME) | B(REGION) },
    { "lambda group name", "sink:codeguru", { "AWS_LAMBDA_FUNCTION_NAME", "my-fn", NULL }, 0, 0,
      { NULL }, { C(PROFILING_GROUP_NAME, "aws-lambda-my-fn") }, B(SINK) },
    { "lambda name invalid: needs group", "sink:codeguru",
      { "AWS_LAMBDA_FUNCTION_NAME", "bad name", NULL }, EINV, 1, { "needs profilingGroupName" },
      { C(PROFILING_GROUP_NAME, "") }, B(SINK) },
    { "file sink explicit with group", "sink:file", { P "GROUP_NAME", "G", NULL }, 0, 0, { NULL },
      { C(SINK, "1"), C(REGION, "") }, B(SINK) | B(PROFILING_GROUP_NAME) },
};

static void run_case(const struct env_case *c)
{
    struct cgprof_config cfg;
    cgprof_test_env_set(c->env);
    int fd = cfgtest_capture();
    int rc = cfgtest_load_guarded(&cfg, c->options);
    const char *log = cfgtest_log(fd);
    ck_assert_msg(rc == c->rc, "%s: rc %d, expected %d; log: %s", c->name, rc, c->rc, log);
    ck_assert_msg(cfgtest_count_lines(log) == c->lines, "%s: %d lines, expected %d: %s",
                  c->name, cfgtest_count_lines(log), c->lines, log);
    cfgtest_assert_prefixed(log);
    for (size_t k = 0; k < CGPROF_ARRAY_SIZE(c->words) && c->words[k]; k++)
        ck_assert_msg(strstr(log, c->words[k]) != NULL, "%s: '%s' not in log: %s",
                      c->name, c->words[k], log);
    cfgtest_assert_checks(&cfg, c->checks, CGPROF_ARRAY_SIZE(c->checks), c->name);
    ck_assert_msg(cfg.user_set == c->user_set, "%s: user_set %#llx, expected %#llx", c->name,
                  (unsigned long long)cfg.user_set, (unsigned long long)c->user_set);
    close(fd);
}

START_TEST(test_config_load_env_table)
{
    run_case(&cases[_i]);
}
END_TEST

/* getenv_fn == NULL reads the real environment. */
START_TEST(test_config_load_real_getenv)
{
    struct cgprof_config cfg;
    setenv(P "GROUP_NAME", "RealEnv", 1);
    setenv("CGPROF_OUTPUT_DIR", "/real/out", 1);
    setenv(P "ENABLED", "true", 1);
    cgprof_log_set_fd(cfgtest_capture());
    ck_assert_int_eq(cgprof_config_load(&cfg, "region:us-east-2", NULL), 0);
    ck_assert_str_eq(cfg.profiling_group_name, "RealEnv");
    ck_assert_str_eq(cfg.output_dir, "/real/out");
    cgprof_config_defaults(&cfg);
    ck_assert_str_eq(cfg.output_dir, "/real/out");
    ck_assert_str_eq(cfg.profiling_group_name, "");
}
END_TEST

/* ---- cgprof_config_default_output_dir ---- */

struct dir_case {
    const char *name;
    const char *env[8];
    const char *want;       /* "@HOME" = the temp home + suffix, "@VAR" = /var/tmp/cgprof-UID */
    int lines;
};

static const struct dir_case dir_cases[] = {
    { "CGPROF_OUTPUT_DIR", { "CGPROF_OUTPUT_DIR", "/x/y", "XDG_STATE_HOME", "/s", NULL }, "/x/y", 0 },
    { "CGPROF_OUTPUT_DIR relative: warned, next", { "CGPROF_OUTPUT_DIR", "rel", "XDG_STATE_HOME",
      "/s", NULL }, "/s/cgprof", 1 },
    { "CGPROF_OUTPUT_DIR empty: skipped", { "CGPROF_OUTPUT_DIR", "", "XDG_STATE_HOME", "/s", NULL },
      "/s/cgprof", 0 },
    { "XDG trailing slash", { "XDG_STATE_HOME", "/state//", NULL }, "/state/cgprof", 0 },
    { "XDG relative ignored", { "XDG_STATE_HOME", "state", "HOME", "@HOME", NULL }, "@HOME", 0 },
    { "HOME writable", { "HOME", "@HOME", NULL }, "@HOME", 0 },
    { "HOME missing dir", { "HOME", "/nonexistent/cgprof-home", NULL }, "@VAR", 0 },
    { "HOME not a dir", { "HOME", "/etc/passwd", NULL }, "@VAR", 0 },
    { "HOME relative", { "HOME", ".", NULL }, "@VAR", 0 },
    { "nothing set", { NULL }, "@VAR", 0 },
};

START_TEST(test_config_default_output_dir_table)
{
    const struct dir_case *c = &dir_cases[_i];
    const char *home = cgprof_test_tmpdir();
    ck_assert_ptr_nonnull(home);
    const char *env[8];
    for (size_t k = 0; k < 8; k++)
        env[k] = c->env[k] && strcmp(c->env[k], "@HOME") == 0 ? home : c->env[k];
    char want[CGPROF_PATH_MAX], out[CGPROF_PATH_MAX];
    if (strcmp(c->want, "@HOME") == 0)
        snprintf(want, sizeof(want), "%s/.local/state/cgprof", home);
    else if (strcmp(c->want, "@VAR") == 0)
        snprintf(want, sizeof(want), "/var/tmp/cgprof-%u", (unsigned)getuid());
    else
        snprintf(want, sizeof(want), "%s", c->want);
    cgprof_test_env_set(env);
    int fd = cfgtest_capture();
    cgprof_config_default_output_dir(out, sizeof(out), cgprof_test_getenv);
    ck_assert_msg(strcmp(out, want) == 0, "%s: got '%s', want '%s'", c->name, out, want);
    ck_assert_int_eq(cfgtest_count_lines(cfgtest_log(fd)), c->lines);
    rmdir(home);
}
END_TEST

/* A buffer too small for a candidate never overflows; n == 0 writes
 * nothing. */
START_TEST(test_config_default_output_dir_small_buffer)
{
    static const char *const env[] = { "CGPROF_OUTPUT_DIR", "/a/very/long/output/dir",
                                       "XDG_STATE_HOME", "/s", NULL };
    char out[16];
    memset(out, 'Z', sizeof(out));
    cgprof_test_env_set(env);
    cgprof_log_set_fd(cfgtest_capture());
    cgprof_config_default_output_dir(out, 10, cgprof_test_getenv);
    ck_assert_str_eq(out, "/s/cgprof");
    ck_assert_int_eq(out[10], 'Z');
    memset(out, 'Z', sizeof(out));
    cgprof_config_default_output_dir(out, 4, cgprof_test_getenv);
    ck_assert_uint_lt(strlen(out), 4);
    ck_assert_int_eq(out[4], 'Z');
    out[0] = 'Q';
    cgprof_config_default_output_dir(out, 0, cgprof_test_getenv);
    ck_assert_int_eq(out[0], 'Q');
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("env");
    tcase_add_loop_test(tc, test_config_load_env_table, 0, (int)CGPROF_ARRAY_SIZE(cases));
    tcase_add_test(tc, test_config_load_real_getenv);
    tcase_add_loop_test(tc, test_config_default_output_dir_table, 0,
                        (int)CGPROF_ARRAY_SIZE(dir_cases));
    tcase_add_test(tc, test_config_default_output_dir_small_buffer);
    suite_add_tcase(s, tc);
    return cgprof_test_run(s);
}
