// The routes of `clawpod serve` (DESIGN.md "Service mode"): each is a few lines over the same core
// functions the command line calls. Every error is {"error": {"status", "message"}}.
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { Context } from '../core/context.js';
import { decisionsPath } from '../core/decisions.js';
import type { RunDetails } from '../core/run-info.js';
import { logsDocument } from '../core/run-logs.js';
import * as runs from '../core/runs.js';
import { explainPolicy } from '../policy/explain.js';
import type { RunRecord, RunStatus } from '../store/runs.js';
import { RUN_STATUSES } from '../store/runs.js';
import { isUserCaused } from '../util/errors.js';
import { packageRoot } from '../util/root.js';
import { streamEvents } from './events.js';
import type { Feeds } from './feed.js';
import { ApiError, readJson, SECURITY_HEADERS, sendJson, sendText } from './http.js';
import type { RunQueue } from './queue.js';
import { parseRunRequest, resolveRequest, under } from './requests.js';

/** What the schedule routes need (server/schedules.ts's Scheduler). */
export interface ScheduleRoutes {
  list(): unknown[];
  create(body: unknown): Promise<unknown>;
  remove(id: string): boolean;
}

export interface ApiDeps {
  ctx: Context;
  queue: RunQueue;
  feeds: Feeds;
  roots: string[];
  schedules?: ScheduleRoutes;
  /** Where the dashboard's files are (src/server/dashboard). */
  dashboardDir?: string;
}

/** List prices in USD per million tokens (input, output), by model family; others: no cost. */
const PRICES: [RegExp, number, number][] = [
  [/^claude-opus-4-[5-9]/, 5, 25],
  [/^claude-opus/, 15, 75],
  [/^claude-sonnet/, 3, 15],
  [/^claude-haiku-4/, 1, 5],
  [/^claude-3-5-haiku/, 0.8, 4],
  [/^gpt-4o-mini/, 0.15, 0.6],
  [/^gpt-4o/, 2.5, 10],
];

export function costUsd(model: string | null | undefined, usage: { inputTokens: number; outputTokens: number } | null | undefined): number | null {
  if (!model || !usage) return null;
  const name = model.replace(/^(anthropic|openai):/, '');
  const p = PRICES.find(([re]) => re.test(name));
  if (!p) return null;
  return Math.round(((usage.inputTokens * p[1] + usage.outputTokens * p[2]) / 1e6) * 1e6) / 1e6;
}

/** An ended run's details come from its audit log, which no longer changes: they are read once
 *  per state of its row (a listing polled by the dashboard would read every log each time). */
const ENDED_DETAILS = new Map<string, Record<string, unknown>>();
const ENDED_DETAILS_MAX = 2000;

function record(ctx: Context, r: RunRecord): Record<string, unknown> {
  const ended = r.status !== 'queued' && r.status !== 'running';
  // The decision log's size too: a partial apply from the command line adds a decision and may
  // leave the run pending.
  const decided = ended ? (fs.statSync(decisionsPath(ctx), { throwIfNoEntry: false })?.size ?? 0) : 0;
  const key = ended ? JSON.stringify([ctx.clawpodHome, r.id, r.status, r.diffState, r.endedAt, r.filesChanged, r.summary?.auditHead ?? null, decided]) : '';
  const hit = ended ? ENDED_DETAILS.get(key) : undefined;
  if (hit) return hit;
  // The fields of `runs show --json` (its change stats too), plus the cost.
  const d = runs.runShowJson(ctx, r.id) as unknown as RunDetails & { request?: unknown };
  const { request: _request, ...rest } = d;
  const out = { ...rest, costUsd: costUsd(d.agent?.model, d.agent?.usage) };
  if (ended) {
    if (ENDED_DETAILS.size >= ENDED_DETAILS_MAX) ENDED_DETAILS.delete(ENDED_DETAILS.keys().next().value as string);
    ENDED_DETAILS.set(key, out);
  }
  return out;
}

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const ASSET_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

function serveAsset(res: ServerResponse, dir: string, name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new ApiError(404, `no asset ${name}`);
  const type = ASSET_TYPES[path.extname(name)];
  if (!type) throw new ApiError(404, `no asset ${name}`);
  let body: Buffer;
  try {
    body = fs.readFileSync(path.join(dir, name));
  } catch {
    throw new ApiError(404, `no asset ${name}`);
  }
  sendText(res, 200, type, body, { 'content-security-policy': CSP, 'x-frame-options': 'DENY' });
}

/** Maps a core error about a run's state (already applied, still running...) to 409. */
function conflict<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (isUserCaused(e)) throw new ApiError(409, e.message);
    throw e;
  }
}

/** The runs an API client may see and decide about: the server's own, and runs whose workspace
 *  is under the roots (the owner's local runs elsewhere are not the API's business). */
function visible(r: RunRecord, roots: string[], seen = new Map<string, boolean>()): boolean {
  if (r.request) return true;
  if (!r.workspace) return false;
  // A listing asks about many runs of few workspaces: each path is resolved once per request.
  let ok = seen.get(r.workspace);
  if (ok === undefined) {
    let ws: string | null = null;
    try {
      ws = fs.realpathSync(r.workspace);
    } catch {
      /* gone: not visible */
    }
    ok = ws !== null && roots.some((root) => under(ws, root));
    seen.set(r.workspace, ok);
  }
  return ok;
}

function getRun(ctx: Context, id: string, roots: string[]): RunRecord {
  // Exact ids only: an API client names what it was given.
  if (!/^r-\d{8}-\d{6}-[0-9a-f]{6}$/.test(id)) throw new ApiError(404, `no run ${id}`);
  const r = ctx.store().getRun(id);
  if (!r || r.id !== id || !visible(r, roots)) throw new ApiError(404, `no run ${id}`);
  return r;
}

/** The diff as `runs diff` renders it, streamed with backpressure (a change set can be as large
 *  as the pod's disk cap). */
async function streamDiff(ctx: Context, id: string, res: ServerResponse): Promise<void> {
  const chunks = conflict(() => runs.runDiffChunks(ctx, id, {}));
  let first: IteratorResult<string>;
  try {
    first = chunks.next();
  } catch (e) {
    if (isUserCaused(e)) throw new ApiError(409, e.message);
    throw e;
  }
  res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/x-diff; charset=utf-8' });
  try {
    for (let c = first; !c.done; c = chunks.next()) {
      if (res.destroyed) return;
      if (!res.write(c.value)) await new Promise((r) => res.once('drain', r).once('close', r));
    }
  } catch {
    res.destroy();
    return;
  }
  res.end();
}

export async function route(d: ApiDeps, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const { ctx } = d;
  const method = req.method ?? 'GET';
  const parts = url.pathname.split('/').filter(Boolean);
  const is = (m: string, n: number) => method === m && parts.length === n;

  if (parts[0] !== 'v1') {
    const dir = d.dashboardDir ?? path.join(packageRoot(), 'src', 'server', 'dashboard');
    if (method === 'GET' && parts.length === 0) return serveAsset(res, dir, 'index.html');
    if (method === 'GET' && parts[0] === 'assets' && parts.length === 2) return serveAsset(res, dir, parts[1]);
    throw new ApiError(404, `no route ${method} ${url.pathname}`);
  }
  const [, what, id, sub, sub2] = parts;

  if (what === 'runs') {
    if (is('POST', 2)) {
      const body = parseRunRequest(await readJson(req));
      const resolved = await resolveRequest(ctx, body, d.roots);
      const rec = d.queue.submit(resolved);
      const now = ctx.store().getRun(rec.id);
      return sendJson(res, 202, { id: rec.id, status: now?.status ?? rec.status }, { location: `/v1/runs/${rec.id}` });
    }
    if (is('GET', 2)) {
      const limitText = url.searchParams.get('limit');
      const limit = limitText === null ? 50 : Number(limitText);
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000)
        throw new ApiError(400, `limit must be an integer from 1 to 1000, got ${JSON.stringify(limitText)}`);
      const status = url.searchParams.get('status');
      if (status !== null && !RUN_STATUSES.includes(status as RunStatus)) throw new ApiError(400, `status must be one of ${RUN_STATUSES.join(', ')}`);
      const all = ctx.store().listRuns({ limit: 10_000 });
      const seen = new Map<string, boolean>();
      const picked = all.filter((r) => (!status || r.status === status) && visible(r, d.roots, seen)).slice(0, limit);
      return sendJson(res, 200, { runs: picked.map((r) => record(ctx, r)) });
    }
    if (!id) throw new ApiError(404, `no route ${method} ${url.pathname}`);
    const run = getRun(ctx, id, d.roots);
    if (is('GET', 3)) return sendJson(res, 200, record(ctx, run));
    if (is('GET', 4) && sub === 'events') return streamEvents(ctx, d.feeds, run.id, req, res);
    if (is('GET', 4) && sub === 'diff') return streamDiff(ctx, run.id, res);
    if (is('GET', 4) && sub === 'logs') return sendJson(res, 200, logsDocument(run, []));
    if (is('GET', 4) && sub === 'audit') {
      const file = run.auditPath;
      if (!file || !fs.existsSync(file)) throw new ApiError(404, `run ${run.id} has no audit log (it never started)`);
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'application/x-ndjson' });
      fs.createReadStream(file)
        .on('error', () => res.destroy())
        .pipe(res);
      return;
    }
    if (is('GET', 5) && sub === 'audit' && sub2 === 'verify') {
      const v = runs.auditVerifyReport(ctx, run.id, false).runs[0];
      // Nothing to verify is not "verified": a run that never started has no chain.
      if (v.note) return sendJson(res, 200, { ok: false, events: 0, head: null, error: `run ${run.id} has no audit log: it ${v.note}` });
      return sendJson(res, 200, { ok: v.ok, events: v.events ?? 0, head: v.head ?? null, ...(v.error ? { error: v.error } : {}) });
    }
    if (is('POST', 4) && sub === 'apply') {
      const text = conflict(() => runs.runApply(ctx, run.id, false));
      return sendJson(res, 200, { id: run.id, diffState: ctx.store().getRun(run.id)?.diffState, message: text.trim() });
    }
    if (is('POST', 4) && sub === 'discard') {
      const text = conflict(() => runs.runDiscard(ctx, run.id));
      return sendJson(res, 200, { id: run.id, diffState: ctx.store().getRun(run.id)?.diffState, message: text.trim() });
    }
    if (is('POST', 4) && sub === 'cancel') {
      const r = d.queue.cancel(run.id);
      if (!r) throw new ApiError(409, `run ${run.id} is ${run.status}: only a queued or running run can be cancelled`);
      return sendJson(res, 200, { id: run.id, status: r === 'cancelled' ? 'cancelled' : 'running', cancelling: r === 'stopping' });
    }
    throw new ApiError(404, `no route ${method} ${url.pathname}`);
  }

  if (what === 'policy' && id === 'explain' && is('POST', 3)) {
    const body = (await readJson(req)) as { policy?: unknown };
    const probe = parseRunRequest({
      kind: 'exec',
      command: ['true'],
      ...(body && typeof body === 'object' && 'policy' in body ? { policy: body.policy } : {}),
    });
    const resolved = await resolveRequest(ctx, probe, d.roots);
    return sendJson(res, 200, { source: resolved.rules.source, lines: explainPolicy(resolved.rules) });
  }

  if (what === 'schedules') {
    if (!d.schedules) throw new ApiError(404, 'schedules are not available on this server');
    if (is('GET', 2)) return sendJson(res, 200, { schedules: d.schedules.list() });
    if (is('POST', 2)) return sendJson(res, 201, await d.schedules.create(await readJson(req)));
    if (is('DELETE', 3) && id) {
      if (!d.schedules.remove(id)) throw new ApiError(404, `no schedule ${id}`);
      return sendJson(res, 200, { id, deleted: true });
    }
  }
  throw new ApiError(404, `no route ${method} ${url.pathname}`);
}
