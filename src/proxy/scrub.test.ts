import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pipeline, Readable, Writable } from 'node:stream';
import zlib from 'node:zlib';
import { decoders, responseScrubber } from './scrub.js';
import type { ResolvedSecret } from './types.js';

const S: ResolvedSecret = { name: 'K', value: 'sk-ünï/cöde', placeholder: 'clawpod-secret-K-0123456789abcdef0123456789abcdef', hosts: ['x.test'] };
const latin1 = (s: string) => Buffer.from(s).toString('latin1');

/** Pushes chunks through a scrub stream; resolves with what came out. */
async function run(chunks: Buffer[]): Promise<string> {
  const s = responseScrubber([S]).stream();
  const out: Buffer[] = [];
  s.on('data', (c: Buffer) => out.push(c));
  for (const c of chunks) s.write(c);
  s.end();
  await new Promise((r) => s.on('end', r));
  return Buffer.concat(out).toString();
}

test('a value split across chunks at any byte, raw or encoded, is swapped for the placeholder', async () => {
  const text = Buffer.from(`before ${S.value} middle ${encodeURIComponent(S.value)} b64 ${Buffer.from(`x${S.value}`).toString('base64')} after`);
  for (let i = 1; i < text.length; i++) {
    const out = await run([text.subarray(0, i), text.subarray(i)]);
    assert.ok(!out.includes(S.value) && !out.includes(encodeURIComponent(S.value)), `split at ${i}: ${out}`);
    assert.equal(out.split(S.placeholder).length, 4, `split at ${i}: ${out}`);
  }
});

test('the reason phrase, header names and values, and values split over headers are scrubbed', () => {
  const v = latin1(S.value);
  const half = v.length >> 1;
  const head = responseScrubber([S]).head(`OK ${v}`, [
    'X-Echo',
    `Bearer ${v}`,
    `X-${v}`,
    '1',
    'X-A',
    v.slice(0, half),
    'X-B',
    v.slice(half),
    'X-Other',
    'fine',
  ]);
  assert.equal(head.reason, `OK ${S.placeholder}`);
  assert.deepEqual(head.headers, [
    'X-Echo',
    `Bearer ${S.placeholder}`,
    `X-${S.placeholder}`,
    '1',
    'X-A',
    S.placeholder,
    'X-B',
    S.placeholder,
    'X-Other',
    'fine',
  ]);
});

async function decode(encoding: string, body: Buffer, max?: number): Promise<{ out: string; error?: Error }> {
  const d = decoders(encoding, max);
  assert.ok(Array.isArray(d), String(d));
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      chunks.push(c);
      cb();
    },
  });
  const error = await new Promise<Error | undefined>((r) => pipeline([Readable.from([body]), ...d, sink], (e) => r(e ?? undefined)));
  return { out: Buffer.concat(chunks).toString(), error };
}

test('compressed answers are decoded (gzip, deflate, br, a list of them), unknown encodings refused, size bounded', async () => {
  const text = Buffer.from('hello world');
  assert.equal((await decode('gzip', zlib.gzipSync(text))).out, 'hello world');
  assert.equal((await decode('deflate', zlib.deflateSync(text))).out, 'hello world');
  assert.equal((await decode('BR', zlib.brotliCompressSync(text))).out, 'hello world');
  assert.equal((await decode('deflate, gzip', zlib.gzipSync(zlib.deflateSync(text)))).out, 'hello world');
  assert.deepEqual(decoders('identity'), []);
  assert.match(String(decoders('zstd')), /came compressed as "zstd"/);
  assert.match(String(decoders('gzip, compress')), /"compress"/);
  const bomb = await decode('gzip', zlib.gzipSync(Buffer.alloc(1 << 20)), 1000);
  assert.match(String(bomb.error), /larger than 1000 bytes/);
  assert.ok((await decode('deflate', Buffer.from('not deflate at all'))).error, 'a corrupt body fails, it is not passed on');
});
