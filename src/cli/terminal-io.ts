// The command line's RunIO: the terminal face of a run. Events are shown by a view, notices go to
// stderr, the pod's output to this process's stdout and stderr, approvals are asked on the
// terminal, and signals become the run's interrupt: the first Ctrl-C stops gently (the work so
// far is kept for review, exit 130), a second one, SIGTERM or SIGHUP stop at once.
import type { RunEvent, RunIO, ApprovalAnswer, ApprovalRequest } from '../core/io.js';

export interface TerminalIO extends RunIO {
  /** The user's interrupt from elsewhere than SIGINT (a relayed terminal's double Ctrl-C). */
  interrupt(): void;
  /** Puts the process's signal handlers back. */
  dispose(): void;
}

export interface TerminalIOOptions {
  /** Shows one event (the agent's view); exec shows none. */
  view?: (e: RunEvent) => void;
  approve?: (req: ApprovalRequest) => Promise<{ answer: ApprovalAnswer; reason?: string }>;
  /** Whether the pod reads this process's stdin: as it is (a file or a pipe), relayed (a
   *  terminal: the pod never holds the user's terminal itself), or not at all. */
  stdin?: boolean | 'relay';
  /** Where the pod's stdout goes (run: nowhere; its output reaches the model, not the terminal). */
  stdout?: NodeJS.WritableStream | null;
  stderr?: NodeJS.WritableStream | null;
  /** Said once when the first interrupt arrives. */
  onInterrupt?: string;
}

export function terminalIO(o: TerminalIOOptions = {}): TerminalIO {
  const gentle = new AbortController();
  const hard = new AbortController();
  const onInt = () => {
    if (!gentle.signal.aborted) {
      // Through the io's notice, which a face may route through its view (that clears its progress line).
      if (o.onInterrupt) io.notice(`\nclawpod: ${o.onInterrupt}`);
      gentle.abort();
      return;
    }
    hard.abort();
  };
  const onStop = () => {
    gentle.abort();
    hard.abort();
  };
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onStop);
  process.on('SIGHUP', onStop);
  const io: TerminalIO = {
    event: (e) => o.view?.(e),
    notice: (line) => {
      process.stderr.write(`${line}\n`);
    },
    stdout: (o.stdout === undefined ? process.stdout : o.stdout) as RunIO['stdout'],
    stderr: (o.stderr === undefined ? process.stderr : o.stderr) as RunIO['stderr'],
    stdin: o.stdin === false ? null : o.stdin === 'relay' ? process.stdin : 'inherit',
    approve: o.approve ?? (async () => ({ answer: 'no', reason: 'nobody is there to approve it' })),
    signal: gentle.signal,
    kill: hard.signal,
    interrupt: () => gentle.abort(),
    dispose() {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onStop);
      process.off('SIGHUP', onStop);
    },
  };
  return io;
}
