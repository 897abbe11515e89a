// The policy through a live proxy: real unix socket, real upstream on loopback, names mapped or
// resolved by a fake resolver (nothing leaves this machine).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { startPodProxy } from './server.js';
import { eventLog, openTunnel, readAll, startUpstream, tempDir, viaProxy, type Upstream } from './testkit.js';
import type { PodProxy, ProxyEvent } from './types.js';

let up: Upstream;
let up6: Upstream | undefined;
let proxy: PodProxy;
let log: ReturnType<typeof eventLog>;
let dir: Awaited<ReturnType<typeof tempDir>>;
let deadPort: number;

before(async () => {
  dir = await tempDir();
  up = await startUpstream();
  up6 = await startUpstream({ host: '::1' }).catch(() => undefined); // a host without IPv6 skips those cases
  const dead = await startUpstream();
  deadPort = dead.port;
  await dead.close();
  log = eventLog();
  const P = up.port;
  proxy = await startPodProxy({
    socketPath: `${dir.dir}/proxy.sock`,
    pod: 'pod-policy',
    network: {
      allow: [
        `ok.test:${P}`,
        'ok.test',
        `*.wild.test:${P}`,
        `loopy.test:${P}`,
        `127.0.0.2:${P}`,
        `dead.test:${deadPort}`,
        ...(up6 ? [`[::1]:${up6.port}`] : []),
      ],
      deny: [`blocked.wild.test:${P}`],
      hosts: { 'ok.test': '127.0.0.1', 'a.wild.test': '127.0.0.1', 'blocked.wild.test': '127.0.0.1', 'wild.test': '127.0.0.1', 'dead.test': '127.0.0.1' },
    },
    secrets: [],
    // loopy.test is allowed but not mapped: its (fake) DNS answer is loopback.
    resolve: async (h) => (h === 'loopy.test' ? ['127.0.0.1'] : Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${h}`), { code: 'ENOTFOUND' }))),
    localAddresses: () => [],
    onEvent: log.onEvent,
  });
});

after(async () => {
  await proxy.close();
  await up.close();
  await up6?.close();
  await dir.cleanup();
});

function lastEvent(host: string): ProxyEvent | undefined {
  return [...log.events].reverse().find((e) => e.data.host === host);
}

/** Each case through a plain request; allowed ones must reach the upstream, denied ones must not. */
test('live allow/deny matrix over plain HTTP', async () => {
  const P = up.port;
  const cases: Array<[string, number, RegExp?]> = [
    [`http://ok.test:${P}/exact`, 200],
    [`http://OK.TEST.:${P}/case-and-dot`, 200],
    [`http://a.wild.test:${P}/wildcard`, 200],
    [`http://wild.test:${P}/apex`, 403, /not in network\.allow/],
    [`http://blocked.wild.test:${P}/deny-wins`, 403, /network\.deny/],
    [`http://ok.test.evil.test:${P}/lookalike`, 403, /not in network\.allow/],
    [`http://ok.test:${P + 1}/other-port`, 403, /port .* only 80 and 443/],
    [`http://loopy.test:${P}/ssrf`, 403, /loopy\.test resolves to 127\.0\.0\.1 \(loopback\)/],
    [`http://127.0.0.1:${P}/ip-not-listed`, 403, /IP address/],
    [`http://127.1:${P}/ip-other-spelling`, 403, /IP address/],
    [`http://[::1]:${P}/v6-not-listed`, 403, /IP address/],
  ];
  for (const [target, status, reason] of cases) {
    const seenBefore = up.seen.length;
    const r = await viaProxy(proxy.socketPath, target);
    assert.equal(r.status, status, `${target}: ${r.body}`);
    if (status === 200) {
      assert.equal(up.seen.length, seenBefore + 1, `${target} reached the upstream`);
      assert.equal(up.seen.at(-1)?.url, new URL(target).pathname);
      continue;
    }
    assert.equal(up.seen.length, seenBefore, `${target} must not reach the upstream`);
    const deny = r.headers['x-clawpod-deny'];
    assert.ok(typeof deny === 'string' && reason?.test(deny), `${target}: X-Clawpod-Deny ${deny}`);
    assert.match(r.body, /^clawpod: egress to \S+ denied by policy \(.+\)\n$/);
    assert.equal(r.body.trim().split('\n').length, 1);
  }
});

test('an IP literal is reachable when listed literally (v4 and v6)', async (t) => {
  const r = await viaProxy(proxy.socketPath, `http://127.0.0.2:${up.port}/listed`);
  // 127.0.0.2 is listed, so the proxy dials it: the upstream listens on 127.0.0.1 only, so a
  // 502 (not a 403) proves the policy let it through.
  assert.equal(r.status, 502, r.body);
  assert.equal(r.headers['x-clawpod-deny'], undefined);
  if (!up6) return t.skip('no IPv6 loopback here');
  const r6 = await viaProxy(proxy.socketPath, `http://[::1]:${up6.port}/v6`);
  assert.equal(r6.status, 200, r6.body);
  assert.equal(up6.seen.at(-1)?.url, '/v6');
});

test('CONNECT: allowed targets get a raw tunnel, refusals a 403 to the CONNECT itself', async () => {
  const P = up.port;
  const ok = await openTunnel(proxy.socketPath, `ok.test:${P}`);
  assert.equal(ok.status, 200);
  // A raw tunnel carries whatever the client speaks; here plain HTTP straight to the upstream.
  ok.socket.write('GET /through-tunnel HTTP/1.1\r\nHost: ok.test\r\nConnection: close\r\n\r\n');
  assert.match(await readAll(ok.socket), /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\nok \/through-tunnel\r\n/);
  for (const [authority, reason] of [
    [`wild.test:${P}`, /not in network\.allow/],
    [`loopy.test:${P}`, /loopback/],
    [`ok.test.evil.test:443`, /not in network\.allow/],
    [`127.0.0.1:${P}`, /IP address/],
    [`[::1]:${P}`, /IP address/],
  ] as const) {
    const r = await openTunnel(proxy.socketPath, authority);
    assert.equal(r.status, 403, authority);
    assert.match(r.headers['x-clawpod-deny'] ?? '', reason);
    assert.match(r.body, /^clawpod: egress to \S+ denied by policy .*\n$/);
  }
  const bad = await openTunnel(proxy.socketPath, 'no-port.test');
  assert.equal(bad.status, 400);
});

test('upstream failures answer 502 with one line; unresolvable names too', async () => {
  const r = await viaProxy(proxy.socketPath, `http://dead.test:${deadPort}/`);
  assert.equal(r.status, 502);
  assert.match(r.body, /^clawpod: could not reach dead\.test:\d+ \(.*ECONNREFUSED.*\)\n$/);
  const t = await openTunnel(proxy.socketPath, `dead.test:${deadPort}`);
  assert.equal(t.status, 502);
  const ok = await viaProxy(proxy.socketPath, 'http://ok.test/'); // allowed on 80, resolves via hosts, nothing there
  assert.equal(ok.status, 502);
  const nowhere = await viaProxy(proxy.socketPath, `http://nowhere.wild.test:${up.port}/`); // allowed, not mapped, no DNS answer
  assert.equal(nowhere.status, 502);
  assert.equal(nowhere.headers['x-clawpod-deny'], undefined);
  assert.match(nowhere.body, /^clawpod: could not reach nowhere\.wild\.test:\d+ \(cannot resolve nowhere\.wild\.test: .*ENOTFOUND.*\)\n$/);
});

test('events: every request attributed to the pod, with status, bytes and reasons', async () => {
  await viaProxy(proxy.socketPath, `http://ok.test:${up.port}/events`, { 'Content-Type': 'text/plain' });
  const allow = lastEvent('ok.test');
  assert.equal(allow?.type, 'net.allow');
  assert.equal(allow?.data.pod, 'pod-policy');
  assert.equal(allow?.data.method, 'GET');
  assert.equal(allow?.data.port, up.port);
  assert.equal(allow?.data.status, 200);
  assert.equal(allow?.data.bytesDown, 'ok /events'.length);
  assert.equal(typeof allow?.data.durationMs, 'number');
  const deny = lastEvent('loopy.test');
  assert.equal(deny?.type, 'net.deny');
  assert.equal(deny?.data.status, 403);
  assert.match(String(deny?.data.reason), /loopback/);
  // Tunnels report when they close, with byte counts.
  const tunnel = log.events.find((e) => e.data.method === 'CONNECT' && e.type === 'net.allow' && e.data.status === 200);
  assert.ok(tunnel && Number(tunnel.data.bytesUp) > 0 && Number(tunnel.data.bytesDown) > 0, JSON.stringify(tunnel));
});

test('close() ends the proxy and removes its socket file', async () => {
  const d = await tempDir();
  const p = await startPodProxy({ socketPath: `${d.dir}/p.sock`, pod: 'x', network: { allow: [], deny: [], hosts: {} }, secrets: [], onEvent: () => {} });
  assert.ok(existsSync(p.socketPath));
  await p.close();
  assert.equal(existsSync(p.socketPath), false);
  await p.close(); // idempotent
  await d.cleanup();
});
