// The prelude's spawner (native/spawn.c, pod/spawn.ts) against real processes: the child gets
// exactly the descriptors it is given, clean signal state, its whole output before 'close', and
// its own exit; clawpod's other children keep theirs.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type PodChild, spawnPrelude } from './spawn.js';
import { PodError } from './types.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const SH = '/bin/sh';
// spawnPrelude looks for the addon beside the program it starts: a temp dir links both.
const BUILD = path.join(ROOT, 'build');
const shLink = (() => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-spawn-'));
  const link = path.join(dir, 'sh');
  fs.symlinkSync(SH, link);
  fs.symlinkSync(path.join(BUILD, 'clawpod-spawn.node'), path.join(dir, 'clawpod-spawn.node'));
  return link;
})();
after(() => fs.rmSync(path.dirname(shLink), { recursive: true, force: true }));

async function run(
  script: string,
  stdio: Parameters<typeof spawnPrelude>[2],
): Promise<{ out: string; code: number | null; signal: string | null; child: PodChild }> {
  const child = await spawnPrelude(shLink, ['-c', script], stdio);
  let out = '';
  child.stdout?.on('data', (b: Buffer) => {
    out += b.toString();
  });
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ out, code, signal, child })));
}

// ls's own table, as the shell hands it on: its descriptor on the directory it lists (a
// /proc/PID/fd) is filtered out.
const FDS = 'exec ls -l /proc/self/fd/';
const fdTable = (out: string): Record<string, string> =>
  Object.fromEntries(
    out
      .split('\n')
      .map((l) => l.match(/ (\d+) -> (.*)$/))
      .filter((m): m is RegExpMatchArray => m !== null && !/^\/proc\/\d+\/fd$/.test(m[2]))
      .map((m) => [m[1], m[2]]),
  );

test('the child gets exactly the descriptors it is given, at their numbers; gaps are closed', async () => {
  const file = path.join(path.dirname(shLink), 'given');
  fs.writeFileSync(file, 'x');
  const fd = fs.openSync(file, 'r');
  try {
    const { out, code } = await run(FDS, ['ignore', 'pipe', 'ignore', 'ignore', fd]);
    assert.equal(code, 0);
    const fds = fdTable(out);
    const given = Object.keys(fds);
    assert.deepEqual(given.sort(), ['0', '1', '2', '4']);
    assert.equal(fds['0'], '/dev/null');
    assert.equal(fds['2'], '/dev/null');
    assert.match(fds['1'], /^socket:/);
    assert.equal(fds['4'], file);
  } finally {
    fs.closeSync(fd);
  }
});

test("clawpod's own inheritable descriptors never reach the child", () => {
  // A Node whose fd 3 is inheritable (no close-on-exec), as a parent process may leave one: the
  // child it spawns sees only what it gives.
  const script = `
    const { spawnPrelude } = await import(${JSON.stringify(path.join(ROOT, 'dist/src/pod/spawn.js'))});
    const c = await spawnPrelude(${JSON.stringify(shLink)}, ['-c', ${JSON.stringify(FDS)}], ['ignore', 'pipe', 'ignore']);
    let out = ''; c.stdout.on('data', (b) => { out += b; });
    c.on('close', () => process.stdout.write(out));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit', 'pipe'], encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.deepEqual(Object.keys(fdTable(r.stdout)).sort(), ['0', '1', '2']);
});

test('the child starts with no signal blocked and none ignored but the C library pair', async () => {
  // Node ignores SIGPIPE; the child must not inherit that (a pod's `yes | head` would spin).
  const { out } = await run('grep -E "^Sig(Blk|Ign)" /proc/self/status', ['ignore', 'pipe', 'ignore']);
  const field = (k: string) => BigInt(`0x${out.match(new RegExp(`^${k}:\\s*([0-9a-f]+)`, 'm'))?.[1]}`);
  assert.equal(field('SigBlk'), 0n);
  // glibc's posix_spawn leaves its internal 32 and 33 ignored; the prelude resets them (podinit.c).
  assert.equal(field('SigIgn') & ~(3n << 31n), 0n);
});

test("the child's whole output arrives before 'close', with its exit code or signal", async () => {
  const big = await run('head -c 3000000 /dev/zero | tr "\\0" a; exit 7', ['ignore', 'pipe', 'ignore']);
  assert.equal(big.out.length, 3_000_000);
  assert.equal(big.code, 7);
  assert.equal(big.signal, null);
  const killed = await run('kill -USR1 $$; sleep 5', ['ignore', 'pipe', 'ignore']);
  assert.equal(killed.code, null);
  assert.equal(killed.signal, 'SIGUSR1');
  // Reaped: its pid may be anyone's now, so it is never signalled again.
  assert.equal(killed.child.kill('SIGKILL'), false);
});

test('kill reaches a running child; a stop of many at once reaps each once', async () => {
  const kids = await Promise.all(Array.from({ length: 20 }, () => spawnPrelude(shLink, ['-c', 'sleep 30'], ['ignore', 'pipe', 'ignore'])));
  const ends = kids.map((c) => new Promise<string | null>((r) => c.on('close', (_code, sig) => r(sig))));
  for (const c of kids) assert.equal(c.kill('SIGTERM'), true);
  assert.deepEqual(
    await Promise.all(ends),
    kids.map(() => 'SIGTERM'),
  );
});

test("clawpod's other children keep their own exit (the reaper waits only for its pids)", async () => {
  const other = spawn(SH, ['-c', 'exit 5'], { stdio: 'ignore' });
  const otherExit = new Promise<number | null>((r) => other.on('exit', (code) => r(code)));
  const mine = await run('exit 3', ['ignore', 'pipe', 'ignore']);
  assert.equal(mine.code, 3);
  assert.equal(await otherExit, 5);
});

test('a program that cannot be started is one PodError, and nothing is left open', async () => {
  const before = fs.readdirSync('/proc/self/fd').length;
  const missing = path.join(path.dirname(shLink), 'no-such-prelude');
  fs.symlinkSync('/nonexistent/prelude', missing);
  await assert.rejects(spawnPrelude(missing, [], ['ignore', 'pipe', 'pipe', 'ignore', 'pipe']), (e: unknown) => {
    assert.ok(e instanceof PodError);
    assert.match((e as Error).message, /cannot start .*no-such-prelude: .*No such file/);
    return true;
  });
  assert.equal(fs.readdirSync('/proc/self/fd').length, before);
  assert.equal(process.listenerCount('SIGCHLD'), 0);
});

test('children that end before their start is even known here are reaped with their own codes', async () => {
  // The start completes on the main thread after the exec; `exit` may be over by then, its
  // SIGCHLD already handled when the pid was not yet known.
  const ends = await Promise.all(
    Array.from({ length: 40 }, async (_, i) => {
      const c = await spawnPrelude(shLink, ['-c', `exit ${i}`], i % 2 ? ['ignore', 'ignore', 'ignore'] : ['ignore', 'pipe', 'ignore']);
      return new Promise<number | null>((r) => c.on('close', (code) => r(code)));
    }),
  );
  assert.deepEqual(
    ends,
    Array.from({ length: 40 }, (_, i) => i),
  );
});

test("the prelude's parent-death signal comes when clawpod dies, and not before", { skip: !fs.existsSync('/usr/bin/python3') && 'needs python3' }, async () => {
  // The start runs on a threadpool thread, and PR_SET_PDEATHSIG follows the thread that started
  // the child: that thread must live as long as clawpod does, and its death be clawpod's.
  const marker = path.join(path.dirname(shLink), `pdeath-${process.pid}`);
  const child = `import ctypes, os, time; ctypes.CDLL(None).prctl(1, 15); open(${JSON.stringify(marker)}, 'w').write(str(os.getpid())); time.sleep(60)`;
  const script = `
    const { spawnPrelude } = await import(${JSON.stringify(path.join(ROOT, 'dist/src/pod/spawn.js'))});
    const fs = await import('node:fs');
    // Beside the addon's link (shLink's dir), where spawnPrelude looks for it.
    fs.symlinkSync('/usr/bin/python3', ${JSON.stringify(`${marker}.py3`)});
    await spawnPrelude(${JSON.stringify(`${marker}.py3`)}, ['-c', ${JSON.stringify(child)}], ['ignore', 'ignore', 'inherit']);
    setInterval(() => {}, 1000);`;
  const parent = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    let pid = 0;
    for (let i = 0; i < 300 && !pid; i++) {
      await new Promise((r) => setTimeout(r, 20));
      if (fs.existsSync(marker)) pid = Number(fs.readFileSync(marker, 'utf8')) || 0;
    }
    assert.ok(pid > 0, 'the child started');
    // Two seconds of clawpod's life (its threadpool busy meanwhile): the child lives on.
    await Promise.all(Array.from({ length: 8 }, () => fs.promises.readFile('/proc/self/stat')));
    await new Promise((r) => setTimeout(r, 2000));
    assert.ok(fs.existsSync(`/proc/${pid}`), 'alive while clawpod lives');
    parent.kill('SIGKILL');
    let gone = false;
    for (let i = 0; i < 100 && !gone; i++) {
      await new Promise((r) => setTimeout(r, 20));
      gone = !fs.existsSync(`/proc/${pid}`) || /\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
    }
    assert.ok(gone, 'gone once clawpod is');
  } finally {
    parent.kill('SIGKILL');
  }
});
