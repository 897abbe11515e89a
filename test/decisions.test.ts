// Review decisions are evidence (issue 9, item 15): apply, discard and --force are recorded in
// a hash-chained log that audit verify checks; --force lists what it overwrote and keeps inert
// copies with the run; a workspace that moved on is one line, never "internal error".
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { cli, tmpDir, workspace } from './helpers.js';

async function podRun(home: string, ws: string, script: string): Promise<string> {
  const r = await cli(['exec', '--', 'sh', '-c', script], { home, cwd: ws, timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.runId, r.stderr);
  return r.runId;
}

const sha = (s: string | Buffer) => crypto.createHash('sha256').update(s).digest('hex');
// biome-ignore lint/suspicious/noExplicitAny: the log's JSON, read back to compare field by field
type Ev = { seq: number; type: string; data: Record<string, any>; prev: string; hash: string };
const decisions = (home: string): Ev[] =>
  fs
    .readFileSync(path.join(home, 'decisions.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
const devIno = (p: string) => {
  const st = fs.statSync(p, { bigint: true });
  return `${st.dev}:${st.ino}`;
};

test('apply and discard are recorded: paths with hashes, who, the workspace identity and a digest of its state', async () => {
  const home = tmpDir('home');
  const ws = workspace({ 'a.txt': 'a\n' });
  const id = await podRun(home, ws, 'echo A > a.txt; echo new > b.txt');
  const other = await podRun(home, ws, 'echo c > c.txt');
  const apply = await cli(['runs', 'apply', id], { home });
  assert.equal(apply.code, 0, apply.stderr);
  const discard = await cli(['runs', 'discard', other], { home });
  assert.equal(discard.code, 0, discard.stderr);
  const [a, d] = decisions(home);
  assert.equal(a.type, 'decision.apply');
  assert.equal(a.data.run, id);
  assert.equal(a.data.outcome, 'applied');
  assert.equal(a.data.force, false);
  assert.deepEqual(a.data.applied, [
    { path: 'a.txt', kind: 'modified', type: 'f', sha256: sha('A\n') },
    { path: 'b.txt', kind: 'added', type: 'f', sha256: sha('new\n') },
  ]);
  assert.deepEqual(a.data.by, { uid: process.getuid?.(), user: 'root' });
  assert.equal(a.data.workspace.path, fs.realpathSync(ws));
  assert.equal(a.data.workspace.id, devIno(ws));
  assert.equal(a.data.workspace.startedAs, devIno(ws));
  assert.match(a.data.stateBefore.digest, /^[0-9a-f]{64}$/);
  assert.equal(a.data.stateBefore.paths, 2);
  assert.equal(d.type, 'decision.discard');
  assert.equal(d.data.run, other);
  assert.deepEqual(d.data.discarded, [{ path: 'c.txt', kind: 'added', type: 'f', sha256: sha('c\n') }]);
  assert.equal(d.prev, a.hash, 'one chain');
  const show = await cli(['runs', 'show', id], { home });
  assert.match(show.stdout, /^decision: +#1 applied 2 change\(s\) by root \(uid 0\) at /m);
  const v = await cli(['audit', 'verify', id], { home });
  assert.equal(v.code, 0, v.stdout);
  assert.match(v.stdout, /^decisions: ok, 2 decisions, chain head [0-9a-f]{16}/m);
});

test('audit verify finds a changed decision and one cut from the end', async () => {
  const home = tmpDir('home');
  const ws = workspace({ 'a.txt': 'a\n' });
  const id = await podRun(home, ws, 'echo A > a.txt');
  await cli(['runs', 'apply', id], { home });
  const id2 = await podRun(home, ws, 'echo B > a.txt');
  await cli(['runs', 'discard', id2], { home });
  const file = path.join(home, 'decisions.jsonl');
  const good = fs.readFileSync(file, 'utf8');
  fs.writeFileSync(file, good.replace('"user":"root"', '"user":"alice"'));
  const changed = await cli(['audit', 'verify', id], { home });
  assert.equal(changed.code, 1);
  assert.match(changed.stdout, /^decisions: BROKEN at line 1: /m);
  fs.writeFileSync(file, `${good.trim().split('\n')[0]}\n`);
  const cut = await cli(['audit', 'verify', '--all'], { home });
  assert.equal(cut.code, 1);
  assert.match(cut.stdout, /^decisions: BROKEN: the log has 1 decisions but 2 were recorded \(lines removed from the end\)/m);
  const json = JSON.parse((await cli(['audit', 'verify', id, '--json'], { home })).stdout);
  assert.equal(json.ok, false);
  assert.equal(json.decisions.ok, false);
  fs.rmSync(file);
  const gone = await cli(['audit', 'verify', id], { home });
  assert.equal(gone.code, 1);
  assert.match(gone.stdout, /decisions: .*is gone, but 2 decision\(s\) were recorded/);
});

test('apply after the workspace changed is one line (exit 125); --force lists what it overwrote and keeps inert copies', async () => {
  const home = tmpDir('home');
  const ws = workspace({ 'f.txt': 'start\n', 'keep.txt': 'k\n', 'd/old.txt': 'o\n' });
  const id = await podRun(home, ws, 'echo pod > f.txt; echo pod > s.bin; echo pod > l; rm -r d');
  // Meanwhile the user: edits f.txt, creates s.bin set-uid, l as a link to a secret, a file in d/.
  fs.writeFileSync(path.join(ws, 'f.txt'), 'mine\n');
  fs.writeFileSync(path.join(ws, 's.bin'), 'suid\n');
  fs.chmodSync(path.join(ws, 's.bin'), 0o4755);
  fs.symlinkSync('/etc/shadow', path.join(ws, 'l'));
  fs.writeFileSync(path.join(ws, 'd/new.txt'), 'new work\n');
  const refused = await cli(['runs', 'apply', id], { home });
  assert.equal(refused.code, 125);
  assert.doesNotMatch(refused.stderr, /internal error/);
  assert.match(refused.stderr, /^clawpod: workspace changed since run started: .* \(review with clawpod runs diff .*; or discard\)\n$/);
  assert.ok(!fs.existsSync(path.join(home, 'decisions.jsonl')), 'a refused apply decided nothing');

  const forced = await cli(['runs', 'apply', id, '--force'], { home });
  assert.equal(forced.code, 0, forced.stderr);
  const keptDir = path.join(home, 'runs', id, 'overwritten', '1');
  assert.ok(forced.stdout.includes(`--force overwrote 4 path(s) changed since the run started; the old copies are kept in ${keptDir}:`), forced.stdout);
  assert.match(forced.stdout, /^ {2}d\/new\.txt \(created\)$/m);
  assert.match(forced.stdout, /^ {2}f\.txt \(modified\)$/m);
  assert.match(forced.stdout, /^ {2}l \(created, a symlink to \/etc\/shadow: described in index.json\)$/m);
  assert.match(forced.stdout, /^ {2}s\.bin \(created\)$/m);
  assert.equal(fs.readFileSync(path.join(ws, 'f.txt'), 'utf8'), 'pod\n');
  // The copies: data only, 0600, never set-id, the link never recreated (nothing follows it).
  const files = path.join(keptDir, 'files');
  assert.equal(fs.readFileSync(path.join(files, 'f.txt'), 'utf8'), 'mine\n');
  assert.equal(fs.readFileSync(path.join(files, 'd/new.txt'), 'utf8'), 'new work\n');
  assert.equal(fs.statSync(path.join(files, 's.bin')).mode & 0o7777, 0o600);
  assert.ok(!fs.existsSync(path.join(files, 'l')) && fs.lstatSync(path.join(files, 'l'), { throwIfNoEntry: false }) === undefined);
  const index = JSON.parse(fs.readFileSync(path.join(keptDir, 'index.json'), 'utf8'));
  assert.deepEqual(
    index.entries.find((e: { path: string }) => e.path === 's.bin'),
    {
      path: 's.bin',
      was: 'created',
      type: 'f',
      mode: 0o4755,
      size: 5,
      sha256: sha('suid\n'),
      kept: 'overwritten/1/files/s.bin',
    },
  );
  assert.equal(index.entries.find((e: { path: string }) => e.path === 'l').target, '/etc/shadow');
  const [e] = decisions(home);
  assert.equal(e.data.force, true);
  assert.deepEqual(
    e.data.overwritten.map((x: { path: string }) => x.path),
    ['d/new.txt', 'f.txt', 'l', 's.bin'],
  );
  assert.equal(e.data.keptIn, 'overwritten/1');
  const show = await cli(['runs', 'show', id], { home });
  assert.match(show.stdout, /--force: 4 overwritten path\(s\) kept under overwritten\//);
});

test('the copies --force keeps are never offered for review or apply', async () => {
  const home = tmpDir('home');
  const ws = workspace({ 'a.txt': 'a\n', 'b.txt': 'b\n' });
  const id = await podRun(home, ws, 'echo A > a.txt; echo B > b.txt');
  fs.writeFileSync(path.join(ws, 'a.txt'), 'mine\n');
  const part = await cli(['runs', 'apply', id, '--force', '--only', 'a.txt'], { home });
  assert.equal(part.code, 0, part.stderr);
  assert.ok(fs.existsSync(path.join(home, 'runs', id, 'overwritten', '1', 'files', 'a.txt')));
  const diff = await cli(['runs', 'diff', id, '--name-only'], { home });
  assert.equal(diff.stdout, 'b.txt\n');
  const rest = await cli(['runs', 'apply', id], { home });
  assert.equal(rest.code, 0, rest.stderr);
  assert.match(rest.stdout, /1 change\(s\) written/);
  assert.deepEqual(fs.readdirSync(ws).sort(), ['a.txt', 'b.txt']);
  assert.deepEqual(
    decisions(home).map((x) => [x.data.force, x.data.appliedCount]),
    [
      [true, 1],
      [false, 1],
    ],
  );
});

test('apply never reads through a symlink the pod replaced by a directory, --force included', async () => {
  const home = tmpDir('home');
  const outside = tmpDir('outside');
  fs.writeFileSync(path.join(outside, 'f'), 'not the workspace\n');
  const ws = workspace({ 'a.txt': 'a\n' });
  fs.symlinkSync(outside, path.join(ws, 'x'));
  const id = await podRun(home, ws, 'rm x && mkdir x && echo pod > x/f && echo A > a.txt');
  fs.writeFileSync(path.join(ws, 'a.txt'), 'mine\n');
  const r = await cli(['runs', 'apply', id, '--force'], { home });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /--force overwrote 1 path\(s\)/);
  assert.match(r.stdout, /^ {2}a\.txt \(modified\)$/m);
  assert.equal(fs.readFileSync(path.join(outside, 'f'), 'utf8'), 'not the workspace\n');
  assert.ok(fs.lstatSync(path.join(ws, 'x')).isDirectory());
  assert.equal(fs.readFileSync(path.join(ws, 'x/f'), 'utf8'), 'pod\n');
  const [e] = decisions(home);
  assert.deepEqual(
    e.data.overwritten.map((x: { path: string }) => x.path),
    ['a.txt'],
  );
});
