// Workspace modes against real pods, and the review cycle: diff, apply, discard, refusal when
// the workspace changed since the run started.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { auditEvents, cli, policyFile, tmpDir, workspace } from './helpers.js';

let home: string;
before(() => {
  home = tmpDir('home');
});

const mode = (m: string) => policyFile(`version: 1\nfilesystem: { workspace: ${m} }\n`);
const read = (ws: string, rel: string) => fs.readFileSync(path.join(ws, rel), 'utf8');

describe('overlay (default)', () => {
  test('changes wait as a diff; apply is byte-exact, with deletions and modes', async () => {
    const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const ws = workspace({ 'keep.txt': 'keep\n', 'edit.txt': 'one\ntwo\n', 'gone.txt': 'bye\n', 'dir/old.txt': 'x\n' });
    const r = await cli(
      [
        'exec',
        '--',
        'sh',
        '-c',
        [
          'printf "one\\nTWO\\nthree" > edit.txt',
          'rm gone.txt',
          'rm -r dir',
          'mkdir -p new/deep',
          'echo hi > new/deep/f.txt',
          'printf "#!/bin/sh\\necho run\\n" > tool.sh',
          'chmod 755 tool.sh',
          'head -c 256 /dev/stdin >/dev/null 2>&1; true',
          'ln -s keep.txt link',
        ].join(' && '),
      ],
      { home, cwd: ws },
    );
    assert.equal(r.code, 0, r.stderr);
    const id = r.runId!;
    // The host workspace is untouched until apply.
    assert.equal(read(ws, 'edit.txt'), 'one\ntwo\n');
    assert.ok(fs.existsSync(path.join(ws, 'gone.txt')));
    // Put a binary file in through the change set path as well.
    fs.writeFileSync(path.join(home, 'runs', id, 'changes', 'tree', 'bin.dat'), binary);
    const diff = await cli(['runs', 'diff', id], { home });
    assert.equal(diff.code, 0, diff.stderr);
    assert.match(diff.stdout, /diff --git a\/edit\.txt b\/edit\.txt/);
    assert.match(diff.stdout, /-two\n\+TWO\n\+three\n\\ No newline at end of file/);
    assert.match(diff.stdout, /deleted file mode 100644\n[^]*gone\.txt/);
    assert.match(diff.stdout, /new file mode 100755/);
    assert.match(diff.stdout, /Binary files \/dev\/null and b\/bin\.dat differ|Binary files a\/bin\.dat and b\/bin\.dat differ/);
    const events = auditEvents(home, id).filter((e) => e.type === 'file.write');
    const edit = events.find((e) => e.data.path === 'edit.txt');
    assert.equal(edit?.data.bytes, 13);
    assert.match(String(edit?.data.sha256), /^[0-9a-f]{64}$/);
    assert.ok(events.some((e) => e.data.path === 'gone.txt' && e.data.deleted === true));
    const apply = await cli(['runs', 'apply', id], { home });
    assert.equal(apply.code, 0, apply.stderr);
    assert.equal(read(ws, 'edit.txt'), 'one\nTWO\nthree');
    assert.equal(read(ws, 'keep.txt'), 'keep\n');
    assert.ok(!fs.existsSync(path.join(ws, 'gone.txt')));
    assert.ok(!fs.existsSync(path.join(ws, 'dir')));
    assert.equal(read(ws, 'new/deep/f.txt'), 'hi\n');
    assert.equal(fs.statSync(path.join(ws, 'tool.sh')).mode & 0o777, 0o755);
    assert.equal(fs.readlinkSync(path.join(ws, 'link')), 'keep.txt');
    assert.deepEqual(fs.readFileSync(path.join(ws, 'bin.dat')), binary);
    const again = await cli(['runs', 'apply', id], { home });
    assert.equal(again.code, 125);
    assert.match(again.stderr, /already applied/);
  });

  test('discard leaves the workspace as it was and removes the change set', async () => {
    const ws = workspace({ 'a.txt': 'a\n' });
    const r = await cli(['exec', '--', 'sh', '-c', 'echo b > a.txt; echo n > n.txt'], { home, cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    const d = await cli(['runs', 'discard', r.runId!], { home });
    assert.equal(d.code, 0, d.stderr);
    assert.equal(read(ws, 'a.txt'), 'a\n');
    assert.ok(!fs.existsSync(path.join(ws, 'n.txt')));
    assert.ok(!fs.existsSync(path.join(home, 'runs', r.runId!, 'changes')));
    const apply = await cli(['runs', 'apply', r.runId!], { home });
    assert.equal(apply.code, 125);
    assert.match(apply.stderr, /discarded/);
  });

  test('apply refuses when the workspace changed since the run started', async () => {
    const ws = workspace({ 'a.txt': 'a\n', 'b.txt': 'b\n' });
    const r = await cli(['exec', '--', 'sh', '-c', 'echo pod > a.txt; echo pod > b.txt'], { home, cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    fs.writeFileSync(path.join(ws, 'b.txt'), 'user edit, longer\n');
    const apply = await cli(['runs', 'apply', r.runId!], { home });
    assert.equal(apply.code, 125);
    assert.equal(apply.stderr.trim().split('\n').length, 1);
    assert.match(apply.stderr, /changed since .*b\.txt/);
    // Nothing was half-applied: a.txt is also untouched, and the user's edit survives.
    assert.equal(read(ws, 'a.txt'), 'a\n');
    assert.equal(read(ws, 'b.txt'), 'user edit, longer\n');
  });

  test('apply never follows a symlink out of the workspace', async () => {
    const outside = tmpDir('outside');
    const ws = workspace({ 'sub/x.txt': 'x\n' });
    const r = await cli(['exec', '--', 'sh', '-c', 'echo pod > sub/y.txt'], { home, cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    fs.rmSync(path.join(ws, 'sub'), { recursive: true });
    fs.symlinkSync(outside, path.join(ws, 'sub'));
    const apply = await cli(['runs', 'apply', r.runId!], { home });
    assert.equal(apply.code, 125);
    assert.deepEqual(fs.readdirSync(outside), []);
  });
});

describe('other modes', () => {
  test('ro: the workspace is visible and read-only', async () => {
    const ws = workspace({ 'a.txt': 'a\n' });
    const r = await cli(['exec', '--policy', mode('ro'), '--', 'sh', '-c', 'cat a.txt; echo x > a.txt && echo WROTE; echo n > n.txt && echo CREATED; true'], {
      home,
      cwd: ws,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^a$/m);
    assert.doesNotMatch(r.stdout, /WROTE|CREATED/);
    assert.match(r.stderr, /Read-only file system/);
    assert.deepEqual(fs.readdirSync(ws), ['a.txt']);
  });

  test('rw: writes land in the host workspace directly, owned by the workspace owner', async () => {
    const ws = workspace({ 'a.txt': 'a\n' });
    const r = await cli(['exec', '--policy', mode('rw'), '--', 'sh', '-c', 'echo b >> a.txt; echo n > n.txt'], { home, cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(read(ws, 'a.txt'), 'a\nb\n');
    assert.equal(read(ws, 'n.txt'), 'n\n');
    assert.equal(fs.statSync(path.join(ws, 'n.txt')).uid, fs.statSync(ws).uid);
    const diff = await cli(['runs', 'diff', r.runId!], { home });
    assert.equal(diff.stdout, '');
  });

  test('none: /workspace is an empty directory and the host dir is unseen', async () => {
    const ws = workspace({ 'secret.txt': 's\n' });
    const r = await cli(['exec', '--policy', mode('none'), '--', 'sh', '-c', 'ls -A /workspace | wc -l; pwd'], { home, cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^0\n\/workspace$/m);
  });

  test('extra mounts are read-only unless mode: rw', async () => {
    const data = workspace({ 'd.txt': 'data\n' });
    const out = workspace();
    const p = policyFile(`version: 1\nfilesystem:\n  mounts:\n    - { host: ${data}, path: /data }\n    - { host: ${out}, path: /out, mode: rw }\n`);
    const r = await cli(['exec', '--policy', p, '--', 'sh', '-c', 'cat /data/d.txt; echo x > /data/x && echo WROTE; echo o > /out/o.txt'], { home });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^data$/m);
    assert.doesNotMatch(r.stdout, /WROTE/);
    assert.ok(!fs.existsSync(path.join(data, 'x')));
    assert.equal(read(out, 'o.txt'), 'o\n');
  });
});
