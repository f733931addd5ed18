// What the node integration tests share (test_clients.mjs, test_query_clients.mjs,
// test_export_jsonld.mjs): real npm packages installed into a cache directory outside the tree,
// and a free loopback port. Node's standard library only.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
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
