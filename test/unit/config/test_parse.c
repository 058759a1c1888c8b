/* Unit tests for config/parse.c: the option string through
 * cgprof_config_load, every key with a good and a bad value, structure
 * errors, hostile input; each case asserts the return code, the exact
 * number of logged lines and their key words. Inputs end at a guard page. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "config_test.h"

#define ARN_W2 "arn:aws:codeguru-profiler:us-west-2:123456789012:profilingGroup/Grp"

struct parse_case {
    const char *name;
    const char *options;
    int rc;
    int lines;                       /* exact number of log lines */
    const char *words[4];            /* each must occur in the log */
    struct cfgtest_check checks[3];  /* field values after loading */
};

#define C(opt, v) { CGPROF__OPT_##opt, v }
#define EINV CGPROF_EINVAL
#define NOCHK { { 0, NULL } }

static const struct parse_case cases[] = {
    /* ---- every key, a good value ---- */
    { "name", "profilingGroupName:MyGroup", 0, 0, { NULL },
      { C(PROFILING_GROUP_NAME, "MyGroup"), C(SINK, "2") } },
    { "arn", "profilingGroupArn:" ARN_W2, 0, 0, { NULL },
      { C(PROFILING_GROUP_ARN, ARN_W2), C(PROFILING_GROUP_NAME, "Grp"), C(REGION, "us-west-2") } },
    { "region", "region:eu-central-2", 0, 0, { NULL }, { C(REGION, "eu-central-2") } },
    { "enabled true", "enabled:true", 0, 0, { NULL }, { C(ENABLED, "true") } },
    { "enabled false", "enabled:false", CGPROF_EDISABLED, 0, { NULL }, { C(ENABLED, "false") } },
    { "heap", "heapSummaryEnabled:TRUE", 0, 0, { NULL }, { C(HEAP_SUMMARY_ENABLED, "true") } },
    { "credentialPath", "credentialPath:/etc/aws/creds", 0, 0, { NULL },
      { C(CREDENTIAL_PATH, "/etc/aws/creds") } },
    { "credentialProfile", "credentialProfile:prod-eu", 0, 0, { NULL },
      { C(CREDENTIAL_PROFILE, "prod-eu") } },
    { "sampling min", "samplingIntervalMs:10", 0, 0, { NULL }, { C(SAMPLING_INTERVAL_MS, "10") } },
    { "sampling max", "samplingIntervalMs:3600000", 0, 0, { NULL },
      { C(SAMPLING_INTERVAL_MS, "3600000") } },
    { "reporting max", "reportingIntervalMs:86400000", 0, 0, { NULL },
      { C(REPORTING_INTERVAL_MS, "86400000") } },
    { "minimum 0", "minimumTimeForReportingMs:0", 0, 0, { NULL },
      { C(MINIMUM_TIME_FOR_REPORTING_MS, "0") } },
    { "cpuSamplingHz off", "cpuSamplingHz:0", 0, 0, { NULL }, { C(CPU_SAMPLING_HZ, "0") } },
    { "cpuSamplingHz max", "cpuSamplingHz:1000", 0, 0, { NULL }, { C(CPU_SAMPLING_HZ, "1000") } },
    { "maxStackDepth", "maxStackDepth:4096", 0, 0, { NULL }, { C(MAX_STACK_DEPTH, "4096") } },
    { "sink combo", "sink:codeguru+file,profilingGroupName:x", 0, 0, { NULL },
      { C(SINK, "3"), C(REGION, "us-east-1") } },
    { "sink pyroscope", "sink:pyroscope,endpoint:http://localhost:4040", 0, 0, { NULL },
      { C(SINK, "4"), C(ENDPOINT, "http://localhost:4040") } },
    { "outputDir", "outputDir:/srv/prof", 0, 0, { NULL }, { C(OUTPUT_DIR, "/srv/prof") } },
    { "endpoint", "endpoint:https://codeguru-profiler.us-east-1.amazonaws.com", 0, 0, { NULL },
      { C(ENDPOINT, "https://codeguru-profiler.us-east-1.amazonaws.com") } },
    { "caBundle", "caBundle:/etc/ssl/certs/ca.pem", 0, 0, { NULL },
      { C(CA_BUNDLE, "/etc/ssl/certs/ca.pem") } },
    { "logLevel", "logLevel:debug", 0, 0, { NULL }, { C(LOG_LEVEL, "4") } },
    { "cpuEngine perf", "cpuEngine:perf", 0, 0, { NULL }, { C(CPU_ENGINE, "1") } },
    { "cpuEngine timer", "cpuEngine:timer", 0, 0, { NULL }, { C(CPU_ENGINE, "2") } },
    { "cpuEngine case-insensitive", "cpuEngine:AUTO", 0, 0, { NULL }, { C(CPU_ENGINE, "0") } },
    { "killSwitchPath", "killSwitchPath:/run/kill", 0, 0, { NULL },
      { C(KILL_SWITCH_PATH, "/run/kill") } },
    { "cpuLimitPercent", "cpuLimitPercent:100", 0, 0, { NULL }, { C(CPU_LIMIT_PERCENT, "100") } },
    { "memoryLimitMb", "memoryLimitMb:4096", 0, 0, { NULL }, { C(MEMORY_LIMIT_MB, "4096") } },
    { "profileChildren", "profileChildren:false", 0, 0, { NULL },
      { C(PROFILE_CHILDREN, "false") } },
    { "uploadGzip", "uploadGzip:True", 0, 0, { NULL }, { C(UPLOAD_GZIP, "true") } },
    { "maxOutputMb", "maxOutputMb:0", 0, 0, { NULL }, { C(MAX_OUTPUT_MB, "0") } },
    { "heapSamplingIntervalBytes", "heapSamplingIntervalBytes:65536", 0, 0, { NULL },
      { C(HEAP_SAMPLING_INTERVAL_BYTES, "65536") } },
    { "heapSummaryThresholdPermille", "heapSummaryThresholdPermille:0", 0, 0, { NULL },
      { C(HEAP_SUMMARY_THRESHOLD_PERMILLE, "0") } },
    { "pyroscope keys", "sink:pyroscope,endpoint:http://h:4040,applicationName:shop.api,"
      "tags:env=prod;region=eu", 0, 0, { NULL },
      { C(APPLICATION_NAME, "shop.api"), C(TAGS, "env=prod;region=eu"), C(SINK, "4") } },
    { "pyroscope auth", "pyroscopeUser:123456,pyroscopePassword:glc_s3cr=t,pyroscopeTenant:team-a",
      0, 0, { NULL },
      { C(PYROSCOPE_USER, "123456"), C(PYROSCOPE_PASSWORD, "glc_s3cr=t"),
        C(PYROSCOPE_TENANT, "team-a") } },
    { "pyroscope token", "pyroscopeToken:eyJhbGciOi.x-y_z", 0, 0, { NULL },
      { C(PYROSCOPE_TOKEN, "eyJhbGciOi.x-y_z") } },
    { "endpoint userinfo", "sink:codeguru+pyroscope,profilingGroupName:g,"
      "endpoint:https://u:p@profiles.example.net", 0, 0, { NULL },
      { C(ENDPOINT, "https://u:p@profiles.example.net"), C(SINK, "6") } },

    /* ---- every key, a bad value: one line naming key, value, what fits ---- */
    { "bad name", "profilingGroupName:bad/name", EINV, 1,
      { "'profilingGroupName'", "'bad/name'", "letters, digits" }, { C(PROFILING_GROUP_NAME, "") } },
    { "bad arn", "profilingGroupArn:arn:aws:s3:::bucket", EINV, 1,
      { "'profilingGroupArn'", "'arn:aws:s3:::bucket'", "profilingGroup/NAME" },
      { C(PROFILING_GROUP_ARN, "") } },
    { "bad region", "region:US-EAST-1", EINV, 1, { "'region'", "'US-EAST-1'", "us-east-1" },
      { C(REGION, "") } },
    { "bad enabled", "enabled:yes", EINV, 1, { "'enabled'", "'yes'", "true or false" },
      { C(ENABLED, "true") } },
    { "bad heap", "heapSummaryEnabled:1", EINV, 1, { "'heapSummaryEnabled'", "'1'", "true or false" },
      { C(HEAP_SUMMARY_ENABLED, "false") } },
    { "bad credentialPath", "credentialPath:relative/creds", EINV, 1,
      { "'credentialPath'", "'relative/creds'", "absolute path" }, NOCHK },
    { "bad credentialProfile", "credentialProfile:has space", EINV, 1,
      { "'credentialProfile'", "'has space'", "letters, digits" }, NOCHK },
    { "bad sampling low", "samplingIntervalMs:9", EINV, 1,
      { "'samplingIntervalMs'", "'9'", "from 10 to 3600000" }, { C(SAMPLING_INTERVAL_MS, "1000") } },
    { "bad reporting low", "reportingIntervalMs:999", EINV, 1,
      { "'reportingIntervalMs'", "'999'", "from 1000 to 86400000" }, NOCHK },
    { "bad minimum high", "minimumTimeForReportingMs:86400001", EINV, 1,
      { "'minimumTimeForReportingMs'", "'86400001'", "from 0 to 86400000" }, NOCHK },
    { "bad cpuSamplingHz", "cpuSamplingHz:1001", EINV, 1, { "'cpuSamplingHz'", "'1001'", "0 to 1000" }, NOCHK },
    { "bad maxStackDepth", "maxStackDepth:0", EINV, 1, { "'maxStackDepth'", "'0'", "1 to 4096" },
      { C(MAX_STACK_DEPTH, "1000") } },
    { "bad sink", "sink:s3", EINV, 1, { "'sink'", "'s3'", "codeguru, file or pyroscope" }, NOCHK },
    { "bad sink trailing plus", "sink:file+", EINV, 1, { "'sink'", "'file+'" }, NOCHK },
    { "bad outputDir", "outputDir:~/prof", EINV, 1, { "'outputDir'", "'~/prof'", "absolute path" }, NOCHK },
    { "bad endpoint", "endpoint:ftp://host", EINV, 1, { "'endpoint'", "'ftp://host'", "https://" }, NOCHK },
    { "bad caBundle", "caBundle:ca.pem", EINV, 1, { "'caBundle'", "'ca.pem'", "absolute path" }, NOCHK },
    { "bad logLevel", "logLevel:verbose", EINV, 1, { "'logLevel'", "'verbose'", "off, error, warn" },
      { C(LOG_LEVEL, "2") } },
    { "bad cpuEngine", "cpuEngine:itimer", EINV, 1, { "'cpuEngine'", "'itimer'", "auto, perf or timer" },
      { C(CPU_ENGINE, "0") } },
    { "empty cpuEngine", "cpuEngine:", EINV, 1, { "'cpuEngine'", "empty" }, { C(CPU_ENGINE, "0") } },
    { "bad heapSamplingIntervalBytes", "heapSamplingIntervalBytes:1023", EINV, 1,
      { "'heapSamplingIntervalBytes'", "'1023'", "1024 to 1073741824" },
      { C(HEAP_SAMPLING_INTERVAL_BYTES, "524288") } },
    { "bad heapSummaryThresholdPermille", "heapSummaryThresholdPermille:1001", EINV, 1,
      { "'heapSummaryThresholdPermille'", "'1001'", "0 to 1000" },
      { C(HEAP_SUMMARY_THRESHOLD_PERMILLE, "5") } },
    { "bad applicationName", "applicationName:my app", EINV, 1,
      { "'applicationName'", "'my app'", "letters, digits" }, { C(APPLICATION_NAME, "") } },
    { "bad tags", "tags:env=prod;;x=1", EINV, 1, { "'tags'", "'env=prod;;x=1'", "key=value" },
      { C(TAGS, "") } },
    { "reserved tag", "tags:__name__=x", EINV, 1, { "'tags'", "not starting with __" },
      { C(TAGS, "") } },
    { "bad password: not echoed", "pyroscopePassword:a b", EINV, 1,
      { "'pyroscopePassword'", "(3 hidden bytes)" }, { C(PYROSCOPE_PASSWORD, "") } },
    { "bad tenant", "pyroscopeTenant:a/b", EINV, 1, { "'pyroscopeTenant'", "'a/b'" },
      { C(PYROSCOPE_TENANT, "") } },
    { "bad killSwitchPath", "killSwitchPath:kill", EINV, 1,
      { "'killSwitchPath'", "'kill'" }, { C(KILL_SWITCH_PATH, "/var/tmp/killProfiler") } },
    { "bad cpuLimitPercent", "cpuLimitPercent:0", EINV, 1, { "'cpuLimitPercent'", "1 to 100" }, NOCHK },
    { "bad memoryLimitMb", "memoryLimitMb:4097", EINV, 1, { "'memoryLimitMb'", "'4097'", "1 to 4096" }, NOCHK },
    { "bad profileChildren", "profileChildren:maybe", EINV, 1, { "'profileChildren'", "'maybe'" }, NOCHK },
    { "bad uploadGzip", "uploadGzip:on", EINV, 1, { "'uploadGzip'", "'on'", "true or false" }, NOCHK },
    { "bad maxOutputMb", "maxOutputMb:-1", EINV, 1, { "'maxOutputMb'", "'-1'", "0 to 1048576" }, NOCHK },
    { "number trailing garbage", "maxStackDepth:12abc", EINV, 1, { "'12abc'" }, NOCHK },
    { "number overflow", "memoryLimitMb:99999999999999999999", EINV, 1,
      { "'99999999999999999999'" }, NOCHK },

    /* ---- structure ---- */
    { "NULL", NULL, 0, 0, { NULL }, { C(SINK, "1"), C(PROFILING_GROUP_NAME, "") } },
    { "empty", "", 0, 0, { NULL }, { C(SINK, "1") } },
    { "blank", "  \t ", 0, 0, { NULL }, { C(SINK, "1") } },
    { "double quoted", "\"profilingGroupName:Q\"", 0, 0, { NULL }, { C(PROFILING_GROUP_NAME, "Q") } },
    { "single quoted, spaces", " ' region : us-west-2 , profilingGroupName : x ' ", 0, 0, { NULL },
      { C(REGION, "us-west-2"), C(PROFILING_GROUP_NAME, "x") } },
    { "empty quotes", "\"\"", 0, 0, { NULL }, { C(SINK, "1") } },
    { "unbalanced quote", "\"profilingGroupName:x", EINV, 1, { "quote", "profilingGroupName:x" },
      { C(PROFILING_GROUP_NAME, "") } },
    { "lone quote", "'", EINV, 1, { "quote" }, NOCHK },
    { "mismatched quotes", "'region:us-east-1\"", EINV, 1, { "quote" }, NOCHK },
    { "stray commas", ",,profilingGroupName:a,,, region:us-west-1 ,", 0, 0, { NULL },
      { C(PROFILING_GROUP_NAME, "a"), C(REGION, "us-west-1") } },
    { "only commas", " , ,,", 0, 0, { NULL }, { C(SINK, "1") } },
    { "colons in value", "sink:pyroscope,endpoint:http://127.0.0.1:4040/ingest?a=b:c", 0, 0,
      { NULL }, { C(ENDPOINT, "http://127.0.0.1:4040/ingest?a=b:c") } },
    { "no colon", "profilingGroupName", EINV, 1, { "'profilingGroupName'", "no ':'" }, NOCHK },
    { "no colon among good", "region:us-east-1,heapSummaryEnabled,uploadGzip:true", EINV, 1,
      { "'heapSummaryEnabled'", "no ':'" }, { C(REGION, "us-east-1"), C(UPLOAD_GZIP, "true") } },
    { "empty key", ":value", EINV, 1, { "':value'", "no key" }, NOCHK },
    { "unknown key", "profilingGroupNme:x", 0, 1,
      { "cgprof: unknown option 'profilingGroupNme' (did you mean 'profilingGroupName'?), ignored\n" },
      { C(PROFILING_GROUP_NAME, "") } },
    { "unknown key near another", "samplingInterval:5", 0, 1,
      { "'samplingInterval'", "did you mean 'samplingIntervalMs'?" }, NOCHK },
    { "key any case", "PROFILINGGROUPNAME:x,LogLevel:Error", 0, 0, { NULL },
      { C(PROFILING_GROUP_NAME, "x"), C(LOG_LEVEL, "1") } },
    { "repeated key", "region:us-east-1,region:us-west-2", 0, 1,
      { "'region'", "more than once", "last value wins" }, { C(REGION, "us-west-2") } },
    { "repeated key, last bad", "cpuSamplingHz:50,cpuSamplingHz:5000", EINV, 2,
      { "more than once", "'5000'" }, { C(CPU_SAMPLING_HZ, "50") } },
    { "empty value", "profilingGroupName:", EINV, 1, { "empty value", "'profilingGroupName'" }, NOCHK },
    { "empty value, spaces", "region:   ", EINV, 1, { "empty value", "'region'" }, NOCHK },
    { "issue #2 example", "profilingGroupName:,,region::bogus", EINV, 2,
      { "empty value for option 'profilingGroupName'", "':bogus'", "'region'" }, NOCHK },
    { "newline inside value", "region:us-east-1\nprofilingGroupName:x", EINV, 1,
      { "'region'", "\\x0a" }, { C(REGION, ""), C(PROFILING_GROUP_NAME, "") } },
    { "non-ASCII value", "profilingGroupName:caf\xc3\xa9", EINV, 1,
      { "'caf\\xc3\\xa9'" }, NOCHK },
    { "non-ASCII key", "r\xc3\xa9gion:us-east-1", 0, 1,
      { "'r\\xc3\\xa9gion'", "did you mean 'region'?" }, NOCHK },
    { "control byte in path", "outputDir:/tmp/a\x01" "b", EINV, 1, { "'/tmp/a\\x01b'" }, NOCHK },
    { "quote in value escaped", "credentialProfile:o'neil", EINV, 1, { "'o\\'neil'" }, NOCHK },
    { "unknown and bad together", "regin:x,maxStackDepth:big", EINV, 2,
      { "did you mean 'region'?", "'big'" }, NOCHK },

    /* ---- log level applies before parsing ---- */
    { "logLevel error hides warnings", "logLevel:error,profilingGroupNme:x", 0, 0, { NULL },
      { C(LOG_LEVEL, "1") } },
    { "logLevel off hides errors", "maxStackDepth:0,logLevel:off", EINV, 0, { NULL },
      { C(LOG_LEVEL, "0") } },

    /* ---- checks that span keys ---- */
    { "reporting below minimum", "reportingIntervalMs:30000", EINV, 1,
      { "reportingIntervalMs 30000", "minimumTimeForReportingMs 60000" }, NOCHK },
    { "reporting with minimum lowered", "reportingIntervalMs:30000,minimumTimeForReportingMs:10000",
      0, 0, { NULL }, { C(REPORTING_INTERVAL_MS, "30000") } },
    { "codeguru without group", "sink:codeguru", EINV, 1, { "needs profilingGroupName" }, NOCHK },
    { "codeguru with bad group: one line", "sink:codeguru,profilingGroupName:a b", EINV, 1,
      { "'a b'" }, NOCHK },
    { "pyroscope without endpoint", "sink:pyroscope", EINV, 1, { "needs serverAddress or endpoint" }, NOCHK },
    { "pyroscope with serverAddress", "sink:pyroscope,serverAddress:http://127.0.0.1:4040", 0, 0, { NULL },
      { C(ENDPOINT, "http://127.0.0.1:4040") } },
    { "bad serverAddress", "serverAddress:ftp://x", EINV, 1, { "'serverAddress'", "'ftp://x'" }, NOCHK },
    { "pyroscope with bad endpoint: one line", "sink:pyroscope,endpoint:localhost", EINV, 1,
      { "'localhost'" }, NOCHK },
    { "explicit name beats ARN", "profilingGroupName:Mine,profilingGroupArn:" ARN_W2, 0, 1,
      { "profilingGroupName 'Mine' differs", "'Grp'", "using 'Mine'" },
      { C(PROFILING_GROUP_NAME, "Mine"), C(REGION, "us-west-2") } },
    { "explicit region beats ARN", "profilingGroupArn:" ARN_W2 ",region:eu-west-1", 0, 1,
      { "region 'eu-west-1' differs", "using 'eu-west-1'" },
      { C(REGION, "eu-west-1"), C(PROFILING_GROUP_NAME, "Grp") } },
    { "ARN agreeing with name", "profilingGroupName:Grp,profilingGroupArn:" ARN_W2, 0, 0, { NULL },
      { C(PROFILING_GROUP_NAME, "Grp") } },
    { "disabled and invalid", "enabled:false,region:nowhere", EINV, 1, { "'nowhere'" }, NOCHK },
};

static void run_case(const struct parse_case *c)
{
    static const char *const env[] = { "CGPROF_OUTPUT_DIR", "/tmp/cgprof-out", NULL };
    struct cgprof_config cfg;
    cgprof_test_env_set(env);
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
    ck_assert_str_eq(cfg.output_dir[0] ? cfg.output_dir : "(empty)",
                     c->checks[0].opt == CGPROF__OPT_OUTPUT_DIR && c->checks[0].val
                     ? c->checks[0].val : "/tmp/cgprof-out");
    close(fd);
}

START_TEST(test_config_parse_table)
{
    run_case(&cases[_i]);
}
END_TEST

/* A key given with a valid value sets exactly its user_set bit; defaults
 * and invalid values set none. */
START_TEST(test_config_parse_user_set)
{
    struct cgprof_config cfg;
    cgprof_test_env_set(NULL);
    cgprof_log_set_fd(cfgtest_capture());
    ck_assert_int_eq(cgprof_config_load(&cfg, "cpuSamplingHz:10,uploadGzip:true", cgprof_test_getenv), 0);
    ck_assert_uint_eq(cfg.user_set, CGPROF__BIT(CPU_SAMPLING_HZ) | CGPROF__BIT(UPLOAD_GZIP));
    ck_assert_int_eq(cgprof_config_load(&cfg, NULL, cgprof_test_getenv), 0);
    ck_assert_uint_eq(cfg.user_set, 0);
    ck_assert_int_eq(cgprof_config_load(&cfg, "cpuSamplingHz:x", cgprof_test_getenv), CGPROF_EINVAL);
    ck_assert_uint_eq(cfg.user_set, 0);
    /* The ARN fixes name and region too: later layers must not change them. */
    ck_assert_int_eq(cgprof_config_load(&cfg, "profilingGroupArn:" ARN_W2, cgprof_test_getenv), 0);
    ck_assert_uint_eq(cfg.user_set, CGPROF__BIT(PROFILING_GROUP_ARN) |
                      CGPROF__BIT(PROFILING_GROUP_NAME) | CGPROF__BIT(REGION));
    ck_assert_str_eq(cfg.account_id, "123456789012");
}
END_TEST

/* Hostile sizes: a 4 KiB value, key and path are each rejected in one
 * short line that shows at most 64 bytes and the real length. */
START_TEST(test_config_parse_huge_inputs)
{
    static const char *const prefixes[] = {
        "profilingGroupName:", "outputDir:/", "endpoint:http://h/", "profilingGroupArn:arn:", "",
    };
    char *s = malloc(8192);
    ck_assert_ptr_nonnull(s);
    for (size_t k = 0; k < CGPROF_ARRAY_SIZE(prefixes); k++) {
        struct cgprof_config cfg;
        int fd = cfgtest_capture();
        size_t pl = strlen(prefixes[k]);
        memcpy(s, prefixes[k], pl);
        memset(s + pl, 'a', 4096);
        strcpy(s + pl + 4096, k == 4 ? ":1" : "");
        cgprof_test_env_set(NULL);
        int rc = cfgtest_load_guarded(&cfg, s);
        const char *log = cfgtest_log(fd);
        ck_assert_int_eq(cfgtest_count_lines(log), 1);
        ck_assert_msg(strlen(log) < 400, "line too long: %zu", strlen(log));
        if (k == 4) { /* a 4 KiB key is an unknown key */
            ck_assert_int_eq(rc, 0);
            ck_assert_ptr_nonnull(strstr(log, "unknown option 'aaaa"));
            ck_assert_ptr_nonnull(strstr(log, "...(4096 bytes)"));
        } else {
            ck_assert_int_eq(rc, CGPROF_EINVAL);
            ck_assert_ptr_nonnull(strstr(log, "bytes)"));
        }
        close(fd);
    }
    free(s);
}
END_TEST

/* Many pairs: every one is handled, and the logger's burst limit (not the
 * parser) is what bounds the output. */
START_TEST(test_config_parse_many_pairs)
{
    struct cgprof_buf b;
    struct cgprof_config cfg;
    cgprof_buf_init(&b, 1 << 20);
    for (int i = 0; i < 500; i++)
        ck_assert_int_eq(cgprof_buf_printf(&b, "cpuSamplingHz:%d,", i % 1000), 0);
    ck_assert_int_eq(cgprof_buf_appends(&b, "cpuSamplingHz:77"), 0);
    int fd = cfgtest_capture();
    cgprof_test_env_set(NULL);
    ck_assert_int_eq(cfgtest_load_guarded(&cfg, b.data), 0);
    ck_assert_uint_eq(cfg.cpu_sampling_hz, 77);
    ck_assert_int_eq(cfgtest_count_lines(cfgtest_log(fd)), CGPROF_LOG_BURST);
    cgprof_buf_cleanup(&b);
    close(fd);
}
END_TEST

/* Input ending exactly at a PROT_NONE page, in each state the parser can
 * be in at the end: inside a key, after ':', inside a quote, after ','. */
START_TEST(test_config_parse_guard_page_endings)
{
    static const char *const tails[] = {
        "profilingGroupNam", "region:", "'region:us-east-1", "region:us-east-1,",
        "a", ":", ",", "\"", "  ", "profilingGroupArn:arn:aws:codeguru-profiler:",
        "\xff", "endpoint:http://[::1", "sink:codeguru+",
    };
    for (size_t k = 0; k < CGPROF_ARRAY_SIZE(tails); k++) {
        struct cgprof_config cfg;
        int fd = cfgtest_capture();
        cgprof_test_env_set(NULL);
        int rc = cfgtest_load_guarded(&cfg, tails[k]);
        ck_assert_msg(rc == 0 || rc == CGPROF_EINVAL, "%s: rc %d", tails[k], rc);
        ck_assert_int_le(cfgtest_count_lines(cfgtest_log(fd)), 1);
        close(fd);
    }
}
END_TEST

/* The loader leaves the log level as the options asked. */
START_TEST(test_config_parse_applies_log_level)
{
    struct cgprof_config cfg;
    cgprof_test_env_set(NULL);
    cgprof_log_set_fd(cfgtest_capture());
    ck_assert_int_eq(cgprof_config_load(&cfg, "logLevel:debug", cgprof_test_getenv), 0);
    ck_assert_int_eq(cgprof_log_get_level(), CGPROF_LOG_DEBUG);
    ck_assert_int_eq(cgprof_config_load(&cfg, NULL, cgprof_test_getenv), 0);
    ck_assert_int_eq(cgprof_log_get_level(), CGPROF_LOG_WARN);
    ck_assert_int_eq(cgprof__config_scan_log_level("logLevel:off,logLevel:bad"), CGPROF_LOG_OFF);
    ck_assert_int_eq(cgprof__config_scan_log_level("'logLevel:info"), -1);
    ck_assert_int_eq(cgprof__config_scan_log_level(NULL), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("parse");
    tcase_add_loop_test(tc, test_config_parse_table, 0, (int)CGPROF_ARRAY_SIZE(cases));
    tcase_add_test(tc, test_config_parse_user_set);
    tcase_add_test(tc, test_config_parse_huge_inputs);
    tcase_add_test(tc, test_config_parse_many_pairs);
    tcase_add_test(tc, test_config_parse_guard_page_endings);
    tcase_add_test(tc, test_config_parse_applies_log_level);
    suite_add_tcase(s, tc);
    return cgprof_test_run(s);
}
