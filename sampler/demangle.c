/* Demangling for the symbolizer (agent thread only): C++ through the host's
 * __cxa_demangle when libstdc++ is loaded, else a small parser for plain
 * nested names; Rust legacy (_ZN...17h<hash>E) and Rust v0 (_R...) by our
 * own bounded parsers. Symbol lookup itself is in symtab.c/perfmap.c. */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"
#include "sampler_int.h"

#define DM_MAX       1024u      /* output bound of our own parsers */
#define DM_CXX_MAX   4096u      /* output bound for __cxa_demangle results */
#define DM_IN_MAX    65536u     /* longer names are left alone */
#define DM_DEPTH     64
#define DM_BUDGET    20000L     /* parse steps per v0 name */
#define DM_COMPS     256        /* components of a legacy name */
#define CXA_RETRY_NS (10ull * 1000 * 1000 * 1000)

/* Output with a hard bound; once full, trunc is set and writes stop. */
struct dm_out {
    char buf[DM_MAX + 1];
    size_t len;
    bool trunc;
    int mute;   /* > 0 while parsing something that is not printed */
};

static void put(struct dm_out *o, const char *s, size_t n)
{
    if (o->mute || o->trunc)
        return;
    if (n > DM_MAX - o->len) {
        n = DM_MAX - o->len;
        o->trunc = true;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void puts_(struct dm_out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_utf8(struct dm_out *o, uint32_t c)
{
    char b[4];
    size_t n;
    if (c < 0x80) {
        b[0] = (char)c;
        n = 1;
    } else if (c < 0x800) {
        b[0] = (char)(0xc0 | c >> 6);
        b[1] = (char)(0x80 | (c & 0x3f));
        n = 2;
    } else if (c < 0x10000) {
        b[0] = (char)(0xe0 | c >> 12);
        b[1] = (char)(0x80 | (c >> 6 & 0x3f));
        b[2] = (char)(0x80 | (c & 0x3f));
        n = 3;
    } else {
        b[0] = (char)(0xf0 | c >> 18);
        b[1] = (char)(0x80 | (c >> 12 & 0x3f));
        b[2] = (char)(0x80 | (c >> 6 & 0x3f));
        b[3] = (char)(0x80 | (c & 0x3f));
        n = 4;
    }
    put(o, b, n);
}

/* The result as a heap string: "..." marks a truncated name. */
static char *finish(struct dm_out *o)
{
    if (o->trunc) {
        o->len = o->len > DM_MAX - 3 ? DM_MAX - 3 : o->len;
        memcpy(o->buf + o->len, "...", 4);
        o->len += 3;
    }
    return cgprof_strndup(o->buf, o->len);
}

/* Length of the mangled part: names end at the first byte that no
 * mangling uses (".llvm.123", "@plt", ".cold" ...). */
static size_t mangled_len(const char *s)
{
    size_t n = 0;
    while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
           (s[n] >= '0' && s[n] <= '9') || s[n] == '_')
        n++;
    return n;
}

/* Appends a vendor suffix the way rustc-demangle does: ".llvm.<hash>"
 * (ThinLTO) is dropped, anything else is kept verbatim. */
static void put_suffix(struct dm_out *o, const char *suffix)
{
    if (strncmp(suffix, ".llvm.", 6) != 0)
        puts_(o, suffix);
}

/* Reads a decimal length ("0" or no leading zero); false when absent or
 * larger than the rest of the name. */
static bool decimal(const char *s, size_t len, size_t *pos, size_t *out)
{
    size_t p = *pos, v = 0;
    if (p >= len || s[p] < '0' || s[p] > '9')
        return false;
    if (s[p] == '0') {
        *out = 0;
        *pos = p + 1;
        return true;
    }
    while (p < len && s[p] >= '0' && s[p] <= '9') {
        v = v * 10 + (size_t)(s[p++] - '0');
        if (v > len)
            return false;
    }
    *out = v;
    *pos = p;
    return true;
}

/* ---- Rust legacy --------------------------------------------------------- */

static bool is_rust_hash(const char *s, size_t n)
{
    if (n != 17 || s[0] != 'h')
        return false;
    for (size_t i = 1; i < n; i++)
        if (cgprof_hexval(s[i]) < 0 || (s[i] >= 'A' && s[i] <= 'F'))
            return false;
    return true;
}

/* One legacy path component with its $..$ escapes and ".." decoded. An
 * unknown escape is printed as it stands. */
static void rust_legacy_comp(struct dm_out *o, const char *s, size_t n)
{
    static const struct {
        const char *esc;
        const char *out;
    } map[] = {
        { "SP", "@" }, { "BP", "*" }, { "RF", "&" }, { "LT", "<" }, { "GT", ">" },
        { "LP", "(" }, { "RP", ")" }, { "C", "," },
    };
    size_t i = 0;
    if (n >= 2 && s[0] == '_' && s[1] == '$')
        i = 1;
    while (i < n) {
        if (s[i] == '.') {
            if (i + 1 < n && s[i + 1] == '.') {
                put(o, "::", 2);
                i += 2;
            } else {
                put(o, ".", 1);
                i++;
            }
            continue;
        }
        if (s[i] != '$') {
            put(o, s + i, 1);
            i++;
            continue;
        }
        const char *end = memchr(s + i + 1, '$', n - i - 1);
        size_t elen = end ? (size_t)(end - (s + i + 1)) : 0;
        const char *e = s + i + 1;
        bool done = false;
        for (size_t k = 0; end && k < CGPROF_ARRAY_SIZE(map) && !done; k++) {
            if (strlen(map[k].esc) == elen && memcmp(map[k].esc, e, elen) == 0) {
                puts_(o, map[k].out);
                done = true;
            }
        }
        if (!done && end && elen >= 2 && elen <= 7 && e[0] == 'u') {
            uint32_t c = 0;
            bool ok = true;
            for (size_t k = 1; k < elen; k++) {
                int h = cgprof_hexval(e[k]);
                ok = ok && h >= 0;
                c = c << 4 | (uint32_t)(h < 0 ? 0 : h);
            }
            if (ok && c <= 0x10ffff && (c < 0xd800 || c > 0xdfff) && c >= 0x20) {
                put_utf8(o, c);
                done = true;
            }
        }
        if (done) {
            i += elen + 2;
        } else {
            put(o, "$", 1);
            i++;
        }
    }
}

/* s points after "_ZN". Returns 1 with output when the name is a Rust
 * legacy name (last component h<16 hex>), 0 when it is not, -1 when it is
 * malformed. Tests: test/unit/sampler/test_demangle.c */
static int rust_legacy(const char *s, struct dm_out *o)
{
    size_t len = strlen(s), pos = 0, count = 0;
    size_t last = 0, last_len = 0;
    while (pos < len && s[pos] != 'E') {
        size_t n;
        if (!decimal(s, len, &pos, &n) || n == 0 || n > len - pos)
            return 0;
        if (++count > DM_COMPS)
            return -1;
        last = pos;
        last_len = n;
        pos += n;
    }
    /* After the "E" only a vendor suffix (".llvm.<hash>") may follow. */
    if (pos >= len || (s[pos + 1] != '\0' && s[pos + 1] != '.') || count < 2 ||
        !is_rust_hash(s + last, last_len))
        return 0;
    const char *suffix = s + pos + 1;
    pos = 0;
    for (size_t i = 0; i + 1 < count; i++) {
        size_t n;
        decimal(s, len, &pos, &n);
        if (i > 0)
            put(o, "::", 2);
        rust_legacy_comp(o, s + pos, n);
        pos += n;
    }
    put_suffix(o, suffix);
    return 1;
}

/* ---- Rust v0 ------------------------------------------------------------- */

struct v0 {
    const char *s;      /* after "_R" */
    size_t len;
    size_t pos;
    int depth;
    long budget;
    struct dm_out *o;
};

static char v0_peek(const struct v0 *v)
{
    return v->pos < v->len ? v->s[v->pos] : '\0';
}

static bool v0_eat(struct v0 *v, char c)
{
    if (v0_peek(v) != c)
        return false;
    v->pos++;
    return true;
}

/* <base-62-number>: "_" is 0, otherwise digits then "_" give value + 1. */
static int v0_base62(struct v0 *v, uint64_t *out)
{
    if (v0_eat(v, '_')) {
        *out = 0;
        return 0;
    }
    uint64_t x = 0;
    for (;;) {
        char c = v0_peek(v);
        int d;
        if (c == '_') {
            v->pos++;
            break;
        }
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'z')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'Z')
            d = c - 'A' + 36;
        else
            return -1;
        if (x > (UINT64_MAX - 61) / 62)
            return -1;
        x = x * 62 + (uint64_t)d;
        v->pos++;
    }
    if (x == UINT64_MAX)
        return -1;
    *out = x + 1;
    return 0;
}

/* [<disambiguator>]: "s" <base-62-number> + 1, else 0. */
static int v0_disamb(struct v0 *v, uint64_t *out)
{
    *out = 0;
    if (!v0_eat(v, 's'))
        return 0;
    if (v0_base62(v, out) != 0 || *out == UINT64_MAX)
        return -1;
    (*out)++;
    return 0;
}

/* <identifier>: punycode ("u" flag) identifiers are left encoded. */
static int v0_ident(struct v0 *v, const char **name, size_t *n, uint64_t *dis)
{
    if (v0_disamb(v, dis) != 0)
        return -1;
    v0_eat(v, 'u');
    if (!decimal(v->s, v->len, &v->pos, n))
        return -1;
    v0_eat(v, '_');
    if (*n > v->len - v->pos)
        return -1;
    *name = v->s + v->pos;
    v->pos += *n;
    return 0;
}

static int v0_enter(struct v0 *v)
{
    if (++v->depth > DM_DEPTH || --v->budget < 0 || v->o->trunc)
        return -1;
    return 0;
}

static int v0_path(struct v0 *v, bool in_value);
static int v0_type(struct v0 *v);

/* <backref>: when printing, re-parses the earlier bytes with fn; when
 * muted, only the number is consumed. */
static int v0_backref(struct v0 *v, size_t tag_pos, int (*fn)(struct v0 *, bool), bool arg)
{
    uint64_t target;
    if (v0_base62(v, &target) != 0 || target >= tag_pos)
        return -1;
    if (v->o->mute)
        return 0;
    size_t saved = v->pos;
    v->pos = (size_t)target;
    int rc = fn(v, arg);
    v->pos = saved;
    return rc;
}

static int v0_type_fn(struct v0 *v, bool unused)
{
    CGPROF_UNUSED(unused);
    return v0_type(v);
}

static int v0_const(struct v0 *v);

static int v0_const_fn(struct v0 *v, bool unused)
{
    CGPROF_UNUSED(unused);
    return v0_const(v);
}

/* <generic-arg>: lifetime, const or type. */
static int v0_generic_arg(struct v0 *v)
{
    if (v0_eat(v, 'L')) {
        uint64_t lt;
        if (v0_base62(v, &lt) != 0)
            return -1;
        puts_(v->o, "'_");
        return 0;
    }
    if (v0_eat(v, 'K'))
        return v0_const(v);
    return v0_type(v);
}

/* Items up to "E", separated by sep. */
static int v0_list(struct v0 *v, int (*item)(struct v0 *), const char *sep, size_t *count)
{
    size_t n = 0;
    while (!v0_eat(v, 'E')) {
        if (v->pos >= v->len)
            return -1;
        if (n++)
            puts_(v->o, sep);
        if (item(v) != 0)
            return -1;
    }
    if (count)
        *count = n;
    return 0;
}

static int v0_const(struct v0 *v)
{
    if (v0_enter(v) != 0)
        return -1;
    int rc = -1;
    size_t tag_pos = v->pos;
    char tag = v0_peek(v);
    v->pos++;
    if (tag == 'B') {
        rc = v0_backref(v, tag_pos, v0_const_fn, false);
    } else if (tag == 'p') {
        puts_(v->o, "_");
        rc = 0;
    } else if (tag && strchr("htmyojaslxnibc", tag)) {
        bool neg = strchr("aslxni", tag) && v0_eat(v, 'n');
        size_t start = v->pos;
        while (cgprof_hexval(v0_peek(v)) >= 0 && !(v0_peek(v) >= 'A' && v0_peek(v) <= 'F'))
            v->pos++;
        size_t nd = v->pos - start;
        if (!v0_eat(v, '_'))
            goto out;
        uint64_t x = 0;
        for (size_t i = 0; i < nd && i < 16; i++)
            x = x << 4 | (uint64_t)cgprof_hexval(v->s[start + i]);
        char num[48];
        if (tag == 'b') {
            if (nd != 1 || x > 1)
                goto out;
            puts_(v->o, x ? "true" : "false");
        } else if (tag == 'c') {
            if (nd > 8 || x > 0x10ffff)
                goto out;
            if (x >= 0x20 && x < 0x7f && x != '\'' && x != '\\') {
                num[0] = '\'';
                num[1] = (char)x;
                num[2] = '\'';
                put(v->o, num, 3);
            } else {
                puts_(v->o, "'\\u{");
                put(v->o, v->s + start, nd);
                puts_(v->o, "}'");
            }
        } else if (nd > 16) {
            puts_(v->o, "0x");
            put(v->o, v->s + start, nd);
        } else {
            /* Decimal, written backwards into num. */
            size_t i = sizeof(num);
            do {
                num[--i] = (char)('0' + x % 10);
                x /= 10;
            } while (x);
            if (neg)
                num[--i] = '-';
            put(v->o, num + i, sizeof(num) - i);
        }
        rc = 0;
    }
out:
    v->depth--;
    return rc;
}

static const char *v0_basic(char c)
{
    switch (c) {
    case 'a': return "i8";
    case 'b': return "bool";
    case 'c': return "char";
    case 'd': return "f64";
    case 'e': return "str";
    case 'f': return "f32";
    case 'h': return "u8";
    case 'i': return "isize";
    case 'j': return "usize";
    case 'l': return "i32";
    case 'm': return "u32";
    case 'n': return "i128";
    case 'o': return "u128";
    case 'p': return "_";
    case 's': return "i16";
    case 't': return "u16";
    case 'u': return "()";
    case 'v': return "...";
    case 'x': return "i64";
    case 'y': return "u64";
    case 'z': return "!";
    default: return NULL;
    }
}

/* A dyn trait: its path (generic args left open for the bindings that
 * follow, "Trait<A, Output = B>"), then "p" bindings. */
static int v0_dyn_path(struct v0 *v, bool *open);

static int v0_dyn_path_fn(struct v0 *v, bool unused)
{
    CGPROF_UNUSED(unused);
    bool open = false;
    int rc = v0_dyn_path(v, &open);
    if (rc == 0 && open)
        puts_(v->o, ">");
    return rc;
}

static int v0_dyn_path(struct v0 *v, bool *open)
{
    size_t tag_pos = v->pos;
    if (v0_eat(v, 'B')) {
        /* Through a backref the brackets are closed by the callee. */
        return v0_backref(v, tag_pos, v0_dyn_path_fn, false);
    }
    if (v0_eat(v, 'I')) {
        if (v0_path(v, false) != 0)
            return -1;
        puts_(v->o, "<");
        *open = true;
        size_t n = 0;
        while (!v0_eat(v, 'E')) {
            if (v->pos >= v->len)
                return -1;
            if (n++)
                puts_(v->o, ", ");
            if (v0_generic_arg(v) != 0)
                return -1;
        }
        return 0;
    }
    return v0_path(v, false);
}

static int v0_dyn_trait(struct v0 *v)
{
    bool open = false;
    if (v0_dyn_path(v, &open) != 0)
        return -1;
    while (v0_eat(v, 'p')) {
        puts_(v->o, open ? ", " : "<");
        open = true;
        const char *name;
        size_t n;
        uint64_t dis;
        if (v0_ident(v, &name, &n, &dis) != 0)
            return -1;
        put(v->o, name, n);
        puts_(v->o, " = ");
        if (v0_type(v) != 0)
            return -1;
    }
    if (open)
        puts_(v->o, ">");
    return 0;
}

static int v0_type(struct v0 *v)
{
    if (v0_enter(v) != 0)
        return -1;
    int rc = -1;
    size_t tag_pos = v->pos;
    char tag = v0_peek(v);
    const char *basic = v0_basic(tag);
    uint64_t tmp;
    size_t count;
    v->pos++;
    if (basic) {
        puts_(v->o, basic);
        rc = 0;
        goto out;
    }
    switch (tag) {
    case 'R':
    case 'Q':
        puts_(v->o, tag == 'R' ? "&" : "&mut ");
        if (v0_eat(v, 'L') && v0_base62(v, &tmp) != 0)
            break;
        rc = v0_type(v);
        break;
    case 'P':
    case 'O':
        puts_(v->o, tag == 'P' ? "*const " : "*mut ");
        rc = v0_type(v);
        break;
    case 'A':
    case 'S':
        puts_(v->o, "[");
        if (v0_type(v) != 0)
            break;
        if (tag == 'A') {
            puts_(v->o, "; ");
            if (v0_const(v) != 0)
                break;
        }
        puts_(v->o, "]");
        rc = 0;
        break;
    case 'T':
        puts_(v->o, "(");
        if (v0_list(v, v0_type, ", ", &count) != 0)
            break;
        puts_(v->o, count == 1 ? ",)" : ")");
        rc = 0;
        break;
    case 'F':
        if (v0_eat(v, 'G') && v0_base62(v, &tmp) != 0)
            break;
        if (v0_eat(v, 'U'))
            puts_(v->o, "unsafe ");
        if (v0_eat(v, 'K')) {
            puts_(v->o, "extern \"");
            if (v0_eat(v, 'C')) {
                puts_(v->o, "C");
            } else {
                const char *abi;
                size_t n;
                if (v0_ident(v, &abi, &n, &tmp) != 0)
                    break;
                for (size_t i = 0; i < n; i++)
                    put(v->o, abi[i] == '_' ? "-" : abi + i, 1);
            }
            puts_(v->o, "\" ");
        }
        puts_(v->o, "fn(");
        if (v0_list(v, v0_type, ", ", NULL) != 0)
            break;
        puts_(v->o, ")");
        if (!v0_eat(v, 'u')) {
            puts_(v->o, " -> ");
            if (v0_type(v) != 0)
                break;
        }
        rc = 0;
        break;
    case 'D':
        puts_(v->o, "dyn ");
        if (v0_eat(v, 'G') && v0_base62(v, &tmp) != 0)
            break;
        if (v0_list(v, v0_dyn_trait, " + ", NULL) != 0 || !v0_eat(v, 'L') ||
            v0_base62(v, &tmp) != 0)
            break;
        rc = 0;
        break;
    case 'B':
        rc = v0_backref(v, tag_pos, v0_type_fn, false);
        break;
    default:
        v->pos = tag_pos;
        rc = v0_path(v, false);
        break;
    }
out:
    v->depth--;
    return rc;
}

static int v0_path_fn(struct v0 *v, bool in_value)
{
    return v0_path(v, in_value);
}

/* Parses without printing (the impl path of an inherent impl, the
 * instantiating crate). */
static int v0_skip_path(struct v0 *v)
{
    v->o->mute++;
    int rc = v0_path(v, false);
    v->o->mute--;
    return rc;
}

static int v0_path(struct v0 *v, bool in_value)
{
    if (v0_enter(v) != 0)
        return -1;
    int rc = -1;
    size_t tag_pos = v->pos;
    char tag = v0_peek(v);
    const char *name;
    size_t n;
    uint64_t dis;
    v->pos++;
    switch (tag) {
    case 'C':
        if (v0_ident(v, &name, &n, &dis) != 0)
            break;
        put(v->o, name, n);
        rc = 0;
        break;
    case 'M':
    case 'X':
        if (v0_disamb(v, &dis) != 0 || v0_skip_path(v) != 0)
            break;
        /* fall through */
    case 'Y':
        puts_(v->o, "<");
        if (v0_type(v) != 0)
            break;
        if (tag != 'M') {
            puts_(v->o, " as ");
            if (v0_path(v, false) != 0)
                break;
        }
        puts_(v->o, ">");
        rc = 0;
        break;
    case 'N': {
        char ns = v0_peek(v);
        v->pos++;
        if (!((ns >= 'a' && ns <= 'z') || (ns >= 'A' && ns <= 'Z')))
            break;
        if (v0_path(v, in_value) != 0 || v0_ident(v, &name, &n, &dis) != 0)
            break;
        if (ns >= 'A' && ns <= 'Z') {
            puts_(v->o, "::{");
            if (ns == 'C')
                puts_(v->o, "closure");
            else if (ns == 'S')
                puts_(v->o, "shim");
            else
                put(v->o, &ns, 1);
            if (n) {
                puts_(v->o, ":");
                put(v->o, name, n);
            }
            char num[24];
            size_t i = sizeof(num);
            do {
                num[--i] = (char)('0' + dis % 10);
                dis /= 10;
            } while (dis);
            num[--i] = '#';
            put(v->o, num + i, sizeof(num) - i);
            puts_(v->o, "}");
        } else if (n) {
            puts_(v->o, "::");
            put(v->o, name, n);
        }
        rc = 0;
        break;
    }
    case 'I':
        if (v0_path(v, in_value) != 0)
            break;
        puts_(v->o, in_value ? "::<" : "<");
        if (v0_list(v, v0_generic_arg, ", ", NULL) != 0)
            break;
        puts_(v->o, ">");
        rc = 0;
        break;
    case 'B':
        rc = v0_backref(v, tag_pos, v0_path_fn, in_value);
        break;
    default:
        break;
    }
    v->depth--;
    return rc;
}

/* s points after "_R". Tests: test/unit/sampler/test_demangle.c */
static int rust_v0(const char *s, struct dm_out *o)
{
    size_t len = mangled_len(s);
    struct v0 v = { s, len, 0, 0, DM_BUDGET, o };
    if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
        return -1;  /* an encoding version we do not know */
    if (v0_path(&v, true) != 0)
        return o->trunc ? 0 : -1;
    if (v.pos < v.len && v0_skip_path(&v) != 0)
        return o->trunc ? 0 : -1;
    if (v.pos != v.len)
        return -1;
    put_suffix(o, s + len);
    return 0;
}

/* ---- C++ ------------------------------------------------------------------ */

typedef char *(*cxa_demangle_fn)(const char *, char *, size_t *, int *);

/* Test seam: pretend libstdc++ is absent (the ASan runtime loads it). */
CGPROF_STATIC bool demangle_skip_cxa;

static _Atomic(cxa_demangle_fn) cxa_fn;
static _Atomic uint64_t cxa_next_try_ns;

/* __cxa_demangle of the host's libstdc++, looked up once; while absent,
 * looked up again at most every 10 s in case the host dlopens it later. */
static cxa_demangle_fn get_cxa_demangle(void)
{
    if (demangle_skip_cxa)
        return NULL;
    cxa_demangle_fn fn = atomic_load(&cxa_fn);
    if (fn)
        return fn;
    uint64_t now = cgprof_now_ns();
    if (now < atomic_load(&cxa_next_try_ns))
        return NULL;
    atomic_store(&cxa_next_try_ns, now + CXA_RETRY_NS);
    void *p = dlsym(RTLD_DEFAULT, "__cxa_demangle");
    if (!p)
        return NULL;
    memcpy(&fn, &p, sizeof(fn));
    atomic_store(&cxa_fn, fn);
    return fn;
}

/* Test seam: forget the cached lookup. */
#ifdef CGPROF_UNIT_TEST
void demangle_reset_cache(void);
void demangle_reset_cache(void)
{
    atomic_store(&cxa_fn, NULL);
    atomic_store(&cxa_next_try_ns, 0);
}
#endif

/* Plain nested names without __cxa_demangle: "_ZN3foo3barEv" is foo::bar,
 * "_ZNK3Foo3getEv" Foo::get, constructors and destructors repeat the
 * class name; templates, operators and substitutions give -1 (the raw
 * name is kept). Parameters are not printed. s points after "_Z". */
static int cxx_simple(const char *s, struct dm_out *o)
{
    size_t len = mangled_len(s), pos = 0, n;
    if (pos < len && s[pos] == 'L')
        pos++;
    if (pos + 2 < len && s[pos] == 'S' && s[pos + 1] == 't') {
        pos += 2;
        puts_(o, "std::");
    }
    if (pos < len && s[pos] >= '1' && s[pos] <= '9') {
        if (!decimal(s, len, &pos, &n) || n > len - pos)
            return -1;
        put(o, s + pos, n);
        return 0;
    }
    if (pos >= len || s[pos] != 'N' || o->len != 0)
        return -1;
    pos++;
    while (pos < len && strchr("rVKRO", s[pos]))
        pos++;
    const char *prev = NULL;
    size_t prev_len = 0, count = 0;
    if (pos + 1 < len && s[pos] == 'S' && s[pos + 1] == 't') {
        pos += 2;
        puts_(o, "std");
        count++;
    }
    while (pos < len && s[pos] != 'E') {
        if (count > DM_COMPS)
            return -1;
        if (count)
            put(o, "::", 2);
        if (s[pos] >= '1' && s[pos] <= '9') {
            if (!decimal(s, len, &pos, &n) || n > len - pos)
                return -1;
            if (n >= 10 && strncmp(s + pos, "_GLOBAL__N", 10) == 0)
                puts_(o, "(anonymous namespace)");
            else
                put(o, s + pos, n);
            prev = s + pos;
            prev_len = n;
            pos += n;
        } else if (prev && pos + 1 < len && s[pos] == 'C' && strchr("12345", s[pos + 1])) {
            put(o, prev, prev_len);
            pos += 2;
        } else if (prev && pos + 1 < len && s[pos] == 'D' && strchr("01245", s[pos + 1])) {
            put(o, "~", 1);
            put(o, prev, prev_len);
            pos += 2;
        } else {
            return -1;
        }
        count++;
    }
    if (pos >= len || count == 0)
        return -1;
    return 0;
}

/* s is the name from its "_Z" on. */
static char *cxx_demangle(const char *s)
{
    cxa_demangle_fn fn = get_cxa_demangle();
    if (fn) {
        int status = 0;
        char *r = fn(s, NULL, NULL, &status);
        if (!r)
            return NULL;
        char *out = NULL;
        if (status == 0) {
            size_t n = strlen(r);
            if (n > DM_CXX_MAX) {
                out = cgprof_malloc(DM_CXX_MAX + 4);
                if (out) {
                    memcpy(out, r, DM_CXX_MAX);
                    memcpy(out + DM_CXX_MAX, "...", 4);
                }
            } else {
                out = cgprof_strndup(r, n);
            }
        }
        free(r);    /* allocated by libstdc++ with malloc */
        return out;
    }
    struct dm_out o = { .len = 0 };
    if (cxx_simple(s + 2, &o) != 0)
        return NULL;
    return finish(&o);
}

/* ---- entry point ----------------------------------------------------------- */

char *cgprof__demangle(const char *name)
{
    if (!name || strnlen(name, DM_IN_MAX + 1) > DM_IN_MAX)
        return NULL;
    /* Mach-O style extra underscore ("__ZN", "__R") is accepted too. */
    const char *s = name[0] == '_' && name[1] == '_' && (name[2] == 'Z' || name[2] == 'R')
                        ? name + 1 : name;
    if (s[0] != '_')
        return NULL;
    struct dm_out o = { .len = 0 };
    if (s[1] == 'R') {
        if (s[2] < 'A' || s[2] > 'Z' || rust_v0(s + 2, &o) != 0)
            return NULL;
        return finish(&o);
    }
    if (s[1] != 'Z')
        return NULL;
    if (s[2] == 'N') {
        int r = rust_legacy(s + 3, &o);
        if (r > 0)
            return finish(&o);
        if (r < 0)
            return NULL;
    }
    return cxx_demangle(s);
}
