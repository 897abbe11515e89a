// The CPUs a pod may run on: ceil(cpus) of the ones clawpod itself may use, rotated per pod so
// concurrent pods spread over the host. The affinity is what nproc, os.availableParallelism()
// and len(os.sched_getaffinity(0)) count, and a synthetic /sys/devices/system/cpu/online (what
// glibc's sysconf(_SC_NPROCESSORS_ONLN), so Python's os.cpu_count(), reads) names the same CPUs.
// The cpu cgroup quota stays the enforcement: the pod may widen its own affinity back to the
// host's CPUs, and gains no CPU time by it.
import fs from 'node:fs';
import path from 'node:path';
import { writeIfChanged } from './podfiles.js';

/** "0-2,5" into [0, 1, 2, 5]; null when it is not such a list. */
export function parseCpuList(text: string): number[] | null {
  const out = new Set<number>();
  for (const part of text.trim().split(',')) {
    const m = part.match(/^(\d+)(?:-(\d+))?$/);
    if (!m) return null;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi > 8191) return null;
    for (let c = lo; c <= hi; c++) out.add(c);
  }
  return out.size ? [...out].sort((a, b) => a - b) : null;
}

/** [0, 1, 2, 5] into "0-2,5" (the kernel's own format). */
export function formatCpuList(ids: number[]): string {
  const s = [...new Set(ids)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < s.length; i++) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j] + 1) j++;
    parts.push(i === j ? String(s[i]) : `${s[i]}-${s[j]}`);
    i = j;
  }
  return parts.join(',');
}

/** The CPUs this process may run on (its own affinity: never more than the host allows it). */
export function allowedCpus(status = '/proc/self/status'): number[] {
  try {
    const line = fs.readFileSync(status, 'utf8').match(/^Cpus_allowed_list:\s*(\S+)$/m);
    const ids = line ? parseCpuList(line[1]) : null;
    if (ids) return ids;
  } catch {
    /* no /proc: fall through */
  }
  return [0];
}

/** ceil(cpus) of the allowed CPUs (at most all of them), starting at slot: consecutive slots
 *  land on different CPUs. */
export function pickCpus(allowed: number[], cpus: number, slot: number): number[] {
  const n = Math.max(1, Math.min(allowed.length, Math.ceil(cpus)));
  const start = ((slot % allowed.length) + allowed.length) % allowed.length;
  return Array.from({ length: n }, (_, k) => allowed[(start + k) % allowed.length]).sort((a, b) => a - b);
}

/** Digits of the rotor file: it counts modulo 10^ROTOR_DIGITS. */
const ROTOR_DIGITS = 6;

/** A host-wide counter, one step per pod: the rotation. Best effort (a lost race only means two
 *  pods share a start CPU), and never a reason to refuse a pod. Rewritten in place at a fixed
 *  width, never truncated: on ext4 (/run on a disk here) a truncating rewrite waits for the last
 *  one's write-back (auto_da_alloc), measured 1.5-9 ms on every pod start. */
export function nextCpuSlot(stateDir: string): number {
  let fd: number;
  try {
    fd = fs.openSync(path.join(stateDir, 'cpu-rotor'), fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
  } catch {
    return 0;
  }
  try {
    const buf = Buffer.alloc(ROTOR_DIGITS);
    const n = Number.parseInt(buf.toString('latin1', 0, fs.readSync(fd, buf, 0, ROTOR_DIGITS, 0)), 10) || 0;
    fs.writeSync(fd, String((n + 1) % 10 ** ROTOR_DIGITS).padStart(ROTOR_DIGITS, '0'), 0);
    return n;
  } catch {
    return 0; /* read-only state */
  } finally {
    fs.closeSync(fd);
  }
}

/** The synthetic online file for this list, written once per list under dir (readable by pod
 *  uids: bwrap binds it as the pod's uid). Returns its path. */
export function cpuOnlineFile(dir: string, list: string): string {
  if (!/^[0-9,-]+$/.test(list)) throw new Error(`bad CPU list ${list}`);
  const file = path.join(dir, `cpu-online-${list}`);
  writeIfChanged(file, `${list}\n`, 0o444);
  return file;
}

let ownCpus: number[] | undefined;

/** The pod's CPUs: its affinity list and the online file that names it. */
export function podCpus(stateDir: string, fileDir: string, cpus: number): { list: string; onlineFile: string } {
  // clawpod's own affinity, read once per process (not per pod).
  ownCpus ??= allowedCpus();
  const list = formatCpuList(pickCpus(ownCpus, cpus, nextCpuSlot(stateDir)));
  return { list, onlineFile: cpuOnlineFile(fileDir, list) };
}
