// Which changes are "ignored": kept apart from review, counted, summarised in one audit event and
// applied only on request. The rules are the host's, as they were when the run started: every
// regular .gitignore the manifest lists (at any depth), .git/info/exclude, and the policy's
// filesystem.ignore (highest precedence, so `!build/` can bring a directory back into review).
// A .gitignore the pod wrote is never read: the pod must not choose what the user does not see.
//
// Matching is the `ignore` package (the matcher eslint and prettier use, tested against
// `git check-ignore`), case-sensitive as git is on Linux. Nested files are merged into one rule
// list by re-anchoring each pattern at its directory ("foo" in a/.gitignore becomes
// "a/**/foo", "/foo" becomes "a/foo"), ordered lowest precedence first: git's "the last match
// wins, deeper files beat shallower ones, nothing below an excluded directory comes back" is
// then exactly what the package computes for one list.
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import ignore from 'ignore';
import type { Ignore } from 'ignore';
import { readRegularFile } from './content.js';
import { ChangeSetError } from './errors.js';
import { isFlaggedDirName, isGitPath } from './flags.js';
import { ancestorsOf } from './paths.js';
import { quotePath } from './quote.js';
import type { Change, Manifest } from './types.js';

/** A .gitignore larger than this is not read (fewer ignored paths: more review, never less). */
const MAX_IGNORE_FILE = 1 << 20;
const MAX_IGNORE_TOTAL = 16 << 20;
/** Every rule is tested against every path: past this many file rules the later positive ones
 *  are not used (fewer ignored paths: more review, never less), so review stays fast. */
export const MAX_IGNORE_RULES = 5_000;

/** The rule texts of one run, kept in its directory (ignore.json) for diff and apply. */
export interface IgnoreSources {
  version: 1;
  /** dir ('' = the root) -> text of its .gitignore; .git/info/exclude as dir '' with exclude. */
  gitignore: { dir: string; text: string }[];
  exclude?: string;
  policy: string[];
}

export const NO_IGNORE: IgnoreSources = { version: 1, gitignore: [], policy: [] };

/** Reads the workspace's ignore files the manifest lists (regular files only: git follows no
 *  symlinked .gitignore). Called when the run starts, before the pod can run. */
export function readIgnoreSources(root: string, manifest: Manifest, policy: string[] = []): IgnoreSources {
  const out: IgnoreSources = { version: 1, gitignore: [], policy: [...policy] };
  let total = 0;
  const read = (rel: string): string | undefined => {
    const info = manifest.entries.get(rel);
    if (info?.t !== 'f' || info.size > MAX_IGNORE_FILE || total + info.size > MAX_IGNORE_TOTAL) return undefined;
    try {
      const buf = readRegularFile(`${root}/${rel}`, MAX_IGNORE_FILE);
      if (buf === undefined) return undefined;
      total += buf.length;
      return buf.toString('utf8');
    } catch {
      return undefined;
    }
  };
  for (const rel of manifest.entries.keys()) {
    if (!(rel === '.gitignore' || rel.endsWith('/.gitignore')) || isGitPath(rel)) continue;
    const text = read(rel);
    if (text !== undefined) out.gitignore.push({ dir: rel.slice(0, -'.gitignore'.length).replace(/\/$/, ''), text });
  }
  if (manifest.entries.get('.git')?.t === 'd') {
    const text = read('.git/info/exclude');
    if (text !== undefined) out.exclude = text;
  }
  return out;
}

export function saveIgnoreSources(file: string, src: IgnoreSources): void {
  writeFileSync(file, JSON.stringify(src), { mode: 0o600 });
}

/** A run's rules; a run from before rules were kept (no file) ignores nothing. */
export function loadIgnoreSources(file: string): IgnoreSources {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return NO_IGNORE;
    throw new ChangeSetError(`cannot read ${file}: ${(e as Error).message} (the run's record is damaged: discard the run)`);
  }
  const r = raw as Partial<IgnoreSources>;
  const strings = (a: unknown) => Array.isArray(a) && a.every((s) => typeof s === 'string');
  if (
    r?.version !== 1 ||
    !strings(r.policy) ||
    !Array.isArray(r.gitignore) ||
    !r.gitignore.every((g) => typeof g?.dir === 'string' && typeof g?.text === 'string')
  ) {
    throw new ChangeSetError(`${file} is malformed (the run's record is damaged: discard the run)`);
  }
  return r as IgnoreSources;
}

/** Glob specials of git's patterns, escaped so a directory name is matched literally. */
function escapeGlob(s: string): string {
  return s.replace(/[\\*?[\]!# ]/g, (c) => `\\${c}`);
}

/** Trailing spaces are dropped by git unless escaped with a backslash. */
function trimTrailing(s: string): string {
  let end = s.length;
  while (end > 0 && s[end - 1] === ' ' && s[end - 2] !== '\\') end--;
  return s.slice(0, end);
}

/** One line of the .gitignore in `dir`, as a pattern relative to the workspace root. */
export function reanchor(line: string, dir: string): string | undefined {
  const l = line.endsWith('\r') ? line.slice(0, -1) : line;
  if (dir === '') return l;
  if (l === '' || l.startsWith('#')) return undefined;
  const neg = l.startsWith('!') ? '!' : '';
  const body = trimTrailing(neg ? l.slice(1) : l);
  if (body === '' || body === '/') return undefined;
  // A slash at the start or in the middle anchors the pattern at its file's directory.
  const anchored = body.replace(/\/$/, '').includes('/');
  return `${neg}${escapeGlob(dir)}/${anchored ? body.replace(/^\//, '') : `**/${body}`}`;
}

export interface IgnoreMatcher {
  /** Whether a path (a directory when isDir) is ignored, by itself or through a parent. */
  ignores(rel: string, isDir: boolean): boolean;
  /** True when no rule at all applies: nothing is ever ignored. */
  empty: boolean;
  /** How many rules the sources hold, and how many are used (fewer past the cap). */
  rules: number;
  used: number;
}

const isRule = (l: string) => l.trim() !== '' && !l.startsWith('#');

/**
 * Past `max` file rules, a positive rule is dropped but a negation is kept: with "the last
 * match wins", dropping positive rules can only un-ignore a path, dropping a `!` rule could
 * hide one. Should the kept negations alone exceed the cap, no file rule is used at all. The
 * policy's rules are always used (they are few, and dropping all file rules below them is safe).
 */
function capRules(fileLines: string[], max: number): string[] {
  const kept: string[] = [];
  let n = 0;
  for (const l of fileLines) {
    if (!isRule(l)) continue;
    if (n < max || l.startsWith('!')) kept.push(l);
    n++;
  }
  return kept.length > max * 2 ? [] : kept;
}

export function ignoreMatcher(src: IgnoreSources, opts: { maxRules?: number } = {}): IgnoreMatcher {
  const lines: string[] = [];
  if (src.exclude !== undefined) lines.push(...src.exclude.split('\n'));
  // Shallow before deep: a deeper file's rules come later, and the last match wins.
  const files = [...src.gitignore].sort((a, b) => depth(a.dir) - depth(b.dir) || (a.dir < b.dir ? -1 : 1));
  for (const f of files) {
    for (const l of f.text.split('\n')) {
      const p = reanchor(l, f.dir);
      if (p !== undefined) lines.push(p);
    }
  }
  const fileRules = lines.filter(isRule).length;
  const used = [...capRules(lines, opts.maxRules ?? MAX_IGNORE_RULES), ...src.policy.filter(isRule)];
  const ig: Ignore = ignore({ ignorecase: false }).add(used);
  const empty = used.length === 0;
  return {
    empty,
    rules: fileRules + src.policy.filter(isRule).length,
    used: used.length,
    ignores: (rel, isDir) => !empty && ig.ignores(isDir ? `${rel}/` : rel),
  };
}

/** The one line saying the cap left rules unused; undefined when all are used. */
export function ruleCapLine(m: IgnoreMatcher, max = MAX_IGNORE_RULES): string | undefined {
  if (m.used >= m.rules) return undefined;
  return (
    `clawpod: the ignore rules hold ${m.rules} rules; only the first ${max} are used (the rest is reviewed, ` +
    'not ignored: shorten the .gitignore files, or name big directories in filesystem.ignore)'
  );
}

function depth(dir: string): number {
  return dir === '' ? 0 : dir.split('/').length;
}

/** Files git itself reads from the worktree: a change to one is always reviewed. */
const GIT_READS = new Set(['.gitignore', '.gitattributes', '.gitmodules']);

export interface Classified {
  reviewed: Change[];
  ignored: Change[];
  /** The topmost ignored paths (directories with a trailing /), for the one-line note. */
  roots: string[];
}

/**
 * Splits changes into reviewed and ignored. Never ignored: files git reads (.gitignore,
 * .gitattributes, .gitmodules) and every path in `keep` (the flagged ones: they run code or
 * steer a tool, wherever they are). A directory that a reviewed change lies in is reviewed too,
 * so the review lists every change applying it makes. A type change is ignored only when both
 * of its sides are.
 */
export function classifyChanges(changes: Change[], m: IgnoreMatcher, keep: Set<string>): Classified {
  if (m.empty) return { reviewed: changes, ignored: [], roots: [] };
  const isIgnored = (c: Change): boolean => {
    // .git has its own rule (left out unless --include-git); ignore rules never apply to it, as in git.
    if (isGitPath(c.path)) return false;
    const exempt = keep.has(c.path) || GIT_READS.has(c.path.slice(c.path.lastIndexOf('/') + 1));
    // Inside an ignored ordinary directory (node_modules/pkg/.github, vendor/x/.gitattributes)
    // no host tool reads these by their place: they follow the rule like their siblings (and,
    // like them, are never applied unless asked). An ignored flagged directory (.vscode/) is
    // still read by its tool, so what lies in it stays reviewed.
    if (exempt && !underOrdinaryIgnoredDir(c.path, m)) return false;
    const sides = [c.before, c.after].filter((s) => s !== undefined);
    return sides.length > 0 && sides.every((s) => m.ignores(c.path, s.t === 'd'));
  };
  const out = new Map<string, boolean>();
  for (const c of changes) out.set(c.path, isIgnored(c));
  for (const c of changes) {
    if (out.get(c.path) === true) continue;
    for (const a of ancestorsOf(c.path)) if (out.get(a) === true) out.set(a, false);
  }
  const reviewed = changes.filter((c) => out.get(c.path) === false);
  const ignored = changes.filter((c) => out.get(c.path) === true);
  return { reviewed, ignored, roots: topmost(ignored, m) };
}

function underOrdinaryIgnoredDir(rel: string, m: IgnoreMatcher): boolean {
  return ancestorsOf(rel).some((a) => m.ignores(a, true) && !isFlaggedDirName(a.slice(a.lastIndexOf('/') + 1)));
}

function topmost(ignored: Change[], m: IgnoreMatcher): string[] {
  const roots = new Set<string>();
  for (const c of ignored) {
    const hit = ancestorsOf(c.path).find((a) => m.ignores(a, true));
    const isDir = (c.after ?? c.before)?.t === 'd';
    roots.add(hit !== undefined ? `${hit}/` : isDir ? `${c.path}/` : c.path);
  }
  return [...roots].sort();
}

export interface IgnoredSummary {
  count: number;
  bytes: number;
  /** sha256 of the ignored manifest (one JSON line per change), kept beside the change set. */
  sha256: string;
  roots: string[];
}

/** Writes the ignored changes' manifest and returns the summary its audit event carries. Written
 *  and hashed in batches: 260k long names are more than one string may hold. */
export function writeIgnoredManifest(
  file: string,
  ignored: Change[],
  roots: string[],
  opts: { batchBytes?: number; onWrite?: () => void } = {},
): IgnoredSummary {
  const hash = createHash('sha256');
  const batchBytes = opts.batchBytes ?? 1 << 20;
  let bytes = 0;
  let batch = '';
  const fd = openSync(file, 'w', 0o600);
  const flush = () => {
    hash.update(batch);
    writeSync(fd, batch);
    opts.onWrite?.();
    batch = '';
  };
  try {
    for (const c of ignored) {
      batch += `${JSON.stringify(
        c.kind === 'deleted' ? { path: c.path, kind: c.kind, deleted: true } : { path: c.path, kind: c.kind, bytes: c.bytes ?? 0, sha256: c.sha256 ?? null },
      )}\n`;
      bytes += c.bytes ?? 0;
      if (batch.length >= batchBytes) flush();
    }
    if (batch !== '') flush();
  } finally {
    closeSync(fd);
  }
  return { count: ignored.length, bytes, sha256: hash.digest('hex'), roots };
}

/** A root as the notes show it: bare when plain, else JSON-quoted so no pod-chosen name (with
 *  ", " or "; 1 B) not shown:") reads as clawpod's own words. */
function rootText(r: string): string {
  if (/^[A-Za-z0-9._/@+-]+$/.test(r)) return r;
  const q = quotePath(r);
  return q.startsWith('"') ? q : JSON.stringify(r);
}

/** "node_modules/, coverage/ and 3 more". */
export function rootsText(roots: string[], max = 3): string {
  const shown = roots.slice(0, max).map(rootText).join(', ');
  return roots.length > max ? `${shown} and ${roots.length - max} more` : shown;
}
