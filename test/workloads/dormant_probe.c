/* dormant_probe: prints what a dormant preload must leave untouched, as
 * main() sees it: errno, the number of threads, the open file descriptors
 * and the SIGPROF disposition. Its output must be the same with and
 * without a preload that refused its options.
 * Usage: dormant_probe. Used by test/integration/dormant.sh. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static int count_entries(const char *path, int skip_fd)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (skip_fd && atoi(e->d_name) == dirfd(d))
            continue;
        n++;
    }
    closedir(d);
    return n;
}

int main(void)
{
    int e = errno;
    struct sigaction sa;
    sigaction(SIGPROF, NULL, &sa);
    printf("errno at main: %d\n", e);
    printf("threads: %d\n", count_entries("/proc/self/task", 0));
    printf("open fds: %d\n", count_entries("/proc/self/fd", 1));
    printf("SIGPROF handler: %s\n",
           sa.sa_handler == SIG_DFL ? "default" :
           sa.sa_handler == SIG_IGN ? "ignored" : "installed");
    return 0;
}
