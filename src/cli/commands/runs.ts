// `clawpod runs ...`: reviewing what runs did, and deciding what reaches the workspace.
import type { Context } from '../../core/context.js';
import { UserError } from '../../core/errors.js';
import { reapInterrupted } from '../../core/exec.js';
import * as r from '../../core/runs.js';
import { safeText } from '../../core/terminal.js';
import { groupHelp, HelpRequest, helpText, type Command } from '../args.js';
import { forTerminal, print } from '../output.js';
import { parseRunsArgs } from '../runs-args.js';

const ID = 'ID is a run id, any unique part of one, or "last".';

export const RUNS: Command[] = [
  { name: 'runs list', usage: '[--limit N]', summary: 'The runs, newest first.', options: { limit: { type: 'string', arg: 'N', desc: 'show at most N runs (default 50)' } }, examples: ['clawpod runs list', 'clawpod runs list --limit 5'] },
  { name: 'runs show', usage: 'ID', summary: 'One run: what ran, how it ended, what it changed.', options: {}, notes: [ID], examples: ['clawpod runs show last'] },
  {
    name: 'runs diff', usage: 'ID [--stat | --name-only] [--full] [--include-ignored] [--include-git] [--] [PATH...]', summary: 'The changes a run left, as a unified diff (or a summary).',
    options: {
      stat: { type: 'boolean', desc: 'one line per file with its size of change' },
      'name-only': { type: 'boolean', desc: 'only the changed paths' },
      full: { type: 'boolean', desc: 'show long files whole instead of summarising them' },
      'include-ignored': { type: 'boolean', desc: 'also changes under .gitignore or filesystem.ignore' },
      'include-git': { type: 'boolean', desc: 'also changes under .git' },
    },
    notes: [ID], examples: ['clawpod runs diff last', 'clawpod runs diff last --stat -- src/'],
  },
  {
    name: 'runs apply', usage: 'ID [--only PATHS] [--exclude PATHS] [--include-ignored] [--include-git] [--force]', summary: 'Write a run\'s changes into the workspace it started from.',
    options: {
      only: { type: 'string', arg: 'PATHS', multiple: true, desc: 'apply only these paths (comma-separated or repeated)' },
      exclude: { type: 'string', arg: 'PATHS', multiple: true, desc: 'apply all but these paths' },
      'include-ignored': { type: 'boolean', desc: 'also apply ignored changes' },
      'include-git': { type: 'boolean', desc: 'also apply changes under .git' },
      force: { type: 'boolean', desc: 'apply over files the workspace changed since the run started' },
    },
    notes: [ID], examples: ['clawpod runs apply last', 'clawpod runs apply last --only src/ --exclude src/generated'],
  },
  { name: 'runs discard', usage: 'ID', summary: 'Drop a run\'s changes; the record and audit log stay.', options: {}, notes: [ID], examples: ['clawpod runs discard last'] },
];

export async function cmdRuns(ctx: Context, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === '-h' || sub === '--help') throw new HelpRequest(groupHelp('runs', 'Review runs: see what they did, then apply or discard their changes.', RUNS));
  const spec = RUNS.find((c) => c.name === `runs ${sub ?? 'list'}`);
  if (!spec) throw new UserError(`unknown runs command "${sub}" (use ${RUNS.map((c) => c.name.split(' ')[1]).join(', ')})`);
  const dd = rest.indexOf('--');
  if ((dd === -1 ? rest : rest.slice(0, dd)).some((a) => a === '-h' || a === '--help')) throw new HelpRequest(helpText(spec));
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
    default: throw new UserError(`unknown runs command "${sub}"`);
  }
}
