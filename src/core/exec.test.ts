// exec's run lifecycle through the fake backend (src/testkit): no root, no bwrap, no prelude.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { verifyAudit } from '../audit/chain.js';
import { guardsWith } from '../testkit/fake-backend.js';
import { createRig, type Rig } from '../testkit/rig.js';
import { runExec, type ExecOptions } from './exec.js';
import { quietIO, type RunEvent } from './io.js';

const exec = (rig: Rig, command: string[], o: Partial<ExecOptions> = {}) =>
  runExec(rig.ctx, { command, io: quietIO(), allowDegraded: false, cwd: rig.ws, ...o });

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function withRig(o: Parameters<typeof createRig>[0], fn: (rig: Rig) => Promise<void>): Promise<void> {
  const rig = createRig(o);
  try {
    await fn(rig);
  } finally {
    rig.cleanup();
  }
}

test('exec records a run: store row, a chain that verifies, its events in order, the output kept', () =>
  withRig({ files: { 'a.txt': 'a\n' } }, async (rig) => {
    const r = await exec(rig, ['sh', '-c', 'echo out-line; echo err-line >&2; echo new > b.txt']);
    assert.equal(r.exitCode, 0);
    assert.equal(r.status, 'done');
    assert.equal(r.filesChanged, 1);
    const row = rig.ctx.store().getRun(r.run);
    assert.ok(row);
    assert.equal(row.status, 'done');
    assert.equal(row.kind, 'exec');
    assert.equal(row.backend, 'fake');
    assert.equal(row.exitCode, 0);
    assert.equal(row.diffState, 'pending');
    assert.equal(row.filesChanged, 1);
    const v = verifyAudit(r.auditPath);
    assert.ok(v.ok, JSON.stringify(v));
    const types = rig.audit(r.run).map((e) => e.type);
    assert.deepEqual(types, ['run.start', 'exec.start', 'exec.exit', 'file.write', 'run.end']);
    const events = rig.audit(r.run);
    assert.equal(events[0].data.backend, 'fake');
    assert.deepEqual(events[1].data.command, ['sh', '-c', 'echo out-line; echo err-line >&2; echo new > b.txt']);
    assert.equal(events[3].data.path, 'b.txt');
    assert.equal(events[4].data.status, 'done');
    // The chain's head is kept in the store: a log cut short no longer matches it.
    assert.equal((row.summary as Record<string, unknown>).auditHead, (v as { lastHash: string }).lastHash);
    const dir = rig.ctx.runDir(r.run);
    assert.equal(fs.readFileSync(path.join(dir, 'stdout.log'), 'utf8'), 'out-line\n');
    assert.equal(fs.readFileSync(path.join(dir, 'stderr.log'), 'utf8'), 'err-line\n');
    assert.equal(fs.readFileSync(path.join(dir, 'changes', 'tree', 'b.txt'), 'utf8'), 'new\n');
    assert.equal(fs.existsSync(path.join(rig.ws, 'b.txt')), false, 'the workspace itself is untouched');
  }));

test("the command's exit code is the run's, in the summary, the row and exec.exit", () =>
  withRig({}, async (rig) => {
    const r = await exec(rig, ['sh', '-c', 'exit 3']);
    assert.equal(r.exitCode, 3);
    assert.equal(r.status, 'done');
    assert.equal(rig.ctx.store().getRun(r.run)?.exitCode, 3);
    assert.equal(rig.audit(r.run).find((e) => e.type === 'exec.exit')?.data.exitCode, 3);
    assert.equal(r.filesChanged, 0);
    assert.equal(rig.ctx.store().getRun(r.run)?.diffState, 'none');
  }));

test("the policy's timeout ends the pod: status timeout, exit 124, limit.hit recorded", () =>
  withRig({}, async (rig) => {
    const r = await exec(rig, ['sleep', '30'], { narrow: { timeout: '1s' } });
    assert.equal(r.status, 'timeout');
    assert.equal(r.exitCode, 124);
    assert.equal(r.limitHit, 'timeout');
    assert.equal(rig.ctx.store().getRun(r.run)?.limitHit, 'timeout');
    assert.ok(rig.audit(r.run).some((e) => e.type === 'limit.hit' && e.data.cap === 'timeout' && e.data.limit === 1000));
  }));

test('an interrupt through io.signal stops the pod gently: interrupted, 130, the work so far kept', () =>
  withRig({}, async (rig) => {
    const ac = new AbortController();
    const running = exec(rig, ['sh', '-c', 'echo kept > kept.txt; exec sleep 30'], { io: quietIO({ signal: ac.signal }) });
    await until(() => rig.backend.pods.length === 1 && fs.existsSync(path.join(rig.backend.pods[0].dir, 'kept.txt')), 'the pod to write');
    ac.abort();
    const r = await running;
    assert.equal(r.status, 'interrupted');
    assert.equal(r.exitCode, 130);
    assert.equal(r.filesChanged, 1, 'the change set is kept for review');
    const row = rig.ctx.store().getRun(r.run);
    assert.equal(row?.status, 'interrupted');
    assert.equal(row?.exitCode, 130);
    assert.equal(row?.diffState, 'pending');
    const events = rig.audit(r.run);
    assert.equal(events.find((e) => e.type === 'exec.exit')?.data.stoppedBy, 'interrupted by the user');
    assert.deepEqual(events.at(-1)?.data, { status: 'interrupted', exitCode: 130, limitHit: null, filesChanged: 1, stoppedBy: 'user' });
  }));

test('io.kill stops the pod at once', () =>
  withRig({}, async (rig) => {
    const kill = new AbortController();
    const t0 = Date.now();
    const running = exec(rig, ['sleep', '30'], { io: quietIO({ kill: kill.signal }) });
    await until(() => rig.backend.pods.length === 1 && rig.backend.pods[0].spec.id !== '', 'the pod');
    await new Promise((r) => setTimeout(r, 100));
    kill.abort();
    const r = await running;
    assert.ok(Date.now() - t0 < 5000, 'it did not wait for the command');
    assert.equal(r.status, 'killed');
    assert.equal(r.exitCode, 137);
    assert.equal(rig.audit(r.run).find((e) => e.type === 'exec.exit')?.data.stoppedBy, 'stopped by the user');
  }));

test('a pod that fails to start leaves no run directory and no row', () =>
  withRig(
    {
      onStart: () => {
        throw new Error('no pod today');
      },
    },
    async (rig) => {
      await assert.rejects(exec(rig, ['true']), /no pod today/);
      assert.deepEqual(rig.runDirs(), []);
      assert.equal(rig.ctx.store().countRuns(), 0);
    },
  ));

test('a failure after the run is recorded stops the pod and marks the run failed, exit 125', () =>
  withRig(
    {
      onGo: () => {
        throw new Error('the pod broke');
      },
    },
    async (rig) => {
      await assert.rejects(exec(rig, ['true']), /the pod broke/);
      const [row] = rig.ctx.store().listRuns();
      assert.ok(row, 'the run was recorded');
      assert.equal(row.status, 'failed');
      assert.equal(row.exitCode, 125);
      assert.ok(row.endedAt);
      const v = verifyAudit(row.auditPath as string);
      assert.ok(v.ok, JSON.stringify(v));
      const end = rig.audit(row.id).at(-1);
      assert.equal(end?.type, 'run.end');
      assert.deepEqual(end?.data, { status: 'failed', exitCode: 125, error: 'the pod broke' });
    },
  ));

test('--rm removes a run that changed nothing and keeps one that changed something', () =>
  withRig({}, async (rig) => {
    const quiet = await exec(rig, ['true'], { removeIfUnchanged: true });
    assert.equal(quiet.removed, true);
    assert.equal(rig.ctx.store().getRun(quiet.run), undefined);
    assert.equal(fs.existsSync(rig.ctx.runDir(quiet.run)), false);
    const busy = await exec(rig, ['sh', '-c', 'echo x > x.txt'], { removeIfUnchanged: true });
    assert.equal(busy.removed, undefined);
    assert.equal(busy.filesChanged, 1);
    assert.equal(rig.ctx.store().getRun(busy.run)?.filesChanged, 1);
    assert.ok(fs.existsSync(path.join(rig.ctx.runDir(busy.run), 'changes', 'tree', 'x.txt')));
  }));

test('narrowing flags tighten the policy for one run and refuse to widen it, naming the policy key', () =>
  withRig({}, async (rig) => {
    await assert.rejects(
      exec(rig, ['true'], { narrow: { memory: '64Gi' } }),
      /--memory 64Gi is more than the policy grants .*raise resources\.memory in the policy/,
    );
    await assert.rejects(exec(rig, ['true'], { narrow: { timeout: '1000h' } }), /raise resources\.timeout/);
    assert.equal(rig.ctx.store().countRuns(), 0, 'a refused flag leaves no run');
    assert.equal(rig.backend.starts.length, 0, 'and starts no pod');
    const r = await exec(rig, ['true'], { narrow: { pids: '7', memory: '64Mi' } });
    assert.equal(rig.backend.starts[0].rules.resources.pids, 7, 'the pod got the narrowed rules');
    assert.deepEqual(rig.audit(r.run)[0].data.narrowed, { memoryBytes: 64 * 1024 * 1024, pids: 7 });
  }));

test('a cap the backend cannot enforce refuses the run unless degraded runs are allowed, then is recorded', () =>
  withRig({ guards: guardsWith('missing', 'memory cap') }, async (rig) => {
    await assert.rejects(exec(rig, ['true']), /cannot enforce the memory cap .*--allow-degraded/);
    assert.equal(rig.ctx.store().countRuns(), 0);
    const r = await exec(rig, ['true'], { allowDegraded: true });
    const degraded = rig.audit(r.run).filter((e) => e.type === 'guard.degraded');
    assert.equal(degraded.length, 1);
    assert.equal(degraded[0].data.guard, 'memory cap');
    assert.equal(degraded[0].data.policy, rig.backend.starts[0].rules.resources.memoryBytes);
  }));

test('a missing guard that is no cap refuses the run even with --allow-degraded', () =>
  withRig({ guards: guardsWith('missing', 'seccomp') }, async (rig) => {
    await assert.rejects(exec(rig, ['true'], { allowDegraded: true }), /cannot start a pod: seccomp is missing/);
    assert.equal(rig.backend.starts.length, 0);
  }));

test('every event reaches io.event in order, and the audit log records the same events', () =>
  withRig(
    {
      // As a cap watch would, while the command runs (after exec.start).
      onGo: (pod) =>
        setTimeout(() => {
          pod.emit({ type: 'limit.hit', data: { cap: 'pids', limit: 64, message: 'sh hit the pids cap (resources.pids)' } });
          pod.emit({ type: 'policy.deny', data: { reason: 'one' } });
        }, 50),
      guards: guardsWith('missing', 'cpu cap'),
    },
    async (rig) => {
      const seen: RunEvent[] = [];
      const notices: string[] = [];
      const r = await exec(rig, ['sh', '-c', 'sleep 0.5; echo y > y.txt'], {
        allowDegraded: true,
        io: quietIO({ event: (e) => seen.push(e), notice: (l) => notices.push(l) }),
      });
      assert.ok(notices.includes('clawpod: sh hit the pids cap (resources.pids)'), 'a cap hit is a notice too');
      assert.deepEqual(r.capsHit, ['pids']);
      const face = seen.map((e) => (e.source === 'agent' ? e.event.type : `${e.source}:${e.type}`));
      assert.deepEqual(face, [
        'run:run.start',
        'pod:guard.degraded',
        'run:exec.start',
        'pod:limit.hit',
        'pod:policy.deny',
        'run:exec.exit',
        'run:file.write',
        'run:run.end',
      ]);
      const audit = rig.audit(r.run);
      assert.deepEqual(
        audit.map((e) => e.type),
        face.map((t) => t.split(':')[1]),
        'the audit log is one subscriber of the same stream',
      );
      for (const [i, e] of seen.entries()) {
        if (e.source === 'agent' || e.type === 'run.end') continue;
        assert.deepEqual(audit[i].data, e.data, `${e.type}: the same data`);
      }
    },
  ));
