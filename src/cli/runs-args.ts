// The options of `clawpod runs ...`: which go with which subcommand, and one line with the fix
// for anything else (an unknown option names the nearest known one).
import { parseArgs } from 'node:util';
import { UserError } from '../core/errors.js';
import { splitSpecs } from '../workspace/index.js';

const SPEC = {
  force: { type: 'boolean' },
  limit: { type: 'string' },
  'include-git': { type: 'boolean' },
  'include-ignored': { type: 'boolean' },
  stat: { type: 'boolean' },
  'name-only': { type: 'boolean' },
  full: { type: 'boolean' },
  only: { type: 'string', multiple: true },
  exclude: { type: 'string', multiple: true },
} as const;

type Name = keyof typeof SPEC;

/** Which subcommands take each option. */
const GOES_WITH: Record<Name, string[]> = {
  force: ['apply'], limit: ['list'], 'include-git': ['diff', 'apply'], 'include-ignored': ['diff', 'apply'],
  stat: ['diff'], 'name-only': ['diff'], full: ['diff'], only: ['apply'], exclude: ['apply'],
};

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  }
  return d[a.length][b.length];
}

function refuseUnknown(sub: string, args: string[]): void {
  const dd = args.indexOf('--');
  for (const a of dd === -1 ? args : args.slice(0, dd)) {
    if (!a.startsWith('-') || a === '-') continue;
    const name = a.replace(/^--?/, '').split('=')[0];
    if (Object.hasOwn(SPEC, name)) continue;
    const known = (Object.keys(SPEC) as Name[]).filter((n) => GOES_WITH[n].includes(sub));
    const near = known.map((n) => [n, distance(name, n)] as const).sort((x, y) => x[1] - y[1])[0];
    const hint = near && (near[1] <= 2 || near[0].startsWith(name)) ? `did you mean --${near[0]}? ` : '';
    const list = known.length ? `runs ${sub} takes ${known.map((n) => `--${n}`).join(', ')}` : `runs ${sub} takes no options`;
    throw new UserError(`unknown option ${JSON.stringify(a.split('=')[0])} (${hint}${list}; paths that start with - go after --)`);
  }
}

export interface RunsArgs {
  id?: string;
  /** diff: path filters after the id (or after --). */
  paths: string[];
  force: boolean;
  limit?: number;
  includeGit: boolean;
  includeIgnored: boolean;
  format: 'patch' | 'stat' | 'name-only';
  full: boolean;
  only: string[];
  exclude: string[];
}

export function parseRunsArgs(sub: string, args: string[]): RunsArgs {
  refuseUnknown(sub, args);
  let parsed;
  try {
    parsed = parseArgs({ args, options: SPEC, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UserError(`${(e as Error).message.split('\n')[0]} (see clawpod --help)`);
  }
  const { values, positionals } = parsed;
  for (const n of Object.keys(values) as Name[]) {
    if (!GOES_WITH[n].includes(sub)) throw new UserError(`--${n} goes with runs ${GOES_WITH[n].join(' or runs ')}, not runs ${sub}`);
  }
  if (values.stat && values['name-only']) throw new UserError('--stat and --name-only are two views: give one of them');
  const [id, ...paths] = positionals;
  if (paths.length > 0 && sub !== 'diff') {
    throw new UserError(`unexpected "${paths[0]}" after the run id (paths go with runs diff; runs apply takes --only PATHS)`);
  }
  const limit = values.limit === undefined ? undefined : Number(values.limit);
  if (limit !== undefined && (!Number.isInteger(limit) || limit <= 0)) throw new UserError('--limit must be a positive whole number');
  const only = splitSpecs(values.only ?? []);
  const exclude = splitSpecs(values.exclude ?? []);
  if ((values.only && only.length === 0) || (values.exclude && exclude.length === 0)) {
    throw new UserError('--only and --exclude need paths (comma-separated or repeated), e.g. --only src/,README.md');
  }
  return {
    id, paths, force: Boolean(values.force), limit, includeGit: Boolean(values['include-git']),
    includeIgnored: Boolean(values['include-ignored']), full: Boolean(values.full),
    format: values.stat ? 'stat' : values['name-only'] ? 'name-only' : 'patch', only, exclude,
  };
}
