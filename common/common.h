/* common/: logging, error codes, allocation wrappers and bounded buffers.
 * Self-contained (libc only) so that every other module may depend on it. */
#ifndef CGPROF_COMMON_H
#define CGPROF_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define CGPROF_EXPORT __attribute__((visibility("default")))
#define CGPROF_UNUSED(x) ((void)(x))
#define CGPROF_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Test seam: file-local in the product, visible to unit tests. */
#ifdef CGPROF_UNIT_TEST
#define CGPROF_STATIC
#else
#define CGPROF_STATIC static
#endif

/* Compiled out unless CGPROF_DEBUG; never aborts the host in release. */
#ifdef CGPROF_DEBUG
#include <stdlib.h>
#define CGPROF_DEBUG_ASSERT(c) do { if (!(c)) abort(); } while (0)
#else
#define CGPROF_DEBUG_ASSERT(c) do { } while (0)
#endif

/* ---- logging (common/log.c) ------------------------------------------- */

enum cgprof_log_level {
    CGPROF_LOG_OFF = 0,
    CGPROF_LOG_ERROR,
    CGPROF_LOG_WARN,
    CGPROF_LOG_INFO,
    CGPROF_LOG_DEBUG
};

/* Sets the level below which messages are dropped before formatting. */
void cgprof_log_set_level(enum cgprof_log_level level);
enum cgprof_log_level cgprof_log_get_level(void);
/* Parses "off|error|warn|info|debug"; returns -1 when unknown. */
int cgprof_log_level_parse(const char *s);

/* Writes one line "cgprof: <text>\n" to stderr with a single write(2).
 * Newlines inside the text become spaces. errno is preserved. At most
 * CGPROF_LOG_BURST lines per second get through; the rest are counted and
 * summarised in the next line that passes. Thread-safe, not signal-safe. */
void cgprof_log(enum cgprof_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cgprof_vlog(enum cgprof_log_level level, const char *fmt, va_list ap);

#define CGPROF_LOG_BURST 20

/* Redirects log output (tests); fd < 0 restores stderr. */
void cgprof_log_set_fd(int fd);

#define cgprof_error(...) cgprof_log(CGPROF_LOG_ERROR, __VA_ARGS__)
#define cgprof_warn(...)  cgprof_log(CGPROF_LOG_WARN, __VA_ARGS__)
#define cgprof_info(...)  cgprof_log(CGPROF_LOG_INFO, __VA_ARGS__)
#define cgprof_debug(...) cgprof_log(CGPROF_LOG_DEBUG, __VA_ARGS__)

/* ---- allocation (common/alloc.c) --------------------------------------- */

/* All project allocations go through these. In unit-test builds
 * cgprof_alloc_fail_after(n) makes the n-th following allocation fail. */
void *cgprof_malloc(size_t n);
void *cgprof_calloc(size_t count, size_t n);
void *cgprof_realloc(void *p, size_t n);
char *cgprof_strdup(const char *s);
char *cgprof_strndup(const char *s, size_t n);
void cgprof_free(void *p);
void cgprof_alloc_fail_after(long n);

/* ---- bounded growable buffer (common/buf.c) ----------------------------- */

struct cgprof_buf {
    char *data;     /* NUL-terminated while len < cap */
    size_t len;
    size_t cap;
    size_t max;     /* hard bound: appends past it fail with CGPROF_ETOOBIG */
};

void cgprof_buf_init(struct cgprof_buf *b, size_t max);
void cgprof_buf_cleanup(struct cgprof_buf *b);
void cgprof_buf_reset(struct cgprof_buf *b);
int cgprof_buf_append(struct cgprof_buf *b, const void *p, size_t n);
int cgprof_buf_appends(struct cgprof_buf *b, const char *s);
int cgprof_buf_printf(struct cgprof_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- small utilities (common/util.c) ------------------------------------ */

/* Monotonic and real-time clocks in nanoseconds / milliseconds. */
uint64_t cgprof_now_ns(void);
uint64_t cgprof_epoch_ms(void);
/* CPU time of the whole process / the calling thread, in nanoseconds. */
uint64_t cgprof_process_cpu_ns(void);
uint64_t cgprof_thread_cpu_ns(void);
/* xorshift-based PRNG seeded per process; not for cryptography. */
uint64_t cgprof_random_u64(void);
/* Writes a random RFC 4122 version-4 UUID (37 bytes incl. NUL). */
void cgprof_uuid4(char out[37]);
/* Name of the running program (basename of /proc/self/exe or argv[0]). */
const char *cgprof_program_name(void);
/* Value of a hexadecimal digit (either case), or -1. */
int cgprof_hexval(int c);
/* mkdir -p with mode; returns 0 or -errno. */
int cgprof_mkdir_p(const char *path, unsigned mode);
/* Writes all bytes to path atomically (temp file in the same directory,
 * fsync-free rename). Returns 0 or -errno. */
int cgprof_write_file_atomic(const char *path, const void *data, size_t len);
/* Reads a whole file (at most max bytes) into a NUL-terminated heap buffer. */
int cgprof_read_file(const char *path, size_t max, char **out, size_t *outlen);

#endif
