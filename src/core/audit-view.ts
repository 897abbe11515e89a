// `audit show` and `audit verify`: a run's chain shown or recomputed, and the decision log's
// chain (core/decisions.ts) checked with it.
import fs from 'node:fs';
import path from 'node:path';
import { AuditError, auditEvents, type AuditEvent, verifyAudit } from '../audit/chain.js';
import type { RunRecord } from '../store/runs.js';
import { escapeText } from '../workspace/index.js';
import type { Context } from './context.js';
import { decisionsPath, type DecisionsVerdict, verifyDecisions } from './decisions.js';
import { UserError } from './errors.js';
import { jsonInert } from './inert-json.js';
import { findRun } from './runs.js';

function auditPathOf(run: RunRecord): string {
  return run.auditPath ?? path.join(run.runDir ?? '', 'audit.jsonl');
}

/** Writes the log one event a line, in batches: a log of any size in bounded memory. Its data
 *  holds pod-chosen text (file names, commands) and JSON.stringify leaves C1 controls, bidi
 *  overrides and tag characters raw, so every line goes through the diff's escaping, terminal
 *  or not (a piped `show` ends up on a terminal too). As
 *  JSON escapes backslashes, an escape shown here always means the character, never its text.
 *  json: the events as they are, one JSON object a line (the server's x-ndjson), with those
 *  characters as JSON \u escapes, so the text is the same and still inert. */
export function auditShow(ctx: Context, id: string | undefined, write: (text: string) => void, json = false): void {
  const run = findRun(ctx, id);
  const file = auditPathOf(run);
  const broken = (why: string) =>
    new UserError(`run ${run.id}'s audit log ${why}; clawpod audit verify ${run.id} reports it, and clawpod runs rm ${run.id} removes the run`);
  const st = fs.lstatSync(file, { throwIfNoEntry: false });
  if (!st) throw broken(`is missing (${file})`);
  if (!st.isFile()) throw broken(`is not a file (${file} is a ${st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : 'special file'})`);
  let batch = '';
  const line = json
    ? (e: AuditEvent) => jsonInert(JSON.stringify(e))
    : (e: AuditEvent) => escapeText(`${String(e.seq).padStart(4)} ${e.ts} ${e.type.padEnd(14)} ${JSON.stringify(e.data)}`);
  // What the file holds, or whether it can be read, is the user's machine's: one line, never a bug.
  const events = auditEvents(file);
  const next = () => {
    try {
      return events.next();
    } catch (e) {
      if (batch) write(batch);
      batch = '';
      if (e instanceof AuditError) throw broken(`cannot be shown past ${e.message}`);
      const code = (e as NodeJS.ErrnoException).code;
      if (typeof code === 'string') throw broken(`cannot be read (${code}: ${file})`);
      throw e;
    }
  };
  for (let n = next(); !n.done; n = next()) {
    batch += `${line(n.value)}\n`;
    if (batch.length >= 64 * 1024) {
      write(batch);
      batch = '';
    }
  }
  if (batch) write(batch);
}

export interface RunVerdict {
  id: string;
  ok: boolean;
  events?: number;
  head?: string;
  error?: string;
  /** Why there is no chain to check (a run that never started). */
  note?: string;
}

/** A server's run that never started (cancelled or failed while queued) has no chain by design. */
export function neverStarted(run: RunRecord): boolean {
  return run.status === 'queued' || ((run.status === 'cancelled' || run.status === 'failed') && !run.auditPath && !run.runDir);
}

function verifyRun(run: RunRecord): RunVerdict {
  if (neverStarted(run)) return { id: run.id, ok: true, events: 0, note: `never started (${run.status})` };
  let r: ReturnType<typeof verifyAudit>;
  try {
    r = verifyAudit(auditPathOf(run), { runId: run.id });
  } catch {
    return { id: run.id, ok: false, error: `audit log missing: ${auditPathOf(run)}` };
  }
  if (!r.ok) return { id: run.id, ok: false, error: `BROKEN at line ${r.line}: ${r.reason} (${auditPathOf(run)})` };
  const head = run.summary?.auditHead;
  if (head && (head !== r.lastHash || run.summary?.auditEvents !== r.count)) {
    return {
      id: run.id,
      ok: false,
      events: r.count,
      error: `BROKEN: the log has ${r.count} events but the run ended with ${String(run.summary?.auditEvents)} (lines removed from the end) (${auditPathOf(run)})`,
    };
  }
  return { id: run.id, ok: true, events: r.count, head: r.lastHash };
}

export interface VerifyReport {
  ok: boolean;
  runs: RunVerdict[];
  decisions: DecisionsVerdict;
}

/** Each run's chain (one, or all) and the decision log's. */
export function auditVerifyReport(ctx: Context, id: string | undefined, all: boolean): VerifyReport {
  const runs = all ? ctx.store().listRuns({ limit: Number.MAX_SAFE_INTEGER }) : [findRun(ctx, id)];
  const verdicts = runs.map(verifyRun);
  const decisions = verifyDecisions(ctx);
  return { ok: decisions.ok && verdicts.every((v) => v.ok), runs: verdicts, decisions };
}

/** Returns [ok, text]. */
export function auditVerify(ctx: Context, id: string | undefined, all: boolean): [boolean, string] {
  const rep = auditVerifyReport(ctx, id, all);
  const out = rep.runs.map((v) =>
    v.note ? `${v.id}: ${v.note}, no chain` : v.ok ? `${v.id}: ok, ${v.events} events, chain head ${v.head?.slice(0, 16)}` : `${v.id}: ${v.error}`,
  );
  if (all && rep.runs.length === 0) out.push('no runs to verify');
  const d = rep.decisions;
  if (!d.ok) out.push(`decisions: ${d.error}`);
  else if (d.events > 0) out.push(`decisions: ok, ${d.events} decisions, chain head ${d.head.slice(0, 16)} (${decisionsPath(ctx)})`);
  return [rep.ok, out.join('\n')];
}
