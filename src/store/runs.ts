// The run store: one SQLite row per exec/run, so `runs list/show`, crash recovery (which runs were
// still `running` when their supervisor died) and the server all read the same state.
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { ClawpodError } from '../util/errors.js';
import { currentBootId, processStartTime, recordedProcessAlive } from '../util/proc.js';
import { packageRoot } from '../util/root.js';
import { dirname } from 'node:path';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';

// Loaded on first use: commands without a store never pay for it. In the CLI bundle the
// package's JavaScript is bundled (esbuild sees the plain require) and only the addon is loaded
// from node_modules, by path, skipping the `bindings` package's search.
type Database = BetterSqlite3.Database;
let sqlite: typeof BetterSqlite3 | undefined;

function loadSqlite(): typeof BetterSqlite3 {
  return typeof require === 'function' ? require('better-sqlite3') : createRequire(import.meta.url)('better-sqlite3');
}

function openDatabase(file: string): Database {
  sqlite ??= loadSqlite();
  const addon = path.join(packageRoot(), 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node');
  return new sqlite(file, existsSync(addon) ? { nativeBinding: addon } : {});
}

export type RunKind = 'exec' | 'run';
/** queued: accepted by `clawpod serve`, not started yet (no chain, no pod); cancelled: stopped by
 *  its owner (a queued one never started). */
export type RunStatus = 'queued' | 'running' | 'done' | 'failed' | 'interrupted' | 'timeout' | 'killed' | 'cancelled';
/** Every status; the ones a run ends in are all but queued and running. */
export const RUN_STATUSES: readonly RunStatus[] = ['queued', 'running', 'done', 'failed', 'interrupted', 'timeout', 'killed', 'cancelled'];
export type DiffState = 'none' | 'pending' | 'applied' | 'discarded';

export interface RunRecord {
  id: string;
  kind: RunKind;
  status: RunStatus;
  /** argv of an exec, or the task text of a run as a one-element array. */
  command: string[];
  workspace: string;
  workspaceMode: string;
  policySource: string;
  backend: string;
  /** Pid of the clawpod process supervising the run; with hostBootId, tells a live run from a dead one. */
  pid: number | null;
  hostBootId: string | null;
  /** The supervising process's start time (/proc/PID/stat): a reused pid is not the run's. */
  pidStart: string | null;
  /** ISO-8601 UTC (Date.toISOString), so text order is time order. */
  startedAt: string;
  endedAt: string | null;
  exitCode: number | null;
  limitHit: string | null;
  diffState: DiffState;
  filesChanged: number;
  auditPath: string | null;
  runDir: string | null;
  summary: Record<string, unknown> | null;
  /** A queued run's request as the server accepted it (what starts it, after a restart too). */
  request: Record<string, unknown> | null;
  /** The schedule that fired it, if any. */
  scheduleId: string | null;
}

type Required_ = 'id' | 'kind' | 'command' | 'workspace' | 'workspaceMode' | 'policySource' | 'backend';
export type NewRun = Pick<RunRecord, Required_> & Partial<Omit<RunRecord, Required_>>;
export type RunPatch = Partial<Omit<RunRecord, 'id' | 'kind'>>;

export interface RunStore {
  createRun(rec: NewRun): RunRecord;
  updateRun(id: string, patch: RunPatch): RunRecord;
  /** Exact id, `last` (the newest run), or a unique prefix, else a unique part, of at least 4
   *  characters; throws StoreError naming the candidates when several match. */
  getRun(idOrPart: string): RunRecord | undefined;
  /** Newest first; `startedBefore` (ISO-8601 UTC) keeps only runs started before it. */
  listRuns(opts?: ListOptions): RunRecord[];
  /** How many runs listRuns would return without a limit. */
  countRuns(opts?: Omit<ListOptions, 'limit'>): number;
  runningRuns(): RunRecord[];
  /** Removes a run's row; true when there was one. */
  deleteRun(id: string): boolean;
  /** How many runs are queued (of one schedule, when given), without reading them. */
  countQueued(scheduleId?: string): number;
  /** Queued runs in the order they were queued (rowid: a claim rewrites started_at, and a run
   *  put back by the reaper keeps its place), the order they start in. */
  queuedRuns(): RunRecord[];
  /** Starts a queued run: true for the one caller that moved it from queued (exactly once,
   *  across processes and restarts); false when it was cancelled or already started. */
  claimQueued(id: string, patch: RunPatch): boolean;
  /** The database, for the store's other tables (schedules: store/schedules.ts). */
  database(): Database;
  /** Runs fn holding the store's write lock (BEGIN IMMEDIATE): other clawpods that take it wait
   *  (busy_timeout), and a process that dies lets go of it. What fn writes to the store commits
   *  with it, or not at all when fn throws. */
  withWriteLock<T>(fn: () => T): T;
  getMeta(key: string): string | undefined;
  setMeta(key: string, value: string): void;
  close(): void;
}

export interface ListOptions {
  limit?: number;
  startedBefore?: string;
}

/** A store the user can fix (an ambiguous id, a database that is not clawpod's). */
export class StoreError extends ClawpodError {}

export const MIN_PREFIX = 4;
const DEFAULT_LIST_LIMIT = 50;
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/;

// Index i upgrades a database from user_version i to i + 1. Append only; never edit a shipped one.
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('exec', 'run')),
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'interrupted', 'timeout', 'killed')),
    command TEXT NOT NULL CHECK (json_valid(command) AND json_type(command) = 'array'),
    workspace TEXT NOT NULL,
    workspace_mode TEXT NOT NULL,
    policy_source TEXT NOT NULL,
    backend TEXT NOT NULL,
    pid INTEGER,
    host_boot_id TEXT,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    exit_code INTEGER,
    limit_hit TEXT,
    diff_state TEXT NOT NULL DEFAULT 'none' CHECK (diff_state IN ('none', 'pending', 'applied', 'discarded')),
    files_changed INTEGER NOT NULL DEFAULT 0,
    audit_path TEXT,
    run_dir TEXT,
    summary TEXT CHECK (summary IS NULL OR json_valid(summary))
  ) STRICT;
  CREATE INDEX runs_by_start ON runs (started_at DESC, id DESC);
  CREATE INDEX runs_by_status ON runs (status);`,
  `ALTER TABLE runs ADD COLUMN pid_start TEXT;`,
  // Small named values of the whole store (the decision log's head).
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;`,
  // Service mode: queued and cancelled runs (a CHECK cannot be altered: the table is rebuilt),
  // the request a queued run starts from, the schedule that fired it; and the schedules.
  `CREATE TABLE runs_v4 (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('exec', 'run')),
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'interrupted', 'timeout', 'killed', 'cancelled')),
    command TEXT NOT NULL CHECK (json_valid(command) AND json_type(command) = 'array'),
    workspace TEXT NOT NULL,
    workspace_mode TEXT NOT NULL,
    policy_source TEXT NOT NULL,
    backend TEXT NOT NULL,
    pid INTEGER,
    host_boot_id TEXT,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    exit_code INTEGER,
    limit_hit TEXT,
    diff_state TEXT NOT NULL DEFAULT 'none' CHECK (diff_state IN ('none', 'pending', 'applied', 'discarded')),
    files_changed INTEGER NOT NULL DEFAULT 0,
    audit_path TEXT,
    run_dir TEXT,
    summary TEXT CHECK (summary IS NULL OR json_valid(summary)),
    pid_start TEXT,
    request TEXT CHECK (request IS NULL OR json_valid(request)),
    schedule_id TEXT
  ) STRICT;
  INSERT INTO runs_v4 (id, kind, status, command, workspace, workspace_mode, policy_source, backend, pid, host_boot_id, started_at,
    ended_at, exit_code, limit_hit, diff_state, files_changed, audit_path, run_dir, summary, pid_start)
    SELECT id, kind, status, command, workspace, workspace_mode, policy_source, backend, pid, host_boot_id, started_at,
    ended_at, exit_code, limit_hit, diff_state, files_changed, audit_path, run_dir, summary, pid_start FROM runs;
  DROP TABLE runs;
  ALTER TABLE runs_v4 RENAME TO runs;
  CREATE INDEX runs_by_start ON runs (started_at DESC, id DESC);
  CREATE INDEX runs_by_status ON runs (status);
  CREATE INDEX runs_by_schedule ON runs (schedule_id) WHERE schedule_id IS NOT NULL;
  CREATE TABLE schedules (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    spec TEXT NOT NULL CHECK (json_valid(spec)),
    run TEXT NOT NULL CHECK (json_valid(run)),
    missed TEXT NOT NULL CHECK (missed IN ('once', 'skip')),
    overlap TEXT NOT NULL CHECK (overlap IN ('skip', 'queue')),
    next_fire TEXT,
    last_fire TEXT,
    created_at TEXT NOT NULL
  ) STRICT;`,
];

/** TS field -> column. Also the whitelist that keeps patch keys out of SQL unless known. */
const COLUMNS: { readonly [K in keyof RunRecord]: string } = {
  id: 'id',
  kind: 'kind',
  status: 'status',
  command: 'command',
  workspace: 'workspace',
  workspaceMode: 'workspace_mode',
  policySource: 'policy_source',
  backend: 'backend',
  pid: 'pid',
  hostBootId: 'host_boot_id',
  pidStart: 'pid_start',
  startedAt: 'started_at',
  endedAt: 'ended_at',
  exitCode: 'exit_code',
  limitHit: 'limit_hit',
  diffState: 'diff_state',
  filesChanged: 'files_changed',
  auditPath: 'audit_path',
  runDir: 'run_dir',
  summary: 'summary',
  request: 'request',
  scheduleId: 'schedule_id',
};
const FIELDS = Object.keys(COLUMNS) as (keyof RunRecord)[];

type Row = Record<string, string | number | null>;

/** Sortable run id: `r-YYYYMMDD-HHMMSS-xxxxxx` (UTC time + 6 random hex characters). */
export function newRunId(now: Date = new Date()): string {
  const iso = now.toISOString(); // 2026-11-27T16:35:12.345Z
  const date = iso.slice(0, 10).replaceAll('-', '');
  const time = iso.slice(11, 19).replaceAll(':', '');
  return `r-${date}-${time}-${randomBytes(3).toString('hex')}`;
}

export function openStore(dbPath: string): RunStore {
  if (dbPath !== ':memory:') {
    mkdirSync(dirname(dbPath), { recursive: true, mode: 0o700 });
    // Create the file 0600 ourselves: SQLite gives the -wal/-shm files the database's mode, and
    // the store holds commands and paths that are nobody else's business.
    closeSync(openSync(dbPath, 'a', 0o600));
  }
  const db = openDatabase(dbPath);
  try {
    // Switching to WAL rewrites the header: only when it is not WAL yet (a fresh store).
    if (db.pragma('journal_mode', { simple: true }) !== 'wal') db.pragma('journal_mode = WAL');
    // WAL + NORMAL: a commit survives a crash of clawpod; the audit log carries the fsync'd record.
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    migrate(db);
  } catch (err) {
    db.close();
    throw err;
  }
  return new SqliteRunStore(db);
}

function migrate(db: Database): void {
  // Up to date (every open but the first): no write lock, no commit.
  if ((db.pragma('user_version', { simple: true }) as number) === MIGRATIONS.length) return;
  // IMMEDIATE takes the write lock first, so two processes opening a fresh store cannot both
  // run migration 0.
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > MIGRATIONS.length) {
      throw new StoreError(`run store schema version ${version} is newer than this clawpod understands (${MIGRATIONS.length}); upgrade clawpod`);
    }
    for (let v = version; v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v]);
    db.pragma(`user_version = ${MIGRATIONS.length}`);
  }).immediate();
}

class SqliteRunStore implements RunStore {
  private readonly statements = new Map<string, BetterSqlite3.Statement>();

  constructor(private readonly db: Database) {}

  createRun(rec: NewRun): RunRecord {
    // A supervised run records which process, in which boot, supervises it.
    const owner = rec.pid ? { hostBootId: currentBootId(), pidStart: processStartTime(rec.pid) } : {};
    const full: RunRecord = {
      status: 'running',
      pid: null,
      hostBootId: null,
      pidStart: null,
      ...owner,
      startedAt: new Date().toISOString(),
      endedAt: null,
      exitCode: null,
      limitHit: null,
      diffState: 'none',
      filesChanged: 0,
      auditPath: null,
      runDir: null,
      summary: null,
      request: null,
      scheduleId: null,
      ...stripUndefined(rec),
    };
    const cols = FIELDS.map((f) => COLUMNS[f]);
    const sql = `INSERT INTO runs (${cols.join(', ')}) VALUES (${cols.map((c) => '@' + c).join(', ')})`;
    this.stmt(sql).run(toRow(full, FIELDS));
    return this.getExact(full.id) as RunRecord;
  }

  updateRun(id: string, patch: RunPatch): RunRecord {
    const fields = Object.keys(stripUndefined(patch)) as (keyof RunRecord)[];
    for (const f of fields) {
      if (!(f in COLUMNS) || f === 'id' || f === 'kind') throw new StoreError(`cannot update run field "${f}"`);
    }
    if (fields.length > 0) {
      const sets = fields.map((f) => `${COLUMNS[f]} = @${COLUMNS[f]}`).join(', ');
      const row = toRow(patch, fields);
      const res = this.stmt(`UPDATE runs SET ${sets} WHERE id = @id`).run({ ...row, id });
      if (res.changes === 0) throw new StoreError(`no run ${id}`);
    }
    const updated = this.getExact(id);
    if (!updated) throw new StoreError(`no run ${id}`);
    return updated;
  }

  getRun(idOrPart: string): RunRecord | undefined {
    const exact = this.getExact(idOrPart);
    if (exact) return exact;
    if (idOrPart === 'last') {
      const row = this.stmt('SELECT * FROM runs ORDER BY started_at DESC, id DESC LIMIT 1').get() as Row | undefined;
      return row && fromRow(row);
    }
    if (idOrPart.length < MIN_PREFIX) return undefined;
    // substr and instr, not LIKE: a user-typed part may contain % or _. A unique prefix wins
    // over parts found elsewhere in other ids (as git's abbreviations do).
    const byPrefix = this.stmt('SELECT id FROM runs WHERE substr(id, 1, ?) = ? ORDER BY id LIMIT 6').all(idOrPart.length, idOrPart) as Row[];
    const rows = byPrefix.length > 0 ? byPrefix : (this.stmt('SELECT id FROM runs WHERE instr(id, ?) > 0 ORDER BY id LIMIT 6').all(idOrPart) as Row[]);
    if (rows.length > 1) {
      const what = byPrefix.length > 0 ? 'prefix' : 'part';
      const total = rows.length > 5 ? this.countMatches(idOrPart, byPrefix.length > 0) : rows.length;
      const shown = rows
        .slice(0, 5)
        .map((r) => r.id)
        .join(', ');
      throw new StoreError(
        `run id ${what} "${idOrPart}" is ambiguous: it matches ${total} runs (${shown}${total > 5 ? `, and ${total - 5} more` : ''}); give more characters`,
      );
    }
    return rows.length === 1 ? this.getExact(rows[0].id as string) : undefined;
  }

  private countMatches(part: string, prefix: boolean): number {
    const row = (
      prefix
        ? this.stmt('SELECT count(*) AS n FROM runs WHERE substr(id, 1, ?) = ?').get(part.length, part)
        : this.stmt('SELECT count(*) AS n FROM runs WHERE instr(id, ?) > 0').get(part)
    ) as { n: number };
    return row.n;
  }

  listRuns(opts: ListOptions = {}): RunRecord[] {
    const limit = opts.limit ?? DEFAULT_LIST_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 1) throw new StoreError(`list limit must be a positive integer, got ${limit}`);
    const rows = this.stmt('SELECT * FROM runs WHERE started_at < ? ORDER BY started_at DESC, id DESC LIMIT ?').all(beforeOf(opts), limit) as Row[];
    return rows.map(fromRow);
  }

  countRuns(opts: Omit<ListOptions, 'limit'> = {}): number {
    return (this.stmt('SELECT count(*) AS n FROM runs WHERE started_at < ?').get(beforeOf(opts)) as { n: number }).n;
  }

  withWriteLock<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  getMeta(key: string): string | undefined {
    return (this.stmt('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }

  setMeta(key: string, value: string): void {
    this.stmt('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  runningRuns(): RunRecord[] {
    const rows = this.stmt("SELECT * FROM runs WHERE status = 'running' ORDER BY started_at, id").all() as Row[];
    return rows.map(fromRow);
  }

  deleteRun(id: string): boolean {
    return this.stmt('DELETE FROM runs WHERE id = ?').run(id).changes > 0;
  }

  countQueued(scheduleId?: string): number {
    const row = (
      scheduleId === undefined
        ? this.stmt("SELECT count(*) AS n FROM runs WHERE status = 'queued'").get()
        : this.stmt("SELECT count(*) AS n FROM runs WHERE status = 'queued' AND schedule_id = ?").get(scheduleId)
    ) as { n: number };
    return row.n;
  }

  queuedRuns(): RunRecord[] {
    const rows = this.stmt("SELECT * FROM runs WHERE status = 'queued' ORDER BY rowid").all() as Row[];
    return rows.map(fromRow);
  }

  claimQueued(id: string, patch: RunPatch): boolean {
    const owner = patch.pid ? { hostBootId: currentBootId(), pidStart: processStartTime(patch.pid) } : {};
    const full = stripUndefined({ status: 'running' as const, ...owner, ...patch });
    const fields = Object.keys(full) as (keyof RunRecord)[];
    for (const f of fields) if (!(f in COLUMNS) || f === 'id' || f === 'kind') throw new StoreError(`cannot update run field "${f}"`);
    const sets = fields.map((f) => `${COLUMNS[f]} = @${COLUMNS[f]}`).join(', ');
    return this.stmt(`UPDATE runs SET ${sets} WHERE id = @id AND status = 'queued'`).run({ ...toRow(full, fields), id }).changes === 1;
  }

  database(): Database {
    return this.db;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private getExact(id: string): RunRecord | undefined {
    const row = this.stmt('SELECT * FROM runs WHERE id = ?').get(id) as Row | undefined;
    return row && fromRow(row);
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

/** The upper bound of a listing: every run when none was asked for ('~' sorts after any ISO time). */
function beforeOf(opts: { startedBefore?: string }): string {
  if (opts.startedBefore === undefined) return '~';
  if (!ISO_UTC.test(opts.startedBefore)) throw new StoreError(`startedBefore must be an ISO-8601 UTC timestamp, got ${opts.startedBefore}`);
  return opts.startedBefore;
}

/** The run's supervising clawpod is still alive: same boot, same process, not a zombie. */
export function runAlive(run: Pick<RunRecord, 'pid' | 'pidStart' | 'hostBootId'>): boolean {
  return run.pid !== null && recordedProcessAlive(run.pid, run.pidStart, run.hostBootId);
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function toRow(rec: Partial<RunRecord>, fields: (keyof RunRecord)[]): Row {
  const row: Row = {};
  for (const f of fields) {
    const v = rec[f];
    if ((f === 'startedAt' || f === 'endedAt') && v !== null && !ISO_UTC.test(String(v))) {
      // Text order must be time order for listRuns, so only toISOString's form is accepted.
      throw new StoreError(`${f} must be an ISO-8601 UTC timestamp, got ${String(v)}`);
    }
    if (f === 'command' && !(Array.isArray(v) && v.every((a) => typeof a === 'string'))) {
      throw new StoreError('command must be an array of strings');
    }
    row[COLUMNS[f]] = f === 'command' || ((f === 'summary' || f === 'request') && v !== null && v !== undefined) ? JSON.stringify(v) : (v as Row[string]);
  }
  return row;
}

function fromRow(r: Row): RunRecord {
  const rec = {} as Record<keyof RunRecord, unknown>;
  for (const f of FIELDS) rec[f] = r[COLUMNS[f]];
  rec.command = JSON.parse(r.command as string);
  rec.summary = r.summary === null ? null : JSON.parse(r.summary as string);
  rec.request = r.request === null || r.request === undefined ? null : JSON.parse(r.request as string);
  rec.scheduleId = r.schedule_id ?? null;
  return rec as RunRecord;
}
