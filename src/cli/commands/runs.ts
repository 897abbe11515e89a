// `clawpod runs ...`: reviewing what runs did, deciding what reaches the workspace, and
// removing runs that are done with.
import type { Context } from '../../core/context.js';
import { UserError } from '../../core/errors.js';
import { reapInterrupted } from '../../core/exec.js';
import { logsDocument, pickLogs, renderTranscript, textChunks, transcriptRecords, type LogStream, type TranscriptStyle } from '../../core/run-logs.js';
import * as r from '../../core/runs.js';
import { safeText } from '../../core/terminal.js';
import { groupHelp, HelpRequest, helpText, type Command, type Opt } from '../args.js';
import { colourOn, diffColourer, forTerminal, paint, print, printJson } from '../output.js';
import { openSink, pagerCommand } from '../pager.js';
import { parseRunsArgs, type RunsArgs } from '../runs-args.js';

const ID = 'ID is a run id, any unique part of one (at least 4 characters), or "last".';
const JSON_OPT: Opt = { type: 'boolean', desc: 'one JSON document on stdout, for scripts' };
const RESET_OPT: Opt = {
  type: 'boolean',
  desc: 'after the decision log was found broken and moved aside: start a new one whose first event (decisions.reset) names the old head',
};

export const RUNS: Command[] = [
  {
    name: 'runs list',
    usage: '[--limit N] [--json]',
    summary: 'The runs, newest first: kind, status, exit code, how long they took, what they changed.',
    options: { limit: { type: 'string', arg: 'N', desc: 'show at most N runs (default 50)' }, json: JSON_OPT },
    examples: ['clawpod runs list', 'clawpod runs list --limit 5 --json'],
  },
  {
    name: 'runs show',
    usage: 'ID [--json]',
    summary: 'One run: what ran, how it ended, what it changed, what was decided about it.',
    options: { json: { type: 'boolean', desc: "the run's record and derived fields as one JSON document (what GET /v1/runs/ID returns)" } },
    notes: [ID],
    examples: ['clawpod runs show last', 'clawpod runs show last --json'],
  },
  {
    name: 'runs logs',
    usage: 'ID [--stdout] [--stderr] [--transcript] [--answer] [--json]',
    summary: "What a run kept of its output: the pod's stdout and stderr, an agent's transcript and final answer.",
    options: {
      stdout: { type: 'boolean', desc: "only the pod's standard output" },
      stderr: { type: 'boolean', desc: "only the pod's standard error" },
      transcript: { type: 'boolean', desc: "only the agent's transcript (text, tool calls, results)" },
      answer: { type: 'boolean', desc: "only the agent's final message" },
      json: { type: 'boolean', desc: 'the kept streams as one JSON document (the transcript as its records)' },
    },
    notes: [
      ID,
      "The pod's stdout goes to stdout and its stderr to stderr, as docker logs does. Output is kept redacted; each stream is capped at 8 MiB.",
      "An agent's transcript is shown inert (control characters as escapes): the model's lines start with │, its tools' output with ┊, and clawpod's own lines with ▸ (a tool call), ✓ or ✗ (its result) or [ (a note).",
    ],
    examples: ['clawpod runs logs last', 'clawpod runs logs last --stderr', 'clawpod runs logs last --answer'],
  },
  {
    name: 'runs diff',
    usage: 'ID [--stat | --name-only] [OPTIONS] [--] [PATH...]',
    summary: 'The changes a run left, as a unified diff (or a summary).',
    options: {
      stat: { type: 'boolean', desc: 'one line per file with its size of change' },
      'name-only': { type: 'boolean', desc: 'only the changed paths' },
      full: { type: 'boolean', desc: 'show long files whole instead of summarising them' },
      'include-ignored': { type: 'boolean', desc: 'also changes under .gitignore or filesystem.ignore' },
      'include-git': { type: 'boolean', desc: 'also changes under .git' },
      'no-pager': { type: 'boolean', desc: 'write to the terminal directly, not through $PAGER' },
    },
    env: [['PAGER', 'the pager for a diff on a terminal (default: less, with LESS=FRX); empty or cat: none']],
    notes: [ID, 'On a terminal the diff is coloured (not with NO_COLOR) and goes through the pager; piped, it is plain text.'],
    examples: ['clawpod runs diff last', 'clawpod runs diff last --stat -- src/'],
  },
  {
    name: 'runs apply',
    usage: 'ID [--only PATHS] [--exclude PATHS] [--include-ignored] [--include-git] [--force]',
    summary: "Write a run's changes into the workspace it started from.",
    options: {
      only: { type: 'string', arg: 'PATHS', multiple: true, desc: 'apply only these paths (comma-separated or repeated)' },
      exclude: { type: 'string', arg: 'PATHS', multiple: true, desc: 'apply all but these paths' },
      'include-ignored': { type: 'boolean', desc: 'also apply ignored changes' },
      'include-git': { type: 'boolean', desc: 'also apply changes under .git' },
      force: { type: 'boolean', desc: 'apply over files the workspace changed since the run started (their old copies are kept with the run and listed)' },
      'reset-decisions': RESET_OPT,
    },
    notes: [
      ID,
      'Every apply is recorded in the decision log ($CLAWPOD_HOME/decisions.jsonl, checked by clawpod audit verify): what was applied, by whom, against which workspace state.',
      '--force keeps a copy of each file it overwrites, at most 1 GiB per apply: an apply whose copies would take more (or more than the disk has free) is refused before anything is written.',
    ],
    examples: ['clawpod runs apply last', 'clawpod runs apply last --only src/ --exclude src/generated'],
  },
  {
    name: 'runs discard',
    usage: 'ID',
    summary: "Drop a run's changes; the record and audit log stay (the discard is recorded in the decision log).",
    options: { 'reset-decisions': RESET_OPT },
    notes: [ID],
    examples: ['clawpod runs discard last', 'clawpod runs diff last --stat && clawpod runs discard last'],
  },
  {
    name: 'runs rm',
    usage: 'ID... [--force]',
    summary: 'Remove runs: their records, audit logs, kept output and changes.',
    options: { force: { type: 'boolean', desc: 'also runs whose changes wait for review (they are lost)' }, 'reset-decisions': RESET_OPT },
    notes: [ID, 'A running run is never removed. The decision log keeps what was applied or discarded, and records the removal.'],
    examples: ['clawpod runs rm last', 'clawpod runs rm 3f2a r-20261127-163512-a1b2c3'],
  },
  {
    name: 'runs prune',
    usage: '[--older-than DURATION] [--force] [--dry-run]',
    summary: 'Remove finished runs (all, or those started more than DURATION ago).',
    options: {
      'older-than': { type: 'string', arg: 'DURATION', desc: 'only runs started longer ago than this, e.g. 12h, 7d, 2w' },
      force: { type: 'boolean', desc: 'also runs whose changes wait for review' },
      'dry-run': { type: 'boolean', desc: 'say what would be removed, remove nothing' },
      'reset-decisions': RESET_OPT,
    },
    examples: ['clawpod runs prune --older-than 7d', 'clawpod runs prune --dry-run'],
  },
];

export async function cmdRuns(ctx: Context, argv: string[]): Promise<number> {
  // `clawpod runs` and `clawpod runs --json` are runs list.
  const args = argv.length === 0 || (argv[0].startsWith('-') && argv[0] !== '-h' && argv[0] !== '--help') ? ['list', ...argv] : argv;
  const [sub, ...rest] = args;
  if (sub === '-h' || sub === '--help')
    throw new HelpRequest(groupHelp('runs', 'Review runs: see what they did, apply or discard their changes, remove them.', RUNS));
  const spec = RUNS.find((c) => c.name === `runs ${sub ?? 'list'}`);
  if (!spec) throw new UserError(`unknown runs command "${sub}" (use ${RUNS.map((c) => c.name.split(' ')[1]).join(', ')})`);
  const dd = rest.indexOf('--');
  if ((dd === -1 ? rest : rest.slice(0, dd)).some((a) => a === '-h' || a === '--help')) throw new HelpRequest(helpText(spec));
  const a = parseRunsArgs(spec, RUNS, rest);
  reapInterrupted(ctx);
  const id = a.id;
  switch (sub ?? 'list') {
    case 'list':
      if (a.json) printJson(r.runsListing(ctx, a.limit ?? 50));
      else print(r.runsList(ctx, a.limit ?? 50));
      return 0;
    case 'show':
      if (a.json) printJson(r.runShowJson(ctx, id));
      else print(r.runShow(ctx, id));
      return 0;
    case 'logs':
      return showLogs(ctx, a);
    case 'diff':
      return showDiff(ctx, a);
    case 'apply':
      print(
        r.runApply(ctx, id, a.force, {
          includeGit: a.includeGit,
          includeIgnored: a.includeIgnored,
          only: a.only,
          exclude: a.exclude,
          reset: a.resetDecisions,
        }),
      );
      return 0;
    case 'discard':
      print(r.runDiscard(ctx, id, { reset: a.resetDecisions }));
      return 0;
    case 'rm':
      print(r.removeRuns(ctx, a.ids, a.force, { reset: a.resetDecisions }));
      return 0;
    case 'prune':
      print(r.pruneRuns(ctx, { olderThanMs: a.olderThanMs, force: a.force, dryRun: a.dryRun, reset: a.resetDecisions }));
      return 0;
    default:
      throw new UserError(`unknown runs command "${sub}"`);
  }
}

/** Streamed: a diff can be larger than one string. Through the pager and in colour on a
 *  terminal; stops when the reader (or the pager) goes away. */
async function showDiff(ctx: Context, a: RunsArgs): Promise<number> {
  const tty = Boolean(process.stdout.isTTY);
  const colour = diffColourer(colourOn() && a.format === 'patch');
  const chunks = r.runDiffChunks(
    ctx,
    a.id,
    { includeGit: a.includeGit, includeIgnored: a.includeIgnored, full: a.full, paths: a.paths, format: a.format },
    (line) => process.stderr.write(`${safeText(line)}\n`),
  );
  // The first piece is read before the pager starts: an error (no such run) is one line, and an
  // empty diff opens no pager.
  let next = chunks.next();
  if (next.done) return 0;
  const sink = openSink(pagerCommand({ isTTY: tty, env: process.env, noPager: a.noPager }));
  try {
    for (; !next.done; next = chunks.next()) {
      if (!(await sink.write(colour.push(forTerminal(next.value))))) return 0;
    }
    const tail = colour.end();
    if (tail) await sink.write(tail);
  } finally {
    chunks.return(undefined);
    await sink.end();
  }
  return 0;
}

async function showLogs(ctx: Context, a: RunsArgs): Promise<number> {
  const run = r.findRun(ctx, a.id);
  if (a.json) {
    printJson(logsDocument(run, a.streams as LogStream[]));
    return 0;
  }
  const picked = pickLogs(run, a.streams as LogStream[]);
  if (picked.length === 0) {
    process.stderr.write(`clawpod: run ${run.id} kept no output (runs from before clawpod kept output have none)\n`);
    return 0;
  }
  const errTty = Boolean(process.stderr.isTTY);
  for (const { stream, file } of picked) {
    if (stream === 'stderr') {
      for (const t of textChunks(file)) process.stderr.write(errTty ? safeText(t) : t);
    } else if (stream === 'transcript') {
      // Inert as rendered (colour is added to clawpod's marks only): never escaped again.
      const style = transcriptStyle();
      for (const rec of transcriptRecords(file)) process.stdout.write(renderTranscript(rec, style));
    } else {
      for (const t of textChunks(file)) process.stdout.write(forTerminal(t));
    }
  }
  return 0;
}

/** On a terminal: clawpod's marks in colour, the tools' output dim (the pod's bytes, not the
 *  model's words), and lines wrapped at its width after a marker. */
function transcriptStyle(): TranscriptStyle {
  if (!process.stdout.isTTY) return {};
  const on = colourOn();
  const kinds = { call: 'cyan', ok: 'green', error: 'red', output: 'dim', mark: 'dim' } as const;
  return { paint: (s, part) => paint(s, kinds[part], on), width: process.stdout.columns || 80 };
}
