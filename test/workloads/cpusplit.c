/* cpusplit: N threads spend 60 / 30 / 10 % of their CPU time in burn_a /
 * burn_b / burn_c for S seconds of wall time. The work comes in small
 * equal-cost units, picked at random with those odds, so any sampler
 * (timer- or tick-driven) sees the split without aliasing with a period.
 * Usage: cpusplit [seconds=5] [threads=2]. Prints "ok" and exits 0.
 * Used by test/integration/cpusplit.sh. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NOINLINE __attribute__((noinline, noclone))
#define UNIT_ITERS 4000 /* one unit of work: a few microseconds */

static volatile uint64_t sink;
static double stop_at;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The three functions run the same number of equally expensive
 * instructions per iteration; the constants differ so the compiler cannot
 * fold them into one function. */
NOINLINE static uint64_t burn_a(uint64_t x)
{
    for (int i = 0; i < UNIT_ITERS; i++)
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    sink = x;
    return x;
}

NOINLINE static uint64_t burn_b(uint64_t x)
{
    for (int i = 0; i < UNIT_ITERS; i++)
        x = x * 2862933555777941757ULL + 3037000493ULL;
    sink = x;
    return x;
}

NOINLINE static uint64_t burn_c(uint64_t x)
{
    for (int i = 0; i < UNIT_ITERS; i++)
        x = x * 3935559000370003845ULL + 2691343689449507681ULL;
    sink = x;
    return x;
}

NOINLINE static void *worker(void *arg)
{
    uint64_t x = (uintptr_t)arg + 1;
    unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 17u;
    while (now() < stop_at) {
        for (int k = 0; k < 100; k++) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = (seed >> 16) % 10;   /* 0..9: 6 a, 3 b, 1 c */
            if (r < 6)
                x = burn_a(x);
            else if (r < 9)
                x = burn_b(x);
            else
                x = burn_c(x);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 5.0;
    int nthreads = argc > 2 ? atoi(argv[2]) : 2;
    if (seconds <= 0 || nthreads < 1 || nthreads > 256) {
        fprintf(stderr, "usage: cpusplit [seconds>0] [threads 1..256]\n");
        return 2;
    }
    pthread_t tids[256];
    stop_at = now() + seconds;
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&tids[i], NULL, worker, (void *)(uintptr_t)i) != 0) {
            fprintf(stderr, "cpusplit: pthread_create failed\n");
            return 1;
        }
    for (int i = 0; i < nthreads; i++)
        pthread_join(tids[i], NULL);
    printf("ok\n");
    return 0;
}
