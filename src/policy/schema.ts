// The policy file's one schema: every key, default and limit lives here, and the RawPolicy
// type is inferred from it. Objects are strict so a misspelt key is an error, not a silent
// no-op that leaves a guard at some other value than the user meant.
import { isIP } from 'node:net';
import { z } from 'zod';
import { hostPatternError, parseHostPattern } from './hostpattern.js';
import { gitSettingError, npmSettingError } from './settings.js';
import { AGENT_TOOL_NAMES } from './tool-names.js';
import { nearest } from '../util/nearest.js';
import { parseDuration, parseSize } from './units.js';

const MIB = 1024 * 1024;

/** What the key reference, `policy init` and the validator's messages show beside a key's
 *  description: a right value (`example`) and, where the schema's own type says too little, the
 *  kind of value in words (`kind`). Kept in zod's metadata, next to .describe(). */
export type KeyDoc = { example?: unknown; kind?: string };
const doc = (d: KeyDoc): KeyDoc => d;
const SECOND_MS = 1000;
const WEEK_MS = 7 * 24 * 3600 * SECOND_MS;

export const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Variables the dynamic loader reads to pull code into every process, and clawpod's own
// namespace: letting a policy set these would let it reconfigure the guard from inside.
const RESERVED_ENV = new Set(['LD_PRELOAD', 'LD_LIBRARY_PATH', 'LD_AUDIT']);

/** Why name may not be set in the pod's environment, or null when it may. */
export function envNameError(name: string): string | null {
  if (!ENV_NAME_RE.test(name)) {
    return `${JSON.stringify(name)} is not an environment variable name (letters, digits and _, not starting with a digit)`;
  }
  if (name.startsWith('CLAWPOD_')) return `${name} is reserved for clawpod itself (CLAWPOD_* cannot be set by a policy)`;
  if (RESERVED_ENV.has(name)) return `${name} cannot be set by a policy (it would load code into every process)`;
  return null;
}

/** A zod error callback: the requirement, then what was actually written (when there was one). */
function expected(requirement: string) {
  return (iss: { input?: unknown }): string => (iss.input === undefined ? requirement : `${requirement} (got ${JSON.stringify(iss.input)})`);
}

function sizeField(fallback: string, minBytes: number, minText: string) {
  return z
    .union([z.string(), z.number()], { error: expected(`must be a size such as ${fallback}`) })
    .superRefine((v, ctx) => {
      let bytes: number;
      try {
        bytes = parseSize(v);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
        return;
      }
      if (bytes < minBytes) ctx.addIssue({ code: 'custom', message: `must be at least ${minText} (got ${JSON.stringify(v)})` });
    })
    .default(fallback);
}

const timeoutField = z
  .union([z.string(), z.number()], { error: expected('must be a duration such as 10m') })
  .superRefine((v, ctx) => {
    let ms: number;
    try {
      ms = parseDuration(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return;
    }
    if (ms < SECOND_MS || ms > WEEK_MS) ctx.addIssue({ code: 'custom', message: `must be between 1s and 7d (got ${JSON.stringify(v)})` });
  })
  .default('10m')
  .describe('Wall-clock limit for the whole run, e.g. 30s, 10m, 1h30m (plain numbers are seconds); 1s to 7d')
  .meta(doc({ example: '30m', kind: 'duration' }));

const PIDS_RULE = expected('must be a whole number from 1 to 65536');

const resources = z
  .object({
    cpus: z
      .number({ error: expected('must be a number of cores, e.g. 1 or 0.5') })
      .positive({ error: expected('must be more than 0') })
      .max(1024, { error: expected('must be at most 1024') })
      .default(1)
      .describe('CPU quota in cores; fractions such as 0.5 are allowed')
      .meta(doc({ example: 2 })),
    memory: sizeField('512Mi', 4 * MIB, '4Mi')
      .describe('Memory cap, e.g. 512Mi or 2Gi; at least 4Mi')
      .meta(doc({ example: '2Gi', kind: 'size' })),
    pids: z
      .number({ error: PIDS_RULE })
      .int({ error: PIDS_RULE })
      .min(1, { error: PIDS_RULE })
      .max(65536, { error: PIDS_RULE })
      .default(256)
      .describe('Most processes and threads the pod may have at once; 1 to 65536')
      .meta(doc({ example: 512, kind: 'whole number' })),
    timeout: timeoutField,
    disk: sizeField('1Gi', MIB, '1Mi')
      .describe('Size of the writable layers (tmpfs and overlay upper dir); at least 1Mi')
      .meta(doc({ example: '4Gi', kind: 'size' })),
  })
  .strict()
  .describe('Resource caps; every one is enforced or the run refuses to start')
  .meta(doc({ example: { memory: '1Gi', timeout: '30m' } }));

const mount = z
  .object({
    host: z
      .string({ error: expected('must be a host path') })
      .min(1, { error: 'must not be empty' })
      .describe('Host path, absolute or starting with ~/')
      .meta(doc({ example: '~/datasets' })),
    path: z
      .string({ error: expected('must be a path inside the pod') })
      .min(1, { error: 'must not be empty' })
      .describe('Absolute path inside the pod, e.g. /data; not inside another mount')
      .meta(doc({ example: '/data' })),
    mode: z
      .enum(['ro', 'rw'], { error: expected('must be ro or rw') })
      .default('ro')
      .describe('ro (the default) or rw')
      .meta(doc({ example: 'rw' })),
  })
  .strict()
  .describe('An extra host directory or file made visible in the pod')
  .meta(doc({ example: { host: '~/datasets', path: '/data', mode: 'ro' } }));

const ignorePattern = z
  .string({ error: expected('must be a gitignore pattern such as coverage/ or *.log') })
  .min(1, { error: 'must not be empty' })
  .max(1000, { error: 'is longer than 1000 characters' })
  .refine((p) => !/[\n\r\0]/.test(p), { error: 'must be one line (one pattern per list item)' })
  .meta(doc({ example: 'coverage/' }));

const filesystem = z
  .object({
    workspace: z
      .enum(['overlay', 'ro', 'rw', 'none'], { error: expected('must be one of overlay, ro, rw, none') })
      .default('overlay')
      .describe('overlay: copy-on-write with a reviewable diff; ro: read-only; rw: live writes; none: not mounted')
      .meta(doc({ example: 'ro' })),
    mounts: z
      .array(mount)
      .default([])
      .describe('Extra host paths; read-only unless mode: rw')
      .meta(doc({ example: [{ host: '~/datasets', path: '/data', mode: 'ro' }] })),
    workspaceAt: z
      .enum(['/workspace', 'host'], { error: expected('must be /workspace or host') })
      .optional()
      .describe(
        'Where the pod sees the workspace: /workspace (absent: the default), or host (at its own host path, so absolute paths the pod records still lead there after apply)',
      )
      .meta(doc({ example: 'host' })),
    ignore: z
      .array(ignorePattern)
      .max(1000, { error: 'at most 1000 patterns' })
      .optional()
      .describe(
        'gitignore patterns (from the workspace root; later ones win, ! re-includes) whose changes are kept apart like .gitignored ones: counted, not shown, applied only on request',
      )
      .meta(doc({ example: ['coverage/', '*.log'], kind: 'list of gitignore patterns' })),
  })
  .strict()
  .describe('What host files the pod sees')
  .meta(doc({ example: { workspace: 'overlay' } }));

const hostPattern = z
  .string({ error: expected('must be a host pattern such as api.github.com') })
  .superRefine((p, ctx) => {
    const problem = hostPatternError(p);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .meta(doc({ example: 'api.github.com' }));

const hostName = z.string().superRefine((name, ctx) => {
  let ok = false;
  try {
    const p = parseHostPattern(name);
    ok = p.kind === 'exact' && p.port === undefined;
  } catch {
    ok = false;
  }
  if (!ok) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(name)} is not a plain host name (no port, no wildcard)` });
});

const ipAddress = z.string({ error: expected('must be an IP address such as 127.0.0.1') }).superRefine((ip, ctx) => {
  if (isIP(ip) === 0) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(ip)} is not an IP address (use e.g. 127.0.0.1 or ::1)` });
});

const network = z
  .object({
    allow: z
      .array(hostPattern)
      .default([])
      .describe(
        'Host patterns the pod may reach through the egress proxy (a name, *.domain for its subdomains, :PORT for another port than 80/443); empty means no network',
      )
      .meta(doc({ example: ['api.github.com', '*.pypi.org'], kind: 'list of host patterns' })),
    deny: z
      .array(hostPattern)
      .default([])
      .describe('Host patterns always refused; deny wins over allow')
      .meta(doc({ example: ['uploads.github.com'], kind: 'list of host patterns' })),
    hosts: z
      .record(hostName, ipAddress)
      .default({})
      .describe("Name -> IP address overrides for the proxy's resolver (the only way to reach a private address by name)")
      .meta(doc({ example: { 'svc.test': '127.0.0.1' }, kind: 'map of host name to IP address' })),
    extraCA: z
      .array(z.string({ error: expected('must be the path of a PEM file') }).min(1, { error: 'must not be empty' }))
      .default([])
      .describe('PEM files of extra roots the proxy trusts when it verifies upstream servers (besides the system roots)')
      .meta(doc({ example: ['/usr/local/share/ca-certificates/corp-root.pem'], kind: 'list of file paths' })),
  })
  .strict()
  .describe('Egress: the pod has no network interface, only the host proxy enforcing these rules')
  .meta(doc({ example: { allow: ['api.github.com'] } }));

const envName = z.string().superRefine((name, ctx) => {
  const problem = envNameError(name);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

// RFC 9110 token characters; the headers that frame the message or route it are clawpod's own.
const HEADER_NAME_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const FRAMING_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'te',
  'upgrade',
  'trailer',
  'keep-alive',
  'proxy-authorization',
  'proxy-connection',
]);

const inject = z
  .object({
    header: z
      .string({ error: expected('must be a header name such as Authorization') })
      .regex(HEADER_NAME_RE, { error: expected('must be a header name such as Authorization') })
      .refine((h) => !FRAMING_HEADERS.has(h.toLowerCase()), { error: expected('is a header clawpod sets itself; pick the one the API reads the key from') })
      .optional()
      .describe('The proxy sets this request header itself on every request to the hosts; the pod need not send the placeholder')
      .meta(doc({ example: 'Authorization' })),
    format: z
      .string({ error: expected('must be a string such as "Bearer {}"') })
      .refine((f) => f.includes('{}') || f.includes('{base64}'), { error: expected('must contain {} (the value) or {base64} (its base64)') })
      .refine((f) => !/[\r\n\0]/.test(f), { error: 'must be one line' })
      .optional()
      .describe('The header value, {} standing for the secret and {base64} for its base64, e.g. "Bearer {}" or "Basic {base64}"; default "{}"')
      .meta(doc({ example: 'Bearer {}' })),
    query: z
      .string({ error: expected('must be a query parameter name such as api_key') })
      .min(1, { error: 'must not be empty' })
      .optional()
      .describe('Also swap the placeholder in this query parameter (percent-encoded); only for APIs that read keys from the URL')
      .meta(doc({ example: 'api_key' })),
  })
  .strict()
  .refine((i) => i.header !== undefined || i.query !== undefined, {
    error: 'must name a header or a query parameter (without inject, any header value gets the secret)',
  })
  .refine((i) => i.format === undefined || i.header !== undefined, { error: 'format needs a header to go in' })
  .describe('Where the proxy puts the value. Absent: the placeholder is swapped in credential header values (Authorization, X-Api-Key, ...) and nowhere else')
  .meta(doc({ example: { header: 'Authorization', format: 'Bearer {}' } }));

const SECRET_FROM_RE = /^(?:env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/;

const secret = z
  .object({
    name: envName.describe('Variable name the pod sees (holding only a placeholder)').meta(doc({ example: 'GITHUB_TOKEN' })),
    from: z
      .string({ error: expected('must be env:NAME or file:PATH') })
      .regex(SECRET_FROM_RE, { error: expected('must be env:NAME or file:PATH, e.g. env:GITHUB_TOKEN') })
      .describe('Where the host reads the real value when the run starts: env:NAME or file:PATH (at least 8 bytes)')
      .meta(doc({ example: 'env:GITHUB_TOKEN' })),
    hosts: z
      .array(hostPattern)
      .min(1, { error: 'must list at least one host the secret may be sent to' })
      .describe('The only hosts whose requests get the real value injected by the proxy; each must also be allowed by network.allow')
      .meta(doc({ example: ['api.github.com'], kind: 'list of host patterns' })),
    inject: inject.optional(),
  })
  .strict()
  .describe('A credential the pod never sees: the proxy swaps its placeholder on the wire')
  .meta(doc({ example: { name: 'GITHUB_TOKEN', from: 'env:GITHUB_TOKEN', hosts: ['api.github.com'] } }));

// YAML turns `DEBUG: 1` into a number; the environment is strings, so scalars are accepted and
// spelt as strings rather than making the user quote every value.
const envValue = z
  .union([z.string(), z.number(), z.boolean()], { error: expected('must be a string') })
  .transform((v) => String(v))
  .refine((v) => !v.includes('\0'), { error: 'must not contain NUL bytes' })
  .meta(doc({ example: 'test' }));

// Only names the agent has: a misspelt `deny: [bsh]` would otherwise deny nothing.
const toolName = z.string({ error: expected(`must be a tool name such as bash`) }).superRefine((name, ctx) => {
  if (AGENT_TOOL_NAMES.includes(name)) return;
  const near = nearest(name, AGENT_TOOL_NAMES);
  const hint = near ? `did you mean ${near}? ` : '';
  ctx.addIssue({ code: 'custom', message: `${JSON.stringify(name)} is not a tool (${hint}the tools are ${AGENT_TOOL_NAMES.join(', ')})` });
});
const toolNames = z.array(toolName);

const tools = z
  .object({
    allow: toolNames
      .optional()
      .describe(`Only these agent tools may be used (absent: all; [] none). Tools: ${AGENT_TOOL_NAMES.join(', ')}`)
      .meta(doc({ example: ['bash', 'read_file', 'grep'], kind: 'list of tool names' })),
    deny: toolNames
      .optional()
      .describe('These agent tools may never be used; wins over allow')
      .meta(doc({ example: ['web_fetch'], kind: 'list of tool names' })),
    approve: toolNames
      .optional()
      .describe('These agent tools need the user to approve each call')
      .meta(doc({ example: ['bash', 'write_file'], kind: 'list of tool names' })),
  })
  .strict()
  .describe('Agent tool rules (clawpod run)')
  .meta(doc({ example: { deny: ['web_fetch'] } }));

// A tool's settings: the user's own (inherit, filtered on the host) or listed here. An explicit
// key that holds a credential, routes traffic or pulls in a file is an error naming the key.
function toolSettings(tool: string, check: (key: string, value: string) => string | null) {
  const listed = z.record(z.string(), envValue).superRefine((rec, ctx) => {
    for (const [key, value] of Object.entries(rec)) {
      const problem = check(key, value);
      if (problem) ctx.addIssue({ code: 'custom', path: [key], message: problem });
    }
  });
  return z.union([z.literal('inherit'), listed], { error: expected(`must be inherit or a map of ${tool} settings`) }).optional();
}

const settings = z
  .object({
    git: toolSettings('git', gitSettingError)
      .describe("The pod's system git config: inherit (user.name, user.email, init.defaultBranch, core.autocrlf... from your ~/.gitconfig) or {key: value}")
      .meta(doc({ example: 'inherit', kind: 'inherit, or map of git key to value' })),
    npm: toolSettings('npm', npmSettingError)
      .describe("The pod's global npmrc: inherit (your ~/.npmrc without auth, proxy, program and path keys) or {key: value}")
      .meta(doc({ example: { nodedir: '/usr' }, kind: 'inherit, or map of npm key to value' })),
  })
  .strict()
  .describe('Non-secret tool settings carried into the pod; credentials go in secrets:')
  .meta(doc({ example: { git: 'inherit' } }));

const policyObject = z
  .object({
    version: z
      .literal(1, { error: expected('must be 1') })
      .default(1)
      .describe('Policy format version; only 1 exists')
      .meta(doc({ example: 1 })),
    resources: resources.prefault({}),
    filesystem: filesystem.prefault({}),
    network: network.prefault({}),
    secrets: z
      .array(secret)
      .default([])
      .describe('Credentials injected by the egress proxy, never visible in the pod')
      .meta(
        doc({
          example: [{ name: 'GITHUB_TOKEN', from: 'env:GITHUB_TOKEN', hosts: ['api.github.com'], inject: { header: 'Authorization', format: 'Bearer {}' } }],
        }),
      ),
    env: z
      .record(envName, envValue)
      .default({})
      .describe('Plain environment variables for the pod (visible to it; never a secret)')
      .meta(doc({ example: { NODE_ENV: 'test' }, kind: 'map of variable name to string' })),
    tools: tools.prefault({}),
    settings: settings.optional(),
  })
  .strict();

type Parsed = z.output<typeof policyObject>;

/** The policy object before its cross-field checks: the shape the key reference walks. */
export const policyShape = policyObject;

export const policySchema = policyObject.superRefine(checkCrossFields).describe('A clawpod policy: what a pod may read, write, reach and use');

export type RawPolicy = z.infer<typeof policySchema>;
/** What a policy file may contain (before defaults are filled in). */
export type PolicyInput = z.input<typeof policySchema>;

function checkCrossFields(p: Parsed, ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  p.secrets.forEach((s, i) => {
    if (seen.has(s.name)) {
      ctx.addIssue({ code: 'custom', path: ['secrets', i, 'name'], message: `${s.name} is listed twice` });
    }
    seen.add(s.name);
    // A plain variable of the same name would replace the placeholder the proxy looks for.
    if (Object.hasOwn(p.env, s.name)) {
      ctx.addIssue({ code: 'custom', path: ['env', s.name], message: `${s.name} is also a secret; remove one of them` });
    }
  });
}
