// The disk stage when the HOST's disk is short (native/stage.c, src/pod/stage.ts): every pod's
// ext4 image is sparse, so pods only take host blocks as they write. A pod that would start with
// less host space than its disk cap gets the tmpfs stage instead (said on stderr, recorded as
// guard.degraded); a pod whose image could not be written back because the host filled up
// meanwhile (its pages then read back as zeros) has its change set refused, recorded as
// limit.hit host-disk. The host's disk here is a small ext4 mounted over the image directory in
// a private mount namespace (unshare -m), so the rest of the machine never sees it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { auditEvents, BIN, IS_ROOT, policyFile, tmpDir, workspace } from './helpers.js';

const skip = IS_ROOT && spawnSync('which', ['unshare', 'mkfs.ext4', 'fallocate']).status === 0 ? false : 'needs root, unshare, mkfs.ext4 and fallocate';
const IMAGE_DIR = '/run/clawpod/stage-images';

interface HostRun {
  code: number;
  stdout: string;
  stderr: string;
  home: string;
  runId: string;
  summary: Record<string, unknown>;
}

/** Runs `clawpod exec` with IMAGE_DIR on a fresh HOST_MIB ext4 (private mount namespace). With
 *  fillAt, the host's disk is filled from outside the pod FILL_AT seconds in, LEAVE_MIB left. */
function onSmallHost(o: { hostMiB: number; policy: string; script: string; fillAt?: number; leaveMiB?: number; ws?: string }): Promise<HostRun> {
  const t = tmpDir('hostdisk');
  const home = tmpDir('home');
  const fillBytes = `$(( $(stat -f -c '%a*%S' "$T/host") - ${o.leaveMiB ?? 4} * 1048576 ))`;
  const sh = [
    'set -e',
    `T=${t}`,
    `truncate -s ${o.hostMiB}M "$T/host.img"`,
    'mkfs.ext4 -q -F -m 0 -O ^has_journal "$T/host.img"',
    'mkdir -p "$T/host" && mount -o loop "$T/host.img" "$T/host" && mkdir -p "$T/host/images"',
    `mkdir -p ${IMAGE_DIR} && mount --bind "$T/host/images" ${IMAGE_DIR}`,
    o.fillAt === undefined ? ':' : `( sleep ${o.fillAt}; fallocate -l ${fillBytes} "$T/host/filler"; df -k "$T/host" | tail -1 >&2 ) &`,
    'set +e',
    '"$@"',
    'rc=$?',
    'wait',
    'exit $rc',
  ].join('\n');
  const argv = [process.execPath, BIN, 'exec', '--json', '--policy', o.policy, '--', 'sh', '-c', o.script];
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', sh, 'sh', ...argv], {
      cwd: o.ws ?? workspace({ 'a.txt': 'a\n' }),
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/root', CLAWPOD_HOME: home, CLAWPOD_PODINIT: process.env.CLAWPOD_PODINIT },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const runId = stderr.match(/clawpod: run (r-[\w-]+)/)?.[1];
      if (!runId) {
        reject(new Error(`no run (exit ${code}):\n${stderr}`));
        return;
      }
      const last =
        stderr
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .at(-1) ?? '{}';
      resolve({ code: code ?? 128, stdout, stderr, home, runId, summary: JSON.parse(last) as Record<string, unknown> });
    });
  });
}

const P256 = policyFile('version: 1\nresources:\n  disk: 256Mi\n');
const P256M64 = policyFile('version: 1\nresources:\n  disk: 256Mi\n  memory: 64Mi\n');

test('a pod the host has no room for gets the memory stage, says so in one line and records it', { skip }, async () => {
  const r = await onSmallHost({ hostMiB: 200, policy: P256, script: 'stat -f -c %T /tmp "$HOME"' });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['tmpfs', 'tmpfs'], 'the stage is a tmpfs');
  const lines = r.stderr.split('\n').filter((l) => /free for pod disks/.test(l));
  assert.equal(lines.length, 1, r.stderr);
  assert.match(
    lines[0],
    new RegExp(
      `^clawpod: only \\d+ MiB free for pod disks under ${IMAGE_DIR}; this pod's writable space is in memory \\(counts against resources.memory\\): free disk space or lower resources.disk$`,
    ),
  );
  const degraded = auditEvents(r.home, r.runId)
    .filter((e) => e.type === 'guard.degraded')
    .map((e) => e.data);
  assert.equal(degraded.length, 1, JSON.stringify(degraded));
  assert.equal(degraded[0].guard, 'disk stage');
  assert.equal(typeof degraded[0].freeBytes, 'number');
});

test('the same pod with room on the host gets its disk stage and no line', { skip }, async () => {
  const r = await onSmallHost({ hostMiB: 400, policy: P256, script: 'stat -f -c %T /tmp' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'ext2/ext3');
  assert.doesNotMatch(r.stderr, /free for pod disks/);
  assert.deepEqual(
    auditEvents(r.home, r.runId).filter((e) => e.type === 'guard.degraded'),
    [],
  );
});

const BIG = 'yes abcdefghijklmno | head -c 150M';
const bigSha = () => spawnSync('sh', ['-c', `${BIG} | sha256sum`], { encoding: 'utf8' }).stdout.split(' ')[0];

/** Every harvested file's sha256 under the run's change set. */
function harvested(home: string, runId: string): Record<string, string> {
  const tree = path.join(home, 'runs', runId, 'changes', 'tree');
  const out: Record<string, string> = {};
  if (!fs.existsSync(tree)) return out;
  for (const name of fs.readdirSync(tree)) {
    out[name] = spawnSync('sha256sum', [path.join(tree, name)], { encoding: 'utf8' }).stdout.split(' ')[0];
  }
  return out;
}

test('the host disk filling up during a pod: its change set is refused, never harvested corrupt', { skip }, async () => {
  // 64Mi of memory: the 150 MB file cannot stay in the page cache, so it is written back (and
  // fails, the host being full) while the pod runs; the harvest would read zeros back.
  const r = await onSmallHost({ hostMiB: 400, policy: P256M64, fillAt: 1.5, leaveMiB: 4, script: `sleep 3; ${BIG} > /workspace/big; echo rc=$?` });
  const got = harvested(r.home, r.runId);
  assert.deepEqual(
    r.summary.capsHit,
    ['host-disk'],
    `capsHit ${JSON.stringify(r.summary.capsHit)}; harvested ${JSON.stringify(got)} (want ${bigSha()})\n${r.stderr}`,
  );
  assert.deepEqual(got, {}, 'nothing was harvested');
  assert.equal(r.summary.filesChanged, 0);
  const lines = r.stderr.split('\n').filter((l) => /host's disk/.test(l));
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^clawpod: the pod's workspace changes were discarded: the host's disk filled up during the pod/);
  assert.doesNotMatch(r.stderr, /resources\.disk: 256Mi\)/, "not the pod's own disk cap");
  const hit = auditEvents(r.home, r.runId)
    .filter((e) => e.type === 'limit.hit')
    .map((e) => e.data);
  assert.equal(hit.length, 1, JSON.stringify(hit));
  assert.equal(hit[0].cap, 'host-disk');
  assert.equal(r.summary.status, 'done', 'the pod ended on its own terms');
});

test('control: the same pod with the host never full harvests the file whole', { skip }, async () => {
  const r = await onSmallHost({ hostMiB: 400, policy: P256M64, script: `${BIG} > /workspace/big` });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.summary.capsHit, []);
  assert.deepEqual(harvested(r.home, r.runId), { big: bigSha() });
});

test('a pod with no change set whose disk lost writes to a full host records limit.hit host-disk', { skip }, async () => {
  const ro = policyFile('version: 1\nresources:\n  disk: 256Mi\n  memory: 64Mi\nfilesystem: { workspace: ro }\n');
  const r = await onSmallHost({ hostMiB: 400, policy: ro, fillAt: 1.5, leaveMiB: 4, script: `sleep 3; ${BIG} > /tmp/big; sha256sum < /tmp/big` });
  assert.deepEqual(r.summary.capsHit, ['host-disk'], r.stderr);
  assert.match(
    r.stderr,
    /^clawpod: the host's disk filled up during the pod: what the pod wrote to its disk may have read back as zeros; free disk space under \/run\/clawpod\/stage-images, then run again$/m,
  );
});
