import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gitInheritable, gitSettingError, npmInherited, npmSettingError, parseGitKey, parseNpmrc, renderGitConfig, renderNpmrc } from './settings.js';

describe('settings rules', () => {
  test('git keys: credentials, urls, includes and proxies are refused; identity is not', () => {
    for (const k of [
      'credential.helper',
      'credential.https://x.helper',
      'url.https://t@x/.insteadOf',
      'http.extraHeader',
      'http.https://x.extraheader',
      'http.cookieFile',
      'http.sslKey',
      'core.askPass',
      'include.path',
      'includeIf.gitdir:~/w/.path',
    ]) {
      assert.ok(gitSettingError(k, 'v'), k);
    }
    assert.match(gitSettingError('http.proxy', 'http://p') ?? '', /proxy/);
    assert.match(gitSettingError('user.name', 'a\rb') ?? '', /control/);
    assert.match(gitSettingError('remote.origin.url', 'https://u:p@h/x') ?? '', /user:password@/);
    for (const k of ['user.name', 'user.email', 'init.defaultBranch', 'core.editor', 'safe.directory']) assert.equal(gitSettingError(k, 'v'), null, k);
    assert.equal(parseGitKey('nodot'), null);
    assert.equal(parseGitKey('a.b.'), null);
    assert.deepEqual(parseGitKey('branch.feat.x.remote'), { section: 'branch', subsection: 'feat.x', name: 'remote' });
  });

  test('git inherit is an allowlist: programs, signing and hooks stay out', () => {
    assert.ok(gitInheritable('user.email', 'a@b'));
    assert.ok(gitInheritable('init.defaultbranch', 'main'));
    for (const k of ['core.sshcommand', 'core.hookspath', 'core.fsmonitor', 'core.pager', 'commit.gpgsign', 'user.signingkey', 'gpg.program', 'alias.co']) {
      assert.equal(gitInheritable(k, 'x'), false, k);
    }
  });

  test('git config rendering quotes every value: no line or section can be added', () => {
    const text = renderGitConfig([
      ['user.name', 'Eve"\n[core]\n\tsshCommand = x\\'],
      ['branch.a"b.remote', 'o'],
    ]);
    const lines = text.split('\n').filter(Boolean);
    assert.equal(lines.length, 5, text);
    assert.equal(lines[2], '\tname = "Eve\\"\\n[core]\\n\\tsshCommand = x\\\\"');
    assert.equal(lines[3], '[branch "a\\"b"]');
  });

  test('npm keys: auth, scoped and proxy keys are refused', () => {
    for (const k of [
      '_auth',
      '_authToken',
      '//registry.npmjs.org/:_authToken',
      '//h/:username',
      'username',
      'password',
      'email',
      'otp',
      'cert',
      'key',
      'certfile',
      'keyfile',
      '@s:_authToken',
      'proxy',
      'https-proxy',
      'noproxy',
      'globalconfig',
      'Bad_Key',
      'a[]',
    ]) {
      assert.ok(npmSettingError(k, 'v'), k);
    }
    assert.match(npmSettingError('registry', 'https://u:tok@r.example/') ?? '', /user:password@/);
    for (const k of ['nodedir', 'init-author-name', 'init-author-email', 'fund', 'script-shell']) {
      assert.equal(npmSettingError(k, 'v'), null, k);
    }
    for (const k of ['registry', '@myorg:registry']) assert.equal(npmSettingError(k, 'https://r.example/npm/'), null, k);
    for (const k of ['script-shell', 'node-options', 'git', 'cache', 'prefix', 'cafile']) assert.equal(npmInherited(k, '/x'), null, k);
    assert.deepEqual(npmInherited('nodedir', '/usr'), { value: '/usr' });
  });

  test('npmrc: parsed as npm does, rendered JSON-quoted one key a line', () => {
    const m = parseNpmrc('; c\n# c\nnodedir = /usr ; comment\nq="a\\nb"\ns=\'lit\'\nesc=a\\;b\n[sec]\ninner=1\n');
    assert.deepEqual(
      [...m],
      [
        ['nodedir', '/usr'],
        ['q', 'a\nb'],
        ['s', 'lit'],
        ['esc', 'a;b'],
      ],
    );
    const text = renderNpmrc([['init-author-name', 'x"\nregistry=http://evil/\n[y]']]);
    assert.equal(text.split('\n').filter(Boolean).length, 2);
    assert.deepEqual([...parseNpmrc(text)], [['init-author-name', 'x"\nregistry=http://evil/\n[y]']]);
  });

  test('npm inherit is an allowlist: keys npm does not document as plain values stay out', () => {
    for (const k of ['api-key', 'npm-access-key', 'github-pat', 'bearer', 'sigstore-id-token', 'oidc-jwt', 'my-plugin-thing', 'python']) {
      assert.equal(npmInherited(k, 'v'), null, k);
    }
    for (const k of ['api-key', 'npm-access-key', 'github-pat', 'bearer', 'oidc-jwt']) assert.ok(npmSettingError(k, 'v'), k);
    assert.deepEqual(npmInherited('fund', 'false'), { value: 'false' });
  });

  test('registry URLs: userinfo, query and fragment are cut on inherit and refused when listed; a token path is neither', () => {
    const scoped = npmInherited('@acme:registry', 'https://npm.pkg.example/api/v4/projects/42/packages/npm/?private_token=GLPAT-xyz');
    assert.ok(scoped && 'value' in scoped);
    assert.equal(scoped.value, 'https://npm.pkg.example/api/v4/projects/42/packages/npm/');
    assert.match(scoped.note ?? '', /query.*secrets:/);
    assert.ok(!(scoped.note ?? '').includes('GLPAT'));
    const u = npmInherited('registry', 'https://user:pw@r.example:8443/npm/#frag');
    assert.ok(u && 'value' in u);
    assert.equal(u.value, 'https://r.example:8443/npm/');
    const fury = npmInherited('registry', 'https://npm-proxy.fury.io/FURYTOKEN123abc/acme/');
    assert.ok(fury && 'drop' in fury && /token.*secrets:/.test(fury.drop) && !fury.drop.includes('FURY'), JSON.stringify(fury));
    assert.ok(npmInherited('registry', 'file:///etc/x') && 'drop' in npmInherited('registry', 'file:///etc/x')!);
    assert.deepEqual(npmInherited('registry', 'https://registry.npmjs.org/'), { value: 'https://registry.npmjs.org/' });
    assert.match(npmSettingError('registry', 'https://npm-proxy.fury.io/FURYTOKEN123abc/acme/') ?? '', /token.*secrets:/);
    assert.match(npmSettingError('@a:registry', 'https://r.example/npm/?t=1') ?? '', /query.*secrets:/);
    assert.match(npmSettingError('registry', 'not a url') ?? '', /not a URL/);
    for (const ok of [
      'https://registry.npmjs.org/',
      'https://pkgs.dev.azure.com/org/_packaging/feed-1/npm/registry/',
      'https://us-npm.pkg.dev/my-project-123456/my-repo/',
      'https://acme.jfrog.io/artifactory/api/npm/npm-virtual/',
      'http://127.0.0.1:4873/',
      'https://nexus.example/repository/npm-group/',
    ])
      assert.equal(npmSettingError('registry', ok), null, ok);
  });
});
