/* The loader: option string, then the group ARN, then the official agents'
 * AWS_CODEGURU_PROFILER_* variables (WIRE.md §5), then defaults; the sink
 * and region fallbacks, the checks that span several keys, and the
 * default output directory. String parsing is in parse.c, value checks in
 * validate.c. Runs in every process's constructor: environment lookups and
 * at most one stat()/access() pair, no other I/O, no allocation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/common.h"
#include "config_int.h"

typedef const char *(*env_lookup)(const char *);

static const char *libc_getenv(const char *key)
{
    return getenv(key);
}

/* A variable that is unset or empty is "not given". */
static const char *env_value(env_lookup get, const char *name)
{
    const char *v = get(name);
    return v && v[0] ? v : NULL;
}

/* Copies s into out when it fits; true on success. */
static bool copy_str(char *out, size_t n, const char *s)
{
    size_t len = strlen(s);
    if (len >= n)
        return false;
    memcpy(out, s, len + 1);
    return true;
}

/* Copies a/b into out without a doubled '/', when it fits. */
static bool join_path(char *out, size_t n, const char *a, const char *b)
{
    size_t al = strlen(a);
    while (al > 0 && a[al - 1] == '/')
        al--;
    int w = snprintf(out, n, "%.*s/%s", (int)al, a, b);
    if (w < 0 || (size_t)w >= n) {
        out[0] = '\0';
        return false;
    }
    return true;
}

/* Tests: test/unit/config/test_env.c */
void cgprof_config_default_output_dir(char *out, size_t n, env_lookup get)
{
    if (!out || n == 0)
        return;
    out[0] = '\0';
    if (!get)
        get = libc_getenv;
    const char *v = env_value(get, "CGPROF_OUTPUT_DIR");
    if (v) {
        if (cgprof__config_valid_path(v, strlen(v)) && copy_str(out, n, v))
            return;
        char shown[CGPROF__ESC_OUT];
        cgprof__config_escape(shown, sizeof(shown), v, strlen(v));
        cgprof_warn("ignoring CGPROF_OUTPUT_DIR '%s' (expected an absolute "
                    "path shorter than %zu bytes)", shown, n);
    }
    /* The XDG base directory spec says relative values are to be ignored. */
    v = env_value(get, "XDG_STATE_HOME");
    if (v && v[0] == '/' && cgprof__config_valid_path(v, strlen(v)) &&
        join_path(out, n, v, "cgprof"))
        return;
    v = env_value(get, "HOME");
    if (v && v[0] == '/' && cgprof__config_valid_path(v, strlen(v))) {
        struct stat st;
        if (stat(v, &st) == 0 && S_ISDIR(st.st_mode) && access(v, W_OK) == 0 &&
            join_path(out, n, v, ".local/state/cgprof"))
            return;
    }
    snprintf(out, n, "/var/tmp/cgprof-%u", (unsigned)getuid());
}

/* Takes name, region and account from the ARN given as an option or, when
 * none was, from AWS_CODEGURU_PROFILER_GROUP_ARN. A name or region set
 * explicitly in the option string wins over the ARN's; the ARN's win over
 * the environment's; every disagreement is logged. A malformed ARN in the
 * environment is logged and ignored, as the official agents do. */
static void apply_arn(struct cgprof_config *cfg, uint64_t given, env_lookup get)
{
    const struct cgprof_option_info *opts = cgprof_config_options();
    const char *arn_src;
    char shown[CGPROF__ESC_OUT], shown2[CGPROF__ESC_OUT];
    char name[CGPROF_NAME_MAX], region[64], account[16];

    if (cfg->user_set & CGPROF__BIT(PROFILING_GROUP_ARN)) {
        arn_src = "option 'profilingGroupArn'";
    } else if (given & CGPROF__BIT(PROFILING_GROUP_ARN)) {
        return; /* given but invalid: already reported */
    } else {
        arn_src = opts[CGPROF__OPT_PROFILING_GROUP_ARN].env;
        const char *v = env_value(get, arn_src);
        if (!v)
            return;
        if (cgprof_config_parse_arn(v, NULL, 0, NULL, 0, NULL, 0) != 0 ||
            !copy_str(cfg->profiling_group_arn, sizeof(cfg->profiling_group_arn), v)) {
            cgprof__config_escape(shown, sizeof(shown), v, strlen(v));
            cgprof_warn("ignoring malformed %s '%s' (expected arn:PARTITION:"
                        "codeguru-profiler:REGION:ACCOUNT:profilingGroup/NAME)",
                        arn_src, shown);
            return;
        }
        cfg->user_set |= CGPROF__BIT(PROFILING_GROUP_ARN);
    }
    if (cgprof_config_parse_arn(cfg->profiling_group_arn, name, sizeof(name),
                                region, sizeof(region), account, sizeof(account)) != 0)
        return; /* cannot happen: checked when it was stored */
    copy_str(cfg->account_id, sizeof(cfg->account_id), account);

    struct { int opt; char *field; size_t size; const char *from_arn; } parts[] = {
        { CGPROF__OPT_PROFILING_GROUP_NAME, cfg->profiling_group_name,
          sizeof(cfg->profiling_group_name), name },
        { CGPROF__OPT_REGION, cfg->region, sizeof(cfg->region), region },
    };
    for (size_t k = 0; k < CGPROF_ARRAY_SIZE(parts); k++) {
        uint64_t bit = (uint64_t)1 << parts[k].opt;
        const char *key = opts[parts[k].opt].key;
        if (given & bit) {
            if ((cfg->user_set & bit) && strcmp(parts[k].field, parts[k].from_arn) != 0)
                cgprof_warn("%s '%s' differs from the %s '%s' in %s; using '%s'",
                            key, parts[k].field, key, parts[k].from_arn, arn_src,
                            parts[k].field);
            continue;
        }
        const char *env = opts[parts[k].opt].env;
        const char *v = env_value(get, env);
        if (v && strcmp(v, parts[k].from_arn) != 0) {
            cgprof__config_escape(shown, sizeof(shown), v, strlen(v));
            cgprof__config_escape(shown2, sizeof(shown2), parts[k].from_arn,
                                  strlen(parts[k].from_arn));
            cgprof_warn("%s '%s' differs from the %s '%s' in %s; using '%s'",
                        env, shown, key, shown2, arn_src, shown2);
        }
        copy_str(parts[k].field, parts[k].size, parts[k].from_arn);
        cfg->user_set |= bit;
    }
}

/* Optional sign and digits: what the official agents' int() accepts. */
static bool looks_integer(const char *v)
{
    if (*v == '+' || *v == '-')
        v++;
    if (!*v)
        return false;
    for (; *v; v++)
        if (*v < '0' || *v > '9')
            return false;
    return true;
}

/* Fills every key that has an environment variable and was not given in
 * the option string (nor taken from the ARN). Values are checked like
 * option values and count as set by the user (the service may not change
 * them); an empty variable is ignored. Kept from the official agents:
 * ENABLED disables on anything but "true" (any case), and a non-integer
 * interval is logged and ignored. Returns 0 or CGPROF_EINVAL. */
static int apply_env(struct cgprof_config *cfg, uint64_t given, uint64_t *failed,
                     env_lookup get)
{
    const struct cgprof_option_info *opts = cgprof_config_options();
    int ret = 0;
    for (int i = 0; i < CGPROF__OPT_COUNT; i++) {
        uint64_t bit = (uint64_t)1 << i;
        const char *env = opts[i].env;
        if (!env || ((given | cfg->user_set) & bit) ||
            i == CGPROF__OPT_PROFILING_GROUP_ARN || i == CGPROF__OPT_OUTPUT_DIR)
            continue;
        if (i == CGPROF__OPT_ENABLED) {
            const char *v = get(env);
            if (v) {
                cfg->enabled = strcasecmp(v, "true") == 0;
                cfg->user_set |= bit;
            }
            continue;
        }
        const char *v = env_value(get, env);
        if (!v)
            continue;
        if (cgprof__config_spec(i)->kind == CGPROF__KIND_UINT) {
            if (!looks_integer(v)) {
                char shown[CGPROF__ESC_OUT];
                cgprof__config_escape(shown, sizeof(shown), v, strlen(v));
                cgprof_warn("ignoring %s '%s' (not an integer)", env, shown);
                continue;
            }
            if (*v == '+')
                v++;
        }
        if (cgprof__config_set(cfg, i, v, strlen(v), env) != 0) {
            *failed |= bit;
            ret = CGPROF_EINVAL;
            continue;
        }
        cfg->user_set |= bit;
    }
    return ret;
}

/* Picks the default sink and fills what the chosen sinks need: a group
 * name (aws-lambda-<function> on Lambda, as the official agents do) and a
 * region (AWS_REGION, AWS_DEFAULT_REGION, else us-east-1, logged) for
 * CodeGuru, an endpoint for Pyroscope. A requirement that fails because
 * its key was given with a bad value is not reported twice. */
static int resolve_sinks(struct cgprof_config *cfg, uint64_t failed, env_lookup get)
{
    int ret = 0;
    if (!(cfg->user_set & CGPROF__BIT(SINK)))
        cfg->sinks = cfg->profiling_group_name[0] ? CGPROF_SINK_CODEGURU : CGPROF_SINK_FILE;
    if (cfg->sinks & CGPROF_SINK_CODEGURU) {
        const char *fn = env_value(get, "AWS_LAMBDA_FUNCTION_NAME");
        if (!cfg->profiling_group_name[0] && fn) {
            char name[CGPROF_NAME_MAX];
            int w = snprintf(name, sizeof(name), "aws-lambda-%s", fn);
            if (w > 0 && (size_t)w < sizeof(name) && cgprof_config_valid_group_name(name)) {
                memcpy(cfg->profiling_group_name, name, (size_t)w + 1);
                cgprof_info("using profiling group '%s' for this Lambda function", name);
            }
        }
        if (!cfg->profiling_group_name[0] &&
            !(failed & (CGPROF__BIT(PROFILING_GROUP_NAME) | CGPROF__BIT(PROFILING_GROUP_ARN)))) {
            cgprof_error("sink 'codeguru' needs profilingGroupName or profilingGroupArn "
                         "(or AWS_CODEGURU_PROFILER_GROUP_NAME); profiling stays off");
            ret = CGPROF_EINVAL;
        }
        if (!cfg->region[0] && !(failed & CGPROF__BIT(REGION))) {
            static const char *const vars[] = { "AWS_REGION", "AWS_DEFAULT_REGION" };
            for (size_t k = 0; k < CGPROF_ARRAY_SIZE(vars) && !cfg->region[0]; k++) {
                const char *v = env_value(get, vars[k]);
                if (v && cgprof_config_valid_region(v))
                    copy_str(cfg->region, sizeof(cfg->region), v);
            }
            if (!cfg->region[0]) {
                strcpy(cfg->region, "us-east-1");
                cgprof_info("no region given; using us-east-1");
            }
        }
    }
    if ((cfg->sinks & CGPROF_SINK_PYROSCOPE) && !cfg->endpoint[0] &&
        !(failed & (CGPROF__BIT(ENDPOINT) | CGPROF__BIT(SERVER_ADDRESS)))) {
        cgprof_error("sink 'pyroscope' needs serverAddress or endpoint (the Pyroscope server URL); "
                     "profiling stays off");
        ret = CGPROF_EINVAL;
    }
    return ret;
}

/* A reporting interval below the minimum reporting time would never
 * report (the official agents refuse to start, too). Lowering both is the
 * way to get short intervals, e.g. in tests. */
static int check_intervals(const struct cgprof_config *cfg, uint64_t failed)
{
    if (failed & (CGPROF__BIT(REPORTING_INTERVAL_MS) | CGPROF__BIT(MINIMUM_TIME_FOR_REPORTING_MS)))
        return 0;
    if (cfg->reporting_interval_ms < cfg->minimum_time_for_reporting_ms) {
        cgprof_error("reportingIntervalMs %u is below minimumTimeForReportingMs %u "
                     "(lower that too for short intervals); profiling stays off",
                     cfg->reporting_interval_ms, cfg->minimum_time_for_reporting_ms);
        return CGPROF_EINVAL;
    }
    return 0;
}

/* Tests: test/unit/config/test_env.c, test_parse.c */
int cgprof_config_load(struct cgprof_config *cfg, const char *options,
                       const char *(*getenv_fn)(const char *))
{
    env_lookup get = getenv_fn ? getenv_fn : libc_getenv;
    uint64_t failed = 0;
    bool invalid = false;

    cgprof__config_defaults_nodir(cfg);
    /* Set the level first so logLevel:off also silences its own parse. */
    int level = cgprof__config_scan_log_level(options);
    cgprof_log_set_level(level >= 0 ? (enum cgprof_log_level)level : CGPROF_LOG_WARN);

    if (cgprof__config_parse(cfg, options, &failed) != 0)
        invalid = true;
    uint64_t given = cfg->user_set | failed;
    apply_arn(cfg, given, get);
    if (apply_env(cfg, given, &failed, get) != 0)
        invalid = true;
    if (resolve_sinks(cfg, failed, get) != 0)
        invalid = true;
    if (check_intervals(cfg, failed) != 0)
        invalid = true;
    if (!cfg->output_dir[0])
        cgprof_config_default_output_dir(cfg->output_dir, sizeof(cfg->output_dir), get);
    cgprof_log_set_level((enum cgprof_log_level)cfg->log_level);

    if (invalid)
        return CGPROF_EINVAL;
    if (!cfg->enabled) {
        cgprof_info("profiling disabled by %s",
                    (cfg->user_set & CGPROF__BIT(ENABLED)) && !(given & CGPROF__BIT(ENABLED))
                    ? "AWS_CODEGURU_PROFILER_ENABLED" : "option 'enabled'");
        return CGPROF_EDISABLED;
    }
    return 0;
}
