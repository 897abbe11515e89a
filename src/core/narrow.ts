// Command-line flags that narrow a policy for one run (--timeout, --memory, --cpus, --pids,
// --disk, -e NAME=VALUE). A flag can only tighten a cap: asking for more than the policy grants
// is one line naming the policy key to raise instead. Variables are plain values; a flag can
// never set a secret's name, a proxy or CA variable, or anything the policy itself may not set.
import { parseDuration, parseSize, formatBytes, formatDuration } from '../policy/units.js';
import type { Rules } from '../policy/types.js';
import { UserError } from './errors.js';

export interface Narrowing {
  timeout?: string;
  memory?: string;
  cpus?: string;
  pids?: string;
  disk?: string;
  /** NAME=VALUE, as given to -e. */
  env?: string[];
}

/** Variables clawpod sets itself in every pod that talks to the network through its proxy. */
const CLAWPOD_SET = new Set([
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'ALL_PROXY',
  'NO_PROXY',
  'http_proxy',
  'https_proxy',
  'all_proxy',
  'no_proxy',
  'SSL_CERT_FILE',
  'NODE_EXTRA_CA_CERTS',
  'REQUESTS_CA_BUNDLE',
  'CURL_CA_BUNDLE',
  'GIT_SSL_CAINFO',
  'HOME',
  'PWD',
]);
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LOADER = new Set(['LD_PRELOAD', 'LD_LIBRARY_PATH', 'LD_AUDIT']);

function refuseWider(flag: string, asked: string, granted: string, key: string): never {
  throw new UserError(`--${flag} ${asked} is more than the policy grants (${granted}); flags only narrow: raise ${key} in the policy instead`);
}

/** Applies the flags to `rules` in place; returns what was narrowed, for the audit's run.start. */
export function narrowRules(rules: Rules, n: Narrowing): Record<string, unknown> {
  const r = rules.resources;
  const done: Record<string, unknown> = {};
  if (n.memory !== undefined) {
    let b: number;
    try {
      b = parseSize(n.memory);
    } catch {
      throw new UserError(`--memory takes a size such as 256Mi (got ${JSON.stringify(n.memory)}); a named agent memory is --memory-name NAME`);
    }
    if (b < 4 * 1024 * 1024) throw new UserError(`--memory must be at least 4Mi (got ${JSON.stringify(n.memory)})`);
    if (b > r.memoryBytes) refuseWider('memory', n.memory, formatBytes(r.memoryBytes), 'resources.memory');
    r.memoryBytes = b;
    done.memoryBytes = b;
  }
  if (n.disk !== undefined) {
    let b: number;
    try {
      b = parseSize(n.disk);
    } catch {
      throw new UserError(`--disk takes a size such as 512Mi (got ${JSON.stringify(n.disk)})`);
    }
    if (b < 1024 * 1024) throw new UserError(`--disk must be at least 1Mi (got ${JSON.stringify(n.disk)})`);
    if (b > r.diskBytes) refuseWider('disk', n.disk, formatBytes(r.diskBytes), 'resources.disk');
    r.diskBytes = b;
    done.diskBytes = b;
  }
  if (n.timeout !== undefined) {
    let ms: number;
    try {
      ms = parseDuration(n.timeout);
    } catch {
      throw new UserError(`--timeout takes a duration such as 30s or 5m (got ${JSON.stringify(n.timeout)})`);
    }
    if (ms < 1000) throw new UserError(`--timeout must be at least 1s (got ${JSON.stringify(n.timeout)})`);
    if (ms > r.timeoutMs) refuseWider('timeout', n.timeout, formatDuration(r.timeoutMs), 'resources.timeout');
    r.timeoutMs = ms;
    done.timeoutMs = ms;
  }
  if (n.cpus !== undefined) {
    const c = Number(n.cpus);
    if (!Number.isFinite(c) || c <= 0) throw new UserError(`--cpus takes a number of cores such as 1 or 0.5 (got ${JSON.stringify(n.cpus)})`);
    if (c > r.cpus) refuseWider('cpus', n.cpus, String(r.cpus), 'resources.cpus');
    r.cpus = c;
    done.cpus = c;
  }
  if (n.pids !== undefined) {
    const p = Number(n.pids);
    if (!Number.isInteger(p) || p < 1) throw new UserError(`--pids takes a whole number of processes such as 64 (got ${JSON.stringify(n.pids)})`);
    if (p > r.pids) refuseWider('pids', n.pids, String(r.pids), 'resources.pids');
    r.pids = p;
    done.pids = p;
  }
  const secretNames = new Set(rules.secrets.map((s) => s.name));
  const names: string[] = [];
  for (const kv of n.env ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UserError(`-e takes NAME=VALUE (got ${JSON.stringify(kv)}), e.g. -e NODE_ENV=test`);
    const name = kv.slice(0, eq);
    if (!ENV_NAME.test(name)) throw new UserError(`-e ${JSON.stringify(name)} is not a variable name (letters, digits and _, not starting with a digit)`);
    if (name.startsWith('CLAWPOD_')) throw new UserError(`-e ${name}: CLAWPOD_* is reserved for clawpod itself`);
    if (LOADER.has(name)) throw new UserError(`-e ${name} cannot be set (it would load code into every process)`);
    if (secretNames.has(name)) throw new UserError(`-e ${name} is a secret of this policy: the pod gets its placeholder, and a flag cannot replace it`);
    if (CLAWPOD_SET.has(name))
      throw new UserError(`-e ${name} is set by clawpod itself (the pod's proxy, CA and home); allow hosts with network.allow instead`);
    rules.env[name] = kv.slice(eq + 1);
    names.push(name);
  }
  if (names.length) done.env = names;
  return done;
}
