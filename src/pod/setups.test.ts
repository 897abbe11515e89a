// The set-up slots (pod/setups.ts): at most `limit` set-ups at once, handed on in order, each
// given back once; a slot held too long is given up, so a hung set-up never stops the others.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SetupSlots } from './setups.js';

const tick = () => new Promise((r) => setImmediate(r));

test('at most limit set-ups at once; the next in line gets a slot as one is given back', async () => {
  const slots = new SetupSlots(2, 60_000);
  const a = await slots.acquire();
  const b = await slots.acquire();
  const order: string[] = [];
  const c = slots.acquire().then((r) => (order.push('c'), r));
  const d = slots.acquire().then((r) => (order.push('d'), r));
  await tick();
  assert.deepEqual(order, []);
  assert.deepEqual(slots.stats(), { inUse: 2, waiting: 2 });
  a();
  a(); // a second give-back of the same slot frees nothing more
  await tick();
  assert.deepEqual(order, ['c']);
  assert.deepEqual(slots.stats(), { inUse: 2, waiting: 1 });
  b();
  (await c)();
  (await d)();
  assert.deepEqual(order, ['c', 'd']);
  assert.deepEqual(slots.stats(), { inUse: 0, waiting: 0 });
});

test('a slot held past its time is given up: a hung set-up slows the others, never stops them', async () => {
  const slots = new SetupSlots(1, 30);
  await slots.acquire(); // never given back
  const t0 = performance.now();
  // The slot's own timer does not keep a process alive (a real holder's pod does): this does.
  const alive = setTimeout(() => {}, 5_000);
  const next = await slots.acquire();
  clearTimeout(alive);
  assert.ok(performance.now() - t0 >= 25);
  next();
  assert.deepEqual(slots.stats(), { inUse: 0, waiting: 0 });
});
