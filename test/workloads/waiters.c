/* One thread in each way of waiting, each in its own function, so a
 * thread-state sampler can be checked case by case: nanosleep, epoll_wait
 * with a timeout, poll, select, a blocking pipe read, a contended mutex and
 * a condition variable. The program counts EINTR returns and early
 * wake-ups (a timed wait that returned before its time) and prints
 * "eintr N early N"; it exits 1 if either is non-zero.
 * Usage: waiters [seconds=5]. Used by test/integration/states.sh. */
#include <errno.h>
#include <stdbool.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noclone))
#define SLICE_MS 50

static double seconds = 5;
static double start;
static _Atomic unsigned eintr_count, early_count;
static int pipe_never[2], pipe_release[2];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t cond_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static _Atomic int done;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool running(void)
{
    return now() - start < seconds;
}

/* A timed wait of SLICE_MS that returned EINTR or more than 1 ms early. */
static void check(int rc, double t0)
{
    if (rc < 0 && errno == EINTR)
        atomic_fetch_add(&eintr_count, 1);
    else if (now() - t0 < SLICE_MS / 1000.0 - 0.001)
        atomic_fetch_add(&early_count, 1);
}

NOINLINE static void *wait_nanosleep(void *a)
{
    (void)a;
    while (running()) {
        struct timespec ts = { 0, SLICE_MS * 1000000L };
        double t0 = now();
        check(nanosleep(&ts, NULL), t0);
    }
    return NULL;
}

NOINLINE static void *wait_epoll(void *a)
{
    (void)a;
    int ep = epoll_create1(0);
    while (running()) {
        struct epoll_event ev;
        double t0 = now();
        check(epoll_wait(ep, &ev, 1, SLICE_MS), t0);
    }
    close(ep);
    return NULL;
}

NOINLINE static void *wait_poll(void *a)
{
    (void)a;
    while (running()) {
        struct pollfd p = { pipe_never[0], POLLIN, 0 };
        double t0 = now();
        check(poll(&p, 1, SLICE_MS), t0);
    }
    return NULL;
}

NOINLINE static void *wait_select(void *a)
{
    (void)a;
    while (running()) {
        fd_set r;
        FD_ZERO(&r);
        FD_SET(pipe_never[0], &r);
        struct timeval tv = { 0, SLICE_MS * 1000 };
        double t0 = now();
        check(select(pipe_never[0] + 1, &r, NULL, NULL, &tv), t0);
    }
    return NULL;
}

NOINLINE static void *wait_pipe_read(void *a)
{
    (void)a;
    char c;
    ssize_t n;
    while ((n = read(pipe_release[0], &c, 1)) < 0)
        if (errno == EINTR)
            atomic_fetch_add(&eintr_count, 1);
    return NULL;
}

NOINLINE static void *wait_mutex(void *a)
{
    (void)a;
    pthread_mutex_lock(&lock);
    pthread_mutex_unlock(&lock);
    return NULL;
}

NOINLINE static void *wait_cond(void *a)
{
    (void)a;
    pthread_mutex_lock(&cond_lock);
    while (!atomic_load(&done))
        pthread_cond_wait(&cond, &cond_lock);
    pthread_mutex_unlock(&cond_lock);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        seconds = atof(argv[1]);
    if (pipe(pipe_never) || pipe(pipe_release))
        return 2;
    start = now();
    pthread_mutex_lock(&lock);      /* held all along: wait_mutex blocks */
    void *(*fns[])(void *) = { wait_nanosleep, wait_epoll, wait_poll, wait_select,
                                wait_pipe_read, wait_mutex, wait_cond };
    pthread_t t[7];
    for (int i = 0; i < 7; i++)
        pthread_create(&t[i], NULL, fns[i], NULL);
    while (running()) {
        struct timespec ts = { 0, 20000000L };
        nanosleep(&ts, NULL);
    }
    pthread_mutex_unlock(&lock);
    if (write(pipe_release[1], "x", 1) != 1)
        return 2;
    pthread_mutex_lock(&cond_lock);
    atomic_store(&done, 1);
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&cond_lock);
    for (int i = 0; i < 7; i++)
        pthread_join(t[i], NULL);
    unsigned e = atomic_load(&eintr_count), early = atomic_load(&early_count);
    printf("eintr %u early %u\n", e, early);
    return e || early ? 1 : 0;
}
