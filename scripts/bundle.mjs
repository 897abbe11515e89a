// Bundles the CLI into one file: Node 20 spends most of a short command's start-up resolving
// and loading ESM modules one by one (zod alone is hundreds of files). better-sqlite3 stays
// external because it loads a native addon relative to its own package.
import { build } from 'esbuild';

await build({
  entryPoints: ['dist/src/cli/entry.js'],
  outfile: 'dist/clawpod.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['better-sqlite3'],
  banner: { js: "import { createRequire as __clawpodRequire } from 'node:module'; const require = __clawpodRequire(import.meta.url);" },
  logLevel: 'warning',
});
