// Paths that survive apply (issue 8, item 6): with filesystem.workspaceAt: host (or
// --at-host-path) the workspace is mounted at its own host path, so what a pod records as an
// absolute path (a symlink, a git worktree, a venv) still leads there after apply; with the
// default /workspace, diff and apply flag the changes that point into /workspace.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createTools, toolByName } from '../src/agent/tools/index.js';
import { createBwrapBackend } from '../src/pod/bwrap.js';
import { LivePod } from '../src/pod/live.js';
import type { Rules } from '../src/policy/types.js';
import { cli, policyFile, tmpDir, workspace } from './helpers.js';

let home: string;
let hostPolicy: string;
before(() => {
  home = tmpDir('home');
  hostPolicy = policyFile('version: 1\nfilesystem:\n  workspaceAt: host\n');
});

async function podRun(ws: string, script: string, extra: string[] = []): Promise<string> {
  const r = await cli(['exec', ...extra, '--', 'bash', '-c', script], { home, cwd: ws, timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.ok(r.runId, r.stderr);
  return r.runId;
}

async function apply(id: string, ...flags: string[]): Promise<string> {
  const r = await cli(['runs', 'apply', id, ...flags], { home });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

function git(cwd: string, ...args: string[]) {
  return spawnSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd, encoding: 'utf8' });
}

test('workspaceAt host: the pod works in the host path (policy and --at-host-path), and sees nothing else of the host /tmp', async () => {
  const ws = workspace({ 'a.txt': 'a\n' });
  const neighbour = tmpDir('neighbour');
  fs.writeFileSync(path.join(neighbour, 'host-only.txt'), 'host\n');
  for (const extra of [['--policy', hostPolicy], ['--at-host-path']]) {
    const r = await cli(['exec', ...extra, '--', 'sh', '-c', `pwd; cat a.txt; ls -a /tmp; ls ${neighbour} 2>&1; echo "PWD=$PWD"`], { home, cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], ws, r.stdout);
    assert.equal(lines[1], 'a');
    assert.doesNotMatch(r.stdout, /host-only\.txt/, 'the host /tmp leaked into the pod');
    assert.match(r.stdout, /No such file/);
    assert.match(r.stdout, new RegExp(`PWD=${ws}$`, 'm'));
  }
  // The default is unchanged.
  const d = await cli(['exec', '--', 'pwd'], { home, cwd: ws });
  assert.equal(d.stdout, '/workspace\n');
});

test('workspaceAt host: an absolute symlink made in the pod resolves on the host after apply', async () => {
  const ws = workspace({ 'target.txt': 'the target\n' });
  const id = await podRun(ws, 'ln -s "$(pwd)/target.txt" link', ['--at-host-path']);
  const diff = await cli(['runs', 'diff', id], { home });
  assert.doesNotMatch(diff.stdout, /point into \/workspace/);
  await apply(id);
  assert.equal(fs.readlinkSync(path.join(ws, 'link')), path.join(ws, 'target.txt'));
  assert.equal(fs.readFileSync(path.join(ws, 'link'), 'utf8'), 'the target\n');
});

test('workspaceAt host: a git worktree added in the pod is usable on the host after apply', async () => {
  const ws = workspace({ 'README.md': 'hello\n' });
  assert.equal(git(ws, 'init', '-q').status, 0);
  assert.equal(git(ws, 'add', '.').status, 0);
  assert.equal(git(ws, 'commit', '-q', '-m', 'init').status, 0);
  const id = await podRun(ws, 'git worktree add -q -b side wt', ['--policy', hostPolicy]);
  await apply(id, '--include-git');
  const st = git(path.join(ws, 'wt'), 'status', '--porcelain');
  assert.equal(st.status, 0, st.stderr);
  assert.equal(fs.readFileSync(path.join(ws, 'wt', 'README.md'), 'utf8'), 'hello\n');
  const list = git(ws, 'worktree', 'list', '--porcelain');
  assert.match(list.stdout, new RegExp(`^worktree ${path.join(ws, 'wt')}$`, 'm'));
  assert.doesNotMatch(list.stdout, /prunable/);
});

test('workspaceAt host: a venv made in the pod activates at its host path after apply', async () => {
  const ws = workspace();
  const id = await podRun(ws, '/usr/bin/python3 -m venv --without-pip venv', ['--at-host-path']);
  await apply(id);
  const r = spawnSync('bash', ['-c', '. venv/bin/activate && echo "$VIRTUAL_ENV" && python -c "import sys; print(sys.prefix)"'], { cwd: ws, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `${path.join(ws, 'venv')}\n${path.join(ws, 'venv')}\n`);
});

test('workspaceAt /workspace (default): diff and apply flag a symlink and a text file that point into /workspace', async () => {
  const ws = workspace({ 'keep.txt': 'mentions /workspace/x but is unchanged\n' });
  const id = await podRun(
    ws,
    [
      'ln -s /workspace/keep.txt link',
      'ln -s /workspace dirlink',
      'ln -s /workspaces/other notmine',
      "printf 'prefix=/workspace/build\\n' > config.status",
      "printf 'a\\0b /workspace/bin\\0' > blob.bin",
      "printf 'no such path: /workspacex/y\\n' > clean.txt",
    ].join(' && '),
  );
  const diff = await cli(['runs', 'diff', id], { home });
  assert.equal(diff.code, 0, diff.stderr);
  // The block of path lines under its header, up to the next clawpod header.
  const lines = diff.stdout.split('\n');
  const at = lines.findIndex((l) => /^# clawpod: 4 changes point into \/workspace, .*filesystem\.workspaceAt: host/.test(l));
  assert.ok(at >= 0, diff.stdout);
  const end = lines.findIndex((l, i) => i > at && !/^#     /.test(l));
  const names = lines.slice(at + 1, end).map((l) => l.split(' ').filter(Boolean)[1]);
  // Not /workspaces/other, /workspacex/y, nor a file the pod did not change.
  assert.deepEqual(names, ['blob.bin', 'config.status', 'dirlink', 'link'], diff.stdout);
  // Still parseable by git apply: the header lines are commentary.
  const parsed = spawnSync('git', ['apply', '--numstat', '-'], { cwd: tmpDir('gitapply'), input: diff.stdout, encoding: 'utf8' });
  assert.equal(parsed.status, 0, parsed.stderr);
  assert.equal(parsed.stdout.trim().split('\n').length, 6, parsed.stdout);
  const out = await apply(id);
  assert.match(out, /^clawpod: 4 applied files point into \/workspace \(e\.g\. [^)]*\); rerun with filesystem\.workspaceAt: host to get host paths$/m);
});

test('workspaceAt host refuses host paths the pod needs or that would shadow the system (exit 125, one line)', async () => {
  const weird = path.join(tmpDir('weird'), 'new\nline');
  fs.mkdirSync(weird);
  const cases: [string, RegExp][] = [
    ['/usr/share', /\/usr/],
    ['/tmp', /\/tmp/],
    ['/proc/self', /\/proc/],
    ['/run', /\/run/],
    ['/lib', /\/lib/],
    [weird, /character/],
  ];
  for (const [dir, why] of cases) {
    for (const extra of [['--policy', hostPolicy], ['--at-host-path']]) {
      const r = await cli(['exec', ...extra, '--workspace', dir, '--', 'true'], { home });
      assert.equal(r.code, 125, `${dir}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /workspaceAt|--at-host-path/, r.stderr);
      assert.match(r.stderr, why, r.stderr);
    }
  }
  const explain = await cli(['policy', 'explain', hostPolicy], { home });
  assert.match(explain.stdout, /its own host path/);
});

const rules: Rules = {
  resources: { cpus: 1, memoryBytes: 256 << 20, pids: 128, timeoutMs: 120_000, diskBytes: 64 << 20 },
  workspace: 'overlay',
  workspaceAt: 'host',
  mounts: [],
  network: { allow: [], deny: [], hosts: {} },
  secrets: [],
  env: {},
  tools: {},
  source: 'test',
};

let live: LivePod | null = null;
after(async () => {
  await live?.close().catch(() => undefined);
});

test('the agent tools work with the workspace at its host path', async () => {
  const ws = workspace({ 'notes.txt': 'alpha\n', 'src/a.ts': 'needle\n' });
  live = await LivePod.start(
    createBwrapBackend({ clawpodHome: home }),
    {
      id: `r-wsat-${process.pid}`,
      rules,
      workspace: ws,
      changesDir: path.join(home, 'changes-wsat'),
      allowDegraded: false,
      stdio: 'pipe',
    },
    () => {},
  );
  const tools = createTools({ workspace: ws });
  const run = async (name: string, input: Record<string, unknown>) => {
    const r = await (toolByName(tools, name) ?? assert.fail(name)).run(input, live as LivePod);
    assert.equal(r.isError, false, r.content);
    return r.content;
  };
  assert.equal(await run('bash', { command: 'pwd' }), ws);
  assert.match(await run('read_file', { path: 'notes.txt' }), /1\talpha/);
  assert.match(await run('write_file', { path: 'new.txt', content: 'x' }), new RegExp(`to ${ws}/new\\.txt`));
  assert.equal(await run('glob', { pattern: '**/*.ts' }), 'src/a.ts');
  assert.match(await run('grep', { pattern: 'needle' }), /^src\/a\.ts:1:needle$/);
  assert.match(await run('grep', { pattern: 'zzz' }), new RegExp(`in ${ws}$`));
});
