// The layering of src/ as a check: every import between two modules (src/<module>/...) must point
// down, or sideways only where SIBLINGS names the pair. Run by `npm run lint`; test/layering.test.ts
// checks the checker. Usage: node scripts/layering.mjs [ROOT]   (ROOT defaults to the repository)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

// Lowest first. A module may import any module of a lower layer, none of its own layer (unless
// SIBLINGS allows the pair) and none above. audit sits beside util at the very bottom: the audit
// chain depends on nothing of ours (DESIGN.md, "Which part may know which").
export const LAYERS = [
  ['util', 'audit'], // util: helpers that know nothing of clawpod; audit: the hash chain
  ['policy'], // pure: schema, normalization, host patterns
  ['secrets', 'workspace'], // secrets match hosts with policy's one host matcher
  ['pod', 'proxy', 'agent', 'store'], // siblings: pod never imports agent, proxy never pod
  ['core'], // wires the layers below into exec and run
  ['cli', 'server', 'bench', 'testkit'], // the faces; bench also means the top-level bench/ dir; testkit: fakes that only tests import
];

// Sideways imports by design (module -> module: why). Kept short on purpose: a new entry in the
// middle layer is a design decision, not a convenience.
export const SIBLINGS = {
  'cli -> server': 'the `serve` command starts the server; the server never reaches back into the CLI',
};

// Today's known violations, file -> file: reason. Each line is a debt to pay back: delete it when
// the import is gone. The check fails on an entry that no longer occurs, so this list cannot rot.
// Format: 'src/core/x.ts -> src/cli/y.ts': 'one line: why it is here and what replaces it',
export const KNOWN_VIOLATIONS = {};

const rank = new Map(LAYERS.flatMap((mods, i) => mods.map((m) => [m, i])));

// The module of a repository-relative path: src/<module>/..., or bench/ and test/ themselves.
function moduleOf(rel) {
  const parts = rel.split('/');
  if (parts[0] === 'src') return parts.length > 2 ? parts[1] : null;
  if (parts[0] === 'bench' || parts[0] === 'test') return parts[0];
  return null;
}

const isTest = (rel) => rel.endsWith('.test.ts');

/** Every module specifier in one file: import/export ... from, import x = require(), import(),
 * require(), import('...') types. A computed import() or require() cannot be checked: it is null. */
export function specifiersOf(text, fileName = 'x.ts') {
  // TypeScript's import scanner: comments and strings are skipped, and it is several times faster
  // than a full parse. It passes over a computed import(); the parser finds those, in the few files
  // whose text might hold one.
  const found = ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
  return /\b(import|require)\s*\(\s*[^'"\s]/.test(text) ? [...found, ...computedImports(text, fileName)] : found;
}

function computedImports(text, fileName) {
  const out = [];
  const visit = (n) => {
    if (ts.isCallExpression(n) && n.arguments.length > 0 && !ts.isStringLiteralLike(n.arguments[0])) {
      const callee = n.expression;
      if (callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === 'require')) out.push(null);
    }
    ts.forEachChild(n, visit);
  };
  visit(ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS));
  return out;
}

function listTs(root, dir) {
  if (!fs.existsSync(path.join(root, dir))) return [];
  const entries = fs.readdirSync(path.join(root, dir), { recursive: true, withFileTypes: true });
  const sources = entries.filter((d) => d.isFile() && d.name.endsWith('.ts') && !d.name.endsWith('.d.ts'));
  return sources.map((d) => path.relative(root, path.join(d.parentPath ?? d.path, d.name))).sort();
}

/** Every import out of src/ and bench/ that leaves its own module: edges of { from, to, spec }. */
export function collectEdges(root) {
  const edges = [];
  const files = [...listTs(root, 'src'), ...listTs(root, 'bench')];
  for (const from of files) {
    for (const spec of specifiersOf(fs.readFileSync(path.join(root, from), 'utf8'), from)) {
      if (spec === null) {
        edges.push({ from, to: null, spec });
        continue;
      }
      if (!spec.startsWith('.')) continue; // a package or node: builtin
      const to = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec)).replace(/\.(m?)js$/, '.$1ts');
      if (moduleOf(to) !== moduleOf(from) || moduleOf(from) === null || isTest(to)) edges.push({ from, to, spec });
    }
  }
  return { files: files.length, edges };
}

/** Why an edge is forbidden, or null when it is allowed. */
export function verdict({ from, to }) {
  const a = moduleOf(from);
  if (to === null) return 'a computed import() cannot be checked: import a string literal';
  const b = moduleOf(to);
  if (a === null || !rank.has(a)) return `${from.split('/').slice(0, -1).join('/') || from} is in no layer: add it to LAYERS`;
  if (isTest(to)) return 'nothing imports a test file';
  if (b === 'test') return isTest(from) ? null : `${a} may not import test helpers`;
  // A unit test is a leaf: nothing imports it, so whatever it imports never enters a lower
  // module's runtime closure and cannot make a cycle. A test may check a contract across modules
  // (util/unsafe-text.test.ts checks the terminal's and the review's escaping against one set).
  if (isTest(from)) return b === null || !rank.has(b) ? `${to} is in no layer` : null;
  if (b === null || !rank.has(b)) return `${a} may not import ${to} (in no layer)`;
  if (b === 'bench') return `${a} may not import bench`;
  if (rank.get(b) < rank.get(a)) return null;
  if (rank.get(b) === rank.get(a) && SIBLINGS[`${a} -> ${b}`]) return null;
  return `${a} may not import ${b}`;
}

/** Violations not in `known`, and `known` entries that no longer occur. */
export function check(root, known = KNOWN_VIOLATIONS) {
  const { files, edges } = collectEdges(root);
  const violations = [];
  const seen = new Set();
  for (const e of edges) {
    const why = verdict(e);
    if (why === null) continue;
    const key = `${e.from} -> ${e.to ?? 'import(<computed>)'}`;
    if (key in known) seen.add(key);
    else violations.push(`${key} (${why})`);
  }
  const stale = Object.keys(known).filter((k) => !seen.has(k));
  return { files, edges: edges.length, violations: [...new Set(violations)], stale };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = path.resolve(process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..'));
  const { violations, stale, edges, files } = check(root);
  for (const v of violations) console.error(v);
  for (const s of stale) console.error(`${s}: no longer imported; delete it from KNOWN_VIOLATIONS in scripts/layering.mjs`);
  if (violations.length || stale.length) {
    console.error(`layering: ${violations.length} forbidden import(s), ${stale.length} stale allow-list entry(s).`);
    console.error(`Layers, lowest first (a module imports only lower layers): ${LAYERS.map((l) => l.join(' ')).join(' < ')}`);
    process.exit(1);
  }
  console.log(`layering: ${files} files, ${edges} cross-module imports checked, ${Object.keys(KNOWN_VIOLATIONS).length} known violation(s) allowed`);
}
