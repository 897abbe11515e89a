import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diffColourer } from './output.js';
import { pagerCommand } from './pager.js';

test('a pager only on a terminal: $PAGER, none for empty or cat, less by default when installed, never with --no-pager', () => {
  const yes = () => true;
  assert.equal(pagerCommand({ isTTY: false, env: { PAGER: 'less' }, onPath: yes }), null);
  assert.equal(pagerCommand({ isTTY: true, env: { PAGER: 'most -s' }, onPath: yes }), 'most -s');
  assert.equal(pagerCommand({ isTTY: true, env: { PAGER: '' }, onPath: yes }), null);
  assert.equal(pagerCommand({ isTTY: true, env: { PAGER: ' cat ' }, onPath: yes }), null);
  assert.equal(pagerCommand({ isTTY: true, env: {}, onPath: yes }), 'less');
  assert.equal(pagerCommand({ isTTY: true, env: {}, onPath: () => false }), null);
  assert.equal(pagerCommand({ isTTY: true, env: { PAGER: 'less' }, noPager: true, onPath: yes }), null);
});

test('diff colour: headers bold, hunks cyan, + green, - red, judged by state across split pieces; off means untouched', () => {
  const text = 'diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n--- x\n+++ y\n# f.txt: a note\n';
  const c = diffColourer(true);
  // Split mid-line: the colourer waits for the rest of the line.
  const out = c.push(text.slice(0, 40)) + c.push(text.slice(40)) + c.end();
  assert.equal(
    out,
    [
      '\x1b[1mdiff --git a/f b/f\x1b[0m',
      '\x1b[1m--- a/f\x1b[0m',
      '\x1b[1m+++ b/f\x1b[0m',
      '\x1b[36m@@ -1,2 +1,2 @@\x1b[0m',
      ' a',
      '\x1b[31m--- x\x1b[0m',
      '\x1b[32m+++ y\x1b[0m',
      '\x1b[33m# f.txt: a note\x1b[0m',
      '',
    ].join('\n'),
  );
  const off = diffColourer(false);
  assert.equal(off.push(text.slice(0, 9)) + off.push(text.slice(9)) + off.end(), text);
});
