// `clawpod policy explain`: what normalized rules grant, in plain words, one fact per line.
// It reads Rules (not YAML) so it describes exactly what the backends will enforce.
import { matchHost, parseHostPattern } from './hostpattern.js';
import type { Rules, SecretRule } from './types.js';
import { formatBytes, formatDuration } from './units.js';

const WORKSPACE_TEXT: Record<Rules['workspace'], string> = {
  overlay: 'Workspace: copy-on-write overlay of the workspace at /workspace; changes are kept as a diff you apply or discard',
  ro: 'Workspace: the workspace is mounted read-only at /workspace; the pod cannot change it',
  rw: 'Workspace: the workspace is mounted read-write at /workspace; changes go straight to your files, with no diff to review and no disk cap',
  none: 'Workspace: not mounted; the pod sees none of your files',
};

function describePattern(p: string): string {
  const parsed = parseHostPattern(p);
  const ports = parsed.port === undefined ? 'ports 80, 443' : `port ${parsed.port}`;
  const what = parsed.kind === 'wildcard' ? `any subdomain of ${parsed.host}` : p.replace(/:\d+$/, '');
  return `${what} (${ports})`;
}

function networkLines(rules: Rules): string[] {
  const { allow, deny, hosts } = rules.network;
  if (allow.length === 0) return ['Network: none (no network at all)'];
  let line = `Network: only through the clawpod egress proxy to: ${allow.map(describePattern).join(', ')}`;
  if (deny.length > 0) line += `; denied: ${deny.map(describePattern).join(', ')}`;
  const lines = [line];
  const overrides = Object.entries(hosts);
  if (overrides.length > 0) {
    lines.push(`Name overrides: ${overrides.map(([n, ip]) => `${n} -> ${ip}`).join(', ')} (used by the proxy's resolver)`);
  }
  return lines;
}

/**
 * Whether the proxy would ever let a request reach this secret host. Only exact and IP hosts
 * can be checked against the allow/deny lists; a wildcard is reported as reachable if the same
 * wildcard is allowed.
 */
export function secretHostReachable(host: string, rules: Rules): boolean {
  const p = parseHostPattern(host);
  const { allow, deny } = rules.network;
  if (p.kind === 'wildcard') return allow.includes(host) && !deny.includes(host);
  const ports = p.port === undefined ? [443, 80] : [p.port];
  const name = p.kind === 'ip' && p.host.includes(':') ? `[${p.host}]` : p.host;
  return ports.some((port) => allow.some((a) => matchHost(a, name, port)) && !deny.some((d) => matchHost(d, name, port)));
}

function secretLine(s: SecretRule, rules: Rules): string {
  const from = s.from.kind === 'env' ? `env ${s.from.ref}` : `file ${s.from.ref}`;
  const where = s.inject?.header
    ? `as the ${s.inject.header} header (${s.inject.format ?? '{}'}), set by the proxy itself`
    : 'into credential header values (Authorization, X-Api-Key, ...) where the pod puts its placeholder';
  const query = s.inject?.query ? ` and the ${s.inject.query} query parameter` : '';
  let line = `Secrets: ${s.name} (from ${from}) is injected by the host proxy only on requests to ${s.hosts.join(', ')}, ${where}${query}; the pod sees a placeholder`;
  const unreachable = s.hosts.filter((h) => !secretHostReachable(h, rules));
  if (unreachable.length > 0) {
    line += ` (note: ${unreachable.join(', ')} not allowed by network.allow, so it is never sent there)`;
  }
  return line;
}

function toolsLine(tools: Rules['tools']): string {
  const parts: string[] = [];
  parts.push(tools.allow ? `allowed: ${listOrNone(tools.allow)}` : 'all agent tools allowed');
  if (tools.deny?.length) parts.push(`denied: ${tools.deny.join(', ')}`);
  if (tools.approve?.length) parts.push(`need your approval: ${tools.approve.join(', ')}`);
  return `Tools: ${parts.join('; ')}`;
}

function settingsLine(s: Rules['settings']): string {
  const part = (tool: string, v: 'inherit' | Record<string, string> | undefined, inherit: string) =>
    v === undefined ? null : v === 'inherit' ? `${tool}: ${inherit}` : `${tool}: ${listOrNone(Object.keys(v))}`;
  const parts = [
    part(
      'git',
      s?.git,
      'your global identity and everyday options (user.name, user.email, init.defaultBranch...; never credential, url, http, include or program settings)',
    ),
    part('npm', s?.npm, 'your ~/.npmrc without auth, proxy, program and path keys'),
  ].filter(Boolean);
  return parts.length === 0
    ? 'Settings: none of yours (git commits as "clawpod pod <pod@clawpod.invalid>")'
    : `Settings: ${parts.join('; ')} (the pod can read them; values holding a secret are refused)`;
}

function ignoreLine(patterns: string[] | undefined): string {
  const extra = patterns?.length ? ` and by filesystem.ignore (${patterns.map((p) => JSON.stringify(p)).join(', ')})` : '';
  return (
    `Ignored changes: paths named by the workspace's .gitignore files as they are when the run starts${extra} ` +
    'are kept apart from review (counted, one audit event), applied only with runs apply --include-ignored; ' +
    'a .gitignore the pod writes hides nothing, and files that run code (.envrc, .vscode/, hooks...) are always reviewed'
  );
}

function listOrNone(xs: string[]): string {
  return xs.length === 0 ? 'none' : xs.join(', ');
}

function limitsLine(r: Rules['resources']): string {
  const cpus = `${r.cpus} CPU${r.cpus > 1 ? 's' : ''}`;
  const procs = `${r.pids} process${r.pids === 1 ? '' : 'es'}`;
  return `Limits: ${cpus}, ${formatBytes(r.memoryBytes)} memory, ${procs}, ${formatDuration(r.timeoutMs)} wall clock, ${formatBytes(r.diskBytes)} disk`;
}

/** Plain-words lines saying what a pod under these rules can read, write, reach and use. */
export function explainPolicy(rules: Rules): string[] {
  const lines: string[] = [`Policy: ${rules.source}`];
  lines.push(`Reads: a read-only system (/usr), its own /tmp and home (${formatBytes(rules.resources.diskBytes)} total writable)`);
  lines.push(WORKSPACE_TEXT[rules.workspace]);
  if (rules.workspaceAt === 'host' && rules.workspace !== 'none') {
    lines.push(
      'Workspace path: at its own host path (not /workspace), which is also the working directory: absolute paths the pod records (symlinks, git worktrees, venvs) still lead there after apply',
    );
  }
  if (rules.workspace === 'overlay') lines.push(ignoreLine(rules.ignore));
  if (rules.mounts.length === 0) lines.push('Mounts: none (no other host files)');
  for (const m of rules.mounts) {
    const mode = m.mode === 'ro' ? 'ro, read-only' : 'rw, read-write: the pod can change these host files, outside the disk cap';
    lines.push(`Mount: ${m.host} at ${m.path} (${mode})`);
  }
  lines.push(...networkLines(rules));
  if (rules.secrets.length === 0) lines.push('Secrets: none');
  for (const s of rules.secrets) lines.push(secretLine(s, rules));
  const envNames = Object.keys(rules.env);
  lines.push(envNames.length === 0 ? 'Environment: no extra variables' : `Environment: ${envNames.join(', ')} (plain values the pod can read)`);
  lines.push(settingsLine(rules.settings));
  lines.push(toolsLine(rules.tools));
  lines.push(limitsLine(rules.resources));
  lines.push(
    "Credentials: none of yours (~/.ssh, ~/.aws, cloud and Docker configs, the container sockets and clawpod's own state can never be mounted; the model API key stays on the host)",
  );
  return lines;
}

/** `policy explain --json`: the rules as data, field names stable (EXPLAIN_JSON_VERSION). Secrets
 *  show where they come from and where they go, never a value; env and settings show names only. */
export interface ExplainJson {
  version: 1;
  source: string;
  resources: Rules['resources'];
  workspace: { mode: Rules['workspace']; at: '/workspace' | 'host'; ignore: string[] };
  mounts: Array<{ host: string; path: string; mode: 'ro' | 'rw' }>;
  network: { allow: string[]; deny: string[]; hosts: Record<string, string>; extraCA: string[] };
  secrets: Array<{ name: string; from: string; hosts: string[]; inject: SecretRule['inject'] | null; unreachableHosts: string[] }>;
  env: string[];
  settings: { git: 'inherit' | string[] | null; npm: 'inherit' | string[] | null };
  tools: { allow: string[] | null; deny: string[]; approve: string[] };
}

export function explainPolicyJson(rules: Rules): ExplainJson {
  const keys = (v: 'inherit' | Record<string, string> | undefined) => (v === undefined ? null : v === 'inherit' ? 'inherit' : Object.keys(v));
  return {
    version: 1,
    source: rules.source,
    resources: { ...rules.resources },
    workspace: { mode: rules.workspace, at: rules.workspaceAt === 'host' ? 'host' : '/workspace', ignore: [...(rules.ignore ?? [])] },
    mounts: rules.mounts.map((m) => ({ host: m.host, path: m.path, mode: m.mode })),
    network: { allow: [...rules.network.allow], deny: [...rules.network.deny], hosts: { ...rules.network.hosts }, extraCA: [...(rules.network.extraCA ?? [])] },
    secrets: rules.secrets.map((s) => ({
      name: s.name,
      from: `${s.from.kind}:${s.from.ref}`,
      hosts: [...s.hosts],
      inject: s.inject ? { ...s.inject } : null,
      unreachableHosts: s.hosts.filter((h) => !secretHostReachable(h, rules)),
    })),
    env: Object.keys(rules.env),
    settings: { git: keys(rules.settings?.git), npm: keys(rules.settings?.npm) },
    tools: { allow: rules.tools.allow ? [...rules.tools.allow] : null, deny: [...(rules.tools.deny ?? [])], approve: [...(rules.tools.approve ?? [])] },
  };
}
