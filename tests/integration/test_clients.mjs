// Integration tests with the real InfluxDB client libraries from npm, writing to the real
// teutod: `@influxdata/influxdb-client` (InfluxDB 2.x API: token, org/bucket, gzip) and
// `influx` (node-influx, the 1.x API). Each test starts build/teutod on free loopback ports in a
// temporary data directory, lets the client write, stops the server and reads the rows back with
// `build/teuto dump`, comparing them with line protocol this file builds itself from the points
// it handed to the client (its own escaping and %.17g formatting, not the client's serializer).
//
// The packages are installed by this script with npm, at the exact versions pinned below, into
// a cache directory under the system temp dir keyed by those versions, so later runs on the same
// machine start at once. No registry, no test: an npm failure is a test failure with npm's
// message, never a silent skip.
//
// Observation of what the clients send (headers, paths) uses node's diagnostics_channel on the
// real requests; nothing is stubbed. Prints `N passed, M failed`; exits non-zero on any failure.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
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
const TEUTO = path.join(BUILD, 'teuto');


const T0 = Date.now();
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'teuto-clients-'));

// ------------------------------------------------------------------ npm install (cached)


// ------------------------------------------------------------------ server and tools


/** One HTTP request with node's own http module: status, headers, body text. */
function request(port, method, p, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.setTimeout(10000, () => req.destroy(new Error('request timed out')));
    req.end(body);
  });
}


class Server {
  static async start(data, config) {
    const s = Object.assign(new Server(), await startTeutod(TEUTOD,
      ['--data', data, ...(config ? ['--config', config] : [])], { lp: true }));
    s.data = data;
    s.url = `http://127.0.0.1:${s.port}`;
    return s;
  }
}

/** `teuto dump DATA --db NAME`, one string per row. */
function dump(data, db) {
  const p = spawnSync(TEUTO, ['dump', data, '--db', db], { encoding: 'utf8', timeout: 60000 });
  if (p.status !== 0) throw new Error(`teuto dump ${db} failed (${p.status}): ${p.stderr}`);
  return p.stdout.split('\n').filter((l) => l.trim() !== '');
}

function eq(got, want, what) {
  const a = JSON.stringify(got), b = JSON.stringify(want);
  if (a !== b) throw new Error(`${what}: expected ${b}, got ${a}`);
}

function ok(cond, what) {
  if (!cond) throw new Error(what);
}

/** Row-by-row comparison of dumped lines, so a failure names the first differing row. */
function eqLines(got, want, what) {
  for (let i = 0; i < Math.max(got.length, want.length); i++) {
    if (got[i] !== want[i]) {
      throw new Error(`${what}: ${got.length} rows, expected ${want.length}; first difference at row ${i}:\n` +
        `  expected ${JSON.stringify(want[i])}\n  got      ${JSON.stringify(got[i])}`);
    }
  }
}

// ------------------------------------------------------------------ independent expectations
// What `teuto dump` must print for a set of points: series key = measurement (`,` and space
// escaped) + tags sorted by raw key bytes (`,` `=` space escaped); fields sorted by raw name
// bytes; floats as C's %.17g, ints `…i`, uints `…u`, booleans true/false, strings quoted with
// `"` and `\` escaped; nanosecond time. Rows sorted by series key bytes, then time.

const escMeasurement = (s) => s.replace(/[, ]/g, '\\$&');
const escName = (s) => s.replace(/[,= ]/g, '\\$&');
const byBytes = (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** C's printf("%.17g", x) for a finite double. */
function g17(x) {
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const [mant, e] = x.toExponential(16).split('e');
  const exp = Number(e);
  const trim = (s) => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
  if (exp < -4 || exp >= 17) {
    return `${trim(mant)}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  return trim(x.toFixed(16 - exp));
}

function fieldText(f) {
  switch (f.type) {
    case 'float': return g17(f.value);
    case 'int': return `${f.value}i`;
    case 'uint': return `${f.value}u`;
    case 'bool': return f.value ? 'true' : 'false';
    case 'string': return `"${f.value.replace(/["\\]/g, '\\$&')}"`;
    default: throw new Error(`unknown field type ${f.type}`);
  }
}

/** points: [{measurement, tags: {k: v}, fields: {k: {type, value}}, ns: BigInt}] */
function expectedDump(points) {
  const rows = points.map((p) => {
    const key = escMeasurement(p.measurement) + Object.keys(p.tags).sort(byBytes)
      .map((k) => `,${escName(k)}=${escName(p.tags[k])}`).join('');
    const fields = Object.keys(p.fields).sort(byBytes)
      .map((k) => `${escName(k)}=${fieldText(p.fields[k])}`).join(',');
    return { key, ns: p.ns, text: `${key} ${fields} ${p.ns}` };
  });
  rows.sort((a, b) => byBytes(a.key, b.key) || (a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : 0));
  return rows.map((r) => r.text);
}

// ------------------------------------------------------------------ request observation

const sent = []; // {port, method, path, headers} of every HTTP request any client starts
diagnostics.subscribe('http.client.request.start', ({ request: req }) => {
  const host = String(req.getHeader('host') || '');
  sent.push({ port: Number(host.split(':').pop()), method: req.method, path: req.path, headers: req.getHeaders() });
});
const sentTo = (port, prefix) => sent.filter((r) => r.port === port && r.path.startsWith(prefix));

// ------------------------------------------------------------------ the tests

let clients;
let dataCount = 0;
const newData = () => path.join(TMP, `data${++dataCount}`);
const clientLog = [];
const quietLogger = {
  error: (msg, err) => clientLog.push(`error: ${msg} ${err ? err.message : ''}`),
  warn: (msg, err) => clientLog.push(`warn: ${msg} ${err ? err.message : ''}`),
};

function g17SelfCheck() {
  // Known outputs of glibc printf("%.17g") for these doubles.
  const cases = [[0.1, '0.10000000000000001'], [1 / 3, '0.33333333333333331'], [100, '100'],
    [1e21, '1e+21'], [5e-324, '4.9406564584124654e-324'], [-273.15, '-273.14999999999998'],
    [0.0001, '0.0001'], [0.00001, '1.0000000000000001e-05'], [1e16, '10000000000000000'],
    [1e17, '1e+17'], [2.5, '2.5']];
  for (const [x, want] of cases) eq(g17(x), want, `g17(${x})`);
}

/** Adds one {type, value} field to a v2 Point through the client's typed setter. */
function v2Field(point, name, f) {
  switch (f.type) {
    case 'float': return point.floatField(name, f.value);
    case 'int': return point.intField(name, f.value);
    case 'uint': return point.uintField(name, f.value);
    case 'bool': return point.booleanField(name, f.value);
    case 'string': return point.stringField(name, f.value);
    default: throw new Error(f.type);
  }
}

function v2Point(p, timestamp) {
  const { Point } = clients.v2;
  const pt = new Point(p.measurement);
  for (const [k, v] of Object.entries(p.tags)) pt.tag(k, v);
  for (const [k, f] of Object.entries(p.fields)) v2Field(pt, k, f);
  return pt.timestamp(timestamp);
}

async function testV2WriteApi() {
  const { InfluxDB } = clients.v2;
  const data = newData();
  const s = await Server.start(data);
  const token = 'v2-token-not-checked-without-config';
  const points = [];
  try {
    const influx = new InfluxDB({ url: s.url, token, timeout: 10000 });
    const opts = { gzipThreshold: 0, batchSize: 100, flushInterval: 0, maxRetries: 0 };
    // precision ms with Date timestamps: 250 points over 3 series in batches of 100
    const ms = influx.getWriteApi('teuto-org', 'clients', 'ms', opts);
    const base = 1700000000000;
    for (let i = 0; i < 250; i++) {
      const p = {
        measurement: 'air quality,x',
        tags: { 'station id': `north=${i % 3}, b`, city: 'Münster' },
        fields: {
          'pm 2.5': { type: 'float', value: i * 0.1 + 1 / 3 },
          count: { type: 'int', value: i * 1000003 - 50000000 },
          'ok=1': { type: 'bool', value: i % 2 === 0 },
          note: { type: 'string', value: `reading "${i}" at C:\\st\\${i}, ok` },
        },
        ns: BigInt(base + i * 1000) * 1000000n,
      };
      points.push(p);
      ms.writePoint(v2Point(p, new Date(base + i * 1000)));
    }
    await ms.close();
    // precision us with numeric timestamps, the edge values of each type
    const us = influx.getWriteApi('teuto-org', 'clients', 'us', opts);
    const edge = [
      { f: { type: 'float', value: 1e21 }, i: { type: 'int', value: 9007199254740991 }, u: { type: 'uint', value: '18446744073709551615' } },
      { f: { type: 'float', value: 5e-324 }, i: { type: 'int', value: -9007199254740991 }, u: { type: 'uint', value: 0 } },
      { f: { type: 'float', value: -273.15 }, i: { type: 'int', value: 0 }, u: { type: 'uint', value: 9007199254740991 } },
    ];
    edge.forEach((e, k) => {
      const p = {
        measurement: 'edge',
        tags: { kind: 'limits' },
        fields: { f: e.f, i: e.i, u: e.u, b: { type: 'bool', value: k === 1 }, s: { type: 'string', value: k === 2 ? '' : `\\"${k}"\\` } },
        ns: BigInt(1700000000123456 + k) * 1000n,
      };
      points.push(p);
      us.writePoint(v2Point(p, 1700000000123456 + k));
    });
    await us.close();
    // precision ns with string timestamps, a bucket in the 1.x `db/rp` form
    const ns = influx.getWriteApi('teuto-org', 'clients/autogen', 'ns', opts);
    for (let k = 0; k < 3; k++) {
      const t = `17000000001234567${k}9`;
      const p = { measurement: 'nano', tags: { n: String(k) }, fields: { v: { type: 'float', value: k + 0.5 } }, ns: BigInt(t) };
      points.push(p);
      ns.writePoint(v2Point(p, t));
    }
    await ns.close();
    // what the client really sent: gzip, the token, org/bucket/precision
    const writes = sentTo(s.port, '/api/v2/write');
    eq(writes.length, 3 + 1 + 1, 'write requests (250 points in batches of 100, then 3, then 3)');
    for (const w of writes) {
      eq(w.method, 'POST', 'write method');
      eq(w.headers['content-encoding'], 'gzip', `gzip on ${w.path}`);
      eq(w.headers.authorization, `Token ${token}`, 'Authorization header');
    }
    eq(writes.map((w) => w.path), [
      ...Array(3).fill('/api/v2/write?org=teuto-org&bucket=clients&precision=ms'),
      '/api/v2/write?org=teuto-org&bucket=clients&precision=us',
      '/api/v2/write?org=teuto-org&bucket=clients%2Fautogen&precision=ns'], 'write paths');
  } finally {
    await s.stop();
  }
  eqLines(dump(data, 'clients'), expectedDump(points), 'v2 client rows read back');
}

async function testNodeInflux1x() {
  const { InfluxDB, FieldType, toNanoDate } = clients.v1;
  const data = newData();
  const s = await Server.start(data);
  const points = [];
  try {
    const influx = new InfluxDB({
      host: '127.0.0.1', port: s.port, protocol: 'http', database: 'legacy',
      pool: { maxRetries: 0, requestTimeout: 10000 },
      schema: [{
        measurement: 'room_temp',
        fields: { temp: FieldType.FLOAT, 'wind speed': FieldType.FLOAT, n: FieldType.INTEGER, 'is,on': FieldType.BOOLEAN, note: FieldType.STRING },
        tags: ['build ing', 'zone=id', 'floor'],
      }],
    });
    const mk = (i, ns) => {
      const p = {
        measurement: 'room_temp',
        tags: { 'build ing': `Hall ${i % 2}, west`, 'zone=id': 'a=b c', floor: String(i % 3) },
        fields: {
          temp: { type: 'float', value: 20 + i / 7 },
          'wind speed': { type: 'float', value: i * 1.25 },
          n: { type: 'int', value: i * 37 - 100 },
          'is,on': { type: 'bool', value: i % 3 === 0 },
          note: { type: 'string', value: `she said "it's ${i}°C" \\o/` },
        },
        ns,
      };
      points.push(p);
      return {
        measurement: p.measurement, tags: p.tags,
        fields: Object.fromEntries(Object.entries(p.fields).map(([k, f]) => [k, f.value])),
      };
    };
    // precision s, numeric timestamps
    const inS = [];
    for (let i = 0; i < 20; i++) inS.push({ ...mk(i, BigInt(1600000000 + i) * 1000000000n), timestamp: 1600000000 + i });
    await influx.writePoints(inS, { precision: 's' });
    // precision u (1.x spelling) with string timestamps and a retention policy (ignored by teutod)
    const inU = [];
    for (let i = 20; i < 30; i++) inU.push({ ...mk(i, BigInt(1600000100000000 + i) * 1000n), timestamp: String(1600000100000000 + i) });
    await influx.writePoints(inU, { precision: 'u', retentionPolicy: 'autogen' });
    // default precision (n) with nanosecond dates
    const inN = [];
    for (let i = 30; i < 35; i++) {
      const t = `16000002000000000${i}`;
      inN.push({ ...mk(i, BigInt(t)), timestamp: toNanoDate(t) });
    }
    await influx.writePoints(inN);
    const writes = sentTo(s.port, '/write');
    eq(writes.map((w) => w.path), [
      '/write?db=legacy&precision=s&rp=', '/write?db=legacy&precision=u&rp=autogen',
      '/write?db=legacy&precision=n&rp='], 'node-influx write paths');
    // ping: online, with teutod's version header
    const [ping] = await influx.ping(5000);
    const ver = spawnSync(TEUTO, ['version'], { encoding: 'utf8' }).stdout.split(' ')[1];
    eq([ping.online, ping.version], [true, `teuto-${ver}`], 'node-influx ping (online, X-Influxdb-Version)');
  } finally {
    await s.stop();
  }
  eqLines(dump(data, 'legacy'), expectedDump(points), 'node-influx rows read back');
}

async function testPartialWrite() {
  const { InfluxDB, HttpError, Point } = clients.v2;
  const data = newData();
  const s = await Server.start(data);
  let v2err, v1err;
  try {
    const influx = new InfluxDB({ url: s.url, token: 't', timeout: 10000 });
    const opts = { gzipThreshold: 0, flushInterval: 0, maxRetries: 0 };
    const first = influx.getWriteApi('o', 'partial', 's', opts);
    first.writePoint(new Point('wx').tag('s', 'a').floatField('temp', 1.5).timestamp(1000));
    await first.close(); // fixes wx.temp as float
    const api = influx.getWriteApi('o', 'partial', 's', opts);
    api.writePoints([
      new Point('wx').tag('s', 'a').floatField('temp', 2.5).timestamp(2000),
      new Point('wx').tag('s', 'b').stringField('temp', 'hot').timestamp(3000), // type conflict
      new Point('wx').tag('s', 'c').floatField('temp', 3.5).timestamp(4000),
    ]);
    try {
      await api.flush();
    } catch (e) {
      v2err = e;
    }
    await api.close().catch(() => {});
    ok(v2err instanceof HttpError, `v2 flush should reject with HttpError, got ${v2err}`);
    eq(v2err.statusCode, 400, 'v2 partial write status');
    eq(v2err.json, { code: 'invalid', message: 'partial write: line 2: field type conflict dropped=1' }, 'v2 error body');
    eq(v2err.code, 'invalid', 'client-side error code');
    // the same through node-influx's 1.x API: its RequestError carries status and 1.x body
    const legacy = new clients.v1.InfluxDB({ host: '127.0.0.1', port: s.port, database: 'partial', pool: { maxRetries: 0 } });
    try {
      await legacy.writePoints([
        { measurement: 'wx', tags: { s: 'd' }, fields: { temp: 'cold' }, timestamp: 5000 }, // conflict
        { measurement: 'wx', tags: { s: 'e' }, fields: { temp: 4.5 }, timestamp: 6000 },
      ], { precision: 's' });
    } catch (e) {
      v1err = e;
    }
    // (node-influx does not export its RequestError class; it is the error with `res`)
    ok(v1err && v1err.res, `node-influx should reject with a RequestError, got ${v1err}`);
    eq(v1err.res.statusCode, 400, 'node-influx partial write status');
    eq(v1err.message, 'A 400 Bad Request error occurred: {"error":"partial write: line 1: field type conflict dropped=1"}',
      'node-influx error message');
  } finally {
    await s.stop();
  }
  const f = (v) => ({ temp: { type: 'float', value: v } });
  eqLines(dump(data, 'partial'), expectedDump([
    { measurement: 'wx', tags: { s: 'a' }, fields: f(1.5), ns: 1000n * 1000000000n },
    { measurement: 'wx', tags: { s: 'a' }, fields: f(2.5), ns: 2000n * 1000000000n },
    { measurement: 'wx', tags: { s: 'c' }, fields: f(3.5), ns: 4000n * 1000000000n },
    { measurement: 'wx', tags: { s: 'e' }, fields: f(4.5), ns: 6000n * 1000000000n },
  ]), 'good points kept after partial writes');
}

async function testAuth() {
  const { InfluxDB, HttpError, Point } = clients.v2;
  const data = newData();
  const wtok = 'clients-writer-0f3a9c';
  const rtok = 'clients-reader-77b2e1';
  const cfg = path.join(TMP, 'auth.ini');
  const sha = (t) => createHash('sha256').update(t).digest('hex');
  fs.writeFileSync(cfg, `[server]\ndurability = always\n[tokens]\nwriter = write:${sha(wtok)}\nreader = read:sha256:${sha(rtok)}\n`);
  const s = await Server.start(data, cfg);
  const opts = { gzipThreshold: 0, flushInterval: 0, maxRetries: 0 };
  const row = (host, v) => ({ measurement: 'auth', tags: { host }, fields: { v: { type: 'int', value: v } }, ns: BigInt(v) * 1000000n });
  const good = [row('v2', 1), row('v2', 2), row('v1', 3)];
  try {
    const write = async (token, pts) => {
      const api = new InfluxDB({ url: s.url, token, timeout: 10000 }).getWriteApi('o', 'secure', 'ms', opts);
      api.writePoints(pts.map((p) => new Point(p.measurement).tag('host', p.tags.host).intField('v', p.fields.v.value).timestamp(Number(p.ns / 1000000n))));
      let err;
      try {
        await api.flush();
      } catch (e) {
        err = e;
      }
      await api.close().catch(() => {});
      return err;
    };
    eq(await write(wtok, good.slice(0, 2)), undefined, 'v2 write with the right token');
    for (const [tok, status, code, what] of [['wrong-token', 401, 'unauthorized', 'wrong token'],
      [rtok, 403, 'forbidden', 'read-only token']]) {
      const err = await write(tok, [row('bad', 10), row('bad', 11)]);
      ok(err instanceof HttpError, `${what}: expected an HttpError, got ${err}`);
      eq(err.statusCode, status, `${what}: status`);
      ok(err.json && typeof err.json.message === 'string' && err.json.message.length > 0, `${what}: 2.x error body ${err.body}`);
      eq(err.json.code, code, `${what}: 2.x error code (body ${err.body})`);
    }
    // A batch large enough (over 3 MB, uncompressed) that the server refuses it long before the
    // client finished sending: the client must still get the 401, not a reset connection.
    // (batchSize above the point count, so that our flush() sends it, not an automatic flush.)
    const big = [];
    for (let i = 0; i < 100000; i++) {
      big.push(new Point('auth').tag('host', `bad${i % 100}`).intField('v', 1000 + i).timestamp(1000 + i));
    }
    const bigBytes = big.reduce((n, p) => n + p.toLineProtocol().length + 1, 0);
    ok(bigBytes > 3000000, `large batch is ${bigBytes} bytes`);
    const api = new InfluxDB({ url: s.url, token: 'wrong-token', timeout: 10000 })
      .getWriteApi('o', 'secure', 'ms', { flushInterval: 0, maxRetries: 0, batchSize: 1000000, gzipThreshold: Number.MAX_SAFE_INTEGER });
    api.writePoints(big);
    let bigErr;
    try {
      await api.flush();
    } catch (e) {
      bigErr = e;
    }
    await api.close().catch(() => {});
    ok(bigErr instanceof HttpError, `wrong token, ${bigBytes}-byte uncompressed batch: expected HttpError 401, got ${bigErr && bigErr.stack}`);
    eq(bigErr.statusCode, 401, 'wrong token, large batch: status');
    // node-influx: the token as the 1.x password (Basic auth)
    const v1 = (password) => new clients.v1.InfluxDB({
      host: '127.0.0.1', port: s.port, database: 'secure', username: 'any', password, pool: { maxRetries: 0 },
      schema: [{ measurement: 'auth', fields: { v: clients.v1.FieldType.INTEGER }, tags: ['host'] }],
    });
    await v1(wtok).writePoints([{ measurement: 'auth', tags: { host: 'v1' }, fields: { v: 3 }, timestamp: 3 }], { precision: 'ms' })
      .catch((e) => { throw new Error(`node-influx with the right token: ${e.message}`); });
    let v1err;
    try {
      await v1('wrong').writePoints([{ measurement: 'auth', tags: { host: 'bad' }, fields: { v: 1 }, timestamp: 99 }], { precision: 'ms' });
    } catch (e) {
      v1err = e;
    }
    ok(v1err && v1err.res, `node-influx with a wrong token: expected a RequestError, got ${v1err}`);
    eq(v1err.res.statusCode, 401, 'node-influx wrong token status');
    eq(sentTo(s.port, '/write').map((r) => r.headers.authorization), [wtok, 'wrong'].map((p) =>
      `Basic ${Buffer.from(`any:${p}`).toString('base64')}`), 'node-influx sends the password as Basic auth');
  } finally {
    await s.stop();
  }
  eqLines(dump(data, 'secure'), expectedDump(good), 'only the authorised points were written');
}

async function testHealthAndPing() {
  const { InfluxDB } = clients.v2;
  const s = await Server.start(newData());
  try {
    const ver = spawnSync(TEUTO, ['version'], { encoding: 'utf8' }).stdout.split(' ')[1];
    const influx = new InfluxDB({ url: s.url, timeout: 10000 });
    const health = await influx.transport.request('/health', '', { method: 'GET' });
    eq(health, { name: 'teuto', message: 'ready for queries and writes', status: 'pass', checks: [], version: ver, commit: '' },
      '/health through the v2 client');
    let started;
    await influx.transport.request('/ping', '', { method: 'GET' }, (headers, status) => { started = { headers, status }; });
    eq([started.status, started.headers['x-influxdb-version']], [204, `teuto-${ver}`], '/ping through the v2 client');
  } finally {
    await s.stop();
  }
}

// ------------------------------------------------------------------ runner

const tests = [
  ['g17 formatter matches printf %.17g', g17SelfCheck, false],
  ['v2 client: WriteApi, token, gzip, all field types, ms/us/ns', testV2WriteApi, true],
  ['node-influx: writePoints with escaping, s/u/n precision, ping', testNodeInflux1x, true],
  ['partial write: 400 surfaces in both clients, good points kept', testPartialWrite, true],
  ['auth: wrong token 401, read token 403, nothing written', testAuth, true],
  ['v2 client: /health and /ping', testHealthAndPing, true],
];

let installError;
try {
  clients = installClients();
  clients.v2.setLogger(quietLogger);
  console.log(`clients from ${clients.dir} (${Object.entries(PACKAGES).map(([n, v]) => `${n}@${v}`).join(', ')})`);
} catch (e) {
  installError = e;
  console.log(`FAIL installing the client packages: ${e.message}`);
}
const { passed, failed } = await runTests(tests,
  installError && 'the client packages could not be installed', (failedNow) => {
    if (failedNow && clientLog.length) console.log(`     client log:\n       ${clientLog.join('\n       ')}`);
    clientLog.length = 0;
  });
if (failed === 0) fs.rmSync(TMP, { recursive: true, force: true });
else console.log(`data and logs kept in ${TMP}`);
console.log(`wall time ${((Date.now() - T0) / 1000).toFixed(1)} s`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
