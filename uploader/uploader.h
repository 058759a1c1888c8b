/* uploader/: where finished profiles go. The file sink (the embedded
 * default) writes gzip'd CodeGuru JSON into a directory; the CodeGuru and
 * Pyroscope sinks, SigV4, HTTPS and the spool arrive with their issues.
 * Sinks never run on the sampling path. */
#ifndef CGPROF_UPLOADER_H
#define CGPROF_UPLOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../profile/profile.h"

/* Writes p to dir as "<name>-<pid>-<YYYYmmddTHHMMSSZ>-<start_ms>.json.gz"
 * (name = p->group_name sanitized to [A-Za-z0-9_.-]) atomically: temp file
 * then rename. Creates dir if needed. Afterwards, if the *.json.gz files in
 * dir exceed max_dir_bytes (0 = no cap), the oldest are deleted first and a
 * log line says how many. On success and when path_out is not NULL, the
 * final path is copied there. Returns 0 or a negative error. */
int cgprof_file_sink_write(const struct cgprof_profile *p, const char *dir,
                           size_t max_dir_bytes, char *path_out, size_t path_n);

/* ---- the CodeGuru sink (upload_thread.c) ------------------------------- */

struct cgprof_config;

/* What the service's ConfigureAgent answer (merged over the user's
 * configuration, user-set keys winning, WIRE.md §2) asks of the agent. */
struct cgprof_uploader_agent_config {
    bool should_profile;                /* false: sample nothing, report nothing */
    unsigned reporting_interval_ms;     /* periodInSeconds unless the user set it */
    unsigned sampling_interval_ms;
    unsigned minimum_time_for_reporting_ms;
    unsigned max_stack_depth;
    unsigned cpu_limit_percent;
    uint64_t generation;                /* bumped whenever a field changes */
};

/* Bound on the final flush at stop, the documented default. */
#define CGPROF_UPLOADER_FLUSH_MS 2000u

/* Starts the upload thread for cfg's profiling group (cfg is copied): it
 * detects fleet info, resolves credentials, calls ConfigureAgent at once
 * and once per reporting cycle, posts submitted profiles with retries and
 * keeps what it cannot deliver in <outputDir>/spool/<group>/, which it
 * retries with backoff (spooled profiles of earlier processes too). The
 * thread blocks every signal. Returns 0, or a negative error when the
 * endpoint is unusable or the thread cannot start (logged; submit then
 * returns CGPROF_EINVAL). Idempotent. Not signal-safe. */
int cgprof_uploader_start(const struct cgprof_config *cfg);

/* Hands a finished profile to the upload thread: fills p's fleet info and
 * error counts from the uploader, encodes and gzips it on the caller's
 * thread and queues the bytes; never waits for the network. Returns 0,
 * CGPROF_EINVAL when the uploader is not running, or an encoding error.
 * In a forked child the uploader restarts itself first. */
int cgprof_uploader_submit(struct cgprof_profile *p);

/* Stops the upload thread: pending profiles get one last delivery attempt
 * for at most timeout_ms (CGPROF_UPLOADER_FLUSH_MS is the documented
 * default); whatever is still undelivered then is spooled and the call
 * returns. Safe to call when not started. */
void cgprof_uploader_stop(unsigned timeout_ms);

/* The current agent configuration (the user's until ConfigureAgent has
 * answered). Returns false when the uploader is not running. */
bool cgprof_uploader_agent_config(struct cgprof_uploader_agent_config *out);

/* fn runs first on the upload thread (preload uses it to tell the sampler
 * that this thread is the profiler's own: never sampled). */
void cgprof_uploader_set_thread_hook(void (*fn)(void));

/* Counters for tests and logs. */
struct cgprof_uploader_stats {
    uint64_t submitted, delivered, spooled, spool_delivered, dropped, configure_calls;
};
void cgprof_uploader_get_stats(struct cgprof_uploader_stats *out);

#endif
