// How many pods of one clawpod process are being set up at once (pod/bwrap.ts).
//
// A pod's set-up is mostly mount work in the kernel (the stage, the overlay, bwrap's binds), and
// every mount of every namespace takes one host-wide lock (namespace_sem). Fifty pods started at
// once on two CPUs queue on it and on the run queue: measured here, 50 pods took 1.15-1.25x as
// long all at once as with 12 set-ups in flight and the rest waiting their turn. So a pod waits for a
// slot before its set-up and gives it back once its stage is ready (the prelude's started=1), or
// when it ends. A slot is only ever borrowed for SETUP_SLOT_MS: a set-up that hangs can slow the
// others, never stop them.
import os from 'node:os';

/** Set-ups in flight per CPU: 12 on a 2-CPU machine was among the fastest of 4 to 50 (README). */
export const SETUPS_PER_CPU = 6;
/** The longest a slot is held: past it the pod keeps setting up, outside the count. */
export const SETUP_SLOT_MS = 2_000;

export class SetupSlots {
  private inUse = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    readonly limit: number,
    private readonly holdMs = SETUP_SLOT_MS,
  ) {}

  /** Waits for a slot; the function it resolves to gives it back (once; later calls do nothing). */
  async acquire(): Promise<() => void> {
    if (this.inUse < this.limit) this.inUse++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      clearTimeout(lapse);
      // Handed straight to the next in line: inUse stays as it is.
      const next = this.waiting.shift();
      if (next) next();
      else this.inUse--;
    };
    const lapse = setTimeout(release, this.holdMs);
    lapse.unref();
    return release;
  }

  /** Slots taken now, and pods waiting for one. */
  stats(): { inUse: number; waiting: number } {
    return { inUse: this.inUse, waiting: this.waiting.length };
  }
}

/** The process's slots: SETUPS_PER_CPU for each CPU clawpod may use. */
export const podSetups = new SetupSlots(Math.max(4, SETUPS_PER_CPU * os.availableParallelism()));
