// The reaper's rules (reap.ts) through the fake backend: a dead run is closed once, whoever else
// reaped or finished it since the listing; a chain that ended is never appended to (the row
// follows its run.end); a run that never reached run.start leaves nothing; a chain that no longer
// verifies is never extended; a torn last line is repaired before run.end; a removal cut short is
// finished. test/crash-points.test.ts checks the same through the real binary at every step.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { AuditWriter, verifyAudit } from '../audit/chain.js';
import type { RunRecord, RunStore } from '../store/runs.js';
import { createRig, type Rig } from '../testkit/rig.js';
import type { Context } from './context.js';
import { reapInterrupted, removeRunFiles } from './reap.js';

const DEAD = { pid: 2 ** 22 + 12345, pidStart: '1', hostBootId: 'another-boot' };

/** A run left 'running' by a dead clawpod, its chain holding `events` (type, data). */
function deadRun(rig: Rig, id: string, events: [string, object][], extra: Partial<RunRecord> = {}): string {
  const dir = rig.ctx.runDir(id);
  const auditPath = path.join(dir, 'audit.jsonl');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const w = AuditWriter.create(auditPath, id);
  for (const [type, data] of events) w.append(type as never, data);
  w.close();
  rig.ctx.store().createRun({
    id,
    kind: 'exec',
    status: 'running',
    command: ['x'],
    workspace: rig.ws,
    workspaceMode: 'overlay',
    policySource: 'builtin:strict',
    backend: 'fake',
    ...DEAD,
    auditPath,
    runDir: dir,
    ...extra,
  });
  return auditPath;
}

function ends(rig: Rig, id: string): number {
  return rig.audit(id).filter((e) => e.type === 'run.end').length;
}

/** The rig's context, but its store lists the running runs as they were at `snapshot`. */
function staleListing(ctx: Context, snapshot: RunRecord[]): Context {
  const store = ctx.store();
  const stale: RunStore = Object.create(store);
  stale.runningRuns = () => snapshot;
  return { ...ctx, store: () => stale };
}

test('a reaper acting on a stale listing never closes a run again that another reaper closed', () => {
  const rig = createRig();
  try {
    deadRun(rig, 'r-dead', [['run.start', { kind: 'exec' }]]);
    const listing = rig.ctx.store().runningRuns();
    assert.deepEqual(reapInterrupted(rig.ctx), ['r-dead'], 'the first reaper closes it');
    assert.deepEqual(reapInterrupted(staleListing(rig.ctx, listing)), [], 'the second, listing from before, claims nothing');
    assert.equal(ends(rig, 'r-dead'), 1, 'one run.end');
    const row = rig.ctx.store().getRun('r-dead');
    const v = verifyAudit(row?.auditPath as string);
    assert.ok(v.ok);
    assert.deepEqual(row?.summary, { auditEvents: v.count, auditHead: v.lastHash });
    assert.equal(row?.status, 'interrupted');
  } finally {
    rig.cleanup();
  }
});

test('a dead run whose chain ended is closed from its run.end, the chain untouched', () => {
  const rig = createRig();
  try {
    const end = { status: 'done', exitCode: 0, limitHit: null, filesChanged: 2 };
    const file = deadRun(rig, 'r-ended', [
      ['run.start', { kind: 'exec' }],
      ['run.end', end],
    ]);
    fs.mkdirSync(path.join(rig.ctx.runDir('r-ended'), 'changes', 'tree'), { recursive: true });
    const before = fs.readFileSync(file);
    reapInterrupted(rig.ctx);
    assert.deepEqual(fs.readFileSync(file), before, 'nothing appended');
    const row = rig.ctx.store().getRun('r-ended');
    const v = verifyAudit(file);
    assert.ok(v.ok);
    assert.equal(row?.status, 'done');
    assert.equal(row?.exitCode, 0);
    assert.equal(row?.filesChanged, 2);
    assert.equal(row?.diffState, 'pending', 'its change set stays for review');
    assert.equal(row?.endedAt, rig.audit('r-ended')[1].ts);
    assert.deepEqual(row?.summary, { auditEvents: 2, auditHead: v.lastHash });
    assert.ok(fs.existsSync(path.join(rig.ctx.runDir('r-ended'), 'changes')));
  } finally {
    rig.cleanup();
  }
});

test('a dead run with no run.start leaves no row, no directory and no egress files; a queued one goes back to its queue', () => {
  const rig = createRig();
  try {
    deadRun(rig, 'r-empty', []);
    const egress = rig.backend.egressPaths('r-empty');
    for (const f of [egress.socketPath, egress.caBundle as string]) fs.writeFileSync(f, 'x');
    // A row whose directory was never made (killed right after the row).
    rig.ctx.store().createRun({
      id: 'r-rowonly',
      kind: 'exec',
      status: 'running',
      command: ['x'],
      workspace: '',
      workspaceMode: 'none',
      policySource: 'builtin:strict',
      backend: 'fake',
      ...DEAD,
      auditPath: path.join(rig.ctx.runDir('r-rowonly'), 'audit.jsonl'),
      runDir: rig.ctx.runDir('r-rowonly'),
    });
    deadRun(rig, 'r-queued', [], { request: { command: ['x'] } });
    reapInterrupted(rig.ctx);
    assert.equal(rig.ctx.store().getRun('r-empty'), undefined);
    assert.equal(rig.ctx.store().getRun('r-rowonly'), undefined);
    assert.equal(fs.existsSync(rig.ctx.runDir('r-empty')), false);
    assert.equal(fs.existsSync(egress.socketPath), false, 'the socket is removed');
    assert.equal(fs.existsSync(egress.caBundle as string), false, 'and the CA');
    const queued = rig.ctx.store().getRun('r-queued');
    assert.equal(queued?.status, 'queued', 'a server run that never started is queued again');
    assert.equal(queued?.pid, null);
    assert.equal(fs.existsSync(rig.ctx.runDir('r-queued')), false);
  } finally {
    rig.cleanup();
  }
});

test('a started run whose directory holds more than an empty chain is never dropped', () => {
  const rig = createRig();
  try {
    deadRun(rig, 'r-kept', []);
    fs.writeFileSync(path.join(rig.ctx.runDir('r-kept'), 'stdout.log'), 'out\n');
    reapInterrupted(rig.ctx);
    assert.equal(rig.ctx.store().getRun('r-kept')?.status, 'interrupted');
    assert.ok(fs.existsSync(path.join(rig.ctx.runDir('r-kept'), 'stdout.log')));
  } finally {
    rig.cleanup();
  }
});

test('a chain that no longer verifies is never extended; a torn last line is repaired, then closed', () => {
  const rig = createRig();
  try {
    const broken = deadRun(rig, 'r-broken', [
      ['run.start', { kind: 'exec' }],
      ['exec.start', { pid: 1 }],
    ]);
    const lines = fs.readFileSync(broken, 'utf8').split('\n');
    fs.writeFileSync(broken, [lines[0].replace('"exec"', '"EXEC"'), ...lines.slice(1)].join('\n'));
    const tampered = fs.readFileSync(broken);
    const torn = deadRun(rig, 'r-torn', [['run.start', { kind: 'exec' }]]);
    fs.appendFileSync(torn, '{"seq":2,"ts":"2026-');
    reapInterrupted(rig.ctx);
    assert.deepEqual(fs.readFileSync(broken), tampered, 'the broken chain is left as it is');
    assert.equal(rig.ctx.store().getRun('r-broken')?.status, 'interrupted');
    assert.equal(rig.ctx.store().getRun('r-broken')?.summary, null);
    assert.ok(verifyAudit(torn).ok, 'the torn line was cut and the chain closed');
    assert.deepEqual(
      rig.audit('r-torn').map((e) => e.type),
      ['run.start', 'run.end'],
    );
    assert.equal(rig.ctx.store().getRun('r-torn')?.summary?.auditEvents, 2);
  } finally {
    rig.cleanup();
  }
});

test('a removal cut short after its rename is finished by the next reaper; a live run is left alone', () => {
  const rig = createRig();
  try {
    deadRun(rig, 'r-gone', [['run.start', { kind: 'exec' }]], { status: 'done' });
    const runs = path.join(rig.ctx.clawpodHome, 'runs');
    // As removeRunFiles does up to its rename, with the row still there (killed right after).
    fs.mkdirSync(path.join(rig.ctx.clawpodHome, 'removing'));
    fs.renameSync(rig.ctx.runDir('r-gone'), path.join(rig.ctx.clawpodHome, 'removing', 'r-gone'));
    deadRun(rig, 'r-live', [['run.start', { kind: 'exec' }]], { pid: process.pid, pidStart: null, hostBootId: null });
    reapInterrupted(rig.ctx);
    assert.equal(rig.ctx.store().getRun('r-gone'), undefined);
    assert.deepEqual(fs.readdirSync(path.join(rig.ctx.clawpodHome, 'removing')), []);
    assert.deepEqual(fs.readdirSync(runs), ['r-live']);
    assert.equal(rig.ctx.store().getRun('r-live')?.status, 'running', 'its clawpod (this process) is alive');
    assert.equal(ends(rig, 'r-live'), 0);
    rig.ctx.store().updateRun('r-live', { status: 'done' });
    removeRunFiles(rig.ctx, rig.ctx.store().getRun('r-live') as RunRecord);
    assert.deepEqual(fs.readdirSync(runs), []);
    assert.equal(rig.ctx.store().getRun('r-live'), undefined);
  } finally {
    rig.cleanup();
  }
});
