#!/bin/bash
# exec'd children inherit the preload by default (profileChildren:true) and
# do not with profileChildren:false. The chain: a bash that burns CPU itself
# (so it always has a profile), then runs sh (dash) -c "busy loop" as a
# forked and exec'd child, then a builtin (so bash does not exec sh in place).
source "$(dirname "$0")/lib.sh"
need_lib
need_cli
sh_mod=$(basename "$(readlink -f /bin/sh)")   # dash on Debian
chain='i=0; while ((i < 300000)); do ((i++)); done; sh -c "i=0; while [ \$i -lt 300000 ]; do i=\$((i+1)); done; echo child-done"; echo top-done'

# run_chain NAME OPTION: runs the chain; $TMP/NAME.by-pid.pids lists the
# pids that left profiles.
run_chain() {
    local name=$1 opt=$2
    profiled "$TMP/$name" "cpuSamplingHz:100,$opt" bash -c "$chain" >"$TMP/$name.out" 2>"$TMP/$name.err" ||
        fail "the bash chain failed with $opt: $(head -c 1000 "$TMP/$name.err")"
    [ "$(cat "$TMP/$name.out")" = "$(printf 'child-done\ntop-done')" ] ||
        fail "the bash chain printed '$(cat "$TMP/$name.out")' with $opt"
    expect_profiles "$TMP/$name"
    split_by_pid "$TMP/$name" "$TMP/$name.by-pid"
}

# module_samples NAME PID MODULE: samples of PID with a frame of MODULE
# (MODULE:function or MODULE+0xOFFSET: Debian's dash has no symbols).
module_samples() {
    folded_report "$TMP/$1.by-pid/$2" "$TMP/$1.$2.folded"
    folded "$TMP/$1.$2.folded" module "$3"
}

say "profileChildren:true: bash and its exec'd $sh_mod child both leave profiles"
run_chain on profileChildren:true
mapfile -t pids <"$TMP/on.by-pid.pids"
note "profiles from pids: ${pids[*]}"
[ "${#pids[@]}" -ge 2 ] || fail "expected profiles from bash and its $sh_mod child, got pids: ${pids[*]}"
got_bash=0; got_sh=0
for pid in "${pids[@]}"; do
    b=$(module_samples on "$pid" bash); s=$(module_samples on "$pid" "$sh_mod")
    note "pid $pid: $b samples with bash frames, $s with $sh_mod frames"
    [ "$b" -gt 0 ] && got_bash=1
    [ "$s" -gt 0 ] && got_sh=1
done
[ $got_bash = 1 ] || fail "no profile has bash frames"
[ $got_sh = 1 ] || fail "no profile has $sh_mod frames: the exec'd child was not profiled"
ok "the exec'd child inherited the preload"

say "profileChildren:false: only the top bash leaves a profile"
run_chain off profileChildren:false
mapfile -t pids <"$TMP/off.by-pid.pids"
note "profiles from pids: ${pids[*]}"
[ "${#pids[@]}" = 1 ] || fail "expected profiles from exactly one process (the top bash), got pids: ${pids[*]}"
b=$(module_samples off "${pids[0]}" bash); s=$(module_samples off "${pids[0]}" "$sh_mod")
[ "$b" -gt 0 ] || fail "the only profile has no bash frames"
[ "$s" = 0 ] || fail "the only profile has $s samples in $sh_mod: the child was profiled"
ok "the child ran without the preload"
