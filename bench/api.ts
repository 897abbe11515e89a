// Service mode figures (DESIGN.md "Service mode"): trivial exec runs end to end through the API
// of a real `clawpod serve` (the binary, as a user starts it, on loopback with a private home),
// in the same bench run as cli_exec_true_p50_ms.
// - api_exec_true_p50_ms: one POST of `exec true`, then its event stream read until the server
//   ends it after run.end, 30 in a row; the server's defaults (warm pods on).
// - api_exec_true_cold_p50_ms: the same against a server with --warm 0, so every pod starts
//   cold as the command line's do (the like-for-like ratio to cli_exec_true_p50_ms).
// - api_runs_per_s (api_runs_cold_per_s: --warm 0): 80 runs of `true` posted at once, each on a
//   workspace of its own (so none waits for another's), at --concurrency 8: 80 over the time from
//   the first POST until none is queued or running; the mean of two rounds.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

type Put = (name: string, value: number, unit: string) => void;

interface Api {
  url: string;
  token: string;
  child: ChildProcess;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startServe(root: string, home: string, roots: string, extra: string[]): Promise<Api> {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', CLAWPOD_HOME: home };
  const args = [
    path.join(root, 'bin', 'clawpod'),
    'serve',
    '--listen',
    '127.0.0.1:0',
    '--concurrency',
    '8',
    '--queue',
    '1000',
    ...extra,
    '--workspaces',
    roots,
  ];
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  const file = path.join(home, 'serve.json');
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) break;
    try {
      const info = JSON.parse(fs.readFileSync(file, 'utf8')) as { url: string; pid: number };
      if (info.pid === child.pid) return { url: info.url, token: fs.readFileSync(path.join(home, 'serve.token'), 'utf8').trim(), child };
    } catch {
      /* not ready */
    }
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error(`clawpod serve did not start: ${stderr.trim()}`);
}

async function stopServe(api: Api): Promise<void> {
  const gone = new Promise((r) => api.child.once('exit', r));
  api.child.kill('SIGTERM');
  await gone;
}

async function post(api: Api, workspace: string): Promise<string> {
  const r = await fetch(`${api.url}/v1/runs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 'exec', command: ['true'], workspace }),
  });
  const body = (await r.json()) as { id?: string };
  if (r.status !== 202 || !body.id) throw new Error(`POST /v1/runs answered ${r.status}: ${JSON.stringify(body)}`);
  return body.id;
}

async function get<T>(api: Api, route: string): Promise<T> {
  const r = await fetch(api.url + route, { headers: { authorization: `Bearer ${api.token}` } });
  if (r.status !== 200) throw new Error(`GET ${route} answered ${r.status}`);
  return (await r.json()) as T;
}

/** POST, then the event stream until the server ends it (after run.end); the run must be done. */
async function runOnce(api: Api, workspace: string): Promise<void> {
  const id = await post(api, workspace);
  const r = await fetch(`${api.url}/v1/runs/${id}/events`, { headers: { authorization: `Bearer ${api.token}` } });
  const text = await r.text();
  if (!/^event: run\.end$/m.test(text)) throw new Error(`run ${id} ended without run.end: ${text.slice(-300)}`);
  const rec = await get<{ status: string; exitCode: number }>(api, `/v1/runs/${id}`);
  if (rec.status !== 'done' || rec.exitCode !== 0) throw new Error(`run ${id} ended ${rec.status} ${rec.exitCode}`);
}

async function runsPerSecond(api: Api, roots: string, n: number, tag: string): Promise<number> {
  const dirs = Array.from({ length: n }, (_, i) => {
    const d = path.join(roots, `${tag}-${i}`);
    fs.mkdirSync(d, { mode: 0o755 });
    return d;
  });
  const t = performance.now();
  const ids = await Promise.all(dirs.map((d) => post(api, d)));
  // Queued first, then running: a run only moves forward, so both empty means all have ended.
  for (;;) {
    const queued = (await get<{ runs: unknown[] }>(api, '/v1/runs?status=queued&limit=1000')).runs.length;
    const running = (await get<{ runs: unknown[] }>(api, '/v1/runs?status=running&limit=1000')).runs.length;
    if (queued === 0 && running === 0) break;
    await sleep(50);
  }
  const seconds = (performance.now() - t) / 1000;
  const { runs } = await get<{ runs: { id: string; status: string }[] }>(api, '/v1/runs?limit=1000');
  const done = new Set(runs.filter((r) => r.status === 'done').map((r) => r.id));
  const notDone = ids.filter((id) => !done.has(id));
  if (notDone.length > 0) throw new Error(`${notDone.length} of ${n} runs did not end done (e.g. ${notDone[0]})`);
  return n / seconds;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function apiMetrics(put: Put, root: string): Promise<void> {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'clawpod-bench-api-'));
  fs.chmodSync(scratch, 0o755);
  const roots = path.join(scratch, 'roots');
  const ws = path.join(roots, 'seq');
  fs.mkdirSync(ws, { recursive: true, mode: 0o755 });
  fs.chmodSync(roots, 0o755);
  fs.writeFileSync(path.join(ws, 'README.md'), '# bench\n');
  const servers: Api[] = [];
  try {
    // Both servers up at once, measured in alternating blocks: a change in the machine's load
    // weighs on both alike.
    for (const extra of [[], ['--warm', '0']]) servers.push(await startServe(root, fs.mkdtempSync(path.join(scratch, 'home-')), roots, extra));
    const [warm, cold] = servers;
    for (const api of servers) for (let i = 0; i < 3; i++) await runOnce(api, ws); // caches, and the pool
    const times: [number[], number[]] = [[], []];
    for (let block = 0; block < 6; block++) {
      for (const [k, api] of [warm, cold].entries()) {
        for (let i = 0; i < 5; i++) {
          const t = performance.now();
          await runOnce(api, ws);
          times[k].push(performance.now() - t);
        }
      }
    }
    put('api_exec_true_p50_ms', median(times[0]), 'ms');
    put('api_exec_true_cold_p50_ms', median(times[1]), 'ms');
    const rates: [number[], number[]] = [[], []];
    for (let round = 0; round < 2; round++) {
      for (const [k, api] of [warm, cold].entries()) rates[k].push(await runsPerSecond(api, roots, 80, `r${round}-${k}`));
    }
    put('api_runs_per_s', rates[0].reduce((a, b) => a + b) / rates[0].length, 'runs/s');
    put('api_runs_cold_per_s', rates[1].reduce((a, b) => a + b) / rates[1].length, 'runs/s');
  } finally {
    for (const api of servers) await stopServe(api);
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
