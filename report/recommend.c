/* Recommendations for native code: rules that match well-known costly
 * library functions on a merged profile's stacks, fire when their share of
 * the CPU view (the latency view for lock contention) passes a threshold,
 * and explain the evidence, an estimated yearly cost and a concrete fix.
 * The HTML report's summary (html.c) and `--format recommendations` /
 * `--format top` (cli/cmd_report.c) show them.
 *
 * Rules (README.md "Recommendations" keeps the same table):
 *
 *   id                 view     fires at   stacks matched (function part of
 *                               share >=   "module:function"; = exact,
 *                                          ^ prefix, ~ substring, @ module)
 *   lock-contention    latency  10 %       pthread_mutex_lock/unlock,
 *                                          __lll_lock_wait*, __lll_*wake*,
 *                                          pthread_rwlock_*lock, spin locks
 *                                          (futex waits beneath them are
 *                                          included); every BLOCKED sample
 *   malloc-churn       cpu      10 %       malloc, free, cfree, calloc,
 *                                          realloc, _int_malloc, _int_free,
 *                                          malloc_consolidate, operator
 *                                          new/delete, tc_*, je_*, mi_*, any
 *                                          frame in libtcmalloc/libjemalloc/
 *                                          libmimalloc
 *   memcpy-heavy       cpu      15 %       memcpy, memmove, mempcpy,
 *                                          __memcpy_*, __memmove_*,
 *                                          __mempcpy_*, __memcpy_chk
 *   syscall-storm      cpu      20 %       read, write, recv, send, recvfrom,
 *                                          sendto, readv, writev, pread64,
 *                                          pwrite64, __libc_read/write/recv/
 *                                          send, __GI___libc_*, *_nocancel
 *   regex-compile      cpu       5 %       regcomp, re_compile_internal,
 *                                          re_compile_pattern, pcre_compile*,
 *                                          pcre2_compile*, onig_new,
 *                                          std::__detail::_Compiler
 *   exception-unwind   cpu       5 %       __cxa_throw, __cxa_rethrow,
 *                                          _Unwind_RaiseException,
 *                                          _Unwind_Resume, _Unwind_Find_FDE,
 *                                          __gxx_personality_v0
 *   logging-format     cpu      10 %       printf family (vfprintf,
 *                                          __vfprintf_internal,
 *                                          printf_positional, snprintf,
 *                                          __printf_fp, *_chk variants),
 *                                          syslog, std::ostream operator<<
 *   compression-level  cpu       5 %       deflate_slow, lzma_mf_bt*,
 *                                          lzma_lzma_optimum_normal,
 *                                          ZSTD_compressBlock_btopt, _btultra,
 *                                          _btultra2, _btlazy2, Brotli Zopfli
 *
 * A stack matches a rule when any of its frames matches (each sample counts
 * once however many of its frames match), so the share is inclusive: the
 * time under the costly functions. A rule also needs at least
 * MIN_SAMPLES matched samples so a few stray samples cannot fire it. The
 * yearly cost extrapolates the matched RUNNABLE (CPU) seconds over a year
 * of the profile's wall duration at the price per vCPU-hour: an estimate. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

#define MIN_SAMPLES 5
#define MAX_TALLY 64      /* distinct frame / caller names kept per rule */
#define MAX_DISTINCT 16   /* distinct matching names tracked per path */
#define HOURS_PER_YEAR 8760.0
#define SHARE_EPS 1e-9    /* a share equal to its threshold fires despite rounding */

struct rule {
    const char *id;
    const char *title;
    bool latency;            /* latency view (all but IDLE), else CPU view */
    bool blocked;            /* every BLOCKED sample matches */
    double threshold;        /* share of the view, 0..1 */
    const char *const *patterns; /* "=exact", "^prefix", "~substring",
                                    "@module substring"; NULL-ended */
    const char *fix;
};

static const char *const lock_patterns[] = {
    "=pthread_mutex_lock", "=__pthread_mutex_lock", "=___pthread_mutex_lock",
    "=__pthread_mutex_lock_full", "=pthread_mutex_timedlock",
    "=__pthread_mutex_timedlock", "=pthread_mutex_clocklock",
    "=pthread_mutex_unlock", "=__pthread_mutex_unlock",
    "=___pthread_mutex_unlock", "=__pthread_mutex_unlock_usercnt",
    "=__pthread_mutex_unlock_full", "^__lll_lock_wait", "^__lll_lock_wake",
    "^__lll_unlock_wake", "^pthread_rwlock_rdlock", "^pthread_rwlock_wrlock",
    "^pthread_rwlock_timed", "^pthread_rwlock_clock", "^__pthread_rwlock_rdlock",
    "^__pthread_rwlock_wrlock", "=pthread_spin_lock", "=__pthread_spin_lock",
    "^std::mutex::lock", "^std::shared_mutex::lock", NULL
};

static const char *const malloc_patterns[] = {
    "=malloc", "=free", "=cfree", "=calloc", "=realloc", "=__libc_malloc",
    "=__libc_free", "=__libc_calloc", "=__libc_realloc", "=_int_malloc",
    "=_int_free", "=_int_realloc", "=malloc_consolidate", "=posix_memalign",
    "=aligned_alloc", "=memalign", "=_mid_memalign", "=tcache_init",
    "^operator new", "^operator delete", "=_Znwm", "=_ZdlPv", "=_ZdlPvm",
    "=_Znam", "=_ZdaPv", "^tc_", "^je_", "^mi_", "~tcmalloc::", "@libtcmalloc",
    "@libjemalloc", "@libmimalloc", NULL
};

static const char *const memcpy_patterns[] = {
    "=memcpy", "=memmove", "=mempcpy", "=__memcpy_chk", "=__memmove_chk",
    "=__mempcpy_chk", "^__memcpy_", "^__memmove_", "^__mempcpy_", "=__memcpy",
    "=__memmove", NULL
};

static const char *const syscall_patterns[] = {
    "=read", "=write", "=recv", "=send", "=recvfrom", "=sendto", "=readv",
    "=writev", "=pread", "=pwrite", "=pread64", "=pwrite64", "=__read",
    "=__write", "=__libc_read", "=__libc_write", "=__libc_recv",
    "=__libc_send", "=__libc_recvfrom", "=__libc_sendto", "=__libc_readv",
    "=__libc_writev", "^__GI___libc_read", "^__GI___libc_write",
    "^__GI___libc_recv", "^__GI___libc_send", "=__read_nocancel",
    "=__write_nocancel", "=__recv", "=__send", NULL
};

static const char *const regex_patterns[] = {
    "=regcomp", "=__regcomp", "=re_compile_internal", "=re_compile_pattern",
    "=re_comp", "=re_compile_fastmap", "^pcre_compile", "^pcre2_compile",
    "=onig_new", "~std::__detail::_Compiler<", "^re2::RE2::Init", NULL
};

static const char *const unwind_patterns[] = {
    "=__cxa_throw", "=__cxa_rethrow", "=_Unwind_RaiseException",
    "=_Unwind_RaiseException_Phase2", "=_Unwind_Resume",
    "=_Unwind_Resume_or_Rethrow", "=_Unwind_Find_FDE",
    "=_Unwind_ForcedUnwind", "=__gxx_personality_v0", "=__gcc_personality_v0",
    "=uw_frame_state_for", "=uw_update_context_1", NULL
};

static const char *const logging_patterns[] = {
    "=printf", "=fprintf", "=sprintf", "=snprintf", "=dprintf", "=vprintf",
    "=__printf", "=__fprintf", "=__sprintf", "=__snprintf", "=_IO_printf",
    "=_IO_fprintf", "=_IO_sprintf", "=__asprintf", "=___asprintf",
    "=vfprintf", "=vsprintf", "=vsnprintf", "=vdprintf", "=asprintf",
    "=vasprintf", "=_IO_vfprintf", "=__vfprintf_internal",
    "=__vsnprintf_internal", "=__vsprintf_internal", "=__vasprintf_internal",
    "=__vfxprintf", "=printf_positional", "=__printf_fp", "=__printf_fp_l",
    "=__printf_fphex", "=__printf_chk", "=__fprintf_chk", "=__sprintf_chk",
    "=__snprintf_chk", "=__vfprintf_chk", "=__vsnprintf_chk",
    "=__vsprintf_chk", "=__dprintf_chk", "=__vdprintf_chk", "=syslog",
    "=vsyslog", "=__vsyslog_internal", "=__syslog_chk", "=__vsyslog_chk",
    "~std::__ostream_insert<", "^std::ostream::operator<<",
    "^std::ostream::_M_insert", "^std::basic_ostream<",
    "^std::operator<< <", "~& std::operator<< <", NULL
};

static const char *const compression_patterns[] = {
    "=deflate_slow", "^lzma_mf_bt", "=lzma_lzma_optimum_normal",
    "^ZSTD_compressBlock_btopt", "^ZSTD_compressBlock_btultra",
    "^ZSTD_compressBlock_btlazy2", "^BrotliCreateZopfliBackwardReferences",
    "^BrotliCreateHqZopfliBackwardReferences", "^BrotliZopfli", NULL
};

static const struct rule rules[] = {
    { "lock-contention", "Lock contention: threads wait for or hand over mutexes",
      true, true, 0.10, lock_patterns,
      "Shorten the critical sections (compute outside the lock and hold it only "
      "to publish the result), split one hot lock into per-shard or per-thread "
      "locks, replace lock-protected counters with atomics or per-thread "
      "counters merged later, and use a reader-writer lock when readers "
      "dominate. The callers below name the code that takes the lock." },
    { "malloc-churn", "Heavy malloc/free churn",
      false, false, 0.10, malloc_patterns,
      "Allocate less on this path: reuse buffers across calls instead of "
      "allocating per call, keep small short-lived objects on the stack, "
      "reserve capacity up front for growing arrays, pool fixed-size objects "
      "in a free list or arena; when the allocation rate is inherent, link a "
      "thread-caching allocator (jemalloc, tcmalloc or mimalloc)." },
    { "memcpy-heavy", "memcpy/memmove dominate these paths",
      false, false, 0.15, memcpy_patterns,
      "Copy less: pass pointers or views instead of copies, build data in "
      "place in its final buffer, grow buffers geometrically instead of "
      "re-copying, move instead of copy in C++, and use writev, splice or "
      "sendfile on I/O paths." },
    { "syscall-storm", "Many small read/write syscalls",
      false, false, 0.20, syscall_patterns,
      "Batch the I/O: read and write through buffers of 64 KiB or more "
      "(setvbuf/fwrite or an own buffer), merge pieces with readv/writev, and "
      "never do a syscall per byte or per line; `strace -c -f` shows the "
      "call counts and sizes." },
    { "regex-compile", "Regular expressions compiled repeatedly",
      false, false, 0.05, regex_patterns,
      "Compile each pattern once (at start-up, or lazily with a cache keyed by "
      "the pattern) and reuse the regex_t / pcre2_code / std::regex for every "
      "match; for fixed strings use strstr or memmem instead of a regex." },
    { "exception-unwind", "Exceptions thrown on a hot path",
      false, false, 0.05, unwind_patterns,
      "Do not throw for expected outcomes in hot code: return an error code, "
      "std::optional or std::expected, and validate input before calling code "
      "that throws. Each throw costs microseconds of FDE lookup and "
      "personality calls per frame it unwinds." },
    { "logging-format", "Logging and printf-style formatting on a hot path",
      false, false, 0.10, logging_patterns,
      "Check the log level before formatting, drop or sample per-item debug "
      "logging in loops, format only what is written, replace printf of "
      "simple values with direct conversions, and write logs through one "
      "buffered writer instead of a call per message." },
    { "compression-level", "Compression at a needlessly high level",
      false, false, 0.05, compression_patterns,
      "Lower the compression level: zlib 1-3 (deflate_fast) instead of 6-9, "
      "xz/lzma preset 0-3 instead of 6-9, zstd 1-9 instead of 16-22 "
      "(btopt/btultra), brotli 5-9 instead of 10-11. The top levels save a "
      "few percent of size for several times the CPU; for speed consider "
      "zstd or lz4." },
};

#define NRULES CGPROF_ARRAY_SIZE(rules)
_Static_assert(CGPROF_ARRAY_SIZE(rules) <= 32, "rule bits fit an unsigned");
_Static_assert(CGPROF_ARRAY_SIZE(rules) <= CGPROF_REPORT_RECOMMEND_MAX,
               "CGPROF_REPORT_RECOMMEND_MAX holds every rule");

/* ---- matching ---------------------------------------------------------- */

/* Splits a frame "module:function" into its module and function parts;
 * "module+0xOFF" has no function; a name whose first ':' starts "::"
 * (a C++ name without module) is all function. */
static void split_frame(const char *frame, const char **fn, size_t *modlen)
{
    const char *colon = strchr(frame, ':');
    if (colon != NULL && colon[1] != ':' && colon != frame) {
        *fn = colon + 1;
        *modlen = (size_t)(colon - frame);
        return;
    }
    const char *plus = strstr(frame, "+0x");
    if (plus != NULL) {
        *fn = "";
        *modlen = (size_t)(plus - frame);
        return;
    }
    *fn = frame;
    *modlen = 0;
}

static bool pattern_matches(const char *pat, const char *frame, const char *fn,
                            size_t modlen)
{
    const char *s = pat + 1;
    switch (pat[0]) {
    case '=':
        return strcmp(fn, s) == 0;
    case '^':
        return strncmp(fn, s, strlen(s)) == 0;
    case '~':
        return strstr(fn, s) != NULL;
    case '@': {
        size_t sl = strlen(s);
        for (size_t i = 0; i + sl <= modlen; i++)
            if (memcmp(frame + i, s, sl) == 0)
                return true;
        return false;
    }
    default:
        return false;
    }
}

#ifdef CGPROF_UNIT_TEST
unsigned recommend_match(const char *frame);
#endif

/* Bit r (the index in rules[]) set when frame matches rule r.
 * Tests: test/unit/report/test_recommend.c */
CGPROF_STATIC unsigned recommend_match(const char *frame)
{
    const char *fn;
    size_t modlen;
    unsigned bits = 0;
    if (frame == NULL)
        return 0;
    split_frame(frame, &fn, &modlen);
    for (size_t r = 0; r < NRULES; r++)
        for (const char *const *pat = rules[r].patterns; *pat != NULL; pat++)
            if (pattern_matches(*pat, frame, fn, modlen)) {
                bits |= 1u << r;
                break;
            }
    return bits;
}

/* ---- evidence tallies -------------------------------------------------- */

struct tally_entry {
    const char *name;
    double secs;
};

struct tally {
    struct tally_entry e[MAX_TALLY];
    size_t n;
    double dropped;   /* seconds of names past MAX_TALLY */
};

static void tally_add(struct tally *t, const char *name, double secs)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->e[i].name == name || strcmp(t->e[i].name, name) == 0) {
            t->e[i].secs += secs;
            return;
        }
    if (t->n == MAX_TALLY) {
        t->dropped += secs;
        return;
    }
    t->e[t->n].name = name;
    t->e[t->n].secs = secs;
    t->n++;
}

static int cmp_tally(const void *a, const void *b)
{
    const struct tally_entry *x = a, *y = b;
    if (x->secs != y->secs)
        return x->secs < y->secs ? 1 : -1;
    return strcmp(x->name, y->name);
}

/* Appends "label: name share%, ..." with the heaviest entries that fit;
 * only whole items are written, and nothing when not even one fits. */
static void tally_describe(struct tally *t, const char *label, double total,
                           char *out, size_t cap, size_t *len)
{
    if (t->n == 0 || *len + 1 >= cap)
        return;
    qsort(t->e, t->n, sizeof(t->e[0]), cmp_tally);
    for (size_t i = 0; i < t->n && i < 4; i++) {
        char item[600];
        double pct = total > 0 ? 100.0 * t->e[i].secs / total : 0.0;
        int iw = i == 0 ? snprintf(item, sizeof(item), "%s%s: %s %.1f%%", *len ? "; " : "",
                                   label, t->e[i].name, pct)
                        : snprintf(item, sizeof(item), ", %s %.1f%%", t->e[i].name, pct);
        if (iw < 0 || (size_t)iw >= sizeof(item) || (size_t)iw >= cap - *len)
            break;
        memcpy(out + *len, item, (size_t)iw + 1);
        *len += (size_t)iw;
    }
}

/* ---- the walk ---------------------------------------------------------- */

struct rule_state {
    double secs;          /* matched seconds in the rule's view */
    double cpu_secs;      /* matched RUNNABLE seconds (for the cost) */
    double blocked_secs;  /* BLOCKED seconds counted without a lock frame */
    uint64_t count;       /* matched samples in the view */
    unsigned on_path;     /* matching frames on the current path */
    const struct cgprof_node *distinct[MAX_DISTINCT]; /* distinct names on path */
    size_t ndistinct;
    struct tally frames;  /* matching frames, inclusive */
    struct tally callers; /* caller of the outermost matching frame */
};

struct walk_item {
    const struct cgprof_node *node;
    unsigned bits;
};

/* Seconds and counts of node n's self counts in one view. */
static void node_view(const struct cgprof_node *n, const double *per, unsigned mask,
                      double *secs, uint64_t *count)
{
    *secs = 0;
    *count = 0;
    for (int c = 0; c < CGPROF_NCOUNTERS; c++)
        if (mask & CGPROF_REPORT_MASK(c)) {
            *secs += (double)n->counts[c] * per[c];
            *count += n->counts[c];
        }
}

static void enter(struct rule_state *st, const struct cgprof_node *n, unsigned bits)
{
    for (size_t r = 0; r < NRULES; r++) {
        if (!(bits & (1u << r)))
            continue;
        struct rule_state *s = &st[r];
        s->on_path++;
        bool seen = false;
        for (size_t i = 0; i < s->ndistinct && !seen; i++)
            seen = strcmp(s->distinct[i]->name, n->name) == 0;
        if (!seen && s->ndistinct < MAX_DISTINCT)
            s->distinct[s->ndistinct++] = n;
    }
}

static void leave(struct rule_state *st, const struct cgprof_node *n, unsigned bits)
{
    for (size_t r = 0; r < NRULES; r++) {
        if (!(bits & (1u << r)))
            continue;
        struct rule_state *s = &st[r];
        s->on_path--;
        if (s->ndistinct > 0 && s->distinct[s->ndistinct - 1] == n)
            s->ndistinct--;
    }
}

/* Charges node n's self samples to every rule matched on its path. */
static void charge(struct rule_state *st, const struct cgprof_node *n,
                   const double *per)
{
    double cpu_s, lat_s, run_s = (double)n->counts[CGPROF_COUNTER_RUNNABLE] *
                                 per[CGPROF_COUNTER_RUNNABLE];
    uint64_t cpu_c, lat_c;
    node_view(n, per, CGPROF_REPORT_MASK_CPU, &cpu_s, &cpu_c);
    node_view(n, per, CGPROF_REPORT_MASK_LATENCY, &lat_s, &lat_c);
    for (size_t r = 0; r < NRULES; r++) {
        struct rule_state *s = &st[r];
        double secs = rules[r].latency ? lat_s : cpu_s;
        uint64_t count = rules[r].latency ? lat_c : cpu_c;
        if (s->on_path == 0) {
            uint64_t b = n->counts[CGPROF_COUNTER_BLOCKED];
            if (rules[r].blocked && b > 0 && n->name != NULL) {
                double bs = (double)b * per[CGPROF_COUNTER_BLOCKED];
                s->secs += bs;
                s->blocked_secs += bs;
                s->count += b;
                tally_add(&s->callers, n->name, bs);
            }
            continue;
        }
        if (count == 0)
            continue;
        s->secs += secs;
        s->cpu_secs += run_s;
        s->count += count;
        for (size_t i = 0; i < s->ndistinct; i++)
            tally_add(&s->frames, s->distinct[i]->name, secs);
        const struct cgprof_node *caller = s->distinct[0]->parent;
        tally_add(&s->callers, caller && caller->name ? caller->name : "(root)", secs);
    }
}

/* Tests: test/unit/report/test_recommend.c */
int cgprof_report_recommend(const struct cgprof_profile *p, double price_per_vcpu_hour,
                            struct cgprof_recommendation *out, size_t max, size_t *n)
{
    double per[CGPROF_NCOUNTERS], total_cpu = 0, total_lat = 0;
    struct cgprof_recommendation found[NRULES];
    struct rule_state *st = NULL;
    struct walk_item *stack = NULL;
    size_t cap = 64, depth = 0, nout = 0;
    int rc = CGPROF_ENOMEM;

    if (n != NULL)
        *n = 0;
    if (p == NULL || n == NULL || (out == NULL && max > 0) ||
        !(price_per_vcpu_hour >= 0) || !isfinite(price_per_vcpu_hour))
        return CGPROF_EINVAL;
    for (int c = 0; c < CGPROF_NCOUNTERS; c++)
        per[c] = 1.0 / cgprof_report_weight(p, (enum cgprof_counter)c);

    st = cgprof_calloc(NRULES, sizeof(*st));
    stack = cgprof_malloc(cap * sizeof(*stack));
    if (st == NULL || stack == NULL)
        goto done;

    /* Totals of both views, the root's empty-stack samples included. */
    {
        double s;
        uint64_t c;
        node_view(&p->root, per, CGPROF_REPORT_MASK_CPU, &s, &c);
        total_cpu += s;
        node_view(&p->root, per, CGPROF_REPORT_MASK_LATENCY, &s, &c);
        total_lat += s;
    }

    const struct cgprof_node *x = p->root.first_child;
    while (x != NULL) {
        if (depth == cap) {
            struct walk_item *grown = cgprof_realloc(stack, 2 * cap * sizeof(*stack));
            if (grown == NULL)
                goto done;
            stack = grown;
            cap *= 2;
        }
        unsigned bits = recommend_match(x->name);
        stack[depth].node = x;
        stack[depth].bits = bits;
        depth++;
        enter(st, x, bits);
        {
            double s;
            uint64_t c;
            node_view(x, per, CGPROF_REPORT_MASK_CPU, &s, &c);
            total_cpu += s;
            node_view(x, per, CGPROF_REPORT_MASK_LATENCY, &s, &c);
            total_lat += s;
        }
        charge(st, x, per);
        if (x->first_child != NULL) {
            x = x->first_child;
            continue;
        }
        for (;;) {
            struct walk_item *done_item = &stack[--depth];
            leave(st, done_item->node, done_item->bits);
            if (done_item->node->next_sibling != NULL) {
                x = done_item->node->next_sibling;
                break;
            }
            if (depth == 0) {
                x = NULL;
                break;
            }
        }
    }

    double dur_s = (double)p->duration_ms / 1000.0;
    if (dur_s <= 0 && p->end_ms > p->start_ms)
        dur_s = (double)(p->end_ms - p->start_ms) / 1000.0;

    for (size_t r = 0; r < NRULES; r++) {
        struct rule_state *s = &st[r];
        double total = rules[r].latency ? total_lat : total_cpu;
        if (total <= 0 || s->count < MIN_SAMPLES)
            continue;
        double share = s->secs / total;
        if (share + SHARE_EPS < rules[r].threshold)
            continue;
        struct cgprof_recommendation *o = &found[nout++];
        memset(o, 0, sizeof(*o));
        o->id = rules[r].id;
        o->title = rules[r].title;
        o->fix = rules[r].fix;
        o->share = share > 1.0 ? 1.0 : share;
        o->seconds = s->secs;
        o->yearly_cost_usd = dur_s > 0 ? s->cpu_secs / dur_s * HOURS_PER_YEAR *
                                             price_per_vcpu_hour : 0.0;
        size_t len = 0;
        tally_describe(&s->frames, "frames", total, o->evidence, sizeof(o->evidence), &len);
        tally_describe(&s->callers, s->blocked_secs > 0 && s->frames.n == 0
                                        ? "blocked in" : "called from",
                       total, o->evidence, sizeof(o->evidence), &len);
    }
    /* Heaviest share first; ties by id for a stable order. */
    for (size_t i = 1; i < nout; i++) {
        struct cgprof_recommendation tmp = found[i];
        size_t j = i;
        while (j > 0 && (found[j - 1].share < tmp.share ||
                         (found[j - 1].share == tmp.share &&
                          strcmp(found[j - 1].id, tmp.id) > 0))) {
            found[j] = found[j - 1];
            j--;
        }
        found[j] = tmp;
    }
    if (nout > max)
        nout = max;
    if (nout > 0)
        memcpy(out, found, nout * sizeof(*out));
    *n = nout;
    rc = 0;
done:
    cgprof_free(stack);
    cgprof_free(st);
    return rc;
}

/* Tests: test/unit/report/test_recommend.c */
int cgprof_report_recommend_text(const struct cgprof_profile *p,
                                 double price_per_vcpu_hour, struct cgprof_buf *out)
{
    struct cgprof_recommendation rec[NRULES];
    size_t n = 0;
    int rc = cgprof_report_recommend(p, price_per_vcpu_hour, rec, NRULES, &n);
    if (rc != 0)
        return rc;
    rc = cgprof_buf_printf(out, "Recommendations (shares of the CPU view, of the latency "
                                "view for lock contention; yearly costs are estimates at "
                                "$%.4f per vCPU-hour over a year of this profile's "
                                "duration)\n", price_per_vcpu_hour);
    if (rc == 0 && n == 0)
        rc = cgprof_buf_appends(out, "  none: no rule reached its threshold "
                                     "(README.md \"Recommendations\")\n");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const struct cgprof_recommendation *r = &rec[i];
        rc = cgprof_buf_printf(out,
                               "  [%s] %s\n"
                               "    %.1f%% of the %s view, %.2f s, estimated $%.2f per year\n"
                               "    evidence: %s\n"
                               "    fix: %s\n",
                               r->id, r->title, 100.0 * r->share,
                               strcmp(r->id, "lock-contention") == 0 ? "latency" : "CPU",
                               r->seconds, r->yearly_cost_usd,
                               r->evidence[0] ? r->evidence : "(none)", r->fix);
    }
    return rc;
}
