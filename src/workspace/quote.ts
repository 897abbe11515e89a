// Kept apart from paths.ts so errors.ts can use it without an import cycle.

/**
 * Quotes a path the way git does when it holds characters that would break a line-oriented
 * format. Without this a pod could name a file "x\n+++ b/y" and forge lines in the review diff
 * or in a one-line error.
 */
export function quotePath(p: string): string {
  if (!/["\\\x00-\x1f\x7f]/.test(p)) return p;
  const esc: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\t': '\\t', '\r': '\\r' };
  let out = '"';
  for (const ch of p) {
    const code = ch.charCodeAt(0);
    if (esc[ch] !== undefined) out += esc[ch];
    else if (code < 0x20 || code === 0x7f) out += '\\' + code.toString(8).padStart(3, '0');
    else out += ch;
  }
  return out + '"';
}
