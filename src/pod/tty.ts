// A pod with a terminal of its own (clawpod exec -t): the prelude is started under clawpod-pty
// (native/pty.c), which gives it a fresh pty as stdio and relays it over pipes. The user's
// terminal never reaches the pod; clawpod relays keystrokes and output (src/cli/pty.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { FD } from './bwrap-argv.js';
import { withEtcPipes } from './podfiles.js';
import type { PreludeProcess } from './spawn.js';
import { PodError } from './types.js';

export interface TtySize {
  rows: number;
  cols: number;
}

/** The size a pod's terminal starts with when the caller knows none (the relay sends the real one). */
export const DEFAULT_TTY_SIZE: TtySize = { rows: 24, cols: 80 };

/** The helper's command line: its control socket comes after every descriptor the prelude takes. */
export function ptyArgv(podinit: string, argv: string[], ctlFd: number, size: TtySize): string[] {
  const clamp = (n: number) => String(Math.min(65535, Math.max(1, Math.floor(n) || 1)));
  return [clamp(size.rows), clamp(size.cols), String(ctlFd), '--', podinit, ...argv];
}

/** Spawns the prelude under clawpod-pty. Descriptors 3 and up are the prelude's, as without a
 *  terminal (seccomp, status, go, /etc pipes); the last one is the helper's control socket. */
export function spawnWithTty(podinit: string, argv: string[], seccompFd: number, etcCount: number, size: TtySize = DEFAULT_TTY_SIZE): ChildProcess {
  const helper = path.join(path.dirname(podinit), 'clawpod-pty');
  if (!fs.existsSync(helper)) throw new PodError(`${helper} is not built: a pod with a terminal needs it (run npm run build)`);
  const stdio = withEtcPipes<number | 'inherit'>(['pipe', 'pipe', 'inherit', seccompFd, 'pipe', 'pipe'], etcCount);
  // Never fd 6 (FD.channel) or an /etc pipe: those numbers mean something to the prelude.
  const ctlFd = Math.max(stdio.length, FD.etc);
  while (stdio.length < ctlFd) stdio.push('ignore');
  stdio.push('pipe');
  return spawn(helper, ptyArgv(podinit, argv, ctlFd, size), { env: {}, stdio });
}

export interface PodTty {
  /** The prelude's pid once the helper has said it (its mount namespace holds the stage). */
  supervisorPid(): number | undefined;
  /** Sets the pod's terminal size: the pod's foreground group gets SIGWINCH. */
  resize(rows: number, cols: number): void;
}

/** The control side of a helper spawned by spawnWithTty. */
export function ttyControl(child: PreludeProcess): PodTty {
  const ctl = child.stdio[child.stdio.length - 1] as unknown as Duplex | null;
  let pid: number | undefined;
  let said = '';
  ctl?.on('error', () => {
    /* the helper is gone: its exit says why */
  });
  ctl?.on('data', (b: Buffer) => {
    said = (said + b.toString()).slice(-256);
    const m = said.match(/^pid (\d+)$/m);
    if (m) pid = Number(m[1]);
  });
  return {
    supervisorPid: () => pid,
    resize(rows, cols) {
      if (!ctl || ctl.destroyed || !(rows > 0 && cols > 0)) return;
      ctl.write(`${Math.min(65535, Math.floor(rows))} ${Math.min(65535, Math.floor(cols))}\n`);
    },
  };
}
