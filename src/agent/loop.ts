// The agent loop, in the named steps of pi-mono's: stream the response, prepare the tool calls,
// execute them (in the pod, through PodOps), finalize. Model failures are events, a failing
// tool is an error result for the model, and budgets end the task cleanly with their reason.
import type { Block, Message, ModelTurn, PodOps, Provider, Tool, Usage } from './types.js';

export type AgentEvent =
  | { type: 'text'; delta: string }
  | { type: 'model.request'; turn: number; messages: number }
  | { type: 'model.response'; turn: number; stopReason: string; usage: Usage }
  | { type: 'model.error'; turn: number; error: string }
  | { type: 'tool.call'; id: string; name: string; input: Record<string, unknown> }
  | { type: 'tool.result'; id: string; name: string; isError: boolean; content: string; durationMs: number }
  | { type: 'policy.deny'; id?: string; tool: string; reason: string }
  /** Before a person is asked about a tool call (a face clears its progress line for the question). */
  | { type: 'approval.ask'; id: string; tool: string }
  /** The answer for a gated call; asked false: an earlier 'always' for this tool let it through. */
  | { type: 'approval'; id: string; tool: string; answer: ApprovalAnswer; asked: boolean; reason?: string };

/** yes: this call; always: this tool for the rest of the task; no: not this call; quit: stop the task. */
export type ApprovalAnswer = 'yes' | 'no' | 'always' | 'quit';
/** A 'no' with a reason was given by a face with nobody to ask (no terminal): see refusedApprovals. */
export interface Approval {
  answer: ApprovalAnswer;
  reason?: string;
}

export interface Budgets {
  maxTurns: number;
  maxTokens: number;
  deadline: number;
}

export interface AgentDeps {
  provider: Provider;
  model: string;
  system: string;
  tools: Tool[];
  ops: PodOps;
  budgets: Budgets;
  maxTokensPerTurn?: number;
  /** Tools the policy wants a human to approve; approve() asks. Without an approver they are refused. */
  approveTools?: string[];
  /** A boolean answer (true: yes, false: no) is still taken while faces move to Approval. */
  approve?: (tool: string, input: Record<string, unknown>) => Promise<Approval | boolean>;
  emit: (e: AgentEvent) => void;
  signal?: AbortSignal;
}

/** stopped: interrupted, or the user answered quit at an approval (then `error` says so). */
export type StopReason = 'done' | 'max_turns' | 'max_tokens' | 'timeout' | 'model_error' | 'stopped';

export interface AgentOutcome {
  reason: StopReason;
  turns: number;
  usage: Usage;
  toolCalls: number;
  finalText: string;
  error?: string;
  /** Gated calls refused because nobody could be asked (no terminal, no approver): a task that
   *  needed them did not really succeed, even when the model then said it was done. */
  refusedApprovals: number;
}

/** What one task's approvals remember: the tools approved for good, the refusals, a quit. */
interface ApprovalState {
  always: Set<string>;
  refused: number;
  quit: string | null;
}

/** Step 1: one model turn, its text streamed out as it arrives. */
async function streamResponse(d: AgentDeps, messages: Message[], turn: number): Promise<ModelTurn> {
  d.emit({ type: 'model.request', turn, messages: messages.length });
  const t = await d.provider.turn(
    {
      model: d.model,
      system: d.system,
      messages,
      maxTokens: d.maxTokensPerTurn ?? 8192,
      signal: d.signal,
      tools: d.tools.map((x) => x.spec),
    },
    (delta) => d.emit({ type: 'text', delta }),
  );
  if (t.ok) d.emit({ type: 'model.response', turn, stopReason: t.stopReason, usage: t.usage });
  else d.emit({ type: 'model.error', turn, error: t.error });
  return t;
}

/** Step 2: the tool calls the model asked for, in order. */
function prepareToolCalls(content: Block[]): Extract<Block, { type: 'tool_use' }>[] {
  return content.filter((b): b is Extract<Block, { type: 'tool_use' }> => b.type === 'tool_use');
}

/** The answer for one gated call; an approver that fails or is missing counts as nobody there. */
async function askApproval(d: AgentDeps, call: Extract<Block, { type: 'tool_use' }>, st: ApprovalState): Promise<Approval> {
  if (st.always.has(call.name)) {
    d.emit({ type: 'approval', id: call.id, tool: call.name, answer: 'always', asked: false });
    return { answer: 'yes' };
  }
  d.emit({ type: 'approval.ask', id: call.id, tool: call.name });
  let a: Approval;
  let stoppedWhileAsking = false;
  if (!d.approve) a = { answer: 'no', reason: 'approval needed but nobody is there to ask' };
  else {
    // A task stopped while the question waits (SIGTERM, the audit cap) must not wait for an answer.
    let onAbort = () => {};
    const stopped = new Promise<'stopped'>((resolve) => {
      onAbort = () => resolve('stopped');
      if (d.signal?.aborted) resolve('stopped');
      else d.signal?.addEventListener('abort', onAbort, { once: true });
    });
    const asked = d.approve(call.name, call.input).catch((e: Error) => ({ answer: 'no' as const, reason: `the approval failed: ${e.message}` }));
    const got = await Promise.race([asked, stopped]).finally(() => d.signal?.removeEventListener('abort', onAbort));
    stoppedWhileAsking = got === 'stopped';
    a = got === 'stopped' ? { answer: 'quit' } : typeof got === 'boolean' ? { answer: got ? 'yes' : 'no' } : got;
  }
  d.emit({ type: 'approval', id: call.id, tool: call.name, answer: a.answer, asked: true, ...(a.reason ? { reason: a.reason } : {}) });
  if (a.answer === 'always') st.always.add(call.name);
  if (a.answer === 'no' && a.reason) st.refused++;
  if (a.answer === 'quit') {
    st.quit = stoppedWhileAsking
      ? `the task was stopped while asking to approve a ${call.name} call`
      : `the user quit when asked to approve a ${call.name} call`;
  }
  return a;
}

/** Step 3: one call, through policy and approval, in the pod. Never throws. */
async function executeToolCall(d: AgentDeps, call: Extract<Block, { type: 'tool_use' }>, st: ApprovalState): Promise<Block> {
  d.emit({ type: 'tool.call', id: call.id, name: call.name, input: call.input });
  const started = performance.now();
  const deny = (reason: string): Block => {
    d.emit({ type: 'policy.deny', id: call.id, tool: call.name, reason });
    d.emit({ type: 'tool.result', id: call.id, name: call.name, isError: true, content: reason, durationMs: 0 });
    return { type: 'tool_result', tool_use_id: call.id, content: reason, is_error: true };
  };
  const tool = d.tools.find((t) => t.spec.name === call.name);
  if (!tool) return deny(`tool "${call.name}" is not available to this task (the policy does not allow it)`);
  if (d.approveTools?.includes(call.name)) {
    const a = await askApproval(d, call, st);
    if (a.answer === 'quit') return deny(`not run: ${st.quit}`);
    if (a.answer === 'no') return deny(a.reason ? `this ${call.name} call was not approved: ${a.reason}` : `the user did not approve this ${call.name} call`);
  }
  let result: { content: string; isError: boolean };
  try {
    result = await tool.run(call.input, d.ops);
  } catch (e) {
    result = { content: `tool failed: ${(e as Error).message}`, isError: true };
  }
  d.emit({ type: 'tool.result', id: call.id, name: call.name, isError: result.isError, content: result.content, durationMs: performance.now() - started });
  return { type: 'tool_result', tool_use_id: call.id, content: result.content, is_error: result.isError || undefined };
}

function overBudget(d: AgentDeps, turns: number, usage: Usage): StopReason | null {
  if (d.signal?.aborted) return 'stopped';
  if (turns >= d.budgets.maxTurns) return 'max_turns';
  if (usage.inputTokens + usage.outputTokens >= d.budgets.maxTokens) return 'max_tokens';
  if (Date.now() >= d.budgets.deadline) return 'timeout';
  return null;
}

/** Runs a task to its end; the whole story is in the emitted events. */
export async function runAgent(task: string, d: AgentDeps): Promise<AgentOutcome> {
  const messages: Message[] = [{ role: 'user', content: [{ type: 'text', text: task }] }];
  const usage: Usage = { inputTokens: 0, outputTokens: 0 };
  let turns = 0;
  let toolCalls = 0;
  let finalText = '';
  const st: ApprovalState = { always: new Set(), refused: 0, quit: null };
  const finalize = (reason: StopReason, error?: string): AgentOutcome => ({ reason, turns, usage, toolCalls, finalText, error, refusedApprovals: st.refused });
  for (;;) {
    const stop = overBudget(d, turns, usage);
    if (stop) return finalize(stop);
    turns++;
    const t = await streamResponse(d, messages, turns);
    if (!t.ok) return finalize(d.signal?.aborted ? 'stopped' : 'model_error', t.error);
    usage.inputTokens += t.usage.inputTokens;
    usage.outputTokens += t.usage.outputTokens;
    messages.push({ role: 'assistant', content: t.content });
    finalText = t.content
      .filter((b) => b.type === 'text')
      .map((b) => (b as { text: string }).text)
      .join('');
    const calls = prepareToolCalls(t.content);
    if (calls.length === 0) return finalize('done');
    const results: Block[] = [];
    for (const call of calls) {
      results.push(await executeToolCall(d, call, st));
      toolCalls++;
      // The calls after a quit are not asked about nor run; the work so far is kept.
      if (st.quit) return finalize('stopped', st.quit);
    }
    messages.push({ role: 'user', content: results });
  }
}
