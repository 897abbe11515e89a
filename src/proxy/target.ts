// Request targets as a proxy receives them (RFC 9112 3.2): absolute-form for forwarded HTTP
// ("GET http://host:port/path") and authority-form for CONNECT ("host:port"). Parsed by hand
// rather than through URL, so the path and query reach the upstream byte for byte as sent.
import { isIPv6 } from 'node:net';
import { canonicalHost } from '../policy/hostpattern.js';

export interface HostPort {
  /** Canonical host (policy's canonicalHost): what is checked, scoped and dialled. */
  host: string;
  port: number;
}

export interface AbsoluteTarget extends HostPort {
  /** Origin-form path and query to send upstream (fragment dropped). */
  path: string;
  /** Decoded user and password from the URL, if it had userinfo. */
  userinfo?: { user: string; password: string };
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const fail = <T>(error: string): Parsed<T> => ({ ok: false, error });

function parsePort(s: string): number | null {
  if (!/^[0-9]{1,5}$/.test(s)) return null;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : null;
}

/** "host", "host:port", "[v6]" or "[v6]:port"; port falls back to defaultPort when given. */
export function parseAuthority(authority: string, defaultPort?: number): Parsed<HostPort> {
  let rawHost: string;
  let rawPort: string | undefined;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    const rest = close < 0 ? '' : authority.slice(close + 1);
    if (close < 0 || (rest !== '' && !rest.startsWith(':'))) return fail('malformed IPv6 authority');
    rawHost = authority.slice(1, close);
    if (!isIPv6(rawHost)) return fail('malformed IPv6 authority');
    rawPort = rest === '' ? undefined : rest.slice(1);
  } else {
    const colon = authority.lastIndexOf(':');
    rawHost = colon < 0 ? authority : authority.slice(0, colon);
    rawPort = colon < 0 ? undefined : authority.slice(colon + 1);
    // "::1:443" could be read two ways; RFC 3986 requires the brackets, so does the proxy.
    if (rawHost.includes(':')) return fail('IPv6 addresses must be in brackets ([::1]:443)');
  }
  const port = rawPort === undefined ? defaultPort : parsePort(rawPort);
  if (port === undefined) return fail('a port is required (host:port)');
  if (port === null) return fail('the port is not 1-65535');
  const host = canonicalHost(rawHost);
  if (host === null) return fail('not a valid host name');
  return { ok: true, value: { host, port } };
}

function decodeUserinfo(userinfo: string): AbsoluteTarget['userinfo'] | null {
  const colon = userinfo.indexOf(':');
  try {
    const user = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(0, colon));
    const password = colon < 0 ? '' : decodeURIComponent(userinfo.slice(colon + 1));
    return { user, password };
  } catch {
    return null;
  }
}

/** An absolute-form http:// request target. Anything else is an error a proxy client can act on. */
export function parseAbsoluteTarget(target: string): Parsed<AbsoluteTarget> {
  if (!/^http:\/\//i.test(target)) {
    if (/^https:\/\//i.test(target)) return fail('https:// targets go through CONNECT, not a plain request');
    return fail('this is an HTTP proxy: send absolute-form requests (GET http://host/path) or CONNECT');
  }
  const rest = target.slice('http://'.length);
  const end = rest.search(/[/?#]/);
  const authorityWithUser = end < 0 ? rest : rest.slice(0, end);
  let path = end < 0 ? '' : rest.slice(end);
  const hash = path.indexOf('#');
  if (hash >= 0) path = path.slice(0, hash);
  if (!path.startsWith('/')) path = `/${path}`;
  const at = authorityWithUser.lastIndexOf('@');
  const parsed = parseAuthority(authorityWithUser.slice(at + 1), 80);
  if (!parsed.ok) return parsed;
  if (at < 0) return { ok: true, value: { ...parsed.value, path } };
  const userinfo = decodeUserinfo(authorityWithUser.slice(0, at));
  if (userinfo === null) return fail('malformed userinfo in the URL');
  return { ok: true, value: { ...parsed.value, path, userinfo } };
}

/** host[:port] as a Host header, the port omitted when it is the scheme's default. */
export function formatAuthority(host: string, port: number, defaultPort: number): string {
  const h = isIPv6(host) ? `[${host}]` : host;
  return port === defaultPort ? h : `${h}:${port}`;
}
