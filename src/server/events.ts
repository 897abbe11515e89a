// GET /v1/runs/ID/events: the run's audit chain from its first line, then each line as it is
// appended, with the live-only events of its feed in between, as text/event-stream. The stream
// ends after run.end (or at once for a run that will never have one: cancelled or failed while
// queued). The chain file is the source: a watcher that connects late, or after a restart, sees
// the same events in the same order as one that watched from the start.
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { Context } from '../core/context.js';
import { SECURITY_HEADERS } from './http.js';
import type { Feeds, LiveEvent, RunFeed } from './feed.js';

const READ_CHUNK = 64 * 1024;
const POLL_MS = 250;
const KEEPALIVE_MS = 15_000;
/** A watcher that reads slower than the run writes is cut off past this much unsent data. */
const MAX_BUFFERED = 8 * 1024 * 1024;

function frame(type: string, data: string): string {
  // data is JSON on one line; the event name is ours or the chain's (checked on write).
  return `event: ${type.replace(/[^A-Za-z0-9._-]/g, '_')}\ndata: ${data.replace(/[\r\n]/g, ' ')}\n\n`;
}

export async function streamEvents(ctx: Context, feeds: Feeds, id: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  res.flushHeaders();
  let closed = false;
  let offset = 0;
  let sawEnd = false;
  const onLine = (line: string) => {
    let type = 'event';
    try {
      type = String((JSON.parse(line) as { type?: unknown }).type ?? 'event');
    } catch {
      /* not JSON: sent as it is, audit verify names the line */
    }
    write(frame(type, line));
    if (type === 'run.end') sawEnd = true;
  };
  let wake: (() => void) | null = null;
  const poke = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  // The chain's lines are written as read, and reading waits for the watcher (drain) after each
  // batch; live events cannot wait, so a watcher too slow for them is cut off past MAX_BUFFERED.
  const write = (s: string) => {
    if (!closed) res.write(s);
  };
  const send = (s: string) => {
    if (closed) return;
    res.write(s);
    if (res.writableLength > MAX_BUFFERED) {
      closed = true;
      res.destroy();
    }
  };
  const drained = async () => {
    while (!closed && res.writableLength > READ_CHUNK * 4) await new Promise((r) => res.once('drain', r).once('close', r));
  };
  const onLive = (e: LiveEvent) => send(frame(e.type, JSON.stringify(e.data)));
  req.on('close', () => {
    closed = true;
    poke();
  });
  const keepalive = setInterval(() => send(': keepalive\n\n'), KEEPALIVE_MS);
  let feed: RunFeed | undefined;
  // A feed's backlog first (what the run printed before this watcher came), then its live events.
  const attach = (f = feeds.get(id)) => {
    if (!f || f === feed) return;
    feed?.off('live', onLive).off('poke', poke);
    feed = f;
    for (const e of f.backlog) onLive(e);
    f.on('live', onLive).on('poke', poke);
  };
  const offOpen = feeds.onOpen(id, (f) => {
    attach(f);
    poke();
  });
  attach();
  const auditFile = () => {
    const rec = ctx.store().getRun(id);
    return { rec, file: rec?.auditPath ?? (rec?.runDir ? path.join(rec.runDir, 'audit.jsonl') : null) };
  };
  let lastStatus = '';
  try {
    while (!closed) {
      const { rec, file } = auditFile();
      if (!rec) break;
      if (rec.status !== lastStatus && (rec.status === 'queued' || lastStatus === '')) {
        send(frame('status', JSON.stringify({ status: rec.status })));
      }
      lastStatus = rec.status;
      let before = -1;
      // Batch by batch, each after the watcher has taken the last: a chain of any size streams.
      while (file && !closed && !sawEnd && offset !== before) {
        before = offset;
        offset = readNew(file, offset, onLine);
        await drained();
      }
      if (sawEnd) break;
      // Never has a chain, or its chain can grow no more: end.
      const terminal = rec.status !== 'queued' && rec.status !== 'running';
      if (terminal && (!file || !fs.existsSync(file))) {
        send(frame('status', JSON.stringify({ status: rec.status, ...(rec.summary?.error ? { error: rec.summary.error } : {}) })));
        break;
      }
      if (terminal && (feeds.get(id)?.ended ?? true)) {
        // Ended without run.end in its chain (a damaged record): one more read, then stop.
        const last = offset;
        if (file) offset = readNew(file, offset, onLine);
        if (offset === last) {
          send(frame('status', JSON.stringify({ status: rec.status })));
          break;
        }
      }
      attach();
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(poke, POLL_MS).unref();
      });
    }
  } finally {
    clearInterval(keepalive);
    offOpen();
    feed?.off('live', onLive).off('poke', poke);
    if (!res.destroyed) res.end();
  }
}

/** Reads whole lines appended since `offset`; returns the offset past the last whole line (a
 *  line still being written is read again next time, from its start). */
function readNew(file: string, offset: number, line: (l: string) => void): number {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch {
    return offset;
  }
  try {
    const buf = Buffer.alloc(READ_CHUNK);
    let done = offset;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let pos = offset;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, pos);
      if (n <= 0) break;
      pos += n;
      let start = 0;
      for (let nl = buf.indexOf(10, start); nl !== -1 && nl < n; nl = buf.indexOf(10, start)) {
        const piece = buf.subarray(start, nl);
        const whole = pending.length ? Buffer.concat([...pending, piece]) : piece;
        if (whole.length) line(whole.toString('utf8'));
        pending = [];
        pendingBytes = 0;
        start = nl + 1;
        done = pos - n + start;
      }
      // One batch of about a MiB per call: the caller waits for the watcher between batches.
      if (done - offset >= READ_CHUNK * 16) break;
      if (start < n) {
        pending.push(Buffer.from(buf.subarray(start, n)));
        pendingBytes += n - start;
        // The chain's lines are bounded by its writer; past this, stop and let verify name it.
        if (pendingBytes > MAX_BUFFERED) break;
      }
    }
    return done;
  } finally {
    fs.closeSync(fd);
  }
}
