/* rec_clean: the clean workload for the recommendation rules. Pure
 * arithmetic in user code for S seconds: no locks, allocation, copies,
 * syscalls, regexes, exceptions, formatting or compression on the hot
 * path, so no rule may fire. Usage: rec_clean [seconds=1.5]. Prints "ok".
 * Used by test/integration/recommendations.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) static uint64_t mix(uint64_t x)
{
    for (int i = 0; i < 100000; i++)
        x = (x ^ (x >> 31)) * 0x9e3779b97f4a7c15ull + (uint64_t)i;
    return x;
}

int main(int argc, char **argv)
{
    double stop_at = now() + (argc > 1 ? atof(argv[1]) : 1.5);
    uint64_t x = 1;
    while (now() < stop_at)
        x = mix(x);
    printf("ok %llu\n", (unsigned long long)(x & 1));
    return 0;
}
