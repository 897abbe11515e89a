// Closing the runs of clawpods that died, so that the store and the audit chain agree after a
// crash at any point of a run's life (test/crash-points.test.ts kills clawpod at each step of
// src/core/crash-points.ts). A run opens pod record first, then its egress files, then its row
// (lifecycle.ts): what a crash leaves before the row is the pod's, which the backend's reap
// removes (with its egress files) once its record's owner is gone; from the row on, it belongs
// to a row holding its clawpod's pid, start time and boot. The rules:
// - A run is reaped only while its row says running and its clawpod is provably gone (another
//   boot, a reused pid, a zombie, no process). The row is read again, and everything decided
//   from it written, under the store's write lock: two reapers never both close one chain, and a
//   run its clawpod closed since the listing is left alone.
// - The chain decides. No run.start in it (the pod is let go only after run.start): the run
//   never ran and is dropped whole (egress files, directory, then row; a server's queued run
//   goes back to its queue instead, chainless as it was before it was claimed). It ends with
//   run.end (clawpod died before the store heard): the row is updated from that run.end and the
//   chain is never appended to. Otherwise one run.end {interrupted} is appended, then the row
//   closed to match. A reaper killed halfway leaves the row running, and the next one finishes.
// - A chain that no longer verifies is never extended: the row is closed with no head, and
//   `audit verify` names the damage.
// - A run being removed is renamed aside first ($CLAWPOD_HOME/removing/ID), then its row
//   deleted: a removal cut short is finished by the next reaper.
import fs from 'node:fs';
import path from 'node:path';
import { AuditWriter, auditEvents, verifyAudit, type AuditEvent } from '../audit/chain.js';
import { RUN_STATUSES, runAlive, type RunPatch, type RunRecord, type RunStatus } from '../store/runs.js';
import { removeTree } from '../workspace/index.js';
import type { Context } from './context.js';
import { crashPoint } from './crash-points.js';

const REASON = 'clawpod exited before the run finished';
const ENDED: ReadonlySet<string> = new Set<RunStatus>(RUN_STATUSES.filter((s) => s !== 'queued' && s !== 'running'));
/** All that a run's directory can hold before run.start. */
const BEFORE_START: ReadonlySet<string> = new Set(['audit.jsonl']);

type Chain = { kind: 'unstarted' } | { kind: 'open' } | { kind: 'ended'; end: AuditEvent; head: Head } | { kind: 'broken' };
type Head = { auditEvents: number; auditHead: string };

/** Runs left 'running' by a clawpod that died: their pods are reaped, their chains closed.
 *  Returns the ids of the runs it closed or dropped. */
export function reapInterrupted(ctx: Context, notice: (line: string) => void = () => {}): string[] {
  for (const b of ctx.backends()) {
    try {
      b.reap();
    } catch {
      /* a backend that cannot reap leaves its own leftovers */
    }
  }
  const done: string[] = [];
  let running: RunRecord[];
  try {
    running = ctx.store().runningRuns();
  } catch {
    return done; /* the command itself reports a broken store */
  }
  for (const run of running) {
    if (runAlive(run)) continue;
    // Each run on its own: one that cannot be reaped must never stop the others or the command.
    try {
      if (reapOne(ctx, run.id)) done.push(run.id);
    } catch (e) {
      notice(`clawpod: could not close interrupted run ${run.id}: ${(e as Error).message} (remove ${run.runDir ?? 'its directory'} by hand)`);
    }
  }
  finishRemovals(ctx);
  return done;
}

/** Claims and closes one dead run under the write lock; false when it was not (or no longer) ours to close. */
function reapOne(ctx: Context, id: string): boolean {
  const store = ctx.store();
  const after = store.withWriteLock((): (() => void) | null => {
    const run = store.getRun(id);
    if (!run || run.id !== id || run.status !== 'running' || runAlive(run)) return null;
    // Its proxy died with its clawpod; the pod's reap removes these only while the pod has a record.
    removeEgressFiles(ctx, run);
    const chain = readChain(run);
    switch (chain.kind) {
      case 'unstarted':
        // Small (nothing but an empty chain), so removed before the row goes, under the lock.
        if (ownRunDir(ctx, run)) removeTree(run.runDir as string);
        // A server's queued run goes back to its queue (it never ran); any other leaves no row.
        if (run.request) store.updateRun(id, { status: 'queued', pid: null, pidStart: null, hostBootId: null });
        else store.deleteRun(id);
        return () => {};
      case 'ended':
        store.updateRun(id, fromRunEnd(chain.end, chain.head));
        // Only a run.end a reaper wrote (and died before the store heard) drops the change set.
        return chain.end.data.reason === REASON ? () => removeChanges(run) : () => {};
      case 'open': {
        const audit = AuditWriter.resume(run.auditPath as string, id);
        const end = audit.append('run.end', { status: 'interrupted', exitCode: null, reason: REASON });
        audit.close();
        store.updateRun(id, closed(end.ts, { auditEvents: audit.seq, auditHead: audit.lastHash }));
        return () => removeChanges(run);
      }
      case 'broken':
        store.updateRun(id, closed(new Date().toISOString(), null));
        return () => removeChanges(run);
    }
  });
  if (!after) return false;
  after();
  return true;
}

/** The store first (in the caller's transaction): a change set harvested while clawpod was dying
 *  may be partial, and once the run says 'none' it is never offered for apply. */
function closed(endedAt: string, summary: Head | null): RunPatch {
  return { status: 'interrupted', endedAt, diffState: 'none', summary };
}

/** The row as the run's own clawpod would have written it after this run.end (lifecycle.end). */
function fromRunEnd(end: AuditEvent, head: Head): RunPatch {
  const d = end.data;
  const filesChanged = typeof d.filesChanged === 'number' && Number.isSafeInteger(d.filesChanged) && d.filesChanged > 0 ? d.filesChanged : 0;
  return {
    status: (typeof d.status === 'string' && ENDED.has(d.status) ? d.status : 'interrupted') as RunStatus,
    endedAt: new Date(end.ts).toISOString() === end.ts ? end.ts : new Date().toISOString(),
    exitCode: typeof d.exitCode === 'number' && Number.isSafeInteger(d.exitCode) ? d.exitCode : null,
    limitHit: typeof d.limitHit === 'string' ? d.limitHit : null,
    diffState: filesChanged > 0 ? 'pending' : 'none',
    filesChanged,
    summary: head,
  };
}

/** What the chain of a dead run says about how far it got. */
function readChain(run: RunRecord): Chain {
  const file = run.auditPath;
  if (!file || !fs.existsSync(file)) return onlyChainIn(run) ? { kind: 'unstarted' } : { kind: 'broken' };
  try {
    // A last line torn by the kill is completed, or cut, before anything reads the chain.
    AuditWriter.resume(file, run.id).close();
  } catch {
    return { kind: 'broken' };
  }
  const v = verifyAudit(file, { runId: run.id });
  if (!v.ok) return { kind: 'broken' };
  if (v.count === 0) return onlyChainIn(run) ? { kind: 'unstarted' } : { kind: 'broken' };
  let first: AuditEvent | undefined;
  let last: AuditEvent | undefined;
  for (const e of auditEvents(file)) {
    first ??= e;
    last = e;
  }
  if (first?.type !== 'run.start' || !last) return { kind: 'broken' };
  if (last.type === 'run.end') return { kind: 'ended', end: last, head: { auditEvents: v.count, auditHead: v.lastHash } };
  return { kind: 'open' };
}

/** The run's directory holds nothing a started run writes (no snapshot, log or change set). */
function onlyChainIn(run: RunRecord): boolean {
  if (!run.runDir) return true;
  try {
    return fs.readdirSync(run.runDir).every((n) => BEFORE_START.has(n));
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/** Only a directory under clawpod's own runs dir, named for the run: a record's path is data. */
function ownRunDir(ctx: Context, run: Pick<RunRecord, 'id' | 'runDir'>): boolean {
  return Boolean(run.runDir) && path.resolve(run.runDir as string) === path.join(ctx.clawpodHome, 'runs', run.id);
}

function removeEgressFiles(ctx: Context, run: RunRecord): void {
  let files: (string | undefined)[];
  try {
    const p = ctx.backend(run.backend).egressPaths(run.id);
    files = [p.socketPath, p.caBundle];
  } catch {
    return; /* a backend not available here made no files here */
  }
  for (const f of files) if (f) fs.rmSync(f, { force: true });
}

function removeChanges(run: RunRecord): void {
  // Iterative: a pod can leave a tree deep enough to overflow fs.rmSync's recursion.
  if (run.runDir) for (const d of ['changes', 'changes.partial']) removeTree(path.join(run.runDir, d));
}

/**
 * Removes a run (runs rm, prune, --rm): its directory is renamed aside, then its row deleted,
 * then the tree removed. A crash after the rename leaves removing/ID, which any reaper finishes;
 * never a row whose chain is gone, nor a directory no row or reaper accounts for. The row goes
 * before the tree, so a directory that cannot be removed whole is never offered for review.
 */
export function removeRunFiles(ctx: Context, run: Pick<RunRecord, 'id' | 'runDir'>): void {
  const runs = path.join(ctx.clawpodHome, 'runs');
  const dir = path.resolve(run.runDir ?? ctx.runDir(run.id));
  let target: string | null = path.dirname(dir) === runs ? dir : null;
  if (target && ownRunDir(ctx, { id: run.id, runDir: dir })) {
    // Beside runs/, not in it: a reaper looks for removals cut short in a directory that is empty.
    const aside = path.join(removingDir(ctx), run.id);
    try {
      fs.mkdirSync(removingDir(ctx), { recursive: true, mode: 0o700 });
      fs.renameSync(dir, aside);
      target = aside;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      target = null;
    }
  }
  ctx.store().deleteRun(run.id);
  crashPoint(ctx.env, 'rm-row');
  if (target) removeTree(target);
}

/** Removals a clawpod began and did not finish (see removeRunFiles). */
function finishRemovals(ctx: Context): void {
  const dir = removingDir(ctx);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    try {
      // The user asked for it to go: the row too, if the remover died before deleting it.
      ctx.store().deleteRun(name);
      removeTree(path.join(dir, name));
    } catch {
      /* another clawpod is removing it right now, or the next reap retries */
    }
  }
}

/** Where removeRunFiles puts a run's directory while it removes it. */
function removingDir(ctx: Context): string {
  return path.join(ctx.clawpodHome, 'removing');
}
