/* Sampled allocation tracking for the heap summary (heapSummaryEnabled).
 *
 * Host side (called by the malloc family interposers of libcgprof-heap.so,
 * preload/heap.c, possibly inside a host signal handler, so lock-free and
 * allocation-free): the interposers count each thread's allocated bytes
 * down to its next sample point, drawn here from a Poisson process of mean
 * heapSamplingIntervalBytes; a sampled allocation copies the thread's
 * registers and live stack into the sample ring (like the CPU signal
 * handler) and enters a lock-free open-addressing set of live sampled
 * addresses. Sampled blocks lie at addresses 0 or 16 modulo 4096, so only
 * frees of such addresses reach us; a counting filter of 2^16 slots in
 * front of the set answers most of those with one load. Reentrant calls
 * (our own code allocating, a host signal handler allocating inside us)
 * and the profiler's own threads are never sampled.
 *
 * Agent side: drained heap samples are unwound and symbolized into
 * allocation sites; every sampling interval a data point walks the set and
 * estimates live bytes and objects per site without bias, as tcmalloc's
 * heap profiler does: an allocation of s bytes is sampled with probability
 * 1 - exp(-s/T), so it stands for s / (1 - exp(-s/T)) bytes and
 * 1 / (1 - exp(-s/T)) objects. Heap figures (capacity, used space, RSS)
 * come from cgroups, rlimits and /proc. */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "sampler_int.h"

__thread struct cgprof__heap_tls cgprof__heap_tls __attribute__((tls_model("initial-exec")));
uint16_t *cgprof__heap_filter;

#define SET_SLOTS (1u << CGPROF__HEAP_SET_BITS)
#define SET_MASK (SET_SLOTS - 1)
#define SET_WINDOW 32
#define ADDR_RESERVED 1u
#define SITE_PENDING 0u
#define SITE_LOST 1u
#define SITE_BASE 2u
#define MAX_SITES 65536u
#define SITE_BUCKETS 4096u
#define MAX_FRAMES 4096
#define CAPACITY_REFRESH 60      /* data points between capacity reads */

struct heap_entry {
    _Atomic uint64_t addr;      /* 0 free, 1 being written, else the address */
    uint64_t size;
    uint64_t serial;
    _Atomic uint32_t site;      /* SITE_PENDING, SITE_LOST or SITE_BASE + index */
    uint32_t ticket;            /* its sample's ring slot (0: none) */
};

static struct heap_entry *set;
static _Atomic bool running;    /* data points are taken */
static _Atomic bool sampling;   /* and allocations sampled (our malloc is the program's) */
static _Atomic bool settled;    /* the constructor knows whether we run */
static _Atomic uint32_t epoch;  /* bumped by every start */
static bool started;            /* data points possible (agent thread) */
static _Atomic uint64_t interval = 524288;
static _Atomic uint64_t next_serial;
static _Atomic uint64_t stat_samples, stat_lost, stat_table_full;
static struct cgprof_heap_options opts;
static char allocator_name[64];
/* Our own code (libcgprof.so's and the interposers' library's): leading
 * frames in it are stripped from sites. */
static struct { uintptr_t lo, hi; } own_text[2];

/* ---- arithmetic without libm (the .so links libc only) ------------------- */

/* Natural logarithm of u in (0, 1]: u = m * 2^e with m in [1, 2), and
 * ln m = 2 atanh((m-1)/(m+1)) by its series (error below 1e-9).
 * Tests: test/unit/sampler/test_heap.c */
double cgprof__heap_ln(double u)
{
    if (!(u > 0))
        return -745.0;
    uint64_t bits;
    memcpy(&bits, &u, sizeof(bits));
    int e = (int)((bits >> 52) & 0x7ff) - 1023;
    if (e == -1023)
        return -745.0;               /* subnormal: far below any use here */
    bits = (bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull;
    double m;
    memcpy(&m, &bits, sizeof(m));
    if (m > 1.4142135623730951) {    /* keep s small: m in [0.707, 1.414) */
        m *= 0.5;
        e++;
    }
    double s = (m - 1) / (m + 1), s2 = s * s, term = s, sum = 0;
    for (int k = 1; k < 24; k += 2) {
        sum += term / k;
        term *= s2;
    }
    return 2 * sum + e * 0.6931471805599453;
}

/* exp(-x) for x >= 0: x = k ln2 + r, exp(-r) by its Taylor series. */
static double exp_neg(double x)
{
    if (x > 700)
        return 0;
    int k = (int)(x / 0.6931471805599453);
    double r = x - k * 0.6931471805599453, term = 1, sum = 1;
    for (int i = 1; i < 20; i++) {
        term *= -r / i;
        sum += term;
    }
    while (k-- > 0)
        sum *= 0.5;
    return sum;
}

/* 1 - exp(-x) for x >= 0, precise for small x too.
 * Tests: test/unit/sampler/test_heap.c */
double cgprof__heap_one_minus_exp_neg(double x)
{
    if (!(x > 0))
        return 0;
    if (x < 0.5) {
        double term = x, sum = 0;
        for (int i = 1; i < 20; i++) {
            sum += term;
            term *= -x / (i + 1);
        }
        return sum;
    }
    return 1 - exp_neg(x);
}

/* The unbiased estimate that one sampled allocation of size bytes stands
 * for, with mean sampling interval iv: size / P(sampled) bytes and
 * 1 / P(sampled) objects, P(sampled) = 1 - exp(-size/iv).
 * Tests: test/unit/sampler/test_heap.c */
void cgprof__heap_estimate(uint64_t size, uint64_t iv, double *bytes, double *objects)
{
    double p = cgprof__heap_one_minus_exp_neg((double)(size ? size : 1) / (double)(iv ? iv : 1));
    double w = p > 0 ? 1 / p : 0;
    *objects = w;
    *bytes = w * (double)size;
}

/* Async-signal-safe. xorshift64*. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* Async-signal-safe. Bytes until the next sample point: exponential with
 * mean iv, at least 1. Tests: test/unit/sampler/test_heap.c */
int64_t cgprof__heap_next_gap(uint64_t *rng, uint64_t iv)
{
    double u = (double)((rng_next(rng) >> 11) + 1) * 0x1.0p-53;   /* (0, 1] */
    double g = -cgprof__heap_ln(u) * (double)iv;
    if (g > 4e18)
        g = 4e18;
    return (int64_t)g + 1;
}

/* ---- the set of live sampled allocations (lock-free) --------------------- */

static inline size_t set_index(uint64_t a)
{
    a ^= a >> 33;
    a *= 0xff51afd7ed558ccdull;
    a ^= a >> 33;
    return (size_t)a & SET_MASK;
}

/* Async-signal-safe. Whether p may be in the set: a counting filter of
 * 2^16 slots answers most lookups with one load. */
static inline bool maybe_sampled(const void *p)
{
    const uint16_t *f = __atomic_load_n(&cgprof__heap_filter, __ATOMIC_ACQUIRE);
    return f && __atomic_load_n(&f[cgprof__heap_filter_index(p)], __ATOMIC_RELAXED) != 0;
}

static void filter_add_sigsafe(const void *p, int d)
{
    uint16_t *f = cgprof__heap_filter;
    if (f)
        __atomic_fetch_add(&f[cgprof__heap_filter_index(p)], (uint16_t)d, __ATOMIC_RELAXED);
}

/* Maps the set and the filter once; they are never unmapped (a late free
 * on another thread may still look). Returns 0 or -errno. */
int cgprof__heap_set_init(void)
{
    if (set)
        return 0;
    void *s = mmap(NULL, SET_SLOTS * sizeof(struct heap_entry), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED)
        return -errno;
    void *f = mmap(NULL, sizeof(uint16_t) << CGPROF__HEAP_FILTER_BITS, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (f == MAP_FAILED) {
        int e = errno;
        munmap(s, SET_SLOTS * sizeof(struct heap_entry));
        return -e;
    }
    set = s;
    __atomic_store_n(&cgprof__heap_filter, (uint16_t *)f, __ATOMIC_RELEASE);
    return 0;
}

/* Empties the set (only while nobody inserts: tracking is off). */
static void set_clear(void)
{
    if (!set)
        return;
    memset(set, 0, SET_SLOTS * sizeof(struct heap_entry));
    memset(cgprof__heap_filter, 0, sizeof(uint16_t) << CGPROF__HEAP_FILTER_BITS);
}

/* Async-signal-safe. Removes addr from the set; true when it was there,
 * with its sample's ring ticket in *ticket. */
static bool set_remove(uint64_t addr, uint32_t *ticket)
{
    if (!set || addr <= ADDR_RESERVED)
        return false;
    size_t i = set_index(addr);
    for (unsigned k = 0; k < SET_WINDOW; k++) {
        struct heap_entry *e = &set[(i + k) & SET_MASK];
        uint64_t want = addr;
        if (atomic_load_explicit(&e->addr, memory_order_acquire) != addr)
            continue;
        uint32_t t = e->ticket;
        if (atomic_compare_exchange_strong_explicit(&e->addr, &want, 0, memory_order_acq_rel,
                                                    memory_order_relaxed)) {
            filter_add_sigsafe((const void *)(uintptr_t)addr, -1);
            *ticket = t;
            return true;
        }
    }
    return false;
}

/* Async-signal-safe. Inserts addr (replacing a stale entry of the same
 * address, left by a free we did not see); false when its probe window is
 * full. */
static bool set_insert(uint64_t addr, uint64_t size, uint64_t serial, uint32_t site,
                       uint32_t ticket)
{
    if (!set || addr <= ADDR_RESERVED)
        return false;
    uint32_t stale;
    while (maybe_sampled((const void *)(uintptr_t)addr) && set_remove(addr, &stale))
        ;
    size_t i = set_index(addr);
    for (unsigned k = 0; k < SET_WINDOW; k++) {
        struct heap_entry *e = &set[(i + k) & SET_MASK];
        uint64_t want = 0;
        if (atomic_load_explicit(&e->addr, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong_explicit(&e->addr, &want, ADDR_RESERVED,
                                                    memory_order_acquire, memory_order_relaxed)) {
            e->size = size;
            e->serial = serial;
            e->ticket = ticket;
            atomic_store_explicit(&e->site, site, memory_order_relaxed);
            filter_add_sigsafe((const void *)(uintptr_t)addr, 1);
            atomic_store_explicit(&e->addr, addr, memory_order_release);
            return true;
        }
    }
    return false;
}

/* Tests: test/unit/sampler/test_heap.c */
bool cgprof__heap_set_remove_sigsafe(uint64_t addr)
{
    uint32_t ticket;
    return set_remove(addr, &ticket);
}

/* Tests: test/unit/sampler/test_heap.c */
bool cgprof__heap_set_insert_sigsafe(uint64_t addr, uint64_t size, uint64_t serial, uint32_t site)
{
    return set_insert(addr, size, serial, site, 0);
}

/* The live entry for (addr, serial), or NULL. Agent thread. */
static struct heap_entry *set_find(uint64_t addr, uint64_t serial)
{
    if (!maybe_sampled((const void *)(uintptr_t)addr))
        return NULL;            /* most lookups: freed already */
    size_t i = set_index(addr);
    for (unsigned k = 0; k < SET_WINDOW; k++) {
        struct heap_entry *e = &set[(i + k) & SET_MASK];
        if (atomic_load_explicit(&e->addr, memory_order_acquire) == addr && e->serial == serial)
            return e;
    }
    return NULL;
}

/* Number of live entries (tests and stats). */
size_t cgprof__heap_set_count(void)
{
    size_t n = 0;
    for (size_t i = 0; set && i < SET_SLOTS; i++)
        n += atomic_load_explicit(&set[i].addr, memory_order_relaxed) > ADDR_RESERVED;
    return n;
}

/* ---- capture on the allocating thread ------------------------------------ */



/* Async-signal-safe. Fills s with this thread's registers at this point
 * (libunwind's x86_64 numbering) and its live stack. The registers are
 * taken inline in this very frame: the stack above the captured RSP is
 * then left alone by everything called afterwards, so the copy holds the
 * frames exactly as the registers describe them. */
__attribute__((noinline)) static void capture_sigsafe(struct cgprof__sample *s,
                                                      struct cgprof__heap_tls *t, pid_t tid)
{
    uint64_t *r = s->regs;
    __asm__ volatile("movq %%rax, 0(%0)\n\t"
                     "movq %%rdx, 8(%0)\n\t"
                     "movq %%rcx, 16(%0)\n\t"
                     "movq %%rbx, 24(%0)\n\t"
                     "movq %%rsi, 32(%0)\n\t"
                     "movq %%rdi, 40(%0)\n\t"
                     "movq %%rbp, 48(%0)\n\t"
                     "movq %%rsp, 56(%0)\n\t"
                     "movq %%r8, 64(%0)\n\t"
                     "movq %%r9, 72(%0)\n\t"
                     "movq %%r10, 80(%0)\n\t"
                     "movq %%r11, 88(%0)\n\t"
                     "movq %%r12, 96(%0)\n\t"
                     "movq %%r13, 104(%0)\n\t"
                     "movq %%r14, 112(%0)\n\t"
                     "movq %%r15, 120(%0)\n\t"
                     "leaq 0(%%rip), %%rax\n\t"
                     "movq %%rax, 128(%0)\n\t"
                     :
                     : "r"(r)
                     : "rax", "memory");
    s->tid = tid;
    if (t->bounds_tid != tid) {
        t->bounds_tid = tid;
        t->stack_lo = t->stack_hi = 0;
        uintptr_t lo, hi;
        if (cgprof__threads_bounds_sigsafe(tid, &lo, &hi)) {
            t->stack_lo = lo;
            t->stack_hi = hi;
        }
    }
    cgprof__sample_stack_sigsafe(s, (uintptr_t)r[7], t->stack_lo, t->stack_hi);
}

/* Async-signal-safe. A slot; when the ring is full the allocating thread
 * waits for the agent to drain it, a bounded while (about 1 ms: a few
 * yields, then short sleeps), and the sample loses its stack after that.
 * Slowing an allocation burst down a little beats biasing the sites. */
static struct cgprof__sample *claim_sigsafe(void)
{
    for (int tries = 0; tries < 24; tries++) {
        struct cgprof__sample *s = cgprof__ring_claim_sigsafe();
        if (s)
            return s;
        cgprof__ring_wake_sigsafe();
        if (tries < 4) {
            sched_yield();
        } else {
            struct timespec ts = { 0, 50000 };
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

static void record_sigsafe(struct cgprof__heap_tls *t, void *p, size_t n, pid_t tid)
{
    uint64_t serial = atomic_fetch_add_explicit(&next_serial, 1, memory_order_relaxed) + 1;
    atomic_fetch_add_explicit(&stat_samples, 1, memory_order_relaxed);
    struct cgprof__sample *s = claim_sigsafe();
    if (s)
        capture_sigsafe(s, t, tid);
    uint64_t addr = (uint64_t)(uintptr_t)p;
    uint32_t ticket = s ? cgprof__ring_ticket_sigsafe(s) : 0;
    if (!set_insert(addr, n, serial, s ? SITE_PENDING : SITE_LOST, ticket)) {
        atomic_fetch_add_explicit(&stat_table_full, 1, memory_order_relaxed);
        addr = 0;   /* the agent skips it */
    } else if (!s) {
        atomic_fetch_add_explicit(&stat_lost, 1, memory_order_relaxed);
    }
    if (!s)
        return;
    s->kind = CGPROF__SAMPLE_HEAP;
    s->weight = 0;
    s->heap_addr = addr;
    s->heap_size = n;
    s->heap_serial = serial;
    cgprof__ring_publish_sigsafe(s);   /* wakes the agent when half full */
}

/* Async-signal-safe (lock-free). Tests: test/unit/sampler/test_heap.c,
 * test/integration/heap.sh */
bool cgprof__heap_due_sigsafe(int64_t *budget, size_t n)
{
    struct cgprof__heap_tls *t = &cgprof__heap_tls;
    if (!atomic_load_explicit(&sampling, memory_order_relaxed)) {
        *budget = atomic_load_explicit(&settled, memory_order_relaxed) ? CGPROF_HEAP_OFF_BUDGET : 0;
        return false;
    }
    uint64_t iv = atomic_load_explicit(&interval, memory_order_relaxed);
    uint32_t ep = atomic_load_explicit(&epoch, memory_order_relaxed);
    if (!t->init) {
        t->init = true;
        uint64_t seed = (uint64_t)(uintptr_t)t ^ ((uint64_t)syscall(SYS_gettid) << 32) ^
                        __builtin_ia32_rdtsc();
        seed ^= seed >> 31;
        t->rng = seed * 0x9e3779b97f4a7c15ull | 1;
    }
    if (t->epoch != ep) {
        /* A new start: the first sample point lies one gap in, counting
         * this allocation. */
        t->epoch = ep;
        *budget = cgprof__heap_next_gap(&t->rng, iv) - (int64_t)(n > (1ull << 62) ? 1ull << 62 : n);
        if (*budget > 0)
            return false;
    }
    *budget = cgprof__heap_next_gap(&t->rng, iv);
    if (t->busy)
        return false;
    if (t->tid == 0) {
        int saved = errno;
        t->tid = (pid_t)syscall(SYS_gettid);
        errno = saved;
    }
    return !cgprof__threads_is_own(t->tid);
}

/* Async-signal-safe (lock-free). Tests: test/unit/sampler/test_heap.c */
void cgprof__heap_record_sigsafe(void *p, size_t n)
{
    struct cgprof__heap_tls *t = &cgprof__heap_tls;
    if (t->busy || !p || !atomic_load_explicit(&sampling, memory_order_relaxed))
        return;
    t->busy = true;
    int saved = errno;
    if (t->tid == 0)
        t->tid = (pid_t)syscall(SYS_gettid);
    record_sigsafe(t, p, n, t->tid);
    errno = saved;
    t->busy = false;
}

/* Async-signal-safe. Called before the real free (so the address cannot
 * be handed out again while it is still in the set). */
bool cgprof__heap_forget_sigsafe(const void *p)
{
    uint32_t ticket;
    if (!maybe_sampled(p) || !set_remove((uint64_t)(uintptr_t)p, &ticket))
        return false;
    /* Freed before the agent took its sample: withdrawn from the ring. */
    if (ticket)
        cgprof__ring_cancel_sigsafe(ticket);
    return true;
}

/* ---- agent side: sites ----------------------------------------------------- */

struct site {
    uint64_t hash;
    uint64_t *pcs;              /* leaf first */
    uint32_t n;
    uint32_t next;              /* bucket chain, 0 = end (ids are 1-based here) */
    bool truncated;
    bool used;
    uint32_t refs;              /* live entries at the last walk */
    double bytes, objects;      /* this data point */
};

static struct site *sites;      /* sites[0] unused; ids 1..nsites */
static uint32_t nsites, sites_cap, free_site;
static uint32_t buckets[SITE_BUCKETS];
static uint64_t pcs[MAX_FRAMES];
static const char *frames[MAX_FRAMES + 1];
static uint64_t seen_samples, seen_lost, seen_full;
static uint64_t capacity_cached;
static unsigned capacity_age;

static uint64_t hash_pcs(const uint64_t *v, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull ^ n;
    for (size_t i = 0; i < n; i++) {
        h ^= v[i];
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h;
}

/* The site id (1-based) of a stack, created when new; 0 on OOM or when
 * the table is full. */
static uint32_t site_id(const uint64_t *v, uint32_t n, bool truncated)
{
    uint64_t h = hash_pcs(v, n) ^ truncated;
    uint32_t b = (uint32_t)(h % SITE_BUCKETS);
    for (uint32_t id = buckets[b]; id; id = sites[id].next)
        if (sites[id].hash == h && sites[id].n == n && sites[id].truncated == truncated &&
            memcmp(sites[id].pcs, v, n * sizeof(*v)) == 0)
            return id;
    uint32_t id = free_site;
    if (id) {
        free_site = sites[id].next;
    } else {
        if (nsites + 1 >= MAX_SITES)
            return 0;
        if (nsites + 1 >= sites_cap) {
            uint32_t cap = sites_cap ? sites_cap * 2 : 256;
            struct site *ns = cgprof_realloc(sites, cap * sizeof(*ns));
            if (!ns)
                return 0;
            memset(ns + sites_cap, 0, (cap - sites_cap) * sizeof(*ns));
            sites = ns;
            sites_cap = cap;
        }
        id = ++nsites;
    }
    struct site *s = &sites[id];
    s->pcs = cgprof_malloc((n ? n : 1) * sizeof(*v));
    if (!s->pcs) {
        s->next = free_site;
        free_site = id;
        return 0;
    }
    memcpy(s->pcs, v, n * sizeof(*v));
    s->hash = h;
    s->n = n;
    s->truncated = truncated;
    s->used = true;
    s->refs = 1;      /* kept until a walk finds it unreferenced */
    s->bytes = s->objects = 0;
    s->next = buckets[b];
    buckets[b] = id;
    return id;
}

static void site_free(uint32_t id)
{
    struct site *s = &sites[id];
    uint32_t b = (uint32_t)(s->hash % SITE_BUCKETS);
    for (uint32_t *pp = &buckets[b]; *pp; pp = &sites[*pp].next) {
        if (*pp == id) {
            *pp = s->next;
            break;
        }
    }
    cgprof_free(s->pcs);
    memset(s, 0, sizeof(*s));
    s->next = free_site;
    free_site = id;
}

/* The range of our own code, whose frames (the interposer, this file) are
 * cut from the leaf end of allocation stacks. */
/* The span of the executable segments of the module holding anchor. */
static void text_range(const void *anchor, uintptr_t *lo_out, uintptr_t *hi_out)
{
    Dl_info di;
    *lo_out = *hi_out = 0;
    if (!anchor || !dladdr(anchor, &di) || !di.dli_fbase)
        return;
    const ElfW(Ehdr) *eh = di.dli_fbase;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
        return;
    uintptr_t base = (uintptr_t)di.dli_fbase, lo = UINTPTR_MAX, hi = 0;
    /* For a shared object dli_fbase is the load bias plus the first
     * segment's vaddr (0 for ours); e_type tells the two apart. */
    uintptr_t bias = eh->e_type == ET_DYN ? base : 0;
    const ElfW(Phdr) *ph = (const ElfW(Phdr) *)(base + eh->e_phoff);
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD || !(ph[i].p_flags & PF_X))
            continue;
        uintptr_t a = bias + ph[i].p_vaddr, b = a + ph[i].p_memsz;
        if (a < lo)
            lo = a;
        if (b > hi)
            hi = b;
    }
    if (lo < hi) {
        *lo_out = lo;
        *hi_out = hi;
    }
}

static void find_own_text(const void *interposers)
{
    void *anchor;
    void (*fn)(void) = cgprof_heap_stop;
    memcpy(&anchor, &fn, sizeof(anchor));
    text_range(anchor, &own_text[0].lo, &own_text[0].hi);
    text_range(interposers, &own_text[1].lo, &own_text[1].hi);
}

static bool own_pc(uint64_t pc)
{
    for (size_t i = 0; i < sizeof(own_text) / sizeof(own_text[0]); i++)
        if (pc >= own_text[i].lo && pc < own_text[i].hi)
            return true;
    return false;
}

/* Heap samples wait here, out of the ring, until the next data point:
 * draining the ring then costs a copy of the live stack bytes, and the
 * many samples whose allocation is freed before their turn (churn) are
 * never unwound. The copies go to one region mapped once and reused from
 * its start after every run: taking them from malloc cost ~20 us each on
 * mallocbench (the agent's arena shrank after each run and faulted its
 * pages in again). When the region is full the queue runs early. Agent
 * thread only. */
#define PENDING_REGION (2u << 20)
struct pending {
    uint32_t next;              /* offset of the next one, 0 = end */
    struct cgprof__sample s;    /* only stack[0..stack_len) is kept */
};
static unsigned char *pending_region;   /* mapped on first use */
static size_t pending_used;             /* 0 = empty; offsets start at 8 */
static uint32_t pending_head, pending_last;

static void attribute_now(const struct cgprof__sample *s, struct heap_entry *e);

static void pending_run(void)
{
    for (uint32_t off = pending_head; off;) {
        struct pending *p = (struct pending *)(pending_region + off);
        struct heap_entry *e = set_find(p->s.heap_addr, p->s.heap_serial);
        if (e)
            attribute_now(&p->s, e);
        off = p->next;
    }
    pending_head = pending_last = 0;
    pending_used = 0;
}

/* Agent thread: a drained heap sample (its ring slot is released right
 * after): queued for attribution, or dropped when already freed. */
void cgprof__heap_attribute(const struct cgprof__sample *s)
{
    if (!s->heap_addr || !set_find(s->heap_addr, s->heap_serial))
        return;                 /* already freed: no live contribution */
    size_t len = s->stack_len <= CGPROF__STACK_COPY ? s->stack_len : CGPROF__STACK_COPY;
    size_t head = offsetof(struct cgprof__sample, stack) + len;
    size_t bytes = (offsetof(struct pending, s) + head + 15) & ~(size_t)15;
    if (!pending_region) {
        void *m = mmap(NULL, PENDING_REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
        pending_region = m == MAP_FAILED ? NULL : m;
    }
    size_t start = pending_used ? pending_used : 16;
    if (pending_region && start + bytes > PENDING_REGION) {
        pending_run();
        start = 16;
    }
    if (!pending_region || start + bytes > PENDING_REGION) {
        struct heap_entry *e = set_find(s->heap_addr, s->heap_serial);
        if (e)
            attribute_now(s, e);
        return;
    }
    struct pending *p = (struct pending *)(pending_region + start);
    memcpy(&p->s, s, head);
    p->next = 0;
    if (pending_last)
        ((struct pending *)(pending_region + pending_last))->next = (uint32_t)start;
    else
        pending_head = (uint32_t)start;
    pending_last = (uint32_t)start;
    pending_used = start + bytes;
}

/* Unwinds a heap sample and gives its set entry a site. */
static void attribute_now(const struct cgprof__sample *s, struct heap_entry *e)
{
    bool complete;
    size_t n = cgprof__unwind(s, pcs, MAX_FRAMES, &complete);
    size_t cut = 0;
    while (cut < n && own_pc(pcs[cut]))
        cut++;
    uint32_t site = SITE_LOST;
    if (n > cut) {
        uint64_t *v = pcs + cut;
        size_t m = n - cut;
        bool truncated = false;
        if (opts.max_stack_depth && m > opts.max_stack_depth) {
            v += m - opts.max_stack_depth;   /* keep the root side, as CPU stacks */
            m = opts.max_stack_depth;
            truncated = true;
        }
        uint32_t id = site_id(v, (uint32_t)m, truncated);
        if (id)
            site = SITE_BASE + id - 1;
    }
    atomic_store_explicit(&e->site, site, memory_order_relaxed);
}

/* ---- agent side: heap figures ---------------------------------------------- */

static uint64_t read_u64_file(const char *path)
{
    char buf[64];
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (n == 0 || buf[0] < '0' || buf[0] > '9')
        return 0;                    /* "max": no limit */
    unsigned long long v = strtoull(buf, NULL, 10);
    return v >= (1ull << 62) ? 0 : (uint64_t)v;   /* v1 "unlimited" is ~2^63 */
}

/* The smallest memory limit of the process's cgroup and its ancestors
 * (v2 memory.max, v1 memory.limit_in_bytes), 0 when there is none. */
static uint64_t cgroup_limit(void)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return 0;
    char line[1024], v2[512] = "", v1[512] = "";
    bool have_v2 = false, have_v1 = false;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        const char *ctrl = c1 + 1, *path = c2 + 1;
        if (strcmp(line, "0") == 0 && *ctrl == '\0') {
            snprintf(v2, sizeof(v2), "%s", path);
            have_v2 = true;
        } else {
            char list[256];
            snprintf(list, sizeof(list), ",%s,", ctrl);
            if (strstr(list, ",memory,")) {
                snprintf(v1, sizeof(v1), "%s", path);
                have_v1 = true;
            }
        }
    }
    fclose(f);
    uint64_t best = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (!(pass == 0 ? have_v1 : have_v2))
            continue;
        char path[512], file[700];
        snprintf(path, sizeof(path), "%s", pass == 0 ? v1 : v2);
        for (;;) {
            size_t len = strlen(path);
            if (len > 0 && path[len - 1] == '/')
                path[--len] = '\0';
            if (pass == 0)
                snprintf(file, sizeof(file), "/sys/fs/cgroup/memory%s/memory.limit_in_bytes", path);
            else
                snprintf(file, sizeof(file), "/sys/fs/cgroup%s/memory.max", path);
            uint64_t v = read_u64_file(file);
            if (v && (!best || v < best))
                best = v;
            char *slash = strrchr(path, '/');
            if (!slash)
                break;
            *slash = '\0';
        }
    }
    return best;
}

static uint64_t mem_total(void)
{
    FILE *f = fopen("/proc/meminfo", "re");
    if (!f)
        return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
            break;
    fclose(f);
    return (uint64_t)kb * 1024u;
}

/* Total capacity: the smallest of the cgroup memory limit, RLIMIT_AS,
 * RLIMIT_DATA and physical memory (a limit above RAM cannot be reached).
 * Tests: test/unit/sampler/test_heap.c, test/integration/heap.sh */
uint64_t cgprof__heap_capacity(void)
{
    uint64_t c[4] = { cgroup_limit(), 0, 0, mem_total() }, best = 0;
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        c[1] = rl.rlim_cur;
    if (getrlimit(RLIMIT_DATA, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        c[2] = rl.rlim_cur;
    for (int i = 0; i < 4; i++)
        if (c[i] && (!best || c[i] < best))
            best = c[i];
    return best;
}

static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    if (!f)
        return 0;
    unsigned long long size = 0, res = 0;
    int got = fscanf(f, "%llu %llu", &size, &res);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return got == 2 && page > 0 ? (uint64_t)res * (uint64_t)page : 0;
}

/* Agent thread: one data point into p. Walks the live set, estimates each
 * site's live bytes and objects, records the sites at or above the
 * threshold, and forgets sites nothing live refers to any more.
 * Tests: test/integration/heap.sh */
int cgprof_heap_snapshot(struct cgprof_profile *p)
{
    if (!started || !set)
        return 0;
    cgprof__modules_refresh(false);
    pending_run();
    uint64_t iv = atomic_load(&interval);
    for (uint32_t id = 1; id <= nsites; id++) {
        sites[id].bytes = sites[id].objects = 0;
        sites[id].refs = 0;
    }
    double unknown_bytes = 0, unknown_objects = 0, total = 0;
    for (size_t i = 0; i < SET_SLOTS; i++) {
        struct heap_entry *e = &set[i];
        uint64_t a1 = atomic_load_explicit(&e->addr, memory_order_acquire);
        if (a1 <= ADDR_RESERVED)
            continue;
        uint64_t size = e->size;
        uint32_t site = atomic_load_explicit(&e->site, memory_order_relaxed);
        if (atomic_load_explicit(&e->addr, memory_order_acquire) != a1)
            continue;
        double b, o;
        cgprof__heap_estimate(size, iv, &b, &o);
        total += b;
        uint32_t id = site >= SITE_BASE ? site - SITE_BASE + 1 : 0;
        if (id && id <= nsites && sites[id].used) {
            sites[id].bytes += b;
            sites[id].objects += o;
            sites[id].refs++;
        } else {
            unknown_bytes += b;
            unknown_objects += o;
        }
    }
    if (capacity_age == 0 || capacity_cached == 0)
        capacity_cached = cgprof__heap_capacity();
    capacity_age = (capacity_age + 1) % CAPACITY_REFRESH;
    struct cgprof_heap_point pt;
    memset(&pt, 0, sizeof(pt));
    pt.time_ms = cgprof_epoch_ms();
    pt.capacity = capacity_cached;
    pt.rss = rss_bytes();
    pt.sampled = (uint64_t)total;
    /* Used space: the sampled live estimate, which costs nothing; RSS when
     * allocations are not sampled. Not glibc's mallinfo2: it walks every
     * free block of every arena under that arena's lock, and one call took
     * 150 ms on mallocreal's dropped index, stalling the program's malloc. */
    pt.used = opts.tracked ? pt.sampled : pt.rss;
    double threshold = (double)pt.capacity * opts.threshold_permille / 1000.0;
    int rc = 0;
    for (uint32_t id = 1; rc == 0 && id <= nsites; id++) {
        struct site *s = &sites[id];
        if (!s->used || s->bytes <= 0 || s->bytes < threshold)
            continue;
        size_t k = 0;
        for (uint32_t i = 0; i < s->n; i++) {
            const char *name = cgprof__modules_frame_name(s->pcs[s->n - 1 - i]);
            frames[k++] = name ? name : "[unknown]";
        }
        if (s->truncated && k)
            frames[k - 1] = "<Truncated>";
        rc = cgprof_profile_heap_add_site(p, frames, k, s->bytes, s->objects);
    }
    if (rc == 0 && unknown_bytes > 0 && unknown_bytes >= threshold) {
        const char *u[1] = { CGPROF_HEAP_UNKNOWN_SITE };
        rc = cgprof_profile_heap_add_site(p, u, 1, unknown_bytes, unknown_objects);
    }
    if (rc == 0)
        rc = cgprof_profile_heap_add_point(p, &pt);
    /* Summary fields: this interval's counts. */
    struct cgprof_heap_summary *h = &p->heap;
    uint64_t smp = atomic_load(&stat_samples), lost = atomic_load(&stat_lost),
             full = atomic_load(&stat_table_full);
    h->samples += smp - seen_samples;
    h->lost += (lost - seen_lost) + (full - seen_full);
    seen_samples = smp;
    seen_lost = lost;
    seen_full = full;
    h->interval_bytes = iv;
    h->threshold_permille = opts.threshold_permille;
    h->tracked = opts.tracked;
    snprintf(h->allocator, sizeof(h->allocator), "%s", allocator_name);
    if (h->lost || !opts.tracked)
        h->incomplete = true;
    for (uint32_t id = 1; id <= nsites; id++)
        if (sites[id].used && sites[id].refs == 0)
            site_free(id);
    return rc;
}

/* ---- lifecycle --------------------------------------------------------------- */

/* Tests: test/unit/sampler/test_heap.c */
int cgprof_heap_start(const struct cgprof_heap_options *o)
{
    if (atomic_load(&running))
        return 0;
    if (!o || o->interval_bytes == 0)
        return CGPROF_EINVAL;
    int rc = cgprof__ring_init();
    if (rc == 0)
        rc = cgprof__heap_set_init();
    if (rc != 0)
        return rc;
    set_clear();
    opts = *o;
    snprintf(allocator_name, sizeof(allocator_name), "%s", o->allocator ? o->allocator : "");
    opts.allocator = allocator_name;
    find_own_text(o->interposers);
    atomic_store(&interval, o->interval_bytes);
    started = true;
    atomic_fetch_add(&epoch, 1);
    atomic_store(&sampling, o->tracked);
    atomic_store(&running, true);
    return 0;
}

void cgprof_heap_stop(void)
{
    atomic_store(&sampling, false);
    atomic_store(&running, false);
}

void cgprof_heap_settled(void)
{
    atomic_store(&settled, true);
}

bool cgprof_heap_running(void)
{
    return atomic_load_explicit(&running, memory_order_relaxed);
}

void cgprof_heap_get_stats(uint64_t *samples, uint64_t *lost, size_t *live)
{
    *samples = atomic_load(&stat_samples);
    *lost = atomic_load(&stat_lost) + atomic_load(&stat_table_full);
    *live = cgprof__heap_set_count();
}

/* fork child: the ring was reset, so entries still waiting for their
 * stack will never get one; this thread's cached id is the parent's. */
void cgprof_heap_atfork_child(void)
{
    cgprof__heap_tls.tid = 0;
    cgprof__heap_tls.bounds_tid = 0;
    for (size_t i = 0; set && i < SET_SLOTS; i++) {
        struct heap_entry *e = &set[i];
        if (atomic_load(&e->addr) > ADDR_RESERVED && atomic_load(&e->site) == SITE_PENDING)
            atomic_store(&e->site, SITE_LOST);
        else if (atomic_load(&e->addr) == ADDR_RESERVED)
            atomic_store(&e->addr, 0);   /* a thread of the parent was inserting */
    }
}
