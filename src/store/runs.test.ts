import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { type NewRun, newRunId, openStore, runAlive, type RunStore, StoreError } from './runs.js';

const root = mkdtempSync(join(tmpdir(), 'clawpod-store-test-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDb = (): string => join(root, `s${++n}`, 'runs.db');

function withStore(fn: (s: RunStore, path: string) => void): void {
  const path = freshDb();
  const s = openStore(path);
  try {
    fn(s, path);
  } finally {
    s.close();
  }
}

const base = (id: string, startedAt = '2026-11-27T16:35:12.000Z'): NewRun => ({
  id,
  kind: 'exec',
  command: ['echo', 'hi there'],
  workspace: '/home/u/proj',
  workspaceMode: 'overlay',
  policySource: 'builtin:strict',
  backend: 'bwrap',
  startedAt,
});

describe('newRunId', () => {
  it('is r-<UTC date>-<UTC time>-<6 hex> and sorts by time', () => {
    const id = newRunId(new Date('2026-11-27T16:35:12.999Z'));
    assert.match(id, /^r-20261127-163512-[0-9a-f]{6}$/);
    const later = newRunId(new Date('2026-11-27T16:35:13.000Z'));
    assert.ok(id < later);
    assert.notEqual(newRunId(), newRunId());
  });
});

describe('openStore', () => {
  it('uses WAL, busy_timeout 5000, user_version 4 (the schema, pid_start, meta, service mode), a 0600 file, and reopens cleanly', () => {
    const path = freshDb();
    openStore(path).close();
    const store = openStore(path); // second open must not re-run migrations
    store.close();
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const db = new Database(path);
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.pragma('user_version', { simple: true }), 4);
    db.close();
    const s = openStore(path);
    assert.equal((s as unknown as { db: Database.Database }).db.pragma('busy_timeout', { simple: true }), 5000);
    s.close();
  });

  it('refuses a store written by a newer schema', () => {
    const path = freshDb();
    openStore(path).close();
    const db = new Database(path);
    db.pragma('user_version = 99');
    db.close();
    assert.throws(
      () => openStore(path),
      (e: unknown) => e instanceof StoreError && /newer/.test(e.message),
    );
  });
});

describe('RunStore', () => {
  it('creates with defaults and reads back every field', () =>
    withStore((s) => {
      const created = s.createRun(base('r-20261127-163512-a1b2c3'));
      assert.deepEqual(created, {
        ...base('r-20261127-163512-a1b2c3'),
        status: 'running',
        pid: null,
        hostBootId: null,
        pidStart: null,
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
      });
      assert.deepEqual(s.getRun('r-20261127-163512-a1b2c3'), created);
      assert.throws(() => s.createRun(base('r-20261127-163512-a1b2c3')), /UNIQUE/);
    }));

  it('updates a patch and returns the new record', () =>
    withStore((s) => {
      s.createRun({ ...base('r-1111'), pid: 4242, hostBootId: 'boot-1', auditPath: '/a/audit.jsonl' });
      const done = s.updateRun('r-1111', {
        status: 'timeout',
        endedAt: '2026-11-27T16:45:12.000Z',
        exitCode: 124,
        limitHit: 'timeout',
        diffState: 'pending',
        filesChanged: 3,
        summary: { bytes: 10, nested: { ok: true } },
      });
      assert.equal(done.status, 'timeout');
      assert.equal(done.exitCode, 124);
      assert.equal(done.pid, 4242);
      assert.deepEqual(done.summary, { bytes: 10, nested: { ok: true } });
      assert.deepEqual(s.getRun('r-1111'), done);
      assert.deepEqual(s.updateRun('r-1111', { exitCode: null }).exitCode, null);
    }));

  it('rejects unknown runs, bad enums, bad timestamps and non-updatable fields', () =>
    withStore((s) => {
      assert.throws(() => s.updateRun('r-nope', { status: 'done' }), /no run r-nope/);
      s.createRun(base('r-2222'));
      assert.throws(() => s.updateRun('r-2222', { status: 'bogus' as 'done' }), /CHECK/);
      assert.throws(() => s.updateRun('r-2222', { endedAt: 'yesterday' }), /ISO-8601/);
      assert.throws(() => s.updateRun('r-2222', { id: 'x' } as never), /cannot update/);
      assert.throws(() => s.createRun({ ...base('r-3333'), kind: 'job' as 'run' }), /CHECK/);
      assert.equal(s.getRun('r-2222')?.status, 'running');
    }));

  it('finds a run by a unique prefix of >= 4 characters and refuses an ambiguous one', () =>
    withStore((s) => {
      s.createRun(base('r-20261127-163512-a1b2c3'));
      s.createRun(base('r-20261127-163512-a1ffff'));
      s.createRun(base('r-20261128-090000-000000'));
      assert.equal(s.getRun('r-20261128')?.id, 'r-20261128-090000-000000');
      assert.equal(s.getRun('r-20261127-163512-a1b')?.id, 'r-20261127-163512-a1b2c3');
      assert.throws(
        () => s.getRun('r-20261127-163512-a1'),
        (e: unknown) => e instanceof StoreError && /ambiguous/.test(e.message) && e.message.includes('a1ffff'),
      );
      assert.throws(() => s.getRun('r-20'), /ambiguous/);
      assert.equal(s.getRun('r-2'), undefined, 'under 4 characters only matches exactly');
      assert.equal(s.getRun('r-2026112%'), undefined, 'no LIKE wildcards');
      assert.equal(s.getRun('r-29991231'), undefined);
    }));

  it('finds "last", and a unique part anywhere in the id, naming every candidate when several match', () =>
    withStore((s) => {
      assert.equal(s.getRun('last'), undefined, 'no runs: no last');
      s.createRun(base('r-20261127-163512-a1b2c3', '2026-11-27T16:35:12.000Z'));
      s.createRun(base('r-20261127-170000-77aa01', '2026-11-27T17:00:00.000Z'));
      s.createRun(base('r-20261126-090000-b2c3d4', '2026-11-26T09:00:00.000Z'));
      assert.equal(s.getRun('last')?.id, 'r-20261127-170000-77aa01');
      assert.equal(s.getRun('a1b2')?.id, 'r-20261127-163512-a1b2c3', 'a part of the random suffix');
      assert.equal(s.getRun('77aa01')?.id, 'r-20261127-170000-77aa01');
      assert.throws(
        () => s.getRun('b2c3'),
        (e: unknown) =>
          e instanceof StoreError &&
          /part "b2c3" is ambiguous: it matches 2 runs/.test(e.message) &&
          e.message.includes('r-20261127-163512-a1b2c3') &&
          e.message.includes('r-20261126-090000-b2c3d4'),
      );
      assert.equal(s.getRun('b2c'), undefined, 'a part under 4 characters finds nothing');
      assert.equal(s.getRun('%%%%'), undefined, 'no LIKE wildcards in parts either');
      for (let i = 0; i < 7; i++) s.createRun(base(`r-20261125-00000${i}-cafe0${i}`, `2026-11-25T00:00:0${i}.000Z`));
      assert.throws(() => s.getRun('cafe'), /matches 7 runs \(.*, and 2 more\)/);
    }));

  it('counts and lists runs started before a time; deletes a run; holds the write lock for a callback', () =>
    withStore((s, path) => {
      s.createRun(base('r-old', '2026-11-01T00:00:00.000Z'));
      s.createRun(base('r-new', '2026-11-27T00:00:00.000Z'));
      assert.equal(s.countRuns(), 2);
      assert.equal(s.countRuns({ startedBefore: '2026-11-20T00:00:00.000Z' }), 1);
      assert.deepEqual(
        s.listRuns({ startedBefore: '2026-11-20T00:00:00.000Z' }).map((r) => r.id),
        ['r-old'],
      );
      assert.throws(() => s.listRuns({ startedBefore: 'last week' }), /ISO-8601/);
      assert.equal(s.deleteRun('r-old'), true);
      assert.equal(s.deleteRun('r-old'), false);
      const other = openStore(path);
      try {
        // Inside the lock another handle cannot write; what the callback wrote commits with it.
        s.withWriteLock(() => {
          s.updateRun('r-new', { status: 'done' });
          const db = new Database(path, { timeout: 0 });
          try {
            assert.throws(() => db.prepare("UPDATE runs SET status = 'failed'").run(), /locked|busy/i);
          } finally {
            db.close();
          }
        });
        assert.equal(other.getRun('r-new')?.status, 'done');
        assert.throws(
          () =>
            s.withWriteLock(() => {
              s.updateRun('r-new', { status: 'failed' });
              throw new Error('no');
            }),
          /no/,
        );
        assert.equal(other.getRun('r-new')?.status, 'done', 'rolled back when the callback throws');
        assert.equal(s.getMeta('k'), undefined);
        s.setMeta('k', 'one');
        s.setMeta('k', 'two');
        assert.equal(other.getMeta('k'), 'two');
      } finally {
        other.close();
      }
    }));

  it('lists newest first with a limit, and lists running runs', () =>
    withStore((s) => {
      s.createRun(base('r-b', '2026-11-27T10:00:00.000Z'));
      s.createRun(base('r-c', '2026-11-27T12:00:00.000Z'));
      s.createRun(base('r-a', '2026-11-27T11:00:00.000Z'));
      s.updateRun('r-c', { status: 'done' });
      assert.deepEqual(
        s.listRuns().map((r) => r.id),
        ['r-c', 'r-a', 'r-b'],
      );
      assert.deepEqual(
        s.listRuns({ limit: 2 }).map((r) => r.id),
        ['r-c', 'r-a'],
      );
      assert.deepEqual(
        s.runningRuns().map((r) => r.id),
        ['r-b', 'r-a'],
      );
      assert.throws(() => s.listRuns({ limit: 0 }), /positive integer/);
    }));

  it('is shared by two handles on one file (WAL + busy timeout)', () =>
    withStore((s, path) => {
      const other = openStore(path);
      try {
        other.createRun(base('r-4444'));
        assert.equal(s.getRun('r-4444')?.backend, 'bwrap');
      } finally {
        other.close();
      }
    }));
});

describe('runAlive', () => {
  it('records boot and start time of the supervising pid, and judges by all three', () =>
    withStore((s) => {
      const run = s.createRun({ ...base('r-self'), pid: process.pid });
      assert.match(run.hostBootId ?? '', /^[0-9a-f-]{36}$/);
      assert.match(run.pidStart ?? '', /^\d+$/);
      assert.equal(runAlive(run), true);
      assert.equal(runAlive({ ...run, hostBootId: '00000000-0000-0000-0000-000000000000' }), false, 'another boot');
      assert.equal(runAlive({ ...run, pidStart: '1' }), false, 'a reused pid');
      assert.equal(runAlive({ ...run, pid: null }), false);
      assert.equal(runAlive({ pid: process.pid, pidStart: null, hostBootId: null }), true, 'an old record: judged by the pid');
    }));
});

describe('queued runs (service mode)', () => {
  it('queued runs start in order and are claimed exactly once, across stores', () => {
    const dir = mkdtempSync(join(tmpdir(), 'clawpod-store-q-'));
    const file = join(dir, 'clawpod.db');
    const s = openStore(file);
    s.createRun(base('r-20261127-163512-000001'));
    s.createRun({ ...base('r-20261127-163512-000002'), status: 'queued', request: { kind: 'exec', command: ['true'] } });
    s.createRun({ ...base('r-20261127-163512-000003'), status: 'queued', request: { kind: 'exec', command: ['false'] } });
    assert.deepEqual(
      s.queuedRuns().map((r) => [r.id, r.request]),
      [
        ['r-20261127-163512-000002', { kind: 'exec', command: ['true'] }],
        ['r-20261127-163512-000003', { kind: 'exec', command: ['false'] }],
      ],
    );
    assert.equal(s.countQueued(), 2);
    assert.equal(s.countQueued('no-such-schedule'), 0);
    const other = openStore(file);
    assert.equal(s.claimQueued('r-20261127-163512-000002', { pid: process.pid }), true);
    assert.equal(other.claimQueued('r-20261127-163512-000002', { pid: process.pid }), false, 'a second claim, from another process too, fails');
    assert.equal(s.getRun('r-20261127-163512-000002')?.status, 'running');
    assert.equal(s.getRun('r-20261127-163512-000002')?.pidStart !== null, true);
    s.updateRun('r-20261127-163512-000003', { status: 'cancelled' });
    assert.equal(s.claimQueued('r-20261127-163512-000003', {}), false, 'a cancelled run never starts');
    assert.deepEqual(s.queuedRuns(), []);
    other.close();
    s.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
