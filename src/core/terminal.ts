// The user's terminal, which the model and the pod both write to: text is made inert before it
// is printed, an approval shows the whole of what it approves, and a pod that had the terminal
// gives it back as it found it.
import { spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline/promises';
import { StringDecoder } from 'node:string_decoder';
import { Transform } from 'node:stream';

// C0 and C1 controls (ESC starts every terminal sequence; C1 CSI/OSC work alone on some
// terminals), DEL, and the invisible or reordering characters that make text read other than
// it is (bidi overrides and isolates, zero-width, line/paragraph separators). \n and \t stay.
const UNSAFE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]/g;
const NAMED: Record<string, string> = { '\r': '\\r', '\x1b': '\\x1b', '\b': '\\b', '\f': '\\f', '\v': '\\v', '\0': '\\0' };

/** s with every control or invisible character shown as an escape (\x1b, \r, \u{202e}). */
export function safeText(s: string): string {
  return s.replace(UNSAFE, (c) => {
    const n = c.charCodeAt(0);
    return NAMED[c] ?? (n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`);
  });
}

/** safeText over a byte stream (a pod's stderr on its way to the terminal); UTF-8 sequences
 *  split across chunks are joined first. */
export function safeTextStream(): Transform {
  const dec = new StringDecoder('utf8');
  return new Transform({
    transform(chunk: Buffer, _enc, cb) { cb(null, safeText(dec.write(chunk))); },
    flush(cb) { cb(null, safeText(dec.end())); },
  });
}

/** Hard-wraps each line of (already safe) text to width columns; nothing is cut. Lines start
 *  with "│ ", their continuations with "┆ ", so a wrap is never mistaken for a line break. */
export function wrapBlock(text: string, width: number, indent = '  '): string[] {
  const room = Math.max(16, width - indent.length - 2);
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const chars = [...line];
    if (chars.length === 0) { out.push(`${indent}│`); continue; }
    for (let i = 0; i < chars.length; i += room) out.push(`${indent}${i === 0 ? '│' : '┆'} ${chars.slice(i, i + room).join('')}`);
  }
  return out;
}

/** The text of an approval request: the tool's whole input, a command as the command itself. */
export function renderApproval(tool: string, input: Record<string, unknown>, width: number): string {
  const { command, ...rest } = input;
  const shell = tool === 'bash' && typeof command === 'string';
  const body = shell ? command : JSON.stringify(input, null, 2);
  const lines = [`clawpod: the agent asks to run ${safeText(tool)}${shell ? ' with this command' : ''}:`, ...wrapBlock(safeText(body), width)];
  if (shell && Object.keys(rest).length) lines.push('  and these settings:', ...wrapBlock(safeText(JSON.stringify(rest, null, 2)), width));
  return `${lines.join('\n')}\n`;
}

/** Asks on the terminal whether a tool call may run; false without a terminal. */
export async function askApproval(tool: string, input: Record<string, unknown>): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  // The "running in the pod" progress line gives way to the question.
  if (process.stdout.isTTY) process.stdout.write('\r\x1b[K');
  process.stderr.write(`\n${renderApproval(tool, input, process.stderr.columns || 80)}`);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const a = await rl.question(`clawpod: allow this ${safeText(tool)} call? [y/N] `);
    return /^y(es)?$/i.test(a.trim());
  } finally { rl.close(); }
}

export interface TerminalState { restore(): void }

/** Saves the terminal's settings and size when stdin is one; restore() puts back whatever a
 *  pod that had the terminal changed (raw mode, no echo, a bogus window size). */
export function saveTerminal(): TerminalState {
  const out = process.stdout.isTTY ? process.stdout : process.stderr.isTTY ? process.stderr : null;
  if (!process.stdin.isTTY) return { restore() {} };
  // stty works on its stdin: the terminal itself, inherited; -g is its own exact format.
  const stty = (args: string[]) => spawnSync('stty', args, { stdio: ['inherit', 'pipe', 'ignore'], encoding: 'utf8' });
  const saved = stty(['-g']);
  const settings = saved.status === 0 ? saved.stdout.trim() : '';
  const size = out?.getWindowSize();
  return {
    restore() {
      const now = stty(['-g']);
      if (settings && (now.status !== 0 || now.stdout.trim() !== settings)) stty([settings]);
      const after = out?.getWindowSize();
      if (size && after && (after[0] !== size[0] || after[1] !== size[1])) stty(['cols', String(size[0]), 'rows', String(size[1])]);
    },
  };
}
