// Canonical JSON: the byte form that audit hashes are computed over. Two values that are equal as
// JSON must give the same string whatever order their keys were built in, or a verifier in another
// process (or language) could not recompute a hash. Value rules follow JSON.stringify (toJSON,
// undefined/functions dropped from objects and turned into null in arrays, non-finite numbers as
// null) so that canonicalJson(JSON.parse(canonicalJson(v))) === canonicalJson(v).

export function canonicalJson(v: unknown): string {
  return encode(v, [], false) ?? 'null';
}

// Returns undefined for values JSON.stringify would skip (so an object can drop the key).
// `stack` holds the objects being encoded (for cycle detection); an array beats a Set at the
// shallow depths audit data has, and this is on the per-event hot path.
function encode(v: unknown, stack: object[], inArray: boolean): string | undefined {
  if (v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function') {
    v = (v as { toJSON: () => unknown }).toJSON();
  }
  switch (typeof v) {
    case 'string':
      // JSON.stringify is the standard escaping (and escapes lone surrogates since Node 12).
      return JSON.stringify(v);
    case 'number':
      return Number.isFinite(v) ? JSON.stringify(v) : 'null';
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      throw new TypeError('canonicalJson: BigInt is not representable in JSON');
    case 'undefined':
    case 'function':
    case 'symbol':
      return inArray ? 'null' : undefined;
  }
  if (v === null) return 'null';
  const obj = v as object;
  if (stack.includes(obj)) throw new TypeError('canonicalJson: circular structure');
  stack.push(obj);
  const out = Array.isArray(obj) ? encodeArray(obj, stack) : encodeObject(obj as Record<string, unknown>, stack);
  stack.pop();
  return out;
}

function encodeArray(arr: unknown[], stack: object[]): string {
  let out = '[';
  for (let i = 0; i < arr.length; i++) out += (i === 0 ? '' : ',') + (encode(arr[i], stack, true) ?? 'null');
  return out + ']';
}

function encodeObject(obj: Record<string, unknown>, stack: object[]): string {
  // Default sort compares UTF-16 code units: deterministic, and what every JS verifier does.
  const keys = Object.keys(obj).sort();
  let out = '{';
  for (const k of keys) {
    const enc = encode(obj[k], stack, false);
    if (enc !== undefined) out += (out.length === 1 ? '' : ',') + JSON.stringify(k) + ':' + enc;
  }
  return out + '}';
}
