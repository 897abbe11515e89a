// `clawpod demo`: the offline demo (cli/demo.ts), with its options table like every command, so
// `clawpod demo --help` is help and never a demo run.
import type { Context } from '../../core/context.js';
import { UserError } from '../../core/errors.js';
import { parseCommand, type Command } from '../args.js';

export const DEMO: Command = {
  name: 'demo',
  usage: '',
  summary:
    'The agent at work in a throwaway project: it writes and tests a program, finds no SSH keys, uses a scoped\nAPI key it never sees, is refused a leak, and leaves its changes as a diff. Without ANTHROPIC_API_KEY it\nreplays a recorded conversation (and says so) through the real loop, pod, proxy and audit log.',
  options: {},
  env: [['ANTHROPIC_API_KEY', 'set: the same task runs against the real model instead of the replay']],
  exits: [
    ['0', 'the demo ran to its end'],
    ['125', 'clawpod could not run it (a guard this host cannot enforce; see clawpod doctor)'],
  ],
  examples: ['clawpod demo', 'ANTHROPIC_API_KEY=sk-ant-... clawpod demo'],
};

export async function cmdDemo(ctx: Context, args: string[]): Promise<number> {
  const { positionals } = parseCommand(DEMO, args);
  if (positionals.length) throw new UserError(`unexpected "${positionals[0]}": clawpod demo takes no arguments (see clawpod demo --help)`);
  return (await import('../demo.js')).demo(ctx);
}
