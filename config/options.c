/* The documented option table (cgprof_config_options), the map from each
 * option to its struct field, key lookup with a "did you mean" suggestion,
 * and the defaults. The rows themselves live in config_int.h's X-macro;
 * parsing is in parse.c, checks in validate.c, the environment in env.c. */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "../common/common.h"
#include "config_int.h"

_Static_assert(CGPROF__OPT_COUNT <= 64, "user_set holds one bit per option");

static const struct cgprof_option_info options[] = {
#define CGPROF__OPT_INFO(id, key, env, def, kind, field, min, max, help) \
    { key, env, def, help },
    CGPROF__OPTION_TABLE(CGPROF__OPT_INFO)
#undef CGPROF__OPT_INFO
    { NULL, NULL, NULL, NULL }
};

#define FIELD_SIZE(field) sizeof(((struct cgprof_config *)0)->field)

static const struct cgprof__config_spec specs[] = {
#define CGPROF__OPT_SPEC(id, key, env, def, kind, field, min, max, help) \
    { kind, offsetof(struct cgprof_config, field), FIELD_SIZE(field), min, max },
    CGPROF__OPTION_TABLE(CGPROF__OPT_SPEC)
#undef CGPROF__OPT_SPEC
};

const struct cgprof_option_info *cgprof_config_options(void)
{
    return options;
}

/* Tests: test/unit/config/test_options.c */
const struct cgprof__config_spec *cgprof__config_spec(int i)
{
    if (i < 0 || i >= CGPROF__OPT_COUNT)
        return NULL;
    return &specs[i];
}

/* Keys match case-insensitively: the keys differ in more than case, so
 * "profilinggroupname" can only mean one thing and rejecting it would
 * just be unkind. Tests: test/unit/config/test_options.c */
int cgprof__config_lookup(const char *key, size_t len)
{
    for (int i = 0; i < CGPROF__OPT_COUNT; i++)
        if (strlen(options[i].key) == len && strncasecmp(options[i].key, key, len) == 0)
            return i;
    return -1;
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Levenshtein distance between a (at most 64 bytes are considered, so a
 * hostile 4 KiB key costs little) and a known key of at most 63 bytes,
 * with one row of state. */
static unsigned edit_distance(const char *a, size_t alen, const char *b)
{
    unsigned row[64];
    size_t blen = strlen(b);
    if (blen >= CGPROF_ARRAY_SIZE(row))
        blen = CGPROF_ARRAY_SIZE(row) - 1;
    if (alen > 64)
        alen = 64;
    for (size_t j = 0; j <= blen; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= alen; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= blen; j++) {
            unsigned up = row[j];
            unsigned cost = lower((unsigned char)a[i - 1]) ==
                            lower((unsigned char)b[j - 1]) ? 0 : 1;
            unsigned best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[blen];
}

/* Tests: test/unit/config/test_options.c */
int cgprof__config_closest(const char *key, size_t len, unsigned *dist)
{
    int best = 0;
    unsigned best_d = ~0u;
    for (int i = 0; i < CGPROF__OPT_COUNT; i++) {
        unsigned d = edit_distance(key, len, options[i].key);
        if (d < best_d) {
            best_d = d;
            best = i;
        }
    }
    if (dist)
        *dist = best_d;
    return best;
}

/* Tests: test/unit/config/test_options.c (defaults match default_text) */
void cgprof__config_defaults_nodir(struct cgprof_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->enabled = true;
    cfg->heap_summary_enabled = false;
    cfg->sampling_interval_ms = 1000;
    cfg->reporting_interval_ms = 300000;
    cfg->minimum_time_for_reporting_ms = 60000;
    cfg->cpu_sampling_hz = 100;
    cfg->max_stack_depth = 1000;
    cfg->sinks = CGPROF_SINK_FILE; /* the loader picks codeguru when a group is known */
    cfg->log_level = CGPROF_LOG_WARN;
    strcpy(cfg->kill_switch_path, "/var/tmp/killProfiler");
    cfg->cpu_limit_percent = 10;
    cfg->memory_limit_mb = 32;
    cfg->profile_children = true;
    cfg->upload_gzip = false;
    cfg->max_output_mb = 256;
    cfg->heap_sampling_interval_bytes = 524288;
    cfg->heap_summary_threshold_permille = 5;
    cfg->user_set = 0;
}

void cgprof_config_defaults(struct cgprof_config *cfg)
{
    cgprof__config_defaults_nodir(cfg);
    cgprof_config_default_output_dir(cfg->output_dir, sizeof(cfg->output_dir), NULL);
}
