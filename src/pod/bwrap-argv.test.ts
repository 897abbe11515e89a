import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Rules } from '../policy/types.js';
import { buildBwrapArgs, buildPodinitArgv, FD, podEnv, syntheticEtc, type HostLayout, type PodArgvInput } from './bwrap-argv.js';

const host: HostLayout = {
  bwrap: '/usr/bin/bwrap',
  podinit: '/opt/clawpod/build/clawpod-podinit',
  privileged: true,
  stage: '/run/clawpod/stage',
  usrLinks: { '/bin': 'usr/bin', '/lib64': 'usr/lib64' },
  etcBinds: ['/etc/ssl/certs'],
  etcDir: '/run/clawpod/etc',
  forwarder: '/run/clawpod/fwd',
  executor: '/run/clawpod/podexec',
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

function input(over: Partial<PodArgvInput> = {}): PodArgvInput {
  return {
    rules: rules(),
    workspace: '/home/u/proj',
    command: ['make', 'test'],
    changesDir: '/x/runs/r1/changes',
    sourceIds: { '/home/u/proj': '2049:77' },
    cgroupProcs: ['/sys/fs/cgroup/memory/clawpod/r1/cgroup.procs'],
    cgroupInto: '/sys/fs/cgroup/unified/clawpod/r1',
    identity: { uid: 1_800_000_123, gid: 1_800_000_123, ownerUid: 1000, ownerGid: 1000 },
    env: {},
    ...over,
  };
}

/** The value following a flag (first occurrence). */
const after = (argv: string[], flag: string, n = 1) => argv.slice(argv.indexOf(flag) + 1, argv.indexOf(flag) + 1 + n);

describe('bwrap argv', () => {
  test('hardening flags are always there, and the command comes last after --', () => {
    const a = buildBwrapArgs(host, input());
    for (const f of ['--unshare-all', '--unshare-user', '--disable-userns', '--die-with-parent', '--new-session', '--clearenv']) {
      assert.ok(a.includes(f), f);
    }
    assert.deepEqual(a.slice(-3), ['--', 'make', 'test']);
    assert.deepEqual(after(a, '--seccomp'), [String(FD.seccomp)]);
    assert.ok(!a.includes('--share-net'));
    assert.ok(a.lastIndexOf('--remount-ro') > a.indexOf('/workspace'), 'root made read-only after every mount');
    assert.deepEqual(a.slice(a.lastIndexOf('--remount-ro'), a.lastIndexOf('--remount-ro') + 2), ['--remount-ro', '/']);
    // /dev: the prelude's tree (its nodes, /dev/shm on the capped stage, its devpts), bound whole
    // and made read-only; never bwrap's --dev (a tmpfs and six binds that each re-read the mount table).
    const dev = a.indexOf('--dev-bind');
    assert.deepEqual(a.slice(dev, dev + 5), ['--dev-bind', '/run/clawpod/stage/dev', '/dev', '--remount-ro', '/dev']);
    assert.ok(!a.includes('--dev'), 'no bwrap --dev');
    assert.equal(a.filter((x) => x === '--dev-bind').length, 1, 'the only device bind');
  });

  test('system is read-only, /etc is synthetic, /tmp and home come from the stage', () => {
    const a = buildBwrapArgs(host, input());
    assert.deepEqual(after(a, '--ro-bind', 2), ['/usr', '/usr']);
    assert.ok(!a.some((x, i) => x === '--bind' && a[i + 1] === '/etc'), 'host /etc never bound');
    assert.ok(!a.some((x, i) => x === '--ro-bind' && a[i + 1] === '/etc'));
    const tmp = a.indexOf('/run/clawpod/stage/tmp');
    assert.deepEqual(a.slice(tmp - 1, tmp + 2), ['--bind', '/run/clawpod/stage/tmp', '/tmp']);
    const i = a.indexOf('/etc');
    assert.deepEqual(a.slice(i - 2, i + 1), ['--ro-bind', '/run/clawpod/etc/root', '/etc'], "clawpod's /etc dir");
    // The host's certificates reach it through the prelude (preludeBinds), never as a bwrap bind.
    assert.equal(a.indexOf('/etc/ssl/certs'), -1, 'no bwrap bind of /etc/ssl/certs');
    const pre = buildPodinitArgv(host, input());
    const pb = pre.slice(0, pre.indexOf('--'));
    assert.deepEqual(pb.slice(pb.indexOf('/etc/ssl/certs') - 1, pb.indexOf('/etc/ssl/certs') + 2), [
      '--ro-bind',
      '/etc/ssl/certs',
      '/run/clawpod/etc/root/ssl/certs',
    ]);
    assert.deepEqual(a.slice(a.indexOf('usr/bin') - 1, a.indexOf('usr/bin') + 2), ['--symlink', 'usr/bin', '/bin']);
  });

  test('workspace modes map to the right binds', () => {
    const bind = (m: Rules['workspace']) => {
      const a = buildBwrapArgs(host, input({ rules: rules({ workspace: m }) }));
      const i = a.indexOf('/workspace');
      return a.slice(i - 2, i + 1);
    };
    assert.deepEqual(bind('overlay'), ['--bind', '/run/clawpod/stage/ws', '/workspace']);
    assert.deepEqual(bind('ro'), ['--ro-bind', '/run/clawpod/stage/lower', '/workspace']);
    assert.deepEqual(bind('rw'), ['--bind', '/run/clawpod/stage/lower', '/workspace']);
    const none = buildBwrapArgs(host, input({ rules: rules({ workspace: 'none' }) }));
    assert.deepEqual(none.slice(none.indexOf('/workspace') - 1, none.indexOf('/workspace') + 1), ['--dir', '/workspace']);
  });

  test('extra mounts are read-only unless rw, in order', () => {
    const a = buildBwrapArgs(
      host,
      input({
        rules: rules({
          mounts: [
            { host: '/data/a', path: '/data', mode: 'ro' },
            { host: '/data/b', path: '/out', mode: 'rw' },
          ],
        }),
      }),
    );
    assert.deepEqual(a.slice(a.indexOf('/data') - 2, a.indexOf('/data') + 1), ['--ro-bind', '/run/clawpod/stage/mnt/0', '/data']);
    assert.deepEqual(a.slice(a.indexOf('/out') - 2, a.indexOf('/out') + 1), ['--bind', '/run/clawpod/stage/mnt/1', '/out']);
  });

  test('environment: a clean base plus the policy env; nothing of the host', () => {
    process.env.CLAWPOD_ARGV_TEST_SECRET = 'hunter2';
    const env = podEnv(rules({ env: { FOO: 'bar' } }), {});
    assert.equal(env.FOO, 'bar');
    assert.equal(env.HOME, '/home/pod');
    assert.ok(!Object.values(env).includes('hunter2'));
    const a = buildBwrapArgs(host, input());
    assert.ok(!a.join(' ').includes('hunter2'));
    delete process.env.CLAWPOD_ARGV_TEST_SECRET;
  });

  test('synthetic /etc lists only the pod user', () => {
    const etc = syntheticEtc();
    assert.match(etc.passwd, /^pod:x:1000:1000:/m);
    assert.equal(etc.passwd.trim().split('\n').length, 3);
    assert.doesNotMatch(etc.hosts, /\b10\.|192\.168\./);
  });
});

describe('egress', () => {
  test('without egress the pod has no proxy, no forwarder and no proxy variables', () => {
    const a = buildBwrapArgs(host, input());
    assert.ok(!a.includes('/run/clawpod/proxy.sock'));
    assert.ok(!a.some((x) => /_PROXY$/i.test(x)));
  });

  test('with egress: socket and forwarder bound, every proxy variable set, the command behind the forwarder', () => {
    const a = buildBwrapArgs(host, input({ egress: { socketPath: '/run/clawpod/proxy/r1.sock', caBundle: '/run/clawpod/ca/r1.pem' } }));
    assert.deepEqual(a.slice(a.indexOf('/run/clawpod/proxy.sock') - 2, a.indexOf('/run/clawpod/proxy.sock') + 1), [
      '--bind',
      '/run/clawpod/proxy/r1.sock',
      '/run/clawpod/proxy.sock',
    ]);
    assert.deepEqual(a.slice(a.indexOf('/etc/clawpod/ca.pem') - 2, a.indexOf('/etc/clawpod/ca.pem') + 1), [
      '--ro-bind',
      '/run/clawpod/ca/r1.pem',
      '/etc/clawpod/ca.pem',
    ]);
    const env = (k: string) => a[a.findIndex((x, i) => x === '--setenv' && a[i + 1] === k) + 2];
    for (const k of ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'ALL_PROXY', 'all_proxy']) assert.equal(env(k), 'http://127.0.0.1:3128', k);
    assert.equal(env('NO_PROXY'), '');
    for (const k of ['SSL_CERT_FILE', 'NODE_EXTRA_CA_CERTS', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO'])
      assert.equal(env(k), '/etc/clawpod/ca.pem', k);
    assert.deepEqual(a.slice(-7), ['--', '/run/clawpod/fwd', '3128', '/run/clawpod/proxy.sock', '--', 'make', 'test']);
  });
});

test('a live pod runs its executor, behind the forwarder when it has egress', () => {
  const live = buildBwrapArgs(host, input({ live: true, command: [] }));
  // The executor's channel is fd 6, never stdio (bwrap's init in the pod keeps only stdio).
  assert.deepEqual(live.slice(-3), ['--', '/run/clawpod/exec', String(FD.channel)]);
  const both = buildBwrapArgs(host, input({ live: true, command: [], egress: { socketPath: '/s.sock' } }));
  assert.deepEqual(both.slice(-9), ['--', '/run/clawpod/fwd', '3128', '/run/clawpod/proxy.sock', '--pass-fd', '6', '--', '/run/clawpod/exec', '6']);
  const pre = buildPodinitArgv(host, input({ live: true, command: [] }));
  assert.deepEqual(
    pre.slice(0, pre.indexOf('--')).filter((x, i, a) => a[i - 1] === '--keep-fd'),
    [String(FD.seccomp), String(FD.channel)],
  );
});

describe('prelude argv', () => {
  test('privileged: pod uid, idmap owner, cgroups, stage size, harvest, then bwrap', () => {
    const a = buildPodinitArgv(host, input());
    assert.deepEqual(after(a, '--uid'), ['1800000123']);
    assert.deepEqual(after(a, '--idmap-owner'), ['1000:1000']);
    assert.deepEqual(after(a, '--cgroup-procs'), ['/sys/fs/cgroup/memory/clawpod/r1/cgroup.procs']);
    assert.deepEqual(after(a, '--cgroup-dir'), ['/sys/fs/cgroup/unified/clawpod/r1']);
    assert.deepEqual(after(a, '--stage-size'), [String(1 << 30)]);
    assert.deepEqual(after(a, '--workspace'), ['overlay:2049:77:/home/u/proj']);
    assert.deepEqual(after(a, '--stage-inodes'), [String((1 << 30) / 4096)]);
    assert.deepEqual(after(a, '--keep-fd'), [String(FD.seccomp)]);
    assert.deepEqual(after(a, '--lock-dir'), ['/run/clawpod/locks']);
    assert.deepEqual(after(a, '--harvest'), ['/x/runs/r1/changes']);
    assert.deepEqual(after(a, '--'), ['/usr/bin/bwrap']);
    assert.ok(!a.includes('--userns'));
  });

  test('unprivileged: user namespace, no uid; refuses a privileged pod without identity', () => {
    const all = buildPodinitArgv({ ...host, privileged: false }, input({ identity: null }));
    const a = all.slice(0, all.indexOf('--'));
    assert.ok(a.includes('--userns'));
    assert.ok(!a.includes('--uid'));
    assert.throws(() => buildPodinitArgv(host, input({ identity: null })));
  });

  test('every source carries its checked identity; a source without one, or a zero disk cap, is refused', () => {
    const m = rules({ mounts: [{ host: '/data/x', path: '/data', mode: 'ro' }] });
    assert.throws(() => buildPodinitArgv(host, input({ rules: m })), /no checked identity for \/data\/x/);
    const a = buildPodinitArgv(host, input({ rules: m, sourceIds: { '/home/u/proj': '1:2', '/data/x': '3:4' } }));
    assert.deepEqual(after(a, '--attach'), ['ro:3:4:/data/x']);
    const zero = rules();
    zero.resources = { ...zero.resources, diskBytes: 0 };
    assert.throws(() => buildPodinitArgv(host, input({ rules: zero })), /disk cap/);
  });

  test('no harvest outside overlay mode; no workspace in none mode', () => {
    const ro = buildPodinitArgv(host, input({ rules: rules({ workspace: 'ro' }) }));
    assert.ok(!ro.includes('--harvest'));
    const none = buildPodinitArgv(host, input({ rules: rules({ workspace: 'none' }) }));
    assert.ok(!none.slice(0, none.indexOf('--')).includes('--workspace'));
  });
});
