/* The sample ring: a fixed array of slots that signal handlers fill and the
 * agent thread drains. Lock-free: a handler claims a slot with one CAS
 * (FREE -> WRITING), fills it and publishes it (READY); the agent reads
 * READY slots and frees them. A heap sample whose block is freed before
 * the agent took it (most of them in allocation churn) is cancelled by the
 * freeing thread (READY -> FREE), so the agent is woken for, and reads,
 * only what it needs; the agent takes such a slot first (READY -> TAKEN).
 * Low slots are preferred so that at usual rates only a few slots' pages
 * are ever touched (RSS stays small).
 * Handler-reachable: only _sigsafe functions, atomics and syscalls here. */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sampler_int.h"

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "lock-free atomic int required");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "lock-free atomic long long required");

static struct cgprof__sample *ring;
/* Slot states live apart from the 64 KiB slots: scanning them touches one
 * cache line, not one page per slot. */
static _Atomic unsigned states[CGPROF__RING_SLOTS];
static _Atomic uint64_t ring_dropped;
static _Atomic unsigned ring_ready;       /* slots published, not released */
static _Atomic bool wake_pending;
static _Atomic int wake_fd = -1;          /* eventfd the agent polls */

/* Maps the slots once; the memory is never returned (a late signal may
 * still look at it). Tests: test/unit/sampler/test_ring.c */
int cgprof__ring_init(void)
{
    if (ring)
        return 0;
    void *p = mmap(NULL, sizeof(struct cgprof__sample) * CGPROF__RING_SLOTS,
                   PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    ring = p;
    atomic_store(&wake_fd, eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    return 0;
}

/* Async-signal-safe: wakes the agent (write(2) on an eventfd). */
void cgprof__ring_wake_sigsafe(void)
{
    int fd = atomic_load(&wake_fd);
    if (fd >= 0 && !atomic_exchange(&wake_pending, true)) {
        uint64_t one = 1;
        ssize_t w = write(fd, &one, sizeof(one));
        (void)w;
    }
}

int cgprof__ring_wake_fd(void)
{
    return atomic_load(&wake_fd);
}

/* Read first, then clear the flag: the other order loses a wake-up for
 * good when a handler sets the flag and writes between the two (the read
 * then eats its write, and the flag, still set, stops every later one). */
void cgprof__ring_wake_clear(void)
{
    uint64_t v;
    int fd = atomic_load(&wake_fd);
    if (fd >= 0) {
        ssize_t r = read(fd, &v, sizeof(v));
        (void)r;
    }
    atomic_store(&wake_pending, false);
}

static inline unsigned with_state(unsigned w, unsigned st)
{
    return (w & ~3u) | st;
}

/* Async-signal-safe. */
struct cgprof__sample *cgprof__ring_claim_sigsafe(void)
{
    struct cgprof__sample *r = ring;
    if (!r)
        return NULL;
    for (unsigned i = 0; i < CGPROF__RING_SLOTS; i++) {
        unsigned w = atomic_load_explicit(&states[i], memory_order_relaxed);
        if (CGPROF__SLOT_STATE(w) == CGPROF__SLOT_FREE &&
            atomic_compare_exchange_strong_explicit(&states[i], &w,
                                                    with_state(w + 4u, CGPROF__SLOT_WRITING),
                                                    memory_order_acquire,
                                                    memory_order_relaxed))
            return &r[i];
    }
    atomic_fetch_add_explicit(&ring_dropped, 1, memory_order_relaxed);
    return NULL;
}

/* Async-signal-safe. */
void cgprof__ring_publish_sigsafe(struct cgprof__sample *s)
{
    _Atomic unsigned *st = &states[s - ring];
    unsigned w = atomic_load_explicit(st, memory_order_relaxed);
    atomic_store_explicit(st, with_state(w, CGPROF__SLOT_READY), memory_order_release);
    /* Half full: wake the agent now rather than at its next timeout. Only
     * the publish that crosses the mark writes: the agent drains all that
     * is ready, and while it drains the count stays above the mark (a
     * write from every publish then cost 0.75 % of a malloc-heavy
     * program's time with the heap summary on). A full ring wakes it from
     * the claim path too. */
    if (atomic_fetch_add_explicit(&ring_ready, 1, memory_order_relaxed) + 1 ==
        CGPROF__RING_SLOTS / 2)
        cgprof__ring_wake_sigsafe();
}

uint32_t cgprof__ring_ticket_sigsafe(const struct cgprof__sample *s)
{
    unsigned i = (unsigned)(s - ring);
    unsigned w = atomic_load_explicit(&states[i], memory_order_relaxed);
    return ((w >> 2) << 8 | i) & 0xffffffffu;
}

bool cgprof__ring_cancel_sigsafe(uint32_t ticket)
{
    unsigned i = ticket & 0xffu;
    if (!ring || ticket == 0 || i >= CGPROF__RING_SLOTS)
        return false;
    unsigned w = atomic_load_explicit(&states[i], memory_order_relaxed);
    if (CGPROF__SLOT_STATE(w) != CGPROF__SLOT_READY || ((w >> 2) & 0xffffffu) != ticket >> 8)
        return false;
    if (!atomic_compare_exchange_strong_explicit(&states[i], &w,
                                                 with_state(w, CGPROF__SLOT_FREE),
                                                 memory_order_acq_rel, memory_order_relaxed))
        return false;
    atomic_fetch_sub_explicit(&ring_ready, 1, memory_order_relaxed);
    return true;
}

struct cgprof__sample *cgprof__ring_next_ready(unsigned *cursor)
{
    if (!ring)
        return NULL;
    for (unsigned i = *cursor; i < CGPROF__RING_SLOTS; i++) {
        unsigned w = atomic_load_explicit(&states[i], memory_order_acquire);
        if (CGPROF__SLOT_STATE(w) == CGPROF__SLOT_READY) {
            *cursor = i + 1;
            return &ring[i];
        }
    }
    *cursor = CGPROF__RING_SLOTS;
    return NULL;
}

bool cgprof__ring_take(struct cgprof__sample *s)
{
    _Atomic unsigned *st = &states[s - ring];
    unsigned w = atomic_load_explicit(st, memory_order_acquire);
    return CGPROF__SLOT_STATE(w) == CGPROF__SLOT_READY &&
           atomic_compare_exchange_strong_explicit(st, &w, with_state(w, CGPROF__SLOT_TAKEN),
                                                   memory_order_acquire, memory_order_relaxed);
}

void cgprof__ring_release(struct cgprof__sample *s)
{
    _Atomic unsigned *st = &states[s - ring];
    unsigned w = atomic_load_explicit(st, memory_order_relaxed);
    atomic_fetch_sub_explicit(&ring_ready, 1, memory_order_relaxed);
    atomic_store_explicit(st, with_state(w, CGPROF__SLOT_FREE), memory_order_release);
}

uint64_t cgprof__ring_dropped(void)
{
    return atomic_load_explicit(&ring_dropped, memory_order_relaxed);
}

void cgprof__ring_reset(void)
{
    if (!ring)
        return;
    for (unsigned i = 0; i < CGPROF__RING_SLOTS; i++)
        atomic_store(&states[i], with_state(atomic_load(&states[i]), CGPROF__SLOT_FREE));
    atomic_store(&ring_dropped, 0);
    atomic_store(&ring_ready, 0);
    atomic_store(&wake_pending, false);
    /* the eventfd is shared with the parent after fork: get our own */
    int old = atomic_exchange(&wake_fd, eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (old >= 0)
        close(old);
}
