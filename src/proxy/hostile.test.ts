// Hostile and broken clients: each gets an answer or a closed socket, the process keeps
// running, and both this proxy and a second, independent one keep serving afterwards.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { startPodProxy } from './server.js';
import { eventLog, eventually, openTunnel, readAll, startEcho, startUpstream, tempDir, until, viaProxy, type Upstream } from './testkit.js';
import type { PodProxy, ProxyEvent } from './types.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let up: Upstream;
let echo: Awaited<ReturnType<typeof startEcho>>;
let attacked: PodProxy;
let bystander: PodProxy;
let log: ReturnType<typeof eventLog>;

async function proxyFor(name: string, onEvent: (e: ProxyEvent) => void = () => {}): Promise<PodProxy> {
  return startPodProxy({
    socketPath: `${dir.dir}/${name}.sock`,
    pod: name,
    network: { allow: [`ok.test:${up.port}`, `echo.test:${echo.port}`], deny: [], hosts: { 'ok.test': '127.0.0.1', 'echo.test': '127.0.0.1' } },
    secrets: [],
    // Short header timeout so the stalled client is cut off within the test; no assertion on time.
    timeouts: { headersMs: 300 },
    onEvent,
  });
}

before(async () => {
  dir = await tempDir();
  up = await startUpstream();
  echo = await startEcho();
  log = eventLog();
  attacked = await proxyFor('attacked', log.onEvent);
  bystander = await proxyFor('bystander');
});

after(async () => {
  await attacked.close();
  await bystander.close();
  await up.close();
  await echo.close();
  await dir.cleanup();
});

/** Writes bytes on a fresh connection and returns everything the proxy sends before closing. */
function raw(socketPath: string, bytes: Buffer | string): Promise<string> {
  const s = net.connect(socketPath);
  s.on('error', () => {});
  s.write(bytes);
  return readAll(s);
}

async function bothStillServe(): Promise<void> {
  for (const p of [attacked, bystander]) {
    const r = await viaProxy(p.socketPath, `http://ok.test:${up.port}/alive`);
    assert.equal(r.status, 200, `${p.socketPath} still serves`);
  }
}

test('garbage bytes get a 400 and a closed connection', async () => {
  const answer = await raw(attacked.socketPath, Buffer.from([0, 1, 2, 255, 13, 10, 13, 10, 0x47, 0x45, 0x54]));
  assert.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*\r\n\r\nclawpod: malformed HTTP request\n$/);
  const answer2 = await raw(attacked.socketPath, 'GET http://ok.test/ HTTP/9.9\r\n\r\n');
  assert.match(answer2, /^HTTP\/1\.1 400 /);
  await bothStillServe();
});

test('a 64 KiB header gets a 431 and a closed connection', async () => {
  const huge = `GET http://ok.test:${up.port}/ HTTP/1.1\r\nHost: ok.test\r\nX-Huge: ${'a'.repeat(64 * 1024)}\r\n\r\n`;
  const answer = await raw(attacked.socketPath, huge);
  assert.match(answer, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n[\s\S]*clawpod: request headers too large/);
  assert.equal(
    up.seen.some((s) => s.headers['x-huge'] !== undefined),
    false,
  );
  await bothStillServe();
});

test('a client that sends half a request and stalls is cut off, and others are served meanwhile', async () => {
  const s = net.connect(attacked.socketPath);
  s.on('error', () => {});
  s.write(`GET http://ok.test:${up.port}/slow HTTP/1.1\r\nHost: ok.test\r\nX-Partial: `);
  const answer = readAll(s);
  await bothStillServe(); // while the slow one holds its connection open
  assert.match(await eventually(answer, 'the stalled client is answered and closed'), /^HTTP\/1\.1 408 /);
  assert.equal(
    up.seen.some((r) => r.url === '/slow'),
    false,
  );
});

test('a tunnel whose client half-closes gets the rest of the answer, then both sides are closed', async () => {
  const t = await openTunnel(attacked.socketPath, `echo.test:${echo.port}`);
  assert.equal(t.status, 200);
  const answer = readAll(t.socket);
  t.socket.end('ping'); // write, then FIN: the echo answers and ends in turn
  assert.equal(await eventually(answer, 'the echo and the end reach the half-closed client'), 'ping');
  // The tunnel's event comes when both sides are closed, with exact byte counts.
  const closed = until(() => log.events.find((e) => e.data.method === 'CONNECT' && e.data.host === 'echo.test' && e.data.status === 200));
  const ev = await eventually(closed, 'the tunnel closes and is reported');
  assert.equal(ev.data.bytesUp, 4);
  assert.equal(ev.data.bytesDown, 4);
  await bothStillServe();
});

test('a tunnel whose upstream resets is closed on the client side too', async () => {
  const t = await openTunnel(attacked.socketPath, `echo.test:${echo.port}`);
  assert.equal(t.status, 200);
  const closed = new Promise((resolve) => t.socket.once('close', resolve));
  t.socket.on('error', () => {});
  t.socket.resume();
  t.socket.write('RST');
  await eventually(closed, 'the client side of a reset tunnel is closed');
  await bothStillServe();
});

test('clients that vanish mid-request or mid-tunnel, and a throwing event sink, break nothing', async () => {
  // Gone right after the request line.
  const a = net.connect(attacked.socketPath);
  a.on('error', () => {});
  a.write(`POST http://ok.test:${up.port}/upload HTTP/1.1\r\nHost: ok.test\r\nContent-Length: 1000\r\n\r\npartial`);
  a.destroy();
  // Gone right after asking for a tunnel, before the answer.
  const b = net.connect(attacked.socketPath);
  b.on('error', () => {});
  b.write(`CONNECT echo.test:${echo.port} HTTP/1.1\r\n\r\n`);
  b.destroy();
  // Origin-form and CONNECT-less requests are explained, not crashed on.
  const c = await raw(attacked.socketPath, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.match(c, /^HTTP\/1\.1 400 [\s\S]*send absolute-form requests/);
  const refused = log.events.find((e) => e.data.status === 400 && e.data.method === 'GET');
  assert.equal(refused?.type, 'net.deny');
  const throwing = await startPodProxy({
    socketPath: `${dir.dir}/throwing.sock`,
    pod: 'throwing',
    network: { allow: [`ok.test:${up.port}`], deny: [], hosts: { 'ok.test': '127.0.0.1' } },
    secrets: [],
    onEvent: () => {
      throw new Error('sink down');
    },
  });
  try {
    assert.equal((await viaProxy(throwing.socketPath, `http://ok.test:${up.port}/`)).status, 200);
    assert.equal((await viaProxy(throwing.socketPath, 'http://evil.test/')).status, 403);
  } finally {
    await throwing.close();
  }
  await bothStillServe();
});

test('close() ends open tunnels and kept-alive connections', async () => {
  const p = await proxyFor('closing');
  const t = await openTunnel(p.socketPath, `echo.test:${echo.port}`);
  assert.equal(t.status, 200);
  const closed = new Promise((resolve) => t.socket.once('close', resolve));
  t.socket.resume();
  await p.close();
  await eventually(closed, 'close() ends the open tunnel');
  await bothStillServe();
});
