// One rule for refusing a pod, used before a run is created and again by the backend.
import type { Rules } from '../policy/types.js';
import { PodError, type Guard, type GuardName, type PodEvent } from './types.js';

/** Throws when a hard requirement is missing, or a cap is unless degraded runs are allowed.
 *  Returns the degraded-guard events to record when they are. */
export function checkGuards(guards: Guard[], rules: Rules, allowDegraded: boolean): PodEvent[] {
  const events: PodEvent[] = [];
  for (const g of guards) {
    if (g.state === 'active') continue;
    if (!g.cap && g.state === 'degraded') continue;
    if (!g.cap) throw new PodError(`cannot start a pod: ${g.name} is missing (${g.detail}); fix: ${g.fix}`);
    if (!allowDegraded) {
      throw new PodError(`cannot enforce the ${g.name} on this host (${g.detail}); fix: ${g.fix}, or pass --allow-degraded to run without it`);
    }
    events.push({ type: 'guard.degraded', data: { guard: g.name, detail: g.detail, policy: capValue(g.name, rules) } });
  }
  return events;
}

function capValue(guard: GuardName, rules: Rules): number | undefined {
  if (guard === 'memory cap') return rules.resources.memoryBytes;
  if (guard === 'cpu cap') return rules.resources.cpus;
  if (guard === 'pids cap') return rules.resources.pids;
  return undefined;
}
