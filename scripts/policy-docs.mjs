// Refreshes the README's policy key reference (the block between <!-- policy-keys:begin --> and
// <!-- policy-keys:end -->) from the schema's descriptions. Run after `npm run build` whenever
// src/policy/schema.ts changes; src/policy/docs.test.ts fails while the block is stale.
// Usage: node scripts/policy-docs.mjs [--check]
import { readFileSync, writeFileSync } from 'node:fs';

const { withKeyReference } = await import('../dist/src/policy/docs.js');
const readme = readFileSync('README.md', 'utf8');
const fresh = withKeyReference(readme);
if (process.argv.includes('--check')) {
  if (fresh !== readme) {
    console.error('README.md policy key reference is stale: run node scripts/policy-docs.mjs');
    process.exit(1);
  }
} else if (fresh !== readme) {
  writeFileSync('README.md', fresh);
  console.error('README.md: policy key reference refreshed');
}
