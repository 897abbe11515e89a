// "Did you mean": the nearest known word to a slip. Used by the command line (options, commands)
// and by the policy validator (keys, tool names), so both suggest the same way.

/** Edit distance counting a swap of two neighbours as one edit, for "did you mean". */
export function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The nearest of `known` to `word`, when it is near enough to be a slip. */
export function nearest(word: string, known: readonly string[]): string | null {
  const best = known.map((n) => [n, distance(word, n)] as const).sort((x, y) => x[1] - y[1])[0];
  if (!best) return null;
  return best[1] <= Math.max(1, Math.min(2, Math.floor(word.length / 3))) || (word.length >= 3 && best[0].startsWith(word)) ? best[0] : null;
}
