// CONNECT tunnels. A host with no secrets gets a raw byte tunnel: the pod's TLS runs end to end
// and the proxy sees nothing inside. A host with secrets gets its TLS terminated with a leaf from
// the run CA, so its requests can be parsed and the placeholders swapped.
import type { IncomingMessage, Server } from 'node:http';
import net, { type Socket } from 'node:net';
import tls, { type SecureContext } from 'node:tls';
import type { Duplex } from 'node:stream';
import { errorText, fixedLookup, type ProxyContext } from './context.js';
import { answerRaw, oneLine, refusal } from './respond.js';
import { scopedSecrets } from './secrets.js';
import { formatAuthority, parseAuthority } from './target.js';

/** What a terminated tunnel's inner requests are bound to, found from their TLS socket. */
export interface TunnelTarget {
  host: string;
  port: number;
  addresses: string[];
  /** Summed over the tunnel's requests, reported when it closes. */
  bytesUp: number;
  bytesDown: number;
}

export interface TunnelDeps {
  ctx: ProxyContext;
  /** The HTTP server (never listening) that parses requests inside terminated tunnels. */
  inner: Server;
  targets: WeakMap<object, TunnelTarget>;
  /** Every socket the instance owns, so close() can end them. */
  track(s: Duplex): void;
}

const ESTABLISHED = 'HTTP/1.1 200 Connection Established\r\n\r\n';

interface TunnelOutcome {
  status: number;
  bytesUp: number;
  bytesDown: number;
  reason?: string;
  /** TLS was terminated: the tunnel's requests have their own events (tls: true). */
  terminated?: boolean;
}

function netEvent(deps: TunnelDeps, type: 'net.allow' | 'net.deny', host: string, port: number, started: number, r: TunnelOutcome): void {
  const data: Record<string, unknown> = {
    method: 'CONNECT',
    host,
    port,
    status: r.status,
    bytesUp: r.bytesUp,
    bytesDown: r.bytesDown,
    durationMs: Date.now() - started,
  };
  if (r.reason !== undefined) data.reason = r.reason;
  if (r.terminated) data.terminated = true;
  deps.ctx.emit(type, data);
}

/** Handles one CONNECT; never throws, every failure is an answer on the socket or a destroy. */
export async function handleConnect(deps: TunnelDeps, req: IncomingMessage, client: Socket, head: Buffer): Promise<void> {
  const started = Date.now();
  client.pause(); // nothing is read from the pod until the target is decided
  client.setTimeout(deps.ctx.timeouts.idleMs, () => client.destroy());
  const parsed = parseAuthority(req.url ?? '');
  if (!parsed.ok) {
    const target = oneLine(deps.ctx.redact(req.url ?? ''), 100);
    answerRaw(client, { status: 400, body: `clawpod: bad CONNECT target ${JSON.stringify(target)}: ${parsed.error}` });
    netEvent(deps, 'net.deny', target, 0, started, { status: 400, bytesUp: 0, bytesDown: 0, reason: parsed.error });
    return;
  }
  const { host, port } = parsed.value;
  const r = await deps.ctx.resolveTarget(host, port);
  if (client.destroyed) return;
  if (!r.ok) {
    answerRaw(client, refusal(deps.ctx.redact, formatAuthority(host, port, 0), r.status, r.reason));
    netEvent(deps, r.status === 403 ? 'net.deny' : 'net.allow', host, port, started, { status: r.status, bytesUp: 0, bytesDown: 0, reason: r.reason });
    return;
  }
  if (scopedSecrets(deps.ctx.options.secrets, host, port, true).length > 0) {
    terminate(deps, client, head, { host, port, addresses: r.addresses, bytesUp: 0, bytesDown: 0 }, started);
  } else {
    rawTunnel(deps, client, head, host, port, r.addresses, started);
  }
}

function rawTunnel(deps: TunnelDeps, client: Socket, head: Buffer, host: string, port: number, addresses: string[], started: number): void {
  // allowHalfOpen: a client that finishes sending (FIN) still gets the rest of the answer.
  const up = net.connect({ host, port, lookup: fixedLookup(addresses), allowHalfOpen: true });
  deps.track(up);
  let connected = false;
  let reason: string | undefined;
  let reported = false;
  // Either side closing (or failing) ends the tunnel: the other side is destroyed, never left
  // half-open. Before the upstream connected, the client is left to answerRaw's 502.
  const report = (): void => {
    if (reported) return;
    reported = true;
    if (connected) client.destroy();
    up.destroy();
    if (!connected) reason ??= 'the client closed before the tunnel opened';
    netEvent(deps, 'net.allow', host, port, started, { status: connected ? 200 : 502, bytesUp: up.bytesWritten, bytesDown: up.bytesRead, reason });
  };
  up.setTimeout(deps.ctx.timeouts.idleMs, () => up.destroy());
  const { connectMs } = deps.ctx.timeouts;
  const connectTimer = setTimeout(() => up.destroy(new Error(`the upstream did not accept the connection within ${connectMs} ms`)), connectMs);
  up.once('close', () => clearTimeout(connectTimer));
  up.on('error', (e) => {
    reason = oneLine(deps.ctx.redact(errorText(e)));
    if (!connected) answerRaw(client, refusal(deps.ctx.redact, formatAuthority(host, port, 0), 502, reason));
  });
  up.once('connect', () => {
    clearTimeout(connectTimer);
    connected = true;
    client.write(ESTABLISHED);
    if (head.length > 0) up.write(head);
    client.pipe(up);
    up.pipe(client);
    client.resume();
  });
  up.once('close', report);
  client.once('close', report);
}

function serverContext(deps: TunnelDeps, host: string): SecureContext {
  const cached = deps.ctx.serverContexts.get(host);
  if (cached) return cached;
  const ca = deps.ctx.options.ca;
  if (!ca) throw new Error('no run CA to terminate TLS with');
  const leaf = ca.issue(host);
  const sc = tls.createSecureContext({ cert: leaf.certPem, key: leaf.keyPem });
  deps.ctx.serverContexts.set(host, sc);
  return sc;
}

function terminate(deps: TunnelDeps, client: Socket, head: Buffer, target: TunnelTarget, started: number): void {
  let sc: SecureContext;
  try {
    sc = serverContext(deps, target.host);
  } catch (e) {
    // Fail closed: without our certificate the secret could only be sent by tunnelling raw,
    // which would send the placeholder, or not at all.
    const reason = oneLine(deps.ctx.redact(errorText(e)));
    answerRaw(client, { status: 502, body: deps.ctx.redact(`clawpod: cannot terminate TLS for ${target.host} (${reason})`) });
    netEvent(deps, 'net.allow', target.host, target.port, started, { status: 502, bytesUp: 0, bytesDown: 0, reason });
    return;
  }
  client.write(ESTABLISHED);
  if (head.length > 0) client.unshift(head);
  const secure = new tls.TLSSocket(client, { isServer: true, secureContext: sc, ALPNProtocols: ['http/1.1'] });
  deps.track(secure);
  deps.targets.set(secure, target);
  secure.on('error', () => secure.destroy());
  let reported = false;
  const report = (): void => {
    if (reported) return;
    reported = true;
    secure.destroy();
    client.destroy();
    netEvent(deps, 'net.allow', target.host, target.port, started, { status: 200, bytesUp: target.bytesUp, bytesDown: target.bytesDown, terminated: true });
  };
  secure.once('close', report);
  client.once('close', report);
  client.resume();
  deps.inner.emit('connection', secure);
}
