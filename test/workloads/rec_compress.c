/* rec_compress: triggers the compression-level recommendation. Compresses
 * compressible text with zlib at level 9 (deflate_slow with the longest
 * match chains) for S seconds. Linked with the static libz so that
 * deflate_slow has a symbol (Debian's libz.so.1 exports only the API).
 * Usage: rec_compress [seconds=1.5]. Prints "ok".
 * Used by test/integration/recommendations.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#define SIZE (256u << 10)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    double stop_at = now() + (argc > 1 ? atof(argv[1]) : 1.5);
    unsigned char *in = malloc(SIZE), *out = malloc(compressBound(SIZE));
    unsigned long total = 0;
    unsigned x = 1;
    if (in == NULL || out == NULL)
        return 1;
    /* Text made of a few repeated words with random choices: it compresses
     * well and gives deflate long hash chains to search. */
    static const char *words[] = { "profile ", "sample ", "thread ", "stack ", "frame ",
                                   "count ", "weight ", "\n" };
    for (size_t i = 0; i < SIZE;) {
        x = x * 1103515245u + 12345u;
        const char *w = words[(x >> 16) % 8];
        for (; *w && i < SIZE; w++)
            in[i++] = (unsigned char)*w;
    }
    while (now() < stop_at) {
        uLongf len = compressBound(SIZE);
        if (compress2(out, &len, in, SIZE, 9) != Z_OK)
            return 1;
        total += len;
    }
    printf("ok %lu\n", total > 0 ? 1ul : 0ul);
    free(in);
    free(out);
    return 0;
}
