// What the pod sees of an answer from a secret's host must not depend on whether text it made
// the host echo is a prefix of the secret: neither the bytes nor how they are framed (chunk
// sizes). Otherwise it guesses the value a character at a time. Also: a Transfer-Encoding the
// proxy cannot scan through is refused, and server-sent events still arrive.
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import zlib from 'node:zlib';
import { createRunCA } from './ca.js';
import { makePlaceholder } from './secrets.js';
import { startPodProxy } from './server.js';
import { eventLog, tempDir } from './testkit.js';
import type { PodProxy, ResolvedSecret } from './types.js';

const VALUE = `sk-AbC/dEf+GhI=${Math.random().toString(36).slice(2, 12)}x7Y9x7Y9/end`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A raw upstream: the route decides exactly which bytes go in which write. */
type Route = (s: net.Socket, q: string) => Promise<void> | void;
const ROUTES: Record<string, Route> = {
  // An error page quoting the pod's text last, in one write (one TCP segment).
  tail: (s, q) => {
    const body = `no such item: ${q}`;
    s.end(`HTTP/1.1 404 Not Found\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  },
  // The quote in the middle, the write split right after it (as a TLS record boundary would).
  middle: async (s, q) => {
    const body = `{"error":"unknown model: ${q}","docs":"${'x'.repeat(3000)}"}`;
    const head = `HTTP/1.1 400 Bad Request\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
    const cut = head.length + body.indexOf(q) + q.length;
    const all = Buffer.from(head + body);
    s.write(all.subarray(0, cut));
    await sleep(30);
    s.end(all.subarray(cut));
  },
  chunkedgzip: (s) => {
    const z = zlib.gzipSync(`leak ${VALUE}`);
    s.end(
      Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n${z.length.toString(16)}\r\n`), z, Buffer.from('\r\n0\r\n\r\n')]),
    );
  },
  sse: async (s) => {
    s.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n');
    for (let i = 0; i < 3; i++) {
      const ev = `data: {"n":${i}}\n\n`;
      s.write(`${ev.length.toString(16)}\r\n${ev}\r\n`);
      await sleep(100);
    }
    s.end('0\r\n\r\n');
  },
};

let dir: Awaited<ReturnType<typeof tempDir>>;
let upstream: net.Server;
let port = 0;
let proxy: PodProxy;

before(async () => {
  dir = await tempDir();
  upstream = net.createServer((s) => {
    s.on('error', () => undefined);
    s.once('data', (c: Buffer) => {
      const url = c.toString('latin1').split(' ')[1] ?? '/';
      const [name, q = ''] = url.slice(1).split('?q=');
      void (ROUTES[name] ?? ((x: net.Socket) => x.end('HTTP/1.1 404 NF\r\nContent-Length: 0\r\n\r\n')))(s, decodeURIComponent(q));
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  port = (upstream.address() as AddressInfo).port;
  const secret: ResolvedSecret = { name: 'TOK', value: VALUE, placeholder: makePlaceholder('TOK'), hosts: [`echo.test:${port}`] };
  proxy = await startPodProxy({
    socketPath: `${dir.dir}/proxy.sock`,
    pod: 'pod-oracle',
    network: { allow: [`echo.test:${port}`], deny: [], hosts: { 'echo.test': '127.0.0.1' } },
    secrets: [secret],
    ca: createRunCA('run-oracle'),
    upstreamCA: [],
    onEvent: eventLog().onEvent,
  });
});

after(async () => {
  await proxy.close();
  upstream.close();
  await dir.cleanup();
});

interface Raw {
  status: number;
  head: string;
  chunks: Array<{ at: number; data: string }>;
}

/** One proxy request on a fresh connection; the answer's body as the chunks it was framed in. */
function fetchRaw(route: string, q = ''): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const s = net.connect(proxy.socketPath);
    const t0 = Date.now();
    let buf = Buffer.alloc(0);
    let head: string | undefined;
    const chunks: Raw['chunks'] = [];
    const parse = (): void => {
      if (head === undefined) {
        const i = buf.indexOf('\r\n\r\n');
        if (i < 0) return;
        head = buf.subarray(0, i).toString('latin1');
        buf = buf.subarray(i + 4);
      }
      for (;;) {
        const j = buf.indexOf('\r\n');
        if (j < 0) return;
        const n = parseInt(buf.subarray(0, j).toString(), 16);
        if (buf.length < j + 4 + n) return;
        if (n > 0) chunks.push({ at: Date.now() - t0, data: buf.subarray(j + 2, j + 2 + n).toString('latin1') });
        buf = buf.subarray(j + 4 + n);
      }
    };
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      parse();
    });
    s.on('error', reject);
    s.on('close', () => {
      const h = head ?? '';
      // A Content-Length answer is one piece: its framing is the length alone.
      if (/\r\ncontent-length:/i.test(h) && chunks.length === 0) chunks.push({ at: Date.now() - t0, data: buf.toString('latin1') });
      resolve({ status: Number(h.split(' ')[1]), head: h, chunks });
    });
    const path = q ? `/${route}?q=${encodeURIComponent(q)}` : `/${route}`;
    s.write(`GET http://echo.test:${port}${path} HTTP/1.1\r\nHost: echo.test:${port}\r\nConnection: close\r\n\r\n`);
  });
}

const sizes = (r: Raw) => r.chunks.map((c) => c.data.length);

test('a right and a wrong guess at a prefix of the secret are framed identically', async () => {
  for (const route of ['tail', 'middle']) {
    for (const known of [VALUE.slice(0, 4), VALUE.slice(0, 20), VALUE.slice(0, -2)]) {
      const next = VALUE[known.length];
      const wrong = next === 'Q' ? 'R' : 'Q';
      const right = await fetchRaw(route, known + next);
      const bad = await fetchRaw(route, known + wrong);
      assert.deepEqual(sizes(right), sizes(bad), `${route}, ${known.length + 1} chars: the framing tells a prefix apart`);
      assert.equal(
        right.chunks
          .map((c) => c.data)
          .join('')
          .replace(known + next, known + wrong),
        bad.chunks.map((c) => c.data).join(''),
      );
    }
  }
});

test('an answer in a Transfer-Encoding other than chunked is refused, never passed unscanned', async () => {
  const r = await fetchRaw('chunkedgzip');
  assert.equal(r.status, 502, r.head);
  assert.ok(
    !r.chunks
      .map((c) => c.data)
      .join('')
      .includes(VALUE),
  );
});

test('server-sent events still arrive, the last one at the end of the stream at the latest', async () => {
  const r = await fetchRaw('sse');
  assert.equal(r.status, 200);
  assert.equal(r.chunks.map((c) => c.data).join(''), 'data: {"n":0}\n\ndata: {"n":1}\n\ndata: {"n":2}\n\n');
});
