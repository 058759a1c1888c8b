/* N threads parked on condition variables for S seconds: the cost of
 * thread-state sampling on a mostly idle process (make bench).
 * Usage: idlethreads [threads=200] [seconds=10]. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int done;

__attribute__((noinline)) static void *park(void *a)
{
    (void)a;
    pthread_mutex_lock(&m);
    while (!done)
        pthread_cond_wait(&c, &m);
    pthread_mutex_unlock(&m);
    return NULL;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 200;
    int secs = argc > 2 ? atoi(argv[2]) : 10;
    pthread_t *t = calloc((size_t)n, sizeof(*t));
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, park, NULL);
    sleep((unsigned)secs);
    pthread_mutex_lock(&m);
    done = 1;
    pthread_cond_broadcast(&c);
    pthread_mutex_unlock(&m);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    printf("ok\n");
    return 0;
}
