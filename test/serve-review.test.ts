// `clawpod serve` against the holes a hostile review found, one test per finding, through the
// real binary (`clawpod serve --listen 127.0.0.1:0 --workspaces DIR`, a private CLAWPOD_HOME
// each): a queued run re-checked when it starts (a policy file rewritten, a mount or the
// workspace swapped for a symlink), policies from CLAWPOD_HOME other than policies/, a root
// holding CLAWPOD_HOME, private addresses in inline network.allow, the API's view of local runs
// elsewhere, exec --server and a stale serve.json, exact bytes and early output, a chain over
// 8 MiB over /events, one server per CLAWPOD_HOME, a schedule's overlap queue, and
// Connection: close after 401. CLAWPOD_BIN runs them against another build (an older one).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { eventually, tmpDir } from './helpers.js';
import { BIN, baseEnv, call, type Ev, exec, mkdir, record, type Res, type Srv, serve, stop, stopAll, TERMINAL, waitFor } from './serve-kit.js';

// ---- processes (the server's: serve-kit.ts) ----

after(stopAll);

interface Run {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs the binary to its end (killed past the deadline); stdout kept as bytes. `onStderr` sees
 *  stderr as it comes (to stop a server that started when it should not have). */
function runBin(
  args: string[],
  o: { home: string; cwd: string; env?: Record<string, string>; timeoutMs?: number },
  onStderr?: (all: string, kill: () => void) => void,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: o.cwd, env: baseEnv(o.home, o.env), stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d) => {
      err += d;
      onStderr?.(err, () => child.kill('SIGKILL'));
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
  });
}

/** Exit 125 and one line on stderr, no stack. */
function oneLine125(r: Run, re: RegExp): void {
  assert.equal(r.code, 125, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /internal error|^\s+at /m);
  assert.match(r.stderr, re);
}

// ---- HTTP ----

/** An error answer: the status, and one line in {"error": {"status", "message"}}. */
function isError(r: Res, status: number, message?: RegExp): void {
  assert.equal(r.status, status, r.text);
  assert.equal(r.json?.error?.status, status, r.text);
  assert.equal(typeof r.json.error.message, 'string');
  assert.ok(r.json.error.message.length > 0 && !/[\r\n]/.test(r.json.error.message), `one line: ${r.text}`);
  if (message) assert.match(r.json.error.message, message);
}

async function submit(s: Srv, body: Record<string, unknown>): Promise<{ id: string; status: string }> {
  const r = await call(s, 'POST', '/v1/runs', { body });
  assert.equal(r.status, 202, r.text);
  return r.json;
}

function events(s: Srv, id: string): Promise<{ events: Ev[]; bytes: number }> {
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
        let bytes = 0;
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          bytes += Buffer.byteLength(c);
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
            if (data.length) out.push({ type, data: JSON.parse(data.join('\n')) });
          }
        });
        // A stream cut short ends too (aborted/close): what came is returned, the test judges it.
        res.on('close', () => resolve({ events: out, bytes }));
        res.on('error', () => resolve({ events: out, bytes }));
      },
    );
    req.on('error', reject);
    req.setTimeout(120_000, () => req.destroy(new Error(`events of ${id}: the stream did not end in 120 s`)));
  });
}

/** Every byte a run left on disk (its kept logs, its chain), to look for what must not be there. */
function runFiles(home: string, id: string): string {
  const dir = path.join(home, 'runs', id);
  if (!fs.existsSync(dir)) return '';
  let all = '';
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) all += fs.readFileSync(p, 'latin1');
    }
  };
  walk(dir);
  return all;
}

/** A failed run that never started: status failed, a one-line reason, nothing of SECRET anywhere. */
async function refusedAtStart(s: Srv, id: string, watching: Promise<{ events: Ev[] }>, secret: string, reason: RegExp) {
  const rec = await waitFor(s, id, TERMINAL);
  const got = (await watching).events;
  const said = JSON.stringify(got);
  assert.ok(!said.includes(secret), `the outside file reached the watcher: ${said}`);
  assert.ok(!runFiles(s.home, id).includes(secret), 'the outside file is in the run directory');
  assert.equal(rec.status, 'failed', JSON.stringify(rec));
  const why = String(rec.endReason ?? got.find((e) => e.type === 'status' && e.data.error)?.data.error ?? '');
  assert.ok(why.length > 0 && !/[\r\n]/.test(why), `one-line reason: ${JSON.stringify(rec)}`);
  assert.match(why, reason);
}

const SECRET = 'OUTSIDE-SECRET-7f3a';

// ---- 1, 3: a queued run is checked again when it starts ----

describe('a queued run is checked again when it starts', () => {
  test('a policy file under a root rewritten while queued to mount outside the roots: failed, the outside file never printed', async () => {
    const root = tmpDir('root');
    const outside = tmpDir('outside');
    fs.writeFileSync(path.join(outside, 'secret.txt'), `${SECRET}\n`);
    const ws = mkdir(path.join(root, 'ws'));
    mkdir(path.join(root, 'inside'));
    fs.writeFileSync(path.join(root, 'inside', 'secret.txt'), 'inside\n');
    const policy = path.join(root, 'p.yaml');
    fs.writeFileSync(policy, `version: 1\nfilesystem:\n  mounts:\n    - { host: ${path.join(root, 'inside')}, path: /data }\n`);
    const s = await serve(['--workspaces', root]);
    try {
      const blocker = await submit(s, exec(ws, 'sleep 3'));
      await waitFor(s, blocker.id, ['running']);
      const q = await submit(s, exec(ws, 'cat /data/secret.txt', { policy }));
      fs.writeFileSync(policy, `version: 1\nfilesystem:\n  mounts:\n    - { host: ${outside}, path: /data }\n`);
      assert.equal((await record(s, q.id)).status, 'queued', 'rewritten while it waited');
      const watching = events(s, q.id);
      await refusedAtStart(s, q.id, watching, SECRET, /under the workspace roots|not under/);
      assert.equal((await waitFor(s, blocker.id, TERMINAL)).status, 'done');
    } finally {
      await stop(s);
    }
  });

  test('an inline mount whose host dir is swapped for a symlink out of the roots while queued: failed, never printed', async () => {
    const root = tmpDir('root');
    const outside = tmpDir('outside');
    fs.writeFileSync(path.join(outside, 'secret.txt'), `${SECRET}\n`);
    const ws = mkdir(path.join(root, 'ws'));
    const data = mkdir(path.join(root, 'data'));
    fs.writeFileSync(path.join(data, 'secret.txt'), 'inside\n');
    const s = await serve(['--workspaces', root]);
    try {
      const blocker = await submit(s, exec(ws, 'sleep 3'));
      await waitFor(s, blocker.id, ['running']);
      const q = await submit(s, exec(ws, 'cat /data/secret.txt', { policy: { filesystem: { mounts: [{ host: data, path: '/data' }] } } }));
      fs.renameSync(data, path.join(root, 'data.orig'));
      fs.symlinkSync(outside, data);
      assert.equal((await record(s, q.id)).status, 'queued', 'swapped while it waited');
      const watching = events(s, q.id);
      await refusedAtStart(s, q.id, watching, SECRET, /under the workspace roots|not under/);
    } finally {
      await stop(s);
    }
  });

  test('the workspace swapped for a symlink out of the roots while queued: failed with the reason', async () => {
    const root = tmpDir('root');
    const outside = tmpDir('outside');
    fs.writeFileSync(path.join(outside, 'secret.txt'), `${SECRET}\n`);
    const other = mkdir(path.join(root, 'other'));
    const ws = mkdir(path.join(root, 'ws'));
    const s = await serve(['--concurrency', '1', '--workspaces', root]);
    try {
      const blocker = await submit(s, exec(other, 'sleep 3'));
      await waitFor(s, blocker.id, ['running']);
      const q = await submit(s, exec(ws, 'cat secret.txt'));
      fs.renameSync(ws, path.join(root, 'ws.orig'));
      fs.symlinkSync(outside, ws);
      assert.equal((await record(s, q.id)).status, 'queued', 'swapped while it waited');
      const watching = events(s, q.id);
      await refusedAtStart(s, q.id, watching, SECRET, /changed since|not under/);
    } finally {
      await stop(s);
    }
  });
});

// ---- 2: policies from CLAWPOD_HOME ----

describe('policies from CLAWPOD_HOME', () => {
  test("a run's stdout.log (a YAML policy with secrets and a mount outside) named as a policy: 403", async () => {
    const root = tmpDir('root');
    const outside = tmpDir('outside');
    const ws = mkdir(path.join(root, 'ws'));
    const s = await serve(['--workspaces', root], tmpDir('home'), { SOMEVAR: 'server-secret-value' });
    try {
      const yaml = `version: 1\nsecrets:\n  - name: T\n    from: env:SOMEVAR\n    hosts: [example.com]\nfilesystem:\n  mounts:\n    - { host: ${outside}, path: /data }\n`;
      const printer = await submit(s, exec(ws, `printf '%s' '${yaml}'`));
      assert.equal((await waitFor(s, printer.id, TERMINAL)).status, 'done');
      const log = path.join(s.home, 'runs', printer.id, 'stdout.log');
      assert.equal(fs.readFileSync(log, 'utf8'), yaml, 'the run kept what it printed');
      const r = await call(s, 'POST', '/v1/runs', { body: exec(ws, 'true', { policy: log }) });
      isError(r, 403, /inside CLAWPOD_HOME/);
      // The owner's own policies, directly in policies/, still are policies (by name).
      mkdir(path.join(s.home, 'policies'), 0o700);
      fs.writeFileSync(path.join(s.home, 'policies', 'own.yaml'), 'version: 1\n');
      const own = await submit(s, exec(ws, 'true', { policy: 'own' }));
      assert.equal((await waitFor(s, own.id, TERMINAL)).status, 'done');
    } finally {
      await stop(s);
    }
  });

  test('serve --workspaces DIR where DIR holds CLAWPOD_HOME: exit 125, one line', async () => {
    const parent = tmpDir('parent');
    const home = mkdir(path.join(parent, 'home'), 0o700);
    const r = await runBin(['serve', '--listen', '127.0.0.1:0', '--workspaces', parent], { home, cwd: parent, timeoutMs: 30_000 }, (err, kill) => {
      if (err.includes('serving on')) kill();
    });
    oneLine125(r, /CLAWPOD_HOME/);
    assert.ok(!fs.existsSync(path.join(home, 'serve.json')));
  });
});

// ---- 4: private addresses in an inline network.allow ----

describe('inline network.allow', () => {
  test('loopback, private, link-local and localhost are 400 with one line; a public name runs', async () => {
    const root = tmpDir('root');
    const s = await serve(['--workspaces', root]);
    try {
      for (const host of [
        `127.0.0.1:${s.port}`,
        'localhost',
        `localhost:${s.port}`,
        '10.0.0.1',
        '169.254.169.254',
        '[::1]',
        `[::1]:${s.port}`,
        '192.168.1.1',
      ]) {
        const r = await call(s, 'POST', '/v1/runs', { body: exec(root, 'true', { policy: { network: { allow: [host] } } }) });
        isError(r, 400, /cannot allow/);
      }
      const r = await call(s, 'GET', '/v1/runs');
      assert.deepEqual(r.json.runs, [], 'a refused request is no run');
      const ok = await submit(s, exec(root, 'true', { policy: { network: { allow: ['example.com'] } } }));
      assert.equal((await waitFor(s, ok.id, TERMINAL)).status, 'done');
    } finally {
      await stop(s);
    }
  });
});

// ---- 5: local runs elsewhere are not the API's ----

describe("the API's runs", () => {
  test('a local clawpod exec outside the roots (same CLAWPOD_HOME) is 404 on GET, diff and apply, and absent from the list', async () => {
    const root = tmpDir('root');
    const inRoot = mkdir(path.join(root, 'ws'));
    const outside = tmpDir('outside');
    const s = await serve(['--workspaces', root]);
    try {
      const local = await runBin(['exec', '--', 'sh', '-c', 'echo written > new.txt'], { home: s.home, cwd: outside });
      assert.equal(local.code, 0, local.stderr);
      const id = /clawpod: run (r-[\w-]+)/.exec(local.stderr)?.[1];
      assert.ok(id, local.stderr);
      isError(await call(s, 'GET', `/v1/runs/${id}`), 404);
      isError(await call(s, 'GET', `/v1/runs/${id}/diff`), 404);
      isError(await call(s, 'POST', `/v1/runs/${id}/apply`), 404);
      isError(await call(s, 'GET', `/v1/runs/${id}/events`), 404);
      const list = await call(s, 'GET', '/v1/runs?limit=1000');
      assert.ok(!JSON.stringify(list.json).includes(id), 'absent from GET /v1/runs');
      assert.ok(!fs.existsSync(path.join(outside, 'new.txt')), 'nothing was applied outside the roots');
      // A local run under a root is the API's to see (the control).
      const mine = await runBin(['exec', '--', 'true'], { home: s.home, cwd: inRoot });
      const mineId = /clawpod: run (r-[\w-]+)/.exec(mine.stderr)?.[1];
      assert.equal((await record(s, String(mineId))).id, mineId);
    } finally {
      await stop(s);
    }
  });
});

// ---- 6, 7: exec --server ----

describe('exec --server', () => {
  test('a stale serve.json (its server killed -9, the port now someone else’s): refused with one line, no request sent', async () => {
    const root = tmpDir('root');
    const s = await serve(['--workspaces', root]);
    s.child.kill('SIGKILL');
    await s.exited;
    // Whoever has the port now sees what the client sends.
    const got: Buffer[] = [];
    let conns = 0;
    const listener = net.createServer((sock) => {
      conns++;
      sock.on('data', (d) => {
        got.push(d);
        sock.destroy();
      });
      sock.on('error', () => {});
    });
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(s.port, '127.0.0.1', resolve);
    });
    try {
      const r = await runBin(['exec', '--server', '--', 'true'], { home: s.home, cwd: root, timeoutMs: 30_000 });
      const sent = Buffer.concat(got).toString('latin1');
      assert.ok(!sent.includes(s.token), `the token went to the port's new owner: ${sent.slice(0, 200)}`);
      assert.equal(conns, 0, `a connection was made: ${sent.slice(0, 200)}`);
      oneLine125(r, /not running/);
    } finally {
      listener.close();
    }
  });

  describe('with a server', () => {
    let s: Srv;
    let root: string;
    test('start', async () => {
      root = tmpDir('root');
      s = await serve(['--workspaces', root]);
    });

    test("the pod's bytes exactly (not UTF-8)", async () => {
      const r = await runBin(['exec', '--server', '--', 'sh', '-c', "printf '\\377\\376abc'"], { home: s.home, cwd: root });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.toString('hex'), 'fffe616263');
    });

    test('output printed at once when the run starts is not lost (10 runs of echo HELLO)', async () => {
      for (let i = 0; i < 10; i++) {
        const r = await runBin(['exec', '--server', '--', 'echo', 'HELLO'], { home: s.home, cwd: root });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.toString(), 'HELLO\n', `run ${i + 1}: ${r.stderr}`);
      }
    });

    after(async () => {
      if (s) await stop(s);
    });
  });
});

// ---- 8: a chain over the stream's buffer ----

describe('/events of a large chain', () => {
  test('a chain over 8 MiB (20k file.write events) streams whole to a watcher and after the end, with run.end last', async () => {
    const root = tmpDir('root');
    const s = await serve(['--workspaces', root]);
    try {
      // Long names: each file.write line is ~0.5 KiB, so 20k of them pass 8 MiB.
      const name = 'n'.repeat(180);
      const q = await submit(s, exec(root, `i=0; while [ $i -lt 20000 ]; do : > ${name}$i; i=$((i+1)); done`, { policy: { resources: { timeout: '5m' } } }));
      const watching = events(s, q.id);
      const rec = await waitFor(s, q.id, TERMINAL, 240_000);
      assert.equal(rec.status, 'done', JSON.stringify(rec));
      const chainFile = path.join(s.home, 'runs', q.id, 'audit.jsonl');
      const onDisk = fs.readFileSync(chainFile, 'utf8').split('\n').filter(Boolean);
      assert.ok(fs.statSync(chainFile).size > 8 * 1024 * 1024, `the chain is ${fs.statSync(chainFile).size} bytes`);
      for (const [when, got] of [
        ['watched from the start', await watching],
        ['read after the end', await events(s, q.id)],
      ] as const) {
        const chain = got.events.filter((e) => !['status', 'notice', 'output', 'text', 'tool.output'].includes(e.type));
        assert.equal(chain.length, onDisk.length, `${when}: ${chain.length} of ${onDisk.length} chain events (${got.bytes} bytes)`);
        assert.equal(chain.filter((e) => e.type === 'file.write').length, 20_000, when);
        assert.equal(chain.at(-1)?.type, 'run.end', when);
        assert.equal(got.events.at(-1)?.type, 'run.end', when);
      }
    } finally {
      await stop(s);
    }
  });
});

// ---- 9: one server per CLAWPOD_HOME ----

describe('one server per CLAWPOD_HOME', () => {
  test('a second serve is exit 125 naming the first pid; after the first is killed -9, a new one starts', async () => {
    const root = tmpDir('root');
    const first = await serve(['--workspaces', root]);
    const second = await runBin(['serve', '--listen', '127.0.0.1:0', '--workspaces', root], { home: first.home, cwd: root, timeoutMs: 30_000 }, (err, kill) => {
      if (err.includes('serving on')) kill();
    });
    oneLine125(second, new RegExp(`pid ${first.child.pid}\\b`));
    assert.equal(JSON.parse(fs.readFileSync(path.join(first.home, 'serve.json'), 'utf8')).pid, first.child.pid, 'serve.json still names the first');
    assert.equal((await call(first, 'GET', '/v1/health')).status, 200);
    first.child.kill('SIGKILL');
    await first.exited;
    const third = await serve(['--workspaces', root], first.home);
    assert.equal((await call(third, 'GET', '/v1/health')).status, 200);
    assert.deepEqual(await stop(third), { code: 0, signal: null });
  });
});

// ---- 10: a schedule's overlap queue ----

describe('schedules', () => {
  test('every 1s, overlap queue, runs of ~3 s: never more than 2 of its runs queued or running at once', async () => {
    const root = tmpDir('root');
    const s = await serve(['--workspaces', root]);
    try {
      const r = await call(s, 'POST', '/v1/schedules', { body: { name: 'fast', every: '1s', overlap: 'queue', run: exec(root, 'sleep 3') } });
      assert.equal(r.status, 201, r.text);
      const sid = r.json.id as string;
      let most = 0;
      let seen = new Set<string>();
      const end = Date.now() + 6_000;
      while (Date.now() < end) {
        const list = await call(s, 'GET', '/v1/runs?limit=1000');
        const runs = list.json.runs as { id: string; status: string }[];
        seen = new Set([...seen, ...runs.map((x) => x.id)]);
        most = Math.max(most, runs.filter((x) => x.status === 'queued' || x.status === 'running').length);
        await new Promise((res) => setTimeout(res, 100));
      }
      assert.equal((await call(s, 'DELETE', `/v1/schedules/${sid}`)).status, 200);
      assert.ok(seen.size >= 2, `the schedule fired: ${seen.size} runs`);
      assert.ok(most <= 2, `${most} of its runs were queued or running at once`);
      for (const id of seen) await call(s, 'POST', `/v1/runs/${id}/cancel`);
    } finally {
      await stop(s);
    }
  });
});

// ---- 11: Connection: close after 401 ----

describe('401', () => {
  test('an unauthenticated request gets Connection: close, and the socket answers nothing more', async () => {
    const root = tmpDir('root');
    const s = await serve(['--workspaces', root]);
    try {
      const sock = net.connect(s.port, '127.0.0.1');
      let got = '';
      let closed = false;
      sock.on('data', (d) => {
        got += d.toString('latin1');
      });
      sock.on('error', () => {});
      const gone = new Promise<void>((resolve) =>
        sock.on('close', () => {
          closed = true;
          resolve();
        }),
      );
      const host = `127.0.0.1:${s.port}`;
      sock.write(`GET /v1/runs HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      assert.ok(await eventually(() => /\r\n\r\n[\s\S]*"error"[\s\S]*\}/.test(got) || closed, 10_000), got);
      const head = got.split('\r\n\r\n')[0];
      assert.match(head, /^HTTP\/1\.1 401/);
      assert.match(head, /\r\nconnection: close\r\n/i);
      // The same socket, now with the token: no second answer.
      if (!closed) sock.write(`GET /v1/runs HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${s.token}\r\n\r\n`);
      const timer = setTimeout(() => sock.destroy(), 10_000);
      await gone;
      clearTimeout(timer);
      assert.equal((got.match(/HTTP\/1\.1 /g) ?? []).length, 1, `one answer only: ${got}`);
    } finally {
      await stop(s);
    }
  });
});
