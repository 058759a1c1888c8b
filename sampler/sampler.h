/* sampler/: per-thread CPU timers and their signal handler, stack capture,
 * unwinding (DWARF CFI via libunwind, on the agent thread), symbolization
 * and aggregation into a struct cgprof_profile. The handler only copies
 * registers and the top of the stack into a lock-free ring; everything else
 * runs on the agent thread that calls cgprof_sampler_drain(). */
#ifndef CGPROF_SAMPLER_H
#define CGPROF_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../profile/profile.h"

struct cgprof_sampler_options {
    unsigned cpu_hz;            /* per-thread CPU-time sampling rate, 1..1000 */
    unsigned max_stack_depth;   /* frames kept; deeper stacks get a marker */
    int engine;                 /* 0 auto, 1 perf, 2 timer (cpuEngine) */
};

struct cgprof_sampler_stats {
    uint64_t samples;           /* timer periods aggregated (weighted) */
    uint64_t captures;          /* stacks captured (one per signal) */
    uint64_t dropped_ring_full; /* handler found no free slot */
    uint64_t unwind_errors;     /* stacks cut short */
    uint64_t threads_seen;      /* threads that got a timer */
    unsigned threads_live;
    int signo;                  /* signal in use, 0 when stopped */
};

/* Installs the handler on a free signal (SIGPROF if unused, else a free
 * real-time signal), arms a timer for every thread of the process (except
 * the agent) and prepares the unwinder. Returns 0 or a negative error. */
int cgprof_sampler_start(const struct cgprof_sampler_options *opts);

/* Deletes every timer; the handler stays installed (never reset to
 * SIG_DFL) but ignores late signals. */
void cgprof_sampler_stop(void);

bool cgprof_sampler_running(void);

/* Pauses or resumes capture (CodeGuru's shouldProfile); timers stay armed
 * and the handler returns at once while paused. */
void cgprof_sampler_pause(bool paused);
/* Changes the frame cap (the service's MaxStackDepth). */
void cgprof_sampler_set_max_depth(unsigned depth);

/* The agent thread's id: it is never given a timer. */
void cgprof_sampler_set_agent_tid(pid_t tid);
/* Marks the calling thread as the profiler's own (e.g. the upload
 * thread): never sampled, never counted in thread states. */
void cgprof_sampler_exclude_self(void);

/* Agent thread: one thread-state sample of every thread of the process
 * that is blocked (running threads belong to the CPU sampler), added to p
 * under BLOCKED, WAITING, TIMED_WAITING or IDLE with its stack, taken
 * without signalling the thread. Returns the threads recorded. */
size_t cgprof_sampler_sample_states(struct cgprof_profile *p, size_t max_depth);

/* Agent thread: unwinds, symbolizes and aggregates every pending sample
 * into p. Returns the number of timer periods aggregated: a signal that
 * arrives late (timer overrun) counts for every period it stands for. */
size_t cgprof_sampler_drain(struct cgprof_profile *p);

/* Agent thread: finds threads we do not know yet (/proc/self/task, e.g.
 * raw clone) and arms them; forgets threads that exited; notices when the
 * host took our signal and moves to another one. */
void cgprof_sampler_maintain(void);

/* Called on a new thread before its start routine (pthread_create
 * interposer) and when it exits. Cheap no-ops when not running. */
void cgprof_sampler_thread_begin(void);
void cgprof_sampler_thread_end(void);

/* fork child: forget every thread but the caller, re-arm its timer. */
void cgprof_sampler_atfork_child(void);

void cgprof_sampler_get_stats(struct cgprof_sampler_stats *st);

/* True when captured samples wait in the ring. */
bool cgprof_sampler_pending(void);

/* Agent thread: sleeps until the sample ring is half full, someone calls
 * cgprof_sampler_wake(), or timeout_ms pass. */
void cgprof_sampler_wait(unsigned timeout_ms);
/* Any thread (async-signal-safe): ends a cgprof_sampler_wait early. */
void cgprof_sampler_wake(void);

/* The profile passed to drain was reset: forget node pointers into it. */
void cgprof_sampler_forget_stacks(void);

/* ---- heap sampling (heap.c) -------------------------------------------
 * heapSummaryEnabled: the malloc family interposers (preload/interpose.c)
 * call the hot-path helpers below; the agent drains heap samples with the
 * CPU samples and takes a heap data point every sampling interval. */

struct cgprof_heap_options {
    uint64_t interval_bytes;      /* Poisson mean (heapSamplingIntervalBytes) */
    unsigned threshold_permille;  /* heapSummaryThresholdPermille */
    unsigned max_stack_depth;
    const char *allocator;        /* "glibc" or the module providing malloc */
    bool tracked;                 /* the program's malloc is our interposer */
    const void *interposers;      /* an address in the interposers' library */
};

/* Maps the address set and filter (once, never unmapped) and starts
 * sampling allocations; needs the sampler's ring (started here if not).
 * Returns 0 or a negative error. */
int cgprof_heap_start(const struct cgprof_heap_options *o);
/* Stops sampling; frees keep working (they find nothing). */
void cgprof_heap_stop(void);
bool cgprof_heap_running(void);
void cgprof_heap_get_stats(uint64_t *samples, uint64_t *lost, size_t *live);

/* Per-thread state of the sampled path; initial-exec TLS, so reading it
 * never allocates (a preloaded library's TLS is static). */
struct cgprof__heap_tls {
    uint64_t rng;
    uintptr_t stack_lo, stack_hi; /* known stack bounds of this thread */
    pid_t tid, bounds_tid;
    uint32_t epoch;               /* sampling start the countdown belongs to */
    bool init, busy;
};
extern __thread struct cgprof__heap_tls cgprof__heap_tls __attribute__((tls_model("initial-exec")));
extern uint16_t *cgprof__heap_filter;
#define CGPROF__HEAP_FILTER_BITS 16
#define CGPROF__HEAP_SET_BITS 15

/* ---- for the malloc family interposers of libcgprof-heap.so ---------------
 * They keep each thread's countdown of bytes to its next sample point and
 * call these (exported from libcgprof.so) only when it runs out or when a
 * freed block may be a sampled one. All three are async-signal-safe,
 * lock-free and allocation-free, and leave errno alone. */

/* A thread's countdown while allocations are not sampled: it comes back
 * after this many bytes and may then find sampling started. */
#define CGPROF_HEAP_OFF_BUDGET ((int64_t)1 << 20)

/* A sampled block always lies at an address that is 0 or 16 modulo 4096
 * (the interposers move it there), so free's fast path needs no memory
 * access: any other address cannot be a sampled block. */
#define CGPROF_HEAP_MARK_MASK ((uintptr_t)0xfef)
static inline bool cgprof_heap_marked(const void *p)
{
    return ((uintptr_t)p & CGPROF_HEAP_MARK_MASK) == 0;
}

/* The calling thread's countdown *budget fell to zero or below on an
 * allocation of n bytes (or was never set): sets the next countdown and
 * returns true when this allocation is to be sampled, i.e. placed by
 * cgprof_heap_marked's rule and given to cgprof__heap_record_sigsafe.
 * Never true for the profiler's own threads, inside the sampler (a host
 * signal handler allocating in the middle of a record), or before the
 * constructor settled whether the heap summary runs (until then the
 * countdown stays at zero). */
bool cgprof__heap_due_sigsafe(int64_t *budget, size_t n);
/* Records the sampled allocation p of n bytes: its stack and its entry in
 * the set of live sampled blocks. */
void cgprof__heap_record_sigsafe(void *p, size_t n);
/* p (a marked address) is being freed: forgets it if it was sampled. Must
 * run before the real free. True when it was. */
bool cgprof__heap_forget_sigsafe(const void *p);
/* The constructor has settled whether the heap summary runs (called once
 * it has, whatever the outcome). */
void cgprof_heap_settled(void);

static inline size_t cgprof__heap_filter_index(const void *p)
{
    return (size_t)((((uintptr_t)p >> 4) * 0x9e3779b97f4a7c15ull) >> (64 - CGPROF__HEAP_FILTER_BITS));
}

/* Agent thread: one heap data point (capacity, used, RSS, live estimate
 * per allocation site) into p. Returns 0 or CGPROF_ENOMEM. */
int cgprof_heap_snapshot(struct cgprof_profile *p);
/* fork child: pending samples are gone with the ring. */
void cgprof_heap_atfork_child(void);

#endif
