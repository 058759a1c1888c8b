/* Folded stacks ("root;caller;leaf count\n", as flamegraph.pl, speedscope
 * and Pyroscope read them) for a chosen set of counters. A line's count is
 * the sum of the selected self counts of its node; nodes whose sum is zero
 * are skipped. Lines come in path order, compared frame by frame in byte
 * order of the names (the ordered walker in tree.c), so the output does
 * not depend on the order samples arrived in. */
#include <string.h>

#include "profile_int.h"

/* Appends name with the bytes that would break the format replaced:
 * ';' (frame separator) becomes ':', CR and LF become spaces. */
static int append_frame(struct cgprof_buf *b, const char *name)
{
    size_t start = b->len;
    int rc = cgprof_buf_appends(b, name);
    if (rc)
        return rc;
    for (char *c = b->data + start; c < b->data + b->len; c++) {
        if (*c == ';')
            *c = ':';
        else if (*c == '\n' || *c == '\r')
            *c = ' ';
    }
    return 0;
}

/* On failure out is left as it was. Tests: test/unit/profile/test_folded.c */
int cgprof_profile_encode_folded(const struct cgprof_profile *p, unsigned mask,
                                 struct cgprof_buf *out)
{
    size_t mark = out->len;
    struct cgprof_buf path;
    cgprof_buf_init(&path, out->max);
    size_t *lens = NULL, lens_cap = 0;
    struct cgprof__walk w;
    cgprof__walk_init(&w, &p->root);
    int ev, rc = 0;
    while (rc == 0 && (ev = cgprof__walk_next(&w)) > 0) {
        const struct cgprof_node *n = w.node;
        if (w.level == 0)
            continue;
        if (ev == CGPROF__WALK_LEAVE) {
            path.len = lens[w.level];
            continue;
        }
        if (w.level >= lens_cap) {
            size_t cap = lens_cap ? lens_cap * 2 : 64;
            size_t *nl = cgprof_realloc(lens, cap * sizeof(*nl));
            if (!nl) {
                rc = CGPROF_ENOMEM;
                break;
            }
            lens = nl;
            lens_cap = cap;
        }
        lens[w.level] = path.len;
        if (w.level > 1 && (rc = cgprof_buf_append(&path, ";", 1)) != 0)
            break;
        if ((rc = append_frame(&path, n->name)) != 0)
            break;
        uint64_t sum = 0;
        for (int c = 0; c < CGPROF_NCOUNTERS; c++)
            if (mask & (1u << c))
                sum += n->counts[c];
        if (sum == 0)
            continue;
        rc = cgprof_buf_append(out, path.data, path.len);
        if (rc == 0)
            rc = cgprof_buf_printf(out, " %llu\n", (unsigned long long)sum);
    }
    if (rc == 0 && ev < 0)
        rc = ev;
    cgprof__walk_cleanup(&w);
    cgprof_free(lens);
    cgprof_buf_cleanup(&path);
    if (rc) {
        out->len = mark;
        if (out->data)
            out->data[mark] = '\0';
    }
    return rc;
}
