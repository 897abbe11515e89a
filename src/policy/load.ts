// Reading a policy: built-in name or file -> YAML -> schema. Every failure a user can cause
// becomes one PolicyError line naming the problem and the fix; nothing else escapes.
import YAML from 'yaml';
import type { z } from 'zod';
import { policySchema, type RawPolicy } from './schema.js';

import { BUILTIN_STRICT, isBuiltinStrict } from './strict.js';

export { BUILTIN_STRICT, isBuiltinStrict };

export { PolicyError } from './errors.js';
import { PolicyError } from './errors.js';

export interface LoadDeps {
  /** Returns the file's text; throws (ENOENT etc.) like fs.readFileSync. */
  readFile(path: string): string;
  env: Record<string, string | undefined>;
}

/** The display name of where a policy comes from, as used in messages and Rules.source. */
export function policySourceName(source: string | undefined, env: Record<string, string | undefined>): string {
  return isBuiltinStrict(source) ? BUILTIN_STRICT : expandHomeInSource(source as string, env);
}

function expandHomeInSource(path: string, env: Record<string, string | undefined>): string {
  const home = env.HOME;
  if (home && (path === '~' || path.startsWith('~/'))) return home + path.slice(1);
  return path;
}

/**
 * Load and validate a policy. source: undefined, "strict" or "builtin:strict" for the built-in
 * strict policy (every key at its default); anything else is a YAML file path.
 */
export function loadPolicy(source: string | undefined, deps: LoadDeps): RawPolicy {
  if (isBuiltinStrict(source)) return validate({}, BUILTIN_STRICT);
  const path = expandHomeInSource(source as string, deps.env);
  return validate(parseYaml(readPolicyFile(path, deps), path), path);
}

function readPolicyFile(path: string, deps: LoadDeps): string {
  try {
    return deps.readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new PolicyError(
        `policy file ${path} not found (pass an existing file to --policy, or omit it for the built-in strict policy)`,
      );
    }
    if (code === 'EISDIR') throw new PolicyError(`policy file ${path} is a directory (pass a YAML file to --policy)`);
    if (code === 'EACCES' || code === 'EPERM') {
      throw new PolicyError(`policy file ${path} cannot be read: permission denied (check its permissions)`);
    }
    throw new PolicyError(`policy file ${path} cannot be read: ${code ?? (e as Error).message}`);
  }
}

/** Parse YAML text; an empty document is an empty policy (all defaults). */
export function parseYaml(text: string, path: string): unknown {
  // uniqueKeys (the default) makes a repeated key an error: the later value must not silently win.
  const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const err = doc.errors[0];
  if (err) {
    const line = err.linePos?.[0]?.line;
    const where = line === undefined ? '' : ` at line ${line}`;
    const reason = firstLine(err.message);
    throw new PolicyError(`policy ${path}: not valid YAML${where}: ${reason}`);
  }
  try {
    return doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (e) {
    throw new PolicyError(`policy ${path}: not valid YAML: ${firstLine((e as Error).message)}`);
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0].replace(/\s+at line \d+, column \d+:?$/, '').trim();
}

/** Validate a parsed document with the schema; the first issue becomes a PolicyError. */
export function validate(doc: unknown, sourceName: string): RawPolicy {
  const result = policySchema.safeParse(doc);
  if (result.success) return result.data;
  throw new PolicyError(`policy ${sourceName}: ${describeIssue(result.error.issues[0])}`);
}

type Issue = z.core.$ZodIssue;

/** One issue in the user's terms: where in the file, what is wrong, and how to fix it. */
export function describeIssue(issue: Issue): string {
  const where = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const key = JSON.stringify(issue.keys[0]);
    const place = where === '' ? 'at top level' : `in ${where}`;
    return `unknown key ${key} ${place} (check spelling; see clawpod policy explain)`;
  }
  if (issue.code === 'invalid_key' && issue.issues.length > 0) {
    // The record key itself is bad: name the map it sits in; the message names the key.
    return `${formatPath(issue.path.slice(0, -1)) || 'top level'}: ${issue.issues[0].message}`;
  }
  if (issue.code === 'invalid_type' && where === '') {
    return 'top level must be a YAML mapping with keys such as resources: and network: (see clawpod policy explain)';
  }
  return where === '' ? issue.message : `${where}: ${issue.message}`;
}

const IDENT_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** ["filesystem","mounts",0,"host"] -> "filesystem.mounts[0].host". */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && IDENT_RE.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}
