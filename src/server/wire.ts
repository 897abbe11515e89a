// How serve's parts are joined: the schedules submit into the queue, resolving each firing's
// request exactly as POST /v1/runs does.
import type { Context } from '../core/context.js';
import type { ScheduleRoutes } from './api.js';
import type { RunQueue } from './queue.js';

export function makeScheduler(
  _ctx: Context,
  _queue: RunQueue,
  _roots: string[],
  _log: (line: string) => void,
): (ScheduleRoutes & { start(): void; stop(): void }) | undefined {
  return undefined;
}
