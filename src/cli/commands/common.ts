// Options exec and run share: where the policy and workspace come from, and the flags that
// narrow the policy for one run (never widen it: see core/narrow.ts).
import type { Opt } from '../args.js';
import type { Narrowing } from '../../core/narrow.js';

export const POD_OPTIONS: Record<string, Opt> = {
  policy: { type: 'string', short: 'p', arg: 'FILE', desc: 'policy file (default: the built-in strict policy)' },
  workspace: { type: 'string', short: 'w', arg: 'DIR', desc: 'the project the pod works on (default: the current directory)' },
  'at-host-path': { type: 'boolean', desc: 'mount the workspace at its own host path instead of /workspace' },
  backend: { type: 'string', arg: 'NAME', desc: 'isolation backend (default: bwrap)' },
  'allow-degraded': { type: 'boolean', desc: 'start even when a cap cannot be enforced on this host (recorded as guard.degraded)' },
  timeout: { type: 'string', arg: 'DURATION', desc: "wall-clock cap for this run, e.g. 30s (at most the policy's resources.timeout)" },
  memory: { type: 'string', short: 'm', arg: 'SIZE', desc: "memory cap, e.g. 256Mi (at most the policy's resources.memory)" },
  cpus: { type: 'string', arg: 'N', desc: 'CPU quota in cores, e.g. 0.5 (at most resources.cpus)' },
  pids: { type: 'string', arg: 'N', desc: 'most processes and threads at once (at most resources.pids)' },
  disk: { type: 'string', arg: 'SIZE', desc: 'size of the writable space, e.g. 256Mi (at most resources.disk)' },
  env: { type: 'string', short: 'e', arg: 'NAME=VALUE', multiple: true, desc: 'a plain variable for the pod (repeatable; never a secret)' },
  rm: { type: 'boolean', desc: "drop the run's record when it changed nothing" },
};

export const POD_ENV: [string, string][] = [
  ['CLAWPOD_STAGE', "tmpfs: keep the pod's writable space in memory instead of a disk image"],
  ['CLAWPOD_DEBUG', 'set to anything: print a stack trace for an internal error'],
];

export function narrowingOf(v: Record<string, unknown>): Narrowing {
  const s = (k: string) => (v[k] === undefined ? undefined : String(v[k]));
  return { timeout: s('timeout'), memory: s('memory'), cpus: s('cpus'), pids: s('pids'), disk: s('disk'), env: (v.env as string[] | undefined) ?? [] };
}
