// Picking part of a change set: path filters for `runs diff ID [--] PATH...` and
// `runs apply ID --only/--exclude PATHS`. A spec is a path prefix ("src", "src/", "docs/x.md")
// or a glob ("src/*.ts", "**/*.test.ts": `*` and `?` stay within one name, `**` crosses
// directories); either selects the path it names and everything below it.
import { ancestorsOf, isAtOrUnder } from './paths.js';
import type { Change } from './types.js';

export type PathPredicate = (rel: string) => boolean;

const GLOB = /[*?[]/;

function globRegex(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i];
    if (ch === '*' && glob[i + 1] === '*') {
      // "**/" matches zero or more directories; a trailing "**" anything.
      if (glob[i + 2] === '/') {
        re += '(?:.*/)?';
        i += 2;
      } else {
        re += '.*';
        i += 1;
      }
    } else if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end === -1) {
        re += '\\[';
        continue;
      }
      const body = glob
        .slice(i + 1, end)
        .replace(/^!/, '^')
        .replace(/\\/g, '\\\\');
      re += `[${body}]`;
      i = end;
    } else re += ch.replace(/[.+^${}()|\\]/g, (c) => `\\${c}`);
  }
  return new RegExp(`^${re}$`, 'u');
}

/** One predicate for a list of specs (any of them matches). Specs are workspace-relative. */
export function pathPredicate(specs: string[]): PathPredicate {
  const tests = specs.map((raw) => {
    const spec = raw.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
    if (spec === '' || spec === '.') return () => true;
    if (!GLOB.test(spec)) return (rel: string) => isAtOrUnder(rel, spec);
    const re = globRegex(spec);
    return (rel: string) => re.test(rel) || ancestorsOf(rel).some((a) => re.test(a));
  });
  return (rel) => tests.some((t) => t(rel));
}

/** "a,b" and repeated options alike, empty items dropped. */
export function splitSpecs(values: string[]): string[] {
  return values
    .flatMap((v) => v.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/**
 * The changes to apply when only `picked` ones were asked for, made applicable: a directory
 * the pod created (or turned into a directory) that a picked change lies in comes along; the
 * deletion or retyping of a directory stays behind while anything below it does (it could not
 * be done without taking that along: apply removes a directory with all it holds). Returned in
 * path order.
 */
/** The changes `runs apply --only`/`--exclude` writes for `picked`, and so what `runs diff PATHS`
 *  shows: one function for both, so the two cannot drift. A file the pod turned into a directory
 *  comes along with what it put below; ignored changes left out stay behind whole. */
export function pickedChanges(loaded: { changes: Change[]; ignored: Change[] }, picked: (c: Change) => boolean, includeIgnored: boolean): Change[] {
  return selectChanges(loaded.changes, picked, includeIgnored ? [] : loaded.ignored.map((c) => c.path));
}

export function selectChanges(all: Change[], picked: (c: Change) => boolean, alsoLeft: string[] = []): Change[] {
  const byPath = new Map(all.map((c) => [c.path, c]));
  const chosen = new Set<string>();
  for (const c of all) {
    if (!picked(c)) continue;
    chosen.add(c.path);
    if (c.kind === 'deleted') continue;
    for (const a of ancestorsOf(c.path)) {
      const anc = byPath.get(a);
      if (anc !== undefined && anc.kind !== 'deleted' && anc.kind !== 'mode') chosen.add(a);
    }
  }
  // alsoLeft: changes not offered at all (ignored ones not included) stay behind too.
  const holdsLeft = new Set<string>();
  for (const p of [...all.filter((c) => !chosen.has(c.path)).map((c) => c.path), ...alsoLeft]) {
    for (const a of ancestorsOf(p)) holdsLeft.add(a);
  }
  const removesDir = (c: Change) => (c.kind === 'deleted' || c.kind === 'type') && c.before?.t === 'd';
  return all.filter((c) => chosen.has(c.path) && !(removesDir(c) && holdsLeft.has(c.path)));
}
