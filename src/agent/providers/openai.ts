// OpenAI-compatible chat completions (OpenAI, Ollama, vLLM, llama.cpp servers) through the
// official SDK, streaming; converts to and from the neutral message format.
import OpenAI from 'openai';
import type { Block, Message, ModelRequest, ModelTurn, Provider } from '../types.js';
import { providerError } from './errors.js';

/** No apiKey: the request carries no Authorization header at all (a local server that wants none). */
export interface OpenAIOptions {
  apiKey?: string;
  baseURL?: string;
  maxRetries?: number;
}

export const OPENAI_DEFAULT_URL = 'https://api.openai.com/v1';

type ChatMessage = OpenAI.Chat.Completions.ChatCompletionMessageParam;

/** Neutral messages -> chat messages: tool results become role "tool" messages. */
export function toChatMessages(system: string, messages: Message[]): ChatMessage[] {
  const out: ChatMessage[] = [{ role: 'system', content: system }];
  for (const m of messages) {
    const text = m.content
      .filter((b) => b.type === 'text')
      .map((b) => (b as { text: string }).text)
      .join('');
    if (m.role === 'assistant') {
      const calls = m.content.filter((b) => b.type === 'tool_use') as Extract<Block, { type: 'tool_use' }>[];
      out.push({
        role: 'assistant',
        content: text || null,
        ...(calls.length
          ? { tool_calls: calls.map((c) => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: JSON.stringify(c.input) } })) }
          : {}),
      });
      continue;
    }
    for (const b of m.content) {
      if (b.type === 'tool_result') out.push({ role: 'tool', tool_call_id: b.tool_use_id, content: b.content });
    }
    if (text) out.push({ role: 'user', content: text });
  }
  return out;
}

function parseArgs(raw: string): Record<string, unknown> {
  try {
    const v = JSON.parse(raw || '{}');
    return v && typeof v === 'object' && !Array.isArray(v) ? v : { value: v };
  } catch {
    return { _invalid_json: raw };
  }
}

export function createOpenAIProvider(o: OpenAIOptions): Provider {
  // The SDK insists on a key; a null Authorization default drops the header it would build from it.
  const client = new OpenAI(
    o.apiKey
      ? { apiKey: o.apiKey, baseURL: o.baseURL, maxRetries: o.maxRetries ?? 2 }
      : { apiKey: 'no-key', defaultHeaders: { Authorization: null }, baseURL: o.baseURL, maxRetries: o.maxRetries ?? 2 },
  );
  const endpoint = {
    provider: 'openai',
    baseURL: o.baseURL ?? OPENAI_DEFAULT_URL,
    fromEnv: o.baseURL !== undefined,
    keyVar: 'OPENAI_API_KEY',
    baseVar: 'OPENAI_BASE_URL',
    keyless: !o.apiKey,
  };
  return {
    name: 'openai',
    async turn(req: ModelRequest, onText: (delta: string) => void): Promise<ModelTurn> {
      try {
        const stream = await client.chat.completions.create(
          {
            model: req.model,
            max_tokens: req.maxTokens,
            messages: toChatMessages(req.system, req.messages),
            tools: req.tools.map((t) => ({ type: 'function' as const, function: { name: t.name, description: t.description, parameters: t.input_schema } })),
            stream: true,
            stream_options: { include_usage: true },
          },
          { signal: req.signal },
        );
        let text = '';
        let finish = 'stop';
        const calls: { id: string; name: string; args: string }[] = [];
        const usage = { inputTokens: 0, outputTokens: 0 };
        for await (const chunk of stream) {
          if (chunk.usage) {
            usage.inputTokens = chunk.usage.prompt_tokens;
            usage.outputTokens = chunk.usage.completion_tokens;
          }
          const choice = chunk.choices[0];
          if (!choice) continue;
          if (choice.delta?.content) {
            text += choice.delta.content;
            onText(choice.delta.content);
          }
          for (const tc of choice.delta?.tool_calls ?? []) {
            const c = (calls[tc.index] ??= { id: '', name: '', args: '' });
            if (tc.id) c.id = tc.id;
            if (tc.function?.name) c.name += tc.function.name;
            if (tc.function?.arguments) c.args += tc.function.arguments;
          }
          if (choice.finish_reason) finish = choice.finish_reason;
        }
        const content: Block[] = [];
        if (text) content.push({ type: 'text', text });
        for (const c of calls) content.push({ type: 'tool_use', id: c.id, name: c.name, input: parseArgs(c.args) });
        return { ok: true, content, stopReason: finish === 'tool_calls' ? 'tool_use' : finish === 'length' ? 'max_tokens' : 'end_turn', usage };
      } catch (e) {
        return providerError(e, { ...endpoint, model: req.model });
      }
    },
  };
}
