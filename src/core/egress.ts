// A run's way out: secrets read on the host (the pod gets placeholders), the run's CA, the egress
// proxy on a unix socket the pod alone can reach. Pods whose policy allows no host get none of it.
import fs from 'node:fs';
import type { Transform } from 'node:stream';
import type { Rules } from '../policy/types.js';
import type { PodEgress } from '../pod/types.js';
import type { ProxyEvent } from '../proxy/types.js';
import { makePlaceholder, MIN_SECRET_BYTES, redactor, scrubber, type ResolvedSecret } from '../secrets/index.js';
import { UserError } from './errors.js';

const SYSTEM_ROOTS = '/etc/ssl/certs/ca-certificates.crt';

export interface EgressPlan {
  needed: boolean;
  secrets: ResolvedSecret[];
  /** NAME=placeholder for the pod's environment. */
  podEnv: Record<string, string>;
  redact: (s: string) => string;
}

/** Reads every secret's source now: a missing one fails the run before anything starts. */
export function planEgress(rules: Rules, env: NodeJS.ProcessEnv, readFile: (p: string) => string): EgressPlan {
  const secrets: ResolvedSecret[] = rules.secrets.map((s) => {
    let value: string | undefined;
    if (s.from.kind === 'env') {
      value = env[s.from.ref];
      if (value === undefined || value === '') {
        throw new UserError(`secret ${s.name}: environment variable ${s.from.ref} is not set (export it, or remove the secret from the policy)`);
      }
    } else {
      try { value = readFile(s.from.ref).replace(/\r?\n$/, ''); } catch {
        throw new UserError(`secret ${s.name}: cannot read ${s.from.ref} (create the file, or fix secrets.${s.name}.from in the policy)`);
      }
      if (!value) throw new UserError(`secret ${s.name}: ${s.from.ref} is empty`);
    }
    // A value this short matches ordinary output: scrubbing it (and its encodings) everywhere
    // would mangle output, and not scrubbing would let it through.
    if (Buffer.byteLength(value) < MIN_SECRET_BYTES) {
      const n = Buffer.byteLength(value);
      throw new UserError(`secret ${s.name}: the value is ${n} bytes; clawpod needs at least ${MIN_SECRET_BYTES} to keep it out of output (use the full credential)`);
    }
    const resolved: ResolvedSecret = { name: s.name, value, placeholder: makePlaceholder(s.name), hosts: s.hosts };
    if (s.inject) resolved.inject = s.inject;
    return resolved;
  });
  return {
    needed: rules.network.allow.length > 0,
    secrets,
    podEnv: Object.fromEntries(secrets.map((s) => [s.name, s.placeholder])),
    redact: secrets.length ? redactor(secrets) : (s) => s,
  };
}

export interface RunningEgress { egress: PodEgress; close(): Promise<void> }

/** Starts the run's proxy at the backend's socket path; the CA exists only if secrets do. */
export async function startEgress(plan: EgressPlan, rules: Rules, runId: string, paths: PodEgress, onEvent: (e: ProxyEvent) => void): Promise<RunningEgress> {
  // Loaded only by runs that have network: the proxy and its X.509 library are large.
  const { createRunCA, startPodProxy } = await import('../proxy/index.js');
  const ca = plan.secrets.length ? createRunCA(runId) : undefined;
  if (ca && paths.caBundle) {
    const roots = fs.existsSync(SYSTEM_ROOTS) ? fs.readFileSync(SYSTEM_ROOTS, 'utf8') : '';
    fs.writeFileSync(paths.caBundle, `${roots}\n${ca.certPem}`, { mode: 0o644 });
  }
  fs.rmSync(paths.socketPath, { force: true });
  // Upstreams are verified against the system roots plus the policy's extra CAs.
  const system = fs.existsSync(SYSTEM_ROOTS) ? [fs.readFileSync(SYSTEM_ROOTS, 'utf8')] : [];
  const upstreamCA = [...system, ...(rules.network.extraCA ?? []).map((f) => fs.readFileSync(f, 'utf8'))];
  const proxy = await startPodProxy({ socketPath: paths.socketPath, pod: runId, network: rules.network, secrets: plan.secrets, ca, upstreamCA, onEvent });
  return {
    egress: { socketPath: paths.socketPath, caBundle: ca ? paths.caBundle : undefined },
    async close() {
      await proxy.close();
      if (paths.caBundle) fs.rmSync(paths.caBundle, { force: true });
    },
  };
}

/** Redacts a byte stream (pod output) to [secret:NAME], every recognised spelling, with a hold-back
 *  so a value split across chunks is still caught. */
export function redactingStream(secrets: ResolvedSecret[]): Transform {
  return scrubber(secrets, 'tag').stream();
}

/** Byte-exact redaction of one buffer (tool output on its way to the model, a changed file). */
export function bufferRedactor(secrets: ResolvedSecret[]): (b: Buffer) => Buffer {
  return scrubber(secrets, 'tag').buffer;
}

/** Second line of defence for diffs: a real value in the pod's change set (it could only have
 *  come back from an upstream) is replaced with [secret:NAME] before anyone reviews or applies
 *  it. Returns the paths that were scrubbed. */
export function scrubChangeSet(treeDir: string, secrets: ResolvedSecret[]): string[] {
  if (!secrets.length || !fs.existsSync(treeDir)) return [];
  const scrub = bufferRedactor(secrets);
  const scrubbed: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(`${dir}/${e.name}`, r);
      else if (e.isFile()) {
        const before = fs.readFileSync(`${dir}/${e.name}`);
        const after = scrub(before);
        if (after !== before) { fs.writeFileSync(`${dir}/${e.name}`, after); scrubbed.push(r); }
      }
    }
  };
  walk(treeDir, '');
  return scrubbed;
}
