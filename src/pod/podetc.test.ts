// The pod's /etc beyond passwd/group/hosts: name lookups from /etc/hosts only, and read-only copies
// of a fixed list of the host's public tables, never a file other local users could not read.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { Rules } from '../policy/types.js';
import { buildBwrapArgs, HOST_ETC_COPIES, syntheticEtc, type HostLayout, type PodArgvInput } from './bwrap-argv.js';
import { copyHostEtc } from './podfiles.js';

const host: HostLayout = {
  bwrap: '/usr/bin/bwrap', podinit: '/opt/clawpod/build/clawpod-podinit', privileged: true, stage: '/run/clawpod/stage',
  usrLinks: {}, etcBinds: ['/etc/ssl/certs', '/etc/nsswitch.conf'], etcDir: '/run/clawpod/etc',
  forwarder: '/run/clawpod/fwd', executor: '/run/clawpod/podexec',
};
const rules = {
  resources: { cpus: 1, memoryBytes: 512 << 20, pids: 256, timeoutMs: 600_000, diskBytes: 1 << 30 },
  workspace: 'none', mounts: [], network: { allow: [], deny: [], hosts: {} }, secrets: [], env: {}, tools: {},
  source: 'builtin:strict',
} as unknown as Rules;
const argv = (over: Partial<PodArgvInput> = {}) => buildBwrapArgs(host, {
  rules, workspace: null, command: ['true'], changesDir: null, sourceIds: {}, cgroupProcs: [], cgroupInto: null,
  identity: null, env: {}, ...over,
});
/** The pod's environment as bwrap is told to set it (last --setenv wins). */
const envOf = (a: string[]) => Object.fromEntries(a.flatMap((x, i) => (x === '--setenv' ? [[a[i + 1], a[i + 2]]] : [])));
/** Every [flag, src, dest] triple binding something at dest. */
const bindsAt = (a: string[], dest: string) =>
  a.flatMap((x, i) => (/^--(ro-)?bind(-try)?$/.test(x) && a[i + 2] === dest ? [[x, a[i + 1]]] : []));

describe('pod /etc', () => {
  test('nsswitch: every database from files, hosts without dns', () => {
    const ns = syntheticEtc()['nsswitch.conf'];
    assert.match(ns, /^hosts: files$/m);
    assert.match(ns, /^services: files$/m);
    assert.doesNotMatch(ns, /dns|mdns|resolve|myhostname|systemd|nis|db/);
  });

  test('the synthetic nsswitch.conf is bound, the host one never', () => {
    const a = argv();
    assert.deepEqual(bindsAt(a, '/etc/nsswitch.conf'), [['--ro-bind', '/run/clawpod/etc/nsswitch.conf']]);
    assert.deepEqual(bindsAt(a, '/etc/ssl/certs'), [['--ro-bind', '/etc/ssl/certs']], 'other host binds stay');
  });

  test('each public table is a read-only copy from the state dir, skipped when absent', () => {
    assert.deepEqual([...HOST_ETC_COPIES].sort(), ['mime.types', 'os-release', 'protocols', 'services', 'ssl/openssl.cnf']);
    const a = argv();
    for (const f of HOST_ETC_COPIES) {
      assert.deepEqual(bindsAt(a, `/etc/${f}`), [['--ro-bind-try', `/run/clawpod/etc/host/${f}`]], f);
    }
    // Before the final remount, so the root stays read-only around them.
    assert.ok(a.indexOf('/etc/services') < a.lastIndexOf('--remount-ro'));
  });

  test('copies: world-readable regular files only, symlinks only into /usr, stale copies removed', (t) => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-etc-root-'));
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-etc-out-'));
    t.after(() => { fs.rmSync(root, { recursive: true, force: true }); fs.rmSync(out, { recursive: true, force: true }); });
    fs.mkdirSync(path.join(root, 'ssl'));
    fs.writeFileSync(path.join(root, 'services'), 'http 80/tcp\n', { mode: 0o644 });
    fs.writeFileSync(path.join(root, 'protocols'), 'secret\n', { mode: 0o600 }); // not for everyone
    fs.writeFileSync(path.join(root, 'elsewhere'), 'secret\n', { mode: 0o644 });
    fs.symlinkSync(path.join(root, 'elsewhere'), path.join(root, 'mime.types')); // a link out of /usr
    execFileSync('mkfifo', [path.join(root, 'ssl', 'openssl.cnf')]); // must not hang
    const usrOsRelease = fs.existsSync('/usr/lib/os-release');
    if (usrOsRelease) fs.symlinkSync('/usr/lib/os-release', path.join(root, 'os-release'));
    copyHostEtc(out, root);
    const copy = (f: string) => path.join(out, 'host', f);
    assert.equal(fs.readFileSync(copy('services'), 'utf8'), 'http 80/tcp\n');
    assert.equal(fs.statSync(copy('services')).mode & 0o777, 0o444);
    for (const f of ['protocols', 'mime.types', 'ssl/openssl.cnf']) assert.ok(!fs.existsSync(copy(f)), f);
    if (usrOsRelease) assert.deepEqual(fs.readFileSync(copy('os-release')), fs.readFileSync('/usr/lib/os-release'));
    fs.rmSync(path.join(root, 'services'));
    copyHostEtc(out, root);
    assert.ok(!fs.existsSync(copy('services')), 'a file the host no longer has is not shown stale');
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
