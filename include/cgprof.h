/* cgprof public API, for programs that prefer to start the profiler in code
 * rather than through LD_PRELOAD (the equivalent of the Java agent's
 * Profiler.builder()...start()). Link with -lcgprof. All functions are
 * thread-safe, never abort, and leave errno unchanged. */
#ifndef CGPROF_H
#define CGPROF_H

#ifdef __cplusplus
extern "C" {
#endif

/* Starts profiling with an option string in the CGPROF_OPTIONS syntax
 * ("profilingGroupName:x,region:y"); NULL or "" uses the environment alone.
 * Returns 0 when profiling is running (or already was), a negative error
 * code when the options are invalid or profiling is disabled; the reason is
 * logged on stderr as one "cgprof:" line. */
int cgprof_start(const char *options);

/* Stops sampling and flushes the current profile, waiting at most a few
 * seconds. Returns 0, or a negative error code if nothing was running. */
int cgprof_stop(void);

/* Ends the current reporting interval now and hands the profile to the
 * sinks, without stopping. Returns 0 or a negative error code. */
int cgprof_flush(void);

/* Version string, e.g. "0.1.0". */
const char *cgprof_version(void);

#ifdef __cplusplus
}
#endif

#endif
