// Repeated refusals, coalesced: a pod that sends the same denied request thousands of times a
// second must not write thousands of audit lines a second. The first of a kind goes out at once;
// repeats within a window are counted and go out as one event with `count`; the counts always
// add up to the requests refused.
import type { ProxyEvent } from './types.js';

type Emit = (type: ProxyEvent['type'], data: Record<string, unknown>) => void;

export interface Coalescer {
  emit: Emit;
  /** Sends every pending count now; later events pass straight through. */
  close(): void;
}

interface Pending {
  type: ProxyEvent['type'];
  /** The latest repeat, sent with the count. */
  data: Record<string, unknown>;
  count: number;
}

// A pod can vary the host to make every refusal distinct; past this many kinds in one window
// they are all sent at once rather than held.
const MAX_KINDS = 4096;

/** Refusals and failures before anything was forwarded: the events a flood is made of. */
function repeatable(type: ProxyEvent['type'], d: Record<string, unknown>): boolean {
  if (type === 'net.deny') return true;
  return type === 'net.allow' && Number(d.status) >= 500 && !d.bytesUp && !d.bytesDown;
}

function kindOf(type: string, d: Record<string, unknown>): string {
  return JSON.stringify([type, d.method, d.host, d.port, d.status, d.reason, d.tls]);
}

export function coalescer(out: Emit, windowMs = 1000): Coalescer {
  // Kinds seen in the current window; a kind with count 0 was sent at once and had no repeat yet.
  const kinds = new Map<string, Pending>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const flush = (): void => {
    for (const [key, p] of kinds) {
      if (p.count === 0) kinds.delete(key);
      else {
        out(p.type, { ...p.data, count: p.count });
        p.count = 0;
      }
    }
    if (kinds.size === 0 && timer) {
      clearInterval(timer);
      timer = undefined;
    }
  };
  return {
    emit(type, data) {
      if (closed || !repeatable(type, data)) return out(type, data);
      const key = kindOf(type, data);
      const p = kinds.get(key);
      if (p) {
        p.count++;
        p.data = data;
        return;
      }
      if (kinds.size >= MAX_KINDS) flush();
      kinds.set(key, { type, data, count: 0 });
      out(type, data);
      if (!timer) {
        timer = setInterval(flush, windowMs);
        timer.unref();
      }
    },
    close() {
      closed = true;
      flush();
      kinds.clear();
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
