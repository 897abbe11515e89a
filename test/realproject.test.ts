// The headline check of issue 8: a real TypeScript project (test/fixtures/ts-project: tsc build,
// jest with ts-jest in worker processes, the built CLI; about 320 packages) installs from the registry this machine is
// configured for and passes its test suite inside a pod under the default caps, with only that
// registry allowed; its result is then reviewable with `runs diff --stat` (node_modules ignored).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import dns from 'node:dns/promises';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { forbiddenAddress } from '../src/proxy/addresses.js';
import { ROOT, auditEvents, cli, eventually, podUidOf, policyFile, residue, tmpDir } from './helpers.js';

const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'ts-project');
// What a checkout of the fixture may hold that a fresh clone would not.
const NOT_SOURCE = new Set(['node_modules', 'dist', 'coverage']);

let home: string;
before(() => {
  home = tmpDir('home');
});

/** The registry npm on this host uses (read now, not assumed), as a URL. */
function hostRegistry(): URL {
  const r = spawnSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `npm config get registry failed: ${r.stderr}`);
  return new URL(r.stdout.trim());
}

/** The network.allow pattern for a registry: its host, with the port when it is not the scheme's. */
function allowPattern(u: URL): string {
  return u.port ? `${u.hostname}:${u.port}` : u.hostname;
}

/**
 * network.hosts for the registry: empty when it resolves to the public internet; when this host
 * reaches it through a mirror or gateway at a non-public address (the proxy refuses those unless
 * the policy names them), the name mapped to the address it has here, as the refusal advises.
 */
async function registryHosts(u: URL): Promise<Record<string, string>> {
  const addrs = await dns.lookup(u.hostname, { all: true });
  const inner = addrs.find((a) => forbiddenAddress(a.address) !== null);
  return inner ? { [u.hostname]: inner.address } : {};
}

/** A fresh copy of the fixture, as a clone of it would be (no installed or built files). */
function projectWorkspace(): string {
  const ws = tmpDir('tsproj');
  fs.cpSync(FIXTURE, ws, { recursive: true, filter: (src) => !NOT_SOURCE.has(path.basename(src)) });
  return ws;
}

/** One line per event of the given types, for assertion messages. */
function eventLines(events: { type: string; data: Record<string, unknown> }[], types: string[], max = 15): string {
  const lines = events.filter((e) => types.includes(e.type)).map((e) => `${e.type} ${JSON.stringify(e.data)}`);
  return lines.slice(0, max).join('\n') + (lines.length > max ? `\n... and ${lines.length - max} more` : '');
}

test('the fixture is a project as it would be committed: lock file, node_modules ignored', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'package.json'), 'utf8'));
  assert.ok(pkg.devDependencies.typescript && pkg.devDependencies.jest, 'fixture needs tsc and a test runner');
  const lock = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'package-lock.json'), 'utf8'));
  assert.ok(Object.keys(lock.packages).length > 20, 'package-lock.json should pin the whole tree');
  const ignored = fs.readFileSync(path.join(FIXTURE, '.gitignore'), 'utf8').split('\n');
  assert.ok(ignored.includes('node_modules/'), 'the fixture .gitignore must keep node_modules out of git and review');
  const tracked = spawnSync('git', ['ls-files', FIXTURE], { cwd: ROOT, encoding: 'utf8' }).stdout;
  assert.doesNotMatch(tracked, /node_modules\//, 'node_modules of the fixture is committed');
});

test('npm ci && npm test of a real TypeScript project passes in a pod under the defaults, only the registry allowed', { timeout: 360_000 }, async () => {
  const registry = hostRegistry();
  const ws = projectWorkspace();
  const hosts = await registryHosts(registry);
  // Only the registry is reachable; its address is passed in because HOME (and so ~/.npmrc) is
  // pod-private. Every resource cap is left at its default.
  const policy = policyFile(
    [
      'version: 1',
      'network:',
      `  allow: [${JSON.stringify(allowPattern(registry))}]`,
      `  hosts: ${JSON.stringify(hosts)}`,
      'env:',
      `  npm_config_registry: ${JSON.stringify(registry.href)}`,
      '',
    ].join('\n'),
  );
  const started = Date.now();
  const r = await cli(['exec', '--policy', policy, '--workspace', ws, '--', 'sh', '-c', 'npm ci && npm test'], { home, cwd: ws, timeoutMs: 300_000 });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  assert.ok(r.runId, `no run id (exit ${r.code}): ${r.stderr}`);
  const events = auditEvents(home, r.runId);
  const why =
    `exit ${r.code} after ${seconds}s\n${eventLines(events, ['limit.hit', 'net.deny', 'exec.exit'])}\n` +
    `--- stderr (tail) ---\n${r.stderr.slice(-3000)}\n--- stdout (tail) ---\n${r.stdout.slice(-2000)}`;
  assert.equal(r.code, 0, why);
  // jest reports on stderr.
  assert.match(r.stderr, /Test Suites: 4 passed, 4 total/, why);
  assert.match(r.stderr, /Tests: +13 passed, 13 total/, why);
  assert.match(r.stdout, /^4 the +#+$/m, `the built CLI did not run\n${why}`);
  // Nothing but the registry was needed, and no cap was reached on the way.
  assert.equal(eventLines(events, ['net.deny', 'limit.hit']), '', why);
  const reached = new Set(events.filter((e) => e.type === 'net.allow').map((e) => String(e.data.host)));
  assert.ok(reached.size > 0, `the install reached no host through the proxy\n${why}`);
  for (const h of reached) assert.ok(h === registry.hostname || h.startsWith(`${registry.hostname}:`), `reached ${h}, not the registry`);
  await eventually(() => residue(r.runId!, podUidOf(home, r.runId!)).length === 0, 10_000);
  assert.deepEqual(residue(r.runId, podUidOf(home, r.runId)), []);

  // Review: the tsc output is shown; the thousands of files under node_modules (ignored by the
  // project's .gitignore) are not. --stat shortens long names, so the set is read from --name-only.
  const stat = await cli(['runs', 'diff', '--stat', r.runId], { home });
  assert.equal(stat.code, 0, `runs diff --stat: exit ${stat.code}: ${stat.stderr}`);
  for (const f of ['dist/cli.cjs', 'dist/freq.cjs', 'dist/format.cjs', 'dist/tokenize.cjs']) {
    assert.ok(stat.stdout.includes(f), `runs diff --stat does not list ${f}:\n${stat.stdout.slice(0, 3000)}`);
  }
  assert.ok(stat.stdout.split('\n').length < 40, `runs diff --stat is not a summary (${stat.stdout.split('\n').length} lines)`);
  const names = await cli(['runs', 'diff', '--name-only', r.runId], { home });
  assert.equal(names.code, 0, `runs diff --name-only: exit ${names.code}: ${names.stderr}`);
  const others = names.stdout.split('\n').filter((n) => n !== '' && !n.startsWith('dist/'));
  if (others.length > 0) {
    // Why they were kept for review: the notes at the top of the full diff.
    const full = await cli(['runs', 'diff', r.runId], { home });
    const notes = full.stdout
      .split('\n')
      .filter((l) => l.startsWith('#'))
      .slice(0, 40)
      .join('\n');
    assert.fail(
      `${others.length} reviewed change(s) besides the tsc output in dist/:\n${others.slice(0, 30).join('\n')}\n` + `--- runs diff notes ---\n${notes}`,
    );
  }
});
