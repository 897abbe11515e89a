// runs diff on a terminal goes through $PAGER, coloured unless NO_COLOR; piped, it is plain
// text and no pager runs (issue 9, item 12). A pseudo-terminal (test/fixtures/with-pty.py)
// makes the real binary's stdout a terminal.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { BIN, cli, ROOT, tmpDir, workspace } from './helpers.js';

let home: string;
let id: string;
before(async () => {
  home = tmpDir('home');
  const ws = workspace({ 'f.txt': 'one\ntwo\n' });
  const r = await cli(['exec', '--', 'sh', '-c', `printf 'one\\n--- three\\n\\033[2Jx\\n' > f.txt`], { home, cwd: ws });
  assert.equal(r.code, 0, r.stderr);
  id = r.runId as string;
});

function onTerminal(args: string[], env: Record<string, string>): { code: number; out: string } {
  const r = spawnSync('python3', [path.join(ROOT, 'test/fixtures/with-pty.py'), process.execPath, BIN, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/root', CLAWPOD_HOME: home, TERM: 'xterm', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status ?? -1, out: r.stdout };
}

test('on a terminal the diff goes through $PAGER, coloured, with pod text still inert', () => {
  const got = path.join(tmpDir('pager'), 'got');
  const r = onTerminal(['runs', 'diff', id], { PAGER: `cat > ${got}` });
  assert.equal(r.code, 0, r.out);
  assert.equal(r.out, '', 'nothing but the pager wrote to the terminal');
  const text = fs.readFileSync(got, 'utf8');
  assert.match(text, /\x1b\[1mdiff --git a\/f\.txt b\/f\.txt\x1b\[0m/);
  assert.match(text, /\x1b\[31m-two\x1b\[0m/);
  assert.match(text, /\x1b\[32m\+--- three\x1b\[0m/, 'an added line that reads --- stays an added line');
  assert.match(text, /\x1b\[32m\+\\x1b\[2Jx\x1b\[0m/, "the pod's escape is shown, not sent");
  assert.doesNotMatch(text, /\x1b\[2J/);
});

test('NO_COLOR: the pager gets plain text; PAGER=cat or --no-pager: straight to the terminal', () => {
  const got = path.join(tmpDir('pager'), 'got');
  onTerminal(['runs', 'diff', id], { PAGER: `cat > ${got}`, NO_COLOR: '1' });
  const text = fs.readFileSync(got, 'utf8');
  assert.match(text, /^-two$/m);
  assert.doesNotMatch(text, /\x1b/);
  for (const [args, env] of [
    [[], { PAGER: 'cat' }],
    [['--no-pager'], { PAGER: `cat > ${got}.2` }],
  ] as const) {
    const r = onTerminal(['runs', 'diff', id, ...args], env);
    assert.match(r.out, /\x1b\[31m-two\x1b\[0m/);
    assert.ok(!fs.existsSync(`${got}.2`));
  }
});

test('piped: no pager, no colour', async () => {
  const got = path.join(tmpDir('pager'), 'got');
  const r = await cli(['runs', 'diff', id], { home, env: { PAGER: `cat > ${got}`, TERM: 'xterm' } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^-two$/m);
  assert.doesNotMatch(r.stdout, /\x1b\[3\dm/);
  assert.ok(!fs.existsSync(got), 'no pager ran');
});
