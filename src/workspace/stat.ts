// `runs diff --stat` and `--name-only`: git's shapes, built from the counts the change-set reader
// already made (no second read of any file). Names are quoted like the diff's (pod-chosen bytes
// stay inert), so a name cannot forge a line.
import { diffStat } from './diff.js';
import { quotePath } from './quote.js';
import type { Change } from './types.js';

const WIDTH = 80;
const NAME_MAX = 50;

const hasContent = (c: Change) => [c.before, c.after].some((s) => s !== undefined && (s.t === 'f' || s.t === 'l'));

/** git's long name form: the tail, prefixed with "...". */
function fitName(name: string, width: number): string {
  return name.length <= width ? name.padEnd(width) : `...${name.slice(name.length - width + 3)}`;
}

/** The graph of one file: + and - scaled so the largest file fills the column. */
function graph(ins: number, del: number, max: number, room: number): string {
  const total = ins + del;
  if (total === 0) return '';
  if (max <= room) return '+'.repeat(ins) + '-'.repeat(del);
  const scaled = Math.max(1, Math.round((total * room) / max));
  const plus = ins === 0 ? 0 : del === 0 ? scaled : Math.max(1, Math.min(scaled - 1, Math.round((ins * scaled) / total)));
  return '+'.repeat(plus) + '-'.repeat(scaled - plus);
}

/** Lines of `git diff --stat`, the summary last. */
export function* statLines(changes: Change[]): Generator<string> {
  const files = changes.filter(hasContent);
  const names = files.map((c) => quotePath(c.path));
  const counted = (c: Change) => !c.binary && !(c.kind === 'modified' && c.show === 'summary');
  const totals = files.map((c) => (counted(c) ? (c.insertions ?? 0) + (c.deletions ?? 0) : 0));
  const max = totals.reduce((a, b) => Math.max(a, b), 0);
  const nameWidth = Math.min(
    NAME_MAX,
    names.reduce((a, n) => Math.max(a, n.length), 0),
  );
  const countWidth = Math.max(1, String(max).length);
  const room = Math.max(10, WIDTH - 5 - nameWidth - countWidth);
  for (let i = 0; i < files.length; i++) {
    const c = files[i];
    let right: string;
    if (c.binary) right = `Bin ${c.oldScan?.size ?? 0} -> ${c.newScan?.size ?? 0} bytes`;
    else if (!counted(c)) right = `${'?'.padStart(countWidth)} (too large to count; runs diff --stat --full counts it)`;
    else right = `${String(totals[i]).padStart(countWidth)} ${graph(c.insertions ?? 0, c.deletions ?? 0, max, room)}`.trimEnd();
    yield ` ${fitName(names[i], nameWidth)} | ${right}\n`;
  }
  yield ` ${diffStat(changes).summary}\n`;
}

/** One name a line: every change apply makes, directories with a trailing slash. */
export function* nameLines(changes: Change[]): Generator<string> {
  let batch = '';
  for (const c of changes) {
    const isDir = (c.after ?? c.before)?.t === 'd';
    batch += `${quotePath(isDir ? `${c.path}/` : c.path)}\n`;
    if (batch.length >= 64 * 1024) {
      yield batch;
      batch = '';
    }
  }
  if (batch) yield batch;
}
