// The options of `clawpod runs ...`, read through each subcommand's table in commands/runs.ts
// (args.ts parseCommand: --help and "unknown option" with did-you-mean come from the table), and
// the checks that need more than one option. An option that belongs to another subcommand is
// named with the ones it goes with.
import { UserError } from '../core/errors.js';
import { parseDuration } from '../policy/units.js';
import { splitSpecs } from '../workspace/index.js';
import { type Command, parseCommand } from './args.js';

export interface RunsArgs {
  /** The run ids given (rm takes several; the others one). */
  ids: string[];
  id?: string;
  /** diff: path filters after the id (or after --). */
  paths: string[];
  force: boolean;
  limit?: number;
  json: boolean;
  includeGit: boolean;
  includeIgnored: boolean;
  format: 'patch' | 'stat' | 'name-only';
  full: boolean;
  noPager: boolean;
  only: string[];
  exclude: string[];
  /** prune: milliseconds. */
  olderThanMs?: number;
  dryRun: boolean;
  /** apply, discard, rm, prune: start a new decision log after the broken one was moved aside. */
  resetDecisions: boolean;
  /** logs: which streams were asked for (none: all that exist). */
  streams: ('stdout' | 'stderr' | 'transcript' | 'answer')[];
}

/** The most runs one listing shows (the store keeps any number; a terminal does not). */
export const MAX_LIST_LIMIT = 1_000_000;

function refuseForeign(spec: Command, all: Command[], args: string[]): void {
  const dd = args.indexOf('--');
  for (const a of dd === -1 ? args : args.slice(0, dd)) {
    if (!a.startsWith('--')) continue;
    const name = a.slice(2).split('=')[0];
    if (Object.hasOwn(spec.options, name)) continue;
    const owners = all.filter((c) => Object.hasOwn(c.options, name)).map((c) => c.name);
    if (owners.length) throw new UserError(`--${name} goes with ${owners.join(' or ')}, not ${spec.name} (see clawpod ${spec.name} --help)`);
  }
}

export function parseRunsArgs(spec: Command, all: Command[], args: string[]): RunsArgs {
  refuseForeign(spec, all, args);
  const sub = spec.name.split(' ')[1];
  const { values: v, positionals } = parseCommand(spec, args);
  if (v.stat && v['name-only']) throw new UserError('--stat and --name-only are two views: give one of them');
  const [id, ...paths] = positionals;
  if (sub === 'list' || sub === 'prune') {
    if (id !== undefined) throw new UserError(`unexpected "${id}": runs ${sub} takes no run id (see clawpod runs ${sub} --help)`);
  } else if (id === undefined) {
    throw new UserError(`runs ${sub} needs a run id (a unique part of one, or "last"; see clawpod runs list)`);
  }
  if (paths.length > 0 && sub !== 'diff' && sub !== 'rm') {
    throw new UserError(`unexpected "${paths[0]}" after the run id (paths go with runs diff; runs apply takes --only PATHS)`);
  }
  const only = splitSpecs((v.only as string[] | undefined) ?? []);
  const exclude = splitSpecs((v.exclude as string[] | undefined) ?? []);
  if ((v.only && only.length === 0) || (v.exclude && exclude.length === 0)) {
    throw new UserError('--only and --exclude need paths (comma-separated or repeated), e.g. --only src/,README.md');
  }
  const streams = (['stdout', 'stderr', 'transcript', 'answer'] as const).filter((s) => v[s] === true);
  return {
    ids: sub === 'rm' ? positionals : id === undefined ? [] : [id],
    id,
    paths: sub === 'rm' ? [] : paths,
    force: v.force === true,
    limit: limitOf(v.limit),
    json: v.json === true,
    includeGit: v['include-git'] === true,
    includeIgnored: v['include-ignored'] === true,
    full: v.full === true,
    noPager: v['no-pager'] === true,
    format: v.stat ? 'stat' : v['name-only'] ? 'name-only' : 'patch',
    only,
    exclude,
    olderThanMs: olderThanOf(v['older-than']),
    dryRun: v['dry-run'] === true,
    resetDecisions: v['reset-decisions'] === true,
    streams,
  };
}

function limitOf(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const s = String(v);
  const n = /^\d+$/.test(s) ? Number(s) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_LIST_LIMIT) {
    throw new UserError(`--limit must be a whole number from 1 to ${MAX_LIST_LIMIT}, got ${JSON.stringify(s)} (e.g. --limit 10)`);
  }
  return n;
}

/** The longest --older-than: 100 years. Every run is younger, and a cutoff before the year 0
 *  is no date at all (prune would fail on it). */
export const MAX_OLDER_THAN_DAYS = 36_500;

function olderThanOf(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const s = String(v);
  // Days and weeks too: what one prunes by. The policy's durations (s, m, h) for the rest.
  const m = /^(\d+)([dw])$/.exec(s);
  let ms: number;
  if (m) ms = Number(m[1]) * (m[2] === 'd' ? 86_400_000 : 7 * 86_400_000);
  else {
    try {
      ms = parseDuration(s);
    } catch {
      throw new UserError(`--older-than takes a duration such as 30m, 12h, 7d or 2w, got ${JSON.stringify(s)}`);
    }
  }
  if (!(ms <= MAX_OLDER_THAN_DAYS * 86_400_000)) {
    throw new UserError(
      `--older-than is at most ${MAX_OLDER_THAN_DAYS}d (100 years), got ${JSON.stringify(s)} (to prune every finished run, leave --older-than out)`,
    );
  }
  return ms;
}
