/* eintr_check: threads that sit in nanosleep, poll, select, epoll_wait and
 * a blocking read on a pipe, counting every EINTR they get, while the main
 * thread burns CPU. None of these calls may fail with EINTR because of a
 * profiler: blocked threads must never be signalled (some of these calls
 * return EINTR even with SA_RESTART).
 * Usage: eintr_check [seconds=3]. Prints "eintr N"; exits 1 if N > 0.
 * Used by test/integration/eintr.sh. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noclone))

static double stop_at;
static _Atomic unsigned long eintr_count, calls;
static const char *const call_names[] = {"nanosleep", "poll", "select", "epoll_wait", "read"};
static _Atomic unsigned long eintr_by_call[5];
static int pipefd[2];
static volatile uint64_t sink;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void count(int which, int rc)
{
    atomic_fetch_add(&calls, 1);
    if (rc < 0 && errno == EINTR) {
        atomic_fetch_add(&eintr_count, 1);
        atomic_fetch_add(&eintr_by_call[which], 1);
    }
}

static void *in_nanosleep(void *a)
{
    (void)a;
    while (now() < stop_at) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        count(0, nanosleep(&ts, NULL));
    }
    return NULL;
}

static void *in_poll(void *a)
{
    (void)a;
    while (now() < stop_at)
        count(1, poll(NULL, 0, 20));
    return NULL;
}

static void *in_select(void *a)
{
    (void)a;
    while (now() < stop_at) {
        struct timeval tv = {0, 20000};
        count(2, select(0, NULL, NULL, NULL, &tv));
    }
    return NULL;
}

static void *in_epoll(void *a)
{
    (void)a;
    int ep = epoll_create1(0);
    if (ep < 0) {
        perror("epoll_create1");
        return NULL;
    }
    struct epoll_event ev;
    while (now() < stop_at)
        count(3, epoll_wait(ep, &ev, 1, 20));
    close(ep);
    return NULL;
}

/* Blocks in read() until main writes a byte (every ~20 ms) or closes. */
static void *in_read(void *a)
{
    (void)a;
    char c;
    for (;;) {
        ssize_t n = read(pipefd[0], &c, 1);
        count(4, n < 0 ? -1 : 0);
        if (n == 0)
            break;
    }
    return NULL;
}

NOINLINE static void burn_main(void)
{
    uint64_t x = 1;
    double next_write = now() + 0.02;
    while (now() < stop_at) {
        for (int i = 0; i < 20000; i++)
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        sink = x;
        if (now() >= next_write) {
            if (write(pipefd[1], "x", 1) != 1)
                perror("write");
            next_write += 0.02;
        }
    }
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 3.0;
    if (seconds <= 0) {
        fprintf(stderr, "usage: eintr_check [seconds>0]\n");
        return 2;
    }
    if (pipe(pipefd) != 0) {
        perror("pipe");
        return 1;
    }
    void *(*fns[])(void *) = {in_nanosleep, in_poll, in_select, in_epoll, in_read};
    enum { N = sizeof fns / sizeof fns[0] };
    pthread_t tids[N];
    stop_at = now() + seconds;
    for (int i = 0; i < N; i++)
        if (pthread_create(&tids[i], NULL, fns[i], NULL) != 0) {
            fprintf(stderr, "eintr_check: pthread_create failed\n");
            return 1;
        }
    burn_main();
    close(pipefd[1]);
    for (int i = 0; i < N; i++)
        pthread_join(tids[i], NULL);
    fprintf(stderr, "eintr_check: %lu blocking calls\n", atomic_load(&calls));
    unsigned long n = atomic_load(&eintr_count);
    for (int i = 0; i < N; i++)
        if (atomic_load(&eintr_by_call[i]))
            fprintf(stderr, "eintr_check: %s: %lu EINTR\n", call_names[i],
                    atomic_load(&eintr_by_call[i]));
    printf("eintr %lu\n", n);
    return n ? 1 : 0;
}
