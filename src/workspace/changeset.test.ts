import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readChangeSet } from './changeset.js';
import { ChangeSetError } from './errors.js';
import { takeManifest } from './manifest.js';
import { fixture, link, mkdir, put, writeList } from './testkit.js';

const kinds = (cs: { path: string; kind: string }[]) => cs.map((c) => `${c.kind} ${c.path}`);

test('classifies added, modified, deleted, mode-only and unchanged entries', () => {
  const f = fixture();
  try {
    put(f.ws, 'a.txt', 'one\n');
    put(f.ws, 'run.sh', 'echo hi\n');
    put(f.ws, 'gone.txt', 'bye\n');
    put(f.ws, 'src/keep.ts', 'same\n');
    put(f.ws, 'src/edit.ts', 'old\n');
    const m = takeManifest(f.ws);

    put(f.tree, 'a.txt', 'one\ntwo\n');
    put(f.tree, 'run.sh', 'echo hi\n', 0o755);
    put(f.tree, 'src/keep.ts', 'same\n'); // copied up but identical: dropped
    put(f.tree, 'src/edit.ts', 'new\n');
    put(f.tree, 'src/lib/new.ts', 'x\n');
    link(f.tree, 'latest', 'a.txt');
    writeList(f.cs, 'deleted.lst', ['gone.txt', 'never-existed.txt']);

    const changes = readChangeSet(f.cs, f.ws, m);
    assert.deepEqual(kinds(changes), [
      'modified a.txt',
      'deleted gone.txt',
      'added latest',
      'mode run.sh',
      'modified src/edit.ts',
      'added src/lib', // new directory; src itself is only a parent
      'added src/lib/new.ts',
    ]);
    const a = changes[0];
    assert.equal(a.bytes, 8);
    assert.equal(a.sha256, createHash('sha256').update('one\ntwo\n').digest('hex'));
    assert.equal(a.insertions, 1);
    assert.equal(a.deletions, 0);
    assert.equal(a.before?.t, 'f');
    assert.equal(changes[2].after?.target, 'a.txt');
    assert.equal(changes[3].before?.mode, 0o644);
    assert.equal(changes[3].after?.mode, 0o755);
    assert.ok(changes.every((c) => !c.binary));
  } finally {
    f.cleanup();
  }
});

test('flags binary content on either side: NUL in the head, or invalid UTF-8', () => {
  const f = fixture();
  try {
    put(f.ws, 'was-latin1.txt', Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a])); // "café" in latin-1
    put(f.ws, 'text.txt', 'plain\n');
    put(f.ws, 'utf8.txt', 'caf\u00e9\n');
    const m = takeManifest(f.ws);
    put(f.tree, 'was-latin1.txt', 'cafe\n');
    put(f.tree, 'text.txt', Buffer.from('plain\n\0more\n'));
    put(f.tree, 'utf8.txt', 'caf\u00e9s\n');
    const byPath = new Map(readChangeSet(f.cs, f.ws, m).map((c) => [c.path, c]));
    assert.equal(byPath.get('was-latin1.txt')?.binary, true);
    assert.equal(byPath.get('text.txt')?.binary, true);
    assert.equal(byPath.get('utf8.txt')?.binary, false);
    assert.equal(byPath.get('text.txt')?.insertions, undefined);
  } finally {
    f.cleanup();
  }
});

test('type changes: file<->symlink<->dir, and a retyped dir loses its children', () => {
  const f = fixture();
  try {
    put(f.ws, 'f2l', 'x\n');
    link(f.ws, 'l2d', 'elsewhere');
    put(f.ws, 'd2f/inner.txt', 'i\n');
    put(f.ws, 'd2f/deep/more.txt', 'm\n');
    const m = takeManifest(f.ws);
    link(f.tree, 'f2l', 'target');
    put(f.tree, 'l2d/file', 'now a dir\n');
    put(f.tree, 'd2f', 'now a file\n');
    assert.deepEqual(kinds(readChangeSet(f.cs, f.ws, m)), [
      'type d2f',
      'deleted d2f/deep',
      'deleted d2f/deep/more.txt',
      'deleted d2f/inner.txt',
      'type f2l',
      'type l2d',
      'added l2d/file',
    ]);
  } finally {
    f.cleanup();
  }
});

test('an opaque dir deletes every workspace entry the tree lacks, recursively', () => {
  const f = fixture();
  try {
    put(f.ws, 'out/keep.txt', 'k\n');
    put(f.ws, 'out/old.txt', 'o\n');
    put(f.ws, 'out/sub/nested.txt', 'n\n');
    put(f.ws, 'out/sub/stays.txt', 's\n');
    put(f.ws, 'other/untouched.txt', 'u\n');
    const m = takeManifest(f.ws);
    put(f.tree, 'out/keep.txt', 'k\n');
    put(f.tree, 'out/sub/stays.txt', 's\n');
    put(f.tree, 'out/fresh.txt', 'f\n');
    mkdir(f.tree, 'other'); // a parent-only dir is merged, never opaque by itself
    writeList(f.cs, 'opaque.lst', ['out']);
    assert.deepEqual(kinds(readChangeSet(f.cs, f.ws, m)), ['added out/fresh.txt', 'deleted out/old.txt', 'deleted out/sub/nested.txt']);
  } finally {
    f.cleanup();
  }
});

test('a deleted directory deletes its whole recorded subtree', () => {
  const f = fixture();
  try {
    put(f.ws, 'build/a.o', Buffer.from([0, 1, 2]));
    put(f.ws, 'build/x/y.txt', 'y\n');
    put(f.ws, 'buildfile', 'not below build/\n');
    const m = takeManifest(f.ws);
    writeList(f.cs, 'deleted.lst', ['build']);
    const changes = readChangeSet(f.cs, f.ws, m);
    assert.deepEqual(kinds(changes), ['deleted build', 'deleted build/a.o', 'deleted build/x', 'deleted build/x/y.txt']);
    assert.equal(changes[1].binary, true);
    assert.equal(changes[3].deletions, 1);
  } finally {
    f.cleanup();
  }
});

test('directory mode changes are kind mode; unchanged parents are not changes', () => {
  const f = fixture();
  try {
    mkdir(f.ws, 'private', 0o755);
    mkdir(f.ws, 'pub', 0o755);
    const m = takeManifest(f.ws);
    mkdir(f.tree, 'private', 0o700);
    put(f.tree, 'pub/new.txt', 'n\n');
    mkdir(f.tree, 'pub', 0o755);
    assert.deepEqual(kinds(readChangeSet(f.cs, f.ws, m)), ['mode private', 'added pub/new.txt']);
  } finally {
    f.cleanup();
  }
});

test('rejects list entries that could leave the workspace or are not canonical', () => {
  for (const bad of ['../escape', '/etc/passwd', 'a/../../b', 'a//b', './a', 'a/.', 'a/']) {
    const f = fixture();
    try {
      put(f.ws, 'a', 'x');
      const m = takeManifest(f.ws);
      writeList(f.cs, bad.startsWith('a/.') ? 'opaque.lst' : 'deleted.lst', [bad]);
      assert.throws(() => readChangeSet(f.cs, f.ws, m), ChangeSetError, bad);
    } finally {
      f.cleanup();
    }
  }
});

test('an opaque entry that is not a directory in the tree is rejected', () => {
  const f = fixture();
  try {
    put(f.ws, 'd/x', 'x');
    const m = takeManifest(f.ws);
    writeList(f.cs, 'opaque.lst', ['d']);
    assert.throws(() => readChangeSet(f.cs, f.ws, m), /opaque directory d is not a directory/);
  } finally {
    f.cleanup();
  }
});

test('names that are not valid UTF-8 are refused, not silently dropped', () => {
  const f = fixture();
  try {
    const m = takeManifest(f.ws);
    writeFileSync(join(f.cs, 'deleted.lst'), Buffer.concat([Buffer.from('caf'), Buffer.from([0xe9, 0])]));
    assert.throws(() => readChangeSet(f.cs, f.ws, m), /deleted.lst names a path that is not valid UTF-8/);
    rmSync(join(f.cs, 'deleted.lst'));
    // A pod can create such a name in its tree; readdir could not hand it back intact.
    writeFileSync(Buffer.concat([Buffer.from(f.tree + '/caf'), Buffer.from([0xe9])]), 'x');
    assert.throws(() => readChangeSet(f.cs, f.ws, m), /its name is not valid UTF-8/);
  } finally {
    f.cleanup();
  }
});
