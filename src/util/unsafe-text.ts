// The one definition of the characters that must never reach a terminal raw. Both the review
// (workspace/quote.ts) and the terminal (core/terminal.ts) escape exactly this set, so the
// approval prompt, model text, tool output, the audit trail and the diff cannot disagree.
//
// By Unicode property rather than a hand list, so a class is closed, not sampled:
//   Cc   C0 and C1 controls and DEL (ESC starts every terminal sequence; U+009B is a
//        one-character CSI on many terminals), \t and \n included: callers decide about those;
//   Cf   format characters: bidi overrides and isolates (the "Trojan Source" reordering),
//        zero-width space/joiners, BOM, soft hyphen, tag characters (U+E0000 block: hidden
//        instructions to a model), interlinear annotation, Arabic/Egyptian format marks;
//   Zl, Zp  the line and paragraph separators (a line break to some viewers, none to others);
//   Default_Ignorable_Code_Point  what renders as nothing: Hangul fillers (U+115F, U+1160,
//        U+3164, U+FFA0), variation selectors (U+FE00-FE0F, U+E0100-E01EF, Mongolian FVS),
//        combining grapheme joiner, Khmer inherent vowels, and the reserved ignorables;
//   Cs   lone surrogates, which a terminal would show as U+FFFD, hiding what was there.
// The `u` flag matters: without it astral characters (tags, VS17+) are never matched.

/** The set as the body of a character class. */
export const UNSAFE_CLASS = '\\p{Cc}\\p{Cf}\\p{Zl}\\p{Zp}\\p{Default_Ignorable_Code_Point}\\p{Cs}';

// One exception: U+FE0E/U+FE0F (text/emoji presentation) right after a visible character is how
// "❤️" is written, so it stays. At the start, or after another unsafe character (a run of
// selectors is how a payload is smuggled), it is escaped like the rest.
const PRESENTATION = '\\ufe0e\\ufe0f';
const source = (extra: string) => `(?![${PRESENTATION}])[${UNSAFE_CLASS}${extra}]|(?<=^|[${UNSAFE_CLASS}])[${PRESENTATION}]`;

// Every matcher is compiled on first use: the property classes take ~0.3 ms each to compile,
// which a command line that never shows pod text should not pay at start.
let unsafe: RegExp | undefined;

/** Matches one unsafe character (no g flag: safe to .test() repeatedly). */
export const UNSAFE = { test: (s: string): boolean => (unsafe ??= new RegExp(source(''), 'u')).test(s) };

/** A fresh global matcher over the set, plus `extra` (class syntax), for replace/matchAll. */
export function unsafeGlobal(extra = ''): RegExp {
  return new RegExp(source(extra), 'gu');
}

/** unsafeGlobal(extra), made on the first call and the same one after (module-level matchers). */
export function lazyUnsafeGlobal(extra = ''): () => RegExp {
  let re: RegExp | undefined;
  return () => (re ??= unsafeGlobal(extra));
}

/** Printable ASCII, tab and newline only: text with nothing of the set in it (a fast path). */
export const PLAIN_TEXT = /^[\t\n\x20-\x7e]*$/;
