// One egress proxy per pod, on a unix socket: plain HTTP forwarding and CONNECT tunnels, each
// checked against the pod's network rules, every request reported as an event.
import { chmod, chown, rm } from 'node:fs/promises';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createContext, type ProxyContext } from './context.js';
import { forward, type ForwardResult } from './forward.js';
import { answerHttp, answerRaw, oneLine, refusal } from './respond.js';
import { formatAuthority, parseAbsoluteTarget } from './target.js';
import { handleConnect, type TunnelDeps, type TunnelTarget } from './tunnel.js';
import type { PodProxy, PodProxyOptions } from './types.js';

/** net.deny when the proxy refused to forward (policy, or a target it cannot read); net.allow otherwise. */
function requestEvent(
  ctx: ProxyContext,
  req: IncomingMessage,
  host: string,
  port: number,
  started: number,
  r: ForwardResult,
  reason?: string,
  extra: Record<string, unknown> = {},
  refused = false,
): void {
  const data: Record<string, unknown> = {
    method: oneLine(req.method ?? '', 20),
    host,
    port,
    status: r.status,
    bytesUp: r.bytesUp,
    bytesDown: r.bytesDown,
    durationMs: Date.now() - started,
    ...extra,
  };
  if (reason !== undefined) data.reason = reason;
  if (r.unscanned !== undefined) data.unscanned = r.unscanned;
  ctx.emit(refused || r.status === 403 ? 'net.deny' : 'net.allow', data);
}

/** A plain proxy request: GET http://host:port/path. */
async function handlePlain(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = Date.now();
  const parsed = parseAbsoluteTarget(req.url ?? '');
  if (!parsed.ok) {
    answerHttp(res, { status: 400, body: `clawpod: ${parsed.error}` });
    requestEvent(ctx, req, '', 0, started, { status: 400, bytesUp: 0, bytesDown: 0 }, parsed.error, {}, true);
    return;
  }
  const t = parsed.value;
  const r = await ctx.resolveTarget(t.host, t.port);
  if (req.socket.destroyed) return;
  if (!r.ok) {
    answerHttp(res, refusal(ctx.redact, formatAuthority(t.host, t.port, 0), r.status, r.reason));
    requestEvent(ctx, req, t.host, t.port, started, { status: r.status, bytesUp: 0, bytesDown: 0 }, r.reason);
    return;
  }
  const target = { host: t.host, port: t.port, addresses: r.addresses, tls: false, path: t.path, userinfo: t.userinfo };
  forward(ctx, req, res, target, (result, reason) => requestEvent(ctx, req, t.host, t.port, started, result, reason));
}

/** A request inside a terminated tunnel: bound to the tunnel's checked host, whatever it says. */
function handleInner(ctx: ProxyContext, targets: WeakMap<object, TunnelTarget>, req: IncomingMessage, res: ServerResponse): void {
  const started = Date.now();
  const t = targets.get(req.socket);
  if (!t) {
    answerHttp(res, { status: 500, body: 'clawpod: request on an unknown tunnel' });
    return;
  }
  const url = req.url ?? '';
  if (!url.startsWith('/')) {
    answerHttp(res, { status: 400, body: 'clawpod: inside a tunnel, send origin-form requests (GET /path)' });
    return;
  }
  const target = { host: t.host, port: t.port, addresses: t.addresses, tls: true, path: url };
  forward(ctx, req, res, target, (result, reason) => {
    t.bytesUp += result.bytesUp;
    t.bytesDown += result.bytesDown;
    requestEvent(ctx, req, t.host, t.port, started, result, reason, { tls: true });
  });
}

/** Malformed input, oversized headers, a client too slow to send them: answer once and close. */
function onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  const written = (socket as Socket).bytesWritten ?? 0;
  if (err.code === 'ECONNRESET' || !socket.writable || written > 0) {
    socket.destroy();
    return;
  }
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    answerRaw(socket, { status: 431, body: 'clawpod: request headers too large (the limit is 16 KiB)' });
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    answerRaw(socket, { status: 408, body: 'clawpod: request headers not received in time' });
  } else {
    answerRaw(socket, { status: 400, body: 'clawpod: malformed HTTP request' });
  }
}

/**
 * A connection past the pod's cap: answered 503 at once, without reading a byte of it, and
 * closed. The answer goes out in the same tick (a fresh unix socket's buffer takes it whole);
 * the refusal is one net.deny, coalesced with the others of the flood.
 */
function refuseOverCap(ctx: ProxyContext, s: Socket): void {
  const reason = `too many connections to the proxy (this pod may hold ${ctx.maxConnections} at once)`;
  const body = `clawpod: ${reason}; close idle connections or reuse them\n`;
  s.end(`HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
  s.destroy();
  ctx.emit('net.deny', { method: '', host: '', port: 0, status: 503, bytesUp: 0, bytesDown: 0, durationMs: 0, reason });
}

function createServers(ctx: ProxyContext, track: (s: Duplex) => void): { outer: http.Server; inner: http.Server } {
  const { headersMs, idleMs } = ctx.timeouts;
  const options: http.ServerOptions = {
    headersTimeout: headersMs,
    // The whole request may take as long as it keeps moving; the idle timeout catches a stall.
    requestTimeout: 0,
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersMs / 2))),
    maxHeaderSize: 16 * 1024,
    noDelay: true,
  };
  const outer = http.createServer(options);
  // The inner server never listens: terminated tunnels hand it their TLS sockets.
  const inner = http.createServer(options);
  outer.timeout = idleMs;
  inner.timeout = idleMs;
  const targets = new WeakMap<object, TunnelTarget>();
  const deps: TunnelDeps = { ctx, inner, targets, track };
  let clients = 0;
  // Runs before the HTTP server's own listener: a connection over the cap never gets a parser.
  outer.prependListener('connection', (s: Socket) => {
    track(s);
    s.on('error', () => s.destroy()); // a socket error must never become an uncaught exception
    if (clients >= ctx.maxConnections) return refuseOverCap(ctx, s);
    clients++;
    s.once('close', () => clients--);
  });
  outer.on('clientError', onClientError);
  inner.on('clientError', onClientError);
  outer.on('request', (req, res) => {
    handlePlain(ctx, req, res).catch(() => res.destroy());
  });
  inner.on('request', (req, res) => handleInner(ctx, targets, req, res));
  outer.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    handleConnect(deps, req, socket, head).catch(() => socket.destroy());
  });
  inner.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    answerRaw(socket, { status: 405, body: 'clawpod: CONNECT inside a tunnel is not supported' });
  });
  return { outer, inner };
}

/** Listens on a unix socket born 0600 (see below). Exported for its test. */
export function listen(server: http.Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // The socket file is born 0600 whatever clawpod's umask (bind happens inside listen(), at
    // once): no other local user can connect in the moment before the chmod and chown below.
    const umask = process.umask(0o177);
    try {
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    } finally {
      process.umask(umask);
    }
  });
}

/**
 * Starts a pod's egress proxy on o.socketPath (which must not exist). The socket file is made
 * 0600 and, with socketOwner, handed to the pod's uid: anyone who can connect can use the
 * pod's grants and secrets, so its directory must be private too.
 */
export async function startPodProxy(o: PodProxyOptions): Promise<PodProxy> {
  if (o.secrets.length > 0 && !o.ca) throw new Error('clawpod: the egress proxy needs a run CA when the policy has secrets');
  for (const s of o.secrets) {
    if (s.placeholder.length < 16) throw new Error(`clawpod: secret ${s.name} has no usable placeholder`);
  }
  const ctx = createContext(o);
  const sockets = new Set<Duplex>();
  const track = (s: Duplex): void => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };
  const { outer } = createServers(ctx, track);
  outer.on('error', () => {}); // after listen, a server error has no one to report to; sockets carry on
  await listen(outer, o.socketPath);
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const closed = new Promise<void>((resolve) => outer.close(() => resolve()));
      for (const s of sockets) s.destroy();
      ctx.httpAgent.destroy();
      ctx.httpsAgent.destroy();
      await closed;
      ctx.flushEvents();
      await rm(o.socketPath, { force: true });
    })();
    return closing;
  };
  try {
    await chmod(o.socketPath, 0o600);
    if (o.socketOwner) await chown(o.socketPath, o.socketOwner.uid, o.socketOwner.gid);
  } catch (e) {
    await close();
    throw e;
  }
  return { socketPath: o.socketPath, close };
}
