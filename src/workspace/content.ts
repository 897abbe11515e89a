// Reading file content for comparison and display, without ever following a symlink at the
// final component (a link is content of its own: its target text). A pod can leave a file as
// large as its disk cap, so files are scanned in chunks (hashes, line count, text or binary)
// and read whole only when they are small enough to show.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { diffLines } from 'diff';

const BINARY_SNIFF_BYTES = 8000; // what git looks at before calling a file binary
const CHUNK = 1 << 20;

/** A file past either bound is summarised in the diff instead of shown line by line. */
export const SHOW_MAX_BYTES = 2 << 20;
export const SHOW_MAX_LINES = 20_000;
/** Line edits the diff algorithm may explore before it gives up on a pair of texts. */
export const DIFF_MAX_EDITS = 4_000;

/** What one side of a change holds, learnt in one pass over it. */
export interface ContentScan {
  size: number;
  /** sha256 hex, for the audit log and for comparing two sides. */
  sha256: string;
  /** git's blob id (sha1 over "blob <size>\0" + content), for the diff's index line. */
  blobId: string;
  /** A NUL in the first 8000 bytes, or not valid UTF-8. */
  binary: boolean;
  /** Lines as a diff counts them: a last line without a newline still counts. */
  lines: number;
}

/** With --full: diffed and shown up to these (a bounded diff of 200k-line pairs takes ~2 s). */
export const FULL_MAX_BYTES = 32 << 20;
export const FULL_MAX_LINES = 1_000_000;

/** Too large to show (and to diff): the diff summarises it. */
export function tooLargeToShow(s: ContentScan, full = false): boolean {
  return full ? s.size > FULL_MAX_BYTES || s.lines > FULL_MAX_LINES : s.size > SHOW_MAX_BYTES || s.lines > SHOW_MAX_LINES;
}

/** The largest file read whole for showing. */
export function showMaxBytes(full = false): number {
  return full ? FULL_MAX_BYTES : SHOW_MAX_BYTES;
}

function openRegular(abs: string): number | undefined {
  try {
    return openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}

class Scanner {
  private readonly sha256 = createHash('sha256');
  private readonly sha1 = createHash('sha1');
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true });
  private size = 0;
  private newlines = 0;
  private last = -1;
  private binary = false;

  constructor(expectedSize: number) {
    // git hashes the size first; a file that grows while read gets an id that matches nothing,
    // which is harmless: the index line is informational here.
    this.sha1.update(`blob ${expectedSize}\0`);
  }

  update(buf: Buffer): void {
    if (buf.length === 0) return;
    this.sha256.update(buf);
    this.sha1.update(buf);
    if (!this.binary && this.size < BINARY_SNIFF_BYTES && buf.subarray(0, BINARY_SNIFF_BYTES - this.size).includes(0)) {
      this.binary = true;
    }
    if (!this.binary) {
      try {
        this.utf8.decode(buf, { stream: true });
      } catch {
        this.binary = true;
      }
    }
    for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) this.newlines++;
    this.size += buf.length;
    this.last = buf[buf.length - 1];
  }

  finish(): ContentScan {
    if (!this.binary) {
      try {
        this.utf8.decode(); // a multi-byte sequence cut off at the end
      } catch {
        this.binary = true;
      }
    }
    const lines = this.newlines + (this.size > 0 && this.last !== 10 ? 1 : 0);
    return { size: this.size, sha256: this.sha256.digest('hex'), blobId: this.sha1.digest('hex'), binary: this.binary, lines };
  }
}

export function scanBuffer(buf: Buffer): ContentScan {
  const s = new Scanner(buf.length);
  s.update(buf);
  return s.finish();
}

/** Scans a regular file in chunks; undefined when the path is absent or not a regular file. */
export function scanFile(abs: string): ContentScan | undefined {
  const fd = openRegular(abs);
  if (fd === undefined) return undefined;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return undefined;
    const s = new Scanner(st.size);
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      s.update(buf.subarray(0, n));
    }
    return s.finish();
  } finally {
    closeSync(fd);
  }
}

/**
 * Content of a regular file, or undefined when the path is absent or is not a regular file.
 * Refuses (throws RangeError) past `maxBytes`: callers scan first and read only what they show.
 */
export function readRegularFile(abs: string, maxBytes = SHOW_MAX_BYTES): Buffer | undefined {
  const fd = openRegular(abs);
  if (fd === undefined) return undefined;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return undefined;
    if (st.size > maxBytes) throw new RangeError(`file of ${st.size} bytes is larger than ${maxBytes} bytes`);
    const out = Buffer.allocUnsafe(st.size);
    let off = 0;
    while (off < out.length) {
      const n = readSync(fd, out, off, out.length - off, null);
      if (n === 0) break; // it shrank meanwhile: what is there is what is shown
      off += n;
    }
    return out.subarray(0, off);
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

/**
 * Lines added and removed between two texts, counted the way a unified diff shows them;
 * undefined when the texts differ by more than DIFF_MAX_EDITS lines (the diff summarises them).
 */
export function countLineChanges(oldText: string, newText: string): { insertions: number; deletions: number } | undefined {
  const parts = diffLines(oldText, newText, { maxEditLength: DIFF_MAX_EDITS });
  if (parts === undefined) return undefined;
  let insertions = 0;
  let deletions = 0;
  for (const part of parts) {
    if (part.added) insertions += part.count ?? 0;
    else if (part.removed) deletions += part.count ?? 0;
  }
  return { insertions, deletions };
}
