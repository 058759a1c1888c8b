/* Logging: one "cgprof: " line per message, written with a single write(2)
 * to stderr so lines from several threads never interleave. Levels are
 * checked before formatting; bursts are rate-limited per second. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static _Atomic int log_level = CGPROF_LOG_WARN;
static _Atomic int log_fd = -1;
static _Atomic long log_window;      /* current second */
static _Atomic int log_in_window;    /* lines written in it */
static _Atomic int log_suppressed;   /* lines dropped since the last one */

void cgprof_log_set_level(enum cgprof_log_level level)
{
    atomic_store(&log_level, (int)level);
}

enum cgprof_log_level cgprof_log_get_level(void)
{
    return (enum cgprof_log_level)atomic_load(&log_level);
}

int cgprof_log_level_parse(const char *s)
{
    static const char *const names[] = { "off", "error", "warn", "info", "debug" };
    for (size_t i = 0; i < CGPROF_ARRAY_SIZE(names); i++)
        if (strcasecmp(s, names[i]) == 0)
            return (int)i;
    return -1;
}

void cgprof_log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

/* Returns how many earlier lines were suppressed, or -1 to drop this one. */
static int rate_limit(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    long now = (long)ts.tv_sec;
    long window = atomic_load(&log_window);
    if (window != now && atomic_compare_exchange_strong(&log_window, &window, now))
        atomic_store(&log_in_window, 0);
    if (atomic_fetch_add(&log_in_window, 1) >= CGPROF_LOG_BURST) {
        atomic_fetch_add(&log_suppressed, 1);
        return -1;
    }
    return atomic_exchange(&log_suppressed, 0);
}

void cgprof_vlog(enum cgprof_log_level level, const char *fmt, va_list ap)
{
    if ((int)level > atomic_load(&log_level) || level == CGPROF_LOG_OFF)
        return;
    int saved = errno;
    int dropped = rate_limit();
    if (dropped < 0) {
        errno = saved;
        return;
    }
    char line[1024];
    size_t n = (size_t)snprintf(line, sizeof(line), "cgprof: ");
    if (dropped > 0)
        n += (size_t)snprintf(line + n, sizeof(line) - n,
                              "(%d lines suppressed) ", dropped);
    int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    if (m > 0)
        n += (size_t)m < sizeof(line) - n - 1 ? (size_t)m : sizeof(line) - n - 2;
    for (size_t i = 0; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[n++] = '\n';
    int fd = atomic_load(&log_fd);
    ssize_t w = write(fd >= 0 ? fd : STDERR_FILENO, line, n);
    (void)w;
    errno = saved;
}

void cgprof_log(enum cgprof_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cgprof_vlog(level, fmt, ap);
    va_end(ap);
}
