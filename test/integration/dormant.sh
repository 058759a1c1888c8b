#!/bin/bash
# Never break the host, the simple cases. With no options, /bin/echo,
# printf and false print the same bytes, exit the same way and write
# nothing to stderr under the preload. With options the agent must refuse
# ('profilingGroupName:,,region::bogus'), the program still runs unchanged,
# stderr holds 1-3 lines that all start "cgprof:", and the dormant agent
# leaves no trace: same errno at main, threads, fds and SIGPROF disposition
# (workloads/dormant_probe), and no profile written.
source "$(dirname "$0")/lib.sh"
need_lib
need_workload dormant_probe

# run NAME cmd...: baseline and preloaded runs with CGPROF_OPTIONS as the
# caller exported it; compares stdout and exit status.
run_pair() {
    local name=$1; shift
    local b=$TMP/$name.base p=$TMP/$name.prof
    set +e
    env -u CGPROF_OPTIONS "$@" </dev/null >"$b.out" 2>"$b.err"; echo $? >"$b.rc"
    LD_PRELOAD=$LIB "$@" </dev/null >"$p.out" 2>"$p.err"; echo $? >"$p.rc"
    set -e
    cmp -s "$b.out" "$p.out" ||
        fail "$name: stdout differs under the preload: $(diff "$b.out" "$p.out" | head -n 10)"
    [ "$(cat "$b.rc")" = "$(cat "$p.rc")" ] ||
        fail "$name: exit status $(cat "$b.rc") without the preload, $(cat "$p.rc") with it"
    note "$name: same stdout, exit status $(cat "$p.rc")"
}

say "no options: output, exit status and an empty stderr"
unset CGPROF_OPTIONS
run_pair echo /bin/echo hi
[ "$(cat "$TMP/echo.prof.out")" = hi ] || fail "/bin/echo hi printed '$(cat "$TMP/echo.prof.out")'"
run_pair printf /usr/bin/printf 'a\tb %s %d\n' "x y" 42
run_pair false /bin/false
[ "$(cat "$TMP/false.prof.rc")" = 1 ] || fail "false exited $(cat "$TMP/false.prof.rc") under the preload, not 1"
for n in echo printf false; do
    [ ! -s "$TMP/$n.prof.err" ] || fail "$n: stderr not empty under the preload: $(head -c 500 "$TMP/$n.prof.err")"
done
ok "echo, printf and false are unchanged; stderr is empty"

say "bad options: the program runs, stderr has 1-3 'cgprof:' lines, the agent stays dormant"
export CGPROF_OPTIONS='profilingGroupName:,,region::bogus'
export CGPROF_OUTPUT_DIR=$TMP/bad-out
run_pair bad-echo /bin/echo hi
[ "$(cat "$TMP/bad-echo.prof.out")" = hi ] || fail "/bin/echo hi printed '$(cat "$TMP/bad-echo.prof.out")'"
[ "$(cat "$TMP/bad-echo.prof.rc")" = 0 ] || fail "/bin/echo hi exited $(cat "$TMP/bad-echo.prof.rc")"
lines=$(wc -l <"$TMP/bad-echo.prof.err")
[ "$lines" -ge 1 ] && [ "$lines" -le 3 ] ||
    fail "expected 1-3 lines on stderr for bad options, got $lines: $(head -c 1000 "$TMP/bad-echo.prof.err")"
if grep -v '^cgprof: ' "$TMP/bad-echo.prof.err" >/dev/null; then
    fail "a stderr line does not start with 'cgprof: ': $(grep -v '^cgprof: ' "$TMP/bad-echo.prof.err" | head -n 3)"
fi
[ -z "$(tail -c 1 "$TMP/bad-echo.prof.err")" ] || fail "the last stderr line has no newline"
note "stderr: $(tr '\n' '|' <"$TMP/bad-echo.prof.err")"
run_pair probe "$WL/dormant_probe"
note "$(tr '\n' ';' <"$TMP/probe.prof.out")"
[ "$(count_profiles "$TMP/bad-out")" = 0 ] ||
    fail "a dormant agent wrote profiles: $(profile_files "$TMP/bad-out" | head -n 3)"
ok "bad options leave echo and the probe (errno, threads, fds, SIGPROF) unchanged, no profile"
