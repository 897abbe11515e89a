import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { base64Core, needles } from './needles.js';
import { scrubber } from './scan.js';
import type { ResolvedSecret } from './types.js';

function secret(name: string, value: string): ResolvedSecret {
  return { name, value, placeholder: `clawpod-secret-${name}-0123456789abcdef0123456789abcdef`, hosts: ['x.test'] };
}

const V = 'sk-ünï/cöde+"q\\1';
const S = secret('K', V);

/** urllib.parse.quote(value) as Python writes it: "/" kept, !'()* encoded. */
function pyQuote(value: string): string {
  return encodeURIComponent(value)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replaceAll('%2F', '/');
}

/** Each way an echoing server could spell the value, wrapped in the junk that aligns it. */
function encodings(value: string): Record<string, (junk: Buffer) => Buffer> {
  const b = Buffer.from(value);
  const wrap = (f: (x: Buffer) => string) => (junk: Buffer) => Buffer.from(f(Buffer.concat([junk, b, junk])));
  return {
    raw: (j) => Buffer.concat([j, b, j]),
    base64: wrap((x) => x.toString('base64')),
    base64url: wrap((x) => x.toString('base64url')),
    hex: wrap((x) => x.toString('hex')),
    HEX: wrap((x) => x.toString('hex').toUpperCase()),
    uri: (j) => Buffer.from(`a=${encodeURIComponent(value)}&b=${j.toString('hex')}`),
    form: (j) => Buffer.from(`${new URLSearchParams({ a: value, j: j.toString('hex') })}`),
    pctAll: (j) => Buffer.from(`${j.toString('hex')}${b.toString('hex').replace(/(..)/g, '%$1').toUpperCase()}`),
    pctLower: (j) => Buffer.from(`${j.toString('hex')}${b.toString('hex').replace(/(..)/g, '%$1')}`),
    json: (j) => Buffer.from(JSON.stringify({ v: value, j: j.toString('hex') })),
    jsonAscii: () => Buffer.from(`{"v":"${[...value].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"}`),
    phpJson: (j) => Buffer.from(JSON.stringify({ v: value, j: j.toString('hex') }).replaceAll('/', '\\/')),
    pyQuote: (j) => Buffer.from(`${j.toString('hex')}=${pyQuote(value)}`),
    pyQuoteLower: (j) => Buffer.from(`${j.toString('hex')}=${pyQuote(value).replace(/%../g, (m) => m.toLowerCase())}`),
    uriLower: (j) => Buffer.from(`${j.toString('hex')}=${encodeURIComponent(value).replace(/%../g, (m) => m.toLowerCase())}`),
    jsonAsciiUpper: () => Buffer.from(`"${[...value].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}`).join('')}"`),
  };
}

/** Whether out still spells the value: raw, or the encoding's decoding at any offset. */
function stillSpells(out: Buffer, value: string): boolean {
  const b = Buffer.from(value);
  const s = out.toString('latin1');
  if (out.includes(b)) return true;
  for (let k = 0; k < 3; k++) if (s.includes(base64Core(b, k, false)) || s.includes(base64Core(b, k, true))) return true;
  return [b.toString('hex'), encodeURIComponent(value)].some((f) => s.toLowerCase().includes(f.toLowerCase()));
}

test('every encoding at every alignment is found and replaced', () => {
  const sc = scrubber([S]);
  for (const [name, make] of Object.entries(encodings(V))) {
    for (let k = 0; k < 6; k++) {
      const input = make(randomBytes(k));
      assert.deepEqual(sc.found(input), ['K'], `${name} with ${k} junk bytes: ${input}`);
      const out = sc.buffer(input);
      assert.ok(!stillSpells(out, V), `${name}/${k}: ${out}`);
      assert.match(out.toString('latin1'), /\[secret:K\]/);
    }
  }
});

test("PHP's escaped slash and Python's quote() of a value with /!'()* are found", () => {
  const v = "tok/en!'(x)*/end";
  const sc = scrubber([secret('P', v)]);
  assert.equal(pyQuote(v), 'tok/en%21%27%28x%29%2A/end');
  for (const form of [
    JSON.stringify(v).slice(1, -1).replaceAll('/', '\\/'),
    pyQuote(v),
    pyQuote(v).toLowerCase(),
    encodeURIComponent(v).replaceAll('%2F', '/'),
  ]) {
    assert.equal(sc.text(`<${form}>`), '<[secret:P]>', form);
  }
});

test('split at every byte, or fed a byte at a time, the stream gives what one buffer gives', async () => {
  const sc = scrubber([S], 'placeholder');
  const text = Buffer.concat([Buffer.from('head '), ...Object.values(encodings(V)).map((f) => Buffer.concat([f(Buffer.from('j')), Buffer.from(' | ')]))]);
  const want = sc.buffer(text);
  assert.ok(!stillSpells(want, V));
  for (let i = 1; i < text.length; i += 1) {
    assert.deepEqual(await pipe(sc, [text.subarray(0, i), text.subarray(i)]), want, `split at ${i}`);
  }
  for (let i = 1; i < text.length; i += 37) {
    const j = Math.min(text.length - 1, i + 11);
    assert.deepEqual(await pipe(sc, [text.subarray(0, i), text.subarray(i, j), text.subarray(j)]), want, `three parts at ${i}, ${j}`);
  }
  assert.deepEqual(
    await pipe(
      sc,
      [...text].map((b) => Buffer.from([b])),
    ),
    want,
    'a byte at a time',
  );
});

async function pipe(sc: ReturnType<typeof scrubber>, chunks: Buffer[]): Promise<Buffer> {
  const s = sc.stream();
  const out: Buffer[] = [];
  s.on('data', (c: Buffer) => out.push(c));
  const ended = new Promise((r) => s.on('end', r));
  for (const c of chunks) s.write(c);
  s.end();
  await ended;
  return Buffer.concat(out);
}

test('overlapping secrets are both covered; a value inside a longer one is caught whole', () => {
  const a = secret('A', 'abcdefgh12');
  const b = secret('B', 'defgh12345');
  const sc = scrubber([a, b]);
  assert.equal(sc.text('<abcdefgh12345>'), '<[secret:A][secret:B]>');
  assert.equal(sc.text('<defgh12345 abcdefgh12>'), '<[secret:B] [secret:A]>');
  const short = secret('SHORT', 'token-123');
  const long = secret('LONG', 'token-123-and-more');
  assert.equal(scrubber([short, long]).text('x token-123-and-more y token-123'), 'x [secret:LONG] y [secret:SHORT]');
});

test('text that cannot start a value streams on at once; a possible start waits', async () => {
  const s = scrubber([S]).stream();
  const out: Buffer[] = [];
  s.on('data', (c: Buffer) => out.push(c));
  s.write(Buffer.from('data: {"delta":"hi"}\n\n'));
  await new Promise((r) => setImmediate(r));
  assert.equal(Buffer.concat(out).toString(), 'data: {"delta":"hi"}\n\n');
  s.write(Buffer.from('data: sk-ü'));
  await new Promise((r) => setImmediate(r));
  assert.equal(Buffer.concat(out).toString(), 'data: {"delta":"hi"}\n\ndata: ');
  s.end();
  await new Promise((r) => s.on('end', r));
  assert.equal(Buffer.concat(out).toString(), 'data: {"delta":"hi"}\n\ndata: sk-ü');
});

test('bytes with no match come back as the same buffer; binary data passes unchanged', () => {
  const sc = scrubber([S]);
  const data = randomBytes(256 * 1024);
  assert.equal(sc.buffer(data), data);
  assert.equal(sc.text('plain'), 'plain');
  assert.equal(scrubber([]).text('anything'), 'anything');
  // A lone surrogate survives when nothing matches (no UTF-8 round trip).
  assert.equal(sc.text('x\ud800y'), 'x\ud800y');
});

test('a periodic value repeated without end is replaced without holding the whole stream', async () => {
  const sc = scrubber([secret('P', 'abababab')]);
  const s = sc.stream();
  let out = '';
  s.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const ended = new Promise((r) => s.on('end', r));
  for (let i = 0; i < 20; i++) {
    s.write(Buffer.from('ab'.repeat(8192)));
    await new Promise((r) => setImmediate(r));
  }
  // 320 KiB of one endless match: flushed in pieces of about 64 KiB, not held to the end.
  const beforeEnd = out.split('[secret:P]').length - 1;
  s.end();
  await ended;
  assert.ok(beforeEnd >= 3, `only ${beforeEnd} pieces came out before the end`);
  assert.ok(!out.includes('abababab'), out.slice(0, 200));
});

test('fields: a value split over two header values, or a header name and its value, is found', () => {
  const sc = scrubber([secret('T', 'sk-0123456789abcdef')], 'placeholder');
  const PH = 'clawpod-secret-T-0123456789abcdef0123456789abcdef';
  const list = ['OK', 'X-Part-1', 'sk-01234567', 'X-Part-2', '89abcdef', 'X-sk-0123', '456789abcdef'];
  // values in order, names in order, and the head as written
  const out = sc.fields(list, [
    [0, 2, 4, 6],
    [1, 3, 5],
    [0, 1, 2, 3, 4, 5, 6],
  ]);
  assert.deepEqual(out, ['OK', 'X-Part-1', PH, 'X-Part-2', PH, `X-${PH}`, PH]);
  assert.deepEqual(sc.fields(['fine', 'X-A', 'b'], [[0, 1, 2]]), ['fine', 'X-A', 'b']);
});

test('needles: every spelling is long enough to be told from ordinary text', () => {
  for (const n of needles('12345678')) assert.ok(n.length >= 8, n.toString());
  // A short value keeps its raw, percent and JSON spellings, but no short encodings that would mangle output.
  const short = needles('abc').map(String);
  assert.equal(short[0], 'abc');
  assert.ok(short.slice(1).every((n) => n.length >= 8) && !short.includes('YWJj') && !short.includes('616263'), short.join(' '));
});
