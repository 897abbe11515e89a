// Sizes and durations as people write them in a policy ("512Mi", "1h30m"), converted to the
// plain numbers (bytes, milliseconds) that backends enforce.

const KIB = 1024;

// Case-sensitive on purpose: "m" could mean milli or mega and "mi" is nobody's unit, so only
// the spellings below are accepted and anything else is an error rather than a guess.
const SIZE_UNITS: Record<string, number> = {
  '': 1,
  B: 1,
  Ki: KIB,
  Mi: KIB ** 2,
  Gi: KIB ** 3,
  Ti: KIB ** 4,
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
};

const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/;

function sizeError(s: string | number): Error {
  return new Error(`${JSON.stringify(String(s))} is not a size (use e.g. 512Mi, 2Gi)`);
}

/**
 * Bytes in a size such as 512Mi (binary), 2G (decimal) or 1048576 (plain bytes).
 * Fractions are allowed with a unit (1.5Gi) and rounded down to whole bytes. Zero is
 * accepted here; callers that need a minimum check it themselves.
 */
export function parseSize(s: string | number): number {
  if (typeof s === 'number') {
    if (!Number.isSafeInteger(s) || s < 0) throw sizeError(s);
    return s;
  }
  const m = SIZE_RE.exec(s.trim());
  if (!m) throw sizeError(s);
  const [, num, unit] = m;
  const factor = SIZE_UNITS[unit];
  // A fraction of a byte means nothing, so a bare "1.5" is rejected rather than rounded.
  if (factor === undefined || (factor === 1 && num.includes('.'))) throw sizeError(s);
  const bytes = Math.floor(Number(num) * factor);
  if (!Number.isSafeInteger(bytes)) throw sizeError(s);
  return bytes;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
// "ms" is listed before "m" so that "500ms" is not read as 500 minutes followed by "s".
const DURATION_PART = '(\\d+(?:\\.\\d+)?)(ms|s|m|h|d)';
const PLAIN_SECONDS_RE = /^\d+(?:\.\d+)?$/;

function durationError(s: string | number): Error {
  return new Error(`${JSON.stringify(String(s))} is not a duration (use e.g. 30s, 10m, 1h)`);
}

/**
 * Milliseconds in a duration such as 30s, 10m, 1h30m or 250ms. A plain number, or a string
 * of only digits, counts as seconds, matching how timeouts are usually written in YAML.
 */
export function parseDuration(s: string | number): number {
  if (typeof s === 'number') {
    if (!Number.isFinite(s) || s < 0) throw durationError(s);
    return checkedMs(Math.floor(s * 1000), s);
  }
  const text = s.trim();
  if (PLAIN_SECONDS_RE.test(text)) return checkedMs(Math.floor(Number(text) * 1000), s);
  if (text === '') throw durationError(s);
  let total = 0;
  let pos = 0;
  // A sticky regex walks the string part by part, so any gap or stray character fails. It is
  // built per call because a regex's lastIndex is state that must not be shared.
  const re = new RegExp(DURATION_PART, 'y');
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) throw durationError(s);
    total += Number(m[1]) * DURATION_UNITS[m[2]];
    pos = re.lastIndex;
  }
  return checkedMs(Math.floor(total), s);
}

function checkedMs(ms: number, original: string | number): number {
  if (!Number.isSafeInteger(ms)) throw durationError(original);
  return ms;
}

const BYTE_UNITS: Array<[string, number]> = [
  ['TiB', KIB ** 4],
  ['GiB', KIB ** 3],
  ['MiB', KIB ** 2],
  ['KiB', KIB],
];

/** "512 MiB", "1.5 GiB", "100 B": binary units, at most one decimal, for explain output. */
export function formatBytes(bytes: number): string {
  for (const [name, size] of BYTE_UNITS) {
    if (bytes >= size) {
      const value = Math.round((bytes / size) * 10) / 10;
      return `${value} ${name}`;
    }
  }
  return `${bytes} B`;
}

const DURATION_PARTS: Array<[string, number]> = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
  ['ms', 1],
];

/** "10m", "1h30m", "1s500ms": the same spelling parseDuration accepts, so it round-trips. */
export function formatDuration(ms: number): string {
  if (ms <= 0) return '0s';
  let rest = Math.floor(ms);
  let out = '';
  for (const [name, size] of DURATION_PARTS) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${name}`;
      rest -= n * size;
    }
  }
  return out;
}
