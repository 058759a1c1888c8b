/* rec_memcpy: triggers the memcpy-heavy recommendation. Copies 4 MiB
 * buffers back and forth with memcpy and memmove for S seconds.
 * Usage: rec_memcpy [seconds=1.5]. Prints "ok".
 * Used by test/integration/recommendations.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SIZE (4u << 20)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    double stop_at = now() + (argc > 1 ? atof(argv[1]) : 1.5);
    char *a = malloc(SIZE), *b = malloc(SIZE);
    unsigned long sum = 0;
    if (a == NULL || b == NULL)
        return 1;
    memset(a, 1, SIZE);
    memset(b, 2, SIZE);
    while (now() < stop_at) {
        memcpy(b, a, SIZE);
        memmove(a + 1, a, SIZE - 1);
        sum += (unsigned char)b[SIZE / 2];
    }
    printf("ok %lu\n", sum & 1);
    free(a);
    free(b);
    return 0;
}
