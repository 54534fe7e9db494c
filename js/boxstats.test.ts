import { describe, expect, it } from "vitest";
import { boxStats, quantileSorted } from "./lib/boxstats";

describe("quantileSorted (numpy's linear method)", () => {
  it("matches hand-computed values", () => {
    // np.percentile([1, 2, 3, 4], [25, 50, 75]) == [1.75, 2.5, 3.25]
    expect(quantileSorted([1, 2, 3, 4], 0.25)).toBeCloseTo(1.75);
    expect(quantileSorted([1, 2, 3, 4], 0.5)).toBeCloseTo(2.5);
    expect(quantileSorted([1, 2, 3, 4], 0.75)).toBeCloseTo(3.25);
    expect(quantileSorted([5], 0.3)).toBe(5);
    expect(quantileSorted([], 0.5)).toBeNaN();
  });
});

describe("boxStats", () => {
  it("computes quartiles and whiskers of 1..9 by hand", () => {
    // sorted 1..9: q1 = 3, median = 5, q3 = 7, IQR 4, fences [-3, 13]: whiskers at 1 and 9.
    const stats = boxStats([9, 1, 8, 2, 7, 3, 6, 4, 5])!;
    expect(stats).toMatchObject({ n: 9, min: 1, q1: 3, median: 5, q3: 7, max: 9 });
    expect(stats.whiskerLow).toBe(1);
    expect(stats.whiskerHigh).toBe(9);
    expect(stats.outliers).toEqual([]);
  });
  it("puts points beyond 1.5 IQR outside the whiskers", () => {
    // [1, 2, 3, 4, 100]: q1 = 2, q3 = 4, IQR 2, upper fence 7 -> whisker 4, outlier 100.
    const stats = boxStats([1, 2, 3, 4, 100])!;
    expect(stats.q1).toBe(2);
    expect(stats.median).toBe(3);
    expect(stats.q3).toBe(4);
    expect(stats.whiskerLow).toBe(1);
    expect(stats.whiskerHigh).toBe(4);
    expect(stats.outliers).toEqual([100]);
  });
  it("ignores NaN (repeats not computed yet) and handles one value", () => {
    const stats = boxStats([NaN, 0.5, NaN])!;
    expect(stats).toMatchObject({ n: 1, q1: 0.5, median: 0.5, q3: 0.5 });
    expect(stats.whiskerLow).toBe(0.5);
    expect(stats.whiskerHigh).toBe(0.5);
    expect(boxStats([NaN, NaN])).toBeNull();
    expect(boxStats([])).toBeNull();
  });
  it("keeps even-count quartiles interpolated", () => {
    // [0, 10]: q1 = 2.5, median = 5, q3 = 7.5.
    const stats = boxStats([10, 0])!;
    expect([stats.q1, stats.median, stats.q3]).toEqual([2.5, 5, 7.5]);
  });
});
