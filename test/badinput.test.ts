// Bad input: every mistake a user can make is exit 125, one clear line, and no half-made run.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { cli, policyFile, ROOT, tmpDir, workspace } from './helpers.js';

let home: string;
let ws: string;

before(() => {
  home = tmpDir('home');
  ws = workspace({ 'a.txt': 'a\n' });
});

function runsMade(): string[] {
  const dir = path.join(home, 'runs');
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

async function expectRefusal(args: string[], pattern: RegExp, opts: { cwd?: string } = {}) {
  const before = runsMade();
  const r = await cli(args, { home, cwd: opts.cwd ?? ws });
  assert.equal(r.code, 125, `exit code for ${args.join(' ')}: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line expected, got: ${r.stderr}`);
  assert.match(lines[0], /^clawpod: /);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\bat .+:\d+:\d+\)?$/m, 'no stack trace');
  assert.deepEqual(runsMade(), before, 'no run directory was created');
  assert.equal(r.runId, null);
  return lines[0];
}

describe('bad input is refused before any run exists', () => {
  test('malformed YAML', async () => {
    const p = policyFile('version: 1\nresources: { memory: [\n');
    await expectRefusal(['exec', '--policy', p, '--', 'true'], /YAML/i);
  });

  test('unknown key at the top level and nested', async () => {
    await expectRefusal(['exec', '--policy', policyFile('version: 1\nresourcez: {}\n'), '--', 'true'], /resourcez/);
    await expectRefusal(['exec', '--policy', policyFile('version: 1\nresources: { memroy: 1Gi }\n'), '--', 'true'], /memroy/);
  });

  test('bad size and bad duration', async () => {
    await expectRefusal(['exec', '--policy', policyFile('version: 1\nresources: { memory: 12Q }\n'), '--', 'true'], /12Q.*size/);
    await expectRefusal(['exec', '--policy', policyFile('version: 1\nresources: { timeout: soon }\n'), '--', 'true'], /soon.*duration/);
  });

  test('missing policy file', async () => {
    await expectRefusal(['exec', '--policy', '/nonexistent/p.yaml', '--', 'true'], /not found/);
  });

  test('missing mount path and denied mount path', async () => {
    await expectRefusal(
      ['exec', '--policy', policyFile('version: 1\nfilesystem: { mounts: [{ host: /nonexistent/data, path: /data }] }\n'), '--', 'true'],
      /nonexistent\/data/,
    );
    const fakeHome = tmpDir('fakehome');
    fs.mkdirSync(path.join(fakeHome, '.ssh'));
    const r = await cli(['exec', '--policy', policyFile(`version: 1\nfilesystem: { mounts: [{ host: ${fakeHome}, path: /data }] }\n`), '--', 'true'], {
      home,
      cwd: ws,
      env: { HOME: fakeHome },
    });
    assert.equal(r.code, 125);
    assert.match(r.stderr, /\.ssh/);
  });

  test('missing workspace', async () => {
    await expectRefusal(['exec', '--workspace', '/nonexistent/ws', '--', 'true'], /workspace .*does not exist/);
  });

  test('unknown backend and a backend that is not available yet', async () => {
    await expectRefusal(['exec', '--backend', 'qemu', '--', 'true'], /unknown backend "qemu"/);
    await expectRefusal(['exec', '--backend', 'gvisor', '--', 'true'], /not available yet/);
  });

  test('an empty command', async () => {
    await expectRefusal(['exec', '--'], /no command/);
    await expectRefusal(['exec'], /no command/);
  });

  test('unknown option and unknown command', async () => {
    await expectRefusal(['exec', '--frobnicate', '--', 'true'], /frobnicate/);
    await expectRefusal(['launch'], /unknown command "launch"/);
  });

  test("a bad policy never loses the user's data: the workspace is untouched", async () => {
    const p = policyFile('version: 2\n');
    await expectRefusal(['exec', '--policy', p, '--', 'sh', '-c', 'rm -f a.txt'], /version/);
    assert.equal(fs.readFileSync(path.join(ws, 'a.txt'), 'utf8'), 'a\n');
  });

  test('policy check names the problem and explain speaks plainly', async () => {
    const bad = await cli(['policy', 'check', policyFile('version: 1\nnetwork: { allow: ["exa mple.com"] }\n')], { home });
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, /exa mple\.com/);
    const good = await cli(['policy', 'check', policyFile('version: 1\nresources: { memory: 1Gi }\n')], { home });
    assert.equal(good.code, 0, good.stderr);
    const ex = await cli(['policy', 'explain'], { home });
    assert.equal(ex.code, 0, ex.stderr);
    assert.match(ex.stdout, /512 MiB/);
    assert.match(ex.stdout, /no network/i);
  });

  test('a missing pod helper is named by doctor and refuses pods in one line', async () => {
    const dir = tmpDir('nohelpers');
    fs.copyFileSync(path.join(ROOT, 'build', 'clawpod-podinit'), path.join(dir, 'clawpod-podinit'));
    fs.chmodSync(path.join(dir, 'clawpod-podinit'), 0o755);
    const env = { CLAWPOD_PODINIT: path.join(dir, 'clawpod-podinit') };
    const doctor = await cli(['doctor'], { home, env });
    assert.equal(doctor.code, 1);
    assert.match(doctor.stdout, /MISSING\s+pod helpers\s+clawpod-fwd, clawpod-podexec, clawpod-wsapply not built/);
    const before = runsMade();
    const r = await cli(['exec', '--', 'true'], { home, cwd: ws, env });
    assert.equal(r.code, 125);
    assert.match(r.stderr.trim(), /^clawpod: cannot start a pod: pod helpers is missing .*npm run build/);
    assert.deepEqual(runsMade(), before);
  });

  test('unknown run ids are one clear line', async () => {
    for (const sub of ['show', 'diff', 'apply', 'discard']) {
      const r = await cli(['runs', sub, 'r-nope-nope'], { home });
      assert.equal(r.code, 125, sub);
      assert.match(r.stderr, /no run "r-nope-nope"/);
    }
  });
});
