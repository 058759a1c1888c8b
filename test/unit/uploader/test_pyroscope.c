/* Unit tests for uploader/pyroscope.c and pyroscope_thread.c: settings
 * from the configuration (user info split off the endpoint and decoded,
 * options winning, the application-name fallbacks), the ingest request
 * (exact target and query, multipart parts, basic and bearer auth), and
 * the sink end to end against a stub server: each profile posted once,
 * an outage spooling profiles that a later sink delivers, 4xx refusals
 * dropped, 401 kept, and stop bounded by its deadline when the endpoint
 * hangs. test/integration/pyroscope.sh decodes the bodies with protoc's
 * reader. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "stub_http.h"
#include "../../../config/config.h"
#include "../../../uploader/uploader_int.h"

static char outdir[256];

static void setup(void)
{
    snprintf(outdir, sizeof(outdir), "%s", cgprof_test_tmpdir());
}

static void load(struct cgprof_config *cfg, const char *opts)
{
    ck_assert_int_eq(cgprof_config_load(cfg, opts, NULL), 0);
}

static void make_profile(struct cgprof_profile *p, int n)
{
    ck_assert_int_eq(cgprof_profile_init(p), 0);
    p->start_ms = 1796637600500ull + (uint64_t)n * 10000;
    p->end_ms = p->start_ms + 9200;
    p->duration_ms = 9200;
    p->sample_weights[CGPROF_COUNTER_RUNNABLE] = 250;
    p->sample_weights[CGPROF_COUNTER_WAITING] = 1;
    snprintf(p->group_name, sizeof(p->group_name), "shop");
    const char *s[] = { "app:main", "app:work" };
    ck_assert_int_eq(cgprof_profile_add_stack(p, s, 2, CGPROF_COUNTER_RUNNABLE, 7 + (uint64_t)n), 0);
    ck_assert_int_eq(cgprof_profile_add_stack(p, s, 1, CGPROF_COUNTER_WAITING, 3), 0);
}

/* The profile as the spool keeps it. */
static void stored(int n, struct cgprof_buf *gz)
{
    struct cgprof_profile p;
    struct cgprof_buf json;
    make_profile(&p, n);
    cgprof_buf_init(&json, 1 << 20);
    cgprof_buf_init(gz, 1 << 20);
    ck_assert_int_eq(cgprof_profile_encode_codeguru(&p, &json), 0);
    ck_assert_int_eq(cgprof_gzip(json.data, json.len, gz), 0);
    cgprof_buf_cleanup(&json);
    cgprof_profile_cleanup(&p);
}

/* ---- settings ---------------------------------------------------------- */

struct settings_case {
    const char *opts;
    const char *endpoint, *user, *password, *token, *tenant, *app, *tags;
};

static const struct settings_case settings_cases[] = {
    { "sink:pyroscope,endpoint:http://127.0.0.1:4040", "http://127.0.0.1:4040", "", "", "", "",
      NULL, "" },
    { "sink:pyroscope,endpoint:https://123%3A4:p%40ss%2Fw@profiles.example.net/base,"
      "applicationName:shop.api,tags:env=prod;region=eu",
      "https://profiles.example.net/base", "123:4", "p@ss/w", "", "", "shop.api",
      "env=prod;region=eu" },
    { "sink:pyroscope,endpoint:https://u:p@h,pyroscopeUser:v,pyroscopePassword:q,"
      "pyroscopeToken:tok,pyroscopeTenant:team-a,profilingGroupName:grp",
      "https://h", "v", "q", "tok", "team-a", "grp", "" },
};

START_TEST(test_pyroscope_settings_table)
{
    const struct settings_case *c = &settings_cases[_i];
    struct cgprof_config cfg;
    struct cgprof_pyroscope_settings st;
    load(&cfg, c->opts);
    ck_assert_int_eq(cgprof_pyroscope_settings_init(&st, &cfg), 0);
    ck_assert_str_eq(st.endpoint, c->endpoint);
    ck_assert_str_eq(st.user, c->user);
    ck_assert_str_eq(st.password, c->password);
    ck_assert_str_eq(st.token, c->token);
    ck_assert_str_eq(st.tenant, c->tenant);
    ck_assert_str_eq(st.tags, c->tags);
    /* No applicationName, no group: the program name. */
    ck_assert_str_eq(st.app, c->app ? c->app : cgprof_program_name());
}
END_TEST

START_TEST(test_pyroscope_settings_bad)
{
    struct cgprof_config cfg;
    struct cgprof_pyroscope_settings st;
    cgprof_config_defaults(&cfg);
    ck_assert_int_eq(cgprof_pyroscope_settings_init(&st, &cfg), CGPROF_EINVAL);
    snprintf(cfg.endpoint, sizeof(cfg.endpoint), "http://u:%%zz@h");
    ck_assert_int_eq(cgprof_pyroscope_settings_init(&st, &cfg), CGPROF_EINVAL);
    snprintf(cfg.endpoint, sizeof(cfg.endpoint), "http://u:%%4@h");
    ck_assert_int_eq(cgprof_pyroscope_settings_init(&st, &cfg), CGPROF_EINVAL);
}
END_TEST

/* ---- the request ------------------------------------------------------- */

/* Finds part name's content in a multipart body. */
static const char *part(const struct cgprof_pyroscope_request *rq, const char *name, size_t *len)
{
    char hdr[160], delim[80];
    snprintf(hdr, sizeof(hdr), "Content-Disposition: form-data; name=\"%s\"", name);
    snprintf(delim, sizeof(delim), "\r\n--%s", rq->boundary);
    const char *h = memmem(rq->body.data, rq->body.len, hdr, strlen(hdr));
    ck_assert_msg(h != NULL, "part %s missing", name);
    const char *start = memmem(h, rq->body.len - (size_t)(h - rq->body.data), "\r\n\r\n", 4);
    ck_assert_ptr_nonnull(start);
    start += 4;
    const char *end = memmem(start, rq->body.len - (size_t)(start - rq->body.data), delim,
                             strlen(delim));
    ck_assert_ptr_nonnull(end);
    *len = (size_t)(end - start);
    return start;
}

START_TEST(test_pyroscope_build_request)
{
    struct cgprof_config cfg;
    struct cgprof_pyroscope_settings st;
    struct cgprof_pyroscope_request rq;
    struct cgprof_buf gz;
    load(&cfg, "sink:pyroscope,endpoint:http://u:pw@127.0.0.1:4040/pyro/,"
               "applicationName:shop.api,tags:env=prod;region=eu-west-1");
    ck_assert_int_eq(cgprof_pyroscope_settings_init(&st, &cfg), 0);
    stored(0, &gz);
    ck_assert_int_eq(cgprof_pyroscope_build(&st, gz.data, gz.len, &rq), 0);
    /* start 1796637600.5 s rounds down, end 1796637609.7 s up. */
    ck_assert_str_eq(rq.target, "/pyro/ingest?name=shop.api%7Benv%3Dprod%2Cregion%3Deu-west-1%7D"
                                "&from=1796637600&until=1796637610&spyName=cgprof"
                                "&sampleRate=250&format=pprof");
    ck_assert_str_eq(rq.url, "http://127.0.0.1:4040/pyro/ingest?name=shop.api%7Benv%3Dprod%2C"
                             "region%3Deu-west-1%7D&from=1796637600&until=1796637610"
                             "&spyName=cgprof&sampleRate=250&format=pprof");
    ck_assert_uint_eq(rq.from, 1796637600u);
    ck_assert_uint_eq(rq.until, 1796637610u);
    ck_assert_str_eq(rq.authorization.data, "Basic dTpwdw==");
    char ct[128];
    snprintf(ct, sizeof(ct), "multipart/form-data; boundary=%s", rq.boundary);
    ck_assert_str_eq(rq.content_type, ct);
    size_t n;
    const char *pp = part(&rq, "profile", &n);
    struct cgprof_buf raw;
    cgprof_buf_init(&raw, 1 << 20);
    ck_assert_int_eq(cgprof_gunzip(pp, n, &raw), 0);
    /* A Profile message: field 1 (sample_type), length-delimited, first. */
    ck_assert_uint_gt(raw.len, 16);
    ck_assert_uint_eq((unsigned char)raw.data[0], 0x0a);
    ck_assert_ptr_nonnull(memmem(raw.data, raw.len, "work", 4));
    cgprof_buf_cleanup(&raw);
    const char *cfgp = part(&rq, "sample_type_config", &n);
    ck_assert_ptr_nonnull(memmem(cfgp, n, "\"cpu\":", 6));
    ck_assert_ptr_nonnull(memmem(cfgp, n, "\"wall\":", 7));
    /* The body ends with the closing delimiter. */
    char close[80];
    snprintf(close, sizeof(close), "--%s--\r\n", rq.boundary);
    ck_assert_uint_ge(rq.body.len, strlen(close));
    ck_assert_mem_eq(rq.body.data + rq.body.len - strlen(close), close, strlen(close));
    cgprof_pyroscope_request_cleanup(&rq);

    /* A bearer token wins; no tags: the bare name. */
    load(&cfg, "sink:pyroscope,endpoint:https://h,applicationName:a,pyroscopeUser:u,"
               "pyroscopeToken:t0k.en");
    ck_assert_int_eq(cgprof_pyroscope_settings_init(&st, &cfg), 0);
    ck_assert_int_eq(cgprof_pyroscope_build(&st, gz.data, gz.len, &rq), 0);
    ck_assert_str_eq(rq.authorization.data, "Bearer t0k.en");
    ck_assert_str_eq(rq.target, "/ingest?name=a&from=1796637600&until=1796637610&spyName=cgprof"
                                "&sampleRate=250&format=pprof");
    cgprof_pyroscope_request_cleanup(&rq);

    /* Not a stored profile. */
    ck_assert_int_ne(cgprof_pyroscope_build(&st, "garbage", 7, &rq), 0);
    ck_assert_uint_eq(rq.body.len, 0);
    cgprof_pyroscope_request_cleanup(&rq);
    cgprof_buf_cleanup(&gz);
}
END_TEST

/* ---- the sink end to end ------------------------------------------------ */

static void start_sink(const struct stub_server *s, const char *extra)
{
    char opts[1024];
    struct cgprof_config cfg;
    snprintf(opts, sizeof(opts), "sink:pyroscope,endpoint:http://127.0.0.1:%u,outputDir:%s,"
             "applicationName:shop%s%s", s->port, outdir, extra ? "," : "", extra ? extra : "");
    load(&cfg, opts);
    ck_assert_int_eq(cgprof_pyroscope_start(&cfg), 0);
}

static void submit(int n)
{
    struct cgprof_profile p;
    make_profile(&p, n);
    ck_assert_int_eq(cgprof_pyroscope_submit(&p), 0);
    cgprof_profile_cleanup(&p);
}

static struct cgprof_uploader_stats stats(void)
{
    struct cgprof_uploader_stats st;
    cgprof_pyroscope_get_stats(&st);
    return st;
}

static bool wait_delivered(uint64_t n, unsigned ms)
{
    for (unsigned w = 0; w < ms; w += 20) {
        if (stats().delivered >= n)
            return true;
        usleep(20000);
    }
    return false;
}

static int spooled_files(void)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/pyroscope/spool/shop", outdir);
    return cgprof_spool_count_dir(dir);
}

START_TEST(test_pyroscope_sink_delivers_each_once)
{
    struct stub_reply r[] = { { STUB_REPLY, 200, NULL, "", NULL }, { 0 } };
    struct stub_server s;
    stub_start(&s, r);
    start_sink(&s, "pyroscopeTenant:t1,pyroscopeToken:abc");
    submit(0);
    submit(1);
    ck_assert(wait_delivered(2, 5000));
    cgprof_pyroscope_stop(2000);
    ck_assert_uint_eq(stub_count(&s), 2);
    char v[256];
    for (int i = 0; i < 2; i++) {
        ck_assert_str_eq(s.reqs[i].method, "POST");
        char want[160];
        snprintf(want, sizeof(want), "/ingest?name=shop&from=%llu&",
                 (unsigned long long)(1796637600ull + (unsigned)i * 10));
        ck_assert_msg(strncmp(s.reqs[i].target, want, strlen(want)) == 0, "%s", s.reqs[i].target);
        ck_assert_str_eq(stub_header(&s.reqs[i], "X-Scope-OrgID", v, sizeof(v)), "t1");
        ck_assert_str_eq(stub_header(&s.reqs[i], "Authorization", v, sizeof(v)), "Bearer abc");
        ck_assert(strncmp(stub_header(&s.reqs[i], "Content-Type", v, sizeof(v)),
                          "multipart/form-data; boundary=", 30) == 0);
    }
    struct cgprof_uploader_stats st = stats();
    ck_assert_uint_eq(st.submitted, 2);
    ck_assert_uint_eq(st.delivered, 2);
    ck_assert_uint_eq(st.spooled, 0);
    ck_assert_int_eq(spooled_files(), 0);
    stub_stop(&s);
}
END_TEST

START_TEST(test_pyroscope_sink_outage_spools_then_delivers)
{
    struct stub_reply down[] = { { STUB_REPLY, 503, NULL, "busy", NULL }, { 0 } };
    struct stub_server s;
    stub_start(&s, down);
    start_sink(&s, NULL);
    submit(0);
    submit(1);
    /* 3 attempts each with backoff, then the spool; stop spools the rest. */
    cgprof_pyroscope_stop(300);
    struct cgprof_uploader_stats st = stats();
    ck_assert_uint_eq(st.delivered, 0);
    ck_assert_int_eq(spooled_files(), 2);
    stub_stop(&s);

    /* A later process (a new sink) finds the spool and delivers it. */
    struct stub_reply up[] = { { STUB_REPLY, 200, NULL, "", NULL }, { 0 } };
    stub_start(&s, up);
    start_sink(&s, NULL);
    ck_assert(wait_delivered(2, 5000));
    cgprof_pyroscope_stop(2000);
    st = stats();
    ck_assert_uint_eq(st.spool_delivered, 2);
    ck_assert_int_eq(spooled_files(), 0);
    ck_assert_uint_eq(stub_count(&s), 2);
    /* Oldest first: from= of profile 0, then profile 1. */
    ck_assert_ptr_nonnull(strstr(s.reqs[0].target, "from=1796637600&"));
    ck_assert_ptr_nonnull(strstr(s.reqs[1].target, "from=1796637610&"));
    stub_stop(&s);
}
END_TEST

START_TEST(test_pyroscope_sink_refusals)
{
    /* 400: never acceptable, dropped after one try; 401: kept. */
    struct stub_reply bad[] = { { STUB_REPLY, 400, NULL, "bad profile", NULL }, { 0 } };
    struct stub_server s;
    stub_start(&s, bad);
    start_sink(&s, NULL);
    submit(0);
    for (int i = 0; i < 250 && stats().dropped < 1; i++)
        usleep(20000);
    cgprof_pyroscope_stop(1000);
    ck_assert_uint_eq(stats().dropped, 1);
    ck_assert_uint_eq(stub_count(&s), 1);
    ck_assert_int_eq(spooled_files(), 0);
    stub_stop(&s);

    struct stub_reply auth[] = { { STUB_REPLY, 401, NULL, "who?", NULL }, { 0 } };
    stub_start(&s, auth);
    start_sink(&s, NULL);
    submit(1);
    for (int i = 0; i < 250 && stats().spooled < 1; i++)
        usleep(20000);
    cgprof_pyroscope_stop(1000);
    ck_assert_uint_eq(stub_count(&s), 1);    /* no retry storm on 401 */
    ck_assert_int_eq(spooled_files(), 1);
    stub_stop(&s);
}
END_TEST

START_TEST(test_pyroscope_sink_hanging_endpoint_bounded)
{
    struct stub_reply hang[] = { { STUB_HANG, 0, NULL, NULL, NULL }, { 0 } };
    struct stub_server s;
    stub_start(&s, hang);
    start_sink(&s, NULL);
    submit(0);
    usleep(100000);
    uint64_t t0 = cgprof_now_ns();
    cgprof_pyroscope_stop(500);
    uint64_t ms = (cgprof_now_ns() - t0) / 1000000u;
    ck_assert_uint_le(ms, 900);
    ck_assert_int_eq(spooled_files(), 1);     /* kept, not lost */
    ck_assert(cgprof_pyroscope_submit(NULL) == CGPROF_EINVAL);
    stub_stop(&s);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("uploader");
    TCase *tc = tcase_create("pyroscope");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_pyroscope_settings_table, 0,
                        (int)CGPROF_ARRAY_SIZE(settings_cases));
    tcase_add_test(tc, test_pyroscope_settings_bad);
    tcase_add_test(tc, test_pyroscope_build_request);
    tcase_add_test(tc, test_pyroscope_sink_delivers_each_once);
    tcase_add_test(tc, test_pyroscope_sink_outage_spools_then_delivers);
    tcase_add_test(tc, test_pyroscope_sink_refusals);
    tcase_add_test(tc, test_pyroscope_sink_hanging_endpoint_bounded);
    suite_add_tcase(su, tc);
    return cgprof_test_run(su);
}
