// What the command line prints: pod- and model-chosen text made inert on a terminal, colour only
// on a terminal and never with NO_COLOR, JSON for scripts on stdout.
import { safeText } from '../core/terminal.js';

/** Text from runs (file names, commands, diffs) is the pod's or the model's: inert on a terminal. */
export function forTerminal(s: string): string { return process.stdout.isTTY ? safeText(s) : s; }

export function print(s: string): void { process.stdout.write(forTerminal(s.endsWith('\n') || s === '' ? s : `${s}\n`)); }

/** A message for the person at the terminal (stderr), one line, made inert. */
export function say(line: string): void { process.stderr.write(`${safeText(line)}\n`); }

/** One JSON document on stdout, for scripts. */
export function printJson(v: unknown): void { process.stdout.write(`${JSON.stringify(v, null, 2)}\n`); }

/** Whether a stream gets colour: a terminal, and NO_COLOR unset or empty (no-color.org). */
export function colourOn(stream: NodeJS.WriteStream = process.stdout, env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(stream.isTTY) && !env.NO_COLOR && env.TERM !== 'dumb';
}

const CODES = { red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36, bold: 1, dim: 2 } as const;
export type Colour = keyof typeof CODES;

/** s in colour when `on`; the text itself is never changed. */
export function paint(s: string, c: Colour, on: boolean): string { return on ? `\x1b[${CODES[c]}m${s}\x1b[0m` : s; }
