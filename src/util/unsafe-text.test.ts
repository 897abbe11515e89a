// One unsafe set for the terminal and the review: every class is escaped by both, astral
// characters included, and ordinary text of any script is left alone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { safeText } from '../core/terminal.js';
import { escapeText, quotePath } from '../workspace/quote.js';
import { PLAIN_TEXT, UNSAFE, unsafeGlobal } from './unsafe-text.js';

const CLASSES: Record<string, number[]> = {
  'C0 controls and DEL': [0x00, 0x07, 0x08, 0x0b, 0x0d, 0x1b, 0x1f, 0x7f],
  'C1 controls (U+009B is a one-character CSI)': [0x80, 0x85, 0x90, 0x9b, 0x9d, 0x9f],
  'bidi overrides, embeddings, isolates, marks': [0x061c, 0x200e, 0x200f, 0x202a, 0x202e, 0x2066, 0x2069],
  'zero-width and BOM': [0x200b, 0x200c, 0x200d, 0x2060, 0xfeff],
  'line and paragraph separators': [0x2028, 0x2029],
  'soft hyphen and combining grapheme joiner': [0x00ad, 0x034f],
  'Hangul fillers': [0x115f, 0x1160, 0x3164, 0xffa0],
  'variation selectors': [0x180b, 0x180e, 0xfe00, 0xfe0d, 0xe0100, 0xe01ef],
  'tag characters (hidden instructions to a model)': [0xe0001, 0xe0020, 0xe0041, 0xe007f],
  'other invisible format characters': [0x17b4, 0x2061, 0x2064, 0x206f, 0xfff9, 0x1d173, 0x1bca0],
};

for (const [name, codes] of Object.entries(CLASSES)) {
  test(`${name} are escaped on the terminal and in the review`, () => {
    for (const code of codes) {
      const ch = String.fromCodePoint(code);
      const hex = code.toString(16);
      assert.ok(UNSAFE.test(`a${ch}`), `U+${hex} in the set`);
      const s = `a${ch}b`;
      for (const [how, out] of [
        ['safeText', safeText(s)],
        ['escapeText', escapeText(s)],
        ['quotePath', quotePath(s)],
      ]) {
        assert.ok(!out.includes(ch), `${how} left U+${hex} raw: ${JSON.stringify(out)}`);
        assert.ok(out.startsWith(how === 'quotePath' ? '"a\\' : 'a\\') && out.includes('b'), `${how}: U+${hex} -> ${out}`);
      }
      if (code > 0xffff) assert.equal(safeText(s), `a\\u{${hex}}b`, 'one escape for an astral character');
    }
  });
}

test('one presentation selector after a visible character stays (an emoji); a run or a lone one is escaped', () => {
  assert.equal(safeText('ok \u2764\ufe0f \u2714\ufe0e'), 'ok \u2764\ufe0f \u2714\ufe0e');
  assert.equal(escapeText('\u2764\ufe0f'), '\u2764\ufe0f');
  assert.equal(safeText('x\ufe0f\ufe0e\ufe0f'), 'x\ufe0f\\u{fe0e}\\u{fe0f}', 'a run hides bits');
  assert.equal(escapeText('\ufe0fx'), '\\ufe0fx', 'at the start');
  assert.equal(safeText('a\u200d\ufe0f'), 'a\\u{200d}\\u{fe0f}', 'after another invisible');
  assert.equal(quotePath('f\ufe0f\ufe0f'), '"f\ufe0f\\357\\270\\217"');
});

test('text of any script, emoji and spaces pass untouched; \\t and \\n kept', () => {
  const ok = 'plain ASCII é ü ñ — “quotes” ✓ 漢字 한국어 العربية עברית 😀 \u3000 \u2800';
  assert.equal(safeText(ok), ok);
  assert.equal(escapeText(ok), ok);
  assert.equal(safeText('a\tb\nc'), 'a\tb\nc');
});

test("the terminal's plain-ASCII fast path never lets a character of the set through", () => {
  for (let code = 0; code < 0x100; code++) {
    const ch = String.fromCharCode(code);
    if (PLAIN_TEXT.test(ch)) assert.ok(ch === '\t' || ch === '\n' || !UNSAFE.test(ch), `U+${code.toString(16)} is plain but in the set`);
    else assert.ok(code > 0x7e || (code < 0x20 && ch !== '\t' && ch !== '\n'), `U+${code.toString(16)} is not plain`);
    assert.equal(
      safeText(`x${ch}y`),
      `x${ch}y`.replace(unsafeGlobal(), (c) => (c === '\n' || c === '\t' ? c : safeText(c))),
      `U+${code.toString(16)}`,
    );
  }
  assert.equal(safeText('plain text\twith\na tab'), 'plain text\twith\na tab');
  assert.equal(safeText('esc \x1b[31m'), 'esc \\x1b[31m');
});
