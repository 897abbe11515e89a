// The user's terminal relayed to a pod's own (clawpod exec -t): the pod never gets the user's
// terminal itself (pod/tty.ts gives it a pty of its own); clawpod puts the user's terminal in
// raw mode, passes every keystroke to the pod's pty, the pod's output back (through the secrets
// redactor when the run has secrets) and the window size whenever it changes, and gives the
// terminal back as it found it on every way out.
//
// The Ctrl-C rule: Ctrl-C is a keystroke like any other: the pod's terminal turns it into SIGINT
// for the pod's foreground program (or hands it to a program in raw mode). If a second Ctrl-C
// comes while the pod has printed nothing since the first (nothing but the terminal's own "^C"
// echo: the program ignored it), or three come within 2 s whatever the pod printed (a program
// that ignores Ctrl-C and keeps printing), clawpod stops the pod, as SIGTERM or SIGHUP do.
import { spawnSync } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { redactingStream } from '../core/egress.js';
import type { RunningPod } from '../pod/types.js';
import type { ResolvedSecret } from '../proxy/types.js';

const CTRL_C = 0x03;
/** What a terminal echoes for Ctrl-C (ECHOCTL): not an answer from the program. */
const CTRL_C_ECHO = /\^C/g;
/** Three Ctrl-C within this long stop the pod even if it printed in between. */
const BURST_MS = 2000;

/** The user's side: clawpod's stdin and stdout unless a test passes its own. */
export interface UserTerminal {
  input: Readable & { isTTY?: boolean; isRaw?: boolean; fd?: number; setRawMode?(raw: boolean): unknown };
  output: Writable & { isTTY?: boolean; rows?: number; columns?: number };
  /** Where SIGTERM and SIGHUP (and 'exit') arrive: the process. */
  signals: EventEmitter;
}

export interface AttachOptions {
  /** The run's secrets: the pod's output goes through the redactor on its way to the terminal. */
  secrets?: ResolvedSecret[];
  terminal?: UserTerminal;
  /** How the double Ctrl-C, SIGTERM and SIGHUP stop the pod (default: pod.stop(reason), which
   *  ends the run as killed, 137); a face can route them to its own interrupt instead. */
  stop?: (reason: 'SIGINT' | 'SIGTERM' | 'SIGHUP') => void;
}

export interface AttachedTerminal {
  /** Settles once the pod's last output has been written (the pod's terminal closed); the user's
   *  terminal is restored by then. */
  done: Promise<void>;
  /** Puts the user's terminal back (raw mode off) and stops relaying; safe to call many times. */
  restore(): void;
}

/** Tracks the Ctrl-C rule (see the top of this file); true from press() means: stop the pod. */
export class InterruptRule {
  private pending = false;
  /** When the last presses came: three within BURST_MS stop the pod whatever it prints. */
  private readonly recent: number[] = [];
  constructor(private readonly now: () => number = () => Date.now()) {}
  /** A keystroke chunk: how many Ctrl-C bytes it holds is what counts, one by one. */
  press(chunk: Buffer): boolean {
    for (const b of chunk) {
      if (b !== CTRL_C) continue;
      if (this.pending) return true;
      // A program that keeps printing would reset the rule for ever: a burst cannot be outtalked.
      const t = this.now();
      this.recent.push(t);
      while (this.recent.length > 0 && t - this.recent[0] > BURST_MS) this.recent.shift();
      if (this.recent.length >= 3) return true;
      this.pending = true;
    }
    return false;
  }
  /** Output from the pod: anything but the "^C" echo shows the program answered. */
  output(chunk: Buffer): void {
    if (this.pending && chunk.toString('latin1').replace(CTRL_C_ECHO, '').length > 0) this.pending = false;
  }
}

/**
 * Relays the user's terminal to a pod started with spec.tty. Call it once the pod is started
 * (onStart in runExec); await done before printing clawpod's own closing lines.
 */
export function attachTerminal(pod: RunningPod, opts: AttachOptions = {}): AttachedTerminal {
  const term = opts.terminal ?? { input: process.stdin, output: process.stdout, signals: process };
  const { input, output, signals } = term;
  const podIn = pod.stdin as Writable | null;
  const podOut = pod.stdout as Readable | null;
  if (!podIn || !podOut) throw new Error('attachTerminal needs a pod started with tty');
  podIn.on('error', () => {
    /* the pod's terminal closed: its exit says why */
  });
  const raw = Boolean(input.isTTY && input.setRawMode);
  const wasRaw = Boolean(input.isRaw);
  const rule = new InterruptRule();
  const stop = opts.stop ?? ((reason: string) => pod.stop(reason));
  let restored = false;

  const onKeys = (chunk: Buffer) => {
    if (rule.press(chunk)) {
      stop('SIGINT');
      return;
    }
    podIn.write(chunk);
  };
  const onResize = () => {
    if (output.rows && output.columns) pod.resize?.(output.rows, output.columns);
  };
  const stopSignals = ['SIGTERM', 'SIGHUP'] as const;
  const onStopSignal = (s: 'SIGTERM' | 'SIGHUP') => stop(s);
  const restore = () => {
    if (restored) return;
    restored = true;
    input.off('data', onKeys);
    input.pause();
    output.off('resize', onResize);
    for (const s of stopSignals) signals.off(s, onStopSignal);
    signals.off('exit', restore);
    if (raw) {
      try {
        input.setRawMode?.(wasRaw);
      } catch {
        /* the terminal is gone */
      }
    }
  };

  // Every way out puts the terminal back: the pod's end, an exception that ends the process
  // ('exit' runs before it goes), SIGTERM and SIGHUP (they stop the pod, which then ends).
  signals.on('exit', restore);
  for (const s of stopSignals) signals.on(s, onStopSignal);
  try {
    if (raw) {
      input.setRawMode?.(true);
      // Node's raw mode keeps output processing (\n -> \r\n): the pod's own pty already did
      // that, and a full-screen program's bare \n (cursor down) must reach the screen as it is.
      // setRawMode(false) puts back the settings saved before, this one with them.
      if (typeof input.fd === 'number') spawnSync('stty', ['-opost'], { stdio: [input.fd, 'ignore', 'ignore'] });
    }
    input.on('data', onKeys);
    input.resume();
    output.on('resize', onResize);
    onResize();
  } catch (e) {
    restore();
    throw e;
  }

  podOut.on('data', (b: Buffer) => rule.output(b));
  // The pod never holds a secret, but an upstream could echo one back into its output.
  const shown: Readable = opts.secrets?.length ? podOut.pipe(redactingStream(opts.secrets)) : podOut;
  shown.pipe(output, { end: false });
  const done = new Promise<void>((resolve) => {
    const finish = () => {
      restore();
      resolve();
    };
    shown.once('end', finish);
    shown.once('close', finish);
    shown.once('error', finish);
  });
  return { done, restore };
}
