// The command line: a thin face over src/core. Each command lives in commands/NAME.ts with its
// options table (args.ts): the parser, --help and "unknown option" come from that one table.
// Every failure a user can cause is one line on stderr and its exit code (125 unless the error
// says otherwise); nothing here prints a stack trace.
import { createContext } from '../core/context.js';
import { UserError } from '../core/errors.js';
import { safeText } from '../core/terminal.js';
import { isUserCaused } from '../util/errors.js';
import { checkSubcommand, HelpRequest, nearest } from './args.js';
// Statically imported: one bundle chunk for every short command (each extra ESM chunk is a
// module load on every start); the agent's run and the demo stay lazily loaded (model SDKs).
import * as auditCmd from './commands/audit.js';
import { cmdDoctor } from './commands/doctor.js';
import { cmdExec } from './commands/exec.js';
import * as policyCmd from './commands/policy.js';
import * as runsCmd from './commands/runs.js';
import * as skillsCmd from './commands/skills.js';
import { print } from './output.js';

const USAGE = `usage: clawpod COMMAND [OPTIONS]

Every command, and every tool an agent uses, runs in its own disposable pod. What a pod changes
waits for review; nothing reaches your workspace until you apply it.

commands:
  exec [OPTIONS] -- CMD [ARG...]   run one command in a fresh pod
  run [OPTIONS] "TASK"             give the agent a task; its tools run in one pod
  runs list|show|logs|diff|apply|discard|rm|prune
                                   review runs and their changes, remove old ones
  audit show|verify                show or check a run's tamper-evident log
  policy init|check|explain        write, check or explain a policy file
  skills list                      the Agent Skills a task would load
  doctor                           what this host can enforce, and the fix for each gap
  demo                             an offline demo (no API key needed)

options:
  -h, --help       help (also after any command: clawpod exec --help)
  -V, --version    the version and the commit it was built from

Run clawpod COMMAND --help for a command's options, variables and exit codes.`;

const COMMANDS = ['exec', 'run', 'runs', 'audit', 'policy', 'skills', 'doctor', 'demo', 'serve', 'help'];

declare const __CLAWPOD_VERSION__: string | undefined;
declare const __CLAWPOD_COMMIT__: string | undefined;

async function version(): Promise<string> {
  let v = typeof __CLAWPOD_VERSION__ === 'string' ? __CLAWPOD_VERSION__ : '';
  let commit = typeof __CLAWPOD_COMMIT__ === 'string' ? __CLAWPOD_COMMIT__ : '';
  if (!v || !commit) {
    // Unbundled (tests import dist/src directly): read them from the checkout.
    const { readFileSync } = await import('node:fs');
    const { spawnSync } = await import('node:child_process');
    const { packageRoot } = await import('../util/root.js');
    v ||= (JSON.parse(readFileSync(`${packageRoot()}/package.json`, 'utf8')) as { version: string }).version;
    commit ||= spawnSync('git', ['-C', packageRoot(), 'rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8' }).stdout?.trim() || 'unknown';
  }
  return `clawpod ${v} (commit ${commit})`;
}

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

async function dispatch(cmd: string | undefined, args: string[]): Promise<number> {
  const ctx = createContext();
  try {
    switch (cmd) {
      case 'exec':
        return await cmdExec(ctx, args);
      case 'run':
        return await (await import('./commands/run.js')).cmdRun(ctx, args);
      case 'runs': {
        const m = runsCmd;
        checkSubcommand('runs', args[0], m.RUNS);
        return await m.cmdRuns(ctx, args);
      }
      case 'audit': {
        const m = auditCmd;
        checkSubcommand('audit', args[0], m.AUDIT);
        return await m.cmdAudit(ctx, args);
      }
      case 'policy': {
        const m = policyCmd;
        checkSubcommand('policy', args[0], m.POLICY);
        return await m.cmdPolicy(ctx, args);
      }
      case 'skills': {
        const m = skillsCmd;
        checkSubcommand('skills', args[0], [m.SKILLS]);
        return await m.cmdSkills(ctx, args);
      }
      case 'doctor':
        return await cmdDoctor(ctx, args);
      case 'demo':
        return await (await import('./commands/demo.js')).cmdDemo(ctx, args);
      case 'serve':
        throw new UserError('clawpod serve is not available yet');
      default: {
        const near = cmd ? nearest(cmd, COMMANDS) : null;
        throw new UserError(`unknown command "${cmd}" (${near ? `did you mean ${near}? ` : ''}see clawpod --help)`);
      }
    }
  } finally {
    ctx.close();
  }
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...args] = argv;
  quietOnClosedOutput(cmd);
  try {
    if (cmd === undefined) {
      print(USAGE);
      return 0;
    }
    if (cmd === '-h' || cmd === '--help') {
      print(USAGE);
      return 0;
    }
    if (cmd === 'help') {
      if (!args.length) {
        print(USAGE);
        return 0;
      }
      return await main([...args, '--help']);
    }
    if (cmd === '-V' || cmd === '--version' || cmd === 'version') {
      print(await version());
      return 0;
    }
    return await dispatch(cmd, args);
  } catch (e) {
    if (e instanceof HelpRequest) {
      print(e.text);
      return 0;
    }
    // Every user-causable error names the problem and the fix in one line (util/errors.ts).
    if (isUserCaused(e)) {
      process.stderr.write(`clawpod: ${safeText(e.message)}\n`);
      return e.exitCode;
    }
    const err = e as NodeJS.ErrnoException;
    process.stderr.write(`clawpod: internal error: ${safeText(err.message ?? String(e))}${err.code ? ` (${err.code})` : ''}\n`);
    if (process.env.CLAWPOD_DEBUG) process.stderr.write(`${err.stack}\n`);
    return 125;
  }
}
