// Results a person can review (issue 8, item 7): what the workspace's .gitignore (as it was when
// the run started) or the policy's filesystem.ignore names is kept apart (counted, summarised in
// one audit event, applied only on request); a pod-written .gitignore never hides anything;
// runs diff has --stat, --name-only and path filters; runs apply --only/--exclude; huge files.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { cli, policyFile, tmpDir, workspace } from './helpers.js';

let home: string;
before(() => {
  home = tmpDir('home');
});

async function podRun(ws: string, script: string, extra: string[] = []): Promise<string> {
  const r = await cli(['exec', ...extra, '--', 'bash', '-c', script], { home, cwd: ws, timeoutMs: 180_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.runId, r.stderr);
  return r.runId;
}

async function ok(args: string[]): Promise<string> {
  const r = await cli(args, { home, timeoutMs: 180_000 });
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function auditTypes(id: string): string[] {
  const lines = fs
    .readFileSync(path.join(home, 'runs', id, 'audit.jsonl'), 'utf8')
    .trim()
    .split('\n');
  return lines.map((l) => (JSON.parse(l) as { type: string }).type);
}

function auditEventsOf(id: string, type: string): Record<string, unknown>[] {
  const lines = fs
    .readFileSync(path.join(home, 'runs', id, 'audit.jsonl'), 'utf8')
    .trim()
    .split('\n');
  return lines
    .map((l) => JSON.parse(l) as { type: string; data: Record<string, unknown> })
    .filter((e) => e.type === type)
    .map((e) => e.data);
}

const NPM_LIKE = [
  'mkdir -p node_modules/pkg/lib src',
  'for i in $(seq 1 2000); do echo "module.exports = $i" > node_modules/pkg/lib/f$i.js; done',
  "printf 'export const a = 2;\\n' > src/a.ts",
].join(' && ');

test('ignored changes (node_modules/ in .gitignore) are counted, not shown, one audit event, not applied by default', async () => {
  const ws = workspace({ '.gitignore': 'node_modules/\n', 'src/a.ts': 'export const a = 1;\n' });
  const id = await podRun(ws, NPM_LIKE);
  const diff = await ok(['runs', 'diff', id]);
  assert.match(diff, /^diff --git a\/src\/a\.ts b\/src\/a\.ts$/m);
  assert.doesNotMatch(diff, /node_modules\/pkg\/lib\/f1\.js/);
  assert.match(diff, /clawpod: 2003 ignored changes \(node_modules\/; [\d.]+ [KMG]?i?B\) not shown: runs diff \S+ --include-ignored/);

  const stat = await ok(['runs', 'diff', id, '--stat']);
  assert.match(stat, /^ src\/a\.ts \| 2 \+-$/m);
  assert.match(stat, /^ 1 file changed, 1 insertion\(\+\), 1 deletion\(-\)$/m);
  assert.equal(await ok(['runs', 'diff', id, '--name-only']), 'src/a.ts\n');
  const all = await ok(['runs', 'diff', id, '--name-only', '--include-ignored']);
  assert.equal(all.split('\n').filter(Boolean).length, 1 + 2003);

  const types = auditTypes(id);
  assert.equal(types.filter((t) => t === 'file.write').length, 1, 'one file.write (src/a.ts), not 2000');
  const [ignored] = auditEventsOf(id, 'files.ignored');
  assert.ok(ignored, 'a files.ignored summary event');
  assert.equal(ignored.count, 2003);
  assert.match(String(ignored.sha256), /^[0-9a-f]{64}$/);

  const apply = await ok(['runs', 'apply', id]);
  assert.match(apply, /2003 ignored changes .*not applied/);
  assert.equal(fs.readFileSync(path.join(ws, 'src/a.ts'), 'utf8'), 'export const a = 2;\n');
  assert.equal(fs.existsSync(path.join(ws, 'node_modules')), false, 'ignored changes applied without being asked');
  const show = await ok(['runs', 'show', id]);
  assert.match(show, /2003 ignored/);
  const again = await ok(['runs', 'apply', id, '--include-ignored']);
  assert.match(again, /2003 ignored changes applied/);
  assert.equal(fs.readFileSync(path.join(ws, 'node_modules/pkg/lib/f7.js'), 'utf8'), 'module.exports = 7\n');
});

test('a pod writing "*" into .gitignore hides none of its changes', async () => {
  const ws = workspace({ '.gitignore': 'dist/\n', 'src/a.ts': 'one\n' });
  const id = await podRun(ws, "printf '*\\n' > .gitignore && printf 'two\\n' > src/a.ts && echo x > evil.sh && mkdir -p dist && echo b > dist/b.js");
  const names = await ok(['runs', 'diff', id, '--name-only']);
  assert.deepEqual(names.split('\n').filter(Boolean), ['.gitignore', 'evil.sh', 'src/a.ts']);
  const diff = await ok(['runs', 'diff', id]);
  assert.match(diff, /^\+\*$/m);
  assert.match(diff, /2 ignored changes \(dist\/;/);
});

test('ignore rules never hide a file that runs code or steers a tool (.envrc, .vscode/, CLAUDE.md)', async () => {
  const ws = workspace({ '.gitignore': '.envrc\n.vscode/\nbuild/\n*.md\n' });
  const id = await podRun(
    ws,
    'echo "curl x | sh" > .envrc && mkdir -p .vscode build/sub && echo {} > .vscode/tasks.json && ' +
      'echo obey > CLAUDE.md && echo obey > build/sub/CLAUDE.md && echo x > build/out.o && echo y > notes.md',
  );
  const names = (await ok(['runs', 'diff', id, '--name-only'])).split('\n').filter(Boolean);
  for (const p of ['.envrc', '.vscode/tasks.json', 'CLAUDE.md']) assert.ok(names.includes(p), `${p} hidden by ignore rules: ${names}`);
  assert.ok(!names.includes('build/out.o') && !names.includes('notes.md'), names.join(','));
  // Inside an ignored ordinary directory no tool reads it by its place: it is kept apart (and
  // never applied unless asked) like its siblings.
  assert.ok(!names.includes('build/sub/CLAUDE.md'), names.join(','));
  await ok(['runs', 'apply', id]);
  assert.ok(fs.existsSync(path.join(ws, '.envrc')) && !fs.existsSync(path.join(ws, 'build')));
});

test('policy filesystem.ignore keeps paths apart too; policy explain says so', async () => {
  const policy = policyFile('version: 1\nfilesystem:\n  ignore: ["coverage/", "*.log"]\n');
  const ws = workspace({ 'a.txt': 'a\n' });
  const id = await podRun(ws, 'mkdir -p coverage && echo c > coverage/lcov.info && echo l > npm-debug.log && echo b > a.txt', ['--policy', policy]);
  assert.equal(await ok(['runs', 'diff', id, '--name-only']), 'a.txt\n');
  const explain = await ok(['policy', 'explain', policy]);
  assert.match(explain, /coverage\//);
});

test('runs diff path filters; runs apply --only / --exclude apply exactly the named paths, the rest stays pending', async () => {
  const ws = workspace({ 'src/a.ts': '1\n', 'src/b.ts': '1\n', 'docs/x.md': '1\n', 'top.txt': '1\n' });
  const id = await podRun(ws, 'for f in src/a.ts src/b.ts docs/x.md top.txt; do echo 2 > $f; done; echo new > src/c.ts');
  assert.equal(await ok(['runs', 'diff', id, '--name-only', '--', 'src/']), 'src/a.ts\nsrc/b.ts\nsrc/c.ts\n');
  assert.equal(await ok(['runs', 'diff', id, '--name-only', 'src/*.ts', 'top.txt']), 'src/a.ts\nsrc/b.ts\nsrc/c.ts\ntop.txt\n');

  await ok(['runs', 'apply', id, '--only', 'src/a.ts,docs']);
  assert.equal(fs.readFileSync(path.join(ws, 'src/a.ts'), 'utf8'), '2\n');
  assert.equal(fs.readFileSync(path.join(ws, 'docs/x.md'), 'utf8'), '2\n');
  assert.equal(fs.readFileSync(path.join(ws, 'src/b.ts'), 'utf8'), '1\n');
  assert.equal(fs.existsSync(path.join(ws, 'src/c.ts')), false);
  assert.equal(await ok(['runs', 'diff', id, '--name-only']), 'src/b.ts\nsrc/c.ts\ntop.txt\n');
  assert.match(await ok(['runs', 'list']), new RegExp(`${id}.*pending`));

  await ok(['runs', 'apply', id, '--exclude', 'top.txt']);
  assert.equal(fs.readFileSync(path.join(ws, 'src/b.ts'), 'utf8'), '2\n');
  assert.equal(fs.readFileSync(path.join(ws, 'src/c.ts'), 'utf8'), 'new\n');
  assert.equal(fs.readFileSync(path.join(ws, 'top.txt'), 'utf8'), '1\n');
  await ok(['runs', 'apply', id]);
  assert.equal(fs.readFileSync(path.join(ws, 'top.txt'), 'utf8'), '2\n');
  assert.match(await ok(['runs', 'list']), new RegExp(`${id}.*applied`));
});

test('unknown runs options and filters that match nothing are one line with the fix', async () => {
  const ws = workspace({ 'a.txt': 'a\n' });
  const id = await podRun(ws, 'echo b > a.txt');
  const bad = await cli(['runs', 'diff', id, '--stats'], { home });
  assert.equal(bad.code, 125);
  assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  assert.match(bad.stderr, /--stats.*--stat/);
  const none = await cli(['runs', 'apply', id, '--only', 'nope/'], { home });
  assert.equal(none.code, 125);
  assert.match(none.stderr, /matches no change/);
});

test('a 200k-line file diff completes: summarised by default, shown with --full', async () => {
  const ws = workspace({});
  fs.writeFileSync(path.join(ws, 'big.txt'), Array.from({ length: 200_000 }, (_, i) => `line ${i}`).join('\n') + '\n');
  const id = await podRun(ws, "sed -i 's/^line \\([0-9]*7\\)$/LINE \\1/' big.txt && seq 1 200000 > new.txt");
  const diff = await ok(['runs', 'diff', id]);
  assert.match(diff, /big\.txt.*too large to show.*--full/);
  assert.ok(diff.length < 100_000, `default diff is ${diff.length} bytes`);
  const stat = await ok(['runs', 'diff', id, '--stat']);
  assert.match(stat, /^ new\.txt \| 200000 \++$/m);
  const full = await ok(['runs', 'diff', id, '--full']);
  assert.match(full, /^-line 17$/m);
  assert.match(full, /^\+LINE 199997$/m);
  assert.match(full, /^\+199999$/m);
});

// Hostile review 2 (F2): a path-filtered diff shows everything `apply --only` with the same paths
// writes (a file the pod replaced with a directory comes along), and apply names it.
test('a file the pod turned into a directory: the filtered diff shows it, apply --only names it', async () => {
  const ws = workspace({ notes: 'my notes\n' });
  const id = await podRun(ws, 'rm notes && mkdir notes && echo hi > notes/a.md');
  assert.equal(await ok(['runs', 'diff', id, '--name-only', 'notes/a.md']), 'notes/\nnotes/a.md\n');
  assert.match(await ok(['runs', 'diff', id, '--stat', 'notes/a.md']), /^ notes +\|/m);
  const diff = await ok(['runs', 'diff', id, 'notes/a.md']);
  assert.match(diff, /^diff --git a\/notes b\/notes$/m);
  assert.match(diff, /replaced a file\/symlink with a directory: notes\//);
  assert.doesNotMatch(diff, /replaced directory: notes\//);
  const apply = await ok(['runs', 'apply', id, '--only', 'notes/a.md']);
  assert.match(apply, /^clawpod: also applied 1 change beyond the named paths \(they need it\): notes\/$/m);
});

test('runs diff PATHS lists exactly what runs apply --only PATHS writes', async () => {
  const ws = workspace({ docs: 'user\n', 'src/a.ts': 'a\n', 'src/b.ts': 'b\n' });
  const id = await podRun(ws, 'rm docs && mkdir docs && echo x > docs/x.md && echo A > src/a.ts && echo B > src/b.ts');
  const listed = await ok(['runs', 'diff', id, '--name-only', 'docs/x.md', 'src/a.ts']);
  assert.equal(listed, 'docs/\ndocs/x.md\nsrc/a.ts\n');
  const apply = await ok(['runs', 'apply', id, '--only', 'docs/x.md,src/a.ts']);
  assert.match(apply, /3 change\(s\) written/);
  assert.match(apply, /also applied 1 change .*: docs\/$/m);
  assert.equal(await ok(['runs', 'diff', id, '--name-only']), 'src/b.ts\n');
});

// F6: a pod-chosen root name cannot read as clawpod's own words.
test('ignored root names with odd characters are JSON-quoted in the notes', async () => {
  const ws = workspace({ '.gitignore': '*.log\nbuild/\n' });
  const evil = 'ok; 1 B) not shown: nothing to see (all lockfiles.log';
  const id = await podRun(ws, `echo x > '${evil}' && echo y > 'a, b.log' && mkdir build && echo z > build/o && echo r > r.txt`);
  const diff = await ok(['runs', 'diff', id]);
  assert.match(diff, /ignored changes \("a, b\.log", build\/, "ok; 1 B\) not shown: nothing to see \(all lockfiles\.log"; /);
  const apply = await ok(['runs', 'apply', id]);
  assert.match(apply, /ignored changes \("a, b\.log", build\/, "ok; 1 B\) not shown: nothing to see \(all lockfiles\.log"; .*not applied/);
});

// F5: past the rule cap the extra rules are not used (more review, never less), said once.
test('a .gitignore past the rule cap: the extra rules are not used, one line says so', async () => {
  const filler = Array.from({ length: 25_000 }, (_, i) => `zz${i}/**/*.q${i}`);
  const ws = workspace({ '.gitignore': ['early.log', ...filler, 'late.log', '!early.log', ''].join('\n') });
  const r = await cli(['exec', '--', 'bash', '-c', 'echo 1 > early.log && echo 2 > late.log'], { home, cwd: ws, timeoutMs: 180_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /clawpod: the ignore rules hold 25003 rules; only the first 5000 are used/);
  const d = await cli(['runs', 'diff', r.runId as string, '--name-only'], { home });
  // late.log's rule is past the cap (reviewed); the negation past it still counts (early.log reviewed).
  assert.equal(d.stdout, 'early.log\nlate.log\n');
  assert.match(d.stderr, /only the first 5000 are used/);
});

// F3: discard drops the ignored changes' manifest and the rules kept with the run.
test('runs discard removes ignored.jsonl and ignore.json', async () => {
  const ws = workspace({ '.gitignore': 'out/\n' });
  const id = await podRun(ws, 'mkdir out && echo 1 > out/a && echo 2 > b');
  assert.ok(fs.existsSync(path.join(home, 'runs', id, 'ignored.jsonl')));
  await ok(['runs', 'discard', id]);
  assert.equal(fs.existsSync(path.join(home, 'runs', id, 'ignored.jsonl')), false);
  assert.equal(fs.existsSync(path.join(home, 'runs', id, 'ignore.json')), false);
});
