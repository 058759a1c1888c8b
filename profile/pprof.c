/* The pprof export: a merged profile as a gzip'd protobuf message
 * perftools.profiles.Profile (github.com/google/pprof, proto/profile.proto),
 * encoded by hand (varints and length-delimited fields; no protobuf library
 * in the product), for `go tool pprof`, Pyroscope and other pprof readers.
 * `cgprof report --format pprof` (cli/cmd_report.c) writes it and the
 * Pyroscope sink (uploader/pyroscope.c) sends it. Layout:
 *   sample types  cpu/nanoseconds   RUNNABLE counts / weight
 *                 wall/nanoseconds  every counter but IDLE, / its weight
 *                 samples/count     every counter but IDLE, raw counts
 *   one sample per call-tree node with such counts (leaf location first);
 *   one function and one location per distinct frame name (name = function
 *   part, system_name = whole frame, filename = module), one mapping per
 *   module with synthetic, non-overlapping addresses (16 bytes per
 *   location); period cpu/nanoseconds = 1e9 / RUNNABLE weight. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "profile.h"

#define RAW_MAX ((size_t)1 << 30)     /* bound on the uncompressed message */
#define MAP_BASE ((uint64_t)1 << 32)  /* mapping i starts at (i + 1) << 32 */

/* Field numbers of profile.proto used here. */
enum {
    PROFILE_SAMPLE_TYPE = 1, PROFILE_SAMPLE = 2, PROFILE_MAPPING = 3,
    PROFILE_LOCATION = 4, PROFILE_FUNCTION = 5, PROFILE_STRING_TABLE = 6,
    PROFILE_TIME_NANOS = 9, PROFILE_DURATION_NANOS = 10, PROFILE_PERIOD_TYPE = 11,
    PROFILE_PERIOD = 12, PROFILE_COMMENT = 13, PROFILE_DEFAULT_SAMPLE_TYPE = 14,
    VALUETYPE_TYPE = 1, VALUETYPE_UNIT = 2,
    SAMPLE_LOCATION_ID = 1, SAMPLE_VALUE = 2,
    MAPPING_ID = 1, MAPPING_START = 2, MAPPING_LIMIT = 3, MAPPING_FILENAME = 5,
    MAPPING_HAS_FUNCTIONS = 7,
    LOCATION_ID = 1, LOCATION_MAPPING_ID = 2, LOCATION_ADDRESS = 3, LOCATION_LINE = 4,
    LINE_FUNCTION_ID = 1,
    FUNCTION_ID = 1, FUNCTION_NAME = 2, FUNCTION_SYSTEM_NAME = 3, FUNCTION_FILENAME = 4,
};

enum { WIRE_VARINT = 0, WIRE_LEN = 2 };

#define NVALUES 3

/* ---- writer ------------------------------------------------------------ */

/* Appends to a bounded buffer; the first error sticks and later writes
 * are skipped, so callers check once at the end. */
struct writer {
    struct cgprof_buf *b;
    int rc;
};

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void put_varint(struct writer *w, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (unsigned char)v;
    if (w->rc == 0)
        w->rc = cgprof_buf_append(w->b, tmp, n);
}

static void put_tag(struct writer *w, unsigned field, unsigned wire)
{
    put_varint(w, ((uint64_t)field << 3) | wire);
}

/* A varint field; zero is the default and is left out. */
static void put_uint(struct writer *w, unsigned field, uint64_t v)
{
    if (v == 0)
        return;
    put_tag(w, field, WIRE_VARINT);
    put_varint(w, v);
}

static size_t uint_len(unsigned field, uint64_t v)
{
    return v == 0 ? 0 : varint_len((uint64_t)field << 3) + varint_len(v);
}

static void put_bytes(struct writer *w, unsigned field, const char *s, size_t len)
{
    put_tag(w, field, WIRE_LEN);
    put_varint(w, len);
    if (w->rc == 0 && len > 0)
        w->rc = cgprof_buf_append(w->b, s, len);
}

/* ---- string and frame tables ------------------------------------------ */

struct str {
    const char *s;   /* not NUL-terminated at len for module names */
    size_t len;
};

/* Open-addressing set of (pointer, length) strings giving dense indexes;
 * sized once for the most entries the profile can need. */
struct strmap {
    struct str *v;
    size_t n, cap;
    size_t *slots;   /* index + 1; 0 = empty */
    size_t mask;
};

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int strmap_init(struct strmap *m, size_t cap)
{
    size_t slots = 16;
    while (slots < 2 * cap)
        slots *= 2;
    memset(m, 0, sizeof(*m));
    m->v = cgprof_calloc(cap, sizeof(*m->v));
    m->slots = cgprof_calloc(slots, sizeof(*m->slots));
    m->cap = cap;
    m->mask = slots - 1;
    return m->v && m->slots ? 0 : CGPROF_ENOMEM;
}

static void strmap_cleanup(struct strmap *m)
{
    cgprof_free(m->v);
    cgprof_free(m->slots);
    memset(m, 0, sizeof(*m));
}

/* Index of (s, len), added when new; SIZE_MAX when the table is full
 * (cannot happen with the sizes chosen below). *added tells which. */
static size_t strmap_get(struct strmap *m, const char *s, size_t len, bool *added)
{
    size_t i = (size_t)hash_bytes(s, len) & m->mask;
    if (added)
        *added = false;
    while (m->slots[i] != 0) {
        const struct str *e = &m->v[m->slots[i] - 1];
        if (e->len == len && memcmp(e->s, s, len) == 0)
            return m->slots[i] - 1;
        i = (i + 1) & m->mask;
    }
    if (m->n == m->cap)
        return SIZE_MAX;
    m->v[m->n].s = s;
    m->v[m->n].len = len;
    m->slots[i] = ++m->n;
    if (added)
        *added = true;
    return m->n - 1;
}

/* Parts of a frame name: "module:function", "module+0xOFF" (function =
 * the whole frame) or a bare name (no module). */
static void frame_parts(const char *frame, struct str *module, struct str *function)
{
    const char *colon = strchr(frame, ':');
    size_t len = strlen(frame);
    if (colon != NULL && colon != frame && colon[1] != ':') {
        module->s = frame;
        module->len = (size_t)(colon - frame);
        function->s = colon + 1;
        function->len = len - module->len - 1;
        return;
    }
    const char *plus = strstr(frame, "+0x");
    module->s = frame;
    module->len = plus != NULL ? (size_t)(plus - frame) : 0;
    function->s = frame;
    function->len = len;
}

struct loc {
    size_t mapping;     /* index in modules + 1; 0 = none */
    uint64_t address;
    size_t name, system_name, filename; /* string indexes */
};

struct pprof_state {
    struct strmap strings;
    struct strmap frames;   /* frame name -> location index */
    struct strmap modules;  /* module -> mapping index */
    struct loc *locs;       /* parallel to frames */
    uint64_t *mod_next;     /* next free offset per mapping */
    size_t *mod_file;       /* filename string index per mapping */
};

static size_t intern(struct pprof_state *s, const char *str, size_t len)
{
    return strmap_get(&s->strings, str, len, NULL);
}

/* Location index for a frame name, creating its function, location and
 * (per new module) mapping. */
static size_t location_for(struct pprof_state *s, const char *frame)
{
    bool added;
    size_t idx = strmap_get(&s->frames, frame, strlen(frame), &added);
    if (!added || idx == SIZE_MAX)
        return idx;
    struct str mod, fn;
    struct loc *l = &s->locs[idx];
    frame_parts(frame, &mod, &fn);
    l->name = intern(s, fn.s, fn.len);
    l->system_name = intern(s, frame, strlen(frame));
    l->filename = intern(s, mod.s, mod.len);
    if (mod.len > 0) {
        size_t m = strmap_get(&s->modules, mod.s, mod.len, NULL);
        s->mod_file[m] = l->filename;
        l->mapping = m + 1;
        l->address = ((uint64_t)m + 1) * MAP_BASE + s->mod_next[m];
        s->mod_next[m] += 16;
    }
    return idx;
}

/* ---- encoding ---------------------------------------------------------- */

static void put_value_type(struct writer *w, unsigned field, size_t type, size_t unit)
{
    put_tag(w, field, WIRE_LEN);
    put_varint(w, uint_len(VALUETYPE_TYPE, type) + uint_len(VALUETYPE_UNIT, unit));
    put_uint(w, VALUETYPE_TYPE, type);
    put_uint(w, VALUETYPE_UNIT, unit);
}

/* One Sample: location ids leaf first (path[depth-1] is the leaf), values. */
static void put_sample(struct writer *w, const size_t *path, size_t depth,
                       const uint64_t *values)
{
    size_t locs_len = 0, vals_len = 0;
    for (size_t i = 0; i < depth; i++)
        locs_len += varint_len(path[i] + 1);
    for (int v = 0; v < NVALUES; v++)
        vals_len += varint_len(values[v]);
    size_t body = varint_len(SAMPLE_LOCATION_ID << 3 | WIRE_LEN) + varint_len(locs_len) +
                  locs_len + varint_len(SAMPLE_VALUE << 3 | WIRE_LEN) +
                  varint_len(vals_len) + vals_len;
    put_tag(w, PROFILE_SAMPLE, WIRE_LEN);
    put_varint(w, body);
    put_tag(w, SAMPLE_LOCATION_ID, WIRE_LEN);
    put_varint(w, locs_len);
    for (size_t i = depth; i > 0; i--)
        put_varint(w, path[i - 1] + 1);
    put_tag(w, SAMPLE_VALUE, WIRE_LEN);
    put_varint(w, vals_len);
    for (int v = 0; v < NVALUES; v++)
        put_varint(w, values[v]);
}

/* Nearest integer of a non-negative finite value (no libm: libcgprof.so
 * links nothing but libc). */
static uint64_t round_u64(double x)
{
    return x > 0 ? (uint64_t)(x + 0.5) : 0;
}

/* Values of node n: cpu ns, wall ns, sample count. False when all zero. */
static bool node_values(const struct cgprof_node *n, const double *ns_per, uint64_t *values)
{
    double wall = 0;
    uint64_t count = 0;
    for (int c = 0; c < CGPROF_NCOUNTERS; c++) {
        if (c == CGPROF_COUNTER_IDLE)
            continue;
        wall += (double)n->counts[c] * ns_per[c];
        count += n->counts[c];
    }
    values[0] = round_u64((double)n->counts[CGPROF_COUNTER_RUNNABLE] *
                                  ns_per[CGPROF_COUNTER_RUNNABLE]);
    values[1] = round_u64(wall);
    values[2] = count;
    return count > 0;
}

static void put_tables(struct writer *w, const struct pprof_state *s)
{
    for (size_t m = 0; m < s->modules.n; m++) {
        uint64_t start = ((uint64_t)m + 1) * MAP_BASE;
        uint64_t limit = start + s->mod_next[m];
        size_t file = s->mod_file[m];
        put_tag(w, PROFILE_MAPPING, WIRE_LEN);
        put_varint(w, uint_len(MAPPING_ID, m + 1) + uint_len(MAPPING_START, start) +
                          uint_len(MAPPING_LIMIT, limit) + uint_len(MAPPING_FILENAME, file) +
                          uint_len(MAPPING_HAS_FUNCTIONS, 1));
        put_uint(w, MAPPING_ID, m + 1);
        put_uint(w, MAPPING_START, start);
        put_uint(w, MAPPING_LIMIT, limit);
        put_uint(w, MAPPING_FILENAME, file);
        put_uint(w, MAPPING_HAS_FUNCTIONS, 1);
    }
    for (size_t i = 0; i < s->frames.n; i++) {
        const struct loc *l = &s->locs[i];
        size_t line = uint_len(LINE_FUNCTION_ID, i + 1);
        put_tag(w, PROFILE_LOCATION, WIRE_LEN);
        put_varint(w, uint_len(LOCATION_ID, i + 1) + uint_len(LOCATION_MAPPING_ID, l->mapping) +
                          uint_len(LOCATION_ADDRESS, l->address) +
                          varint_len(LOCATION_LINE << 3 | WIRE_LEN) + varint_len(line) + line);
        put_uint(w, LOCATION_ID, i + 1);
        put_uint(w, LOCATION_MAPPING_ID, l->mapping);
        put_uint(w, LOCATION_ADDRESS, l->address);
        put_tag(w, LOCATION_LINE, WIRE_LEN);
        put_varint(w, line);
        put_uint(w, LINE_FUNCTION_ID, i + 1);
    }
    for (size_t i = 0; i < s->frames.n; i++) {
        const struct loc *l = &s->locs[i];
        put_tag(w, PROFILE_FUNCTION, WIRE_LEN);
        put_varint(w, uint_len(FUNCTION_ID, i + 1) + uint_len(FUNCTION_NAME, l->name) +
                          uint_len(FUNCTION_SYSTEM_NAME, l->system_name) +
                          uint_len(FUNCTION_FILENAME, l->filename));
        put_uint(w, FUNCTION_ID, i + 1);
        put_uint(w, FUNCTION_NAME, l->name);
        put_uint(w, FUNCTION_SYSTEM_NAME, l->system_name);
        put_uint(w, FUNCTION_FILENAME, l->filename);
    }
}

/* Counts per second of counter c: the profile's weight, or the documented
 * defaults (100 Hz CPU sampling, one thread-state sample per second) when
 * it carries none, as report/top.c's cgprof_report_weight. */
static double weight(const struct cgprof_profile *p, enum cgprof_counter c)
{
    double w = p->sample_weights[c];
    if (w > 0 && isfinite(w))
        return w;
    return c == CGPROF_COUNTER_RUNNABLE ? 100.0 : 1.0;
}

/* Tests: test/unit/profile/test_pprof.c, test/integration/pprof.sh */
int cgprof_profile_encode_pprof(const struct cgprof_profile *p, struct cgprof_buf *out)
{
    struct pprof_state s;
    struct cgprof_buf raw;
    struct writer w = { &raw, 0 };
    size_t *path = NULL, cap = 64, depth = 0;
    const struct cgprof_node **nodes = NULL;
    double ns_per[CGPROF_NCOUNTERS];
    uint64_t values[NVALUES];
    char comment[512];
    int rc = CGPROF_ENOMEM;

    memset(&s, 0, sizeof(s));
    cgprof_buf_init(&raw, RAW_MAX);
    if (p == NULL || out == NULL)
        return CGPROF_EINVAL;
    for (int c = 0; c < CGPROF_NCOUNTERS; c++)
        ns_per[c] = 1e9 / weight(p, (enum cgprof_counter)c);

    /* At most one frame, module and three strings per node, plus the
     * fixed strings (types, units, comment). */
    size_t nn = p->node_count + 1;
    if (strmap_init(&s.strings, 3 * nn + 16) || strmap_init(&s.frames, nn) ||
        strmap_init(&s.modules, nn))
        goto done;
    s.locs = cgprof_calloc(nn, sizeof(*s.locs));
    s.mod_next = cgprof_calloc(nn, sizeof(*s.mod_next));
    s.mod_file = cgprof_calloc(nn, sizeof(*s.mod_file));
    path = cgprof_malloc(cap * sizeof(*path));
    nodes = cgprof_malloc(cap * sizeof(*nodes));
    if (!s.locs || !s.mod_next || !s.mod_file || !path || !nodes)
        goto done;

    size_t empty = intern(&s, "", 0);
    size_t cpu = intern(&s, "cpu", 3), wall = intern(&s, "wall", 4);
    size_t samples = intern(&s, "samples", 7), count = intern(&s, "count", 5);
    size_t nanos = intern(&s, "nanoseconds", 11);
    CGPROF_UNUSED(empty);

    put_value_type(&w, PROFILE_SAMPLE_TYPE, cpu, nanos);
    put_value_type(&w, PROFILE_SAMPLE_TYPE, wall, nanos);
    put_value_type(&w, PROFILE_SAMPLE_TYPE, samples, count);

    /* Samples with an empty stack (the root's own counts) have no location. */
    if (node_values(&p->root, ns_per, values))
        put_sample(&w, path, 0, values);

    const struct cgprof_node *x = p->root.first_child;
    while (x != NULL && w.rc == 0) {
        if (depth == cap) {
            size_t *gp = cgprof_realloc(path, 2 * cap * sizeof(*path));
            if (gp == NULL)
                goto done;
            path = gp;
            const struct cgprof_node **gn = cgprof_realloc(nodes, 2 * cap * sizeof(*nodes));
            if (gn == NULL)
                goto done;
            nodes = gn;
            cap *= 2;
        }
        size_t loc = location_for(&s, x->name ? x->name : "");
        if (loc == SIZE_MAX) {
            rc = CGPROF_ENOMEM;   /* tables are sized so this cannot happen */
            goto done;
        }
        path[depth] = loc;
        nodes[depth] = x;
        depth++;
        if (node_values(x, ns_per, values))
            put_sample(&w, path, depth, values);
        if (x->first_child != NULL) {
            x = x->first_child;
            continue;
        }
        for (;;) {
            const struct cgprof_node *left = nodes[--depth];
            if (left->next_sibling != NULL) {
                x = left->next_sibling;
                break;
            }
            if (depth == 0) {
                x = NULL;
                break;
            }
        }
    }

    put_tables(&w, &s);
    uint64_t dur_ms = p->duration_ms ? p->duration_ms
                                     : (p->end_ms > p->start_ms ? p->end_ms - p->start_ms : 0);
    put_uint(&w, PROFILE_TIME_NANOS, p->start_ms * UINT64_C(1000000));
    put_uint(&w, PROFILE_DURATION_NANOS, dur_ms * UINT64_C(1000000));
    put_value_type(&w, PROFILE_PERIOD_TYPE, cpu, nanos);
    put_uint(&w, PROFILE_PERIOD, round_u64(ns_per[CGPROF_COUNTER_RUNNABLE]));
    int cl = snprintf(comment, sizeof(comment), "cgprof profile%s%s", p->group_name[0] ? " of " : "",
                      p->group_name);
    if (cl > 0) {
        size_t ci = intern(&s, comment, strlen(comment));
        put_uint(&w, PROFILE_COMMENT, ci);
    }
    put_uint(&w, PROFILE_DEFAULT_SAMPLE_TYPE, cpu);
    /* The string table last: everything above has been interned. */
    for (size_t i = 0; i < s.strings.n; i++)
        put_bytes(&w, PROFILE_STRING_TABLE, s.strings.v[i].s, s.strings.v[i].len);

    rc = w.rc;
    if (rc == 0)
        rc = cgprof_gzip(raw.data, raw.len, out);
done:
    cgprof_free(path);
    cgprof_free(nodes);
    cgprof_free(s.locs);
    cgprof_free(s.mod_next);
    cgprof_free(s.mod_file);
    strmap_cleanup(&s.strings);
    strmap_cleanup(&s.frames);
    strmap_cleanup(&s.modules);
    cgprof_buf_cleanup(&raw);
    return rc;
}
