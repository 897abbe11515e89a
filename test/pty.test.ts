// Interactive pods (clawpod exec -t) through the real binary, on a real terminal: the test is the
// user's terminal (python3's pty module, independent of clawpod's own native/pty.c) and types
// into a shell in the pod: Ctrl-C reaches the pod's foreground program and the pod lives on,
// window-size changes follow, job control works, the exit code comes through, the terminal's
// settings are put back, a program that ignores Ctrl-C is stopped by a second one, the pty's
// master never reaches the pod, and a secret value the pod prints is redacted on the terminal.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { test } from 'node:test';
import { BIN, ROOT, policyFile, tmpDir, workspace } from './helpers.js';

// The user's terminal: argv runs on a fresh pty (its controlling terminal, 24x80); fd 0 goes to
// the pty, the pty to fd 1, and a "ROWS COLS" line on fd 3 resizes it (the kernel then sends
// SIGWINCH to its foreground group). Exits with argv's status.
const TERMINAL = String.raw`
import fcntl, os, select, struct, sys, termios
def size(fd, rows, cols): fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
m, s = os.openpty()
size(s, 24, 80)
pid = os.fork()
if pid == 0:
    os.setsid()
    fcntl.ioctl(s, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2): os.dup2(s, fd)
    os.closerange(3, 1024)
    os.execvp(sys.argv[1], sys.argv[1:])
os.close(s)
line, watch = b'', [m, 0, 3]
while True:
    r = select.select(watch, [], [])[0]
    if m in r:
        try: data = os.read(m, 65536)
        except OSError: break
        if not data: break
        os.write(1, data)
    if 0 in r:
        data = os.read(0, 65536)
        if data: os.write(m, data)
        else: watch.remove(0)
    if 3 in r:
        data = os.read(3, 256)
        if not data: watch.remove(3); continue
        line += data
        while b'\n' in line:
            one, line = line.split(b'\n', 1)
            rows, cols = one.split()
            size(m, int(rows), int(cols))
status = os.waitpid(pid, 0)[1]
sys.exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
`;

const built = fs.existsSync(path.join(ROOT, 'build', 'clawpod-pty')) && fs.existsSync(path.join(ROOT, 'build', 'clawpod-podtty'));
const python = spawnSync('python3', ['-c', 'import pty, termios'], { stdio: 'ignore' }).status === 0;
const skip = !built ? 'native helpers not built (npm run build)' : !python ? 'needs python3 for the test terminal' : false;

/** A terminal session: what it showed so far, keystrokes, resizes, and its end. */
class Session {
  readonly child: ChildProcessWithoutNullStreams;
  out = '';
  private mark = 0;
  readonly exit: Promise<number>;
  constructor(shell: string, env: Record<string, string>, cwd: string) {
    const script = path.join(tmpDir('term'), 'terminal.py');
    fs.writeFileSync(script, TERMINAL);
    this.child = spawn('python3', [script, 'sh', '-c', shell], {
      cwd,
      env,
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    }) as unknown as ChildProcessWithoutNullStreams;
    this.child.stdout.on('data', (d: Buffer) => {
      this.out += d.toString('latin1');
    });
    this.child.stderr.on('data', (d: Buffer) => {
      this.out += d.toString('latin1');
    });
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 90_000);
    this.exit = new Promise((resolve) =>
      this.child.on('close', (code) => {
        clearTimeout(killer);
        resolve(code ?? -1);
      }),
    );
  }
  type(keys: string): void {
    this.child.stdin.write(keys);
  }
  resize(rows: number, cols: number): void {
    (this.child.stdio[3] as Writable).write(`${rows} ${cols}\n`);
  }
  /** Waits until what the terminal showed since the last wait matches re; returns the match. */
  async see(re: RegExp, what: string, ms = 20_000): Promise<RegExpMatchArray> {
    const until = Date.now() + ms;
    for (;;) {
      const m = this.out.slice(this.mark).match(re);
      if (m) {
        this.mark += (m.index ?? 0) + m[0].length;
        return m;
      }
      if (Date.now() > until) assert.fail(`${what}: never saw ${re} in ${JSON.stringify(this.out.slice(this.mark).slice(-2000))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

const PROMPT = /bash-[\d.]+\$ $/;

function session(args: string, extraEnv: Record<string, string> = {}): { s: Session; home: string } {
  const home = tmpDir('home');
  const ws = workspace({ 'secret.txt': `token is ${extraEnv.CLAWPOD_PTY_TOKEN ?? 'none'}\n` });
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', TERM: 'xterm', CLAWPOD_HOME: home, ...extraEnv };
  // stty -g before and after: the terminal's settings as clawpod found and left them.
  const shell = `stty -g; echo STTY-BEFORE; ${process.execPath} ${BIN} exec ${args}; echo "RC=$?"; stty -g; echo STTY-AFTER`;
  return { s: new Session(shell, env, ws), home };
}

test('an interactive shell in a pod: Ctrl-C, window size, job control, exit code, terminal restored', { skip, timeout: 120_000 }, async () => {
  const { s } = session('-t -- bash --norc -i');
  const before = (await s.see(/([0-9a-f:]+)\r\nSTTY-BEFORE/, 'stty -g before'))[1];
  await s.see(PROMPT, 'first prompt');
  s.type('echo hi-$((6*7))\r');
  await s.see(/\rhi-42\r\n/, 'echo');
  await s.see(PROMPT, 'prompt after echo');

  // Ctrl-C reaches the pod's foreground program; the shell and the pod live on.
  s.type('sleep 100\r');
  await s.see(/sleep 100\r\n/, 'sleep echoed');
  await new Promise((r) => setTimeout(r, 300));
  s.type('\x03');
  await s.see(PROMPT, 'prompt back after Ctrl-C');
  s.type('echo "status $?"\r');
  await s.see(/status 130\r\n/, 'sleep was interrupted by SIGINT');

  // A window-size change of the user's terminal reaches the pod's terminal.
  s.type('stty size\r');
  await s.see(/\r24 80\r\n/, 'the size at start');
  s.resize(41, 123);
  await new Promise((r) => setTimeout(r, 500));
  s.type('stty size\r');
  await s.see(/\r41 123\r\n/, 'the new size');

  // Job control: a background job, a stopped one (Ctrl-Z), fg, Ctrl-C again.
  s.type('sleep 50 &\r');
  await s.see(/\[1\] \d+/, 'background job');
  s.type('sleep 60\r');
  await s.see(/sleep 60\r\n/, 'sleep 60 echoed');
  await new Promise((r) => setTimeout(r, 300));
  s.type('\x1a');
  await s.see(/\[2\]\+\s+Stopped\s+sleep 60/, 'Ctrl-Z stops the foreground job');
  s.type('jobs\r');
  await s.see(/\[1\]-\s+Running\s+sleep 50 &/, 'jobs lists the background job');
  s.type('fg %2\r');
  await s.see(/sleep 60\r\n/, 'fg');
  await new Promise((r) => setTimeout(r, 300));
  s.type('\x03');
  await s.see(PROMPT, 'prompt after Ctrl-C on the resumed job');

  // Only the pty's slave is on the pod's stdio; no other descriptor (the master above all).
  s.type('ls -l /proc/self/fd; echo FDS-DONE\r');
  const fds = (await s.see(/total 0\r\n([\s\S]*?)FDS-DONE\r\n/, 'fd listing'))[1];
  const links = [...fds.matchAll(/ (\d+) -> (\S+)\r\n/g)].map((m) => [Number(m[1]), m[2]] as const);
  const slave = links.find(([fd]) => fd === 0)?.[1] ?? '';
  assert.match(slave, /^\/dev\/pts\/\d+$/);
  assert.deepEqual(
    links.filter(([fd]) => fd <= 2).map(([, t]) => t),
    [slave, slave, slave],
    'fds 0-2 are the slave',
  );
  assert.deepEqual(
    links
      .filter(([fd]) => fd > 2)
      .map(([, t]) => t)
      .filter((t) => !/^\/proc\/\d+\/fd$/.test(t)),
    [],
    "nothing else but ls's own directory",
  );
  assert.ok(!fds.includes('ptmx'), 'no pty master');

  s.type('exit 3\r');
  await s.see(/RC=3\r\n/, "clawpod exits with the shell's code");
  const after = (await s.see(/([0-9a-f:]+)\r\nSTTY-AFTER/, 'stty -g after'))[1];
  assert.equal(after, before, "the terminal's settings are as clawpod found them");
  assert.equal(await s.exit, 0);
});

test('a program that is no job-control shell gets Ctrl-C itself: the pod is not killed', { skip, timeout: 120_000 }, async () => {
  const { s } = session(`-t -- sh -c 'trap "echo caught" INT; echo ready; while :; do read x && { [ "$x" = q ] && exit 4; echo "got $x"; }; done'`);
  await s.see(/ready\r\n/, 'ready');
  for (const round of [1, 2]) {
    s.type('\x03');
    await s.see(/caught\r\n/, `Ctrl-C ${round} reaches the program`);
  }
  s.type('still\r');
  await s.see(/got still\r\n/, 'the pod lives on');
  s.type('q\r');
  await s.see(/RC=4\r\n/, 'its own exit code');
  assert.equal(await s.exit, 0);
});

test('Ctrl-C a program ignores: passed on; a second one with no output between stops the pod', { skip, timeout: 120_000 }, async () => {
  const { s } = session(`-t -- sh -c 'trap "" INT; echo ready; while read x; do echo "got $x"; done'`);
  await s.see(/STTY-BEFORE/, 'start');
  await s.see(/ready\r\n/, 'ready');
  s.type('\x03');
  await new Promise((r) => setTimeout(r, 500));
  // The program answered after the first Ctrl-C: the count starts again.
  s.type('one\r');
  await s.see(/got one\r\n/, 'the pod lives on after one Ctrl-C');
  s.type('\x03');
  await new Promise((r) => setTimeout(r, 500));
  s.type('two\r');
  await s.see(/got two\r\n/, 'a Ctrl-C after output is a first one again');
  const t0 = Date.now();
  s.type('\x03');
  await new Promise((r) => setTimeout(r, 500));
  s.type('\x03');
  const rc = (await s.see(/RC=(\d+)\r\n/, 'clawpod ends', 15_000))[1];
  // exec's face routes the stop to its interrupt: the run is 'interrupted', exit 130 (its work kept).
  assert.equal(rc, '130', 'stopped by clawpod as an interrupt');
  assert.ok(Date.now() - t0 < 15_000);
  assert.equal(await s.exit, 0);
});

test('with a policy secret, a value the pod prints is redacted on the terminal', { skip, timeout: 120_000 }, async () => {
  const value = `pty-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
  const policy = policyFile(
    [
      'version: 1',
      'network:',
      '  allow: ["svc.test:9"]',
      '  hosts: { svc.test: 127.0.0.1 }',
      'secrets:',
      '  - { name: API_TOKEN, from: env:CLAWPOD_PTY_TOKEN, hosts: ["svc.test:9"] }',
    ].join('\n'),
  );
  const { s } = session(`-t --policy ${policy} -- sh -c 'cat secret.txt; echo "placeholder $API_TOKEN"; test -t 0 && test -t 1 && echo TTY-OK'`, {
    CLAWPOD_PTY_TOKEN: value,
  });
  await s.see(/RC=0\r\n/, 'the pod ran');
  assert.match(s.out, /token is \[secret:API_TOKEN\]\r\n/);
  assert.match(s.out, /placeholder clawpod-secret-API_TOKEN-/);
  assert.match(s.out, /TTY-OK/, 'the pod has a terminal even with secrets');
  assert.ok(!s.out.includes(value), 'the value never reaches the terminal');
  assert.equal(await s.exit, 0);
});

test("without a pty of its own (-T) the pod never holds the user's terminal: stdin is relayed", { skip, timeout: 60_000 }, async () => {
  // Before: fd 0 was the user's terminal itself (read-write): the pod could write to the screen
  // past the log and the redactor, and `stty -isig <&0` turned off the user's Ctrl-C.
  const { s } = session(`-T -- sh -c 'readlink /proc/self/fd/0; stty -isig <&0 && echo TERMINAL-CHANGED; read x; echo "got:$x"'`);
  await s.see(/STTY-BEFORE/, 'started');
  const fd0 = (await s.see(/\r\n(socket:\[\d+\]|pipe:\[\d+\]|\/dev\/pts\/\d+)\r\n/, 'the pod says what its stdin is'))[1];
  assert.match(fd0, /^(socket|pipe):/, "the pod's stdin is a relay, not the terminal");
  s.type('hello\r');
  await s.see(/got:hello/, 'what was typed reached the pod');
  const rc = Number((await s.see(/RC=(\d+)/, 'exit'))[1]);
  assert.equal(rc, 0);
  assert.doesNotMatch(s.out, /TERMINAL-CHANGED/);
  assert.equal(await s.exit, 0);
});
