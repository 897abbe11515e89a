// A run's live feed inside the server: what its RunIO says as it happens (pod output, the model's
// streamed text, notices) for whoever watches its event stream, and a poke whenever its audit
// chain may have grown. Nothing here is kept: the audit chain and the run's logs are the record.
import { EventEmitter } from 'node:events';
import { StringDecoder } from 'node:string_decoder';
import { Writable } from 'node:stream';
import type { RunEvent, RunIO } from '../core/io.js';

/** A live-only event: `output` {stream, text}, `text` {text}, `tool.output` {id, text}, `notice` {line}. */
export interface LiveEvent {
  type: 'output' | 'text' | 'tool.output' | 'notice' | 'status';
  data: Record<string, unknown>;
}

/** Past this much live output per second of a run, live events are dropped (the logs keep it):
 *  a pod printing as fast as it can must not make the server hold it for every slow watcher. */
const LIVE_TEXT_MAX = 64 * 1024;

/** Live events kept for a watcher that connects after they happened (the first MiB of a run). */
const BACKLOG_MAX = 1 << 20;
const KEEP_ENDED_MS = 60_000;

export class RunFeed extends EventEmitter {
  ended = false;
  /** What a late watcher is sent first: output printed before it connected is not lost. */
  readonly backlog: LiveEvent[] = [];
  private backlogBytes = 0;
  constructor(readonly id: string) {
    super();
    this.setMaxListeners(0);
  }

  live(e: LiveEvent): void {
    if (this.backlogBytes < BACKLOG_MAX) {
      this.backlog.push(e);
      this.backlogBytes += typeof e.data.b64 === 'string' ? e.data.b64.length : 256;
    }
    this.emit('live', e);
  }

  /** The chain may have a new line. */
  poke(): void {
    this.emit('poke');
  }

  end(): void {
    this.ended = true;
    this.emit('poke');
    this.emit('end');
  }
}

export class Feeds {
  private readonly feeds = new Map<string, RunFeed>();

  private readonly opened = new EventEmitter().setMaxListeners(0);

  open(id: string): RunFeed {
    let f = this.feeds.get(id);
    if (!f) {
      f = new RunFeed(id);
      this.feeds.set(id, f);
      this.opened.emit(id, f);
    }
    return f;
  }

  /** Calls fn when the run's feed opens (a watcher that came before the run started). */
  onOpen(id: string, fn: (f: RunFeed) => void): () => void {
    this.opened.on(id, fn);
    return () => this.opened.off(id, fn);
  }

  get(id: string): RunFeed | undefined {
    return this.feeds.get(id);
  }

  /** The run ended: its watchers are told; its backlog stays a minute for a watcher that comes
   *  just after (exec --server asks for the stream after the POST; a fast run can be over by then). */
  close(id: string): void {
    const f = this.feeds.get(id);
    if (!f || f.ended) return;
    f.end();
    setTimeout(() => {
      if (this.feeds.get(id) === f) this.feeds.delete(id);
    }, KEEP_ENDED_MS).unref();
  }
}

/** The pod's output as events: `text` for people (UTF-8, never split inside a character) and
 *  `b64`, the exact bytes, for a client that writes them out (exec --server). */
function outputStream(feed: RunFeed, stream: 'stdout' | 'stderr'): Writable {
  const decoder = new StringDecoder('utf8');
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      const bytes = chunk.length > LIVE_TEXT_MAX ? chunk.subarray(0, LIVE_TEXT_MAX) : chunk;
      feed.live({ type: 'output', data: { stream, text: decoder.write(bytes), b64: bytes.toString('base64') } });
      cb();
    },
  });
}

/** The server's face for one run: events to its feed, nobody to approve, cancel as the stop. */
export function serverIO(feed: RunFeed, stop: { signal: AbortSignal; kill: AbortSignal; why: () => 'cancelled' | 'interrupted' }): RunIO {
  return {
    event(e: RunEvent) {
      if (e.source === 'agent') {
        const a = e.event;
        if (a.type === 'text') feed.live({ type: 'text', data: { text: a.delta } });
        if (a.type === 'tool.result') feed.live({ type: 'tool.output', data: { id: a.id, tool: a.name, text: a.content.slice(0, 4096), isError: a.isError } });
      }
      feed.poke();
    },
    notice(line: string) {
      feed.live({ type: 'notice', data: { line } });
    },
    stdout: outputStream(feed, 'stdout'),
    stderr: outputStream(feed, 'stderr'),
    stdin: null,
    approve: async () => ({
      answer: 'no',
      reason: 'service mode has nobody at a terminal to approve it (allow the tool in the policy to let the agent use it)',
    }),
    signal: stop.signal,
    kill: stop.kill,
    // An API client's cancel, or the server's shutdown past its deadline.
    get interruptStatus() {
      return stop.why();
    },
  };
}
