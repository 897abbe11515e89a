// One proxy instance's state and its two decisions that need the world: resolving a target to
// checked addresses, and recording events. Everything here is per instance (no module state),
// so one pod's proxy can never see or disturb another's.
import { promises as dns } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { networkInterfaces } from 'node:os';
import { rootCertificates, type SecureContext } from 'node:tls';
import { decide, guardAddresses } from './decide.js';
import { oneLine } from './respond.js';
import { redactor } from './secrets.js';
import { DEFAULT_TIMEOUTS, type PodProxyOptions, type ProxyEvent, type ProxyTimeouts } from './types.js';

export type Resolution = { ok: true; addresses: string[] } | { ok: false; status: 403 | 502; reason: string };

export interface ProxyContext {
  readonly options: PodProxyOptions;
  readonly timeouts: ProxyTimeouts;
  readonly httpAgent: http.Agent;
  readonly httpsAgent: https.Agent;
  /** TLS server contexts for terminated tunnels, one per host. */
  readonly serverContexts: Map<string, SecureContext>;
  readonly redact: (s: string) => string;
  emit(type: ProxyEvent['type'], data: Record<string, unknown>): void;
  resolveTarget(host: string, port: number): Promise<Resolution>;
}

async function lookupAll(host: string): Promise<string[]> {
  const found = await dns.lookup(host, { all: true });
  return found.map((a) => a.address);
}

function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

/** A lookup that answers only with addresses already checked, so the name is never resolved twice. */
export function fixedLookup(addresses: string[]): LookupFunction {
  const list = addresses.map((address) => ({ address, family: isIP(address) }));
  return (_host, opts, cb) => {
    if (opts.all) cb(null, list);
    else cb(null, list[0].address, list[0].family);
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
  return {
    options: o,
    timeouts: { ...DEFAULT_TIMEOUTS, ...o.timeouts },
    // Keep-alive pools: per instance, keyed by host name and port, holding only connections
    // made to addresses this instance checked.
    httpAgent: new http.Agent({ keepAlive: true }),
    httpsAgent: new https.Agent({ keepAlive: true, ca: extraCA.length > 0 ? [...rootCertificates, ...extraCA] : undefined }),
    serverContexts: new Map(),
    redact,
    emit(type, data) {
      // Second line of defence: whatever a caller put in, no real secret value leaves here.
      const clean: Record<string, unknown> = { pod: o.pod };
      for (const [k, v] of Object.entries(data)) clean[k] = typeof v === 'string' ? redact(v) : v;
      try {
        o.onEvent({ type, data: clean });
      } catch {
        // A failing sink must not take the proxy (and every pod request) down with it.
      }
    },
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
