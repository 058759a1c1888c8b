/* Fleet info (WIRE.md §6): what kind of host this is and its
 * fleetInstanceId, for agentMetadata.fleetInfo and ConfigureAgent. Lambda
 * comes from the environment, EC2 from IMDSv2 (token by PUT, unlike the
 * Python agent), ECS/Fargate from the task metadata endpoint, and anything
 * else gets a per-process uuid. The IMDS helper lives in credentials.c. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "uploader_int.h"

static const char *fenv(const struct cgprof__fleet_options *o, const char *k)
{
    const char *v = o->getenv_fn ? o->getenv_fn(k) : getenv(k);
    return v && *v ? v : NULL;
}

/* Tests: test/unit/uploader/test_fleet.c */
int cgprof__json_quote(struct cgprof_buf *out, const char *s)
{
    int rc = cgprof_buf_append(out, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    while (rc == 0 && *p) {
        unsigned c = *p;
        uint32_t cp = c;
        size_t len = 1;
        /* Decode UTF-8; a malformed byte becomes U+FFFD as Python's
         * 'replace' would. */
        if (c >= 0x80) {
            size_t need = c >= 0xf0 && c < 0xf8 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
            cp = need == 4 ? c & 7 : need == 3 ? c & 15 : c & 31;
            size_t k = 1;
            for (; need && k < need && (p[k] & 0xc0) == 0x80; k++)
                cp = (cp << 6) | (p[k] & 0x3f);
            if (!need || k != need) {
                cp = 0xfffd;
                len = k ? k : 1;
            } else {
                len = need;
            }
        }
        char e[16];
        if (cp == '"' || cp == '\\') {
            e[0] = '\\', e[1] = (char)cp, e[2] = 0;
        } else if (cp == '\n') {
            strcpy(e, "\\n");
        } else if (cp == '\r') {
            strcpy(e, "\\r");
        } else if (cp == '\t') {
            strcpy(e, "\\t");
        } else if (cp == '\b') {
            strcpy(e, "\\b");
        } else if (cp == '\f') {
            strcpy(e, "\\f");
        } else if (cp < 0x20 || (cp >= 0x7f && cp < 0x10000)) {
            snprintf(e, sizeof(e), "\\u%04x", cp);
        } else if (cp >= 0x10000) {
            uint32_t v = cp - 0x10000;
            snprintf(e, sizeof(e), "\\u%04x\\u%04x", 0xd800 + (v >> 10), 0xdc00 + (v & 0x3ff));
        } else {
            e[0] = (char)cp, e[1] = 0;
        }
        rc = cgprof_buf_appends(out, e);
        p += len;
    }
    if (rc == 0)
        rc = cgprof_buf_append(out, "\"", 1);
    return rc;
}

void cgprof__fleet_cleanup(struct cgprof__fleet *f)
{
    cgprof_free(f->info_json);
    memset(f, 0, sizeof(*f));
}

/* Keeps b's JSON as the fleet info when rc is 0; frees b either way and
 * returns rc or CGPROF_ENOMEM. */
static int set_info(struct cgprof__fleet *f, struct cgprof_buf *b, int rc)
{
    if (rc != 0) {
        cgprof_buf_cleanup(b);
        return rc;
    }
    f->info_json = cgprof_strndup(b->data ? b->data : "{}", b->len);
    cgprof_buf_cleanup(b);
    return f->info_json ? 0 : CGPROF_ENOMEM;
}

static const char *partition(const char *region)
{
    if (strncmp(region, "cn-", 3) == 0)
        return "aws-cn";
    if (strncmp(region, "us-gov-", 7) == 0)
        return "aws-us-gov";
    return "aws";
}

/* Lambda: no invocation context here, so the function ARN is built from
 * the region and the account of the group ARN when known (qualifier-less),
 * else the function name stands in for it. */
static int detect_lambda(struct cgprof__fleet *f, const struct cgprof__fleet_options *o)
{
    const char *fn = fenv(o, "AWS_LAMBDA_FUNCTION_NAME");
    if (!fn || !fenv(o, "LAMBDA_TASK_ROOT"))
        return CGPROF_ENOTFOUND;
    const char *region = fenv(o, "AWS_REGION");
    if (!region)
        region = o->region ? o->region : "";
    if (o->account_id && o->account_id[0] && region[0])
        snprintf(f->lambda_arn, sizeof(f->lambda_arn), "arn:%s:lambda:%s:%s:function:%s",
                 partition(region), region, o->account_id, fn);
    else
        snprintf(f->lambda_arn, sizeof(f->lambda_arn), "%s", fn);
    const char *mem = fenv(o, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
    char *end = NULL;
    long m = mem ? strtol(mem, &end, 10) : -1;
    if (mem && end && *end == '\0' && m > 0)
        snprintf(f->lambda_memory, sizeof(f->lambda_memory), "%ld", m);
    const char *ee = fenv(o, "AWS_EXECUTION_ENV");
    if (ee)
        snprintf(f->exec_env, sizeof(f->exec_env), "%s", ee);
    f->lambda = true;
    snprintf(f->instance_id, sizeof(f->instance_id), "%s", f->lambda_arn);
    struct cgprof_buf b;
    cgprof_buf_init(&b, 8192);
    int rc = cgprof_buf_appends(&b, "{\"computeType\": \"aws_lambda\", \"functionArn\": ");
    if (rc == 0)
        rc = cgprof__json_quote(&b, f->lambda_arn);
    if (rc == 0 && f->lambda_memory[0])
        rc = cgprof_buf_printf(&b, ", \"memoryLimitInMB\": %s", f->lambda_memory);
    if (rc == 0 && f->exec_env[0]) {
        rc = cgprof_buf_appends(&b, ", \"executionEnv\": ");
        if (rc == 0)
            rc = cgprof__json_quote(&b, f->exec_env);
    }
    if (rc == 0)
        rc = cgprof_buf_appends(&b, "}");
    return set_info(f, &b, rc);
}

static void first_line(struct cgprof_buf *b, char *out, size_t n)
{
    size_t l = b->data ? strcspn(b->data, "\r\n") : 0;
    if (l >= n)
        l = n - 1;
    memcpy(out, b->data ? b->data : "", l);
    out[l] = '\0';
}

static int detect_ec2(struct cgprof__fleet *f, const struct cgprof__fleet_options *o)
{
    const char *base = cgprof__imds_base(o->getenv_fn);
    if (!base || !o->http)
        return CGPROF_ENOTFOUND;
    char token[128] = "", host[256], type[64];
    struct cgprof_buf b;
    cgprof_buf_init(&b, 4096);
    int rc = cgprof__imds_get(o->http, base, "/latest/meta-data/local-hostname", token,
                              sizeof(token), &b);
    first_line(&b, host, sizeof(host));
    cgprof_buf_reset(&b);
    if (rc == 0)
        rc = cgprof__imds_get(o->http, base, "/latest/meta-data/instance-type", token,
                              sizeof(token), &b);
    first_line(&b, type, sizeof(type));
    cgprof_buf_cleanup(&b);
    if (rc != 0 || !host[0])
        return CGPROF_ENOTFOUND;
    snprintf(f->instance_id, sizeof(f->instance_id), "%s", host);
    cgprof_buf_init(&b, 4096);
    rc = cgprof_buf_appends(&b, "{\"computeType\": \"aws_ec2_instance\", \"hostName\": ");
    if (rc == 0)
        rc = cgprof__json_quote(&b, host);
    if (rc == 0)
        rc = cgprof_buf_appends(&b, ", \"hostType\": ");
    if (rc == 0)
        rc = cgprof__json_quote(&b, type);
    if (rc == 0)
        rc = cgprof_buf_appends(&b, "}");
    return set_info(f, &b, rc);
}

static int detect_ecs(struct cgprof__fleet *f, const struct cgprof__fleet_options *o)
{
    const char *uri = fenv(o, "ECS_CONTAINER_METADATA_URI_V4");
    if (!uri || !o->http)
        return CGPROF_ENOTFOUND;
    char url[1200];
    snprintf(url, sizeof(url), "%s/task", uri);
    struct cgprof__url u;
    if (cgprof__url_parse(url, &u) != 0)
        return CGPROF_ENOTFOUND;
    struct cgprof__http_request rq = { .method = "GET", .url = &u, .target = u.path };
    struct cgprof__http_response rs;
    if (cgprof__http_do(o->http, &rq, &rs) != 0)
        return CGPROF_ENOTFOUND;
    json_t *j = rs.status == 200 ? json_loadb(rs.body.data ? rs.body.data : "", rs.body.len, 0,
                                               NULL) : NULL;
    cgprof__http_response_cleanup(&rs);
    const char *arn = json_string_value(json_object_get(j, "TaskARN"));
    int rc = CGPROF_ENOTFOUND;
    if (arn && *arn) {
        snprintf(f->instance_id, sizeof(f->instance_id), "%s", arn);
        struct cgprof_buf b;
        cgprof_buf_init(&b, 8192);
        rc = cgprof_buf_appends(&b, "{\"computeType\": \"aws_fargate_task\", \"taskArn\": ");
        if (rc == 0)
            rc = cgprof__json_quote(&b, arn);
        json_t *lim = json_object_get(j, "Limits");
        json_t *cpu = json_object_get(lim, "CPU"), *mem = json_object_get(lim, "Memory");
        if (rc == 0 && json_is_number(cpu))
            rc = cgprof_buf_printf(&b, ", \"cpuLimit\": %.17g", json_number_value(cpu));
        if (rc == 0 && json_is_number(mem))
            rc = cgprof_buf_printf(&b, ", \"memoryLimitInMB\": %.17g", json_number_value(mem));
        if (rc == 0)
            rc = cgprof_buf_appends(&b, "}");
        rc = set_info(f, &b, rc);
    }
    json_decref(j);
    return rc;
}

static int detect_default(struct cgprof__fleet *f)
{
    snprintf(f->instance_id, sizeof(f->instance_id), "%s", f->agent_id);
    cpu_set_t set;
    long vcpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set)
                                                              : sysconf(_SC_NPROCESSORS_ONLN);
    struct cgprof_buf b;
    cgprof_buf_init(&b, 1024);
    int rc = cgprof_buf_printf(&b, "{\"id\": \"%s\", \"type\": \"UNKNOWN\", \"vCPUs\": %ld}",
                               f->agent_id, vcpus > 0 ? vcpus : 1);
    return set_info(f, &b, rc);
}

/* Tests: test/unit/uploader/test_fleet.c */
int cgprof__fleet_detect(struct cgprof__fleet *f, const struct cgprof__fleet_options *o)
{
    char agent_id[37];
    if (f->agent_id[0])
        memcpy(agent_id, f->agent_id, sizeof(agent_id));
    else
        cgprof_uuid4(agent_id);
    cgprof__fleet_cleanup(f);
    memcpy(f->agent_id, agent_id, sizeof(agent_id));
    int rc = detect_lambda(f, o);
    if (rc == CGPROF_ENOTFOUND)
        rc = detect_ec2(f, o);
    if (rc == CGPROF_ENOTFOUND)
        rc = detect_ecs(f, o);
    if (rc == CGPROF_ENOTFOUND)
        rc = detect_default(f);
    if (rc == 0)
        cgprof_debug("fleet: %s", f->info_json);
    return rc;
}

/* Tests: test/unit/uploader/test_fleet.c */
int cgprof__fleet_configure_body(const struct cgprof__fleet *f, struct cgprof_buf *out)
{
    int rc = cgprof_buf_appends(out, "{\"fleetInstanceId\": ");
    if (rc == 0)
        rc = cgprof__json_quote(out, f->instance_id);
    if (rc == 0)
        rc = cgprof_buf_appends(out, ", \"metadata\": {");
    if (rc == 0 && f->lambda) {
        const char *kv[] = {
            "ComputePlatform", "AWSLambda",
            "LambdaFunctionArn", f->lambda_arn,
            "AgentId", f->agent_id,
            "LambdaMemoryLimitInMB", f->lambda_memory,
            "ExecutionEnvironment", f->exec_env,
        };
        bool first = true;
        for (size_t i = 0; i < CGPROF_ARRAY_SIZE(kv) && rc == 0; i += 2) {
            if (!kv[i + 1][0])
                continue;
            rc = cgprof_buf_printf(out, "%s\"%s\": ", first ? "" : ", ", kv[i]);
            if (rc == 0)
                rc = cgprof__json_quote(out, kv[i + 1]);
            first = false;
        }
    }
    if (rc == 0)
        rc = cgprof_buf_appends(out, "}}");
    return rc;
}
