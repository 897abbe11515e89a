// Secret injection end to end: plain HTTP and terminated HTTPS against local servers, with a
// test CA of our own for the upstream, and the run CA as the only root the pod's client trusts.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, test } from 'node:test';
import { createRunCA } from './ca.js';
import { makePlaceholder } from './secrets.js';
import { startPodProxy } from './server.js';
import { eventLog, eventually, openTunnel, startUpstream, tempDir, TunnelAgent, until, viaProxy, viaTunnel, type Upstream } from './testkit.js';
import type { PodProxy, ResolvedSecret, RunCA } from './types.js';

// Characters that need percent-encoding in a query, to see the query gets the encoded form.
const REAL = `real/v+lue=${Math.random().toString(36).slice(2)}`;
const TOKEN: ResolvedSecret = { name: 'API_TOKEN', value: REAL, placeholder: makePlaceholder('API_TOKEN'), hosts: [] };
const PH = TOKEN.placeholder;
// Named places: a query parameter on the TLS host, a header the proxy sets itself on the plain one.
const QTOKEN: ResolvedSecret = { name: 'Q_TOKEN', value: `q-${REAL}`, placeholder: makePlaceholder('Q_TOKEN'), hosts: [], inject: { query: 'token' } };
const SET: ResolvedSecret = {
  name: 'SET_KEY',
  value: `set-${REAL}`,
  placeholder: makePlaceholder('SET_KEY'),
  hosts: [],
  inject: { header: 'X-Set-Key', format: 'Key {}' },
};

let dir: Awaited<ReturnType<typeof tempDir>>;
let plain: Upstream;
let secure: Upstream;
let rawUp: Upstream;
let untrusted: Upstream;
let testCA: RunCA;
let runCA: RunCA;
let proxy: PodProxy;
let log: ReturnType<typeof eventLog>;

before(async () => {
  dir = await tempDir();
  testCA = createRunCA('upstream-test-ca'); // plays the public CA that signs real servers' certificates
  runCA = createRunCA('run-inject');
  plain = await startUpstream();
  secure = await startUpstream({ tls: testCA.issue('api.secret.test') });
  rawUp = await startUpstream({ tls: testCA.issue('raw.test') });
  untrusted = await startUpstream({ tls: createRunCA('nobody-trusts-me').issue('untrusted.secret.test') });
  log = eventLog();
  const secret = { ...TOKEN, hosts: [`plain.test:${plain.port}`, `api.secret.test:${secure.port}`, `untrusted.secret.test:${untrusted.port}`] };
  proxy = await startPodProxy({
    socketPath: `${dir.dir}/proxy.sock`,
    pod: 'pod-inject',
    network: {
      allow: [
        `plain.test:${plain.port}`,
        `other.test:${plain.port}`,
        `api.secret.test:${secure.port}`,
        `raw.test:${rawUp.port}`,
        `untrusted.secret.test:${untrusted.port}`,
      ],
      deny: [],
      hosts: {
        'plain.test': '127.0.0.1',
        'other.test': '127.0.0.1',
        'api.secret.test': '127.0.0.1',
        'raw.test': '127.0.0.1',
        'untrusted.secret.test': '127.0.0.1',
      },
    },
    secrets: [secret, { ...QTOKEN, hosts: [`api.secret.test:${secure.port}`] }, { ...SET, hosts: [`plain.test:${plain.port}`] }],
    ca: runCA,
    upstreamCA: [testCA.certPem],
    onEvent: log.onEvent,
  });
});

after(async () => {
  await proxy.close();
  await Promise.all([plain.close(), secure.close(), rawUp.close(), untrusted.close()]);
  await dir.cleanup();
});

function assertNoRealValue(what: string, text: string): void {
  assert.ok(!text.includes(REAL) && !text.includes(encodeURIComponent(REAL)), `${what} contains the real value`);
}

test('plain HTTP: the scoped host gets the real value in header values only; the URL is refused', async () => {
  const r = await viaProxy(proxy.socketPath, `http://plain.test:${plain.port}/v1?x=1`, { Authorization: `Bearer ${PH}`, 'X-Plain': 'no secret' });
  assert.equal(r.status, 200, r.body);
  const seen = plain.seen.at(-1);
  assert.equal(seen?.headers.authorization, `Bearer ${REAL}`);
  assert.equal(seen?.headers['x-set-key'], `Key ${SET.value}`, 'inject.header: set by the proxy, the pod sent nothing');
  assert.equal(seen?.url, '/v1?x=1');
  assert.equal(seen?.headers.host, `plain.test:${plain.port}`);
  assert.equal(seen?.headers['x-plain'], 'no secret');
  const before = plain.seen.length;
  for (const target of [`/v1/${PH}`, `/v1?key=${PH}`]) {
    const refused = await viaProxy(proxy.socketPath, `http://plain.test:${plain.port}${target}`);
    assert.equal(refused.status, 403, target);
    assert.match(
      String(refused.headers['x-clawpod-deny']),
      /^secret API_TOKEN may go only in credential header values .*; its placeholder was in the (URL path|query \(parameter key\))/,
    );
  }
  // A header the service may store and serve back: refused like the URL.
  const ua = await viaProxy(proxy.socketPath, `http://plain.test:${plain.port}/v1`, { Authorization: `Bearer ${PH}`, 'User-Agent': `bot ${PH}` });
  assert.equal(ua.status, 403);
  assert.match(
    String(ua.headers['x-clawpod-deny']),
    /^secret API_TOKEN may go only in credential header values .*; its placeholder was in the User-Agent header/,
  );
  assert.equal(plain.seen.length, before, 'a misplaced placeholder never reaches the upstream');
  assert.ok(log.events.some((e) => e.type === 'policy.deny' && e.data.secret === 'API_TOKEN' && e.data.host === 'plain.test'));
});

test('answers from a secret host are scrubbed: an echoed real value reaches the pod as the placeholder', async () => {
  const r = await viaProxy(proxy.socketPath, `http://plain.test:${plain.port}/echo`, { Authorization: `Bearer ${PH}` });
  assert.equal(plain.seen.at(-1)?.headers.authorization, `Bearer ${REAL}`, 'the upstream did get the value');
  assert.equal(r.body, 'ok /echo');
  assert.equal(r.headers['x-echo-authorization'], `Bearer ${PH}`);
  assertNoRealValue('the response', JSON.stringify(r));
  const agent = new TunnelAgent(proxy.socketPath, `api.secret.test:${secure.port}`, 'api.secret.test', runCA.certPem);
  try {
    const s = await viaTunnel(agent, `/echo?token=${QTOKEN.placeholder}`, { Authorization: `Bearer ${PH}`, 'Accept-Encoding': 'gzip' });
    assert.equal(s.body, `ok /echo?token=${QTOKEN.placeholder}`, 'the echoed query value is swapped back too');
    assert.equal(s.headers['x-echo-authorization'], `Bearer ${PH}`);
    assert.equal(secure.seen.at(-1)?.headers['accept-encoding'], 'identity', 'asked for an answer it can scan');
  } finally {
    agent.destroy();
  }
});

test('plain HTTP: userinfo becomes Basic auth, but never with a secret in it', async () => {
  const r = await viaProxy(proxy.socketPath, `http://bot:plain-password@plain.test:${plain.port}/userinfo`);
  assert.equal(r.status, 200, r.body);
  assert.equal(plain.seen.at(-1)?.headers.authorization, `Basic ${Buffer.from('bot:plain-password').toString('base64')}`);
  const refused = await viaProxy(proxy.socketPath, `http://bot:${PH}@plain.test:${plain.port}/userinfo`);
  assert.equal(refused.status, 403);
  assert.match(String(refused.headers['x-clawpod-deny']), /user:password/);
});

test('plain HTTP: an unscoped host gets the placeholder unchanged', async () => {
  const r = await viaProxy(proxy.socketPath, `http://other.test:${plain.port}/x?key=${PH}`, { Authorization: `Bearer ${PH}` });
  assert.equal(r.status, 200, r.body);
  const seen = plain.seen.at(-1);
  assert.equal(seen?.headers.host, `other.test:${plain.port}`);
  assert.equal(seen?.headers.authorization, `Bearer ${PH}`);
  assert.equal(seen?.url, `/x?key=${PH}`);
});

test('HTTPS to a secret host: TLS terminated with the run CA, requests kept alive, real value injected upstream', async () => {
  const agent = new TunnelAgent(proxy.socketPath, `api.secret.test:${secure.port}`, 'api.secret.test', runCA.certPem);
  try {
    const a = await viaTunnel(agent, `/first?token=${QTOKEN.placeholder}`, { Authorization: `Bearer ${PH}` });
    const b = await viaTunnel(agent, '/second', { 'X-Api-Key': PH });
    assert.equal(a.status, 200, a.body);
    assert.equal(b.status, 200, b.body);
    assert.equal(b.body, 'ok /second');
    assert.equal(agent.createdConnections, 1, 'both requests went through one tunnel');
  } finally {
    agent.destroy();
  }
  const [first, second] = secure.seen.slice(-2);
  assert.equal(first.headers.authorization, `Bearer ${REAL}`);
  assert.equal(new URLSearchParams(first.url.split('?')[1]).get('token'), QTOKEN.value, 'inject.query: that parameter only');
  assert.equal(second.headers['x-api-key'], REAL);
  // Host is the tunnel's, not whatever the client wrote.
  assert.equal(first.headers.host, `api.secret.test:${secure.port}`);
  // The client was shown a certificate from the run CA, not the server's own.
  const cert = agent.certificates[0];
  assert.equal(cert.issuer.CN, 'clawpod run run-inject CA');
  assert.ok(new X509Certificate(cert.raw).checkIssued(new X509Certificate(runCA.certPem)));
});

test('HTTPS to a host without secrets is a raw tunnel: the client sees the upstream certificate', async () => {
  // This client trusts only the upstream's CA: a terminated tunnel would fail its handshake.
  const agent = new TunnelAgent(proxy.socketPath, `raw.test:${rawUp.port}`, 'raw.test', testCA.certPem);
  try {
    const r = await viaTunnel(agent, `/raw?token=${PH}`, { Authorization: `Bearer ${PH}` });
    assert.equal(r.status, 200, r.body);
  } finally {
    agent.destroy();
  }
  assert.equal(agent.certificates[0].issuer.CN, 'clawpod run upstream-test-ca CA');
  assert.equal(agent.certificates[0].subject.CN, 'raw.test');
  assert.equal(rawUp.seen.at(-1)?.headers.authorization, `Bearer ${PH}`);
  assert.equal(rawUp.seen.at(-1)?.url, `/raw?token=${PH}`);
});

test('HTTPS upstream with a certificate no trusted CA signed: 502, and the secret is never sent', async () => {
  const agent = new TunnelAgent(proxy.socketPath, `untrusted.secret.test:${untrusted.port}`, 'untrusted.secret.test', runCA.certPem);
  let r;
  try {
    r = await viaTunnel(agent, '/steal', { Authorization: `Bearer ${PH}` });
  } finally {
    agent.destroy();
  }
  assert.equal(r.status, 502);
  assert.match(r.body, /^clawpod: could not reach untrusted\.secret\.test:\d+ \(.*certificate.*\)\n$/);
  assert.equal(untrusted.seen.length, 0);
  assertNoRealValue('the 502', JSON.stringify(r));
});

test('a CONNECT to a secret host without a TLS client is closed, not tunnelled raw', async () => {
  const t = await openTunnel(proxy.socketPath, `api.secret.test:${secure.port}`);
  assert.equal(t.status, 200);
  const before = secure.seen.length;
  t.socket.write(`GET /?token=${PH} HTTP/1.1\r\nHost: api.secret.test\r\n\r\n`);
  await new Promise((resolve) => t.socket.once('close', resolve).resume());
  assert.equal(secure.seen.length, before, 'plaintext inside a terminated tunnel never reaches the upstream');
});

test('events: secret.use names the secret and host; the real value is in no event', async () => {
  const uses = log.events.filter((e) => e.type === 'secret.use');
  assert.ok(uses.some((e) => e.data.host === 'plain.test' && e.data.name === 'API_TOKEN' && e.data.pod === 'pod-inject'));
  assert.ok(uses.some((e) => e.data.host === 'api.secret.test' && e.data.name === 'API_TOKEN'));
  assert.ok(!uses.some((e) => e.data.host === 'other.test' || e.data.host === 'raw.test'), 'no use recorded where nothing was injected');
  assert.deepEqual(Object.keys(uses[0].data).sort(), ['host', 'name', 'pod']);
  const inner = log.events.find((e) => e.type === 'net.allow' && e.data.host === 'api.secret.test' && e.data.method === 'GET');
  assert.equal(inner?.data.status, 200);
  assert.equal(inner?.data.tls, true);
  const closed = until(() => log.events.find((e) => e.data.host === 'api.secret.test' && e.data.method === 'CONNECT' && e.data.status === 200));
  const tunnel = await eventually(closed, 'the terminated tunnel is reported when it closes');
  assert.equal(tunnel.data.terminated, true);
  assert.ok(Number(tunnel.data.bytesDown) > 0, 'a terminated tunnel reports the bytes of its requests');
  assertNoRealValue('events', JSON.stringify(log.events));
});

test('a real value the pod somehow holds is redacted from events and refusal bodies', async () => {
  // A value that can be a host name label, sent by the pod as the host it asks for.
  const value = `leaked${REAL.replace(/[^a-z0-9]/g, '')}`;
  const p2 = await startPodProxy({
    socketPath: `${dir.dir}/p2.sock`,
    pod: 'pod-2',
    network: { allow: [], deny: [], hosts: {} },
    secrets: [{ ...TOKEN, value, hosts: ['y.test'] }],
    ca: runCA,
    onEvent: log.onEvent,
  });
  try {
    const denied = await viaProxy(p2.socketPath, `http://${value}.test/`);
    assert.equal(denied.status, 403);
    assert.equal(denied.body, 'clawpod: egress to [secret:API_TOKEN].test:80 denied by policy (not in network.allow)\n');
    const tunnel = await openTunnel(p2.socketPath, `${value}.test:443`);
    assert.equal(tunnel.status, 403);
    assert.ok(!tunnel.body.includes(value), tunnel.body);
    const ev = log.events.filter((e) => e.data.pod === 'pod-2');
    assert.equal(ev.length, 2);
    assert.ok(!JSON.stringify(ev).includes(value), JSON.stringify(ev));
  } finally {
    await p2.close();
  }
});
