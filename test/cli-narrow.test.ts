// Flags that narrow the policy for one run, through the real binary: each cap flag reaches the
// pod's own cgroup (or its disk, or the clock); a value wider than the policy is one line naming
// the policy key, exit 125, and no run; -e sets plain variables only; the short forms; --rm drops
// a run that changed nothing. Needs root (cgroups, the disk stage).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startFakeAnthropic } from './fakes/anthropic.js';
import { auditEvents, cli, IS_ROOT, policyFile, tmpDir, workspace } from './helpers.js';
import { detectCgroups } from '../src/pod/cgroups.js';

const skip = IS_ROOT ? false : 'needs root: cgroups and the disk stage';
const MiB = 1024 * 1024;
const v2 = IS_ROOT && detectCgroups().mode !== 'v1';
const MEM_FILE = v2 ? '/sys/fs/cgroup/memory.max' : '/sys/fs/cgroup/memory/memory.limit_in_bytes';
const PIDS_FILE = v2 ? '/sys/fs/cgroup/pids.max' : '/sys/fs/cgroup/pids/pids.max';
const CPU_FILE = v2 ? '/sys/fs/cgroup/cpu.max' : '/sys/fs/cgroup/cpu/cpu.cfs_quota_us';
const KEY = 'sk-ant-test-narrow';

async function exec(args: string[], script: string, o: { home?: string; ws?: string; env?: Record<string, string> } = {}) {
  const home = o.home ?? tmpDir('home');
  const ws = o.ws ?? workspace();
  const r = await cli(['exec', ...args, '--', 'sh', '-c', script], { home, cwd: ws, env: o.env, timeoutMs: 120_000 });
  return { ...r, home, ws };
}

const field = (out: string, name: string) => out.match(new RegExp(`^${name}=(.*)$`, 'm'))?.[1];
const runDirs = (home: string) => {
  try {
    return fs.readdirSync(path.join(home, 'runs'));
  } catch {
    return [];
  }
};
async function listed(home: string): Promise<string[]> {
  const r = await cli(['runs', 'list', '--json'], { home });
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { runs: { id: string }[] }).runs.map((x) => x.id);
}

test("--memory, --pids and --cpus reach the pod's cgroup; the narrowed caps are in run.start", { skip }, async () => {
  const p = policyFile('version: 1\nresources:\n  memory: 1Gi\n  pids: 512\n  cpus: 2\n');
  const probe = `echo MEM=$(cat ${MEM_FILE}); echo PIDS=$(cat ${PIDS_FILE}); echo CPU=$(cat ${CPU_FILE}); echo NPROC=$(nproc)`;
  const wide = await exec(['--policy', p], probe);
  assert.equal(wide.code, 0, wide.stderr);
  const r = await exec(['--policy', p, '--memory', '96Mi', '--pids', '24', '--cpus', '0.5'], probe);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(field(wide.stdout, 'MEM'), String(1024 * MiB), "without the flag: the policy's 1Gi");
  assert.equal(field(r.stdout, 'MEM'), String(96 * MiB), r.stdout);
  assert.equal(field(wide.stdout, 'PIDS'), '512');
  assert.equal(field(r.stdout, 'PIDS'), '24', r.stdout);
  assert.equal(field(r.stdout, 'CPU'), v2 ? '50000 100000' : '50000', r.stdout);
  assert.equal(field(r.stdout, 'NPROC'), '1', 'half a core: one CPU');
  if (os.availableParallelism() >= 2) {
    assert.equal(field(wide.stdout, 'NPROC'), '2', "the policy's 2 cores: two CPUs");
    const one = await exec(['--policy', p, '--cpus', '1'], 'nproc');
    assert.equal(one.stdout, '1\n', '--cpus 1 under a 2-core policy: one CPU');
  }
  const start = auditEvents(r.home, r.runId!).find((e) => e.type === 'run.start')!;
  assert.deepEqual(start.data.narrowed, { memoryBytes: 96 * MiB, cpus: 0.5, pids: 24 });
  assert.equal((start.data.resources as { memoryBytes: number }).memoryBytes, 96 * MiB, 'run.start records the caps the pod got');
});

test('--pids is enforced: forks past it fail, the run goes on', { skip }, async () => {
  // Python, not sh: a shell whose fork fails gives up, and the count is what this test reads.
  const forks =
    'import os, time\nn = 0\nfor i in range(30):\n    try:\n        pid = os.fork()\n    except OSError:\n        continue\n' +
    '    if pid == 0:\n        time.sleep(3)\n        os._exit(0)\n    n += 1\nprint(n)\n';
  const r = await exec(['--pids', '12'], `python3 -c '${forks}'`);
  assert.equal(r.code, 0, r.stderr);
  const alive = Number(r.stdout.trim());
  assert.ok(alive > 0 && alive < 12, `some but fewer than 12 children could start (${alive})`);
  const wide = await exec([], `python3 -c '${forks}'`);
  assert.equal(wide.stdout.trim(), '30', 'without the flag all 30 start (the default 256)');
  assert.match(r.stderr, /resources\.pids: 12/, r.stderr);
});

test('--timeout ends the pod at its time: exit 124, status timeout', { skip }, async () => {
  const t0 = Date.now();
  const r = await exec(['--timeout', '2s'], 'sleep 30');
  const took = Date.now() - t0;
  assert.equal(r.code, 124, r.stderr);
  assert.ok(took < 10_000, `ended after ${took} ms, not after the 30 s sleep`);
  const show = await cli(['runs', 'show', r.runId!, '--json'], { home: r.home });
  assert.equal((JSON.parse(show.stdout) as { status: string }).status, 'timeout');
});

test('--disk caps the writable space: ENOSPC near the size, limit.hit disk at it', { skip }, async () => {
  const r = await exec(['--disk', '48Mi', '--json'], 'head -c 100M /dev/zero > /tmp/fill; s=$?; wc -c < /tmp/fill; exit $s');
  assert.match(r.stderr, /No space left on device/, r.stderr);
  assert.equal(r.code, 1, 'head itself failed; the pod was not killed');
  const written = Number(r.stdout.trim());
  assert.ok(written >= 0.85 * 48 * MiB && written <= 1.1 * 48 * MiB, `ENOSPC after ${written} bytes, cap 48 MiB`);
  const hits = auditEvents(r.home, r.runId!)
    .filter((e) => e.type === 'limit.hit')
    .map((e) => e.data);
  assert.deepEqual(hits, [{ cap: 'disk', limit: 48 * MiB }]);
});

test('a value wider than the policy is refused: one line naming the policy key, exit 125, no run', { skip }, async () => {
  const p = policyFile('version: 1\nresources:\n  memory: 256Mi\n  pids: 64\n  cpus: 1\n  timeout: 1m\n  disk: 128Mi\n');
  for (const [flag, value, key] of [
    ['--memory', '512Mi', 'resources.memory'],
    ['-m', '1Gi', 'resources.memory'],
    ['--pids', '65', 'resources.pids'],
    ['--cpus', '1.5', 'resources.cpus'],
    ['--timeout', '2m', 'resources.timeout'],
    ['--disk', '256Mi', 'resources.disk'],
  ]) {
    const home = tmpDir('home');
    const r = await exec(['--policy', p, flag, value], 'echo ran', { home });
    assert.equal(r.code, 125, `${flag} ${value}: ${r.stderr}`);
    assert.equal(r.stdout, '', 'the command never ran');
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line: ${r.stderr}`);
    assert.ok(lines[0].startsWith('clawpod: ') && lines[0].includes(key) && lines[0].includes(value), `${flag} ${value} names ${key}: ${lines[0]}`);
    assert.equal(r.runId, null);
    assert.deepEqual(runDirs(home), [], 'no run directory');
    assert.deepEqual(await listed(home), [], 'no run recorded');
  }
  for (const [flag, value] of [
    ['--memory', 'lots'],
    ['--memory', '1Mi'],
    ['--cpus', '0'],
    ['--cpus', 'two'],
    ['--pids', '0'],
    ['--pids', '1.5'],
    ['--timeout', 'soon'],
    ['--timeout', '0'],
    ['--disk', '-1Mi'],
  ]) {
    const home = tmpDir('home');
    const r = await exec([flag, value], 'echo ran', { home });
    assert.equal(r.code, 125, `${flag} ${value}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(r.stderr.includes(flag), `names ${flag}: ${r.stderr}`);
    assert.deepEqual(runDirs(home), []);
  }
});

test("-e NAME=VALUE reaches the pod as a plain variable; a secret's name, proxy, CLAWPOD_* and loader variables are refused", { skip }, async () => {
  const r = await exec(['-e', 'GREETING=hello there', '-e', 'EMPTY=', '--env', 'EQ=a=b'], 'echo "G=$GREETING"; echo "E=${EMPTY-unset}"; echo "Q=$EQ"');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'G=hello there\nE=\nQ=a=b\n');
  const start = auditEvents(r.home, r.runId!).find((e) => e.type === 'run.start')!;
  assert.deepEqual((start.data.narrowed as { env: string[] }).env, ['GREETING', 'EMPTY', 'EQ'], 'the names, never the values, in run.start');
  const p = policyFile(
    'version: 1\nnetwork:\n  allow: [api.example.com]\nsecrets:\n  - { name: API_TOKEN, from: env:CLAWPOD_NARROW_TOKEN, hosts: [api.example.com] }\n',
  );
  for (const [kv, why] of [
    ['API_TOKEN=mine', /secret/],
    ['HTTPS_PROXY=http://evil.test:8080', /network\.allow/],
    ['https_proxy=http://evil.test', /network\.allow/],
    ['NODE_EXTRA_CA_CERTS=/workspace/ca.pem', /clawpod itself/],
    ['CLAWPOD_X=1', /reserved/],
    ['LD_PRELOAD=/workspace/x.so', /load code/],
    ['1BAD=x', /not a variable name/],
    ['NOEQUALS', /NAME=VALUE/],
  ] as const) {
    const home = tmpDir('home');
    const q = await exec(['--policy', p, '-e', kv], 'echo ran', { home, env: { CLAWPOD_NARROW_TOKEN: 'token-value-long-enough' } });
    assert.equal(q.code, 125, `-e ${kv}: ${q.stderr}`);
    assert.equal(q.stderr.trim().split('\n').length, 1, q.stderr);
    assert.match(q.stderr, why, `-e ${kv}`);
    assert.ok(!q.stderr.includes('token-value-long-enough'));
    assert.deepEqual(runDirs(home), [], `-e ${kv}: no run`);
  }
});

test('short forms: -p FILE -w DIR -m SIZE -e NAME=VALUE, apart and run together', { skip }, async () => {
  const p = policyFile('version: 1\nenv: { FROM_POLICY: yes }\n');
  const ws = workspace({ 'marker.txt': 'the -w workspace\n' });
  const probe = `cat marker.txt; echo MEM=$(cat ${MEM_FILE}); echo "V=$V $FROM_POLICY"`;
  const cwd = workspace();
  for (const args of [
    ['-p', p, '-w', ws, '-m', '64Mi', '-e', 'V=short'],
    [`-p${p}`, `-w${ws}`, '-m64Mi', '-eV=short'],
    [`--policy=${p}`, `--workspace=${ws}`, '--memory=64Mi', '--env=V=short'],
  ]) {
    const r = await exec(args, probe, { ws: cwd });
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, `the -w workspace\nMEM=${64 * MiB}\nV=short yes\n`, args.join(' '));
  }
});

test('--rm: a run that changed nothing is gone from runs list and from disk; one that changed files is kept', { skip }, async () => {
  const home = tmpDir('home');
  const ws = workspace({ 'a.txt': 'a\n' });
  const gone = await exec(['--rm', '--json'], 'cat a.txt', { home, ws });
  assert.equal(gone.code, 0, gone.stderr);
  assert.equal(gone.stdout, 'a\n');
  const id = gone.runId!;
  assert.equal(JSON.parse(gone.stderr.trim().split('\n').at(-1)!).removed, true);
  assert.ok(!(await listed(home)).includes(id), 'not in runs list');
  assert.ok(!fs.existsSync(path.join(home, 'runs', id)), 'its directory is gone');
  const show = await cli(['runs', 'show', id], { home });
  assert.equal(show.code, 125, 'runs show no longer finds it');
  const failed = await exec(['--rm'], 'exit 3', { home, ws });
  assert.equal(failed.code, 3, "the exit code is still the command's");
  assert.ok(!(await listed(home)).includes(failed.runId!));
  const kept = await exec(['--rm'], 'echo b > b.txt', { home, ws });
  assert.equal(kept.code, 0, kept.stderr);
  assert.ok((await listed(home)).includes(kept.runId!), 'a run with changes stays');
  const diff = await cli(['runs', 'diff', kept.runId!], { home });
  assert.match(diff.stdout, /\+b/);
  assert.deepEqual(runDirs(home), [kept.runId!]);
});

test('run: -m narrows the live pod, --rm drops a task that changed nothing, --memory-name keeps a memory, --memory NAME gets the hint', { skip }, async () => {
  const home = tmpDir('home');
  const fake = await startFakeAnthropic([
    { toolUses: [{ name: 'bash', input: { command: `cat ${MEM_FILE}; echo note > /memory/kept.txt` } }], stopReason: 'tool_use' },
    { text: 'noted', stopReason: 'end_turn' },
    { text: 'nothing to change', stopReason: 'end_turn' },
  ]);
  try {
    const env = { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: fake.url };
    const r = await cli(['run', '-m', '80Mi', '--memory-name', 'notes', 'remember something'], { home, cwd: workspace(), env });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(JSON.stringify(fake.requests[1].body).includes(String(80 * MiB)), 'the tool saw the narrowed memory cap');
    assert.equal(fs.readFileSync(path.join(home, 'memory', 'notes', 'kept.txt'), 'utf8'), 'note\n', 'the named memory was written');
    const rm = await cli(['run', '--rm', 'change nothing'], { home, cwd: workspace(), env });
    assert.equal(rm.code, 0, rm.stderr);
    assert.ok(!(await listed(home)).includes(rm.runId!), '--rm dropped the task that changed nothing');
    assert.ok(!fs.existsSync(path.join(home, 'runs', rm.runId!)));
    assert.ok(!/internal error/.test(rm.stderr), rm.stderr);
  } finally {
    await fake.close();
  }
  const hint = await cli(['run', '--memory', 'notes', 'anything'], { home, cwd: workspace(), env: { ANTHROPIC_API_KEY: KEY } });
  assert.equal(hint.code, 125);
  assert.equal(hint.stderr.trim().split('\n').length, 1, hint.stderr);
  assert.match(hint.stderr, /--memory takes a size .*--memory-name NAME/);
  const bad = await cli(['run', '--memory-name', 'Not A Name', 'anything'], { home, cwd: workspace(), env: { ANTHROPIC_API_KEY: KEY } });
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /--memory-name/, `the fix names the flag that exists: ${bad.stderr}`);
  const wide = await cli(['run', '--timeout', '1h', 'anything'], { home, cwd: workspace(), env: { ANTHROPIC_API_KEY: KEY } });
  assert.equal(wide.code, 125);
  assert.match(wide.stderr, /resources\.timeout/);
});
