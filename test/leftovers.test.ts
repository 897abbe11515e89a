// What a clawpod killed with SIGKILL leaves is reaped by the next one, files included (the
// run's egress socket and CA certificate), and "is its owner still alive?" is never answered by
// a pid alone: a run or pod from another boot, a pid reused by another process, or a zombie
// all count as dead. Needs root (/run/clawpod, pod uids, cgroups).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { AuditWriter } from '../src/audit/chain.js';
import { openStore } from '../src/store/runs.js';
import { cli, eventually, IS_ROOT, podUidOf, policyFile, residue, tmpDir, workspace } from './helpers.js';

const skip = IS_ROOT ? false : 'needs root: the privileged pod path';
const EGRESS = '/run/clawpod/egress';
const PODS = '/run/clawpod/pods';
const BOOT = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();

const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

/** A live process that is not clawpod (the "reused pid"). */
function bystander(): ChildProcess {
  const c = spawn('sleep', ['300'], { stdio: 'ignore' });
  children.push(c);
  return c;
}

function startTime(pid: number): string {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

test("SIGKILL mid-run with egress: the next clawpod removes the run's socket and CA too", { skip }, async () => {
  const home = tmpDir('home');
  const ws = workspace();
  const policy = policyFile(
    [
      'version: 1',
      'network:',
      '  allow: ["svc.test:9"]',
      '  hosts: { svc.test: 127.0.0.1 }',
      'secrets:',
      '  - { name: SVC_TOKEN, from: env:CLAWPOD_LEFTOVER_TOKEN, hosts: ["svc.test:9"] }',
    ].join('\n'),
  );
  let files: string[] = [];
  let missingWhileRunning: string[] | null = null;
  const r = await cli(['exec', '--policy', policy, '--workspace', ws, '--', 'sleep', '30'], {
    home,
    cwd: ws,
    env: { CLAWPOD_LEFTOVER_TOKEN: 'tok-leftover' },
    onSpawn: (child) => {
      let seen = '';
      child.stderr?.on('data', (d) => {
        seen += d;
        const id = seen.match(/clawpod: run (r-[\w-]+)/)?.[1];
        if (id && files.length === 0) {
          files = [path.join(EGRESS, `${id}.sock`), path.join(EGRESS, `${id}-ca.pem`)];
          setTimeout(() => {
            // Checked while it runs: once clawpod is dead, any other clawpod on this host (the
            // suite runs many) may reap the pod and its egress files before this test looks.
            missingWhileRunning = files.filter((f) => !fs.existsSync(f));
            child.kill('SIGKILL');
          }, 300);
        }
      });
    },
  });
  assert.equal(r.code, 137);
  assert.ok(r.runId, r.stderr);
  assert.deepEqual(missingWhileRunning, [], 'the run had its socket and CA while it ran');
  const list = await cli(['runs', 'list'], { home });
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, new RegExp(`^${r.runId}\\s+interrupted\\b`, 'm'));
  const uid = podUidOf(home, r.runId);
  await eventually(() => residue(r.runId!, uid).length === 0);
  assert.deepEqual(residue(r.runId, uid), [], 'no process, cgroup, record, uid lock or egress file left');
});

test('a run still "running" whose pid is alive but not its clawpod is closed as interrupted', { skip }, async () => {
  const home = tmpDir('home');
  const other = bystander();
  const zombieParent = spawn('sh', ['-c', 'sleep 0.05 & echo $!; exec sleep 300'], { stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(zombieParent);
  const zombie = Number(await new Promise<string>((r) => zombieParent.stdout!.once('data', (d) => r(String(d)))));
  await eventually(() => /\) Z /.test(fs.readFileSync(`/proc/${zombie}/stat`, 'utf8')), 3000);
  const pid = other.pid!;
  const store = openStore(path.join(home, 'clawpod.db'));
  // Each a run that started (its chain has run.start): one that never did is dropped, not closed.
  const run = (id: string, extra: Record<string, unknown>) => {
    const dir = path.join(home, 'runs', id);
    fs.mkdirSync(dir, { recursive: true });
    const w = AuditWriter.create(path.join(dir, 'audit.jsonl'), id);
    w.append('run.start', { kind: 'exec' });
    w.close();
    store.createRun({
      id,
      kind: 'exec',
      status: 'running',
      command: ['true'],
      workspace: '',
      workspaceMode: 'none',
      policySource: 'test',
      backend: 'bwrap',
      auditPath: path.join(dir, 'audit.jsonl'),
      runDir: dir,
      ...extra,
    });
  };
  run('r-other-boot', { pid, hostBootId: '00000000-0000-0000-0000-000000000000', pidStart: startTime(pid) });
  run('r-reused-pid', { pid, hostBootId: BOOT, pidStart: String(Number(startTime(pid)) - 1) });
  run('r-zombie', { pid: zombie, hostBootId: BOOT, pidStart: startTime(zombie) });
  run('r-alive', { pid, hostBootId: BOOT, pidStart: startTime(pid) });
  store.close();
  const list = await cli(['runs', 'list'], { home });
  assert.equal(list.code, 0, list.stderr);
  const status = (id: string) => list.stdout.match(new RegExp(`^${id}\\s+(\\w+)`, 'm'))?.[1];
  assert.equal(status('r-other-boot'), 'interrupted', 'recorded under another boot');
  assert.equal(status('r-reused-pid'), 'interrupted', 'the pid now belongs to another process');
  assert.equal(status('r-zombie'), 'interrupted', 'a zombie is dead');
  assert.equal(status('r-alive'), 'running', 'the control: its process really is alive');
});

test('a pod record from another boot or a reused pid is reaped with its files; a live one is not', { skip }, async () => {
  const home = tmpDir('home');
  const other = bystander();
  const pid = other.pid!;
  const tag = `r-left-${process.pid}`;
  const rec = (id: string, extra: Record<string, unknown>) => {
    fs.writeFileSync(path.join(PODS, `${id}.json`), JSON.stringify({ id, uid: null, cgroupDirs: [], ownerPid: pid, ownerStart: startTime(pid), ...extra }));
    for (const f of [`${id}.sock`, `${id}-ca.pem`]) fs.writeFileSync(path.join(EGRESS, f), 'x');
  };
  fs.mkdirSync(EGRESS, { recursive: true });
  rec(`${tag}-boot`, { bootId: '00000000-0000-0000-0000-000000000000' });
  rec(`${tag}-reused`, { bootId: BOOT, ownerStart: '1' });
  rec(`${tag}-live`, { bootId: BOOT });
  // Files of a run killed before its pod record was written: stale after a minute.
  const stray = path.join(EGRESS, `${tag}-stray.sock`);
  fs.writeFileSync(stray, 'x');
  const old = new Date(Date.now() - 10 * 60_000);
  fs.utimesSync(stray, old, old);
  const halfWritten = path.join(PODS, `${tag}-half.json.tmp`);
  fs.writeFileSync(halfWritten, '{"id":');
  fs.utimesSync(halfWritten, old, old);
  const fresh = path.join(EGRESS, `${tag}-fresh.sock`);
  fs.writeFileSync(fresh, 'x');
  try {
    const r = await cli(['runs', 'list'], { home });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.existsSync(path.join(PODS, `${tag}-boot.json`)), false, "the other boot's record was reaped");
    assert.equal(fs.existsSync(path.join(EGRESS, `${tag}-boot.sock`)), false, 'and its socket');
    assert.equal(fs.existsSync(path.join(EGRESS, `${tag}-boot-ca.pem`)), false, 'and its CA');
    assert.equal(fs.existsSync(path.join(PODS, `${tag}-reused.json`)), false, "a reused pid's record was reaped");
    assert.equal(fs.existsSync(path.join(EGRESS, `${tag}-reused.sock`)), false, 'and its socket');
    assert.equal(fs.existsSync(halfWritten), false, 'a half-written record of a killed clawpod is removed');
    assert.equal(fs.existsSync(stray), false, 'a stale egress file with no pod is removed');
    assert.equal(fs.existsSync(path.join(PODS, `${tag}-live.json`)), true, 'a live owner keeps its record');
    assert.equal(fs.existsSync(path.join(EGRESS, `${tag}-live.sock`)), true, 'and its files');
    assert.equal(fs.existsSync(fresh), true, 'a fresh file (a run starting right now) is left alone');
  } finally {
    for (const f of fs.readdirSync(PODS).filter((n) => n.startsWith(tag))) fs.rmSync(path.join(PODS, f), { force: true });
    for (const f of fs.readdirSync(EGRESS).filter((n) => n.startsWith(tag))) fs.rmSync(path.join(EGRESS, f), { force: true });
  }
});
