// JSON for scripts that may still end up on a terminal: the characters util/unsafe-text.ts keeps
// off a terminal can appear in JSON text only inside strings, where a \u escape means the same
// character. So the document is the same, and inert wherever it is shown.
import { UNSAFE_CLASS } from '../util/unsafe-text.js';

// Compiled on first use (see util/unsafe-text.ts).
let unsafeJson: RegExp | undefined;

/** JSON text with every control, bidi and invisible character in its strings as \u escapes
 *  (astral ones as their surrogate pair). The layout's own newlines stay. */
export function jsonInert(json: string): string {
  return json.replace((unsafeJson ??= new RegExp(`[${UNSAFE_CLASS}]`, 'gu')), (c) => {
    if (c === '\n') return c;
    let out = '';
    for (let i = 0; i < c.length; i++) out += `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`;
    return out;
  });
}
