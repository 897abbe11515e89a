// The bubblewrap backend's warm pods (Backend.warm, pooled by warm.ts): a pod started whole with
// clawpod-podwait (native/podwait.c) as its command, bound to one run by claimWarm. Its go() sends
// the run's command on the resident's stdin (podwait execve()s it: the pod's exit is the
// command's) and the change set's destination on FD.go (the prelude reads it once the command has
// ended: native/podinit.c --harvest-fd).
import fs from 'node:fs';
import path from 'node:path';
import { podCommand } from './command.js';
import type { HostFacts } from './host.js';
import { podWorkspaceDir } from './workspace-at.js';
import { shapeKey } from './warm.js';
import type { PodEvent, PodSpec, RunningPod } from './types.js';

/** As native/podwait.c: the most a request may hold (larger commands start cold). */
export const MAX_WARM_REQUEST = 1 << 20;
/** podwait's flag: the command's stdin is /dev/null (as a cold pod's without input). */
const STDIN_NULL = 1;

/** The identity of every source a pod mounts (bwrap.ts pinSources). */
type Pinned = { ids: Record<string, string>; owners: Record<string, { uid: number; gid: number }> };

/** What one warm pod knows about the run that claims it; mutated by claimWarm alone. */
export interface WarmBinding {
  /** Its resident said it is waiting (one byte on FD.channel). */
  ready: boolean;
  /** The request podwait reads, once a run claimed the pod. */
  frame: Buffer | null;
  changesDir: string | null;
  /** The identities its sources were mounted from (pinSources at warm-up). */
  pinned: Pinned | null;
  relay: EventRelay;
}

/** Events of the pod before a run claims it are held, then go to that run's stream. */
export interface EventRelay {
  emit(e: PodEvent): void;
  attach(to: (e: PodEvent) => void): void;
}

export function newWarmBinding(): WarmBinding {
  let to: ((e: PodEvent) => void) | null = null;
  const held: PodEvent[] = [];
  const relay: EventRelay = {
    emit: (e) => (to ? to(e) : held.push(e)),
    attach(t) {
      to = t;
      for (const e of held.splice(0)) t(e);
    },
  };
  return { ready: false, frame: null, changesDir: null, pinned: null, relay };
}

/** podwait's request: u32 len | u32 flags | argv, each NUL-terminated (little-endian); null when
 *  it would be over MAX_WARM_REQUEST or an argument holds a NUL (the run then starts cold). */
export function warmRequest(argv: string[]): Buffer | null {
  if (argv.length === 0 || argv[0] === '' || argv.some((a) => a.includes('\0'))) return null;
  const body = Buffer.from(`${argv.join('\0')}\0`);
  if (body.length + 4 > MAX_WARM_REQUEST) return null;
  const head = Buffer.alloc(8);
  head.writeUInt32LE(body.length + 4, 0);
  head.writeUInt32LE(STDIN_NULL, 4);
  return Buffer.concat([head, body]);
}

/** Binds a ready, unclaimed warm pod to one run. Null (and nothing changed) when it cannot be
 *  this run's: another shape, a source it mounted no longer the same object (swapped, or its
 *  owner changed), a command too large for a request. */
export function claimWarm(
  host: HostFacts,
  pinSources: (spec: PodSpec) => Pinned,
  pod: RunningPod,
  b: WarmBinding,
  template: PodSpec,
  spec: PodSpec,
  onEvent: (e: PodEvent) => void,
): RunningPod | null {
  if (!b.ready || b.frame || !b.pinned) return null;
  if (shapeKey(spec) === null || shapeKey(spec) !== shapeKey(template)) return null;
  let now: Pinned;
  try {
    now = pinSources(spec);
  } catch {
    return null;
  }
  if (JSON.stringify(now) !== JSON.stringify(b.pinned)) return null;
  const frame = warmRequest(podCommand(spec.command, host.layout, spec.workspace, spec.rules.workspace, podWorkspaceDir(spec.rules, spec.workspace)));
  if (!frame) return null;
  const harvested = spec.rules.workspace === 'overlay' && spec.workspace !== null ? spec.changesDir : null;
  // The prelude creates changesDir itself, and only when the pod changed something.
  if (harvested) fs.mkdirSync(path.dirname(harvested), { recursive: true, mode: 0o700 });
  b.frame = frame;
  b.changesDir = harvested;
  b.relay.attach(onEvent);
  return pod;
}
