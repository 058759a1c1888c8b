/* The agent thread: drains samples every 10 ms, keeps the thread list
 * fresh, watches its own CPU use and the kill switch, and every reporting
 * interval (and at exit) closes the profile and hands it to the sinks.
 * It runs with every signal blocked so the host's signals never land on
 * it, and it is never sampled. */
#include <dlfcn.h>
#include <errno.h>
#include <gnu/libc-version.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../sampler/sampler.h"
#include "../uploader/uploader.h"
#include "preload_int.h"

#define IDLE_WAIT_MS 100
#define MAINTAIN_MS 1000
#define BUDGET_CHECK_MS 1000
/* The official agents look for the kill switch at most once a minute; a
 * stat() a second is cheap, and stops a misbehaving profiler sooner. */
#define KILL_SWITCH_CHECK_MS 1000
#define UPLOAD_FLUSH_MS 1500     /* within the 2 s exit bound */
#define STATE_COUNTERS ((1u << CGPROF_COUNTER_BLOCKED) | (1u << CGPROF_COUNTER_WAITING) | \
                        (1u << CGPROF_COUNTER_TIMED_WAITING) | (1u << CGPROF_COUNTER_IDLE))

static void heap_end(void);

struct cgprof__agent cgprof__agent = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
    .work = PTHREAD_MUTEX_INITIALIZER,
};

static void interval_begin(struct cgprof__agent *a)
{
    struct cgprof_sampler_stats st;
    cgprof_sampler_get_stats(&st);
    a->interval_start_ns = cgprof_now_ns();
    a->interval_start_ms = cgprof_epoch_ms();
    a->interval_frozen_ns = 0;
    a->interval_cpu_ns = cgprof_process_cpu_ns();
    a->interval_agent_ns = cgprof_thread_cpu_ns();
    a->interval_samples = 0;
    a->interval_state_ticks = 0;
    atomic_store(&a->idle, true);
    a->interval_dropped = st.dropped_ring_full + st.unwind_errors;
    a->thread_count_sum = 0;
    a->thread_count_ticks = 0;
}

/* Time profiled since the interval began: wall time less the time the
 * process was frozen (Lambda between invocations; 0 elsewhere). */
static uint64_t active_ns(const struct cgprof__agent *a, uint64_t now_ns)
{
    uint64_t wall = now_ns - a->interval_start_ns;
    return wall > a->interval_frozen_ns ? wall - a->interval_frozen_ns : 0;
}

static void fill_metadata(struct cgprof__agent *a)
{
    struct cgprof_profile *p = &a->profile;
    struct cgprof_sampler_stats st;
    cgprof_sampler_get_stats(&st);
    uint64_t now_ms = cgprof_epoch_ms();
    p->start_ms = a->interval_start_ms;
    p->end_ms = now_ms > p->start_ms ? now_ms : p->start_ms + 1;
    p->duration_ms = active_ns(a, cgprof_now_ns()) / 1000000u;
    p->cpu_time_s = (double)(cgprof_process_cpu_ns() - a->interval_cpu_ns) / 1e9;
    p->num_threads = a->thread_count_ticks ?
        a->thread_count_sum / (double)a->thread_count_ticks : (double)st.threads_live;
    /* A sampling tick, as in the official agents, is one look at every
     * thread (the thread-state sampler); CPU samples are per thread. */
    p->num_times_sampled = a->interval_state_ticks ? a->interval_state_ticks
                                                   : a->interval_samples;
    memset(p->sample_weights, 0, sizeof(p->sample_weights));
    p->sample_weights[CGPROF_COUNTER_RUNNABLE] = (double)a->cfg.cpu_sampling_hz;
    if (a->interval_state_ticks)
        for (int c = 0; c < CGPROF_NCOUNTERS; c++)
            if (STATE_COUNTERS & (1u << c))
                p->sample_weights[c] = 1000.0 / a->cfg.sampling_interval_ms;
    p->agent_cpu_ms = (cgprof_thread_cpu_ns() - a->interval_agent_ns) / 1000000u;
    p->agent_memory_mb = (unsigned)(cgprof_profile_memory(p) >> 20);
    uint64_t dropped = st.dropped_ring_full + st.unwind_errors;
    p->samples_dropped = dropped - a->interval_dropped;
    p->agent_start_ms = a->agent_start_ms;
    p->pid = (int)getpid();
    snprintf(p->group_name, sizeof(p->group_name), "%s",
             a->cfg.profiling_group_name[0] ? a->cfg.profiling_group_name
                                            : cgprof_program_name());
    snprintf(p->runtime_version, sizeof(p->runtime_version), "glibc-%s",
             gnu_get_libc_version());
    snprintf(p->fleet_instance_id, sizeof(p->fleet_instance_id), "%s", a->fleet_id);
}

/* Hands the finished profile to the sinks: the CodeGuru uploader (which
 * encodes on this thread and ships on its own) and/or the file sink. When
 * the uploader is not running the profile goes to outputDir instead, so
 * nothing is lost; while CodeGuru has profiling turned off
 * (ConfigureAgent's shouldProfile) nothing is sent. */
static void deliver(struct cgprof__agent *a)
{
    bool to_file = (a->cfg.sinks & CGPROF_SINK_FILE) != 0;
    if ((a->cfg.sinks & CGPROF_SINK_PYROSCOPE) && cgprof_pyroscope_submit(&a->profile) != 0)
        to_file = true;
    if (a->cfg.sinks & CGPROF_SINK_CODEGURU) {
        struct cgprof_uploader_agent_config ac;
        if (cgprof_uploader_agent_config(&ac) && !ac.should_profile)
            cgprof_debug("CodeGuru has profiling turned off; profile not sent");
        else if (cgprof_uploader_submit(&a->profile) != 0)
            to_file = true;
    }
    if (!to_file)
        return;
    char path[1024];
    size_t cap = (size_t)a->cfg.max_output_mb << 20;
    int rc = cgprof_file_sink_write(&a->profile, a->cfg.output_dir, cap, path, sizeof(path));
    if (rc != 0)
        cgprof_warn("cannot write profile to %s: %s", a->cfg.output_dir, cgprof_strerror(rc));
    else
        cgprof_info("profile written to %s", path);
}

/* Closes the interval: profiles without samples are not written. */
static void roll(struct cgprof__agent *a)
{
    if (a->interval_samples > 0 || a->interval_state_ticks > 0) {
        fill_metadata(a);
        deliver(a);
    }
    cgprof_profile_reset(&a->profile);
    cgprof_sampler_forget_stacks();
    interval_begin(a);
}

static bool kill_switch_present(const struct cgprof__agent *a)
{
    struct stat st;
    return a->cfg.kill_switch_path[0] && stat(a->cfg.kill_switch_path, &st) == 0;
}

/* ConfigureAgent's answer, merged under the user's settings by the
 * uploader: applied once it changes. Returns the new thread-state period. */
static uint64_t apply_service_config(struct cgprof__agent *a, uint64_t state_period)
{
    static uint64_t seen_generation;
    static bool paused;
    struct cgprof_uploader_agent_config ac;
    if (!(a->cfg.sinks & CGPROF_SINK_CODEGURU) || !cgprof_uploader_agent_config(&ac) ||
        ac.generation == seen_generation)
        return state_period;
    seen_generation = ac.generation;
    if (ac.reporting_interval_ms)
        a->cfg.reporting_interval_ms = ac.reporting_interval_ms;
    if (ac.minimum_time_for_reporting_ms)
        a->cfg.minimum_time_for_reporting_ms = ac.minimum_time_for_reporting_ms;
    if (ac.cpu_limit_percent)
        a->cfg.cpu_limit_percent = ac.cpu_limit_percent;
    if (ac.max_stack_depth) {
        a->cfg.max_stack_depth = ac.max_stack_depth;
        cgprof_sampler_set_max_depth(ac.max_stack_depth);
    }
    if (ac.sampling_interval_ms >= 10)
        a->cfg.sampling_interval_ms = ac.sampling_interval_ms;
    if (paused != !ac.should_profile) {
        paused = !ac.should_profile;
        cgprof_sampler_pause(paused);
        cgprof_info("CodeGuru turned profiling %s", paused ? "off" : "on");
    }
    return (uint64_t)a->cfg.sampling_interval_ms * 1000000u;
}

/* CPU budget: the agent thread's CPU over wall time since the interval
 * began, as a percentage of one core. */
static bool over_budget(const struct cgprof__agent *a, uint64_t now_ns)
{
    uint64_t wall = active_ns(a, now_ns);
    if (wall < 5000000000ull)
        return false;
    uint64_t cpu = cgprof_thread_cpu_ns() - a->interval_agent_ns;
    return cpu * 100 > wall * a->cfg.cpu_limit_percent;
}

static void *agent_main(void *arg)
{
    struct cgprof__agent *a = arg;
    cgprof_sampler_set_agent_tid((pid_t)syscall(SYS_gettid));
    pthread_setname_np(pthread_self(), "cgprof-agent");
    pthread_mutex_lock(&a->work);
    interval_begin(a);
    cgprof_sampler_maintain();
    pthread_mutex_unlock(&a->work);
    uint64_t last_maintain = cgprof_now_ns(), last_budget = last_maintain,
             last_kill = last_maintain;
    uint64_t state_period = (uint64_t)a->cfg.sampling_interval_ms * 1000000u;
    /* first thread-state sample at a random point of the first interval */
    uint64_t next_states = last_maintain + cgprof_random_u64() % state_period;
    for (;;) {
        /* Sleep until the ring fills up, a request comes, or the next
         * periodic job is due (at most IDLE_WAIT_MS). */
        uint64_t t = cgprof_now_ns(), due = next_states;
        if (last_maintain + MAINTAIN_MS * 1000000ull < due)
            due = last_maintain + MAINTAIN_MS * 1000000ull;
        unsigned wait_ms = due > t ? (unsigned)((due - t) / 1000000u) + 1 : 0;
        if (wait_ms > IDLE_WAIT_MS)
            wait_ms = IDLE_WAIT_MS;
        if (!a->stop_requested && !a->flush_requested)
            cgprof_sampler_wait(wait_ms);
        if (a->lambda)
            a->interval_frozen_ns += cgprof__lambda_frozen_ns(t, cgprof_now_ns(), wait_ms);
        pthread_mutex_lock(&a->lock);
        bool stop = a->stop_requested, flush = a->flush_requested;
        a->flush_requested = false;
        pthread_mutex_unlock(&a->lock);

        pthread_mutex_lock(&a->work);
        a->interval_samples += cgprof_sampler_drain(&a->profile);
        if (a->interval_samples)
            atomic_store(&a->idle, false);
        uint64_t now = cgprof_now_ns();
        if (stop) {
            if (a->cfg.heap_summary_enabled)
                cgprof_heap_snapshot(&a->profile);   /* the state at the end */
            roll(a);
            pthread_mutex_unlock(&a->work);
            break;
        }
        if (now - last_maintain >= MAINTAIN_MS * 1000000ull) {
            last_maintain = now;
            state_period = apply_service_config(a, state_period);
            cgprof_sampler_maintain();
            struct cgprof_sampler_stats st;
            cgprof_sampler_get_stats(&st);
            a->thread_count_sum += st.threads_live;
            a->thread_count_ticks++;
        }
        if (now >= next_states) {
            next_states += state_period;
            if (next_states <= now)
                next_states = now + state_period;
            struct cgprof_uploader_agent_config acfg;
            bool service_off = (a->cfg.sinks & CGPROF_SINK_CODEGURU) &&
                               cgprof_uploader_agent_config(&acfg) && !acfg.should_profile;
            if (!service_off) {
                cgprof_sampler_sample_states(&a->profile, a->cfg.max_stack_depth);
                if (cgprof_heap_running())
                    cgprof_heap_snapshot(&a->profile);
                a->interval_state_ticks++;
                atomic_store(&a->idle, false);
            }
        }
        if (now - last_kill >= KILL_SWITCH_CHECK_MS * 1000000ull) {
            last_kill = now;
            if (kill_switch_present(a)) {
                cgprof_warn("kill switch %s found; profiling stopped (what was "
                            "collected is kept)", a->cfg.kill_switch_path);
                a->kill_switch_hit = true;
                heap_end();
                cgprof_sampler_stop();
                a->interval_samples += cgprof_sampler_drain(&a->profile);
                roll(a);
                pthread_mutex_unlock(&a->work);
                break;
            }
        }
        if (now - last_budget >= BUDGET_CHECK_MS * 1000000ull) {
            last_budget = now;
            if (over_budget(a, now)) {
                cgprof_warn("agent CPU use above cpuLimitPercent=%u%%; profiling stopped "
                            "after writing what was collected", a->cfg.cpu_limit_percent);
                heap_end();
                cgprof_sampler_stop();
                roll(a);
                pthread_mutex_unlock(&a->work);
                break;
            }
        }
        size_t mem_cap = (size_t)a->cfg.memory_limit_mb << 20;
        if (flush || active_ns(a, now) >= a->cfg.reporting_interval_ms * 1000000ull ||
            cgprof_profile_memory(&a->profile) > mem_cap)
            roll(a);
        pthread_mutex_unlock(&a->work);
    }
    /* Pending uploads get what is left of the exit bound, then the spool. */
    cgprof_pyroscope_stop_request(UPLOAD_FLUSH_MS);   /* both sinks flush at once */
    cgprof_uploader_stop(UPLOAD_FLUSH_MS);
    cgprof_pyroscope_stop(UPLOAD_FLUSH_MS);
    pthread_mutex_lock(&a->lock);
    a->exited = true;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

/* Starts the agent thread with every signal blocked. */
static int spawn(struct cgprof__agent *a)
{
    cgprof__pthread_create_fn create = cgprof__real_pthread_create();
    if (!create)
        return CGPROF_ENOTFOUND;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    a->stop_requested = a->flush_requested = a->exited = false;
    atomic_store(&a->idle, true);
    /* 1 MiB of stack is plenty for unwinding, symbolizing and encoding,
     * and cheaper to map than the default 8 MiB. */
    pthread_attr_t attr;
    bool have_attr = pthread_attr_init(&attr) == 0;
    if (have_attr)
        pthread_attr_setstacksize(&attr, 1u << 20);
    int rc = create(&a->thread, have_attr ? &attr : NULL, agent_main, a);
    if (have_attr)
        pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return -rc;
    a->thread_started = true;
    return 0;
}

void (*cgprof__heap_detect)(struct cgprof_heap_options *o, char *name, size_t n);

/* libc.so.6's own definition of name (not whichever comes first: a
 * preloaded tcmalloc also defines __libc_malloc and friends), or NULL. */
void *cgprof__libc_sym(const char *name)
{
    void *libc = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY), *p = NULL;
    if (libc) {
        p = dlsym(libc, name);
        dlclose(libc);
    }
    return p;
}

/* heapSummaryEnabled: detect which malloc the program gets and start the
 * heap sampler, which samples allocations only where our interposers are
 * the program's malloc; without them (libcgprof.so rather than
 * libcgprof-heap.so) the heap figures are still taken. */
static void heap_begin(struct cgprof__agent *a)
{
    static char allocator[64];
    struct cgprof_heap_options ho = {
        .interval_bytes = a->cfg.heap_sampling_interval_bytes,
        .threshold_permille = a->cfg.heap_summary_threshold_permille,
        .max_stack_depth = a->cfg.max_stack_depth,
    };
    if (cgprof__heap_detect) {
        cgprof__heap_detect(&ho, allocator, sizeof(allocator));
    } else {
        /* Named glibc when the program's malloc is libc's own. */
        void *first = dlsym(RTLD_DEFAULT, "malloc");
        snprintf(allocator, sizeof(allocator), "%s",
                 first && first == cgprof__libc_sym("malloc") ? "glibc" : "unknown");
        ho.allocator = allocator;
        cgprof_warn("heapSummaryEnabled: allocation sites need the allocation interposers of "
                    "libcgprof-heap.so: preload it instead of libcgprof.so (cgprof-exec and "
                    "cgprof run do when the options ask for the heap summary); capacity and RSS "
                    "are still recorded");
    }
    int rc = cgprof_heap_start(&ho);
    if (rc != 0)
        cgprof_warn("cannot start the heap summary: %s", cgprof_strerror(rc));
}

/* Stops sampling allocations; sampled entries stay in the set. */
static void heap_end(void)
{
    if (cgprof_heap_running())
        cgprof_heap_stop();
}

int cgprof__agent_start(void)
{
    struct cgprof__agent *a = &cgprof__agent;
    if (a->thread_started)
        return 0;
    if (kill_switch_present(a)) {
        cgprof_warn("kill switch %s found; not profiling", a->cfg.kill_switch_path);
        return CGPROF_EDISABLED;
    }
    if (cgprof_profile_init(&a->profile) != 0)
        return CGPROF_ENOMEM;
    a->agent_start_ms = cgprof_epoch_ms();
    a->pid = getpid();
    cgprof_uuid4(a->fleet_id);
    a->lambda = cgprof__lambda_detect();
    if (a->lambda)
        cgprof_info("AWS Lambda detected: time frozen between invocations is not profiled");
    struct cgprof_sampler_options so = {
        .cpu_hz = a->cfg.cpu_sampling_hz,
        .max_stack_depth = a->cfg.max_stack_depth,
        .engine = a->cfg.cpu_engine,
    };
    int rc = cgprof_sampler_start(&so);
    if (rc != 0) {
        cgprof_warn("cannot start CPU sampling: %s", cgprof_strerror(rc));
        cgprof_profile_cleanup(&a->profile);
        return rc;
    }
    if (a->cfg.heap_summary_enabled)
        heap_begin(a);
    if (a->cfg.sinks & (CGPROF_SINK_CODEGURU | CGPROF_SINK_PYROSCOPE))
        cgprof_uploader_set_thread_hook(cgprof_sampler_exclude_self);
    if (a->cfg.sinks & CGPROF_SINK_CODEGURU)
        cgprof_uploader_start(&a->cfg);
    if (a->cfg.sinks & CGPROF_SINK_PYROSCOPE)
        cgprof_pyroscope_start(&a->cfg);
    rc = spawn(a);
    if (rc != 0) {
        cgprof_warn("cannot start the agent thread: %s", cgprof_strerror(rc));
        cgprof_uploader_stop(0);
        cgprof_pyroscope_stop(0);
        heap_end();
        cgprof_sampler_stop();
        cgprof_profile_cleanup(&a->profile);
    }
    return rc;
}

bool cgprof__agent_running(void)
{
    return cgprof__agent.thread_started;
}

/* True when the current interval holds nothing worth writing: a process
 * that ends before its first sample (most short commands) then exits
 * without waiting for the agent thread. */
static bool nothing_to_flush(const struct cgprof__agent *a)
{
    return atomic_load(&a->idle) && !cgprof_sampler_pending();
}

void cgprof__agent_stop(unsigned timeout_ms)
{
    struct cgprof__agent *a = &cgprof__agent;
    if (!a->thread_started)
        return;
    heap_end();
    cgprof_sampler_stop();
    if (a->at_exit && nothing_to_flush(a))
        return;
    pthread_mutex_lock(&a->lock);
    a->stop_requested = true;
    pthread_cond_broadcast(&a->cond);
    cgprof_sampler_wake();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    int rc = 0;
    while (!a->exited && rc == 0)
        rc = pthread_cond_timedwait(&a->cond, &a->lock, &ts);
    bool exited = a->exited;
    pthread_mutex_unlock(&a->lock);
    if (exited)
        pthread_join(a->thread, NULL);
    else
        cgprof_warn("the final profile was not written within %u ms", timeout_ms);
    a->thread_started = false;
}

int cgprof__agent_flush(void)
{
    struct cgprof__agent *a = &cgprof__agent;
    if (!a->thread_started)
        return CGPROF_EINVAL;
    pthread_mutex_lock(&a->lock);
    a->flush_requested = true;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
    cgprof_sampler_wake();
    return 0;
}

void cgprof__agent_stop_at_exit(unsigned timeout_ms)
{
    struct cgprof__agent *a = &cgprof__agent;
    if (!a->thread_started || a->pid != getpid())
        return;                 /* not running, or a vfork/clone child */
    cgprof_sampler_stop();
    if (nothing_to_flush(a))
        return;
    if (pthread_mutex_trylock(&a->lock) != 0)
        return;
    a->stop_requested = true;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
    cgprof_sampler_wake();
    struct timespec step = { 0, 1000000L };
    for (unsigned waited = 0; waited < timeout_ms && !atomic_load(&a->exited); waited++)
        nanosleep(&step, NULL);
}

/* fork child: the agent thread did not survive; the parent's profile
 * belongs to the parent (it is abandoned here, not freed, since the child
 * shares nothing with it). Start over with this process's own. */
void cgprof__agent_after_fork_child(void)
{
    struct cgprof__agent *a = &cgprof__agent;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    pthread_mutex_init(&a->work, NULL);
    if (!a->thread_started)
        return;
    a->thread_started = false;
    a->pid = getpid();
    memset(&a->profile, 0, sizeof(a->profile));
    cgprof_sampler_atfork_child();
    if (cgprof_profile_init(&a->profile) != 0 || spawn(a) != 0) {
        cgprof_sampler_stop();
        return;
    }
    a->agent_start_ms = cgprof_epoch_ms();
    cgprof_uuid4(a->fleet_id);
}
