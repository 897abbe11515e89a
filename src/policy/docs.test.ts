import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { keyReferenceMarkdown, README_BEGIN, README_END, starterPolicy, withKeyReference } from './docs.js';
import { parseYaml, validate } from './load.js';
import { normalizePolicy } from './normalize.js';
import { allKeys } from './reference.js';
import { policySchema } from './schema.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const deps = { home: '/home/u', clawpodHome: '/home/u/.clawpod', realpath: (p: string) => p, exists: () => false, passwd: '' };

test("the README's policy key reference is the one the schema generates (node scripts/policy-docs.mjs)", () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  assert.equal(readme.split(README_BEGIN).length, 2, 'one begin marker');
  assert.equal(readme.split(README_END).length, 2, 'one end marker');
  const section = readme.slice(readme.indexOf('## Policy key reference'), readme.indexOf('## Network and secrets'));
  assert.ok(section.includes(README_BEGIN), 'the block sits in "## Policy key reference", right before "## Network and secrets"');
  assert.equal(readme, withKeyReference(readme), 'README.md is stale: run npm run build && node scripts/policy-docs.mjs');
});

test('the reference names every key with its description, and a stale block is noticed', () => {
  const md = keyReferenceMarkdown();
  for (const k of allKeys()) {
    assert.ok(k.description.length > 0, `${k.path} has a .describe() text`);
    assert.ok(md.includes(`| \`${k.path}\` |`), k.path);
  }
  for (const key of ['resources.memory', 'filesystem.mounts[].host', 'secrets[].inject.format', 'tools.approve', 'settings.npm']) {
    assert.ok(md.includes(`\`${key}\``), key);
  }
  const stale = `a\n${README_BEGIN}\n| old |\n${README_END}\nb`;
  assert.notEqual(withKeyReference(stale), stale);
  assert.equal(withKeyReference(withKeyReference(stale)), withKeyReference(stale));
});

test('every example the docs show is a value the schema accepts at its key', () => {
  for (const k of allKeys()) {
    if (k.example === undefined || k.path.includes('[]')) continue;
    const doc: Record<string, unknown> = {};
    const parts = k.path.split('.');
    let at = doc;
    for (const p of parts.slice(0, -1)) at = (at[p] = {}) as Record<string, unknown>;
    at[parts[parts.length - 1]] = k.example;
    // A secret's hosts must be reachable; the examples are written so they are.
    const r = policySchema.safeParse(doc);
    assert.ok(r.success, `${k.path}: ${JSON.stringify(k.example)}: ${r.success ? '' : r.error.issues[0].message}`);
  }
});

test('the starter file documents every key and, as written, is exactly the built-in strict policy', () => {
  const text = starterPolicy();
  for (const k of allKeys()) {
    const leaf = k.path.split('.').pop()?.replace('[]', '') as string;
    assert.match(text, new RegExp(`(^|\\n)\\s*(#\\s+)?(e\\.g\\. )?(- )?${leaf}:`), `${k.path} appears`);
  }
  const raw = validate(parseYaml(text, 'p.yaml'), 'p.yaml');
  assert.deepEqual(raw, policySchema.parse({}));
  assert.deepEqual(normalizePolicy(raw, 'builtin:strict', deps), normalizePolicy(policySchema.parse({}), 'builtin:strict', deps));
});
