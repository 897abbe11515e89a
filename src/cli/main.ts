// The command line: a thin face over src/core. Every failure a user can cause is one line on
// stderr and exit 125; nothing here prints a stack trace.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createContext, type Context } from '../core/context.js';
import { UserError } from '../core/errors.js';
import { reapInterrupted, resolveRules, resolveWorkspace, runExec } from '../core/exec.js';
import * as r from '../core/runs.js';
import { ignoredAtEnd } from '../core/record-changes.js';
import { parseRunsArgs } from './runs-args.js';
import { explainPolicy } from '../policy/explain.js';
import { PolicyError } from '../policy/errors.js';
import { PodError } from '../pod/types.js';
import { safeText, saveTerminal } from '../core/terminal.js';
import { ChangeSetError, UnsafePathError, WorkspaceChangedError } from '../workspace/errors.js';

const USAGE = `usage:
  clawpod exec [--policy FILE] [--workspace DIR] [--at-host-path] [--backend NAME] [--json] [--allow-degraded] -- CMD [ARG...]
  clawpod run  [--policy FILE] [--workspace DIR] [--at-host-path] [--backend NAME] [--model NAME] [--memory NAME] [--max-turns N] [--max-tokens N] "TASK"
  clawpod runs list | show ID | discard ID
  clawpod runs diff ID [--stat | --name-only] [--full] [--include-ignored] [--include-git] [--] [PATH...]
  clawpod runs apply ID [--only PATHS] [--exclude PATHS] [--include-ignored] [--include-git] [--force]
  clawpod audit show ID | verify ID | verify --all
  clawpod policy check FILE | policy explain [FILE]
  clawpod skills list [--policy FILE] [--workspace DIR]
  clawpod doctor
  clawpod demo`;

const EXEC_OPTS = { policy: 'string', workspace: 'string', backend: 'string', json: 'boolean', 'allow-degraded': 'boolean', 'at-host-path': 'boolean' } as const;

/** Splits exec's own options from the command: at "--", or at the first non-option word. */
export function splitExecArgs(args: string[]): { opts: string[]; command: string[] } {
  const dd = args.indexOf('--');
  if (dd >= 0) return { opts: args.slice(0, dd), command: args.slice(dd + 1) };
  const opts: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('-')) return { opts, command: args.slice(i) };
    opts.push(a);
    const name = a.replace(/^--?/, '').split('=')[0];
    if (!a.includes('=') && (EXEC_OPTS as Record<string, string>)[name] === 'string' && i + 1 < args.length) opts.push(args[++i]);
  }
  return { opts, command: [] };
}

function parse<T extends Record<string, { type: 'string' | 'boolean' }>>(args: string[], options: T, positionals = true) {
  try {
    return parseArgs({ args, options, allowPositionals: positionals, strict: true });
  } catch (e) {
    throw new UserError(`${(e as Error).message.split('\n')[0]} (see clawpod --help)`);
  }
}

async function cmdExec(ctx: Context, args: string[]): Promise<number> {
  const { opts, command } = splitExecArgs(args);
  const spec = Object.fromEntries(Object.entries(EXEC_OPTS).map(([k, t]) => [k, { type: t }])) as Record<string, { type: 'string' | 'boolean' }>;
  const { values, positionals } = parse(opts, spec);
  if (positionals.length) throw new UserError(`unexpected "${positionals[0]}" (put the command after --)`);
  // The pod gets the terminal: whatever it does to it (raw mode, no echo, its size) is undone.
  const terminal = saveTerminal();
  const summary = await runExec(ctx, {
    policy: values.policy as string | undefined,
    workspace: values.workspace as string | undefined,
    backend: values.backend as string | undefined,
    command,
    allowDegraded: Boolean(values['allow-degraded']),
    atHostPath: Boolean(values['at-host-path']),
    stdio: 'inherit',
    cwd: process.cwd(),
  }).finally(() => terminal.restore());
  // Memory and pids kills were already told as they happened (with who and the policy key).
  if (summary.limitHit && summary.limitHit !== 'memory' && summary.limitHit !== 'pids') {
    process.stderr.write(`clawpod: ${summary.limitHit} limit hit: pod killed\n`);
  }
  if (summary.filesChanged > 0) {
    const ignored = ignoredAtEnd(ctx.runDir(summary.run));
    const held = ignored > 0 ? ` (${ignored} of them ignored: not shown or applied unless asked)` : '';
    process.stderr.write(`clawpod: ${summary.filesChanged} change(s) waiting${held}: clawpod runs diff ${summary.run} (then apply or discard)\n`);
  }
  if (values.json) process.stderr.write(`${JSON.stringify(summary)}\n`);
  return summary.exitCode;
}

async function cmdRun(ctx: Context, args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    policy: { type: 'string' }, workspace: { type: 'string' }, backend: { type: 'string' }, model: { type: 'string' },
    'max-turns': { type: 'string' }, 'max-tokens': { type: 'string' }, 'allow-degraded': { type: 'boolean' }, memory: { type: 'string' },
    'at-host-path': { type: 'boolean' },
  });
  const num = (v: unknown, flag: string) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new UserError(`--${flag} must be a positive whole number`);
    return n;
  };
  const { runTask } = await import('../core/run.js');
  const r = await runTask(ctx, {
    policy: values.policy as string | undefined, workspace: values.workspace as string | undefined,
    backend: values.backend as string | undefined, model: values.model as string | undefined,
    task: positionals.join(' '), allowDegraded: Boolean(values['allow-degraded']), cwd: process.cwd(),
    maxTurns: num(values['max-turns'], 'max-turns'), maxTokens: num(values['max-tokens'], 'max-tokens'),
    memory: values.memory as string | undefined, atHostPath: Boolean(values['at-host-path']),
  });
  return r.exitCode;
}

async function cmdSkills(ctx: Context, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'list' && sub !== undefined) throw new UserError(`unknown skills command "${sub}" (use list)`);
  const { values } = parse(rest, { policy: { type: 'string' }, workspace: { type: 'string' } }, false);
  const { discoverSkills, skillsTable } = await import('../agent/skills.js');
  const rules = await resolveRules(ctx, values.policy as string | undefined);
  const workspace = resolveWorkspace(ctx, rules, values.workspace as string | undefined, process.cwd());
  const found = discoverSkills({ userDir: path.join(ctx.clawpodHome, 'skills'), workspace, rules });
  print(skillsTable(found.skills, found.problems) || 'no skills (add folders with a SKILL.md to ~/.clawpod/skills or .clawpod/skills)');
  return 0;
}

async function cmdRuns(ctx: Context, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const a = parseRunsArgs(sub ?? 'list', rest);
  reapInterrupted(ctx);
  const id = a.id;
  switch (sub) {
    case 'list': case undefined: print(r.runsList(ctx, a.limit ?? 50)); return 0;
    case 'show': print(r.runShow(ctx, id)); return 0;
    case 'diff':
      // Streamed: a diff can be larger than one string; stops when the reader goes away.
      r.runDiffTo(ctx, id, { includeGit: a.includeGit, includeIgnored: a.includeIgnored, full: a.full, paths: a.paths, format: a.format },
        (s) => { process.stdout.write(forTerminal(s)); return !process.stdout.destroyed; },
        (line) => process.stderr.write(`${safeText(line)}\n`));
      return 0;
    case 'apply':
      print(r.runApply(ctx, id, a.force, { includeGit: a.includeGit, includeIgnored: a.includeIgnored, only: a.only, exclude: a.exclude }));
      return 0;
    case 'discard': print(r.runDiscard(ctx, id)); return 0;
    default: throw new UserError(`unknown runs command "${sub}" (use list, show, diff, apply or discard)`);
  }
}

async function cmdAudit(ctx: Context, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parse(rest, { all: { type: 'boolean' } });
  if (sub === 'show') { r.auditShow(ctx, positionals[0], (t) => process.stdout.write(t)); return 0; }
  if (sub === 'verify') {
    if (!values.all && !positionals[0]) throw new UserError('audit verify needs a run id or --all');
    const [ok, text] = r.auditVerify(ctx, positionals[0], Boolean(values.all));
    print(text);
    return ok ? 0 : 1;
  }
  throw new UserError(`unknown audit command "${sub ?? ''}" (use show or verify)`);
}

async function cmdPolicy(ctx: Context, args: string[]): Promise<number> {
  const [sub, file, ...extra] = args;
  if (extra.length) throw new UserError(`unexpected "${extra[0]}"`);
  if (sub === 'check') {
    if (!file) throw new UserError('policy check needs a FILE');
    const rules = await resolveRules(ctx, file);
    print(`policy ${rules.source}: ok`);
    return 0;
  }
  if (sub === 'explain') {
    const rules = await resolveRules(ctx, file);
    print([`policy ${rules.source}:`, ...explainPolicy(rules).map((l) => `  ${l}`)].join('\n'));
    return 0;
  }
  throw new UserError(`unknown policy command "${sub ?? ''}" (use check or explain)`);
}

async function cmdDoctor(ctx: Context): Promise<number> {
  const guards = ctx.backend('bwrap').probe();
  const mark = { active: 'active  ', degraded: 'degraded', missing: 'MISSING ' };
  const lines = ['clawpod doctor: bwrap backend on this host', ''];
  for (const g of guards) {
    lines.push(`  ${mark[g.state]}  ${g.name.padEnd(18)} ${g.detail}`);
    if (g.fix) lines.push(`  ${' '.repeat(10)}${' '.repeat(19)}fix: ${g.fix}`);
  }
  const refuse = guards.filter((g) => g.state === 'missing');
  lines.push('', refuse.length
    ? `${refuse.length} guard(s) missing: pods refuse to start${refuse.every((g) => g.cap) ? ' unless --allow-degraded' : ''}`
    : 'all guards a pod needs are active');
  print(lines.join('\n'));
  return refuse.some((g) => !g.cap) ? 1 : 0;
}

/** Text from runs (file names, commands, diffs) is the pod's or the model's: inert on a terminal. */
function forTerminal(s: string): string { return process.stdout.isTTY ? safeText(s) : s; }

function print(s: string): void { process.stdout.write(forTerminal(s.endsWith('\n') || s === '' ? s : `${s}\n`)); }

/** A reader that goes away (`clawpod audit show ID | head`) ends the output, never with a stack
 *  trace. exec and run carry on quietly: the pod's run must still be recorded. */
function quietOnClosedOutput(cmd: string | undefined): void {
  const onError = (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
    if (cmd !== 'exec' && cmd !== 'run') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  };
  process.stdout.on('error', onError);
  process.stderr.on('error', onError);
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...args] = argv;
  quietOnClosedOutput(cmd);
  const ctx = createContext();
  try {
    switch (cmd) {
      case 'exec': return await cmdExec(ctx, args);
      case 'runs': return await cmdRuns(ctx, args);
      case 'skills': return await cmdSkills(ctx, args);
      case 'audit': return await cmdAudit(ctx, args);
      case 'policy': return await cmdPolicy(ctx, args);
      case 'doctor': return await cmdDoctor(ctx);
      case 'demo': return await (await import('./demo.js')).demo(ctx);
      case 'run': return await cmdRun(ctx, args);
      case 'serve': throw new UserError('clawpod serve is not available yet');
      case undefined: case '-h': case '--help': case 'help': print(USAGE); return cmd ? 0 : 125;
      default: throw new UserError(`unknown command "${cmd}" (see clawpod --help)`);
    }
  } catch (e) {
    // The workspace's errors name the path and the fix in one line (a change set that cannot be
    // reviewed, a workspace that moved on, a path apply will not write through).
    if (e instanceof UserError || e instanceof PolicyError || e instanceof PodError || e instanceof ChangeSetError ||
      e instanceof WorkspaceChangedError || e instanceof UnsafePathError) {
      process.stderr.write(`clawpod: ${safeText(e.message)}\n`);
      return (e as { exitCode?: number }).exitCode ?? 125;
    }
    const err = e as NodeJS.ErrnoException;
    process.stderr.write(`clawpod: internal error: ${safeText(err.message ?? String(e))}${err.code ? ` (${err.code})` : ''}\n`);
    if (process.env.CLAWPOD_DEBUG) process.stderr.write(`${err.stack}\n`);
    return 125;
  } finally {
    ctx.close();
  }
}
