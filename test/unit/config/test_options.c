/* Unit tests for config/options.c: the option table's shape, the defaults
 * agreeing with the documented default text, key lookup and "did you
 * mean", and README.md's option table listing exactly the same keys,
 * variables, defaults and help (so the two cannot drift). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_test.h"

/* The keys issue #2 requires, all of which must be documented. */
static const char *const required_keys[] = {
    "profilingGroupName", "profilingGroupArn", "region", "heapSummaryEnabled",
    "credentialPath", "credentialProfile", "enabled", "samplingIntervalMs",
    "reportingIntervalMs", "minimumTimeForReportingMs", "cpuSamplingHz", "maxStackDepth",
    "sink", "outputDir", "endpoint", "caBundle", "logLevel", "killSwitchPath",
    "cpuLimitPercent", "memoryLimitMb", "profileChildren", "uploadGzip", "maxOutputMb",
    "cpuEngine", "heapSamplingIntervalBytes", "heapSummaryThresholdPermille",
    "applicationName", "tags", "pyroscopeUser", "pyroscopePassword", "pyroscopeToken",
    "pyroscopeTenant", "serverAddress",
};

START_TEST(test_config_options_shape)
{
    const struct cgprof_option_info *o = cgprof_config_options();
    int n = 0;
    while (o[n].key)
        n++;
    ck_assert_int_eq(n, CGPROF__OPT_COUNT);
    ck_assert_int_le(n, 64);
    for (int i = 0; i < n; i++) {
        ck_assert_uint_gt(strlen(o[i].key), 0);
        ck_assert_uint_lt(strlen(o[i].key), 64);
        ck_assert_uint_gt(strlen(o[i].default_text), 0);
        ck_assert_uint_gt(strlen(o[i].help), 10);
        /* Markdown-table safe, one line. */
        ck_assert_msg(!strpbrk(o[i].help, "|<>\n"), "%s: help not table-safe", o[i].key);
        ck_assert_msg(!strpbrk(o[i].default_text, "|<>\n"), "%s: default not table-safe", o[i].key);
        if (o[i].env)
            ck_assert_msg(strncmp(o[i].env, "AWS_CODEGURU_PROFILER_", 22) == 0 ||
                          strncmp(o[i].env, "CGPROF_", 7) == 0, "%s", o[i].env);
        for (int j = 0; j < i; j++)
            ck_assert_msg(strcasecmp(o[i].key, o[j].key) != 0, "duplicate %s", o[i].key);
    }
}
END_TEST

START_TEST(test_config_options_required_keys)
{
    const char *k = required_keys[_i];
    int i = cgprof__config_lookup(k, strlen(k));
    ck_assert_msg(i >= 0, "%s missing", k);
    ck_assert_str_eq(cgprof_config_options()[i].key, k);
}
END_TEST

/* Each field's size fits its kind, so the setter's stores are in bounds. */
START_TEST(test_config_options_spec_sizes)
{
    for (int i = 0; i < CGPROF__OPT_COUNT; i++) {
        const struct cgprof__config_spec *sp = cgprof__config_spec(i);
        ck_assert_ptr_nonnull(sp);
        ck_assert_uint_le(sp->offset + sp->size, sizeof(struct cgprof_config));
        switch (sp->kind) {
        case CGPROF__KIND_BOOL: ck_assert_uint_eq(sp->size, sizeof(bool)); break;
        case CGPROF__KIND_UINT:
            ck_assert_uint_eq(sp->size, sizeof(unsigned));
            ck_assert_uint_le(sp->min, sp->max);
            break;
        case CGPROF__KIND_SINK: ck_assert_uint_eq(sp->size, sizeof(unsigned)); break;
        case CGPROF__KIND_LOG_LEVEL: ck_assert_uint_eq(sp->size, sizeof(int)); break;
        case CGPROF__KIND_ENGINE: ck_assert_uint_eq(sp->size, sizeof(int)); break;
        default: ck_assert_uint_ge(sp->size, 16); break;
        }
    }
    ck_assert_ptr_null(cgprof__config_spec(-1));
    ck_assert_ptr_null(cgprof__config_spec(CGPROF__OPT_COUNT));
}
END_TEST

/* Where default_text is a literal value, setting it on a zeroed config
 * gives what cgprof_config_defaults gives; "none" means an empty string. */
START_TEST(test_config_options_defaults_match_text)
{
    const struct cgprof_option_info *o = cgprof_config_options();
    struct cgprof_config def, lit;
    static const char *const env[] = { "CGPROF_OUTPUT_DIR", "/d", NULL };
    cgprof_test_env_set(env);
    cgprof_log_set_fd(cfgtest_capture());
    ck_assert_int_eq(cgprof_config_load(&def, NULL, cgprof_test_getenv), 0);
    int literal = 0;
    for (int i = 0; i < CGPROF__OPT_COUNT; i++) {
        char want[CGPROF_URL_MAX + 1], got[CGPROF_URL_MAX + 1];
        cfgtest_render(&def, i, got, sizeof(got));
        memset(&lit, 0, sizeof(lit));
        if (strcmp(o[i].default_text, "none") == 0) {
            ck_assert_msg(strcmp(got, "") == 0, "%s: default '%s', documented none", o[i].key, got);
            continue;
        }
        if (!cgprof__config_check(i, o[i].default_text, strlen(o[i].default_text)))
            continue; /* descriptive default, checked below */
        ck_assert_int_eq(cgprof__config_set(&lit, i, o[i].default_text,
                                            strlen(o[i].default_text), "d"), 0);
        cfgtest_render(&lit, i, want, sizeof(want));
        ck_assert_msg(strcmp(got, want) == 0, "%s: default '%s', documented '%s'",
                      o[i].key, got, want);
        literal++;
    }
    ck_assert_int_ge(literal, 14);
    /* The descriptive ones. */
    ck_assert_uint_eq(def.sinks, CGPROF_SINK_FILE);
    ck_assert_str_eq(def.region, "");
    ck_assert_str_eq(def.output_dir, "/d");
    ck_assert_uint_eq(def.user_set, 0);
}
END_TEST

struct lookup_case {
    const char *key;
    int want;
};

static const struct lookup_case lookups[] = {
    { "region", CGPROF__OPT_REGION }, { "REGION", CGPROF__OPT_REGION },
    { "maxoutputmb", CGPROF__OPT_MAX_OUTPUT_MB }, { "regio", -1 }, { "region2", -1 },
    { "", -1 }, { "region ", -1 }, { "sinks", -1 },
};

START_TEST(test_config_lookup_table)
{
    const struct lookup_case *c = &lookups[_i];
    size_t len = strlen(c->key);
    const char *k = cgprof_test_guarded_copy(c->key, len);
    ck_assert_int_eq(cgprof__config_lookup(k, len), c->want);
}
END_TEST

struct closest_case {
    const char *typo;
    const char *want;
    unsigned dist;
};

static const struct closest_case closest[] = {
    { "profilingGroupNme", "profilingGroupName", 1 },
    { "profilinggroupnme", "profilingGroupName", 1 },
    { "regoin", "region", 2 },
    { "samplingInterval", "samplingIntervalMs", 2 },
    { "heapSummary", "heapSummaryEnabled", 7 },
    { "killswitch", "killSwitchPath", 4 },
    { "output_dir", "outputDir", 1 },
    { "cpuLimitPct", "cpuLimitPercent", 4 },
    { "sinks", "sink", 1 },
    { "endpoint_url", "endpoint", 4 },
};

START_TEST(test_config_closest_table)
{
    const struct closest_case *c = &closest[_i];
    unsigned d = 99;
    int i = cgprof__config_closest(c->typo, strlen(c->typo), &d);
    ck_assert_str_eq(cgprof_config_options()[i].key, c->want);
    ck_assert_uint_eq(d, c->dist);
}
END_TEST

/* ---- README.md ---- */

static char *read_readme(void)
{
    static const char *const paths[] = {
        "README.md", "../README.md", "../../README.md", "../../../README.md",
        "../../../../README.md",
    };
    for (size_t k = 0; k < CGPROF_ARRAY_SIZE(paths); k++) {
        FILE *f = fopen(paths[k], "r");
        if (!f)
            continue;
        static char buf[1 << 18];
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        if (strstr(buf, "<!-- options:begin -->"))
            return buf;
    }
    return NULL;
}

/* Trims spaces and one pair of surrounding backticks, in place. */
static char *cell(char *s)
{
    while (*s == ' ')
        s++;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == ' ')
        s[--n] = '\0';
    if (n >= 2 && s[0] == '`' && s[n - 1] == '`' && !memchr(s + 1, '`', n - 2)) {
        s[n - 1] = '\0';
        s++;
    }
    return s;
}

START_TEST(test_config_options_match_readme)
{
    char *readme = read_readme();
    ck_assert_msg(readme != NULL, "README.md with the options markers not found");
    char *begin = strstr(readme, "<!-- options:begin -->");
    char *end = strstr(readme, "<!-- options:end -->");
    ck_assert_ptr_nonnull(end);
    ck_assert(begin < end);
    *end = '\0';

    const struct cgprof_option_info *o = cgprof_config_options();
    bool seen[CGPROF__OPT_COUNT] = { false };
    int rows = 0, header = 0;
    char *save = NULL;
    for (char *line = strtok_r(begin + strlen("<!-- options:begin -->"), "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] != '|')
            continue;
        char *cols[6];
        int nc = 0;
        for (char *p = line + 1; nc < 6;) {
            char *bar = strchr(p, '|');
            if (!bar)
                break;
            *bar = '\0';
            cols[nc++] = p;
            p = bar + 1;
        }
        ck_assert_msg(nc == 4, "README row with %d columns", nc);
        for (int k = 0; k < 4; k++)
            cols[k] = cell(cols[k]);
        if (strcmp(cols[0], "key") == 0 || strncmp(cols[0], "---", 3) == 0) {
            header++;
            continue;
        }
        int i = cgprof__config_lookup(cols[0], strlen(cols[0]));
        ck_assert_msg(i >= 0, "README lists unknown option '%s'", cols[0]);
        ck_assert_str_eq(cols[0], o[i].key);
        ck_assert_msg(!seen[i], "README lists '%s' twice", cols[0]);
        seen[i] = true;
        ck_assert_str_eq(cols[1], o[i].env ? o[i].env : "—");
        ck_assert_msg(strcmp(cols[2], o[i].default_text) == 0, "%s: README default '%s', table '%s'",
                      o[i].key, cols[2], o[i].default_text);
        ck_assert_msg(strcmp(cols[3], o[i].help) == 0, "%s: README meaning differs from the table",
                      o[i].key);
        rows++;
    }
    ck_assert_int_eq(header, 2);
    for (int i = 0; i < CGPROF__OPT_COUNT; i++)
        ck_assert_msg(seen[i], "README does not list '%s'", o[i].key);
    ck_assert_int_eq(rows, CGPROF__OPT_COUNT);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("options");
    tcase_add_test(tc, test_config_options_shape);
    tcase_add_loop_test(tc, test_config_options_required_keys, 0,
                        (int)CGPROF_ARRAY_SIZE(required_keys));
    tcase_add_test(tc, test_config_options_spec_sizes);
    tcase_add_test(tc, test_config_options_defaults_match_text);
    tcase_add_loop_test(tc, test_config_lookup_table, 0, (int)CGPROF_ARRAY_SIZE(lookups));
    tcase_add_loop_test(tc, test_config_closest_table, 0, (int)CGPROF_ARRAY_SIZE(closest));
    tcase_add_test(tc, test_config_options_match_readme);
    suite_add_tcase(s, tc);
    return cgprof_test_run(s);
}
