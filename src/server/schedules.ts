// Schedules of `clawpod serve`: a cron pattern, an interval or one time, each firing a fresh run
// from the schedule's POST /v1/runs body. A firing is one store transaction (next_fire moved by
// compare-and-set, last_fire set, the queued run row written), so a crash leaves it fired or not,
// and of two servers on one store exactly one fires it. A firing missed while no server ran runs
// once or is skipped (`missed`); one that finds an earlier run still active is skipped or queued
// anyway (`overlap`).
import { Cron } from 'croner';
import { z } from 'zod';
import { parseDuration } from '../policy/units.js';
import { type ScheduleRecord, type ScheduleSpec, ScheduleStore, newScheduleId } from '../store/schedules.js';
import type { RunStatus, RunStore } from '../store/runs.js';
import { ApiError } from './http.js';
import { issueLine, parseRunRequest, type RunRequest } from './requests.js';

export const SCHEDULE_EXAMPLE = '{"name": "nightly", "cron": "0 3 * * *", "run": {"kind": "exec", "command": ["make", "test"], "workspace": "/srv/proj"}}';
const MIN_EVERY_MS = 1000;
const MAX_EVERY_MS = 366 * 86_400_000;
/** The timer never sleeps longer than this, so a clock set forward is noticed within a minute. */
const MAX_TIMER_MS = 60_000;
/** A firing later than this (or than one period of its schedule, if shorter) was missed: the
 *  server was down or the machine asleep. Less late is just a slow timer, and runs. */
const MISSED_AFTER_MS = 60_000;
/** After a tick that left something due (a store error), wait this long before the next try. */
const RETRY_MS = 1000;

const scheduleSchema = z
  .object({
    name: z
      .string()
      .min(1)
      .max(100)
      .regex(/^[^\p{Cc}]+$/u, 'must be one line of printable text')
      .describe('unique among the schedules of this store'),
    cron: z.string().min(1).max(200).optional().describe("5 fields (minute first) or 6 (seconds first), in the server's local time"),
    every: z.string().min(1).max(50).optional().describe('a duration, e.g. "30s", "5m", "1h30m": the first firing is one interval after creation'),
    at: z.iso.datetime({ offset: true }).optional().describe('one time, with Z or an offset; fires once'),
    run: z.unknown().optional().describe('a POST /v1/runs body (required)'),
    missed: z.enum(['once', 'skip']).default('skip').describe('a firing missed while the server was down: run it once, or skip it'),
    overlap: z.enum(['skip', 'queue']).default('skip').describe('a firing while a run of this schedule is queued or running'),
  })
  .strict();

export interface ScheduleRequest {
  name: string;
  spec: ScheduleSpec;
  run: RunRequest;
  missed: 'once' | 'skip';
  overlap: 'skip' | 'queue';
}

function bad(where: string, msg: string): ApiError {
  return new ApiError(400, `schedule: ${where}: ${msg} (example: ${SCHEDULE_EXAMPLE})`);
}

/** Parses a POST /v1/schedules body (400 with one line when it is not one). */
export function parseScheduleRequest(body: unknown): ScheduleRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new ApiError(400, `the body must be a JSON object (example: ${SCHEDULE_EXAMPLE})`);
  const r = scheduleSchema.safeParse(body);
  if (!r.success) throw new ApiError(400, issueLine(r.error, 'schedule', SCHEDULE_EXAMPLE));
  const b = r.data;
  const given = (['cron', 'every', 'at'] as const).filter((k) => b[k] !== undefined);
  if (given.length !== 1) {
    throw bad('body', `give exactly one of "cron", "every" or "at"${given.length ? ` (got ${given.map((k) => `"${k}"`).join(' and ')})` : ''}`);
  }
  let spec: ScheduleSpec;
  if (b.cron !== undefined) {
    const err = cronError(b.cron);
    if (err) throw bad('cron', err);
    spec = { cron: b.cron };
  } else if (b.every !== undefined) {
    let ms: number;
    try {
      ms = parseDuration(b.every);
    } catch (e) {
      throw bad('every', (e as Error).message);
    }
    if (ms < MIN_EVERY_MS) throw bad('every', `${JSON.stringify(b.every)} is shorter than 1s`);
    if (ms > MAX_EVERY_MS) throw bad('every', `${JSON.stringify(b.every)} is longer than 366d (use "cron" or "at")`);
    spec = { every: b.every };
  } else {
    spec = { at: new Date(b.at as string).toISOString() };
  }
  if (typeof b.run !== 'object' || b.run === null || Array.isArray(b.run)) throw bad('run', 'must be a POST /v1/runs body (an object)');
  let run: RunRequest;
  try {
    run = parseRunRequest(b.run);
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    // "run request: command: ..." / "body.kind is required: ..." read as parts of the schedule.
    throw new ApiError(400, `schedule: run: ${e.message.replace(/^run request: /, '').replace(/^body\./, '')}`);
  }
  return { name: b.name, spec, run, missed: b.missed, overlap: b.overlap };
}

/** Why croner refuses a pattern, or null; a pattern that can never fire counts as refused. */
function cronError(pattern: string): string | null {
  try {
    if (!new Cron(pattern, { paused: true }).nextRun()) return `${JSON.stringify(pattern)} never fires`;
    return null;
  } catch (e) {
    return `${(e as Error).message.replace(/^CronPattern: /, '')} (5 fields: minute hour day-of-month month day-of-week)`;
  }
}

/** The first firing of spec strictly after `after`; an interval counts from `created`. Null when
 *  there is none (a one-off's time has passed, a cron pattern's last year is over). */
export function nextFireAfter(spec: ScheduleSpec, created: Date, after: Date): Date | null {
  if ('at' in spec) {
    const at = new Date(spec.at);
    return at.getTime() > after.getTime() ? at : null;
  }
  if ('every' in spec) {
    const ms = parseDuration(spec.every);
    const k = Math.max(1, Math.floor((after.getTime() - created.getTime()) / ms) + 1);
    return new Date(created.getTime() + k * ms);
  }
  return new Cron(spec.cron, { paused: true }).nextRun(after) ?? null;
}

/** How long a firing may be late before it counts as missed: a minute, or one period if shorter. */
function missedAfterMs(spec: ScheduleSpec, due: Date): number {
  if ('at' in spec) return MISSED_AFTER_MS;
  if ('every' in spec) return Math.min(MISSED_AFTER_MS, parseDuration(spec.every));
  const next = new Cron(spec.cron, { paused: true }).nextRun(due);
  return next ? Math.min(MISSED_AFTER_MS, next.getTime() - due.getTime()) : MISSED_AFTER_MS;
}

/** Why the last firing due did not run (kept by this server process, shown in the listing). */
export interface SkippedFiring {
  due: string;
  at: string;
  reason: string;
}

/** A schedule as GET /v1/schedules shows it. */
export type ScheduleJson = { id: string; name: string } & Partial<Record<'cron' | 'every' | 'at', string>> & {
    run: Record<string, unknown>;
    missed: 'once' | 'skip';
    overlap: 'skip' | 'queue';
    /** done: a one-off that has fired (or a cron pattern with no time left); kept until deleted. */
    state: 'active' | 'done';
    nextFire: string | null;
    lastFire: string | null;
    createdAt: string;
    lastRun: { id: string; status: RunStatus } | null;
    lastSkipped: SkippedFiring | null;
  };

export interface SchedulerOptions<R> {
  store: RunStore;
  /** Checks a run body as POST /v1/runs does (workspace, policy): at creation, and at each firing. */
  resolve(run: RunRequest): Promise<R>;
  /** Records a queued run of the schedule, synchronously, inside the caller's transaction. */
  submit(req: R, o: { scheduleId: string; due: string }): void;
  /** How many runs of the schedule are queued or running. */
  activeOf(scheduleId: string): number;
  now?: () => Date;
  /** A firing that did not run, as one line (missed and skipped, overlap, a failed resolve). */
  onError?(line: string): void;
}

type Outcome = 'fired' | 'skipped' | 'lost' | 'not due';

export class Scheduler<R = unknown> {
  private readonly table: ScheduleStore;
  private readonly now: () => Date;
  private readonly skipped = new Map<string, SkippedFiring>();
  private readonly inFlight = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private stopped = true;
  /** The clock at the start of the last tick: what was due then and is still due is stuck. */
  private lastTick = Number.NEGATIVE_INFINITY;

  constructor(private readonly o: SchedulerOptions<R>) {
    this.table = new ScheduleStore(o.store);
    this.now = o.now ?? (() => new Date());
  }

  /** Handles the firings missed while no server ran, then arms the timer. The promise (which
   *  never rejects) settles when the missed ones are done. */
  start(): Promise<void> {
    this.stopped = false;
    return this.runTick();
  }

  /** No more firings; the promise settles when a firing in progress has finished (await it
   *  before closing the store). */
  stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    return this.ticking ?? Promise.resolve();
  }

  async create(body: unknown): Promise<ScheduleJson> {
    const req = parseScheduleRequest(body);
    await this.o.resolve(req.run); // refused now (400/403) rather than at every firing
    const now = this.now();
    if ('at' in req.spec && Date.parse(req.spec.at) <= now.getTime()) {
      throw bad('at', `${req.spec.at} is in the past (the server's time is ${now.toISOString()})`);
    }
    const next = nextFireAfter(req.spec, now, now);
    if (!next) throw bad('cron', 'the pattern has no time left to fire');
    const rec: ScheduleRecord = {
      id: newScheduleId(now),
      name: req.name,
      spec: req.spec,
      run: req.run as Record<string, unknown>,
      missed: req.missed,
      overlap: req.overlap,
      nextFire: next.toISOString(),
      lastFire: null,
      createdAt: now.toISOString(),
    };
    this.o.store.withWriteLock(() => {
      const same = this.table.byName(req.name);
      if (same)
        throw new ApiError(
          409,
          `a schedule named ${JSON.stringify(req.name)} exists (${same.id}): DELETE /v1/schedules/${same.id} first, or pick another name`,
        );
      this.table.insert(rec);
    });
    this.arm();
    return this.toJson(rec);
  }

  list(): ScheduleJson[] {
    return this.table.list().map((r) => this.toJson(r));
  }

  get(id: string): ScheduleJson | undefined {
    const r = this.table.get(id);
    return r && this.toJson(r);
  }

  /** Deletes a schedule (its runs stay, queued ones included); false when there was none. */
  remove(id: string): boolean {
    const gone = this.table.delete(id);
    this.skipped.delete(id);
    if (gone) this.arm();
    return gone;
  }

  /** Fires every schedule that is due now; the timer calls it, tests call it with their clock. */
  async tick(): Promise<void> {
    const now = this.now();
    this.lastTick = now.getTime();
    const due: ScheduleRecord[] = [];
    for (const s of this.table.list()) {
      if (s.nextFire === null || this.inFlight.has(s.id)) continue;
      if (Date.parse(s.nextFire) <= now.getTime()) due.push(s);
      else this.followClockBack(s, now);
    }
    await Promise.all(due.map((s) => this.fire(s, now)));
  }

  /** One firing of s, due at s.nextFire; never throws (a failure is a skipped firing). */
  private async fire(s: ScheduleRecord, now: Date): Promise<Outcome> {
    const due = s.nextFire;
    if (due === null || Date.parse(due) > now.getTime() || this.inFlight.has(s.id)) return 'not due';
    this.inFlight.add(s.id);
    try {
      return await this.fireDue(s, due, now);
    } catch (e) {
      this.report(s, due, `not run: ${(e as Error).message}`);
      return 'skipped';
    } finally {
      this.inFlight.delete(s.id);
    }
  }

  private async fireDue(s: ScheduleRecord, due: string, now: Date): Promise<Outcome> {
    const next = nextFireAfter(s.spec, new Date(s.createdAt), now)?.toISOString() ?? null;
    const late = now.getTime() - Date.parse(due);
    if (s.missed === 'skip' && late > missedAfterMs(s.spec, new Date(due))) {
      return this.skip(s, due, next, `missed (the server was not running at ${due}; missed: skip)`);
    }
    let req: R;
    try {
      req = await this.o.resolve(s.run as RunRequest);
    } catch (e) {
      return this.skip(s, due, next, `not run: ${(e as Error).message}`);
    }
    let result: Outcome | { active: number };
    try {
      result = this.o.store.withWriteLock(() => {
        const active = s.overlap === 'skip' ? this.o.activeOf(s.id) : 0;
        if (active > 0) return { active };
        if (!this.table.setNextFire(s.id, due, next, now.toISOString())) return 'lost';
        this.o.submit(req, { scheduleId: s.id, due });
        return 'fired';
      });
    } catch (e) {
      // The transaction rolled back: nothing was submitted and next_fire is still `due`.
      return this.skip(s, due, next, `not run: ${(e as Error).message}`);
    }
    if (typeof result === 'object') {
      return this.skip(s, due, next, `skipped: ${result.active} run${result.active > 1 ? 's' : ''} of it still queued or running (overlap: skip)`);
    }
    if (result === 'fired') this.skipped.delete(s.id);
    return result;
  }

  /** Moves past a firing without a run, and says why (unless another server took the firing). */
  private skip(s: ScheduleRecord, due: string, next: string | null, reason: string): Outcome {
    if (!this.o.store.withWriteLock(() => this.table.setNextFire(s.id, due, next))) return 'lost';
    this.report(s, due, reason);
    return 'skipped';
  }

  private report(s: ScheduleRecord, due: string, reason: string): void {
    this.skipped.set(s.id, { due, at: this.now().toISOString(), reason });
    this.o.onError?.(`schedule ${JSON.stringify(s.name)} (${s.id}), due ${due}: ${reason}`);
  }

  /** A next_fire later than the next time after now means the clock went back: wait for the
   *  next time by the clock we have, not for the old one to come round again. */
  private followClockBack(s: ScheduleRecord, now: Date): void {
    const next = nextFireAfter(s.spec, new Date(s.createdAt), now);
    if (next && s.nextFire !== null && next.getTime() < Date.parse(s.nextFire)) {
      this.table.setNextFire(s.id, s.nextFire, next.toISOString());
    }
  }

  private runTick(): Promise<void> {
    if (this.ticking) return this.ticking;
    const t = this.tick()
      .catch((e) => this.o.onError?.(`schedules: ${(e as Error).message}`))
      .finally(() => {
        this.ticking = undefined;
        this.arm();
      });
    this.ticking = t;
    return t;
  }

  /** One timer, to the earliest next_fire of all schedules (at most MAX_TIMER_MS away). */
  private arm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stopped) return;
    let earliest: string | undefined;
    try {
      earliest = this.table.earliestNextFire();
    } catch (e) {
      this.o.onError?.(`schedules: ${(e as Error).message}`);
      return;
    }
    if (earliest === undefined) return;
    const at = Date.parse(earliest);
    // Due already when the last tick began, and not moved by it (a store error): do not spin.
    const delay = at <= this.lastTick ? RETRY_MS : Math.min(MAX_TIMER_MS, Math.max(0, at - this.now().getTime()));
    this.timer = setTimeout(() => void this.runTick(), delay);
    this.timer.unref();
  }

  private toJson(r: ScheduleRecord): ScheduleJson {
    return {
      id: r.id,
      name: r.name,
      ...r.spec,
      run: r.run,
      missed: r.missed,
      overlap: r.overlap,
      state: r.nextFire === null ? 'done' : 'active',
      nextFire: r.nextFire,
      lastFire: r.lastFire,
      createdAt: r.createdAt,
      lastRun: this.table.lastRunOf(r.id) ?? null,
      lastSkipped: this.skipped.get(r.id) ?? null,
    };
  }
}
