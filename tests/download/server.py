#!/usr/bin/env python3
"""HTTP server for the `bitnet download` tests (stdlib only).

Usage: server.py ROOT PORT_FILE LOG
Serves ROOT/<file> for any URL /<scenario>/<owner>/<name>/resolve/<rev>/<file> (also in the
absolute form a proxy receives), on 127.0.0.1 with a free port, written to PORT_FILE once
listening.  Each request is logged to LOG as one tab-separated line:
  time  status  host  path  range  if-none-match  if-range  authorization  proxied
with '-' for an absent header.  The first path part picks the server's behaviour (see SCENARIOS).
"""
import hashlib
import os
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT, PORT_FILE, LOG = sys.argv[1], sys.argv[2], sys.argv[3]
lock = threading.Lock()
hits = {}  # (scenario, file) -> number of requests so far

SCENARIOS = """
plain      ETag = "sha256", Range, If-None-Match, If-Range
cut        first request: full Content-Length, half the body, then the connection is closed
slow       the body trickles (8 KiB every 30 ms)
badrange   a Range request gets 206 with a Content-Range that starts 100 bytes early
norange    Range is ignored (always 200)
r429       first request 429 with Retry-After: 1
a429       always 429 with Retry-After: 0
r503       first request 503 (no Retry-After), second 500, then plain
a500       always 500
auth       401 unless "Authorization: Bearer good"
forbid     403
missing    404
badsha     ETag is the SHA-256 of something else
nosha      ETag is not a SHA-256
linked     302 to /cdn/... with X-Linked-Etag = sha256; /cdn answers with ETag "cdn-1"
linkedbad  the same with a wrong X-Linked-Etag
redir      302 to http://localhost:PORT/plain/... (another host)
redirsame  302 to /plain/... (same host)
loop       302 to itself
"""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def log(self, status):
        h = self.headers
        fields = [
            "%.3f" % time.time(), str(status), h.get("Host", "-"), self.req_path,
            h.get("Range", "-"), h.get("If-None-Match", "-"), h.get("If-Range", "-"),
            h.get("Authorization", "-"), "1" if self.proxied else "0",
        ]
        with lock, open(LOG, "a") as f:
            f.write("\t".join(fields) + "\n")

    def reply(self, status, headers=(), body=b""):
        self.log(status)
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = self.path
        self.proxied = path.startswith("http://")
        if self.proxied:
            path = urllib.parse.urlsplit(path).path
        self.req_path = path
        parts = urllib.parse.unquote(path).split("/")
        # /<scenario>/<owner>/<name>/resolve/<rev>/<file...>  or  /cdn/<file>
        if len(parts) >= 3 and parts[1] == "cdn":
            scenario, fname = "cdn", "/".join(parts[2:])
        elif len(parts) >= 7 and parts[4] == "resolve":
            scenario, fname = parts[1], "/".join(parts[6:])
        else:
            return self.reply(400, body=b"bad path")
        fpath = os.path.join(ROOT, os.path.basename(fname))
        if not os.path.isfile(fpath):
            return self.reply(404, [("X-Error-Message", "Entry not found")])
        with open(fpath, "rb") as f:
            data = f.read()
        sha = hashlib.sha256(data).hexdigest()
        with lock:
            n = hits.get((scenario, fname), 0)
            hits[(scenario, fname)] = n + 1
        rest = path.split("/", 2)[2]  # everything after /<scenario>/
        port = self.server.server_address[1]

        if scenario == "auth" and self.headers.get("Authorization") != "Bearer good":
            return self.reply(401, [("X-Error-Message", "Invalid credentials")])
        if scenario == "forbid":
            return self.reply(403, [("X-Error-Message", "Access to this repository is restricted")])
        if scenario == "missing":
            return self.reply(404, [("X-Error-Message", "Entry not found")])
        if scenario == "a429" or (scenario == "r429" and n == 0):
            return self.reply(429, [("Retry-After", "0" if scenario == "a429" else "1")])
        if scenario == "r503" and n < 2:
            return self.reply(503 if n == 0 else 500)
        if scenario == "a500":
            return self.reply(500)
        if scenario == "redir":
            return self.reply(302, [("Location", "http://localhost:%d/plain/%s" % (port, rest))])
        if scenario == "redirsame":
            return self.reply(302, [("Location", "/plain/" + rest)])
        if scenario == "loop":
            return self.reply(302, [("Location", path)])
        if scenario in ("linked", "linkedbad"):
            linked = sha if scenario == "linked" else hashlib.sha256(data + b"x").hexdigest()
            return self.reply(302, [("Location", "/cdn/" + os.path.basename(fname)),
                                    ("X-Linked-Etag", '"%s"' % linked), ("X-Linked-Size", str(len(data)))])

        etag = '"%s"' % sha
        if scenario == "badsha":
            etag = '"%s"' % hashlib.sha256(data + b"x").hexdigest()
        elif scenario == "nosha":
            etag = '"v1-%s"' % sha[:8]
        elif scenario == "cdn":
            etag = '"cdn-1"'
        if self.headers.get("If-None-Match") == etag:
            return self.reply(304, [("ETag", etag)])

        start = 0
        rng = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if rng and scenario != "norange" and (if_range is None or if_range == etag):
            spec = rng.replace("bytes=", "").split("-")[0]
            start = int(spec)
            if start >= len(data):
                return self.reply(416, [("Content-Range", "bytes */%d" % len(data))])
        if start > 0:
            claimed = start - 100 if scenario == "badrange" else start
            body = data[claimed:]
            self.log(206)
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (claimed, len(data) - 1, len(data)))
        else:
            body = data
            self.log(200)
            self.send_response(200)
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if self.command == "HEAD":
            return
        try:
            if scenario == "cut" and n == 0:
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
            elif scenario == "slow":
                for i in range(0, len(body), 8192):
                    self.wfile.write(body[i:i + 8192])
                    self.wfile.flush()
                    time.sleep(0.03)
            else:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    tmp = PORT_FILE + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, PORT_FILE)
    srv.serve_forever()


if __name__ == "__main__":
    main()
