/* Allocation wrappers: the one place the project calls malloc and friends,
 * so unit tests can fail allocations on purpose (cgprof_alloc_fail_after). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static _Atomic long fail_countdown = -1;

void cgprof_alloc_fail_after(long n)
{
    atomic_store(&fail_countdown, n);
}

static int should_fail(void)
{
    if (atomic_load_explicit(&fail_countdown, memory_order_relaxed) < 0)
        return 0;
    return atomic_fetch_sub(&fail_countdown, 1) == 0;
}

void *cgprof_malloc(size_t n)
{
    return should_fail() ? NULL : malloc(n ? n : 1);
}

void *cgprof_calloc(size_t count, size_t n)
{
    return should_fail() ? NULL : calloc(count ? count : 1, n ? n : 1);
}

void *cgprof_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : realloc(p, n ? n : 1);
}

char *cgprof_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = cgprof_malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

char *cgprof_strdup(const char *s)
{
    return cgprof_strndup(s, strlen(s));
}

void cgprof_free(void *p)
{
    free(p);
}
