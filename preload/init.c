/* The constructor and destructor, and the public API of include/cgprof.h.
 * The constructor starts profiling when the library was preloaded (or
 * CGPROF_OPTIONS is set), reading the configuration without changing errno,
 * stdout or anything else the host can see; a bad configuration costs one
 * "cgprof:" line per problem and leaves the agent dormant. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../include/cgprof.h"
#include "../sampler/sampler.h"
#include "preload_int.h"

#define EXIT_FLUSH_MS 2000

static pthread_mutex_t api_lock = PTHREAD_MUTEX_INITIALIZER;

/* With profileChildren:false, exec'd children must not inherit us: drop
 * our entry from LD_PRELOAD (space- or colon-separated). The string is
 * rewritten in place, in the process's original environment block: a
 * program like bash takes its environment from main's envp (that very
 * block), not from environ, so setenv() would not reach its children. */
static void remove_self_from_ld_preload(void)
{
    extern char **environ;
    static const char key[] = "LD_PRELOAD=";
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, key, sizeof(key) - 1) != 0)
            continue;
        char *val = *e + sizeof(key) - 1, *out = val;
        const char *p = val;
        while (*p) {
            size_t len = strcspn(p, ": ");
            const char *base = memrchr(p, '/', len);
            base = base ? base + 1 : p;
            bool ours = (size_t)(p + len - base) >= 10 && strncmp(base, "libcgprof", 9) == 0;
            if (len > 0 && !ours) {
                if (out != val)
                    *out++ = ' ';
                memmove(out, p, len);
                out += len;
            }
            p += len;
            if (*p)
                p++;
        }
        *out = '\0';
    }
}

int cgprof__preload_start(const char *options)
{
    struct cgprof__agent *a = &cgprof__agent;
    if (cgprof__agent_running())
        return 0;
    int rc = cgprof_config_load(&a->cfg, options, NULL);
    if (rc != 0)
        return rc;
    if (!a->cfg.enabled)
        return CGPROF_EDISABLED;
    if (!a->cfg.profile_children)
        remove_self_from_ld_preload();
    if (a->cfg.cpu_sampling_hz == 0) {
        cgprof_info("cpuSamplingHz:0, CPU sampling is off");
        return CGPROF_EDISABLED;
    }
    cgprof__fork_register();
    rc = cgprof__agent_start();
    if (rc == 0)
        cgprof_info("profiling pid %d at %u Hz into %s", (int)getpid(),
                    a->cfg.cpu_sampling_hz, a->cfg.output_dir);
    return rc;
}

static bool preloaded(void)
{
    const char *p = getenv("LD_PRELOAD");
    return (p && strstr(p, "libcgprof")) || getenv("CGPROF_OPTIONS");
}

/* Our own cgprof_version, whichever one the program binds to. */
extern __typeof(cgprof_version) cgprof__self_version
    __attribute__((alias("cgprof_version"), visibility("hidden")));

/* False when another copy of cgprof (libcgprof.so and libcgprof-heap.so
 * both preloaded) comes first in the search order: that one profiles. */
static bool first_copy(void)
{
    void *first = dlsym(RTLD_DEFAULT, "cgprof_version"), *self;
    const char *(*fn)(void) = cgprof__self_version;
    memcpy(&self, &fn, sizeof(self));
    return !first || first == self;
}

__attribute__((constructor)) static void cgprof_constructor(void)
{
    int saved = errno;
    if (preloaded()) {
        if (first_copy()) {
            pthread_mutex_lock(&api_lock);
            cgprof__preload_start(getenv("CGPROF_OPTIONS"));
            pthread_mutex_unlock(&api_lock);
        } else {
            cgprof_info("another copy of cgprof comes first in LD_PRELOAD; this one stays idle");
        }
    }
    cgprof_heap_settled();
    errno = saved;
}

__attribute__((destructor)) static void cgprof_destructor(void)
{
    int saved = errno;
    if (pthread_mutex_trylock(&api_lock) == 0) {
        cgprof__agent.at_exit = true;
        cgprof__agent_stop(EXIT_FLUSH_MS);
        pthread_mutex_unlock(&api_lock);
    }
    errno = saved;
}

CGPROF_EXPORT int cgprof_start(const char *options)
{
    int saved = errno;
    pthread_mutex_lock(&api_lock);
    int rc = cgprof__preload_start(options);
    pthread_mutex_unlock(&api_lock);
    errno = saved;
    return rc;
}

CGPROF_EXPORT int cgprof_stop(void)
{
    int saved = errno;
    pthread_mutex_lock(&api_lock);
    int rc = cgprof__agent_running() ? 0 : CGPROF_EINVAL;
    cgprof__agent_stop(EXIT_FLUSH_MS);
    pthread_mutex_unlock(&api_lock);
    errno = saved;
    return rc;
}

CGPROF_EXPORT int cgprof_flush(void)
{
    int saved = errno;
    int rc = cgprof__agent_flush();
    errno = saved;
    return rc;
}

CGPROF_EXPORT const char *cgprof_version(void)
{
    return CGPROF_VERSION;
}
