// A Backend without isolation and without root, for tests only: core's lifecycle (hold/go, stop,
// wait, caps, change sets, live pods, reaping) is exercised without bwrap. The pod's command runs
// as a plain child process of the test in a copy of the workspace; what it changed there is
// written as a change set in the prelude's format (fake-harvest.ts); a live pod is the executor
// protocol spoken in JS (fake-executor.ts). It is never in DEFAULT_BACKENDS: a test hands it to
// createContext in a registry of its own. (testkit/ sits on the top layer: nothing but a test can
// import it; see scripts/layering.mjs.)
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { checkGuards } from '../pod/guards.js';
import { podWorkspaceDir } from '../pod/workspace-at.js';
import {
  PodError,
  type Backend,
  type Guard,
  type GuardName,
  type LimitName,
  type PodEgress,
  type PodEvent,
  type PodOutcome,
  type PodSpec,
  type RunningPod,
} from '../pod/types.js';
import type { Rules } from '../policy/types.js';
import { harvestCopy } from './fake-harvest.js';
import { FakeExecutor, killGroup } from './fake-executor.js';

// A Record, so a guard added to GuardName without a line here fails to compile.
const GUARD_DETAIL: Record<GuardName, string> = {
  bubblewrap: 'none: the fake backend runs plain child processes',
  'pod prelude': 'none',
  'pod helpers': 'none',
  'user namespaces': 'none',
  namespaces: 'none',
  seccomp: 'none',
  'no new privileges': 'none',
  capabilities: 'none',
  network: 'none',
  'dedicated uid': 'none',
  'memory cap': 'none',
  'cpu cap': 'none',
  'pids cap': 'none',
  timeout: 'the wall clock, as the real backends',
  'disk cap': 'none',
  'workspace overlay': 'a copy of the workspace, diffed back',
};
const CAPS: GuardName[] = ['memory cap', 'cpu cap', 'pids cap'];

/** Every guard active (what the fake pretends, so a test sees the paths of a full host). */
export function activeGuards(): Guard[] {
  return (Object.keys(GUARD_DETAIL) as GuardName[]).map((name) => ({ name, state: 'active', detail: GUARD_DETAIL[name], cap: CAPS.includes(name) }));
}

/** Every guard active but these, which get `state` (and, for a cap, refuse unless degraded runs are allowed). */
export function guardsWith(state: 'degraded' | 'missing', ...names: GuardName[]): Guard[] {
  return activeGuards().map((g) => (names.includes(g.name) ? { ...g, state, detail: `${g.name} is off in this test`, fix: `turn ${g.name} back on` } : g));
}

/** What a test can do to a pod while it runs. */
export interface FakePod {
  spec: PodSpec;
  /** Where the command runs: a copy of the workspace (overlay, ro), the workspace (rw), or an empty dir. */
  dir: string;
  /** Records a pod event as the backend would (limit.hit that did not kill, guard.degraded...). */
  emit(e: PodEvent): void;
  /** The pod hit a cap it cannot go on past: limit.hit is recorded and the pod is killed. */
  hitLimit(cap: LimitName, data?: Record<string, unknown>): void;
  /** The live pod's executor calls so far (argv after the workspace path was mapped). */
  calls(): string[][];
}

export interface FakeBackendOptions {
  name?: string;
  /** What probe() reports (default: activeGuards()). */
  guards?: Guard[];
  /** Runs in start(): a throw is a pod that fails to start. */
  onStart?: (spec: PodSpec) => void | Promise<void>;
  /** Runs in go(), before the command starts: a throw breaks the run after it was recorded. */
  onGo?: (pod: FakePod) => void;
  /** Where egressPaths() points (default: a temp dir made when first asked). */
  stateDir?: string;
  /** reap()'s answer (default: none); a throw is a backend that cannot reap. */
  reap?: () => string[];
}

export interface FakeBackend extends Backend {
  /** Every spec start() was given, in order. */
  readonly starts: PodSpec[];
  /** Every pod started, in order. */
  readonly pods: FakePod[];
  /** How many times reap() was called. */
  reapCalls: number;
}

export function createFakeBackend(opts: FakeBackendOptions = {}): FakeBackend {
  let stateDir = opts.stateDir;
  const state = () => {
    stateDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-fake-'));
    fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    return stateDir;
  };
  const backend: FakeBackend = {
    name: opts.name ?? 'fake',
    starts: [],
    pods: [],
    reapCalls: 0,
    probe: (_rules?: Rules) => structuredClone(opts.guards ?? activeGuards()),
    async start(spec, onEvent) {
      backend.starts.push(spec);
      // As bwrap's start: the guards are checked again, whatever the caller did.
      checkGuards(backend.probe(spec.rules), spec.rules, spec.allowDegraded);
      if (spec.tty) throw new PodError('the fake backend has no terminals (test exec -t against the bwrap backend)');
      await opts.onStart?.(spec);
      // As bwrap's start: the run's egress proxy starts once the pod exists, before it runs.
      await spec.beforeStart?.(null);
      const { pod, control } = startPod(spec, onEvent, backend.probe(spec.rules), opts.onGo);
      backend.pods.push(control);
      return pod;
    },
    reap() {
      backend.reapCalls++;
      return opts.reap?.() ?? [];
    },
    egressPaths: (podId: string): PodEgress => ({ socketPath: path.join(state(), `${podId}.sock`), caBundle: path.join(state(), `${podId}-ca.pem`) }),
  };
  return backend;
}

/** Where the command runs and how its work comes back. */
function podDir(spec: PodSpec): { dir: string; harvest: () => void; cleanup: () => void } {
  const ws = spec.workspace;
  if (ws && spec.rules.workspace === 'rw') return { dir: ws, harvest: () => {}, cleanup: () => {} };
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-fakepod-'));
  const dir = path.join(base, 'workspace');
  if (ws && spec.rules.workspace !== 'none') fs.cpSync(ws, dir, { recursive: true, verbatimSymlinks: true });
  else fs.mkdirSync(dir);
  const overlay = ws && spec.rules.workspace === 'overlay' && spec.changesDir;
  return {
    dir,
    harvest: () => {
      if (overlay && spec.changesDir) harvestCopy(ws, dir, spec.changesDir);
    },
    cleanup: () => fs.rmSync(base, { recursive: true, force: true }),
  };
}

function startPod(spec: PodSpec, onEvent: (e: PodEvent) => void, guards: Guard[], onGo?: (pod: FakePod) => void): { pod: RunningPod; control: FakePod } {
  const where = podDir(spec);
  const inside = podWorkspaceDir(spec.rules, spec.workspace);
  // No mount namespace: the pod's workspace path in an argument is rewritten to the copy.
  const mapArg = (a: string) => (a === inside ? where.dir : a.startsWith(`${inside}/`) ? where.dir + a.slice(inside.length) : a);
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: where.dir, ...spec.env };
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const stdin = spec.live ? new PassThrough() : null;
  let started = performance.now();
  let limitHit: LimitName | null = null;
  let stoppedBy: string | undefined;
  let child: ChildProcess | null = null;
  let executor: FakeExecutor | null = null;
  let timer: NodeJS.Timeout | undefined;
  let going = false;
  let end!: (o: PodOutcome) => void;
  let broke!: (e: Error) => void;
  const done = new Promise<PodOutcome>((resolve, reject) => {
    end = resolve;
    broke = reject;
  });
  const kill = () => {
    killGroup(child);
    if (executor) {
      executor.stop();
      setImmediate(() => finish(137));
    }
    if (!going) finish(137);
  };
  const fire = (cap: LimitName, data: Record<string, unknown> = {}) => {
    if (limitHit || stoppedBy) return;
    limitHit = cap;
    onEvent({ type: 'limit.hit', data: { cap, limit: limitValue(cap, spec.rules), ...data } });
    kill();
  };
  let finished = false;
  function finish(raw: number): void {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    stdout.end();
    stderr.end();
    try {
      where.harvest();
    } catch (e) {
      broke(e as Error);
      return;
    } finally {
      where.cleanup();
    }
    end({ exitCode: limitHit === 'timeout' ? 124 : limitHit || stoppedBy ? 137 : raw, limitHit, durationMs: performance.now() - started, stoppedBy });
  }
  const control: FakePod = {
    spec,
    dir: where.dir,
    emit: (e) => onEvent(e),
    hitLimit: (cap, data) => fire(cap, data),
    calls: () => executor?.calls ?? [],
  };
  const go = () => {
    if (going || limitHit || stoppedBy) return;
    onGo?.(control);
    going = true;
    started = performance.now();
    timer = setTimeout(() => fire('timeout'), spec.rules.resources.timeoutMs);
    if (spec.live) {
      executor = new FakeExecutor(stdin as PassThrough, stdout, { cwd: where.dir, env, mapArg });
      void executor.done.then(() => finish(0));
      return;
    }
    child = spawn(spec.command[0], spec.command.slice(1).map(mapArg), {
      cwd: where.dir,
      env,
      detached: true,
      stdio: [spec.stdio === 'inherit' || spec.stdinInherit ? 'inherit' : 'ignore', 'pipe', 'pipe'],
    });
    child.stdout?.pipe(stdout, { end: false });
    child.stderr?.pipe(stderr, { end: false });
    child.on('error', (e) => {
      stderr.write(`${spec.command[0]}: ${e.message}\n`);
      finish(127);
    });
    child.on('close', (code, signal) => finish(code ?? 128 + (os.constants.signals[signal as NodeJS.Signals] ?? 9)));
  };
  const pod: RunningPod = {
    id: spec.id,
    get pid() {
      return child?.pid ?? -1;
    },
    uid: null,
    guards,
    stdin,
    stdout,
    stderr,
    wait: () => done,
    go,
    stop: (reason) => {
      if (!limitHit && !stoppedBy) {
        stoppedBy = reason;
        kill();
      }
    },
  };
  return { pod, control };
}

function limitValue(cap: LimitName, rules: Rules): number | null {
  switch (cap) {
    case 'memory':
      return rules.resources.memoryBytes;
    case 'pids':
      return rules.resources.pids;
    case 'timeout':
      return rules.resources.timeoutMs;
    case 'disk':
    case 'changes':
      return rules.resources.diskBytes;
    default:
      return null;
  }
}
