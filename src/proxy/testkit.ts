// Test support for the proxy's tests (imported only by *.test.ts): local upstream servers and
// minimal clients that talk to the proxy the way a pod's clients do, over its unix socket.
import { mkdtemp, rm } from 'node:fs/promises';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import net, { type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { ProxyEvent } from './types.js';

export interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** Which upstream connection carried it (1, 2, ...). */
  connection: number;
}

export interface Upstream {
  port: number;
  seen: Seen[];
  close(): Promise<void>;
}

/** A local HTTP(S) server on host that records every request and answers 200 "ok <url>", echoing Authorization. */
export async function startUpstream(o: { tls?: { certPem: string; keyPem: string }; host?: string } = {}): Promise<Upstream> {
  const seen: Seen[] = [];
  const connections = new WeakMap<object, number>();
  let count = 0;
  const handler: http.RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (!connections.has(req.socket)) connections.set(req.socket, ++count);
      const connection = connections.get(req.socket) ?? 0;
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString(), connection });
      // Echoes what it got, as careless servers do: the proxy must not let a real value through.
      res.writeHead(200, { 'Content-Type': 'text/plain', 'X-Upstream': 'yes', 'X-Echo-Authorization': req.headers.authorization ?? '' });
      res.end(`ok ${req.url}`);
    });
  };
  const server = o.tls ? https.createServer({ cert: o.tls.certPem, key: o.tls.keyPem }, handler) : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, o.host ?? '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A TCP server that echoes what it reads and ends when the client ends (allowHalfOpen off); "RST" makes it reset the connection. */
export async function startEcho(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    s.on('data', (c: Buffer) => {
      if (c.includes('RST')) s.resetAndDestroy();
      else s.write(c);
    });
    s.on('end', () => s.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * p, or a failure naming what never happened. Not a speed check: the bound is far above any
 * real wait, and only keeps a broken guard from hanging the suite instead of failing it.
 */
export function eventually<T>(p: Promise<T>, what: string, ms = 15_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const fail = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`never happened: ${what}`)), ms);
  });
  return Promise.race([p, fail]).finally(() => clearTimeout(timer));
}

/** Resolves once check() returns something, polling; wrap in eventually(). */
export async function until<T>(check: () => T | undefined): Promise<T> {
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function tempDir(): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'clawpod-proxy-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export function eventLog(): { events: ProxyEvent[]; onEvent(e: ProxyEvent): void } {
  const events: ProxyEvent[] = [];
  return { events, onEvent: (e) => events.push(e) };
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A plain proxy request (absolute-form target) over the unix socket, as curl with HTTP_PROXY sends it. */
export function viaProxy(socketPath: string, target: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: target, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Reads from socket until the end of a response head; returns the head and any bytes after it. */
function readHead(socket: Socket): Promise<{ head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer): void => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.off('error', reject);
      socket.off('end', onEnd);
      socket.pause();
      resolve({ head: buf.subarray(0, end).toString('latin1'), rest: buf.subarray(end + 4) });
    };
    const onEnd = (): void => reject(new Error(`connection ended before a response head: ${JSON.stringify(buf.toString())}`));
    socket.on('data', onData);
    socket.on('error', reject);
    socket.on('end', onEnd);
  });
}

/** Everything a socket sends until it ends (or fails). */
export function readAll(socket: Duplex): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString()));
    socket.on('error', () => resolve(Buffer.concat(chunks).toString()));
    socket.resume();
  });
}

export interface TunnelReply {
  status: number;
  headers: Record<string, string>;
  /** Open on 200; the response body was read and the socket has ended otherwise. */
  socket: Socket;
  body: string;
}

/** Sends CONNECT authority over the unix socket, the way a pod-side client does. */
export async function openTunnel(socketPath: string, authority: string): Promise<TunnelReply> {
  const socket = net.connect(socketPath);
  socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  const { head, rest } = await readHead(socket);
  const [statusLine, ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const colon = l.indexOf(':');
    headers[l.slice(0, colon).trim().toLowerCase()] = l.slice(colon + 1).trim();
  }
  const status = Number(statusLine.split(' ')[1]);
  if (rest.length > 0) socket.unshift(rest);
  if (status === 200) return { status, headers, socket, body: '' };
  return { status, headers, socket, body: await readAll(socket) };
}

/**
 * An agent whose every connection is a CONNECT tunnel through the proxy with TLS on top,
 * trusting only ca. createdConnections counts tunnels, to see keep-alive reuse.
 */
export class TunnelAgent extends http.Agent {
  createdConnections = 0;
  readonly certificates: tls.PeerCertificate[] = [];

  constructor(
    private readonly socketPath: string,
    private readonly authority: string,
    private readonly servername: string,
    private readonly ca: string,
  ) {
    super({ keepAlive: true, maxSockets: 1 });
  }

  override createConnection(_o: unknown, cb: (err: Error | null, s?: Duplex) => void): Duplex {
    this.createdConnections++;
    openTunnel(this.socketPath, this.authority).then(
      (t) => {
        if (t.status !== 200) return cb(new Error(`CONNECT answered ${t.status}: ${t.body}`));
        const secure = tls.connect({ socket: t.socket, servername: this.servername, ca: this.ca });
        secure.once('secureConnect', () => {
          this.certificates.push(secure.getPeerCertificate());
          cb(null, secure);
        });
        secure.once('error', (e) => cb(e));
      },
      (e: Error) => cb(e),
    );
    return undefined as unknown as Duplex;
  }
}

/** One request through a TunnelAgent. */
export function viaTunnel(agent: TunnelAgent, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ agent, path, headers: { Host: 'ignored.test', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}
