/* botocore's "standard" retry mode, which the official agents use: which
 * failures are retried, the jittered exponential backoff and the retry
 * quota. The loop that applies them is in codeguru.c. */
#include <string.h>

#include "uploader_int.h"

#define QUOTA_INITIAL 500
#define RETRY_COST 5
#define TIMEOUT_RETRY_COST 10
#define NO_RETRY_INCREMENT 1
#define MAX_BACKOFF_S 20

/* Tests: test/unit/uploader/test_retry.c */
void cgprof__retry_quota_init(struct cgprof__retry_quota *q)
{
    q->tokens = QUOTA_INITIAL;
}

/* Tests: test/unit/uploader/test_retry.c */
bool cgprof__retry_is_retryable(int rc, int status, const char *code)
{
    if (rc != 0 && rc != CGPROF_EHTTP)
        return rc != CGPROF_EINVAL && rc != CGPROF_ENOMEM && rc != CGPROF_EAUTH &&
               rc != CGPROF_ETLS;
    static const char *const codes[] = {
        /* transient */
        "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete",
        /* throttling */
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
        "TooManyRequestsException", "ProvisionedThroughputExceededException",
        "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
        "LimitExceededException", "RequestThrottled", "SlowDown", "EC2ThrottledException",
    };
    for (size_t i = 0; code && i < CGPROF_ARRAY_SIZE(codes); i++)
        if (strcmp(code, codes[i]) == 0)
            return true;
    return status == 500 || status == 502 || status == 503 || status == 504 || status == 429;
}

/* Tests: test/unit/uploader/test_retry.c */
bool cgprof__retry_quota_acquire(struct cgprof__retry_quota *q, int rc)
{
    int cost = rc == CGPROF_ETIMEOUT ? TIMEOUT_RETRY_COST : RETRY_COST;
    if (q->tokens < cost)
        return false;
    q->tokens -= cost;
    return true;
}

/* Tests: test/unit/uploader/test_retry.c */
void cgprof__retry_quota_release(struct cgprof__retry_quota *q, bool was_retry, int last_rc)
{
    int back = !was_retry ? NO_RETRY_INCREMENT
                          : last_rc == CGPROF_ETIMEOUT ? TIMEOUT_RETRY_COST : RETRY_COST;
    q->tokens += back;
    if (q->tokens > QUOTA_INITIAL)
        q->tokens = QUOTA_INITIAL;
}

/* Tests: test/unit/uploader/test_retry.c */
unsigned cgprof__retry_backoff_ms(unsigned attempt, double r)
{
    if (attempt == 0)
        attempt = 1;
    unsigned cap = attempt - 1 >= 5 ? MAX_BACKOFF_S : 1u << (attempt - 1);
    if (cap > MAX_BACKOFF_S)
        cap = MAX_BACKOFF_S;
    if (r < 0)
        r = 0;
    if (r >= 1)
        r = 0.999999;
    return (unsigned)(r * cap * 1000.0);
}
