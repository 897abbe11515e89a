// Raw policy -> Rules, done once: paths expanded and resolved through symlinks, every host path
// checked against the credential deny list, units converted. Backends see only the result.
import { posix } from 'node:path';
import { PolicyError } from './errors.js';
import { checkHostPath, isInside, type HostPathDeps } from './denylist.js';
import { formatHostPattern, parseHostPattern } from './hostpattern.js';
import type { RawPolicy } from './schema.js';
import type { MountRule, Rules, SecretRule } from './types.js';
import { parseDuration, parseSize } from './units.js';

// The deny list lives in its own module; its API is re-exported where callers always found it.
export { checkHostPath, DENIED_HOME_PATHS, DENIED_SYSTEM_PATHS, type HostPathDeps } from './denylist.js';

/** What normalization reads of the host; the deny list's inputs (home, passwd...) among them. */
export interface NormalizeDeps extends HostPathDeps {}

// Pod paths the pod's own system layout owns; a mount there would shadow or subvert it.
export const RESERVED_POD_PATHS: readonly string[] = [
  '/usr',
  '/bin',
  '/sbin',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/etc',
  '/proc',
  '/dev',
  '/sys',
  '/tmp',
  '/workspace',
  '/home',
  '/run',
  '/memory',
  '/skills',
];

/** "~", "~/x" -> under home; other paths unchanged. "~user" is not expanded (and later refused). */
export function expandHome(p: string, home: string): string {
  if (p === '~') return home;
  if (p.startsWith('~/')) return posix.join(home, p.slice(2));
  return p;
}

/** Why a pod-side mount path is unusable, or null when it is fine. */
export function podPathError(p: string): string | null {
  if (!p.startsWith('/')) return `${JSON.stringify(p)} must be an absolute path inside the pod, e.g. /data`;
  if (/[\x00-\x1f\x7f]/.test(p)) return `${JSON.stringify(p)} contains control characters`;
  if (posix.normalize(p) !== p || p.split('/').includes('..') || (p.length > 1 && p.endsWith('/'))) {
    return `${JSON.stringify(p)} must be a normalized path (no "..", ".", "//" or trailing "/")`;
  }
  if (p === '/') return '"/" cannot be a mount point (pick a directory such as /data)';
  for (const r of RESERVED_POD_PATHS) {
    if (p === r || isInside(p, r)) {
      return `${p} is reserved for the pod's own ${r} (pick another directory such as /data or /mnt/NAME)`;
    }
  }
  return null;
}

function normalizeMounts(raw: RawPolicy, fail: (where: string, msg: string) => never, deps: NormalizeDeps): MountRule[] {
  const podPaths = new Set<string>();
  return raw.filesystem.mounts.map((m, i): MountRule => {
    const where = `filesystem.mounts[${i}]`;
    const podProblem = podPathError(m.path);
    if (podProblem) fail(`${where}.path`, podProblem);
    if (podPaths.has(m.path)) fail(`${where}.path`, `${m.path} is mounted twice (each pod path may appear once)`);
    // One inside another would need its mount point made in the other's host directory (by
    // bwrap, as it sets the pod up): a change on the host no run recorded.
    for (const other of podPaths) {
      const [outer, inner] = isInside(m.path, other) ? [other, m.path] : isInside(other, m.path) ? [m.path, other] : [null, null];
      if (outer)
        fail(
          `${where}.path`,
          `${inner} is inside ${outer}, another mount (mounts may not nest): give it a path of its own, e.g. /mnt/${posix.basename(inner as string)}`,
        );
    }
    podPaths.add(m.path);
    const expanded = expandHome(m.host, deps.home);
    if (!expanded.startsWith('/')) {
      fail(`${where}.host`, `${JSON.stringify(m.host)} must be an absolute path or start with ~/`);
    }
    let real: string;
    try {
      real = deps.realpath(expanded);
    } catch {
      const shown = expanded === m.host ? m.host : `${m.host} (${expanded})`;
      fail(`${where}.host`, `${shown} does not exist (create it, or remove this mount)`);
    }
    const denied = checkHostPath(real, deps);
    if (denied) fail(`${where}.host`, denied);
    return { host: real, path: m.path, mode: m.mode };
  });
}

function normalizeSecrets(raw: RawPolicy, fail: (where: string, msg: string) => never, home: string): SecretRule[] {
  return raw.secrets.map((s, i): SecretRule => {
    const colon = s.from.indexOf(':');
    const kind = s.from.slice(0, colon) === 'env' ? 'env' : 'file';
    let ref = s.from.slice(colon + 1);
    if (kind === 'file') {
      // Only the path is fixed here; the file is read by the host proxy when it needs the value.
      ref = expandHome(ref, home);
      if (!ref.startsWith('/')) fail(`secrets[${i}].from`, `file path ${JSON.stringify(ref)} must be absolute or start with ~/`);
      ref = posix.normalize(ref);
    }
    return { name: s.name, from: { kind, ref }, hosts: s.hosts.map(canonicalPattern), ...(s.inject ? { inject: { ...s.inject } } : {}) };
  });
}

function canonicalPattern(p: string): string {
  return formatHostPattern(parseHostPattern(p));
}

/** Turn a validated policy into the Rules backends and the proxy consume. */
export function normalizePolicy(raw: RawPolicy, source: string, deps: NormalizeDeps): Rules {
  const fail = (where: string, msg: string): never => {
    throw new PolicyError(`policy ${source}: ${where}: ${msg}`);
  };
  const r = raw.resources;
  const hosts: Record<string, string> = {};
  for (const [name, ip] of Object.entries(raw.network.hosts)) hosts[name.toLowerCase()] = ip;
  return {
    resources: {
      cpus: r.cpus,
      memoryBytes: parseSize(r.memory),
      pids: r.pids,
      timeoutMs: parseDuration(r.timeout),
      diskBytes: parseSize(r.disk),
    },
    workspace: raw.filesystem.workspace,
    ...(raw.filesystem.workspaceAt === 'host' ? { workspaceAt: 'host' as const } : {}),
    ...(raw.filesystem.ignore?.length ? { ignore: [...raw.filesystem.ignore] } : {}),
    mounts: normalizeMounts(raw, fail, deps),
    network: {
      allow: raw.network.allow.map(canonicalPattern),
      deny: raw.network.deny.map(canonicalPattern),
      hosts,
      extraCA: raw.network.extraCA.map((f, i) => {
        try {
          return deps.realpath(expandHome(f, deps.home));
        } catch {
          return fail(`network.extraCA[${i}]`, `${f} does not exist (give the path of a PEM certificate file)`);
        }
      }),
    },
    secrets: normalizeSecrets(raw, fail, deps.home),
    env: { ...raw.env },
    tools: copyTools(raw.tools),
    ...copySettings(raw.settings),
    source,
  };
}

function copySettings(s: RawPolicy['settings']): Pick<Rules, 'settings'> {
  const copy = (v: 'inherit' | Record<string, string> | undefined) => (v === undefined || v === 'inherit' ? v : { ...v });
  if (s === undefined || (s.git === undefined && s.npm === undefined)) return {};
  return { settings: { ...(s.git !== undefined ? { git: copy(s.git) } : {}), ...(s.npm !== undefined ? { npm: copy(s.npm) } : {}) } };
}

function copyTools(t: RawPolicy['tools']): Rules['tools'] {
  const out: Rules['tools'] = {};
  if (t.allow) out.allow = [...t.allow];
  if (t.deny) out.deny = [...t.deny];
  if (t.approve) out.approve = [...t.approve];
  return out;
}
