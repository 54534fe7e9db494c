/** Case-insensitive substring search over feature names (fast enough for 20,000+ names). */

export class NameIndex {
  readonly names: readonly string[];
  // Lower-cased once, so each keystroke is a plain `indexOf` per name (~1 ms for 20,000).
  private readonly lower: string[];
  private readonly exact: Map<string, number>;

  constructor(names: readonly string[]) {
    this.names = names;
    this.lower = names.map((name) => name.toLowerCase());
    this.exact = new Map();
    names.forEach((name, i) => {
      if (!this.exact.has(name)) this.exact.set(name, i);
    });
  }

  /** Index of the feature named exactly `name`, or -1. */
  indexOf(name: string): number {
    return this.exact.get(name) ?? -1;
  }

  /**
   * Indices of names containing `query` (case-insensitive), at most `limit`: names that start
   * with the query first, then the others, each group in feature order. Empty query: none.
   */
  search(query: string, limit = 50): number[] {
    const needle = query.trim().toLowerCase();
    if (!needle) return [];
    const prefix: number[] = [];
    const inner: number[] = [];
    for (let i = 0; i < this.lower.length && prefix.length < limit; i++) {
      const at = this.lower[i].indexOf(needle);
      if (at === 0) prefix.push(i);
      else if (at > 0 && inner.length < limit) inner.push(i);
    }
    return prefix.concat(inner).slice(0, limit);
  }
}

/**
 * The `limit` best matches of `query`: features with a value by decreasing mean, then the rest
 * (prefix matches before inner ones, then feature order); `total` counts all matches, so the
 * page can say how many more there are.
 */
export function bestMatches(
  index: NameIndex,
  query: string,
  mean: ArrayLike<number>,
  limit: number,
): { matches: number[]; total: number } {
  const all = index.search(query, Number.MAX_SAFE_INTEGER);
  const position = new Map(all.map((feature, k) => [feature, k]));
  const key = (i: number) => (Number.isFinite(mean[i]) ? mean[i] : -Infinity);
  const sorted = [...all].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    if (ka !== kb) return kb > ka ? 1 : -1;
    return (position.get(a) ?? 0) - (position.get(b) ?? 0);
  });
  return { matches: sorted.slice(0, Math.max(0, limit)), total: all.length };
}

/** `name` split around the first case-insensitive occurrence of `query`, for highlighting. */
export function splitMatch(name: string, query: string): [string, string, string] {
  const needle = query.trim().toLowerCase();
  const at = needle ? name.toLowerCase().indexOf(needle) : -1;
  if (at < 0) return [name, "", ""];
  return [name.slice(0, at), name.slice(at, at + needle.length), name.slice(at + needle.length)];
}
