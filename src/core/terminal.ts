// The user's terminal, which the model and the pod both write to: text is made inert before it
// is printed, an approval shows the whole of what it approves, and a pod that had the terminal
// gives it back as it found it.
import { spawnSync } from 'node:child_process';
import tty from 'node:tty';
import { StringDecoder } from 'node:string_decoder';
import { Transform } from 'node:stream';
import { lazyUnsafeGlobal, PLAIN_TEXT } from '../util/unsafe-text.js';

// Controls, invisible and reordering characters: one set, shared with the review's escaping
// (util/unsafe-text.ts). \n and \t stay.
const UNSAFE_G = lazyUnsafeGlobal();
const NAMED: Record<string, string> = { '\r': '\\r', '\x1b': '\\x1b', '\b': '\\b', '\f': '\\f', '\v': '\\v', '\0': '\\0' };

/** s with every control or invisible character shown as an escape (\x1b, \r, \u{202e}). */
export function safeText(s: string): string {
  if (PLAIN_TEXT.test(s)) return s;
  return s.replace(UNSAFE_G(), (c) => {
    if (c === '\n' || c === '\t') return c;
    const n = c.codePointAt(0) as number;
    return NAMED[c] ?? (n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`);
  });
}

/** safeText over a byte stream (a pod's stderr on its way to the terminal); UTF-8 sequences
 *  split across chunks are joined first. */
export function safeTextStream(): Transform {
  const dec = new StringDecoder('utf8');
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      cb(null, safeText(dec.write(chunk)));
    },
    flush(cb) {
      cb(null, safeText(dec.end()));
    },
  });
}

/** What starts every line a live pod writes to its stderr: no clawpod line starts like it. */
export const POD_PREFIX = 'pod│ ';
/** What starts the rest of a pod line too long to hold (see podStderrStream). */
export const POD_CONTINUED = 'pod┆ ';
/** The most of a live pod's stderr shown on the terminal; the rest is counted, not kept. */
export const POD_STDERR_CAP = 64 * 1024;
const POD_LINE_HOLD = 4096;

/**
 * A live pod's stderr on its way to the terminal. Anything in the pod can write there (bwrap's
 * own init among them), so every line is made inert (safeText: a \r is shown as "\\r" and
 * cannot return the cursor to overwrite the prefix) and starts with POD_PREFIX: a pod cannot
 * fake "clawpod: ... [y/N]". Only whole lines go out, so the pod never leaves the cursor
 * mid-line for clawpod's next line to be glued onto; a partial line is held (once it reaches
 * POD_LINE_HOLD characters it is shown, its rest continued after POD_CONTINUED). Past `cap` bytes
 * the rest is counted, not kept, and one line says how much when the stream ends.
 */
export function podStderrStream(cap = POD_STDERR_CAP): Transform {
  const dec = new StringDecoder('utf8');
  let shown = 0;
  let dropped = 0;
  let held = '';
  let lead = POD_PREFIX;
  const emit = (text: string, end: boolean): string => {
    const parts = (held + text).split('\n');
    held = parts.pop() as string;
    let out = '';
    // A \r right before \n moves nothing that is then overwritten: dropped for CRLF output.
    for (const line of parts) {
      out += `${lead}${safeText(line.replace(/\r$/, ''))}\n`;
      lead = POD_PREFIX;
    }
    if (held.length > 0 && (end || held.length >= POD_LINE_HOLD)) {
      out += `${lead}${safeText(held)}\n`;
      held = '';
      lead = POD_CONTINUED;
    }
    return out;
  };
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      const take = chunk.subarray(0, Math.max(0, cap - shown));
      shown += take.length;
      dropped += chunk.length - take.length;
      cb(null, take.length > 0 ? emit(dec.write(take), false) : '');
    },
    flush(cb) {
      let out = emit(dec.end(), true);
      if (dropped > 0) out += `clawpod: further pod stderr dropped (${dropped} bytes)\n`;
      cb(null, out);
    },
  });
}

/** Hard-wraps each line of (already safe) text to width columns; nothing is cut. Lines start
 *  with "│ ", their continuations with "┆ ", so a wrap is never mistaken for a line break. */
export function wrapBlock(text: string, width: number, indent = '  '): string[] {
  const room = Math.max(16, width - indent.length - 2);
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const chars = [...line];
    if (chars.length === 0) {
      out.push(`${indent}│`);
      continue;
    }
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

export interface TerminalState {
  restore(): void;
}

/** Saves the terminal's settings and size when stdin is one; restore() puts back whatever a
 *  pod that had the terminal changed (raw mode, no echo, a bogus window size). */
export function saveTerminal(): TerminalState {
  // Whichever of stdin, stdout and stderr is the terminal: a pod can reach it through any of them
  // (TIOCSWINSZ on its stdout changes the size just as well).
  const fd = [0, 1, 2].find((n) => tty.isatty(n));
  if (fd === undefined) return { restore() {} };
  // stty works on its stdin: the terminal itself, by descriptor; -g is its own exact format.
  const stty = (args: string[]) => spawnSync('stty', args, { stdio: [fd, 'pipe', 'ignore'], encoding: 'utf8' });
  const saved = stty(['-g']);
  const settings = saved.status === 0 ? saved.stdout.trim() : '';
  const sized = stty(['size']);
  const size = sized.status === 0 ? sized.stdout.trim() : '';
  return {
    restore() {
      const now = stty(['-g']);
      if (settings && (now.status !== 0 || now.stdout.trim() !== settings)) stty([settings]);
      const after = stty(['size']);
      const [rows, cols] = size.split(' ');
      if (rows && cols && after.stdout.trim() !== size) stty(['rows', rows, 'cols', cols]);
    },
  };
}
