// The manifest: what the workspace looked like when a run started. apply compares the live
// workspace against it to refuse overwriting work done meanwhile, and the change-set reader
// uses it as the "before" side. Sync calls on purpose: one walk of a workspace is a tight
// lstat loop, and the async API costs several times more per entry.
import { closeSync, lstatSync, openSync, readdirSync, readFileSync, readlinkSync, renameSync, writeSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { shortPath } from './quote.js';
import type { EntryInfo, EntryType, Manifest } from './types.js';

export function entryTypeOf(st: Stats): EntryType {
  if (st.isFile()) return 'f';
  if (st.isDirectory()) return 'd';
  if (st.isSymbolicLink()) return 'l';
  return 'o';
}

const NO_THROW = { throwIfNoEntry: false } as const;

/** lstat one path into an EntryInfo; undefined when nothing is there. Never follows a symlink. */
export function statEntry(abs: string): EntryInfo | undefined {
  const st = lstatSync(abs, NO_THROW);
  if (st === undefined) return undefined;
  return infoFromStats(abs, st);
}

function infoFromStats(abs: string, st: Stats): EntryInfo {
  const t = entryTypeOf(st);
  const info: EntryInfo = { t, mode: st.mode & 0o7777, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
  if (t === 'l') info.target = readlinkSync(abs);
  return info;
}

/** Longest path the kernel takes in one call (PATH_MAX, with its NUL). */
export const PATH_MAX_BYTES = 4095;

export interface WalkOptions {
  /** The error for an entry the walk cannot represent: a name that is not UTF-8, a path too long. */
  refuse?: (rel: string, why: string) => Error;
}

/**
 * Every entry below `root` (not the root itself), keyed by posix relpath; a directory always
 * comes before its contents. The walk keeps its own stack: depth costs no call stack.
 * Symlinked directories are recorded as links and not descended into. An entry that vanishes
 * between readdir and lstat is skipped: the walk describes what it could see.
 */
export function walkEntries(root: string, opts: WalkOptions = {}): Map<string, EntryInfo> {
  const refuse = opts.refuse ?? ((rel: string, why: string) => new Error(`cannot handle ${shortPath(rel)} under ${root}: ${why} (rename or move it)`));
  const out = new Map<string, EntryInfo>();
  // Plain concatenation below: path.join re-normalizes every call and costs a measurable share
  // of a 10k-entry walk; names from readdir never contain "/" and the base is resolved once.
  const base = resolve(root);
  const stack: string[] = [''];
  while (stack.length > 0) {
    const rel = stack.pop() as string;
    const dir = rel === '' ? base : base + '/' + rel;
    const names = readdirSync(dir).sort();
    // readdir decodes a non-UTF-8 name lossily, so it could never be found again: refuse rather
    // than leave an entry nobody can review. (A real U+FFFD in a name is fine: it round-trips.)
    if (names.some((n) => n.includes('\uFFFD'))) assertUtf8Names(dir, rel, refuse);
    const subdirs: string[] = [];
    for (const name of names) {
      const childRel = rel === '' ? name : rel + '/' + name;
      const abs = base + '/' + childRel;
      if (abs.length > PATH_MAX_BYTES / 3 && Buffer.byteLength(abs) > PATH_MAX_BYTES) {
        throw refuse(childRel, `its path is longer than ${PATH_MAX_BYTES} bytes`);
      }
      const st = lstatSync(abs, NO_THROW);
      if (st === undefined) continue;
      const info = infoFromStats(abs, st);
      out.set(childRel, info);
      if (info.t === 'd') subdirs.push(childRel);
    }
    // Reverse so the stack pops subdirectories in name order.
    for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i]);
  }
  return out;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function assertUtf8Names(dir: string, rel: string, refuse: (rel: string, why: string) => Error): void {
  for (const raw of readdirSync(dir, { encoding: 'buffer' })) {
    try {
      strictUtf8.decode(raw);
    } catch {
      const shown = raw.toString('utf8');
      throw refuse(rel === '' ? shown : rel + '/' + shown, 'its name is not valid UTF-8');
    }
  }
}

export function takeManifest(root: string): Manifest {
  return { version: 1, entries: walkEntries(root) };
}

/** Written via temp file + rename so a crash never leaves a truncated manifest behind. */
export function saveManifest(path: string, m: Manifest): void {
  const body = JSON.stringify({ version: m.version, entries: [...m.entries] });
  const tmp = join(dirname(path), `.manifest-${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    // No fsync: a manifest matters only for a run that ends normally, and a run cut short by a
    // crash is marked interrupted with its change set discarded.
    writeSync(fd, body);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export function loadManifest(path: string): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read manifest ${path}: ${(e as Error).message}`);
  }
  const bad = (): never => {
    throw new Error(`manifest ${path} is malformed; the run's record is damaged (discard the run)`);
  };
  if (typeof raw !== 'object' || raw === null) return bad();
  const { version, entries } = raw as { version?: unknown; entries?: unknown };
  if (version !== 1 || !Array.isArray(entries)) return bad();
  // A Map, not an object: a workspace file may well be called "__proto__".
  const map = new Map<string, EntryInfo>();
  for (const item of entries) {
    if (!Array.isArray(item) || typeof item[0] !== 'string' || !isEntryInfo(item[1])) return bad();
    map.set(item[0], item[1]);
  }
  return { version: 1, entries: map };
}

function isEntryInfo(v: unknown): v is EntryInfo {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return (
    (e.t === 'f' || e.t === 'd' || e.t === 'l' || e.t === 'o') &&
    typeof e.mode === 'number' &&
    typeof e.size === 'number' &&
    typeof e.mtimeMs === 'number' &&
    typeof e.ino === 'number' &&
    (e.target === undefined || typeof e.target === 'string')
  );
}

/**
 * The manifest after a partial apply: the paths apply wrote now hold what the change set has,
 * so they are recorded as the workspace now has them (a later apply of the rest then neither
 * sees them as changes nor as drift). Deleted paths leave the manifest.
 */
export function advanceManifest(m: Manifest, root: string, applied: { path: string; kind: string }[]): Manifest {
  const entries = new Map(m.entries);
  for (const c of applied) {
    const now = c.kind === 'deleted' ? undefined : statEntry(join(root, c.path));
    if (now === undefined) entries.delete(c.path);
    else entries.set(c.path, now);
  }
  return { version: 1, entries };
}
