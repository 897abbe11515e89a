import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { podsWriting, processStartTime, type PodRecord } from './podstate.js';

function podsDir(records: Partial<PodRecord>[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-pods-'));
  records.forEach((r, i) => fs.writeFileSync(path.join(dir, `${r.id ?? i}.json`), JSON.stringify(r)));
  return dir;
}

const me = { ownerPid: process.pid, ownerStart: processStartTime(process.pid) ?? '?', uid: null, cgroupDirs: [] };

test('podsWriting: live pods whose rw workspace or rw mount overlaps the target, and only those', () => {
  const dead = spawnSync('true').pid;
  const dir = podsDir([
    { ...me, id: 'rw-same', workspace: '/w/proj', workspaceMode: 'rw' },
    { ...me, id: 'overlay', workspace: '/w/proj', workspaceMode: 'overlay' },
    { ...me, id: 'ro', workspace: '/w/proj', workspaceMode: 'ro' },
    { ...me, id: 'mount-parent', workspace: null, workspaceMode: 'none', rwMounts: ['/w'] },
    { ...me, id: 'mount-child', workspace: '/x', workspaceMode: 'overlay', rwMounts: ['/w/proj/sub'] },
    { ...me, id: 'mount-sibling', workspace: '/x', workspaceMode: 'rw', rwMounts: ['/w/project2', '/w/pro'] },
    { ...me, id: 'stale', ownerPid: dead, workspace: '/w/proj', workspaceMode: 'rw' },
    { ...me, id: 'recycled-pid', ownerStart: '1', workspace: '/w/proj', workspaceMode: 'rw' },
    { ...me, id: 'old-record' }, // written before records named what a pod writes
  ]);
  fs.writeFileSync(path.join(dir, 'half-written.json'), '{"id":');
  try {
    const ids = podsWriting([dir, path.join(dir, 'missing')], '/w/proj')
      .map((r) => r.id)
      .sort();
    assert.deepEqual(ids, ['mount-child', 'mount-parent', 'rw-same']);
    assert.deepEqual(podsWriting([dir], '/elsewhere'), []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
