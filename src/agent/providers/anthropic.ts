// Anthropic Messages API through the official SDK, streaming. The key lives in this (host)
// process only; ANTHROPIC_BASE_URL points the same code at any compatible endpoint.
import Anthropic from '@anthropic-ai/sdk';
import type { Block, ModelRequest, ModelTurn, Provider } from '../types.js';
import { providerError } from './errors.js';

export interface AnthropicOptions {
  apiKey: string;
  baseURL?: string;
  maxRetries?: number;
}

export const ANTHROPIC_DEFAULT_URL = 'https://api.anthropic.com';

type ContentBlock = { type: string; text?: string; id?: string; name?: string; input?: unknown };

function toBlocks(content: ContentBlock[]): Block[] {
  const out: Block[] = [];
  for (const b of content) {
    if (b.type === 'text' && typeof b.text === 'string') out.push({ type: 'text', text: b.text });
    else if (b.type === 'tool_use' && b.id && b.name) {
      out.push({ type: 'tool_use', id: b.id, name: b.name, input: (b.input ?? {}) as Record<string, unknown> });
    }
  }
  return out;
}

export function createAnthropicProvider(o: AnthropicOptions): Provider {
  const client = new Anthropic({ apiKey: o.apiKey, baseURL: o.baseURL, maxRetries: o.maxRetries ?? 2 });
  const endpoint = {
    provider: 'anthropic',
    baseURL: o.baseURL ?? ANTHROPIC_DEFAULT_URL,
    fromEnv: o.baseURL !== undefined,
    keyVar: 'ANTHROPIC_API_KEY',
    baseVar: 'ANTHROPIC_BASE_URL',
  };
  return {
    name: 'anthropic',
    async turn(req: ModelRequest, onText: (delta: string) => void): Promise<ModelTurn> {
      try {
        const stream = client.messages.stream(
          {
            model: req.model,
            max_tokens: req.maxTokens,
            system: req.system,
            messages: req.messages as Anthropic.MessageParam[],
            tools: req.tools as Anthropic.Tool[],
          },
          { signal: req.signal },
        );
        stream.on('text', (delta: string) => onText(delta));
        const msg = await stream.finalMessage();
        return {
          ok: true,
          content: toBlocks(msg.content as ContentBlock[]),
          stopReason: msg.stop_reason ?? 'end_turn',
          usage: { inputTokens: msg.usage.input_tokens, outputTokens: msg.usage.output_tokens },
        };
      } catch (e) {
        return providerError(e, { ...endpoint, model: req.model });
      }
    },
  };
}
