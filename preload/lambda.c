/* AWS Lambda: detection from the environment, and the freeze between
 * invocations. Lambda freezes the whole execution environment once the
 * runtime asks for the next event; the agent sees that as one wait on its
 * ≤100 ms tick lasting seconds. That time is not profiled time, so the
 * agent subtracts it from durationInMs and from the reporting interval.
 * Fleet info and ConfigureAgent metadata are the uploader's (fleet.c). */
#include <stdlib.h>
#include <string.h>

#include "preload_int.h"

static const char *env_nonempty(const char *k)
{
    const char *v = getenv(k);
    return v && *v ? v : NULL;
}

/* On Lambda when the function name and the runtime's task root or runtime
 * directory are set, as every Lambda runtime does (WIRE.md §5).
 * Tests: test/unit/preload/test_lambda.c */
bool cgprof__lambda_detect(void)
{
    return env_nonempty("AWS_LAMBDA_FUNCTION_NAME") &&
           (env_nonempty("LAMBDA_TASK_ROOT") || env_nonempty("LAMBDA_RUNTIME_DIR"));
}

/* How long the process was frozen during one timed wait of the agent
 * thread: a wait of at most wait_ms that began at before_ns and ended at
 * after_ns (CLOCK_MONOTONIC keeps running while a process is frozen or
 * stopped). Waits that overran by less than CGPROF__FREEZE_SLACK_MS are
 * ordinary scheduling delay and count as 0; a longer overrun counts whole,
 * the wait itself not. Tests: test/unit/preload/test_lambda.c */
uint64_t cgprof__lambda_frozen_ns(uint64_t before_ns, uint64_t after_ns, unsigned wait_ms)
{
    if (after_ns <= before_ns)
        return 0;
    uint64_t waited = after_ns - before_ns, planned = (uint64_t)wait_ms * 1000000u;
    if (waited <= planned + (uint64_t)CGPROF__FREEZE_SLACK_MS * 1000000u)
        return 0;
    return waited - planned;
}
