#!/bin/bash
# The cgprof command's own behaviour:
#   upload     a fault run (CodeGuru answering 503 to every post) leaves its
#              profiles in the spool; `cgprof upload` ships them to a fresh
#              CodeGuru stand-in (which checks paths, tokens, headers, bodies
#              and SigV4): every profile arrives exactly once, under its
#              spooled token, and the spool is emptied; a second upload sends
#              nothing; with the service down the profiles stay (exit 1).
#              The same for a Pyroscope spool with --sink pyroscope; on a
#              terminal a progress bar is drawn.
#   run        `cgprof run` profiles a command, keeps its stdout and exit
#              status, and summarizes this run's profiles; --output-dir
#              goes inside quoted --options (their cpuSamplingHz is kept)
#              and replaces their outputDir; it preloads
#              libcgprof-heap.so exactly when the options (or
#              AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED) turn the heap
#              summary on (the heap summary is then tracked), libcgprof.so
#              otherwise or when it is missing, CGPROF_LIB as given, and
#              drops other libcgprof entries from LD_PRELOAD
#   errors     --help of every command, usage errors (exit 2), service
#              errors with their code and no credentials (exit 1)
source "$(dirname "$0")/lib.sh"
need_lib
need_cli
need_workload cpusplit
"$PYTHON" -c 'import botocore' 2>/dev/null || fail "botocore is missing (scripts/install-deps)"

export AWS_ACCESS_KEY_ID=AKIDEXAMPLE
export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
export AWS_SESSION_TOKEN=UploadSessionToken/+=
export AWS_EC2_METADATA_DISABLED=true HOME=$TMP
unset AWS_PROFILE AWS_REGION AWS_DEFAULT_REGION AWS_ENDPOINT_URL AWS_ENDPOINT_URL_CODEGURUPROFILER \
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI AWS_CONTAINER_CREDENTIALS_FULL_URI \
      AWS_WEB_IDENTITY_TOKEN_FILE ECS_CONTAINER_METADATA_URI_V4 LAMBDA_TASK_ROOT

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

start() {  # start SERVER STATE [args...]: sets PORT, SRV
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
free_port() {
    "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
CG=$ROOT/test/servers/codeguru_server.py
PYRO=$ROOT/test/servers/pyroscope_server.py

say "upload: a CodeGuru spool from a 503 storm, shipped by cgprof upload"
OUT=$TMP/fault
start "$CG" "$TMP/fault-srv" --group UpGroup --post 503
LD_PRELOAD=$LIB CGPROF_OPTIONS="profilingGroupName:UpGroup,region:us-west-2,endpoint:http://127.0.0.1:$PORT,outputDir:$OUT,sink:codeguru+file,reportingIntervalMs:1000,minimumTimeForReportingMs:1000" \
    "$WL/cpusplit" 3 1 >"$TMP/fault.out" 2>"$TMP/fault.err" || fail "cpusplit failed: $(tail -3 "$TMP/fault.err")"
stop "$SRV"
SPOOL=$OUT/spool/UpGroup
n=$(ls "$SPOOL" | grep -c '\.json\.gz$' || true)
files=$(ls "$OUT" | grep -c '\.json\.gz$' || true)
[ "$n" -ge 3 ] && [ "$n" = "$files" ] || fail "the fault run spooled $n of $files profiles"
ls "$SPOOL" | sed -n 's/^[0-9]*-\(.*\)\.json\.gz$/\1/p' | sort >"$TMP/spooled.tokens"
note "the fault run left $n profiles in $SPOOL"

PORT=$(free_port)
set +e
"$CGPROF" upload "$OUT/spool" --region us-west-2 --endpoint-url "http://127.0.0.1:$PORT" \
    >"$TMP/down.out" 2>"$TMP/down.err"; rc=$?
set -e
[ $rc = 1 ] || fail "upload with the service down exited $rc, expected 1"
grep -q "left in" "$TMP/down.err" || fail "upload with the service down said: $(cat "$TMP/down.err")"
[ "$(ls "$SPOOL" | grep -c '\.json\.gz$')" = "$n" ] || fail "upload with the service down lost profiles"
note "service down: exit 1, all $n kept ($(head -1 "$TMP/down.err"))"

start "$CG" "$TMP/up-srv" --group UpGroup
"$CGPROF" upload "$OUT/spool" --region us-west-2 --endpoint-url "http://127.0.0.1:$PORT" \
    >"$TMP/up.out" 2>"$TMP/up.err" || fail "cgprof upload failed: $(cat "$TMP/up.err")"
grep -q "UpGroup: $n delivered, 0 rejected, 0 left" "$TMP/up.out" || fail "upload said: $(cat "$TMP/up.out")"
"$CGPROF" upload "$OUT/spool" --region us-west-2 --endpoint-url "http://127.0.0.1:$PORT" \
    --output json >"$TMP/again.out" 2>&1 || fail "a second upload failed: $(cat "$TMP/again.out")"
grep -q '"delivered": 0' "$TMP/again.out" || fail "a second upload said: $(cat "$TMP/again.out")"
stop "$SRV"
"$PYTHON" - "$TMP/up-srv/requests.jsonl" "$TMP/spooled.tokens" <<'EOF' || fail "upload: the stand-in did not get every profile exactly once"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
want = sorted(open(sys.argv[2]).read().split())
bad = [r for r in reqs if not r.get("valid", True)]
got = sorted(r["token"] for r in reqs if r.get("delivered"))
print("   %d requests, %d delivered, %d invalid" % (len(reqs), len(got), len(bad)))
if bad:
    print("   invalid: %s" % bad[:2])
sys.exit(0 if got == want and not bad and len(reqs) == len(want) else 1)
EOF
[ -z "$(ls "$SPOOL" | grep '\.json\.gz$')" ] || fail "the spool is not empty after the upload"
ok "cgprof upload: every spooled profile delivered exactly once under its token; spool emptied"

say "upload: a Pyroscope spool, with a progress bar on a terminal"
POUT=$TMP/pfault
PORT=$(free_port)   # nothing listens: everything goes to the spool
LD_PRELOAD=$LIB CGPROF_OPTIONS="sink:pyroscope+file,applicationName:upapp,endpoint:http://127.0.0.1:$PORT,outputDir:$POUT,reportingIntervalMs:1000,minimumTimeForReportingMs:1000" \
    "$WL/cpusplit" 2 1 >/dev/null 2>"$TMP/pfault.err" || fail "cpusplit failed under the Pyroscope sink"
pn=$(ls "$POUT/pyroscope/spool/upapp" | grep -c '\.json\.gz$' || true)
[ "$pn" -ge 2 ] || fail "the Pyroscope fault run spooled $pn profiles"
start "$PYRO" "$TMP/pup-srv" --tenant t-9
cmd="'$CGPROF' upload --sink pyroscope '$POUT/pyroscope/spool' --endpoint-url http://127.0.0.1:$PORT --options pyroscopeTenant:t-9,tags:env=ci"
if command -v script >/dev/null 2>&1; then
    script -qec "$cmd" /dev/null >"$TMP/pup.out" 2>&1 || fail "cgprof upload --sink pyroscope failed: $(cat "$TMP/pup.out")"
    grep -q "\[#*\] $pn/$pn" "$TMP/pup.out" || fail "no progress bar on a terminal: $(cat -v "$TMP/pup.out" | head -5)"
    note "progress bar drawn on a terminal"
else
    eval "$cmd" >"$TMP/pup.out" 2>&1 || fail "cgprof upload --sink pyroscope failed: $(cat "$TMP/pup.out")"
fi
stop "$SRV"
"$PYTHON" - "$TMP/pup-srv/requests.jsonl" "$pn" <<'EOF' || fail "Pyroscope upload: not every profile exactly once"
import collections, json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
keys = collections.Counter((r["query"]["from"], r["query"]["until"]) for r in reqs if r.get("delivered"))
bad = [r.get("problems") for r in reqs if not r.get("valid", True)]
names = {r["query"]["name"] for r in reqs if r.get("delivered")}
print("   %d requests, %d delivered, names %s, invalid %s" % (len(reqs), sum(keys.values()), names, bad[:2]))
sys.exit(0 if sum(keys.values()) == int(sys.argv[2]) == len(keys) == len(reqs) and not bad
         and names == {"upapp{env=ci}"} else 1)
EOF
[ -z "$(ls "$POUT/pyroscope/spool/upapp" | grep '\.json\.gz$')" ] || fail "the Pyroscope spool is not empty"
ok "cgprof upload --sink pyroscope: every spooled profile delivered exactly once"

say "run: a command under the preload, then its summary"
set +e
"$CGPROF" run --options cpuSamplingHz:200 --output-dir "$TMP/run" -- "$WL/cpusplit" 1 1 \
    >"$TMP/run.out" 2>"$TMP/run.err"; rc=$?
set -e
[ $rc = 0 ] || fail "cgprof run exited $rc: $(cat "$TMP/run.err")"
[ "$(cat "$TMP/run.out")" = ok ] || fail "the command's stdout changed: $(cat "$TMP/run.out")"
grep -q "profile(s) of this run in $TMP/run" "$TMP/run.err" || fail "no profile path: $(cat "$TMP/run.err")"
grep -q "burn_a" "$TMP/run.err" || fail "the summary lacks the workload's hot function: $(cat "$TMP/run.err")"
"$CGPROF" run --output-dir "$TMP/run2" --html "$TMP/run2.html" -- "$WL/cpusplit" 1 1 >/dev/null \
    2>"$TMP/run2.err" || fail "cgprof run --html failed: $(cat "$TMP/run2.err")"
grep -q "cgprof-data" "$TMP/run2.html" || fail "cgprof run --html wrote no report"
set +e
"$CGPROF" run --output-dir "$TMP/run3" -- sh -c 'exit 7' 2>/dev/null; rc7=$?
"$CGPROF" run -- "$TMP/no-such-program" 2>"$TMP/run4.err"; rc127=$?
set -e
[ $rc7 = 7 ] || fail "cgprof run did not pass on exit status 7 (got $rc7)"
[ $rc127 = 127 ] || fail "cgprof run of a missing program exited $rc127, expected 127"
ok "cgprof run: stdout and exit status kept, this run's profiles summarized"

say "run: quoted --options with --output-dir"
# rweights DIR: the RUNNABLE sample weight of every profile in DIR, one a line.
rweights() {
    "$PYTHON" - "$1" <<'PY'
import glob, gzip, json, sys
for f in sorted(glob.glob(sys.argv[1] + "/**/*.json.gz", recursive=True)):
    v = json.load(gzip.open(f, "rt"))["agentMetadata"]["sampleWeights"].get("RUNNABLE")
    print("none" if v is None else "%g" % v)
PY
}
# The parser strips one pair of outer quotes; --output-dir must land inside them.
"$CGPROF" run --no-report --output-dir "$TMP/runq" --options "'cpuSamplingHz:250'" -- \
    "$WL/cpusplit" 1 1 >/dev/null 2>"$TMP/runq.err" || fail "cgprof run with quoted options failed: $(cat "$TMP/runq.err")"
grep -q "profile(s) of this run in $TMP/runq" "$TMP/runq.err" || fail "quoted options: no profile in $TMP/runq: $(cat "$TMP/runq.err")"
w=$(rweights "$TMP/runq" | sort -u)
[ "$w" = 250 ] || fail "quoted options: RUNNABLE weights '$w', expected cpuSamplingHz 250: $(cat "$TMP/runq.err")"
# An outputDir inside quoted options gives way to --output-dir, without a warning.
"$CGPROF" run --no-report --output-dir "$TMP/runq2" \
    --options " \"OUTPUTDIR: $TMP/runq-not , cpuSamplingHz:250\" " -- \
    "$WL/cpusplit" 1 1 >/dev/null 2>"$TMP/runq2.err" || fail "cgprof run with quoted outputDir failed: $(cat "$TMP/runq2.err")"
w=$(rweights "$TMP/runq2" | sort -u)
[ "$w" = 250 ] || fail "quoted outputDir: RUNNABLE weights '$w' in $TMP/runq2, expected 250: $(cat "$TMP/runq2.err")"
[ ! -e "$TMP/runq-not" ] || fail "the options' outputDir was used instead of --output-dir"
grep -q "more than once" "$TMP/runq2.err" && fail "--output-dir warned about a repeated outputDir: $(cat "$TMP/runq2.err")"
# An unclosed quote stays an error (exit 2) and the command does not run.
set +e
"$CGPROF" run --output-dir "$TMP/runq3" --options "'cpuSamplingHz:250" -- sh -c 'echo ran' \
    >"$TMP/runq3.out" 2>"$TMP/runq3.err"; rc=$?
set -e
[ $rc = 2 ] || fail "an unclosed quote in --options exited $rc, expected 2: $(cat "$TMP/runq3.err")"
[ ! -s "$TMP/runq3.out" ] || fail "the command ran despite an unclosed quote in --options"
grep -q "never closes" "$TMP/runq3.err" || fail "no line about the unclosed quote: $(cat "$TMP/runq3.err")"
ok "cgprof run: --output-dir inside quoted --options (cpuSamplingHz kept), replacing their outputDir; an unclosed quote still refused"

say "run: libcgprof-heap.so when the options turn the heap summary on"
# rchoice [VAR=VALUE...] -- RUN-OPTIONS...: the LD_PRELOAD cgprof run gives.
rchoice() {
    local vars=()
    while [ "$1" != -- ]; do vars+=("$1"); shift; done
    shift
    env -u CGPROF_LIB "${vars[@]}" "$CGPROF" run --no-report "$@" -- sh -c 'echo "$LD_PRELOAD"' 2>/dev/null
}
[ "$(rchoice -- --options heapSummaryEnabled:true)" = "$HEAP_LIB" ] ||
    fail "cgprof run --options heapSummaryEnabled:true preloaded $(rchoice -- --options heapSummaryEnabled:true)"
[ "$(rchoice CGPROF_OPTIONS=" HEAPSUMMARYENABLED : True " --)" = "$HEAP_LIB" ] ||
    fail "CGPROF_OPTIONS with heapSummaryEnabled:true did not preload $HEAP_LIB"
[ "$(rchoice AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED=true --)" = "$HEAP_LIB" ] ||
    fail "AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED=true did not preload $HEAP_LIB"
[ "$(rchoice AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED=true -- --options heapSummaryEnabled:false)" = "$LIB" ] ||
    fail "heapSummaryEnabled:false did not win over AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED=true"
[ "$(rchoice --)" = "$LIB" ] || fail "without the heap summary cgprof run preloaded $(rchoice --)"
[ "$(rchoice CGPROF_LIB="$LIB" -- --options heapSummaryEnabled:true)" = "$LIB" ] ||
    fail "an explicit CGPROF_LIB was not kept as given"
# Other copies of cgprof in LD_PRELOAD give way; other libraries stay, in order.
LIBM=$(gcc -print-file-name=libm.so.6 2>/dev/null || true)
[ -f "$LIBM" ] || LIBM=$(ldconfig -p | awk '/libm\.so\.6 / {print $NF; exit}')
got=$(rchoice LD_PRELOAD="$HEAP_LIB $LIBM:/x/libcgprof.so" --)
[ "$got" = "$LIB:$LIBM" ] || fail "LD_PRELOAD '$HEAP_LIB $LIBM:/x/libcgprof.so' became '$got', expected '$LIB:$LIBM'"
# A real program: libcgprof-heap.so's interposers track its heap.
"$CGPROF" run --no-report --output-dir "$TMP/runheap" \
    --options heapSummaryEnabled:true,samplingIntervalMs:100,heapSamplingIntervalBytes:65536 -- \
    "$WL/cpusplit" 1 1 >/dev/null 2>"$TMP/runheap.err" || fail "cgprof run with the heap summary failed: $(cat "$TMP/runheap.err")"
grep -q "allocation sites need" "$TMP/runheap.err" && fail "the agent says libcgprof-heap.so is missing: $(cat "$TMP/runheap.err")"
"$PYTHON" - "$TMP/runheap" <<'PY' || fail "cgprof run's heap summary is not tracked"
import glob, gzip, json, sys
hs = [d["heapSummary"] for d in (json.load(gzip.open(f, "rt")) for f in
      glob.glob(sys.argv[1] + "/**/*.json.gz", recursive=True)) if "heapSummary" in d]
print("   heap summaries (tracked, allocator):", [(h["tracked"], h["allocator"]) for h in hs])
sys.exit(0 if hs and all(h["tracked"] for h in hs) else 1)
PY
# A cgprof with only libcgprof.so beside it: that one, and the agent says why.
mkdir -p "$TMP/lonely"
cp "$CGPROF" "$LIB" "$TMP/lonely/"
env -u CGPROF_LIB "$TMP/lonely/cgprof" run --no-report --output-dir "$TMP/lonely/out" \
    --options heapSummaryEnabled:true -- sh -c 'echo "$LD_PRELOAD"' >"$TMP/lonely.out" 2>"$TMP/lonely.err" ||
    fail "cgprof run without libcgprof-heap.so failed: $(cat "$TMP/lonely.err")"
[ "$(cat "$TMP/lonely.out")" = "$TMP/lonely/libcgprof.so" ] ||
    fail "without libcgprof-heap.so cgprof run preloaded '$(cat "$TMP/lonely.out")'"
grep -q "^cgprof: .*allocation sites need the allocation interposers of libcgprof-heap.so" "$TMP/lonely.err" ||
    fail "no cgprof: line naming libcgprof-heap.so: $(cat "$TMP/lonely.err")"
"$CGPROF" run --help | grep -q "libcgprof-heap.so" || fail "cgprof run --help does not explain the heap library"
ok "cgprof run: libcgprof-heap.so as the options say (tracked), libcgprof.so otherwise or when missing, CGPROF_LIB kept"

say "errors: help, usage, service errors, credentials"
for c in run upload groups permissions profile recommendations; do
    "$CGPROF" $c --help >"$TMP/help.$c" || fail "cgprof $c --help failed"
    for s in NAME SYNOPSIS DESCRIPTION OPTIONS EXAMPLES "EXIT STATUS"; do
        grep -q "^$s" "$TMP/help.$c" || fail "cgprof $c --help lacks $s"
    done
    cmp -s "$TMP/help.$c" <("$CGPROF" help $c) || fail "cgprof help $c differs from --help"
done
usage() {  # usage ARGS...: exit 2 and a "see 'cgprof help" hint
    set +e
    "$CGPROF" "$@" >/dev/null 2>"$TMP/usage.err"; local rc=$?
    set -e
    [ $rc = 2 ] || fail "cgprof $* exited $rc, expected 2"
    grep -q "see 'cgprof help" "$TMP/usage.err" || fail "cgprof $*: $(cat "$TMP/usage.err")"
}
usage groups
usage groups frob x
usage groups create
usage groups create bad/name
usage groups create g --compute-platform Lambda
usage groups describe g --tag a=b
usage groups list --output yaml
usage groups list --region nowhere
usage permissions grant g
usage permissions grant g --principal not-an-arn
usage profile get g --from -1h
usage profile get g --from -1h --to -2h
usage recommendations g --from x --to now
usage upload --options x
usage run
start "$CG" "$TMP/err-srv" --group Other
set +e
"$CGPROF" groups describe Missing --region us-west-2 --endpoint-url "http://127.0.0.1:$PORT" \
    >/dev/null 2>"$TMP/svc.err"; rc=$?
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN \
    "$CGPROF" groups list --region us-west-2 --endpoint-url "http://127.0.0.1:$PORT" \
    >/dev/null 2>"$TMP/cred.err"; rc2=$?
set -e
stop "$SRV"
[ $rc = 1 ] || fail "a service error exited $rc, expected 1"
grep -q "DescribeProfilingGroup: UnknownOperationException (HTTP 404)" "$TMP/svc.err" ||
    fail "the service error was reported as: $(cat "$TMP/svc.err")"
[ $rc2 = 1 ] || fail "no credentials exited $rc2, expected 1"
grep -q "no AWS credentials" "$TMP/cred.err" || fail "no credentials was reported as: $(cat "$TMP/cred.err")"
ok "help for every command, usage errors exit 2, service errors and missing credentials exit 1"
