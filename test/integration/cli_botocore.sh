#!/bin/bash
# The control-plane commands' requests against botocore's, one operation
# at a time. botocore builds the real request for each operation (captured
# by a before-send hook, no network) with an endpoint of 127.0.0.1:PORT;
# then `cgprof` runs the same operation against a recording server on that
# port, with botocore's signing time, invocation id and client token fixed
# through test seams. Method, path and query, body, every header botocore
# sends (but User-Agent and Content-Length) in the same order, and the
# Authorization header with its signature must be identical. Operations:
# CreateProfilingGroup (with tags), DescribeProfilingGroup,
# ListProfilingGroups, DeleteProfilingGroup, GetPolicy + PutPermission
# (with the revisionId and the principals already granted),
# GetProfile (Accept: application/json, fractional timestamps),
# GetRecommendations (with locale), PostAgentProfile (cgprof upload).
source "$(dirname "$0")/lib.sh"
need_cli
"$PYTHON" -c 'import botocore' 2>/dev/null || fail "botocore is missing for $PYTHON (python3-botocore; scripts/install-deps)"

export AWS_ACCESS_KEY_ID=AKIDEXAMPLE
export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
export AWS_SESSION_TOKEN=TOKEN123/+=
export AWS_EC2_METADATA_DISABLED=true HOME=$TMP
unset AWS_PROFILE AWS_REGION AWS_DEFAULT_REGION AWS_ENDPOINT_URL AWS_ENDPOINT_URL_CODEGURUPROFILER \
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_WEB_IDENTITY_TOKEN_FILE
export CGPROF TMP

"$PYTHON" - <<'EOF'
import calendar, datetime, gzip, json, os, subprocess, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.config import Config

CGPROF, TMP = os.environ["CGPROF"], os.environ["TMP"]
failures = []
POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Sid": "agentPermissions-statement", "Effect": "Allow",
    "Principal": {"AWS": ["arn:aws:iam::123456789012:role/old"]},
    "Action": ["codeguru-profiler:ConfigureAgent", "codeguru-profiler:PostAgentProfile"],
    "Resource": "arn:aws:codeguru-profiler:us-west-2:123456789012:profilingGroup/g-1"}]})
PROFILE = {"start": 1796637600000, "end": 1796637660000,
           "agentMetadata": {"sampleWeights": {"RUNNABLE": 100}, "durationInMs": 60000},
           "callgraph": {"children": {"app:main": {"counts": {"RUNNABLE": 5}}}}}
REPLIES = {  # (method, path prefix) -> (status, body)
    ("GET", "/profilingGroups/g-1/policy"): (200, json.dumps({"policy": POLICY, "revisionId": "rev-1"})),
    ("PUT", "/profilingGroups/g-1/policy"): (200, json.dumps({"policy": POLICY, "revisionId": "rev-2"})),
    ("GET", "/profilingGroups/g-1/profile"): (200, json.dumps(PROFILE)),
    ("POST", "/profilingGroups/g-1/agentProfile"): (204, ""),
    ("POST", "/profilingGroups"): (201, json.dumps({"profilingGroup": {"name": "g-1", "arn": "arn:x"}})),
    ("DELETE", "/profilingGroups"): (204, ""),
    ("GET", "/profilingGroups"): (200, json.dumps({"profilingGroups": []})),
    ("GET", "/internal/"): (200, json.dumps({"recommendations": [], "anomalies": []})),
}
recorded = []

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def handle_any(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        recorded.append((self.command, self.path, list(self.headers.items()), body))
        path = self.path.split("?")[0]
        status, out = 404, "{}"
        for (m, p), r in REPLIES.items():
            if m == self.command and path.startswith(p):
                status, out = r
                break
        out = out.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(out)))
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(out)
    do_GET = do_POST = do_PUT = do_DELETE = handle_any

srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
PORT = srv.server_address[1]
ENDPOINT = "http://127.0.0.1:%d" % PORT

s = botocore.session.get_session()
s.set_credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"],
                  os.environ["AWS_SESSION_TOKEN"])
client = s.create_client("codeguruprofiler", region_name="us-west-2", endpoint_url=ENDPOINT,
                         config=Config(retries={"mode": "standard"}))

def boto(call):
    seen = []
    def hook(request, **kw):
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        hdrs = [(k, v.decode() if isinstance(v, bytes) else str(v)) for k, v in request.headers.items()]
        seen.append((request.method, request.url[len(ENDPOINT):], hdrs, body))
        class Raw:
            def stream(self, **kw):
                yield b"{}"
        return AWSResponse(request.url, 200, {}, Raw())
    client.meta.events.register("before-send", hook)
    try:
        call()
    except Exception:
        pass
    client.meta.events.unregister("before-send", hook)
    assert len(seen) == 1, seen
    return seen[0]

def ours(args, seam_from, expect_rc=0):
    d = dict(seam_from[2])
    amz = d["X-Amz-Date"]
    epoch = calendar.timegm(datetime.datetime.strptime(amz, "%Y%m%dT%H%M%SZ").timetuple())
    env = dict(os.environ, CGPROF_TEST_EPOCH=str(epoch),
               CGPROF_TEST_INVOCATION_ID=d["amz-sdk-invocation-id"])
    if "clientToken=" in seam_from[1]:
        env["CGPROF_TEST_CLIENT_TOKEN"] = seam_from[1].split("clientToken=")[1].split("&")[0]
    del recorded[:]
    p = subprocess.run([CGPROF] + args + ["--endpoint-url", ENDPOINT, "--region", "us-west-2"],
                       env=env, capture_output=True)
    if p.returncode != expect_rc:
        failures.append("%s exited %d: %s" % (" ".join(args), p.returncode, p.stderr.decode()[:300]))
    return list(recorded), p

def compare(name, theirs, mine, check_inv=True):
    method, target, hdrs, body = theirs
    m_method, m_target, m_hdrs, m_body = mine
    problems = []
    if m_method != method:
        problems.append("method %s != botocore %s" % (m_method, method))
    if m_target != target:
        problems.append("target %s != botocore %s" % (m_target, target))
    if m_body != body:
        problems.append("body %r != botocore %r" % (m_body[:200], body[:200]))
    skip = {"user-agent", "content-length"}
    if not check_inv:
        skip.add("amz-sdk-invocation-id")
    t = [(k, v) for k, v in hdrs if k.lower() not in skip]
    o = [(k, v) for k, v in m_hdrs if k.lower() not in skip | {"host"}]
    if [k.lower() for k, _ in o] != [k.lower() for k, _ in t]:
        problems.append("headers %s != botocore %s" % ([k for k, _ in o], [k for k, _ in t]))
    else:
        for (k, v1), (_, v2) in zip(o, t):
            if v1 != v2:
                problems.append("%s: %r != botocore %r" % (k, v1, v2))
    host = dict((k.lower(), v) for k, v in m_hdrs).get("host")
    if host != "127.0.0.1:%d" % PORT:
        problems.append("Host %r" % host)
    if problems:
        failures.append("%s: %s" % (name, "; ".join(problems)))
    else:
        sig = dict(hdrs)["Authorization"].split("Signature=")[1]
        print("ok: %s matches botocore (signature %s...)" % (name, sig[:16]))

def single(name, args, call, expect_rc=0):
    theirs = boto(call)
    mine, p = ours(args, theirs, expect_rc)
    if len(mine) != 1:
        failures.append("%s: cgprof sent %d requests" % (name, len(mine)))
        return p
    compare(name, theirs, mine[0])
    return p

single("CreateProfilingGroup",
       ["groups", "create", "g-1", "--compute-platform", "AWSLambda", "--tag", "team=pay",
        "--tag", "env=prod caf\u00e9"],
       lambda: client.create_profiling_group(profilingGroupName="g-1", computePlatform="AWSLambda",
                                             tags={"team": "pay", "env": "prod caf\u00e9"}))
single("CreateProfilingGroup (no options)", ["groups", "create", "g-1"],
       lambda: client.create_profiling_group(profilingGroupName="g-1"))
single("DescribeProfilingGroup", ["groups", "describe", "g-1"],
       lambda: client.describe_profiling_group(profilingGroupName="g-1"), expect_rc=0)
single("ListProfilingGroups", ["groups", "list"],
       lambda: client.list_profiling_groups(includeDescription=True, maxResults=100))
single("DeleteProfilingGroup", ["groups", "delete", "g-1"],
       lambda: client.delete_profiling_group(profilingGroupName="g-1"))

# permissions grant: GetPolicy, then PutPermission keeping the old principal.
get = boto(lambda: client.get_policy(profilingGroupName="g-1"))
put = boto(lambda: client.put_permission(
    profilingGroupName="g-1", actionGroup="agentPermissions",
    principals=["arn:aws:iam::123456789012:role/old", "arn:aws:iam::123456789012:role/new"],
    revisionId="rev-1"))
mine, p = ours(["permissions", "grant", "g-1", "--principal", "arn:aws:iam::123456789012:role/new"], put)
if len(mine) != 2:
    failures.append("permissions grant: %d requests, expected GetPolicy and PutPermission" % len(mine))
else:
    compare("GetPolicy (permissions grant)", get, mine[0], check_inv=False)
    compare("PutPermission (with revisionId)", put, mine[1])

single("GetProfile", ["profile", "get", "g-1", "--from", "2026-01-02T03:04:05Z",
                      "--to", "2026-01-02T04:04:05.250Z", "-o", TMP + "/agg.json"],
       lambda: client.get_profile(
           profilingGroupName="g-1",
           startTime=datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
           endTime=datetime.datetime(2026, 1, 2, 4, 4, 5, 250000, tzinfo=datetime.timezone.utc),
           accept="application/json"))
r = subprocess.run([CGPROF, "report", "--format", "json", TMP + "/agg.json"], capture_output=True)
if r.returncode != 0 or '"app:main"' not in r.stdout.decode():
    failures.append("cgprof report cannot read the downloaded profile: %s" % r.stderr.decode()[:200])
else:
    print("ok: cgprof report reads the profile GetProfile returned")

single("GetRecommendations", ["recommendations", "g-1", "--from", "2026-01-02T03:04:05Z",
                              "--to", "2026-01-02T04:04:05Z", "--locale", "en-US"],
       lambda: client.get_recommendations(
           profilingGroupName="g-1",
           startTime=datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
           endTime=datetime.datetime(2026, 1, 2, 4, 4, 5, tzinfo=datetime.timezone.utc),
           locale="en-US"))

# cgprof upload: PostAgentProfile under the spooled file's token.
token = "5f1d7c2e-8a6b-4c3d-9e0f-1a2b3c4d5e6f"
spool = os.path.join(TMP, "spool", "g-1")
os.makedirs(spool)
raw = json.dumps(PROFILE).encode()
with open(os.path.join(spool, "1796637660000-%s.json.gz" % token), "wb") as f:
    f.write(gzip.compress(raw))
theirs = boto(lambda: client.post_agent_profile(profilingGroupName="g-1", agentProfile=raw,
                                                contentType="application/json", profileToken=token))
mine, p = ours(["upload", spool], theirs)
if len(mine) != 1:
    failures.append("upload: %d requests" % len(mine))
else:
    compare("PostAgentProfile (cgprof upload)", theirs, mine[0])
if os.listdir(spool):
    failures.append("upload: the delivered profile is still in the spool: %s" % os.listdir(spool))

if failures:
    for f in failures:
        print("FAIL: " + f, file=sys.stderr)
    sys.exit(1)
EOF
ok "every control-plane request matches botocore's (method, path, query, body, headers, signature)"
