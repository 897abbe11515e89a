// Forwarding one HTTP request to a checked target, with scoped secrets swapped in. Used for
// plain proxy requests (to http://) and for requests inside a terminated tunnel (to https://).
import http, { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { errorText, fixedLookup, type ProxyContext } from './context.js';
import { answerHttp, endToEndHeaders, oneLine, refusal } from './respond.js';
import { scrubber, type Scrubber } from './scrub.js';
import { injectHeaders, injectQuery, injectText, scopedSecrets } from './secrets.js';
import { formatAuthority, type AbsoluteTarget } from './target.js';

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
  /** Content-Encoding of an answer from a secret's host that could not be scrubbed. */
  unscanned?: string;
}

function hasHeader(pairs: string[], name: string): boolean {
  for (let i = 0; i < pairs.length; i += 2) if (pairs[i].toLowerCase() === name) return true;
  return false;
}

interface UpstreamRequest {
  path: string;
  headers: string[];
  /** Names of the secrets swapped in. */
  used: Set<string>;
  /** Set when the target is a secret's host: its answers are scrubbed of real values. */
  scrub?: Scrubber;
}

/** The upstream request line's path and headers, secrets swapped in where the target is in scope. */
function upstreamRequest(ctx: ProxyContext, req: IncomingMessage, t: ForwardTarget): UpstreamRequest {
  const scoped = scopedSecrets(ctx.options.secrets, t.host, t.port, t.tls);
  const used = new Set<string>();
  let headers = injectHeaders(endToEndHeaders(req.rawHeaders), scoped, used);
  // Userinfo cannot travel in an origin-form request line; clients that put it in a proxy
  // request mean HTTP Basic, which is what curl and git send themselves.
  if (t.userinfo && !hasHeader(headers, 'authorization')) {
    const user = injectText(t.userinfo.user, scoped, used);
    const password = injectText(t.userinfo.password, scoped, used);
    headers.push('Authorization', `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`);
  }
  const scrub = scoped.length > 0 ? scrubber(ctx.options.secrets) : undefined;
  // A compressed answer cannot be scrubbed, so a secret's host is asked for an uncompressed one.
  if (scrub) headers = [...withoutHeader(headers, 'accept-encoding'), 'Accept-Encoding', 'identity'];
  const authority = formatAuthority(t.host, t.port, t.tls ? 443 : 80);
  // Host comes from the checked target, never the client's header: on a shared server (a CDN)
  // another Host would route a secret to another tenant.
  return { path: injectQuery(t.path, scoped, used), headers: ['Host', authority, ...headers], used, scrub };
}

function withoutHeader(pairs: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < pairs.length; i += 2) if (pairs[i].toLowerCase() !== name) out.push(pairs[i], pairs[i + 1]);
  return out;
}

/**
 * Streams the upstream answer into res, scrubbed when the host is a secret's. A body still
 * compressed (the server ignored Accept-Encoding: identity) cannot be scanned: it passes, and
 * the event says so.
 */
function relayResponse(method: string | undefined, upRes: IncomingMessage, res: ServerResponse, scrub: Scrubber | undefined, result: ForwardResult): void {
  let headers = endToEndHeaders(upRes.rawHeaders);
  let body: NodeJS.ReadableStream = upRes;
  // HEAD, 204 and 304 answers have no body, and their Content-Length describes another answer.
  const hasBody = method !== 'HEAD' && result.status !== 204 && result.status !== 304;
  if (scrub) {
    headers = scrub.headers(headers);
    const encoding = (upRes.headers['content-encoding'] ?? 'identity').toLowerCase();
    if (hasBody && encoding !== 'identity') {
      result.unscanned = encoding;
    } else if (hasBody) {
      // Swapping changes the length: let node frame the body itself.
      headers = withoutHeader(headers, 'content-length');
      body = upRes.pipe(scrub.stream());
    }
  }
  res.writeHead(result.status, upRes.statusMessage || STATUS_CODES[result.status] || 'Unknown', headers);
  body.pipe(res);
}

/**
 * Sends req to t and streams the answer into res. Never throws: an upstream failure becomes a
 * 502 (or a destroyed response once headers went out). done runs once, when res closes.
 */
export function forward(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse, t: ForwardTarget, done: (r: ForwardResult, reason?: string) => void): void {
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
