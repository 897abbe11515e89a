import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { test } from 'node:test';
import { createRunCA } from './ca.js';

test('the run CA is a CA, names the run, and its key matches its certificate', () => {
  const ca = createRunCA('run-42');
  const cert = new X509Certificate(ca.certPem);
  assert.equal(cert.ca, true);
  assert.match(cert.subject, /CN=clawpod run run-42 CA/);
  assert.equal(cert.checkPrivateKey(createPrivateKey(ca.keyPem)), true);
  assert.ok(cert.verify(cert.publicKey), 'self-signed');
  assert.ok(new Date(cert.validFrom) <= new Date() && new Date() < new Date(cert.validTo));
});

test('leaf certificates are signed by the run CA, name exactly their host, and are cached', () => {
  const ca = createRunCA('run-43');
  const caCert = new X509Certificate(ca.certPem);
  const leaf = ca.issue('API.Secret.test');
  const cert = new X509Certificate(leaf.certPem);
  assert.equal(cert.ca, false);
  assert.ok(cert.verify(caCert.publicKey), 'signed by the run CA');
  assert.ok(cert.checkIssued(caCert));
  assert.equal(cert.checkHost('api.secret.test'), 'api.secret.test');
  assert.equal(cert.checkHost('other.test'), undefined);
  assert.equal(cert.checkPrivateKey(createPrivateKey(leaf.keyPem)), true);
  assert.equal(ca.issue('api.secret.test'), leaf, 'cached per canonical host');
  // Another run's CA does not vouch for this run's leaves.
  assert.equal(cert.verify(new X509Certificate(createRunCA('other').certPem).publicKey), false);
});

test('IP literals get an IP subjectAltName; non-hosts are refused', () => {
  const ca = createRunCA('run-44');
  assert.equal(new X509Certificate(ca.issue('127.0.0.1').certPem).checkIP('127.0.0.1'), '127.0.0.1');
  assert.equal(new X509Certificate(ca.issue('[::1]').certPem).checkIP('::1'), '::1');
  assert.throws(() => ca.issue('a b'), /not a host name/);
});

test('one leaf key per run, whatever the host; the certificate cache is bounded', () => {
  const ca = createRunCA('run-45');
  const started = Date.now();
  const keys = new Set<string>();
  const first = ca.issue('h0.test');
  for (let i = 0; i < 300; i++) keys.add(ca.issue(`h${i}.test`).keyPem);
  const perLeafMs = (Date.now() - started) / 300;
  assert.equal(keys.size, 1, "every leaf shares the run's one key pair");
  // Past the cache's size the oldest host is issued anew (another serial), the newest is not.
  assert.notEqual(ca.issue('h0.test').certPem, first.certPem);
  assert.equal(ca.issue('h299.test'), ca.issue('h299.test'));
  // No RSA key generation per host, and OpenSSL signs: a leaf is a few ms (forge alone took ~60 ms).
  assert.ok(perLeafMs < 20, `${perLeafMs.toFixed(1)} ms per leaf`);
});
