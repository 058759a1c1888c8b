/* demo: the program `make demo` profiles. Two worker threads each spend
 * about 1.5 s of CPU in rounds of real work with a known split, measured on
 * their own CPU clock so the split holds on any machine:
 *   parse_input    20 %  (recursive-descent parse of nested lists)
 *   compress_block 50 %  (LZ77-style; find_match is about 2/3 of it)
 *   checksum       30 %  (Adler-32 and FNV-1a over the output)
 * A third thread waits on a condition variable (latency view, not CPU).
 * Usage: demo [seconds-of-cpu-per-worker], default 1.5. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOINLINE __attribute__((noinline, noclone))
#define BLOCK 4096

static double cpu_budget_s = 1.5;
static volatile uint64_t sink; /* keeps results alive */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static int workers_left;

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- parse_input: "[1,[2,3],[[4]],5]" → sum of the numbers ------------- */

static NOINLINE long parse_value(const char **p, int depth)
{
    long sum = 0;
    if (**p == '[') {
        (*p)++;
        while (**p && **p != ']') {
            sum += parse_value(p, depth + 1);
            if (**p == ',')
                (*p)++;
        }
        if (**p == ']')
            (*p)++;
        return sum * (depth + 1);
    }
    while (**p >= '0' && **p <= '9')
        sum = sum * 10 + (*(*p)++ - '0');
    return sum;
}

static NOINLINE long parse_input(const char *text, double seconds)
{
    double until = thread_cpu_s() + seconds;
    long total = 0;
    do {
        for (int i = 0; i < 20; i++) {
            const char *p = text;
            total += parse_value(&p, 0);
        }
    } while (thread_cpu_s() < until);
    return total;
}

/* ---- compress_block: greedy LZ77 over a 4 KiB block -------------------- */

static NOINLINE size_t find_match(const unsigned char *buf, size_t pos, size_t len,
                                  size_t *dist)
{
    size_t best = 0;
    size_t start = pos > 255 ? pos - 255 : 0;
    for (size_t cand = start; cand < pos; cand++) {
        size_t n = 0;
        while (pos + n < len && n < 255 && buf[cand + n] == buf[pos + n])
            n++;
        if (n > best) {
            best = n;
            *dist = pos - cand;
        }
    }
    return best;
}

static NOINLINE size_t compress_once(const unsigned char *in, size_t len, unsigned char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t dist = 0, n = find_match(in, i, len, &dist);
        if (n >= 4) {
            out[o++] = 0xff;
            out[o++] = (unsigned char)dist;
            out[o++] = (unsigned char)n;
            i += n;
        } else {
            out[o++] = in[i++];
        }
    }
    return o;
}

static NOINLINE size_t compress_block(const unsigned char *in, unsigned char *out,
                                      double seconds)
{
    double until = thread_cpu_s() + seconds;
    size_t n = 0;
    do {
        n = compress_once(in, BLOCK, out);
    } while (thread_cpu_s() < until);
    return n;
}

/* ---- checksum: Adler-32 and FNV-1a ------------------------------------- */

static NOINLINE uint64_t checksum(const unsigned char *buf, size_t len, double seconds)
{
    double until = thread_cpu_s() + seconds;
    uint64_t h = 0;
    do {
        for (int rep = 0; rep < 8; rep++) {
            uint32_t a = 1, b = 0;
            uint64_t f = 1469598103934665603ull;
            for (size_t i = 0; i < len; i++) {
                a = (a + buf[i]) % 65521u;
                b = (b + a) % 65521u;
                f = (f ^ buf[i]) * 1099511628211ull;
            }
            h ^= ((uint64_t)b << 16 | a) ^ f;
        }
    } while (thread_cpu_s() < until);
    return h;
}

/* ---- threads ----------------------------------------------------------- */

/* Fills text with one nested list "[[a,[b,[c]]],...,0]" and block with
 * text-like bytes that repeat often, so the compressor finds matches. */
static void make_input(char *text, size_t n, unsigned char *block, unsigned seed)
{
    size_t o = 0;
    text[o++] = '[';
    while (o + 32 < n) {
        o += (size_t)snprintf(text + o, n - o, "[%u,[%u,[%u]]],", seed % 97,
                              seed % 89, seed % 83);
        seed = seed * 1103515245u + 12345u;
    }
    snprintf(text + o, n - o, "0]");
    for (size_t i = 0; i < BLOCK; i++) {
        seed = seed * 1103515245u + 12345u;
        block[i] = (unsigned char)("the quick brown fox "[(seed >> 16) % 20]);
    }
}

static void *worker(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    static const double round_s = 0.010; /* 10 ms of CPU per round */
    char *text = malloc(8192);
    unsigned char *block = malloc(BLOCK), *out = malloc(3 * BLOCK);
    if (!text || !block || !out) {
        fprintf(stderr, "demo: out of memory\n");
        exit(1);
    }
    make_input(text, 8192, block, seed);

    double start = thread_cpu_s();
    uint64_t acc = 0;
    while (thread_cpu_s() - start < cpu_budget_s) {
        acc += (uint64_t)parse_input(text, 0.20 * round_s);
        size_t n = compress_block(block, out, 0.50 * round_s);
        acc += checksum(out, n, 0.30 * round_s);
    }
    sink = acc;
    free(text);
    free(block);
    free(out);

    pthread_mutex_lock(&lock);
    workers_left--;
    pthread_cond_signal(&done_cond);
    pthread_mutex_unlock(&lock);
    return NULL;
}

/* Waits, without using CPU, until the workers are done. */
static void *wait_for_workers(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    while (workers_left > 0)
        pthread_cond_wait(&done_cond, &lock);
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(int argc, char **argv)
{
    enum { NWORKERS = 2 };
    pthread_t workers[NWORKERS], waiter;
    if (argc > 1) {
        cpu_budget_s = atof(argv[1]);
        if (cpu_budget_s <= 0 || cpu_budget_s > 3600) {
            fprintf(stderr, "usage: demo [seconds-of-cpu-per-worker]\n");
            return 2;
        }
    }
    workers_left = NWORKERS;
    if (pthread_create(&waiter, NULL, wait_for_workers, NULL) != 0)
        return 1;
    for (int i = 0; i < NWORKERS; i++)
        if (pthread_create(&workers[i], NULL, worker, (void *)(uintptr_t)(i + 1)) != 0)
            return 1;
    for (int i = 0; i < NWORKERS; i++)
        pthread_join(workers[i], NULL);
    pthread_join(waiter, NULL);
    printf("demo: %d workers x %.1f s CPU; expected split: compress_block ~50%% "
           "(find_match most of it), checksum ~30%%, parse_input ~20%%\n",
           NWORKERS, cpu_budget_s);
    return 0;
}
