import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { walkEntries } from './manifest.js';
import { removeTree } from './remove.js';

/** A DEPTH-deep chain of "d" directories with a non-UTF-8 name at the bottom, made by relative
 *  steps in a child process (the path is longer than PATH_MAX). */
function deepTree(root: string, depth: number): void {
  const script = `const fs = require('node:fs'); for (let i = 0; i < ${depth}; i++) { fs.mkdirSync('d'); process.chdir('d'); }
    fs.writeFileSync(Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe]), 'x'); fs.mkdirSync('locked', 0); fs.symlinkSync('/', 'root-link');`;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

test('removes a 5000-deep tree with a non-UTF-8 name, an unreadable dir and a symlink, without recursion', () => {
  const base = mkdtempSync(join(tmpdir(), 'clawpod-rm-'));
  try {
    const victim = join(base, 'tree');
    mkdirSync(victim);
    deepTree(victim, 5000);
    // Node's own removal is recursive: this is the tree that broke every later command.
    assert.throws(() => rmSync(victim, { recursive: true, force: true }), /Maximum call stack|ENAMETOOLONG/);
    const t0 = Date.now();
    removeTree(victim);
    assert.ok(!existsSync(victim));
    assert.ok(Date.now() - t0 < 20_000, `${Date.now() - t0} ms`);
    assert.ok(existsSync('/etc/passwd'), 'the symlink was followed');
  } finally {
    spawnSync('rm', ['-rf', base]);
  }
});

test('a missing target is fine; a file or a symlink is unlinked, never followed', () => {
  const base = mkdtempSync(join(tmpdir(), 'clawpod-rm-'));
  try {
    removeTree(join(base, 'nothing'));
    writeFileSync(join(base, 'keep'), 'k');
    symlinkSync(join(base, 'keep'), join(base, 'ln'));
    removeTree(join(base, 'ln'));
    assert.ok(existsSync(join(base, 'keep')));
    mkdirSync(join(base, 'd/e'), { recursive: true });
    writeFileSync(join(base, 'd/e/f'), 'f');
    chmodSync(join(base, 'd/e'), 0);
    removeTree(join(base, 'd'));
    assert.deepEqual([...walkEntries(base).keys()], ['keep']);
  } finally {
    spawnSync('rm', ['-rf', base]);
  }
});
