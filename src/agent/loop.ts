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
  | { type: 'policy.deny'; tool: string; reason: string };

export interface Budgets { maxTurns: number; maxTokens: number; deadline: number }

export interface AgentDeps {
  provider: Provider;
  model: string;
  system: string;
  tools: Tool[];
  ops: PodOps;
  budgets: Budgets;
  maxTokensPerTurn?: number;
  /** Tools the policy wants a human to approve; approve() asks (false without a terminal). */
  approveTools?: string[];
  approve?: (tool: string, input: Record<string, unknown>) => Promise<boolean>;
  emit: (e: AgentEvent) => void;
  signal?: AbortSignal;
}

export type StopReason = 'done' | 'max_turns' | 'max_tokens' | 'timeout' | 'model_error' | 'stopped';

export interface AgentOutcome { reason: StopReason; turns: number; usage: Usage; toolCalls: number; finalText: string; error?: string }

/** Step 1: one model turn, its text streamed out as it arrives. */
async function streamResponse(d: AgentDeps, messages: Message[], turn: number): Promise<ModelTurn> {
  d.emit({ type: 'model.request', turn, messages: messages.length });
  const t = await d.provider.turn({
    model: d.model, system: d.system, messages, maxTokens: d.maxTokensPerTurn ?? 8192, signal: d.signal,
    tools: d.tools.map((x) => x.spec),
  }, (delta) => d.emit({ type: 'text', delta }));
  if (t.ok) d.emit({ type: 'model.response', turn, stopReason: t.stopReason, usage: t.usage });
  else d.emit({ type: 'model.error', turn, error: t.error });
  return t;
}

/** Step 2: the tool calls the model asked for, in order. */
function prepareToolCalls(content: Block[]): Extract<Block, { type: 'tool_use' }>[] {
  return content.filter((b): b is Extract<Block, { type: 'tool_use' }> => b.type === 'tool_use');
}

/** Step 3: one call, through policy and approval, in the pod. Never throws. */
async function executeToolCall(d: AgentDeps, call: Extract<Block, { type: 'tool_use' }>): Promise<Block> {
  d.emit({ type: 'tool.call', id: call.id, name: call.name, input: call.input });
  const started = performance.now();
  const deny = (reason: string): Block => {
    d.emit({ type: 'policy.deny', tool: call.name, reason });
    d.emit({ type: 'tool.result', id: call.id, name: call.name, isError: true, content: reason, durationMs: 0 });
    return { type: 'tool_result', tool_use_id: call.id, content: reason, is_error: true };
  };
  const tool = d.tools.find((t) => t.spec.name === call.name);
  if (!tool) return deny(`tool "${call.name}" is not available to this task (the policy does not allow it)`);
  if (d.approveTools?.includes(call.name)) {
    const ok = await (d.approve?.(call.name, call.input) ?? Promise.resolve(false)).catch(() => false);
    if (!ok) return deny(`the user did not approve this ${call.name} call`);
  }
  let result: { content: string; isError: boolean };
  try { result = await tool.run(call.input, d.ops); } catch (e) {
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
  const finalize = (reason: StopReason, error?: string): AgentOutcome => ({ reason, turns, usage, toolCalls, finalText, error });
  for (;;) {
    const stop = overBudget(d, turns, usage);
    if (stop) return finalize(stop);
    turns++;
    const t = await streamResponse(d, messages, turns);
    if (!t.ok) return finalize(d.signal?.aborted ? 'stopped' : 'model_error', t.error);
    usage.inputTokens += t.usage.inputTokens;
    usage.outputTokens += t.usage.outputTokens;
    messages.push({ role: 'assistant', content: t.content });
    finalText = t.content.filter((b) => b.type === 'text').map((b) => (b as { text: string }).text).join('');
    const calls = prepareToolCalls(t.content);
    if (calls.length === 0) return finalize('done');
    const results: Block[] = [];
    for (const call of calls) { results.push(await executeToolCall(d, call)); toolCalls++; }
    messages.push({ role: 'user', content: results });
  }
}
