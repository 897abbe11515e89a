// `clawpod exec --server`: the same command, run by the `clawpod serve` of this CLAWPOD_HOME. The
// run is queued there, its output and notices stream back over the run's event stream, and the
// exit code is the run's. Options that only a local pod has are refused with the reason.
import fs from 'node:fs';
import path from 'node:path';
import type { Context } from '../core/context.js';
import { UserError } from '../core/errors.js';
import { safeText } from '../core/terminal.js';

const LOCAL_ONLY = ['tty', 'rm', 'env', 'timeout', 'memory', 'cpus', 'pids', 'disk', 'backend', 'allow-degraded', 'at-host-path'];

interface ServeFile {
  url: string;
  pid: number;
}

function serverOf(ctx: Context): { url: string; token: string } {
  const file = path.join(ctx.clawpodHome, 'serve.json');
  let s: ServeFile;
  try {
    s = JSON.parse(fs.readFileSync(file, 'utf8')) as ServeFile;
  } catch {
    throw new UserError(`no clawpod server is running for ${ctx.clawpodHome} (no serve.json: start one with clawpod serve, or drop --server)`);
  }
  if (typeof s.url !== 'string' || !/^http:\/\/(127\.0\.0\.1|localhost|\[::1\]):\d+$/.test(s.url)) {
    throw new UserError(`${file} does not name a loopback server (remove it and restart clawpod serve)`);
  }
  // The token goes only to the server that wrote the file: a dead server's port may be anyone's.
  if (!serverAlive(s.pid)) throw new UserError(`the clawpod serve that wrote ${file} (pid ${String(s.pid)}) is not running: start it again with clawpod serve`);
  let token: string;
  try {
    token = fs.readFileSync(path.join(ctx.clawpodHome, 'serve.token'), 'utf8').trim();
  } catch {
    throw new UserError(`cannot read ${path.join(ctx.clawpodHome, 'serve.token')} (run as the user who started clawpod serve)`);
  }
  return { url: s.url, token };
}

/** The pid is a live `clawpod ... serve` process (its command line says so). */
function serverAlive(pid: unknown): boolean {
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.some((a) => a.endsWith('clawpod') || a.endsWith('clawpod.mjs')) && argv.includes('serve');
  } catch {
    return false;
  }
}

async function call(url: string, token: string, method: string, route: string, body?: unknown): Promise<Response> {
  try {
    return await fetch(`${url}${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    const code = (e as { cause?: { code?: string } }).cause?.code;
    throw new UserError(`clawpod serve at ${url} is not answering (${code ?? (e as Error).message}): start it with clawpod serve, or drop --server`);
  }
}

async function errorOf(r: Response): Promise<string> {
  try {
    const j = (await r.json()) as { error?: { message?: string } };
    return j.error?.message ?? `HTTP ${r.status}`;
  } catch {
    return `HTTP ${r.status}`;
  }
}

export async function execRemote(ctx: Context, values: Record<string, unknown>, command: string[]): Promise<number> {
  const local = LOCAL_ONLY.filter((k) => values[k] !== undefined && values[k] !== false);
  if (local.length) throw new UserError(`--${local[0]} is not available with --server (the server's policy decides; drop it, or run without --server)`);
  if (command.length === 0) throw new UserError('no command given (usage: clawpod exec --server -- CMD [ARG...])');
  const { url, token } = serverOf(ctx);
  const workspace = path.resolve(process.cwd(), (values.workspace as string | undefined) ?? '.');
  const policy =
    values.policy === undefined
      ? undefined
      : /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(String(values.policy)) && !String(values.policy).includes('.')
        ? String(values.policy)
        : path.resolve(String(values.policy));
  const r = await call(url, token, 'POST', '/v1/runs', { kind: 'exec', command, workspace, ...(policy ? { policy } : {}) });
  if (r.status !== 202) throw new UserError(`the server refused the run: ${await errorOf(r)}`);
  const { id: given } = (await r.json()) as { id: unknown };
  if (typeof given !== 'string' || !/^r-\d{8}-\d{6}-[0-9a-f]{6}$/.test(given)) throw new UserError(`the server at ${url} answered with no run id`);
  const id = given;
  process.stderr.write(`clawpod: run ${id} (on ${url})\n`);
  let cancelled = false;
  const onInt = () => {
    if (cancelled) process.exit(130);
    cancelled = true;
    process.stderr.write(`clawpod: cancelling run ${id} (Ctrl-C again to stop waiting)\n`);
    void call(url, token, 'POST', `/v1/runs/${id}/cancel`).catch(() => undefined);
  };
  process.on('SIGINT', onInt);
  let end: { exitCode?: number | null; status?: string; filesChanged?: number } | null = null;
  try {
    const ev = await call(url, token, 'GET', `/v1/runs/${id}/events`);
    if (!ev.ok || !ev.body) throw new UserError(`cannot follow run ${id}: ${await errorOf(ev)}`);
    let buf = '';
    const decoder = new TextDecoder();
    for await (const chunk of ev.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let i = buf.indexOf('\n\n');
      while (i >= 0) {
        const frame = buf.slice(0, i);
        buf = buf.slice(i + 2);
        i = buf.indexOf('\n\n');
        const type = /^event: (.*)$/m.exec(frame)?.[1];
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        if (!type || data === undefined) continue;
        const d = JSON.parse(data) as Record<string, unknown>;
        // The pod's output is its own bytes, as a local exec relays them; clawpod's lines are escaped.
        if (type === 'output') {
          const bytes = typeof d.b64 === 'string' ? Buffer.from(d.b64, 'base64') : Buffer.from(String(d.text ?? ''));
          (d.stream === 'stderr' ? process.stderr : process.stdout).write(bytes);
        } else if (type === 'notice') process.stderr.write(`${safeText(String(d.line))}\n`);
        else if (type === 'run.end') end = (d as { data: typeof end }).data;
        else if (type === 'status' && (d.status === 'failed' || d.status === 'cancelled')) {
          process.stderr.write(`clawpod: run ${id} ${d.status}${d.error ? `: ${safeText(String(d.error))}` : ''}\n`);
          return d.status === 'cancelled' ? 130 : 125;
        }
      }
    }
  } finally {
    process.off('SIGINT', onInt);
  }
  // The pod had the screen: modes it left on (concealed text, a hidden cursor, mouse reporting,
  // bracketed paste) are turned off before clawpod's own lines, as a local exec does.
  if (process.stdout.isTTY) process.stdout.write('\x1b[0m\x1b[?25h\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?2004l');
  const fin = end as { exitCode?: number | null; status?: string; filesChanged?: number } | null;
  if (!fin) throw new UserError(`the server's event stream for run ${id} ended before the run did (see clawpod runs show ${id})`);
  if (typeof fin.filesChanged === 'number' && fin.filesChanged > 0)
    process.stderr.write(`clawpod: ${fin.filesChanged} change(s) waiting: clawpod runs diff ${id} (then apply or discard)\n`);
  if (values.json) process.stderr.write(`${JSON.stringify({ run: id, server: url, ...fin })}\n`);
  return typeof fin.exitCode === 'number' ? fin.exitCode : 125;
}
