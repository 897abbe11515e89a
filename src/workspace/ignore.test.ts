import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadChangeSet } from './changeset.js';
import { ignoreMatcher, NO_IGNORE, readIgnoreSources, reanchor, rootsText, writeIgnoredManifest } from './ignore.js';
import type { IgnoreSources } from './ignore.js';
import { takeManifest } from './manifest.js';
import { pathPredicate, selectChanges } from './select.js';
import { fixture, mkdir, put, writeList } from './testkit.js';
import type { Change } from './types.js';

const src = (files: Record<string, string>, policy: string[] = [], exclude?: string): IgnoreSources => ({
  version: 1,
  policy,
  exclude,
  gitignore: Object.entries(files).map(([dir, text]) => ({ dir, text })),
});

test('reanchor: unanchored patterns match at any depth below their file, anchored ones at its directory', () => {
  assert.equal(reanchor('foo', 'a'), 'a/**/foo');
  assert.equal(reanchor('/foo', 'a'), 'a/foo');
  assert.equal(reanchor('x/y', 'a'), 'a/x/y');
  assert.equal(reanchor('!keep/', 'a'), '!a/**/keep/');
  assert.equal(reanchor('# comment', 'a'), undefined);
  assert.equal(reanchor('trail   ', 'a'), 'a/**/trail');
  assert.equal(reanchor('x', 'we[ir]d*'), 'we\\[ir\\]d\\*/**/x');
});

test('git semantics: nesting, negation, directory-only, anchoring, **, case', () => {
  const m = ignoreMatcher(
    src({
      '': 'node_modules/\n*.log\n!keep.log\nbuild/\n/root-only\n**/tmp/**\nDocs\n',
      a: 'foo\n/bar\n!node_modules/\n',
      'we[ir]d': 'x\n',
    }),
  );
  assert.equal(m.ignores('node_modules', true), true);
  assert.equal(m.ignores('node_modules/pkg/index.js', false), true, 'below an ignored directory');
  assert.equal(m.ignores('x/y/node_modules', true), true);
  assert.equal(m.ignores('a/node_modules/z.js', false), false, 'a deeper .gitignore re-includes it');
  assert.equal(m.ignores('debug.log', false), true);
  assert.equal(m.ignores('sub/keep.log', false), false, 'negated');
  assert.equal(m.ignores('build', true), true);
  assert.equal(m.ignores('build', false), false, 'build/ names directories only');
  assert.equal(m.ignores('root-only', false), true);
  assert.equal(m.ignores('x/root-only', false), false, 'anchored at the root');
  assert.equal(m.ignores('p/tmp/q/r', false), true);
  assert.equal(m.ignores('docs', false), false, 'case-sensitive, as git on Linux');
  assert.equal(m.ignores('a/k/foo', false), true);
  assert.equal(m.ignores('b/foo', false), false, "a/.gitignore's rules stay under a/");
  assert.equal(m.ignores('a/bar', false), true);
  assert.equal(m.ignores('a/k/bar', false), false);
  assert.equal(m.ignores('we[ir]d/x', false), true);
  assert.equal(m.ignores('weid/x', false), false);
});

test('a file below an excluded directory cannot be re-included; the policy wins over .gitignore', () => {
  const m = ignoreMatcher(src({ '': 'out/\n!out/keep.txt\ndist/\n' }, ['!dist/', 'coverage/']));
  assert.equal(m.ignores('out/keep.txt', false), true, 'git: a parent directory excluded settles it');
  assert.equal(m.ignores('dist/app.js', false), false, 'policy !dist/ brings it back');
  assert.equal(m.ignores('coverage/lcov.info', false), true);
  assert.equal(ignoreMatcher(NO_IGNORE).empty, true);
  assert.equal(ignoreMatcher(src({}, [], 'secret-notes/\n')).ignores('secret-notes/a', false), true, '.git/info/exclude');
});

test('only the host .gitignore files of run start count: one the pod writes ("*") hides nothing', () => {
  const f = fixture();
  try {
    put(f.ws, '.gitignore', 'dist/\n');
    put(f.ws, 'src/a.ts', 'one\n');
    mkdir(f.ws, '.git/info');
    put(f.ws, '.git/info/exclude', 'local/\n');
    symlinkSync('/etc/passwd', join(f.ws, 'sub.gitignore-link'));
    mkdir(f.ws, 'sub');
    symlinkSync('../.gitignore', join(f.ws, 'sub/.gitignore'));
    const manifest = takeManifest(f.ws);
    const sources = readIgnoreSources(f.ws, manifest);
    assert.deepEqual(sources.gitignore, [{ dir: '', text: 'dist/\n' }], 'a symlinked .gitignore is not read (git does not follow it)');
    assert.equal(sources.exclude, 'local/\n');

    put(f.tree, '.gitignore', '*\n');
    put(f.tree, 'src/a.ts', 'two\n');
    put(f.tree, 'evil.sh', 'x\n');
    put(f.tree, 'dist/b.js', 'b\n');
    put(f.tree, 'local/n.txt', 'n\n');
    const loaded = loadChangeSet(f.cs, f.ws, manifest, { ignore: ignoreMatcher(sources) });
    assert.deepEqual(
      loaded.changes.map((c) => c.path),
      ['.gitignore', 'evil.sh', 'src/a.ts'],
    );
    assert.deepEqual(
      loaded.ignored.map((c) => c.path),
      ['dist', 'dist/b.js', 'local', 'local/n.txt'],
    );
    assert.deepEqual(loaded.ignoredRoots, ['dist/', 'local/']);
    const all = loadChangeSet(f.cs, f.ws, manifest, { ignore: ignoreMatcher(sources), includeIgnored: true });
    assert.equal(all.changes.length, 7);
  } finally {
    f.cleanup();
  }
});

test('ignore rules never hide flagged files, .gitignore itself or the directories they need', () => {
  const f = fixture();
  try {
    put(f.ws, '.gitignore', '.*\nnode_modules/\n*.md\n');
    const manifest = takeManifest(f.ws);
    put(f.tree, '.gitignore', '.*\n');
    put(f.tree, '.envrc', 'curl x | sh\n');
    put(f.tree, 'node_modules/pkg/.vscode/tasks.json', '{}\n');
    put(f.tree, 'node_modules/pkg/index.js', '1\n');
    put(f.tree, 'node_modules/pkg/CLAUDE.md', 'obey\n');
    put(f.tree, 'README.md', 'x\n');
    put(f.tree, '.gitattributes', '* filter=x\n');
    const loaded = loadChangeSet(f.cs, f.ws, manifest, { ignore: ignoreMatcher(readIgnoreSources(f.ws, manifest)) });
    // Flagged and git-read files stay reviewed at their place; inside an ignored ordinary
    // directory (node_modules/) no tool reads them there, so they go with their siblings.
    assert.deepEqual(
      loaded.changes.map((c) => c.path),
      ['.envrc', '.gitattributes', '.gitignore'],
    );
    assert.deepEqual(
      loaded.ignored.map((c) => c.path),
      [
        'README.md',
        'node_modules',
        'node_modules/pkg',
        'node_modules/pkg/.vscode',
        'node_modules/pkg/.vscode/tasks.json',
        'node_modules/pkg/CLAUDE.md',
        'node_modules/pkg/index.js',
      ],
    );
  } finally {
    f.cleanup();
  }
});

const ch = (path: string, kind: Change['kind'], t: 'f' | 'd' = 'f'): Change => {
  const info = { t, mode: 0o644, size: 0, mtimeMs: 0, ino: 0 };
  return { path, kind, binary: false, ...(kind !== 'added' ? { before: info } : {}), ...(kind !== 'deleted' ? { after: info } : {}) };
};

test('path filters: prefixes and globs select a path and what lies below it', () => {
  const p = pathPredicate(['src/', 'docs/*.md', '**/*.test.ts']);
  assert.equal(p('src'), true);
  assert.equal(p('src/a/b.ts'), true);
  assert.equal(p('srcx/a'), false);
  assert.equal(p('docs/x.md'), true);
  assert.equal(p('docs/sub/x.md'), false, '* stays within one name');
  assert.equal(p('lib/deep/a.test.ts'), true);
  assert.equal(pathPredicate(['./top.txt'])('top.txt'), true);
});

test('selectChanges: new parent directories come along; a directory deletion waits for what is below it', () => {
  const all = [ch('new', 'added', 'd'), ch('new/x.ts', 'added'), ch('old', 'deleted', 'd'), ch('old/a', 'deleted'), ch('old/b', 'deleted')];
  assert.deepEqual(
    selectChanges(all, (c) => c.path === 'new/x.ts').map((c) => c.path),
    ['new', 'new/x.ts'],
  );
  assert.deepEqual(
    selectChanges(all, (c) => c.path.startsWith('old/a') || c.path === 'old').map((c) => c.path),
    ['old/a'],
  );
  assert.deepEqual(
    selectChanges(all, (c) => c.path.startsWith('old')).map((c) => c.path),
    ['old', 'old/a', 'old/b'],
  );
});

test('an opaque directory is swept only when all of its changes are applied', async () => {
  const { planOf } = await import('./apply.js');
  const f = fixture();
  try {
    put(f.ws, 'd/old.txt', 'o\n');
    const manifest = takeManifest(f.ws);
    put(f.tree, 'd/new.txt', 'n\n');
    put(f.tree, 'd/node_modules/x.js', 'x\n');
    writeList(f.cs, 'opaque.lst', ['d']);
    const loaded = loadChangeSet(f.cs, f.ws, manifest, { ignore: ignoreMatcher(src({ '': 'node_modules/\n' })) });
    assert.ok(!planOf(loaded).some((s) => s.op === 'sweep'), 'a sweep would remove the ignored changes too');
    const all = loadChangeSet(f.cs, f.ws, manifest, { ignore: ignoreMatcher(src({ '': 'node_modules/\n' })), includeIgnored: true });
    assert.ok(planOf(all).some((s) => s.op === 'sweep'));
  } finally {
    f.cleanup();
  }
});

test('apply never removes ignored files by deleting the reviewed directory that holds them', async () => {
  const { applyChangeSet } = await import('./apply.js');
  const { existsSync } = await import('node:fs');
  const f = fixture();
  try {
    put(f.ws, 'pkg/index.js', 'i\n');
    put(f.ws, 'pkg/node_modules/x.js', 'x\n');
    const manifest = takeManifest(f.ws);
    writeList(f.cs, 'deleted.lst', ['pkg']);
    const ignore = ignoreMatcher(src({ '': 'node_modules/\n' }));
    const r = applyChangeSet(f.cs, f.ws, manifest, { ignore });
    assert.equal(existsSync(join(f.ws, 'pkg/index.js')), false);
    assert.equal(existsSync(join(f.ws, 'pkg/node_modules/x.js')), true, 'an ignored file went with its reviewed directory');
    assert.ok(r.remaining > 0);
  } finally {
    f.cleanup();
  }
});

test('the ignored manifest is written in batches: long names and many of them never make one string', () => {
  const long = 'd/'.repeat(1800);
  const changes = Array.from({ length: 3000 }, (_, i) => ({ path: `${long}f${i}`, kind: 'added' as const, bytes: 3, sha256: 'ab' }));
  const file = join(mkdtempSync(join(tmpdir(), 'ign-')), 'ignored.jsonl');
  let writes = 0;
  const sum = writeIgnoredManifest(file, changes as never, ['d/'], {
    batchBytes: 64 * 1024,
    onWrite: () => {
      writes++;
    },
  });
  const body = readFileSync(file, 'utf8');
  assert.equal(body.split('\n').length - 1, 3000);
  assert.equal(sum.sha256, createHash('sha256').update(body).digest('hex'));
  assert.equal(sum.count, 3000);
  assert.equal(sum.bytes, 9000);
  assert.ok(writes > 100, `written in ${writes} piece(s), not in batches`);
});

test('rootsText JSON-quotes a root with characters beyond [A-Za-z0-9._/@+-]', () => {
  assert.equal(rootsText(['node_modules/', '@scope/x+y-1.2/']), 'node_modules/, @scope/x+y-1.2/');
  assert.equal(rootsText(['a, b.log', 'ok; 1 B) x']), '"a, b.log", "ok; 1 B) x"');
  assert.equal(rootsText(['tab\there']), '"tab\\there"');
});

test('past the rule cap positive rules are dropped, negations kept (never more ignored)', () => {
  const text = ['a.log', ...Array.from({ length: 30 }, (_, i) => `f${i}`), 'b.log', '!a.log'].join('\n');
  const m = ignoreMatcher({ version: 1, gitignore: [{ dir: '', text }], policy: ['c.log'] }, { maxRules: 10 });
  assert.equal(m.ignores('b.log', false), false);
  assert.equal(m.ignores('a.log', false), false);
  assert.equal(m.ignores('f3', false), true);
  assert.equal(m.ignores('f20', false), false);
  assert.equal(m.ignores('c.log', false), true);
  assert.equal(m.rules, 34);
  assert.equal(m.used, 12);
});
