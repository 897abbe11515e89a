// Bundles the CLI into one file: Node 20 spends most of a short command's start-up resolving
// and loading ESM modules one by one (zod alone is hundreds of files). The built-in strict
// policy is computed here by the real schema and inlined, so the default path needs no zod;
// likewise the seccomp programs, by the real generator.
import { renameSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { build } from 'esbuild';

// Built beside the old bundle and swapped in whole: a failed or concurrent build never leaves a
// half-written or missing bundle behind.
const out = `dist/bundle.tmp-${process.pid}`;
rmSync(out, { recursive: true, force: true });

const { policySchema } = await import('../dist/src/policy/schema.js');
const strict = policySchema.parse({});
// `clawpod --version` names the commit it was built from ("unknown" outside a git checkout).
const { version } = JSON.parse(readFileSync('package.json', 'utf8'));
let commit = 'unknown';
try {
  commit = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
} catch {
  /* not a checkout */
}
const { buildSeccompProgram } = await import('../dist/src/pod/seccomp.js');
const seccomp = Object.fromEntries(['x86_64', 'aarch64'].map((a) => [a, buildSeccompProgram(a).toString('base64')]));

// Two bundles: the full command line (clawpod.mjs), and exec's own (exec/exec.mjs), which
// bin/clawpod loads for `clawpod exec`, the hot path: start-up is the bytes and files Node loads,
// so nothing of the review, policy or agent commands is in it. A process runs one or the other,
// so no module's state is ever split between them.
const common = {
  outExtension: { '.js': '.mjs' },
  bundle: true,
  // Dynamically imported parts (zod + yaml for policy files, the proxy, diff rendering, the
  // agent and the demo) become chunks loaded only when a command needs them.
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  chunkNames: 'chunk-[hash]',
  // better-sqlite3's JavaScript is bundled; its addon is loaded by path at run time.
  external: ['*.node'],
  define: {
    __CLAWPOD_VERSION__: JSON.stringify(version),
    __CLAWPOD_COMMIT__: JSON.stringify(commit),
    __CLAWPOD_STRICT_POLICY__: JSON.stringify(strict),
    __CLAWPOD_SECCOMP__: JSON.stringify(seccomp),
  },
  banner: { js: "import { createRequire as __clawpodRequire } from 'node:module'; const require = __clawpodRequire(import.meta.url);" },
  logLevel: 'warning',
};
await build({ ...common, entryPoints: ['dist/src/cli/entry.js'], outdir: out, entryNames: 'clawpod' });
await build({ ...common, entryPoints: ['dist/src/cli/entry-exec.js'], outdir: `${out}/exec`, entryNames: 'exec' });

const old = `dist/bundle.old-${process.pid}`;
try {
  renameSync('dist/bundle', old);
} catch {
  /* first build */
}
renameSync(out, 'dist/bundle');
rmSync(old, { recursive: true, force: true });
