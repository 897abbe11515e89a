import assert from 'node:assert/strict';
import { test } from 'node:test';
import { explainPolicyJson } from './explain.js';
import { normalizePolicy } from './normalize.js';
import { policySchema } from './schema.js';
import { policyWarnings } from './warnings.js';

const deps = { home: '/home/u', clawpodHome: '/home/u/.clawpod', realpath: (p: string) => p, exists: () => false, passwd: '' };
const rules = (doc: unknown) => normalizePolicy(policySchema.parse(doc), 'p.yaml', deps);
const secret = (hosts: string[]) => ({ name: 'T', from: 'env:T', hosts });

test('a secret host the proxy never lets through is a warning; a reachable one is not', () => {
  assert.deepEqual(policyWarnings(rules({ network: { allow: ['api.github.com'] }, secrets: [secret(['api.github.com'])] })), []);
  assert.deepEqual(policyWarnings(rules({ network: { allow: ['*.github.com'] }, secrets: [secret(['api.github.com'])] })), []);
  const w = policyWarnings(rules({ network: { allow: ['api.github.com'] }, secrets: [secret(['api.github.com', 'uploads.github.com'])] }));
  assert.equal(w.length, 1);
  assert.match(
    w[0],
    /^secrets\[0\] \(T\): host uploads\.github\.com is never reached: network\.allow does not cover it .*e\.g\. network: \{ allow: \[uploads\.github\.com\] \}$/,
  );
  assert.match(policyWarnings(rules({ secrets: [secret(['a.com'])] }))[0], /network\.allow is empty, so the pod has no network/);
  assert.equal(policyWarnings(rules({ network: { allow: ['a.com'], deny: ['a.com'] }, secrets: [secret(['a.com'])] })).length, 1);
});

test('a name override for a host network.allow does not allow is a warning', () => {
  assert.deepEqual(policyWarnings(rules({ network: { allow: ['svc.test:8080'], hosts: { 'svc.test': '127.0.0.1' } } })), []);
  assert.deepEqual(policyWarnings(rules({ network: { allow: ['*.corp.test'], hosts: { 'svc.corp.test': '127.0.0.1' } } })), []);
  assert.match(
    policyWarnings(rules({ network: { allow: ['a.com'], hosts: { 'svc.test': '127.0.0.1' } } }))[0],
    /^network\.hosts\["svc\.test"\]: svc\.test is not allowed/,
  );
});

test('explain --json: stable fields, secrets without values, env and settings by name', () => {
  const j = explainPolicyJson(
    rules({
      filesystem: { workspaceAt: 'host', ignore: ['coverage/'] },
      network: { allow: ['api.github.com'] },
      secrets: [{ ...secret(['api.github.com', 'x.com']), from: 'file:~/tok' }],
      env: { A: 'value' },
      settings: { git: { 'user.name': 'Ada' }, npm: 'inherit' },
      tools: { allow: ['bash'] },
    }),
  );
  assert.deepEqual(j.workspace, { mode: 'overlay', at: 'host', ignore: ['coverage/'] });
  assert.deepEqual(j.secrets, [{ name: 'T', from: 'file:/home/u/tok', hosts: ['api.github.com', 'x.com'], inject: null, unreachableHosts: ['x.com'] }]);
  assert.deepEqual(j.env, ['A']);
  assert.deepEqual(j.settings, { git: ['user.name'], npm: 'inherit' });
  assert.deepEqual(j.tools, { allow: ['bash'], deny: [], approve: [] });
  assert.ok(!JSON.stringify(j).includes('value') && !JSON.stringify(j).includes('Ada'));
  assert.deepEqual(explainPolicyJson(rules({})).settings, { git: null, npm: null });
});
