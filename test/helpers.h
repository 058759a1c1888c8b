/* Shared helpers for the Check unit tests. */
#ifndef CGPROF_TEST_HELPERS_H
#define CGPROF_TEST_HELPERS_H

#include <check.h>
#include <stddef.h>

/* Runs one suite in Check's fork mode; returns the process exit status. */
int cgprof_test_run(Suite *s);

/* A fake environment for getenv-style lookups: set pairs, NULL-terminated
 * ("KEY", "VALUE", ..., NULL). cgprof_test_getenv reads it. */
void cgprof_test_env_set(const char *const *pairs);
const char *cgprof_test_getenv(const char *key);

/* Makes a fresh temporary directory; the path is static storage. */
const char *cgprof_test_tmpdir(void);

/* Copies data into memory that ends exactly at a PROT_NONE page, so a
 * parser that reads one byte too far crashes the test (picohttpparser). */
const char *cgprof_test_guarded_copy(const void *data, size_t len);

#endif
