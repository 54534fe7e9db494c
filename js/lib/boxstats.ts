/** Box-plot statistics of a handful of per-repeat values (Tukey's box: 1.5 IQR whiskers). */

export interface BoxStats {
  n: number;
  min: number;
  q1: number;
  median: number;
  q3: number;
  max: number;
  /** Most extreme values still within 1.5 IQR of the box (equal to q1/q3 at worst). */
  whiskerLow: number;
  whiskerHigh: number;
  /** Values beyond the whiskers, ascending. */
  outliers: number[];
}

/**
 * The p-quantile of ascending `sorted` values with linear interpolation between order
 * statistics (numpy's default "linear" method, Hyndman & Fan type 7), so the box matches what a
 * user computes with `np.percentile` on `result.importances`.
 */
export function quantileSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const position = (n - 1) * Math.min(1, Math.max(0, p));
  const below = Math.floor(position);
  const above = Math.min(n - 1, below + 1);
  const weight = position - below;
  return sorted[below] + weight * (sorted[above] - sorted[below]);
}

/** Box statistics of the finite values (NaN = repeat not computed yet); null when none. */
export function boxStats(values: ArrayLike<number>): BoxStats | null {
  const sorted = Array.from(values)
    .filter((v) => Number.isFinite(v))
    .sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return null;
  const q1 = quantileSorted(sorted, 0.25);
  const median = quantileSorted(sorted, 0.5);
  const q3 = quantileSorted(sorted, 0.75);
  const reach = 1.5 * (q3 - q1);
  const inside = sorted.filter((v) => v >= q1 - reach && v <= q3 + reach);
  return {
    n,
    min: sorted[0],
    q1,
    median,
    q3,
    max: sorted[n - 1],
    // Whiskers end at data points, never beyond the box's own edges.
    whiskerLow: Math.min(q1, inside[0]),
    whiskerHigh: Math.max(q3, inside[inside.length - 1]),
    outliers: sorted.filter((v) => v < q1 - reach || v > q3 + reach),
  };
}
