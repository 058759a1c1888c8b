/* Malloc-heavy microbenchmark for `make bench` (heap summary overhead):
 *   mallocbench [MILLIONS_PER_THREAD] [THREADS]
 * Each thread replaces a random member of a 4096-object working set
 * MILLIONS_PER_THREAD million times (malloc of 16 B to 4 KiB, mostly
 * small, touching the block, free of the old one), so nearly all its time
 * is in malloc and free. Prints a checksum and the workers' own CPU time
 * per replacement (which leaves out the profiler's threads). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define SET 4096

static long iters = 20;
static double worker_cpu_ns[64];

static void *worker(void *arg)
{
    unsigned long long x = 0x9e3779b97f4a7c15ull * (unsigned long long)((long)arg + 1);
    unsigned long sum = 0;
    char **set = calloc(SET, sizeof(*set));
    for (long i = 0; i < iters * 1000000L; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        unsigned slot = (unsigned)(x % SET);
        /* 16..256 B most of the time, up to 4 KiB one time in 8 */
        size_t n = (x >> 20) % 8 ? 16 + (size_t)((x >> 32) % 241) : 16 + (size_t)((x >> 32) % 4081);
        free(set[slot]);
        char *p = malloc(n);
        p[0] = (char)i;
        p[n - 1] = (char)x;
        sum += (unsigned char)p[0];
        set[slot] = p;
    }
    for (unsigned i = 0; i < SET; i++)
        free(set[i]);
    free(set);
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    worker_cpu_ns[(long)arg] = (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
    return (void *)sum;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        iters = atol(argv[1]);
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    if (threads < 1 || threads > 64)
        threads = 1;
    pthread_t t[64];
    unsigned long total = 0;
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, worker, (void *)(long)i);
    for (int i = 0; i < threads; i++) {
        void *r;
        pthread_join(t[i], &r);
        total += (unsigned long)r;
    }
    double ns = 0;
    for (int i = 0; i < threads; i++)
        ns += worker_cpu_ns[i];
    printf("mallocbench checksum %lu\n", total);
    printf("mallocbench worker-ns-per-op %.2f\n", ns / ((double)threads * (double)iters * 1e6));
    return 0;
}
