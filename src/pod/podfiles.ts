// Files every pod reads, written once per host state dir instead of piped per pod: the
// synthetic /etc entries (bound read-only) and the seccomp program (opened per pod as fd 3).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { HOST_ETC_COPIES, HOST_ETC_COPY_DIR, syntheticEtc, type HostLayout } from './bwrap-argv.js';

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
  const bpf = path.join(stateDir, 'seccomp.bpf');
  writeIfChanged(bpf, seccomp, 0o400);
  // In-pod helpers are copied out of the checkout, which a pod uid may not be able to reach.
  for (const [name, dest] of [['clawpod-fwd', layout.forwarder], ['clawpod-podexec', layout.executor]]) {
    const src = path.join(path.dirname(layout.podinit), name);
    if (fs.existsSync(src)) writeIfChanged(dest, fs.readFileSync(src), 0o555);
  }
  return bpf;
}

/**
 * Per-run files for the pod's /etc (settings.git's gitconfig, settings.npm's npmrc): written once
 * per distinct content, read-only, and named by a keyed hash of it in a directory other local
 * users cannot list, so one user's settings are not readable by name-guessing. Returns each pod
 * path (/etc/NAME) with the host file to bind there. Names are clawpod's own (never a pod's).
 */
export function installEtcFiles(etcDir: string, files: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  const names = Object.keys(files);
  if (names.length === 0) return out;
  const dir = path.join(etcDir, 'settings');
  fs.mkdirSync(dir, { recursive: true, mode: 0o711 });
  fs.chmodSync(dir, 0o711);
  const keyFile = path.join(dir, '.key');
  let key: Buffer;
  try { key = fs.readFileSync(keyFile); } catch {
    writeIfChanged(keyFile, crypto.randomBytes(32), 0o400);
    key = fs.readFileSync(keyFile);
  }
  for (const name of names) {
    if (!/^[a-z][a-z0-9.-]*$/.test(name)) throw new Error(`not an /etc file name: ${JSON.stringify(name)}`);
    const digest = crypto.createHmac('sha256', key).update(name).update('\0').update(files[name]).digest('hex');
    const file = path.join(dir, `${digest}-${name}`);
    if (!fs.existsSync(file)) writeIfChanged(file, files[name], 0o444);
    out[`/etc/${name}`] = file;
  }
  return out;
}
