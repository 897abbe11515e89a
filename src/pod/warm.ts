// Warm pods: a small pool of pods started whole ahead of any run (prelude, cgroups, stage,
// overlay on the workspace, bwrap, seccomp, namespaces), each waiting in clawpod-podwait for one
// command. A run of a pooled shape takes a fresh one, so what is left of its start is one execve;
// a pod is never reused (one take, one command) and the pool refills in the background. Only
// shapes with no way out are pooled (no egress, no secrets, no terminal, no input, an overlay
// workspace or none, no writable mount): everything else starts cold, as it always did.
import crypto from 'node:crypto';
import type { Backend, PodEvent, PodSpec, RunningPod, WarmPod } from './types.js';

export interface WarmPoolOptions {
  /** Ready pods kept per shape. */
  perShape: number;
  /** Shapes kept at most; a new one retires the least recently used. */
  maxShapes: number;
  /** An idle pod older than this is retired (not replaced: the shape's next run refills it). */
  maxIdleMs: number;
  /** A failed warm start: its shape waits this long before it is tried again. */
  retryMs?: number;
  /** One line per warm start that failed (the server's log). */
  onError?: (line: string) => void;
}

/** What a run's start asks of a pool (core's ExecOptions.pods). */
export interface PodSource {
  /** The backend its pods are of: a run on another starts cold. */
  readonly backend: Backend;
  take(spec: PodSpec, onEvent: (e: PodEvent) => void): RunningPod | null;
}

/** Shapes remembered as asked for once. */
const SEEN_MAX = 1024;
/** The longest a take's refill waits for the taken pod to end (see refillAfter). */
const REFILL_DELAY_MS = 250;

interface Entry {
  warm: WarmPod;
  idle: NodeJS.Timeout;
}

interface Shape {
  key: string;
  /** The spec warm pods of this shape start from (no run's id, command or change set). */
  template: PodSpec;
  idle: Entry[];
  starting: number;
  retryAt: number;
}

/** Sorted keys all the way down: one spelling per value. */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
    );
  return v;
}

/**
 * The pool's key for a spec: a fingerprint of everything that shapes the pod before its command
 * (the rules but their source's name, the workspace's real path, the pod's env and /etc files,
 * the stage kind), or null when the spec is not for a warm pod: it can reach out (egress,
 * secrets), has a terminal or input, writes a host directory (rw workspace or mount: a warm pod
 * would hold its apply lock while idle), or is a live pod.
 */
export function shapeKey(spec: PodSpec): string | null {
  const r = spec.rules;
  if (spec.live || spec.tty || spec.stdinPipe || spec.stdinInherit || spec.egress || spec.stdio !== 'pipe') return null;
  if (r.network.allow.length > 0 || r.secrets.length > 0) return null;
  if ((r.workspace !== 'overlay' && r.workspace !== 'none') || r.mounts.some((m) => m.mode === 'rw')) return null;
  const { source: _name, ...rules } = r;
  const shape = {
    rules,
    workspace: r.workspace === 'none' ? null : spec.workspace,
    env: spec.env ?? {},
    etc: spec.etc ?? {},
    allowDegraded: spec.allowDegraded,
    forceTmpfsStage: Boolean(spec.forceTmpfsStage),
  };
  return crypto
    .createHash('sha256')
    .update(JSON.stringify(canonical(shape)))
    .digest('hex');
}

export class WarmPool implements PodSource {
  private readonly shapes = new Map<string, Shape>();
  /** Shapes asked for before (oldest first): a second ask makes the shape. */
  private readonly seen = new Map<string, true>();
  private readonly pending = new Set<Promise<unknown>>();
  private readonly ending = new Set<Promise<unknown>>();
  private closed = false;
  private n = 0;
  private readonly tag = crypto.randomBytes(3).toString('hex');

  constructor(
    readonly backend: Backend,
    private readonly o: WarmPoolOptions,
  ) {}

  /** A fresh ready pod of this spec's shape, bound to the run (its go() starts the command), or
   *  null: start it cold. Either way the shape is (re)filled in the background, from its second
   *  run on: a shape asked for once (one run on a workspace) gets no pods nobody would take. */
  take(spec: PodSpec, onEvent: (e: PodEvent) => void): RunningPod | null {
    const shape = this.shapeOf(spec, false);
    if (!shape) return null;
    const at = shape.idle.findIndex((e) => e.warm.ready);
    let pod: RunningPod | null = null;
    if (at >= 0) {
      const [e] = shape.idle.splice(at, 1);
      clearTimeout(e.idle);
      pod = e.warm.claim(spec, onEvent);
      // Not this run's after all (a source it mounted was replaced since): nor are its siblings.
      if (!pod) for (const x of [e, ...shape.idle.splice(0)]) this.retire(x, 'its workspace was replaced');
    }
    if (pod) this.refillAfter(shape, pod);
    else setImmediate(() => this.fill(shape));
    return pod;
  }

  /** Starts filling this spec's shape (nothing for a spec that is not pooled). */
  prime(spec: PodSpec): void {
    const shape = this.shapeOf(spec, true);
    if (shape) this.fill(shape);
  }

  /** Ready pods of this spec's shape right now (of every shape without one). */
  readyCount(spec?: PodSpec): number {
    const shapes = spec ? [this.shapes.get(shapeKey(spec) ?? '')] : [...this.shapes.values()];
    return shapes.reduce((n, s) => n + (s?.idle.filter((e) => e.warm.ready).length ?? 0), 0);
  }

  /** Stops every idle warm pod and waits for them, and for those still starting, to end. */
  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.shapes.values()) for (const e of s.idle.splice(0)) this.retire(e, 'the pool closed');
    this.shapes.clear();
    while (this.pending.size || this.ending.size) await Promise.allSettled([...this.pending, ...this.ending]);
  }

  /** The spec's shape, made (retiring the least recently used past maxShapes) and marked used;
   *  null for a shape not pooled, or (unless `now`) seen for the first time. */
  private shapeOf(spec: PodSpec, now: boolean): Shape | null {
    if (this.closed || !this.backend.warm || this.o.perShape <= 0) return null;
    const key = shapeKey(spec);
    if (!key) return null;
    let shape = this.shapes.get(key);
    if (shape) this.shapes.delete(key);
    else if (!now && !this.seen.has(key)) {
      this.seen.set(key, true);
      if (this.seen.size > SEEN_MAX) this.seen.delete(this.seen.keys().next().value as string);
      return null;
    } else {
      shape = { key, template: { ...spec, id: '', command: [], changesDir: null, hold: false }, idle: [], starting: 0, retryAt: 0 };
      while (this.shapes.size >= Math.max(1, this.o.maxShapes)) {
        const [oldKey, old] = this.shapes.entries().next().value as [string, Shape];
        this.shapes.delete(oldKey);
        for (const e of old.idle.splice(0)) this.retire(e, 'its shape was the least recently used');
      }
    }
    this.shapes.set(key, shape);
    return shape;
  }

  /** A warm start's set-up holds this process's event loop for a few ms (cgroups, the spawn) and
   *  the CPU: started at the take, it delayed the taken run's own exit by that much (measured
   *  4.6 vs 2.1 ms to the exit code). So the refill waits until the taken pod has ended (and the
   *  run's own continuation has run), or REFILL_DELAY_MS at most: a long command does not hold it. */
  private refillAfter(shape: Shape, pod: RunningPod): void {
    let once = false;
    const refill = () => {
      if (once) return;
      once = true;
      clearTimeout(timer);
      setImmediate(() => this.fill(shape));
    };
    const timer = setTimeout(refill, REFILL_DELAY_MS);
    timer.unref();
    pod.wait().then(refill, refill);
  }

  private fill(shape: Shape): void {
    while (!this.closed && this.shapes.get(shape.key) === shape && Date.now() >= shape.retryAt && shape.idle.length + shape.starting < this.o.perShape) {
      this.start(shape);
    }
  }

  private start(shape: Shape): void {
    const warm = this.backend.warm;
    if (!warm) return;
    shape.starting++;
    const id = `w-${this.tag}-${++this.n}`;
    const p = warm
      .call(this.backend, { ...shape.template, id })
      .then(
        (w) => {
          if (this.closed || this.shapes.get(shape.key) !== shape) {
            this.stopPod(w, 'the pool closed');
            return;
          }
          const entry: Entry = { warm: w, idle: setTimeout(() => this.retireIdle(shape, entry), this.o.maxIdleMs) };
          entry.idle.unref();
          shape.idle.push(entry);
          // Ended while idle (killed, or its set-up failed late): no longer offered. Not
          // replaced at once: a shape whose pods die at start must not spin.
          const gone = (err?: unknown) => {
            const at = shape.idle.indexOf(entry);
            if (at < 0) return;
            shape.idle.splice(at, 1);
            clearTimeout(entry.idle);
            if (err) this.failed(shape, err);
          };
          w.pod.wait().then(() => gone(), gone);
        },
        (err) => this.failed(shape, err),
      )
      .finally(() => {
        shape.starting--;
        this.pending.delete(p);
      });
    this.pending.add(p);
  }

  private failed(shape: Shape, err: unknown): void {
    shape.retryAt = Date.now() + (this.o.retryMs ?? 30_000);
    this.o.onError?.(`clawpod: a warm pod could not be started (runs of its shape start cold): ${(err as Error).message ?? err}`);
  }

  private retireIdle(shape: Shape, e: Entry): void {
    const at = shape.idle.indexOf(e);
    if (at < 0) return;
    shape.idle.splice(at, 1);
    this.retire(e, 'idle too long');
    if (shape.idle.length === 0 && shape.starting === 0 && this.shapes.get(shape.key) === shape) this.shapes.delete(shape.key);
  }

  private retire(e: Entry, why: string): void {
    clearTimeout(e.idle);
    this.stopPod(e.warm, why);
  }

  /** Stops an unclaimed pod: its resident never ran anything; nothing is harvested. */
  private stopPod(w: WarmPod, why: string): void {
    w.pod.stop(`warm pod retired: ${why}`);
    const end = w.pod
      .wait()
      .catch(() => undefined)
      .finally(() => this.ending.delete(end));
    this.ending.add(end);
  }
}
