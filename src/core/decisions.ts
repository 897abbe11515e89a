// Review decisions as evidence: every apply (with --force or not), discard and removal of a run
// is one event in a hash-chained log (the audit chain's own writer and verifier), saying what
// was decided, by whom, against which workspace and in which state.
//
// One chain for the whole state dir ($CLAWPOD_HOME/decisions.jsonl), not one per run: what
// reached a workspace must stay on record after its run is removed (runs rm, runs prune), and
// the removals are recorded too. Appends from concurrent clawpods are serialised by the run
// store's write lock (SQLite BEGIN IMMEDIATE: waited for, and let go when a process dies), which
// also keeps the chain's head in the store, so lines cut from the end are noticed like lines
// changed in the middle.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuditWriter, auditEvents, type AuditEvent, verifyAudit, type VerifyResult } from '../audit/chain.js';
import { statEntry, type Change, type EntryInfo } from '../workspace/index.js';
import type { Context } from './context.js';
import { UserError } from './errors.js';

export const DECISIONS_FILE = 'decisions.jsonl';
/** The chain's `run` field: one chain, so one constant; the run a decision is about is data.run. */
export const DECISIONS_CHAIN = 'decisions';
const HEAD_KEY = 'decisions.head';

export type DecisionType = 'decision.apply' | 'decision.discard' | 'runs.remove';

export function decisionsPath(ctx: Context): string {
  return path.join(ctx.clawpodHome, DECISIONS_FILE);
}

/** Who decided: the real uid and its name, and the sudo caller when there is one (as sudo said). */
export function actor(): { uid: number; user: string; sudoUser?: string } {
  const uid = process.getuid?.() ?? -1;
  let user = `uid ${uid}`;
  try {
    user = os.userInfo().username;
  } catch {
    /* no passwd entry: the uid says it */
  }
  const sudo = process.env.SUDO_USER;
  return { uid, user, ...(sudo && sudo !== user ? { sudoUser: sudo } : {}) };
}

export interface DecisionOpts {
  /** Start a new chain after the old log was moved aside: its first event, decisions.reset,
   *  names the head the store recorded, so the break stays on record. */
  reset?: boolean;
}

/**
 * The log's writer, opened under the write lock and held against the head the store recorded:
 * a log that was truncated, deleted or replaced is refused (one line naming the recovery),
 * never continued, so the head never moves past a break silently.
 */
function openChecked(ctx: Context, opts: DecisionOpts): { w: AuditWriter; reset?: { events: number; head: string } } {
  const file = decisionsPath(ctx);
  const recorded = headOf(ctx);
  const wopts = { syncEveryMs: 0, maxBytes: Number.MAX_SAFE_INTEGER };
  const exists = fs.lstatSync(file, { throwIfNoEntry: false }) !== undefined;
  const recovery = `run clawpod audit verify; restore it from a backup, or move it aside (mv ${file} ${file}.broken) and repeat the command with --reset-decisions`;
  const refuse = (what: string): never => {
    throw new UserError(`the decision log ${file} ${what}: ${recovery}`);
  };
  if (!exists) {
    if (recorded && recorded.events > 0 && !opts.reset)
      refuse(`is gone, but ${recorded.events} decision(s) were recorded (last hash ${recorded.head.slice(0, 16)}...)`);
    const w = AuditWriter.create(file, DECISIONS_CHAIN, wopts);
    return { w, ...(recorded && recorded.events > 0 ? { reset: recorded } : {}) };
  }
  if (opts.reset) {
    throw new UserError(
      `--reset-decisions starts a new decision log only when ${file} is gone (moved aside); it is there, so nothing was reset (run clawpod audit verify)`,
    );
  }
  let w: AuditWriter;
  try {
    w = AuditWriter.resume(file, DECISIONS_CHAIN, wopts);
  } catch (e) {
    return refuse(`cannot be continued (${(e as Error).message})`);
  }
  if (recorded && (recorded.events !== w.seq || recorded.head !== w.lastHash)) {
    w.close();
    refuse(`does not match its recorded head (${recorded.events} decision(s), last hash ${recorded.head.slice(0, 16)}...; the file ends at ${w.seq})`);
  }
  return { w };
}

/** Refuses, with nothing written anywhere, when the next decision could not be recorded. */
export function checkDecisionLog(ctx: Context, opts: DecisionOpts = {}): void {
  const file = decisionsPath(ctx);
  ctx.store().withWriteLock(() => {
    // No log yet (or --reset-decisions after it was moved aside): recordDecision starts one;
    // only a missing log with a recorded head is refused, and that check needs no file.
    if (!fs.existsSync(file)) {
      const recorded = headOf(ctx);
      if (opts.reset || !recorded || recorded.events === 0) return;
    }
    openChecked(ctx, opts).w.close();
  });
}

/** Appends one decision (data.run names the run) and keeps the chain's head in the store. A
 *  decision is rare and must survive a crash: synced at once, never capped. */
export function recordDecision(ctx: Context, type: DecisionType, data: Record<string, unknown>, opts: DecisionOpts = {}): AuditEvent {
  const store = ctx.store();
  try {
    return store.withWriteLock(() => {
      const { w, reset } = openChecked(ctx, opts);
      try {
        if (reset) w.append('decisions.reset', { previous: reset, reason: 'the log was moved aside (--reset-decisions)', by: actor() });
        const e = w.append(type, { ...data, by: actor() }) as AuditEvent;
        store.setMeta(HEAD_KEY, JSON.stringify({ events: w.seq, head: w.lastHash }));
        return e;
      } finally {
        w.close();
      }
    });
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`cannot record the decision in ${decisionsPath(ctx)}: ${(e as Error).message} (run clawpod audit verify)`);
  }
}

/** The decisions about one run, oldest first (an unreadable log: none, audit verify says why). */
export function decisionsOf(ctx: Context, runId: string): AuditEvent[] {
  const file = decisionsPath(ctx);
  const out: AuditEvent[] = [];
  if (!fs.existsSync(file)) return out;
  try {
    for (const e of auditEvents(file)) if (e.data.run === runId) out.push(e);
  } catch {
    /* shown by audit verify */
  }
  return out;
}

export type DecisionsVerdict = { ok: true; events: number; head: string } | { ok: false; events?: number; error: string };

/** The decision chain recomputed, and held against the head the store recorded. */
export function verifyDecisions(ctx: Context): DecisionsVerdict {
  const file = decisionsPath(ctx);
  const recorded = headOf(ctx);
  if (!fs.existsSync(file)) {
    return recorded ? { ok: false, error: `${file} is gone, but ${recorded.events} decision(s) were recorded` } : { ok: true, events: 0, head: '' };
  }
  let r: VerifyResult;
  try {
    r = verifyAudit(file, { runId: DECISIONS_CHAIN });
  } catch (e) {
    return { ok: false, error: `cannot read ${file}: ${(e as Error).message}` };
  }
  if (!r.ok) return { ok: false, error: `BROKEN at line ${r.line}: ${r.reason} (${file})` };
  if (recorded && (recorded.events !== r.count || recorded.head !== r.lastHash)) {
    return {
      ok: false,
      events: r.count,
      error: `BROKEN: the log has ${r.count} decisions but ${recorded.events} were recorded (lines removed from the end) (${file})`,
    };
  }
  return { ok: true, events: r.count, head: r.lastHash };
}

function headOf(ctx: Context): { events: number; head: string } | null {
  try {
    const v = ctx.store().getMeta(HEAD_KEY);
    return v ? (JSON.parse(v) as { events: number; head: string }) : null;
  } catch {
    return null;
  }
}

/** What a change set brings, as the record names it: path, kind, and the new content's hash. */
export function changeRecords(changes: Change[]): { path: string; kind: string; sha256?: string; type?: string }[] {
  return changes.map((c) => ({ path: c.path, kind: c.kind, ...(c.after ? { type: c.after.t } : {}), ...(c.sha256 ? { sha256: c.sha256 } : {}) }));
}

/**
 * A digest of the workspace's state at the given paths, as apply is about to change them: per
 * path its type, mode, size and content hash (a symlink's target, never followed), absent ones
 * as absent. Two applies against the same state have the same digest.
 */
export function stateDigest(root: string, paths: string[]): { digest: string; paths: number } {
  const h = crypto.createHash('sha256');
  for (const p of [...paths].sort()) {
    const e = entryBeneath(root, p);
    const content = e?.t === 'f' ? fileSha256(path.join(root, p)) : e?.t === 'l' ? sha256(e.target ?? '') : '';
    h.update(`${JSON.stringify(p)} ${e ? `${e.t} ${e.mode.toString(8)} ${e.size} ${content}` : 'absent'}\n`);
  }
  return { digest: h.digest('hex'), paths: paths.length };
}

/**
 * The workspace's entry at rel, never resolved through anything but real directories: under a
 * symlink or a file (the pod may have turned one into a directory) there is nothing of the
 * workspace's, so nothing is read there.
 */
export function entryBeneath(root: string, rel: string): EntryInfo | undefined {
  const parts = rel.split('/');
  let at = root;
  for (let i = 0; i < parts.length - 1; i++) {
    at = path.join(at, parts[i]);
    const st = fs.lstatSync(at, { throwIfNoEntry: false });
    if (!st?.isDirectory()) return undefined;
  }
  try {
    return statEntry(path.join(root, rel));
  } catch {
    return undefined;
  }
}

function sha256(s: string): string {
  return crypto.createHash('sha256').update(s).digest('hex');
}

/** sha256 of a regular file, opened without following a symlink; '' when it is not one now. */
export function fileSha256(abs: string): string {
  let fd: number;
  try {
    fd = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return '';
  }
  try {
    if (!fs.fstatSync(fd).isFile()) return '';
    const h = crypto.createHash('sha256');
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n = fs.readSync(fd, buf); n > 0; n = fs.readSync(fd, buf)) h.update(buf.subarray(0, n));
    return h.digest('hex');
  } finally {
    fs.closeSync(fd);
  }
}
