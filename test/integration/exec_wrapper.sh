#!/bin/bash
# cgprof-exec, the container entrypoint wrapper: a real program run
# through it leaves its profile (under the wrapper's own pid: it execs),
# options merge CGPROF_TOOL_OPTIONS < CGPROF_OPTIONS < --options key by
# key, an existing LD_PRELOAD is kept after ours, signals and the exit
# status reach the program unchanged, and a static binary (or a script
# whose interpreter is static) gets one "cgprof:" line and still runs.
# The heap summary: cgprof-exec preloads libcgprof-heap.so (next to
# libcgprof.so) exactly when the agent's own parser, run by `cgprof run`
# on the same options and environment, turns heapSummaryEnabled on (a
# table of spellings, precedence and invalid values, each compared with
# `cgprof run`'s choice); a real program then has libcgprof-heap.so mapped
# and a tracked heap summary; without libcgprof-heap.so beside it falls
# back to libcgprof.so (the agent's cgprof: line says why); an explicit
# CGPROF_LIB is kept as it is.
source "$(dirname "$0")/lib.sh"
need_lib
need_cli
need_workload cpusplit
need_prog gcc
EXEC=$ROOT/scripts/cgprof-exec
export CGPROF_LIB=$LIB
LIBM=$(gcc -print-file-name=libm.so.6)
[ -f "$LIBM" ] || LIBM=$(ldconfig -p | awk '/libm\.so\.6 / {print $NF; exit}')

say "a program run through cgprof-exec is profiled, under its own (the wrapper's) pid"
"$EXEC" --options "outputDir:$TMP/a,cpuSamplingHz:200" -- "$WL/cpusplit" 1 1 >"$TMP/a.out" 2>"$TMP/a.err" &
pid=$!
wait $pid || fail "cpusplit through cgprof-exec exited $?: $(cat "$TMP/a.err")"
[ "$(cat "$TMP/a.out")" = ok ] || fail "cpusplit printed '$(cat "$TMP/a.out")'"
expect_profiles "$TMP/a"
[ "$(profile_pid "$(profile_files "$TMP/a" | head -n 1)")" = "$pid" ] ||
    fail "the profile's processId is not the wrapper's pid $pid: cgprof-exec did not exec"
folded_report "$TMP/a" "$TMP/a.folded"
n=$(folded "$TMP/a.folded" module cpusplit)
[ "$n" -ge 20 ] || fail "only $n CPU samples in cpusplit's own code"
ok "profile of pid $pid with $n samples in cpusplit"

say "options: CGPROF_TOOL_OPTIONS < CGPROF_OPTIONS < --options; LD_PRELOAD kept"
env CGPROF_TOOL_OPTIONS="outputDir:$TMP/wrong,cpuSamplingHz:50,logLevel:error" \
    CGPROF_OPTIONS="'cpuSamplingHz:70,maxStackDepth:64'" LD_PRELOAD="$LIBM" \
    "$EXEC" --options "outputDir:$TMP/b,cpuSamplingHz:90" sh -c 'printf "%s\n%s\n" "$LD_PRELOAD" "$CGPROF_OPTIONS"' \
    >"$TMP/b.out" 2>"$TMP/b.err" || fail "sh through cgprof-exec failed: $(cat "$TMP/b.err")"
want_preload="$LIB:$LIBM"
want_opts="outputDir:$TMP/b,cpuSamplingHz:90,logLevel:error,maxStackDepth:64"
[ "$(sed -n 1p "$TMP/b.out")" = "$want_preload" ] ||
    fail "LD_PRELOAD is '$(sed -n 1p "$TMP/b.out")', expected '$want_preload'"
[ "$(sed -n 2p "$TMP/b.out")" = "$want_opts" ] ||
    fail "CGPROF_OPTIONS is '$(sed -n 2p "$TMP/b.out")', expected '$want_opts'"
[ ! -s "$TMP/b.err" ] || fail "merged options caused warnings: $(cat "$TMP/b.err")"
# A base image that sets only CGPROF_TOOL_OPTIONS profiles whatever runs.
CGPROF_TOOL_OPTIONS="outputDir:$TMP/c" "$EXEC" "$WL/cpusplit" 0.5 1 >/dev/null 2>"$TMP/c.err" ||
    fail "cpusplit with CGPROF_TOOL_OPTIONS alone failed: $(cat "$TMP/c.err")"
expect_profiles "$TMP/c"
# Running the wrapper twice (an image whose entrypoint wraps a wrapper)
# keeps one copy of the library.
CGPROF_TOOL_OPTIONS="outputDir:$TMP/c" "$EXEC" "$EXEC" sh -c 'echo "$LD_PRELOAD"' >"$TMP/d.out" 2>/dev/null
[ "$(cat "$TMP/d.out")" = "$LIB" ] || fail "nested cgprof-exec gave LD_PRELOAD '$(cat "$TMP/d.out")'"
ok "options merged key by key, LD_PRELOAD kept after ours, library once"

say "exit status and signals are the program's"
set +e
"$EXEC" --options "outputDir:$TMP/e" -- sh -c 'exit 7' 2>/dev/null; rc=$?
set -e
[ $rc = 7 ] || fail "exit status $rc through cgprof-exec, expected 7"
"$EXEC" --options "outputDir:$TMP/e" -- sleep 30 &
pid=$!
for _ in $(seq 100); do
    [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$(command -v sleep)")" ] && break
    sleep 0.02
done
[ "$(readlink "/proc/$pid/exe")" = "$(readlink -f "$(command -v sleep)")" ] ||
    fail "pid $pid is $(readlink "/proc/$pid/exe"), not sleep: the wrapper did not exec"
grep -q libcgprof "/proc/$pid/maps" || fail "sleep (pid $pid) has no libcgprof mapped"
kill -TERM $pid
set +e; wait $pid; rc=$?; set -e
[ $rc = 143 ] || fail "SIGTERM to the wrapper's pid gave status $rc, expected 143 (sleep killed by it)"
ok "exit 7 passed through; SIGTERM reached sleep itself (same pid, libcgprof mapped)"

say "static binaries: one cgprof: line, and the program still runs"
printf '#include <stdio.h>\nint main(void){puts("static-ok");return 0;}\n' >"$TMP/st.c"
gcc -static -O1 -o "$TMP/static_prog" "$TMP/st.c" 2>"$TMP/gcc.err" ||
    fail "cannot link a static test program (libc6-dev's libc.a): $(cat "$TMP/gcc.err")"
"$EXEC" --options "outputDir:$TMP/s" "$TMP/static_prog" >"$TMP/s.out" 2>"$TMP/s.err" ||
    fail "the static program failed through cgprof-exec"
[ "$(cat "$TMP/s.out")" = static-ok ] || fail "the static program printed '$(cat "$TMP/s.out")'"
[ "$(wc -l <"$TMP/s.err")" = 1 ] && grep -q "^cgprof: .*static_prog is statically linked" "$TMP/s.err" ||
    fail "expected one 'cgprof: ... statically linked' line, got: $(cat "$TMP/s.err")"
printf '#!%s\n' "$TMP/static_prog" >"$TMP/static_script"
chmod +x "$TMP/static_script"
"$EXEC" "$TMP/static_script" >"$TMP/ss.out" 2>"$TMP/ss.err" || fail "the static-interpreter script failed"
[ "$(cat "$TMP/ss.out")" = static-ok ] || fail "the script printed '$(cat "$TMP/ss.out")'"
grep -q "^cgprof: .*static_script runs under .*static_prog, which is statically linked" "$TMP/ss.err" ||
    fail "no 'cgprof:' line for a script with a static interpreter: $(cat "$TMP/ss.err")"
# Dynamic programs and scripts get no such line.
printf '#!/bin/sh\necho dyn-ok\n' >"$TMP/dyn_script"
chmod +x "$TMP/dyn_script"
"$EXEC" --options "outputDir:$TMP/s,logLevel:error" "$TMP/dyn_script" >"$TMP/ds.out" 2>"$TMP/ds.err"
[ "$(cat "$TMP/ds.out")" = dyn-ok ] && [ ! -s "$TMP/ds.err" ] ||
    fail "a dynamic script through cgprof-exec: out '$(cat "$TMP/ds.out")', err '$(cat "$TMP/ds.err")'"
ok "static binary and static interpreter named; dynamic ones silent"

say "the heap summary picks libcgprof-heap.so, as the agent's parser decides"
# An install prefix of our own: the script found its libraries at ../lib.
PFX=$TMP/pfx
mkdir -p "$PFX/bin" "$PFX/lib"
cp "$EXEC" "$PFX/bin/cgprof-exec"
cp "$LIB" "$HEAP_LIB" "$PFX/lib/"
PCORE=$PFX/lib/libcgprof.so PHEAP=$PFX/lib/libcgprof-heap.so
# choice OPTIONS ENV: the first LD_PRELOAD entry cgprof-exec gives a
# program for CGPROF_OPTIONS=OPTIONS and
# AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED=ENV (unset when empty).
choice() {
    env -u CGPROF_LIB ${2:+AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED="$2"} CGPROF_OPTIONS="$1" \
        "$PFX/bin/cgprof-exec" sh -c 'echo "${LD_PRELOAD%%:*}"' 2>/dev/null
}
# parser OPTIONS ENV: the library `cgprof run` (config/ itself) picks, as
# a file name, or "invalid" when it refuses the options.
parser() {
    local out rc
    set +e
    out=$(env -u CGPROF_LIB ${2:+AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED="$2"} \
          "$CGPROF" run --no-report --options "$1" -- \
          sh -c 'echo "${LD_PRELOAD%%:*}"' 2>/dev/null)
    rc=$?
    set -e
    case $rc in 0) echo "${out##*/}" ;; 2) echo invalid ;; *) fail "cgprof run exited $rc for '$1'" ;; esac
}
n=0 bad=0
# options | AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED | library
while IFS='|' read -r o e want; do
    [ -n "$want" ] || continue
    want=${want// /}; e=${e// /}
    o=${o%"${o##*[! ]}"}   # the table's own padding, not the options'
    case $want in heap) wpath=$PHEAP ;; core) wpath=$PCORE ;; esac
    got=$(choice "$o" "$e")
    [ "$got" = "$wpath" ] ||
        fail "cgprof-exec with options [$o] env [$e]: preloaded $got, expected $wpath"
    p=$(parser "$o" "$e")
    # Options the agent refuses leave profiling off: either library will
    # do; the table says which one the wrapper takes.
    if [ "$p" = invalid ]; then
        bad=$((bad + 1))
    else
        [ "$p" = "${wpath##*/}" ] ||
            fail "options [$o] env [$e]: the agent's parser (cgprof run) picks $p, cgprof-exec ${got##*/}"
    fi
    n=$((n + 1))
done <<'TABLE'
heapSummaryEnabled:true                               |       | heap
heapSummaryEnabled:TRUE                               |       | heap
 ' HeapSummaryEnabled : True ,, cpuSamplingHz:50, '   |       | heap
"cpuSamplingHz:50,heapsummaryenabled:tRUE"            |       | heap
heapSummaryEnabled:false                              |       | core
heapSummaryEnabled:true,HEAPSUMMARYENABLED:false      |       | core
heapSummaryEnabled:false,heapSummaryEnabled:true      |       | heap
cpuSamplingHz:50                                      |       | core
                                                      |       | core
                                                      | True  | heap
cpuSamplingHz:50                                      | true  | heap
heapSummaryEnabled:false                              | true  | core
heapSummaryEnabled:true                               | false | heap
                                                      | false | core
                                                      | yes   | core
heapSummaryEnabled:yes                                |       | core
'heapSummaryEnabled:true                              |       | core
heapSummaryEnabledX:true                              |       | core
heapSummaryEnabled                                    | true  | heap
TABLE
[ "$n" = 19 ] && [ "$bad" = 4 ] || fail "$n table rows ran, $bad refused by the agent (expected 19, 4)"
# Merged sources: the parser sees the merge, whose later key wins.
got=$(env -u CGPROF_LIB CGPROF_TOOL_OPTIONS=heapSummaryEnabled:true \
      "$PFX/bin/cgprof-exec" --options HEAPSUMMARYENABLED:false sh -c 'echo "$LD_PRELOAD"' 2>/dev/null)
[ "$got" = "$PCORE" ] || fail "CGPROF_TOOL_OPTIONS true then --options false (other case) preloaded $got"
got=$(env -u CGPROF_LIB CGPROF_OPTIONS=heapSummaryEnabled:false \
      "$PFX/bin/cgprof-exec" --options heapSummaryEnabled:true sh -c 'echo "$LD_PRELOAD"' 2>/dev/null)
[ "$got" = "$PHEAP" ] || fail "--options heapSummaryEnabled:true over CGPROF_OPTIONS preloaded $got"
ok "$((n - bad)) option/environment cases agree with the agent's parser ($bad it refuses); merged sources too"

# heap_tracked DIR: heapSummary.tracked of DIR's profiles ("none" without).
heap_tracked() {
    "$PYTHON" - "$1" <<'PY'
import glob, gzip, json, sys
hs = [d["heapSummary"] for d in (json.load(gzip.open(f, "rt")) for f in
      sorted(glob.glob(sys.argv[1] + "/**/*.json.gz", recursive=True))) if "heapSummary" in d]
print("none" if not hs else "true" if all(h["tracked"] for h in hs) else "false")
PY
}
HOPTS=heapSummaryEnabled:true,samplingIntervalMs:100,heapSamplingIntervalBytes:65536
# mapped_libs OPTIONS: the cgprof libraries a sleep run through the
# installed cgprof-exec with OPTIONS has mapped, one per line.
mapped_libs() {
    env -u CGPROF_LIB "$PFX/bin/cgprof-exec" --options "$1" -- sleep 30 &
    local pid=$!
    for _ in $(seq 100); do
        grep -q libcgprof "/proc/$pid/maps" 2>/dev/null && break
        sleep 0.02
    done
    grep -o '/[^ ]*libcgprof[^ ]*' "/proc/$pid/maps" | sort -u
    kill -TERM $pid; set +e; wait $pid; set -e
}
# A running program: the library mapped is libcgprof-heap.so, and only it.
maps=$(mapped_libs "outputDir:$TMP/hs,$HOPTS")
[ "$maps" = "$PHEAP" ] || fail "sleep with heapSummaryEnabled:true maps '$maps', expected only $PHEAP"
maps=$(mapped_libs "outputDir:$TMP/hs0")
[ "$maps" = "$PCORE" ] || fail "sleep without the heap summary maps '$maps', expected only $PCORE"
# A profile: allocation sites tracked, and no cgprof: line.
env -u CGPROF_LIB "$PFX/bin/cgprof-exec" --options "outputDir:$TMP/h1,$HOPTS" -- "$WL/cpusplit" 1 1 \
    >/dev/null 2>"$TMP/h1.err" || fail "cpusplit with the heap summary failed: $(cat "$TMP/h1.err")"
[ "$(heap_tracked "$TMP/h1")" = true ] || fail "the heap summary through cgprof-exec is not tracked: $(heap_tracked "$TMP/h1")"
! grep -q '^cgprof:' "$TMP/h1.err" || fail "cgprof: lines with libcgprof-heap.so: $(cat "$TMP/h1.err")"
# The same through the environment variable alone.
env -u CGPROF_LIB AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED=true \
    "$PFX/bin/cgprof-exec" --options "outputDir:$TMP/h2,samplingIntervalMs:100" -- "$WL/cpusplit" 1 1 \
    >/dev/null 2>"$TMP/h2.err" || fail "cpusplit with AWS_..._HEAP_SUMMARY_ENABLED failed: $(cat "$TMP/h2.err")"
[ "$(heap_tracked "$TMP/h2")" = true ] || fail "AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED=true: heap summary $(heap_tracked "$TMP/h2")"
ok "libcgprof-heap.so mapped and allocation sites tracked when asked; libcgprof.so otherwise"

# An existing libcgprof-heap.so in LD_PRELOAD gives way to the library chosen.
got=$(env -u CGPROF_LIB LD_PRELOAD="$HEAP_LIB:$LIBM" "$PFX/bin/cgprof-exec" sh -c 'echo "$LD_PRELOAD"' 2>/dev/null)
[ "$got" = "$PCORE:$LIBM" ] || fail "LD_PRELOAD with libcgprof-heap.so became '$got', expected '$PCORE:$LIBM'"
# No libcgprof-heap.so beside libcgprof.so: libcgprof.so, and the agent says why.
rm "$PHEAP"
env -u CGPROF_LIB "$PFX/bin/cgprof-exec" --options "outputDir:$TMP/h3,$HOPTS" -- \
    sh -c 'echo "$LD_PRELOAD"; exec "$0" 1 1' "$WL/cpusplit" >"$TMP/h3.out" 2>"$TMP/h3.err" ||
    fail "cpusplit without libcgprof-heap.so failed: $(cat "$TMP/h3.err")"
[ "$(sed -n 1p "$TMP/h3.out")" = "$PCORE" ] || fail "fallback preloaded '$(sed -n 1p "$TMP/h3.out")', expected $PCORE"
grep -q "^cgprof: .*allocation sites need the allocation interposers of libcgprof-heap.so" "$TMP/h3.err" ||
    fail "no cgprof: line naming libcgprof-heap.so: $(cat "$TMP/h3.err")"
[ "$(heap_tracked "$TMP/h3")" = false ] || fail "fallback heap summary: $(heap_tracked "$TMP/h3")"
cp "$HEAP_LIB" "$PHEAP"
# An explicit CGPROF_LIB is used as it is, either way.
got=$(CGPROF_LIB=$PCORE "$PFX/bin/cgprof-exec" --options heapSummaryEnabled:true sh -c 'echo "$LD_PRELOAD"' 2>/dev/null)
[ "$got" = "$PCORE" ] || fail "CGPROF_LIB=$PCORE with the heap summary preloaded '$got'"
got=$(CGPROF_LIB=$PHEAP "$PFX/bin/cgprof-exec" --options cpuSamplingHz:50 sh -c 'echo "$LD_PRELOAD"' 2>/dev/null)
[ "$got" = "$PHEAP" ] || fail "CGPROF_LIB=$PHEAP without the heap summary preloaded '$got'"
"$PFX/bin/cgprof-exec" --help >"$TMP/help.out" 2>&1 || fail "cgprof-exec --help exited $?"
grep -q "libcgprof-heap.so" "$TMP/help.out" || fail "cgprof-exec --help does not explain the heap library"
ok "fallback to libcgprof.so with the agent's line; CGPROF_LIB kept; --help explains"
