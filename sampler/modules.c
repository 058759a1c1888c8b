/* The module table: every loaded ELF object (from dl_iterate_phdr, on the
 * agent thread only), with a private read-only mapping of its file. The
 * unwinder reads .eh_frame_hdr/.eh_frame and code bytes from that private
 * copy, never from the host's mapping, so a concurrent dlclose cannot crash
 * us. Also turns code addresses into frame names "module:function", with
 * symbol tables loaded lazily, JIT names from /tmp/perf-<pid>.map, and
 * "module+0xOFFSET" as the last resort. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sampler_int.h"

#define MAX_SEGS 16
#define NAME_CACHE_SIZE 65536          /* power of two */

struct segment {
    uint64_t vaddr, memsz, offset, filesz;   /* link-time, from PT_LOAD */
};

struct cgprof__module {
    char path[PATH_MAX];
    const char *base;                  /* basename of path */
    uint64_t bias;                     /* runtime = link-time + bias */
    struct segment seg[MAX_SEGS];
    unsigned nseg;
    uint64_t lo, hi;                   /* runtime extent of all segments */
    const unsigned char *image;        /* private copy of the file */
    size_t image_len;
    bool image_mapped;                 /* munmap (else cgprof_free) */
    uint64_t eh_hdr;                   /* link-time vaddr of .eh_frame_hdr, 0 = none */
    uint64_t eh_count;
    bool eh_ok;
    struct cgprof__symtab *symtab;
    bool symtab_tried;
    bool alive;                        /* seen in the latest refresh */
};

struct name_entry {
    uint64_t ip;
    char *name;
};

static struct cgprof__module **mods;
static size_t nmods, capmods;
static unsigned long long last_adds, last_subs;
static uint64_t generation;
static struct name_entry *names;       /* direct-mapped cache ip -> name */
static struct cgprof__perfmap *perfmap;
static uint64_t perfmap_checked_ns;

static uint64_t rd_u(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    memcpy(&v, p, n);
    return v;
}

/* Translates a runtime address to an offset in m's file image. */
static bool to_file_offset(const struct cgprof__module *m, uint64_t addr, size_t len,
                           size_t *off)
{
    if (addr < m->bias)
        return false;
    uint64_t v = addr - m->bias;
    for (unsigned i = 0; i < m->nseg; i++) {
        const struct segment *s = &m->seg[i];
        if (v >= s->vaddr && v - s->vaddr <= s->filesz && s->filesz - (v - s->vaddr) >= len) {
            uint64_t o = s->offset + (v - s->vaddr);
            if (o > m->image_len || m->image_len - o < len)
                return false;
            *off = (size_t)o;
            return true;
        }
    }
    return false;
}

static void parse_eh_hdr(struct cgprof__module *m)
{
    size_t off;
    if (!m->eh_hdr || !to_file_offset(m, m->eh_hdr + m->bias, 12, &off))
        return;
    const unsigned char *h = m->image + off;
    /* version 1, eh_frame_ptr 4 bytes, fde_count udata4, table datarel|sdata4 */
    if (h[0] != 1 || (h[1] & 0x0f) != 0x0b || h[2] != 0x03 || h[3] != 0x3b)
        return;
    m->eh_count = rd_u(h + 8, 4);
    size_t toff;
    if (m->eh_count == 0 || !to_file_offset(m, m->eh_hdr + m->bias + 12, m->eh_count * 8, &toff))
        return;
    m->eh_ok = true;
}

static int map_file(struct cgprof__module *m)
{
    int fd = open(m->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(Elf64_Ehdr)) {
        close(fd);
        return CGPROF_EINVAL;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return -errno;
    m->image = p;
    m->image_len = (size_t)st.st_size;
    m->image_mapped = true;
    return 0;
}

/* The vDSO has no file: copy its image out of memory once. */
static int copy_vdso(struct cgprof__module *m, const void *base)
{
    uint64_t end = 0;
    for (unsigned i = 0; i < m->nseg; i++)
        if (m->seg[i].offset + m->seg[i].filesz > end)
            end = m->seg[i].offset + m->seg[i].filesz;
    /* The kernel maps the whole image, section headers included. */
    const Elf64_Ehdr *eh = base;
    uint64_t sh_end = eh->e_shoff + (uint64_t)eh->e_shnum * eh->e_shentsize;
    if (eh->e_shoff && sh_end > end && sh_end < (1u << 16))
        end = sh_end;
    if (end == 0 || end > (1u << 20))
        return CGPROF_EINVAL;
    unsigned char *copy = cgprof_malloc((size_t)end);
    if (!copy)
        return CGPROF_ENOMEM;
    memcpy(copy, base, (size_t)end);
    m->image = copy;
    m->image_len = (size_t)end;
    m->image_mapped = false;
    return 0;
}

static void module_free(struct cgprof__module *m)
{
    if (!m)
        return;
    if (m->image && m->image_mapped)
        munmap((void *)(uintptr_t)m->image, m->image_len);
    else
        cgprof_free((void *)(uintptr_t)m->image);
    cgprof__symtab_free(m->symtab);
    cgprof_free(m);
}

struct scan {
    struct cgprof__module **found;
    size_t n, cap;
    bool first;
    int err;
};

static struct cgprof__module *find_existing(const char *path, uint64_t bias)
{
    for (size_t i = 0; i < nmods; i++)
        if (mods[i]->bias == bias && strcmp(mods[i]->path, path) == 0)
            return mods[i];
    return NULL;
}

static int collect(struct dl_phdr_info *info, size_t size, void *arg)
{
    CGPROF_UNUSED(size);
    struct scan *sc = arg;
    char path[PATH_MAX];
    bool vdso = false;
    const char *name = info->dlpi_name;
    if (sc->first) {
        sc->first = false;
        last_adds = info->dlpi_adds;
        last_subs = info->dlpi_subs;
    }
    if (!name || !name[0]) {
        ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
        if (n <= 0)
            return 0;
        path[n] = '\0';
    } else {
        snprintf(path, sizeof(path), "%s", name);
    }
    uintptr_t vdso_base = (uintptr_t)getauxval(AT_SYSINFO_EHDR);
    const void *elf_base = NULL;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && ph->p_offset == 0)
            elf_base = (const void *)(info->dlpi_addr + ph->p_vaddr);
    }
    if (vdso_base && (uintptr_t)elf_base == vdso_base) {
        vdso = true;
        snprintf(path, sizeof(path), "[vdso]");
    }
    if (sc->n == sc->cap) {
        size_t cap = sc->cap ? sc->cap * 2 : 64;
        void *p = cgprof_realloc(sc->found, cap * sizeof(*sc->found));
        if (!p) {
            sc->err = CGPROF_ENOMEM;
            return 1;
        }
        sc->found = p;
        sc->cap = cap;
    }
    struct cgprof__module *m = find_existing(path, info->dlpi_addr);
    if (m) {
        m->alive = true;
        sc->found[sc->n++] = m;
        return 0;
    }
    m = cgprof_calloc(1, sizeof(*m));
    if (!m) {
        sc->err = CGPROF_ENOMEM;
        return 1;
    }
    snprintf(m->path, sizeof(m->path), "%s", path);
    const char *slash = strrchr(m->path, '/');
    m->base = slash ? slash + 1 : m->path;
    m->bias = info->dlpi_addr;
    m->lo = UINT64_MAX;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && m->nseg < MAX_SEGS) {
            m->seg[m->nseg++] = (struct segment){ ph->p_vaddr, ph->p_memsz, ph->p_offset, ph->p_filesz };
            if (m->bias + ph->p_vaddr < m->lo)
                m->lo = m->bias + ph->p_vaddr;
            if (m->bias + ph->p_vaddr + ph->p_memsz > m->hi)
                m->hi = m->bias + ph->p_vaddr + ph->p_memsz;
        } else if (ph->p_type == PT_GNU_EH_FRAME) {
            m->eh_hdr = ph->p_vaddr;
        }
    }
    int rc = vdso ? copy_vdso(m, elf_base) : map_file(m);
    if (rc == 0)
        parse_eh_hdr(m);
    m->alive = true;
    sc->found[sc->n++] = m;
    return 0;
}

static int cmp_mod(const void *a, const void *b)
{
    const struct cgprof__module *x = *(struct cgprof__module *const *)a;
    const struct cgprof__module *y = *(struct cgprof__module *const *)b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static int peek_counters(struct dl_phdr_info *info, size_t size, void *arg)
{
    CGPROF_UNUSED(size);
    unsigned long long *c = arg;
    c[0] = info->dlpi_adds;
    c[1] = info->dlpi_subs;
    return 1;
}

static void names_clear(void)
{
    if (!names)
        return;
    for (size_t i = 0; i < NAME_CACHE_SIZE; i++) {
        cgprof_free(names[i].name);
        names[i].name = NULL;
        names[i].ip = 0;
    }
}

/* Rebuilds the table when the loader's add/remove counters moved (or when
 * forced). Modules still loaded keep their mapping and symbol table.
 * Tests: test/integration/stress_dlopen.sh */
bool cgprof__modules_refresh(bool force)
{
    unsigned long long c[2] = { 0, 0 };
    dl_iterate_phdr(peek_counters, c);
    if (!force && nmods && c[0] == last_adds && c[1] == last_subs)
        return false;
    for (size_t i = 0; i < nmods; i++)
        mods[i]->alive = false;
    struct scan sc = { NULL, 0, 0, true, 0 };
    dl_iterate_phdr(collect, &sc);
    if (sc.err) {
        /* keep the old table; free only what the scan created */
        for (size_t i = 0; i < sc.n; i++) {
            bool old = false;
            for (size_t j = 0; j < nmods && !old; j++)
                old = mods[j] == sc.found[i];
            if (!old)
                module_free(sc.found[i]);
        }
        for (size_t i = 0; i < nmods; i++)
            mods[i]->alive = true;
        cgprof_free(sc.found);
        return false;
    }
    for (size_t i = 0; i < nmods; i++)
        if (!mods[i]->alive)
            module_free(mods[i]);
    cgprof_free(mods);
    mods = sc.found;
    nmods = sc.n;
    capmods = sc.cap;
    qsort(mods, nmods, sizeof(*mods), cmp_mod);
    generation++;
    names_clear();
    cgprof__unwind_flush();
    return true;
}

struct cgprof__module *cgprof__modules_find(uint64_t addr)
{
    size_t lo = 0, hi = nmods;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (mods[mid]->lo <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* candidates at lo-1 and before it may overlap (rare): check a few */
    for (size_t i = lo; i > 0 && lo - i < 4; i--) {
        struct cgprof__module *m = mods[i - 1];
        if (addr >= m->lo && addr < m->hi && m->image)
            return m;
    }
    return NULL;
}

int cgprof__modules_read(uint64_t addr, uint64_t *val)
{
    struct cgprof__module *m = cgprof__modules_find(addr);
    size_t off;
    if (!m || !to_file_offset(m, addr, 8, &off))
        return -1;
    *val = rd_u(m->image + off, 8);
    return 0;
}

int cgprof__module_eh_table(const struct cgprof__module *m, uint64_t *hdr,
                            uint64_t *table, uint64_t *count,
                            uint64_t *start_ip, uint64_t *end_ip)
{
    if (!m->eh_ok)
        return -1;
    *hdr = m->eh_hdr + m->bias;
    *table = *hdr + 12;
    *count = m->eh_count;
    *start_ip = m->lo;
    *end_ip = m->hi;
    return 0;
}

static char *make_name(uint64_t ip)
{
    char buf[1024];
    struct cgprof__module *m = cgprof__modules_find(ip);
    if (m) {
        if (!m->symtab_tried) {
            m->symtab_tried = true;
            m->symtab = cgprof__symtab_new(m->path, m->image, m->image_len);
        }
        uint64_t start;
        const char *sym = m->symtab ? cgprof__symtab_lookup(m->symtab, ip - m->bias, &start) : NULL;
        if (sym) {
            /* "pthread_create@@GLIBC_2.34": the version is noise here */
            const char *at = strchr(sym, '@');
            char plain[512];
            if (at && at > sym && (size_t)(at - sym) < sizeof(plain)) {
                memcpy(plain, sym, (size_t)(at - sym));
                plain[at - sym] = '\0';
                sym = plain;
            }
            char *dem = cgprof__demangle(sym);
            snprintf(buf, sizeof(buf), "%s:%s", m->base, dem ? dem : sym);
            cgprof_free(dem);
        } else {
            snprintf(buf, sizeof(buf), "%s+0x%llx", m->base,
                     (unsigned long long)(ip - m->bias));
        }
        return cgprof_strdup(buf);
    }
    uint64_t now = cgprof_now_ns();
    if (!perfmap || now - perfmap_checked_ns > 1000000000ull) {
        if (!perfmap)
            perfmap = cgprof__perfmap_new(getpid());
        if (perfmap)
            cgprof__perfmap_refresh(perfmap);
        perfmap_checked_ns = now;
    }
    const char *jit = perfmap ? cgprof__perfmap_lookup(perfmap, ip) : NULL;
    if (jit)
        snprintf(buf, sizeof(buf), "[jit]:%s", jit);
    else
        snprintf(buf, sizeof(buf), "[anonymous]");
    return cgprof_strdup(buf);
}

const char *cgprof__modules_frame_name(uint64_t ip)
{
    if (!names) {
        names = cgprof_calloc(NAME_CACHE_SIZE, sizeof(*names));
        if (!names)
            return NULL;
    }
    size_t h = (size_t)((ip * 0x9e3779b97f4a7c15ull) >> 48) & (NAME_CACHE_SIZE - 1);
    struct name_entry *e = &names[h];
    if (e->name && e->ip == ip)
        return e->name;
    char *n = make_name(ip);
    if (!n)
        return NULL;
    cgprof_free(e->name);
    e->ip = ip;
    e->name = n;
    return n;
}

uint64_t cgprof__modules_generation(void)
{
    return generation;
}

void cgprof__modules_cleanup(void)
{
    names_clear();
    cgprof_free(names);
    names = NULL;
    for (size_t i = 0; i < nmods; i++)
        module_free(mods[i]);
    cgprof_free(mods);
    mods = NULL;
    nmods = capmods = 0;
    cgprof__perfmap_free(perfmap);
    perfmap = NULL;
}
