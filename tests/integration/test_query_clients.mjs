// Queries through a real InfluxDB 1.x client library: node-influx (`influx` on npm) against the
// real teutod. Points generated here are written with the client's writePoints, then read back
// with query(), queryRaw(), getDatabaseNames(), getMeasurements() and createDatabase(); every
// value is compared with what this file computes itself from the points (means, maxima, counts,
// raw values and nanosecond times). dropMeasurement() drops one measurement and leaves the other
// as written, also over a restart.
//
// The package is installed with npm at the version pinned in test_clients.mjs, into the same
// cache directory under the system temp dir (so both tests share one install). No registry, no
// test: an npm failure is a test failure with npm's message, never a silent skip. Requests the
// client sends are observed with node's diagnostics_channel; nothing is stubbed.
// Prints `N passed, M failed`; exits non-zero on any failure.

import diagnostics from 'node:diagnostics_channel';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { PACKAGES, installClients, runTests, startTeutod } from './clients_util.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SRC = process.env.TEUTO_SOURCE_DIR || path.join(HERE, '..', '..');
const BUILD = process.env.TEUTO_BUILD_DIR || path.join(SRC, 'build');
const TEUTOD = path.join(BUILD, 'teutod');


const T0 = Date.now();
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'teuto-query-clients-'));



function request(port, method, p) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end();
  });
}


async function startServer(data) {
  return startTeutod(TEUTOD, ['--data', data]);
}

function eq(got, want, what) {
  const a = JSON.stringify(got), b = JSON.stringify(want);
  if (a !== b) throw new Error(`${what}: expected ${b}, got ${a}`);
}

function ok(cond, what) {
  if (!cond) throw new Error(what);
}

const close = (a, b) => (a === null || b === null ? a === b : Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)));

const sent = [];
diagnostics.subscribe('http.client.request.start', ({ request: req }) => {
  sent.push({ method: req.method, path: req.path });
});

// ------------------------------------------------------------------ the data

const NS_PER_S = 1000000000n;
const HOUR = 3600n * NS_PER_S;
const BASE = 1700000000n * NS_PER_S - (1700000000n * NS_PER_S) % HOUR; // an hour boundary
const STATIONS = ['a', 'b', 'c'];

function genPoints() {
  let seed = 12345;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const points = [];
  for (const st of STATIONS) {
    let t = BASE;
    for (let i = 0; i < 240; i++) {
      t += BigInt(Math.floor(30 + rnd() * 600)) * NS_PER_S + BigInt(Math.floor(rnd() * 1e6));
      points.push({
        station: st, ns: t,
        temp: i % 4 === 0 ? Math.floor(rnd() * 30) : 15 + rnd() * 10,
        n: Math.floor(rnd() * 1000) - 100,
        note: i % 9 === 0 ? `check "${i}" at ${st}, ok\\` : null,
      });
    }
  }
  return points;
}

const iso = (ns) => {
  const s = ns / NS_PER_S, frac = ns % NS_PER_S;
  const base = new Date(Number(s) * 1000).toISOString().slice(0, 19);
  return frac ? `${base}.${String(frac).padStart(9, '0').replace(/0+$/, '')}Z` : `${base}Z`;
};

// ------------------------------------------------------------------ the tests

let clients;

async function testNodeInfluxQueries() {
  const { InfluxDB, FieldType, toNanoDate } = clients.v1;
  const s = await startServer(path.join(TMP, 'data1'));
  try {
    const influx = new InfluxDB({
      host: '127.0.0.1', port: s.port, database: 'q', pool: { maxRetries: 0, requestTimeout: 20000 },
      schema: [{ measurement: 'room', fields: { temp: FieldType.FLOAT, n: FieldType.INTEGER, note: FieldType.STRING }, tags: ['station'] }],
    });
    const points = genPoints();
    await influx.writePoints(points.map((p) => ({
      measurement: 'room', tags: { station: p.station },
      fields: p.note === null ? { temp: p.temp, n: p.n } : { temp: p.temp, n: p.n, note: p.note },
      timestamp: toNanoDate(String(p.ns)),
    })));

    // GROUP BY time(1h), station over [BASE, BASE + 48h): every bucket, fill(null)
    const end = BASE + 48n * HOUR;
    const q = `SELECT mean(temp), max(temp), count(n) FROM room WHERE time >= '${iso(BASE)}' AND time < '${iso(end)}' GROUP BY time(1h), station`;
    const rows = await influx.query(q);
    const want = [];
    for (const st of STATIONS) {
      for (let b = BASE; b < end; b += HOUR) {
        const inb = points.filter((p) => p.station === st && p.ns >= b && p.ns < b + HOUR);
        const temps = inb.map((p) => p.temp);
        want.push({ ns: String(b), station: st, mean: temps.length ? temps.reduce((x, y) => x + y, 0) / temps.length : null,
          max: temps.length ? Math.max(...temps) : null, count: inb.length });
      }
    }
    eq(rows.length, want.length, 'hourly rows');
    rows.forEach((r, i) => {
      const w = want[i];
      eq([r.time.getNanoTime(), r.station, r.max, r.count], [w.ns, w.station, w.max, w.count], `hourly row ${i}`);
      ok(close(r.mean, w.mean), `hourly row ${i}: mean ${r.mean}, expected ${w.mean}`);
    });
    eq(rows.groups().map((g) => g.tags), STATIONS.map((st) => ({ station: st })), 'groups() carry the tags');

    // raw rows, exact: values and nanosecond times
    const raw = await influx.query(`SELECT temp, n, note FROM room WHERE station = 'b'`);
    const mine = points.filter((p) => p.station === 'b');
    eq(raw.map((r) => [r.time.getNanoTime(), r.temp, r.n, r.note]), mine.map((p) => [String(p.ns), p.temp, p.n, p.note]),
      'raw rows of station b');
    // precision: epoch=ms gives millisecond numbers
    const ms = await influx.query(`SELECT n FROM room WHERE station = 'c' LIMIT 5`, { precision: 'ms' });
    eq(ms.map((r) => r.time.getTime()), points.filter((p) => p.station === 'c').slice(0, 5).map((p) => Number(p.ns / 1000000n)),
      'precision ms');
    // POST: the same rows
    const posted = await influx.query(`SELECT temp, n, note FROM room WHERE station = 'b'`, { method: 'POST' });
    eq(posted.map((r) => [r.time.getNanoTime(), r.temp, r.n, r.note]), raw.map((r) => [r.time.getNanoTime(), r.temp, r.n, r.note]), 'POST');
    // several statements: an array of results
    const both = await influx.query([`SELECT count(n) FROM room`, `SELECT max(n) FROM room WHERE station = 'a'`]);
    eq([both[0][0].count, both[1][0].max], [points.length, Math.max(...points.filter((p) => p.station === 'a').map((p) => p.n))],
      'two statements');
    const rawDoc = await influx.queryRaw(`SELECT count(n) FROM room GROUP BY station`);
    eq(rawDoc.results[0].series.map((x) => [x.tags.station, x.values[0][1]]), STATIONS.map((st) => [st, 240]), 'queryRaw');

    // errors: a statement error is a ResultError, a syntax error a 400
    let err;
    try {
      await influx.query('SELECT * FROM nope');
    } catch (e) {
      err = e;
    }
    eq(err && err.message, 'Error from InfluxDB: measurement not found: nope', 'statement error');
    err = undefined;
    try {
      await influx.query('SELECT FROM room');
    } catch (e) {
      err = e;
    }
    ok(err && err.res && err.res.statusCode === 400 && /error parsing query/.test(err.message), `syntax error: ${err}`);

    // the management calls node-influx builds on SHOW / CREATE
    eq(await influx.getDatabaseNames(), ['q'], 'getDatabaseNames');
    eq(await influx.getMeasurements(), ['room'], 'getMeasurements');
    await influx.createDatabase('fresh_db');
    eq(await influx.getDatabaseNames(), ['fresh_db', 'q'], 'createDatabase');

    // what the client sent: GET with epoch= and params={} (accepted), POST for CREATE
    const queries = sent.filter((r) => r.path.startsWith('/query'));
    ok(queries.some((r) => r.method === 'GET' && r.path.includes('epoch=&') && r.path.includes('params=%7B%7D')),
      `node-influx sends empty epoch and params={}: ${queries.map((r) => r.path).slice(0, 2)}`);
    ok(queries.some((r) => r.method === 'POST'), 'node-influx used POST');
  } finally {
    await s.stop();
  }
}

// DROP MEASUREMENT through node-influx's dropMeasurement(name, db): hall (rows in parts, written
// before a restart, and in memory) and "old-hall" (a name InfluxQL needs quoted) go, room stays
// exactly as written; hall written again starts a new schema; a restart keeps all of it.
async function testNodeInfluxDropMeasurement() {
  const { InfluxDB, toNanoDate } = clients.v1;
  const data = path.join(TMP, 'data2');
  const connect = (port) => new InfluxDB({ host: '127.0.0.1', port, database: 'q', pool: { maxRetries: 0, requestTimeout: 20000 } });
  const points = genPoints();
  const room = (p) => ({ measurement: 'room', tags: { station: p.station }, fields: { temp: p.temp, n: p.n },
    timestamp: toNanoDate(String(p.ns)) });
  const hall = (p) => ({ measurement: 'hall', tags: { station: p.station }, fields: { temp: p.temp },
    timestamp: toNanoDate(String(p.ns)) });
  const checkRoom = async (influx, what) => {
    const raw = await influx.query(`SELECT temp, n FROM room WHERE station = 'c'`);
    eq(raw.map((r) => [r.time.getNanoTime(), r.temp, r.n]),
      points.filter((p) => p.station === 'c').map((p) => [String(p.ns), p.temp, p.n]), `${what}: room rows of station c`);
    const agg = await influx.query(`SELECT count(n), sum(n), max(temp) FROM room`);
    eq([agg[0].count, agg[0].sum, agg[0].max], [points.length, points.reduce((x, p) => x + p.n, 0),
      Math.max(...points.map((p) => p.temp))], `${what}: room aggregates`);
  };
  let s = await startServer(data);
  try {
    const influx = connect(s.port);
    await influx.writePoints(points.map(room));
    await influx.writePoints(points.filter((_, i) => i % 2 === 0).map(hall));
  } finally {
    await s.stop(); // flushes: the first hall rows are in parts now
  }
  s = await startServer(data);
  try {
    const influx = connect(s.port);
    await influx.writePoints(points.filter((_, i) => i % 2 === 1).map(hall));
    await influx.writePoints([{ measurement: 'old-hall', fields: { v: 1 }, timestamp: toNanoDate(String(BASE)) }]);
    eq(await influx.getMeasurements(), ['hall', 'old-hall', 'room'], 'getMeasurements before the drop');
    const before = await influx.query(`SELECT count(temp) FROM hall`);
    eq(before[0].count, points.length, 'hall complete before the drop');

    const from = sent.length;
    await influx.dropMeasurement('hall', 'q');
    await influx.dropMeasurement('old-hall');
    await influx.dropMeasurement('nope'); // nothing stored: no error, as in InfluxDB
    const drops = sent.slice(from).filter((r) => r.path.startsWith('/query'));
    eq(drops.map((r) => r.method), ['POST', 'POST', 'POST'], 'node-influx drops with POST');
    eq(await influx.getMeasurements(), ['room'], 'getMeasurements after the drop');
    eq(await influx.getMeasurements('q'), ['room'], 'getMeasurements(db) after the drop');
    let err;
    try {
      await influx.query('SELECT * FROM hall');
    } catch (e) {
      err = e;
    }
    eq(err && err.message, 'Error from InfluxDB: measurement not found: hall', 'hall is gone');
    err = undefined;
    try {
      await influx.dropMeasurement('hall', 'missing');
    } catch (e) {
      err = e;
    }
    eq(err && err.message, 'Error from InfluxDB: database not found: missing', 'drop in a missing database');
    await checkRoom(influx, 'after the drop');

    // the name again with temp as a string: a new measurement, none of the old rows
    await influx.writePoints(STATIONS.map((st, i) => ({ measurement: 'hall', tags: { station: st },
      fields: { temp: `warm ${i}` }, timestamp: toNanoDate(String(points[i].ns)) })));
    const again = await influx.query(`SELECT temp FROM hall`);
    eq(again.map((r) => [r.time.getNanoTime(), r.temp]), STATIONS.map((_, i) => [String(points[i].ns), `warm ${i}`])
      .sort((a, b) => (BigInt(a[0]) < BigInt(b[0]) ? -1 : 1)), 'hall written again');
  } finally {
    await s.stop();
  }
  s = await startServer(data);
  try {
    const influx = connect(s.port);
    eq(await influx.getMeasurements(), ['hall', 'room'], 'getMeasurements after a restart');
    const again = await influx.query(`SELECT count(temp) FROM hall`);
    eq(again[0].count, STATIONS.length, 'hall after a restart: only the rows written after the drop');
    await checkRoom(influx, 'after a restart');
  } finally {
    await s.stop();
  }
}

// ------------------------------------------------------------------ runner

const tests = [['node-influx: query, queryRaw, precision, POST, errors, SHOW/CREATE', testNodeInfluxQueries],
  ['node-influx: dropMeasurement, getMeasurements', testNodeInfluxDropMeasurement]];

let installError;
try {
  clients = installClients();
  console.log(`clients from ${clients.dir} (influx@${PACKAGES.influx})`);
} catch (e) {
  installError = e;
  console.log(`FAIL installing the client packages: ${e.message}`);
}
const { passed, failed } = await runTests(tests,
  installError && 'the client packages could not be installed');
if (failed === 0) fs.rmSync(TMP, { recursive: true, force: true });
else console.log(`data and logs kept in ${TMP}`);
console.log(`wall time ${((Date.now() - T0) / 1000).toFixed(1)} s`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
