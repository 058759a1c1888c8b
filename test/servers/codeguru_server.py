#!/usr/bin/env python3
"""A CodeGuru Profiler stand-in for cgprof's uploader tests (HTTPS with the
certificates of `tls_server.py gencerts`, or plain HTTP).

  codeguru_server.py [--tls CERT KEY] [--port N] [--region R] [--group G]
                     [--key-id AKID --secret SECRET] [--state DIR]
                     [--post SPEC] [--configure SPEC] [--configure-body JSON]
                     [--hang-max S]

Prints "PORT <n>" once listening. Every request is checked the way the
service and botocore would see it, and recorded as one JSON line in
DIR/requests.jsonl:
  - the operation from method and path: POST /profilingGroups/G/configureAgent,
    POST /profilingGroups/G/agentProfile?profileToken=T (T matching
    ^[\\w-]{1,64}$), POST /profilingGroups?clientToken=T;
  - Content-Type: application/json, X-Amz-Date, amz-sdk-invocation-id,
    amz-sdk-request ("attempt=1" or "attempt=N; max=3"), a User-Agent;
  - the SigV4 signature, recomputed with botocore's signer for the given
    key id and secret (the session token from X-Amz-Security-Token) over
    the request's SignedHeaders, with scope <date>/R/codeguru-profiler;
  - the body: ConfigureAgent {"fleetInstanceId", "metadata"}; a profile as
    CodeGuru JSON (gunzipped first when Content-Encoding: gzip) with start,
    end, agentMetadata and callgraph.
A request failing a check is answered 400 (403 for a bad signature) and
recorded with "valid": false and the reasons. Otherwise the operation's
script decides (comma separated, "ENTRYxN" repeats, the last entry repeats):
  ok        the operation's success (200 with --configure-body, 204, 201)
  NNN       status NNN with x-amzn-ErrorType (ThrottlingException for 429,
            ServiceUnavailableException for 503, InternalServerException for
            500, ValidationException 400, AccessDeniedException 403,
            ResourceNotFoundException 404, ConflictException 409)
  hang      read the request, never answer (until --hang-max seconds)
  reset     read half the body, then a TCP reset
  close     read the request, close without answering
A recorded post with "delivered": true is one the stand-in answered 204.
Control (never recorded): POST /__control/post or /__control/configure with
a new SPEC as body; GET /__control/summary gives
{"delivered": {token: count}, "invalid": n, "requests": n}.
"""
import argparse
import datetime
import gzip
import json
import os
import re
import socket
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

TOKEN_RE = re.compile(r"^[\w-]{1,64}$")
ERRTYPE = {429: "ThrottlingException", 503: "ServiceUnavailableException",
           500: "InternalServerException", 400: "ValidationException",
           403: "AccessDeniedException", 404: "ResourceNotFoundException",
           409: "ConflictException", 402: "ServiceQuotaExceededException"}


class Script:
    def __init__(self, spec):
        self.lock = threading.Lock()
        self.set(spec)

    def set(self, spec):
        entries = []
        for e in spec.split(","):
            e = e.strip()
            if not e:
                continue
            m = re.match(r"^(.*)x(\d+)$", e)
            if m and m.group(1):
                entries += [m.group(1)] * int(m.group(2))
            else:
                entries.append(e)
        with self.lock:
            self.entries = entries or ["ok"]

    def next(self):
        with self.lock:
            return self.entries.pop(0) if len(self.entries) > 1 else self.entries[0]


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.delivered = {}
        self.invalid = 0
        self.requests = 0
        self.scripts = {"post": Script(args.post), "configure": Script(args.configure),
                        "create": Script("ok")}
        self.log = open(os.path.join(args.state, "requests.jsonl"), "a") if args.state else None

    def record(self, entry):
        with self.lock:
            self.requests += 1
            if not entry.get("valid", True):
                self.invalid += 1
            if entry.get("delivered"):
                self.delivered[entry["token"]] = self.delivered.get(entry["token"], 0) + 1
            if self.log:
                self.log.write(json.dumps(entry) + "\n")
                self.log.flush()


def check_signature(args, method, path, headers, body):
    """Returns a list of problems (empty when botocore agrees)."""
    auth = headers.get("Authorization", "")
    m = re.match(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                 r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$", auth)
    if not m:
        return ["malformed Authorization %r" % auth[:80]]
    key, date, region, service, signed, sig = m.groups()
    problems = []
    if key != args.key_id:
        problems.append("key id %s" % key)
    if region != args.region or service != "codeguru-profiler":
        problems.append("scope %s/%s" % (region, service))
    amz = headers.get("X-Amz-Date", "")
    if not amz.startswith(date):
        problems.append("X-Amz-Date %r outside scope date %s" % (amz, date))
    try:
        skew = abs(time.time() - datetime.datetime.strptime(amz, "%Y%m%dT%H%M%SZ")
                   .replace(tzinfo=datetime.timezone.utc).timestamp())
        if skew > 300:
            problems.append("X-Amz-Date skewed by %d s" % skew)
    except ValueError:
        problems.append("bad X-Amz-Date %r" % amz)
    names = signed.split(";")
    for need in ("content-type", "host", "x-amz-date"):
        if need not in names:
            problems.append("%s not signed" % need)
    token = headers.get("X-Amz-Security-Token")
    if token and "x-amz-security-token" not in names:
        problems.append("session token not signed")
    creds = Credentials(args.key_id, args.secret, token)
    signer = SigV4Auth(creds, "codeguru-profiler", region)
    scheme = "https" if args.tls else "http"
    hdrs = {k: v for k, v in headers.items() if k.lower() in names and k.lower() != "host"}
    req = AWSRequest(method=method, url="%s://%s%s" % (scheme, headers.get("Host", ""), path),
                     data=body, headers=hdrs)
    req.context["timestamp"] = amz
    canonical = signer.canonical_request(req)
    want = signer.signature(signer.string_to_sign(req, canonical), req)
    if want != sig:
        problems.append("signature mismatch (botocore: %s)" % want)
    return problems


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "CodeGuruStandIn/1"

    def log_message(self, fmt, *a):
        pass

    def reply(self, status, body=b"", extra=None):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if body:
            self.send_header("Content-Type", "application/json")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def error(self, status, message, errtype=None):
        errtype = errtype or ERRTYPE.get(status, "InternalServerException")
        self.reply(status, json.dumps({"message": message}).encode(),
                   {"x-amzn-ErrorType": errtype + ":http://internal.amazon.com/"})

    def do_GET(self):
        st = self.server.st
        if self.path == "/__control/summary":
            with st.lock:
                body = json.dumps({"delivered": st.delivered, "invalid": st.invalid,
                                   "requests": st.requests}).encode()
            return self.reply(200, body)
        self.error(404, "no such route", "UnknownOperationException")

    def do_POST(self):
        st, args = self.server.st, self.server.st.args
        length = int(self.headers.get("Content-Length", "0"))
        path, _, query = self.path.partition("?")
        if path.startswith("/__control/"):
            spec = self.rfile.read(length).decode()
            st.scripts[path.split("/")[-1]].set(spec)
            return self.reply(204)
        op, token = None, None
        g = re.escape(args.group)
        if re.match(r"^/profilingGroups/%s/configureAgent$" % g, path) and not query:
            op = "configure"
        elif re.match(r"^/profilingGroups/%s/agentProfile$" % g, path):
            op = "post"
            m = re.match(r"^profileToken=(.*)$", query)
            token = m.group(1) if m else None
        elif path == "/profilingGroups":
            op = "create"
            m = re.match(r"^clientToken=(.*)$", query)
            token = m.group(1) if m else None
        action = st.scripts[op].next() if op else "ok"
        if action == "reset":
            self.rfile.read(length // 2)
            st.record({"op": op, "token": token, "action": "reset", "valid": True})
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        body = self.rfile.read(length)
        headers = {k: v for k, v in self.headers.items()}
        problems = []
        if op is None:
            problems.append("unknown operation %s %s" % (self.command, self.path))
        if op in ("post", "create") and not (token and TOKEN_RE.match(token)):
            problems.append("bad or missing token %r" % token)
        if headers.get("Content-Type") != "application/json":
            problems.append("Content-Type %r" % headers.get("Content-Type"))
        if not headers.get("User-Agent", "").startswith("cgprof/"):
            problems.append("User-Agent %r" % headers.get("User-Agent"))
        if not re.match(r"^[0-9a-f-]{36}$", headers.get("amz-sdk-invocation-id", "")):
            problems.append("amz-sdk-invocation-id %r" % headers.get("amz-sdk-invocation-id"))
        attempt = headers.get("amz-sdk-request", "")
        if not re.match(r"^attempt=(1|[23]; max=3)$", attempt):
            problems.append("amz-sdk-request %r" % attempt)
        sig_problems = check_signature(args, self.command, self.path, headers, body)
        payload = body
        if headers.get("Content-Encoding") == "gzip":
            try:
                payload = gzip.decompress(body)
            except OSError:
                problems.append("Content-Encoding gzip but the body is not gzip")
        try:
            doc = json.loads(payload) if payload else None
        except ValueError:
            doc = None
            problems.append("body is not JSON")
        if op == "configure" and not (isinstance(doc, dict) and isinstance(doc.get("fleetInstanceId"), str)
                                      and isinstance(doc.get("metadata"), dict)):
            problems.append("ConfigureAgent body %r" % payload[:100])
        if op == "post" and not (isinstance(doc, dict) and all(k in doc for k in
                                 ("start", "end", "agentMetadata", "callgraph"))):
            problems.append("profile body lacks start/end/agentMetadata/callgraph")
        entry = {"op": op, "token": token, "attempt": attempt, "action": action,
                 "bodyLength": len(body), "gzip": headers.get("Content-Encoding") == "gzip",
                 "invocation": headers.get("amz-sdk-invocation-id"),
                 "fleetInstanceId": doc.get("fleetInstanceId") if op == "configure" and isinstance(doc, dict) else None,
                 "metadata": doc.get("metadata") if op == "configure" and isinstance(doc, dict) else None,
                 "group": self.path.split("/")[2] if self.path.startswith("/profilingGroups/") else None}
        if problems or sig_problems:
            entry.update(valid=False, problems=problems + sig_problems)
            st.record(entry)
            if sig_problems:
                return self.error(403, "; ".join(sig_problems), "InvalidSignatureException")
            return self.error(400, "; ".join(problems))
        entry["valid"] = True
        if action == "hang":
            st.record(entry)
            time.sleep(args.hang_max)
            self.close_connection = True
            return
        if action == "close":
            st.record(entry)
            self.close_connection = True
            return
        if action == "ok":
            if op == "post":
                entry["delivered"] = True
                st.record(entry)
                return self.reply(204)
            st.record(entry)
            if op == "configure":
                return self.reply(200, args.configure_body.encode())
            return self.reply(201, json.dumps({"name": args.group, "computePlatform": "AWSLambda"}).encode())
        st.record(entry)
        status = int(action)
        self.error(status, "scripted %d" % status)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--region", default="us-west-2")
    ap.add_argument("--group", default="FaultGroup")
    ap.add_argument("--key-id", default="AKIDEXAMPLE")
    ap.add_argument("--secret", default="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    ap.add_argument("--state")
    ap.add_argument("--post", default="ok")
    ap.add_argument("--configure", default="ok")
    ap.add_argument("--configure-body",
                    default='{"agentParameters": {"MaxStackDepth": "1000", "MemoryUsageLimitPercent": "10", '
                            '"MinimumTimeForReportingInMilliseconds": "60000", "ReportingIntervalInMilliseconds": '
                            '"300000", "SamplingIntervalInMilliseconds": "1000"}, "periodInSeconds": 300, '
                            '"shouldProfile": true}')
    ap.add_argument("--hang-max", type=float, default=60)
    args = ap.parse_args()
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    srv = ThreadingHTTPServer((args.bind, args.port), Handler)
    srv.st = State(args)
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*args.tls)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("PORT %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
