// `clawpod policy init | check | explain --json` through the real binary: a newcomer's starter
// file, warnings for what exec would refuse, one-line messages with did-you-mean, JSON rules.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { cli, policyFile, tmpDir } from './helpers.js';

let home: string;
before(() => {
  home = tmpDir('home');
});

function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line expected, got: ${stderr}`);
  assert.doesNotMatch(stderr, /\bat .+:\d+:\d+\)?$/m, 'no stack trace');
  return lines[0];
}

describe('policy init', () => {
  test('writes policy.yaml that checks clean and explains as the built-in strict policy; refuses to overwrite', async () => {
    const dir = tmpDir('init');
    const r = await cli(['policy', 'init'], { home, cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    const file = path.join(dir, 'policy.yaml');
    const text = fs.readFileSync(file, 'utf8');
    assert.match(text, /^# /);
    assert.match(text, /\n {2}memory: 512Mi\n/);
    assert.match(text, /# secrets:\n#   - name: GITHUB_TOKEN\n/);
    const check = await cli(['policy', 'check', file], { home, cwd: dir });
    assert.equal(check.code, 0, check.stderr);
    assert.equal(check.stderr, '', 'no warnings');
    assert.equal(check.stdout, `policy ${file}: ok\n`);
    const mine = JSON.parse((await cli(['policy', 'explain', '--json', file], { home, cwd: dir })).stdout);
    const strict = JSON.parse((await cli(['policy', 'explain', '--json'], { home, cwd: dir })).stdout);
    assert.equal(strict.source, 'builtin:strict');
    assert.deepEqual({ ...mine, source: 'builtin:strict' }, strict);

    fs.writeFileSync(file, 'mine\n');
    const again = await cli(['policy', 'init'], { home, cwd: dir });
    assert.equal(again.code, 125);
    assert.match(oneLine(again.stderr), /policy\.yaml already exists \(pass --force to overwrite it/);
    assert.equal(fs.readFileSync(file, 'utf8'), 'mine\n', 'untouched');
    assert.equal((await cli(['policy', 'init', '--force'], { home, cwd: dir })).code, 0);
    assert.equal(fs.readFileSync(file, 'utf8'), text);
    const named = await cli(['policy', 'init', 'agent.yaml'], { home, cwd: dir });
    assert.equal(named.code, 0, named.stderr);
    assert.equal(fs.readFileSync(path.join(dir, 'agent.yaml'), 'utf8'), text);
  });
});

describe('policy check', () => {
  test('warns about what exec would refuse, on stderr, and still exits 0', async () => {
    const tokenFile = path.join(tmpDir('tok'), 'tok');
    fs.writeFileSync(tokenFile, 'a-long-enough-token\n');
    const p = policyFile(
      [
        'network:',
        '  allow: [example.com]',
        'secrets:',
        '  - { name: GH, from: env:CLAWPOD_TEST_UNSET_VAR, hosts: [example.com] }',
        '  - { name: NET, from: env:CLAWPOD_TEST_SET_VAR, hosts: [api.github.com] }',
        '  - { name: FILE, from: file:/nonexistent/token, hosts: [example.com] }',
        `  - { name: OK, from: file:${tokenFile}, hosts: [example.com] }`,
        '',
      ].join('\n'),
    );
    const r = await cli(['policy', 'check', p], { home, env: { CLAWPOD_TEST_SET_VAR: 'a-long-enough-value' } });
    assert.equal(r.code, 0, r.stderr);
    const warnings = r.stderr.trim().split('\n');
    for (const w of warnings) assert.match(w, /^warning: /);
    assert.equal(warnings.length, 3, r.stderr);
    assert.match(r.stderr, /warning: secrets\[1\] \(NET\): host api\.github\.com is never reached: network\.allow does not cover it/);
    assert.match(r.stderr, /warning: clawpod exec would refuse to start: secret GH: environment variable CLAWPOD_TEST_UNSET_VAR is not set/);
    assert.match(r.stderr, /warning: clawpod exec would refuse to start: secret FILE: cannot read \/nonexistent\/token/);
    assert.doesNotMatch(r.stderr, /a-long-enough/, 'no secret value');
    assert.match(r.stdout, /: ok \(3 warnings above\)\n$/);
    // exec agrees: the first of them refuses the run.
    const exec = await cli(['exec', '--policy', p, '--', 'true'], { home });
    assert.equal(exec.code, 125);
    assert.match(exec.stderr, /secret GH: environment variable CLAWPOD_TEST_UNSET_VAR is not set/);
  });

  test('refuses unknown tool names and misspelt keys with did-you-mean, one line each', async () => {
    const cases: [string, RegExp][] = [
      [
        'tools:\n  deny: [bsh]\n',
        /tools\.deny\[0\]: "bsh" is not a tool \(did you mean bash\? the tools are bash, read_file, write_file, edit_file, glob, grep, web_fetch\)$/,
      ],
      ['resorces: {}\n', /unknown key "resorces" at top level \(did you mean resources\?/],
      ['network:\n  alow: [example.com]\n', /unknown key "alow" in network \(did you mean allow\? network takes allow, deny, hosts, extraCA\)$/],
      ['resources:\n  memroy: 1Gi\n', /unknown key "memroy" in resources \(did you mean memory\?/],
      [
        'filesystem:\n  mounts: /data\n',
        /filesystem\.mounts: must be a list of mappings \(got "\/data"\), e.g\. mounts: \[\{host: ~\/datasets, path: \/data, mode: ro\}\]$/,
      ],
    ];
    for (const [yaml, re] of cases) {
      const r = await cli(['policy', 'check', policyFile(yaml)], { home });
      assert.equal(r.code, 125, yaml);
      assert.match(oneLine(r.stderr), re, yaml);
    }
  });
});

describe('policy explain --json', () => {
  test('the rules as stable fields on stdout, secrets without values', async () => {
    const p = policyFile(
      [
        'resources: { memory: 1Gi }',
        'network: { allow: [api.github.com] }',
        'secrets:',
        '  - { name: GH, from: env:CLAWPOD_TEST_SECRET, hosts: [api.github.com], inject: { header: Authorization, format: "Bearer {}" } }',
        'env: { MODE: plain-value }',
        'tools: { deny: [web_fetch] }',
        '',
      ].join('\n'),
    );
    const r = await cli(['policy', 'explain', '--json', p], { home, env: { CLAWPOD_TEST_SECRET: 'the-real-secret-value' } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const j = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(j), ['version', 'source', 'resources', 'workspace', 'mounts', 'network', 'secrets', 'env', 'settings', 'tools']);
    assert.equal(j.resources.memoryBytes, 1024 ** 3);
    assert.deepEqual(j.secrets, [
      {
        name: 'GH',
        from: 'env:CLAWPOD_TEST_SECRET',
        hosts: ['api.github.com'],
        inject: { header: 'Authorization', format: 'Bearer {}' },
        unreachableHosts: [],
      },
    ]);
    assert.deepEqual(j.env, ['MODE']);
    assert.deepEqual(j.tools, { allow: null, deny: ['web_fetch'], approve: [] });
    assert.doesNotMatch(r.stdout, /the-real-secret-value|plain-value/);
  });
});
