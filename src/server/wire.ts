// How serve's parts are joined: the schedules submit into the queue, each firing's request
// resolved exactly as POST /v1/runs resolves one (workspace under the roots, policy checked).
import type { Context } from '../core/context.js';
import type { ScheduleRoutes } from './api.js';
import type { RunQueue } from './queue.js';
import { type ResolvedRequest, resolveRequest } from './requests.js';
import { Scheduler } from './schedules.js';

export type ServerSchedules = ScheduleRoutes & { start(): Promise<void> | void; stop(): Promise<void> | void };

export function makeScheduler(ctx: Context, queue: RunQueue, roots: string[], log: (line: string) => void): ServerSchedules {
  return new Scheduler<ResolvedRequest>({
    store: ctx.store(),
    resolve: (run) => resolveRequest(ctx, run, roots),
    submit: (req, o) => {
      // overlap "queue" waits behind one run, never piles up: a schedule firing every second
      // must not fill the shared queue.
      if (queue.activeOf(o.scheduleId) >= 2) throw new Error(`schedule ${o.scheduleId} already has a run waiting behind a running one; this firing is skipped`);
      queue.submit(req, { scheduleId: o.scheduleId });
    },
    activeOf: (id) => queue.activeOf(id),
    onError: (line) => log(`clawpod: ${line}`),
  });
}
