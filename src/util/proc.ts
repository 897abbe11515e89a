// Is a recorded process still the one we recorded? A pid alone cannot say: pids are reused,
// a zombie still answers kill(pid, 0), and after a reboot every recorded pid means nothing.
// So a record carries the boot id and the process's start time, and all three are checked.
import fs from 'node:fs';

/** This boot's id (a fresh random UUID per boot), or null where the kernel does not expose it. */
export function currentBootId(): string | null {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch {
    return null;
  }
}

/** State letter and start time (clock ticks since boot) from /proc/PID/stat, or null. */
export function processStat(pid: number): { state: string; start: string } | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] === undefined ? null : { state: fields[0], start: fields[19] };
  } catch {
    return null;
  }
}

export function processStartTime(pid: number): string | null {
  return processStat(pid)?.start ?? null;
}

/**
 * True when pid is alive and is the recorded process: same boot (when both are known), not a
 * zombie, and the same start time (when recorded). Unknown details count for "alive", so an
 * old record without them is judged as before, by the pid.
 */
export function recordedProcessAlive(pid: number, start?: string | null, bootId?: string | null): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  if (bootId) {
    const now = currentBootId();
    if (now && now !== bootId) return false;
  }
  const stat = processStat(pid);
  if (!stat) {
    // /proc hidden (hidepid): a signal probe. Unverifiable counts as alive: reaping a live
    // run would kill it, a leftover only waits for the next look.
    try {
      process.kill(pid, 0);
      return true;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'EPERM';
    }
  }
  if (stat.state === 'Z' || stat.state === 'X') return false;
  return !start || stat.start === start;
}
