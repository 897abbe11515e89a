// Host patterns for network.allow / network.deny / secrets[].hosts, and the one matcher that
// both the schema and the egress proxy use, so neither accepts what the other refuses.
import { isIPv4, isIPv6 } from 'node:net';

export interface HostPattern {
  /** exact: one DNS name; wildcard: any subdomain of host (never host itself); ip: a literal. */
  kind: 'exact' | 'wildcard' | 'ip';
  /** Lower-case DNS name (for wildcard: the suffix after "*."), or a canonical IP without brackets. */
  host: string;
  /** Only this port; absent means the web ports 80 and 443. */
  port?: number;
}

/** Ports a pattern without ":port" allows: plain and TLS web traffic, nothing else. */
export const DEFAULT_PORTS: readonly number[] = [80, 443];

const LABEL_RE = /^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$/;
const PORT_RE = /^[1-9][0-9]{0,4}$/;

/** Why a DNS name is not acceptable in a pattern, or null when it is. */
function dnsNameProblem(name: string): string | null {
  if (name.length === 0 || name.length > 253) return 'is not a host name';
  const labels = name.split('.');
  if (!labels.every((l) => LABEL_RE.test(l))) return 'is not a host name';
  // An all-digit last label is how a mistyped or abbreviated IPv4 address ("10.0.1") looks;
  // resolvers would read it as an address, so it must be written out as one.
  if (/^[0-9]+$/.test(labels[labels.length - 1])) return 'is not a host name or a full IPv4 address';
  return null;
}

function splitPort(p: string): { host: string; port?: number } | string {
  if (p.startsWith('[')) {
    const close = p.indexOf(']');
    if (close < 0) return 'has an unclosed "["';
    const rest = p.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) return 'has text after "]" that is not a :port';
    return withPort(p.slice(0, close + 1), rest === '' ? undefined : rest.slice(1));
  }
  const colon = p.indexOf(':');
  if (colon < 0) return { host: p };
  if (p.indexOf(':', colon + 1) >= 0) return 'has more than one ":" (write IPv6 addresses as [::1])';
  return withPort(p.slice(0, colon), p.slice(colon + 1));
}

function withPort(host: string, port: string | undefined): { host: string; port?: number } | string {
  if (port === undefined) return { host };
  const n = Number(port);
  if (!PORT_RE.test(port) || n > 65535) return 'has a port that is not 1-65535';
  return { host, port: n };
}

/** Parse a pattern, or return why it is not one (a sentence fragment after the pattern). */
function parseOrProblem(p: string): HostPattern | string {
  if (typeof p !== 'string' || p.trim() !== p || p === '') return 'is not a host pattern';
  const split = splitPort(p.toLowerCase());
  if (typeof split === 'string') return split;
  const { host, port } = split;
  const withOptionalPort = (hp: HostPattern): HostPattern => (port === undefined ? hp : { ...hp, port });
  if (host.startsWith('[')) {
    const inner = host.slice(1, -1);
    if (!host.endsWith(']') || !isIPv6(inner)) return 'is not a valid bracketed IPv6 address';
    return withOptionalPort({ kind: 'ip', host: canonicalIp(inner) });
  }
  if (isIPv4(host)) return withOptionalPort({ kind: 'ip', host });
  if (host.startsWith('*.')) {
    const suffix = host.slice(2);
    const problem = dnsNameProblem(suffix);
    if (problem) return `${problem} after "*."`;
    // "*.com" would open a whole top-level domain: almost certainly a mistake.
    if (!suffix.includes('.')) return 'is too broad: a wildcard needs at least two labels after "*."';
    return withOptionalPort({ kind: 'wildcard', host: suffix });
  }
  if (host.includes('*')) return 'may only use "*" as a whole first label, as in *.example.com';
  const problem = dnsNameProblem(host);
  if (problem) return problem;
  return withOptionalPort({ kind: 'exact', host });
}

/** Why p is not a host pattern, as one line, or null when it is one. */
export function hostPatternError(p: string): string | null {
  const r = parseOrProblem(p);
  if (typeof r !== 'string') return null;
  return `${JSON.stringify(p)} ${r} (use e.g. api.github.com, *.pypi.org, example.com:8443, [::1]:443)`;
}

export function isHostPattern(p: string): boolean {
  return typeof parseOrProblem(p) !== 'string';
}

/** Parse a pattern; throws an Error with a one-line message when it is not one. */
export function parseHostPattern(p: string): HostPattern {
  const r = parseOrProblem(p);
  if (typeof r === 'string') throw new Error(hostPatternError(p) ?? r);
  return r;
}

function canonicalIp(ip: string): string {
  // The WHATWG URL parser prints IPv6 in its compressed form, so [0:0::1] and [::1] compare equal.
  const h = new URL(`http://[${ip}]/`).hostname;
  return h.slice(1, -1);
}

// Characters that would make a "host" mean something else to a URL parser (userinfo, path,
// port, percent-decoding) or to a log reader; such a host is refused rather than interpreted.
const UNSAFE_HOST_CHARS = /[\s/\\?#@%:[\]\x00-\x1f\x7f]/;

/**
 * The canonical form of a host a client asked for: lower case, no trailing dot, punycode for
 * non-ASCII names, IPv4 in dotted-quad form (so 127.1 and 0x7f000001 become 127.0.0.1), IPv6
 * compressed and without brackets. Returns null for anything that is not a host. The proxy
 * should connect to this form, so that what is checked is what is dialled.
 */
export function canonicalHost(host: string): string | null {
  let h = host;
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (isIPv6(h)) return canonicalIp(h);
  if (h === '' || UNSAFE_HOST_CHARS.test(h)) return null;
  let parsed: string;
  try {
    parsed = new URL(`http://${h}/`).hostname;
  } catch {
    return null;
  }
  if (parsed.endsWith('.')) parsed = parsed.slice(0, -1);
  if (isIPv4(parsed)) return parsed;
  // After punycode, a real DNS name is only letters, digits, "-", "_" and dots; anything else
  // ("*", "!") could never resolve, and "*.example.com" must not pass as a subdomain.
  if (!/^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/.test(parsed)) return null;
  return parsed;
}

/**
 * Whether a request to host:port is covered by pattern. A pattern without a port covers only
 * ports 80 and 443; "*.example.com" covers subdomains only, never example.com itself. Throws
 * when pattern is not a valid pattern: callers treat a throw as "deny" (fail closed).
 */
export function matchHost(pattern: string | HostPattern, host: string, port: number): boolean {
  const p = typeof pattern === 'string' ? parseHostPattern(pattern) : pattern;
  if (!Number.isInteger(port) || port < 1 || port > 65535) return false;
  if (p.port === undefined ? !DEFAULT_PORTS.includes(port) : p.port !== port) return false;
  const h = canonicalHost(host);
  if (h === null) return false;
  const hostIsIp = isIPv4(h) || isIPv6(h);
  switch (p.kind) {
    case 'ip':
      return hostIsIp && h === p.host;
    case 'exact':
      return !hostIsIp && h === p.host;
    case 'wildcard':
      return !hostIsIp && h.endsWith(`.${p.host}`);
  }
}

/** A pattern written back in its canonical form (lower case, bracketed IPv6). */
export function formatHostPattern(p: HostPattern): string {
  const host = p.kind === 'wildcard' ? `*.${p.host}` : p.kind === 'ip' && p.host.includes(':') ? `[${p.host}]` : p.host;
  return p.port === undefined ? host : `${host}:${p.port}`;
}
