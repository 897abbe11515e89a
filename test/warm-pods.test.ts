// Warm pods (src/pod/warm.ts, native/podwait.c): a run that takes a pod started ahead of time gets
// the isolation a cold pod has, its own output and exit code, its change set for review, a wall
// clock that starts when it does, and a pod nobody had before; the pool refills, retires idle
// pods, and a clawpod killed with warm pods idle leaves nothing the next reap does not remove.
// Real pods (bwrap, cgroups, the disk stage); needs root. No timed asserts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { createContext } from '../src/core/context.js';
import { runExec } from '../src/core/exec.js';
import { quietIO } from '../src/core/io.js';
import { createBwrapBackend } from '../src/pod/bwrap.js';
import type { PodOutcome, PodSpec, RunningPod } from '../src/pod/types.js';
import { WarmPool } from '../src/pod/warm.js';
import type { Rules } from '../src/policy/types.js';
import { auditEvents, BIN, cli, eventually, IS_ROOT, residue, ROOT, tmpDir, workspace } from './helpers.js';

const skip = IS_ROOT ? false : 'needs root: the privileged pod path (pod uids, cgroups, the disk stage)';
const PODS = '/run/clawpod/pods';

function rules(over: Partial<Rules['resources']> = {}): Rules {
  return {
    resources: { cpus: 1, memoryBytes: 256 << 20, pids: 64, timeoutMs: 60_000, diskBytes: 64 << 20, ...over },
    workspace: 'overlay',
    mounts: [],
    network: { allow: [], deny: [], hosts: {} },
    secrets: [],
    env: {},
    tools: {},
    source: 'test',
  };
}

interface Rig {
  home: string;
  ws: string;
  backend: ReturnType<typeof createBwrapBackend>;
  spec(command: string[], id?: string): PodSpec;
}

let n = 0;
function rig(r: Rules = rules()): Rig {
  const home = tmpDir('home');
  const ws = workspace({ 'keep.txt': 'keep\n' });
  const backend = createBwrapBackend({ clawpodHome: home });
  const spec = (command: string[], id = `r-warm-${process.pid}-${++n}`): PodSpec => ({
    id,
    rules: r,
    workspace: ws,
    command,
    changesDir: path.join(home, 'runs', id, 'changes'),
    allowDegraded: false,
    stdio: 'pipe',
    hold: true,
  });
  return { home, ws, backend, spec };
}

interface Ran {
  outcome: PodOutcome;
  stdout: string;
  stderr: string;
  pod: RunningPod;
}

async function run(pod: RunningPod): Promise<Ran> {
  let stdout = '';
  let stderr = '';
  pod.stdout?.on('data', (d) => {
    stdout += d;
  });
  pod.stderr?.on('data', (d) => {
    stderr += d;
  });
  pod.go();
  return { outcome: await pod.wait(), stdout, stderr, pod };
}

/** Takes a ready pod of the spec's shape (waiting for one), or fails. */
async function take(pool: WarmPool, spec: PodSpec, events: unknown[] = []): Promise<RunningPod> {
  pool.prime(spec);
  assert.ok(await eventually(() => pool.readyCount(spec) > 0, 30_000), 'a warm pod became ready');
  const pod = pool.take(spec, (e) => events.push(e));
  assert.ok(pod, 'take gave a warm pod');
  return pod;
}

/** Warm pod records (ids w-...) in the host's pod state, owned by `pid`. */
function warmRecords(pid: number): { id: string; uid: number | null }[] {
  return fs.readdirSync(PODS).flatMap((name) => {
    if (!name.startsWith('w-') || !name.endsWith('.json')) return [];
    try {
      const rec = JSON.parse(fs.readFileSync(path.join(PODS, name), 'utf8')) as { id: string; uid: number | null; ownerPid: number };
      return rec.ownerPid === pid ? [{ id: rec.id, uid: rec.uid }] : [];
    } catch {
      return [];
    }
  });
}

/** Everything a pod leaves on the host (helpers' residue), for every one of these. */
async function assertGone(pods: { id: string; uid: number | null }[], loops: Loop[] = []): Promise<void> {
  let left: string[] = [];
  await eventually(() => {
    left = [...pods.flatMap((p) => residue(p.id, p.uid)), ...loops.filter(stillAttached).map((l) => `loop device ${l.name} still attached`)];
    return left.length === 0;
  }, 15_000);
  assert.deepEqual(left, [], 'no pod process, mount, cgroup, record, uid lock or loop device left');
}

interface Loop {
  name: string;
  seq: string;
}

/** The loop device under the stage a prelude mounted (its mount namespace), with its attach number. */
function stageLoop(preludePid: number): Loop | null {
  const line = fs
    .readFileSync(`/proc/${preludePid}/mountinfo`, 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[4] === '/run/clawpod/stage');
  if (!line) return null;
  const dev = line.split(' ')[2];
  const name = path.basename(fs.readlinkSync(`/sys/dev/block/${dev}`));
  return name.startsWith('loop') ? { name, seq: fs.readFileSync(`/sys/block/${name}/diskseq`, 'utf8').trim() } : null;
}

function stillAttached(l: Loop): boolean {
  try {
    return fs.existsSync(`/sys/block/${l.name}/loop/backing_file`) && fs.readFileSync(`/sys/block/${l.name}/diskseq`, 'utf8').trim() === l.seq;
  } catch {
    return false;
  }
}

// What a command sees of its pod; a warm pod's must be a cold one's, line for line (but the
// namespaces' own numbers, and the read-only bind of podwait itself it was started from).
const PROBE = String.raw`
echo "ID=$(id -u):$(id -g) GROUPS=$(id -G)"
grep -E '^(Seccomp|Seccomp_filters|NoNewPrivs|CapInh|CapPrm|CapEff|CapBnd|CapAmb):' /proc/self/status
echo "NET=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
echo "USR=$(touch /usr/x 2>/dev/null && echo writable || echo read-only)"
echo "ROOTFS=$(touch /x 2>/dev/null && echo writable || echo read-only)"
echo "UNSHARE=$(unshare -U true 2>/dev/null && echo allowed || echo denied)"
echo "MEM=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"
echo "PIDSMAX=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)"
echo "CGROUP=$(tr '\n' ' ' < /proc/self/cgroup)"
echo "NPROC=$(nproc)"
echo "PID=$$ PROCS=$(ls /proc | grep -E '^[0-9]+$' | wc -l)"
echo "PWD=$(pwd)"
echo "ENV=$(env | grep -v '^_=' | sort | tr '\n' ' ')"
echo "FDS=$(ls /proc/self/fd | tr '\n' ' ') STDIN=$(readlink /proc/self/fd/0) SID=$(ps -o sid= -p $$ 2>/dev/null | tr -d ' ')"
echo "LIMITS=$(tail -n +2 /proc/self/limits | tr -s ' ' | tr '\n' ';')"
echo "MOUNTS=$(awk '{print $5, $6}' /proc/self/mountinfo | grep -v '^/run/clawpod/wait ' | sort | tr '\n' ';')"
echo "WS=$(cat keep.txt)"
`;

test('a warm pod runs the command with a cold pod`s isolation: uid, no network, read-only system, caps, seccomp', { skip }, async () => {
  const r = rig();
  const pool = new WarmPool(r.backend, { perShape: 1, maxShapes: 2, maxIdleMs: 60_000 });
  try {
    const warm = await run(await take(pool, r.spec(['sh', '-c', PROBE])));
    const cold = await run(await r.backend.start({ ...r.spec(['sh', '-c', PROBE]), hold: false }, () => {}));
    assert.equal(warm.outcome.exitCode, 0, warm.stderr);
    assert.equal(cold.outcome.exitCode, 0, cold.stderr);
    assert.ok(warm.pod.uid !== null && warm.pod.uid >= 1_800_000_000, 'its own host uid');
    assert.match(warm.stdout, /^ID=1000:1000 /m);
    assert.match(warm.stdout, /^Seccomp:\s+2$/m);
    assert.match(warm.stdout, /^NoNewPrivs:\s+1$/m);
    assert.match(warm.stdout, /^CapEff:\s+0+$/m);
    assert.match(warm.stdout, /^NET=lo $/m);
    assert.match(warm.stdout, /^USR=read-only$/m);
    assert.match(warm.stdout, /^UNSHARE=denied$/m);
    assert.match(warm.stdout, /^MEM=268435456$/m);
    assert.match(warm.stdout, /^PIDSMAX=64$/m);
    assert.match(warm.stdout, /^PID=2 /m, 'the command is the pod`s own process, not a child of the resident');
    assert.match(warm.stdout, /STDIN=\/dev\/null/);
    assert.match(warm.stdout, /^WS=keep$/m);
    assert.equal(warm.stdout, cold.stdout, 'what the command sees is what a cold pod`s sees');
  } finally {
    await pool.close();
  }
});

test('output, stderr and exit code are the command`s own; exited() knows the code first', { skip }, async () => {
  const r = rig();
  const pool = new WarmPool(r.backend, { perShape: 1, maxShapes: 2, maxIdleMs: 60_000 });
  try {
    const pod = await take(pool, r.spec(['sh', '-c', 'echo out; echo err >&2; exit 7']));
    const code = pod.exited?.();
    const ran = await run(pod);
    assert.equal(ran.outcome.exitCode, 7);
    assert.equal(await code, 7);
    assert.equal(ran.stdout, 'out\n');
    assert.equal(ran.stderr, 'err\n');
    const missing = await run(await take(pool, r.spec(['no-such-command-here'])));
    assert.equal(missing.outcome.exitCode, 127, 'not found: 127, as cold');
  } finally {
    await pool.close();
  }
});

test('the wall clock counts from go, not from warm-up', { skip }, async () => {
  const r = rig(rules({ timeoutMs: 1500 }));
  const pool = new WarmPool(r.backend, { perShape: 1, maxShapes: 2, maxIdleMs: 60_000 });
  try {
    const pod = await take(pool, r.spec(['sh', '-c', 'sleep 0.5; echo done']));
    // Idle past its whole timeout before the run takes it: none of that counts.
    await new Promise((res) => setTimeout(res, 2000));
    const ran = await run(pod);
    assert.equal(ran.outcome.limitHit, null, ran.stderr);
    assert.equal(ran.outcome.exitCode, 0);
    assert.equal(ran.stdout, 'done\n');
    const late = await run(await take(pool, r.spec(['sleep', '30'])));
    assert.equal(late.outcome.limitHit, 'timeout', 'the cap holds from go');
    assert.equal(late.outcome.exitCode, 124);
  } finally {
    await pool.close();
  }
});

test('a pod is never reused: each take is another pod (uid, pid namespace); the pool refills', { skip }, async () => {
  const r = rig();
  const pool = new WarmPool(r.backend, { perShape: 2, maxShapes: 2, maxIdleMs: 60_000 });
  const cmd = ['sh', '-c', 'readlink /proc/self/ns/pid /proc/self/ns/mnt /proc/self/ns/net'];
  try {
    pool.prime(r.spec(cmd));
    assert.ok(await eventually(() => pool.readyCount() === 2, 30_000), 'two ready');
    const a = pool.take(r.spec(cmd), () => {});
    const b = pool.take(r.spec(cmd), () => {});
    assert.ok(a && b);
    assert.equal(pool.readyCount(), 0, 'both taken: neither is offered again');
    assert.equal(
      pool.take(r.spec(cmd), () => {}),
      null,
      'none ready: the caller starts cold',
    );
    const [ra, rb] = await Promise.all([run(a), run(b)]);
    assert.notEqual(a.uid, b.uid);
    assert.notEqual(a.pid, b.pid);
    assert.notEqual(ra.stdout, rb.stdout, 'other namespaces');
    assert.ok(await eventually(() => pool.readyCount() === 2, 30_000), 'refilled in the background');
    const c = pool.take(r.spec(cmd), () => {});
    assert.ok(c && c.uid !== a.uid && c.uid !== b.uid && c.pid !== a.pid && c.pid !== b.pid, 'a fresh one');
    await run(c);
  } finally {
    await pool.close();
  }
  await assertGone(warmRecords(process.pid));
});

test('an idle warm pod is retired, leaving nothing behind', { skip }, async () => {
  const r = rig();
  const pool = new WarmPool(r.backend, { perShape: 1, maxShapes: 2, maxIdleMs: 500 });
  try {
    pool.prime(r.spec(['true']));
    assert.ok(await eventually(() => pool.readyCount() === 1, 30_000), 'ready');
    const warm = warmRecords(process.pid);
    assert.equal(warm.length, 1);
    assert.ok(await eventually(() => pool.readyCount() === 0, 10_000), 'retired');
    await assertGone(warm);
    assert.equal(
      pool.take(r.spec(['true']), () => {}),
      null,
      'retired means not offered',
    );
  } finally {
    await pool.close();
  }
});

test('a run that takes a warm pod: its change set is harvested and reviewable, its audit says warm', { skip }, async () => {
  const home = tmpDir('home');
  const ws = workspace({ 'keep.txt': 'keep\n' });
  const ctx = createContext({ PATH: process.env.PATH, HOME: home, CLAWPOD_HOME: home });
  const pool = new WarmPool(ctx.backend(), { perShape: 1, maxShapes: 2, maxIdleMs: 60_000 });
  const exec = (command: string[]) => runExec(ctx, { command, workspace: ws, cwd: ws, allowDegraded: false, io: quietIO(), pods: pool });
  try {
    const first = await exec(['true']);
    assert.equal(auditEvents(home, first.run).find((e) => e.type === 'exec.start')?.data.warm, undefined, 'the first run of a shape starts cold');
    assert.equal(pool.readyCount(), 0, 'a shape asked for once gets no warm pods');
    const second = await exec(['true']);
    assert.equal(auditEvents(home, second.run).find((e) => e.type === 'exec.start')?.data.warm, undefined, 'the second starts cold too');
    assert.ok(await eventually(() => pool.readyCount() === 1, 30_000), 'and primes the shape');
    const s = await exec(['sh', '-c', 'echo new > new.txt; echo more >> keep.txt']);
    assert.equal(auditEvents(home, s.run).find((e) => e.type === 'exec.start')?.data.warm, true, 'the third took a warm pod');
    assert.equal(s.exitCode, 0);
    assert.equal(s.filesChanged, 2);
    const writes = auditEvents(home, s.run)
      .filter((e) => e.type === 'file.write')
      .map((e) => e.data.path);
    assert.deepEqual(writes.sort(), ['keep.txt', 'new.txt']);
    assert.ok(fs.existsSync(path.join(home, 'runs', s.run, 'changes', 'tree', 'new.txt')), 'the change set is in the run`s directory');
    const diff = await cli(['runs', 'diff', s.run], { home, cwd: ws });
    assert.equal(diff.code, 0, diff.stderr);
    assert.match(diff.stdout, /\+new/);
    assert.match(diff.stdout, /\+more/);
    assert.equal(fs.existsSync(path.join(ws, 'new.txt')), false, 'nothing reached the workspace before apply');
    const verify = await cli(['audit', 'verify', s.run], { home, cwd: ws });
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  } finally {
    await pool.close();
    ctx.close();
  }
  await assertGone(warmRecords(process.pid));
});

// A clawpod that holds a pool, killed with SIGKILL: its warm pods die with it (the prelude's
// parent-death signal) and the next reap removes their records, uid locks and cgroups.
const HOLDER = `
import { createBwrapBackend } from ${JSON.stringify(path.join(ROOT, 'dist/src/pod/bwrap.js'))};
import { WarmPool } from ${JSON.stringify(path.join(ROOT, 'dist/src/pod/warm.js'))};
const [home, ws] = process.argv.slice(2);
const rules = ${JSON.stringify(rules())};
const pool = new WarmPool(createBwrapBackend({ clawpodHome: home }), { perShape: 2, maxShapes: 1, maxIdleMs: 600000 });
pool.prime({ id: 'x', rules, workspace: ws, command: ['true'], changesDir: null, allowDegraded: false, stdio: 'pipe' });
const t = setInterval(() => { if (pool.readyCount() === 2) { clearInterval(t); process.stdout.write('READY\\n'); } }, 20);
setInterval(() => {}, 1000);
`;

test('SIGKILL of a clawpod with warm pods idle: the next reap leaves nothing behind', { skip }, async () => {
  const dir = tmpDir('holder');
  const script = path.join(dir, 'holder.mjs');
  fs.writeFileSync(script, HOLDER);
  const home = tmpDir('home');
  const ws = workspace({ 'keep.txt': 'keep\n' });
  const child = spawn(process.execPath, [script, home, ws], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  const gone = new Promise((res) => child.on('close', res));
  try {
    assert.ok(await eventually(() => out.includes('READY'), 30_000), 'the holder has two ready warm pods');
    const pods = warmRecords(child.pid ?? -1);
    assert.equal(pods.length, 2);
    const preludes = fs.readdirSync('/proc').filter((p) => {
      try {
        const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
        return stat.includes('(clawpod-podini') && Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === child.pid;
      } catch {
        return false;
      }
    });
    const loops = preludes.map((p) => stageLoop(Number(p))).filter((l): l is Loop => l !== null);
    assert.equal(loops.length, 2, 'each warm pod has its disk stage mounted');
    child.kill('SIGKILL');
    await gone;
    createBwrapBackend({ clawpodHome: home }).reap();
    await assertGone(pods, loops);
    assert.equal(fs.readFileSync(path.join(ws, 'keep.txt'), 'utf8'), 'keep\n');
  } finally {
    child.kill('SIGKILL');
  }
});

test('clawpod serve --warm: a run takes a warm pod; SIGTERM drains and stops the idle ones', { skip }, async () => {
  const home = tmpDir('home');
  const ws = workspace({ 'keep.txt': 'keep\n' });
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, CLAWPOD_HOME: home };
  const child = spawn(process.execPath, [BIN, 'serve', '--listen', '127.0.0.1:0', '--warm', '1', '--workspaces', ws], {
    env,
    cwd: ws,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
  try {
    assert.ok(await eventually(() => /serving on (\S+)/.test(err), 30_000), err);
    const url = err.match(/serving on (\S+)/)?.[1] ?? '';
    const token = fs.readFileSync(path.join(home, 'serve.token'), 'utf8').trim();
    const api = async (method: string, p: string, body?: unknown) => {
      const res = await fetch(url + p, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return (await res.json()) as Record<string, unknown>;
    };
    const runOnce = async (command: string[]) => {
      const { id } = (await api('POST', '/v1/runs', { kind: 'exec', command, workspace: ws })) as { id: string };
      let rec: Record<string, unknown> = {};
      for (let i = 0; i < 600 && !['done', 'failed', 'killed', 'timeout'].includes(String(rec.status)); i++) {
        rec = await api('GET', `/v1/runs/${id}`);
        await new Promise((res) => setTimeout(res, 50));
      }
      return { id, rec, warm: auditEvents(home, id).find((e) => e.type === 'exec.start')?.data.warm === true };
    };
    const first = await runOnce(['true']);
    assert.equal(first.rec.status, 'done');
    assert.equal(first.warm, false, 'the first run of a shape is cold');
    assert.equal((await runOnce(['true'])).warm, false, 'so is the second, which primes it');
    let warm: Awaited<ReturnType<typeof runOnce>> | null = null;
    for (let i = 0; i < 20 && !warm; i++) {
      const r = await runOnce(['sh', '-c', 'echo hi > hi.txt']);
      if (r.warm) warm = r;
      else await new Promise((res) => setTimeout(res, 200));
    }
    assert.ok(warm, 'a later run of the shape took a warm pod');
    assert.equal(warm.rec.status, 'done');
    assert.equal(warm.rec.filesChanged, 1);
    const server = child.pid ?? -1;
    assert.ok(await eventually(() => warmRecords(server).length === 1, 30_000), 'the pool refilled');
    const idle = warmRecords(server);
    child.kill('SIGTERM');
    // A pool left open would hold the drained server up (its pods' processes) until they idle out.
    const ended = await Promise.race([exited, new Promise((res) => setTimeout(() => res('still running'), 30_000))]);
    assert.equal(ended, 0, `the server exits after its drain: ${err}`);
    // Drained means stopped by the server itself, before it exits: nothing is left for a reaper.
    assert.deepEqual(
      idle.flatMap((p) => residue(p.id, p.uid)),
      [],
      'the idle warm pod was stopped and cleaned by the drain',
    );
    await assertGone(idle);
  } finally {
    child.kill('SIGKILL');
  }
});
