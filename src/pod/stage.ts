// What backs a pod's stage (its whole writable space): as root, an ext4 image on a loop device,
// so writable space is disk (ENOSPC at the disk cap) and not memory; otherwise a tmpfs, which
// the kernel charges to the pod's memory cgroup. This side keeps the formatted template images
// the prelude copies (native/stage.c); the prelude does everything per pod.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PodError } from './types.js';

export type StageBacking = { kind: 'disk'; imageDir: string } | { kind: 'memory'; why: string };

const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;
const BLOCK = 4096;
/** Bump when the format options change: an old template is then never reused. */
const FORMAT = 'v5';
/** The stage's own dirs, as native/podinit.c setup_stage makes them (its mkdir finds them made,
 *  and changes no mode that is already right): made in the template, a pod's mount allocates
 *  nothing for them, where every mkdir on a fresh ext4 image read bitmaps and inode tables
 *  through the loop device (~1.5 ms a pod start under load, measured against a tmpfs stage). */
const STAGE_DIRS: readonly [string, number][] = [
  ['tmp', 0o1777],
  ['home', 0o700],
  ['mnt', 0o755],
  ['shm', 0o1777],
  ['lower', 0o755],
  ['upper', 0o755],
  ['work', 0o700],
  ['ws', 0o755],
  ['dev', 0o755],
  ['dev/shm', 0o755],
  ['dev/pts', 0o755],
];
/** The mount points and links of the pod's /dev, as setup_dev makes them (native/podinit.c). */
const DEV_NODES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];
const DEV_LINKS: readonly [string, string][] = [
  ['stdin', '/proc/self/fd/0'],
  ['stdout', '/proc/self/fd/1'],
  ['stderr', '/proc/self/fd/2'],
  ['fd', '/proc/self/fd'],
  ['core', '/proc/kcore'],
  ['ptmx', 'pts/ptmx'],
];
/** Host room kept free beyond a pod's disk cap before it gets a disk stage (see stageRoomShort). */
const HOST_MARGIN = 64 << 20;
/** A creator killed mid-format leaves its temp file; one this old is nobody's. */
const STALE_TEMP_MS = 10 * 60_000;

function findMkfs(): string | null {
  for (const dir of ['/usr/sbin', '/sbin', '/usr/bin', '/bin']) {
    const p = path.join(dir, 'mke2fs');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

/** Whether DIR (or, before it exists, its nearest existing parent) is a memory filesystem. */
function inMemory(dir: string): boolean {
  for (let d = dir; ; d = path.dirname(d)) {
    try {
      const t = fs.statfsSync(d).type;
      return t === TMPFS_MAGIC || t === RAMFS_MAGIC;
    } catch {
      if (d === '/') return false;
    }
  }
}

/** Decided once per process, beside the other host facts; `clawpod doctor` shows the answer. */
export function probeStage(privileged: boolean, stateDir: string, env: NodeJS.ProcessEnv = process.env): StageBacking {
  if (env.CLAWPOD_STAGE === 'tmpfs') return { kind: 'memory', why: 'CLAWPOD_STAGE=tmpfs' };
  if (!privileged) return { kind: 'memory', why: 'unprivileged mode; run clawpod as root for a disk stage' };
  if (!fs.existsSync('/dev/loop-control')) return { kind: 'memory', why: 'no /dev/loop-control; modprobe loop' };
  if (!findMkfs()) return { kind: 'memory', why: 'no mke2fs; apt-get install e2fsprogs' };
  // An image in a tmpfs would be memory again (and charged to nobody): keep it on a disk.
  for (const dir of [path.join(stateDir, 'stage-images'), '/var/lib/clawpod/stage-images']) {
    if (!inMemory(dir)) return { kind: 'disk', imageDir: dir };
  }
  return { kind: 'memory', why: `${stateDir} and /var/lib are in memory` };
}

export function stageDetail(b: StageBacking): string {
  return b.kind === 'disk'
    ? `disk (ext4 image): all writable space (overlay upper, /tmp, home, /dev/shm) is one ext4 image of the disk cap on a loop device (${b.imageDir})`
    : `memory (tmpfs): writable space counts as memory (${b.why})`;
}

/** The template's usable bytes as a pod sees them (df): free blocks less ext4's reserve for
 *  delayed allocation, min(2% of the blocks, 4096 blocks); the format reserves none for root. */
function usableBytes(file: string): number {
  const sb = Buffer.alloc(1024);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, sb, 0, 1024, 1024);
  } finally {
    fs.closeSync(fd);
  }
  if (sb.readUInt16LE(56) !== 0xef53) throw new PodError(`mke2fs wrote no ext4 superblock to ${file} (set CLAWPOD_STAGE=tmpfs to use a memory stage)`);
  const blocks = sb.readUInt32LE(4);
  const free = sb.readUInt32LE(12);
  return (free - Math.min(Math.floor(blocks / 50), 4096)) * BLOCK;
}

/** A root-owned 0755 dir holding STAGE_DIRS, for mke2fs -d (removed by the caller). */
function stageRoot(imageDir: string): string {
  const root = fs.mkdtempSync(path.join(imageDir, '.tmp-root-'));
  fs.chmodSync(root, 0o755);
  for (const [name, mode] of STAGE_DIRS) {
    fs.mkdirSync(path.join(root, name));
    fs.chmodSync(path.join(root, name), mode); // whatever the umask
  }
  for (const name of DEV_NODES) fs.writeFileSync(path.join(root, 'dev', name), '', { mode: 0o666 });
  for (const [name, target] of DEV_LINKS) fs.symlinkSync(target, path.join(root, 'dev', name));
  return root;
}

function format(mkfs: string, file: string, bytes: number, inodes: number, root: string): void {
  fs.writeFileSync(file, '', { mode: 0o600 });
  fs.truncateSync(file, bytes);
  // No journal (nothing is kept across a crash), no reserve for root, no room kept for online
  // growth; inode tables are left unwritten (holes), so the template stays small and sparse.
  // metadata_csum_seed: the metadata checksums do not depend on the UUID, so the prelude gives
  // each pod's copy a UUID of its own by rewriting the superblock alone (native/stage.c).
  const r = spawnSync(
    mkfs,
    [
      '-q',
      '-F',
      '-t',
      'ext4',
      '-O',
      '^has_journal,^resize_inode,metadata_csum_seed',
      '-m',
      '0',
      '-b',
      String(BLOCK),
      '-I',
      '256',
      '-N',
      String(inodes),
      '-E',
      'lazy_itable_init=1,nodiscard,root_owner=0:0',
      '-d',
      root,
      file,
    ],
    { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } },
  );
  if (r.status !== 0) {
    throw new PodError(
      `cannot format the pod's disk stage (mke2fs: ${(r.stderr || r.error?.message || 'failed').trim().split('\n')[0]}); fix: apt-get install e2fsprogs, or set CLAWPOD_STAGE=tmpfs`,
    );
  }
}

/** Makes FILE an image whose usable space is DISK bytes (at most, and within 1% of it): ext4's
 *  own metadata (inode tables above all) comes on top. Never more than the cap: the harvest
 *  refuses a change set above it, and a tmpfs stage could never hold more either. */
function formatSized(mkfs: string, file: string, disk: number, inodes: number, root: string): void {
  const slack = disk / 100 + (256 << 10);
  let bytes = Math.ceil((disk + inodes * 256 + Math.min(disk / 50, 16 << 20)) / BLOCK) * BLOCK;
  for (let i = 0; i < 8; i++) {
    format(mkfs, file, bytes, inodes, root);
    const over = usableBytes(file) - disk;
    if (over <= 0 && over > -slack) return;
    bytes = over > 0 ? Math.floor((bytes - over) / BLOCK) * BLOCK - BLOCK : Math.ceil((bytes - over) / BLOCK) * BLOCK;
  }
  const usable = usableBytes(file);
  if (usable > disk || usable < disk - 2 * slack)
    throw new PodError(`cannot size the pod's disk stage for ${disk} bytes (set CLAWPOD_STAGE=tmpfs to use a memory stage)`);
}

/** Only root (clawpod) may make or change a template: the directory must be ours alone. */
function ensureDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  if (!st.isDirectory() || st.uid !== 0) throw new PodError(`${dir} is not a directory of root's; remove it and run again`);
  if ((st.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
}

/** Temp files of killed creators, and templates of an older format (nothing reuses them). */
function sweepStaleTemps(dir: string): void {
  for (const name of fs.readdirSync(dir)) {
    if (/^ext4-v\d+-/.test(name) && !name.startsWith(`ext4-${FORMAT}-`)) {
      fs.rmSync(path.join(dir, name), { force: true });
      continue;
    }
    if (!name.startsWith('.tmp-')) continue;
    try {
      if (Date.now() - fs.lstatSync(path.join(dir, name)).mtimeMs > STALE_TEMP_MS) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
    } catch {
      /* removed meanwhile */
    }
  }
}

/** The host's free bytes where the images are, when they are fewer than a pod's disk cap plus a
 *  margin; null when there is room. A pod's image is sparse and takes host blocks only as the
 *  pod writes: a pod started without room for its cap would see the host fill up under it (its
 *  writes then lost at write-back, see native/stage.h). Pods started together can still
 *  overcommit the host; the prelude's write-back check catches what that loses. */
export function stageRoomShort(imageDir: string, diskBytes: number): number | null {
  for (let d = imageDir; ; d = path.dirname(d)) {
    try {
      const s = fs.statfsSync(d);
      const free = s.bavail * s.bsize;
      return free < diskBytes + HOST_MARGIN ? free : null;
    } catch (e) {
      if (d === '/' || (e as NodeJS.ErrnoException).code !== 'ENOENT') return null;
    }
  }
}

/** The one line a pod without host room for its disk stage gets (see stageRoomShort). */
export function stageRoomMessage(imageDir: string, freeBytes: number): string {
  return (
    `only ${Math.floor(freeBytes / (1 << 20))} MiB free for pod disks under ${imageDir}; this pod's writable space is in memory ` +
    '(counts against resources.memory): free disk space or lower resources.disk'
  );
}

const made = new Set<string>();

/** The template image for a disk cap and inode cap, formatted once (under a temporary name,
 *  then renamed: concurrent creators each make a whole one and the last rename wins). */
export function stageTemplate(imageDir: string, diskBytes: number, inodes: number): string {
  const file = path.join(imageDir, `ext4-${FORMAT}-${diskBytes}-${inodes}.img`);
  if (made.has(file) && fs.existsSync(file)) return file;
  ensureDir(imageDir);
  if (!fs.existsSync(file)) {
    const mkfs = findMkfs();
    if (!mkfs) throw new PodError("cannot format the pod's disk stage: mke2fs not found; fix: apt-get install e2fsprogs, or set CLAWPOD_STAGE=tmpfs");
    sweepStaleTemps(imageDir);
    const tmp = path.join(imageDir, `.tmp-${process.pid}-${crypto.randomBytes(6).toString('hex')}.img`);
    const root = stageRoot(imageDir);
    try {
      formatSized(mkfs, tmp, diskBytes, inodes, root);
      const fd = fs.openSync(tmp, 'r');
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, file);
    } finally {
      fs.rmSync(tmp, { force: true });
      fs.rmSync(root, { recursive: true, force: true });
    }
  }
  made.add(file);
  return file;
}
