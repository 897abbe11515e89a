// The fake backend's harvest: its pod worked on a plain copy of the workspace, and what differs
// between the copy and the workspace is written as a change set in the format the prelude writes
// (native/changeset.c): CS/tree holds every added or changed entry with its parents, CS/deleted.lst
// the topmost removed paths (NUL-terminated). Like the prelude, nothing at all when nothing changed.
import fs from 'node:fs';
import path from 'node:path';
import { PERM_MASK, walkEntries, type EntryInfo } from '../workspace/index.js';

function sameEntry(a: EntryInfo, b: EntryInfo, absA: string, absB: string): boolean {
  if (a.t !== b.t) return false;
  if (a.t === 'l') return a.target === b.target;
  if ((a.mode & PERM_MASK) !== (b.mode & PERM_MASK)) return false;
  if (a.t !== 'f') return true;
  return a.size === b.size && fs.readFileSync(absA).equals(fs.readFileSync(absB));
}

/** Writes the change set of `copy` against `workspace` into `changesDir`; returns how many
 *  entries it holds (0: no change set was written). */
export function harvestCopy(workspace: string, copy: string, changesDir: string): number {
  const before = walkEntries(workspace);
  const after = walkEntries(copy);
  const changed = [...after]
    .filter(([p, a]) => {
      const b = before.get(p);
      return !b || !sameEntry(b, a, path.join(workspace, p), path.join(copy, p));
    })
    .map(([p]) => p);
  // Topmost only: a whiteout on a directory removes all below it.
  const deleted = [...before.keys()].filter((p) => {
    if (after.has(p)) return false;
    const parent = path.posix.dirname(p);
    return parent === '.' || after.get(parent)?.t === 'd';
  });
  if (changed.length === 0 && deleted.length === 0) return 0;
  const tree = path.join(changesDir, 'tree');
  fs.mkdirSync(tree, { recursive: true, mode: 0o700 });
  const dirs: [string, number][] = [];
  const put = (rel: string) => {
    const dst = path.join(tree, rel);
    if (fs.existsSync(dst)) return;
    const parent = path.posix.dirname(rel);
    if (parent !== '.') put(parent);
    const info = after.get(rel) as EntryInfo;
    const src = path.join(copy, rel);
    if (info.t === 'd') fs.mkdirSync(dst);
    else if (info.t === 'l') fs.symlinkSync(info.target ?? '', dst);
    else if (info.t === 'f') fs.copyFileSync(src, dst);
    else return; // devices, fifos, sockets: the prelude refuses them; the fake leaves them out
    if (info.t === 'f') fs.chmodSync(dst, info.mode & PERM_MASK);
    if (info.t === 'd') dirs.push([dst, info.mode & PERM_MASK]);
  };
  for (const p of changed) put(p);
  // Directory modes last, deepest first: a read-only directory still got its entries.
  for (const [d, mode] of dirs.reverse()) fs.chmodSync(d, mode);
  fs.writeFileSync(path.join(changesDir, 'deleted.lst'), deleted.map((p) => `${p}\0`).join(''));
  fs.writeFileSync(path.join(changesDir, 'opaque.lst'), '');
  return changed.length + deleted.length;
}
