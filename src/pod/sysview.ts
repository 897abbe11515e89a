// The pod's /sys: its own cgroup dirs and its CPU online file, and nothing else. The prelude binds
// each read-only onto a mount point of one skeleton dir (native/podinit.c --ro-bind), which bwrap
// then binds at /sys as a whole: bwrap re-reads the whole mount table for every bind it makes,
// and four binds of its own cost more than one (~0.2 ms each a pod start here).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { CgroupView } from './cgroups.js';

export interface SysView {
  /** The skeleton: empty mount points and the co-mount links, the same for every pod of a layout. */
  dir: string;
  /** Relative to dir (and to the pod's /sys): mount point dirs, mount point files, links. */
  dirs: string[];
  files: string[];
  links: { target: string; link: string }[];
  /** Host source -> its mount point in dir, bound read-only by the prelude. */
  binds: { src: string; dest: string }[];
}

const ONLINE = 'devices/system/cpu/online';

/** Where runtimes look for the caps (see podCgroupView and cpus.ts), as one skeleton under
 *  etcDir named by its content; null when the pod sees no /sys at all. Pure. */
export function podSysView(etcDir: string, view: CgroupView | undefined, onlineFile: string | undefined): SysView | null {
  const rel = (dest: string) => {
    const r = path.posix.relative('/sys', dest);
    if (!r || r.startsWith('..') || path.posix.isAbsolute(r)) throw new Error(`not under /sys: ${dest}`);
    return r;
  };
  const mounts = (view?.binds ?? []).map((b) => ({ src: b.src, rel: rel(b.dest) }));
  const links = (view?.links ?? []).map((l) => ({ target: l.target, link: rel(l.link) }));
  const dirs = mounts.map((m) => m.rel);
  const files = onlineFile ? [ONLINE] : [];
  if (dirs.length + files.length === 0) return null;
  const key = crypto.createHash('sha256').update(JSON.stringify({ dirs, files, links })).digest('hex').slice(0, 12);
  const dir = path.join(etcDir, `sys-${key}`);
  const binds = mounts.map((m) => ({ src: m.src, dest: path.join(dir, m.rel) }));
  if (onlineFile) binds.push({ src: onlineFile, dest: path.join(dir, ONLINE) });
  return { dir, dirs, files, links, binds };
}

const made = new Set<string>();

/** Makes the skeleton once (pod uids must traverse it: 0755, files 0444, all empty): built under
 *  a temporary name and renamed into place, so a pod never binds half of one; a concurrent
 *  creator's rename that finds it made is fine. */
export function installSysView(v: SysView): void {
  if (made.has(v.dir) && fs.existsSync(v.dir)) return;
  if (!fs.existsSync(v.dir)) {
    const tmp = `${v.dir}.${process.pid}.tmp`;
    fs.rmSync(tmp, { recursive: true, force: true });
    const mkdir = (d: string) => {
      fs.mkdirSync(d, { recursive: true, mode: 0o755 });
      for (let p = d; p.length >= tmp.length; p = path.dirname(p)) fs.chmodSync(p, 0o755); // whatever the umask
    };
    mkdir(tmp);
    for (const d of v.dirs) mkdir(path.join(tmp, d));
    for (const f of v.files) {
      mkdir(path.dirname(path.join(tmp, f)));
      fs.writeFileSync(path.join(tmp, f), '', { mode: 0o444 });
      fs.chmodSync(path.join(tmp, f), 0o444);
    }
    for (const l of v.links) fs.symlinkSync(l.target, path.join(tmp, l.link));
    try {
      fs.renameSync(tmp, v.dir);
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      if (!fs.existsSync(v.dir)) throw e;
    }
  }
  made.add(v.dir);
}
