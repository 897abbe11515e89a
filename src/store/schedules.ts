// The schedules table (migration 4 of the run store): what `clawpod serve` fires, when it fires
// next, and when it last did. A firing is claimed by moving next_fire from the value the firer
// read (compare-and-set), so of two schedulers on one store exactly one wins each firing.
import { randomBytes } from 'node:crypto';
import type BetterSqlite3 from 'better-sqlite3';
import { type RunStatus, type RunStore, StoreError } from './runs.js';

/** When a schedule fires: a cron pattern, an interval (as written, e.g. "5m"), or one time. */
export type ScheduleSpec = { cron: string } | { every: string } | { at: string };

export interface ScheduleRecord {
  id: string;
  name: string;
  spec: ScheduleSpec;
  /** The POST /v1/runs body each firing starts from. */
  run: Record<string, unknown>;
  /** A firing missed while no server ran: run it once when the server is back, or skip it. */
  missed: 'once' | 'skip';
  /** A firing while an earlier run of the schedule is queued or running: skip it, or queue it. */
  overlap: 'skip' | 'queue';
  /** ISO-8601 UTC; null once a one-off has fired (or a cron pattern has no time left). */
  nextFire: string | null;
  lastFire: string | null;
  createdAt: string;
}

type Row = Record<string, string | null>;
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** Sortable schedule id: `s-YYYYMMDD-HHMMSS-xxxxxx` (UTC time + 6 random hex characters). */
export function newScheduleId(now: Date = new Date()): string {
  const iso = now.toISOString();
  return `s-${iso.slice(0, 10).replaceAll('-', '')}-${iso.slice(11, 19).replaceAll(':', '')}-${randomBytes(3).toString('hex')}`;
}

/** Times are stored as Date.toISOString() text, so text order is time order (ORDER BY next_fire). */
function checkTime(field: string, v: string | null): void {
  if (v !== null && !ISO_UTC.test(v)) throw new StoreError(`${field} must be an ISO-8601 UTC timestamp (toISOString), got ${v}`);
}

export class ScheduleStore {
  private readonly db: BetterSqlite3.Database;
  private readonly statements = new Map<string, BetterSqlite3.Statement>();

  constructor(readonly store: RunStore) {
    this.db = store.database();
  }

  /** Oldest first. */
  list(): ScheduleRecord[] {
    return (this.stmt('SELECT * FROM schedules ORDER BY created_at, id').all() as Row[]).map(fromRow);
  }

  get(id: string): ScheduleRecord | undefined {
    const row = this.stmt('SELECT * FROM schedules WHERE id = ?').get(id) as Row | undefined;
    return row && fromRow(row);
  }

  byName(name: string): ScheduleRecord | undefined {
    const row = this.stmt('SELECT * FROM schedules WHERE name = ? ORDER BY created_at LIMIT 1').get(name) as Row | undefined;
    return row && fromRow(row);
  }

  insert(rec: ScheduleRecord): void {
    checkTime('nextFire', rec.nextFire);
    checkTime('lastFire', rec.lastFire);
    checkTime('createdAt', rec.createdAt);
    this.stmt(
      `INSERT INTO schedules (id, name, spec, run, missed, overlap, next_fire, last_fire, created_at)
       VALUES (@id, @name, @spec, @run, @missed, @overlap, @next_fire, @last_fire, @created_at)`,
    ).run({
      id: rec.id,
      name: rec.name,
      spec: JSON.stringify(rec.spec),
      run: JSON.stringify(rec.run),
      missed: rec.missed,
      overlap: rec.overlap,
      next_fire: rec.nextFire,
      last_fire: rec.lastFire,
      created_at: rec.createdAt,
    });
  }

  /** True when there was such a schedule. Its runs keep their schedule_id. */
  delete(id: string): boolean {
    return this.stmt('DELETE FROM schedules WHERE id = ?').run(id).changes > 0;
  }

  /** Moves next_fire from `old` to `next` (and last_fire to `lastFire` when given) only if it is
   *  still `old`: true for the one caller that claimed the firing at `old`, false for any other
   *  (another scheduler took it first, or the schedule is gone). */
  setNextFire(id: string, old: string | null, next: string | null, lastFire?: string): boolean {
    checkTime('nextFire', next);
    if (lastFire !== undefined) checkTime('lastFire', lastFire);
    const res = this.stmt('UPDATE schedules SET next_fire = @next, last_fire = coalesce(@last, last_fire) WHERE id = @id AND next_fire IS @old').run({
      id,
      old,
      next,
      last: lastFire ?? null,
    });
    return res.changes === 1;
  }

  /** The earliest next_fire of all schedules, or undefined when none will fire again. */
  earliestNextFire(): string | undefined {
    const row = this.stmt('SELECT min(next_fire) AS t FROM schedules').get() as { t: string | null };
    return row.t ?? undefined;
  }

  /** The newest run a schedule fired (queued ones included). */
  lastRunOf(id: string): { id: string; status: RunStatus } | undefined {
    return this.stmt('SELECT id, status FROM runs WHERE schedule_id = ? ORDER BY started_at DESC, id DESC LIMIT 1').get(id) as
      | { id: string; status: RunStatus }
      | undefined;
  }

  private stmt(sql: string): BetterSqlite3.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }
}

function fromRow(r: Row): ScheduleRecord {
  return {
    id: r.id as string,
    name: r.name as string,
    spec: JSON.parse(r.spec as string) as ScheduleSpec,
    run: JSON.parse(r.run as string) as Record<string, unknown>,
    missed: r.missed as ScheduleRecord['missed'],
    overlap: r.overlap as ScheduleRecord['overlap'],
    nextFire: r.next_fire,
    lastFire: r.last_fire,
    createdAt: r.created_at as string,
  };
}
