#!/usr/bin/env python3
"""A stand-in for the Pyroscope ingest API (grafana.com/docs/pyroscope,
"Server HTTP API"), for cgprof's Pyroscope sink tests. Plain HTTP.

  pyroscope_server.py [--port N] [--state DIR] [--ingest SPEC]
                      [--basic USER:PASSWORD | --bearer TOKEN] [--tenant ID]

Prints "PORT <n>" once listening. Every POST /ingest is checked as the
ingest API reads it and recorded as one JSON line in DIR/requests.jsonl:
  - query: name (APP or APP{k=v,...}), from and until (Unix seconds,
    from < until), spyName, sampleRate (a positive integer), format=pprof,
    nothing else; each parameter once;
  - Content-Type multipart/form-data with a boundary; parts "profile"
    (gzip'd bytes) and "sample_type_config" (a JSON object naming at least
    the cpu and wall sample types); no "prev_profile";
  - Authorization and X-Scope-OrgID when --basic/--bearer/--tenant ask.
A valid request the script lets through is answered 200 and its profile
kept as DIR/profiles/<n>.pb.gz ("delivered": true, "file" in the record);
an invalid one is answered 400 (401 for bad credentials) with "valid":
false and the reasons. The script (comma separated, "ENTRYxN" repeats, the
last entry repeats): ok, NNN (that status), hang (never answer, up to
--hang-max s), close (close without answering).
Control (never recorded): POST /__control/ingest with a new SPEC as body;
GET /__control/summary gives {"delivered": n, "invalid": n, "requests": n,
"keys": {"name from until": count}}.
"""
import argparse
import base64
import gzip
import json
import os
import re
import sys
import threading
import time
import urllib.parse
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME_RE = re.compile(r"^[A-Za-z0-9._/-]+(\{[A-Za-z_][A-Za-z0-9_]*=[^,{}=]+"
                     r"(,[A-Za-z_][A-Za-z0-9_]*=[^,{}=]+)*\})?$")
PARAMS = {"name", "from", "until", "spyName", "sampleRate", "format"}


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
            entries += [m.group(1)] * int(m.group(2)) if m and m.group(1) else [e]
        with self.lock:
            self.entries = entries or ["ok"]

    def next(self):
        with self.lock:
            return self.entries.pop(0) if len(self.entries) > 1 else self.entries[0]


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.script = Script(args.ingest)
        self.delivered = 0
        self.invalid = 0
        self.requests = 0
        self.keys = {}
        self.dir = args.state
        if self.dir:
            os.makedirs(os.path.join(self.dir, "profiles"), exist_ok=True)
        self.log = open(os.path.join(self.dir, "requests.jsonl"), "a") if self.dir else None

    def record(self, entry, profile=None):
        with self.lock:
            self.requests += 1
            if not entry.get("valid", True):
                self.invalid += 1
            if entry.get("delivered"):
                self.delivered += 1
                key = "%s %s %s" % (entry["query"]["name"], entry["query"]["from"],
                                    entry["query"]["until"])
                self.keys[key] = self.keys.get(key, 0) + 1
                if self.dir and profile is not None:
                    path = os.path.join(self.dir, "profiles", "%d.pb.gz" % self.delivered)
                    with open(path, "wb") as f:
                        f.write(profile)
                    entry["file"] = path
            if self.log:
                self.log.write(json.dumps(entry) + "\n")
                self.log.flush()


def check(args, query, headers, body):
    """Returns (problems, auth_failed, query dict, profile bytes)."""
    problems = []
    q = {}
    for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if k in q:
            problems.append("parameter %s repeated" % k)
        q[k] = v
    for k in sorted(set(q) - PARAMS):
        problems.append("unexpected parameter %s" % k)
    for k in sorted(PARAMS - set(q)):
        problems.append("missing parameter %s" % k)
    if "name" in q and not NAME_RE.match(q["name"]):
        problems.append("bad name %r" % q["name"])
    try:
        if int(q.get("from", "x")) >= int(q.get("until", "x")):
            problems.append("from %s not before until %s" % (q["from"], q["until"]))
        if abs(int(q["from"]) - time.time()) > 7 * 86400 and not args.any_time:
            problems.append("from %s is not near now" % q["from"])
    except (ValueError, KeyError):
        problems.append("from/until are not integers")
    if not re.match(r"^[1-9][0-9]*$", q.get("sampleRate", "")):
        problems.append("bad sampleRate %r" % q.get("sampleRate"))
    if q.get("format") != "pprof":
        problems.append("format %r" % q.get("format"))
    if q.get("spyName") != "cgprof":
        problems.append("spyName %r" % q.get("spyName"))

    auth_failed = False
    got = headers.get("Authorization")
    if args.basic:
        want = "Basic " + base64.b64encode(args.basic.encode()).decode()
        auth_failed = got != want
    elif args.bearer:
        auth_failed = got != "Bearer " + args.bearer
    if args.tenant and headers.get("X-Scope-OrgID") != args.tenant:
        problems.append("X-Scope-OrgID %r" % headers.get("X-Scope-OrgID"))

    profile = None
    ctype = headers.get("Content-Type", "")
    if not ctype.startswith("multipart/form-data") or "boundary=" not in ctype:
        problems.append("Content-Type %r" % ctype)
    else:
        msg = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
        parts = {}
        for p in msg.iter_parts():
            name = p.get_param("name", header="content-disposition")
            parts[name] = p.get_payload(decode=True)
        if "prev_profile" in parts:
            problems.append("prev_profile sent")
        profile = parts.get("profile")
        if not profile:
            problems.append("no profile part")
        else:
            try:
                gzip.decompress(profile)
            except Exception as e:  # noqa: BLE001
                problems.append("profile is not gzip: %s" % e)
        try:
            cfg = json.loads(parts.get("sample_type_config") or b"null")
            if not isinstance(cfg, dict) or not {"cpu", "wall"} <= set(cfg):
                problems.append("sample_type_config lacks cpu/wall: %r" % cfg)
        except ValueError as e:
            problems.append("sample_type_config is not JSON: %s" % e)
    return problems, auth_failed, q, profile


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "PyroscopeStandIn/1"

    def log_message(self, fmt, *a):
        pass

    def reply(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self):
        st = self.server.st
        if self.path == "/__control/summary":
            with st.lock:
                body = json.dumps({"delivered": st.delivered, "invalid": st.invalid,
                                   "requests": st.requests, "keys": st.keys}).encode()
            return self.reply(200, body)
        self.reply(404, b"not found")

    def do_POST(self):
        st, args = self.server.st, self.server.st.args
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        path, _, query = self.path.partition("?")
        if path == "/__control/ingest":
            st.script.set(body.decode())
            return self.reply(204)
        entry = {"method": "POST", "path": path, "raw_query": query,
                 "authorization": self.headers.get("Authorization"),
                 "tenant": self.headers.get("X-Scope-OrgID"), "bytes": len(body),
                 "time": time.time()}
        if path != args.base + "/ingest":
            entry.update(valid=False, problems=["path %s" % path])
            st.record(entry)
            return self.reply(404, b"not found")
        problems, auth_failed, q, profile = check(args, query, self.headers, body)
        entry["query"] = q
        if auth_failed:
            entry.update(valid=False, problems=["credentials"])
            st.record(entry)
            return self.reply(401, b"unauthorized")
        if problems:
            entry.update(valid=False, problems=problems)
            st.record(entry)
            return self.reply(400, ("; ".join(problems)).encode())
        action = st.script.next()
        entry["action"] = action
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
            entry["delivered"] = True
            st.record(entry, profile)
            return self.reply(200)
        st.record(entry)
        self.reply(int(action), b"scripted failure")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--state")
    ap.add_argument("--base", default="", help="path prefix before /ingest")
    ap.add_argument("--ingest", default="ok")
    ap.add_argument("--basic")
    ap.add_argument("--bearer")
    ap.add_argument("--tenant")
    ap.add_argument("--any-time", action="store_true", help="accept old from/until")
    ap.add_argument("--hang-max", type=float, default=60)
    args = ap.parse_args()
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    srv = ThreadingHTTPServer((args.bind, args.port), Handler)
    srv.st = State(args)
    print("PORT %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
