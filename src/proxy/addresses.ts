// Address classes a pod must never reach through a name: everything that is not the public
// internet (loopback, private, shared, link-local, cloud metadata, multicast, reserved...) and
// every IPv6 spelling that leads back to one of them (IPv4-mapped, 6to4, NAT64, Teredo). The
// proxy dials only addresses checked here, or ones the policy names itself.
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { canonicalHost } from '../policy/hostpattern.js';

type Family = 'ipv4' | 'ipv6';

// [reason, family, network, prefix]. Order matters only for the reason given: the first match wins.
const CLASSES: ReadonlyArray<readonly [string, Family, string, number]> = [
  ['unspecified ("this network")', 'ipv4', '0.0.0.0', 8],
  ['loopback', 'ipv4', '127.0.0.0', 8],
  ['private (RFC 1918)', 'ipv4', '10.0.0.0', 8],
  ['private (RFC 1918)', 'ipv4', '172.16.0.0', 12],
  ['private (RFC 1918)', 'ipv4', '192.168.0.0', 16],
  ['shared address space (carrier-grade NAT, cloud metadata)', 'ipv4', '100.64.0.0', 10],
  ['link-local (cloud metadata)', 'ipv4', '169.254.0.0', 16],
  ['IETF protocol assignments', 'ipv4', '192.0.0.0', 24],
  ['documentation', 'ipv4', '192.0.2.0', 24],
  ['6to4 relay anycast', 'ipv4', '192.88.99.0', 24],
  ['benchmarking', 'ipv4', '198.18.0.0', 15],
  ['documentation', 'ipv4', '198.51.100.0', 24],
  ['documentation', 'ipv4', '203.0.113.0', 24],
  ['multicast', 'ipv4', '224.0.0.0', 4],
  ['broadcast', 'ipv4', '255.255.255.255', 32],
  ['reserved', 'ipv4', '240.0.0.0', 4],
  ['unspecified', 'ipv6', '::', 128],
  ['loopback', 'ipv6', '::1', 128],
  ['IPv4-compatible (deprecated)', 'ipv6', '::', 96],
  ['IPv4-translated', 'ipv6', '::ffff:0:0:0', 96],
  ['NAT64 (reaches IPv4 through a translator)', 'ipv6', '64:ff9b::', 96],
  ['NAT64 (reaches IPv4 through a translator)', 'ipv6', '64:ff9b:1::', 48],
  ['discard-only', 'ipv6', '100::', 64],
  ['Teredo (tunnels to IPv4)', 'ipv6', '2001::', 32],
  ['benchmarking', 'ipv6', '2001:2::', 48],
  ['ORCHID', 'ipv6', '2001:10::', 28],
  ['ORCHIDv2', 'ipv6', '2001:20::', 28],
  ['documentation', 'ipv6', '2001:db8::', 32],
  ['documentation', 'ipv6', '3fff::', 20],
  ['unique local (fc00::/7)', 'ipv6', 'fc00::', 7],
  ['link-local', 'ipv6', 'fe80::', 10],
  ['site-local (deprecated)', 'ipv6', 'fec0::', 10],
  ['multicast', 'ipv6', 'ff00::', 8],
];

// Built once, never changed after: a lookup table, not state.
const TABLE: ReadonlyArray<{ reason: string; family: Family; list: BlockList }> = CLASSES.map(([reason, family, net, prefix]) => {
  const list = new BlockList();
  list.addSubnet(net, prefix, family);
  return { reason, family, list };
});

/** The 16 bytes of a (valid) IPv6 address, an embedded dotted quad included. */
export function ipv6Bytes(ip: string): number[] {
  let s = ip;
  const tail: number[] = [];
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (quad) {
    tail.push(...quad.slice(1).map(Number));
    s = `${s.slice(0, quad.index)}0:0`;
  }
  const [head, rest] = s.includes('::') ? s.split('::') : [s, undefined];
  const words = (part: string | undefined) => (part ? part.split(':').map((w) => parseInt(w, 16)) : []);
  const hi = words(head);
  const lo = words(rest);
  const all = rest === undefined ? hi : [...hi, ...new Array<number>(8 - hi.length - lo.length).fill(0), ...lo];
  const bytes = all.flatMap((w) => [w >> 8, w & 255]);
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

const v4 = (b: number[], at: number) => b.slice(at, at + 4).join('.');
const starts = (b: number[], prefix: number[]) => prefix.every((x, i) => b[i] === x);

function tableReason(ip: string, family: Family): string | null {
  for (const c of TABLE) if (c.family === family && c.list.check(ip, family)) return c.reason;
  return null;
}

/**
 * Why a pod must not reach ip through a name, or null for a public address. Any spelling is
 * accepted (0x7f.1, 2130706433, [::ffff:7f00:1], fe80::1%eth0); what is not an IP is refused.
 */
export function forbiddenAddress(ip: string): string | null {
  const h = canonicalHost(ip.replace(/%[^\]]*/, '')); // an IPv6 zone id is not part of the address
  if (h === null || !(isIPv4(h) || isIPv6(h))) return 'not an IP address';
  if (isIPv4(h)) return tableReason(h, 'ipv4');
  const b = ipv6Bytes(h);
  // The IPv4 address inside decides: ::ffff:10.0.0.1 is 10.0.0.1 to the kernel.
  if (starts(b, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255])) {
    const inner = forbiddenAddress(v4(b, 12));
    return inner && `IPv4-mapped ${v4(b, 12)}, ${inner}`;
  }
  // 6to4 (2002:AABB:CCDD::/48) is routed through the IPv4 address AA.BB.CC.DD.
  if (starts(b, [0x20, 0x02])) {
    const inner = forbiddenAddress(v4(b, 2));
    if (inner) return `6to4 through ${v4(b, 2)}, ${inner}`;
  }
  return tableReason(h, 'ipv6');
}
