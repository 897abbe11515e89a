// Responses from a secret's hosts may echo the real value back (an error quoting the key, a
// debug endpoint). A pod that saw the value could send it anywhere it may reach, so the proxy
// swaps it back to the placeholder on the way in: the pod sees only what it sent.
import { Transform, type TransformCallback } from 'node:stream';
import type { ResolvedSecret } from './types.js';

interface Swap {
  /** A spelling of the real value, as a latin1 string of its UTF-8 bytes (one char per byte). */
  from: string;
  to: string;
}

export interface Scrubber {
  /** Header pairs (flat) with real values swapped for placeholders. */
  headers(pairs: string[]): string[];
  /** A stream that does the same to a body, holding back only bytes that may start a value. */
  stream(): Transform;
}

function swaps(secrets: ResolvedSecret[]): Swap[] {
  const out: Swap[] = [];
  for (const s of secrets) {
    for (const form of new Set([s.value, encodeURIComponent(s.value), JSON.stringify(s.value).slice(1, -1)])) {
      if (form.length > 0) out.push({ from: Buffer.from(form).toString('latin1'), to: s.placeholder });
    }
  }
  // Longest first, so a value containing another is swapped whole.
  return out.sort((a, b) => b.from.length - a.from.length);
}

function swapAll(s: string, list: Swap[]): string {
  let out = s;
  for (const { from, to } of list) if (out.includes(from)) out = out.split(from).join(to);
  return out;
}

/** How many trailing chars of s could be the start of a value split across chunks. */
function pendingLength(s: string, list: Swap[]): number {
  let best = 0;
  for (const { from } of list) {
    for (let k = Math.min(from.length - 1, s.length); k > best; k--) {
      if (s.endsWith(from.slice(0, k))) {
        best = k;
        break;
      }
    }
  }
  return best;
}

class ScrubStream extends Transform {
  private pending = '';

  constructor(private readonly list: Swap[]) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const s = swapAll(this.pending + chunk.toString('latin1'), this.list);
    // Streaming answers (server-sent events) must not stall: only a possible value prefix waits.
    const keep = pendingLength(s, this.list);
    this.pending = s.slice(s.length - keep);
    if (s.length > keep) this.push(Buffer.from(s.slice(0, s.length - keep), 'latin1'));
    cb();
  }

  override _flush(cb: TransformCallback): void {
    if (this.pending.length > 0) this.push(Buffer.from(swapAll(this.pending, this.list), 'latin1'));
    cb();
  }
}

export function scrubber(secrets: ResolvedSecret[]): Scrubber {
  const list = swaps(secrets);
  return {
    // Node hands header values over as latin1 (one char per byte), the form list is in already.
    headers: (pairs) => pairs.map((v, i) => (i % 2 === 1 ? swapAll(v, list) : v)),
    stream: () => new ScrubStream(list),
  };
}
