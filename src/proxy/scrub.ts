// Responses from a secret's hosts may echo the real value back (an error quoting the key, a
// debug endpoint), plainly or encoded. A pod that saw it could send it anywhere it may reach, so
// the proxy swaps every recognised spelling back to the placeholder on the way in, in the reason
// phrase, header names and values, and the body, which is decoded first if it came compressed.
import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import { scrubber } from '../secrets/index.js';
import type { ResolvedSecret } from './types.js';

export interface Scrubber {
  /** The reason phrase and header pairs (flat, latin1 as node gives them), scrubbed. */
  head(reason: string, headers: string[]): { reason: string; headers: string[] };
  /**
   * A stream that does the same to a body. It always holds back the last bytes that could be
   * part of a spelling, whatever they are: holding only a possible start of one would tell the
   * pod, by how the answer is framed, whether text it made the host echo starts the value.
   */
  stream(): Transform;
}

function range(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i += step) out.push(i);
  return out;
}

export function responseScrubber(secrets: ResolvedSecret[]): Scrubber {
  const engine = scrubber(secrets, 'placeholder');
  return {
    head(reason, headers) {
      const fields = [reason, ...headers];
      // A value split over headers is found in their concatenation: the reason phrase and the
      // values in order, the names in order, and the head as written.
      const out = engine.fields(fields, [[0, ...range(2, fields.length, 2)], range(1, fields.length, 2), range(0, fields.length, 1)]);
      return { reason: out[0], headers: out.slice(1) };
    },
    stream: () => engine.stream('fixed'),
  };
}

/** The most a compressed answer may expand to; past it the answer is cut off (a zip bomb). */
export const MAX_DECODED_BYTES = 1024 * 1024 * 1024;

class Bound extends Transform {
  private seen = 0;

  constructor(private readonly max: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.max) cb(new Error(`decoded answer larger than ${this.max} bytes`));
    else cb(null, chunk);
  }
}

const DECODERS: Record<string, () => Transform> = {
  gzip: () => zlib.createGunzip(),
  'x-gzip': () => zlib.createGunzip(),
  // RFC 9110 deflate is the zlib format; a raw deflate stream fails to decode and the answer is
  // cut off, never passed on undecoded.
  deflate: () => zlib.createInflate(),
  br: () => zlib.createBrotliDecompress(),
};

/**
 * The streams that undo a Content-Encoding list (applied in order, so undone last first), each
 * bounded, or why it cannot be undone.
 */
export function decoders(contentEncoding: string | string[], max = MAX_DECODED_BYTES): Transform[] | string {
  const list = String(contentEncoding)
    .split(',')
    .map((e) => e.trim().toLowerCase())
    .filter((e) => e && e !== 'identity');
  const out: Transform[] = [];
  for (const e of list.reverse()) {
    const make = DECODERS[e];
    if (!make) return `came compressed as ${JSON.stringify(e.slice(0, 40))}, which clawpod cannot decode`;
    out.push(make(), new Bound(max));
  }
  return out;
}
