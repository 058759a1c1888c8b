/* Tests of sampler/demangle.c: C++ through libstdc++'s __cxa_demangle and
 * through the fallback parser, Rust legacy and v0 names, garbage. */
#include <check.h>
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "../../../common/common.h"
#include "../../../sampler/sampler_int.h"

void demangle_reset_cache(void);
extern bool demangle_skip_cxa;

struct dm_case {
    const char *in;
    const char *out;    /* NULL: not demangled */
};

static void check_table(const struct dm_case *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *got = cgprof__demangle(t[i].in);
        if (t[i].out == NULL)
            ck_assert_msg(got == NULL, "%s: expected NULL, got \"%s\"", t[i].in, got);
        else
            ck_assert_msg(got && strcmp(got, t[i].out) == 0, "%s: expected \"%s\", got \"%s\"",
                          t[i].in, t[i].out, got ? got : "(null)");
        cgprof_free(got);
    }
}

static const struct dm_case rust_legacy[] = {
    { "_ZN4core3fmt5write17h0123456789abcdefE", "core::fmt::write" },
    { "_ZN5alloc3oom3oom17h722648b727b8bcd0E", "alloc::oom::oom" },
    { "__ZN4core3fmt5Write10write_char17hcc5144a9a84f2b15E", "core::fmt::Write::write_char" },
    { "_ZN3foo17h05af221e174051e9E.llvm.1234", "foo" },
    { "_ZN66_$LT$alloc..vec..Vec$LT$T$GT$$u20$as$u20$core..ops..drop..Drop$GT$4drop17h0123456789abcdefE",
      "<alloc::vec::Vec<T> as core::ops::drop::Drop>::drop" },
    { "_ZN4test4$RF$4$BP$4$SP$4$LP$4$RP$3$C$17h0123456789abcdefE", "test::&::*::@::(::)::," },
    { "_ZN3std2rt10lang_start28_$u7b$$u7b$closure$u7d$$u7d$17h0123456789abcdefE",
      "std::rt::lang_start::{{closure}}" },
    { "_ZN4test6$u$bad17h0123456789abcdefE", "test::$u$bad" },
    { "_ZN4test1.17h0123456789abcdefE", "test::." },
    /* Malformed or not Rust: no hash, bad lengths, unterminated. */
    { "_ZN10no_e_found", NULL },
    { "_ZN99tooshort17h0123456789abcdefE", NULL },
};

START_TEST(test_demangle_rust_legacy_drops_hash_and_decodes_escapes)
{
    demangle_reset_cache();
    check_table(rust_legacy, CGPROF_ARRAY_SIZE(rust_legacy));
}
END_TEST

static const struct dm_case rust_v0[] = {
    { "_RNvC6_123foo3bar", "123foo::bar" },
    { "_RNvC1a4main", "a::main" },
    { "_RNCNCNgCs6DXkGYLi8lr_2cc5spawn00B5_", "cc::spawn::{closure#0}::{closure#0}" },
    { "_RNCINkXs25_NgCsbmNqQUJIY6D_4core5sliceINyB9_4IterhENuNgNoBb_4iter8iterator8Iterator"
      "9rpositionNCNgNpB9_6memchr7memrchrs_0E0Bb_",
      "<core::slice::Iter<u8> as core::iter::iterator::Iterator>::rposition::"
      "<core::slice::memchr::memrchr::{closure#1}>::{closure#0}" },
    { "_RINbNbCskIICzLVDPPb_5alloc5alloc8box_freeDINbNiB4_5boxed5FnBoxuEp6OutputuEL_"
      "ECs1iopQbuBiw2_3std",
      "alloc::alloc::box_free::<dyn alloc::boxed::FnBox<(), Output = ()>>" },
    { "_RMCs4fqI2P2rA04_13const_genericINtB0_8UnsignedKhb_E", "<const_generic::Unsigned<11>>" },
    { "_RMCs4fqI2P2rA04_13const_genericINtB0_6SignedKanb_E", "<const_generic::Signed<-11>>" },
    { "_RMCs4fqI2P2rA04_13const_genericINtB0_4BoolKb1_E", "<const_generic::Bool<true>>" },
    { "_RMCs4fqI2P2rA04_13const_genericINtB0_4CharKc76_E", "<const_generic::Char<'v'>>" },
    { "_RNvNvMCs4fqI2P2rA04_13const_genericINtB4_3FooKpE3foo3FOO",
      "<const_generic::Foo<_>>::foo::FOO" },
    { "_RMC0INtC8arrayvec8ArrayVechKj7b_E", "<arrayvec::ArrayVec<u8, 123>>" },
    { "_RMC0TRhQShE", "<(&u8, &mut [u8])>" },
    { "_RMC0FUKCmEu", "<unsafe extern \"C\" fn(u32)>" },
    { "_RC3foo.llvm.9D1C9369", "foo" },
    { "_RNvC9backtrace3foo.llvm.A5310EB9", "backtrace::foo" },
    { "_RNvNtNtNtNtCs92dm3009vxr_4rand4rngs7adapter9reseeding4fork23FORK_HANDLER_REGISTERED.0.0",
      "rand::rngs::adapter::reseeding::fork::FORK_HANDLER_REGISTERED.0.0" },
    /* Punycode identifiers are left encoded. */
    { "_RNqCs4fqI2P2rA04_11utf8_identsu30____7hkackfecea1cbdathfdh9hlq6y",
      "utf8_idents::___7hkackfecea1cbdathfdh9hlq6y" },
    /* Malformed: bad tags, forward or self backrefs, truncation, versions. */
    { "_R", NULL },
    { "_RZ", NULL },
    { "_RNvC", NULL },
    { "_RNvC3foo", NULL },
    { "_RB_", NULL },
    { "_RNvB0_3foo", NULL },
    { "_RINvC3foo3barh", NULL },
    { "_R0NvC3foo3bar", NULL },
    { "_RNvC3foo3barXYZ", NULL },
};

START_TEST(test_demangle_rust_v0_paths_generics_and_errors)
{
    check_table(rust_v0, CGPROF_ARRAY_SIZE(rust_v0));
}
END_TEST

START_TEST(test_demangle_rust_v0_bounds_depth_and_output)
{
    /* Deep nesting: "_R" + "RRRR...h" beyond the depth bound fails cleanly. */
    char deep[600];
    strcpy(deep, "_RMC0");
    size_t n = strlen(deep);
    for (int i = 0; i < 500; i++)
        deep[n++] = 'R';
    deep[n++] = 'h';
    deep[n] = '\0';
    ck_assert_ptr_null(cgprof__demangle(deep));

    /* Exponential backrefs (12 doublings, 4096 "_"): the output stops at
     * the bound with "...". Tuple i sits at offset 3 + i after "_R". */
    char expo[128];
    n = (size_t)snprintf(expo, sizeof(expo), "_RMC0TTTTTTTTTTTTp");
    static const char b62[] = "0123456789abcdef";
    for (int x = 3 + 12 - 1; x >= 3; x--)
        n += (size_t)snprintf(expo + n, sizeof(expo) - n, "B%c_E", b62[x]);
    char *r = cgprof__demangle(expo);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_le(strlen(r), 1024);
    ck_assert_str_eq(r + strlen(r) - 3, "...");
    ck_assert(strncmp(r, "<((((", 5) == 0);
    cgprof_free(r);

    /* Six doublings fit: 64 copies of "_". */
    r = cgprof__demangle("_RMC0TTTTTTpB8_EB7_EB6_EB5_EB4_EB3_E");
    ck_assert_ptr_nonnull(r);
    size_t underscores = 0;
    for (const char *p = r; *p; p++)
        underscores += *p == '_';
    ck_assert_uint_eq(underscores, 64);
    cgprof_free(r);
}
END_TEST

static const struct dm_case cxx_fallback[] = {
    { "_ZN3foo3barEv", "foo::bar" },
    { "_ZNK3Foo3getEv", "Foo::get" },
    { "_ZN3FooC2Ev", "Foo::Foo" },
    { "_ZN3FooD1Ev", "Foo::~Foo" },
    { "_ZN12_GLOBAL__N_14workEi", "(anonymous namespace)::work" },
    { "_ZNSt6thread6_StateD0Ev", "std::thread::_State::~_State" },
    { "_Z3fooi", "foo" },
    { "_ZL6helperv", "helper" },
    { "_ZSt9terminatev", "std::terminate" },
    /* Beyond the fallback: templates, operators, substitutions. */
    { "_ZNSt6vectorIiSaIiEE9push_backERKi", NULL },
    { "_ZN3FooplERKS_", NULL },
    { "_ZN3foo", NULL },
    { "_ZNE", NULL },
};

START_TEST(test_demangle_cxx_fallback_without_libstdcxx)
{
    demangle_skip_cxa = true;
    demangle_reset_cache();
    check_table(cxx_fallback, CGPROF_ARRAY_SIZE(cxx_fallback));
}
END_TEST

static const struct dm_case cxx_full[] = {
    { "_ZNSt6vectorIiSaIiEE9push_backERKi", "std::vector<int, std::allocator<int> >::push_back(int const&)" },
    { "_ZN3foo3barEv", "foo::bar()" },
    { "_ZN3FooplERKS_", "Foo::operator+(Foo const&)" },
    { "_Z3fooi.cold", "foo(int) [clone .cold]" },
    { "__ZN3foo3barEv", "foo::bar()" },
    { "_Zgarbage", NULL },
    /* Rust legacy names keep going through our parser. */
    { "_ZN4core3fmt5write17h0123456789abcdefE", "core::fmt::write" },
};

START_TEST(test_demangle_cxx_through_cxa_demangle)
{
    void *h = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_GLOBAL);
    ck_assert_msg(h != NULL, "libstdc++.so.6: %s", dlerror());
    demangle_reset_cache();
    check_table(cxx_full, CGPROF_ARRAY_SIZE(cxx_full));
}
END_TEST

static const struct dm_case garbage[] = {
    { "", NULL },
    { "main", NULL },
    { "_", NULL },
    { "_Z", NULL },
    { "_R", NULL },
    { "__", NULL },
    { "_start", NULL },
    { "_ZN", NULL },
    { "_ZN999999999999999999999999foo", NULL },
    { "_RNvC18446744073709551616foo", NULL },
    { "_RNvCs99999999999999999999999_3foo3bar", NULL },
    { "_RIC3fooKc110000_E", NULL },
};

START_TEST(test_demangle_garbage_returns_null)
{
    demangle_reset_cache();
    check_table(garbage, CGPROF_ARRAY_SIZE(garbage));
    ck_assert_ptr_null(cgprof__demangle(NULL));
    /* Random mangled-looking inputs ending at a guard page: no crash, no
     * read past the terminator, bounded output. */
    static const char alphabet[] = "_RZNCMXYIBKLvhjsuE0123456789abcdefpT$.";
    static const char zeros[64];
    char *guard = (char *)(uintptr_t)cgprof_test_guarded_copy(zeros, sizeof(zeros));
    ck_assert_ptr_nonnull(guard);
    for (int i = 0; i < 20000; i++) {
        size_t n = 2 + (size_t)(cgprof_random_u64() % 40);
        char *buf = guard + 64 - (n + 1);
        buf[0] = '_';
        buf[1] = i % 2 ? 'R' : 'Z';
        for (size_t k = 2; k < n; k++)
            buf[k] = alphabet[cgprof_random_u64() % (sizeof(alphabet) - 1)];
        buf[n] = '\0';
        char *r = cgprof__demangle(buf);
        if (r)
            ck_assert_uint_le(strlen(r), 4096);
        cgprof_free(r);
    }
}
END_TEST

START_TEST(test_demangle_oom_returns_null)
{
    cgprof_alloc_fail_after(0);
    char *r = cgprof__demangle("_ZN4core3fmt5write17h0123456789abcdefE");
    cgprof_alloc_fail_after(-1);
    ck_assert_ptr_null(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sampler");
    TCase *tc = tcase_create("demangle");
    tcase_add_test(tc, test_demangle_rust_legacy_drops_hash_and_decodes_escapes);
    tcase_add_test(tc, test_demangle_rust_v0_paths_generics_and_errors);
    tcase_add_test(tc, test_demangle_rust_v0_bounds_depth_and_output);
    tcase_add_test(tc, test_demangle_cxx_fallback_without_libstdcxx);
    tcase_add_test(tc, test_demangle_cxx_through_cxa_demangle);
    tcase_add_test(tc, test_demangle_garbage_returns_null);
    tcase_add_test(tc, test_demangle_oom_returns_null);
    suite_add_tcase(s, tc);
    return cgprof_test_run(s);
}
