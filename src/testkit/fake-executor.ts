// The executor side of a live pod's frame protocol (native/podexec.c), in JS, for the fake
// backend: requests are read from what clawpod writes to pod.stdin, each argv runs as a plain
// child process in its own process group, and one answer frame per request goes to pod.stdout.
//   request:  u32 len | u32 timeout_ms | u32 max_output | argv as NUL-terminated strings
//   response: u32 len | i32 status | u8 flags | u32 out_len | out | u32 err_len | err
// status: the exit code, 128+signal, 124 when the call's timeout killed it, 127 when it could
// not be started; flags: 1 output past max_output dropped, 2 timed out.
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import type { Readable, Writable } from 'node:stream';

export interface ExecutorOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Rewrites one argument (the pod's workspace path to the fake's copy). */
  mapArg: (a: string) => string;
}

/** Splits one request body (after its length) into its fields. */
export function decodeRequest(body: Buffer): { timeoutMs: number; maxOutput: number; argv: string[] } {
  const timeoutMs = body.readUInt32LE(0);
  const maxOutput = body.readUInt32LE(4);
  // Each argument ends with its NUL: the last split piece is what follows the last one (nothing).
  const argv = body.subarray(8).toString('utf8').split('\0').slice(0, -1);
  return { timeoutMs, maxOutput, argv };
}

export function encodeResponse(status: number, flags: number, out: Buffer, err: Buffer): Buffer {
  const head = Buffer.alloc(13);
  head.writeUInt32LE(13 + out.length + err.length, 0);
  head.writeInt32LE(status, 4);
  head.writeUInt8(flags, 8);
  head.writeUInt32LE(out.length, 9);
  const errLen = Buffer.alloc(4);
  errLen.writeUInt32LE(err.length);
  return Buffer.concat([head, out, errLen, err]);
}

/** Runs requests from `input` one at a time, answering on `output`; resolves when the input
 *  ends (the executor's EOF: it exits 0) or `stop()` was called. */
export class FakeExecutor {
  private buf = Buffer.alloc(0);
  private busy: Promise<void> = Promise.resolve();
  private child: ChildProcess | null = null;
  private stopped = false;
  readonly calls: string[][] = [];
  readonly done: Promise<void>;

  constructor(
    input: Readable,
    private readonly output: Writable,
    private readonly o: ExecutorOptions,
  ) {
    this.done = new Promise((resolve) => {
      input.on('data', (d: Buffer) => {
        this.buf = Buffer.concat([this.buf, d]);
        this.drain();
      });
      input.on('end', () => {
        void this.busy.then(resolve);
      });
      input.on('close', () => {
        void this.busy.then(resolve);
      });
    });
  }

  /** Kills the call in flight; no further request is run. */
  stop(): void {
    this.stopped = true;
    killGroup(this.child);
  }

  private drain(): void {
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32LE(0);
      if (this.buf.length < 4 + len) return;
      const req = decodeRequest(this.buf.subarray(4, 4 + len));
      this.buf = this.buf.subarray(4 + len);
      this.busy = this.busy.then(() => this.run(req.argv, req.timeoutMs, req.maxOutput));
    }
  }

  private async run(argv: string[], timeoutMs: number, maxOutput: number): Promise<void> {
    if (this.stopped) return;
    const mapped = argv.map(this.o.mapArg);
    this.calls.push(mapped);
    const r = await runBounded(mapped, { cwd: this.o.cwd, env: this.o.env, timeoutMs, maxOutput }, (c) => {
      this.child = c;
    });
    this.child = null;
    if (this.stopped) return;
    this.output.write(encodeResponse(r.status, (r.truncated ? 1 : 0) | (r.timedOut ? 2 : 0), r.out, r.err));
  }
}

export function killGroup(c: ChildProcess | null): void {
  if (!c?.pid || c.exitCode !== null || c.signalCode !== null) return;
  try {
    process.kill(-c.pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/** One command with a timeout (killing its group) and an output bound per stream. */
function runBounded(
  argv: string[],
  o: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number; maxOutput: number },
  onChild: (c: ChildProcess) => void,
): Promise<{ status: number; out: Buffer; err: Buffer; truncated: boolean; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { cwd: o.cwd, env: o.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    onChild(child);
    const kept = { out: [] as Buffer[], err: [] as Buffer[], outN: 0, errN: 0 };
    let truncated = false;
    let timedOut = false;
    const sink = (which: 'out' | 'err') => (d: Buffer) => {
      const n = which === 'out' ? kept.outN : kept.errN;
      const take = Math.max(0, Math.min(d.length, o.maxOutput - n));
      if (take < d.length) truncated = true;
      if (take > 0) kept[which].push(d.subarray(0, take));
      if (which === 'out') kept.outN += take;
      else kept.errN += take;
    };
    child.stdout?.on('data', sink('out'));
    child.stderr?.on('data', sink('err'));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, o.timeoutMs);
    let settled = false;
    const settle = (status: number, err: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ status, out: Buffer.concat(kept.out), err, truncated, timedOut });
    };
    // As execvp failing in podexec: 127 and the reason on stderr.
    child.on('error', (e) => settle(127, Buffer.from(`${argv[0]}: ${e.message}\n`)));
    child.on('close', (code, signal) => {
      settle(timedOut ? 124 : (code ?? 128 + (os.constants.signals[signal as NodeJS.Signals] ?? 9)), Buffer.concat(kept.err));
    });
  });
}
