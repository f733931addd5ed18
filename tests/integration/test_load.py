#!/usr/bin/env python3
"""teuto-load against stand-in servers (python3 standard library only).

A tiny HTTP server on a free loopback port takes POST /write, and a tiny TCP server takes raw
line protocol; both check every line against the sample dataset's shape (bench/tsgen.h) and
keep what arrived on which connection. build/teuto-load streams a few thousand rows to them
over 2 connections, and the test asserts that what arrived, what teuto-load's result line
says, and what was asked for agree exactly: the lines are, as a multiset, exactly the lines
build/teuto-gen prints for the same rows; each source stays on one connection in time order;
non-2xx statuses, chunked responses and dropped connections are counted as such.

Environment: TEUTO_BUILD_DIR (default <source>/build), TEUTO_SOURCE_DIR.
"""
import http.server
import os
import re
import socket
import socketserver
import subprocess
import sys
import threading

SOURCE_DIR = os.environ.get("TEUTO_SOURCE_DIR",
                            os.path.dirname(os.path.dirname(os.path.dirname(
                                os.path.abspath(__file__)))))
BUILD_DIR = os.environ.get("TEUTO_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
LOAD = os.path.join(BUILD_DIR, "teuto-load")
GEN = os.path.join(BUILD_DIR, "teuto-gen")

FIELDS = {
    "readings": {"latitude", "longitude", "elevation", "velocity", "heading", "grade",
                 "fuel_consumption"},
    "diagnostics": {"fuel_state", "current_load", "status"},
    "air": {"pm10", "pm25", "no2", "temperature", "humidity"},
}
TAGS = {
    "readings": ["device_version", "driver", "fleet", "model", "name"],
    "diagnostics": ["device_version", "driver", "fleet", "model", "name"],
    "air": ["district", "station"],
}
FLOAT = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
INT = re.compile(r"^-?[0-9]+i$")


def check_line(line):
    """Returns None if line is a valid line of the sample dataset, else the reason."""
    parts = line.split(" ")
    if len(parts) != 3:
        return "want 3 space-separated sections"
    series, fields, ts = parts
    if not re.fullmatch(r"[0-9]{19}", ts):
        return "timestamp is not 19 digits of ns"
    head = series.split(",")
    m = head[0]
    if m not in FIELDS:
        return "unknown measurement %r" % m
    keys = []
    for tag in head[1:]:
        k, eq, v = tag.partition("=")
        if not eq or not v:
            return "bad tag %r" % tag
        keys.append(k)
    if keys != TAGS[m]:
        return "tags %r, want %r" % (keys, TAGS[m])
    seen = set()
    for f in fields.split(","):
        k, eq, v = f.partition("=")
        if not eq:
            return "bad field %r" % f
        if k == "status":
            if not INT.match(v):
                return "status not an integer: %r" % v
        elif not FLOAT.match(v):
            return "field %s not a decimal: %r" % (k, v)
        seen.add(k)
    if seen != FIELDS[m]:
        return "fields %r, want %r" % (sorted(seen), sorted(FIELDS[m]))
    return None


class Sink:
    """What a stand-in server received, per connection."""

    def __init__(self):
        self.lock = threading.Lock()
        self.lines = {}        # connection id -> [lines]
        self.bad = []          # (line, reason)
        self.requests = 0
        self.paths = set()

    def add(self, conn_id, body):
        text = body.decode("utf-8")
        got = text.split("\n")
        if got and got[-1] == "":
            got.pop()
        with self.lock:
            self.requests += 1
            for line in got:
                why = check_line(line)
                if why:
                    self.bad.append((line, why))
                self.lines.setdefault(conn_id, []).append(line)

    def all_lines(self):
        return [l for ls in self.lines.values() for l in ls]


def make_http_server(sink, policy):
    """policy(request_index) -> 'ok' | 'chunked' | 'status:NNN' | 'drop'."""
    counter = {"n": 0}
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with lock:
                n = counter["n"]
                counter["n"] += 1
            action = policy(n)
            if action == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            sink.paths.add(self.path)
            if action.startswith("status:"):
                code = int(action.split(":")[1])
                msg = b'{"error":"refused by the test"}'
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                self.wfile.write(msg)
                return
            sink.add(self.client_address, body)
            if action == "chunked":
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.write(b"5\r\nhello\r\n3\r\n ok\r\n0\r\n\r\n")
            else:
                self.send_response(204)
                self.send_header("X-Influxdb-Version", "test")
                self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def make_tcp_server(sink):
    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            chunks = []
            while True:
                b = self.request.recv(1 << 16)
                if not b:
                    break
                chunks.append(b)
            sink.add(self.client_address, b"".join(chunks))

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def run_load(args):
    p = subprocess.run([LOAD] + args, capture_output=True, text=True, timeout=120)
    result = None
    for line in p.stdout.splitlines():
        if line.startswith("result "):
            result = dict(kv.split("=", 1) for kv in line.split()[1:])
    return p.returncode, result, p.stdout + p.stderr


def dataset_lines(rows):
    out = subprocess.run([GEN, "--rows", str(rows)], capture_output=True, check=True,
                         timeout=120).stdout.decode()
    return out.split("\n")[:-1]


def wait_for(pred, seconds=10.0):
    import time
    end = time.time() + seconds
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


passed = 0
failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok   %s" % name)
    else:
        failed += 1
        print("FAIL %s %s" % (name, detail))


def series_of(line):
    return line.split(" ", 1)[0]


def check_routing(name, sink):
    """Each series on one connection only, in strictly increasing time order there."""
    owner = {}
    ordered = True
    for conn, lines in sink.lines.items():
        last = {}
        for l in lines:
            s = series_of(l)
            owner.setdefault(s, set()).add(conn)
            t = int(l.rsplit(" ", 1)[1])
            if s in last and t <= last[s]:
                ordered = False
            last[s] = t
    check(name + ": each series on one connection", all(len(v) == 1 for v in owner.values()))
    check(name + ": each series in time order", ordered)


def test_http(rows):
    sink = Sink()
    server = make_http_server(sink, lambda n: "ok")
    port = server.server_address[1]
    rc, res, out = run_load(["--http", "127.0.0.1:%d" % port, "--connections", "2",
                             "--batch", "500", "--rows", str(rows), "--db", "t1"])
    server.shutdown()
    check("http: exit status 0", rc == 0, out)
    check("http: result line printed", res is not None, out)
    if res is None:
        return
    got = sink.all_lines()
    check("http: no invalid line", not sink.bad, repr(sink.bad[:3]))
    check("http: lines received == rows requested", len(got) == rows, "%d" % len(got))
    check("http: result lines_sent == lines_ok == rows",
          res["lines_sent"] == res["lines_ok"] == str(rows), repr(res))
    check("http: two connections carried lines", len(sink.lines) == 2,
          repr({k: len(v) for k, v in sink.lines.items()}))
    check("http: connections balanced within a batch",
          len(sink.lines) == 2 and abs(len(list(sink.lines.values())[0]) -
                                       len(list(sink.lines.values())[1])) <= 500)
    check("http: requests == result requests == status_204",
          str(sink.requests) == res["requests"] == res.get("status_204"),
          "%d %r" % (sink.requests, res))
    check("http: lines are exactly teuto-gen's", sorted(got) == sorted(dataset_lines(rows)))
    values = sum(len(l.split(" ")[1].split(",")) for l in got)
    check("http: values_ok counts the field values", res["values_ok"] == str(values),
          "%s vs %d" % (res["values_ok"], values))
    bytes_ = sum(len(l) + 1 for l in got)
    check("http: bytes_ok counts the body bytes", res["bytes_ok"] == str(bytes_))
    check("http: target is /write?db=..&precision=ns",
          sink.paths == {"/write?db=t1&precision=ns"}, repr(sink.paths))
    check("http: latency percentiles present and ordered",
          0 < float(res["p50_ms"]) <= float(res["p90_ms"]) <= float(res["p99_ms"])
          <= float(res["max_ms"]), repr(res))
    check_routing("http", sink)


def test_http_failures(rows):
    # request 3 gets 500, request 5 gets 400, request 7 has its connection dropped, request 9
    # is answered 200 with a chunked body; everything else 204.
    plan = {3: "status:500", 5: "status:400", 7: "drop", 9: "chunked"}
    sink = Sink()
    server = make_http_server(sink, lambda n: plan.get(n, "ok"))
    port = server.server_address[1]
    rc, res, out = run_load(["--http", "127.0.0.1:%d" % port, "--connections", "2",
                             "--batch", "100", "--rows", str(rows), "--timeout", "10"])
    server.shutdown()
    check("failures: exit status 3", rc == 3, "rc=%d %s" % (rc, out))
    if res is None:
        check("failures: result line printed", False, out)
        return
    got = sink.all_lines()
    check("failures: lines_ok == lines received", res["lines_ok"] == str(len(got)),
          "%s vs %d" % (res["lines_ok"], len(got)))
    check("failures: 3 batches of 100 failed", res["lines_failed"] == "300", repr(res))
    check("failures: lines_sent == rows", res["lines_sent"] == str(rows), repr(res))
    check("failures: one 500, one 400, one 200",
          res.get("status_500") == "1" and res.get("status_400") == "1"
          and res.get("status_200") == "1", repr(res))
    check("failures: non2xx == 2, errors == 1", res["non2xx"] == "2" and res["errors"] == "1",
          repr(res))
    check("failures: the first 500 body is shown", "refused by the test" in out, out)


def test_tcp(rows):
    sink = Sink()
    server = make_tcp_server(sink)
    port = server.server_address[1]
    rc, res, out = run_load(["--tcp", "127.0.0.1:%d" % port, "--connections", "2",
                             "--batch", "300", "--rows", str(rows)])
    check("tcp: exit status 0", rc == 0, out)
    check("tcp: result line printed", res is not None, out)
    # the client has closed; the handlers finish reading their sockets
    wait_for(lambda: len(sink.all_lines()) >= rows and len(sink.lines) == 2)
    server.shutdown()
    if res is None:
        return
    got = sink.all_lines()
    check("tcp: no invalid line", not sink.bad, repr(sink.bad[:3]))
    check("tcp: lines received == lines sent == rows requested",
          len(got) == rows and res["lines_sent"] == res["lines_ok"] == str(rows),
          "%d %r" % (len(got), res))
    check("tcp: two connections", len(sink.lines) == 2)
    check("tcp: lines are exactly teuto-gen's", sorted(got) == sorted(dataset_lines(rows)))
    check("tcp: mode=tcp and no latency keys", res["mode"] == "tcp" and "p99_ms" not in res)
    check_routing("tcp", sink)


def test_file(tmpdir):
    path = os.path.join(tmpdir, "in.lp")
    lines = dataset_lines(1000)
    with open(path, "w") as f:
        f.write("# a comment\n\n")
        f.write("\r\n".join(lines[:500]) + "\r\n")
        f.write("\n".join(lines[500:]))  # no final newline
    sink = Sink()
    server = make_http_server(sink, lambda n: "ok")
    port = server.server_address[1]
    rc, res, out = run_load(["--http", "127.0.0.1:%d" % port, "--connections", "2",
                             "--batch", "128", "--file", path])
    server.shutdown()
    got = sink.all_lines()
    check("file: exit 0 and all 1000 lines, comments skipped",
          rc == 0 and res is not None and res["lines_ok"] == "1000" and len(got) == 1000,
          out)
    check("file: lines are the file's", sorted(got) == sorted(lines))


def test_usage():
    p = subprocess.run([LOAD, "--help"], capture_output=True, text=True)
    opts = ["--http", "--tcp", "--db", "--connections", "--batch", "--rows", "--duration",
            "--rate", "--file", "--path", "--token"]
    check("usage: --help lists the options",
          p.returncode == 0 and all(o in p.stdout for o in opts), p.stdout)
    p = subprocess.run([LOAD, "--rows", "10", "--bogus", "1"], capture_output=True, text=True)
    check("usage: an unknown option exits 2", p.returncode == 2)
    # a closed port: nothing listens there right after we close it
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = subprocess.run([LOAD, "--http", "127.0.0.1:%d" % port, "--rows", "10"],
                       capture_output=True, text=True, timeout=60)
    check("usage: a refused first connect exits 1 with a reason",
          p.returncode == 1 and "connect" in p.stderr, p.stderr)


def main():
    import tempfile
    if not os.access(LOAD, os.X_OK) or not os.access(GEN, os.X_OK):
        print("teuto-load or teuto-gen not built in %s" % BUILD_DIR)
        print("0 passed, 1 failed")
        return 1
    test_usage()
    test_http(5000)
    test_http_failures(3000)
    test_tcp(4000)
    with tempfile.TemporaryDirectory() as d:
        test_file(d)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
