/* The malloc family interposers (listed in exports.map) behind the heap
 * summary: malloc, free, calloc, realloc, reallocarray, posix_memalign,
 * aligned_alloc, memalign, valloc and pvalloc (C++ operator new and
 * delete reach malloc and free). malloc_usable_size is left alone.
 *
 * While heap tracking is off (the default, and always before our
 * constructor ran) each interposer is one load and one predictable branch,
 * then a tail call to the real function. While it is on, an allocation
 * also counts down the thread's Poisson budget and a free checks a 2^16
 * counting filter; the rare sampled path is lock-free (sampler/heap.c).
 *
 * The real functions come from dlsym(RTLD_NEXT), which may itself call
 * calloc: allocations made before they are known (or while resolving)
 * come from a static bootstrap arena and are never handed to the real
 * free. Which malloc the program really gets is detected once and said
 * in one info line. */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../sampler/sampler.h"
#include "preload_int.h"

#ifdef CGPROF_UNIT_TEST
/* Unit tests run under AddressSanitizer, which owns malloc: there the
 * interposers are compiled under other names instead of replacing it. */
#define malloc cgprof__ut_malloc
#define free cgprof__ut_free
#define calloc cgprof__ut_calloc
#define realloc cgprof__ut_realloc
#define reallocarray cgprof__ut_reallocarray
#define posix_memalign cgprof__ut_posix_memalign
#define aligned_alloc cgprof__ut_aligned_alloc
#define memalign cgprof__ut_memalign
#define valloc cgprof__ut_valloc
#define pvalloc cgprof__ut_pvalloc
void *malloc(size_t n);
void free(void *p);
void *calloc(size_t a, size_t b);
void *realloc(void *p, size_t n);
void *reallocarray(void *p, size_t a, size_t b);
int posix_memalign(void **out, size_t align, size_t n);
void *aligned_alloc(size_t align, size_t n);
void *memalign(size_t align, size_t n);
void *valloc(size_t n);
void *pvalloc(size_t n);
#endif

struct allocator {
    void *(*malloc)(size_t);
    void (*free)(void *);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
};

/* glibc's own entry points: the fallback when dlsym cannot help. */
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

static struct allocator real;   /* resolved once */
static struct allocator fast;   /* = real while tracking is off, NULLs while on */
static struct allocator track;  /* = real while tracking is on, NULLs while off */
static _Atomic bool resolved, tracking;
static __thread bool resolving __attribute__((tls_model("initial-exec")));
/* cgprof__heap_detect's probe: did the program's malloc reach ours? */
static __thread bool probing __attribute__((tls_model("initial-exec")));
static __thread bool probe_seen __attribute__((tls_model("initial-exec")));

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define LIKELY(x) __builtin_expect(!!(x), 1)

/* ---- bootstrap arena ------------------------------------------------------ */

#define BOOT_SIZE (256u * 1024u)
static _Alignas(4096) unsigned char boot[BOOT_SIZE];
static _Atomic size_t boot_used;

static inline bool in_boot(const void *p)
{
    return (uintptr_t)p - (uintptr_t)boot < BOOT_SIZE;
}

/* Bump allocation with the block size stored just below the block. The
 * arena is static and never reused, so its memory is already zero. */
static void *boot_alloc(size_t n, size_t align)
{
    if (align < 16)
        align = 16;
    size_t old = atomic_load(&boot_used), start, end;
    do {
        start = (old + sizeof(size_t) + align - 1) & ~(align - 1);
        if (start > BOOT_SIZE || n > BOOT_SIZE - start) {
            errno = ENOMEM;
            return NULL;
        }
        end = start + n;
    } while (!atomic_compare_exchange_weak(&boot_used, &old, end));
    memcpy(boot + start - sizeof(size_t), &n, sizeof(n));
    return boot + start;
}

static size_t boot_size(const void *p)
{
    size_t n;
    memcpy(&n, (const unsigned char *)p - sizeof(size_t), sizeof(n));
    return n;
}

/* ---- resolving the real functions ---------------------------------------- */

static void *sym(const char *name)
{
    return dlsym(RTLD_NEXT, name);
}

#define SET_FN(dst, p) memcpy(&(dst), &(p), sizeof(dst))

/* Finds the next definitions after ours (glibc's, or a preloaded
 * jemalloc/tcmalloc); false while that is impossible (recursion from
 * inside dlsym). */
static bool resolve(void)
{
    if (LIKELY(atomic_load_explicit(&resolved, memory_order_acquire)))
        return true;
    if (resolving)
        return false;
    resolving = true;
    struct allocator r;
    void *p;
    memset(&r, 0, sizeof(r));
    p = sym("malloc"); SET_FN(r.malloc, p);
    p = sym("free"); SET_FN(r.free, p);
    p = sym("calloc"); SET_FN(r.calloc, p);
    p = sym("realloc"); SET_FN(r.realloc, p);
    p = sym("posix_memalign"); SET_FN(r.posix_memalign, p);
    p = sym("aligned_alloc"); SET_FN(r.aligned_alloc, p);
    p = sym("memalign"); SET_FN(r.memalign, p);
    p = sym("valloc"); SET_FN(r.valloc, p);
    p = sym("pvalloc"); SET_FN(r.pvalloc, p);
    if (!r.malloc || !r.free || !r.calloc || !r.realloc) {
        r.malloc = __libc_malloc;
        r.free = __libc_free;
        r.calloc = __libc_calloc;
        r.realloc = __libc_realloc;
    }
    if (!r.memalign)
        r.memalign = __libc_memalign;
    if (!r.valloc)
        r.valloc = __libc_valloc;
    if (!r.pvalloc)
        r.pvalloc = __libc_pvalloc;
    STORE(real.malloc, r.malloc);
    STORE(real.free, r.free);
    STORE(real.calloc, r.calloc);
    STORE(real.realloc, r.realloc);
    STORE(real.posix_memalign, r.posix_memalign);
    STORE(real.aligned_alloc, r.aligned_alloc);
    STORE(real.memalign, r.memalign);
    STORE(real.valloc, r.valloc);
    STORE(real.pvalloc, r.pvalloc);
    atomic_store_explicit(&resolved, true, memory_order_release);
    if (!atomic_load(&tracking))
        cgprof__heap_interpose(false);
    resolving = false;
    return true;
}

/* Switches the fast paths: with tracking on they are all NULL, so every
 * call takes the slow path that samples. */
void cgprof__heap_interpose(bool on)
{
    if (on)
        atomic_store(&tracking, true);
    bool r = atomic_load_explicit(&resolved, memory_order_acquire) || resolve();
    bool pass = !on && r, tr = on && r;
    /* malloc and free have an inlined tracking path (the others go
     * through their slow paths): track holds their real functions. */
    STORE(track.malloc, tr ? real.malloc : NULL);
    STORE(track.free, tr ? real.free : NULL);
    STORE(track.calloc, tr ? real.calloc : NULL);
    STORE(fast.malloc, pass ? real.malloc : NULL);
    STORE(fast.free, pass ? real.free : NULL);
    STORE(fast.calloc, pass ? real.calloc : NULL);
    STORE(fast.realloc, pass ? real.realloc : NULL);
    STORE(fast.posix_memalign, pass ? real.posix_memalign : NULL);
    STORE(fast.aligned_alloc, pass ? real.aligned_alloc : NULL);
    STORE(fast.memalign, pass ? real.memalign : NULL);
    STORE(fast.valloc, pass ? real.valloc : NULL);
    STORE(fast.pvalloc, pass ? real.pvalloc : NULL);
    if (!on)
        atomic_store(&tracking, false);
}

static inline void note(void *p, size_t n)
{
    if (p && LOAD(tracking) && cgprof_heap_due(n))
        cgprof_heap_sample_sigsafe(p, n);
}

/* ---- the interposers -------------------------------------------------------- */

__attribute__((noinline)) static void *malloc_slow(size_t n)
{
    if (!resolve())
        return boot_alloc(n, 16);
    if (probing)
        probe_seen = true;
    void *p = LOAD(real.malloc)(n);
    note(p, n);
    return p;
}

CGPROF_EXPORT void *malloc(size_t n)
{
    void *(*f)(size_t) = LOAD(fast.malloc);
    if (LIKELY(f))
        return f(n);
    f = LOAD(track.malloc);
    if (!f)
        return malloc_slow(n);
    void *p = f(n);
    if (__builtin_expect(cgprof_heap_due(n), 0) && p)
        cgprof_heap_sample_sigsafe(p, n);
    return p;
}

/* The address of our own malloc, whichever malloc the program binds to. */
#ifdef CGPROF_UNIT_TEST
extern __typeof(malloc) cgprof__self_malloc
    __attribute__((alias("cgprof__ut_malloc"), visibility("hidden"), copy(malloc)));
#else
extern __typeof(malloc) cgprof__self_malloc
    __attribute__((alias("malloc"), visibility("hidden"), copy(malloc)));
#endif

__attribute__((noinline)) static void free_slow(void *p)
{
    if (!p || in_boot(p) || !resolve())
        return;
    if (cgprof_heap_maybe_sampled(p))
        cgprof_heap_forget_sigsafe(p);
    LOAD(real.free)(p);
}

CGPROF_EXPORT void free(void *p)
{
    void (*f)(void *) = LOAD(fast.free);
    if (LIKELY(f && !in_boot(p))) {
        f(p);
        return;
    }
    f = LOAD(track.free);
    if (LIKELY(f && !in_boot(p))) {
        if (__builtin_expect(cgprof_heap_maybe_sampled(p), 0))
            cgprof_heap_forget_sigsafe(p);
        f(p);
        return;
    }
    free_slow(p);
}

__attribute__((noinline)) static void *calloc_slow(size_t a, size_t b)
{
    size_t n;
    if (__builtin_mul_overflow(a, b, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    if (!resolve())
        return boot_alloc(n, 16);
    void *p = LOAD(real.calloc)(a, b);
    note(p, n);
    return p;
}

CGPROF_EXPORT void *calloc(size_t a, size_t b)
{
    void *(*f)(size_t, size_t) = LOAD(fast.calloc);
    if (LIKELY(f))
        return f(a, b);
    f = LOAD(track.calloc);
    size_t n;
    if (!f || __builtin_mul_overflow(a, b, &n))
        return calloc_slow(a, b);
    void *p = f(a, b);
    if (__builtin_expect(cgprof_heap_due(n), 0) && p)
        cgprof_heap_sample_sigsafe(p, n);
    return p;
}

__attribute__((noinline)) static void *realloc_slow(void *p, size_t n)
{
    if (p && in_boot(p)) {
        /* Moves out of the arena; the old block is never freed. */
        size_t old = boot_size(p);
        void *q = malloc(n ? n : 1);
        if (q)
            memcpy(q, p, old < n ? old : n);
        return q;
    }
    if (!resolve()) {
        void *q = boot_alloc(n, 16);
        return q;
    }
    if (p && cgprof_heap_maybe_sampled(p))
        cgprof_heap_forget_sigsafe(p);
    void *q = LOAD(real.realloc)(p, n);
    if (n)
        note(q, n);
    return q;
}

CGPROF_EXPORT void *realloc(void *p, size_t n)
{
    void *(*f)(void *, size_t) = LOAD(fast.realloc);
    if (LIKELY(f && !in_boot(p)))
        return f(p, n);
    return realloc_slow(p, n);
}

CGPROF_EXPORT void *reallocarray(void *p, size_t a, size_t b)
{
    size_t n;
    if (__builtin_mul_overflow(a, b, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, n);
}

__attribute__((noinline)) static int posix_memalign_slow(void **out, size_t align, size_t n)
{
    if (!resolve()) {
        if (align < sizeof(void *) || (align & (align - 1)))
            return EINVAL;
        void *p = boot_alloc(n, align);
        if (!p)
            return ENOMEM;
        *out = p;
        return 0;
    }
    int rc;
    if (real.posix_memalign) {
        rc = LOAD(real.posix_memalign)(out, align, n);
    } else {
        if (align < sizeof(void *) || (align & (align - 1)))
            return EINVAL;
        void *p = LOAD(real.memalign)(align, n);
        if (!p)
            return ENOMEM;
        *out = p;
        rc = 0;
    }
    if (rc == 0)
        note(*out, n);
    return rc;
}

CGPROF_EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    int (*f)(void **, size_t, size_t) = LOAD(fast.posix_memalign);
    if (LIKELY(f))
        return f(out, align, n);
    return posix_memalign_slow(out, align, n);
}

/* aligned_alloc, memalign, valloc and pvalloc share one slow path. */
enum align_kind { K_ALIGNED_ALLOC, K_MEMALIGN, K_VALLOC, K_PVALLOC };

__attribute__((noinline)) static void *aligned_slow(enum align_kind k, size_t align, size_t n)
{
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0)
        page = 4096;
    if (!resolve())
        return boot_alloc(n, k == K_VALLOC || k == K_PVALLOC ? (size_t)page : align);
    void *p;
    switch (k) {
    case K_ALIGNED_ALLOC:
        p = real.aligned_alloc ? LOAD(real.aligned_alloc)(align, n) : LOAD(real.memalign)(align, n);
        break;
    case K_MEMALIGN:
        p = LOAD(real.memalign)(align, n);
        break;
    case K_VALLOC:
        p = LOAD(real.valloc)(n);
        break;
    default:
        p = LOAD(real.pvalloc)(n);
        break;
    }
    note(p, n);
    return p;
}

CGPROF_EXPORT void *aligned_alloc(size_t align, size_t n)
{
    void *(*f)(size_t, size_t) = LOAD(fast.aligned_alloc);
    if (LIKELY(f))
        return f(align, n);
    return aligned_slow(K_ALIGNED_ALLOC, align, n);
}

CGPROF_EXPORT void *memalign(size_t align, size_t n)
{
    void *(*f)(size_t, size_t) = LOAD(fast.memalign);
    if (LIKELY(f))
        return f(align, n);
    return aligned_slow(K_MEMALIGN, align, n);
}

CGPROF_EXPORT void *valloc(size_t n)
{
    void *(*f)(size_t) = LOAD(fast.valloc);
    if (LIKELY(f))
        return f(n);
    return aligned_slow(K_VALLOC, 0, n);
}

CGPROF_EXPORT void *pvalloc(size_t n)
{
    void *(*f)(size_t) = LOAD(fast.pvalloc);
    if (LIKELY(f))
        return f(n);
    return aligned_slow(K_PVALLOC, 0, n);
}

/* ---- which malloc the program gets ----------------------------------------- */

static const char *base_name(const char *path)
{
    const char *s = path ? strrchr(path, '/') : NULL;
    return s ? s + 1 : (path && *path ? path : "the program");
}

/* Fills the allocator fields of o (name into name[0..n)) and logs once
 * what is and is not tracked. Agent start, normal thread context. */
void cgprof__heap_detect(struct cgprof_heap_options *o, char *name, size_t n)
{
    resolve();
    void *first = dlsym(RTLD_DEFAULT, "malloc"), *self, *rm, *gm = NULL;
    void *(*selfp)(size_t) = cgprof__self_malloc;
    void *(*realp)(size_t) = real.malloc;
    memcpy(&self, &selfp, sizeof(self));
    memcpy(&rm, &realp, sizeof(rm));
    void *libc = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
    if (libc) {
        gm = dlsym(libc, "malloc");
        dlclose(libc);
    }
    Dl_info di;
    bool glibc = rm && rm == gm;
    if (glibc)
        snprintf(name, n, "glibc");
    else
        snprintf(name, n, "%s", rm && dladdr(rm, &di) ? base_name(di.dli_fname) : "unknown");
    o->allocator = name;
    o->allocator_stats = glibc;
    /* Call the malloc the program binds to and see whether it reaches
     * ours: comparing addresses is not enough, since a non-PIE program
     * that takes malloc's address owns a canonical PLT entry for it. */
    o->tracked = first == self;
    if (first && !o->tracked) {
        void *(*pm)(size_t);
        memcpy(&pm, &first, sizeof(pm));
        void *(*saved)(size_t) = LOAD(track.malloc);
        STORE(fast.malloc, NULL);
        STORE(track.malloc, NULL);
        probing = true;
        probe_seen = false;
        void *x = pm(24);
        probing = false;
        STORE(track.malloc, saved);
        if (!LOAD(tracking))
            STORE(fast.malloc, real.malloc);
        free(x);
        o->tracked = probe_seen;
    }
    if (!o->tracked) {
        const char *who = first && dladdr(first, &di) ? base_name(di.dli_fname) : "unknown";
        cgprof_info("heap summary: the program's malloc comes from %s, ahead of ours, so "
                    "allocation sites are not tracked; capacity, used space and RSS still are", who);
    } else if (glibc) {
        cgprof_info("heap summary: allocations of glibc's malloc are sampled (one per ~%llu "
                    "bytes); used space from mallinfo2",
                    (unsigned long long)o->interval_bytes);
    } else {
        cgprof_info("heap summary: malloc is %s's; its allocations are sampled (one per ~%llu "
                    "bytes) through our interposer; used space is the sampled live estimate "
                    "(mallinfo2 describes glibc's heap only)", name,
                    (unsigned long long)o->interval_bytes);
    }
}
