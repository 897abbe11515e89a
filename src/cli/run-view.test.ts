import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AgentEvent, AgentOutcome } from '../agent/loop.js';
import type { RunEvent } from '../core/io.js';
import { contextLine, createRunView, outputHead, summaryText } from './run-view.js';

/** A stream that keeps what was written. */
const sink = () => {
  const s = {
    text: '',
    write(c: string | Buffer) {
      s.text += c.toString();
      return true;
    },
  };
  return s;
};

function view(isTTY: boolean, extra: { width?: number; errIsTTY?: boolean } = {}) {
  const out = sink();
  const err = sink();
  const v = createRunView({ out, err, isTTY, colour: false, ...extra });
  const agent = (...es: AgentEvent[]) => {
    for (const e of es) v.onEvent({ source: 'agent', event: e });
  };
  return { out, err, v, agent };
}

const outcome = (over: Partial<AgentOutcome> = {}): AgentOutcome => ({
  reason: 'done',
  turns: 2,
  usage: { inputTokens: 100, outputTokens: 20 },
  toolCalls: 1,
  finalText: 'the answer',
  refusedApprovals: 0,
  ...over,
});
const end = (o: AgentOutcome, filesChanged = 0): RunEvent => ({
  source: 'run',
  type: 'run.end',
  data: { id: 'r-1', outcome: o, filesChanged, durationMs: 1500, status: 'done', exitCode: 0 },
});
const call = (id: string, command: string): AgentEvent => ({ type: 'tool.call', id, name: 'bash', input: { command } });
const result = (id: string, content: string, isError = false): AgentEvent => ({ type: 'tool.result', id, name: 'bash', isError, content, durationMs: 12.4 });

/** What a terminal would show: each \r\x1b[K erases the line it is on. */
function screen(raw: string): string {
  const lines: string[] = [''];
  for (const part of raw.split(/(\r\x1b\[K|\n)/)) {
    if (part === '\n') lines.push('');
    else if (part === '\r\x1b[K') lines[lines.length - 1] = '';
    else lines[lines.length - 1] += part;
  }
  return lines.join('\n');
}

describe('run view: tool output', () => {
  test('the first lines of a result, each cut to the width, and how many more', () => {
    const { out, agent } = view(true, { width: 40 });
    const content = Array.from({ length: 20 }, (_, i) => `line ${i} ${'x'.repeat(i === 1 ? 100 : 0)}`).join('\n');
    agent(call('a', 'seq 20'), result('a', content));
    const shown = screen(out.text);
    assert.match(shown, /▸ bash seq 20\n {4}✓ 12 ms\n {4}│ line 0 \n {4}│ line 1 x+…\n {4}│ line 2/);
    assert.match(shown, /│ line 5 \n {4}│ … 14 more lines\n/);
    assert.doesNotMatch(shown, /line 6/);
    for (const l of shown.split('\n')) assert.ok([...l].length <= 40, `wider than the terminal: ${l}`);
  });

  test('outputHead: no trailing empty line counted; tabs and CR made plain; escapes inert', () => {
    assert.deepEqual(outputHead('a\nb\n\n', 6, 80), { lines: ['a', 'b'], more: 0 });
    assert.deepEqual(outputHead('a\tb\r\nc\x1b[2Kd', 6, 80), { lines: ['a  b', 'c\\x1b[2Kd'], more: 0 });
  });

  test('a denial is shown once, not again as the tool result', () => {
    const { out, agent } = view(true);
    const reason = 'tool "rm_rf" is not available to this task (the policy does not allow it)';
    agent(
      { type: 'tool.call', id: 'd', name: 'rm_rf', input: {} },
      { type: 'policy.deny', id: 'd', tool: 'rm_rf', reason },
      { type: 'tool.result', id: 'd', name: 'rm_rf', isError: true, content: reason, durationMs: 0 },
    );
    assert.equal(out.text.split('not available').length - 1, 1, out.text);
    assert.match(screen(out.text), /✗ denied: tool "rm_rf" is not available/);
    // Events without an id (older cores): matched by the reason.
    const old = view(true);
    old.agent({ type: 'policy.deny', tool: 'x', reason: 'nope' }, { type: 'tool.result', id: 'z', name: 'x', isError: true, content: 'nope', durationMs: 0 });
    assert.equal(old.out.text.split('nope').length - 1, 1);
  });
});

describe('run view: the progress line', () => {
  test('stands while a tool runs, and is gone once it ends', () => {
    const { out, agent } = view(true);
    agent(call('a', 'make'));
    assert.match(screen(out.text), /… running in the pod$/);
    agent(result('a', 'ok'));
    assert.doesNotMatch(screen(out.text), /running in the pod/);
  });

  test('gives way to an approval question, a notice, pod stderr and a model error, and never stays behind', () => {
    const { out, err, v, agent } = view(true);
    agent(call('a', 'rm -rf build'), { type: 'approval.ask', id: 'a', tool: 'bash' });
    assert.doesNotMatch(screen(out.text), /running in the pod/, 'cleared before the question');
    agent({ type: 'approval', id: 'a', tool: 'bash', answer: 'yes', asked: true });
    assert.match(screen(out.text), /running in the pod$/, 'back while the approved call runs');
    v.onNotice('clawpod: memory cap hit');
    v.podStderr.write('pod│ warning: x\n');
    assert.match(err.text, /clawpod: memory cap hit\n/);
    assert.match(err.text, /pod│ warning: x\n/);
    agent(result('a', 'done'), {
      type: 'model.error',
      turn: 2,
      error: 'model API error 401 from http://127.0.0.1:9 (anthropic): bad · check ANTHROPIC_API_KEY',
    });
    v.onEvent(end(outcome({ reason: 'model_error' })));
    v.summary();
    assert.doesNotMatch(screen(out.text), /running in the pod/, 'no stale progress text');
    assert.match(err.text, /clawpod: model API error 401 .*ANTHROPIC_API_KEY/);
  });

  test('an interrupted step leaves no progress line at the end of the run', () => {
    const { out, v, agent } = view(true);
    agent(call('a', 'sleep 100'));
    v.onEvent(end(outcome({ reason: 'stopped' })));
    v.summary();
    assert.doesNotMatch(screen(out.text), /running in the pod/);
  });

  test('off a terminal there is no progress line and no terminal control at all', () => {
    const { out, err, v, agent } = view(false);
    agent(call('a', 'make'), result('a', 'ok'));
    v.onEvent(end(outcome()));
    v.summary();
    assert.ok(!`${out.text}${err.text}`.includes('\x1b'), 'no escape sequence');
    assert.ok(!err.text.includes('running in the pod'));
  });
});

describe('run view: stdout off a terminal is only the answer', () => {
  test("the trace goes to stderr, the last turn's text to stdout", () => {
    const { out, err, v, agent } = view(false);
    v.onNotice('clawpod: run r-1 (anthropic:claude-x)');
    agent(
      { type: 'model.request', turn: 1, messages: 1 },
      { type: 'text', delta: 'Let me ' },
      { type: 'text', delta: 'look.' },
      call('a', 'ls'),
      result('a', 'a.txt\nb.txt'),
    );
    agent(
      { type: 'model.request', turn: 2, messages: 3 },
      { type: 'text', delta: 'There are ' },
      { type: 'text', delta: 'two files.' },
      { type: 'model.response', turn: 2, stopReason: 'end_turn', usage: { inputTokens: 1, outputTokens: 1 } },
    );
    v.onEvent(end(outcome({ finalText: 'There are two files.' }), 0));
    v.onEvent(end(outcome({ finalText: 'There are two files.' }), 0)); // passed on again by the face
    v.summary({ stat: '' });
    assert.equal(out.text, 'There are two files.\n');
    assert.match(err.text, /clawpod: run r-1/);
    assert.match(err.text, /Let me look\.\n\n {2}▸ bash ls\n {4}✓ 12 ms\n {4}│ a\.txt\n {4}│ b\.txt\n/);
    assert.match(err.text, /clawpod: done · 2 turn\(s\) · 120 tokens · 1 tool call\(s\) · 1\.5 s/);
    assert.ok(!err.text.includes('two files'), 'the answer is not in the trace');
  });

  test('a run that stops after a tool turn writes no answer', () => {
    const { out, v, agent } = view(false);
    agent({ type: 'text', delta: 'trying' }, call('a', 'ls'), result('a', 'x'));
    v.onEvent(end(outcome({ reason: 'max_turns' })));
    v.summary();
    assert.equal(out.text, '');
  });

  test('on a terminal, the text streams to stdout as it comes', () => {
    const { out, agent } = view(true);
    agent({ type: 'text', delta: 'hi\x1b]52;c;ZXZpbA==\x07' });
    assert.equal(out.text, 'hi\\x1b]52;c;ZXZpbA==\\x07');
  });
});

describe('run view: context and summary', () => {
  test('the context line names what was loaded and marks what came from the workspace', () => {
    const line = contextLine(
      {
        claudeMd: ['CLAUDE.md (workspace)'],
        memory: 'notes',
        skills: [
          { name: 'lint', from: 'workspace' },
          { name: 'deploy', from: 'user' },
        ],
      },
      false,
    );
    assert.match(
      line,
      /^clawpod: context: CLAUDE\.md \(workspace\), memory "notes", skills: lint \(workspace\), deploy \(user\) · \(workspace\) items are the project's text, untrusted/,
    );
    assert.equal(contextLine({ claudeMd: [], memory: null, skills: [] }, false), 'clawpod: context: none (no CLAUDE.md or AGENTS.md, memory or skills)');
    assert.doesNotMatch(contextLine({ claudeMd: [], memory: 'm', skills: [{ name: 'd', from: 'user' }] }, false), /untrusted/);
    assert.match(contextLine({ claudeMd: [{ name: 'AGENTS.md', from: 'workspace' }], memory: null, skills: [] }, false), /AGENTS\.md \(workspace\)/);
    assert.match(contextLine({ claudeMd: ['x\x1b[2J (workspace)'], memory: null, skills: [] }, false), /x\\x1b\[2J/);
  });

  test('the context event prints as its own line after the run id', () => {
    const { err, v } = view(true);
    v.onNotice('clawpod: run r-1 (anthropic:claude-x)');
    v.onEvent({ source: 'run', type: 'run.context', data: { claudeMd: [], memory: 'notes', skills: [] } });
    assert.equal(err.text, 'clawpod: run r-1 (anthropic:claude-x)\nclawpod: context: memory "notes"\n');
  });

  test('the summary keeps its facts and never calls a run with refused approvals done', () => {
    const { err, v } = view(false);
    v.onEvent({ source: 'proxy', type: 'net.allow', data: { host: 'a' } });
    v.onEvent({ source: 'proxy', type: 'net.deny', data: { host: 'b' } });
    v.onEvent({ source: 'proxy', type: 'net.allow', data: { host: 'a', terminated: true } });
    v.onEvent({ source: 'pod', type: 'limit.hit', data: { cap: 'memory' } });
    v.onEvent(end(outcome({ refusedApprovals: 1 }), 2));
    v.summary({ stat: '+3 -1' });
    assert.match(err.text, /clawpod: not done: the model finished, but tool calls it needed were refused/);
    assert.match(err.text, /1 tool call\(s\) needed approval and nobody could be asked \(run it from a terminal/);
    assert.match(err.text, /2 file\(s\) changed \(\+3 -1\) · outbound 1 allowed, 1 denied · limits hit: memory/);
    assert.match(err.text, /review with clawpod runs diff r-1, then runs apply r-1 or runs discard r-1/);
    assert.doesNotMatch(summaryText({ id: 'r', outcome: outcome(), ms: 0, filesChanged: 0, allowed: 0, denied: 0, limits: [] }), /not done/);
    const facts = { id: 'r', ms: 0, filesChanged: 0, allowed: 0, denied: 0, limits: [] };
    assert.match(
      summaryText({ ...facts, outcome: outcome({ reason: 'stopped', error: 'the user quit when asked to approve a bash call' }) }),
      /clawpod: stopped: the user quit when asked to approve a bash call ·/,
    );
    assert.match(summaryText({ ...facts, outcome: outcome({ reason: 'max_turns' }) }), /clawpod: stopped: max_turns ·/);
  });
});
