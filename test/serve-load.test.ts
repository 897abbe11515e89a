// `clawpod serve` under load and under faults (issue 10, item 7), through the real binary, real
// pods and the HTTP API. Load: 200 exec runs queued at once at --concurrency 8, each must end
// exactly once (one run.start, one run.end), done with exit 0 and its chain verified; never more
// than 8 run at once, and runs on one workspace run one after another in the order they were
// posted. Faults: the server is killed with SIGKILL at random moments of such a load and started
// again on the same home each time; after every restart the runs its dead self left are closed
// as interrupted (chain verifies, one run.end), their pods reaped (no process, mount, cgroup,
// egress file, loop device), nothing that had ended changed, and the runs still queued run
// later, once. A seed (SERVE_LOAD_SEED) replays the kill moments; SERVE_LOAD_WARM=N passes
// --warm N (default: the server's own). Needs root.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { BIN, eventually, IS_ROOT, residue, tmpDir } from './helpers.js';

const skip = IS_ROOT ? false : 'needs root: the privileged pod path';
const TERMINAL = new Set(['done', 'failed', 'killed', 'timeout', 'cancelled', 'interrupted']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface AuditLine {
  seq: number;
  ts: string;
  type: string;
  data: Record<string, unknown>;
  hash?: string;
}
interface RunRec {
  id: string;
  status: string;
  exitCode: number | null;
  diffState: string;
  filesChanged: number;
  [k: string]: unknown;
}
/** One posted run: what it was asked to do and where. */
interface Posted {
  id: string;
  n: number;
  ws: string;
  writes: boolean;
}

const servers = new Set<ChildProcess>();
after(() => {
  for (const c of servers) c.kill('SIGKILL');
});

/** A `clawpod serve` child on a private home, with a small client for its API. */
class Serve {
  stderr = '';
  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
    readonly token: string,
    readonly pid: number,
  ) {}

  static async start(home: string, root: string): Promise<Serve> {
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', CLAWPOD_HOME: home };
    const args = [
      BIN,
      'serve',
      '--listen',
      '127.0.0.1:0',
      '--concurrency',
      '8',
      '--queue',
      '1000',
      ...(process.env.SERVE_LOAD_WARM ? ['--warm', process.env.SERVE_LOAD_WARM] : []),
      '--workspaces',
      root,
    ];
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    servers.add(child);
    child.on('exit', () => servers.delete(child));
    let stderr = '';
    child.stderr?.on('data', (d) => {
      stderr += d;
    });
    const file = path.join(home, 'serve.json');
    // Ready when serve.json names this child (a killed server's file stays behind).
    const ready = await eventually(() => {
      try {
        return JSON.parse(fs.readFileSync(file, 'utf8')).pid === child.pid;
      } catch {
        return false;
      }
    }, 60_000);
    assert.ok(ready && child.exitCode === null, `the server started (exit ${child.exitCode}):\n${stderr}`);
    const info = JSON.parse(fs.readFileSync(file, 'utf8')) as { url: string; pid: number };
    const s = new Serve(child, info.url, fs.readFileSync(path.join(home, 'serve.token'), 'utf8').trim(), info.pid);
    s.stderr = stderr;
    child.stderr?.on('data', (d) => {
      s.stderr += d;
    });
    return s;
  }

  async call(method: string, route: string, body?: unknown): Promise<{ status: number; text: string }> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    try {
      const r = await fetch(this.url + route, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: r.status, text: await r.text() };
    } catch (e) {
      const how = this.child.exitCode ?? this.child.signalCode;
      throw new Error(`${method} ${route}: ${(e as Error).message} (server ${how === null ? 'alive' : `gone: ${how}`})\n${this.stderr.slice(-3000)}`);
    }
  }

  async json<T>(route: string): Promise<T> {
    const r = await this.call('GET', route);
    assert.equal(r.status, 200, `GET ${route}: ${r.text}`);
    return JSON.parse(r.text) as T;
  }

  async post(command: string[], workspace: string): Promise<string> {
    const r = await this.call('POST', '/v1/runs', { kind: 'exec', command, workspace });
    assert.equal(r.status, 202, r.text);
    return (JSON.parse(r.text) as { id: string }).id;
  }

  async chain(id: string): Promise<AuditLine[]> {
    const r = await this.call('GET', `/v1/runs/${id}/audit`);
    if (r.status === 404) return [];
    assert.equal(r.status, 200, r.text);
    return parseChain(r.text);
  }

  /** The event names of a run's SSE stream, read until the server ends it. */
  async events(id: string): Promise<string[]> {
    const r = await fetch(`${this.url}/v1/runs/${id}/events`, { headers: { authorization: `Bearer ${this.token}` } });
    const text = await r.text();
    return [...text.matchAll(/^event: (.+)$/gm)].map((m) => m[1]);
  }

  /** Waits until every id is terminal; returns the records. */
  async allEnded(ids: string[], ms: number): Promise<Map<string, RunRec>> {
    const end = Date.now() + ms;
    for (;;) {
      const { runs } = await this.json<{ runs: RunRec[] }>('/v1/runs?limit=1000');
      const by = new Map(runs.map((r) => [r.id, r]));
      const open = ids.filter((id) => !TERMINAL.has(by.get(id)?.status ?? ''));
      if (open.length === 0) return by;
      if (Date.now() > end) throw new Error(`${open.length} runs never ended, e.g. ${open.slice(0, 3).map((id) => `${id} ${by.get(id)?.status}`)}`);
      await sleep(200);
    }
  }

  async running(): Promise<number> {
    return (await this.json<{ runs: RunRec[] }>('/v1/runs?status=running&limit=1000')).runs.length;
  }

  /** SIGKILL to the pid serve.json names; resolves once it is gone. */
  async kill9(): Promise<void> {
    const gone = new Promise((r) => this.child.once('exit', r));
    process.kill(this.pid, 'SIGKILL');
    await gone;
  }

  /** SIGTERM: drain and exit; the exit code. */
  async stop(): Promise<number | null> {
    const gone = new Promise<number | null>((r) => this.child.once('exit', (code) => r(code)));
    this.child.kill('SIGTERM');
    return gone;
  }
}

function parseChain(text: string): AuditLine[] {
  const out: AuditLine[] = [];
  for (const l of text.split('\n')) {
    if (!l) continue;
    try {
      out.push(JSON.parse(l) as AuditLine);
    } catch {
      /* a line torn by a kill: the reaper completes or cuts it */
    }
  }
  return out;
}

const count = (chain: AuditLine[], type: string) => chain.filter((e) => e.type === type).length;

/** What is wrong with a finished run's chain and record (empty: nothing). */
async function chainFaults(s: Serve, p: Posted, rec: RunRec | undefined, want: Set<string>): Promise<string[]> {
  const bad: string[] = [];
  const say = (m: string) => bad.push(`${p.id} (#${p.n}): ${m}`);
  if (!rec) return [`${p.id} (#${p.n}): no record`];
  if (!want.has(rec.status)) say(`status ${rec.status}, want ${[...want].join('/')}`);
  const chain = await s.chain(p.id);
  if (count(chain, 'run.start') !== 1 || count(chain, 'run.end') !== 1) say(`${count(chain, 'run.start')} run.start and ${count(chain, 'run.end')} run.end`);
  if (count(chain, 'exec.start') > 1) say(`${count(chain, 'exec.start')} exec.start: the command ran more than once`);
  if (chain[0]?.type !== 'run.start' || chain.at(-1)?.type !== 'run.end') say(`chain runs ${chain[0]?.type} .. ${chain.at(-1)?.type}`);
  const end = chain.at(-1);
  if (end?.type === 'run.end' && end.data.status !== rec.status) say(`run.end says ${end.data.status}, the record ${rec.status}`);
  const v = await s.json<{ ok: boolean; events: number; error?: string }>(`/v1/runs/${p.id}/audit/verify`);
  if (!v.ok || v.events !== chain.length) say(`verify ok=${v.ok} events=${v.events} of ${chain.length} ${v.error ?? ''}`);
  if (rec.status === 'done') {
    if (rec.exitCode !== 0) say(`done with exit ${rec.exitCode}`);
    if (p.writes) {
      const d = await s.call('GET', `/v1/runs/${p.id}/diff`);
      if (d.status !== 200 || !d.text.includes(`out-${p.n}.txt`) || !d.text.includes(`+${p.n}\n`))
        say(`diff (${d.status}) lacks out-${p.n}.txt: ${d.text.slice(0, 200)}`);
      if (rec.filesChanged !== 1) say(`filesChanged ${rec.filesChanged}`);
    }
  }
  return bad;
}

/** Most runs whose [run.start, run.end] overlap at one instant (an end and a start at the same
 *  millisecond do not overlap: the slot is freed after run.end). */
function mostAtOnce(spans: [number, number][]): number {
  const points = spans.flatMap(([a, b]) => [
    [a, 1],
    [b, -1],
  ]);
  points.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let now = 0;
  let most = 0;
  for (const [, d] of points) {
    now += d;
    most = Math.max(most, now);
  }
  return most;
}

function span(chain: AuditLine[]): [number, number] | null {
  const a = chain.find((e) => e.type === 'run.start');
  const b = chain.find((e) => e.type === 'run.end');
  return a && b ? [Date.parse(a.ts), Date.parse(b.ts)] : null;
}

/** Runs on one workspace never overlap; on the workspaces in `inOrder` (posted one after
 *  another) each starts only after the one posted before it has ended (FIFO). */
function workspaceFaults(posted: Posted[], chains: Map<string, AuditLine[]>, inOrder: string[]): string[] {
  const bad: string[] = [];
  const at = (t: number) => new Date(t).toISOString().slice(11);
  for (const ws of new Set(posted.map((p) => p.ws))) {
    const mine = posted.filter((p) => p.ws === ws).map((p) => ({ p, span: span(chains.get(p.id) ?? []) }));
    const started = mine.filter((m) => m.span).sort((x, y) => (x.span as number[])[0] - (y.span as number[])[0]);
    for (let i = 1; i < started.length; i++) {
      const [a, b] = [started[i - 1], started[i]];
      if ((b.span as number[])[0] < (a.span as number[])[1])
        bad.push(`${path.basename(ws)}: #${b.p.n} started at ${at((b.span as number[])[0])} while #${a.p.n} ran (until ${at((a.span as number[])[1])})`);
    }
    if (!inOrder.includes(ws)) continue;
    for (let i = 1; i < mine.length; i++) {
      const [a, b] = [mine[i - 1], mine[i]];
      if (a.span && b.span && b.span[0] < a.span[0]) bad.push(`${path.basename(ws)}: #${b.p.n} started before #${a.p.n}, posted before it`);
    }
  }
  return bad;
}

function mkdir(dir: string): string {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  fs.chmodSync(dir, 0o755);
  return dir;
}

/** Loop devices backed by clawpod's stage images that no mount namespace has mounted. */
function unmountedLoops(): Set<string> {
  const mounted = new Set<string>();
  const seen = new Set<string>();
  for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const ns = fs.readlinkSync(`/proc/${pid}/ns/mnt`);
      if (seen.has(ns)) continue;
      seen.add(ns);
      for (const m of fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8').matchAll(/ - \S+ (\/dev\/loop\d+) /g)) mounted.add(m[1].slice(5));
    } catch {
      /* exited while we looked */
    }
  }
  const out = new Set<string>();
  for (const dev of fs.readdirSync('/sys/block').filter((n) => /^loop\d+$/.test(n))) {
    let backing = '';
    try {
      backing = fs.readFileSync(`/sys/block/${dev}/loop/backing_file`, 'utf8').trim();
    } catch {
      continue; // not attached
    }
    if (backing.startsWith('/run/clawpod/') && !mounted.has(dev)) out.add(`${dev} ${backing}`);
  }
  return out;
}

/** Unmounted clawpod loop devices that stay so for a second (a pod starting elsewhere has one
 *  for a moment before it mounts it), less those there were before the test. */
async function leakedLoops(before: Set<string>): Promise<string[]> {
  const first = unmountedLoops();
  await sleep(1000);
  const second = unmountedLoops();
  return [...first].filter((l) => second.has(l) && !before.has(l));
}

function stageMountsOnHost(): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => (l.split(' ')[4] ?? '').startsWith('/run/clawpod/stage'));
}

function podUid(chain: AuditLine[]): number | null {
  const uid = chain.find((e) => e.type === 'exec.start')?.data.uid;
  return typeof uid === 'number' ? uid : null;
}

/** Whether process `pid` is `ancestor` or under it. */
function descendsFrom(pid: number, ancestor: number): boolean {
  for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
    if (p === ancestor) return true;
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      p = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      return false;
    }
  }
  return false;
}

/** Nothing of these runs left on the host once their pods have ended. A run in `again` went
 *  back to the queue and may be running once more under the same id in the server `server`:
 *  only processes outside that server's tree count for it. */
async function residueOf(ids: string[], chains: Map<string, AuditLine[]>, again = new Set<string>(), server = 0): Promise<string[]> {
  const left = (id: string) =>
    residue(id, again.has(id) ? null : podUid(chains.get(id) ?? [])).filter((r) => {
      if (!again.has(id)) return true;
      const pid = Number(/^process (\d+)/.exec(r)?.[1]);
      return Number.isFinite(pid) && !descendsFrom(pid, server);
    });
  await eventually(() => ids.every((id) => left(id).length === 0), 10_000);
  return ids.flatMap((id) => left(id).map((r) => `${id}: ${r}`));
}

test('200 exec runs at --concurrency 8: each ends once, done and verified; at most 8 at once; FIFO per workspace', { skip, timeout: 240_000 }, async () => {
  const loopsBefore = unmountedLoops();
  const home = tmpDir('home');
  const root = tmpDir('roots');
  const shared = ['a', 'b', 'c', 'd'].map((n) => mkdir(path.join(root, `shared-${n}`)));
  const s = await Serve.start(home, root);
  let sampling = true;
  let sampledMost = 0;
  const sampler = (async () => {
    while (sampling) {
      sampledMost = Math.max(sampledMost, await s.running());
      await sleep(50);
    }
  })();

  // First a burst of 8 posted at once on one workspace while the slots are free: the queue may
  // take several in one pass, and must still run them one at a time. Then, posted one after
  // another: half on a workspace of their own, lasting 1.5 s so that all 8 slots fill; half on
  // four shared workspaces (in turn), lasting 0.2 s. Every fifth is plain `sleep`, the rest
  // write a file of their own into the overlay.
  const burst = mkdir(path.join(root, 'burst'));
  const command = (n: number, pause: number, writes: boolean) => (writes ? ['sh', '-c', `echo ${n} > out-${n}.txt; sleep ${pause}`] : ['sleep', String(pause)]);
  const t0 = Date.now();
  const posted: Posted[] = await Promise.all(
    Array.from({ length: 8 }, async (_, n) => ({ id: await s.post(command(n, 0.2, true), burst), n, ws: burst, writes: true })),
  );
  for (let n = 8; n < 200; n++) {
    const solo = n % 2 === 1;
    const ws = solo ? mkdir(path.join(root, `solo-${n}`)) : shared[(n / 2) % 4];
    const writes = n % 5 !== 4;
    const id = await s.post(command(n, solo ? 1.5 : 0.2, writes), ws);
    posted.push({ id, n, ws, writes });
  }
  const postMs = Date.now() - t0;
  assert.equal(new Set(posted.map((p) => p.id)).size, 200, 'every POST got an id of its own');
  // A few live streams, opened while the load runs: each ends after its run's one run.end.
  const streams = posted.filter((p) => p.n % 25 === 3).map(async (p) => ({ p, events: await s.events(p.id) }));

  const recs = await s.allEnded(
    posted.map((p) => p.id),
    150_000,
  );
  const endMs = Date.now() - t0;
  sampling = false;
  await sampler;

  const failures: string[] = [];
  const chains = new Map<string, AuditLine[]>();
  for (const p of posted) {
    failures.push(...(await chainFaults(s, p, recs.get(p.id), new Set(['done']))));
    chains.set(p.id, await s.chain(p.id));
  }
  for (const { p, events } of await Promise.all(streams)) {
    const chainTypes = events.filter((e) => e !== 'status' && e !== 'output');
    if (chainTypes.filter((t) => t === 'run.start').length !== 1 || chainTypes.at(-1) !== 'run.end')
      failures.push(`${p.id}: its event stream was ${events.join(',')}`);
  }
  const spans = posted.map((p) => span(chains.get(p.id) ?? [])).filter((x): x is [number, number] => x !== null);
  const most = mostAtOnce(spans);
  if (most > 8) failures.push(`${most} runs were between run.start and run.end at one moment (cap 8)`);
  if (sampledMost > 8) failures.push(`GET /v1/runs?status=running listed ${sampledMost} at once (cap 8)`);
  failures.push(...workspaceFaults(posted, chains, shared));
  failures.push(
    ...(await residueOf(
      posted.map((p) => p.id),
      chains,
    )),
  );
  assert.equal(await s.stop(), 0, `SIGTERM drains and exits 0:\n${s.stderr}`);
  failures.push(...stageMountsOnHost().map((m) => `stage mount on the host: ${m}`));
  failures.push(...(await leakedLoops(loopsBefore)).map((l) => `loop device left: ${l}`));
  process.stdout.write(`# load: 200 posted in ${postMs} ms, all ended after ${endMs} ms; at most ${most} runs at once (sampled ${sampledMost})\n`);
  assert.deepEqual(failures, []);
  // Not a timing check: with 100 free workspaces and 8 slots, the queue must have run several at once.
  assert.ok(most >= 2, `runs overlapped (most at once: ${most})`);
});

/** A small seeded generator (mulberry32): SERVE_LOAD_SEED replays a failing run's kill moments. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Row {
  id: string;
  status: string;
  audit_path: string | null;
}

/** The store as the killed server left it (read directly: no clawpod may open it and reap). */
function storeRows(home: string): Map<string, Row> {
  const db = new Database(path.join(home, 'clawpod.db'), { readonly: true, fileMustExist: true });
  try {
    return new Map((db.prepare('SELECT id, status, audit_path FROM runs').all() as Row[]).map((r) => [r.id, r]));
  } finally {
    db.close();
  }
}

const readText = (f: string | null) => (f && fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : null);

test('kill -9 of the server at random moments under load: interrupted runs closed once, pods reaped, queued runs run once, nothing ended is lost', {
  skip,
  timeout: 300_000,
}, async () => {
  const seed = Number(process.env.SERVE_LOAD_SEED ?? Date.now() % 1_000_000);
  process.stdout.write(`# SERVE_LOAD_SEED=${seed}\n`);
  const rand = rng(seed);
  const loopsBefore = unmountedLoops();
  const home = tmpDir('home');
  const root = tmpDir('roots');
  const shared = ['a', 'b', 'c'].map((n) => mkdir(path.join(root, `shared-${n}`)));
  let s = await Serve.start(home, root);
  const posted: Posted[] = [];
  const byId = new Map<string, Posted>();
  // Runs on three shared workspaces (every third) and on workspaces of their own; long enough
  // that a kill finds pods mid-run. More are posted before a kill that would find the queue
  // short (a busy machine runs the first ones before the kills come).
  const postMore = async (howMany: number) => {
    for (let i = 0; i < howMany; i++) {
      const n = posted.length;
      const ws = n % 3 === 0 ? shared[(n / 3) % 3] : mkdir(path.join(root, `solo-${n}`));
      const writes = n % 6 !== 5;
      const pause = (0.5 + rand()).toFixed(2);
      const id = await s.post(writes ? ['sh', '-c', `echo ${n} > out-${n}.txt; sleep ${pause}`] : ['sleep', pause], ws);
      posted.push({ id, n, ws, writes });
      byId.set(id, posted[n]);
    }
  };
  await postMore(60);
  const failures: string[] = [];
  const kills = 3 + Math.floor(rand() * 3);
  let killed = 0;
  let orphaned = 0;
  for (let k = 0; k < kills; k++) {
    const queued = (await s.json<{ runs: RunRec[] }>('/v1/runs?status=queued&limit=1000')).runs.length;
    if (queued < 8) await postMore(16);
    // A moment while pods run: first some run, then a random wait.
    assert.ok(await waitRunning(s, 20_000), 'runs are running before the kill');
    // Mostly while pods run their command; about one kill in three while they are starting.
    await sleep(rand() < 0.3 ? rand() * 100 : rand() * 1000);
    await s.kill9();
    killed++;
    const rows = storeRows(home);
    const atKill = new Map([...rows.values()].map((r) => [r.id, { status: r.status, audit: readText(r.audit_path) }]));
    const say = (id: string, m: string) => failures.push(`kill ${k + 1}: ${id} (#${byId.get(id)?.n}): ${m}`);
    const t0 = Date.now();
    s = await Serve.start(home, root);
    const listed = new Map((await s.json<{ runs: RunRec[] }>('/v1/runs?limit=1000')).runs.map((r) => [r.id, r]));
    const chains = new Map<string, AuditLine[]>();
    const dead: string[] = [];
    const again = new Set<string>();
    for (const p of posted) {
      const was = atKill.get(p.id);
      const rec = listed.get(p.id);
      if (!was || !rec) {
        say(p.id, `${was ? '' : 'no row in the store after the kill; '}${rec ? '' : 'not listed after the restart'}`);
        continue;
      }
      if (TERMINAL.has(was.status)) {
        // Ended before the kill: nothing about it changes.
        if (rec.status !== was.status) say(p.id, `was ${was.status}, now ${rec.status}`);
        if (readText(rows.get(p.id)?.audit_path ?? null) !== was.audit) say(p.id, 'its audit log changed after it had ended');
      } else if (was.status === 'running') {
        dead.push(p.id);
        const old = parseChain(was.audit ?? '');
        const now = await s.chain(p.id);
        chains.set(p.id, now);
        if (count(old, 'run.start') === 0) {
          again.add(p.id); // never let go: back in the queue (its one run checked at the end)
          continue;
        }
        orphaned++;
        const closedBy = count(old, 'run.end') === 1 ? String(old.at(-1)?.data.status) : 'interrupted';
        // The record as the restarted server reaped it (the listing above came after the reap).
        if (rec.status !== closedBy) say(p.id, `running at the kill, after the restart ${rec.status} (want ${closedBy})`);
        if (count(now, 'run.start') !== 1 || count(now, 'run.end') !== 1)
          say(p.id, `after the restart ${count(now, 'run.start')} run.start, ${count(now, 'run.end')} run.end`);
        const v = await s.json<{ ok: boolean; error?: string }>(`/v1/runs/${p.id}/audit/verify`);
        if (!v.ok) say(p.id, `its chain does not verify after the restart: ${v.error}`);
        const kept = old.filter((e) => e.hash);
        if (kept.some((e, i) => now[i]?.hash !== e.hash)) say(p.id, 'lines of its chain were lost or changed by the reap');
      }
    }
    const summary = (xs: string[]) => [...new Set(xs)].map((x) => `${xs.filter((y) => y === x).length} ${x}`).join(', ');
    process.stdout.write(
      `# kill ${k + 1}: at the kill ${summary([...atKill.values()].map((w) => w.status))}; ${again.size} back in the queue; restart and checks ${Date.now() - t0} ms\n`,
    );
    // The dead server's pods are gone (pod processes, mounts, cgroups, records, uid locks, egress files).
    for (const r of await residueOf(dead, chains, again, s.pid)) failures.push(`kill ${k + 1}: ${r}`);
  }

  const recs = await s.allEnded(
    posted.map((p) => p.id),
    200_000,
  );
  const chains = new Map<string, AuditLine[]>();
  for (const p of posted) {
    // Every run started once in the end (a queued one after a restart), and ended once.
    failures.push(...(await chainFaults(s, p, recs.get(p.id), new Set(['done', 'interrupted']))));
    chains.set(p.id, await s.chain(p.id));
  }
  // One at a time and in order on a shared workspace, across the restarts too.
  failures.push(...workspaceFaults(posted, chains, shared));
  failures.push(
    ...(await residueOf(
      posted.map((p) => p.id),
      chains,
    )),
  );
  assert.equal(await s.stop(), 0, `SIGTERM drains and exits 0:\n${s.stderr}`);
  failures.push(...stageMountsOnHost().map((m) => `stage mount on the host: ${m}`));
  failures.push(...(await leakedLoops(loopsBefore)).map((l) => `loop device left: ${l}`));
  const statuses = posted.map((p) => recs.get(p.id)?.status);
  const interrupted = statuses.filter((x) => x === 'interrupted').length;
  process.stdout.write(
    `# faults: ${killed} kills, ${orphaned} runs caught mid-run, ${interrupted} interrupted, ${statuses.filter((x) => x === 'done').length} done\n`,
  );
  assert.deepEqual(failures, []);
  assert.ok(killed >= 3, `the server was killed ${killed} times`);
  assert.ok(orphaned >= 1 && interrupted >= 1, 'some kill landed while a pod ran');
});

/** True once the server lists a running run whose pod has started (false if none comes). */
async function waitRunning(s: Serve, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if ((await s.running()) > 0) return true;
    await sleep(20);
  }
  return false;
}
