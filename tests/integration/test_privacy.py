#!/usr/bin/env python3
"""Integration tests for teuto's privacy model (docs/PRIVACY.md is the spec): the real teutod
on ephemeral loopback ports in a temporary directory, configured from docs/examples/city.conf,
spoken to over HTTP; rollups and rows read back with `teuto rollup` and `teuto dump` after the
server stopped (it holds the directory lock while running).

What is checked: city.conf starts as it is; no raw identifier or coordinate reaches any byte
of the data directory, the decompressed WAL payloads or the log; the rollups equal a
recomputation in Python (with an EPSG:3035 projection of its own); public reads suppress
cells below k / k_night; restarts and SIGKILL keep the rollups exact; pseudonyms are stable
per device and UTC day; bad policies stop teutod; bad rows are refused one by one; a forgotten
--config never lets raw data in; DROP MEASUREMENT drops raw rows only, never a rollup.

Standard library only. Prints `N passed, M failed` and exits non-zero on any failure.
"""
import base64
import csv
import hashlib
import hmac
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
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

import teutod_util
from epsg3035 import FE, FN, cell_centre, cell_of, inverse, laea, near_edge  # noqa: F401
from teutod_util import BUILD, SRC, TEUTO, TEUTOD, free_port, request  # noqa: F401
CITY_CONF = os.path.abspath(os.path.join(SRC, "docs", "examples", "city.conf"))

NS = 10 ** 9
MIN_NS = 60 * NS
HOUR_NS = 3600 * NS
DAY_NS = 86400 * NS

# The data are from three days ago (UTC midnight): far enough in the past for event-time
# rollups, recent enough that raw retention (air: 30 days, trip: 7 days) keeps them.
DAY0_NS = (int(time.time()) // 86400 - 3) * DAY_NS


# ---------------------------------------------------------------- helpers (from test_ingest.py)

class Server(teutod_util.Server):
    """teutod (teutod_util.Server) with this test's write helper."""

    def write(self, db, body):
        if isinstance(body, str):
            body = body.encode()
        st, _, b = request(self.http_port, "POST", "/write?db=" + db, body, timeout=60)
        return st, b


def metric(text, name, labels):
    """The value of one sample of /metrics text, or None."""
    want = "%s{%s} " % (name, labels)
    for line in text.splitlines():
        if line.startswith(want):
            return int(line.split()[-1])
    return None


def dump(data, db):
    p = subprocess.run([TEUTO, "dump", data, "--db", db], capture_output=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError("teuto dump failed (%d): %s" % (p.returncode, p.stderr.decode(errors="replace")))
    return [l for l in p.stdout.decode().splitlines() if l.strip()]


def rollup(data, conf, db, name, public=False):
    """`teuto rollup` as a list of dicts (CSV columns); group parsed into a dict."""
    cmd = [TEUTO, "rollup", data, "--config", conf, "--db", db, "--rollup", name]
    if public:
        cmd.append("--public")
    p = subprocess.run(cmd, capture_output=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError("teuto rollup failed (%d): %s" % (p.returncode, p.stderr.decode(errors="replace")))
    rows = list(csv.DictReader(io.StringIO(p.stdout.decode())))
    for r in rows:
        g = {}
        for part in r["group"].split(";") if r["group"] else []:
            k, _, v = part.partition("=")
            g[k] = v
        r["groupd"] = g
    return rows


def eq(a, b, what=""):
    if a != b:
        raise AssertionError("%s: expected %r, got %r" % (what, b, a))


def ok(cond, what):
    if not cond:
        raise AssertionError(what)


TMP = tempfile.mkdtemp(prefix="teuto-privacy-")
_count = [0]


def newdir(name="data"):
    """A fresh directory of its own under TMP; the data directory is <it>/data (not created)."""
    _count[0] += 1
    d = os.path.join(TMP, "t%d" % _count[0])
    os.makedirs(d)
    return d, os.path.join(d, name)


def alive(srv):
    if srv.proc.poll() is not None:
        raise AssertionError("teutod died (status %d); its log ends:\n%s"
                             % (srv.proc.returncode, srv.logtext()[-1500:]))


def _steady_finalised(srv, db, at_least, quiet_s, timeout):
    """The finalised-cell count of db once it reached at_least (None: any) and stayed put for
    quiet_s, or None after timeout; and the last count seen."""
    deadline = time.time() + timeout
    last, since = None, time.time()
    while time.time() < deadline:
        alive(srv)
        n = metric(srv.metrics(), "teuto_db_rollup_cells_finalised_total", 'db="%s"' % db)
        if n != last:
            last, since = n, time.time()
        elif (at_least is None or (n is not None and n >= at_least)) and time.time() - since >= quiet_s:
            return n, last
        time.sleep(0.05)
    return None, last


def wait_finalised(srv, db, at_least, timeout=20, quiet_s=0.3):
    """Waits until the background thread wrote at least `at_least` closed rollup cells of db
    and the count stayed put for quiet_s (one take writes every closed cell at once)."""
    n, last = _steady_finalised(srv, db, at_least, quiet_s, timeout)
    if n is None:
        raise AssertionError("timed out waiting for %d finalised cells in %s (have %r)" % (at_least, db, last))
    return n


def settle(srv, db, quiet_s=0.5, timeout=10):
    """Waits until the finalised-cell count of db stayed put for quiet_s (when a test cannot
    know how many cells should close)."""
    n, last = _steady_finalised(srv, db, None, quiet_s, timeout)
    return last if n is None else n


# ---------------------------------------------------------------- configs

def adapt_city(path, data=None, key=None, set_keys=None, extra=""):
    """Writes docs/examples/city.conf to path with data and master_key_file replaced and
    set_keys applied: {(section, key): value} replaces a key's value (value None deletes the
    line; a key the section lacks is added at its end). extra is appended."""
    set_keys = dict(set_keys or {})
    if data is not None:
        set_keys[("server", "data")] = data
    if key is not None:
        set_keys[("privacy", "master_key_file")] = key
    out, section, seen = [], None, set()

    def close_section():
        if section is None:
            return
        for (s, k), v in set_keys.items():
            if s == section and (s, k) not in seen and v is not None:
                out.append("%s = %s" % (k, v))
                seen.add((s, k))

    with open(CITY_CONF) as f:
        for text in f.read().splitlines():
            m = re.match(r"^\[(.+)\]\s*$", text)
            if m:
                close_section()
                section = m.group(1)
                out.append(text)
                continue
            m = re.match(r"^([A-Za-z_0-9]+)\s*=", text)
            if m and (section, m.group(1)) in set_keys:
                seen.add((section, m.group(1)))
                v = set_keys[(section, m.group(1))]
                if v is not None:
                    out.append("%s = %s" % (m.group(1), v))
                continue
            out.append(text)
    close_section()
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n" + extra)
    return path


# Contribution bounds that do not bind in the recomputation tests.
LOOSE = {("measurement.bike", "contributions_per_cell_max"): "100000",
         ("measurement.bike", "cells_per_day_max"): "100000"}

TRIP = """
[measurement.trip]
personal = device:pseudonymise
measures = dist
raw_retention_days = 7
rollups = 1h
k = 3
"""


def make_config(dirpath, set_keys=None, extra=TRIP):
    """city.conf with a key file beside (never inside) the data directory."""
    keys = dict(LOOSE)
    keys.update(set_keys or {})
    return adapt_city(os.path.join(dirpath, "teutod.conf"), key=os.path.join(dirpath, "master.key"),
                      set_keys=keys, extra=extra)


# ---------------------------------------------------------------- EPSG:3035: epsg3035.py

# ---------------------------------------------------------------- LZ4 block, WAL, payloads

def lz4_block_decode(src, usize):
    """LZ4 block format (lz4 doc/lz4_Block_format.md): sequences of token, literal length,
    literals, 2-byte offset, match length; the last sequence has literals only."""
    dst = bytearray()
    i, n = 0, len(src)
    while True:
        if i >= n:
            raise ValueError("LZ4: truncated token")
        token = src[i]
        i += 1
        lit = token >> 4
        if lit == 15:
            while True:
                b = src[i]
                i += 1
                lit += b
                if b != 255:
                    break
        if i + lit > n:
            raise ValueError("LZ4: literals past the end")
        dst += src[i:i + lit]
        i += lit
        if i == n:
            break
        off = src[i] | (src[i + 1] << 8)
        i += 2
        if off == 0 or off > len(dst):
            raise ValueError("LZ4: bad offset %d" % off)
        ml = token & 15
        if ml == 15:
            while True:
                b = src[i]
                i += 1
                ml += b
                if b != 255:
                    break
        ml += 4
        start = len(dst) - off
        if off >= ml:
            dst += dst[start:start + ml]
        else:  # overlapping: the last off bytes repeat
            pat = bytes(dst[start:])
            dst += (pat * (ml // off + 1))[:ml]
        if len(dst) > usize:
            raise ValueError("LZ4: output past %d bytes" % usize)
    if len(dst) != usize:
        raise ValueError("LZ4: decoded %d bytes, want %d" % (len(dst), usize))
    return bytes(dst)


def _selftest_lz4():
    # literals only; a match with overlap (offset 1, run of 'a'); a long literal run
    eq(lz4_block_decode(b"\x50hello", 5), b"hello", "lz4 literals")
    eq(lz4_block_decode(b"\x1fa\x01\x00\x05\x10b", 1 + 24 + 1), b"a" * 25 + b"b", "lz4 overlap")
    lit = bytes(range(40))
    eq(lz4_block_decode(b"\xf0\x19" + lit, 40), lit, "lz4 long literals")


def wal_frames(path):
    """(lsn, payload, compressed) of each frame of a WAL segment (FORMAT.md "## WAL") up to
    the first incomplete or invalid one, and the bytes from there on."""
    with open(path, "rb") as f:
        data = f.read()
    out = []
    if len(data) < 32 or data[:8] != b"TEUTOWAL":
        return out, data
    pos = 32
    while pos + 32 <= len(data):
        magic, ver, flags, _res, s, u, lsn, _ck = struct.unpack_from("<IBBHIIQQ", data, pos)
        if magic != 0x52465754 or ver != 1 or flags & ~1:
            break
        if pos + 32 + s > len(data):
            break
        stored = data[pos + 32:pos + 32 + s]
        payload = lz4_block_decode(stored, u) if flags & 1 else stored
        out.append((lsn, payload, bool(flags & 1)))
        pos += 32 + s
    return out, data[pos:]


class Rd:
    def __init__(self, b):
        self.b, self.p = b, 0

    def take(self, n):
        if self.p + n > len(self.b):
            raise ValueError("payload: truncated")
        v = self.b[self.p:self.p + n]
        self.p += n
        return v

    def u8(self):
        return self.take(1)[0]

    def varint(self):
        v, shift = 0, 0
        while True:
            b = self.u8()
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7

    def zz(self):
        v = self.varint()
        return (v >> 1) ^ -(v & 1)

    def lbytes(self):
        return self.take(self.varint())


def parse_payload(p):
    """A WAL payload, version 1 or 2 (FORMAT.md), as a dict; raises on any inconsistency."""
    r = Rd(p)
    ver = r.u8()
    if ver not in (1, 2):
        raise ValueError("payload version %d" % ver)
    meas = [r.lbytes() for _ in range(r.varint())]
    series = [(r.varint(), r.lbytes()) for _ in range(r.varint())]
    fields = [(r.varint(), r.lbytes(), r.u8()) for _ in range(r.varint())]
    nrows = r.varint()
    ser_col = [r.varint() for _ in range(nrows)]
    times, t = [], 0
    for _ in range(nrows):
        t = (t + r.zz() + 2 ** 63) % 2 ** 64 - 2 ** 63
        times.append(t)
    fcount = [r.varint() for _ in range(nrows)]
    rows = []
    for i in range(nrows):
        vals = []
        for _ in range(fcount[i]):
            fi = r.varint()
            typ = fields[fi][2]
            if typ == 1:
                v = struct.unpack("<d", r.take(8))[0]
            elif typ == 2:
                v = r.zz()
            elif typ == 3:
                v = r.varint()
            elif typ == 4:
                v = r.u8()
            elif typ == 5:
                v = r.lbytes()
            else:
                raise ValueError("field type %d" % typ)
            vals.append((fields[fi][1], v))
        rows.append((series[ser_col[i]][1], times[i], vals, meas[series[ser_col[i]][0]]))
    out = {"version": ver, "meas": meas, "series": [s[1] for s in series], "rows": rows,
           "inputs": [], "marks": []}
    if ver == 2:
        gms = []
        for _ in range(r.varint()):
            name = r.lbytes()
            gms.append((name, [r.lbytes() for _ in range(r.varint())]))
        t = 0
        for _ in range(r.varint()):
            flags = r.u8()
            if flags & ~3:
                raise ValueError("input flags %d" % flags)
            if flags & 2:  # derived from a raw row of this payload: only its index follows
                i = r.varint()
                if i >= nrows:
                    raise ValueError("derived input of row %d of %d" % (i, nrows))
                out["inputs"].append({"meas": rows[i][3], "derived": i, "group": None,
                                      "time": rows[i][1] // HOUR_NS * HOUR_NS, "token": None, "values": None})
                continue
            m = r.varint()
            if m >= len(gms):
                raise ValueError("input measurement %d of %d" % (m, len(gms)))
            group = r.lbytes()
            t += r.zz()
            tok = r.take(12) if flags & 1 else None
            vals = [(r.varint(), struct.unpack("<d", r.take(8))[0]) for _ in range(r.varint())]
            out["inputs"].append({"meas": gms[m][0], "derived": None, "group": group, "time": t, "token": tok,
                                  "values": vals})
        out["marks"] = [(r.lbytes(), r.zz()) for _ in range(r.varint())]
    if r.p != len(p):
        raise ValueError("payload: %d bytes left over" % (len(p) - r.p))
    return out


# ---------------------------------------------------------------- searching for secrets

DIGITS = b"0123456789"


def find_any(data, patterns, anchor="prefix", number=False):
    """The patterns (bytes, each >= 4 long) that occur in data. Patterns are grouped by their
    first (or last) 4 bytes, so each group costs one scan. number: a decimal text counts only
    as a whole number (no digit, '.' or '-' before it, no digit after it), so "18.5330000..."
    is not the coordinate "8.5330000"."""
    groups = {}
    for p in patterns:
        groups.setdefault(p[:4] if anchor == "prefix" else p[-4:], set()).add(p)
    hits = set()
    for key, ps in groups.items():
        lens = {len(p) for p in ps}
        i = data.find(key)
        while i >= 0:
            for L in lens:
                at = i if anchor == "prefix" else i + 4 - L
                w = data[at:at + L]
                if w in ps and not (number and ((at > 0 and data[at - 1] in DIGITS + b".-") or
                                                 (at + L < len(data) and data[at + L] in DIGITS))):
                    hits.add(w)
            i = data.find(key, i + 1)
    return hits


class Secrets:
    """The raw identifiers and coordinates a test sent."""

    def __init__(self):
        self.ids = set()
        self.coord_text = set()
        self.coord_bits = set()

    def add_row(self, dev, lat_s, lon_s):
        self.ids.add(dev.encode())
        for s in (lat_s, lon_s):
            self.coord_text.add(s.encode())
            self.coord_bits.add(struct.pack("<d", float(s)))

    def find(self, data):
        hits = find_any(data, self.ids) | find_any(data, self.coord_text, number=True)
        # the low bytes of a double are all but unique, its high bytes (sign, exponent, top of
        # the mantissa) alike for nearby coordinates: anchoring there keeps the groups few
        hits |= find_any(data, self.coord_bits, anchor="suffix")
        return hits


def scan_for_secrets(data_dir, logs, secrets):
    """Every byte of every file under data_dir, every decompressed WAL payload, and the logs.
    Returns (problems, stats)."""
    problems = []
    stats = {"files": 0, "frames": 0, "lz4": 0, "payloads_v2": 0, "bike_inputs": 0,
             "bike_raw_rows": 0, "bad_input_times": 0, "bike_derived": 0,
             "tokens": set()}
    for root, _, files in os.walk(data_dir):
        for fn in sorted(files):
            path = os.path.join(root, fn)
            with open(path, "rb") as f:
                data = f.read()
            stats["files"] += 1
            for h in secrets.find(data):
                problems.append("%s holds %r" % (os.path.relpath(path, data_dir), h))
            if fn.endswith(".wal") and os.path.basename(root) == "wal":
                try:
                    frames, tail = wal_frames(path)
                except ValueError as e:
                    problems.append("%s: WAL frame does not decode: %s" % (path, e))
                    continue
                if tail:  # not read as frames, so not searched decompressed
                    problems.append("%s: %d bytes after the last frame read" % (fn, len(tail)))
                for lsn, payload, lz in frames:
                    stats["frames"] += 1
                    stats["lz4"] += lz
                    for h in secrets.find(payload):
                        problems.append("%s frame %d (decompressed) holds %r" % (fn, lsn, h))
                    try:
                        pl = parse_payload(payload)
                    except (ValueError, IndexError) as e:
                        problems.append("%s frame %d: payload does not parse: %s" % (fn, lsn, e))
                        continue
                    stats["payloads_v2"] += pl["version"] == 2
                    for _key, _t, _v, meas in pl["rows"]:
                        if meas == b"bike":
                            stats["bike_raw_rows"] += 1
                    for inp in pl["inputs"]:
                        if inp["meas"] == b"bike":
                            stats["bike_inputs"] += 1
                            stats["bike_derived"] += inp["derived"] is not None
                            stats["tokens"].add((inp["time"] // DAY_NS, inp["token"]))
                            if inp["time"] % HOUR_NS:
                                stats["bad_input_times"] += 1
    for lp in logs:
        with open(lp, "rb") as f:
            data = f.read()
        for h in secrets.find(data):
            problems.append("log %s holds %r" % (os.path.basename(lp), h))
    return problems, stats


# ---------------------------------------------------------------- pseudonyms (docs/PRIVACY.md)

def day_key(master, day):
    """crypto_kdf_derive_from_key(32, subkey = day, "teutoday", master): libsodium's KDF is
    BLAKE2b keyed with the master key, the subkey id as salt (u64 LE, zero-padded to 16) and
    the context as personalisation (zero-padded to 16)."""
    return hashlib.blake2b(b"", digest_size=32, key=master, salt=struct.pack("<Q", day % 2 ** 64) + bytes(8),
                           person=b"teutoday" + bytes(8)).digest()


def pseudonym(master, time_ns, ident):
    """HMAC-SHA-256(day key of the row's UTC day, identifier)."""
    return hmac.new(day_key(master, time_ns // DAY_NS), ident, hashlib.sha256).digest()


# ---------------------------------------------------------------- mobility streams

CENTRE = (52.0215, 8.5330)  # Bielefeld, Jahnplatz


def dev_id(i):
    return "bike-4711-XYZ%03d" % i


def fmt7(v):
    return "%.7f" % v


class Stream:
    """Rows of bike (t_ns, device, lat text, lon text, speed text) and their lines."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.secrets = Secrets()

    def point(self, lat, lon):
        """Text of a position near (lat, lon) that is not within a millimetre of a cell edge
        (where two correct projections might disagree in the last bit)."""
        while True:
            la, lo = float(fmt7(lat)), float(fmt7(lon))
            if not near_edge(la, lo):
                return fmt7(la), fmt7(lo)
            lat += 2e-7
            lon += 2e-7

    def in_cell(self, centre):
        """A position inside the 100 m cell whose centre is given (up to ~25 m from it)."""
        while True:
            lat = centre[0] + self.rng.uniform(-0.0002, 0.0002)
            lon = centre[1] + self.rng.uniform(-0.0003, 0.0003)
            la, lo = self.point(lat, lon)
            if cell_of(float(la), float(lo)) == cell_of(*centre):
                return la, lo

    def row(self, t, dev, lat_s, lon_s, speed=None):
        if speed is None:
            speed = "%.2f" % self.rng.uniform(10, 35)  # never a coordinate (8.5x, 52.0x)
        self.secrets.add_row(dev, lat_s, lon_s)
        return (t, dev, lat_s, lon_s, speed)


def line(r):
    t, dev, lat, lon, speed = r
    return "bike,device=%s lat=%s,lon=%s,speed=%s %d" % (dev, lat, lon, speed, t)


def walk(st, ndev, start_ns, minutes, parked=None, zones=None):
    """One row per device per minute (at a random second of it). Devices random-walk in a
    zone: a compact one (many bikes per cell) or a wide one (few). parked: {device index:
    (from_ns, to_ns, cell centre)} overrides the walk while from <= t < to."""
    parked = parked or {}
    zones = zones or {}
    pos, zone = [], []
    for i in range(ndev):
        z = zones.get(i, "compact" if i < ndev // 2 else "wide")
        span = (0.0020, 0.0030) if z == "compact" else (0.0070, 0.0110)
        zone.append(span)
        pos.append([CENTRE[0] + st.rng.uniform(-span[0], span[0]), CENTRE[1] + st.rng.uniform(-span[1], span[1])])
    rows = []
    for m in range(minutes):
        t0 = start_ns + m * MIN_NS
        for i in range(ndev):
            t = t0 + st.rng.randrange(59) * NS + st.rng.randrange(NS)
            p = parked.get(i)
            if p and p[0] <= t0 < p[1]:
                la, lo = st.in_cell(p[2])
            else:
                span = zone[i]
                for k in (0, 1):
                    pos[i][k] += st.rng.uniform(-0.00035, 0.00035)
                    pos[i][k] = max(CENTRE[k] - span[k], min(CENTRE[k] + span[k], pos[i][k]))
                la, lo = st.point(*pos[i])
            rows.append(st.row(t, dev_id(i), la, lo))
    return rows


# ---------------------------------------------------------------- recomputation

def recompute(rows, closed_before, cell_rows_max=None, day_cells_max=None):
    """Per (bucket start, cell) of the closed buckets: what the raw rollup must say. With the
    contribution bounds (docs/PRIVACY.md), rows are taken in write order: a device's rows past
    cell_rows_max in one cell, or into a new cell past day_cells_max cells of its UTC day,
    count nowhere. Returns (cells, rows not counted)."""
    cells, per_cell, per_day, bounded = {}, {}, {}, 0
    for t, dev, lat, lon, speed in rows:
        key = (t // HOUR_NS * HOUR_NS, cell_of(float(lat), float(lon)))
        entered = per_day.setdefault((t // DAY_NS, dev), set())
        if day_cells_max is not None and key not in entered and len(entered) >= day_cells_max:
            bounded += 1
            continue
        if cell_rows_max is not None and per_cell.get((key, dev), 0) >= cell_rows_max:
            bounded += 1
            continue
        per_cell[(key, dev)] = per_cell.get((key, dev), 0) + 1
        entered.add(key)
        if key[0] >= closed_before:
            continue
        c = cells.setdefault(key, {"devs": set(), "v": []})
        c["devs"].add(dev)
        c["v"].append(float(speed))
    out = {}
    for key, c in cells.items():
        v = c["v"]
        n = len(v)
        mean = math.fsum(v) / n
        m2 = math.fsum((x - mean) ** 2 for x in v)
        out[key] = {"count": n, "contributors": len(c["devs"]), "speed_count": n,
                    "speed_sum": math.fsum(v), "speed_mean": mean, "speed_min": min(v),
                    "speed_max": max(v), "speed_stddev": math.sqrt(m2 / (n - 1)) if n >= 2 else None}
    return (out, bounded) if cell_rows_max is not None or day_cells_max is not None else out


def close(a, b):
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def compare_rollup(got_rows, expected, limit=10):
    """Mismatches between `teuto rollup` (raw) rows and a recomputation."""
    problems = []
    got = {}
    for r in got_rows:
        key = (int(r["bucket_ns"]), r["groupd"].get("cell"))
        if key in got:
            problems.append("cell %r appears twice" % (key,))
        got[key] = r
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    if missing:
        problems.append("%d cells missing, e.g. %r" % (len(missing), missing[:3]))
    if extra:
        problems.append("%d unexpected cells, e.g. %r" % (len(extra), extra[:3]))
    for key in sorted(set(got) & set(expected)):
        r, e = got[key], expected[key]
        for col in ("count", "contributors", "speed_count"):
            if r[col] != str(e[col]):
                problems.append("%r %s: %s, want %d" % (key, col, r[col], e[col]))
        for col in ("speed_sum", "speed_mean", "speed_min", "speed_max", "speed_stddev"):
            if e[col] is None:
                if r[col] != "":
                    problems.append("%r %s: %s, want empty" % (key, col, r[col]))
            elif r[col] == "" or not close(float(r[col]), e[col]):
                problems.append("%r %s: %r, want %.17g" % (key, col, r[col], e[col]))
        if r["status"] or r["status_reason"]:
            problems.append("%r raw read has status %r/%r" % (key, r["status"], r["status_reason"]))
    return problems[:limit] + (["... %d more" % (len(problems) - limit)] if len(problems) > limit else [])


def post(srv, db, lines, per_request=400):
    for i in range(0, len(lines), per_request):
        st, b = srv.write(db, "\n".join(lines[i:i + per_request]) + "\n")
        eq(st, 204, "write of lines %d..: %r" % (i, b[:300]))


# ---------------------------------------------------------------- the city fixture (tests 2-4)

_city = {}


def city_fixture():
    """One mobility stream through one server, shared by the privacy-gate, rollup and public
    tests. Built on first use; an error in it fails each of them."""
    if "error" in _city:
        raise AssertionError("fixture failed before: " + _city["error"])
    if _city:
        return _city
    try:
        _build_city()
    except Exception as e:
        _city.clear()
        _city["error"] = "%s: %s" % (type(e).__name__, e)
        raise
    return _city


def _build_city():
    d, data = newdir()
    conf = make_config(d)
    st = Stream(4711)
    day = DAY0_NS
    # controlled cells, away from the walking zones
    cell_a = cell_centre(52.0410, 8.5300)   # 09:00, exactly 2 bikes
    cell_b = cell_centre(52.0080, 8.5000)   # 10:00, exactly 3 bikes
    cell_c = cell_centre(52.0350, 8.5600)   # 08:00, 10 bikes
    cell_n4 = cell_centre(52.0420, 8.5450)  # 23:00, exactly 4 bikes (night: k 5)
    cell_n6 = cell_centre(52.0050, 8.5650)  # 23:00, 6 bikes
    cell_n3 = cell_centre(52.0000, 8.5200)  # 23:00, exactly 3 bikes
    h8, h9, h10, h23 = day + 8 * HOUR_NS, day + 9 * HOUR_NS, day + 10 * HOUR_NS, day + 23 * HOUR_NS
    parked = {38: (h9, h10, cell_a), 39: (h9, h10, cell_a),
              35: (h10, h10 + HOUR_NS, cell_b), 36: (h10, h10 + HOUR_NS, cell_b), 37: (h10, h10 + HOUR_NS, cell_b)}
    for i in range(20, 30):
        parked[i] = (h8, h9, cell_c)
    day_rows = walk(st, 40, h8, 180, parked=parked, zones={i: "wide" for i in range(30, 40)})
    night_rows = []
    for m in range(60):
        t0 = h23 + m * MIN_NS
        for i in range(13):
            c = cell_n4 if i < 4 else cell_n6 if i < 10 else cell_n3
            la, lo = st.in_cell(c)
            night_rows.append(st.row(t0 + st.rng.randrange(60 * NS), dev_id(i), la, lo))
    bike_rows = day_rows + night_rows
    # air quality: no personal data, raw rows kept
    air = []
    for t in list(range(h8, h8 + 3 * HOUR_NS, 10 * MIN_NS)) + list(range(h23, h23 + HOUR_NS, 10 * MIN_NS)):
        for s, dist in ((1, "Mitte"), (2, "Mitte"), (3, "Schildesche")):
            air.append("air,station=S%d,district=%s pm10=%.1f,pm25=%.1f,no2=%.1f,temperature=%.1f %d"
                       % (s, dist, st.rng.uniform(5, 40), st.rng.uniform(2, 20), st.rng.uniform(5, 60),
                          st.rng.uniform(-5, 30), t + s * NS))
    closer = st.row(day + 25 * HOUR_NS, dev_id(0), *st.point(*CENTRE))
    extra = [st.row(day + 25 * HOUR_NS + (5 + i) * MIN_NS, dev_id(1 + i), *st.point(CENTRE[0] + 0.0003 * i, CENTRE[1]))
             for i in range(5)]
    late = st.row(h8 + 30 * MIN_NS, "bike-4711-XYZ777", *st.point(*CENTRE))  # for a closed bucket

    srv = Server(data, config=conf)
    logs = [srv.log_path]
    try:
        # in time order, ten minutes (400 bike lines) per request, air lines mixed in
        by_slot = {}
        for r in bike_rows:
            by_slot.setdefault(r[0] // (10 * MIN_NS), []).append(line(r))
        for a in air:
            by_slot.setdefault(int(a.rsplit(" ", 1)[1]) // (10 * MIN_NS), []).append(a)
        for slot in sorted(by_slot):
            st_, b = srv.write("city", "\n".join(by_slot[slot]) + "\n")
            eq(st_, 204, "stream write: %r" % b[:300])
        st_, b = srv.write("city", line(closer) + "\n")
        eq(st_, 204, "closer: %r" % b)
        expected = recompute(bike_rows, day + 24 * HOUR_NS)
        # every closed bike cell, and air:1h of 08:00-10:00 (3 stations; 23:00 and the day
        # stay open: air's allowed_lateness is 2h and its last row is from 23:50)
        wait_finalised(srv, "city", len(expected) + 9)
        st_, b = srv.write("city", "\n".join(line(r) for r in extra) + "\n")
        eq(st_, 204, "rows into the open bucket: %r" % b)
        st_, b = srv.write("city", line(late) + "\n")
        late_answer = (st_, b)
        m = srv.metrics()
        # the WAL as it is while the server runs: every frame of the stream is still there
        snap = os.path.join(d, "snapshot")
        shutil.copytree(data, snap, ignore=shutil.ignore_patterns("LOCK"))
    finally:
        rc = srv.stop()
    eq(rc, 0, "exit status")
    _city.update(dict(dir=d, data=data, conf=conf, secrets=st.secrets, logs=logs, snapshot=snap,
                      bike_rows=bike_rows, air=air, expected=expected, late_answer=late_answer,
                      metrics=m, cells=dict(a=cell_of(*cell_a), b=cell_of(*cell_b), c=cell_of(*cell_c),
                                            n4=cell_of(*cell_n4), n6=cell_of(*cell_n6), n3=cell_of(*cell_n3)),
                      hours=dict(h8=h8, h9=h9, h10=h10, h23=h23)))


# ---------------------------------------------------------------- tests

def test_helpers():
    """The test's own tools: the projection against EPSG Guidance Note 7-2's example, the LZ4
    decoder, and the secret scanner on planted secrets (also one only a decompressed WAL
    frame shows)."""
    e, n = laea(50.0, 5.0)
    ok(abs(e - 3962799.45) < 0.005 and abs(n - 2999718.85) < 0.005, "GN7-2 example: E %.3f N %.3f" % (e, n))
    eq(laea(52.0, 10.0), (FE, FN), "natural origin")
    la, lo = inverse(4212350.0, 3226150.0)
    eq(cell_of(la, lo), "CRS3035RES100mN3226100E4212300", "inverse then cell")
    _selftest_lz4()
    d, data = newdir()
    os.makedirs(os.path.join(data, "db", "x", "wal"))
    sec = Secrets()
    sec.add_row("bike-4711-XYZ001", "52.0212345", "8.5312345")
    with open(os.path.join(data, "db", "x", "plain"), "wb") as f:
        f.write(b"a52.0212345;" + struct.pack("<d", 8.5312345) + b"18.53123450;")
    # the id only appears once the LZ4 match is expanded
    block = b"\xfa\x00\x01bike-4711-XYZ0\x0e\x00\x2001"
    payload = lz4_block_decode(block, 31)
    eq(payload, b"\x01bike-4711-XYZ0bike-4711-XYZ001", "crafted block")
    with open(os.path.join(data, "db", "x", "wal", "0000000000000001.wal"), "wb") as f:
        f.write(b"TEUTOWAL" + struct.pack("<IIQQ", 1, 0, 1, 0))
        f.write(struct.pack("<IBBHIIQQ", 0x52465754, 1, 1, 0, len(block), 31, 1, 0) + block)
    problems, stats = scan_for_secrets(data, [], sec)
    eq(stats["lz4"], 1, "the planted frame was decoded")
    for want in ("plain holds b'52.0212345'", "plain holds %r" % struct.pack("<d", 8.5312345),
                 "frame 1 (decompressed) holds b'bike-4711-XYZ001'"):
        ok(any(want in p for p in problems), "scanner misses %r: %r" % (want, problems))
    ok(not any("8.5312345'" in p for p in problems), "18.53123450 is not the coordinate 8.5312345")


def test_city_conf_starts_as_is():
    """docs/examples/city.conf works unchanged: relative data dir and key file land in the
    working directory; the key is 32 bytes, mode 0600; the log names its path, not its bytes."""
    d, _ = newdir()
    log_path = os.path.join(d, "teutod.log")
    srv = Server(None, config=CITY_CONF, cwd=d, log_path=log_path)
    try:
        st, _, _ = request(srv.http_port, "GET", "/ping")
        eq(st, 204, "/ping")
        key_path = os.path.join(d, "teuto-master.key")
        ok(os.path.isfile(key_path), "key file created in the working directory: %r" % os.listdir(d))
        ok(os.path.isdir(os.path.join(d, "data")), "data directory ./data created: %r" % os.listdir(d))
        with open(key_path, "rb") as f:
            key = f.read()
        eq(len(key), 32, "key length")
        eq(os.stat(key_path).st_mode & 0o777, 0o600, "key file mode")
        p = Stream(1).point(*CENTRE)
        st, b = srv.write("city", "bike,device=bike-4711-XYZ999 lat=%s,lon=%s,speed=12.5 %d\n"
                          % (p[0], p[1], DAY0_NS + 12 * HOUR_NS))
        eq(st, 204, "a bike row under city.conf: %r" % b)
    finally:
        rc = srv.stop()
    eq(rc, 0, "exit status after SIGTERM")
    log = srv.logtext()
    ok("teuto-master.key" in log, "log names where the key was created:\n" + log)
    ok("created master key" in log, "log says the key was created:\n" + log)
    for form in (key.hex(), key.hex().upper(), base64.b64encode(key).decode()):
        ok(form not in log, "the key's bytes are in the log")
    with open(log_path, "rb") as f:
        ok(key not in f.read(), "the key's raw bytes are in the log")
    # a second start reads the same key
    srv = Server(None, config=CITY_CONF, cwd=d, log_path=os.path.join(d, "teutod2.log"))
    eq(srv.stop(), 0, "second start's exit status")
    with open(os.path.join(d, "teuto-master.key"), "rb") as f:
        eq(f.read(), key, "the key survives a restart unchanged")
    ok("created master key" not in srv.logtext(), "the second start does not create a key")


def test_privacy_gate():
    """No raw device id or coordinate anywhere: data directory (while running and after
    stop), decompressed WAL payloads, logs, dump output. Aggregate-only means no raw bike row,
    not even in the WAL."""
    c = city_fixture()
    problems = []
    for where in (c["snapshot"], c["data"]):
        p, stats = scan_for_secrets(where, c["logs"], c["secrets"])
        problems += p
        ok(stats["frames"] > 0, "no WAL frame found in %s" % where)
        eq(stats["bike_raw_rows"], 0, "raw bike rows in the WAL of %s" % where)
        eq(stats["bike_derived"], 0, "bike inputs derived from raw rows in the WAL of %s" % where)
        eq(stats["bad_input_times"], 0, "rollup inputs with an exact time (not a bucket start)")
        ok(stats["bike_inputs"] > 0, "rollup inputs of bike in the WAL of %s: %r" % (where, stats))
        if where == c["snapshot"]:
            ok(stats["bike_inputs"] >= len(c["bike_rows"]), "every input still in the running WAL: %r" % stats)
            # each contributor token is bytes 0..11 of the device's keyed daily pseudonym
            with open(os.path.join(c["dir"], "master.key"), "rb") as f:
                master = f.read()
            want = {(day, pseudonym(master, day * DAY_NS, i)[:12]) for day in {d for d, _ in stats["tokens"]}
                    for i in c["secrets"].ids}
            strange = stats["tokens"] - want
            eq(len(strange), 0, "WAL contributor tokens that are no daily pseudonym of a device sent")
            ok(len(stats["tokens"]) >= 40, "tokens of 40 devices: %d" % len(stats["tokens"]))
            ok(stats["lz4"] > 0, "no LZ4 frame was decoded (stats %r)" % stats)
    eq(problems[:10], [], "raw identifiers or coordinates found (%d)" % len(problems))
    rows = dump(c["data"], "city")
    ok(not any(r.startswith("bike,") or r.startswith("bike ") for r in rows),
       "raw bike rows in teuto dump: %r" % [r for r in rows if r.startswith("bike")][:3])
    ok(any(r.startswith("bike:1h,") for r in rows), "rollup rows in teuto dump")
    eq(c["secrets"].find("\n".join(rows).encode()), set(), "raw values in teuto dump")
    # air rows as sent
    def parse(l):
        key, fields, t = l.rsplit(" ", 2)
        return key, int(t), {k: float(v) for k, v in (f.split("=") for f in fields.split(","))}
    got = sorted(parse(r) for r in rows if r.startswith("air,"))
    want = []
    for a in c["air"]:
        meas_tags, fields, t = a.rsplit(" ", 2)
        m, *tags = meas_tags.split(",")
        key = ",".join([m] + sorted(tags))
        want.append((key, int(t), {k: float(v) for k, v in (f.split("=") for f in fields.split(","))}))
    eq(got, sorted(want), "air rows in teuto dump")
    # a row for a closed bucket: refused as too late, and gone without a trace
    st, b = c["late_answer"]
    eq(st, 400, "row for a closed bucket: %r" % b)
    ok(b"too late" in b, "reason 'too late': %r" % b)
    ok(b"XYZ777" not in b, "the id is echoed: %r" % b)
    eq(metric(c["metrics"], "teuto_ingest_lines_rejected_total", 'proto="http",reason="late"'), 1,
       "late lines counted")
    eq(metric(c["metrics"], "teuto_db_rollup_late_rows_total", 'db="city"'), 1, "late rows counted")


def test_rollups_match_recomputation():
    """`teuto rollup` (raw) equals a recomputation from the rows sent, cell by cell."""
    c = city_fixture()
    got = rollup(c["data"], c["conf"], "city", "bike:1h")
    eq(compare_rollup(got, c["expected"]), [], "bike:1h against the recomputation")
    # the designed cells are there, with their contributor counts
    h = c["hours"]
    for key, n in (((h["h9"], c["cells"]["a"]), 2), ((h["h10"], c["cells"]["b"]), 3),
                   ((h["h8"], c["cells"]["c"]), 10), ((h["h23"], c["cells"]["n4"]), 4),
                   ((h["h23"], c["cells"]["n6"]), 6), ((h["h23"], c["cells"]["n3"]), 3)):
        eq(c["expected"][key]["contributors"], n, "designed cell %r" % (key,))
    ok(len(c["expected"]) > 100, "a varied stream: %d cells" % len(c["expected"]))
    # air: no personal data, disclosure none: its rollups exist too
    air = rollup(c["data"], c["conf"], "city", "air:1h")
    ok(len(air) >= 9, "air:1h cells: %d" % len(air))
    for r in air:
        eq(sorted(r["groupd"]), ["district", "station"], "air groups")


def test_public_suppression():
    """--public: cells under k (k_night at night) suppressed with reason and no values;
    published cells carry the raw values of the published aggregates (city.conf: no sum)."""
    c = city_fixture()
    raw = {(int(r["bucket_ns"]), r["groupd"]["cell"]): r for r in rollup(c["data"], c["conf"], "city", "bike:1h")}
    pub = rollup(c["data"], c["conf"], "city", "bike:1h", public=True)
    got = {(int(r["bucket_ns"]), r["groupd"]["cell"]): r for r in pub}
    eq(sorted(got), sorted(raw), "public read shows every cell (suppressed ones included)")
    value_cols = ["count", "contributors"] + ["speed_" + a for a in ("count", "sum", "mean", "min", "max", "stddev")]
    problems = []
    suppressed = published = 0
    for key, r in sorted(got.items()):
        e = c["expected"][key]
        hour = key[0] // HOUR_NS % 24
        k = 5 if (hour >= 22 or hour < 6) else 3
        if e["contributors"] < k:
            suppressed += 1
            if r["status"] != "." or r["status_reason"] != "MIN_CONTRIBUTORS_%d" % k:
                problems.append("%r (%d devices) status %r/%r" % (key, e["contributors"], r["status"], r["status_reason"]))
            for col in value_cols:
                if r[col] != "":
                    problems.append("%r suppressed but %s=%r" % (key, col, r[col]))
        else:
            published += 1
            if r["status"] or r["status_reason"]:
                problems.append("%r (%d devices) status %r/%r" % (key, e["contributors"], r["status"], r["status_reason"]))
            if r["speed_sum"] != "":
                problems.append("%r: speed_sum published, city.conf's aggregates leave it out" % (key,))
            for col in value_cols:
                if col != "speed_sum" and r[col] != raw[key][col]:
                    problems.append("%r %s: public %r, raw %r" % (key, col, r[col], raw[key][col]))
            if int(r["contributors"]) < k:
                problems.append("%r published with %s contributors" % (key, r["contributors"]))
    eq(problems[:10], [], "public read (%d problems)" % len(problems))
    ok(suppressed > 0 and published > 0, "both kinds: %d suppressed, %d published" % (suppressed, published))
    h, cl = c["hours"], c["cells"]
    for key, status, reason in (((h["h9"], cl["a"]), ".", "MIN_CONTRIBUTORS_3"),
                                ((h["h10"], cl["b"]), "", ""),
                                ((h["h8"], cl["c"]), "", ""),
                                ((h["h23"], cl["n4"]), ".", "MIN_CONTRIBUTORS_5"),
                                ((h["h23"], cl["n3"]), ".", "MIN_CONTRIBUTORS_5"),
                                ((h["h23"], cl["n6"]), "", "")):
        eq((got[key]["status"], got[key]["status_reason"]), (status, reason), "designed cell %r" % (key,))
    eq(got[(h["h10"], cl["b"])]["contributors"], "3", "the 3-bike cell is published with 3")


def _stream_rows(seed, ndev, minutes, start_ns):
    st = Stream(seed)
    rows = walk(st, ndev, start_ns, minutes)
    return st, rows


def test_restart_keeps_rollups_exact():
    """Half the stream, SIGTERM (flush), restart, the other half: rollups as if one run."""
    d, data = newdir()
    conf = make_config(d)
    h8 = DAY0_NS + 8 * HOUR_NS
    st, rows = _stream_rows(5, 20, 180, h8)
    cut = next(i for i, r in enumerate(rows) if r[0] >= h8 + 150 * MIN_NS)  # 10:30: 09:00, 10:00 open
    srv = Server(data, config=conf)
    try:
        post(srv, "city", [line(r) for r in rows[:cut]])
    finally:
        rc = srv.stop()
    eq(rc, 0, "exit status (first half)")
    srv = Server(data, config=conf)
    try:
        post(srv, "city", [line(r) for r in rows[cut:]])
        closer = st.row(h8 + 5 * HOUR_NS, dev_id(0), *st.point(*CENTRE))
        st_, b = srv.write("city", line(closer) + "\n")
        eq(st_, 204, "closer: %r" % b)
        expected = recompute(rows, h8 + 4 * HOUR_NS)
        wait_finalised(srv, "city", 1)
    finally:
        rc = srv.stop()
    eq(rc, 0, "exit status (second half)")
    eq(compare_rollup(rollup(data, conf, "city", "bike:1h"), expected), [], "rollups after a restart")


def test_sigkill_keeps_rollups_exact():
    """--durability always, one request at a time, SIGKILL mid-stream: after a restart the
    rollups equal a recomputation from the acknowledged requests (or those and the one in
    flight at the kill)."""
    d, data = newdir()
    conf = make_config(d)
    h8 = DAY0_NS + 8 * HOUR_NS
    st, rows = _stream_rows(6, 20, 180, h8)
    reqs = [rows[i:i + 20] for i in range(0, len(rows), 20)]  # one minute per request
    srv = Server(data, args=["--durability", "always"], config=conf)
    acked, inflight, errors = [], [None], []
    stop = threading.Event()

    def writer():
        c = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=30)
        for i, req in enumerate(reqs):
            if stop.is_set():
                return
            inflight[0] = i
            try:
                c.request("POST", "/write?db=city", ("\n".join(line(r) for r in req) + "\n").encode())
                resp = c.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException):
                return
            if resp.status == 204:
                acked.append(i)
                inflight[0] = None
            else:
                errors.append((i, resp.status, body[:200]))
                return

    t = threading.Thread(target=writer)
    t.start()
    deadline = time.time() + 60
    while len(acked) < 140 and t.is_alive() and time.time() < deadline:
        time.sleep(0.005)
    srv.kill()
    stop.set()
    t.join()
    eq(errors, [], "write errors before the kill")
    ok(len(acked) >= 140, "acknowledged before the kill: %d" % len(acked))
    ok(len(acked) < len(reqs), "the kill came mid-stream (all %d acknowledged)" % len(reqs))
    eq(acked, list(range(len(acked))), "acknowledged in order")
    srv = Server(data, config=conf)
    try:
        closer = st.row(h8 + 6 * HOUR_NS, dev_id(0), *st.point(*CENTRE))
        st_, b = srv.write("city", line(closer) + "\n")
        eq(st_, 204, "closer after the restart: %r" % b)
        wait_finalised(srv, "city", 1)
    finally:
        rc = srv.stop()
    eq(rc, 0, "exit status after the restart")
    got = rollup(data, conf, "city", "bike:1h")
    acked_rows = [r for i in acked for r in reqs[i]]
    p1 = compare_rollup(got, recompute(acked_rows, h8 + 5 * HOUR_NS))
    if p1 and inflight[0] is not None:
        p2 = compare_rollup(got, recompute(acked_rows + reqs[inflight[0]], h8 + 5 * HOUR_NS))
        ok(not p2, "rollups after SIGKILL match neither the acknowledged requests (%r) nor those "
                   "and the one in flight (%r)" % (p1[:4], p2[:4]))
    else:
        eq(p1, [], "rollups after SIGKILL against the acknowledged requests")


def qjson(srv, q, db="city"):
    """/query (no tokens configured: admin), the document's results."""
    st, _, b = request(srv.http_port, "GET", "/query?" + urllib.parse.urlencode({"db": db, "q": q, "epoch": "ns"}))
    eq(st, 200, "query %r: %r" % (q, b[:300]))
    return json.loads(b)["results"]


AIR_STATIONS = (("S1", "Mitte"), ("S2", "Mitte"), ("S3", "Schildesche"))


def expected_air_1h(rows):
    """{(hour start, station): (count, pm10 count, min, max, mean)} of air rows (station,
    district, t, pm10)."""
    cells = {}
    for st, _, t, pm10 in rows:
        cells.setdefault((t // HOUR_NS * HOUR_NS, st), []).append(pm10)
    return {k: (len(v), len(v), min(v), max(v), math.fsum(v) / len(v)) for k, v in cells.items()}


def air_1h_cells(results, what):
    """{(hour start, station): (count, pm10_count, pm10_min, pm10_max, pm10_mean)} from
    SELECT * FROM "air:1h" GROUP BY *."""
    got = {}
    for ser in results[0].get("series", []):
        for v in ser["values"]:
            row = dict(zip(ser["columns"], v))
            key = (row["time"], ser["tags"]["station"])
            ok(key not in got, "%s: cell %r twice" % (what, key))
            got[key] = (row["count"], row["pm10_count"], row["pm10_min"], row["pm10_max"], row["pm10_mean"])
    return got


def same_air_cells(got, want, what):
    eq(sorted(got), sorted(want), what + ": air:1h cells")
    for k in want:
        eq(got[k][:4], want[k][:4], "%s: air:1h %r count, pm10 count, min, max" % (what, k))
        ok(close(got[k][4], want[k][4]), "%s: air:1h %r pm10 mean %r, want %r" % (what, k, got[k][4], want[k][4]))


def test_drop_measurement_keeps_rollups():
    """DROP MEASUREMENT of a governed measurement drops its raw rows only: air:1h and bike:1h
    stay as they were (also over SIGKILL right after the drop and a restart), a cell still open
    at the drop keeps the rows it had, and a rollup itself cannot be dropped."""
    d, data = newdir()
    conf = make_config(d)
    h8 = DAY0_NS + 8 * HOUR_NS
    h14 = h8 + 6 * HOUR_NS
    rng = random.Random(77)
    air = [(st, dist, h8 + m * MIN_NS + i * NS, round(rng.uniform(3, 60), 1))
           for m in range(0, 180, 10) for i, (st, dist) in enumerate(AIR_STATIONS)]
    closer = ("S1", "Mitte", h14, 1.5)   # closes air 08:00-10:00 (allowed_lateness 2h)
    before = [(st, dist, h14 + (m + 1) * MIN_NS, round(rng.uniform(3, 60), 1)) for m in range(5) for st, dist in AIR_STATIONS[::2]]
    after = [(st, dist, h14 + (m + 30) * MIN_NS, round(rng.uniform(3, 60), 1)) for m in range(4) for st, dist in AIR_STATIONS[::2]]
    air_line = lambda r: "air,station=%s,district=%s pm10=%r %d" % (r[0], r[1], r[3], r[2])
    st, bike = _stream_rows(78, 12, 60, h8)
    bike_closer = st.row(h8 + 3 * HOUR_NS, dev_id(0), *st.point(*CENTRE))
    bike_want = recompute(bike, h8 + HOUR_NS)
    air_want = expected_air_1h(air)
    srv = Server(data, config=conf)
    try:
        post(srv, "city", [line(r) for r in bike] + [air_line(r) for r in air])
        post(srv, "city", [line(bike_closer), air_line(closer)] + [air_line(r) for r in before])
        wait_finalised(srv, "city", len(bike_want) + len(air_want))
        eq(qjson(srv, "SELECT count(pm10) FROM air")[0]["series"][0]["values"][0][1], len(air) + 1 + len(before),
           "raw air rows before the drop")
        air_1h = qjson(srv, 'SELECT * FROM "air:1h" GROUP BY *')
        bike_1h = qjson(srv, 'SELECT * FROM "bike:1h" GROUP BY *')
        same_air_cells(air_1h_cells(air_1h, "before"), air_want, "before the drop")
        eq(sum(len(s["values"]) for s in bike_1h[0]["series"]), len(bike_want), "bike:1h cells before the drop")
        # rollups are refused (quoted, as InfluxQL needs for the colon); the raw names drop
        res = qjson(srv, 'DROP MEASUREMENT "bike:1h"; DROP MEASUREMENT "air:1h"; DROP MEASUREMENT "air:1d"')
        for i, name in enumerate(("bike:1h", "air:1h", "air:1d")):
            ok("is a rollup" in res[i].get("error", ""), "DROP MEASUREMENT %s: %r" % (name, res[i]))
        with socket.create_connection(("127.0.0.1", srv.query_port), timeout=20) as sock:
            sock.sendall(b'USE city\nDROP MEASUREMENT "bike:1h"\nQUIT\n')
            out = b""
            while True:  # QUIT: the server closes after its OK
                b = sock.recv(65536)
                if not b:
                    break
                out += b
        replies = out.decode().splitlines()
        ok(len(replies) == 3 and replies[1].startswith("ERR ") and "is a rollup" in replies[1],
           "line query protocol DROP MEASUREMENT \"bike:1h\": %r" % replies)
        eq(qjson(srv, "DROP MEASUREMENT air; DROP MEASUREMENT bike"), [{"statement_id": 0}, {"statement_id": 1}],
           "DROP MEASUREMENT air, bike")
        eq(qjson(srv, "SELECT * FROM air"), [{"statement_id": 0, "error": "measurement not found: air"}], "raw air gone")
        eq(qjson(srv, "SHOW MEASUREMENTS")[0]["series"][0]["values"], [["air:1h"], ["bike:1h"]], "SHOW MEASUREMENTS")
        eq(qjson(srv, 'SELECT * FROM "air:1h" GROUP BY *'), air_1h, "air:1h unchanged by the drop")
        eq(qjson(srv, 'SELECT * FROM "bike:1h" GROUP BY *'), bike_1h, "bike:1h unchanged by the drop")
        # rows after the drop go into the cells still open; SIGKILL right after
        post(srv, "city", [air_line(r) for r in after])
        eq(qjson(srv, "SELECT count(pm10) FROM air")[0]["series"][0]["values"][0][1], len(after), "raw air after the drop")
    finally:
        srv.kill()
    srv = Server(data, config=conf)
    try:
        eq(qjson(srv, "SELECT pm10 FROM air GROUP BY station")[0]["series"],
           [{"name": "air", "tags": {"station": s_}, "columns": ["time", "pm10"],
             "values": [[t, v] for x, _, t, v in after if x == s_]} for s_ in ("S1", "S3")],
           "after SIGKILL: the raw rows written after the drop, only")
        eq(qjson(srv, 'SELECT * FROM "air:1h" GROUP BY *'), air_1h, "air:1h after SIGKILL")
        eq(qjson(srv, 'SELECT * FROM "bike:1h" GROUP BY *'), bike_1h, "bike:1h after SIGKILL")
        # close 14:00: its cells hold the rows from before and after the drop
        post(srv, "city", [air_line(("S2", "Mitte", h14 + 3 * HOUR_NS, 2.5))])
        wait_finalised(srv, "city", 2)
        air_want.update(expected_air_1h(before + after + [closer]))
        same_air_cells(air_1h_cells(qjson(srv, 'SELECT * FROM "air:1h" GROUP BY *'), "14:00"), air_want,
                       "14:00 closed after the drop")
    finally:
        eq(srv.stop(), 0, "exit status")
    eq(compare_rollup(rollup(data, conf, "city", "bike:1h"), bike_want), [], "bike:1h on disk")
    got = {(int(r["bucket_ns"]), r["groupd"]["station"]): (int(r["count"]), int(r["pm10_count"]), float(r["pm10_min"]),
                                                          float(r["pm10_max"]), float(r["pm10_mean"]))
           for r in rollup(data, conf, "city", "air:1h")}
    same_air_cells(got, air_want, "on disk")


def _trip_rows(sent, ids):
    def trip(dev, t, dist):
        sent.append((dist, ids[dev], t // DAY_NS))
        return "trip,device=%s dist=%r %d" % (ids[dev], dist, t)
    return trip


def _trip_pseudonyms(data, sent):
    """{(device id, day): set of stored device tags} from teuto dump."""
    rows = [r for r in dump(data, "city") if r.startswith("trip,")]
    eq(len(rows), len(sent), "trip rows in teuto dump: %r" % rows)
    pseud = {}
    for r in rows:
        m = re.fullmatch(r"trip,device=(\S+) dist=(\S+) (\d+)", r)
        ok(m, "dump line shape: %r" % r)
        ok(re.fullmatch(r"[0-9a-f]{32}", m.group(1)), "device tag is 32 lower-case hex digits: %r" % r)
        _, dev, day = next(s for s in sent if s[0] == float(m.group(2)))
        pseud.setdefault((dev, day), set()).add(m.group(1))
    return pseud


def test_pseudonyms_with_raw_retention():
    """trip (raw_retention_days = 7): stored device tags are 32 lower-case hex digits, the
    same per device and UTC day also across a restart, different per day and per device.
    (allowed_lateness = 1d, the most a policy allows: no bucket of the first day closes
    before its last row here; closing is test_rollup_without_group_by's subject.)"""
    d, data = newdir()
    conf = make_config(d, extra=TRIP + "allowed_lateness = 1d\n")
    day1, day2 = DAY0_NS, DAY0_NS + DAY_NS
    ids = ["trip-device-%c-0815" % c for c in "ABC"]
    sent = []
    trip = _trip_rows(sent, ids)
    srv = Server(data, config=conf)
    logs = [srv.log_path]
    try:
        lines = [trip(0, day1 + 10 * HOUR_NS, 1.5), trip(1, day1 + 10 * HOUR_NS + NS, 2.5),
                 trip(2, day1 + 10 * HOUR_NS + 2 * NS, 3.5), trip(0, day1 + 10 * HOUR_NS + 30 * MIN_NS, 4.5)]
        st, b = srv.write("city", "\n".join(lines) + "\n")
        eq(st, 204, "trip rows: %r" % b)
    finally:
        rc = srv.stop()
    eq(rc, 0, "exit status")
    srv = Server(data, config=conf)
    logs.append(srv.log_path)
    try:
        lines = [trip(0, day1 + 11 * HOUR_NS, 5.5), trip(1, day1 + 12 * HOUR_NS, 6.5),
                 trip(0, day2 + 10 * HOUR_NS, 7.5), trip(1, day2 + 10 * HOUR_NS + NS, 8.5)]
        st, b = srv.write("city", "\n".join(lines) + "\n")
        eq(st, 204, "trip rows after the restart: %r" % b)
    finally:
        rc = srv.stop()
    eq(rc, 0, "exit status after the restart")
    pseud = _trip_pseudonyms(data, sent)
    for key, ps in pseud.items():
        eq(len(ps), 1, "one pseudonym per device and day (also across the restart) for %r" % (key,))
    p = {k: next(iter(v)) for k, v in pseud.items()}
    d1, d2 = day1 // DAY_NS, day2 // DAY_NS
    ok(p[(ids[0], d1)] != p[(ids[0], d2)], "a new pseudonym the next day")
    ok(p[(ids[1], d1)] != p[(ids[1], d2)], "a new pseudonym the next day (device B)")
    eq(len({p[(i, d1)] for i in ids}), 3, "different devices, different pseudonyms")
    eq(len({p[(i, d2)] for i in ids[:2]}), 2, "different devices, different pseudonyms (day 2)")
    # and each is what docs/PRIVACY.md derives: the first 16 bytes of HMAC-SHA-256(day key, id)
    with open(os.path.join(d, "master.key"), "rb") as f:
        master = f.read()
    for (dev, day), tag in p.items():
        eq(tag, pseudonym(master, day * DAY_NS, dev.encode())[:16].hex(), "pseudonym of %s on day %d" % (dev, day))
    secrets = Secrets()
    secrets.ids = {i.encode() for i in ids}
    problems, _ = scan_for_secrets(data, logs, secrets)
    eq(problems, [], "raw trip ids on disk or in the logs")


def test_rollup_without_group_by():
    """trip has rollups but no group_by (docs/PRIVACY.md: one cell per bucket). Its bucket
    closes; a later row for it is kept raw (raw retention) and left out of the rollup."""
    d, data = newdir()
    conf = make_config(d)
    day1, day2 = DAY0_NS, DAY0_NS + DAY_NS
    ids = ["trip-device-%c-4242" % c for c in "ABC"]
    sent = []
    trip = _trip_rows(sent, ids)
    srv = Server(data, config=conf)
    try:
        lines = [trip(0, day1 + 10 * HOUR_NS, 1.5), trip(1, day1 + 10 * HOUR_NS + NS, 2.5),
                 trip(2, day1 + 10 * HOUR_NS + 2 * NS, 3.5), trip(0, day1 + 10 * HOUR_NS + 30 * MIN_NS, 4.5)]
        st, b = srv.write("city", "\n".join(lines) + "\n")
        eq(st, 204, "trip rows: %r" % b)
        st, b = srv.write("city", trip(1, day2 + 10 * HOUR_NS, 7.5) + "\n")  # closes day 1, 10:00
        eq(st, 204, "trip row of the next day: %r" % b)
        wait_finalised(srv, "city", 1)
        # late for its bucket, but raw retention keeps the row
        st, b = srv.write("city", trip(2, day1 + 10 * HOUR_NS + 50 * MIN_NS, 9.5) + "\n")
        eq(st, 204, "late trip row with raw retention: %r" % b)
        m = srv.metrics()
        eq(metric(m, "teuto_db_rollup_late_rows_total", 'db="city"'), 1, "the late row is counted")
    finally:
        rc = srv.stop()
    eq(rc, 0, "exit status")
    pseud = _trip_pseudonyms(data, sent)
    eq(len(pseud[(ids[2], day1 // DAY_NS)]), 1, "the late row carries the day's pseudonym")
    tr = rollup(data, conf, "city", "trip:1h")
    eq([(int(r["bucket_ns"]), r["group"], r["count"], r["contributors"], float(r["dist_sum"])) for r in tr],
       [(day1 + 10 * HOUR_NS, "", "4", "3", 12.0)], "trip:1h: 4 rows of 3 devices, the late row left out")


def test_contribution_bounds():
    """city.conf's own bounds: 120 rows per bike and cell-hour, 96 cell-hours per bike and UTC
    day; rows past them count nowhere (and are counted in teuto_db_rollup_bounded_total)."""
    d, data = newdir()
    conf = adapt_city(os.path.join(d, "teutod.conf"), key=os.path.join(d, "master.key"))
    st = Stream(9)
    h8 = DAY0_NS + 8 * HOUR_NS
    x = cell_centre(52.0300, 8.5100)
    rows = []
    for m in range(180):
        t = h8 + m * MIN_NS
        # a fast bike: a new cell every minute (150 m east), 180 cell-hours in the day
        rows.append(st.row(t, dev_id(100), *st.point(52.0150, 8.4500 + 0.0022 * m)))
        if m < 60:
            # a chatty bike: three rows a minute in one cell, 180 in the hour; two quiet ones
            for k in range(3):
                rows.append(st.row(t + (10 + k) * NS, dev_id(101), *st.in_cell(x)))
            rows.append(st.row(t + 20 * NS, dev_id(102), *st.in_cell(x)))
            rows.append(st.row(t + 21 * NS, dev_id(103), *st.in_cell(x)))
    rows.append(st.row(h8 + 5 * HOUR_NS, dev_id(104), *st.point(*CENTRE)))  # closes 08:00..10:00
    expected, bounded = recompute(rows, h8 + 4 * HOUR_NS, cell_rows_max=120, day_cells_max=96)
    eq(bounded, 84 + 60, "the recomputation's bounded rows")
    srv = Server(data, config=conf)
    try:
        post(srv, "city", [line(r) for r in rows])
        wait_finalised(srv, "city", len(expected))
        eq(metric(srv.metrics(), "teuto_db_rollup_bounded_total", 'db="city"'), bounded, "bounded rows counted")
    finally:
        rc = srv.stop()
    eq(rc, 0, "exit status")
    eq(compare_rollup(rollup(data, conf, "city", "bike:1h"), expected), [], "rollups under the bounds")
    eq(expected[(h8, cell_of(*x))]["count"], 120 + 60 + 60, "the chatty bike's cell: 120 of its rows")


def test_contribution_bounds_across_restart():
    """cells_per_day_max holds for the whole UTC day, also when teutod restarts after some of
    the day's buckets closed (docs/PRIVACY.md: the day tracker lives as long as the day's
    buckets are open, and the WAL is kept for it)."""
    d, data = newdir()
    conf = adapt_city(os.path.join(d, "teutod.conf"), key=os.path.join(d, "master.key"))
    st = Stream(10)
    h8 = DAY0_NS + 8 * HOUR_NS
    fast = lambda m: st.row(h8 + m * MIN_NS, dev_id(100), *st.point(52.0150, 8.4500 + 0.0022 * m))
    first = [fast(m) for m in range(90)]                                          # 08:00-09:29: 90 cells
    first.append(st.row(h8 + 2 * HOUR_NS, dev_id(101), *st.point(*CENTRE)))      # 10:00: closes 08:00
    second = [fast(m) for m in range(125, 150)]                                   # 10:05-10:29: 25 more
    second.append(st.row(h8 + 5 * HOUR_NS, dev_id(101), *st.point(*CENTRE)))     # closes the rest
    expected, bounded = recompute(first + second, h8 + 4 * HOUR_NS, cell_rows_max=120, day_cells_max=96)
    eq(bounded, 90 + 25 - 96, "the recomputation's bounded rows")
    srv = Server(data, config=conf)
    try:
        post(srv, "city", [line(r) for r in first])
        wait_finalised(srv, "city", 60)
    finally:
        rc = srv.stop()
    eq(rc, 0, "exit status (first run)")
    srv = Server(data, config=conf)
    try:
        post(srv, "city", [line(r) for r in second])
        settle(srv, "city")
    finally:
        rc = srv.stop()
    eq(rc, 0, "exit status (after the restart)")
    got = rollup(data, conf, "city", "bike:1h")
    fast_cells = sum(1 for r in got if r["contributors"] == "1" and int(r["bucket_ns"]) < h8 + 4 * HOUR_NS
                     and r["groupd"]["cell"] != cell_of(*(float(v) for v in first[-1][2:4])))
    eq(compare_rollup(got, expected), [],
       "rollups under cells_per_day_max across a restart (the fast bike counts in %d cells, want 96)" % fast_cells)


def _expect_exit2(conf, data, what, needles):
    p = subprocess.Popen([TEUTOD, "--data", data, "--config", conf, "--http", "127.0.0.1:%d" % free_port(),
                          "--lp", "off", "--query", "127.0.0.1:%d" % free_port()],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise AssertionError("%s: teutod started instead of refusing the policy" % what)
    text = out.decode(errors="replace")
    eq(p.returncode, 2, "%s: exit status (output: %s)" % (what, text.strip()))
    for n in needles:
        ok(n in text, "%s: the message names %r: %s" % (what, n, text.strip()))
    return text


def test_bad_policies():
    """Each broken policy stops teutod with status 2 and a message naming the problem."""
    cases = [
        ("group_by names an unknown tag", {("measurement.bike", "group_by"): "cell, nosuchtag"},
         ["bike", "group_by", "nosuchtag"]),
        ("k = 1", {("measurement.bike", "k"): "1"}, ["bike", "k must be at least 2"]),
        ("grid = 50m", {("measurement.bike", "grid"): "50m"}, ["grid"]),
        ("unknown key in [measurement.bike]", {("measurement.bike", "colour_mode"): "on"},
         ["unknown key", "line"]),
    ]
    for what, keys, needles in cases:
        d, data = newdir()
        _expect_exit2(make_config(d, keys), data, what, needles)
        ok(not os.path.exists(os.path.join(data, "db")), "%s: no database was opened" % what)
    # key files: readable by others; 31 bytes; inside the data directory
    d, data = newdir()
    conf = make_config(d)
    key = os.path.join(d, "master.key")
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(key, 0o644)
    _expect_exit2(conf, data, "key file of mode 0644", ["master key", "others"])
    d, data = newdir()
    conf = make_config(d)
    key = os.path.join(d, "master.key")
    fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, os.urandom(31))
    os.close(fd)
    _expect_exit2(conf, data, "key file of 31 bytes", ["32 bytes"])
    eq(os.path.getsize(key), 31, "a bad key file is never replaced")
    d, data = newdir()
    os.makedirs(data)
    conf = adapt_city(os.path.join(d, "teutod.conf"), key=os.path.join(data, "master.key"))
    _expect_exit2(conf, data, "key file inside the data directory", ["outside the data directory"])
    ok(not os.path.exists(os.path.join(data, "master.key")), "no key created inside the data directory")
    # the same, with the data directory given as a path that does not exist yet
    d, data = newdir()
    conf = adapt_city(os.path.join(d, "teutod.conf"), key=os.path.join(data, "master.key"))
    _expect_exit2(conf, data, "key file inside a data directory not created yet", [])
    ok(not os.path.exists(os.path.join(data, "master.key")), "no key created inside the data directory")


def test_bad_rows():
    """Bad bike lines are refused one by one (400, partial write naming them); the good lines
    of the same body are kept; a write to a rollup measurement is refused."""
    d, data = newdir()
    conf = make_config(d)
    st = Stream(7)
    t = DAY0_NS + 9 * HOUR_NS
    centre = cell_centre(*CENTRE)
    pts = [st.in_cell(centre) for _ in range(8)]
    ok_lines = {}
    body = [
        "bike,device=bike-4711-XYZ500 lat=%s,lon=%s,speed=10 %d" % (pts[0] + (t,)),            # 1 good
        "bike,device=bike-4711-XYZ501 lat=%s,lon=%s,speed=10,battery=80 %d" % (pts[1] + (t,)),  # 2 unknown field
        "bike,device=bike-4711-XYZ502 lat=%s,lon=%s,speed=11 %d" % (pts[2] + (t + NS,)),        # 3 good
        "bike,device=bike-4711-XYZ503 lat=NaN,lon=%s,speed=12 %d" % (pts[3][1], t),             # 4 NaN
        "bike,device=bike-4711-XYZ504 lat=10.0,lon=%s,speed=12 %d" % (pts[4][1], t),            # 5 outside
        "bike lat=%s,lon=%s,speed=13 %d" % (pts[5] + (t,)),                                     # 6 no device
        "bike,device=bike-4711-XYZ505 lat=%s,lon=%s,speed=14 %d" % (pts[6] + (t + 2 * NS,)),    # 7 good
        "bike:1h,cell=%s count=99u,contributors=99u %d" % (cell_of(*centre), t - HOUR_NS),      # 8 forged rollup
        "bike,device=bike-4711-XYZ506,colour=red lat=%s,lon=%s,speed=15 %d" % (pts[7] + (t,)),  # 9 unknown tag
        "bike,device=bike-4711-XYZ507 lon=%s,speed=15 %d" % (pts[7][1], t),                     # 10 no lat
        "bike,device=bike-4711-XYZ508 lat=%s,lon=%s,speed=\"fast\" %d" % (pts[7] + (t,)),       # 11 not numeric
    ]
    srv = Server(data, config=conf)
    try:
        st_, b = srv.write("city", "\n".join(body) + "\n")
        eq(st_, 400, "mixed body: %r" % b)
        err = json.loads(b)["error"]
        ok(err.startswith("partial write"), "partial write: %r" % err)
        named = sorted(int(n) for n in re.findall(r"line (\d+)", err))
        eq(named, [2, 4, 5, 6, 8, 9, 10, 11], "lines named in %r" % err)
        ok("XYZ" not in err and "battery" not in err, "no client text echoed: %r" % err)
        st_, b = srv.write("city", "bike:1h,cell=%s count=1u %d\n" % (cell_of(*centre), t))
        eq(st_, 400, "a write to bike:1h alone: %r" % b)
        m = srv.metrics()
        # unknown field, no device, forged rollup (x2), unknown tag, no lat, not numeric
        eq(metric(m, "teuto_ingest_lines_rejected_total", 'proto="http",reason="policy"'), 7,
           "policy refusals counted:\n" + "\n".join(l for l in m.splitlines() if "rejected" in l))
        st_, b = srv.write("city", line(st.row(t + 2 * HOUR_NS, dev_id(1), *st.point(*CENTRE))) + "\n")
        eq(st_, 204, "closer: %r" % b)
        wait_finalised(srv, "city", 1)
    finally:
        rc = srv.stop()
    eq(rc, 0, "exit status")
    cells = [r for r in rollup(data, conf, "city", "bike:1h") if int(r["bucket_ns"]) < t + HOUR_NS]
    eq([(r["bucket_ns"], r["groupd"], r["count"], r["contributors"]) for r in cells],
       [(str(t), {"cell": cell_of(*centre)}, "3", "3")], "only the good lines count; no forged cell")
    eq(float(cells[0]["speed_sum"]), 35.0, "speeds of the good lines")
    secrets = Secrets()
    secrets.ids = {b"bike-4711-XYZ%03d" % i for i in range(500, 509)}
    problems, _ = scan_for_secrets(data, [srv.log_path], secrets)
    eq(problems, [], "device ids on disk or in the log")


def test_forgotten_config():
    """Restarted without --config on a database the policy governed: writes to its
    measurements and their rollups are refused, nothing raw is stored, the log says why; and
    the rollup cells still open at that moment survive it."""
    d, data = newdir()
    conf = make_config(d)
    h8 = DAY0_NS + 8 * HOUR_NS
    st, rows = _stream_rows(8, 12, 120, h8)
    # 08:00 and 09:00, a closer into 11:00 (closes 08:00, 09:00), more rows into 11:00 (open)
    opened = [st.row(h8 + 3 * HOUR_NS + i * MIN_NS, dev_id(i % 12), *st.point(CENTRE[0] + 0.0001 * i, CENTRE[1]))
              for i in range(30)]
    srv = Server(data, config=conf)
    try:
        post(srv, "city", [line(r) for r in rows])
        post(srv, "city", [line(r) for r in opened])
        wait_finalised(srv, "city", 1)
    finally:
        rc = srv.stop()
    eq(rc, 0, "exit status (with config)")
    before = dump(data, "city")
    srv = Server(data)  # no --config
    try:
        p = st.point(*CENTRE)
        st_, b = srv.write("city", "bike,device=bike-4711-XYZ600 lat=%s,lon=%s,speed=9 %d\n" % (p[0], p[1], h8 + 3 * HOUR_NS + 40 * MIN_NS))
        eq(st_, 400, "bike write without the policy: %r" % b)
        st_, b = srv.write("city", "bike,device=bike-4711-XYZ601 speed=9 %d\n" % (h8 + 3 * HOUR_NS))
        eq(st_, 400, "bike write without position, without the policy: %r" % b)
        st_, b = srv.write("city", "bike:1h,cell=CRS3035RES100mN3226100E4212300 count=99u %d\n" % (h8 + 2 * HOUR_NS))
        eq(st_, 400, "bike:1h write without the policy: %r" % b)
        st_, b = srv.write("city", "air,station=S1,district=Mitte pm10=1 %d\n" % (h8 + 3 * HOUR_NS))
        eq(st_, 400, "air write without the policy: %r" % b)
        st_, b = srv.write("city", "weather,station=W1 temperature=12.5 %d\n" % (h8 + 3 * HOUR_NS))
        eq(st_, 204, "an ungoverned measurement is still written: %r" % b)
        log = srv.logtext()
    finally:
        rc = srv.stop()
    eq(rc, 0, "exit status (without config)")
    ok(re.search(r"bike.*not configured", log), "the log says why bike is refused:\n" + log)
    after = dump(data, "city")
    ok(not any(r.startswith("bike,") or r.startswith("bike ") for r in after), "raw bike rows: %r" % after[:3])
    eq([r for r in after if not r.startswith("weather")], before, "nothing else changed")
    ok(not any("XYZ60" in r for r in after), "ids in dump")
    secrets = Secrets()
    secrets.ids = {b"bike-4711-XYZ600", b"bike-4711-XYZ601"}
    problems, _ = scan_for_secrets(data, [srv.log_path], secrets)
    eq(problems, [], "ids on disk")
    # with the policy again: the cells that were open before the forgotten run still close right
    srv = Server(data, config=conf)
    try:
        st_, b = srv.write("city", line(st.row(h8 + 6 * HOUR_NS, dev_id(0), *st.point(*CENTRE))) + "\n")
        eq(st_, 204, "closer with the policy back: %r" % b)
        settle(srv, "city")
    finally:
        rc = srv.stop()
    eq(rc, 0, "exit status (config back)")
    eq(compare_rollup(rollup(data, conf, "city", "bike:1h"), recompute(rows + opened, h8 + 4 * HOUR_NS)), [],
       "rollups (incl. the 11:00 cells open during the run without config)")


TESTS = [test_helpers, test_city_conf_starts_as_is, test_privacy_gate, test_rollups_match_recomputation,
         test_public_suppression, test_restart_keeps_rollups_exact, test_sigkill_keeps_rollups_exact,
         test_pseudonyms_with_raw_retention, test_rollup_without_group_by, test_drop_measurement_keeps_rollups,
         test_contribution_bounds,
         test_contribution_bounds_across_restart, test_bad_policies, test_bad_rows, test_forgotten_config]


def main():
    return teutod_util.run_tests(TESTS, TMP)


if __name__ == "__main__":
    sys.exit(main())
