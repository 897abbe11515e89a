// A live pod: one pod for many commands (an agent's tool calls). The pod's resident executor
// (native/podexec.c) runs each command sent over its stdin and answers on its stdout; calls are
// serialized, each with its own timeout and output bound.
import type { Readable } from 'node:stream';
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

export interface ExecOptions {
  timeoutMs?: number;
  maxOutput?: number;
}

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

/** Response body after its u32 len: i32 status | u8 flags | u32 n | out | u32 m | err. */
const BODY_HEAD = 13;

/** The largest response a call with this output bound can get: anything longer is a lie. */
export function frameBound(maxOutput: number): number {
  return BODY_HEAD + 2 * maxOutput;
}

export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

/** Decodes a response body (flags: 1 truncated, 2 timed out), checking every length against
 *  the frame and the call's bound. Throws ProtocolError on anything else. */
export function decodeResponse(frame: Buffer, maxOutput: number): Omit<ExecResult, 'durationMs'> {
  if (frame.length < BODY_HEAD) throw new ProtocolError(`a ${frame.length}-byte frame is too short`);
  const status = frame.readInt32LE(0);
  const flags = frame.readUInt8(4);
  const outLen = frame.readUInt32LE(5);
  if (outLen > maxOutput || 9 + outLen + 4 > frame.length) throw new ProtocolError(`stdout length ${outLen} does not fit`);
  const errLen = frame.readUInt32LE(9 + outLen);
  if (errLen > maxOutput || BODY_HEAD + outLen + errLen !== frame.length) throw new ProtocolError(`stderr length ${errLen} does not fit`);
  if (flags & ~3) throw new ProtocolError(`unknown flags ${flags}`);
  return {
    exitCode: status,
    stdout: Buffer.from(frame.subarray(9, 9 + outLen)),
    stderr: Buffer.from(frame.subarray(BODY_HEAD + outLen)),
    truncated: (flags & 1) !== 0,
    timedOut: (flags & 2) !== 0,
  };
}

interface Call {
  maxOutput: number;
  resolve(r: Omit<ExecResult, 'durationMs'>): void;
  reject(e: Error): void;
}

// Past the call's own timeout the executor has this long to answer before it counts as broken.
const ANSWER_GRACE_MS = 10_000;

export class LivePod {
  // The frame being read: its 4-byte length, then one buffer of exactly that size (never more
  // than the call's bound), so the pod can make clawpod hold at most one bounded frame.
  private readonly head = Buffer.alloc(4);
  private headGot = 0;
  private body: Buffer | null = null;
  private bodyGot = 0;
  private call: Call | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private ended = false;

  constructor(
    readonly pod: RunningPod,
    private readonly onEvent: (e: PodEvent) => void = () => {},
  ) {
    pod.stdout?.on('data', (d: Buffer) => this.onData(d));
    void pod.wait().then(
      () => this.fail(),
      () => this.fail(),
    );
  }

  /** Starts a live pod (spec.command is ignored) and releases it at once. */
  static async start(backend: Backend, spec: Omit<PodSpec, 'command' | 'live' | 'hold'>, onEvent: (e: PodEvent) => void): Promise<LivePod> {
    const pod = await backend.start({ ...spec, command: [], live: true }, onEvent);
    return new LivePod(pod, onEvent);
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
    const maxOutput = opts.maxOutput ?? DEFAULT_MAX_OUTPUT;
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const answer = new Promise<Omit<ExecResult, 'durationMs'>>((resolve, reject) => {
      this.call = { maxOutput, resolve, reject };
      this.pod.wait().then(() => reject(new Error('the pod ended during the call')), reject);
      timer = setTimeout(() => this.violation(`no answer ${ANSWER_GRACE_MS / 1000} s past the call's timeout`), timeoutMs + ANSWER_GRACE_MS);
    });
    this.pod.stdin?.write(encodeRequest(argv, timeoutMs, maxOutput));
    try {
      return { ...(await answer), durationMs: performance.now() - started };
    } finally {
      clearTimeout(timer);
      this.call = null;
    }
  }

  private onData(d: Buffer): void {
    let at = 0;
    while (at < d.length && !this.ended) {
      const call = this.call;
      if (!call) return this.violation('output while no call was waiting');
      if (!this.body) {
        const n = d.copy(this.head, this.headGot, at, at + 4 - this.headGot);
        at += n;
        this.headGot += n;
        if (this.headGot < 4) return;
        const len = this.head.readUInt32LE(0);
        const bound = frameBound(call.maxOutput);
        if (len < BODY_HEAD || len > bound) return this.violation(`a ${len}-byte frame (the bound is ${bound})`);
        this.body = Buffer.allocUnsafe(len);
        this.bodyGot = 0;
        continue;
      }
      const n = d.copy(this.body, this.bodyGot, at);
      at += n;
      this.bodyGot += n;
      if (this.bodyGot < this.body.length) return;
      const body = this.body;
      this.body = null;
      this.headGot = 0;
      this.call = null;
      try {
        call.resolve(decodeResponse(body, call.maxOutput));
      } catch (e) {
        return this.violation((e as Error).message);
      }
    }
  }

  /** The pod wrote something that is not an answer to the call in flight: it is stopped. */
  private violation(why: string): void {
    if (this.ended) return;
    this.ended = true;
    this.body = null;
    // Destroyed, not paused: a paused stream never ends, and the pod's close waits for it.
    (this.pod.stdout as Readable | null)?.destroy();
    this.onEvent({ type: 'limit.hit', data: { cap: 'executor protocol', limit: this.call ? frameBound(this.call.maxOutput) : 0, detail: why } });
    this.pod.stop(`executor protocol violation: ${why}`);
    this.call?.reject(new Error(`the pod broke the executor protocol (${why}) and was stopped`));
    this.call = null;
  }

  private fail(): void {
    this.ended = true;
  }
}
