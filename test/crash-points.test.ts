// A clawpod SIGKILLed at any step of a run's life (CLAWPOD_TEST_CRASH_AT, src/core/crash-points.ts)
// leaves a store and an audit chain that agree once any later clawpod has reaped: every row is
// terminal, its chain verifies with exactly one run.start and one run.end and the store's head is
// the chain's; a chain that already ended is never appended to; no directory is left without a
// row; no pod process, mount, cgroup, record, uid lock, loop device or egress file is left. Two
// clawpods reaping at once close each dead run once. Needs root (the privileged pod path).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { AuditWriter, verifyAudit } from '../src/audit/chain.js';
import { CRASH_STEPS, type CrashStep } from '../src/core/crash-points.js';
import { openStore, type RunRecord } from '../src/store/runs.js';
import { auditEvents, cli, eventually, IS_ROOT, policyFile, residue, tmpDir, workspace } from './helpers.js';

const skip = IS_ROOT ? false : 'needs root: the privileged pod path';
const TOKEN = 'tok-crash-points';
// Egress with a secret, so the run has a proxy socket and a CA file to leave behind.
const POLICY = policyFile(
  [
    'version: 1',
    'resources:',
    '  timeout: 20s',
    'network:',
    '  allow: ["svc.test:9"]',
    '  hosts: { svc.test: 127.0.0.1 }',
    'secrets:',
    '  - { name: SVC_TOKEN, from: env:CLAWPOD_CRASH_TOKEN, hosts: ["svc.test:9"] }',
  ].join('\n'),
);
// The pod writes into its overlay workspace, says so, and keeps running a moment (pod-output
// kills clawpod while it runs).
const COMMAND = ['sh', '-c', 'echo new > new.txt; echo written; sleep 0.5'];
const STARTED = CRASH_STEPS.indexOf('run-start');
const ENDED: CrashStep[] = ['run-end', 'store-end'];

function rows(home: string): RunRecord[] {
  const s = openStore(path.join(home, 'clawpod.db'));
  try {
    return s.listRuns({ limit: 1000 });
  } finally {
    s.close();
  }
}

function runDirs(home: string): string[] {
  try {
    return fs.readdirSync(path.join(home, 'runs'));
  } catch {
    return [];
  }
}

/** Run directories being removed ($CLAWPOD_HOME/removing, see removeRunFiles). */
function removing(home: string): string[] {
  try {
    return fs.readdirSync(path.join(home, 'removing'));
  } catch {
    return [];
  }
}

/** The pod uid of a run: its live-pod record while it has one, else exec.start in its chain. */
function podUid(home: string, id: string, chain = path.join(home, 'runs', id, 'audit.jsonl')): number | null {
  try {
    return JSON.parse(fs.readFileSync(`/run/clawpod/pods/${id}.json`, 'utf8')).uid ?? null;
  } catch {
    /* no record */
  }
  try {
    const start = fs
      .readFileSync(chain, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .find((e) => e.type === 'exec.start');
    return start?.data?.uid ?? null;
  } catch {
    return null;
  }
}

/** Loop devices backing a pod stage that no mount namespace mounts any more (leaked ones). */
function strayLoops(): string[] {
  const mounted = new Set<string>();
  for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      for (const l of fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n')) mounted.add(l.split(' ')[2]);
    } catch {
      /* exited */
    }
  }
  const out: string[] = [];
  for (const name of fs.readdirSync('/sys/block').filter((n) => /^loop\d+$/.test(n))) {
    try {
      const backing = fs.readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').trim();
      const dev = fs.readFileSync(`/sys/block/${name}/dev`, 'utf8').trim();
      if (backing.includes('stage-images') && !mounted.has(dev)) out.push(`${name} (${backing})`);
    } catch {
      /* not attached */
    }
  }
  return out;
}

/** Every invariant of one home's runs after a reap; returns the rows. */
async function assertConsistent(home: string): Promise<RunRecord[]> {
  const all = rows(home);
  for (const row of all) {
    assert.notEqual(row.status, 'running', `run ${row.id} has a terminal status`);
    const verify = await cli(['audit', 'verify', row.id], { home });
    assert.equal(verify.code, 0, `audit verify ${row.id}: ${verify.stdout}${verify.stderr}`);
    const events = auditEvents(home, row.id);
    assert.equal(events.filter((e) => e.type === 'run.start').length, 1, `${row.id}: one run.start`);
    assert.equal(events.filter((e) => e.type === 'run.end').length, 1, `${row.id}: one run.end`);
    assert.equal(events.at(-1)?.type, 'run.end', `${row.id}: the chain ends with run.end`);
    assert.equal(events.at(-1)?.data.status, row.status, `${row.id}: the store's status is run.end's`);
    const v = verifyAudit(path.join(home, 'runs', row.id, 'audit.jsonl'));
    assert.ok(v.ok);
    assert.deepEqual(row.summary, { auditEvents: v.count, auditHead: v.lastHash }, `${row.id}: the store's head is the chain's`);
  }
  const ids = new Set(all.map((r) => r.id));
  assert.deepEqual(
    runDirs(home).filter((d) => !ids.has(d)),
    [],
    'no run directory without a store row',
  );
  assert.deepEqual(removing(home), [], 'no removal left unfinished');
  return all;
}

async function assertNoResidue(id: string, uid: number | null): Promise<void> {
  // One snapshot for the wait and the assert: other clawpods on the host (other tests) attach
  // and detach loop devices of their own at any moment; one of ours that leaked never goes.
  let pod: string[] = [];
  let loops: string[] = [];
  await eventually(() => {
    pod = residue(id, uid);
    loops = strayLoops();
    return pod.length === 0 && loops.length === 0;
  }, 10_000);
  assert.deepEqual(pod, [], 'no pod process, mount, cgroup, pod record, uid lock or egress file');
  assert.deepEqual(loops, [], 'no loop device left attached');
}

for (const step of CRASH_STEPS.filter((s) => s !== 'rm-row')) {
  test(`SIGKILL at ${step}, then one reap: store and chain agree, nothing left behind`, { skip }, async () => {
    const home = tmpDir('home');
    const ws = workspace({ 'keep.txt': 'keep\n' });
    const r = await cli(['exec', '--policy', POLICY, '--workspace', ws, '--', ...COMMAND], {
      home,
      cwd: ws,
      env: { CLAWPOD_TEST_CRASH_AT: step, CLAWPOD_CRASH_TOKEN: TOKEN },
    });
    assert.equal(r.code, 137, `clawpod was killed at ${step} (exit ${r.code}):\n${r.stderr}`);
    // The hook names the run: before its row exists (pod-held, egress) nothing in the home does.
    const said = r.stderr.match(/^clawpod: test crash at \S+ \(run (\S+)\)$/m)?.[1];
    assert.ok(said, `the hook named the run:\n${r.stderr}`);
    const ids = [...new Set([said, ...rows(home).map((x) => x.id), ...runDirs(home)])];
    assert.equal(ids.length, 1, `one run was begun: ${ids.join(', ')}`);
    const id = ids[0];
    if (CRASH_STEPS.indexOf(step) < CRASH_STEPS.indexOf('store-row')) {
      assert.deepEqual(rows(home), [], `nothing is recorded before ${step}'s run has its row`);
      assert.deepEqual(runDirs(home), [], 'nor any directory');
    }
    const uid = podUid(home, id);
    // From exec.start on the chain names the pod's uid (its live-pod record, read before that,
    // may already be gone: any clawpod on the host reaps pods of dead clawpods).
    if (CRASH_STEPS.indexOf(step) >= CRASH_STEPS.indexOf('exec-start')) assert.ok(uid !== null && uid >= 1_800_000_000, `the pod had its uid (${uid})`);
    const chain = path.join(home, 'runs', id, 'audit.jsonl');
    const before = fs.existsSync(chain) ? fs.readFileSync(chain) : null;

    const list = await cli(['runs', 'list'], { home });
    assert.equal(list.code, 0, list.stderr);

    const after = await assertConsistent(home);
    const row = after.find((x) => x.id === id);
    if (CRASH_STEPS.indexOf(step) < STARTED) {
      // The pod was never let go before run.start: nothing ran, and nothing of it is kept.
      assert.equal(row, undefined, 'a run that never started leaves no row');
      assert.equal(fs.existsSync(path.join(home, 'runs', id)), false, 'and no directory');
    } else if (ENDED.includes(step)) {
      assert.ok(row, 'the run is kept');
      assert.equal(row.status, 'done', 'the store says what run.end says');
      assert.equal(row.exitCode, 0);
      assert.equal(row.filesChanged, 1);
      assert.equal(row.diffState, 'pending', 'its change set is offered for review');
      assert.ok(fs.existsSync(path.join(home, 'runs', id, 'changes', 'tree', 'new.txt')));
      assert.deepEqual(fs.readFileSync(chain), before, 'a chain that had ended is never appended to');
    } else {
      assert.ok(row, 'the run is kept');
      assert.equal(row.status, 'interrupted');
      assert.equal(row.diffState, 'none', 'a change set of a run cut short is never offered');
      assert.equal(fs.existsSync(path.join(home, 'runs', id, 'changes')), false);
    }
    await assertNoResidue(id, uid);
    assert.equal(fs.readFileSync(path.join(ws, 'keep.txt'), 'utf8'), 'keep\n');
    assert.equal(fs.existsSync(path.join(ws, 'new.txt')), false, 'the overlay write stayed out of the workspace');
  });
}

test('SIGKILL at rm-row (--rm of a run that changed nothing), then one reap: no row, no directory', { skip }, async () => {
  const home = tmpDir('home');
  const ws = workspace({ 'keep.txt': 'keep\n' });
  const r = await cli(['exec', '--rm', '--policy', POLICY, '--workspace', ws, '--', 'true'], {
    home,
    cwd: ws,
    env: { CLAWPOD_TEST_CRASH_AT: 'rm-row', CLAWPOD_CRASH_TOKEN: TOKEN },
  });
  assert.equal(r.code, 137, `clawpod was killed at rm-row (exit ${r.code}):\n${r.stderr}`);
  const ids = [...runDirs(home), ...removing(home)];
  assert.equal(ids.length, 1, `the directory was still there, in runs/ or set aside: ${ids.join(', ')}`);
  const id = ids[0];
  const uid = podUid(home, id, path.join(home, runDirs(home).length ? 'runs' : 'removing', id, 'audit.jsonl'));
  const list = await cli(['runs', 'list'], { home });
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(await assertConsistent(home), []);
  assert.deepEqual([...runDirs(home), ...removing(home)], [], 'the removal was finished');
  await assertNoResidue(id, uid);
});

// The pod is set up before go (bwrap waits on its seccomp program, native/podinit.c): a clawpod
// killed at any step before go must leave a command that never ran, even one whose workspace is
// writable in place.
const RW = policyFile('version: 1\nfilesystem: { workspace: rw }\nresources: { timeout: 20s }\n');
for (const step of CRASH_STEPS.slice(0, CRASH_STEPS.indexOf('exec-start'))) {
  test(`SIGKILL at ${step}: the held pod's command never runs (rw workspace)`, { skip }, async () => {
    const home = tmpDir('home');
    const ws = workspace({ 'keep.txt': 'keep\n' });
    const r = await cli(['exec', '--policy', RW, '--workspace', ws, '--', 'sh', '-c', 'echo ran > ran.txt'], {
      home,
      cwd: ws,
      env: { CLAWPOD_TEST_CRASH_AT: step },
    });
    assert.equal(r.code, 137, `clawpod was killed at ${step} (exit ${r.code}):\n${r.stderr}`);
    const id = r.stderr.match(/^clawpod: test crash at \S+ \(run (\S+)\)$/m)?.[1] as string;
    assert.ok(id, r.stderr);
    // The pod dies with its clawpod; its record and groups wait for the next clawpod's reap.
    const list = await cli(['runs', 'list'], { home });
    assert.equal(list.code, 0, list.stderr);
    await assertNoResidue(id, null);
    assert.deepEqual(fs.readdirSync(ws).sort(), ['keep.txt'], 'the command never ran');
    const kept = await assertConsistent(home);
    // From run.start on the run is kept, closed as interrupted (it had begun, as far as the chain says).
    if (CRASH_STEPS.indexOf(step) < STARTED) assert.deepEqual(kept, [], 'no run is kept');
    else
      assert.deepEqual(
        kept.map((k) => [k.id, k.status, k.filesChanged]),
        [[id, 'interrupted', 0]],
      );
  });
}

test('two clawpods reaping at once close each dead run exactly once', { skip }, async () => {
  const home = tmpDir('home');
  const store = openStore(path.join(home, 'clawpod.db'));
  const ids: string[] = [];
  for (let i = 0; i < 24; i++) {
    const id = `r-20260101-000000-${String(i).padStart(6, '0')}`;
    const dir = path.join(home, 'runs', id);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const w = AuditWriter.create(path.join(dir, 'audit.jsonl'), id);
    w.append('run.start', { kind: 'exec' });
    // Every third one had ended when its clawpod died (before the store heard of it).
    if (i % 3 === 0) w.append('run.end', { status: 'done', exitCode: 0, limitHit: null, filesChanged: 0 });
    w.close();
    store.createRun({
      id,
      kind: 'exec',
      status: 'running',
      command: ['true'],
      workspace: '',
      workspaceMode: 'none',
      policySource: 'test',
      backend: 'bwrap',
      // A pid of another boot: dead to every reaper.
      pid: 1,
      pidStart: '1',
      hostBootId: '00000000-0000-0000-0000-000000000000',
      auditPath: path.join(dir, 'audit.jsonl'),
      runDir: dir,
    });
    ids.push(id);
  }
  store.close();
  const reapers = await Promise.all(Array.from({ length: 4 }, () => cli(['runs', 'list', '--limit', '100'], { home })));
  for (const r of reapers) assert.equal(r.code, 0, r.stderr);
  const after = await assertConsistent(home);
  assert.equal(after.length, 24);
  for (const row of after) assert.equal(row.status, Number(row.id.slice(-6)) % 3 === 0 ? 'done' : 'interrupted', row.id);
});
