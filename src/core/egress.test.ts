// planEgress and the change-set scrub, on the secret engine: what the policy's inject keys
// become, the length floor, and encoded values caught in files the pod wrote.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { policySchema } from '../policy/schema.js';
import type { Rules } from '../policy/types.js';
import { planEgress, scrubChangeSet } from './egress.js';

function rules(secrets: Rules['secrets']): Rules {
  return {
    resources: { cpus: 1, memoryBytes: 1 << 29, pids: 64, timeoutMs: 60_000, diskBytes: 1 << 20 },
    workspace: 'overlay',
    mounts: [],
    network: { allow: ['x.test'], deny: [], hosts: {} },
    secrets,
    env: {},
    tools: {},
    source: 'test',
  };
}

test('policy inject keys: header with format, query; nonsense refused with the fix', () => {
  const base = { name: 'K', from: 'env:K', hosts: ['x.test'] };
  const ok = policySchema.parse({ secrets: [{ ...base, inject: { header: 'Authorization', format: 'Bearer {}' } }] });
  assert.deepEqual(ok.secrets[0].inject, { header: 'Authorization', format: 'Bearer {}' });
  assert.ok(policySchema.parse({ secrets: [base] }).secrets[0].inject === undefined, 'old policies stay valid');
  const bad: Array<[unknown, RegExp]> = [
    [{ header: 'Bad Header' }, /header name/],
    [{ header: 'Host' }, /clawpod sets itself/],
    [{ header: 'X-Key', format: 'Bearer' }, /must contain \{\}/],
    [{ format: 'Bearer {}' }, /must name a header or a query parameter/],
    [{ query: 'k', format: '{}' }, /format needs a header/],
    [{ header: 'X-Key', body: true }, /body|Unrecognized/i],
  ];
  for (const [inject, want] of bad) {
    const r = policySchema.safeParse({ secrets: [{ ...base, inject }] });
    assert.equal(r.success, false, JSON.stringify(inject));
    assert.match(r.error!.issues.map((i) => i.message).join('; '), want, JSON.stringify(inject));
  }
});

test('planEgress: inject passes to the proxy; a value under 8 bytes fails the run naming the secret', () => {
  const inject = { header: 'X-Key', format: 'Key {}' };
  const plan = planEgress(rules([{ name: 'K', from: { kind: 'env', ref: 'V' }, hosts: ['x.test'], inject }]), { V: 'long-enough-value' }, () => '');
  assert.deepEqual(plan.secrets[0].inject, inject);
  // The boundary characters of a base64 spelling also carry bits of what surrounds the value: they stay.
  assert.match(plan.redact(`got ${Buffer.from('long-enough-value').toString('base64')}`), /^got \[secret:K\].{0,3}$/);
  assert.throws(
    () => planEgress(rules([{ name: 'K', from: { kind: 'env', ref: 'V' }, hosts: ['x.test'] }]), { V: 'short' }, () => ''),
    /^UserError: secret K: the value is 5 bytes; clawpod needs at least 8/,
  );
});

test('scrubChangeSet catches an encoded value in a file and leaves other files alone', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-egress-'));
  try {
    const value = 'sk-live-0123456789';
    fs.mkdirSync(path.join(dir, 'sub'));
    fs.writeFileSync(path.join(dir, 'sub', 'hex.txt'), `token=${Buffer.from(value).toString('hex')}\n`);
    const bin = Buffer.from([0, 1, 2, 255, 254]);
    fs.writeFileSync(path.join(dir, 'bin'), bin);
    const secrets = [{ name: 'K', value, placeholder: 'p', hosts: [] }];
    assert.deepEqual(scrubChangeSet(dir, secrets), ['sub/hex.txt']);
    assert.equal(fs.readFileSync(path.join(dir, 'sub', 'hex.txt'), 'utf8'), 'token=[secret:K]\n');
    assert.deepEqual(fs.readFileSync(path.join(dir, 'bin')), bin);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('scrubChangeSet streams: a value across a 1 MiB chunk boundary in a large file, and a deep tree', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-egress-'));
  try {
    const value = 'sk-live-0123456789';
    const secrets = [{ name: 'K', value, placeholder: 'p', hosts: [] }];
    // The value straddles the first chunk boundary; the file is larger than one chunk.
    const before = Buffer.alloc((1 << 20) - 7, 'a');
    const after = Buffer.alloc(3 << 20, 'b');
    fs.writeFileSync(path.join(dir, 'big'), Buffer.concat([before, Buffer.from(value), after]), { mode: 0o640 });
    let deep = dir;
    for (let i = 0; i < 300; i++) deep = path.join(deep, 'd');
    fs.mkdirSync(deep, { recursive: true });
    fs.writeFileSync(path.join(deep, 'f'), `x${value}y`);
    const got = scrubChangeSet(dir, secrets).sort();
    assert.deepEqual(got, ['big', `${'d/'.repeat(300)}f`]);
    const big = fs.readFileSync(path.join(dir, 'big'));
    assert.equal(big.indexOf(value), -1);
    assert.equal(big.length, before.length + '[secret:K]'.length + after.length);
    assert.equal(big.subarray(before.length, before.length + 10).toString(), '[secret:K]');
    assert.equal(fs.statSync(path.join(dir, 'big')).mode & 0o777, 0o640);
    assert.equal(fs.readFileSync(path.join(deep, 'f'), 'utf8'), 'x[secret:K]y');
    assert.deepEqual(
      fs.readdirSync(dir).filter((n) => n.includes('clawpod-scrub')),
      [],
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
