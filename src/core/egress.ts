// A run's way out: secrets read on the host (the pod gets placeholders), the run's CA, the egress
// proxy on a unix socket the pod alone can reach. Pods whose policy allows no host get none of it.
import fs from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import type { Rules } from '../policy/types.js';
import type { PodEgress } from '../pod/types.js';
import { makePlaceholder, redactor } from '../proxy/secrets.js';
import type { ProxyEvent, ResolvedSecret } from '../proxy/types.js';
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
    return { name: s.name, value, placeholder: makePlaceholder(s.name), hosts: s.hosts };
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

/** Secret values as latin1 text, a 1:1 view of their UTF-8 bytes, so byte data (binary output,
 *  files) is matched and passed through unchanged. */
function latin1Values(secrets: ResolvedSecret[]) {
  const values = secrets.map((s) => ({ bytes: Buffer.from(s.value, 'utf8').toString('latin1'), tag: `[secret:${s.name}]` }));
  return {
    longest: Math.max(1, ...values.map((v) => v.bytes.length)),
    redact: (t: string) => values.reduce((acc, v) => acc.split(v.bytes).join(v.tag), t),
  };
}

/** Redacts a byte stream (pod output) with a hold-back, so a value split across chunks is still caught. */
export function redactingStream(secrets: ResolvedSecret[]): Transform {
  const { longest, redact } = latin1Values(secrets);
  let held = '';
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      // Complete values are replaced first; a value cut off by the chunk's end starts within
      // the last (longest - 1) bytes, which stay back until the next chunk completes it.
      const text = redact(held + chunk.toString('latin1'));
      const cut = Math.max(0, text.length - (longest - 1));
      held = text.slice(cut);
      cb(null, Buffer.from(text.slice(0, cut), 'latin1'));
    },
    flush(cb: TransformCallback) { cb(null, Buffer.from(redact(held), 'latin1')); },
  });
}

/** Byte-exact redaction of one buffer (tool output on its way to the model, a changed file). */
export function bufferRedactor(secrets: ResolvedSecret[]): (b: Buffer) => Buffer {
  if (!secrets.length) return (b) => b;
  const { redact } = latin1Values(secrets);
  return (b) => {
    const text = b.toString('latin1');
    const out = redact(text);
    return out === text ? b : Buffer.from(out, 'latin1');
  };
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
