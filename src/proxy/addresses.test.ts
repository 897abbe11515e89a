import assert from 'node:assert/strict';
import { test } from 'node:test';
import { forbiddenAddress, ipv6Bytes } from './addresses.js';

// [address, what the reason must say (null: public, may be reached through a name)]
const CLASSES: Array<[string, RegExp | null]> = [
  ['0.0.0.0', /unspecified/],
  ['0.1.2.3', /unspecified/],
  ['127.0.0.1', /loopback/],
  ['127.255.255.254', /loopback/],
  ['10.0.0.1', /RFC 1918/],
  ['10.255.255.255', /RFC 1918/],
  ['172.16.0.1', /RFC 1918/],
  ['172.31.255.255', /RFC 1918/],
  ['192.168.1.1', /RFC 1918/],
  ['100.64.0.1', /shared address space/],
  ['100.100.100.200', /cloud metadata/], // Alibaba Cloud metadata
  ['100.127.255.255', /shared/],
  ['169.254.169.254', /link-local/], // AWS, GCP, Azure metadata
  ['192.0.0.1', /IETF/],
  ['192.0.0.170', /IETF/], // NAT64 discovery
  ['192.0.2.1', /documentation/],
  ['192.88.99.1', /6to4 relay/],
  ['198.18.0.1', /benchmarking/],
  ['198.19.255.255', /benchmarking/],
  ['198.51.100.7', /documentation/],
  ['203.0.113.9', /documentation/],
  ['224.0.0.1', /multicast/],
  ['239.255.255.250', /multicast/],
  ['240.0.0.1', /reserved/],
  ['255.255.255.255', /broadcast/],
  ['::', /unspecified/],
  ['::1', /loopback/],
  ['::a00:1', /IPv4-compatible/],
  ['::ffff:0:a00:1', /IPv4-translated/],
  ['64:ff9b::808:808', /NAT64/], // even to a public IPv4: a translator reaches anything
  ['64:ff9b:1::a00:1', /NAT64/],
  ['100::1', /discard/],
  ['2001::1', /Teredo/],
  ['2001:2::1', /benchmarking/],
  ['2001:db8::1', /documentation/],
  ['fc00::1', /unique local/],
  ['fd00:ec2::254', /unique local/], // AWS metadata over IPv6
  ['fe80::1', /link-local/],
  ['febf::1', /link-local/],
  ['fec0::1', /site-local/],
  ['ff02::1', /multicast/],
  ['ff05::1:3', /multicast/],
  // public ones, next to the edges of the ranges above
  ['8.8.8.8', null],
  ['1.1.1.1', null],
  ['9.255.255.255', null],
  ['11.0.0.0', null],
  ['100.63.255.255', null],
  ['100.128.0.0', null],
  ['172.15.255.255', null],
  ['172.32.0.0', null],
  ['192.167.255.255', null],
  ['192.169.0.0', null],
  ['198.17.255.255', null],
  ['198.20.0.0', null],
  ['223.255.255.255', null],
  ['2606:4700::1111', null],
  ['2a00:1450:4001::200e', null],
  ['2002:808:808::1', null], // 6to4 through a public IPv4
  ['fbff::1', null],
];

test('forbiddenAddress: every class that is not the public internet, and the edges around them', () => {
  for (const [ip, want] of CLASSES) {
    const got = forbiddenAddress(ip);
    if (want === null) assert.equal(got, null, `${ip} is public`);
    else assert.match(got ?? 'null', want, `${ip}`);
  }
});

// Spellings a pod (or a DNS answer) could use for a forbidden address.
const BYPASSES: Array<[string, RegExp]> = [
  ['0x7f.1', /loopback/],
  ['0x7f000001', /loopback/],
  ['2130706433', /loopback/],
  ['017700000001', /loopback/],
  ['127.1', /loopback/],
  ['0177.0.0.1', /loopback/],
  ['0xa9.0xfe.0xa9.0xfe', /link-local/],
  ['[::ffff:127.0.0.1]', /IPv4-mapped 127\.0\.0\.1, loopback/],
  ['::ffff:7f00:1', /IPv4-mapped 127\.0\.0\.1, loopback/],
  ['::FFFF:A9FE:A9FE', /IPv4-mapped 169\.254\.169\.254, link-local/],
  ['::ffff:100.100.100.200', /IPv4-mapped .*shared/],
  ['0:0:0:0:0:ffff:0a00:0001', /IPv4-mapped 10\.0\.0\.1/],
  ['::127.0.0.1', /IPv4-compatible|loopback/],
  ['2002:7f00:1::1', /6to4 through 127\.0\.0\.1, loopback/],
  ['2002:a9fe:a9fe::', /6to4 through 169\.254\.169\.254/],
  ['fe80::1%eth0', /link-local/],
  ['[fe80::1%25eth0]', /link-local/],
  ['FD00:EC2:0:0:0:0:0:254', /unique local/],
  ['0:0:0:0:0:0:0:1', /loopback/],
];

test('forbiddenAddress: other spellings of a forbidden address are forbidden too', () => {
  for (const [ip, want] of BYPASSES) assert.match(forbiddenAddress(ip) ?? 'null', want, ip);
});

test('forbiddenAddress: what is not an IP address is refused, not guessed at', () => {
  for (const s of ['', 'localhost', 'example.com', '1.2.3.4.5', '::g', '[::1', 'metadata.google.internal']) {
    assert.equal(forbiddenAddress(s), 'not an IP address', JSON.stringify(s));
  }
});

test('ipv6Bytes: compressed, full and dotted-quad forms', () => {
  assert.deepEqual(ipv6Bytes('::1'), [...new Array(15).fill(0), 1]);
  assert.deepEqual(ipv6Bytes('::ffff:1.2.3.4').slice(10), [255, 255, 1, 2, 3, 4]);
  assert.deepEqual(ipv6Bytes('2001:db8::').slice(0, 4), [0x20, 0x01, 0x0d, 0xb8]);
  assert.deepEqual(ipv6Bytes('1:2:3:4:5:6:7:8'), [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
});
