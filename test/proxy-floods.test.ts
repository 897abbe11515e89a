// A hostile pod against its own egress proxy: it talks to the proxy's socket directly (not
// through the forwarder), holds thousands of connections, pipelines denied requests, fills the
// audit log, and sends requests to upstreams that cannot be reached. clawpod must stay alive
// and bounded, record what happened, and end the run normally.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { auditEvents, cli, policyFile, tmpDir, workspace } from './helpers.js';

let home: string;
let echo: net.Server;
let echoPort: number;
let svc: http.Server;
let svcPort: number;
let closedPort: number;
const echoSockets = new Set<net.Socket>();

before(async () => {
  home = tmpDir('home');
  echo = net.createServer((s) => {
    echoSockets.add(s);
    s.on('close', () => echoSockets.delete(s));
    s.on('error', () => s.destroy());
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoPort = (echo.address() as AddressInfo).port;
  svc = http.createServer((req, res) => res.end('ok\n'));
  await new Promise<void>((r) => svc.listen(0, '127.0.0.1', r));
  svcPort = (svc.address() as AddressInfo).port;
  // A port that was just free and is closed now: connecting to it is refused.
  const tmp = net.createServer();
  await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
  closedPort = (tmp.address() as AddressInfo).port;
  await new Promise<void>((r) => tmp.close(() => r()));
});
after(() => {
  for (const s of echoSockets) s.destroy();
  echo.close();
  svc.closeAllConnections();
  svc.close();
});

const policy = () =>
  policyFile(
    [
      'version: 1',
      'network:',
      `  allow: ["echo.test:${echoPort}", "svc.test:${svcPort}", "unreach.test", "closed.test:${closedPort}"]`,
      // 224.0.0.1 is multicast: a TCP connect to it fails at once with ENETUNREACH.
      '  hosts: { echo.test: 127.0.0.1, svc.test: 127.0.0.1, unreach.test: 224.0.0.1, closed.test: 127.0.0.1 }',
    ].join('\n'),
  );

/** Python in the pod, talking to the proxy's unix socket itself. */
const py = (body: string) => `import socket, sys, time\nSOCK = '/run/clawpod/proxy.sock'\n${body}`;

function fdCount(pid: number): number {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

function egressFiles(runId: string): string[] {
  const dir = '/run/clawpod/egress';
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.includes(runId)) : [];
}

/** Sum of net.deny events, each standing for data.count requests (1 when not coalesced). */
function denials(events: { type: string; data: Record<string, unknown> }[], host: string): number {
  return events.filter((e) => e.type === 'net.deny' && e.data.host === host).reduce((n, e) => n + (Number(e.data.count) || 1), 0);
}

describe('proxy floods', () => {
  test('5000 held connections: clawpod stays bounded and alive, the run ends normally', async (t) => {
    const script = py(`
held = []
for i in range(5000):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(SOCK)
        s.sendall(b'CONNECT echo.test:${echoPort} HTTP/1.1\\r\\nHost: echo.test\\r\\n\\r\\n')
        held.append(s)
    except OSError:
        s.close()
print('HOLDING', len(held), flush=True)
time.sleep(3)
ok = refused = 0
for s in held:
    s.settimeout(5)
    try:
        head = s.recv(64)
    except OSError:
        head = b''
    if head.startswith(b'HTTP/1.1 200'): ok += 1
    elif head.startswith(b'HTTP/1.1 503'): refused += 1
print('RESULT', ok, refused, flush=True)
`);
    let peak = 0;
    let clawpod = 0;
    const r = await cli(['exec', '--policy', policy(), '--', 'python3', '-c', script], {
      home,
      cwd: workspace(),
      timeoutMs: 120_000,
      onSpawn: (child) => {
        clawpod = child.pid ?? 0;
        child.stdout?.on('data', (d: Buffer) => {
          if (!d.toString().includes('HOLDING')) return;
          // Sampled a few times while the pod holds everything it could open.
          for (const ms of [200, 1000, 2000])
            setTimeout(() => {
              peak = Math.max(peak, fdCount(clawpod));
            }, ms);
        });
      },
    });
    assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr.slice(-2000)}`);
    const m = /RESULT (\d+) (\d+)/.exec(r.stdout);
    assert.ok(m, r.stdout);
    const [ok, refused] = [Number(m[1]), Number(m[2])];
    t.diagnostic(`clawpod peak descriptors ${peak}; tunnels opened ${ok}, refused 503 ${refused}`);
    assert.ok(peak > 0, 'the clawpod process was sampled');
    assert.ok(peak < 1500, `clawpod held ${peak} descriptors while the pod held its connections`);
    assert.ok(ok <= 256, `${ok} tunnels were opened (the cap is 256)`);
    assert.ok(refused > 0, 'connections over the cap are answered 503');
    const events = auditEvents(home, r.runId!);
    assert.ok(denials(events, '') >= 1, 'the refused connections are recorded');
    assert.ok(events.filter((e) => e.type === 'net.deny').length < 50, 'and coalesced');
    const v = await cli(['audit', 'verify', r.runId!], { home });
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.deepEqual(egressFiles(r.runId!), []);
  });

  test('pipelined denials for 4 s: the audit stays small, the counts add up, verify works', async (t) => {
    const script = py(`
answered = 0
end = time.time() + 4
while time.time() < end:
    s = socket.socket(socket.AF_UNIX)
    s.connect(SOCK)
    s.sendall(b'GET http://denied.test/ HTTP/1.1\\r\\nHost: denied.test\\r\\n\\r\\n' * 50)
    data = b''
    while True:
        c = s.recv(65536)
        if not c: break
        data += c
    answered += data.count(b'HTTP/1.1 403')
    s.close()
print('ANSWERED', answered, flush=True)
`);
    const r = await cli(['exec', '--policy', policy(), '--', 'python3', '-c', script], { home, cwd: workspace(), timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    const answered = Number(/ANSWERED (\d+)/.exec(r.stdout)?.[1]);
    assert.ok(answered > 500, `the pod got ${answered} refusals`);
    const size = fs.statSync(path.join(home, 'runs', r.runId!, 'audit.jsonl')).size;
    t.diagnostic(`${answered} refusals read by the pod; audit ${size} bytes`);
    assert.ok(size < 256 * 1024, `the audit grew to ${size} bytes for ${answered} identical denials`);
    // Node parses every pipelined request, also those after the refusal that closes the
    // connection: the proxy refuses (and counts) more requests than the pod reads answers to.
    const events = auditEvents(home, r.runId!);
    assert.ok(denials(events, 'denied.test') >= answered, 'every refusal is counted');
    assert.ok(events.filter((e) => e.type === 'net.deny').length < 100, 'in a few coalesced events');
    const v = await cli(['audit', 'verify', r.runId!], { home });
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });

  test('an audit that reaches its byte cap ends in limit.hit {cap: audit} and the pod is stopped', async () => {
    // Allowed requests are not coalesced: each is one net.allow event.
    const script = py(`
n = 0
end = time.time() + 30
while time.time() < end:
    s = socket.socket(socket.AF_UNIX)
    s.connect(SOCK)
    s.sendall(b'GET http://svc.test:${svcPort}/x HTTP/1.1\\r\\nHost: svc.test\\r\\nConnection: close\\r\\n\\r\\n')
    while s.recv(65536): pass
    s.close()
    n += 1
print('SURVIVED', n, flush=True)
`);
    const cap = 200_000;
    const r = await cli(['exec', '--policy', policy(), '--', 'python3', '-c', script], {
      home,
      cwd: workspace(),
      timeoutMs: 90_000,
      env: { CLAWPOD_AUDIT_MAX_BYTES: String(cap) },
    });
    assert.doesNotMatch(r.stdout, /SURVIVED/, 'the pod did not get to finish its 30 s of unrecorded requests');
    assert.equal(r.code, 137, r.stderr.slice(-2000));
    const file = path.join(home, 'runs', r.runId!, 'audit.jsonl');
    assert.ok(fs.statSync(file).size < cap + 64 * 1024, `audit is ${fs.statSync(file).size} bytes`);
    const events = auditEvents(home, r.runId!);
    const hit = events.find((e) => e.type === 'limit.hit' && e.data.cap === 'audit');
    assert.ok(hit, 'limit.hit {cap: audit} is recorded');
    assert.equal(hit.data.limit, cap);
    assert.equal(events.at(-1)?.type, 'run.end');
    const v = await cli(['audit', 'verify', r.runId!], { home });
    assert.equal(v.code, 0, v.stdout + v.stderr);
    const show = await cli(['runs', 'show', r.runId!], { home });
    assert.match(show.stdout, /limit hit: audit/);
  });

  test('unreachable and refusing upstreams: 502 to the pod, an event, clawpod survives, egress files go', async () => {
    const curl = (url: string, extra = '') => `curl -s -o /dev/null --max-time 10 ${extra} -w "%{http_code}\\n" ${url}`;
    const script = [
      curl('http://unreach.test/'),
      curl('https://unreach.test/', '-k'),
      curl(`http://closed.test:${closedPort}/`),
      curl(`http://svc.test:${svcPort}/still-working`),
      'echo FINISHED',
    ].join('; ');
    const r = await cli(['exec', '--policy', policy(), '--', 'sh', '-c', script], { home, cwd: workspace() });
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    assert.match(r.stdout, /FINISHED/);
    const codes = r.stdout.split('\n').filter((l) => /^\d{3}$/.test(l));
    // curl prints 000 for an HTTPS CONNECT refused with a 502 (the tunnel never opened).
    assert.deepEqual(codes, ['502', '000', '502', '200'], r.stdout);
    const events = auditEvents(home, r.runId!);
    const failed = events.filter((e) => e.data.status === 502).map((e) => `${e.data.host} ${String(e.data.reason)}`);
    assert.equal(failed.length, 3, failed.join('\n'));
    assert.match(failed.join('\n'), /ENETUNREACH/);
    assert.match(failed.join('\n'), /ECONNREFUSED/);
    assert.equal(events.at(-1)?.type, 'run.end');
    assert.deepEqual(egressFiles(r.runId!), []);
  });
});
