// Live pods: one pod, many commands (the agent's tool calls), each with its own timeout and
// output bound, state kept between calls, nothing left once the pod is closed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createBwrapBackend } from '../src/pod/bwrap.js';
import { LivePod } from '../src/pod/live.js';
import type { Rules } from '../src/policy/types.js';
import { eventually, residue, tmpDir, workspace } from './helpers.js';

const rules: Rules = {
  resources: { cpus: 1, memoryBytes: 256 << 20, pids: 128, timeoutMs: 60_000, diskBytes: 64 << 20 },
  workspace: 'overlay',
  mounts: [],
  network: { allow: [], deny: [], hosts: {} },
  secrets: [],
  env: {},
  tools: {},
  source: 'test',
};

let home: string;
let ws: string;
let live: LivePod;
const id = `r-live-${process.pid}`;

before(async () => {
  home = tmpDir('home');
  ws = workspace({ 'a.txt': 'a\n' });
  const backend = createBwrapBackend({ clawpodHome: home });
  live = await LivePod.start(backend, { id, rules, workspace: ws, changesDir: path.join(home, 'changes'), allowDegraded: false, stdio: 'pipe' }, () => {});
});
after(async () => {
  await live.close().catch(() => undefined);
});

test('commands run in the same pod: exit codes, both streams, state kept between calls', async () => {
  const a = await live.exec(['sh', '-c', 'echo out; echo err >&2; echo kept > /tmp/state; echo new > /workspace/new.txt; exit 3']);
  assert.equal(a.exitCode, 3);
  assert.equal(a.stdout.toString(), 'out\n');
  assert.equal(a.stderr.toString(), 'err\n');
  const b = await live.exec(['cat', '/tmp/state', '/workspace/new.txt', '/workspace/a.txt']);
  assert.equal(b.stdout.toString(), 'kept\nnew\na\n');
  assert.equal(fs.existsSync(path.join(ws, 'new.txt')), false, 'the host workspace is untouched');
});

test('a missing or non-executable command answers 127/126, not a failure of the pod', async () => {
  const missing = await live.exec(['no-such-command-here']);
  assert.equal(missing.exitCode, 127);
  assert.match(missing.stderr.toString(), /No such file/);
  const notExec = await live.exec(['/workspace/a.txt']);
  assert.equal(notExec.exitCode, 126);
});

test("a call's timeout kills its whole process group and the pod lives on", async () => {
  const r = await live.exec(['sh', '-c', 'sleep 60 & sleep 60'], { timeoutMs: 300 });
  assert.equal(r.exitCode, 124);
  assert.equal(r.timedOut, true);
  const ps = await live.exec(['sh', '-c', 'cat /proc/[0-9]*/comm']);
  assert.doesNotMatch(ps.stdout.toString(), /^sleep$/m, 'neither sleep is left over');
  const again = await live.exec(['true']);
  assert.equal(again.exitCode, 0);
});

test('output past the bound is dropped and flagged, and the command still completes', async () => {
  const r = await live.exec(['head', '-c', '5000000', '/dev/zero'], { maxOutput: 4096 });
  assert.equal(r.exitCode, 0);
  assert.equal(r.stdout.length, 4096);
  assert.equal(r.truncated, true);
});

test('concurrent calls are serialized and each gets its own answer', async () => {
  const rs = await Promise.all([1, 2, 3, 4, 5].map((n) => live.exec(['sh', '-c', `echo ${n}`])));
  assert.deepEqual(
    rs.map((r) => r.stdout.toString().trim()),
    ['1', '2', '3', '4', '5'],
  );
});

test('each call sees the CPU cap (the executor pins the call, not itself)', async () => {
  const r = await live.exec(['sh', '-c', 'nproc; grep Cpus_allowed_list /proc/self/status; grep Cpus_allowed_list /proc/1/status']);
  assert.equal(r.exitCode, 0, r.stderr.toString());
  const [nproc, call, init] = r.stdout.toString().trim().split('\n');
  assert.equal(nproc, '1');
  assert.match(call, /Cpus_allowed_list:\s+\d+$/);
  // The pod's own init (bwrap) is not pinned: only what the executor runs is.
  assert.notEqual(init, call);
});

test('closing ends the pod, saves its change set and leaves nothing behind', async () => {
  const outcome = await live.close();
  assert.equal(outcome.exitCode, 0);
  assert.ok(fs.existsSync(path.join(home, 'changes', 'tree', 'new.txt')));
  assert.ok(await eventually(() => residue(id, null).length === 0), residue(id, null).join('; '));
  await assert.rejects(live.exec(['true']), /ended/);
});
