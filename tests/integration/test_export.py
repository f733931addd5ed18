#!/usr/bin/env python3
"""Integration tests for the open-data exports (docs/EXPORT.md is the spec): the real teutod on
ephemeral loopback ports, configured from docs/examples/city.conf (datasets bike-hourly and
air-hourly), fed a generated stream over HTTP; exports read back with Python's csv and json
modules and compared with a recomputation from the generated rows in this file.

What is checked: the CSV/JSON/LP shapes; no exported value for a cell with fewer than k (or
k_night) distinct contributors, through every path (CSV, JSON, LP, the CLI over HTTP and on
the data directory, daily exports, dimension filters, overlapping ranges), including one bike
alone in a cell hour after hour; daily contributors counted exactly (not summed); re-aggregation
with `every` equal to a recomputation from the raw rows; byte-identical repeated exports, ETag
and 304; DCAT-AP.de metadata and the catalog; bad requests and a client that stops reading.

Standard library only. Prints `N passed, M failed` and exits non-zero on any failure.
"""
import calendar
import csv
import io
import json
import math
import os
import pty
import random
import re
import select
import socket
import subprocess
import sys
import tempfile
import time

import teutod_util
from epsg3035 import cell_centre, cell_of
from teutod_util import SRC, TEUTO, request

CITY_CONF = os.path.abspath(os.path.join(SRC, "docs", "examples", "city.conf"))
TMP = tempfile.mkdtemp(prefix="teuto-export-")
NS = 10 ** 9
HOUR_NS = 3600 * NS
DAY_NS = 86400 * NS
# three days ago, UTC midnight: in the past for event-time rollups, inside air's 30-day retention
DAY0_NS = (int(time.time()) // 86400 - 3) * DAY_NS
K, K_NIGHT = 3, 5  # city.conf's bike policy

# An unpublished governed measurement: the catalog must list it as NON_PUBLIC.
TRIP = """
[measurement.trip]
personal = device:pseudonymise
measures = dist
raw_retention_days = 0
rollups = 1h
k = 3
"""


def iso(ns):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns // NS))


def config(d):
    """city.conf with the data directory and the master key in d."""
    with open(CITY_CONF) as f:
        text = f.read()
    text = re.sub(r"(?m)^data = .*$", "data = " + os.path.join(d, "data"), text)
    text = re.sub(r"(?m)^master_key_file = .*$", "master_key_file = " + os.path.join(d, "master.key"), text)
    path = os.path.join(d, "teutod.conf")
    with open(path, "w") as f:
        f.write(text + TRIP)
    return path


def close(a, b):
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def fail_if(cond, what):
    if cond:
        raise AssertionError(what)


def eq(a, b, what):
    if a != b:
        raise AssertionError("%s: %r != %r" % (what, a, b))


# ---------------------------------------------------------------- the stream

def build_stream(seed=7):
    """Bike and air rows of day 0, and what the rollups must say about them."""
    rnd = random.Random(seed)
    centres = [cell_centre(52.00 + 0.011 * j, 8.50 + 0.013 * j) for j in range(6)]
    cells = [cell_of(*c) for c in centres]
    bike, air = [], []

    def ride(dev, j, t, speed):
        lat, lon = centres[j]
        bike.append((t, dev, j, speed))
        return "bike,device=%s lat=%.7f,lon=%.7f,speed=%s %d" % (dev, lat, lon, speed, t)

    lines = []
    pool = ["bike-%02d" % i for i in range(9)]
    for h in range(8, 14):
        for j in range(4):  # ordinary cells: 1..5 bikes an hour
            for dev in rnd.sample(pool, rnd.randint(1, 5)):
                for _ in range(rnd.randint(1, 3)):
                    t = DAY0_NS + h * HOUR_NS + rnd.randrange(3600) * NS
                    lines.append(ride(dev, j, t, round(rnd.uniform(5, 25), 1)))
        # cell 4: one bike alone, hour after hour
        lines.append(ride("lonely", 4, DAY0_NS + h * HOUR_NS + 60 * NS, 12.5))
    # cell 5: at most 2 bikes an hour, but 5 distinct over the day
    for h, devs in ((8, ["a", "b"]), (9, ["c", "d"]), (10, ["a"]), (11, ["e"])):
        for dev in devs:
            lines.append(ride("x-" + dev, 5, DAY0_NS + h * HOUR_NS + 120 * NS, 10.0))
    # a night hour (23:00 UTC, k_night = 5) with 4 bikes in cell 0
    for dev in pool[:4]:
        lines.append(ride(dev, 0, DAY0_NS + 23 * HOUR_NS + 30 * NS, 20.0))
    # air: three stations every 5 minutes, 08:00 .. 14:00
    stations = [("s1", "Mitte"), ("s2", "Mitte"), ("s3", "Sennestadt")]
    for h in range(8, 14):
        for m in range(0, 60, 5):
            t = DAY0_NS + h * HOUR_NS + m * 60 * NS
            for st, dist in stations:
                v = [round(rnd.uniform(0, 60), 2), round(rnd.uniform(0, 30), 2),
                     round(rnd.uniform(5, 80), 1), round(rnd.uniform(-5, 15), 2)]
                if st == "s3" and h == 9:
                    v[2] = 0.0  # a true zero
                air.append((t, st, dist, v))
                lines.append("air,station=%s,district=%s pm10=%s,pm25=%s,no2=%s,temperature=%s %d"
                             % (st, dist, v[0], v[1], v[2], v[3], t))
    # pushes both watermarks two days on: every bucket of day 0 (1h and 1d) closes
    push = DAY0_NS + 2 * DAY_NS
    lines.append("bike,device=push lat=%.7f,lon=%.7f,speed=1 %d" % (centres[0][0], centres[0][1], push))
    lines.append("air,station=s1,district=Mitte pm10=1,pm25=1,no2=1,temperature=1 %d" % push)
    return lines, bike, air, cells


def bike_expect(bike, cells, width_ns):
    """(cell id, bucket) -> rows, distinct devices, speeds."""
    out = {}
    for t, dev, j, speed in bike:
        key = (cells[j], t // width_ns * width_ns)
        e = out.setdefault(key, {"rows": 0, "devs": set(), "v": []})
        e["rows"] += 1
        e["devs"].add(dev)
        e["v"].append(speed)
    return out


def stats(v):
    n = len(v)
    mean = sum(v) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1)) if n > 1 else None
    return {"count": n, "sum": sum(v), "mean": mean, "min": min(v), "max": max(v), "stddev": sd}


def k_of(bucket_ns, width_ns):
    """k_night for buckets starting in the night hours (22-6 UTC): a daily bucket starts at
    midnight and holds the night, so it needs k_night too."""
    hour = bucket_ns // HOUR_NS % 24
    return K_NIGHT if hour >= 22 or hour < 6 else K


# ---------------------------------------------------------------- the server, once for all tests

STATE = {}


def server():
    if "srv" in STATE:
        return STATE["srv"]
    d = os.path.join(TMP, "city")
    os.makedirs(d, exist_ok=True)
    conf = config(d)
    srv = teutod_util.Server(None, config=conf, cwd=d, log_path=os.path.join(d, "teutod.log"))
    lines, bike, air, cells = build_stream()
    random.Random(3).shuffle(lines)  # out of order within the lateness: the rollups do not care
    lines.sort(key=lambda l: int(l.rsplit(" ", 1)[1]) >= DAY0_NS + 2 * DAY_NS)  # the pushes last
    body = "\n".join(lines).encode()
    st, _, b = request(srv.http_port, "POST", "/write?db=city", body, timeout=60)
    eq(st, 204, "write: %r" % b)
    # wait until every cell of day 0 is final: the daily export of air then has its 3 rows
    deadline = time.time() + 30
    while time.time() < deadline:
        st, _, b = request(srv.http_port, "GET", "/export/air-hourly.csv?every=1d&from=%s&to=%s"
                           % (iso(DAY0_NS), iso(DAY0_NS + DAY_NS)))
        if st == 200 and len(b.decode().strip().split("\n")) == 4:
            st, _, b = request(srv.http_port, "GET", "/export/bike-hourly.csv?every=1d&from=%s&to=%s"
                               % (iso(DAY0_NS), iso(DAY0_NS + DAY_NS)))
            if st == 200 and len(b.decode().strip().split("\n")) > 1:
                break
        time.sleep(0.1)
    STATE.update(srv=srv, conf=conf, dir=d, bike=bike, air=air, cells=cells)
    return srv


def get(path, headers=None):
    return request(server().http_port, "GET", path, headers=headers, timeout=30)


def day_range():
    return "from=%s&to=%s" % (iso(DAY0_NS), iso(DAY0_NS + DAY_NS))


def csv_rows(body, sep=","):
    text = body.decode("utf-8")
    fail_if(text.startswith("\ufeff"), "a BOM")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=sep))
    return rows[0], rows[1:]


BIKE_VALUES = ["count", "contributors", "speed_mean (km/h)", "speed_min (km/h)", "speed_max (km/h)",
               "speed_stddev (km/h)"]


def check_bike_csv(header, rows, expect, width_ns, what):
    eq(header, ["time_start", "time_end", "cell"] + BIKE_VALUES + ["status", "status_reason"], what + " header")
    seen = set()
    for r in rows:
        d = dict(zip(header, r))
        t = time.strptime(d["time_start"], "%Y-%m-%dT%H:%M:%SZ")
        bucket = calendar.timegm(t) * NS
        key = (d["cell"], bucket)
        fail_if(key in seen, "%s: cell %r twice" % (what, key))
        seen.add(key)
        fail_if(key not in expect, "%s: a row for a cell that has no data: %r" % (what, key))
        e = expect[key]
        eq(d["time_end"], iso(bucket + width_ns), what + " time_end")
        k = k_of(bucket, width_ns)
        if len(e["devs"]) < k:
            eq((d["status"], d["status_reason"]), (".", "MIN_CONTRIBUTORS_%d" % k), "%s %r status" % (what, key))
            eq([d[c] for c in BIKE_VALUES], [""] * len(BIKE_VALUES), "%s %r: a suppressed cell has values" % (what, key))
            continue
        eq((d["status"], d["status_reason"]), ("", ""), "%s %r status" % (what, key))
        eq(int(d["count"]), e["rows"], "%s %r count" % (what, key))
        eq(int(d["contributors"]), len(e["devs"]), "%s %r contributors" % (what, key))
        s = stats(e["v"])
        for agg in ("mean", "min", "max", "stddev"):
            col = d["speed_%s (km/h)" % agg]
            if s[agg] is None:
                eq(col, "", "%s %r %s" % (what, key, agg))
            else:
                fail_if(not close(float(col), s[agg]), "%s %r %s: %s != %r" % (what, key, agg, col, s[agg]))
    eq(seen, set(expect), what + ": every cell with data once, suppressed ones included")


# ---------------------------------------------------------------- tests

def test_bike_hourly_csv_threshold():
    server()
    st, h, body = get("/export/bike-hourly.csv?" + day_range())
    eq(st, 200, "status")
    eq(h.get("Content-Type"), "text/csv; charset=utf-8", "content type")
    header, rows = csv_rows(body)
    expect = bike_expect(STATE["bike"], STATE["cells"], HOUR_NS)
    check_bike_csv(header, rows, expect, HOUR_NS, "hourly")
    # the cases the stream was built for are there
    by = {(r[2], r[0]): r for r in rows}
    lonely = [r for r in rows if r[2] == STATE["cells"][4]]
    eq(len(lonely), 6, "the lonely bike's hours")
    fail_if(any(r[-2] != "." for r in lonely), "the lonely bike published")
    night = by.get((STATE["cells"][0], iso(DAY0_NS + 23 * HOUR_NS)))
    fail_if(night is None, "the night hour is missing")
    eq(night[-1], "MIN_CONTRIBUTORS_5", "4 bikes at night are below k_night")
    eq(int(h["X-Export-Rows"]), len(rows), "X-Export-Rows")


def test_bike_daily_counts_contributors_exactly():
    server()
    st, _, body = get("/export/bike-hourly.csv?every=1d&" + day_range())
    eq(st, 200, "status")
    header, rows = csv_rows(body)
    expect = bike_expect(STATE["bike"], STATE["cells"], DAY_NS)
    check_bike_csv(header, rows, expect, DAY_NS, "daily")
    by = {r[2]: r for r in rows}
    eq(by[STATE["cells"][4]][-2:], [".", "MIN_CONTRIBUTORS_5"], "one bike all day is still one contributor")
    eq(by[STATE["cells"][5]][4], "5", "five bikes over the day, never three in one hour")
    # a width without its own rollup is refused: contributors are not additive
    st, _, body = get("/export/bike-hourly.csv?every=2h&" + day_range())
    eq(st, 400, "every=2h on bike")
    fail_if(b"not additive" not in body, "the refusal says why: %r" % body)


def test_json_and_lp_withhold_the_same():
    server()
    _, _, c = get("/export/bike-hourly.csv?" + day_range())
    header, rows = csv_rows(c)
    st, h, j = get("/export/bike-hourly.json?" + day_range())
    eq(st, 200, "json status")
    doc = json.loads(j)
    eq(doc["dataset"], "bike-hourly", "json dataset")
    eq(doc["licence"]["uri"], "http://dcat-ap.de/def/licenses/dl-by-de/2.0", "json licence")
    eq([f["name"] for f in doc["fields"]][:3], ["time_start", "time_end", "cell"], "json fields")
    eq(len(doc["rows"]), len(rows), "json rows")
    for r, jr in zip(rows, doc["rows"]):
        d = dict(zip(header, r))
        eq(jr["cell"], d["cell"], "json order")
        eq(jr["status"], d["status"], "json status")
        if d["status"] == ".":
            eq([jr[k] for k in ("count", "contributors", "speed_mean", "speed_max")], [None] * 4,
               "json suppressed values")
        else:
            eq(jr["count"], int(d["count"]), "json count")
            fail_if(not close(jr["speed_mean"], float(d["speed_mean (km/h)"])), "json mean")
    st, _, lp = get("/export/bike-hourly.lp?" + day_range())
    eq(st, 200, "lp status")
    lines = lp.decode().strip().split("\n")
    eq(len(lines), len(rows), "lp lines")
    for line, r in zip(lines, rows):
        d = dict(zip(header, r))
        m = re.match(r"^bike-hourly,cell=(\S+) (.*) (\d+)$", line)
        fail_if(not m, "lp line %r" % line)
        eq(m.group(1), d["cell"], "lp cell")
        fields = m.group(2)
        if d["status"] == ".":
            eq(fields, 'status=".",status_reason="%s"' % d["status_reason"], "lp suppressed line")
        else:
            fail_if("count=%si" % d["count"] not in fields, "lp count in %r" % fields)


def test_filters_and_overlapping_ranges():
    server()
    cell = STATE["cells"][0]
    st, _, body = get("/export/bike-hourly.csv?cell=%s&%s" % (cell, day_range()))
    eq(st, 200, "filter status")
    header, rows = csv_rows(body)
    fail_if(not rows or any(r[2] != cell for r in rows), "filter on cell")
    _, _, whole = get("/export/bike-hourly.csv?" + day_range())
    _, all_rows = csv_rows(whole)
    eq(rows, [r for r in all_rows if r[2] == cell], "filtered rows are the whole export's")
    a0, a1 = DAY0_NS + 8 * HOUR_NS, DAY0_NS + 12 * HOUR_NS
    b0, b1 = DAY0_NS + 10 * HOUR_NS, DAY0_NS + 14 * HOUR_NS
    _, _, ba = get("/export/bike-hourly.csv?from=%s&to=%s" % (iso(a0), iso(a1)))
    _, _, bb = get("/export/bike-hourly.csv?from=%s&to=%s" % (iso(b0), iso(b1)))
    _, ra = csv_rows(ba)
    _, rb = csv_rows(bb)
    ov = lambda rs: sorted(r for r in rs if iso(b0) <= r[0] < iso(a1))  # noqa: E731
    eq(ov(ra), ov(rb), "the overlap of two ranges")
    fail_if(any(not (iso(a0) <= r[0] < iso(a1)) for r in ra), "rows outside the range")
    st, _, body = get("/export/bike-hourly.csv?device=bike-01&" + day_range())
    eq(st, 400, "a filter on a personal field")
    fail_if(b"not a dimension" not in body, "the refusal names the problem: %r" % body)


def air_expect(width_ns):
    out = {}
    for t, st, dist, v in STATE["air"]:
        out.setdefault((st, dist, t // width_ns * width_ns), []).append(v)
    return out


def test_air_reaggregation_equals_raw():
    server()
    names = ["pm10", "pm25", "no2", "temperature"]
    units = {"pm10": "µg/m³", "pm25": "µg/m³", "no2": "µg/m³", "temperature": "°C"}
    for every, width in (("1h", HOUR_NS), ("2h", 2 * HOUR_NS), ("3h", 3 * HOUR_NS), ("1d", DAY_NS)):
        st, _, body = get("/export/air-hourly.csv?every=%s&%s" % (every, day_range()))
        eq(st, 200, "every=%s" % every)
        header, rows = csv_rows(body)
        expect = air_expect(width)
        eq(len(rows), len(expect), "every=%s rows" % every)
        for r in rows:
            d = dict(zip(header, r))
            t = calendar.timegm(time.strptime(d["time_start"], "%Y-%m-%dT%H:%M:%SZ")) * NS
            vals = expect[(d["station"], d["district"], t)]
            eq(int(d["count"]), len(vals), "every=%s count" % every)
            for i, m in enumerate(names):
                s = stats([v[i] for v in vals])
                for agg in ("sum", "mean", "min", "max", "stddev"):
                    got = d["%s_%s (%s)" % (m, agg, units[m])]
                    fail_if(not close(float(got), s[agg]),
                            "every=%s %s %s_%s: %s != %r" % (every, d["station"], m, agg, got, s[agg]))
        if every == "1h":  # the true zero stays 0
            z = [r for r in rows if r[3] == "s3" and r[0] == iso(DAY0_NS + 9 * HOUR_NS)]
            eq(dict(zip(header, z[0]))["no2_max (µg/m³)"], "0", "a true zero")
    st, _, body = get("/export/air-hourly.csv?every=90m&" + day_range())
    eq(st, 400, "every not a multiple of 1h")
    st, _, body = get("/export/air-hourly.csv?sep=%3B&station=s3&" + day_range())
    eq(st, 200, "sep=;")
    header, rows = csv_rows(body, ";")
    eq(header[:4], ["time_start", "time_end", "district", "station"], "; header")
    fail_if(not rows or any(r[3] != "s3" for r in rows), "; rows")


def test_etag_304_and_identical_bytes():
    server()
    path = "/export/bike-hourly.csv?" + day_range()
    st1, h1, b1 = get(path)
    st2, h2, b2 = get(path)
    eq((st1, st2), (200, 200), "status")
    eq(b1, b2, "repeated exports are byte-identical")
    STATE["etag_case"] = (path, b1, h1["ETag"])
    eq(h1["ETag"], h2["ETag"], "ETag")
    fail_if(not re.match(r'^"[0-9a-f]{32}"$', h1["ETag"]), "ETag form %r" % h1["ETag"])
    st, h, b = get(path, {"If-None-Match": h1["ETag"]})
    eq((st, b), (304, b""), "If-None-Match")
    eq(h["ETag"], h1["ETag"], "304 ETag")
    st, h, b = get(path, {"If-None-Match": '"0000"'})
    eq((st, b), (200, b1), "another ETag")
    st, h, b = get(path, {"If-Modified-Since": h1["Last-Modified"]})
    eq(st, 304, "If-Modified-Since")
    st, h, b = request(server().http_port, "HEAD", path)
    eq((st, int(h["Content-Length"]), b), (200, len(b1), b""), "HEAD")
    # a range that reaches past the closed buckets is cut back to them: still stable
    st, h, b3 = get("/export/bike-hourly.csv?from=%s" % iso(DAY0_NS))
    st, h4, b4 = get("/export/bike-hourly.csv?from=%s" % iso(DAY0_NS))
    eq(b3, b4, "an open-ended range is stable")


def test_metadata_and_catalog():
    srv = server()
    st, h, body = get("/export/bike-hourly/metadata")
    eq(st, 200, "metadata status")
    eq(h.get("Content-Type"), "application/ld+json; charset=utf-8", "metadata type")
    md = json.loads(body)
    eq(md["@type"], "dcat:Dataset", "type")
    eq(md["@context"]["dcatde"], "http://dcat-ap.de/def/dcatde/", "dcatde namespace")
    for k in ("dct:title", "dct:description", "dct:publisher", "dct:accrualPeriodicity", "dct:temporal",
              "dcat:spatialResolutionInMeters", "dcat:temporalResolution", "dct:provenance"):
        fail_if(k not in md, "metadata lacks " + k)
    eq(md["dcat:temporalResolution"]["@value"], "PT1H", "temporal resolution")
    eq(md["dcat:spatialResolutionInMeters"]["@value"], "100", "spatial resolution")
    eq(md["dct:accrualPeriodicity"]["@id"], "http://publications.europa.eu/resource/authority/frequency/HOURLY",
       "frequency")
    prov = " ".join(x["@value"] for x in md["dct:provenance"]["rdfs:label"])
    fail_if("3" not in prov or "5" not in prov or "MIN_CONTRIBUTORS_3" not in prov, "provenance states k: " + prov)
    base = "http://127.0.0.1:%d/export/bike-hourly" % srv.http_port
    dists = {d["dcat:downloadURL"]["@id"]: d for d in md["dcat:distribution"]}
    eq(sorted(dists), sorted(base + e for e in (".csv", ".json", ".lp")), "distributions")
    for url, d in dists.items():
        for k in ("dcat:accessURL", "dct:format", "dcat:mediaType", "dct:license",
                  "dcatde:licenseAttributionByText"):
            fail_if(k not in d, "%s lacks %s" % (url, k))
        eq(d["dct:license"]["@id"], "http://dcat-ap.de/def/licenses/dl-by-de/2.0", "licence")
        st, _, _ = request(srv.http_port, "HEAD", url[len("http://127.0.0.1:%d" % srv.http_port):])
        eq(st, 200, "the download URL answers")
    st, _, body = get("/export/catalog")
    eq(st, 200, "catalog status")
    cat = json.loads(body)
    eq(cat["@type"], "dcat:Catalog", "catalog type")
    by = {d["@id"].rsplit("/", 1)[-1]: d for d in cat["dcat:dataset"]}
    for name in ("bike-hourly", "air-hourly"):
        eq(by[name]["dct:accessRights"]["@id"], "http://publications.europa.eu/resource/authority/access-right/PUBLIC",
           name + " access")
    trip = by.get("catalog#trip")
    fail_if(trip is None, "the unpublished measurement is missing from the catalog")
    eq(trip["dct:accessRights"]["@id"], "http://publications.europa.eu/resource/authority/access-right/NON_PUBLIC",
       "trip access")
    fail_if(not trip["dct:rights"]["rdfs:label"][0]["@value"], "the reason is empty")


def test_bad_requests():
    server()
    st, _, body = get("/export/nope.csv")
    eq(st, 404, "unknown dataset")
    eq(json.loads(body)["datasets"], ["bike-hourly", "air-hourly"], "the 404 lists the datasets")
    cases = ["/export/bike-hourly.csv?from=%s&to=%s" % (iso(DAY0_NS + DAY_NS), iso(DAY0_NS)),
             "/export/bike-hourly.csv?from=yesterday",
             "/export/bike-hourly.csv?from=2000-01-01",
             "/export/bike-hourly.csv?every=0h",
             "/export/bike-hourly.csv?from=%s&from=%s" % (iso(DAY0_NS), iso(DAY0_NS)),
             "/export/bike-hourly.csv?sep=%09"]
    for path in cases:
        st, h, body = get(path)
        eq(st, 400, path)
        fail_if("error" not in json.loads(body), path + ": an error document")
    st, _, _ = get("/export/bike-hourly.xml")
    eq(st, 404, "unknown format")
    st, _, _ = request(server().http_port, "POST", "/export/bike-hourly.csv", b"x")
    eq(st, 405, "POST")
    # a client that asks and never reads, then goes: the server carries on
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", server().http_port))
        s.sendall(b"GET /export/air-hourly.json?every=1h HTTP/1.1\r\nHost: x\r\n\r\n")
        s.close()
    st, _, _ = get("/ping")
    eq(st, 204, "alive after hostile clients")
    server().alive()


def test_cli_progress_bar_on_a_terminal():
    """teuto export --out with stderr on a pseudo-terminal: a progress bar that reaches 100%
    (the HTTP test above checks there is none when stderr is not a terminal)."""
    srv = server()
    d = STATE["dir"]
    out = os.path.join(d, "bike-tty.csv")
    master, slave = pty.openpty()
    try:
        with open(os.path.join(d, "bike-tty.stdout"), "w+b") as stdout:
            try:
                p = subprocess.Popen([TEUTO, "export", "bike-hourly", "--http", "127.0.0.1:%d" % srv.http_port,
                                      "--from", iso(DAY0_NS), "--to", iso(DAY0_NS + DAY_NS), "--out", out],
                                     stdin=subprocess.DEVNULL, stdout=stdout, stderr=slave)
            finally:
                os.close(slave)  # the child holds the only other end: EOF once it exits
            tty = b""
            deadline = time.time() + 60
            while True:
                left = deadline - time.time()
                if left <= 0:
                    p.kill()
                    p.wait()
                    raise AssertionError("the terminal did not reach EOF within 60 s: %r" % tty)
                ready, _, _ = select.select([master], [], [], left)
                if not ready:
                    continue
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO on Linux: the last slave fd is closed
                    break
                if not chunk:
                    break
                tty += chunk
            eq(p.wait(timeout=30), 0, "teuto export on a terminal: %r" % tty)
            stdout.seek(0)
            eq(stdout.read(), b"", "stdout with --out")
    finally:
        os.close(master)
    _, _, body = get("/export/bike-hourly.csv?" + day_range())
    with open(out, "rb") as f:
        eq(f.read(), body, "the CLI's file is the HTTP body")
    text = tty.decode("utf-8", "replace")
    bars = re.findall(r"\[([# ]{40})\] +(\d+)%  (\d+) of (\d+) bytes", text)
    fail_if(not bars, "no progress bar on the terminal: %r" % text)
    pcts = [int(b[1]) for b in bars]
    eq(pcts, sorted(pcts), "the bar never goes back")
    fill, pct, done, total = bars[-1]
    eq((fill, pct), ("#" * 40, "100"), "the last bar is full at 100%")
    eq((int(done), int(total)), (len(body), len(body)), "the bar counts the bytes of the body")
    fail_if(not re.search(r"\] 100%%  %d of %d bytes\r?\n" % (len(body), len(body)), text),
            "the 100%% line ends with a newline: %r" % text)


def test_cli_export_http_and_dir():
    srv = server()
    d = STATE["dir"]
    out = os.path.join(d, "bike.csv")
    r = subprocess.run([TEUTO, "export", "bike-hourly", "--http", "127.0.0.1:%d" % srv.http_port,
                        "--from", iso(DAY0_NS), "--to", iso(DAY0_NS + DAY_NS), "--out", out],
                       capture_output=True, timeout=60)
    eq(r.returncode, 0, "teuto export --http: %r" % r.stderr)
    _, _, body = get("/export/bike-hourly.csv?" + day_range())
    with open(out, "rb") as f:
        eq(f.read(), body, "the CLI's file is the HTTP body")
    with open(out + ".metadata.jsonld") as f:
        eq(json.load(f)["dct:title"][:14], "Leihfahrräder:", "metadata beside the file")
    eq(r.stderr, b"", "no progress bar when stderr is not a terminal")
    r = subprocess.run([TEUTO, "export", "nope", "--http", "127.0.0.1:%d" % srv.http_port],
                       capture_output=True, timeout=60)
    eq(r.returncode, 1, "unknown dataset over HTTP")
    # the data directory, once the server is gone: the same bytes
    _, _, daily = get("/export/bike-hourly.json?every=1d&" + day_range())
    eq(srv.stop(), 0, "teutod exit status")
    STATE.pop("srv")
    r = subprocess.run([TEUTO, "export", "bike-hourly", "--dir", os.path.join(d, "data"), "--config",
                        STATE["conf"], "--from", iso(DAY0_NS), "--to", iso(DAY0_NS + DAY_NS)],
                       capture_output=True, timeout=60)
    eq(r.returncode, 0, "teuto export --dir: %r" % r.stderr)
    eq(r.stdout, body, "--dir gives the same bytes as HTTP")
    r = subprocess.run([TEUTO, "export", "bike-hourly", "--dir", os.path.join(d, "data"), "--config",
                        STATE["conf"], "--every", "1d", "--format", "json", "--from", iso(DAY0_NS),
                        "--to", iso(DAY0_NS + DAY_NS)], capture_output=True, timeout=60)
    eq(r.stdout, daily, "--dir daily JSON")
    r = subprocess.run([TEUTO, "export", "bike-hourly", "--dir", os.path.join(d, "data"), "--config",
                        STATE["conf"], "--every", "2h"], capture_output=True, timeout=60)
    eq(r.returncode, 1, "--dir every=2h refused")
    fail_if(b"not additive" not in r.stderr, "the CLI says why: %r" % r.stderr)


def test_export_without_spool_is_identical():
    """[server] export_spool = false: the export runs twice (hash, then send) instead of once
    into a spool file; the bytes and the ETag are the same."""
    path, body, etag = STATE["etag_case"]  # from test_etag_304_and_identical_bytes
    if "srv" in STATE:  # test_cli_export_http_and_dir stopped it already
        eq(STATE.pop("srv").stop(), 0, "teutod exit status")
    with open(STATE["conf"]) as f:
        text = f.read()
    conf = os.path.join(STATE["dir"], "nospool.conf")
    with open(conf, "w") as f:
        f.write(text.replace("[server]\n", "[server]\nexport_spool = false\n", 1))
    srv = teutod_util.Server(None, config=conf, cwd=STATE["dir"],
                             log_path=os.path.join(STATE["dir"], "teutod-nospool.log"))
    try:
        st, h, b = request(srv.http_port, "GET", path, timeout=30)
        eq((st, h["ETag"]), (200, etag), "two passes: status and ETag")
        eq(b, body, "two passes: the same bytes")
        st, _, b = request(srv.http_port, "GET", path, headers={"If-None-Match": etag}, timeout=30)
        eq((st, b), (304, b""), "two passes: 304")
    finally:
        eq(srv.stop(), 0, "teutod (no spool) exit status")


TESTS = [test_bike_hourly_csv_threshold, test_bike_daily_counts_contributors_exactly,
         test_json_and_lp_withhold_the_same, test_filters_and_overlapping_ranges,
         test_air_reaggregation_equals_raw, test_etag_304_and_identical_bytes,
         test_metadata_and_catalog, test_bad_requests, test_cli_progress_bar_on_a_terminal,
         test_cli_export_http_and_dir,
         test_export_without_spool_is_identical]


def finish():
    if "srv" in STATE:
        STATE["srv"].stop()
    return 0


if __name__ == "__main__":
    sys.exit(teutod_util.run_tests(TESTS, TMP, finish))
