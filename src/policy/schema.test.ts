import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { envNameError, policySchema } from './schema.js';

function issues(doc: unknown) {
  const r = policySchema.safeParse(doc);
  assert.equal(r.success, false, `expected ${JSON.stringify(doc)} to be rejected`);
  return r.error!.issues;
}

test('an empty policy gets every default', () => {
  assert.deepEqual(policySchema.parse({}), {
    version: 1,
    resources: { cpus: 1, memory: '512Mi', pids: 256, timeout: '10m', disk: '1Gi' },
    filesystem: { workspace: 'overlay', mounts: [] },
    network: { allow: [], deny: [], hosts: {}, extraCA: [] },
    secrets: [],
    env: {},
    tools: {},
  });
});

test('partial sections keep their other defaults and mount mode defaults to ro', () => {
  const p = policySchema.parse({
    resources: { cpus: 0.5 },
    filesystem: { mounts: [{ host: '~/datasets', path: '/data' }] },
    network: { allow: ['api.github.com'] },
  });
  assert.deepEqual(p.resources, { cpus: 0.5, memory: '512Mi', pids: 256, timeout: '10m', disk: '1Gi' });
  assert.deepEqual(p.filesystem, { workspace: 'overlay', mounts: [{ host: '~/datasets', path: '/data', mode: 'ro' }] });
  assert.deepEqual(p.network, { allow: ['api.github.com'], deny: [], hosts: {}, extraCA: [] });
});

test('unknown keys are rejected at every level', () => {
  const cases: Array<[unknown, string, Array<string | number>]> = [
    [{ resourcez: {} }, 'resourcez', []],
    [{ resources: { cpu: 1 } }, 'cpu', ['resources']],
    [{ filesystem: { workspaces: 'ro' } }, 'workspaces', ['filesystem']],
    [{ filesystem: { mounts: [{ host: '/a', path: '/b', readonly: true }] } }, 'readonly', ['filesystem', 'mounts', 0]],
    [{ network: { allowed: [] } }, 'allowed', ['network']],
    [{ secrets: [{ name: 'T', from: 'env:T', hosts: ['a.test'], value: 'x' }] }, 'value', ['secrets', 0]],
    [{ tools: { block: [] } }, 'block', ['tools']],
  ];
  for (const [doc, key, path] of cases) {
    const [first] = issues(doc);
    assert.equal(first.code, 'unrecognized_keys', JSON.stringify(doc));
    assert.deepEqual((first as { keys: string[] }).keys, [key]);
    assert.deepEqual(first.path, path);
  }
});

test('bad enums, ranges and units are rejected', () => {
  const bad: unknown[] = [
    { version: 2 },
    { filesystem: { workspace: 'copy' } },
    { filesystem: { mounts: [{ host: '/a', path: '/b', mode: 'rwx' }] } },
    { resources: { cpus: 0 } },
    { resources: { cpus: -1 } },
    { resources: { cpus: 2000 } },
    { resources: { cpus: '1' } },
    { resources: { pids: 0 } },
    { resources: { pids: 1.5 } },
    { resources: { pids: 65537 } },
    { resources: { memory: '12Q' } },
    { resources: { memory: '3Mi' } },
    { resources: { disk: '512Ki' } },
    { resources: { timeout: '500ms' } },
    { resources: { timeout: '8d' } },
    { resources: { timeout: 'soon' } },
    { network: { allow: ['*.com'] } },
    { network: { deny: ['http://x.test'] } },
    { network: { hosts: { 'svc.test': 'not-an-ip' } } },
    { network: { hosts: { '*.svc.test': '127.0.0.1' } } },
    { secrets: [{ name: 'T', from: 'vault:T', hosts: ['a.test'] }] },
    { secrets: [{ name: 'T', from: 'env:', hosts: ['a.test'] }] },
    { secrets: [{ name: 'T', from: 'env:T', hosts: [] }] },
    { secrets: [{ name: 'T', from: 'env:T' }] },
    { secrets: [{ name: '1T', from: 'env:T', hosts: ['a.test'] }] },
    {
      secrets: [
        { name: 'T', from: 'env:T', hosts: ['a.test'] },
        { name: 'T', from: 'env:U', hosts: ['b.test'] },
      ],
    },
    { secrets: [{ name: 'T', from: 'env:T', hosts: ['a.test'] }], env: { T: 'x' } },
    { env: { 'BAD-NAME': 'x' } },
    { env: { CLAWPOD_HOME: '/x' } },
    { env: { LD_PRELOAD: '/evil.so' } },
    { env: { LD_LIBRARY_PATH: '/evil' } },
    { env: { A: ['x'] } },
    { tools: { allow: 'bash' } },
    [],
    'strict',
  ];
  for (const doc of bad) issues(doc);
});

test('boundary values are accepted', () => {
  const p = policySchema.parse({
    resources: { cpus: 1024, pids: 65536, memory: '4Mi', disk: '1Mi', timeout: '7d' },
  });
  assert.equal(p.resources.pids, 65536);
  policySchema.parse({ resources: { cpus: 0.01, pids: 1, timeout: 1 } });
  policySchema.parse({ network: { hosts: { 'svc.test': '127.0.0.1', 'v6.test': '::1' } } });
  policySchema.parse({ secrets: [{ name: 'K', from: 'file:~/.tokens/k', hosts: ['*.example.com', 'x.test:8443'] }] });
});

test('env values that YAML reads as numbers or booleans become strings', () => {
  assert.deepEqual(policySchema.parse({ env: { DEBUG: 1, FLAG: true, NAME: 'x' } }).env, { DEBUG: '1', FLAG: 'true', NAME: 'x' });
});

test('envNameError explains reserved and malformed names', () => {
  assert.equal(envNameError('GITHUB_TOKEN'), null);
  assert.match(envNameError('CLAWPOD_X') ?? '', /reserved/);
  assert.match(envNameError('LD_PRELOAD') ?? '', /cannot be set/);
  assert.match(envNameError('A=B') ?? '', /not an environment variable name/);
});

test('every schema field carries a description', () => {
  const json = z.toJSONSchema(policySchema, { io: 'input', unrepresentable: 'any' }) as JsonNode;
  const missing: string[] = [];
  const walk = (node: JsonNode, where: string): void => {
    for (const [key, child] of Object.entries(node.properties ?? {})) {
      if (!child.description) missing.push(`${where}${key}`);
      walk(child, `${where}${key}.`);
    }
    if (node.items) walk(node.items, where.replace(/\.$/, '[].'));
  };
  walk(json, '');
  assert.deepEqual(missing, []);
  assert.ok(json.properties?.resources?.properties?.memory?.description?.includes('512Mi'));
});

interface JsonNode {
  description?: string;
  properties?: Record<string, JsonNode>;
  items?: JsonNode;
}
