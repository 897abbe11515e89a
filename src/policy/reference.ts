// The policy's keys as data, read from the schema itself (its .describe() texts and KeyDoc
// metadata): the README's key reference, the file `clawpod policy init` writes and the
// validator's "e.g." all come from here, so none of them can drift from what the schema accepts.
import YAML from 'yaml';
import type { z } from 'zod';
import { type KeyDoc, policyShape } from './schema.js';

type Schema = z.core.$ZodType;
type Def = { type: string; [k: string]: unknown };

export interface KeyInfo {
  /** "resources.memory", "filesystem.mounts[].host". */
  path: string;
  /** The kind of value in words: "size", "list of host patterns", "overlay | ro | rw | none". */
  kind: string;
  /** The value when the key is absent, as YAML; undefined when absence has its own meaning. */
  default?: string;
  /** The key must be present (inside a list item). */
  required: boolean;
  description: string;
  /** A right value. */
  example?: unknown;
  /** Keys one level below (objects, and objects inside lists). */
  children: KeyInfo[];
}

const WRAPPERS = new Set(['optional', 'default', 'prefault', 'nullable', 'readonly', 'catch', 'nonoptional']);

const defOf = (s: Schema): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** Metadata of s or any schema it wraps, the outermost winning (describe() sits outside default()). */
function metaOf(s: Schema): { description?: string } & KeyDoc {
  const out: { description?: string } & KeyDoc = {};
  for (let cur: Schema | undefined = s; cur; cur = inner(cur)) {
    const m = (cur as unknown as { meta(): Record<string, unknown> | undefined }).meta?.() ?? {};
    for (const k of ['description', 'example', 'kind'] as const) if (out[k] === undefined && m[k] !== undefined) Object.assign(out, { [k]: m[k] });
  }
  return out;
}

/** The schema s wraps (optional, default, a transform's input), or undefined. */
function inner(s: Schema): Schema | undefined {
  const d = defOf(s);
  if (WRAPPERS.has(d.type)) return d.innerType as Schema;
  if (d.type === 'pipe') return d.in as Schema;
  return undefined;
}

/** s without its wrappers: the schema that says what the value is. */
export function core(s: Schema): Schema {
  let cur = s;
  for (let next = inner(cur); next; next = inner(cur)) cur = next;
  return cur;
}

function defaultOf(s: Schema): { has: boolean; value?: unknown } {
  for (let cur: Schema | undefined = s; cur; cur = inner(cur)) {
    const d = defOf(cur);
    if (d.type === 'optional') return { has: false };
    if (d.type === 'default' || d.type === 'prefault') {
      const v = typeof d.defaultValue === 'function' ? (d.defaultValue as () => unknown)() : d.defaultValue;
      return { has: true, value: v };
    }
  }
  return { has: false };
}

/** The kind of a value in words, from the schema (KeyDoc.kind wins where it is given). */
function kindOf(s: Schema): string {
  const given = metaOf(s).kind;
  if (given) return given;
  const c = core(s);
  const d = defOf(c);
  switch (d.type) {
    case 'enum':
      return Object.values(d.entries as Record<string, string>).join(' | ');
    case 'literal':
      return (d.values as unknown[]).map((v) => String(v)).join(' | ');
    case 'array': {
      const el = core(d.element as Schema);
      return defOf(el).type === 'object' ? 'list of mappings' : `list of ${kindOf(el)}s`;
    }
    case 'record':
      return `map of ${kindOf(d.keyType as Schema)} to ${kindOf(d.valueType as Schema)}`;
    case 'object':
      return 'mapping';
    case 'union':
      return (d.options as Schema[]).map(kindOf).join(' or ');
    default:
      return d.type;
  }
}

/** The object schema a value at s holds (itself, or a list's item), if it is one. */
function objectBelow(s: Schema): { shape: Record<string, Schema>; inList: boolean } | null {
  const c = core(s);
  const d = defOf(c);
  if (d.type === 'object') return { shape: d.shape as Record<string, Schema>, inList: false };
  if (d.type === 'array') {
    const el = core(d.element as Schema);
    const ed = defOf(el);
    if (ed.type === 'object') return { shape: ed.shape as Record<string, Schema>, inList: true };
  }
  return null;
}

function keysOf(shape: Record<string, Schema>, prefix: string): KeyInfo[] {
  return Object.entries(shape).map(([key, s]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    const m = metaOf(s);
    const dflt = defaultOf(s);
    const below = objectBelow(s);
    const optional = dflt.has || defOf(s).type === 'optional';
    return {
      path,
      kind: kindOf(s),
      ...(dflt.has && defOf(core(s)).type !== 'object' ? { default: inlineYaml(dflt.value) } : {}),
      required: !optional,
      description: m.description ?? '',
      ...(m.example !== undefined ? { example: m.example } : {}),
      children: below ? keysOf(below.shape, below.inList ? `${path}[]` : path) : [],
    };
  });
}

/** Every key of the policy file, in the schema's order, each with its keys below it. */
export function policyKeys(): KeyInfo[] {
  return keysOf(defOf(policyShape as unknown as Schema).shape as Record<string, Schema>, '');
}

/** The same keys, flattened: parents before children. */
export function allKeys(keys: KeyInfo[] = policyKeys()): KeyInfo[] {
  return keys.flatMap((k) => [k, ...allKeys(k.children)]);
}

/** A value as one line of YAML flow style: 512Mi, [api.github.com], { host: ~/d, path: /d }. */
export function inlineYaml(v: unknown): string {
  return YAML.stringify(v, { collectionStyle: 'flow', flowCollectionPadding: false, lineWidth: 0 }).trim();
}

/** The schema node a validator issue's path points at (list indexes and record keys step
 *  into the item), or null once the path leaves the schema. */
export function schemaAt(path: readonly PropertyKey[]): Schema | null {
  let cur: Schema = policyShape as unknown as Schema;
  for (const seg of path) {
    const c = core(cur);
    const d = defOf(c);
    if (d.type === 'object' && typeof seg === 'string' && Object.hasOwn(d.shape as object, seg)) cur = (d.shape as Record<string, Schema>)[seg];
    else if (d.type === 'array' && typeof seg === 'number') cur = d.element as Schema;
    else if (d.type === 'record') cur = d.valueType as Schema;
    else if (d.type === 'union') {
      // settings.git: inherit or a map: step into the option that has the next key.
      const rec = (d.options as Schema[]).map(core).find((o) => defOf(o).type === 'record');
      if (!rec) return null;
      cur = defOf(rec).valueType as Schema;
    } else return null;
  }
  return cur;
}

/** The keys an object at path takes, or [] when there is no object there. */
export function keysAt(path: readonly PropertyKey[]): string[] {
  const s = schemaAt(path);
  if (!s) return [];
  const d = defOf(core(s));
  return d.type === 'object' ? Object.keys(d.shape as object) : [];
}

/** A right value for the key at path (from its KeyDoc), or undefined. */
export function exampleAt(path: readonly PropertyKey[]): unknown {
  const s = schemaAt(path);
  return s ? metaOf(s).example : undefined;
}

/** The kind of value the key at path holds ("size", "list of host patterns"), or undefined. */
export function kindAt(path: readonly PropertyKey[]): string | undefined {
  const s = schemaAt(path);
  return s ? kindOf(s) : undefined;
}
