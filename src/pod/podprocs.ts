// What the host can see of one pod process through /proc: its name (comm, pod-chosen: escape it
// before it reaches a terminal), its pid inside the pod, its task count, and whether it is dying.
import fs from 'node:fs';

export interface PodProc {
  hostPid: number;
  /** /proc/PID/comm without its newline, raw (pod-chosen bytes). */
  name: string;
  /** The pid the pod sees (the last NSpid entry); null for a process outside the pod's pid
   *  namespace (bwrap's outer process, still in the pod's groups). */
  podPid: number | null;
  /** Threads: what the pids cap counts. */
  tasks: number;
}

function read(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** One process, or null when it is gone. */
export function podProc(hostPid: number, procRoot = '/proc'): PodProc | null {
  const status = read(`${procRoot}/${hostPid}/status`);
  const comm = read(`${procRoot}/${hostPid}/comm`);
  if (status === null || comm === null) return null;
  const ns =
    status
      .match(/^NSpid:\s+(.*)$/m)?.[1]
      .trim()
      .split(/\s+/)
      .map(Number) ?? [];
  return {
    hostPid,
    name: comm.replace(/\n$/, ''),
    podPid: ns.length > 1 ? ns[ns.length - 1] : null,
    tasks: Number(status.match(/^Threads:\s+(\d+)/m)?.[1] ?? 1),
  };
}

const PF_EXITING = 0x4;
const SIGKILL_BIT = 1n << 8n;

/** Gone, a zombie, exiting, or with a SIGKILL pending (the OOM killer's signal not yet taken). */
export function dyingOrGone(hostPid: number, procRoot = '/proc'): boolean {
  const stat = read(`${procRoot}/${hostPid}/stat`);
  const status = read(`${procRoot}/${hostPid}/status`);
  if (stat === null || status === null) return true;
  // Fields after the comm, which may itself hold ") ": state is the first, flags the seventh.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (rest[0] === 'Z' || rest[0] === 'X' || (Number(rest[6]) & PF_EXITING) !== 0) return true;
  for (const key of ['SigPnd', 'ShdPnd']) {
    const mask = status.match(new RegExp(`^${key}:\\s+([0-9a-f]+)`, 'm'))?.[1];
    if (mask && (BigInt(`0x${mask}`) & SIGKILL_BIT) !== 0n) return true;
  }
  return false;
}

/** Who holds the most of the pod's tasks: one process, or one name across many processes (a
 *  fork loop is many one-task processes of one name). */
export function topHolder(procs: PodProc[]): { proc: PodProc; tasks: number; processes: number } | null {
  if (procs.length === 0) return null;
  const byName = new Map<string, { proc: PodProc; tasks: number; processes: number }>();
  for (const p of procs) {
    const g = byName.get(p.name) ?? { proc: p, tasks: 0, processes: 0 };
    g.tasks += p.tasks;
    g.processes += 1;
    if (p.tasks > g.proc.tasks || (p.tasks === g.proc.tasks && (p.podPid ?? Infinity) < (g.proc.podPid ?? Infinity))) g.proc = p;
    byName.set(p.name, g);
  }
  const group = [...byName.values()].sort((a, b) => b.tasks - a.tasks)[0];
  // One process with most of its name's tasks is named alone ("python3 holds 250").
  return group.proc.tasks * 2 >= group.tasks ? { proc: group.proc, tasks: group.proc.tasks, processes: 1 } : group;
}
