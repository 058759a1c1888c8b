/* Unit tests for uploader/sink_thread.c, the engine under both network
 * sinks, driven by a fake sink whose delivery outcome the test sets: a
 * failure goes to the spool and is drained after the next success under
 * the same token, a rejection is dropped, the queue bound spools the
 * oldest, stop_request writes pending profiles to disk before the last
 * try (which then removes them), a hanging delivery leaves stop within its
 * bound with the profile kept, and the periodic tick runs. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "../../../config/config.h"
#include "../../../uploader/uploader_int.h"

static char outdir[256];
static atomic_int result;           /* what deliver returns */
static atomic_int gate_open;        /* deliver waits while 0 */
static atomic_int delivers, ticks, abandoned_kept;
static char tokens[8][64];          /* the first tokens deliver saw */

static void setup(void)
{
    snprintf(outdir, sizeof(outdir), "%s", cgprof_test_tmpdir());
    atomic_store(&result, CGPROF__SINK_SENT);
    atomic_store(&gate_open, 1);
    atomic_store(&delivers, 0);
    atomic_store(&ticks, 0);
    atomic_store(&abandoned_kept, -1);
    memset(tokens, 0, sizeof(tokens));
}

static int fake_setup(struct cgprof__sink *s)
{
    return strcmp(s->cfg.profiling_group_name, "Bad") == 0 ? CGPROF_EINVAL : 0;
}

static const char *fake_spool_name(const struct cgprof__sink *s)
{
    (void)s;
    return "fake";
}

static void fake_started(const struct cgprof__sink *s)
{
    (void)s;
}

static int fake_thread_init(struct cgprof__sink *s)
{
    (void)s;
    return 0;
}

static unsigned fake_tick(struct cgprof__sink *s)
{
    (void)s;
    atomic_fetch_add(&ticks, 1);
    return 100;
}

static enum cgprof__sink_result fake_deliver(struct cgprof__sink *s, const char *token,
                                             const struct cgprof_buf *gz)
{
    (void)s;
    int n = atomic_fetch_add(&delivers, 1);
    if (n < 8)
        snprintf(tokens[n], sizeof(tokens[n]), "%s", token);
    if (gz->len < 2 || (unsigned char)gz->data[0] != 0x1f)     /* gzip'd, as stored */
        return CGPROF__SINK_REJECTED;
    while (!atomic_load(&gate_open))
        usleep(5000);
    return (enum cgprof__sink_result)atomic_load(&result);
}

static void fake_abandoned(const struct cgprof__sink *s, unsigned timeout_ms, int kept)
{
    (void)s;
    (void)timeout_ms;
    atomic_store(&abandoned_kept, kept);
}

static struct cgprof__sink_ops ops = {
    .size = sizeof(struct cgprof__sink),
    .name = "fake",
    .prefix = "fake: ",
    .encode_failed = "fake: cannot encode a profile",
    .spool_unusable = "fake spool: outputDir is not usable",
    .thread_name = "cgprof-fake",
    .spool_subdir = "fakesink",
    .spool_on_stop_request = true,
    .setup = fake_setup,
    .spool_name = fake_spool_name,
    .started = fake_started,
    .thread_init = fake_thread_init,
    .deliver = fake_deliver,
    .abandoned = fake_abandoned,
};
static struct cgprof__sink_class cls = CGPROF__SINK_CLASS_INIT(&ops);

static void start(const char *group)
{
    char opts[512];
    struct cgprof_config cfg;
    snprintf(opts, sizeof(opts), "profilingGroupName:%s,outputDir:%s", group, outdir);
    ck_assert_int_eq(cgprof_config_load(&cfg, opts, NULL), 0);
    ck_assert_int_eq(cgprof__sink_start(&cls, &cfg), strcmp(group, "Bad") == 0 ? CGPROF_EINVAL : 0);
}

static void submit(int n)
{
    struct cgprof_profile p;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    p.start_ms = 1700000000000ull + (uint64_t)n * 1000;
    p.end_ms = p.start_ms + 900;
    p.duration_ms = 1000;
    snprintf(p.group_name, sizeof(p.group_name), "G");
    const char *st[] = { "main", "work" };
    ck_assert_int_eq(cgprof_profile_add_stack(&p, st, 2, CGPROF_COUNTER_RUNNABLE, 3), 0);
    ck_assert_int_eq(cgprof__sink_submit(&cls, &p, NULL), 0);
    cgprof_profile_cleanup(&p);
}

static struct cgprof_uploader_stats stats(void)
{
    struct cgprof_uploader_stats st;
    cgprof__sink_get_stats(&cls, &st);
    return st;
}

static int spooled_files(void)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/fakesink/spool/fake", outdir);
    return cgprof_spool_count_dir(dir);
}

/* Starts the sink with delivery stuck on a first profile (in flight). */
static void start_stuck(void)
{
    atomic_store(&gate_open, 0);
    start("G");
    submit(0);
    for (int i = 0; i < 50 && atomic_load(&delivers) < 1; i++)
        usleep(10000);
    ck_assert_int_eq(atomic_load(&delivers), 1);
}

/* Polls until field of the stats reaches n or ms pass. */
#define WAIT_STAT(field, n, ms)                                                \
    do {                                                                       \
        for (unsigned w_ = 0; w_ < (ms) && stats().field < (n); w_ += 10)      \
            usleep(10000);                                                     \
        ck_assert_uint_ge(stats().field, (n));                                 \
    } while (0)

/* A failed delivery goes to the spool; the next successful delivery
 * drains it at once, under the token the profile was first sent with. */
START_TEST(test_sink_failure_spools_then_drains_with_same_token)
{
    atomic_store(&result, CGPROF__SINK_FAILED);
    start("G");
    submit(0);
    WAIT_STAT(spooled, 1, 5000);
    ck_assert_int_eq(spooled_files(), 1);
    ck_assert_uint_eq(stats().delivered, 0);
    ck_assert_int_eq(atomic_load(&delivers), 1);
    atomic_store(&result, CGPROF__SINK_SENT);
    submit(1);
    WAIT_STAT(spool_delivered, 1, 5000);
    ck_assert_int_eq(spooled_files(), 0);
    ck_assert_int_eq(atomic_load(&delivers), 3);
    ck_assert_str_ne(tokens[0], tokens[1]);
    ck_assert_str_eq(tokens[2], tokens[0]);
    ck_assert_uint_eq(strlen(tokens[0]), 36);
    cgprof__sink_stop(&cls, 500);
    struct cgprof_uploader_stats st = stats();     /* the stopped sink's */
    ck_assert_uint_eq(st.submitted, 2);
    ck_assert_uint_eq(st.delivered, 2);
    ck_assert_uint_eq(st.spooled, 1);
    ck_assert_uint_eq(st.dropped, 0);
}
END_TEST

START_TEST(test_sink_rejected_is_dropped)
{
    atomic_store(&result, CGPROF__SINK_REJECTED);
    start("G");
    submit(0);
    WAIT_STAT(dropped, 1, 5000);
    cgprof__sink_stop(&cls, 500);
    ck_assert_int_eq(atomic_load(&delivers), 1);
    ck_assert_int_eq(spooled_files(), 0);
    ck_assert_uint_eq(stats().spooled, 0);
}
END_TEST

/* 16 held in memory: with delivery stuck on the first, the 18th submit
 * leaves two of the oldest waiting ones in the spool. */
START_TEST(test_sink_queue_bound_spools_oldest)
{
    start_stuck();
    for (int i = 1; i < 18; i++)
        submit(i);
    ck_assert_uint_eq(stats().spooled, 2);
    ck_assert_int_eq(spooled_files(), 2);
    atomic_store(&gate_open, 1);
    WAIT_STAT(delivered, 18, 5000);     /* the 16, then the spool's 2 */
    cgprof__sink_stop(&cls, 2000);
    ck_assert_uint_eq(stats().submitted, 18);
    ck_assert_uint_eq(stats().spool_delivered, 2);
    ck_assert_int_eq(spooled_files(), 0);
}
END_TEST

/* stop_request writes pending profiles to disk before any last try; the
 * ones delivered afterwards have their copies removed. */
START_TEST(test_sink_stop_request_spools_first)
{
    start_stuck();
    submit(1);
    cgprof__sink_stop_request(&cls, 2000);
    ck_assert_int_eq(spooled_files(), 2);
    atomic_store(&gate_open, 1);
    cgprof__sink_stop(&cls, 2000);
    ck_assert_int_eq(spooled_files(), 0);
    ck_assert_uint_eq(stats().delivered, 2);
    ck_assert_int_eq(atomic_load(&abandoned_kept), -1);     /* finished in time */
}
END_TEST

/* Without spool_on_stop_request, a delivery that never returns still
 * leaves stop within its bound, and the profile is kept in the spool. */
START_TEST(test_sink_hanging_delivery_stop_bounded)
{
    ops.spool_on_stop_request = false;
    start_stuck();
    ck_assert_int_eq(spooled_files(), 0);
    uint64_t t0 = cgprof_now_ns();
    cgprof__sink_stop(&cls, 300);
    uint64_t ms = (cgprof_now_ns() - t0) / 1000000u;
    ck_assert_uint_ge(ms, 250);
    ck_assert_uint_lt(ms, 1000);
    ck_assert_int_eq(atomic_load(&abandoned_kept), 1);
    ck_assert_int_eq(spooled_files(), 1);
    ck_assert_int_eq(cgprof__sink_submit(&cls, NULL, NULL), CGPROF_EINVAL);
}
END_TEST

START_TEST(test_sink_tick_and_setup_failure)
{
    ops.tick = fake_tick;
    start("Bad");                                   /* setup refuses: not running */
    ck_assert_int_eq(atomic_load(&ticks), 0);
    struct cgprof_profile p;
    ck_assert_int_eq(cgprof_profile_init(&p), 0);
    ck_assert_int_eq(cgprof__sink_submit(&cls, &p, NULL), CGPROF_EINVAL);
    cgprof_profile_cleanup(&p);
    start("G");
    usleep(550000);
    int n = atomic_load(&ticks);
    ck_assert_int_ge(n, 4);                         /* at once, then every 100 ms */
    ck_assert_int_le(n, 7);
    cgprof__sink_stop(&cls, 500);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("uploader");
    TCase *tc = tcase_create("sink_thread");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_sink_failure_spools_then_drains_with_same_token);
    tcase_add_test(tc, test_sink_rejected_is_dropped);
    tcase_add_test(tc, test_sink_queue_bound_spools_oldest);
    tcase_add_test(tc, test_sink_stop_request_spools_first);
    tcase_add_test(tc, test_sink_hanging_delivery_stop_bounded);
    tcase_add_test(tc, test_sink_tick_and_setup_failure);
    suite_add_tcase(su, tc);
    return cgprof_test_run(su);
}
