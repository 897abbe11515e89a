// Checking a run before anything of it exists: the policy (a file, or the built-in strict one),
// the flags that narrow it, the workspace, the backend's guards, the secrets and the settings.
// Everything a user can get wrong fails here, with nothing to clean up.
import fs from 'node:fs';
import path from 'node:path';
import { checkHostPath, normalizePolicy } from '../policy/normalize.js';
import { isBuiltinStrict, precomputedStrict } from '../policy/strict.js';
import type { Rules } from '../policy/types.js';
import { checkGuards } from '../pod/guards.js';
import { workspaceAtRefusal } from '../pod/workspace-at.js';
import type { Context } from './context.js';
import { planEgress } from './egress.js';
import { UserError } from './errors.js';
import type { Prepared } from './lifecycle.js';
import { narrowRules, type Narrowing } from './narrow.js';
import { policyDeps } from './policy-deps.js';
import { resolveSettings } from './settings.js';

/** What prepare() needs from any face. */
/** A policy given as a parsed document (a server's API request), checked exactly as a file is. */
export interface InlinePolicy {
  inline: unknown;
  /** How messages and Rules.source name it. */
  name: string;
}

export interface PrepareOptions {
  policy?: string | InlinePolicy;
  workspace?: string;
  backend?: string;
  allowDegraded: boolean;
  cwd: string;
  /** --at-host-path: mount the workspace at its own host path (filesystem.workspaceAt: host). */
  atHostPath?: boolean;
  /** Flags that narrow the policy for this run (never widen it). */
  narrow?: Narrowing;
  /** A server's queued run (store status 'queued'): the run takes this id, and starts only if it
   *  is still queued (claimQueued), so a cancelled or already started one never runs. */
  queuedId?: string;
  /** Rules a face has already resolved and checked (a server's start-time check): used as they
   *  are, so what was checked is what runs (the policy file is not read again). */
  rules?: Rules;
  /** The workspace's real path as the face checked it: a path that now resolves elsewhere (a
   *  component swapped for a symlink) is refused; the pod layer pins what is mounted to it. */
  expectWorkspace?: string;
}

/** Policy file (or the built-in strict one) -> Rules. zod and yaml load only for a file. */
export async function resolveRules(ctx: Context, policy: string | InlinePolicy | undefined): Promise<Rules> {
  if (typeof policy === 'object') {
    const raw = (await import('../policy/load.js')).validate(policy.inline, policy.name);
    return normalizePolicy(raw, policy.name, policyDeps(ctx));
  }
  const strict = isBuiltinStrict(policy) ? precomputedStrict() : undefined;
  const raw = strict ?? (await import('../policy/load.js')).loadPolicy(policy, { readFile: (p) => fs.readFileSync(p, 'utf8'), env: ctx.env });
  const source = policy && policy !== 'strict' ? path.resolve(policy) : 'builtin:strict';
  return normalizePolicy(raw, source, policyDeps(ctx));
}

/** The workspace directory, resolved and checked with the same deny rule as mounts. */
export function resolveWorkspace(ctx: Context, rules: Rules, dir: string | undefined, cwd: string): string | null {
  if (rules.workspace === 'none') return null;
  const given = path.resolve(cwd, dir ?? '.');
  let real: string;
  let isDir: boolean;
  // The path can change under us at any point: every failure here is the user's one-line error.
  // (What is finally mounted is pinned by identity in the pod layer, see pinSources.)
  try {
    real = fs.realpathSync(given);
    isDir = fs.statSync(real).isDirectory();
  } catch {
    throw new UserError(`workspace ${given} does not exist (pass an existing directory to --workspace)`);
  }
  if (!isDir) throw new UserError(`workspace ${given} is not a directory (pass a directory to --workspace)`);
  const notAtHost = workspaceAtRefusal(rules, real);
  if (notAtHost) throw new UserError(notAtHost);
  const denied = checkHostPath(real, policyDeps(ctx));
  if (denied) throw new UserError(`workspace ${real}: ${denied}`);
  return real;
}

/** Everything a user can get wrong is checked here, before any run record or directory exists. */
export async function prepare(ctx: Context, opts: PrepareOptions): Promise<Prepared> {
  const rules = opts.rules ? structuredClone(opts.rules) : await resolveRules(ctx, opts.policy);
  if (opts.atHostPath) rules.workspaceAt = 'host';
  const narrowed = opts.narrow ? narrowRules(rules, opts.narrow) : {};
  const workspace = resolveWorkspace(ctx, rules, opts.workspace, opts.cwd);
  if (opts.expectWorkspace !== undefined && workspace !== null && workspace !== opts.expectWorkspace) {
    throw new UserError(`workspace ${opts.expectWorkspace} changed since it was checked (it now resolves to ${workspace}); submit the run again`);
  }
  const backend = ctx.backend(opts.backend);
  const degraded = checkGuards(backend.probe(rules), rules, opts.allowDegraded);
  const plan = planEgress(rules, ctx.env, (p) => fs.readFileSync(p, 'utf8'));
  const settings = resolveSettings(rules, plan.redact, { home: ctx.home, env: ctx.env, readFile: (p) => fs.readFileSync(p, 'utf8') });
  return { rules, workspace, backend, degraded, plan, settings, narrowed, ...(opts.queuedId ? { queuedId: opts.queuedId } : {}) };
}
