// What the node integration tests share (test_clients.mjs, test_query_clients.mjs,
// test_export_jsonld.mjs): real npm packages installed into a cache directory outside the tree,
// a free loopback port, the real teutod started on such ports, and the test runner. Node's
// standard library only.
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

// Exact versions, checked with `npm view <name> version` when the tests were written.
export const PACKAGES = { '@influxdata/influxdb-client': '1.35.0', influx: '5.12.0' };

/** Installs the packages ({name: exact version}) once into $TMPDIR/teuto-npm-<names-versions>
 * (staged beside it and renamed into place, so a concurrent run never sees half a tree).
 * Returns { dir, require } with require() resolving from that tree. Throws, with npm's message,
 * when npm cannot install them (no registry): callers report that as a failure, never a skip. */
export function installPackages(packages) {
  const entries = Object.entries(packages);
  if (!entries.length) throw new Error('installPackages: no packages given');
  const key = entries.map(([n, v]) => `${n.replace(/[@/]/g, '_')}-${v}`).join('+');
  const dir = path.join(os.tmpdir(), `teuto-npm-${key}`);
  const installed = (d) => entries.every(([n, v]) => {
    try {
      return JSON.parse(fs.readFileSync(path.join(d, 'node_modules', n, 'package.json'), 'utf8')).version === v;
    } catch {
      return false;
    }
  });
  if (!installed(dir)) {
    const stage = `${dir}.stage-${process.pid}`;
    fs.rmSync(stage, { recursive: true, force: true });
    fs.mkdirSync(stage, { recursive: true });
    const args = ['install', '--no-audit', '--no-fund', '--no-save', '--prefix', stage,
      '--fetch-timeout=30000', '--fetch-retries=1', ...entries.map(([n, v]) => `${n}@${v}`)];
    const p = spawnSync('npm', args, { encoding: 'utf8', timeout: 240000 });
    if (p.error || p.status !== 0 || !installed(stage)) {
      fs.rmSync(stage, { recursive: true, force: true });
      throw new Error(`npm could not install ${entries.map(([n, v]) => `${n}@${v}`).join(', ')} ` +
        `(is the npm registry reachable?): ` +
        `npm ${args.join(' ')} → ${p.error ? p.error.message : 'exit ' + p.status}\n` +
        `${(p.stderr || '').trim()}`);
    }
    try {
      fs.renameSync(stage, dir);
    } catch (e) {
      fs.rmSync(stage, { recursive: true, force: true }); // another run got there first
      if (!installed(dir)) throw e;
    }
  }
  return { dir, require: createRequire(path.join(dir, 'index.js')) };
}

/** The InfluxDB client packages (PACKAGES), loaded: { v2, v1, dir }. */
export function installClients() {
  const { dir, require } = installPackages(PACKAGES);
  return { v2: require('@influxdata/influxdb-client'), v1: require('influx'), dir };
}

/** A loopback port that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Runs tests, a list of [name, async fn, needsSetup (default true)], in order, printing
 * 'ok NAME (ms)' or 'FAIL NAME: …'. A test that needs the setup is counted failed, not run,
 * when setupError (a message) is set. afterEach(failedNow) runs after every test that ran.
 * Returns { passed, failed }. */
export async function runTests(tests, setupError, afterEach) {
  let passed = 0, failed = 0;
  for (const [name, fn, needsSetup = true] of tests) {
    const t = Date.now();
    if (needsSetup && setupError) {
      failed++;
      console.log(`FAIL ${name}: not run, ${setupError}`);
      continue;
    }
    let ok = false;
    try {
      await fn();
      ok = true;
      passed++;
      console.log(`ok   ${name} (${Date.now() - t} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}: ${e.stack || e}`);
    }
    if (afterEach) afterEach(!ok);
  }
  return { passed, failed };
}

const running = new Set();
process.on('exit', () => { for (const c of running) c.kill('SIGKILL'); });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function pingStatus(port) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'GET', path: '/ping' }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The real teutod (binary teutod) with args plus --http, --lp (only with lp: true) and
 * --query on free loopback ports, ready once /ping answers 204; started again on other ports
 * (up to 5 times) when a port it was given was taken in the meantime. Returns { port, lpPort,
 * proc, log, exited, stop() }: stop() sends SIGTERM, waits (SIGKILL after 30 s) and throws
 * unless the exit status is 0; a second stop() does nothing. Killed when the test exits. */
export async function startTeutod(teutod, args, { cwd, lp = false } = {}) {
  for (let attempt = 0; ; attempt++) {
    const s = { port: await freePort(), lpPort: lp ? await freePort() : null, log: '' };
    const all = [...args, '--http', `127.0.0.1:${s.port}`,
      '--lp', lp ? `127.0.0.1:${s.lpPort}` : 'off', '--query', `127.0.0.1:${await freePort()}`];
    s.proc = spawn(teutod, all, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(s.proc);
    s.proc.stdout.on('data', (b) => { s.log += b; });
    s.proc.stderr.on('data', (b) => { s.log += b; });
    s.exited = new Promise((resolve) => s.proc.on('exit', (code, sig) => {
      running.delete(s.proc);
      resolve(code === null ? `signal ${sig}` : code);
    }));
    let spawnError = null;
    s.proc.on('error', (e) => { spawnError = `cannot start ${teutod}: ${e.message}`; });
    const deadline = Date.now() + 20000;
    let up = false;
    while (!up && s.proc.exitCode === null && s.proc.signalCode === null) {
      if (spawnError) throw new Error(spawnError);
      try {
        up = (await pingStatus(s.port)) === 204;
      } catch { /* not listening yet */ }
      if (!up && Date.now() > deadline) {
        s.proc.kill('SIGKILL');
        throw new Error(`teutod did not answer /ping: ${s.log}`);
      }
      if (!up) await sleep(30);
    }
    if (up) {
      let stopped = false;
      s.stop = async () => {
        if (stopped) return;
        stopped = true;
        s.proc.kill('SIGTERM');
        const rc = await Promise.race([s.exited, sleep(30000).then(() => 'timeout')]);
        if (rc === 'timeout') {
          s.proc.kill('SIGKILL');
          throw new Error(`teutod did not stop within 30 s (log: ${s.log})`);
        }
        if (rc !== 0) throw new Error(`teutod exit status ${rc} (log: ${s.log})`);
      };
      return s;
    }
    await s.exited;
    if (!s.log.includes('Address already in use') || attempt === 4) {
      throw new Error(`teutod exited: ${s.log}`);
    }
  }
}
