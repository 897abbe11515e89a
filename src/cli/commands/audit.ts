// `clawpod audit ...`: a run's tamper-evident log, shown or checked.
import type { Context } from '../../core/context.js';
import { UserError } from '../../core/errors.js';
import * as r from '../../core/runs.js';
import { groupHelp, HelpRequest, parseCommand, type Command } from '../args.js';
import { print } from '../output.js';

export const AUDIT: Command[] = [
  { name: 'audit show', usage: 'ID', summary: 'A run\'s audit log, one event per line.', options: {}, examples: ['clawpod audit show last'] },
  {
    name: 'audit verify', usage: 'ID | --all', summary: 'Recompute a run\'s hash chain; exit 1 naming the first bad line.',
    options: { all: { type: 'boolean', desc: 'verify every run' } },
    exits: [['0', 'the chain is intact'], ['1', 'a line was changed, removed or added'], ['125', 'no such run']],
    examples: ['clawpod audit verify last', 'clawpod audit verify --all'],
  },
];

export async function cmdAudit(ctx: Context, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '-h' || sub === '--help') throw new HelpRequest(groupHelp('audit', 'Show or check a run\'s tamper-evident audit log.', AUDIT));
  const spec = AUDIT.find((c) => c.name === `audit ${sub}`);
  if (!spec) throw new UserError(`unknown audit command "${sub}" (use show or verify)`);
  const { values, positionals } = parseCommand(spec, rest);
  if (sub === 'show') { r.auditShow(ctx, positionals[0], (t) => process.stdout.write(t)); return 0; }
  if (!values.all && !positionals[0]) throw new UserError('audit verify needs a run id or --all');
  const [ok, text] = r.auditVerify(ctx, positionals[0], Boolean(values.all));
  print(text);
  return ok ? 0 : 1;
}
