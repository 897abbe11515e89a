// The body of one text section of the review diff: unified hunks, or one whole side, with every
// line made inert (see quote.ts). Kept apart from diff.ts, which lays out the sections.
import { structuredPatch } from 'diff';
import type { StructuredPatchHunk } from 'diff';
import { DIFF_MAX_EDITS } from './content.js';
import { escapeText, hasUnsafeText } from './quote.js';

const CONTEXT_LINES = 3;
const NO_NEWLINE = '\\ No newline at end of file';

export interface Body {
  lines: string[];
  /** Some line held a character shown escaped. */
  escaped: boolean;
}

/** Pushes one diff line (marker + text), escaped; returns whether it had to be. */
function push(out: string[], marker: string, text: string): boolean {
  if (!hasUnsafeText(text)) {
    out.push(marker + text);
    return false;
  }
  out.push(marker + escapeText(text));
  return true;
}

/** A text's lines as a diff sees them: no empty last line for a trailing newline. */
function splitLines(text: string): { lines: string[]; newlineAtEnd: boolean } {
  if (text === '') return { lines: [], newlineAtEnd: true };
  const lines = text.split('\n');
  const newlineAtEnd = lines[lines.length - 1] === '';
  if (newlineAtEnd) lines.pop();
  return { lines, newlineAtEnd };
}

/** git omits a count of 1, and an empty side is written as the line before it, ",0". */
export function hunkRange(start: number, count: number): string {
  if (count === 0) return `${start - 1},0`;
  if (count === 1) return `${start}`;
  return `${start},${count}`;
}

function hunkHeader(h: StructuredPatchHunk): string {
  return `@@ -${hunkRange(h.oldStart, h.oldLines)} +${hunkRange(h.newStart, h.newLines)} @@`;
}

/**
 * The old text wholly removed and the new wholly added, in one hunk: for an added, deleted or
 * retyped entry (no diff to compute), and for a pair too different to diff line by line.
 */
export function wholeBody(oldText: string | undefined, newText: string | undefined): Body {
  const o = splitLines(oldText ?? '');
  const n = splitLines(newText ?? '');
  const out: string[] = [];
  if (o.lines.length === 0 && n.lines.length === 0) return { lines: out, escaped: false };
  out.push(`@@ -${hunkRange(1, o.lines.length)} +${hunkRange(1, n.lines.length)} @@`);
  let escaped = false;
  for (const l of o.lines) escaped = push(out, '-', l) || escaped;
  if (!o.newlineAtEnd) out.push(NO_NEWLINE);
  for (const l of n.lines) escaped = push(out, '+', l) || escaped;
  if (!n.newlineAtEnd) out.push(NO_NEWLINE);
  return { lines: out, escaped };
}

/** Unified hunks between two texts; undefined when they differ by more than DIFF_MAX_EDITS lines. */
export function patchBody(oldText: string, newText: string): Body | undefined {
  const patch = structuredPatch('', '', oldText, newText, undefined, undefined, {
    context: CONTEXT_LINES,
    maxEditLength: DIFF_MAX_EDITS,
  });
  if (patch === undefined) return undefined;
  const out: string[] = [];
  let escaped = false;
  for (const h of patch.hunks) {
    out.push(hunkHeader(h));
    // One push per line: a spread of a 100k-line hunk overflows the call stack.
    for (const l of h.lines) {
      if (l === NO_NEWLINE) out.push(l);
      else escaped = push(out, l[0], l.slice(1)) || escaped;
    }
  }
  return { lines: out, escaped };
}
