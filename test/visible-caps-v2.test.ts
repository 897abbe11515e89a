// The cgroup v2 side of "caps a runtime can see", on this hybrid host: a backend given the v2
// layout of the host's cgroup2 mount (/sys/fs/cgroup/unified, which delegates no memory, cpu or
// pids controller here, so the run is degraded) creates the pod straight in its v2 group, and the
// pod sees exactly that group at /sys/fs/cgroup, read-only, and nothing of the tree around it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { IS_ROOT, ROOT, tmpDir } from './helpers.js';

const UNIFIED = '/sys/fs/cgroup/unified';
const isV2 = (() => {
  try {
    return fs.statfsSync(UNIFIED).type === 0x63677270;
  } catch {
    return false;
  }
})();
const skip = !IS_ROOT ? 'needs root' : !isV2 ? `no cgroup2 mount at ${UNIFIED}` : false;

const SCRIPT = String.raw`
echo "SELF=$$"
echo "DIRS<<"; find /sys -mindepth 1 \( -type d -o -type l \) | sort; echo ">>"
echo "FILES<<"; ls /sys/fs/cgroup | sort; echo ">>"
echo "PROCS<<"; cat /sys/fs/cgroup/cgroup.procs; echo ">>"
echo "CGROUP<<"; cat /proc/self/cgroup; echo ">>"
echo "CGMOUNTS<<"; awk '$0 ~ / - cgroup2? / { print $4, $5, $6 }' /proc/self/mountinfo; echo ">>"
echo "NAMES<<"; grep -rsl -e clawpod -e "r-v2" /sys /proc/self/cgroup; echo ">>"
echo 1 > /sys/fs/cgroup/cgroup.procs 2>/dev/null && echo WRITE_OK
echo +pids > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null && echo WRITE_OK
mkdir /sys/fs/cgroup/x 2>/dev/null && echo WRITE_OK
true`;

test("cgroup v2 layout: the pod's own group, and only it, is /sys/fs/cgroup, read-only", { skip }, async () => {
  const home = tmpDir('home');
  const driver = path.join(tmpDir('driver'), 'drive.mjs');
  fs.writeFileSync(
    driver,
    `
    import { createBwrapBackend } from '${ROOT}/dist/src/pod/bwrap.js';
    import { probeHost } from '${ROOT}/dist/src/pod/host.js';
    import { detectCgroups } from '${ROOT}/dist/src/pod/cgroups.js';
    const host = { ...probeHost(process.env.CLAWPOD_HOME), cgroups: detectCgroups('${UNIFIED}') };
    if (host.cgroups.mode !== 'v2') { console.error('not v2: ' + JSON.stringify(host.cgroups)); process.exit(3); }
    const rules = { resources: { cpus: 1, memoryBytes: 256 << 20, pids: 64, timeoutMs: 30000, diskBytes: 16 << 20 },
      workspace: 'none', mounts: [], network: { allow: [], deny: [], hosts: {} }, secrets: [], env: {}, tools: {}, source: 'test' };
    const backend = createBwrapBackend({ clawpodHome: process.env.CLAWPOD_HOME, host });
    const pod = await backend.start({ id: 'r-v2-' + process.pid, rules, workspace: null, changesDir: null, allowDegraded: true,
      stdio: 'pipe', command: ['bash', '-c', ${JSON.stringify(SCRIPT)}] }, () => {});
    pod.stdout.pipe(process.stdout);
    pod.stderr.pipe(process.stderr);
    const out = await pod.wait();
    process.exitCode = out.exitCode;
  `,
  );
  const r = spawnSync(process.execPath, [driver], { env: { PATH: process.env.PATH, CLAWPOD_HOME: home }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = r.stdout;
  const block = (name: string) => (out.match(new RegExp(`^${name}<<\\n([\\s\\S]*?)^>>$`, 'm'))?.[1] ?? '').split('\n').filter(Boolean);
  assert.deepEqual(
    block('DIRS'),
    ['/sys/devices', '/sys/devices/system', '/sys/devices/system/cpu', '/sys/fs', '/sys/fs/cgroup'],
    'no subgroup, parent or sibling under /sys',
  );
  const files = block('FILES');
  for (const f of ['cgroup.procs', 'cgroup.controllers', 'cgroup.events']) assert.ok(files.includes(f), `${f} in /sys/fs/cgroup: ${files}`);
  const self = Number(out.match(/^SELF=(\d+)$/m)?.[1]);
  assert.ok(block('PROCS').map(Number).includes(self), `cgroup.procs is the pod's own group: ${block('PROCS')}`);
  assert.deepEqual(
    block('CGROUP').filter((l) => !l.endsWith(':/')),
    [],
    '/proc/self/cgroup shows only "/"',
  );
  const mounts = block('CGMOUNTS');
  assert.equal(mounts.length, 1, `one cgroup mount: ${mounts}`);
  assert.match(mounts[0], /^\/ \/sys\/fs\/cgroup ro,/, "the group's own root, at /sys/fs/cgroup, read-only");
  assert.deepEqual(block('NAMES'), [], 'nothing names clawpod or a run');
  assert.doesNotMatch(out, /WRITE_OK/, 'writes to the group fail');
});
