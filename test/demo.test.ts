// The README's main job, end to end: the offline demo through real pods and the real proxy.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cli, tmpDir } from './helpers.js';

test('clawpod demo runs every step, blocks what it should, and leaves a verified diff', async () => {
  const home = tmpDir('home');
  const r = await cli(['demo'], { home, timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /test: ok/);
  assert.match(r.stdout, /blocked: no such path in the pod/);
  assert.match(r.stdout, /blocked: no network, no DNS/);
  assert.match(r.stdout, /key accepted/);
  assert.match(r.stdout, /paste\.demo\.test: HTTP 403, not in network\.allow/);
  assert.match(r.stdout, /Read-only file system/);
  assert.match(r.stdout, /\+\+\+ b\/fizz\.sh/);
  assert.match(r.stdout, /audit chain: r-[\w-]+: ok/);
  assert.doesNotMatch(r.stdout, /uid=0\(/);
});
