import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  gitInheritable, gitSettingError, npmInheritable, npmSettingError, parseGitKey, parseNpmrc, renderGitConfig, renderNpmrc,
} from './settings.js';

describe('settings rules', () => {
  test('git keys: credentials, urls, includes and proxies are refused; identity is not', () => {
    for (const k of ['credential.helper', 'credential.https://x.helper', 'url.https://t@x/.insteadOf', 'http.extraHeader',
      'http.https://x.extraheader', 'http.cookieFile', 'http.sslKey', 'core.askPass', 'include.path', 'includeIf.gitdir:~/w/.path']) {
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
    const text = renderGitConfig([['user.name', 'Eve"\n[core]\n\tsshCommand = x\\'], ['branch.a"b.remote', 'o']]);
    const lines = text.split('\n').filter(Boolean);
    assert.equal(lines.length, 5, text);
    assert.equal(lines[2], '\tname = "Eve\\"\\n[core]\\n\\tsshCommand = x\\\\"');
    assert.equal(lines[3], '[branch "a\\"b"]');
  });

  test('npm keys: auth, scoped and proxy keys are refused', () => {
    for (const k of ['_auth', '_authToken', '//registry.npmjs.org/:_authToken', '//h/:username', 'username', 'password', 'email', 'otp',
      'cert', 'key', 'certfile', 'keyfile', '@s:_authToken', 'proxy', 'https-proxy', 'noproxy', 'globalconfig', 'Bad_Key', 'a[]']) {
      assert.ok(npmSettingError(k, 'v'), k);
    }
    assert.match(npmSettingError('registry', 'https://u:tok@r.example/') ?? '', /user:password@/);
    for (const k of ['nodedir', 'registry', '@myorg:registry', 'init-author-name', 'init-author-email', 'fund', 'script-shell']) {
      assert.equal(npmSettingError(k, 'v'), null, k);
    }
    for (const k of ['script-shell', 'node-options', 'git', 'cache', 'prefix', 'cafile']) assert.equal(npmInheritable(k, '/x'), false, k);
    assert.ok(npmInheritable('nodedir', '/usr'));
  });

  test('npmrc: parsed as npm does, rendered JSON-quoted one key a line', () => {
    const m = parseNpmrc('; c\n# c\nnodedir = /usr ; comment\nq="a\\nb"\ns=\'lit\'\nesc=a\\;b\n[sec]\ninner=1\n');
    assert.deepEqual([...m], [['nodedir', '/usr'], ['q', 'a\nb'], ['s', 'lit'], ['esc', 'a;b']]);
    const text = renderNpmrc([['init-author-name', 'x"\nregistry=http://evil/\n[y]']]);
    assert.equal(text.split('\n').filter(Boolean).length, 2);
    assert.deepEqual([...parseNpmrc(text)], [['init-author-name', 'x"\nregistry=http://evil/\n[y]']]);
  });
});
