// A scripted Anthropic Messages endpoint (POST /v1/messages) that speaks the real wire protocol:
// the JSON Message object, the SSE event sequence of a streamed message, and the error envelope
// with its status codes and headers. Each script step answers one accepted request, in order;
// requests the real API would reject (no key, no version, bad fields, tool_result blocks that do
// not answer the previous turn's tool_use ids) are rejected here too and consume no step.
import type http from 'node:http';
import { type FakeServer, type RecordedRequest, pieces, randomId, roughTokens, sendJson, sseFrame, startServer, startSse } from './server.js';

export type { RecordedRequest } from './server.js';

export interface AnthropicToolUse {
  id?: string;
  name: string;
  input: Record<string, unknown>;
}

export interface AnthropicReply {
  text?: string;
  toolUses?: AnthropicToolUse[];
  /** Defaults to 'tool_use' when toolUses is non-empty, else 'end_turn'. */
  stopReason?: 'end_turn' | 'tool_use' | 'max_tokens';
  usage?: { input_tokens: number; output_tokens: number };
  /** Streaming only: after the first content delta, send an SSE `error` event and end the stream. */
  streamError?: { type: string; message: string };
}

export interface AnthropicError {
  error: { status: 429 | 500 | 529 | 400 | 401 | 403 | 404; type: string; message: string; retryAfter?: number };
}

export type AnthropicStep = AnthropicReply | AnthropicError;

type ContentBlock = { type: 'text'; text: string } | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> };

/** Starts the fake; point an SDK at `url` (the SDK appends /v1/messages). */
export async function startFakeAnthropic(script: AnthropicStep[]): Promise<FakeServer> {
  let next = 0;
  return startServer((req, res) => {
    const requestId = randomId('req_', 18);
    const rejection = validate(req);
    if (rejection) return sendError(res, requestId, rejection.status, rejection.type, rejection.message);
    const step = script[next++];
    if (!step) {
      // x-should-retry: false so the SDK reports this at once instead of retrying a dead script.
      return sendError(res, requestId, 500, 'api_error', `fake anthropic: script exhausted (${script.length} steps, this is request ${next})`, {
        'x-should-retry': 'false',
      });
    }
    if ('error' in step) {
      const e = step.error;
      const extra: Record<string, string> = e.retryAfter !== undefined ? { 'retry-after': String(e.retryAfter) } : {};
      return sendError(res, requestId, e.status, e.type, e.message, extra);
    }
    const message = buildMessage(step, req.body);
    if (req.body.stream === true) return streamMessage(res, requestId, message, step.streamError);
    sendJson(res, 200, message, { 'request-id': requestId });
  });
}

interface Rejection {
  status: number;
  type: string;
  message: string;
}

/** Checks what the real API checks for the fields this fake looks at; first failure wins. */
export function validate(req: RecordedRequest): Rejection | null {
  if (req.method !== 'POST' || req.path !== '/v1/messages') {
    return { status: 404, type: 'not_found_error', message: `Not found: ${req.method} ${req.path}` };
  }
  if (!req.headers['x-api-key']) return { status: 401, type: 'authentication_error', message: 'x-api-key header is required' };
  if (!req.headers['anthropic-version']) {
    return { status: 400, type: 'invalid_request_error', message: 'anthropic-version: header is required' };
  }
  const body = req.body;
  const bad = (message: string): Rejection => ({ status: 400, type: 'invalid_request_error', message });
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return bad('The request body is not valid JSON.');
  if (typeof body.model !== 'string' || !body.model) return bad('model: Field required');
  if (!Number.isInteger(body.max_tokens) || body.max_tokens < 1) return bad('max_tokens: Field required');
  if (!Array.isArray(body.messages)) return bad('messages: Field required');
  return validateToolPairs(body.messages);
}

/**
 * Each assistant tool_use must be answered by a tool_result in the very next (user) message,
 * and each tool_result must answer a tool_use of the message just before it. The wording
 * follows the API's own invalid_request_error messages.
 */
function validateToolPairs(messages: any[]): Rejection | null {
  const bad = (message: string): Rejection => ({ status: 400, type: 'invalid_request_error', message });
  const blocksOf = (m: any): any[] => (Array.isArray(m?.content) ? m.content : []);
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (m?.role !== 'user' && m?.role !== 'assistant') return bad(`messages.${i}.role: Input should be 'user' or 'assistant'`);
    const prev = i > 0 ? messages[i - 1] : undefined;
    const asked =
      prev?.role === 'assistant'
        ? blocksOf(prev)
            .filter((b) => b?.type === 'tool_use')
            .map((b) => b.id as string)
        : [];
    const answered: string[] = [];
    for (const [j, b] of blocksOf(m).entries()) {
      if (b?.type !== 'tool_result') continue;
      if (m.role !== 'user' || !asked.includes(b.tool_use_id)) {
        return bad(
          `messages.${i}.content.${j}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${b.tool_use_id}. ` +
            'Each `tool_result` block must have a corresponding `tool_use` block in the previous message.',
        );
      }
      answered.push(b.tool_use_id);
    }
    const missing = asked.filter((id) => !answered.includes(id));
    if (missing.length) {
      return bad(
        `messages.${i - 1}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(', ')}. ` +
          'Each `tool_use` block must have a corresponding `tool_result` block in the next message.',
      );
    }
  }
  const last = messages[messages.length - 1];
  const lastAsked =
    last?.role === 'assistant'
      ? blocksOf(last)
          .filter((b) => b?.type === 'tool_use')
          .map((b) => b.id as string)
      : [];
  if (lastAsked.length) {
    return bad(
      `messages.${messages.length - 1}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${lastAsked.join(', ')}. ` +
        'Each `tool_use` block must have a corresponding `tool_result` block in the next message.',
    );
  }
  return null;
}

function sendError(res: http.ServerResponse, requestId: string, status: number, type: string, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { type: 'error', error: { type, message }, request_id: requestId }, { 'request-id': requestId, ...headers });
}

/** The complete Message object, as the non-streaming endpoint returns it. */
function buildMessage(step: AnthropicReply, body: any) {
  const content: ContentBlock[] = [];
  if (step.text !== undefined) content.push({ type: 'text', text: step.text });
  for (const t of step.toolUses ?? []) content.push({ type: 'tool_use', id: t.id ?? randomId('toolu_01'), name: t.name, input: t.input });
  const stopReason = step.stopReason ?? (step.toolUses?.length ? 'tool_use' : 'end_turn');
  const usage = step.usage ?? { input_tokens: roughTokens([body.system, body.messages, body.tools]), output_tokens: roughTokens(content) };
  return {
    id: randomId('msg_01'),
    type: 'message' as const,
    role: 'assistant' as const,
    model: body.model as string,
    content,
    stop_reason: stopReason,
    stop_sequence: null,
    usage: { input_tokens: usage.input_tokens, output_tokens: usage.output_tokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
  };
}

type Message = ReturnType<typeof buildMessage>;

/**
 * The streamed form of `message`: message_start (empty content, stop_reason null), then per block
 * content_block_start / content_block_delta... / content_block_stop with a ping after the first
 * start, then message_delta (stop_reason, cumulative output usage) and message_stop. Text arrives
 * as several text_delta events; tool input as input_json_delta pieces of one JSON text, the first
 * of them empty, exactly as the API sends them.
 */
async function streamMessage(res: http.ServerResponse, requestId: string, message: Message, streamError?: AnthropicReply['streamError']): Promise<void> {
  startSse(res, { 'request-id': requestId });
  const send = async (type: string, data: Record<string, unknown>) => {
    res.write(sseFrame({ type, ...data }, type));
    await new Promise((r) => setImmediate(r)); // separate writes, so clients really see a stream
  };
  await send('message_start', {
    message: { ...message, content: [], stop_reason: null, stop_sequence: null, usage: { ...message.usage, output_tokens: 1 } },
  });
  let deltas = 0;
  for (const [index, block] of message.content.entries()) {
    const start = block.type === 'text' ? { type: 'text', text: '' } : { type: 'tool_use', id: block.id, name: block.name, input: {} };
    await send('content_block_start', { index, content_block: start });
    if (index === 0) await send('ping', {});
    const parts = block.type === 'text' ? pieces(block.text, 3) : ['', ...pieces(JSON.stringify(block.input), 4)];
    for (const part of parts) {
      const delta = block.type === 'text' ? { type: 'text_delta', text: part } : { type: 'input_json_delta', partial_json: part };
      await send('content_block_delta', { index, delta });
      if (streamError && ++deltas === 1) {
        await send('error', { error: { type: streamError.type, message: streamError.message } });
        res.end();
        return;
      }
    }
    await send('content_block_stop', { index });
  }
  await send('message_delta', {
    delta: { stop_reason: message.stop_reason, stop_sequence: null },
    usage: { output_tokens: message.usage.output_tokens },
  });
  await send('message_stop', {});
  res.end();
}
