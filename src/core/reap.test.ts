// reapInterrupted through fake backends: every backend of the registry reaps its own leftovers,
// one that cannot never stops the others, and runs left 'running' by a dead clawpod are closed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { AuditWriter, verifyAudit } from '../audit/chain.js';
import { createFakeBackend } from '../testkit/fake-backend.js';
import { createRig } from '../testkit/rig.js';
import { runExec } from './exec.js';
import { quietIO } from './io.js';
import { reapInterrupted } from './lifecycle.js';

test("reapInterrupted runs each registered backend's reap, even past one that throws", () => {
  const other = createFakeBackend({
    name: 'other',
    reap: () => {
      throw new Error('cannot reap');
    },
  });
  const third = createFakeBackend({ name: 'third', reap: () => ['pod-1'] });
  const rig = createRig({ backends: (fake) => ({ fake: () => fake, other: () => other, gone: 'not available here', third: () => third }) });
  try {
    reapInterrupted(rig.ctx);
    assert.deepEqual([rig.backend.reapCalls, other.reapCalls, third.reapCalls], [1, 1, 1]);
  } finally {
    rig.cleanup();
  }
});

test('a run left running by a clawpod that died is closed as interrupted; a run of ours reaps the others', async () => {
  const rig = createRig();
  try {
    const dir = rig.ctx.runDir('r-dead');
    const auditPath = `${dir}/audit.jsonl`;
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const w = AuditWriter.create(auditPath, 'r-dead', {});
    w.append('run.start', { kind: 'exec' });
    w.close();
    rig.ctx.store().createRun({
      id: 'r-dead',
      kind: 'exec',
      status: 'running',
      command: ['x'],
      workspace: rig.ws,
      workspaceMode: 'overlay',
      policySource: 'builtin:strict',
      backend: 'fake',
      pid: 2 ** 22 + 12345,
      pidStart: '1',
      hostBootId: 'another-boot',
      auditPath,
      runDir: dir,
    });
    const r = await runExec(rig.ctx, { command: ['true'], io: quietIO(), allowDegraded: false, cwd: rig.ws });
    assert.equal(rig.backend.reapCalls, 1, 'the run reaped leftovers while its pod ran');
    assert.equal(rig.ctx.store().getRun('r-dead')?.status, 'interrupted');
    assert.equal(rig.ctx.store().getRun(r.run)?.status, 'done', 'its own run is not reaped');
    assert.ok(verifyAudit(auditPath).ok);
    assert.equal(rig.audit('r-dead').at(-1)?.data.status, 'interrupted');
  } finally {
    rig.cleanup();
  }
});
