// Reading a policy: built-in name or file -> YAML -> schema. Every failure a user can cause
// becomes one PolicyError line naming the problem and the fix; nothing else escapes.
import YAML from 'yaml';
import type { z } from 'zod';
import { nearest } from '../util/nearest.js';
import { exampleAt, inlineYaml, keysAt, kindAt } from './reference.js';
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
      throw new PolicyError(`policy file ${path} not found (pass an existing file to --policy, or omit it for the built-in strict policy)`);
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
    throw new PolicyError(`policy ${path}: not valid YAML${where}: ${yamlReason(err, text)}`);
  }
  try {
    return doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (e) {
    throw new PolicyError(`policy ${path}: not valid YAML: ${firstLine((e as Error).message)}`);
  }
}

/** The YAML library's message, and how to fix it. */
function yamlReason(err: YAML.YAMLError, text: string): string {
  const reason = firstLine(err.message);
  if (err.code === 'DUPLICATE_KEY') {
    const key = /^\s*(?:-\s*)?([^:#{}[\],]+?)\s*:/.exec(text.slice(err.pos[0]))?.[1];
    return `${key ? `key ${JSON.stringify(key)} appears twice` : reason} (keep one: a later value must not silently win)`;
  }
  if (err.code === 'TAB_AS_INDENT') return `${reason} (indent with spaces, e.g. "resources:" then "  memory: 1Gi")`;
  return `${reason} (check the indentation, quotes and brackets there; e.g. "network: { allow: [api.github.com] }")`;
}

function firstLine(s: string): string {
  return s
    .split('\n')[0]
    .replace(/\s+at line \d+, column \d+:?$/, '')
    .trim();
}

/** Validate a parsed document with the schema; the first issue becomes a PolicyError. */
export function validate(doc: unknown, sourceName: string): RawPolicy {
  // reportInput: the issue carries what was written, so the message can say what it got.
  const result = policySchema.safeParse(doc, { reportInput: true });
  if (result.success) return result.data;
  throw new PolicyError(`policy ${sourceName}: ${describeIssue(result.error.issues[0])}`);
}

type Issue = z.core.$ZodIssue;

const REFERENCE = "see the README's policy key reference, or clawpod policy init for an annotated file";

/** One issue in the user's terms: where in the file, what is wrong, and a right value. */
export function describeIssue(issue: Issue): string {
  const where = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') return unknownKey(String(issue.keys[0]), issue.path);
  if (issue.code === 'invalid_key' && issue.issues.length > 0) {
    // The record key itself is bad: name the map it sits in; the message names the key.
    return `${formatPath(issue.path.slice(0, -1)) || 'top level'}: ${issue.issues[0].message}`;
  }
  if (issue.code === 'invalid_type' && where === '') {
    return `top level must be a YAML mapping with keys such as resources: and network: (got ${what(issue.input)}; ${REFERENCE})`;
  }
  const raw = issue.code === 'invalid_type' && (/^Invalid input/.test(issue.message) || issue.input === undefined);
  const message = raw ? wrongType(issue) : ownWords(issue);
  return `${where === '' ? '' : `${where}: `}${message}${/\be\.g\./.test(message) ? '' : exampleFor(issue.path)}`;
}

function unknownKey(key: string, path: readonly PropertyKey[]): string {
  const where = formatPath(path);
  const known = keysAt(path);
  const near = nearest(key, known);
  const place = where === '' ? 'at top level' : `in ${where}`;
  const takes = known.length ? `${where || 'the top level'} takes ${known.join(', ')}` : REFERENCE;
  return `unknown key ${JSON.stringify(key)} ${place} (${near ? `did you mean ${near}? ` : ''}${takes})`;
}

/** zod's own "Invalid input: expected X, received Y" in words: the kind of value the key takes. */
function wrongType(issue: Issue & { code: 'invalid_type' }): string {
  if (issue.input === undefined) return `is missing (${kindAt(issue.path) ?? issue.expected}, required)`;
  if (issue.input === null && (issue.expected === 'object' || issue.expected === 'record' || issue.expected === 'array')) {
    return `is empty (a key with nothing after it): give it a value or remove the line`;
  }
  const kind = kindAt(issue.path) ?? issue.expected;
  return `must be ${/^[aeiou]/.test(kind) ? 'an' : 'a'} ${kind} (got ${what(issue.input)})`;
}

/** zod's other built-in messages ("Too small: ...") in plain words; our own ones as they are. */
function ownWords(issue: Issue): string {
  if (!/^Too small/.test(issue.message)) return issue.message;
  if (issue.code === 'too_small' && issue.origin === 'string' && Number(issue.minimum) === 1) return 'must not be empty';
  if (issue.code === 'too_small' && issue.origin === 'array' && Number(issue.minimum) === 1) return 'must not be an empty list';
  return issue.message;
}

/** What a value is, for "(got ...)": a short quote of a scalar, or the kind of a collection. */
function what(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'nothing';
  if (typeof v === 'object') return 'a mapping';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/** ", e.g. KEY: VALUE" from the schema's own example for the key at path, or "". */
function exampleFor(path: readonly PropertyKey[]): string {
  const example = exampleAt(path);
  if (example === undefined) return '';
  const last = path[path.length - 1];
  const key = typeof last === 'string' ? `${IDENT_RE.test(last) ? last : JSON.stringify(last)}: ` : '';
  return `, e.g. ${key}${inlineYaml(example)}`;
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
