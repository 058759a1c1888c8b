#!/bin/bash
# The Pyroscope sink against a stand-in of the ingest API
# (test/servers/pyroscope_server.py checks every request: the query
# parameters name/from/until/spyName/sampleRate/format, the multipart body,
# basic auth and X-Scope-OrgID). A real program (workloads/cpusplit) runs
# under the preload with sink pyroscope+file:
#   one      one interval: the request's query names the app with its tags,
#            from/until bracket the profile, and the pprof body, decoded by
#            protoc's reader (pprof_check.py), has the totals of the file
#            sink's copy of the same profile
#   outage   every ingest answered 503, then a hanging endpoint: the program
#            exits within the bound with unchanged output, the profiles are
#            spooled, and a later process delivers them: every profile the
#            file sink wrote reaches the stand-in exactly once
#   both     sink codeguru+pyroscope with Pyroscope hanging: CodeGuru (its
#            own stand-in) still receives every interval
source "$(dirname "$0")/lib.sh"
need_lib
need_cli
need_workload cpusplit
need_prog protoc
"$PYTHON" -c 'import google.protobuf, botocore' 2>/dev/null ||
    fail "python3-protobuf or botocore is missing (scripts/install-deps)"

PYRO=$ROOT/test/servers/pyroscope_server.py
mkdir -p "$TMP/pb"
protoc --proto_path="$ROOT/test/fixtures" --python_out="$TMP/pb" \
    "$ROOT/test/fixtures/profile.proto" || fail "protoc cannot compile profile.proto"

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
[ -n "${KEEP_TMP:-}" ] && trap - EXIT

# start SERVER STATE [args...]: sets PORT and SRV (pid).
start() {
    local server=$1 state=$2; shift 2
    mkdir -p "$state"
    "$PYTHON" "$server" --state "$state" "$@" >"$state/port" 2>"$state/server.err" &
    SRV=$!
    PIDS+=("$SRV")
    for _ in $(seq 100); do
        grep -q '^PORT ' "$state/port" 2>/dev/null && break
        sleep 0.05
    done
    PORT=$(awk '/^PORT/ {print $2}' "$state/port")
    [ -n "$PORT" ] || fail "a stand-in did not start: $(cat "$state/server.err")"
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
control() {  # control PORT SPEC
    "$PYTHON" -c 'import sys, urllib.request as u; u.urlopen(u.Request("http://127.0.0.1:%s/__control/ingest" % sys.argv[1], data=sys.argv[2].encode(), method="POST")).read()' "$1" "$2"
}

# run OUT OPTIONS SECONDS: cpusplit under the preload; "ok" and status 0
# required. Sets ELAPSED (ms).
run() {
    local out=$1 opts=$2 secs=$3 rc=0
    mkdir -p "$out"
    local t0=$(date +%s%N)
    LD_PRELOAD=$LIB CGPROF_OPTIONS="outputDir:$out,cpuSamplingHz:200,$opts" \
        "$WL/cpusplit" "$secs" 1 >"$out/stdout" 2>>"$out/stderr" || rc=$?
    ELAPSED=$(( ($(date +%s%N) - t0) / 1000000 ))
    [ $rc = 0 ] || fail "cpusplit exited $rc under the preload: $(tail -5 "$out/stderr")"
    [ "$(cat "$out/stdout")" = ok ] || fail "cpusplit printed '$(cat "$out/stdout")'"
}

# account OUT STATE...: the file sink's profiles in OUT against what the
# stand-ins delivered and what OUT's Pyroscope spool holds, matched by
# (name, from, until). Prints "files delivered spooled"; fails on an
# invalid request, a profile delivered twice, or one missing.
account() {
    "$PYTHON" - "$@" <<'EOF'
import collections, glob, gzip, json, os, sys
out, states = sys.argv[1], sys.argv[2:]
def key(path):
    d = json.loads(gzip.open(path).read())
    s, e = int(d["start"]), int(d["end"])
    return (s // 1000, (e + 999) // 1000 if (e + 999) // 1000 > s // 1000 else s // 1000 + 1)
files = collections.Counter(key(p) for p in glob.glob(os.path.join(out, "*.json.gz")))
spooled = collections.Counter(key(p) for p in
                              glob.glob(os.path.join(out, "pyroscope", "spool", "*", "*.json.gz")))
delivered, invalid = collections.Counter(), []
for st in states:
    path = os.path.join(st, "requests.jsonl")
    for line in open(path) if os.path.exists(path) else []:
        e = json.loads(line)
        if not e.get("valid", True):
            invalid.append(e.get("problems"))
        if e.get("delivered"):
            delivered[(int(e["query"]["from"]), int(e["query"]["until"]))] += 1
bad = []
if invalid:
    bad.append("requests failed the stand-in's checks: %s" % invalid[:3])
if any(n > 1 for n in delivered.values()):
    bad.append("delivered more than once: %s" % [k for k, n in delivered.items() if n > 1])
if delivered + spooled != files:
    bad.append("written %s != delivered %s + spooled %s" % (dict(files), dict(delivered), dict(spooled)))
if bad:
    print("; ".join(bad))
    sys.exit(1)
print(sum(files.values()), sum(delivered.values()), sum(spooled.values()))
EOF
}

say "one: one interval, checked field by field and decoded independently"
start "$PYRO" "$TMP/one-srv" --basic 'itest:s3cr:t/x' --tenant team-a
run "$TMP/one" "sink:pyroscope+file,endpoint:http://itest:s3cr%3At%2Fx@127.0.0.1:$PORT,applicationName:itest.app,tags:env=ci;region=eu-west-1,pyroscopeTenant:team-a" 1
stop "$SRV"
"$PYTHON" - "$TMP/one-srv/requests.jsonl" "$TMP/one" >"$TMP/one.check" <<'EOF' || fail "one: $(cat "$TMP/one.check")"
import glob, gzip, json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
files = glob.glob(sys.argv[2] + "/*.json.gz")
if len(reqs) != 1 or len(files) != 1:
    print("%d requests, %d files (expected one each)" % (len(reqs), len(files))); sys.exit(1)
r = reqs[0]
if not r.get("delivered"):
    print("not delivered: %s" % r.get("problems")); sys.exit(1)
q = r["query"]
doc = json.loads(gzip.open(files[0]).read())
want = {"name": "itest.app{env=ci,region=eu-west-1}", "spyName": "cgprof", "sampleRate": "200",
        "format": "pprof"}
for k, v in want.items():
    if q[k] != v:
        print("query %s=%r, expected %r" % (k, q[k], v)); sys.exit(1)
if not int(q["from"]) <= doc["start"] // 1000 < doc["end"] / 1000 <= int(q["until"]):
    print("from/until %s..%s do not bracket the profile %d..%d" % (q["from"], q["until"], doc["start"], doc["end"])); sys.exit(1)
if r["tenant"] != "team-a":
    print("X-Scope-OrgID %r" % r["tenant"]); sys.exit(1)
print(r["file"])
print(files[0])
EOF
PB=$(sed -n 1p "$TMP/one.check")
"$CGPROF" report --format json "$TMP/one" >"$TMP/one.json" || fail "one: cgprof report --format json failed"
"$CGPROF" report --format folded --counter latency "$TMP/one" >"$TMP/one.lat" || fail "one: folded latency failed"
"$CGPROF" report --format folded --counter RUNNABLE "$TMP/one" >"$TMP/one.cpu" || fail "one: folded cpu failed"
"$PYTHON" "$ROOT/test/integration/pprof_check.py" "$TMP/pb" "$PB" "$TMP/one.json" "$TMP/one.lat" \
    "$TMP/one.cpu" >"$TMP/one.pprof" || fail "one: the ingested pprof does not match the stored profile"
grep -q 'cpu 0.000 s' "$TMP/one.pprof" && fail "one: no CPU time in the ingested profile"
note "$(cat "$TMP/one.pprof")"
ok "one interval: query, auth, tenant and a pprof body with the stored profile's totals"

say "outage: 503 storm, then a hanging endpoint; later delivery"
OPTS="sink:pyroscope+file,applicationName:outage,reportingIntervalMs:1000,minimumTimeForReportingMs:1000"
start "$PYRO" "$TMP/out-srv" --ingest 503
run "$TMP/out" "$OPTS,endpoint:http://127.0.0.1:$PORT" 3
control "$PORT" hang
run "$TMP/out" "$OPTS,endpoint:http://127.0.0.1:$PORT" 1
# 1 s of work, the 2 s exit bound, start-up slack.
[ "$ELAPSED" -lt 4500 ] || fail "outage: the program took $ELAPSED ms to exit with Pyroscope hanging"
stop "$SRV"
r=$(account "$TMP/out" "$TMP/out-srv") || fail "outage: $r"
set -- $r
[ "$2" = 0 ] && [ "$3" -ge 3 ] || fail "outage: expected nothing delivered and the profiles spooled, got $r"
grep -q '^cgprof: pyroscope' "$TMP/out/stderr" || fail "outage: no log line about the failures"
bad=$(grep -v '^cgprof: ' "$TMP/out/stderr" || true)
[ -z "$bad" ] || fail "outage: stderr lines not from cgprof: $bad"
note "outage: profiles/delivered/spooled: $r (exit after ${ELAPSED} ms with the endpoint hanging)"
start "$PYRO" "$TMP/back-srv"
run "$TMP/out" "$OPTS,endpoint:http://127.0.0.1:$PORT" 1
stop "$SRV"
r=$(account "$TMP/out" "$TMP/out-srv" "$TMP/back-srv") || fail "outage: $r"
set -- $r
[ "$3" = 0 ] || fail "outage: $3 profile(s) still spooled after a run with the server up"
ok "outage survived: every profile delivered exactly once afterwards ($r)"

say "both: CodeGuru keeps receiving while Pyroscope hangs"
export AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
export AWS_EC2_METADATA_DISABLED=true HOME=$TMP
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL ECS_CONTAINER_METADATA_URI_V4 LAMBDA_TASK_ROOT
start "$PYRO" "$TMP/both-pyro" --ingest hang --hang-max 20
PPORT=$PORT
PSRV=$SRV
start "$ROOT/test/servers/codeguru_server.py" "$TMP/both-cg" --group Both
export AWS_ENDPOINT_URL_CODEGURUPROFILER=http://127.0.0.1:$PORT
run "$TMP/both" "sink:codeguru+pyroscope+file,profilingGroupName:Both,region:us-west-2,endpoint:http://127.0.0.1:$PPORT,reportingIntervalMs:1000,minimumTimeForReportingMs:1000" 3
unset AWS_ENDPOINT_URL_CODEGURUPROFILER
stop "$SRV"
stop "$PSRV"
"$PYTHON" - "$TMP/both" "$TMP/both-cg/requests.jsonl" <<'EOF' || fail "both: CodeGuru did not get every profile"
import glob, json, sys
files = glob.glob(sys.argv[1] + "/*.json.gz")
posts = [json.loads(l) for l in open(sys.argv[2])]
bad = [p for p in posts if not p.get("valid", True)]
got = sum(1 for p in posts if p.get("delivered"))
print("   %d profiles written, %d delivered to CodeGuru, %d invalid" % (len(files), got, len(bad)))
sys.exit(0 if got == len(files) and not bad and got >= 3 else 1)
EOF
ok "a hanging Pyroscope does not hold up CodeGuru deliveries"
