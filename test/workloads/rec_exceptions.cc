/* rec_exceptions: triggers the exception-unwind recommendation. Throws and
 * catches an exception through a few frames for every item, for S seconds:
 * exceptions used as control flow on a hot path. Usage:
 * rec_exceptions [seconds=1.5]. Prints "ok".
 * Used by test/integration/recommendations.sh. */
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <time.h>

static double now()
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) static int parse(int v)
{
    if (v % 2 == 0)
        throw std::invalid_argument("even");
    return v;
}

__attribute__((noinline)) static int level2(int v) { return parse(v) + 1; }
__attribute__((noinline)) static int level1(int v) { return level2(v) + 1; }

int main(int argc, char **argv)
{
    double stop_at = now() + (argc > 1 ? atof(argv[1]) : 1.5);
    unsigned long errors = 0, sum = 0;
    for (int i = 0; now() < stop_at; i++) {
        for (int k = 0; k < 100; k++) {
            try {
                sum += (unsigned long)level1(i * 100 + k);
            } catch (const std::invalid_argument &) {
                errors++;
            }
        }
    }
    std::printf("ok %lu\n", (errors + sum) > 0 ? 1ul : 0ul);
    return 0;
}
