import assert from 'node:assert/strict';
import { test } from 'node:test';
import { injectHeaders, injectQuery, injectText, makePlaceholder, redactor, scopedSecrets } from './secrets.js';
import type { ResolvedSecret } from './types.js';

function secret(name: string, value: string, hosts: string[]): ResolvedSecret {
  return { name, value, placeholder: makePlaceholder(name), hosts };
}

test('makePlaceholder names the secret, is unique, and is safe in URLs and headers', () => {
  const a = makePlaceholder('GITHUB_TOKEN');
  const b = makePlaceholder('GITHUB_TOKEN');
  assert.match(a, /^clawpod-secret-GITHUB_TOKEN-[0-9a-f]{32}$/);
  assert.notEqual(a, b);
  assert.equal(encodeURIComponent(a), a);
});

test('redactor replaces every real value, in raw, percent-encoded and JSON-escaped spellings', () => {
  const s = [secret('TOKEN', 'ab/c"d', ['x.test']), secret('LONG', 'ab/c"d-and-more', ['x.test'])];
  const redact = redactor(s);
  assert.equal(redact('x ab/c"d y'), 'x [secret:TOKEN] y');
  assert.equal(redact(`q=${encodeURIComponent('ab/c"d')}`), 'q=[secret:TOKEN]');
  assert.equal(redact(JSON.stringify({ v: 'ab/c"d' })), '{"v":"[secret:TOKEN]"}');
  // The longer value is caught whole, not as TOKEN plus a tail.
  assert.equal(redact('ab/c"d-and-more'), '[secret:LONG]');
  assert.equal(redactor([])('anything'), 'anything');
  assert.equal(redactor([secret('EMPTY', '', ['x.test'])])('unchanged'), 'unchanged');
});

test('scopedSecrets uses the policy matcher: wildcards, ports, no look-alikes, invalid patterns scope nothing', () => {
  const gh = secret('GH', 'v1', ['api.github.com']);
  const wild = secret('W', 'v2', ['*.secret.test:8443']);
  const bad = secret('BAD', 'v3', ['*.com']);
  const all = [gh, wild, bad];
  const names = (host: string, port: number, tls = true): string[] => scopedSecrets(all, host, port, tls).map((s) => s.name);
  assert.deepEqual(names('api.github.com', 443), ['GH']);
  assert.deepEqual(names('API.GITHUB.COM.', 443), ['GH']);
  assert.deepEqual(names('api.github.com', 8080), []);
  assert.deepEqual(names('api.github.com.evil.test', 443), []);
  assert.deepEqual(names('a.secret.test', 8443), ['W']);
  assert.deepEqual(names('secret.test', 8443), []);
  assert.deepEqual(names('x.com', 443), []);
});

test('over plain HTTP only a pattern with an explicit port scopes a secret (no clear text on port 80 by default)', () => {
  const bare = secret('BARE', 'v1', ['api.example.test']);
  const explicit = secret('EXPLICIT', 'v2', ['svc.example.test:80', 'svc.example.test:8080']);
  const names = (host: string, port: number, tls: boolean): string[] => scopedSecrets([bare, explicit], host, port, tls).map((s) => s.name);
  assert.deepEqual(names('api.example.test', 80, false), []);
  assert.deepEqual(names('api.example.test', 80, true), ['BARE']);
  assert.deepEqual(names('svc.example.test', 80, false), ['EXPLICIT']);
  assert.deepEqual(names('svc.example.test', 8080, false), ['EXPLICIT']);
});

test('injection swaps header values and the query only, and records what it used', () => {
  const s = secret('TOKEN', 'r e/al', ['x.test']);
  const other = secret('OTHER', 'zzz', ['y.test']);
  const used = new Set<string>();
  const headers = injectHeaders(['Authorization', `Bearer ${s.placeholder}`, s.placeholder, 'name-untouched', 'X-O', other.placeholder], [s], used);
  assert.deepEqual(headers, ['Authorization', 'Bearer r e/al', s.placeholder, 'name-untouched', 'X-O', other.placeholder]);
  assert.deepEqual([...used], ['TOKEN']);
  const target = injectQuery(`/p/${s.placeholder}?k=${s.placeholder}&o=${other.placeholder}`, [s], new Set());
  assert.equal(target, `/p/${s.placeholder}?k=r%20e%2Fal&o=${other.placeholder}`);
  const none = new Set<string>();
  assert.equal(injectQuery('/no-query', [s], none), '/no-query');
  assert.equal(injectText('nothing here', [s], none), 'nothing here');
  assert.equal(none.size, 0);
});
