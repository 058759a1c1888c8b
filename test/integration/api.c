/* Code-mode use of include/cgprof.h: start with options, flush, stop,
 * invalid options, idempotent start. Built and run by api.sh. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cgprof.h"

static volatile double sink;

__attribute__((noinline)) static void api_burn(double seconds)
{
    struct timespec a, b;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    double x = 1;
    do {
        for (int i = 0; i < 100000; i++)
            x = x * 1.0000001 + 1e-9;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    } while ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9 < seconds);
    sink = x;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    char opts[1024];
    errno = 1234;
    int bad = cgprof_start("cpuSamplingHz:5000");
    if (bad >= 0 || errno != 1234) {
        fprintf(stderr, "invalid options: rc %d errno %d\n", bad, errno);
        return 1;
    }
    snprintf(opts, sizeof(opts), "outputDir:%s,cpuSamplingHz:1000", argv[1]);
    if (cgprof_start(opts) != 0 || cgprof_start(opts) != 0) {
        fprintf(stderr, "cgprof_start failed\n");
        return 1;
    }
    api_burn(0.3);
    if (cgprof_flush() != 0)
        return 1;
    api_burn(0.3);
    if (cgprof_stop() != 0 || cgprof_stop() == 0) {
        fprintf(stderr, "cgprof_stop: expected 0 then an error\n");
        return 1;
    }
    printf("version %s\n", cgprof_version());
    return 0;
}
