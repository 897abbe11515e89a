// The proxy's policy decisions, pure: which host:port a pod may reach, and which of a name's
// addresses may be dialled. Host matching is the policy module's one matcher, never a copy.
import { isIP, isIPv6 } from 'node:net';
import { forbiddenAddress, ipv6Bytes } from './addresses.js';
import { canonicalHost, DEFAULT_PORTS, matchHost } from '../policy/hostpattern.js';
import type { NetworkRules } from './types.js';

export type Decision = { allow: true; addresses?: string[] } | { allow: false; reason: string };

const deny = (reason: string): Decision => ({ allow: false, reason });

/** matchHost, with a throwing (invalid) pattern counted as onThrow: deny lists match, allow lists do not. */
function matches(pattern: string, host: string, port: number, onThrow: boolean): boolean {
  try {
    return matchHost(pattern, host, port);
  } catch {
    return onThrow;
  }
}

function denyingPattern(host: string, port: number, network: NetworkRules): string | undefined {
  return network.deny.find((p) => matches(p, host, port, true));
}

function allowed(host: string, port: number, network: NetworkRules): boolean {
  return network.allow.some((p) => matches(p, host, port, false));
}

/** The IP a network.hosts entry maps host to: undefined when unmapped, null when the entry is not an IP. */
function mappedAddress(host: string, hosts: Record<string, string>): string | null | undefined {
  for (const [name, address] of Object.entries(hosts)) {
    if (canonicalHost(name) !== host) continue;
    const ip = canonicalHost(address);
    return ip !== null && isIP(ip) ? ip : null;
  }
  return undefined;
}

/**
 * Whether a pod may reach host:port. Deny wins over allow; a pattern without a port covers 80
 * and 443 only; an IP literal is allowed only by an IP pattern. When the answer carries
 * addresses (an IP literal, or a name mapped in network.hosts), those are what to dial and no
 * resolution happens; otherwise the caller resolves the name and passes the result through
 * guardAddresses.
 */
export function decide(host: string, port: number, network: NetworkRules): Decision {
  const h = canonicalHost(host);
  if (h === null) return deny('not a valid host name');
  if (!Number.isInteger(port) || port < 1 || port > 65535) return deny('not a valid port');
  const denied = denyingPattern(h, port, network);
  if (denied !== undefined) return deny(`matches network.deny ${JSON.stringify(denied)}`);
  const ip = isIP(h) !== 0;
  if (!allowed(h, port, network)) {
    if (ip) return deny('IP address not in network.allow (an IP is reachable only when listed literally)');
    if (!DEFAULT_PORTS.includes(port) && DEFAULT_PORTS.some((p) => allowed(h, p, network))) {
      return deny(`port ${port} not in network.allow (a pattern without :port allows only 80 and 443)`);
    }
    return deny('not in network.allow');
  }
  if (ip) return { allow: true, addresses: [h] };
  const mapped = mappedAddress(h, network.hosts);
  if (mapped === null) return deny('network.hosts maps it to something that is not an IP address');
  if (mapped === undefined) return { allow: true };
  // An explicit mapping is the user's decision, even to loopback; only network.deny overrides it.
  const deniedAddress = denyingPattern(mapped, port, network);
  if (deniedAddress !== undefined) return deny(`its address ${mapped} matches network.deny ${JSON.stringify(deniedAddress)}`);
  return { allow: true, addresses: [mapped] };
}

/** Why a canonical IP must not be reached through a name, or null when it may. */
function internalKind(ip: string, local: Set<string>): string | null {
  const v4 = unmapIPv4(ip);
  if (local.has(v4)) return "one of this host's own addresses";
  return forbiddenAddress(ip);
}

/** ::ffff:a.b.c.d (printed by URL as ::ffff:xxxx:yyyy) is an IPv4 address in IPv6 clothing. */
function unmapIPv4(ip: string): string {
  const b = isIPv6(ip) ? ipv6Bytes(ip) : [];
  if (b.length !== 16 || !b.slice(0, 12).every((x, i) => x === (i < 10 ? 0 : 255))) return ip;
  return b.slice(12).join('.');
}

function canonicalIps(addresses: string[]): string[] {
  const out: string[] = [];
  for (const a of addresses) {
    const ip = canonicalHost(a.replace(/%.*$/, '')); // an IPv6 zone id is not part of the address
    if (ip !== null && isIP(ip) && !out.includes(ip)) out.push(ip);
  }
  return out;
}

/**
 * The addresses a resolved, allowed name may be dialled at (no SSRF through DNS): every
 * address that is not public (forbiddenAddress) and this host's own addresses are dropped
 * unless the address itself is allowed as an IP pattern (a name mapped in network.hosts never
 * gets here); addresses matching network.deny are always dropped. Denies when
 * nothing is left, naming the first address refused.
 */
export function guardAddresses(host: string, port: number, addresses: string[], network: NetworkRules, localAddresses: string[]): Decision {
  const local = new Set(canonicalIps(localAddresses).map(unmapIPv4));
  const ok: string[] = [];
  let refused: string | undefined;
  for (const ip of canonicalIps(addresses)) {
    const denied = denyingPattern(ip, port, network);
    const kind = internalKind(ip, local);
    if (denied !== undefined) {
      refused ??= `${host} resolves to ${ip}, which matches network.deny ${JSON.stringify(denied)}`;
    } else if (kind !== null && !allowed(ip, port, network)) {
      refused ??= `${host} resolves to ${ip} (${kind}); allow that address itself or map the name in network.hosts`;
    } else {
      ok.push(ip);
    }
  }
  if (ok.length > 0) return { allow: true, addresses: ok };
  return deny(refused ?? `${host} does not resolve to any address`);
}
