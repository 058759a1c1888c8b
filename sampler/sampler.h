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

#endif
