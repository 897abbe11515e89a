// Which bundle chunks load on every start, and which modules are in them (for keeping the
// CLI's start-up small): node scripts/chunk-report.mjs
import { build } from 'esbuild';
const r = await build({
  entryPoints: [process.env.ENTRY ?? 'dist/src/cli/entry-exec.js'],
  outdir: '/tmp/chunkrep',
  entryNames: 'clawpod',
  chunkNames: 'chunk-[hash]',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['*.node'],
  metafile: true,
  write: false,
  logLevel: 'error',
  define: { __CLAWPOD_VERSION__: '"x"', __CLAWPOD_COMMIT__: '"x"', __CLAWPOD_STRICT_POLICY__: 'null', __CLAWPOD_SECCOMP__: 'null' },
});
const outs = r.metafile.outputs;
const entry = Object.keys(outs).find((k) => outs[k].entryPoint === (process.env.ENTRY ?? 'dist/src/cli/entry-exec.js'));
const seen = new Set();
const q = [entry];
while (q.length) {
  const o = q.shift();
  if (seen.has(o)) continue;
  seen.add(o);
  for (const i of outs[o].imports) if (i.kind === 'import-statement' && outs[i.path]) q.push(i.path);
}
let total = 0;
for (const o of seen) {
  total += outs[o].bytes;
  const mods = Object.entries(outs[o].inputs).sort((a, b) => b[1].bytesInOutput - a[1].bytesInOutput);
  console.log(`${o} ${outs[o].bytes}B`);
  for (const [m, v] of mods.slice(0, process.argv[2] ? 1000 : 12)) console.log(`   ${v.bytesInOutput}\t${m}`);
}
console.log(`static at start: ${seen.size} chunks, ${total} bytes`);
