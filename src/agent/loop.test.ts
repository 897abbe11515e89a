import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runAgent, type AgentEvent, type AgentDeps } from './loop.js';
import type { Block, ModelRequest, ModelTurn, PodOps, Provider, Tool } from './types.js';

/** A provider that plays a script and records what it was sent. */
function scripted(turns: ModelTurn[]): Provider & { seen: ModelRequest[] } {
  const seen: ModelRequest[] = [];
  return {
    name: 'scripted',
    seen,
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
  ok: true,
  content: [
    { type: 'text', text: `using ${name}` },
    { type: 'tool_use', id, name, input },
  ],
  stopReason: 'tool_use',
  usage: { inputTokens: 10, outputTokens: 5 },
});

const echo: Tool = {
  spec: { name: 'echo', description: 'echo', input_schema: { type: 'object' } },
  run: async (i) => ({ content: `echo:${String(i.text)}`, isError: false }),
};
const boom: Tool = {
  spec: { name: 'boom', description: 'throws', input_schema: { type: 'object' } },
  run: async () => {
    throw new Error('kaput');
  },
};
const ops: PodOps = { exec: async () => ({ exitCode: 0, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), truncated: false, timedOut: false }) };

function deps(provider: Provider, extra: Partial<AgentDeps> = {}): { d: AgentDeps; events: AgentEvent[] } {
  const events: AgentEvent[] = [];
  return {
    events,
    d: {
      provider,
      model: 'm',
      system: 'sys',
      tools: [echo, boom],
      ops,
      budgets: { maxTurns: 10, maxTokens: 1e6, deadline: Date.now() + 60_000 },
      emit: (e) => events.push(e),
      ...extra,
    },
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
    assert.deepEqual(
      events.map((e) => e.type),
      ['model.request', 'text', 'model.response', 'tool.call', 'tool.result', 'model.request', 'text', 'model.response'],
    );
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

  test('a tool needing approval without an approver is refused and counted; with approval it runs', async () => {
    const denied = scripted([call('echo', { text: 'x' }), say('ok')]);
    const a = deps(denied, { approveTools: ['echo'] });
    const out = await runAgent('x', a.d);
    assert.match(toolResults(denied, 1)[0].content, /not approved: approval needed but nobody is there to ask/);
    assert.equal(out.refusedApprovals, 1);
    const approved = scripted([call('echo', { text: 'y' }), say('ok')]);
    const ok = await runAgent('x', deps(approved, { approveTools: ['echo'], approve: async () => ({ answer: 'yes' }) }).d);
    assert.equal(toolResults(approved, 1)[0].content, 'echo:y');
    assert.equal(ok.refusedApprovals, 0);
  });

  test('no from a person is a denial; no with a reason (nobody to ask) is counted as refused', async () => {
    const person = scripted([call('echo', { text: 'x' }), say('ok')]);
    const p = deps(person, { approveTools: ['echo'], approve: async () => ({ answer: 'no' }) });
    const out = await runAgent('x', p.d);
    assert.match(toolResults(person, 1)[0].content, /the user did not approve this echo call/);
    assert.equal(out.refusedApprovals, 0);
    assert.equal(p.events.filter((e) => e.type === 'policy.deny').length, 1, 'one denial event per refused call');
    const headless = scripted([call('echo', { text: 'x' }, 'a'), call('echo', { text: 'y' }, 'b'), say('ok')]);
    const why = 'approval needed but no terminal to ask';
    const h = await runAgent('x', deps(headless, { approveTools: ['echo'], approve: async () => ({ answer: 'no', reason: why }) }).d);
    assert.equal(h.reason, 'done');
    assert.equal(h.refusedApprovals, 2);
    assert.match(toolResults(headless, 1)[0].content, new RegExp(why));
    const throwing = scripted([call('echo', { text: 'x' }), say('ok')]);
    const t = await runAgent(
      'x',
      deps(throwing, {
        approveTools: ['echo'],
        approve: async () => {
          throw new Error('tty gone');
        },
      }).d,
    );
    assert.equal(t.refusedApprovals, 1);
    assert.match(toolResults(throwing, 1)[0].content, /the approval failed: tty gone/);
  });

  test('always approves that tool for the rest of the task, and only that tool', async () => {
    const p = scripted([call('echo', { text: '1' }, 'a'), call('echo', { text: '2' }, 'b'), call('boom', {}, 'c'), say('ok')]);
    const asked: string[] = [];
    const { d, events } = deps(p, {
      approveTools: ['echo', 'boom'],
      approve: async (tool) => {
        asked.push(tool);
        return { answer: tool === 'echo' ? 'always' : 'no' };
      },
    });
    const out = await runAgent('x', d);
    assert.deepEqual(asked, ['echo', 'boom'], 'the second echo call was not asked about');
    assert.equal(toolResults(p, 2)[0].content, 'echo:2');
    assert.match(toolResults(p, 3)[0].content, /did not approve this boom call/);
    const answers = events.filter((e) => e.type === 'approval').map((e) => (e.type === 'approval' ? `${e.tool}:${e.answer}:${e.asked}` : ''));
    assert.deepEqual(answers, ['echo:always:true', 'echo:always:false', 'boom:no:true']);
    assert.equal(events.filter((e) => e.type === 'tool.call').length, 3, 'every call is still a tool.call event');
    assert.equal(out.reason, 'done');
  });

  test('quit stops the task at once: the rest of the calls neither asked nor run', async () => {
    const p = scripted([
      {
        ok: true,
        content: [
          { type: 'tool_use', id: 'a', name: 'echo', input: { text: '1' } },
          { type: 'tool_use', id: 'b', name: 'echo', input: { text: '2' } },
        ],
        stopReason: 'tool_use',
        usage: { inputTokens: 1, outputTokens: 1 },
      },
      say('never'),
    ]);
    let asked = 0;
    const { d, events } = deps(p, {
      approveTools: ['echo'],
      approve: async () => {
        asked++;
        return { answer: 'quit' };
      },
    });
    const out = await runAgent('x', d);
    assert.equal(out.reason, 'stopped');
    assert.match(out.error ?? '', /quit when asked to approve a echo call/);
    assert.equal(asked, 1);
    assert.equal(p.seen.length, 1, 'no further model turn');
    assert.equal(events.filter((e) => e.type === 'tool.call').length, 1);
    assert.ok(events.some((e) => e.type === 'approval.ask' && e.id === 'a'));
  });

  test('a task stopped while the question waits ends at once, without the answer', async () => {
    const p = scripted([call('echo', { text: 'x' }), say('never')]);
    const ac = new AbortController();
    const { d } = deps(p, {
      approveTools: ['echo'],
      signal: ac.signal,
      approve: () => {
        setImmediate(() => ac.abort());
        return new Promise(() => {});
      },
    });
    const out = await runAgent('x', d);
    assert.equal(out.reason, 'stopped');
    assert.match(out.error ?? '', /stopped while asking to approve a echo call/);
    assert.equal(p.seen.length, 1);
  });

  test('a boolean approver still works (true: yes, false: no)', async () => {
    const p = scripted([call('echo', { text: 'b' }), say('ok')]);
    await runAgent('x', deps(p, { approveTools: ['echo'], approve: async () => true }).d);
    assert.equal(toolResults(p, 1)[0].content, 'echo:b');
    const q = scripted([call('echo', { text: 'b' }), say('ok')]);
    const out = await runAgent('x', deps(q, { approveTools: ['echo'], approve: async () => false }).d);
    assert.match(toolResults(q, 1)[0].content, /did not approve/);
    assert.equal(out.refusedApprovals, 0);
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
