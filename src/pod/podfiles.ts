// Files every pod reads, written once per host state dir instead of piped per pod: the pod's
// /etc (one dir, bound read-only) and the seccomp program (opened per pod as fd 3).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { ETC_DATA_NAMES, ETC_FILE_MOUNTS, FD, HOST_ETC_COPIES, POD_ETC_DIR, syntheticEtc, type HostLayout } from './bwrap-argv.js';
import type { PreludeProcess } from './spawn.js';

/** Replaces file by a rename (a reader sees the old or the new, never part), the temp file
 *  written in tmpDir (same file system) when file is in a dir pods see. */
export function writeIfChanged(file: string, content: string | Buffer, mode: number, tmpDir = path.dirname(file)): void {
  try {
    if (fs.lstatSync(file).isFile() && sameContent(file, content)) return;
  } catch {
    /* absent */
  }
  const tmp = path.join(tmpDir, `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, content, { mode });
  fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, file);
}

const HOST_ETC_MAX_BYTES = 1 << 20;

/** The host's /etc/REL (etcRoot: for tests) if it is a public table: a regular file every local
 *  user may read (clawpod may be root, so a file others cannot read is never copied), at most
 *  1 MiB, reached through symlinks only into /usr (os-release -> ../usr/lib/os-release). */
function publicHostFile(etcRoot: string, rel: string): Buffer | null {
  let fd: number | undefined;
  try {
    const real = fs.realpathSync(path.join(etcRoot, rel));
    if (real !== path.join(etcRoot, rel) && !real.startsWith('/usr/')) return null;
    fd = fs.openSync(real, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    const st = fs.fstatSync(fd);
    if (!st.isFile() || (st.mode & 0o004) === 0 || st.size > HOST_ETC_MAX_BYTES) return null;
    return fs.readFileSync(fd);
  } catch {
    return null;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** What the pod's /etc copies of the host's are made from (lstat of each): when it changes,
 *  installPodEtc runs again before the next pod, so a long-lived clawpod never serves a stale
 *  copy (ldconfig, a new time zone). A few lstat calls a pod (the link itself: a new zone is a
 *  new link). */
export function hostEtcSignature(etcRoot = '/etc'): string {
  // The link and what it leads to (a new zone file behind the same link, a file made private
  // by a chmod: ctime and mode change, not mtime).
  return HOST_ETC_COPIES.map((rel) => `${statSignature(path.join(etcRoot, rel))}/${statSignature(path.join(etcRoot, rel), true)}`).join(' ');
}

function mkdirPublic(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  fs.chmodSync(dir, 0o755); // whatever the umask
}

/** Assembles the pod's /etc in etcDir/POD_ETC_DIR (etcRoot: the host's /etc, for tests): the
 *  synthetic files, copies of HOST_ETC_COPIES (one this host lacks, or stopped having, is
 *  removed), and an empty mount point for each later bind (etcBinds, ETC_FILE_MOUNTS): nothing
 *  else. Changed in place, each file by a rename, so a pod another clawpod starts meanwhile
 *  binds a whole dir; every clawpod runs this before its first pod, so none starts on a dir
 *  still missing a file it needs. */
export function installPodEtc(etcDir: string, etcBinds: readonly string[], etcRoot = '/etc'): string {
  return writePodEtc(etcDir, etcBinds, podEtcContents(etcRoot));
}

/** What installPodEtc puts in the pod's /etc, by path relative to it: the synthetic files and
 *  the host's public tables (null: this host has none, or not a public one; removed). */
function podEtcContents(etcRoot: string): [string, string | Buffer | null][] {
  return [...Object.entries(syntheticEtc()), ...HOST_ETC_COPIES.map((rel): [string, Buffer | null] => [rel, publicHostFile(etcRoot, rel)])];
}

function writePodEtc(etcDir: string, etcBinds: readonly string[], contents: [string, string | Buffer | null][]): string {
  const root = path.join(etcDir, POD_ETC_DIR);
  const put = (rel: string, content: string | Buffer) => {
    mkdirPublic(path.dirname(path.join(root, rel)));
    writeIfChanged(path.join(root, rel), content, 0o444, etcDir);
  };
  mkdirPublic(root);
  for (const [rel, content] of contents) {
    if (!HOST_ETC_COPIES.includes(rel)) {
      put(rel, content ?? '');
      continue;
    }
    try {
      if (content === null) fs.rmSync(path.join(root, rel), { force: true });
      else put(rel, content);
    } catch (e) {
      // A live pod of an older clawpod binds the host's file onto this one (its mount point):
      // it stays until that pod ends, and the next change of the host's file tries again.
      if ((e as NodeJS.ErrnoException).code !== 'EBUSY') throw e;
    }
  }
  // Mount points are never removed: a pod of a clawpod that still binds there needs them.
  for (const f of etcBinds) {
    const rel = path.relative('/etc', f);
    if (fs.existsSync(path.join(root, rel))) continue;
    if (fs.statSync(f).isDirectory()) mkdirPublic(path.join(root, rel));
    else put(rel, '');
  }
  for (const rel of ETC_FILE_MOUNTS) if (!fs.existsSync(path.join(root, rel))) put(rel, '');
  return root;
}

/** Writes the pod files; returns the seccomp program's path. The dirs must be traversable by
 *  pod uids (0755): nothing secret is in them.
 *
 *  Every clawpod process runs this before its first pod, so a command line pays it on every
 *  exec: when nothing it reads changed since the last install and nothing it wrote was touched
 *  since (podfiles.stamp: inputSignature, outputSignature), it costs one read and a few lstat calls
 *  instead of reading every file back. Only root writes here; any rewrite (another clawpod
 *  version's install, a rename, a chmod) changes a written path's inode or ctime. */
export function installPodFiles(stateDir: string, layout: HostLayout, seccomp: Buffer, etcSignature = hostEtcSignature()): string {
  const bpf = path.join(stateDir, 'seccomp.bpf');
  const stamp = path.join(stateDir, STAMP);
  const inPod = helperCopies(layout);
  const want = inputSignature(layout, seccomp, inPod, etcSignature);
  let recorded = '';
  try {
    recorded = fs.readFileSync(stamp, 'utf8');
  } catch {
    /* first install here */
  }
  // The seccomp program is compared whole as well (2 KiB): the one file a pod's safety rests on.
  if (recorded !== '' && recorded === `${want}\n${outputSignature(stampedPaths(layout, bpf, inPod))}` && sameContent(bpf, seccomp)) return bpf;
  fs.mkdirSync(layout.etcDir, { recursive: true, mode: 0o755 });
  fs.chmodSync(stateDir, 0o755);
  fs.chmodSync(layout.etcDir, 0o755);
  // Each input read once: what is written is what is checked after (installedAsWanted).
  const etc = podEtcContents('/etc');
  writePodEtc(layout.etcDir, layout.etcBinds, etc);
  // Settings files of clawpod versions that wrote them here, readable by name (see podEtcFiles).
  fs.rmSync(path.join(layout.etcDir, 'settings'), { recursive: true, force: true });
  writeIfChanged(bpf, seccomp, 0o400);
  // In-pod helpers are copied out of the checkout, which a pod uid may not be able to reach.
  const files: [string, string | Buffer | null][] = [[bpf, seccomp]];
  for (const [src, dest] of inPod) {
    if (!fs.existsSync(src)) continue;
    const content = fs.readFileSync(src);
    writeIfChanged(dest, content, 0o555);
    files.push([dest, content]);
  }
  const root = path.join(layout.etcDir, POD_ETC_DIR);
  for (const [rel, content] of etc) files.push([path.join(root, rel), content]);
  // What is stamped is what was then verified: the stat first, then every file read back. A file
  // another clawpod version renamed in before the check fails it (no stamp: the next process
  // installs again); one renamed in after it has another inode than the stamp says.
  const written = outputSignature(stampedPaths(layout, bpf, inPod));
  if (installedAsWanted(files)) writeIfChanged(stamp, `${want}\n${written}`, 0o600);
  else fs.rmSync(stamp, { force: true });
  return bpf;
}

const STAMP = 'podfiles.stamp';

function sameContent(file: string, want: string | Buffer): boolean {
  try {
    return fs.readFileSync(file).equals(Buffer.from(want));
  } catch {
    return false;
  }
}

/** Every file an install wrote holds what it wrote there, read back (null: it is not there). */
function installedAsWanted(files: [string, string | Buffer | null][]): boolean {
  return files.every(([file, content]) => (content === null ? !fs.existsSync(file) : sameContent(file, content)));
}

/** [checkout copy, state dir copy] of each in-pod helper. */
function helperCopies(layout: HostLayout): [string, string][] {
  const named: [string, string | undefined][] = [
    ['clawpod-fwd', layout.forwarder],
    ['clawpod-podexec', layout.executor],
    ['clawpod-podtty', layout.podtty],
    ['clawpod-podwait', layout.podwait],
  ];
  return named.filter((n): n is [string, string] => Boolean(n[1])).map(([name, dest]) => [path.join(path.dirname(layout.podinit), name), dest]);
}

/** What an install is made from: this clawpod's own content (the seccomp program, the synthetic
 *  files, the lists), the host's public tables (hostEtcSignature), the helpers in the checkout. */
function inputSignature(layout: HostLayout, seccomp: Buffer, inPod: [string, string][], etcSignature: string): string {
  const h = crypto.createHash('sha256');
  h.update(JSON.stringify([1, syntheticEtc(), HOST_ETC_COPIES, ETC_FILE_MOUNTS, layout.etcDir, layout.etcBinds, inPod, etcSignature]));
  h.update(seccomp);
  for (const [src] of inPod) h.update(`\n${statSignature(src, true)}`);
  return h.digest('hex');
}

/** Every path an install writes: the dirs (a file renamed in or out changes its dir's ctime)
 *  and the files. */
function stampedPaths(layout: HostLayout, bpf: string, inPod: [string, string][]): string[] {
  const root = path.join(layout.etcDir, POD_ETC_DIR);
  const etc = [...Object.keys(syntheticEtc()), ...HOST_ETC_COPIES, ...ETC_FILE_MOUNTS, ...layout.etcBinds.map((f) => path.relative('/etc', f))];
  // Not the state dir itself: pods' files come and go in it (the stamp among them).
  const dirs = new Set<string>([layout.etcDir, root]);
  for (const rel of etc) for (let d = path.dirname(rel); d !== '.'; d = path.dirname(d)) dirs.add(path.join(root, d));
  return [...dirs, ...etc.map((rel) => path.join(root, rel)), bpf, ...inPod.map(([, dest]) => dest)];
}

function outputSignature(paths: string[]): string {
  return paths.map((p) => `${p} ${statSignature(p)}`).join('\n');
}

/** lstat (or, following links, stat) of p as one string: '-' when it is not there. */
function statSignature(p: string, follow = false): string {
  try {
    const st = follow ? fs.statSync(p, { bigint: true }) : fs.lstatSync(p, { bigint: true });
    return `${st.ino}:${st.size}:${st.ctimeNs}:${st.mtimeNs}:${st.mode}:${st.uid}`;
  } catch {
    return '-';
  }
}

/** A pod's own /etc files (settings.git's gitconfig, settings.npm's npmrc) as [pod path, content]:
 *  never written on the host. Each goes to the prelude on its own pipe (FD.etc on) and bwrap
 *  copies it into the pod's private tmpfs (--ro-bind-data), so no other local user can read it
 *  (no path to it exists outside the pod's mount namespace) and nothing is left to remove when
 *  the pod ends, however clawpod ends. Names are clawpod's own (never a pod's). */
export function podEtcFiles(files: Record<string, string>): [string, string][] {
  return Object.entries(files).map(([name, content]) => {
    // Only names the pod's /etc holds a mount point for (installPodEtc).
    if (!ETC_DATA_NAMES.includes(name)) throw new Error(`not an /etc file name: ${JSON.stringify(name)}`);
    return [`/etc/${name}`, content];
  });
}

/** The spawn stdio with one pipe per /etc file at FD.etc, FD.etc + 1, ... */
export function withEtcPipes<T>(stdio: (T | 'ignore' | 'pipe')[], count: number): (T | 'ignore' | 'pipe')[] {
  const out = [...stdio];
  while (out.length < FD.etc) out.push('ignore');
  for (let i = 0; i < count; i++) out.push('pipe');
  return out;
}

/** Writes each file to its pipe and closes it (bwrap reads to EOF). A pod that died first
 *  closed its end: the write's EPIPE is that pod's end, which its exit reports. */
export function sendEtcFiles(child: PreludeProcess, files: [string, string][]): void {
  files.forEach(([, content], i) => {
    const pipe = (child.stdio as unknown as (Writable | null)[])[FD.etc + i];
    if (!pipe) return; // the prelude never started (its spawn error says why)
    pipe.on('error', () => {
      /* see above */
    });
    pipe.end(content);
  });
}
