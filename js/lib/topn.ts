/** Feature ranking: the same order as the kernel's `ranking_order` (result.py). */

/**
 * Feature indices sorted by decreasing mean; ties keep index order; NaN (not started) last.
 *
 * @param mean (F,) mean importance per feature.
 */
export function rankOrder(mean: ArrayLike<number>): Int32Array {
  const n = mean.length;
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const key = (i: number) => (Number.isNaN(mean[i]) ? -Infinity : mean[i]);
  // Typed-array sort is not guaranteed stable, so the index is an explicit tie-breaker.
  order.sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    if (ka !== kb) return kb > ka ? 1 : -1;
    const nanA = Number.isNaN(mean[a]);
    const nanB = Number.isNaN(mean[b]);
    if (nanA !== nanB) return nanA ? 1 : -1; // a real -Infinity ranks before NaN
    return a - b;
  });
  return order;
}

/** The first `n` indices of {@link rankOrder} (n clamped to [0, F]). */
export function topN(mean: ArrayLike<number>, n: number): number[] {
  const count = Math.max(0, Math.min(mean.length, Math.floor(n)));
  return Array.from(rankOrder(mean).subarray(0, count));
}

/** 1-based rank of every feature (rank[i] of feature i), for labels and search results. */
export function ranks(order: ArrayLike<number>): Int32Array {
  const rank = new Int32Array(order.length);
  for (let r = 0; r < order.length; r++) rank[order[r]] = r + 1;
  return rank;
}
