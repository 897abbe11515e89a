// Scoped secrets: the placeholder a pod holds, the swap on the wire to a secret's own hosts, and
// the redactor that keeps real values out of every event and message.
import { randomBytes } from 'node:crypto';
import { matchHost, parseHostPattern } from '../policy/hostpattern.js';
import type { ResolvedSecret } from './types.js';

/**
 * What the pod holds instead of a secret: names the secret (so a human reading pod output knows
 * what it stands for) and carries 128 random bits, so it is unique per run and means nothing
 * anywhere else. Only URL- and header-safe characters, so it survives any client unchanged.
 */
export function makePlaceholder(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9_]/g, '_');
  return `clawpod-secret-${safe}-${randomBytes(16).toString('hex')}`;
}

/** The spellings of a value that could land in text: raw, percent-encoded, JSON-escaped. */
function spellings(value: string): string[] {
  const forms = [value, encodeURIComponent(value), JSON.stringify(value).slice(1, -1)];
  return [...new Set(forms)].filter((f) => f.length > 0);
}

/** Replaces every real value (in the spellings above) with [secret:NAME]; longest first, so a value containing another is caught whole. */
export function redactor(secrets: ResolvedSecret[]): (s: string) => string {
  const pairs = secrets
    .flatMap((s) => spellings(s.value).map((form) => [form, `[secret:${s.name}]`] as const))
    .sort((a, b) => b[0].length - a[0].length);
  if (pairs.length === 0) return (s) => s;
  return (s) => {
    let out = String(s);
    for (const [form, tag] of pairs) if (out.includes(form)) out = out.split(form).join(tag);
    return out;
  };
}

/**
 * The secrets whose hosts cover host:port. Over plain HTTP (tls false) only patterns that name
 * the port count: a bare "api.example.com" covers 80 and 443, but its secret would cross the
 * network in clear text on 80, so that takes an explicit "api.example.com:80". An invalid
 * pattern scopes nothing (fail closed: no injection).
 */
export function scopedSecrets(secrets: ResolvedSecret[], host: string, port: number, tls: boolean): ResolvedSecret[] {
  return secrets.filter((s) =>
    s.hosts.some((p) => {
      try {
        const pattern = parseHostPattern(p);
        return (tls || pattern.port !== undefined) && matchHost(pattern, host, port);
      } catch {
        return false;
      }
    }),
  );
}

/** text with each scoped placeholder swapped for encode(value); names of the secrets swapped go into used. */
export function injectText(
  text: string,
  secrets: ResolvedSecret[],
  used: Set<string>,
  encode: (v: string) => string = (v) => v,
): string {
  let out = text;
  for (const s of secrets) {
    if (!out.includes(s.placeholder)) continue;
    out = out.split(s.placeholder).join(encode(s.value));
    used.add(s.name);
  }
  return out;
}

/** Header pairs (flat, as in rawHeaders) with placeholders swapped in values only. */
export function injectHeaders(pairs: string[], secrets: ResolvedSecret[], used: Set<string>): string[] {
  return pairs.map((v, i) => (i % 2 === 1 ? injectText(v, secrets, used) : v));
}

/** An origin-form target (path?query) with placeholders swapped in the query only, percent-encoded. */
export function injectQuery(target: string, secrets: ResolvedSecret[], used: Set<string>): string {
  const q = target.indexOf('?');
  if (q < 0) return target;
  return target.slice(0, q + 1) + injectText(target.slice(q + 1), secrets, used, encodeURIComponent);
}
