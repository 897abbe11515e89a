// `runs apply` under attack: a process keeps swapping a parent directory of the change set's
// files for a symlink to a directory outside the workspace while apply runs. Nothing outside may
// ever be created, written, deleted or chmodded; files apply writes belong to the workspace
// owner; and apply refuses while a live pod holds the workspace writable.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { applyChangeSet } from '../src/workspace/apply.js';
import { takeManifest, walkEntries } from '../src/workspace/manifest.js';
import { cli, eventually, IS_ROOT, policyFile, tmpDir, workspace } from './helpers.js';

const N = 100; // files per kind: enough that the swap lands inside apply's window
const ATTEMPTS = 30;
const BUDGET_MS = 25_000; // at least 6 attempts, then as many as fit (a loaded host gets fewer)

// On tmpfs: on a disk the racer's rename storm makes every fsync of apply wait for the journal,
// and the attempts crawl. The race itself does not depend on the filesystem.
const SHM = fs.existsSync('/dev/shm') ? '/dev/shm' : undefined;
const shmDirs: string[] = [];
after(() => {
  for (const d of shmDirs) fs.rmSync(d, { recursive: true, force: true });
});
function raceDir(prefix: string): string {
  if (!SHM) return tmpDir(prefix);
  const d = fs.mkdtempSync(path.join(SHM, `clawpod-${prefix}-`));
  shmDirs.push(d);
  return d;
}
const names = (p: string) => Array.from({ length: N }, (_, i) => `${p}${String(i).padStart(3, '0')}`);

/** Every entry below dir with its type, mode, owner and bytes: "untouched" asserted exactly. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = { '.': String(fs.lstatSync(dir).mode) };
  for (const [p, e] of walkEntries(dir)) {
    const st = fs.lstatSync(path.join(dir, p));
    const data = e.t === 'f' ? fs.readFileSync(path.join(dir, p)).toString('hex') : (e.target ?? '');
    out[p] = `${e.t} ${e.mode.toString(8)} ${st.uid}:${st.gid} ${e.mtimeMs} ${data}`;
  }
  return out;
}

/** A workspace with lib/{f,m,d}NNN and a change set that writes f*, chmods m*, deletes d*. */
function raceFixture(victim: string) {
  const base = raceDir('race');
  const ws = path.join(base, 'ws');
  const tree = path.join(base, 'cs', 'tree');
  fs.mkdirSync(path.join(ws, 'lib'), { recursive: true, mode: 0o755 });
  fs.chmodSync(path.join(ws, 'lib'), 0o755);
  for (const n of [...names('f'), ...names('m'), ...names('d')]) fs.writeFileSync(path.join(ws, 'lib', n), 'orig\n', { mode: 0o644 });
  const manifest = takeManifest(ws);
  fs.mkdirSync(path.join(tree, 'lib'), { recursive: true });
  fs.chmodSync(path.join(tree, 'lib'), 0o750); // a directory mode change too: chmod is raced as well
  for (const n of names('f')) fs.writeFileSync(path.join(tree, 'lib', n), 'written by the pod\n', { mode: 0o644 });
  for (const n of names('m')) {
    fs.writeFileSync(path.join(tree, 'lib', n), 'orig\n');
    fs.chmodSync(path.join(tree, 'lib', n), 0o755);
  }
  fs.writeFileSync(
    path.join(base, 'cs', 'deleted.lst'),
    names('d')
      .map((n) => `lib/${n}\0`)
      .join(''),
  );
  return { base, ws, cs: path.join(base, 'cs'), manifest };
}

/**
 * Swaps ws/lib for a symlink to victim and back, as fast as it can, until killed. It starts once
 * apply's first deletion shows (as an attacker watching the workspace would), so the pre-checks
 * pass and the swaps land inside the writes.
 */
function startRacer(ws: string, victim: string): Promise<ChildProcess> {
  const script = `
    const fs = require('fs'); process.chdir(${JSON.stringify(ws)});
    fs.symlinkSync(${JSON.stringify(victim)}, 'lib.lnk');
    process.stdout.write('go\\n');
    while (fs.existsSync('lib/${names('d')[N - 1]}'));
    for (;;) {
      try { fs.renameSync('lib', 'lib.real'); fs.renameSync('lib.lnk', 'lib'); } catch {}
      try { fs.renameSync('lib', 'lib.lnk'); fs.renameSync('lib.real', 'lib'); } catch {}
    }`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve) => child.stdout!.once('data', () => resolve(child)));
}

async function stopRacer(child: ChildProcess, ws: string): Promise<void> {
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
  // Put lib back as the real directory, wherever the racer left it. A lib that is not the
  // symlink while lib.real exists was made by apply (force creates missing parents): inside.
  if (!fs.existsSync(path.join(ws, 'lib.real'))) return;
  const lib = path.join(ws, 'lib');
  if (fs.lstatSync(lib, { throwIfNoEntry: false })?.isSymbolicLink()) fs.unlinkSync(lib);
  else fs.rmSync(lib, { recursive: true, force: true });
  fs.renameSync(path.join(ws, 'lib.real'), lib);
}

describe('apply against a parent directory swapped for a symlink mid-apply', () => {
  test('nothing outside the workspace is ever created, written, deleted or chmodded', async () => {
    const victim = raceDir('victim');
    for (const n of [...names('f'), ...names('m'), ...names('d')]) fs.writeFileSync(path.join(victim, n), 'victim\n', { mode: 0o644 });
    const before = snapshot(victim);
    const outcomes: string[] = [];
    const deadline = Date.now() + BUDGET_MS;
    for (let i = 0; i < ATTEMPTS && (i < 6 || Date.now() < deadline); i++) {
      const f = raceFixture(victim);
      const parentBefore = fs.readdirSync(f.base).sort();
      const racer = await startRacer(f.ws, victim);
      // Every other attempt takes the helper's fallback (a walk of O_NOFOLLOW opens, no openat2).
      if (i % 2 === 1) process.env.CLAWPOD_WSAPPLY_WALK = '1';
      try {
        applyChangeSet(f.cs, f.ws, f.manifest, { force: true });
        outcomes.push('applied');
      } catch (e) {
        outcomes.push((e as Error).message.split(' ').slice(0, 6).join(' '));
      } finally {
        delete process.env.CLAWPOD_WSAPPLY_WALK;
        await stopRacer(racer, f.ws);
      }
      const changed = Object.keys({ ...before, ...snapshot(victim) }).filter((k) => before[k] !== snapshot(victim)[k]);
      assert.deepEqual(
        changed,
        [],
        `attempt ${i + 1}: apply touched the victim directory outside the workspace: ${changed.slice(0, 5).join(', ')} (outcomes so far: ${outcomes.join(' | ')})`,
      );
      // No temp file (or anything else) next to the workspace either.
      assert.deepEqual(fs.readdirSync(f.base).sort(), parentBefore);
    }
    // The swaps really landed inside apply: some attempts stopped on a symlinked or vanished lib.
    assert.ok(
      outcomes.some((o) => o.startsWith('refusing to apply: lib')),
      `the racer never hit: ${outcomes.join(' | ')}`,
    );
  });

  test('without a racer the same change set applies fully (the race test exercises real work)', () => {
    const f = raceFixture(raceDir('victim'));
    applyChangeSet(f.cs, f.ws, f.manifest);
    assert.equal(fs.readFileSync(path.join(f.ws, 'lib', 'f000'), 'utf8'), 'written by the pod\n');
    assert.equal(fs.statSync(path.join(f.ws, 'lib', 'm000')).mode & 0o777, 0o755);
    assert.equal(fs.statSync(path.join(f.ws, 'lib')).mode & 0o777, 0o750);
    assert.ok(!fs.existsSync(path.join(f.ws, 'lib', 'd000')));
  });
});

describe('apply through the CLI', { skip: IS_ROOT ? false : 'needs root to chown the workspace' }, () => {
  const home = tmpDir('home');
  const rw = policyFile('version: 1\nfilesystem: { workspace: rw }\n');
  const live: ChildProcess[] = [];
  after(() => {
    for (const c of live) c.kill('SIGKILL');
  });

  test('files and directories apply writes belong to the workspace owner, not root', async () => {
    const ws = workspace({ 'a.txt': 'a\n' });
    fs.chownSync(ws, 65534, 65534);
    fs.chownSync(path.join(ws, 'a.txt'), 65534, 65534);
    const r = await cli(['exec', '--', 'sh', '-c', 'echo b > a.txt; mkdir d; echo n > d/n.txt'], { home, cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    const apply = await cli(['runs', 'apply', r.runId!], { home });
    assert.equal(apply.code, 0, apply.stderr);
    assert.equal(fs.readFileSync(path.join(ws, 'a.txt'), 'utf8'), 'b\n');
    for (const p of ['a.txt', 'd', 'd/n.txt']) {
      const st = fs.lstatSync(path.join(ws, p));
      assert.deepEqual([p, st.uid, st.gid], [p, 65534, 65534]);
    }
    assert.deepEqual(
      fs.readdirSync(path.dirname(ws)).filter((n) => n.includes('.clawpod-')),
      [],
    );
  });

  test('apply refuses (one line, exit 125) while a live pod holds the workspace writable', async () => {
    const ws = workspace({ 'a.txt': 'a\n' });
    const r = await cli(['exec', '--', 'sh', '-c', 'echo from-overlay > a.txt'], { home, cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    let pid = -1;
    const holder = cli(['exec', '--policy', rw, '--', 'sleep', '5'], {
      home,
      cwd: ws,
      onSpawn: (c) => {
        pid = c.pid!;
        live.push(c);
      },
    });
    const recorded = () =>
      fs.readdirSync('/run/clawpod/pods').some((n) => {
        try {
          return JSON.parse(fs.readFileSync(path.join('/run/clawpod/pods', n), 'utf8')).ownerPid === pid;
        } catch {
          return false;
        }
      });
    assert.ok(await eventually(recorded, 10_000), 'the rw pod started');
    const refused = await cli(['runs', 'apply', r.runId!], { home });
    assert.equal(refused.code, 125, `apply went ahead while a pod held the workspace rw: ${refused.stdout}${refused.stderr}`);
    assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
    assert.match(refused.stderr, /live pod .*writable/);
    assert.equal(fs.readFileSync(path.join(ws, 'a.txt'), 'utf8'), 'a\n');
    assert.equal((await holder).code, 0);
    // Once the pod is gone its record is too, and apply goes ahead.
    const ok = await cli(['runs', 'apply', r.runId!], { home });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(fs.readFileSync(path.join(ws, 'a.txt'), 'utf8'), 'from-overlay\n');
  });

  test('an rw extra mount over a parent of the workspace blocks apply too', async () => {
    const outer = tmpDir('outer');
    const ws = path.join(outer, 'ws');
    fs.mkdirSync(ws);
    fs.writeFileSync(path.join(ws, 'a.txt'), 'a\n');
    const r = await cli(['exec', '--', 'sh', '-c', 'echo new > a.txt'], { home, cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    const mount = policyFile(`version: 1\nfilesystem:\n  workspace: none\n  mounts:\n    - { host: ${outer}, path: /data, mode: rw }\n`);
    let pid = -1;
    const holder = cli(['exec', '--policy', mount, '--', 'sleep', '4'], {
      home,
      cwd: tmpDir('elsewhere'),
      onSpawn: (c) => {
        pid = c.pid!;
        live.push(c);
      },
    });
    const recorded = () =>
      fs.readdirSync('/run/clawpod/pods').some((n) => {
        try {
          return JSON.parse(fs.readFileSync(path.join('/run/clawpod/pods', n), 'utf8')).ownerPid === pid;
        } catch {
          return false;
        }
      });
    assert.ok(await eventually(recorded, 10_000), 'the pod started');
    const refused = await cli(['runs', 'apply', r.runId!], { home });
    assert.equal(refused.code, 125, refused.stdout + refused.stderr);
    assert.match(refused.stderr, /live pod .*writable/);
    assert.equal((await holder).code, 0);
  });

  test('a stale record of a dead clawpod never blocks apply', async () => {
    const ws = workspace({ 'a.txt': 'a\n' });
    const r = await cli(['exec', '--', 'sh', '-c', 'echo new > a.txt'], { home, cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    const dead = spawn('true');
    await new Promise((resolve) => dead.once('exit', resolve));
    const rec = path.join('/run/clawpod/pods', `r-stale-${process.pid}.json`);
    fs.writeFileSync(
      rec,
      JSON.stringify({
        id: `r-stale-${process.pid}`,
        ownerPid: dead.pid,
        ownerStart: '1',
        uid: null,
        cgroupDirs: [],
        workspace: ws,
        workspaceMode: 'rw',
        rwMounts: [],
      }),
      { mode: 0o600 },
    );
    try {
      const ok = await cli(['runs', 'apply', r.runId!], { home });
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(fs.readFileSync(path.join(ws, 'a.txt'), 'utf8'), 'new\n');
    } finally {
      fs.rmSync(rec, { force: true });
    }
  });
});
