#!/bin/bash
# Short-lived threads are sampled fairly: 1000 threads of ~2 ms CPU each at
# 1000 Hz. At least 90 % of the samples are in shortthreads:burn_short
# (inclusive), and the sample count is at least 90 % of CPU-seconds x Hz,
# where CPU-seconds is the CPU time of the workload's own threads as they
# measured it (an agent thread's time is left out). More than 120 % would
# mean samples are invented or counted twice.
source "$(dirname "$0")/lib.sh"
need_lib
need_cli
need_workload shortthreads

hz=1000
say "shortthreads: 1000 threads x ~2 ms, 4 at a time, at $hz Hz"
profiled "$TMP/out" "cpuSamplingHz:$hz" "$WL/shortthreads" 1000 4 2000 >"$TMP/stdout" ||
    fail "shortthreads failed under the preload: $(cat "$TMP/stdout")"
grep -qx ok "$TMP/stdout" || fail "shortthreads did not print ok: $(cat "$TMP/stdout")"
cpu=$(awk '$1 == "cpu_seconds" { print $2 }' "$TMP/stdout")
user=$(awk '$1 == "user_seconds" { print $2 }' "$TMP/stdout")
[ -n "$cpu" ] || fail "shortthreads printed no cpu_seconds"
expect_profiles "$TMP/out"
folded_report "$TMP/out" "$TMP/folded"
total=$(folded "$TMP/folded" total)
burn=$(folded "$TMP/folded" incl shortthreads:burn_short)
expected=$(awk -v c="$cpu" -v h=$hz 'BEGIN { printf "%d", c * h }')
note "threads used $cpu CPU-seconds ($user in user mode): expected ~$expected samples; got $total, $burn in burn_short"

[ "$total" -gt 0 ] || fail "no CPU samples at all"
fcmp "$burn" '>=' "$(awk -v t="$total" 'BEGIN { print 0.9 * t }')" || {
    show_top "$TMP/folded"
    fail "only $burn of $total samples ($(awk -v b="$burn" -v t="$total" 'BEGIN { printf "%.1f", 100 * b / t }') %) are in shortthreads:burn_short; want >= 90 %"
}
ok "$(awk -v b="$burn" -v t="$total" 'BEGIN { printf "%.1f", 100 * b / t }') % of samples in burn_short"
fcmp "$total" '>=' "$(awk -v e="$expected" 'BEGIN { print 0.9 * e }')" ||
    fail "$total samples for $cpu CPU-seconds at $hz Hz is $(awk -v s="$total" -v e="$expected" 'BEGIN { printf "%.1f", 100 * s / e }') % of the expected $expected; want >= 90 % (short threads lose samples)"
fcmp "$total" '<=' "$(awk -v e="$expected" 'BEGIN { print 1.2 * e }')" ||
    fail "$total samples for $cpu CPU-seconds at $hz Hz is more than 120 % of the expected $expected"
ok "sample count is $(awk -v s="$total" -v e="$expected" 'BEGIN { printf "%.1f", 100 * s / e }') % of CPU-seconds x Hz"
