import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Rules } from '../policy/types.js';
import { buildBwrapArgs, EGRESS, PODTTY, type HostLayout, type PodArgvInput } from './bwrap-argv.js';
import { ptyArgv } from './tty.js';

const host: HostLayout = {
  bwrap: '/usr/bin/bwrap',
  podinit: '/opt/clawpod/build/clawpod-podinit',
  privileged: true,
  stage: '/run/clawpod/stage',
  usrLinks: {},
  etcBinds: [],
  etcDir: '/run/clawpod/etc',
  forwarder: '/run/clawpod/fwd',
  executor: '/run/clawpod/podexec',
  podtty: '/run/clawpod/podtty',
};
const rules: Rules = {
  resources: { cpus: 1, memoryBytes: 512 << 20, pids: 256, timeoutMs: 600_000, diskBytes: 1 << 30 },
  workspace: 'none',
  mounts: [],
  network: { allow: [], deny: [], hosts: {} },
  secrets: [],
  env: {},
  tools: {},
  source: 'test',
} as Rules;
const input = (over: Partial<PodArgvInput> = {}): PodArgvInput => ({
  rules,
  workspace: null,
  command: ['/usr/bin/bash', '-i'],
  changesDir: null,
  sourceIds: {},
  cgroupProcs: [],
  cgroupInto: null,
  identity: { uid: 1_800_000_001, gid: 1_800_000_001, ownerUid: 0, ownerGid: 0 },
  env: {},
  ...over,
});
const commandOf = (a: string[]) => a.slice(a.lastIndexOf('--') + 1);

test('a pod without a terminal keeps --new-session and starts its command directly', () => {
  const a = buildBwrapArgs(host, input());
  assert.ok(a.includes('--new-session'));
  assert.ok(!a.includes(PODTTY));
  assert.deepEqual(commandOf(a), ['/usr/bin/bash', '-i']);
});

test('a pod with its own terminal: no --new-session, the command starts behind podtty, every other guard stays', () => {
  const plain = buildBwrapArgs(host, input());
  const a = buildBwrapArgs(host, input({ tty: true }));
  assert.ok(!a.includes('--new-session'), 'job control needs the pty as controlling terminal');
  const bind = a.indexOf(PODTTY);
  assert.deepEqual(a.slice(bind - 2, bind + 1), ['--ro-bind', host.podtty, PODTTY]);
  assert.deepEqual(a.slice(a.indexOf('--') + 1), [PODTTY, '--', '/usr/bin/bash', '-i']);
  for (const f of ['--unshare-all', '--disable-userns', '--die-with-parent', '--clearenv', '--seccomp']) assert.ok(a.includes(f), f);
  assert.equal(a.length, plain.length - 1 + 3 + 2, 'only the session flag, the bind and the launcher differ');
});

test('with egress the forwarder stays the outer command and podtty is right before the command', () => {
  const a = buildBwrapArgs(host, input({ tty: true, egress: { socketPath: '/run/clawpod/egress/r.sock' } }));
  const cmd = a.slice(a.indexOf(EGRESS.forwarder, a.indexOf('--seccomp')));
  assert.deepEqual(cmd, [EGRESS.forwarder, String(EGRESS.port), EGRESS.socket, '--', PODTTY, '--', '/usr/bin/bash', '-i']);
});

test('a live pod never drops --new-session, whatever tty says', () => {
  const a = buildBwrapArgs(host, input({ tty: true, live: true }));
  assert.ok(a.includes('--new-session'));
  assert.ok(!a.includes(PODTTY));
});

test('a terminal pod needs the launcher built', () => {
  assert.throws(() => buildBwrapArgs({ ...host, podtty: undefined }, input({ tty: true })), /podtty/);
});

test('the pty helper gets a sane size, its control fd, then the prelude and its argv', () => {
  assert.deepEqual(ptyArgv('/b/clawpod-podinit', ['--stage', 's'], 9, { rows: 40, cols: 120 }), ['40', '120', '9', '--', '/b/clawpod-podinit', '--stage', 's']);
  assert.deepEqual(ptyArgv('/p', [], 7, { rows: 0, cols: 1e9 }).slice(0, 2), ['1', '65535']);
});
