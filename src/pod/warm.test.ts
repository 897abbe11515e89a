import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Rules } from '../policy/types.js';
import { buildBwrapArgs, buildPodinitArgv, FD, PODWAIT, type HostLayout, type PodArgvInput } from './bwrap-argv.js';
import { MAX_WARM_REQUEST, warmRequest } from './bwrap-warm.js';
import type { Backend, PodOutcome, PodSpec, RunningPod, WarmPod } from './types.js';
import { shapeKey, WarmPool } from './warm.js';

const host: HostLayout = {
  bwrap: '/usr/bin/bwrap',
  podinit: '/opt/clawpod/build/clawpod-podinit',
  privileged: true,
  stage: '/run/clawpod/stage',
  usrLinks: { '/bin': 'usr/bin' },
  etcBinds: [],
  etcDir: '/run/clawpod/etc',
  forwarder: '/run/clawpod/fwd',
  executor: '/run/clawpod/podexec',
  podwait: '/run/clawpod/podwait',
};

function rules(over: Partial<Rules> = {}): Rules {
  return {
    resources: { cpus: 1, memoryBytes: 512 << 20, pids: 256, timeoutMs: 600_000, diskBytes: 1 << 30 },
    workspace: 'overlay',
    mounts: [],
    network: { allow: [], deny: [], hosts: {} },
    secrets: [],
    env: {},
    tools: {},
    source: 'builtin:strict',
    ...over,
  };
}

function spec(over: Partial<PodSpec> = {}): PodSpec {
  return {
    id: 'r-1',
    rules: rules(),
    workspace: '/home/u/proj',
    command: ['true'],
    changesDir: '/x/r-1/changes',
    allowDegraded: false,
    stdio: 'pipe',
    ...over,
  };
}

function input(over: Partial<PodArgvInput> = {}): PodArgvInput {
  return {
    rules: rules(),
    workspace: '/home/u/proj',
    command: [],
    changesDir: null,
    sourceIds: { '/home/u/proj': '2049:77' },
    cgroupProcs: [],
    cgroupInto: null,
    identity: { uid: 1_800_000_123, gid: 1_800_000_123, ownerUid: 1000, ownerGid: 1000 },
    env: {},
    warm: true,
    ...over,
  };
}

const after = (argv: string[], flag: string) => argv[argv.indexOf(flag) + 1];

describe('warm pod argv', () => {
  test('the prelude gets the destination on FD.go later, never --harvest or --go-fd, and keeps the ready fd', () => {
    const a = buildPodinitArgv(host, input({ changesDir: '/x/r-1/changes' }));
    const own = a.slice(0, a.indexOf('--'));
    assert.equal(after(own, '--harvest-fd'), String(FD.go));
    assert.ok(!own.includes('--harvest') && !own.includes('--go-fd'));
    assert.ok(own.some((x, i) => x === '--keep-fd' && own[i + 1] === String(FD.channel)));
  });

  test('the command is clawpod-podwait, bound read-only, told the ready fd; the hardening is a cold pod`s', () => {
    const warm = buildBwrapArgs(host, input());
    const cold = buildBwrapArgs(host, input({ warm: false, command: ['true'] }));
    assert.deepEqual(warm.slice(warm.indexOf('--') + 1), [PODWAIT, String(FD.channel)]);
    const at = warm.indexOf(host.podwait ?? '');
    assert.deepEqual(warm.slice(at - 1, at + 2), ['--ro-bind', host.podwait, PODWAIT]);
    const strip = (a: string[]) => a.slice(0, a.indexOf('--')).join(' ').replace(` --ro-bind ${host.podwait} ${PODWAIT}`, '');
    assert.equal(strip(warm), strip(cold), 'the same namespaces, binds, env and seccomp as a cold pod');
  });

  test('no warm pod with a terminal, an executor or egress', () => {
    for (const over of [{ tty: true }, { live: true }, { egress: { socketPath: '/run/e.sock' } }]) {
      assert.throws(() => buildPodinitArgv(host, input(over)), /warm pod/);
    }
  });
});

describe('warm request', () => {
  test('length, the stdin flag, argv NUL-terminated', () => {
    const f = warmRequest(['/bin/echo', 'a b', ''])!;
    assert.equal(f.readUInt32LE(0), f.length - 4);
    assert.equal(f.readUInt32LE(4), 1);
    assert.equal(f.subarray(8).toString(), '/bin/echo\0a b\0\0');
  });

  test('refused (the run starts cold): empty, a NUL inside an argument, over the bound', () => {
    assert.equal(warmRequest([]), null);
    assert.equal(warmRequest(['']), null);
    assert.equal(warmRequest(['/bin/echo', 'a\0b']), null);
    assert.equal(warmRequest(['/bin/echo', 'x'.repeat(MAX_WARM_REQUEST)]), null);
  });
});

describe('shapeKey', () => {
  test('the same shape whatever the run: id, command, change set, policy name', () => {
    const a = shapeKey(spec());
    assert.ok(a);
    assert.equal(shapeKey(spec({ id: 'r-2', command: ['ls'], changesDir: '/y', rules: rules({ source: '/p.yaml' }) })), a);
    assert.equal(shapeKey(spec({ env: { B: '2', A: '1' } })), shapeKey(spec({ env: { A: '1', B: '2' } })));
  });

  test('another shape: resources, workspace, mode, mounts, env, /etc files, settings, stage', () => {
    const a = shapeKey(spec());
    const others: Partial<PodSpec>[] = [
      { rules: rules({ resources: { ...rules().resources, memoryBytes: 1 << 30 } }) },
      { workspace: '/home/u/other' },
      { rules: rules({ workspace: 'none' }), workspace: null },
      { rules: rules({ mounts: [{ host: '/data', path: '/data', mode: 'ro' }] }) },
      { rules: rules({ env: { A: '1' } }) },
      { env: { GIT_AUTHOR_NAME: 'x' } },
      { etc: { gitconfig: '[user]\n' } },
      { rules: rules({ workspaceAt: 'host' }) },
      { forceTmpfsStage: true },
      { allowDegraded: true },
    ];
    for (const o of others) assert.notEqual(shapeKey(spec(o)), a, JSON.stringify(o));
  });

  test('never warm: egress, secrets, allowed hosts, rw or ro workspace, rw mounts, terminal, input, live', () => {
    const never: Partial<PodSpec>[] = [
      { egress: { socketPath: '/run/e.sock' } },
      { rules: rules({ network: { allow: ['example.com'], deny: [], hosts: {} } }) },
      { rules: rules({ secrets: [{ name: 'T', from: { kind: 'env', ref: 'T' }, hosts: ['example.com'] }] }) },
      { rules: rules({ workspace: 'rw' }) },
      { rules: rules({ workspace: 'ro' }) },
      { rules: rules({ mounts: [{ host: '/data', path: '/data', mode: 'rw' }] }) },
      { tty: true },
      { stdinPipe: true },
      { stdinInherit: true },
      { stdio: 'inherit' },
      { live: true },
    ];
    for (const o of never) assert.equal(shapeKey(spec(o)), null, JSON.stringify(o));
  });
});

/** A backend whose warm pods are plain records: started, stopped, claimed. */
function fakeBackend(o: { fail?: boolean } = {}) {
  const started: string[] = [];
  const stopped: string[] = [];
  const backend: Backend = {
    name: 'fake',
    probe: () => [],
    start: () => Promise.reject(new Error('cold')),
    reap: () => [],
    egressPaths: () => ({ socketPath: '' }),
    warm: async (s) => {
      if (o.fail) throw new Error('no podwait');
      started.push(s.id);
      let end: (o: PodOutcome) => void = () => {};
      const done = new Promise<PodOutcome>((r) => {
        end = r;
      });
      const pod: RunningPod = {
        id: s.id,
        pid: 1,
        uid: null,
        guards: [],
        stdin: null,
        stdout: null,
        stderr: null,
        wait: () => done,
        go: () => {},
        stop: () => {
          stopped.push(s.id);
          end({ exitCode: 137, limitHit: null, durationMs: 0, stoppedBy: 'x' });
        },
      };
      return { pod, ready: true, claim: () => pod } satisfies WarmPod;
    },
  };
  return { backend, started, stopped };
}

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('WarmPool', () => {
  test('a shape asked for once gets no pods; the second ask fills it; a take refills', async () => {
    const f = fakeBackend();
    const pool = new WarmPool(f.backend, { perShape: 2, maxShapes: 4, maxIdleMs: 60_000 });
    assert.equal(
      pool.take(spec(), () => {}),
      null,
    );
    await tick();
    assert.equal(f.started.length, 0, 'nothing started for a shape seen once');
    assert.equal(
      pool.take(spec({ id: 'r-2' }), () => {}),
      null,
      'still cold',
    );
    await tick();
    assert.equal(f.started.length, 2);
    const pod = pool.take(spec({ id: 'r-3' }), () => {});
    assert.ok(pod && f.started.includes(pod.id));
    await tick();
    assert.equal(f.started.length, 2, 'no refill while the taken pod runs (its run comes first)');
    pod.stop('done');
    await tick();
    assert.equal(f.started.length, 3, 'refilled once it ended');
    assert.equal(
      pool.take(spec({ workspace: '/other' }), () => {}),
      null,
      'another shape: its own count',
    );
    const taken = f.stopped.length;
    await pool.close();
    assert.equal(f.stopped.length - taken, 2, 'close stops the idle ones');
  });

  test('a taken pod that runs long does not hold the refill past its cap', async () => {
    const f = fakeBackend();
    const pool = new WarmPool(f.backend, { perShape: 1, maxShapes: 2, maxIdleMs: 60_000 });
    pool.prime(spec());
    await tick();
    assert.ok(pool.take(spec(), () => {}));
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(f.started.length, 2, 'refilled while the first still runs');
    await pool.close();
  });

  test('past maxShapes the least recently used shape is retired; an idle pod is retired after maxIdleMs', async () => {
    const f = fakeBackend();
    const pool = new WarmPool(f.backend, { perShape: 1, maxShapes: 1, maxIdleMs: 30 });
    pool.prime(spec());
    await tick();
    pool.prime(spec({ workspace: '/other' }));
    await tick();
    assert.deepEqual(f.stopped, [f.started[0]]);
    await new Promise((r) => setTimeout(r, 80));
    assert.deepEqual(f.stopped, f.started, 'idle too long');
    assert.equal(pool.readyCount(), 0);
    await pool.close();
  });

  test('a failed warm start: logged once, the shape waits (runs start cold), never a spin', async () => {
    const f = fakeBackend({ fail: true });
    const lines: string[] = [];
    const pool = new WarmPool(f.backend, { perShape: 2, maxShapes: 2, maxIdleMs: 60_000, onError: (l) => lines.push(l) });
    pool.prime(spec());
    await tick();
    for (let i = 0; i < 5; i++)
      assert.equal(
        pool.take(spec(), () => {}),
        null,
      );
    await tick();
    assert.equal(lines.length, 2, 'the two starts of the first fill, then no more until retryMs');
    assert.match(lines[0], /could not be started.*no podwait/);
    await pool.close();
  });

  test('a spec that is not pooled is never warmed', async () => {
    const f = fakeBackend();
    const pool = new WarmPool(f.backend, { perShape: 2, maxShapes: 2, maxIdleMs: 60_000 });
    pool.prime(spec({ tty: true }));
    pool.take(spec({ tty: true }), () => {});
    pool.take(spec({ tty: true }), () => {});
    await tick();
    assert.equal(f.started.length, 0);
    await pool.close();
  });
});
