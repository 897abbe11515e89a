// One scrubber for every place a secret value could surface: proxy answers (swapped back to the
// placeholder), pod output, tool output, audit events, the store and the change set (replaced
// with [secret:NAME]). It works on bytes, so binary data passes unchanged where nothing matches.
import { Transform, type TransformCallback } from 'node:stream';
import { needles } from './needles.js';
import type { ResolvedSecret } from './types.js';

interface Needle {
  bytes: Buffer;
  /** Index of the secret it spells. */
  secret: number;
}

/** A run of bytes covered by one or more overlapping matches, and whose secrets they were. */
interface Group {
  start: number;
  end: number;
  secrets: number[];
}

// A chain of overlapping matches longer than this (only a periodic value repeated on and on
// makes one) is flushed rather than held: holding it would let an upstream grow memory.
const MAX_HOLD = 64 * 1024;

export class Matcher {
  private readonly list: Needle[];
  private readonly byFirst = new Map<number, Needle[]>();
  readonly maxLength: number;

  constructor(values: string[]) {
    this.list = values.flatMap((v, secret) => needles(v).map((bytes) => ({ bytes, secret })));
    for (const n of this.list) {
      const l = this.byFirst.get(n.bytes[0]) ?? [];
      l.push(n);
      this.byFirst.set(n.bytes[0], l);
    }
    this.maxLength = Math.max(0, ...this.list.map((n) => n.bytes.length));
  }

  get empty(): boolean {
    return this.list.length === 0;
  }

  /**
   * Every match, overlaps included, merged into groups: two secrets that overlap in the text are
   * both covered, so neither leaves a tail behind.
   */
  groups(buf: Buffer): Group[] {
    const hits: Array<[number, number, number]> = [];
    for (const n of this.list) {
      for (let i = buf.indexOf(n.bytes); i >= 0; i = buf.indexOf(n.bytes, i + 1)) hits.push([i, i + n.bytes.length, n.secret]);
    }
    hits.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
    const out: Group[] = [];
    for (const [start, end, secret] of hits) {
      const last = out.at(-1);
      if (last && start < last.end) {
        // A match inside another adds no tag (a value contained in a longer one is caught whole);
        // one reaching past it does, so both secrets are named.
        if (end > last.end && !last.secrets.includes(secret)) last.secrets.push(secret);
        last.end = Math.max(last.end, end);
      } else {
        out.push({ start, end, secrets: [secret] });
      }
    }
    return out;
  }

  /** The earliest offset from which buf's tail is the unfinished start of some needle (buf.length: none). */
  pendingStart(buf: Buffer): number {
    for (let j = Math.max(0, buf.length - (this.maxLength - 1)); j < buf.length; j++) {
      const candidates = this.byFirst.get(buf[j]);
      if (!candidates) continue;
      const rest = buf.length - j;
      for (const n of candidates) {
        if (rest < n.bytes.length && buf.compare(n.bytes, 0, rest, j) === 0) return j;
      }
    }
    return buf.length;
  }
}

/** buf with each group replaced by its secrets' tags. */
function replaceGroups(buf: Buffer, groups: Group[], tags: Buffer[]): Buffer {
  if (groups.length === 0) return buf;
  const parts: Buffer[] = [];
  let at = 0;
  for (const g of groups) {
    parts.push(buf.subarray(at, g.start), ...g.secrets.map((s) => tags[s]));
    at = g.end;
  }
  parts.push(buf.subarray(at));
  return Buffer.concat(parts);
}

/** What a stream holds back between chunks: see Incremental. */
export type Hold = 'pending' | 'fixed';

/** The scrubber over a sequence of chunks, synchronously: what a stream or a file copy uses. */
export class Incremental {
  private held = Buffer.alloc(0);
  /** How many spellings were replaced so far. */
  replaced = 0;

  /**
   * hold 'pending' waits only on bytes that may start a spelling, so text that cannot be a
   * secret streams on at once; but what it holds tells whether the tail is a prefix of a value.
   * 'fixed' always holds the last maxLength-1 bytes, whatever they are: what comes out (and
   * when) depends on how much arrived, never on what it says. Use it wherever the reader can
   * choose text the source echoes (proxy answers).
   */
  constructor(
    private readonly m: Matcher,
    private readonly tags: Buffer[],
    private readonly hold: Hold = 'pending',
  ) {}

  /** The scrubbed bytes that can be released after this chunk (possibly none). */
  write(chunk: Buffer): Buffer {
    const data = this.held.length ? Buffer.concat([this.held, chunk]) : chunk;
    const groups = this.m.groups(data);
    // Bytes from the first unfinished match on must wait for the next chunk, and so must a
    // finished group that reaches into them (the two may merge; only a complete match moves the
    // cut, and the reader that made it already knew the value).
    let cut = this.hold === 'fixed' ? Math.max(0, data.length - (this.m.maxLength - 1)) : this.m.pendingStart(data);
    for (const g of groups) if (g.start < cut && g.end > cut) cut = g.start;
    if (data.length - cut > MAX_HOLD) cut = groups.find((g) => g.start === cut)?.end ?? cut;
    this.held = Buffer.from(data.subarray(cut));
    const done = groups.filter((g) => g.end <= cut);
    this.replaced += done.length;
    return cut > 0 ? replaceGroups(data.subarray(0, cut), done, this.tags) : Buffer.alloc(0);
  }

  /** What is still held, scrubbed: the end of the sequence. */
  end(): Buffer {
    const groups = this.held.length ? this.m.groups(this.held) : [];
    this.replaced += groups.length;
    const out = this.held.length ? replaceGroups(this.held, groups, this.tags) : Buffer.alloc(0);
    this.held = Buffer.alloc(0);
    return out;
  }
}

class ScrubStream extends Transform {
  private readonly inc: Incremental;

  constructor(m: Matcher, tags: Buffer[], hold: Hold) {
    super();
    this.inc = new Incremental(m, tags, hold);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const out = this.inc.write(chunk);
    if (out.length) this.push(out);
    cb();
  }

  override _flush(cb: TransformCallback): void {
    const out = this.inc.end();
    if (out.length) this.push(out);
    cb();
  }
}

export interface Scrubber {
  /** buf with every recognised spelling replaced; the same object when nothing matched. */
  buffer(buf: Buffer): Buffer;
  /** The same over a string's UTF-8 bytes (a match starts and ends on character boundaries). */
  text(s: string): string;
  /** The same over a latin1 string, one char per byte (how node hands over header strings). */
  latin1(s: string): string;
  /** Header-like fields (flat list): each field, and runs of them joined in the orders given. */
  fields(list: string[], orders: number[][]): string[];
  /** A stream doing the same to a body; hold says what it holds back between chunks (see Incremental). */
  stream(hold?: Hold): Transform;
  /** The same, driven synchronously chunk by chunk (a file scrubbed without reading it whole). */
  incremental(): Incremental;
  /** True when no secret is known: every call returns its input. */
  readonly empty: boolean;
  /** Names of the secrets spelt somewhere in buf. */
  found(buf: Buffer): string[];
}

export type Replacement = 'tag' | 'placeholder';

/** The one engine: replacement 'tag' writes [secret:NAME], 'placeholder' the pod's placeholder. */
export function scrubber(secrets: ResolvedSecret[], replacement: Replacement = 'tag'): Scrubber {
  const m = new Matcher(secrets.map((s) => s.value));
  const tags = secrets.map((s) => Buffer.from(replacement === 'tag' ? `[secret:${s.name}]` : s.placeholder, 'utf8'));
  const buffer = (buf: Buffer): Buffer => (m.empty ? buf : replaceGroups(buf, m.groups(buf), tags));
  const viaBytes = (s: string, enc: BufferEncoding): string => {
    if (m.empty) return s;
    const b = Buffer.from(String(s), enc);
    const out = buffer(b);
    return out === b ? s : out.toString(enc);
  };
  return {
    buffer,
    text: (s) => viaBytes(s, 'utf8'),
    latin1: (s) => viaBytes(s, 'latin1'),
    fields: (list, orders) => (m.empty ? list : scrubFields(m, tags, list, orders)),
    stream: (hold = 'pending') => new ScrubStream(m, tags, hold),
    incremental: () => new Incremental(m, tags),
    empty: m.empty,
    found: (buf) => [...new Set(m.groups(buf).flatMap((g) => g.secrets))].map((i) => secrets[i].name),
  };
}

/**
 * A value split over several fields (two headers, the reason phrase and a header) is found in
 * their concatenation; each field's share of a match is replaced in place. Only splits in one of
 * the given orders are seen: pieces reordered, or too short to tell from other text, are not.
 */
function scrubFields(m: Matcher, tags: Buffer[], list: string[], orders: number[][]): string[] {
  const bufs = list.map((f) => Buffer.from(f, 'latin1'));
  const marks: Group[][] = bufs.map(() => []);
  for (const order of [...orders, ...list.map((_, i) => [i])]) {
    const offsets: number[] = [];
    let total = 0;
    for (const i of order) {
      offsets.push(total);
      total += bufs[i].length;
    }
    for (const g of m.groups(Buffer.concat(order.map((i) => bufs[i])))) {
      order.forEach((i, k) => {
        const start = Math.max(g.start - offsets[k], 0);
        const end = Math.min(g.end - offsets[k], bufs[i].length);
        if (start < end) marks[i].push({ start, end, secrets: g.secrets });
      });
    }
  }
  return bufs.map((b, i) => (marks[i].length ? replaceGroups(b, mergeGroups(marks[i]), tags).toString('latin1') : list[i]));
}

function mergeGroups(list: Group[]): Group[] {
  const sorted = [...list].sort((a, b) => a.start - b.start);
  const out: Group[] = [];
  for (const g of sorted) {
    const last = out.at(-1);
    if (last && g.start < last.end) {
      last.end = Math.max(last.end, g.end);
      for (const s of g.secrets) if (!last.secrets.includes(s)) last.secrets.push(s);
    } else {
      out.push({ ...g, secrets: [...g.secrets] });
    }
  }
  return out;
}
