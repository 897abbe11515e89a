// Reading and verifying audit files. Verification recomputes the whole chain from the genesis
// prev, so a changed byte, a deleted or reordered line, or a torn final line is named by line.
import { readFileSync } from 'node:fs';
import { AuditError, type AuditEvent, checkEventIntegrity, GENESIS_PREV, parseLine } from './event.js';

export type VerifyResult =
  | { ok: true; count: number; lastHash: string }
  | { ok: false; line: number; reason: string };

export interface VerifyOptions {
  /** Expected run id; by default every line must carry the first line's run id. */
  runId?: string;
}

/** Recomputes the chain of one audit file. I/O errors (missing file) throw; bad content does not. */
export function verifyAudit(path: string, opts: VerifyOptions = {}): VerifyResult {
  const text = readFileSync(path, 'utf8');
  let runId = opts.runId;
  let prev = GENESIS_PREV;
  let count = 0;
  let start = 0;
  while (start < text.length) {
    const lineNo = count + 1;
    const nl = text.indexOf('\n', start);
    if (nl === -1) return { ok: false, line: lineNo, reason: 'truncated final line (no newline)' };
    const line = text.slice(start, nl);
    start = nl + 1;
    const parsed = parseLine(line);
    if ('reason' in parsed) return { ok: false, line: lineNo, reason: parsed.reason };
    const e = parsed.event;
    if (e.seq !== lineNo) return { ok: false, line: lineNo, reason: `seq gap: expected ${lineNo}, found ${e.seq}` };
    runId ??= e.run;
    if (e.run !== runId) return { ok: false, line: lineNo, reason: `run id mismatch: expected ${runId}, found ${e.run}` };
    if (e.prev !== prev) return { ok: false, line: lineNo, reason: 'prev mismatch: does not chain to the line before' };
    const bad = checkEventIntegrity(e, line);
    if (bad !== undefined) return { ok: false, line: lineNo, reason: bad };
    prev = e.hash;
    count = lineNo;
  }
  return { ok: true, count, lastHash: prev };
}

/**
 * Events of every complete line, for display. A torn final line is skipped (resume or verify
 * deal with it); a line that is not an event throws, naming it. Does not check hashes.
 */
export function readAudit(path: string): AuditEvent[] {
  const text = readFileSync(path, 'utf8');
  const events: AuditEvent[] = [];
  const lines = text.split('\n');
  // The element after the last newline is '' for a well-terminated file, else a torn line.
  for (let i = 0; i < lines.length - 1; i++) {
    const parsed = parseLine(lines[i]);
    if ('reason' in parsed) throw new AuditError(`${path}:${i + 1}: ${parsed.reason}`);
    events.push(parsed.event);
  }
  return events;
}
