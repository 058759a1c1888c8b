/* rec_regex: triggers the regex-compile recommendation. Compiles the same
 * pattern for every line it matches, for S seconds, the classic mistake of
 * calling regcomp inside the loop. Usage: rec_regex [seconds=1.5].
 * Prints "ok". Used by test/integration/recommendations.sh. */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    static const char *lines[] = { "GET /index.html HTTP/1.1", "user=alice id=42",
                                   "2026-12-07T10:00:00Z error: disk full" };
    double stop_at = now() + (argc > 1 ? atof(argv[1]) : 1.5);
    unsigned long hits = 0;
    while (now() < stop_at) {
        for (int i = 0; i < 100; i++) {
            regex_t re;
            if (regcomp(&re, "^([0-9]{4})-([0-9]{2})-([0-9]{2})T[0-9:]+Z (error|warn): (.*)$",
                        REG_EXTENDED) != 0)
                return 1;
            hits += regexec(&re, lines[i % 3], 0, NULL, 0) == 0;
            regfree(&re);
        }
    }
    printf("ok %lu\n", hits > 0 ? 1ul : 0ul);
    return 0;
}
