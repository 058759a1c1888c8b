#!/bin/bash
# Our CodeGuru requests against botocore's, byte for byte. For
# ConfigureAgent, PostAgentProfile (first attempt and a retry) and
# CreateProfilingGroup, botocore builds the real request (captured by a
# before-send hook, no network); our signer (test_codeguru's "sign" mode)
# builds the same call with botocore's date, token and invocation id, and
# the target, header order, every header value but User-Agent, the
# canonical request and the signature must match. Then botocore's SigV4
# signer re-signs requests only we build (gzip'd body with
# Content-Encoding, an http:// endpoint with a port and base path, no
# session token) and must get our signatures.
source "$(dirname "$0")/lib.sh"
DRIVER=$BUILD_DIR/test/unit/uploader/test_codeguru
[ -x "$DRIVER" ] || fail "$DRIVER is missing; build it: make BUILD=$BUILD $BUILD/test/unit/uploader/test_codeguru"
"$PYTHON" -c 'import botocore' 2>/dev/null || fail "botocore is missing for $PYTHON (python3-botocore; scripts/install-deps)"

export AWS_ACCESS_KEY_ID=AKIDEXAMPLE
export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
export DRIVER TMP

"$PYTHON" - <<'EOF'
import os, subprocess, sys, datetime, gzip, calendar
import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.credentials import Credentials
from botocore.config import Config

DRIVER, TMP = os.environ["DRIVER"], os.environ["TMP"]
AK, SK = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
failures = []

def ours(op, endpoint, region, group, token, inv, attempt, epoch, body, gz, session):
    path = os.path.join(TMP, "body")
    with open(path, "wb") as f:
        f.write(body)
    env = dict(os.environ)
    env.pop("AWS_SESSION_TOKEN", None)
    if session:
        env["AWS_SESSION_TOKEN"] = session
    out = subprocess.run([DRIVER, "sign", op, endpoint, region, group, token or "-", inv,
                          str(attempt), str(epoch), path, "1" if gz else "0"],
                         env=env, capture_output=True, check=True).stdout.decode()
    head, canonical = out.split("CANONICAL\n", 1)
    lines = head.splitlines()
    target = lines[0][len("TARGET "):]
    headers = [tuple(l[2:].split(": ", 1)) for l in lines[1:]]
    return target, headers, canonical

class Hook:
    def __init__(self, statuses):
        self.statuses, self.seen = list(statuses), []
    def __call__(self, request, **kw):
        hdrs = [(k, v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()]
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        # botocore's own canonical request, over exactly the headers it
        # signed (the amz-sdk-* and Content-Length headers are added after
        # signing, so they are not in SignedHeaders)
        d = dict(hdrs)
        signed = d["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
        creds = Credentials(AK, SK, "TOKEN123")
        auth = SigV4Auth(creds, "codeguru-profiler", "us-west-2")
        r = AWSRequest(method=request.method, url=request.url, data=body,
                       headers={k: v for k, v in hdrs if k.lower() in signed and k.lower() != "host"})
        canonical = auth.canonical_request(r)
        self.seen.append((request.method, request.url, hdrs, body, canonical))
        status = self.statuses.pop(0) if self.statuses else 200
        class Raw:
            def stream(self, **kw):
                yield b"{}"
        return AWSResponse(request.url, status, {}, Raw())

def compare(name, op, captured, session, attempt):
    method, url, hdrs, body, canonical = captured
    assert method == "POST", method
    endpoint = "https://codeguru-profiler.us-west-2.amazonaws.com"
    target = url[len(endpoint):]
    d = dict(hdrs)
    amz = d["X-Amz-Date"]
    epoch = calendar.timegm(datetime.datetime.strptime(amz, "%Y%m%dT%H%M%SZ").timetuple())
    token = None
    if "?" in target:
        token = target.split("=", 1)[1]
    t, h, c = ours(op, endpoint, "us-west-2", "MyGroup-1", token, d["amz-sdk-invocation-id"],
                   attempt, epoch, body, False, session)
    problems = []
    if t != target:
        problems.append("target %r != botocore %r" % (t, target))
    if c != canonical:
        problems.append("canonical request differs:\n%s\n--- botocore\n%s" % (c, canonical))
    # botocore: Content-Type, User-Agent, X-Amz-Date, [X-Amz-Security-Token],
    # Authorization, amz-sdk-invocation-id, amz-sdk-request, Content-Length;
    # our client adds Host first and Content-Length last.
    ours_h = [(k, v) for k, v in h if k != "Host"]
    theirs = [(k, v) for k, v in hdrs if k != "Content-Length"]
    if [k for k, _ in ours_h] != [k for k, _ in theirs]:
        problems.append("header order %s != botocore %s" % ([k for k, _ in ours_h], [k for k, _ in theirs]))
    for (k1, v1), (k2, v2) in zip(ours_h, theirs):
        if k1 == k2 == "User-Agent":
            if not v1.startswith("cgprof/"):
                problems.append("User-Agent %r does not name cgprof" % v1)
            continue
        if v1 != v2:
            problems.append("%s: %r != botocore %r" % (k1, v1, v2))
    host = dict(h).get("Host")
    if host != "codeguru-profiler.us-west-2.amazonaws.com":
        problems.append("Host %r" % host)
    if problems:
        failures.append("%s: %s" % (name, "; ".join(problems)))
    else:
        print("ok: %s matches botocore (signature %s...)" % (name, d["Authorization"][-64:][:16]))

s = botocore.session.get_session()
s.set_credentials(AK, SK, "TOKEN123")
client = s.create_client("codeguruprofiler", region_name="us-west-2",
                         config=Config(retries={"mode": "standard"}))
def run(call, statuses):
    hook = Hook(statuses)
    client.meta.events.register("before-send", hook)
    try:
        call()
    except Exception:
        pass
    client.meta.events.unregister("before-send", hook)
    return hook.seen

seen = run(lambda: client.configure_agent(profilingGroupName="MyGroup-1", fleetInstanceId="abc-123",
                                          metadata={}), [200])
compare("ConfigureAgent", "ConfigureAgent", seen[0], "TOKEN123", 1)
seen = run(lambda: client.configure_agent(
    profilingGroupName="MyGroup-1", fleetInstanceId="arn:aws:lambda:us-east-1:1:function:f",
    metadata={"ComputePlatform": "AWSLambda", "AgentId": "8690b144-a34f-414b-ad3d-5d4bd5e579b2"}),
    [200])
compare("ConfigureAgent (Lambda metadata)", "ConfigureAgent", seen[0], "TOKEN123", 1)
profile = b'{"start": 1700000000000, "end": 1700000001000, "callgraph": {"children": {"caf\\u00e9": {}}}}'
seen = run(lambda: client.post_agent_profile(profilingGroupName="MyGroup-1", agentProfile=profile,
                                             contentType="application/json"), [503, 204])
if len(seen) != 2:
    failures.append("botocore made %d attempts, expected 2" % len(seen))
else:
    t0 = seen[0][1].split("profileToken=")[1]
    t1 = seen[1][1].split("profileToken=")[1]
    if t0 != t1:
        failures.append("botocore changed the profileToken across retries?")
    compare("PostAgentProfile attempt 1", "PostAgentProfile", seen[0], "TOKEN123", 1)
    compare("PostAgentProfile attempt 2", "PostAgentProfile", seen[1], "TOKEN123", 2)
seen = run(lambda: client.create_profiling_group(profilingGroupName="MyGroup-1",
                                                 computePlatform="AWSLambda"), [201])
compare("CreateProfilingGroup", "CreateProfilingGroup", seen[0], "TOKEN123", 1)

# Requests only we build, re-signed by botocore's signer.
def resign(name, op, endpoint, token, body, gz, session):
    epoch = 1700000000
    t, h, c = ours(op, endpoint, "eu-central-1", "g_1", token, "inv-1", 1, epoch, body, gz, session)
    d = dict(h)
    creds = Credentials(AK, SK, session)
    auth = SigV4Auth(creds, "codeguru-profiler", "eu-central-1")
    hdrs = {k: v for k, v in h if k.lower() in
            ("content-type", "content-encoding", "x-amz-date", "x-amz-security-token")}
    base = endpoint.rstrip("/")
    scheme_host = base.split("/")[0] + "//" + base.split("/")[2]
    r = AWSRequest(method="POST", url=scheme_host + t, data=body, headers=hdrs)
    r.context["timestamp"] = d["X-Amz-Date"]
    canonical = auth.canonical_request(r)
    sig = auth.signature(auth.string_to_sign(r, canonical), r)
    want = d["Authorization"].rsplit("Signature=", 1)[1]
    if canonical != c or sig != want:
        failures.append("%s: botocore re-signs %s (ours %s)\n%s\n--- ours\n%s" % (name, sig, want, canonical, c))
    else:
        print("ok: %s re-signed by botocore: same signature" % name)

raw = b'{"start": 1, "end": 2, "callgraph": {}}'
resign("gzip'd PostAgentProfile", "PostAgentProfile", "https://codeguru-profiler.eu-central-1.amazonaws.com",
       "11111111-2222-4333-8444-555555555555", gzip.compress(raw), True, "SESSION/TOKEN+=")
resign("custom endpoint with port and base path", "ConfigureAgent", "http://127.0.0.1:8443/stage/",
       None, b'{"fleetInstanceId": "x", "metadata": {}}', False, "TOKEN123")
resign("no session token", "CreateProfilingGroup", "https://codeguru-profiler.eu-central-1.amazonaws.com",
       "c-1", b'{"profilingGroupName": "g_1", "computePlatform": "AWSLambda"}', False, None)

if failures:
    print("\n".join("FAIL: " + f for f in failures))
    sys.exit(1)
EOF
ok "requests match botocore's; botocore's signer reproduces ours"
