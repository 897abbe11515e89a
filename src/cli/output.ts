// What the command line prints: pod- and model-chosen text made inert on a terminal, colour only
// on a terminal and never with NO_COLOR, JSON for scripts on stdout.
import { jsonInert } from '../core/inert-json.js';
import { safeText } from '../core/terminal.js';

/** Text from runs (file names, commands, diffs) is the pod's or the model's: inert on a terminal. */
export function forTerminal(s: string): string {
  return process.stdout.isTTY ? safeText(s) : s;
}

export function print(s: string): void {
  process.stdout.write(forTerminal(s.endsWith('\n') || s === '' ? s : `${s}\n`));
}

/** A message for the person at the terminal (stderr), one line, made inert. */
export function say(line: string): void {
  process.stderr.write(`${safeText(line)}\n`);
}

/** One JSON document on stdout, for scripts; pod- and model-chosen text in it stays inert. */
export function printJson(v: unknown): void {
  process.stdout.write(`${jsonInert(JSON.stringify(v, null, 2))}\n`);
}

/** Whether a stream gets colour: a terminal, and NO_COLOR unset or empty (no-color.org). */
export function colourOn(stream: NodeJS.WriteStream = process.stdout, env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(stream.isTTY) && !env.NO_COLOR && env.TERM !== 'dumb';
}

const CODES = { red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36, bold: 1, dim: 2 } as const;
export type Colour = keyof typeof CODES;

/** s in colour when `on`; the text itself is never changed. */
export function paint(s: string, c: Colour, on: boolean): string {
  return on ? `\x1b[${CODES[c]}m${s}\x1b[0m` : s;
}

/**
 * Colours a unified diff as it streams (pieces may end mid-line: the rest waits for the next):
 * file headers bold, hunk headers cyan, added lines green, removed red, clawpod's notes yellow.
 * Lines inside a hunk are judged by their first character only, so a removed line that reads
 * "--- x" stays a removed line. The text must already be inert (safeText): colour is only added.
 */
export function diffColourer(on: boolean): { push(s: string): string; end(): string } {
  let held = '';
  let inHunk = false;
  const line = (l: string): string => {
    if (l.startsWith('@@')) {
      inHunk = true;
      return paint(l, 'cyan', on);
    }
    if (inHunk && /^[ +\-\\]/.test(l)) return l[0] === '+' ? paint(l, 'green', on) : l[0] === '-' ? paint(l, 'red', on) : l;
    inHunk = false;
    if (l.startsWith('#')) return paint(l, 'yellow', on);
    return l === '' ? l : paint(l, 'bold', on);
  };
  return {
    push(s) {
      if (!on) return s;
      const parts = (held + s).split('\n');
      held = parts.pop() as string;
      return parts.length ? `${parts.map(line).join('\n')}\n` : '';
    },
    end() {
      const rest = on && held ? line(held) : held;
      held = '';
      return rest;
    },
  };
}
