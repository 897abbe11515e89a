// Reads a change set directory (CS/tree, CS/deleted.lst, CS/opaque.lst) against the manifest
// into a sorted list of changes. Diff, stat and apply all work from this one interpretation,
// so what the user reviews is exactly what gets applied.
//
// Git metadata is left out unless asked for: a pod that writes .git/hooks/pre-commit or sets
// core.fsmonitor in .git/config gets code run on the host at the next git command. Any path
// with a `.git` component is dropped (the workspace's repository, a submodule's or worktree's
// gitdir file), and so is any deletion or retyping that would take a kept .git with it.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { countLineChanges, readRegularFile, scanBuffer, scanFile, showMaxBytes, tooLargeToShow } from './content.js';
import type { ContentScan } from './content.js';
import { ChangeSetError } from './errors.js';
import { flagChanges, hooksDirOf, isGitPath, isGitSegment } from './flags.js';
import type { Flag } from './flags.js';
import { classifyChanges } from './ignore.js';
import type { IgnoreMatcher } from './ignore.js';
import { PATH_MAX_BYTES, walkEntries } from './manifest.js';
import { ancestorsOf, readNulList, validateRelPath } from './paths.js';
import { quotePath, shortPath } from './quote.js';
import type { Change, ChangeKind, EntryInfo, Manifest } from './types.js';

/**
 * The permission bits clawpod compares and applies. setuid/setgid/sticky are left out on
 * purpose: a pod must not be able to plant a set-id file on the host through a reviewed diff.
 */
export const PERM_MASK = 0o777;

/** Room apply needs beside a path for its temp name (".clawpod-<12 hex>.tmp"). */
const APPLY_MARGIN = 64;
/** Lines of text pairs diffed per change set; past it, pairs are shown as whole replacements. */
const DIFF_LINE_BUDGET = 1_000_000;

export interface ChangeSetOptions {
  /** Review and apply changes under .git too (default false: they are left out and counted). */
  includeGit?: boolean;
  /** The run's ignore rules: matching changes go to `ignored` (see ignore.ts). */
  ignore?: IgnoreMatcher;
  /** Put the ignored changes in `changes` too (they are still listed in `ignored`). */
  includeIgnored?: boolean;
  /** Diff and count files up to the --full bounds instead of summarising past the review ones. */
  full?: boolean;
}

export interface LoadedChangeSet {
  changes: Change[];
  /** Everything under CS/tree, keyed by relpath (without .git paths unless included). */
  tree: Map<string, EntryInfo>;
  treeDir: string;
  /** Directories the pod recreated: workspace entries below them that the tree lacks go away. */
  opaque: string[];
  /** Paths whose whole workspace subtree the change set replaces (deleted, opaque, retyped dirs). */
  replacedRoots: string[];
  /** Paths the pod changed that were left out because they are, or hold, git metadata. */
  gitExcluded: string[];
  /** Changes that run code when a tool opens, enters or commits in the folder (see flags.ts). */
  flags: Flag[];
  /** Changes the run's ignore rules keep apart from review (in `changes` only when included). */
  ignored: Change[];
  /** The topmost ignored paths, for the note. */
  ignoredRoots: string[];
}

export function readChangeSet(csDir: string, workspaceRoot: string, manifest: Manifest, opts: ChangeSetOptions = {}): Change[] {
  return loadChangeSet(csDir, workspaceRoot, manifest, opts).changes;
}

/** The error for a change set clawpod cannot represent faithfully: refused whole. */
function unreviewable(rel: string, why: string): ChangeSetError {
  return new ChangeSetError(`the change set holds ${shortPath(rel)}: ${why}; it cannot be reviewed or applied (discard the run)`);
}

export function loadChangeSet(csDir: string, workspaceRoot: string, manifest: Manifest, opts: ChangeSetOptions = {}): LoadedChangeSet {
  const treeDir = join(csDir, 'tree');
  const tree = existsSync(treeDir) ? walkEntries(treeDir, { refuse: unreviewable }) : new Map<string, EntryInfo>();
  const rootBytes = Buffer.byteLength(workspaceRoot) + 1;
  for (const p of tree.keys()) {
    validateRelPath(p, 'tree/');
    if (rootBytes + Buffer.byteLength(p) + APPLY_MARGIN > PATH_MAX_BYTES) {
      throw unreviewable(p, `its path is too long to write in the workspace (${PATH_MAX_BYTES} bytes at most)`);
    }
  }
  const deleted = new Set(readNulList(join(csDir, 'deleted.lst'), 'deleted.lst'));
  let opaque = readNulList(join(csDir, 'opaque.lst'), 'opaque.lst');
  for (const o of opaque) {
    if (tree.get(o)?.t !== 'd') {
      throw new ChangeSetError(`opaque directory ${quotePath(o)} is not a directory in the change set's tree; the change set is rejected`);
    }
  }

  // A path in deleted.lst that is also in the tree was deleted and recreated: the tree wins for
  // the path itself, and (like an opaque dir) nothing the workspace had below it survives.
  const replaced = new Set<string>([...deleted, ...opaque]);
  for (const [p, after] of tree) {
    if (manifest.entries.get(p)?.t === 'd' && after.t !== 'd') replaced.add(p);
  }

  const budget = { lines: DIFF_LINE_BUDGET, full: opts.full === true };
  const changes: Change[] = [];
  for (const [p, after] of tree) {
    const c = compareTreeEntry(p, after, manifest.entries.get(p), treeDir, workspaceRoot, budget);
    if (c !== undefined) changes.push(c);
  }
  if (replaced.size > 0) {
    for (const [p, before] of manifest.entries) {
      if (tree.has(p)) continue;
      if (deleted.has(p) || ancestorsOf(p).some((a) => replaced.has(a))) {
        const del: Change = { path: p, kind: 'deleted', before, binary: false };
        changes.push(finish(del, sideScan(join(workspaceRoot, p), before), undefined, undefined, budget.full));
      }
    }
  }
  let kept = changes;
  const excluded: string[] = [];
  if (opts.includeGit !== true) {
    const held = holdersOfGit(manifest);
    kept = changes.filter((c) => {
      // Deleting or retyping a directory that holds a kept .git would take the .git with it.
      const out = isGitPath(c.path) || ((c.kind === 'deleted' || c.kind === 'type') && c.before?.t === 'd' && held.has(c.path));
      if (out) excluded.push(c.path);
      return !out;
    });
    for (const p of [...tree.keys()]) if (isGitPath(p)) tree.delete(p);
    opaque = opaque.filter((o) => !isGitPath(o) && !held.has(o));
  }
  kept.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
  const gone = new Set(kept.filter((c) => c.kind === 'deleted').map((c) => c.path));
  const exists = (p: string) => tree.has(p) || (manifest.entries.has(p) && !gone.has(p));
  const flags = flagChanges(kept, exists, hooksDirOf(workspaceRoot));
  // Flagged paths are never ignored: ignore rules must not hide what runs code from review.
  const split = opts.ignore ? classifyChanges(kept, opts.ignore, new Set(flags.map((f) => f.path))) : undefined;
  const shown = split === undefined || opts.includeIgnored === true ? kept : split.reviewed;
  return {
    changes: shown,
    tree,
    treeDir,
    opaque,
    replacedRoots: [...replaced].sort(),
    gitExcluded: excluded.sort(),
    flags,
    ignored: split?.ignored ?? [],
    ignoredRoots: split?.roots ?? [],
  };
}

/** Every directory of the manifest that has a .git at or below it. */
function holdersOfGit(manifest: Manifest): Set<string> {
  const held = new Set<string>();
  for (const p of manifest.entries.keys()) {
    if (!isGitPath(p)) continue;
    const segs = p.split('/');
    const at = segs.findIndex(isGitSegment);
    for (const a of ancestorsOf(segs.slice(0, at + 1).join('/'))) held.add(a);
  }
  return held;
}

/** Classifies one tree entry against its manifest entry; undefined when nothing changed. */
function compareTreeEntry(
  p: string,
  after: EntryInfo,
  before: EntryInfo | undefined,
  treeDir: string,
  workspaceRoot: string,
  budget: { lines: number; full: boolean },
): Change | undefined {
  const newScan = sideScan(join(treeDir, p), after);
  if (before === undefined) return finish({ path: p, kind: 'added', after, binary: false }, undefined, newScan, undefined, budget.full);
  const oldScan = sideScan(join(workspaceRoot, p), before);
  let kind: ChangeKind | undefined;
  if (before.t !== after.t) kind = 'type';
  else if (after.t === 'f' || after.t === 'l') {
    const sameBytes = oldScan !== undefined && newScan !== undefined && oldScan.sha256 === newScan.sha256;
    const sameMode = after.t === 'l' || (before.mode & PERM_MASK) === (after.mode & PERM_MASK);
    if (!sameBytes) kind = 'modified';
    else if (!sameMode) kind = 'mode';
  } else if ((before.mode & PERM_MASK) !== (after.mode & PERM_MASK)) {
    // A directory here only as the parent of changed entries is not a change of its own.
    kind = 'mode';
  }
  if (kind === undefined) return undefined;
  const c: Change = { path: p, kind, before, after, binary: false };
  const texts = kind === 'modified' ? lineTexts(c, join(workspaceRoot, p), join(treeDir, p), oldScan, newScan, budget.full) : undefined;
  return finish(c, oldScan, newScan, texts && { ...texts, budget }, budget.full);
}

/**
 * The content one side holds: file bytes, or a symlink's target text. A manifest file that has
 * since vanished from the workspace reads as empty; apply refuses that case.
 */
function sideScan(abs: string, info: EntryInfo): ContentScan | undefined {
  if (info.t === 'l') return scanBuffer(Buffer.from(info.target ?? ''));
  if (info.t === 'f') return scanFile(abs) ?? scanBuffer(Buffer.alloc(0));
  return undefined;
}

/** Both texts of a modified text pair small enough to diff; undefined otherwise. */
function lineTexts(c: Change, oldAbs: string, newAbs: string, oldScan?: ContentScan, newScan?: ContentScan, full = false) {
  if (!oldScan || !newScan || oldScan.binary || newScan.binary || tooLargeToShow(oldScan, full) || tooLargeToShow(newScan, full)) return undefined;
  const read = (abs: string, info: EntryInfo | undefined) =>
    info?.t === 'l' ? Buffer.from(info.target ?? '') : (readRegularFile(abs, showMaxBytes(full)) ?? Buffer.alloc(0));
  return { oldText: read(oldAbs, c.before).toString('utf8'), newText: read(newAbs, c.after).toString('utf8') };
}

/** Fills binary, size, hash, line counts and how the diff shows the content. */
function finish(
  c: Change,
  oldScan: ContentScan | undefined,
  newScan: ContentScan | undefined,
  texts: { oldText: string; newText: string; budget: { lines: number; full: boolean } } | undefined,
  full = false,
): Change {
  const oldSide = c.kind === 'added' ? undefined : oldScan;
  const newSide = c.kind === 'deleted' ? undefined : newScan;
  c.oldScan = oldSide;
  c.newScan = newSide;
  c.binary = (oldSide?.binary ?? false) || (newSide?.binary ?? false);
  if (newSide !== undefined) {
    c.bytes = newSide.size;
    c.sha256 = newSide.sha256;
  }
  if (c.binary || c.kind === 'mode' || (oldSide === undefined && newSide === undefined)) return c;
  const large = (oldSide !== undefined && tooLargeToShow(oldSide, full)) || (newSide !== undefined && tooLargeToShow(newSide, full));
  c.show = large ? 'summary' : 'lines';
  if (c.kind !== 'modified') {
    // Added, deleted or retyped: a whole addition and/or a whole deletion, counted without a diff.
    c.insertions = newSide?.lines ?? 0;
    c.deletions = oldSide?.lines ?? 0;
    return c;
  }
  if (texts === undefined) return c; // too large: counts unknown, the diff says so
  const pairLines = (oldSide?.lines ?? 0) + (newSide?.lines ?? 0);
  const counts = texts.budget.lines >= pairLines ? countLineChanges(texts.oldText, texts.newText) : undefined;
  texts.budget.lines -= pairLines;
  if (counts === undefined) {
    c.show = 'whole';
    c.insertions = newSide?.lines ?? 0;
    c.deletions = oldSide?.lines ?? 0;
  } else {
    c.insertions = counts.insertions;
    c.deletions = counts.deletions;
  }
  return c;
}
