// A live pod: one pod for many commands (an agent's tool calls). The pod's resident executor
// (native/podexec.c) runs each command sent over its stdin and answers on its stdout; calls are
// serialized, each with its own timeout and output bound.
import type { Backend, PodEvent, PodOutcome, PodSpec, RunningPod } from './types.js';

export interface ExecResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
  /** Output past maxOutput was dropped. */
  truncated: boolean;
  timedOut: boolean;
  durationMs: number;
}

export interface ExecOptions { timeoutMs?: number; maxOutput?: number }

const DEFAULT_TIMEOUT_MS = 120_000;
const DEFAULT_MAX_OUTPUT = 1 << 20;

/** Request frame: u32 len | u32 timeout_ms | u32 max_output | argv, NUL-terminated each. */
export function encodeRequest(argv: string[], timeoutMs: number, maxOutput: number): Buffer {
  if (argv.length === 0) throw new Error('exec needs a command');
  if (argv.some((a) => a.includes('\0'))) throw new Error('an argument contains a NUL byte');
  const body = Buffer.concat(argv.map((a) => Buffer.from(`${a}\0`, 'utf8')));
  const head = Buffer.alloc(12);
  head.writeUInt32LE(8 + body.length, 0);
  head.writeUInt32LE(timeoutMs, 4);
  head.writeUInt32LE(maxOutput, 8);
  return Buffer.concat([head, body]);
}

/** Response frame: u32 len | i32 status | u8 flags (1 truncated, 2 timed out) | u32 n | out | u32 m | err. */
export function decodeResponse(frame: Buffer): Omit<ExecResult, 'durationMs'> {
  const status = frame.readInt32LE(0);
  const flags = frame.readUInt8(4);
  const outLen = frame.readUInt32LE(5);
  const stdout = frame.subarray(9, 9 + outLen);
  const errLen = frame.readUInt32LE(9 + outLen);
  const stderr = frame.subarray(13 + outLen, 13 + outLen + errLen);
  return { exitCode: status, stdout: Buffer.from(stdout), stderr: Buffer.from(stderr), truncated: (flags & 1) !== 0, timedOut: (flags & 2) !== 0 };
}

export class LivePod {
  private buffered: Buffer = Buffer.alloc(0);
  private waiting: ((frame: Buffer) => void)[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private ended = false;

  constructor(readonly pod: RunningPod) {
    pod.stdout?.on('data', (d: Buffer) => this.onData(d));
    void pod.wait().then(() => this.fail(), () => this.fail());
  }

  /** Starts a live pod (spec.command is ignored) and releases it at once. */
  static async start(backend: Backend, spec: Omit<PodSpec, 'command' | 'live' | 'hold'>, onEvent: (e: PodEvent) => void): Promise<LivePod> {
    const pod = await backend.start({ ...spec, command: [], live: true }, onEvent);
    return new LivePod(pod);
  }

  /** Runs one command in the pod; resolves with its result (never rejects for the command's own failure). */
  exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const run = this.queue.then(() => this.execNow(argv, opts));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Ends the pod (the executor exits on EOF) and returns how it ended. */
  async close(): Promise<PodOutcome> {
    this.pod.stdin?.end();
    return this.pod.wait();
  }

  private async execNow(argv: string[], opts: ExecOptions): Promise<ExecResult> {
    if (this.ended) throw new Error('the pod has ended');
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const started = performance.now();
    const frame = new Promise<Buffer>((resolve, reject) => {
      this.waiting.push(resolve);
      this.pod.wait().then(() => reject(new Error('the pod ended during the call')), reject);
    });
    this.pod.stdin?.write(encodeRequest(argv, timeoutMs, opts.maxOutput ?? DEFAULT_MAX_OUTPUT));
    const r = decodeResponse(await frame);
    return { ...r, durationMs: performance.now() - started };
  }

  private onData(d: Buffer): void {
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, d]) : d;
    while (this.buffered.length >= 4) {
      const len = this.buffered.readUInt32LE(0);
      if (this.buffered.length < 4 + len) return;
      const frame = this.buffered.subarray(4, 4 + len);
      this.buffered = this.buffered.subarray(4 + len);
      this.waiting.shift()?.(frame);
    }
  }

  private fail(): void { this.ended = true; }
}
