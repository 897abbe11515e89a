import assert from 'node:assert/strict';
import { test } from 'node:test';
import { injectRequest, makePlaceholder, redactor, scopedSecrets } from './secrets.js';
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

test('by default the value goes into credential header values only: other headers, URL and header names are refused', () => {
  const s = secret('TOKEN', 'r e/al-value', ['x.test']);
  const other = secret('OTHER', 'zzz-other-value', ['y.test']);
  const ok = injectRequest([s], '/p?x=1', ['Authorization', `Bearer ${s.placeholder}`, 'X-O', other.placeholder]);
  assert.ok(ok.ok);
  assert.deepEqual(ok.headers, ['Authorization', 'Bearer r e/al-value', 'X-O', other.placeholder], 'an unscoped placeholder passes unchanged');
  assert.deepEqual([...ok.used], ['TOKEN']);
  assert.equal(ok.path, '/p?x=1');
  for (const h of ['proxy-authorization', 'X-API-Key', 'api-key', 'X-Auth-Token', 'x-goog-api-key', 'PRIVATE-TOKEN', 'X-Access-Token']) {
    const r = injectRequest([s], '/', [h, s.placeholder]);
    assert.ok(r.ok && r.headers[1] === s.value, h);
  }
  const refused = (r: ReturnType<typeof injectRequest>) => (r.ok ? '' : r.reason);
  // Headers a service stores and may serve back (a User-Agent in an access log, a Referer).
  for (const h of ['User-Agent', 'Referer', 'X-Amz-Meta-Note', 'Cookie', 'X-Authorization-Note']) {
    assert.match(
      refused(injectRequest([s], '/', ['Authorization', s.placeholder, h, `x ${s.placeholder}`])),
      new RegExp(`^secret TOKEN may go only in credential header values .*; its placeholder was in the ${h} header`),
      h,
    );
  }
  const named = { ...s, inject: { header: 'X-Custom-Key' } };
  const viaOwn = injectRequest([named], '/', ['x-custom-key', named.placeholder]);
  assert.ok(viaOwn.ok && viaOwn.headers.join(' ') === `X-Custom-Key ${s.value}`, 'inject.header names one more');
  assert.match(
    refused(injectRequest([s], `/p?k=${s.placeholder}`, [])),
    /^secret TOKEN may go only in credential header values .*; its placeholder was in the query \(parameter k\)/,
  );
  assert.match(refused(injectRequest([s], `/p/${s.placeholder}`, [])), /in the URL path/);
  assert.match(refused(injectRequest([s], '/', [], `bot:${s.placeholder}`)), /user:password.*Basic \{base64\}/);
  assert.match(refused(injectRequest([s], '/', [`X-${s.placeholder}`, '1'])), /in a header name/);
  const none = injectRequest([s], '/no-query', ['A', 'b']);
  assert.ok(none.ok && none.used.size === 0 && none.path === '/no-query');
});

test('inject.header: the proxy sets that header in its format; the placeholder elsewhere is refused', () => {
  const s = { ...secret('KEY', 'v@lue-1234', ['x.test']), inject: { header: 'Authorization', format: 'Basic {base64}' } };
  const r = injectRequest([s], '/', ['authorization', 'Bearer pod-sent', 'Accept', '*/*']);
  assert.ok(r.ok);
  assert.deepEqual(r.headers, ['Accept', '*/*', 'Authorization', `Basic ${Buffer.from('v@lue-1234').toString('base64')}`]);
  assert.deepEqual([...r.used], ['KEY']);
  const elsewhere = injectRequest([s], '/', ['X-Key', s.placeholder]);
  assert.ok(
    !elsewhere.ok && /may go only in the Authorization header, which clawpod sets itself; its placeholder was in the X-Key header/.test(elsewhere.reason),
  );
  const twin = { ...secret('TWIN', 'other-12345', ['x.test']), inject: { header: 'authorization' } };
  const clash = injectRequest([s, twin], '/', []);
  assert.ok(!clash.ok && /both set the authorization header/.test(clash.reason));
});

test('inject.query: the placeholder is swapped, percent-encoded, in that parameter only', () => {
  const s = { ...secret('Q', 'a b/c+d-123', ['x.test']), inject: { query: 'api_key' } };
  const r = injectRequest([s], `/v1?x=1&api_key=${s.placeholder}`, []);
  assert.ok(r.ok);
  assert.equal(r.path, `/v1?x=1&api_key=${encodeURIComponent('a b/c+d-123')}`);
  assert.ok(!injectRequest([s], `/v1?other=${s.placeholder}`, []).ok);
  assert.ok(!injectRequest([s], '/v1', ['X-Key', s.placeholder]).ok, 'a policy naming a place narrows it to that place');
});
