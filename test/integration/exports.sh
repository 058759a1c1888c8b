#!/bin/bash
# libcgprof.so shows a host nothing but libc: ldd lists only linux-vdso, libc
# and the loader, and it exports only cgprof_* and the interposers of
# preload/exports.map (scripts/check-exports.sh). A broken copy of the
# library must make the checker fail, so the check itself is tested too.
source "$(dirname "$0")/lib.sh"
need_lib

say "scripts/check-exports.sh $LIB"
"$ROOT/scripts/check-exports.sh" "$LIB" || fail "check-exports.sh rejected $LIB (see above)"
ok "only libc and the loader are needed; only allowed symbols are exported"

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
