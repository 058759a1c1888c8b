/* benchsplit: cpusplit with a fixed amount of work instead of a fixed
 * wall time, for scripts/bench. N threads each run UNITS equal-cost units
 * of work, picked at random with odds 60 / 30 / 10 among burn_a / burn_b /
 * burn_c (the same functions as cpusplit), so a profiler's overhead shows
 * up as more CPU and wall time, and its reported split can be checked
 * against the units actually run.
 * Usage: benchsplit [units_per_thread=200000] [threads=2].
 * Prints "units_a A", "units_b B", "units_c C" (units run, all threads),
 * "cpu_seconds X" (CPU time of the workload's own threads from their
 * thread CPU clocks, so an agent thread's time is not included) and "ok". */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NOINLINE __attribute__((noinline, noclone))
#define UNIT_ITERS 4000 /* one unit of work: a few microseconds */

static volatile uint64_t sink;
static long units_per_thread = 200000;
static _Atomic uint64_t units[3], threads_cpu_ns;

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Same instruction count per iteration in all three; the constants differ
 * so the compiler cannot fold them into one function. */
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
    uint64_t x = (uintptr_t)arg + 1, n[3] = {0, 0, 0};
    unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 17u;
    for (long u = 0; u < units_per_thread; u++) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = (seed >> 16) % 10;   /* 0..9: 6 a, 3 b, 1 c */
        if (r < 6) {
            x = burn_a(x);
            n[0]++;
        } else if (r < 9) {
            x = burn_b(x);
            n[1]++;
        } else {
            x = burn_c(x);
            n[2]++;
        }
    }
    for (int i = 0; i < 3; i++)
        atomic_fetch_add(&units[i], n[i]);
    atomic_fetch_add(&threads_cpu_ns, thread_cpu_ns());
    return NULL;
}

int main(int argc, char **argv)
{
    units_per_thread = argc > 1 ? atol(argv[1]) : 200000;
    int nthreads = argc > 2 ? atoi(argv[2]) : 2;
    if (units_per_thread < 1 || nthreads < 1 || nthreads > 256) {
        fprintf(stderr, "usage: benchsplit [units_per_thread>0] [threads 1..256]\n");
        return 2;
    }
    pthread_t tids[256];
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&tids[i], NULL, worker, (void *)(uintptr_t)i) != 0) {
            fprintf(stderr, "benchsplit: pthread_create failed\n");
            return 1;
        }
    for (int i = 0; i < nthreads; i++)
        pthread_join(tids[i], NULL);
    printf("units_a %llu\nunits_b %llu\nunits_c %llu\n",
           (unsigned long long)atomic_load(&units[0]),
           (unsigned long long)atomic_load(&units[1]),
           (unsigned long long)atomic_load(&units[2]));
    printf("cpu_seconds %.6f\n", (atomic_load(&threads_cpu_ns) + thread_cpu_ns()) / 1e9);
    printf("ok\n");
    return 0;
}
