// Forwarding one HTTP request to a checked target, with scoped secrets swapped in. Used for
// plain proxy requests (to http://) and for requests inside a terminated tunnel (to https://).
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { errorText, fixedLookup, type ProxyContext } from './context.js';
import { answerHttp, oneLine, refusal } from './respond.js';
import type { Scrubber } from './scrub.js';
import { formatAuthority, type AbsoluteTarget } from './target.js';
import { relayResponse, upstreamRequest } from './wire.js';

export interface ForwardTarget {
  host: string;
  port: number;
  /** Checked addresses to dial, in order. */
  addresses: string[];
  /** Upstream over TLS (a terminated tunnel) or plain HTTP. */
  tls: boolean;
  /** Origin-form path and query as the client sent it. */
  path: string;
  userinfo?: AbsoluteTarget['userinfo'];
}

export interface ForwardResult {
  status: number;
  bytesUp: number;
  bytesDown: number;
  /** Content-Encoding of an answer from a secret's host that was refused: it could not be decoded to scan. */
  unscanned?: string;
}

/**
 * Sends req to t and streams the answer into res. Never throws: an upstream failure becomes a
 * 502 (or a destroyed response once headers went out). done runs once, when res closes.
 */
export function forward(
  ctx: ProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
  t: ForwardTarget,
  done: (r: ForwardResult, reason?: string) => void,
): void {
  const result: ForwardResult = { status: 0, bytesUp: 0, bytesDown: 0 };
  let reason: string | undefined;
  res.once('close', () => {
    if (!res.writableFinished) upReq?.destroy();
    done(result, reason);
  });
  const authority = formatAuthority(t.host, t.port, t.tls ? 443 : 80);
  let upReq: http.ClientRequest | undefined;
  let used: Set<string>;
  let scrub: Scrubber | undefined;
  try {
    const u = upstreamRequest(ctx, req, t);
    if (!u.ok) {
      // A placeholder where its secret may not go: refused, so it cannot be echoed back.
      reason = u.reason;
      result.status = 403;
      ctx.emit('policy.deny', { secret: u.secret, host: t.host, reason: u.reason });
      answerHttp(res, refusal(ctx.redact, authority, 403, u.reason));
      return;
    }
    used = u.used;
    scrub = u.scrub;
    const options: https.RequestOptions = {
      host: t.host,
      port: t.port,
      method: req.method,
      path: u.path,
      headers: u.headers as unknown as http.OutgoingHttpHeaders,
      setHost: false,
      lookup: fixedLookup(t.addresses),
      agent: t.tls ? ctx.httpsAgent : ctx.httpAgent,
    };
    upReq = t.tls ? https.request(options) : http.request(options);
  } catch (e) {
    // Node refuses header values it cannot send (a secret value with a newline, say).
    reason = oneLine(ctx.redact(`request cannot be forwarded: ${errorText(e)}`));
    result.status = 400;
    answerHttp(res, { status: 400, body: `clawpod: ${reason}` });
    return;
  }
  for (const name of used) ctx.emit('secret.use', { name, host: t.host });
  const up = upReq;
  // A write to a pod that went away must end this request, never throw out of the proxy.
  res.on('error', () => up.destroy());
  const { connectMs } = ctx.timeouts;
  up.once('socket', (sock) => {
    if (!sock.connecting) return;
    const timer = setTimeout(() => up.destroy(new Error(`the upstream did not accept the connection within ${connectMs} ms`)), connectMs);
    sock.once('connect', () => clearTimeout(timer));
    sock.once('close', () => clearTimeout(timer));
  });
  up.on('response', (upRes) => {
    result.status = upRes.statusCode ?? 502;
    upRes.on('data', (c: Buffer) => (result.bytesDown += c.length));
    upRes.on('error', () => res.destroy());
    try {
      relayResponse(req.method, upRes, res, scrub, result);
    } catch {
      upRes.destroy();
      res.destroy();
    }
  });
  up.on('error', (e) => {
    reason = oneLine(ctx.redact(errorText(e)));
    if (res.headersSent) {
      res.destroy();
      return;
    }
    result.status = 502;
    answerHttp(res, refusal(ctx.redact, authority, 502, reason));
  });
  req.on('data', (c: Buffer) => (result.bytesUp += c.length));
  req.on('error', () => up.destroy());
  req.pipe(up);
}
