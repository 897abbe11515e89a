import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatAuthority, parseAbsoluteTarget, parseAuthority } from './target.js';

test('parseAuthority: CONNECT targets need a port; IPv6 needs brackets; hosts are canonical', () => {
  assert.deepEqual(parseAuthority('Api.Example.test.:443'), { ok: true, value: { host: 'api.example.test', port: 443 } });
  assert.deepEqual(parseAuthority('[::1]:9000'), { ok: true, value: { host: '::1', port: 9000 } });
  assert.deepEqual(parseAuthority('127.1:80'), { ok: true, value: { host: '127.0.0.1', port: 80 } });
  assert.deepEqual(parseAuthority('x.test', 80), { ok: true, value: { host: 'x.test', port: 80 } });
  for (const bad of ['x.test', 'x.test:', 'x.test:0', 'x.test:65536', 'x.test:http', '::1:443', '[::1]443', '[nope]:1', 'a b:443', 'a@b:443', ':443', '']) {
    assert.equal(parseAuthority(bad).ok, false, bad);
  }
});

test('parseAbsoluteTarget: host, port, path and query byte for byte, userinfo decoded', () => {
  assert.deepEqual(parseAbsoluteTarget('http://X.test/a/../b?q=%2F&r#frag'), { ok: true, value: { host: 'x.test', port: 80, path: '/a/../b?q=%2F&r' } });
  assert.deepEqual(parseAbsoluteTarget('http://x.test:8080'), { ok: true, value: { host: 'x.test', port: 8080, path: '/' } });
  assert.deepEqual(parseAbsoluteTarget('http://x.test?q'), { ok: true, value: { host: 'x.test', port: 80, path: '/?q' } });
  assert.deepEqual(parseAbsoluteTarget('http://[::1]:81/'), { ok: true, value: { host: '::1', port: 81, path: '/' } });
  assert.deepEqual(parseAbsoluteTarget('http://u%40x:p%3Aw@x.test/'), {
    ok: true,
    value: { host: 'x.test', port: 80, path: '/', userinfo: { user: 'u@x', password: 'p:w' } },
  });
  // The last @ ends the userinfo: the host is what follows it, never what precedes it.
  const tricky = parseAbsoluteTarget('http://allowed.test@evil.test/');
  assert.ok(tricky.ok && tricky.value.host === 'evil.test');
  for (const bad of ['/origin-form', 'https://x.test/', 'ftp://x.test/', 'http://', 'http://x.test:0/', 'http://%zz@x.test/', 'http://a b/']) {
    assert.equal(parseAbsoluteTarget(bad).ok, false, bad);
  }
});

test('formatAuthority omits the default port and brackets IPv6', () => {
  assert.equal(formatAuthority('x.test', 443, 443), 'x.test');
  assert.equal(formatAuthority('x.test', 8443, 443), 'x.test:8443');
  assert.equal(formatAuthority('::1', 80, 443), '[::1]:80');
});
