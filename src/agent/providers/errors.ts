// Provider failures become data: one line for the user and the log, and whether a retry could help.
import type { ModelTurn } from '../types.js';

export function providerError(e: unknown): ModelTurn {
  const err = e as { status?: number; message?: string; name?: string };
  const status = typeof err.status === 'number' ? err.status : undefined;
  const message = (err.message ?? String(e)).split('\n')[0].slice(0, 300);
  const retryable = status === undefined || status === 408 || status === 409 || status === 429 || status >= 500;
  return { ok: false, error: status ? `model API error ${status}: ${message}` : `model API unreachable: ${message}`, retryable };
}
