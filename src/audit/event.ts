// The audit event record and its one line format, shared by the writer and the verifier so the two
// can never disagree about what a valid line is.
import * as crypto from 'node:crypto';
import { canonicalJson } from './canonical.js';

/** Event names of the audit contract (DESIGN.md); any other string is accepted too. */
export type EventType =
  | 'run.start'
  | 'run.end'
  | 'exec.start'
  | 'exec.exit'
  | 'limit.hit'
  | 'file.write'
  | 'net.allow'
  | 'net.deny'
  | 'secret.use'
  | 'tool.call'
  | 'tool.result'
  | 'model.request'
  | 'model.response'
  | 'policy.deny'
  | 'guard.degraded'
  // `string & {}` keeps editor completion for the names above while allowing new ones.
  | (string & {});

export interface AuditEvent {
  seq: number;
  ts: string;
  run: string;
  type: EventType;
  data: Record<string, unknown>;
  prev: string;
  hash: string;
}

export const GENESIS_PREV = '0'.repeat(64);

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * sha256(prev + canonicalJSON(line without hash)). `dataJson` must already be canonical; the
 * remaining keys are written here in sorted order (data, prev, run, seq, ts, type), which is
 * exactly what canonicalJson would produce for the whole object, without re-encoding the data.
 */
export function eventHash(e: Omit<AuditEvent, 'hash' | 'data'>, dataJson: string): string {
  const body =
    `{"data":${dataJson},"prev":${JSON.stringify(e.prev)},"run":${JSON.stringify(e.run)},` +
    `"seq":${e.seq},"ts":${JSON.stringify(e.ts)},"type":${JSON.stringify(e.type)}}`;
  return sha256Hex(e.prev + body);
}

// One-shot crypto.hash (Node >= 20.12) is about twice as fast as a Hash object, and this runs
// once per event; older Node 20 falls back.
const sha256Hex: (s: string) => string =
  typeof crypto.hash === 'function' ? (s) => crypto.hash('sha256', s, 'hex') : (s) => crypto.createHash('sha256').update(s).digest('hex');

/** The on-disk line (without newline): contract key order, data in canonical form. */
export function formatLine(e: Omit<AuditEvent, 'data'>, dataJson: string): string {
  return (
    `{"seq":${e.seq},"ts":${JSON.stringify(e.ts)},"run":${JSON.stringify(e.run)},` +
    `"type":${JSON.stringify(e.type)},"data":${dataJson},"prev":${JSON.stringify(e.prev)},` +
    `"hash":${JSON.stringify(e.hash)}}`
  );
}

/** Parses one line; returns the event or the reason it is not a well-formed event. */
export function parseLine(line: string): { event: AuditEvent } | { reason: string } {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return { reason: 'bad JSON' };
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return { reason: 'bad JSON: not an object' };
  const o = v as Record<string, unknown>;
  if (!Number.isSafeInteger(o.seq) || (o.seq as number) < 1) return { reason: 'malformed event: seq' };
  for (const k of ['ts', 'run', 'type'] as const) {
    if (typeof o[k] !== 'string') return { reason: `malformed event: ${k}` };
  }
  if (o.data === null || typeof o.data !== 'object' || Array.isArray(o.data)) {
    return { reason: 'malformed event: data' };
  }
  for (const k of ['prev', 'hash'] as const) {
    if (typeof o[k] !== 'string' || !HEX64.test(o[k] as string)) return { reason: `malformed event: ${k}` };
  }
  const keys = Object.keys(o);
  if (keys.length !== 7) return { reason: 'malformed event: unexpected keys' };
  return { event: o as unknown as AuditEvent };
}

/**
 * Checks one parsed event on its own: its hash, and that the line is byte-for-byte the form the
 * writer produces. The second check means a change that JSON.parse would hide (an escape spelled
 * differently, a reordered key) is still caught, so any flipped byte fails verification.
 */
export function checkEventIntegrity(e: AuditEvent, line: string): string | undefined {
  const dataJson = canonicalJson(e.data);
  if (eventHash(e, dataJson) !== e.hash) return 'hash mismatch';
  if (formatLine(e, dataJson) !== line) return 'line is not in canonical form';
  return undefined;
}

/** A failure of the audit log itself (bad input, I/O, a chain that cannot be continued). */
export class AuditError extends Error {
  override name = 'AuditError';
}
