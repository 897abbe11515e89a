// One run's life, whatever started it (exec, run, and later a server, a schedule or a chat
// channel): its id and directory, the audit chain, the store row, the workspace snapshot, the
// egress proxy, the pod prepared while the bookkeeping is done, and the end: change set recorded,
// chain closed, row updated. A face calls openRun and then only does what differs.
import fs from 'node:fs';
import path from 'node:path';
import { type Readable, Writable } from 'node:stream';
import { AuditWriter, type EventType } from '../audit/chain.js';
import type { AgentEvent } from '../agent/loop.js';
import { podWorkspaceDir } from '../pod/workspace-at.js';
import type { Backend, PodEgress, PodEvent, RunningPod } from '../pod/types.js';
import type { Rules } from '../policy/types.js';
import type { ProxyEvent } from '../proxy/types.js';
import { type NewRun, newRunId, type RunStatus } from '../store/runs.js';
import { readIgnoreSources, saveIgnoreSources, saveManifest, takeManifest } from '../workspace/index.js';
import { savePodRoot } from '../workspace/pathrefs.js';
import type { ResolvedSecret } from '../secrets/index.js';
import type { Manifest } from '../workspace/types.js';
import type { Context } from './context.js';
import { podEgress, redactingStream, scrubChangeSet, startEgress, type EgressPlan, type RunningEgress } from './egress.js';
import { UserError } from './errors.js';
import { IGNORE_FILE, recordChangeSet } from './record-changes.js';
import type { LifecycleType, RunEvent, RunIO } from './io.js';
import { refusalTally } from './refused.js';
import { crashPoint } from './crash-points.js';
import { reapInterrupted } from './reap.js';

export { reapInterrupted, removeRunFiles } from './reap.js';
import type { PodSettings } from './settings.js';

/** What prepare() checked before anything exists: a run opens from this. */
export interface Prepared {
  rules: Rules;
  workspace: string | null;
  backend: Backend;
  degraded: PodEvent[];
  plan: EgressPlan;
  settings: PodSettings;
  /** What the command line narrowed (core/narrow.ts), for run.start. */
  narrowed: Record<string, unknown>;
  /** The queued store row this run starts (service mode), see PrepareOptions.queuedId. */
  queuedId?: string;
}

/** How the pod is started, held: it runs nothing until the run calls go(). */
export type StartPod<P> = (a: {
  id: string;
  changesDir: string | null;
  egress: PodEgress | undefined;
  /** PodSpec.beforeStart: starts the run's egress proxy (when it has one). */
  beforeStart: (podUid: number | null) => Promise<void>;
  record: (e: PodEvent) => void;
}) => Promise<P>;

export interface OpenRunOptions<P> {
  kind: 'exec' | 'run';
  prepared: Prepared;
  io: RunIO;
  /** What the store lists as the run's command (redacted here). */
  command: string[];
  /** run.start's fields of this kind (the common ones are added). */
  start: Record<string, unknown>;
  startPod: StartPod<P>;
  podOf(p: P): RunningPod;
  /** Besides stopping the pod, what else stops when the audit log is full (an agent loop). */
  onAuditFull?: () => void;
}

/** How the run ended, as its face saw it. */
export interface RunEnd {
  status: RunStatus;
  exitCode: number | null;
  limitHit: string | null;
  /** More fields for run.end (turns, usage, reason...). */
  data?: Record<string, unknown>;
}

/** The most of each output stream kept with the run for `runs logs`. */
export const LOG_CAP = 8 * 1024 * 1024;

/** A file in the run's directory that keeps the first `cap` bytes written and counts the rest. */
export function cappedLog(file: string, cap = LOG_CAP): Writable & { dropped(): number } {
  let fd: number | null = fs.openSync(file, 'wx', 0o600);
  let kept = 0;
  let dropped = 0;
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const take = Math.max(0, Math.min(chunk.length, cap - kept));
      try {
        if (take > 0 && fd !== null) fs.writeSync(fd, chunk, 0, take);
      } catch {
        /* a full disk loses the log, never the run */
      }
      kept += take;
      dropped += chunk.length - take;
      cb();
    },
    final(cb) {
      if (fd !== null) {
        try {
          if (dropped > 0) fs.writeSync(fd, `\n[clawpod: ${dropped} more bytes not kept]\n`);
        } catch {
          /* as above */
        }
        fs.closeSync(fd);
        fd = null;
      }
      cb();
    },
  });
  return Object.assign(w, { dropped: () => dropped });
}

export class OpenRun<P> {
  readonly dir: string;
  readonly auditPath: string;
  readonly changesDir: string | null;
  readonly podDir: string;
  readonly refused = refusalTally();
  readonly capsHit = new Set<string>();
  audit!: AuditWriter;
  pod!: P;
  manifest: Manifest | null = null;
  egress: RunningEgress | null = null;
  private readonly early: RunEvent[] = [];
  private ended = false;

  constructor(
    readonly ctx: Context,
    readonly id: string,
    readonly o: OpenRunOptions<P>,
  ) {
    const { rules, workspace } = o.prepared;
    this.dir = ctx.runDir(id);
    this.auditPath = path.join(this.dir, 'audit.jsonl');
    this.changesDir = rules.workspace === 'overlay' && workspace ? path.join(this.dir, 'changes') : null;
    this.podDir = podWorkspaceDir(rules, workspace);
  }

  get io(): RunIO {
    return this.o.io;
  }
  get prepared(): Prepared {
    return this.o.prepared;
  }
  get running(): RunningPod {
    return this.o.podOf(this.pod);
  }

  /** Events that make a run worth keeping even when it changed no file (see leftNoTrace). */
  private notable = 0;

  /** --rm's test: the run ended normally, changed no file, wrote through no writable attachment
   *  (an rw workspace or mount, a named memory), and nothing in it was refused, capped, degraded
   *  or sent out. Only such a run may leave no record; every other keeps its audit trail. */
  leftNoTrace(status: string, filesChanged: number): boolean {
    const { rules } = this.prepared;
    const writable = rules.workspace === 'rw' || rules.mounts.some((m) => m.mode === 'rw');
    return status === 'done' && filesChanged === 0 && !writable && this.notable === 0 && !this.audit.limitReached;
  }

  /** Every event of the run: to the audit log (or held until it exists) and to the face. */
  emit(e: RunEvent): void {
    if (e.source === 'pod' || e.source === 'proxy' || (e.source === 'run' && (e.type === 'policy.deny' || e.type === 'guard.degraded'))) this.notable++;
    if (e.source === 'agent' && e.event.type === 'policy.deny') this.notable++;
    if (e.source === 'pod' || e.source === 'proxy') {
      this.refused.add(e as PodEvent | ProxyEvent);
      if (e.type === 'limit.hit') {
        if (typeof e.data.cap === 'string') this.capsHit.add(e.data.cap);
        // Who hit which cap and its policy key, escaped by the watch that wrote it (pod/capwatch.ts).
        if (typeof e.data.message === 'string') this.io.notice(`clawpod: ${e.data.message}`);
      }
    }
    if (this.audit) toAudit(this.audit, e);
    else this.early.push(e);
    this.show(e);
  }

  /** To the face only (an event the audit log already has). */
  private show(e: RunEvent): void {
    try {
      this.io.event(e);
    } catch {
      /* a face that fails to show an event never stops the run */
    }
  }

  /** The pod's events and the proxy's, from the layers below. */
  readonly record = (e: PodEvent): void => this.emit({ source: 'pod', type: e.type, data: e.data });
  readonly recordProxy = (e: ProxyEvent): void => this.emit({ source: 'proxy', type: e.type, data: e.data });

  /** The pod's output streams, through the redactor when the run has secrets, to the face and
   *  to the run's stdout.log / stderr.log. */
  relayOutput(pod: RunningPod, o: { stdout?: string | null; stderr?: string | null; face?: boolean } = {}): void {
    const secrets = this.prepared.plan.secrets;
    const face = o.face ?? true;
    const pairs: [NodeJS.ReadableStream | null, NodeJS.WritableStream | null, string | null][] = [
      [pod.stdout, face ? this.io.stdout : null, o.stdout === undefined ? 'stdout.log' : o.stdout],
      [pod.stderr, face ? this.io.stderr : null, o.stderr === undefined ? 'stderr.log' : o.stderr],
    ];
    for (const [from, to, name] of pairs) {
      if (!from) continue;
      const src = secrets.length ? from.pipe(redactingStream(secrets)) : from;
      if (to) {
        src.pipe(to, { end: false });
        // A reader that went away (`clawpod exec ... | head`) closes the pod's end too: the pod
        // sees EPIPE as it would without clawpod, instead of blocking until its timeout.
        const cut = () => {
          src.unpipe(to);
          (from as Readable).destroy();
        };
        (to as Writable).once('error', cut);
      }
      if (name) src.pipe(cappedLog(path.join(this.dir, name)));
      if (!to && !name) src.resume();
    }
  }

  /** Starts the held pod and the egress proxy, records the run, then opens the chain: the pod's
   *  set-up (a cgroup join may wait for an RCU grace period, the stage is mounted) overlaps with
   *  the proxy's start and all the bookkeeping.
   *
   *  Crash order (see reap.ts): the pod's record comes first (backend.start writes it before
   *  anything else, holding this clawpod's pid, start time and boot), then the egress files
   *  named by the run's id (beforeStart, so the socket exists when bwrap binds it), then the
   *  prelude and bwrap set the pod up and wait for go (native/podinit.c: the gate), then the
   *  store row (the same owner), then the directory and the chain. Whatever a crash leaves
   *  belongs to a record or a row a later reaper finds and can prove dead: before the row, the
   *  pod's reap removes the pod and its egress files, and no directory exists yet. The pod runs nothing until go(), which a face calls only after
   *  run.start is in the chain: a run whose chain has no run.start never ran, and is dropped
   *  whole; one that has it is closed with exactly one run.end. */
  async open(): Promise<void> {
    const { ctx, id, o } = this;
    const { rules, workspace, backend, degraded, plan, settings, narrowed } = o.prepared;
    const egress = plan.needed ? podEgress(plan, backend.egressPaths(id)) : undefined;
    const beforeStart = async (podUid: number | null) => {
      if (egress) this.egress = await startEgress(plan, rules, id, egress, podUid, this.recordProxy);
      crashPoint(ctx.env, 'egress', id);
    };
    try {
      this.pod = await o.startPod({ id, changesDir: this.changesDir, egress, beforeStart, record: this.record });
      crashPoint(ctx.env, 'pod-held', id);
    } catch (err) {
      await this.egress?.close();
      this.failUnrecorded(err);
      throw err;
    }
    try {
      recordRow(ctx, o.prepared.queuedId, this.rowOf());
      crashPoint(ctx.env, 'store-row', id);
    } catch (err) {
      await this.stopHeld(err instanceof NotQueuedError ? 'the run was cancelled' : 'clawpod could not record the run');
      if (!(err instanceof NotQueuedError)) this.failUnrecorded(err);
      throw err;
    }
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      crashPoint(ctx.env, 'run-dir', id);
      // Fail closed: a pod whose actions the log can no longer record is stopped.
      this.audit = AuditWriter.create(this.auditPath, id, {
        redact: plan.redact,
        maxBytes: auditMaxBytes(ctx),
        onLimit: () => {
          o.onAuditFull?.();
          this.running.stop('the audit log reached its size cap');
        },
      });
      crashPoint(ctx.env, 'chain', id);
    } catch (err) {
      await this.stopHeld('clawpod could not record the run');
      this.drop(err);
      throw err;
    }
    const audit = this.audit;
    try {
      this.emit({
        source: 'run',
        type: 'run.start',
        data: {
          kind: o.kind,
          ...o.start,
          workspace,
          workspaceMode: rules.workspace,
          workspaceAt: this.podDir,
          policy: rules.source,
          backend: backend.name,
          resources: rules.resources,
          settings: settings.keys,
          ...(Object.keys(narrowed).length ? { narrowed } : {}),
        },
      });
      crashPoint(ctx.env, 'run-start', id);
      for (const e of degraded) this.emit({ source: 'pod', type: e.type, data: e.data });
      for (const e of this.early.splice(0)) toAudit(audit, e);
      for (const reason of settings.dropped) this.emit({ source: 'run', type: 'policy.deny', data: { reason } });
      this.manifest = snapshotWorkspace(this.dir, this.changesDir, workspace, this.podDir);
      crashPoint(ctx.env, 'snapshot', id);
    } catch (err) {
      await this.fail(err);
      throw err;
    }
  }

  /** A run that never started (open failed before run.start): its directory, then its row. In
   *  that order, so a crash in between leaves a row the reaper drops, never a row-less dir. */
  private drop(err?: unknown): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
    // A server's queued run keeps its row (its client holds the id): failed, with the reason.
    if (this.prepared.queuedId) {
      const error = err instanceof Error ? err.message : String(err);
      this.ctx
        .store()
        .updateRun(this.id, { status: 'failed', endedAt: new Date().toISOString(), exitCode: 125, auditPath: null, runDir: null, summary: { error } });
    } else this.ctx.store().deleteRun(this.id);
  }

  /** The held pod stopped (it never ran) and the egress proxy closed. */
  private async stopHeld(reason: string): Promise<void> {
    this.running.stop(reason);
    await this.running.wait().catch(() => undefined);
    await this.egress?.close();
  }

  /** A run that failed before its row was written: nothing of it is recorded, except that a
   *  server's queued run (its client holds the id) is claimed and marked failed with the reason. */
  private failUnrecorded(err: unknown): void {
    if (!this.prepared.queuedId) return;
    try {
      recordRow(this.ctx, this.prepared.queuedId, this.rowOf());
    } catch {
      return; // cancelled meanwhile, or the store is broken: the error thrown says enough
    }
    this.drop(err);
  }

  /** The run's store row as open() writes it. */
  private rowOf(): NewRun {
    const { rules, workspace, backend, plan } = this.prepared;
    return {
      id: this.id,
      kind: this.o.kind,
      status: 'running',
      command: this.o.command.map(plan.redact),
      workspace: workspace ?? '',
      workspaceMode: rules.workspace,
      policySource: rules.source,
      backend: backend.name,
      pid: process.pid,
      auditPath: this.auditPath,
      runDir: this.dir,
    };
  }

  /** Leftovers of clawpods that died are cleaned while this run's pod runs. */
  reapOthers(): void {
    reapInterrupted(this.ctx, (line) => this.io.notice(line));
  }

  /** After the pod has ended: the change set recorded, the chain closed, the row updated.
   *  Returns how many paths changed. */
  async end(r: RunEnd): Promise<number> {
    this.ended = true;
    await this.egress?.close();
    crashPoint(this.ctx.env, 'egress-closed', this.id);
    const refusedLine = this.refused.line();
    if (refusedLine) this.io.notice(refusedLine);
    const { workspace, plan, rules } = this.prepared;
    let limitHit = r.limitHit;
    if (!limitHit && this.audit.limitReached) limitHit = 'audit';
    const filesChanged = recordChanges(
      this.audit,
      this.changesDir,
      workspace,
      this.manifest,
      plan.secrets,
      rules.ignore,
      (l) => this.io.notice(l),
      (e) => this.show(e),
    );
    crashPoint(this.ctx.env, 'changes-recorded', this.id);
    // After the change set too: its file.write events may be what filled the log.
    if (!limitHit && this.audit.limitReached) limitHit = 'audit';
    const endData = { status: r.status, exitCode: r.exitCode, limitHit, filesChanged, ...r.data };
    this.audit.append('run.end', endData);
    this.audit.close();
    crashPoint(this.ctx.env, 'run-end', this.id);
    try {
      this.io.event({ source: 'run', type: 'run.end', data: { id: this.id, ...endData } });
    } catch {
      /* as in emit */
    }
    this.ctx.store().updateRun(this.id, {
      status: r.status,
      endedAt: new Date().toISOString(),
      exitCode: r.exitCode,
      limitHit: limitHit as never,
      diffState: filesChanged > 0 ? 'pending' : 'none',
      filesChanged,
      summary: chainHead(this.audit),
    });
    crashPoint(this.ctx.env, 'store-end', this.id);
    return filesChanged;
  }

  /** Something failed after the run was recorded: the pod stopped, the run marked failed. */
  async fail(err: unknown): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.running.stop('clawpod failed');
    await this.running.wait().catch(() => undefined);
    await this.egress?.close();
    const message = err instanceof Error ? err.message : String(err);
    try {
      this.audit.append('run.end', { status: 'failed', exitCode: 125, error: message });
      this.audit.close();
      crashPoint(this.ctx.env, 'run-end', this.id);
    } finally {
      this.ctx
        .store()
        .updateRun(this.id, { status: 'failed', endedAt: new Date().toISOString(), exitCode: 125, diffState: 'none', summary: chainHead(this.audit) });
    }
    crashPoint(this.ctx.env, 'store-end', this.id);
  }
}

/** Opens a run: nothing of it exists if this throws. */
export async function openRun<P>(ctx: Context, o: OpenRunOptions<P>): Promise<OpenRun<P>> {
  const run = new OpenRun(ctx, o.prepared.queuedId ?? newRunId(), o);
  await run.open();
  return run;
}

/** A queued run that was cancelled (or started elsewhere) before its pod was ready. */
export class NotQueuedError extends UserError {}

/** The run's store row: a new one, or the server's queued row claimed (exactly once). */
function recordRow(ctx: Context, queuedId: string | undefined, rec: NewRun): void {
  if (!queuedId) {
    ctx.store().createRun(rec);
    return;
  }
  const { id: _id, kind: _kind, ...patch } = rec;
  if (!ctx.store().claimQueued(queuedId, { ...patch, startedAt: new Date().toISOString() })) {
    throw new NotQueuedError(`run ${queuedId} is no longer queued (it was cancelled or started elsewhere)`);
  }
}

/** The audit log as a subscriber of the event stream (the contract's event names). */
function toAudit(audit: AuditWriter, e: RunEvent): void {
  if (e.source !== 'agent') {
    audit.append(e.type, e.data);
    return;
  }
  agentToAudit(audit, e.event);
}

/** The agent's story in the contract's events (text deltas are not logged one by one). */
function agentToAudit(audit: AuditWriter, e: AgentEvent): void {
  switch (e.type) {
    case 'text':
      return;
    case 'model.request':
      audit.append('model.request', { turn: e.turn, messages: e.messages });
      return;
    case 'model.response':
      audit.append('model.response', { turn: e.turn, stopReason: e.stopReason, inputTokens: e.usage.inputTokens, outputTokens: e.usage.outputTokens });
      return;
    case 'model.error':
      audit.append('model.response', { turn: e.turn, error: e.error });
      return;
    case 'tool.call':
      audit.append('tool.call', { id: e.id, tool: e.name, input: e.input });
      return;
    case 'tool.result':
      audit.append('tool.result', { id: e.id, tool: e.name, isError: e.isError, bytes: Buffer.byteLength(e.content), durationMs: Math.round(e.durationMs) });
      return;
    case 'policy.deny':
      audit.append('policy.deny', { tool: e.tool, reason: e.reason });
      return;
  }
}

/** The run's audit byte cap: CLAWPOD_AUDIT_MAX_BYTES, else the writer's default. */
export function auditMaxBytes(ctx: Context): number | undefined {
  return Number(ctx.env.CLAWPOD_AUDIT_MAX_BYTES) || undefined;
}

/** The workspace as the run starts: kept with the run (apply checks against it) and returned. */
export function snapshotWorkspace(dir: string, changesDir: string | null, workspace: string | null, podDir?: string): Manifest | null {
  if (!changesDir || !workspace) return null;
  // The walk goes by name: the root must be the same directory before and after it, and its
  // identity is kept so apply writes into this directory and no other (see workspaceIdentity).
  const before = workspaceIdentity(workspace);
  let manifest: Manifest;
  try {
    manifest = takeManifest(workspace);
  } catch (e) {
    throw new UserError(`workspace ${workspace} changed while the run started (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); run again`);
  }
  if (before === null || workspaceIdentity(workspace) !== before) {
    throw new UserError(`workspace ${workspace} was replaced while the run started; run again`);
  }
  saveManifest(path.join(dir, 'base.json'), manifest);
  // The .gitignore rules as they are now, before the pod runs: a pod-written one never counts.
  saveIgnoreSources(path.join(dir, IGNORE_FILE), readIgnoreSources(workspace, manifest));
  fs.writeFileSync(path.join(dir, 'root.id'), `${before}\n`, { mode: 0o600 });
  // Where the pod saw it: review flags what points into that path when it is not the host's.
  if (podDir !== undefined) savePodRoot(dir, podDir);
  return manifest;
}

/** "DEV:INO" of a directory reached without following a final symlink, or null. */
export function workspaceIdentity(p: string): string | null {
  try {
    const st = fs.lstatSync(p, { bigint: true });
    return st.isDirectory() ? `${st.dev}:${st.ino}` : null;
  } catch {
    return null;
  }
}

/** file.write events from the change set, after secret values are scrubbed from it; returns how
 *  many paths changed. */
export function recordChanges(
  audit: AuditWriter,
  changesDir: string | null,
  workspace: string | null,
  manifest: Manifest | null,
  secrets: ResolvedSecret[],
  ignorePatterns: string[] = [],
  notice: (line: string) => void = () => {},
  show?: (e: RunEvent) => void,
): number {
  // The prelude writes no change set at all when the pod changed nothing.
  if (!changesDir || !workspace || !manifest || !fs.existsSync(changesDir)) return 0;
  // What is recorded here reaches the face too: the log stays one subscriber of the stream.
  const log: Pick<AuditWriter, 'append'> = !show
    ? audit
    : {
        append: ((type: EventType, data: object) => {
          const recorded = audit.append(type, data);
          if (recorded) show({ source: 'run', type: type as LifecycleType, data: data as Record<string, unknown> });
          return recorded;
        }) as AuditWriter['append'],
      };
  for (const f of scrubChangeSet(path.join(changesDir, 'tree'), secrets)) {
    log.append('policy.deny', { reason: 'a secret value in a file the pod wrote was replaced with [secret:NAME]', path: f });
  }
  // file.write per reviewed change, one files.ignored for the rest (see record-changes.ts).
  return recordChangeSet(log, changesDir, workspace, manifest, ignorePatterns, notice);
}

/** The chain's head, kept in the store: a log cut short at a line boundary still verifies on
 *  its own, but no longer matches the head recorded when the run ended. */
export function chainHead(audit: AuditWriter): Record<string, unknown> {
  return { auditEvents: audit.seq, auditHead: audit.lastHash };
}
