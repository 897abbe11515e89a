// The approval question on a real terminal (a pty from script(1)): readline's raw mode, so Ctrl-C
// at the question is an answer (quit), not a signal that kills clawpod; and with no terminal on
// stdin nothing is asked and the call is refused with the reason.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const skip = spawnSync('script', ['--version']).status === 0 ? false : 'needs script(1) for a pty';
const MODULE = fileURLToPath(new URL('../src/cli/approve.js', import.meta.url));
const DRIVER = `const { terminalApprove } = await import(${JSON.stringify(MODULE)});
const a = await terminalApprove({ tool: 'bash', input: { command: 'rm -rf build && make' } });
process.stdout.write('ANSWER=' + JSON.stringify(a) + '\\n');`;

/** Runs the driver on a pty and types `keys` once the question is shown. */
function onTerminal(keys: string): Promise<{ code: number; out: string }> {
  const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const cmd = `${q(process.execPath)} --input-type=module -e ${q(DRIVER)}`;
  return new Promise((resolve) => {
    const child = spawn('script', ['-qfec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let typed = false;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!typed && out.includes('[q]uit')) {
        typed = true;
        child.stdin.write(keys);
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 137, out });
    });
  });
}

test('on a terminal: the whole input, the four choices, and each answer', { skip }, async () => {
  const a = await onTerminal('a\r');
  assert.match(a.out, /clawpod: the agent asks to run bash with this command:\r?\n {2}│ rm -rf build && make/);
  assert.match(a.out, /\[y\]es \/ \[n\]o \/ \[a\]lways for bash in this run \/ \[q\]uit/);
  assert.match(a.out, /ANSWER=\{"answer":"always"\}/);
  assert.match((await onTerminal('\r')).out, /ANSWER=\{"answer":"no"\}/);
});

test('Ctrl-C at the question is quit, and the process goes on to say so', { skip }, async () => {
  const r = await onTerminal('\x03');
  assert.match(r.out, /ANSWER=\{"answer":"quit"\}/, r.out);
  assert.equal(r.code, 0);
});

test('no terminal on stdin: nothing asked, refused with the reason', () => {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', DRIVER], { input: 'y\n', encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.stderr, '', 'no question printed');
  assert.match(
    r.stdout,
    /ANSWER=\{"answer":"no","reason":"approval needed but no terminal to ask \(run it from a terminal, or remove bash from tools.approve\)"\}/,
  );
});
