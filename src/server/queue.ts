// The server's queue: runs are store rows (status 'queued', the request kept as JSON), started
// oldest first while fewer than `concurrency` run, never two at once on one workspace (FIFO per
// workspace: a later run waits behind an earlier one of its workspace even when others could
// start). A full queue answers 429 with Retry-After. Queued rows survive a restart and start
// then, once each (store.claimQueued).
import fs from 'node:fs';
import type { Context } from '../core/context.js';
import { runExec } from '../core/exec.js';
import type { InlinePolicy } from '../core/prepare.js';
import type { PodSource } from '../pod/warm.js';
import { newRunId, type RunRecord } from '../store/runs.js';
import { type Feeds, serverIO } from './feed.js';
import { ApiError } from './http.js';
import { type ResolvedRequest, resolveRequest, type RunRequest } from './requests.js';

export interface QueueOptions {
  concurrency: number;
  /** Most queued (not yet running) runs; past it, 429. */
  maxQueued: number;
  onError?: (line: string) => void;
  /** The workspace roots: a queued run is checked against them again when it starts. */
  roots: string[];
  /** Warm pods (serve --warm): an exec run of a pooled shape takes one; the pool refills itself. */
  pods?: PodSource;
}

/** What a queued row keeps to start from (request.ts has checked it). */
interface Kept {
  req: RunRequest;
  workspace: string;
  policy: string | InlinePolicy | undefined;
}

interface Active {
  id: string;
  workspace: string;
  stop: AbortController;
  kill: AbortController;
  done: Promise<void>;
  /** What stopping it is called: an API client's cancel, or the server's shutdown. */
  why: 'cancelled' | 'interrupted';
}

export class RunQueue {
  private readonly active = new Map<string, Active>();
  private draining = false;
  private kicking = false;
  private rekick = false;

  constructor(
    private readonly ctx: Context,
    private readonly feeds: Feeds,
    private readonly o: QueueOptions,
  ) {}

  get running(): number {
    return this.active.size;
  }

  /** Records a queued run (synchronously: a schedule does it inside its own transaction) and
   *  starts it when it can. */
  submit(r: ResolvedRequest, o: { scheduleId?: string } = {}): RunRecord {
    if (this.draining) throw new ApiError(503, 'the server is shutting down; submit the run again when it is back');
    const store = this.ctx.store();
    // Waiting means beyond the free slots: with --queue 0 a run is taken only when a slot is free.
    const queued = store.countQueued();
    const free = Math.max(0, this.o.concurrency - this.active.size);
    if (queued >= this.o.maxQueued + free) {
      throw new ApiError(429, `the queue is full (${queued} runs waiting); try again later`, { 'retry-after': String(this.retryAfter()) });
    }
    const kept: Kept = { req: r.req, workspace: r.workspace, policy: r.policy };
    const rec = store.createRun({
      id: newRunId(),
      kind: r.req.kind === 'exec' ? 'exec' : 'run',
      status: 'queued',
      command: r.req.kind === 'exec' ? r.req.command : [r.req.task],
      workspace: r.workspace,
      workspaceMode: r.rules.workspace,
      policySource: r.rules.source,
      backend: 'bwrap',
      request: kept as unknown as Record<string, unknown>,
      scheduleId: o.scheduleId ?? null,
    });
    setImmediate(() => this.kick());
    return rec;
  }

  /** Seconds a client should wait: about one run's time per slot ahead of it. */
  private retryAfter(): number {
    return Math.max(1, Math.min(60, Math.ceil(this.o.maxQueued / Math.max(1, this.o.concurrency))));
  }

  /** Queued or running runs of a schedule (its overlap rule). */
  activeOf(scheduleId: string): number {
    const store = this.ctx.store();
    const queued = store.countQueued(scheduleId);
    let running = 0;
    for (const a of this.active.values()) if (store.getRun(a.id)?.scheduleId === scheduleId) running++;
    return queued + running;
  }

  /** Starts what can start now. */
  kick(): void {
    if (this.kicking) {
      this.rekick = true;
      return;
    }
    this.kicking = true;
    try {
      do {
        this.rekick = false;
        if (this.draining) return;
        const busy = new Set([...this.active.values()].map((a) => a.workspace));
        for (const rec of this.ctx.store().queuedRuns()) {
          if (this.active.size >= this.o.concurrency) break;
          if (busy.has(rec.workspace)) continue;
          // FIFO per workspace: whatever comes later for this workspace waits behind this one.
          busy.add(rec.workspace);
          this.start(rec);
        }
      } while (this.rekick);
    } finally {
      this.kicking = false;
    }
  }

  private start(rec: RunRecord): void {
    const stop = new AbortController();
    const kill = new AbortController();
    const a: Active = { id: rec.id, workspace: rec.workspace, stop, kill, done: Promise.resolve(), why: 'cancelled' };
    this.active.set(rec.id, a);
    a.done = this.execute(rec, a)
      .catch((e) => this.o.onError?.(`clawpod: run ${rec.id} failed to start: ${(e as Error).message}`))
      .finally(() => {
        this.active.delete(rec.id);
        this.feeds.close(rec.id);
        this.kick();
      });
  }

  private async execute(rec: RunRecord, a: Active): Promise<void> {
    const { stop } = a;
    const kept = rec.request as unknown as Kept | null;
    const feed = this.feeds.open(rec.id);
    const io = serverIO(feed, { signal: stop.signal, kill: a.kill.signal, why: () => a.why });
    const fail = (message: string) => {
      // Never started: the row says why; there is no chain (no run.start was written).
      this.ctx.store().updateRun(rec.id, { status: 'failed', endedAt: new Date().toISOString(), exitCode: 125, summary: { error: message } });
      feed.live({ type: 'status', data: { status: 'failed', error: message } });
    };
    if (!kept?.req) return fail('the queued request is missing from the store');
    // Checked when it was queued; the path could have been swapped since (for a symlink out of
    // the roots): it must still be the same real directory. The pod layer pins it from here on.
    let now: string | null = null;
    try {
      now = fs.realpathSync(kept.workspace);
    } catch {
      /* gone */
    }
    if (now !== kept.workspace)
      return fail(`workspace ${kept.workspace} changed since the run was queued (it is ${now ? `now ${now}` : 'gone'}); submit it again`);
    // Everything POST checked is checked again now, and the rules checked here are the rules
    // that run (a policy file rewritten, or a mount swapped, while the run waited, is caught).
    let checked: ResolvedRequest;
    try {
      checked = await resolveRequest(this.ctx, kept.req, this.o.roots);
    } catch (e) {
      return fail((e as Error).message);
    }
    if (checked.workspace !== kept.workspace) return fail(`workspace ${kept.workspace} changed since the run was queued; submit it again`);
    feed.live({ type: 'status', data: { status: 'starting' } });
    const common = {
      queuedId: rec.id,
      workspace: checked.workspace,
      expectWorkspace: checked.workspace,
      rules: checked.rules,
      policy: checked.policy,
      allowDegraded: false,
      cwd: checked.workspace,
      io,
    };
    try {
      if (kept.req.kind === 'exec') {
        await runExec(this.ctx, { ...common, command: kept.req.command, pods: this.o.pods });
      } else {
        const { runTask } = await import('../core/run.js');
        await runTask(this.ctx, { ...common, task: kept.req.task, model: kept.req.model, memory: kept.req.memory });
      }
    } catch (e) {
      const still = this.ctx.store().getRun(rec.id);
      // Failed before the run was recorded (a policy file that changed, a workspace gone): the
      // queued row ends failed with the one-line reason. A run that was recorded ended itself.
      if (still?.status === 'queued') {
        if (stop.signal.aborted)
          this.ctx.store().updateRun(rec.id, {
            status: a.why === 'interrupted' ? 'queued' : 'cancelled',
            endedAt: a.why === 'interrupted' ? null : new Date().toISOString(),
          });
        else fail((e as Error).message);
      }
    }
  }

  /** Cancels a queued run (it never starts) or stops a running one (its work is kept, status
   *  cancelled). False when the run is neither. */
  cancel(id: string): 'cancelled' | 'stopping' | false {
    const a = this.active.get(id);
    if (a) {
      a.stop.abort();
      // A run that does not stop at once (an agent mid-turn) is killed after a grace period.
      setTimeout(() => a.kill.abort(), 10_000).unref();
      return 'stopping';
    }
    const store = this.ctx.store();
    const cancelled = store.withWriteLock(() => {
      const r = store.getRun(id);
      if (r?.status !== 'queued') return false;
      store.updateRun(id, { status: 'cancelled', endedAt: new Date().toISOString() });
      return true;
    });
    return cancelled ? 'cancelled' : false;
  }

  /** No new runs; running ones get until the deadline, then are stopped (their work kept).
   *  Queued ones stay queued: the next start runs them. */
  async drain(deadlineMs: number): Promise<void> {
    this.draining = true;
    const all = () => Promise.all([...this.active.values()].map((a) => a.done));
    const timer = setTimeout(() => {
      for (const a of this.active.values()) {
        a.why = 'interrupted';
        a.stop.abort();
        setTimeout(() => a.kill.abort(), 5_000).unref();
      }
    }, deadlineMs);
    try {
      await all();
    } finally {
      clearTimeout(timer);
    }
  }
}
