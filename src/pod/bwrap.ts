// The bubblewrap backend: one pod = clawpod-podinit (cgroups, private mounts, uid drop) then
// bwrap (namespaces, seccomp, read-only system) then the command.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Duplex, Readable, Writable } from 'node:stream';
import type { Rules } from '../policy/types.js';
import { buildPodinitArgv, FD, lockDirOf, stageInodes } from './bwrap-argv.js';
import { podCommand } from './command.js';
import { podWorkspaceDir } from './workspace-at.js';
import { hostEtcSignature, installPodEtc, installPodFiles, podEtcFiles, sendEtcFiles, withEtcPipes } from './podfiles.js';
import {
  createPodCgroup,
  podCgroupDirs,
  podCgroupView,
  killPodCgroup,
  listPodCgroups,
  removePodCgroup,
  warmCgroupMigration,
  type PodCgroup,
} from './cgroups.js';
import { podCpus } from './cpus.js';
import { CapWatch } from './capwatch.js';
import { checkGuards } from './guards.js';
import { hostGuards, probeHost, type HostFacts } from './host.js';
import { PodState } from './podstate.js';
import { stageRoomMessage, stageRoomShort, stageTemplate } from './stage.js';
import { installSysView, podSysView } from './sysview.js';
import { seccompProgram } from './seccomp-prebuilt.js';
import { podSetups } from './setups.js';
import { type PreludeProcess, spawnPrelude, type StdioSlot } from './spawn.js';
import { spawnWithTty, ttyControl } from './tty.js';
import { PodError, type Backend, type Guard, type LimitName, type PodEvent, type PodOutcome, type PodSpec, type RunningPod, type WarmPod } from './types.js';
import { claimWarm, newWarmBinding, type WarmBinding } from './bwrap-warm.js';

const POLL_MS = 100;
/** Whether this process has started its one warm-up migration (see startPod). */
let migrationWarmed = false;
/** As native/stage.h: an ext4 stage with less than max(this, 0.1% of it) available is full. */
const STAGE_FULL_SLACK = 5 << 19;

export interface BwrapDeps {
  clawpodHome: string;
  host?: HostFacts;
  /** Copy the workspace instead of overlaying it (unprivileged pods; CLAWPOD_WORKSPACE_COPY=1). */
  workspaceCopy?: boolean;
}

export function createBwrapBackend(deps: BwrapDeps): Backend {
  const host = deps.host ?? probeHost(deps.clawpodHome);
  let state: PodState | null = null;
  const podState = () => (state ??= new PodState(host.stateDir));
  // Built on the first pod, not per process: commands that start no pod never pay for it. The
  // /etc copies are made again when the host's files changed since (hostEtcSignature).
  let seccompFile: string | null = null;
  let etcSeen = '';
  const podFiles = () => {
    const etcNow = hostEtcSignature();
    if (seccompFile === null) seccompFile = installPodFiles(host.stateDir, host.layout, seccompProgram(), etcNow);
    else if (etcNow !== etcSeen) installPodEtc(host.layout.etcDir, host.layout.etcBinds);
    etcSeen = etcNow;
    return seccompFile;
  };
  return {
    name: 'bwrap',
    probe: () => hostGuards(host),
    start: (spec, onEvent) => startPod(host, podState(), podFiles(), spec, onEvent, deps.workspaceCopy ?? false, null),
    warm: async (spec): Promise<WarmPod> => {
      const binding = newWarmBinding();
      const template = { ...spec, warm: true, command: [], changesDir: null, hold: false };
      const pod = await startPod(host, podState(), podFiles(), template, binding.relay.emit, deps.workspaceCopy ?? false, binding);
      return {
        pod,
        get ready() {
          return binding.ready;
        },
        claim: (run, onEvent) => claimWarm(host, pinSources, pod, binding, template, run, onEvent),
      };
    },
    reap: () => reapOrphans(host, podState()),
    egressPaths: (podId) => {
      const dir = path.join(host.stateDir, 'egress');
      fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
      return { socketPath: path.join(dir, `${podId}.sock`), caBundle: path.join(dir, `${podId}-ca.pem`) };
    },
  };
}

async function startPod(
  host: HostFacts,
  state: PodState,
  seccompFile: string,
  spec: PodSpec,
  onEvent: (e: PodEvent) => void,
  workspaceCopy: boolean,
  warm: WarmBinding | null,
): Promise<RunningPod> {
  const guards = hostGuards(host);
  // Throws when the pod must not start; the degraded guards were recorded by the caller.
  checkGuards(guards, spec.rules, spec.allowDegraded);
  if (spec.command.length === 0 && !spec.live && !warm) throw new PodError('no command given (usage: clawpod exec -- CMD [ARG...])');
  fs.mkdirSync(host.layout.stage, { recursive: true, mode: 0o755 });
  fs.mkdirSync(lockDirOf(host.layout.stage), { recursive: true, mode: 0o700 });
  // Identity and owner come from one descriptor per source, never from a second lookup by name.
  const pinned = pinSources(spec);
  if (warm) warm.pinned = pinned;
  const owner = spec.workspace ? (pinned.owners[spec.workspace] ?? null) : null;
  const uid = host.layout.privileged ? state.allocateUid(spec.id) : null;
  // Given back when the pod's stage is ready, when it ends, or below when it cannot start.
  const setupDone = await podSetups.acquire();
  let cg: PodCgroup | null = null;
  let seccompFd: number | null = null;
  try {
    // The record goes first so a concurrent reaper never mistakes our new groups for orphans.
    state.save({
      id: spec.id,
      uid,
      cgroupDirs: podCgroupDirs(host.cgroups, spec.id),
      workspace: spec.workspace,
      workspaceMode: spec.rules.workspace,
      rwMounts: spec.rules.mounts.filter((m) => m.mode === 'rw').map((m) => m.host),
    });
    cg = createPodCgroup(host.cgroups, spec.id, spec.rules.resources);
    // Now, so the grace period the pod's v1 join waits for passes while the rest of the pod is
    // built (cgroups.ts); not before: a migration holds cgroup_mutex, which making groups needs.
    // Only for a process's first pod (a command line's one pod): where pods start one after
    // another (a server, 50 at once) the extra migrations would cost more than they save.
    if (!migrationWarmed) {
      migrationWarmed = true;
      warmCgroupMigration(host.cgroups);
    }
    await spec.beforeStart?.(uid);
    // The egress proxy's socket (spec.egress) may not exist yet: the caller starts it while the
    // pod is held, and makes it the pod uid's alone (core/egress.ts). bwrap binds it after go().
    const etcFiles = podEtcFiles(spec.etc ?? {});
    const cpus = podCpus(host.stateDir, host.layout.etcDir, spec.rules.resources.cpus);
    const sysView = podSysView(host.layout.etcDir, podCgroupView(cg), cpus.onlineFile);
    if (sysView) installSysView(sysView);
    const argv = buildPodinitArgv(host.layout, {
      rules: spec.rules,
      workspace: spec.workspace,
      command:
        spec.live || warm ? [] : podCommand(spec.command, host.layout, spec.workspace, spec.rules.workspace, podWorkspaceDir(spec.rules, spec.workspace)),
      live: spec.live,
      warm: Boolean(warm),
      changesDir: spec.changesDir,
      cgroupProcs: cg.procsFiles,
      cgroupInto: cg.intoDir,
      copyWorkspace: workspaceCopy,
      egress: spec.egress,
      identity: uid === null ? null : { uid, gid: uid, ownerUid: owner?.uid ?? host.uid, ownerGid: owner?.gid ?? host.gid },
      env: spec.env ?? {},
      etcData: etcFiles.map(([dest]) => dest),
      sourceIds: pinned.ids,
      stageImage: diskStage(host, spec, onEvent),
      cpus,
      sysView,
      tty: hasTty(spec),
    });
    // bwrap reads the program from fd 3 to its end: each pod gets its own fresh open file.
    seccompFd = fs.openSync(seccompFile, 'r');
    const child = hasTty(spec)
      ? spawnWithTty(host.layout.podinit, argv, seccompFd, etcFiles.length, spec.ttySize)
      : // Its own session (detached): the terminal's Ctrl-C reaches clawpod alone, which decides
        // what it means (exec stops the pod, run stops the agent first and closes the pod normally).
        // A live pod talks to its executor over one socket on fd 6 (FD.channel), never on stdio.
        // A warm pod's resident reads the run's command on stdin and says it is ready on fd 6.
        await spawnPrelude(
          host.layout.podinit,
          argv,
          withEtcPipes<StdioSlot>(
            spec.live
              ? ['ignore', 'ignore', spec.stdio, seccompFd, 'pipe', 'pipe', 'pipe']
              : warm
                ? ['pipe', 'pipe', 'pipe', seccompFd, 'pipe', 'pipe', 'pipe']
                : [
                    spec.stdinPipe ? 'pipe' : spec.stdio === 'inherit' || spec.stdinInherit ? 'inherit' : 'ignore',
                    spec.stdio,
                    spec.stdio,
                    seccompFd,
                    'pipe',
                    'pipe',
                  ],
            etcFiles.length,
          ),
          { detached: true },
        );
    fs.closeSync(seccompFd);
    seccompFd = null;
    sendEtcFiles(child, etcFiles);
    const pod = supervise(child, spec, host, state, cg, uid, guards, onEvent, warm, setupDone);
    if (!spec.hold && !warm) pod.go();
    return pod;
  } catch (err) {
    setupDone();
    if (seccompFd !== null) fs.closeSync(seccompFd);
    if (cg) {
      killPodCgroup(cg);
      removePodCgroup(cg);
    }
    state.remove(spec.id);
    state.releaseUid(uid);
    throw err;
  }
}

/** A terminal of the pod's own (pod/tty.ts); a live pod's stdio is never one. */
function hasTty(spec: PodSpec): boolean {
  return Boolean(spec.tty && !spec.live);
}

/** The pod's disk stage template, or null for a tmpfs stage: asked for, or (said on stderr and
 *  recorded) the host lacks room for the pod's disk cap. The cap holds either way. */
function diskStage(host: HostFacts, spec: PodSpec, onEvent: (e: PodEvent) => void): string | null {
  if (host.stage.kind !== 'disk' || spec.forceTmpfsStage) return null;
  const disk = spec.rules.resources.diskBytes;
  const free = stageRoomShort(host.stage.imageDir, disk);
  if (free === null) return stageTemplate(host.stage.imageDir, disk, stageInodes(disk));
  const message = stageRoomMessage(host.stage.imageDir, free);
  process.stderr.write(`clawpod: ${message}\n`);
  onEvent({ type: 'guard.degraded', data: { guard: 'disk stage', detail: message, freeBytes: free, disk } });
  return null;
}

/**
 * The identity (device:inode) of every host path the pod will get, taken from a descriptor and
 * checked against the path the caller validated: if the path now leads anywhere else (a parent or
 * the path itself swapped for a symlink since the deny-list check), the pod is refused. The
 * prelude mounts a source only if it is still this object, from its own descriptor.
 */
export function pinSources(spec: Pick<PodSpec, 'workspace' | 'rules'>): { ids: Record<string, string>; owners: Record<string, { uid: number; gid: number }> } {
  const paths = [...(spec.workspace && spec.rules.workspace !== 'none' ? [spec.workspace] : []), ...spec.rules.mounts.map((m) => m.host)];
  const ids: Record<string, string> = {};
  const owners: Record<string, { uid: number; gid: number }> = {};
  for (const p of paths) {
    let fd: number;
    try {
      fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_DIRECTORY);
    } catch (e) {
      throw new PodError(
        `${p} cannot be mounted: ${(e as NodeJS.ErrnoException).code === 'ELOOP' ? 'it became a symlink after it was checked' : (e as Error).message} (run again; nothing was started)`,
      );
    }
    try {
      const now = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (now !== p) throw new PodError(`${p} changed while the pod was being set up (it now leads to ${now}); run again`);
      const st = fs.fstatSync(fd, { bigint: true });
      ids[p] = `${st.dev}:${st.ino}`;
      owners[p] = { uid: Number(st.uid), gid: Number(st.gid) };
    } finally {
      fs.closeSync(fd);
    }
  }
  return { ids, owners };
}

function supervise(
  child: PreludeProcess,
  spec: PodSpec,
  host: HostFacts,
  state: PodState,
  cg: PodCgroup,
  uid: number | null,
  guards: Guard[],
  onEvent: (e: PodEvent) => void,
  warm: WarmBinding | null,
  setupDone: () => void,
): RunningPod {
  let started = performance.now();
  // A warm pod's change set goes where the run that claims it says (null until then).
  const changesDir = () => (warm ? warm.changesDir : spec.changesDir);
  // With a terminal, clawpod's child is the pty helper; the prelude is its child.
  const tty = hasTty(spec) ? ttyControl(child) : null;
  const channel = (child.stdio as unknown as (Duplex | null)[])[FD.channel] ?? null;
  // A stopped pod resets its end of the socket: that is the pod's end (its exit says why), never
  // an error that may take clawpod down.
  channel?.on('error', () => {
    /* see above */
  });
  if (warm)
    channel?.once('data', () => {
      warm.ready = true;
    });
  const goPipe = (child.stdio as unknown as (Writable | null)[])[FD.go];
  goPipe?.on('error', () => {
    /* the pod died before it was started: its exit tells why */
  });
  let timeout: NodeJS.Timeout | undefined;
  let limitHit: LimitName | null = null;
  let stoppedBy: string | undefined;
  let statusText = '';
  // Once the pod's command has ended ("exited=1") the prelude is only harvesting: the wall clock
  // no longer runs, and no stop may kill it (its change set is the pod's finished work).
  let exited = false;
  let exitKnown: (code: number) => void = () => {};
  const commandExit = new Promise<number>((resolve) => {
    exitKnown = resolve;
  });
  (child.stdio as unknown as (Readable | null)[])[FD.status]?.on('data', (b: Buffer) => {
    statusText += b.toString();
    if (/^started=1$/m.test(statusText)) setupDone();
    const code = statusText.match(/^exit_code=(\d+)$/m);
    if (code) exitKnown(Number(code[1]));
    if (!exited && /^exited=1$/m.test(statusText)) {
      exited = true;
      clearTimeout(timeout);
      // A warm pod whose resident ended unclaimed: its prelude waits for a destination (none).
      if (warm && goPipe && !goPipe.writableEnded) goPipe.end();
    }
  });
  // The pod's groups hold only the pod: killing them leaves the supervisor alive to save the
  // change set. SIGTERM makes the supervisor kill its bwrap child too (the path without cgroups),
  // and SIGKILL is the backstop if it does not exit.
  let backstop: NodeJS.Timeout | undefined;
  const kill = () => {
    // A held pod (waiting at its gate for go) is cancelled: its prelude must not wait for a go.
    if (goPipe && !goPipe.writableEnded) goPipe.end();
    killPodCgroup(cg);
    try {
      child.kill('SIGTERM');
    } catch {
      /* gone */
    }
    backstop ??= setTimeout(() => {
      try {
        child.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }, 10_000);
  };
  // The disk cap is the kernel's ENOSPC: the pod is told and goes on (its command decides
  // what a full disk means), so a full stage is recorded, once, and never kills the pod.
  let diskSeen = false;
  const diskFull = (what: 'bytes' | 'inodes') => {
    if (diskSeen) return;
    diskSeen = true;
    onEvent({ type: 'limit.hit', data: { cap: 'disk', limit: spec.rules.resources.diskBytes, ...(what === 'inodes' ? { reason: 'inodes' } : {}) } });
  };
  const fire = (cap: LimitName) => {
    if (limitHit || stoppedBy || exited) return;
    limitHit = cap;
    kill();
  };
  const go = () => {
    if (timeout || limitHit || stoppedBy || exited) return;
    // An unclaimed warm pod has no command to start.
    if (warm && !warm.frame) return;
    // The prelude creates changesDir itself, and only when the pod changed something: its
    // parent must exist by the harvest (a run made it already, after its store row).
    const dest = changesDir();
    if (dest && !warm) fs.mkdirSync(path.dirname(dest), { recursive: true, mode: 0o700 });
    started = performance.now();
    timeout = setTimeout(() => fire('timeout'), spec.rules.resources.timeoutMs);
    if (warm?.frame) {
      child.stdin?.on('error', () => {
        /* the resident died: the pod's exit tells why */
      });
      child.stdin?.end(warm.frame);
      goPipe?.end(warm.changesDir ?? '');
    } else goPipe?.end('g');
  };
  // The kernel's refusals at the memory and pids caps are recorded and the pod goes on; it is
  // killed only when its main process died of one, or in a storm (see capwatch.ts).
  const caps = new CapWatch(cg, { rules: spec.rules, egress: Boolean(spec.egress), uid, emit: onEvent });
  const poll = setInterval(() => {
    const fatal = caps.poll();
    if (fatal) fire(fatal);
    else {
      // Never once the prelude is reaped: its pid may be another process's by now.
      const reaped = child.exitCode !== null || child.signalCode !== null;
      const full = reaped ? null : stageFull(tty ? tty.supervisorPid() : child.pid, host);
      if (full) diskFull(full);
    }
  }, POLL_MS);
  const done = new Promise<PodOutcome>((resolve, reject) => {
    child.on('error', (e) => reject(new PodError(`cannot start the pod prelude ${host.layout.podinit}: ${e.message} (run npm run build)`)));
    child.on('close', (code, signal) => {
      setupDone();
      clearTimeout(timeout);
      clearTimeout(backstop);
      clearInterval(poll);
      const raw = code ?? (signal ? 128 + (os.constants.signals[signal] ?? 9) : 1);
      exitKnown(raw);
      // The prelude (or the terminal helper) itself killed by a signal: the pod did not end on
      // its own terms, whatever exit code that leaves.
      if (signal && !limitHit && !stoppedBy) stoppedBy = `the pod's supervisor was killed (${signal})`;
      const capEnd = caps.finish(raw, Boolean(limitHit || stoppedBy));
      if (!limitHit && !stoppedBy) {
        if (capEnd) limitHit = capEnd;
        else if (/stage_full=1/.test(statusText)) diskFull(/stage_full_what=inodes/.test(statusText) ? 'inodes' : 'bytes');
      }
      killPodCgroup(cg);
      removePodCgroup(cg);
      state.remove(spec.id);
      state.releaseUid(uid);
      // The watch recorded its own caps' hits, with who hit them.
      if (limitHit && limitHit !== 'memory' && limitHit !== 'pids')
        onEvent({ type: 'limit.hit', data: { cap: limitHit, limit: limitValue(limitHit, spec.rules) } });
      // The pod ended on its own terms: a refused change set changes neither its exit code nor
      // its status, only what is left to review (nothing; the prelude told the user why).
      const refused = harvestRefusal(statusText, Boolean(changesDir() && spec.workspace && spec.rules.workspace === 'overlay'));
      // The host's disk, not the pod's cap: what the pod wrote could not be written back whole.
      const lost = statusText.match(/^host_disk=(\d+)$/m);
      if (lost)
        onEvent({
          type: 'limit.hit',
          data: {
            cap: 'host-disk',
            limit: null,
            errno: Number(lost[1]),
            reason: refused?.reason === 'host_disk' ? 'changes discarded' : 'pod disk lost writes',
            detail: refused?.detail || "the pod's disk could not be written back to the host",
          },
        });
      else if (refused) onEvent({ type: 'limit.hit', data: { cap: 'changes', ...refused } });
      // A harvest cut short (the prelude killed) leaves only this, never a change set.
      if (refused?.reason === 'interrupted' && changesDir()) fs.rmSync(`${changesDir()}.partial`, { recursive: true, force: true });
      for (const e of setidSweepEvents(statusText)) onEvent(e);
      if (/ws_copy=1/.test(statusText)) {
        onEvent({
          type: 'guard.degraded',
          data: { guard: 'workspace overlay', detail: 'no unprivileged overlay here: the pod worked on a copy of the workspace' },
        });
      }
      if (!/started=1/.test(statusText) && !limitHit && !stoppedBy) {
        reject(new PodError(`the pod could not be set up (see the message above; clawpod doctor shows what this host supports)`));
        return;
      }
      const exitCode = limitHit === 'timeout' ? 124 : limitHit || stoppedBy ? 137 : raw;
      resolve({ exitCode, limitHit, durationMs: performance.now() - started, stoppedBy });
    });
  });
  return {
    id: spec.id,
    pid: child.pid ?? -1,
    uid,
    guards,
    // A warm pod's stdin is its resident's: the command's is /dev/null.
    stdin: spec.live ? channel : warm ? null : child.stdin,
    stdout: spec.live ? channel : child.stdout,
    stderr: child.stderr,
    wait: () => done,
    exited: () => commandExit,
    go,
    stop: (reason: string) => {
      if (!limitHit && !stoppedBy && !exited) {
        stoppedBy = reason;
        goPipe?.end();
        kill();
      }
    },
    ...(tty ? { resize: tty.resize } : {}),
  };
}

function stageFull(pid: number | undefined, host: HostFacts): 'bytes' | 'inodes' | null {
  if (!pid) return null;
  try {
    const s = fs.statfsSync(path.join(`/proc/${pid}/root`, host.layout.stage));
    if (s.type !== 0xef53 && s.type !== 0x01021994) return null;
    // As native/stage.c stage_is_full: ext4 refuses a write it cannot fit whole with ~2 MiB free.
    if (s.files > 0 && s.ffree === 0) return 'inodes';
    if (s.type === 0xef53) return s.bavail * s.bsize < Math.max(STAGE_FULL_SLACK, (s.blocks * s.bsize) / 1000) ? 'bytes' : null;
    return s.bavail === 0 ? 'bytes' : null;
  } catch {
    return null;
  }
}

function limitValue(cap: LimitName, rules: Rules): number {
  switch (cap) {
    case 'memory':
      return rules.resources.memoryBytes;
    case 'pids':
      return rules.resources.pids;
    case 'timeout':
      return rules.resources.timeoutMs;
    case 'disk':
      return rules.resources.diskBytes;
    case 'changes':
      return rules.resources.diskBytes;
    // Recorded with their own bound by the modules that enforce them (audit writer, live pod).
    case 'audit':
    case 'executor protocol':
      return 0;
  }
}

/** The prelude's word on a change set it refused (harvest=REASON, see native/changeset.h); a
 *  started pod that should have been harvested and has no word was cut short in its harvest. */
export function harvestRefusal(statusText: string, harvested: boolean): { reason: string; limit: number | null; detail: string } | null {
  const field = (k: string) => statusText.match(new RegExp(`^${k}=(.*)$`, 'm'))?.[1];
  const reason = field('harvest');
  if (reason === undefined && harvested && /^started=1$/m.test(statusText)) {
    return { reason: 'interrupted', limit: null, detail: 'the pod was stopped before its change set was complete' };
  }
  if (reason === undefined || reason === 'ok') return null;
  const limit = Number(field('harvest_limit'));
  return { reason, limit: limit > 0 ? limit : null, detail: field('harvest_detail') ?? '' };
}

/** The prelude's end-of-pod set-id sweep of the writable attachments (native/sweep.c): bits it
 *  cleared were a refusal; entries it could not check or clear leave that guard degraded. */
export function setidSweepEvents(statusText: string): PodEvent[] {
  const count = (k: string) => Number(statusText.match(new RegExp(`^${k}=(\\d+)$`, 'm'))?.[1] ?? 0);
  const swept = count('setid_swept');
  const unswept = count('setid_unswept');
  const events: PodEvent[] = [];
  if (swept > 0) events.push({ type: 'policy.deny', data: { reason: 'set-id bits the pod left on a writable attachment were cleared', swept } });
  if (unswept > 0)
    events.push({
      type: 'guard.degraded',
      data: {
        guard: 'set-id sweep',
        detail: `${unswept} entries of the writable attachments could not be checked or cleared (look for them: find DIR -perm /6000)`,
        unswept,
      },
    });
  return events;
}

/** Pods of dead clawpod processes: kill what is left, remove their cgroups and uid locks. */
function reapOrphans(host: HostFacts, state: PodState): string[] {
  const reaped: string[] = [];
  for (const rec of state.orphans()) {
    const cg: PodCgroup = { layout: host.cgroups, dirs: rec.cgroupDirs, procsFiles: [], intoDir: null, enforced: [] };
    killPodCgroup(cg);
    removePodCgroup(cg);
    state.releaseUid(rec.uid);
    // Before the record goes: a reaper killed here leaves the record, and the next one retries.
    removeEgressFiles(host, rec.id);
    state.remove(rec.id);
    reaped.push(rec.id);
  }
  for (const uid of state.strayUids()) state.releaseUid(uid);
  // Groups whose record was never written (killed between mkdir and save). The groups are
  // listed BEFORE the records are read: a pod writes its record before creating its groups, so
  // any group seen here whose record is missing afterwards really has no owner.
  const groups = listPodCgroups(host.cgroups);
  const live = new Set(fs.readdirSync(state.podsDir).map((n) => n.replace(/\.json$/, '')));
  for (const [id, dirs] of groups) {
    if (live.has(id)) continue;
    const cg: PodCgroup = { layout: host.cgroups, dirs, procsFiles: [], intoDir: null, enforced: [] };
    killPodCgroup(cg);
    removePodCgroup(cg);
    if (!reaped.includes(id)) reaped.push(id);
  }
  sweepStaleEgress(host, live);
  return reaped;
}

// A run's egress files come after its pod record (core/lifecycle.ts), whose reap removes them;
// files of no pod older than this are a backstop (older clawpods made them before the record).
const EGRESS_STALE_MS = 60_000;

/** A pod's egress socket and CA bundle, as egressPaths names them. */
function removeEgressFiles(host: HostFacts, podId: string): void {
  for (const f of [`${podId}.sock`, `${podId}-ca.pem`]) fs.rmSync(path.join(host.stateDir, 'egress', f), { force: true });
}

function sweepStaleEgress(host: HostFacts, live: Set<string>): void {
  const dir = path.join(host.stateDir, 'egress');
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const id = name.replace(/(-ca\.pem|\.sock)$/, '');
    if (id === name || live.has(id)) continue;
    try {
      if (Date.now() - fs.lstatSync(path.join(dir, name)).mtimeMs > EGRESS_STALE_MS) fs.rmSync(path.join(dir, name), { force: true });
    } catch {
      /* removed meanwhile */
    }
  }
}
