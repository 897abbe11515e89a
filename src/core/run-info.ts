// One run as `runs show` and `runs show --json` (and the server's GET /v1/runs/ID) describe it:
// the store's record plus what is derived from its audit log, its change set, its kept output
// and the decision log. The JSON names are a contract: add fields, never rename them.
import fs from 'node:fs';
import path from 'node:path';
import { auditEvents } from '../audit/chain.js';
import type { RunRecord } from '../store/runs.js';
import { escapeText } from '../workspace/index.js';
import type { Context } from './context.js';
import { decisionsOf } from './decisions.js';
import { LOG_FILES } from './run-logs.js';

export interface RunDetails extends RunRecord {
  /** endedAt - startedAt (null while running). */
  durationMs: number | null;
  /** Why the run ended as it did, in words (the interrupted cases, an error, a stop reason). */
  endReason: string | null;
  /** Agent runs only. */
  agent: {
    model: string | null;
    turns: number | null;
    usage: { inputTokens: number; outputTokens: number } | null;
    toolCalls: number | null;
    stopReason: string | null;
    /** The agent's final message (answer.txt), null when none was kept. */
    answer: string | null;
  } | null;
  outbound: { allowed: number; denied: number };
  degraded: string[];
  /** Why the pod's changes were refused and not kept for review, when they were. */
  changesRefused: string[];
  /** The decision log's events about this run (apply, discard), oldest first. */
  decisions: {
    seq: number;
    ts: string;
    type: string;
    by: unknown;
    force?: boolean;
    applied?: number;
    discarded?: number;
    overwritten?: number;
    outcome?: string;
  }[];
  /** Which kept output files exist (runs logs shows them). */
  logs: { stdout: boolean; stderr: boolean; transcript: boolean; answer: boolean };
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** Reads a run's log once, line by line (a log may be large: only counts and a few fields are kept). */
export function runDetails(ctx: Context, run: RunRecord): RunDetails {
  const audit = run.auditPath ?? path.join(run.runDir ?? '', 'audit.jsonl');
  const degraded: string[] = [];
  const refused: string[] = [];
  let allowed = 0;
  let denied = 0;
  let start: Record<string, unknown> = {};
  let end: Record<string, unknown> = {};
  try {
    for (const e of auditEvents(audit)) {
      if (e.type === 'run.start') start = e.data;
      if (e.type === 'run.end') end = e.data;
      if (e.type === 'guard.degraded') degraded.push(String(e.data.guard));
      // The change set the prelude or clawpod refused to keep (too large, too deep, a bad name...).
      if (e.type === 'limit.hit' && (e.data.cap === 'changes' || e.data.cap === 'host-disk'))
        refused.push(String(e.data.detail ?? e.data.reason ?? 'over its cap'));
      // A terminated TLS tunnel's own event sums the requests inside it, which have events of their own;
      // a coalesced refusal stands for `count` of them.
      if ((e.type !== 'net.allow' && e.type !== 'net.deny') || e.data.terminated === true) continue;
      const n = Number.isSafeInteger(e.data.count) && (e.data.count as number) > 0 ? (e.data.count as number) : 1;
      if (e.type === 'net.allow') allowed += n;
      else denied += n;
    }
  } catch {
    /* shown by audit verify */
  }
  const dir = run.runDir ?? '';
  const has = (f: string) => dir !== '' && fs.existsSync(path.join(dir, f));
  const usage = end.usage as { inputTokens?: unknown; outputTokens?: unknown } | undefined;
  const agent =
    run.kind !== 'run'
      ? null
      : {
          model: str(start.model),
          turns: num(end.turns),
          usage: usage && num(usage.inputTokens) !== null ? { inputTokens: num(usage.inputTokens) ?? 0, outputTokens: num(usage.outputTokens) ?? 0 } : null,
          toolCalls: num(end.toolCalls),
          stopReason: str(end.reason),
          answer: has(LOG_FILES.answer) ? readCapped(path.join(dir, LOG_FILES.answer), 64 * 1024) : null,
        };
  const ended = run.endedAt ? Date.parse(run.endedAt) - Date.parse(run.startedAt) : null;
  return {
    ...run,
    durationMs: ended !== null && Number.isFinite(ended) ? Math.max(0, ended) : null,
    endReason: endReasonOf(run, end),
    agent,
    outbound: { allowed, denied },
    degraded,
    changesRefused: refused,
    decisions: decisionsOf(ctx, run.id).map((e) => ({
      seq: e.seq,
      ts: e.ts,
      type: e.type,
      by: e.data.by,
      ...(e.type === 'decision.apply'
        ? {
            force: e.data.force === true,
            applied: num(e.data.appliedCount) ?? 0,
            overwritten: Array.isArray(e.data.overwritten) ? e.data.overwritten.length : 0,
            outcome: str(e.data.outcome) ?? 'applied',
          }
        : {}),
      ...(e.type === 'decision.discard' ? { discarded: num(e.data.discardedCount) ?? 0 } : {}),
    })),
    logs: { stdout: has(LOG_FILES.stdout), stderr: has(LOG_FILES.stderr), transcript: has(LOG_FILES.transcript), answer: has(LOG_FILES.answer) },
  };
}

function endReasonOf(run: RunRecord, end: Record<string, unknown>): string | null {
  if (run.status === 'interrupted') {
    if (run.exitCode === 130) return 'interrupted by the user (Ctrl-C), exit 130';
    return `clawpod exited before the run finished${typeof end.reason === 'string' && end.reason !== 'clawpod exited before the run finished' ? ` (${end.reason})` : ''}`;
  }
  if (typeof end.error === 'string') return end.error;
  return null;
}

function readCapped(file: string, max: number): string {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const buf = Buffer.alloc(max);
    const n = fs.readSync(fd, buf, 0, max, 0);
    const more = fs.fstatSync(fd).size > n;
    return buf.subarray(0, n).toString('utf8') + (more ? '\n[... cut: see clawpod runs logs --answer]' : '');
  } finally {
    fs.closeSync(fd);
  }
}

/** "850ms", "12.3s", "4m05s", "2h03m". */
export function humanDuration(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** The lines of `runs show` that come from the details (after the record's own). */
export function detailLines(d: RunDetails): string[] {
  const lines: string[] = [];
  if (d.endReason) lines.push(`ended by:   ${escapeText(d.endReason)}`);
  if (d.agent) {
    const a = d.agent;
    lines.push(`model:      ${a.model ? escapeText(a.model) : '-'}`);
    const tokens = a.usage ? `${a.usage.inputTokens + a.usage.outputTokens} tokens (${a.usage.inputTokens} in, ${a.usage.outputTokens} out)` : '- tokens';
    lines.push(
      `agent:      ${a.turns ?? '-'} turn(s), ${tokens}, ${a.toolCalls ?? '-'} tool call(s), stop reason: ${a.stopReason ? escapeText(a.stopReason) : '-'}`,
    );
    if (a.answer !== null) {
      const body = a.answer
        .trimEnd()
        .split('\n')
        .map((l) => escapeText(l));
      lines.push(`answer:     ${body[0] ?? ''}`, ...body.slice(1).map((l) => `            ${l}`));
    } else lines.push('answer:     (none kept)');
  }
  if (d.changesRefused.length) lines.push(`discarded:  the pod's changes, not kept for review: ${escapeText(d.changesRefused.join('; '))}`);
  if (d.degraded.length) lines.push(`degraded:   ${d.degraded.join(', ')}`);
  lines.push(`outbound:   ${d.outbound.allowed} allowed, ${d.outbound.denied} denied`);
  for (const x of d.decisions) lines.push(`decision:   ${decisionLine(x)}`);
  const kept = (Object.keys(d.logs) as (keyof RunDetails['logs'])[]).filter((k) => d.logs[k]);
  lines.push(`logs:       ${kept.length ? `${kept.join(', ')} (clawpod runs logs ${d.id})` : 'none kept'}`);
  return lines;
}

function decisionLine(x: RunDetails['decisions'][number]): string {
  const by = x.by as { user?: string; uid?: number } | undefined;
  const who = `by ${escapeText(String(by?.user ?? '?'))} (uid ${by?.uid ?? '?'}) at ${x.ts.replace('T', ' ').slice(0, 19)}`;
  if (x.type === 'decision.apply') {
    const forced = x.force ? `, --force: ${x.overwritten} overwritten path(s) kept under overwritten/` : '';
    return `#${x.seq} ${x.outcome === 'failed' ? 'apply failed' : `applied ${x.applied} change(s)`}${forced} ${who}`;
  }
  if (x.type === 'decision.discard') return `#${x.seq} discarded ${x.discarded} change(s) ${who}`;
  return `#${x.seq} ${x.type} ${who}`;
}
