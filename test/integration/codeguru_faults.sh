#!/bin/bash
# Nothing lost on the way to CodeGuru. A real program (workloads/cpusplit)
# runs under the preload with sink codeguru+file, reporting every second
# over TLS to the stand-in of test/servers/codeguru_server.py, which checks
# every request (paths, tokens, headers, body, SigV4 by botocore). Faults:
#   down      no server for the first three reports, then it comes up
#   storm503  every post answered 503 until the script turns to ok
#   storm429  a burst of 429 ThrottlingException
#   hang      posts accepted and never answered: the program still exits
#             within the documented bound (2 s) and the profiles are spooled
#   reset     connections reset mid-body
# Each run ends with every profile (one per file-sink file) delivered
# exactly once or still in the spool; a later process with the service up
# then delivers the spooled ones, each under its original token, and
# empties the spool. Last, a full spool disk (a 64 KiB tmpfs when we may
# mount one, else a spool path that cannot be created): the program's
# output and exit status are unchanged and the loss is logged.
source "$(dirname "$0")/lib.sh"
need_lib
need_workload cpusplit
need_prog openssl
"$PYTHON" -c 'import botocore' 2>/dev/null || fail "botocore is missing for $PYTHON (scripts/install-deps)"

SERVER=$ROOT/test/servers/codeguru_server.py
CERTS=$TMP/certs
"$PYTHON" "$ROOT/test/servers/tls_server.py" gencerts "$CERTS" >/dev/null ||
    fail "cannot make test certificates"
export AWS_ACCESS_KEY_ID=AKIDEXAMPLE
export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
export AWS_SESSION_TOKEN=FaultSessionToken/+=
export AWS_EC2_METADATA_DISABLED=true
export HOME=$TMP
unset AWS_PROFILE AWS_CONTAINER_CREDENTIALS_RELATIVE_URI AWS_CONTAINER_CREDENTIALS_FULL_URI \
      AWS_WEB_IDENTITY_TOKEN_FILE ECS_CONTAINER_METADATA_URI_V4 AWS_ENDPOINT_URL \
      AWS_ENDPOINT_URL_CODEGURUPROFILER AWS_LAMBDA_FUNCTION_NAME LAMBDA_TASK_ROOT

SRV_PID=
MOUNTED=
cleanup() {
    [ -z "$SRV_PID" ] || kill "$SRV_PID" 2>/dev/null || true
    [ -z "$MOUNTED" ] || umount "$MOUNTED" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
    "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_server STATE PORT [args...]: the stand-in on PORT (0 = any); sets PORT.
start_server() {
    local state=$1 port=$2; shift 2
    mkdir -p "$state"
    "$PYTHON" "$SERVER" --tls "$CERTS/server.crt" "$CERTS/server.key" --port "$port" \
        --state "$state" "$@" >"$state/port" 2>"$state/server.err" &
    SRV_PID=$!
    for _ in $(seq 100); do
        grep -q '^PORT ' "$state/port" 2>/dev/null && break
        sleep 0.05
    done
    PORT=$(awk '/^PORT/ {print $2}' "$state/port")
    [ -n "$PORT" ] || fail "the stand-in did not start: $(cat "$state/server.err")"
}
stop_server() {
    if [ -n "$SRV_PID" ]; then
        kill "$SRV_PID" 2>/dev/null || true
        wait "$SRV_PID" 2>/dev/null || true
    fi
    SRV_PID=
}
control() {  # control OP SPEC: replaces the stand-in's script for OP
    "$PYTHON" - "$PORT" "$CERTS/ca.crt" "$1" "$2" <<'EOF'
import ssl, sys, urllib.request
port, ca, op, spec = sys.argv[1:]
ctx = ssl.create_default_context(cafile=ca)
urllib.request.urlopen(urllib.request.Request("https://127.0.0.1:%s/__control/%s" % (port, op),
                       data=spec.encode(), method="POST"), context=ctx).read()
EOF
}

OPTS_BASE="profilingGroupName:FaultGroup,region:us-west-2,caBundle:$CERTS/ca.crt"
OPTS_BASE="$OPTS_BASE,reportingIntervalMs:1000,minimumTimeForReportingMs:1000"

# run_prog OUT PORT SECONDS [extra options]: cpusplit under the preload;
# stdout must be "ok", the exit status 0. Sets ELAPSED (ms).
run_prog() {
    local out=$1 port=$2 secs=$3 extra=${4:-}
    mkdir -p "$out"
    local t0=$(date +%s%N) rc=0
    LD_PRELOAD=$LIB CGPROF_OPTIONS="$OPTS_BASE,endpoint:https://127.0.0.1:$port,outputDir:$out,sink:codeguru+file${extra:+,$extra}" \
        "$WL/cpusplit" "$secs" 1 >"$out/stdout" 2>>"$out/stderr" || rc=$?
    ELAPSED=$(( ($(date +%s%N) - t0) / 1000000 ))
    [ $rc = 0 ] || fail "cpusplit exited $rc under the preload: $(tail -5 "$out/stderr")"
    [ "$(cat "$out/stdout")" = ok ] || fail "cpusplit printed '$(cat "$out/stdout")'"
}

# account OUT STATE...: every profile written by the file sink in OUT is
# either delivered once (in the stand-ins' logs) or spooled under OUT;
# no token is delivered twice or both delivered and spooled; every request
# passed the stand-in's checks. Prints "files delivered spooled".
account() {
    local out=$1; shift
    "$PYTHON" - "$out" "$@" <<'EOF'
import glob, json, os, sys
out, states = sys.argv[1], sys.argv[2:]
files = glob.glob(os.path.join(out, "*.json.gz"))
spooled = [os.path.basename(p)[14:-len(".json.gz")]
           for p in glob.glob(os.path.join(out, "spool", "FaultGroup", "*.json.gz"))]
delivered, invalid = {}, []
for st in states:
    path = os.path.join(st, "requests.jsonl")
    if not os.path.exists(path):
        continue
    for line in open(path):
        e = json.loads(line)
        if not e.get("valid", True):
            invalid.append(e)
        if e.get("delivered"):
            delivered[e["token"]] = delivered.get(e["token"], 0) + 1
bad = []
if invalid:
    bad.append("requests failed the stand-in's checks: %s" % invalid[:3])
twice = {t: n for t, n in delivered.items() if n > 1}
if twice:
    bad.append("delivered more than once: %s" % twice)
both = set(spooled) & set(delivered)
if both:
    bad.append("both delivered and spooled: %s" % both)
if len(delivered) + len(spooled) != len(files):
    bad.append("%d profiles written, %d delivered + %d spooled" % (len(files), len(delivered), len(spooled)))
if bad:
    print("; ".join(bad))
    sys.exit(1)
print(len(files), len(delivered), len(spooled))
EOF
}

# drain OUT STATE_DIR_PREFIX: a later process with the service up delivers
# what OUT's spool holds, under the same tokens.
drain() {
    local out=$1 name=$2
    local before
    before=$(ls "$out/spool/FaultGroup" 2>/dev/null | grep -c 'json.gz$' || true)
    start_server "$TMP/$name-drain" 0
    run_prog "$out" "$PORT" 1
    stop_server
    local left
    left=$(ls "$out/spool/FaultGroup" 2>/dev/null | grep -c 'json.gz$' || true)
    [ "$left" = 0 ] || fail "$name: $left profile(s) still spooled after a run with the service up"
    note "$name: a later process delivered the $before spooled profile(s)"
}

say "down: no server for the first three reports, then back"
OUT=$TMP/down
PORT=$(free_port)
DOWN_PORT=$PORT
( sleep 3.3; exec "$PYTHON" "$SERVER" --tls "$CERTS/server.crt" "$CERTS/server.key" \
    --port "$DOWN_PORT" --state "$TMP/down-srv" >/dev/null 2>"$TMP/down-srv.err" ) &
LATE_PID=$!
mkdir -p "$TMP/down-srv"
run_prog "$OUT" "$DOWN_PORT" 5
kill "$LATE_PID" 2>/dev/null; wait "$LATE_PID" 2>/dev/null || true
r=$(account "$OUT" "$TMP/down-srv") || fail "down: $r"
note "down: profiles/delivered/spooled: $r"
set -- $r
[ "$2" -ge 1 ] || fail "down: nothing was delivered once the server came up"
drain "$OUT" down
r=$(account "$OUT" "$TMP/down-srv" "$TMP/down-drain") || fail "down: $r"
ok "down then back: every profile delivered exactly once ($r)"

say "storm503: every post 503, then the service recovers"
OUT=$TMP/s503
start_server "$TMP/s503-srv" 0 --post 503
( sleep 2.5; control post ok ) &
CTL=$!
run_prog "$OUT" "$PORT" 4
wait $CTL || fail "storm503: cannot reach the stand-in's control endpoint"
stop_server
r=$(account "$OUT" "$TMP/s503-srv") || fail "storm503: $r"
note "storm503: profiles/delivered/spooled: $r"
grep -c '"action": "503"' "$TMP/s503-srv/requests.jsonl" >/dev/null || fail "storm503: no 503 was served"
drain "$OUT" s503
r=$(account "$OUT" "$TMP/s503-srv" "$TMP/s503-drain") || fail "storm503: $r"
ok "503 storm: every profile delivered exactly once ($r)"

say "storm429: a burst of throttling"
OUT=$TMP/s429
start_server "$TMP/s429-srv" 0 --post "429x7,ok"
run_prog "$OUT" "$PORT" 3
stop_server
drain "$OUT" s429
r=$(account "$OUT" "$TMP/s429-srv" "$TMP/s429-drain") || fail "storm429: $r"
n429=$(grep -c '"action": "429"' "$TMP/s429-srv/requests.jsonl" || true)
[ "$n429" -ge 3 ] || fail "storm429: only $n429 throttled requests"
ok "429 storm ($n429 throttled requests): every profile delivered exactly once ($r)"

say "hang: posts accepted and never answered"
OUT=$TMP/hang
start_server "$TMP/hang-srv" 0 --post hang --hang-max 30
run_prog "$OUT" "$PORT" 2
stop_server
# 2 s of work, the exit bound of 2 s, and start-up slack.
[ "$ELAPSED" -lt 5000 ] || fail "hang: the program took ${ELAPSED} ms to exit (bound: 2 s after its work)"
note "hang: the program exited after ${ELAPSED} ms"
r=$(account "$OUT" "$TMP/hang-srv") || fail "hang: $r"
note "hang: profiles/delivered/spooled: $r"
set -- $r
[ "$3" -ge 1 ] || fail "hang: nothing was spooled"
grep -q 'kept in the spool' "$OUT/stderr" || fail "hang: no log line about the spooled profiles"
drain "$OUT" hang
r=$(account "$OUT" "$TMP/hang-srv" "$TMP/hang-drain") || fail "hang: $r"
ok "hanging endpoint: exit within the bound, then every profile delivered exactly once ($r)"

say "reset: connections reset mid-body"
OUT=$TMP/reset
start_server "$TMP/reset-srv" 0 --post "reset,ok,reset,reset,ok,reset,ok"
run_prog "$OUT" "$PORT" 3
stop_server
drain "$OUT" reset
r=$(account "$OUT" "$TMP/reset-srv" "$TMP/reset-drain") || fail "reset: $r"
nreset=$(grep -c '"action": "reset"' "$TMP/reset-srv/requests.jsonl" || true)
[ "$nreset" -ge 2 ] || fail "reset: only $nreset resets happened"
ok "resets mid-body ($nreset): every profile delivered exactly once ($r)"

say "full spool disk: the program runs on"
FULL=$TMP/full
mkdir -p "$FULL"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=64k tmpfs "$FULL" 2>/dev/null; then
    MOUNTED=$FULL
    # fill it up, so the first spool write already fails
    dd if=/dev/urandom of="$FULL/filler" bs=4k count=64 2>/dev/null || true
    note "64 KiB tmpfs at $FULL, filled"
else
    : >"$FULL/spool"      # a file where the spool directory must go
    note "no tmpfs (not root or mount refused): the spool path cannot be created"
fi
PORT=$(free_port)       # nothing listens: everything must go to the spool
LD_PRELOAD=$LIB CGPROF_OPTIONS="$OPTS_BASE,endpoint:https://127.0.0.1:$PORT,outputDir:$FULL,sink:codeguru" \
    "$WL/cpusplit" 2 1 >"$TMP/full.out" 2>"$TMP/full.err" || fail "full: cpusplit failed: $(tail -5 "$TMP/full.err")"
[ "$(cat "$TMP/full.out")" = ok ] || fail "full: cpusplit printed '$(cat "$TMP/full.out")'"
grep -q 'spool: cannot store' "$TMP/full.err" || fail "full: no log line about the full spool: $(head -5 "$TMP/full.err")"
bad=$(grep -v '^cgprof: ' "$TMP/full.err" || true)
[ -z "$bad" ] || fail "full: stderr lines not from cgprof: $bad"
ok "full spool disk: output and exit status unchanged, the failure logged"
