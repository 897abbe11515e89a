// The unprivileged path, as a plain local user: on this cgroup-v1 host nothing delegates
// cgroups to users, so the caps are missing. clawpod must refuse unless --allow-degraded, say so
// in the audit log, and still give the pod its own user, pid and mount namespaces, an overlay
// workspace, a wall clock and doctor's honest report.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { auditEvents, ensureUser, eventually, IS_ROOT, policyFile, ROOT, tmpDir, workspace, type CliResult } from './helpers.js';

const USER = 'clawpod-test';
const skip = IS_ROOT ? false : 'needs root to create and become a test user';

let bin = path.join(ROOT, 'bin', 'clawpod');
let uid = -1;
let gid = -1;
let userHome = '';
let copy: string | null = null;

function asUser(argv: string[]): ReturnType<typeof spawnSync> {
  return spawnSync('runuser', ['-u', USER, '--', ...argv], { encoding: 'utf8' });
}

/** Can the test user run this checkout's clawpod and its prelude? */
function reachable(root: string): boolean {
  return (
    asUser(['test', '-x', path.join(root, 'build', 'clawpod-podinit')]).status === 0 &&
    asUser([process.execPath, path.join(root, 'bin', 'clawpod'), '--help']).status === 0
  );
}

/** The built checkout copied into a world-readable directory (hard links if the filesystem allows). */
function copyCheckout(): string {
  const dest = tmpDir('checkout');
  // native/ marks the package root for the prelude lookup; the rest is what clawpod runs from.
  const parts = ['bin', 'dist', 'build', 'node_modules', 'native', 'package.json'].filter((p) => fs.existsSync(path.join(ROOT, p)));
  const cp = (flags: string) => parts.every((p) => spawnSync('cp', [flags, path.join(ROOT, p), dest]).status === 0);
  if (cp('-al') && reachable(dest)) return dest;
  for (const p of parts) fs.rmSync(path.join(dest, p), { recursive: true, force: true });
  assert.ok(cp('-a'), 'copy the built checkout');
  spawnSync('chmod', ['-R', 'a+rX', dest]);
  return dest;
}

/** A directory (or file tree) owned by the test user. */
function owned(dir: string): string {
  spawnSync('chown', ['-R', `${uid}:${gid}`, dir]);
  return dir;
}

before(() => {
  if (skip) return;
  assert.ok(ensureUser(USER), `create the local user ${USER}`);
  uid = Number(spawnSync('id', ['-u', USER], { encoding: 'utf8' }).stdout.trim());
  gid = Number(spawnSync('id', ['-g', USER], { encoding: 'utf8' }).stdout.trim());
  if (process.env.CLAWPOD_TEST_COPY || !reachable(ROOT)) {
    copy = copyCheckout();
    bin = path.join(copy, 'bin', 'clawpod');
  }
  assert.ok(reachable(copy ?? ROOT), `${USER} can run ${bin}`);
  userHome = owned(tmpDir('userhome'));
});

after(() => {
  if (copy) fs.rmSync(copy, { recursive: true, force: true });
});

interface Run extends CliResult {
  home: string;
}

/** Runs clawpod as the test user with its own HOME and CLAWPOD_HOME. */
function clawpod(args: string[], opts: { home: string; cwd: string; onSpawn?: (c: ChildProcess) => void; env?: Record<string, string> }): Promise<Run> {
  const env = { PATH: '/usr/bin:/bin', HOME: userHome, CLAWPOD_HOME: opts.home, LANG: 'C.UTF-8', ...opts.env };
  const argv = ['-u', USER, '--', 'env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, bin, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn('runuser', argv, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    opts.onSpawn?.(child);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const id = stderr.match(/clawpod: run (r-[\w-]+)/)?.[1] ?? null;
      resolve({ code: code ?? 128, stdout, stderr, runId: id, home: opts.home });
    });
  });
}

/** A fresh CLAWPOD_HOME and workspace owned by the test user. */
function fresh(files: Record<string, string> = {}): { home: string; ws: string } {
  return { home: owned(tmpDir('nrhome')), ws: owned(workspace(files)) };
}

function userProcesses(marker: string): string[] {
  const out = spawnSync('ps', ['-u', String(uid), '-o', 'pid=,args='], { encoding: 'utf8' }).stdout;
  return out.split('\n').filter((l) => l.includes(marker));
}

test('without cgroup delegation, exec refuses with 125 and one line naming the memory cap and --allow-degraded', { skip }, async () => {
  const { home, ws } = fresh();
  const r = await clawpod(['exec', '--', 'true'], { home, cwd: ws });
  assert.equal(r.code, 125, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `exactly one line on stderr:\n${r.stderr}`);
  assert.match(lines[0], /^clawpod: .*memory cap/);
  assert.match(lines[0], /--allow-degraded/);
  assert.equal(r.runId, null, 'no pod was started');
  const list = await clawpod(['runs', 'list'], { home, cwd: ws });
  assert.match(list.stdout, /no runs yet/, 'the refusal came before any run was recorded');
});

test('with --allow-degraded it runs as uid 1000 in the pod and records guard.degraded for each cap', { skip }, async () => {
  const { home, ws } = fresh();
  const r = await clawpod(['exec', '--allow-degraded', '--', 'id', '-u'], { home, cwd: ws });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), '1000');
  assert.ok(r.runId, r.stderr);
  const degraded = auditEvents(home, r.runId)
    .filter((e) => e.type === 'guard.degraded')
    .map((e) => e.data.guard);
  for (const cap of ['memory cap', 'cpu cap', 'pids cap']) assert.ok(degraded.includes(cap), `guard.degraded for the ${cap}: ${degraded}`);
  const exec = auditEvents(home, r.runId).find((e) => e.type === 'exec.start');
  assert.equal(exec?.data.uid, null, 'no dedicated host uid without root');
  const verify = await clawpod(['audit', 'verify', r.runId], { home, cwd: ws });
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  const stage = path.join(home, 'rt', 'stage');
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => (l.split(' ')[4] ?? '').startsWith(stage));
  assert.deepEqual(mounts, [], 'no stage mount visible on the host');
});

test('overlay: a write waits in runs diff, reaches the workspace only on runs apply, owned by the user', { skip }, async () => {
  const { home, ws } = fresh({ 'old.txt': 'old\n' });
  const r = await clawpod(['exec', '--allow-degraded', '--', 'sh', '-c', 'echo hello pod > /workspace/new.txt && echo more >> old.txt'], { home, cwd: ws });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.runId, r.stderr);
  assert.equal(fs.existsSync(path.join(ws, 'new.txt')), false, 'not in the workspace before apply');
  assert.equal(fs.readFileSync(path.join(ws, 'old.txt'), 'utf8'), 'old\n');
  const diff = await clawpod(['runs', 'diff', r.runId], { home, cwd: ws });
  assert.equal(diff.code, 0, diff.stderr);
  assert.match(diff.stdout, /^\+\+\+ b\/new\.txt$/m);
  assert.match(diff.stdout, /^\+hello pod$/m);
  assert.match(diff.stdout, /^\+more$/m);
  const apply = await clawpod(['runs', 'apply', r.runId], { home, cwd: ws });
  assert.equal(apply.code, 0, apply.stderr);
  assert.equal(fs.readFileSync(path.join(ws, 'new.txt'), 'utf8'), 'hello pod\n');
  assert.equal(fs.readFileSync(path.join(ws, 'old.txt'), 'utf8'), 'old\nmore\n');
  for (const f of ['new.txt', 'old.txt']) {
    const st = fs.statSync(path.join(ws, f));
    assert.deepEqual([st.uid, st.gid], [uid, gid], `${f} is owned by ${USER}`);
  }
});

test('copy fallback (forced as if the kernel refused the unprivileged overlay): same review cycle, recorded as degraded', { skip }, async () => {
  const { home, ws } = fresh({ 'a.txt': 'a\n', 'sub/s.txt': 's\n', 'keep.txt': 'k\n' });
  const script = 'echo b >> a.txt && echo n > n.txt && rm -r sub && ln -s a.txt link && chmod 755 keep.txt';
  const r = await clawpod(['exec', '--allow-degraded', '--', 'sh', '-c', script], { home, cwd: ws, env: { CLAWPOD_WORKSPACE_COPY: '1' } });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.runId, r.stderr);
  const degraded = auditEvents(home, r.runId)
    .filter((e) => e.type === 'guard.degraded')
    .map((e) => e.data.guard);
  assert.ok(degraded.includes('workspace overlay'), `copy mode is named in the audit: ${degraded}`);
  assert.deepEqual(fs.readdirSync(ws).sort(), ['a.txt', 'keep.txt', 'sub'], 'the workspace is untouched before apply');
  const diff = await clawpod(['runs', 'diff', r.runId], { home, cwd: ws });
  assert.match(diff.stdout, /^\+b$/m);
  assert.match(diff.stdout, /^\+\+\+ b\/n\.txt$/m);
  assert.match(diff.stdout, /deleted file mode 100644\n[^]*sub\/s\.txt/);
  assert.match(diff.stdout, /new file mode 120000/);
  assert.match(diff.stdout, /old mode 100644\nnew mode 100755/);
  assert.doesNotMatch(diff.stdout, /keep\.txt\n---/, 'an unchanged file is no content change');
  const apply = await clawpod(['runs', 'apply', r.runId], { home, cwd: ws });
  assert.equal(apply.code, 0, apply.stderr);
  assert.equal(fs.readFileSync(path.join(ws, 'a.txt'), 'utf8'), 'a\nb\n');
  assert.equal(fs.readlinkSync(path.join(ws, 'link')), 'a.txt');
  assert.equal(fs.existsSync(path.join(ws, 'sub')), false);
  assert.equal(fs.statSync(path.join(ws, 'keep.txt')).mode & 0o777, 0o755);
});

test('the wall clock still works without cgroups: 124, limit.hit timeout, the pod tree gone', { skip }, async () => {
  const { home, ws } = fresh();
  const policy = policyFile('version: 1\nresources:\n  timeout: 2s\n  disk: 16Mi\n');
  const r = await clawpod(['exec', '--allow-degraded', '--policy', policy, '--', 'sh', '-c', 'setsid sleep 1234 & sleep 30'], { home, cwd: ws });
  assert.equal(r.code, 124, r.stderr);
  assert.ok(r.runId, r.stderr);
  const hits = auditEvents(home, r.runId)
    .filter((e) => e.type === 'limit.hit')
    .map((e) => e.data.cap);
  assert.deepEqual(hits, ['timeout']);
  await eventually(() => userProcesses('sleep 1234').length === 0, 3000);
  assert.deepEqual(userProcesses('sleep 1234'), [], 'the setsid child died with the pod');
});

test('doctor lists the caps as MISSING and names a fix', { skip }, async () => {
  const { home, ws } = fresh();
  const r = await clawpod(['doctor'], { home, cwd: ws });
  assert.equal(r.code, 0, `caps alone do not make doctor fail:\n${r.stdout}${r.stderr}`);
  const lines = r.stdout.split('\n');
  for (const cap of ['memory cap', 'cpu cap', 'pids cap']) {
    const i = lines.findIndex((l) => new RegExp(`^\\s*MISSING\\s+${cap}\\b`).test(l));
    assert.ok(i >= 0, `doctor lists the ${cap} as MISSING:\n${r.stdout}`);
    assert.match(lines[i + 1] ?? '', /^\s+fix: \S/, `doctor names a fix for the ${cap}`);
  }
  assert.match(r.stdout, /unless --allow-degraded/);
  const prelude = path.join(path.dirname(path.dirname(bin)), 'build', 'clawpod-podinit');
  const line = lines.find((l) => /\bpod prelude\b/.test(l)) ?? '';
  assert.ok(/^\s*active\s/.test(line) && line.trimEnd().endsWith(prelude), `the prelude of the checkout it runs from: ${line}`);
});

test("the pod cannot see or signal the user's other processes", { skip }, async () => {
  const { home, ws } = fresh();
  const host = spawn('runuser', ['-u', USER, '--', 'sleep', '987'], { stdio: 'ignore' });
  let pid = 0;
  try {
    assert.ok(await eventually(() => userProcesses('sleep 987').length > 0, 3000), "control: the host sees the user's sleep");
    pid = Number(userProcesses('sleep 987')[0].trim().split(/\s+/)[0]);
    // The quotes keep the word out of the command line that ps shows inside the pod.
    const script = `ps -eo args; cat /proc/[0-9]*/cmdline | tr '\\0' ' '; echo; kill -0 ${pid} 2>/dev/null && echo SIG""NALLED; true`;
    const r = await clawpod(['exec', '--allow-degraded', '--', 'sh', '-c', script], { home, cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ps -eo args/, 'control: the pod sees its own processes');
    assert.doesNotMatch(r.stdout, /sleep 987/);
    assert.doesNotMatch(r.stdout, /SIGNALLED/);
  } finally {
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    host.kill('SIGKILL');
  }
});

test('unprivileged, no cgroups: the CPU count still follows cpus (affinity), and no cgroup tree is shown', { skip }, async () => {
  const { home, ws } = fresh();
  const script = 'nproc; python3 -c "import os; print(os.cpu_count(), len(os.sched_getaffinity(0)))"; ls -A /sys/fs/cgroup 2>&1 | wc -l; cat /proc/self/cgroup';
  const r = await clawpod(['exec', '--allow-degraded', '--', 'sh', '-c', script], { home, cwd: ws });
  assert.equal(r.code, 0, r.stderr);
  const [nproc, py, cgEntries, ...cgroup] = r.stdout.trim().split('\n');
  assert.equal(nproc, '1', 'nproc under the default 1 CPU');
  assert.equal(py, '1 1', 'python os.cpu_count() and sched_getaffinity');
  assert.equal(cgEntries.trim(), '1', "no /sys/fs/cgroup (only ls's error line): nothing delegates cgroups here");
  assert.deepEqual(
    cgroup.filter((l) => !l.endsWith(':/')),
    [],
    '/proc/self/cgroup shows only "/"',
  );
});
