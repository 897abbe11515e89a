// The checks apply runs before it touches anything: no write may pass through a symlink or a
// non-directory, and nothing the change set touches may have moved since the run started.
// They are by path and so only a first line: the helper that then does the writes re-checks
// every step on descriptors (wshelper.ts), which is what a concurrent swap cannot get around.
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadedChangeSet } from './changeset.js';
import { UnsafePathError, WorkspaceChangedError } from './errors.js';
import { statEntry, walkEntries } from './manifest.js';
import { ancestorsOf } from './paths.js';
import { quotePath } from './quote.js';
import type { Change, EntryInfo, Manifest } from './types.js';

export function notADirectory(rel: string, isLink: boolean): UnsafePathError {
  const what = isLink ? 'a symlink' : 'not a directory';
  return new UnsafePathError(
    rel,
    `refusing to apply: ${quotePath(rel)} in the workspace is ${what}, and clawpod never writes through it ` + `(make it a real directory, or discard the run)`,
  );
}

/**
 * The same rule for the whole change set up front, so a bad path refuses the apply before the
 * first write. An ancestor the change set itself turns into a directory (say a symlink the pod
 * replaced by a real dir) is recreated by apply before anything is written below it.
 */
export function assertSafeTargets(root: string, changes: Change[]): void {
  const retypedToDir = new Set(changes.filter((c) => c.kind === 'type' && c.after?.t === 'd').map((c) => c.path));
  const okDirs = new Set<string>();
  for (const c of changes) {
    for (const a of ancestorsOf(c.path)) {
      if (c.kind !== 'deleted' && retypedToDir.has(a)) break;
      if (okDirs.has(a)) continue;
      const st = lstatSync(join(root, a), { throwIfNoEntry: false });
      if (st === undefined) break;
      if (!st.isDirectory()) throw notADirectory(a, st.isSymbolicLink());
      okDirs.add(a);
    }
  }
}

/**
 * Refuses (WorkspaceChangedError naming the first path, in path order) when any path the change
 * set touches, or any directory above one, differs from the manifest; and when a new entry
 * appeared inside a directory the change set deletes or replaces wholesale.
 */
export function assertWorkspaceUnchanged(root: string, loaded: LoadedChangeSet, manifest: Manifest, runId: string): void {
  const seen = new Map<string, boolean>(); // path -> was it compared in full
  const check = (p: string, full: boolean): EntryInfo | undefined => {
    const before = manifest.entries.get(p);
    if (seen.get(p) === true || (seen.has(p) && !full)) return before;
    seen.set(p, full);
    const why = describeDrift(before, statEntry(join(root, p)), full);
    if (why !== undefined) throw new WorkspaceChangedError(p, why, runId);
    return before;
  };
  for (const c of loaded.changes) {
    let underRealDirs = true;
    for (const a of ancestorsOf(c.path)) {
      // Below something that was not a directory at run start nothing was recorded, and an
      // lstat there would resolve through that entry; checking the entry itself is enough.
      if (check(a, false)?.t !== 'd') {
        underRealDirs = false;
        break;
      }
    }
    if (underRealDirs) check(c.path, true);
  }
  for (const r of loaded.replacedRoots) {
    if (manifest.entries.get(r)?.t !== 'd' || statEntry(join(root, r))?.t !== 'd') continue;
    for (const rel of walkEntries(join(root, r)).keys()) {
      const p = r + '/' + rel;
      if (!manifest.entries.has(p)) throw new WorkspaceChangedError(p, 'was created', runId);
    }
  }
}

/**
 * Why `now` differs from `before`, or undefined. Directory mtime and size are not compared:
 * they move whenever any child changes, and the children the change set touches are checked
 * one by one. `full` = false compares presence and type only (for ancestors).
 */
function describeDrift(before: EntryInfo | undefined, now: EntryInfo | undefined, full: boolean): string | undefined {
  if (before === undefined) return now === undefined ? undefined : 'was created';
  if (now === undefined) return 'was deleted';
  if (before.t !== now.t) return now.t === 'l' ? 'was replaced by a symlink' : 'changed type';
  if (!full) return undefined;
  if (before.t === 'f' && (before.size !== now.size || before.mtimeMs !== now.mtimeMs)) return 'was modified';
  if (before.t === 'l' && (before.target !== now.target || before.mtimeMs !== now.mtimeMs)) return 'was modified';
  if (before.t !== 'l' && before.mode !== now.mode) return 'changed mode';
  return undefined;
}
