// runTask through the fake backend's live pod and a replayed model: the agent loop, its tools in
// the pod, the transcript, approvals and interrupts, without root, bwrap or a network.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { createReplayProvider } from '../agent/providers/replay.js';
import type { ModelTurn } from '../agent/types.js';
import { verifyAudit } from '../audit/chain.js';
import { createRig, type Rig } from '../testkit/rig.js';
import { quietIO, type RunEvent, type RunIO } from './io.js';
import { runTask, type RunOptions } from './run.js';

const usage = { inputTokens: 10, outputTokens: 5 };
const bash = (id: string, command: string): ModelTurn => ({
  ok: true,
  content: [{ type: 'tool_use', id, name: 'bash', input: { command } }],
  stopReason: 'tool_use',
  usage,
});
const say = (text: string): ModelTurn => ({ ok: true, content: [{ type: 'text', text }], stopReason: 'end_turn', usage });

const task = (rig: Rig, turns: ModelTurn[], o: Partial<RunOptions> & { io?: RunIO } = {}) =>
  runTask(rig.ctx, {
    task: 'do the thing',
    io: quietIO(),
    allowDegraded: false,
    cwd: rig.ws,
    provider: { provider: createReplayProvider(turns), model: 'replay-test', providerName: 'replay' },
    ...o,
  });

async function withRig(o: Parameters<typeof createRig>[0], fn: (rig: Rig) => Promise<void>): Promise<void> {
  const rig = createRig(o);
  try {
    await fn(rig);
  } finally {
    rig.cleanup();
  }
}

const lines = (file: string) =>
  fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

test('a task: tool calls run in the live pod, transcript.jsonl and answer.txt are kept, the change set recorded', () =>
  withRig({ files: { 'CLAUDE.md': 'house rules\n' } }, async (rig) => {
    const seen: RunEvent[] = [];
    const r = await task(rig, [bash('t1', 'echo made > made.txt; echo tool-said-hi'), say('All done.')], { io: quietIO({ event: (e) => seen.push(e) }) });
    assert.equal(r.exitCode, 0);
    assert.equal(r.status, 'done');
    assert.equal(r.outcome.toolCalls, 1);
    assert.equal(r.filesChanged, 1);
    const calls = rig.backend.pods[0].calls();
    assert.ok(
      calls.some((c) => c[0] === 'cat' && c[1].endsWith('/CLAUDE.md')),
      'project notes were read through the pod',
    );
    assert.ok(
      calls.some((c) => c.includes('echo made > made.txt; echo tool-said-hi')),
      'the tool ran in the pod',
    );
    const dir = rig.ctx.runDir(r.run);
    const transcript = lines(path.join(dir, 'transcript.jsonl'));
    const result = transcript.find((l) => l.type === 'tool.result');
    assert.equal(result?.content, 'tool-said-hi');
    assert.equal(result?.isError, false);
    assert.deepEqual(transcript.find((l) => l.type === 'tool.call')?.input, { command: 'echo made > made.txt; echo tool-said-hi' });
    assert.equal(fs.readFileSync(path.join(dir, 'answer.txt'), 'utf8'), 'All done.');
    assert.equal(fs.readFileSync(path.join(dir, 'changes', 'tree', 'made.txt'), 'utf8'), 'made\n');
    assert.ok(verifyAudit(path.join(dir, 'audit.jsonl')).ok);
    const types = rig.audit(r.run).map((e) => e.type);
    assert.deepEqual(
      types.filter((t) => t !== 'model.request' && t !== 'model.response'),
      ['run.start', 'run.context', 'tool.call', 'tool.result', 'file.write', 'run.end'],
    );
    const context = seen.find((e) => e.source === 'run' && e.type === 'run.context');
    assert.deepEqual(context?.source === 'run' && context.data.claudeMd, ['CLAUDE.md (workspace)']);
    const agent = seen.flatMap((e) => (e.source === 'agent' && e.event.type !== 'text' ? [e.event.type] : []));
    assert.deepEqual(agent, ['model.request', 'model.response', 'tool.call', 'tool.result', 'model.request', 'model.response']);
    assert.equal(rig.ctx.store().getRun(r.run)?.status, 'done');
  }));

test('a gated tool nobody can approve (quietIO) is refused: exit 1, refusedApprovals, the tool never ran', () =>
  withRig({}, async (rig) => {
    const policy = rig.policy('version: 1\ntools: { approve: [bash] }\n');
    const r = await task(rig, [bash('t1', 'echo no > refused.txt'), say('I did it.')], { policy });
    assert.equal(r.exitCode, 1);
    assert.equal(r.outcome.refusedApprovals, 1);
    assert.notEqual(r.status, 'done');
    assert.equal(r.filesChanged, 0);
    assert.ok(!rig.backend.pods[0].calls().some((c) => c.includes('echo no > refused.txt')), 'the refused call never reached the pod');
    const end = rig.audit(r.run).at(-1);
    assert.equal(end?.data.refusedApprovals, 1);
    assert.ok(rig.audit(r.run).some((e) => e.type === 'policy.deny' && e.data.tool === 'bash'));
  }));

test('an interrupt stops the loop after the call in flight and keeps the work: interrupted, 130', () =>
  withRig({}, async (rig) => {
    const ac = new AbortController();
    const running = task(rig, [bash('t1', 'echo w > w.txt; sleep 0.5'), bash('t2', 'echo later > later.txt'), say('done')], {
      io: quietIO({ signal: ac.signal }),
    });
    const wrote = () => rig.backend.pods.length === 1 && fs.existsSync(path.join(rig.backend.pods[0].dir, 'w.txt'));
    for (let i = 0; i < 500 && !wrote(); i++) await new Promise((res) => setTimeout(res, 10));
    assert.ok(wrote(), 'the first call ran');
    ac.abort();
    const r = await running;
    assert.equal(r.exitCode, 130);
    assert.equal(r.status, 'interrupted');
    assert.equal(r.filesChanged, 1, 'the work so far is kept');
    assert.ok(!rig.backend.pods[0].calls().some((c) => c.includes('echo later > later.txt')), 'no call after the interrupt');
    assert.equal(rig.ctx.store().getRun(r.run)?.status, 'interrupted');
    assert.equal(rig.audit(r.run).at(-1)?.data.stoppedBy, 'user');
  }));

test("a face with a stdout of its own never receives the live pod's executor frames", () =>
  withRig({}, async (rig) => {
    const out = new PassThrough();
    let got = 0;
    out.on('data', (d: Buffer) => {
      got += d.length;
    });
    const r = await task(rig, [bash('t1', 'echo hello'), say('ok')], { io: quietIO({ stdout: out }) });
    assert.equal(r.exitCode, 0);
    assert.equal(got, 0, "the protocol channel is not the pod's output");
  }));
