// The layering check (scripts/layering.mjs) against the real tree and against small made-up trees:
// each forbidden kind of edge is caught, each allowed one passes, a stale allow-list entry fails.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT, tmpDir } from './helpers.js';

interface Result {
  files: number;
  edges: number;
  violations: string[];
  stale: string[];
}
interface Layering {
  check(root: string, known?: Record<string, string>): Result;
  specifiersOf(text: string): (string | null)[];
  KNOWN_VIOLATIONS: Record<string, string>;
}
// A computed specifier: the script is plain JavaScript with no declarations for tsc to read.
const scriptPath = path.join(ROOT, 'scripts', 'layering.mjs');
const layering = (await import(scriptPath)) as Layering;

/** A throwaway repository holding just these files. */
function tree(files: Record<string, string>): string {
  const root = tmpDir('layering');
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  }
  return root;
}

test('the tree as it is keeps its layers (beyond the listed known violations), and no entry is stale', () => {
  const r = layering.check(ROOT);
  assert.ok(r.files > 100 && r.edges > 50, `read the real tree: ${r.files} files, ${r.edges} edges`);
  assert.deepEqual(r.violations, []);
  assert.deepEqual(r.stale, []);
});

test('every kind of import is read: static, type-only, export-from, dynamic, require, import types, computed', () => {
  const text = [
    "import { a } from '../policy/a.js';",
    "import type { B } from '../pod/b.js';",
    "export { c } from '../audit/c.js';",
    "export * from '../util/d.js';",
    "import '../store/side-effect.js';",
    "const e = await import('../agent/e.js');",
    "const f = require('../proxy/f.js');",
    "type G = import('../core/g.js').G;",
    'const t = await import(`../workspace/t.js`);',
    "// import { no } from '../cli/comment.js';",
    'const s = "import { no } from \'../cli/string.js\'";',
    'const h = await import(name);',
  ].join('\n');
  assert.deepEqual(layering.specifiersOf(text), [
    '../policy/a.js',
    '../pod/b.js',
    '../audit/c.js',
    '../util/d.js',
    '../store/side-effect.js',
    '../agent/e.js',
    '../proxy/f.js',
    '../core/g.js',
    '../workspace/t.js',
    null,
  ]);
});

test('an import up or sideways is named file to file with the rule it breaks', () => {
  const root = tree({
    'src/core/x.ts': "import { y } from '../cli/y.js';\nexport const x = y;\n",
    'src/cli/y.ts': 'export const y = 1;\n',
    'src/pod/p.ts': "import type { L } from '../agent/loop.js';\nexport const p = (l: L) => l;\n",
    'src/agent/loop.ts': "export const later = () => import('../core/x.js');\nexport type L = number;\n",
    'src/policy/q.ts': "export * from '../secrets/s.js';\n",
    'src/secrets/s.ts': "import { matchHost } from '../policy/hostpattern.js';\nexport const s = matchHost;\n",
    'src/policy/hostpattern.ts': 'export const matchHost = 1;\n',
    'src/audit/chain.ts': "import { r } from '../util/root.js';\nexport const c = r;\n",
    'src/util/root.ts': 'export const r = 1;\n',
  });
  assert.deepEqual(layering.check(root, {}).violations.sort(), [
    'src/agent/loop.ts -> src/core/x.ts (agent may not import core)',
    'src/audit/chain.ts -> src/util/root.ts (audit may not import util)',
    'src/core/x.ts -> src/cli/y.ts (core may not import cli)',
    'src/pod/p.ts -> src/agent/loop.ts (pod may not import agent)',
    'src/policy/q.ts -> src/secrets/s.ts (policy may not import secrets)',
  ]);
});

test('allowed: down the layers, the one listed sibling pair, unit tests across modules, bench on top', () => {
  const root = tree({
    'src/cli/main.ts': "import '../server/http.js';\nimport '../core/run.js';\nimport '../util/root.js';\n",
    'src/server/http.ts': "import '../core/run.js';\n",
    'src/core/run.ts': "import '../pod/bwrap.js';\nimport '../agent/loop.js';\nimport '../policy/index.js';\n",
    'src/util/text.test.ts': "import '../core/run.js';\nimport '../../test/helpers.js';\n",
    'bench/run.ts': "import '../src/pod/bwrap.js';\n",
  });
  assert.deepEqual(layering.check(root, {}).violations, []);
});

test('code may not import a test, test helpers, bench, a computed path or a folder in no layer', () => {
  const root = tree({
    'src/pod/a.ts': "import '../pod/a.test.js';\nimport '../../test/helpers.js';\nimport '../../bench/run.js';\n",
    'src/proxy/b.ts': 'export const b = () => import(`../pod/${name}.js`);\n',
    'src/channel/c.ts': "import '../util/root.js';\n",
    'src/server/d.ts': "import '../cli/main.js';\n",
  });
  assert.deepEqual(layering.check(root, {}).violations.sort(), [
    'src/channel/c.ts -> src/util/root.ts (src/channel is in no layer: add it to LAYERS)',
    'src/pod/a.ts -> bench/run.ts (pod may not import bench)',
    'src/pod/a.ts -> src/pod/a.test.ts (nothing imports a test file)',
    'src/pod/a.ts -> test/helpers.ts (pod may not import test helpers)',
    'src/proxy/b.ts -> import(<computed>) (a computed import() cannot be checked: import a string literal)',
    'src/server/d.ts -> src/cli/main.ts (server may not import cli)',
  ]);
});

test('a known violation passes while it occurs; once it is gone its entry is reported stale', () => {
  const edge = 'src/core/x.ts -> src/cli/y.ts';
  const known = { [edge]: 'being moved to core' };
  const files = { 'src/core/x.ts': "import '../cli/y.js';\n", 'src/cli/y.ts': 'export {};\n' };
  assert.deepEqual(layering.check(tree(files), known), { files: 2, edges: 1, violations: [], stale: [] });
  const fixed = layering.check(tree({ ...files, 'src/core/x.ts': 'export {};\n' }), known);
  assert.deepEqual([fixed.violations, fixed.stale], [[], [edge]]);
});
