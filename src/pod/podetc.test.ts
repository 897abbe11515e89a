// The pod's /etc beyond passwd/group/hosts: name lookups from /etc/hosts only, and read-only copies
// of a fixed list of the host's public tables, never a file other local users could not read.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { Rules } from '../policy/types.js';
import { buildBwrapArgs, EGRESS, HOST_ETC_COPIES, preludeBinds, syntheticEtc, type HostLayout, type PodArgvInput } from './bwrap-argv.js';
import { hostEtcSignature, installPodEtc } from './podfiles.js';

const host: HostLayout = {
  bwrap: '/usr/bin/bwrap',
  podinit: '/opt/clawpod/build/clawpod-podinit',
  privileged: true,
  stage: '/run/clawpod/stage',
  usrLinks: {},
  etcBinds: ['/etc/ssl/certs', '/etc/nsswitch.conf'],
  etcDir: '/run/clawpod/etc',
  forwarder: '/run/clawpod/fwd',
  executor: '/run/clawpod/podexec',
};
const rules = {
  resources: { cpus: 1, memoryBytes: 512 << 20, pids: 256, timeoutMs: 600_000, diskBytes: 1 << 30 },
  workspace: 'none',
  mounts: [],
  network: { allow: [], deny: [], hosts: {} },
  secrets: [],
  env: {},
  tools: {},
  source: 'builtin:strict',
} as unknown as Rules;
const input = (over: Partial<PodArgvInput> = {}): PodArgvInput => ({
  rules,
  workspace: null,
  command: ['true'],
  changesDir: null,
  sourceIds: {},
  cgroupProcs: [],
  cgroupInto: null,
  identity: null,
  env: {},
  ...over,
});
const argv = (over: Partial<PodArgvInput> = {}) => buildBwrapArgs(host, input(over));
/** The pod's environment as bwrap is told to set it (last --setenv wins). */
const envOf = (a: string[]) => Object.fromEntries(a.flatMap((x, i) => (x === '--setenv' ? [[a[i + 1], a[i + 2]]] : [])));
/** Every [flag, src, dest] triple binding something at dest. */
const bindsAt = (a: string[], dest: string) => a.flatMap((x, i) => (/^--(ro-)?bind(-try)?$/.test(x) && a[i + 2] === dest ? [[x, a[i + 1]]] : []));

describe('pod /etc', () => {
  test('nsswitch: every database from files, hosts without dns', () => {
    const ns = syntheticEtc()['nsswitch.conf'];
    assert.match(ns, /^hosts: files$/m);
    assert.match(ns, /^services: files$/m);
    assert.doesNotMatch(ns, /dns|mdns|resolve|myhostname|systemd|nis|db/);
  });

  test("the pod's /etc is one read-only bind of clawpod's dir; the host nsswitch.conf is never bound", () => {
    const a = argv();
    assert.deepEqual(bindsAt(a, '/etc'), [['--ro-bind', '/run/clawpod/etc/root']]);
    assert.deepEqual(bindsAt(a, '/etc/nsswitch.conf'), [], "the dir holds clawpod's own");
    for (const f of HOST_ETC_COPIES) assert.deepEqual(bindsAt(a, `/etc/${f}`), [], f);
    // The other host dirs are bound by the prelude onto the dir's own mount points (bwrap's bind
    // of the dir is recursive): the pod sees them at the same place, read-only, and bwrap reads
    // the mount table once for all of /etc.
    assert.deepEqual(bindsAt(a, '/etc/ssl/certs'), [], 'no bwrap bind of its own');
    assert.deepEqual(preludeBinds(host, input()), [{ src: '/etc/ssl/certs', dest: '/run/clawpod/etc/root/ssl/certs' }]);
    assert.ok(a.indexOf('/etc') < a.lastIndexOf('--remount-ro'));
  });

  test('the dir: synthetic files, public tables, empty mount points, nothing else; stale copies removed', (t) => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-etc-root-'));
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-etc-out-'));
    t.after(() => {
      fs.rmSync(root, { recursive: true, force: true });
      fs.rmSync(out, { recursive: true, force: true });
    });
    fs.mkdirSync(path.join(root, 'ssl'));
    fs.writeFileSync(path.join(root, 'services'), 'http 80/tcp\n', { mode: 0o644 });
    fs.writeFileSync(path.join(root, 'protocols'), 'secret\n', { mode: 0o600 }); // not for everyone
    fs.writeFileSync(path.join(root, 'elsewhere'), 'secret\n', { mode: 0o644 });
    fs.writeFileSync(path.join(root, 'shadow'), 'secret\n', { mode: 0o644 }); // not on the list
    fs.symlinkSync(path.join(root, 'elsewhere'), path.join(root, 'mime.types')); // a link out of /usr
    execFileSync('mkfifo', [path.join(root, 'ssl', 'openssl.cnf')]); // must not hang
    const usrOsRelease = fs.existsSync('/usr/lib/os-release');
    if (usrOsRelease) fs.symlinkSync('/usr/lib/os-release', path.join(root, 'os-release'));
    const dir = installPodEtc(out, ['/etc/ssl/certs', '/etc/nsswitch.conf'], root);
    const copy = (f: string) => path.join(dir, f);
    assert.equal(fs.readFileSync(copy('services'), 'utf8'), 'http 80/tcp\n');
    assert.equal(fs.statSync(copy('services')).mode & 0o777, 0o444);
    for (const f of ['protocols', 'mime.types', 'ssl/openssl.cnf']) assert.ok(!fs.existsSync(copy(f)), f);
    if (usrOsRelease) assert.deepEqual(fs.readFileSync(copy('os-release')), fs.readFileSync('/usr/lib/os-release'));
    for (const [f, content] of Object.entries(syntheticEtc())) assert.equal(fs.readFileSync(copy(f), 'utf8'), content, f);
    // Every entry: which host files it holds (only the listed ones), the rest empty mount points.
    const entries = (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
    const expected = [
      'clawpod',
      'clawpod/ca.pem',
      'gitconfig',
      'group',
      'hosts',
      'npmrc',
      'nsswitch.conf',
      'passwd',
      'services',
      'ssl',
      'ssl/certs',
      ...(usrOsRelease ? ['os-release'] : []),
    ].sort();
    assert.deepEqual(entries, expected, 'no temp file, no host file off the list');
    for (const f of ['clawpod/ca.pem', 'gitconfig', 'npmrc']) assert.equal(fs.statSync(copy(f)).size, 0, f);
    assert.deepEqual(fs.readdirSync(copy('ssl/certs')), []);
    for (const d of ['', 'ssl', 'ssl/certs', 'clawpod']) assert.equal(fs.statSync(copy(d)).mode & 0o777, 0o755, d);
    fs.rmSync(path.join(root, 'services'));
    installPodEtc(out, ['/etc/ssl/certs'], root);
    assert.ok(!fs.existsSync(copy('services')), 'a file the host no longer has is not shown stale');
    assert.deepEqual(fs.readdirSync(out).sort(), ['root'], 'temp files renamed away');
  });

  test('the loader cache and the time zone are copies in the dir, never binds, and follow the host', (t) => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-etc-root-'));
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-etc-out-'));
    t.after(() => {
      fs.rmSync(root, { recursive: true, force: true });
      fs.rmSync(out, { recursive: true, force: true });
    });
    const a = buildBwrapArgs(
      { ...host, etcBinds: ['/etc/ssl/certs', '/etc/ld.so.cache', '/etc/localtime'] },
      {
        rules,
        workspace: null,
        command: ['true'],
        changesDir: null,
        sourceIds: {},
        cgroupProcs: [],
        cgroupInto: null,
        identity: null,
        env: {},
      },
    );
    for (const f of ['/etc/ld.so.cache', '/etc/localtime']) assert.deepEqual(bindsAt(a, f), [], f);
    const zone = ['/usr/share/zoneinfo/Etc/UTC', '/usr/share/zoneinfo/UTC'].find((z) => fs.existsSync(z));
    fs.writeFileSync(path.join(root, 'ld.so.cache'), 'cache v1', { mode: 0o644 });
    if (zone) fs.symlinkSync(zone, path.join(root, 'localtime'));
    const before = hostEtcSignature(root);
    const dir = installPodEtc(out, [], root);
    assert.equal(fs.readFileSync(path.join(dir, 'ld.so.cache'), 'utf8'), 'cache v1');
    if (zone) {
      assert.deepEqual(fs.readFileSync(path.join(dir, 'localtime')), fs.readFileSync(zone), 'the zone file the link leads to');
      assert.ok(fs.lstatSync(path.join(dir, 'localtime')).isFile(), 'a regular file, as its bind was');
    }
    // ldconfig replaces the cache: the signature the backend checks before each pod changes.
    assert.equal(hostEtcSignature(root), before, 'unchanged host: same signature');
    fs.writeFileSync(path.join(root, '.new'), 'cache v2', { mode: 0o644 });
    fs.renameSync(path.join(root, '.new'), path.join(root, 'ld.so.cache'));
    assert.notEqual(hostEtcSignature(root), before);
    installPodEtc(out, [], root);
    assert.equal(fs.readFileSync(path.join(dir, 'ld.so.cache'), 'utf8'), 'cache v2');
    assert.ok(HOST_ETC_COPIES.includes('localtime') && HOST_ETC_COPIES.includes('ld.so.cache'));
  });

  test('every later bind under /etc has its mount point in the dir', (t) => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-etc-out-'));
    t.after(() => fs.rmSync(out, { recursive: true, force: true }));
    const etcBinds = ['/etc/ssl/certs', '/etc/ld.so.cache', '/etc/alternatives', '/etc/localtime'].filter((f) => fs.existsSync(f));
    const dir = installPodEtc(out, etcBinds);
    const a = buildBwrapArgs(
      { ...host, etcBinds },
      {
        rules,
        workspace: null,
        command: ['true'],
        changesDir: null,
        sourceIds: {},
        cgroupProcs: [],
        cgroupInto: null,
        identity: null,
        env: {},
        etcData: ['/etc/gitconfig', '/etc/npmrc'],
        egress: { socketPath: '/x.sock', caBundle: '/x.pem' },
      },
    );
    const dests = a.flatMap((x, i) => (/^--(ro-)?bind(-try|-data)?$/.test(x) && a[i + 2].startsWith('/etc/') ? [a[i + 2]] : []));
    assert.ok(dests.includes(EGRESS.ca) && dests.includes('/etc/npmrc'), dests.join(' '));
    for (const d of dests) assert.ok(fs.existsSync(path.join(dir, d.slice('/etc/'.length))), d);
    // The prelude's binds land on mount points of the same dir (under etcDir, here out).
    const pre = preludeBinds({ ...host, etcBinds, etcDir: out }, input());
    assert.ok(pre.length > 0 && pre.every((b) => b.dest.startsWith(`${dir}/`)), JSON.stringify(pre));
    for (const b of pre) assert.equal(fs.statSync(b.dest).isDirectory(), fs.statSync(b.src).isDirectory(), b.dest);
  });
});

describe('a pod without network gives up at once', () => {
  test('npm and pip are told not to retry when there is no network, and only then', () => {
    const off = envOf(argv());
    assert.equal(off.npm_config_fetch_retries, '0');
    assert.equal(off.PIP_RETRIES, '0');
    const on = envOf(argv({ egress: { socketPath: '/run/clawpod/proxy/r1.sock' } }));
    assert.equal(on.npm_config_fetch_retries, undefined);
    assert.equal(on.PIP_RETRIES, undefined);
  });

  test("the policy's env wins", () => {
    const own = envOf(argv({ rules: { ...rules, env: { npm_config_fetch_retries: '5' } } }));
    assert.equal(own.npm_config_fetch_retries, '5');
    assert.equal(own.PIP_RETRIES, '0');
  });
});
