// Starting a pod's prelude without forking Node (native/spawn.c).
//
// child_process.spawn forks the whole Node process and waits on the main thread for the child's
// exec: ~3 ms per pod here, spent copying Node's page tables and tearing the copy down, and pods
// started together queue behind it. posix_spawn shares the parent's memory until the exec, so a
// start costs the exec alone, and it runs on a threadpool thread: under load the child can wait
// milliseconds for a CPU before it execs, and Node's main thread (the egress proxy, the API)
// does not wait with it. The child is a ChildProcess look-alike for what the pod code uses
// (stdio sockets, kill, 'exit' and 'close'); it is reaped on SIGCHLD, by pid, never another's.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { PodError } from './types.js';

/** What a prelude's spawner gives back: a ChildProcess, or a PodChild below. */
export interface PreludeProcess {
  readonly pid?: number | undefined;
  /** Both null until the child has been reaped (its pid may then be anyone's). */
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  readonly stdio: readonly unknown[];
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  kill(signal?: NodeJS.Signals): boolean;
  on(event: 'close', listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
}

/** One child descriptor: a fresh socket pair, nothing (0-2: /dev/null), clawpod's own, or this fd. */
export type StdioSlot = 'pipe' | 'ignore' | 'inherit' | number;

interface Native {
  abi: number;
  socketpair(): [number, number];
  spawn(file: string, argv: string[], envp: string[], fds: number[], setsid: boolean): Promise<number>;
  reap(pids: number[]): [number, number, number][];
}

const NO_FD = -1;
const DEV_NULL = -2;

/** native/spawn.c's interface version: a build of another one is refused. */
const SPAWN_ABI = 2;
let native: Native | null = null;
function load(dir: string): Native {
  if (native) return native;
  const file = path.join(dir, 'clawpod-spawn.node');
  let lib: Native;
  try {
    lib = createRequire(import.meta.url)(file) as Native;
  } catch (e) {
    throw new PodError(`${file} cannot be loaded (${(e as Error).message.split('\n')[0]}): run npm run build`);
  }
  if (lib.abi !== SPAWN_ABI) throw new PodError(`${file} is from another clawpod version (interface ${lib.abi ?? 1}, not ${SPAWN_ABI}): run npm run build`);
  native = lib;
  return native;
}

const children = new Map<number, PodChild>();
// Starts in flight: the listener stays while any child may still send its SIGCHLD.
let starting = 0;
let listening = false;
function listen(): void {
  if (listening) return;
  listening = true;
  process.on('SIGCHLD', reapChildren);
}
function unlisten(): void {
  if (!listening || starting > 0 || children.size > 0) return;
  listening = false;
  process.off('SIGCHLD', reapChildren);
}
const signalNames = new Map(Object.entries(os.constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

function reapChildren(): void {
  if (!native || children.size === 0) return;
  const reaped = native.reap([...children.keys()]).map(([pid, code, sig]) => {
    const child = children.get(pid);
    children.delete(pid);
    return { child, code: code >= 0 ? code : null, signal: sig > 0 ? (signalNames.get(sig) ?? 'SIGKILL') : null };
  });
  unlisten();
  // Every child waited for is told, whatever one of their listeners throws (then rethrown).
  let failure: unknown = null;
  for (const r of reaped) {
    try {
      r.child?.ended(r.code, r.signal);
    } catch (e) {
      failure ??= e;
    }
  }
  if (failure !== null) throw failure;
}

export class PodChild extends EventEmitter {
  readonly stdio: (net.Socket | null)[];
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  private reaped = false;
  private closesNeeded = 1;
  private closesGot = 0;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    readonly pid: number,
    stdio: (net.Socket | null)[],
  ) {
    super();
    if (!Number.isInteger(pid) || pid <= 0) throw new PodError(`the prelude's spawner gave no pid (${String(pid)}): run npm run build`);
    this.stdio = stdio;
    stdio.forEach((s, i) => {
      if (!s || i === 0) return;
      this.closesNeeded++;
      s.on('close', () => this.maybeClose());
    });
    // Nothing to wait on but the exit: keep the loop alive until it is seen (SIGCHLD's is not).
    if (this.closesNeeded === 1) this.retry = setInterval(reapChildren, 50);
  }

  get stdin(): Writable | null {
    return this.stdio[0] ?? null;
  }
  get stdout(): Readable | null {
    return this.stdio[1] ?? null;
  }
  get stderr(): Readable | null {
    return this.stdio[2] ?? null;
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    // Never after the reap: the pid may be someone else's by then.
    if (this.reaped) return false;
    try {
      process.kill(this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /** Called by the reaper, once. */
  ended(code: number | null, signal: NodeJS.Signals | null): void {
    this.reaped = true;
    clearTimeout(this.retry); // the interval or the timeout, whichever it is
    this.exitCode = code;
    this.signalCode = signal;
    this.stdio[0]?.destroy();
    this.emit('exit', code, signal);
    // As child_process: what the child left in its pipes is read to the end before 'close'.
    for (const s of this.stdio.slice(1)) if (s?.readable && s.readableFlowing !== true) s.resume();
    this.maybeClose();
  }

  private maybeClose(): void {
    this.closesGot++;
    if (this.closesGot === this.closesNeeded) {
      this.emit('close', this.exitCode, this.signalCode);
      return;
    }
    // Every pipe closed and no exit seen yet: the child is ending; look again shortly (this
    // also keeps the loop alive, which the SIGCHLD listener does not).
    if (!this.reaped && this.closesGot === this.closesNeeded - 1) {
      const again = () => {
        reapChildren();
        if (!this.reaped) this.retry = setTimeout(again, 2);
      };
      again();
    }
  }
}

/**
 * Starts FILE with ARGV (argv[0] is FILE), an empty environment, and exactly the
 * descriptors STDIO names at their index; every other descriptor of clawpod's stays out.
 * Rejects with a PodError when the program cannot be started. The start itself runs off the
 * main thread (native/spawn.c): under load the child may wait milliseconds for a CPU to exec.
 */
export async function spawnPrelude(file: string, argv: string[], stdio: StdioSlot[], opts: { detached?: boolean } = {}): Promise<PodChild> {
  const lib = load(path.dirname(file));
  const fds: number[] = [];
  const parents: (net.Socket | null)[] = [];
  const childEnds: number[] = [];
  starting++;
  try {
    stdio.forEach((slot, i) => {
      if (slot === 'pipe') {
        const [mine, theirs] = lib.socketpair();
        childEnds.push(theirs);
        fds.push(theirs);
        // As child_process: stdin is written only; every other pipe is read (and may be written).
        parents.push(new net.Socket({ fd: mine, readable: i !== 0, writable: true }));
      } else {
        parents.push(null);
        if (slot === 'ignore') fds.push(i < 3 ? DEV_NULL : NO_FD);
        else if (slot === 'inherit') fds.push(isOpen(i) ? i : i < 3 ? DEV_NULL : NO_FD);
        else fds.push(slot);
      }
    });
    listen();
    let pid: number;
    try {
      pid = await lib.spawn(file, [file, ...argv], [], fds, Boolean(opts.detached));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const fix =
        code === 'ENOENT' || code === 'EACCES'
          ? 'run npm run build'
          : /too long/i.test((e as Error).message)
            ? 'shorten the command line'
            : 'see the reason above';
      throw new PodError(`cannot start ${file}: ${(e as Error).message} (${fix})`);
    }
    const child = new PodChild(pid, parents);
    children.set(pid, child);
    // It may have ended already, its SIGCHLD handled before it was known here. Looked at once
    // the caller has its listeners on (they come right after the await), as child_process
    // never emits during the call that starts the child.
    setImmediate(reapChildren);
    return child;
  } catch (e) {
    for (const p of parents) p?.destroy();
    throw e;
  } finally {
    starting--;
    for (const fd of childEnds) fs.closeSync(fd);
    unlisten();
  }
}

function isOpen(fd: number): boolean {
  try {
    fs.fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}
