// What `runs diff` and `runs apply` pick from a change set: path filters, --only/--exclude, and
// the one-line note for the ignored changes left out. Kept apart from runs.ts, which wires them.
import { pathPredicate, rootsText } from '../workspace/index.js';
import type { Change, IgnoredNote, LoadedChangeSet } from '../workspace/index.js';
import { UserError } from './errors.js';

/** The note for `ignored` (a subset of loaded.ignored): count, size and their topmost paths. */
export function ignoredNoteOf(loaded: LoadedChangeSet, ignored: Change[], hint: string): IgnoredNote | undefined {
  if (ignored.length === 0) return undefined;
  const roots = new Set(loaded.ignoredRoots.map((r) => r.replace(/\/$/, '')));
  const used = new Set<string>();
  let bytes = 0;
  for (const c of ignored) {
    bytes += c.bytes ?? 0;
    let i = c.path.indexOf('/');
    for (;;) {
      const p = i === -1 ? c.path : c.path.slice(0, i);
      if (roots.has(p)) {
        used.add(p);
        break;
      }
      if (i === -1) break;
      i = c.path.indexOf('/', i + 1);
    }
  }
  return { count: ignored.length, bytes, roots: loaded.ignoredRoots.filter((r) => used.has(r.replace(/\/$/, ''))), hint };
}

export interface Selection {
  only?: string[];
  exclude?: string[];
}

/** The changes --only/--exclude pick; each spec must name some change (a typo never applies all). */
export function selectionOf(runId: string, loaded: LoadedChangeSet, sel: Selection): ((c: Change) => boolean) | undefined {
  const only = sel.only?.length ? sel.only : undefined;
  const exclude = sel.exclude?.length ? sel.exclude : undefined;
  if (!only && !exclude) return undefined;
  for (const [flag, specs] of [
    ['--only', only],
    ['--exclude', exclude],
  ] as const) {
    for (const spec of specs ?? []) {
      const hit = pathPredicate([spec]);
      if (loaded.changes.some((c) => hit(c.path))) continue;
      const why = loaded.ignored.some((c) => hit(c.path)) ? 'matches only ignored changes (add --include-ignored)' : 'matches no change';
      throw new UserError(`${flag} ${JSON.stringify(spec)} ${why} of run ${runId} (see runs diff ${runId} --name-only)`);
    }
  }
  const inOnly = only ? pathPredicate(only) : () => true;
  const inExclude = exclude ? pathPredicate(exclude) : () => false;
  return (c) => inOnly(c.path) && !inExclude(c.path);
}

/** The one line naming what apply wrote beyond the paths asked for (undefined when nothing). */
export function broughtAlongLine(written: Change[], picked: (c: Change) => boolean): string | undefined {
  const extra = written.filter((c) => !picked(c));
  if (extra.length === 0) return undefined;
  const names = extra.map((c) => ((c.after ?? c.before)?.t === 'd' ? `${c.path}/` : c.path));
  return (
    `clawpod: also applied ${extra.length} ${extra.length === 1 ? 'change' : 'changes'} beyond the named paths ` + `(they need it): ${rootsText(names, 5)}`
  );
}
