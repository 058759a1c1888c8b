#!/bin/bash
# cgprof-exec, the container entrypoint wrapper: a real program run
# through it leaves its profile (under the wrapper's own pid: it execs),
# options merge CGPROF_TOOL_OPTIONS < CGPROF_OPTIONS < --options key by
# key, an existing LD_PRELOAD is kept after ours, signals and the exit
# status reach the program unchanged, and a static binary (or a script
# whose interpreter is static) gets one "cgprof:" line and still runs.
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
