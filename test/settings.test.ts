// settings.git / settings.npm through real pods: the user's non-secret tool settings reach the
// pod as its system git config and global npmrc; credentials, proxies and programs never do.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { before, describe, test } from 'node:test';
import { auditEvents, cli, policyFile, tmpDir, workspace } from './helpers.js';

let home: string;
/** The invoking user's home, as clawpod finds it ($HOME). */
let userHome: string;
const TOKEN = `npm-tok-${Math.random().toString(36).slice(2)}-secret`;
const GIT_TOKEN = `ghp_${Math.random().toString(36).slice(2)}x9`;

before(() => {
  home = tmpDir('home');
  userHome = tmpDir('user');
  fs.writeFileSync(
    path.join(userHome, '.gitconfig'),
    [
      '[user]',
      '\tname = Ada Lovelace',
      '\temail = ada@example.org',
      '[init]',
      '\tdefaultBranch = trunk',
      '[credential]',
      '\thelper = store --file ~/.git-credentials',
      `[url "https://x-access-token:${GIT_TOKEN}@github.com/"]`,
      '\tinsteadOf = https://github.com/',
      '[core]',
      '\tsshCommand = ssh -i ~/.ssh/work',
      '\tautocrlf = input',
      '[http]',
      `\textraHeader = Authorization: Bearer ${GIT_TOKEN}`,
      '',
    ].join('\n'),
  );
  fs.writeFileSync(
    path.join(userHome, '.npmrc'),
    [
      'nodedir=/usr',
      'fund=false',
      `//registry.example.test/:_authToken=${TOKEN}`,
      `_auth=${TOKEN}`,
      'proxy=http://corp-proxy.test:8080',
      'cache=/nonexistent/npm-cache',
      'script-shell=/bin/evil',
      '',
    ].join('\n'),
  );
});

const run = (policy: string, script: string, env: Record<string, string> = {}) =>
  cli(['exec', '--policy', policy, '--', 'sh', '-c', script], { home, cwd: workspace(), env: { HOME: userHome, ...env } });

describe('settings', () => {
  test("git inherit: commit works with the user's identity; credentials, urls and programs stay out", async () => {
    const p = policyFile('version: 1\nsettings:\n  git: inherit\n');
    const r = await run(
      p,
      [
        'git init -q . && git commit -q --allow-empty -m x && git log -1 --format="AUTHOR=%an <%ae>"',
        'echo "BRANCH=$(git symbolic-ref --short HEAD)"',
        'echo "HELPER=$(git config --get credential.helper)" "SSH=$(git config --get core.sshcommand)"',
        'echo "CRLF=$(git config --get core.autocrlf)"',
        'git config --global user.name "Pod Override" && echo "OVERRIDE=$(git config user.name)"',
        'cat /etc/gitconfig; env',
      ].join('; '),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^AUTHOR=Ada Lovelace <ada@example\.org>$/m);
    assert.match(r.stdout, /^BRANCH=trunk$/m);
    assert.match(r.stdout, /^HELPER= SSH=$/m, 'credential.helper and core.sshCommand never reach the pod');
    assert.match(r.stdout, /^CRLF=input$/m);
    assert.match(r.stdout, /^OVERRIDE=Pod Override$/m, "the pod's own global config wins over the inherited one");
    assert.ok(!r.stdout.includes(GIT_TOKEN), 'no url or header token in the pod');
  });

  test('without settings, git commit still works, as an identity that says it is the pod', async () => {
    const r = await cli(['exec', '--', 'sh', '-c', 'git init -q . && git commit -q --allow-empty -m x && git log -1 --format="AUTHOR=%an <%ae>"'], {
      home,
      cwd: workspace(),
      env: { HOME: userHome },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^AUTHOR=clawpod pod <pod@clawpod\.invalid>$/m);
  });

  test('npm inherit: nodedir and plain keys arrive; auth, proxy, paths and programs do not', async () => {
    const p = policyFile('version: 1\nsettings:\n  npm: inherit\n');
    const r = await run(
      p,
      [
        'echo "NODEDIR=$(npm config get nodedir)" "FUND=$(npm config get fund)" "SHELL=$(npm config get script-shell)"',
        'echo "PROXY=$(npm config get proxy)" "CACHE=$(npm config get cache)"',
        'npm config list 2>&1; cat /etc/npmrc; env; grep -rs "npm-tok" /etc /home /tmp /workspace && echo FOUND-TOKEN; true',
      ].join('; '),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^NODEDIR=\/usr FUND=false SHELL=null$/m);
    assert.doesNotMatch(r.stdout, /corp-proxy/);
    assert.match(r.stdout, /^PROXY=null CACHE=\/home\/pod\/\.npm$/m);
    assert.ok(!r.stdout.includes(TOKEN) && !r.stderr.includes(TOKEN), 'the token appears nowhere in the pod');
    assert.doesNotMatch(r.stdout, /FOUND-TOKEN/);
  });

  test('node-gyp under npm honours the inherited nodedir: an addon builds with no network', async () => {
    const ws = workspace({
      'package.json': JSON.stringify({ name: 'addon', version: '1.0.0', scripts: { build: 'node-gyp rebuild' } }),
      'binding.gyp': JSON.stringify({ targets: [{ target_name: 'hello', sources: ['hello.c'] }] }),
      'hello.c': '#include <node_api.h>\nstatic napi_value init(napi_env env, napi_value exports) { return exports; }\nNAPI_MODULE(hello, init)\n',
    });
    const p = policyFile('version: 1\nsettings:\n  npm: inherit\nresources: { timeout: 2m }\n');
    const r = await cli(
      ['exec', '--policy', p, '--', 'sh', '-c', "npm run build 2>&1 | tail -5; node -e \"require('./build/Release/hello.node'); console.log('LOADED')\""],
      { home, cwd: ws, env: { HOME: userHome }, timeoutMs: 150_000 },
    );
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.doesNotMatch(r.stdout, /nodejs\.org|download/i, 'node-gyp did not try to download headers');
    assert.match(r.stdout, /^LOADED$/m);
  });

  test('explicit values are data: a newline, bracket or quote cannot add a line or section', async () => {
    const evilName = 'Eve"\n[core]\n\tsshCommand = /tmp/evil\\';
    const evilNpm = 'x"\nregistry=http://evil.test/\n[y]';
    const p = policyFile(
      [
        'version: 1',
        'settings:',
        `  git: { user.name: ${JSON.stringify(evilName)}, user.email: "e@example.org", "includeIf.gitdir:/.path": "/tmp/x" }`,
        `  npm: { init-author-name: ${JSON.stringify(evilNpm)} }`,
        '',
      ].join('\n'),
    );
    const r = await run(
      p,
      'git config --get core.sshcommand; echo "SSH=$?"; git config --get user.name; npm config get registry; npm config get init-author-name',
    );
    assert.equal(r.code, 125, 'includeIf is refused');
    assert.match(r.stderr, /settings\.git.*includeIf\.gitdir:\/\.path/);
    const p2 = policyFile(
      [
        'version: 1',
        'settings:',
        `  git: { user.name: ${JSON.stringify(evilName)}, user.email: "e@example.org" }`,
        `  npm: { init-author-name: ${JSON.stringify(evilNpm)} }`,
        '',
      ].join('\n'),
    );
    const r2 = await run(
      p2,
      'git config --get core.sshcommand; echo "SSH=$?"; git config --get user.name | od -c | head -3; npm config get registry; npm config get init-author-name | od -c | head -2',
    );
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, /^SSH=1$/m, 'no core.sshCommand was added');
    assert.match(r2.stdout, /https:\/\/registry\.npmjs\.org\//, 'the registry stays the default');
    assert.match(r2.stdout, /E {3}v {3}e {3}" {2}\\n {3}\[ {3}c {3}o {3}r {3}e/, 'the name is the whole value, newline and all');
  });

  test('a secret-looking key is one line naming the key and the fix', async () => {
    for (const [tool, key] of [
      ['git', 'credential.helper'],
      ['git', 'http.extraHeader'],
      ['npm', '//registry.npmjs.org/:_authToken'],
      ['npm', 'https-proxy'],
    ]) {
      const p = policyFile(`version: 1\nsettings:\n  ${tool}: { ${JSON.stringify(key)}: "x" }\n`);
      const r = await run(p, 'true');
      assert.equal(r.code, 125, `${key}: ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.ok(lines[0].includes(key), lines[0]);
      assert.match(lines[0], key.includes('proxy') ? /proxy/ : /secrets:/);
    }
  });

  test("a setting holding a secret's value never reaches the pod", async () => {
    const value = `sv-${Math.random().toString(36).slice(2)}-value`;
    const p = policyFile(
      [
        'version: 1',
        'secrets:',
        '  - { name: API_TOKEN, from: env:CLAWPOD_TEST_SETTING_SECRET, hosts: [api.example.com] }',
        'settings:',
        `  git: { user.email: "${value}@example.org" }`,
        '',
      ].join('\n'),
    );
    const r = await run(p, 'cat /etc/gitconfig', { CLAWPOD_TEST_SETTING_SECRET: value });
    assert.equal(r.code, 125, r.stdout);
    assert.match(r.stderr, /settings\.git.*user\.email.*secret API_TOKEN/);
    assert.ok(!r.stdout.includes(value) && !r.stderr.includes(value));
    // Inherited: the key is left out, the run goes on.
    const otherHome = tmpDir('user');
    fs.writeFileSync(path.join(otherHome, '.npmrc'), `init-author-name=${value}\nfund=false\n`);
    const p2 = policyFile(
      [
        'version: 1',
        'secrets:',
        '  - { name: API_TOKEN, from: env:CLAWPOD_TEST_SETTING_SECRET, hosts: [api.example.com] }',
        'settings:',
        '  npm: inherit',
        '',
      ].join('\n'),
    );
    const r2 = await run(p2, 'cat /etc/npmrc; npm config get init-author-name', { CLAWPOD_TEST_SETTING_SECRET: value, HOME: otherHome });
    assert.equal(r2.code, 0, r2.stderr);
    assert.ok(!r2.stdout.includes(value), 'the value is not in the pod');
    assert.match(r2.stdout, /fund/);
  });
});

// Review 2 (F1, F4): an inherited npmrc is an allowlist, registry URLs carry no credential, and
// the pod's settings exist on the host only in clawpod's memory and the pod's own mounts.
describe('settings: what an inherited npmrc carries, and where the files live', () => {
  const TOKENS = ['FURYTOKEN123abc', 'GLPAT-xyz', 'APIKEY-SECRET-1', 'ACCESSKEY-2', 'ghp_PAT3', 'BEARER4', 'REALTOKEN', 'SIGSTORE5', 'JWT6'];
  const REVIEW_NPMRC = [
    'registry=https://npm-proxy.fury.io/FURYTOKEN123abc/acme/',
    '@acme:registry=https://npm.pkg.example/api/v4/projects/42/packages/npm/?private_token=GLPAT-xyz',
    'api-key=APIKEY-SECRET-1',
    'npm-access-key=ACCESSKEY-2',
    'github-pat=ghp_PAT3',
    'bearer=BEARER4',
    '//registry.npmjs.org/:_authToken=REALTOKEN',
    'sigstore-id-token=SIGSTORE5',
    'oidc-jwt=JWT6',
    'nodedir=/usr',
    '',
  ].join('\n');

  test("the review's npmrc: no token reaches the pod; the scoped registry host and nodedir do", async () => {
    const h = tmpDir('user');
    fs.writeFileSync(path.join(h, '.npmrc'), REVIEW_NPMRC);
    const p = policyFile('version: 1\nsettings:\n  npm: inherit\n');
    const r = await run(p, 'cat /etc/npmrc; env; npm config list 2>&1; echo "SCOPED=$(npm config get @acme:registry)" "NODEDIR=$(npm config get nodedir)"', {
      HOME: h,
    });
    assert.equal(r.code, 0, r.stderr);
    for (const t of TOKENS) assert.ok(!r.stdout.includes(t) && !r.stderr.includes(t), `${t} reached the pod`);
    assert.match(r.stdout, /^SCOPED=https:\/\/npm\.pkg\.example\/api\/v4\/projects\/42\/packages\/npm\/ NODEDIR=\/usr$/m);
    const denies = auditEvents(home, r.runId!)
      .filter((e) => e.type === 'policy.deny')
      .map((e) => String(e.data.reason));
    assert.ok(
      denies.some((d) => /settings\.npm: registry .*secrets:/.test(d)),
      denies.join('\n'),
    );
    assert.ok(
      denies.some((d) => /@acme:registry.*query.*secrets:/.test(d)),
      denies.join('\n'),
    );
  });

  /** Every host file whose bytes hold marker, under the state dir and the clawpod home. */
  const holding = (marker: string) => {
    const g = spawnSync('grep', ['-rlsF', marker, '/run/clawpod', home], { encoding: 'utf8' });
    return g.stdout.split('\n').filter(Boolean);
  };
  const settingsPolicy = (marker: string) => {
    const h = tmpDir('user');
    fs.writeFileSync(path.join(h, '.npmrc'), `init-author-name=${marker}\n`);
    return { h, p: policyFile('version: 1\nsettings:\n  npm: inherit\n') };
  };
  /** While the pod runs: what another local user can read of its settings. */
  const othersView = (marker: string): string[] => {
    const seen: string[] = [];
    for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
      let argv: string[];
      try {
        argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      } catch {
        continue;
      }
      const at = argv.indexOf('/etc/npmrc');
      if (at < 0) continue;
      for (const f of [argv[at - 1], `/proc/${pid}/root/etc/npmrc`]) {
        const c = spawnSync('runuser', ['-u', 'nobody', '--', 'cat', f], { encoding: 'utf8' });
        if (c.status === 0 && c.stdout.includes(marker)) seen.push(f);
      }
    }
    for (const f of holding(marker)) {
      const c = spawnSync('runuser', ['-u', 'nobody', '--', 'cat', f], { encoding: 'utf8' });
      if (c.status === 0) seen.push(f);
    }
    return seen;
  };

  test("another local user cannot read a running pod's settings, and none are left when it ends", async () => {
    const marker = `mk-${Math.random().toString(36).slice(2)}`;
    const { h, p } = settingsPolicy(marker);
    let seen: string[] | null = null;
    const r = await cli(
      ['exec', '--policy', p, '--', 'sh', '-c', 'grep -c mk- /etc/npmrc; ls /proc/self/fd | tr "\\n" " " | sed "s/^/FDS=/"; echo; echo READY; sleep 3'],
      {
        home,
        cwd: workspace(),
        env: { HOME: h },
        onSpawn: (c) =>
          c.stdout?.on('data', (d) => {
            if (String(d).includes('READY') && !seen) seen = othersView(marker);
          }),
      },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^1$/m, 'the pod read its settings');
    assert.match(r.stdout, /^FDS=0 1 2 3 $/m, 'no settings pipe is left open in the pod');
    assert.deepEqual(seen, [], 'nobody read the settings while the pod ran');
    assert.deepEqual(holding(marker), [], 'no settings file left after the pod');
  });

  test('a SIGKILLed clawpod leaves no settings file once the next one has run', async () => {
    const marker = `mk-${Math.random().toString(36).slice(2)}`;
    const { h, p } = settingsPolicy(marker);
    const r = await cli(['exec', '--policy', p, '--', 'sh', '-c', 'echo READY; sleep 30'], {
      home,
      cwd: workspace(),
      env: { HOME: h },
      onSpawn: (c) =>
        c.stdout?.on('data', (d) => {
          if (String(d).includes('READY')) c.kill('SIGKILL');
        }),
    });
    assert.equal(r.code, 137);
    const next = await cli(['exec', '--', 'true'], { home, cwd: workspace(), env: { HOME: h } });
    assert.equal(next.code, 0, next.stderr);
    assert.deepEqual(holding(marker), [], "the killed run's settings are gone");
  });
});
