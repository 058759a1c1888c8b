/* Functions libcgprof.so interposes on purpose (listed in exports.map):
 * pthread_create, so every new thread gets its CPU timer from its first
 * instruction and short-lived threads are sampled fairly. The wrapper is
 * a plain pass-through when the sampler is not running. */
#include <dlfcn.h>
#include <pthread.h>
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../sampler/sampler.h"
#include "preload_int.h"

struct trampoline {
    void *(*start)(void *);
    void *arg;
};

static _Atomic(cgprof__pthread_create_fn) real_create;

cgprof__pthread_create_fn cgprof__real_pthread_create(void)
{
    cgprof__pthread_create_fn fn = atomic_load(&real_create);
    if (!fn) {
        void *sym = dlsym(RTLD_NEXT, "pthread_create");
        memcpy(&fn, &sym, sizeof(fn));     /* POSIX: function pointers fit */
        atomic_store(&real_create, fn);
    }
    return fn;
}

static void *thread_start(void *p)
{
    struct trampoline t = *(struct trampoline *)p;
    cgprof_free(p);
    cgprof_sampler_thread_begin();
    return t.start(t.arg);
}

#define EXIT_FLUSH_MS 2000

__attribute__((noreturn)) static void call_real_exit(const char *name, int status)
{
    void *sym = dlsym(RTLD_NEXT, name);
    void (*fn)(int) = NULL;
    memcpy(&fn, &sym, sizeof(fn));
    if (fn)
        fn(status);
    syscall(SYS_exit_group, status);
    for (;;)
        pause();
}

/* Programs that end with _exit (dash, busybox, many forked children) skip
 * destructors; without these their last profile would be lost. */
CGPROF_EXPORT void _exit(int status)
{
    cgprof__agent_stop_at_exit(EXIT_FLUSH_MS);
    call_real_exit("_exit", status);
    __builtin_unreachable();
}

CGPROF_EXPORT void _Exit(int status)
{
    cgprof__agent_stop_at_exit(EXIT_FLUSH_MS);
    call_real_exit("_Exit", status);
    __builtin_unreachable();
}

CGPROF_EXPORT int pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                                 void *(*start)(void *), void *arg)
{
    cgprof__pthread_create_fn real = cgprof__real_pthread_create();
    if (!real)
        return EAGAIN;
    if (!cgprof_sampler_running())
        return real(thread, attr, start, arg);
    struct trampoline *t = cgprof_malloc(sizeof(*t));
    if (!t)
        return real(thread, attr, start, arg);
    t->start = start;
    t->arg = arg;
    int rc = real(thread, attr, thread_start, t);
    if (rc != 0)
        cgprof_free(t);
    return rc;
}
