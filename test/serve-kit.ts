// What the `clawpod serve` tests share: the server process (the real binary, a private
// CLAWPOD_HOME, --listen 127.0.0.1:0, ready when serve.json names it), plain HTTP calls on
// loopback, and polling a run's record. CLAWPOD_BIN runs them against another build.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { BIN as BUILT, eventually, tmpDir } from './helpers.js';

export const BIN = process.env.CLAWPOD_BIN ?? BUILT;

export interface Srv {
  home: string;
  url: string;
  port: number;
  token: string;
  child: ChildProcess;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const live = new Set<Srv>();

/** For after(): whatever a failed test left running is drained (its pods stopped), then killed. */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((s) => stop(s, 'SIGTERM', 15_000)));
}

export const baseEnv = (home: string, extra: Record<string, string> = {}) => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: process.env.HOME ?? '/root',
  ...extra,
  CLAWPOD_HOME: home,
});

export function spawnServe(args: string[], home: string, env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], { env: baseEnv(home, env), cwd: home, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d) => {
    err += d;
  });
  child.stdout?.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, stderr: () => err, exited };
}

/** Starts `clawpod serve --listen 127.0.0.1:0 ARGS` and waits for serve.json and its stderr line. */
export async function serve(args: string[], home = tmpDir('home'), env: Record<string, string> = {}): Promise<Srv> {
  const p = spawnServe(['--listen', '127.0.0.1:0', ...args], home, env);
  let gone = false;
  void p.exited.then(() => {
    gone = true;
  });
  const file = path.join(home, 'serve.json');
  const ready = () => {
    if (!p.stderr().includes('clawpod: serving on ') || !fs.existsSync(file)) return false;
    return (JSON.parse(fs.readFileSync(file, 'utf8')) as { pid?: number }).pid === p.child.pid;
  };
  await eventually(() => gone || ready(), 30_000);
  if (gone || !ready()) {
    p.child.kill('SIGKILL');
    throw new Error(`serve did not start: ${p.stderr()}`);
  }
  const info = JSON.parse(fs.readFileSync(file, 'utf8')) as { url: string; pid: number };
  const token = fs.readFileSync(path.join(home, 'serve.token'), 'utf8').trim();
  const srv: Srv = { home, url: info.url, port: Number(new URL(info.url).port), token, ...p };
  live.add(srv);
  void p.exited.then(() => live.delete(srv));
  return srv;
}

export async function stop(s: Srv, sig: NodeJS.Signals = 'SIGTERM', graceMs = 60_000) {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return s.exited;
  s.child.kill(sig);
  const t = setTimeout(() => s.child.kill('SIGKILL'), graceMs);
  const r = await s.exited;
  clearTimeout(t);
  return r;
}

export interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
  json: any;
}

export interface CallOptions {
  /** A JSON body (sent as application/json). */
  body?: unknown;
  /** A body sent as it is. */
  raw?: string | Buffer;
  headers?: Record<string, string>;
  /** The bearer token; null: no Authorization header. Default: the server's. */
  token?: string | null;
}

export function call(s: Srv, method: string, p: string, o: CallOptions = {}): Promise<Res> {
  const headers: Record<string, string> = {};
  const token = o.token === undefined ? s.token : o.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body: string | Buffer | undefined = o.raw;
  if (o.body !== undefined) {
    body = JSON.stringify(o.body);
    headers['content-type'] = 'application/json';
  }
  Object.assign(headers, o.headers);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: s.port, method, path: p, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.setTimeout(60_000, () => req.destroy(new Error(`${method} ${p}: no answer in 60 s`)));
    req.end(body);
  });
}

export const exec = (workspace: string, script: string, extra: Record<string, unknown> = {}) => ({
  kind: 'exec',
  command: ['sh', '-c', script],
  workspace,
  ...extra,
});

// biome-ignore lint/suspicious/noExplicitAny: a run record as the API sends it
export async function record(s: Srv, id: string): Promise<any> {
  const r = await call(s, 'GET', `/v1/runs/${id}`);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

export const TERMINAL = ['done', 'failed', 'killed', 'timeout', 'cancelled', 'interrupted'];

/** Polls the record until its status is one of `want` (the wait is a deadline, not an assert on speed). */
// biome-ignore lint/suspicious/noExplicitAny: a run record as the API sends it
export async function waitFor(s: Srv, id: string, want: string[], ms = 60_000): Promise<any> {
  const end = Date.now() + ms;
  for (;;) {
    const rec = await record(s, id);
    if (want.includes(rec.status)) return rec;
    if (Date.now() > end) assert.fail(`run ${id} is ${rec.status}, waited for ${want.join('/')}`);
    await new Promise((r) => setTimeout(r, 40));
  }
}

export interface Ev {
  type: string;
  // biome-ignore lint/suspicious/noExplicitAny: event payloads are checked field by field
  data: any;
}

export function mkdir(p: string, mode = 0o755): string {
  fs.mkdirSync(p, { recursive: true });
  fs.chmodSync(p, mode);
  return p;
}
