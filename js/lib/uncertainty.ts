/**
 * What the intervals can and cannot say about the ranking: per-feature intervals, which of the
 * top N are separated from every feature outside it, the ranks each could hold, and the
 * always-visible "ranking stable?" line.
 *
 * Ties are drawn as greyed bars (see bars.ts): the question a user asks of the top N is "is
 * this feature among the ones the model relies on?", and the honest answer for a bar whose
 * interval overlaps a feature outside the top N is "not established". Greying answers it at a
 * glance without moving rows (the order stays the kernel's order by mean, which is the best
 * single guess); the rank range in the tooltip says how far the rank could move. A band around
 * tied neighbours was the other choice, but ties are not contiguous (a wide interval ties with
 * features far below it), so a band would draw groups that do not exist.
 */

import type { Frame } from "./protocol";

/** A 95 % interval of a feature's mean: only with two or more estimates (one estimate has no
 * spread; the kernel then sends low = high = mean, which is no interval at all). */
export function intervalOf(frame: Frame, i: number): { low: number; high: number } | null {
  if (!(frame.nDone[i] >= 2)) return null;
  const low = frame.ciLow[i];
  const high = frame.ciHigh[i];
  if (!Number.isFinite(low) || !Number.isFinite(high) || high < low) return null;
  return { low, high };
}

/** How the top N stand against the rest. */
export interface Separation {
  /** Per row of `top`: its interval lies above every interval outside the top N. */
  clear: boolean[];
  /** Per row of `top`: [best, worst] 1-based rank its interval allows (features without an
   * interval, or without a value, count as possibly above and below). */
  rankRange: [number, number][];
  /** Rows of `top` with an interval. */
  withInterval: number;
  /** Features with a value (of F). */
  evaluated: number;
}

/** Count of values in the ascending `sorted` that are > x (strictly). */
function countAbove(sorted: Float64Array, x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] > x) hi = mid;
    else lo = mid + 1;
  }
  return sorted.length - lo;
}

/** Count of values in the ascending `sorted` that are < x (strictly). */
function countBelow(sorted: Float64Array, x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Which of `top` (feature indices in rank order) are separated from the rest.
 *
 * A feature is clear when it has an interval and its low end lies above the high end of every
 * feature outside `top`; a feature outside with no interval (one estimate, or none yet) could
 * be anywhere, so while one exists nothing is clear. These are the marginal 95 % intervals
 * drawn, compared pairwise: a description of the picture, not a joint guarantee over all
 * features (the certified top-k race gives that).
 */
export function separation(frame: Frame, top: readonly number[]): Separation {
  const n = frame.nFeatures;
  const inTop = new Uint8Array(n);
  for (const i of top) inTop[i] = 1;
  let outsideHigh = -Infinity;
  let outsideOpen = false;
  let evaluated = 0;
  const lows: number[] = [];
  const highs: number[] = [];
  for (let i = 0; i < n; i++) {
    if (frame.nDone[i] > 0) evaluated++;
    const interval = intervalOf(frame, i);
    if (interval === null) {
      if (!inTop[i]) outsideOpen = true;
      continue;
    }
    lows.push(interval.low);
    highs.push(interval.high);
    if (!inTop[i]) outsideHigh = Math.max(outsideHigh, interval.high);
  }
  const sortedLows = Float64Array.from(lows).sort();
  const sortedHighs = Float64Array.from(highs).sort();
  const clear: boolean[] = [];
  const rankRange: [number, number][] = [];
  let withInterval = 0;
  for (const i of top) {
    const interval = intervalOf(frame, i);
    if (interval === null) {
      clear.push(false);
      rankRange.push([1, n]);
      continue;
    }
    withInterval++;
    clear.push(!outsideOpen && interval.low > outsideHigh);
    // Certainly above: their low end is above this high end; certainly below: the reverse.
    // The feature itself is neither (its low <= its high).
    const above = countAbove(sortedLows, interval.high);
    const below = countBelow(sortedHighs, interval.low);
    rankRange.push([1 + above, n - below]);
  }
  return { clear, rankRange, withInterval, evaluated };
}

/** "#4", or "#3–41" when the intervals allow a range. */
export function rankRangeText(range: [number, number]): string {
  const [best, worst] = range;
  return best === worst ? `#${best}` : `#${best}–${worst.toLocaleString("en-US")}`;
}

/**
 * The "ranking stable?" line, always shown above the charts.
 *
 * @param settled With a top-k race: how many of the top k are settled (null without a race).
 */
export function stabilityText(
  separationOf: Separation,
  shown: number,
  nFeatures: number,
  axis: string,
  settled: { k: number; inside: number; done: boolean } | null,
): string {
  const race = settled
    ? ` Race: ranks settled ${settled.inside} of ${settled.k}${settled.done ? " (final)" : ""}.`
    : "";
  if (shown === 0) return `Ranking: waiting for the first values.${race}`;
  const { clear, withInterval, evaluated } = separationOf;
  if (evaluated < nFeatures) {
    return (
      `Ranking not established: ${evaluated.toLocaleString("en-US")} of ${nFeatures.toLocaleString("en-US")} ` +
      `evaluated, a feature not evaluated yet may rank higher.${race}`
    );
  }
  if (withInterval < shown) {
    return (
      `Ranking not established: ${shown - withInterval} of the top ${shown} have one ${axis}, ` +
      `no interval yet.${race}`
    );
  }
  const nClear = clear.filter(Boolean).length;
  if (nClear === shown) {
    return (
      `Ranking stable: all ${shown} of the top ${shown} lie clearly above every other feature ` +
      `(95 % intervals, compared pairwise).${race}`
    );
  }
  return (
    `Ranking stable? ${nClear} of the top ${shown} lie clearly above every feature outside it; ` +
    `${shown - nClear} (grey) are within noise of features below (95 % intervals overlap).${race}`
  );
}
