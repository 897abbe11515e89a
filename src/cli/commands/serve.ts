// `clawpod serve`: the API, the dashboard, the queue and the schedules, on loopback by default.
import type { Context } from '../../core/context.js';
import { UserError } from '../../core/errors.js';
import { parseCommand, type Command } from '../args.js';

export const SERVE: Command = {
  name: 'serve',
  usage: '[--listen HOST:PORT] [--concurrency N] [--queue N] [--warm N] [--workspaces DIR...]',
  summary:
    'Serve the API and the dashboard: runs from a browser, a script or a schedule, each in its own fresh pod.\nEvery route but /v1/health needs the bearer token in $CLAWPOD_HOME/serve.token (made at first start).',
  options: {
    listen: { type: 'string', arg: 'HOST:PORT', desc: 'where to listen (default 127.0.0.1:7420; port 0 picks a free one)' },
    concurrency: { type: 'string', arg: 'N', desc: 'pods running at once (default 4)' },
    queue: { type: 'string', arg: 'N', desc: 'runs waiting at most; past it, 429 with Retry-After (default 100)' },
    warm: { type: 'string', arg: 'N', desc: 'prepared pods kept ready per common policy shape (default 2; 0: none)' },
    workspaces: {
      type: 'string',
      arg: 'DIR',
      multiple: true,
      desc: 'the only directories (and what is under them) API clients may name as workspaces (repeatable; default: the current directory)',
    },
    'drain-timeout': { type: 'string', arg: 'SECONDS', desc: 'on SIGTERM, how long running runs may go on before they are stopped (default 30)' },
  },
  notes: [
    'The server writes $CLAWPOD_HOME/serve.json ({"url", "pid"}, mode 0600) when it is ready and prints the dashboard link (the token rides in its #fragment, never sent to the server). SIGTERM or Ctrl-C drains: no new runs, running ones finish or are stopped at the deadline (their work kept), queued ones start at the next start; exit 0.',
  ],
  exits: [
    ['0', 'stopped by SIGTERM/SIGINT after draining'],
    ['125', 'it could not start (address in use, a workspace root that does not exist)'],
  ],
  examples: ['clawpod serve --workspaces ~/projects', 'clawpod serve --listen 127.0.0.1:0 --concurrency 8 --workspaces /srv/a /srv/b'],
};

function count(v: unknown, name: string, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UserError(`--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return n;
}

export function parseListen(v: string | undefined): { host: string; port: number } {
  if (v === undefined) return { host: '127.0.0.1', port: 7420 };
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(v);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) throw new UserError(`--listen must be HOST:PORT (e.g. 127.0.0.1:7420, [::1]:0), got ${JSON.stringify(v)}`);
  return { host: m[1] ?? m[2], port };
}

export async function cmdServe(ctx: Context, args: string[]): Promise<number> {
  const { values, positionals } = parseCommand(SERVE, args);
  const { host, port } = parseListen(values.listen as string | undefined);
  const concurrency = count(values.concurrency, 'concurrency', 4, 1, 256);
  const maxQueued = count(values.queue, 'queue', 100, 0, 100_000);
  const warm = count(values.warm, 'warm', 2, 0, 64);
  const drainS = count(values['drain-timeout'], 'drain-timeout', 30, 0, 86_400);
  const workspaces = [...((values.workspaces as string[] | undefined) ?? []), ...positionals];
  if (workspaces.length === 0) workspaces.push(process.cwd());
  const { startServer } = await import('../../server/serve.js');
  // What runs load lazily is loaded now: a long-lived server must not depend on the files of a
  // checkout that may be rebuilt (or upgraded) under it.
  await Promise.all([import('../../policy/load.js'), import('../../core/run.js'), import('../../proxy/index.js'), import('../../core/runs.js')]);
  const { makeScheduler } = await import('../../server/wire.js');
  const log = (line: string) => process.stderr.write(`${line}\n`);
  if (host !== '127.0.0.1' && host !== '::1' && host !== 'localhost') {
    log(`clawpod: listening on ${host}, not loopback: anyone who can reach it and has the token can run pods (put it behind TLS)`);
  }
  const server = await startServer(ctx, {
    host,
    port,
    concurrency,
    maxQueued,
    warm,
    workspaces,
    log,
    schedules: (q, roots) => makeScheduler(ctx, q, roots, log),
  });
  log(`clawpod: serving on ${server.url}`);
  log(`clawpod: dashboard ${server.url}/#token=${server.token}`);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) return;
      stopping = true;
      log(`clawpod: ${sig}: draining (no new runs; running ones have ${drainS}s)`);
      server.drain(drainS * 1000).then(resolve, (e) => {
        log(`clawpod: drain failed: ${(e as Error).message}`);
        resolve();
      });
    };
    // Kept for the whole drain: a second signal must not fall back to Node's default (death
    // by signal, serve.json left behind, runs closed only by the next reap).
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  log('clawpod: stopped');
  return 0;
}
