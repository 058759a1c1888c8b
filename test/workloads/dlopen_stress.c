/* dlopen_stress: threads that dlopen/dlsym/dlclose real system libraries
 * and threads that malloc/free in tight loops, for S seconds, so profiling
 * signals land inside the loader lock, dlopen's relocation work and malloc.
 * Usage: dlopen_stress [seconds=5] [threads=4]. Half the threads (at least
 * one) cycle libraries, the rest allocate. Prints "ok" when every dlopen
 * and every allocation check succeeded, else a reason, exit 1.
 * Used by test/integration/stress_dlopen.sh. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOINLINE __attribute__((noinline, noclone))

/* Libraries present on every Debian system (dpkg itself needs the last
 * three); each with one function we call to prove the mapping works. */
static const struct lib {
    const char *name, *sym;
} libs[] = {
    {"libm.so.6", "cos"},
    {"libz.so.1", "zlibVersion"},
    {"liblzma.so.5", "lzma_version_string"},
    {"libbz2.so.1.0", "BZ2_bzlibVersion"},
};
#define NLIBS (sizeof libs / sizeof libs[0])

static double stop_at;
static _Atomic unsigned long dl_cycles, allocs, failures;
static char first_error[256];
static atomic_flag error_taken = ATOMIC_FLAG_INIT;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(const char *what, const char *detail)
{
    atomic_fetch_add(&failures, 1);
    if (!atomic_flag_test_and_set(&error_taken))
        snprintf(first_error, sizeof first_error, "%s: %s", what,
                 detail ? detail : "?");
}

NOINLINE static void dl_cycle(const struct lib *l)
{
    void *h = dlopen(l->name, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fail(l->name, dlerror());
        return;
    }
    void *f = dlsym(h, l->sym);
    if (!f) {
        fail(l->sym, dlerror());
    } else if (l->sym[0] == 'c') {
        double (*fn)(double);
        memcpy(&fn, &f, sizeof fn); /* POSIX: dlsym results are callable */
        if (fn(0.0) != 1.0)
            fail("cos(0)", "not 1");
    } else {
        const char *(*fn)(void);
        memcpy(&fn, &f, sizeof fn);
        const char *v = fn();
        if (!v || !v[0])
            fail(l->sym, "returned an empty version");
    }
    if (dlclose(h) != 0)
        fail("dlclose", dlerror());
}

NOINLINE static void malloc_burst(unsigned *seed)
{
    void *p[64];
    size_t n[64];
    for (int i = 0; i < 64; i++) {
        *seed = *seed * 1103515245u + 12345u;
        n[i] = 1 + (*seed >> 8) % 4096;
        p[i] = malloc(n[i]);
        if (!p[i]) {
            fail("malloc", "NULL");
            return;
        }
        memset(p[i], i, n[i]);
    }
    for (int i = 0; i < 64; i++) {
        const unsigned char *b = p[i];
        if (b[0] != (unsigned char)i || b[n[i] - 1] != (unsigned char)i)
            fail("malloc", "block contents changed");
        free(p[i]);
    }
    atomic_fetch_add(&allocs, 64);
}

static void *dl_thread(void *arg)
{
    unsigned i = (unsigned)(uintptr_t)arg;
    unsigned seed = i + 1;
    while (now() < stop_at) {
        dl_cycle(&libs[i++ % NLIBS]);
        malloc_burst(&seed);
        atomic_fetch_add(&dl_cycles, 1);
    }
    return NULL;
}

static void *malloc_thread(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg * 31u + 7u;
    while (now() < stop_at)
        for (int k = 0; k < 100; k++)
            malloc_burst(&seed);
    return NULL;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 5.0;
    int nthreads = argc > 2 ? atoi(argv[2]) : 4;
    if (seconds <= 0 || nthreads < 1 || nthreads > 64) {
        fprintf(stderr, "usage: dlopen_stress [seconds>0] [threads 1..64]\n");
        return 2;
    }
    pthread_t tids[64];
    int ndl = nthreads / 2 > 0 ? nthreads / 2 : 1;
    stop_at = now() + seconds;
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&tids[i], NULL, i < ndl ? dl_thread : malloc_thread,
                           (void *)(uintptr_t)i) != 0) {
            fprintf(stderr, "dlopen_stress: pthread_create failed\n");
            return 1;
        }
    for (int i = 0; i < nthreads; i++)
        pthread_join(tids[i], NULL);
    fprintf(stderr, "dlopen_stress: %lu dlopen cycles, %lu allocations\n",
            atomic_load(&dl_cycles), atomic_load(&allocs));
    if (atomic_load(&failures) != 0) {
        printf("FAILED: %lu failures, first: %s\n", atomic_load(&failures),
               first_error);
        return 1;
    }
    if (atomic_load(&dl_cycles) == 0) {
        printf("FAILED: no dlopen cycle completed\n");
        return 1;
    }
    printf("ok\n");
    return 0;
}
