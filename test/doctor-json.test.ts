// `doctor --json`: the same guards as the text, for scripts, on stdout only.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cli, tmpDir } from './helpers.js';

test('doctor --json lists every guard the text shows, and nothing else is on stdout', async () => {
  const home = tmpDir('doctor-json');
  const text = await cli(['doctor'], { home });
  const json = await cli(['doctor', '--json'], { home });
  assert.equal(json.code, text.code, json.stderr);
  const doc = JSON.parse(json.stdout) as {
    backend: string;
    ok: boolean;
    guards: { name: string; state: string; detail: string; fix: string | null; cap: boolean }[];
  };
  assert.equal(doc.backend, 'bwrap');
  assert.equal(doc.ok, text.code === 0);
  assert.ok(doc.guards.length >= 10);
  for (const g of doc.guards) {
    assert.match(g.state, /^(active|degraded|missing)$/);
    assert.ok(text.stdout.includes(g.name), `${g.name} is in the text too`);
  }
  const unknown = await cli(['doctor', '--backend', 'nope', '--json'], { home });
  assert.equal(unknown.code, 125);
  assert.match(unknown.stderr, /^clawpod: unknown backend "nope" \(available: bwrap\)/);
});
