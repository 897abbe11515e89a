// Who the OOM killer killed: the kernel's report of each kill in /dev/kmsg
//   oom-kill:constraint=CONSTRAINT_MEMCG,...,oom_memcg=/clawpod/ID,task_memcg=/clawpod/ID,task=NAME,pid=N,uid=U
//   Memory cgroup out of memory: Killed process N (NAME) total-vm:...kB, ..., UID:U pgtables:...
// names the victim by host pid, with its group (first line) or its uid (second line; the first
// is rate-limited by the kernel, the second is not, and a privileged pod has a uid of its own).
// Readable by root (or with CAP_SYSLOG, or dmesg_restrict=0); elsewhere callers name what they
// can without it.
// The device is read with O_NONBLOCK, one record per read, until EAGAIN: it never blocks a pod.
import fs from 'node:fs';

export interface OomKill {
  /** Host pid of the victim. */
  pid: number;
  /** Its comm, as the kernel printed it (non-printable bytes as \xNN): pod-chosen. */
  task: string;
  /** Its group (task_memcg), from the "oom-kill:" line. */
  group: string | null;
  /** Its uid, from the "Killed process" line. */
  uid: number | null;
  /** When the kernel logged it, in microseconds of the monotonic clock (the record's TS). */
  atUs: number;
}

/** Parses one kmsg record ("PRI,SEQ,TS,FLAGS;TEXT", continuation lines after it): the kernel's
 *  "oom-kill:" line (rate-limited by the kernel with the rest of its OOM report) or its
 *  "Killed process" line (printed for every kill). */
export function parseOomRecord(record: string): OomKill | null {
  const semi = record.indexOf(';');
  const atUs = Number(record.slice(0, semi).split(',')[2]);
  const text = record.slice(semi + 1).split('\n')[0];
  // The name (comm, up to 15 bytes of the pod's choosing, any of them ',', '=', ')' or ' ') is
  // the one field the pod writes: the kernel's fields are found from the left before it and from
  // the right after it, whatever it holds.
  const line = text.match(/^oom-kill:(.*?),task_memcg=([^,]*),task=(.*),pid=(\d+),uid=(\d+)$/);
  if (line) return { pid: Number(line[4]), task: line[3], group: line[2], uid: Number(line[5]), atUs };
  const killed = text.match(/: Killed process (\d+) \((.*)\) total-vm:.*UID:(\d+) pgtables:\d+kB oom_score_adj:-?\d+$/);
  if (killed) return { pid: Number(killed[1]), task: killed[2], group: null, uid: Number(killed[3]), atUs };
  return null;
}

// Records read but not yet taken (a report the counter has not counted yet) are kept, up to this.
const KEEP = 256;
const READ_BUF = 16 * 1024;

/** Where the kernel's OOM reports come from (KmsgOomReader; a fake in tests). */
export interface OomReports {
  take(groupPath: string, uid: number | null, sinceUs: number): OomKill[];
  close(): void;
}

/** One per pod: opened on its first OOM kill (the kernel's ring is then read once from its
 *  start, a few ms), then only new records are read. */
export class KmsgOomReader implements OomReports {
  private fd: number | null | undefined;
  private kills: OomKill[] = [];

  constructor(private readonly device = '/dev/kmsg') {}

  /** The kills of a pod since its last take, in the kernel's order, one per victim: by its group
   *  (a path ending with groupPath) or, where the pod has a uid of its own, by that uid; only
   *  those logged since the pod began (sinceUs), as a uid may have been an earlier pod's. */
  take(groupPath: string, uid: number | null, sinceUs: number): OomKill[] {
    this.drain();
    const isMine = (k: OomKill) =>
      k.atUs >= sinceUs &&
      ((k.group !== null && (k.group === groupPath || k.group.endsWith(groupPath))) || (uid !== null && k.group === null && k.uid === uid));
    const mine = this.kills.filter(isMine);
    if (mine.length) this.kills = this.kills.filter((k) => !isMine(k));
    const byPid = new Map<number, OomKill>();
    for (const k of mine) if (!byPid.has(k.pid)) byPid.set(k.pid, k);
    return [...byPid.values()];
  }

  close(): void {
    if (typeof this.fd === 'number') fs.closeSync(this.fd);
    this.fd = null;
  }

  private open(): number | null {
    if (this.fd !== undefined) return this.fd;
    try {
      this.fd = fs.openSync(this.device, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    } catch {
      this.fd = null;
    }
    return this.fd;
  }

  private drain(): void {
    const fd = this.open();
    if (fd === null) return;
    const buf = Buffer.alloc(READ_BUF);
    for (;;) {
      let n: number;
      try {
        n = fs.readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        // EPIPE: records were overwritten before we read them; the next read goes on after them.
        if ((e as NodeJS.ErrnoException).code === 'EPIPE') continue;
        return; // EAGAIN: nothing more now
      }
      if (n <= 0) return;
      const kill = parseOomRecord(buf.toString('utf8', 0, n));
      if (!kill) continue;
      this.kills.push(kill);
      if (this.kills.length > KEEP) this.kills.shift();
    }
  }
}
