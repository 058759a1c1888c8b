#!/bin/bash
# Signals landing inside dlopen/dlclose, the loader lock and malloc must not
# deadlock or crash the host: dlopen_stress (4 threads cycling libm, libz,
# liblzma and libbz2 and hammering malloc) at 1000 Hz exits 0, prints ok and
# leaves a profile. 60 s, as the sampler issue asks (CGPROF_STRESS_SECONDS
# shortens it for quick local runs). Then 20 s (CGPROF_HEAP_STRESS_SECONDS)
# under libcgprof-heap.so sampling one allocation per 4 KiB: the
# interposers, the sampled path and the ring's cancellations under the same
# load.
source "$(dirname "$0")/lib.sh"
need_lib
need_workload dlopen_stress

# stress LIB OPTIONS SECONDS TAG: dlopen_stress under LIB for SECONDS with
# 4 threads, output in $TMP/TAG; fails on a hang (generous slack for the
# exit-time flush), a non-zero exit, other output, or no profile.
stress() {
    local lib=$1 opts=$2 secs=$3 tag=$4 rc
    set +e
    timeout -k 5 $((secs + 30)) env LD_PRELOAD="$lib" CGPROF_OPTIONS="outputDir:$TMP/$tag,$opts" \
        "$WL/dlopen_stress" "$secs" 4 >"$TMP/$tag.stdout" 2>"$TMP/$tag.stderr"
    rc=$?
    set -e
    [ $rc != 124 ] && [ $rc != 137 ] ||
        fail "dlopen_stress hung under $(basename "$lib") (killed after $((secs + 30)) s)"
    [ $rc = 0 ] || fail "dlopen_stress exited $rc under $(basename "$lib"): $(cat "$TMP/$tag.stdout") $(head -c 1000 "$TMP/$tag.stderr")"
    [ "$(cat "$TMP/$tag.stdout")" = ok ] ||
        fail "dlopen_stress printed '$(cat "$TMP/$tag.stdout")' under $(basename "$lib")"
    note "$(grep -v '^cgprof:' "$TMP/$tag.stderr" | head -n 1)"
    expect_profiles "$TMP/$tag"
}

secs=${CGPROF_STRESS_SECONDS:-60}
say "dlopen_stress ${secs}s, 4 threads, at 1000 Hz"
stress "$LIB" cpuSamplingHz:1000 "$secs" out
ok "survived ${secs}s of dlopen/malloc stress at 1000 Hz and wrote a profile"

hsecs=${CGPROF_HEAP_STRESS_SECONDS:-20}
say "the same ${hsecs}s under libcgprof-heap.so, sampling an allocation per 4 KiB"
stress "$HEAP_LIB" cpuSamplingHz:1000,heapSummaryEnabled:true,heapSamplingIntervalBytes:4096,samplingIntervalMs:200 \
    "$hsecs" heap
"$PYTHON" - "$TMP/heap" <<'PY' || fail "no heap samples in the stress run's profile"
import glob, gzip, json, sys
h = [json.load(gzip.open(f, "rt")).get("heapSummary") for f in glob.glob(sys.argv[1] + "/**/*.json.gz", recursive=True)]
h = [x for x in h if x]
assert h and h[0]["tracked"] and h[0]["samples"] > 10000, h and {k: v for k, v in h[0].items() if k not in ("series", "sites")}
print("   %d heap samples, %d lost" % (h[0]["samples"], h[0]["lostSamples"]))
PY
ok "survived ${hsecs}s of dlopen/malloc stress with heavy allocation sampling"
