/* sigprof_host: a program that profiles itself the old way: its own SIGPROF
 * handler (sigaction) and setitimer(ITIMER_PROF, 10 ms) while it burns about
 * 2 s of CPU. A preloaded profiler must leave it its signal: the handler
 * must still be ours at the end and the ticks must keep coming.
 * Usage: sigprof_host [cpu_seconds=2]. Prints "sigprof_host: ok" and exits
 * 0 when at least half the expected ticks arrived and the handler is still
 * installed; details go to stderr. Used by test/integration/host_signals.sh. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define NOINLINE __attribute__((noinline, noclone))

static volatile sig_atomic_t ticks;
static volatile uint64_t sink;

static void on_sigprof(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;
    (void)sig; (void)si; (void)uc;
    ticks++;
    errno = saved;
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Burns until this thread has used `seconds` of CPU time. */
NOINLINE static void burn(double seconds)
{
    uint64_t x = 1;
    double until = clock_s(CLOCK_THREAD_CPUTIME_ID) + seconds;
    while (clock_s(CLOCK_THREAD_CPUTIME_ID) < until) {
        for (int i = 0; i < 20000; i++)
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        sink = x;
    }
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    if (seconds <= 0) {
        fprintf(stderr, "usage: sigprof_host [cpu_seconds>0]\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigprof;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPROF, &sa, NULL) != 0) {
        perror("sigaction");
        return 1;
    }
    struct itimerval it = {{0, 10000}, {0, 10000}};
    double cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    if (setitimer(ITIMER_PROF, &it, NULL) != 0) {
        perror("setitimer");
        return 1;
    }
    burn(seconds);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_PROF, &off, NULL);
    double used = clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    long expected = (long)(used / 0.010);
    long got = ticks;

    struct sigaction now;
    sigaction(SIGPROF, NULL, &now);
    int still_ours = (now.sa_flags & SA_SIGINFO) && now.sa_sigaction == on_sigprof;
    int plausible = got * 2 >= expected && expected > 0;
    fprintf(stderr, "sigprof_host: %ld ticks for %.3f s of process CPU "
            "(expected ~%ld), handler %s\n", got, used, expected,
            still_ours ? "still installed" : "REPLACED");
    if (!still_ours) {
        printf("sigprof_host: FAILED: our SIGPROF handler was replaced\n");
        return 1;
    }
    if (!plausible) {
        printf("sigprof_host: FAILED: implausible tick count\n");
        return 1;
    }
    printf("sigprof_host: ok\n");
    return 0;
}
