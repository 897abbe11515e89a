// `clawpod audit ...`: a run's tamper-evident log, shown or checked, with the decision log.
import type { Context } from '../../core/context.js';
import { UserError } from '../../core/errors.js';
import * as r from '../../core/runs.js';
import { groupHelp, HelpRequest, parseCommand, type Command } from '../args.js';
import { print, printJson } from '../output.js';

const ID = 'ID is a run id, any unique part of one (at least 4 characters), or "last".';

export const AUDIT: Command[] = [
  {
    name: 'audit show',
    usage: 'ID [--json]',
    summary: "A run's audit log, one event per line.",
    options: { json: { type: 'boolean', desc: 'the events as they are in the chain, one JSON object a line' } },
    notes: [ID],
    examples: ['clawpod audit show last', 'clawpod audit show last --json | jq .type'],
  },
  {
    name: 'audit verify',
    usage: 'ID | --all [--json]',
    summary: "Recompute a run's hash chain, and the decision log's; exit 1 naming the first bad line.",
    options: { all: { type: 'boolean', desc: 'verify every run' }, json: { type: 'boolean', desc: 'the verdicts as one JSON document' } },
    exits: [
      ['0', 'the chains are intact'],
      ['1', 'a line was changed, removed or added'],
      ['125', 'no such run'],
    ],
    notes: [ID, 'The decision log ($CLAWPOD_HOME/decisions.jsonl) records every apply, discard and removal; it is verified with every run.'],
    examples: ['clawpod audit verify last', 'clawpod audit verify --all', 'clawpod audit verify last --json'],
  },
];

export async function cmdAudit(ctx: Context, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '-h' || sub === '--help')
    throw new HelpRequest(groupHelp('audit', "Show or check a run's tamper-evident audit log.", AUDIT));
  const spec = AUDIT.find((c) => c.name === `audit ${sub}`);
  if (!spec) throw new UserError(`unknown audit command "${sub}" (use show or verify)`);
  const { values, positionals } = parseCommand(spec, rest);
  if (positionals.length > 1) throw new UserError(`unexpected "${positionals[1]}" after the run id (see clawpod ${spec.name} --help)`);
  const json = values.json === true;
  if (sub === 'show') {
    if (!positionals[0]) throw new UserError('audit show needs a run id (a unique part of one, or "last"; see clawpod runs list)');
    r.auditShow(ctx, positionals[0], (t) => process.stdout.write(t), json);
    return 0;
  }
  if (!values.all && !positionals[0]) throw new UserError('audit verify needs a run id or --all');
  if (values.all && positionals[0]) throw new UserError('give a run id or --all, not both');
  if (json) {
    const rep = r.auditVerifyReport(ctx, positionals[0], Boolean(values.all));
    // One run: the server's verify answer ({ok, events, head, error?}) and the decision log's.
    if (!values.all) {
      const v = rep.runs[0];
      const error = v.error ?? (rep.decisions.ok ? undefined : `decisions: ${rep.decisions.error}`);
      printJson({ ok: rep.ok, events: v.events ?? null, head: v.head ?? null, ...(error ? { error } : {}), decisions: rep.decisions });
    } else printJson(rep);
    return rep.ok ? 0 : 1;
  }
  const [ok, text] = r.auditVerify(ctx, positionals[0], Boolean(values.all));
  print(text);
  return ok ? 0 : 1;
}
