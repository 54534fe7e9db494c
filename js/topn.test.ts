import { describe, expect, it } from "vitest";
import { rankOrder, ranks, topN } from "./lib/topn";

describe("rankOrder", () => {
  it("sorts by decreasing mean", () => {
    expect(Array.from(rankOrder([0.1, 0.5, 0.3]))).toEqual([1, 2, 0]);
  });
  it("breaks ties by index and puts NaN last", () => {
    expect(Array.from(rankOrder([NaN, 2, 1, 2, NaN, 1]))).toEqual([1, 3, 2, 5, 0, 4]);
  });
  it("ranks -Infinity before NaN and negative means after positive ones", () => {
    expect(Array.from(rankOrder([NaN, -Infinity, -1, 0]))).toEqual([3, 2, 1, 0]);
  });
  it("handles 20,000 features quickly and stays a permutation", () => {
    const mean = Float32Array.from({ length: 20000 }, (_, i) => ((i * 7919) % 1000) / 10);
    const started = performance.now();
    const order = rankOrder(mean);
    expect(performance.now() - started).toBeLessThan(200);
    expect(new Set(order).size).toBe(20000);
    for (let r = 1; r < order.length; r++) {
      const a = mean[order[r - 1]];
      const b = mean[order[r]];
      expect(a > b || (a === b && order[r - 1] < order[r])).toBe(true);
    }
  });
});

describe("topN and ranks", () => {
  it("takes the first n and clamps n", () => {
    expect(topN([1, 3, 2], 2)).toEqual([1, 2]);
    expect(topN([1, 3, 2], 10)).toEqual([1, 2, 0]);
    expect(topN([1, 3, 2], -1)).toEqual([]);
  });
  it("inverts an order into 1-based ranks", () => {
    expect(Array.from(ranks([2, 0, 1]))).toEqual([2, 3, 1]);
  });
});
