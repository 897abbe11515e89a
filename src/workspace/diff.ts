// Renders a change set for review (what `clawpod runs diff` shows) and a stat line. Files and
// symlinks get git-style sections (modes as git prints them: 100644, 100755, 120000 for a symlink
// whose "content" is its target), so ordinary output reads, and applies, like `git diff`. Every
// other change apply makes (directories added, deleted, re-moded or replaced; special files) gets
// a `# ` line at its place in path order, which git apply skips as commentary. What a pod wrote
// is inert text: names quoted, control characters escaped, large files summarised.
import { join } from 'node:path';
import { PERM_MASK } from './changeset.js';
import type { LoadedChangeSet } from './changeset.js';
import { readRegularFile, showMaxBytes } from './content.js';
import type { ContentScan } from './content.js';
import type { Flag } from './flags.js';
import { rootsText } from './ignore.js';
import { patchBody, wholeBody } from './hunks.js';
import type { Body } from './hunks.js';
import { quotePath } from './quote.js';
import type { Change, EntryInfo } from './types.js';

export interface DiffStat {
  files: number;
  insertions: number;
  deletions: number;
  /** Files whose line counts were not computed (too large to diff). */
  uncounted: number;
  /** git's one-line form, e.g. "2 files changed, 3 insertions(+), 1 deletion(-)". */
  summary: string;
}

/** What the review says besides the changes themselves (all optional: a bare list renders too). */
export interface ReviewNotes {
  opaque?: string[];
  flags?: Flag[];
  gitExcluded?: string[];
  /** Ignored changes left out of this review, and the command that shows them. */
  ignoredNote?: IgnoredNote;
}

export interface IgnoredNote {
  count: number;
  bytes: number;
  roots: string[];
  hint: string;
}

/** Show files up to the --full bounds instead of summarising them past the review ones. */
export interface RenderOptions {
  full?: boolean;
}

export function renderDiff(changes: Change[], csDir: string, workspaceRoot: string, notes: ReviewNotes = {}, opts: RenderOptions = {}): string {
  let out = '';
  for (const chunk of diffChunks(changes, csDir, workspaceRoot, notes, opts)) out += chunk;
  return out;
}

/** The review of a loaded change set: flags and notes first, then every change. */
export function renderReview(loaded: LoadedChangeSet, workspaceRoot: string): string {
  return renderDiff(loaded.changes, join(loaded.treeDir, '..'), workspaceRoot, loaded);
}

/** The same text in pieces (one per change), for output too large to hold as one string. */
export function* diffChunks(changes: Change[], csDir: string, workspaceRoot: string, notes: ReviewNotes = {}, opts: RenderOptions = {}): Generator<string> {
  const head = headerLines(notes);
  if (head.length > 0) yield head.join('\n') + '\n';
  const treeDir = join(csDir, 'tree');
  const opaque = [...(notes.opaque ?? [])].sort();
  // What the workspace held at each opaque path: a file or symlink replaced is not a directory.
  const before = new Map(opaque.length > 0 ? changes.map((x) => [x.path, x.before?.t]) : []);
  const wasDir = (p: string) => (before.get(p) ?? 'd') === 'd';
  const opaqueLine = (p: string) => opaqueNote(p, wasDir(p));
  let o = 0;
  for (const c of changes) {
    let text = '';
    while (o < opaque.length && opaque[o] <= c.path) text += opaqueLine(opaque[o++]);
    text += renderChange(c, treeDir, workspaceRoot, opts.full === true);
    if (text !== '') yield text;
  }
  if (o < opaque.length) yield opaque.slice(o).map(opaqueLine).join('');
}

function headerLines(notes: ReviewNotes): string[] {
  const lines: string[] = [];
  const flags = notes.flags ?? [];
  if (flags.length > 0) {
    lines.push(
      `# clawpod: ${flags.length} ${flags.length === 1 ? 'path' : 'paths'} below can run code or steer tools ` +
        'when a program opens, enters, commits or pushes this folder; review them first (! = runs on the host by itself):',
    );
    for (const f of flags) lines.push(`#   ${f.loud ? '!' : ' '} ${quotePath(f.path)} (${f.kind}): ${f.why}`);
  }
  const excluded = notes.gitExcluded ?? [];
  if (excluded.length > 0) {
    lines.push(
      `# clawpod: ${excluded.length} ${excluded.length === 1 ? 'change' : 'changes'} to .git ` +
        '(git hooks and config run code on the host) left out of this review and of apply; to include them: --include-git',
    );
  }
  if (notes.ignoredNote !== undefined && notes.ignoredNote.count > 0) lines.push(`# ${ignoredLine(notes.ignoredNote)}`);
  return lines;
}

/** "clawpod: 12034 ignored changes (node_modules/, coverage/; 310.2 MiB) not shown: runs diff ID --include-ignored". */
export function ignoredLine(n: IgnoredNote): string {
  return `clawpod: ${n.count} ignored ${n.count === 1 ? 'change' : 'changes'} (${rootsText(n.roots)}; ${formatBytes(n.bytes)}) not shown: ${n.hint}`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

/** Lines for `runs apply` to print after applying: flagged paths, and .git changes left out. */
export function applyNotes(notes: ReviewNotes): string[] {
  const out: string[] = [];
  const flags = notes.flags ?? [];
  if (flags.length > 0) {
    const names = flags
      .slice(0, 5)
      .map((f) => (f.loud ? '!' : '') + quotePath(f.path))
      .join(', ');
    out.push(
      `clawpod: applied ${flags.length} ${flags.length === 1 ? 'path' : 'paths'} that can run code when a tool opens, ` +
        `enters or commits in the folder: ${names}${flags.length > 5 ? ', ...' : ''} (listed at the top of runs diff)`,
    );
  }
  const n = notes.gitExcluded?.length ?? 0;
  if (n > 0) out.push(`clawpod: ${n} ${n === 1 ? 'change' : 'changes'} to .git left out (apply with --include-git after reviewing them)`);
  return out;
}

function opaqueNote(p: string, wasDir: boolean): string {
  if (!wasDir) return `# replaced a file/symlink with a directory: ${quotePath(p + '/')} (apply removes the workspace's ${quotePath(p)})\n`;
  const what = 'the pod removed and recreated it: apply removes whatever it holds that is not below';
  return `# replaced directory: ${quotePath(p + '/')} (${what})\n`;
}

function octal(mode: number): string {
  return (mode & PERM_MASK).toString(8).padStart(4, '0');
}

/** The `# ` line for a change to something that is not a file or a symlink. */
function otherLine(verb: string, p: string, info: EntryInfo, extra = ''): string {
  const name = info.t === 'd' ? quotePath(p + '/') : quotePath(p);
  const what = info.t === 'd' ? 'directory' : 'special file (fifo, socket or device)';
  return `# ${verb} ${what}: ${name}${extra}\n`;
}

const hasContent = (info: EntryInfo | undefined): boolean => info !== undefined && (info.t === 'f' || info.t === 'l');

function renderChange(c: Change, treeDir: string, workspaceRoot: string, full: boolean): string {
  const { before, after } = c;
  const dirs = { treeDir, workspaceRoot, full };
  if (c.kind === 'type') {
    // git shows a type change as the old entry deleted and the new one added.
    return renderSide(c, 'old', before as EntryInfo, dirs) + renderSide(c, 'new', after as EntryInfo, dirs);
  }
  if (c.kind === 'added') return renderSide(c, 'new', after as EntryInfo, dirs);
  if (c.kind === 'deleted') return renderSide(c, 'old', before as EntryInfo, dirs);
  if (before !== undefined && after !== undefined && !hasContent(after)) {
    return otherLine('mode of', c.path, after, ` ${octal(before.mode)} -> ${octal(after.mode)}`);
  }
  return section(c, before, after, dirs);
}

interface Dirs {
  treeDir: string;
  workspaceRoot: string;
  full: boolean;
}

/** One side of an added, deleted or retyped entry. */
function renderSide(c: Change, side: 'old' | 'new', info: EntryInfo, dirs: Dirs): string {
  if (hasContent(info)) return side === 'old' ? section(c, info, undefined, dirs) : section(c, undefined, info, dirs);
  if (side === 'old') return otherLine('deleted', c.path, info);
  if (info.t === 'd') return otherLine('new', c.path, info, ` (mode ${octal(info.mode)})`);
  return otherLine('new', c.path, info, ': apply refuses this change set while it holds one');
}

function gitMode(info: EntryInfo): string {
  if (info.t === 'l') return '120000';
  return (0o100000 | (info.mode & PERM_MASK)).toString(8);
}

const NULL_ID = '0000000';

/** One `diff --git` section; a missing side means the entry is added or deleted. */
function section(c: Change, before: EntryInfo | undefined, after: EntryInfo | undefined, dirs: Dirs): string {
  const oldScan = before && c.oldScan;
  const newScan = after && c.newScan;
  const a = quotePath('a/' + c.path);
  const b = quotePath('b/' + c.path);
  const lines = [`diff --git ${a} ${b}`];
  const sameContent = oldScan !== undefined && newScan !== undefined && oldScan.sha256 === newScan.sha256;
  // Blob ids in the index line let `git apply --3way` use the patch, as with git's own output.
  const index = `index ${oldScan ? oldScan.blobId.slice(0, 7) : NULL_ID}..${newScan ? newScan.blobId.slice(0, 7) : NULL_ID}`;
  if (before === undefined && after !== undefined) lines.push(`new file mode ${gitMode(after)}`, index);
  else if (after === undefined && before !== undefined) lines.push(`deleted file mode ${gitMode(before)}`, index);
  else if (before !== undefined && after !== undefined) {
    const modeChanged = gitMode(before) !== gitMode(after);
    if (modeChanged) lines.push(`old mode ${gitMode(before)}`, `new mode ${gitMode(after)}`);
    if (!sameContent) lines.push(modeChanged ? index : `${index} ${gitMode(after)}`);
  }
  if (sameContent) return lines.join('\n') + '\n';
  const oldName = before === undefined ? '/dev/null' : a;
  const newName = after === undefined ? '/dev/null' : b;
  // Per side: a retyped entry shows each side on its own.
  if (oldScan?.binary === true || newScan?.binary === true) {
    lines.push(`Binary files ${oldName} and ${newName} differ`, `# binary: ${sizes(oldScan, newScan)}`);
    return lines.join('\n') + '\n';
  }
  const body = textBody(c, before, after, dirs);
  if (typeof body === 'string') {
    lines.push(`# ${quotePath(c.path)}: ${body}`);
    return lines.join('\n') + '\n';
  }
  if (body.lines.length === 0) return lines.join('\n') + '\n';
  if (body.escaped) lines.push(`# ${quotePath(c.path)}: control characters in it are shown escaped (\\xNN, \\uNNNN)`);
  if (c.show === 'whole' && before !== undefined && after !== undefined) {
    lines.push(`# ${quotePath(c.path)}: too different to diff line by line; shown as the old text removed and the new added`);
  }
  lines.push(`--- ${oldName}`, `+++ ${newName}`);
  let out = lines.join('\n') + '\n';
  for (const l of body.lines) out += l + '\n';
  return out;
}

function sizes(oldScan: ContentScan | undefined, newScan: ContentScan | undefined): string {
  const s = (x: ContentScan | undefined) => (x === undefined ? 'none' : `${x.size} bytes`);
  return `${s(oldScan)} -> ${s(newScan)}`;
}

/** The hunks, or the one-line summary that stands in for them. */
function textBody(c: Change, before: EntryInfo | undefined, after: EntryInfo | undefined, dirs: Dirs): Body | string {
  const { treeDir, workspaceRoot, full } = dirs;
  const summary = (why: string) => {
    const count = (x: ContentScan | undefined) => (x === undefined ? 'none' : `${x.lines} lines, ${x.size} bytes`);
    const uncounted = c.kind === 'modified' && c.show === 'summary';
    const known = uncounted ? 'changed lines not counted' : `+${c.insertions ?? 0} -${c.deletions ?? 0}`;
    const where = after !== undefined && after.t === 'f' ? join(treeDir, c.path) : join(workspaceRoot, c.path);
    return (
      `${why} (old: ${count(before && c.oldScan)}; new: ${count(after && c.newScan)}); ${known}; ` +
      `review it with an editor: ${quotePath(where)}${full ? '' : ' (or show it with runs diff --full)'}`
    );
  };
  if (c.show === 'summary') return summary('too large to show');
  const oldText = before && text(before, join(workspaceRoot, c.path), full);
  const newText = after && text(after, join(treeDir, c.path), full);
  if (oldText === null || newText === null) return summary('grew too large to show since the change set was read');
  if (before === undefined || after === undefined || c.kind === 'type' || c.show === 'whole') return wholeBody(oldText, newText);
  return patchBody(oldText ?? '', newText ?? '') ?? wholeBody(oldText, newText);
}

/** A side's text; null when the file grew past what is shown. */
function text(info: EntryInfo, abs: string, full: boolean): string | null {
  if (info.t === 'l') return info.target ?? '';
  try {
    return (readRegularFile(abs, showMaxBytes(full)) ?? Buffer.alloc(0)).toString('utf8');
  } catch (e) {
    if (e instanceof RangeError) return null;
    throw e;
  }
}

export function diffStat(changes: Change[]): DiffStat {
  let files = 0;
  let insertions = 0;
  let deletions = 0;
  let uncounted = 0;
  for (const c of changes) {
    if (!hasContent(c.before) && !hasContent(c.after)) continue;
    files++;
    if (c.kind === 'modified' && c.show === 'summary') uncounted++;
    insertions += c.insertions ?? 0;
    deletions += c.deletions ?? 0;
  }
  let summary = formatStatSummary(files, insertions, deletions);
  if (uncounted > 0) summary += ` (${uncounted} too large to count)`;
  return { files, insertions, deletions, uncounted, summary };
}

/** Same wording and the same rule for omitting a zero count as `git diff --shortstat`. */
function formatStatSummary(files: number, insertions: number, deletions: number): string {
  if (files === 0) return '0 files changed';
  let s = `${files} ${files === 1 ? 'file' : 'files'} changed`;
  if (insertions > 0 || deletions === 0) s += `, ${insertions} ${insertions === 1 ? 'insertion' : 'insertions'}(+)`;
  if (deletions > 0 || insertions === 0) s += `, ${deletions} ${deletions === 1 ? 'deletion' : 'deletions'}(-)`;
  return s;
}
