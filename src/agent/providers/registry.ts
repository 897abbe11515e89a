// The provider registry: a plain record per provider; `--model provider:name` picks one, a bare
// name is placed by its family (claude-* anthropic, gpt-*/o1/o3/o4 openai) or refused.
import { ClawpodError } from '../../util/errors.js';
import type { Provider } from '../types.js';
import { ANTHROPIC_DEFAULT_URL, createAnthropicProvider } from './anthropic.js';
import { shownURL } from './errors.js';
import { createOpenAIProvider, OPENAI_DEFAULT_URL } from './openai.js';

interface ProviderEntry {
  keyVar: string;
  baseVar: string;
  defaultURL: string;
  defaultModel: string;
  /** Bare model names of this provider's families. */
  family: RegExp;
  /** Whether a loopback base URL may go without a key (local OpenAI-compatible servers). */
  localKeyless: boolean;
  create(o: { apiKey?: string; baseURL?: string }): Provider;
}

export const PROVIDERS: Record<string, ProviderEntry> = {
  anthropic: {
    keyVar: 'ANTHROPIC_API_KEY',
    baseVar: 'ANTHROPIC_BASE_URL',
    defaultURL: ANTHROPIC_DEFAULT_URL,
    defaultModel: 'claude-sonnet-5',
    family: /^claude-/,
    localKeyless: false,
    create: (o) => createAnthropicProvider({ ...o, apiKey: o.apiKey ?? '' }),
  },
  openai: {
    keyVar: 'OPENAI_API_KEY',
    baseVar: 'OPENAI_BASE_URL',
    defaultURL: OPENAI_DEFAULT_URL,
    defaultModel: 'gpt-4o-mini',
    family: /^(gpt-|chatgpt-|o[134]($|-))/,
    localKeyless: true,
    create: createOpenAIProvider,
  },
};

export class ModelChoiceError extends ClawpodError {}

/** baseURL and keyless are optional so a caller-made choice (the demo's replay) fits the same shape. */
export interface ModelChoice {
  provider: Provider;
  model: string;
  providerName: string;
  baseURL?: string;
  keyless?: boolean;
}

/** A base URL on this machine: 127.0.0.0/8, ::1 or localhost. */
export function isLoopbackURL(raw: string): boolean {
  let host: string;
  try {
    host = new URL(raw).hostname;
  } catch {
    return false;
  }
  return host === 'localhost' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);
}

const FORMS =
  'anthropic:NAME or openai:NAME (e.g. anthropic:claude-sonnet-5, openai:gpt-4o; a local server: openai:llama3 with OPENAI_BASE_URL=http://127.0.0.1:11434/v1)';

/** The provider and model a --model value names. */
function splitSpec(spec: string): { name: string; model: string } {
  const i = spec.indexOf(':');
  if (i > 0 && PROVIDERS[spec.slice(0, i)]) return { name: spec.slice(0, i), model: spec.slice(i + 1) };
  for (const [name, p] of Object.entries(PROVIDERS)) if (p.family.test(spec)) return { name, model: spec };
  if (i > 0) throw new ModelChoiceError(`unknown provider "${spec.slice(0, i)}" in --model "${spec}" (write ${FORMS})`);
  throw new ModelChoiceError(`--model "${spec}" names no provider and is not a claude-* or gpt-* name (write ${FORMS})`);
}

/** "anthropic:claude-x", "openai:gpt-y", a bare name of a known family (claude-, gpt-, o1, o3, o4), or
 *  nothing (CLAWPOD_MODEL, then the default). */
export function resolveModel(spec: string | undefined, env: NodeJS.ProcessEnv): ModelChoice {
  spec = spec || env.CLAWPOD_MODEL || undefined;
  let name = 'anthropic';
  let model: string | undefined;
  if (spec) ({ name, model } = splitSpec(spec));
  else if (!env.ANTHROPIC_API_KEY && (env.OPENAI_API_KEY || isLoopbackURL(env.OPENAI_BASE_URL ?? ''))) name = 'openai';
  const entry = PROVIDERS[name];
  const baseURL = env[entry.baseVar] || undefined;
  if (baseURL !== undefined && !/^https?:\/\/[^/]/.test(baseURL)) {
    throw new ModelChoiceError(`${entry.baseVar} "${shownURL(baseURL)}" is not an http(s) URL (e.g. ${entry.defaultURL})`);
  }
  const apiKey = env[entry.keyVar] || undefined;
  const keyless = !apiKey && entry.localKeyless && baseURL !== undefined && isLoopbackURL(baseURL);
  if (!apiKey && !keyless) {
    const local = entry.localKeyless ? `; a local server at ${entry.baseVar}=http://127.0.0.1:PORT/v1 needs none` : '';
    throw new ModelChoiceError(`${entry.keyVar} is not set (export it to use ${name} models${local}; or run clawpod demo for the offline replay)`);
  }
  return { provider: entry.create({ apiKey, baseURL }), model: model || entry.defaultModel, providerName: name, baseURL: baseURL ?? entry.defaultURL, keyless };
}
