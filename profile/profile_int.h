/* profile/ internals shared by tree.c and the encoders: the private store
 * behind struct cgprof_profile (arenas, intern table, child index) and an
 * ordered tree walker. Nothing outside profile/ includes this file. */
#ifndef CGPROF_PROFILE_INT_H
#define CGPROF_PROFILE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "profile.h"

/* One block of an arena; data follows the header. */
struct cgprof__chunk {
    struct cgprof__chunk *next;
    size_t size;                      /* usable bytes after the header */
    size_t used;
};

/* Bump allocator over a list of chunks. Chunks grow geometrically up to a
 * cap; reset keeps the first chunk and frees the rest. */
struct cgprof__arena {
    struct cgprof__chunk *head;       /* first chunk (kept by reset) */
    struct cgprof__chunk *cur;        /* chunk being filled */
    size_t next_size;                 /* size of the next chunk to allocate */
    size_t bytes;                     /* bytes malloc'd for chunks */
    size_t used;                      /* bytes handed out */
};

/* Intern table slot: open addressing, linear probing. */
struct cgprof__str_slot {
    const char *s;                    /* NULL = empty */
    uint32_t hash;
    uint32_t len;
};

/* Child index slot keyed by (parent, interned name), placed by the hash
 * of the node's path (tree.c explains why). */
struct cgprof__kid_slot {
    uint64_t hash;
    const struct cgprof_node *parent; /* NULL = empty */
    const char *name;
    struct cgprof_node *node;
};

/* Small direct-mapped cache from a caller's string pointer to its interned
 * copy. A hit is confirmed with strcmp, so a reused caller pointer that now
 * holds other text only costs a miss. */
#define CGPROF__PCACHE_SIZE 16384

struct cgprof__pcache_slot {
    const char *key;
    const char *interned;
};

/* add_stack remembers the nodes of the previous stack: consecutive samples
 * of one thread usually share most of their frames. */
#define CGPROF__MEMO_DEPTH 128

struct cgprof__profile_store {
    struct cgprof__arena nodes;
    struct cgprof__arena strs;
    struct cgprof__str_slot *str_tab;
    size_t str_cap, str_count;
    struct cgprof__kid_slot *kid_tab;
    size_t kid_cap;                   /* kid count is profile->node_count */
    struct cgprof__pcache_slot *pcache;
    const char *memo_names[CGPROF__MEMO_DEPTH];
    struct cgprof_node *memo_nodes[CGPROF__MEMO_DEPTH];
    size_t memo_n;
};

/* Finds or creates the child of parent named by the n bytes at name (stops
 * at a NUL). NULL on OOM. Tests: test/unit/profile/test_tree.c */
struct cgprof_node *cgprof__profile_child_n(struct cgprof_profile *p,
                                            struct cgprof_node *parent,
                                            const char *name, size_t n);

/* ---- ordered walk --------------------------------------------------------
 * Depth-first walk of a tree that visits children sorted by name (byte
 * order), so every encoder's output is deterministic and does not depend on
 * the order samples arrived in. Iterative: deep trees use heap, not stack.
 *
 *   struct cgprof__walk w;
 *   cgprof__walk_init(&w, &p->root);
 *   while ((ev = cgprof__walk_next(&w)) > 0) { ... w.node, w.level ... }
 *   cgprof__walk_cleanup(&w);
 *
 * ENTER comes before the node's children, LEAVE after them. w.level is 0
 * for the root; w.index is the node's position among its siblings. */
enum { CGPROF__WALK_ENTER = 1, CGPROF__WALK_LEAVE = 2 };

struct cgprof__walk_level {
    const struct cgprof_node *node;
    size_t start, n, i;               /* node's sorted children in kids[] */
};

struct cgprof__walk {
    const struct cgprof_node *root;
    const struct cgprof_node **kids;
    size_t nkids, kids_cap;
    struct cgprof__walk_level *lv;
    size_t depth, lv_cap;
    int started;
    /* current event */
    const struct cgprof_node *node;
    size_t index;
    size_t level;
};

void cgprof__walk_init(struct cgprof__walk *w, const struct cgprof_node *root);
/* Returns CGPROF__WALK_ENTER/LEAVE, 0 when done, or CGPROF_ENOMEM. */
int cgprof__walk_next(struct cgprof__walk *w);
void cgprof__walk_cleanup(struct cgprof__walk *w);

/* Appends s as an ASCII-only JSON string literal (codeguru_json.c). */
int cgprof__json_append_string(struct cgprof_buf *b, const char *s);

/* Installs cgprof_malloc/cgprof_free as jansson's allocator (once). */
void cgprof__json_setup(void);

/* ---- heap summary (heap.c) ----------------------------------------------- */

struct json_t;
/* Frees the heap summary's arrays and zeroes it (reset and cleanup). */
void cgprof__profile_heap_cleanup(struct cgprof_profile *p);
size_t cgprof__profile_heap_memory(const struct cgprof_profile *p);
/* Adds src's heap summary to dst's. 0 or CGPROF_ENOMEM. */
int cgprof__profile_heap_merge(struct cgprof_profile *dst, const struct cgprof_profile *src);
/* Appends the "heapSummary" member (with its leading ", ") when present. */
int cgprof__profile_heap_encode(const struct cgprof_profile *p, struct cgprof_buf *b);
/* Reads a "heapSummary" object into p's (empty) heap summary. */
int cgprof__profile_heap_decode(struct cgprof_profile *p, const struct json_t *obj);

#endif
