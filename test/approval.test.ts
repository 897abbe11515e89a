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

/** What ends the approval question (cli/approve.ts): answers are typed once it is on the screen. */
const QUESTION = '[q]uit (Enter: no)';

/** Runs clawpod under a pty; types the next of `answers` (the last one again when they run out)
 *  at each approval question; returns the pty's output and how many questions were asked. */
function onTerminal(
  args: string[],
  env: Record<string, string>,
  cwd: string,
  answers: string | string[],
  interruptOn?: string,
  termAtQuestion = false,
): Promise<{ code: number; out: string; asked: number }> {
  const cmd = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const keys = Array.isArray(answers) ? answers : [answers];
  return new Promise((resolve) => {
    const child = spawn('script', ['-qfec', `stty cols 100; exec ${cmd}`, '/dev/null'], {
      cwd,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let asked = 0;
    let interrupted = false;
    const onData = (d: Buffer) => {
      out += d.toString('utf8');
      // Ctrl-C typed at the terminal once `interruptOn` is on the screen (the run's interrupt).
      if (interruptOn && !interrupted && out.includes(interruptOn)) {
        interrupted = true;
        child.stdin.write('\x03');
      }
      const prompts = out.split(QUESTION).length - 1;
      if (prompts > asked && termAtQuestion) {
        // SIGTERM to clawpod itself (script's child), as a service manager or kill would send it.
        asked = prompts;
        const pids = spawnSync('ps', ['-o', 'pid=', '--ppid', String(child.pid)], { encoding: 'utf8' })
          .stdout.trim()
          .split(/\s+/);
        for (const p of pids) if (p) process.kill(Number(p), 'SIGTERM');
      } else if (prompts > asked) {
        asked = prompts;
        const k = keys[Math.min(asked - 1, keys.length - 1)];
        child.stdin.write(k === '\x03' ? k : `${k}\r`);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 137, out, asked });
    });
  });
}

/** A progress line that a newline (not its \r\x1b[K) ended stays on the screen; the terminal's own
 *  echo of a typed ^C may stand between the two. */
const staleProgress = /running in the pod(?:(?!\r\x1b\[K)[^\n])*\n/;

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
    const prompt = r.out.slice(0, r.out.indexOf(QUESTION));
    // Wrapped lines continue with "┆ ": joined back, the command is there in full.
    const unwrapped = prompt.replace(/\r?\n {2}┆ /g, '');
    assert.ok(unwrapped.includes(long), `the whole command was shown (prompt has ${prompt.length} chars):\n${prompt.slice(-400)}`);
    const block = prompt.slice(prompt.lastIndexOf('clawpod: the agent asks'));
    for (const line of block.split(/\r?\n/)) assert.ok([...line].length <= 100, `a line wider than the terminal: ${line.length}`);
    assert.match(r.out, /\[y\]es \/ \[n\]o \/ \[a\]lways for bash in this run \/ \[q\]uit/);
    assert.match(r.out, /denied: the user did not approve this bash call/);
    assert.equal(r.out.split('did not approve').length - 1, 1, 'the denial is shown once');
    assert.doesNotMatch(r.out, staleProgress);
  } finally {
    await fake.close();
  }
});

test('always: asked once, then that tool runs for the rest of the run', { skip }, async () => {
  const fake = await startFakeAnthropic([
    { toolUses: [{ name: 'bash', input: { command: 'echo first-call' } }], stopReason: 'tool_use' },
    { toolUses: [{ name: 'bash', input: { command: 'echo second-call' } }], stopReason: 'tool_use' },
    { text: 'both ran', stopReason: 'end_turn' },
  ]);
  try {
    const home = tmpDir('home');
    const p = policyFile('version: 1\ntools: { approve: [bash] }\n');
    const r = await onTerminal(
      ['run', '--policy', p, 'run two'],
      { CLAWPOD_HOME: home, ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: fake.url },
      workspace(),
      'a',
    );
    assert.equal(r.code, 0, r.out);
    assert.equal(r.asked, 1, 'the second bash call was not asked about');
    const sent = fake.requests.map((q) => JSON.stringify(q.body)).join('\n');
    assert.match(sent, /first-call/);
    assert.match(sent, /second-call/);
    assert.match(r.out, /bash approved for the rest of this run/);
    assert.doesNotMatch(r.out, staleProgress);
  } finally {
    await fake.close();
  }
});

for (const [how, key] of [
  ['q', 'q'],
  ['Ctrl-C', '\x03'],
] as const) {
  test(`${how} at the question stops the run: nothing more is asked of the model or run`, { skip }, async () => {
    const fake = await startFakeAnthropic([
      { toolUses: [{ name: 'bash', input: { command: 'touch should-not-exist' } }], stopReason: 'tool_use' },
      { text: 'never asked', stopReason: 'end_turn' },
    ]);
    try {
      const home = tmpDir('home');
      const ws = workspace();
      const p = policyFile('version: 1\ntools: { approve: [bash] }\n');
      const r = await onTerminal(['run', '--policy', p, 'touch'], { CLAWPOD_HOME: home, ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: fake.url }, ws, key);
      assert.notEqual(r.code, 0, r.out);
      assert.equal(fake.requests.length, 1, 'no model turn after the quit');
      assert.match(r.out, /stopped: the user quit when asked to approve a bash call|interrupted/);
      assert.doesNotMatch(r.out, staleProgress);
      assert.equal(fs.existsSync(path.join(ws, 'should-not-exist')), false);
    } finally {
      await fake.close();
    }
  });
}

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
  } finally {
    await fake.close();
  }
});

test('exec gives the terminal back as it found it, whatever the pod did to it', { skip }, async () => {
  const dir = tmpDir('tty');
  const ws = workspace();
  const home = tmpDir('home');
  const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  // The pod turns off echo and canonical mode and shrinks the window, then exits.
  const pod = 'stty raw -echo -icanon; stty cols 33 rows 7; exit 0';
  const script = [
    'stty cols 100 rows 30',
    `stty -g > ${dir}/before`,
    `CLAWPOD_HOME=${q(home)} ${q(process.execPath)} ${q(BIN)} exec --workspace ${q(ws)} -- sh -c ${q(pod)}`,
    `echo $? > ${dir}/code`,
    `stty -g > ${dir}/after`,
    `stty size > ${dir}/size`,
  ].join('; ');
  const r = spawnSync('script', ['-qfec', script, '/dev/null'], { encoding: 'utf8', timeout: 60_000, input: '' });
  const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8').trim();
  assert.equal(read('code'), '0', r.stdout);
  assert.equal(read('after'), read('before'), 'terminal settings restored');
  assert.equal(read('size'), '30 100', 'window size restored');
});

test('Ctrl-C while a tool runs: the progress line gives way to the interrupt notice, none is left standing', { skip }, async () => {
  const fake = await startFakeAnthropic([
    { toolUses: [{ name: 'bash', input: { command: 'sleep 3; echo slept' } }], stopReason: 'tool_use' },
    { text: 'ok', stopReason: 'end_turn' },
  ]);
  try {
    const home = tmpDir('home');
    const r = await onTerminal(
      ['run', 'sleep'],
      { CLAWPOD_HOME: home, ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: fake.url },
      workspace(),
      'n',
      'running in the pod',
    );
    assert.equal(r.code, 130, r.out);
    assert.match(r.out, /clawpod: stopping the agent/);
    assert.doesNotMatch(r.out, staleProgress);
  } finally {
    await fake.close();
  }
});

test('SIGTERM while the question waits: the run ends at once (not waiting for an answer), work kept', { skip }, async () => {
  const fake = await startFakeAnthropic([
    { toolUses: [{ name: 'bash', input: { command: 'echo x' } }], stopReason: 'tool_use' },
    { text: 'never', stopReason: 'end_turn' },
  ]);
  try {
    const home = tmpDir('home');
    const p = policyFile('version: 1\ntools: { approve: [bash] }\n');
    const started = Date.now();
    const r = await onTerminal(
      ['run', '--policy', p, 'x'],
      { CLAWPOD_HOME: home, ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: fake.url },
      workspace(),
      'y',
      undefined,
      true,
    );
    assert.ok(Date.now() - started < 30_000, 'did not wait for the 60 s kill');
    assert.equal(r.code, 130, r.out);
    assert.match(r.out, /not run: the task was stopped while asking to approve a bash call/);
    assert.equal(fake.requests.length, 1);
  } finally {
    await fake.close();
  }
});
