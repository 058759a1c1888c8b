/* Unit tests for profile/codeguru_json.c: string escaping, the document
 * shape, encode→decode→encode identity, the WIRE.md §1.1 example, a table
 * of malformed inputs (guard-page copies, every truncation), deep nesting,
 * a 100 000-node tree, and allocation failures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "../../../profile/profile_int.h"

#define BIG (64u << 20)

static const char *encode(const struct cgprof_profile *p, struct cgprof_buf *b)
{
    cgprof_buf_init(b, BIG);
    ck_assert_int_eq(cgprof_profile_encode_codeguru(p, b), 0);
    ck_assert_ptr_nonnull(b->data);
    return b->data;
}

/* A profile with every field set and awkward names. */
static void fill(struct cgprof_profile *p)
{
    p->start_ms = 1700000000000ull;
    p->end_ms = 1700000301000ull;
    p->duration_ms = 301000;
    p->cpu_time_s = 8.0872e-05;
    p->num_threads = 2.5;
    p->num_times_sampled = 301;
    p->sample_weights[CGPROF_COUNTER_RUNNABLE] = 100;
    p->sample_weights[CGPROF_COUNTER_WAITING] = 1;
    p->sample_weights[CGPROF_COUNTER_IDLE] = 1;
    p->agent_cpu_ms = 22;
    p->agent_memory_mb = 3;
    p->samples_dropped = 17;
    p->agent_start_ms = 1699999990123ull;
    p->pid = 6302;
    snprintf(p->group_name, sizeof(p->group_name), "My-Group");
    snprintf(p->runtime_version, sizeof(p->runtime_version), "glibc-2.36");
    snprintf(p->fleet_instance_id, sizeof(p->fleet_instance_id), "host-1");
    p->errors.errors_count = 1;
    p->errors.sdk_client_errors = 2;
    p->errors.configure_agent_errors = 3;
    p->errors.configure_agent_rnfe_auto_create_enabled_errors = 4;
    p->errors.create_profiling_group_errors = 5;
    p->errors.post_agent_profile_errors = 6;
    p->errors.post_agent_profile_rnfe_auto_create_enabled_errors = 7;
    const char *s1[] = { "main", "std::vector<int>::push_back(int const&)", "memcpy" };
    const char *s2[] = { "main", "quote\"back\\slash", "tab\tnl\nctl\x01" };
    const char *s3[] = { "main", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "bad\xff\xfe" };
    const char *s4[] = { "thread_start", "worker" };
    ck_assert_int_eq(cgprof_profile_add_stack(p, s1, 3, CGPROF_COUNTER_RUNNABLE, 12), 0);
    ck_assert_int_eq(cgprof_profile_add_stack(p, s1, 3, CGPROF_COUNTER_NATIVE, 2), 0);
    ck_assert_int_eq(cgprof_profile_add_stack(p, s1, 2, CGPROF_COUNTER_RUNNABLE, 1), 0);
    ck_assert_int_eq(cgprof_profile_add_stack(p, s2, 3, CGPROF_COUNTER_WAITING, 5), 0);
    ck_assert_int_eq(cgprof_profile_add_stack(p, s3, 3, CGPROF_COUNTER_BLOCKED, 4), 0);
    ck_assert_int_eq(cgprof_profile_add_stack(p, s4, 2, CGPROF_COUNTER_IDLE, 300), 0);
    ck_assert_int_eq(cgprof_profile_add_stack(p, s4, 0, CGPROF_COUNTER_TIMED_WAITING, 1), 0);
}

static const struct esc_case {
    const char *in, *out;
} esc_cases[] = {
    { "", "\"\"" },
    { "plain", "\"plain\"" },
    { "a\"b", "\"a\\\"b\"" },
    { "a\\b", "\"a\\\\b\"" },
    { "\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"" },
    { "\x01\x1f", "\"\\u0001\\u001f\"" },
    { "/<>\x7f", "\"/<>\x7f\"" },
    { "\xc3\xa9", "\"\\u00e9\"" },
    { "\xe2\x82\xac", "\"\\u20ac\"" },
    { "\xf0\x9f\x98\x80", "\"\\ud83d\\ude00\"" },
    { "a\xff" "b", "\"a\\ufffdb\"" },
    { "\xc3", "\"\\ufffd\"" },                 /* truncated sequence */
    { "\xc0\xaf", "\"\\ufffd\\ufffd\"" },      /* overlong */
    { "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"" }, /* surrogate */
};

START_TEST(test_json_append_string_escapes)
{
    const struct esc_case *t = &esc_cases[_i];
    struct cgprof_buf b;
    cgprof_buf_init(&b, 1024);
    ck_assert_int_eq(cgprof__json_append_string(&b, t->in), 0);
    ck_assert_str_eq(b.data, t->out);
    cgprof_buf_cleanup(&b);
}
END_TEST

START_TEST(test_encode_shape)
{
    struct cgprof_profile p;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    fill(&p);
    struct cgprof_buf b;
    const char *j = encode(&p, &b);
    /* top-level key order */
    ck_assert_int_eq(strncmp(j, "{\"start\": 1700000000000, \"end\": 1700000301000, "
                                "\"agentMetadata\": {\"sampleWeights\": ", 75), 0);
    const char *am = strstr(j, "\"agentMetadata\""), *cg = strstr(j, "\"callgraph\"");
    const char *di = strstr(j, "\"debugInfo\"");
    ck_assert(am && cg && di && am < cg && cg < di);
    /* only non-zero weights, by counter name */
    ck_assert_ptr_nonnull(strstr(j, "\"sampleWeights\": {\"RUNNABLE\": 100.0, "
                                    "\"WAITING\": 1.0, \"IDLE\": 1.0}"));
    ck_assert_ptr_nonnull(strstr(j, "\"agentInfo\": {\"type\": \"CodeGuruProfiler-cgprof\", "
                                    "\"version\": \"0.1.0\"}"));
    ck_assert_ptr_nonnull(strstr(j, "\"agentOverhead\": {\"memoryInMB\": 3, \"timeInMs\": 22}"));
    ck_assert_ptr_nonnull(strstr(j, "\"fleetInfo\": {\"id\": \"host-1\", \"type\": \"UNKNOWN\", "
                                    "\"vCPUs\": "));
    ck_assert_ptr_nonnull(strstr(j, "\"metrics\": {\"numThreads\": 2.5}"));
    ck_assert_ptr_nonnull(strstr(j, "\"agentStartTime\": \"2023-11-14T22:13:10.123Z\""));
    ck_assert_ptr_nonnull(strstr(j, "\"processId\": 6302"));
    ck_assert_ptr_nonnull(strstr(j, "\"postAgentProfileRnfeAutoCreateEnabledErrors\": 7"));
    ck_assert_ptr_nonnull(strstr(j, "\"samplesDropped\": 17, \"groupName\": \"My-Group\"}}"));
    /* root: no name, own counts, children sorted by name */
    ck_assert_ptr_nonnull(strstr(j, "\"callgraph\": {\"counts\": {\"TIMED_WAITING\": 1}, "
                                    "\"children\": {\"main\": {\"children\": {"));
    ck_assert_ptr_nonnull(strstr(j, "\"thread_start\": {\"children\": {\"worker\": "
                                    "{\"counts\": {\"IDLE\": 300}}}}"));
    ck_assert_ptr_nonnull(strstr(j, "\"memcpy\": {\"counts\": {\"RUNNABLE\": 12, \"NATIVE\": 2}}"));
    /* a node with its own counts and children: counts first */
    ck_assert_ptr_nonnull(strstr(j, "\"std::vector<int>::push_back(int const&)\": "
                                    "{\"counts\": {\"RUNNABLE\": 1}, \"children\": {"));
    /* zero counters are never written */
    ck_assert_ptr_null(strstr(j, ": 0}"));
    ck_assert_ptr_null(strstr(j, "\"BLOCKED\": 0"));
    for (const char *c = j; *c; c++)
        ck_assert_int_lt((unsigned char)*c, 0x80);
    /* timeInMs is omitted when 0; end is raised above start */
    p.agent_cpu_ms = 0;
    p.end_ms = p.start_ms;
    struct cgprof_buf b2;
    j = encode(&p, &b2);
    ck_assert_ptr_nonnull(strstr(j, "\"agentOverhead\": {\"memoryInMB\": 3}"));
    ck_assert_ptr_nonnull(strstr(j, "\"end\": 1700000000001,"));
    cgprof_buf_cleanup(&b2);
    cgprof_buf_cleanup(&b);
    cgprof_profile_cleanup(&p);
}
END_TEST

START_TEST(test_encode_fleet_info_text)
{
    struct cgprof_profile p;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    p.fleet_info_json = cgprof_strdup("{\"computeType\":\"aws_ec2_instance\",\"hostName\":\"ip-1\"}");
    struct cgprof_buf b;
    const char *j = encode(&p, &b);
    ck_assert_ptr_nonnull(strstr(j, "\"fleetInfo\": {\"computeType\": \"aws_ec2_instance\", "
                                    "\"hostName\": \"ip-1\"}"));
    cgprof_buf_cleanup(&b);
    /* text that is not a JSON object falls back to the default */
    cgprof_free(p.fleet_info_json);
    p.fleet_info_json = cgprof_strdup("[1, 2");
    j = encode(&p, &b);
    ck_assert_ptr_nonnull(strstr(j, "\"fleetInfo\": {\"id\": \"\", \"type\": \"UNKNOWN\""));
    cgprof_buf_cleanup(&b);
    cgprof_profile_cleanup(&p);
}
END_TEST

START_TEST(test_round_trip_identical)
{
    struct cgprof_profile p, q, r;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    ck_assert_int_eq(cgprof_profile_init(&q), 0);
    ck_assert_int_eq(cgprof_profile_init(&r), 0);
    fill(&p);
    struct cgprof_buf b1, b2, b3;
    encode(&p, &b1);
    const char *g = cgprof_test_guarded_copy(b1.data, b1.len);
    ck_assert_int_eq(cgprof_profile_decode_codeguru(&q, g, b1.len), 0);
    encode(&q, &b2);
    ck_assert_uint_eq(b1.len, b2.len);
    ck_assert_str_eq(b1.data, b2.data);
    /* and a third generation, from the decoded fleet info text */
    ck_assert_int_eq(cgprof_profile_decode_codeguru(&r, b2.data, b2.len), 0);
    encode(&r, &b3);
    ck_assert_str_eq(b1.data, b3.data);

    /* every field came back */
    ck_assert_uint_eq(q.start_ms, p.start_ms);
    ck_assert_uint_eq(q.end_ms, p.end_ms);
    ck_assert_uint_eq(q.duration_ms, p.duration_ms);
    ck_assert_double_eq(q.cpu_time_s, p.cpu_time_s);
    ck_assert_double_eq(q.num_threads, p.num_threads);
    ck_assert_uint_eq(q.num_times_sampled, p.num_times_sampled);
    for (int c = 0; c < CGPROF_NCOUNTERS; c++) {
        ck_assert_double_eq(q.sample_weights[c], p.sample_weights[c]);
        ck_assert_uint_eq(cgprof_profile_total(&q, (enum cgprof_counter)c),
                          cgprof_profile_total(&p, (enum cgprof_counter)c));
    }
    ck_assert_uint_eq(q.agent_cpu_ms, p.agent_cpu_ms);
    ck_assert_uint_eq(q.agent_memory_mb, p.agent_memory_mb);
    ck_assert_uint_eq(q.samples_dropped, p.samples_dropped);
    ck_assert_uint_eq(q.agent_start_ms, p.agent_start_ms);
    ck_assert_int_eq(q.pid, p.pid);
    ck_assert_str_eq(q.group_name, p.group_name);
    ck_assert_str_eq(q.runtime_version, p.runtime_version);
    ck_assert_str_eq(q.fleet_instance_id, p.fleet_instance_id);
    ck_assert_ptr_nonnull(q.fleet_info_json);
    ck_assert_ptr_nonnull(strstr(q.fleet_info_json, "\"UNKNOWN\""));
    ck_assert_mem_eq(&q.errors, &p.errors, sizeof(p.errors));
    ck_assert_uint_eq(q.node_count, p.node_count);
    /* names with escapes and UTF-8 come back as UTF-8 */
    struct cgprof_node *m = cgprof_profile_child(&q, &q.root, "main");
    ck_assert_uint_eq(cgprof_profile_child(&q, m, "quote\"back\\slash") ->first_child
                          ->counts[CGPROF_COUNTER_WAITING], 5);
    ck_assert_str_eq(cgprof_profile_child(&q, m, "quote\"back\\slash")->first_child->name,
                     "tab\tnl\nctl\x01");
    ck_assert_uint_eq(q.node_count, p.node_count);
    ck_assert_ptr_nonnull(cgprof_profile_child(&q, m, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
    ck_assert_uint_eq(q.node_count, p.node_count);
    cgprof_buf_cleanup(&b1);
    cgprof_buf_cleanup(&b2);
    cgprof_buf_cleanup(&b3);
    cgprof_profile_cleanup(&p);
    cgprof_profile_cleanup(&q);
    cgprof_profile_cleanup(&r);
}
END_TEST

/* WIRE.md §1.1, as the Python agent's own encoder wrote it. */
static const char wire_example[] =
    "{\"start\": 1700000000000, \"end\": 1700000301000,\n"
    " \"agentMetadata\": {\"sampleWeights\": {\"WALL_TIME\": 0.006644518272425249}, \"durationInMs\": 301000,\n"
    "   \"fleetInfo\": {\"computeType\": \"aws_fargate_task\", \"taskArn\": \"arn:aws:ecs:us-east-1:123456789012:task/cluster/abc\", \"cpuLimit\": 0.25, \"memoryLimitInMB\": 512},\n"
    "   \"agentInfo\": {\"type\": \"CodeGuruProfiler-python\", \"version\": \"1.2.6\"},\n"
    "   \"agentOverhead\": {\"memoryInMB\": 0, \"timeInMs\": 22}, \"runtimeVersion\": \"3.9.18\",\n"
    "   \"cpuTimeInSeconds\": 8.0872e-05, \"metrics\": {\"numThreads\": 2.0}, \"numTimesSampled\": 2},\n"
    " \"callgraph\": {\"children\": {\n"
    "   \"threading:Thread:_bootstrap\": {\"file\": \"/usr/lib/python3.9/threading.py\", \"line\": [930], \"children\": {\n"
    "       \"myapp.worker:Worker:run\": {\"file\": \"/app/myapp/worker.py\", \"line\": [42], \"children\": {\n"
    "           \"<Sleep>\": {\"counts\": {\"WALL_TIME\": 1}}}}}},\n"
    "   \"main:<module>\": {\"file\": \"/app/main.py\", \"line\": [10], \"children\": {\n"
    "       \"myapp.calc:compute\": {\"counts\": {\"WALL_TIME\": 2}, \"file\": \"/app/myapp/calc.py\", \"line\": [7, 9]}}}}},\n"
    " \"debugInfo\": {\"agentStartTime\": \"2023-11-14T22:13:10.000Z\", \"processId\": 6302,\n"
    "   \"errorsCount\": {\"errorsCount\": 0, \"sdkClientErrors\": 0, \"configureAgentErrors\": 0, \"configureAgentRnfeAutoCreateEnabledErrors\": 0,\n"
    "                   \"createProfilingGroupErrors\": 0, \"postAgentProfileErrors\": 1, \"postAgentProfileRnfeAutoCreateEnabledErrors\": 0},\n"
    "   \"genericMetrics\": {\"runProfiler_timings_max\": 0.0123, \"runProfiler_timings_average\": 0.0112}}}\n";

START_TEST(test_decode_wire_example)
{
    struct cgprof_profile p;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    const char *g = cgprof_test_guarded_copy(wire_example, sizeof(wire_example) - 1);
    ck_assert_int_eq(cgprof_profile_decode_codeguru(&p, g, sizeof(wire_example) - 1), 0);
    ck_assert_uint_eq(p.start_ms, 1700000000000ull);
    ck_assert_uint_eq(p.end_ms, 1700000301000ull);
    ck_assert_uint_eq(p.duration_ms, 301000);
    ck_assert_uint_eq(p.agent_cpu_ms, 22);
    ck_assert_str_eq(p.runtime_version, "3.9.18");
    ck_assert_double_eq_tol(p.cpu_time_s, 8.0872e-05, 1e-12);
    ck_assert_double_eq(p.num_threads, 2.0);
    ck_assert_uint_eq(p.num_times_sampled, 2);
    ck_assert_uint_eq(p.agent_start_ms, 1699999990000ull);
    ck_assert_int_eq(p.pid, 6302);
    ck_assert_uint_eq(p.errors.post_agent_profile_errors, 1);
    ck_assert_str_eq(p.fleet_instance_id, "arn:aws:ecs:us-east-1:123456789012:task/cluster/abc");
    ck_assert_ptr_nonnull(strstr(p.fleet_info_json, "\"computeType\":\"aws_fargate_task\""));
    /* the structure is kept; WALL_TIME is not a cgprof counter */
    ck_assert_uint_eq(p.node_count, 5);
    for (int c = 0; c < CGPROF_NCOUNTERS; c++) {
        ck_assert_uint_eq(cgprof_profile_total(&p, (enum cgprof_counter)c), 0);
        ck_assert_double_eq(p.sample_weights[c], 0);
    }
    struct cgprof_node *n = cgprof_profile_child(&p, &p.root, "main:<module>");
    ck_assert_ptr_nonnull(n->first_child);
    ck_assert_str_eq(n->first_child->name, "myapp.calc:compute");
    ck_assert_uint_eq(p.node_count, 5);
    cgprof_profile_cleanup(&p);
}
END_TEST

/* Malformed inputs: every one is CGPROF_EJSON and leaves p empty. */
static const char *const bad_cases[] = {
    "",
    " ",
    "null",
    "[]",
    "42",
    "\"profile\"",
    "{",
    "{\"start\": 1,",
    "{\"callgraph\": {\"children\": {\"a\": {}}}",              /* unclosed */
    "{\"callgraph\": {}} trailing",
    "{\"callgraph\": []}",
    "{\"callgraph\": \"x\"}",
    "{\"callgraph\": {\"children\": []}}",
    "{\"callgraph\": {\"children\": {\"a\": 1}}}",
    "{\"callgraph\": {\"children\": {\"a\": {\"counts\": []}}}}",
    "{\"callgraph\": {\"counts\": {\"RUNNABLE\": -1}}}",
    "{\"callgraph\": {\"counts\": {\"RUNNABLE\": \"3\"}}}",
    "{\"callgraph\": {\"counts\": {\"RUNNABLE\": 1.5}}}",
    "{\"callgraph\": {\"counts\": {\"WALL_TIME\": true}}}",
    "{\"callgraph\": {\"counts\": {\"RUNNABLE\": 99999999999999999999}}}",
    "{\"callgraph\": {\"children\": {\"a\": {\"children\": {\"b\": {\"children\": 7}}}}}}",
    "{\"callgraph\": {\"children\": {\"a\\u0000b\": {}}}}",
    "{\"callgraph\": {\"children\": {\"\xff\": {}}}}",           /* invalid UTF-8 */
    "{\"start\": 1, \"start\": }",
    "{'start': 1}",
    "{\"callgraph\": {\"children\": {\"a\": {\"counts\": {\"RUNNABLE\": 1}}}}, }",
};

START_TEST(test_decode_malformed_table)
{
    cgprof_log_set_level(CGPROF_LOG_OFF);
    const char *in = bad_cases[_i];
    size_t len = strlen(in);
    struct cgprof_profile p;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    const char *g = cgprof_test_guarded_copy(in, len);
    ck_assert_ptr_nonnull(g);
    ck_assert_msg(cgprof_profile_decode_codeguru(&p, g, len) == CGPROF_EJSON, "case %d: %s", _i, in);
    ck_assert_uint_eq(p.node_count, 0);
    ck_assert_ptr_null(p.root.first_child);
    ck_assert_ptr_null(p.fleet_info_json);
    ck_assert_uint_eq(p.start_ms, 0);
    cgprof_profile_cleanup(&p);
}
END_TEST

/* Every proper prefix of a valid document, ending at a PROT_NONE page. */
START_TEST(test_decode_every_truncation)
{
    cgprof_log_set_level(CGPROF_LOG_OFF);
    struct cgprof_profile p;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    fill(&p);
    struct cgprof_buf b;
    encode(&p, &b);
    cgprof_profile_cleanup(&p);
    for (size_t len = 0; len < b.len; len++) {
        ck_assert_int_eq(cgprof_profile_init(&p), 0);
        const char *g = cgprof_test_guarded_copy(b.data, len);
        ck_assert_int_eq(cgprof_profile_decode_codeguru(&p, g, len), CGPROF_EJSON);
        ck_assert_uint_eq(p.node_count, 0);
        cgprof_profile_cleanup(&p);
    }
    cgprof_buf_cleanup(&b);
}
END_TEST

/* Wrongly typed metadata keeps defaults instead of failing. */
START_TEST(test_decode_lenient_metadata)
{
    static const char doc[] =
        "{\"start\": \"soon\", \"end\": -5, \"agentMetadata\": {\"sampleWeights\": "
        "{\"RUNNABLE\": \"x\", \"IDLE\": -1, \"BLOCKED\": 2}, \"durationInMs\": null, "
        "\"fleetInfo\": [1], \"runtimeVersion\": 3, \"metrics\": 1}, "
        "\"debugInfo\": {\"agentStartTime\": \"yesterday\", \"processId\": \"1\", "
        "\"errorsCount\": {\"errorsCount\": \"a\", \"sdkClientErrors\": 2}, \"groupName\": 5}, "
        "\"callgraph\": {\"children\": {\"a\": {\"counts\": {\"RUNNABLE\": 3, \"SOMETHING\": 1}}}}}";
    struct cgprof_profile p;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    ck_assert_int_eq(cgprof_profile_decode_codeguru(&p, doc, sizeof(doc) - 1), 0);
    ck_assert_uint_eq(p.start_ms, 0);
    ck_assert_uint_eq(p.end_ms, 0);
    ck_assert_double_eq(p.sample_weights[CGPROF_COUNTER_RUNNABLE], 0);
    ck_assert_double_eq(p.sample_weights[CGPROF_COUNTER_IDLE], 0);
    ck_assert_double_eq(p.sample_weights[CGPROF_COUNTER_BLOCKED], 2);
    ck_assert_ptr_null(p.fleet_info_json);
    ck_assert_str_eq(p.runtime_version, "");
    ck_assert_str_eq(p.group_name, "");
    ck_assert_uint_eq(p.agent_start_ms, 0);
    ck_assert_int_eq(p.pid, 0);
    ck_assert_uint_eq(p.errors.errors_count, 0);
    ck_assert_uint_eq(p.errors.sdk_client_errors, 2);
    ck_assert_uint_eq(cgprof_profile_total(&p, CGPROF_COUNTER_RUNNABLE), 3);
    ck_assert_uint_eq(p.node_count, 1);
    cgprof_profile_cleanup(&p);
    /* an object with no known key is an empty profile */
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    ck_assert_int_eq(cgprof_profile_decode_codeguru(&p, "{}", 2), 0);
    ck_assert_uint_eq(p.node_count, 0);
    cgprof_profile_cleanup(&p);
}
END_TEST

static char *nested_doc(int levels)
{
    size_t cap = (size_t)levels * 40 + 64;
    char *s = malloc(cap);
    ck_assert_ptr_nonnull(s);
    size_t n = (size_t)sprintf(s, "{\"callgraph\": ");
    for (int i = 0; i < levels; i++)
        n += (size_t)sprintf(s + n, "{\"children\": {\"f\": ");
    n += (size_t)sprintf(s + n, "{\"counts\": {\"RUNNABLE\": 1}}");
    for (int i = 0; i < levels; i++)
        n += (size_t)sprintf(s + n, "}}");
    sprintf(s + n, "}");
    return s;
}

START_TEST(test_decode_deep_nesting)
{
    cgprof_log_set_level(CGPROF_LOG_OFF);
    struct cgprof_profile p;
    /* 900 frames (1 800 JSON levels) decode */
    char *ok = nested_doc(900);
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    ck_assert_int_eq(cgprof_profile_decode_codeguru(&p, ok, strlen(ok)), 0);
    ck_assert_uint_eq(p.node_count, 900);
    ck_assert_uint_eq(cgprof_profile_total(&p, CGPROF_COUNTER_RUNNABLE), 1);
    /* and re-encode to the same structure without recursion */
    struct cgprof_buf b;
    encode(&p, &b);
    cgprof_profile_cleanup(&p);
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    ck_assert_int_eq(cgprof_profile_decode_codeguru(&p, b.data, b.len), 0);
    ck_assert_uint_eq(p.node_count, 900);
    cgprof_profile_cleanup(&p);
    cgprof_buf_cleanup(&b);
    free(ok);
    /* 5 000 frames are refused, not a stack overflow */
    char *deep = nested_doc(5000);
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    ck_assert_int_eq(cgprof_profile_decode_codeguru(&p, deep, strlen(deep)), CGPROF_EJSON);
    ck_assert_uint_eq(p.node_count, 0);
    cgprof_profile_cleanup(&p);
    free(deep);
}
END_TEST

/* 100 000 nodes: encodes into a bounded buffer well under the spool's
 * limits, decodes back to the same tree, and a too-small buffer fails
 * with ETOOBIG leaving the buffer as it was. */
START_TEST(test_big_tree_round_trip)
{
    struct cgprof_profile p, q;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    p.start_ms = 1, p.end_ms = 2;
    char f[3][48];
    const char *frames[3] = { f[0], f[1], f[2] };
    for (int i = 0; i < 100000; i++) {
        snprintf(f[0], sizeof(f[0]), "thread_%d", i % 10);
        snprintf(f[1], sizeof(f[1]), "module::function_%d", i % 1000);
        snprintf(f[2], sizeof(f[2]), "leaf_function_number_%d", i);
        ck_assert_int_eq(cgprof_profile_add_stack(&p, frames, 3, (enum cgprof_counter)(i % 6),
                                                  (uint64_t)i + 1), 0);
    }
    ck_assert_uint_eq(p.node_count, 101010);
    struct cgprof_buf b;
    cgprof_buf_init(&b, 16u << 20); /* the memory bound for this tree */
    ck_assert_int_eq(cgprof_profile_encode_codeguru(&p, &b), 0);
    ck_assert_uint_lt(b.len, 8u << 20);
    ck_assert_int_eq(cgprof_profile_init(&q), 0);
    ck_assert_int_eq(cgprof_profile_decode_codeguru(&q, b.data, b.len), 0);
    ck_assert_uint_eq(q.node_count, p.node_count);
    for (int c = 0; c < CGPROF_NCOUNTERS; c++)
        ck_assert_uint_eq(cgprof_profile_total(&q, (enum cgprof_counter)c),
                          cgprof_profile_total(&p, (enum cgprof_counter)c));
    ck_assert_uint_lt(cgprof_profile_memory(&q), 64u << 20);
    struct cgprof_buf b2;
    cgprof_buf_init(&b2, 16u << 20);
    ck_assert_int_eq(cgprof_profile_encode_codeguru(&q, &b2), 0);
    ck_assert_uint_eq(b.len, b2.len);
    ck_assert_int_eq(memcmp(b.data, b2.data, b.len), 0);

    struct cgprof_buf small;
    cgprof_buf_init(&small, 1u << 20);
    ck_assert_int_eq(cgprof_buf_appends(&small, "keep"), 0);
    ck_assert_int_eq(cgprof_profile_encode_codeguru(&p, &small), CGPROF_ETOOBIG);
    ck_assert_uint_eq(small.len, 4);
    ck_assert_str_eq(small.data, "keep");
    cgprof_buf_cleanup(&small);
    cgprof_buf_cleanup(&b);
    cgprof_buf_cleanup(&b2);
    cgprof_profile_cleanup(&p);
    cgprof_profile_cleanup(&q);
}
END_TEST

START_TEST(test_encode_decode_alloc_failures)
{
    cgprof_log_set_level(CGPROF_LOG_OFF);
    struct cgprof_profile p;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    fill(&p);
    struct cgprof_buf ref;
    encode(&p, &ref);
    int saw_enomem = 0, saw_ok = 0;
    for (long k = 0; k < 3000 && !saw_ok; k++) {
        struct cgprof_buf b;
        cgprof_buf_init(&b, BIG);
        cgprof_alloc_fail_after(k);
        int rc = cgprof_profile_encode_codeguru(&p, &b);
        cgprof_alloc_fail_after(-1);
        ck_assert(rc == 0 || rc == CGPROF_ENOMEM);
        if (rc == 0)
            ck_assert_str_eq(b.data, ref.data);
        else
            ck_assert_uint_eq(b.len, 0);
        cgprof_buf_cleanup(&b);

        struct cgprof_profile q;
        ck_assert_int_eq(cgprof_profile_init(&q), 0);
        cgprof_alloc_fail_after(k);
        rc = cgprof_profile_decode_codeguru(&q, ref.data, ref.len);
        cgprof_alloc_fail_after(-1);
        ck_assert_int_eq(rc == 0 || rc == CGPROF_ENOMEM, 1);
        if (rc == 0) {
            saw_ok = 1;
            ck_assert_uint_eq(q.node_count, p.node_count);
        } else {
            saw_enomem |= rc == CGPROF_ENOMEM;
            ck_assert_uint_eq(q.node_count, 0);
        }
        cgprof_profile_cleanup(&q);
    }
    ck_assert(saw_enomem && saw_ok);
    cgprof_buf_cleanup(&ref);
    cgprof_profile_cleanup(&p);
}
END_TEST

static Suite *json_suite(void)
{
    Suite *s = suite_create("profile");
    TCase *tc = tcase_create("codeguru_json");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_json_append_string_escapes, 0, (int)CGPROF_ARRAY_SIZE(esc_cases));
    tcase_add_test(tc, test_encode_shape);
    tcase_add_test(tc, test_encode_fleet_info_text);
    tcase_add_test(tc, test_round_trip_identical);
    tcase_add_test(tc, test_decode_wire_example);
    tcase_add_loop_test(tc, test_decode_malformed_table, 0, (int)CGPROF_ARRAY_SIZE(bad_cases));
    tcase_add_test(tc, test_decode_every_truncation);
    tcase_add_test(tc, test_decode_lenient_metadata);
    tcase_add_test(tc, test_decode_deep_nesting);
    tcase_add_test(tc, test_big_tree_round_trip);
    tcase_add_test(tc, test_encode_decode_alloc_failures);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cgprof_test_run(json_suite());
}
