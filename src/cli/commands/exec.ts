// `clawpod exec`: one command in one fresh pod.
import type { Context } from '../../core/context.js';
import { UserError } from '../../core/errors.js';
import { runExec } from '../../core/exec.js';
import { ignoredAtEnd } from '../../core/record-changes.js';
import { saveTerminal } from '../../core/terminal.js';
import { parseCommand, type Command } from '../args.js';
import { narrowingOf, POD_ENV, POD_OPTIONS } from './common.js';

export const EXEC: Command = {
  name: 'exec',
  usage: '[OPTIONS] [--] CMD [ARG...]',
  summary: 'Run one command in a fresh pod: no network, read-only system, its own copy of the workspace.\nWhat it changes waits for review (clawpod runs diff, then apply or discard).',
  commandAfter: true,
  options: {
    ...POD_OPTIONS,
    json: { type: 'boolean', desc: 'end with a JSON summary of the run on stderr (its last line)' },
  },
  env: POD_ENV,
  exits: [
    ['N', 'the command\'s own exit code'],
    ['124', 'the wall-clock timeout was reached'],
    ['126, 127', 'the command is not executable / not found'],
    ['130', 'interrupted (Ctrl-C)'],
    ['137', 'killed by the memory cap or by clawpod'],
    ['125', 'clawpod could not run it (bad policy, backend missing, a guard it cannot enforce)'],
  ],
  examples: [
    'clawpod exec -- npm test',
    'clawpod exec -p policy.yaml --memory 256Mi -e NODE_ENV=test -- npm ci',
  ],
};

export async function cmdExec(ctx: Context, args: string[]): Promise<number> {
  const { values, positionals, rest } = parseCommand(EXEC, args);
  if (positionals.length) throw new UserError(`unexpected "${positionals[0]}" (put the command after --)`);
  // The pod gets the terminal: whatever it does to it (raw mode, no echo, its size) is undone.
  const terminal = saveTerminal();
  const summary = await runExec(ctx, {
    policy: values.policy as string | undefined,
    workspace: values.workspace as string | undefined,
    backend: values.backend as string | undefined,
    command: rest,
    allowDegraded: Boolean(values['allow-degraded']),
    atHostPath: Boolean(values['at-host-path']),
    narrow: narrowingOf(values),
    removeIfUnchanged: Boolean(values.rm),
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
