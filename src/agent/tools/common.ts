// What every tool shares: input checks that name the bad field, output bounds with a note saying
// how much was cut, pod paths, and the wrapper that turns any exception into an error result
// (a tool never throws at the loop: the model gets to see what went wrong).
import type { PodOps, Tool, ToolResult, ToolSpec } from '../types.js';

export const WORKSPACE = '/workspace';

/** Text a tool returns to the model is cut here: more would crowd the model's context. */
export const MAX_RESULT_BYTES = 64 * 1024;

/** A bad input: reported to the model as an error result naming the field. */
export class ToolInputError extends Error {}

export const ok = (content: string): ToolResult => ({ content, isError: false });
export const fail = (content: string): ToolResult => ({ content, isError: true });

/** A tool from its spec and body; the body may throw, the tool never does. */
export function defineTool(spec: ToolSpec, body: (input: Record<string, unknown>, ops: PodOps) => Promise<ToolResult>): Tool {
  return {
    spec,
    async run(input, ops) {
      try {
        if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new ToolInputError('input must be a JSON object');
        return await body(input, ops);
      } catch (e) {
        if (e instanceof ToolInputError) return fail(`${spec.name}: ${e.message}`);
        return fail(`${spec.name} failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    },
  };
}

/** A required string field; empty strings are refused unless allowEmpty. */
export function str(input: Record<string, unknown>, name: string, opts: { allowEmpty?: boolean } = {}): string {
  const v = input[name];
  if (v === undefined || v === null) throw new ToolInputError(`missing required field "${name}" (a string)`);
  if (typeof v !== 'string') throw new ToolInputError(`field "${name}" must be a string, got ${typeName(v)}`);
  if (!opts.allowEmpty && v === '') throw new ToolInputError(`field "${name}" must not be empty`);
  return v;
}

export function optStr(input: Record<string, unknown>, name: string): string | undefined {
  return input[name] === undefined || input[name] === null ? undefined : str(input, name);
}

export function optNum(input: Record<string, unknown>, name: string): number | undefined {
  const v = input[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ToolInputError(`field "${name}" must be a number, got ${typeName(v)}`);
  return v;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  return Array.isArray(v) ? 'an array' : `a ${typeof v}`;
}

/** A path as the pod sees it: relative ones are under the workspace (`dir`: /workspace, or its
 *  host path with workspaceAt: host). Never resolved on the host. */
export function podPath(p: string, field = 'path', dir = WORKSPACE): string {
  if (p.includes('\0')) throw new ToolInputError(`field "${field}" contains a NUL byte`);
  return p.startsWith('/') ? p : `${dir}/${p.replace(/^\.\/+/, '')}`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

/** The largest prefix of buf no longer than limit that does not split a UTF-8 sequence. */
export function utf8Prefix(buf: Buffer, limit: number): Buffer {
  if (buf.length <= limit) return buf;
  let end = limit;
  // Step back over continuation bytes so the cut lands on a character boundary.
  while (end > 0 && (buf[end] & 0xc0) === 0x80) end--;
  return buf.subarray(0, end);
}

/**
 * Output as text, at most limit bytes. `more` is how many bytes the pod already dropped (when
 * the exec itself was bounded), so the note can say "more than".
 */
export function boundText(buf: Buffer, limit: number, podTruncated = false): string {
  const head = utf8Prefix(buf, limit);
  const cut = buf.length - head.length;
  const text = head.toString('utf8');
  if (cut === 0 && !podTruncated) return text;
  const amount = podTruncated ? `more than ${formatBytes(cut)}` : formatBytes(cut);
  return `${text}${text.endsWith('\n') || text === '' ? '' : '\n'}[output truncated: ${amount} more]`;
}

/** Splits text into UTF-8 pieces of at most size bytes: one argv element is capped at 128 KiB. */
export function utf8Chunks(text: string, size: number): string[] {
  const chunks: string[] = [];
  let buf = Buffer.from(text, 'utf8');
  while (buf.length > 0) {
    const head = utf8Prefix(buf, size);
    chunks.push(head.toString('utf8'));
    buf = buf.subarray(head.length);
  }
  return chunks;
}

/** A binary file or body: a NUL byte early on, as grep and git decide. */
export function looksBinary(buf: Buffer): boolean {
  return buf.subarray(0, 8192).includes(0);
}

/** Seconds for a timeout message, without a trailing ".0". */
export function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}
