/* The sampler's lifecycle and the agent-side drain: start (signal, ring,
 * unwinder, timers), stop, periodic maintenance (thread scan, signal
 * ownership), and turning captured samples into stacks of frame names
 * that are aggregated into the profile. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <time.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sampler_int.h"

#define MAX_FRAMES 4096

static _Atomic bool running;
static struct cgprof_sampler_options opts;
static uint64_t samples_total;      /* weighted: timer periods */
static uint64_t captures_total;     /* signals that produced a stack */
static uint64_t unwind_errors;
static uint64_t pcs[MAX_FRAMES];
static const char *frames[MAX_FRAMES + 1];

/* Each thread's latest leaf in the current profile, for tail records. */
#define LAST_LEAF_SLOTS 4096
static struct {
    pid_t tid;
    struct cgprof_node *leaf;
} last_leaf[LAST_LEAF_SLOTS];

static unsigned leaf_slot(pid_t tid)
{
    return ((unsigned)tid * 2654435761u) % LAST_LEAF_SLOTS;
}

void cgprof_sampler_forget_stacks(void)
{
    cgprof__states_forget();
    memset(last_leaf, 0, sizeof(last_leaf));
}

bool cgprof_sampler_running(void)
{
    return atomic_load_explicit(&running, memory_order_relaxed);
}

int cgprof_sampler_start(const struct cgprof_sampler_options *o)
{
    if (cgprof_sampler_running())
        return 0;
    opts = *o;
    if (opts.cpu_hz == 0 || opts.cpu_hz > 1000)
        return CGPROF_EINVAL;
    if (opts.max_stack_depth == 0 || opts.max_stack_depth > MAX_FRAMES)
        opts.max_stack_depth = MAX_FRAMES;
    int rc = cgprof__ring_init();
    if (rc)
        return rc;
    cgprof__threads_set_engine((enum cgprof__engine)opts.engine);
    cgprof__threads_init(opts.cpu_hz, 0);
    int sig = cgprof__signal_install();
    if (sig < 0)
        return sig;
    cgprof__signal_set_active(true);
    atomic_store(&running, true);
    /* The caller's own thread is armed now; the others by the first scan. */
    cgprof__threads_add_self(sig);
    return 0;
}

void cgprof_sampler_stop(void)
{
    if (!cgprof_sampler_running())
        return;
    atomic_store(&running, false);
    cgprof__signal_set_active(false);
    cgprof__threads_disarm_all();
}

void cgprof_sampler_pause(bool paused)
{
    if (cgprof_sampler_running())
        cgprof__signal_set_active(!paused);
}

void cgprof_sampler_set_max_depth(unsigned depth)
{
    if (depth > 0 && depth <= MAX_FRAMES)
        opts.max_stack_depth = depth;
}

void cgprof_sampler_set_agent_tid(pid_t tid)
{
    cgprof__unwind_thread_has_full_mask();
    cgprof__threads_set_agent(tid);
}

void cgprof_sampler_thread_begin(void)
{
    if (cgprof_sampler_running())
        cgprof__threads_add_self(cgprof__signal_current());
}

void cgprof_sampler_thread_end(void)
{
    if (cgprof__signal_current() > 0)
        cgprof__threads_remove_self();
}

void cgprof_sampler_maintain(void)
{
    if (!cgprof_sampler_running())
        return;
    if (!cgprof__signal_still_ours()) {
        int old = cgprof__signal_current();
        int sig = cgprof__signal_install();
        if (sig < 0) {
            cgprof_warn("the program took signal %d and no free signal is left; "
                        "CPU sampling stops", old);
            cgprof_sampler_stop();
            return;
        }
        cgprof_info("the program installed its own handler for signal %d; "
                    "CPU sampling moved to signal %d", old, sig);
        cgprof__threads_rearm_all(sig);
    }
    cgprof__threads_scan(cgprof__signal_current());
}

void cgprof_sampler_atfork_child(void)
{
    cgprof__threads_after_fork();
    cgprof__ring_reset();
    cgprof_heap_atfork_child();
    samples_total = 0;
    captures_total = 0;
    unwind_errors = 0;
    cgprof_sampler_forget_stacks();
    if (cgprof_sampler_running())
        cgprof__threads_add_self(cgprof__signal_current());
}

/* Unwinds, names and aggregates one sample. Frames are ordered root first;
 * past max_stack_depth the leaf side is cut and "<Truncated>" marks it, as
 * the CodeGuru agents do. */
static uint64_t aggregate_one(struct cgprof_profile *p, const struct cgprof__sample *s)
{
    bool complete;
    size_t n = cgprof__unwind(s, pcs, MAX_FRAMES, &complete);
    if (!complete)
        unwind_errors++;
    if (n == 0)
        return 0;
    size_t keep = n, k = 0;
    bool truncated = false;
    if (keep > opts.max_stack_depth) {
        keep = opts.max_stack_depth;
        truncated = true;
    }
    for (size_t i = 0; i < keep; i++) {
        const char *name = cgprof__modules_frame_name(pcs[n - 1 - i]);
        frames[k++] = name ? name : "[unknown]";
    }
    if (truncated)
        frames[k - 1] = "<Truncated>";
    struct cgprof_node *leaf = NULL;
    if (cgprof_profile_add_stack_leaf(p, frames, k, CGPROF_COUNTER_RUNNABLE, s->weight,
                                      &leaf) != 0)
        return 0;
    unsigned slot = leaf_slot(s->tid);
    last_leaf[slot].tid = s->tid;
    last_leaf[slot].leaf = leaf;
    samples_total += s->weight;
    captures_total++;
    return s->weight;
}

/* A thread's unsampled tail goes to its latest stack, if it is still in
 * this profile (a direct-mapped table: a collision just drops the tail). */
static uint64_t aggregate_tail(const struct cgprof__sample *s)
{
    unsigned slot = leaf_slot(s->tid);
    if (last_leaf[slot].tid != s->tid || !last_leaf[slot].leaf)
        return 0;
    last_leaf[slot].leaf->counts[CGPROF_COUNTER_RUNNABLE] += s->weight;
    last_leaf[slot].tid = 0;
    samples_total += s->weight;
    return s->weight;
}

size_t cgprof_sampler_drain(struct cgprof_profile *p)
{
    static bool unwinder_ready;
    unsigned probe = 0;
    if (!cgprof__ring_next_ready(&probe))
        return 0;               /* nothing to do: do not even set up libunwind */
    if (!unwinder_ready) {
        if (cgprof__unwind_init() != 0)
            return 0;
        unwinder_ready = true;
    }
    size_t n = 0;
    bool refreshed = false;
    struct cgprof__sample *s;
    /* Stacks first, then tails, so a tail finds its thread's last stack;
     * heap samples last (they only name allocation sites). */
    for (int kind = CGPROF__SAMPLE_STACK; kind <= CGPROF__SAMPLE_HEAP; kind++) {
        unsigned cursor = 0;
        while ((s = cgprof__ring_next_ready(&cursor)) != NULL) {
            if (s->kind != kind)
                continue;
            if (kind == CGPROF__SAMPLE_TAIL) {
                n += aggregate_tail(s);
            } else if (kind == CGPROF__SAMPLE_HEAP) {
                /* A heap sample may be cancelled by the thread freeing
                 * its block until the agent takes it. */
                if (!cgprof__ring_take(s))
                    continue;
                if (!refreshed) {
                    cgprof__modules_refresh(false);
                    refreshed = true;
                }
                if (s->kind == CGPROF__SAMPLE_HEAP)
                    cgprof__heap_attribute(s);
                else if (s->kind == CGPROF__SAMPLE_TAIL)   /* the slot was reused */
                    n += aggregate_tail(s);
                else
                    n += aggregate_one(p, s);
            } else {
                if (!refreshed) {
                    cgprof__modules_refresh(false);
                    refreshed = true;
                }
                n += aggregate_one(p, s);
            }
            cgprof__ring_release(s);
        }
    }
    return n;
}

void cgprof_sampler_wait(unsigned timeout_ms)
{
    struct pollfd pfd = { cgprof__ring_wake_fd(), POLLIN, 0 };
    if (pfd.fd < 0 || cgprof__ring_init() != 0) {
        struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
        return;
    }
    if (poll(&pfd, 1, (int)timeout_ms) > 0)
        cgprof__ring_wake_clear();
}

void cgprof_sampler_wake(void)
{
    cgprof__ring_wake_sigsafe();
}

bool cgprof_sampler_pending(void)
{
    unsigned probe = 0;
    return cgprof__ring_next_ready(&probe) != NULL;
}

void cgprof_sampler_get_stats(struct cgprof_sampler_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->samples = samples_total;
    st->captures = captures_total;
    st->dropped_ring_full = cgprof__ring_dropped();
    st->unwind_errors = unwind_errors;
    cgprof__threads_stats(&st->threads_live, &st->threads_seen);
    st->signo = cgprof_sampler_running() ? cgprof__signal_current() : 0;
}
