// Reviewing a finished run: list, show, diff, apply, discard. Apply and discard are the only
// ways a pod's work reaches (or leaves) the user's workspace.
import fs from 'node:fs';
import path from 'node:path';
import { auditEvents, verifyAudit } from '../audit/chain.js';
import type { RunRecord } from '../store/runs.js';
import {
  advanceManifest, applyChangeSet, applyNotes, ChangeSetError, diffChunks, diffStat, escapeText, formatBytes, ignoredLine,
  ignoreMatcher, loadChangeSet, loadIgnoreSources, loadManifest, nameLines, pathPredicate, pickedChanges, removeTree, rootsText, ruleCapLine, saveManifest, statLines,
} from '../workspace/index.js';
import { broughtAlongLine, ignoredNoteOf, selectionOf, type Selection } from './review-select.js';
import { podsDirsOf, podsWriting } from '../pod/podstate.js';
import { findPathRefs, pathRefApplyLine, pathRefLines, podRootOf, type PathRefs } from '../workspace/pathrefs.js';
import type { Context } from './context.js';
import { IGNORE_FILE, IGNORED_MANIFEST } from './record-changes.js';
import { UserError } from './errors.js';

export function findRun(ctx: Context, idOrPrefix: string | undefined): RunRecord {
  if (!idOrPrefix) throw new UserError('no run id given (see clawpod runs list)');
  let run: RunRecord | undefined | null;
  try { run = ctx.store().getRun(idOrPrefix); } catch (e) { throw new UserError((e as Error).message); }
  if (!run) throw new UserError(`no run "${idOrPrefix}" (see clawpod runs list)`);
  return run;
}

function runDirOf(run: RunRecord): string { return run.runDir ?? ''; }

/**
 * Deletes a run: its store row and its directory (change set, audit log, output, copies kept by
 * apply --force). A running run is refused: its clawpod still writes there. The row goes first,
 * so a directory that cannot be removed whole is never offered for review again.
 */
export function removeRun(ctx: Context, id: string): void {
  const run = ctx.store().getRun(id);
  if (!run || run.id !== id) throw new UserError(`no run "${id}" (see clawpod runs list)`);
  if (run.status === 'running') throw new UserError(`run ${id} is still running; stop it first (Ctrl-C in its terminal), then remove it`);
  ctx.store().deleteRun(id);
  const dir = run.runDir ?? ctx.runDir(id);
  // Only a directory under clawpod's own runs dir: a record's path is data, never trusted to rm.
  if (path.dirname(path.resolve(dir)) === path.join(ctx.clawpodHome, 'runs')) removeTree(dir);
}
function auditPathOf(run: RunRecord): string { return run.auditPath ?? path.join(runDirOf(run), 'audit.jsonl'); }

/** A run's pending change set, read as review and apply see it; null when there is none. A
 *  change set that cannot be read faithfully is one line naming the fix, never a crash. */
function changesOf(run: RunRecord, opts: { includeGit?: boolean; includeIgnored?: boolean; full?: boolean } = {}) {
  const cs = path.join(runDirOf(run), 'changes');
  if (run.diffState !== 'pending' || !run.workspace || !fs.existsSync(cs)) return null;
  try {
    const manifest = loadManifest(path.join(runDirOf(run), 'base.json'));
    // The rules as they were when the run started (ignore.json), never the pod's .gitignore.
    const ignore = ignoreMatcher(loadIgnoreSources(path.join(runDirOf(run), IGNORE_FILE)));
    const loaded = loadChangeSet(cs, run.workspace, manifest, { ...opts, ignore });
    return { cs, manifest, workspace: run.workspace, changes: loaded.changes, loaded, ignore };
  } catch (e) {
    if (e instanceof ChangeSetError || /^(cannot read )?manifest /.test((e as Error).message)) {
      throw new UserError(`run ${run.id}: ${(e as Error).message}`);
    }
    throw e;
  }
}

export interface DiffOptions {
  includeGit?: boolean;
  includeIgnored?: boolean;
  /** Show files up to the --full bounds instead of summarising them. */
  full?: boolean;
  /** Path prefixes or globs: only the changes at or below one of them. */
  paths?: string[];
  format?: 'patch' | 'stat' | 'name-only';
}

/** The review text of a run ('' when it changed nothing). */
export function runDiff(ctx: Context, id: string | undefined, opts: DiffOptions = {}): string {
  let out = '';
  runDiffTo(ctx, id, opts, (s) => { out += s; return true; });
  return out;
}

/** The same, piece by piece: a diff can be larger than a string may be. `write` returns false
 *  to stop (the reader went away). */
export function runDiffTo(
  ctx: Context, id: string | undefined, opts: DiffOptions, write: (s: string) => boolean, note?: (line: string) => void,
): void {
  const run = findRun(ctx, id);
  const c = changesOf(run, opts);
  if (!c) return;
  const keep = opts.paths?.length ? pathPredicate(opts.paths) : undefined;
  // What `runs apply --only PATHS` would write, ancestors it needs included.
  const changes = keep ? pickedChanges(c.loaded, (x) => keep(x.path), opts.includeIgnored === true) : c.changes;
  const capped = ruleCapLine(c.ignore);
  if (capped) note?.(capped);
  const ignored = opts.includeIgnored ? [] : keep ? c.loaded.ignored.filter((x) => keep(x.path)) : c.loaded.ignored;
  const ignoredNote = ignoredNoteOf(c.loaded, ignored, `runs diff ${run.id} --include-ignored`);
  if (keep && changes.length === 0 && ignored.length === 0) {
    note?.(`clawpod: no change of run ${run.id} is at or below ${opts.paths?.join(', ')} (see runs diff ${run.id} --name-only)`);
    return;
  }
  const format = opts.format ?? 'patch';
  if (format !== 'patch') {
    // Machine-readable lists stay clean: the note goes to stderr.
    if (ignoredNote && note) note(ignoredLine(ignoredNote));
    for (const chunk of format === 'stat' ? statLines(changes) : nameLines(changes)) if (!write(chunk)) return;
    return;
  }
  const refs = pathRefLines(pathRefsOf(run, { ...c, changes }));
  if (refs.length > 0 && !write(`${refs.join('\n')}\n`)) return;
  const shown = new Set(changes.map((x) => x.path));
  const notes = { ...c.loaded, flags: c.loaded.flags.filter((f) => shown.has(f.path)), ignoredNote };
  for (const chunk of diffChunks(changes, c.cs, c.workspace, notes, { full: opts.full })) if (!write(chunk)) return;
}

/** Changes pointing into the pod's path of the workspace, when that is not its host path. */
function pathRefsOf(run: RunRecord, c: NonNullable<ReturnType<typeof changesOf>>): PathRefs {
  const podRoot = podRootOf(runDirOf(run));
  if (podRoot === c.workspace) return { podRoot, refs: [], partial: false };
  return findPathRefs(c.changes, c.loaded.treeDir, podRoot);
}

/** The state dir's lock files, as the pods of this user see them (root: /run/clawpod). */
function lockDir(ctx: Context): string {
  const dir = process.getuid?.() === 0 ? '/run/clawpod/locks' : path.join(ctx.clawpodHome, 'rt', 'locks');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** The workspace's identity recorded when the run started (runs before it was kept have none). */
function rootIdentity(run: RunRecord): string | undefined {
  try { return fs.readFileSync(path.join(runDirOf(run), 'root.id'), 'utf8').trim() || undefined; } catch { return undefined; }
}

export type ApplyOpts = DiffOptions & Selection;

export function runApply(ctx: Context, id: string | undefined, force: boolean, opts: ApplyOpts = {}): string {
  const run = findRun(ctx, id);
  if (run.diffState === 'applied') throw new UserError(`run ${run.id} was already applied`);
  if (run.diffState === 'discarded') throw new UserError(`run ${run.id} was discarded; its changes are gone`);
  const c = changesOf(run, opts);
  if (!c) return `run ${run.id} changed nothing; nothing to apply`;
  if (!fs.existsSync(c.workspace)) throw new UserError(`workspace ${c.workspace} no longer exists; cannot apply run ${run.id}`);
  const select = selectionOf(run.id, c.loaded, opts);
  refuseWhileHeld(ctx, run.id, c.workspace);
  let r: ReturnType<typeof applyChangeSet>;
  try {
    r = applyChangeSet(c.cs, c.workspace, c.manifest, {
      force, runId: run.id, includeGit: opts.includeGit, expectRoot: rootIdentity(run), lockDir: lockDir(ctx),
      ignore: c.ignore, includeIgnored: opts.includeIgnored, select,
    });
  } catch (e) {
    // Refusals and stops of apply are one line naming the path and the fix.
    if (APPLY_ERRORS.includes((e as Error).name)) throw new UserError((e as Error).message);
    throw e;
  }
  // What was written that points into the pod's /workspace; read before the tree goes.
  const refs = pathRefApplyLine(pathRefsOf(run, { ...c, changes: r.changes }));
  if (r.remaining === 0) {
    ctx.store().updateRun(run.id, { diffState: 'applied' });
    removeTree(c.cs);
  } else if (r.applied > 0) {
    // Part applied: the rest stays pending, checked against the workspace as this apply left it.
    saveManifest(path.join(runDirOf(run), 'base.json'), advanceManifest(c.manifest, fs.realpathSync(c.workspace), r.changes));
  }
  const along = select ? broughtAlongLine(r.changes, select) : undefined;
  return [...applyLines(run.id, c.workspace, r, opts), ...(along ? [along] : []), ...(refs ? [refs] : [])].join('\n');
}

/** What apply did and what it left, and the flagged paths it wrote (the review may have been skimmed). */
function applyLines(id: string, workspace: string, r: ReturnType<typeof applyChangeSet>, opts: ApplyOpts): string[] {
  const lines = [r.applied > 0 ? `applied run ${id}: ${r.applied} change(s) written to ${workspace}` : `run ${id}: nothing to apply`];
  if (r.ignoredApplied > 0) {
    lines.push(`clawpod: ${r.ignoredApplied} ignored changes applied (unreviewed: runs diff shows them only with --include-ignored)`);
  }
  const written = new Set(r.changes.map((x) => x.path));
  const left = ignoredNoteOf(r.loaded, r.loaded.ignored.filter((x) => !written.has(x.path)), '');
  if (left) {
    lines.push(`clawpod: ${left.count} ignored changes (${rootsText(left.roots)}; ${formatBytes(left.bytes)}) not applied: ` +
      `they stay with the run (runs apply ${id} --include-ignored applies them, runs discard ${id} drops them)`);
  }
  const rest = r.remaining - (left?.count ?? 0);
  if (rest > 0) lines.push(`clawpod: ${rest} change(s) not picked stay pending: runs diff ${id}, then runs apply ${id} or runs discard ${id}`);
  lines.push(...applyNotes({ ...r.loaded, flags: r.loaded.flags.filter((f) => written.has(f.path)) }));
  return lines;
}

const APPLY_ERRORS = ['WorkspaceChangedError', 'UnsafePathError', 'ChangeSetError', 'ApplyHelperError'];

/** A live pod that can write the workspace (or around it) could swap its paths under apply. */
function refuseWhileHeld(ctx: Context, runId: string, workspace: string): void {
  // Pods of dead clawpods are killed first: their records then no longer count.
  try { ctx.backend('bwrap').reap(); } catch { /* backend absent: no pods either */ }
  const [pod] = podsWriting(podsDirsOf(ctx.clawpodHome), fs.realpathSync(workspace));
  if (pod) {
    throw new UserError(`cannot apply run ${runId}: live pod ${pod.id} (clawpod pid ${pod.ownerPid}) holds ${workspace} writable; ` +
      'wait for it to end or stop it, then apply again');
  }
}

export function runDiscard(ctx: Context, id: string | undefined): string {
  const run = findRun(ctx, id);
  if (run.diffState === 'applied') throw new UserError(`run ${run.id} was already applied; discard it with your version control`);
  // Iterative: a pod can leave a tree deep enough to overflow fs.rmSync's recursion.
  // The ignored changes' manifest and the rules go with them (ignored.json keeps the count).
  const dir = runDirOf(run);
  if (dir !== '') {
    removeTree(path.join(dir, 'changes'));
    for (const f of [IGNORED_MANIFEST, IGNORE_FILE]) fs.rmSync(path.join(dir, f), { force: true });
  }
  ctx.store().updateRun(run.id, { diffState: run.diffState === 'none' ? 'none' : 'discarded' });
  return `discarded run ${run.id}`;
}

export function runsList(ctx: Context, limit = 50): string {
  const rows = ctx.store().listRuns({ limit });
  if (rows.length === 0) return 'no runs yet (try: clawpod exec -- echo hello)';
  const lines = [pad(['RUN', 'STATUS', 'EXIT', 'FILES', 'DIFF', 'STARTED', 'COMMAND'])];
  for (const r of rows) {
    lines.push(pad([r.id, r.status, r.exitCode ?? '-', r.filesChanged ?? 0, r.diffState ?? '-', r.startedAt.replace('T', ' ').slice(0, 19), shortCommand(r.command)]));
  }
  return lines.join('\n');
}

function pad(cols: unknown[]): string {
  const widths = [24, 11, 5, 6, 10, 20];
  return cols.map((c, i) => (i < widths.length ? String(c).padEnd(widths[i]) : String(c))).join(' ');
}

function shortCommand(cmd: string[]): string {
  const s = cmd.map((a) => (/^[\w./:=@-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** "+X -Y" for a run's pending changes, '' when there are none. */
export function changeStat(ctx: Context, id: string): string {
  const c = changesOf(findRun(ctx, id));
  if (!c) return '';
  const st = diffStat(c.changes);
  return `+${st.insertions} -${st.deletions}`;
}

export function runShow(ctx: Context, id: string | undefined): string {
  const run = findRun(ctx, id);
  const lines = [
    `run:        ${run.id} (${run.kind})`,
    `status:     ${run.status}${run.limitHit ? ` (limit hit: ${run.limitHit})` : ''}`,
    `exit code:  ${run.exitCode ?? '-'}`,
    `command:    ${shortCommand(run.command)}`,
    `workspace:  ${run.workspace || '(none)'} [${run.workspaceMode}]`,
    `policy:     ${run.policySource}`,
    `backend:    ${run.backend}`,
    `started:    ${run.startedAt}`,
    `ended:      ${run.endedAt ?? '-'}`,
    `audit:      ${auditPathOf(run)}`,
  ];
  const c = changesOf(run);
  if (c) {
    const st = diffStat(c.changes);
    const ign = ignoredNoteOf(c.loaded, c.loaded.ignored, '');
    const ignored = ign ? `; ${ign.count} ignored (${rootsText(ign.roots)}; ${formatBytes(ign.bytes)}: runs diff --include-ignored)` : '';
    lines.push(`changes:    ${st.files} file(s), +${st.insertions} -${st.deletions}${ignored}, waiting: clawpod runs diff ${run.id} | apply | discard`);
  } else lines.push(`changes:    ${run.diffState === 'applied' ? 'applied' : run.diffState === 'discarded' ? 'discarded' : 'none'}`);
  // One pass over the log, line by line: a run's log may be large (up to its cap, or a
  // hostile file of any size) and nothing of it is kept but the counts.
  const degraded: string[] = [];
  const refused: string[] = [];
  let allowed = 0;
  let denied = 0;
  try {
    for (const e of auditEvents(auditPathOf(run))) {
      if (e.type === 'guard.degraded') degraded.push(String(e.data.guard));
      // The change set the prelude or clawpod refused to keep (too large, too deep, a bad name...).
      if (e.type === 'limit.hit' && (e.data.cap === 'changes' || e.data.cap === 'host-disk')) refused.push(String(e.data.detail ?? e.data.reason ?? 'over its cap'));
      // A terminated TLS tunnel's own event sums the requests inside it, which have events of their own;
      // a coalesced refusal stands for `count` of them.
      if ((e.type !== 'net.allow' && e.type !== 'net.deny') || e.data.terminated === true) continue;
      const n = Number.isSafeInteger(e.data.count) && (e.data.count as number) > 0 ? (e.data.count as number) : 1;
      if (e.type === 'net.allow') allowed += n;
      else denied += n;
    }
  } catch { /* shown by audit verify */ }
  if (refused.length) lines.push(`discarded:  the pod's changes, not kept for review: ${escapeText(refused.join('; '))}`);
  if (degraded.length) lines.push(`degraded:   ${degraded.join(', ')}`);
  lines.push(`outbound:   ${allowed} allowed, ${denied} denied`);
  return lines.join('\n');
}

/** Writes the log one event a line, in batches: a log of any size in bounded memory. Its data
 *  holds pod-chosen text (file names, commands) and JSON.stringify leaves C1 controls, bidi
 *  overrides and tag characters raw, so every line goes through the diff's escaping, terminal
 *  or not (a piped `show` ends up on a terminal too). As
 *  JSON escapes backslashes, an escape shown here always means the character, never its text. */
export function auditShow(ctx: Context, id: string | undefined, write: (text: string) => void): void {
  const run = findRun(ctx, id);
  let batch = '';
  for (const e of auditEvents(auditPathOf(run))) {
    batch += `${escapeText(`${String(e.seq).padStart(4)} ${e.ts} ${e.type.padEnd(14)} ${JSON.stringify(e.data)}`)}\n`;
    if (batch.length >= 64 * 1024) {
      write(batch);
      batch = '';
    }
  }
  if (batch) write(batch);
}

/** Returns [ok, text]. */
export function auditVerify(ctx: Context, id: string | undefined, all: boolean): [boolean, string] {
  const runs = all ? ctx.store().listRuns({ limit: 1_000_000 }) : [findRun(ctx, id)];
  const out: string[] = [];
  let ok = true;
  for (const run of runs) {
    let r: ReturnType<typeof verifyAudit>;
    try { r = verifyAudit(auditPathOf(run), { runId: run.id }); } catch (e) {
      ok = false;
      out.push(`${run.id}: audit log missing: ${auditPathOf(run)}`);
      continue;
    }
    const head = run.summary?.auditHead;
    if (r.ok && head && (head !== r.lastHash || run.summary?.auditEvents !== r.count)) {
      ok = false;
      out.push(`${run.id}: BROKEN: the log has ${r.count} events but the run ended with ${String(run.summary?.auditEvents)} (lines removed from the end) (${auditPathOf(run)})`);
    } else if (r.ok) out.push(`${run.id}: ok, ${r.count} events, chain head ${r.lastHash.slice(0, 16)}`);
    else { ok = false; out.push(`${run.id}: BROKEN at line ${r.line}: ${r.reason} (${auditPathOf(run)})`); }
  }
  if (all && runs.length === 0) out.push('no runs to verify');
  return [ok, out.join('\n')];
}
