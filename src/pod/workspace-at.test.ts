import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Rules } from '../policy/types.js';
import { buildBwrapArgs, type HostLayout, type PodArgvInput } from './bwrap-argv.js';
import { hostPathError, podWorkspaceDir, workspaceAtRefusal } from './workspace-at.js';

const host: HostLayout = {
  bwrap: '/usr/bin/bwrap',
  podinit: '/x/podinit',
  privileged: true,
  stage: '/run/clawpod/stage',
  usrLinks: {},
  etcBinds: [],
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
    source: 't',
    ...over,
  };
}

function args(r: Rules, workspace: string | null = '/home/u/proj'): string[] {
  const p: PodArgvInput = {
    rules: r,
    workspace,
    command: ['true'],
    changesDir: null,
    sourceIds: {},
    cgroupProcs: [],
    cgroupInto: null,
    identity: null,
    env: {},
  };
  return buildBwrapArgs(host, p);
}

const after = (a: string[], flag: string) => a[a.indexOf(flag) + 1];
const env = (a: string[], k: string) => a[a.findIndex((x, i) => x === '--setenv' && a[i + 1] === k) + 2];

test('workspaceAt host binds the workspace at its host path and works there; the default is /workspace', () => {
  const at = args(rules({ workspaceAt: 'host' }));
  const i = at.indexOf('/run/clawpod/stage/ws');
  assert.deepEqual(at.slice(i - 1, i + 2), ['--bind', '/run/clawpod/stage/ws', '/home/u/proj']);
  assert.equal(after(at, '--chdir'), '/home/u/proj');
  assert.equal(env(at, 'PWD'), '/home/u/proj');
  assert.ok(!at.includes('/workspace'));
  assert.ok(at.indexOf('/home/u/proj') > at.indexOf('/home/pod'), 'the workspace is bound after the pod home and /tmp');
  const ro = args(rules({ workspaceAt: 'host', workspace: 'ro' }));
  assert.equal(after(ro, '/run/clawpod/stage/lower'), '/home/u/proj');
  const def = args(rules());
  assert.equal(after(def, '--chdir'), '/workspace');
  assert.equal(after(def, '/run/clawpod/stage/ws'), '/workspace');
  // No workspace: nothing to place; the pod works in an empty /workspace as before.
  assert.equal(after(args(rules({ workspaceAt: 'host', workspace: 'none' })), '--chdir'), '/workspace');
  assert.equal(podWorkspaceDir(rules({ workspaceAt: 'host' }), null), '/workspace');
});

test('refused host paths: the system, the pod own places and what covers them, mounts, unmountable names', () => {
  const refused: [string, RegExp][] = [
    ['/', /whole system/],
    ['/usr', /\/usr/],
    ['/usr/local/src/p', /\/usr/],
    ['/etc/x', /\/etc/],
    ['/proc/1', /\/proc/],
    ['/sys/fs', /\/sys/],
    ['/dev/shm/p', /\/dev/],
    ['/bin/x', /\/bin/],
    ['/sbin', /\/sbin/],
    ['/lib64/x', /\/lib64/],
    ['/libexec', /\/libexec/],
    ['/library/p', /\/library/],
    ['/run/user/1/p', /\/run/],
    ['/tmp', /own \(private\) \/tmp/],
    ['/home/pod', /own \(private\) home/],
    ['/home', /cover the pod's \/home\/pod/],
    ['/memory', /\/memory/],
    ['/skills/a', /\/skills/],
    ['/srv/a\nb', /character/],
    ['/srv/a\\b', /backslash/],
    ['/srv/\u202ex', /character/],
    ['/srv/\ufffd', /non-UTF-8/],
    ['/srv//a', /normalized/],
    ['relative', /absolute/],
    [`/srv/${'a'.repeat(1100)}`, /longer than 1024/],
  ];
  for (const [p, why] of refused) {
    const e = hostPathError(p);
    assert.ok(e, `${JSON.stringify(p)} was accepted`);
    assert.match(e, why, `${JSON.stringify(p)}: ${e}`);
  }
  for (const p of ['/tmp/proj', '/home/u/proj', '/home/pod/x', '/srv/my project', '/workspace', '/root/p', '/var/tmp/x', '/opt/libfoo']) {
    assert.equal(hostPathError(p), null, p);
  }
  assert.match(hostPathError('/data/p', ['/data']) ?? '', /policy mounts/);
  assert.match(hostPathError('/data', ['/data/sets']) ?? '', /cover the pod's \/data\/sets/);
});

test('the refusal is one line naming the fix, and the command line refuses it too (fail closed)', () => {
  const r = rules({ workspaceAt: 'host' });
  const msg = workspaceAtRefusal(r, '/tmp') ?? '';
  assert.match(msg, /^workspace "\/tmp" cannot be mounted at its host path \(filesystem\.workspaceAt: host \/ --at-host-path\): /);
  assert.match(msg, /: \/tmp is the pod's own \(private\) \/tmp; .*\(move the project elsewhere, or use the default filesystem\.workspaceAt: \/workspace\)$/);
  assert.doesNotMatch(workspaceAtRefusal(r, '/srv/a\nb') ?? '', /\n/);
  assert.equal(workspaceAtRefusal(rules(), '/tmp'), null, 'the default mounts at /workspace whatever the host path');
  assert.throws(() => args(r, '/usr/share'), /cannot be mounted at its host path/);
});
