// Flagged paths: the tools that run code on open, and the workspace's own core.hooksPath.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { flagChanges, hooksDirOf } from './flags.js';
import type { Change } from './types.js';

const added = (path: string): Change => ({ path, kind: 'added', binary: false }) as Change;

test('config that runs code when a tool opens the folder is flagged', () => {
  const paths = [
    '.cargo/config.toml',
    'sub/.cargo/config',
    '.gemini/settings.json',
    'CLAUDE.local.md',
    '.githooks/pre-commit',
    '.zed/tasks.json',
    '.nvim.lua',
    '.exrc',
    '.mvn/jvm.config',
    'bunfig.toml',
    'pkg/bunfig.toml',
  ];
  const all = [...paths, 'src/main.rs', 'cargo.toml', 'notes.md'];
  const flags = flagChanges(all.map(added), (p) => all.includes(p));
  assert.deepEqual(
    flags.map((f) => f.path),
    [...paths].sort(),
  );
});

test("core.hooksPath of the workspace's own .git/config is read the way git reads it", () => {
  const ws = mkdtempSync(join(tmpdir(), 'flags-'));
  const cfg = (text: string) => writeFileSync(join(ws, '.git', 'config'), text);
  try {
    assert.equal(hooksDirOf(ws), undefined, 'no .git');
    mkdirSync(join(ws, '.git'));
    cfg('[core]\n\tbare = false\n');
    assert.equal(hooksDirOf(ws), undefined, 'not set');
    cfg('[core]\n\thooksPath = a\n[CORE]\n\tHOOKSPATH = "tools/my hooks" # last one wins\n');
    assert.equal(hooksDirOf(ws), 'tools/my hooks');
    cfg(`[core] hookspath = ${ws}/abs/hooks\n`);
    assert.equal(hooksDirOf(ws), 'abs/hooks', 'absolute inside the workspace');
    cfg('[core]\n\thooksPath = .\n');
    assert.equal(hooksDirOf(ws), '', 'the workspace root itself');
    cfg('[core]\n\thooksPath = ../outside\n[core]\n');
    assert.equal(hooksDirOf(ws), undefined, "outside the workspace is the user's own");
    cfg('[alias]\n\thooksPath = x\n');
    assert.equal(hooksDirOf(ws), undefined, 'other sections do not count');
    rmSync(join(ws, '.git'), { recursive: true });
    mkdirSync(join(ws, 'real'));
    writeFileSync(join(ws, 'real', 'config'), '[core]\n\thooksPath = h\n');
    symlinkSync('real', join(ws, '.git'));
    assert.equal(hooksDirOf(ws), 'h', 'a symlinked .git is followed, as git follows it');
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
});

test('everything under core.hooksPath is flagged loudly as a hook', () => {
  const flags = flagChanges(['hooks/pre-commit', 'hooks/sub/x', 'hooksy/file', 'src/a.ts'].map(added), () => true, 'hooks');
  assert.deepEqual(
    flags.map((f) => `${f.loud ? '!' : ''}${f.path}`),
    ['!hooks/pre-commit', '!hooks/sub/x'],
  );
  assert.match(flags[0].why, /core\.hooksPath/);
  assert.equal(flagChanges([added('a')], () => true, '').length, 1, 'hooksPath = . flags the root');
});
