#!/usr/bin/env python3
"""Scriptable local HTTP/HTTPS server, CONNECT proxy and test certificates
for cgprof's uploader tests (transport, CodeGuru protocol and fault runs).
Python 3 standard library only; certificates come from the `openssl` CLI.

Subcommands
-----------
  tls_server.py gencerts DIR
      Writes, into DIR (PEM, EC P-256, valid for 2 days):
        ca.crt, ca.key            the test CA
        server.crt, server.key    signed by the test CA for localhost,
                                  127.0.0.1 and ::1 (IP SANs and DNS SAN)
        other.crt, other.key      signed by the test CA for other.invalid only
        unknown-ca.crt            a second CA nobody trusts
        unknown.crt, unknown.key  signed by unknown-ca for localhost/127.0.0.1

  tls_server.py serve [--tls CERT KEY] [--bind ADDR] [--port N]
                      [--script SPEC] [--log FILE] [--slow-ms MS]
                      [--hang-max S] [--no-handshake]
      An HTTP/1.1 server (HTTPS with --tls) with keep-alive. Prints
      "PORT <n>" on stdout once listening (use --port 0 for a free port).
      --bind defaults to 127.0.0.1; "::" listens on IPv6 and IPv4.
      --no-handshake: accept TCP connections and never answer (not even the
      TLS handshake).

  tls_server.py proxy [--bind ADDR] [--port N] [--log FILE] [--auth U:P]
      A forward proxy: CONNECT host:port tunnels, and absolute-form
      requests ("GET http://host:port/path HTTP/1.1") relayed to the origin.
      With --auth, requests without the matching Proxy-Authorization: Basic
      get 407. Prints "PORT <n>" like serve.

Behaviours (serve)
------------------
Each request takes the next entry of the script (--script, comma separated);
the last entry repeats. "ENTRYxN" repeats an entry N times: "503x3,200".
  200          200, JSON body {"method","path","bodyLength"}
  204          204 No Content
  NNN          status NNN with a small JSON error body; 429 carries
               x-amzn-ErrorType: ThrottlingException, other 4xx/5xx a
               generic type (ValidationException, ServiceUnavailableException,
               InternalServerException, ResourceNotFoundException, ...)
  NNN@FILE     status NNN with FILE's content as the application/json body
  chunked      200 with a chunked body (chunk extension and a trailer)
  slow         200 whose body arrives in 4 pieces, --slow-ms apart
  hang         reads the request and never answers (up to --hang-max s)
  reset        sends the head and half the body, then a TCP reset
  drop         closes the connection without answering
  close        200 with "Connection: close", then closes
  fin          200 without "Connection: close", then closes anyway (an
               idle keep-alive timeout on the server side)
  eof          an HTTP/1.0 200 without Content-Length: the body ends
               when the connection closes
A request to /__behavior/ENTRY[/...] uses ENTRY without consuming the
script. Control requests (never consume the script, never logged):
  GET  /__control/stats   {"connections": accepted TCP connections,
                           "requests": requests served, "script": [...]}
  POST /__control/script  body = a new SPEC, replacing the script
--log FILE appends one JSON line per request: method, path, headers (list
of [name, value]), body_b64, behaviour, connection number. The proxy logs
{"method", "target", "auth"} per tunnel or relayed request.
"""
import argparse
import base64
import json
import os
import socket
import socketserver
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

ERROR_TYPES = {
    400: "ValidationException", 401: "UnrecognizedClientException",
    403: "AccessDeniedException", 404: "ResourceNotFoundException",
    409: "ConflictException", 429: "ThrottlingException",
    500: "InternalServerException", 503: "ServiceUnavailableException",
}


# ---- certificates -------------------------------------------------------

def _openssl(*args):
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _make_ca(d, name, cn):
    cnf = os.path.join(d, name + ".cnf")
    _write(cnf, "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = %s\n"
                "[v3_ca]\nbasicConstraints = critical,CA:TRUE\n"
                "keyUsage = critical,keyCertSign,cRLSign\n"
                "subjectKeyIdentifier = hash\n" % cn)
    _openssl("req", "-x509", "-new", "-nodes", "-config", cnf, "-extensions", "v3_ca",
             "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-keyout", os.path.join(d, name + ".key"),
             "-out", os.path.join(d, name + ".crt"), "-days", "2")


def _make_leaf(d, name, ca, sans, serial):
    cnf = os.path.join(d, name + ".cnf")
    ext = os.path.join(d, name + ".ext")
    _write(cnf, "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = %s\n"
           % sans[0].split(":", 1)[1])
    _write(ext, "basicConstraints = CA:FALSE\nkeyUsage = digitalSignature\n"
                "extendedKeyUsage = serverAuth\nsubjectAltName = %s\n" % ",".join(sans))
    csr = os.path.join(d, name + ".csr")
    _openssl("req", "-new", "-nodes", "-config", cnf, "-newkey", "ec",
             "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-keyout", os.path.join(d, name + ".key"), "-out", csr)
    _openssl("x509", "-req", "-in", csr, "-CA", os.path.join(d, ca + ".crt"),
             "-CAkey", os.path.join(d, ca + ".key"), "-set_serial", str(serial),
             "-days", "2", "-extfile", ext, "-out", os.path.join(d, name + ".crt"))


def gencerts(d):
    os.makedirs(d, exist_ok=True)
    _make_ca(d, "ca", "cgprof test CA")
    _make_ca(d, "unknown-ca", "cgprof unknown CA")
    local = ["DNS:localhost", "IP:127.0.0.1", "IP:::1"]
    _make_leaf(d, "server", "ca", local, 1001)
    _make_leaf(d, "other", "ca", ["DNS:other.invalid"], 1002)
    _make_leaf(d, "unknown", "unknown-ca", local, 1003)


# ---- the scripted server ------------------------------------------------

class Script:
    def __init__(self, spec):
        self.lock = threading.Lock()
        self.set(spec)

    def set(self, spec):
        entries = []
        for part in [p.strip() for p in spec.split(",") if p.strip()]:
            n = 1
            head, sep, tail = part.rpartition("x")
            if sep and head and tail.isdigit() and not part.startswith("0x"):
                part, n = head, int(tail)
            entries.extend([part] * n)
        with self.lock:
            self.entries = entries or ["200"]

    def next(self):
        with self.lock:
            if len(self.entries) > 1:
                return self.entries.pop(0)
            return self.entries[0]

    def snapshot(self):
        with self.lock:
            return list(self.entries)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = 0

    def bump(self, field):
        with self.lock:
            setattr(self, field, getattr(self, field) + 1)
            return getattr(self, field)


def _read_head(f):
    line = f.readline(65537)
    if not line:
        return None
    while line in (b"\r\n", b"\n"):  # tolerate stray blank lines
        line = f.readline(65537)
        if not line:
            return None
    parts = line.decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3:
        raise ValueError("bad request line")
    headers = []
    while True:
        h = f.readline(65537)
        if not h:
            raise ValueError("eof in headers")
        if h in (b"\r\n", b"\n"):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers.append([k, v.strip()])
    return parts[0], parts[1], parts[2], headers


def _hget(headers, name):
    for k, v in headers:
        if k.lower() == name.lower():
            return v
    return None


class Handler(socketserver.BaseRequestHandler):
    def setup(self):
        srv = self.server
        self.conn_no = srv.stats.bump("connections")
        sock = self.request
        if srv.no_handshake:
            self.sock = None
            return
        if srv.tls:
            sock.settimeout(10)
            try:
                sock = srv.tls.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError):
                self.sock = None  # client refused our certificate, or left
                return
            sock.settimeout(None)
        self.sock = sock

    def finish(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass

    def handle(self):
        srv = self.server
        if self.sock is None:
            if srv.no_handshake:
                self._hang()
            return
        f = self.sock.makefile("rb")
        try:
            while True:
                req = _read_head(f)
                if req is None:
                    return
                method, path, version, headers = req
                n = int(_hget(headers, "Content-Length") or 0)
                body = f.read(n) if n else b""
                if not self._one(method, path, headers, body):
                    return
        except (OSError, ValueError, ssl.SSLError):
            return

    def _hang(self):
        end = time.time() + self.server.hang_max
        self.request.settimeout(0.2)
        while time.time() < end:
            try:
                if not self.request.recv(4096):
                    return
            except socket.timeout:
                continue
            except OSError:
                return

    def _send(self, status, body=b"", headers=(), close=False):
        reason = {200: "OK", 204: "No Content"}.get(status, "Status")
        head = "HTTP/1.1 %d %s\r\n" % (status, reason)
        for k, v in headers:
            head += "%s: %s\r\n" % (k, v)
        if status != 204:
            head += "Content-Length: %d\r\n" % len(body)
        if close:
            head += "Connection: close\r\n"
        self.sock.sendall(head.encode("latin-1") + b"\r\n" + body)

    def _one(self, method, path, headers, body):
        srv = self.server
        if path.startswith("/__control/"):
            if path == "/__control/script" and method == "POST":
                srv.script.set(body.decode())
            out = {"connections": srv.stats.connections, "requests": srv.stats.requests,
                   "script": srv.script.snapshot()}
            self._send(200, json.dumps(out).encode(), [("Content-Type", "application/json")])
            return True
        if path.startswith("/__behavior/"):
            behaviour = path.split("/")[2]
        else:
            behaviour = srv.script.next()
        srv.stats.bump("requests")
        srv.log({"method": method, "path": path, "headers": headers,
                 "body_b64": base64.b64encode(body).decode(), "behaviour": behaviour,
                 "connection": self.conn_no})
        js = [("Content-Type", "application/json")]
        echo = json.dumps({"method": method, "path": path, "bodyLength": len(body)}).encode()
        if behaviour == "200":
            self._send(200, echo, js)
        elif behaviour == "204":
            self._send(204)
        elif behaviour == "close":
            self._send(200, echo, js, close=True)
            return False
        elif behaviour == "fin":
            self._send(200, echo, js)
            return False
        elif behaviour == "eof":
            self.sock.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + echo)
            return False
        elif behaviour == "chunked":
            parts = [echo[:5], echo[5:]]
            out = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" \
                  b"Transfer-Encoding: chunked\r\n\r\n"
            out += b"%x;name=value\r\n%s\r\n" % (len(parts[0]), parts[0])
            out += b"%X\r\n%s\r\n" % (len(parts[1]), parts[1])
            out += b"0\r\nX-Trailer: done\r\n\r\n"
            self.sock.sendall(out)
        elif behaviour == "slow":
            head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" \
                   "Content-Length: %d\r\n\r\n" % len(echo)
            self.sock.sendall(head.encode())
            q = max(1, len(echo) // 4)
            for i in range(0, len(echo), q):
                time.sleep(srv.slow_ms / 1000.0)
                self.sock.sendall(echo[i:i + q])
        elif behaviour == "hang":
            self._hang()
            return False
        elif behaviour == "drop":
            return False
        elif behaviour == "reset":
            head = "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(echo)
            self.sock.sendall(head.encode() + echo[:len(echo) // 2])
            time.sleep(0.05)
            # SO_LINGER 0 makes close() send a RST. With TLS, the SSLSocket
            # owns the descriptor (self.request is detached).
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()
            self.sock = None
            return False
        else:
            status, _, fname = behaviour.partition("@")
            status = int(status)
            if fname:
                with open(fname, "rb") as fh:
                    self._send(status, fh.read(), js)
            else:
                et = ERROR_TYPES.get(status, "InternalServerException" if status >= 500
                                     else "ValidationException")
                eb = json.dumps({"message": "scripted %d" % status}).encode()
                hs = js + ([("x-amzn-ErrorType", et)] if status >= 400 else [])
                self._send(status, eb if status != 204 else b"", hs)
        return True


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, bind, port, handler):
        if ":" in bind:
            self.address_family = socket.AF_INET6
        self.bind_addr = bind
        super().__init__((bind, port), handler, bind_and_activate=False)
        if ":" in bind:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.server_bind()
        self.server_activate()
        self.log_lock = threading.Lock()
        self.log_file = None

    def log(self, obj):
        if not self.log_file:
            return
        with self.log_lock, open(self.log_file, "a") as f:
            f.write(json.dumps(obj) + "\n")


# ---- the proxy ----------------------------------------------------------

def _relay(a, b):
    def pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (dst,):
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
    t = threading.Thread(target=pump, args=(b, a), daemon=True)
    t.start()
    pump(a, b)
    t.join()


class ProxyHandler(socketserver.BaseRequestHandler):
    def handle(self):
        srv = self.server
        srv.stats.bump("connections")
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = self.request.recv(4096)
            if not data or len(buf) > 65536:
                return
            buf += data
        head, _, buffered = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            return
        method, target, version = parts
        headers = [[k, v.strip()] for k, _, v in (ln.partition(":") for ln in lines[1:])]
        auth = _hget(headers, "Proxy-Authorization")
        ok_auth = True
        if srv.auth:
            want = "Basic " + base64.b64encode(srv.auth.encode()).decode()
            ok_auth = auth == want
        srv.log({"method": method, "target": target, "auth": auth is not None})
        if not ok_auth:
            self.request.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                                 b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            host = host.strip("[]")
        elif target.startswith("http://"):
            rest = target[7:]
            hostport, slash, path = rest.partition("/")
            host, _, port = hostport.rpartition(":")
            if not host:
                host, port = hostport, "80"
            host = host.strip("[]")
            path = "/" + path
        else:
            self.request.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return
        try:
            up = socket.create_connection((host, int(port)), timeout=5)
            up.settimeout(None)
        except OSError:
            self.request.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
            return
        if method == "CONNECT":
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            head = "%s %s %s\r\n" % (method, path, version)
            for k, v in headers:
                if k.lower() != "proxy-authorization":
                    head += "%s: %s\r\n" % (k, v)
            up.sendall(head.encode("latin-1") + b"\r\n")
        if buffered:
            up.sendall(buffered)
        _relay(self.request, up)
        up.close()


# ---- main -----------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gencerts")
    g.add_argument("dir")
    s = sub.add_parser("serve")
    s.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    s.add_argument("--bind", default="127.0.0.1")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--script", default="200")
    s.add_argument("--log")
    s.add_argument("--slow-ms", type=int, default=200)
    s.add_argument("--hang-max", type=float, default=30.0)
    s.add_argument("--no-handshake", action="store_true")
    p = sub.add_parser("proxy")
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--log")
    p.add_argument("--auth")
    a = ap.parse_args()

    if a.cmd == "gencerts":
        try:
            gencerts(a.dir)
        except subprocess.CalledProcessError as e:
            sys.stderr.write("gencerts: %s\n%s" % (e, e.stderr.decode(errors="replace")))
            return 1
        return 0
    if a.cmd == "serve":
        srv = Server(a.bind, a.port, Handler)
        srv.tls = None
        if a.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(a.tls[0], a.tls[1])
            srv.tls = ctx
        srv.script = Script(a.script)
        srv.slow_ms = a.slow_ms
        srv.hang_max = a.hang_max
        srv.no_handshake = a.no_handshake
    else:
        srv = Server(a.bind, a.port, ProxyHandler)
        srv.auth = a.auth
    srv.stats = Stats()
    srv.log_file = a.log
    print("PORT %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
