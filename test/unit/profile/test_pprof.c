/* Tests for profile/pprof.c: the gzip'd protobuf is read back with a small
 * wire-format reader written here (varints, length-delimited fields,
 * packed repeats) and checked field by field: sample types, samples with
 * leaf-first locations and values, functions, locations, mappings, the
 * string table, period and times; plus bounds and allocation failures.
 * test/integration/pprof.sh checks the same output with protoc's reader. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../profile/profile.h"
#include "helpers.h"

static struct cgprof_profile prof;

static void setup(void)
{
    ck_assert_int_eq(cgprof_profile_init(&prof), 0);
    prof.sample_weights[CGPROF_COUNTER_RUNNABLE] = 100.0;
    for (int c = 1; c < CGPROF_NCOUNTERS; c++)
        prof.sample_weights[c] = 1.0;
    prof.start_ms = 1796637600000ull;
    prof.end_ms = prof.start_ms + 60000;
    prof.duration_ms = 59000;
    snprintf(prof.group_name, sizeof(prof.group_name), "checkout");
}

static void teardown(void)
{
    cgprof_profile_cleanup(&prof);
}

static void add(const char *stack, enum cgprof_counter c, uint64_t count)
{
    char copy[512];
    const char *frames[32];
    size_t n = 0;
    snprintf(copy, sizeof(copy), "%s", stack);
    for (char *save = NULL, *t = strtok_r(copy, ";", &save); t;
         t = strtok_r(NULL, ";", &save))
        frames[n++] = t;
    ck_assert_int_eq(cgprof_profile_add_stack(&prof, frames, n, c, count), 0);
}

/* ---- a minimal protobuf reader ----------------------------------------- */

struct rd {
    const unsigned char *p, *end;
};

static uint64_t rd_varint(struct rd *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        ck_assert_msg(r->p < r->end, "varint runs past the end");
        unsigned char b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    ck_abort_msg("varint longer than 10 bytes");
    return 0;
}

/* Next field: returns 0 at the end; *sub gets length-delimited bodies. */
static unsigned rd_field(struct rd *r, uint64_t *v, struct rd *sub)
{
    if (r->p == r->end)
        return 0;
    uint64_t key = rd_varint(r);
    unsigned field = (unsigned)(key >> 3), wire = (unsigned)(key & 7);
    ck_assert_uint_gt(field, 0);
    if (wire == 0) {
        *v = rd_varint(r);
    } else {
        ck_assert_uint_eq(wire, 2);
        uint64_t len = rd_varint(r);
        ck_assert_uint_le(len, (uint64_t)(r->end - r->p));
        sub->p = r->p;
        sub->end = r->p + len;
        r->p += len;
        *v = len;
    }
    return field;
}

#define MAXN 64

struct decoded {
    char *strings[MAXN];
    size_t nstrings;
    uint64_t type[3], unit[3];
    size_t ntypes;
    struct {
        uint64_t locs[16];
        size_t nlocs;
        uint64_t values[4];
        size_t nvalues;
    } samples[MAXN];
    size_t nsamples;
    struct { uint64_t id, name, system_name, filename; } funcs[MAXN];
    size_t nfuncs;
    struct { uint64_t id, mapping, address, function; } locs[MAXN];
    size_t nlocs;
    struct { uint64_t id, start, limit, filename, has_functions; } maps[MAXN];
    size_t nmaps;
    uint64_t time_nanos, duration_nanos, period, period_type, period_unit, comment,
        default_type;
};

static struct decoded d;

static void decode(const struct cgprof_buf *gz)
{
    struct cgprof_buf raw;
    cgprof_buf_init(&raw, 1 << 24);
    ck_assert_int_eq(cgprof_gunzip(gz->data, gz->len, &raw), 0);
    memset(&d, 0, sizeof(d));
    struct rd r = { (const unsigned char *)raw.data, (const unsigned char *)raw.data + raw.len };
    struct rd sub, in, packed;
    uint64_t v, w;
    unsigned f, g;
    while ((f = rd_field(&r, &v, &sub)) != 0) {
        switch (f) {
        case 1: case 11: {
            uint64_t t = 0, u = 0;
            while ((g = rd_field(&sub, &w, &in)) != 0)
                if (g == 1) t = w; else if (g == 2) u = w;
            if (f == 1) {
                ck_assert_uint_lt(d.ntypes, 3);
                d.type[d.ntypes] = t;
                d.unit[d.ntypes++] = u;
            } else {
                d.period_type = t;
                d.period_unit = u;
            }
            break;
        }
        case 2:
            ck_assert_uint_lt(d.nsamples, MAXN);
            while ((g = rd_field(&sub, &w, &packed)) != 0) {
                while (packed.p < packed.end) {
                    if (g == 1)
                        d.samples[d.nsamples].locs[d.samples[d.nsamples].nlocs++] =
                            rd_varint(&packed);
                    else
                        d.samples[d.nsamples].values[d.samples[d.nsamples].nvalues++] =
                            rd_varint(&packed);
                }
            }
            d.nsamples++;
            break;
        case 3:
            while ((g = rd_field(&sub, &w, &in)) != 0) {
                if (g == 1) d.maps[d.nmaps].id = w;
                if (g == 2) d.maps[d.nmaps].start = w;
                if (g == 3) d.maps[d.nmaps].limit = w;
                if (g == 5) d.maps[d.nmaps].filename = w;
                if (g == 7) d.maps[d.nmaps].has_functions = w;
            }
            d.nmaps++;
            break;
        case 4:
            while ((g = rd_field(&sub, &w, &in)) != 0) {
                if (g == 1) d.locs[d.nlocs].id = w;
                if (g == 2) d.locs[d.nlocs].mapping = w;
                if (g == 3) d.locs[d.nlocs].address = w;
                if (g == 4) {
                    struct rd line;
                    unsigned h;
                    uint64_t x;
                    while ((h = rd_field(&in, &x, &line)) != 0)
                        if (h == 1)
                            d.locs[d.nlocs].function = x;
                }
            }
            d.nlocs++;
            break;
        case 5:
            while ((g = rd_field(&sub, &w, &in)) != 0) {
                if (g == 1) d.funcs[d.nfuncs].id = w;
                if (g == 2) d.funcs[d.nfuncs].name = w;
                if (g == 3) d.funcs[d.nfuncs].system_name = w;
                if (g == 4) d.funcs[d.nfuncs].filename = w;
            }
            d.nfuncs++;
            break;
        case 6:
            ck_assert_uint_lt(d.nstrings, MAXN);
            d.strings[d.nstrings++] = strndup((const char *)sub.p, (size_t)v);
            break;
        case 9: d.time_nanos = v; break;
        case 10: d.duration_nanos = v; break;
        case 12: d.period = v; break;
        case 13: d.comment = v; break;
        case 14: d.default_type = v; break;
        default: ck_abort_msg("unexpected field %u", f);
        }
    }
    cgprof_buf_cleanup(&raw);
}

static const char *str(uint64_t i)
{
    ck_assert_uint_lt(i, d.nstrings);
    return d.strings[i];
}

/* The frame (system_name) of location id. */
static const char *loc_frame(uint64_t id)
{
    for (size_t i = 0; i < d.nlocs; i++)
        if (d.locs[i].id == id)
            for (size_t j = 0; j < d.nfuncs; j++)
                if (d.funcs[j].id == d.locs[i].function)
                    return str(d.funcs[j].system_name);
    ck_abort_msg("no location %llu", (unsigned long long)id);
    return NULL;
}

/* The sample whose stack, root first and ';'-joined, is stack. */
static const uint64_t *sample_values(const char *stack)
{
    for (size_t i = 0; i < d.nsamples; i++) {
        char joined[512] = "";
        for (size_t k = d.samples[i].nlocs; k > 0; k--) {
            strcat(joined, loc_frame(d.samples[i].locs[k - 1]));
            if (k > 1)
                strcat(joined, ";");
        }
        if (strcmp(joined, stack) == 0) {
            ck_assert_uint_eq(d.samples[i].nvalues, 3);
            return d.samples[i].values;
        }
    }
    return NULL;
}

START_TEST(test_encode_pprof_fields)
{
    struct cgprof_buf gz;
    cgprof_buf_init(&gz, 1 << 20);
    add("app:main;app:work", CGPROF_COUNTER_RUNNABLE, 3);
    add("app:main;libc.so.6:write", CGPROF_COUNTER_WAITING, 2);
    add("app:main;libc.so.6:write", CGPROF_COUNTER_RUNNABLE, 1);
    add("app:main;app:sleep", CGPROF_COUNTER_IDLE, 5);
    add("app:main;libstdc++.so.6:std::ostream::flush()", CGPROF_COUNTER_BLOCKED, 4);
    add("app+0x40;[unknown]", CGPROF_COUNTER_NATIVE, 1);
    prof.root.counts[CGPROF_COUNTER_RUNNABLE] = 2;
    ck_assert_int_eq(cgprof_profile_encode_pprof(&prof, &gz), 0);
    decode(&gz);

    ck_assert_str_eq(str(0), "");
    for (size_t i = 0; i < d.nstrings; i++)
        for (size_t j = i + 1; j < d.nstrings; j++)
            ck_assert_str_ne(d.strings[i], d.strings[j]);
    ck_assert_uint_eq(d.ntypes, 3);
    ck_assert_str_eq(str(d.type[0]), "cpu");
    ck_assert_str_eq(str(d.unit[0]), "nanoseconds");
    ck_assert_str_eq(str(d.type[1]), "wall");
    ck_assert_str_eq(str(d.unit[1]), "nanoseconds");
    ck_assert_str_eq(str(d.type[2]), "samples");
    ck_assert_str_eq(str(d.unit[2]), "count");
    ck_assert_str_eq(str(d.period_type), "cpu");
    ck_assert_str_eq(str(d.period_unit), "nanoseconds");
    ck_assert_str_eq(str(d.default_type), "cpu");
    ck_assert_str_eq(str(d.comment), "cgprof profile of checkout");
    ck_assert_uint_eq(d.period, 10000000);
    ck_assert_uint_eq(d.time_nanos, 1796637600000ull * 1000000);
    ck_assert_uint_eq(d.duration_nanos, 59000ull * 1000000);

    /* Samples: root counts with no location; IDLE-only stacks left out. */
    const uint64_t *v = sample_values("app:main;app:work");
    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(v[0], 30000000);
    ck_assert_uint_eq(v[1], 30000000);
    ck_assert_uint_eq(v[2], 3);
    v = sample_values("app:main;libc.so.6:write");
    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(v[0], 10000000);
    ck_assert_uint_eq(v[1], 2010000000);
    ck_assert_uint_eq(v[2], 3);
    v = sample_values("app:main;libstdc++.so.6:std::ostream::flush()");
    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(v[0], 0);
    ck_assert_uint_eq(v[1], 4000000000u);
    v = sample_values("app+0x40;[unknown]");
    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(v[1], 1000000000u);
    v = sample_values("");
    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(v[0], 20000000);
    ck_assert_ptr_null(sample_values("app:main;app:sleep"));
    ck_assert_uint_eq(d.nsamples, 5);

    /* One function and location per frame; names split at the module. */
    ck_assert_uint_eq(d.nfuncs, 7);
    ck_assert_uint_eq(d.nlocs, 7);
    int seen = 0;
    for (size_t i = 0; i < d.nfuncs; i++) {
        const char *sys = str(d.funcs[i].system_name), *name = str(d.funcs[i].name),
                   *file = str(d.funcs[i].filename);
        ck_assert_uint_eq(d.funcs[i].id, i + 1);
        if (strcmp(sys, "libstdc++.so.6:std::ostream::flush()") == 0) {
            ck_assert_str_eq(name, "std::ostream::flush()");
            ck_assert_str_eq(file, "libstdc++.so.6");
            seen++;
        } else if (strcmp(sys, "app+0x40") == 0) {
            ck_assert_str_eq(name, "app+0x40");
            ck_assert_str_eq(file, "app");
            seen++;
        } else if (strcmp(sys, "[unknown]") == 0) {
            ck_assert_str_eq(name, "[unknown]");
            ck_assert_str_eq(file, "");
            seen++;
        }
    }
    ck_assert_int_eq(seen, 3);
    /* Mappings: app, libc.so.6, libstdc++.so.6; each location inside its own. */
    ck_assert_uint_eq(d.nmaps, 3);
    for (size_t i = 0; i < d.nlocs; i++) {
        const char *frame = loc_frame(d.locs[i].id);
        if (strcmp(frame, "[unknown]") == 0) {
            ck_assert_uint_eq(d.locs[i].mapping, 0);
            continue;
        }
        ck_assert_uint_ge(d.locs[i].mapping, 1);
        ck_assert_uint_le(d.locs[i].mapping, d.nmaps);
        const char *mod = str(d.maps[d.locs[i].mapping - 1].filename);
        ck_assert_msg(strncmp(frame, mod, strlen(mod)) == 0, "%s in mapping %s", frame, mod);
        ck_assert_uint_ge(d.locs[i].address, d.maps[d.locs[i].mapping - 1].start);
        ck_assert_uint_lt(d.locs[i].address, d.maps[d.locs[i].mapping - 1].limit);
        ck_assert_uint_eq(d.maps[d.locs[i].mapping - 1].has_functions, 1);
    }
    for (size_t i = 0; i < d.nstrings; i++)
        free(d.strings[i]);
    cgprof_buf_cleanup(&gz);
}
END_TEST

/* Without weights the documented defaults apply (100 Hz CPU). */
START_TEST(test_encode_pprof_default_weights)
{
    struct cgprof_buf gz;
    cgprof_buf_init(&gz, 1 << 20);
    memset(prof.sample_weights, 0, sizeof(prof.sample_weights));
    prof.duration_ms = 0;
    add("a:f", CGPROF_COUNTER_RUNNABLE, 7);
    ck_assert_int_eq(cgprof_profile_encode_pprof(&prof, &gz), 0);
    decode(&gz);
    ck_assert_uint_eq(d.period, 10000000);
    ck_assert_uint_eq(d.duration_nanos, 60000ull * 1000000);  /* end - start */
    const uint64_t *v = sample_values("a:f");
    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(v[0], 70000000);
    for (size_t i = 0; i < d.nstrings; i++)
        free(d.strings[i]);
    cgprof_buf_cleanup(&gz);
}
END_TEST

START_TEST(test_encode_pprof_bounds_and_oom)
{
    struct cgprof_buf gz;
    add("app:main;app:work", CGPROF_COUNTER_RUNNABLE, 3);
    add("app:main;libc.so.6:write", CGPROF_COUNTER_WAITING, 2);
    cgprof_buf_init(&gz, 16);
    ck_assert_int_eq(cgprof_profile_encode_pprof(&prof, &gz), CGPROF_ETOOBIG);
    ck_assert_uint_eq(gz.len, 0);
    cgprof_buf_cleanup(&gz);
    ck_assert_int_eq(cgprof_profile_encode_pprof(NULL, &gz), CGPROF_EINVAL);

    int failures = 0;
    for (long k = 0; k < 64; k++) {
        cgprof_buf_init(&gz, 1 << 20);
        cgprof_alloc_fail_after(k);
        int rc = cgprof_profile_encode_pprof(&prof, &gz);
        cgprof_alloc_fail_after(-1);
        if (rc != 0) {
            ck_assert_int_eq(rc, CGPROF_ENOMEM);
            ck_assert_uint_eq(gz.len, 0);
            failures++;
        }
        cgprof_buf_cleanup(&gz);
    }
    ck_assert_int_gt(failures, 8);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("profile");
    TCase *tc = tcase_create("pprof");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_encode_pprof_fields);
    tcase_add_test(tc, test_encode_pprof_default_weights);
    tcase_add_test(tc, test_encode_pprof_bounds_and_oom);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return cgprof_test_run(suite());
}
