// The in-pod helpers (the live pod's executor, the egress forwarder) run as the pod's uid,
// like everything the pod runs. A same-uid process could open /proc/<helper>/mem, write code
// into the helper and make it speak the host protocol however it likes (here: a frame header
// announcing 4 GiB, then an endless stream), costing the host CPU and memory outside the
// pod's caps. The helpers are non-dumpable, so /proc/<helper>/{mem,environ,fd} are closed to
// the pod; an ordinary same-uid process is the control that the probe itself works.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createBwrapBackend } from '../src/pod/bwrap.js';
import { LivePod } from '../src/pod/live.js';
import type { Rules } from '../src/policy/types.js';
import { cli, IS_ROOT, policyFile, tmpDir, workspace } from './helpers.js';

const skip = IS_ROOT ? false : 'needs root: the privileged pod path';

const rules: Rules = {
  resources: { cpus: 1, memoryBytes: 256 << 20, pids: 128, timeoutMs: 120_000, diskBytes: 64 << 20 },
  workspace: 'overlay',
  mounts: [],
  network: { allow: [], deny: [], hosts: {} },
  secrets: [],
  env: {},
  tools: {},
  source: 'test',
};

// x86-64: write(1, "\xf0\xff\xff\xff", 4), then write(1, the stack's page, 4096) forever.
const SHELLCODE = '6af0b801000000bf010000004889e6ba040000000f05b801000000bf010000004889e64881e600f0ffffba001000000f05ebe3';

// Prints one line per probe of a target pid: NAME:ok or NAME:denied <errno>.
const PROBE = `
import os, sys
def probe(name, fn):
    try:
        fn(); print(name + ':ok')
    except OSError as e:
        print(name + ':denied ' + (os.strerror(e.errno) if e.errno else str(e)))
def pc_of(pid): return int(open('/proc/%d/syscall' % pid).read().split()[-1], 16)
def read_mem(pid):
    fd = os.open('/proc/%d/mem' % pid, os.O_RDONLY)
    try: os.pread(fd, 16, pc_of(pid))
    finally: os.close(fd)
def hijack(pid):
    fd = os.open('/proc/%d/mem' % pid, os.O_RDWR)
    try: os.pwrite(fd, bytes.fromhex('${SHELLCODE}'), pc_of(pid))
    finally: os.close(fd)
mode, tag, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
probe(tag + '-environ', lambda: open('/proc/%d/environ' % pid, 'rb').read())
probe(tag + '-fd', lambda: os.listdir('/proc/%d/fd' % pid))
probe(tag + '-mem', lambda: read_mem(pid))
if mode == 'hijack': probe(tag + '-hijack', lambda: hijack(pid))
`;

function outcomes(stdout: string): Record<string, string> {
  return Object.fromEntries([...stdout.matchAll(/^([\w-]+):(.*)$/gm)].map((m) => [m[1], m[2]]));
}

let home: string;
let live: LivePod;

before(async () => {
  if (skip) return;
  home = tmpDir('home');
  const backend = createBwrapBackend({ clawpodHome: home });
  const ws = workspace({ 'probe.py': PROBE });
  live = await LivePod.start(
    backend,
    {
      id: `r-hijack-${process.pid}`,
      rules,
      workspace: ws,
      changesDir: path.join(home, 'changes'),
      allowDegraded: false,
      stdio: 'pipe',
    },
    () => {},
  );
});
after(async () => {
  await live?.close().catch(() => undefined);
});

test('a same-uid sibling is readable through /proc (the control: the probe works in a pod)', { skip }, async () => {
  const r = await live.exec(['bash', '-c', 'sleep 30 & s=$!; sleep 0.2; python3 /workspace/probe.py read sibling $s; kill $s']);
  const o = outcomes(r.stdout.toString());
  assert.equal(o['sibling-mem'], 'ok', r.stdout.toString() + r.stderr.toString());
  assert.equal(o['sibling-environ'], 'ok');
});

test("the executor's memory cannot be read or written from the pod, and it still answers", { skip }, async () => {
  const rss0 = process.memoryUsage().rss;
  // bash's parent is the executor; the write (if it got through) lands at the instruction the
  // executor resumes when this command ends.
  const call = live.exec(['bash', '-c', 'python3 /workspace/probe.py hijack executor $PPID']);
  const timedOut = Symbol('timeout');
  const r = await Promise.race([call.catch((e: Error) => e), new Promise<symbol>((res) => setTimeout(() => res(timedOut), 8000))]);
  const grewMiB = Math.round((process.memoryUsage().rss - rss0) / 2 ** 20);
  if (r === timedOut) {
    live.pod.stop('test: hijacked executor');
    assert.fail(`the executor was hijacked: no answer in 8 s while clawpod's own memory grew ${grewMiB} MiB`);
  }
  assert.ok(!(r instanceof Error), `the call failed: ${String(r)}`);
  const res = r as Awaited<typeof call>;
  const o = outcomes(res.stdout.toString());
  assert.match(o['executor-mem'] ?? '', /^denied/, res.stdout.toString() + res.stderr.toString());
  assert.match(o['executor-hijack'] ?? '', /^denied/);
  assert.match(o['executor-environ'] ?? '', /^denied/);
  assert.match(o['executor-fd'] ?? '', /^denied/);
  const again = await live.exec(['echo', 'still here']);
  assert.equal(again.stdout.toString(), 'still here\n');
});

test("the egress forwarder's memory cannot be read or written from the pod", { skip }, async () => {
  const h = tmpDir('home');
  const ws = workspace({ 'probe.py': PROBE });
  const policy = policyFile('version: 1\nnetwork:\n  allow: ["svc.test:9"]\n  hosts: { svc.test: 127.0.0.1 }\n');
  // The forwarder is the command's parent; its comm names it, so the probe cannot hit bwrap.
  const r = await cli(
    [
      'exec',
      '--policy',
      policy,
      '--workspace',
      ws,
      '--',
      'bash',
      '-c',
      'echo "parent:$(cat /proc/$PPID/cmdline | tr "\\0" " ")"; python3 /workspace/probe.py hijack fwd $PPID; echo done:yes',
    ],
    { home: h, cwd: ws },
  );
  const o = outcomes(r.stdout);
  assert.match(o.parent ?? '', /\/run\/clawpod\/fwd /, r.stdout + r.stderr);
  assert.equal(o.done, 'yes', r.stdout + r.stderr);
  assert.equal(r.code, 0, r.stderr);
  for (const k of ['fwd-mem', 'fwd-hijack', 'fwd-environ', 'fwd-fd']) assert.match(o[k] ?? '', /^denied/, `${k}: ${r.stdout}`);
});

test("bwrap's init (pid 1, dumpable) does not hold the executor channel: hijacked, it can forge nothing", { skip }, async () => {
  // The channel rides on fd 6, which bwrap's init closes (it keeps only stdio): taking over the
  // pod's pid 1 through /proc/1/mem gains no way to speak the host protocol. (Before the move,
  // init held the channel as its stdio and a forged 4 GiB frame had to be caught by the host's
  // bound, which live.test.ts still checks with a fake pod.)
  const h = tmpDir('home');
  const ws = workspace({ 'probe.py': PROBE });
  const events: string[] = [];
  const pod = await LivePod.start(
    createBwrapBackend({ clawpodHome: h }),
    {
      id: `r-forge-${process.pid}`,
      rules,
      workspace: ws,
      changesDir: null,
      allowDegraded: false,
      stdio: 'pipe',
    },
    (e) => events.push(`${e.type}:${String(e.data.cap)}`),
  );
  try {
    // Beyond stdio, init keeps only bwrap's own eventfd (its sync with the monitor outside).
    const fds = await pod.exec(['sh', '-c', 'for f in /proc/1/fd/*; do echo "${f##*/} $(readlink $f)"; done']);
    const extra = fds.stdout
      .toString()
      .trim()
      .split('\n')
      .map((l) => l.split(' '))
      .filter(([n, t]) => Number(n) > 2 && t !== 'anon_inode:[eventfd]');
    assert.deepEqual(extra, [], `pid 1 holds: ${fds.stdout}`);
    // Its stdin and stdout are /dev/null (before the move they were the channel's sockets).
    const std = Object.fromEntries(
      fds.stdout
        .toString()
        .trim()
        .split('\n')
        .map((l) => l.split(' ')),
    );
    assert.deepEqual([std['0'], std['1']], ['/dev/null', '/dev/null'], fds.stdout.toString());
    const first = await pod.exec(['bash', '-c', 'python3 /workspace/probe.py hijack init 1; (sleep 1 &)']);
    assert.match(outcomes(first.stdout.toString())['init-hijack'] ?? '', /^ok/, `the forger is in place: ${first.stdout}${first.stderr}`);
    await new Promise((r) => setTimeout(r, 1500));
    const second = await pod.exec(['echo', 'still-mine']);
    assert.equal(second.stdout.toString(), 'still-mine\n', "the channel still carries only the executor's answers");
    assert.deepEqual(
      events.filter((e) => e.startsWith('limit.hit')),
      [],
    );
  } finally {
    await pod.close().catch(() => undefined);
  }
});
