import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decide, guardAddresses } from './decide.js';
import type { NetworkRules } from './types.js';

const NET: NetworkRules = {
  allow: ['allowed.test', '*.example.test', 'svc.test:8443', '10.0.0.5', '[2001:db8::5]:443', '[::1]:9000', 'mapped.test', 'mapped-denied.test'],
  deny: ['blocked.example.test', '10.9.9.9'],
  hosts: { 'mapped.test': '127.0.0.1', 'mapped-denied.test': '10.9.9.9', 'unlisted.test': '127.0.0.1' },
};

// [host, port, allowed, addresses the answer must carry (undefined: the caller resolves)]
const MATRIX: Array<[string, number, boolean, string[]?]> = [
  // exact names: bare pattern means 80 and 443 only
  ['allowed.test', 443, true],
  ['allowed.test', 80, true],
  ['ALLOWED.test.', 443, true],
  ['allowed.test', 8443, false],
  ['allowed.test', 22, false],
  // look-alikes
  ['allowed.test.evil.test', 443, false],
  ['evilallowed.test', 443, false],
  ['x.allowed.test', 443, false],
  // wildcard: subdomains, never the apex; deny wins over it
  ['a.example.test', 443, true],
  ['a.b.example.test', 80, true],
  ['example.test', 443, false],
  ['example.test.evil.test', 443, false],
  ['blocked.example.test', 443, false],
  ['x.blocked.example.test', 443, true],
  // explicit ports
  ['svc.test', 8443, true],
  ['svc.test', 443, false],
  ['svc.test', 80, false],
  // IPv4 literals only when listed, in any spelling
  ['10.0.0.5', 443, true, ['10.0.0.5']],
  ['0x0a000005', 80, true, ['10.0.0.5']],
  ['10.0.0.6', 443, false],
  ['127.0.0.1', 80, false],
  ['10.0.0.5', 8080, false],
  // IPv6 literals
  ['2001:db8::5', 443, true, ['2001:db8::5']],
  ['[2001:DB8:0::5]', 443, true, ['2001:db8::5']],
  ['2001:db8::5', 80, false],
  ['::1', 9000, true, ['::1']],
  ['::1', 443, false],
  ['[::2]', 9000, false],
  // network.hosts: gives the address, never the permission; network.deny still applies to it
  ['mapped.test', 443, true, ['127.0.0.1']],
  ['unlisted.test', 443, false],
  ['mapped-denied.test', 443, false],
  // not hosts at all
  ['', 443, false],
  ['a b', 443, false],
  ['evil.test@allowed.test', 443, false],
  ['allowed.test', 0, false],
  ['allowed.test', 65536, false],
];

test('decide: the allow/deny matrix', () => {
  for (const [host, port, want, addresses] of MATRIX) {
    const d = decide(host, port, NET);
    assert.equal(d.allow, want, `decide(${JSON.stringify(host)}, ${port}): ${JSON.stringify(d)}`);
    if (d.allow) assert.deepEqual(d.addresses, addresses, `addresses for ${host}`);
    else assert.ok(d.reason.length > 0 && !d.reason.includes('\n'), `one-line reason for ${host}`);
  }
});

test('decide: reasons say what to change', () => {
  const reason = (h: string, p: number): string => {
    const d = decide(h, p, NET);
    assert.equal(d.allow, false);
    return d.allow ? '' : d.reason;
  };
  assert.equal(reason('evil.test', 443), 'not in network.allow');
  assert.match(reason('allowed.test', 8443), /port 8443 .*only 80 and 443/);
  assert.match(reason('blocked.example.test', 443), /network\.deny "blocked\.example\.test"/);
  assert.match(reason('127.0.0.1', 80), /IP address .*listed literally/);
  assert.match(reason('mapped-denied.test', 443), /10\.9\.9\.9 matches network\.deny/);
  assert.equal(reason('a b', 443), 'not a valid host name');
});

test('decide: deny wins over an identical allow, and an invalid pattern fails closed', () => {
  assert.equal(decide('x.test', 443, { allow: ['x.test'], deny: ['x.test'], hosts: {} }).allow, false);
  // A broken deny pattern denies everything; a broken allow pattern allows nothing.
  assert.equal(decide('x.test', 443, { allow: ['x.test'], deny: ['*.com'], hosts: {} }).allow, false);
  assert.equal(decide('x.com', 443, { allow: ['*.com'], deny: [], hosts: {} }).allow, false);
  // A network.hosts entry that is not an address is refused, not resolved.
  assert.equal(decide('x.test', 443, { allow: ['x.test'], deny: [], hosts: { 'x.test': 'not-an-ip' } }).allow, false);
});

const GUARD_NET: NetworkRules = { allow: ['name.test', '127.0.0.1:8080'], deny: ['93.184.215.66'], hosts: {} };

test('guardAddresses: a name resolving to loopback, link-local, unspecified or this host is refused', () => {
  for (const ip of ['127.0.0.1', '127.5.6.7', '::1', '169.254.169.254', 'fe80::1', '0.0.0.0', '::', '::ffff:127.0.0.1', '192.0.2.2']) {
    const g = guardAddresses('name.test', 443, [ip], GUARD_NET, ['192.0.2.2', 'fe80::abcd']);
    assert.equal(g.allow, false, `${ip} must be refused: ${JSON.stringify(g)}`);
    if (!g.allow)
      assert.match(g.reason, /^name\.test resolves to .* \((IPv4-mapped 127.0.0.1, )?(loopback|link-local|unspecified|one of this host's own addresses)/);
  }
});

test('guardAddresses: ordinary addresses pass, refused ones are dropped, deny applies to addresses', () => {
  assert.deepEqual(guardAddresses('name.test', 443, ['93.184.215.14'], GUARD_NET, []), { allow: true, addresses: ['93.184.215.14'] });
  assert.deepEqual(guardAddresses('name.test', 443, ['127.0.0.1', '93.184.215.14', '93.184.215.14'], GUARD_NET, []), {
    allow: true,
    addresses: ['93.184.215.14'],
  });
  const denied = guardAddresses('name.test', 443, ['93.184.215.66'], GUARD_NET, []);
  assert.equal(denied.allow, false);
  assert.equal(guardAddresses('name.test', 443, [], GUARD_NET, []).allow, false);
  assert.equal(guardAddresses('name.test', 443, ['garbage'], GUARD_NET, []).allow, false);
});

test('guardAddresses: loopback is reachable through a name only where the address itself is allowed', () => {
  assert.deepEqual(guardAddresses('name.test', 8080, ['127.0.0.1'], GUARD_NET, []), { allow: true, addresses: ['127.0.0.1'] });
  assert.equal(guardAddresses('name.test', 443, ['127.0.0.1'], GUARD_NET, []).allow, false);
});

// A name whose DNS answer is not the public internet: refused, whatever the class or spelling.
const PRIVATE_ANSWERS: Array<[string, RegExp]> = [
  ['10.1.2.3', /RFC 1918/],
  ['172.20.0.1', /RFC 1918/],
  ['192.168.0.10', /RFC 1918/],
  ['100.100.100.200', /shared address space/],
  ['100.64.0.1', /shared address space/],
  ['192.0.0.8', /IETF/],
  ['198.18.5.5', /benchmarking/],
  ['224.0.0.251', /multicast/],
  ['255.255.255.255', /broadcast/],
  ['fd00:ec2::254', /unique local/],
  ['fc00::5', /unique local/],
  ['fec0::1', /site-local/],
  ['ff02::fb', /multicast/],
  ['64:ff9b::a00:1', /NAT64/],
  ['::ffff:10.1.2.3', /IPv4-mapped 10\.1\.2\.3/],
  ['::ffff:a9fe:a9fe', /IPv4-mapped 169\.254\.169\.254/],
  ['::ffff:6464:64c8', /IPv4-mapped 100\.100\.100\.200/],
  ['2002:a01:203::1', /6to4 through 10\.1\.2\.3/],
  ['0x7f.1', /loopback/],
  ['2130706433', /loopback/],
  ['fe80::1%eth0', /link-local/],
];

test('guardAddresses: private, shared, metadata, multicast, NAT64 and mapped answers are refused', () => {
  for (const [ip, kind] of PRIVATE_ANSWERS) {
    const g = guardAddresses('name.test', 443, [ip], GUARD_NET, []);
    assert.equal(g.allow, false, `${ip} must be refused: ${JSON.stringify(g)}`);
    if (!g.allow) {
      assert.match(g.reason, kind, ip);
      assert.match(g.reason, /allow that address itself or map the name in network\.hosts$/);
    }
  }
  // Every address of the answer is checked: a public one next to private ones is what is dialled.
  assert.deepEqual(guardAddresses('name.test', 443, ['10.1.2.3', 'fd00:ec2::254', '93.184.215.14'], GUARD_NET, []), {
    allow: true,
    addresses: ['93.184.215.14'],
  });
});

test('a private address is reachable when the policy names it: as an IP pattern, or by mapping the name', () => {
  const net: NetworkRules = {
    allow: ['name.test', '10.1.2.3', '[fd00:ec2::254]:443', 'meta.test', 'mapped.test'],
    deny: [],
    hosts: { 'mapped.test.': '100.100.100.200', 'meta.test': 'fd00:ec2::254' },
  };
  assert.deepEqual(guardAddresses('name.test', 443, ['10.1.2.3'], net, []), { allow: true, addresses: ['10.1.2.3'] });
  assert.deepEqual(guardAddresses('name.test', 443, ['fd00:ec2::254'], net, []), { allow: true, addresses: ['fd00:ec2::254'] });
  // The IP pattern names one address, not its neighbours or its other spellings' classes.
  assert.equal(guardAddresses('name.test', 443, ['10.1.2.4'], net, []).allow, false);
  assert.equal(guardAddresses('name.test', 80, ['fd00:ec2::254'], net, []).allow, false);
  // A literal request is allowed only by a literal pattern; a mapping gives the address itself.
  assert.deepEqual(decide('10.1.2.3', 80, net), { allow: true, addresses: ['10.1.2.3'] });
  assert.equal(decide('100.100.100.200', 80, net).allow, false);
  assert.equal(decide('[::ffff:10.1.2.3]', 80, net).allow, false);
  assert.deepEqual(decide('MAPPED.test', 443, net), { allow: true, addresses: ['100.100.100.200'] });
  assert.deepEqual(decide('meta.test.', 443, net), { allow: true, addresses: ['fd00:ec2::254'] });
});
