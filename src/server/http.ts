// The HTTP edge of `clawpod serve`: the bearer token, the Host and Origin checks (no DNS rebinding,
// no cross-site requests), bodies read with a cap, and every error as
// {"error": {"status": N, "message": "one line"}}.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { ClawpodError } from '../util/errors.js';

/** An answer other than 2xx, with its one-line message. */
export class ApiError extends ClawpodError {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const MAX_BODY_BYTES = 1 << 20;

/** The token in $CLAWPOD_HOME/serve.token (0600), made at first start. */
export function loadOrMakeToken(clawpodHome: string): string {
  const file = path.join(clawpodHome, 'serve.token');
  fs.mkdirSync(clawpodHome, { recursive: true, mode: 0o700 });
  try {
    const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    const token = randomBytes(32).toString('hex');
    fs.writeSync(fd, `${token}\n`);
    fs.closeSync(fd);
    return token;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || (st.mode & 0o077) !== 0 || st.uid !== process.getuid?.()) {
      throw new ClawpodError(`${file} must be a regular file of yours with mode 0600 (chmod 600 it, or remove it to make a new token)`);
    }
    const token = fs.readFileSync(fd, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/.test(token)) throw new ClawpodError(`${file} does not hold a clawpod token (remove it to make a new one)`);
    return token;
  } finally {
    fs.closeSync(fd);
  }
}

/** Constant-time check of `Authorization: Bearer TOKEN`. */
export function authorized(req: IncomingMessage, token: string): boolean {
  const h = req.headers.authorization;
  if (typeof h !== 'string' || !h.startsWith('Bearer ')) return false;
  const given = Buffer.from(h.slice(7).trim());
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

/** The Host values this server answers to: its own address and port (and localhost forms of it
 *  when it listens on loopback). A rebinding name pointing at 127.0.0.1 carries its own name. */
export function allowedHosts(host: string, port: number): Set<string> {
  const names = new Set([host.includes(':') ? `[${host}]` : host]);
  const wildcard = host === '0.0.0.0' || host === '::';
  if (wildcard || host === '127.0.0.1' || host === '::1' || host === 'localhost') for (const n of ['127.0.0.1', 'localhost', '[::1]']) names.add(n);
  // Listening on every address: the host's own addresses (literals only: a DNS name pointing
  // here is what a rebinding attack uses).
  if (wildcard) {
    for (const list of Object.values(os.networkInterfaces()))
      for (const a of list ?? []) names.add(a.family === 'IPv6' ? `[${a.address.split('%')[0]}]` : a.address);
  }
  return new Set([...names].map((n) => `${n}:${port}`));
}

/** Host must be ours; an Origin (a browser's request) must be our own origin. */
export function checkOrigin(req: IncomingMessage, hosts: Set<string>): void {
  const host = req.headers.host;
  if (typeof host !== 'string' || !hosts.has(host.toLowerCase())) {
    throw new ApiError(421, `unexpected Host header ${JSON.stringify(host ?? '')} (use ${[...hosts][0]})`);
  }
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== 'null' && ![...hosts].some((h) => origin.toLowerCase() === `http://${h}`)) {
    throw new ApiError(403, `cross-origin request from ${JSON.stringify(origin)} refused`);
  }
  if (origin === 'null') throw new ApiError(403, 'cross-origin request from an opaque origin refused');
  // A form posted from another site has no Origin in some old browsers, but says where it came
  // from in Sec-Fetch-Site: only same-origin (or none: curl, scripts) is accepted.
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') throw new ApiError(403, `cross-site request (${site}) refused`);
}

/** The body as JSON, at most MAX_BODY_BYTES, sent as application/json. */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  const type = String(req.headers['content-type'] ?? '')
    .split(';')[0]
    .trim()
    .toLowerCase();
  if (type !== 'application/json') throw new ApiError(415, 'send the body as JSON with Content-Type: application/json');
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) throw new ApiError(413, `the body is over ${MAX_BODY_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY_BYTES) throw new ApiError(413, `the body is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(c);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ApiError(400, 'the body is not valid JSON');
  }
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
};

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

export function sendError(res: ServerResponse, e: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (e instanceof ApiError) return sendJson(res, e.status, { error: { status: e.status, message: e.message } }, e.headers);
  if (e instanceof ClawpodError) return sendJson(res, 400, { error: { status: 400, message: e.message } });
  const msg = (e as Error)?.message ?? String(e);
  sendJson(res, 500, { error: { status: 500, message: `internal error: ${msg.replace(/\s*\n\s*/g, ' ')}` } });
}

export { SECURITY_HEADERS };
