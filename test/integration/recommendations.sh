#!/bin/bash
# Each recommendation rule fires on the workload built to trigger it, and no
# rule fires on the clean one (pure arithmetic). Every workload runs about
# 1.5 s under the preload at 200 Hz; `cgprof report --format
# recommendations` lists the fired rules as "  [id] title" lines, and
# `--format top` carries the same section after its tables. Also checks the
# parts of a fired rule: share, estimated yearly cost, evidence naming the
# matched frame and its caller, and a fix.
source "$(dirname "$0")/lib.sh"
need_lib
need_cli

# workload -> rule it must trigger (and a frame its evidence must name)
RULES="rec_lock:lock-contention:pthread_mutex_lock
rec_malloc:malloc-churn:malloc
rec_memcpy:memcpy-heavy:__mem
rec_syscall:syscall-storm:write
rec_regex:regex-compile:regcomp
rec_exceptions:exception-unwind:__cxa_throw
rec_logging:logging-format:printf
rec_compress:compression-level:deflate_slow"

fired() {  # report file -> fired rule ids, one per line
    sed -n 's/^  \[\([a-z-]*\)\] .*/\1/p' "$1"
}

run_wl() {  # workload -> $TMP/<workload>.rec (the recommendations report)
    local wl=$1
    need_workload "$wl"
    profiled "$TMP/$wl" "cpuSamplingHz:200" "$WL/$wl" 1.5 >/dev/null ||
        fail "$wl failed under the preload"
    expect_profiles "$TMP/$wl" >/dev/null
    "$CGPROF" report --format recommendations "$TMP/$wl" >"$TMP/$wl.rec" ||
        fail "cgprof report --format recommendations $TMP/$wl failed"
}

while IFS=: read -r wl rule frame; do
    say "$wl triggers $rule"
    run_wl "$wl"
    ids=$(fired "$TMP/$wl.rec" | tr '\n' ' ')
    fired "$TMP/$wl.rec" | grep -qx "$rule" || {
        cat "$TMP/$wl.rec" >&2
        "$CGPROF" report --top 8 "$TMP/$wl" | sed -n '/Top 8 frames by total/,$p' >&2
        fail "$wl: rule $rule did not fire (fired: ${ids:-none})"
    }
    # The rule's block: title line, numbers, evidence, fix.
    block=$(sed -n "/^  \[$rule\]/,/^    fix:/p" "$TMP/$wl.rec")
    share=$(echo "$block" | sed -n 's/^    \([0-9.]*\)% of the .* view.*/\1/p')
    cost=$(echo "$block" | sed -n 's/.*estimated \$\([0-9.]*\) per year.*/\1/p')
    [ -n "$share" ] && fcmp "$share" '>=' 5 || fail "$wl: $rule share '$share' is not >= 5 %"
    [ -n "$cost" ] && fcmp "$cost" '>' 0 || fail "$wl: $rule has no positive cost estimate"
    echo "$block" | grep -q "^    evidence: frames: .*$frame" ||
        fail "$wl: $rule evidence does not name $frame: $(echo "$block" | grep evidence)"
    echo "$block" | grep -q "called from: .*$wl:" ||
        fail "$wl: $rule evidence does not name a caller in $wl: $(echo "$block" | grep evidence)"
    echo "$block" | grep -q "^    fix: ." || fail "$wl: $rule has no fix"
    note "fired: $ids; $rule at $share %, ~\$$cost/year"
    ok "$wl: $rule"
done <<<"$RULES"

say "rec_clean triggers nothing"
run_wl rec_clean
ids=$(fired "$TMP/rec_clean.rec" | tr '\n' ' ')
[ -z "$ids" ] || { cat "$TMP/rec_clean.rec" >&2; fail "rec_clean fired: $ids"; }
grep -q "^  none: no rule reached its threshold" "$TMP/rec_clean.rec" ||
    fail "rec_clean: the report does not say that no rule fired"
ok "no rule fires on the clean workload"

say "--format top ends with the same recommendations"
"$CGPROF" report "$TMP/rec_lock" >"$TMP/top.txt" || fail "cgprof report (top) failed"
grep -q "^Recommendations " "$TMP/top.txt" || fail "--format top has no Recommendations section"
[ "$(fired "$TMP/top.txt")" = "$(fired "$TMP/rec_lock.rec")" ] ||
    fail "--format top lists other rules than --format recommendations"
ok "top and recommendations agree"
