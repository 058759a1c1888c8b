#!/bin/bash
# The public API (include/cgprof.h) in a program linked with -lcgprof, no
# LD_PRELOAD: invalid options are refused with one cgprof: line and errno
# untouched; start is idempotent; flush ends an interval (two profiles);
# stop writes the last one and a second stop reports nothing was running.
source "$(dirname "$0")/lib.sh"
need_lib
need_cli
say "a program linked with -lcgprof starts, flushes and stops profiling in code"
cc -O2 -fomit-frame-pointer -I"$ROOT/include" -o "$TMP/api" "$ROOT/test/integration/api.c" \
    -L"$BUILD_DIR" -lcgprof -Wl,-rpath,"$BUILD_DIR" || fail "cannot build the API test program"
"$TMP/api" "$TMP/out" >"$TMP/out.txt" 2>"$TMP/err.txt" ||
    fail "the API program failed: $(cat "$TMP/err.txt")"
grep -q "^version [0-9]" "$TMP/out.txt" || fail "no version printed"
[ "$(grep -c '^cgprof: ' "$TMP/err.txt")" = 1 ] && grep -q cpuSamplingHz "$TMP/err.txt" ||
    fail "expected one cgprof: line about cpuSamplingHz, got: $(cat "$TMP/err.txt")"
n=$(count_profiles "$TMP/out")
[ "$n" = 2 ] || fail "expected 2 profiles (flush, stop), got $n"
folded_report "$TMP/out" "$TMP/folded"
s=$(folded "$TMP/folded" grep 'api:api_burn')
[ "$s" -ge 400 ] || fail "only $s samples in api_burn (expected ~600)"
ok "2 profiles, $s samples in api_burn"
