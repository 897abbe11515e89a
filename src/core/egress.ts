// A run's way out: secrets read on the host (the pod gets placeholders), the run's CA, the egress
// proxy on a unix socket the pod alone can reach. Pods whose policy allows no host get none of it.
import fs from 'node:fs';
import path from 'node:path';
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
      try {
        value = readFile(s.from.ref).replace(/\r?\n$/, '');
      } catch {
        throw new UserError(`secret ${s.name}: cannot read ${s.from.ref} (create the file, or fix secrets.${s.name}.from in the policy)`);
      }
      if (!value) throw new UserError(`secret ${s.name}: ${s.from.ref} is empty`);
    }
    // A value this short matches ordinary output: scrubbing it (and its encodings) everywhere
    // would mangle output, and not scrubbing would let it through.
    if (Buffer.byteLength(value) < MIN_SECRET_BYTES) {
      const n = Buffer.byteLength(value);
      throw new UserError(
        `secret ${s.name}: the value is ${n} bytes; clawpod needs at least ${MIN_SECRET_BYTES} to keep it out of output (use the full credential)`,
      );
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

export interface RunningEgress {
  egress: PodEgress;
  close(): Promise<void>;
}

/** What the pod is given of its run's egress (the backend's paths): the proxy's socket, and the
 *  CA bundle only when the run has secrets (the proxy then makes its CA). Known before the proxy
 *  starts, so the pod can be started first (see OpenRun.open). */
export function podEgress(plan: EgressPlan, paths: PodEgress): PodEgress {
  return { socketPath: paths.socketPath, caBundle: plan.secrets.length ? paths.caBundle : undefined };
}

/** Starts the run's proxy at the pod's socket path (podEgress), reachable by podUid alone (the
 *  socket is chowned to it, mode 0600; null: the pod runs as clawpod's own user). */
export async function startEgress(
  plan: EgressPlan,
  rules: Rules,
  runId: string,
  paths: PodEgress,
  podUid: number | null,
  onEvent: (e: ProxyEvent) => void,
): Promise<RunningEgress> {
  // Loaded only by runs that have network: the proxy and its X.509 library are large.
  const { createRunCA, startPodProxy } = await import('../proxy/index.js');
  const ca = paths.caBundle ? createRunCA(runId) : undefined;
  let proxy: Awaited<ReturnType<typeof startPodProxy>>;
  // A start that fails leaves neither its CA bundle nor its socket (the pod's reap may be gone).
  try {
    if (ca && paths.caBundle) {
      const roots = fs.existsSync(SYSTEM_ROOTS) ? fs.readFileSync(SYSTEM_ROOTS, 'utf8') : '';
      fs.writeFileSync(paths.caBundle, `${roots}\n${ca.certPem}`, { mode: 0o644 });
    }
    fs.rmSync(paths.socketPath, { force: true });
    // Upstreams are verified against the system roots plus the policy's extra CAs.
    const system = fs.existsSync(SYSTEM_ROOTS) ? [fs.readFileSync(SYSTEM_ROOTS, 'utf8')] : [];
    const upstreamCA = [
      ...system,
      ...(rules.network.extraCA ?? []).map((f, i) => {
        try {
          return fs.readFileSync(f, 'utf8');
        } catch (e) {
          throw new UserError(
            `network.extraCA[${i}]: cannot read ${f} (${(e as NodeJS.ErrnoException).code ?? 'error'}); give the path of a PEM certificate file`,
          );
        }
      }),
    ];
    // The proxy's socket is the pod's alone (0600, the pod's uid): no other local user reaches its
    // egress or secrets.
    const socketOwner = podUid === null ? undefined : { uid: podUid, gid: podUid };
    proxy = await startPodProxy({
      socketPath: paths.socketPath,
      pod: runId,
      network: rules.network,
      secrets: plan.secrets,
      ca,
      upstreamCA,
      onEvent,
      socketOwner,
    });
  } catch (e) {
    if (paths.caBundle) fs.rmSync(paths.caBundle, { force: true });
    fs.rmSync(paths.socketPath, { force: true });
    throw e;
  }
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
  const engine = scrubber(secrets, 'tag');
  const scrubbed: string[] = [];
  // Iterative, and file by file in bounded chunks: a change set may hold deep trees and files
  // as large as the pod's disk cap, none of which clawpod may hold in memory whole.
  const todo: string[] = [''];
  while (todo.length) {
    const rel = todo.pop() as string;
    for (const e of fs.readdirSync(path.join(treeDir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) todo.push(r);
      else if (e.isFile() && scrubFile(path.join(treeDir, r), engine)) scrubbed.push(r);
    }
  }
  return scrubbed;
}

/** Rewrites FILE through the engine when it holds a value (a first pass only reads; the second
 *  writes a temp file beside it, same mode, renamed over it); returns whether it did. Both pass
 *  over the file in 1 MiB chunks. Holes read as zeros: a scrubbed sparse file is written dense. */
function scrubFile(file: string, engine: ReturnType<typeof scrubber>): boolean {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  const tmp = `${file}.clawpod-scrub`;
  let out: number | null = null;
  try {
    const holds = passOver(fd, engine.incremental(), null);
    if (!holds) return false;
    out = fs.openSync(tmp, 'wx', fs.fstatSync(fd).mode & 0o777);
    passOver(fd, engine.incremental(), out);
    fs.closeSync(out);
    out = null;
    fs.renameSync(tmp, file);
    return true;
  } finally {
    fs.closeSync(fd);
    if (out !== null) {
      fs.closeSync(out);
      fs.rmSync(tmp, { force: true });
    }
  }
}

/** One pass of the scrubber over fd; writes its output to `out` when given. Without `out` it
 *  stops at the first value found. Returns whether any value was found. */
function passOver(fd: number, inc: ReturnType<ReturnType<typeof scrubber>['incremental']>, out: number | null): boolean {
  const CHUNK = 1 << 20;
  const buf = Buffer.alloc(CHUNK);
  for (let pos = 0; ; ) {
    const n = fs.readSync(fd, buf, 0, CHUNK, pos);
    pos += n;
    const chunk = n > 0 ? inc.write(buf.subarray(0, n)) : inc.end();
    if (out !== null && chunk.length) fs.writeSync(out, chunk);
    if (out === null && inc.replaced > 0) return true;
    if (n === 0) return inc.replaced > 0;
  }
}
