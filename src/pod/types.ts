// The seam between pods and everything else: the agent and CLI see only these types.
import { ClawpodError } from '../util/errors.js';
import type { Rules } from '../policy/types.js';

export type GuardState = 'active' | 'degraded' | 'missing';

/** Every guard a backend reports (hostGuards in host.ts for bwrap): a closed set, so a check
 *  such as capValue or a test cannot name a guard that no backend has. */
export type GuardName =
  | 'bubblewrap'
  | 'pod prelude'
  | 'pod helpers'
  | 'user namespaces'
  | 'namespaces'
  | 'seccomp'
  | 'no new privileges'
  | 'capabilities'
  | 'network'
  | 'dedicated uid'
  | 'memory cap'
  | 'cpu cap'
  | 'pids cap'
  | 'timeout'
  | 'disk cap'
  | 'workspace overlay';

export interface Guard {
  name: GuardName;
  state: GuardState;
  detail: string;
  /** How to make a missing or degraded guard active. */
  fix?: string;
  /** A cap the policy asks for: missing here means refuse unless --allow-degraded. */
  cap?: boolean;
}

/** 'changes': the change set was refused at the pod's end (too big, too many entries, too deep,
 *  a name that is not UTF-8); the pod itself was not stopped by it. */
export type LimitName = 'memory' | 'pids' | 'timeout' | 'disk' | 'changes' | 'audit' | 'executor protocol';

export interface PodSpec {
  id: string;
  rules: Rules;
  /** realpath of the host workspace; null when the policy says workspace: none. */
  workspace: string | null;
  command: string[];
  /** Where the overlay's change set is saved when the pod ends (overlay mode). */
  changesDir: string | null;
  allowDegraded: boolean;
  /** inherit: the pod shares clawpod's terminal streams; pipe: the caller reads them. */
  stdio: 'inherit' | 'pipe';
  /** Give the pod clawpod's stdin even when its output is piped (exec with secrets redacts output). */
  stdinInherit?: boolean;
  /** The pod's stdin is a pipe the caller writes (RunningPod.stdin): a terminal is relayed, never
   *  handed to the pod (it could write to it unrecorded, or turn off the user's Ctrl-C). */
  stdinPipe?: boolean;
  /** Files clawpod writes into the pod's read-only /etc, by name (gitconfig, npmrc): data, never a host path. */
  etc?: Record<string, string>;
  /** Extra variables set by clawpod itself (never secrets). */
  env?: Record<string, string>;
  /** Prepare the pod but start the command only on go(): set-up overlaps the caller's work. */
  hold?: boolean;
  /** The pod's one way out: the host egress proxy's unix socket (absent: no network at all). */
  egress?: PodEgress;
  /** Called once the pod's record, uid and groups exist, before its prelude starts, with the
   *  pod's uid (null: it runs as clawpod's own user): the run starts its egress proxy here, so
   *  the socket exists before bwrap binds it and a crash leaves its files to the record's reap. */
  beforeStart?: (podUid: number | null) => Promise<void>;
  /** A live pod: `command` is ignored; commands are sent later with LivePod.exec (see live.ts). */
  live?: boolean;
  /** A terminal of the pod's own (clawpod exec -t; not for live pods): stdin and stdout are the
   *  relay's pipes to it (pod/tty.ts, cli/pty.ts), stderr is the same terminal; `stdio` is unused. */
  tty?: boolean;
  /** That terminal's size at start (default 24x80); RunningPod.resize changes it. */
  ttySize?: { rows: number; cols: number };
  /** Keep the stage a tmpfs (memory) even where it could be a disk image: the benchmark's
   *  comparison and tests (CLAWPOD_STAGE=tmpfs does the same for every pod). */
  forceTmpfsStage?: boolean;
  /** A warm pod (pod/warm.ts, Backend.warm): started whole with no run; `command` and `changesDir`
   *  are ignored until WarmPod.claim binds it to one. */
  warm?: boolean;
}

export interface PodEgress {
  /** Host path of the proxy's unix socket; the backend gives it to the pod's uid alone. */
  socketPath: string;
  /** Host path of a PEM bundle (system roots + the run's CA) the pod's clients trust. */
  caBundle?: string;
}

export interface PodOutcome {
  exitCode: number;
  limitHit: LimitName | null;
  durationMs: number;
  /** Set when clawpod stopped the pod (Ctrl-C, SIGTERM, caller's stop()). */
  stoppedBy?: string;
}

export interface PodEvent {
  type: 'limit.hit' | 'guard.degraded' | 'policy.deny';
  data: Record<string, unknown>;
}

export interface RunningPod {
  id: string;
  pid: number;
  /** The pod's host uid (privileged mode), or null when pods run as the invoking user. */
  uid: number | null;
  guards: Guard[];
  stdin: NodeJS.WritableStream | null;
  stdout: NodeJS.ReadableStream | null;
  stderr: NodeJS.ReadableStream | null;
  wait(): Promise<PodOutcome>;
  /** The command's own exit status as soon as the prelude has reaped it, before the harvest and
   *  teardown wait() also waits for (a stopped command shows its signal: wait() says why). */
  exited?(): Promise<number>;
  /** Starts a pod prepared with hold; the wall-clock cap counts from here. */
  go(): void;
  /** Kills the whole pod tree now. */
  stop(reason: string): void;
  /** A pod with a terminal (spec.tty): sets its size; its foreground group gets SIGWINCH. */
  resize?(rows: number, cols: number): void;
}

/** A pod started ahead of any run (Backend.warm): its resident waits for one command. */
export interface WarmPod {
  /** stop() retires it unused; wait() is its end. */
  readonly pod: RunningPod;
  /** Its resident is waiting for the command: a claim now starts nothing but the command. */
  readonly ready: boolean;
  /** Binds the pod to one run (once): the run's command, change set destination and events.
   *  The returned pod's go() sends the command (the wall clock counts from there). Null when
   *  the pod no longer matches the spec (a source it mounted was replaced since): retire it. */
  claim(spec: PodSpec, onEvent: (e: PodEvent) => void): RunningPod | null;
}

export interface Backend {
  name: string;
  /** Every guard and its state on this host, for doctor and for refusing to run. */
  probe(rules?: Rules): Guard[];
  start(spec: PodSpec, onEvent: (e: PodEvent) => void): Promise<RunningPod>;
  /** Starts a warm pod of this spec's shape (absent: the backend has none; runs start cold). */
  warm?(spec: PodSpec): Promise<WarmPod>;
  /** Cleans state of pods whose clawpod process died. Returns the pod ids reaped. */
  reap(): string[];
  /** Where a pod's egress socket and CA bundle go: paths its pod can be given. */
  egressPaths(podId: string): PodEgress;
}

/** A failure to set a pod up: clawpod's own fault or the host's, exit 125, one line. */
export class PodError extends ClawpodError {}
