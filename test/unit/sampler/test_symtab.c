/* Tests of sampler/symtab.c: symbols from hand-built ELF images (aliases,
 * unsized functions, .dynsym fallback, separate debug files), from this
 * test binary and libc, and malformed images read through guard pages. */
#include <check.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "../../../common/common.h"
#include "../../../sampler/sampler_int.h"

extern const char *symtab_debug_root;

#ifdef __SANITIZE_ADDRESS__
#define BUILD_KIND "(ASan build)"
#else
#define BUILD_KIND "(optimised build)"
#endif

/* ---- a tiny ELF writer ---------------------------------------------------- */

struct tsec {
    const char *name;
    uint32_t type;
    uint64_t addr;
    const void *data;
    size_t size;
    uint32_t link;
    uint64_t entsize;
};

struct tsym {
    const char *name;
    uint64_t value, size;
    unsigned char bind, type;
    uint16_t shndx;
};

struct image {
    unsigned char *p;
    size_t len;
};

static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* Lays out: ELF header, each section's bytes, .shstrtab, section headers.
 * Section i of secs gets index i + 1; .shstrtab comes last. */
static struct image build_elf(const struct tsec *secs, size_t n)
{
    char shstr[1024];
    size_t shlen = 1;
    shstr[0] = '\0';
    uint32_t name_off[32];
    for (size_t i = 0; i < n; i++) {
        name_off[i] = (uint32_t)shlen;
        strcpy(shstr + shlen, secs[i].name);
        shlen += strlen(secs[i].name) + 1;
    }
    uint32_t shstr_name = (uint32_t)shlen;
    strcpy(shstr + shlen, ".shstrtab");
    shlen += 10;

    size_t off = sizeof(Elf64_Ehdr), data_off[32];
    for (size_t i = 0; i < n; i++) {
        data_off[i] = off;
        off = align8(off + (secs[i].type == SHT_NOBITS ? 0 : secs[i].size));
    }
    size_t shstr_off = off;
    off = align8(off + shlen);
    size_t shoff = off;
    size_t total = shoff + (n + 2) * sizeof(Elf64_Shdr);
    unsigned char *p = calloc(1, total);
    ck_assert_ptr_nonnull(p);

    Elf64_Ehdr eh = { 0 };
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_DYN;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_ehsize = sizeof(Elf64_Ehdr);
    eh.e_shentsize = sizeof(Elf64_Shdr);
    eh.e_shnum = (uint16_t)(n + 2);
    eh.e_shstrndx = (uint16_t)(n + 1);
    eh.e_shoff = shoff;
    memcpy(p, &eh, sizeof(eh));

    Elf64_Shdr sh[34];
    memset(sh, 0, sizeof(sh));
    for (size_t i = 0; i < n; i++) {
        if (secs[i].type != SHT_NOBITS && secs[i].size)
            memcpy(p + data_off[i], secs[i].data, secs[i].size);
        sh[i + 1].sh_name = name_off[i];
        sh[i + 1].sh_type = secs[i].type;
        sh[i + 1].sh_flags = secs[i].type == SHT_NOBITS || secs[i].type == SHT_PROGBITS
                                 ? SHF_ALLOC | SHF_EXECINSTR : 0;
        sh[i + 1].sh_addr = secs[i].addr;
        sh[i + 1].sh_offset = data_off[i];
        sh[i + 1].sh_size = secs[i].size;
        sh[i + 1].sh_link = secs[i].link;
        sh[i + 1].sh_entsize = secs[i].entsize;
    }
    memcpy(p + shstr_off, shstr, shlen);
    sh[n + 1].sh_name = shstr_name;
    sh[n + 1].sh_type = SHT_STRTAB;
    sh[n + 1].sh_offset = shstr_off;
    sh[n + 1].sh_size = shlen;
    memcpy(p + shoff, sh, (n + 2) * sizeof(Elf64_Shdr));
    return (struct image){ p, total };
}

/* Symbol and string table bytes for syms (index 0 is the null symbol). */
static void make_syms(const struct tsym *syms, size_t n, Elf64_Sym *out, char *str, size_t *strlen_out)
{
    size_t sl = 1;
    str[0] = '\0';
    memset(out, 0, (n + 1) * sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        out[i + 1].st_name = (uint32_t)sl;
        strcpy(str + sl, syms[i].name);
        sl += strlen(syms[i].name) + 1;
        out[i + 1].st_info = (unsigned char)ELF64_ST_INFO(syms[i].bind, syms[i].type);
        out[i + 1].st_shndx = syms[i].shndx;
        out[i + 1].st_value = syms[i].value;
        out[i + 1].st_size = syms[i].size;
    }
    *strlen_out = sl;
}

/* An image with .text at 0x1000..0x2000 (index 1) and a symbol table of
 * type symtype (index 2) whose strings are in index 3, plus extra sections. */
static struct image image_with_syms(const struct tsym *syms, size_t n, uint32_t symtype,
                                    const struct tsec *extra, size_t nextra)
{
    static Elf64_Sym st[64];
    static char str[4096];
    size_t sl;
    ck_assert_uint_lt(n, 64);
    make_syms(syms, n, st, str, &sl);
    struct tsec secs[8] = {
        { ".text", SHT_NOBITS, 0x1000, NULL, 0x1000, 0, 0 },
        { symtype == SHT_SYMTAB ? ".symtab" : ".dynsym", symtype, 0, st,
          (n + 1) * sizeof(Elf64_Sym), 3, sizeof(Elf64_Sym) },
        { symtype == SHT_SYMTAB ? ".strtab" : ".dynstr", SHT_STRTAB, 0, str, sl, 0, 0 },
    };
    for (size_t i = 0; i < nextra; i++)
        secs[3 + i] = extra[i];
    return build_elf(secs, 3 + nextra);
}

#define G STB_GLOBAL
#define W STB_WEAK
#define L STB_LOCAL
#define F STT_FUNC

static const struct tsym table_syms[] = {
    { "foo_alias", 0x1000, 0x10, W, F, 1 },
    { "foo", 0x1000, 0x10, G, F, 1 },
    { "__libc_bar", 0x1100, 0x20, G, F, 1 },
    { "bar", 0x1100, 0x20, G, F, 1 },
    { "local_l", 0x1200, 0x8, L, F, 1 },
    { "weak_w", 0x1200, 0x8, W, F, 1 },
    { "asm_fn", 0x1300, 0, G, F, 1 },
    { "next", 0x1400, 0x10, G, F, 1 },
    { "data_obj", 0x1500, 0x10, G, STT_OBJECT, 1 },
    { "undef_fn", 0x1580, 0x10, G, F, SHN_UNDEF },
    { "abs_fn", 0x1600, 0x10, G, F, SHN_ABS },
    { "zero_fn", 0, 0x10, G, F, 1 },
    { "", 0x1680, 0x10, G, F, 1 },
    { "ifunc_fn", 0x1700, 0x10, G, STT_GNU_IFUNC, 1 },
    { "big", 0x1800, 0x100, G, F, 1 },
    { "small", 0x1810, 0x10, L, F, 1 },
    { "aa", 0x1a00, 0x10, G, F, 1 },
    { "b", 0x1a00, 0x10, G, F, 1 },
    { "memcpy@GLIBC_2.2.5", 0x1b00, 0x10, G, F, 1 },
    { "memcpy_impl", 0x1b00, 0x10, G, F, 1 },
    { "last_asm", 0x1f00, 0, G, F, 1 },
};

struct probe {
    uint64_t addr;
    const char *name;   /* NULL: nothing covers addr */
    uint64_t start;
};

static const struct probe table_probes[] = {
    { 0x0fff, NULL, 0 },
    { 0x1000, "foo", 0x1000 },      /* global beats weak */
    { 0x100f, "foo", 0x1000 },
    { 0x1010, NULL, 0 },            /* gap after a sized symbol */
    { 0x1110, "bar", 0x1100 },      /* no leading underscore wins */
    { 0x1204, "weak_w", 0x1200 },   /* weak beats local */
    { 0x1300, "asm_fn", 0x1300 },   /* unsized: up to the next symbol */
    { 0x13ff, "asm_fn", 0x1300 },
    { 0x1400, "next", 0x1400 },
    { 0x1505, NULL, 0 },            /* objects are not functions */
    { 0x1585, NULL, 0 },            /* undefined */
    { 0x1605, NULL, 0 },            /* absolute */
    { 0x1685, NULL, 0 },            /* nameless */
    { 0x1708, "ifunc_fn", 0x1700 },
    { 0x1815, "small", 0x1810 },    /* nested: the inner one */
    { 0x1850, "big", 0x1800 },      /* nested: the outer one past it */
    { 0x1a05, "b", 0x1a00 },        /* shorter name */
    { 0x1b05, "memcpy_impl", 0x1b00 }, /* unversioned name */
    { 0x1fff, "last_asm", 0x1f00 }, /* unsized last: up to section end */
    { 0x2000, NULL, 0 },
    { UINT64_MAX, NULL, 0 },
};

static void check_probes(const struct cgprof__symtab *t, const struct probe *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t start = 12345;
        const char *name = cgprof__symtab_lookup(t, p[i].addr, &start);
        if (!p[i].name) {
            ck_assert_msg(name == NULL, "0x%llx: expected nothing, got %s",
                          (unsigned long long)p[i].addr, name);
            continue;
        }
        ck_assert_msg(name && strcmp(name, p[i].name) == 0, "0x%llx: expected %s, got %s",
                      (unsigned long long)p[i].addr, p[i].name, name ? name : "(null)");
        ck_assert_uint_eq(start, p[i].start);
        ck_assert_str_eq(cgprof__symtab_lookup(t, p[i].addr, NULL), p[i].name);
    }
}

START_TEST(test_symtab_new_aliases_sizes_and_gaps)
{
    struct image im = image_with_syms(table_syms, CGPROF_ARRAY_SIZE(table_syms), SHT_SYMTAB,
                                      NULL, 0);
    struct cgprof__symtab *t = cgprof__symtab_new("/nonexistent/x.so", im.p, im.len);
    ck_assert_ptr_nonnull(t);
    /* foo, bar, weak_w, asm_fn, next, ifunc_fn, big, small, b, memcpy_impl, last_asm */
    ck_assert_uint_eq(cgprof__symtab_count(t), 11);
    /* Names live in the table's own pool: scribble over and free the image. */
    memset(im.p, 0xa5, im.len);
    free(im.p);
    check_probes(t, table_probes, CGPROF_ARRAY_SIZE(table_probes));
    cgprof__symtab_free(t);
}
END_TEST

START_TEST(test_symtab_new_uses_dynsym_without_symtab)
{
    static const struct tsym syms[] = {
        { "exported", 0x1040, 0x20, G, F, 1 },
        { "exported_alias", 0x1040, 0x20, W, F, 1 },
    };
    struct image im = image_with_syms(syms, 2, SHT_DYNSYM, NULL, 0);
    symtab_debug_root = cgprof_test_tmpdir();   /* empty: no debug files */
    struct cgprof__symtab *t = cgprof__symtab_new(NULL, im.p, im.len);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(cgprof__symtab_count(t), 1);
    ck_assert_str_eq(cgprof__symtab_lookup(t, 0x1050, NULL), "exported");
    ck_assert_ptr_null(cgprof__symtab_lookup(t, 0x1060, NULL));
    cgprof__symtab_free(t);
    free(im.p);
}
END_TEST

static uint32_t test_crc32(const unsigned char *p, size_t n)
{
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = crc & 1 ? 0xedb88320u ^ (crc >> 1) : crc >> 1;
    }
    return ~crc;
}

static void write_file(const char *path, const void *p, size_t n)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", path);
    *strrchr(dir, '/') = '\0';
    ck_assert_int_eq(cgprof_mkdir_p(dir, 0755), 0);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

static const struct tsym debug_syms[] = {
    { "exported", 0x1040, 0x20, G, F, 1 },
    { "hidden_static", 0x1100, 0x30, L, F, 1 },
};
static const struct tsym stripped_syms[] = {
    { "exported", 0x1040, 0x20, G, F, 1 },
};

START_TEST(test_symtab_new_reads_debug_file_by_build_id)
{
    const char *root = cgprof_test_tmpdir();
    ck_assert_ptr_nonnull(root);
    symtab_debug_root = root;
    struct image dbg = image_with_syms(debug_syms, 2, SHT_SYMTAB, NULL, 0);
    char path[512];
    snprintf(path, sizeof(path), "%s/.build-id/ab/cdef01.debug", root);
    write_file(path, dbg.p, dbg.len);

    unsigned char note[12 + 4 + 4];
    Elf64_Nhdr nh = { 4, 4, NT_GNU_BUILD_ID };
    memcpy(note, &nh, 12);
    memcpy(note + 12, "GNU", 4);
    memcpy(note + 16, "\xab\xcd\xef\x01", 4);
    struct tsec extra[] = { { ".note.gnu.build-id", SHT_NOTE, 0, note, sizeof(note), 0, 0 } };
    struct image im = image_with_syms(stripped_syms, 1, SHT_DYNSYM, extra, 1);
    struct cgprof__symtab *t = cgprof__symtab_new("/opt/app/lib.so", im.p, im.len);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(cgprof__symtab_count(t), 2);
    ck_assert_str_eq(cgprof__symtab_lookup(t, 0x1110, NULL), "hidden_static");
    ck_assert_str_eq(cgprof__symtab_lookup(t, 0x1041, NULL), "exported");
    cgprof__symtab_free(t);

    /* Another build-id: the debug file does not apply, .dynsym is used. */
    memcpy(note + 16, "\xab\xcd\xef\x02", 4);
    free(im.p);
    im = image_with_syms(stripped_syms, 1, SHT_DYNSYM, extra, 1);
    t = cgprof__symtab_new("/opt/app/lib.so", im.p, im.len);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(cgprof__symtab_count(t), 1);
    ck_assert_ptr_null(cgprof__symtab_lookup(t, 0x1110, NULL));
    cgprof__symtab_free(t);
    free(im.p);
    free(dbg.p);
}
END_TEST

START_TEST(test_symtab_new_reads_debug_file_by_debuglink)
{
    const char *root = cgprof_test_tmpdir();
    ck_assert_ptr_nonnull(root);
    char rootcopy[256], path[512], bin[512];
    snprintf(rootcopy, sizeof(rootcopy), "%s", root);
    symtab_debug_root = "/nonexistent-debug-root";
    struct image dbg = image_with_syms(debug_syms, 2, SHT_SYMTAB, NULL, 0);
    snprintf(path, sizeof(path), "%s/bin/.debug/prog.debug", rootcopy);
    write_file(path, dbg.p, dbg.len);
    snprintf(bin, sizeof(bin), "%s/bin/prog", rootcopy);

    for (int good = 1; good >= 0; good--) {
        unsigned char link[16] = "prog.debug";   /* 11 bytes with NUL, pad to 12 */
        uint32_t crc = test_crc32(dbg.p, dbg.len) ^ (good ? 0 : 1);
        memcpy(link + 12, &crc, 4);
        struct tsec extra[] = { { ".gnu_debuglink", SHT_PROGBITS, 0, link, sizeof(link), 0, 0 } };
        struct image im = image_with_syms(stripped_syms, 1, SHT_DYNSYM, extra, 1);
        struct cgprof__symtab *t = cgprof__symtab_new(bin, im.p, im.len);
        ck_assert_ptr_nonnull(t);
        if (good) {
            ck_assert_uint_eq(cgprof__symtab_count(t), 2);
            ck_assert_str_eq(cgprof__symtab_lookup(t, 0x1100, NULL), "hidden_static");
        } else {
            /* A CRC mismatch means another build: not used. */
            ck_assert_uint_eq(cgprof__symtab_count(t), 1);
        }
        cgprof__symtab_free(t);
        free(im.p);
    }
    free(dbg.p);
}
END_TEST

/* ---- real binaries --------------------------------------------------------- */

__attribute__((noinline)) static int symtab_known_function(int x)
{
    __asm__ volatile("" ::: "memory");
    return x * 3 + 1;
}

struct find_obj {
    const char *needle;     /* NULL: the main program */
    uintptr_t bias;
    char path[512];
    int found;
};

static int find_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct find_obj *f = arg;
    bool match = f->needle ? strstr(info->dlpi_name, f->needle) != NULL : true;
    if (!match)
        return 0;
    f->bias = info->dlpi_addr;
    snprintf(f->path, sizeof(f->path), "%s", f->needle ? info->dlpi_name : "/proc/self/exe");
    f->found = 1;
    return 1;
}

static struct image map_path(const char *path)
{
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    ck_assert(p != MAP_FAILED);
    return (struct image){ p, (size_t)st.st_size };
}

/* Mean time of a lookup at random addresses in [lo, hi). */
static double lookup_ns(const struct cgprof__symtab *t, uint64_t lo, uint64_t hi)
{
    enum { N = 1000000 };
    uint64_t *q = malloc(N * sizeof(*q));
    ck_assert_ptr_nonnull(q);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        q[i] = lo + x % (hi - lo);
    }
    volatile uintptr_t sink = 0;
    uint64_t t0 = cgprof_now_ns();
    for (int i = 0; i < N; i++)
        sink += (uintptr_t)cgprof__symtab_lookup(t, q[i], NULL);
    uint64_t dt = cgprof_now_ns() - t0;
    (void)sink;
    free(q);
    return (double)dt / N;
}

START_TEST(test_symtab_lookup_finds_static_function_of_this_binary)
{
    struct find_obj f = { .needle = NULL };
    dl_iterate_phdr(find_cb, &f);
    ck_assert(f.found);
    struct image im = map_path(f.path);
    struct cgprof__symtab *t = cgprof__symtab_new(f.path, im.p, im.len);
    munmap(im.p, im.len);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_gt(cgprof__symtab_count(t), 100);

    uint64_t vaddr = (uint64_t)((uintptr_t)&symtab_known_function - f.bias);
    uint64_t start = 0;
    ck_assert_str_eq(cgprof__symtab_lookup(t, vaddr, &start), "symtab_known_function");
    ck_assert_uint_eq(start, vaddr);
    ck_assert_str_eq(cgprof__symtab_lookup(t, vaddr + 1, NULL), "symtab_known_function");
    ck_assert_int_eq(symtab_known_function(1), 4);
    uint64_t v2 = (uint64_t)((uintptr_t)&cgprof__symtab_lookup - f.bias);
    ck_assert_str_eq(cgprof__symtab_lookup(t, v2 + 2, NULL), "cgprof__symtab_lookup");

    double ns = lookup_ns(t, vaddr & ~(uint64_t)0xfffff, vaddr + 0x100000);
    fprintf(stderr, "symtab: %zu symbols in the test binary, %.1f ns per lookup %s\n",
            cgprof__symtab_count(t), ns, BUILD_KIND);
    cgprof__symtab_free(t);
}
END_TEST

START_TEST(test_symtab_lookup_libc_dynsym_prefers_global_alias)
{
    struct find_obj f = { .needle = "libc.so.6" };
    dl_iterate_phdr(find_cb, &f);
    ck_assert(f.found);
    void *h = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    ck_assert_ptr_nonnull(h);
    void *fn = dlsym(h, "getpid");
    ck_assert_ptr_nonnull(fn);
    struct image im = map_path(f.path);
    struct cgprof__symtab *t = cgprof__symtab_new(f.path, im.p, im.len);
    munmap(im.p, im.len);
    ck_assert_ptr_nonnull(t);
    uint64_t vaddr = (uint64_t)((uintptr_t)fn - f.bias), start = 0;
    const char *name = cgprof__symtab_lookup(t, vaddr + 1, &start);
    ck_assert_ptr_nonnull(name);
    /* glibc: __getpid is global, getpid a weak alias of it. */
    ck_assert_msg(strcmp(name, "__getpid") == 0 || strcmp(name, "getpid") == 0, "%s", name);
    ck_assert_uint_eq(start, vaddr);
    fprintf(stderr, "symtab: %zu symbols in %s, getpid resolved as %s\n",
            cgprof__symtab_count(t), f.path, name);
    dlclose(h);
    cgprof__symtab_free(t);
}
END_TEST

START_TEST(test_symtab_lookup_speed_on_large_table)
{
    /* 50 000 sized functions, 64 bytes apart. */
    enum { NS = 50000 };
    size_t symsz = (NS + 1) * sizeof(Elf64_Sym), strsz = 1 + (size_t)NS * 12;
    Elf64_Sym *st = calloc(NS + 1, sizeof(*st));
    char *str = calloc(1, strsz);
    ck_assert(st && str);
    size_t sl = 1;
    for (int i = 0; i < NS; i++) {
        st[i + 1].st_name = (uint32_t)sl;
        sl += (size_t)sprintf(str + sl, "fn_%d", i) + 1;
        st[i + 1].st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC);
        st[i + 1].st_shndx = 1;
        st[i + 1].st_value = 0x100000 + (uint64_t)i * 64;
        st[i + 1].st_size = 48;
    }
    struct tsec secs[] = {
        { ".text", SHT_NOBITS, 0x100000, NULL, (size_t)NS * 64, 0, 0 },
        { ".symtab", SHT_SYMTAB, 0, st, symsz, 3, sizeof(Elf64_Sym) },
        { ".strtab", SHT_STRTAB, 0, str, sl, 0, 0 },
    };
    struct image im = build_elf(secs, 3);
    uint64_t t0 = cgprof_now_ns();
    struct cgprof__symtab *t = cgprof__symtab_new(NULL, im.p, im.len);
    uint64_t build_ns = cgprof_now_ns() - t0;
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(cgprof__symtab_count(t), NS);
    ck_assert_str_eq(cgprof__symtab_lookup(t, 0x100000 + 777 * 64 + 47, NULL), "fn_777");
    ck_assert_ptr_null(cgprof__symtab_lookup(t, 0x100000 + 777 * 64 + 48, NULL));
    double ns = lookup_ns(t, 0x100000, 0x100000 + (uint64_t)NS * 64);
    fprintf(stderr, "symtab: %d symbols built in %.1f ms, %.1f ns per lookup %s\n", NS,
            (double)build_ns / 1e6, ns, BUILD_KIND);
    ck_assert_msg(ns < 2000, "lookup too slow: %.1f ns", ns);
    cgprof__symtab_free(t);
    free(im.p);
    free(st);
    free(str);
}
END_TEST

/* ---- malformed input ------------------------------------------------------ */

static struct image valid_image(void)
{
    return image_with_syms(table_syms, CGPROF_ARRAY_SIZE(table_syms), SHT_SYMTAB, NULL, 0);
}

/* Builds a table from a guarded copy (reading past len faults) and, when
 * it succeeds, looks a few addresses up. */
static struct cgprof__symtab *try_guarded(const void *p, size_t len)
{
    const void *g = cgprof_test_guarded_copy(p, len);
    ck_assert_ptr_nonnull(g);
    struct cgprof__symtab *t = cgprof__symtab_new(NULL, g, len);
    for (uint64_t a = 0xff0; t && a < 0x2010; a += 0x10)
        (void)cgprof__symtab_lookup(t, a, NULL);
    return t;
}

START_TEST(test_symtab_new_rejects_malformed_images)
{
    symtab_debug_root = "/nonexistent-debug-root";
    ck_assert_ptr_null(cgprof__symtab_new(NULL, NULL, 100));
    ck_assert_ptr_null(try_guarded("", 0));
    ck_assert_ptr_null(try_guarded("\x7f" "ELF", 4));

    struct image im = valid_image();
    struct cgprof__symtab *ok = try_guarded(im.p, im.len);
    ck_assert_ptr_nonnull(ok);
    cgprof__symtab_free(ok);

    /* Every truncation: the section headers sit at the end, so all fail. */
    for (size_t len = 0; len < im.len; len++)
        ck_assert_ptr_null(try_guarded(im.p, len));

    Elf64_Ehdr eh;
    memcpy(&eh, im.p, sizeof(eh));
    unsigned char *p = malloc(im.len);
    ck_assert_ptr_nonnull(p);
    Elf64_Shdr sh;
    size_t sym_sh = eh.e_shoff + 2 * sizeof(Elf64_Shdr);     /* .symtab header */
    size_t str_sh = eh.e_shoff + 3 * sizeof(Elf64_Shdr);     /* .strtab header */

#define RESET() memcpy(p, im.p, im.len)
#define PATCH(off, field, val)                                                  \
    do {                                                                        \
        memcpy(&sh, p + (off), sizeof(sh));                                     \
        sh.field = (val);                                                       \
        memcpy(p + (off), &sh, sizeof(sh));                                     \
    } while (0)
#define EXPECT_NULL(desc)                                                       \
    do {                                                                        \
        struct cgprof__symtab *t_ = try_guarded(p, im.len);                     \
        ck_assert_msg(t_ == NULL, "%s: expected NULL", desc);                   \
    } while (0)

    RESET(); p[EI_CLASS] = ELFCLASS32; EXPECT_NULL("32-bit class");
    RESET(); p[EI_DATA] = ELFDATA2MSB; EXPECT_NULL("big endian");
    RESET(); p[0] = 0; EXPECT_NULL("bad magic");
    {
        Elf64_Ehdr e2 = eh;
        RESET(); e2.e_shoff = (Elf64_Off)im.len; memcpy(p, &e2, sizeof(e2)); EXPECT_NULL("shoff at end");
        e2 = eh; RESET(); e2.e_shoff = UINT64_MAX - 10; memcpy(p, &e2, sizeof(e2)); EXPECT_NULL("shoff huge");
        e2 = eh; RESET(); e2.e_shnum = 0xfff0; memcpy(p, &e2, sizeof(e2)); EXPECT_NULL("shnum huge");
        e2 = eh; RESET(); e2.e_shentsize = 32; memcpy(p, &e2, sizeof(e2)); EXPECT_NULL("shentsize");
        e2 = eh; RESET(); e2.e_shoff = 0; memcpy(p, &e2, sizeof(e2)); EXPECT_NULL("no sections");
        /* Extended numbering with an absurd count in section 0. */
        e2 = eh; RESET(); e2.e_shnum = 0; memcpy(p, &e2, sizeof(e2));
        PATCH(eh.e_shoff, sh_size, UINT64_MAX); EXPECT_NULL("xnum huge");
        /* A bogus shstrndx only matters for named sections: still works. */
        e2 = eh; RESET(); e2.e_shstrndx = 999; memcpy(p, &e2, sizeof(e2));
        struct cgprof__symtab *t = try_guarded(p, im.len);
        ck_assert_ptr_nonnull(t);
        cgprof__symtab_free(t);
    }
    RESET(); PATCH(sym_sh, sh_offset, UINT64_MAX - 8); EXPECT_NULL("symtab offset huge");
    RESET(); PATCH(sym_sh, sh_size, UINT64_MAX); EXPECT_NULL("symtab size huge");
    RESET(); PATCH(sym_sh, sh_size, im.len); EXPECT_NULL("symtab past end");
    RESET(); PATCH(sym_sh, sh_link, 77); EXPECT_NULL("symtab link out of range");
    RESET(); PATCH(sym_sh, sh_link, 1); EXPECT_NULL("symtab link not a strtab");
    RESET(); PATCH(sym_sh, sh_entsize, 8); EXPECT_NULL("entsize too small");
    RESET(); PATCH(str_sh, sh_offset, im.len - 2); EXPECT_NULL("strtab past end");
    RESET(); PATCH(str_sh, sh_type, SHT_NOBITS); EXPECT_NULL("strtab nobits");
    {
        /* Unterminated string table: names running off its end are dropped. */
        RESET();
        memcpy(&sh, p + str_sh, sizeof(sh));
        size_t end = sh.sh_offset + sh.sh_size;
        p[end - 1] = 'x';   /* "last_asm" loses its terminator */
        struct cgprof__symtab *t = try_guarded(p, im.len);
        ck_assert_ptr_nonnull(t);
        ck_assert_ptr_null(cgprof__symtab_lookup(t, 0x1f00, NULL));
        ck_assert_str_eq(cgprof__symtab_lookup(t, 0x1000, NULL), "foo");
        cgprof__symtab_free(t);
    }
    {
        /* Symbol names pointing past the string table are skipped. */
        RESET();
        Elf64_Sym s;
        memcpy(&sh, p + sym_sh, sizeof(sh));
        memcpy(&s, p + sh.sh_offset + 2 * sizeof(s), sizeof(s));     /* "foo" */
        s.st_name = 0xfffffff0u;
        memcpy(p + sh.sh_offset + 2 * sizeof(s), &s, sizeof(s));
        struct cgprof__symtab *t = try_guarded(p, im.len);
        ck_assert_ptr_nonnull(t);
        ck_assert_str_eq(cgprof__symtab_lookup(t, 0x1000, NULL), "foo_alias");
        cgprof__symtab_free(t);
    }
    free(p);
    free(im.p);
}
END_TEST

START_TEST(test_symtab_new_survives_random_bytes_and_bit_flips)
{
    symtab_debug_root = "/nonexistent-debug-root";
    unsigned char junk[4096];
    for (int i = 0; i < 200; i++) {
        for (size_t k = 0; k < sizeof(junk); k++)
            junk[k] = (unsigned char)cgprof_random_u64();
        if (i % 2) /* half of them with a valid-looking header */
            memcpy(junk, "\x7f" "ELF\x02\x01\x01", 7);
        struct cgprof__symtab *t = try_guarded(junk, 1 + (size_t)(cgprof_random_u64() % sizeof(junk)));
        cgprof__symtab_free(t);
    }
    struct image im = valid_image();
    unsigned char *p = malloc(im.len);
    ck_assert_ptr_nonnull(p);
    int built = 0;
    for (int i = 0; i < 3000; i++) {
        memcpy(p, im.p, im.len);
        int flips = 1 + (int)(cgprof_random_u64() % 8);
        for (int k = 0; k < flips; k++) {
            size_t at = (size_t)(cgprof_random_u64() % im.len);
            p[at] = (unsigned char)cgprof_random_u64();
        }
        struct cgprof__symtab *t = try_guarded(p, im.len);
        built += t != NULL;
        cgprof__symtab_free(t);
    }
    ck_assert_int_gt(built, 0);     /* most flips hit data, not structure */
    free(p);
    free(im.p);
}
END_TEST

START_TEST(test_symtab_new_fails_cleanly_on_oom)
{
    struct image im = valid_image();
    int failures = 0;
    for (long n = 0; n < 20; n++) {
        cgprof_alloc_fail_after(n);
        struct cgprof__symtab *t = cgprof__symtab_new(NULL, im.p, im.len);
        cgprof_alloc_fail_after(-1);
        if (!t) {
            failures++;
            continue;
        }
        ck_assert_uint_eq(cgprof__symtab_count(t), 11);
        cgprof__symtab_free(t);
    }
    ck_assert_int_ge(failures, 3);
    free(im.p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sampler");
    TCase *tc = tcase_create("symtab");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_symtab_new_aliases_sizes_and_gaps);
    tcase_add_test(tc, test_symtab_new_uses_dynsym_without_symtab);
    tcase_add_test(tc, test_symtab_new_reads_debug_file_by_build_id);
    tcase_add_test(tc, test_symtab_new_reads_debug_file_by_debuglink);
    tcase_add_test(tc, test_symtab_lookup_finds_static_function_of_this_binary);
    tcase_add_test(tc, test_symtab_lookup_libc_dynsym_prefers_global_alias);
    tcase_add_test(tc, test_symtab_lookup_speed_on_large_table);
    tcase_add_test(tc, test_symtab_new_rejects_malformed_images);
    tcase_add_test(tc, test_symtab_new_survives_random_bytes_and_bit_flips);
    tcase_add_test(tc, test_symtab_new_fails_cleanly_on_oom);
    suite_add_tcase(s, tc);
    return cgprof_test_run(s);
}
