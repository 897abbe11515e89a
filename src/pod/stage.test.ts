import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { Rules } from '../policy/types.js';
import { buildPodinitArgv, type HostLayout } from './bwrap-argv.js';
import { probeStage, stageDetail, stageTemplate } from './stage.js';

const IS_ROOT = process.getuid?.() === 0;

const layout = (privileged: boolean): HostLayout => ({
  bwrap: '/usr/bin/bwrap',
  podinit: '/x/clawpod-podinit',
  privileged,
  stage: '/run/clawpod/stage',
  usrLinks: {},
  etcBinds: [],
  etcDir: '/run/clawpod/etc',
  forwarder: '/run/clawpod/fwd',
  executor: '/run/clawpod/podexec',
});

const rules = {
  resources: { cpus: 1, memoryBytes: 512 << 20, pids: 256, timeoutMs: 1000, diskBytes: 1 << 30 },
  workspace: 'none',
  mounts: [],
  network: { allow: [], deny: [], hosts: {} },
  secrets: [],
  env: {},
  tools: {},
  source: 'test',
} as unknown as Rules;

const argv = (privileged: boolean, stageImage: string | null) =>
  buildPodinitArgv(layout(privileged), {
    rules,
    workspace: null,
    command: ['true'],
    changesDir: null,
    cgroupProcs: [],
    cgroupInto: null,
    sourceIds: {},
    env: {},
    stageImage,
    identity: privileged ? { uid: 1_800_000_001, gid: 1_800_000_001, ownerUid: 0, ownerGid: 0 } : null,
  });

test('the prelude gets --stage-image only in privileged mode, and keeps the tmpfs options beside it', () => {
  const a = argv(true, '/run/clawpod/stage-images/ext4-v2-1-2.img');
  assert.deepEqual(a.slice(a.indexOf('--stage-image'), a.indexOf('--stage-image') + 2), ['--stage-image', '/run/clawpod/stage-images/ext4-v2-1-2.img']);
  assert.ok(a.includes('--stage-size') && a.includes('--stage-inodes'), 'the harvest caps still come from size and inodes');
  assert.ok(!argv(false, '/img').includes('--stage-image'), 'unprivileged pods keep tmpfs');
  assert.ok(!argv(true, null).includes('--stage-image'));
});

test('the stage is memory unless root, and CLAWPOD_STAGE=tmpfs forces it; doctor says so', () => {
  const unpriv = probeStage(false, '/tmp/x', {});
  assert.equal(unpriv.kind, 'memory');
  assert.match(stageDetail(unpriv), /^memory \(tmpfs\): writable space counts as memory \(unprivileged mode/);
  assert.deepEqual(probeStage(true, '/tmp/x', { CLAWPOD_STAGE: 'tmpfs' }), { kind: 'memory', why: 'CLAWPOD_STAGE=tmpfs' });
});

test('an image in a tmpfs state dir would be memory again: it goes to a disk directory', { skip: !IS_ROOT && 'needs root' }, () => {
  const b = probeStage(true, '/dev/shm/clawpod-state', {});
  if (b.kind === 'disk') assert.ok(!b.imageDir.startsWith('/dev/shm'), b.imageDir);
});

test('a template holds the disk cap (within 1%, never more) and is made once', { skip: !IS_ROOT && 'needs root: mke2fs' }, () => {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-stage-')), 'images');
  try {
    for (const disk of [1 << 20, 16 << 20, 100 << 20]) {
      const file = stageTemplate(dir, disk, Math.max(1024, disk / 4096));
      const out = spawnSync('/usr/sbin/dumpe2fs', ['-h', file], { encoding: 'utf8' }).stdout;
      const num = (k: string) => Number(out.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm'))?.[1]);
      const usable = (num('Free blocks') - Math.min(Math.floor(num('Block count') / 50), 4096)) * 4096;
      assert.ok(usable <= disk && usable > disk * 0.99 - (256 << 10), `usable ${usable} for a ${disk} cap`);
      assert.equal(num('Inode count') >= Math.max(1024, disk / 4096), true);
      // The stage's own dirs are made in the template, root's, with the prelude's modes.
      const ls = spawnSync('/usr/sbin/debugfs', ['-R', 'ls -l /', file], { encoding: 'utf8' }).stdout;
      const modes = Object.fromEntries([...ls.matchAll(/^\s*\d+\s+(\d+)\s+\(\d+\)\s+0\s+0\s+\d+\s+.*\s(\S+)\s*$/gm)].map((m) => [m[2], m[1]]));
      assert.deepEqual(
        { tmp: modes.tmp, home: modes.home, shm: modes.shm, work: modes.work, ws: modes.ws, upper: modes.upper },
        { tmp: '41777', home: '40700', shm: '41777', work: '40700', ws: '40755', upper: '40755' },
        ls,
      );
      const mtime = fs.statSync(file).mtimeMs;
      assert.equal(stageTemplate(dir, disk, Math.max(1024, disk / 4096)), file);
      assert.equal(fs.statSync(file).mtimeMs, mtime, 'reused, not made again');
    }
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    assert.deepEqual(
      fs.readdirSync(dir).filter((n) => !/^ext4-v\d+-\d+-\d+\.img$/.test(n)),
      [],
      'no temp file left',
    );
  } finally {
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  }
});

test('the prelude refuses --stage-image without privilege', { skip: !IS_ROOT && 'needs the built prelude as root' }, () => {
  const prelude = path.resolve('build/clawpod-podinit');
  const r = spawnSync(prelude, ['--userns', '--stage', '/tmp', '--stage-size', '1048576', '--stage-image', '/x/y.img', '--', '/bin/true'], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 125);
  assert.match(r.stderr, /--stage-image needs privileged mode/);
});
