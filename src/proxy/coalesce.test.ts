import assert from 'node:assert/strict';
import { test } from 'node:test';
import { coalescer } from './coalesce.js';
import { Lru } from './lru.js';

type Out = { type: string; data: Record<string, unknown> };
const deny = (host: string, reason = 'not in network.allow') => ({ method: 'GET', host, port: 80, status: 403, bytesUp: 0, bytesDown: 0, reason });
const total = (out: Out[], host: string) => out.filter((e) => e.data.host === host).reduce((n, e) => n + (Number(e.data.count) || 1), 0);

test('coalescer: the first refusal goes out at once, repeats as one counted event per window', async () => {
  const out: Out[] = [];
  const c = coalescer((type, data) => out.push({ type, data }), 50);
  for (let i = 0; i < 1000; i++) c.emit('net.deny', deny('a.test'));
  c.emit('net.deny', deny('b.test'));
  assert.equal(out.length, 2, 'one event per kind so far');
  assert.equal(out[0].data.count, undefined);
  await new Promise((r) => setTimeout(r, 120));
  assert.deepEqual(
    out.slice(2).map((e) => [e.data.host, e.data.count]),
    [['a.test', 999]],
  );
  assert.equal(total(out, 'a.test'), 1000, 'the counts add up');
  // A quiet kind starts over: its next refusal goes out at once.
  await new Promise((r) => setTimeout(r, 120));
  c.emit('net.deny', deny('a.test'));
  assert.equal(out.at(-1)?.data.count, undefined);
  c.close();
});

test('coalescer: close() sends what is pending; kinds differ by host, reason and status', () => {
  const out: Out[] = [];
  const c = coalescer((type, data) => out.push({ type, data }), 60_000);
  for (let i = 0; i < 5; i++) c.emit('net.deny', deny('a.test'));
  for (let i = 0; i < 3; i++) c.emit('net.deny', deny('a.test', 'port 22 not in network.allow'));
  c.emit('net.allow', { ...deny('down.test', 'connect ECONNREFUSED'), status: 502 });
  c.emit('net.allow', { ...deny('down.test', 'connect ECONNREFUSED'), status: 502 });
  assert.equal(out.length, 3);
  c.close();
  assert.equal(total(out, 'a.test'), 8);
  assert.equal(total(out, 'down.test'), 2);
  c.emit('net.deny', deny('a.test'));
  assert.equal(out.at(-1)?.data.count, undefined, 'after close, events pass straight through');
});

test('coalescer: what was forwarded, or carried bytes, is never merged', () => {
  const out: Out[] = [];
  const c = coalescer((type, data) => out.push({ type, data }), 60_000);
  for (let i = 0; i < 3; i++) c.emit('net.allow', { method: 'GET', host: 'ok.test', port: 80, status: 200, bytesUp: 0, bytesDown: 10 });
  for (let i = 0; i < 3; i++) c.emit('net.allow', { method: 'GET', host: 'ok.test', port: 80, status: 502, bytesUp: 5, bytesDown: 0 });
  for (let i = 0; i < 3; i++) c.emit('secret.use', { name: 'T', host: 'ok.test' });
  assert.equal(out.length, 9);
  c.close();
  assert.equal(out.length, 9);
});

test('Lru: keeps the most recently used, forgets the oldest', () => {
  const l = new Lru<string, number>(2);
  l.set('a', 1);
  l.set('b', 2);
  assert.equal(l.get('a'), 1);
  l.set('c', 3);
  assert.equal(l.get('b'), undefined);
  assert.equal(l.get('a'), 1);
  assert.equal(l.get('c'), 3);
  assert.equal(l.size, 2);
  assert.throws(() => new Lru(0));
});
