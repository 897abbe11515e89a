// Applies a reviewed change set to the real workspace. Everything that can refuse does so before
// the first write: path validation (loadChangeSet), unsupported entries, symlinked or
// non-directory parents, and drift since the manifest. Then a plan of steps goes to a native
// helper (native/wsapply.c, run through wshelper.ts) that performs every write, delete and chmod
// relative to descriptors opened without following links, as the workspace owner: a directory
// swapped for a symlink between the checks and the writes (by a pod that holds the workspace
// writable, or any local process) stops the apply there; it never redirects it out of the
// workspace. Files go through temp file + fsync + rename in their own directory, so a crash
// leaves each file either old or new. A failure between steps leaves the change set partly
// applied; the error says so, and the manifest check then refuses a second apply.
import { lstatSync, realpathSync } from 'node:fs';
import { loadChangeSet, PERM_MASK } from './changeset.js';
import type { LoadedChangeSet } from './changeset.js';
import type { IgnoreMatcher } from './ignore.js';
import { pickedChanges } from './select.js';
import { assertSafeTargets, assertWorkspaceUnchanged } from './check.js';
import { ChangeSetError, UnsafePathError } from './errors.js';
import { depthOf, isAtOrUnder } from './paths.js';
import { quotePath } from './quote.js';
import type { Change, EntryInfo, Manifest } from './types.js';
import { runPlan, type PlanStep } from './wshelper.js';

export interface ApplyOptions {
  /** Apply even if the workspace drifted from the manifest. Path-safety checks still apply. */
  force?: boolean;
  /** Named in the "workspace changed" message so the user can copy the review command. */
  runId?: string;
  /** Passed to loadChangeSet: apply changes under .git too. */
  includeGit?: boolean;
  /** "DEV:INO" of the workspace root when the run started: apply writes into that directory only. */
  expectRoot?: string;
  /** clawpod's lock-file dir: apply holds the workspace's lock exclusively while it writes. */
  lockDir?: string;
  /** The run's ignore rules; ignored changes are applied only with includeIgnored. */
  ignore?: IgnoreMatcher;
  includeIgnored?: boolean;
  /** Apply only the changes this picks (plus what they need: see selectChanges). */
  select?: (c: Change) => boolean;
  /** Called once every check has passed, right before the first write: what the caller must
   *  record or keep of the workspace as it is (apply --force keeps what it overwrites). It may
   *  throw to stop the apply with nothing written. */
  beforeWrite?: (root: string, loaded: LoadedChangeSet, changes: Change[]) => void;
}

export interface ApplyResult {
  applied: number;
  /** What was applied, for the caller to record (a partial apply updates the run's manifest). */
  changes: Change[];
  /** Changes of the change set left for later (reviewed ones not picked, ignored ones not included). */
  remaining: number;
  /** Ignored changes among what was applied, and left. */
  ignoredApplied: number;
  loaded: LoadedChangeSet;
}

export function applyChangeSet(csDir: string, workspaceRoot: string, manifest: Manifest, opts: ApplyOptions = {}): ApplyResult {
  // Resolved once: the user's root may itself be reached through a symlink, which is fine;
  // every check below is then relative to the real directory.
  const root = realpathSync(workspaceRoot);
  assertRootIs(root, opts);
  const loaded = loadChangeSet(csDir, root, manifest, { includeGit: opts.includeGit, ignore: opts.ignore, includeIgnored: opts.includeIgnored });
  // Ignored changes left out stay behind whole: a reviewed directory deletion above one waits.
  const changes = pickedChanges(loaded, opts.select ?? (() => true), opts.includeIgnored === true);
  const ignoredPaths = new Set(loaded.ignored.map((c) => c.path));
  const ignoredApplied = changes.filter((c) => ignoredPaths.has(c.path)).length;
  const result = {
    applied: changes.length,
    changes,
    loaded,
    ignoredApplied,
    remaining: loaded.changes.length - changes.length + (opts.includeIgnored === true ? 0 : loaded.ignored.length),
  };
  if (changes.length === 0) return result;
  for (const c of changes) {
    if (c.after?.t === 'o' && c.kind !== 'mode') {
      throw new ChangeSetError(
        `cannot apply ${quotePath(c.path)}: the pod left a special file (fifo, socket or device) there; discard the run, or delete it in a new run`,
      );
    }
  }
  assertSafeTargets(root, changes);
  if (opts.force !== true) assertWorkspaceUnchanged(root, loaded, manifest, opts.runId ?? '<run-id>');

  // Without force the checks saw every parent in place; one gone since is a reason to stop.
  const treeDir = existsDir(loaded.treeDir) ? realpathSync(loaded.treeDir) : null;
  // Checked again right before: what beforeWrite copies (apply --force) comes from the run's
  // directory too, never from one renamed into its place while the checks ran.
  assertRootIs(root, opts);
  opts.beforeWrite?.(root, loaded, changes);
  runPlan(root, treeDir, planOf(loaded, changes), opts.force === true, opts.expectRoot, opts.lockDir);
  return result;
}

/**
 * The steps in the order that keeps each one possible: deletions deepest first (a directory is
 * emptied before it goes), opaque sweeps, then entries in path order (parents before children),
 * and directory modes last and deepest first (a read-only or non-searchable directory mode set
 * early would block the steps below it).
 */
export function planOf(loaded: LoadedChangeSet, changes: Change[] = loaded.changes): PlanStep[] {
  const steps: PlanStep[] = [];
  for (let i = changes.length - 1; i >= 0; i--) {
    if (changes[i].kind === 'deleted') steps.push({ op: 'rm', path: changes[i].path });
  }
  // Opaque: every directory of the tree at or below it is cleared of what the tree lacks, but
  // only when all of its changes are applied now: a sweep would take the others with it.
  const now = new Set(changes.map((c) => c.path));
  const left = [...loaded.changes, ...loaded.ignored].filter((c) => !now.has(c.path)).map((c) => c.path);
  for (const o of loaded.opaque) {
    if (left.some((p) => isAtOrUnder(p, o))) continue;
    const dirs = [...loaded.tree].filter(([p, e]) => e.t === 'd' && isAtOrUnder(p, o)).map(([p]) => p);
    for (const d of dirs.sort((a, b) => depthOf(a) - depthOf(b))) steps.push({ op: 'sweep', path: d });
  }
  for (const c of changes) {
    if (c.kind !== 'deleted') steps.push(...stepsOf(c));
  }
  const dirs = changes.filter((c) => c.kind !== 'deleted' && c.after?.t === 'd');
  dirs.sort((a, b) => depthOf(b.path) - depthOf(a.path));
  for (const c of dirs) steps.push({ op: 'chmod', path: c.path, mode: (c.after as EntryInfo).mode & PERM_MASK, type: 'd' });
  return steps;
}

function stepsOf(c: Change): PlanStep[] {
  const after = c.after as EntryInfo;
  if (c.kind === 'mode') {
    // A directory's mode is set with the others, last; a symlink has none to set.
    if (after.t === 'd' || after.t === 'l') return [];
    return [{ op: 'chmod', path: c.path, mode: after.mode & PERM_MASK, type: after.t }];
  }
  if (after.t === 'f') return [{ op: 'write', path: c.path, mode: after.mode & PERM_MASK }];
  if (after.t === 'l') return [{ op: 'symlink', path: c.path }];
  if (after.t === 'd') return [{ op: 'mkdir', path: c.path }];
  throw new ChangeSetError(`cannot apply ${quotePath(c.path)}: unsupported entry in the change set; the change set is rejected`);
}

/** The root must be the directory the run started from (the helper checks its descriptor again
 *  before it writes); a different one renamed into its place is never read or written. */
function assertRootIs(root: string, opts: ApplyOptions): void {
  if (opts.expectRoot === undefined) return;
  let id: string | null = null;
  try {
    const st = lstatSync(root, { bigint: true });
    if (st.isDirectory()) id = `${st.dev}:${st.ino}`;
  } catch {
    /* named below */
  }
  if (id !== opts.expectRoot) {
    throw new UnsafePathError(
      root,
      `refusing to apply: ${quotePath(root)} is no longer the directory the run started from (it was replaced since); nothing was copied or written (discard the run${opts.runId ? `: clawpod runs discard ${opts.runId}` : ''})`,
    );
  }
}

function existsDir(p: string): boolean {
  try {
    return lstatSync(p).isDirectory();
  } catch {
    return false;
  }
}
