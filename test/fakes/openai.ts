// A scripted OpenAI-compatible Chat Completions endpoint (POST /v1/chat/completions), the
// protocol Ollama, vLLM and llama.cpp servers speak: the chat.completion JSON object, the
// chat.completion.chunk SSE stream ending in `data: [DONE]`, and the {"error": {...}} envelope.
// Each script step answers one accepted request, in order; requests the real API rejects
// (no bearer key, missing fields, tool messages that do not answer the previous tool_calls)
// are rejected here too and consume no step.
import type http from 'node:http';
import { type FakeServer, type RecordedRequest, pieces, randomId, roughTokens, sendJson, sseFrame, startServer, startSse } from './server.js';

export type { RecordedRequest } from './server.js';

export interface OpenAIToolCall {
  id?: string;
  name: string;
  /** A JSON text, or an object that is serialized for you. */
  arguments: string | Record<string, unknown>;
}

export interface OpenAIReply {
  content?: string;
  toolCalls?: OpenAIToolCall[];
  /** Defaults to 'tool_calls' when toolCalls is non-empty, else 'stop'. */
  finishReason?: 'stop' | 'tool_calls' | 'length';
  usage?: { prompt_tokens: number; completion_tokens: number };
}

export interface OpenAIError {
  error: { status: 400 | 401 | 404 | 429 | 500 | 503; type: string; message: string; code?: string; retryAfter?: number };
}

export type OpenAIStep = OpenAIReply | OpenAIError;

/** Starts the fake; give the SDK `${url}/v1` as baseURL. keyless: like a local llama.cpp or
 *  Ollama server, it asks for no Authorization header. */
export async function startFakeOpenAI(script: OpenAIStep[], opts: { keyless?: boolean } = {}): Promise<FakeServer> {
  let next = 0;
  return startServer((req, res) => {
    const requestId = randomId('req_', 16);
    const rejection = validate(req, opts.keyless);
    if (rejection) return sendError(res, requestId, rejection);
    const step = script[next++];
    if (!step) {
      return sendError(
        res,
        requestId,
        {
          status: 500,
          type: 'server_error',
          code: null,
          message: `fake openai: script exhausted (${script.length} steps, this is request ${next})`,
        },
        { 'x-should-retry': 'false' },
      );
    }
    if ('error' in step) {
      const e = step.error;
      const extra: Record<string, string> = e.retryAfter !== undefined ? { 'retry-after': String(e.retryAfter) } : {};
      return sendError(res, requestId, { status: e.status, type: e.type, message: e.message, code: e.code ?? null }, extra);
    }
    const completion = buildCompletion(step, req.body);
    if (req.body.stream === true) return streamCompletion(res, requestId, completion, req.body.stream_options?.include_usage === true);
    sendJson(res, 200, completion, { 'x-request-id': requestId });
  });
}

interface Rejection {
  status: number;
  type: string;
  message: string;
  code: string | null;
  param?: string | null;
}

export function validate(req: RecordedRequest, keyless = false): Rejection | null {
  if (req.method !== 'POST' || req.path !== '/v1/chat/completions') {
    return { status: 404, type: 'invalid_request_error', code: 'unknown_url', message: `Unknown request URL: ${req.method} ${req.path}.` };
  }
  const auth = req.headers.authorization ?? '';
  if (!keyless && !/^Bearer \S+/.test(auth)) {
    return {
      status: 401,
      type: 'invalid_request_error',
      code: null,
      message:
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
    };
  }
  const body = req.body;
  const bad = (message: string, param: string | null): Rejection => ({ status: 400, type: 'invalid_request_error', code: null, message, param });
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return bad('We could not parse the JSON body of your request.', null);
  if (typeof body.model !== 'string' || !body.model) return bad('you must provide a model parameter', 'model');
  if (!Array.isArray(body.messages) || body.messages.length === 0) return bad("Missing required parameter: 'messages'.", 'messages');
  return validateToolMessages(body.messages);
}

/** An assistant message with tool_calls must be followed by one tool message per call id. */
function validateToolMessages(messages: any[]): Rejection | null {
  const bad = (message: string, param: string): Rejection => ({ status: 400, type: 'invalid_request_error', code: null, message, param });
  let pending: string[] = [];
  for (const [i, m] of messages.entries()) {
    if (m?.role === 'tool') {
      if (!pending.includes(m.tool_call_id)) {
        return bad(`Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.`, `messages.[${i}].role`);
      }
      pending = pending.filter((id) => id !== m.tool_call_id);
      continue;
    }
    if (pending.length) {
      return bad(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. " +
          `The following tool_call_ids did not have response messages: ${pending.join(', ')}`,
        'messages',
      );
    }
    pending = m?.role === 'assistant' && Array.isArray(m.tool_calls) ? m.tool_calls.map((c: any) => c.id as string) : [];
  }
  if (pending.length) {
    return bad(
      "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. " +
        `The following tool_call_ids did not have response messages: ${pending.join(', ')}`,
      'messages',
    );
  }
  return null;
}

function sendError(res: http.ServerResponse, requestId: string, r: Rejection, headers: Record<string, string> = {}): void {
  sendJson(res, r.status, { error: { message: r.message, type: r.type, param: r.param ?? null, code: r.code } }, { 'x-request-id': requestId, ...headers });
}

function buildCompletion(step: OpenAIReply, body: any) {
  const toolCalls = (step.toolCalls ?? []).map((c) => ({
    id: c.id ?? randomId('call_', 18),
    type: 'function' as const,
    function: { name: c.name, arguments: typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments) },
  }));
  const message = {
    role: 'assistant' as const,
    content: step.content ?? null,
    refusal: null,
    ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
  };
  const prompt = step.usage?.prompt_tokens ?? roughTokens([body.messages, body.tools]);
  const completionTokens = step.usage?.completion_tokens ?? roughTokens([step.content, toolCalls]);
  return {
    id: randomId('chatcmpl-', 21),
    object: 'chat.completion' as const,
    created: Math.floor(Date.now() / 1000),
    model: body.model as string,
    choices: [{ index: 0, message, logprobs: null, finish_reason: step.finishReason ?? (toolCalls.length ? 'tool_calls' : 'stop') }],
    usage: { prompt_tokens: prompt, completion_tokens: completionTokens, total_tokens: prompt + completionTokens },
    system_fingerprint: 'fp_fake',
  };
}

type Completion = ReturnType<typeof buildCompletion>;

/**
 * The streamed form: chat.completion.chunk objects sharing id/created/model. The first delta
 * carries the role; content comes in several pieces; each tool call opens with
 * {index, id, type, function: {name, arguments: ''}} and continues with {index, function:
 * {arguments}} pieces; a last choice chunk has an empty delta and the finish_reason. With
 * stream_options.include_usage every chunk has usage: null and one extra chunk with empty
 * choices carries the usage. The stream ends with `data: [DONE]`.
 */
async function streamCompletion(res: http.ServerResponse, requestId: string, c: Completion, includeUsage: boolean): Promise<void> {
  startSse(res, { 'x-request-id': requestId });
  const send = async (choices: unknown[], usage?: unknown) => {
    const chunk = {
      id: c.id,
      object: 'chat.completion.chunk',
      created: c.created,
      model: c.model,
      system_fingerprint: c.system_fingerprint,
      choices,
      ...(includeUsage ? { usage: usage ?? null } : {}),
    };
    res.write(sseFrame(chunk));
    await new Promise((r) => setImmediate(r));
  };
  const choice = (delta: Record<string, unknown>, finish: string | null = null) => ({ index: 0, delta, logprobs: null, finish_reason: finish });
  const { message } = c.choices[0];
  await send([choice({ role: 'assistant', content: '', refusal: null })]);
  for (const part of pieces(message.content ?? '', 3)) await send([choice({ content: part })]);
  for (const [index, call] of (message.tool_calls ?? []).entries()) {
    await send([choice({ tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.function.name, arguments: '' } }] })]);
    for (const part of pieces(call.function.arguments, 4)) {
      await send([choice({ tool_calls: [{ index, function: { arguments: part } }] })]);
    }
  }
  await send([choice({}, c.choices[0].finish_reason)]);
  if (includeUsage) await send([], c.usage);
  res.write(sseFrame('[DONE]'));
  res.end();
}
