// A cap is enforcement, not a death sentence. The kernel enforces memory and pids itself: a fork
// past pids.max fails (EAGAIN), a process past memory.max is OOM-killed. That refusal is the
// enforcement; clawpod records it (limit.hit) and lets the pod go on. It kills the pod only when
// the cap leaves it unable to go on:
//   - the pod's main process (or the chain of processes it runs under) was OOM-killed: the rest
//     of its tree dies with it (its pid namespace ends), exit 137;
//   - a fork storm: forks still refused after PIDS_STORM_MS of refusals with no pause of
//     PIDS_PAUSE_MS between them;
//   - an OOM storm: more than MEMORY_STORM_KILLS OOM kills within MEMORY_STORM_WINDOW_MS.
// Sampled every poll (100 ms) from the kernel's own counters; the victim of an OOM kill is named
// from the kernel's report (kmsg.ts) where it can be read.
import fs from 'node:fs';
import type { Rules } from '../policy/types.js';
import { lazyUnsafeGlobal } from '../util/unsafe-text.js';
import { capCounters, capDir, groupPids, kernelGroupPath, type PodCgroup } from './cgroups.js';
import { KmsgOomReader, type OomKill, type OomReports } from './kmsg.js';
import { dyingOrGone, podProc, topHolder, type PodProc } from './podprocs.js';
import type { PodEvent } from './types.js';

export const PIDS_PAUSE_MS = 1_000;
export const PIDS_STORM_MS = 10_000;
export const MEMORY_STORM_KILLS = 10;
export const MEMORY_STORM_WINDOW_MS = 60_000;
/** Non-fatal limit.hit events recorded per cap and pod; past it they are counted and summed at
 *  the end, so a pod that hits a cap all day cannot flood its own audit log. */
export const EVENTS_PER_CAP = 10;
/** Bytes a pod's netlink sockets may hold queued. The kernel charges netlink receive queues to
 *  no memory cgroup, so route netlink (allowed for getifaddrs) could otherwise pin host memory
 *  past the memory cap by never reading replies; a program reading its replies holds a few KiB. */
export const NETLINK_QUEUED_MAX = 16 << 20;
// Processes looked up per poll (two small /proc reads each), so a fork loop costs bounded work.
const NEW_PROCS_PER_POLL = 64;

export type WatchedCap = 'memory' | 'pids';

export interface CapWatchOptions {
  rules: Rules;
  /** The command runs under the egress forwarder: the pod's main chain is pids 1, 2 and 3. */
  egress: boolean;
  /** Default: the pod's own reader, opened on its first OOM kill (it then reads the kernel's
   *  ring once, a few ms) and closed at its end; null: name victims without it. */
  kmsg?: OomReports | null;
  /** Where /proc is (tests). */
  procRoot?: string;
  emit: (e: PodEvent) => void;
  /** The pod's own host uid (privileged pods): the kernel's every-kill report names it. */
  uid?: number | null;
  now?: () => number;
}

interface Victim {
  name: string;
  podPid: number | null;
  hostPid: number | null;
  likely?: boolean;
}

const UNSAFE = lazyUnsafeGlobal();
/** A pod-chosen name made inert for a terminal (every control and invisible character escaped). */
function escName(s: string): string {
  return s.replace(UNSAFE(), (c) => {
    const n = c.codePointAt(0) as number;
    return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`;
  });
}

/** The policy's spelling of a size: 512Mi, 2Gi. */
function policySize(bytes: number): string {
  for (const [u, n] of [
    ['Gi', 1 << 30],
    ['Mi', 1 << 20],
    ['Ki', 1 << 10],
  ] as const)
    if (bytes % n === 0) return `${bytes / n}${u}`;
  return String(bytes);
}

function describe(v: Victim | null): string {
  if (!v) return 'a process';
  const where = v.podPid !== null ? `pid ${v.podPid} in the pod` : v.hostPid !== null ? `host pid ${v.hostPid}` : 'pid unknown';
  return v.likely ? `a process (likely ${escName(v.name)}, ${where}, which vanished then)` : `${escName(v.name)} (${where})`;
}

export class CapWatch {
  private oomSeen = 0;
  private refusedSeen = 0;
  private killTimes: number[] = [];
  private pending: (Victim | null)[] = [];
  private kills = 0;
  /** Host pids already named in a kill (the kernel reports a kill in up to two lines). */
  private reported = new Set<number>();
  private spare: OomKill[] = [];
  private fatalCap: WatchedCap | null = null;
  private episode: { start: number; last: number; base: number } | null = null;
  /** Host pids of the processes whose death ends the pod: bwrap, the pod's init, its main. */
  private chain: number[] | null = null;
  private procs = new Map<number, PodProc & { gone: number }>();
  private recorded = { memory: 0, pids: 0 };
  private suppressed = { memory: 0, pids: 0 };
  private readonly memDir: string | null;
  private readonly pidsDir: string | null;
  private readonly now: () => number;
  private readonly kmsg: OomReports | null;
  /** Reports older than this are an earlier pod's (microseconds of the kernel's log clock). That
   *  clock is near CLOCK_MONOTONIC, not on it (ms apart, drifting with uptime): a minute's
   *  slack; a report in it with this pod's uid would need a random pod uid drawn twice. */
  private readonly sinceUs = Number(process.hrtime.bigint() / 1000n) - 60_000_000;

  constructor(
    private readonly cg: PodCgroup,
    private readonly opts: CapWatchOptions,
  ) {
    this.memDir = capDir(cg, 'memory');
    this.pidsDir = capDir(cg, 'pids');
    this.now = opts.now ?? (() => performance.now());
    this.kmsg = opts.kmsg === undefined ? new KmsgOomReader() : opts.kmsg;
  }

  /** The pod's main process as the pod numbers it. */
  get mainPid(): number {
    return this.opts.egress ? 3 : 2;
  }

  /** One sample. Returns the cap the pod must be killed for (its main process died of it, or a
   *  storm), once; null while it goes on. */
  poll(): WatchedCap | null {
    if (this.fatalCap) return null;
    const c = capCounters(this.cg);
    const t = this.now();
    if (c.oomKills > this.oomSeen) this.onOomKills(c.oomKills - this.oomSeen, t, null);
    this.oomSeen = Math.max(this.oomSeen, c.oomKills);
    if (!this.fatalCap) this.onRefusals(c.forkRefusals, t);
    this.refreshProcs();
    if (!this.fatalCap && this.pending.length && this.findChain()) this.settle('went on');
    if (!this.fatalCap) this.checkNetlink();
    return this.fatalCap;
  }

  /** At the pod's end (raw: the pod's own exit status): what the last sample did not see is
   *  judged, the counted-only hits are summed. Returns the cap that ended the pod, if any.
   *  killedByClawpod: the pod was stopped for another reason (timeout, disk, Ctrl-C). */
  finish(raw: number, killedByClawpod: boolean): WatchedCap | null {
    if (!this.fatalCap) {
      const c = capCounters(this.cg);
      const t = this.now();
      const judge = killedByClawpod ? -1 : raw;
      if (c.oomKills > this.oomSeen) this.onOomKills(c.oomKills - this.oomSeen, t, judge);
      this.oomSeen = Math.max(this.oomSeen, c.oomKills);
      if (!this.fatalCap && c.forkRefusals > this.refusedSeen) this.onRefusals(c.forkRefusals, t, true);
      // Never seen alive after the kill: it was the main process if the pod died of a SIGKILL.
      if (!this.fatalCap && this.pending.length) this.settle(judge === 137 ? 'main' : 'went on');
    }
    for (const cap of ['memory', 'pids'] as const) if (this.suppressed[cap] > 0) this.emitSuppressed(cap);
    this.kmsg?.close();
    return this.fatalCap;
  }

  // ---- memory ----

  private onOomKills(n: number, t: number, raw: number | null): void {
    let records = [...this.spare, ...this.takeReports()];
    // The kernel counts a kill and prints its report microseconds apart: a report short is read
    // again at once, and a report beyond the count is the next sample's.
    if (records.length < n) records = [...records, ...this.takeReports()];
    this.spare = records.slice(n);
    const fallback = records.length === 0 ? this.vanished() : null;
    for (let i = 0; i < n && !this.fatalCap; i++) {
      const rec = records[i] ?? null;
      if (rec) this.reported.add(rec.pid);
      const victim: Victim | null = rec ? { name: rec.task, hostPid: rec.pid, podPid: this.procs.get(rec.pid)?.podPid ?? null } : fallback;
      this.killTimes.push(t);
      this.kills++;
      const verdict = this.verdict(rec, raw);
      if (verdict === 'pending') this.pending.push(victim);
      else this.judged(victim, verdict);
    }
    this.killTimes = this.killTimes.filter((k) => t - k <= MEMORY_STORM_WINDOW_MS);
    if (!this.fatalCap && this.killTimes.length > MEMORY_STORM_KILLS) this.oomStorm(t, records.at(n - 1));
  }

  private takeReports(): OomKill[] {
    if (!this.memDir || !this.kmsg) return [];
    return this.kmsg.take(kernelGroupPath(this.memDir), this.opts.uid ?? null, this.sinceUs).filter((k) => !this.reported.has(k.pid));
  }

  /** 'main' when the kill took a process the pod cannot go on without; 'pending' while that is
   *  not known yet (the main process not seen so far). raw: the pod's exit status, at its end. */
  private verdict(rec: OomKill | null, raw: number | null): 'main' | 'went on' | 'pending' {
    const chain = this.findChain();
    // At the end, what cannot be told by pid is settled from the pod's exit (finish).
    if (raw !== null) return chain && rec ? (chain.includes(rec.pid) ? 'main' : 'went on') : 'pending';
    if (!chain) return 'pending';
    if (rec) return chain.includes(rec.pid) ? 'main' : 'went on';
    return chain.some((p) => dyingOrGone(p, this.opts.procRoot)) ? 'main' : 'went on';
  }

  /** Kills judged late. 'main': the pod died of a SIGKILL without its main process ever seen
   *  alive after them: the last kill took it (the pod's pid for it is then its main's). */
  private settle(verdict: 'main' | 'went on'): void {
    const all = this.pending.splice(0);
    all.forEach((v, i) => {
      if (this.fatalCap) return;
      const main = verdict === 'main' && i === all.length - 1;
      this.judged(main && v && v.podPid === null ? { ...v, podPid: this.mainPid } : v, main ? 'main' : 'went on');
    });
  }

  private judged(victim: Victim | null, verdict: 'main' | 'went on'): void {
    const head = `memory cap hit (resources.memory: ${policySize(this.opts.rules.resources.memoryBytes)})`;
    const process = victim ? { name: escName(victim.name), pid: victim.podPid, hostPid: victim.hostPid, ...(victim.likely ? { likely: true } : {}) } : null;
    if (verdict === 'main') {
      this.fatalCap = 'memory';
      const whose = !victim || victim.podPid === null || victim.podPid === this.mainPid ? "the pod's main process" : 'which the pod cannot run without';
      this.emitHit(
        'memory',
        { action: 'pod killed', reason: 'main process', process, kills: this.kills },
        `${head}: the kernel killed ${describe(victim)}, ${whose}; the run ended`,
      );
      return;
    }
    this.emitHit('memory', { action: 'process killed', process, kills: this.kills }, `${head}: the kernel killed ${describe(victim)}; the run went on`);
  }

  private oomStorm(t: number, last: OomKill | undefined): void {
    this.fatalCap = 'memory';
    const kills = this.killTimes.length;
    const secs = Math.max(1, Math.ceil((t - this.killTimes[0]) / 1000));
    const victim = last ? { name: last.task, hostPid: last.pid, podPid: this.procs.get(last.pid)?.podPid ?? null } : null;
    const head = `memory cap hit (resources.memory: ${policySize(this.opts.rules.resources.memoryBytes)})`;
    this.emitHit(
      'memory',
      {
        action: 'pod killed',
        reason: 'storm',
        kills,
        seconds: secs,
        storm: `more than ${MEMORY_STORM_KILLS} OOM kills within ${MEMORY_STORM_WINDOW_MS / 1000} s`,
        process: victim ? { name: escName(victim.name), pid: victim.podPid, hostPid: victim.hostPid } : null,
      },
      `${head}: ${kills} processes OOM-killed within ${secs} s (the last: ${describe(victim)}); the pod was killed`,
    );
  }

  /** Without the kernel's report: the one cached process that is gone now, if just one is. */
  private vanished(): Victim | null {
    if (!this.memDir) return null;
    const now = new Set(groupPids(this.memDir));
    const gone = [...this.procs.values()].filter((p) => p.gone === 0 && !now.has(p.hostPid));
    return gone.length === 1 ? { name: gone[0].name, podPid: gone[0].podPid, hostPid: gone[0].hostPid, likely: true } : null;
  }

  private refreshProcs(): void {
    if (!this.memDir) return;
    const live = groupPids(this.memDir);
    const seen = new Set(live);
    let budget = NEW_PROCS_PER_POLL;
    for (const pid of live) {
      const known = this.procs.get(pid);
      if (known) {
        known.gone = 0;
        continue;
      }
      if (budget-- <= 0) continue;
      const p = podProc(pid, this.opts.procRoot);
      if (p) this.procs.set(pid, { ...p, gone: 0 });
    }
    // A dead process is kept two more samples: the one that sees its kill still names it.
    for (const [pid, p] of this.procs) if (!seen.has(pid) && ++p.gone > 2) this.procs.delete(pid);
  }

  /** The host pids of bwrap, the pod's init and its main process (and the forwarder), once all
   *  have been seen alive; null before. */
  private findChain(): number[] | null {
    if (this.chain) return this.chain;
    const want = this.opts.egress ? [1, 2, 3] : [1, 2];
    const byPodPid = new Map([...this.procs.values()].filter((p) => p.gone === 0).map((p) => [p.podPid, p.hostPid]));
    if (!want.every((w) => byPodPid.has(w))) return null;
    const chain = [...want.map((w) => byPodPid.get(w) as number), ...(byPodPid.has(null) ? [byPodPid.get(null) as number] : [])];
    if (chain.some((p) => dyingOrGone(p, this.opts.procRoot))) return null;
    this.chain = chain;
    return chain;
  }

  /** Netlink receive queues count against the memory cap: past NETLINK_QUEUED_MAX the pod is
   *  killed (sampled each poll; the pod's one CPU bounds how far it gets between two). */
  private checkNetlink(): void {
    const inPod = [...this.procs.values()].find((p) => p.gone === 0 && p.podPid !== null);
    if (!inPod) return;
    const queued = netlinkQueued(inPod.hostPid, this.opts.procRoot);
    if (queued <= NETLINK_QUEUED_MAX) return;
    this.fatalCap = 'memory';
    const mib = Math.round(queued / (1 << 20));
    this.emitHit(
      'memory',
      { action: 'pod killed', reason: 'netlink', netlinkQueued: queued },
      `memory cap hit (resources.memory: ${policySize(this.opts.rules.resources.memoryBytes)}): the pod's netlink sockets held ${mib} MiB of unread replies, which the kernel charges to no cgroup (at most ${NETLINK_QUEUED_MAX >> 20} MiB); the pod was killed`,
    );
  }

  // ---- pids ----

  private onRefusals(total: number, t: number, atEnd = false): void {
    const ep = this.episode;
    if (total <= this.refusedSeen) {
      if (ep && t - ep.last > PIDS_PAUSE_MS) this.episode = null;
      return;
    }
    if (!ep || t - ep.last > PIDS_PAUSE_MS) {
      this.episode = { start: t, last: t, base: this.refusedSeen };
      this.refusedSeen = total;
      const head = `pids cap hit (resources.pids: ${this.opts.rules.resources.pids})`;
      const n = total - this.episode.base;
      const { text, process } = this.holder();
      this.emitHit(
        'pids',
        { action: 'refused', refused: n, process },
        `${head}: ${n} fork${n === 1 ? '' : 's'} refused${text ? `; ${text}` : ''}; the run went on`,
        atEnd,
      );
      return;
    }
    ep.last = t;
    this.refusedSeen = total;
    if (t - ep.start >= PIDS_STORM_MS) this.forkStorm(ep, total, t);
  }

  private forkStorm(ep: { start: number; base: number }, total: number, t: number): void {
    this.fatalCap = 'pids';
    const secs = Math.round((t - ep.start) / 1000);
    const n = total - ep.base;
    const { text, process } = this.holder();
    this.emitHit(
      'pids',
      {
        action: 'pod killed',
        reason: 'storm',
        refused: n,
        seconds: secs,
        process,
        storm: `forks refused for ${PIDS_STORM_MS / 1000} s with no pause of ${PIDS_PAUSE_MS / 1000} s`,
      },
      `pids cap hit (resources.pids: ${this.opts.rules.resources.pids}): forks refused for ${secs} s without a pause ` +
        `(${n} refused${text ? `; ${text}` : ''}); the pod was killed`,
    );
  }

  /** Who holds the pod's tasks now (read when a cap fires, never per sample). */
  private holder(): { text: string; process: Record<string, unknown> | null } {
    if (!this.pidsDir) return { text: '', process: null };
    const limit = this.opts.rules.resources.pids;
    const procs = groupPids(this.pidsDir)
      .slice(0, limit + 16)
      .map((p) => podProc(p, this.opts.procRoot))
      .filter((p): p is PodProc => p !== null);
    const inPod = procs.filter((p) => p.podPid !== null);
    const top = topHolder(inPod.length ? inPod : procs);
    if (!top) return { text: '', process: null };
    const name = escName(top.proc.name);
    const process = { name, pid: top.proc.podPid, tasks: top.tasks, processes: top.processes };
    if (top.processes > 1) return { text: `${top.tasks} of ${limit} tasks are ${top.processes} ${name} processes`, process };
    const where = top.proc.podPid !== null ? `pid ${top.proc.podPid} in the pod` : `host pid ${top.proc.hostPid}`;
    return { text: `${name} (${where}) holds ${top.tasks} of ${limit} tasks`, process };
  }

  // ---- events ----

  private emitHit(cap: WatchedCap, data: Record<string, unknown>, message: string, force = false): void {
    const fatal = data.action === 'pod killed';
    // The count of hits not recorded one by one comes before the one that ends the pod.
    if (fatal && this.suppressed[cap] > 0) this.emitSuppressed(cap);
    if (!fatal && !force && this.recorded[cap] >= EVENTS_PER_CAP) {
      this.suppressed[cap]++;
      return;
    }
    if (!fatal) this.recorded[cap]++;
    const limit = cap === 'memory' ? this.opts.rules.resources.memoryBytes : this.opts.rules.resources.pids;
    this.opts.emit({ type: 'limit.hit', data: { cap, limit, key: `resources.${cap}`, ...data, message } });
  }

  private emitSuppressed(cap: WatchedCap): void {
    const n = this.suppressed[cap];
    this.suppressed[cap] = 0;
    const value = cap === 'memory' ? policySize(this.opts.rules.resources.memoryBytes) : String(this.opts.rules.resources.pids);
    this.opts.emit({
      type: 'limit.hit',
      data: {
        cap,
        limit: cap === 'memory' ? this.opts.rules.resources.memoryBytes : this.opts.rules.resources.pids,
        key: `resources.${cap}`,
        action: cap === 'memory' ? 'process killed' : 'refused',
        suppressed: n,
        message: `${cap} cap hit (resources.${cap}: ${value}) ${n} more time${n === 1 ? '' : 's'}, not recorded one by one`,
      },
    });
  }
}

/** Bytes queued on every netlink socket of the network namespace PID is in (the Rmem column of
 *  /proc/PID/net/netlink); 0 when it cannot be read (the process is gone). */
export function netlinkQueued(pid: number, procRoot = '/proc'): number {
  let text: string;
  try {
    text = fs.readFileSync(`${procRoot}/${pid}/net/netlink`, 'latin1');
  } catch {
    return 0;
  }
  let sum = 0;
  for (const line of text.split('\n').slice(1)) {
    const rmem = Number(line.trim().split(/\s+/)[4]);
    if (Number.isFinite(rmem)) sum += rmem;
  }
  return sum;
}
