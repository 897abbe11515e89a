import assert from 'node:assert/strict';
import { test } from 'node:test';
import { explainPolicy } from './explain.js';
import type { Rules } from './types.js';

const Mi = 1024 ** 2;
const Gi = 1024 ** 3;

function strictRules(): Rules {
  return {
    resources: { cpus: 1, memoryBytes: 512 * Mi, pids: 256, timeoutMs: 600_000, diskBytes: Gi },
    workspace: 'overlay',
    mounts: [],
    network: { allow: [], deny: [], hosts: {} },
    secrets: [],
    env: {},
    tools: {},
    source: 'builtin:strict',
  };
}

function line(lines: string[], prefix: string): string {
  const found = lines.filter((l) => l.startsWith(prefix));
  assert.equal(found.length, 1, `exactly one "${prefix}" line in:\n${lines.join('\n')}`);
  return found[0];
}

test('the strict policy explains its tight defaults', () => {
  const lines = explainPolicy(strictRules());
  assert.equal(line(lines, 'Policy:'), 'Policy: builtin:strict');
  assert.equal(line(lines, 'Reads:'), 'Reads: a read-only system (/usr), its own /tmp and home (1 GiB total writable)');
  assert.equal(line(lines, 'Workspace:'), 'Workspace: copy-on-write overlay of the workspace at /workspace; changes are kept as a diff you apply or discard');
  assert.equal(line(lines, 'Network:'), 'Network: none (no network at all)');
  assert.equal(line(lines, 'Secrets:'), 'Secrets: none');
  assert.equal(line(lines, 'Limits:'), 'Limits: 1 CPU, 512 MiB memory, 256 processes, 10m wall clock, 1 GiB disk');
  assert.match(line(lines, 'Credentials:'), /^Credentials: none.*~\/\.ssh/);
  assert.match(line(lines, 'Mounts:'), /none/);
  for (const l of lines) assert.ok(!l.includes('\n'), l);
});

test('a permissive policy names its hosts, ports, secrets, mounts and limits', () => {
  const rules: Rules = {
    ...strictRules(),
    resources: { cpus: 2, memoryBytes: 2 * Gi, pids: 64, timeoutMs: 5_400_000, diskBytes: 1.5 * Gi },
    workspace: 'rw',
    mounts: [
      { host: '/home/u/datasets', path: '/data', mode: 'ro' },
      { host: '/home/u/out', path: '/out', mode: 'rw' },
    ],
    network: { allow: ['api.github.com', '*.pypi.org', 'example.com:8443'], deny: ['evil.pypi.org'], hosts: { 'svc.test': '127.0.0.1' } },
    secrets: [{ name: 'GITHUB_TOKEN', from: { kind: 'env', ref: 'GITHUB_TOKEN' }, hosts: ['api.github.com'] }],
    env: { DEBUG: '1' },
    tools: { deny: ['bash'], approve: ['write_file'] },
    source: '/x/p.yaml',
  };
  const lines = explainPolicy(rules);
  assert.equal(
    line(lines, 'Network:'),
    'Network: only through the clawpod egress proxy to: api.github.com (ports 80, 443), any subdomain of pypi.org (ports 80, 443), ' +
      'example.com (port 8443); denied: evil.pypi.org (ports 80, 443)',
  );
  assert.match(line(lines, 'Name overrides:'), /svc\.test -> 127\.0\.0\.1/);
  assert.equal(
    line(lines, 'Secrets:'),
    'Secrets: GITHUB_TOKEN (from env GITHUB_TOKEN) is injected by the host proxy only on requests to api.github.com, into credential header values (Authorization, X-Api-Key, ...) where the pod puts its placeholder; the pod sees a placeholder',
  );
  assert.match(line(lines, 'Workspace:'), /read-write.*no diff/);
  const mounts = lines.filter((l) => l.startsWith('Mount: '));
  assert.deepEqual(mounts, [
    'Mount: /home/u/datasets at /data (ro, read-only)',
    'Mount: /home/u/out at /out (rw, read-write: the pod can change these host files, outside the disk cap)',
  ]);
  assert.equal(line(lines, 'Limits:'), 'Limits: 2 CPUs, 2 GiB memory, 64 processes, 1h30m wall clock, 1.5 GiB disk');
  assert.match(line(lines, 'Reads:'), /1\.5 GiB total writable/);
  assert.match(line(lines, 'Environment:'), /DEBUG/);
  assert.equal(line(lines, 'Tools:'), 'Tools: all agent tools allowed; denied: bash; need your approval: write_file');
});

test('a secret scoped to a host the network does not allow is flagged', () => {
  const rules: Rules = {
    ...strictRules(),
    network: { allow: ['api.github.com'], deny: [], hosts: {} },
    secrets: [{ name: 'NPM_TOKEN', from: { kind: 'file', ref: '/home/u/.npm-token' }, hosts: ['registry.npmjs.org', 'api.github.com'] }],
  };
  const s = line(explainPolicy(rules), 'Secrets:');
  assert.match(s, /from file \/home\/u\/\.npm-token/);
  assert.match(s, /note: registry\.npmjs\.org not allowed by network\.allow/);
  assert.ok(!/note:.*api\.github\.com/.test(s), s);
});

test('other workspace modes and half a CPU read correctly', () => {
  const ro = explainPolicy({ ...strictRules(), workspace: 'ro', resources: { ...strictRules().resources, cpus: 0.5 } });
  assert.match(line(ro, 'Workspace:'), /read-only/);
  assert.match(line(ro, 'Limits:'), /^Limits: 0\.5 CPU,/);
  assert.match(line(explainPolicy({ ...strictRules(), workspace: 'none' }), 'Workspace:'), /not mounted/);
  assert.match(line(explainPolicy({ ...strictRules(), tools: { allow: [] } }), 'Tools:'), /allowed: none/);
});

test('a secret with a named header or query says where it goes', () => {
  const rules: Rules = {
    ...strictRules(),
    network: { allow: ['api.github.com'], deny: [], hosts: {} },
    secrets: [
      { name: 'GH', from: { kind: 'env', ref: 'GH' }, hosts: ['api.github.com'], inject: { header: 'Authorization', format: 'Bearer {}', query: 'key' } },
    ],
  };
  const s = line(explainPolicy(rules), 'Secrets:');
  assert.match(s, /as the Authorization header \(Bearer \{\}\), set by the proxy itself and the key query parameter/);
});

test("settings: none by default (commits say they are the pod's); inherited or listed keys are named", () => {
  assert.match(line(explainPolicy(strictRules()), 'Settings:'), /none of yours .*clawpod pod <pod@clawpod\.invalid>/);
  const rules = { ...strictRules(), settings: { git: 'inherit' as const, npm: { nodedir: '/usr', fund: 'false' } } };
  const l = line(explainPolicy(rules), 'Settings:');
  assert.match(l, /git: your global identity/);
  assert.match(l, /npm: nodedir, fund/);
  assert.ok(!l.includes('/usr'), 'values are not printed');
});
