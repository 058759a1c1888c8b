/* Declarations shared by the files of preload/ only. */
#ifndef CGPROF_PRELOAD_INT_H
#define CGPROF_PRELOAD_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <stdbool.h>
#include <stdint.h>

#include "../profile/profile.h"
#include "preload.h"

/* The one agent of this process. Fields below `lock` are guarded by it. */
struct cgprof__agent {
    struct cgprof_config cfg;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop_requested;
    bool flush_requested;
    _Atomic bool exited;
    _Atomic bool idle;              /* the interval has nothing to write yet */
    bool at_exit;                   /* stopping because the process ends */
    pid_t pid;                      /* process the agent belongs to */
    /* Held by the agent thread while it works on shared state, and by the
     * fork prepare handler, so a child never inherits a half-updated
     * profile or unwinder cache. */
    pthread_mutex_t work;
    /* Owned by the agent thread: */
    struct cgprof_profile profile;
    uint64_t interval_start_ns;
    uint64_t interval_start_ms;
    uint64_t interval_cpu_ns;       /* process CPU at interval start */
    uint64_t interval_agent_ns;     /* agent thread CPU at interval start */
    uint64_t interval_samples;
    uint64_t interval_state_ticks;  /* thread-state sampling ticks */
    uint64_t interval_dropped;
    double thread_count_sum;
    uint64_t thread_count_ticks;
    uint64_t agent_start_ms;
    char fleet_id[37];
    bool kill_switch_hit;
    bool lambda;                    /* on AWS Lambda: frozen time is not profiled */
    uint64_t interval_frozen_ns;    /* time frozen since interval start (Lambda) */
};

extern struct cgprof__agent cgprof__agent;

/* agent.c */
int cgprof__agent_start(void);
/* Stops the agent thread, flushing within timeout_ms; idempotent. */
void cgprof__agent_stop(unsigned timeout_ms);
int cgprof__agent_flush(void);
/* From _exit/_Exit (possibly in a signal handler): asks the agent for its
 * final profile and waits at most timeout_ms, taking no lock that could
 * already be held; does nothing in a vfork child or another process. */
void cgprof__agent_stop_at_exit(unsigned timeout_ms);
bool cgprof__agent_running(void);
void cgprof__agent_after_fork_child(void);

/* interpose.c */
typedef int (*cgprof__pthread_create_fn)(pthread_t *, const pthread_attr_t *,
                                          void *(*)(void *), void *);
cgprof__pthread_create_fn cgprof__real_pthread_create(void);

/* heap.c: the malloc family interposers, in libcgprof-heap.so only. */
struct cgprof_heap_options;
/* Which malloc the program gets: fills o's allocator fields (name into
 * name[0..n)) and logs it once. Set by heap.c where it is linked in; NULL
 * in libcgprof.so, which has no interposers. */
extern void (*cgprof__heap_detect)(struct cgprof_heap_options *o, char *name, size_t n);
/* agent.c: libc.so.6's own definition of name, or NULL. */
void *cgprof__libc_sym(const char *name);

/* fork.c */
void cgprof__fork_register(void);

/* lambda.c */
/* A wait that overran its timeout by more than this counts as a freeze. */
#define CGPROF__FREEZE_SLACK_MS 300
bool cgprof__lambda_detect(void);
uint64_t cgprof__lambda_frozen_ns(uint64_t before_ns, uint64_t after_ns, unsigned wait_ms);

/* init.c */
/* Loads the configuration and starts everything; used by the constructor
 * and cgprof_start(). */
int cgprof__preload_start(const char *options);

#endif
