// `clawpod serve` through the real binary (`./bin/clawpod serve --listen 127.0.0.1:0`), a private
// CLAWPOD_HOME each, on loopback: the token and the files it writes, the Host/Origin checks, what
// POST /v1/runs refuses, a run end to end (events, record, diff, apply, audit), the queue
// (concurrency, FIFO per workspace, 429, cancel), SIGTERM's drain and a restart's queued runs, and
// --listen's errors. Real pods (bwrap), real SQLite, real sockets; no timed asserts (ordering is
// read from the audit chains' timestamps).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cli, eventually, tmpDir } from './helpers.js';
import { call, type Ev, exec, mkdir, record, type Res, type Srv, serve, stop, stopAll, TERMINAL, waitFor } from './serve-kit.js';

// ---- the server process and HTTP: serve-kit.ts ----

after(stopAll);

/** An error answer: its status, {"error": {"status", "message"}} and nothing else, one line. */
function isError(r: Res, status: number, message?: RegExp): void {
  assert.equal(r.status, status, r.text);
  assert.match(String(r.headers['content-type']), /^application\/json/, r.text);
  assert.deepEqual(Object.keys(r.json ?? {}), ['error'], r.text);
  assert.deepEqual(Object.keys(r.json.error).sort(), ['message', 'status'], r.text);
  assert.equal(r.json.error.status, status, r.text);
  assert.equal(typeof r.json.error.message, 'string');
  assert.ok(r.json.error.message.length > 0 && !/[\r\n]/.test(r.json.error.message), `one line: ${r.text}`);
  assert.doesNotMatch(r.json.error.message, /internal error|^\s+at /m);
  if (message) assert.match(r.json.error.message, message);
}

async function submit(s: Srv, body: Record<string, unknown>): Promise<string> {
  const r = await call(s, 'POST', '/v1/runs', { body });
  assert.equal(r.status, 202, r.text);
  assert.match(r.json.id, /^r-\d{8}-\d{6}-[0-9a-f]{6}$/);
  assert.ok(['queued', 'running'].includes(r.json.status), r.text);
  assert.deepEqual(Object.keys(r.json).sort(), ['id', 'status']);
  return r.json.id as string;
}

/** Statuses of all runs from one GET /v1/runs (one store read: a consistent snapshot). */
async function statuses(s: Srv): Promise<Record<string, string>> {
  const r = await call(s, 'GET', '/v1/runs?limit=1000');
  assert.equal(r.status, 200, r.text);
  return Object.fromEntries((r.json.runs as { id: string; status: string }[]).map((x) => [x.id, x.status]));
}

/** GET /v1/runs/ID/events until the server ends the stream. */
function events(s: Srv, id: string, onEvent?: (e: Ev) => void): Promise<{ contentType: string; events: Ev[] }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port: s.port, path: `/v1/runs/${id}/events`, headers: { authorization: `Bearer ${s.token}` }, agent: false },
      (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`events: ${res.statusCode}`));
          res.resume();
          return;
        }
        const out: Ev[] = [];
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          buf += c;
          for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
            const frame = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let type = 'message';
            const data: string[] = [];
            for (const line of frame.split('\n')) {
              if (line.startsWith('event: ')) type = line.slice(7);
              else if (line.startsWith('data: ')) data.push(line.slice(6));
            }
            if (!data.length) continue; // a keepalive comment
            const e = { type, data: JSON.parse(data.join('\n')) };
            out.push(e);
            onEvent?.(e);
          }
        });
        res.on('end', () => resolve({ contentType: String(res.headers['content-type']), events: out }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(90_000, () => req.destroy(new Error(`events of ${id}: the stream did not end in 90 s`)));
  });
}

interface Line {
  seq: number;
  ts: string;
  type: string;
  // biome-ignore lint/suspicious/noExplicitAny: audit payloads are checked field by field
  data: any;
  prev: string;
  hash: string;
}

async function auditOf(s: Srv, id: string): Promise<Line[]> {
  const r = await call(s, 'GET', `/v1/runs/${id}/audit`);
  assert.equal(r.status, 200, r.text);
  assert.match(String(r.headers['content-type']), /^application\/x-ndjson/);
  return r.text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line);
}

const auditFile = (home: string, id: string) => path.join(home, 'runs', id, 'audit.jsonl');

function chainOnDisk(home: string, id: string): Line[] {
  return fs
    .readFileSync(auditFile(home, id), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line);
}

const tsOf = (lines: Line[], type: string) => {
  const l = lines.find((x) => x.type === type);
  assert.ok(l, `no ${type} in the chain`);
  return Date.parse(l.ts);
};

/** A record read by the CLI (for a home whose server has exited). */
// biome-ignore lint/suspicious/noExplicitAny: a run record as runs show --json prints it
async function showRun(home: string, id: string): Promise<any> {
  const r = await cli(['runs', 'show', id, '--json'], { home });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

// ---- one server for the edge, the requests, a run, same-workspace order and cancel ----

describe('serve (--concurrency 2)', () => {
  let s: Srv;
  let root: string;
  let outside: string;
  before(async () => {
    root = tmpDir('root');
    outside = tmpDir('outside');
    for (const d of ['e2e', 'valid', 'same', 'cancel', 'sub']) mkdir(path.join(root, d));
    fs.symlinkSync(outside, path.join(root, 'out-link'));
    s = await serve(['--concurrency', '2', '--workspaces', root]);
  });
  after(async () => {
    if (s) await stop(s);
  });

  test('serve.token and serve.json are 0600, serve.json names the URL and pid, stderr says where it serves', () => {
    for (const f of ['serve.token', 'serve.json']) assert.equal(fs.statSync(path.join(s.home, f)).mode & 0o777, 0o600, f);
    const info = JSON.parse(fs.readFileSync(path.join(s.home, 'serve.json'), 'utf8'));
    assert.deepEqual(Object.keys(info).sort(), ['pid', 'url']);
    assert.equal(info.pid, s.child.pid);
    assert.match(info.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(s.port, 0);
    assert.match(s.token, /^[0-9a-f]{64}$/);
    assert.ok(s.stderr().split('\n').includes(`clawpod: serving on ${info.url}`), s.stderr());
  });

  test('health needs no token; every other route without or with a wrong token is 401', async () => {
    const h = await call(s, 'GET', '/v1/health', { token: null });
    assert.equal(h.status, 200, h.text);
    assert.equal(h.json.ok, true);
    const id = 'r-20000101-000000-abcdef';
    const routes: [string, string][] = [
      ['GET', '/v1/runs'],
      ['POST', '/v1/runs'],
      ['GET', `/v1/runs/${id}`],
      ['GET', `/v1/runs/${id}/events`],
      ['GET', `/v1/runs/${id}/diff`],
      ['GET', `/v1/runs/${id}/logs`],
      ['GET', `/v1/runs/${id}/audit`],
      ['GET', `/v1/runs/${id}/audit/verify`],
      ['POST', `/v1/runs/${id}/apply`],
      ['POST', `/v1/runs/${id}/discard`],
      ['POST', `/v1/runs/${id}/cancel`],
      ['POST', '/v1/policy/explain'],
      ['GET', '/v1/schedules'],
      ['POST', '/v1/schedules'],
      ['DELETE', '/v1/schedules/s-1'],
      ['GET', '/v1/no-such-route'],
    ];
    const wrong = s.token.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    for (const [method, p] of routes) {
      for (const [why, headers] of [
        ['no token', {}],
        ['a wrong token', { authorization: `Bearer ${wrong}` }],
        ['a short token', { authorization: `Bearer ${s.token.slice(0, 10)}` }],
        ['another scheme', { authorization: `Basic ${Buffer.from(`x:${s.token}`).toString('base64')}` }],
      ] as [string, Record<string, string>][]) {
        const r = await call(s, method, p, { token: null, headers, ...(method === 'POST' ? { body: {} } : {}) });
        isError(r, 401, /bearer token/);
        assert.match(String(r.headers['www-authenticate']), /^Bearer/, `${method} ${p} with ${why}`);
      }
    }
    // The same routes with the token get past the check (the control).
    const ok = await call(s, 'GET', '/v1/runs');
    assert.equal(ok.status, 200, ok.text);
    isError(await call(s, 'GET', `/v1/runs/${id}`), 404);
  });

  test('DNS rebinding and cross-site requests are refused: a foreign Host 421, a foreign Origin or cross-site 403', async () => {
    for (const p of ['/v1/health', '/v1/runs']) {
      isError(await call(s, 'GET', p, { headers: { host: `evil.example:${s.port}` } }), 421, /Host/);
      isError(await call(s, 'GET', p, { headers: { origin: 'http://evil.example' } }), 403, /cross-origin/);
      isError(await call(s, 'GET', p, { headers: { origin: `http://evil.example:${s.port}` } }), 403);
      isError(await call(s, 'GET', p, { headers: { origin: 'null' } }), 403);
      isError(await call(s, 'GET', p, { headers: { 'sec-fetch-site': 'cross-site' } }), 403, /cross-site/);
      isError(await call(s, 'GET', p, { headers: { 'sec-fetch-site': 'same-site' } }), 403);
    }
    // A POST from a page elsewhere never reaches the queue.
    isError(await call(s, 'POST', '/v1/runs', { body: exec(path.join(root, 'valid'), 'true'), headers: { origin: 'http://evil.example' } }), 403);
    // The server's own origin, and Host forms of its own address, are fine.
    const own: Record<string, string>[] = [
      { origin: s.url },
      { origin: `http://localhost:${s.port}` },
      { host: `localhost:${s.port}` },
      { 'sec-fetch-site': 'same-origin' },
      { 'sec-fetch-site': 'none' },
    ];
    for (const headers of own) {
      const r = await call(s, 'GET', '/v1/runs', { headers });
      assert.equal(r.status, 200, `${JSON.stringify(headers)}: ${r.text}`);
    }
  });

  test('POST /v1/runs: a body that is not a run request is 400/413/415 with one line', async () => {
    const ws = path.join(root, 'valid');
    isError(await call(s, 'POST', '/v1/runs', { raw: '{"kind": "exec",', headers: { 'content-type': 'application/json' } }), 400, /not valid JSON/);
    isError(await call(s, 'POST', '/v1/runs', { raw: JSON.stringify(exec(ws, 'true')), headers: { 'content-type': 'text/plain' } }), 415, /Content-Type/);
    isError(await call(s, 'POST', '/v1/runs', { raw: JSON.stringify(exec(ws, 'true')) }), 415);
    const big = JSON.stringify(exec(ws, 'x'.repeat((1 << 20) + 10)));
    isError(await call(s, 'POST', '/v1/runs', { raw: big, headers: { 'content-type': 'application/json' } }), 413, /over 1048576 bytes/);
    // Without a Content-Length (chunked), the cap holds as it is read.
    isError(await call(s, 'POST', '/v1/runs', { raw: big, headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }), 413);
    isError(await call(s, 'POST', '/v1/runs', { body: { ...exec(ws, 'true'), comand: ['true'] } }), 400, /unknown field "comand"/);
    isError(await call(s, 'POST', '/v1/runs', { body: { command: ['true'], workspace: ws } }), 400, /kind is required/);
    isError(await call(s, 'POST', '/v1/runs', { body: { kind: 'shell', command: ['true'] } }), 400, /kind/);
    isError(await call(s, 'POST', '/v1/runs', { body: { kind: 'exec', command: 'true', workspace: ws } }), 400, /command/);
    isError(await call(s, 'POST', '/v1/runs', { body: { kind: 'exec', command: [1], workspace: ws } }), 400, /command/);
    isError(await call(s, 'POST', '/v1/runs', { body: { kind: 'exec', command: [], workspace: ws } }), 400, /command/);
    isError(await call(s, 'POST', '/v1/runs', { body: [exec(ws, 'true')] }), 400, /JSON object/);
    // Nothing of these became a run.
    assert.deepEqual(await statuses(s), {});
  });

  test('POST /v1/runs: a workspace outside the roots (also through a symlink) 403, a relative one 400', async () => {
    isError(await call(s, 'POST', '/v1/runs', { body: exec(outside, 'true') }), 403, /not under this server's workspace roots/);
    isError(await call(s, 'POST', '/v1/runs', { body: exec(path.join(root, '..'), 'true') }), 403);
    isError(await call(s, 'POST', '/v1/runs', { body: exec(`${root}/../${path.basename(outside)}`, 'true') }), 403);
    // A symlink inside the root that points out of it: its real path decides.
    isError(await call(s, 'POST', '/v1/runs', { body: exec(path.join(root, 'out-link'), 'true') }), 403, /not under/);
    isError(await call(s, 'POST', '/v1/runs', { body: exec('valid', 'true') }), 400, /absolute path/);
    isError(await call(s, 'POST', '/v1/runs', { body: exec(path.join(root, 'no-such-dir'), 'true') }), 400, /does not exist/);
    assert.deepEqual(await statuses(s), {});
  });

  test('POST /v1/runs: inline policies are the safe subset; names come from $CLAWPOD_HOME/policies; paths only under the roots', async () => {
    const ws = path.join(root, 'valid');
    const post = (policy: unknown) => call(s, 'POST', '/v1/runs', { body: exec(ws, 'true', { policy }) });
    isError(await post({ secrets: [{ name: 'T', from: 'env:HOME', hosts: ['api.example.com'] }] }), 400, /inline policy cannot name secrets/);
    isError(await post({ network: { hosts: { 'svc.test': '127.0.0.1' } } }), 400, /inline policy cannot set network\.hosts/);
    isError(await post({ filesystem: { mounts: [{ host: outside, path: '/data' }] } }), 403, /mount only paths under the workspace roots/);
    // Through a symlink under the root, the mount is where it really is.
    isError(await post({ filesystem: { mounts: [{ host: path.join(root, 'out-link'), path: '/data' }] } }), 403, /under the workspace roots/);
    isError(await post({ settings: { git: 'inherit' } }), 400, /cannot inherit settings\.git/);
    isError(await post({ network: { extraCA: [path.join(root, 'sub')] } }), 400);
    isError(await post({ resorces: { memory: '256Mi' } }), 400, /unknown key "resorces" at top level \(did you mean resources\?/);
    isError(await post({ resources: { memroy: '256Mi' } }), 400, /did you mean memory\?/);
    isError(await post('no-such-policy'), 400, /no policy named no-such-policy/);
    const elsewhere = path.join(outside, 'p.yaml');
    fs.writeFileSync(elsewhere, 'version: 1\n');
    isError(await post(elsewhere), 403, /not under this server's workspace roots/);
    fs.symlinkSync(elsewhere, path.join(root, 'p-link.yaml'));
    isError(await post(path.join(root, 'p-link.yaml')), 403);
    isError(await post('p.yaml'), 400, /must be "strict", a name/);
    assert.deepEqual(await statuses(s), {}, 'a refused request is no run');

    // The allowed forms run: inline (and a mount under a root), by name, by path under a root.
    mkdir(path.join(s.home, 'policies'), 0o700);
    const named = path.join(s.home, 'policies', 'small.yaml');
    fs.writeFileSync(named, 'version: 1\nresources:\n  memory: 256Mi\n');
    fs.writeFileSync(path.join(root, 'sub', 'hello'), 'hi\n');
    const underRoot = path.join(root, 'policy.yaml');
    fs.writeFileSync(underRoot, 'version: 1\nresources:\n  pids: 64\n');
    const ids = {
      inline: await submit(
        s,
        exec(ws, 'cat /data/hello', { policy: { resources: { memory: '256Mi' }, filesystem: { mounts: [{ host: path.join(root, 'sub'), path: '/data' }] } } }),
      ),
      named: await submit(s, exec(ws, 'true', { policy: 'small' })),
      path: await submit(s, exec(ws, 'true', { policy: underRoot })),
    };
    for (const [how, id] of Object.entries(ids)) {
      const rec = await waitFor(s, id, TERMINAL);
      assert.equal(rec.status, 'done', `${how}: ${JSON.stringify(rec)}`);
      assert.equal(rec.exitCode, 0, how);
    }
    const start = (id: string) => chainOnDisk(s.home, id).find((l) => l.type === 'run.start')?.data;
    assert.equal((await record(s, ids.named)).policySource, named);
    assert.equal(start(ids.named).resources.memoryBytes, 256 * 1024 * 1024);
    assert.equal((await record(s, ids.path)).policySource, underRoot);
    assert.equal(start(ids.path).resources.pids, 64);
    assert.equal(start(ids.inline).resources.memoryBytes, 256 * 1024 * 1024);
  });

  test('a run end to end: 202, live events, the record, diff, apply once, audit and verify', async () => {
    const ws = path.join(root, 'e2e');
    fs.writeFileSync(path.join(ws, 'keep.txt'), 'old\n');
    const id = await submit(s, exec(ws, 'echo a; sleep 1; echo b; sleep 0.5; echo new > new.txt; echo changed > keep.txt'));
    // Live: an output event arrives while the run goes on (its chain has no run.end yet).
    const seenLive: string[] = [];
    const { contentType, events: got } = await events(s, id, (e) => {
      if (e.type === 'output') {
        const chain = fs.existsSync(auditFile(s.home, id)) ? fs.readFileSync(auditFile(s.home, id), 'utf8') : '';
        if (!chain.includes('"type":"run.end"')) seenLive.push(e.data.text);
      }
    });
    assert.match(contentType, /^text\/event-stream/);
    const types = got.map((e) => e.type);
    const out = got.filter((e) => e.type === 'output');
    assert.ok(
      out.some((e) => e.data.stream === 'stdout' && e.data.text.includes('b')),
      `an output event with b: ${JSON.stringify(got)}`,
    );
    assert.ok(seenLive.length > 0, `output arrived before the chain ended: ${JSON.stringify(got)}`);
    const iB = got.findIndex((e) => e.type === 'output' && e.data.text.includes('b'));
    const iA = got.findIndex((e) => e.type === 'output' && e.data.text.includes('a'));
    if (iA >= 0) assert.ok(iA <= iB, 'a before b');
    assert.ok(iB < types.indexOf('run.end'), 'output before run.end');
    assert.equal(types.at(-1), 'run.end', `the stream ends after run.end: ${types.join(' ')}`);
    const chainEvents = got.filter((e) => !['output', 'text', 'tool.output', 'status', 'notice'].includes(e.type));
    assert.equal(chainEvents[0].type, 'run.start');
    assert.deepEqual(
      chainEvents.map((e) => e.data),
      chainOnDisk(s.home, id),
      'the chain events are the audit lines, in order',
    );

    // The record.
    const rec = await record(s, id);
    assert.equal(rec.id, id);
    assert.equal(rec.kind, 'exec');
    assert.equal(rec.status, 'done');
    assert.equal(rec.exitCode, 0);
    assert.equal(rec.filesChanged, 2);
    assert.equal(rec.diffState, 'pending');
    assert.equal(typeof rec.durationMs, 'number');
    assert.ok(rec.durationMs >= 1000, `it slept 1 s: ${rec.durationMs}`);
    assert.ok('costUsd' in rec && rec.costUsd === null, 'an exec has no model cost');
    assert.equal(rec.request, undefined, 'the kept request is not sent back');

    // A finished run's stream replays the whole chain from its first event and ends.
    const replay = await events(s, id);
    const replayChain = replay.events.filter((e) => !['output', 'text', 'tool.output', 'status', 'notice'].includes(e.type));
    assert.deepEqual(
      replayChain.map((e) => e.data),
      chainOnDisk(s.home, id),
    );
    assert.equal(replayChain.at(-1)?.type, 'run.end');
    // Just after its end, the run's live backlog is still kept (a watcher that came late gets
    // its output too), in the order it was printed.
    const replayOut = replay.events.filter((e) => e.type === 'output').map((e) => e.data.text);
    assert.ok(replayOut.join('').startsWith('a\n') || replayOut.length === 0, JSON.stringify(replayOut));

    // Diff, apply (once), discard of an applied run.
    const diff = await call(s, 'GET', `/v1/runs/${id}/diff`);
    assert.equal(diff.status, 200, diff.text);
    assert.match(String(diff.headers['content-type']), /^text\/x-diff/);
    assert.match(diff.text, /new\.txt/);
    assert.match(diff.text, /^\+new$/m);
    assert.match(diff.text, /^-old$/m);
    assert.match(diff.text, /^\+changed$/m);
    assert.ok(!fs.existsSync(path.join(ws, 'new.txt')), 'nothing is written before apply');
    const applied = await call(s, 'POST', `/v1/runs/${id}/apply`);
    assert.equal(applied.status, 200, applied.text);
    assert.equal(applied.json.diffState, 'applied');
    assert.equal(fs.readFileSync(path.join(ws, 'new.txt'), 'utf8'), 'new\n');
    assert.equal(fs.readFileSync(path.join(ws, 'keep.txt'), 'utf8'), 'changed\n');
    isError(await call(s, 'POST', `/v1/runs/${id}/apply`), 409);
    isError(await call(s, 'POST', `/v1/runs/${id}/discard`), 409);
    assert.equal((await record(s, id)).diffState, 'applied');

    // The audit log and its verification.
    const lines = await auditOf(s, id);
    assert.deepEqual(lines, chainOnDisk(s.home, id));
    assert.equal(lines[0].type, 'run.start');
    assert.equal(lines.at(-1)?.type, 'run.end');
    lines.forEach((l, i) => {
      assert.equal(l.seq, i + 1);
      assert.equal(l.prev, i === 0 ? '0'.repeat(64) : lines[i - 1].hash);
    });
    const v = await call(s, 'GET', `/v1/runs/${id}/audit/verify`);
    assert.equal(v.status, 200, v.text);
    assert.deepEqual(v.json, { ok: true, events: lines.length, head: lines.at(-1)?.hash });
  });

  test('a tampered chain does not verify (the verify route checks the file, not the record)', async () => {
    const id = await submit(s, exec(path.join(root, 'valid'), 'true'));
    assert.equal((await waitFor(s, id, TERMINAL)).status, 'done');
    const file = auditFile(s.home, id);
    const text = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(file, text.replace('"exitCode":0', '"exitCode":1'));
    try {
      const v = await call(s, 'GET', `/v1/runs/${id}/audit/verify`);
      assert.equal(v.status, 200, v.text);
      assert.equal(v.json.ok, false, v.text);
      assert.equal(typeof v.json.error, 'string');
    } finally {
      fs.writeFileSync(file, text);
    }
  });

  test('two runs on one workspace never overlap (--concurrency 2): the second starts after the first ends', async () => {
    const ws = path.join(root, 'same');
    const first = await submit(s, exec(ws, 'sleep 2'));
    const second = await submit(s, exec(ws, 'true'));
    // Its stream says it waits, then carries its chain when it runs, and ends.
    const secondEvents = events(s, second);
    // While the first runs, the second waits (read in one snapshot).
    let sawFirstRunning = false;
    for (;;) {
      const st = await statuses(s);
      if (st[first] === 'running') {
        sawFirstRunning = true;
        assert.equal(st[second], 'queued', JSON.stringify(st));
      }
      if (TERMINAL.includes(st[first])) break;
      await new Promise((r) => setTimeout(r, 40));
    }
    assert.ok(sawFirstRunning);
    for (const id of [first, second]) assert.equal((await waitFor(s, id, TERMINAL)).status, 'done');
    const a = chainOnDisk(s.home, first);
    const b = chainOnDisk(s.home, second);
    assert.ok(tsOf(b, 'run.start') >= tsOf(a, 'run.end'), `second started ${b[0].ts}, first ended ${a.at(-1)?.ts}`);
    const got = (await secondEvents).events;
    assert.deepEqual(got[0], { type: 'status', data: { status: 'queued' } });
    // The chain's events, in order; the live-only ones (status, notice, output) come between them.
    const live = new Set(['status', 'notice', 'output', 'text', 'tool.output']);
    assert.deepEqual(
      got.filter((e) => !live.has(e.type)).map((e) => e.data),
      b,
    );
    assert.ok(
      got.some((e) => e.type === 'notice' && String(e.data.line).includes(second)),
      'a watcher that came before the run started still gets what it said (the backlog)',
    );
    assert.equal(got.at(-1)?.type, 'run.end');
  });

  test('cancel: a queued run never starts, a running one ends cancelled (exit 130, its chain verifies), a finished one is 409', async () => {
    const ws = path.join(root, 'cancel');
    const running = await submit(s, exec(ws, 'sleep 30'));
    await waitFor(s, running, ['running']);
    isError(await call(s, 'POST', `/v1/runs/${running}/apply`), 409, /running/);
    const queued = await submit(s, exec(ws, 'echo never'));
    assert.equal((await record(s, queued)).status, 'queued', 'behind the running one (one workspace)');

    const c = await call(s, 'POST', `/v1/runs/${queued}/cancel`);
    assert.equal(c.status, 200, c.text);
    assert.equal(c.json.status, 'cancelled');
    assert.equal((await record(s, queued)).status, 'cancelled');
    const qe = await events(s, queued);
    assert.deepEqual(
      qe.events.map((e) => e.type),
      qe.events.map(() => 'status'),
      `a run that never started has no chain events: ${JSON.stringify(qe.events)}`,
    );
    assert.equal(qe.events.at(-1)?.data.status, 'cancelled');
    isError(await call(s, 'GET', `/v1/runs/${queued}/audit`), 404, /never started/);
    const qv = await call(s, 'GET', `/v1/runs/${queued}/audit/verify`);
    assert.equal(qv.json.ok, false);
    isError(await call(s, 'POST', `/v1/runs/${queued}/cancel`), 409);

    const watching = events(s, running);
    const r = await call(s, 'POST', `/v1/runs/${running}/cancel`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.cancelling, true);
    const rec = await waitFor(s, running, TERMINAL, 30_000);
    assert.equal(rec.status, 'cancelled');
    assert.equal(rec.exitCode, 130);
    const stream = await watching;
    assert.equal(stream.events.at(-1)?.type, 'run.end', 'the watcher sees the end');
    const chain = chainOnDisk(s.home, running);
    assert.equal(chain.at(-1)?.type, 'run.end');
    assert.equal(chain.at(-1)?.data.status, 'cancelled');
    const v = await call(s, 'GET', `/v1/runs/${running}/audit/verify`);
    assert.deepEqual(v.json, { ok: true, events: chain.length, head: chain.at(-1)?.hash });
    isError(await call(s, 'POST', `/v1/runs/${running}/cancel`), 409, /only a queued or running run/);

    // A later run of the workspace runs; the cancelled one still never did.
    const later = await submit(s, exec(ws, 'true'));
    assert.equal((await waitFor(s, later, TERMINAL)).status, 'done');
    const q = await record(s, queued);
    assert.equal(q.status, 'cancelled');
    assert.equal(q.auditPath, null);
    assert.ok(!fs.existsSync(path.join(s.home, 'runs', queued)), 'no run directory');
    isError(await call(s, 'POST', `/v1/runs/${later}/cancel`), 409, /is done/);
  });
});

// ---- the queue's cap ----

describe('serve --concurrency 1 --queue 1', () => {
  let s: Srv;
  let root: string;
  before(async () => {
    root = tmpDir('root');
    for (const d of ['a', 'b', 'c']) mkdir(path.join(root, d));
    s = await serve(['--concurrency', '1', '--queue', '1', '--workspaces', root]);
  });
  after(async () => {
    if (s) await stop(s);
  });

  test('a second run (another workspace) waits until the first ends; a third POST is 429 with Retry-After', async () => {
    const first = await submit(s, exec(path.join(root, 'a'), 'sleep 2'));
    await waitFor(s, first, ['running']);
    const second = await submit(s, exec(path.join(root, 'b'), 'true'));
    const full = await call(s, 'POST', '/v1/runs', { body: exec(path.join(root, 'c'), 'true') });
    isError(full, 429, /queue is full/);
    assert.match(String(full.headers['retry-after']), /^[1-9]\d*$/, 'Retry-After in seconds');
    let sawFirstRunning = false;
    for (;;) {
      const st = await statuses(s);
      assert.equal(Object.keys(st).length, 2, 'the refused one is no run');
      if (st[first] === 'running') {
        sawFirstRunning = true;
        assert.equal(st[second], 'queued', JSON.stringify(st));
      }
      if (TERMINAL.includes(st[first])) break;
      await new Promise((r) => setTimeout(r, 40));
    }
    assert.ok(sawFirstRunning);
    for (const id of [first, second]) assert.equal((await waitFor(s, id, TERMINAL)).status, 'done');
    assert.ok(tsOf(chainOnDisk(s.home, second), 'run.start') >= tsOf(chainOnDisk(s.home, first), 'run.end'));
    // With the queue empty again, a run is taken.
    await submit(s, exec(path.join(root, 'c'), 'true'));
  });
});

test('--queue 0: a run on an idle server is taken (nothing has to wait)', async () => {
  const root = tmpDir('root');
  const s = await serve(['--queue', '0', '--workspaces', root]);
  try {
    const r = await call(s, 'POST', '/v1/runs', { body: exec(root, 'true') });
    assert.equal(r.status, 202, r.text);
    assert.equal((await waitFor(s, r.json.id, TERMINAL)).status, 'done');
  } finally {
    await stop(s);
  }
});

// ---- SIGTERM ----

describe('serve: SIGTERM drains', () => {
  test('a running run finishes, new POSTs get 503, exit 0, serve.json removed; the queued run starts once at the next start', async () => {
    const home = tmpDir('home');
    const root = tmpDir('root');
    for (const d of ['a', 'b']) mkdir(path.join(root, d));
    // The queued run appends to a file through a writable mount: how many times it ran.
    const count = mkdir(path.join(root, 'count'), 0o777);
    const ran = path.join(count, 'ran');
    const args = ['--concurrency', '1', '--workspaces', root];
    const s = await serve(args, home);
    const running = await submit(s, exec(path.join(root, 'a'), 'sleep 2; echo slept'));
    await waitFor(s, running, ['running']);
    const queued = await submit(
      s,
      exec(path.join(root, 'b'), 'echo once >> /count/ran', { policy: { filesystem: { mounts: [{ host: count, path: '/count', mode: 'rw' }] } } }),
    );
    assert.equal((await record(s, queued)).status, 'queued');

    s.child.kill('SIGTERM');
    assert.ok(await eventually(() => s.stderr().includes('SIGTERM: draining'), 10_000), s.stderr());
    const late = await call(s, 'POST', '/v1/runs', { body: exec(path.join(root, 'b'), 'true') }).catch((e: NodeJS.ErrnoException) => e);
    if (late instanceof Error) assert.equal((late as NodeJS.ErrnoException).code, 'ECONNREFUSED', String(late));
    else isError(late, 503, /shutting down/);
    const exit = await s.exited;
    assert.deepEqual(exit, { code: 0, signal: null }, s.stderr());
    assert.ok(!fs.existsSync(path.join(home, 'serve.json')), 'serve.json removed');
    const r = await showRun(home, running);
    assert.equal(r.status, 'done', JSON.stringify(r));
    assert.equal(r.exitCode, 0);
    assert.equal((await showRun(home, queued)).status, 'queued', 'left for the next start');
    assert.ok(!fs.existsSync(ran), 'it has not run');

    // The next start runs it, once.
    const s2 = await serve(args, home);
    assert.equal(s2.token, s.token, 'the token is made once');
    assert.notEqual(s2.url, '', 'serve.json is written again');
    const done = await waitFor(s2, queued, TERMINAL);
    assert.equal(done.status, 'done', JSON.stringify(done));
    assert.deepEqual(await stop(s2), { code: 0, signal: null });
    const s3 = await serve(args, home);
    const st = await statuses(s3);
    assert.equal(st[queued], 'done');
    assert.equal(Object.values(st).filter((x) => x === 'queued').length, 0);
    assert.deepEqual(await stop(s3), { code: 0, signal: null });
    assert.equal(fs.readFileSync(ran, 'utf8'), 'once\n', 'it ran exactly once');
    const starts = chainOnDisk(home, queued).filter((l) => l.type === 'run.start');
    assert.equal(starts.length, 1);
  });

  test('a second SIGTERM while draining is ignored: the running run still finishes, exit 0, serve.json removed', async () => {
    const home = tmpDir('home');
    const root = tmpDir('root');
    const s = await serve(['--workspaces', root], home);
    const id = await submit(s, exec(root, 'sleep 2'));
    await waitFor(s, id, ['running']);
    s.child.kill('SIGTERM');
    assert.ok(await eventually(() => s.stderr().includes('SIGTERM: draining'), 10_000), s.stderr());
    s.child.kill('SIGTERM');
    assert.deepEqual(await s.exited, { code: 0, signal: null }, s.stderr());
    assert.ok(!fs.existsSync(path.join(home, 'serve.json')), 'serve.json removed');
    assert.equal((await showRun(home, id)).status, 'done');
  });

  test('--drain-timeout 1: a run still going at the deadline is stopped and recorded as interrupted, exit 0', async () => {
    const home = tmpDir('home');
    const root = tmpDir('root');
    const s = await serve(['--drain-timeout', '1', '--workspaces', root], home);
    const id = await submit(s, exec(root, 'sleep 30'));
    await waitFor(s, id, ['running']);
    const exit = await stop(s, 'SIGTERM', 40_000);
    assert.deepEqual(exit, { code: 0, signal: null }, s.stderr());
    assert.ok(!fs.existsSync(path.join(home, 'serve.json')));
    const r = await showRun(home, id);
    assert.equal(r.status, 'interrupted', JSON.stringify(r));
    const chain = chainOnDisk(home, id);
    assert.equal(chain.at(-1)?.type, 'run.end');
    assert.equal(chain.at(-1)?.data.status, 'interrupted');
    const v = await cli(['audit', 'verify', id], { home });
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });
});

// ---- --listen ----

describe('serve --listen', () => {
  const oneLine = (r: { code: number; stdout: string; stderr: string }, re: RegExp) => {
    assert.equal(r.code, 125, r.stdout + r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /internal error|^\s+at /m);
    assert.match(r.stderr, re);
  };

  test('a bad value is exit 125 with one line', async () => {
    const home = tmpDir('home');
    const root = tmpDir('root');
    for (const v of ['nope', '127.0.0.1', '127.0.0.1:99999', ':7420', '127.0.0.1:-1']) {
      oneLine(await cli(['serve', '--listen', v, '--workspaces', root], { home, timeoutMs: 30_000 }), /--listen must be HOST:PORT/);
    }
    assert.ok(!fs.existsSync(path.join(home, 'serve.json')));
  });

  test('a port in use is exit 125 with one line', async () => {
    const home = tmpDir('home');
    const root = tmpDir('root');
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as net.AddressInfo).port;
      oneLine(await cli(['serve', '--listen', `127.0.0.1:${port}`, '--workspaces', root], { home, timeoutMs: 30_000 }), /in use/);
      assert.ok(!fs.existsSync(path.join(home, 'serve.json')));
    } finally {
      taken.close();
    }
  });

  test('a workspace root that does not exist is exit 125 with one line', async () => {
    const home = tmpDir('home');
    oneLine(await cli(['serve', '--listen', '127.0.0.1:0', '--workspaces', path.join(home, 'nope')], { home, timeoutMs: 30_000 }), /not a directory/);
  });
});
