import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadManifest, saveManifest, takeManifest } from './manifest.js';
import { fixture, link, mkdir, put } from './testkit.js';

test('records type, permission bits, size and link targets; never descends into a symlinked dir', () => {
  const f = fixture();
  try {
    put(f.ws, 'a.txt', 'hello', 0o640);
    put(f.ws, 'bin/tool', '#!/bin/sh\n', 0o755);
    mkdir(f.ws, 'empty', 0o700);
    put(f.base, 'outside/secret', 's');
    link(f.ws, 'out', '../outside');
    const m = takeManifest(f.ws);
    assert.deepEqual([...m.entries.keys()].sort(), ['a.txt', 'bin', 'bin/tool', 'empty', 'out']);
    const a = m.entries.get('a.txt');
    assert.equal(a?.t, 'f');
    assert.equal(a?.mode, 0o640);
    assert.equal(a?.size, 5);
    assert.equal(m.entries.get('bin/tool')?.mode, 0o755);
    assert.equal(m.entries.get('empty')?.t, 'd');
    assert.equal(m.entries.get('empty')?.mode, 0o700);
    assert.equal(m.entries.get('out')?.t, 'l');
    assert.equal(m.entries.get('out')?.target, '../outside');
  } finally {
    f.cleanup();
  }
});

test('save/load round-trips exactly, including a file named __proto__', () => {
  const f = fixture();
  try {
    put(f.ws, '__proto__', 'x');
    put(f.ws, 'dir/constructor', 'y');
    link(f.ws, 'l', 't');
    const m = takeManifest(f.ws);
    const file = join(f.base, 'manifest.json');
    saveManifest(file, m);
    assert.deepEqual(loadManifest(file), m);
    writeFileSync(file, '{"version":1,"entries":[["a",{"t":"x"}]]}');
    assert.throws(() => loadManifest(file), /manifest .* is malformed/);
  } finally {
    f.cleanup();
  }
});

test('a 10k-file tree is walked completely', (t) => {
  const f = fixture();
  try {
    for (let d = 0; d < 100; d++) {
      mkdirSync(join(f.ws, `d${d}`, 'sub'), { recursive: true });
      for (let i = 0; i < 100; i++) writeFileSync(join(f.ws, `d${d}`, i % 2 ? 'sub' : '', `f${i}.ts`), 'x');
    }
    takeManifest(f.ws); // warm the dentry cache, as a run's second manifest would find it
    const start = process.hrtime.bigint();
    const m = takeManifest(f.ws);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    t.diagnostic(`takeManifest: ${m.entries.size} entries in ${ms.toFixed(1)} ms`);
    // Speed belongs to the benchmark; this checks the walk misses nothing.
    assert.equal(m.entries.size, 10_000 + 200);
  } finally {
    f.cleanup();
  }
});
