// Warm pods (src/pod/warm.ts), in the same bench run as bare_spawn_true_p50_ms and
// pod_start_true_p50_ms, on the same spec (disk stage, overlay workspace):
// - warm_acquire_p50_ms: take a ready warm pod and run /bin/true in it, until its exit code is
//   known (the prelude has reaped the command: RunningPod.exited()).
// - warm_acquire_full_p50_ms: the same until wait() resolves: the harvest, the stage's
//   write-back and the pod's teardown included (what a run waits for before its change set).
// Each take starts from a pool at rest (its refill of the previous take done), one pod per
// shape, so the figure is a take's own cost, not the refill's competition for the CPU.
import { WarmPool } from '../src/pod/warm.js';
import type { Backend, PodSpec } from '../src/pod/types.js';

type Put = (name: string, value: number, unit: string) => void;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function warmMetrics(put: Put, backend: Backend, spec: (id: string, command: string[]) => PodSpec, p50: (xs: number[]) => number): Promise<void> {
  const pool = new WarmPool(backend, { perShape: 1, maxShapes: 1, maxIdleMs: 600_000, onError: (l) => process.stderr.write(`${l}\n`) });
  const exit: number[] = [];
  const full: number[] = [];
  let n = 0;
  try {
    for (let i = 0; i < 43; i++) {
      const s = spec(`bench-warm-${process.pid}-${n++}`, ['/bin/true']);
      pool.prime(s);
      for (let w = 0; pool.readyCount(s) === 0; w++) {
        if (w > 3000) throw new Error('no warm pod became ready in 30 s');
        await sleep(10);
      }
      const t = performance.now();
      const pod = pool.take(s, () => {});
      if (!pod) throw new Error('a ready warm pod was not taken');
      pod.stdout?.resume();
      pod.stderr?.resume();
      pod.go();
      const code = await pod.exited?.();
      const known = performance.now() - t;
      const o = await pod.wait();
      const all = performance.now() - t;
      if (code !== 0 || o.exitCode !== 0) throw new Error(`warm pod exited ${code}/${o.exitCode}`);
      // The first three warm the caches, as timeN does.
      if (i >= 3) {
        exit.push(known);
        full.push(all);
      }
    }
  } finally {
    await pool.close();
  }
  put('warm_acquire_p50_ms', p50(exit), 'ms');
  put('warm_acquire_full_p50_ms', p50(full), 'ms');
}
