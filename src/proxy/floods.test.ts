// The proxy against a hostile pod, at the unit level: a live proxy on a unix socket, upstreams
// on loopback, names mapped or answered by a fake resolver (nothing leaves this machine).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { startPodProxy } from './server.js';
import { eventLog, eventually, openTunnel, readAll, startUpstream, tempDir, until, viaProxy, type Upstream } from './testkit.js';
import type { PodProxy, PodProxyOptions, ProxyEvent } from './types.js';

let up: Upstream;
let dir: Awaited<ReturnType<typeof tempDir>>;
let n = 0;
const proxies: PodProxy[] = [];

before(async () => {
  dir = await tempDir();
  up = await startUpstream();
});
after(async () => {
  for (const p of proxies) await p.close();
  await up.close();
  await dir.cleanup();
});

async function proxy(o: Partial<PodProxyOptions>, log = eventLog()): Promise<{ path: string; log: ReturnType<typeof eventLog>; p: PodProxy }> {
  const p = await startPodProxy({
    socketPath: `${dir.dir}/p${++n}.sock`,
    pod: 'pod-floods',
    secrets: [],
    localAddresses: () => [],
    onEvent: log.onEvent,
    network: { allow: [], deny: [], hosts: {} },
    ...o,
  });
  proxies.push(p);
  return { path: p.socketPath, log, p };
}

const count = (events: ProxyEvent[], pred: (e: ProxyEvent) => boolean) => events.filter(pred).reduce((s, e) => s + (Number(e.data.count) || 1), 0);

test('connections past the cap are answered 503 at once, recorded (coalesced), and the cap frees up', async () => {
  const { path, log } = await proxy({ maxConnections: 3, network: { allow: [`ok.test:${up.port}`], deny: [], hosts: { 'ok.test': '127.0.0.1' } } });
  const held: net.Socket[] = [];
  for (let i = 0; i < 3; i++) {
    const s = net.connect(path);
    await new Promise((r) => s.once('connect', r));
    held.push(s);
  }
  await new Promise((r) => setTimeout(r, 50)); // the proxy has accepted them
  const answers = await Promise.all([0, 1, 2, 3, 4].map(() => readAll(net.connect(path))));
  for (const a of answers) assert.match(a, /^HTTP\/1\.1 503 [^]*too many connections to the proxy \(this pod may hold 3 at once\)/);
  const refusals = () => log.events.filter((e) => e.type === 'net.deny' && e.data.status === 503);
  assert.equal(refusals().length, 1, 'one event for the burst so far');
  held[0].destroy();
  await eventually(
    until(() => (held[0].destroyed ? true : undefined)),
    'socket closed',
  );
  await new Promise((r) => setTimeout(r, 50));
  const r = await viaProxy(path, `http://ok.test:${up.port}/after`);
  assert.equal(r.status, 200, 'a freed slot serves again');
  for (const s of held) s.destroy();
  await eventually(
    until(() => (count(refusals(), () => true) === 5 ? true : undefined)),
    'the burst counted in full (coalesced)',
  );
});

test('an upstream that cannot be reached (ENETUNREACH, ECONNREFUSED) is a 502 and an event, never a crash', async () => {
  const dead = await startUpstream();
  const deadPort = dead.port;
  await dead.close();
  const { path, log } = await proxy({
    network: { allow: ['unreach.test', `refused.test:${deadPort}`], deny: [], hosts: { 'unreach.test': '224.0.0.1', 'refused.test': '127.0.0.1' } },
  });
  const plain = await viaProxy(path, 'http://unreach.test/x');
  assert.equal(plain.status, 502);
  assert.match(plain.body, /could not reach unreach\.test .*ENETUNREACH/);
  const tunnel = await openTunnel(path, 'unreach.test:443');
  assert.equal(tunnel.status, 502);
  assert.match(tunnel.body, /ENETUNREACH/);
  const refused = await viaProxy(path, `http://refused.test:${deadPort}/`);
  assert.equal(refused.status, 502);
  assert.match(refused.body, /ECONNREFUSED/);
  await eventually(
    until(() => (log.events.filter((e) => e.data.status === 502).length === 3 ? true : undefined)),
    'three 502 events',
  );
  for (const e of log.events.filter((x) => x.data.status === 502)) assert.match(String(e.data.reason), /ENETUNREACH|ECONNREFUSED/);
});

test('an upstream that never accepts is a 502 after connectMs', async (t) => {
  // A listener with a full accept queue that never accepts: the next SYN is dropped, the connect hangs.
  const py: ChildProcess = spawn('python3', [
    '-c',
    'import socket,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)',
  ]);
  t.after(() => py.kill());
  const port = Number(await new Promise<string>((r) => py.stdout?.once('data', (d: Buffer) => r(d.toString()))));
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 3; i++) fillers.push(net.connect(port, '127.0.0.1').on('error', () => undefined));
  t.after(() => fillers.forEach((s) => s.destroy()));
  await new Promise((r) => setTimeout(r, 200));
  const { path } = await proxy({
    timeouts: { connectMs: 300 },
    network: { allow: [`stuck.test:${port}`], deny: [], hosts: { 'stuck.test': '127.0.0.1' } },
  });
  const started = Date.now();
  const [plain, tunnel] = await Promise.all([viaProxy(path, `http://stuck.test:${port}/`), openTunnel(path, `stuck.test:${port}`)]);
  assert.equal(plain.status, 502);
  assert.match(plain.body, /did not accept the connection within 300 ms/);
  assert.equal(tunnel.status, 502);
  assert.ok(Date.now() - started < 5000);
});

test('names whose DNS answer is private, shared, metadata or mapped-IPv4 are refused with 403; the address is never dialled', async () => {
  const answers: Record<string, string[]> = {
    'rfc1918.test': ['10.1.2.3'],
    'alibaba.test': ['100.100.100.200'],
    'aws6.test': ['fd00:ec2::254'],
    'mapped.test': ['::ffff:127.0.0.1'],
    'nat64.test': ['64:ff9b::7f00:1'],
    'mixed.test': ['192.168.1.1', 'fe80::1'],
  };
  const hosts = Object.keys(answers);
  const resolved: string[] = [];
  const { path } = await proxy({
    network: { allow: hosts, deny: [], hosts: {} },
    resolve: async (h) => {
      resolved.push(h);
      return answers[h] ?? [];
    },
  });
  for (const h of hosts) {
    const r = await viaProxy(path, `http://${h}/`);
    assert.equal(r.status, 403, `${h}: ${r.body}`);
    assert.match(String(r.headers['x-clawpod-deny']), new RegExp(`^${h.replace('.', '\\.')} resolves to .*map the name in network\\.hosts$`));
    const t = await openTunnel(path, `${h}:443`);
    assert.equal(t.status, 403, `${h} CONNECT`);
  }
  assert.equal(resolved.length, hosts.length * 2, 'resolved once per request, never again to connect');
});

test('identical denials are coalesced; the counts add up when the proxy closes', async () => {
  const { path, log, p } = await proxy({ network: { allow: [], deny: [], hosts: {} } });
  const N = 200;
  await Promise.all(Array.from({ length: N }, () => viaProxy(path, 'http://nope.test/')));
  const denials = () => log.events.filter((e) => e.type === 'net.deny' && e.data.host === 'nope.test');
  assert.ok(denials().length <= 3, `${denials().length} events for ${N} identical denials`);
  await p.close();
  assert.equal(
    count(denials(), () => true),
    N,
  );
});
