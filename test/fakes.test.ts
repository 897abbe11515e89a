// The fake model endpoints are only useful if the real SDKs cannot tell them from the real APIs:
// these tests drive both through @anthropic-ai/sdk and openai and check what comes out the other
// side (reassembled tool input, retries, typed errors) and what went in (recorded requests).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startFakeAnthropic } from './fakes/anthropic.js';
import { startFakeOpenAI } from './fakes/openai.js';

const MODEL = 'claude-test-1';
const TOOLS = [{ name: 'bash', description: 'run a command', input_schema: { type: 'object' as const, properties: { command: { type: 'string' } } } }];

function anthropic(url: string, maxRetries = 0): Anthropic {
  return new Anthropic({ apiKey: 'sk-ant-test', baseURL: url, maxRetries });
}

test('anthropic JSON: messages.create returns the scripted Message; the request is recorded', async (t) => {
  const fake = await startFakeAnthropic([{ text: 'Hello there.', usage: { input_tokens: 11, output_tokens: 3 } }]);
  t.after(() => fake.close());
  const msg = await anthropic(fake.url).messages.create({
    model: MODEL,
    max_tokens: 100,
    system: 'be brief',
    messages: [{ role: 'user', content: 'hi' }],
  });
  assert.equal(msg.type, 'message');
  assert.equal(msg.role, 'assistant');
  assert.equal(msg.model, MODEL);
  assert.deepEqual(msg.content, [{ type: 'text', text: 'Hello there.' }]);
  assert.equal(msg.stop_reason, 'end_turn');
  assert.equal(msg.usage.input_tokens, 11);
  assert.equal(msg.usage.output_tokens, 3);
  assert.equal(fake.requests.length, 1);
  const [req] = fake.requests;
  assert.equal(req.headers['x-api-key'], 'sk-ant-test');
  assert.ok(req.headers['anthropic-version'], 'the SDK sends anthropic-version');
  assert.equal(req.body.system, 'be brief');
  assert.equal(req.body.max_tokens, 100);
});

test('anthropic SSE: messages.stream reassembles text deltas and tool input from partial_json', async (t) => {
  const input = { command: 'ls -la /workspace && echo "done"', timeout_ms: 5000 };
  const fake = await startFakeAnthropic([
    { text: 'Let me look at the files.', toolUses: [{ id: 'toolu_01A', name: 'bash', input }] },
    { text: 'There are two files.' },
  ]);
  t.after(() => fake.close());
  const client = anthropic(fake.url);
  const textDeltas: string[] = [];
  const jsonDeltas: string[] = [];
  const stream = client.messages.stream({ model: MODEL, max_tokens: 200, tools: TOOLS, messages: [{ role: 'user', content: 'list files' }] });
  stream.on('text', (d) => textDeltas.push(d));
  stream.on('inputJson', (d) => jsonDeltas.push(d));
  const first = await stream.finalMessage();
  assert.ok(textDeltas.length >= 2, `text came in ${textDeltas.length} deltas`);
  assert.equal(textDeltas.join(''), 'Let me look at the files.');
  assert.ok(jsonDeltas.filter(Boolean).length >= 2, 'tool input came in several partial_json pieces');
  assert.equal(first.stop_reason, 'tool_use');
  assert.equal(first.content.length, 2);
  const use = first.content[1];
  assert.equal(use.type, 'tool_use');
  assert.ok(use.type === 'tool_use');
  assert.equal(use.id, 'toolu_01A');
  assert.deepEqual(use.input, input);
  assert.equal(fake.requests[0].body.stream, true);

  // The round trip: the tool_result answering the tool_use is accepted and gets the next step.
  const second = await client.messages
    .stream({
      model: MODEL,
      max_tokens: 200,
      tools: TOOLS,
      messages: [
        { role: 'user', content: 'list files' },
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01A', content: 'a.txt\nb.txt' }] },
      ],
    })
    .finalMessage();
  assert.deepEqual(second.content, [{ type: 'text', text: 'There are two files.' }]);
  assert.equal(second.stop_reason, 'end_turn');
});

test('anthropic SSE: exact event order on the wire, ping included', async (t) => {
  const fake = await startFakeAnthropic([{ text: 'abc def ghi', toolUses: [{ name: 'bash', input: { command: 'pwd' } }] }]);
  t.after(() => fake.close());
  const res = await fetch(`${fake.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'k', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: MODEL, max_tokens: 10, stream: true, messages: [{ role: 'user', content: 'x' }] }),
  });
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  assert.match(res.headers.get('request-id') ?? '', /^req_/);
  const frames = (await res.text())
    .trim()
    .split('\n\n')
    .map((f) => {
      const [ev, data] = f.split('\n');
      const parsed = JSON.parse(data.replace(/^data: /, ''));
      assert.equal(ev, `event: ${parsed.type}`, 'the event name matches the data type');
      return parsed;
    });
  const kinds = frames.map((f) => (f.type === 'content_block_delta' ? `delta:${f.index}` : f.type));
  const collapsed = kinds.filter((k, i) => k !== kinds[i - 1]);
  assert.deepEqual(collapsed, [
    'message_start',
    'content_block_start',
    'ping',
    'delta:0',
    'content_block_stop',
    'content_block_start',
    'delta:1',
    'content_block_stop',
    'message_delta',
    'message_stop',
  ]);
  assert.deepEqual(frames[0].message.content, []);
  assert.equal(frames[0].message.stop_reason, null);
  assert.deepEqual(frames.find((f) => f.type === 'content_block_start' && f.index === 1).content_block.input, {});
  const md = frames.find((f) => f.type === 'message_delta');
  assert.equal(md.delta.stop_reason, 'tool_use');
  assert.equal(typeof md.usage.output_tokens, 'number');
});

test('anthropic: a 529 overloaded_error is retried by the SDK, then succeeds', async (t) => {
  const fake = await startFakeAnthropic([
    { error: { status: 529, type: 'overloaded_error', message: 'Overloaded', retryAfter: 0.01 } },
    { text: 'ok after retry' },
  ]);
  t.after(() => fake.close());
  const msg = await anthropic(fake.url, 1).messages.create({ model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] });
  assert.deepEqual(msg.content, [{ type: 'text', text: 'ok after retry' }]);
  assert.equal(fake.requests.length, 2, 'one failed attempt and one retry');
  assert.equal(fake.requests[1].headers['x-stainless-retry-count'], '1');
});

test('anthropic: with no retries left a 529 surfaces as the SDK error with the API error type', async (t) => {
  const fake = await startFakeAnthropic([{ error: { status: 529, type: 'overloaded_error', message: 'Overloaded' } }]);
  t.after(() => fake.close());
  await assert.rejects(
    anthropic(fake.url, 0).messages.create({ model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
    (err: unknown) =>
      err instanceof Anthropic.APIError &&
      err.status === 529 &&
      (err.error as any)?.error?.type === 'overloaded_error' &&
      typeof err.requestID === 'string' &&
      err.requestID.startsWith('req_'),
  );
});

test('anthropic: a tool_result answering no tool_use is a 400 BadRequestError and consumes no step', async (t) => {
  const fake = await startFakeAnthropic([{ text: 'still here' }]);
  t.after(() => fake.close());
  const client = anthropic(fake.url, 2);
  await assert.rejects(
    client.messages.create({
      model: MODEL,
      max_tokens: 5,
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_real', name: 'bash', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_wrong', content: 'x' }] },
      ],
    }),
    (err: unknown) => err instanceof Anthropic.BadRequestError && (err.error as any).error.type === 'invalid_request_error' && /toolu_wrong/.test(err.message),
  );
  assert.equal(fake.requests.length, 1, '4xx is not retried');
  const ok = await client.messages.create({ model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] });
  assert.deepEqual(ok.content, [{ type: 'text', text: 'still here' }]);
});

test('anthropic: unanswered tool_use, missing key, missing fields and an exhausted script are rejected', async (t) => {
  const fake = await startFakeAnthropic([]);
  t.after(() => fake.close());
  const post = (headers: Record<string, string>, body: unknown) =>
    fetch(`${fake.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
  const h = { 'x-api-key': 'k', 'anthropic-version': '2023-06-01' };
  const ask = { model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] };

  const noKey = await post({ 'anthropic-version': '2023-06-01' }, ask);
  assert.equal(noKey.status, 401);
  assert.equal(noKey.body.type, 'error');
  assert.equal(noKey.body.error.type, 'authentication_error');
  assert.equal((await post({ 'x-api-key': 'k' }, ask)).status, 400);
  assert.match((await post(h, { ...ask, max_tokens: undefined })).body.error.message, /max_tokens/);
  assert.match((await post(h, { ...ask, model: undefined })).body.error.message, /model/);
  const unanswered = await post(h, {
    ...ask,
    messages: [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'bash', input: {} }] },
      { role: 'user', content: 'ignore that' },
    ],
  });
  assert.equal(unanswered.status, 400);
  assert.match(unanswered.body.error.message, /^messages\.1: `tool_use` ids were found without `tool_result` blocks.*toolu_1/);

  await assert.rejects(
    anthropic(fake.url, 2).messages.create(ask as Anthropic.MessageCreateParamsNonStreaming),
    (err: unknown) => err instanceof Anthropic.InternalServerError && /script exhausted/.test(err.message),
  );
  assert.equal(fake.requests.filter((r) => r.headers['x-stainless-lang']).length, 1, 'x-should-retry: false stops SDK retries');
});

test('anthropic SSE: an error event mid-stream rejects the SDK stream', async (t) => {
  const fake = await startFakeAnthropic([{ text: 'partial answer here', streamError: { type: 'overloaded_error', message: 'Overloaded' } }]);
  t.after(() => fake.close());
  const stream = anthropic(fake.url).messages.stream({ model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] });
  await assert.rejects(stream.finalMessage(), (err: unknown) => err instanceof Anthropic.APIError && /overloaded_error/.test(err.message));
});

test('openai streaming: tool call argument pieces are reassembled by the SDK; usage chunk arrives', async (t) => {
  const args = { command: 'cat README.md | head -n 5', timeout_ms: 1000 };
  const fake = await startFakeOpenAI([
    { content: 'Reading the readme.', toolCalls: [{ id: 'call_abc', name: 'bash', arguments: args }], usage: { prompt_tokens: 20, completion_tokens: 9 } },
  ]);
  t.after(() => fake.close());
  const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${fake.url}/v1`, maxRetries: 0 });
  const argDeltas: string[] = [];
  const stream = client.chat.completions.stream({
    model: 'gpt-test',
    stream_options: { include_usage: true },
    tools: [{ type: 'function', function: { name: 'bash', parameters: { type: 'object', properties: { command: { type: 'string' } } } } }],
    messages: [{ role: 'user', content: 'show the readme' }],
  });
  stream.on('tool_calls.function.arguments.delta', (e) => argDeltas.push(e.arguments_delta));
  const done = await stream.finalChatCompletion();
  const choice = done.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.content, 'Reading the readme.');
  const call = choice.message.tool_calls?.[0];
  assert.ok(call && call.type === 'function');
  assert.equal(call.id, 'call_abc');
  assert.equal(call.function.name, 'bash');
  assert.deepEqual(JSON.parse(call.function.arguments), args);
  assert.ok(argDeltas.length >= 2, `arguments came in ${argDeltas.length} pieces`);
  assert.equal(done.usage?.prompt_tokens, 20);
  assert.equal(done.usage?.total_tokens, 29);
  assert.equal(fake.requests[0].headers.authorization, 'Bearer sk-test');
  assert.equal(fake.requests[0].body.stream, true);
});

test('openai JSON: a non-streaming call, a tool round trip, and rejections', async (t) => {
  const fake = await startFakeOpenAI([
    { content: 'All done.' },
    { error: { status: 429, type: 'requests', message: 'Rate limit reached', retryAfter: 0.01 } },
    { content: 'after 429' },
  ]);
  t.after(() => fake.close());
  const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${fake.url}/v1`, maxRetries: 1 });
  const messages: OpenAI.ChatCompletionMessageParam[] = [
    { role: 'user', content: 'go' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'bash', arguments: '{}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: 'ok' },
  ];
  const res = await client.chat.completions.create({ model: 'gpt-test', messages });
  assert.equal(res.object, 'chat.completion');
  assert.equal(res.choices[0].message.content, 'All done.');
  assert.equal(res.choices[0].finish_reason, 'stop');
  assert.equal(res.usage?.total_tokens, (res.usage?.prompt_tokens ?? 0) + (res.usage?.completion_tokens ?? 0));

  await assert.rejects(
    client.chat.completions.create({ model: 'gpt-test', messages: messages.slice(0, 2) }),
    (err: unknown) => err instanceof OpenAI.BadRequestError && /call_1/.test(err.message),
  );
  const retried = await client.chat.completions.create({ model: 'gpt-test', messages });
  assert.equal(retried.choices[0].message.content, 'after 429');
  assert.equal(fake.requests.length, 4, 'one ok, one 400, one 429 and its retry');

  const noKey = await fetch(`${fake.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'm', messages }) });
  assert.equal(noKey.status, 401);
  assert.equal(((await noKey.json()) as any).error.type, 'invalid_request_error');
});
