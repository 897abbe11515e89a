// Every command's options in one table: the parser, `--help` and the "unknown option" line all
// come from it, so what a command accepts and what it says it accepts cannot drift.
import { parseArgs } from 'node:util';
import { UserError } from '../core/errors.js';
import { nearest } from '../util/nearest.js';

export interface Opt {
  type: 'string' | 'boolean';
  /** One-letter form (-p). */
  short?: string;
  /** The value's name in help (FILE, DIR, N). */
  arg?: string;
  desc: string;
  multiple?: boolean;
}

export interface Command {
  /** "exec", "runs diff". */
  name: string;
  /** What follows `clawpod NAME` in the usage line. */
  usage: string;
  summary: string;
  options: Record<string, Opt>;
  /** Stop at the first word that is not an option: it and the rest are the command (exec). */
  commandAfter?: boolean;
  env?: [string, string][];
  exits?: [string, string][];
  examples: string[];
  /** Notes printed after the options (one paragraph each). */
  notes?: string[];
}

/** Not an error: `--help` was asked for; main prints the text and exits 0. */
export class HelpRequest {
  constructor(readonly text: string) {}
}

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  /** commandAfter: the command and its arguments. */
  rest: string[];
}

/** The variables every command reads. */
export const COMMON_ENV: [string, string][] = [
  ['CLAWPOD_HOME', 'where runs, audit logs and change sets are kept (default ~/.clawpod)'],
  ['NO_COLOR', 'set to anything: no colour on a terminal'],
];

/** Exit codes every command shares. */
export const COMMON_EXITS: [string, string][] = [
  ['0', 'success'],
  ['125', 'clawpod could not do it (bad input, policy or host); the line on stderr says how to fix it'],
];

const HELP: Opt = { type: 'boolean', short: 'h', desc: 'show this help' };

/** A titled two-column table ("environment:", "exit codes:") after a blank line; none when empty. */
function table(lines: string[], title: string, rows: [string, string][]): void {
  if (!rows.length) return;
  const k = Math.max(...rows.map((r) => r[0].length)) + 2;
  lines.push('', `${title}:`, ...rows.map(([a, b]) => `  ${a.padEnd(k)}${b}`));
}

/** Prose broken at spaces into lines of at most `width` (a longer word stays whole). */
function wrap(text: string, width = 100): string[] {
  return text.split('\n').flatMap((para) => {
    const out: string[] = [];
    let line = '';
    for (const word of para.split(' ')) {
      if (line && line.length + 1 + word.length > width) {
        out.push(line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    return [...out, line];
  });
}

export function helpText(c: Command): string {
  const opts = { ...c.options, help: HELP };
  const left = Object.entries(opts).map(([n, o]) => `${o.short ? `-${o.short}, ` : '    '}--${n}${o.arg ? ` ${o.arg}` : ''}`);
  const w = Math.min(30, Math.max(...left.map((l) => l.length)) + 2);
  const lines = [`usage: clawpod ${c.name} ${c.usage}`.trimEnd(), '', ...wrap(c.summary), '', 'options:'];
  Object.values(opts).forEach((o, i) => lines.push(`  ${left[i].padEnd(w)}${left[i].length >= w ? `\n  ${' '.repeat(w)}` : ''}${o.desc}`));
  // One line per option, however long; the prose around them fits a terminal.
  for (const n of c.notes ?? []) lines.push('', ...wrap(n));
  table(lines, 'environment', [...(c.env ?? []), ...COMMON_ENV]);
  table(lines, 'exit codes', c.exits ?? COMMON_EXITS);
  lines.push('', 'examples:', ...c.examples.map((e) => `  ${e}`));
  return `${lines.join('\n')}\n`;
}

// did-you-mean lives in util so the policy validator can use it too (policy must not import cli).
export { distance, nearest } from '../util/nearest.js';

function unknownOption(c: Command, word: string): UserError {
  const name = word.replace(/^--?/, '').split('=')[0];
  const longs = Object.keys(c.options);
  const near = word.startsWith('--') ? nearest(name, [...longs, 'help']) : null;
  const hint = near ? `did you mean --${near}? ` : '';
  const list = longs.length ? `clawpod ${c.name} takes ${longs.map((n) => `--${n}`).join(', ')}` : `clawpod ${c.name} takes no options`;
  return new UserError(`unknown option ${JSON.stringify(word.split('=')[0])} (${hint}${list}; see clawpod ${c.name} --help)`);
}

/** Splits a command's own options from the rest, refusing any option it does not have. */
export function parseCommand(c: Command, args: string[]): Parsed {
  const opts: Record<string, Opt> = { ...c.options, help: HELP };
  const byShort = new Map(
    Object.entries(opts)
      .filter(([, o]) => o.short)
      .map(([n, o]) => [o.short as string, n]),
  );
  const own: string[] = [];
  let rest: string[] = [];
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') {
      if (c.commandAfter) rest = args.slice(i + 1);
      else positionals.push(...args.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      if (c.commandAfter) {
        rest = args.slice(i);
        break;
      }
      positionals.push(a);
      continue;
    }
    let name: string | undefined;
    if (a.startsWith('--')) name = a.slice(2).split('=')[0];
    else {
      // -abc: boolean shorts run together; a string short takes the rest of the word or the next.
      for (let k = 1; k < a.length; k++) {
        const n = byShort.get(a[k]);
        if (!n) throw unknownOption(c, `-${a[k]}`);
        if (opts[n].type === 'string') {
          name = n;
          if (k < a.length - 1) name = `${n}=`;
          break;
        }
        if (n === 'help') throw new HelpRequest(helpText(c));
      }
    }
    if (name === undefined) {
      own.push(a);
      continue;
    }
    const bare = name.replace(/=$/, '');
    if (!Object.hasOwn(opts, bare)) throw unknownOption(c, a);
    if (bare === 'help') throw new HelpRequest(helpText(c));
    own.push(a);
    if (opts[bare].type === 'string' && !a.includes('=') && !name.endsWith('=')) {
      if (i + 1 >= args.length) throw new UserError(`${a} needs a value${opts[bare].arg ? ` (${opts[bare].arg})` : ''}; see clawpod ${c.name} --help`);
      own.push(args[++i]);
    }
  }
  let values: Parsed['values'];
  try {
    const options = Object.fromEntries(
      Object.entries(opts).map(([n, o]) => [n, { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) }]),
    );
    values = parseArgs({ args: own, options, allowPositionals: false, strict: true }).values as Parsed['values'];
  } catch (e) {
    throw new UserError(`${(e as Error).message.split('\n')[0]} (see clawpod ${c.name} --help)`);
  }
  return { values, positionals, rest };
}

/** A positive whole number from an option, or undefined when it was not given. */
export function positiveInt(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UserError(`--${flag} must be a positive whole number (e.g. --${flag} 10)`);
  return n;
}

/** A command group's help: its subcommands, one line each (their usage is in their own help),
 *  the options, variables and exit codes they share, and an example of the first two. */
export function groupHelp(name: string, summary: string, subs: Command[]): string {
  const w = Math.max(...subs.map((s) => s.name.length)) + 2;
  const lines = [
    `usage: clawpod ${name} COMMAND [OPTIONS]`,
    '',
    summary,
    '',
    'commands:',
    ...subs.map((s) => `  ${s.name.padEnd(w)}${s.summary.split('\n')[0]}`),
    '',
    'options:',
    `  -h, --help  ${HELP.desc}`,
  ];
  table(lines, 'environment', COMMON_ENV);
  table(lines, 'exit codes', COMMON_EXITS);
  lines.push(
    '',
    'examples:',
    ...subs.slice(0, 2).map((s) => `  ${s.examples[0]}`),
    '',
    `Run clawpod ${name} COMMAND --help for its options, variables and exit codes.`,
  );
  return `${lines.join('\n')}\n`;
}

/** Refuses a subcommand `group` does not have, naming the nearest one and all of them. Words
 *  that are options (-h, --json) are the group's own to read. */
export function checkSubcommand(group: string, sub: string | undefined, subs: Command[]): void {
  if (sub === undefined || sub.startsWith('-')) return;
  const names = subs.map((c) => c.name.split(' ')[1]);
  if (names.includes(sub)) return;
  const near = nearest(sub, names);
  throw new UserError(
    `unknown ${group} command "${sub}" (${near ? `did you mean ${near}? ` : ''}clawpod ${group} takes ${names.join(', ')}; see clawpod ${group} --help)`,
  );
}
