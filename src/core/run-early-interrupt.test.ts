// An interrupt that arrives before runTask listens for it (a Ctrl-C while the policy loads or
// the pod starts) still stops the task: no model turn, no tool call, interrupted, 130.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createReplayProvider } from '../agent/providers/replay.js';
import type { ModelTurn } from '../agent/types.js';
import { createRig } from '../testkit/rig.js';
import { quietIO } from './io.js';
import { runTask } from './run.js';

const usage = { inputTokens: 10, outputTokens: 5 };
const turns: ModelTurn[] = [
  { ok: true, content: [{ type: 'tool_use', id: 't1', name: 'bash', input: { command: 'echo late > late.txt' } }], stopReason: 'tool_use', usage },
  { ok: true, content: [{ type: 'text', text: 'done' }], stopReason: 'end_turn', usage },
];

test('a Ctrl-C before the pod started: the loop never takes a turn; interrupted, 130', async () => {
  const rig = createRig({});
  try {
    const ac = new AbortController();
    ac.abort();
    const r = await runTask(rig.ctx, {
      task: 'write late.txt',
      io: quietIO({ signal: ac.signal }),
      allowDegraded: false,
      cwd: rig.ws,
      provider: { provider: createReplayProvider(turns), model: 'replay-test', providerName: 'replay' },
    });
    assert.equal(r.exitCode, 130);
    assert.equal(r.status, 'interrupted');
    assert.equal(r.outcome.turns, 0, 'no model turn after the interrupt');
    assert.equal(r.outcome.toolCalls, 0);
    assert.equal(r.filesChanged, 0);
    assert.ok(!rig.backend.pods[0].calls().some((c) => c.includes('echo late > late.txt')), 'no tool call after the interrupt');
  } finally {
    rig.cleanup();
  }
});
