// Core has no terminal inside it (issue 9): a server, a schedule or a chat channel drive the same
// run lifecycle as the command line, so nothing under src/core may write to this process's
// streams, read its stdin or take its signals. Everything goes through the RunIO a face gives.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers.js';

const FORBIDDEN = /\bprocess\.(stdout|stderr|stdin)\b|\bprocess\.(on|once|off|addListener|removeListener)\s*\(|\bprocess\.exit\s*\(/;

test('no module of src/core touches process streams, stdin or signals', () => {
  const dir = path.join(ROOT, 'src', 'core');
  const offenders: string[] = [];
  for (const f of fs.readdirSync(dir)) {
    if (!f.endsWith('.ts') || f.endsWith('.test.ts')) continue;
    const lines = fs.readFileSync(path.join(dir, f), 'utf8').split('\n');
    lines.forEach((l, i) => {
      const code = l.replace(/\/\/.*$/, '').replace(/^\s*\*.*$/, '');
      if (FORBIDDEN.test(code)) offenders.push(`src/core/${f}:${i + 1}: ${l.trim()}`);
    });
  }
  assert.deepEqual(offenders, []);
});

test('the check itself sees a stream write', () => {
  assert.ok(FORBIDDEN.test("process.stderr.write('x')"));
  assert.ok(FORBIDDEN.test("process.on('SIGINT', h)"));
  assert.ok(!FORBIDDEN.test('process.pid'));
});
