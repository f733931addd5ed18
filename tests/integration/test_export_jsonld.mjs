// The DCAT-AP.de metadata of the open-data exports (docs/EXPORT.md) read by a real JSON-LD
// processor: `jsonld` (digitalbazaar's jsonld.js) from npm expands what the real teutod serves at
// /export/bike-hourly/metadata, /export/air-hourly/metadata and /export/catalog, and every
// assertion is on the EXPANDED graph, i.e. on full IRIs: a wrong prefix, a term missing from the
// @context or a value of the wrong shape changes the IRIs and fails here, where a check of the
// compact JSON keys (test_export.py) would still pass.
//
// teutod runs with docs/examples/city.conf (its data directory and master key moved into a
// temporary directory) plus an unpublished governed measurement `trip`, which the catalog must
// list as NON_PUBLIC. A few bike and air rows three days back, and one row two days later per
// measurement to close their buckets, give the datasets a dct:temporal.
//
// The context must be self-contained: expansion runs with a documentLoader that throws on any
// load (and records it), and in safe mode, so a term that would be dropped is an error too.
//
// jsonld is installed with npm at the exact version pinned below into a cache directory under
// the system temp dir (clients_util.mjs). No registry, no test: an npm failure is a test
// failure with npm's message, never a silent skip.
// Prints `N passed, M failed`; exits non-zero on any failure.

import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { installPackages, runTests, startTeutod } from './clients_util.mjs';

// Exact version, checked with `npm view jsonld version` when the test was written.
const JSONLD = { jsonld: '9.0.0' };

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SRC = process.env.TEUTO_SOURCE_DIR || path.join(HERE, '..', '..');
const BUILD = process.env.TEUTO_BUILD_DIR || path.join(SRC, 'build');
const TEUTOD = path.join(BUILD, 'teutod');
const CITY_CONF = path.join(SRC, 'docs', 'examples', 'city.conf');

const T0 = Date.now();
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'teuto-export-jsonld-'));

// the vocabularies, spelled out
const DCT = 'http://purl.org/dc/terms/';
const DCAT = 'http://www.w3.org/ns/dcat#';
const DCATDE = 'http://dcat-ap.de/def/dcatde/';
const FOAF = 'http://xmlns.com/foaf/0.1/';
const RDFS = 'http://www.w3.org/2000/01/rdf-schema#';
const XSD = 'http://www.w3.org/2001/XMLSchema#';
const EU = 'http://publications.europa.eu/resource/authority/';
const FILE_TYPE = `${EU}file-type/`;
const IANA = 'https://www.iana.org/assignments/media-types/';
const DL_BY_DE = 'http://dcat-ap.de/def/licenses/dl-by-de/2.0';

// An unpublished governed measurement: the catalog must list it as NON_PUBLIC.
const TRIP = `
[measurement.trip]
personal = device:pseudonymise
measures = dist
raw_retention_days = 0
rollups = 1h
k = 3
`;

const NS_PER_S = 1000000000n;
const HOUR = 3600n * NS_PER_S;
const DAY = 24n * HOUR;
// three days ago, UTC midnight: in the past for the rollups, inside air's 30-day retention
const DAY0 = (BigInt(Math.floor(Date.now() / 1000)) / 86400n - 3n) * DAY;

// ------------------------------------------------------------------ helpers

function eq(got, want, what) {
  const a = JSON.stringify(got), b = JSON.stringify(want);
  if (a !== b) throw new Error(`${what}: expected ${b}, got ${a}`);
}

function ok(cond, what) {
  if (!cond) throw new Error(what);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One request with node's own http module: status, headers, body text. */
function request(port, method, p, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.setTimeout(30000, () => req.destroy(new Error(`${method} ${p}: timed out`)));
    req.end(body);
  });
}

/** city.conf with the data directory and the master key in d, plus [measurement.trip]. */
function config(d) {
  let text = fs.readFileSync(CITY_CONF, 'utf8');
  text = text.replace(/^data = .*$/m, `data = ${path.join(d, 'data')}`);
  text = text.replace(/^master_key_file = .*$/m, `master_key_file = ${path.join(d, 'master.key')}`);
  ok(text.includes(`data = ${path.join(d, 'data')}`) && text.includes(path.join(d, 'master.key')),
    'city.conf has no `data =` or `master_key_file =` line to move');
  const p = path.join(d, 'teutod.conf');
  fs.writeFileSync(p, text + TRIP);
  return p;
}


/** The real teutod with conf (teutod's working directory cwd), on free loopback ports. */
async function startServer(conf, cwd) {
  return startTeutod(TEUTOD, ['--config', conf], { cwd });
}

/** A few rows of bike and air on DAY0, and one row per measurement two days later, which
 * moves the watermarks past every bucket of DAY0: they close, and dct:temporal appears. */
function lines() {
  const out = [];
  for (let h = 8n; h < 11n; h++) {
    for (const [i, dev] of ['b1', 'b2', 'b3', 'b4'].entries()) {
      const t = DAY0 + h * HOUR + BigInt(60 * (i + 1)) * NS_PER_S;
      out.push(`bike,device=${dev} lat=52.0211,lon=8.5347,speed=${10 + i}.5 ${t}`);
    }
    for (let m = 0n; m < 60n; m += 15n) {
      const t = DAY0 + h * HOUR + m * 60n * NS_PER_S;
      out.push(`air,station=s1,district=Mitte pm10=21.5,pm25=9.25,no2=33,temperature=4.5 ${t}`);
      out.push(`air,station=s3,district=Sennestadt pm10=12,pm25=6.5,no2=0,temperature=3.75 ${t}`);
    }
  }
  const push = DAY0 + 2n * DAY;
  out.push(`bike,device=push lat=52.0211,lon=8.5347,speed=1 ${push}`);
  out.push(`air,station=s1,district=Mitte pm10=1,pm25=1,no2=1,temperature=1 ${push}`);
  return out.join('\n');
}

// ------------------------------------------------------------------ JSON-LD

let jsonld;
const remoteLoads = [];
/** The only way jsonld could reach the network: refused, and recorded. */
async function documentLoader(url) {
  remoteLoads.push(url);
  throw new Error(`jsonld tried to load ${url}: the metadata's @context must be inline`);
}

/** The expanded form of a JSON document, with no remote load and nothing silently dropped. */
async function expand(doc, what) {
  const before = remoteLoads.length;
  const out = await jsonld.expand(doc, { documentLoader, safe: true });
  eq(remoteLoads.slice(before), [], `${what}: remote loads during expansion`);
  return out;
}

/** The values of an expanded node's property (full IRI); at least one. */
function vals(node, iri, what) {
  const v = node[iri];
  ok(Array.isArray(v) && v.length > 0, `${what}: no <${iri}> (properties: ${Object.keys(node).join(' ')})`);
  return v;
}

/** The single value of the property. */
function one(node, iri, what) {
  const v = vals(node, iri, what);
  eq(v.length, 1, `${what}: number of <${iri}> values`);
  return v[0];
}

/** The IRI the property points to (a node reference or an embedded node with @id). */
const ref = (node, iri, what) => {
  const v = one(node, iri, what);
  ok(typeof v['@id'] === 'string', `${what}: <${iri}> is not an IRI: ${JSON.stringify(v)}`);
  return v['@id'];
};

/** A plain literal's text, non-empty. */
function text(node, iri, what) {
  const v = one(node, iri, what);
  ok(typeof v['@value'] === 'string' && v['@value'].trim() !== '',
    `${what}: <${iri}> is not a non-empty string: ${JSON.stringify(v)}`);
  return v['@value'];
}

function hasType(node, iri, what) {
  ok(Array.isArray(node['@type']) && node['@type'].includes(iri),
    `${what}: @type ${JSON.stringify(node['@type'])} lacks <${iri}>`);
}

/** rdfs:label of a statement node: {language: text}, German and English present. */
function labels(node, what) {
  const out = {};
  for (const l of vals(node, `${RDFS}label`, what)) {
    ok(typeof l['@value'] === 'string' && l['@value'].trim() !== '', `${what}: an empty label`);
    out[l['@language']] = l['@value'];
  }
  eq(Object.keys(out).sort(), ['de', 'en'], `${what}: label languages`);
  return out;
}

async function getJsonLd(s, p) {
  const r = await request(s.port, 'GET', p);
  eq(r.status, 200, `GET ${p}`);
  eq(r.headers['content-type'], 'application/ld+json; charset=utf-8', `${p} Content-Type`);
  const doc = JSON.parse(r.body);
  ok(doc['@context'] && typeof doc['@context'] === 'object' && !Array.isArray(doc['@context']),
    `${p}: the @context is not an inline object: ${JSON.stringify(doc['@context'])}`);
  return doc;
}

const MEDIA = { csv: 'text/csv', json: 'application/json', lp: 'text/plain' };

/** An absolute http URL on this teutod that answers HEAD with 200; returns its Content-Type. */
async function headOnTeutod(s, url, what) {
  let u;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`${what}: ${JSON.stringify(url)} is not an absolute URL`);
  }
  eq([u.protocol, u.host], ['http:', `127.0.0.1:${s.port}`], `${what}: scheme and authority of ${url}`);
  const r = await request(s.port, 'HEAD', u.pathname + u.search);
  eq(r.status, 200, `${what}: HEAD ${url}`);
  eq(r.body, '', `${what}: HEAD ${url} has a body`);
  return r.headers['content-type'];
}

/** What DCAT-AP.de requires of a dataset, and what EXPORT.md promises, on an expanded node. */
async function checkDataset(s, ds, name, what) {
  const base = `http://127.0.0.1:${s.port}/export/${name}`;
  eq(ds['@id'], base, `${what}: @id`);
  hasType(ds, `${DCAT}Dataset`, what);
  ok(/\S/.test(text(ds, `${DCT}title`, what)), `${what}: empty title`);
  text(ds, `${DCT}description`, what);
  const pub = one(ds, `${DCT}publisher`, what);
  hasType(pub, `${FOAF}Organization`, `${what} publisher`);
  eq(text(pub, `${FOAF}name`, `${what} publisher`), 'Stadt Bielefeld', `${what}: publisher's foaf:name`);
  eq(ref(ds, `${DCT}accessRights`, what), `${EU}access-right/PUBLIC`, `${what}: dct:accessRights`);
  eq(ref(ds, `${DCT}accrualPeriodicity`, what), `${EU}frequency/HOURLY`, `${what}: dct:accrualPeriodicity`);
  eq(one(ds, `${DCAT}temporalResolution`, what), { '@type': `${XSD}duration`, '@value': 'PT1H' },
    `${what}: dcat:temporalResolution`);

  // dct:temporal: from the issue date to the last closed bucket
  const period = one(ds, `${DCT}temporal`, what);
  hasType(period, `${DCT}PeriodOfTime`, `${what} dct:temporal`);
  eq(one(period, `${DCAT}startDate`, `${what} dct:temporal`), { '@type': `${XSD}date`, '@value': '2026-11-01' },
    `${what}: dcat:startDate`);
  const end = one(period, `${DCAT}endDate`, `${what} dct:temporal`);
  eq(end['@type'], `${XSD}dateTime`, `${what}: dcat:endDate type`);
  const endMs = Date.parse(end['@value']);
  ok(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(end['@value']) && !Number.isNaN(endMs),
    `${what}: dcat:endDate ${end['@value']} is not an xsd:dateTime in UTC`);
  const lastData = Number(DAY0 / 1000000n) + 11 * 3600000; // the end of the last hour written
  ok(endMs >= lastData && endMs <= Date.now(),
    `${what}: dcat:endDate ${end['@value']} is not between ${new Date(lastData).toISOString()} and now`);

  const prov = one(ds, `${DCT}provenance`, what);
  hasType(prov, `${DCT}ProvenanceStatement`, `${what} dct:provenance`);
  const said = labels(prov, `${what} dct:provenance`);

  const dists = vals(ds, `${DCAT}distribution`, what);
  eq(dists.length, 3, `${what}: number of distributions`);
  const downloads = [];
  for (const d of dists) {
    const dw = `${what} distribution ${d['@id']}`;
    hasType(d, `${DCAT}Distribution`, dw);
    const access = ref(d, `${DCAT}accessURL`, dw);
    const download = ref(d, `${DCAT}downloadURL`, dw);
    downloads.push(download);
    const ext = download.slice(base.length + 1);
    ok(download.startsWith(`${base}.`) && ext in MEDIA, `${dw}: downloadURL ${download} is not ${base}.{csv,json,lp}`);
    const served = await headOnTeutod(s, access, `${dw} accessURL`);
    if (download !== access) await headOnTeutod(s, download, `${dw} downloadURL`);
    const format = ref(d, `${DCT}format`, dw);
    ok(format.startsWith(FILE_TYPE) && /^[A-Z0-9_]+$/.test(format.slice(FILE_TYPE.length)),
      `${dw}: dct:format ${format} is not an EU file type`);
    const media = ref(d, `${DCAT}mediaType`, dw);
    ok(media.startsWith(IANA), `${dw}: dcat:mediaType ${media} is not an IANA media type IRI`);
    eq(media.slice(IANA.length), MEDIA[ext], `${dw}: dcat:mediaType`);
    eq(served.split(';')[0], MEDIA[ext], `${dw}: the Content-Type teutod serves`);
    eq(ref(d, `${DCT}license`, dw), DL_BY_DE, `${dw}: dct:license`);
    eq(text(d, `${DCATDE}licenseAttributionByText`, dw), 'Stadt Bielefeld, Smart City Datenplattform',
      `${dw}: dcatde:licenseAttributionByText`);
  }
  eq(downloads.sort(), ['csv', 'json', 'lp'].map((e) => `${base}.${e}`), `${what}: the download URLs`);
  return { said };
}

// ------------------------------------------------------------------ the tests

let srv;

async function testLoaderRefusesRemoteContexts() {
  // the hook is in effect: a remote context goes to it, and it fails the expansion
  const before = remoteLoads.length;
  let err;
  try {
    await jsonld.expand({ '@context': 'https://example.invalid/context.jsonld', title: 'x' },
      { documentLoader, safe: true });
  } catch (e) {
    err = e;
  }
  ok(err, 'a remote @context expanded without the documentLoader being asked');
  eq(remoteLoads.slice(before), ['https://example.invalid/context.jsonld'], 'what the documentLoader was asked');
  remoteLoads.length = before;
  // safe mode: a key the context does not define is an error, not a silent drop
  err = undefined;
  try {
    await jsonld.expand({ '@context': { dct: DCT }, 'dct:title': 'x', title: 'y' }, { documentLoader, safe: true });
  } catch (e) {
    err = e;
  }
  ok(err, 'safe mode let an undefined term through');
}

async function testBikeMetadata() {
  const doc = await getJsonLd(srv, '/export/bike-hourly/metadata');
  const ex = await expand(doc, 'bike-hourly');
  eq(ex.length, 1, 'bike-hourly: one top-level node');
  const ds = ex[0];
  const { said } = await checkDataset(srv, ds, 'bike-hourly', 'bike-hourly');
  eq(one(ds, `${DCAT}spatialResolutionInMeters`, 'bike-hourly'), { '@type': `${XSD}decimal`, '@value': '100' },
    'bike-hourly: dcat:spatialResolutionInMeters');
  for (const [lang, t] of Object.entries(said)) {
    ok(/(^|\D)3(\D|$)/.test(t) && /(^|\D)5(\D|$)/.test(t) && t.includes('MIN_CONTRIBUTORS_3'),
      `bike-hourly provenance (${lang}) does not state k = 3 and k_night = 5: ${t}`);
  }
  ok(/Rohdaten werden nie gespeichert/.test(said.de) && /Raw data is never stored/.test(said.en),
    `bike-hourly provenance does not say it is aggregate-only: ${JSON.stringify(said)}`);
  eq(ref(ds, `${DCAT}theme`, 'bike-hourly'), `${EU}data-theme/TRAN`, 'bike-hourly: dcat:theme');
}

async function testAirMetadata() {
  const doc = await getJsonLd(srv, '/export/air-hourly/metadata');
  const ex = await expand(doc, 'air-hourly');
  eq(ex.length, 1, 'air-hourly: one top-level node');
  const ds = ex[0];
  await checkDataset(srv, ds, 'air-hourly', 'air-hourly');
  eq(ds[`${DCAT}spatialResolutionInMeters`], undefined, 'air-hourly (no grid): dcat:spatialResolutionInMeters');
  eq(ref(ds, `${DCAT}theme`, 'air-hourly'), `${EU}data-theme/ENVI`, 'air-hourly: dcat:theme');
}

async function testCatalog() {
  const doc = await getJsonLd(srv, '/export/catalog');
  const ex = await expand(doc, 'catalog');
  eq(ex.length, 1, 'catalog: one top-level node');
  const cat = ex[0];
  const root = `http://127.0.0.1:${srv.port}/export`;
  eq(cat['@id'], `${root}/catalog`, 'catalog @id');
  hasType(cat, `${DCAT}Catalog`, 'catalog');
  text(cat, `${DCT}title`, 'catalog');
  eq(text(one(cat, `${DCT}publisher`, 'catalog'), `${FOAF}name`, 'catalog publisher'), 'Stadt Bielefeld',
    "catalog: publisher's foaf:name");
  const by = {};
  for (const d of vals(cat, `${DCAT}dataset`, 'catalog')) by[d['@id']] = d;
  eq(Object.keys(by).sort(), [`${root}/air-hourly`, `${root}/bike-hourly`, `${root}/catalog#trip`],
    'catalog: the datasets (both published, and the unpublished governed measurement)');
  for (const name of ['bike-hourly', 'air-hourly']) {
    await checkDataset(srv, by[`${root}/${name}`], name, `catalog ${name}`);
  }
  const trip = by[`${root}/catalog#trip`];
  hasType(trip, `${DCAT}Dataset`, 'catalog trip');
  text(trip, `${DCT}title`, 'catalog trip');
  eq(ref(trip, `${DCT}accessRights`, 'catalog trip'), `${EU}access-right/NON_PUBLIC`, 'catalog trip: dct:accessRights');
  const rights = one(trip, `${DCT}rights`, 'catalog trip');
  hasType(rights, `${DCT}RightsStatement`, 'catalog trip dct:rights');
  labels(rights, 'catalog trip dct:rights');
  eq(trip[`${DCAT}distribution`], undefined, 'catalog trip: an unpublished measurement has distributions');
}

// ------------------------------------------------------------------ runner

const tests = [
  ['jsonld: the documentLoader refuses remote contexts, safe mode refuses dropped terms',
    testLoaderRefusesRemoteContexts],
  ['bike-hourly metadata, expanded: DCAT-AP.de properties, resolutions, provenance with k', testBikeMetadata],
  ['air-hourly metadata, expanded: DCAT-AP.de properties', testAirMetadata],
  ['catalog, expanded: datasets PUBLIC, the unpublished trip NON_PUBLIC with dct:rights', testCatalog],
];

let setupError;
try {
  const { dir, require } = installPackages(JSONLD);
  jsonld = require('jsonld');
  console.log(`jsonld@${JSONLD.jsonld} from ${dir}`);
} catch (e) {
  setupError = `installing jsonld: ${e.message}`;
}
if (!setupError) {
  try {
    const d = path.join(TMP, 'city');
    fs.mkdirSync(d, { recursive: true });
    srv = await startServer(config(d), d);
    const w = await request(srv.port, 'POST', '/write?db=city', lines());
    eq(w.status, 204, `write: ${w.body}`);
    // the buckets of DAY0 close in the background: wait until both datasets have a dct:temporal
    const deadline = Date.now() + 30000;
    for (;;) {
      const docs = await Promise.all(['bike-hourly', 'air-hourly']
        .map((n) => request(srv.port, 'GET', `/export/${n}/metadata`)));
      if (docs.every((r) => r.status === 200 && 'dct:temporal' in JSON.parse(r.body))) break;
      if (Date.now() > deadline) throw new Error(`no dct:temporal after 30 s: ${docs.map((r) => r.body).join('\n')}`);
      await sleep(100);
    }
  } catch (e) {
    setupError = `starting teutod with the city config: ${e.stack || e}`;
  }
}
if (setupError) console.log(`FAIL ${setupError}`);
let { passed, failed } = await runTests(tests, setupError && 'see above');
if (srv) {
  try {
    await srv.stop();
  } catch (e) {
    failed++;
    console.log(`FAIL stopping teutod: ${e.message}`);
  }
}
if (failed === 0) fs.rmSync(TMP, { recursive: true, force: true });
else {
  if (srv) fs.writeFileSync(path.join(TMP, 'teutod.log'), srv.log);
  console.log(`data and logs kept in ${TMP}`);
}
console.log(`wall time ${((Date.now() - T0) / 1000).toFixed(1)} s`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
