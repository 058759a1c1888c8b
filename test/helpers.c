/* Shared helpers for the Check unit tests: a runner, a fake environment,
 * temp dirs and guard-page buffers. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "helpers.h"

int cgprof_test_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

static const char *const *fake_env;

void cgprof_test_env_set(const char *const *pairs)
{
    fake_env = pairs;
}

const char *cgprof_test_getenv(const char *key)
{
    for (const char *const *p = fake_env; p && p[0]; p += 2)
        if (strcmp(p[0], key) == 0)
            return p[1];
    return NULL;
}

const char *cgprof_test_tmpdir(void)
{
    static char path[64];
    strcpy(path, "/tmp/cgprof-test-XXXXXX");
    return mkdtemp(path);
}

const char *cgprof_test_guarded_copy(const void *data, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (len + page - 1) / page + 1;
    char *base = mmap(NULL, pages * page, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    mprotect(base + (pages - 1) * page, page, PROT_NONE);
    char *start = base + (pages - 1) * page - len;
    memcpy(start, data, len);
    return start;
}
