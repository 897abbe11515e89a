// Appends hash-chained events to one run's JSONL audit file.
//
// Durability model: every append is one write(2) of one whole line on an O_APPEND fd, so a killed
// process leaves either the whole line or (rarely) a torn tail that resume() repairs; written data
// sits in the page cache and survives the process. fdatasync runs on flush(), on close() (fsync),
// and otherwise at most once per `syncEveryMs` while there are unsynced lines, so a power loss
// can cost at most about that window. Syncing per event would cap us near the disk's flush rate.
import { closeSync, constants, fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { canonicalJson } from './canonical.js';
import { AuditError, type AuditEvent, type EventType, checkEventIntegrity, eventHash, formatLine, GENESIS_PREV, parseLine } from './event.js';

export interface AuditWriterOptions {
  /** Scrubs the canonical data JSON before it is hashed and written; must return valid JSON. */
  redact?: (s: string) => string;
  /** Longest time an appended line may stay without fdatasync, in ms. 0 syncs every append. */
  syncEveryMs?: number;
  /** Clock for event timestamps (tests pin it). */
  now?: () => Date;
  /** Size cap of the file, in bytes (default DEFAULT_AUDIT_MAX_BYTES, at least MIN_AUDIT_MAX_BYTES). */
  maxBytes?: number;
  /**
   * Called once, when the cap is reached: a run whose actions can no longer be recorded must
   * stop acting (the caller stops its pod). limit.hit {cap: 'audit'} is already written then.
   */
  onLimit?: (limit: { cap: 'audit'; limit: number }) => void;
}

/** 64 MiB: far beyond any real run's log, small enough that a flood cannot fill the disk. */
export const DEFAULT_AUDIT_MAX_BYTES = 64 * 1024 * 1024;
export const MIN_AUDIT_MAX_BYTES = 64 * 1024;
// Written even past the cap (a handful per run, none a pod can repeat): how the run ended.
const ESSENTIAL = new Set<EventType>(['run.end', 'exec.exit', 'limit.hit']);
type EssentialType = 'run.end' | 'exec.exit' | 'limit.hit';

const DEFAULT_SYNC_EVERY_MS = 50;
const TAIL_CHUNK = 64 * 1024;

interface ChainState {
  seq: number;
  hash: string;
}

export class AuditWriter {
  private fd: number | undefined;
  private _seq: number;
  private _lastHash: string;
  private dirtySince: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  // A failed write or background sync poisons the writer: later calls rethrow instead of
  // appending after a line that may be torn or an fsync that may have lost data.
  private failure: unknown;
  private bytes: number;
  private limited = false;
  private _dropped = 0;
  private readonly maxBytes: number;
  private readonly onLimit: AuditWriterOptions['onLimit'];
  private readonly redact: ((s: string) => string) | undefined;
  private readonly syncEveryMs: number;
  private readonly now: () => Date;

  private constructor(
    readonly path: string,
    readonly runId: string,
    fd: number,
    state: ChainState,
    opts: AuditWriterOptions,
  ) {
    this.fd = fd;
    this._seq = state.seq;
    this._lastHash = state.hash;
    this.redact = opts.redact;
    this.syncEveryMs = opts.syncEveryMs ?? DEFAULT_SYNC_EVERY_MS;
    this.now = opts.now ?? (() => new Date());
    this.maxBytes = Math.max(MIN_AUDIT_MAX_BYTES, opts.maxBytes ?? DEFAULT_AUDIT_MAX_BYTES);
    this.onLimit = opts.onLimit;
    this.bytes = fstatSync(fd).size;
    if (!(this.syncEveryMs >= 0)) throw new AuditError('syncEveryMs must be >= 0');
  }

  /** Starts a new chain; the file must not exist. */
  static create(path: string, runId: string, opts: AuditWriterOptions = {}): AuditWriter {
    checkRunId(runId);
    const { O_WRONLY, O_CREAT, O_EXCL, O_APPEND, O_NOFOLLOW } = constants;
    const fd = openSync(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW, 0o600);
    try {
      // The new directory entry must be durable too, or a crash could lose the whole file.
      syncDir(dirname(path));
      return new AuditWriter(path, runId, fd, { seq: 0, hash: GENESIS_PREV }, opts);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /**
   * Continues the chain of an existing file, e.g. to write run.end for a run whose process was
   * killed. A torn final line is completed if it is a whole valid event, otherwise truncated.
   * Only the tail is checked here; verifyAudit is what vouches for the earlier lines.
   */
  static resume(path: string, runId: string, opts: AuditWriterOptions = {}): AuditWriter {
    checkRunId(runId);
    const { O_RDWR, O_APPEND, O_NOFOLLOW } = constants;
    const fd = openSync(path, O_RDWR | O_APPEND | O_NOFOLLOW);
    try {
      const state = recoverTail(fd, path, runId);
      return new AuditWriter(path, runId, fd, state, opts);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  get seq(): number {
    return this._seq;
  }

  get lastHash(): string {
    return this._lastHash;
  }

  /** Whether the log reached its cap (limit.hit {cap: 'audit'} was written). */
  get limitReached(): boolean {
    return this.limited;
  }

  /** Events not written because the log had reached its cap. */
  get dropped(): number {
    return this._dropped;
  }

  /**
   * Appends one event and returns what was logged; null when the log is at its cap (only
   * run.end, exec.exit and limit.hit are written past it).
   */
  append(type: EssentialType, data: object): AuditEvent;
  append(type: EventType, data: object): AuditEvent | null;
  append(type: EventType, data: object): AuditEvent | null {
    this.writableFd();
    if (typeof type !== 'string' || type === '') throw new AuditError('audit event type must be a non-empty string');
    const essential = ESSENTIAL.has(type);
    if (this.limited && !essential) {
      this._dropped++;
      return null;
    }
    const dataJson = this.serializeData(data);
    // 512 covers the rest of the line: seq, ts, run, type, prev and hash.
    if (!essential && this.bytes + Buffer.byteLength(dataJson) + 512 > this.maxBytes) {
      this.reachLimit();
      return null;
    }
    return this.write(type, dataJson);
  }

  private reachLimit(): void {
    this.limited = true;
    this._dropped++;
    this.write('limit.hit', canonicalJson({ cap: 'audit', limit: this.maxBytes }));
    try {
      this.onLimit?.({ cap: 'audit', limit: this.maxBytes });
    } catch {
      // The caller's stop hook failing must not undo the record of the limit.
    }
  }

  private write(type: EventType, dataJson: string): AuditEvent {
    const fd = this.writableFd();
    const event: AuditEvent = {
      seq: this._seq + 1,
      ts: this.now().toISOString(),
      run: this.runId,
      type,
      data: {},
      prev: this._lastHash,
      hash: '',
    };
    event.hash = eventHash(event, dataJson);
    try {
      this.bytes += writeLine(fd, formatLine(event, dataJson) + '\n');
    } catch (err) {
      this.failure = err;
      throw err;
    }
    this._seq = event.seq;
    this._lastHash = event.hash;
    this.afterWrite();
    // Hand back what was logged (redacted, JSON-normalized), not the caller's object.
    event.data = JSON.parse(dataJson) as Record<string, unknown>;
    return event;
  }

  /** Makes every appended event durable now. */
  flush(): void {
    this.writableFd();
    if (this.dirtySince !== undefined) this.sync();
  }

  /** fsync and close; safe to call twice. Rethrows a background sync failure after closing. */
  close(): void {
    const fd = this.fd;
    if (fd === undefined) return;
    this.fd = undefined;
    this.clearTimer();
    try {
      if (this.failure === undefined) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (this.failure !== undefined) throw this.failure;
  }

  private serializeData(data: object): string {
    if (data === null || typeof data !== 'object' || Array.isArray(data)) {
      throw new AuditError('audit event data must be a plain object');
    }
    let json = canonicalJson(data);
    if (this.redact) {
      const scrubbed = this.redact(json);
      if (scrubbed !== json) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(scrubbed);
        } catch {
          // Fail closed: writing the unredacted form could leak the secret the hook targeted.
          throw new AuditError('audit redact hook returned invalid JSON; event not written');
        }
        json = canonicalJson(parsed);
      }
    }
    if (!json.startsWith('{')) throw new AuditError('audit event data must serialize to a JSON object');
    return json;
  }

  private writableFd(): number {
    if (this.failure !== undefined) throw this.failure;
    if (this.fd === undefined) throw new AuditError(`audit log ${this.path} is closed`);
    return this.fd;
  }

  private afterWrite(): void {
    if (this.syncEveryMs === 0) return this.sync();
    const t = performance.now();
    if (this.dirtySince === undefined) {
      this.dirtySince = t;
      // The timer covers an idle writer; the elapsed check below covers a busy one whose event
      // loop never gets to run the timer.
      this.timer = setTimeout(() => this.syncInBackground(), this.syncEveryMs);
      this.timer.unref();
    } else if (t - this.dirtySince >= this.syncEveryMs) {
      this.sync();
    }
  }

  private sync(): void {
    if (this.fd === undefined) return;
    this.clearTimer();
    try {
      fdatasyncSync(this.fd);
    } catch (err) {
      // After a failed fsync the kernel may have dropped the dirty pages: never report success.
      this.failure = err;
      throw err;
    }
    this.dirtySince = undefined;
  }

  private syncInBackground(): void {
    this.timer = undefined;
    try {
      this.sync();
    } catch {
      // Recorded in this.failure; the next append/flush/close throws it.
    }
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

function checkRunId(runId: string): void {
  if (typeof runId !== 'string' || runId === '') throw new AuditError('audit run id must be a non-empty string');
}

/** Writes one whole line; returns its length in bytes. */
function writeLine(fd: number, line: string): number {
  // Passing the string lets Node encode it straight into the syscall buffer (no Buffer per event).
  const n = writeSync(fd, line);
  // Regular files practically never short-write, but a partial line must not be left silently.
  const size = Buffer.byteLength(line);
  if (n !== size) writeAll(fd, Buffer.from(line).subarray(n));
  return size;
}

function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

function syncDir(dir: string): void {
  const dfd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

/** Reads back from the end until the buffer holds the last complete line (or the whole file). */
function readTail(fd: number, size: number): Buffer {
  let pos = size;
  let buf = Buffer.alloc(0);
  while (pos > 0) {
    const n = Math.min(TAIL_CHUNK, pos);
    pos -= n;
    const chunk = Buffer.alloc(n);
    let got = 0;
    while (got < n) got += readSync(fd, chunk, got, n - got, pos + got) || fail();
    buf = Buffer.concat([chunk, buf]);
    const last = buf.lastIndexOf(0x0a);
    if (last > 0 && buf.lastIndexOf(0x0a, last - 1) !== -1) break;
  }
  return buf;
}

function fail(): never {
  throw new AuditError('audit log shrank while being read');
}

/** Finds the chain state at the end of the file, repairing a torn last line. */
function recoverTail(fd: number, path: string, runId: string): ChainState {
  const size = fstatSync(fd).size;
  const buf = readTail(fd, size);
  const lastNl = buf.lastIndexOf(0x0a);
  let state: ChainState = { seq: 0, hash: GENESIS_PREV };
  if (lastNl !== -1) {
    // lastIndexOf with a negative offset counts from the end, so lastNl === 0 is special.
    const start = lastNl === 0 ? 0 : buf.lastIndexOf(0x0a, lastNl - 1) + 1;
    const line = buf.subarray(start, lastNl).toString('utf8');
    const reason = checkContinuation(line, state, runId, false);
    if (typeof reason === 'string') throw new AuditError(`cannot resume ${path}: last line: ${reason}`);
    state = reason;
  }
  const partial = buf.subarray(lastNl + 1);
  if (partial.length === 0) return state;
  const completed = checkContinuation(partial.toString('utf8'), state, runId, true);
  if (typeof completed !== 'string') {
    // Everything but the newline made it to disk: keep the event, finish the line.
    writeAll(fd, Buffer.from('\n'));
    fdatasyncSync(fd);
    return completed;
  }
  ftruncateSync(fd, size - partial.length);
  fdatasyncSync(fd);
  return state;
}

// `strictPrev` is set for the torn line, which must follow `state`; the last complete line is
// taken as-is (its predecessors are verifyAudit's business).
function checkContinuation(line: string, state: ChainState, runId: string, strictPrev: boolean): ChainState | string {
  const parsed = parseLine(line);
  if ('reason' in parsed) return parsed.reason;
  const e = parsed.event;
  if (e.run !== runId) return `run id mismatch: file has ${e.run}`;
  if (strictPrev && (e.seq !== state.seq + 1 || e.prev !== state.hash)) return 'does not continue the chain';
  return checkEventIntegrity(e, line) ?? { seq: e.seq, hash: e.hash };
}
