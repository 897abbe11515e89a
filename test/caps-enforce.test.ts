// A cap is enforcement, not a death sentence: the kernel's refusal (a fork refused at the pids
// cap, one process OOM-killed at the memory cap) is the enforcement, recorded as limit.hit, and
// the pod goes on. The pod is killed only when it cannot: its main process was OOM-killed, or a
// storm (fork refusals that never stop, OOM kill after OOM kill). Real pods; needs root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createBwrapBackend } from '../src/pod/bwrap.js';
import { LivePod } from '../src/pod/live.js';
import type { PodEvent } from '../src/pod/types.js';
import type { Rules } from '../src/policy/types.js';
import { auditEvents, cli, eventually, IS_ROOT, podUidOf, policyFile, residue, tmpDir, workspace } from './helpers.js';

const skip = IS_ROOT ? false : 'needs root: cgroups are not delegated to this user';
const MiB = 1024 * 1024;

const policy = (r: { memory?: string; pids?: number; timeout?: string }) =>
  policyFile(['version: 1', 'resources:', `  memory: ${r.memory ?? '256Mi'}`, `  pids: ${r.pids ?? 64}`, `  timeout: ${r.timeout ?? '60s'}`, ''].join('\n'));

interface Summary {
  run: string;
  exitCode: number;
  status: string;
  limitHit: string | null;
}
interface Run {
  code: number;
  stdout: string;
  stderr: string;
  runId: string;
  summary: Summary;
  home: string;
  ms: number;
}

async function exec(policyPath: string, command: string[]): Promise<Run> {
  const home = tmpDir('home');
  const started = Date.now();
  const r = await cli(['exec', '--policy', policyPath, '--json', '--', ...command], { home, timeoutMs: 90_000 });
  const ms = Date.now() - started;
  let summary: Summary;
  try {
    summary = JSON.parse(r.stderr.trim().split('\n').at(-1) ?? '') as Summary;
  } catch {
    assert.fail(`no JSON summary as the last stderr line (exit ${r.code}):\n${r.stderr}`);
  }
  assert.ok(r.runId, r.stderr);
  return { ...r, runId: r.runId, summary, home, ms };
}

const hits = (run: Run) =>
  auditEvents(run.home, run.runId)
    .filter((e) => e.type === 'limit.hit')
    .map((e) => e.data);

async function assertNoResidue(run: Run): Promise<void> {
  const uid = podUidOf(run.home, run.runId);
  await eventually(() => residue(run.runId, uid).length === 0, 5000);
  assert.deepEqual(residue(run.runId, uid), [], 'nothing of the pod is left on the host');
}

// Starts threads until Python says "can't start new thread", then carries on. The threads are
// held a second before they end, as a real program's pool would be.
const THREADS = [
  'import threading, time',
  'ev = threading.Event(); ts = []',
  'try:',
  '    while True:',
  '        t = threading.Thread(target=ev.wait); t.start(); ts.append(t)',
  'except RuntimeError as e:',
  '    print("refused after", len(ts), "threads:", e)',
  'time.sleep(1); ev.set()',
  'for t in ts: t.join()',
  'print("carried on")',
].join('\n');

test('pids: a program that catches "can\'t start new thread" and carries on exits 0, limit.hit pids names it', { skip }, async () => {
  const run = await exec(policy({ pids: 64 }), ['python3', '-c', THREADS]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /can't start new thread/);
  assert.match(run.stdout, /^carried on$/m);
  assert.equal(run.summary.status, 'done');
  assert.equal(run.summary.limitHit, null, 'the run was not killed by a cap');
  const pids = hits(run).filter((h) => h.cap === 'pids');
  assert.equal(pids.length, 1, JSON.stringify(hits(run)));
  assert.equal(pids[0].limit, 64);
  assert.equal(pids[0].key, 'resources.pids');
  assert.equal(pids[0].action, 'refused');
  assert.ok(Number(pids[0].refused) >= 1, JSON.stringify(pids[0]));
  assert.equal((pids[0].process as { name?: string } | null)?.name, 'python3', JSON.stringify(pids[0]));
  assert.match(
    run.stderr,
    /^clawpod: pids cap hit \(resources\.pids: 64\): \d+ forks? refused; python3 \(pid \d+ in the pod\) holds \d+ of 64 tasks; the run went on$/m,
  );
  assert.doesNotMatch(run.stderr, /pod killed/);
  await assertNoResidue(run);
});

test('memory: a child OOM-killed, its parent carries on and exits 0; limit.hit memory names the victim', { skip }, async () => {
  // The child lives a moment before it allocates, as a real victim does (its pod pid is seen).
  const script = 'python3 -c "import time; time.sleep(0.5); x = bytearray(300 << 20)"; echo "child status $?"; exit 0';
  const run = await exec(policy({ memory: '64Mi' }), ['sh', '-c', script]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^child status 137$/m);
  assert.equal(run.summary.status, 'done');
  assert.equal(run.summary.limitHit, null);
  const mem = hits(run).filter((h) => h.cap === 'memory');
  assert.equal(mem.length, 1, JSON.stringify(hits(run)));
  assert.equal(mem[0].limit, 64 * MiB);
  assert.equal(mem[0].key, 'resources.memory');
  assert.equal(mem[0].action, 'process killed');
  assert.equal((mem[0].process as { name?: string } | null)?.name, 'python3', JSON.stringify(mem[0]));
  assert.match(run.stderr, /^clawpod: memory cap hit \(resources\.memory: 64Mi\): the kernel killed python3 \(pid \d+ in the pod\); the run went on$/m);
  await assertNoResidue(run);
});

test('memory: the main process OOM-killed ends the run with 137, and the message names it', { skip }, async () => {
  const run = await exec(policy({ memory: '64Mi' }), ['python3', '-c', 'x = bytearray(300 << 20)']);
  assert.equal(run.code, 137, run.stderr);
  assert.equal(run.summary.status, 'killed');
  assert.equal(run.summary.limitHit, 'memory');
  const mem = hits(run).filter((h) => h.cap === 'memory');
  assert.equal(mem.length, 1, JSON.stringify(hits(run)));
  assert.equal(mem[0].action, 'pod killed');
  assert.equal(mem[0].reason, 'main process');
  assert.match(
    run.stderr,
    /^clawpod: memory cap hit \(resources\.memory: 64Mi\): the kernel killed python3 \(pid \d+ in the pod\), the pod's main process; the run ended$/m,
  );
  assert.doesNotMatch(run.stderr, /went on/);
  await assertNoResidue(run);
});

test('pids: a loop of forks that never stops is killed as a storm within bounded time', { skip }, async () => {
  const storm = [
    'import os, time',
    'while True:',
    '    try:',
    '        if os.fork() == 0: time.sleep(120); os._exit(0)',
    '    except OSError: time.sleep(0.01)',
  ].join('\n');
  const run = await exec(policy({ pids: 32, timeout: '80s' }), ['python3', '-c', storm]);
  assert.equal(run.code, 137, run.stderr);
  assert.equal(run.summary.limitHit, 'pids');
  assert.equal(run.summary.status, 'killed');
  assert.ok(run.ms < 40_000, `killed well before the 80 s timeout (took ${run.ms} ms)`);
  const last = hits(run)
    .filter((h) => h.cap === 'pids')
    .at(-1);
  assert.equal(last?.action, 'pod killed', JSON.stringify(hits(run)));
  assert.equal(last?.reason, 'storm');
  assert.match(run.stderr, /^clawpod: pids cap hit \(resources\.pids: 32\): forks refused for \d+ s without a pause .*; the pod was killed$/m);
  await assertNoResidue(run);
});

test('memory: OOM kill after OOM kill is a storm: the pod is killed with 137', { skip }, async () => {
  const loop = 'while :; do python3 -c "x = bytearray(300 << 20)"; done';
  const run = await exec(policy({ memory: '64Mi', timeout: '80s' }), ['sh', '-c', loop]);
  assert.equal(run.code, 137, run.stderr);
  assert.equal(run.summary.limitHit, 'memory');
  assert.ok(run.ms < 60_000, `killed before the timeout (took ${run.ms} ms)`);
  const last = hits(run)
    .filter((h) => h.cap === 'memory')
    .at(-1);
  assert.equal(last?.reason, 'storm', JSON.stringify(hits(run)));
  assert.match(
    run.stderr,
    /^clawpod: memory cap hit \(resources\.memory: 64Mi\): \d+ processes OOM-killed within \d+ s \(the last: python3 \((pid \d+ in the pod|host pid \d+)\)\); the pod was killed$/m,
  );
  await assertNoResidue(run);
});

test('live pod: a tool call OOM-killed ends only that call; the next call works', { skip }, async () => {
  const home = tmpDir('home');
  const rules: Rules = {
    resources: { cpus: 1, memoryBytes: 64 << 20, pids: 64, timeoutMs: 60_000, diskBytes: 64 << 20 },
    workspace: 'overlay',
    mounts: [],
    network: { allow: [], deny: [], hosts: {} },
    secrets: [],
    env: {},
    tools: {},
    source: 'test',
  } as Rules;
  const events: PodEvent[] = [];
  const live = await LivePod.start(
    createBwrapBackend({ clawpodHome: home }),
    {
      id: `r-capslive-${process.pid}`,
      rules,
      workspace: workspace({ 'a.txt': 'a\n' }),
      changesDir: path.join(home, 'changes'),
      allowDegraded: false,
      stdio: 'pipe',
    },
    (e) => events.push(e),
  );
  try {
    // A call is the OOM killer's first choice, never the executor (pid 2) the pod needs (which is
    // raised only around its fork: read after it).
    const adj = await live.exec(['sh', '-c', 'sleep 0.2; cat /proc/self/oom_score_adj /proc/2/oom_score_adj']);
    assert.equal(adj.stdout.toString(), '500\n0\n');
    const big = await live.exec(['python3', '-c', 'x = bytearray(300 << 20)']);
    assert.equal(big.exitCode, 137, big.stderr.toString());
    const next = await live.exec(['sh', '-c', 'echo still here; cat /workspace/a.txt']);
    assert.equal(next.exitCode, 0, next.stderr.toString());
    assert.equal(next.stdout.toString(), 'still here\na\n');
    await eventually(() => events.some((e) => e.type === 'limit.hit'), 2000);
    const mem = events.filter((e) => e.type === 'limit.hit' && e.data.cap === 'memory');
    assert.equal(mem.length, 1, JSON.stringify(events));
    assert.equal(mem[0].data.action, 'process killed');
    assert.equal((mem[0].data.process as { name?: string } | null)?.name, 'python3');
  } finally {
    const end = await live.close();
    assert.equal(end.limitHit, null, 'the pod ended on its own terms');
  }
});
