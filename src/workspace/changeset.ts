// Reads a change set directory (CS/tree, CS/deleted.lst, CS/opaque.lst) against the manifest
// into a sorted list of changes. Diff, stat and apply all work from this one interpretation,
// so what the user reviews is exactly what gets applied.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { countLineChanges, isBinary, readRegularFile, sha256Hex } from './content.js';
import { ChangeSetError } from './errors.js';
import { walkEntries } from './manifest.js';
import { ancestorsOf, readNulList, validateRelPath } from './paths.js';
import { quotePath } from './quote.js';
import type { Change, ChangeKind, EntryInfo, Manifest } from './types.js';

/**
 * The permission bits clawpod compares and applies. setuid/setgid/sticky are left out on
 * purpose: a pod must not be able to plant a set-id file on the host through a reviewed diff.
 */
export const PERM_MASK = 0o777;

export interface LoadedChangeSet {
  changes: Change[];
  /** Everything under CS/tree, keyed by relpath. */
  tree: Map<string, EntryInfo>;
  treeDir: string;
  /** Directories the pod recreated: workspace entries below them that the tree lacks go away. */
  opaque: string[];
  /** Paths whose whole workspace subtree the change set replaces (deleted, opaque, retyped dirs). */
  replacedRoots: string[];
}

export function readChangeSet(csDir: string, workspaceRoot: string, manifest: Manifest): Change[] {
  return loadChangeSet(csDir, workspaceRoot, manifest).changes;
}

export function loadChangeSet(csDir: string, workspaceRoot: string, manifest: Manifest): LoadedChangeSet {
  const treeDir = join(csDir, 'tree');
  const tree = existsSync(treeDir) ? walkEntries(treeDir) : new Map<string, EntryInfo>();
  for (const p of tree.keys()) validateRelPath(p, 'tree/');
  const deleted = new Set(readNulList(join(csDir, 'deleted.lst'), 'deleted.lst'));
  const opaque = readNulList(join(csDir, 'opaque.lst'), 'opaque.lst');
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

  const changes: Change[] = [];
  for (const [p, after] of tree) {
    const c = compareTreeEntry(p, after, manifest.entries.get(p), treeDir, workspaceRoot);
    if (c !== undefined) changes.push(c);
  }
  if (replaced.size > 0) {
    for (const [p, before] of manifest.entries) {
      if (tree.has(p)) continue;
      if (deleted.has(p) || ancestorsOf(p).some((a) => replaced.has(a))) {
        changes.push(finish({ path: p, kind: 'deleted', before, binary: false }, sideContent(join(workspaceRoot, p), before), undefined));
      }
    }
  }
  changes.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
  return { changes, tree, treeDir, opaque, replacedRoots: [...replaced].sort() };
}

/** Classifies one tree entry against its manifest entry; undefined when nothing changed. */
function compareTreeEntry(
  p: string,
  after: EntryInfo,
  before: EntryInfo | undefined,
  treeDir: string,
  workspaceRoot: string,
): Change | undefined {
  const newContent = sideContent(join(treeDir, p), after);
  if (before === undefined) return finish({ path: p, kind: 'added', after, binary: false }, undefined, newContent);
  const oldContent = sideContent(join(workspaceRoot, p), before);
  let kind: ChangeKind | undefined;
  if (before.t !== after.t) kind = 'type';
  else if (after.t === 'f' || after.t === 'l') {
    const sameBytes = oldContent !== undefined && newContent !== undefined && oldContent.equals(newContent);
    const sameMode = after.t === 'l' || (before.mode & PERM_MASK) === (after.mode & PERM_MASK);
    if (!sameBytes) kind = 'modified';
    else if (!sameMode) kind = 'mode';
  } else if ((before.mode & PERM_MASK) !== (after.mode & PERM_MASK)) {
    // A directory here only as the parent of changed entries is not a change of its own.
    kind = 'mode';
  }
  if (kind === undefined) return undefined;
  return finish({ path: p, kind, before, after, binary: false }, oldContent, newContent);
}

/**
 * The content a diff shows for one side: file bytes, or a symlink's target text. A manifest
 * file that has since vanished from the workspace reads as empty; apply refuses that case.
 */
function sideContent(abs: string, info: EntryInfo): Buffer | undefined {
  if (info.t === 'l') return Buffer.from(info.target ?? '');
  if (info.t === 'f') return readRegularFile(abs) ?? Buffer.alloc(0);
  return undefined;
}

/** Fills binary, size, hash and line counts from the two sides' content. */
function finish(c: Change, oldContent: Buffer | undefined, newContent: Buffer | undefined): Change {
  const oldSide = c.kind === 'added' ? undefined : oldContent;
  const newSide = c.kind === 'deleted' ? undefined : newContent;
  c.binary = (oldSide !== undefined && isBinary(oldSide)) || (newSide !== undefined && isBinary(newSide));
  if (newSide !== undefined) {
    c.bytes = newSide.length;
    c.sha256 = sha256Hex(newSide);
  }
  if (c.binary || c.kind === 'mode' || (oldSide === undefined && newSide === undefined)) return c;
  const oldText = oldSide?.toString('utf8') ?? '';
  const newText = newSide?.toString('utf8') ?? '';
  // A retyped path renders as a whole deletion plus a whole addition, so count it that way.
  const counts =
    c.kind === 'type'
      ? { insertions: countLineChanges('', newText).insertions, deletions: countLineChanges(oldText, '').deletions }
      : countLineChanges(oldText, newText);
  c.insertions = counts.insertions;
  c.deletions = counts.deletions;
  return c;
}
