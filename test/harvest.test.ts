// The harvest: what a pod leaves in its overlay becomes a change set on the host disk. Everything
// a pod can make the host store or hold there counts against its caps (apparent bytes against
// the disk cap, entries against the entry cap, depth and path length against what the host can
// review and apply), and a change set that cannot be harvested whole is discarded with one clear
// line, while the run still ends with the command's own exit code. Needs root (privileged pods).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { auditEvents, BIN, cli, IS_ROOT, policyFile, ROOT, tmpDir, workspace } from './helpers.js';

const skip = IS_ROOT ? false : 'needs root: privileged pods with cgroups';
const MiB = 1024 * 1024;

const policy = (disk: string) => policyFile(['version: 1', 'resources:', '  memory: 256Mi', '  pids: 64', '  timeout: 60s', `  disk: ${disk}`, ''].join('\n'));
const SMALL = policy('16Mi');

interface Summary {
  run: string;
  exitCode: number;
  status: string;
  limitHit: string | null;
  filesChanged: number;
}
interface Run {
  code: number;
  stdout: string;
  stderr: string;
  runId: string;
  summary: Summary;
  home: string;
  maxRssKiB: number;
}

interface ExecOptions {
  home?: string;
  asUser?: string;
  env?: Record<string, string>;
}

/** `clawpod exec --json` under /usr/bin/time, so clawpod's own peak memory is known. */
function exec(policyPath: string, script: string, ws: string, opts: ExecOptions = {}): Promise<Run> {
  const home = opts.home ?? tmpDir('home');
  const rssDir = tmpDir('rss');
  const rssFile = path.join(rssDir, 'rss');
  const userHome = opts.asUser ? tmpDir('userhome') : null;
  if (opts.asUser) spawnSync('chown', [opts.asUser, rssDir, home, userHome as string]);
  const degraded = opts.asUser ? ['--allow-degraded'] : [];
  const timed = [
    '/usr/bin/time',
    '-o',
    rssFile,
    '-f',
    '%M',
    process.execPath,
    BIN,
    'exec',
    '--policy',
    policyPath,
    ...degraded,
    '--json',
    '--',
    'bash',
    '-c',
    script,
  ];
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: userHome ?? process.env.HOME ?? '/root', ...opts.env, CLAWPOD_HOME: home };
  const argv = opts.asUser ? ['runuser', '-u', opts.asUser, '--', 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...timed] : timed;
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { cwd: ws, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const runId = stderr.match(/clawpod: run (r-[\w-]+)/)?.[1];
      const last = stderr.trim().split('\n').at(-1) ?? '';
      let summary: Summary;
      try {
        summary = JSON.parse(last) as Summary;
      } catch {
        reject(new Error(`no JSON summary as the last stderr line (exit ${code}):\n${stderr.slice(-3000)}`));
        return;
      }
      if (!runId) {
        reject(new Error(`no run id:\n${stderr}`));
        return;
      }
      const maxRssKiB = Number(fs.readFileSync(rssFile, 'utf8').trim().split('\n').at(-1));
      resolve({ code: code ?? 128, stdout, stderr, runId, summary, home, maxRssKiB });
    });
  });
}

function changeLimits(run: Run): Record<string, unknown>[] {
  return auditEvents(run.home, run.runId)
    .filter((e) => e.type === 'limit.hit' && e.data.cap === 'changes')
    .map((e) => e.data);
}

/** KiB of real blocks under dir, as du counts them. */
function duKiB(dir: string): number {
  const r = spawnSync('du', ['-sk', dir], { encoding: 'utf8' });
  return Number(r.stdout.split('\t')[0]);
}

/** Every later command of the user still works in this home. */
async function laterCommandsWork(run: Run, ws: string): Promise<void> {
  for (const args of [
    ['runs', 'list'],
    ['runs', 'show', run.runId],
    ['runs', 'diff', run.runId],
    ['exec', '--', 'true'],
  ]) {
    const r = await cli(args, { home: run.home, cwd: ws, timeoutMs: 60_000 });
    assert.equal(r.code, 0, `clawpod ${args.join(' ')} exits 0 after the run:\n${r.stderr.slice(-2000)}`);
    assert.doesNotMatch(r.stderr, /Maximum call stack|RangeError|at .*\.js:\d+/, `clawpod ${args.join(' ')}: no crash`);
  }
}

/** The run ended properly with the command's own result, and nothing is offered for apply. */
function assertDiscarded(run: Run, expectCode: number): void {
  assert.equal(run.code, expectCode, `the command's own exit code, not 125:\n${run.stderr.slice(-2000)}`);
  assert.equal(run.summary.exitCode, expectCode);
  assert.equal(run.summary.status, 'done');
  assert.equal(run.summary.filesChanged, 0, 'nothing is offered for apply');
  const runDir = path.join(run.home, 'runs', run.runId);
  assert.ok(!fs.existsSync(path.join(runDir, 'changes')), 'no change set is left in the run dir');
  assert.deepEqual(
    fs.readdirSync(runDir).filter((n) => n.startsWith('changes')),
    [],
    'no partial change set either',
  );
  const ends = auditEvents(run.home, run.runId).filter((e) => e.type === 'run.end');
  assert.equal(ends.length, 1, 'the audit chain is closed once');
  assert.equal(ends[0].data.status, 'done');
}

test('a sparse 3 GiB file under disk 16Mi: changes discarded with limit.hit changes, host disk and memory stay small', { skip }, async () => {
  const ws = workspace({ 'keep.txt': 'kept\n' });
  const run = await exec(SMALL, 'truncate -s 3G big && echo changed >> keep.txt && echo made', ws);
  assertDiscarded(run, 0);
  assert.equal(run.stdout.trim(), 'made');
  const hits = changeLimits(run);
  assert.equal(hits.length, 1, `one limit.hit changes event: ${JSON.stringify(auditEvents(run.home, run.runId).map((e) => e.type))}`);
  assert.equal(hits[0].reason, 'over_size');
  assert.equal(hits[0].limit, 16 * MiB);
  assert.match(run.stderr, /^clawpod: the pod's workspace changes were discarded: .*disk.*\(.*resources\.disk.*\)$/m);
  assert.ok(duKiB(path.join(run.home, 'runs', run.runId)) < 1024, 'the run dir holds well under 1 MiB of real blocks');
  assert.ok(run.maxRssKiB < 300 * 1024, `clawpod's peak RSS stays small (${run.maxRssKiB} KiB)`);
  assert.equal(fs.readFileSync(path.join(ws, 'keep.txt'), 'utf8'), 'kept\n', 'the workspace itself is untouched');
  const show = await cli(['runs', 'show', run.runId], { home: run.home });
  assert.match(show.stdout, /^discarded: +the pod's changes, not kept for review: .*big/m, show.stdout);
  await laterCommandsWork(run, ws);
});

test('a sparse 2.1 GiB file with data past 2 GiB under disk 4Gi: harvested with its holes, byte for byte', { skip }, async () => {
  const ws = workspace();
  // Data at 2050 MiB: a 32-bit size or offset anywhere in the copy loses it.
  const at = 2050 * MiB;
  const script = `truncate -s 2100M big && printf tail | dd of=big bs=1 seek=${at} conv=notrunc status=none && echo made`;
  const run = await exec(policy('4Gi'), script, ws);
  assert.equal(run.code, 0, run.stderr.slice(-2000));
  assert.deepEqual(changeLimits(run), []);
  const big = path.join(run.home, 'runs', run.runId, 'changes', 'tree', 'big');
  const st = fs.statSync(big);
  assert.equal(st.size, 2100 * MiB, 'the apparent size is kept');
  assert.ok(st.blocks * 512 < 4 * MiB, `the holes stay holes on the host (${st.blocks * 512} bytes of real blocks)`);
  const fd = fs.openSync(big, 'r');
  const buf = Buffer.alloc(4);
  fs.readSync(fd, buf, 0, 4, at);
  fs.closeSync(fd);
  assert.equal(buf.toString(), 'tail', 'the data past 2 GiB was copied');
  assert.ok(run.maxRssKiB < 300 * 1024, `clawpod's peak RSS stays small (${run.maxRssKiB} KiB)`);
  assert.equal(run.summary.filesChanged, 1);
});

test('a tree nested 2000 deep (past PATH_MAX): discarded with a clear line; every later command works', { skip }, async () => {
  const ws = workspace({ 'a.txt': 'a\n' });
  // mkdir -p of 500 levels at a time: each step stays under PATH_MAX, the whole does not.
  const level = Array(500).fill('dd').join('/');
  const script = `echo b > a.txt; for i in 1 2 3 4; do mkdir -p ${level} && cd ${level} || exit 9; done; echo leaf > leaf; echo made`;
  const run = await exec(SMALL, script, ws);
  assertDiscarded(run, 0);
  assert.equal(run.stdout.trim(), 'made');
  const hits = changeLimits(run);
  assert.equal(hits.length, 1);
  assert.equal(hits[0].reason, 'too_deep');
  assert.match(run.stderr, /^clawpod: the pod's workspace changes were discarded: .*deep.*$/m);
  assert.equal(fs.readFileSync(path.join(ws, 'a.txt'), 'utf8'), 'a\n');
  await laterCommandsWork(run, ws);
});

test('a name that is not UTF-8: discarded with a clear line naming it; every later command works', { skip }, async () => {
  const ws = workspace();
  const run = await exec(SMALL, 'printf x > "$(printf \'bad\\377name\')" && echo made', ws);
  assertDiscarded(run, 0);
  const hits = changeLimits(run);
  assert.equal(hits.length, 1);
  assert.equal(hits[0].reason, 'bad_name');
  assert.match(run.stderr, /^clawpod: the pod's workspace changes were discarded: .*bad\\377name.*UTF-8.*$/m);
  await laterCommandsWork(run, ws);
});

test('names with newlines: added, modified and deleted ones are harvested exactly (NUL-separated lists)', { skip }, async () => {
  const ws = workspace({ 'old\nname': 'old\n', 'dir/x': 'x\n' });
  const script = 'printf new > "$(printf \'new\\nline\')" && rm "$(printf \'old\\nname\')" && rm -r dir && mkdir dir && echo y > dir/y';
  const run = await exec(SMALL, script, ws);
  assert.equal(run.code, 0, run.stderr.slice(-2000));
  assert.deepEqual(changeLimits(run), []);
  const cs = path.join(run.home, 'runs', run.runId, 'changes');
  assert.equal(fs.readFileSync(path.join(cs, 'tree', 'new\nline'), 'utf8'), 'new');
  assert.deepEqual(fs.readFileSync(path.join(cs, 'deleted.lst'), 'utf8').split('\0'), ['old\nname', '']);
  assert.deepEqual(fs.readFileSync(path.join(cs, 'opaque.lst'), 'utf8').split('\0'), ['dir', '']);
  assert.equal(run.summary.filesChanged, 4, 'new\\nline added, old\\nname and dir/x deleted, dir/y added');
  await laterCommandsWork(run, ws);
});

test('privileged: a chmod 0 dir and file keep their mode exactly, a setuid bit never reaches the host', { skip }, async () => {
  const ws = workspace();
  // chmod 6755 is refused by the pod's seccomp filter (test/setid.test.ts); the mode stays 0755.
  const run = await exec(SMALL, 'mkdir -p z/in && echo f > z/in/f && chmod 0 z/in/f z && printf s > s && chmod 755 s && ! chmod 6755 s', ws);
  assert.equal(run.code, 0, run.stderr.slice(-2000));
  const tree = path.join(run.home, 'runs', run.runId, 'changes', 'tree');
  assert.equal(fs.statSync(path.join(tree, 'z')).mode & 0o7777, 0);
  assert.equal(fs.statSync(path.join(tree, 'z', 'in', 'f')).mode & 0o7777, 0);
  assert.equal(fs.statSync(path.join(tree, 's')).mode & 0o7777, 0o755);
  await laterCommandsWork(run, ws);
});

test("5000 empty files under disk 16Mi: the stage's inode cap stops them, and what is harvested fits the entry cap", { skip }, async () => {
  const ws = workspace();
  const run = await exec(SMALL, 'seq -f f%g 5000 | xargs touch; echo made', ws);
  assert.match(run.stderr, /No space left on device/, 'the stage ran out of inodes');
  assert.deepEqual(changeLimits(run), [], 'the overlay upper can never hold more entries than the stage has inodes');
  assert.ok(run.summary.filesChanged > 3000 && run.summary.filesChanged <= 4096, `${run.summary.filesChanged} files kept`);
});

// Copy mode (the unprivileged fallback, which the CLI uses only for non-root users) is driven
// through the prelude itself: an unprivileged pod in its own user namespace, the command run
// straight in the prelude's mount namespace. Copy mode lists deletions that take no room on the
// stage, so there the entry cap is what bounds the change set.
const PRELUDE = process.env.CLAWPOD_TEST_PRELUDE ?? path.join(ROOT, 'build', 'clawpod-podinit');

interface PreludeRun {
  code: number;
  stderr: string;
  status: Record<string, string>;
  changes: string;
}

function prelude(ws: string, script: string, copy: boolean): PreludeRun {
  const stage = tmpDir('stage');
  const changes = path.join(tmpDir('run'), 'changes');
  const st = fs.statSync(ws, { bigint: true });
  const r = spawnSync(
    PRELUDE,
    [
      '--userns',
      '--stage',
      stage,
      '--stage-size',
      String(16 * MiB),
      '--stage-inodes',
      '4096',
      '--workspace',
      `overlay:${st.dev}:${st.ino}:${ws}`,
      '--harvest',
      changes,
      ...(copy ? ['--copy-workspace'] : []),
      '--status-fd',
      '3',
      '--',
      '/bin/bash',
      '-c',
      `cd ${stage}/ws && ${script}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 60_000 },
  );
  const status = Object.fromEntries(
    String(r.output[3])
      .split('\n')
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  return { code: r.status ?? 128, stderr: r.stderr, status, changes };
}

function assertRefused(r: PreludeRun, reason: string, code = 0): void {
  assert.equal(r.code, code, `the prelude exits with the command's status, not 125:\n${r.stderr.slice(-2000)}`);
  assert.equal(r.status.harvest, reason, r.stderr.slice(-2000));
  assert.match(r.stderr, /^clawpod: the pod's workspace changes were discarded: .+ \(.+\)$/m);
  assert.deepEqual(fs.readdirSync(path.dirname(r.changes)), [], 'neither a change set nor a partial one is left');
}

for (const copy of [true, false]) {
  const mode = copy ? 'copy mode' : 'overlay mode';
  test(`${mode}, prelude: a sparse 3 GiB file, a 2000-deep tree, a non-UTF-8 name are each refused whole`, { skip }, () => {
    const deep = Array(500).fill('dd').join('/');
    const cases: [string, string][] = [
      ['truncate -s 3G big', 'over_size'],
      [`for i in 1 2 3 4; do mkdir -p ${deep} && cd ${deep}; done; touch leaf`, 'too_deep'],
      ['touch "$(printf \'x\\377\')"', 'bad_name'],
    ];
    for (const [script, reason] of cases) assertRefused(prelude(workspace({ 'a.txt': 'a\n' }), `echo b > a.txt; ${script}; exit 7`, copy), reason, 7);
  });

  test(`${mode}, prelude: the change set is exact: modes without set-id bits, unreadable dirs, links, deletions`, { skip }, () => {
    const ws = workspace({ 'a.txt': 'a\n', 'same.txt': 's\n', 'gone.txt': 'g\n', 'sub/x': 'x\n' });
    const script =
      'echo b > a.txt && rm gone.txt && rm -r sub && echo n > "$(printf \'new\\nline\')" && ln -s a.txt link' +
      ' && printf s > suid && chmod 4755 suid && mkdir -p locked/in && echo i > locked/in/f && chmod 0 locked/in/f locked/in locked';
    const r = prelude(ws, script, copy);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.status.harvest, 'ok', r.stderr);
    const tree = path.join(r.changes, 'tree');
    assert.equal(fs.readFileSync(path.join(tree, 'a.txt'), 'utf8'), 'b\n');
    assert.equal(fs.readFileSync(path.join(tree, 'new\nline'), 'utf8'), 'n\n');
    assert.equal(fs.readlinkSync(path.join(tree, 'link')), 'a.txt');
    assert.equal(fs.statSync(path.join(tree, 'suid')).mode & 0o7777, 0o755, 'no set-id bit reaches the host');
    // Unprivileged (these pods are), the owner keeps access to a chmod 0 dir or file, and the
    // mode is set after the contents (a 0000 dir could not be filled).
    assert.equal(fs.statSync(path.join(tree, 'locked')).mode & 0o7777, 0o700);
    assert.equal(fs.statSync(path.join(tree, 'locked', 'in', 'f')).mode & 0o7777, 0o600);
    assert.equal(fs.readFileSync(path.join(tree, 'locked', 'in', 'f'), 'utf8'), 'i\n');
    assert.ok(!fs.existsSync(path.join(tree, 'same.txt')), 'an unchanged file is not in the change set');
    const deleted = fs.readFileSync(path.join(r.changes, 'deleted.lst'), 'utf8').split('\0').filter(Boolean).sort();
    assert.deepEqual(deleted, ['gone.txt', 'sub']);
  });
}

test('copy mode, prelude: 3000 deletions plus 3000 new files pass the entry cap (4096): refused whole', { skip }, () => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 3000; i++) files[`old${i}`] = '';
  const r = prelude(workspace(files), 'rm -f old* && seq -f new%g 3000 | xargs touch', true);
  assertRefused(r, 'over_entries');
  assert.equal(r.status.harvest_limit, '4096');
  assert.match(r.stderr, /discarded: more than 4096 files, directories and deletions.*resources\.disk/);
});

test('copy mode, prelude control: 2000 deletions plus 2000 new files fit the entry cap', { skip }, () => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 2000; i++) files[`old${i}`] = '';
  const r = prelude(workspace(files), 'rm -f old* && seq -f new%g 2000 | xargs touch', true);
  assert.equal(r.status.harvest, 'ok', r.stderr);
  assert.equal(fs.readdirSync(path.join(r.changes, 'tree')).length, 2000);
  assert.equal(fs.readFileSync(path.join(r.changes, 'deleted.lst'), 'utf8').split('\0').filter(Boolean).length, 2000);
});

test('a failing command whose changes are discarded still ends with its own exit code', { skip }, async () => {
  const ws = workspace();
  const run = await exec(SMALL, 'truncate -s 1G big; exit 3', ws);
  assertDiscarded(run, 3);
  assert.equal(changeLimits(run).length, 1);
});

test('control: 4000 empty files and a 15 MiB file under disk 16Mi are harvested whole', { skip }, async () => {
  const ws = workspace();
  const run = await exec(SMALL, 'mkdir d && cd d && seq -f f%g 4000 | xargs touch && head -c 15M /dev/zero > ../big', ws);
  assert.equal(run.code, 0, run.stderr.slice(-2000));
  assert.deepEqual(changeLimits(run), []);
  assert.equal(run.summary.filesChanged, 4002, 'd, its 4000 files and big');
  assert.equal(fs.statSync(path.join(run.home, 'runs', run.runId, 'changes', 'tree', 'big')).size, 15 * MiB);
});

test('the status lines of the prelude become the limit.hit changes data; a harvest cut short is named', async () => {
  const { harvestRefusal } = await import('../src/pod/bwrap.js');
  const ended = 'started=1\nstage_full=0\nws_copy=0\n';
  assert.equal(harvestRefusal(`${ended}harvest=ok\nharvest_limit=0\nharvest_detail=\n`, true), null);
  assert.deepEqual(harvestRefusal(`${ended}harvest=over_size\nharvest_limit=16777216\nharvest_detail=more than x: big\n`, true), {
    reason: 'over_size',
    limit: 16777216,
    detail: 'more than x: big',
  });
  assert.deepEqual(harvestRefusal(`${ended}harvest=bad_name\nharvest_limit=0\nharvest_detail=the name x\n`, true), {
    reason: 'bad_name',
    limit: null,
    detail: 'the name x',
  });
  assert.equal(harvestRefusal(ended, true)?.reason, 'interrupted', 'killed before it said how the harvest went');
  assert.equal(harvestRefusal(ended, false), null, 'no harvest was due (workspace ro, rw or none)');
  assert.equal(harvestRefusal('', true), null, 'never started: the set-up error says why');
});
