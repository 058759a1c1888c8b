/* rec_syscall: triggers the syscall-storm recommendation. Writes one byte
 * at a time to /dev/null and reads one byte at a time from /dev/zero for
 * S seconds. Usage: rec_syscall [seconds=1.5]. Prints "ok".
 * Used by test/integration/recommendations.sh. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    double stop_at = now() + (argc > 1 ? atof(argv[1]) : 1.5);
    int out = open("/dev/null", O_WRONLY), in = open("/dev/zero", O_RDONLY);
    char c = 'x';
    if (out < 0 || in < 0)
        return 1;
    while (now() < stop_at) {
        for (int i = 0; i < 1000; i++) {
            if (write(out, &c, 1) != 1 || read(in, &c, 1) != 1)
                return 1;
            c = 'x';
        }
    }
    close(out);
    close(in);
    printf("ok\n");
    return 0;
}
