import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadChangeSet } from './changeset.js';
import { takeManifest } from './manifest.js';
import { findPathRefs, pathRefApplyLine, pathRefLines, podRootOf, savePodRoot } from './pathrefs.js';
import { fixture, link, put } from './testkit.js';

function refsOf(setup: (f: ReturnType<typeof fixture>) => void, root = '/workspace') {
  const f = fixture();
  try {
    put(f.ws, 'same.txt', 'unchanged /workspace/x\n');
    put(f.ws, 'moded.sh', 'cd /workspace/bin\n', 0o644);
    const manifest = takeManifest(f.ws);
    setup(f);
    const loaded = loadChangeSet(f.cs, f.ws, manifest);
    return findPathRefs(loaded.changes, loaded.treeDir, root);
  } finally {
    f.cleanup();
  }
}

test('symlinks into /workspace and content naming it are found; look-alikes are not', () => {
  const found = refsOf((f) => {
    link(f.tree, 'abs', '/workspace/src/a.c');
    link(f.tree, 'root', '/workspace');
    link(f.tree, 'other', '/workspaces/a');
    link(f.tree, 'rel', '../workspace/a');
    put(f.tree, 'venv/bin/activate', 'VIRTUAL_ENV="/workspace/venv"\n');
    put(f.tree, 'url.txt', 'see file:///workspace/doc\n');
    put(f.tree, 'eol.txt', 'cd /workspace');
    put(f.tree, 'lib.la', Buffer.concat([Buffer.from([0, 1, 2]), Buffer.from("libdir='/workspace/lib'"), Buffer.from([0])]));
    put(f.tree, 'inside.txt', 'a path like /home/u/workspace/x or /workspaces/y or /workspace.old\n');
    put(f.tree, 'moded.sh', 'cd /workspace/bin\n', 0o755); // only its mode changed: the user's own text
  });
  assert.deepEqual(found.refs.map((r) => `${r.path}:${r.via}`).sort(), [
    'abs:symlink',
    'eol.txt:content',
    'lib.la:content',
    'root:symlink',
    'url.txt:content',
    'venv/bin/activate:content',
  ]);
  assert.equal(found.partial, false);
});

test('a match across read chunks is found, and each side of the boundary decides', () => {
  for (const at of [65536 - 10, 65536 - 5, 65536 - 1, 65536, 65536 + 1, 2 * 65536 - 3]) {
    const found = refsOf((f) => put(f.tree, 'big.txt', `${'x'.repeat(at - 1)} /workspace/y`));
    assert.equal(found.refs.length, 1, `at ${at}`);
    const glued = refsOf((f) => put(f.tree, 'big.txt', `${'x'.repeat(at)}/workspace/y`));
    assert.equal(glued.refs.length, 0, `glued at ${at}`);
    const longer = refsOf((f) => put(f.tree, 'big.txt', `${'x'.repeat(at - 1)} /workspaces`));
    assert.equal(longer.refs.length, 0, `longer at ${at}`);
  }
});

test('content past the per-file bound is not scanned', () => {
  const found = refsOf((f) => put(f.tree, 'huge.txt', Buffer.concat([Buffer.alloc(4 << 20, 0x61), Buffer.from(' /workspace/z')])));
  assert.equal(found.refs.length, 0);
});

test('another pod root (a host path) is searched the same way', () => {
  const found = refsOf((f) => put(f.tree, 'cfg', 'root=/srv/pod root/x\n'), '/srv/pod root');
  assert.deepEqual(
    found.refs.map((r) => r.path),
    ['cfg'],
  );
});

test('review and apply lines escape pod-chosen names and targets', () => {
  const found = refsOf((f) => {
    link(f.tree, 'evil\n+++ b/x\x1b[2J', '/workspace/\x1b]0;t\x07');
    put(f.tree, 'a.txt', '/workspace/\n');
    put(f.tree, 'b.txt', '/workspace/\n');
    put(f.tree, 'c.txt', '/workspace/\n');
  });
  const lines = pathRefLines(found);
  assert.equal(lines.length, 5);
  for (const l of lines) assert.doesNotMatch(l, /[\x00-\x1f\x7f]/);
  assert.match(lines[0], /^# clawpod: 4 changes point into \/workspace, .*filesystem\.workspaceAt: host/);
  assert.match(lines.join('\n'), /"evil\\n\+\+\+ b\/x\\033\[2J" \(symlink to "\/workspace\/\\033\]0;t\\007"\)/);
  const line = pathRefApplyLine(found) ?? '';
  assert.match(line, /^clawpod: 4 applied files point into \/workspace \(e\.g\. a\.txt, b\.txt, c\.txt, \.\.\.\); /);
  assert.match(line, /; rerun with filesystem\.workspaceAt: host to get host paths$/);
  assert.doesNotMatch(line, /[\x00-\x1f\x7f]/);
  assert.equal(pathRefApplyLine({ podRoot: '/workspace', refs: [], partial: false }), null);
});

test('the pod root is kept with the run; runs without it were at /workspace', () => {
  const f = fixture();
  try {
    assert.equal(podRootOf(f.base), '/workspace');
    savePodRoot(f.base, '/home/u/proj');
    assert.equal(podRootOf(f.base), '/home/u/proj');
  } finally {
    f.cleanup();
  }
});
