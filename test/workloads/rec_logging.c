/* rec_logging: triggers the logging-format recommendation. Formats a log
 * line with snprintf and writes it with fprintf to /dev/null for every
 * item, for S seconds. Usage: rec_logging [seconds=1.5]. Prints "ok".
 * Used by test/integration/recommendations.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    double stop_at = now() + (argc > 1 ? atof(argv[1]) : 1.5);
    FILE *log = fopen("/dev/null", "w");
    char line[256];
    unsigned long n = 0;
    if (log == NULL)
        return 1;
    while (now() < stop_at) {
        for (int i = 0; i < 1000; i++, n++) {
            snprintf(line, sizeof(line), "request id=%lu user=%s latency=%.3f ms status=%d",
                     n, "alice", (double)n / 7.0, 200 + (int)(n % 5));
            fprintf(log, "%s [%08lx] %g\n", line, n * 2654435761ul, (double)n * 0.25);
        }
    }
    fclose(log);
    printf("ok\n");
    return 0;
}
