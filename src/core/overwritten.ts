// What `runs apply --force` overwrites, and the copies it keeps with the run. Without --force,
// apply refuses when anything it touches changed since the run started; with it, that newer
// work is lost to the pod's version, so it is named and a copy kept first.
//
// The copies are inert: regular files only, mode 0600 in 0700 directories under
// runDir/overwritten/N/files (never set-id, never executable), symlinks and special files only
// described in index.json (never recreated, so nothing ever follows one), and all of it outside
// the change set (runDir/changes), so apply never offers it.
//
// The copies are bounded: at most KEEP_BUDGET bytes per apply (counted by each file's size, so a
// sparse file counts as what a copy of it would take), and never more than the run dir's disk
// has free. An apply whose copies would not fit is refused before anything is copied or written;
// a copy that fails (or a file that grows past the budget as it is read) removes what was kept
// and refuses the apply.
import fs from 'node:fs';
import path from 'node:path';
import { formatBytes } from '../policy/units.js';
import { walkEntries, type Change, type EntryInfo, type LoadedChangeSet, type Manifest } from '../workspace/index.js';
import { entryBeneath, fileSha256 } from './decisions.js';
import { UserError } from './errors.js';

export const OVERWRITTEN_DIR = 'overwritten';
/** The most `apply --force` copies aside in one apply. */
export const KEEP_BUDGET = 1024 ** 3;

export interface OverwrittenEntry {
  path: string;
  /** How the workspace's entry differs from the run's start: modified, created, changed type, changed mode. */
  was: string;
  type: EntryInfo['t'];
  mode: number;
  size: number;
  sha256?: string;
  target?: string;
  /** Where the copy is, relative to the run's dir (regular files only). */
  kept?: string;
}

/** Why `now` (the workspace's entry) is not what the run started from, or undefined. */
function drift(before: EntryInfo | undefined, now: EntryInfo): string | undefined {
  if (before === undefined) return 'created';
  if (before.t !== now.t) return 'changed type';
  if (now.t === 'f' && (before.size !== now.size || before.mtimeMs !== now.mtimeMs)) return 'modified';
  if (now.t === 'l' && before.target !== now.target) return 'modified';
  if (now.t !== 'l' && before.mode !== now.mode) return 'changed mode';
  return undefined;
}

/**
 * The workspace entries a forced apply of `changes` replaces or removes that are not as the run
 * found them: the changed paths themselves, and what was added or changed below a directory the
 * change set deletes or replaces wholesale.
 */
export function findOverwritten(root: string, loaded: LoadedChangeSet, changes: Change[], manifest: Manifest): { path: string; was: string; now: EntryInfo }[] {
  const out = new Map<string, { path: string; was: string; now: EntryInfo }>();
  const consider = (p: string, now: EntryInfo | undefined) => {
    if (!now || out.has(p)) return;
    const was = drift(manifest.entries.get(p), now);
    if (was) out.set(p, { path: p, was, now });
  };
  const picked = new Set(changes.map((c) => c.path));
  for (const c of changes) consider(c.path, entryBeneath(root, c.path));
  for (const r of loaded.replacedRoots) {
    if (!picked.has(r) || entryBeneath(root, r)?.t !== 'd') continue;
    for (const [rel, now] of walkEntries(path.join(root, r))) consider(`${r}/${rel}`, now);
  }
  return [...out.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** The dir the copies go in, made if missing; refused when it is something else (a file, a link). */
function keepBase(runDir: string): string {
  const base = path.join(runDir, OVERWRITTEN_DIR);
  const st = fs.lstatSync(base, { throwIfNoEntry: false });
  if (st && !st.isDirectory()) {
    throw new UserError(`cannot keep copies of what --force overwrites: ${base} is not a directory (move it aside, then apply again); nothing was applied`);
  }
  if (!st) madeDir(base);
  return base;
}

function madeDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    throw new UserError(
      `cannot keep copies of what --force overwrites: ${dir} cannot be made (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); nothing was applied`,
    );
  }
}

/** Refuses, before anything is copied, copies that would take more than `budget` or than the run
 *  dir's disk has free. */
function checkBudget(runDir: string, files: { path: string; now: EntryInfo }[], budget: number): void {
  const total = files.reduce((n, f) => n + f.now.size, 0);
  const largest = files.reduce((a, b) => (b.now.size > a.now.size ? b : a), files[0]);
  const what = () =>
    `the ${files.length} file(s) it overwrites take ${formatBytes(total)} (the largest ${JSON.stringify(largest.path)}, ${formatBytes(largest.now.size)})`;
  if (total > budget) {
    throw new UserError(
      `refusing to apply --force: clawpod keeps a copy of what it overwrites, at most ${formatBytes(budget)}, and ${what()}; move those files out of the workspace (or back them up and delete them), then apply again; nothing was applied`,
    );
  }
  const fsInfo = fs.statfsSync(runDir);
  const free = Number(fsInfo.bavail) * Number(fsInfo.bsize);
  if (total > free) {
    throw new UserError(
      `refusing to apply --force: ${what()}, more than the ${formatBytes(free)} free for their copies in ${runDir}; free some disk, then apply again; nothing was applied`,
    );
  }
}

/** Copies what is about to be overwritten into runDir/overwritten/N; returns what it kept. Copies
 *  that would not fit, or one that cannot be made, stop the apply before anything is written,
 *  and leave no overwritten/N behind. */
export function keepOverwritten(
  root: string,
  runDir: string,
  found: { path: string; was: string; now: EntryInfo }[],
  budget = KEEP_BUDGET,
): { dir: string; entries: OverwrittenEntry[] } {
  const files = found.filter((f) => f.now.t === 'f');
  if (files.length > 0) checkBudget(runDir, files, budget);
  const base = keepBase(runDir);
  let n = 1;
  while (fs.existsSync(path.join(base, String(n)))) n++;
  const dir = path.join(base, String(n));
  madeDir(dir);
  try {
    fs.mkdirSync(path.join(dir, 'files'), { mode: 0o700 });
    const entries: OverwrittenEntry[] = [];
    let left = budget;
    for (const f of found) {
      const e: OverwrittenEntry = { path: f.path, was: f.was, type: f.now.t, mode: f.now.mode, size: f.now.size };
      if (f.now.t === 'l') e.target = f.now.target;
      if (f.now.t === 'f') {
        const rel = path.join(OVERWRITTEN_DIR, String(n), 'files', f.path);
        try {
          const copied = copyInert(root, f.path, path.join(runDir, rel), left);
          e.sha256 = copied.sha256;
          left -= copied.bytes;
        } catch (err) {
          throw new UserError(`cannot keep a copy of ${JSON.stringify(f.path)} before overwriting it (${(err as Error).message}); nothing was applied`);
        }
        e.kept = rel;
      }
      entries.push(e);
    }
    fs.writeFileSync(path.join(dir, 'index.json'), `${JSON.stringify({ version: 1, workspace: root, entries }, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    return { dir, entries };
  } catch (err) {
    // Nothing is applied, so nothing is kept: a partial copy never passes for a backup.
    fs.rmSync(dir, { recursive: true, force: true });
    if (err instanceof UserError) throw err;
    throw new UserError(`cannot keep copies of what --force overwrites in ${dir} (${(err as Error).message}); nothing was applied`);
  }
}

/** One regular file copied as 0600 data, at most `limit` bytes of it; returns its sha256 and
 *  size. The source is opened without following a symlink, under a parent that must still be
 *  the workspace's own directory. */
function copyInert(root: string, rel: string, dest: string, limit: number): { sha256: string; bytes: number } {
  const src = path.join(root, rel);
  const parent = path.dirname(src);
  if (fs.realpathSync(parent) !== parent) throw new Error('its directory is no longer a real directory of the workspace');
  const fd = fs.openSync(src, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  let bytes = 0;
  try {
    if (!fs.fstatSync(fd).isFile()) throw new Error('it is no longer a regular file');
    fs.mkdirSync(path.dirname(dest), { recursive: true, mode: 0o700 });
    const out = fs.openSync(dest, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (let n = fs.readSync(fd, buf); n > 0; n = fs.readSync(fd, buf)) {
        bytes += n;
        // Read as it is now: a file that grew since it was measured stops at the budget.
        if (bytes > limit) throw new Error('it grew past what clawpod keeps per apply while it was copied');
        let off = 0;
        while (off < n) off += fs.writeSync(out, buf, off, n - off);
      }
      fs.fchmodSync(out, 0o600);
    } finally {
      fs.closeSync(out);
    }
  } finally {
    fs.closeSync(fd);
  }
  return { sha256: fileSha256(dest), bytes };
}
