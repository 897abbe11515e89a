import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runAgent, type AgentEvent, type AgentDeps } from './loop.js';
import type { Block, ModelRequest, ModelTurn, PodOps, Provider, Tool } from './types.js';

/** A provider that plays a script and records what it was sent. */
function scripted(turns: ModelTurn[]): Provider & { seen: ModelRequest[] } {
  const seen: ModelRequest[] = [];
  return {
    name: 'scripted', seen,
    async turn(req, onText) {
      seen.push(structuredClone({ ...req, signal: undefined }));
      const t = turns.shift() ?? { ok: false, error: 'script ran out', retryable: false };
      if (t.ok) for (const b of t.content) if (b.type === 'text') onText(b.text);
      return t;
    },
  };
}

const say = (text: string): ModelTurn => ({ ok: true, content: [{ type: 'text', text }], stopReason: 'end_turn', usage: { inputTokens: 10, outputTokens: 5 } });
const call = (name: string, input: Record<string, unknown>, id = `tu_${name}`): ModelTurn => ({
  ok: true, content: [{ type: 'text', text: `using ${name}` }, { type: 'tool_use', id, name, input }], stopReason: 'tool_use', usage: { inputTokens: 10, outputTokens: 5 },
});

const echo: Tool = { spec: { name: 'echo', description: 'echo', input_schema: { type: 'object' } }, run: async (i) => ({ content: `echo:${String(i.text)}`, isError: false }) };
const boom: Tool = { spec: { name: 'boom', description: 'throws', input_schema: { type: 'object' } }, run: async () => { throw new Error('kaput'); } };
const ops: PodOps = { exec: async () => ({ exitCode: 0, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), truncated: false, timedOut: false }) };

function deps(provider: Provider, extra: Partial<AgentDeps> = {}): { d: AgentDeps; events: AgentEvent[] } {
  const events: AgentEvent[] = [];
  return {
    events,
    d: { provider, model: 'm', system: 'sys', tools: [echo, boom], ops, budgets: { maxTurns: 10, maxTokens: 1e6, deadline: Date.now() + 60_000 }, emit: (e) => events.push(e), ...extra },
  };
}

const toolResults = (p: { seen: ModelRequest[] }, i: number) =>
  p.seen[i].messages.at(-1)!.content.filter((b): b is Extract<Block, { type: 'tool_result' }> => b.type === 'tool_result');

describe('agent loop', () => {
  test('a tool round trip: the result goes back to the model, then the task ends', async () => {
    const p = scripted([call('echo', { text: 'hi' }), say('all done')]);
    const { d, events } = deps(p);
    const out = await runAgent('do it', d);
    assert.equal(out.reason, 'done');
    assert.equal(out.turns, 2);
    assert.equal(out.toolCalls, 1);
    assert.equal(out.finalText, 'all done');
    assert.deepEqual(out.usage, { inputTokens: 20, outputTokens: 10 });
    assert.deepEqual(toolResults(p, 1), [{ type: 'tool_result', tool_use_id: 'tu_echo', content: 'echo:hi', is_error: undefined }]);
    assert.deepEqual(events.map((e) => e.type), ['model.request', 'text', 'model.response', 'tool.call', 'tool.result', 'model.request', 'text', 'model.response']);
  });

  test('a tool that throws becomes an error result, and the loop goes on', async () => {
    const p = scripted([call('boom', {}), say('recovered')]);
    const out = await runAgent('x', deps(p).d);
    assert.equal(out.reason, 'done');
    assert.equal(toolResults(p, 1)[0].is_error, true);
    assert.match(toolResults(p, 1)[0].content, /kaput/);
  });

  test('a tool the policy does not allow is denied and recorded', async () => {
    const p = scripted([call('rm_rf', {}), say('ok')]);
    const { d, events } = deps(p);
    await runAgent('x', d);
    assert.ok(events.some((e) => e.type === 'policy.deny' && e.tool === 'rm_rf'));
    assert.match(toolResults(p, 1)[0].content, /not available/);
  });

  test('a tool needing approval without an approver is denied; with approval it runs', async () => {
    const denied = scripted([call('echo', { text: 'x' }), say('ok')]);
    const a = deps(denied, { approveTools: ['echo'] });
    await runAgent('x', a.d);
    assert.match(toolResults(denied, 1)[0].content, /did not approve/);
    const approved = scripted([call('echo', { text: 'y' }), say('ok')]);
    await runAgent('x', deps(approved, { approveTools: ['echo'], approve: async () => true }).d);
    assert.equal(toolResults(approved, 1)[0].content, 'echo:y');
  });

  test('budgets end the task with their reason', async () => {
    const loop = () => scripted(Array.from({ length: 20 }, (_, i) => call('echo', { text: String(i) }, `t${i}`)));
    assert.equal((await runAgent('x', deps(loop(), { budgets: { maxTurns: 3, maxTokens: 1e6, deadline: Date.now() + 60_000 } }).d)).reason, 'max_turns');
    assert.equal((await runAgent('x', deps(loop(), { budgets: { maxTurns: 99, maxTokens: 40, deadline: Date.now() + 60_000 } }).d)).reason, 'max_tokens');
    assert.equal((await runAgent('x', deps(loop(), { budgets: { maxTurns: 99, maxTokens: 1e6, deadline: Date.now() - 1 } }).d)).reason, 'timeout');
  });

  test('a model error is an event and ends the task, never a throw', async () => {
    const p = scripted([{ ok: false, error: 'model API error 529: overloaded', retryable: true }]);
    const { d, events } = deps(p);
    const out = await runAgent('x', d);
    assert.equal(out.reason, 'model_error');
    assert.match(out.error ?? '', /529/);
    assert.ok(events.some((e) => e.type === 'model.error'));
  });
});
