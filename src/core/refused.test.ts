import assert from 'node:assert/strict';
import { test } from 'node:test';
import { refusalTally, showHost } from './refused.js';

const deny = (host: unknown, count?: number) => ({ type: 'net.deny', data: count === undefined ? { host } : { host, count } });

test('counts refusals per host (coalesced ones at their count), most first', () => {
  const t = refusalTally();
  assert.equal(t.line(), null);
  for (const e of [deny('github.com'), deny('nodejs.org'), deny('nodejs.org', 2), { type: 'net.allow', data: { host: 'x' } }]) t.add(e);
  assert.equal(t.line(), 'clawpod: refused: nodejs.org (3), github.com (1); allow hosts with network.allow');
  assert.deepEqual(t.byHost(), { 'nodejs.org': 3, 'github.com': 1 });
});

test('caps the list and escapes what the pod chose', () => {
  const t = refusalTally();
  for (let i = 0; i < 8; i++) t.add(deny(`h${i}.test`));
  t.add(deny(''));
  t.add(deny('a\x1b[2J"b (9), c\u202e'));
  const line = t.line() ?? '';
  assert.match(line, /, and 5 more hosts; /);
  assert.equal(showHost('a\x1b[2J"b (9), c\u202e'), '"a\\u001b[2J\\"b (9), c\\u{202e}"');
  assert.equal(showHost('x'.repeat(200)).length, 81);
  assert.ok(Object.keys(t.byHost()).every((k) => !/[\x00-\x1f\u202e]/.test(k)));
});
