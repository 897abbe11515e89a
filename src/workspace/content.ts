// Reading file content for comparison and display, without ever following a symlink at the
// final component (a link is content of its own: its target text).
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { diffLines } from 'diff';

const BINARY_SNIFF_BYTES = 8000; // what git looks at before calling a file binary

/** Content of a regular file, or undefined when the path is absent or is not a regular file. */
export function readRegularFile(abs: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTDIR') return undefined;
    throw e;
  }
  try {
    if (!fstatSync(fd).isFile()) return undefined;
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function isBinary(buf: Buffer): boolean {
  if (buf.subarray(0, BINARY_SNIFF_BYTES).includes(0)) return true;
  try {
    utf8.decode(buf);
    return false;
  } catch {
    return true;
  }
}

export function sha256Hex(buf: Buffer | string): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** Lines added and removed between two texts, counted the way a unified diff shows them. */
export function countLineChanges(oldText: string, newText: string): { insertions: number; deletions: number } {
  let insertions = 0;
  let deletions = 0;
  for (const part of diffLines(oldText, newText)) {
    if (part.added) insertions += part.count ?? 0;
    else if (part.removed) deletions += part.count ?? 0;
  }
  return { insertions, deletions };
}
