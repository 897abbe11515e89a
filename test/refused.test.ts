// The end-of-run line that says what the proxy refused, so a failing install explains itself:
// counts per host (coalesced refusals at their real count), host names escaped (the pod
// chooses them), nothing when nothing was refused.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { cli, policyFile, tmpDir, workspace } from './helpers.js';

let home: string;
let server: http.Server;
let port: number;

before(async () => {
  home = tmpDir('home');
  server = http.createServer((_req, res) => res.end('ok\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
after(() => server.close());

const policy = () => policyFile(`version: 1\nnetwork:\n  allow: ["svc.test:${port}"]\n  hosts: { svc.test: 127.0.0.1 }\n`);
const curl = (url: string) => `curl -s -o /dev/null --max-time 10 "${url}"`;
const exec = (script: string, json = false) =>
  cli(['exec', '--policy', policy(), ...(json ? ['--json'] : []), '--', 'bash', '-c', `${script}; true`], { home, cwd: workspace() });

describe('refused summary', () => {
  test('lists each refused host with its count, most first, on one stderr line and in --json', async () => {
    const script = [curl(`http://svc.test:${port}/`), ...Array(3).fill(curl('http://nodejs.org/dist/')), curl('https://github.com/x')].join('; ');
    const r = await exec(script, true);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('clawpod: refused:'));
    assert.equal(lines.length, 1, r.stderr);
    assert.equal(lines[0], 'clawpod: refused: nodejs.org (3), github.com (1); allow hosts with network.allow');
    const summary = JSON.parse(r.stderr.trim().split('\n').at(-1) as string);
    assert.deepEqual(summary.refused, { 'nodejs.org': 3, 'github.com': 1 });
  });

  test('a flood of refusals is counted in full, not as the coalesced events', async () => {
    const r = await exec(`i=0; while [ $i -lt 40 ]; do ${curl('http://registry.example.test/')}; i=$((i+1)); done`, true);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^clawpod: refused: registry\.example\.test \(40\); allow hosts with network\.allow$/m);
  });

  test('nothing refused: no line', async () => {
    const r = await exec(curl(`http://svc.test:${port}/`), true);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /^clawpod: refused/m);
    assert.deepEqual(JSON.parse(r.stderr.trim().split('\n').at(-1) as string).refused, {});
  });

  test('a pod-chosen host name is shown quoted and escaped: it cannot fake a count or drive the terminal', async () => {
    // Raw CONNECTs through the in-pod forwarder (curl would not send such names). Node's HTTP
    // parser refuses control and non-ASCII bytes in a target before the proxy sees one (the
    // unit test covers their escaping); what it lets through is quoted.
    const connect = (target: string) =>
      `exec 3<>/dev/tcp/127.0.0.1/3128; printf 'CONNECT ${target} HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' >&3; head -c 100 <&3 >/dev/null; exec 3<&-`;
    // The proxy may close on a bad target before printf is done: an EPIPE, not the shell's death.
    const r = await exec(['trap "" PIPE', connect('ev\\033[2Jil:443'), connect('x),fake.test(9:443')].join('; '));
    assert.equal(r.code, 0, r.stderr);
    const line = r.stderr.split('\n').find((l) => l.startsWith('clawpod: refused:'));
    assert.ok(line, r.stderr);
    assert.ok(!/[\x00-\x1f\x7f]/.test(line), `no raw control character: ${JSON.stringify(line)}`);
    assert.equal(line, 'clawpod: refused: "x),fake.test(9:443" (1); allow hosts with network.allow');
  });

  test('many refused hosts: the list is capped', async () => {
    const hosts = Array.from({ length: 9 }, (_, i) => `h${i}.example.test`);
    const r = await exec(hosts.map((h) => curl(`http://${h}/`)).join('; '));
    const line = r.stderr.split('\n').find((l) => l.startsWith('clawpod: refused:')) ?? '';
    assert.match(line, /and 4 more hosts/);
    assert.ok(line.length < 300, line);
  });
});
