// Reading and verifying audit files. Verification recomputes the whole chain from the genesis
// prev, so a changed byte, a deleted or reordered line, or a torn final line is named by line.
// Files are read in chunks, line by line: a log of any size is checked in bounded memory.
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { AuditError, type AuditEvent, checkEventIntegrity, GENESIS_PREV, parseLine } from './event.js';

export type VerifyResult = { ok: true; count: number; lastHash: string } | { ok: false; line: number; reason: string };

export interface VerifyOptions {
  /** Expected run id; by default every line must carry the first line's run id. */
  runId?: string;
}

const CHUNK = 1024 * 1024;
/** No line the writer makes comes near this (its whole file is capped far below): refuse, never buffer on. */
export const MAX_LINE_BYTES = 256 * 1024 * 1024;

/** One line of a file: its text, or why it has none (no newline at the end of the file, too long). */
export type FileLine = { text: string } | { torn: string } | { tooLong: true };

/** The lines of a file, read CHUNK bytes at a time. I/O errors (a missing file) throw. */
export function* fileLines(path: string): Generator<FileLine> {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const chunk = Buffer.allocUnsafe(CHUNK);
    let held: Buffer[] = [];
    let heldBytes = 0;
    for (;;) {
      const n = readSync(fd, chunk, 0, CHUNK, null);
      if (n === 0) break;
      const view = chunk.subarray(0, n);
      let start = 0;
      for (let nl = view.indexOf(0x0a); nl !== -1; nl = view.indexOf(0x0a, start)) {
        const piece = view.subarray(start, nl);
        const text = heldBytes ? Buffer.concat([...held, piece]).toString('utf8') : piece.toString('utf8');
        held = [];
        heldBytes = 0;
        start = nl + 1;
        yield { text };
      }
      if (start < n) {
        // A copy: the chunk buffer is reused by the next read.
        held.push(Buffer.from(view.subarray(start)));
        heldBytes += n - start;
        if (heldBytes > MAX_LINE_BYTES) {
          yield { tooLong: true };
          return;
        }
      }
    }
    if (heldBytes) yield { torn: Buffer.concat(held).toString('utf8') };
  } finally {
    closeSync(fd);
  }
}

/** Recomputes the chain of one audit file. I/O errors (missing file) throw; bad content does not. */
export function verifyAudit(path: string, opts: VerifyOptions = {}): VerifyResult {
  let runId = opts.runId;
  let prev = GENESIS_PREV;
  let count = 0;
  for (const l of fileLines(path)) {
    const lineNo = count + 1;
    if ('tooLong' in l) return { ok: false, line: lineNo, reason: `line longer than ${MAX_LINE_BYTES} bytes` };
    if ('torn' in l) return { ok: false, line: lineNo, reason: 'truncated final line (no newline)' };
    const parsed = parseLine(l.text);
    if ('reason' in parsed) return { ok: false, line: lineNo, reason: parsed.reason };
    const e = parsed.event;
    if (e.seq !== lineNo) return { ok: false, line: lineNo, reason: `seq gap: expected ${lineNo}, found ${e.seq}` };
    runId ??= e.run;
    if (e.run !== runId) return { ok: false, line: lineNo, reason: `run id mismatch: expected ${runId}, found ${e.run}` };
    if (e.prev !== prev) return { ok: false, line: lineNo, reason: 'prev mismatch: does not chain to the line before' };
    const bad = checkEventIntegrity(e, l.text);
    if (bad !== undefined) return { ok: false, line: lineNo, reason: bad };
    prev = e.hash;
    count = lineNo;
  }
  return { ok: true, count, lastHash: prev };
}

/**
 * Events of every complete line, one at a time, for display. A torn final line is skipped
 * (resume or verify deal with it); a line that is not an event throws, naming it. Does not
 * check hashes.
 */
export function* auditEvents(path: string): Generator<AuditEvent> {
  let lineNo = 0;
  for (const l of fileLines(path)) {
    lineNo++;
    if ('torn' in l) return;
    if ('tooLong' in l) throw new AuditError(`${path}:${lineNo}: line longer than ${MAX_LINE_BYTES} bytes`);
    const parsed = parseLine(l.text);
    if ('reason' in parsed) throw new AuditError(`${path}:${lineNo}: ${parsed.reason}`);
    yield parsed.event;
  }
}

/** Every event of a file at once: for small logs only (tests, one run's summary); see auditEvents. */
export function readAudit(path: string): AuditEvent[] {
  return [...auditEvents(path)];
}
