#!/bin/bash
# AWS Lambda: the layer zip has the documented layout, and its exec
# wrapper, run the way Lambda runs AWS_LAMBDA_EXEC_WRAPPER (wrapper, then
# the runtime's bootstrap script, which execs the runtime), profiles a
# handler across several invocations against a local stand-in of the
# Runtime API (test/servers/lambda_runtime_api.py) that freezes the process
# between invocations (SIGSTOP) and kills it at the end. Checked: reports
# come after 1 s of active time, durationInMs excludes the frozen gaps, the
# default group aws-lambda-<function> is used, and fleet info and
# ConfigureAgent metadata say Lambda (CodeGuru stand-in over TLS). Before
# that, the wrapper's library choice: libcgprof-heap.so when CGPROF_OPTIONS
# or AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED turn the heap summary on
# (a Python runtime then has it mapped and a tracked heap summary),
# libcgprof.so otherwise or when the layer lacks it, CGPROF_LIB as given.
source "$(dirname "$0")/lib.sh"
need_lib
need_prog unzip
need_prog openssl
"$PYTHON" -c 'import botocore' 2>/dev/null || fail "botocore is missing for $PYTHON (scripts/install-deps)"
ZIP=$BUILD_DIR/lambda-layer.zip
[ -f "$ZIP" ] || fail "$ZIP is missing; build it: make BUILD=$BUILD lambda-layer"

say "layer layout"
unzip -Z1 "$ZIP" | sort >"$TMP/layout"
for f in cgprof-lambda-exec lib/libcgprof.so lib/libcgprof-heap.so; do
    grep -qx "$f" "$TMP/layout" || fail "the layer lacks $f; it has: $(tr '\n' ' ' <"$TMP/layout")"
done
OPT=$TMP/opt
unzip -q "$ZIP" -d "$OPT"
[ -x "$OPT/cgprof-lambda-exec" ] || fail "cgprof-lambda-exec is not executable once unzipped"
cmp -s "$OPT/lib/libcgprof.so" "$LIB" || fail "the layer's lib/libcgprof.so is not $LIB"
cmp -s "$OPT/lib/libcgprof-heap.so" "$HEAP_LIB" || fail "the layer's lib/libcgprof-heap.so is not $HEAP_LIB"
ok "layer: /opt/cgprof-lambda-exec, /opt/lib/libcgprof.so and /opt/lib/libcgprof-heap.so"

say "the layer's wrapper preloads libcgprof-heap.so when the function asks for the heap summary"
# lchoice [VAR=VALUE...]: the LD_PRELOAD cgprof-lambda-exec gives the runtime.
lchoice() { env -u CGPROF_LIB "$@" "$OPT/cgprof-lambda-exec" sh -c 'echo "$LD_PRELOAD"' 2>/dev/null; }
LCORE=$OPT/lib/libcgprof.so LHEAP=$OPT/lib/libcgprof-heap.so
[ "$(lchoice)" = "$LCORE" ] || fail "no heap summary: LD_PRELOAD=$(lchoice)"
[ "$(lchoice CGPROF_OPTIONS=heapSummaryEnabled:true)" = "$LHEAP" ] ||
    fail "CGPROF_OPTIONS=heapSummaryEnabled:true: LD_PRELOAD=$(lchoice CGPROF_OPTIONS=heapSummaryEnabled:true)"
[ "$(lchoice AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED=TRUE)" = "$LHEAP" ] ||
    fail "AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED=TRUE: LD_PRELOAD=$(lchoice AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED=TRUE)"
[ "$(lchoice AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED=true CGPROF_OPTIONS="'HeapSummaryEnabled : false'")" = "$LCORE" ] ||
    fail "heapSummaryEnabled:false in CGPROF_OPTIONS did not win over AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED=true"
[ "$(lchoice AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED=yes)" = "$LCORE" ] ||
    fail "AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED=yes (refused by the agent) chose the heap library"
[ "$(lchoice CGPROF_LIB="$LCORE" CGPROF_OPTIONS=heapSummaryEnabled:true)" = "$LCORE" ] ||
    fail "an explicit CGPROF_LIB was not kept as given"
# A real runtime process: libcgprof-heap.so's interposers track the heap.
env -u CGPROF_LIB AWS_CODEGURU_PROFILER_HEAP_SUMMARY_ENABLED=true \
    CGPROF_OPTIONS="outputDir:$TMP/lheap,samplingIntervalMs:100,heapSamplingIntervalBytes:65536" \
    "$OPT/cgprof-lambda-exec" "$PYTHON" -c '
import time
keep = [bytearray(4096) for _ in range(20000)]
t = time.time()
while time.time() - t < 1.2:
    keep.append(bytes(1000)); keep = keep[-30000:]
print(open("/proc/self/maps").read().count("libcgprof-heap.so") > 0)
' >"$TMP/lheap.out" 2>"$TMP/lheap.err" || fail "python3 through cgprof-lambda-exec failed: $(cat "$TMP/lheap.err")"
[ "$(cat "$TMP/lheap.out")" = True ] || fail "libcgprof-heap.so is not mapped in the runtime process"
"$PYTHON" - "$TMP/lheap" <<'PY' || fail "the runtime's heap summary is not tracked"
import glob, gzip, json, sys
hs = [d["heapSummary"] for d in (json.load(gzip.open(f, "rt")) for f in
      glob.glob(sys.argv[1] + "/**/*.json.gz", recursive=True)) if "heapSummary" in d]
print("   heap summaries (tracked, allocator):", [(h["tracked"], h["allocator"]) for h in hs])
sys.exit(0 if hs and all(h["tracked"] for h in hs) else 1)
PY
# A layer without libcgprof-heap.so: libcgprof.so.
cp -r "$OPT" "$TMP/opt-core"
rm "$TMP/opt-core/lib/libcgprof-heap.so"
got=$(env -u CGPROF_LIB CGPROF_OPTIONS=heapSummaryEnabled:true "$TMP/opt-core/cgprof-lambda-exec" sh -c 'echo "$LD_PRELOAD"' 2>/dev/null)
[ "$got" = "$TMP/opt-core/lib/libcgprof.so" ] || fail "a layer without libcgprof-heap.so: LD_PRELOAD=$got"
ok "libcgprof-heap.so for heapSummaryEnabled:true or the AWS_ variable (tracked), libcgprof.so otherwise"

# The CodeGuru stand-in, for the group the agent picks by itself.
CERTS=$TMP/certs
"$PYTHON" "$ROOT/test/servers/tls_server.py" gencerts "$CERTS" >/dev/null || fail "cannot make test certificates"
FN=cgprof-test-fn
CG_STATE=$TMP/cg
mkdir -p "$CG_STATE"
"$PYTHON" "$ROOT/test/servers/codeguru_server.py" --tls "$CERTS/server.crt" "$CERTS/server.key" \
    --group "aws-lambda-$FN" --state "$CG_STATE" >"$CG_STATE/port" 2>"$CG_STATE/err" &
CG_PID=$!
RT_PID=
RUNTIME_PID=
cleanup() {
    [ -z "$RUNTIME_PID" ] || { kill -CONT "$RUNTIME_PID"; kill -KILL "$RUNTIME_PID"; } 2>/dev/null || true
    [ -z "$RT_PID" ] || kill "$RT_PID" 2>/dev/null || true
    kill "$CG_PID" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

# The Runtime API stand-in: 4 invocations, 1.2 s frozen between them.
N=4 GAP_MS=1200 CPU_MS=600
"$PYTHON" "$ROOT/test/servers/lambda_runtime_api.py" --pidfile "$TMP/runtime.pid" \
    --invocations $N --gap-ms $GAP_MS --log "$TMP/lambda.jsonl" >"$TMP/rt.port" 2>"$TMP/rt.err" &
RT_PID=$!
for _ in $(seq 100); do
    grep -q '^PORT ' "$TMP/rt.port" 2>/dev/null && grep -q '^PORT ' "$CG_STATE/port" 2>/dev/null && break
    sleep 0.05
done
RT_PORT=$(awk '/^PORT/ {print $2}' "$TMP/rt.port")
CG_PORT=$(awk '/^PORT/ {print $2}' "$CG_STATE/port")
[ -n "$RT_PORT" ] || fail "the Runtime API stand-in did not start: $(cat "$TMP/rt.err")"
[ -n "$CG_PORT" ] || fail "the CodeGuru stand-in did not start: $(cat "$CG_STATE/err")"

# What Lambda provides: /var/task, /var/runtime/bootstrap (a shell script
# that execs the runtime, as the managed runtimes' bootstrap does).
mkdir -p "$TMP/var/task" "$TMP/var/runtime" "$TMP/out"
cp "$ROOT/test/integration/lambda_runtime.py" "$TMP/var/task/"
cat >"$TMP/var/runtime/bootstrap" <<EOF
#!/bin/sh
exec $PYTHON "\$LAMBDA_TASK_ROOT/lambda_runtime.py"
EOF
chmod +x "$TMP/var/runtime/bootstrap"

say "Lambda runs \$AWS_LAMBDA_EXEC_WRAPPER /var/runtime/bootstrap: $N invocations of ${CPU_MS} ms CPU, ${GAP_MS} ms frozen between"
set +e
env -i PATH=/usr/bin:/bin TZ=UTC \
    AWS_LAMBDA_RUNTIME_API=127.0.0.1:$RT_PORT \
    AWS_LAMBDA_EXEC_WRAPPER="$OPT/cgprof-lambda-exec" \
    AWS_LAMBDA_FUNCTION_NAME=$FN AWS_LAMBDA_FUNCTION_VERSION='$LATEST' \
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512 AWS_EXECUTION_ENV=AWS_Lambda_python3.11 \
    AWS_REGION=us-west-2 AWS_DEFAULT_REGION=us-west-2 \
    LAMBDA_TASK_ROOT="$TMP/var/task" LAMBDA_RUNTIME_DIR="$TMP/var/runtime" \
    AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY \
    AWS_SESSION_TOKEN=LambdaSessionToken AWS_EC2_METADATA_DISABLED=true \
    HANDLER_CPU_MS=$CPU_MS CGPROF_OUTPUT_DIR="$TMP/out" \
    CGPROF_OPTIONS="endpoint:https://127.0.0.1:$CG_PORT,caBundle:$CERTS/ca.crt,sink:codeguru+file,reportingIntervalMs:1000,minimumTimeForReportingMs:1000,logLevel:info" \
    "$OPT/cgprof-lambda-exec" "$TMP/var/runtime/bootstrap" >"$TMP/runtime.out" 2>"$TMP/runtime.err" &
RUNTIME_PID=$!
echo $RUNTIME_PID >"$TMP/runtime.pid"
wait $RUNTIME_PID
rc=$?
set -e
RUNTIME_PID=
[ $rc = 137 ] || fail "the runtime should have been killed by the stand-in (137), exited $rc: $(tail -5 "$TMP/runtime.err")"
grep -q 'AWS Lambda detected' "$TMP/runtime.err" ||
    fail "the agent did not detect Lambda: $(head -c 2000 "$TMP/runtime.err")"
sleep 0.3   # let the CodeGuru stand-in write its last record

"$PYTHON" - "$TMP/lambda.jsonl" "$TMP/out" "$CG_STATE/requests.jsonl" "$N" "$GAP_MS" "$FN" <<'PY'
import glob, gzip, json, sys
log, out, reqs, n, gap_ms, fn = sys.argv[1:]
n, gap_ms = int(n), int(gap_ms)
def fail(msg):
    sys.exit("FAIL (lambda): " + msg)
ev = [json.loads(l) for l in open(log)]
responses = [e for e in ev if e["event"] == "response"]
if len(responses) != n:
    fail("the handler answered %d of %d invocations" % (len(responses), n))
freezes = [e["t"] for e in ev if e["event"] == "freeze"]
thaws = [e["t"] for e in ev if e["event"] == "thaw"]
frozen_ms = sum((b - a) * 1000 for a, b in zip(freezes, thaws))
print("   stand-in: %d invocations, %d thaws, %.0f ms frozen between them" % (n, len(thaws), frozen_ms))
if len(thaws) != n - 1 or frozen_ms < (n - 1) * gap_ms * 0.95:
    fail("the stand-in did not freeze the runtime between invocations")
# active time: from the first invocation to the final freeze, gaps removed,
# plus a generous allowance for the runtime's start-up before it
active_ms = (freezes[-1] - ev[[e["event"] for e in ev].index("invoke")]["t"]) * 1000 - frozen_ms
files = sorted(glob.glob(out + "/*.json.gz"))
profs = [json.load(gzip.open(f, "rt")) for f in files]
if len(profs) < 2:
    fail("%d profile(s) in %s, expected one per second of active time (>= 2)" % (len(profs), out))
total = 0
spanned = 0
for f, p in zip(files, profs):
    md = p["agentMetadata"]
    d = md["durationInMs"]
    wall = p["end"] - p["start"]
    total += d
    runnable = 0
    def walk(node):
        global runnable
        runnable += node.get("counts", {}).get("RUNNABLE", 0)
        for c in node.get("children", {}).values():
            walk(c)
    walk(p["callgraph"])
    print("   %s: durationInMs %d, end-start %d ms, %d CPU samples" % (f.rsplit("/", 1)[1], d, wall, runnable))
    if d > 1000 + 450:
        fail("durationInMs %d: the report came after more than 1 s of active time (frozen time counted?)" % d)
    if d < 1000 and f != files[-1]:
        fail("durationInMs %d: reported before 1 s of active time" % d)
    if wall - d >= 0.7 * gap_ms:
        spanned += 1
    if runnable == 0:
        fail("%s has no CPU samples" % f)
    fi = md.get("fleetInfo", {})
    if fi.get("computeType") != "aws_lambda" or fi.get("memoryLimitInMB") != 512 \
            or fi.get("executionEnv") != "AWS_Lambda_python3.11" or fn not in fi.get("functionArn", ""):
        fail("fleetInfo is not the Lambda one: %r" % fi)
if spanned == 0:
    fail("no profile spans a freeze with it excluded from durationInMs")
if total > active_ms + 1500:
    fail("durationInMs add up to %d ms, more than the %.0f ms of active time" % (total, active_ms))
print("   %d profiles, %d spanning a freeze; durationInMs total %d ms for %.0f ms active, %.0f ms frozen"
      % (len(profs), spanned, total, active_ms, frozen_ms))
rq = [json.loads(l) for l in open(reqs)]
bad = [r for r in rq if not r.get("valid")]
if bad:
    fail("the CodeGuru stand-in rejected requests: %r" % bad[:2])
conf = [r for r in rq if r["op"] == "configure"]
posts = [r for r in rq if r["op"] == "post" and r.get("delivered")]
if not conf or not posts:
    fail("expected ConfigureAgent and a delivered profile, got %r" % [r["op"] for r in rq])
if any(r["group"] != "aws-lambda-" + fn for r in rq):
    fail("requests for groups %r, expected aws-lambda-%s" % (sorted({r["group"] for r in rq}), fn))
md = conf[0]["metadata"]
want = {"ComputePlatform": "AWSLambda", "LambdaMemoryLimitInMB": "512",
        "ExecutionEnvironment": "AWS_Lambda_python3.11"}
for k, v in want.items():
    if md.get(k) != v:
        fail("ConfigureAgent metadata %s = %r, expected %r (all: %r)" % (k, md.get(k), v, md))
if fn not in md.get("LambdaFunctionArn", "") or not md.get("AgentId"):
    fail("ConfigureAgent metadata lacks the function or AgentId: %r" % md)
print("   CodeGuru stand-in: group aws-lambda-%s, %d ConfigureAgent, %d profiles delivered, metadata %s"
      % (fn, len(conf), len(posts), json.dumps(md, sort_keys=True)))
PY
ok "profiled across $N invocations; frozen time is not in durationInMs; Lambda group, fleet info and metadata"
