// Shapes shared by the manifest, the change-set reader, the diff renderer and apply.
import type { ContentScan } from './content.js';

/** f = regular file, d = directory, l = symlink, o = anything else (fifo, socket, device). */
export type EntryType = 'f' | 'd' | 'l' | 'o';

/** One lstat'ed entry. Symlinks are never followed, so `target` is the link text itself. */
export interface EntryInfo {
  t: EntryType;
  /** Permission bits (st_mode & 0o7777). */
  mode: number;
  size: number;
  mtimeMs: number;
  ino: number;
  target?: string;
}

/** The workspace as it was when a run started: posix relpath (no leading ./) -> entry. */
export interface Manifest {
  version: 1;
  entries: Map<string, EntryInfo>;
}

export type ChangeKind = 'added' | 'modified' | 'deleted' | 'mode' | 'type';

export interface Change {
  path: string;
  kind: ChangeKind;
  /** State at run start (from the manifest); absent for 'added'. */
  before?: EntryInfo;
  /** State the pod left (from CS/tree); absent for 'deleted'. */
  after?: EntryInfo;
  /** Either side of a file change holds a NUL in its first 8000 bytes or is not valid UTF-8. */
  binary: boolean;
  /** Size of the new content (file bytes or symlink target) when there is one. */
  bytes?: number;
  /** sha256 (hex) of the new content, for the audit log's file.write events. */
  sha256?: string;
  /** Lines added/removed for text changes, so a stat needs no second read. */
  insertions?: number;
  deletions?: number;
  /** Scans of the old and new content (file bytes or symlink target), so review needs no second pass. */
  oldScan?: ContentScan;
  newScan?: ContentScan;
  /**
   * How the diff shows a text change: 'lines' as a unified diff; 'whole' as the old text removed
   * and the new added (too different to diff line by line); 'summary' as one line (too large).
   */
  show?: 'lines' | 'whole' | 'summary';
}
