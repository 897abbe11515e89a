// Where a secret may travel. The pod holds a placeholder; the proxy swaps in the real value only
// on requests to the secret's hosts and only in the places its policy allows: by default the
// value of a credential header (CREDENTIAL_HEADERS), never another header a service may store
// and serve back (User-Agent, Referer, object metadata), the URL (path, query, userinfo), a
// header name or the body. A
// placeholder found in any other place on such a request refuses the request, so a pod cannot
// route the value into a spot the host echoes back (a query parameter quoted in an error page).
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

/** The header value a secret with inject.header gets: format with {} the value, {base64} its base64. */
export function formatValue(s: ResolvedSecret): string {
  const format = s.inject?.format ?? '{}';
  return format.replaceAll('{base64}', Buffer.from(s.value).toString('base64')).replaceAll('{}', s.value);
}

/** The headers a secret without inject rules may go in: ones services read as credentials and do not echo. */
export const CREDENTIAL_HEADERS: readonly string[] = [
  'authorization',
  'proxy-authorization',
  'x-api-key',
  'api-key',
  'x-auth-token',
  'x-goog-api-key',
  'private-token',
  'x-access-token',
];
const CREDENTIAL = new Set(CREDENTIAL_HEADERS);

/** Where s may go, in words for a refusal. */
function places(s: ResolvedSecret): string {
  const i = s.inject;
  if (!i) return `credential header values (${CREDENTIAL_HEADERS.join(', ')})`;
  const parts: string[] = [];
  if (i.header) parts.push(`the ${i.header} header, which clawpod sets itself`);
  if (i.query) parts.push(`the query parameter ${i.query}`);
  return parts.join(' and ');
}

function misplaced(s: ResolvedSecret, where: string, fix: string): Refusal {
  const reason = `secret ${s.name} may go only in ${places(s)}; its placeholder was in ${where} (${fix})`;
  return { ok: false, secret: s.name, reason };
}

export interface Refusal {
  ok: false;
  secret: string;
  reason: string;
}

export interface Injected {
  ok: true;
  /** Origin-form path and query. */
  path: string;
  /** Flat name/value pairs. */
  headers: string[];
  /** Names of the secrets whose values went in. */
  used: Set<string>;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

function injectQuery(query: string, scoped: ResolvedSecret[], used: Set<string>): string | Refusal {
  const pairs = query.split('&');
  for (let p = 0; p < pairs.length; p++) {
    const eq = pairs[p].indexOf('=');
    const key = eq < 0 ? pairs[p] : pairs[p].slice(0, eq);
    let val = eq < 0 ? '' : pairs[p].slice(eq + 1);
    for (const s of scoped) {
      if (key.includes(s.placeholder)) return misplaced(s, 'a query parameter name', 'send it in a header');
      if (!val.includes(s.placeholder)) continue;
      if (s.inject?.query === undefined || safeDecode(key) !== s.inject.query) {
        const fix = 'send it in a header, or name the parameter in secrets[].inject.query';
        return misplaced(s, `the query (parameter ${safeDecode(key)})`, fix);
      }
      val = val.split(s.placeholder).join(encodeURIComponent(s.value));
      used.add(s.name);
    }
    if (eq >= 0) pairs[p] = `${key}=${val}`;
  }
  return pairs.join('&');
}

function injectHeaders(pairs: string[], scoped: ResolvedSecret[], used: Set<string>): string[] | Refusal {
  const out = [...pairs];
  const setBy = new Map<string, ResolvedSecret>();
  for (const s of scoped) {
    const own = s.inject?.header?.toLowerCase();
    if (own === undefined) continue;
    const other = setBy.get(own);
    if (other) {
      const reason = `secrets ${other.name} and ${s.name} both set the ${s.inject?.header} header for this host (scope them to different hosts)`;
      return { ok: false, secret: s.name, reason };
    }
    setBy.set(own, s);
  }
  for (let i = 0; i < out.length; i += 2) {
    const name = out[i].toLowerCase();
    for (const s of scoped) {
      if (out[i].includes(s.placeholder)) return misplaced(s, 'a header name', 'put it in a header value');
      if (!out[i + 1].includes(s.placeholder)) continue;
      if (s.inject?.header?.toLowerCase() === name) continue; // replaced below anyway
      if (s.inject) return misplaced(s, `the ${out[i]} header`, 'remove it there');
      if (!CREDENTIAL.has(name)) return misplaced(s, `the ${out[i]} header`, 'remove it there, or name that header in secrets[].inject.header');
      out[i + 1] = out[i + 1].split(s.placeholder).join(s.value);
      used.add(s.name);
    }
  }
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) if (!setBy.has(out[i].toLowerCase())) kept.push(out[i], out[i + 1]);
  for (const s of setBy.values()) {
    kept.push(s.inject?.header ?? '', formatValue(s));
    used.add(s.name);
  }
  return kept;
}

/**
 * The request as it goes upstream to a host these secrets are scoped to: placeholders swapped
 * where allowed, headers that policies name set, or a refusal naming the secret and the fix.
 * userinfo is the user:password of an absolute-form target, which may never carry a secret.
 */
export function injectRequest(scoped: ResolvedSecret[], path: string, headers: string[], userinfo = ''): Injected | Refusal {
  const used = new Set<string>();
  const q = path.indexOf('?');
  const bare = q < 0 ? path : path.slice(0, q);
  for (const s of scoped) {
    if (bare.includes(s.placeholder)) return misplaced(s, 'the URL path', 'send it in a header');
    if (userinfo.includes(s.placeholder)) {
      return misplaced(s, "the URL's user:password", 'send it in a header; for Basic auth use inject.format "Basic {base64}"');
    }
  }
  const query = q < 0 ? undefined : injectQuery(path.slice(q + 1), scoped, used);
  if (typeof query === 'object') return query;
  const h = injectHeaders(headers, scoped, used);
  if (!Array.isArray(h)) return h;
  return { ok: true, path: query === undefined ? bare : `${bare}?${query}`, headers: h, used };
}
