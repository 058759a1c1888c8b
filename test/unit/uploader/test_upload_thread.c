/* Unit tests for uploader/upload_thread.c, end to end against a local
 * CodeGuru stand-in (stub_http.h): ConfigureAgent first, each submitted
 * profile posted once under its own profileToken (plain JSON, or gzip with
 * uploadGzip), a 503 storm ending in the spool and a later uploader
 * delivering the spooled profile under the same token, a hanging endpoint
 * not holding stop() past its bound, and the service turning profiling
 * off. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "helpers.h"
#include "stub_http.h"
#include "../../../config/config.h"
#include "../../../uploader/uploader_int.h"

#define CONF_PATH "/profilingGroups/MyGroup/configureAgent"
#define POST_PATH "/profilingGroups/MyGroup/agentProfile"
#define CONF_OK "{\"shouldProfile\": true, \"periodInSeconds\": 300}"

static char outdir[256];

static void setup(void)
{
    snprintf(outdir, sizeof(outdir), "%s", cgprof_test_tmpdir());
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
    unsetenv("AWS_SESSION_TOKEN");
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    unsetenv("ECS_CONTAINER_METADATA_URI_V4");
    unsetenv("AWS_LAMBDA_FUNCTION_NAME");
    unsetenv("LAMBDA_TASK_ROOT");
}

static void load_cfg(struct cgprof_config *cfg, const struct stub_server *s, const char *extra)
{
    char opts[1024];
    snprintf(opts, sizeof(opts), "profilingGroupName:MyGroup,region:us-west-2,"
             "endpoint:http://127.0.0.1:%u,outputDir:%s,reportingIntervalMs:1000,"
             "minimumTimeForReportingMs:1000%s%s", s->port, outdir, extra ? "," : "",
             extra ? extra : "");
    ck_assert_int_eq(cgprof_config_load(cfg, opts, NULL), 0);
    ck_assert(cfg->sinks & CGPROF_SINK_CODEGURU);
}

static void make_profile(struct cgprof_profile *p, int n)
{
    ck_assert_int_eq(cgprof_profile_init(p), 0);
    p->start_ms = 1700000000000ull + (uint64_t)n * 1000;
    p->end_ms = p->start_ms + 900;
    p->duration_ms = 1000;
    p->num_times_sampled = 10;
    p->sample_weights[CGPROF_COUNTER_RUNNABLE] = 100;
    snprintf(p->group_name, sizeof(p->group_name), "MyGroup");
    char leaf[32];
    snprintf(leaf, sizeof(leaf), "leaf_%d", n);
    const char *s[] = { "main", "work", leaf };
    ck_assert_int_eq(cgprof_profile_add_stack(p, s, 3, CGPROF_COUNTER_RUNNABLE, 5 + (uint64_t)n), 0);
}

static void submit(int n)
{
    struct cgprof_profile p;
    make_profile(&p, n);
    ck_assert_int_eq(cgprof_uploader_submit(&p), 0);
    ck_assert_ptr_nonnull(p.fleet_info_json);   /* the default fleet, filled in */
    cgprof_profile_cleanup(&p);
}

/* Polls the stats until pred holds or ms pass. */
static bool wait_for(bool (*pred)(const struct cgprof_uploader_stats *, uint64_t), uint64_t arg,
                     unsigned ms)
{
    for (unsigned waited = 0; waited < ms; waited += 20) {
        struct cgprof_uploader_stats st;
        cgprof_uploader_get_stats(&st);
        if (pred(&st, arg))
            return true;
        usleep(20000);
    }
    return false;
}

static bool delivered_at_least(const struct cgprof_uploader_stats *st, uint64_t n)
{
    return st->delivered >= n;
}

static bool spooled_at_least(const struct cgprof_uploader_stats *st, uint64_t n)
{
    return st->spooled >= n;
}

static bool configured(const struct cgprof_uploader_stats *st, uint64_t n)
{
    return st->configure_calls >= n;
}

static int spool_count(void)
{
    struct cgprof__spool s;
    ck_assert_int_eq(cgprof__spool_init(&s, outdir, "MyGroup", 1 << 20, 3600000), 0);
    return cgprof__spool_count(&s);
}

static const char *token_of(const struct stub_req *r)
{
    const char *t = strstr(r->target, "profileToken=");
    return t ? t + 13 : "";
}

START_TEST(test_uploader_delivers_each_profile_once)
{
    struct stub_reply r[] = { { STUB_REPLY, 200, NULL, CONF_OK, CONF_PATH },
                              { STUB_REPLY, 204, NULL, "", POST_PATH }, { 0 } };
    struct stub_server s;
    stub_start(&s, r);
    struct cgprof_config cfg;
    load_cfg(&cfg, &s, NULL);
    ck_assert_int_eq(cgprof_uploader_start(&cfg), 0);
    ck_assert_int_eq(cgprof_uploader_start(&cfg), 0);      /* idempotent */
    ck_assert(wait_for(configured, 1, 5000));
    for (int i = 0; i < 3; i++)
        submit(i);
    ck_assert(wait_for(delivered_at_least, 3, 10000));
    cgprof_uploader_stop(CGPROF_UPLOADER_FLUSH_MS);
    struct cgprof_uploader_stats st;
    cgprof_uploader_get_stats(&st);
    ck_assert_uint_eq(st.submitted, 3);
    ck_assert_uint_eq(st.delivered, 3);
    ck_assert_uint_eq(st.spooled, 0);
    ck_assert_int_eq(spool_count(), 0);

    ck_assert_uint_ge(s.nreqs, 4);
    ck_assert_str_eq(s.reqs[0].target, CONF_PATH);
    json_t *cb = json_loads(s.reqs[0].body, 0, NULL);
    ck_assert_ptr_nonnull(cb);
    ck_assert_uint_eq(strlen(json_string_value(json_object_get(cb, "fleetInstanceId"))), 36);
    ck_assert(json_is_object(json_object_get(cb, "metadata")));
    json_decref(cb);
    int posts = 0;
    const char *tokens[3];
    for (size_t i = 0; i < s.nreqs; i++) {
        if (strncmp(s.reqs[i].target, POST_PATH "?profileToken=", strlen(POST_PATH) + 14) != 0)
            continue;
        ck_assert_int_lt(posts, 3);
        tokens[posts++] = token_of(&s.reqs[i]);
        char h[128];
        ck_assert_str_eq(stub_header(&s.reqs[i], "Content-Type", h, sizeof(h)), "application/json");
        ck_assert_str_eq(stub_header(&s.reqs[i], "Content-Encoding", h, sizeof(h)), "");
        json_t *j = json_loads(s.reqs[i].body, 0, NULL);
        ck_assert_ptr_nonnull(j);
        ck_assert(json_is_object(json_object_get(j, "callgraph")));
        json_t *fi = json_object_get(json_object_get(j, "agentMetadata"), "fleetInfo");
        ck_assert_str_eq(json_string_value(json_object_get(fi, "type")), "UNKNOWN");
        json_decref(j);
    }
    ck_assert_int_eq(posts, 3);
    ck_assert_uint_eq(strlen(tokens[0]), 36);
    ck_assert_str_ne(tokens[0], tokens[1]);
    ck_assert_str_ne(tokens[1], tokens[2]);
    ck_assert_str_ne(tokens[0], tokens[2]);
    stub_stop(&s);
    ck_assert_int_eq(cgprof_uploader_submit(NULL), CGPROF_EINVAL);
    struct cgprof_profile p;
    make_profile(&p, 9);
    ck_assert_int_eq(cgprof_uploader_submit(&p), CGPROF_EINVAL);   /* stopped */
    cgprof_profile_cleanup(&p);
}
END_TEST

START_TEST(test_uploader_gzip_when_asked)
{
    struct stub_reply r[] = { { STUB_REPLY, 200, NULL, CONF_OK, CONF_PATH },
                              { STUB_REPLY, 204, NULL, "", POST_PATH }, { 0 } };
    struct stub_server s;
    stub_start(&s, r);
    struct cgprof_config cfg;
    load_cfg(&cfg, &s, "uploadGzip:true");
    ck_assert_int_eq(cgprof_uploader_start(&cfg), 0);
    submit(1);
    ck_assert(wait_for(delivered_at_least, 1, 10000));
    cgprof_uploader_stop(CGPROF_UPLOADER_FLUSH_MS);
    const struct stub_req *post = NULL;
    for (size_t i = 0; i < s.nreqs; i++)
        if (strncmp(s.reqs[i].target, POST_PATH, strlen(POST_PATH)) == 0)
            post = &s.reqs[i];
    ck_assert_ptr_nonnull(post);
    char h[64];
    ck_assert_str_eq(stub_header(post, "Content-Encoding", h, sizeof(h)), "gzip");
    ck_assert_int_eq((unsigned char)post->body[0], 0x1f);
    struct cgprof_buf u;
    cgprof_buf_init(&u, 1 << 20);
    ck_assert_int_eq(cgprof_gunzip(post->body, post->body_len, &u), 0);
    ck_assert_ptr_nonnull(strstr(u.data, "\"callgraph\""));
    cgprof_buf_cleanup(&u);
    stub_stop(&s);
}
END_TEST

/* 503 on every post: the profile ends in the spool under its token; a
 * later uploader (as a later process would) delivers it once, with that
 * same token, and the spool is empty afterwards. */
START_TEST(test_uploader_503_storm_spools_then_later_delivery)
{
    struct stub_reply r[] = { { STUB_REPLY, 200, NULL, CONF_OK, CONF_PATH },
                              { STUB_REPLY, 503, NULL, "{\"message\":\"busy\"}", POST_PATH },
                              { 0 } };
    struct stub_server s;
    stub_start(&s, r);
    struct cgprof_config cfg;
    load_cfg(&cfg, &s, NULL);
    ck_assert_int_eq(cgprof_uploader_start(&cfg), 0);
    submit(1);
    ck_assert(wait_for(spooled_at_least, 1, 10000));
    cgprof_uploader_stop(500);
    ck_assert_int_eq(spool_count(), 1);
    int posts = 0;
    char token[64] = "";
    for (size_t i = 0; i < s.nreqs; i++)
        if (strncmp(s.reqs[i].target, POST_PATH, strlen(POST_PATH)) == 0) {
            if (!token[0])
                snprintf(token, sizeof(token), "%s", token_of(&s.reqs[i]));
            ck_assert_str_eq(token_of(&s.reqs[i]), token);  /* same token on each retry */
            posts++;
        }
    ck_assert_int_ge(posts, 3);
    stub_stop(&s);

    struct stub_reply ok[] = { { STUB_REPLY, 200, NULL, CONF_OK, CONF_PATH },
                               { STUB_REPLY, 204, NULL, "", POST_PATH }, { 0 } };
    struct stub_server s2;
    stub_start(&s2, ok);
    load_cfg(&cfg, &s2, NULL);
    ck_assert_int_eq(cgprof_uploader_start(&cfg), 0);
    ck_assert(wait_for(delivered_at_least, 1, 10000));
    cgprof_uploader_stop(500);
    struct cgprof_uploader_stats st;
    cgprof_uploader_get_stats(&st);
    ck_assert_uint_eq(st.spool_delivered, 1);
    ck_assert_int_eq(spool_count(), 0);
    int delivered = 0;
    for (size_t i = 0; i < s2.nreqs; i++)
        if (strncmp(s2.reqs[i].target, POST_PATH, strlen(POST_PATH)) == 0) {
            ck_assert_str_eq(token_of(&s2.reqs[i]), token);
            json_t *j = json_loads(s2.reqs[i].body, 0, NULL);
            ck_assert_ptr_nonnull(j);               /* sent as plain JSON again */
            json_decref(j);
            delivered++;
        }
    ck_assert_int_eq(delivered, 1);
    stub_stop(&s2);
}
END_TEST

/* The endpoint accepts and never answers: stop() returns within its
 * bound and the profile is in the spool. */
START_TEST(test_uploader_stop_bounded_when_endpoint_hangs)
{
    struct stub_reply r[] = { { STUB_REPLY, 200, NULL, CONF_OK, CONF_PATH },
                              { STUB_HANG, 0, NULL, NULL, POST_PATH }, { 0 } };
    struct stub_server s;
    stub_start(&s, r);
    struct cgprof_config cfg;
    load_cfg(&cfg, &s, NULL);
    ck_assert_int_eq(cgprof_uploader_start(&cfg), 0);
    ck_assert(wait_for(configured, 1, 5000));
    submit(1);
    usleep(300000);                     /* the post is in flight, hanging */
    uint64_t t0 = cgprof_now_ns();
    cgprof_uploader_stop(700);
    uint64_t took_ms = (cgprof_now_ns() - t0) / 1000000u;
    ck_assert_uint_ge(took_ms, 600);
    ck_assert_uint_lt(took_ms, 1500);
    ck_assert_int_eq(spool_count(), 1);
    stub_stop(&s);
}
END_TEST

/* Nothing listening at all (the endpoint is down): the profile is
 * spooled, and the uploader keeps running. */
START_TEST(test_uploader_endpoint_down)
{
    struct stub_server s;
    stub_start(&s, NULL);
    struct cgprof_config cfg;
    load_cfg(&cfg, &s, NULL);
    stub_stop(&s);
    ck_assert_int_eq(cgprof_uploader_start(&cfg), 0);
    submit(1);
    ck_assert(wait_for(spooled_at_least, 1, 15000));
    struct cgprof_uploader_agent_config a;
    ck_assert(cgprof_uploader_agent_config(&a));
    ck_assert(a.should_profile);        /* network errors keep the old config */
    cgprof_uploader_stop(300);
    ck_assert_int_eq(spool_count(), 1);
}
END_TEST

START_TEST(test_uploader_service_turns_profiling_off)
{
    struct stub_reply r[] = {
        { STUB_REPLY, 200, NULL, "{\"shouldProfile\": false, \"periodInSeconds\": 1, "
          "\"agentParameters\": {\"MinimumTimeForReportingInMilliseconds\": \"1000\"}}", CONF_PATH },
        { 0 } };
    struct stub_server s;
    stub_start(&s, r);
    struct cgprof_config cfg;
    load_cfg(&cfg, &s, NULL);
    ck_assert(!cgprof_uploader_agent_config(&(struct cgprof_uploader_agent_config){ 0 }));
    ck_assert_int_eq(cgprof_uploader_start(&cfg), 0);
    ck_assert(wait_for(configured, 1, 5000));
    struct cgprof_uploader_agent_config a;
    ck_assert(cgprof_uploader_agent_config(&a));
    ck_assert(!a.should_profile);
    ck_assert_uint_eq(a.reporting_interval_ms, 1000);  /* user-set: kept */
    ck_assert(wait_for(configured, 2, 5000));          /* asked again each cycle */
    cgprof_uploader_stop(300);
    stub_stop(&s);

    /* ValidationException on ConfigureAgent turns profiling off, too. */
    struct stub_reply v[] = { { STUB_REPLY, 400, "x-amzn-ErrorType: ValidationException\r\n",
                                "{\"message\":\"bad\"}", CONF_PATH }, { 0 } };
    stub_start(&s, v);
    load_cfg(&cfg, &s, NULL);
    ck_assert_int_eq(cgprof_uploader_start(&cfg), 0);
    ck_assert(wait_for(configured, 1, 5000));
    ck_assert(cgprof_uploader_agent_config(&a));
    ck_assert(!a.should_profile);
    cgprof_uploader_stop(300);
    stub_stop(&s);
}
END_TEST

/* On Lambda a missing group (ResourceNotFoundException from
 * ConfigureAgent) is created with CreateProfilingGroup, profiling stays
 * on, and ConfigureAgent carries the Lambda metadata. */
START_TEST(test_uploader_lambda_creates_missing_group)
{
    setenv("AWS_LAMBDA_FUNCTION_NAME", "my-fn", 1);
    setenv("LAMBDA_TASK_ROOT", "/var/task", 1);
    setenv("LAMBDA_RUNTIME_DIR", "/var/runtime", 1);
    setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256", 1);
    struct stub_reply r[] = {
        { STUB_REPLY, 404, "x-amzn-ErrorType: ResourceNotFoundException:http://x\r\n",
          "{\"message\":\"no such group\"}", CONF_PATH },
        { STUB_REPLY, 201, NULL, "{\"name\":\"MyGroup\"}", "/profilingGroups?clientToken=" },
        { 0 } };
    struct stub_server s;
    stub_start(&s, r);
    struct cgprof_config cfg;
    load_cfg(&cfg, &s, NULL);
    ck_assert_int_eq(cgprof_uploader_start(&cfg), 0);
    ck_assert(wait_for(configured, 1, 5000));
    for (int i = 0; i < 100 && stub_count(&s) < 2; i++)
        usleep(20000);
    struct cgprof_uploader_agent_config a;
    ck_assert(cgprof_uploader_agent_config(&a));
    ck_assert(a.should_profile);
    cgprof_uploader_stop(300);
    ck_assert_uint_ge(s.nreqs, 2);
    json_t *cb = json_loads(s.reqs[0].body, 0, NULL);
    ck_assert_ptr_nonnull(cb);
    json_t *md = json_object_get(cb, "metadata");
    ck_assert_str_eq(json_string_value(json_object_get(md, "ComputePlatform")), "AWSLambda");
    ck_assert_str_eq(json_string_value(json_object_get(md, "LambdaMemoryLimitInMB")), "256");
    ck_assert_uint_eq(strlen(json_string_value(json_object_get(md, "AgentId"))), 36);
    json_decref(cb);
    ck_assert_ptr_nonnull(strstr(s.reqs[1].target, "/profilingGroups?clientToken="));
    ck_assert_uint_eq(strlen(strchr(s.reqs[1].target, '=') + 1), 36);
    ck_assert_str_eq(s.reqs[1].body,
                     "{\"profilingGroupName\": \"MyGroup\", \"computePlatform\": \"AWSLambda\"}");
    stub_stop(&s);
}
END_TEST

/* A forked child (which has no upload thread) gets its own uploader on
 * its first submit and delivers its profile itself. */
START_TEST(test_uploader_restarts_in_forked_child)
{
    struct stub_reply r[] = { { STUB_REPLY, 200, NULL, CONF_OK, CONF_PATH },
                              { STUB_REPLY, 204, NULL, "", POST_PATH }, { 0 } };
    struct stub_server s;
    stub_start(&s, r);
    struct cgprof_config cfg;
    load_cfg(&cfg, &s, NULL);
    ck_assert_int_eq(cgprof_uploader_start(&cfg), 0);
    ck_assert(wait_for(configured, 1, 5000));
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct cgprof_profile p;
        make_profile(&p, 7);
        int ok = cgprof_uploader_submit(&p) == 0 && wait_for(delivered_at_least, 1, 10000);
        cgprof_uploader_stop(500);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct cgprof_uploader_stats st;
    cgprof_uploader_get_stats(&st);
    ck_assert_uint_eq(st.submitted, 0);     /* the parent's uploader saw nothing */
    cgprof_uploader_stop(500);
    int posts = 0;
    for (size_t i = 0; i < s.nreqs; i++)
        posts += strncmp(s.reqs[i].target, POST_PATH, strlen(POST_PATH)) == 0;
    ck_assert_int_eq(posts, 1);
    stub_stop(&s);
}
END_TEST

static Suite *upload_suite(void)
{
    Suite *s = suite_create("uploader");
    TCase *tc = tcase_create("upload_thread");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 40);
    tcase_add_test(tc, test_uploader_delivers_each_profile_once);
    tcase_add_test(tc, test_uploader_gzip_when_asked);
    tcase_add_test(tc, test_uploader_503_storm_spools_then_later_delivery);
    tcase_add_test(tc, test_uploader_stop_bounded_when_endpoint_hangs);
    tcase_add_test(tc, test_uploader_endpoint_down);
    tcase_add_test(tc, test_uploader_service_turns_profiling_off);
    tcase_add_test(tc, test_uploader_restarts_in_forked_child);
    tcase_add_test(tc, test_uploader_lambda_creates_missing_group);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cgprof_test_run(upload_suite());
}
