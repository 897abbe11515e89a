// TEST HOOK, not a feature: CLAWPOD_TEST_CRASH_AT=STEP makes clawpod SIGKILL itself right after
// STEP of a run's life, so test/crash-points.test.ts can check that the store and the audit chain
// agree after a crash at any point (once any later clawpod has reaped). Unset (always, outside
// that test), every crashPoint() is one string comparison. The steps, in the order a run takes
// them, are every point where a run writes state (store, run dir, chain, pod, egress files).
import fs from 'node:fs';

export const CRASH_STEPS = [
  /** The pod's record, uid lock and cgroups exist, and the egress proxy listens (its socket, and
   *  the CA when the run has secrets); the prelude is not started yet. */
  'egress',
  /** The pod is started and held: the prelude and bwrap set it up, the command waits for go. */
  'pod-held',
  /** The store row exists (status running, this clawpod's pid). */
  'store-row',
  /** The run's directory exists. */
  'run-dir',
  /** The chain's file exists, empty. */
  'chain',
  /** run.start is in the chain. */
  'run-start',
  /** The workspace snapshot (base.json, root.id, ignore sources) is kept with the run. */
  'snapshot',
  /** exec: the pod was let go and exec.start is in the chain. */
  'exec-start',
  /** exec: mid-run, the pod has printed its first output and still runs. */
  'pod-output',
  /** exec: the pod has exited; the prelude harvested the change set into the run dir. */
  'pod-exited',
  /** exec: exec.exit is in the chain. */
  'exec-exit',
  /** The egress proxy is closed (its files removed). */
  'egress-closed',
  /** The change set is recorded in the chain (file.write events). */
  'changes-recorded',
  /** run.end is in the chain (closed, fsync'd); the store row still says running. */
  'run-end',
  /** The store row says how the run ended. */
  'store-end',
  /** --rm: the run's directory is set aside (removing/ID) and its row is gone; the tree stays. */
  'rm-row',
] as const;

export type CrashStep = (typeof CRASH_STEPS)[number];

/** Test hook (see above): SIGKILLs this process when CLAWPOD_TEST_CRASH_AT names `step`, first
 *  saying which run on stderr (before its row exists, nothing else names it). */
export function crashPoint(env: NodeJS.ProcessEnv, step: CrashStep, runId?: string): void {
  if (env.CLAWPOD_TEST_CRASH_AT !== step) return;
  if (runId) fs.writeSync(2, `clawpod: test crash at ${step} (run ${runId})\n`);
  process.kill(process.pid, 'SIGKILL');
}

/** Whether the hook is set for `step` (for a step that needs a listener to be reached at all). */
export function crashWanted(env: NodeJS.ProcessEnv, step: CrashStep): boolean {
  return env.CLAWPOD_TEST_CRASH_AT === step;
}
