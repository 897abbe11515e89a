// Files every pod reads, written once per host state dir instead of piped per pod: the
// synthetic /etc entries (bound read-only) and the seccomp program (opened per pod as fd 3).
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { FD, HOST_ETC_COPIES, HOST_ETC_COPY_DIR, syntheticEtc, type HostLayout } from './bwrap-argv.js';

function writeIfChanged(file: string, content: string | Buffer, mode: number): void {
  try { if (Buffer.from(content).equals(fs.readFileSync(file))) return; } catch { /* absent */ }
  const tmp = `${file}.${process.pid}.tmp`;
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
  } catch { return null; } finally { if (fd !== undefined) fs.closeSync(fd); }
}

/** Copies HOST_ETC_COPIES beside the synthetic files; one this host lacks (or stopped having)
 *  is removed, and the pod's bind of it is skipped (--ro-bind-try). */
export function copyHostEtc(etcDir: string, etcRoot = '/etc'): void {
  for (const rel of HOST_ETC_COPIES) {
    const dest = path.join(etcDir, HOST_ETC_COPY_DIR, rel);
    const content = publicHostFile(etcRoot, rel);
    if (content === null) { fs.rmSync(dest, { force: true }); continue; }
    fs.mkdirSync(path.dirname(dest), { recursive: true, mode: 0o755 });
    writeIfChanged(dest, content, 0o444);
  }
}

/** Writes the pod files; returns the seccomp program's path. The dirs must be traversable by
 *  pod uids (0755): nothing secret is in them. */
export function installPodFiles(stateDir: string, layout: HostLayout, seccomp: Buffer): string {
  fs.mkdirSync(layout.etcDir, { recursive: true, mode: 0o755 });
  fs.chmodSync(stateDir, 0o755);
  fs.chmodSync(layout.etcDir, 0o755);
  for (const [name, content] of Object.entries(syntheticEtc())) writeIfChanged(path.join(layout.etcDir, name), content, 0o444);
  copyHostEtc(layout.etcDir);
  // Settings files of clawpod versions that wrote them here, readable by name (see podEtcFiles).
  fs.rmSync(path.join(layout.etcDir, 'settings'), { recursive: true, force: true });
  const bpf = path.join(stateDir, 'seccomp.bpf');
  writeIfChanged(bpf, seccomp, 0o400);
  // In-pod helpers are copied out of the checkout, which a pod uid may not be able to reach.
  for (const [name, dest] of [['clawpod-fwd', layout.forwarder], ['clawpod-podexec', layout.executor]]) {
    const src = path.join(path.dirname(layout.podinit), name);
    if (fs.existsSync(src)) writeIfChanged(dest, fs.readFileSync(src), 0o555);
  }
  return bpf;
}

/** A pod's own /etc files (settings.git's gitconfig, settings.npm's npmrc) as [pod path, content]:
 *  never written on the host. Each goes to the prelude on its own pipe (FD.etc on) and bwrap
 *  copies it into the pod's private tmpfs (--ro-bind-data), so no other local user can read it
 *  (no path to it exists outside the pod's mount namespace) and nothing is left to remove when
 *  the pod ends, however clawpod ends. Names are clawpod's own (never a pod's). */
export function podEtcFiles(files: Record<string, string>): [string, string][] {
  return Object.entries(files).map(([name, content]) => {
    if (!/^[a-z][a-z0-9.-]*$/.test(name)) throw new Error(`not an /etc file name: ${JSON.stringify(name)}`);
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
export function sendEtcFiles(child: ChildProcess, files: [string, string][]): void {
  files.forEach(([, content], i) => {
    const pipe = (child.stdio as unknown as (Writable | null)[])[FD.etc + i];
    if (!pipe) return; // the prelude never started (its spawn error says why)
    pipe.on('error', () => { /* see above */ });
    pipe.end(content);
  });
}
