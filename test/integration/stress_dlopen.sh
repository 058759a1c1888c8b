#!/bin/bash
# Signals landing inside dlopen/dlclose, the loader lock and malloc must not
# deadlock or crash the host: dlopen_stress (4 threads cycling libm, libz,
# liblzma and libbz2 and hammering malloc) at 1000 Hz exits 0, prints ok and
# leaves a profile. 60 s, as the sampler issue asks (CGPROF_STRESS_SECONDS
# shortens it for quick local runs).
source "$(dirname "$0")/lib.sh"
need_lib
need_workload dlopen_stress

secs=${CGPROF_STRESS_SECONDS:-60}
say "dlopen_stress ${secs}s, 4 threads, at 1000 Hz"
# A hang is a failure too: allow generous slack for the exit-time flush.
set +e
timeout -k 5 $((secs + 30)) env LD_PRELOAD="$LIB" \
    CGPROF_OPTIONS="outputDir:$TMP/out,cpuSamplingHz:1000" \
    "$WL/dlopen_stress" "$secs" 4 >"$TMP/stdout" 2>"$TMP/stderr"
rc=$?
set -e
[ $rc != 124 ] && [ $rc != 137 ] || fail "dlopen_stress hung under the preload (killed after $((secs + 30)) s)"
[ $rc = 0 ] || fail "dlopen_stress exited $rc under the preload: $(cat "$TMP/stdout") $(head -c 1000 "$TMP/stderr")"
[ "$(cat "$TMP/stdout")" = ok ] || fail "dlopen_stress printed '$(cat "$TMP/stdout")'"
note "$(grep -v '^cgprof:' "$TMP/stderr" | head -n 1)"
expect_profiles "$TMP/out"
ok "survived ${secs}s of dlopen/malloc stress at 1000 Hz and wrote a profile"
