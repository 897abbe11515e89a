// HTTPS through the pod's proxy: a secret's host is terminated with the run's CA and the value
// injected; any other host is a raw tunnel that shows the upstream's own certificate.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { auditEvents, cli, policyFile, tmpDir, workspace } from './helpers.js';

let home: string;
let pki: string;
let server: https.Server;
let port: number;
const seen: (string | undefined)[] = [];
const VALUE = `tls-tok-${Math.random().toString(36).slice(2)}`;

/** A test CA of our own and a server certificate for svc.test and raw.test, made with openssl. */
function makePki(dir: string): void {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=clawpod test CA');
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=DNS:svc.test,DNS:raw.test\n');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=svc.test');
  run('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '2', '-extfile', 'ext.cnf');
}

before(async () => {
  home = tmpDir('home');
  pki = tmpDir('pki');
  makePki(pki);
  server = https.createServer({ key: fs.readFileSync(path.join(pki, 'srv.key')), cert: fs.readFileSync(path.join(pki, 'srv.pem')) }, (req, res) => {
    seen.push(req.headers.authorization);
    res.end('tls ok\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
after(() => server.close());

test("HTTPS to a secret's host: TLS ends at the proxy (run CA), the value is injected, upstream verified", async () => {
  const p = policyFile(
    [
      'version: 1',
      'network:',
      `  allow: ["svc.test:${port}", "raw.test:${port}"]`,
      '  hosts: { svc.test: 127.0.0.1, raw.test: 127.0.0.1 }',
      `  extraCA: ["${path.join(pki, 'ca.pem')}"]`,
      'secrets:',
      `  - { name: API_TOKEN, from: env:CLAWPOD_TLS_TOKEN, hosts: ["svc.test:${port}"] }`,
    ].join('\n'),
  );
  const ws = workspace({ 'testca.pem': fs.readFileSync(path.join(pki, 'ca.pem')) });
  const script = [
    // The secret's host: the pod trusts the run CA through CURL_CA_BUNDLE.
    `curl -sS --max-time 10 -H "Authorization: Bearer $API_TOKEN" https://svc.test:${port}/`,
    // Another host: a raw tunnel, so only the upstream's real CA verifies it...
    `curl -sS --max-time 10 --cacert testca.pem https://raw.test:${port}/ && echo RAW-OK`,
    // ...and the run CA does not (nobody impersonates hosts without secrets).
    `curl -sS --max-time 10 https://raw.test:${port}/ >/dev/null 2>&1 || echo RUNCA-REFUSED`,
    'test -r "$SSL_CERT_FILE" && echo CA-FILE-READABLE',
    // Another client that honours the proxy variables (as third-party agents do): Python's urllib.
    `python3 -c 'import os, urllib.request as u; r = u.Request("https://svc.test:${port}/py", headers={"Authorization": "Bearer " + os.environ["API_TOKEN"]}); print(u.urlopen(r).read().decode().strip(), "from python")'`,
  ].join('; ');
  const r = await cli(['exec', '--policy', p, '--', 'sh', '-c', script], { home, cwd: ws, env: { CLAWPOD_TLS_TOKEN: VALUE } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^tls ok$/m);
  assert.match(r.stdout, /RAW-OK/);
  assert.match(r.stdout, /RUNCA-REFUSED/);
  assert.match(r.stdout, /CA-FILE-READABLE/);
  assert.equal(seen[0], `Bearer ${VALUE}`, 'the upstream got the real value over TLS');
  assert.match(r.stdout, /^tls ok from python$/m);
  assert.equal(seen[2], `Bearer ${VALUE}`, 'and from the Python client too');
  assert.equal(seen.length, 3);
  const events = auditEvents(home, r.runId!);
  assert.ok(events.some((e) => e.type === 'secret.use' && e.data.host === 'svc.test'));
  assert.ok(!fs.readFileSync(path.join(home, 'runs', r.runId!, 'audit.jsonl')).includes(VALUE));
  assert.ok(!r.stdout.includes(VALUE) && !r.stderr.includes(VALUE));
  assert.deepEqual(
    fs.readdirSync('/run/clawpod/egress').filter((f) => f.startsWith(r.runId!)),
    [],
    'socket and CA bundle removed',
  );
});
