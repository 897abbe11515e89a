// What a forwarded request and its answer look like on the wire when secrets are involved: the
// upstream request with the value placed where its policy allows (or a refusal), and the answer
// relayed with every recognised spelling of a value swapped back to the placeholder.
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { pipeline, type Transform } from 'node:stream';
import type { ProxyContext } from './context.js';
import type { ForwardResult, ForwardTarget } from './forward.js';
import { answerHttp, endToEndHeaders } from './respond.js';
import { decoders, responseScrubber, type Scrubber } from './scrub.js';
import type { ResolvedSecret } from '../secrets/index.js';

// A run's secrets never change and a Scrubber keeps no state: its spellings are built once per
// proxy, not on every request to a secret's host.
const scrubbers = new WeakMap<ResolvedSecret[], Scrubber>();
function scrubberFor(secrets: ResolvedSecret[]): Scrubber {
  let s = scrubbers.get(secrets);
  if (!s) scrubbers.set(secrets, (s = responseScrubber(secrets)));
  return s;
}
import { injectRequest, scopedSecrets, type Refusal } from './secrets.js';
import { formatAuthority } from './target.js';

export interface UpstreamRequest {
  ok: true;
  path: string;
  headers: string[];
  /** Names of the secrets swapped in. */
  used: Set<string>;
  /** Set when the target is a secret's host: its answers are scrubbed of real values. */
  scrub?: Scrubber;
}

function hasHeader(pairs: string[], name: string): boolean {
  for (let i = 0; i < pairs.length; i += 2) if (pairs[i].toLowerCase() === name) return true;
  return false;
}

export function withoutHeader(pairs: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < pairs.length; i += 2) if (pairs[i].toLowerCase() !== name) out.push(pairs[i], pairs[i + 1]);
  return out;
}

/**
 * The upstream request line's path and headers, secrets placed where the target is in scope, or
 * a refusal when a placeholder sits where its secret may not go (see src/secrets/inject.ts).
 */
export function upstreamRequest(ctx: ProxyContext, req: IncomingMessage, t: ForwardTarget): UpstreamRequest | Refusal {
  const scoped = scopedSecrets(ctx.options.secrets, t.host, t.port, t.tls);
  const userinfo = t.userinfo ? `${t.userinfo.user}:${t.userinfo.password}` : '';
  const injected = injectRequest(scoped, t.path, endToEndHeaders(req.rawHeaders), userinfo);
  if (!injected.ok) return injected;
  let headers = injected.headers;
  // Userinfo cannot travel in an origin-form request line; clients that put it in a proxy
  // request mean HTTP Basic, which is what curl and git send themselves. It never holds a
  // secret here: injectRequest refused that.
  if (t.userinfo && !hasHeader(headers, 'authorization')) {
    headers.push('Authorization', `Basic ${Buffer.from(userinfo).toString('base64')}`);
  }
  const scrub = scoped.length > 0 ? scrubberFor(ctx.options.secrets) : undefined;
  if (scrub) {
    // A compressed answer must be decoded to be scanned: a secret's host is asked for identity.
    headers = [...withoutHeader(headers, 'accept-encoding'), 'Accept-Encoding', 'identity'];
    // A byte range of an echo is a piece of the value too short to recognise; pieces from
    // several requests would add up to it. A secret's host always sends whole answers.
    headers = withoutHeader(withoutHeader(headers, 'range'), 'if-range');
  }
  const authority = formatAuthority(t.host, t.port, t.tls ? 443 : 80);
  // Host comes from the checked target, never the client's header: on a shared server (a CDN)
  // another Host would route a secret to another tenant.
  return { ok: true, path: injected.path, headers: ['Host', authority, ...headers], used: injected.used, scrub };
}

/**
 * Streams the upstream answer into res, scrubbed when the host is a secret's: the reason phrase,
 * header names and values, and the body, decoded first when it still came compressed. A body in
 * an encoding clawpod cannot decode is refused (502), never passed unscanned.
 */
export function relayResponse(
  method: string | undefined,
  upRes: IncomingMessage,
  res: ServerResponse,
  scrub: Scrubber | undefined,
  result: ForwardResult,
): void {
  let headers = endToEndHeaders(upRes.rawHeaders);
  let reason = upRes.statusMessage || STATUS_CODES[result.status] || 'Unknown';
  // HEAD, 204 and 304 answers have no body, and their Content-Length describes another answer.
  const hasBody = method !== 'HEAD' && result.status !== 204 && result.status !== 304;
  if (!scrub) {
    res.writeHead(result.status, reason, headers);
    upRes.pipe(res);
    return;
  }
  const encoding = upRes.headers['content-encoding'] ?? 'identity';
  // node undoes only the chunked framing; any other transfer coding ("gzip, chunked") would
  // reach the scanner still compressed and pass unread.
  const te = String(upRes.headers['transfer-encoding'] ?? 'chunked')
    .trim()
    .toLowerCase();
  const decode =
    te !== 'chunked' ? `came in Transfer-Encoding ${JSON.stringify(te.slice(0, 40))}, which clawpod does not decode` : hasBody ? decoders(encoding) : [];
  if (typeof decode === 'string') {
    result.unscanned = te !== 'chunked' ? `transfer-encoding ${te.slice(0, 40)}` : String(encoding);
    result.status = 502;
    upRes.destroy();
    const body = `clawpod: the answer from a secret's host ${decode}; refused, since it cannot be scanned for the secret`;
    answerHttp(res, { status: 502, body });
    return;
  }
  ({ reason, headers } = scrub.head(reason, headers));
  if (!hasBody) {
    res.writeHead(result.status, reason, headers);
    upRes.pipe(res);
    return;
  }
  // Decoding and swapping change the length: node frames the body itself.
  headers = withoutHeader(withoutHeader(headers, 'content-length'), 'content-encoding');
  res.writeHead(result.status, reason, headers);
  const stages: Transform[] = [...decode, scrub.stream()];
  pipeline([upRes, ...stages, res], () => undefined);
}
