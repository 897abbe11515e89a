// `clawpod exec`: one command in one fresh pod, recorded as a run with an audit chain and,
// in overlay mode, a change set waiting for review. The run's life is lifecycle.ts's; this is
// only what exec does differently: one command, its output relayed and kept, its exit code.
import type { Writable } from 'node:stream';
import type { PodOutcome, PodSpec, RunningPod } from '../pod/types.js';
import type { PodSource } from '../pod/warm.js';
import type { Context } from './context.js';
import { UserError } from './errors.js';
import type { RunIO } from './io.js';
import type { ResolvedSecret } from '../secrets/index.js';
import { openRun, removeRunFiles } from './lifecycle.js';
import { crashPoint, crashWanted } from './crash-points.js';
import { prepare, type PrepareOptions } from './prepare.js';

export { resolveRules, resolveWorkspace } from './prepare.js';
export { reapInterrupted } from './lifecycle.js';

export interface ExecOptions extends PrepareOptions {
  command: string[];
  /** The face: where output goes, what the pod reads, how the user interrupts. */
  io: RunIO;
  /** A terminal of the pod's own (exec -t): io.stdin/io.stdout are relayed by the face. */
  tty?: boolean;
  ttySize?: { rows: number; cols: number };
  /** --rm: drop the run's record and directory when it changed nothing. */
  removeIfUnchanged?: boolean;
  /** Warm pods (a server's pool, pod/warm.ts): a ready pod of the run's shape is taken first;
   *  none (or another backend's pool) and the pod starts cold. */
  pods?: PodSource;
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
  /** --rm removed the run's record (it changed nothing). */
  removed?: boolean;
}

/** onStart: the pod has started (a face attaches its terminal relay here; `secrets` are what
 *  that relay must redact from the pod's output). */
export async function runExec(
  ctx: Context,
  opts: ExecOptions,
  onStart?: (id: string, pod: RunningPod, secrets: ResolvedSecret[]) => void,
): Promise<ExecSummary> {
  if (opts.command.length === 0) throw new UserError('no command given (usage: clawpod exec [OPTIONS] -- CMD [ARG...])');
  const prepared = await prepare(ctx, opts);
  const { io } = opts;
  const tty = Boolean(opts.tty);
  let warm = false;
  const run = await openRun(ctx, {
    kind: 'exec',
    prepared,
    io,
    command: opts.command,
    start: { command: opts.command },
    podOf: (p: RunningPod) => p,
    // Output is always piped: to the face (redacted when the run has secrets) and kept with the run.
    startPod: async ({ id, changesDir, egress, beforeStart, record }) => {
      const spec: PodSpec = {
        id,
        rules: prepared.rules,
        workspace: prepared.workspace,
        command: opts.command,
        changesDir,
        allowDegraded: opts.allowDegraded,
        stdio: 'pipe',
        hold: true,
        stdinInherit: io.stdin === 'inherit' && !tty,
        stdinPipe: !tty && io.stdin !== null && io.stdin !== 'inherit',
        tty,
        ttySize: opts.ttySize,
        env: { ...prepared.plan.podEnv, ...prepared.settings.env },
        etc: prepared.settings.etc,
        egress,
        beforeStart,
      };
      const taken = opts.pods?.backend === prepared.backend ? opts.pods.take(spec, record) : null;
      warm = taken !== null;
      return taken ?? prepared.backend.start(spec, record);
    },
  });
  const pod = run.pod;
  let outcome: PodOutcome;
  try {
    // With a terminal of its own, the face relays it (onStart); the output is still kept.
    run.relayOutput(pod, tty ? { face: false } : {});
    const input = io.stdin && io.stdin !== 'inherit' ? io.stdin : null;
    if (input && pod.stdin) {
      (pod.stdin as Writable).on('error', () => {
        /* the pod closed its stdin: its exit says why */
      });
      input.pipe(pod.stdin as Writable);
    }
    // Leftovers of clawpods that died are cleaned while the held pod finishes its set-up (bwrap
    // builds it before go): here the reap overlaps it, after go it would delay the pod's end.
    run.reapOthers();
    pod.go();
    run.emit({
      source: 'run',
      type: 'exec.start',
      data: { command: opts.command, pid: pod.pid, uid: pod.uid, ...(tty ? { tty: true } : {}), ...(warm ? { warm: true } : {}) },
    });
    crashPoint(ctx.env, 'exec-start', run.id);
    if (crashWanted(ctx.env, 'pod-output')) pod.stdout?.once('data', () => crashPoint(ctx.env, 'pod-output', run.id));
    io.notice(`clawpod: run ${run.id}`);
    onStart?.(run.id, pod, prepared.plan.secrets);
    outcome = await untilStopped(pod, io);
    crashPoint(ctx.env, 'pod-exited', run.id);
    // The face's input is the face's again: nothing more goes to a pod that is gone.
    if (input && pod.stdin) input.unpipe(pod.stdin as Writable);
  } catch (err) {
    await run.fail(err);
    throw err;
  }
  // An interrupt that came after the command had ended (during the harvest) changed nothing.
  const interrupted = io.signal.aborted && outcome.stoppedBy !== undefined;
  run.emit({
    source: 'run',
    type: 'exec.exit',
    data: { exitCode: outcome.exitCode, durationMs: Math.round(outcome.durationMs), limitHit: outcome.limitHit, stoppedBy: outcome.stoppedBy ?? null },
  });
  crashPoint(ctx.env, 'exec-exit', run.id);
  const exitCode = interrupted ? 130 : outcome.exitCode;
  const status = interrupted
    ? (io.interruptStatus ?? 'interrupted')
    : outcome.limitHit === 'timeout'
      ? 'timeout'
      : outcome.limitHit || outcome.stoppedBy
        ? 'killed'
        : 'done';
  const filesChanged = await run.end({ status, exitCode, limitHit: outcome.limitHit, data: interrupted ? { stoppedBy: 'user' } : undefined });
  const limitHit = run.audit.limitReached && !outcome.limitHit ? 'audit' : outcome.limitHit;
  const removed = Boolean(opts.removeIfUnchanged) && run.leftNoTrace(status, filesChanged);
  if (removed) removeRunRecord(ctx, run.id);
  return {
    run: run.id,
    exitCode,
    status,
    limitHit,
    durationMs: Math.round(outcome.durationMs),
    filesChanged,
    auditPath: run.auditPath,
    refused: run.refused.byHost(),
    capsHit: [...run.capsHit],
    ...(removed ? { removed: true } : {}),
  };
}

/** --rm: a run that changed nothing leaves no record behind (its pod is long gone). */
export function removeRunRecord(ctx: Context, id: string): void {
  removeRunFiles(ctx, { id, runDir: ctx.runDir(id) });
}

/** The pod's end. An interrupt from the face (io.signal: Ctrl-C) or a hard stop (io.kill) stops
 *  the pod; what it changed so far is still harvested for review. */
async function untilStopped(pod: RunningPod, io: RunIO): Promise<PodOutcome> {
  const stop = (why: string) => () => pod.stop(why);
  const onInt = stop('interrupted by the user');
  const onKill = stop('stopped by the user');
  if (io.signal.aborted) onInt();
  io.signal.addEventListener('abort', onInt, { once: true });
  io.kill?.addEventListener('abort', onKill, { once: true });
  try {
    return await pod.wait();
  } finally {
    io.signal.removeEventListener('abort', onInt);
    io.kill?.removeEventListener('abort', onKill);
  }
}
