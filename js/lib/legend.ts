/** The charts' legend: one sentence per mark that is drawn now, and none for a mark that is not. */

/** What the charts draw at this moment. */
export interface Drawn {
  /** What one estimate is ("repeat", "permutation", "sample"). */
  axis: string;
  /** Some bar has a whisker (an interval). */
  whiskers: boolean;
  /** What the whiskers are, when not the Student t interval over the estimates ("" then). */
  interval?: string;
  /** Some bar has one estimate (lighter, no whisker). */
  single: boolean;
  /** Some bar is greyed (within noise of the features below the top N). */
  tied: boolean;
  /** Top N (for the grey bars' sentence). */
  topN: number;
  /** Boxes are drawn (two or more estimates for some row). */
  boxes: boolean;
  /** Most estimates drawn each as a dot. */
  maxDots: number;
  /** k of a top-k race (null without one). */
  raceK: number | null;
  /** Some rows are groups. */
  groups: boolean;
}

export function legendText(drawn: Drawn): string {
  const { axis } = drawn;
  const parts = [
    "Bars: mean share" +
      (drawn.whiskers
        ? `; whiskers: ${drawn.interval || `95 % interval of the mean (Student t over the ${axis}s)`}`
        : "") +
      ".",
  ];
  if (drawn.single) parts.push(`Light bar: one ${axis} so far, no interval yet.`);
  if (drawn.tied) {
    parts.push(`Grey bar: its interval overlaps a feature outside the top ${drawn.topN}, so its place in the top ${drawn.topN} is not established.`);
  }
  if (drawn.boxes) {
    parts.push(
      `Boxes: middle half of the ${axis}s, line: median, whiskers: to 1.5 × the box length, ` +
      `dots: single ${axis}s (only those beyond the whiskers when there are more than ${drawn.maxDots}).`,
    );
  } else {
    parts.push(`Dots: single ${axis}s.`);
  }
  if (drawn.raceK !== null) parts.push(`✓: settled in the top ${drawn.raceK}; faded bar: settled outside it.`);
  if (drawn.groups) parts.push("Rows may be groups of correlated features: hover for the members.");
  parts.push("Click a row to inspect it.");
  return parts.join(" ");
}
