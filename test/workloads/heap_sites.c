/* Heap summary workload with known answers.
 *   heap_sites [HOLD_MS]   keeps 60 MiB live from leak_a() (16 KiB blocks)
 *                          and 20 MiB from leak_b() (64 KiB blocks), after
 *                          1 GiB of short-lived allocations in churn()
 *                          (16 B to 128 KiB, at most 16 alive at a time, all
 *                          freed), then holds everything HOLD_MS (1500) ms.
 *   heap_sites grow MS     leaks 1 MiB every 50 ms in grow() for MS ms: the
 *                          used-space series must rise.
 * Prints a checksum so a run under the preload can be compared. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MIB (1024u * 1024u)

static void *kept_a[60 * MIB / (16 * 1024)];
static void *kept_b[20 * MIB / (64 * 1024)];
static unsigned long checksum;

static void nap_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

__attribute__((noinline)) void leak_a(void)
{
    for (size_t i = 0; i < sizeof(kept_a) / sizeof(kept_a[0]); i++) {
        kept_a[i] = malloc(16 * 1024);
        memset(kept_a[i], (int)i, 16 * 1024);
    }
}

__attribute__((noinline)) void leak_b(void)
{
    for (size_t i = 0; i < sizeof(kept_b) / sizeof(kept_b[0]); i++) {
        kept_b[i] = malloc(64 * 1024);
        memset(kept_b[i], (int)i, 64 * 1024);
    }
}

__attribute__((noinline)) void churn(void)
{
    void *ring[16] = { 0 };
    unsigned long long total = 0, x = 88172645463325252ull;
    for (unsigned i = 0; total < 1024ull * MIB; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t n = 16 + (size_t)(x % (128 * 1024 - 16));
        free(ring[i % 16]);
        char *p = malloc(n);
        p[0] = (char)i;
        p[n - 1] = (char)(i >> 8);
        checksum += (unsigned char)p[0];
        ring[i % 16] = p;
        total += n;
    }
    for (unsigned i = 0; i < 16; i++)
        free(ring[i]);
}

__attribute__((noinline)) void grow(long ms)
{
    for (long t = 0; t < ms; t += 50) {
        char *p = malloc(MIB);
        memset(p, 7, MIB);
        checksum += (unsigned char)p[MIB / 2];
        nap_ms(50);
        /* leaked on purpose */
    }
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "grow") == 0) {
        grow(atol(argv[2]));
        printf("grow checksum %lu\n", checksum);
        return 0;
    }
    long hold = argc > 1 ? atol(argv[1]) : 1500;
    leak_a();
    leak_b();
    churn();
    nap_ms(hold);
    for (size_t i = 0; i < sizeof(kept_a) / sizeof(kept_a[0]); i++)
        checksum += ((unsigned char *)kept_a[i])[100];
    for (size_t i = 0; i < sizeof(kept_b) / sizeof(kept_b[0]); i++)
        checksum += ((unsigned char *)kept_b[i])[100];
    printf("heap_sites checksum %lu\n", checksum);
    return 0;
}
