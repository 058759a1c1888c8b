#!/bin/bash
# The kill switch (killSwitchPath, /var/tmp/killProfiler by default): present
# at start, the agent never starts (one cgprof: line, no profile); created
# while a program runs, sampling stops within seconds (checked every second)
# and what was collected before is kept. The program is unaffected either way.
source "$(dirname "$0")/lib.sh"
need_lib
need_cli
need_workload cpusplit
ks=$TMP/killProfiler

say "kill switch present at start: the agent stays off"
touch "$ks"
out=$(profiled "$TMP/a" "killSwitchPath:$ks" "$WL/cpusplit" 1 1 2>"$TMP/a.err")
[ "$out" = ok ] || fail "the program printed '$out'"
grep -q "^cgprof: kill switch $ks found; not profiling" "$TMP/a.err" ||
    fail "no kill-switch line: $(cat "$TMP/a.err")"
[ "$(count_profiles "$TMP/a")" = 0 ] || fail "a profile was written despite the kill switch"
ok "no profile, one line: $(head -1 "$TMP/a.err")"

say "kill switch created while running: sampling stops, earlier samples kept"
rm -f "$ks"
profiled "$TMP/b" "killSwitchPath:$ks,cpuSamplingHz:100" "$WL/cpusplit" 4 1 >"$TMP/b.out" 2>"$TMP/b.err" &
pid=$!
sleep 1.5
touch "$ks"
wait $pid || fail "the program failed: $(cat "$TMP/b.err")"
[ "$(cat "$TMP/b.out")" = ok ] || fail "the program printed '$(cat "$TMP/b.out")'"
grep -q "kill switch $ks found; profiling stopped" "$TMP/b.err" || fail "no stop line: $(cat "$TMP/b.err")"
folded_report "$TMP/b" "$TMP/b.folded"
n=$(folded "$TMP/b.folded" grep 'cpusplit:worker')
# 4 s of CPU at 100 Hz would be ~400 samples; stopped after ~1.5-2.5 s.
[ "$n" -ge 80 ] && [ "$n" -le 300 ] || fail "$n samples (expected ~150-250: stopped within a second or so)"
ok "$n samples kept from before the switch (a full run has ~400)"
