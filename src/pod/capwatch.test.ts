// The watch's decisions against fake cgroup files and a fake /proc: what is recorded, when the
// pod goes on, and exactly when a storm kills it. The real kernel is in test/caps-enforce.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Rules } from '../policy/types.js';
import type { PodCgroup } from './cgroups.js';
import { CapWatch, EVENTS_PER_CAP, MEMORY_STORM_KILLS, netlinkQueued, PIDS_STORM_MS } from './capwatch.js';
import type { OomKill, OomReports } from './kmsg.js';
import type { PodEvent } from './types.js';

const rules = { resources: { cpus: 1, memoryBytes: 512 << 20, pids: 64, timeoutMs: 600_000, diskBytes: 1 << 30 } } as Rules;

interface Proc {
  podPid: number | null;
  name: string;
  threads?: number;
  state?: string;
}

const roots: string[] = [];
after(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

function fakePod() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-capwatch-'));
  roots.push(root);
  const mem = path.join(root, 'memory/clawpod/r-x');
  const pids = path.join(root, 'pids/clawpod/r-x');
  const proc = path.join(root, 'proc');
  for (const d of [mem, pids, proc]) fs.mkdirSync(d, { recursive: true });
  const cg: PodCgroup = {
    layout: { mode: 'v1', parents: { memory: path.dirname(mem), pids: path.dirname(pids) }, missing: {} },
    dirs: [mem, pids],
    procsFiles: [],
    intoDir: null,
    enforced: ['memory', 'pids'],
  };
  const procs = new Map<number, Proc>();
  const sync = () => {
    const list = `${[...procs.keys()].join('\n')}\n`;
    fs.writeFileSync(path.join(mem, 'cgroup.procs'), list);
    fs.writeFileSync(path.join(pids, 'cgroup.procs'), list);
    for (const [pid, p] of procs) {
      const dir = path.join(proc, String(pid));
      fs.mkdirSync(dir, { recursive: true });
      const ns = p.podPid === null ? `${pid}` : `${pid}\t${p.podPid}`;
      fs.writeFileSync(
        path.join(dir, 'status'),
        `Name:\t${p.name}\nNSpid:\t${ns}\nThreads:\t${p.threads ?? 1}\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n`,
      );
      fs.writeFileSync(path.join(dir, 'comm'), `${p.name}\n`);
      fs.writeFileSync(path.join(dir, 'stat'), `${pid} (${p.name}) ${p.state ?? 'S'} 1 1 1 0 -1 4194560 0 0\n`);
    }
  };
  const kill = (pid: number) => {
    procs.delete(pid);
    fs.rmSync(path.join(proc, String(pid)), { recursive: true, force: true });
    sync();
  };
  const counters = (oom: number, refused: number) => {
    fs.writeFileSync(path.join(mem, 'memory.oom_control'), `oom_kill_disable 0\nunder_oom 0\noom_kill ${oom}\n`);
    fs.writeFileSync(path.join(pids, 'pids.events'), `max ${refused}\n`);
  };
  counters(0, 0);
  return { cg, proc, procs, sync, kill, counters };
}

function reports(list: OomKill[]): OomReports {
  return { take: () => list.splice(0), close: () => {} };
}

function watch(pod: ReturnType<typeof fakePod>, kmsg: OomReports | null, clock: { t: number }) {
  const events: PodEvent[] = [];
  const w = new CapWatch(pod.cg, { rules, egress: false, kmsg, emit: (e) => events.push(e), now: () => clock.t, procRoot: pod.proc });
  return { w, events, data: () => events.map((e) => e.data) };
}

/** A pod running: bwrap outside, its init, sh as the main process, a worker child. */
function running() {
  const pod = fakePod();
  pod.procs.set(100, { podPid: null, name: 'bwrap' });
  pod.procs.set(101, { podPid: 1, name: 'bwrap' });
  pod.procs.set(102, { podPid: 2, name: 'sh' });
  pod.procs.set(103, { podPid: 3, name: 'python3', threads: 60 });
  pod.sync();
  return pod;
}

test('a fork refused is recorded with who holds the tasks; the pod goes on', () => {
  const pod = running();
  const clock = { t: 0 };
  const { w, data } = watch(pod, null, clock);
  assert.equal(w.poll(), null);
  pod.counters(0, 3);
  clock.t = 100;
  assert.equal(w.poll(), null);
  assert.equal(data().length, 1);
  assert.equal(data()[0].cap, 'pids');
  assert.equal(data()[0].action, 'refused');
  assert.equal(data()[0].refused, 3);
  assert.equal(data()[0].key, 'resources.pids');
  assert.equal(data()[0].message, 'pids cap hit (resources.pids: 64): 3 forks refused; python3 (pid 3 in the pod) holds 60 of 64 tasks; the run went on');
  assert.equal(w.finish(0, false), null);
});

test('refusals with no pause of 1 s for 10 s are a storm; a pause starts the count again', () => {
  const pod = running();
  const clock = { t: 0 };
  const { w, data } = watch(pod, null, clock);
  let refused = 0;
  const step = (ms: number, more: boolean) => {
    clock.t += ms;
    if (more) pod.counters(0, ++refused);
    return w.poll();
  };
  assert.equal(step(100, true), null);
  for (let i = 0; i < 20; i++) assert.equal(step(400, true), null, `8 s of refusals (${clock.t} ms)`);
  // A 1.5 s pause: the episode ends; the next refusal starts a new one (a second event).
  assert.equal(step(1500, false), null);
  assert.equal(step(100, true), null);
  assert.equal(data().filter((d) => d.action === 'refused').length, 2);
  const start = clock.t;
  let fatal = null;
  while (fatal === null && clock.t - start < PIDS_STORM_MS + 1000) fatal = step(500, true);
  assert.equal(fatal, 'pids');
  assert.ok(clock.t - start >= PIDS_STORM_MS, `killed at ${clock.t - start} ms of refusals, not before ${PIDS_STORM_MS}`);
  const last = data().at(-1)!;
  assert.equal(last.action, 'pod killed');
  assert.equal(last.reason, 'storm');
  assert.match(String(last.message), /^pids cap hit \(resources\.pids: 64\): forks refused for 10 s without a pause \(\d+ refused; .*\); the pod was killed$/);
  assert.equal(w.poll(), null, 'reported once');
});

test('a child OOM-killed: recorded by name and pod pid, the pod goes on; the main one ends it', () => {
  const pod = running();
  const clock = { t: 0 };
  const list: OomKill[] = [];
  const { w, data } = watch(pod, reports(list), clock);
  w.poll();
  list.push({ pid: 103, task: 'python3', group: '/clawpod/r-x', uid: null, atUs: 0 });
  pod.counters(1, 0);
  pod.kill(103);
  clock.t = 100;
  assert.equal(w.poll(), null);
  assert.equal(data()[0].action, 'process killed');
  assert.deepEqual(data()[0].process, { name: 'python3', pid: 3, hostPid: 103 });
  assert.equal(data()[0].message, 'memory cap hit (resources.memory: 512Mi): the kernel killed python3 (pid 3 in the pod); the run went on');
  list.push({ pid: 102, task: 'sh', group: '/clawpod/r-x', uid: null, atUs: 0 });
  pod.counters(2, 0);
  clock.t = 200;
  assert.equal(w.poll(), 'memory');
  assert.equal(data()[1].reason, 'main process');
  assert.equal(data()[1].message, "memory cap hit (resources.memory: 512Mi): the kernel killed sh (pid 2 in the pod), the pod's main process; the run ended");
  assert.equal(w.finish(137, true), 'memory');
});

test('without the kernel\'s report: a dying main process ends the pod; otherwise "a process"', () => {
  const pod = running();
  const clock = { t: 0 };
  const { w, data } = watch(pod, null, clock);
  w.poll();
  pod.counters(1, 0);
  clock.t = 100;
  assert.equal(w.poll(), null);
  assert.match(String(data()[0].message), /the kernel killed a process; the run went on$/);
  pod.procs.set(102, { podPid: 2, name: 'sh', state: 'Z' });
  pod.sync();
  pod.counters(2, 0);
  clock.t = 200;
  assert.equal(w.poll(), 'memory');
  assert.equal(data()[1].reason, 'main process');
});

test("a kill seen only at the end: the pod's exit 137 means it took the main process", () => {
  for (const [raw, cap] of [
    [137, 'memory'],
    [0, null],
  ] as const) {
    const pod = fakePod();
    const list: OomKill[] = [{ pid: 500, task: 'node', group: '/clawpod/r-x', uid: null, atUs: 0 }];
    const { w, data } = watch(pod, reports(list), { t: 0 });
    pod.counters(1, 0);
    assert.equal(w.finish(raw, false), cap);
    assert.equal(data()[0].action, cap ? 'pod killed' : 'process killed');
    if (cap) assert.deepEqual(data()[0].process, { name: 'node', pid: 2, hostPid: 500 });
  }
});

test('more than 10 OOM kills within 60 s is a storm; as many spread out is not', () => {
  for (const spacing of [1000, 7000]) {
    const pod = running();
    const clock = { t: 0 };
    const { w, data } = watch(pod, null, clock);
    let fatal = null;
    for (let k = 1; k <= MEMORY_STORM_KILLS + 5 && fatal === null; k++) {
      clock.t += spacing;
      pod.counters(k, 0);
      fatal = w.poll();
    }
    if (spacing === 1000) {
      assert.equal(fatal, 'memory');
      assert.equal(data().at(-1)!.reason, 'storm');
      assert.match(String(data().at(-1)!.message), /: 11 processes OOM-killed within 10 s \(the last: a process\); the pod was killed$/);
    } else {
      assert.equal(fatal, null);
      w.finish(0, false);
      assert.equal(data().filter((d) => d.suppressed === undefined).length, EVENTS_PER_CAP, 'the rest are counted, not recorded one by one');
      assert.equal(data().at(-1)!.suppressed, 5);
    }
  }
});

test('a pod-chosen name reaches the message escaped', () => {
  const pod = running();
  const list: OomKill[] = [{ pid: 103, task: '\x1b]0;pwn\x07\u202e', group: '/clawpod/r-x', uid: null, atUs: 0 }];
  const { w, data } = watch(pod, reports(list), { t: 0 });
  w.poll();
  pod.counters(1, 0);
  w.poll();
  assert.equal(data()[0].message, 'memory cap hit (resources.memory: 512Mi): the kernel killed \\x1b]0;pwn\\x07\\u{202e} (pid 3 in the pod); the run went on');
  assert.doesNotMatch(String(data()[0].message), /[\x00-\x1f\u202e]/);
});

test('netlinkQueued sums the Rmem column of the pod netns netlink table; 0 when unreadable', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nlq-'));
  fs.mkdirSync(path.join(root, '42', 'net'), { recursive: true });
  fs.writeFileSync(
    path.join(root, '42', 'net', 'netlink'),
    [
      'sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode',
      '0000000087604597 0   0          00000000 1000     0        0     2        0        4',
      '00000000dcf9eed4 0   77         00000000 2345678  0        0     2        0        560',
      '',
    ].join('\n'),
  );
  assert.equal(netlinkQueued(42, root), 2346678);
  assert.equal(netlinkQueued(43, root), 0);
  fs.rmSync(root, { recursive: true, force: true });
});
