import assert from 'node:assert/strict';
import { test } from 'node:test';
import { scrubber } from './scrub.js';
import type { ResolvedSecret } from './types.js';

const S: ResolvedSecret = { name: 'K', value: 'sk-ünï/cöde', placeholder: 'clawpod-secret-K-0123456789abcdef0123456789abcdef', hosts: ['x.test'] };

/** Pushes chunks through a scrub stream; resolves with what came out, and what came out before the end. */
async function run(chunks: Buffer[]): Promise<{ out: string; beforeEnd: string }> {
  const s = scrubber([S]).stream();
  const out: Buffer[] = [];
  s.on('data', (c: Buffer) => out.push(c));
  for (const c of chunks) s.write(c);
  await new Promise((r) => setImmediate(r));
  const beforeEnd = Buffer.concat(out).toString();
  s.end();
  await new Promise((r) => s.on('end', r));
  return { out: Buffer.concat(out).toString(), beforeEnd };
}

test('a value split across chunks at any byte is still swapped for the placeholder', async () => {
  const text = Buffer.from(`before ${S.value} middle ${encodeURIComponent(S.value)} after`);
  const want = `before ${S.placeholder} middle ${S.placeholder} after`;
  for (let i = 1; i < text.length; i++) {
    const { out } = await run([text.subarray(0, i), text.subarray(i)]);
    assert.equal(out, want, `split at ${i}`);
  }
  assert.equal((await run([...text].map((b) => Buffer.from([b])))).out, want, 'one byte at a time');
});

test('streamed text that cannot start a value is passed on at once (server-sent events do not stall)', async () => {
  const { beforeEnd } = await run([Buffer.from('data: {"delta":"hi"}\n\n')]);
  assert.equal(beforeEnd, 'data: {"delta":"hi"}\n\n');
  // Only a possible start of the value is held back until the next chunk decides it.
  const held = await run([Buffer.from('data: sk-ü')]);
  assert.equal(held.beforeEnd, 'data: ');
  assert.equal(held.out, 'data: sk-ü');
});

test('header values are scrubbed too', () => {
  // Node hands header values over as latin1 strings, one char per byte.
  const latin1 = Buffer.from(`Bearer ${S.value}`).toString('latin1');
  assert.deepEqual(scrubber([S]).headers(['X-Echo', latin1, 'X-Other', 'fine']), ['X-Echo', `Bearer ${S.placeholder}`, 'X-Other', 'fine']);
});
