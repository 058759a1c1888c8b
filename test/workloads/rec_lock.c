/* rec_lock: triggers the lock-contention recommendation. Four threads
 * fight over one mutex guarding a tiny critical section for S seconds, so
 * their time goes to pthread_mutex_lock/unlock and the futex waits and
 * wakes beneath them. Usage: rec_lock [seconds=1.5]. Prints "ok".
 * Used by test/integration/recommendations.sh. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NTHREADS 4

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static volatile uint64_t shared;
static double stop_at;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *worker(void *arg)
{
    (void)arg;
    while (now() < stop_at) {
        for (int i = 0; i < 1000; i++) {
            pthread_mutex_lock(&lock);
            shared++;
            pthread_mutex_unlock(&lock);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t t[NTHREADS];
    stop_at = now() + (argc > 1 ? atof(argv[1]) : 1.5);
    for (int i = 0; i < NTHREADS; i++)
        if (pthread_create(&t[i], NULL, worker, NULL) != 0)
            return 1;
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    printf("ok\n");
    return 0;
}
