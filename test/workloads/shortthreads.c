/* shortthreads: creates many short-lived pthreads, a few at a time, each
 * burning about 2 ms of its own CPU time in burn_short(). A profiler that
 * arms timers late, or not at all for new threads, loses most samples here.
 * Usage: shortthreads [threads=1000] [concurrent=4] [burn_us=2000].
 * Prints "cpu_seconds X" (CPU time of the workload's own threads, read from
 * their thread CPU clocks, so an agent thread's time is not included),
 * "user_seconds U" (the user-mode part of X), "rusage_seconds Y"
 * (getrusage, the whole process) and "ok".
 * Used by test/integration/shortthreads.sh. */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#define NOINLINE __attribute__((noinline, noclone))

static volatile uint64_t sink;
static long burn_ns = 2000000;
static _Atomic uint64_t threads_cpu_ns, threads_user_us;
static _Atomic unsigned finished;

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Spins until this thread has used burn_ns of CPU time since it began.
 * The thread CPU clock is a real system call, so it is read only every
 * ~50 us of work: the time stays user time, as in real compute code. */
NOINLINE static void burn_short(void)
{
    uint64_t x = (uint64_t)(uintptr_t)&x;
    uint64_t until = thread_cpu_ns() + (uint64_t)burn_ns;
    do {
        for (int i = 0; i < 40000; i++)
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        sink = x;
    } while (thread_cpu_ns() < until);
}

static uint64_t thread_user_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec;
}

static void *thread_main(void *arg)
{
    (void)arg;
    burn_short();
    /* Everything this thread ran so far, creation included. */
    atomic_fetch_add(&threads_cpu_ns, thread_cpu_ns());
    atomic_fetch_add(&threads_user_us, thread_user_us());
    atomic_fetch_add(&finished, 1);
    return NULL;
}

int main(int argc, char **argv)
{
    int total = argc > 1 ? atoi(argv[1]) : 1000;
    int batch = argc > 2 ? atoi(argv[2]) : 4;
    long us = argc > 3 ? atol(argv[3]) : 2000;
    if (total < 1 || batch < 1 || batch > 64 || us < 1) {
        fprintf(stderr, "usage: shortthreads [threads] [concurrent 1..64] [burn_us]\n");
        return 2;
    }
    burn_ns = us * 1000;
    pthread_t tids[64];
    for (int done = 0; done < total;) {
        int n = total - done < batch ? total - done : batch;
        for (int i = 0; i < n; i++)
            if (pthread_create(&tids[i], NULL, thread_main, NULL) != 0) {
                fprintf(stderr, "shortthreads: pthread_create failed\n");
                return 1;
            }
        for (int i = 0; i < n; i++)
            pthread_join(tids[i], NULL);
        done += n;
    }
    if (atomic_load(&finished) != (unsigned)total) {
        fprintf(stderr, "shortthreads: %u of %d threads finished\n",
                atomic_load(&finished), total);
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rus = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
                 (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    double own = (atomic_load(&threads_cpu_ns) + thread_cpu_ns()) / 1e9;
    double own_user = (atomic_load(&threads_user_us) + thread_user_us()) / 1e6;
    printf("cpu_seconds %.6f\n", own);
    printf("user_seconds %.6f\n", own_user);
    printf("rusage_seconds %.6f\n", rus);
    printf("ok\n");
    return 0;
}
