// Provider failures become data: one line for the user and the log that names the endpoint, the
// variable to change and the likely fix, and whether a retry could help.
import type { ModelTurn } from '../types.js';

/** Where a provider sends its requests and which variables choose that. */
export interface Endpoint {
  provider: string;
  /** The base URL in use (the SDK's default when the variable is unset). */
  baseURL: string;
  /** Whether baseURL came from baseVar (else it is the provider's default). */
  fromEnv: boolean;
  keyVar: string;
  baseVar: string;
  model: string;
  /** True when the request goes without a key (a local server). */
  keyless?: boolean;
}

/** A URL fit to print: no user:password, query or fragment (either could carry a token). */
export function shownURL(raw: string): string {
  try {
    const u = new URL(raw);
    u.username = '';
    u.password = '';
    u.search = '';
    u.hash = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(an unparsable URL)';
  }
}

/** Any URL inside a message loses its user:password and query (fetch's own errors quote the URL). */
const scrubURLs = (s: string) => s.replace(/(\/\/)[^/@\s]*@/g, '$1').replace(/(https?:\/\/[^\s?#]*)[?#][^\s)]*/g, '$1');

const endsInV1 = (url: string) => /\/v1\/?$/.test(url);

/** The likely fix for an HTTP status, naming the variable to change. */
function fixFor(status: number, ep: Endpoint): string {
  const base = `${ep.baseVar}${ep.fromEnv ? '' : ' (unset: the provider default)'}`;
  if (status === 401 || status === 403) {
    return ep.keyless ? `this server wants a key: set ${ep.keyVar}` : `check ${ep.keyVar}: the key is wrong, expired or has no access to this model`;
  }
  if (status === 404) {
    if (ep.provider === 'anthropic' && endsInV1(ep.baseURL)) return `drop the /v1 from ${ep.baseVar} (the SDK adds /v1/messages itself)`;
    if (ep.provider === 'openai' && !endsInV1(ep.baseURL))
      return `${ep.baseVar} usually ends in /v1 (e.g. http://127.0.0.1:11434/v1), or the model "${ep.model}" does not exist there`;
    return `check the model name "${ep.model}" (--model ${ep.provider}:NAME) and ${base}`;
  }
  if (status === 429) return 'rate limited or out of credit: wait, or check the account behind the key';
  if (status >= 500) return 'the model service failed: try again later';
  return `check the model name "${ep.model}" and ${base}`;
}

/** The network failure in words, from the SDK's connection error and the causes under it. */
function unreachable(e: { message?: string; cause?: unknown; name?: string }, ep: Endpoint): string {
  let inner: { message?: string; code?: string; cause?: unknown } = e;
  while (inner.cause && typeof inner.cause === 'object' && !(inner as { code?: string }).code) inner = inner.cause as typeof inner;
  const code = inner.code ?? '';
  const at = shownURL(ep.baseURL);
  if (code === 'ECONNREFUSED') return `nothing is listening at ${at} (connection refused): start the server, or fix ${ep.baseVar}`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `the host of ${at} does not resolve (${code}): fix ${ep.baseVar}`;
  if (/timeout|timed out/i.test(`${e.name} ${e.message}`)) return `${at} did not answer in time: check ${ep.baseVar} and the network`;
  const why = scrubURLs((inner.message ?? e.message ?? 'connection error').split('\n')[0]).slice(0, 160);
  return `${at} could not be reached (${why}${code ? `, ${code}` : ''}): check ${ep.baseVar} and the network`;
}

/** The server's own words: the message in its error body, not the SDK's "401 {json}". */
function serverMessage(err: { message?: string; error?: unknown }): string {
  const body = err.error as { message?: unknown; error?: { message?: unknown } } | undefined;
  const said = typeof body?.error?.message === 'string' ? body.error.message : typeof body?.message === 'string' ? body.message : null;
  return scrubURLs((said ?? (err.message ?? '').replace(/^\d{3} /, '')).split('\n')[0]).slice(0, 300);
}

export function providerError(e: unknown, ep: Endpoint): ModelTurn {
  const err = e as { status?: number; message?: string; name?: string; cause?: unknown; error?: unknown };
  const status = typeof err.status === 'number' ? err.status : undefined;
  const retryable = status === undefined || status === 408 || status === 409 || status === 429 || status >= 500;
  if (err.name === 'APIUserAbortError' || err.name === 'AbortError') return { ok: false, error: 'model request aborted', retryable: false };
  if (status === undefined) return { ok: false, error: `model API unreachable (${ep.provider}): ${unreachable(err, ep)}`, retryable };
  return {
    ok: false,
    error: `model API error ${status} from ${shownURL(ep.baseURL)} (${ep.provider}, model "${ep.model}"): ${serverMessage(err)} · ${fixFor(status, ep)}`,
    retryable,
  };
}
