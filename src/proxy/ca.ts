// The ephemeral per-run certificate authority that lets the proxy terminate TLS to the hosts a
// secret is scoped to. Keys come from node:crypto (fast, native); node-forge only builds and
// signs the X.509 structures. Nothing here touches the disk: the caller decides where the CA
// certificate (never the key) goes.
import { createPrivateKey, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import { canonicalHost } from '../policy/hostpattern.js';
import { Lru } from './lru.js';
import type { RunCA } from './types.js';

const HOUR_MS = 3_600_000;
// Long enough for any run (a run's wall clock is its policy's timeout), short enough that a
// leaked certificate soon means nothing. Backdated an hour for clock skew between host and pod.
const CA_LIFETIME_MS = 8 * 24 * HOUR_MS;
const LEAF_LIFETIME_MS = 7 * 24 * HOUR_MS;

function rsaKeyPair(): { publicPem: string; privatePem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  return { publicPem: publicKey, privatePem: privateKey };
}

/** A positive, random 128-bit serial (the top bit cleared so DER does not read it as negative). */
function serialNumber(): string {
  const b = randomBytes(16);
  b[0] &= 0x7f;
  return b.toString('hex');
}

function validity(cert: forge.pki.Certificate, lifetimeMs: number): void {
  const now = Date.now();
  cert.validity.notBefore = new Date(now - HOUR_MS);
  cert.validity.notAfter = new Date(now + lifetimeMs);
}

/** Printable text for a certificate's CN: a run id is ours, but keep it plain and short. */
function plainText(s: string): string {
  return s.replace(/[^A-Za-z0-9 ._-]/g, '_').slice(0, 40);
}

function makeCACert(runId: string, keys: { publicPem: string; privatePem: string }): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicPem);
  cert.serialNumber = serialNumber();
  validity(cert, CA_LIFETIME_MS);
  const name = [
    { name: 'commonName', value: `clawpod run ${plainText(runId)} CA` },
    { name: 'organizationName', value: 'clawpod (ephemeral, per run)' },
  ];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    // pathLen 0: this CA signs leaf certificates only, never another CA.
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keys.privatePem), forge.md.sha256.create());
  return cert;
}

// In node-forge, missing from its type definitions.
type ForgeTbs = { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 };

/**
 * Signs with node:crypto instead of forge's JavaScript RSA (about 60 ms a signature, on the
 * event loop every pod's proxy shares): forge builds the to-be-signed part, OpenSSL signs it.
 */
function signFast(cert: forge.pki.Certificate, key: KeyObject): void {
  const c = cert as forge.pki.Certificate & { tbsCertificate: forge.asn1.Asn1 };
  c.signatureOid = forge.pki.oids.sha256WithRSAEncryption;
  c.siginfo.algorithmOid = forge.pki.oids.sha256WithRSAEncryption;
  c.tbsCertificate = (forge.pki as unknown as ForgeTbs).getTBSCertificate(cert);
  const tbs = Buffer.from(forge.asn1.toDer(c.tbsCertificate).getBytes(), 'binary');
  c.signature = sign('sha256', tbs, key).toString('binary');
}

function makeLeafCert(host: string, publicKey: forge.pki.PublicKey, ca: { cert: forge.pki.Certificate; key: KeyObject; keyId: string }): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serialNumber();
  validity(cert, LEAF_LIFETIME_MS);
  cert.setSubject([{ name: 'commonName', value: host.length <= 64 ? host : 'clawpod leaf' }]);
  cert.setIssuer(ca.cert.subject.attributes);
  // Clients check the name against subjectAltName only; an IP needs an iPAddress entry.
  const altName = isIP(host) ? { type: 7, ip: host } : { type: 2, value: host };
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [altName] },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.keyId },
  ]);
  signFast(cert, ca.key);
  return cert;
}

/** Leaf certificates (and TLS contexts) kept per run: enough for any real task's hosts. */
export const LEAF_CACHE = 256;

/**
 * A fresh CA for one run. Leaf certificates share one key pair (generated on first use: the
 * CA is trusted only by this run's pod, so per-host keys would buy nothing, and an RSA key per
 * host would let a pod burn the host's CPU) and the most recent LEAF_CACHE are kept per host.
 * Throws for a host that is not a DNS name or IP literal.
 */
export function createRunCA(runId: string): RunCA {
  const caKeys = rsaKeyPair();
  const caCert = makeCACert(runId, caKeys);
  const signer = { cert: caCert, key: createPrivateKey(caKeys.privatePem), keyId: caCert.generateSubjectKeyIdentifier().getBytes() };
  const leaves = new Lru<string, { certPem: string; keyPem: string }>(LEAF_CACHE);
  let leafKeys: { publicKey: forge.pki.PublicKey; privatePem: string } | undefined;
  return {
    certPem: forge.pki.certificateToPem(caCert),
    keyPem: caKeys.privatePem,
    issue(host: string) {
      const h = canonicalHost(host);
      if (h === null) throw new Error(`cannot issue a certificate for ${JSON.stringify(host)}: not a host name`);
      const cached = leaves.get(h);
      if (cached) return cached;
      if (!leafKeys) {
        const k = rsaKeyPair();
        leafKeys = { publicKey: forge.pki.publicKeyFromPem(k.publicPem), privatePem: k.privatePem };
      }
      const leaf = { certPem: forge.pki.certificateToPem(makeLeafCert(h, leafKeys.publicKey, signer)), keyPem: leafKeys.privatePem };
      leaves.set(h, leaf);
      return leaf;
    },
  };
}
