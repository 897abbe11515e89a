// Ctrl-C keeps the work, through the real binary: SIGINT to clawpod while its pod works ends the
// run as interrupted (exit 130), records it so in the store and the audit chain, and keeps what
// the pod changed so far for review. In `run`, the first Ctrl-C stops the agent loop and closes
// the live pod normally (the summary is printed); a second one stops the pod at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { startFakeAnthropic, type AnthropicStep } from './fakes/anthropic.js';
import { auditEvents, cli, eventually, podUidOf, residue, tmpDir, workspace, type CliResult } from './helpers.js';

const KEY = 'sk-ant-test-interrupt';

/** Starts clawpod; `until` is checked on each chunk of its output, and `act` runs once it holds. */
async function interrupted(
  args: string[],
  o: {
    home: string;
    cwd: string;
    env?: Record<string, string>;
    until: (out: string, err: string) => boolean;
    act: (child: ChildProcess) => Promise<void> | void;
  },
): Promise<CliResult & { acted: number; ended: number }> {
  let child: ChildProcess | null = null;
  let out = '';
  let err = '';
  let acted = 0;
  let fired = false;
  const check = () => {
    if (fired || !o.until(out, err)) return;
    fired = true;
    acted = Date.now();
    void o.act(child!);
  };
  // Some conditions are not output (a model request held open): look again every 50 ms too.
  const poll = setInterval(check, 50);
  const r = await cli(args, {
    home: o.home,
    cwd: o.cwd,
    env: o.env,
    timeoutMs: 90_000,
    onSpawn: (c) => {
      child = c;
      c.stdout!.on('data', (d) => {
        out += d;
        check();
      });
      c.stderr!.on('data', (d) => {
        err += d;
        check();
      });
    },
  }).finally(() => clearInterval(poll));
  assert.ok(fired, `the condition to interrupt was reached (exit ${r.code}):\n${r.stderr}`);
  return { ...r, acted, ended: Date.now() };
}

async function verify(home: string, id: string): Promise<void> {
  const v = await cli(['audit', 'verify', id], { home });
  assert.equal(v.code, 0, `the audit chain verifies:\n${v.stdout}${v.stderr}`);
}

async function noResidue(home: string, id: string): Promise<void> {
  const uid = podUidOf(home, id);
  await eventually(() => residue(id, uid).length === 0, 5000);
  assert.deepEqual(residue(id, uid), [], 'nothing of the pod is left');
}

/** What the store and `runs show` say of the run. */
async function shown(home: string, id: string) {
  const text = await cli(['runs', 'show', id], { home });
  assert.equal(text.code, 0, text.stderr);
  const json = await cli(['runs', 'show', id, '--json'], { home });
  assert.equal(json.code, 0, json.stderr);
  return { text: text.stdout, record: JSON.parse(json.stdout) as { status: string; exitCode: number; diffState: string; filesChanged: number } };
}

test('exec: SIGINT while the pod sleeps ends the run at once as interrupted (exit 130), the file written before is kept for review', async () => {
  const home = tmpDir('home');
  const ws = workspace({ 'base.txt': 'base\n' });
  const r = await interrupted(['exec', '--json', '--', 'sh', '-c', 'echo written-before > before.txt; echo ready; exec sleep 60'], {
    home,
    cwd: ws,
    until: (out) => out.includes('ready\n'),
    act: (c) => {
      c.kill('SIGINT');
    },
  });
  assert.equal(r.code, 130, r.stderr);
  assert.ok(r.ended - r.acted < 10_000, `clawpod ended ${r.ended - r.acted} ms after the interrupt, not after the pod's sleep`);
  assert.match(r.stderr, /interrupted \(exit 130\); what the pod changed is kept/);
  const summary = JSON.parse(r.stderr.trim().split('\n').at(-1)!) as { status: string; exitCode: number; filesChanged: number };
  assert.deepEqual([summary.status, summary.exitCode, summary.filesChanged], ['interrupted', 130, 1]);
  const id = r.runId!;
  const diff = await cli(['runs', 'diff', id], { home });
  assert.equal(diff.code, 0, diff.stderr);
  assert.match(diff.stdout, /\+\+\+ b\/before\.txt\n@@ .* @@\n\+written-before/, diff.stdout);
  const { text, record } = await shown(home, id);
  assert.match(text, /interrupt/i);
  assert.match(text, /130/);
  assert.deepEqual([record.status, record.exitCode, record.diffState, record.filesChanged], ['interrupted', 130, 'pending', 1]);
  const end = auditEvents(home, id).at(-1)!;
  assert.equal(end.type, 'run.end');
  assert.equal(end.data.status, 'interrupted');
  assert.equal(end.data.exitCode, 130);
  assert.equal(end.data.stoppedBy, 'user');
  await verify(home, id);
  await noResidue(home, id);
  // Kept means applicable: the interrupt's change set reaches the workspace like any other.
  const apply = await cli(['runs', 'apply', id], { home });
  assert.equal(apply.code, 0, apply.stderr);
});

/** A model endpoint in front of the fake that holds request number `slow` until the client goes. */
async function withSlowTurn(script: AnthropicStep[], slow: number) {
  const fake = await startFakeAnthropic(script);
  let seen = 0;
  let held: { gone: boolean } | null = null;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (++seen === slow) {
        const h = { gone: false };
        held = h;
        res.on('close', () => {
          h.gone = true;
        });
        return; // never answered: the client must abort it
      }
      const up = http.request(`${fake.url}${req.url}`, { method: req.method, headers: req.headers }, (u) => {
        res.writeHead(u.statusCode ?? 500, u.headers);
        u.pipe(res);
      });
      up.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen: () => seen,
    held: () => held as { gone: boolean } | null,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await fake.close();
    },
  };
}

test('run: SIGINT during a slow model turn stops the loop, closes the pod normally, prints the summary, keeps the change set (exit 130)', async () => {
  const slow = await withSlowTurn(
    [
      { toolUses: [{ name: 'write_file', input: { path: 'kept.txt', content: 'from turn one\n' } }], stopReason: 'tool_use' },
      { text: 'never sent', stopReason: 'end_turn' },
    ],
    2,
  );
  try {
    const home = tmpDir('home');
    const r = await interrupted(['run', 'write kept.txt, then think for a long time'], {
      home,
      cwd: workspace(),
      env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: slow.url },
      until: () => slow.held() !== null,
      act: (c) => {
        c.kill('SIGINT');
      },
    });
    assert.equal(r.code, 130, r.stderr);
    assert.ok(r.ended - r.acted < 15_000, `clawpod ended ${r.ended - r.acted} ms after the interrupt`);
    assert.ok(await eventually(() => slow.held()!.gone, 2000), 'the model request in flight was abandoned');
    assert.equal(slow.seen(), 2, 'no model turn after the interrupt');
    assert.match(r.stderr, /stopping the agent; the work so far is kept for review/);
    const id = r.runId!;
    assert.ok(r.stderr.includes(`runs diff ${id}`), `the summary says how to review the kept work:\n${r.stderr}`);
    assert.match(r.stderr, /1 file/, `the summary counts the change:\n${r.stderr}`);
    const diff = await cli(['runs', 'diff', id], { home });
    assert.match(diff.stdout, /\+from turn one/, diff.stdout + diff.stderr);
    const { text, record } = await shown(home, id);
    assert.match(text, /interrupt/i);
    assert.match(text, /130/);
    assert.deepEqual([record.status, record.exitCode, record.diffState], ['interrupted', 130, 'pending']);
    const events = auditEvents(home, id);
    const end = events.at(-1)!;
    assert.equal(end.type, 'run.end');
    assert.equal(end.data.status, 'interrupted');
    assert.equal(end.data.reason, 'interrupted');
    assert.equal(end.data.exitCode, 130);
    assert.ok(
      events.some((e) => e.type === 'file.write' && e.data.path === 'kept.txt'),
      'the change is in the chain',
    );
    await verify(home, id);
    await noResidue(home, id);
  } finally {
    await slow.close();
  }
});

test('run: the first SIGINT waits for the running tool call; a second one stops the pod at once (exit 130, work kept, chain intact)', async () => {
  const fake = await startFakeAnthropic([
    { toolUses: [{ name: 'write_file', input: { path: 'kept.txt', content: 'before the sleep\n' } }], stopReason: 'tool_use' },
    { toolUses: [{ name: 'bash', input: { command: 'echo sleeping; sleep 60', timeout_ms: 120_000 } }], stopReason: 'tool_use' },
    { text: 'never reached', stopReason: 'end_turn' },
  ]);
  try {
    const home = tmpDir('home');
    let firstAt = 0;
    let stillRunning = false;
    const r = await interrupted(['run', 'write kept.txt, then sleep'], {
      home,
      cwd: workspace(),
      env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: fake.url },
      // The tool call is on its way once the trace shows it; give the pod a moment to start sleep.
      until: (_out, err) => /▸ bash/.test(err),
      act: async (c) => {
        await new Promise((res) => setTimeout(res, 700));
        c.kill('SIGINT');
        firstAt = Date.now();
        await new Promise((res) => setTimeout(res, 1500));
        stillRunning = c.exitCode === null && c.signalCode === null;
        c.kill('SIGINT');
      },
    });
    assert.equal(r.code, 130, r.stderr);
    assert.ok(stillRunning, `the first Ctrl-C let the running tool call go on:\n${r.stderr}`);
    assert.ok(r.ended - firstAt < 12_000, `the second Ctrl-C ended clawpod within seconds (${r.ended - firstAt} ms), not after the sleep`);
    assert.equal(fake.requests.length, 2, 'no model turn after the interrupt');
    assert.match(r.stderr, /Ctrl-C again stops the pod at once/);
    const id = r.runId!;
    const diff = await cli(['runs', 'diff', id], { home });
    assert.match(diff.stdout, /\+before the sleep/, diff.stdout + diff.stderr);
    const { text, record } = await shown(home, id);
    assert.match(text, /interrupt/i);
    assert.match(text, /130/);
    assert.deepEqual([record.status, record.exitCode, record.diffState], ['interrupted', 130, 'pending']);
    const end = auditEvents(home, id).at(-1)!;
    assert.equal(end.type, 'run.end');
    assert.equal(end.data.status, 'interrupted');
    assert.equal(end.data.exitCode, 130);
    await verify(home, id);
    await noResidue(home, id);
  } finally {
    await fake.close();
  }
});

/** True once the run's directory exists: clawpod has its signal handlers and is starting the pod. */
const starting = (home: string) => () => {
  try {
    return fs.readdirSync(path.join(home, 'runs')).length > 0;
  } catch {
    return false;
  }
};

test('run: a Ctrl-C while the pod is still starting stops the task before its first model turn (exit 130)', async () => {
  const fake = await startFakeAnthropic([
    { toolUses: [{ name: 'write_file', input: { path: 'late.txt', content: 'written after the interrupt\n' } }], stopReason: 'tool_use' },
    { text: 'done anyway', stopReason: 'end_turn' },
  ]);
  try {
    const home = tmpDir('home');
    const r = await interrupted(['run', 'write late.txt'], {
      home,
      cwd: workspace(),
      env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: fake.url },
      until: starting(home),
      act: (c) => {
        c.kill('SIGINT');
      },
    });
    assert.equal(r.code, 130, r.stderr);
    assert.equal(fake.requests.length, 0, `no model turn after the interrupt:\n${r.stderr}`);
    const id = r.runId!;
    const { record } = await shown(home, id);
    assert.deepEqual([record.status, record.exitCode, record.filesChanged], ['interrupted', 130, 0]);
    await verify(home, id);
    await noResidue(home, id);
  } finally {
    await fake.close();
  }
});

test('exec: a Ctrl-C while the pod is still starting ends the run as interrupted; the command never runs to its end', async () => {
  const home = tmpDir('home');
  const ws = workspace();
  const r = await interrupted(['exec', '--', 'sh', '-c', 'sleep 3; echo finished > late.txt'], {
    home,
    cwd: ws,
    until: starting(home),
    act: (c) => {
      c.kill('SIGINT');
    },
  });
  assert.equal(r.code, 130, r.stderr);
  assert.ok(r.ended - r.acted < 2500, `ended ${r.ended - r.acted} ms after the interrupt`);
  const { record } = await shown(home, r.runId!);
  assert.deepEqual([record.status, record.exitCode, record.filesChanged], ['interrupted', 130, 0]);
  await verify(home, r.runId!);
});
