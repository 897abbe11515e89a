// Applies a reviewed change set to the real workspace. Everything that can refuse does so before
// the first write: path validation (loadChangeSet), unsupported entries, symlinked or
// non-directory parents, and drift since the manifest. Writes then go through temp file +
// rename so a crash leaves each file either old or new, never half-written. A crash between
// files can still leave the change set partly applied; the manifest check then refuses a
// second apply, and the user sees which files moved.
//
// Between the checks and the writes nothing re-validates against a concurrent local process
// swapping a directory for a symlink, beyond re-lstat'ing parents right before each write: the
// pod that produced the change set is gone by now, so the only racer would be the user.
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { loadChangeSet, PERM_MASK } from './changeset.js';
import { assertRealParents, assertSafeTargets, assertWorkspaceUnchanged, notADirectory } from './check.js';
import { ChangeSetError, UnsafePathError } from './errors.js';
import { entryTypeOf } from './manifest.js';
import { ancestorsOf, depthOf } from './paths.js';
import { quotePath } from './quote.js';
import type { Change, EntryInfo, Manifest } from './types.js';

export interface ApplyOptions {
  /** Apply even if the workspace drifted from the manifest. Path-safety checks still apply. */
  force?: boolean;
  /** Named in the "workspace changed" message so the user can copy the review command. */
  runId?: string;
}

export function applyChangeSet(
  csDir: string,
  workspaceRoot: string,
  manifest: Manifest,
  opts: ApplyOptions = {},
): { applied: number } {
  // Resolved once: the user's root may itself be reached through a symlink, which is fine;
  // every check below is then relative to the real directory.
  const root = realpathSync(workspaceRoot);
  const loaded = loadChangeSet(csDir, root, manifest);
  const { changes } = loaded;
  for (const c of changes) {
    if (c.after?.t === 'o' && c.kind !== 'mode') {
      throw new ChangeSetError(
        `cannot apply ${quotePath(c.path)}: the pod left a special file (fifo, socket or device) there; discard the run, or delete it in a new run`,
      );
    }
  }
  assertSafeTargets(root, changes);
  if (opts.force !== true) assertWorkspaceUnchanged(root, loaded, manifest, opts.runId ?? '<run-id>');

  // Deletions first, deepest first, so a directory is emptied before it goes.
  for (let i = changes.length - 1; i >= 0; i--) {
    if (changes[i].kind === 'deleted') removeEntry(root, changes[i].path);
  }
  for (const o of loaded.opaque) sweepOpaque(root, o, loaded.tree);
  for (const c of changes) {
    if (c.kind !== 'deleted') writeChange(root, loaded.treeDir, c);
  }
  // Directory modes last and deepest first: a read-only or non-searchable directory mode set
  // early would block the writes and chmods below it.
  const dirs = changes.filter((c) => c.kind !== 'deleted' && c.after?.t === 'd');
  dirs.sort((a, b) => depthOf(b.path) - depthOf(a.path));
  for (const c of dirs) chmodDir(root, c.path, c.after as EntryInfo);
  return { applied: changes.length };
}

function removeEntry(root: string, rel: string): void {
  assertRealParents(root, rel);
  // rmSync lstat's what it removes: a symlink is unlinked, never followed.
  rmSync(join(root, rel), { recursive: true, force: true });
}

/**
 * Clears an opaque directory of whatever the tree does not have. Normally the deletions already
 * did this; it matters under `force`, when entries appeared after the manifest was taken.
 */
function sweepOpaque(root: string, rel: string, tree: Map<string, EntryInfo>): void {
  assertRealParents(root, rel);
  const st = lstatSync(join(root, rel), { throwIfNoEntry: false });
  if (st === undefined || !st.isDirectory()) return; // writeChange creates or retypes it
  for (const name of readdirSync(join(root, rel))) {
    const child = rel + '/' + name;
    const inTree = tree.get(child);
    if (inTree === undefined) rmSync(join(root, child), { recursive: true, force: true });
    else if (inTree.t === 'd') sweepOpaque(root, child, tree);
  }
}

function writeChange(root: string, treeDir: string, c: Change): void {
  const after = c.after as EntryInfo;
  const abs = join(root, c.path);
  prepareParents(root, c.path);
  const existing = lstatSync(abs, { throwIfNoEntry: false });
  if (c.kind === 'mode') {
    if (existing === undefined || entryTypeOf(existing) !== after.t) {
      throw new UnsafePathError(c.path, `refusing to apply: ${quotePath(c.path)} is no longer a ${typeName(after)} in the workspace (discard the run, or re-run)`);
    }
    if (after.t !== 'd') chmodSync(abs, after.mode & PERM_MASK); // lstat above: not a symlink
    return;
  }
  let present = existing !== undefined;
  if (existing !== undefined && entryTypeOf(existing) !== after.t) {
    rmSync(abs, { recursive: true, force: true });
    present = false;
  }
  if (after.t === 'f') writeFileAtomic(join(treeDir, c.path), abs, after.mode & PERM_MASK);
  else if (after.t === 'l') replaceWithSymlink(readlinkSync(join(treeDir, c.path), { encoding: 'buffer' }), abs);
  else if (after.t === 'd' && !present) mkdirSync(abs, 0o700); // final mode set last
}

/** Parents must be real directories; a missing one (possible only under force) is created. */
function prepareParents(root: string, rel: string): void {
  for (const a of ancestorsOf(rel)) {
    const abs = join(root, a);
    const st = lstatSync(abs, { throwIfNoEntry: false });
    if (st === undefined) mkdirSync(abs);
    else if (!st.isDirectory()) throw notADirectory(a, st.isSymbolicLink());
  }
}

function chmodDir(root: string, rel: string, after: EntryInfo): void {
  assertRealParents(root, rel);
  const abs = join(root, rel);
  const st = lstatSync(abs, { throwIfNoEntry: false });
  if (st === undefined || !st.isDirectory()) throw notADirectory(rel, st?.isSymbolicLink() ?? false);
  chmodSync(abs, after.mode & PERM_MASK);
}

function typeName(info: EntryInfo): string {
  return info.t === 'f' ? 'file' : info.t === 'd' ? 'directory' : info.t === 'l' ? 'symlink' : 'special file';
}

/** A short name beside `dest`: short so that a 255-byte file name does not overflow NAME_MAX. */
function tempNameBeside(dest: string): string {
  return join(dirname(dest), `.clawpod-${randomBytes(6).toString('hex')}.tmp`);
}

function writeFileAtomic(src: string, dest: string, mode: number): void {
  const tmp = tempNameBeside(dest);
  // O_EXCL: never reuse, or write through, something already at the temp name.
  const out = openSync(tmp, 'wx', 0o600);
  let open = true;
  try {
    copyInto(src, out);
    fchmodSync(out, mode); // explicit, so the umask cannot change what the pod left
    fsyncSync(out); // the bytes are on disk before the rename makes them visible
    open = false;
    closeSync(out);
    renameSync(tmp, dest);
  } catch (e) {
    if (open) closeSync(out);
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Streams a regular file from the tree without loading it whole or following a symlink. */
function copyInto(src: string, out: number): void {
  const fd = openSync(src, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    if (!fstatSync(fd).isFile()) throw new ChangeSetError(`change set file ${quotePath(src)} is no longer a regular file; the change set is rejected`);
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      for (let off = 0; off < n; ) off += writeSync(out, buf, off, n - off);
    }
  } finally {
    closeSync(fd);
  }
}

/** The target is copied as raw bytes: the link must read back exactly as the pod left it. */
function replaceWithSymlink(target: Buffer, dest: string): void {
  const tmp = tempNameBeside(dest);
  symlinkSync(target, tmp);
  try {
    renameSync(tmp, dest);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
