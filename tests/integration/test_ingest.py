#!/usr/bin/env python3
"""Integration tests for teutod's ingest: the real server on ephemeral loopback ports in a
temporary data directory, spoken to over sockets; data read back with `teuto dump` after the
server stopped (it holds the directory lock while running).

Standard library only. Prints `N passed, M failed` and exits non-zero on any failure.
"""
import base64
import gzip
import hashlib
import http.client
import json
import re
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import teutod_util
from teutod_util import BUILD, SRC, TEUTO, TEUTOD, Server, free_port, request  # noqa: F401


def raw(port, data, timeout=5):
    """Sends raw bytes, half-closes, returns everything the server answered."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            out += b
        return out
    finally:
        s.close()


def dump(data, db):
    p = subprocess.run([TEUTO, "dump", data, "--db", db], capture_output=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("teuto dump failed (%d): %s" % (p.returncode, p.stderr.decode(errors="replace")))
    return [l for l in p.stdout.decode().splitlines() if l.strip()]


def eq(a, b, what=""):
    if a != b:
        raise AssertionError("%s: expected %r, got %r" % (what, b, a))


def ok(cond, what):
    if not cond:
        raise AssertionError(what)


def tcp_send(port, data):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(data)
    s.close()


def wait_rows(port, proto, n, timeout=10):
    """Waits until /metrics counts n rows written over proto (TCP writes have no ack)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        _, _, body = request(port, "GET", "/metrics")
        for line in body.decode().splitlines():
            if line.startswith('teuto_ingest_rows_total{proto="%s"}' % proto) and int(line.split()[-1]) >= n:
                return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %d %s rows" % (n, proto))


TMP = tempfile.mkdtemp(prefix="teuto-ingest-")
_count = [0]


def newdir():
    _count[0] += 1
    return os.path.join(TMP, "data%d" % _count[0])


# ---------------------------------------------------------------- tests

def test_endpoints():
    s = Server(newdir())
    try:
        st, h, _ = request(s.http_port, "GET", "/ping")
        eq(st, 204, "GET /ping")
        ok("X-Influxdb-Version" in h, "X-Influxdb-Version header")
        st, h, body = request(s.http_port, "HEAD", "/ping")
        eq(st, 204, "HEAD /ping")
        st, _, body = request(s.http_port, "GET", "/health")
        eq(st, 200, "/health")
        eq(json.loads(body)["status"], "pass", "/health status")
        st, _, body = request(s.http_port, "GET", "/settings")
        eq(json.loads(body), {"config": {"line.proto.support.versions": [1]}}, "/settings")
        st, _, body = request(s.http_port, "GET", "/nope")
        eq(st, 404, "unknown path")
        st, _, _ = request(s.http_port, "GET", "/write")
        eq(st, 405, "GET /write")
        st, h, body = request(s.http_port, "GET", "/metrics")
        eq(st, 200, "/metrics")
        text = body.decode()
        ok('teuto_http_requests_total{endpoint="/ping",status="204"} 3' in text, "ping counted (startup probe + 2):\n" + text)
    finally:
        eq(s.stop(), 0, "exit status")


def test_writes_all_apis_and_restart():
    data = newdir()
    s = Server(data)
    try:
        st, _, b = request(s.http_port, "POST", "/write?db=one&rp=&precision=s&u=&p=",
                           b"cpu,host=a usage=1i 100\ncpu,host=b usage=2i 100\n")
        eq(st, 204, "v1 write: %r" % b)
        st, _, b = request(s.http_port, "POST", "/api/v2/write?org=x&bucket=two&precision=ms",
                           b"mem,host=a free=3i 5000\r\n", {"Authorization": "Token whatever"})
        eq(st, 204, "v2 write: %r" % b)
        st, _, b = request(s.http_port, "POST", "/api/v3/write_lp?db=three&precision=second",
                           b"disk,host=a used=4i 7\n")
        eq(st, 204, "v3 write: %r" % b)
        st, _, b = request(s.http_port, "POST", "/write", b"nodb v=5i 9\n")  # QuestDB style: no db
        eq(st, 204, "write without db: %r" % b)
        tcp_send(s.lp_port, b"tcp,host=a v=6i 11\ntcp,host=b v=7i 12")  # last line: no newline
        wait_rows(s.http_port, "tcp", 2)
    finally:
        eq(s.stop(), 0, "exit status")
    eq(dump(data, "one"), ["cpu,host=a usage=1i 100000000000", "cpu,host=b usage=2i 100000000000"], "db one")
    eq(dump(data, "two"), ["mem,host=a free=3i 5000000000"], "db two")
    eq(dump(data, "three"), ["disk,host=a used=4i 7000000000"], "db three")
    eq(dump(data, "default"), ["nodb v=5i 9", "tcp,host=a v=6i 11", "tcp,host=b v=7i 12"], "db default")
    # restart: everything is still there, and new writes join it
    s = Server(data)
    try:
        st, _, _ = request(s.http_port, "POST", "/write?db=one&precision=s", b"cpu,host=c usage=3i 101\n")
        eq(st, 204, "write after restart")
    finally:
        eq(s.stop(), 0, "exit status")
    eq(dump(data, "one"), ["cpu,host=a usage=1i 100000000000", "cpu,host=b usage=2i 100000000000",
                           "cpu,host=c usage=3i 101000000000"], "db one after restart")


def test_gzip_chunked_keepalive_continue():
    data = newdir()
    s = Server(data)
    try:
        body = b"".join(b"g,n=%d v=%di %d\n" % (i % 10, i, 1000 + i) for i in range(500))
        st, _, b = request(s.http_port, "POST", "/api/v2/write?bucket=gz", gzip.compress(body),
                           {"Content-Encoding": "gzip"})
        eq(st, 204, "gzip write: %r" % b)
        # two gzip members back to back are one body (RFC 1952)
        st, _, b = request(s.http_port, "POST", "/write?db=gz2",
                           gzip.compress(b"a v=1i 1\n") + gzip.compress(b"a v=2i 2\n"),
                           {"Content-Encoding": "gzip"})
        eq(st, 204, "multi-member gzip: %r" % b)
        # chunked, split at awkward places, over a raw socket
        payload = b"ch v=1i 1\nch v=2i 2\nch v=3i 3\n"
        chunks = [payload[:3], payload[3:17], payload[17:]]
        req = b"POST /write?db=ch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        for c in chunks:
            req += b"%x;ext=1\r\n%s\r\n" % (len(c), c)
        req += b"0\r\nTrailer-X: y\r\n\r\n"
        out = raw(s.http_port, req)
        ok(out.startswith(b"HTTP/1.1 204"), "chunked write: %r" % out)
        # keep-alive: several requests on one connection, one of them a write
        c = http.client.HTTPConnection("127.0.0.1", s.http_port, timeout=10)
        for i in range(5):
            c.request("POST", "/write?db=ka", b"ka v=%di %d\n" % (i, i))
            r = c.getresponse()
            r.read()
            eq(r.status, 204, "keep-alive write %d" % i)
            c.request("GET", "/ping")
            r = c.getresponse()
            r.read()
            eq(r.status, 204, "keep-alive ping %d" % i)
        c.close()
        # pipelined requests in one send
        out = raw(s.http_port, b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
                               b"POST /write?db=pl HTTP/1.1\r\nContent-Length: 9\r\n\r\npl v=1i 1"
                               b"GET /ping HTTP/1.1\r\nConnection: close\r\n\r\n")
        eq(out.count(b"HTTP/1.1 204"), 3, "pipelined answers: %r" % out)
        # Expect: 100-continue
        sock = socket.create_connection(("127.0.0.1", s.http_port), timeout=5)
        sock.sendall(b"POST /write?db=ec HTTP/1.1\r\nContent-Length: 9\r\nExpect: 100-continue\r\n\r\n")
        first = sock.recv(100)
        ok(first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), "100 Continue: %r" % first)
        sock.sendall(b"ec v=1i 1")
        rest = first[25:] + sock.recv(1000)
        ok(rest.startswith(b"HTTP/1.1 204"), "after 100 Continue: %r" % rest)
        sock.close()
    finally:
        eq(s.stop(), 0, "exit status")
    eq(len(dump(data, "gz")), 500, "gzip rows")
    eq(dump(data, "gz2"), ["a v=1i 1", "a v=2i 2"], "multi-member gzip rows")
    eq(dump(data, "ch"), ["ch v=1i 1", "ch v=2i 2", "ch v=3i 3"], "chunked rows")
    eq(dump(data, "ka"), ["ka v=%di %d" % (i, i) for i in range(5)], "keep-alive rows")
    eq(dump(data, "pl"), ["pl v=1i 1"], "pipelined rows")
    eq(dump(data, "ec"), ["ec v=1i 1"], "100-continue rows")


def test_large_bodies_in_pieces():
    """Bodies far over one read (the loop receives them straight into the body buffer) arrive
    in uneven pieces with pauses, the next request's head in the same send as the end of a
    body: every line is stored exactly once, in both databases."""
    data = newdir()
    s = Server(data)
    n1, n2 = 40000, 7000
    body1 = b"".join(b"big,s=%d v=%di %d\n" % (i % 97, i, 1000 + i) for i in range(n1))
    body2 = b"".join(b"big2,s=%d v=%di %d\n" % (i % 13, -i, 5000 + i) for i in range(n2))
    stream = (b"POST /write?db=big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body1)
              + body1
              + b"POST /write?db=big2 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body2)
              + body2 + b"GET /ping HTTP/1.1\r\nConnection: close\r\n\r\n")
    try:
        sock = socket.create_connection(("127.0.0.1", s.http_port), timeout=10)
        sizes = [1, 70, 65536, 3, 200000, 131072, 17, 400000]
        off, k = 0, 0
        while off < len(stream):
            n = sizes[k % len(sizes)]
            sock.sendall(stream[off:off + n])
            off += n
            k += 1
            if k % 3 == 0:
                time.sleep(0.02)  # let the server read what it has
        out = b""
        while True:
            b = sock.recv(65536)
            if not b:
                break
            out += b
        sock.close()
        eq(out.count(b"HTTP/1.1 204"), 3, "three answers: %r" % out[:300])
    finally:
        eq(s.stop(), 0, "exit status")
    want1 = sorted(b"big,s=%d v=%di %d" % (i % 97, i, 1000 + i) for i in range(n1))
    eq(sorted(l.encode() for l in dump(data, "big")), want1, "db big")
    want2 = sorted(b"big2,s=%d v=%di %d" % (i % 13, -i, 5000 + i) for i in range(n2))
    eq(sorted(l.encode() for l in dump(data, "big2")), want2, "db big2")


def test_partial_writes():
    data = newdir()
    s = Server(data)
    try:
        body = b"p v=1i 1\np v=SECRETVALUE 2\np v=3i 3\np,t=x v=\n\np v=5i 5\n"
        st, _, b = request(s.http_port, "POST", "/write?db=p1", body)
        eq(st, 400, "v1 partial status")
        j = json.loads(b)
        ok(j["error"].startswith("partial write:"), "v1 error: %r" % j)
        ok("line 2" in j["error"] and "line 4" in j["error"], "v1 line numbers: %r" % j)
        ok(b"SECRETVALUE" not in b, "raw value echoed: %r" % b)
        st, _, b = request(s.http_port, "POST", "/api/v2/write?bucket=p2", body)
        eq(st, 400, "v2 partial status")
        j = json.loads(b)
        eq(j["code"], "invalid", "v2 code")
        ok("line 2" in j["message"], "v2 message: %r" % j)
        st, _, b = request(s.http_port, "POST", "/api/v3/write_lp?db=p3&accept_partial=true", body)
        eq(st, 400, "v3 partial status")
        j = json.loads(b)
        eq([d["line_number"] for d in j["data"]], [2, 4], "v3 line numbers: %r" % j)
        ok(all(d["error_message"] for d in j["data"]), "v3 messages")
        ok(b"SECRETVALUE" not in b, "raw value echoed: %r" % b)
        # accept_partial=false: one bad line and nothing of the body is written
        st, _, b = request(s.http_port, "POST",
                           "/api/v3/write_lp?db=p4&precision=ns&accept_partial=false", body)
        eq(st, 400, "v3 all-or-nothing status: %r" % b)
        j = json.loads(b)
        eq([d["line_number"] for d in j["data"]], [2, 4], "v3 all-or-nothing line numbers: %r" % j)
        ok("no line was written" in j["error"], "v3 all-or-nothing message: %r" % j)
        st, _, b = request(s.http_port, "POST",
                           "/api/v3/write_lp?db=p4&precision=ns&accept_partial=false",
                           b"q v=1i 1\nq v=2i 2\n")
        eq(st, 204, "v3 all-or-nothing, all good: %r" % b)
        _, _, m = request(s.http_port, "GET", "/metrics")
        ok('teuto_ingest_lines_rejected_total{proto="http",reason="syntax"} 8' in m.decode(),
           "rejected lines counted:\n" + m.decode())
    finally:
        eq(s.stop(), 0, "exit status")
    for db in ("p1", "p2"):
        eq(dump(data, db), ["p v=1i 1", "p v=3i 3", "p v=5i 5"], "good lines kept in " + db)
    # v3 without a precision uses InfluxDB 3's default, auto: timestamps below 5e9 are seconds
    eq(dump(data, "p3"), ["p v=1i 1000000000", "p v=3i 3000000000", "p v=5i 5000000000"],
       "good lines kept in p3 (precision auto)")
    eq(dump(data, "p4"), ["q v=1i 1", "q v=2i 2"], "all-or-nothing: only the clean body")


def test_auth_and_limits():
    data = newdir()
    cfg = os.path.join(TMP, "teutod-auth.ini")
    wtok, rtok = "writer-token-0123456789", "reader-token-9876543210"
    with open(cfg, "w") as f:
        f.write("[server]\nbody_bytes_max = 4096\nauto_create = false\nidle_timeout_s = 30\n"
                "[tokens]\nwriter = write:%s\nreader = read:blake2b:%s\n"
                % (hashlib.sha256(wtok.encode()).hexdigest(),
                   hashlib.blake2b(rtok.encode(), digest_size=32).hexdigest()))
    # a database must exist for writes with auto_create off: make it with a first server
    s = Server(data)
    request(s.http_port, "POST", "/write?db=auth", b"a v=0i 0\n")
    eq(s.stop(), 0, "exit status")
    s = Server(data, config=cfg)
    try:
        line = b"a v=1i 1\n"
        st, _, b = request(s.http_port, "POST", "/write?db=auth", line)
        eq(st, 401, "no token")
        st, _, b = request(s.http_port, "POST", "/api/v2/write?bucket=auth", line,
                           {"Authorization": "Token wrong"})
        eq(st, 401, "wrong token")
        eq(json.loads(b)["code"], "unauthorized", "v2 401 body")
        st, _, _ = request(s.http_port, "POST", "/api/v2/write?bucket=auth", line,
                           {"Authorization": "Token " + rtok})
        eq(st, 403, "read token writing")
        st, _, _ = request(s.http_port, "GET", "/metrics", None, {"Authorization": "Token " + wtok})
        eq(st, 403, "write token reading metrics")
        st, _, _ = request(s.http_port, "GET", "/metrics", None, {"Authorization": "Bearer " + rtok})
        eq(st, 200, "read token reading metrics")
        st, _, b = request(s.http_port, "POST", "/api/v2/write?bucket=auth", line,
                           {"Authorization": "Token " + wtok})
        eq(st, 204, "write token: %r" % b)
        basic = base64.b64encode(b"user:" + wtok.encode()).decode()
        st, _, _ = request(s.http_port, "POST", "/write?db=auth", b"a v=2i 2\n",
                           {"Authorization": "Basic " + basic})
        eq(st, 204, "basic auth")
        st, _, _ = request(s.http_port, "POST", "/write?db=auth&u=x&p=" + wtok, b"a v=3i 3\n")
        eq(st, 204, "u/p parameters")
        st, _, _ = request(s.http_port, "GET", "/ping")
        eq(st, 204, "ping needs no token")
        st, _, b = request(s.http_port, "POST", "/write?db=missing&p=" + wtok, line)
        eq(st, 404, "unknown database with auto_create off: %r" % b)
        # 413: over the body limit, by Content-Length and by inflated size
        st, _, b = request(s.http_port, "POST", "/write?db=auth&p=" + wtok, b"a v=9i 9\n" * 1000)
        eq(st, 413, "body over limit")
        st, _, b = request(s.http_port, "POST", "/write?db=auth&p=" + wtok,
                           gzip.compress(b"a v=9i 9\n" * 100000), {"Content-Encoding": "gzip"})
        eq(st, 413, "inflated body over limit: %r" % b)
        st, _, _ = request(s.http_port, "GET", "/ping")
        eq(st, 204, "still serving after 413")
    finally:
        eq(s.stop(), 0, "exit status")
    eq(dump(data, "auth"), ["a v=0i 0", "a v=1i 1", "a v=2i 2", "a v=3i 3"], "auth rows")
    # without tokens, a non-loopback address is refused
    p = subprocess.run([TEUTOD, "--data", newdir(), "--http", "0.0.0.0:%d" % free_port(),
                        "--lp", "off"], capture_output=True, timeout=20)
    eq(p.returncode, 2, "non-loopback without tokens: " + p.stderr.decode(errors="replace"))
    ok(b"non-loopback" in p.stderr, "clear error: %r" % p.stderr)
    p = subprocess.run([TEUTOD, "--help"], capture_output=True, timeout=20)
    for flag in (b"--data", b"--config", b"--http", b"--lp", b"--query", b"--durability", b"--help"):
        ok(flag in p.stdout, "--help lists %r" % flag)
    bad = os.path.join(TMP, "bad.ini")
    with open(bad, "w") as f:
        f.write("[server]\nbody_bytes_mx = 5\n")
    p = subprocess.run([TEUTOD, "--config", bad], capture_output=True, timeout=20)
    eq(p.returncode, 2, "unknown config key")
    ok(b"line 2" in p.stderr, "config error names the line: %r" % p.stderr)


def test_hostile_input():
    data = newdir()
    s = Server(data)
    try:
        for junk in (b"\x00\xff\xfe garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                     b"POST /write HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                     b"POST /write HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                     b"GET /ping HTTP/1.1\r\n" + b"X: " + b"a" * 20000 + b"\r\n\r\n"):
            out = raw(s.http_port, junk)
            ok(out.startswith(b"HTTP/1.1 4") or out.startswith(b"HTTP/1.1 5"), "error answer for %r: %r" % (junk[:40], out))
            ok(b"Connection: close" in out, "closes after a parse error: %r" % out)
        # truncated gzip: a clean 400, nothing written
        gz = gzip.compress(b"t v=1i 1\n" * 100)[:-12]
        st, _, b = request(s.http_port, "POST", "/write?db=tg", gz, {"Content-Encoding": "gzip"})
        eq(st, 400, "truncated gzip: %r" % b)
        ok(b"gzip" in b, "truncated gzip reason: %r" % b)
        # a client that stops mid-body does not block the others
        hang = socket.create_connection(("127.0.0.1", s.http_port))
        hang.sendall(b"POST /write HTTP/1.1\r\nContent-Length: 100000\r\n\r\nabc")
        st, _, _ = request(s.http_port, "GET", "/ping")
        eq(st, 204, "serving others while one body never ends")
        hang.close()
        # TCP: bad and over-long lines are skipped, the connection stays open
        t = socket.create_connection(("127.0.0.1", s.lp_port))
        t.sendall(b"tcp v=1i 1\ntcp v=oops 2\n")
        t.sendall(b"tcp v=" + b"9" * (2 * 1024 * 1024) + b"i 3\n")  # over the 1 MiB line limit
        t.sendall(b"tcp v=4i 4\n")
        time.sleep(0.2)
        t.sendall(b"tcp v=5i 5\n")
        wait_rows(s.http_port, "tcp", 3)
        t.close()
        _, _, m = request(s.http_port, "GET", "/metrics")
        ok('teuto_ingest_lines_rejected_total{proto="tcp",reason="limit"} 1' in m.decode(), "long line counted")
        log = s.logtext()
        ok("line 2 refused" in log and "line 3 refused" in log, "bad TCP lines logged by number:\n" + log)
        ok("oops" not in log, "raw value logged")
    finally:
        eq(s.stop(), 0, "exit status")
    eq(dump(data, "default"), ["tcp v=1i 1", "tcp v=4i 4", "tcp v=5i 5"], "TCP rows")


def test_sigkill_durability_always():
    data = newdir()
    s = Server(data, args=["--durability", "always"])
    acked = []
    stop = threading.Event()
    errors = []

    def writer(wid):
        c = http.client.HTTPConnection("127.0.0.1", s.http_port, timeout=10)
        i = 0
        while not stop.is_set():
            lines = [b"k,w=%d v=%di %d" % (wid, i + j, i + j) for j in range(20)]
            try:
                c.request("POST", "/write?db=k", b"\n".join(lines) + b"\n")
                r = c.getresponse()
                r.read()
            except (OSError, http.client.HTTPException):
                return
            if r.status == 204:
                acked.extend(l.decode() for l in lines)
            else:
                errors.append(r.status)
            i += 20

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    deadline = time.time() + 10
    while len(acked) < 3000 and time.time() < deadline:
        time.sleep(0.01)
    # durability always: every acknowledged write waited for an fdatasync, so the WAL sync
    # histogram has counted some, and its cumulative buckets end at the count
    _, _, m = request(s.http_port, "GET", "/metrics")
    text = m.decode()
    count = re.search(r'^teuto_db_wal_sync_seconds_count\{db="k"\} (\d+)$', text, re.M)
    inf = re.search(r'^teuto_db_wal_sync_seconds_bucket\{db="k",le="\+Inf"\} (\d+)$', text, re.M)
    ok(count and int(count.group(1)) >= 1, "WAL syncs counted:\n" + text[-2000:])
    eq(inf and inf.group(1), count and count.group(1), "+Inf bucket equals the count")
    s.proc.kill()  # SIGKILL mid-stream
    s.proc.wait()
    stop.set()
    for t in threads:
        t.join()
    s.log.close()
    eq(errors, [], "write errors before the kill")
    ok(len(acked) >= 60, "some writes were acknowledged (%d)" % len(acked))
    rows = set(dump(data, "k"))
    missing = [l for l in acked if l not in rows]
    eq(missing[:5], [], "acknowledged rows lost (%d of %d)" % (len(missing), len(acked)))


def metric(port, series):
    """The value of one series (exact name and labels) in /metrics, or None."""
    _, _, body = request(port, "GET", "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return None


def test_durability_always_parked():
    """--durability always: the loop parks a write's connection until the WAL's fdatasync
    covers it (teutod answers from the commit thread's notification): every 204 follows its own
    fdatasync, pipelined requests behind a parked one are answered in order, clients that
    leave while parked are cleaned up, and SIGTERM answers a write in flight before exiting."""
    data = newdir()
    s = Server(data, args=["--durability", "always"])
    stopped = False
    try:
        # sequential writes on one connection: each is appended only after the previous 204,
        # which came after an fdatasync covering the previous write, so n writes take n syncs
        c = http.client.HTTPConnection("127.0.0.1", s.http_port, timeout=10)
        for i in range(20):
            c.request("POST", "/write?db=p", b"p,c=seq v=%di %d\n" % (i, i))
            r = c.getresponse()
            r.read()
            eq(r.status, 204, "sequential write %d" % i)
        c.close()
        syncs = metric(s.http_port, 'teuto_db_wal_syncs_total{db="p"}')
        ok(syncs is not None and syncs >= 20, "an fdatasync per sequential write: %r" % syncs)

        # pipelined: a partial write (400 naming its bad line) between good ones, then a ping;
        # the answers come in request order, each after the one before it was resumed
        bodies = [b"p,c=pipe v=1i 1\n", b"p,c=pipe v=2i 2\np,c=pipe v=oops 3\n", b"p,c=pipe v=4i 4\n"]
        reqs = b"".join(b"POST /write?db=p HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                        % len(b) + b for b in bodies)
        out = raw(s.http_port, reqs + b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n", timeout=10)
        eq(re.findall(rb"HTTP/1\.1 (\d+)", out), [b"204", b"400", b"204", b"204"], "pipelined: %r" % out)
        ok(b"line 2: invalid field value" in out, "the bad line named after parking: %r" % out)

        # clients that leave while their write is parked: one closes, one resets
        rows_before = metric(s.http_port, 'teuto_ingest_rows_total{proto="http"}') or 0
        body = b"".join(b"p,c=gone v=%di %d\n" % (i, i) for i in range(20000))
        for reset in (False, True):
            g = socket.create_connection(("127.0.0.1", s.http_port), timeout=10)
            g.sendall(b"POST /write?db=p HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                      % len(body) + body)
            if reset:
                g.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            g.close()
        # the closing client's body was all sent, so its rows get written (the reset one's may
        # not): only then has teutod surely seen the clients, and only then may the count of
        # open connections (1: this scrape) say they are gone; it must then stay put
        deadline = time.time() + 10
        while ((metric(s.http_port, 'teuto_ingest_rows_total{proto="http"}') or 0) < rows_before + 20000
               and time.time() < deadline):
            time.sleep(0.05)
        steady_since = None
        while time.time() < deadline:
            if metric(s.http_port, "teuto_connections") != 1:
                steady_since = None
            elif steady_since is None:
                steady_since = time.time()
            elif time.time() - steady_since >= 0.3:
                break
            time.sleep(0.05)
        eq(metric(s.http_port, "teuto_connections"), 1, "connections after the clients left")
        st, _, b = request(s.http_port, "POST", "/write?db=p", b"p,c=after v=1i 1\n")
        eq(st, 204, "served after the clients left: %r" % b)

        # line protocol over TCP parks too (no fdatasync on the loop): lines in pieces, one
        # connection after another, the last line without a newline; HTTP is served meanwhile
        for k in range(3):
            t = socket.create_connection(("127.0.0.1", s.lp_port), timeout=10)
            for i in range(4):
                t.sendall(b"tcp,c=park%d v=%di %d\n" % (k, i, i))
                time.sleep(0.02)
            t.sendall(b"tcp,c=park%d v=9i 9" % k)
            t.close()
            st, _, b = request(s.http_port, "GET", "/ping")
            eq(st, 204, "HTTP beside a parked TCP writer")
        wait_rows(s.http_port, "tcp", 15)

        # SIGTERM while a write is in flight: it is answered (after its fdatasync), then exit 0
        sock = socket.create_connection(("127.0.0.1", s.http_port), timeout=10)
        sock.sendall(b"POST /write?db=p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"d\r\np,c=t v=1i 1\n\r\n")
        time.sleep(0.2)
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        ok(s.proc.poll() is None, "teutod waits for the write in flight")
        sock.sendall(b"d\r\np,c=t v=2i 2\n\r\n0\r\n\r\n")
        resp = sock.recv(1000)
        ok(resp.startswith(b"HTTP/1.1 204") and b"Connection: close" in resp, "in-flight answer: %r" % resp)
        sock.close()
        eq(s.proc.wait(30), 0, "exit status")
        s.log.close()
        stopped = True
    finally:
        if not stopped:
            eq(s.stop(), 0, "exit status")
    rows = dump(data, "p")
    for i in range(20):
        ok("p,c=seq v=%di %d" % (i, i) in rows, "sequential row %d" % i)
    for l in ("p,c=pipe v=1i 1", "p,c=pipe v=2i 2", "p,c=pipe v=4i 4", "p,c=after v=1i 1",
              "p,c=t v=1i 1", "p,c=t v=2i 2"):
        ok(l in rows, "row %s" % l)
    ok("p,c=pipe v=oops 3" not in " ".join(rows) and not any(r.startswith("p,c=pipe v=3") for r in rows),
       "the bad line was not written")
    rows = dump(data, "default")
    for k in range(3):
        for i in list(range(4)) + [9]:
            ok("tcp,c=park%d v=%di %d" % (k, i, i) in rows, "TCP row park%d %d" % (k, i))


def test_timeouts_and_connection_limit():
    cfg = os.path.join(TMP, "teutod-timeouts.ini")
    with open(cfg, "w") as f:
        f.write("[server]\nidle_timeout_s = 1\nrequest_timeout_s = 3\nconnections_max = 4\n")
    s = Server(newdir(), config=cfg)
    try:
        idle = socket.create_connection(("127.0.0.1", s.http_port), timeout=10)
        t0 = time.time()
        eq(idle.recv(10), b"", "idle connection closed")
        ok(time.time() - t0 < 5, "idle timeout took %.1f s" % (time.time() - t0))
        idle.close()
        # a client dribbling its head is never idle, but the request timeout ends it
        slow = socket.create_connection(("127.0.0.1", s.http_port), timeout=10)
        slow.sendall(b"POST /write HTTP/1.1\r\n")
        t0 = time.time()
        closed = False
        while time.time() - t0 < 8:
            try:
                slow.sendall(b"X: y\r\n")
            except OSError:
                closed = True
                break
            time.sleep(0.3)
        ok(closed, "a dribbling client is cut off")
        slow.close()
        # connections over the limit are closed at once; the server still serves afterwards
        held = [socket.create_connection(("127.0.0.1", s.http_port)) for _ in range(4)]
        time.sleep(0.2)
        extra = socket.create_connection(("127.0.0.1", s.http_port), timeout=5)
        try:
            eq(extra.recv(10), b"", "connection over the limit closed")
        except ConnectionResetError:
            pass
        extra.close()
        for h in held:
            h.close()
        time.sleep(0.3)
        st, _, _ = request(s.http_port, "GET", "/ping")
        eq(st, 204, "serving after the limit")
    finally:
        eq(s.stop(), 0, "exit status")


def test_sigterm_finishes_in_flight():
    data = newdir()
    s = Server(data)
    sock = socket.create_connection(("127.0.0.1", s.http_port), timeout=10)
    sock.sendall(b"POST /write?db=inflight HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"9\r\nf v=1i 1\n\r\n")
    idle = socket.create_connection(("127.0.0.1", s.http_port), timeout=10)
    time.sleep(0.2)
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    ok(s.proc.poll() is None, "teutod waits for the request in flight")
    ok(idle.recv(10) == b"", "an idle connection is closed at stop")
    sock.sendall(b"9\r\nf v=2i 2\n\r\n0\r\n\r\n")
    out = sock.recv(1000)
    ok(out.startswith(b"HTTP/1.1 204") and b"Connection: close" in out, "in-flight answer: %r" % out)
    eq(s.proc.wait(30), 0, "exit status")
    s.log.close()
    sock.close()
    idle.close()
    eq(dump(data, "inflight"), ["f v=1i 1", "f v=2i 2"], "in-flight rows")


def test_series_limit():
    """A million tag values must not mean a million series: past the configured limit new
    series are refused per line (400 partial write naming the lines), known ones still go."""
    data = newdir()
    cfg = os.path.join(TMP, "teutod-series.ini")
    with open(cfg, "w") as f:
        f.write("[server]\nseries_per_measurement_max = 100\n")
    s = Server(data, config=cfg)
    try:
        body = b"".join(b"m,tag=v%d x=%di %d\n" % (i, i, i) for i in range(1000))
        st, _, b = request(s.http_port, "POST", "/write?db=lim", body)
        eq(st, 400, "over the series limit: %r" % b)
        err = json.loads(b)["error"]
        ok("line 101" in err and "limit exceeded" in err, "first refused line named: " + err)
        st, _, b = request(s.http_port, "POST", "/write?db=lim", b"m,tag=v7 x=-1i 5000\n")
        eq(st, 204, "a known series is still written: %r" % b)
    finally:
        eq(s.stop(), 0, "exit status")
    rows = dump(data, "lim")
    eq(len(rows), 101, "100 series' rows plus the later one")
    ok("m,tag=v7 x=-1i 5000" in rows, "later write to a known series kept")


def server_threads(s):
    """[(tid, name)] of the running server's threads (those that end meanwhile are left out)."""
    out = []
    for tid in os.listdir("/proc/%d/task" % s.proc.pid):
        try:
            with open("/proc/%d/task/%s/comm" % (s.proc.pid, tid)) as f:
                out.append((int(tid), f.read().strip()))
        except OSError:
            pass  # a thread that ended meanwhile
    return out


def test_background_priority():
    """Each database's flush thread runs at SCHED_IDLE unless [server] background_priority =
    normal; a bad value is refused naming the line."""
    def policies(s):
        """{thread name: [scheduling policies]} of the server's threads."""
        out = {}
        for tid, name in server_threads(s):
            try:
                out.setdefault(name, []).append(os.sched_getscheduler(tid))
            except OSError:
                pass  # a thread that ended meanwhile
        return out
    for value, want_idle in (("idle", True), ("normal", False), (None, True)):
        cfg = os.path.join(TMP, "teutod-bg.ini")
        with open(cfg, "w") as f:
            f.write("[server]\n" + ("background_priority = %s\n" % value if value else ""))
        s = Server(newdir(), config=cfg)
        try:
            st, _, b = request(s.http_port, "POST", "/write?db=bg", b"m v=1i 1\n")
            eq(st, 204, "write: %r" % b)  # the database, and its background thread, exist now
            want = [os.SCHED_IDLE if want_idle else os.SCHED_OTHER]
            deadline = time.time() + 10
            while time.time() < deadline and policies(s).get("teuto-bg") != want:
                time.sleep(0.05)
            pol = policies(s)
            eq(pol.get("teuto-bg"), want, "the flush thread's policy with %r" % value)
            # the event loops, which answer requests, stay at normal priority
            eq(set(p for n, ps in pol.items() if n.startswith("teutod-loop") for p in ps),
               {os.SCHED_OTHER}, "loop threads")
        finally:
            eq(s.stop(), 0, "exit status")
    with open(cfg, "w") as f:
        f.write("[server]\nbackground_priority = low\n")
    p = subprocess.run([TEUTOD, "--config", cfg], capture_output=True, timeout=20)
    eq(p.returncode, 2, "bad background_priority")
    ok(b"line 2" in p.stderr and b"idle or normal" in p.stderr, "clear error: %r" % p.stderr)


def test_parse_threads():
    """A body of 64 KiB and more is parsed ahead on the database's teuto-parse threads
    ([server] parse_threads, default one per core, 0 = none); with or without them the same
    rows are kept and the same bad lines are named. A bad value is refused naming the line."""
    n = 6000
    bad = {2, 3000, 4500, 5999}  # the second line, and lines well past the writer's first third
    lines = []
    for i in range(1, n + 1):
        if i in bad:
            lines.append(b"pt,k=v%d x=NaN %d" % (i % 4, i))
        else:
            lines.append(b"pt,k=v%d x=%d.5,y=%di %d" % (i % 4, i, -i, i))
    body = b"\n".join(lines) + b"\n"
    ok(len(body) >= 64 * 1024, "big enough to be parsed ahead")
    for value, want_threads in (("0", 0), ("2", 2), (None, os.cpu_count())):
        cfg = os.path.join(TMP, "teutod-parse.ini")
        with open(cfg, "w") as f:
            f.write("[server]\n" + ("parse_threads = %s\n" % value if value else ""))
        data = newdir()
        s = Server(data, config=cfg)
        try:
            st, _, b = request(s.http_port, "POST", "/write?db=pt&precision=s", body)
            eq(st, 400, "partial write with %r: %r" % (value, b[:200]))
            err = json.loads(b)["error"]
            for i in sorted(bad)[:3]:  # the error names the first bad lines
                ok("line %d" % i in err, "line %d named with %r: %r" % (i, value, err))
            names = [name for _, name in server_threads(s)]
            eq(names.count("teuto-parse"), min(want_threads, 8), "parse threads with %r" % value)
        finally:
            eq(s.stop(), 0, "exit status")
        rows = dump(data, "pt")
        eq(len(rows), n - len(bad), "rows kept with %r" % value)
        ok("pt,k=v1 x=4001.5,y=-4001i 4001000000000" in rows, "a row parsed ahead, read back")
    with open(cfg, "w") as f:
        f.write("[server]\nparse_threads = 9\n")
    p = subprocess.run([TEUTOD, "--config", cfg], capture_output=True, timeout=20)
    eq(p.returncode, 2, "bad parse_threads")
    ok(b"line 2" in p.stderr and b"parse_threads" in p.stderr, "clear error: %r" % p.stderr)


def test_bodies_budget():
    """Each connection may send up to body_bytes_max, but all bodies together stay within
    bodies_bytes_max: past it a request gets 503, and the others are served."""
    data = newdir()
    cfg = os.path.join(TMP, "teutod-bodies.ini")
    with open(cfg, "w") as f:
        f.write("[server]\nbodies_bytes_max = 2500000\n")
    s = Server(data, config=cfg)
    try:
        line = b"m,h=a v=1i 1\n"
        n = 1000000 // len(line)
        body = line * n
        socks = []
        for i in range(2):  # two bodies of ~1 MB announced and half sent: 2 MB held
            c = socket.create_connection(("127.0.0.1", s.http_port), timeout=10)
            c.sendall(b"POST /write?db=b HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                      % len(body) + body[:len(body) // 2])
            socks.append(c)
        time.sleep(0.3)
        st, _, b = request(s.http_port, "POST", "/write?db=b", body)
        eq(st, 503, "a third body over the budget: %r" % b[:200])
        for c in socks:  # the first two complete normally
            c.sendall(body[len(body) // 2:])
            resp = c.recv(4096)
            ok(resp.startswith(b"HTTP/1.1 204"), "held body completes: %r" % resp[:100])
            c.close()
        st, _, b = request(s.http_port, "POST", "/write?db=b", body)
        eq(st, 204, "budget released after the requests: %r" % b[:200])
    finally:
        eq(s.stop(), 0, "exit status")


TESTS = [test_endpoints, test_series_limit, test_background_priority, test_parse_threads, test_bodies_budget, test_timeouts_and_connection_limit, test_sigterm_finishes_in_flight, test_writes_all_apis_and_restart, test_gzip_chunked_keepalive_continue, test_large_bodies_in_pieces,
         test_partial_writes, test_auth_and_limits, test_hostile_input, test_sigkill_durability_always,
         test_durability_always_parked]


def main():
    return teutod_util.run_tests(TESTS, TMP)


if __name__ == "__main__":
    sys.exit(main())
