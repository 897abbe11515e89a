// How the proxy answers when it does not forward: a status, a tag header for refusals (so a
// block is distinguishable from a network failure) and one line of text an agent can act on.
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

export const DENY_HEADER = 'X-Clawpod-Deny';

/** One printable ASCII line, bounded: safe in a header, a status body and a log. */
export function oneLine(s: string, max = 300): string {
  const flat = s.replace(/[^\x20-\x7e]+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 3)}...`;
}

export interface TextAnswer {
  status: number;
  /** One line; a newline is added. */
  body: string;
  /** Set for policy refusals: the X-Clawpod-Deny value. */
  denyReason?: string;
}

function answerHeaders(a: TextAnswer, body: Buffer): Array<[string, string]> {
  const h: Array<[string, string]> = [];
  if (a.denyReason !== undefined) h.push([DENY_HEADER, oneLine(a.denyReason)]);
  h.push(['Content-Type', 'text/plain; charset=utf-8'], ['Content-Length', String(body.length)], ['Connection', 'close']);
  return h;
}

/**
 * The answer for a target that was refused (403, tagged) or could not be reached (502), in words
 * an agent can act on. Everything passes through redact: the pod may have put a real value in
 * the target itself (a guessed or leaked one), and it must not come back in our words.
 */
export function refusal(redact: (s: string) => string, where: string, status: number, reason: string): TextAnswer {
  const r = oneLine(redact(reason));
  const w = oneLine(redact(where), 300);
  if (status === 403) return { status, denyReason: r, body: `clawpod: egress to ${w} denied by policy (${r})` };
  return { status, body: `clawpod: could not reach ${w} (${r})` };
}

/** Answer on a socket that no longer has an HTTP server attached (CONNECT, parse errors), then close it. */
export function answerRaw(socket: Duplex, a: TextAnswer): void {
  const body = Buffer.from(`${oneLine(a.body, 1000)}\n`);
  const head = [`HTTP/1.1 ${a.status} ${STATUS_CODES[a.status] ?? 'Error'}`, ...answerHeaders(a, body).map(([k, v]) => `${k}: ${v}`)];
  if (socket.writable) {
    socket.end(Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`), body]));
    // A peer that never reads or closes must not keep the socket: once flushed, it is done.
    socket.once('finish', () => socket.destroy());
    setTimeout(() => socket.destroy(), 2000).unref();
  } else {
    socket.destroy();
  }
}

/** Answer through node's HTTP response (forwarded requests), closing the connection after. */
export function answerHttp(res: ServerResponse, a: TextAnswer): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = Buffer.from(`${oneLine(a.body, 1000)}\n`);
  res.writeHead(a.status, answerHeaders(a, body).flat());
  res.end(body);
}

// Hop-by-hop headers (RFC 9110 7.6.1) describe one connection and are never forwarded; Host is
// rebuilt from the checked target; Proxy-Authorization is for this proxy, never the upstream.
const HOP_BY_HOP = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
]);

/** rawHeaders (flat name, value list) without hop-by-hop headers and those Connection names. */
export function endToEndHeaders(raw: string[]): string[] {
  const drop = new Set(HOP_BY_HOP);
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].toLowerCase() !== 'connection') continue;
    for (const name of raw[i + 1].split(',')) drop.add(name.trim().toLowerCase());
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!drop.has(raw[i].toLowerCase())) out.push(raw[i], raw[i + 1]);
  }
  return out;
}
