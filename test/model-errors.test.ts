// What a user sees when the model cannot be reached or refuses: the real SDKs against the faithful
// local servers (test/fakes), each failure one line naming the endpoint, the variable and the fix;
// a local OpenAI-compatible server without a key; --model without a provider prefix.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { createAnthropicProvider } from '../src/agent/providers/anthropic.js';
import { createOpenAIProvider } from '../src/agent/providers/openai.js';
import { ModelChoiceError, resolveModel } from '../src/agent/providers/registry.js';
import type { ModelTurn, Provider } from '../src/agent/types.js';
import { startFakeAnthropic } from './fakes/anthropic.js';
import { startFakeOpenAI } from './fakes/openai.js';

const ask = (p: Provider, model = 'm-test'): Promise<ModelTurn> =>
  p.turn({ model, system: 's', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }], tools: [], maxTokens: 64 }, () => {});

const errorOf = async (p: Provider, model?: string): Promise<string> => {
  const t = await ask(p, model);
  assert.equal(t.ok, false, 'the turn failed');
  return t.ok ? '' : t.error;
};

/** A loopback port with nothing listening on it. */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('model errors name the endpoint, the variable and the fix', () => {
  test('anthropic 401: the key', async () => {
    const fake = await startFakeAnthropic([{ error: { status: 401, type: 'authentication_error', message: 'invalid x-api-key' } }]);
    try {
      const e = await errorOf(createAnthropicProvider({ apiKey: 'sk-ant-wrong', baseURL: fake.url, maxRetries: 0 }));
      assert.match(e, /^model API error 401 from http:\/\/127\.0\.0\.1:\d+ \(anthropic, model "m-test"\): invalid x-api-key · check ANTHROPIC_API_KEY/);
      assert.ok(!e.includes('sk-ant-wrong'), 'the key itself is never shown');
      assert.ok(!e.includes('\n'), 'one line');
    } finally {
      await fake.close();
    }
  });

  test('anthropic 404 with a /v1 base URL: drop the /v1; without it: the model name', async () => {
    const fake = await startFakeAnthropic([{ error: { status: 404, type: 'not_found_error', message: 'model: claude-nope' } }]);
    try {
      const v1 = await errorOf(createAnthropicProvider({ apiKey: 'k', baseURL: `${fake.url}/v1`, maxRetries: 0 }));
      assert.match(v1, /404/);
      assert.match(v1, /drop the \/v1 from ANTHROPIC_BASE_URL/);
      const model = await errorOf(createAnthropicProvider({ apiKey: 'k', baseURL: fake.url, maxRetries: 0 }), 'claude-nope');
      assert.match(model, /model: claude-nope · check the model name "claude-nope" \(--model anthropic:NAME\) and ANTHROPIC_BASE_URL/);
    } finally {
      await fake.close();
    }
  });

  test('openai 404 without /v1 in the base URL: add it; 404 for a model: the model name', async () => {
    const fake = await startFakeOpenAI([
      { error: { status: 404, type: 'invalid_request_error', code: 'model_not_found', message: 'The model `gpt-nope` does not exist' } },
    ]);
    try {
      const bare = await errorOf(createOpenAIProvider({ apiKey: 'sk-x', baseURL: fake.url, maxRetries: 0 }));
      assert.match(bare, /^model API error 404 from http:\/\/127\.0\.0\.1:\d+ \(openai/);
      assert.match(bare, /OPENAI_BASE_URL usually ends in \/v1/);
      const model = await errorOf(createOpenAIProvider({ apiKey: 'sk-x', baseURL: `${fake.url}/v1`, maxRetries: 0 }), 'gpt-nope');
      assert.match(model, /does not exist · check the model name "gpt-nope" \(--model openai:NAME\)/);
    } finally {
      await fake.close();
    }
  });

  test('openai 401: the key; a keyless run against a server that wants one: set the key', async () => {
    const fake = await startFakeOpenAI([
      { error: { status: 401, type: 'invalid_request_error', code: 'invalid_api_key', message: 'Incorrect API key provided' } },
    ]);
    try {
      const wrong = await errorOf(createOpenAIProvider({ apiKey: 'sk-wrong', baseURL: `${fake.url}/v1`, maxRetries: 0 }));
      assert.match(wrong, /Incorrect API key provided · check OPENAI_API_KEY/);
      const none = await errorOf(createOpenAIProvider({ baseURL: `${fake.url}/v1`, maxRetries: 0 }));
      assert.match(none, /this server wants a key: set OPENAI_API_KEY/);
    } finally {
      await fake.close();
    }
  });

  test('connection refused: the URL and its variable, no credentials from the URL', async () => {
    const port = await deadPort();
    const e = await errorOf(createOpenAIProvider({ apiKey: 'sk-x', baseURL: `http://127.0.0.1:${port}/v1?token=abc`, maxRetries: 0 }));
    assert.match(e, new RegExp(`nothing is listening at http://127\\.0\\.0\\.1:${port}/v1 \\(connection refused\\): start the server, or fix OPENAI_BASE_URL`));
    assert.ok(!e.includes('abc'), e);
    // A URL with user:password: fetch refuses it; the line says why and never shows the password.
    const cred = await errorOf(createOpenAIProvider({ apiKey: 'sk-x', baseURL: `http://user:hunter2@127.0.0.1:${port}/v1`, maxRetries: 0 }));
    assert.match(cred, /includes credentials.*check OPENAI_BASE_URL/);
    assert.ok(!cred.includes('hunter2'), cred);
    const a = await errorOf(createAnthropicProvider({ apiKey: 'k', baseURL: `http://127.0.0.1:${port}`, maxRetries: 0 }));
    assert.match(a, /connection refused.*ANTHROPIC_BASE_URL/);
  });
});

describe('choosing the model', () => {
  test('a local OpenAI-compatible base URL works without a key, and sends none', async () => {
    const fake = await startFakeOpenAI([{ content: 'hello from llama' }], { keyless: true });
    try {
      const m = resolveModel('openai:llama3', { OPENAI_BASE_URL: `${fake.url}/v1` });
      assert.equal(m.keyless, true);
      const t = await ask(m.provider, m.model);
      assert.ok(t.ok, JSON.stringify(t));
      assert.equal(fake.requests[0].headers.authorization, undefined, 'no Authorization header at all');
      assert.equal(fake.requests[0].body.model, 'llama3');
      // No --model and no keys: a loopback OPENAI_BASE_URL picks openai.
      assert.equal(resolveModel(undefined, { OPENAI_BASE_URL: `${fake.url}/v1` }).providerName, 'openai');
    } finally {
      await fake.close();
    }
  });

  test('a remote base URL still needs the key; the line says a local one would not', () => {
    assert.throws(
      () => resolveModel('openai:gpt-4o', { OPENAI_BASE_URL: 'https://llm.example.com/v1' }),
      (e: Error) => e instanceof ModelChoiceError && /^OPENAI_API_KEY is not set .*http:\/\/127\.0\.0\.1:PORT\/v1 needs none/.test(e.message),
    );
    assert.throws(() => resolveModel('anthropic:claude-x', { ANTHROPIC_BASE_URL: 'http://127.0.0.1:9/' }), /ANTHROPIC_API_KEY is not set/);
    assert.throws(() => resolveModel('openai:x', { OPENAI_BASE_URL: 'localhost:11434/v1' }), /OPENAI_BASE_URL "[^"]*" is not an http\(s\) URL/);
  });

  test('a bare model name is placed by its family, or refused with the forms', () => {
    const env = { ANTHROPIC_API_KEY: 'a', OPENAI_API_KEY: 'o' };
    for (const [spec, provider, model] of [
      ['gpt-4o', 'openai', 'gpt-4o'],
      ['o3-mini', 'openai', 'o3-mini'],
      ['o1', 'openai', 'o1'],
      ['o4-mini', 'openai', 'o4-mini'],
      ['claude-sonnet-4-5', 'anthropic', 'claude-sonnet-4-5'],
      ['openai:llama3:8b', 'openai', 'llama3:8b'],
      ['anthropic:claude-x', 'anthropic', 'claude-x'],
    ]) {
      const m = resolveModel(spec, env);
      assert.deepEqual([m.providerName, m.model], [provider, model], spec);
    }
    assert.throws(() => resolveModel('llama3', env), /--model "llama3" names no provider .*openai:NAME/);
    assert.throws(() => resolveModel('omni-x', env), /names no provider/);
    assert.throws(() => resolveModel('mistral:7b', env), /unknown provider "mistral" in --model "mistral:7b" \(write anthropic:NAME or openai:NAME/);
    assert.equal(resolveModel(undefined, { ...env, CLAWPOD_MODEL: 'gpt-4o' }).providerName, 'openai', 'CLAWPOD_MODEL is the default for --model');
  });
});
