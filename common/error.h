/* Error codes shared by every module: 0 is success, failures are negative.
 * One X-macro list generates the enum and cgprof_strerror() (common/error.c),
 * the way libuv's UV_ERRNO_MAP does. System errors are returned as -errno. */
#ifndef CGPROF_ERROR_H
#define CGPROF_ERROR_H

#define CGPROF_ERRNO_MAP(X)                                                  \
    X(INVAL,    -10001, "invalid argument")                                  \
    X(NOMEM,    -10002, "out of memory")                                     \
    X(TOOBIG,   -10003, "value exceeds its bound")                           \
    X(PARSE,    -10004, "malformed input")                                   \
    X(AGAIN,    -10005, "need more input")                                   \
    X(NOTFOUND, -10006, "not found")                                         \
    X(IO,       -10007, "input/output error")                                \
    X(TLS,      -10008, "TLS error")                                         \
    X(HTTP,     -10009, "HTTP error")                                        \
    X(AUTH,     -10010, "no usable credentials")                             \
    X(DISABLED, -10011, "profiling is disabled")                             \
    X(BUSY,     -10012, "resource busy")                                     \
    X(TIMEOUT,  -10013, "timed out")                                         \
    X(ZLIB,     -10014, "compression error")                                 \
    X(JSON,     -10015, "JSON error")

enum cgprof_error {
#define CGPROF_ERR_ENUM(name, code, text) CGPROF_E##name = (code),
    CGPROF_ERRNO_MAP(CGPROF_ERR_ENUM)
#undef CGPROF_ERR_ENUM
};

/* Text for a cgprof error code or a negated errno. Never NULL. */
const char *cgprof_strerror(int err);

#endif
