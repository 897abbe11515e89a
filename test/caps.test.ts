// Caps against the real kernel: memory, pids, wall clock, disk and CPU each fire (or throttle)
// under a tight policy and stay quiet under a roomy one, a firing cap takes the whole pod tree
// with it, and exit codes pass through. Needs root (cgroups v1/v2 under /sys/fs/cgroup).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { auditEvents, cli, eventually, IS_ROOT, podUidOf, policyFile, residue, tmpDir, workspace, type CliOptions } from './helpers.js';

const skip = IS_ROOT ? false : 'needs root: cgroups are not delegated to this user';
const MiB = 1024 * 1024;

const policy = (r: { memory?: string; pids?: number; timeout?: string; disk?: string; cpus?: number }) =>
  policyFile(
    [
      'version: 1',
      'resources:',
      `  memory: ${r.memory ?? '64Mi'}`,
      `  pids: ${r.pids ?? 32}`,
      `  timeout: ${r.timeout ?? '10s'}`,
      `  disk: ${r.disk ?? '16Mi'}`,
      `  cpus: ${r.cpus ?? 1}`,
      '',
    ].join('\n'),
  );

// Tight caps; the timeout is generous here except in the timeout test, so a slow machine never
// turns a memory or pids kill into a timeout.
const TIGHT = policy({});
const ROOMY = policy({ memory: '512Mi', pids: 256, timeout: '30s', disk: '256Mi' });

interface Summary {
  run: string;
  exitCode: number;
  status: string;
  limitHit: string | null;
}

interface PodRun {
  code: number;
  stdout: string;
  stderr: string;
  runId: string;
  summary: Summary;
  home: string;
}

/** `clawpod exec --json` in a fresh home; the summary is the last stderr line. */
async function exec(policyPath: string, command: string[], opts: Partial<CliOptions> = {}): Promise<PodRun> {
  const home = opts.home ?? tmpDir('home');
  const r = await cli(['exec', '--policy', policyPath, '--json', '--', ...command], { ...opts, home });
  const last = r.stderr.trim().split('\n').at(-1) ?? '';
  let summary: Summary;
  try {
    summary = JSON.parse(last) as Summary;
  } catch {
    assert.fail(`no JSON summary as the last stderr line (exit ${r.code}):\n${r.stderr}`);
  }
  assert.ok(r.runId, `no "clawpod: run ID" line on stderr:\n${r.stderr}`);
  assert.equal(summary.run, r.runId);
  assert.equal(summary.exitCode, r.code, 'the JSON summary and the process agree on the exit code');
  return { ...r, runId: r.runId, summary, home };
}

function limitHits(run: PodRun): { cap: unknown; limit: unknown }[] {
  return auditEvents(run.home, run.runId)
    .filter((e) => e.type === 'limit.hit')
    .map((e) => ({ cap: e.data.cap, limit: e.data.limit }));
}

async function assertNoResidue(run: PodRun): Promise<void> {
  const uid = podUidOf(run.home, run.runId);
  assert.ok(uid !== null && uid >= 1_800_000_000, `the pod ran as a dedicated uid (got ${uid})`);
  await eventually(() => residue(run.runId, uid).length === 0, 3000);
  assert.deepEqual(residue(run.runId, uid), [], 'nothing of the pod is left on the host');
}

test('memory cap: a main process allocating past 64Mi is killed with 137, limit.hit memory, run status killed', { skip }, async () => {
  // The pod's main process itself: a child's OOM kill is the kernel's enforcement and the pod goes
  // on (test/caps-enforce.test.ts); the main one's ends the pod.
  const cmd = ['python3', '-c', 'b = bytearray(100 << 20); print(len(b))'];
  const run = await exec(TIGHT, cmd);
  assert.equal(run.code, 137, run.stderr);
  assert.equal(run.summary.status, 'killed');
  assert.equal(run.summary.limitHit, 'memory');
  assert.deepEqual(limitHits(run), [{ cap: 'memory', limit: 64 * MiB }]);
  assert.match(run.stderr, /memory cap hit \(resources.memory: 64Mi\): the kernel killed python3/);
  const show = await cli(['runs', 'show', run.runId], { home: run.home });
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, /^status:\s+killed \(limit hit: memory\)$/m);
  assert.match(show.stdout, /^exit code:\s+137$/m);
  await assertNoResidue(run);

  const control = await exec(ROOMY, cmd);
  assert.equal(control.code, 0, control.stderr);
  assert.equal(control.stdout.trim(), String(100 * MiB), 'the command really held 100 MiB');
  assert.equal(control.summary.status, 'done');
  assert.deepEqual(limitHits(control), []);
});

test("pids cap: a burst of background processes past 32 has its fork refused, limit.hit pids, the shell's own exit", { skip }, async () => {
  const cmd = ['sh', '-c', 'for i in $(seq 1 64); do sleep 1 & done; wait'];
  const run = await exec(TIGHT, cmd);
  // The kernel refused the 33rd task (EAGAIN): that is the enforcement; the shell gave up on its
  // own terms, and a fork storm is what kills a pod (test/caps-enforce.test.ts).
  assert.match(run.stderr, /Cannot fork/);
  assert.equal(run.code, 2, run.stderr);
  assert.equal(run.summary.status, 'done');
  assert.equal(run.summary.limitHit, null);
  assert.deepEqual(limitHits(run), [{ cap: 'pids', limit: 32 }]);
  assert.match(run.stderr, /^clawpod: pids cap hit \(resources\.pids: 32\): \d+ forks? refused/m);
  await assertNoResidue(run);

  const control = await exec(ROOMY, cmd);
  assert.equal(control.code, 0, control.stderr);
  assert.deepEqual(limitHits(control), []);
});

test('timeout: sleep 30 under a 2s wall clock exits 124 with limit.hit timeout, long before 30 s', { skip }, async () => {
  const started = Date.now();
  // A setsid child in its own session must go down with the rest of the pod.
  const run = await exec(policy({ timeout: '2s' }), ['sh', '-c', 'setsid sleep 100 & sleep 30']);
  const elapsed = Date.now() - started;
  assert.equal(run.code, 124, run.stderr);
  assert.equal(run.summary.status, 'timeout');
  assert.equal(run.summary.limitHit, 'timeout');
  assert.deepEqual(limitHits(run), [{ cap: 'timeout', limit: 2000 }]);
  assert.ok(elapsed < 20_000, `the run was stopped by its 2s cap, not by sleep 30 ending (took ${elapsed} ms)`);
  await assertNoResidue(run);

  const control = await exec(policy({ timeout: '2s' }), ['true']);
  assert.equal(control.code, 0, control.stderr);
  assert.deepEqual(limitHits(control), []);
});

for (const dir of ['/tmp', '/workspace']) {
  test(`disk cap: writing 100 MiB into ${dir} with disk 16Mi fails with ENOSPC and records limit.hit disk`, { skip }, async () => {
    const cmd = ['sh', '-c', `head -c 100M /dev/zero > ${dir}/fill; echo "write exit $?" >&2`];
    const run = await exec(TIGHT, cmd);
    assert.match(run.stderr, /No space left on device/, 'the write itself failed with ENOSPC');
    assert.doesNotMatch(run.stderr, /write exit 0/);
    assert.deepEqual(limitHits(run), [{ cap: 'disk', limit: 16 * MiB }]);
    // The kernel's ENOSPC is the enforcement (issue 8): the command goes on and decides.
    assert.equal(run.code, 0, 'the pod was not killed: sh went on after the failed write');
    assert.equal(run.summary.status, 'done');
    assert.match(run.stderr, /^clawpod: the pod's disk was full \(resources\.disk: 16Mi\)/m);
    await assertNoResidue(run);
  });
}

test('disk cap: the write is refused even when the pod frees the space at once', { skip }, async () => {
  // The cap itself is hard (the kernel refuses the write). Its limit.hit event is recorded only
  // when clawpod sees the stage full (sampled every 100 ms and when the pod ends): tmpfs keeps
  // no count of refused writes, so a fill-then-delete between samples leaves no event. Known
  // limitation, named in the README; what must hold is that the space never grew past the cap.
  const run = await exec(TIGHT, ['sh', '-c', 'head -c 100M /dev/zero > /tmp/fill; wc -c < /tmp/fill; rm -f /tmp/fill']);
  assert.match(run.stderr, /No space left on device/, 'the write itself failed with ENOSPC');
  assert.ok(Number(run.stdout.trim()) <= 16 * MiB, `at most 16 MiB written, got ${run.stdout.trim()}`);
});

test('disk cap control: the same 100 MiB write succeeds with disk 256Mi', { skip }, async () => {
  const run = await exec(ROOMY, ['sh', '-c', 'head -c 100M /dev/zero > /tmp/fill && wc -c < /tmp/fill']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout.trim(), String(100 * MiB));
  assert.deepEqual(limitHits(run), []);
});

/** Runs a 1 s busy loop; reads the pod's CPU quota from its cgroup while it runs. */
async function busyLoop(cpus: number): Promise<{ run: PodRun; quota: string | null; period: string | null; cpu: number; wall: number }> {
  const script = [
    'import time',
    's = time.time(); c = time.process_time()',
    'while time.time() - s < 1.0: pass',
    'print(time.process_time() - c, time.time() - s)',
  ].join('\n');
  let quota: string | null = null;
  let period: string | null = null;
  let seen = '';
  const run = await exec(policy({ cpus, timeout: '20s' }), ['python3', '-c', script], {
    onSpawn: (child) =>
      child.stderr?.on('data', (d) => {
        seen += d;
        const id = seen.match(/clawpod: run (r-[\w-]+)/)?.[1];
        if (!id || quota !== null) return;
        const dir = `/sys/fs/cgroup/cpu/clawpod/${id}`;
        try {
          quota = fs.readFileSync(path.join(dir, 'cpu.cfs_quota_us'), 'utf8').trim();
          period = fs.readFileSync(path.join(dir, 'cpu.cfs_period_us'), 'utf8').trim();
        } catch (e) {
          quota = `unreadable: ${(e as Error).message}`;
        }
      }),
  });
  assert.equal(run.code, 0, run.stderr);
  const [cpu, wall] = run.stdout.trim().split(/\s+/).map(Number);
  return { run, quota, period, cpu, wall };
}

test('cpu cap: cpus 0.2 sets a 20 ms per 100 ms quota and throttles a busy loop well below wall time', { skip }, async () => {
  const capped = await busyLoop(0.2);
  assert.equal(capped.quota, '20000', 'cpu.cfs_quota_us of the pod cgroup while it runs');
  assert.equal(capped.period, '100000');
  assert.ok(capped.wall >= 1, `the loop ran for a second of wall time (${capped.wall})`);
  assert.ok(capped.cpu < capped.wall * 0.5, `CPU time ${capped.cpu}s is clearly below wall time ${capped.wall}s x 0.5`);
  assert.deepEqual(limitHits(capped.run), [], 'throttling is not a kill');

  const control = await busyLoop(1);
  assert.equal(control.quota, '100000', 'a whole core under cpus: 1');
});

test('a cap that fires kills the whole tree, setsid children included', { skip }, async () => {
  // The setsid sleep is in its own session; ps shows it was running before memory blew up.
  const cmd = ['sh', '-c', 'setsid sleep 100 & sleep 0.3; ps -o sid=,args= -C sleep >&2; exec python3 -c "x = bytearray(100 << 20)"'];
  const run = await exec(TIGHT, cmd);
  assert.equal(run.code, 137, run.stderr);
  assert.equal(run.summary.limitHit, 'memory', "the main process (sh exec'd into python3) died of the cap");
  assert.deepEqual(limitHits(run), [{ cap: 'memory', limit: 64 * MiB }]);
  const sleeper = run.stderr.match(/^\s*(\d+)\s+sleep 100$/m);
  assert.ok(sleeper, `the setsid child was running before the kill:\n${run.stderr}`);
  await assertNoResidue(run);
});

test("exit codes: the command's own code passes through, 127 not found, 126 not executable", { skip }, async () => {
  const ws = workspace({ 'noexec.sh': 'echo should not run\n' });
  fs.chmodSync(path.join(ws, 'noexec.sh'), 0o644);
  const three = await exec(TIGHT, ['sh', '-c', 'exit 3'], { cwd: ws });
  assert.equal(three.code, 3);
  assert.equal(three.summary.status, 'done');
  assert.deepEqual(limitHits(three), []);
  const missing = await exec(TIGHT, ['no-such-command-clawpod-test'], { cwd: ws });
  assert.equal(missing.code, 127, missing.stderr);
  const noexec = await exec(TIGHT, ['./noexec.sh'], { cwd: ws });
  assert.equal(noexec.code, 126, noexec.stderr);
  assert.doesNotMatch(noexec.stdout, /should not run/);
});
