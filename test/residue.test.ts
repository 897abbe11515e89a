// No residue on any exit path: after a pod ends, however it ends, no pod process, mount,
// cgroup, live-pod record or uid lock is left on the host. SIGKILL to clawpod is the one path
// where cleanup waits for the next clawpod, which must then reap it and close the run's audit
// chain as interrupted; and that reaping, which every clawpod start does host-wide, never
// touches a live pod of another clawpod. Needs root (dedicated pod uids, /run/clawpod, cgroups).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { auditEvents, cli, eventually, IS_ROOT, podUidOf, policyFile, residue, tmpDir, workspace, type CliResult } from './helpers.js';

const skip = IS_ROOT ? false : 'needs root: the privileged pod path';
const STAGE = '/run/clawpod/stage';

const POLICY = policyFile('version: 1\nresources:\n  memory: 64Mi\n  pids: 32\n  timeout: 2s\n  disk: 16Mi\n');
// Every pod leaves a setsid child in its own session and writes into its overlay workspace, so
// each path has a process that outlives its parent and a mount stack to clean up.
const PRELUDE = 'setsid sleep 100 & echo residue > /workspace/marker;';

interface Ended extends CliResult {
  runId: string;
  home: string;
  ws: string;
}

/** Host mounts on or under the pods' stage directory (there must never be any). */
function stageMounts(): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => {
      const mp = l.split(' ')[4] ?? '';
      return mp === STAGE || mp.startsWith(`${STAGE}/`);
    });
}

/** Calls back once clawpod has printed the run id, i.e. the pod is running. */
function whenStarted(child: ChildProcess, then: (id: string) => void): void {
  let seen = '';
  let fired = false;
  child.stderr?.on('data', (d) => {
    seen += d;
    const id = seen.match(/clawpod: run (r-[\w-]+)/)?.[1];
    if (id && !fired) {
      fired = true;
      then(id);
    }
  });
}

async function runPod(script: string, signal?: NodeJS.Signals): Promise<Ended> {
  const home = tmpDir('home');
  const ws = workspace({ 'keep.txt': 'unchanged\n' });
  const r = await cli(['exec', '--policy', POLICY, '--', 'sh', '-c', `${PRELUDE} ${script}`], {
    home,
    cwd: ws,
    // Give the pod a moment to have its setsid child and its write in place, then signal.
    onSpawn: signal ? (child) => whenStarted(child, () => setTimeout(() => child.kill(signal), 300)) : undefined,
  });
  assert.ok(r.runId, `clawpod printed the run id (exit ${r.code}):\n${r.stderr}`);
  return { ...r, runId: r.runId, home, ws };
}

async function assertClean(run: Ended): Promise<void> {
  const uid = podUidOf(run.home, run.runId);
  assert.ok(uid !== null && uid >= 1_800_000_000, `the pod had a dedicated uid (got ${uid})`);
  await eventually(() => residue(run.runId, uid).length === 0, 3000);
  assert.deepEqual(residue(run.runId, uid), [], 'no pod process, mount, cgroup, record or uid lock');
  assert.deepEqual(stageMounts(), [], 'the stage directory has no mounts on the host');
  assert.equal(fs.readFileSync(`${run.ws}/keep.txt`, 'utf8'), 'unchanged\n');
  assert.equal(fs.existsSync(`${run.ws}/marker`), false, 'the overlay write stayed out of the workspace');
}

function lastEvent(run: Ended): { type: string; data: Record<string, unknown> } {
  const events = auditEvents(run.home, run.runId);
  return events[events.length - 1];
}

test('normal exit 0 leaves nothing behind', { skip }, async () => {
  const run = await runPod('exit 0');
  assert.equal(run.code, 0, run.stderr);
  assert.equal(lastEvent(run).type, 'run.end');
  assert.equal(lastEvent(run).data.status, 'done');
  await assertClean(run);
});

test('non-zero exit leaves nothing behind', { skip }, async () => {
  const run = await runPod('exit 7');
  assert.equal(run.code, 7, run.stderr);
  assert.equal(lastEvent(run).type, 'run.end');
  await assertClean(run);
});

test('timeout leaves nothing behind', { skip }, async () => {
  const run = await runPod('sleep 30');
  assert.equal(run.code, 124, run.stderr);
  assert.equal(lastEvent(run).type, 'run.end');
  assert.equal(lastEvent(run).data.status, 'timeout');
  await assertClean(run);
});

test('memory kill leaves nothing behind', { skip }, async () => {
  // The main process itself (a child's OOM kill leaves the pod running, see caps-enforce).
  const run = await runPod('exec python3 -c "x = bytearray(100 << 20)"');
  assert.equal(run.code, 137, run.stderr);
  assert.equal(lastEvent(run).type, 'run.end');
  assert.equal(lastEvent(run).data.limitHit, 'memory');
  await assertClean(run);
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  // An interrupt (Ctrl-C, or SIGTERM from the user or a supervisor) stops the pod and keeps its
  // work: status interrupted, exit 130.
  test(`${signal} to clawpod stops the pod: exit 130, run.end recorded, nothing behind`, { skip }, async () => {
    const run = await runPod('sleep 30', signal);
    assert.equal(run.code, 130, run.stderr);
    const end = lastEvent(run);
    assert.equal(end.type, 'run.end');
    assert.equal(end.data.status, 'interrupted');
    assert.equal(end.data.exitCode, 130);
    await assertClean(run);
    const verify = await cli(['audit', 'verify', run.runId], { home: run.home });
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  });
}

test('SIGKILL to clawpod: the pod dies at once, the next clawpod reaps the rest and closes the run', { skip }, async () => {
  const run = await runPod('sleep 30', 'SIGKILL');
  assert.equal(run.code, 137);
  const uid = podUidOf(run.home, run.runId);
  assert.ok(uid !== null, 'the pod had a dedicated uid');
  const processes = () => residue(run.runId, uid).filter((r) => r.startsWith('process'));
  await eventually(() => processes().length === 0, 3000);
  assert.deepEqual(processes(), [], 'the pod tree died with clawpod');
  assert.deepEqual(stageMounts(), [], 'no stage mount leaked to the host');

  // Any clawpod that opens the store reaps what the killed one left.
  const list = await cli(['runs', 'list'], { home: run.home });
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, new RegExp(`^${run.runId}\\s+interrupted\\b`, 'm'));
  await assertClean(run);
  const show = await cli(['runs', 'show', run.runId], { home: run.home });
  assert.match(show.stdout, /^status:\s+interrupted$/m);
  const verify = await cli(['audit', 'verify', run.runId], { home: run.home });
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  const end = lastEvent(run);
  assert.equal(end.type, 'run.end');
  assert.equal(end.data.status, 'interrupted');
  assert.equal(auditEvents(run.home, run.runId).filter((e) => e.type === 'run.end').length, 1, 'closed exactly once');
});

test("concurrent clawpods: one starting (and reaping) never breaks or kills another's pod", { skip }, async () => {
  // Every clawpod start reaps the pods of dead clawpods host-wide; a pod that is starting in
  // another clawpod at that moment is alive and must be left alone.
  const failures: string[] = [];
  for (let round = 0; round < 3; round++) {
    const runs = await Promise.all(
      Array.from({ length: 16 }, () => {
        const home = tmpDir('home');
        return cli(['exec', '--policy', POLICY, '--', 'sleep', '0.2'], { home }).then((r) => ({ ...r, home }));
      }),
    );
    for (const r of runs) {
      if (r.code !== 0) failures.push(`exit ${r.code}: ${r.stderr.trim().replace(/\n/g, ' | ')}`);
      else if (r.runId) {
        const uid = podUidOf(r.home, r.runId);
        await eventually(() => residue(r.runId!, uid).length === 0, 3000);
        assert.deepEqual(residue(r.runId, uid), []);
      }
    }
  }
  assert.deepEqual(failures, [], `${failures.length} of 48 concurrent pods failed`);
});
