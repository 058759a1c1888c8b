/* The profile's call tree: nodes and interned names live in chunked arenas,
 * names are interned through an open-addressing hash table, and a second
 * table keyed by (parent, interned name) finds a child in O(1). The
 * first_child/next_sibling links are kept for traversal; the ordered walker
 * used by the encoders is here too. Encoders live in codeguru_json.c and
 * folded.c, gzip and files in gzip.c and file.c. */
#include <stdlib.h>
#include <string.h>

#include "profile_int.h"

#define ARENA_FIRST_CHUNK (16u * 1024u)
#define ARENA_MAX_CHUNK (1024u * 1024u)
#define STR_TAB_INIT 1024u
#define KID_TAB_INIT 1024u
/* Tables larger than this are shrunk back by reset so that one huge
 * interval does not pin its memory for the rest of the process. */
#define TAB_KEEP_SLOTS 65536u
#define ADD_BLOCK 32

static const char *const counter_names[CGPROF_NCOUNTERS] = {
    "RUNNABLE", "BLOCKED", "NATIVE", "WAITING", "TIMED_WAITING", "IDLE",
};

const char *cgprof_counter_name(enum cgprof_counter c)
{
    if ((unsigned)c >= CGPROF_NCOUNTERS)
        return "UNKNOWN";
    return counter_names[c];
}

int cgprof_counter_from_name(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < CGPROF_NCOUNTERS; i++)
        if (strcmp(name, counter_names[i]) == 0)
            return i;
    return -1;
}

/* ---- hashing ------------------------------------------------------------ */

static inline uint64_t fmix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

/* Word-at-a-time string hash with a murmur3 finalizer: names are short, so
 * reading 8 bytes per step matters more than the last bit of quality. */
static inline uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    return fmix64(h ^ w);
}

/* The child index hashes a node's path (the chain of interned name
 * pointers from the root) rather than the parent's address: the hashes of
 * all frames of a stack are then known before any node is found, so
 * add_stack can prefetch every slot at once instead of taking one cache
 * miss after another down the stack. Slots still compare the exact key
 * (parent, name), so a hash collision costs a probe, never a wrong node. */
#define ROOT_HASH 0x243f6a8885a308d3ull

static inline uint64_t path_hash(uint64_t parent_hash, const char *name)
{
    return fmix64(parent_hash * 0x9e3779b97f4a7c15ull + (uint64_t)(uintptr_t)name);
}

/* Arena nodes carry their path hash just before the public struct. */
struct node_ext {
    uint64_t hash;
    struct cgprof_node node;
};

static inline uint64_t node_hash(const struct cgprof_profile *p, const struct cgprof_node *n)
{
    if (n == &p->root)
        return ROOT_HASH;
    return ((const struct node_ext *)(const void *)
            ((const char *)n - offsetof(struct node_ext, node)))->hash;
}

/* ---- arenas ------------------------------------------------------------- */

static void *arena_alloc(struct cgprof__arena *a, size_t n, size_t align)
{
    struct cgprof__chunk *c = a->cur;
    if (c) {
        size_t off = (c->used + align - 1) & ~(align - 1);
        if (off + n <= c->size) {
            c->used = off + n;
            a->used += n;
            return (char *)(c + 1) + off;
        }
    }
    size_t size = a->next_size ? a->next_size : ARENA_FIRST_CHUNK;
    while (size < n + align)
        size *= 2;
    struct cgprof__chunk *nc = cgprof_malloc(sizeof(*nc) + size);
    if (!nc)
        return NULL;
    nc->next = NULL;
    nc->size = size;
    nc->used = 0;
    if (c)
        c->next = nc;
    else
        a->head = nc;
    a->bytes += sizeof(*nc) + size;
    if (a->next_size < ARENA_MAX_CHUNK)
        a->next_size = size * 2 > ARENA_MAX_CHUNK ? ARENA_MAX_CHUNK : size * 2;
    a->cur = nc;
    c = nc;
    /* Data starts 24 bytes into a malloc'd block: 8-aligned, enough for
     * nodes and strings (align <= 8). */
    c->used = n;
    a->used += n;
    return c + 1;
}

/* Keeps the first chunk for reuse and frees the others. */
static void arena_reset(struct cgprof__arena *a)
{
    struct cgprof__chunk *c = a->head ? a->head->next : NULL;
    while (c) {
        struct cgprof__chunk *next = c->next;
        a->bytes -= sizeof(*c) + c->size;
        cgprof_free(c);
        c = next;
    }
    if (a->head) {
        a->head->next = NULL;
        a->head->used = 0;
        a->next_size = a->head->size * 2;
    } else {
        a->next_size = 0;
    }
    a->cur = a->head;
    a->used = 0;
}

static void arena_free(struct cgprof__arena *a)
{
    struct cgprof__chunk *c = a->head;
    while (c) {
        struct cgprof__chunk *next = c->next;
        cgprof_free(c);
        c = next;
    }
    memset(a, 0, sizeof(*a));
}

/* ---- lifecycle ---------------------------------------------------------- */

static int store_tables_alloc(struct cgprof__profile_store *st)
{
    st->str_tab = cgprof_calloc(STR_TAB_INIT, sizeof(*st->str_tab));
    st->kid_tab = cgprof_calloc(KID_TAB_INIT, sizeof(*st->kid_tab));
    if (!st->str_tab || !st->kid_tab) {
        cgprof_free(st->str_tab);
        cgprof_free(st->kid_tab);
        st->str_tab = NULL;
        st->kid_tab = NULL;
        return CGPROF_ENOMEM;
    }
    st->str_cap = STR_TAB_INIT;
    st->kid_cap = KID_TAB_INIT;
    st->str_count = 0;
    return 0;
}

int cgprof_profile_init(struct cgprof_profile *p)
{
    memset(p, 0, sizeof(*p));
    struct cgprof__profile_store *st = cgprof_calloc(1, sizeof(*st));
    if (!st)
        return CGPROF_ENOMEM;
    st->pcache = cgprof_calloc(CGPROF__PCACHE_SIZE, sizeof(*st->pcache));
    if (!st->pcache || store_tables_alloc(st) != 0) {
        cgprof_free(st->pcache);
        cgprof_free(st);
        return CGPROF_ENOMEM;
    }
    p->store = st;
    return 0;
}

void cgprof_profile_cleanup(struct cgprof_profile *p)
{
    struct cgprof__profile_store *st = p->store;
    if (st) {
        arena_free(&st->nodes);
        arena_free(&st->strs);
        cgprof_free(st->str_tab);
        cgprof_free(st->kid_tab);
        cgprof_free(st->pcache);
        cgprof_free(st);
    }
    cgprof__profile_heap_cleanup(p);
    cgprof_free(p->fleet_info_json);
    memset(p, 0, sizeof(*p));
}

/* Empties the tree, the interned names and the metadata. The first chunk
 * of each arena and tables up to TAB_KEEP_SLOTS are kept for reuse, so a
 * steady-state agent does not reallocate every interval, while one huge
 * interval does not pin its memory. Interned pointers become invalid.
 * Tests: test/unit/profile/test_tree.c */
int cgprof_profile_reset(struct cgprof_profile *p)
{
    struct cgprof__profile_store *st = p->store;
    if (!st)
        return CGPROF_EINVAL;
    arena_reset(&st->nodes);
    arena_reset(&st->strs);
    memset(st->pcache, 0, CGPROF__PCACHE_SIZE * sizeof(*st->pcache));
    st->memo_n = 0;
    int rc = 0;
    if (st->str_cap > TAB_KEEP_SLOTS || st->kid_cap > TAB_KEEP_SLOTS) {
        cgprof_free(st->str_tab);
        cgprof_free(st->kid_tab);
        rc = store_tables_alloc(st);
    } else {
        memset(st->str_tab, 0, st->str_cap * sizeof(*st->str_tab));
        memset(st->kid_tab, 0, st->kid_cap * sizeof(*st->kid_tab));
        st->str_count = 0;
    }
    cgprof__profile_heap_cleanup(p);
    cgprof_free(p->fleet_info_json);
    memset(p, 0, sizeof(*p));
    p->store = st;
    if (rc != 0) {
        /* Leave a usable, if table-less, profile: init again frees it. */
        cgprof_profile_cleanup(p);
        return cgprof_profile_init(p) == 0 ? 0 : CGPROF_ENOMEM;
    }
    return 0;
}

/* ---- interning ---------------------------------------------------------- */

static int str_tab_grow(struct cgprof__profile_store *st)
{
    size_t cap = st->str_cap * 2;
    struct cgprof__str_slot *t = cgprof_calloc(cap, sizeof(*t));
    if (!t)
        return CGPROF_ENOMEM;
    for (size_t i = 0; i < st->str_cap; i++) {
        struct cgprof__str_slot *s = &st->str_tab[i];
        if (!s->s)
            continue;
        size_t j = s->hash & (cap - 1);
        while (t[j].s)
            j = (j + 1) & (cap - 1);
        t[j] = *s;
    }
    cgprof_free(st->str_tab);
    st->str_tab = t;
    st->str_cap = cap;
    return 0;
}

static const char *intern(struct cgprof__profile_store *st, const char *s, size_t n)
{
    if (n > UINT32_MAX)
        return NULL;
    uint64_t h64 = hash_bytes(s, n);
    uint32_t h = (uint32_t)(h64 ^ (h64 >> 32));
    size_t mask = st->str_cap - 1;
    size_t i = h & mask;
    for (;;) {
        struct cgprof__str_slot *slot = &st->str_tab[i];
        if (!slot->s)
            break;
        if (slot->hash == h && slot->len == n && memcmp(slot->s, s, n) == 0)
            return slot->s;
        i = (i + 1) & mask;
    }
    if ((st->str_count + 1) * 10 > st->str_cap * 7) {
        if (str_tab_grow(st) != 0)
            return NULL;
        mask = st->str_cap - 1;
        i = h & mask;
        while (st->str_tab[i].s)
            i = (i + 1) & mask;
    }
    char *copy = arena_alloc(&st->strs, n + 1, 1);
    if (!copy)
        return NULL;
    memcpy(copy, s, n);
    copy[n] = '\0';
    st->str_tab[i].s = copy;
    st->str_tab[i].hash = h;
    st->str_tab[i].len = (uint32_t)n;
    st->str_count++;
    return copy;
}

const char *cgprof_profile_intern(struct cgprof_profile *p, const char *s, size_t n)
{
    if (!p->store || !s)
        return NULL;
    return intern(p->store, s, strnlen(s, n));
}

_Static_assert((CGPROF__PCACHE_SIZE & (CGPROF__PCACHE_SIZE - 1)) == 0,
               "pcache size must be a power of two");

static inline struct cgprof__pcache_slot *pcache_slot(struct cgprof__profile_store *st,
                                                      const char *s)
{
    uint64_t k = (uint64_t)(uintptr_t)s;
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return &st->pcache[k & (CGPROF__PCACHE_SIZE - 1)];
}

/* Interns a NUL-terminated name, first trying the pointer cache. */
static const char *intern_cstr(struct cgprof__profile_store *st, const char *s)
{
    struct cgprof__pcache_slot *pc = pcache_slot(st, s);
    if (pc->key == s && strcmp(pc->interned, s) == 0)
        return pc->interned;
    const char *r = intern(st, s, strlen(s));
    if (r) {
        pc->key = s;
        pc->interned = r;
    }
    return r;
}

/* ---- child index -------------------------------------------------------- */

static int kid_tab_grow(struct cgprof__profile_store *st)
{
    size_t cap = st->kid_cap * 2;
    struct cgprof__kid_slot *t = cgprof_calloc(cap, sizeof(*t));
    if (!t)
        return CGPROF_ENOMEM;
    for (size_t i = 0; i < st->kid_cap; i++) {
        struct cgprof__kid_slot *s = &st->kid_tab[i];
        if (!s->parent)
            continue;
        size_t j = s->hash & (cap - 1);
        while (t[j].parent)
            j = (j + 1) & (cap - 1);
        t[j] = *s;
    }
    cgprof_free(st->kid_tab);
    st->kid_tab = t;
    st->kid_cap = cap;
    return 0;
}

/* The hot path: name must be interned in p and h must be
 * path_hash(node_hash(parent), name). */
static struct cgprof_node *child_interned(struct cgprof_profile *p,
                                          struct cgprof_node *parent,
                                          const char *name, uint64_t h)
{
    struct cgprof__profile_store *st = p->store;
    size_t mask = st->kid_cap - 1;
    size_t i = h & mask;
    for (;;) {
        struct cgprof__kid_slot *slot = &st->kid_tab[i];
        if (!slot->parent)
            break;
        if (slot->parent == parent && slot->name == name)
            return slot->node;
        i = (i + 1) & mask;
    }
    if ((p->node_count + 1) * 10 > st->kid_cap * 7) {
        if (kid_tab_grow(st) != 0)
            return NULL;
        mask = st->kid_cap - 1;
        i = h & mask;
        while (st->kid_tab[i].parent)
            i = (i + 1) & mask;
    }
    struct node_ext *e = arena_alloc(&st->nodes, sizeof(*e), _Alignof(struct node_ext));
    if (!e)
        return NULL;
    memset(e, 0, sizeof(*e));
    e->hash = h;
    struct cgprof_node *n = &e->node;
    n->name = name;
    n->parent = parent;
    n->next_sibling = parent->first_child;
    parent->first_child = n;
    st->kid_tab[i].hash = h;
    st->kid_tab[i].parent = parent;
    st->kid_tab[i].name = name;
    st->kid_tab[i].node = n;
    p->node_count++;
    return n;
}

struct cgprof_node *cgprof__profile_child_n(struct cgprof_profile *p,
                                            struct cgprof_node *parent,
                                            const char *name, size_t n)
{
    if (!p->store || !parent || !name)
        return NULL;
    const char *in = intern(p->store, name, strnlen(name, n));
    return in ? child_interned(p, parent, in, path_hash(node_hash(p, parent), in)) : NULL;
}

struct cgprof_node *cgprof_profile_child(struct cgprof_profile *p,
                                         struct cgprof_node *parent,
                                         const char *name)
{
    if (!p->store || !parent || !name)
        return NULL;
    const char *in = intern_cstr(p->store, name);
    return in ? child_interned(p, parent, in, path_hash(node_hash(p, parent), in)) : NULL;
}

int cgprof_profile_add_stack(struct cgprof_profile *p, const char *const *frames,
                             size_t n, enum cgprof_counter c, uint64_t count)
{
    return cgprof_profile_add_stack_leaf(p, frames, n, c, count, NULL);
}

int cgprof_profile_add_stack_leaf(struct cgprof_profile *p, const char *const *frames,
                                  size_t n, enum cgprof_counter c, uint64_t count,
                                  struct cgprof_node **leaf)
{
    if (!p->store || (unsigned)c >= CGPROF_NCOUNTERS || (n > 0 && !frames))
        return CGPROF_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!frames[i])
            return CGPROF_EINVAL;
    struct cgprof__profile_store *st = p->store;
    struct cgprof_node *node = &p->root;
    uint64_t h = ROOT_HASH;
    const char *names[ADD_BLOCK];
    uint64_t hashes[ADD_BLOCK];
    size_t pre = 0; /* frames shared with the previous stack (memo) */
    /* Blocks of frames: intern them (cheap, cache-resident), compute their
     * path hashes and prefetch the index slots of frames not shared with
     * the previous stack, then walk down. */
    for (size_t i = 0; i < n; i += ADD_BLOCK) {
        size_t m = n - i < ADD_BLOCK ? n - i : ADD_BLOCK;
        for (size_t j = 0; j < m; j++) {
            size_t g = i + j;
            if (!(names[j] = intern_cstr(st, frames[g]))) {
                st->memo_n = 0;
                return CGPROF_ENOMEM;
            }
            h = path_hash(h, names[j]);
            hashes[j] = h;
            if (pre == g && g < st->memo_n && st->memo_names[g] == names[j])
                pre++;
            else
                __builtin_prefetch(&st->kid_tab[h & (st->kid_cap - 1)]);
        }
        for (size_t j = 0; j < m; j++) {
            size_t g = i + j;
            if (g < pre) {
                node = st->memo_nodes[g];
                continue;
            }
            if (!(node = child_interned(p, node, names[j], hashes[j]))) {
                st->memo_n = 0;
                return CGPROF_ENOMEM;
            }
            if (g < CGPROF__MEMO_DEPTH) {
                st->memo_names[g] = names[j];
                st->memo_nodes[g] = node;
            }
        }
    }
    st->memo_n = n < CGPROF__MEMO_DEPTH ? n : CGPROF__MEMO_DEPTH;
    node->counts[c] += count;
    if (leaf)
        *leaf = node;
    return 0;
}

/* ---- whole-tree operations ---------------------------------------------- */

/* Preorder successor of n inside root's subtree, or NULL. */
static const struct cgprof_node *preorder_next(const struct cgprof_node *n,
                                               const struct cgprof_node *root)
{
    if (n->first_child)
        return n->first_child;
    while (n != root) {
        if (n->next_sibling)
            return n->next_sibling;
        n = n->parent;
    }
    return NULL;
}

uint64_t cgprof_profile_total(const struct cgprof_profile *p, enum cgprof_counter c)
{
    if ((unsigned)c >= CGPROF_NCOUNTERS)
        return 0;
    uint64_t sum = 0;
    for (const struct cgprof_node *n = &p->root; n; n = preorder_next(n, &p->root))
        sum += n->counts[c];
    return sum;
}

size_t cgprof_profile_memory(const struct cgprof_profile *p)
{
    size_t sum = sizeof(*p);
    const struct cgprof__profile_store *st = p->store;
    if (st) {
        sum += sizeof(*st) + st->nodes.bytes + st->strs.bytes
             + st->str_cap * sizeof(*st->str_tab)
             + st->kid_cap * sizeof(*st->kid_tab)
             + CGPROF__PCACHE_SIZE * sizeof(*st->pcache);
    }
    if (p->fleet_info_json)
        sum += strlen(p->fleet_info_json) + 1;
    sum += cgprof__profile_heap_memory(p);
    return sum;
}

static void add_counts(struct cgprof_node *d, const struct cgprof_node *s)
{
    for (int c = 0; c < CGPROF_NCOUNTERS; c++)
        d->counts[c] += s->counts[c];
}

/* Merges metadata: sums for additive fields, the union of the time range,
 * a sample-weighted average thread count, and identity fields (names,
 * weights, fleet) taken from src only where dst has none.
 * Tests: test/unit/profile/test_tree.c */
static int merge_meta(struct cgprof_profile *dst, const struct cgprof_profile *src)
{
    if (!dst->fleet_info_json && src->fleet_info_json) {
        dst->fleet_info_json = cgprof_strdup(src->fleet_info_json);
        if (!dst->fleet_info_json)
            return CGPROF_ENOMEM;
    }
    if (src->start_ms && (!dst->start_ms || src->start_ms < dst->start_ms))
        dst->start_ms = src->start_ms;
    if (src->end_ms > dst->end_ms)
        dst->end_ms = src->end_ms;
    uint64_t ticks = dst->num_times_sampled + src->num_times_sampled;
    if (ticks)
        dst->num_threads = (dst->num_threads * (double)dst->num_times_sampled
                            + src->num_threads * (double)src->num_times_sampled)
                           / (double)ticks;
    dst->num_times_sampled = ticks;
    dst->duration_ms += src->duration_ms;
    dst->cpu_time_s += src->cpu_time_s;
    dst->agent_cpu_ms += src->agent_cpu_ms;
    dst->samples_dropped += src->samples_dropped;
    if (src->agent_memory_mb > dst->agent_memory_mb)
        dst->agent_memory_mb = src->agent_memory_mb;
    for (int c = 0; c < CGPROF_NCOUNTERS; c++)
        if (dst->sample_weights[c] == 0)
            dst->sample_weights[c] = src->sample_weights[c];
    if (!dst->agent_start_ms)
        dst->agent_start_ms = src->agent_start_ms;
    if (!dst->pid)
        dst->pid = src->pid;
    if (!dst->group_name[0])
        memcpy(dst->group_name, src->group_name, sizeof(dst->group_name));
    if (!dst->runtime_version[0])
        memcpy(dst->runtime_version, src->runtime_version, sizeof(dst->runtime_version));
    if (!dst->fleet_instance_id[0])
        memcpy(dst->fleet_instance_id, src->fleet_instance_id, sizeof(dst->fleet_instance_id));
    dst->group_name[sizeof(dst->group_name) - 1] = '\0';
    dst->runtime_version[sizeof(dst->runtime_version) - 1] = '\0';
    dst->fleet_instance_id[sizeof(dst->fleet_instance_id) - 1] = '\0';
    const struct cgprof_error_counts *se = &src->errors;
    struct cgprof_error_counts *de = &dst->errors;
    de->errors_count += se->errors_count;
    de->sdk_client_errors += se->sdk_client_errors;
    de->configure_agent_errors += se->configure_agent_errors;
    de->configure_agent_rnfe_auto_create_enabled_errors +=
        se->configure_agent_rnfe_auto_create_enabled_errors;
    de->create_profiling_group_errors += se->create_profiling_group_errors;
    de->post_agent_profile_errors += se->post_agent_profile_errors;
    de->post_agent_profile_rnfe_auto_create_enabled_errors +=
        se->post_agent_profile_rnfe_auto_create_enabled_errors;
    return 0;
}

/* Walks src in preorder keeping the path of matching dst nodes. On ENOMEM
 * the counts merged so far stay in dst (the tree stays consistent).
 * Tests: test/unit/profile/test_tree.c */
int cgprof_profile_merge(struct cgprof_profile *dst, const struct cgprof_profile *src)
{
    if (!dst->store || !src->store || dst == src)
        return CGPROF_EINVAL;
    size_t cap = 64, depth = 1;
    struct cgprof_node **path = cgprof_malloc(cap * sizeof(*path));
    if (!path)
        return CGPROF_ENOMEM;
    int rc = 0;
    path[0] = &dst->root;
    add_counts(&dst->root, &src->root);
    const struct cgprof_node *s = src->root.first_child;
    while (s) {
        struct cgprof_node *d = cgprof_profile_child(dst, path[depth - 1], s->name);
        if (!d) {
            rc = CGPROF_ENOMEM;
            goto out;
        }
        add_counts(d, s);
        if (s->first_child) {
            if (depth == cap) {
                struct cgprof_node **np = cgprof_realloc(path, cap * 2 * sizeof(*np));
                if (!np) {
                    rc = CGPROF_ENOMEM;
                    goto out;
                }
                path = np;
                cap *= 2;
            }
            path[depth++] = d;
            s = s->first_child;
            continue;
        }
        while (!s->next_sibling) {
            s = s->parent;
            depth--;
            if (s == &src->root)
                goto out;
        }
        s = s->next_sibling;
    }
out:
    cgprof_free(path);
    if (rc == 0)
        rc = merge_meta(dst, src);
    if (rc == 0)
        rc = cgprof__profile_heap_merge(dst, src);
    return rc;
}

/* ---- ordered walk ------------------------------------------------------- */

static int cmp_name(const void *a, const void *b)
{
    const struct cgprof_node *x = *(const struct cgprof_node *const *)a;
    const struct cgprof_node *y = *(const struct cgprof_node *const *)b;
    return strcmp(x->name, y->name);
}

void cgprof__walk_init(struct cgprof__walk *w, const struct cgprof_node *root)
{
    memset(w, 0, sizeof(*w));
    w->root = root;
}

void cgprof__walk_cleanup(struct cgprof__walk *w)
{
    cgprof_free(w->kids);
    cgprof_free(w->lv);
    memset(w, 0, sizeof(*w));
}

/* Pushes a level for node with its children sorted by name. */
static int walk_push(struct cgprof__walk *w, const struct cgprof_node *node)
{
    if (w->depth == w->lv_cap) {
        size_t cap = w->lv_cap ? w->lv_cap * 2 : 64;
        struct cgprof__walk_level *lv = cgprof_realloc(w->lv, cap * sizeof(*lv));
        if (!lv)
            return CGPROF_ENOMEM;
        w->lv = lv;
        w->lv_cap = cap;
    }
    size_t start = w->nkids;
    for (const struct cgprof_node *k = node->first_child; k; k = k->next_sibling) {
        if (w->nkids == w->kids_cap) {
            size_t cap = w->kids_cap ? w->kids_cap * 2 : 256;
            const struct cgprof_node **kids = cgprof_realloc(w->kids, cap * sizeof(*kids));
            if (!kids)
                return CGPROF_ENOMEM;
            w->kids = kids;
            w->kids_cap = cap;
        }
        w->kids[w->nkids++] = k;
    }
    size_t n = w->nkids - start;
    if (n > 1)
        qsort(w->kids + start, n, sizeof(*w->kids), cmp_name);
    struct cgprof__walk_level *l = &w->lv[w->depth++];
    l->node = node;
    l->start = start;
    l->n = n;
    l->i = 0;
    return 0;
}

int cgprof__walk_next(struct cgprof__walk *w)
{
    if (!w->started) {
        w->started = 1;
        int rc = walk_push(w, w->root);
        if (rc)
            return rc;
        w->node = w->root;
        w->index = 0;
        w->level = 0;
        return CGPROF__WALK_ENTER;
    }
    if (w->depth == 0)
        return 0;
    struct cgprof__walk_level *top = &w->lv[w->depth - 1];
    if (top->i < top->n) {
        size_t idx = top->i++;
        const struct cgprof_node *child = w->kids[top->start + idx];
        int rc = walk_push(w, child);
        if (rc)
            return rc;
        w->node = child;
        w->index = idx;
        w->level = w->depth - 1;
        return CGPROF__WALK_ENTER;
    }
    w->node = top->node;
    w->nkids = top->start;
    w->depth--;
    w->level = w->depth;
    return CGPROF__WALK_LEAVE;
}
