// The command line: a thin face over src/core. Each command lives in commands/NAME.ts with its
// options table (args.ts): the parser, --help and "unknown option" come from that one table.
// Every failure a user can cause is one line on stderr and its exit code (125 unless the error
// says otherwise); nothing here prints a stack trace.
import { createContext } from '../core/context.js';
import { UserError } from '../core/errors.js';
import { checkSubcommand, nearest } from './args.js';
import { quietOnClosedOutput, reportFailures } from './failures.js';
// exec is the one command imported statically: start-up cost is the bytes Node compiles, so the
// review, policy and agent commands (and what only they use: diff, ignore rules, zod, the model
// SDKs) load when one of them is called. scripts/chunk-report.mjs shows what loads at start.
import { cmdExec } from './commands/exec.js';
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
  serve [OPTIONS]                  the API, the dashboard, a queue and schedules (service mode)
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

async function dispatch(cmd: string | undefined, args: string[]): Promise<number> {
  const ctx = createContext();
  try {
    switch (cmd) {
      case 'exec':
        return await cmdExec(ctx, args);
      case 'run':
        return await (await import('./commands/run.js')).cmdRun(ctx, args);
      case 'runs': {
        const m = await import('./commands/runs.js');
        checkSubcommand('runs', args[0], m.RUNS);
        return await m.cmdRuns(ctx, args);
      }
      case 'audit': {
        const m = await import('./commands/audit.js');
        checkSubcommand('audit', args[0], m.AUDIT);
        return await m.cmdAudit(ctx, args);
      }
      case 'policy': {
        const m = await import('./commands/policy.js');
        checkSubcommand('policy', args[0], m.POLICY);
        return await m.cmdPolicy(ctx, args);
      }
      case 'skills': {
        const m = await import('./commands/skills.js');
        checkSubcommand('skills', args[0], [m.SKILLS]);
        return await m.cmdSkills(ctx, args);
      }
      case 'doctor':
        return await (await import('./commands/doctor.js')).cmdDoctor(ctx, args);
      case 'demo':
        return await (await import('./commands/demo.js')).cmdDemo(ctx, args);
      case 'serve':
        return await (await import('./commands/serve.js')).cmdServe(ctx, args);
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
  return await reportFailures(async () => {
    if (cmd === undefined || cmd === '-h' || cmd === '--help') {
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
  });
}
