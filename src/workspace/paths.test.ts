import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChangeSetError } from './errors.js';
import { ancestorsOf, validateRelPath } from './paths.js';
import { quotePath } from './quote.js';

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
