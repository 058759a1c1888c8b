#!/bin/bash
# fork without exec: forker's parent burns in parent_work, forks 3 children
# that burn ~1 s in child_work and exit(0). Each of the 4 processes writes
# its own profile (4 distinct pids, each in its file name); each child's
# profile has forker:child_work and no parent_work (a fresh profile, not a
# copy of the parent's), and the parent's has forker:parent_work.
source "$(dirname "$0")/lib.sh"
need_lib
need_cli
need_workload forker

say "forker with 3 children at 100 Hz"
profiled "$TMP/out" cpuSamplingHz:100 "$WL/forker" 3 1 >"$TMP/stdout" 2>"$TMP/stderr" ||
    fail "forker failed under the preload: $(cat "$TMP/stdout") $(head -c 1000 "$TMP/stderr")"
[ "$(cat "$TMP/stdout")" = ok ] || fail "forker printed '$(cat "$TMP/stdout")'"
expect_profiles "$TMP/out"
split_by_pid "$TMP/out" "$TMP/by-pid"
mapfile -t pids <"$TMP/by-pid.pids"
note "profiles from pids: ${pids[*]}"
[ "${#pids[@]}" = 4 ] || fail "expected profiles from 4 processes (parent + 3 children), got ${#pids[@]}: ${pids[*]}"
for f in $(profile_files "$TMP/out"); do
    pid=$(profile_pid "$f")
    [[ $(basename "$f") == *"$pid"* ]] || fail "profile $(basename "$f") of pid $pid does not have the pid in its name"
done

parents=0; children=0
for pid in "${pids[@]}"; do
    folded_report "$TMP/by-pid/$pid" "$TMP/f.$pid"
    c=$(folded "$TMP/f.$pid" incl forker:child_work)
    p=$(folded "$TMP/f.$pid" incl forker:parent_work)
    note "pid $pid: $c samples in child_work, $p in parent_work"
    if [ "$c" -gt 0 ]; then
        children=$((children + 1))
        [ "$p" = 0 ] || { show_top "$TMP/f.$pid"; fail "child $pid's profile also has $p samples of parent_work (not a fresh profile)"; }
        [ "$c" -ge 30 ] || fail "child $pid has only $c samples in child_work for ~1 CPU-second at 100 Hz"
    elif [ "$p" -gt 0 ]; then
        parents=$((parents + 1))
        [ "$p" -ge 50 ] || fail "the parent has only $p samples in parent_work for ~1.3 CPU-seconds at 100 Hz"
    else
        show_top "$TMP/f.$pid"
        fail "pid $pid's profile has neither child_work nor parent_work"
    fi
done
[ $children = 3 ] && [ $parents = 1 ] ||
    fail "expected 3 child profiles and 1 parent profile, got $children and $parents"
ok "4 processes, 4 profiles: 3 with child_work only, 1 with parent_work"
