// Resource caps through cgroups, v1 (hybrid hosts like ours) and v2 (most users).
// The pod is created directly in its v2 group (clone3 CLONE_INTO_CGROUP) and joins v1 groups by
// writing its pid before it execs bwrap, so the whole pod tree is charged from the start.
import fs from 'node:fs';
import path from 'node:path';

export type CgroupMode = 'v1' | 'v2' | 'none';
export type Cap = 'memory' | 'cpu' | 'pids';

export interface CgroupLayout {
  mode: CgroupMode;
  /** Directory per controller under which pods get their own group (v1), or the one v2 parent. */
  parents: Partial<Record<Cap | 'kill', string>>;
  /** Why a cap is missing, for doctor and refusal messages. */
  missing: Partial<Record<Cap, string>>;
  /** v1: the name of each controller's mount (cpu -> "cpu,cpuacct" where co-mounted), resolved
   *  once here rather than per pod (podCgroupView); absent: resolved when asked. */
  mounts?: Partial<Record<Cap, string>>;
}

export interface PodCgroup {
  layout: CgroupLayout;
  dirs: string[];
  /** v1 groups the pod joins by writing its pid (a migration). */
  procsFiles: string[];
  /** The one cgroup v2 group the pod is created in directly (clone3 CLONE_INTO_CGROUP). */
  intoDir: string | null;
  enforced: Cap[];
}

export interface CapLimits {
  memoryBytes: number;
  cpus: number;
  pids: number;
}

const CPU_PERIOD_US = 100_000;
const V1_ROOT = '/sys/fs/cgroup';
const GROUP = 'clawpod';

function writable(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function isCgroup2(dir: string): boolean {
  try {
    return fs.statfsSync(dir).type === 0x63677270;
  } catch {
    return false;
  }
}

/** This process's group in one hierarchy, as /proc/self/cgroup gives it ("ID:CONTROLLERS:PATH";
 *  controller '' is the v2 one, "0::PATH"), or null. */
function ownCgroup(controller: string, selfCgroup = '/proc/self/cgroup'): string | null {
  try {
    for (const line of fs.readFileSync(selfCgroup, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length < 3) continue;
      if (controller === '' ? f[0] === '0' && f[1] === '' : f[1].split(',').includes(controller)) return f.slice(2).join(':');
    }
  } catch {
    /* no procfs */
  }
  return null;
}

/** Finds where this process may create pod cgroups. Pure probing: creates nothing. */
export function detectCgroups(root = V1_ROOT): CgroupLayout {
  if (isCgroup2(root)) return detectV2(root);
  const parents: CgroupLayout['parents'] = {};
  const missing: CgroupLayout['missing'] = {};
  const mounts: CgroupLayout['mounts'] = {};
  const v1 = { memory: 'memory', cpu: 'cpu', pids: 'pids' } as const;
  for (const [cap, ctl] of Object.entries(v1) as [Cap, string][]) {
    const dir = path.join(root, ctl);
    if (!fs.existsSync(path.join(dir, 'cgroup.procs'))) missing[cap] = `no cgroup v1 ${ctl} controller mounted`;
    else if (!writable(dir)) missing[cap] = `cgroup v1 ${ctl} is not writable by this user`;
    else {
      parents[cap] = path.join(dir, GROUP);
      mounts[cap] = mountName(dir, cap);
    }
  }
  const unified = path.join(root, 'unified');
  if (isCgroup2(unified) && writable(unified)) parents.kill = path.join(unified, GROUP);
  const any = Object.keys(parents).length > 0;
  return { mode: any ? 'v1' : 'none', parents, missing, mounts };
}

function detectV2(root: string): CgroupLayout {
  const missing: CgroupLayout['missing'] = {};
  let base: string | null = null;
  if (writable(root) && process.getuid?.() === 0) base = path.join(root, GROUP);
  else {
    // Unprivileged: use the delegated subtree that systemd gives the user's service manager.
    const own = ownCgroup('');
    const parent = own ? path.join(root, path.dirname(own)) : null;
    if (parent && writable(parent) && writable(path.join(parent, 'cgroup.procs'))) base = path.join(parent, GROUP);
  }
  const avail = base ? readControllers(path.dirname(base)) : [];
  const parents: CgroupLayout['parents'] = {};
  for (const cap of ['memory', 'cpu', 'pids'] as Cap[]) {
    if (!base) missing[cap] = 'no writable cgroup v2 subtree';
    else if (!avail.includes(cap)) missing[cap] = `cgroup v2 controller "${cap}" is not delegated here`;
    else parents[cap] = base;
  }
  if (base) parents.kill = base;
  return { mode: base ? 'v2' : 'none', parents, missing };
}

function readControllers(dir: string): string[] {
  try {
    return fs.readFileSync(path.join(dir, 'cgroup.controllers'), 'utf8').trim().split(/\s+/);
  } catch {
    return [];
  }
}

function ensureV2Parent(base: string, caps: Cap[]): void {
  if (!fs.existsSync(base)) fs.mkdirSync(base, { recursive: true });
  const ctl = fs.readFileSync(path.join(base, 'cgroup.subtree_control'), 'utf8');
  const want = caps.filter((c) => !ctl.includes(c));
  if (want.length) {
    fs.writeFileSync(path.join(path.dirname(base), 'cgroup.subtree_control'), want.map((c) => `+${c}`).join(' '));
    fs.writeFileSync(path.join(base, 'cgroup.subtree_control'), want.map((c) => `+${c}`).join(' '));
  }
}

/** The directories createPodCgroup will make for this pod, known before any exists. */
export function podCgroupDirs(layout: CgroupLayout, podId: string): string[] {
  if (layout.mode === 'v2') return layout.parents.kill ? [path.join(layout.parents.kill, podId)] : [];
  return (['memory', 'cpu', 'pids', 'kill'] as const).flatMap((k) => (layout.parents[k] ? [path.join(layout.parents[k]!, podId)] : []));
}

/** Creates the pod's groups and writes its limits. Throws on any failure (fail closed). */
export function createPodCgroup(layout: CgroupLayout, podId: string, limits: CapLimits): PodCgroup {
  const cg: PodCgroup = { layout, dirs: [], procsFiles: [], intoDir: null, enforced: [] };
  const make = (dir: string, v2 = false) => {
    fs.mkdirSync(dir, { recursive: true });
    cg.dirs.push(dir);
    if (v2) cg.intoDir = dir;
    else cg.procsFiles.push(path.join(dir, 'cgroup.procs'));
    return dir;
  };
  try {
    if (layout.mode === 'v2') {
      const caps = (['memory', 'cpu', 'pids'] as Cap[]).filter((c) => layout.parents[c]);
      ensureV2Parent(layout.parents.kill!, caps);
      const dir = make(path.join(layout.parents.kill!, podId), true);
      if (layout.parents.memory) {
        fs.writeFileSync(path.join(dir, 'memory.max'), String(limits.memoryBytes));
        trySet(path.join(dir, 'memory.swap.max'), '0');
      }
      if (layout.parents.cpu) fs.writeFileSync(path.join(dir, 'cpu.max'), `${Math.max(1000, Math.round(limits.cpus * CPU_PERIOD_US))} ${CPU_PERIOD_US}`);
      if (layout.parents.pids) fs.writeFileSync(path.join(dir, 'pids.max'), String(limits.pids));
      cg.enforced = caps;
      return cg;
    }
    if (layout.parents.memory) {
      const dir = make(path.join(layout.parents.memory, podId));
      fs.writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(limits.memoryBytes));
      // Without swap accounting memsw does not exist; the host then has no swap to escape to
      // only if swap is off, which doctor reports.
      trySet(path.join(dir, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes));
      // v1 charges TCP buffers to a group only once it has its own TCP limit (v2 always does):
      // without it, loopback connections inside the pod queue host memory past the cap.
      trySet(path.join(dir, 'memory.kmem.tcp.limit_in_bytes'), String(limits.memoryBytes));
      cg.enforced.push('memory');
    }
    if (layout.parents.cpu) {
      const dir = make(path.join(layout.parents.cpu, podId));
      fs.writeFileSync(path.join(dir, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
      fs.writeFileSync(path.join(dir, 'cpu.cfs_quota_us'), String(Math.max(1000, Math.round(limits.cpus * CPU_PERIOD_US))));
      cg.enforced.push('cpu');
    }
    if (layout.parents.pids) {
      const dir = make(path.join(layout.parents.pids, podId));
      fs.writeFileSync(path.join(dir, 'pids.max'), String(limits.pids));
      cg.enforced.push('pids');
    }
    // The kill group lives in the unified (v2) hierarchy of a hybrid host.
    if (layout.parents.kill) make(path.join(layout.parents.kill, podId), true);
    return cg;
  } catch (err) {
    removePodCgroup(cg);
    throw err;
  }
}

export interface CgroupView {
  /** Host group dir -> where the pod sees it (read-only, inside its own cgroup namespace). */
  binds: { src: string; dest: string }[];
  /** Names of co-mounted v1 controllers (cpu -> cpu,cpuacct), as hosts lay them out. */
  links: { target: string; link: string }[];
}

/**
 * Where runtimes look for their caps: libuv (process.constrainedMemory, V8's heap size) reads
 * /sys/fs/cgroup/memory/<path>/memory.limit_in_bytes on v1 and /sys/fs/cgroup/<path>/memory.max on
 * v2, with <path> from /proc/self/cgroup; the JVM and Go go through /proc/self/mountinfo. In the
 * pod's cgroup namespace (rooted at these very groups) every <path> is "/", so only the pod's own
 * group dirs are bound: never a parent, so no sibling pod and no host group is reachable.
 */
export function podCgroupView(cg: PodCgroup): CgroupView {
  const view: CgroupView = { binds: [], links: [] };
  if (cg.layout.mode === 'v2') {
    if (cg.intoDir) view.binds.push({ src: cg.intoDir, dest: '/sys/fs/cgroup' });
    return view;
  }
  for (const cap of ['memory', 'cpu', 'pids'] as Cap[]) {
    const parent = cg.layout.parents[cap];
    const dir = parent ? cg.dirs.find((d) => path.dirname(d) === parent) : undefined;
    if (!parent || !dir) continue;
    const mount = cg.layout.mounts?.[cap] ?? mountName(path.dirname(parent), cap);
    if (view.binds.some((b) => b.dest === `/sys/fs/cgroup/${mount}`)) continue;
    view.binds.push({ src: dir, dest: `/sys/fs/cgroup/${mount}` });
    for (const name of mount.split(',')) if (name !== mount) view.links.push({ target: mount, link: `/sys/fs/cgroup/${name}` });
  }
  return view;
}

/** The name of a v1 controller's mount dir (cpu -> cpu,cpuacct where co-mounted). */
function mountName(controllerDir: string, cap: Cap): string {
  try {
    return path.basename(fs.realpathSync(controllerDir));
  } catch {
    return cap;
  }
}

function trySet(file: string, value: string): void {
  try {
    fs.writeFileSync(file, value);
  } catch {
    /* optional knob */
  }
}

function readNum(file: string, key: string): number {
  try {
    const m = fs.readFileSync(file, 'utf8').match(new RegExp(`^${key} (\\d+)`, 'm'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** The pod's group of one controller (v2: its one group), or null when that cap is not enforced. */
export function capDir(cg: PodCgroup, cap: 'memory' | 'pids'): string | null {
  if (!cg.layout.parents[cap]) return null;
  if (cg.layout.mode === 'v2') return cg.intoDir ?? cg.dirs[0] ?? null;
  return cg.dirs.find((d) => path.dirname(d) === cg.layout.parents[cap]) ?? null;
}

export interface CapCounters {
  oomKills: number;
  forkRefusals: number;
}

/** The kernel's own running counts for the pod: processes the OOM killer killed, and forks (or
 *  threads) refused at pids.max. They only grow; a cap fired when one grew. */
export function capCounters(cg: PodCgroup): CapCounters {
  const mem = capDir(cg, 'memory');
  const pids = capDir(cg, 'pids');
  const oomFile = cg.layout.mode === 'v2' ? 'memory.events' : 'memory.oom_control';
  return {
    oomKills: mem ? readNum(path.join(mem, oomFile), 'oom_kill') : 0,
    forkRefusals: pids ? readNum(path.join(pids, 'pids.events'), 'max') : 0,
  };
}

/** The pod's group as the kernel names it in its OOM report ("/clawpod/<id>"): its report gives
 *  the path from its hierarchy's root, which the pod's last two components end. */
export function kernelGroupPath(dir: string): string {
  return `/${path.basename(path.dirname(dir))}/${path.basename(dir)}`;
}

/** The processes (thread-group ids) in one of the pod's groups. */
export function groupPids(dir: string): number[] {
  return pidsIn(dir);
}

function pidsIn(dir: string): number[] {
  try {
    return fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Kills every process in the pod's groups. cgroup.kill where the kernel has it, else a sweep. */
export function killPodCgroup(cg: PodCgroup): void {
  for (const dir of cg.dirs) {
    const killFile = path.join(dir, 'cgroup.kill');
    if (fs.existsSync(killFile)) {
      trySet(killFile, '1');
      continue;
    }
  }
  for (let round = 0; round < 50; round++) {
    const pids = new Set(cg.dirs.flatMap(pidsIn));
    if (pids.size === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}

/** Removes the pod's groups; waits briefly for the kernel to release exiting tasks. */
export function removePodCgroup(cg: PodCgroup): boolean {
  let ok = true;
  for (const dir of [...cg.dirs].reverse()) {
    let removed = false;
    for (let i = 0; i < 200 && !removed; i++) {
      try {
        fs.rmdirSync(dir);
        removed = true;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') removed = true;
        else if (code === 'EBUSY') {
          killPodCgroup({ ...cg, dirs: [dir] });
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
        } else break;
      }
    }
    ok &&= removed;
  }
  return ok;
}

/** All pod groups left on this host (for the reaper). */
export function listPodCgroups(layout: CgroupLayout): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const seen = new Set<string>();
  for (const parent of Object.values(layout.parents)) {
    if (!parent || seen.has(parent)) continue;
    seen.add(parent);
    let names: string[] = [];
    try {
      names = fs
        .readdirSync(parent, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name);
    } catch {
      continue;
    }
    for (const n of names) out.set(n, [...(out.get(n) ?? []), path.join(parent, n)]);
  }
  return out;
}

/**
 * cgroup v1: a migration (a write to cgroup.procs) first waits for an RCU grace period when none
 * happened lately (the kernel's rcu_sync of its global cgroup_threadgroup_rwsem goes idle between
 * migrations). Measured here at 5-18 ms, it was the longest wait of a pod's start: the pod's own
 * join. This starts a migration that moves nothing (clawpod into the pids group it is already
 * in) on libuv's threadpool, so that grace period passes while clawpod builds the pod, and the
 * pod's join, a few ms later, finds it passed. Best effort: nothing moves, any failure is ignored.
 * Returns the file written, or null (cgroup v2, where the pod is created in its group, needs none).
 */
export function warmCgroupMigration(layout: CgroupLayout, selfCgroup = '/proc/self/cgroup'): string | null {
  if (layout.mode !== 'v1' || !layout.parents.pids) return null;
  const own = ownCgroup('pids', selfCgroup);
  if (!own?.startsWith('/') || own.split('/').includes('..')) return null;
  const dir = path.join(path.dirname(layout.parents.pids), own);
  const file = path.join(dir, 'cgroup.procs');
  // Only into the group that lists us now: in a cgroup namespace /proc/self/cgroup is relative to
  // its root, which need not be the mount's (a host /sys/fs/cgroup bound into a container), and
  // the same path there could be another group (root's, say): writing there would move clawpod.
  if (!pidsIn(dir).includes(process.pid)) return null;
  // One threadpool write, handed over at once (fs.promises.writeFile would issue its write only
  // once this thread is back in the event loop, after the pod is built).
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY);
  } catch {
    return null;
  }
  fs.write(fd, String(process.pid), () => fs.close(fd, () => {}));
  return file;
}
