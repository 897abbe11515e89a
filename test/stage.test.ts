// The stage (a pod's whole writable space: overlay upper, /tmp, home, /dev/shm) is on disk as
// root: a per-pod ext4 image on a loop device. The disk cap is then ENOSPC at its size, never a
// memory kill, the memory cap is for processes, and no loop device, image or mount outlives the
// pod, even when clawpod is SIGKILLed mid-pod. CLAWPOD_STAGE=tmpfs (and the pod API's
// forceTmpfsStage) keep the old memory-backed stage. Needs root (loop devices, cgroups).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { auditEvents, cli, eventually, IS_ROOT, policyFile, residue, podUidOf, tmpDir, workspace, type CliOptions } from './helpers.js';
import { createBwrapBackend } from '../src/pod/bwrap.js';
import type { PodSpec } from '../src/pod/types.js';
import type { Rules } from '../src/policy/types.js';

const skip = IS_ROOT ? false : 'needs root: loop devices and the privileged pod path';
const MiB = 1024 * 1024;
const DEFAULTS = policyFile('version: 1\n');
const DISK64 = policyFile('version: 1\nresources:\n  disk: 64Mi\n');

interface Summary {
  run: string;
  exitCode: number;
  status: string;
  limitHit: string | null;
}

async function exec(policy: string, script: string, opts: Partial<CliOptions> = {}) {
  const home = opts.home ?? tmpDir('home');
  const r = await cli(['exec', '--policy', policy, '--json', '--', 'sh', '-c', script], { timeoutMs: 120_000, ...opts, home });
  assert.ok(r.runId, `no run id (exit ${r.code}):\n${r.stderr}`);
  const summary = JSON.parse(r.stderr.trim().split('\n').at(-1) ?? '') as Summary;
  const hits = auditEvents(home, r.runId)
    .filter((e) => e.type === 'limit.hit')
    .map((e) => e.data);
  return { ...r, runId: r.runId, home, summary, hits };
}

/** Loop devices now attached to one of clawpod's stage images: "loopN@diskseq" -> backing file.
 *  diskseq grows on every attach, so a device reused by a later pod never looks like ours. */
function stageLoops(): Map<string, string> {
  const out = new Map<string, string>();
  for (const dev of fs.readdirSync('/sys/block').filter((d) => /^loop\d+$/.test(d))) {
    try {
      const backing = fs.readFileSync(`/sys/block/${dev}/loop/backing_file`, 'utf8').trim();
      const seq = fs.readFileSync(`/sys/block/${dev}/diskseq`, 'utf8').trim();
      if (backing.includes('/clawpod/')) out.set(`${dev}@${seq}`, backing);
    } catch {
      /* not attached */
    }
  }
  return out;
}

/** The stage mount of the run's prelude, seen from inside its own mount namespace. */
function stageMountOf(runId: string): { fstype: string; source: string } | null {
  for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes('clawpod-podinit') || !cmd.includes(runId)) continue;
      for (const line of fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n')) {
        const [pre, post] = line.split(' - ');
        if (pre?.split(' ')[4] !== '/run/clawpod/stage' || !post) continue;
        const [fstype, source] = post.split(' ');
        return { fstype, source };
      }
    } catch {
      /* exited */
    }
  }
  return null;
}

/** Files in the stage image directories that are not a finished template. */
function strayImages(): string[] {
  const stray: string[] = [];
  for (const dir of ['/run/clawpod/stage-images', '/var/lib/clawpod/stage-images']) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names) if (!/^ext4-v\d+-\d+-\d+\.img$/.test(n)) stray.push(path.join(dir, n));
  }
  return stray;
}

test('the stage is on disk: /tmp, home and /dev/shm are an ext4 image, not tmpfs', { skip }, async () => {
  const r = await exec(DEFAULTS, 'stat -f -c %T /tmp "$HOME" /dev/shm');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['ext2/ext3', 'ext2/ext3', 'ext2/ext3'], r.stdout);
});

test('control: CLAWPOD_STAGE=tmpfs keeps the memory-backed stage', { skip }, async () => {
  const r = await exec(DEFAULTS, 'stat -f -c %T /tmp', { env: { CLAWPOD_STAGE: 'tmpfs' } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'tmpfs');
});

for (const dir of ['/tmp', '/workspace']) {
  test(`700 MB written to ${dir} under the default 512Mi memory cap succeeds`, { skip }, async () => {
    const r = await exec(DEFAULTS, `head -c 700M /dev/zero > ${dir}/big && wc -c < ${dir}/big && rm ${dir}/big`, { cwd: workspace() });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), String(700 * MiB));
    assert.deepEqual(r.hits, [], 'no cap fired');
    assert.equal(r.summary.status, 'done');
  });
}

/** Fills DIR past the cap; head's own exit status is the pod's. */
const fill = (dir: string, size: string) => `head -c ${size} /dev/zero > ${dir}/fill; s=$?; wc -c < ${dir}/fill; exit $s`;

for (const [policy, disk, size, dir] of [
  [DISK64, 64 * MiB, '100M', '/tmp'],
  [DISK64, 64 * MiB, '100M', '/workspace'],
  [DEFAULTS, 1024 * MiB, '1200M', '/tmp'],
] as const) {
  test(`writing past a ${disk / MiB} MiB disk cap in ${dir} gets ENOSPC at about the cap; the pod is not killed`, { skip }, async () => {
    const r = await exec(policy, fill(dir, size));
    assert.match(r.stderr, /No space left on device/, 'the write itself failed with ENOSPC');
    assert.equal(r.code, 1, `head exited on its own with 1, the pod was not killed (${r.stderr})`);
    const written = Number(r.stdout.trim());
    assert.ok(written >= 0.9 * disk && written <= 1.1 * disk, `ENOSPC after ${written} bytes, cap ${disk}`);
    assert.deepEqual(r.hits, [{ cap: 'disk', limit: disk }], 'limit.hit disk recorded');
    assert.notEqual(r.summary.status, 'killed');
  });
}

/** Waits for the run's pod to be running and returns its stage loop device ("loopN@diskseq"). */
async function podLoop(child: ChildProcess): Promise<{ runId: string; loop: string | null; mount: { fstype: string; source: string } | null }> {
  let seen = '';
  const runId = await new Promise<string>((resolve) =>
    child.stderr?.on('data', (d) => {
      seen += d;
      const id = seen.match(/clawpod: run (r-[\w-]+)/)?.[1];
      if (id) resolve(id);
    }),
  );
  let mount: ReturnType<typeof stageMountOf> = null;
  await eventually(() => (mount = stageMountOf(runId)) !== null, 5000);
  const dev = mount ? (mount as { source: string }).source.replace('/dev/', '') : '';
  const loop = [...stageLoops().keys()].find((k) => k.startsWith(`${dev}@`)) ?? null;
  return { runId, loop, mount };
}

for (const kill of [false, true]) {
  test(kill ? 'clawpod SIGKILLed mid-pod leaves no loop device, image file or mount' : 'a pod leaves no loop device, image file or mount', {
    skip,
  }, async () => {
    const home = tmpDir('home');
    let seen: Promise<Awaited<ReturnType<typeof podLoop>>> | null = null;
    const script = `head -c 20M /dev/urandom > /tmp/x; echo w > /workspace/w; ${kill ? 'sleep 30' : 'sleep 1'}`;
    const r = await cli(['exec', '--policy', DEFAULTS, '--', 'sh', '-c', script], {
      home,
      cwd: workspace(),
      onSpawn: (child) => {
        seen = podLoop(child);
        if (kill) void seen.then(() => setTimeout(() => child.kill('SIGKILL'), 200));
      },
    });
    const pod = await seen!;
    assert.equal(pod.mount?.fstype, 'ext4', `the stage was an ext4 mount (got ${JSON.stringify(pod.mount)})`);
    assert.ok(pod.loop, `the stage's loop device was attached to a clawpod image (${[...stageLoops()].join(', ')})`);
    assert.equal(r.code, kill ? 137 : 0, r.stderr);
    const gone = () => !stageLoops().has(pod.loop!) && strayImages().length === 0;
    await eventually(gone, 5000);
    assert.ok(!stageLoops().has(pod.loop!), `loop device ${pod.loop} is still attached`);
    assert.deepEqual(strayImages(), [], 'only the templates are in the image directory');
    if (kill) await cli(['runs', 'list'], { home }); // the next clawpod reaps the rest
    const uid = podUidOf(home, pod.runId);
    await eventually(() => residue(pod.runId, uid).length === 0, 3000);
    assert.deepEqual(residue(pod.runId, uid), []);
  });
}

const rules: Rules = {
  resources: { cpus: 1, memoryBytes: 256 << 20, pids: 64, timeoutMs: 60_000, diskBytes: 64 << 20 },
  workspace: 'overlay',
  mounts: [],
  network: { allow: [], deny: [], hosts: {} },
  secrets: [],
  env: {},
  tools: {},
  source: 'test',
};

async function apiPod(backend: ReturnType<typeof createBwrapBackend>, id: string, ws: string, extra: Partial<PodSpec> = {}) {
  const pod = await backend.start(
    {
      id,
      rules,
      workspace: ws,
      command: ['sh', '-c', 'head -c 1M /dev/zero > /tmp/f && stat -f -c %T /tmp'],
      changesDir: null,
      allowDegraded: false,
      stdio: 'pipe',
      ...extra,
    },
    () => {},
  );
  let out = '';
  pod.stdout?.on('data', (d) => {
    out += d;
  });
  pod.stderr?.resume();
  const o = await pod.wait();
  return { code: o.exitCode, out: out.trim() };
}

test('50 concurrent pods each get their own disk stage; forceTmpfsStage keeps tmpfs', { skip }, async () => {
  const backend = createBwrapBackend({ clawpodHome: tmpDir('home') });
  const ws = workspace({ 'a.txt': 'a\n' });
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => apiPod(backend, `r-stage-${process.pid}-${i}`, ws)));
  assert.deepEqual(
    results.filter((r) => r.code !== 0 || r.out !== 'ext2/ext3'),
    [],
    'every pod ran on an ext4 stage',
  );
  const forced = await apiPod(backend, `r-stage-${process.pid}-tmpfs`, ws, { forceTmpfsStage: true } as Partial<PodSpec>);
  assert.deepEqual(forced, { code: 0, out: 'tmpfs' });
  await eventually(() => strayImages().length === 0, 3000);
  assert.deepEqual(strayImages(), []);
});

test('doctor says what backs the stage', { skip }, async () => {
  const home = tmpDir('home');
  const disk = await cli(['doctor'], { home });
  assert.match(disk.stdout, /disk cap\s+disk \(ext4 image\)/, disk.stdout);
  const mem = await cli(['doctor'], { home, env: { CLAWPOD_STAGE: 'tmpfs' } });
  assert.match(mem.stdout, /disk cap\s+memory \(tmpfs\): writable space counts as memory/, mem.stdout);
});

// A write ext4 cannot fit whole fails with ENOSPC while up to ~2 MiB stay free (mballoc keeps
// group preallocations): dd's 1 MiB and 4 MiB blocks ended with 0.8 and 1.9 MiB free.
for (const bs of ['1M', '4M']) {
  test(`dd bs=${bs} filling the disk cap records limit.hit disk`, { skip }, async () => {
    const r = await exec(DISK64, `dd if=/dev/zero of=/tmp/f bs=${bs}; stat -f -c 'bavail=%a' /tmp`);
    assert.match(r.stderr, /No space left on device/, 'dd met ENOSPC');
    assert.deepEqual(r.hits, [{ cap: 'disk', limit: 64 * MiB }], `limit.hit disk recorded (${r.stdout.trim()})`);
  });
}

const DISK256 = policyFile('version: 1\nresources:\n  disk: 256Mi\n');

test('a pod out of inodes records limit.hit disk (inodes) and its change set is harvested, not refused', { skip }, async () => {
  // 256Mi: mke2fs rounds the asked 65536 inodes up to 65568, more than the pod's overhead.
  const r = await exec(DISK256, 'mkdir /workspace/d && cd /workspace/d && seq 1 70000 | xargs touch 2>/dev/null; ls | wc -l', {
    cwd: workspace({ 'a.txt': 'a\n' }),
    timeoutMs: 300_000,
  });
  const made = Number(r.stdout.trim());
  assert.ok(made > 65000 && made < 70000, `the pod made ${made} files before the inodes ran out`);
  assert.deepEqual(r.hits, [{ cap: 'disk', limit: 256 * MiB, reason: 'inodes' }], r.stderr);
  assert.match(r.stderr, /the pod's disk ran out of inodes/);
  assert.doesNotMatch(r.stderr, /changes were discarded/, r.stderr);
  const tree = path.join(r.home, 'runs', r.runId, 'changes', 'tree', 'd');
  assert.equal(fs.readdirSync(tree).length, made, 'every file the pod made is in the change set');
});

const blkidUuid = (dev: string) => spawnSync('blkid', ['-p', '-s', 'UUID', '-o', 'value', dev], { encoding: 'utf8' }).stdout.trim();

test('every pod image has its own ext4 UUID (udev names disks by it)', { skip }, async () => {
  const uuids = await Promise.all(
    [0, 1].map(async () => {
      let uuid: Promise<string> = Promise.resolve('');
      await cli(['exec', '--policy', DEFAULTS, '--', 'sleep', '1.5'], {
        home: tmpDir('home'),
        onSpawn: (child) => {
          uuid = podLoop(child).then((p) => blkidUuid(p.mount?.source ?? ''));
        },
      });
      return uuid;
    }),
  );
  const templates = fs
    .readdirSync('/run/clawpod/stage-images')
    .filter((n) => /^ext4-v\d+-1073741824-/.test(n))
    .map((n) => blkidUuid(path.join('/run/clawpod/stage-images', n)));
  assert.ok(
    uuids.every((u) => /^[0-9a-f-]{36}$/.test(u)),
    JSON.stringify(uuids),
  );
  assert.notEqual(uuids[0], uuids[1], 'two pods, two UUIDs');
  assert.deepEqual(
    templates.filter((t) => uuids.includes(t)),
    [],
    "no pod has a template's UUID",
  );
});
