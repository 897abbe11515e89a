// The pod's one way out, end to end through real pods: the proxy variables, the allowlist, and
// a scoped secret that the pod holds only as a placeholder.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { auditEvents, cli, policyFile, tmpDir, workspace } from './helpers.js';

let home: string;
let server: http.Server;
let port: number;
const seen: { url: string; auth: string | undefined }[] = [];
const VALUE = `tok-${Math.random().toString(36).slice(2)}-real`;

before(async () => {
  home = tmpDir('home');
  server = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', auth: req.headers.authorization });
    res.end(`hello from svc; you sent ${req.headers.authorization ?? 'nothing'}\n`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
after(() => server.close());

const netPolicy = (extra = '') =>
  policyFile(['version: 1', 'network:', `  allow: ["svc.test:${port}"]`, '  hosts: { svc.test: 127.0.0.1, other.test: 127.0.0.1 }', extra].join('\n'));

const curl = (url: string, extra = '') => `curl -s -S --max-time 10 ${extra} "${url}"`;

describe('egress', () => {
  test('strict policy: no proxy variables, no way out', async () => {
    const r = await cli(['exec', '--', 'sh', '-c', `env | grep -ci proxy; ${curl(`http://127.0.0.1:${port}/`)} || echo BLOCKED`], { home, cwd: workspace() });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^0$/m);
    assert.match(r.stdout, /BLOCKED/);
    assert.equal(seen.length, 0);
  });

  test('an allowed host is reached through the proxy and logged; others get a 403 that says why', async () => {
    const before = seen.length;
    const script = [
      curl(`http://svc.test:${port}/ok`),
      curl('http://other.test/', '-o /dev/null -w "%{http_code} %header{x-clawpod-deny}\\n"'),
      curl(`http://127.0.0.1:${port}/direct`, '-o /dev/null -w "%{http_code}\\n"'),
      `curl -s --noproxy '*' --max-time 5 http://127.0.0.1:${port}/bypass || echo BYPASS-FAILED`,
    ].join('; ');
    const r = await cli(['exec', '--policy', netPolicy(), '--', 'sh', '-c', script], { home, cwd: workspace() });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /hello from svc/);
    assert.match(r.stdout, /^403 not in network\.allow/m);
    assert.match(r.stdout, /^403$/m, 'an IP literal is refused unless listed');
    assert.match(r.stdout, /BYPASS-FAILED/, 'ignoring the proxy leads nowhere');
    assert.deepEqual(
      seen.slice(before).map((s) => s.url),
      ['/ok'],
    );
    const events = auditEvents(home, r.runId!);
    const allow = events.filter((e) => e.type === 'net.allow');
    assert.equal(allow.length, 1);
    assert.equal(allow[0].data.host, 'svc.test');
    assert.equal(allow[0].data.status, 200);
    const deny = events.filter((e) => e.type === 'net.deny').map((e) => e.data.host);
    assert.ok(deny.includes('other.test') && deny.includes('127.0.0.1'), `denied: ${deny}`);
    const show = await cli(['runs', 'show', r.runId!], { home });
    assert.match(show.stdout, /outbound:\s+1 allowed, 2 denied/);
  });

  test('a scoped secret: the pod holds a placeholder, the server gets the value, nothing logs it', async () => {
    const before = seen.length;
    const p = netPolicy(`secrets:\n  - { name: API_TOKEN, from: env:CLAWPOD_TEST_API_TOKEN, hosts: ["svc.test:${port}"] }`);
    const script =
      `echo "pod has $API_TOKEN"; ${curl(`http://svc.test:${port}/q`, '-H "Authorization: Bearer $API_TOKEN" -o echo.txt')}; cat echo.txt; ` +
      curl(`http://svc.test:${port}/q?key=$API_TOKEN`, '-o /dev/null -w "%{http_code} %header{x-clawpod-deny}\\n"');
    const r = await cli(['exec', '--policy', p, '--', 'sh', '-c', script], { home, cwd: workspace(), env: { CLAWPOD_TEST_API_TOKEN: VALUE } });
    assert.equal(r.code, 0, r.stderr);
    const got = seen.slice(before);
    assert.equal(got.length, 1);
    assert.equal(got[0].auth, `Bearer ${VALUE}`, 'the upstream received the real value in the header');
    assert.equal(got[0].url, '/q');
    // Header values only: a placeholder in the URL is refused (it could be echoed back elsewhere).
    assert.match(r.stdout, /^403 secret API_TOKEN may go only in credential header values .*; its placeholder was in the query/m);
    assert.match(r.stdout, /pod has clawpod-secret-API_TOKEN-/);
    assert.ok(!r.stdout.includes(VALUE) && !r.stderr.includes(VALUE), "the value never reaches the pod's output");
    const events = auditEvents(home, r.runId!);
    assert.ok(events.some((e) => e.type === 'secret.use' && e.data.name === 'API_TOKEN' && e.data.host === 'svc.test'));
    for (const f of [path.join(home, 'runs', r.runId!, 'audit.jsonl'), path.join(home, 'clawpod.db')]) {
      assert.ok(!fs.readFileSync(f).includes(VALUE), `${path.basename(f)} never holds the value`);
    }
    // The upstream echoed the value back; whatever the pod wrote of it must not carry it.
    const diff = await cli(['runs', 'diff', r.runId!], { home });
    assert.match(diff.stdout, /echo\.txt/);
    assert.ok(!diff.stdout.includes(VALUE), 'the diff never holds the value');
  });

  test('the placeholder reaches an unscoped host unchanged', async () => {
    const before = seen.length;
    const p = netPolicy(`secrets:\n  - { name: API_TOKEN, from: env:CLAWPOD_TEST_API_TOKEN, hosts: ["elsewhere.test"] }`);
    const r = await cli(['exec', '--policy', p, '--', 'sh', '-c', curl(`http://svc.test:${port}/u`, '-H "Authorization: Bearer $API_TOKEN"')], {
      home,
      cwd: workspace(),
      env: { CLAWPOD_TEST_API_TOKEN: VALUE },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(seen.slice(before)[0].auth ?? '', /^Bearer clawpod-secret-API_TOKEN-/);
    assert.ok(!auditEvents(home, r.runId!).some((e) => e.type === 'secret.use'));
  });

  test('a secret whose source is missing fails the run before it starts, naming the secret', async () => {
    const p = netPolicy('secrets:\n  - { name: API_TOKEN, from: env:CLAWPOD_TEST_NOT_SET, hosts: ["svc.test"] }');
    const r = await cli(['exec', '--policy', p, '--', 'true'], { home, cwd: workspace() });
    assert.equal(r.code, 125);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /secret API_TOKEN: environment variable CLAWPOD_TEST_NOT_SET is not set/);
    assert.equal(r.runId, null);
  });
});
