// A run's live feed inside the server: what its RunIO says as it happens (pod output, the model's
// streamed text, notices) for whoever watches its event stream, and a poke whenever its audit
// chain may have grown. Nothing here is kept: the audit chain and the run's logs are the record.
import { EventEmitter } from 'node:events';
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

export class RunFeed extends EventEmitter {
  ended = false;
  constructor(readonly id: string) {
    super();
    this.setMaxListeners(0);
  }

  live(e: LiveEvent): void {
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

  open(id: string): RunFeed {
    let f = this.feeds.get(id);
    if (!f) {
      f = new RunFeed(id);
      this.feeds.set(id, f);
    }
    return f;
  }

  get(id: string): RunFeed | undefined {
    return this.feeds.get(id);
  }

  close(id: string): void {
    const f = this.feeds.get(id);
    if (!f) return;
    f.end();
    this.feeds.delete(id);
  }
}

function outputStream(feed: RunFeed, stream: 'stdout' | 'stderr'): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (feed.listenerCount('live') > 0) {
        const text = chunk.length > LIVE_TEXT_MAX ? chunk.subarray(0, LIVE_TEXT_MAX).toString('utf8') : chunk.toString('utf8');
        feed.live({ type: 'output', data: { stream, text } });
      }
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
