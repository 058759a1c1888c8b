/* CodeGuru agent-profile JSON (WIRE.md §1.1): encoder and decoder.
 *
 * Counters on the wire are the thread-state names RUNNABLE, BLOCKED,
 * NATIVE, WAITING, TIMED_WAITING and IDLE (cgprof_counter_name), because the
 * console's CPU view (RUNNABLE+BLOCKED+NATIVE) and latency view (all but
 * IDLE) are defined by them; the Python agent's single WALL_TIME counter
 * cannot carry the state. agentMetadata.sampleWeights has one entry per
 * counter whose weight is non-zero, so a reader gets seconds as
 * count / weight for every counter it sees.
 *
 * cgprof-specific keys, all in debugInfo (the service ignores debugInfo
 * content it does not know): "samplesDropped" (int, samples lost to a full
 * ring or a failed unwind) and "groupName" (the profiling group or program
 * name, so a stored file says what it is).
 *
 * The heap summary (heapSummaryEnabled:true) is one more top-level key,
 * "heapSummary", written after debugInfo and only when heap tracking was
 * on, so every other profile stays byte-for-byte the shape the Python
 * agent sends. It is a separate data set (a time series and allocation
 * sites, not call-graph counts or agent metadata), which is why it sits
 * beside callgraph rather than inside agentMetadata; how the service
 * treats a key it does not know is not public [INF]. Members:
 * samplingIntervalBytes, thresholdPermille, allocator (string), tracked
 * and incomplete (bools), snapshots (data points taken), samples,
 * lostSamples, peakUsedBytes, peakRssBytes, seriesFields (the column
 * names: timestamp in epoch ms, totalCapacity, usedSpace, rss and
 * sampledLive in bytes), series (one array of those five integers per
 * data point, by time) and sites: {"frames": [root ... leaf],
 * "liveBytesSum", "liveObjectsSum", "peakLiveBytes", "points"}. A site's
 * averages are its sums over its points; points < snapshots means
 * "incomplete data" as in the console. Encoded and decoded in heap.c.
 *
 * The call graph is streamed by hand straight into the bounded output
 * buffer (children sorted by name, non-ASCII escaped), so a 100 000-node
 * tree costs no jansson objects; the small metadata objects are built and
 * dumped with jansson. Separators are the Python agent's ", " and ": ".
 * The decoder parses with jansson. Tree content is strict (a wrong type in
 * the call graph is CGPROF_EJSON); metadata is lenient (a missing or
 * wrongly typed key keeps its default). Counter names we do not know, such
 * as the Python agent's WALL_TIME, are validated and then ignored: their
 * nodes are kept, their counts are not added to any cgprof counter.
 * Folded stacks are in folded.c, gzip and files in gzip.c and file.c. */
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "profile_int.h"

#define AGENT_TYPE "CodeGuruProfiler-cgprof"
#define AGENT_VERSION "0.1.0"
#define DUMP_FLAGS (JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII)
/* Deepest call tree the decoder accepts. jansson's own nesting limit
 * (JSON_PARSER_MAX_DEPTH, 2048 levels, i.e. about 1020 frames since each
 * frame is two levels) is normally reached first. */
#define DECODE_MAX_DEPTH 4096

static pthread_once_t json_once = PTHREAD_ONCE_INIT;
/* Set when jansson's allocation failed on this thread: jansson reports
 * most of those as parse errors, and we want CGPROF_ENOMEM instead. */
static _Thread_local int json_oom;

static void *json_alloc(size_t n)
{
    void *p = cgprof_malloc(n);
    if (!p)
        json_oom = 1;
    return p;
}

static void json_setup_once(void)
{
    json_set_alloc_funcs(json_alloc, cgprof_free);
}

/* jansson allocates through cgprof_malloc, so its memory obeys the same
 * test-time failure injection; cgprof_free is free(), so objects allocated
 * before the switch are still freed correctly. */
void cgprof__json_setup(void)
{
    pthread_once(&json_once, json_setup_once);
}

/* ---- encoder helpers ---------------------------------------------------- */

#define APPEND_LIT(b, lit) cgprof_buf_append((b), (lit), sizeof(lit) - 1)

static int append_u64(struct cgprof_buf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
    return cgprof_buf_append(b, tmp, (size_t)n);
}

/* Values above INT64_MAX cannot be read back by jansson; clamp them. */
static uint64_t clamp_i64(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : v;
}

/* Decodes one UTF-8 sequence at s (n bytes available); returns its length
 * and the code point, or 0 for an invalid sequence. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, v = c & 0x1fu, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, v = c & 0x0fu, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, v = c & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3fu);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

/* Appends s as a JSON string literal using only ASCII: the escapes jansson
 * and Python's json.dumps use, \uXXXX (surrogate pairs above the BMP) for
 * non-ASCII, and U+FFFD for each byte that is not valid UTF-8, so the output
 * always parses. Tests: test/unit/profile/test_codeguru_json.c */
int cgprof__json_append_string(struct cgprof_buf *b, const char *str)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str);
    int rc = APPEND_LIT(b, "\"");
    size_t run = 0;
    for (size_t i = 0; rc == 0 && i < n;) {
        unsigned char c = s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            run++;
            continue;
        }
        if (run)
            rc = cgprof_buf_append(b, s + i - run, run);
        run = 0;
        if (rc)
            break;
        char esc[16];
        size_t elen = 0;
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c, elen = 2;
            i++;
        } else if (c < 0x20) {
            const char *short_esc = c == '\b' ? "\\b" : c == '\f' ? "\\f" : c == '\n' ? "\\n"
                                  : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
            if (short_esc) {
                memcpy(esc, short_esc, 2), elen = 2;
            } else {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4], esc[5] = hex[c & 15], elen = 6;
            }
            i++;
        } else {
            uint32_t cp;
            size_t len = utf8_decode(s + i, n - i, &cp);
            if (len == 0) {
                cp = 0xfffd;
                len = 1;
            }
            i += len;
            uint32_t units[2];
            int nu = 0;
            if (cp >= 0x10000) {
                cp -= 0x10000;
                units[nu++] = 0xd800 + (cp >> 10);
                units[nu++] = 0xdc00 + (cp & 0x3ff);
            } else {
                units[nu++] = cp;
            }
            for (int u = 0; u < nu; u++) {
                esc[elen++] = '\\', esc[elen++] = 'u';
                for (int sh = 12; sh >= 0; sh -= 4)
                    esc[elen++] = hex[(units[u] >> sh) & 15];
            }
        }
        rc = cgprof_buf_append(b, esc, elen);
    }
    if (rc == 0 && run)
        rc = cgprof_buf_append(b, s + n - run, run);
    if (rc == 0)
        rc = APPEND_LIT(b, "\"");
    return rc;
}

struct dump_ctx {
    struct cgprof_buf *b;
    int rc;
};

static int dump_cb(const char *buffer, size_t size, void *data)
{
    struct dump_ctx *ctx = data;
    ctx->rc = cgprof_buf_append(ctx->b, buffer, size);
    return ctx->rc ? -1 : 0;
}

static int dump_json(const json_t *j, struct cgprof_buf *b)
{
    struct dump_ctx ctx = { b, 0 };
    if (json_dump_callback(j, dump_cb, &ctx, DUMP_FLAGS) != 0)
        return ctx.rc ? ctx.rc : CGPROF_ENOMEM;
    return 0;
}

/* ---- metadata objects ---------------------------------------------------- */

/* json_object_set_new that records an allocation failure in *ok. */
static void set(json_t *obj, const char *key, json_t *v, int *ok)
{
    if (!obj) {
        json_decref(v);
        *ok = 0;
        return;
    }
    /* json_object_set_new consumes v even when it fails. */
    if (!v || json_object_set_new(obj, key, v) != 0)
        *ok = 0;
}

static json_t *jint(uint64_t v)
{
    return json_integer((json_int_t)clamp_i64(v));
}

/* A jansson string of the first NUL-terminated part of s[0..n); bytes of
 * invalid UTF-8 become '?' so that dumping never fails. */
static json_t *jstr(const char *s, size_t n)
{
    n = strnlen(s, n);
    json_t *j = json_stringn(s, n);
    if (j)
        return j;
    char *copy = cgprof_strndup(s, n);
    if (!copy)
        return NULL;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = (unsigned char)copy[i] < 0x80 ? 1
                   : utf8_decode((const unsigned char *)copy + i, n - i, &cp);
        if (len == 0) {
            copy[i] = '?';
            len = 1;
        }
        i += len;
    }
    j = json_stringn(copy, n);
    cgprof_free(copy);
    return j;
}

static json_t *jreal(double v)
{
    return json_real(isfinite(v) ? v : 0.0);
}

static int cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* fleetInfo: the owned JSON text when it parses as an object, else the
 * Python agent's default shape. */
static json_t *fleet_info(const struct cgprof_profile *p)
{
    if (p->fleet_info_json) {
        json_t *j = json_loads(p->fleet_info_json, 0, NULL);
        if (j && json_is_object(j))
            return j;
        json_decref(j);
        cgprof_debug("profile: fleet info is not a JSON object, using the default");
    }
    json_t *o = json_object();
    int ok = 1;
    set(o, "id", jstr(p->fleet_instance_id, sizeof(p->fleet_instance_id)), &ok);
    set(o, "type", json_string("UNKNOWN"), &ok);
    set(o, "vCPUs", json_integer(cpu_count()), &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *agent_metadata(const struct cgprof_profile *p)
{
    int ok = 1;
    json_t *am = json_object();
    json_t *w = json_object();
    for (int c = 0; c < CGPROF_NCOUNTERS; c++) {
        double v = p->sample_weights[c];
        if (isfinite(v) && v > 0)
            set(w, cgprof_counter_name((enum cgprof_counter)c), json_real(v), &ok);
    }
    set(am, "sampleWeights", w, &ok);
    set(am, "durationInMs", jint(p->duration_ms), &ok);
    set(am, "fleetInfo", fleet_info(p), &ok);
    json_t *info = json_object();
    set(info, "type", json_string(AGENT_TYPE), &ok);
    set(info, "version", json_string(AGENT_VERSION), &ok);
    set(am, "agentInfo", info, &ok);
    json_t *over = json_object();
    set(over, "memoryInMB", json_integer(p->agent_memory_mb), &ok);
    if (p->agent_cpu_ms)
        set(over, "timeInMs", jint(p->agent_cpu_ms), &ok);
    set(am, "agentOverhead", over, &ok);
    set(am, "runtimeVersion", jstr(p->runtime_version, sizeof(p->runtime_version)), &ok);
    set(am, "cpuTimeInSeconds", jreal(p->cpu_time_s), &ok);
    json_t *metrics = json_object();
    set(metrics, "numThreads", jreal(p->num_threads), &ok);
    set(am, "metrics", metrics, &ok);
    set(am, "numTimesSampled", jint(p->num_times_sampled), &ok);
    if (!ok) {
        json_decref(am);
        return NULL;
    }
    return am;
}

/* Years past 9999 do not fit the format; such times are clamped. */
#define ISO8601_MAX_MS 253402300799999ull

static void format_iso8601(uint64_t ms, char out[80])
{
    if (ms > ISO8601_MAX_MS)
        ms = ISO8601_MAX_MS;
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&sec, &tm)) {
        snprintf(out, 80, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(out, 80, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (unsigned)(ms % 1000));
}

static const struct {
    const char *key;
    size_t off;
} error_keys[] = {
    { "errorsCount", offsetof(struct cgprof_error_counts, errors_count) },
    { "sdkClientErrors", offsetof(struct cgprof_error_counts, sdk_client_errors) },
    { "configureAgentErrors", offsetof(struct cgprof_error_counts, configure_agent_errors) },
    { "configureAgentRnfeAutoCreateEnabledErrors",
      offsetof(struct cgprof_error_counts, configure_agent_rnfe_auto_create_enabled_errors) },
    { "createProfilingGroupErrors",
      offsetof(struct cgprof_error_counts, create_profiling_group_errors) },
    { "postAgentProfileErrors", offsetof(struct cgprof_error_counts, post_agent_profile_errors) },
    { "postAgentProfileRnfeAutoCreateEnabledErrors",
      offsetof(struct cgprof_error_counts, post_agent_profile_rnfe_auto_create_enabled_errors) },
};

static json_t *debug_info(const struct cgprof_profile *p)
{
    int ok = 1;
    char iso[80];
    format_iso8601(p->agent_start_ms, iso);
    json_t *d = json_object();
    set(d, "agentStartTime", json_string(iso), &ok);
    set(d, "processId", json_integer(p->pid), &ok);
    json_t *e = json_object();
    for (size_t i = 0; i < CGPROF_ARRAY_SIZE(error_keys); i++) {
        unsigned v;
        memcpy(&v, (const char *)&p->errors + error_keys[i].off, sizeof(v));
        set(e, error_keys[i].key, json_integer(v), &ok);
    }
    set(d, "errorsCount", e, &ok);
    set(d, "samplesDropped", jint(p->samples_dropped), &ok);
    set(d, "groupName", jstr(p->group_name, sizeof(p->group_name)), &ok);
    if (!ok) {
        json_decref(d);
        return NULL;
    }
    return d;
}

/* ---- call graph --------------------------------------------------------- */

static int encode_tree(const struct cgprof_profile *p, struct cgprof_buf *b)
{
    struct cgprof__walk w;
    cgprof__walk_init(&w, &p->root);
    int ev, rc = 0;
    while (rc == 0 && (ev = cgprof__walk_next(&w)) > 0) {
        const struct cgprof_node *n = w.node;
        if (ev == CGPROF__WALK_LEAVE) {
            rc = n->first_child ? APPEND_LIT(b, "}}") : APPEND_LIT(b, "}");
            continue;
        }
        if (w.level > 0) {
            if (w.index > 0 && (rc = APPEND_LIT(b, ", ")) != 0)
                break;
            if ((rc = cgprof__json_append_string(b, n->name)) != 0 ||
                (rc = APPEND_LIT(b, ": ")) != 0)
                break;
        }
        if ((rc = APPEND_LIT(b, "{")) != 0)
            break;
        int ncounts = 0;
        for (int c = 0; rc == 0 && c < CGPROF_NCOUNTERS; c++) {
            if (!n->counts[c])
                continue;
            rc = ncounts ? APPEND_LIT(b, ", \"") : APPEND_LIT(b, "\"counts\": {\"");
            if (rc == 0)
                rc = cgprof_buf_appends(b, cgprof_counter_name((enum cgprof_counter)c));
            if (rc == 0)
                rc = APPEND_LIT(b, "\": ");
            if (rc == 0)
                rc = append_u64(b, clamp_i64(n->counts[c]));
            ncounts++;
        }
        if (rc == 0 && ncounts)
            rc = APPEND_LIT(b, "}");
        if (rc == 0 && n->first_child)
            rc = ncounts ? APPEND_LIT(b, ", \"children\": {") : APPEND_LIT(b, "\"children\": {");
    }
    if (rc == 0 && ev < 0)
        rc = ev;
    cgprof__walk_cleanup(&w);
    return rc;
}

/* Writes the document with the top-level keys in the Python agent's order.
 * end is raised to start + 1 when it is not after start, since the service
 * requires end > start. On failure out is left as it was.
 * Tests: test/unit/profile/test_codeguru_json.c */
int cgprof_profile_encode_codeguru(const struct cgprof_profile *p, struct cgprof_buf *out)
{
    cgprof__json_setup();
    size_t mark = out->len;
    json_t *am = agent_metadata(p);
    json_t *dbg = debug_info(p);
    int rc = (!am || !dbg) ? CGPROF_ENOMEM : 0;
    uint64_t start = clamp_i64(p->start_ms);
    uint64_t end = clamp_i64(p->end_ms);
    if (start && end <= start && start < (uint64_t)INT64_MAX)
        end = start + 1;
    if (rc == 0)
        rc = APPEND_LIT(out, "{\"start\": ");
    if (rc == 0)
        rc = append_u64(out, start);
    if (rc == 0)
        rc = APPEND_LIT(out, ", \"end\": ");
    if (rc == 0)
        rc = append_u64(out, end);
    if (rc == 0)
        rc = APPEND_LIT(out, ", \"agentMetadata\": ");
    if (rc == 0)
        rc = dump_json(am, out);
    if (rc == 0)
        rc = APPEND_LIT(out, ", \"callgraph\": ");
    if (rc == 0)
        rc = encode_tree(p, out);
    if (rc == 0)
        rc = APPEND_LIT(out, ", \"debugInfo\": ");
    if (rc == 0)
        rc = dump_json(dbg, out);
    if (rc == 0)
        rc = cgprof__profile_heap_encode(p, out);
    if (rc == 0)
        rc = APPEND_LIT(out, "}");
    json_decref(am);
    json_decref(dbg);
    if (rc) {
        out->len = mark;
        if (out->data)
            out->data[mark] = '\0';
    }
    return rc;
}

/* ---- decoder ------------------------------------------------------------ */

/* A non-negative integer, or a non-negative integral real below 2^63. */
static int get_count(const json_t *v, uint64_t *out)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0)
            return -1;
        *out = (uint64_t)i;
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!(d >= 0 && d < 9.2e18) || d != floor(d))
            return -1;
        *out = (uint64_t)d;
        return 0;
    }
    return -1;
}

/* Lenient metadata getters: keep *out when the key is missing or wrong. */
static void get_u64(const json_t *obj, const char *key, uint64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d >= 0 && d < 1.8e19)
            *out = (uint64_t)d;
    }
}

static void get_double(const json_t *obj, const char *key, double *out)
{
    const json_t *v = json_object_get(obj, key);
    if (json_is_number(v) && isfinite(json_number_value(v)))
        *out = json_number_value(v);
}

static void get_unsigned(const json_t *obj, const char *key, unsigned *out)
{
    uint64_t v = *out;
    get_u64(obj, key, &v);
    *out = v > UINT32_MAX ? UINT32_MAX : (unsigned)v;
}

static void get_str(const json_t *obj, const char *key, char *out, size_t n)
{
    const json_t *v = json_object_get(obj, key);
    if (json_is_string(v))
        snprintf(out, n, "%s", json_string_value(v));
}

/* Parses "YYYY-MM-DDTHH:MM:SS[.mmm]Z"; returns 0 when it does not match. */
static uint64_t parse_iso8601(const char *s)
{
    int y, mo, d, h, mi, sec, used = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &used) != 6)
        return 0;
    unsigned ms = 0;
    const char *r = s + used;
    if (*r == '.') {
        unsigned scale = 100;
        for (r++; *r >= '0' && *r <= '9'; r++) {
            ms += (unsigned)(*r - '0') * scale;
            scale /= 10;
        }
    }
    if (*r != 'Z' || r[1] != '\0' || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 ||
        h > 23 || mi > 59 || sec > 60)
        return 0;
    struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                     .tm_hour = h, .tm_min = mi, .tm_sec = sec };
    time_t t = timegm(&tm);
    if (t < 0)
        return 0;
    return (uint64_t)t * 1000u + ms;
}

static int decode_meta(struct cgprof_profile *p, const json_t *doc)
{
    get_u64(doc, "start", &p->start_ms);
    get_u64(doc, "end", &p->end_ms);
    const json_t *am = json_object_get(doc, "agentMetadata");
    if (json_is_object(am)) {
        json_t *w = json_object_get(am, "sampleWeights");
        const char *key;
        json_t *v;
        if (json_is_object(w)) {
            json_object_foreach(w, key, v) {
                int c = cgprof_counter_from_name(key);
                if (c >= 0 && json_is_number(v) && json_number_value(v) > 0 &&
                    isfinite(json_number_value(v)))
                    p->sample_weights[c] = json_number_value(v);
            }
        }
        get_u64(am, "durationInMs", &p->duration_ms);
        const json_t *fi = json_object_get(am, "fleetInfo");
        if (json_is_object(fi)) {
            char *text = json_dumps(fi, DUMP_FLAGS | JSON_COMPACT);
            if (!text)
                return CGPROF_ENOMEM;
            cgprof_free(p->fleet_info_json);
            p->fleet_info_json = text;
            static const char *const id_keys[] = { "id", "hostName", "taskArn", "functionArn" };
            for (size_t i = 0; i < CGPROF_ARRAY_SIZE(id_keys); i++) {
                const json_t *id = json_object_get(fi, id_keys[i]);
                if (json_is_string(id)) {
                    snprintf(p->fleet_instance_id, sizeof(p->fleet_instance_id), "%s",
                             json_string_value(id));
                    break;
                }
            }
        }
        const json_t *over = json_object_get(am, "agentOverhead");
        if (json_is_object(over)) {
            get_unsigned(over, "memoryInMB", &p->agent_memory_mb);
            get_u64(over, "timeInMs", &p->agent_cpu_ms);
        }
        get_str(am, "runtimeVersion", p->runtime_version, sizeof(p->runtime_version));
        get_double(am, "cpuTimeInSeconds", &p->cpu_time_s);
        const json_t *metrics = json_object_get(am, "metrics");
        if (json_is_object(metrics))
            get_double(metrics, "numThreads", &p->num_threads);
        get_u64(am, "numTimesSampled", &p->num_times_sampled);
    }
    const json_t *dbg = json_object_get(doc, "debugInfo");
    if (json_is_object(dbg)) {
        const json_t *t = json_object_get(dbg, "agentStartTime");
        if (json_is_string(t))
            p->agent_start_ms = parse_iso8601(json_string_value(t));
        const json_t *pid = json_object_get(dbg, "processId");
        if (json_is_integer(pid) && json_integer_value(pid) >= 0 &&
            json_integer_value(pid) <= INT32_MAX)
            p->pid = (int)json_integer_value(pid);
        const json_t *e = json_object_get(dbg, "errorsCount");
        if (json_is_object(e)) {
            for (size_t i = 0; i < CGPROF_ARRAY_SIZE(error_keys); i++) {
                unsigned v;
                memcpy(&v, (const char *)&p->errors + error_keys[i].off, sizeof(v));
                get_unsigned(e, error_keys[i].key, &v);
                memcpy((char *)&p->errors + error_keys[i].off, &v, sizeof(v));
            }
        }
        get_u64(dbg, "samplesDropped", &p->samples_dropped);
        get_str(dbg, "groupName", p->group_name, sizeof(p->group_name));
    }
    return 0;
}

/* Reads one node object's counts into n; returns its "children" object
 * (NULL when absent) through *kids. */
static int decode_node(struct cgprof_node *n, const json_t *obj, json_t **kids)
{
    if (!json_is_object(obj))
        return CGPROF_EJSON;
    json_t *counts = json_object_get(obj, "counts");
    if (counts && !json_is_null(counts)) {
        if (!json_is_object(counts))
            return CGPROF_EJSON;
        const char *key;
        json_t *v;
        json_object_foreach(counts, key, v) {
            uint64_t val;
            if (get_count(v, &val) != 0)
                return CGPROF_EJSON;
            int c = cgprof_counter_from_name(key);
            if (c >= 0)
                n->counts[c] += val;
        }
    }
    json_t *k = json_object_get(obj, "children");
    if (k && json_is_null(k))
        k = NULL;
    if (k && !json_is_object(k))
        return CGPROF_EJSON;
    *kids = k;
    return 0;
}

struct decode_level {
    json_t *kids;
    void *iter;
    struct cgprof_node *node;
};

/* Iterative depth-first build of the tree under p->root. */
static int decode_tree(struct cgprof_profile *p, const json_t *graph)
{
    json_t *kids = NULL;
    int rc = decode_node(&p->root, graph, &kids);
    if (rc || !kids)
        return rc;
    size_t cap = 64, depth = 0;
    struct decode_level *st = cgprof_malloc(cap * sizeof(*st));
    if (!st)
        return CGPROF_ENOMEM;
    st[depth++] = (struct decode_level){ kids, json_object_iter(kids), &p->root };
    while (depth > 0) {
        struct decode_level *top = &st[depth - 1];
        if (!top->iter) {
            depth--;
            continue;
        }
        const char *key = json_object_iter_key(top->iter);
        json_t *val = json_object_iter_value(top->iter);
        top->iter = json_object_iter_next(top->kids, top->iter);
        struct cgprof_node *child = cgprof__profile_child_n(p, top->node, key, strlen(key));
        if (!child) {
            rc = CGPROF_ENOMEM;
            break;
        }
        json_t *ck = NULL;
        if ((rc = decode_node(child, val, &ck)) != 0)
            break;
        if (!ck || json_object_size(ck) == 0)
            continue;
        if (depth >= DECODE_MAX_DEPTH) {
            rc = CGPROF_EJSON;
            break;
        }
        if (depth == cap) {
            struct decode_level *ns = cgprof_realloc(st, cap * 2 * sizeof(*ns));
            if (!ns) {
                rc = CGPROF_ENOMEM;
                break;
            }
            st = ns;
            cap *= 2;
        }
        st[depth++] = (struct decode_level){ ck, json_object_iter(ck), child };
    }
    cgprof_free(st);
    return rc;
}

/* On failure p is reset to empty. Tests: test/unit/profile/test_codeguru_json.c */
int cgprof_profile_decode_codeguru(struct cgprof_profile *p, const char *json, size_t len)
{
    if (!p->store || (!json && len))
        return CGPROF_EINVAL;
    cgprof__json_setup();
    json_error_t err;
    json_oom = 0;
    json_t *doc = json_loadb(json ? json : "", len, 0, &err);
    if (!doc) {
        if (json_oom || json_error_code(&err) == json_error_out_of_memory)
            return CGPROF_ENOMEM;
        cgprof_warn("profile: CodeGuru JSON: %s (line %d, column %d)", err.text,
                    err.line, err.column);
        return CGPROF_EJSON;
    }
    int rc = CGPROF_EJSON;
    if (json_is_object(doc)) {
        const json_t *graph = json_object_get(doc, "callgraph");
        rc = 0;
        if (graph && !json_is_null(graph))
            rc = decode_tree(p, graph);
        if (rc == 0)
            rc = decode_meta(p, doc);
        if (rc == 0)
            rc = cgprof__profile_heap_decode(p, json_object_get(doc, "heapSummary"));
    }
    json_decref(doc);
    if (rc == CGPROF_EJSON && json_oom)
        rc = CGPROF_ENOMEM;
    if (rc) {
        if (rc == CGPROF_EJSON)
            cgprof_warn("profile: CodeGuru JSON has an unexpected shape");
        cgprof_profile_reset(p);
    }
    return rc;
}
