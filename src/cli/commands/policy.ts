// `clawpod policy ...`: check and explain policy files.
import type { Context } from '../../core/context.js';
import { UserError } from '../../core/errors.js';
import { resolveRules } from '../../core/exec.js';
import { explainPolicy } from '../../policy/explain.js';
import { groupHelp, HelpRequest, parseCommand, type Command } from '../args.js';
import { print } from '../output.js';

export const POLICY: Command[] = [
  { name: 'policy check', usage: 'FILE', summary: 'Validate a policy file; exit 125 with one line per problem.', options: {}, examples: ['clawpod policy check policy.yaml'] },
  { name: 'policy explain', usage: '[FILE]', summary: 'What a policy grants, in plain words (default: the built-in strict policy).', options: {}, examples: ['clawpod policy explain', 'clawpod policy explain policy.yaml'] },
];

export async function cmdPolicy(ctx: Context, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '-h' || sub === '--help') throw new HelpRequest(groupHelp('policy', 'Write, check and explain policy files.', POLICY));
  const spec = POLICY.find((c) => c.name === `policy ${sub}`);
  if (!spec) throw new UserError(`unknown policy command "${sub}" (use ${POLICY.map((c) => c.name.split(' ')[1]).join(', ')})`);
  const { positionals } = parseCommand(spec, rest);
  const [file, ...extra] = positionals;
  if (extra.length) throw new UserError(`unexpected "${extra[0]}"`);
  if (sub === 'check') {
    if (!file) throw new UserError('policy check needs a FILE');
    const rules = await resolveRules(ctx, file);
    print(`policy ${rules.source}: ok`);
    return 0;
  }
  const rules = await resolveRules(ctx, file);
  print([`policy ${rules.source}:`, ...explainPolicy(rules).map((l) => `  ${l}`)].join('\n'));
  return 0;
}
