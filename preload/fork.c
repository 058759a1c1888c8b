/* fork without exec: the child gets a fresh profile under its own pid, a new
 * agent thread and a re-armed timer for the thread that forked; the parent
 * carries on. The prepare handler waits (bounded) for the agent to finish
 * its current step so the child never inherits half-updated state; if that
 * times out, the child does not profile. Registered once (registrations
 * accumulate, as libuv notes). */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "preload_int.h"

static bool have_work_lock;

static void prepare(void)
{
    int saved = errno;
    have_work_lock = false;
    if (cgprof__agent_running()) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 500000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        have_work_lock = pthread_mutex_timedlock(&cgprof__agent.work, &ts) == 0;
    }
    errno = saved;
}

static void parent(void)
{
    int saved = errno;
    if (have_work_lock)
        pthread_mutex_unlock(&cgprof__agent.work);
    errno = saved;
}

static void child(void)
{
    int saved = errno;
    if (cgprof__agent_running() && !have_work_lock)
        cgprof__agent.thread_started = false;   /* inconsistent: stay quiet */
    cgprof__agent_after_fork_child();
    errno = saved;
}

void cgprof__fork_register(void)
{
    static bool registered;
    if (!registered && pthread_atfork(prepare, parent, child) == 0)
        registered = true;
}
