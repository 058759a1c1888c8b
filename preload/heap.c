/* The malloc family interposers behind the heap summary, linked into
 * libcgprof-heap.so only (libcgprof.so has none, so a program that does
 * not ask for the heap summary pays nothing): malloc, free, calloc,
 * realloc, reallocarray, posix_memalign, aligned_alloc, memalign, valloc
 * and pvalloc (C++ operator new and delete reach malloc and free).
 * malloc_usable_size is left alone: every block is the real allocator's.
 *
 * Hot paths, measured on mallocbench (make bench): an allocation counts
 * its size down from the thread's budget (bytes to its next sample point)
 * and tail-calls the real function; a free tests two address bits: a
 * sampled block is always placed at an address 0 or 16 modulo 4096 (glibc
 * puts every mmapped block at 16; smaller sampled blocks are moved to a
 * 4096-aligned one), so any other address goes straight to the real free.
 * Only when a budget runs out, or a freed address passes that test, does
 * sampler/heap.c get a call (lock-free, async-signal-safe).
 *
 * The real functions come from dlsym(RTLD_NEXT), which may itself call
 * calloc: allocations made before they are known (or while resolving)
 * come from a static bootstrap arena, at marked addresses too, and are
 * never handed to the real free. Which malloc the program really gets is
 * detected once (cgprof__heap_detect) and logged. */
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

/* The real functions, resolved once. Until then the hot four point at
 * their own slow paths, which resolve first, so the fast paths need no
 * test for "not yet known". */
static void *malloc_slow(size_t n);
static void free_slow(void *p);
static void *calloc_slow(size_t a, size_t b);
static void *realloc_slow(void *p, size_t n);
static struct allocator real = {
    .malloc = malloc_slow, .free = free_slow, .calloc = calloc_slow, .realloc = realloc_slow,
};
/* The real allocator is glibc's, whose blocks carry their chunk size in
 * the word below them (what malloc_usable_size reads). Set by detect(),
 * before sampling starts, from libc.so.6's own symbols: a preloaded
 * tcmalloc also defines __libc_malloc and friends, and its blocks have no
 * such word (the one below may not even be mapped). */
static bool glibc_blocks;
static _Atomic bool resolved;
#define TLS __attribute__((tls_model("initial-exec")))
/* Bytes this thread may still allocate before its next sample point. */
static __thread int64_t budget TLS;
static __thread bool resolving TLS;
/* cgprof__heap_detect's probe: did the program's malloc reach ours? */
static __thread bool probing TLS;
static __thread bool probe_seen TLS;

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define PAGE 4096u

/* Counts an allocation of n bytes down; true while no sample point is
 * reached. Unsigned arithmetic: a huge n cannot overflow. */
static inline bool count_down(size_t n)
{
    int64_t b = (int64_t)((uint64_t)budget - (uint64_t)n);
    budget = b;
    return b > 0;
}

/* The slow path's question, once the budget ran out: sample this one? */
static bool due(size_t n)
{
    return budget <= 0 && !probing && cgprof__heap_due_sigsafe(&budget, n);
}

/* ---- bootstrap arena ------------------------------------------------------ */

#define BOOT_SIZE (1024u * 1024u)
static _Alignas(PAGE) unsigned char boot[BOOT_SIZE];
static _Atomic size_t boot_used;

static inline bool in_boot(const void *p)
{
    return (uintptr_t)p - (uintptr_t)boot < BOOT_SIZE;
}

/* Bump allocation, one page or more per block so that every block lies at
 * a marked address (free's fast path must not see it): 16 into a page, or
 * page-aligned for larger alignments; the size is stored just below. The
 * arena is static and never reused, so its memory is already zero; only
 * dlsym's few allocations while resolving come here. */
static void *boot_alloc(size_t n, size_t align)
{
    size_t a = align > 16 ? (align > PAGE ? align : PAGE) : 16;
    size_t old = atomic_load(&boot_used), start, block, end;
    do {
        start = (old + PAGE - 1) & ~(size_t)(PAGE - 1);
        block = a == 16 ? start + 16 : ((start + sizeof(size_t) + a - 1) & ~(a - 1));
        if (block > BOOT_SIZE || n > BOOT_SIZE - block) {
            errno = ENOMEM;
            return NULL;
        }
        end = block + n;
    } while (!atomic_compare_exchange_weak(&boot_used, &old, end));
    memcpy(boot + block - sizeof(size_t), &n, sizeof(n));
    return boot + block;
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
    bool libc = !r.malloc || !r.free || !r.calloc || !r.realloc;
    if (libc) {   /* glibc's own, all of them */
        r.malloc = __libc_malloc;
        r.free = __libc_free;
        r.calloc = __libc_calloc;
        r.realloc = __libc_realloc;
        r.posix_memalign = NULL;
        r.aligned_alloc = NULL;
        r.memalign = __libc_memalign;
        r.valloc = __libc_valloc;
        r.pvalloc = __libc_pvalloc;
    }
    STORE(real.free, r.free);
    STORE(real.calloc, r.calloc);
    STORE(real.realloc, r.realloc);
    STORE(real.posix_memalign, r.posix_memalign);
    STORE(real.aligned_alloc, r.aligned_alloc);
    STORE(real.memalign, r.memalign);
    STORE(real.valloc, r.valloc);
    STORE(real.pvalloc, r.pvalloc);
    STORE(real.malloc, r.malloc);
    atomic_store_explicit(&resolved, true, memory_order_release);
    resolving = false;
    return true;
}

/* ---- the sampled path -------------------------------------------------------- */

/* With glibc, a sampled block is also told by its chunk size: either
 * mmapped (IS_MMAPPED, bit 1 of the size word; all large blocks), or a
 * size that is SIZE_MARK modulo 4096 give or take SIZE_SLACK (the
 * interposers pad it so; glibc may keep up to 31 bytes more). free reads
 * that word only for a marked address, and glibc's own free reads it
 * right after: so the ~1 % of unsampled frees at marked addresses skip
 * the filter's cache miss, all but 2.5 % of them. */
#define SIZE_MARK 0x7c0u
#define SIZE_SLACK 96u

static inline uint64_t chunk_word(const void *p)
{
    uint64_t w;
    memcpy(&w, (const unsigned char *)p - sizeof(w), sizeof(w));
    return w;
}

/* glibc's blocks only: true when the block at p cannot be a sampled one. */
static inline bool surely_unsampled(const void *p)
{
    uint64_t w = chunk_word(p);
    return !(w & 2) && (((unsigned)w & 0xff8u) - SIZE_MARK) >= SIZE_SLACK;
}

/* A fresh block of n bytes at a marked address aligned to at least align
 * (with glibc, also of a marked chunk size), or NULL when the real
 * allocator has no aligned entry point. */
static void *marked_alloc(size_t align, size_t n)
{
    size_t a = align > PAGE ? align : PAGE;
    if (glibc_blocks) {
        /* glibc's chunk size for n bytes is n + 8 rounded up to 16 (at
         * least 32): pad n up to the next chunk size = SIZE_MARK mod 4096. */
        size_t cs = (n + 8 + 15) & ~(size_t)15;
        cs = cs < 32 ? 32 : cs;
        cs += (SIZE_MARK - (cs & 0xfffu)) & 0xfffu;
        if (cs - 8 >= n)
            n = cs - 8;
    }
    if (real.memalign)
        return real.memalign(a, n ? n : 1);
    void *q;
    if (real.posix_memalign && real.posix_memalign(&q, a, n ? n : 1) == 0)
        return q;
    return NULL;
}

/* Where free will look for it: at a marked address (and with glibc, of a
 * marked size or mmapped). */
static bool findable(const void *p)
{
    return cgprof_heap_marked(p) && (!glibc_blocks || !surely_unsampled(p));
}

/* The sampled allocation *pp of n bytes, aligned to align, whose first
 * keep bytes hold data: moves it where free will look for it when it is
 * not there (the real allocator's block is freed) and records it. When it
 * cannot be moved it stays where it is, unrecorded. */
static void place_and_record(void **pp, size_t n, size_t align, size_t keep)
{
    void *p = *pp;
    if (!p)
        return;
    if (!findable(p)) {
        int saved = errno;
        void *q = marked_alloc(align, n);
        errno = saved;
        if (!q || !findable(q)) {
            if (q)
                real.free(q);
            return;
        }
        memcpy(q, p, keep);
        real.free(p);
        *pp = p = q;
    }
    cgprof__heap_record_sigsafe(p, n);
}

/* ---- the interposers -------------------------------------------------------- */

__attribute__((noinline)) static void *malloc_slow(size_t n)
{
    if (!resolve())
        return boot_alloc(n, 16);
    if (probing)
        probe_seen = true;
    bool d = due(n);
    void *p = real.malloc(n);
    if (d)
        place_and_record(&p, n, 16, 0);
    return p;
}

CGPROF_EXPORT void *malloc(size_t n)
{
    if (LIKELY(count_down(n)))
        return LOAD(real.malloc)(n);
    return malloc_slow(n);
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
    if (!glibc_blocks || !surely_unsampled(p))
        cgprof__heap_forget_sigsafe(p);
    real.free(p);
}

CGPROF_EXPORT void free(void *p)
{
    if (LIKELY(!cgprof_heap_marked(p)))
        LOAD(real.free)(p);
    else
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
    bool d = due(n);
    void *p = real.calloc(a, b);
    if (d)
        place_and_record(&p, n, 16, n);
    return p;
}

CGPROF_EXPORT void *calloc(size_t a, size_t b)
{
    size_t n;
    if (LIKELY(!__builtin_mul_overflow(a, b, &n) && count_down(n)))
        return LOAD(real.calloc)(a, b);
    return calloc_slow(a, b);
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
    if (!resolve())
        return boot_alloc(n, 16);
    bool d = n && due(n);
    if (p && cgprof_heap_marked(p) && (!glibc_blocks || !surely_unsampled(p)))
        cgprof__heap_forget_sigsafe(p);
    void *q = real.realloc(p, n);
    if (d)
        place_and_record(&q, n, 16, n);
    return q;
}

CGPROF_EXPORT void *realloc(void *p, size_t n)
{
    bool more = count_down(n);
    if (LIKELY(more && !cgprof_heap_marked(p)))
        return LOAD(real.realloc)(p, n);
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

/* posix_memalign, aligned_alloc, memalign, valloc and pvalloc: rarer, so
 * one path for all. */
enum align_kind { K_POSIX_MEMALIGN, K_ALIGNED_ALLOC, K_MEMALIGN, K_VALLOC, K_PVALLOC };

static void *aligned_common(enum align_kind k, size_t align, size_t n, int *rc)
{
    size_t page = PAGE;
    if (k == K_VALLOC || k == K_PVALLOC) {
        long ps = sysconf(_SC_PAGESIZE);
        if (ps > 0)
            page = (size_t)ps;
        align = page;
    }
    if (k == K_PVALLOC)
        n = n ? (n + page - 1) & ~(page - 1) : page;
    bool more = count_down(n);
    if (!resolve()) {
        if (k == K_POSIX_MEMALIGN && (align < sizeof(void *) || (align & (align - 1)))) {
            *rc = EINVAL;
            return NULL;
        }
        void *p = boot_alloc(n, align);
        *rc = p ? 0 : ENOMEM;
        return p;
    }
    bool d = !more && due(n);
    void *p = NULL;
    *rc = 0;
    switch (k) {
    case K_POSIX_MEMALIGN:
        if (real.posix_memalign) {
            *rc = real.posix_memalign(&p, align, n);
        } else if (align < sizeof(void *) || (align & (align - 1))) {
            *rc = EINVAL;
        } else {
            p = real.memalign ? real.memalign(align, n) : NULL;
            *rc = p ? 0 : ENOMEM;
        }
        break;
    case K_ALIGNED_ALLOC:
        p = real.aligned_alloc ? real.aligned_alloc(align, n)
                               : real.memalign ? real.memalign(align, n) : NULL;
        break;
    case K_MEMALIGN:
        p = real.memalign ? real.memalign(align, n) : NULL;
        break;
    case K_VALLOC:
        p = real.valloc ? real.valloc(n) : real.memalign ? real.memalign(page, n) : NULL;
        break;
    default:
        p = real.pvalloc ? real.pvalloc(n) : real.memalign ? real.memalign(page, n) : NULL;
        break;
    }
    if (d && *rc == 0)
        place_and_record(&p, n, align, 0);
    return p;
}

CGPROF_EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    int rc;
    void *p = aligned_common(K_POSIX_MEMALIGN, align, n, &rc);
    if (rc == 0)
        *out = p;
    return rc;
}

CGPROF_EXPORT void *aligned_alloc(size_t align, size_t n)
{
    int rc;
    return aligned_common(K_ALIGNED_ALLOC, align, n, &rc);
}

CGPROF_EXPORT void *memalign(size_t align, size_t n)
{
    int rc;
    return aligned_common(K_MEMALIGN, align, n, &rc);
}

CGPROF_EXPORT void *valloc(size_t n)
{
    int rc;
    return aligned_common(K_VALLOC, 0, n, &rc);
}

CGPROF_EXPORT void *pvalloc(size_t n)
{
    int rc;
    return aligned_common(K_PVALLOC, 0, n, &rc);
}

/* ---- which malloc the program gets ----------------------------------------- */

static const char *base_name(const char *path)
{
    const char *s = path ? strrchr(path, '/') : NULL;
    return s ? s + 1 : (path && *path ? path : "the program");
}

/* Fills the allocator fields of o (name into name[0..n)) and logs once
 * what is and is not tracked. Agent start, normal thread context. */
static void detect(struct cgprof_heap_options *o, char *name, size_t n)
{
    resolve();
    void *first = dlsym(RTLD_DEFAULT, "malloc"), *self, *rm;
    void *(*selfp)(size_t) = cgprof__self_malloc;
    void *(*realp)(size_t) = real.malloc;
    memcpy(&self, &selfp, sizeof(self));
    memcpy(&rm, &realp, sizeof(rm));
    void *gm = cgprof__libc_sym("malloc"), *gf = cgprof__libc_sym("free");
    void *ga = cgprof__libc_sym("memalign"), *rf, *ra;
    void (*realf)(void *) = real.free;
    void *(*reala)(size_t, size_t) = real.memalign;
    memcpy(&rf, &realf, sizeof(rf));
    memcpy(&ra, &reala, sizeof(ra));
    Dl_info di;
    bool glibc = rm && rm == gm;
    STORE(glibc_blocks, glibc && rf == gf && ra == ga);
    if (glibc)
        snprintf(name, n, "glibc");
    else
        snprintf(name, n, "%s", rm && dladdr(rm, &di) ? base_name(di.dli_fname) : "unknown");
    o->allocator = name;
    /* Call the malloc the program binds to and see whether it reaches
     * ours: comparing addresses is not enough, since a non-PIE program
     * that takes malloc's address owns a canonical PLT entry for it. */
    o->tracked = first == self;
    if (first && !o->tracked) {
        void *(*pm)(size_t);
        memcpy(&pm, &first, sizeof(pm));
        int64_t saved = budget;
        budget = 0;                 /* ours would take its slow path */
        probing = true;
        probe_seen = false;
        void *x = pm(24);
        probing = false;
        budget = saved;
        free(x);
        o->tracked = probe_seen;
    }
    void *anchor;
    memcpy(&anchor, &selfp, sizeof(anchor));
    o->interposers = anchor;
    if (!o->tracked) {
        const char *who = first && dladdr(first, &di) ? base_name(di.dli_fname) : "unknown";
        cgprof_info("heap summary: the program's malloc comes from %s, ahead of ours, so "
                    "allocation sites are not tracked; capacity, used space and RSS still are", who);
    } else if (glibc) {
        cgprof_info("heap summary: allocations of glibc's malloc are sampled (one per ~%llu "
                    "bytes); used space is the sampled live estimate",
                    (unsigned long long)o->interval_bytes);
    } else {
        cgprof_info("heap summary: malloc is %s's; its allocations are sampled (one per ~%llu "
                    "bytes) through our interposer; used space is the sampled live estimate",
                    name, (unsigned long long)o->interval_bytes);
    }
}

/* Tells the agent this library has the interposers (before any default
 * priority constructor, ours included, runs). */
__attribute__((constructor(101))) static void announce(void)
{
    cgprof__heap_detect = detect;
}
