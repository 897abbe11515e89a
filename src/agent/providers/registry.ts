// The provider registry: a plain record per provider; `--model provider:name` picks one.
import { ClawpodError } from '../../util/errors.js';
import type { Provider } from '../types.js';
import { createAnthropicProvider } from './anthropic.js';
import { createOpenAIProvider } from './openai.js';

interface ProviderEntry {
  keyVar: string;
  baseVar: string;
  defaultModel: string;
  create(o: { apiKey: string; baseURL?: string }): Provider;
}

export const PROVIDERS: Record<string, ProviderEntry> = {
  anthropic: { keyVar: 'ANTHROPIC_API_KEY', baseVar: 'ANTHROPIC_BASE_URL', defaultModel: 'claude-sonnet-4-5', create: createAnthropicProvider },
  openai: { keyVar: 'OPENAI_API_KEY', baseVar: 'OPENAI_BASE_URL', defaultModel: 'gpt-4o-mini', create: createOpenAIProvider },
};

export class ModelChoiceError extends ClawpodError {}

/** "anthropic:claude-x", "openai:gpt-y", a bare model name (Anthropic), or nothing (default). */
export function resolveModel(spec: string | undefined, env: NodeJS.ProcessEnv): { provider: Provider; model: string; providerName: string } {
  let name = 'anthropic';
  let model: string | undefined;
  if (spec) {
    const i = spec.indexOf(':');
    if (i > 0 && PROVIDERS[spec.slice(0, i)]) { name = spec.slice(0, i); model = spec.slice(i + 1); }
    else if (i > 0) throw new ModelChoiceError(`unknown provider "${spec.slice(0, i)}" in --model (use ${Object.keys(PROVIDERS).join(' or ')})`);
    else model = spec;
  } else if (!env.ANTHROPIC_API_KEY && env.OPENAI_API_KEY) name = 'openai';
  const entry = PROVIDERS[name];
  const apiKey = env[entry.keyVar];
  if (!apiKey) throw new ModelChoiceError(`${entry.keyVar} is not set (export it to use ${name} models, or run clawpod demo for the offline replay)`);
  return { provider: entry.create({ apiKey, baseURL: env[entry.baseVar] || undefined }), model: model || entry.defaultModel, providerName: name };
}
