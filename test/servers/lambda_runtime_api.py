#!/usr/bin/env python3
"""A stand-in for the AWS Lambda Runtime API (2018-06-01), with the freeze
between invocations that Lambda applies to the execution environment.

  lambda_runtime_api.py --pidfile F --invocations N --gap-ms G
                        [--function-arn ARN] [--timeout-ms T] [--log FILE]

Prints "PORT <n>" once listening on 127.0.0.1. The runtime (the process
whose pid is in F, written by the test after it starts it) asks for work
with GET /2018-06-01/runtime/invocation/next and answers with POST
/2018-06-01/runtime/invocation/<id>/response (or /error). As on Lambda:

  - the first /next is answered at once (the init phase ran unfrozen);
  - every later /next freezes the runtime's whole process (SIGSTOP; Lambda
    uses the cgroup freezer) for G ms, thaws it (SIGCONT), then answers
    with the next event, headers Lambda-Runtime-Aws-Request-Id,
    -Deadline-Ms, -Invoked-Function-Arn and -Trace-Id;
  - after N invocations the next /next freezes the process for G ms and
    then kills it (SIGKILL), as Lambda ends an environment.

Each event is one JSON line in FILE: {"event": "invoke"|"response"|
"freeze"|"thaw"|"kill", "t": <monotonic seconds>, ...}, so a test can sum
the frozen time and the active time exactly.
"""
import argparse
import json
import os
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime/invocation/"


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.served = 0
        self.log_lock = threading.Lock()

    def log(self, event, **kw):
        kw.update(event=event, t=time.monotonic())
        with self.log_lock:
            if self.args.log:
                with open(self.args.log, "a") as f:
                    f.write(json.dumps(kw) + "\n")

    def pid(self):
        for _ in range(200):
            try:
                with open(self.args.pidfile) as f:
                    return int(f.read().strip())
            except (OSError, ValueError):
                time.sleep(0.01)
        raise RuntimeError("no pid in %s" % self.args.pidfile)

    def freeze(self):
        pid = self.pid()
        os.kill(pid, signal.SIGSTOP)
        self.log("freeze", pid=pid)
        time.sleep(self.args.gap_ms / 1000.0)
        return pid


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        st = self.server.state
        if self.path != PREFIX + "next":
            return self.reply(404, b'{"errorType": "NotFound"}')
        with st.lock:
            n = st.served
            st.served += 1
        if n > 0:
            pid = st.freeze()
            if n >= st.args.invocations:
                os.kill(pid, signal.SIGKILL)
                os.kill(pid, signal.SIGCONT)
                st.log("kill", pid=pid)
                self.close_connection = True
                return
            os.kill(pid, signal.SIGCONT)
            st.log("thaw", pid=pid)
        rid = str(uuid.uuid4())
        deadline = int(time.time() * 1000) + st.args.timeout_ms
        st.log("invoke", request_id=rid, n=n)
        body = json.dumps({"invocation": n}).encode()
        self.reply(200, body, {
            "Lambda-Runtime-Aws-Request-Id": rid,
            "Lambda-Runtime-Deadline-Ms": str(deadline),
            "Lambda-Runtime-Invoked-Function-Arn": st.args.function_arn,
            "Lambda-Runtime-Trace-Id": "Root=1-%08x-%s;Sampled=0" % (int(time.time()),
                                                                     uuid.uuid4().hex[:24]),
        })

    def do_POST(self):
        st = self.server.state
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if not self.path.startswith(PREFIX) or not (
                self.path.endswith("/response") or self.path.endswith("/error")):
            return self.reply(404, b'{"errorType": "NotFound"}')
        rid = self.path[len(PREFIX):].rsplit("/", 1)[0]
        st.log("response", request_id=rid, body=body.decode("utf-8", "replace"),
               error=self.path.endswith("/error"))
        self.reply(202, b'{"status": "OK"}')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pidfile", required=True)
    ap.add_argument("--invocations", type=int, default=3)
    ap.add_argument("--gap-ms", type=int, default=1000)
    ap.add_argument("--timeout-ms", type=int, default=30000)
    ap.add_argument("--function-arn",
                    default="arn:aws:lambda:us-west-2:123456789012:function:cgprof-test-fn")
    ap.add_argument("--log")
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.state = State(args)
    print("PORT %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
