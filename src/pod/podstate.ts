// Per-host bookkeeping of live pods: which uid each holds and which cgroups, owned by which
// clawpod process. A clawpod killed with SIGKILL leaves a record; the next clawpod reaps it.
import fs from 'node:fs';
import path from 'node:path';
import { isInside } from '../policy/denylist.js';
import crypto from 'node:crypto';
import { currentBootId, processStartTime, recordedProcessAlive } from '../util/proc.js';

export { processStartTime };

/** Pod uids live far above any account and any subuid range a distribution hands out. */
export const UID_BASE = 1_800_000_000;
export const UID_COUNT = 1_000_000;

export interface PodRecord {
  id: string;
  ownerPid: number;
  ownerStart: string;
  /** The boot the owner ran in: after a reboot its pid means nothing. */
  bootId?: string | null;
  uid: number | null;
  cgroupDirs: string[];
  runDir?: string;
  /** What the pod can write on the host (realpaths), so apply refuses while it runs. */
  workspace?: string | null;
  workspaceMode?: string;
  rwMounts?: string[];
}

/** Where live-pod records are: root's (/run/clawpod, see host.ts) and this home's unprivileged ones. */
export function podsDirsOf(clawpodHome: string): string[] {
  return ['/run/clawpod/pods', path.join(clawpodHome, 'rt', 'pods')];
}

/**
 * Live pods (their clawpod process still running: pid and start time) that can write `target`,
 * a directory above it or one below it: an rw workspace or an rw extra mount overlapping it.
 * A record whose owner is gone is stale and never counts (the reaper removes it).
 */
export function podsWriting(podsDirs: string[], target: string): PodRecord[] {
  const out: PodRecord[] = [];
  for (const dir of podsDirs) {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      if (!name.endsWith('.json')) continue;
      let rec: PodRecord;
      try {
        rec = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as PodRecord;
      } catch {
        continue;
      }
      const writable = [...(rec.workspaceMode === 'rw' && rec.workspace ? [rec.workspace] : []), ...(rec.rwMounts ?? [])];
      if (!writable.some((w) => target === w || isInside(target, w) || isInside(w, target))) continue;
      if (ownerAlive(rec.ownerPid, rec.ownerStart, rec.bootId)) out.push(rec);
    }
  }
  return out;
}

/** Alive and the same process: this boot, not a recycled pid, not a zombie. */
export function ownerAlive(pid: number, start: string, bootId?: string | null): boolean {
  return recordedProcessAlive(pid, start || '0', bootId);
}

export class PodState {
  readonly uidsDir: string;
  readonly podsDir: string;
  private readonly selfStart: string;
  private readonly selfBoot = currentBootId() ?? '';

  constructor(readonly dir: string) {
    this.uidsDir = path.join(dir, 'uids');
    this.podsDir = path.join(dir, 'pods');
    fs.mkdirSync(this.uidsDir, { recursive: true, mode: 0o700 });
    fs.mkdirSync(this.podsDir, { recursive: true, mode: 0o700 });
    this.selfStart = processStartTime(process.pid) ?? '0';
  }

  /** Claims a free uid with an O_EXCL lock file: unique across concurrent clawpod processes. */
  allocateUid(podId: string): number {
    for (let i = 0; i < 1000; i++) {
      const uid = UID_BASE + crypto.randomInt(UID_COUNT);
      try {
        fs.writeFileSync(path.join(this.uidsDir, String(uid)), `${podId} ${process.pid} ${this.selfStart} ${this.selfBoot}`, { flag: 'wx', mode: 0o600 });
        return uid;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
    throw new Error('no free pod uid (too many pods, or stale locks: run clawpod doctor)');
  }

  releaseUid(uid: number | null): void {
    if (uid !== null) fs.rmSync(path.join(this.uidsDir, String(uid)), { force: true });
  }

  save(rec: Omit<PodRecord, 'ownerPid' | 'ownerStart'>): PodRecord {
    const full = { ...rec, ownerPid: process.pid, ownerStart: this.selfStart, bootId: this.selfBoot || null };
    const file = path.join(this.podsDir, `${rec.id}.json`);
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(full), { mode: 0o600 });
    fs.renameSync(`${file}.tmp`, file);
    return full;
  }

  remove(id: string): void {
    fs.rmSync(path.join(this.podsDir, `${id}.json`), { force: true });
  }

  /** Records whose owning clawpod is gone. */
  orphans(): PodRecord[] {
    const out: PodRecord[] = [];
    for (const name of fs.readdirSync(this.podsDir)) {
      if (name.endsWith('.json.tmp')) {
        this.removeIfStale(name);
        continue;
      }
      if (!name.endsWith('.json')) continue;
      try {
        const rec = JSON.parse(fs.readFileSync(path.join(this.podsDir, name), 'utf8')) as PodRecord;
        if (!ownerAlive(rec.ownerPid, rec.ownerStart, rec.bootId)) out.push(rec);
      } catch {
        fs.rmSync(path.join(this.podsDir, name), { force: true });
      }
    }
    return out;
  }

  /** A record half-written by a clawpod killed inside save(): a few seconds old is stale. */
  private removeIfStale(name: string): void {
    const file = path.join(this.podsDir, name);
    try {
      if (Date.now() - fs.statSync(file).mtimeMs > 10_000) fs.rmSync(file, { force: true });
    } catch {
      /* gone */
    }
  }

  /** uid locks whose owning clawpod is gone. */
  strayUids(): number[] {
    const out: number[] = [];
    for (const name of fs.readdirSync(this.uidsDir)) {
      try {
        const file = path.join(this.uidsDir, name);
        const [, pid, start, boot] = fs.readFileSync(file, 'utf8').split(' ');
        // An empty lock is one being written right now (create, then write): only stale if old.
        if (start === undefined) {
          if (Date.now() - fs.statSync(file).mtimeMs > 10_000) out.push(Number(name));
          continue;
        }
        if (!ownerAlive(Number(pid), start, boot)) out.push(Number(name));
      } catch {
        /* released meanwhile */
      }
    }
    return out;
  }
}
