// `clawpod exec`: one command in one fresh pod, recorded as a run with an audit chain and,
// in overlay mode, a change set waiting for review.
import fs from 'node:fs';
import path from 'node:path';
import { AuditWriter } from '../audit/chain.js';
import { checkHostPath, normalizePolicy } from '../policy/normalize.js';
import { isBuiltinStrict, precomputedStrict } from '../policy/strict.js';
import type { Rules } from '../policy/types.js';
import { checkGuards } from '../pod/guards.js';
import type { PodEvent, PodOutcome, RunningPod } from '../pod/types.js';
import { newRunId, runAlive } from '../store/runs.js';
import { readIgnoreSources, removeTree, saveIgnoreSources, saveManifest, takeManifest } from '../workspace/index.js';
import { IGNORE_FILE, recordChangeSet } from './record-changes.js';
import type { Manifest } from '../workspace/types.js';
import { savePodRoot } from '../workspace/pathrefs.js';
import { podWorkspaceDir, workspaceAtRefusal } from '../pod/workspace-at.js';
import type { ResolvedSecret } from '../proxy/types.js';
import type { Context } from './context.js';
import { UserError } from './errors.js';
import { policyDeps } from './policy-deps.js';
import { planEgress, redactingStream, scrubChangeSet, startEgress, type RunningEgress } from './egress.js';
import type { ProxyEvent } from '../proxy/types.js';
import { refusalTally, type RefusalTally } from './refused.js';
import { resolveSettings } from './settings.js';
import { narrowRules, type Narrowing } from './narrow.js';

export interface ExecOptions {
  policy?: string;
  workspace?: string;
  backend?: string;
  command: string[];
  allowDegraded: boolean;
  stdio: 'inherit' | 'pipe';
  cwd: string;
  /** --at-host-path: mount the workspace at its own host path (filesystem.workspaceAt: host). */
  atHostPath?: boolean;
  /** Flags that narrow the policy for this run (never widen it). */
  narrow?: Narrowing;
  /** --rm: drop the run's record and directory when it changed nothing. */
  removeIfUnchanged?: boolean;
}

export interface ExecSummary {
  run: string;
  exitCode: number;
  status: string;
  limitHit: string | null;
  /** Every cap the kernel enforced during the run (limit.hit), whether or not it ended the pod. */
  capsHit: string[];
  durationMs: number;
  filesChanged: number;
  auditPath: string;
  /** Requests the egress proxy refused, by host (escaped), most first. */
  refused: Record<string, number>;
}

/** Policy file (or the built-in strict one) -> Rules. zod and yaml load only for a file. */
export async function resolveRules(ctx: Context, policy: string | undefined): Promise<Rules> {
  const strict = isBuiltinStrict(policy) ? precomputedStrict() : undefined;
  const raw = strict ?? (await import('../policy/load.js')).loadPolicy(policy, { readFile: (p) => fs.readFileSync(p, 'utf8'), env: ctx.env });
  const source = policy && policy !== 'strict' ? path.resolve(policy) : 'builtin:strict';
  return normalizePolicy(raw, source, policyDeps(ctx));
}

/** The workspace directory, resolved and checked with the same deny rule as mounts. */
export function resolveWorkspace(ctx: Context, rules: Rules, dir: string | undefined, cwd: string): string | null {
  if (rules.workspace === 'none') return null;
  const given = path.resolve(cwd, dir ?? '.');
  let real: string;
  let isDir: boolean;
  // The path can change under us at any point: every failure here is the user's one-line error.
  // (What is finally mounted is pinned by identity in the pod layer, see pinSources.)
  try { real = fs.realpathSync(given); isDir = fs.statSync(real).isDirectory(); } catch {
    throw new UserError(`workspace ${given} does not exist (pass an existing directory to --workspace)`);
  }
  if (!isDir) throw new UserError(`workspace ${given} is not a directory (pass a directory to --workspace)`);
  const notAtHost = workspaceAtRefusal(rules, real);
  if (notAtHost) throw new UserError(notAtHost);
  const denied = checkHostPath(real, policyDeps(ctx));
  if (denied) throw new UserError(`workspace ${real}: ${denied}`);
  return real;
}

/** What exec and run do with every pod and proxy event besides logging it: tally the proxy's
 *  refusals, and tell a cap's one-line account (who hit it, its policy key) as it happens;
 *  pod-chosen names in it are escaped by the watch that wrote it (pod/capwatch.ts). */
export function observeEvent(refused: RefusalTally, e: PodEvent | ProxyEvent): void {
  refused.add(e);
  if (e.type === 'limit.hit' && typeof e.data.message === 'string') process.stderr.write(`clawpod: ${e.data.message}\n`);
}

/** Everything a user can get wrong is checked here, before any run record or directory exists. */
export async function prepareExec(ctx: Context, opts: ExecOptions) {
  if (opts.command.length === 0) throw new UserError('no command given (usage: clawpod exec [OPTIONS] -- CMD [ARG...])');
  const rules = await resolveRules(ctx, opts.policy);
  if (opts.atHostPath) rules.workspaceAt = 'host';
  const narrowed = opts.narrow ? narrowRules(rules, opts.narrow) : {};
  const workspace = resolveWorkspace(ctx, rules, opts.workspace, opts.cwd);
  const backend = ctx.backend(opts.backend);
  const degraded = checkGuards(backend.probe(rules), rules, opts.allowDegraded);
  const plan = planEgress(rules, ctx.env, (p) => fs.readFileSync(p, 'utf8'));
  const settings = resolveSettings(rules, plan.redact, { home: ctx.home, env: ctx.env, readFile: (p) => fs.readFileSync(p, 'utf8') });
  return { rules, workspace, backend, degraded, plan, settings, narrowed };
}

export async function runExec(ctx: Context, opts: ExecOptions, onStart?: (id: string, pod: RunningPod) => void): Promise<ExecSummary> {
  const { rules, workspace, backend, degraded, plan, settings } = await prepareExec(ctx, opts);
  const id = newRunId();
  const dir = ctx.runDir(id);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const changesDir = rules.workspace === 'overlay' && workspace ? path.join(dir, 'changes') : null;
  // The pod is prepared first and held: its set-up (a cgroup join may wait for an RCU grace
  // period) overlaps with the bookkeeping below. It runs nothing until go().
  let audit: AuditWriter | null = null;
  const early: PodEvent[] = [];
  const refused = refusalTally();
  const capsHit = new Set<string>();
  const record = (e: PodEvent | ProxyEvent) => {
    observeEvent(refused, e);
    if (e.type === 'limit.hit' && typeof e.data.cap === 'string') capsHit.add(e.data.cap);
    if (audit) audit.append(e.type, e.data); else early.push(e as PodEvent);
  };
  let pod: RunningPod;
  let egress: RunningEgress | null = null;
  // With secrets, pod output goes through a redactor: the pod never holds a value, but an
  // upstream could echo one back.
  const stdio = plan.secrets.length && opts.stdio === 'inherit' ? 'pipe' : opts.stdio;
  try {
    if (plan.needed) egress = await startEgress(plan, rules, id, backend.egressPaths(id), record);
    pod = await backend.start({
      id, rules, workspace, command: opts.command, changesDir, allowDegraded: opts.allowDegraded, stdio, hold: true,
      stdinInherit: opts.stdio === 'inherit',
      env: { ...plan.podEnv, ...settings.env }, etc: settings.etc, egress: egress?.egress,
    }, record);
  } catch (err) {
    await egress?.close();
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  if (stdio !== opts.stdio) {
    pod.stdout?.pipe(redactingStream(plan.secrets)).pipe(process.stdout, { end: false });
    pod.stderr?.pipe(redactingStream(plan.secrets)).pipe(process.stderr, { end: false });
  }
  const auditPath = path.join(dir, 'audit.jsonl');
  let outcome: PodOutcome;
  let manifest: Manifest | null = null;
  try {
    const store = ctx.store();
    // Fail closed: a pod whose actions the log can no longer record is stopped.
    audit = AuditWriter.create(auditPath, id, { redact: plan.redact, maxBytes: auditMaxBytes(ctx), onLimit: () => pod.stop('the audit log reached its size cap') });
    store.createRun({
      id, kind: 'exec', status: 'running', command: opts.command.map(plan.redact), workspace: workspace ?? '', workspaceMode: rules.workspace,
      policySource: rules.source, backend: backend.name, pid: process.pid, auditPath, runDir: dir,
    });
  } catch (err) {
    pod.stop('clawpod could not record the run');
    await pod.wait().catch(() => undefined);
    await egress?.close();
    if (!audit) fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  try {
    audit.append('run.start', { kind: 'exec', command: opts.command, workspace, workspaceMode: rules.workspace, workspaceAt: podWorkspaceDir(rules, workspace), policy: rules.source, backend: backend.name, resources: rules.resources, settings: settings.keys });
    for (const e of [...degraded, ...early.splice(0)]) audit.append(e.type, e.data);
    for (const reason of settings.dropped) audit.append('policy.deny', { reason });
    manifest = snapshotWorkspace(dir, changesDir, workspace, podWorkspaceDir(rules, workspace));
    pod.go();
    audit.append('exec.start', { command: opts.command, pid: pod.pid, uid: pod.uid });
    process.stderr.write(`clawpod: run ${id}\n`);
    // Leftovers of clawpods that died are cleaned while our pod runs.
    reapInterrupted(ctx);
    onStart?.(id, pod);
    outcome = await withStopSignals(pod);
  } catch (err) {
    pod.stop('clawpod failed');
    await pod.wait().catch(() => undefined);
    await egress?.close();
    finishFailed(ctx, id, audit, err);
    throw err;
  }
  await egress?.close();
  const refusedLine = refused.line();
  if (refusedLine) process.stderr.write(`${refusedLine}\n`);
  if (!outcome.limitHit && audit.limitReached) outcome = { ...outcome, limitHit: 'audit' as const };
  audit.append('exec.exit', { exitCode: outcome.exitCode, durationMs: Math.round(outcome.durationMs), limitHit: outcome.limitHit, stoppedBy: outcome.stoppedBy ?? null });
  const filesChanged = recordChanges(audit, changesDir, workspace, manifest, plan.secrets, rules.ignore);
  if (!outcome.limitHit && audit.limitReached) outcome = { ...outcome, limitHit: 'audit' as const };
  const status = outcome.limitHit === 'timeout' ? 'timeout' : outcome.limitHit || outcome.stoppedBy ? 'killed' : 'done';
  audit.append('run.end', { status, exitCode: outcome.exitCode, limitHit: outcome.limitHit, filesChanged });
  audit.close();
  ctx.store().updateRun(id, {
    status, endedAt: new Date().toISOString(), exitCode: outcome.exitCode, limitHit: outcome.limitHit,
    diffState: filesChanged > 0 ? 'pending' : 'none', filesChanged, summary: chainHead(audit),
  });
  return { run: id, exitCode: outcome.exitCode, status, limitHit: outcome.limitHit, durationMs: Math.round(outcome.durationMs), filesChanged, auditPath, refused: refused.byHost(), capsHit: [...capsHit] };
}

/** The run's audit byte cap: CLAWPOD_AUDIT_MAX_BYTES, else the writer's default. */
export function auditMaxBytes(ctx: Context): number | undefined {
  return Number(ctx.env.CLAWPOD_AUDIT_MAX_BYTES) || undefined;
}

/** Ctrl-C, SIGTERM or SIGHUP to clawpod stop the pod, then clawpod exits normally. */
async function withStopSignals(pod: RunningPod): Promise<PodOutcome> {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const handlers = signals.map((s) => { const h = () => pod.stop(s); process.on(s, h); return [s, h] as const; });
  try { return await pod.wait(); } finally { for (const [s, h] of handlers) process.off(s, h); }
}

/** The workspace as the run starts: kept with the run (apply checks against it) and returned. */
export function snapshotWorkspace(dir: string, changesDir: string | null, workspace: string | null, podDir?: string): Manifest | null {
  if (!changesDir || !workspace) return null;
  // The walk goes by name: the root must be the same directory before and after it, and its
  // identity is kept so apply writes into this directory and no other (see workspaceIdentity).
  const before = workspaceIdentity(workspace);
  let manifest: Manifest;
  try { manifest = takeManifest(workspace); } catch (e) {
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
  } catch { return null; }
}

/** file.write events from the change set, after secret values are scrubbed from it; returns how
 *  many paths changed. */
export function recordChanges(
  audit: AuditWriter, changesDir: string | null, workspace: string | null, manifest: Manifest | null, secrets: ResolvedSecret[],
  ignorePatterns: string[] = [],
): number {
  // The prelude writes no change set at all when the pod changed nothing.
  if (!changesDir || !workspace || !manifest || !fs.existsSync(changesDir)) return 0;
  for (const f of scrubChangeSet(path.join(changesDir, 'tree'), secrets)) {
    audit.append('policy.deny', { reason: 'a secret value in a file the pod wrote was replaced with [secret:NAME]', path: f });
  }
  // file.write per reviewed change, one files.ignored for the rest (see record-changes.ts).
  return recordChangeSet(audit, changesDir, workspace, manifest, ignorePatterns);
}

/** The chain's head, kept in the store: a log cut short at a line boundary still verifies on
 *  its own, but no longer matches the head recorded when the run ended. */
export function chainHead(audit: AuditWriter): Record<string, unknown> {
  return { auditEvents: audit.seq, auditHead: audit.lastHash };
}

function finishFailed(ctx: Context, id: string, audit: AuditWriter, err: unknown): void {
  const message = err instanceof Error ? err.message : String(err);
  try {
    audit.append('run.end', { status: 'failed', exitCode: 125, error: message });
    audit.close();
  } finally {
    ctx.store().updateRun(id, { status: 'failed', endedAt: new Date().toISOString(), exitCode: 125, diffState: 'none', summary: chainHead(audit) });
  }
}

/** Runs left 'running' by a clawpod that died: their pods are reaped, their chains closed. */
export function reapInterrupted(ctx: Context): string[] {
  try { ctx.backend('bwrap').reap(); } catch { /* backend absent */ }
  const done: string[] = [];
  let running: ReturnType<ReturnType<Context['store']>['runningRuns']>;
  try { running = ctx.store().runningRuns(); } catch { return done; /* the command itself reports a broken store */ }
  for (const run of running) {
    // Alive means the same clawpod: this boot, its start time, not a zombie (a pid can be reused).
    if (runAlive(run)) continue;
    // Each run on its own: one that cannot be reaped must never stop the others or the command.
    try { reapOne(ctx, run); done.push(run.id); } catch (e) {
      process.stderr.write(`clawpod: could not close interrupted run ${run.id}: ${(e as Error).message} (remove ${run.runDir ?? 'its directory'} by hand)\n`);
    }
  }
  return done;
}

function reapOne(ctx: Context, run: { id: string; auditPath?: string | null; runDir?: string | null }): void {
  let summary: Record<string, unknown> | null = null;
  try {
    if (!run.auditPath) throw new Error('no audit path');
    const audit = AuditWriter.resume(run.auditPath, run.id);
    audit.append('run.end', { status: 'interrupted', exitCode: null, reason: 'clawpod exited before the run finished' });
    audit.close();
    summary = chainHead(audit);
  } catch { /* the chain's file is gone; the store still says what happened */ }
  // The store first: a change set harvested while clawpod was dying may be partial, and once the
  // run says 'none' it is never offered for apply, even if removing it fails below.
  ctx.store().updateRun(run.id, { status: 'interrupted', endedAt: new Date().toISOString(), diffState: 'none', summary });
  // Iterative: a pod can leave a tree deep enough to overflow fs.rmSync's recursion.
  if (run.runDir) for (const d of ['changes', 'changes.partial']) removeTree(path.join(run.runDir, d));
}
