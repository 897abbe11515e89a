// Caps a runtime can see: inside a pod, Node, V8, coreutils and Python size themselves from the
// pod's caps (its own cgroup, bound read-only in its cgroup namespace, and a CPU affinity of
// ceil(cpus) CPUs), and nothing of the host's cgroup tree (parents, siblings, other pods) shows.
// Needs root (cgroups under /sys/fs/cgroup).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cli, IS_ROOT, policyFile, ROOT, tmpDir } from './helpers.js';
import { detectCgroups } from '../src/pod/cgroups.js';

const skip = IS_ROOT ? false : 'needs root: cgroups are not delegated to this user';
const MiB = 1024 * 1024;
const HOST_CPUS = os.availableParallelism();
const layout = detectCgroups();
const V8_FLOOR = 272 * MiB;

const PROBE = String.raw`
echo "NPROC=$(nproc)"
node -e 'const v8 = require("v8"), os = require("os");
  console.log("NODE=" + JSON.stringify({ cm: process.constrainedMemory(), heap: v8.getHeapStatistics().heap_size_limit,
    par: os.availableParallelism() }))'
python3 -c 'import os, json; print("PY=" + json.dumps({"count": os.cpu_count(), "aff": sorted(os.sched_getaffinity(0))}))'
echo "CGROUP<<"; cat /proc/self/cgroup; echo ">>"
echo "SYS<<"; find /sys 2>&1 | sort; echo ">>"
echo "DIRS<<"; find /sys -mindepth 1 \( -type d -o -type l \) 2>&1 | sort; echo ">>"
echo "CGMOUNTS<<"; awk '$0 ~ / - cgroup2? / { print $4, $5, $6 }' /proc/self/mountinfo; echo ">>"
echo "ONLINE=$(cat /sys/devices/system/cpu/online)"
for f in /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max; do
  [ -e "$f" ] || continue
  echo "MEMFILE=$(cat $f)"
  echo 1 > "$f" 2>/dev/null && echo WRITE_OK
done
mkdir /sys/fs/cgroup/memory/x 2>/dev/null && echo MKDIR_OK
for f in /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max; do
  [ -e "$f" ] && (echo 1 > "$f") 2>&1 | grep -q 'Read-only file system' && echo "EROFS=yes"
done
mkdir /sys/fs/cgroup/x 2>/dev/null && echo MKDIR_OK
touch /sys/fs/cgroup/evil 2>/dev/null && echo TOUCH_OK
echo 0 > /sys/devices/system/cpu/online 2>/dev/null && echo WRITE_OK
echo "SELF=$$"
echo "PROCS<<"; cat /sys/fs/cgroup/memory/cgroup.procs /sys/fs/cgroup/cgroup.procs 2>/dev/null; echo ">>"
echo "NAMES<<"; grep -rsl -e clawpod -e "r-20" -e process_api /sys /proc/self/cgroup; echo ">>"
`;

interface Seen {
  nproc: number;
  node: { cm: number; heap: number; par: number };
  py: { count: number; aff: number[] };
  cgroup: string[];
  sys: string[];
  dirs: string[];
  cgMounts: string[];
  online: string;
  memFile: string;
  writes: boolean;
  self: number;
  procs: number[];
  names: string[];
  stdout: string;
}

const block = (out: string, name: string) => (out.match(new RegExp(`^${name}<<\\n([\\s\\S]*?)^>>$`, 'm'))?.[1] ?? '').split('\n').filter(Boolean);
const field = (out: string, name: string) => out.match(new RegExp(`^${name}=(.*)$`, 'm'))?.[1] ?? '';

function parse(stdout: string): Seen {
  return {
    nproc: Number(field(stdout, 'NPROC')),
    node: JSON.parse(field(stdout, 'NODE') || '{}'),
    py: JSON.parse(field(stdout, 'PY') || '{}'),
    cgroup: block(stdout, 'CGROUP'),
    sys: block(stdout, 'SYS'),
    dirs: block(stdout, 'DIRS'),
    cgMounts: block(stdout, 'CGMOUNTS'),
    online: field(stdout, 'ONLINE'),
    memFile: field(stdout, 'MEMFILE'),
    writes: /WRITE_OK|MKDIR_OK|TOUCH_OK/.test(stdout),
    self: Number(field(stdout, 'SELF')),
    procs: block(stdout, 'PROCS').map(Number),
    names: block(stdout, 'NAMES'),
    stdout,
  };
}

async function probe(policy: string | null): Promise<Seen> {
  const r = await cli(['exec', ...(policy ? ['--policy', policy] : []), '--', 'bash', '-c', PROBE], { home: tmpDir('home') });
  assert.equal(r.code, 0, r.stderr);
  return parse(r.stdout);
}

const caps = (memory: string, cpus: number) => policyFile(`version: 1\nresources:\n  memory: ${memory}\n  cpus: ${cpus}\n`);

/** The host's own V8 heap limit for the same node binary: what the pod got before. */
function hostHeap(): number {
  const r = spawnSync('node', ['-p', 'require("v8").getHeapStatistics().heap_size_limit'], { encoding: 'utf8' });
  return Number(r.stdout.trim());
}

/** Files (not subgroups) of a non-root group of this controller: what the pod's own group has. */
function groupFiles(controllerDir: string): string[] {
  return fs
    .readdirSync(path.join(controllerDir, 'clawpod'), { withFileTypes: true })
    .filter((d) => !d.isDirectory())
    .map((d) => d.name)
    .sort();
}

function assertSees(s: Seen, memoryBytes: number, cpus: number): void {
  const want = Math.min(Math.ceil(cpus), HOST_CPUS);
  assert.equal(s.node.cm, memoryBytes, `process.constrainedMemory() is the cap:\n${s.stdout}`);
  // V8 never sizes its heap under its floor (256 MiB old space + young space on 64-bit): under
  // smaller caps the floor is what the pod gets (the README says to set --max-old-space-size).
  if (memoryBytes > V8_FLOOR) assert.ok(s.node.heap < memoryBytes, `V8's heap limit ${s.node.heap} is below the ${memoryBytes} cap`);
  else assert.ok(s.node.heap <= V8_FLOOR, `V8's heap limit ${s.node.heap} is its floor under a ${memoryBytes} cap`);
  const host = hostHeap();
  assert.ok(host > 0 && s.node.heap < host / 2, `V8's heap limit ${s.node.heap} is far below the host's ${host}`);
  assert.equal(s.nproc, want, 'nproc');
  assert.equal(s.node.par, want, 'os.availableParallelism()');
  assert.equal(s.py.count, want, 'python os.cpu_count()');
  assert.equal(s.py.aff.length, want, 'len(os.sched_getaffinity(0))');
  assert.equal(s.online, listOf(s.py.aff), '/sys/devices/system/cpu/online names the CPUs the pod may use');
  assert.deepEqual(
    s.cgroup.filter((l) => !l.endsWith(':/')),
    [],
    `/proc/self/cgroup shows only "/" paths:\n${s.cgroup.join('\n')}`,
  );
  assert.deepEqual(
    s.cgMounts.filter((l) => l.split(' ')[0] !== '/'),
    [],
    `cgroup mounts show only their own root:\n${s.cgMounts.join('\n')}`,
  );
  assert.ok(
    s.cgMounts.every((l) => /^\/ \S+ ro,/.test(l)),
    `every cgroup mount is read-only:\n${s.cgMounts.join('\n')}`,
  );
  assert.equal(s.writes, false, `a write to the pod's cgroup files or the cpu file fails:\n${s.stdout}`);
  assert.equal(field(s.stdout, 'EROFS'), 'yes', 'the cgroup mount itself refuses writes (not only file modes)');
  assert.deepEqual(s.names, [], 'nothing under /sys names clawpod, a run or a host group');
  assert.ok(s.procs.includes(s.self) && s.procs.every((p) => p > 0), `cgroup.procs lists the pod's own processes: ${s.procs.join(' ')}`);
  if (layout.mode === 'v1') {
    assert.equal(Number(s.memFile), memoryBytes, "memory.limit_in_bytes is the pod's cap");
    const mounts = ['memory', 'cpu', 'pids'].map((c) => path.basename(fs.realpathSync(path.join('/sys/fs/cgroup', c))));
    const links = ['memory', 'cpu', 'pids'].filter((c) => !mounts.includes(c)).map((c) => `/sys/fs/cgroup/${c}`);
    const expectDirs = [
      '/sys/devices',
      '/sys/devices/system',
      '/sys/devices/system/cpu',
      '/sys/fs',
      '/sys/fs/cgroup',
      ...mounts.map((m) => `/sys/fs/cgroup/${m}`),
      ...links,
    ].sort();
    assert.deepEqual(s.dirs, expectDirs, "the only directories under /sys are the pod's own groups (no subgroup, no sibling)");
    for (const m of mounts) {
      const inPod = s.sys
        .filter((f) => f.startsWith(`/sys/fs/cgroup/${m}/`))
        .map((f) => f.slice(`/sys/fs/cgroup/${m}/`.length))
        .sort();
      assert.deepEqual(inPod, groupFiles(path.join('/sys/fs/cgroup', m)), `/sys/fs/cgroup/${m} holds one group's files`);
    }
  }
}

function listOf(ids: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < ids.length; i++) {
    let j = i;
    while (j + 1 < ids.length && ids[j + 1] === ids[j] + 1) j++;
    parts.push(i === j ? String(ids[i]) : `${ids[i]}-${ids[j]}`);
    i = j;
  }
  return parts.join(',');
}

test("default policy (512Mi, 1 CPU): Node, V8, nproc and Python see the caps, and only the pod's own cgroup", { skip }, async () => {
  assertSees(await probe(null), 512 * MiB, 1);
});

test('memory 256Mi and 1Gi, cpus 1: the runtimes follow the policy', { skip }, async () => {
  assertSees(await probe(caps('256Mi', 1)), 256 * MiB, 1);
  assertSees(await probe(caps('1Gi', 1)), 1024 * MiB, 1);
});

test('cpus 2 on a 2-CPU host: two CPUs; cpus 0.5: one', { skip: skip || (HOST_CPUS < 2 && 'needs 2 CPUs') }, async () => {
  assertSees(await probe(caps('512Mi', 2)), 512 * MiB, 2);
  assertSees(await probe(caps('512Mi', 0.5)), 512 * MiB, 0.5);
});

test("a running sibling pod is invisible: its run id appears nowhere under the probe pod's /sys", { skip }, async () => {
  const home = tmpDir('home');
  const sib = spawn(process.execPath, [path.join(ROOT, 'bin', 'clawpod'), 'exec', '--', 'sleep', '20'], {
    env: { PATH: process.env.PATH, CLAWPOD_HOME: home },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  sib.stderr!.on('data', (d) => {
    err += d;
  });
  try {
    for (let i = 0; i < 100 && !/run (r-\S+)/.test(err); i++) await new Promise((r) => setTimeout(r, 50));
    const id = err.match(/run (r-\S+)/)?.[1];
    assert.ok(id, `the sibling started: ${err}`);
    const r = await cli(['exec', '--', 'sh', '-c', `grep -rsl ${id} /sys /proc/self/cgroup /proc/self/mountinfo; find /sys -name '${id}*'; echo done`], {
      home: tmpDir('home'),
    });
    assert.equal(r.stdout, 'done\n', 'the sibling pod is nowhere in the probe pod');
  } finally {
    sib.kill('SIGTERM');
  }
});

test("concurrent pods are spread over the host's CPUs (the pinned CPU rotates per pod)", { skip: skip || (HOST_CPUS < 2 && 'needs 2 CPUs') }, async () => {
  const seen = new Set<string>();
  for (let i = 0; i < 8 && seen.size < 2; i++) {
    const r = await cli(['exec', '--', 'cat', '/sys/devices/system/cpu/online'], { home: tmpDir('home') });
    assert.equal(r.code, 0, r.stderr);
    seen.add(r.stdout.trim());
  }
  assert.equal(seen.size, 2, `1-CPU pods land on different CPUs: ${[...seen].join(' ')}`);
});
