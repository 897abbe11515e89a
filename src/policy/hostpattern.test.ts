import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalHost, formatHostPattern, hostPatternError, isHostPattern, matchHost, parseHostPattern } from './hostpattern.js';

test('parseHostPattern recognizes exact, wildcard and IP patterns with optional ports', () => {
  assert.deepEqual(parseHostPattern('api.github.com'), { kind: 'exact', host: 'api.github.com' });
  assert.deepEqual(parseHostPattern('API.GitHub.com'), { kind: 'exact', host: 'api.github.com' });
  assert.deepEqual(parseHostPattern('localhost'), { kind: 'exact', host: 'localhost' });
  assert.deepEqual(parseHostPattern('example.com:8443'), { kind: 'exact', host: 'example.com', port: 8443 });
  assert.deepEqual(parseHostPattern('*.pypi.org'), { kind: 'wildcard', host: 'pypi.org' });
  assert.deepEqual(parseHostPattern('*.pypi.org:443'), { kind: 'wildcard', host: 'pypi.org', port: 443 });
  assert.deepEqual(parseHostPattern('10.0.0.1'), { kind: 'ip', host: '10.0.0.1' });
  assert.deepEqual(parseHostPattern('127.0.0.1:8080'), { kind: 'ip', host: '127.0.0.1', port: 8080 });
  assert.deepEqual(parseHostPattern('[::1]:443'), { kind: 'ip', host: '::1', port: 443 });
  assert.deepEqual(parseHostPattern('[0:0:0:0:0:0:0:1]'), { kind: 'ip', host: '::1' });
  assert.deepEqual(parseHostPattern('[2001:DB8::1]'), { kind: 'ip', host: '2001:db8::1' });
});

test('invalid host patterns are refused with a one-line reason', () => {
  const bad = [
    '',
    ' api.github.com',
    'api.github.com.',
    'http://example.com',
    'example.com/path',
    'user@example.com',
    '*',
    '*.com',
    '*example.com',
    'a.*.example.com',
    'foo*.example.com',
    '**.example.com',
    'example.com:0',
    'example.com:65536',
    'example.com:08',
    'example.com:',
    'example.com:http',
    '::1',
    '[::1',
    '[::1]x',
    '[not-ip]',
    '[127.0.0.1]',
    '10.0.1',
    '999.1.1.1',
    '1.2.3.4.5',
    '-bad.example.com',
    'bad-.example.com',
    'a..b',
    'exa mple.com',
    'bücher.de',
    'x'.repeat(64) + '.com',
  ];
  for (const p of bad) {
    assert.equal(isHostPattern(p), false, `isHostPattern(${JSON.stringify(p)})`);
    const err = hostPatternError(p);
    assert.ok(err && !err.includes('\n') && err.startsWith(JSON.stringify(p)), `error for ${JSON.stringify(p)}: ${err}`);
    assert.throws(() => parseHostPattern(p), Error);
  }
  assert.equal(hostPatternError('api.github.com'), null);
});

test('formatHostPattern writes the canonical form back', () => {
  for (const [input, out] of [
    ['API.github.com', 'api.github.com'],
    ['*.PyPI.org:443', '*.pypi.org:443'],
    ['[0::1]:8443', '[::1]:8443'],
    ['1.2.3.4', '1.2.3.4'],
  ]) {
    assert.equal(formatHostPattern(parseHostPattern(input)), out);
  }
});

// [pattern, host, port, expected]
const MATRIX: Array<[string, string, number, boolean]> = [
  // exact host: ports 80 and 443 only when no port is given
  ['api.github.com', 'api.github.com', 443, true],
  ['api.github.com', 'api.github.com', 80, true],
  ['api.github.com', 'api.github.com', 22, false],
  ['api.github.com', 'API.GITHUB.COM', 443, true],
  ['api.github.com', 'api.github.com.', 443, true],
  ['api.github.com', 'github.com', 443, false],
  ['api.github.com', 'x.api.github.com', 443, false],
  ['api.github.com', 'api.github.com.evil.test', 443, false],
  ['api.github.com', 'evilapi.github.com', 443, false],
  ['allowed.test', 'allowed.test.evil.test', 443, false],
  ['allowed.test', 'evil.test', 443, false],
  ['allowed.test', 'allowed.test@evil.test', 443, false],
  ['allowed.test', 'evil.test#allowed.test', 443, false],
  ['allowed.test', 'allowed.tes%74', 443, false],
  ['allowed.test', '', 443, false],
  // explicit port: only that port
  ['example.com:8443', 'example.com', 8443, true],
  ['example.com:8443', 'example.com', 443, false],
  ['example.com:8443', 'example.com', 80, false],
  // wildcard: subdomains only, never the apex or look-alikes
  ['*.example.com', 'a.example.com', 443, true],
  ['*.example.com', 'a.b.example.com', 443, true],
  ['*.example.com', 'example.com', 443, false],
  ['*.example.com', 'example.com.evil.test', 443, false],
  ['*.example.com', 'a.example.com.evil.test', 443, false],
  ['*.example.com', 'evilexample.com', 443, false],
  ['*.example.com', '.example.com', 443, false],
  ['*.example.com', '*.example.com', 443, false],
  ['*.example.com', 'a.example.com', 8080, false],
  ['*.example.com:8080', 'a.example.com', 8080, true],
  ['*.example.com:8080', 'a.example.com', 443, false],
  // IPv4 literals, including spellings a URL parser folds to the same address
  ['127.0.0.1', '127.0.0.1', 80, true],
  ['127.0.0.1', '127.0.0.2', 80, false],
  ['127.0.0.1', '127.1', 80, true],
  ['127.0.0.1', '0x7f000001', 80, true],
  ['127.0.0.1:9000', '127.0.0.1', 9000, true],
  ['127.0.0.1:9000', '127.0.0.1', 9001, false],
  ['127.0.0.1', 'localhost', 80, false],
  ['localhost', '127.0.0.1', 80, false],
  ['*.0.1.example.com', '127.0.0.1', 443, false],
  // IPv6 literals, bracketed or not, in any spelling of the same address
  ['[::1]:443', '::1', 443, true],
  ['[::1]:443', '[::1]', 443, true],
  ['[::1]:443', '[0:0:0:0:0:0:0:1]', 443, true],
  ['[::1]:443', '::2', 443, false],
  ['[::1]:443', '::1', 80, false],
  ['[::1]', '::1', 80, true],
  ['[2001:db8::1]', '2001:DB8:0::1', 443, true],
  // bad ports never match
  ['api.github.com', 'api.github.com', 0, false],
  ['api.github.com', 'api.github.com', 443.5, false],
  ['api.github.com', 'api.github.com', 70000, false],
];

test('matchHost matrix', () => {
  for (const [pattern, host, port, want] of MATRIX) {
    assert.equal(matchHost(pattern, host, port), want, `matchHost(${pattern}, ${JSON.stringify(host)}, ${port})`);
  }
});

test('matchHost takes a parsed pattern too and throws on an invalid one (callers deny)', () => {
  assert.equal(matchHost(parseHostPattern('*.pypi.org'), 'files.pypi.org', 443), true);
  assert.throws(() => matchHost('*.com', 'example.com', 443), /too broad/);
});

test('canonicalHost folds spellings and refuses non-hosts', () => {
  assert.equal(canonicalHost('Example.COM.'), 'example.com');
  assert.equal(canonicalHost('bücher.de'), 'xn--bcher-kva.de');
  assert.equal(canonicalHost('127.1'), '127.0.0.1');
  assert.equal(canonicalHost('[::1]'), '::1');
  for (const bad of ['', 'a b', 'a/b', 'a@b', 'a:80', 'a%2eb', 'a\nb', '*.example.com', '.', 'a..']) {
    assert.equal(canonicalHost(bad), null, JSON.stringify(bad));
  }
});
