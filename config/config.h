/* config/: the option string (CGPROF_OPTIONS, or cgprof_start's argument)
 * and the official agents' AWS_CODEGURU_PROFILER_* variables, merged into one
 * validated struct. Precedence: option string, then the group ARN, then the
 * environment, then defaults. Nothing here starts threads or touches the
 * network; parsing is pure apart from reading the environment. */
#ifndef CGPROF_CONFIG_H
#define CGPROF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cgprof_sink_kind {
    CGPROF_SINK_FILE = 1,
    CGPROF_SINK_CODEGURU = 2,
    CGPROF_SINK_PYROSCOPE = 4
};

/* How CPU time is sampled (cpuEngine). */
enum cgprof_cpu_engine {
    CGPROF_CPU_ENGINE_AUTO = 0,
    CGPROF_CPU_ENGINE_PERF = 1,
    CGPROF_CPU_ENGINE_TIMER = 2
};

#define CGPROF_NAME_MAX 256
#define CGPROF_PATH_MAX 1024
#define CGPROF_URL_MAX 1024

struct cgprof_config {
    bool enabled;                       /* enabled / AWS_CODEGURU_PROFILER_ENABLED */
    char profiling_group_name[CGPROF_NAME_MAX];
    char profiling_group_arn[CGPROF_URL_MAX];
    char region[64];
    char account_id[16];                /* from the ARN, when given */
    bool heap_summary_enabled;
    char credential_path[CGPROF_PATH_MAX];
    char credential_profile[CGPROF_NAME_MAX];
    unsigned sampling_interval_ms;      /* thread-state sampling, default 1000 */
    unsigned reporting_interval_ms;     /* default 300000 */
    unsigned minimum_time_for_reporting_ms; /* default 60000 */
    unsigned cpu_sampling_hz;           /* per-thread CPU sampling, 0 = off */
    unsigned max_stack_depth;           /* default 1000 */
    unsigned sinks;                     /* bit set of enum cgprof_sink_kind */
    char output_dir[CGPROF_PATH_MAX];   /* file sink and spool base */
    char endpoint[CGPROF_URL_MAX];
    char ca_bundle[CGPROF_PATH_MAX];
    int log_level;                      /* enum cgprof_log_level */
    char kill_switch_path[CGPROF_PATH_MAX];
    unsigned cpu_limit_percent;         /* self-disable past this, default 10 */
    unsigned memory_limit_mb;           /* profile memory cap, default 32 */
    bool profile_children;              /* exec'd children inherit, default true */
    bool upload_gzip;                   /* Content-Encoding: gzip to CodeGuru */
    unsigned max_output_mb;             /* size cap on outputDir, default 256 */
    int cpu_engine;                     /* enum cgprof_cpu_engine */
    unsigned heap_sampling_interval_bytes; /* heap sampling mean, default 512 KiB */
    unsigned heap_summary_threshold_permille; /* site threshold, default 5 (0.5 %) */
    /* The Pyroscope sink (applicationName, tags, auth, tenant). */
    char application_name[CGPROF_NAME_MAX]; /* "" = group or program name */
    char tags[1024];                    /* "k=v;k=v", validated */
    char pyroscope_user[CGPROF_NAME_MAX];
    char pyroscope_password[CGPROF_NAME_MAX]; /* secret */
    char pyroscope_token[2048];         /* secret */
    char pyroscope_tenant[160];

    /* Which keys were given explicitly (bit per key index), so later layers
     * (environment, service configuration) know what the user fixed. */
    uint64_t user_set;
};

/* One row of the option table: the single source of the documented keys.
 * README.md's option table is checked against it by a test. */
struct cgprof_option_info {
    const char *key;
    const char *env;          /* AWS_CODEGURU_PROFILER_* equivalent or NULL */
    const char *default_text; /* as documented */
    const char *help;         /* what it means and what is accepted */
};

/* The documented options, terminated by a row with key == NULL. */
const struct cgprof_option_info *cgprof_config_options(void);

/* Fills cfg with the defaults (output_dir resolved as documented). */
void cgprof_config_defaults(struct cgprof_config *cfg);

/* Builds cfg from an option string (may be NULL) and an environment lookup
 * (getenv when NULL). Unknown keys get one warning naming the closest known
 * key and are skipped. Returns 0 when the agent may start, CGPROF_EINVAL
 * when a value was invalid (one "cgprof:" line per problem was logged and
 * the agent must stay dormant), CGPROF_EDISABLED when profiling was turned
 * off on purpose. cfg is always filled with something usable. */
int cgprof_config_load(struct cgprof_config *cfg, const char *options,
                       const char *(*getenv_fn)(const char *));

/* Resolves the default output directory: $CGPROF_OUTPUT_DIR,
 * $XDG_STATE_HOME/cgprof, $HOME/.local/state/cgprof if HOME is a writable
 * directory, else /var/tmp/cgprof-<uid>. Shared with `cgprof report`. */
void cgprof_config_default_output_dir(char *out, size_t n,
                                      const char *(*getenv_fn)(const char *));

/* Validators, exposed for the CLI and tests. Return true when valid. */
bool cgprof_config_valid_group_name(const char *s);
bool cgprof_config_valid_region(const char *s);
/* Parses an ARN into name/region/account; returns 0 or CGPROF_EINVAL. */
int cgprof_config_parse_arn(const char *arn, char *name, size_t name_n,
                            char *region, size_t region_n,
                            char *account, size_t account_n);

#endif
