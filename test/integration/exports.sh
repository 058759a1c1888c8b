#!/bin/bash
# libcgprof.so and libcgprof-heap.so show a host nothing but libc: ldd lists
# only linux-vdso, libc and the loader, and they export only cgprof_* and
# the interposers of preload/exports.map (scripts/check-exports.sh); only
# libcgprof-heap.so defines the malloc family. A broken copy of the library
# must make the checker fail, so the check itself is tested too.
source "$(dirname "$0")/lib.sh"
need_lib

for so in "$LIB" "$HEAP_LIB"; do
    say "scripts/check-exports.sh $so"
    "$ROOT/scripts/check-exports.sh" "$so" || fail "check-exports.sh rejected $so (see above)"
done
ok "only libc and the loader are needed; only allowed symbols are exported"

say "the malloc family is interposed by libcgprof-heap.so only"
malloc_family="malloc free calloc realloc reallocarray posix_memalign aligned_alloc memalign valloc pvalloc"
core=$(nm -D --defined-only "$LIB" | awk '{print $3}')
heap=$(nm -D --defined-only "$HEAP_LIB" | awk '{print $3}')
for f in $malloc_family; do
    ! grep -qx "$f" <<<"$core" || fail "libcgprof.so defines $f: programs without the heap summary would pay for it"
    grep -qx "$f" <<<"$heap" || fail "libcgprof-heap.so does not define $f"
done
for f in cgprof_start cgprof_stop cgprof_flush cgprof_version pthread_create _exit _Exit; do
    grep -qx "$f" <<<"$core" || fail "libcgprof.so does not export $f"
    grep -qx "$f" <<<"$heap" || fail "libcgprof-heap.so does not export $f"
done
ok "libcgprof.so leaves malloc alone; libcgprof-heap.so has all ten interposers and the same API"

say "the checker rejects a library that leaks a symbol and needs libz"
need_prog gcc
printf '%s\n' '#include <zlib.h>' \
    '__attribute__((visibility("default"))) const char *cgprof_version(void) { return zlibVersion(); }' \
    '__attribute__((visibility("default"))) int leaked_helper(void) { return 1; }' >"$TMP/leak.c"
gcc -shared -fPIC -o "$TMP/leak.so" "$TMP/leak.c" -Wl,--no-as-needed -lz ||
    fail "cannot build the sample leaking library"
if "$ROOT/scripts/check-exports.sh" "$TMP/leak.so" >"$TMP/leak.out" 2>&1; then
    cat "$TMP/leak.out"
    fail "check-exports.sh accepted a library that exports leaked_helper and needs libz"
fi
grep -q 'leaked_helper' "$TMP/leak.out" || fail "check-exports.sh did not name leaked_helper: $(cat "$TMP/leak.out")"
grep -q 'libz.so' "$TMP/leak.out" || fail "check-exports.sh did not name libz.so: $(cat "$TMP/leak.out")"
ok "the checker names the leaked symbol and the extra dependency"
