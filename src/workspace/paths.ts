// Relative-path rules for everything a change set names. The lists come from the pod side of
// the trust boundary, so a path is accepted only in one canonical shape: no absolute paths, no
// empty/"."/".." segments, no NUL. Anything else is refused rather than "cleaned up".
import { existsSync, readFileSync } from 'node:fs';
import { ChangeSetError } from './errors.js';
import { shortPath } from './quote.js';

/** Throws ChangeSetError unless `rel` is a canonical posix relpath inside the root. */
export function validateRelPath(rel: string, source: string): string {
  const bad = (why: string): never => {
    throw new ChangeSetError(`invalid path ${shortPath(rel)} in ${source}: ${why}; the change set is rejected (discard the run)`);
  };
  if (rel.length === 0) bad('empty path');
  if (rel.includes('\0')) bad('contains NUL');
  if (rel.startsWith('/')) bad('absolute path');
  for (const seg of rel.split('/')) {
    if (seg === '') bad('empty segment');
    if (seg === '.' || seg === '..') bad(`"${seg}" segment`);
  }
  return rel;
}

/** Proper ancestors of a relpath, outermost first: "a/b/c" -> ["a", "a/b"]. */
export function ancestorsOf(rel: string): string[] {
  const out: string[] = [];
  let i = rel.indexOf('/');
  while (i !== -1) {
    out.push(rel.slice(0, i));
    i = rel.indexOf('/', i + 1);
  }
  return out;
}

/** True when `rel` is `root` itself or lies below it. */
export function isAtOrUnder(rel: string, root: string): boolean {
  return rel === root || rel.startsWith(root + '/');
}

/** Number of segments, used to order directory work deepest first. */
export function depthOf(rel: string): number {
  let n = 1;
  for (let i = 0; i < rel.length; i++) if (rel.charCodeAt(i) === 47) n++;
  return n;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A NUL-separated list file; a missing file is an empty list. Empty items (the usual trailing
 * terminator) are skipped: an empty relpath would mean the root, which no list may name.
 */
export function readNulList(file: string, source: string): string[] {
  if (!existsSync(file)) return [];
  let text: string;
  try {
    text = strictUtf8.decode(readFileSync(file));
  } catch {
    // Lossy decoding would turn a name into one that matches nothing, silently dropping it.
    throw new ChangeSetError(`${source} names a path that is not valid UTF-8; the change set cannot be reviewed or applied (discard the run)`);
  }
  const items = text.split('\0').filter((s) => s !== '');
  return items.map((p) => validateRelPath(p, source));
}
