/* profile/: the profile model exchanged between the sampler, the uploaders
 * and the report: one reporting interval of one process as a call tree whose
 * nodes carry per-counter *self* sample counts (totals are derived), plus
 * metadata (WIRE.md §1.1). Also its encoders/decoders: CodeGuru agent JSON,
 * folded stacks, and gzip'd files as stored by the file sink and the spool.
 * Not thread-safe: one owner at a time. */
#ifndef CGPROF_PROFILE_H
#define CGPROF_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/common.h"

/* Counters, named as the CodeGuru console's thread states. A count of
 * counter C is worth 1 / sample_weights[C] seconds of thread time:
 * - RUNNABLE: per-thread CPU-timer samples; weight = cpuSamplingHz, so
 *   RUNNABLE seconds are CPU seconds.
 * - BLOCKED, WAITING, TIMED_WAITING, IDLE, NATIVE: thread-state samples
 *   taken every samplingIntervalMs; weight = 1000 / samplingIntervalMs.
 * The wire names are cgprof_counter_name(). */
enum cgprof_counter {
    CGPROF_COUNTER_RUNNABLE = 0,
    CGPROF_COUNTER_BLOCKED,
    CGPROF_COUNTER_NATIVE,
    CGPROF_COUNTER_WAITING,
    CGPROF_COUNTER_TIMED_WAITING,
    CGPROF_COUNTER_IDLE,
    CGPROF_NCOUNTERS
};

const char *cgprof_counter_name(enum cgprof_counter c);
/* Returns the counter for a wire name, or -1. */
int cgprof_counter_from_name(const char *name);

struct cgprof_node {
    const char *name;                 /* interned; NULL for the root */
    struct cgprof_node *parent;
    struct cgprof_node *first_child;
    struct cgprof_node *next_sibling;
    uint64_t counts[CGPROF_NCOUNTERS]; /* self counts */
};

/* Errors counted during one profile (WIRE.md §1.1 debugInfo.errorsCount). */
struct cgprof_error_counts {
    unsigned errors_count;
    unsigned sdk_client_errors;
    unsigned configure_agent_errors;
    unsigned configure_agent_rnfe_auto_create_enabled_errors;
    unsigned create_profiling_group_errors;
    unsigned post_agent_profile_errors;
    unsigned post_agent_profile_rnfe_auto_create_enabled_errors;
};

/* ---- heap summary --------------------------------------------------------
 * The native analogue of the console's heap summary: data points of the
 * process's memory figures over time, and the allocation sites that hold
 * live memory (estimated from sampled allocations). As in the console, a
 * site is recorded at a data point only when its live bytes reach the
 * threshold (a share of total capacity); a site missing from some data
 * points is "incomplete data", and its averages cover the points where it
 * was recorded. */
struct cgprof_heap_point {
    uint64_t time_ms;                 /* epoch ms */
    uint64_t capacity;                /* total capacity, bytes; 0 = unknown */
    uint64_t used;                    /* used space: allocator's in-use bytes */
    uint64_t rss;                     /* resident set size, bytes */
    uint64_t sampled;                 /* estimated live bytes of all sites */
};

struct cgprof_heap_site {
    const char **frames;              /* root first; interned in the profile */
    size_t nframes;
    uint64_t hash;                    /* of the interned frame pointers */
    double bytes_sum;                 /* live-byte estimates, summed over points */
    double objects_sum;               /* live-object estimates, summed */
    double peak_bytes;                /* largest live-byte estimate */
    uint64_t points;                  /* data points where it was recorded */
};

#define CGPROF_HEAP_MAX_POINTS 4096   /* older points are thinned past this */
#define CGPROF_HEAP_MAX_SITES 2048    /* more go to CGPROF_HEAP_OTHER_SITES */
#define CGPROF_HEAP_OTHER_SITES "[other sites]"
#define CGPROF_HEAP_UNKNOWN_SITE "[unknown site]"

struct cgprof_heap_summary {
    bool present;                     /* heap tracking was on */
    bool tracked;                     /* our malloc sees the program's allocations */
    bool incomplete;                  /* data was lost (ring/table full, ...) */
    char allocator[64];               /* "glibc" or the module providing malloc */
    uint64_t interval_bytes;          /* Poisson sampling mean */
    unsigned threshold_permille;      /* site threshold, of capacity */
    uint64_t snapshots;               /* data points taken (>= npoints) */
    uint64_t samples;                 /* allocations sampled */
    uint64_t lost;                    /* sampled allocations without a site */
    uint64_t peak_used;               /* largest used space seen */
    uint64_t peak_rss;
    struct cgprof_heap_point *points; /* by time */
    size_t npoints, points_cap;
    struct cgprof_heap_site *sites;
    size_t nsites, sites_cap;
};

struct cgprof_profile {
    /* metadata */
    uint64_t start_ms;                /* epoch ms when the profile began */
    uint64_t end_ms;                  /* epoch ms of the last sample (> start) */
    uint64_t duration_ms;             /* active wall time (pauses excluded) */
    double cpu_time_s;                /* whole-process CPU time in the interval */
    double num_threads;               /* average threads seen per sample tick */
    uint64_t num_times_sampled;       /* sampling ticks aggregated */
    double sample_weights[CGPROF_NCOUNTERS]; /* counts per second; 0 = unused */
    uint64_t agent_cpu_ms;            /* agent's own CPU time (agentOverhead) */
    unsigned agent_memory_mb;         /* estimated profile memory */
    uint64_t samples_dropped;         /* samples lost (ring full, unwind fail) */
    uint64_t agent_start_ms;
    int pid;
    char group_name[256];             /* profiling group or program name */
    char runtime_version[64];         /* e.g. "glibc-2.36" */
    char fleet_instance_id[256];
    char *fleet_info_json;            /* owned JSON object text, or NULL */
    struct cgprof_error_counts errors;

    /* call tree. Children point at &root, so a profile with nodes must not
     * be copied or moved (pass pointers; use merge to combine). */
    struct cgprof_node root;
    size_t node_count;                /* nodes below the root */

    /* private: arena, interning and child index (profile/tree.c) */
    struct cgprof__profile_store *store;

    /* heap summary (heapSummaryEnabled:true); heap.present is false
     * otherwise. Owned by the profile: reset, cleanup and merge handle it. */
    struct cgprof_heap_summary heap;
};

/* Initializes an empty profile. Returns 0 or CGPROF_ENOMEM. */
int cgprof_profile_init(struct cgprof_profile *p);
void cgprof_profile_cleanup(struct cgprof_profile *p);
/* Empties the tree and counts but keeps interned strings' memory reusable;
 * metadata is zeroed. Interned names and node pointers from before the
 * reset are invalid afterwards (their memory is reused). */
int cgprof_profile_reset(struct cgprof_profile *p);

/* Interns a name (the first n bytes of s, stopping at a NUL); the result
 * lives as long as the profile, until reset. NULL on OOM. */
const char *cgprof_profile_intern(struct cgprof_profile *p, const char *s, size_t n);

/* Finds or creates the child of parent named name (need not be interned).
 * NULL on OOM. */
struct cgprof_node *cgprof_profile_child(struct cgprof_profile *p,
                                         struct cgprof_node *parent,
                                         const char *name);

/* Adds count to the self counter of the stack frames[0..n) given root
 * first (frames[n-1] is the leaf). Returns 0 or CGPROF_ENOMEM. */
int cgprof_profile_add_stack(struct cgprof_profile *p, const char *const *frames,
                             size_t n, enum cgprof_counter c, uint64_t count);

/* The same, and *leaf (when not NULL) gets the leaf node, valid until the
 * next reset. */
int cgprof_profile_add_stack_leaf(struct cgprof_profile *p, const char *const *frames,
                                  size_t n, enum cgprof_counter c, uint64_t count,
                                  struct cgprof_node **leaf);

/* Adds every count of src into dst and widens dst's time range; metadata
 * sums (duration, CPU, samples) are added. Returns 0 or CGPROF_ENOMEM. */
int cgprof_profile_merge(struct cgprof_profile *dst, const struct cgprof_profile *src);

/* Approximate bytes held by the profile (for the memory cap). */
size_t cgprof_profile_memory(const struct cgprof_profile *p);

/* Sum of self counts of counter c over the whole tree. */
uint64_t cgprof_profile_total(const struct cgprof_profile *p, enum cgprof_counter c);

/* ---- encoders and decoders -------------------------------------------- */

/* CodeGuru agent-profile JSON (WIRE.md §1.1), appended to out (bounded).
 * Returns 0, CGPROF_ETOOBIG or CGPROF_ENOMEM. */
int cgprof_profile_encode_codeguru(const struct cgprof_profile *p, struct cgprof_buf *out);
/* Parses CodeGuru agent-profile JSON into an initialized, empty profile.
 * Returns 0, CGPROF_EJSON or CGPROF_ENOMEM. */
int cgprof_profile_decode_codeguru(struct cgprof_profile *p, const char *json, size_t len);

/* Folded stacks ("a;b;c 12\n") of the counters in mask (bit per counter). */
int cgprof_profile_encode_folded(const struct cgprof_profile *p, unsigned mask,
                                 struct cgprof_buf *out);

/* pprof (pprof.c): p as a gzip'd protobuf perftools.profiles.Profile
 * (github.com/google/pprof proto/profile.proto) appended to out, for
 * `go tool pprof`, `cgprof report --format pprof` and the Pyroscope sink.
 * Sample types cpu/nanoseconds (RUNNABLE counts / their weight),
 * wall/nanoseconds (every counter but IDLE, each / its weight) and
 * samples/count (every counter but IDLE, raw); one sample per call-tree
 * node with counts, leaf location first; one function and location per
 * distinct frame name, one mapping per module; period = 1e9 / the
 * RUNNABLE weight (cpu/nanoseconds); time_nanos = start, duration_nanos =
 * duration_ms (else end - start). Weights missing from p default to 100
 * Hz for RUNNABLE and 1 Hz for the others. Returns 0, CGPROF_EINVAL,
 * CGPROF_ENOMEM or CGPROF_ETOOBIG. */
int cgprof_profile_encode_pprof(const struct cgprof_profile *p, struct cgprof_buf *out);

/* ---- heap summary (heap.c) ------------------------------------------- */

/* Appends one data point (snapshots is counted too); when CGPROF_HEAP_MAX_POINTS
 * are held every other point is dropped first. Marks the summary present.
 * Returns 0 or CGPROF_ENOMEM. */
int cgprof_profile_heap_add_point(struct cgprof_profile *p, const struct cgprof_heap_point *pt);

/* Adds one data point's live estimate of the site frames[0..n) (root
 * first; names need not be interned) to its sums. Past
 * CGPROF_HEAP_MAX_SITES sites the figures go to CGPROF_HEAP_OTHER_SITES.
 * Returns 0 or CGPROF_ENOMEM. */
int cgprof_profile_heap_add_site(struct cgprof_profile *p, const char *const *frames,
                                 size_t n, double bytes, double objects);

/* Averages of a site over the points where it was recorded, and whether
 * it misses some of the summary's data points (incomplete data). */
double cgprof_heap_site_avg_bytes(const struct cgprof_heap_site *s);
double cgprof_heap_site_avg_objects(const struct cgprof_heap_site *s);
bool cgprof_heap_site_incomplete(const struct cgprof_heap_summary *h,
                                 const struct cgprof_heap_site *s);

/* gzip (RFC 1952) helpers; out is appended to. */
int cgprof_gzip(const void *in, size_t len, struct cgprof_buf *out);
int cgprof_gunzip(const void *in, size_t len, struct cgprof_buf *out);

/* Largest stored profile, compressed or decompressed. */
#define CGPROF_PROFILE_FILE_MAX ((size_t)256 << 20)

/* Reads a stored profile (.json or .json.gz) into an initialized profile. */
int cgprof_profile_load_file(struct cgprof_profile *p, const char *path);
/* Writes p as gzip'd CodeGuru JSON to path atomically. */
int cgprof_profile_save_file(const struct cgprof_profile *p, const char *path);

#endif
