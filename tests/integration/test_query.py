#!/usr/bin/env python3
"""Integration tests for teutod's queries: HTTP /query (InfluxDB 1.x JSON, chunked JSON, CSV),
the line query protocol, `teuto query` (--http and --dir) and Debian's `influx` shell (1.x).

The real server on ephemeral loopback ports in a temporary data directory. Rows are generated
here (a fixed seed), written over /write, and every answer is checked against what this file
computes itself from those rows (means, maxima, counts, raw values; floats exactly where no
arithmetic happened). Public access is checked with a privacy policy: a public query of a raw
measurement is refused, a public query of a rollup shows suppressed cells as rows with status
"." and nulls. DROP MEASUREMENT (admin only) leaves nothing of the dropped measurement in any
answer, the other measurements as written, and holds over SIGTERM, SIGKILL and concurrent writes.

Standard library only. Prints `N passed, M failed` and exits non-zero on any failure.
"""
import csv
import hashlib
import http.client
import io
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

import teutod_util
from teutod_util import BUILD, SRC, TEUTO, TEUTOD, free_port, request  # noqa: F401

NS = 10 ** 9
HOUR_NS = 3600 * NS
T0 = 1709251200 * NS  # 2024-03-01T00:00:00Z
RANGE = "time >= '2024-03-01T00:00:00Z' AND time < '2024-03-03T12:00:00Z'"
RANGE_END = T0 + 60 * HOUR_NS


# ---------------------------------------------------------------- server and helpers

class Server(teutod_util.Server):
    """teutod (teutod_util.Server) without the TCP line protocol, with /query helpers."""

    def __init__(self, data, args=(), config=None):
        super().__init__(data, args, config, lp=False)

    def write(self, db, lines, headers=None, per_request=5000):
        for i in range(0, len(lines), per_request):
            body = ("\n".join(lines[i:i + per_request]) + "\n").encode()
            st, _, b = request(self.http_port, "POST", "/write?db=" + db, body, headers, timeout=60)
            if st != 204:
                raise AssertionError("write to %s: %d %r" % (db, st, b[:300]))

    def query(self, q, db="test", method="GET", headers=None, timeout=60, **params):
        """/query; returns (status, headers, body bytes)."""
        params = dict(params)
        params["q"] = q
        if db is not None:
            params["db"] = db
        enc = urllib.parse.urlencode(params)
        if method == "POST":
            h = {"Content-Type": "application/x-www-form-urlencoded"}
            h.update(headers or {})
            return request(self.http_port, "POST", "/query", enc.encode(), h, timeout)
        return request(self.http_port, method, "/query?" + enc, None, headers, timeout)

    def qjson(self, q, db="test", **kw):
        st, h, b = self.query(q, db, **kw)
        if st != 200:
            raise AssertionError("query %r: %d %r" % (q, st, b[:500]))
        return json.loads(b)


def raw_http(port, data, timeout=20):
    """Sends raw bytes, reads until the server closes."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall(data)
        out = b""
        while True:
            b = sock.recv(65536)
            if not b:
                return out
            out += b
    finally:
        sock.close()


def eq(a, b, what=""):
    if a != b:
        raise AssertionError("%s: expected %r, got %r" % (what, b, a))


def ok(cond, what):
    if not cond:
        raise AssertionError(what)


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


def same_values(a, b, what):
    """a equals b, except that floats may differ in their last bits: a float sum or mean
    depends on how the rows are stored (memtable, parts, blocks summed from their headers)."""
    if isinstance(a, float) or isinstance(b, float):
        ok(isinstance(a, (int, float)) and isinstance(b, (int, float)) and close(float(a), float(b)),
           "%s: expected %r, got %r" % (what, b, a))
    elif isinstance(a, list) and isinstance(b, list):
        eq(len(a), len(b), what + " (length)")
        for i, (x, y) in enumerate(zip(a, b)):
            same_values(x, y, "%s[%d]" % (what, i))
    elif isinstance(a, dict) and isinstance(b, dict):
        eq(sorted(a), sorted(b), what + " (keys)")
        for k in a:
            same_values(a[k], b[k], "%s.%s" % (what, k))
    else:
        eq(a, b, what)


def same_csv(a, b, what):
    """Two CSV texts with the same cells; numbers with a decimal point compared as floats."""
    ra, rb = list(csv.reader(io.StringIO(a))), list(csv.reader(io.StringIO(b)))
    eq(len(ra), len(rb), what + " (rows)")
    for i, (x, y) in enumerate(zip(ra, rb)):
        eq(len(x), len(y), "%s row %d (cells)" % (what, i))
        for j, (u, v) in enumerate(zip(x, y)):
            if u != v and "." in u + v:
                ok(close(float(u), float(v)), "%s row %d cell %d: expected %r, got %r" % (what, i, j, v, u))
            else:
                eq(u, v, "%s row %d cell %d" % (what, i, j))


def metric(port, name, labels, headers=None):
    _, _, body = request(port, "GET", "/metrics", None, headers)
    for line in body.decode().splitlines():
        if line.startswith(name + "{" + labels + "}"):
            return int(float(line.split()[-1]))
    return None


TMP = tempfile.mkdtemp(prefix="teuto-query-")
_count = [0]


def newdir():
    _count[0] += 1
    return os.path.join(TMP, "data%d" % _count[0])


def rfc3339(ns):
    s, frac = divmod(ns, NS)
    out = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s))
    if frac:
        out += "." + ("%09d" % frac).rstrip("0")
    return out + "Z"


# ---------------------------------------------------------------- the data and what it must give

STATIONS = [("s%d" % i, "north" if i % 2 == 0 else "south") for i in range(5)]


def gen_rows(seed=7, per_station=300):
    """Rows of measurement air: tags station, district; fields pm10 (float), n (int), ok (bool,
    every 5th), note (string, every 7th). Times jittered down to the nanosecond."""
    rnd = random.Random(seed)
    rows = []
    for st, district in STATIONS:
        t = T0
        for k in range(per_station):
            t += rnd.randrange(60, 1200) * NS + rnd.randrange(0, 1000)
            r = {"station": st, "district": district, "t": t,
                 "pm10": rnd.choice([rnd.uniform(1, 80), float(rnd.randrange(1, 80)), round(rnd.uniform(1, 80), 1)]),
                 "n": rnd.randrange(-50, 500)}
            if k % 5 == 0:
                r["ok"] = rnd.random() < 0.5
            if k % 7 == 0:
                r["note"] = 'calib "%d", at C:\\st %s=%d' % (k, st, k)
            rows.append(r)
    return rows


def lp_line(r):
    f = ["n=%di" % r["n"], "pm10=%r" % r["pm10"]]
    if "ok" in r:
        f.append("ok=%s" % ("true" if r["ok"] else "false"))
    if "note" in r:
        f.append('note="%s"' % r["note"].replace("\\", "\\\\").replace('"', '\\"'))
    return "air,district=%s,station=%s %s %d" % (r["district"], r["station"], ",".join(f), r["t"])


def bucket_stats(rows, width_ns, key=lambda r: "", lo=T0, hi=RANGE_END):
    """{group: {bucket_start: [rows]}} for rows in [lo, hi)."""
    out = {}
    for r in rows:
        if lo <= r["t"] < hi:
            b = lo + (r["t"] - lo) // width_ns * width_ns
            out.setdefault(key(r), {}).setdefault(b, []).append(r)
    return out


def expected_hourly(rows, key=lambda r: ""):
    """GROUP BY time(1h)[, key] over RANGE: every bucket of the range (fill(null)); per bucket
    (mean(pm10), max(pm10), count(n), sum(n)) or Nones / count 0 for empty ones."""
    st = bucket_stats(rows, HOUR_NS, key)
    out = {}
    for g, buckets in st.items():
        series = []
        for b in range(T0, RANGE_END, HOUR_NS):
            rs = buckets.get(b, [])
            pm = [r["pm10"] for r in rs]
            series.append((b, sum(pm) / len(pm) if pm else None, max(pm) if pm else None, len(rs),
                           sum(r["n"] for r in rs) if rs else None))
        out[g] = series
    return out


def series_by_tag(result, tag):
    return {(s.get("tags") or {}).get(tag, ""): s for s in result.get("series", [])}


_shared = {}


def shared_server():
    """One server with the generated rows in database `test`, shared by the read-only tests."""
    if "srv" not in _shared:
        data = newdir()
        s = Server(data)
        rows = gen_rows()
        s.write("test", [lp_line(r) for r in rows])
        _shared.update(srv=s, rows=rows, data=data)
    s = _shared["srv"]
    s.alive()
    return s, _shared["rows"]


# ---------------------------------------------------------------- HTTP /query

def check_hourly(result, rows, tag=None, what=""):
    exp = expected_hourly(rows, (lambda r: r[tag]) if tag else (lambda r: ""))
    got = series_by_tag(result, tag) if tag else {"": result["series"][0]}
    eq(sorted(got), sorted(exp), what + ": groups")
    for g, series in got.items():
        eq(series["columns"], ["time", "mean", "max", "count", "sum"], what + ": columns")
        eq(len(series["values"]), len(exp[g]), what + ": buckets of %r" % g)
        for v, e in zip(series["values"], exp[g]):
            eq(v[0], rfc3339(e[0]), what + ": bucket time")
            ok(close(v[1], e[1]), "%s %r %s: mean %r, expected %r" % (what, g, v[0], v[1], e[1]))
            eq((v[2], v[3], v[4]), (e[2], e[3], e[4]), "%s %r %s: max, count, sum" % (what, g, v[0]))


def test_json_aggregates():
    s, rows = shared_server()
    q = "SELECT mean(pm10), max(pm10), count(n), sum(n) FROM air WHERE %s GROUP BY time(1h)" % RANGE
    res = s.qjson(q)
    eq(len(res["results"]), 1, "one statement")
    eq(res["results"][0]["statement_id"], 0, "statement_id")
    eq(res["results"][0]["series"][0]["name"], "air", "series name")
    ok("tags" not in res["results"][0]["series"][0], "no tags without GROUP BY tags")
    check_hourly(res["results"][0], rows, None, "all stations")
    res = s.qjson(q + ", district")
    check_hourly(res["results"][0], rows, "district", "by district")
    # a whole-range aggregate, per station
    res = s.qjson("SELECT count(pm10), min(pm10), max(n), first(n), last(n) FROM air GROUP BY station")
    got = series_by_tag(res["results"][0], "station")
    for st, _ in STATIONS:
        mine = sorted((r for r in rows if r["station"] == st), key=lambda r: r["t"])
        eq(got[st]["columns"], ["time", "count", "min", "max", "first", "last"], "columns")
        eq(got[st]["values"], [["1970-01-01T00:00:00Z", len(mine), min(r["pm10"] for r in mine),
                                max(r["n"] for r in mine), mine[0]["n"], mine[-1]["n"]]], "station " + st)


def test_json_raw_rows_and_epochs():
    s, rows = shared_server()
    mine = sorted((r for r in rows if r["station"] == "s3"), key=lambda r: r["t"])
    res = s.qjson("SELECT pm10, n, ok, note FROM air WHERE station = 's3'")
    ser = res["results"][0]["series"]
    eq(len(ser), 1, "one series")
    eq(ser[0]["columns"], ["time", "pm10", "n", "ok", "note"], "columns")
    want = [[rfc3339(r["t"]), r["pm10"], r["n"], r.get("ok"), r.get("note")] for r in mine]
    eq(ser[0]["values"], want, "raw rows of s3 (floats exact, RFC 3339 with ns)")
    ok(any("." in v[0] for v in ser[0]["values"]), "fractional seconds shown")
    # epoch: integers in the unit, truncated as InfluxDB's convertToEpoch does
    for epoch, div in (("ns", 1), ("n", 1), ("u", 1000), ("\u00b5", 1000), ("ms", 10 ** 6), ("s", NS),
                       ("m", 60 * NS), ("h", 3600 * NS)):
        res = s.qjson("SELECT n FROM air WHERE station = 's3' LIMIT 5", epoch=epoch)
        eq([v[0] for v in res["results"][0]["series"][0]["values"]], [r["t"] // div for r in mine[:5]],
           "epoch=%s" % epoch)
    # empty epoch= and params={} as node-influx sends them; rp and pretty ignored
    res = s.qjson("SELECT n FROM air WHERE station = 's3' LIMIT 2", epoch="", params="{}", rp="", pretty="true")
    eq([v[0] for v in res["results"][0]["series"][0]["values"]], [rfc3339(r["t"]) for r in mine[:2]],
       "epoch= and params={}")
    # ORDER BY time DESC, LIMIT, OFFSET
    res = s.qjson("SELECT n FROM air WHERE station = 's3' ORDER BY time DESC LIMIT 3 OFFSET 2", epoch="ns")
    eq(res["results"][0]["series"][0]["values"], [[r["t"], r["n"]] for r in mine[::-1][2:5]], "DESC")


def test_post_form_and_multiple_statements():
    s, rows = shared_server()
    q = ("SELECT count(pm10) FROM air; SELECT * FROM nope; SELECT max(n) FROM air WHERE district = 'south'; "
         "SHOW TAG VALUES FROM air WITH KEY = station")
    st, h, b = s.query(q, method="POST")
    eq(st, 200, "POST form: %r" % b[:300])
    res = json.loads(b)["results"]
    eq([r["statement_id"] for r in res], [0, 1, 2, 3], "statement ids")
    eq(res[0]["series"][0]["values"][0][1], len(rows), "count")
    eq(res[1], {"statement_id": 1, "error": "measurement not found: nope"}, "failing statement")
    eq(res[2]["series"][0]["values"][0][1], max(r["n"] for r in rows if r["district"] == "south"), "max")
    eq(res[3]["series"][0]["values"], [["station", st] for st, _ in STATIONS], "SHOW TAG VALUES")
    # GET gives the same document
    st2, _, b2 = s.query(q)
    eq((st2, b2), (st, b), "GET and POST agree")
    # a form body wins over the URL (Go's FormValue)
    st, _, b = request(s.http_port, "POST", "/query?db=nope&q=SELEC",
                       urllib.parse.urlencode({"db": "test", "q": "SELECT count(n) FROM air"}).encode(),
                       {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    eq((st, json.loads(b)["results"][0]["series"][0]["values"][0][1]), (200, len(rows)), "body over URL")
    # content type and headers of a streamed answer
    st, h, b = s.query("SELECT count(n) FROM air")
    eq(h.get("Content-Type"), "application/json", "content type")
    eq(h.get("Transfer-Encoding"), "chunked", "streamed")
    ok(h.get("X-Influxdb-Version", "").startswith("teuto-"), "version header")


def test_errors():
    s, _ = shared_server()
    st, h, b = s.query("SELECT FROM air")
    eq(st, 400, "syntax error status")
    body = json.loads(b)
    ok(body["error"].startswith("error parsing query: found FROM, expected"), "syntax message: %r" % body)
    ok("at line 1, char 8" in body["error"], "position: %r" % body)
    st, _, b = request(s.http_port, "GET", "/query?db=test")
    eq((st, json.loads(b)), (400, {"error": 'missing required parameter "q"'}), "no q")
    st, _, b = s.query("   ")
    eq(st, 400, "blank q")
    st, _, b = s.query("SELECT n FROM air", epoch="fortnight")
    eq(st, 400, "bad epoch: %r" % b)
    st, _, b = s.query("SELECT n FROM air WHERE station = $s", params='{"s":"s1"}')
    eq((st, json.loads(b)), (400, {"error": "bound parameters (params) are not supported"}), "params")
    st, h, b = request(s.http_port, "PUT", "/query?q=SHOW+DATABASES")
    eq(st, 405, "PUT")
    ok("GET" in h.get("Allow", ""), "Allow header")
    res = s.qjson("SELECT n FROM air", db="missing")
    eq(res["results"][0], {"statement_id": 0, "error": "database not found: missing"}, "missing database")
    st, _, b = s.query("SHOW DATABASES", db="x" * 80)
    eq(st, 400, "overlong db name")
    # the server still answers, keep-alive included
    c = http.client.HTTPConnection("127.0.0.1", s.http_port, timeout=10)
    for i in range(3):
        c.request("GET", "/query?" + urllib.parse.urlencode({"db": "test", "q": "SELECT count(n) FROM air"}))
        r = c.getresponse()
        eq(r.status, 200, "keep-alive query %d" % i)
        json.loads(r.read())
        c.request("GET", "/query?q=SELEC")
        r = c.getresponse()
        eq(r.status, 400, "keep-alive syntax error %d" % i)
        r.read()
    c.close()
    # pipelined: two queries and a ping in one send, answered in order
    q1 = urllib.parse.urlencode({"db": "test", "q": "SELECT count(n) FROM air", "epoch": "s"})
    q2 = urllib.parse.urlencode({"db": "test", "q": "SELECT max(n) FROM air", "chunked": "true"})
    out = raw_http(s.http_port, ("GET /query?%s HTTP/1.1\r\nHost: x\r\n\r\n"
                                 "GET /query?%s HTTP/1.1\r\nHost: x\r\n\r\n"
                                 "GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % (q1, q2)).encode())
    ok(out.count(b"HTTP/1.1 200 OK") == 2 and out.rfind(b"HTTP/1.1 204") > out.rfind(b"HTTP/1.1 200"),
       "pipelined answers in order: %r" % out[:300])
    ok(out.index(b'"count"') < out.index(b'"max"'), "first answer first")
    # HTTP/1.0: no chunked coding; the body ends with the connection
    out = raw_http(s.http_port, ("GET /query?%s HTTP/1.0\r\n\r\n" % q1).encode())
    head, _, body = out.partition(b"\r\n\r\n")
    ok(b"Transfer-Encoding" not in head and b"Connection: close" in head, "HTTP/1.0 head: %r" % head)
    eq(json.loads(body)["results"][0]["series"][0]["values"], [[0, len(_shared["rows"])]], "HTTP/1.0 body")
    _, _, m = request(s.http_port, "GET", "/metrics")
    ok('teuto_http_requests_total{endpoint="/query",status="400"}' in m.decode(), "/query in metrics")


def test_chunked():
    s, rows = shared_server()
    st, h, b = s.query("SELECT pm10, n FROM air GROUP BY station; SELECT * FROM nope; SHOW DATABASES",
                       chunked="true", chunk_size="64", epoch="ns")
    eq(st, 200, "chunked status")
    lines = b.decode().split("\n")
    eq(lines[-1], "", "ends with a newline")
    objs = [json.loads(l) for l in lines[:-1]]
    # statement 0: per station ceil(300/64) = 5 pieces; the series "partial" on all but the last
    # piece of a station, the result "partial" on all but the statement's last object
    st0 = [o["results"][0] for o in objs if o["results"][0]["statement_id"] == 0]
    eq(len(st0), 5 * len(STATIONS), "objects of statement 0")
    merged = {}
    for i, r in enumerate(st0):
        eq(len(r["series"]), 1, "one series per object")
        ser = r["series"][0]
        ok(len(ser["values"]) <= 64, "chunk_size respected")
        eq(r.get("partial", False), i < len(st0) - 1, "result partial flag of object %d" % i)
        eq(ser.get("partial", False), i % 5 != 4, "series partial flag of object %d" % i)
        merged.setdefault(ser["tags"]["station"], []).extend(ser["values"])
    for st_, _ in STATIONS:
        mine = sorted((r for r in rows if r["station"] == st_), key=lambda r: r["t"])
        eq(merged[st_], [[r["t"], r["pm10"], r["n"]] for r in mine], "chunked rows of " + st_)
    rest = [o["results"][0] for o in objs[len(st0):]]
    eq(rest[0], {"statement_id": 1, "error": "measurement not found: nope"}, "error object")
    eq(rest[1]["series"][0]["values"], [["test"]], "SHOW DATABASES object")
    eq(len(rest), 2, "objects after statement 0")
    # default chunk_size (10000): one object per series
    st, h, b = s.query("SELECT n FROM air GROUP BY station", chunked="true")
    eq(len(b.decode().strip().split("\n")), len(STATIONS), "one object per series")


def test_csv():
    s, rows = shared_server()
    q = "SELECT pm10, n, note FROM air GROUP BY station; SELECT * FROM nope; SELECT mean(pm10) FROM air WHERE %s GROUP BY time(1h)" % RANGE
    for accept in ("application/csv", "text/csv", "text/html, application/csv;q=0.9"):
        st, h, b = s.query(q, headers={"Accept": accept})
        eq(st, 200, "csv status")
        eq(h.get("Content-Type"), "application/csv", "csv content type for %r" % accept)
    blocks = b.decode().split("\n\n")
    eq(len(blocks), 3, "three blocks (statements, the failing one as an error block)")
    rdr = list(csv.reader(io.StringIO(blocks[0])))
    eq(rdr[0], ["name", "tags", "time", "pm10", "n", "note"], "header printed once per statement")
    want = []
    for st_, _ in STATIONS:
        for r in sorted((r for r in rows if r["station"] == st_), key=lambda r: r["t"]):
            want.append(["air", "station=" + st_, str(r["t"]), r["pm10"], str(r["n"]), r.get("note", "")])
    got = [[x[0], x[1], x[2], float(x[3]), x[4], x[5]] for x in rdr[1:]]
    eq(got, want, "csv rows (floats exact, times in ns, quoted notes)")
    ok(all("e" not in x[3] for x in rdr[1:]), "floats without exponent")
    eq(blocks[1], "error\nmeasurement not found: nope", "error block")
    rdr = list(csv.reader(io.StringIO(blocks[2])))
    exp = expected_hourly(rows)[""]
    eq(len(rdr) - 1, len(exp), "hourly csv rows")
    for x, e in zip(rdr[1:], exp):
        eq((x[0], x[1], int(x[2])), ("air", "", e[0]), "hourly csv time")
        ok(close(float(x[3]) if x[3] else None, e[1]), "csv mean %r vs %r" % (x[3], e[1]))
    # epoch applies to CSV too; a syntax error is a CSV error document with 400
    st, _, b = s.query("SELECT n FROM air WHERE station = 's0' LIMIT 1", headers={"Accept": "application/csv"}, epoch="s")
    first = min(r["t"] for r in rows if r["station"] == "s0")
    eq(b.decode(), "name,tags,time,n\nair,,%d,%d\n" % (first // NS, [r["n"] for r in rows if r["t"] == first][0]), "csv epoch=s")
    st, h, b = s.query("SELECT", headers={"Accept": "application/csv"})
    eq((st, b.decode().split("\n")[0]), (400, "error"), "csv syntax error")


def test_streaming_big_results():
    """A result far over the connection's 4 MiB output limit streams through; a slow reader
    and a reader that disappears do not hurt the server."""
    data = newdir()
    s = Server(data)
    try:
        nrows = 250000
        lines = ["bulk,k=v v=%di,f=%r %d" % (i, i * 0.5, T0 + i * NS) for i in range(nrows)]
        s.write("big", lines, per_request=50000)
        q = urllib.parse.urlencode({"db": "big", "q": "SELECT v, f FROM bulk", "epoch": "ns"})
        req = ("GET /query?%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % q).encode()
        # a reader that takes its time at first: the worker has to wait, not buffer
        sock = socket.create_connection(("127.0.0.1", s.http_port), timeout=60)
        sock.sendall(req)
        first = sock.recv(1024)
        time.sleep(1.5)
        parts = [first]
        while True:
            b = sock.recv(1 << 20)
            if not b:
                break
            parts.append(b)
        sock.close()
        raw = b"".join(parts)
        head, _, body = raw.partition(b"\r\n\r\n")
        ok(b"Transfer-Encoding: chunked" in head, "chunked transfer encoding: %r" % head)
        # de-chunk
        out, pos = [], 0
        while True:
            nl = body.index(b"\r\n", pos)
            size = int(body[pos:nl], 16)
            if size == 0:
                break
            out.append(body[nl + 2:nl + 2 + size])
            pos = nl + 2 + size + 2
        doc = b"".join(out)
        ok(len(doc) > 8 * 1024 * 1024, "result is %d bytes (> 4 MiB output limit)" % len(doc))
        vals = json.loads(doc)["results"][0]["series"][0]["values"]
        eq(len(vals), nrows, "rows streamed")
        ok(all(v == [T0 + i * NS, i, i * 0.5] for i, v in enumerate(vals)), "values streamed in order")
        # readers that vanish mid-stream: the workers are cancelled
        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", s.http_port), timeout=60)
            sock.sendall(req)
            sock.recv(65536)
            sock.close()
        # many at once: each complete and right
        results = []

        def worker():
            try:
                res = s.qjson("SELECT count(v), sum(v), max(f) FROM bulk", db="big")
                results.append(res["results"][0]["series"][0]["values"][0][1:])
            except Exception as e:  # reported below
                results.append(repr(e))
        ts = [threading.Thread(target=worker) for _ in range(12)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        eq(results, [[nrows, nrows * (nrows - 1) // 2, (nrows - 1) * 0.5]] * 12, "parallel queries")
        s.alive()
    finally:
        eq(s.stop(), 0, "exit status after cancelled queries")


def test_timeouts_and_stop():
    """A client that never reads its answer is closed after idle_timeout_s; SIGTERM with a
    query running still exits 0."""
    data = newdir()
    cfg = os.path.join(TMP, "idle.ini")
    with open(cfg, "w") as f:
        f.write("[server]\nidle_timeout_s = 2\n")
    s = Server(data, config=cfg)
    try:
        nrows = 600000  # ~20 MB of JSON: more than the kernel buffers between the two sockets
        s.write("big", ["bulk v=%di %d" % (i, T0 + i * NS) for i in range(nrows)], per_request=100000)
        q = urllib.parse.urlencode({"db": "big", "q": "SELECT v FROM bulk"})
        sock = socket.create_connection(("127.0.0.1", s.http_port), timeout=30)
        sock.sendall(("GET /query?%s HTTP/1.1\r\nHost: x\r\n\r\n" % q).encode())
        time.sleep(5)  # never reads: the server must give up on it
        got = []
        try:
            while True:
                b = sock.recv(1 << 20)
                if not b:
                    break
                got.append(b)
        except ConnectionResetError:
            pass
        sock.close()
        got = b"".join(got)
        ok(got.startswith(b"HTTP/1.1 200 OK") and not got.endswith(b"\r\n0\r\n\r\n"),
           "connection closed before the whole answer (%d bytes)" % len(got))
        st, _, b = s.query("SELECT count(v) FROM bulk", db="big")
        eq((st, json.loads(b)["results"][0]["series"][0]["values"][0][1]), (200, nrows), "still serving")
        # a line-protocol client that goes quiet is closed after idle_timeout_s too
        lq = socket.create_connection(("127.0.0.1", s.query_port), timeout=10)
        time.sleep(3)
        eq(lq.recv(100), b"", "idle line query connection closed")
        lq.close()
        # SIGTERM while a query streams to a slow reader: in-flight work ends, exit 0
        sock = socket.create_connection(("127.0.0.1", s.http_port), timeout=30)
        sock.sendall(("GET /query?%s HTTP/1.1\r\nHost: x\r\n\r\n" % q).encode())
        sock.recv(1000)
    finally:
        rc = s.stop()
    sock.close()
    eq(rc, 0, "exit status with a query in flight")


# ---------------------------------------------------------------- the line query protocol

STATUS = re.compile(r"^(OK \d+ \d+|ERR [A-Z]+ .*)$")


def lq_session(port, lines, timeout=30):
    """Sends all request lines at once (pipelined), then QUIT; returns [(data lines, status)]."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(("".join(l + "\n" for l in lines) + "QUIT\n").encode())
    out = b""
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        out += b
    s.close()
    replies, data = [], []
    for line in out.decode().split("\n")[:-1]:
        if STATUS.match(line):
            replies.append((data, line))
            data = []
        else:
            data.append(line)
    eq(data, [], "no data after the last status line")
    eq(replies[-1], ([], "OK 0 0"), "QUIT")
    return replies[:-1]


def test_line_protocol():
    s, rows = shared_server()
    long_line = "SELECT " + "x" * (70 * 1024) + " FROM air"
    reqs = ["PING", "USE test",
            "SELECT mean(pm10), count(n) FROM air WHERE %s GROUP BY time(1h), district" % RANGE,
            "SELEC nothing", "SELECT * FROM nope", "USE nope", "FORMAT xml", long_line,
            "", "   ", "select count(pm10) from air;",
            "SELECT count(pm10) FROM air; SELECT * FROM nope; SHOW DATABASES",
            "FORMAT tsv", "EPOCH s", "SELECT n, note FROM air WHERE station = 's1' LIMIT 8",
            "EPOCH ns", "FORMAT csv", "SELECT n, note FROM air WHERE station = 's1' LIMIT 8",
            "HELP", "EPOCH fortnight"]
    replies = lq_session(s.query_port, reqs)
    eq([r[1].split(" ")[0] + (" " + r[1].split(" ")[1] if r[1].startswith("ERR") else "") for r in replies],
       ["OK", "OK", "OK", "ERR PARSE", "ERR NOTFOUND", "ERR NOTFOUND", "ERR PARSE", "ERR LIMIT",
        "OK", "ERR NOTFOUND", "OK", "OK", "OK", "OK", "OK", "OK", "OK", "ERR PARSE"],
       "one status per request, in order (blank lines are no requests)")
    eq(replies[0], ([], "OK 0 0"), "PING")
    # the hourly means, csv with a header per series, RFC 3339 times
    data, status = replies[2]
    exp = expected_hourly(rows, lambda r: r["district"])
    want_rows = sum(len(v) for v in exp.values())
    eq(status.split(" ")[:2], ["OK", str(want_rows)], "row count in the status line")
    eq(sum(1 for l in data if l.startswith("name,")), 2, "a header per series")
    cur = None
    got = {}
    for rec in csv.reader(data):
        if rec[0] == "name":
            eq(rec, ["name", "tags", "time", "mean", "count"], "header")
            continue
        got.setdefault(rec[1], []).append(rec)
    for d in ("north", "south"):
        g = got["district=" + d]
        eq([x[2] for x in g], [rfc3339(e[0]) for e in exp[d]], "bucket times of " + d)
        for x, e in zip(g, exp[d]):
            ok(close(float(x[3]) if x[3] else None, e[1]), "lq mean %r vs %r" % (x[3], e[1]))
            eq(int(x[4]), e[3], "lq count")
    ok(replies[3][1].startswith("ERR PARSE found SELEC, expected SELECT"), replies[3][1])
    eq(replies[4][1], "ERR NOTFOUND measurement not found: nope", "missing measurement")
    eq(replies[5][1], "ERR NOTFOUND database not found: nope", "USE of a missing database")
    eq(replies[7][1], "ERR LIMIT line longer than 65536 bytes", "long line")
    eq(replies[8], (["name,tags,time,count", "air,,1970-01-01T00:00:00Z,%d" % len(rows)], "OK 1 %s" % replies[8][1].split()[2]),
       "after errors: lower-case keywords, trailing semicolon")
    # several statements: stops at the failing one, its rows sent before the ERR
    eq(replies[9][0], ["name,tags,time,count", "air,,1970-01-01T00:00:00Z,%d" % len(rows)], "rows before the failure")
    eq(replies[9][1], "ERR NOTFOUND measurement not found: nope", "statement failure")
    s1 = sorted((r for r in rows if r["station"] == "s1"), key=lambda r: r["t"])[:8]
    tsv = replies[12][0]
    eq(tsv[0], "name\ttags\ttime\tn\tnote", "tsv header")
    eq(tsv[1:], ["air\t\t%d\t%d\t%s" % (r["t"] // NS, r["n"], r.get("note", "").replace("\\", "\\\\")) for r in s1],
       "tsv rows, EPOCH s, backslashes escaped")
    got = list(csv.reader(replies[15][0]))
    eq(got[1:], [["air", "", str(r["t"]), str(r["n"]), r.get("note", "")] for r in s1], "csv rows, EPOCH ns")
    ok(any(l.startswith("#") for l in replies[16][0]) and replies[16][1] == "OK 0 0", "HELP")


def test_line_protocol_lp_roundtrip():
    """FORMAT lp output is line protocol /write accepts: written into another database it
    reads back the same."""
    s, rows = shared_server()
    replies = lq_session(s.query_port, ["USE test", "FORMAT lp", "SELECT * FROM air GROUP BY *"])
    data, status = replies[2]
    eq(status.split(" ")[:2], ["OK", str(len(rows))], "lp rows")
    ok(all(l.startswith("air,district=") for l in data), "lp lines: %r" % data[:2])
    s.write("copy", data)
    q = "SELECT pm10, n, ok, note FROM air GROUP BY station"
    a = s.qjson(q, epoch="ns")
    b = s.qjson(q, db="copy", epoch="ns")
    eq(b, a, "the copy reads back identical")
    eq(sum(len(x["values"]) for x in b["results"][0]["series"]), len(rows), "every row copied")


def test_line_protocol_pipelining_and_backpressure():
    """Many queries pipelined on one connection, with big answers: in order, complete."""
    s, rows = shared_server()
    reqs = ["USE test"]
    for st, _ in STATIONS * 4:
        reqs.append("SELECT pm10 FROM air WHERE station = '%s'" % st)
        reqs.append("PING")
    replies = lq_session(s.query_port, reqs, timeout=60)
    eq(len(replies), len(reqs), "one reply per request")
    for i, (st, _) in enumerate(STATIONS * 4):
        data, status = replies[1 + 2 * i]
        mine = sorted((r for r in rows if r["station"] == st), key=lambda r: r["t"])
        eq(status.split(" ")[:2], ["OK", str(len(mine))], "status of query %d" % i)
        eq([float(x[3]) for x in csv.reader(data[1:])], [r["pm10"] for r in mine], "rows of query %d" % i)
        eq(replies[2 + 2 * i], ([], "OK 0 0"), "PING after query %d" % i)


# ---------------------------------------------------------------- access: tokens and public

def test_auth_and_public_access():
    d = os.path.join(TMP, "auth")
    os.makedirs(d, exist_ok=True)
    data = os.path.join(d, "data")
    toks = {"read": "query-reader-0123", "admin": "query-admin-4567", "write": "query-writer-89ab"}
    cfg = os.path.join(d, "teutod.ini")
    sha = lambda t: hashlib.sha256(t.encode()).hexdigest()
    with open(cfg, "w") as f:
        f.write("[privacy]\nmaster_key_file = %s\n\n" % os.path.join(d, "master.key"))
        f.write("[measurement.visit]\npersonal = device:pseudonymise\ndimensions = zone\nmeasures = dwell\n"
                "raw_retention_days = 0\nrollups = 1h\ngroup_by = zone\n"
                "aggregates = count, mean, min, max, contributors\nk = 3\ndisclosure = threshold\n"
                "allowed_lateness = 1h\n\n[tokens]\n")
        for role, t in toks.items():
            f.write("%s = %s:%s\n" % (role, role, sha(t)))
    s = Server(data, config=cfg)
    auth = lambda role: {"Authorization": "Token " + toks[role]}
    try:
        day0 = (int(time.time()) // 86400 - 3) * 86400 * NS
        rnd = random.Random(11)
        # (hour, zone) -> devices; k = 3 publishes a cell with at least 3 distinct devices
        plan = {(0, "A"): 5, (0, "B"): 2, (1, "A"): 3, (1, "C"): 1, (2, "B"): 4}
        visits = []
        for (hour, zone), ndev in plan.items():
            for dev in range(ndev):
                for rep in range(1 + dev % 2):
                    visits.append((day0 + hour * HOUR_NS + rnd.randrange(0, 3500) * NS, zone, "dev%d" % dev,
                                   round(rnd.uniform(1, 90), 2)))
        lines = ["visit,zone=%s,device=%s dwell=%r %d" % (z, dev, dw, t) for t, z, dev, dw in visits]
        lines.append("visit,zone=A,device=dev0 dwell=1 %d" % (day0 + 6 * HOUR_NS))  # closes hours 0..4
        lines.append("air,station=x pm10=1.5 %d" % day0)
        s.write("city", lines, auth("write"))
        deadline = time.time() + 20
        while (metric(s.http_port, "teuto_db_rollup_cells_finalised_total", 'db="city"', auth("read")) or 0) < len(plan):
            ok(time.time() < deadline, "rollup cells finalised")
            time.sleep(0.05)
        # the token decides: unknown 401, write-only 403, none: public
        st, h, b = s.query("SHOW DATABASES", headers={"Authorization": "Token nope"})
        eq(st, 401, "unknown token")
        ok("WWW-Authenticate" in h, "401 names the scheme")
        st, _, _ = s.query("SHOW DATABASES", headers=auth("write"))
        eq(st, 403, "write-only token")
        st, _, b = s.query("SELECT * FROM air", db="city")
        eq(json.loads(b)["results"][0]["error"][:12], "not allowed:", "public query of a raw measurement")
        st, _, b = s.query('SELECT * FROM "visit"', db="city", params="{}")
        ok("not allowed" in json.loads(b)["results"][0]["error"], "public query of the governed raw name")
        res = s.qjson('SELECT * FROM "visit:1h" GROUP BY zone', db="city", epoch="ns")
        got = {}
        for ser in res["results"][0]["series"]:
            for v in ser["values"]:
                got[((v[0] - day0) // HOUR_NS, ser["tags"]["zone"])] = dict(zip(ser["columns"], v))
        eq(sorted(got), sorted(plan), "every closed cell is a row, suppressed ones included")
        for key, ndev in plan.items():
            row = got[key]
            mine = [v for v in visits if (v[0] - day0) // HOUR_NS == key[0] and v[1] == key[1]]
            if ndev < 3:
                eq((row["status"], row["status_reason"]), (".", "MIN_CONTRIBUTORS_3"), "suppressed %r" % (key,))
                eq([row[c] for c in ("count", "contributors", "dwell_mean", "dwell_min", "dwell_max")],
                   [None] * 5, "a suppressed cell shows no value %r" % (key,))
            else:
                eq((row["status"], row["status_reason"]), ("", ""), "published %r" % (key,))
                eq((row["count"], row["contributors"], row["dwell_min"], row["dwell_max"]),
                   (len(mine), ndev, min(v[3] for v in mine), max(v[3] for v in mine)), "published %r" % (key,))
                ok(close(row["dwell_mean"], sum(v[3] for v in mine) / len(mine)), "mean %r" % (key,))
            ok("cell_key" not in row and "dwell_sum" not in row, "no unpublished column")
        # public aggregates compute over published cells only
        res = s.qjson('SELECT count(status), count(count), sum(count) FROM "visit:1h"', db="city")
        eq(res["results"][0]["series"][0]["values"][0][1:],
           [len(plan), sum(1 for n in plan.values() if n >= 3),
            sum(len([v for v in visits if (v[0] - day0) // HOUR_NS == k[0] and v[1] == k[1]])
                for k, n in plan.items() if n >= 3)], "public aggregates")
        # read token: raw rows and the rollup as stored (every cell, with its true counts)
        res = s.qjson("SELECT * FROM air", db="city", headers=auth("read"))
        eq(res["results"][0]["series"][0]["values"][0][1], 1.5, "read token reads raw rows")
        res = s.qjson('SELECT count, contributors FROM "visit:1h" GROUP BY zone', db="city", headers=auth("read"), epoch="ns")
        raw = {((v[0] - day0) // HOUR_NS, ser["tags"]["zone"]): v[1:] for ser in res["results"][0]["series"] for v in ser["values"]}
        for key, ndev in plan.items():
            mine = [v for v in visits if (v[0] - day0) // HOUR_NS == key[0] and v[1] == key[1]]
            eq(raw[key], [len(mine), ndev], "raw rollup cell %r" % (key,))
        # CREATE DATABASE needs admin; Basic auth and p= work as for writes
        res = s.qjson("CREATE DATABASE fresh", db=None, headers=auth("read"))
        eq(res["results"][0]["error"], "not allowed", "CREATE DATABASE with a read token")
        import base64
        basic = {"Authorization": "Basic " + base64.b64encode(b"u:" + toks["admin"].encode()).decode()}
        res = s.qjson("CREATE DATABASE fresh; SHOW DATABASES", db=None, headers=basic, method="POST")
        eq(res["results"][1]["series"][0]["values"], [["city"], ["fresh"]], "admin created a database")
        res = s.qjson("SHOW DATABASES", db=None, p=toks["read"])
        eq(len(res["results"][0]["series"][0]["values"]), 2, "p= token")
        # the line query protocol: public until AUTH
        replies = lq_session(s.query_port, [
            "USE city", "SELECT * FROM air", 'SELECT count(status) FROM "visit:1h"', "AUTH wrong",
            "AUTH " + toks["write"], "AUTH " + toks["read"], "SELECT pm10 FROM air", "CREATE DATABASE other",
            "AUTH " + toks["admin"], "CREATE DATABASE other"])
        eq([r[1].split(" ")[0] + " " + r[1].split(" ")[1] for r in replies],
           ["OK 0", "ERR DENIED", "OK 1", "ERR DENIED", "ERR DENIED", "OK 0", "OK 1", "ERR DENIED", "OK 0", "OK 0"],
           "line protocol access: %r" % [r[1] for r in replies])
        eq(replies[2][0][1], "visit:1h,,1970-01-01T00:00:00Z,%d" % len(plan), "public count over the line protocol")
        # teuto query with a token (flag or $TEUTO_TOKEN), and without: public
        hp = "127.0.0.1:%d" % s.http_port
        rc, out, err = run([TEUTO, "query", "--http", hp, "--db", "city", "--token", toks["read"], "SELECT pm10 FROM air"])
        eq((rc, out, err), (0, "name,tags,time,pm10\nair,,%d,1.5\n" % day0, ""), "teuto query --token")
        os.environ["TEUTO_TOKEN"] = toks["read"]
        try:
            rc, out2, err = run([TEUTO, "query", "--http", hp, "--db", "city", "SELECT pm10 FROM air"])
        finally:
            del os.environ["TEUTO_TOKEN"]
        eq(out2, out, "teuto query with $TEUTO_TOKEN")
        rc, out, err = run([TEUTO, "query", "--http", hp, "--db", "city", "SELECT pm10 FROM air"])
        ok(rc == 1 and "not allowed" in err, "teuto query without a token is public: %d %r" % (rc, err))
        rc, out, err = run([TEUTO, "query", "--http", hp, "--token", "nope", "SHOW DATABASES"])
        ok(rc == 2 and "HTTP 401" in err, "teuto query with a wrong token: %d %r" % (rc, err))
        ok(toks["read"] not in s.logtext(), "tokens are never logged")
    finally:
        eq(s.stop(), 0, "exit status")
    # the line query protocol is loopback-only, tokens or not
    p = subprocess.run([TEUTOD, "--data", os.path.join(d, "d2"), "--config", cfg, "--http", "127.0.0.1:%d" % free_port(),
                        "--lp", "off", "--query", "0.0.0.0:%d" % free_port()], capture_output=True, timeout=20)
    eq(p.returncode, 2, "non-loopback line query address: " + p.stderr.decode(errors="replace"))
    ok(b"line query protocol has no authentication" in p.stderr, "clear error: %r" % p.stderr)


# ---------------------------------------------------------------- DROP MEASUREMENT

RIVERS = {"w0": "lutter", "w1": "lutter", "w2": "aa"}


def water_rows(seed=5, per_station=50):
    """Rows of measurement water (tags river, station; fields level float, flow int): the
    measurement next to the dropped one, which must come through every drop unchanged."""
    rnd = random.Random(seed)
    rows = []
    for st in sorted(RIVERS):
        t = T0
        for _ in range(per_station):
            t += rnd.randrange(60, 900) * NS + rnd.randrange(0, 1000)
            rows.append({"station": st, "t": t, "level": round(rnd.uniform(0, 4), 3), "flow": rnd.randrange(0, 90)})
    return rows


def water_line(r):
    return "water,river=%s,station=%s flow=%di,level=%r %d" % (RIVERS[r["station"]], r["station"], r["flow"], r["level"], r["t"])


def check_water(s, rows, auth, what):
    """water reads back exactly as written: raw rows, an aggregate and its SHOW answers."""
    res = s.qjson("SELECT flow, level FROM water GROUP BY station", headers=auth, epoch="ns")["results"][0]
    got = series_by_tag(res, "station")
    eq(sorted(got), sorted(RIVERS), what + ": water series")
    for st in RIVERS:
        mine = sorted((r for r in rows if r["station"] == st), key=lambda r: r["t"])
        eq(got[st]["values"], [[r["t"], r["flow"], r["level"]] for r in mine], "%s: water rows of %s" % (what, st))
    res = s.qjson("SELECT count(level), sum(flow), max(level) FROM water", headers=auth)["results"][0]
    eq(res["series"][0]["values"][0][1:], [len(rows), sum(r["flow"] for r in rows), max(r["level"] for r in rows)],
       what + ": water aggregates")
    res = s.qjson("SHOW TAG VALUES FROM water WITH KEY = station", headers=auth)["results"][0]
    eq(res["series"], [{"name": "water", "columns": ["key", "value"], "values": [["station", st] for st in sorted(RIVERS)]}],
       what + ": water's tag values")


def check_air_gone(s, auth, water, what):
    """Nothing of air is left: every SHOW lists water only, and air answers as a name that
    was never written (nope) does."""
    res = lambda q: s.qjson(q, headers=auth)["results"][0]
    eq(res("SHOW MEASUREMENTS"), {"statement_id": 0, "series": [
        {"name": "measurements", "columns": ["name"], "values": [["water"]]}]}, what + ": SHOW MEASUREMENTS")
    eq(res("SHOW TAG KEYS")["series"], [{"name": "water", "columns": ["tagKey"], "values": [["river"], ["station"]]}],
       what + ": SHOW TAG KEYS")
    eq(res("SHOW TAG VALUES WITH KEY = station")["series"],
       [{"name": "water", "columns": ["key", "value"], "values": [["station", st] for st in sorted(RIVERS)]}],
       what + ": SHOW TAG VALUES")
    eq(res("SHOW FIELD KEYS")["series"],
       [{"name": "water", "columns": ["fieldKey", "fieldType"], "values": [["flow", "integer"], ["level", "float"]]}],
       what + ": SHOW FIELD KEYS")
    for q in ("SHOW TAG KEYS FROM %s", "SHOW TAG VALUES FROM %s WITH KEY = station", "SHOW FIELD KEYS FROM %s"):
        eq(res(q % "air"), res(q % "nope"), what + ": " + q % "air")
        eq(res(q % "air"), {"statement_id": 0}, what + ": " + q % "air")
    for q in ("SELECT * FROM %s", "SELECT count(pm10), max(n) FROM %s", "SELECT pm10 FROM %s WHERE station = 's0'"):
        eq(res(q % "air"), {"statement_id": 0, "error": "measurement not found: air"}, what + ": " + q % "air")
    eq(metric(s.http_port, "teuto_db_series", 'db="test"', auth), len(RIVERS), what + ": series left (water's)")
    check_water(s, water, auth, what)


def test_drop_measurement():
    """DROP MEASUREMENT air next to water, with air's rows both in parts (written before a
    restart, which flushes) and in the memtable: admin only; every SHOW and SELECT forgets air,
    water reads back unchanged; the name starts a new schema; the drop survives SIGTERM and
    SIGKILL right after its answer; over HTTP GET and POST, the line query protocol and the
    influx shell."""
    d = os.path.join(TMP, "drop")
    os.makedirs(d, exist_ok=True)
    data = os.path.join(d, "data")
    toks = {"read": "drop-reader-0123", "admin": "drop-admin-4567", "write": "drop-writer-89ab"}
    cfg = os.path.join(d, "teutod.ini")
    with open(cfg, "w") as f:
        f.write("[tokens]\n")
        for role, t in toks.items():
            f.write("%s = %s:%s\n" % (role, role, hashlib.sha256(t.encode()).hexdigest()))
    auth = lambda role: {"Authorization": "Token " + toks[role]}
    admin = auth("admin")
    air = gen_rows(seed=31, per_station=40)
    water = water_rows()
    # half of both measurements into parts: a stop flushes the memtable
    s = Server(data, config=cfg)
    try:
        s.write("test", [lp_line(r) for r in air[0::2]] + [water_line(r) for r in water[0::2]], auth("write"))
    finally:
        eq(s.stop(), 0, "exit status (first half)")
    s = Server(data, config=cfg)
    try:
        ok((metric(s.http_port, "teuto_db_parts", 'db="test"', admin) or 0) > 0, "the first half is in parts")
        s.write("test", [lp_line(r) for r in air[1::2]] + [water_line(r) for r in water[1::2]], auth("write"))
        ok((metric(s.http_port, "teuto_db_memtable_bytes", 'db="test"', admin) or 0) > 0, "the second half in memory")
        eq(s.qjson("SELECT count(n), sum(n) FROM air", headers=admin)["results"][0]["series"][0]["values"][0][1:],
           [len(air), sum(r["n"] for r in air)], "air complete before the drop")
        eq(metric(s.http_port, "teuto_db_series", 'db="test"', admin), len(STATIONS) + len(RIVERS), "series before")
        # only admin may drop: public and read are refused in the statement, write-only at the door
        for who in (None, "read"):
            res = s.qjson("DROP MEASUREMENT air", headers=auth(who) if who else None)
            eq(res["results"], [{"statement_id": 0, "error": "not allowed"}], "DROP MEASUREMENT as %s" % who)
        st, _, b = s.query("DROP MEASUREMENT air", headers=auth("write"))
        eq(st, 403, "DROP MEASUREMENT with a write-only token: %r" % b)
        res = s.qjson("DROP MEASUREMENT air", db="missing", headers=admin)
        eq(res["results"], [{"statement_id": 0, "error": "database not found: missing"}], "drop in a missing database")
        eq(s.qjson("SELECT count(n) FROM air", headers=admin)["results"][0]["series"][0]["values"][0][1], len(air),
           "air untouched by the refused drops")
        # the drop (GET); dropping again, or a name never written, is no error
        eq(s.qjson("DROP MEASUREMENT air", headers=admin), {"results": [{"statement_id": 0}]}, "DROP MEASUREMENT air")
        check_air_gone(s, admin, water, "after the drop")
        res = s.qjson("DROP MEASUREMENT air; DROP MEASUREMENT nope; SHOW MEASUREMENTS", headers=admin)
        eq(res["results"], [{"statement_id": 0}, {"statement_id": 1}, {"statement_id": 2, "series": [
            {"name": "measurements", "columns": ["name"], "values": [["water"]]}]}], "drops of names with nothing stored")
        # the name again, with other types, in the dropped series at the dropped times: a new
        # measurement, nothing of the old one merges in
        s0 = sorted((r for r in air if r["station"] == "s0"), key=lambda r: r["t"])[:4]
        fresh = [("s0", "north", r["t"], "high %d" % i, i + 0.25) for i, r in enumerate(s0)]
        fresh.append(("s7", "east", T0 + 5 * NS, "low", -2.5))
        fresh_lines = ['air,district=%s,station=%s pm10="%s",n=%r %d' % (dist, st_, pm, n, t) for st_, dist, t, pm, n in fresh]
        s.write("test", fresh_lines, auth("write"))

        def check_fresh(what):
            res = s.qjson("SHOW FIELD KEYS FROM air", headers=admin)["results"][0]
            eq(res["series"], [{"name": "air", "columns": ["fieldKey", "fieldType"], "values": [["n", "float"], ["pm10", "string"]]}],
               what + ": air's new schema")
            res = s.qjson("SELECT * FROM air GROUP BY station", headers=admin, epoch="ns")["results"][0]
            got = series_by_tag(res, "station")
            eq(sorted(got), ["s0", "s7"], what + ": air's series")
            for st_ in ("s0", "s7"):
                eq(got[st_]["columns"], ["time", "n", "pm10"], what + ": air's columns")
                eq(got[st_]["values"], [[t, n, pm] for x, _, t, pm, n in sorted(fresh, key=lambda f: f[2]) if x == st_],
                   "%s: air rows of %s" % (what, st_))
            res = s.qjson("SHOW TAG VALUES FROM air WITH KEY = district", headers=admin)["results"][0]
            eq(res["series"][0]["values"], [["district", "east"], ["district", "north"]], what + ": air's districts")
            res = s.qjson("SHOW MEASUREMENTS", headers=admin)["results"][0]
            eq(res["series"][0]["values"], [["air"], ["water"]], what + ": SHOW MEASUREMENTS")
            eq(metric(s.http_port, "teuto_db_series", 'db="test"', admin), 2 + len(RIVERS), what + ": series")
            check_water(s, water, admin, what)
        check_fresh("the name written again")
    finally:
        eq(s.stop(), 0, "exit status (after the drop)")
    # SIGTERM and a restart: the drop and the new schema hold
    s = Server(data, config=cfg)
    try:
        check_fresh("after a restart")
        # more rows of the new schema, in memory only; then a drop (POST) and SIGKILL right
        # after its answer: the WAL record alone must finish it
        s.write("test", ['air,station=s8 pm10="mid",n=1.5 %d' % (T0 + k * NS) for k in range(20)], auth("write"))
        eq(s.qjson("SELECT count(n) FROM air", headers=admin)["results"][0]["series"][0]["values"][0][1], len(fresh) + 20,
           "air before the second drop")
        eq(s.qjson("DROP MEASUREMENT air", headers=admin, method="POST"), {"results": [{"statement_id": 0}]},
           "DROP MEASUREMENT air (POST)")
    finally:
        s.kill()
    s = Server(data, config=cfg)
    try:
        check_air_gone(s, admin, water, "after SIGKILL right after the drop")
        # a third schema written after the drop, then SIGKILL: replay keeps what came after
        air3 = [(st_, T0 + (k * 7 + i) * NS, 10 * k + i) for i, st_ in enumerate(("s0", "s1")) for k in range(30)]
        s.write("test", ["air,station=%s pm10=%di %d" % (st_, v, t) for st_, t, v in air3], auth("write"))
        eq(s.qjson("DROP MEASUREMENT air; DROP MEASUREMENT nope", headers=admin)["results"][1], {"statement_id": 1},
           "DROP MEASUREMENT nope next to a drop")
        check_air_gone(s, admin, water, "the third schema dropped")
        s.write("test", ["air,station=%s pm10=%di %d" % (st_, v, t) for st_, t, v in air3], auth("write"))
    finally:
        s.kill()
    s = Server(data, config=cfg)
    try:
        res = s.qjson("SHOW FIELD KEYS FROM air", headers=admin)["results"][0]
        eq(res["series"][0]["values"], [["pm10", "integer"]], "after SIGKILL: the rows written after the drop")
        res = s.qjson("SELECT pm10 FROM air GROUP BY station", headers=admin, epoch="ns")["results"][0]
        got = series_by_tag(res, "station")
        for st_ in ("s0", "s1"):
            eq(got[st_]["values"], [[t, v] for x, t, v in sorted(air3, key=lambda a: a[1]) if x == st_],
               "after SIGKILL: air rows of %s" % st_)
        check_water(s, water, admin, "after the second SIGKILL")
        # the line query protocol: public and read refused, admin drops
        s.write("test", ["scratch v=1i %d" % (T0 + k * NS) for k in range(3)], auth("write"))
        replies = lq_session(s.query_port, [
            "USE test", "DROP MEASUREMENT air", "AUTH " + toks["read"], "DROP MEASUREMENT air",
            "AUTH " + toks["admin"], "DROP MEASUREMENT air", "DROP MEASUREMENT air", "SELECT * FROM air",
            "SHOW MEASUREMENTS", "SELECT count(flow) FROM water"])
        eq([r[1] for r in replies[:5]], ["OK 0 0", "ERR DENIED not allowed", "OK 0 0", "ERR DENIED not allowed", "OK 0 0"],
           "line protocol refusals")
        for i in (5, 6):
            eq(replies[i][0], [], "drop %d: no data lines" % i)
            ok(re.match(r"^OK 0 \d+$", replies[i][1]), "line protocol drop %d: %r" % (i, replies[i][1]))
        eq(replies[7][1], "ERR NOTFOUND measurement not found: air", "SELECT after the line protocol drop")
        eq(replies[8][0], ["name,tags,name", "measurements,,scratch", "measurements,,water"], "SHOW MEASUREMENTS (lq)")
        eq(replies[9][0], ["name,tags,time,count", "water,,1970-01-01T00:00:00Z,%d" % len(water)], "water count (lq)")
        # the influx shell of Debian's influxdb-client, with the admin token as password (Basic)
        influx = shutil.which("influx")
        if not influx:
            print("     (skipped the influx shell: no `influx` binary; scripts/setup installs influxdb-client)")
        else:
            base = [influx, "-host", "127.0.0.1", "-port", str(s.http_port), "-database", "test"]
            rc, out, err = run(base + ["-execute", "DROP MEASUREMENT scratch"])
            ok(rc != 0 and "not allowed" in out + err, "influx shell without a token: %d %r" % (rc, out + err))
            rc, out, err = run(base + ["-username", "u", "-password", toks["admin"], "-execute", "DROP MEASUREMENT scratch"])
            eq((rc, out, err), (0, "", ""), "influx shell DROP MEASUREMENT")
        left = ["water"] if influx else ["scratch", "water"]
        eq(s.qjson("SHOW MEASUREMENTS", headers=admin)["results"][0]["series"][0]["values"], [[m] for m in left],
           "SHOW MEASUREMENTS at the end")
        check_water(s, water, admin, "at the end")
    finally:
        eq(s.stop(), 0, "exit status (end)")
    # on disk: the parts of the stopped server hold water and nothing else
    rc, out, err = run([TEUTO, "dump", data, "--db", "test"])
    eq((rc, err), (0, ""), "teuto dump")
    lines = [l for l in out.splitlines() if l.strip()]
    names = sorted({re.split(r"[, ]", l, 1)[0] for l in lines})
    eq(names, left, "measurements on disk")
    eq(sum(1 for l in lines if l.startswith("water,")), len(water), "water rows on disk")


def test_drop_measurement_concurrent_writes():
    """Drops of air while other connections write air and water: every write is acknowledged,
    water keeps every row, and after SIGKILL the WAL replays to exactly the state the server
    showed before (drops and writes in their order)."""
    data = newdir()
    s = Server(data)
    stop = threading.Event()
    errors, water, air_batches = [], [], [0]

    def write(lines):
        st, _, b = request(s.http_port, "POST", "/write?db=test", ("\n".join(lines) + "\n").encode(), timeout=60)
        if st != 204:
            errors.append((st, b[:200]))

    def water_writer():
        for i in range(120):
            rows = [("k%d" % (j % 4), T0 + (i * 50 + j) * NS, i * 50 + j) for j in range(50)]
            write(["water,k=%s v=%di %d" % (k, v, t) for k, t, v in rows])
            water.extend(rows)

    def air_writer():
        i = 0
        while not stop.is_set():
            write(["air,s=a%d v=%di %d" % (j % 3, i, T0 + (i * 10 + j) * NS) for j in range(10)])
            i += 1
        air_batches[0] = i

    try:
        # the database exists before the first drop (a drop of an unknown database is an error)
        write(["air,s=a0 v=-1i %d" % (T0 - NS)])
        eq(errors, [], "first write")
        ts = [threading.Thread(target=water_writer), threading.Thread(target=air_writer)]
        for t in ts:
            t.start()
        drops = 0
        while ts[0].is_alive():
            eq(s.qjson("DROP MEASUREMENT air"), {"results": [{"statement_id": 0}]}, "drop %d" % drops)
            drops += 1
        stop.set()
        for t in ts:
            t.join()
        eq(errors, [], "every write acknowledged")
        ok(drops > 1 and air_batches[0] > 1, "drops %d and air batches %d interleaved" % (drops, air_batches[0]))
        q = "SELECT v FROM water GROUP BY k"
        want = {k: [[t, v] for k2, t, v in sorted(water, key=lambda r: r[1]) if k2 == k] for k in ("k0", "k1", "k2", "k3")}
        got = {k: x["values"] for k, x in series_by_tag(s.qjson(q, epoch="ns")["results"][0], "k").items()}
        eq(got, want, "water: every row")
        air_before = s.qjson("SELECT * FROM air GROUP BY *", epoch="ns")
        meas_before = s.qjson("SHOW MEASUREMENTS; SHOW FIELD KEYS; SHOW TAG VALUES WITH KEY = s")
    finally:
        stop.set()
        s.kill()
    s = Server(data)
    try:
        eq(s.qjson("SELECT * FROM air GROUP BY *", epoch="ns"), air_before, "air after SIGKILL: as before")
        eq(s.qjson("SHOW MEASUREMENTS; SHOW FIELD KEYS; SHOW TAG VALUES WITH KEY = s"), meas_before,
           "SHOW after SIGKILL: as before")
        got = {k: x["values"] for k, x in series_by_tag(s.qjson(q, epoch="ns")["results"][0], "k").items()}
        eq(got, want, "water after SIGKILL: every row")
    finally:
        eq(s.stop(), 0, "exit status")


# ---------------------------------------------------------------- the CLI and the influx shell

def run(cmd, timeout=60, stdin=None):
    p = subprocess.run(cmd, capture_output=True, timeout=timeout, input=stdin)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def test_cli_http_and_dir():
    data = newdir()
    s = Server(data)
    rows = gen_rows(seed=23, per_station=120)
    q = "SELECT mean(pm10), max(pm10), count(n), sum(n) FROM air WHERE %s GROUP BY time(1h), district" % RANGE
    try:
        s.write("test", [lp_line(r) for r in rows])
        hp = "127.0.0.1:%d" % s.http_port
        rc, out_http, err = run([TEUTO, "query", "--http", hp, "--db", "test", q])
        eq((rc, err), (0, ""), "teuto query --http")
        rc, out_json, err = run([TEUTO, "query", "--http", hp, "--db", "test", "--format", "json", q])
        eq(rc, 0, "teuto query --format json: " + err)
        st, _, server_json = s.query(q)
        eq(json.loads(out_json), json.loads(server_json), "--format json is the server's document")
        rc, out_table, err = run([TEUTO, "query", "--http", hp, "--db", "test", "--format", "table", q])
        eq(rc, 0, "table")
        ok(out_table.startswith("name: air\ntags: district=north\ntime") and "\n----" in out_table, out_table[:200])
        rc, out_stdin, err = run([TEUTO, "query", "--http", hp, "--db", "test"], stdin=q.encode())
        eq(out_stdin, out_http, "query from stdin")
        rc, out, err = run([TEUTO, "query", "--http", hp, "--db", "test", "SELECT count(n) FROM air; SELECT * FROM nope"])
        eq((rc, out.split("\n")[1], err.strip()), (1, "air,,0,%d" % len(rows), "teuto query: statement 1: measurement not found: nope"),
           "a failing statement: exit 1, message on stderr")
        rc, out, err = run([TEUTO, "query", "--http", hp, "SELEC"])
        eq(rc, 2, "syntax error exit status")
        ok("error parsing query" in err, err)
        rc, out, err = run([TEUTO, "query", "--http", "127.0.0.1:%d" % free_port(), "SHOW DATABASES"])
        eq(rc, 2, "no server")
        # the influx shell of Debian's influxdb-client (1.x), if installed
        influx = shutil.which("influx")
        if not influx:
            print("     (skipped the influx shell: no `influx` binary; scripts/setup installs influxdb-client)")
        else:
            rc, out, err = run([influx, "-host", "127.0.0.1", "-port", str(s.http_port), "-database", "test",
                                "-execute", q, "-format", "csv"])
            eq((rc, err), (0, ""), "influx -execute")
            exp = expected_hourly(rows, lambda r: r["district"])
            got = {}
            for rec in csv.reader(io.StringIO(out)):
                if rec[0] == "name":
                    eq(rec, ["name", "tags", "time", "mean", "max", "count", "sum"], "influx csv header")
                    continue
                got.setdefault(rec[1], []).append(rec)
            eq(sorted(got), ["district=north", "district=south"], "influx csv groups")
            for d in ("north", "south"):
                eq(len(got["district=" + d]), len(exp[d]), "influx rows of " + d)
                for x, e in zip(got["district=" + d], exp[d]):
                    eq(int(x[2]), e[0], "influx time (ns)")
                    ok(close(float(x[3]) if x[3] else None, e[1]), "influx mean %r vs %r" % (x[3], e[1]))
                    eq((float(x[4]) if x[4] else None, int(x[5]), int(x[6]) if x[6] else None), (e[2], e[3], e[4]),
                       "influx max, count, sum")
            rc, out, err = run([influx, "-host", "127.0.0.1", "-port", str(s.http_port), "-database", "test",
                                "-execute", "SELECT * FROM nope"])
            ok(rc != 0 and "measurement not found: nope" in out + err, "influx shows the statement error: %r" % (out + err))
    finally:
        eq(s.stop(), 0, "exit status")
    # --dir, on the stopped server's directory: the same answer as over HTTP (the server read
    # the rows from its memtable, --dir from the parts the shutdown flushed: float sums may
    # differ in their last bits)
    rc, out_dir, err = run([TEUTO, "query", "--dir", data, "--db", "test", q])
    eq((rc, err), (0, ""), "teuto query --dir")
    same_csv(out_dir, out_http, "--dir and --http print the same CSV")
    rc, out_dir_json, err = run([TEUTO, "query", "--dir", data, "--db", "test", "--format", "json", q])
    same_values(json.loads(out_dir_json), json.loads(server_json), "--dir JSON equals the server's")
    rdr = list(csv.reader(io.StringIO(out_dir)))
    eq(rdr[0], ["name", "tags", "time", "mean", "max", "count", "sum"], "csv header")


TESTS = [test_json_aggregates, test_json_raw_rows_and_epochs, test_post_form_and_multiple_statements,
         test_errors, test_chunked, test_csv, test_line_protocol, test_line_protocol_lp_roundtrip,
         test_line_protocol_pipelining_and_backpressure, test_streaming_big_results,
         test_timeouts_and_stop, test_auth_and_public_access, test_drop_measurement,
         test_drop_measurement_concurrent_writes, test_cli_http_and_dir]


def _stop_shared():
    """The server some tests share: it must exit cleanly too."""
    if "srv" not in _shared:
        return 0
    rc = _shared["srv"].stop()
    if rc != 0:
        print("FAIL shared server exit status %d" % rc)
    return 1 if rc != 0 else 0


def main():
    return teutod_util.run_tests(TESTS, TMP, _stop_shared)


if __name__ == "__main__":
    sys.exit(main())
