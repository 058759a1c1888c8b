/* rec_malloc: triggers the malloc-churn recommendation. Allocates and
 * frees blocks of varying sizes in a loop for S seconds, keeping a small
 * ring of live blocks so both the thread cache and the arena paths run.
 * Usage: rec_malloc [seconds=1.5]. Prints "ok".
 * Used by test/integration/recommendations.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define RING 256

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    static char *ring[RING];
    double stop_at = now() + (argc > 1 ? atof(argv[1]) : 1.5);
    uint64_t x = 88172645463325252ull, sum = 0;
    while (now() < stop_at) {
        for (int i = 0; i < 10000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            size_t slot = x % RING, size = 16 + (x >> 20) % 8192;
            free(ring[slot]);
            ring[slot] = malloc(size);
            if (ring[slot] == NULL)
                return 1;
            ring[slot][0] = (char)x;
            sum += (unsigned char)ring[slot][0];
        }
    }
    for (int i = 0; i < RING; i++)
        free(ring[i]);
    printf("ok %llu\n", (unsigned long long)(sum & 1));
    return 0;
}
