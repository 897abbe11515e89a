// Renders changes as a git-style unified diff (what `clawpod runs diff` shows) and a stat line.
// Modes are printed as git does (100644, 100755, 120000 for symlinks whose "content" is the
// target); directories have no section of their own, as in git.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { structuredPatch } from 'diff';
import type { StructuredPatchHunk } from 'diff';
import { PERM_MASK } from './changeset.js';
import { isBinary, readRegularFile } from './content.js';
import { quotePath } from './quote.js';
import type { Change, EntryInfo } from './types.js';

const CONTEXT_LINES = 3;

export interface DiffStat {
  files: number;
  insertions: number;
  deletions: number;
  /** git's one-line form, e.g. "2 files changed, 3 insertions(+), 1 deletion(-)". */
  summary: string;
}

export function renderDiff(changes: Change[], csDir: string, workspaceRoot: string): string {
  const treeDir = join(csDir, 'tree');
  let out = '';
  for (const c of changes) {
    const before = hasContent(c.before) && c.kind !== 'added' ? c.before : undefined;
    const after = hasContent(c.after) && c.kind !== 'deleted' ? c.after : undefined;
    if (before === undefined && after === undefined) continue;
    const oldBuf = before && content(join(workspaceRoot, c.path), before);
    const newBuf = after && content(join(treeDir, c.path), after);
    if (c.kind === 'type') {
      // git shows a type change as the old entry deleted and the new one added.
      if (before && oldBuf) out += renderSection(c.path, before, undefined, oldBuf, undefined, isBinary(oldBuf));
      if (after && newBuf) out += renderSection(c.path, undefined, after, undefined, newBuf, isBinary(newBuf));
    } else {
      out += renderSection(c.path, before, after, oldBuf, newBuf, c.binary);
    }
  }
  return out;
}

export function diffStat(changes: Change[]): DiffStat {
  let files = 0;
  let insertions = 0;
  let deletions = 0;
  for (const c of changes) {
    if (!hasContent(c.before) && !hasContent(c.after)) continue;
    files++;
    insertions += c.insertions ?? 0;
    deletions += c.deletions ?? 0;
  }
  return { files, insertions, deletions, summary: formatStatSummary(files, insertions, deletions) };
}

/** Same wording and the same rule for omitting a zero count as `git diff --shortstat`. */
function formatStatSummary(files: number, insertions: number, deletions: number): string {
  if (files === 0) return '0 files changed';
  let s = `${files} ${files === 1 ? 'file' : 'files'} changed`;
  if (insertions > 0 || deletions === 0) s += `, ${insertions} ${insertions === 1 ? 'insertion' : 'insertions'}(+)`;
  if (deletions > 0 || insertions === 0) s += `, ${deletions} ${deletions === 1 ? 'deletion' : 'deletions'}(-)`;
  return s;
}

function hasContent(info: EntryInfo | undefined): info is EntryInfo {
  return info !== undefined && (info.t === 'f' || info.t === 'l');
}

function content(abs: string, info: EntryInfo): Buffer {
  if (info.t === 'l') return Buffer.from(info.target ?? '');
  return readRegularFile(abs) ?? Buffer.alloc(0);
}

function gitMode(info: EntryInfo): string {
  if (info.t === 'l') return '120000';
  return (0o100000 | (info.mode & PERM_MASK)).toString(8);
}

/** One `diff --git` section; a missing side means the entry is added or deleted. */
function renderSection(
  path: string,
  before: EntryInfo | undefined,
  after: EntryInfo | undefined,
  oldBuf: Buffer | undefined,
  newBuf: Buffer | undefined,
  binary: boolean,
): string {
  const oldData = oldBuf ?? Buffer.alloc(0);
  const newData = newBuf ?? Buffer.alloc(0);
  const lines = [`diff --git ${quotePath('a/' + path)} ${quotePath('b/' + path)}`];
  // Blob ids in the index line let `git apply --3way` use the patch, as with git's own output.
  const index = `index ${before ? gitBlobId(oldData) : NULL_ID}..${after ? gitBlobId(newData) : NULL_ID}`;
  if (before === undefined && after !== undefined) lines.push(`new file mode ${gitMode(after)}`, index);
  else if (after === undefined && before !== undefined) lines.push(`deleted file mode ${gitMode(before)}`, index);
  else if (before !== undefined && after !== undefined) {
    const modeChanged = gitMode(before) !== gitMode(after);
    if (modeChanged) lines.push(`old mode ${gitMode(before)}`, `new mode ${gitMode(after)}`);
    if (!oldData.equals(newData)) lines.push(modeChanged ? index : `${index} ${gitMode(after)}`);
  }
  const oldName = before === undefined ? '/dev/null' : quotePath('a/' + path);
  const newName = after === undefined ? '/dev/null' : quotePath('b/' + path);
  if (binary) {
    if (before === undefined || after === undefined || !oldData.equals(newData)) {
      lines.push(`Binary files ${oldName} and ${newName} differ`);
    }
  } else {
    const patch = structuredPatch('', '', oldData.toString('utf8'), newData.toString('utf8'), undefined, undefined, {
      context: CONTEXT_LINES,
    });
    if (patch.hunks.length > 0) {
      lines.push(`--- ${oldName}`, `+++ ${newName}`);
      for (const h of patch.hunks) lines.push(hunkHeader(h), ...h.lines);
    }
  }
  return lines.join('\n') + '\n';
}

const NULL_ID = '0000000';

/** git's abbreviated object id for a blob: sha1 over "blob <size>\0" and the content. */
function gitBlobId(data: Buffer): string {
  return createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex').slice(0, 7);
}

function hunkHeader(h: StructuredPatchHunk): string {
  return `@@ -${hunkRange(h.oldStart, h.oldLines)} +${hunkRange(h.newStart, h.newLines)} @@`;
}

/** git omits a count of 1, and an empty side is written as the line before it, ",0". */
function hunkRange(start: number, count: number): string {
  if (count === 0) return `${start - 1},0`;
  if (count === 1) return `${start}`;
  return `${start},${count}`;
}
