import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { applyChangeSet } from './apply.js';
import { readChangeSet } from './changeset.js';
import { ChangeSetError, UnsafePathError, WorkspaceChangedError } from './errors.js';
import { takeManifest, walkEntries } from './manifest.js';
import { fixture, link, mkdir, put, writeList } from './testkit.js';
import type { Fixture } from './testkit.js';
import { ApplyHelperError, runPlan, type PlanStep } from './wshelper.js';

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const LATIN1_TARGET = Buffer.from([0x63, 0x61, 0x66, 0xe9]);
const perm = (abs: string) => lstatSync(abs).mode & 0o777;

/** Every entry with its content, so "nothing was touched" can be asserted exactly. */
function snapshot(dir: string): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [p, e] of walkEntries(dir)) out.set(p, { ...e, data: e.t === 'f' ? readFileSync(join(dir, p)).toString('hex') : undefined });
  return out;
}

/** A workspace and a change set touching it in most ways; the last path in order is z-last.txt. */
function richFixture(): Fixture & { manifest: ReturnType<typeof takeManifest> } {
  const f = fixture();
  put(f.ws, 'keep.txt', 'untouched\n');
  put(f.ws, 'edit.txt', 'old\n');
  put(f.ws, 'run.sh', 'echo\n');
  put(f.ws, 'gone.txt', 'bye\n');
  put(f.ws, 'gonedir/a', 'a');
  put(f.ws, 'gonedir/b/c', 'c');
  link(f.ws, 'ln', 'old-target');
  put(f.ws, 'z-last.txt', 'last\n');
  const manifest = takeManifest(f.ws);

  put(f.tree, 'edit.txt', 'new\ncontent\n');
  put(f.tree, 'all256.bin', ALL_BYTES);
  put(f.tree, 'nonl.txt', 'no trailing newline');
  put(f.tree, 'run.sh', 'echo\n', 0o755);
  put(f.tree, 'new/deep/tool', '#!/bin/sh\n', 0o755);
  mkdir(f.tree, 'new/deep', 0o750);
  mkdir(f.tree, 'new', 0o700);
  link(f.tree, 'ln', '../odd target\twith tab');
  link(f.tree, 'abs-link', '/nonexistent/outside');
  symlinkSync(LATIN1_TARGET, join(f.tree, 'latin1-link')); // not UTF-8: must survive as bytes
  put(f.tree, 'z-last.txt', 'last, edited\n');
  writeList(f.cs, 'deleted.lst', ['gone.txt', 'gonedir']);
  return { ...f, manifest };
}

test('apply is byte-exact: contents, modes, symlink targets, deletions, new dirs', () => {
  const f = richFixture();
  try {
    const expected = readChangeSet(f.cs, f.ws, f.manifest).length;
    const keepBefore = lstatSync(join(f.ws, 'keep.txt'));
    const r = applyChangeSet(f.cs, f.ws, f.manifest);
    assert.equal(r.applied, expected);
    assert.equal(r.remaining, 0);

    assert.deepEqual(readFileSync(join(f.ws, 'all256.bin')), ALL_BYTES);
    assert.deepEqual(readFileSync(join(f.ws, 'nonl.txt')), Buffer.from('no trailing newline'));
    assert.deepEqual(readFileSync(join(f.ws, 'edit.txt')), Buffer.from('new\ncontent\n'));
    assert.equal(perm(join(f.ws, 'run.sh')), 0o755);
    assert.equal(perm(join(f.ws, 'new/deep/tool')), 0o755);
    assert.equal(perm(join(f.ws, 'new/deep')), 0o750);
    assert.equal(perm(join(f.ws, 'new')), 0o700);
    assert.equal(readlinkSync(join(f.ws, 'ln')), '../odd target\twith tab');
    assert.equal(readlinkSync(join(f.ws, 'abs-link')), '/nonexistent/outside');
    assert.deepEqual(readlinkSync(join(f.ws, 'latin1-link'), { encoding: 'buffer' }), LATIN1_TARGET);
    for (const gone of ['gone.txt', 'gonedir']) assert.equal(lstatSync(join(f.ws, gone), { throwIfNoEntry: false }), undefined);
    const keepAfter = lstatSync(join(f.ws, 'keep.txt'));
    assert.equal(keepAfter.ino, keepBefore.ino);
    assert.equal(keepAfter.mtimeMs, keepBefore.mtimeMs);
    // The change set read against the result has nothing left to say, and no temp file stayed.
    assert.deepEqual(readChangeSet(f.cs, f.ws, takeManifest(f.ws)), []);
    assert.deepEqual(
      [...walkEntries(f.ws).keys()].filter((p) => p.includes('.clawpod-')),
      [],
    );
  } finally {
    f.cleanup();
  }
});

test('apply refuses, before any write, when a touched file changed since the manifest', () => {
  const f = richFixture();
  try {
    put(f.ws, 'z-last.txt', 'edited by the user meanwhile\n');
    const before = snapshot(f.ws);
    assert.throws(
      () => applyChangeSet(f.cs, f.ws, f.manifest, { runId: 'r-42' }),
      (e: unknown) => {
        assert.ok(e instanceof WorkspaceChangedError);
        assert.equal(e.path, 'z-last.txt');
        assert.equal(e.message, 'workspace changed since run started: z-last.txt was modified (review with clawpod runs diff r-42, then re-run; or discard)');
        return true;
      },
    );
    // Same entries, bytes, modes and mtimes (directories included: even a temp file would show).
    assert.deepEqual(snapshot(f.ws), before);

    assert.ok(applyChangeSet(f.cs, f.ws, f.manifest, { force: true }).applied > 0);
    assert.equal(readFileSync(join(f.ws, 'z-last.txt'), 'utf8'), 'last, edited\n');
  } finally {
    f.cleanup();
  }
});

test('apply names vanished files, mode changes, new files in deleted dirs, and new files at added paths', () => {
  const cases: [string, (f: Fixture) => void][] = [
    ['edit.txt was deleted', (f) => rmSync(join(f.ws, 'edit.txt'))],
    ['edit.txt changed mode', (f) => chmodSync(join(f.ws, 'edit.txt'), 0o600)],
    ['gonedir/b/new was created', (f) => put(f.ws, 'gonedir/b/new', 'user work')],
    ['nonl.txt was created', (f) => put(f.ws, 'nonl.txt', 'user work')],
    ['new was created', (f) => mkdir(f.ws, 'new')],
    ['ln was modified', (f) => (rmSync(join(f.ws, 'ln')), link(f.ws, 'ln', 'other'))],
  ];
  for (const [why, drift] of cases) {
    const f = richFixture();
    try {
      drift(f);
      const before = snapshot(f.ws);
      assert.throws(() => applyChangeSet(f.cs, f.ws, f.manifest), { name: 'WorkspaceChangedError', message: new RegExp(`: ${why} \\(`) });
      assert.deepEqual(snapshot(f.ws), before, why);
    } finally {
      f.cleanup();
    }
  }
});

test('apply refuses a parent directory replaced by a symlink pointing outside, even with force', () => {
  const f = fixture();
  try {
    put(f.ws, 'lib/x.txt', 'inside\n');
    put(f.ws, 'lib/y.txt', 'inside\n');
    const manifest = takeManifest(f.ws);
    put(f.tree, 'lib/x.txt', 'written by the pod\n');
    writeList(f.cs, 'deleted.lst', ['lib/y.txt']);
    // Meanwhile lib/ becomes a symlink to a directory outside the workspace.
    const outside = join(f.base, 'outside');
    put(outside, 'x.txt', 'outside original\n');
    put(outside, 'y.txt', 'outside original\n');
    rmSync(join(f.ws, 'lib'), { recursive: true });
    symlinkSync(outside, join(f.ws, 'lib'));
    const outsideBefore = snapshot(outside);
    for (const force of [false, true]) {
      assert.throws(
        () => applyChangeSet(f.cs, f.ws, manifest, { force }),
        (e: unknown) => {
          assert.ok(e instanceof UnsafePathError);
          assert.match(e.message, /^refusing to apply: lib in the workspace is a symlink/);
          assert.ok(!e.message.includes('\n'));
          return true;
        },
      );
      assert.deepEqual(snapshot(outside), outsideBefore);
    }
  } finally {
    f.cleanup();
  }
});

test('change sets naming ../escape (or other non-canonical paths) are rejected and nothing is applied', () => {
  for (const list of ['deleted.lst', 'opaque.lst'] as const) {
    const f = fixture();
    try {
      put(f.ws, 'a.txt', 'a\n');
      put(f.base, 'escape', 'victim\n');
      const manifest = takeManifest(f.ws);
      put(f.tree, 'a.txt', 'changed\n');
      writeList(f.cs, list, ['../escape']);
      const before = snapshot(f.ws);
      assert.throws(() => applyChangeSet(f.cs, f.ws, manifest), ChangeSetError);
      assert.equal(readFileSync(join(f.base, 'escape'), 'utf8'), 'victim\n');
      assert.deepEqual(snapshot(f.ws), before);
    } finally {
      f.cleanup();
    }
  }
});

test('opaque dirs are cleared of entries not in the tree (under force, also entries added later)', () => {
  for (const force of [false, true]) {
    const f = fixture();
    try {
      put(f.ws, 'out/keep.txt', 'k\n');
      put(f.ws, 'out/old.txt', 'o\n');
      put(f.ws, 'out/sub/nested.txt', 'n\n');
      const manifest = takeManifest(f.ws);
      put(f.tree, 'out/keep.txt', 'k\n');
      put(f.tree, 'out/fresh.txt', 'f\n');
      writeList(f.cs, 'opaque.lst', ['out']);
      if (force) {
        put(f.ws, 'out/sub/late.txt', 'added after the manifest\n');
        assert.throws(() => applyChangeSet(f.cs, f.ws, manifest), /out\/sub\/late.txt was created/);
      }
      applyChangeSet(f.cs, f.ws, manifest, { force });
      assert.deepEqual([...walkEntries(join(f.ws, 'out')).keys()], ['fresh.txt', 'keep.txt']);
    } finally {
      f.cleanup();
    }
  }
});

test('type changes apply: dir->file, file->symlink, symlink->dir; dir mode-only change', () => {
  const f = fixture();
  try {
    put(f.ws, 'd2f/inner', 'i');
    put(f.ws, 'f2l', 'f');
    mkdirSync(join(f.base, 'elsewhere'));
    link(f.ws, 'l2d', '../elsewhere');
    mkdir(f.ws, 'private', 0o755);
    const manifest = takeManifest(f.ws);
    put(f.tree, 'd2f', 'now a file\n');
    link(f.tree, 'f2l', 'd2f');
    put(f.tree, 'l2d/inside', 'real dir now\n');
    mkdir(f.tree, 'private', 0o700);
    applyChangeSet(f.cs, f.ws, manifest);
    assert.equal(readFileSync(join(f.ws, 'd2f'), 'utf8'), 'now a file\n');
    assert.equal(readlinkSync(join(f.ws, 'f2l')), 'd2f');
    assert.ok(lstatSync(join(f.ws, 'l2d')).isDirectory());
    assert.equal(readFileSync(join(f.ws, 'l2d/inside'), 'utf8'), 'real dir now\n');
    assert.deepEqual(readdirSync(join(f.base, 'elsewhere')), []); // the old link's target untouched
    assert.equal(perm(join(f.ws, 'private')), 0o700);
  } finally {
    f.cleanup();
  }
});

test('a workspace root reached through a symlink is resolved once and applied to', () => {
  const f = fixture();
  try {
    put(f.ws, 'a.txt', 'a\n');
    const manifest = takeManifest(f.ws);
    put(f.tree, 'a.txt', 'b\n');
    const alias = join(f.base, 'alias');
    symlinkSync(f.ws, alias);
    applyChangeSet(f.cs, alias, manifest);
    assert.equal(readFileSync(join(f.ws, 'a.txt'), 'utf8'), 'b\n');
    assert.ok(lstatSync(alias).isSymbolicLink());
  } finally {
    f.cleanup();
  }
});

test('a special file left by the pod is refused before anything is written', async () => {
  const f = fixture();
  // A unix socket: the special file a test can make without privileges or mkfifo.
  const server = createServer();
  try {
    put(f.ws, 'a.txt', 'a\n');
    const manifest = takeManifest(f.ws);
    put(f.tree, 'a.txt', 'b\n');
    await new Promise<void>((resolve) => server.listen(join(f.tree, 'sock'), resolve));
    assert.throws(() => applyChangeSet(f.cs, f.ws, manifest), /^ChangeSetError: cannot apply sock: the pod left a special file/);
    assert.equal(readFileSync(join(f.ws, 'a.txt'), 'utf8'), 'a\n');
  } finally {
    server.close();
    f.cleanup();
  }
});

// ---- the helper (native/wsapply.c) on its own: the guarantees that hold whatever the checks saw ----

const IS_ROOT = process.getuid?.() === 0;

/** Runs steps straight through the helper, as apply does after its checks. */
function helperFails(f: Fixture, steps: PlanStep[], force = false): string {
  try {
    runPlan(f.ws, f.tree, steps, force);
  } catch (e) {
    assert.ok(!(e as Error).message.includes('\n'));
    return (e as Error).message;
  }
  return 'no error';
}

for (const walk of [false, true]) {
  test(`the helper never writes, deletes or chmods through a symlinked parent (${walk ? 'O_NOFOLLOW walk' : 'openat2'})`, () => {
    const f = fixture();
    if (walk) process.env.CLAWPOD_WSAPPLY_WALK = '1';
    try {
      const outside = join(f.base, 'outside');
      put(outside, 'x.txt', 'outside original\n');
      mkdir(f.ws, 'real/sub');
      symlinkSync(outside, join(f.ws, 'real/sub/lib'));
      put(f.tree, 'real/sub/lib/x.txt', 'written by the pod\n');
      put(f.tree, 'real/sub/lib/new.txt', 'new\n');
      link(f.tree, 'real/sub/lib/l', 'target');
      const before = snapshot(outside);
      const steps: PlanStep[] = [
        { op: 'write', path: 'real/sub/lib/x.txt', mode: 0o644 },
        { op: 'write', path: 'real/sub/lib/new.txt', mode: 0o644 },
        { op: 'symlink', path: 'real/sub/lib/l' },
        { op: 'mkdir', path: 'real/sub/lib/d' },
        { op: 'rm', path: 'real/sub/lib/x.txt' },
        { op: 'sweep', path: 'real/sub/lib' },
        { op: 'chmod', path: 'real/sub/lib/x.txt', mode: 0o777, type: 'f' },
      ];
      for (const step of steps) {
        const msg = helperFails(f, [step], true);
        if (step.op === 'sweep')
          assert.equal(msg, 'no error'); // nothing to sweep there: skipped, untouched
        else assert.match(msg, /^refusing to apply: real\/sub\/lib in the workspace is a symlink, and clawpod never writes through it/, step.op);
      }
      assert.deepEqual(snapshot(outside), before);
      assert.equal(perm(outside), 0o755);
    } finally {
      delete process.env.CLAWPOD_WSAPPLY_WALK;
      f.cleanup();
    }
  });
}

test('the helper masks set-id bits, says how far it got, and leaves no temp file', () => {
  const f = fixture();
  try {
    put(f.tree, 'tool', '#!/bin/sh\n', 0o755);
    put(f.tree, 'nope/tool', 'x');
    mkdir(f.ws, 'gone');
    runPlan(f.ws, f.tree, [{ op: 'write', path: 'tool', mode: 0o6755 }], false);
    assert.equal(lstatSync(join(f.ws, 'tool')).mode & 0o7777, 0o755);
    // Without --force a parent that vanished is a stop, not silently recreated.
    const msg = helperFails(f, [
      { op: 'chmod', path: 'tool', mode: 0o700, type: 'f' },
      { op: 'write', path: 'nope/tool', mode: 0o644 },
    ]);
    assert.match(msg, /^refusing to apply: nope left the workspace while apply ran .*\[apply stopped after 1 of 2 steps/);
    assert.equal(perm(join(f.ws, 'tool')), 0o700);
    assert.match(helperFails(f, [{ op: 'chmod', path: 'gone', mode: 0o700, type: 'f' }]), /gone is no longer a file in the workspace/);
    assert.match(helperFails(f, [{ op: 'write', path: 'absent', mode: 0o644 }]), /^cannot apply absent: the change set's copy is missing/);
    assert.deepEqual(
      [...walkEntries(f.ws).keys()].filter((p) => p.includes('.clawpod-')),
      [],
    );
  } finally {
    f.cleanup();
  }
});

test('the helper removes a tree deeper than any recursion or PATH_MAX-bound walk would', () => {
  const f = fixture();
  try {
    // 1500 levels built one directory at a time from a descriptor-free relative cwd walk.
    let rel = 'deep';
    mkdirSync(join(f.ws, rel));
    for (let i = 0; i < 1500; i++) {
      rel += '/d';
      mkdirSync(join(f.ws, rel));
    }
    put(f.ws, rel + '/leaf', 'x');
    runPlan(f.ws, f.tree, [{ op: 'rm', path: 'deep' }], false);
    assert.equal(lstatSync(join(f.ws, 'deep'), { throwIfNoEntry: false }), undefined);
  } finally {
    f.cleanup();
  }
});

test('a missing helper fails closed before any write', () => {
  const f = richFixture();
  process.env.CLAWPOD_WSAPPLY = join(f.base, 'no-such-helper');
  try {
    const before = snapshot(f.ws);
    assert.throws(
      () => applyChangeSet(f.cs, f.ws, f.manifest),
      (e: unknown) => e instanceof ApplyHelperError && /is not built \(run npm run build\)$/.test(e.message),
    );
    assert.deepEqual(snapshot(f.ws), before);
  } finally {
    delete process.env.CLAWPOD_WSAPPLY;
    f.cleanup();
  }
});

test('as root, apply writes as the workspace owner: what the owner may not change, apply does not either', { skip: IS_ROOT ? false : 'needs root' }, () => {
  const f = fixture();
  try {
    chownSync(f.ws, 65534, 65534);
    mkdir(f.ws, 'rootdir'); // root's directory inside the owner's workspace, 0755
    put(f.ws, 'mine.txt', 'old\n');
    chownSync(join(f.ws, 'mine.txt'), 65534, 65534);
    const manifest = takeManifest(f.ws);
    put(f.tree, 'mine.txt', 'new\n');
    put(f.tree, 'rootdir/planted', 'x');
    assert.throws(
      () => applyChangeSet(f.cs, f.ws, manifest),
      /^UnsafePathError: cannot apply rootdir\/planted: the workspace owner \(uid 65534\) may not change it/,
    );
    assert.equal(lstatSync(join(f.ws, 'rootdir/planted'), { throwIfNoEntry: false }), undefined);
    const mine = lstatSync(join(f.ws, 'mine.txt'));
    assert.deepEqual([readFileSync(join(f.ws, 'mine.txt'), 'utf8'), mine.uid, mine.gid], ['new\n', 65534, 65534]);
  } finally {
    f.cleanup();
  }
});
