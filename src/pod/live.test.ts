// The host side of the executor protocol treats the pod as hostile: whatever the pod writes on
// the executor's channel, clawpod holds at most one bounded frame, and anything that is not a
// well-formed answer to the call in flight stops the pod.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { LivePod } from './live.js';
import type { PodEvent, PodOutcome, RunningPod } from './types.js';

interface Fake {
  pod: RunningPod;
  stdout: PassThrough;
  stopped: () => string | undefined;
  events: PodEvent[];
  /** Resolves once the next request has reached the pod. */
  asked: () => Promise<void>;
}

function fakePod(): Fake {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  let stoppedBy: string | undefined;
  let end!: (o: PodOutcome) => void;
  const done = new Promise<PodOutcome>((r) => {
    end = r;
  });
  const pod: RunningPod = {
    id: 'r-fake',
    pid: 1,
    uid: null,
    guards: [],
    stdin,
    stdout,
    stderr: new PassThrough(),
    wait: () => done,
    go: () => {},
    stop: (reason) => {
      stoppedBy ??= reason;
      setImmediate(() => end({ exitCode: 137, limitHit: null, durationMs: 1, stoppedBy }));
    },
  };
  const events: PodEvent[] = [];
  const asked = () => new Promise<void>((r) => stdin.once('data', () => r()));
  return { pod, stdout, stopped: () => stoppedBy, events, asked };
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

/** A well-formed response frame. */
function frame(status: number, out: Buffer, err: Buffer, flags = 0, lenDelta = 0): Buffer {
  const body = Buffer.concat([Buffer.from([0, 0, 0, 0, flags]), u32(out.length), out, u32(err.length), err]);
  body.writeInt32LE(status, 0);
  return Buffer.concat([u32(body.length + lenDelta), body]);
}

function livePod(f: Fake): LivePod {
  // Constructed the way LivePod.start does it; the third argument receives its events.
  return new (LivePod as unknown as new (p: RunningPod, e: (ev: PodEvent) => void) => LivePod)(f.pod, (e) => f.events.push(e));
}

async function violation(f: Fake, call: Promise<unknown>): Promise<Error> {
  const err = await Promise.race([
    call.then(
      () => null,
      (e: Error) => e,
    ),
    new Promise<'hang'>((r) => setTimeout(() => r('hang'), 2000)),
  ]);
  assert.notEqual(err, 'hang', 'the call neither answered nor failed');
  assert.ok(err instanceof Error, 'the call failed');
  assert.match(f.stopped() ?? '', /executor protocol/, 'the pod was stopped');
  return err;
}

test('a well-formed answer split into tiny chunks is decoded', async () => {
  const f = fakePod();
  const live = livePod(f);
  const call = live.exec(['x'], { maxOutput: 1024 });
  await f.asked();
  const bytes = frame(3, Buffer.from('out\n'), Buffer.from('err\n'), 1);
  for (const b of bytes) f.stdout.write(Buffer.from([b]));
  const r = await call;
  assert.equal(r.exitCode, 3);
  assert.equal(r.stdout.toString(), 'out\n');
  assert.equal(r.stderr.toString(), 'err\n');
  assert.equal(r.truncated, true);
  assert.equal(f.stopped(), undefined);
});

test('a header announcing more than the call allows stops the pod before any of it is held', async () => {
  const f = fakePod();
  const live = livePod(f);
  const call = live.exec(['x'], { maxOutput: 4096 });
  await f.asked();
  const rss = process.memoryUsage().rss;
  f.stdout.write(u32(0xfffffff0));
  // The endless stream after it must not be kept.
  const chunk = Buffer.alloc(1 << 20, 0x41);
  for (let i = 0; i < 64; i++) f.stdout.write(chunk);
  const err = await violation(f, call);
  assert.match(err.message, /protocol/);
  assert.ok(process.memoryUsage().rss - rss < 48 << 20, 'the flood was not buffered');
  assert.equal(f.events[0]?.type, 'limit.hit');
  await assert.rejects(live.exec(['y']), /ended/);
});

test('inner lengths that disagree with the frame stop the pod', async () => {
  const f = fakePod();
  const call = livePod(f).exec(['x'], { maxOutput: 4096 });
  await f.asked();
  const bad = frame(0, Buffer.from('abc'), Buffer.from('de'));
  bad.writeUInt32LE(4000, 9); // out_len says 4000, the frame holds 3
  f.stdout.write(bad);
  await violation(f, call);
});

test('a stream longer than its bound inside a frame stops the pod', async () => {
  const f = fakePod();
  const call = livePod(f).exec(['x'], { maxOutput: 8 });
  await f.asked();
  f.stdout.write(frame(0, Buffer.alloc(20), Buffer.alloc(0)));
  await violation(f, call);
});

test('bytes nobody asked for stop the pod', async () => {
  const f = fakePod();
  livePod(f);
  f.stdout.write(frame(0, Buffer.alloc(0), Buffer.alloc(0)));
  await new Promise((r) => setTimeout(r, 50));
  assert.match(f.stopped() ?? '', /executor protocol/);
});

test('a second frame after the answer (no call waiting) stops the pod', async () => {
  const f = fakePod();
  const live = livePod(f);
  const call = live.exec(['x'], { maxOutput: 64 });
  await f.asked();
  f.stdout.write(Buffer.concat([frame(0, Buffer.from('a'), Buffer.alloc(0)), frame(0, Buffer.from('forged'), Buffer.alloc(0))]));
  const r = await call;
  assert.equal(r.stdout.toString(), 'a');
  await new Promise((res) => setTimeout(res, 50));
  assert.match(f.stopped() ?? '', /executor protocol/);
});
