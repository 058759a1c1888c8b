/* bigtree: a workload with a very large call tree, for scripts/bench's
 * profile-size row. Each thread walks call paths DEPTH frames deep through
 * 16 distinct functions (node_0 .. node_f), the function at each level
 * chosen by 4 bits of a pseudo-random number, so there are 16^DEPTH
 * possible stacks and nearly every sample lands on a stack not seen
 * before. Every level does the same small amount of work, so samples fall
 * at every depth. It stops when the process has used CPU_SECONDS of CPU
 * time (all threads), so a profiler gets the same number of samples on a
 * busy machine as on an idle one.
 * Usage: bigtree [cpu_seconds=5] [threads=2] [depth=10]. Prints "ok". */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NOINLINE __attribute__((noinline, noclone))
#define LEVEL_ITERS 300 /* work per level: about a microsecond */

typedef uint64_t (*node_fn)(int depth, uint64_t bits, uint64_t x);

static volatile uint64_t sink;
static double stop_at; /* process CPU seconds */
static const node_fn nodes[16];

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One level: some work, then the next level chosen by the low 4 bits, then
 * a store, so the call is never a tail call (which would drop the frame).
 * The multiplier K differs per function so none are folded together. */
#define NODE(N, K)                                                          \
    NOINLINE static uint64_t node_##N(int depth, uint64_t bits, uint64_t x) \
    {                                                                       \
        for (int i = 0; i < LEVEL_ITERS; i++)                               \
            x = x * (K) + 1442695040888963407ULL;                           \
        if (depth > 0)                                                      \
            x ^= nodes[bits & 15](depth - 1, bits >> 4, x);                 \
        sink = x;                                                           \
        return x + (uint64_t)depth;                                         \
    }

NODE(0, 6364136223846793005ULL)
NODE(1, 2862933555777941757ULL)
NODE(2, 3935559000370003845ULL)
NODE(3, 3202034522624059733ULL)
NODE(4, 1181783497276652981ULL)
NODE(5, 4292484099903637661ULL)
NODE(6, 7664345821815920749ULL)
NODE(7, 2685821657736338717ULL)
NODE(8, 1865811235122147685ULL)
NODE(9, 6906969069069069069ULL)
NODE(a, 3512401965023503517ULL)
NODE(b, 5005009005007005001ULL)
NODE(c, 1103515245110351525ULL)
NODE(d, 2147483629214748365ULL)
NODE(e, 9007199254740993ULL)
NODE(f, 1000000000000000003ULL)

static const node_fn nodes[16] = {
    node_0, node_1, node_2, node_3, node_4, node_5, node_6, node_7,
    node_8, node_9, node_a, node_b, node_c, node_d, node_e, node_f,
};

static int depth = 10;

NOINLINE static void *worker(void *arg)
{
    uint64_t x = (uintptr_t)arg + 1, r = (uintptr_t)arg * 0x9E3779B97F4A7C15ULL + 1;
    while (cpu_now() < stop_at) {
        for (int k = 0; k < 20; k++) {
            r ^= r << 13; r ^= r >> 7; r ^= r << 17;   /* xorshift64 */
            x = nodes[r & 15](depth - 1, r >> 4, x);
        }
    }
    sink = x;
    return NULL;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 5.0;
    int nthreads = argc > 2 ? atoi(argv[2]) : 2;
    depth = argc > 3 ? atoi(argv[3]) : 10;
    if (seconds <= 0 || nthreads < 1 || nthreads > 256 || depth < 1 || depth > 15) {
        fprintf(stderr, "usage: bigtree [cpu_seconds>0] [threads 1..256] [depth 1..15]\n");
        return 2;
    }
    pthread_t tids[256];
    stop_at = cpu_now() + seconds;
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&tids[i], NULL, worker, (void *)(uintptr_t)i) != 0) {
            fprintf(stderr, "bigtree: pthread_create failed\n");
            return 1;
        }
    for (int i = 0; i < nthreads; i++)
        pthread_join(tids[i], NULL);
    printf("ok\n");
    return 0;
}
