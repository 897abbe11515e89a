// What a face (the command line, a server, a schedule, a chat channel) gives a run and gets from
// it. Core never touches process.stdout, process.stdin or process signals: everything a run says
// or asks goes through a RunIO, and everything that happens in it is one RunEvent.
import type { Readable, Writable } from 'node:stream';
import type { AgentEvent } from '../agent/loop.js';
import type { PodEvent } from '../pod/types.js';
import type { ProxyEvent } from '../proxy/types.js';

/** The run's own milestones (the audit contract's names). */
export type LifecycleType =
  | 'run.start'
  | 'run.end'
  | 'exec.start'
  | 'exec.exit'
  | 'file.write'
  | 'files.ignored'
  | 'policy.deny'
  | 'guard.degraded'
  | 'run.context';

/** One stream for everything that happens in a run; the audit log is one subscriber, the
 *  terminal view another, a server's live stream a third. Discriminated by `source`. */
export type RunEvent =
  | { source: 'pod'; type: PodEvent['type']; data: Record<string, unknown> }
  | { source: 'proxy'; type: ProxyEvent['type']; data: Record<string, unknown> }
  | { source: 'run'; type: LifecycleType; data: Record<string, unknown> }
  | { source: 'agent'; event: AgentEvent };

/** The answer to "may the agent run this tool call?". always: this tool, for the rest of the run;
 *  quit: stop the run (the work so far is kept for review). */
export type ApprovalAnswer = 'yes' | 'no' | 'always' | 'quit';

export interface ApprovalRequest {
  tool: string;
  input: Record<string, unknown>;
}

export interface RunIO {
  /** Every event of the run as it happens. Text in it is redacted of secret values, but not made
   *  inert: a terminal view must escape it (safeText) before printing. */
  event(e: RunEvent): void;
  /** One line for the person watching (the run's id, a cap hit, what the proxy refused). */
  notice(line: string): void;
  /** Where the pod's output goes (exec); null: nowhere. Redacted when the run has secrets. */
  stdout: Writable | null;
  stderr: Writable | null;
  /** What the pod reads: the caller's own stdin ('inherit', a terminal or a pipe), a stream, or nothing. */
  stdin: 'inherit' | Readable | null;
  /** Asks a person; a face with nobody to ask answers 'no' and says why in `reason`. */
  approve(req: ApprovalRequest): Promise<{ answer: ApprovalAnswer; reason?: string }>;
  /** Aborted when the user interrupts: the run stops gently and keeps its work (exit 130). */
  signal: AbortSignal;
  /** Aborted on a second interrupt or a hard stop: the pod is killed at once. */
  kill?: AbortSignal;
  /** What a stop through `signal` is called in the run's record: a person at a terminal
   *  interrupts (the default), a server's API client cancels. Exit 130 either way. */
  interruptStatus?: 'interrupted' | 'cancelled';
}

/** A RunIO that says nothing, asks nobody and never stops: tests and background work start here. */
export function quietIO(over: Partial<RunIO> = {}): RunIO {
  return {
    event() {},
    notice() {},
    stdout: null,
    stderr: null,
    stdin: null,
    approve: async () => ({ answer: 'no', reason: 'nobody is there to approve it' }),
    signal: new AbortController().signal,
    ...over,
  };
}
