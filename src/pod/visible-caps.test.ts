// Unit side of "caps a runtime can see": the CPU list arithmetic, the cgroup view of both
// layouts (v2 cannot be run on this v1 host with its controllers, so its argv is checked here),
// and the prelude's refusal of a malformed --cpus.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { Rules } from '../policy/types.js';
import { buildPodinitArgv, type HostLayout, type PodArgvInput } from './bwrap-argv.js';
import { podCgroupView, type CgroupLayout, type PodCgroup } from './cgroups.js';
import { allowedCpus, cpuOnlineFile, formatCpuList, nextCpuSlot, parseCpuList, pickCpus } from './cpus.js';
import { installSysView, podSysView } from './sysview.js';
import { packageRoot } from '../util/root.js';

const host: HostLayout = {
  bwrap: '/usr/bin/bwrap',
  podinit: '/opt/clawpod/build/clawpod-podinit',
  privileged: true,
  stage: '/run/clawpod/stage',
  usrLinks: {},
  etcBinds: [],
  etcDir: '/run/clawpod/etc',
  forwarder: '/run/clawpod/fwd',
  executor: '/run/clawpod/podexec',
};

const rules: Rules = {
  resources: { cpus: 1, memoryBytes: 512 << 20, pids: 256, timeoutMs: 600_000, diskBytes: 1 << 30 },
  workspace: 'none',
  mounts: [],
  network: { allow: [], deny: [], hosts: {} },
  secrets: [],
  env: {},
  tools: {},
  source: 'test',
};

function input(over: Partial<PodArgvInput>): PodArgvInput {
  return {
    rules,
    workspace: null,
    command: ['true'],
    changesDir: null,
    sourceIds: {},
    cgroupProcs: [],
    cgroupInto: null,
    identity: { uid: 1_800_000_123, gid: 1_800_000_123, ownerUid: 0, ownerGid: 0 },
    env: {},
    ...over,
  };
}

/** Each (flag, a, b) triple of argv. */
const triples = (argv: string[], flag: string) => argv.flatMap((x, i) => (x === flag ? [[argv[i + 1], argv[i + 2]]] : []));

describe('CPU lists', () => {
  test("parse and format are the kernel's format, and refuse anything else", () => {
    assert.deepEqual(parseCpuList('0-2,5\n'), [0, 1, 2, 5]);
    assert.equal(formatCpuList([5, 0, 2, 1]), '0-2,5');
    for (const bad of ['', '1-0', 'a', '0,,1', '-1', '0-']) assert.equal(parseCpuList(bad), null, bad);
  });

  test('ceil(cpus) CPUs, never more than allowed, rotating with the slot', () => {
    const all = [0, 1, 2, 3];
    assert.deepEqual(pickCpus(all, 1, 0), [0]);
    assert.deepEqual(pickCpus(all, 1, 1), [1]);
    assert.deepEqual(pickCpus(all, 0.5, 6), [2]);
    assert.deepEqual(pickCpus(all, 1.5, 3), [0, 3]);
    assert.deepEqual(pickCpus(all, 16, 2), [0, 1, 2, 3]);
    assert.deepEqual(pickCpus([4, 6], 1, 1), [6], 'only CPUs this process may use');
  });

  test("allowed CPUs come from this process's own affinity", () => {
    assert.equal(allowedCpus().length, os.availableParallelism());
  });

  test('the rotor steps once per pod, and the online file holds the list', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cpus-'));
    try {
      assert.deepEqual([nextCpuSlot(dir), nextCpuSlot(dir), nextCpuSlot(dir)], [0, 1, 2]);
      // Rewritten in place at a fixed width: an older clawpod's shorter count goes on, and it wraps.
      fs.writeFileSync(path.join(dir, 'cpu-rotor'), '41');
      assert.deepEqual([nextCpuSlot(dir), nextCpuSlot(dir)], [41, 42]);
      fs.writeFileSync(path.join(dir, 'cpu-rotor'), '999999');
      assert.deepEqual([nextCpuSlot(dir), nextCpuSlot(dir)], [999999, 0]);
      assert.equal(fs.readFileSync(path.join(dir, 'cpu-rotor'), 'utf8'), '000001');
      const f = cpuOnlineFile(dir, '0-1');
      assert.equal(fs.readFileSync(f, 'utf8'), '0-1\n');
      assert.equal(fs.statSync(f).mode & 0o777, 0o444);
      assert.throws(() => cpuOnlineFile(dir, '../x'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('cgroup view', () => {
  test("v2: the pod's one group, at /sys/fs/cgroup, read-only; the prelude gets --cpus", () => {
    const layout: CgroupLayout = { mode: 'v2', parents: { memory: '/sys/fs/cgroup/clawpod', kill: '/sys/fs/cgroup/clawpod' }, missing: {} };
    const cg: PodCgroup = { layout, dirs: ['/sys/fs/cgroup/clawpod/r1'], procsFiles: [], intoDir: '/sys/fs/cgroup/clawpod/r1', enforced: [] };
    const view = podCgroupView(cg);
    assert.deepEqual(view, { binds: [{ src: '/sys/fs/cgroup/clawpod/r1', dest: '/sys/fs/cgroup' }], links: [] });
    const cpus = { list: '1', onlineFile: '/run/clawpod/etc/cpu-online-1' };
    const sys = podSysView(host.etcDir, view, cpus.onlineFile);
    assert.ok(sys);
    assert.deepEqual([sys.dirs, sys.files, sys.links], [['fs/cgroup'], ['devices/system/cpu/online'], []], 'the skeleton: mount points only');
    const argv = buildPodinitArgv(host, input({ cgroupInto: cg.intoDir, sysView: sys, cpus }));
    const bw = argv.slice(argv.indexOf('--') + 2);
    // The prelude binds both onto the skeleton's mount points; bwrap binds the skeleton, once.
    assert.deepEqual(triples(argv.slice(0, argv.indexOf('--')), '--ro-bind'), [
      ['/sys/fs/cgroup/clawpod/r1', `${sys.dir}/fs/cgroup`],
      ['/run/clawpod/etc/cpu-online-1', `${sys.dir}/devices/system/cpu/online`],
    ]);
    assert.ok(sys.dir.startsWith('/run/clawpod/etc/sys-'));
    assert.deepEqual(
      triples(bw, '--ro-bind').filter(([, d]) => d.startsWith('/sys')),
      [[sys.dir, '/sys']],
    );
    assert.ok(!triples(bw, '--bind').some(([, d]) => d.startsWith('/sys')), 'nothing of /sys is writable');
    assert.ok(bw.includes('--unshare-cgroup'), 'a cgroup namespace, required');
    assert.deepEqual(argv.slice(argv.indexOf('--cpus'), argv.indexOf('--cpus') + 2), ['--cpus', '1']);
  });

  test('v1: one bind per controller group of the pod, never the kill group or a parent', () => {
    const layout: CgroupLayout = {
      mode: 'v1',
      missing: {},
      parents: {
        memory: '/sys/fs/cgroup/memory/clawpod',
        cpu: '/sys/fs/cgroup/cpu/clawpod',
        pids: '/sys/fs/cgroup/pids/clawpod',
        kill: '/sys/fs/cgroup/unified/clawpod',
      },
    };
    const dirs = ['memory', 'cpu', 'pids', 'unified'].map((c) => `/sys/fs/cgroup/${c}/clawpod/r1`);
    const view = podCgroupView({ layout, dirs, procsFiles: [], intoDir: dirs[3], enforced: [] });
    const names = (c: string) => {
      try {
        return path.basename(fs.realpathSync(`/sys/fs/cgroup/${c}`));
      } catch {
        return c;
      }
    };
    assert.deepEqual(
      view.binds,
      ['memory', 'cpu', 'pids'].map((c, i) => ({ src: dirs[i], dest: `/sys/fs/cgroup/${names(c)}` })),
    );
    assert.ok(view.binds.every((b) => b.src.endsWith('/r1')));
  });

  test("v1: co-mounted controllers (named once, at detection) get their mount's name and a link per controller", () => {
    const layout: CgroupLayout = {
      mode: 'v1',
      missing: {},
      mounts: { memory: 'memory', cpu: 'cpu,cpuacct' },
      parents: {
        memory: '/nonexistent/memory/clawpod',
        cpu: '/nonexistent/cpu/clawpod',
      },
    };
    const dirs = ['/nonexistent/memory/clawpod/r1', '/nonexistent/cpu/clawpod/r1'];
    const view = podCgroupView({ layout, dirs, procsFiles: [], intoDir: null, enforced: [] });
    assert.deepEqual(view.binds, [
      { src: dirs[0], dest: '/sys/fs/cgroup/memory' },
      { src: dirs[1], dest: '/sys/fs/cgroup/cpu,cpuacct' },
    ]);
    assert.deepEqual(view.links, [
      { target: 'cpu,cpuacct', link: '/sys/fs/cgroup/cpu' },
      { target: 'cpu,cpuacct', link: '/sys/fs/cgroup/cpuacct' },
    ]);
  });

  test("one skeleton for the pod's /sys: mount points and links only, bound by the prelude, bwrap binds it once", () => {
    const etc = fs.mkdtempSync(path.join(os.tmpdir(), 'sysview-'));
    try {
      const view = {
        binds: [
          { src: '/h/memory/clawpod/r1', dest: '/sys/fs/cgroup/memory' },
          { src: '/h/cpu/clawpod/r1', dest: '/sys/fs/cgroup/cpu,cpuacct' },
        ],
        links: [{ target: 'cpu,cpuacct', link: '/sys/fs/cgroup/cpu' }],
      };
      const sys = podSysView(etc, view, '/run/clawpod/etc/cpu-online-0');
      assert.ok(sys);
      installSysView(sys);
      installSysView(sys); // made once; a second pod finds it
      const walk = (d: string): string[] =>
        fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => {
          const p = path.join(d, e.name);
          const rel = path.relative(sys.dir, p);
          return e.isDirectory() ? [`${rel}/`, ...walk(p)] : [e.isSymbolicLink() ? `${rel} -> ${fs.readlinkSync(p)}` : rel];
        });
      assert.deepEqual(walk(sys.dir).sort(), [
        'devices/',
        'devices/system/',
        'devices/system/cpu/',
        'devices/system/cpu/online',
        'fs/',
        'fs/cgroup/',
        'fs/cgroup/cpu -> cpu,cpuacct',
        'fs/cgroup/cpu,cpuacct/',
        'fs/cgroup/memory/',
      ]);
      assert.equal(fs.statSync(sys.dir).mode & 0o777, 0o755);
      assert.equal(fs.statSync(path.join(sys.dir, 'devices/system/cpu')).mode & 0o777, 0o755);
      assert.equal(fs.statSync(path.join(sys.dir, 'devices/system/cpu/online')).size, 0);
      assert.deepEqual(fs.readdirSync(etc), [path.basename(sys.dir)], 'no temporary left beside it');
      const argv = buildPodinitArgv(host, input({ sysView: sys }));
      const pre = argv.slice(0, argv.indexOf('--'));
      assert.deepEqual(triples(pre, '--ro-bind'), [
        ['/h/memory/clawpod/r1', `${sys.dir}/fs/cgroup/memory`],
        ['/h/cpu/clawpod/r1', `${sys.dir}/fs/cgroup/cpu,cpuacct`],
        ['/run/clawpod/etc/cpu-online-0', `${sys.dir}/devices/system/cpu/online`],
      ]);
      const bw = argv.slice(argv.indexOf('--') + 2);
      assert.deepEqual(
        triples(bw, '--ro-bind').filter(([, d]) => d.startsWith('/sys')),
        [[sys.dir, '/sys']],
      );
      assert.ok(!bw.includes('--symlink') || !triples(bw, '--symlink').some(([, l]) => l.startsWith('/sys')), 'the links are in the skeleton');
      // Another layout gets a skeleton of its own, never a dir with mount points it lacks.
      assert.notEqual(podSysView(etc, { binds: [view.binds[0]], links: [] }, undefined)?.dir, sys.dir);
      assert.equal(podSysView(etc, { binds: [], links: [] }, undefined), null, 'nothing to show: no /sys at all');
    } finally {
      fs.rmSync(etc, { recursive: true, force: true });
    }
  });

  test('no cgroups (unprivileged on v1): no cgroup view at all', () => {
    const cg: PodCgroup = { layout: { mode: 'none', parents: {}, missing: {} }, dirs: [], procsFiles: [], intoDir: null, enforced: [] };
    assert.deepEqual(podCgroupView(cg), { binds: [], links: [] });
  });
});

test('the prelude refuses a malformed --cpus with 125 before doing anything', () => {
  const podinit = path.join(packageRoot(), 'build', 'clawpod-podinit');
  for (const bad of ['', 'x', '1-0', '0,', '0-', '99999']) {
    const r = spawnSync(podinit, ['--cpus', bad, '--stage', '/nonexistent', '--stage-size', '1', '--userns', '--', '/bin/true'], { encoding: 'utf8' });
    assert.equal(r.status, 125, `--cpus "${bad}": ${r.stderr}`);
    assert.match(r.stderr, /bad --cpus/);
  }
});
