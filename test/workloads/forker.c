/* forker: the parent burns a little CPU in parent_work(), forks K children
 * (no exec) that each burn about 1 s of CPU in child_work() and exit(0)
 * normally, then burns about 1 s more in parent_work() and waits for them.
 * A profiler must give every child its own fresh profile.
 * Usage: forker [children=3] [child_cpu_seconds=1]. Prints "ok" when every
 * child exited 0. Used by test/integration/fork.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noclone))

static volatile uint64_t sink;

static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Two functions with distinct bodies, so neither can be folded into the
 * other. Each spins until the calling thread used `seconds` of CPU. */
NOINLINE static void child_work(double seconds)
{
    uint64_t x = 3;
    double until = thread_cpu() + seconds;
    while (thread_cpu() < until) {
        for (int i = 0; i < 20000; i++)
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        sink = x;
    }
}

NOINLINE static void parent_work(double seconds)
{
    uint64_t x = 5;
    double until = thread_cpu() + seconds;
    while (thread_cpu() < until) {
        for (int i = 0; i < 20000; i++)
            x = x * 2862933555777941757ULL + 3037000493ULL;
        sink = x;
    }
}

int main(int argc, char **argv)
{
    int k = argc > 1 ? atoi(argv[1]) : 3;
    double child_s = argc > 2 ? atof(argv[2]) : 1.0;
    if (k < 1 || k > 64 || child_s <= 0) {
        fprintf(stderr, "usage: forker [children 1..64] [child_cpu_seconds>0]\n");
        return 2;
    }
    parent_work(0.3);
    fflush(stdout);
    pid_t pids[64];
    for (int i = 0; i < k; i++) {
        pids[i] = fork();
        if (pids[i] < 0) {
            perror("fork");
            return 1;
        }
        if (pids[i] == 0) {
            child_work(child_s);
            exit(0);
        }
    }
    parent_work(1.0);
    int bad = 0;
    for (int i = 0; i < k; i++) {
        int st;
        if (waitpid(pids[i], &st, 0) != pids[i] || !WIFEXITED(st) ||
            WEXITSTATUS(st) != 0) {
            fprintf(stderr, "forker: child %d did not exit 0 (status 0x%x)\n",
                    (int)pids[i], st);
            bad = 1;
        }
    }
    if (bad)
        return 1;
    printf("ok\n");
    return 0;
}
