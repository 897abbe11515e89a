// Making pod-chosen text inert before a terminal shows it. Kept apart from paths.ts so errors.ts
// can use it without an import cycle.
//
// A terminal acts on C0 controls (ESC starts sequences that move the cursor, erase lines, set
// the title, and on some terminals answer back), DEL, and C1 controls (U+009B is a one-character
// CSI in many). Bidi overrides and isolates reorder what is shown (the "Trojan Source" trick),
// and zero-width or line/paragraph separators hide or split text. All of them are shown as
// visible escapes, so what a reviewer reads is what the file holds. So are the invisible ones
// used to hide code (Hangul fillers, soft hyphen) or instructions to a model (tag characters).
import { lazyUnsafeGlobal, UNSAFE } from '../util/unsafe-text.js';

// The set itself lives in util/unsafe-text.ts, shared with the terminal. \t and \n are in it;
// callers here handle them.
const UNSAFE_G = lazyUnsafeGlobal();
const UNSAFE_OR_QUOTE_G = lazyUnsafeGlobal('"\\\\');

/** Text escapes: readable names for the usual three, \xNN below U+0100, \uNNNN above. */
function escapeTextChar(ch: string): string {
  const code = ch.codePointAt(0) as number;
  if (ch === '\n') return '\\n';
  if (ch === '\r') return '\\r';
  if (code < 0x100) return '\\x' + code.toString(16).padStart(2, '0');
  if (code > 0xffff) return `\\u{${code.toString(16)}}`;
  return '\\u' + code.toString(16).padStart(4, '0');
}

/** git's quoting inside "...": \n \t \r \" \\ by name, any other byte in octal (git apply reads it back). */
function escapePathChar(ch: string): string {
  const named: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\t': '\\t', '\r': '\\r' };
  if (named[ch] !== undefined) return named[ch];
  let out = '';
  for (const b of Buffer.from(ch)) out += '\\' + b.toString(8).padStart(3, '0');
  return out;
}

/** True when `s` holds any character escapeText would rewrite (tab excepted). */
export function hasUnsafeText(s: string): boolean {
  for (const m of s.matchAll(UNSAFE_G())) if (m[0] !== '\t') return true;
  return false;
}

/**
 * One line of file content for display: tab kept, every other control or reordering character
 * written as `\xNN` / `\uNNNN`. Backslashes are left alone (source code is full of them); a
 * file with escaped characters is marked in the diff, so a literal "\x1b" cannot pass for one.
 */
export function escapeText(s: string): string {
  return s.replace(UNSAFE_G(), (ch) => (ch === '\t' ? ch : escapeTextChar(ch)));
}

/**
 * Quotes a path the way git does when it holds characters that would break a line-oriented
 * format or a terminal. Without this a pod could name a file "x\n+++ b/y" and forge lines in the
 * review diff or in a one-line error, or name it with an escape sequence that erases the line.
 */
export function quotePath(p: string): string {
  if (!UNSAFE.test(p) && !p.includes('"') && !p.includes('\\')) return p;
  return '"' + p.replace(UNSAFE_OR_QUOTE_G(), escapePathChar) + '"';
}

/** A path for a one-line message: quoted, and cut in the middle when it is very long. */
export function shortPath(p: string, max = 160): string {
  if (p.length <= max) return quotePath(p);
  const keep = Math.floor((max - 3) / 2);
  return quotePath(`${p.slice(0, keep)}...${p.slice(-keep)}`) + ` (${Buffer.byteLength(p)} bytes)`;
}
