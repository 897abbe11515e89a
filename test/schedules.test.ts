// Schedules of `clawpod serve` against a real store (SQLite in a temp CLAWPOD_HOME) and the real
// request checks (resolveRequest), with an injected clock: when each kind fires next, missed
// firings across a restart, exactly one firing when two schedulers share a store, overlap, and
// the one-line refusals. No pod is started: submit() records the queued row, as the server's does.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { createContext } from '../src/core/context.js';
import { ApiError } from '../src/server/http.js';
import { type ResolvedRequest, type RunRequest, resolveRequest } from '../src/server/requests.js';
import { type ScheduleJson, Scheduler, type SchedulerOptions, nextFireAfter, parseScheduleRequest } from '../src/server/schedules.js';
import { newRunId, openStore, type RunStore } from '../src/store/runs.js';
import { ScheduleStore } from '../src/store/schedules.js';

// Cron patterns are read in the server's local time; the expectations below are in UTC.
process.env.TZ = 'UTC';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-schedules-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));
let n = 0;

interface Env {
  home: string;
  /** The server's workspace root; ws is a project in it. */
  root: string;
  ws: string;
  dbPath: string;
  store: RunStore;
  clock: { t: Date };
  errors: string[];
  stores: RunStore[];
}

/** A CLAWPOD_HOME with its store, a workspace root, and a clock the test moves. */
function env(start = '2026-06-01T10:30:00.000Z'): Env {
  const home = path.join(scratch, `h${++n}`);
  const root = path.join(scratch, `root${n}`);
  const ws = path.join(root, 'proj');
  fs.mkdirSync(ws, { recursive: true });
  const dbPath = path.join(home, 'clawpod.db');
  const store = openStore(dbPath);
  const e: Env = { home, root, ws, dbPath, store, clock: { t: new Date(start) }, errors: [], stores: [store] };
  after(() => {
    for (const s of e.stores) s.close();
  });
  return e;
}

function activeOf(store: RunStore, id: string): number {
  return (store.database().prepare("SELECT count(*) AS n FROM runs WHERE schedule_id = ? AND status IN ('queued', 'running')").get(id) as { n: number }).n;
}

/** What the server's submit does: a queued run row of the schedule. */
function submitter(e: Env, store: RunStore): SchedulerOptions<ResolvedRequest>['submit'] {
  return (r, o) => {
    store.createRun({
      id: newRunId(e.clock.t),
      kind: r.req.kind === 'exec' ? 'exec' : 'run',
      status: 'queued',
      command: r.req.kind === 'exec' ? r.req.command : [r.req.task],
      workspace: r.workspace,
      workspaceMode: 'overlay',
      policySource: 'builtin:strict',
      backend: 'bwrap',
      startedAt: e.clock.t.toISOString(),
      request: r.req as unknown as Record<string, unknown>,
      scheduleId: o.scheduleId,
    });
  };
}

/** A scheduler as the server wires it: the real request checks, a queued row per firing. */
function scheduler(e: Env, over: Partial<SchedulerOptions<ResolvedRequest>> = {}, store = e.store): Scheduler<ResolvedRequest> {
  const ctx = createContext({ HOME: e.home, CLAWPOD_HOME: e.home, PATH: process.env.PATH });
  return new Scheduler<ResolvedRequest>({
    store,
    resolve: (run: RunRequest) => resolveRequest(ctx, run, [e.root]),
    submit: submitter(e, store),
    activeOf: (id) => activeOf(store, id),
    now: () => e.clock.t,
    onError: (line) => e.errors.push(line),
    ...over,
  });
}

const runsOf = (store: RunStore, id: string) => store.listRuns({ limit: 1000 }).filter((r) => r.scheduleId === id);
const at = (e: Env, iso: string): void => {
  e.clock.t = new Date(iso);
};
const body = (e: Env, o: Record<string, unknown>) => ({ name: `s${++n}`, run: { kind: 'exec', command: ['true'], workspace: e.ws }, ...o });

describe('next times', () => {
  const created = new Date('2026-06-01T10:30:00.000Z');
  it('cron: the next match strictly after the time (5 fields, and 6 with seconds)', () => {
    assert.equal(nextFireAfter({ cron: '0 3 * * *' }, created, created)?.toISOString(), '2026-06-02T03:00:00.000Z');
    assert.equal(nextFireAfter({ cron: '0 * * * *' }, created, new Date('2026-06-01T11:00:00.000Z'))?.toISOString(), '2026-06-01T12:00:00.000Z');
    assert.equal(nextFireAfter({ cron: '*/10 * * * * *' }, created, created)?.toISOString(), '2026-06-01T10:30:10.000Z');
  });
  it('every: whole intervals from creation, the first one interval after it', () => {
    const s = { every: '1h30m' };
    assert.equal(nextFireAfter(s, created, created)?.toISOString(), '2026-06-01T12:00:00.000Z');
    assert.equal(nextFireAfter(s, created, new Date('2026-06-01T12:00:00.000Z'))?.toISOString(), '2026-06-01T13:30:00.000Z');
    assert.equal(nextFireAfter(s, created, new Date('2026-06-02T00:00:01.000Z'))?.toISOString(), '2026-06-02T01:30:00.000Z');
    assert.equal(nextFireAfter(s, created, new Date('2026-05-01T00:00:00.000Z'))?.toISOString(), '2026-06-01T12:00:00.000Z');
  });
  it('at: the time while it is ahead, then none', () => {
    const s = { at: '2026-06-01T12:00:00.000Z' };
    assert.equal(nextFireAfter(s, created, created)?.toISOString(), '2026-06-01T12:00:00.000Z');
    assert.equal(nextFireAfter(s, created, new Date('2026-06-01T12:00:00.000Z')), null);
  });
});

describe('parseScheduleRequest', () => {
  const run = { kind: 'exec', command: ['true'] };
  const cases: [string, unknown, RegExp][] = [
    ['not an object', [1], /^the body must be a JSON object \(example: \{"name"/],
    ['no time', { name: 'a', run }, /^schedule: body: give exactly one of "cron", "every" or "at" \(example/],
    ['two times', { name: 'a', cron: '* * * * *', every: '1m', run }, /give exactly one of "cron", "every" or "at" \(got "cron" and "every"\)/],
    ['bad cron', { name: 'a', cron: '61 * * * *', run }, /^schedule: cron: Invalid value for minute: 61 \(5 fields: minute hour/],
    ['cron of 3 fields', { name: 'a', cron: '* * *', run }, /^schedule: cron: invalid configuration format/],
    ['cron that never fires', { name: 'a', cron: '0 0 30 2 *', run }, /^schedule: cron: "0 0 30 2 \*" never fires/],
    ['every too short', { name: 'a', every: '500ms', run }, /^schedule: every: "500ms" is shorter than 1s/],
    ['every not a duration', { name: 'a', every: 'often', run }, /^schedule: every: "often" is not a duration \(use e\.g\. 30s/],
    ['at without a zone', { name: 'a', at: '2026-06-01T12:00:00', run }, /^schedule: at: Invalid ISO datetime/],
    ['unknown field', { name: 'a', every: '1m', run, retries: 3 }, /^schedule: body: unknown field "retries"/],
    ['missed', { name: 'a', every: '1m', run, missed: 'twice' }, /^schedule: missed: Invalid option: expected one of "once"\|"skip"/],
    ['overlap', { name: 'a', every: '1m', run, overlap: 'kill' }, /^schedule: overlap: Invalid option: expected one of "skip"\|"queue"/],
    ['no name', { every: '1m', run }, /^schedule: name: /],
    ['name with a newline', { name: 'a\nb', every: '1m', run }, /^schedule: name: must be one line of printable text/],
    ['no run', { name: 'a', every: '1m' }, /^schedule: run: must be a POST \/v1\/runs body/],
    ['run without kind', { name: 'a', every: '1m', run: { command: ['x'] } }, /^schedule: run: kind is required: "exec" or "task"/],
    ['run with a bad field', { name: 'a', every: '1m', run: { ...run, image: 'x' } }, /^schedule: run: body: unknown field "image"/],
    ['run with an empty command', { name: 'a', every: '1m', run: { kind: 'exec', command: [] } }, /^schedule: run: command: /],
  ];
  for (const [what, b, want] of cases) {
    it(`refuses ${what} with one line`, () => {
      assert.throws(
        () => parseScheduleRequest(b),
        (e: unknown) => e instanceof ApiError && e.status === 400 && want.test(e.message) && !e.message.includes('\n'),
      );
    });
  }
  it('keeps what it was given and fills in missed and overlap (skip)', () => {
    const r = parseScheduleRequest({ name: 'n', at: '2026-06-01T14:00:00+02:00', run });
    assert.deepEqual(r, { name: 'n', spec: { at: '2026-06-01T12:00:00.000Z' }, run, missed: 'skip', overlap: 'skip' });
    assert.deepEqual(parseScheduleRequest({ name: 'n', every: '5m', run, missed: 'once', overlap: 'queue' }).spec, { every: '5m' });
  });
});

describe('Scheduler', () => {
  it('creates, lists and removes; refuses a past at, a taken name and a workspace outside the roots', async () => {
    const e = env();
    const s = scheduler(e);
    const made = await s.create(body(e, { cron: '0 * * * *' }));
    assert.equal(made.nextFire, '2026-06-01T11:00:00.000Z');
    assert.equal(made.state, 'active');
    assert.deepEqual(
      s.list().map((x) => x.id),
      [made.id],
    );
    const refused = async (b: unknown, status: number, want: RegExp) =>
      assert.rejects(s.create(b), (err: unknown) => err instanceof ApiError && err.status === status && want.test(err.message));
    await refused(body(e, { at: '2026-06-01T10:00:00Z' }), 400, /^schedule: at: 2026-06-01T10:00:00\.000Z is in the past/);
    await refused({ ...body(e, { every: '1m' }), name: made.name }, 409, /^a schedule named "s\d+" exists \(s-\d{8}-\d{6}-[0-9a-f]{6}\): DELETE/);
    await refused(body(e, { every: '1m', run: { kind: 'exec', command: ['true'], workspace: scratch } }), 403, /is not under this server's workspace roots/);
    assert.equal(s.list().length, 1);
    assert.equal(s.remove(made.id), true);
    assert.equal(s.remove(made.id), false);
    assert.deepEqual(s.list(), []);
  });

  it('fires a due schedule once: one queued run, next_fire moved, last_fire set', async () => {
    const e = env();
    const s = scheduler(e);
    const sc = await s.create(body(e, { every: '1h' }));
    await s.tick();
    assert.equal(runsOf(e.store, sc.id).length, 0, 'not due yet');
    at(e, '2026-06-01T11:30:00.000Z');
    await s.tick();
    await s.tick();
    const runs = runsOf(e.store, sc.id);
    assert.equal(runs.length, 1);
    assert.equal(runs[0].status, 'queued');
    assert.deepEqual(runs[0].request, { kind: 'exec', command: ['true'], workspace: e.ws });
    const now = s.get(sc.id) as ScheduleJson;
    assert.equal(now.nextFire, '2026-06-01T12:30:00.000Z');
    assert.equal(now.lastFire, '2026-06-01T11:30:00.000Z');
    assert.deepEqual(now.lastRun, { id: runs[0].id, status: 'queued' });
  });

  it('a one-off fires once, then is listed as done', async () => {
    const e = env();
    const s = scheduler(e);
    const sc = await s.create(body(e, { at: '2026-06-01T11:00:00Z' }));
    at(e, '2026-06-01T11:00:00.000Z');
    await s.tick();
    at(e, '2026-06-02T11:00:00.000Z');
    await s.tick();
    assert.equal(runsOf(e.store, sc.id).length, 1);
    const done = s.get(sc.id) as ScheduleJson;
    assert.equal(done.state, 'done');
    assert.equal(done.nextFire, null);
    assert.equal(done.at, '2026-06-01T11:00:00.000Z');
  });

  it('missed while no server ran: "once" runs one, "skip" none; both move on, and a second restart fires nothing', async () => {
    const e = env();
    const first = scheduler(e);
    await first.start();
    const once = await first.create(body(e, { every: '1h', missed: 'once' }));
    const skip = await first.create(body(e, { every: '1h', missed: 'skip' }));
    await first.stop();
    // Down for three and a half hours: three firings of each were missed.
    at(e, '2026-06-01T14:00:00.000Z');
    for (let restart = 0; restart < 2; restart++) {
      const store = openStore(e.dbPath);
      e.stores.push(store);
      const again = scheduler(e, {}, store);
      await again.start();
      await again.stop();
      assert.equal(runsOf(store, once.id).length, 1);
      assert.equal(runsOf(store, skip.id).length, 0);
      const [o, k] = [again.get(once.id), again.get(skip.id)] as ScheduleJson[];
      assert.equal(o.nextFire, '2026-06-01T14:30:00.000Z');
      assert.equal(k.nextFire, '2026-06-01T14:30:00.000Z');
      if (restart === 0) assert.match(k.lastSkipped?.reason ?? '', /^missed \(the server was not running at 2026-06-01T11:30:00\.000Z; missed: skip\)$/);
    }
    assert.equal(e.errors.length, 1, e.errors.join('\n'));
  });

  it('a firing a few seconds late is not missed: "skip" runs it', async () => {
    const e = env();
    const s = scheduler(e);
    const sc = await s.create(body(e, { every: '1h', missed: 'skip' }));
    at(e, '2026-06-01T11:30:05.000Z');
    await s.tick();
    assert.equal(runsOf(e.store, sc.id).length, 1);
  });

  it('two schedulers on one store (two connections) fire each firing exactly once', async () => {
    const e = env();
    const other = openStore(e.dbPath);
    e.stores.push(other);
    // Both resolve before either writes: each read next_fire before the other moved it.
    let arrived = 0;
    let release = () => {};
    let bothHere = Promise.resolve();
    const ctx = createContext({ HOME: e.home, CLAWPOD_HOME: e.home, PATH: process.env.PATH });
    const resolve = async (run: RunRequest) => {
      const r = await resolveRequest(ctx, run, [e.root]);
      if (++arrived === 2) release();
      await bothHere;
      return r;
    };
    const a = scheduler(e, { resolve });
    const b = scheduler(e, { resolve }, other);
    const sc = await a.create(body(e, { every: '1m', overlap: 'queue', missed: 'once' }));
    for (const t of ['2026-06-01T10:31:00.000Z', '2026-06-01T10:32:00.000Z', '2026-06-01T10:45:00.000Z']) {
      at(e, t);
      arrived = 0;
      bothHere = new Promise<void>((r) => {
        release = r;
      });
      await Promise.all([a.tick(), b.tick()]);
    }
    assert.equal(runsOf(e.store, sc.id).length, 3);
    assert.equal(e.errors.length, 0, e.errors.join('\n'));
  });

  it('overlap: "skip" fires nothing while a run of it is queued, "queue" queues another', async () => {
    const e = env();
    const s = scheduler(e);
    const skip = await s.create(body(e, { every: '1m', overlap: 'skip' }));
    const queue = await s.create(body(e, { every: '1m', overlap: 'queue' }));
    at(e, '2026-06-01T10:31:00.000Z');
    await s.tick();
    at(e, '2026-06-01T10:32:00.000Z');
    await s.tick();
    assert.equal(runsOf(e.store, skip.id).length, 1);
    assert.equal(runsOf(e.store, queue.id).length, 2);
    const sk = s.get(skip.id) as ScheduleJson;
    assert.equal(sk.nextFire, '2026-06-01T10:33:00.000Z');
    assert.equal(sk.lastFire, '2026-06-01T10:31:00.000Z');
    assert.match(sk.lastSkipped?.reason ?? '', /^skipped: 1 run of it still queued or running \(overlap: skip\)$/);
    assert.match(e.errors.join('\n'), /^schedule "s\d+" \(s-[\w-]+\), due 2026-06-01T10:32:00\.000Z: skipped: 1 run/);
    // Once the earlier run has ended, the next firing runs.
    const [first] = runsOf(e.store, skip.id);
    e.store.updateRun(first.id, { status: 'done', endedAt: '2026-06-01T10:32:30.000Z' });
    at(e, '2026-06-01T10:33:00.000Z');
    await s.tick();
    assert.equal(runsOf(e.store, skip.id).length, 2);
    assert.equal(s.get(skip.id)?.lastSkipped, null);
  });

  it('a firing whose workspace is gone records why and moves on; the next one runs when it is back', async () => {
    const e = env();
    const s = scheduler(e);
    const sc = await s.create(body(e, { every: '1h', missed: 'once' }));
    fs.rmSync(e.ws, { recursive: true });
    at(e, '2026-06-01T11:30:00.000Z');
    await s.tick();
    assert.equal(runsOf(e.store, sc.id).length, 0);
    const gone = s.get(sc.id) as ScheduleJson;
    assert.equal(gone.nextFire, '2026-06-01T12:30:00.000Z');
    assert.equal(gone.lastFire, null);
    assert.equal(e.errors.length, 1);
    assert.match(e.errors[0], /, due 2026-06-01T11:30:00\.000Z: not run: workspace \/.*\/proj does not exist$/);
    fs.mkdirSync(e.ws);
    at(e, '2026-06-01T12:30:00.000Z');
    await s.tick();
    assert.equal(runsOf(e.store, sc.id).length, 1);
  });

  it('a submit that fails leaves no run row, records why and moves on (the firing is one transaction)', async () => {
    const e = env();
    const sc = await scheduler(e).create(body(e, { every: '1h' }));
    const failing = scheduler(e, {
      submit: (r, o) => {
        submitter(e, e.store)(r, o); // the row is written, then the submit fails
        throw new ApiError(429, 'the queue is full');
      },
    });
    at(e, '2026-06-01T11:30:00.000Z');
    await failing.tick();
    assert.equal(runsOf(e.store, sc.id).length, 0);
    assert.equal(failing.get(sc.id)?.nextFire, '2026-06-01T12:30:00.000Z');
    assert.equal(failing.get(sc.id)?.lastSkipped?.reason, 'not run: the queue is full');
  });

  it('a schedule removed while its firing resolves does not fire', async () => {
    const e = env();
    let s!: Scheduler<ResolvedRequest>;
    let id = '';
    const ctx = createContext({ HOME: e.home, CLAWPOD_HOME: e.home, PATH: process.env.PATH });
    let removeOnResolve = false;
    s = scheduler(e, {
      resolve: async (run) => {
        const r = await resolveRequest(ctx, run, [e.root]);
        if (removeOnResolve) s.remove(id);
        return r;
      },
    });
    id = (await s.create(body(e, { every: '1h' }))).id;
    removeOnResolve = true;
    at(e, '2026-06-01T11:30:00.000Z');
    await s.tick();
    assert.equal(runsOf(e.store, id).length, 0);
    assert.deepEqual(s.list(), []);
  });

  it('a clock set back waits for the next time by the clock, not for the old time', async () => {
    const e = env();
    const s = scheduler(e);
    const sc = await s.create(body(e, { cron: '0 * * * *' }));
    at(e, '2026-06-01T05:10:00.000Z');
    await s.tick();
    assert.equal(s.get(sc.id)?.nextFire, '2026-06-01T06:00:00.000Z');
  });

  it('the timer fires a due schedule by the real clock, and stop() ends it', async () => {
    const e = env();
    const s = scheduler(e, { now: () => new Date() });
    await s.start();
    const sc = await s.create(body(e, { every: '1s', overlap: 'queue' }));
    const table = new ScheduleStore(e.store);
    for (let i = 0; i < 200 && runsOf(e.store, sc.id).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    await s.stop();
    assert.ok(runsOf(e.store, sc.id).length >= 1, 'the timer never fired');
    const count = runsOf(e.store, sc.id).length;
    const next = table.get(sc.id)?.nextFire as string;
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(next) - Date.now()) + 200));
    assert.equal(runsOf(e.store, sc.id).length, count, 'fired after stop()');
  });
});
