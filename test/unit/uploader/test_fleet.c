/* Unit tests for uploader/fleet.c: Python-compatible JSON strings, fleet
 * detection for Lambda (environment), EC2 (IMDSv2 stand-in: token by PUT),
 * ECS/Fargate (task metadata stand-in) and the default, and the
 * ConfigureAgent body in botocore's layout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "helpers.h"
#include "stub_http.h"
#include "../../../uploader/uploader_int.h"

static const struct quote_case {
    const char *in, *want;
} quote_cases[] = {
    { "abc", "\"abc\"" },
    { "a\"b\\c", "\"a\\\"b\\\\c\"" },
    { "tab\tnl\ncr\r", "\"tab\\tnl\\ncr\\r\"" },
    { "\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"" },  /* as Python json.dumps */
    { "caf\xc3\xa9", "\"caf\\u00e9\"" },
    { "\xe1\x88\xb4", "\"\\u1234\"" },
    { "\xf0\x9f\x98\x80", "\"\\ud83d\\ude00\"" },
    { "bad\xff", "\"bad\\ufffd\"" },
    { "", "\"\"" },
};

static void test_json_quote_table_one(int _i)
{
    const struct quote_case *t = &quote_cases[_i];
    struct cgprof_buf b;
    cgprof_buf_init(&b, 1024);
    ck_assert_int_eq(cgprof__json_quote(&b, t->in), 0);
    ck_assert_str_eq(b.data, t->want);
    cgprof_buf_cleanup(&b);
}
/* Every row in one test: a fork per row costs ~50 ms under ASan. */
START_TEST(test_json_quote_table)
{
    for (int i = 0; i < (int)CGPROF_ARRAY_SIZE(quote_cases); i++)
        test_json_quote_table_one(i);
}
END_TEST

static json_t *parse(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    ck_assert_msg(j != NULL, "not JSON: %s (%s)", s, e.text);
    return j;
}

START_TEST(test_fleet_lambda)
{
    const char *env[] = { "AWS_LAMBDA_FUNCTION_NAME", "my-fn", "LAMBDA_TASK_ROOT", "/var/task",
                          "AWS_REGION", "us-east-1", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512",
                          "AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2", NULL };
    cgprof_test_env_set(env);
    struct cgprof__fleet f;
    memset(&f, 0, sizeof(f));
    struct cgprof__fleet_options o = { .getenv_fn = cgprof_test_getenv, .region = "us-east-1",
                                       .account_id = "123456789012" };
    ck_assert_int_eq(cgprof__fleet_detect(&f, &o), 0);
    ck_assert(f.lambda);
    ck_assert_str_eq(f.instance_id, "arn:aws:lambda:us-east-1:123456789012:function:my-fn");
    ck_assert_str_eq(f.info_json, "{\"computeType\": \"aws_lambda\", \"functionArn\": "
                     "\"arn:aws:lambda:us-east-1:123456789012:function:my-fn\", "
                     "\"memoryLimitInMB\": 512, \"executionEnv\": \"AWS_Lambda_provided.al2\"}");
    struct cgprof_buf b;
    cgprof_buf_init(&b, 4096);
    ck_assert_int_eq(cgprof__fleet_configure_body(&f, &b), 0);
    char want[1024];
    snprintf(want, sizeof(want),
             "{\"fleetInstanceId\": \"arn:aws:lambda:us-east-1:123456789012:function:my-fn\", "
             "\"metadata\": {\"ComputePlatform\": \"AWSLambda\", \"LambdaFunctionArn\": "
             "\"arn:aws:lambda:us-east-1:123456789012:function:my-fn\", \"AgentId\": \"%s\", "
             "\"LambdaMemoryLimitInMB\": \"512\", \"ExecutionEnvironment\": "
             "\"AWS_Lambda_provided.al2\"}}", f.agent_id);
    ck_assert_str_eq(b.data, want);
    ck_assert_uint_eq(strlen(f.agent_id), 36);
    cgprof_buf_cleanup(&b);
    /* No account known: the function name stands in; no memory, no env. */
    const char *env2[] = { "AWS_LAMBDA_FUNCTION_NAME", "fn2", "LAMBDA_TASK_ROOT", "/var/task",
                           "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots", NULL };
    cgprof_test_env_set(env2);
    o.account_id = "";
    ck_assert_int_eq(cgprof__fleet_detect(&f, &o), 0);
    ck_assert_str_eq(f.instance_id, "fn2");
    ck_assert_str_eq(f.info_json, "{\"computeType\": \"aws_lambda\", \"functionArn\": \"fn2\"}");
    cgprof__fleet_cleanup(&f);
}
END_TEST

START_TEST(test_fleet_ec2_imdsv2)
{
    struct stub_reply r[] = {
        { STUB_REPLY, 200, NULL, "tok-1", "/latest/api/token" },
        { STUB_REPLY, 200, NULL, "ip-10-0-0-1.ec2.internal", "/latest/meta-data/local-hostname" },
        { STUB_REPLY, 200, NULL, "c5.large", "/latest/meta-data/instance-type" },
        { 0 },
    };
    struct stub_server s;
    stub_start(&s, r);
    char base[64];
    stub_url(&s, base, sizeof(base));
    const char *env[] = { "AWS_EC2_METADATA_SERVICE_ENDPOINT", base,
                          "ECS_CONTAINER_METADATA_URI_V4", "http://127.0.0.1:1/never", NULL };
    cgprof_test_env_set(env);
    struct cgprof__http_client *http = cgprof__metadata_client_new();
    struct cgprof__fleet f;
    memset(&f, 0, sizeof(f));
    struct cgprof__fleet_options o = { .getenv_fn = cgprof_test_getenv, .http = http };
    ck_assert_int_eq(cgprof__fleet_detect(&f, &o), 0);
    ck_assert(!f.lambda);
    ck_assert_str_eq(f.instance_id, "ip-10-0-0-1.ec2.internal");
    ck_assert_str_eq(f.info_json, "{\"computeType\": \"aws_ec2_instance\", \"hostName\": "
                     "\"ip-10-0-0-1.ec2.internal\", \"hostType\": \"c5.large\"}");
    ck_assert_uint_eq(stub_count(&s), 3);
    ck_assert_str_eq(s.reqs[0].method, "PUT");      /* not GET, unlike the Python agent */
    char h[64];
    ck_assert_str_eq(stub_header(&s.reqs[1], "X-aws-ec2-metadata-token", h, sizeof(h)), "tok-1");
    ck_assert_str_eq(stub_header(&s.reqs[2], "X-aws-ec2-metadata-token", h, sizeof(h)), "tok-1");
    struct cgprof_buf b;
    cgprof_buf_init(&b, 4096);
    ck_assert_int_eq(cgprof__fleet_configure_body(&f, &b), 0);
    ck_assert_str_eq(b.data, "{\"fleetInstanceId\": \"ip-10-0-0-1.ec2.internal\", \"metadata\": {}}");
    cgprof_buf_cleanup(&b);
    cgprof__fleet_cleanup(&f);
    cgprof__http_client_free(http);
    stub_stop(&s);
}
END_TEST

START_TEST(test_fleet_ecs_task)
{
    struct stub_reply r[] = {
        { STUB_REPLY, 200, NULL, "{\"Cluster\":\"c\",\"TaskARN\":\"arn:aws:ecs:us-east-1:1:task/c/abc\","
          "\"Limits\":{\"CPU\":0.25,\"Memory\":512}}", "/v4/xyz/task" },
        { 0 },
    };
    struct stub_server s;
    stub_start(&s, r);
    char uri[128];
    snprintf(uri, sizeof(uri), "http://127.0.0.1:%u/v4/xyz", s.port);
    const char *env[] = { "AWS_EC2_METADATA_DISABLED", "true", "ECS_CONTAINER_METADATA_URI_V4",
                          uri, NULL };
    cgprof_test_env_set(env);
    struct cgprof__http_client *http = cgprof__metadata_client_new();
    struct cgprof__fleet f;
    memset(&f, 0, sizeof(f));
    struct cgprof__fleet_options o = { .getenv_fn = cgprof_test_getenv, .http = http };
    ck_assert_int_eq(cgprof__fleet_detect(&f, &o), 0);
    ck_assert_str_eq(f.instance_id, "arn:aws:ecs:us-east-1:1:task/c/abc");
    json_t *j = parse(f.info_json);
    ck_assert_str_eq(json_string_value(json_object_get(j, "computeType")), "aws_fargate_task");
    ck_assert_str_eq(json_string_value(json_object_get(j, "taskArn")), f.instance_id);
    ck_assert(json_number_value(json_object_get(j, "cpuLimit")) == 0.25);
    ck_assert(json_number_value(json_object_get(j, "memoryLimitInMB")) == 512);
    json_decref(j);
    cgprof__fleet_cleanup(&f);
    cgprof__http_client_free(http);
    stub_stop(&s);
}
END_TEST

/* Nothing answers: a uuid per process and the vCPU count; the agent id
 * survives re-detection. */
START_TEST(test_fleet_default)
{
    const char *env[] = { "AWS_EC2_METADATA_DISABLED", "true", NULL };
    cgprof_test_env_set(env);
    struct cgprof__fleet f;
    memset(&f, 0, sizeof(f));
    struct cgprof__fleet_options o = { .getenv_fn = cgprof_test_getenv };
    ck_assert_int_eq(cgprof__fleet_detect(&f, &o), 0);
    ck_assert_uint_eq(strlen(f.instance_id), 36);
    ck_assert_str_eq(f.instance_id, f.agent_id);
    json_t *j = parse(f.info_json);
    ck_assert_str_eq(json_string_value(json_object_get(j, "id")), f.instance_id);
    ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "UNKNOWN");
    ck_assert_int_ge(json_integer_value(json_object_get(j, "vCPUs")), 1);
    json_decref(j);
    char id[37];
    memcpy(id, f.agent_id, sizeof(id));
    ck_assert_int_eq(cgprof__fleet_detect(&f, &o), 0);
    ck_assert_str_eq(f.agent_id, id);
    struct cgprof_buf b;
    cgprof_buf_init(&b, 4096);
    ck_assert_int_eq(cgprof__fleet_configure_body(&f, &b), 0);
    char want[128];
    snprintf(want, sizeof(want), "{\"fleetInstanceId\": \"%s\", \"metadata\": {}}", id);
    ck_assert_str_eq(b.data, want);
    cgprof_buf_cleanup(&b);
    cgprof__fleet_cleanup(&f);
}
END_TEST

static Suite *fleet_suite(void)
{
    Suite *s = suite_create("uploader");
    TCase *tc = tcase_create("fleet");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_json_quote_table);
    tcase_add_test(tc, test_fleet_lambda);
    tcase_add_test(tc, test_fleet_ec2_imdsv2);
    tcase_add_test(tc, test_fleet_ecs_task);
    tcase_add_test(tc, test_fleet_default);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cgprof_test_run(fleet_suite());
}
