/* Helpers shared by the config unit tests: capture what cgprof_log writes
 * (so a test can assert the exact lines), render a config field as text
 * (so tables can name expected values as strings), and run the loader on
 * a copy of the input that ends at a PROT_NONE page. */
#ifndef CGPROF_TEST_CONFIG_TEST_H
#define CGPROF_TEST_CONFIG_TEST_H

#include <check.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../../common/common.h"
#include "../../../config/config_int.h"
#include "helpers.h"

#define CFGTEST_LOG_MAX 65536

/* Sends cgprof_log output to a fresh in-memory file; returns its fd. */
static inline int cfgtest_capture(void)
{
    int fd = memfd_create("cgprof-log", 0);
    ck_assert_int_ge(fd, 0);
    cgprof_log_set_fd(fd);
    return fd;
}

/* Everything logged since cfgtest_capture (static storage). */
static inline const char *cfgtest_log(int fd)
{
    static char buf[CFGTEST_LOG_MAX];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static inline int cfgtest_count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Every logged line starts with "cgprof: " and ends with a newline. */
static inline void cfgtest_assert_prefixed(const char *log)
{
    const char *p = log;
    while (*p) {
        ck_assert_msg(strncmp(p, "cgprof: ", 8) == 0, "line without prefix: %s", p);
        const char *nl = strchr(p, '\n');
        ck_assert_msg(nl != NULL, "unterminated line: %s", p);
        p = nl + 1;
    }
}

/* Option i's field of cfg as text: true/false, decimal, or the string. */
static inline void cfgtest_render(const struct cgprof_config *cfg, int i,
                                  char *out, size_t n)
{
    const struct cgprof__config_spec *sp = cgprof__config_spec(i);
    const char *f = (const char *)cfg + sp->offset;
    switch (sp->kind) {
    case CGPROF__KIND_BOOL: {
        bool b;
        memcpy(&b, f, sizeof(b));
        snprintf(out, n, "%s", b ? "true" : "false");
        break;
    }
    case CGPROF__KIND_UINT:
    case CGPROF__KIND_SINK: {
        unsigned u;
        memcpy(&u, f, sizeof(u));
        snprintf(out, n, "%u", u);
        break;
    }
    case CGPROF__KIND_ENGINE:
    case CGPROF__KIND_LOG_LEVEL: {
        int v;
        memcpy(&v, f, sizeof(v));
        snprintf(out, n, "%d", v);
        break;
    }
    default:
        snprintf(out, n, "%s", f);
        break;
    }
}

/* Expected value of one option after loading. */
struct cfgtest_check {
    int opt;            /* CGPROF__OPT_*; checks end at val == NULL */
    const char *val;    /* as cfgtest_render prints it */
};

static inline void cfgtest_assert_checks(const struct cgprof_config *cfg,
                                         const struct cfgtest_check *c, size_t n,
                                         const char *name)
{
    for (size_t k = 0; k < n && c[k].val; k++) {
        char got[CGPROF_URL_MAX + 1];
        cfgtest_render(cfg, c[k].opt, got, sizeof(got));
        ck_assert_msg(strcmp(got, c[k].val) == 0, "%s: %s is '%s', expected '%s'",
                      name, cgprof_config_options()[c[k].opt].key, got, c[k].val);
    }
}

/* Loads options from a copy ending at a guard page (NUL included), so a
 * parser reading past the terminator crashes the test. */
static inline int cfgtest_load_guarded(struct cgprof_config *cfg, const char *options)
{
    const char *copy = NULL;
    if (options) {
        copy = cgprof_test_guarded_copy(options, strlen(options) + 1);
        ck_assert_ptr_nonnull(copy);
    }
    return cgprof_config_load(cfg, copy, cgprof_test_getenv);
}

#endif
