// Walls of the pod itself (issue 7): what a pod inherits from clawpod's caller (descriptors),
// what it can make the host hold (inodes, /dev, /dev/shm), a stage the prelude must refuse, a
// checked path swapped before it is mounted, and what the owner idmap grants on extra mounts.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { BIN, cli, IS_ROOT, policyFile, ROOT, tmpDir, workspace } from './helpers.js';

let home: string;
before(() => {
  home = tmpDir('home');
});

const listFds = `for f in /proc/self/fd/*; do n=\${f##*/}; t=$(readlink $f); [ "$n" -gt 2 ] && [ -n "$t" ] && echo "FD:$n:$t"; done; true`;

test('descriptors clawpod inherits from its caller never reach the pod (exec)', async () => {
  // A shell's `exec 300</`, a make jobserver pipe, an IDE's socket: none is close-on-exec.
  const script = `exec 300</ 301>${tmpDir('fd')}/x 302<>/dev/null; exec "$@"`;
  const r = spawnSync('bash', ['-c', script, 'bash', process.execPath, BIN, 'exec', '--', 'sh', '-c', listFds], {
    env: { PATH: process.env.PATH, CLAWPOD_HOME: home },
    cwd: workspace(),
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  // fd 3 is sh's own handle on /proc/self/fd while it lists it; nothing else may be open.
  const open = (r.stdout.match(/^FD:.*$/gm) ?? []).filter((l) => !/^FD:3:\/proc\/\d+\/fd$/.test(l));
  assert.deepEqual(open, [], r.stdout);
});

test('descriptors inherited by a process that starts a live pod never reach the pod', async () => {
  const driver = path.join(tmpDir('driver'), 'drive.mjs');
  fs.writeFileSync(
    driver,
    `
    import { createBwrapBackend } from '${ROOT}/dist/src/pod/bwrap.js';
    import { LivePod } from '${ROOT}/dist/src/pod/live.js';
    const rules = { resources: { cpus: 1, memoryBytes: 256 << 20, pids: 64, timeoutMs: 30000, diskBytes: 16 << 20 },
      workspace: 'none', mounts: [], network: { allow: [], deny: [], hosts: {} }, secrets: [], env: {}, tools: {}, source: 'test' };
    const backend = createBwrapBackend({ clawpodHome: process.env.CLAWPOD_HOME });
    const live = await LivePod.start(backend, { id: 'r-walls-' + process.pid, rules, workspace: null, changesDir: null,
      allowDegraded: false, stdio: 'pipe' }, () => {});
    const r = await live.exec(['sh', '-c', ${JSON.stringify(listFds)}]);
    process.stdout.write(r.stdout);
    await live.close();
  `,
  );
  const dirFd = fs.openSync('/', 'r');
  try {
    const child = spawn(process.execPath, [driver], {
      env: { PATH: process.env.PATH, CLAWPOD_HOME: home },
      stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', 'ignore', 'ignore', dirFd],
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => {
      out += d;
    });
    child.stderr!.on('data', (d) => {
      err += d;
    });
    const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
    assert.equal(code, 0, err);
    const open = (out.match(/^FD:.*$/gm) ?? []).filter((l) => !/^FD:3:\/proc\/\d+\/fd$/.test(l));
    assert.deepEqual(open, [], out);
  } finally {
    fs.closeSync(dirFd);
  }
});

test('/dev is read-only', async () => {
  const r = await cli(
    [
      'exec',
      '--',
      'sh',
      '-c',
      ['touch /dev/evil 2>/dev/null && echo DEV_WRITABLE', 'mkdir /dev/evil 2>/dev/null && echo DEV_MKDIR', 'echo ok > /dev/null && echo NULL_OK'].join('; '),
    ],
    { home },
  );
  assert.doesNotMatch(r.stdout, /DEV_WRITABLE|DEV_MKDIR/, r.stdout);
  assert.match(r.stdout, /NULL_OK/, r.stderr);
});

test('/dev/shm is on the capped stage: filling it is the disk cap', async () => {
  const policy = policyFile('version: 1\nresources: { disk: 16Mi }\n');
  const r = await cli(
    ['exec', '--policy', policy, '--', 'sh', '-c', 'dd if=/dev/zero of=/dev/shm/big bs=1M count=64 2>/dev/null; echo SHM:$(du -m /dev/shm/big | cut -f1)'],
    { home },
  );
  // Either the write is refused at the cap or the cap's kill ends the pod: never 64 MiB held.
  const shm = Number(r.stdout.match(/SHM:(\d+)/)?.[1] ?? 0);
  assert.ok(shm <= 16, `a 64 MiB write to /dev/shm kept ${shm} MiB under a 16Mi disk cap`);
  assert.ok(r.code === 137 ? /disk limit/.test(r.stderr) : shm > 0, r.stdout + r.stderr);
});

test('the stage has an inode cap: empty files cannot pass the disk cap', async () => {
  const policy = policyFile('version: 1\nresources: { disk: 16Mi }\n');
  const r = await cli(
    [
      'exec',
      '--policy',
      policy,
      '--',
      'sh',
      '-c',
      'cd /tmp && i=0; while [ $i -lt 20000 ]; do true > f$i 2>/dev/null || break; i=$((i+1)); done; echo MADE:$i',
    ],
    { home, timeoutMs: 120_000 },
  );
  const made = Number(r.stdout.match(/MADE:(\d+)/)?.[1] ?? -1);
  assert.ok(made > 100 && made < 20000, `made ${made} empty files under a 16Mi cap`);
});

test('the prelude itself refuses a stage of size 0 (tmpfs would make it unlimited)', { skip: !IS_ROOT && 'the prelude runs as root' }, () => {
  const stage = tmpDir('stage');
  const r = spawnSync(
    path.join(ROOT, 'build', 'clawpod-podinit'),
    ['--stage', stage, '--stage-size', '0', '--uid', '1800999999', '--gid', '1800999999', '--', '/bin/true'],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 125, r.stderr);
  assert.match(r.stderr, /stage size/);
});

test('a workspace swapped for a symlink after its check is never mounted', { skip: !IS_ROOT && 'needs root' }, async () => {
  // The secret stands in for a denied tree: clawpod's own home (its run store and audit logs).
  const secret = path.join(home, 'memory', 'SECRET-MARK');
  fs.mkdirSync(secret, { recursive: true });
  fs.writeFileSync(path.join(secret, 'marker'), 'SECRET-MARK\n');
  const parent = tmpDir('swap');
  const ws = path.join(parent, 'ws');
  fs.mkdirSync(ws);
  fs.writeFileSync(path.join(ws, 'ok'), 'fine\n');
  // The checked path itself flips between the real directory and a symlink to the secret.
  const flipper = spawn('sh', ['-c', `cd ${parent} && while :; do mv ws hold; ln -s ${secret} ws; rm ws; mv hold ws; sleep 0.03; done`], { stdio: 'ignore' });
  let leaked = 0;
  let ran = 0;
  let refused = 0;
  try {
    for (let i = 0; i < 40 && leaked === 0; i++) {
      const r = await cli(['exec', '--workspace', ws, '--', 'sh', '-c', 'cat /workspace/marker 2>/dev/null; ls /workspace'], { home });
      if (r.code === 0) ran++;
      else if (/changed|replaced|cannot be mounted|refusing to mount|pod set-up failed: open|does not exist|state directory/.test(r.stderr)) refused++;
      else assert.fail(`unexpected failure: ${r.code} ${r.stderr}`);
      if (/SECRET-MARK/.test(r.stdout)) leaked++;
    }
  } finally {
    flipper.kill('SIGKILL');
  }
  assert.equal(leaked, 0, `the denied tree was mounted as the workspace in ${leaked} of ${ran} runs`);
  assert.ok(ran > 0 && refused > 0, `ran ${ran}, refused ${refused}: the race was not exercised both ways`);
});

test('a read-only extra mount shows only what any local user could read', { skip: !IS_ROOT && 'needs root' }, async () => {
  // The workspace owner's 0600 file in a mounted tree: the idmap must not hand it to the pod.
  const data = tmpDir('data');
  fs.writeFileSync(path.join(data, 'private'), 'PRIVATE\n', { mode: 0o600 });
  fs.writeFileSync(path.join(data, 'public'), 'PUBLIC\n', { mode: 0o644 });
  const policy = policyFile(`version: 1\nfilesystem:\n  mounts:\n    - { host: ${data}, path: /data, mode: ro }\n`);
  const r = await cli(['exec', '--policy', policy, '--', 'sh', '-c', 'cat /data/public; cat /data/private 2>&1 || true'], { home });
  assert.match(r.stdout, /PUBLIC/, r.stdout + r.stderr);
  assert.doesNotMatch(r.stdout, /PRIVATE\n/, r.stdout);
});

test('apply writes only into the directory the run started from, never one renamed into its place', async () => {
  const parent = tmpDir('replace');
  const ws = path.join(parent, 'ws');
  fs.mkdirSync(ws);
  fs.writeFileSync(path.join(ws, 'a.txt'), 'a\n');
  const r = await cli(['exec', '--workspace', ws, '--', 'sh', '-c', 'echo pod > /workspace/new.txt'], { home });
  assert.equal(r.code, 0, r.stderr);
  // Whoever can write above the workspace swaps in a look-alike (same names, same content).
  fs.renameSync(ws, path.join(parent, 'orig'));
  fs.mkdirSync(ws);
  fs.writeFileSync(path.join(ws, 'a.txt'), 'a\n');
  const apply = await cli(['runs', 'apply', '--force', r.runId!], { home });
  assert.equal(apply.code, 125, apply.stdout + apply.stderr);
  assert.match(apply.stderr, /no longer the directory the run started from/);
  assert.equal(fs.existsSync(path.join(ws, 'new.txt')), false, 'apply wrote into the replacement');
  // Control: moved back, the same run applies.
  fs.rmSync(ws, { recursive: true });
  fs.renameSync(path.join(parent, 'orig'), ws);
  const again = await cli(['runs', 'apply', r.runId!], { home });
  assert.equal(again.code, 0, again.stderr);
  assert.equal(fs.readFileSync(path.join(ws, 'new.txt'), 'utf8'), 'pod\n');
});

test('stdin that is a directory (`< /`) never gives the pod the host filesystem', async () => {
  const mark = path.join(tmpDir('stdin'), 'planted');
  const r = spawnSync(
    'sh',
    [
      '-c',
      `exec "$@" < /`,
      'sh',
      process.execPath,
      BIN,
      'exec',
      '--',
      'sh',
      '-c',
      `cat /proc/self/fd/0/etc/hostname 2>/dev/null && echo READ_HOST; cd /proc/self/fd/0 2>/dev/null && echo x > .${mark} && echo WROTE_HOST; readlink /proc/self/fd/0`,
    ],
    {
      env: { PATH: process.env.PATH, CLAWPOD_HOME: home },
      cwd: workspace(),
      encoding: 'utf8',
    },
  );
  assert.doesNotMatch(r.stdout, /READ_HOST|WROTE_HOST/, r.stdout);
  assert.match(r.stdout, /^\/dev\/null$/m);
  assert.match(r.stderr, /the pod's stdin was a directory; it gets \/dev\/null instead/);
  assert.equal(fs.existsSync(mark), false);
});

test('a pod sharing the terminal cannot change its line discipline or lock it', { skip: !fs.existsSync('/usr/bin/script') && 'needs script(1)' }, () => {
  // TIOCSETD to n_null (27) would discard everything the user types after clawpod has exited.
  const py =
    'import fcntl,struct\nfor n,r,a in (("setd",0x5423,struct.pack("i",27)),("excl",0x540c,b""),("xonc",0x540a,1)):\n' +
    '  try:\n    fcntl.ioctl(0,r,a); print("SUCCEEDED:"+n)\n  except OSError as e: print("FAILED:"+n, e.errno)\n' +
    'print("LDISC:%d" % struct.unpack("i", fcntl.ioctl(0, 0x5424, struct.pack("i",0)))[0])\n';
  const ws = workspace({ 'tty.py': py });
  const cmd = `${process.execPath} ${BIN} exec --workspace ${ws} -- python3 /workspace/tty.py`;
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], {
    env: { PATH: process.env.PATH, CLAWPOD_HOME: home, TERM: 'xterm' },
    encoding: 'utf8',
    input: '',
  });
  assert.match(r.stdout, /FAILED:setd 1/, r.stdout + r.stderr);
  assert.match(r.stdout, /FAILED:excl 1/);
  assert.match(r.stdout, /FAILED:xonc 1/);
  assert.match(r.stdout, /LDISC:0/, 'the terminal keeps n_tty');
});

test('stdio that is an unconnected socket, a device other than a terminal, or a kernel pseudo file becomes /dev/null', async () => {
  // An unbound TCP socket lives in the host's network namespace: bound and listened on in the
  // pod, it would take host connections. /dev/kmsg writes the kernel log; /proc/self/ns/net is
  // a namespace handle.
  const py = [
    'import socket, subprocess, sys, os',
    's = socket.socket(socket.AF_INET, socket.SOCK_STREAM)',
    'cases = [("socket", s.fileno()), ("kmsg", os.open("/dev/kmsg", os.O_RDONLY)), ("nsfs", os.open("/proc/self/ns/net", os.O_RDONLY))]',
    'for name, fd in cases:',
    '    r = subprocess.run(sys.argv[1:], stdin=fd, capture_output=True, text=True)',
    '    print(name + ":" + r.stdout.strip() + "|" + r.stderr.replace("\\n", " "))',
  ].join('\n');
  const driver = path.join(tmpDir('stdio'), 'drive.py');
  fs.writeFileSync(driver, py);
  const r = spawnSync('python3', [driver, process.execPath, BIN, 'exec', '--', 'readlink', '/proc/self/fd/0'], {
    env: { PATH: process.env.PATH, CLAWPOD_HOME: home },
    cwd: workspace(),
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^socket:\/dev\/null\|.*a socket not connected to one peer/m, r.stdout);
  assert.match(r.stdout, /^kmsg:\/dev\/null\|.*a device other than a terminal/m, r.stdout);
  assert.match(r.stdout, /^nsfs:\/dev\/null\|.*a kernel pseudo file/m, r.stdout);
});

test('a change set the audit log cannot record whole is discarded, and the run says audit cap', async () => {
  // 600 changes with long names pass the smallest audit cap (64 KiB) while they are recorded,
  // after the pod has ended: none may stay applicable unrecorded.
  const ws = workspace();
  const r = await cli(['exec', '--json', '--', 'sh', '-c', `for i in $(seq 1 600); do echo x > /workspace/f$i-$(printf "%0200d" 0); done`], {
    home,
    cwd: ws,
    env: { CLAWPOD_AUDIT_MAX_BYTES: '65536' },
  });
  assert.match(r.stderr, /workspace changes were discarded: the audit log reached its size cap/, r.stderr);
  const summary = JSON.parse(r.stderr.trim().split('\n').at(-1)!);
  assert.equal(summary.limitHit, 'audit');
  assert.equal(summary.filesChanged, 0);
  const diff = await cli(['runs', 'diff', r.runId!], { home });
  assert.equal(diff.stdout, '', 'nothing is offered for review');
  const apply = await cli(['runs', 'apply', r.runId!], { home });
  assert.match(apply.stdout + apply.stderr, /changed nothing|nothing to apply/);
  assert.deepEqual(fs.readdirSync(ws), []);
  const verify = await cli(['audit', 'verify', r.runId!], { home });
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
});

test('TCP buffers inside the pod count against its memory cap (cgroup v1 charges them only with a TCP limit)', async () => {
  // 200 loopback connections whose readers never read: without the charge they queued 2.2 GiB
  // of host memory under a 64Mi cap.
  const py = [
    'import socket',
    'srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(256)',
    'total = 0; keep = []; buf = b"x" * 65536',
    'for i in range(200):',
    '    c = socket.create_connection(srv.getsockname()); a, _ = srv.accept(); keep += [c, a]; c.setblocking(False)',
    '    while True:',
    '        try: total += c.send(buf)',
    '        except OSError: break',
    'print("QUEUED_MIB:%d" % (total >> 20), flush=True)',
  ].join('\n');
  const policy = policyFile('version: 1\nresources: { memory: 64Mi }\n');
  const r = await cli(['exec', '--policy', policy, '--', 'python3', '/workspace/q.py'], { home, cwd: workspace({ 'q.py': py }), timeoutMs: 90_000 });
  const queued = Number(r.stdout.match(/QUEUED_MIB:(\d+)/)?.[1] ?? -1);
  // Either the sends stop near the cap, or the cap's kill ends the pod: never gigabytes held.
  assert.ok(r.code === 137 || (queued >= 0 && queued <= 80), `queued ${queued} MiB under a 64Mi cap (exit ${r.code}) ${r.stderr}`);
});

test('clawpod killed during the harvest: the prelude stops copying and leaves no change set behind', { skip: !IS_ROOT && 'needs root' }, async () => {
  const policy = policyFile('version: 1\nresources: { disk: 512Mi }\n');
  const h = tmpDir('home');
  let runId: string | null = null;
  const child = spawn(
    process.execPath,
    [BIN, 'exec', '--policy', policy, '--', 'sh', '-c', 'for i in $(seq 1 4000); do head -c 20000 /dev/urandom > /workspace/f$i; done'],
    {
      env: { PATH: process.env.PATH, CLAWPOD_HOME: h },
      cwd: workspace(),
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  child.stderr!.on('data', (d) => {
    runId ??= String(d).match(/run (r-[\w-]+)/)?.[1] ?? null;
  });
  const partial = () => runId !== null && fs.existsSync(path.join(h, 'runs', runId, 'changes.partial'));
  const deadline = Date.now() + 60_000;
  while (!partial() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.ok(partial(), 'the harvest never started');
  child.kill('SIGKILL');
  await new Promise((r) => child.on('close', r));
  // The prelude sees clawpod gone at its next entry and removes what it copied.
  // A scan of /proc, not pgrep: procps is not on a minimal Debian.
  const preludeAlive = () =>
    fs
      .readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .some((d) => {
        try {
          return fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(`${h}/runs/${runId}`);
        } catch {
          return false;
        }
      });
  const until = Date.now() + 10_000;
  while (preludeAlive() && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  assert.equal(preludeAlive(), false, 'the prelude went on after clawpod died');
  await cli(['runs', 'list'], { home: h });
  const left = fs.readdirSync(path.join(h, 'runs', runId!)).filter((n) => n.startsWith('changes'));
  assert.deepEqual(left, [], 'a change set was left behind');
  const show = await cli(['runs', 'show', runId!], { home: h });
  assert.match(show.stdout, /status: +interrupted/);
});

test('apply and writable pods exclude each other on the workspace for their whole lives (a lock, not a snapshot)', {
  skip: !fs.existsSync('/usr/bin/flock') && 'needs flock(1)',
}, async () => {
  const ws = workspace({ 'a.txt': 'a\n' });
  const r = await cli(['exec', '--workspace', ws, '--', 'sh', '-c', 'echo b > /workspace/b.txt'], { home });
  assert.equal(r.code, 0, r.stderr);
  // clawpod's lock file for this directory (never the directory itself: a pod can flock that).
  const st = fs.statSync(ws, { bigint: true });
  fs.mkdirSync('/run/clawpod/locks', { recursive: true, mode: 0o700 });
  const lock = `/run/clawpod/locks/${st.dev}-${st.ino}.lock`;
  // An apply in progress holds the workspace exclusively: a writable pod must not start.
  const applying = spawn('flock', ['-x', '-o', lock, 'sleep', '4'], { stdio: 'ignore' });
  await new Promise((res) => setTimeout(res, 300));
  const rw = await cli(['exec', '--policy', policyFile('version: 1\nfilesystem: { workspace: rw }\n'), '--workspace', ws, '--', 'touch', '/workspace/x'], {
    home,
  });
  applying.kill('SIGKILL');
  assert.equal(rw.code, 125, rw.stdout + rw.stderr);
  assert.match(rw.stderr, /is being written by clawpod runs apply/);
  assert.equal(fs.existsSync(path.join(ws, 'x')), false);
  // A writable pod holds it shared: apply must refuse for as long as the pod lives.
  const pod = spawn('flock', ['-s', '-o', lock, 'sleep', '4'], { stdio: 'ignore' });
  await new Promise((res) => setTimeout(res, 300));
  const apply = await cli(['runs', 'apply', r.runId!], { home });
  pod.kill('SIGKILL');
  assert.equal(apply.code, 125, apply.stdout + apply.stderr);
  assert.match(apply.stderr, /a pod has it writable, or another apply is running/);
  assert.equal(fs.existsSync(path.join(ws, 'b.txt')), false);
  await new Promise((res) => setTimeout(res, 300));
  const again = await cli(['runs', 'apply', r.runId!], { home });
  assert.equal(again.code, 0, again.stderr);
});

test('a pod that can only read a workspace cannot hold off its apply (it can flock the directory, not the lock)', async () => {
  const ws = workspace({ 'a.txt': 'a\n' });
  const r = await cli(['exec', '--workspace', ws, '--', 'sh', '-c', 'echo b > /workspace/b.txt'], { home });
  assert.equal(r.code, 0, r.stderr);
  const holder = spawn(
    process.execPath,
    [BIN, 'exec', '--policy', policyFile('version: 1\nfilesystem: { workspace: ro }\n'), '--workspace', ws, '--', 'flock', '-x', '/workspace', 'sleep', '6'],
    { env: { PATH: process.env.PATH, CLAWPOD_HOME: home }, stdio: 'ignore' },
  );
  await new Promise((res) => setTimeout(res, 1500));
  const apply = await cli(['runs', 'apply', r.runId!], { home });
  holder.kill('SIGTERM');
  assert.equal(apply.code, 0, apply.stdout + apply.stderr);
  assert.equal(fs.readFileSync(path.join(ws, 'b.txt'), 'utf8'), 'b\n');
});

test('apply never changes the mode of a hard-linked file (the link may lead outside the workspace)', async () => {
  const outside = path.join(tmpDir('outside'), 'secret');
  fs.writeFileSync(outside, 'owner data\n', { mode: 0o600 });
  const ws = workspace();
  fs.linkSync(outside, path.join(ws, 'linked'));
  const r = await cli(['exec', '--workspace', ws, '--', 'chmod', '666', '/workspace/linked'], { home });
  assert.equal(r.code, 0, r.stderr);
  const apply = await cli(['runs', 'apply', r.runId!], { home });
  assert.equal(apply.code, 125, apply.stdout + apply.stderr);
  assert.match(apply.stderr, /other hard links/);
  assert.equal(fs.statSync(outside).mode & 0o777, 0o600, 'the file outside the workspace became world-writable');
});

test('a pod has at most 64 ptys of its own (the kernel pool is shared by every pod), and they work', async () => {
  const py =
    'import os, pty\nfds = []\ntry:\n    for i in range(200): fds.append(pty.openpty())\nexcept OSError: pass\n' +
    'm, s = fds[0]; os.write(m, b"hi\\n"); print("PTYS:%d" % len(fds), os.read(s, 10) == b"hi\\n")\n';
  const first = cli(['exec', '--', 'python3', '/workspace/p.py'], { home, cwd: workspace({ 'p.py': py }) });
  const second = cli(['exec', '--', 'python3', '/workspace/p.py'], { home, cwd: workspace({ 'p.py': py }) });
  for (const r of await Promise.all([first, second])) {
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^PTYS:64 True$/m, r.stdout);
  }
});
