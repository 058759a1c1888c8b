#!/bin/bash
# `cgprof report --format pprof` writes a gzip'd pprof protobuf that an
# independent reader decodes: protoc compiles test/fixtures/profile.proto
# (written from the public spec) for python3-protobuf, and pprof_check.py
# compares samples, totals per sample type and per function with the
# `--format json` and `--format folded` views of the same profiles. Runs on
# a real profile (threads under the preload) and on a stored profile with
# every thread state and its own weights.
source "$(dirname "$0")/lib.sh"
need_lib
need_cli
need_workload rec_lock
need_workload rec_exceptions
need_prog protoc
"$PYTHON" -c 'import google.protobuf' 2>/dev/null ||
    fail "python3-protobuf is not installed (scripts/install-deps)"

mkdir -p "$TMP/pb"
protoc --proto_path="$ROOT/test/fixtures" --python_out="$TMP/pb" \
    "$ROOT/test/fixtures/profile.proto" || fail "protoc cannot compile profile.proto"

# check NAME DIR|FILE: all four views of the same input, then the reader.
check() {
    local name=$1 in=$2
    "$CGPROF" report --format pprof -o "$TMP/$name.pb.gz" "$in" ||
        fail "$name: cgprof report --format pprof failed"
    gzip -t "$TMP/$name.pb.gz" || fail "$name: output is not gzip"
    "$CGPROF" report --format json "$in" >"$TMP/$name.json" || fail "$name: --format json failed"
    "$CGPROF" report --format folded --counter latency "$in" >"$TMP/$name.lat" ||
        fail "$name: --format folded --counter latency failed"
    "$CGPROF" report --format folded --counter RUNNABLE "$in" >"$TMP/$name.cpu" ||
        fail "$name: --format folded --counter RUNNABLE failed"
    "$PYTHON" "$ROOT/test/integration/pprof_check.py" "$TMP/pb" "$TMP/$name.pb.gz" \
        "$TMP/$name.json" "$TMP/$name.lat" "$TMP/$name.cpu" >"$TMP/$name.check" ||
        fail "$name: the decoded pprof profile does not match (see above)"
    note "$name: $(cat "$TMP/$name.check")"
}

say "a real profile: rec_lock (4 threads) under the preload at 200 Hz"
profiled "$TMP/out" "cpuSamplingHz:200" "$WL/rec_lock" 1 >/dev/null ||
    fail "rec_lock failed under the preload"
expect_profiles "$TMP/out"
check real "$TMP/out"
grep -q 'cpu 0.000 s' "$TMP/real.check" && fail "real: no CPU time in the pprof profile"
ok "pprof export of a real profile decodes and matches json/folded"

say "a real profile with deep C++ stacks: rec_exceptions under the preload"
profiled "$TMP/out-cxx" "cpuSamplingHz:200" "$WL/rec_exceptions" 1 >/dev/null ||
    fail "rec_exceptions failed under the preload"
check cxx "$TMP/out-cxx"
ok "C++ frames (names with '::') keep their module and function parts"

say "a stored profile with every thread state, its own weights and a bare frame"
cat >"$TMP/in-states.json" <<'JSON'
{"start": 1796637600000, "end": 1796637660000,
 "agentMetadata": {"sampleWeights": {"RUNNABLE": 250, "BLOCKED": 2, "NATIVE": 2,
   "WAITING": 2, "TIMED_WAITING": 2, "IDLE": 2}, "durationInMs": 60000},
 "callgraph": {"children": {
   "app:main": {"counts": {"RUNNABLE": 3}, "children": {
     "app:work": {"counts": {"RUNNABLE": 1000, "NATIVE": 4}, "children": {
       "libc.so.6:pthread_mutex_lock": {"counts": {"BLOCKED": 17, "RUNNABLE": 9}},
       "libz.so.1:deflate": {"counts": {"RUNNABLE": 250}},
       "libstdc++.so.6:std::ostream::operator<<(int)": {"counts": {"RUNNABLE": 5}}}},
     "app:wait": {"counts": {"WAITING": 30, "TIMED_WAITING": 8, "IDLE": 600}},
     "app+0x1f00": {"counts": {"RUNNABLE": 7}}}},
   "[unknown]": {"counts": {"RUNNABLE": 2}}}}}
JSON
check states "$TMP/in-states.json"
"$PYTHON" - "$TMP/pb" "$TMP/states.pb.gz" <<'PY' || fail "states: expected values differ"
import gzip, sys
sys.path.insert(0, sys.argv[1])
import profile_pb2
p = profile_pb2.Profile()
p.ParseFromString(gzip.open(sys.argv[2]).read())
S = p.string_table
tot = [sum(s.value[i] for s in p.sample) for i in range(3)]
# cpu: 1276 RUNNABLE counts at 250 Hz; wall adds (4+17+30+8)/2 s; IDLE is left out.
want = [1276 * 4000000, 1276 * 4000000 + 59 * 500000000, 1276 + 59]
assert tot == want, (tot, want)
assert p.period == 4000000 and p.duration_nanos == 60 * 10**9
names = {S[f.name] for f in p.function}
assert {"main", "work", "pthread_mutex_lock", "deflate", "std::ostream::operator<<(int)",
        "app+0x1f00", "[unknown]"} <= names, names
mods = sorted(S[m.filename] for m in p.mapping)
assert mods == ["app", "libc.so.6", "libstdc++.so.6", "libz.so.1"], mods
PY
ok "every thread state is accounted: cpu = RUNNABLE, wall and samples = all but IDLE"

say "an unknown format is a usage error"
set +e
"$CGPROF" report --format protobuf "$TMP/in-states.json" >/dev/null 2>"$TMP/usage.err"; rc=$?
set -e
[ $rc = 2 ] || fail "--format protobuf exited $rc, expected 2"
grep -q pprof "$TMP/usage.err" || fail "the usage error does not list pprof: $(cat "$TMP/usage.err")"
ok "usage error lists pprof"
