// One proxy instance's state and its two decisions that need the world: resolving a target to
// checked addresses, and recording events. Everything here is per instance (no module state),
// so one pod's proxy can never see or disturb another's.
import { promises as dns } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { networkInterfaces } from 'node:os';
import { rootCertificates, type SecureContext } from 'node:tls';
import { coalescer } from './coalesce.js';
import { decide, guardAddresses } from './decide.js';
import { LEAF_CACHE } from './ca.js';
import { Lru } from './lru.js';
import { oneLine } from './respond.js';
import { redactor } from './secrets.js';
import { DEFAULT_MAX_CONNECTIONS, DEFAULT_TIMEOUTS, type PodProxyOptions, type ProxyEvent, type ProxyTimeouts } from './types.js';

export type Resolution = { ok: true; addresses: string[] } | { ok: false; status: 403 | 502; reason: string };

export interface ProxyContext {
  readonly options: PodProxyOptions;
  readonly timeouts: ProxyTimeouts;
  readonly httpAgent: http.Agent;
  readonly httpsAgent: https.Agent;
  /** TLS server contexts for terminated tunnels, one per host, the most recent LEAF_CACHE. */
  readonly serverContexts: Lru<string, SecureContext>;
  readonly redact: (s: string) => string;
  readonly maxConnections: number;
  emit(type: ProxyEvent['type'], data: Record<string, unknown>): void;
  /** Sends the counts of coalesced refusals still pending (when the proxy closes). */
  flushEvents(): void;
  resolveTarget(host: string, port: number): Promise<Resolution>;
}

async function lookupAll(host: string): Promise<string[]> {
  const found = await dns.lookup(host, { all: true });
  return found.map((a) => a.address);
}

function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

/**
 * A lookup that answers only with addresses already checked, so the name is never resolved
 * twice. It answers on a later tick, as dns.lookup does: answered synchronously inside
 * http.request, a connect that fails at once (ENETUNREACH) emits 'error' on a socket nobody
 * listens to yet, and that would take the whole process down.
 */
export function fixedLookup(addresses: string[]): LookupFunction {
  const list = addresses.map((address) => ({ address, family: isIP(address) }));
  return (_host, opts, cb) => {
    process.nextTick(() => {
      if (opts.all) cb(null, list);
      else cb(null, list[0].address, list[0].family);
    });
  };
}

export function errorText(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    return code && !e.message.includes(code) ? `${code}: ${e.message}` : e.message;
  }
  return String(e);
}

interface ResolveDeps {
  network: PodProxyOptions['network'];
  resolve: (host: string) => Promise<string[]>;
  localAddresses: () => string[];
  redact: (s: string) => string;
}

/** decide, then (for names) resolve once and keep only the addresses guardAddresses accepts. */
async function resolveChecked(deps: ResolveDeps, host: string, port: number): Promise<Resolution> {
  const d = decide(host, port, deps.network);
  if (!d.allow) return { ok: false, status: 403, reason: d.reason };
  if (d.addresses) return { ok: true, addresses: d.addresses };
  let found: unknown;
  try {
    found = await deps.resolve(host);
  } catch (e) {
    // Not a policy refusal: the name is allowed but the world did not answer.
    return { ok: false, status: 502, reason: oneLine(deps.redact(`cannot resolve ${host}: ${errorText(e)}`)) };
  }
  const addresses = Array.isArray(found) ? found.filter((a): a is string => typeof a === 'string') : [];
  const g = guardAddresses(host, port, addresses, deps.network, deps.localAddresses());
  if (!g.allow) return { ok: false, status: 403, reason: g.reason };
  if (!g.addresses?.length) return { ok: false, status: 403, reason: `${host} has no address to dial` };
  return { ok: true, addresses: g.addresses };
}

export function createContext(o: PodProxyOptions): ProxyContext {
  const redact = redactor(o.secrets);
  const resolveDeps: ResolveDeps = {
    network: o.network,
    resolve: o.resolve ?? lookupAll,
    localAddresses: o.localAddresses ?? interfaceAddresses,
    redact,
  };
  const extraCA = o.upstreamCA ?? [];
  const maxConnections = o.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  const sink = (type: ProxyEvent['type'], data: Record<string, unknown>): void => {
    try {
      o.onEvent({ type, data });
    } catch {
      // A failing sink must not take the proxy (and every pod request) down with it.
    }
  };
  const events = coalescer(sink);
  // Pools never hold more upstream sockets than the pod may hold connections (each connection
  // carries one request at a time), and idle ones go after the idle timeout.
  const pool = { keepAlive: true, maxTotalSockets: maxConnections, maxFreeSockets: 16, timeout: o.timeouts?.idleMs ?? DEFAULT_TIMEOUTS.idleMs };
  return {
    options: o,
    timeouts: { ...DEFAULT_TIMEOUTS, ...o.timeouts },
    // Keep-alive pools: per instance, keyed by host name and port, holding only connections
    // made to addresses this instance checked.
    httpAgent: new http.Agent(pool),
    httpsAgent: new https.Agent({ ...pool, ca: extraCA.length > 0 ? [...rootCertificates, ...extraCA] : undefined }),
    serverContexts: new Lru(LEAF_CACHE),
    redact,
    maxConnections,
    emit(type, data) {
      // Second line of defence: whatever a caller put in, no real secret value leaves here.
      const clean: Record<string, unknown> = { pod: o.pod };
      for (const [k, v] of Object.entries(data)) clean[k] = typeof v === 'string' ? redact(v) : v;
      events.emit(type, clean);
    },
    flushEvents: () => events.close(),
    async resolveTarget(host, port) {
      try {
        return await resolveChecked(resolveDeps, host, port);
      } catch (e) {
        // Fail closed: a policy check that throws denies.
        return { ok: false, status: 403, reason: oneLine(redact(`policy check failed: ${errorText(e)}`)) };
      }
    },
  };
}
