// Changes that point into the pod's own view of the workspace. A pod that saw the workspace at
// /workspace records that path in what it makes: a git worktree's gitdir file, absolute
// symlinks, a venv's activate script and pyvenv.cfg, config.status, libtool .la files. After
// apply those lead nowhere on the host (or somewhere else). Review names them, so the user can
// rerun with filesystem.workspaceAt: host, which mounts the workspace at its own host path.
//
// Content is scanned as bytes (text and binary alike), streaming, at most SCAN_FILE_BYTES of
// each file and SCAN_TOTAL_BYTES of the whole change set: the flag is a hint for review, not a
// guarantee, and a pod must not be able to make review slow by writing large files.
import { closeSync, constants, fstatSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { quotePath } from './quote.js';
import type { Change } from './types.js';

export const DEFAULT_POD_ROOT = '/workspace';
const POD_ROOT_FILE = 'pod-root';
export const SCAN_FILE_BYTES = 4 << 20;
export const SCAN_TOTAL_BYTES = 256 << 20;
const CHUNK = 1 << 16;

export interface PathRef {
  path: string;
  /** A symlink whose target is in the pod's workspace path, or content that names it. */
  via: 'symlink' | 'content';
  target?: string;
}

export interface PathRefs {
  /** The pod's path of the workspace the refs point into (e.g. /workspace). */
  podRoot: string;
  refs: PathRef[];
  /** True when the byte budget ran out before every file was scanned. */
  partial: boolean;
}

/** Where the pod saw the workspace, kept with the run (read back by review). */
export function savePodRoot(runDir: string, podDir: string): void {
  writeFileSync(join(runDir, POD_ROOT_FILE), `${podDir}\n`, { mode: 0o600 });
}

/** The pod's workspace path of a run; /workspace for runs made before it was kept. */
export function podRootOf(runDir: string): string {
  try {
    const p = readFileSync(join(runDir, POD_ROOT_FILE), 'utf8').replace(/\n$/, '');
    return p.startsWith('/') ? p : DEFAULT_POD_ROOT;
  } catch {
    return DEFAULT_POD_ROOT;
  }
}

// Bytes that continue a path name: a match preceded by one is inside another path
// (/home/u/workspace/x), one followed by one names another directory (/workspaces). A slash
// before it still names it (file:///workspace/x).
const PATH_BYTE = new Uint8Array(256);
const NAME_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-~+@';
for (const ch of NAME_CHARS) PATH_BYTE[ch.charCodeAt(0)] = 1;
const SLASH = 0x2f;

/** True when `buf` names `root` as a path at `at` (root itself, or root/...). */
function namesAt(buf: Buffer, at: number, len: number): boolean {
  if (at > 0 && PATH_BYTE[buf[at - 1]]) return false;
  const next = at + len < buf.length ? buf[at + len] : -1;
  return next === -1 || next === SLASH || !PATH_BYTE[next];
}

/** Streams the first `max` bytes of a regular file (never through a symlink) looking for root. */
function fileNames(abs: string, needle: Buffer, max: number): { found: boolean; read: number } {
  let fd: number;
  try {
    fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return { found: false, read: 0 };
  }
  try {
    if (!fstatSync(fd).isFile()) return { found: false, read: 0 };
    const len = needle.length;
    const chunk = Buffer.allocUnsafe(CHUNK);
    // The last len+1 bytes are carried into the next round: a match across the boundary, with
    // the byte before it, is seen whole. A match at the very end waits for the byte after it.
    let carry = Buffer.alloc(0);
    let read = 0;
    while (read < max) {
      const n = readSync(fd, chunk, 0, Math.min(CHUNK, max - read), null);
      if (n === 0) break;
      read += n;
      const view = Buffer.concat([carry, chunk.subarray(0, n)]);
      const fromStart = read === view.length;
      for (let i = view.indexOf(needle); i !== -1; i = view.indexOf(needle, i + 1)) {
        if ((i === 0 && !fromStart) || i + len === view.length) continue; // decided in another round
        if (namesAt(view, i, len)) return { found: true, read };
      }
      carry = Buffer.from(view.subarray(Math.max(0, view.length - len - 1)));
    }
    const i = carry.length - len;
    const atEnd = i >= 0 && carry.subarray(i).equals(needle) && (i > 0 || read === carry.length);
    const found = atEnd && namesAt(carry, i, len);
    return { found, read };
  } finally {
    closeSync(fd);
  }
}

/** The changes that point into `podRoot`, the pod's path of the workspace. */
export function findPathRefs(changes: Change[], treeDir: string, podRoot: string): PathRefs {
  const needle = Buffer.from(podRoot);
  const refs: PathRef[] = [];
  let budget = SCAN_TOTAL_BYTES;
  let partial = false;
  for (const c of changes) {
    const after = c.after;
    if (c.kind === 'deleted' || c.kind === 'mode' || after === undefined) continue;
    if (after.t === 'l') {
      const t = after.target ?? '';
      if (t === podRoot || t.startsWith(`${podRoot}/`)) refs.push({ path: c.path, via: 'symlink', target: t });
    } else if (after.t === 'f') {
      if (budget <= 0) {
        partial = true;
        continue;
      }
      const r = fileNames(join(treeDir, c.path), needle, Math.min(SCAN_FILE_BYTES, budget));
      budget -= r.read;
      if (r.found) refs.push({ path: c.path, via: 'content' });
    }
  }
  return { podRoot, refs, partial };
}

/** Review's header lines (`# ` commentary, which git apply skips), one per flagged path. */
export function pathRefLines(found: PathRefs): string[] {
  const { refs, podRoot } = found;
  if (refs.length === 0) return [];
  const count = `${refs.length} ${refs.length === 1 ? 'change points' : 'changes point'}`;
  const lines = [
    `# clawpod: ${count} into ${quotePath(podRoot)}, ` +
      'where the pod saw the workspace, a path that does not lead there on the host after apply ' +
      '(rerun with filesystem.workspaceAt: host to get host paths):',
  ];
  for (const r of refs) {
    const what = r.via === 'symlink' ? `symlink to ${quotePath(r.target ?? '')}` : `its content names ${quotePath(`${podRoot}/`)}`;
    lines.push(`#     ${quotePath(r.path)} (${what})`);
  }
  if (found.partial) lines.push(`#     (only the first ${SCAN_TOTAL_BYTES >> 20} MiB of file content were scanned)`);
  return lines;
}

/** The one line `runs apply` prints about them, or null. */
export function pathRefApplyLine(found: PathRefs): string | null {
  const n = found.refs.length;
  if (n === 0) return null;
  const names = found.refs
    .slice(0, 3)
    .map((r) => quotePath(r.path))
    .join(', ');
  return (
    `clawpod: ${n} applied ${n === 1 ? 'file points' : 'files point'} into ${quotePath(found.podRoot)} ` +
    `(e.g. ${names}${n > 3 ? ', ...' : ''}); rerun with filesystem.workspaceAt: host to get host paths`
  );
}
