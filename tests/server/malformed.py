"""Sends malformed HTTP and JSON to a running server and checks that it answers each with an
error (never a crash, a hang or a 5xx) and keeps answering /health.

usage: malformed.py PORT"""
import http.client
import json
import random
import socket
import sys
import threading
import time

PORT = int(sys.argv[1])
fails = 0
checks = 0


def fail(msg):
    global fails
    fails += 1
    print("FAIL:", msg)


def ok():
    global checks
    checks += 1


def exchange(raw, timeout=5.0, half_close=False, read=True, until_close=False):
    """Sends raw bytes on a fresh connection; returns what came back until the server closed
    or went quiet (b'' when it closed without a word)."""
    s = socket.create_connection(("127.0.0.1", PORT), timeout=timeout)
    try:
        s.sendall(raw)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        if not read:
            return b""
        out = b""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out and not until_close:
                head, _, body = out.partition(b"\r\n\r\n")
                clen = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if clen and len(body) >= int(clen[0].split(b":")[1]):
                    break
        return out
    finally:
        s.close()


def status_of(resp):
    if not resp.startswith(b"HTTP/1."):
        return None
    return int(resp.split(b" ", 2)[1])


def expect_client_error(what, raw, allow_close=True, want=None, **kw):
    resp = exchange(raw, **kw)
    st = status_of(resp)
    if st is None:
        if allow_close:
            ok()
        else:
            fail("%s: no HTTP response (%r)" % (what, resp[:80]))
        return
    if want is not None and st != want:
        fail("%s: status %d, wanted %d: %r" % (what, st, want, resp[-200:]))
    elif not 400 <= st < 500 and st != 505:  # 505: HTTP version not supported
        fail("%s: status %d, wanted a 4xx: %r" % (what, st, resp[-200:]))
    else:
        ok()
    body = resp.partition(b"\r\n\r\n")[2]
    if body.startswith(b"{"):
        try:
            e = json.loads(body)["error"]
            assert all(k in e for k in ("message", "type", "param", "code"))
            ok()
        except Exception as ex:  # noqa: BLE001
            fail("%s: not OpenAI's error shape (%s): %r" % (what, ex, body[:200]))


def health(what):
    try:
        c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
        c.request("GET", "/health")
        r = c.getresponse()
        r.read()
        c.close()
        if r.status == 200:
            ok()
        else:
            fail("%s: /health gave %d" % (what, r.status))
    except Exception as ex:  # noqa: BLE001
        fail("%s: /health did not answer: %s" % (what, ex))


def post(body, extra=b""):
    return (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + extra +
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)


# ---- broken HTTP
expect_client_error("truncated body, then close", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"prompt\":", half_close=True)
expect_client_error("truncated headers", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Le", half_close=True)
# a body shorter than its Content-Length and a client that waits: the server's timeout ends it
t0 = time.time()
resp = exchange(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{}", timeout=15)
if time.time() - t0 < 14:
    ok()
else:
    fail("a body short of its Content-Length held the connection past the server's timeout")
health("after a short body")
resp = exchange(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{\"prompt\":\"x\"}GARBAGE\r\n\r\n")
if status_of(resp) == 400:
    ok()
else:
    fail("body longer than Content-Length: %r" % resp[:100])
for cl in (b"-1", b"abc", b"99999999999999999999999999", b"1e3", b" "):
    expect_client_error("Content-Length %r" % cl, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " + cl + b"\r\n\r\n{}")
expect_client_error("two Content-Lengths", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 9\r\n\r\n{}")
expect_client_error("bad chunk size", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n{}\r\n0\r\n\r\n")
expect_client_error("chunk longer than said", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{\"prompt\":1}\r\n0\r\n\r\n")
for junk in (b"\x00\xff\xfe\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\r\n\r\n\r\n",
             b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n", b"POST /v1/completions FTP/1.1\r\n\r\n",
             b"G\x00T /health HTTP/1.1\r\n\r\n"):
    expect_client_error("junk %r" % junk[:20], junk, half_close=True)
expect_client_error("100 kB URL", b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
expect_client_error("100 kB header", b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 100000 + b"\r\n\r\n")
expect_client_error("1 MiB + 1 body", post(b"{\"prompt\":\"" + b"a" * (1 << 20) + b"\"}"), want=413)
expect_client_error("Expect: 100-continue with a huge body",
                    b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 50000000\r\n\r\n", want=413)
health("after broken HTTP")

# two requests in one packet: two answers
resp = exchange(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                until_close=True)
if resp.count(b"HTTP/1.1 200") == 2:
    ok()
else:
    fail("pipelined requests: %r" % resp[:200])
resp = exchange(b"GET /health HTTP/1.0\r\n\r\n")
if status_of(resp) == 200:
    ok()
else:
    fail("HTTP/1.0 without Host: %r" % resp[:100])

# ---- broken JSON
bodies = {
    "deep arrays": b"[" * 200000 + b"]" * 200000,
    "deep objects": b"{\"a\":" * 100000 + b"1" + b"}" * 100000,
    "deep prompt": b"{\"prompt\":" + b"[" * 5000 + b"]" * 5000 + b"}",
    "deep unterminated": b"{\"prompt\":" + b"[" * 100000,
    "overlong UTF-8": b"{\"prompt\":\"\xc0\x80\"}",
    "surrogate in UTF-8": b"{\"prompt\":\"\xed\xa0\x80\"}",
    "lone continuation byte": b"{\"prompt\":\"\x80\"}",
    "truncated UTF-8": b"{\"prompt\":\"\xe2\x82",
    "UTF-8 beyond U+10FFFF": b"{\"prompt\":\"\xf4\x90\x80\x80\"}",
    "Latin-1": b"{\"prompt\":\"caf\xe9\"}",
    "max_tokens 1e308": b"{\"prompt\":\"x\",\"max_tokens\":1e308}",
    "max_tokens 1e400": b"{\"prompt\":\"x\",\"max_tokens\":1e400}",
    "max_tokens -1e400": b"{\"prompt\":\"x\",\"max_tokens\":-1e400}",
    "max_tokens 30 digits": b"{\"prompt\":\"x\",\"max_tokens\":123456789012345678901234567890}",
    "top_k 1e10": b"{\"prompt\":\"x\",\"top_k\":1e10}",
    "seed 2^64": b"{\"prompt\":\"x\",\"seed\":18446744073709551616}",
    "temperature 1e999": b"{\"prompt\":\"x\",\"temperature\":1e999}",
    "token id 1e300": b"{\"prompt\":[1e300]}",
    "token id -1": b"{\"prompt\":[-1]}",
    "NaN": b"{\"prompt\":\"x\",\"temperature\":NaN}",
    "Infinity": b"{\"prompt\":\"x\",\"temperature\":Infinity}",
    "trailing comma": b"{\"prompt\":\"x\",}",
    "single quotes": b"{'prompt':'x'}",
    "bare word": b"prompt",
    "number": b"12",
    "null": b"null",
    "string": b"\"x\"",
    "empty": b"",
    "NUL bytes": b"\x00\x00\x00",
    "unterminated string": b"{\"prompt\":\"abc",
    "bad escape": b"{\"prompt\":\"\\q\"}",
    "short unicode escape": b"{\"prompt\":\"\\u12\"}",
    "messages of numbers": b"{\"messages\":[1,2,3]}",
}
for name, body in bodies.items():
    path = b"/v1/chat/completions" if b"messages" in body else b"/v1/completions"
    raw = post(body).replace(b"/v1/completions", path, 1)
    expect_client_error("JSON: " + name, raw, allow_close=False, want=413 if len(body) > (1 << 20) else 400)
health("after broken JSON")

# odd but valid: must not crash (any 2xx or 4xx)
for name, body in {
    "escaped NUL": b"{\"prompt\":\"a\\u0000b\",\"max_tokens\":2}",
    "lone surrogate escape": b"{\"prompt\":\"\\ud800\",\"max_tokens\":2}",
    "emoji escape pair": b"{\"prompt\":\"\\ud83d\\ude00\",\"max_tokens\":2}",
    "duplicate keys": b"{\"prompt\":\"x\",\"prompt\":\"y\",\"max_tokens\":2}",
    "temperature 1e-400": b"{\"prompt\":\"x\",\"temperature\":1e-400,\"max_tokens\":2}",
    "16 prompts": json.dumps({"prompt": ["p%d" % i for i in range(16)], "max_tokens": 1}).encode(),
    "17 prompts": json.dumps({"prompt": ["p%d" % i for i in range(17)], "max_tokens": 1}).encode(),
    "many stop strings": json.dumps({"prompt": "x", "stop": ["s"] * 100, "max_tokens": 1}).encode(),
    "long stop string": json.dumps({"prompt": "x", "stop": ["s" * 100000], "max_tokens": 2}).encode(),
}.items():
    st = status_of(exchange(post(body)))
    if st is not None and (200 <= st < 300 or 400 <= st < 500):
        ok()
    else:
        fail("odd JSON %s: status %s" % (name, st))

# ---- random bytes, and slow clients holding connections, while /health keeps answering
rng = random.Random(1234)
slow = []
for _ in range(20):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
    slow.append(s)
health("with 20 slow clients")


def fuzz_one(seed):
    r = random.Random(seed)
    start = r.choice([b"", b"GET /health HTTP/1.1\r\n", b"POST /v1/completions HTTP/1.1\r\nContent-Length: 40\r\n\r\n",
                      b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"])
    data = start + bytes(r.randrange(256) for _ in range(r.randrange(1, 400)))
    try:
        exchange(data, timeout=3, half_close=r.random() < 0.5)
    except OSError:
        pass


threads = [threading.Thread(target=fuzz_one, args=(rng.randrange(1 << 30),)) for _ in range(60)]
for t in threads:
    t.start()
for t in threads:
    t.join()
health("after random bytes")
for s in slow:
    s.close()

# and the server still generates
c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
c.request("POST", "/v1/completions", body=json.dumps({"prompt": "In the beginning", "max_tokens": 3}))
r = c.getresponse()
body = r.read()
if r.status == 200 and json.loads(body)["usage"]["completion_tokens"] == 3:
    ok()
else:
    fail("a normal request afterwards: %d %r" % (r.status, body[:200]))
print("%d checks passed, %d failed" % (checks, fails))
sys.exit(1 if fails else 0)
