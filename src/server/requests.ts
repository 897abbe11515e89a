// What an API client may ask for, checked before anything is queued: the body's shape (zod, one
// line per problem), the workspace (only under the roots `serve` was given), and the policy (by
// built-in name, by name from $CLAWPOD_HOME/policies, by path under a root, or inline, checked
// exactly as a policy file is). A request that passes here is what the queue keeps and starts.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Context } from '../core/context.js';
import { type InlinePolicy, resolveRules, resolveWorkspace } from '../core/prepare.js';
import { isUserCaused } from '../util/errors.js';
import type { Rules } from '../policy/types.js';
import { ApiError } from './http.js';

const policyField = z.union([z.string().min(1).max(4096), z.record(z.string(), z.unknown())]).optional();
const workspaceField = z.string().min(1).max(4096).optional();

export const execRequestSchema = z
  .object({
    kind: z.literal('exec'),
    command: z
      .array(z.string().max(128 * 1024))
      .min(1)
      .max(4096),
    workspace: workspaceField,
    policy: policyField,
  })
  .strict();

export const taskRequestSchema = z
  .object({
    kind: z.literal('task'),
    task: z
      .string()
      .min(1)
      .max(256 * 1024),
    workspace: workspaceField,
    policy: policyField,
    model: z.string().min(1).max(200).optional(),
    memory: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/)
      .optional(),
  })
  .strict();

export const runRequestSchema = z.discriminatedUnion('kind', [execRequestSchema, taskRequestSchema]);
export type RunRequest = z.infer<typeof runRequestSchema>;

/** The first problem of a body as one line: where, what, and what a right one looks like. */
export function issueLine(err: z.ZodError, what: string, example: string): string {
  const issue = err.issues[0];
  const where = issue.path.length ? issue.path.map(String).join('.') : 'body';
  let msg = issue.message;
  if (issue.code === 'unrecognized_keys') msg = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
  if (issue.code === 'invalid_union' && issue.path[0] === 'kind') msg = 'must be "exec" or "task"';
  return `${what}: ${where}: ${msg} (example: ${example})`;
}

export const RUN_EXAMPLE = '{"kind": "exec", "command": ["sh", "-c", "make test"], "workspace": "/srv/proj"}';

/** Parses a POST /v1/runs body (400 with one line when it is not one). */
export function parseRunRequest(body: unknown): RunRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, `the body must be a JSON object (example: ${RUN_EXAMPLE})`);
  if (!('kind' in body)) throw new ApiError(400, `body.kind is required: "exec" or "task" (example: ${RUN_EXAMPLE})`);
  const r = runRequestSchema.safeParse(body);
  if (!r.success) throw new ApiError(400, issueLine(r.error, 'run request', RUN_EXAMPLE));
  return r.data;
}

/** A request made concrete for core: its workspace and policy as prepare() takes them. */
export interface ResolvedRequest {
  req: RunRequest;
  workspace: string;
  policy: string | InlinePolicy | undefined;
  rules: Rules;
}

/** Where a path really is, or null (it does not exist). */
function real(p: string): string | null {
  try {
    return fs.realpathSync(p);
  } catch {
    return null;
  }
}

export function under(p: string, root: string): boolean {
  return p === root || p.startsWith(root.endsWith('/') ? root : `${root}/`);
}

/** Checks the workspace and the policy of a request against what the server allows. */
export async function resolveRequest(ctx: Context, req: RunRequest, roots: string[]): Promise<ResolvedRequest> {
  const realRoots = roots.map((r) => real(r)).filter((r): r is string => r !== null);
  if (realRoots.length === 0) throw new ApiError(400, 'this server has no workspace roots (start it with clawpod serve --workspaces DIR)');
  const given = req.workspace ?? realRoots[0];
  if (!path.isAbsolute(given)) throw new ApiError(400, `workspace ${JSON.stringify(given)} must be an absolute path under ${realRoots.join(', ')}`);
  const ws = real(given);
  if (ws === null) throw new ApiError(400, `workspace ${given} does not exist`);
  if (!realRoots.some((r) => under(ws, r))) throw new ApiError(403, `workspace ${given} is not under this server's workspace roots (${realRoots.join(', ')})`);
  const policy = policyOf(ctx, req.policy, realRoots);
  let rules: Rules;
  try {
    rules = await resolveRules(ctx, policy);
    if (rules.workspace !== 'none') resolveWorkspace(ctx, rules, ws, '/');
  } catch (e) {
    if (isUserCaused(e)) throw new ApiError(400, e.message);
    throw e;
  }
  // Only the owner's own policies (built-in, $CLAWPOD_HOME/policies) may grant what the server's
  // user holds; one sent inline, or a file under a root (which a run with a writable workspace
  // could have written), is held to the safe subset.
  if (typeof policy === 'object' || (typeof policy === 'string' && !ownerPolicy(ctx, policy))) checkInline(rules, realRoots);
  return { req, workspace: ws, policy, rules };
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The owner's own policies: files directly in $CLAWPOD_HOME/policies (realpath'd), nothing else
 *  of CLAWPOD_HOME (a run's kept stdout.log is a file a pod wrote). */
export function ownerPolicy(ctx: Context, file: string): boolean {
  const dir = real(path.join(ctx.clawpodHome, 'policies'));
  return dir !== null && path.dirname(file) === dir && /\.ya?ml$/.test(file);
}

/** strict (the default) | NAME ($CLAWPOD_HOME/policies/NAME.yaml) | a path under a root | inline. */
function policyOf(ctx: Context, p: RunRequest['policy'], roots: string[]): string | InlinePolicy | undefined {
  if (p === undefined || p === 'strict' || p === 'builtin:strict') return undefined;
  if (typeof p === 'object') return { inline: p, name: 'inline policy' };
  if (NAME.test(p) && !p.endsWith('.yaml') && !p.endsWith('.yml')) {
    const file = path.join(ctx.clawpodHome, 'policies', `${p}.yaml`);
    if (!fs.existsSync(file)) throw new ApiError(400, `no policy named ${p} (put it in ${file}, or send the policy inline)`);
    return file;
  }
  if (!path.isAbsolute(p))
    throw new ApiError(
      400,
      `policy ${JSON.stringify(p)} must be "strict", a name from ${path.join(ctx.clawpodHome, 'policies')}, an absolute path under a workspace root, or an object`,
    );
  const file = real(p);
  if (file === null) throw new ApiError(400, `policy file ${p} not found`);
  const home = real(ctx.clawpodHome);
  if (home !== null && under(file, home) && !ownerPolicy(ctx, file)) {
    throw new ApiError(403, `policy file ${p} is inside CLAWPOD_HOME but not one of its policies (name one from ${path.join(ctx.clawpodHome, 'policies')})`);
  }
  if (!roots.some((r) => under(file, r)))
    throw new ApiError(403, `policy file ${p} is not under this server's workspace roots (name it from ${path.join(ctx.clawpodHome, 'policies')} instead)`);
  return file;
}

/** An inline policy is the safe subset: it cannot turn the server's environment or files into a
 *  pod's secret, mount, CA or name override. Those belong in a named policy file the owner wrote. */
function checkInline(rules: Rules, roots: string[]): void {
  const named = 'put it in a policy file under $CLAWPOD_HOME/policies and name it';
  if (rules.secrets.length) throw new ApiError(400, `an inline policy cannot name secrets (${named})`);
  if (Object.keys(rules.network.hosts).length) throw new ApiError(400, `an inline policy cannot set network.hosts (${named})`);
  if (rules.network.extraCA?.length) throw new ApiError(400, `an inline policy cannot set network.extraCA (${named})`);
  for (const m of rules.mounts) {
    if (!roots.some((r) => under(m.host, r)))
      throw new ApiError(403, `an inline policy can mount only paths under the workspace roots, not ${m.host} (${named})`);
  }
  for (const host of rules.network.allow) {
    if (privateHost(host))
      throw new ApiError(400, `an inline policy cannot allow ${host}: a loopback, private or link-local address reaches this host's own services (${named})`);
  }
  for (const k of ['git', 'npm'] as const) {
    if (rules.settings?.[k] === 'inherit') throw new ApiError(400, `an inline policy cannot inherit settings.${k} from the server's user (${named})`);
  }
}

/** A host pattern that names this machine or its networks: localhost names and IP literals that
 *  are not public (loopback, RFC 1918, link-local, CGNAT, ULA, unspecified, mapped). */
export function privateHost(pattern: string): boolean {
  let h = pattern.toLowerCase().replace(/^\*\./, '');
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(h);
  if (v6) h = v6[1];
  else h = h.replace(/:\d+$/, '');
  if (h === 'localhost' || h.endsWith('.localhost') || h === 'localhost.localdomain') return true;
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  if (m) {
    const [a, b] = [Number(m[1]), Number(m[2])];
    return (
      a === 0 ||
      a === 10 ||
      a === 127 ||
      (a === 100 && b >= 64 && b < 128) ||
      (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b < 32) ||
      (a === 192 && b === 168) ||
      a >= 224
    );
  }
  if (h.includes(':')) {
    return h === '::' || h === '::1' || /^f[cd]/.test(h) || /^fe[89ab]/.test(h) || h.startsWith('::ffff:') || h.startsWith('64:ff9b:');
  }
  return false;
}
