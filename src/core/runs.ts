// Reviewing a finished run: list, show, diff, apply, discard. Apply and discard are the only
// ways a pod's work reaches (or leaves) the user's workspace.
import fs from 'node:fs';
import path from 'node:path';
import type { RunRecord } from '../store/runs.js';
import {
  advanceManifest,
  applyChangeSet,
  applyNotes,
  ChangeSetError,
  diffChunks,
  diffStat,
  escapeText,
  formatBytes,
  ignoredLine,
  ignoreMatcher,
  loadChangeSet,
  loadIgnoreSources,
  loadManifest,
  nameLines,
  pathPredicate,
  pickedChanges,
  quotePath,
  removeTree,
  rootsText,
  ruleCapLine,
  saveManifest,
  statLines,
} from '../workspace/index.js';
import { broughtAlongLine, ignoredNoteOf, selectionOf, type Selection } from './review-select.js';
import { podsDirsOf, podsWriting } from '../pod/podstate.js';
import { findPathRefs, pathRefApplyLine, pathRefLines, podRootOf, type PathRefs } from '../workspace/pathrefs.js';
import type { Context } from './context.js';
import { IGNORE_FILE, IGNORED_MANIFEST } from './record-changes.js';
import { UserError } from './errors.js';
import { removeRunFiles } from './reap.js';
import { changeRecords, checkDecisionLog, type DecisionOpts, recordDecision, stateDigest } from './decisions.js';
import { findOverwritten, keepOverwritten, type OverwrittenEntry } from './overwritten.js';
import { detailLines, humanDuration, runDetails } from './run-info.js';

export { auditShow, auditVerify, auditVerifyReport } from './audit-view.js';

/** A run by its id, `last`, or any unique part of its id (at least 4 characters). */
export function findRun(ctx: Context, idOrPart: string | undefined): RunRecord {
  if (!idOrPart) throw new UserError('no run id given (see clawpod runs list)');
  let run: RunRecord | undefined | null;
  try {
    run = ctx.store().getRun(idOrPart);
  } catch (e) {
    throw new UserError((e as Error).message);
  }
  if (run) return run;
  if (idOrPart === 'last') throw new UserError('no runs yet, so no "last" run (try: clawpod exec -- echo hello)');
  const q = JSON.stringify(idOrPart);
  if (idOrPart.length < 4) throw new UserError(`no run ${q}: give at least 4 characters of a run id, or its whole id (see clawpod runs list)`);
  throw new UserError(`no run ${q}: no run id is or contains it (see clawpod runs list)`);
}

function runDirOf(run: RunRecord): string {
  return run.runDir ?? '';
}

/**
 * Deletes a run: its store row and its directory (change set, audit log, output, copies kept by
 * apply --force). A running run is refused: its clawpod still writes there. The directory is
 * renamed aside before the row goes, and the tree removed after (reap.ts, removeRunFiles): one
 * that cannot be removed whole is never offered for review again, and a crash leaves nothing the
 * next reaper does not finish.
 */
export function removeRun(ctx: Context, id: string): void {
  const run = ctx.store().getRun(id);
  if (!run || run.id !== id) throw new UserError(`no run "${id}" (see clawpod runs list)`);
  if (run.status === 'running') throw new UserError(`run ${id} is still running; stop it first (Ctrl-C in its terminal), then remove it`);
  removeRunFiles(ctx, run);
}
function auditPathOf(run: RunRecord): string {
  return run.auditPath ?? path.join(runDirOf(run), 'audit.jsonl');
}

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
  runDiffTo(ctx, id, opts, (s) => {
    out += s;
    return true;
  });
  return out;
}

/** The same, piece by piece: a diff can be larger than a string may be. `write` returns false
 *  to stop (the reader went away). */
export function runDiffTo(ctx: Context, id: string | undefined, opts: DiffOptions, write: (s: string) => boolean, note?: (line: string) => void): void {
  for (const chunk of runDiffChunks(ctx, id, opts, note)) if (!write(chunk)) return;
}

/** The review text in pieces; the reader stops it by not asking for more (a pager that quit). */
export function* runDiffChunks(ctx: Context, id: string | undefined, opts: DiffOptions, note?: (line: string) => void): Generator<string> {
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
    yield* format === 'stat' ? statLines(changes) : nameLines(changes);
    return;
  }
  const refs = pathRefLines(pathRefsOf(run, { ...c, changes }));
  if (refs.length > 0) yield `${refs.join('\n')}\n`;
  const shown = new Set(changes.map((x) => x.path));
  const notes = { ...c.loaded, flags: c.loaded.flags.filter((f) => shown.has(f.path)), ignoredNote };
  yield* diffChunks(changes, c.cs, c.workspace, notes, { full: opts.full });
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
  try {
    return fs.readFileSync(path.join(runDirOf(run), 'root.id'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

export type ApplyOpts = DiffOptions & Selection & DecisionOpts;

/** "DEV:INO" of a directory reached without following a final symlink, or null. */
function identityOf(p: string): string | null {
  try {
    const st = fs.lstatSync(p, { bigint: true });
    return st.isDirectory() ? `${st.dev}:${st.ino}` : null;
  } catch {
    return null;
  }
}

interface Evidence {
  root: string;
  before: ReturnType<typeof stateDigest>;
  kept: { dir: string; entries: OverwrittenEntry[] } | null;
}

/** "(last is run X) " when the id given was `last`: the output names the run it picked. */
function pickedLast(id: string | undefined, run: RunRecord): string {
  return id === 'last' ? `(last is run ${run.id}) ` : '';
}

/** A run whose clawpod still writes its record and change set is not decided about yet. */
function refuseRunning(run: RunRecord, what: string): void {
  if (run.status === 'running') throw new UserError(`run ${run.id} is still running; wait for it or stop it (Ctrl-C in its terminal), then ${what} it`);
}

/** A pending run whose change set is gone: its record is damaged, never "changed nothing". */
function missingChangeSet(run: RunRecord): string | null {
  if (run.diffState !== 'pending' || !run.workspace) return null;
  if (fs.existsSync(path.join(runDirOf(run), 'changes'))) return null;
  return `run ${run.id} is pending but its change set (${path.join(runDirOf(run), 'changes')}) is missing: the run's record is damaged; drop it with clawpod runs discard ${run.id} (or runs rm --force ${run.id})`;
}

export function runApply(ctx: Context, id: string | undefined, force: boolean, opts: ApplyOpts = {}): string {
  const run = findRun(ctx, id);
  if (run.diffState === 'applied') throw new UserError(`run ${run.id} was already applied`);
  if (run.diffState === 'discarded') throw new UserError(`run ${run.id} was discarded; its changes are gone`);
  refuseRunning(run, 'apply');
  const missing = missingChangeSet(run);
  if (missing) throw new UserError(missing);
  const c = changesOf(run, opts);
  if (!c) return `${pickedLast(id, run)}run ${run.id} changed nothing; nothing to apply`;
  if (!fs.existsSync(c.workspace)) throw new UserError(`workspace ${c.workspace} no longer exists; cannot apply run ${run.id}`);
  const select = selectionOf(run.id, c.loaded, opts);
  refuseWhileHeld(ctx, run.id, c.workspace);
  // A decision that could not be recorded refuses the apply before anything is written.
  checkDecisionLog(ctx, opts);
  // Taken once every check has passed, right before the first write: the evidence of what the
  // workspace was, and with --force a copy of what is overwritten.
  const taken: { ev?: Evidence } = {};
  const beforeWrite = (root: string, loaded: typeof c.loaded, picked: typeof c.changes) => {
    const found = force ? findOverwritten(root, loaded, picked, c.manifest) : [];
    taken.ev = {
      root,
      before: stateDigest(
        root,
        picked.map((x) => x.path),
      ),
      kept: found.length ? keepOverwritten(root, runDirOf(run), found) : null,
    };
  };
  const record = (outcome: 'applied' | 'failed', r: ReturnType<typeof applyChangeSet> | null, error?: string) => {
    const ev = taken.ev;
    if (!ev) return;
    recordDecision(
      ctx,
      'decision.apply',
      {
        run: run.id,
        outcome,
        ...(error ? { error } : {}),
        force,
        workspace: { path: ev.root, id: identityOf(ev.root), startedAs: rootIdentity(run) ?? null },
        selection: { only: opts.only ?? [], exclude: opts.exclude ?? [], includeIgnored: opts.includeIgnored === true, includeGit: opts.includeGit === true },
        stateBefore: ev.before,
        appliedCount: r?.applied ?? null,
        remaining: r?.remaining ?? null,
        applied: r ? changeRecords(r.changes) : null,
        overwritten: ev.kept?.entries ?? [],
        keptIn: ev.kept ? path.relative(runDirOf(run), ev.kept.dir) : null,
      },
      { reset: opts.reset },
    );
  };
  let r: ReturnType<typeof applyChangeSet>;
  try {
    r = applyChangeSet(c.cs, c.workspace, c.manifest, {
      force,
      runId: run.id,
      includeGit: opts.includeGit,
      expectRoot: rootIdentity(run),
      lockDir: lockDir(ctx),
      ignore: c.ignore,
      includeIgnored: opts.includeIgnored,
      select,
      beforeWrite,
    });
  } catch (e) {
    // Once writing may have begun, a failure is a decision's outcome too: on the record.
    try {
      record('failed', null, (e as Error).message);
    } catch (re) {
      throw new UserError(`${(e as Error).message}; and the failure could not be recorded: ${(re as Error).message}`);
    }
    // Refusals and stops of apply are one line naming the path and the fix.
    if (APPLY_ERRORS.includes((e as Error).name)) throw new UserError((e as Error).message);
    throw e;
  }
  // Written: the store and the change set follow what reached the workspace even when the
  // decision log refuses the record at the last moment (named in one line).
  let unrecorded: string | undefined;
  try {
    record('applied', r);
  } catch (e) {
    unrecorded = (e as Error).message;
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
  const kept = taken.ev?.kept ?? null;
  const lines = [...applyLines(run.id, c.workspace, r, opts), ...(along ? [along] : []), ...(refs ? [refs] : []), ...overwrittenLines(kept)];
  lines[0] = `${pickedLast(id, run)}${lines[0]}`;
  if (unrecorded !== undefined) {
    throw new UserError(`${lines[0]}, but the decision was not recorded: ${unrecorded}`);
  }
  return lines.join('\n');
}

/** --force: every path it overwrote that the workspace had changed since the run started, and where the copies are. */
function overwrittenLines(kept: { dir: string; entries: OverwrittenEntry[] } | null): string[] {
  if (!kept) return [];
  return [
    `clawpod: --force overwrote ${kept.entries.length} path(s) changed since the run started; the old copies are kept in ${kept.dir}:`,
    ...kept.entries.map(
      (e) =>
        `  ${quotePath(e.path)} (${e.was}${e.kept ? '' : `, a ${e.type === 'l' ? `symlink to ${quotePath(e.target ?? '')}` : e.type === 'd' ? 'directory' : 'special file'}: described in index.json`})`,
    ),
  ];
}

/** What apply did and what it left, and the flagged paths it wrote (the review may have been skimmed). */
function applyLines(id: string, workspace: string, r: ReturnType<typeof applyChangeSet>, opts: ApplyOpts): string[] {
  const lines = [r.applied > 0 ? `applied run ${id}: ${r.applied} change(s) written to ${workspace}` : `run ${id}: nothing to apply`];
  if (r.ignoredApplied > 0) {
    lines.push(`clawpod: ${r.ignoredApplied} ignored changes applied (unreviewed: runs diff shows them only with --include-ignored)`);
  }
  const written = new Set(r.changes.map((x) => x.path));
  const left = ignoredNoteOf(
    r.loaded,
    r.loaded.ignored.filter((x) => !written.has(x.path)),
    '',
  );
  if (left) {
    lines.push(
      `clawpod: ${left.count} ignored changes (${rootsText(left.roots)}; ${formatBytes(left.bytes)}) not applied: ` +
        `they stay with the run (runs apply ${id} --include-ignored applies them, runs discard ${id} drops them)`,
    );
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
  try {
    ctx.backend('bwrap').reap();
  } catch {
    /* backend absent: no pods either */
  }
  const [pod] = podsWriting(podsDirsOf(ctx.clawpodHome), fs.realpathSync(workspace));
  if (pod) {
    throw new UserError(
      `cannot apply run ${runId}: live pod ${pod.id} (clawpod pid ${pod.ownerPid}) holds ${workspace} writable; ` +
        'wait for it to end or stop it, then apply again',
    );
  }
}

export function runDiscard(ctx: Context, id: string | undefined, opts: DecisionOpts = {}): string {
  const run = findRun(ctx, id);
  if (run.diffState === 'applied') throw new UserError(`run ${run.id} was already applied; discard it with your version control`);
  refuseRunning(run, 'discard');
  if (run.diffState === 'pending') {
    // What is thrown away is on the record first: the change set is gone afterwards.
    let discarded: ReturnType<typeof changeRecords> | null = null;
    let error: string | undefined;
    try {
      const c = changesOf(run, { includeGit: true, includeIgnored: true });
      discarded = c ? changeRecords(c.changes) : [];
    } catch (e) {
      error = `the change set could not be read: ${(e as Error).message}`;
    }
    recordDecision(
      ctx,
      'decision.discard',
      {
        run: run.id,
        workspace: { path: run.workspace, id: identityOf(run.workspace) },
        discardedCount: discarded?.length ?? run.filesChanged,
        discarded,
        ...(error ? { error } : {}),
      },
      opts,
    );
  }
  // Iterative: a pod can leave a tree deep enough to overflow fs.rmSync's recursion.
  // The ignored changes' manifest and the rules go with them (ignored.json keeps the count).
  const dir = runDirOf(run);
  if (dir !== '') {
    removeTree(path.join(dir, 'changes'));
    for (const f of [IGNORED_MANIFEST, IGNORE_FILE]) fs.rmSync(path.join(dir, f), { force: true });
  }
  ctx.store().updateRun(run.id, { diffState: run.diffState === 'none' ? 'none' : 'discarded' });
  return `${pickedLast(id, run)}discarded run ${run.id}`;
}

/** A run as `runs list --json` gives it: the store's record and its duration. */
export function listRecord(r: RunRecord): RunRecord & { durationMs: number | null } {
  const ms = r.endedAt ? Date.parse(r.endedAt) - Date.parse(r.startedAt) : Number.NaN;
  return { ...r, durationMs: Number.isFinite(ms) ? Math.max(0, ms) : null };
}

export function runsListing(ctx: Context, limit = 50): { runs: ReturnType<typeof listRecord>[]; more: number } {
  const rows = ctx.store().listRuns({ limit });
  const more = rows.length < limit ? 0 : ctx.store().countRuns() - rows.length;
  return { runs: rows.map(listRecord), more: Math.max(0, more) };
}

export function runsList(ctx: Context, limit = 50): string {
  const { runs, more } = runsListing(ctx, limit);
  if (runs.length === 0) return 'no runs yet (try: clawpod exec -- echo hello)';
  // RUN and STATUS lead, as they always have: scripts read the status after the id.
  const lines = [pad(['RUN', 'STATUS', 'EXIT', 'KIND', 'TIME', 'FILES', 'DIFF', 'STARTED', 'COMMAND'])];
  for (const r of runs) {
    const time = r.status === 'running' ? 'running' : humanDuration(r.durationMs);
    lines.push(
      pad([
        r.id,
        r.status,
        r.exitCode ?? '-',
        r.kind,
        time,
        r.filesChanged ?? 0,
        r.diffState ?? '-',
        r.startedAt.replace('T', ' ').slice(0, 19),
        shortCommand(r.command),
      ]),
    );
  }
  if (more > 0) lines.push(`... ${more} more (clawpod runs list --limit ${limit + more} shows them all)`);
  return lines.join('\n');
}

function pad(cols: unknown[]): string {
  const widths = [24, 11, 4, 4, 7, 5, 9, 19];
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

/** `runs show --json`: the record, its details, and its pending changes counted. */
export function runShowJson(ctx: Context, id: string | undefined): Record<string, unknown> {
  const run = findRun(ctx, id);
  const c = changesOf(run);
  const st = c ? diffStat(c.changes) : null;
  const ign = c ? ignoredNoteOf(c.loaded, c.loaded.ignored, '') : undefined;
  return {
    ...runDetails(ctx, run),
    changes: st ? { files: st.files, insertions: st.insertions, deletions: st.deletions, ignored: ign?.count ?? 0 } : null,
  };
}

export function runShow(ctx: Context, id: string | undefined): string {
  const run = findRun(ctx, id);
  const d = runDetails(ctx, run);
  const lines = [
    `run:        ${run.id} (${run.kind})`,
    `status:     ${run.status}${run.limitHit ? ` (limit hit: ${run.limitHit})` : ''}`,
    `exit code:  ${run.exitCode ?? '-'}`,
    `${run.kind === 'run' ? 'task:       ' : 'command:    '}${escapeText(shortCommand(run.command))}`,
    `workspace:  ${run.workspace || '(none)'} [${run.workspaceMode}]`,
    `policy:     ${run.policySource}`,
    `backend:    ${run.backend}`,
    `started:    ${run.startedAt}`,
    `ended:      ${run.endedAt ?? '-'}${d.durationMs !== null ? ` (${humanDuration(d.durationMs)})` : ''}`,
    `audit:      ${auditPathOf(run)}`,
  ];
  const c = changesOf(run);
  if (c) {
    const st = diffStat(c.changes);
    const ign = ignoredNoteOf(c.loaded, c.loaded.ignored, '');
    const ignored = ign ? `; ${ign.count} ignored (${rootsText(ign.roots)}; ${formatBytes(ign.bytes)}: runs diff --include-ignored)` : '';
    lines.push(`changes:    ${st.files} file(s), +${st.insertions} -${st.deletions}${ignored}, waiting: clawpod runs diff ${run.id} | apply | discard`);
  } else lines.push(`changes:    ${run.diffState === 'applied' ? 'applied' : run.diffState === 'discarded' ? 'discarded' : 'none'}`);
  lines.push(...detailLines(d));
  return lines.join('\n');
}

/** Why `runs rm` (or prune) would not remove a run, or null. */
function keepReason(run: RunRecord, force: boolean): string | null {
  if (run.status === 'running') return `run ${run.id} is still running; stop it first, then remove it`;
  if (run.diffState === 'pending' && !force) {
    return `run ${run.id} has ${run.filesChanged} change(s) waiting for review; apply or discard them first (or runs rm --force ${run.id})`;
  }
  return null;
}

function recordRemoval(ctx: Context, runs: RunRecord[], how: 'rm' | 'prune', opts: DecisionOpts): void {
  recordDecision(
    ctx,
    'runs.remove',
    { how, runs: runs.map((r) => ({ id: r.id, kind: r.kind, status: r.status, diffState: r.diffState, workspace: r.workspace })) },
    opts,
  );
}

/** `runs rm ID...`: every id is resolved and checked before any run is removed. */
export function removeRuns(ctx: Context, ids: string[], force: boolean, opts: DecisionOpts = {}): string {
  const runs = [...new Map(ids.map((i) => findRun(ctx, i)).map((r) => [r.id, r])).values()];
  const lastId = ids.includes('last') ? findRun(ctx, 'last').id : undefined;
  for (const r of runs) {
    const why = keepReason(r, force);
    if (why) throw new UserError(`${why}; nothing was removed`);
  }
  recordRemoval(ctx, runs, 'rm', opts);
  for (const r of runs) removeRun(ctx, r.id);
  return runs.map((r) => `removed run ${r.id}${r.id === lastId ? ' (last)' : ''}`).join('\n');
}

/** `runs prune`: finished runs (older than olderThanMs), those with changes waiting kept unless force. */
export function pruneRuns(ctx: Context, opts: { olderThanMs?: number; force?: boolean; dryRun?: boolean; now?: Date } & DecisionOpts): string {
  const before = opts.olderThanMs === undefined ? undefined : new Date((opts.now ?? new Date()).getTime() - opts.olderThanMs).toISOString();
  const all = ctx.store().listRuns({ limit: Number.MAX_SAFE_INTEGER, startedBefore: before });
  const pick = all.filter((r) => keepReason(r, opts.force === true) === null);
  const pending = all.filter((r) => r.status !== 'running' && r.diffState === 'pending' && !opts.force).length;
  const lines = opts.dryRun ? pick.map((r) => `would remove run ${r.id}`) : [];
  if (!opts.dryRun && pick.length) {
    recordRemoval(ctx, pick, 'prune', opts);
    for (const r of pick) removeRun(ctx, r.id);
  }
  lines.push(
    `${opts.dryRun ? 'would remove' : 'removed'} ${pick.length} run(s)${before ? ` started before ${before.slice(0, 19).replace('T', ' ')} UTC` : ''}`,
  );
  if (pending) lines.push(`clawpod: kept ${pending} run(s) with changes waiting for review (apply or discard them, or runs prune --force)`);
  return lines.join('\n');
}
