// The seam to native/wsapply.c, which performs every write, delete and chmod of an apply
// relative to descriptors opened without following links (see the C file for why Node cannot).
// Here: the plan's wire format, running the helper, and turning its one failure line into the
// user's one-line error.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../util/root.js';
import { notADirectory } from './check.js';
import { UnsafePathError } from './errors.js';
import { quotePath } from './quote.js';

export type PlanStep =
  | { op: 'rm' | 'sweep' | 'mkdir' | 'symlink'; path: string }
  | { op: 'write'; path: string; mode: number }
  | { op: 'chmod'; path: string; mode: number; type: 'f' | 'd' | 'o' };

/** The helper is missing or broke in a way that names no path: clawpod's fault, not the user's. */
export class ApplyHelperError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ApplyHelperError';
  }
}

export function helperPath(): string {
  return process.env.CLAWPOD_WSAPPLY ?? join(packageRoot(), 'build', 'clawpod-wsapply');
}

/** createParents: a missing parent directory is made (apply --force) instead of failing. */
export function encodePlan(steps: PlanStep[], createParents: boolean): Buffer {
  const fields: string[] = ['wsapply1', createParents ? 'create-parents' : 'existing-parents'];
  for (const s of steps) {
    fields.push(s.op, s.path);
    if (s.op === 'write') fields.push(s.mode.toString(8));
    if (s.op === 'chmod') fields.push(s.mode.toString(8), s.type);
  }
  return Buffer.from(fields.map((f) => f + '\0').join(''), 'utf8');
}

/** Runs the plan; throws the first failure as a one-line error naming the path. */
export function runPlan(root: string, treeDir: string | null, steps: PlanStep[], createParents: boolean, expectRoot?: string, lockDir?: string): void {
  if (steps.length === 0) return;
  const bin = helperPath();
  if (!existsSync(bin)) throw new ApplyHelperError(`the apply helper ${bin} is not built (run npm run build)`);
  const input = encodePlan(steps, createParents);
  const extra = lockDir ? [expectRoot ?? '-', lockDir] : expectRoot ? [expectRoot] : [];
  const r = spawnSync(bin, [root, treeDir ?? '-', ...extra], { input, maxBuffer: 1 << 28, env: helperEnv() });
  // A helper that refuses at once (the workspace's lock is held) exits before it reads the plan:
  // writing the plan then fails with EPIPE, but its exit and its one line are the answer.
  const early = (r.error as NodeJS.ErrnoException | undefined)?.code === 'EPIPE' && r.status !== null;
  if (r.error && !early) throw new ApplyHelperError(`cannot run the apply helper ${bin}: ${r.error.message} (run npm run build)`);
  const out = r.stdout.toString('utf8');
  if (r.status === 0 && out.endsWith(`done ${steps.length}\n`)) return;
  const tail = progress((out.match(/^ok \d+$/gm) ?? []).length, steps.length);
  const m = /^fail (\d+) (\w+) (\d+) (.*)$/m.exec(out);
  if (m === null) {
    const why = r.stderr.toString('utf8').trim().split('\n')[0] || `exit ${r.status ?? r.signal}`;
    throw new ApplyHelperError(`the apply helper failed (${why})${tail}; check the workspace, then re-run or discard`);
  }
  const [, stepNo, code, prefixLen, what] = m;
  const step = Number(stepNo) === 0 ? undefined : steps[Number(stepNo) - 1];
  if (step === undefined) throw new ApplyHelperError(`cannot apply: ${what} (check the workspace path and its parents)${tail}`);
  throw stepError(root, step, code, Number(prefixLen), what, tail);
}

function helperEnv(): NodeJS.ProcessEnv {
  // Only the test switch that forces the per-component walk instead of openat2.
  const walk = process.env.CLAWPOD_WSAPPLY_WALK;
  return walk === undefined ? {} : { CLAWPOD_WSAPPLY_WALK: walk };
}

function progress(done: number, total: number): string {
  return done === 0 ? '' : ` [apply stopped after ${done} of ${total} steps: the workspace is partly changed]`;
}

/** The helper's failure line as the user's error. `tail` says how far apply got. */
function stepError(root: string, step: PlanStep, code: string, prefixLen: number, what: string, tail: string): Error {
  // PREFIXLEN counts bytes of the path: the component at fault is named, not just the step.
  const bad = prefixLen > 0 ? Buffer.from(step.path, 'utf8').subarray(0, prefixLen).toString('utf8') : step.path;
  const q = quotePath(step.path);
  const qBad = quotePath(bad);
  const refuse = (path: string, msg: string) => new UnsafePathError(path, msg + tail);
  if (code === 'ESOURCE') {
    return refuse(step.path, `cannot apply ${q}: the change set's copy is missing or not what it was (${what}); discard the run`);
  }
  if ((code === 'ELOOP' || code === 'ENOTDIR') && prefixLen > 0) return refuse(bad, notADirectory(bad, code === 'ELOOP').message);
  if (code === 'ENOENT' && prefixLen > 0 && step.op !== 'chmod') {
    return refuse(bad, `refusing to apply: ${qBad} left the workspace while apply ran (re-run, or apply --force)`);
  }
  if (step.op === 'chmod' && (code === 'ETYPE' || code === 'ENOENT')) {
    const name = step.type === 'f' ? 'file' : step.type === 'd' ? 'directory' : 'special file';
    return refuse(step.path, `refusing to apply: ${q} is no longer a ${name} in the workspace (discard the run, or re-run)`);
  }
  if (code === 'EACCES' || code === 'EPERM') {
    const owner = ownerOf(root);
    return refuse(
      step.path,
      `cannot apply ${q}: the workspace owner (uid ${owner}) may not change it, and apply writes ` +
        `only as the owner (give uid ${owner} write access there, or discard the run)`,
    );
  }
  if (code === 'EXDEV') {
    return refuse(bad, `refusing to apply: ${qBad} leads out of the workspace, and clawpod never writes through it (discard the run)`);
  }
  return refuse(step.path, `cannot apply ${q}: ${what} (fix the path in the workspace, then re-run; or discard)`);
}

function ownerOf(root: string): string {
  try {
    return String(statSync(root).uid);
  } catch {
    return '?';
  }
}
