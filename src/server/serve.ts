// `clawpod serve`: the HTTP face of the same core the command line uses. It reaps what a crashed
// server left (like every command), starts the queued runs it finds, and serves the API and the
// dashboard on loopback by default. drain() is SIGTERM's path: no new runs, a deadline for the
// running ones, then close.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Context } from '../core/context.js';
import { reapInterrupted } from '../core/lifecycle.js';
import { type ApiDeps, route, type ScheduleRoutes } from './api.js';
import { Feeds } from './feed.js';
import { allowedHosts, ApiError, authorized, checkOrigin, loadOrMakeToken, sendError, sendJson } from './http.js';
import { RunQueue } from './queue.js';
import { processStartTime, recordedProcessAlive } from '../util/proc.js';
import { WarmPool } from '../pod/warm.js';

/** An idle warm pod is retired after this (its shape's next run starts one again). */
const WARM_MAX_IDLE_MS = 5 * 60_000;
/** Policy shapes (rules + workspace) kept warm at most: the least recently used goes first. */
const WARM_MAX_SHAPES = 8;

export interface ServeOptions {
  host: string;
  port: number;
  concurrency: number;
  maxQueued: number;
  warm: number;
  workspaces: string[];
  /** Lines for the operator (stderr in the CLI). */
  log?: (line: string) => void;
  /** Made once the queue exists (schedules submit into it). */
  schedules?: (q: RunQueue, roots: string[]) => (ScheduleRoutes & { start(): Promise<void> | void; stop(): Promise<void> | void }) | undefined;
}

export interface Server {
  url: string;
  token: string;
  queue: RunQueue;
  /** No new runs; running ones get deadlineMs, then are stopped; then the listener closes. */
  drain(deadlineMs: number): Promise<void>;
  close(): Promise<void>;
}

/** One server per CLAWPOD_HOME: the queue's cap and FIFO per workspace are one process's. The
 *  lock file holds the owner's pid and start time; a dead owner's lock is taken over. */
function takeServeLock(clawpodHome: string): { release(): void } {
  const file = path.join(clawpodHome, 'serve.lock');
  const me = `${process.pid} ${processStartTime(process.pid) ?? ''}\n`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
      fs.writeSync(fd, me);
      fs.closeSync(fd);
      return {
        release() {
          try {
            if (fs.readFileSync(file, 'utf8') === me) fs.rmSync(file);
          } catch {
            /* gone */
          }
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const [pid, start] = fs.readFileSync(file, 'utf8').trim().split(' ');
    if (Number(pid) > 0 && recordedProcessAlive(Number(pid), start || null, null)) {
      throw new ApiError(400, `another clawpod serve (pid ${pid}) is running on ${clawpodHome}: stop it first, or give this one its own CLAWPOD_HOME`);
    }
    fs.rmSync(file, { force: true });
  }
  throw new ApiError(400, `cannot take ${file} (remove it if no clawpod serve is running)`);
}

/** serve.json: where a running server is, for `exec --server` and scripts (0600, replaced whole). */
function writeServeFile(clawpodHome: string, url: string): string {
  const file = path.join(clawpodHome, 'serve.json');
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify({ url, pid: process.pid })}\n`, { mode: 0o600, flag: 'w' });
  fs.renameSync(tmp, file);
  return file;
}

export async function startServer(ctx: Context, o: ServeOptions): Promise<Server> {
  for (const w of o.workspaces) {
    if (!fs.existsSync(w) || !fs.statSync(w).isDirectory())
      throw new ApiError(400, `workspace root ${w} is not a directory (pass existing directories to --workspaces)`);
  }
  const roots = o.workspaces.map((w) => fs.realpathSync(w));
  // A root holding CLAWPOD_HOME would let API clients name the store, the token and other runs'
  // records as workspaces (or policies).
  fs.mkdirSync(ctx.clawpodHome, { recursive: true, mode: 0o700 });
  const home = fs.realpathSync(ctx.clawpodHome);
  for (const r of roots) {
    if (home === r || home.startsWith(`${r}/`) || r === '/') {
      throw new ApiError(400, `workspace root ${r} contains CLAWPOD_HOME (${home}): pass the project directories themselves to --workspaces`);
    }
  }
  const lock = takeServeLock(ctx.clawpodHome);
  try {
    return await listen(ctx, o, roots, lock);
  } catch (e) {
    // A start that fails leaves nothing behind: not even its lock.
    lock.release();
    throw e;
  }
}

async function listen(ctx: Context, o: ServeOptions, roots: string[], lock: { release(): void }): Promise<Server> {
  const log = o.log ?? (() => {});
  const token = loadOrMakeToken(ctx.clawpodHome);
  // What a crashed server left: pods, cgroups, sockets reaped; its runs closed as interrupted.
  for (const id of reapInterrupted(ctx, log)) log(`clawpod: run ${id} was interrupted when the server stopped; its record is closed`);
  const feeds = new Feeds();
  // Warm pods per policy shape: the first run of a shape starts cold and primes it.
  const pods =
    o.warm > 0 ? new WarmPool(ctx.backend(), { perShape: o.warm, maxShapes: WARM_MAX_SHAPES, maxIdleMs: WARM_MAX_IDLE_MS, onError: log }) : undefined;
  const queue = new RunQueue(ctx, feeds, { roots, concurrency: o.concurrency, maxQueued: o.maxQueued, onError: log, pods });
  const schedules = o.schedules?.(queue, roots);
  const deps: ApiDeps = { ctx, queue, feeds, roots, schedules };
  let hosts = new Set<string>();
  let draining = false;
  const sockets = new Set<import('node:net').Socket>();

  const server = http.createServer(async (req, res) => {
    try {
      checkOrigin(req, hosts);
      const url = new URL(req.url ?? '/', 'http://server');
      if (url.pathname === '/v1/health' && req.method === 'GET') return sendJson(res, 200, { ok: true, ...(draining ? { draining: true } : {}) });
      // The dashboard's files carry no data: the page itself asks for the token (URL fragment).
      const isPage = req.method === 'GET' && (url.pathname === '/' || url.pathname.startsWith('/assets/'));
      if (!isPage && !authorized(req, token)) {
        throw new ApiError(401, 'missing or wrong bearer token (send Authorization: Bearer TOKEN; the token is in $CLAWPOD_HOME/serve.token)', {
          'www-authenticate': 'Bearer realm="clawpod"',
          // Nothing more on this connection: an unauthenticated client holds no socket.
          connection: 'close',
        });
      }
      if (draining && req.method === 'POST' && url.pathname === '/v1/runs')
        throw new ApiError(503, 'the server is shutting down; submit the run again when it is back');
      await route(deps, req, res, url);
    } catch (e) {
      sendError(res, e);
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.headersTimeout = 10_000;
  // A whole request (headers and body) within 30 s: a client trickling a body cannot hold a
  // socket. Event streams are responses, which this does not cut.
  server.maxConnections = 1024;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'EADDRINUSE'
          ? new ApiError(400, `${o.host}:${o.port} is in use (is another clawpod serve running? pass --listen HOST:PORT)`)
          : e.code === 'EADDRNOTAVAIL'
            ? new ApiError(400, `cannot listen on ${o.host} (not an address of this host)`)
            : e,
      ),
    );
    server.listen(o.port, o.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  hosts = allowedHosts(o.host, port);
  const url = `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`;
  writeServeFile(ctx.clawpodHome, url);
  queue.kick();
  void schedules?.start();

  const closeListener = async () => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Event streams and keep-alive connections would hold close() open.
      for (const s of sockets) s.destroy();
    });
  };
  const cleanup = () => {
    lock.release();
    try {
      const file = path.join(ctx.clawpodHome, 'serve.json');
      const cur = JSON.parse(fs.readFileSync(file, 'utf8')) as { pid?: number };
      if (cur.pid === process.pid) fs.rmSync(file, { force: true });
    } catch {
      /* gone already */
    }
  };
  return {
    url,
    token,
    queue,
    async drain(deadlineMs: number) {
      draining = true;
      await schedules?.stop();
      // Idle warm pods go at once (nothing more will take them); running runs get the deadline.
      const warmClosed = pods?.close();
      await queue.drain(deadlineMs);
      await warmClosed;
      await closeListener();
      cleanup();
    },
    async close() {
      await schedules?.stop();
      const warmClosed = pods?.close();
      await queue.drain(0);
      await warmClosed;
      await closeListener();
      cleanup();
    },
  };
}
