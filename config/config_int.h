/* Declarations shared by the files of config/ and its unit tests only:
 * the option table as an X-macro (so the public table, the field map and
 * the user_set bit numbers all come from one list), value setters and
 * the helpers that format log lines. Nothing outside config/ includes it. */
#ifndef CGPROF_CONFIG_INT_H
#define CGPROF_CONFIG_INT_H

#include <stddef.h>

#include "config.h"

/* How a value is checked and stored. */
enum cgprof__config_kind {
    CGPROF__KIND_BOOL,
    CGPROF__KIND_UINT,       /* decimal, range [min, max] */
    CGPROF__KIND_GROUP_NAME,
    CGPROF__KIND_ARN,
    CGPROF__KIND_REGION,
    CGPROF__KIND_PATH,       /* absolute path */
    CGPROF__KIND_PROFILE,    /* credentials profile name */
    CGPROF__KIND_URL,        /* http:// or https:// */
    CGPROF__KIND_SINK,       /* codeguru|file|pyroscope joined with '+' */
    CGPROF__KIND_LOG_LEVEL,
    CGPROF__KIND_ENGINE,     /* auto|perf|timer */
    CGPROF__KIND_APP_NAME,   /* Pyroscope application name */
    CGPROF__KIND_TAGS,       /* key=value;key=value (Pyroscope labels) */
    CGPROF__KIND_SECRET,     /* printable, never echoed in log lines */
    CGPROF__KIND_TENANT      /* Pyroscope/Mimir tenant id */
};

/* The one option table. Columns: id, key, environment variable, default
 * as documented, kind, struct field, min, max, help. The row order gives
 * the user_set bit (CGPROF__OPT_<id>); append new rows at the end so the
 * bits stay stable. Help text is copied verbatim into README.md's table
 * (test_options.c checks it), so it must stay Markdown-table safe: no pipe
 * characters and no angle brackets outside backticks. */
#define CGPROF__OPTION_TABLE(X)                                                \
    X(PROFILING_GROUP_NAME, "profilingGroupName",                              \
      "AWS_CODEGURU_PROFILER_GROUP_NAME", "none", CGPROF__KIND_GROUP_NAME,     \
      profiling_group_name, 0, 0,                                              \
      "CodeGuru profiling group: 1 to 255 letters, digits, `_` or `-`")        \
    X(PROFILING_GROUP_ARN, "profilingGroupArn",                                \
      "AWS_CODEGURU_PROFILER_GROUP_ARN", "none", CGPROF__KIND_ARN,             \
      profiling_group_arn, 0, 0,                                               \
      "`arn:aws:codeguru-profiler:REGION:ACCOUNT:profilingGroup/NAME`; "       \
      "gives the group name and region unless those are set explicitly "      \
      "(a conflict is logged, the explicit value wins)")                      \
    X(REGION, "region", "AWS_CODEGURU_PROFILER_TARGET_REGION",                 \
      "from the ARN, else AWS_REGION or AWS_DEFAULT_REGION, else us-east-1",   \
      CGPROF__KIND_REGION, region, 0, 0,                                       \
      "AWS region of the profiling group, such as `us-east-1`; the "          \
      "fallbacks apply only when the `codeguru` sink is used")                \
    X(ENABLED, "enabled", "AWS_CODEGURU_PROFILER_ENABLED", "true",             \
      CGPROF__KIND_BOOL, enabled, 0, 0,                                        \
      "`false` keeps the agent dormant; the environment variable disables "   \
      "it on any value other than `true` (case-insensitive), as the "         \
      "official agents do")                                                   \
    X(HEAP_SUMMARY_ENABLED, "heapSummaryEnabled",                              \
      "AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED", "false",                   \
      CGPROF__KIND_BOOL, heap_summary_enabled, 0, 0,                           \
      "`true` turns on the heap summary: capacity and used space over time, " \
      "and allocation sites where `libcgprof-heap.so` is preloaded")        \
    X(CREDENTIAL_PATH, "credentialPath",                                       \
      "AWS_CODEGURU_PROFILER_CREDENTIAL_PATH", "none", CGPROF__KIND_PATH,      \
      credential_path, 0, 0,                                                   \
      "absolute path of an AWS shared credentials file, instead of "          \
      "`~/.aws/credentials`")                                                 \
    X(CREDENTIAL_PROFILE, "credentialProfile", NULL, "none",                   \
      CGPROF__KIND_PROFILE, credential_profile, 0, 0,                          \
      "profile in the shared credentials/config files (else `AWS_PROFILE`, "  \
      "else `default`)")                                                      \
    X(SAMPLING_INTERVAL_MS, "samplingIntervalMs",                              \
      "AWS_CODEGURU_PROFILER_SAMPLING_INTERVAL_MS", "1000",                    \
      CGPROF__KIND_UINT, sampling_interval_ms, 10, 3600000,                    \
      "thread-state (latency) sampling interval in ms, 10 to 3600000")        \
    X(REPORTING_INTERVAL_MS, "reportingIntervalMs",                            \
      "AWS_CODEGURU_PROFILER_REPORTING_INTERVAL_MS", "300000",                 \
      CGPROF__KIND_UINT, reporting_interval_ms, 1000, 86400000,                \
      "how often a profile is reported, in ms, 1000 to 86400000; must not "   \
      "be below `minimumTimeForReportingMs` (lower both for short "           \
      "intervals)")                                                           \
    X(MINIMUM_TIME_FOR_REPORTING_MS, "minimumTimeForReportingMs", NULL,        \
      "60000", CGPROF__KIND_UINT, minimum_time_for_reporting_ms, 0, 86400000,  \
      "profiles covering less time than this (ms, 0 to 86400000) are not "    \
      "reported on their own")                                                \
    X(CPU_SAMPLING_HZ, "cpuSamplingHz", NULL, "100", CGPROF__KIND_UINT,        \
      cpu_sampling_hz, 0, 1000,                                                \
      "CPU samples per second of each thread's CPU time, 0 (off) to 1000")    \
    X(MAX_STACK_DEPTH, "maxStackDepth", NULL, "1000", CGPROF__KIND_UINT,       \
      max_stack_depth, 1, 4096,                                                \
      "deepest stack recorded, 1 to 4096 frames; deeper stacks are "          \
      "truncated")                                                            \
    X(SINK, "sink", NULL, "codeguru if a group name or ARN is known, else file", \
      CGPROF__KIND_SINK, sinks, 0, 0,                                          \
      "where profiles go: `codeguru`, `file`, `pyroscope` or a combination "  \
      "such as `codeguru+file`")                                              \
    X(OUTPUT_DIR, "outputDir", "CGPROF_OUTPUT_DIR",                            \
      "$XDG_STATE_HOME/cgprof, else ~/.local/state/cgprof if HOME is "         \
      "writable, else /var/tmp/cgprof-UID",                                    \
      CGPROF__KIND_PATH, output_dir, 0, 0,                                     \
      "absolute directory for the `file` sink and the upload spool")          \
    X(ENDPOINT, "endpoint", NULL, "none", CGPROF__KIND_URL, endpoint, 0, 0,    \
      "`http://` or `https://` URL: the Pyroscope server (required with "     \
      "`pyroscope`), else an override of the regional CodeGuru endpoint")     \
    X(CA_BUNDLE, "caBundle", NULL, "none", CGPROF__KIND_PATH, ca_bundle, 0, 0, \
      "absolute path of a PEM file of trusted CAs (else `AWS_CA_BUNDLE`, "    \
      "else the system store)")                                               \
    X(LOG_LEVEL, "logLevel", NULL, "warn", CGPROF__KIND_LOG_LEVEL, log_level,  \
      0, 0, "`off`, `error`, `warn`, `info` or `debug`; lines go to stderr "  \
      "prefixed `cgprof:`")                                                   \
    X(KILL_SWITCH_PATH, "killSwitchPath", NULL, "/var/tmp/killProfiler",       \
      CGPROF__KIND_PATH, kill_switch_path, 0, 0,                               \
      "while this file exists the agent stops profiling")                     \
    X(CPU_LIMIT_PERCENT, "cpuLimitPercent", NULL, "10", CGPROF__KIND_UINT,     \
      cpu_limit_percent, 1, 100,                                               \
      "the agent disables itself past this share of the process's CPU "       \
      "time, 1 to 100")                                                       \
    X(MEMORY_LIMIT_MB, "memoryLimitMb", NULL, "32", CGPROF__KIND_UINT,         \
      memory_limit_mb, 1, 4096, "cap on profile memory in MiB, 1 to 4096")     \
    X(PROFILE_CHILDREN, "profileChildren", NULL, "true", CGPROF__KIND_BOOL,    \
      profile_children, 0, 0,                                                  \
      "`true`: exec'd child processes keep the preload and are profiled too") \
    X(UPLOAD_GZIP, "uploadGzip", NULL, "false", CGPROF__KIND_BOOL,             \
      upload_gzip, 0, 0, "`true`: send profiles to CodeGuru gzip-compressed")  \
    X(MAX_OUTPUT_MB, "maxOutputMb", NULL, "256", CGPROF__KIND_UINT,            \
      max_output_mb, 0, 1048576,                                               \
      "size cap of `outputDir` in MiB (oldest profiles go first), 0 = no cap") \
    X(CPU_ENGINE, "cpuEngine", NULL, "auto", CGPROF__KIND_ENGINE, cpu_engine,  \
      0, 0, "`perf`: a task-clock perf event per thread, exact at any rate; "  \
      "`timer`: a CPU-time timer per thread, limited to the kernel tick; "    \
      "`auto`: perf where the kernel allows it, else timer")                  \
    X(HEAP_SAMPLING_INTERVAL_BYTES, "heapSamplingIntervalBytes", NULL,         \
      "524288", CGPROF__KIND_UINT, heap_sampling_interval_bytes, 1024,         \
      1073741824,                                                              \
      "with the heap summary on: mean bytes allocated between two sampled "   \
      "allocations (a Poisson process), 1024 to 1073741824; smaller is more " \
      "precise and costs more")                                               \
    X(HEAP_SUMMARY_THRESHOLD_PERMILLE, "heapSummaryThresholdPermille", NULL,   \
      "5", CGPROF__KIND_UINT, heap_summary_threshold_permille, 0, 1000,        \
      "an allocation site is listed at a heap data point only when it holds " \
      "at least this many thousandths of the total capacity (5 = 0.5 %, as "  \
      "the console); 0 lists every site")                                     \
    X(APPLICATION_NAME, "applicationName", NULL,                               \
      "the profiling group name, else the program name",                       \
      CGPROF__KIND_APP_NAME, application_name, 0, 0,                           \
      "Pyroscope application name (the ingest `name`): 1 to 255 letters, "    \
      "digits, `.`, `_`, `-` or `/`")                                         \
    X(TAGS, "tags", NULL, "none", CGPROF__KIND_TAGS, tags, 0, 0,               \
      "Pyroscope labels as `key=value` pairs joined with `;`, such as "       \
      "`env=prod;region=eu`; keys are letters, digits and `_` (not starting " \
      "with a digit or `__`), values letters, digits and `._-/:@+`")          \
    X(PYROSCOPE_USER, "pyroscopeUser", NULL, "none", CGPROF__KIND_SECRET,      \
      pyroscope_user, 0, 0,                                                    \
      "HTTP basic-auth user for the Pyroscope server (Grafana Cloud: the "    \
      "stack's user id); a `user:password@` in `endpoint` works too")         \
    X(PYROSCOPE_PASSWORD, "pyroscopePassword", NULL, "none",                   \
      CGPROF__KIND_SECRET, pyroscope_password, 0, 0,                           \
      "HTTP basic-auth password for the Pyroscope server (an API token on "   \
      "Grafana Cloud); never logged")                                         \
    X(PYROSCOPE_TOKEN, "pyroscopeToken", NULL, "none", CGPROF__KIND_SECRET,    \
      pyroscope_token, 0, 0,                                                   \
      "bearer token for the Pyroscope server (`Authorization: Bearer`), "     \
      "instead of basic auth; never logged")                                  \
    X(PYROSCOPE_TENANT, "pyroscopeTenant", NULL, "none", CGPROF__KIND_TENANT,  \
      pyroscope_tenant, 0, 0,                                                  \
      "tenant id of a multi-tenant Pyroscope, sent as `X-Scope-OrgID`: 1 to " \
      "150 letters, digits or ``!-_.*'()``")                                  \
    X(SERVER_ADDRESS, "serverAddress", NULL, "none", CGPROF__KIND_URL,          \
      endpoint, 0, 0,                                                          \
      "the Pyroscope server URL, as Pyroscope's own agents name it; the same " \
      "setting as `endpoint`")

enum cgprof__config_opt {
#define CGPROF__OPT_ENUM(id, key, env, def, kind, field, min, max, help) \
    CGPROF__OPT_##id,
    CGPROF__OPTION_TABLE(CGPROF__OPT_ENUM)
#undef CGPROF__OPT_ENUM
    CGPROF__OPT_COUNT
};

#define CGPROF__BIT(id) ((uint64_t)1 << CGPROF__OPT_##id)

/* How each option maps onto struct cgprof_config (config/options.c). */
struct cgprof__config_spec {
    enum cgprof__config_kind kind;
    size_t offset;
    size_t size;
    unsigned min, max;
};

/* The spec row for option index i (0 <= i < CGPROF__OPT_COUNT). */
const struct cgprof__config_spec *cgprof__config_spec(int i);

/* Index of the option named key[0..len) (case-insensitive), or -1. */
int cgprof__config_lookup(const char *key, size_t len);

/* Index of the known key closest to key[0..len) by case-insensitive edit
 * distance; *dist receives the distance when not NULL. */
int cgprof__config_closest(const char *key, size_t len, unsigned *dist);

/* Defaults without the output directory (left empty), for the loader,
 * which resolves it last and only when nothing set it. */
void cgprof__config_defaults_nodir(struct cgprof_config *cfg);

/* Checks val[0..len) for option i and stores it in cfg. On failure logs
 * one line "invalid value '<v>' for <what> (expected ...)" and returns
 * CGPROF_EINVAL, leaving cfg untouched. what names the source, e.g.
 * "option 'region'" or "AWS_CODEGURU_PROFILER_TARGET_REGION". Does not
 * touch user_set. */
int cgprof__config_set(struct cgprof_config *cfg, int i, const char *val,
                       size_t len, const char *what);

/* Like cgprof__config_set but only checks; logs nothing. */
bool cgprof__config_check(int i, const char *val, size_t len);

/* Parses a decimal unsigned integer (no sign, no spaces, no trailing
 * bytes); returns 0 or CGPROF_EINVAL (also on overflow past UINT32_MAX). */
int cgprof__config_parse_uint(const char *s, size_t len, unsigned *out);

/* Parses "true"/"false" (case-insensitive); 0 or CGPROF_EINVAL. */
int cgprof__config_parse_bool(const char *s, size_t len, bool *out);

/* Parses a sink list such as "codeguru+file" into a bit set. */
int cgprof__config_parse_sinks(const char *s, size_t len, unsigned *out);

bool cgprof__config_valid_path(const char *s, size_t len);
bool cgprof__config_valid_url(const char *s, size_t len);
bool cgprof__config_valid_profile(const char *s, size_t len);
/* Pyroscope application names, tag lists and tenant ids as documented in
 * the option table (validate.c). */
bool cgprof__config_valid_app_name(const char *s, size_t len);
bool cgprof__config_valid_tags(const char *s, size_t len);
bool cgprof__config_valid_tenant(const char *s, size_t len);

/* Writes s[0..len) for a log line: printable ASCII kept, quote and
 * backslash escaped, other bytes as \xHH, at most CGPROF__ESC_IN input
 * bytes followed by "...(N bytes)". out always NUL-terminated. */
#define CGPROF__ESC_IN 64
#define CGPROF__ESC_OUT (CGPROF__ESC_IN * 4 + 32)
void cgprof__config_escape(char *out, size_t n, const char *s, size_t len);

/* Applies the option string; every problem is logged (one line each).
 * Sets user_set bits of the keys given with a valid value and, when failed
 * is not NULL, ORs into *failed the bits of keys given with an invalid
 * one (so the loader neither falls back to the environment for them nor
 * logs follow-on complaints). Returns 0 or CGPROF_EINVAL. */
int cgprof__config_parse(struct cgprof_config *cfg, const char *options,
                         uint64_t *failed);

/* The log level the option string asks for (last valid logLevel), or -1.
 * Silent; lets the loader set the level before it logs anything. */
int cgprof__config_scan_log_level(const char *options);

#endif
