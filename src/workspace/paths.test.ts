import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChangeSetError } from './errors.js';
import { ancestorsOf, validateRelPath } from './paths.js';
import { escapeText, quotePath, shortPath } from './quote.js';

test('validateRelPath accepts canonical relpaths only', () => {
  for (const ok of ['a', 'a/b.c', '.hidden/x', 'a/..b', '...', 'with space/é']) assert.equal(validateRelPath(ok, 't'), ok);
  for (const bad of ['', '/a', '..', '../a', 'a/..', 'a/./b', '.', 'a//b', 'a/', 'a\0b']) {
    assert.throws(() => validateRelPath(bad, 't'), ChangeSetError, JSON.stringify(bad));
  }
});

test('ancestorsOf lists proper ancestors outermost first', () => {
  assert.deepEqual(ancestorsOf('a/b/c'), ['a', 'a/b']);
  assert.deepEqual(ancestorsOf('a'), []);
});

test('quotePath leaves ordinary names alone and escapes control characters git-style', () => {
  assert.equal(quotePath('src/a b.ts'), 'src/a b.ts');
  assert.equal(quotePath('a\nb'), '"a\\nb"');
  assert.equal(quotePath('q"\\\x01'), '"q\\"\\\\\\001"');
});

test('quotePath also quotes ESC, C1, bidi and invisible characters, as git-style octal bytes', () => {
  assert.equal(quotePath('a\x1b[2Kb'), '"a\\033[2Kb"');
  assert.equal(quotePath('x\u202e.txt'), '"x\\342\\200\\256.txt"');
  assert.equal(quotePath('c\u009b'), '"c\\302\\233"');
  assert.equal(quotePath('caf\u00e9 \u4e2d'), 'caf\u00e9 \u4e2d');
});

test('escapeText keeps tabs and printable text and escapes everything a terminal would act on', () => {
  assert.equal(escapeText('a\tb'), 'a\tb');
  assert.equal(escapeText('\x1b[31mred\r\x00\x7f'), '\\x1b[31mred\\r\\x00\\x7f');
  assert.equal(escapeText('\u2066x\u2069 \u200b \u{e0041}'), '\\u2066x\\u2069 \\u200b \\u{e0041}');
  assert.equal(escapeText('caf\u00e9 \u2764\ufe0f'), 'caf\u00e9 \u2764\ufe0f');
});

test('shortPath cuts a long path in the middle and says how long it was', () => {
  const long = 'd/'.repeat(1000) + 'end';
  const s = shortPath(long);
  assert.ok(s.length < 200 && s.includes('...') && s.endsWith('(2003 bytes)'), s);
});
