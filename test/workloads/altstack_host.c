/* altstack_host: threads with small (64 KiB) stacks, half of them with a
 * 16 KiB sigaltstack, raising SIGUSR1 (SA_ONSTACK handler) at themselves
 * while they burn CPU in a moderately deep recursion. Checks its own
 * invariants: the handler runs on the alternate stack when one is set, every
 * raised signal is handled once, memory below the alternate stack is never
 * written (a canary), the alternate stack setting survives, errno is never
 * changed behind the program's back, and the results of the work are right.
 * Usage: altstack_host [seconds=2] [threads=4]. Prints "ok", else the first
 * broken invariant and exits 1. Used by test/integration/host_signals.sh. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOINLINE __attribute__((noinline, noclone))
#define THREAD_STACK (64 * 1024)
#define ALT_SIZE (16 * 1024)
#define CANARY 4096
#define DEPTH 20
#define ERRNO_MAGIC 12345

static double stop_at;
static _Atomic int broken;
static char first_broken[200];
static atomic_flag broken_taken = ATOMIC_FLAG_INIT;

static _Thread_local char *alt_lo, *alt_hi; /* NULL when no altstack */
static _Thread_local volatile unsigned long handled, off_altstack;
static volatile uint64_t sink;

static void set_broken(const char *why)
{
    atomic_store(&broken, 1);
    if (!atomic_flag_test_and_set(&broken_taken))
        snprintf(first_broken, sizeof first_broken, "%s", why);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_sigusr1(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;
    char here;
    (void)sig; (void)si; (void)uc;
    if (alt_lo && (&here < alt_lo || &here >= alt_hi))
        off_altstack++;
    /* Some work on the alternate stack, so profiling signals land here. */
    uint64_t x = (uintptr_t)&here;
    for (int i = 0; i < 5000; i++)
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    sink = x;
    handled++;
    errno = saved;
}

/* Uses about DEPTH * 600 bytes of stack and returns a checksum that only
 * depends on (seed, depth). */
NOINLINE static uint64_t recurse(uint64_t seed, int depth)
{
    volatile unsigned char buf[512];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(seed + i);
    uint64_t x = seed;
    for (int i = 0; i < 3000; i++)
        x = x * 2862933555777941757ULL + 3037000493ULL;
    if (depth > 0)
        x ^= recurse(x, depth - 1);
    return x + buf[depth * 7 % sizeof buf];
}

static void *worker(void *arg)
{
    int idx = (int)(uintptr_t)arg;
    unsigned char *mem = NULL;
    if (idx % 2 == 0) {
        mem = malloc(CANARY + ALT_SIZE);
        if (!mem) {
            set_broken("malloc failed");
            return NULL;
        }
        memset(mem, 0xA5, CANARY + ALT_SIZE);
        stack_t ss = {.ss_sp = mem + CANARY, .ss_size = ALT_SIZE, .ss_flags = 0};
        if (sigaltstack(&ss, NULL) != 0) {
            set_broken("sigaltstack failed");
            return NULL;
        }
        alt_lo = (char *)mem + CANARY;
        alt_hi = alt_lo + ALT_SIZE;
    }
    const uint64_t want = recurse(42, DEPTH);
    unsigned long raised = 0;
    while (now() < stop_at) {
        for (int k = 0; k < 20; k++) {
            errno = ERRNO_MAGIC;
            uint64_t got = recurse(42, DEPTH);
            if (errno != ERRNO_MAGIC)
                set_broken("errno changed during pure computation");
            if (got != want)
                set_broken("computation gave a different result");
        }
        raised++;
        pthread_kill(pthread_self(), SIGUSR1);
    }
    if (handled != raised)
        set_broken("SIGUSR1 handled a different number of times than raised");
    if (off_altstack)
        set_broken("SIGUSR1 handler ran off the alternate stack");
    if (mem) {
        for (size_t i = 0; i < CANARY; i++)
            if (mem[i] != 0xA5) {
                set_broken("memory below the alternate stack was written");
                break;
            }
        stack_t cur;
        if (sigaltstack(NULL, &cur) != 0 || cur.ss_sp != mem + CANARY ||
            cur.ss_size != ALT_SIZE || (cur.ss_flags & (SS_DISABLE | SS_ONSTACK)))
            set_broken("the alternate stack setting changed");
        stack_t off = {.ss_flags = SS_DISABLE};
        sigaltstack(&off, NULL);
        free(mem);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    int nthreads = argc > 2 ? atoi(argv[2]) : 4;
    if (seconds <= 0 || nthreads < 1 || nthreads > 64) {
        fprintf(stderr, "usage: altstack_host [seconds>0] [threads 1..64]\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigusr1;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR1, &sa, NULL) != 0) {
        perror("sigaction");
        return 1;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (pthread_attr_setstacksize(&attr, THREAD_STACK) != 0) {
        fprintf(stderr, "altstack_host: cannot set a 64 KiB stack\n");
        return 1;
    }
    pthread_t tids[64];
    stop_at = now() + seconds;
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&tids[i], &attr, worker, (void *)(uintptr_t)i) != 0) {
            fprintf(stderr, "altstack_host: pthread_create failed\n");
            return 1;
        }
    for (int i = 0; i < nthreads; i++)
        pthread_join(tids[i], NULL);
    pthread_attr_destroy(&attr);
    if (atomic_load(&broken)) {
        printf("FAILED: %s\n", first_broken);
        return 1;
    }
    printf("ok\n");
    return 0;
}
