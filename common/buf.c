/* Bounded growable buffer: every append is checked against a hard maximum
 * (curl's dynbuf), so encoders and readers cannot grow without limit. */
#include <stdio.h>
#include <string.h>

#include "common.h"

void cgprof_buf_init(struct cgprof_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void cgprof_buf_cleanup(struct cgprof_buf *b)
{
    cgprof_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void cgprof_buf_reset(struct cgprof_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static int reserve(struct cgprof_buf *b, size_t extra)
{
    if (extra > b->max || b->len + extra > b->max)
        return CGPROF_ETOOBIG;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = cgprof_realloc(b->data, cap);
    if (!p)
        return CGPROF_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int cgprof_buf_append(struct cgprof_buf *b, const void *p, size_t n)
{
    int rc = reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int cgprof_buf_appends(struct cgprof_buf *b, const char *s)
{
    return cgprof_buf_append(b, s, strlen(s));
}

int cgprof_buf_printf(struct cgprof_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return CGPROF_EINVAL;
    if ((size_t)n < sizeof(small))
        return cgprof_buf_append(b, small, (size_t)n);
    int rc = reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}
