// The spellings of a secret value that clawpod recognises wherever it scrubs: the raw bytes and
// the encodings an echoing server or a careless tool applies without thinking. An encoding the
// list misses (an arbitrary transform: reversed, encrypted, split into short pieces) cannot be
// recognised at all; see the README's Security section.

/** Needles shorter than this are dropped: they would match ordinary text. */
export const MIN_NEEDLE = 8;

function percentAll(b: Buffer, upper: boolean): string {
  const hex = b.toString('hex');
  const s = hex.replace(/(..)/g, '%$1');
  return upper ? s.toUpperCase() : s;
}

/** Percent-encoding of every byte but those safe matches (how Python's quote() and kin write it). */
function percentExcept(b: Buffer, safe: RegExp, upper: boolean): string {
  let out = '';
  for (const x of b) {
    const c = String.fromCharCode(x);
    out += x < 0x80 && safe.test(c) ? c : `%${x.toString(16).padStart(2, '0')}`;
  }
  return upper ? out.replace(/%[0-9a-f]{2}/g, (m) => m.toUpperCase()) : out;
}

const lowerEscapes = (s: string): string => s.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase());

function jsonAll(value: string, upper: boolean): string {
  let out = '';
  // UTF-16 code units, as JSON.stringify-with-ascii-only encoders write them (surrogates apart).
  for (let i = 0; i < value.length; i++) {
    const h = value.charCodeAt(i).toString(16).padStart(4, '0');
    out += `\\u${upper ? h.toUpperCase() : h}`;
  }
  return out;
}

/**
 * The part of base64(junk(k) + bytes) that depends on bytes alone, for a value that starts k
 * bytes into a 3-byte group: the characters from the first one free of the junk to the last one
 * fully inside bytes. Whatever surrounds the value, these characters appear in its encoding.
 */
export function base64Core(bytes: Buffer, k: number, url: boolean): string {
  const s = Buffer.concat([Buffer.alloc(k), bytes]).toString(url ? 'base64url' : 'base64');
  return s.slice(Math.ceil((8 * k) / 6), Math.floor((8 * (k + bytes.length)) / 6));
}

/** Every recognised spelling of value, as bytes, deduplicated: raw, percent- and JSON-escaped
 *  (several dialects of each, hex digits in either case) always; the other encodings only when
 *  at least MIN_NEEDLE long. */
export function needles(value: string): Buffer[] {
  const b = Buffer.from(value, 'utf8');
  const uri = encodeURIComponent(value);
  const json = JSON.stringify(value).slice(1, -1);
  const forms: string[] = [
    value,
    b.toString('hex'),
    b.toString('hex').toUpperCase(),
    uri,
    new URLSearchParams({ v: value }).toString().slice(2),
    percentAll(b, true),
    percentAll(b, false),
    json,
    // PHP's json_encode escapes the slash.
    json.replaceAll('/', '\\/'),
    // Python's quote() keeps "/" and encodes !'()*, which encodeURIComponent leaves alone.
    percentExcept(b, /[A-Za-z0-9_.~/-]/, true),
    percentExcept(b, /[A-Za-z0-9_.~/-]/, false),
    uri.replaceAll('%2F', '/'),
    lowerEscapes(uri),
    lowerEscapes(uri.replaceAll('%2F', '/')),
    jsonAll(value, false),
    jsonAll(value, true),
  ];
  for (let k = 0; k < 3; k++) forms.push(base64Core(b, k, false), base64Core(b, k, true));
  // The value as text carries it, in whatever length: these are kept even for a short value.
  const plain = new Set([value, uri, json]);
  const out = new Map<string, Buffer>();
  for (const f of forms) {
    const bytes = Buffer.from(f, 'utf8');
    if (bytes.length >= MIN_NEEDLE || (plain.has(f) && bytes.length > 0)) out.set(bytes.toString('latin1'), bytes);
  }
  return [...out.values()];
}
